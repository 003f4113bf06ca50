//! Helpers for the engine's tests: an engine on a temporary state directory.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ferry_engine::action::{
    Action, ActionContext, ActionError, ActionKind, ActionOutput, Observer, Reconciled, RunEvent,
    Settings,
};
use ferry_engine::artifact::LocalArtifacts;
use ferry_engine::model::*;
use ferry_engine::secrets::{Parameter, SecretRef, SecretResolver};
use ferry_engine::store::{SqliteStore, Store};
use ferry_engine::{Engine, Registry};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;

/// Secrets from a map: the engine's own resolver interface, no AWS involved.
#[derive(Default)]
pub struct MapSecrets(pub HashMap<String, String>);

#[async_trait]
impl SecretResolver for MapSecrets {
    async fn resolve(&self, secret: &SecretRef) -> Result<SecretString, String> {
        self.0
            .get(&secret.secret_id)
            .map(|v| SecretString::from(v.clone()))
            .ok_or_else(|| format!("no secret `{}`", secret.secret_id))
    }

    /// A parameter is `ssm:<name>` in the map; a name that starts with `/secure/` is a
    /// SecureString.
    async fn parameter(&self, name: &str) -> Result<Parameter, String> {
        self.0
            .get(&format!("ssm:{name}"))
            .map(|v| Parameter {
                value: SecretString::from(v.clone()),
                secure: name.starts_with("/secure/"),
            })
            .ok_or_else(|| format!("no parameter `{name}`"))
    }
}

/// Records every event, for assertions on what a live view would show.
#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<RunEvent>>);

impl Observer for Recorder {
    fn event(&self, event: RunEvent) {
        self.0.lock().unwrap().push(event);
    }
}

impl Recorder {
    pub fn log_lines(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| {
                if let RunEvent::Log { line, .. } = e {
                    Some(line.clone())
                } else {
                    None
                }
            })
            .collect()
    }
}

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub engine: Engine,
    pub recorder: Arc<Recorder>,
}

pub fn settings(state: &Path, auto_approve: bool) -> Settings {
    Settings {
        auto_approve,
        identity: "tester".into(),
        poll: Duration::from_millis(50),
        state_dir: state.to_owned(),
        clock: ferry_engine::action::Clock::system(),
    }
}

/// The store of the state directory `state`: SQLite in it, or with `FERRY_TEST_STATE=postgres`
/// a PostgreSQL database of its own on the cluster `FERRY_TEST_POSTGRES` names (scripts/test
/// starts one), the same database each time the same directory is opened. The suite runs once
/// on each backend, unchanged; asked for PostgreSQL without a cluster, it fails rather than
/// skip.
pub fn open_store(state: &Path) -> Arc<dyn Store> {
    open_store_hooked(state, None)
}

/// [`open_store`], running `hook` after each committed transition (the crash test).
pub fn open_store_hooked(
    state: &Path,
    hook: Option<ferry_engine::store::TransitionHook>,
) -> Arc<dyn Store> {
    if std::env::var("FERRY_TEST_STATE").as_deref() != Ok("postgres") {
        let mut store = SqliteStore::open(&state.join("state.db")).unwrap();
        if let Some(hook) = hook {
            store = store.with_transition_hook(hook);
        }
        return Arc::new(store);
    }
    let admin = std::env::var("FERRY_TEST_POSTGRES").expect(
        "FERRY_TEST_STATE=postgres needs FERRY_TEST_POSTGRES, a PostgreSQL admin URL (scripts/test starts a cluster)",
    );
    let digest = state
        .display()
        .to_string()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    let name = format!("ferry_test_{digest:016x}");
    ferry_engine::store::create_database(&admin, &name).unwrap();
    let url = match admin.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => panic!("FERRY_TEST_POSTGRES `{admin}` names no database"),
    };
    let mut store = ferry_engine::store::PostgresStore::open(&url).unwrap();
    if let Some(hook) = hook {
        store = store.with_transition_hook(hook);
    }
    Arc::new(store)
}

