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
