//! The engine: starts executions and drives them through their stages.
//!
//! One process drives an execution at a time (a lease with a heartbeat in the store). Stages
//! run in order; inside a stage, actions run by run order, in parallel within one order.
//! The driver queues the actions of a run order in the store; a worker — the driver itself,
//! or on a shared store another process's [`Engine::work`] — leases one before it runs it and
//! renews the lease while it runs. Each action run is persisted as `InProgress` before the
//! action starts; after a crash, or when a worker's lease expired, the next worker finds it
//! so and calls the action's `reconcile` before anything is retried.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::action::{
    Action, ActionContext, ActionError, ActionLog, ActionOutput, Observer, Reconciled, Registry,
    RunEvent, Settings, Slot,
};
use crate::approval::rules::{self, Refusal};
use crate::artifact::ArtifactStore;
use crate::mask::Masker;
use crate::model::*;
use crate::secrets::SecretResolver;
use crate::store::{ActionKey, Decision, StageEntry, Store, StoreError};

/// A driver whose heartbeat is older than this is presumed dead.
const STALE_MS: i64 = 15_000;
const HEARTBEAT: Duration = Duration::from_secs(2);
/// How long an action lease lasts unless renewed (every [`HEARTBEAT`]).
const LEASE_MS: i64 = 15_000;
/// How long a cancelled action gets to clean up (kill its processes) after a timeout.
const CANCEL_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no execution `{0}`")]
    NotFound(String),
    #[error(
        "execution `{id}` is being driven by another ferry process ({driver}); wait for it, or stop it with `ferry stop {id}`"
    )]
    Busy { id: String, driver: String },
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error("{0}")]
    Invalid(String),
}

/// A request the execution's state does not allow.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, thiserror::Error)]
#[serde(tag = "refused", rename_all = "snake_case")]
pub enum Refused {
    /// No approval waits in that stage.
    #[error("no approval waits in stage `{stage}` of `{execution}` ({})", waiting_hint(.waiting))]
    NoApprovalWaiting {
        execution: String,
        stage: String,
        /// The stages that do wait.
        waiting: Vec<String>,
    },
    /// Several approvals wait in the stage and the caller may decide more than one of them.
    #[error(
        "approvals {} wait in stage `{stage}` of `{execution}` and you may decide more than one: name the one you decide (`--action NAME`, or `action` in the request)",
        .actions.join(", ")
    )]
    SeveralApprovalsWaiting {
        execution: String,
        stage: String,
        actions: Vec<String>,
    },
    /// The approval rules refuse the decision.
    #[error(transparent)]
    Approval(#[from] Refusal),
    #[error("only a failed or stopped execution can be retried; `{execution}` is {}", .status.as_str())]
    NotRetryable { execution: String, status: Status },
    #[error("`{execution}` has no stage `{stage}`")]
    NoSuchStage { execution: String, stage: String },
    #[error("stage `{stage}` of `{execution}` is {}, not failed", .status.as_str())]
    StageNotFailed {
        execution: String,
        stage: String,
        status: Status,
    },
    #[error("`{execution}` has already ended: {}", .status.as_str())]
    AlreadyEnded { execution: String, status: Status },
    /// No gate holds that stage, so there is nothing to override.
    #[error("no gate holds stage `{stage}` of `{execution}` ({})", holding_hint(.holding))]
    NoGateHolding {
        execution: String,
        stage: String,
        /// The stages whose gates do hold.
        holding: Vec<String>,
    },
    #[error("an override needs a reason: the ledger and the audit log keep why gates were passed")]
    ReasonRequired,
}

fn holding_hint(holding: &[String]) -> String {
    if holding.is_empty() {
        "no gate of it holds".to_owned()
    } else {
        let stages: Vec<String> = holding.iter().map(|s| format!("`{s}`")).collect();
        format!("held: {}", stages.join(", "))
    }
}

