//! The checks of an `ecs` action's `PAUSE` hooks, as the deploy answers ECS with them: a test
//! build run as the target account's deploy role against the emulator, and an approval in
//! the stage. ECS's side (the pause, ContinueServiceDeployment) is not in the emulator; it is
//! the pure state machine of `assess.rs`'s scenarios.

use std::sync::Arc;
use std::time::Duration;

use ferry_aws::actions::{HookCheck, HookConfig, HookSteer, hook_approval_name};
use ferry_aws::ecs::Steer;
use ferry_aws::service_deployment::{RevisionState, ServiceDeploymentState};
use ferry_engine::action::{ActionContext, ActionLog, Settings, Silent};
use ferry_engine::approval::ApprovalConfig;
use ferry_engine::artifact::LocalArtifacts;
use ferry_engine::build::{BuildConfig, InlineBuildspec};
use ferry_engine::mask::Masker;
use ferry_engine::model::{ApprovalStatus, Mode, PipelineDef, StageDef};
use ferry_engine::secrets::NoSecrets;
use ferry_engine::store::{Decision, SqliteStore, Store};
use secrecy::ExposeSecret;

use crate::common::*;

const AT: &str = "POST_TEST_TRAFFIC_SHIFT";

fn context(dir: &std::path::Path, store: Arc<dyn Store>) -> ActionContext {
    let pipeline = PipelineDef {
        name: "orders".into(),
        mode: Mode::Queued,
        stages: vec![StageDef {
            name: "prod".into(),
            environment: Some("prod".into()),
            actions: Vec::new(),
        }],
    };
    let execution = store
        .create_execution(&pipeline, "r1", &"carol".into())
        .unwrap();
    let workdir = dir.join("work");
    std::fs::create_dir_all(&workdir).unwrap();
    ActionContext {
        execution,
        stage: "prod".into(),
        environment: Some("prod".into()),
        action: "api".into(),
        attempt: 1,
        idempotency_key: "k1".into(),
        log: ActionLog::new(
            &workdir.join("log"),
            "prod",
            "api",
            Masker::default(),
            Arc::new(Silent),
        )
        .unwrap(),
        workdir,
        inputs: Vec::new(),
        outputs: Vec::new(),
        cancel: tokio_util::sync::CancellationToken::new(),
        store,
        artifacts: Arc::new(LocalArtifacts::open(&dir.join("artifacts")).unwrap()),
        secrets: Arc::new(NoSecrets),
        settings: Settings {
            auto_approve: false,
            identity: "carol".into(),
            poll: Duration::from_millis(20),
            state_dir: dir.join(".ferry"),
            clock: ferry_engine::action::Clock::system(),
        },
        slot: ferry_engine::action::Slot::default(),
    }
}

fn test_hook(commands: &[&str]) -> HookConfig {
    let mut text = "version: 0.2\nphases:\n  build:\n    commands:\n".to_owned();
    for c in commands {
        // A JSON string is a YAML double-quoted scalar: commands need no YAML escaping.
        text.push_str(&format!("      - {}\n", serde_json::to_string(c).unwrap()));
    }
    HookConfig {
        at: AT.into(),
        timeout: Duration::from_secs(120),
        check: HookCheck::Test {
            build: BuildConfig {
                buildspec: None,
                inline: Some(InlineBuildspec {
                    text,
                    origin: "ferry.yaml, line 30".into(),
                }),
                env: vec![(
                    "PY".into(),
                    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                        .join("../../.tools/venv/bin/python")
                        .display()
                        .to_string(),
                )],
                secrets: Vec::new(),
                imports: Vec::new(),
            },
            inputs: Vec::new(),
        },
    }
}

fn paused() -> ServiceDeploymentState {
    ServiceDeploymentState {
        service_deployment_arn:
            "arn:aws:ecs:us-east-1:222222222222:service-deployment/orders/orders-api/Kv3m".into(),
        status: "IN_PROGRESS".into(),
        lifecycle_stage: Some(AT.into()),
        target_service_revision: Some(RevisionState {
            arn: "arn:aws:ecs:us-east-1:222222222222:service-revision/orders/orders-api/2222"
                .into(),
            requested_production_traffic_weight: Some(0.0),
        }),
        ..ServiceDeploymentState::default()
    }
}

fn log_of(ctx: &ActionContext) -> String {
    std::fs::read_to_string(ctx.workdir.join("log")).unwrap()
}

