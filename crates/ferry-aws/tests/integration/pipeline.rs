//! The AWS layer inside the engine: artifacts in the shared account's S3 bucket under its KMS
//! key, read back by a target account's deploy role; a Secrets Manager secret in a build,
//! masked in its log; the `lambda` and `ecs` actions deploying from a build's artifact and
//! writing the release ledger; an environment's entry gates holding a stage and letting it in,
//! or an override letting it past.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_aws::artifacts;
use ferry_aws::secrets::AwsSecrets;
use ferry_engine::action::{Observer, RunEvent, Settings};
use ferry_engine::artifact::{ArtifactError, ArtifactStore};
use ferry_engine::model::{ActionDef, Mode, PipelineDef, StageDef, Status};
use ferry_engine::store::{SqliteStore, Store};
use ferry_engine::{Clock, Engine, Registry};
use ferry_test_support::{REGION, admin_config};
use serde_json::json;

use crate::common::*;

const SECRET: &str = "s3cr3t-Value-4711";
const API_KEY: &str = "param-secret-8c1f";

#[tokio::test]
async fn an_artifact_written_in_the_shared_account_is_read_by_a_target_role() {
    let w = world().await;
    let (store, key_arn) = artifact_store(&w).await;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("app.zip");
    std::fs::write(&src, lambda_zip("print('hello')")).unwrap();
    let artifact = store.put("app", &src).await.unwrap();
    assert_eq!(
        artifact.location,
        format!("s3://{}/orders/{}.zip", store.bucket(), artifact.sha256)
    );

    // Stored with SSE-KMS under the pipeline's key.
    let shared_s3 = s3(&w.shared);
    let head = shared_s3
        .head_object()
        .bucket(store.bucket())
        .key(format!("orders/{}.zip", artifact.sha256))
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.server_side_encryption(),
        Some(&aws_sdk_s3::types::ServerSideEncryption::AwsKms)
    );
    assert_eq!(head.ssekms_key_id(), Some(key_arn.as_str()));

    // The dev account's deploy role reads it back, checked against its sha256.
    let dev = w.in_dev().await;
    let out = dir.path().join("read.zip");
    artifacts::read_as(&dev, &artifact, &out).await.unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&src).unwrap());

    // The same content again is not uploaded again.
    let puts = |calls: Vec<String>| calls.iter().filter(|c| *c == "s3:PutObject").count();
    let before = puts(w.aws.calls.calls());
    store.put("app-again", &src).await.unwrap();
    assert_eq!(puts(w.aws.calls.calls()), before);

    // An object changed in the bucket fails the check, and nothing is left behind.
    shared_s3
        .put_object()
        .bucket(store.bucket())
        .key(format!("orders/{}.zip", artifact.sha256))
        .body(b"tampered".to_vec().into())
        .send()
        .await
        .unwrap();
    let err = artifacts::read_as(&dev, &artifact, &out.with_extension("2"))
        .await
        .unwrap_err();
    assert!(matches!(err, ArtifactError::Integrity(_)), "{err}");
    assert!(!out.with_extension("2").exists());
}

#[derive(Default)]
struct Lines(Mutex<Vec<String>>);

impl Observer for Lines {
    fn event(&self, event: RunEvent) {
        if let RunEvent::Log { line, .. } = event {
            self.0.lock().unwrap().push(line);
        }
    }
}

fn action(
    name: &str,
    kind: &str,
    config: serde_json::Value,
    inputs: &[&str],
    outputs: &[&str],
) -> ActionDef {
    ActionDef {
        name: name.into(),
        kind: kind.into(),
        run_order: 1,
        config,
        inputs: inputs.iter().map(|s| (*s).to_owned()).collect(),
        outputs: outputs.iter().map(|s| (*s).to_owned()).collect(),
        timeout_secs: None,
    }
}

