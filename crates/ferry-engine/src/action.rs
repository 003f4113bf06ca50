//! The `Action` trait: the only way the engine runs work.
//!
//! Each kind of action (`source`, `build`, `approval` in this crate, registered by
//! [`crate::builtins`]; `ecs`, `lambda` in ferry-aws) has a typed configuration and registers
//! a factory in a [`Registry`], as Vector's components do. The engine looks an action up by
//! kind and never knows what it does. This module is only the contract: it knows no kind.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::artifact::ArtifactStore;
use crate::mask::Masker;
use crate::model::{ActionDef, ArtifactRef, Execution, ReleaseRecord, Status};
use crate::secrets::SecretResolver;
use crate::store::Store;

/// What an action produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActionOutput {
    /// Stored with the action run (masked first); shown by `ferry status`.
    pub outputs: serde_json::Value,
    /// Artifacts produced, already in the artifact store.
    pub artifacts: Vec<ArtifactRef>,
    /// A deployment for the release ledger.
    pub release: Option<ReleaseRecord>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ActionError {
    #[error("{0}")]
    Failed(String),
    /// A deploy that went wrong and was put back: the action fails, and the ledger records
    /// the rollback.
    #[error("{reason}; rolled back")]
    RolledBack {
        reason: String,
        release: Box<ReleaseRecord>,
    },
    /// Stopped by `ferry stop --force` or a timeout.
    #[error("cancelled")]
    Cancelled,
}

/// What `reconcile` found in the real world after a crash.
#[derive(Debug, Clone, PartialEq)]
pub enum Reconciled {
    /// The side effect happened: record this and move on.
    Done(Box<ActionOutput>),
    /// It did not: run the action (same attempt, same idempotency key).
    NotDone,
    /// The world is in a state the action cannot continue from.
    Failed(String),
}

#[async_trait]
pub trait Action: Send + Sync {
    /// Does the work. Side effects carry `ctx.idempotency_key`.
    async fn run(&self, ctx: &ActionContext) -> Result<ActionOutput, ActionError>;

    /// After a crash during `run`: look at the real world before anything is retried.
    /// The default re-runs the action, which is right for work without outside effects.
    async fn reconcile(&self, _ctx: &ActionContext) -> Result<Reconciled, ActionError> {
        Ok(Reconciled::NotDone)
    }

    /// Whether it reads only what every machine can — its configuration, its input
    /// artifacts, AWS — so that any worker may run it when the artifacts are shared too.
    /// The source (a repository path) and local builds (the project's files) read the
    /// driver's machine.
    fn runs_anywhere(&self) -> bool {
        true
    }
}

/// A kind of action: its name, its typed configuration, and how to make one.
pub trait ActionKind: Send + Sync + 'static {
    type Config: DeserializeOwned;
    fn name(&self) -> &'static str;
    fn build(&self, config: Self::Config, def: &ActionDef) -> Result<Arc<dyn Action>, String>;
}

type Factory = Box<dyn Fn(&ActionDef) -> Result<Arc<dyn Action>, String> + Send + Sync>;

/// The action kinds an engine knows.
#[derive(Default)]
pub struct Registry {
    kinds: HashMap<&'static str, Factory>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut kinds: Vec<&str> = self.kinds.keys().copied().collect();
        kinds.sort_unstable();
        f.debug_struct("Registry").field("kinds", &kinds).finish()
    }
}

impl Registry {
    pub fn register<K: ActionKind>(&mut self, kind: K) {
        let name = kind.name();
        let kind = Arc::new(kind);
        self.kinds.insert(
            name,
            Box::new(move |def: &ActionDef| {
                let config: K::Config =
                    serde_json::from_value(def.config.clone()).map_err(|e| {
                        format!(
                            "the configuration of `{}` ({} action) is invalid: {e}",
                            def.name, def.kind
                        )
                    })?;
                kind.build(config, def)
            }),
        );
    }

    pub fn action(&self, def: &ActionDef) -> Result<Arc<dyn Action>, String> {
        let factory = self
            .kinds
            .get(def.kind.as_str())
            .ok_or_else(|| format!("no action kind `{}` is registered", def.kind))?;
        factory(def)
    }

    pub fn knows(&self, kind: &str) -> bool {
        self.kinds.contains_key(kind)
    }
}

/// What the outside world hears from an execution: the live view and `ferry logs --follow`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RunEvent {
    Execution {
        id: String,
        status: Status,
        reason: Option<String>,
    },
    Stage {
        stage: String,
        status: Status,
    },
    Action {
        stage: String,
        action: String,
        attempt: u32,
        status: Status,
        detail: Option<String>,
    },
    Log {
        stage: String,
        action: String,
        line: String,
    },
    /// Waiting for something other than an action: a stage lock, an approval.
    Waiting {
        stage: String,
        why: String,
    },
    /// A deploy was recorded in the release ledger.
    Release {
        stage: String,
        environment: String,
        target: String,
        version: String,
        /// `Deployed`, `RolledBack`, `Failed`.
        outcome: String,
    },
}

pub trait Observer: Send + Sync {
    fn event(&self, event: RunEvent);
}

/// An observer that hears nothing.
#[derive(Debug, Default)]
pub struct Silent;

impl Observer for Silent {
    fn event(&self, _: RunEvent) {}
}