fn waiting_hint(waiting: &[String]) -> String {
    if waiting.is_empty() {
        "no stage of it waits for approval".to_owned()
    } else {
        let stages: Vec<String> = waiting.iter().map(|s| format!("`{s}`")).collect();
        format!("waiting: {}", stages.join(", "))
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// How one action run ended, for its stage.
enum Ended {
    Succeeded,
    Failed(String),
    Stopped,
}

/// The engine. Cheap to clone: every part is shared.
#[derive(Clone)]
pub struct Engine {
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
    artifacts: Arc<dyn ArtifactStore>,
    secrets: Arc<dyn SecretResolver>,
    observer: Arc<dyn Observer>,
    settings: Settings,
    masker: Masker,
    driver_id: String,
    /// How many actions this engine runs at once, its own executions' and others'.
    slots: Arc<tokio::sync::Semaphore>,
    /// Told when an action this engine (or a clone) ran ends or gives its slot back, so that a
    /// driver waiting for it looks at once rather than at its next poll.
    ended: Arc<tokio::sync::Notify>,
}

impl Engine {
    pub fn new(
        store: Arc<dyn Store>,
        registry: Registry,
        artifacts: Arc<dyn ArtifactStore>,
        secrets: Arc<dyn SecretResolver>,
        observer: Arc<dyn Observer>,
        settings: Settings,
    ) -> Engine {
        Engine {
            store,
            registry: Arc::new(registry),
            artifacts,
            secrets,
            observer,
            settings,
            masker: Masker::default(),
            driver_id: format!("{}@{}", std::process::id(), hostname()),
            slots: Arc::new(tokio::sync::Semaphore::new(
                tokio::sync::Semaphore::MAX_PERMITS,
            )),
            ended: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Runs at most as many actions at once as `slots` has permits, sharing them with every
    /// engine given the same semaphore (one per process, as `ferry serve` does). Unlimited
    /// by default.
    #[must_use]
    pub fn with_slots(mut self, slots: Arc<tokio::sync::Semaphore>) -> Engine {
        self.slots = slots;
        self
    }

    /// The same engine as another worker: `id` names it in the driver lease in place of
    /// this process's `pid@host` (several workers in one process, as the scheduler's
    /// benchmark and tests run them). A driver not of that form is presumed alive until its
    /// heartbeat goes stale.
    #[must_use]
    pub fn with_driver_id(mut self, id: &str) -> Engine {
        id.clone_into(&mut self.driver_id);
        self
    }

    /// The permits of the actions this engine runs at once ([`Engine::with_slots`]).
    pub fn slots(&self) -> &Arc<tokio::sync::Semaphore> {
        &self.slots
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn masker(&self) -> &Masker {
        &self.masker
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Creates an execution of `definition` at `revision`, after checking that every action
    /// kind is known and every configuration reads.
    pub fn start(
        &self,
        definition: &PipelineDef,
        revision: &str,
        trigger: impl Into<Trigger>,
    ) -> Result<Execution> {
        for stage in &definition.stages {
            for action in &stage.actions {
                self.registry
                    .action(action)
                    .map_err(|e| EngineError::Invalid(format!("stage `{}`: {e}", stage.name)))?;
            }
        }
        Ok(self
            .store
            .create_execution(definition, revision, &trigger.into())?)
    }

    fn load(&self, id: &str) -> Result<Execution> {
        self.store
            .execution(id)?
            .ok_or_else(|| EngineError::NotFound(id.to_owned()))
    }

    /// The live process driving an execution, if any.
    pub fn live_driver(&self, exec: &Execution) -> Option<String> {
        live_driver(exec)
    }

    /// Drives an execution until it ends, or waits for the end of stage `until`. Resumes one
    /// that a crash interrupted.
    pub async fn drive(&self, id: &str, until: Option<&str>) -> Result<Execution> {
        let exec = self.load(id)?;
        if exec.status.is_final() {
            return Ok(exec);
        }
        let previous = exec.driver.clone();
        if let Err(holder) = self
            .store
            .claim_driver(id, &self.driver_id, STALE_MS, None)?
        {
            // A driver on this machine that is no longer running holds no lease.
            if driver_alive(&holder) {
                return Err(EngineError::Busy {
                    id: id.to_owned(),
                    driver: holder,
                });
            }
            if let Err(holder) =
                self.store
                    .claim_driver(id, &self.driver_id, STALE_MS, Some(&holder))?
            {
                return Err(EngineError::Busy {
                    id: id.to_owned(),
                    driver: holder,
                });
            }
        }
        // What a dead driver had leased, it will not renew: lease it again at once. So too
        // what this engine's own earlier drive, abandoned, left (one process drives an
        // execution once at a time; its workers for other drivers have names of their own).
        self.store.free_action_leases(id, &self.driver_id)?;
        if let Some(previous) = previous
            && previous != self.driver_id
            && !driver_alive(&previous)
        {
            self.store.free_action_leases(id, &previous)?;
        }
        let cancel = CancellationToken::new();
        let graceful = Arc::new(AtomicBool::new(false));
        // Ends with this future, also when it is dropped.
        let _watcher = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(watch(
            self.store.clone(),
            id.to_owned(),
            self.driver_id.clone(),
            cancel.clone(),
            graceful.clone(),
        )));
        let result = self.run_execution(exec, until, &cancel, &graceful).await;
        let _ = self.store.release_driver(id, &self.driver_id);
        result
    }

    fn finish(&self, id: &str, status: Status, reason: Option<String>) -> Result<Execution> {
        self.store
            .set_execution_status(id, status, reason.as_deref())?;
        self.observer.event(RunEvent::Execution {
            id: id.to_owned(),
            status,
            reason,
        });
        self.load(id)
    }

    async fn run_execution(
        &self,
        exec: Execution,
        until: Option<&str>,
        cancel: &CancellationToken,
        graceful: &AtomicBool,
    ) -> Result<Execution> {
        let id = exec.id.clone();
        let def = exec.definition.clone();
        self.observer.event(RunEvent::Execution {
            id: id.clone(),
            status: Status::InProgress,
            reason: None,
        });
        let runs = self.store.stage_runs(&id)?;
        for (i, stage) in def.stages.iter().enumerate() {
            let status = runs
                .iter()
                .find(|r| r.stage == stage.name)
                .map_or(Status::Pending, |r| r.status);
            if status == Status::Succeeded {
                continue;
            }
            if graceful.load(Ordering::Relaxed) {
                return self.finish(&id, Status::Stopped, Some("stopped by `ferry stop`".into()));
            }
            if stage.environment.is_some()
                && let Some(block) = self.store.release_block(&id)?
            {
                self.store
                    .set_stage_status(&id, &stage.name, Status::Failed)?;
                return self.finish(&id, Status::Failed, Some(block.refusal()));
            }
            let mut told = false;
            loop {
                match self.store.enter_stage(&exec, &stage.name, def.mode)? {
                    StageEntry::Entered => break,
                    StageEntry::Superseded { by } => {
                        self.store
                            .set_stage_status(&id, &stage.name, Status::Superseded)?;
                        return self.finish(
                            &id,
                            Status::Superseded,
                            Some(format!("superseded by {by} before stage `{}`", stage.name)),
                        );
                    }
                    StageEntry::Waiting { holder } => {
                        if !told {
                            self.observer.event(RunEvent::Waiting {
                                stage: stage.name.clone(),
                                why: format!("{holder} holds the stage"),
                            });
                            told = true;
                        }
                        tokio::select! {
                            () = tokio::time::sleep(self.settings.poll) => {}
                            () = cancel.cancelled() => {}
                        }
                        if graceful.load(Ordering::Relaxed) {
                            return self.finish(
                                &id,
                                Status::Stopped,
                                Some("stopped by `ferry stop`".into()),
                            );
                        }
                    }
                }
            }
            self.store
                .set_stage_status(&id, &stage.name, Status::InProgress)?;
            self.observer.event(RunEvent::Stage {
                stage: stage.name.clone(),
                status: Status::InProgress,
            });
            let ended = self.run_stage(&exec, stage, cancel, graceful).await?;
            let (status, end) = match ended {
                Ended::Succeeded => (Status::Succeeded, None),
                Ended::Failed(why) => (Status::Failed, Some((Status::Failed, why))),
                Ended::Stopped => (
                    Status::Stopped,
                    Some((Status::Stopped, "stopped by `ferry stop`".to_owned())),
                ),
            };
            self.store.set_stage_status(&id, &stage.name, status)?;
            self.store.leave_stage(&exec.pipeline, &stage.name, &id)?;
            self.observer.event(RunEvent::Stage {
                stage: stage.name.clone(),
                status,
            });
            if let Some((status, why)) = end {
                return self.finish(&id, status, Some(why));
            }
            if until == Some(stage.name.as_str()) && i + 1 < def.stages.len() {
                return self.finish(
                    &id,
                    Status::Stopped,
                    Some(format!("stopped after stage `{}` (--until)", stage.name)),
                );
            }
        }
        self.finish(&id, Status::Succeeded, None)
    }

    async fn run_stage(
        &self,
        exec: &Execution,
        stage: &StageDef,
        cancel: &CancellationToken,
        graceful: &AtomicBool,
    ) -> Result<Ended> {
        let runs = self.store.action_runs(&exec.id)?;
        let mut groups: BTreeMap<u32, Vec<&ActionDef>> = BTreeMap::new();
        for action in &stage.actions {
            groups.entry(action.run_order).or_default().push(action);
        }
        for group in groups.values() {
            if graceful.load(Ordering::Relaxed) {
                return Ok(Ended::Stopped);
            }
            let portable = self.artifacts.shared();
            let mut wanted = Vec::new();
            for &def in group {
                let latest = runs
                    .iter()
                    .filter(|r| r.stage == stage.name && r.action == def.name)
                    .max_by_key(|r| r.attempt);
                let attempt = match latest {
                    Some(r) if r.status == Status::Succeeded => continue,
                    // Interrupted, or running on another worker: the same attempt.
                    Some(r)
                        if matches!(r.status, Status::InProgress | Status::AwaitingApproval) =>
                    {
                        r.attempt
                    }
                    // Failed or stopped, and the stage is running again: a retry.
                    Some(r) => r.attempt + 1,
                    None => 1,
                };
                let runs_anywhere = self.registry.action(def).is_ok_and(|a| a.runs_anywhere());
                self.store.queue_action(
                    &ActionKey {
                        execution: &exec.id,
                        stage: &stage.name,
                        action: &def.name,
                        attempt,
                    },
                    portable && runs_anywhere,
                )?;
                wanted.push((def, attempt));
            }
            match self.run_queued(exec, stage, &wanted, cancel).await? {
                Ended::Succeeded => {}
                ended => return Ok(ended),
            }
        }
        Ok(Ended::Succeeded)
    }

    /// Runs the queued attempts of one run order to their end: leases what this engine's
    /// slots allow, and waits for the rest, which other workers lease.
    async fn run_queued(
        &self,
        exec: &Execution,
        stage: &StageDef,
        wanted: &[(&ActionDef, u32)],
        cancel: &CancellationToken,
    ) -> Result<Ended> {
        let mut local = tokio::task::JoinSet::new();
        let mut running: BTreeMap<tokio::task::Id, ActionLease> = BTreeMap::new();
        let changes = self.store.action_changes();
        loop {
            // Armed before the store is read, so that a change between the two is not missed:
            // another worker's action ended, or freed leases this engine may take.
            let changed = changes.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            // And before leasing: one of this engine's actions may end, or give its slot back,
            // while the loop below leases.
            let told = self.ended.notified();
            tokio::pin!(told);
            told.as_mut().enable();
            while let Ok(permit) = self.slots.clone().try_acquire_owned() {
                let Some(lease) =
                    self.store
                        .lease_action(&self.driver_id, Some(&exec.id), now_ms(), LEASE_MS)?
                else {
                    break;
                };
                let (this, token, held) = (self.clone(), cancel.child_token(), lease.clone());
                // A waiting action that gives its slot back wakes this loop to lease again.
                let slot = Slot::holding(permit, Some(self.ended.clone()));
                let task = local.spawn(async move { this.run_leased(held, slot, token).await });
                running.insert(task.id(), lease);
            }
            let runs = self.store.action_runs(&exec.id)?;
            let ended: Vec<&ActionRun> = wanted
                .iter()
                .filter_map(|(def, attempt)| {
                    runs.iter().find(|r| {
                        r.stage == stage.name
                            && r.action == def.name
                            && r.attempt == *attempt
                            && r.status.is_final()
                    })
                })
                .collect();
            if ended.len() == wanted.len() && local.is_empty() {
                return Ok(outcome(stage, &ended));
            }
            tokio::select! {
                Some(joined) = local.join_next_with_id(), if !local.is_empty() => {
                    match joined {
                        Ok((task, result)) => {
                            running.remove(&task);
                            result?;
                        }
                        // A panic: the action ends failed, so the stage does not wait on it.
                        Err(e) => {
                            if let Some(lease) = running.remove(&e.id()) {
                                self.store.finish_action(
                                    &lease.key(),
                                    Status::Failed,
                                    None,
                                    Some(&format!("the action crashed: {e}")),
                                )?;
                            }
                        }
                    }
                }
                () = &mut told => {}
                () = &mut changed => {}
                () = tokio::time::sleep(self.settings.poll) => {}
            }
        }
    }

    /// Runs an action this engine leased — of its own execution, or of another's on a
    /// shared store — renewing the lease while it runs. An attempt the store says began is
    /// reconciled first; one whose lease this engine loses (it stalled, another worker took
    /// the action) is cancelled, and its outcome left to the new holder.
    pub async fn run_leased(
        &self,
        lease: ActionLease,
        slot: Slot,
        cancel: CancellationToken,
    ) -> Result<()> {
        let exec = self.load(&lease.execution)?;
        let key = lease.key();
        let begun = self.store.action_runs(&exec.id)?.into_iter().find(|r| {
            r.stage == lease.stage && r.action == lease.action && r.attempt == lease.attempt
        });
        let found = exec
            .definition
            .stages
            .iter()
            .find(|s| s.name == lease.stage)
            .and_then(|s| Some((s, s.actions.iter().find(|a| a.name == lease.action)?)));
        let nothing_to_run = if exec.status.is_final() {
            Some((Status::Stopped, format!("{} had ended", exec.id)))
        } else if found.is_none() {
            Some((Status::Failed, "the pipeline has no such action".to_owned()))
        } else {
            None
        };
        if let Some((status, why)) = nothing_to_run {
            if begun.is_none() {
                self.store.begin_action(&key, "")?;
            }
            self.store.finish_action(&key, status, None, Some(&why))?;
            return Ok(());
        }
        let (Some((stage, def)), resume) = (found, begun.is_some()) else {
            return Ok(());
        };
        let lost = Arc::new(AtomicBool::new(false));
        // Ends with this future, also when the driver drops it.
        // Renewed as the worker that leased it: the driver, or a pool of its own name.
        let holder = lease
            .worker
            .clone()
            .unwrap_or_else(|| self.driver_id.clone());
        let _keeper = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(keep_lease(
            self.store.clone(),
            lease.clone(),
            holder,
            cancel.clone(),
            lost.clone(),
        )));
        let ran = self
            .run_action(
                &exec,
                stage,
                def,
                lease.attempt,
                resume,
                cancel,
                &lost,
                slot,
            )
            .await;
        self.ended.notify_waiters();
        ran.map(|_| ())
    }

    /// Until `stop`: leases the portable actions of any execution on this store and runs them
    /// with `run` (an engine for the execution), as many at once as `slots` allow. With
    /// nothing to lease it waits for the store to tell of a change
    /// ([`Store::action_changes`]), or `poll` at most.
    pub async fn work<F, Fut>(
        store: Arc<dyn Store>,
        worker: &str,
        slots: Arc<tokio::sync::Semaphore>,
        poll: Duration,
        stop: CancellationToken,
        run: F,
    ) where
        F: Fn(ActionLease, Slot) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let changes = store.action_changes();
        loop {
            let permit = tokio::select! {
                p = slots.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => return,
                },
                () = stop.cancelled() => return,
            };
            // Armed before the store is read, so that a change between the two is not missed.
            let changed = changes.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            match store.lease_action(worker, None, now_ms(), LEASE_MS) {
                Ok(Some(lease)) => {
                    // The pool waits on the semaphore itself: a slot given back reaches it.
                    let slot = Slot::holding(permit, None);
                    let job = run(lease, slot.clone());
                    tokio::spawn(async move {
                        job.await;
                        slot.release();
                    });
                    continue;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "cannot lease an action"),
            }
            drop(permit);
            tokio::select! {
                () = &mut changed => {}
                () = tokio::time::sleep(poll) => {}
                () = stop.cancelled() => return,
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_action(
        &self,
        exec: &Execution,
        stage: &StageDef,
        def: &ActionDef,
        attempt: u32,
        resume: bool,
        cancel: CancellationToken,
        lost: &AtomicBool,
        slot: Slot,
    ) -> Result<Ended> {
        let id = &exec.id;
        let state = &self.settings.state_dir;
        let log_path = state
            .join("logs")
            .join(id)
            .join(format!("{}.{}.{attempt}.log", stage.name, def.name));
        let key = ActionKey {
            execution: id,
            stage: &stage.name,
            action: &def.name,
            attempt,
        };
        let run = if resume {
            self.store
                .action_runs(id)?
                .into_iter()
                .find(|r| r.stage == stage.name && r.action == def.name && r.attempt == attempt)
                .ok_or_else(|| EngineError::NotFound(format!("{id} {}.{}", stage.name, def.name)))?
        } else {
            // Persisted before anything happens.
            self.store
                .begin_action(&key, &log_path.display().to_string())?
        };
        let event = |status: Status, detail: Option<String>| RunEvent::Action {
            stage: stage.name.clone(),
            action: def.name.clone(),
            attempt,
            status,
            detail,
        };
        self.observer.event(event(
            Status::InProgress,
            resume.then(|| "resumed after an interruption".to_owned()),
        ));
        let log = ActionLog::new(
            &log_path,
            &stage.name,
            &def.name,
            self.masker.clone(),
            self.observer.clone(),
        )
        .map_err(|e| {
            EngineError::Invalid(format!("cannot write the log {}: {e}", log_path.display()))
        })?;
        let fail = |log: &ActionLog, why: String| -> Result<Ended> {
            let why = self.masker.mask(&why);
            log.line(&format!(
                "[ferry] {}.{} failed: {why}",
                stage.name, def.name
            ));
            self.store
                .finish_action(&key, Status::Failed, None, Some(&why))?;
            self.observer
                .event(event(Status::Failed, Some(why.clone())));
            Ok(Ended::Failed(format!("{}.{}: {why}", stage.name, def.name)))
        };
        let action: Arc<dyn Action> = match self.registry.action(def) {
            Ok(a) => a,
            Err(e) => return fail(&log, e),
        };
        let artifacts = self.store.artifacts(id)?;
        let mut inputs = Vec::new();
        for name in &def.inputs {
            match artifacts.iter().find(|a| &a.name == name) {
                Some(a) => inputs.push(a.clone()),
                None => return fail(&log, format!("input artifact `{name}` was not produced")),
            }
        }
        let workdir: PathBuf = state
            .join("work")
            .join(id)
            .join(format!("{}.{}.{attempt}", stage.name, def.name));
        if !resume {
            let _ = std::fs::remove_dir_all(&workdir);
        }
        if let Err(e) = std::fs::create_dir_all(&workdir) {
            return fail(
                &log,
                format!("cannot create the workspace {}: {e}", workdir.display()),
            );
        }
        let ctx = ActionContext {
            execution: exec.clone(),
            stage: stage.name.clone(),
            environment: stage.environment.clone(),
            action: def.name.clone(),
            attempt,
            idempotency_key: run.idempotency_key.clone(),
            workdir: workdir.clone(),
            inputs,
            outputs: def.outputs.clone(),
            log,
            cancel,
            store: self.store.clone(),
            artifacts: self.artifacts.clone(),
            secrets: self.secrets.clone(),
            settings: self.settings.clone(),
            slot,
        };
        let result = if resume {
            ctx.log
                .line("[ferry] interrupted earlier: checking what it did before running it again");
            match action.reconcile(&ctx).await {
                Ok(Reconciled::Done(out)) => {
                    let out = *out;
                    ctx.log
                        .line("[ferry] it had finished: recording its result");
                    Ok(out)
                }
                Ok(Reconciled::Failed(why)) => Err(ActionError::Failed(why)),
                Ok(Reconciled::NotDone) => {
                    self.run_with_limits(action.as_ref(), &ctx, def.timeout_secs)
                        .await
                }
                Err(e) => Err(e),
            }
        } else {
            self.run_with_limits(action.as_ref(), &ctx, def.timeout_secs)
                .await
        };
        if lost.load(Ordering::Relaxed) {
            ctx.log
                .line("[ferry] another worker took this action over: its outcome is theirs");
            return Ok(Ended::Stopped);
        }
        match result {
            Ok(out) => {
                self.record(exec, stage, def, &out)?;
                let outputs = self.masker.mask_json(&out.outputs);
                self.store
                    .finish_action(&key, Status::Succeeded, Some(&outputs), None)?;
                self.observer.event(event(Status::Succeeded, None));
                // What a later action needs is in the artifact store; keep failed workspaces
                // only. Removing it is off the critical path: the next action starts meanwhile.
                tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&workdir));
                Ok(Ended::Succeeded)
            }
            Err(ActionError::Cancelled) => {
                ctx.log.line("[ferry] stopped");
                self.store
                    .finish_action(&key, Status::Stopped, None, Some("stopped"))?;
                self.observer.event(event(Status::Stopped, None));
                Ok(Ended::Stopped)
            }
            Err(ActionError::RolledBack { reason, release }) => {
                self.record(
                    exec,
                    stage,
                    def,
                    &ActionOutput {
                        release: Some(*release),
                        ..ActionOutput::default()
                    },
                )?;
                fail(&ctx.log, format!("{reason}; rolled back"))
            }
            Err(ActionError::Failed(why)) => fail(&ctx.log, why),
        }
    }

    /// Records what an action produced: artifacts, and a release in the ledger.
    fn record(
        &self,
        exec: &Execution,
        stage: &StageDef,
        def: &ActionDef,
        out: &ActionOutput,
    ) -> Result<()> {
        for artifact in &out.artifacts {
            self.store.record_artifact(
                &exec.id,
                artifact,
                &format!("{}.{}", stage.name, def.name),
            )?;
        }
        if let Some(release) = &out.release {
            let environment = stage
                .environment
                .clone()
                .unwrap_or_else(|| stage.name.clone());
            let approved_by = self.approver(exec, stage)?;
            let gate_override = self
                .store
                .gates(&exec.id)?
                .into_iter()
                .find(|g| g.stage == stage.name)
                .and_then(|g| g.overridden)
                .map(|o| o.ledger_text());
            self.store.record_release(
                exec,
                &environment,
                approved_by.as_deref(),
                gate_override.as_deref(),
                release,
            )?;
            self.observer.event(RunEvent::Release {
                stage: stage.name.clone(),
                environment,
                target: release.target.clone(),
                version: release.version.clone(),
                outcome: release.outcome.clone(),
            });
        }
        Ok(())
    }

    /// Who approved the stage's deploys: its approval actions' identities.
    fn approver(&self, exec: &Execution, stage: &StageDef) -> Result<Option<String>> {
        let mut who = Vec::new();
        for a in stage.actions.iter().filter(|a| a.kind == "approval") {
            if let Some(identity) = self
                .store
                .approval(&exec.id, &stage.name, &a.name)?
                .and_then(|a| a.identity)
            {
                who.push(identity);
            }
        }
        Ok((!who.is_empty()).then(|| who.join(", ")))
    }

    async fn run_with_limits(
        &self,
        action: &dyn Action,
        ctx: &ActionContext,
        timeout: Option<u64>,
    ) -> Result<ActionOutput, ActionError> {
        let fut = action.run(ctx);
        tokio::pin!(fut);
        let Some(secs) = timeout else {
            return fut.await;
        };
        tokio::select! {
            result = &mut fut => result,
            () = tokio::time::sleep(Duration::from_secs(secs)) => {
                ctx.cancel.cancel();
                let _ = tokio::time::timeout(CANCEL_GRACE, &mut fut).await;
                Err(ActionError::Failed(format!("timed out after {secs} s")))
            }
        }
    }

    /// Approves or rejects the approval waiting in `stage`.
    pub fn decide(&self, id: &str, stage: &str, decision: &Decision) -> Result<Approval> {
        self.decide_action(id, stage, None, decision)
    }

    /// [`Engine::decide`] on the approval `action` of the stage. Without one, the stage's only
    /// waiting approval, or of several the only one whose approvers admit the caller.
    pub fn decide_action(
        &self,
        id: &str,
        stage: &str,
        action: Option<&str>,
        decision: &Decision,
    ) -> Result<Approval> {
        let exec = self.load(id)?;
        // Said first: the waiting approval of a blocked release closes within a poll.
        if let Some(block) = self.store.release_block(&exec.id)? {
            return Err(Refused::Approval(Refusal::Blocked {
                stage: stage.to_owned(),
                why: block.refusal(),
            })
            .into());
        }
        let pending = self.store.pending_approvals(Some(&exec.id))?;
        let here: Vec<&Approval> = pending
            .iter()
            .filter(|a| a.stage == stage && action.is_none_or(|n| a.action == n))
            .collect();
        let approval = match here.as_slice() {
            [] => {
                return Err(Refused::NoApprovalWaiting {
                    execution: exec.id,
                    stage: stage.to_owned(),
                    waiting: pending.iter().map(|a| a.stage.clone()).collect(),
                }
                .into());
            }
            [one] => *one,
            several => {
                let theirs: Vec<&&Approval> = several
                    .iter()
                    .filter(|a| rules::admits(a, &decision.identity, &decision.groups))
                    .collect();
                match theirs.as_slice() {
                    [one] => **one,
                    // None of them: the first says why the caller may not.
                    [] => several[0],
                    _ => {
                        return Err(Refused::SeveralApprovalsWaiting {
                            execution: exec.id,
                            stage: stage.to_owned(),
                            actions: several.iter().map(|a| a.action.clone()).collect(),
                        }
                        .into());
                    }
                }
            }
        };
        self.store
            .decide_approval(&exec.id, stage, &approval.action, decision)
            .map_err(|e| match e {
                StoreError::Refused(r) => Refused::Approval(r).into(),
                other => other.into(),
            })
    }

    /// Lets the release past the gates holding `stage`: the gate action sees the override
    /// within a poll and lets the stage go on; the stage's releases carry it into the ledger.
    pub fn override_gate(
        &self,
        id: &str,
        stage: &str,
        identity: &str,
        reason: &str,
    ) -> Result<GateState> {
        let exec = self.load(id)?;
        if exec.status.is_final() {
            return Err(Refused::AlreadyEnded {
                execution: exec.id,
                status: exec.status,
            }
            .into());
        }
        if reason.trim().is_empty() {
            return Err(Refused::ReasonRequired.into());
        }
        let gates = self.store.gates(&exec.id)?;
        let holding = |g: &&GateState| !g.holds.is_empty() && g.overridden.is_none();
        if !gates.iter().filter(holding).any(|g| g.stage == stage) {
            return Err(Refused::NoGateHolding {
                execution: exec.id,
                stage: stage.to_owned(),
                holding: gates
                    .iter()
                    .filter(holding)
                    .map(|g| g.stage.clone())
                    .collect(),
            }
            .into());
        }
        Ok(self
            .store
            .override_gate(&exec.id, stage, identity, reason.trim())?)
    }

    /// Makes a failed or stopped stage run again: its failed actions get a new attempt, the
    /// ones that succeeded keep their results. `drive` then continues the execution.
    pub fn retry(&self, id: &str, stage: &str) -> Result<Execution> {
        let exec = self.load(id)?;
        if !matches!(exec.status, Status::Failed | Status::Stopped) {
            return Err(Refused::NotRetryable {
                execution: exec.id.clone(),
                status: exec.status,
            }
            .into());
        }
        let run = self
            .store
            .stage_runs(&exec.id)?
            .into_iter()
            .find(|r| r.stage == stage)
            .ok_or_else(|| Refused::NoSuchStage {
                execution: exec.id.clone(),
                stage: stage.to_owned(),
            })?;
        if !matches!(run.status, Status::Failed | Status::Stopped) {
            return Err(Refused::StageNotFailed {
                execution: exec.id,
                stage: stage.to_owned(),
                status: run.status,
            }
            .into());
        }
        self.store
            .set_stage_status(&exec.id, stage, Status::Pending)?;
        self.store.set_execution_status(
            &exec.id,
            Status::InProgress,
            Some(&format!("retrying stage `{stage}`")),
        )?;
        self.load(&exec.id)
    }

    /// Asks the driver to stop; with no live driver, stops the execution here.
    pub fn stop(&self, id: &str, mode: StopMode) -> Result<Execution> {
        let exec = self.load(id)?;
        if exec.status.is_final() {
            return Err(Refused::AlreadyEnded {
                execution: exec.id.clone(),
                status: exec.status,
            }
            .into());
        }
        self.store.request_stop(&exec.id, mode)?;
        if self.live_driver(&exec).is_some() {
            return self.load(&exec.id);
        }
        for run in self.store.action_runs(&exec.id)? {
            if matches!(run.status, Status::InProgress | Status::AwaitingApproval) {
                self.store.finish_action(
                    &ActionKey {
                        execution: &exec.id,
                        stage: &run.stage,
                        action: &run.action,
                        attempt: run.attempt,
                    },
                    Status::Stopped,
                    None,
                    Some("stopped"),
                )?;
            }
        }
        for approval in self.store.pending_approvals(Some(&exec.id))? {
            self.store
                .expire_approval(&exec.id, &approval.stage, &approval.action)?;
        }
        for stage in self.store.stage_runs(&exec.id)? {
            if matches!(stage.status, Status::InProgress | Status::AwaitingApproval) {
                self.store
                    .set_stage_status(&exec.id, &stage.stage, Status::Stopped)?;
            }
        }
        self.store.set_execution_status(
            &exec.id,
            Status::Stopped,
            Some("stopped by `ferry stop`"),
        )?;
        self.load(&exec.id)
    }
}

/// How a run order ended, from its attempts' final runs: the first failure, else a stop.
fn outcome(stage: &StageDef, ended: &[&ActionRun]) -> Ended {
    if let Some(failed) = ended
        .iter()
        .find(|r| r.status != Status::Succeeded && r.status != Status::Stopped)
    {
        let why = failed.error.as_deref().unwrap_or("failed");
        return Ended::Failed(format!("{}.{}: {why}", stage.name, failed.action));
    }
    if ended.iter().any(|r| r.status == Status::Stopped) {
        Ended::Stopped
    } else {
        Ended::Succeeded
    }
}

/// Renews an action's lease while it runs; cancels the action when a forced stop is asked
/// for, or when the lease was lost (then `lost` says so, and the action's outcome is not
/// recorded: the worker that took it over records its own).
async fn keep_lease(
    store: Arc<dyn Store>,
    lease: ActionLease,
    worker: String,
    cancel: CancellationToken,
    lost: Arc<AtomicBool>,
) {
    loop {
        tokio::time::sleep(HEARTBEAT).await;
        match store.renew_action_lease(&lease.key(), &worker, now_ms(), LEASE_MS) {
            Ok(true) => {}
            Ok(false) => {
                lost.store(true, Ordering::Relaxed);
                cancel.cancel();
                return;
            }
            // The store is unreachable: keep running, and try again; the lease may expire.
            Err(e) => tracing::warn!(error = %e, "cannot renew an action lease"),
        }
        if let Ok(Some(exec)) = store.execution(&lease.execution)
            && exec.stop_requested == Some(StopMode::Forced)
        {
            cancel.cancel();
        }
    }
}

/// Renews the driver lease and turns stop requests into cancellation.
async fn watch(
    store: Arc<dyn Store>,
    id: String,
    driver: String,
    cancel: CancellationToken,
    graceful: Arc<AtomicBool>,
) {
    loop {
        tokio::time::sleep(HEARTBEAT.min(Duration::from_millis(500))).await;
        let _ = store.heartbeat(&id, &driver);
        if let Ok(Some(exec)) = store.execution(&id) {
            match exec.stop_requested {
                Some(StopMode::Graceful) => graceful.store(true, Ordering::Relaxed),
                Some(StopMode::Forced) => {
                    graceful.store(true, Ordering::Relaxed);
                    cancel.cancel();
                }
                None => {}
            }
        }
    }
}

/// A name for this process's `role` among the workers of a store (`pid.role@host`), apart
/// from its name as a driver, which its drives free the leases of when they start.
pub fn worker_id(role: &str) -> String {
    format!("{}.{role}@{}", std::process::id(), hostname())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_or_else(|_| "localhost".into(), |h| h.trim().to_owned())
}

/// The live process driving an execution, if any: one whose heartbeat is fresh and, on this
/// machine, whose process runs. An execution in progress with none is an orphan another
/// process may adopt.
pub fn live_driver(exec: &Execution) -> Option<String> {
    let (driver, beat) = (exec.driver.as_ref()?, exec.heartbeat_ms?);
    (now_ms() - beat < STALE_MS && driver_alive(driver)).then(|| driver.clone())
}

/// Whether a driver ("pid@host") is alive. A driver on another host is presumed alive until
/// its heartbeat goes stale.
fn driver_alive(driver: &str) -> bool {
    let Some((pid, host)) = driver.split_once('@') else {
        return true;
    };
    if host != hostname() {
        return true;
    }
    match pid.parse::<i32>() {
        Ok(pid) if pid == i32::try_from(std::process::id()).unwrap_or(-1) => true,
        Ok(pid) => nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok(),
        Err(_) => true,
    }
}

/// Test hook: with `FERRY_TEST_CRASH_AFTER=N`, the process kills itself (SIGKILL) right after
/// the N-th committed transition. The crash-safety test uses it to stop at every transition
/// point in turn; nothing else sets it.
pub fn crash_hook_from_env() -> Option<crate::store::TransitionHook> {
    let n: usize = std::env::var("FERRY_TEST_CRASH_AFTER").ok()?.parse().ok()?;
    let count = std::sync::atomic::AtomicUsize::new(0);
    Some(Arc::new(move || {
        if count.fetch_add(1, Ordering::SeqCst) + 1 == n {
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        }
    }))
}