#[tokio::test]
async fn a_pipeline_builds_with_a_secret_and_deploys_lambda_and_ecs_to_dev() {
    let w = world().await;
    let (store, _) = artifact_store(&w).await;
    aws_sdk_secretsmanager::Client::new(&w.shared)
        .create_secret()
        .name("orders/db")
        .secret_string(json!({"password": SECRET, "user": "orders"}).to_string())
        .send()
        .await
        .unwrap();
    // Parameter Store, as a buildspec's `env.parameter-store` reads it in the shared account.
    let ssm = aws_sdk_ssm::Client::new(&w.shared);
    for (name, value, kind) in [
        (
            "/orders/api-key",
            API_KEY,
            aws_sdk_ssm::types::ParameterType::SecureString,
        ),
        (
            "/orders/stage",
            "blue",
            aws_sdk_ssm::types::ParameterType::String,
        ),
    ] {
        ssm.put_parameter()
            .name(name)
            .value(value)
            .r#type(kind)
            .send()
            .await
            .unwrap();
    }
    lambda_function(&w.dev, &w.accounts.dev, "orders-fn", lambda_zip("v1")).await;
    ecs_service(&w.dev, 1).await;

    let dir = tempfile::tempdir().unwrap();
    let buildspec = r#"version: 0.2
env:
  parameter-store: {API_KEY: /orders/api-key, STAGE: /orders/stage}
phases:
  build:
    commands:
      - echo "connecting with password $DB_PASSWORD"
      - echo "api key $API_KEY for $STAGE"
      - test "${#API_KEY}" -eq 17
      - mkdir -p dist && python3 -m zipfile -c dist/fn.zip index.py
      - printf '[{"name":"web","imageUri":"repo/orders-api:%s"}]' "$CODEBUILD_RESOLVED_SOURCE_VERSION" > dist/imagedefinitions.json
artifacts:
  base-directory: dist
  files: ['**/*']
"#;
    let target = json!({"account_id": w.accounts.dev, "region": REGION, "role_arn": w.deploy_role(&w.accounts.dev).role_arn});
    let def = PipelineDef {
        name: "orders".into(),
        mode: Mode::Queued,
        stages: vec![
            source_stage(dir.path()),
            StageDef {
                name: "build".into(),
                environment: None,
                actions: vec![action(
                    "package",
                    "build",
                    json!({"inline": {"text": buildspec, "origin": "test"}, "secrets": [["DB_PASSWORD", "orders/db:password"]]}),
                    &["source"],
                    &["app"],
                )],
            },
            StageDef {
                name: "deploy-dev".into(),
                environment: Some("dev".into()),
                actions: vec![
                    action(
                        "fn",
                        "lambda",
                        json!({"function": "orders-fn", "alias": "live", "package": {"zip": {"artifact": "app", "path": "fn.zip"}}, "traffic": "all-at-once", "target": target}),
                        &["app"],
                        &[],
                    ),
                    action(
                        "api",
                        "ecs",
                        json!({"cluster": "orders", "service": "orders-api", "artifact": "app", "image_definitions": "imagedefinitions.json", "timeout": "30s", "target": target}),
                        &["app"],
                        &[],
                    ),
                ],
            },
        ],
    };

    let (engine, db, lines) = engine_at(&w, &store, dir.path(), Clock::system());
    let state = dir.path().join(".ferry");
    let exec = engine.start(&def, "local", "test").unwrap();
    let done = engine.drive(&exec.id, None).await.unwrap();
    let log = lines.0.lock().unwrap().join("\n");
    assert_eq!(done.status, Status::Succeeded, "{:?}\n{log}", done.reason);

    // The secret reached the build and never its log.
    assert!(log.contains("connecting with password ***"), "{log}");
    assert!(!log.contains(SECRET));
    assert!(log.contains("api key *** for blue"), "{log}");
    assert!(!log.contains(API_KEY));
    // A finished action's workspace is removed in the background, so a file may vanish
    // between listing and reading: what is gone cannot hold the secret.
    let on_disk: String = walk(&state)
        .iter()
        .filter_map(|p| match std::fs::read(p) {
            Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => panic!("{}: {e}", p.display()),
        })
        .collect();
    assert!(
        !on_disk.contains(SECRET) && !on_disk.contains(API_KEY),
        "a secret reached the state directory"
    );

    // The artifact is in the shared bucket; both deploys landed and are in the ledger.
    let artifacts = db.artifacts(&exec.id).unwrap();
    assert!(
        artifacts.iter().all(|a| a
            .location
            .starts_with(&format!("s3://{}/orders/", store.bucket()))),
        "{artifacts:?}"
    );
    let alias = aws_sdk_lambda::Client::new(&w.dev)
        .get_alias()
        .function_name("orders-fn")
        .name("live")
        .send()
        .await
        .unwrap();
    assert_eq!(alias.function_version(), Some("2"));
    let releases = db.releases("orders", Some("dev"), None, 10).unwrap();
    let mut targets: Vec<(&str, &str, bool)> = releases
        .iter()
        .map(|r| {
            (
                r.record.target.as_str(),
                r.record.outcome.as_str(),
                r.record.verified,
            )
        })
        .collect();
    targets.sort_unstable();
    assert_eq!(
        targets,
        [
            ("ecs:orders/orders-api", "Deployed", true),
            ("lambda:orders-fn:live", "Deployed", true)
        ]
    );
    let ecs_release = releases
        .iter()
        .find(|r| r.record.target.starts_with("ecs:"))
        .unwrap();
    assert!(
        ecs_release
            .record
            .version
            .ends_with("task-definition/orders-api:2"),
        "{:?}",
        ecs_release.record
    );

    // Both side effects carry the attempt's idempotency key.
    let runs = db.action_runs(&exec.id).unwrap();
    let key_of = |action: &str| {
        runs.iter()
            .find(|r| r.action == action)
            .unwrap()
            .idempotency_key
            .clone()
    };
    let version = aws_sdk_lambda::Client::new(&w.dev)
        .get_function_configuration()
        .function_name("orders-fn")
        .qualifier("2")
        .send()
        .await
        .unwrap();
    assert_eq!(
        version.description(),
        Some(format!("ferry {}", key_of("fn")).as_str())
    );
    let td = aws_sdk_ecs::Client::new(&w.dev)
        .describe_task_definition()
        .task_definition(&ecs_release.record.version)
        .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
        .send()
        .await
        .unwrap();
    assert!(
        td.tags()
            .iter()
            .any(|t| t.key() == Some("ferry:idempotency-key")
                && t.value() == Some(key_of("api").as_str())),
        "{:?}",
        td.tags()
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path))
        } else {
            out.push(path)
        }
    }
    out
}