/// The log of one action run: every line masked, written to its file and to the observer.
pub struct ActionLog {
    stage: String,
    action: String,
    file: Mutex<Option<File>>,
    masker: Masker,
    observer: Arc<dyn Observer>,
}

impl ActionLog {
    pub fn new(
        path: &std::path::Path,
        stage: &str,
        action: &str,
        masker: Masker,
        observer: Arc<dyn Observer>,
    ) -> std::io::Result<ActionLog> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(ActionLog {
            stage: stage.into(),
            action: action.into(),
            file: Mutex::new(Some(file)),
            masker,
            observer,
        })
    }

    /// Writes a line (masking it).
    pub fn line(&self, text: &str) {
        let masked = self.masker.mask(text);
        if let Some(file) = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_mut()
        {
            let _ = writeln!(file, "{masked}");
        }
        self.observer.event(RunEvent::Log {
            stage: self.stage.clone(),
            action: self.action.clone(),
            line: masked,
        });
    }

    pub fn masker(&self) -> &Masker {
        &self.masker
    }

    /// Says the action waits for someone: a line in the log and a `Waiting` event.
    pub fn awaiting(&self, how_to_continue: &str) {
        self.line(&format!("[ferry] waiting for approval: {how_to_continue}"));
        self.observer.event(RunEvent::Waiting {
            stage: self.stage.clone(),
            why: format!("approval — {how_to_continue}"),
        });
    }

    /// Says the stage is held by its entry gates: a line in the log per hold and a `Waiting`
    /// event.
    pub fn held(&self, holds: &[String]) {
        for hold in holds {
            self.line(&format!("[ferry] held: {hold}"));
        }
        self.observer.event(RunEvent::Waiting {
            stage: self.stage.clone(),
            why: format!("gates — {}", holds.join("; ")),
        });
    }
}

/// Engine-wide settings an action may read.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Approvals approve themselves (`ferry run --auto-approve`).
    pub auto_approve: bool,
    /// Who is running ferry, for approvals and the ledger.
    pub identity: String,
    /// How often to look for an approval decision or a free stage.
    pub poll: std::time::Duration,
    /// Where the state lives (`.ferry/`).
    pub state_dir: PathBuf,
    /// What time it is, for actions whose subject is time (a gate's windows and soak).
    pub clock: Clock,
}

/// The time an action reads: the system's, or one a test sets.
#[derive(Debug, Clone, Default)]
pub struct Clock(Option<Arc<std::sync::atomic::AtomicI64>>);

impl Clock {
    pub fn system() -> Clock {
        Clock(None)
    }

    /// A clock that stands at `at_ms` until [`Clock::set`] moves it.
    pub fn manual(at_ms: i64) -> Clock {
        Clock(Some(Arc::new(at_ms.into())))
    }

    /// Moves a manual clock; the system clock is not moved.
    pub fn set(&self, at_ms: i64) {
        if let Some(t) = &self.0 {
            t.store(at_ms, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        self.0.as_ref().map_or_else(crate::model::now_ms, |t| {
            t.load(std::sync::atomic::Ordering::SeqCst)
        })
    }
}

/// The worker slot an action runs in (of `Engine::with_slots`; `actions_at_once` under
/// `ferry serve`). An action that waits for people or time — an approval, a gate — gives it
/// back while it waits, so that waiting holds no worker and a server full of pending approvals
/// still runs builds and deploys.
#[derive(Clone, Default)]
pub struct Slot {
    permit: Arc<Mutex<Option<tokio::sync::OwnedSemaphorePermit>>>,
    /// Told when the slot is given back early: a driver waiting for a slot leases at once.
    freed: Option<Arc<tokio::sync::Notify>>,
}

impl Slot {
    pub fn holding(
        permit: tokio::sync::OwnedSemaphorePermit,
        freed: Option<Arc<tokio::sync::Notify>>,
    ) -> Slot {
        Slot {
            permit: Arc::new(Mutex::new(Some(permit))),
            freed,
        }
    }

    /// Gives the slot back (once; later calls do nothing). What the action does after is not
    /// counted against its worker.
    pub fn release(&self) {
        let had = self
            .permit
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let (Some(permit), Some(freed)) = (had, &self.freed) {
            drop(permit);
            freed.notify_waiters();
        }
    }
}

/// Everything an action run can see and use.
pub struct ActionContext {
    pub execution: Execution,
    pub stage: String,
    pub environment: Option<String>,
    pub action: String,
    pub attempt: u32,
    pub idempotency_key: String,
    /// A fresh directory for this attempt.
    pub workdir: PathBuf,
    /// The artifacts it reads, in the order the action declares them.
    pub inputs: Vec<ArtifactRef>,
    /// The artifacts it must produce.
    pub outputs: Vec<String>,
    pub log: ActionLog,
    /// Cancelled on a forced stop or a timeout: stop and return `ActionError::Cancelled`.
    pub cancel: CancellationToken,
    pub store: Arc<dyn Store>,
    pub artifacts: Arc<dyn ArtifactStore>,
    pub secrets: Arc<dyn SecretResolver>,
    pub settings: Settings,
    /// The worker slot it runs in: [`Slot::release`] it before a long wait.
    pub slot: Slot,
}

impl ActionContext {
    /// The input artifact of that name.
    pub fn input(&self, name: &str) -> Option<&ArtifactRef> {
        self.inputs.iter().find(|a| a.name == name)
    }
}
