//! Builds on CodeBuild. What the emulator cannot show, and how each part is covered instead:
//!
//! - moto reports every build `SUCCEEDED` on its first BatchGetBuilds and never runs it: the
//!   decision on running, failed, faulted, timed-out and stopped builds is the pure
//!   `codebuild::assess`, run here on BatchGetBuilds responses shaped as the API reference
//!   documents them (`tests/data/batch-get-builds/`);
//! - moto keeps neither the buildspec, the variables nor the token of a StartBuild: the
//!   request is checked field by field as ferry builds it (`start_build`), and moto is asked
//!   to accept it;
//! - moto's builds upload no artifacts and write no log: the test puts the output where the
//!   request told CodeBuild to put it, and writes a log stream as CodeBuild would;
//! - moto ignores the idempotency token (real CodeBuild keeps it five minutes): reconcile
//!   finds the build by the attempt's mark, which moto keeps in the artifacts override.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_codebuild::types as cb;
use ferry_aws::artifacts::S3Artifacts;
use ferry_aws::codebuild::{
    Assessment, Attempt, BuildState, CodebuildConfig, CodebuildKind, assess, follow_log, marker,
};
use ferry_aws::secrets::AwsSecrets;
use ferry_engine::Registry;
use ferry_engine::action::{ActionContext, ActionLog, Reconciled, Settings, Silent};
use ferry_engine::artifact::ArtifactStore;
use ferry_engine::mask::Masker;
use ferry_engine::model::{ActionDef, Mode, PipelineDef, StageDef};
use ferry_engine::store::{SqliteStore, Store};
use ferry_test_support::REGION;
use serde::Deserialize;
use serde_json::json;

use crate::common::*;

const MARK: &str = "ferry_0123456789abcdef0123456789abcdef";

#[derive(Deserialize)]
struct Response {
    builds: Vec<BuildState>,
}