/// An engine on a fresh state directory in `dir`, with ferry's AWS actions and `clock`.
fn engine_at(
    w: &World,
    store: &artifacts::S3Artifacts,
    dir: &std::path::Path,
    clock: Clock,
) -> (Engine, Arc<dyn Store>, Arc<Lines>) {
    let state = dir.join(".ferry");
    let db: Arc<dyn Store> = Arc::new(SqliteStore::open(&state.join("state.db")).unwrap());
    let mut registry = Registry::with_builtins();
    ferry_aws::register(&mut registry, &w.aws);
    let lines = Arc::new(Lines::default());
    let settings = Settings {
        auto_approve: true,
        identity: "tester".into(),
        poll: Duration::from_millis(50),
        state_dir: state,
        clock,
    };
    let engine = Engine::new(
        db.clone(),
        registry,
        Arc::new(store.clone()),
        Arc::new(AwsSecrets::new(&w.aws.own(None))),
        lines.clone(),
        settings,
    );
    (engine, db, lines)
}

/// A repository with a Lambda handler, checked out by the `source` stage.
fn source_stage(dir: &std::path::Path) -> StageDef {
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(
        repo.join("index.py"),
        "def handler(event, context):\n    return 'v2'\n",
    )
    .unwrap();
    StageDef {
        name: "source".into(),
        environment: None,
        actions: vec![action(
            "checkout",
            "source",
            json!({"repo": repo.display().to_string()}),
            &[],
            &["source"],
        )],
    }
}

/// A build action that only says where it ran.
fn smoke(name: &str) -> ActionDef {
    let buildspec =
        format!("version: 0.2\nphases:\n  build:\n    commands:\n      - echo {name}\n");
    action(
        name,
        "build",
        json!({"inline": {"text": buildspec, "origin": "test"}}),
        &["source"],
        &[],
    )
}

/// The `gates` action as `ferry-workflows` lays it: first in its stage.
fn gates(config: serde_json::Value) -> ActionDef {
    ActionDef {
        run_order: 0,
        ..action(ferry_manifest::GATES_ACTION, "gates", config, &[], &[])
    }
}

/// What holds `stage` of `id` now, as the gates action last recorded it.
fn holds(db: &Arc<dyn Store>, id: &str, stage: &str) -> Option<Vec<String>> {
    db.gates(id)
        .unwrap()
        .into_iter()
        .find(|g| g.stage == stage)
        .map(|g| g.holds)
}

