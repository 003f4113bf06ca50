//! Crash safety: kill the driving process (SIGKILL) right after each persisted transition
//! of a pipeline in turn, restart, and check that the execution completes with every action's
//! side effect applied exactly once.
//!
//! The test re-executes its own binary as the child (`crash_child`), which installs the
//! engine's transition hook (`FERRY_TEST_CRASH_AFTER=N`: SIGKILL after the N-th commit). The
//! `record` action appends its idempotency key to a file outside the store, and its
//! `reconcile` looks there — as a deploy action looks at the real world.

// The test reports how many crash points it covered.
#![allow(clippy::print_stderr)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use async_trait::async_trait;
use common::*;
use ferry_engine::action::{
    Action, ActionContext, ActionError, ActionKind, ActionOutput, Reconciled,
};
use ferry_engine::model::*;
use ferry_engine::store::{SqliteStore, Store};
use ferry_engine::{Engine, Registry};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
struct RecordConfig {
    file: PathBuf,
}

struct RecordKind;

impl ActionKind for RecordKind {
    type Config = RecordConfig;
    fn name(&self) -> &'static str {
        "record"
    }
    fn build(&self, config: RecordConfig, _def: &ActionDef) -> Result<Arc<dyn Action>, String> {
        Ok(Arc::new(Record(config.file)))
    }
}

/// A side effect outside the store: one line per application, keyed by idempotency key.
struct Record(PathBuf);

fn applied(file: &Path, key: &str) -> bool {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with(key))
}

#[async_trait]
impl Action for Record {
    async fn run(&self, ctx: &ActionContext) -> Result<ActionOutput, ActionError> {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.0)
            .map_err(|e| ActionError::Failed(e.to_string()))?;
        // One write of a whole line: atomic under O_APPEND, so parallel actions do not interleave.
        let line = format!("{} {}.{}\n", ctx.idempotency_key, ctx.stage, ctx.action);
        f.write_all(line.as_bytes())
            .map_err(|e| ActionError::Failed(e.to_string()))?;
        f.sync_all()
            .map_err(|e| ActionError::Failed(e.to_string()))?;
        Ok(ActionOutput {
            outputs: json!({"recorded": true}),
            ..ActionOutput::default()
        })
    }

    async fn reconcile(&self, ctx: &ActionContext) -> Result<Reconciled, ActionError> {
        Ok(if applied(&self.0, &ctx.idempotency_key) {
            Reconciled::Done(Box::new(ActionOutput {
                outputs: json!({"recorded": true, "reconciled": true}),
                ..ActionOutput::default()
            }))
        } else {
            Reconciled::NotDone
        })
    }
}

fn record(name: &str, run_order: u32, file: &Path) -> ActionDef {
    ActionDef {
        name: name.into(),
        kind: "record".into(),
        run_order,
        config: json!({"file": file}),
        inputs: vec![],
        outputs: vec![],
        timeout_secs: None,
    }
}

fn definition(effects: &Path) -> PipelineDef {
    pipeline(
        "crash",
        Mode::Superseded,
        vec![
            stage(
                "build",
                vec![
                    record("a", 1, effects),
                    record("b", 1, effects),
                    record("c", 2, effects),
                ],
            ),
            stage("gate", vec![approval(3600, &[], false)]),
            stage("deploy", vec![record("d", 1, effects)]),
        ],
    )
}

/// The child: start the execution if there is none, else resume it, and drive it.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var("FERRY_CRASH_CHILD_DIR") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let state = dir.join(".ferry");
    let mut store = SqliteStore::open(&state.join("state.db")).unwrap();
    if let Some(hook) = ferry_engine::crash_hook_from_env() {
        store = store.with_transition_hook(hook);
    }
    let store: Arc<dyn Store> = Arc::new(store);
    let mut registry = Registry::with_builtins();
    registry.register(RecordKind);
    let artifacts =
        Arc::new(ferry_engine::artifact::LocalArtifacts::open(&state.join("artifacts")).unwrap());
    let engine = Engine::new(
        store.clone(),
        registry,
        artifacts,
        Arc::new(MapSecrets::default()),
        Arc::new(Recorder::default()),
        settings(&state, true),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let existing = store.executions(Some("crash"), 1).unwrap();
    let id = match existing.first() {
        Some(e) => e.id.clone(),
        None => {
            engine
                .start(&definition(&dir.join("effects")), "r1", "crash test")
                .unwrap()
                .id
        }
    };
    let done = rt.block_on(engine.drive(&id, None)).unwrap();
    assert_eq!(done.status, Status::Succeeded, "{:?}", done.reason);
}

fn run_child(dir: &Path, crash_after: Option<usize>) -> std::process::ExitStatus {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "crash_child",
        "--nocapture",
        "--test-threads",
        "1",
    ])
    .env("FERRY_CRASH_CHILD_DIR", dir);
    match crash_after {
        Some(n) => cmd.env("FERRY_TEST_CRASH_AFTER", n.to_string()),
        None => cmd.env_remove("FERRY_TEST_CRASH_AFTER"),
    };
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
}

#[test]
fn killed_at_every_transition_the_execution_completes_with_each_effect_once() {
    // How many transitions a clean run commits.
    let clean = tempfile::tempdir().unwrap();
    assert!(run_child(clean.path(), None).success());
    let store = SqliteStore::open(&clean.path().join(".ferry/state.db")).unwrap();
    let id = store.executions(Some("crash"), 1).unwrap()[0].id.clone();
    let transitions = store.events(&id).unwrap().len();
    assert!(transitions > 20, "{transitions} transitions");

    let mut reconciled_total = 0;
    for n in 1..=transitions {
        let dir = tempfile::tempdir().unwrap();
        let killed = run_child(dir.path(), Some(n));
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            killed.signal(),
            Some(9),
            "crash point {n}: the child was not killed"
        );
        let resumed = run_child(dir.path(), None);
        assert!(
            resumed.success(),
            "crash point {n}: the restarted run did not complete"
        );

        let store = SqliteStore::open(&dir.path().join(".ferry/state.db")).unwrap();
        let exec = store.executions(Some("crash"), 1).unwrap().remove(0);
        assert_eq!(exec.status, Status::Succeeded, "crash point {n}");
        let effects = std::fs::read_to_string(dir.path().join("effects")).unwrap();
        for action in ["build.a", "build.b", "build.c", "deploy.d"] {
            let times = effects.lines().filter(|l| l.ends_with(action)).count();
            assert_eq!(
                times, 1,
                "crash point {n}: {action} applied {times} times\n{effects}"
            );
        }
        let approvals = store
            .approval(&exec.id, "gate", "approve")
            .unwrap()
            .unwrap();
        assert_eq!(
            approvals.status,
            ApprovalStatus::Approved,
            "crash point {n}"
        );
        let reconciled = store
            .action_runs(&exec.id)
            .unwrap()
            .iter()
            .filter(|r| r.outputs.as_ref().is_some_and(|o| o["reconciled"] == true))
            .count();
        reconciled_total += reconciled;
    }
    eprintln!(
        "{transitions} crash points; {reconciled_total} actions found done by reconcile after a crash"
    );
    assert!(
        reconciled_total > 0,
        "no crash landed between a side effect and its record"
    );
}
