//! The release ledger: what a deploy action reports is recorded per environment and target,
//! with the execution, the revision and who approved it — also when it was rolled back.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use common::*;
use ferry_engine::Registry;
use ferry_engine::action::{Action, ActionContext, ActionError, ActionKind, ActionOutput};
use ferry_engine::model::*;
use ferry_engine::store::Decision;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
struct ShipConfig {
    version: String,
    fail: bool,
}

struct ShipKind;

impl ActionKind for ShipKind {
    type Config = ShipConfig;
    fn name(&self) -> &'static str {
        "ship"
    }
    fn build(&self, config: ShipConfig, _def: &ActionDef) -> Result<Arc<dyn Action>, String> {
        Ok(Arc::new(Ship(config)))
    }
}

/// Reports a deployment the way the ECS and Lambda actions do.
struct Ship(ShipConfig);

#[async_trait]
impl Action for Ship {
    async fn run(&self, ctx: &ActionContext) -> Result<ActionOutput, ActionError> {
        let release = ReleaseRecord {
            target: "lambda:orders-fn:live".into(),
            version: self.0.version.clone(),
            digest: Some(format!("sha-{}", self.0.version)),
            previous_version: Some("1".into()),
            details: json!({"stage": ctx.stage}),
            outcome: if self.0.fail {
                "RolledBack".into()
            } else {
                "Deployed".into()
            },
            verified: !self.0.fail,
        };
        if self.0.fail {
            return Err(ActionError::RolledBack {
                reason: "alarm orders-fn-errors entered ALARM".into(),
                release: Box::new(release),
            });
        }
        Ok(ActionOutput {
            outputs: json!({"version": self.0.version}),
            artifacts: vec![],
            release: Some(release),
        })
    }
}

fn ship(version: &str, fail: bool) -> ActionDef {
    ActionDef {
        name: "fn".into(),
        kind: "ship".into(),
        run_order: 1,
        config: json!({"version": version, "fail": fail}),
        inputs: vec![],
        outputs: vec![],
        timeout_secs: None,
    }
}

#[tokio::test]
async fn deploys_and_rollbacks_are_recorded_with_their_approver() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = Registry::with_builtins();
    registry.register(ShipKind);
    let (engine, _) = engine_at(
        &dir.path().join(".ferry"),
        registry,
        Default::default(),
        false,
    );
    let prod = |version: &str, fail: bool| StageDef {
        name: "prod".into(),
        environment: Some("prod".into()),
        actions: vec![approval(3600, &[], false), ship(version, fail)],
    };
    for (version, fail) in [("2", false), ("3", true)] {
        let def = pipeline("orders", Mode::Parallel, vec![prod(version, fail)]);
        let exec = engine
            .start(&def, &format!("rev{version}"), "test")
            .unwrap();
        let e = engine.clone();
        let id = exec.id.clone();
        let driving = tokio::spawn(async move { e.drive(&id, None).await });
        while engine
            .decide(
                &exec.id,
                "prod",
                &Decision {
                    approve: true,
                    identity: "erin".into(),
                    comment: None,
                    ..Decision::default()
                },
            )
            .is_err()
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let done = driving.await.unwrap().unwrap();
        assert_eq!(
            done.status,
            if fail {
                Status::Failed
            } else {
                Status::Succeeded
            }
        );
    }
    let ledger = engine
        .store()
        .releases("orders", Some("prod"), None, 10)
        .unwrap();
    assert_eq!(ledger.len(), 2);
    let (newest, oldest) = (&ledger[0], &ledger[1]);
    assert_eq!(
        (
            newest.record.version.as_str(),
            newest.record.outcome.as_str(),
            newest.record.verified
        ),
        ("3", "RolledBack", false)
    );
    assert_eq!(
        (
            oldest.record.version.as_str(),
            oldest.record.outcome.as_str(),
            oldest.record.verified
        ),
        ("2", "Deployed", true)
    );
    assert_eq!(oldest.approved_by.as_deref(), Some("erin"));
    assert_eq!(oldest.revision, "rev2");
    assert_eq!(oldest.record.digest.as_deref(), Some("sha-2"));

    // `ferry rollback` puts 2 back: a `Restored` entry by whoever ran it, with 2's origin.
    engine
        .store()
        .restore_release(oldest, "oncall@example.com", Some("3"))
        .unwrap();
    let restored = &engine
        .store()
        .releases("orders", Some("prod"), Some("lambda:orders-fn:live"), 1)
        .unwrap()[0];
    assert_eq!(
        (
            restored.record.version.as_str(),
            restored.record.outcome.as_str(),
            restored.record.verified,
            restored.record.previous_version.as_deref(),
            restored.approved_by.as_deref(),
            restored.revision.as_str(),
        ),
        (
            "2",
            "Restored",
            true,
            Some("3"),
            Some("oncall@example.com"),
            "rev2"
        )
    );
}

/// dev deploys by itself, prod after an approval: the shape of a real promotion.
fn dev_then_prod(version: &str) -> PipelineDef {
    let stage = |env: &str, actions: Vec<ActionDef>| StageDef {
        name: env.into(),
        environment: Some(env.into()),
        actions,
    };
    pipeline(
        "orders",
        Mode::Parallel,
        vec![
            stage("dev", vec![ship(version, false)]),
            stage(
                "prod",
                vec![approval(3600, &[], false), ship(version, false)],
            ),
        ],
    )
}