/// moto does evaluate alarm state changes (SetAlarmState) and reports StateUpdatedTimestamp,
/// so the alarm gate is tested on the emulator; the windows and the soak on an injected clock.
#[tokio::test]
async fn gates_hold_entry_through_a_freeze_a_soak_and_a_new_alarm_and_let_it_in_as_each_clears() {
    let w = world().await;
    let (store, _) = artifact_store(&w).await;
    let qa = admin_config(&w.accounts.qa).await;
    alarm(&qa, "orders-errors-qa").await;
    let dir = tempfile::tempdir().unwrap();
    let start = ferry_engine::model::now_ms();
    let today = jiff::Timestamp::from_millisecond(start)
        .unwrap()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC);
    // A freeze on today's date, in UTC: the clock moved past tomorrow is out of it.
    let freeze = format!("* * {} {} *", today.day(), today.month());
    let clock = Clock::manual(start);
    let (engine, db, lines) = engine_at(&w, &store, dir.path(), clock.clone());
    let target = json!({"account_id": w.accounts.qa, "region": REGION, "role_arn": w.deploy_role(&w.accounts.qa).role_arn});
    let def = PipelineDef {
        name: "orders".into(),
        mode: Mode::Queued,
        stages: vec![
            source_stage(dir.path()),
            StageDef {
                name: "dev".into(),
                environment: Some("dev".into()),
                actions: vec![smoke("smoke-dev")],
            },
            StageDef {
                name: "qa".into(),
                environment: Some("qa".into()),
                actions: vec![
                    gates(json!({
                        "target": target,
                        "alarms": ["orders-errors-qa"],
                        "windows": [{"rule": "deny", "cron": freeze, "time_zone": "UTC"}],
                        "soak": {"environment": "dev", "secs": 3600},
                    })),
                    smoke("smoke-qa"),
                ],
            },
        ],
    };
    let exec = engine.start(&def, "local", "test").unwrap();
    let driving = tokio::spawn({
        let engine = engine.clone();
        let id = exec.id.clone();
        async move { engine.drive(&id, None).await }
    });

    // Frozen today, and dev finished moments ago.
    eventually("the freeze and the soak to hold qa", || async {
        holds(&db, &exec.id, "qa").is_some_and(|h| {
            h.len() == 2
                && h[0].starts_with(&format!("frozen by deny `{freeze}` (UTC); opens "))
                && h[1].starts_with("soak: it must run in dev for 1h, until ")
        })
    })
    .await;
    assert!(
        db.action_runs(&exec.id)
            .unwrap()
            .iter()
            .all(|r| r.action != "smoke-qa"),
        "qa's deploys started behind its gates"
    );

    // An alarm that fires after the execution started holds it too. moto stamps the change
    // in whole seconds: wait until one has passed since the start.
    while ferry_engine::model::now_ms() < start + 1000 {
        tokio::task::yield_now().await;
    }
    trip(&qa, "orders-errors-qa").await;
    let alarm_hold =
        "alarm `orders-errors-qa` is in ALARM, and entered it after this execution started";
    eventually(
        "the alarm to hold qa beside the freeze and the soak",
        || async { holds(&db, &exec.id, "qa").is_some_and(|h| h.len() == 3 && h[0] == alarm_hold) },
    )
    .await;
    // Past tomorrow: the freeze has ended and the soak is done; the alarm still holds.
    clock.set(start + 36 * 3600 * 1000);
    eventually("only the alarm to hold qa", || async {
        holds(&db, &exec.id, "qa").is_some_and(|h| h == [alarm_hold])
    })
    .await;

    recover(&qa, "orders-errors-qa").await;
    let done = tokio::time::timeout(Duration::from_secs(60), driving)
        .await
        .expect("the execution finishes once the alarm is OK")
        .unwrap()
        .unwrap();
    let log = lines.0.lock().unwrap().join("\n");
    assert_eq!(done.status, Status::Succeeded, "{:?}\n{log}", done.reason);
    assert_eq!(holds(&db, &exec.id, "qa"), Some(vec![]));
    assert!(log.contains("[ferry] every gate is open"), "{log}");
    let kinds: Vec<String> = db
        .events(&exec.id)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind.starts_with("gates-"))
        .map(|e| e.kind)
        .collect();
    // One event per change: freeze and soak; and the alarm; the alarm alone; open.
    assert_eq!(
        kinds,
        ["gates-held", "gates-held", "gates-held", "gates-open"]
    );
}