#[tokio::test]
async fn a_hooks_test_runs_as_the_deploy_role_and_its_credentials_never_reach_the_log() {
    let w = world().await;
    let dev = w.in_dev().await;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
    let ctx = context(dir.path(), store);
    let hooks = [test_hook(&[
        "\"$PY\" -c \"import boto3; print('caller', boto3.client('sts').get_caller_identity()['Arn'])\"",
        "echo \"deployment $FERRY_SERVICE_DEPLOYMENT revision $FERRY_SERVICE_REVISION\"",
        "echo \"key $AWS_SECRET_ACCESS_KEY token $AWS_SESSION_TOKEN\"",
    ])];
    let steer = HookSteer::new(&ctx, &dev, &hooks);
    assert_eq!(steer.hooks()[0].at, AT);
    steer.check(AT, &paused()).await.unwrap();

    let log = log_of(&ctx);
    let role = format!(
        "caller arn:aws:sts::{}:assumed-role/ferry-deploy/",
        w.accounts.dev
    );
    assert!(log.contains(&role), "not run as the deploy role:\n{log}");
    assert!(log.contains(
        "revision arn:aws:ecs:us-east-1:222222222222:service-revision/orders/orders-api/2222"
    ));
    let env = dev.process_env().await.unwrap();
    assert_eq!(env.secret.len(), 2, "the secret key and the session token");
    for (name, value) in &env.secret {
        assert!(
            !log.contains(value.expose_secret()),
            "{name} reached the log:\n{log}"
        );
    }
}

#[tokio::test]
async fn a_failing_hook_test_says_where_and_why_so_the_deploy_rolls_back() {
    let w = world().await;
    let dev = w.in_dev().await;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
    let ctx = context(dir.path(), store);
    let hooks = [test_hook(&[
        "echo 'GET /orders on the test listener: 500'",
        "exit 1",
    ])];
    let steer = HookSteer::new(&ctx, &dev, &hooks);
    let why = steer.check(AT, &paused()).await.unwrap_err();
    assert!(
        why.starts_with("the test at POST_TEST_TRAFFIC_SHIFT failed: the build failed"),
        "{why}"
    );
    assert!(log_of(&ctx).contains("GET /orders on the test listener: 500"));
    // A stage ECS paused at that is not one of ferry's hooks is not answered as passed.
    assert!(steer.check("POST_SCALE_UP", &paused()).await.is_err());
}

/// The approval in the middle of the rollout is an approval of the stage like any other:
/// pending while ECS waits, decided in the store (as `ferry approve` does), and its
/// rejection is the reason ECS is told to roll back.
#[tokio::test]
async fn a_hooks_approval_waits_in_the_stage_and_approve_goes_on_while_reject_rolls_back() {
    let w = world().await;
    let dev = w.in_dev().await;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
    let mut ctx = context(dir.path(), store.clone());
    let hooks = [HookConfig {
        at: AT.into(),
        timeout: Duration::from_secs(3600),
        check: HookCheck::Approval(ApprovalConfig {
            approvers: vec!["bob".into()],
            timeout_secs: 3600,
            comment_required: true,
            required: 1,
            forbid_self: false,
        }),
    }];
    for (attempt, approve) in [(1, true), (2, false)] {
        ctx.attempt = attempt;
        let name = hook_approval_name("api", AT, attempt);
        let steer = HookSteer::new(&ctx, &dev, &hooks);
        let exec = ctx.execution.id.clone();
        let decide = async {
            let waiting = loop {
                let pending = store.pending_approvals(Some(&exec)).unwrap();
                if let Some(a) = pending.into_iter().find(|a| a.action == name) {
                    break a;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            };
            assert_eq!(waiting.stage, "prod");
            assert_eq!(waiting.status, ApprovalStatus::Pending);
            store
                .decide_approval(
                    &exec,
                    "prod",
                    &name,
                    &Decision {
                        approve,
                        identity: "bob".into(),
                        comment: Some("checkout returns 500 on the test listener".into()),
                        ..Decision::default()
                    },
                )
                .unwrap();
        };
        let deployment = paused();
        let (verdict, ()) = tokio::join!(steer.check(AT, &deployment), decide);
        if approve {
            verdict.unwrap();
        } else {
            let why = verdict.unwrap_err();
            assert!(
                why.contains("rejected by bob: checkout returns 500"),
                "{why}"
            );
        }
    }
    assert_eq!(
        hook_approval_name("api", AT, 2),
        "api@post_test_traffic_shift#2"
    );
}

/// `ferry stop --force` cancels the action: the steer says so, and the deploy asks ECS to
/// roll back rather than stopping half way.
#[tokio::test]
async fn a_forced_stop_is_a_reason_to_roll_back() {
    let w = world().await;
    let dev = w.in_dev().await;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
    let ctx = context(dir.path(), store);
    let steer = HookSteer::new(&ctx, &dev, &[]);
    assert_eq!(steer.stop(), None);
    ctx.cancel.cancel();
    assert_eq!(
        steer.stop().as_deref(),
        Some("stopped by `ferry stop --force`")
    );
}