fn registry() -> Registry {
    let mut registry = Registry::with_builtins();
    registry.register(ShipKind);
    registry
}

#[tokio::test]
async fn a_blocked_release_enters_no_environment_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = engine_at(
        &dir.path().join(".ferry"),
        registry(),
        Default::default(),
        false,
    );
    let exec = engine.start(&dev_then_prod("2"), "rev2", "test").unwrap();
    let block = engine
        .store()
        .block_release(&exec.id, "oncall@example.com", "corrupts refunds (INC-231)")
        .unwrap();
    assert_eq!(block.identity, "oncall@example.com");
    let done = engine.drive(&exec.id, None).await.unwrap();
    assert_eq!(done.status, Status::Failed);
    let why = done.reason.unwrap_or_default();
    assert!(
        why.contains("is blocked by oncall@example.com: corrupts refunds (INC-231)")
            && why.contains("ferry release unblock"),
        "{why}"
    );
    assert!(
        engine
            .store()
            .releases("orders", None, None, 10)
            .unwrap()
            .is_empty()
    );
    let events = engine.store().events(&exec.id).unwrap();
    assert!(
        events.iter().any(|e| e.kind == "release-blocked"
            && e.detail.as_deref() == Some("oncall@example.com: corrupts refunds (INC-231)")),
        "{events:?}"
    );

    // Unblocked, it is promoted again (a retry of the failed stage).
    assert!(
        engine
            .store()
            .unblock_release(&exec.id, "lead")
            .unwrap()
            .is_some()
    );
    assert!(
        engine
            .store()
            .unblock_release(&exec.id, "lead")
            .unwrap()
            .is_none()
    );
    engine.retry(&exec.id, "dev").unwrap();
    let (_, driving) = drive_to_approval(&engine, &exec.id).await;
    let approve = Decision {
        approve: true,
        identity: "erin".into(),
        ..Decision::default()
    };
    engine.decide(&exec.id, "prod", &approve).unwrap();
    assert_eq!(driving.await.unwrap().unwrap().status, Status::Succeeded);
}

#[tokio::test]
async fn a_release_blocked_while_it_waits_for_approval_is_refused_and_never_reaches_prod() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = engine_at(
        &dir.path().join(".ferry"),
        registry(),
        Default::default(),
        false,
    );
    let exec = engine.start(&dev_then_prod("3"), "rev3", "test").unwrap();
    // dev deployed; prod waits for its approval.
    let (_, driving) = drive_to_approval(&engine, &exec.id).await;
    engine
        .store()
        .block_release(&exec.id, "oncall@example.com", "leaks card numbers to logs")
        .unwrap();
    let done = driving.await.unwrap().unwrap();
    assert_eq!(done.status, Status::Failed);
    assert!(
        done.reason
            .as_deref()
            .is_some_and(|r| r.contains("leaks card numbers to logs")),
        "{:?}",
        done.reason
    );
    // No approval of it is accepted, whoever asks.
    let refused = engine
        .store()
        .decide_approval(
            &exec.id,
            "prod",
            "approve",
            &Decision {
                approve: true,
                identity: "erin".into(),
                ..Decision::default()
            },
        )
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("`prod` cannot be approved: release")
            && refused.to_string().contains("leaks card numbers to logs"),
        "{refused}"
    );
    let ledger = engine.store().releases("orders", None, None, 10).unwrap();
    let envs: Vec<&str> = ledger.iter().map(|r| r.environment.as_str()).collect();
    assert_eq!(envs, ["dev"]);
    assert_eq!(
        ledger[0].blocked.as_deref(),
        Some("leaks card numbers to logs")
    );
}

/// The deploys of one run outside the engine (a CodePipeline execution) record into one
/// execution: found by its trigger, created by the first, also when they record at once.
#[test]
fn the_deploys_of_one_outside_run_share_one_execution() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir.path().join(".ferry"));
    let def = PipelineDef {
        name: "native".into(),
        mode: Mode::Parallel,
        stages: Vec::new(),
    };
    let run = |text: &str| {
        let (store, def, text) = (store.clone(), def.clone(), text.to_owned());
        std::thread::spawn(move || {
            store
                .create_execution_once(&def, "abc123", &text.as_str().into())
                .unwrap()
                .id
        })
    };
    let first: Vec<String> = (0..4)
        .map(|_| run("CodePipeline execution e-1"))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    assert!(first.iter().all(|id| *id == first[0]), "{first:?}");
    let second = run("CodePipeline execution e-2").join().unwrap();
    assert_ne!(second, first[0]);
    // An ordinary start is a new execution whatever its trigger says.
    let again = store
        .create_execution(&def, "abc123", &"CodePipeline execution e-1".into())
        .unwrap();
    assert_ne!(again.id, first[0]);
    assert_eq!(
        store
            .executions(&ExecutionQuery::newest(Some("native"), 10))
            .unwrap()
            .len(),
        3
    );
}