#[tokio::test]
async fn an_override_lets_a_release_past_a_freeze_and_the_ledger_keeps_who_and_why() {
    let w = world().await;
    let (store, _) = artifact_store(&w).await;
    lambda_function(&w.dev, &w.accounts.dev, "orders-fn", lambda_zip("v1")).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, db, lines) = engine_at(&w, &store, dir.path(), Clock::system());
    let target = json!({"account_id": w.accounts.dev, "region": REGION, "role_arn": w.deploy_role(&w.accounts.dev).role_arn});
    let buildspec = "version: 0.2\nphases:\n  build:\n    commands:\n      - mkdir -p dist && python3 -m zipfile -c dist/fn.zip index.py\nartifacts:\n  base-directory: dist\n  files: ['**/*']\n";
    let def = PipelineDef {
        name: "orders".into(),
        mode: Mode::Queued,
        stages: vec![
            source_stage(dir.path()),
            StageDef {
                name: "build".into(),
                environment: None,
                actions: vec![action(
                    "package",
                    "build",
                    json!({"inline": {"text": buildspec, "origin": "test"}}),
                    &["source"],
                    &["app"],
                )],
            },
            StageDef {
                name: "dev".into(),
                environment: Some("dev".into()),
                actions: vec![
                    // Frozen every minute: only an override lets it in.
                    gates(json!({
                        "target": target,
                        "windows": [{"rule": "deny", "cron": "* * * * *", "time_zone": "Europe/Berlin"}],
                    })),
                    action(
                        "fn",
                        "lambda",
                        json!({"function": "orders-fn", "alias": "live", "package": {"zip": {"artifact": "app", "path": "fn.zip"}}, "traffic": "all-at-once", "target": target}),
                        &["app"],
                        &[],
                    ),
                ],
            },
        ],
    };
    let exec = engine.start(&def, "local", "test").unwrap();
    let driving = tokio::spawn({
        let engine = engine.clone();
        let id = exec.id.clone();
        async move { engine.drive(&id, None).await }
    });
    eventually("the freeze to hold dev", || async {
        holds(&db, &exec.id, "dev").is_some_and(|h| !h.is_empty())
    })
    .await;

    // An override names why, and only a stage a gate holds can be overridden.
    let refused = engine
        .override_gate(&exec.id, "dev", "alice", "  ")
        .unwrap_err();
    assert!(
        matches!(
            refused,
            ferry_engine::EngineError::Refused(ferry_engine::Refused::ReasonRequired)
        ),
        "{refused}"
    );
    let refused = engine
        .override_gate(&exec.id, "build", "alice", "hotfix")
        .unwrap_err();
    assert!(
        matches!(&refused, ferry_engine::EngineError::Refused(ferry_engine::Refused::NoGateHolding { holding, .. }) if holding == &["dev"]),
        "{refused}"
    );
    let gate = engine
        .override_gate(&exec.id, "dev", "alice", "hotfix for INC-42")
        .unwrap();
    assert_eq!(
        gate.overridden.as_ref().map(|o| o.identity.as_str()),
        Some("alice")
    );

    let done = tokio::time::timeout(Duration::from_secs(60), driving)
        .await
        .expect("the execution finishes once overridden")
        .unwrap()
        .unwrap();
    let log = lines.0.lock().unwrap().join("\n");
    assert_eq!(done.status, Status::Succeeded, "{:?}\n{log}", done.reason);
    assert!(
        log.contains("[ferry] gates overridden by alice: hotfix for INC-42"),
        "{log}"
    );
    let release = db
        .releases("orders", Some("dev"), None, 10)
        .unwrap()
        .remove(0);
    let kept = release
        .gate_override
        .expect("the release records its override");
    assert_eq!(kept, "alice: hotfix for INC-42");
    assert!(
        db.events(&exec.id)
            .unwrap()
            .iter()
            .any(|e| e.kind == "gates-overridden"
                && e.detail.as_deref() == Some("alice: hotfix for INC-42")),
        "the override is an event of the execution"
    );
}