#[test]
fn every_recorded_batch_get_builds_response_gets_the_expected_decision() {
    let mut failures = Vec::new();
    for (file, want, response) in recorded::<Response>("batch-get-builds") {
        let build = &response.builds[0];
        let got = assess(build);
        let (kind, text) = match &got {
            Assessment::Running { phase } => ("running", phase.clone()),
            Assessment::Succeeded => ("succeeded", String::new()),
            Assessment::Failed { reason, .. } => ("failed", reason.clone()),
        };
        if kind != want.expect || !text.contains(&want.reason) {
            failures.push(format!(
                "{file}: expected {} ({}), got {got:?}",
                want.expect, want.reason
            ));
        }
        // Every recorded build is the attempt's, whether it kept the variable (CodeBuild)
        // or only the artifact identifier (moto).
        if !build.is_attempt(MARK) || build.is_attempt("ferry_another") {
            failures.push(format!("{file}: not recognised as attempt {MARK}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn an_empty_build_is_running_not_succeeded() {
    assert!(matches!(
        assess(&BuildState::default()),
        Assessment::Running { .. }
    ));
}

fn config(bucket: &str, key: &str) -> CodebuildConfig {
    CodebuildConfig {
        project: "ferry-orders".into(),
        region: REGION.into(),
        build: ferry_engine::build::BuildConfig {
            buildspec: Some("ci/buildspec.yml".into()),
            inline: None,
            env: vec![("STAGE".into(), "test".into())],
            secrets: vec![("DB_PASSWORD".into(), "orders/db:password".into())],
            imports: vec![],
        },
        bucket: bucket.into(),
        prefix: "orders".into(),
        output_prefix: "orders/codebuild/".into(),
        kms_key: key.into(),
        log_group: "/aws/codebuild/ferry-orders".into(),
        timeout_secs: 1200,
    }
}

#[test]
fn start_build_carries_the_buildspec_the_overrides_and_the_token() {
    let c = config(
        "ferry-orders-artifacts",
        "arn:aws:kms:us-east-1:111111111111:alias/ferry-orders",
    );
    let outputs = vec!["app".to_owned(), "infra-plan".to_owned()];
    let attempt = Attempt {
        execution: "e1",
        stage: "build",
        action: "package",
        attempt: 2,
        outputs: &outputs,
        marker: MARK,
        env: &c.build.env,
    };
    let inputs = vec![
        (
            "source".to_owned(),
            "ferry-orders-artifacts/orders/aa.zip".to_owned(),
        ),
        (
            "shared-lib".to_owned(),
            "ferry-orders-artifacts/orders/bb.zip".to_owned(),
        ),
    ];
    let req = c.start_build(&attempt, &inputs).unwrap();
    assert_eq!(req.get_project_name().as_deref(), Some("ferry-orders"));
    assert_eq!(
        req.get_buildspec_override().as_deref(),
        Some("ci/buildspec.yml")
    );
    assert_eq!(req.get_source_type_override(), &Some(cb::SourceType::S3));
    assert_eq!(
        req.get_source_location_override().as_deref(),
        Some("ferry-orders-artifacts/orders/aa.zip")
    );
    let secondary = req.get_secondary_sources_override().clone().unwrap();
    assert_eq!(secondary.len(), 1);
    assert_eq!(secondary[0].source_identifier(), Some("shared_lib"));
    assert_eq!(
        secondary[0].location(),
        Some("ferry-orders-artifacts/orders/bb.zip")
    );
    assert_eq!(req.get_idempotency_token().as_deref(), Some(MARK));
    assert_eq!(
        req.get_encryption_key_override().as_deref(),
        Some("arn:aws:kms:us-east-1:111111111111:alias/ferry-orders")
    );
    assert_eq!(req.get_timeout_in_minutes_override(), &Some(20));

    let vars = req.get_environment_variables_override().clone().unwrap();
    let var = |name: &str| vars.iter().find(|v| v.name() == name).unwrap();
    assert_eq!(var("FERRY_ATTEMPT").value(), MARK);
    assert_eq!(var("STAGE").value(), "test");
    // The secret goes as a reference CodeBuild resolves, never as a value.
    assert_eq!(var("DB_PASSWORD").value(), "orders/db:password");
    assert_eq!(
        var("DB_PASSWORD").r#type(),
        Some(&cb::EnvironmentVariableType::SecretsManager)
    );
    assert!(
        vars.iter()
            .filter(|v| v.name() != "DB_PASSWORD")
            .all(|v| v.r#type() == Some(&cb::EnvironmentVariableType::Plaintext))
    );

    let primary = req.get_artifacts_override().clone().unwrap();
    assert_eq!(primary.r#type(), &cb::ArtifactsType::S3);
    assert_eq!(primary.location(), Some("ferry-orders-artifacts"));
    assert_eq!(primary.path(), Some("orders/codebuild/e1/build/package/2"));
    assert_eq!(primary.name(), Some("app.zip"));
    assert_eq!(primary.artifact_identifier(), Some(MARK));
    assert_eq!(primary.encryption_disabled(), Some(false));
    let second = req.get_secondary_artifacts_override().clone().unwrap();
    assert_eq!(second[0].artifact_identifier(), Some("infra_plan"));
    assert_eq!(second[0].name(), Some("infra-plan.zip"));

    // The mark is a function of the attempt's key, and fits CodeBuild's identifier rules.
    assert_eq!(marker("k1"), marker("k1"));
    assert_ne!(marker("k1"), marker("k2"));
    assert!(
        marker("k1")
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    );
}

/// The project as `ferry bootstrap` makes it, created directly (its own test is bootstrap's).
async fn project(w: &World, bucket: &str) {
    aws_sdk_codebuild::Client::new(&w.shared)
        .create_project()
        .name("ferry-orders")
        .service_role(format!(
            "arn:aws:iam::{}:role/ferry-orders-build",
            w.accounts.shared
        ))
        .source(
            cb::ProjectSource::builder()
                .r#type(cb::SourceType::S3)
                .location(format!("{bucket}/orders/codebuild/"))
                .build()
                .unwrap(),
        )
        .artifacts(
            cb::ProjectArtifacts::builder()
                .r#type(cb::ArtifactsType::S3)
                .location(bucket)
                .build()
                .unwrap(),
        )
        .environment(
            cb::ProjectEnvironment::builder()
                .r#type(cb::EnvironmentType::LinuxContainer)
                .image("aws/codebuild/amazonlinux-x86_64-standard:5.0")
                .compute_type(cb::ComputeType::BuildGeneral1Small)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

struct Fixture {
    w: World,
    dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    artifacts: S3Artifacts,
    config: CodebuildConfig,
    def: ActionDef,
    source: ferry_engine::model::ArtifactRef,
    execution: ferry_engine::model::Execution,
}

async fn fixture() -> Fixture {
    let w = world().await;
    let (artifacts, key_arn) = artifact_store(&w).await;
    let bucket = artifacts.bucket().to_owned();
    project(&w, &bucket).await;
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("source.zip");
    std::fs::write(&zip, lambda_zip("print('v2')")).unwrap();
    let source = artifacts.put("source", &zip).await.unwrap();

    let mut config = config(&bucket, &key_arn);
    config.build.secrets.clear();
    config.build.buildspec = None;
    config.build.inline = Some(ferry_engine::build::InlineBuildspec {
        text: "version: 0.2\nphases:\n  build:\n    commands:\n      - make\nartifacts:\n  files: ['**/*']\n".into(),
        origin: "test".into(),
    });
    let def = ActionDef {
        name: "package".into(),
        kind: "codebuild".into(),
        run_order: 1,
        config: serde_json::to_value(&config).unwrap(),
        inputs: vec!["source".into()],
        outputs: vec!["app".into()],
        timeout_secs: None,
    };
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join(".ferry/state.db")).unwrap());
    let pipeline = PipelineDef {
        name: "orders".into(),
        mode: Mode::Queued,
        stages: vec![StageDef {
            name: "build".into(),
            environment: None,
            actions: vec![def.clone()],
        }],
    };
    let execution = store
        .create_execution(&pipeline, "r1", &"test".into())
        .unwrap();
    Fixture {
        w,
        dir,
        store,
        artifacts,
        config,
        def,
        source,
        execution,
    }
}

impl Fixture {
    fn context(&self, idempotency_key: &str) -> ActionContext {
        let workdir = self.dir.path().join(format!("work-{idempotency_key}"));
        std::fs::create_dir_all(&workdir).unwrap();
        ActionContext {
            execution: self.execution.clone(),
            stage: "build".into(),
            environment: None,
            action: "package".into(),
            attempt: 1,
            idempotency_key: idempotency_key.into(),
            log: ActionLog::new(
                &workdir.join("log"),
                "build",
                "package",
                Masker::default(),
                Arc::new(Silent),
            )
            .unwrap(),
            workdir,
            inputs: vec![self.source.clone()],
            outputs: vec!["app".into()],
            cancel: tokio_util::sync::CancellationToken::new(),
            store: self.store.clone(),
            artifacts: Arc::new(self.artifacts.clone()),
            secrets: Arc::new(AwsSecrets::new(&self.w.aws.own(None))),
            settings: Settings {
                auto_approve: true,
                identity: "tester".into(),
                poll: Duration::from_millis(50),
                state_dir: self.dir.path().join(".ferry"),
                clock: ferry_engine::action::Clock::system(),
            },
            slot: ferry_engine::action::Slot::default(),
        }
    }

    /// Plays CodeBuild's part the emulator skips: uploads the build's output where the
    /// request told it to.
    async fn upload_output(&self, idempotency_key: &str, body: &[u8]) {
        let mark = marker(idempotency_key);
        let outputs = vec!["app".to_owned()];
        let path = self.config.output_path(&Attempt {
            execution: &self.execution.id,
            stage: "build",
            action: "package",
            attempt: 1,
            outputs: &outputs,
            marker: &mark,
            env: &[],
        });
        s3(&self.w.shared)
            .put_object()
            .bucket(&self.config.bucket)
            .key(format!("{path}/app.zip"))
            .body(body.to_vec().into())
            .send()
            .await
            .unwrap();
    }

    fn starts(&self) -> usize {
        self.w
            .aws
            .calls
            .calls()
            .iter()
            .filter(|c| *c == "codebuild:StartBuild")
            .count()
    }
}

#[tokio::test]
async fn a_build_runs_on_codebuild_brings_its_output_back_and_is_found_again_after_a_crash() {
    let f = fixture().await;
    let output = lambda_zip("def handler(e, c):\n    return 'built on codebuild'\n");
    f.upload_output("attempt-1", &output).await;
    let mut registry = Registry::default();
    registry.register(CodebuildKind(f.w.aws.clone()));
    let action = registry.action(&f.def).unwrap();

    let ctx = f.context("attempt-1");
    let out = action.run(&ctx).await.unwrap();
    assert_eq!(f.starts(), 1);
    assert_eq!(out.artifacts.len(), 1);
    let app = &out.artifacts[0];
    assert_eq!(app.name, "app");
    // Stored in ferry's artifact store as a local build's output is: content-addressed.
    let back = f.dir.path().join("back.zip");
    f.artifacts.get(app, &back).await.unwrap();
    assert_eq!(std::fs::read(&back).unwrap(), output);
    let build_id = out.outputs["codebuild"]["build"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(build_id.starts_with("ferry-orders:"), "{build_id}");

    // After a crash the same attempt finds its build instead of starting a second.
    let again = f.context("attempt-1");
    match action.reconcile(&again).await.unwrap() {
        Reconciled::Done(done) => {
            assert_eq!(done.artifacts[0].sha256, app.sha256);
            assert_eq!(done.outputs["codebuild"]["build"], json!(build_id));
        }
        other => panic!("expected the build to be found, got {other:?}"),
    }
    assert_eq!(f.starts(), 1, "reconcile started a build");

    // Another attempt has no build yet.
    let other = f.context("attempt-2");
    assert_eq!(action.reconcile(&other).await.unwrap(), Reconciled::NotDone);
}

#[tokio::test]
async fn a_build_whose_output_is_not_a_zip_fails_and_says_where_it_looked() {
    let f = fixture().await;
    f.upload_output("attempt-1", b"not a zip").await;
    let mut registry = Registry::default();
    registry.register(CodebuildKind(f.w.aws.clone()));
    let action = registry.action(&f.def).unwrap();
    let err = action.run(&f.context("attempt-1")).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("artifact `app`"), "{text}");
    assert!(text.contains("is not a zip archive"), "{text}");
    assert!(text.contains(&f.config.bucket), "{text}");
}

#[tokio::test]
async fn a_build_log_is_read_from_cloudwatch_logs_from_where_it_left_off() {
    let w = world().await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&w.shared);
    let group = "/aws/codebuild/ferry-orders";
    let stream = "7d5b1e2c-3f4a-4b6c-9d8e-0f1a2b3c4d5e";
    logs.create_log_group()
        .log_group_name(group)
        .send()
        .await
        .unwrap();
    logs.create_log_stream()
        .log_group_name(group)
        .log_stream_name(stream)
        .send()
        .await
        .unwrap();
    let put = |messages: &[&str]| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let events: Vec<_> = messages
            .iter()
            .map(|m| {
                aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                    .timestamp(now)
                    .message(*m)
                    .build()
                    .unwrap()
            })
            .collect();
        logs.put_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .set_log_events(Some(events))
            .send()
    };
    put(&["[Container] Entering phase BUILD\n", "make\n"])
        .await
        .unwrap();
    let own = w.aws.own(None);
    let (first, token) = follow_log(&own, group, stream, None).await.unwrap();
    assert_eq!(first, ["[Container] Entering phase BUILD", "make"]);
    put(&["[Container] Phase complete: BUILD State: SUCCEEDED\n"])
        .await
        .unwrap();
    let (second, _) = follow_log(&own, group, stream, token.as_deref())
        .await
        .unwrap();
    assert_eq!(
        second,
        ["[Container] Phase complete: BUILD State: SUCCEEDED"]
    );
}