pub fn engine_at(
    state: &Path,
    registry: Registry,
    secrets: HashMap<String, String>,
    auto_approve: bool,
) -> (Engine, Arc<Recorder>) {
    let store = open_store(state);
    let artifacts = Arc::new(LocalArtifacts::open(&state.join("artifacts")).unwrap());
    let recorder = Arc::new(Recorder::default());
    let engine = Engine::new(
        store,
        registry,
        artifacts,
        Arc::new(MapSecrets(secrets)),
        recorder.clone(),
        settings(state, auto_approve),
    );
    (engine, recorder)
}

pub fn harness(secrets: &[(&str, &str)], auto_approve: bool) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let secrets = secrets
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let (engine, recorder) = engine_at(
        &dir.path().join(".ferry"),
        Registry::with_builtins(),
        secrets,
        auto_approve,
    );
    Harness {
        dir,
        engine,
        recorder,
    }
}

/// An execution driven in the background.
pub type Driving = tokio::task::JoinHandle<ferry_engine::driver::Result<Execution>>;

/// Drives execution `id` in the background until it asks for an approval; returns the
/// request and the running drive.
pub async fn drive_to_approval(engine: &Engine, id: &str) -> (Approval, Driving) {
    let driver = engine.clone();
    let owned = id.to_owned();
    let driving = tokio::spawn(async move { driver.drive(&owned, None).await });
    loop {
        if let Some(a) = engine.store().pending_approvals(Some(id)).unwrap().pop() {
            return (a, driving);
        }
        assert!(
            !driving.is_finished(),
            "the execution ended before its approval: {:?}",
            engine.store().execution(id).unwrap().unwrap().reason
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Harness {
    /// [`drive_to_approval`] on the harness's engine.
    pub async fn drive_to_approval(&self, id: &str) -> (Approval, Driving) {
        drive_to_approval(&self.engine, id).await
    }

    /// Runs one build, stage `build` after a source stage of `repo`, to the end: the finished
    /// execution and the build's log.
    pub async fn run_build(&self, repo: &Path, build: ActionDef) -> (Execution, String) {
        let name = build.name.clone();
        let def = pipeline(
            "one-build",
            Mode::Parallel,
            vec![source_stage(repo), stage("build", vec![build])],
        );
        let exec = self.engine.start(&def, "local", "test").unwrap();
        let done = self.engine.drive(&exec.id, None).await.unwrap();
        let log = log_of(&self.engine, &exec.id, "build", &name);
        (done, log)
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join(".ferry")
    }

    /// A source directory (not a git repository) holding `files`.
    pub fn source(&self, files: &[(&str, &str)]) -> PathBuf {
        let src = self.dir.path().join("repo");
        for (name, text) in files {
            let path = src.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        src
    }
}

pub fn source_stage(repo: &Path) -> StageDef {
    StageDef {
        name: "source".into(),
        environment: None,
        actions: vec![ActionDef {
            name: "checkout".into(),
            kind: "source".into(),
            run_order: 1,
            config: json!({"repo": repo.display().to_string()}),
            inputs: vec![],
            outputs: vec!["source".into()],
            timeout_secs: None,
        }],
    }
}

pub fn build(name: &str, buildspec: &str, inputs: &[&str], outputs: &[&str]) -> ActionDef {
    ActionDef {
        name: name.into(),
        kind: "build".into(),
        run_order: 1,
        config: json!({"inline": {"text": buildspec, "origin": "test"}}),
        inputs: inputs.iter().map(|s| (*s).to_owned()).collect(),
        outputs: outputs.iter().map(|s| (*s).to_owned()).collect(),
        timeout_secs: None,
    }
}

pub fn approval(timeout_secs: u64, approvers: &[&str], comment_required: bool) -> ActionDef {
    ActionDef {
        name: "approve".into(),
        kind: "approval".into(),
        run_order: 0,
        config: json!({"approvers": approvers, "timeout_secs": timeout_secs, "comment_required": comment_required}),
        inputs: vec![],
        outputs: vec![],
        timeout_secs: None,
    }
}

pub fn stage(name: &str, actions: Vec<ActionDef>) -> StageDef {
    StageDef {
        name: name.into(),
        environment: None,
        actions,
    }
}

pub fn pipeline(name: &str, mode: Mode, stages: Vec<StageDef>) -> PipelineDef {
    PipelineDef {
        name: name.into(),
        mode,
        stages,
    }
}

pub fn log_of(engine: &Engine, id: &str, stage: &str, action: &str) -> String {
    let runs = engine.store().action_runs(id).unwrap();
    let run = runs
        .iter()
        .filter(|r| r.stage == stage && r.action == action)
        .max_by_key(|r| r.attempt)
        .unwrap();
    std::fs::read_to_string(run.log_path.as_ref().unwrap()).unwrap()
}

/// An action whose side effect is a line in a file: its idempotency key, `stage.action`, the
/// identity of the engine that ran it and the execution's id.
#[derive(Deserialize)]
pub struct RecordConfig {
    file: PathBuf,
    #[serde(default)]
    meet: Meeting,
}

/// How many distinct workers must have recorded a line — in the whole file, and for this
/// action's execution — before a recording action ends. A test that asserts the work was
/// shared waits for the sharing instead of hoping the scheduler of a loaded machine shares
/// it: each worker runs one action at a time, so the others must take the rest.
#[derive(Clone, Copy, Default, Deserialize)]
pub struct Meeting {
    workers: usize,
    workers_in_execution: usize,
}

pub struct RecordKind;

impl ActionKind for RecordKind {
    type Config = RecordConfig;
    fn name(&self) -> &'static str {
        "record"
    }
    fn build(&self, config: RecordConfig, _def: &ActionDef) -> Result<Arc<dyn Action>, String> {
        Ok(Arc::new(Record(config.file, config.meet)))
    }
}

/// A side effect outside the store: one line per application, keyed by idempotency key.
pub struct Record(PathBuf, Meeting);

pub fn applied(file: &Path, key: &str) -> bool {
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
        // The worker that ran it last: `Settings::identity`, each worker's own in a test.
        let line = format!(
            "{} {}.{} {} {}\n",
            ctx.idempotency_key, ctx.stage, ctx.action, ctx.settings.identity, ctx.execution.id
        );
        f.write_all(line.as_bytes())
            .map_err(|e| ActionError::Failed(e.to_string()))?;
        f.sync_all()
            .map_err(|e| ActionError::Failed(e.to_string()))?;
        let here = format!("{}.{}", ctx.stage, ctx.action);
        if std::env::var("FERRY_TEST_CRASH_IN_EFFECT").is_ok_and(|v| v == here) {
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        }
        self.meet(ctx).await?;
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

impl Record {
    /// Waits, as long as a slow machine needs, until the meeting's workers have recorded.
    async fn meet(&self, ctx: &ActionContext) -> Result<(), ActionError> {
        let Meeting {
            workers,
            workers_in_execution,
        } = self.1;
        let deadline = std::time::Instant::now() + Duration::from_secs(300);
        loop {
            let lines = std::fs::read_to_string(&self.0).unwrap_or_default();
            let seen = |execution: Option<&str>| {
                lines
                    .lines()
                    .map(|l| l.split_whitespace().collect::<Vec<_>>())
                    .filter(|f| execution.is_none_or(|id| f.get(3) == Some(&id)))
                    .filter_map(|f| f.get(2).map(|w| w.to_string()))
                    .collect::<std::collections::BTreeSet<_>>()
                    .len()
            };
            let (all, here) = (seen(None), seen(Some(&ctx.execution.id)));
            if all >= workers && here >= workers_in_execution {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                return Err(ActionError::Failed(format!(
                    "{all} of {workers} workers and {here} of {workers_in_execution} in this \
                     execution recorded: the others never took an action"
                )));
            }
            tokio::select! {
                () = ctx.cancel.cancelled() => return Err(ActionError::Cancelled),
                () = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
        }
    }
}

pub fn record(name: &str, run_order: u32, file: &Path) -> ActionDef {
    record_meeting(name, run_order, file, 0, 0)
}

/// A recording action that ends only once `workers` distinct workers have recorded, and
/// `workers_in_execution` of them in its own execution (see [`Meeting`]).
pub fn record_meeting(
    name: &str,
    run_order: u32,
    file: &Path,
    workers: usize,
    workers_in_execution: usize,
) -> ActionDef {
    ActionDef {
        name: name.into(),
        kind: "record".into(),
        run_order,
        config: json!({
            "file": file,
            "meet": {"workers": workers, "workers_in_execution": workers_in_execution},
        }),
        inputs: vec![],
        outputs: vec![],
        timeout_secs: None,
    }
}
