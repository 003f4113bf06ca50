//! The running server: it starts executions (a push, a poll, a request), drives each in a
//! task of its own with no CLI attached, resumes the unfinished ones when it starts again
//! (the engine reconciles what a crash interrupted), and relays what they do to the live
//! events, the metrics and the notifications. Every operation on an execution is a
//! ferry-workflows call, the same the CLI makes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use ferry_engine::action::RunEvent;
use ferry_engine::model::{Mode, PipelineDef, Status, Trigger};
use ferry_engine::store::Store;
use ferry_manifest::Push as ManifestPush;
use ferry_workflows::run::RunInput;
use ferry_workflows::view::ExecutionView;
use ferry_workflows::{Error as FlowError, ExecutionNote, Progress, Project, Reporter};
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, PipelineConfig};
use crate::events::EventHub;
use crate::metrics::Metrics;
use crate::notify::{Notice, Notifier};
use crate::repo::{GitError, Repo};
use crate::store::ServerStore;

/// How often a server looks for orphaned executions and for the poll lease.
const SUPERVISE_EVERY: std::time::Duration = std::time::Duration::from_secs(2);
/// On a shared store, how many actions one server runs at once unless `actions_at_once` says
/// — its own executions' and the ones it leases of other servers' — so that queued actions go
/// to servers with room.
const ACTIONS_AT_ONCE: usize = 16;
/// How often a server with room looks for actions other servers queued.
const LEASE_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// The pipeline of an execution id (`orders-12` → `orders`).
pub(crate) fn pipeline_of(execution: &str) -> &str {
    execution.rsplit_once('-').map_or(execution, |(p, _)| p)
}

/// Why a start or a trigger could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("no pipeline `{0}` in server.yaml")]
    NoPipeline(String),
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    Flow(#[from] FlowError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// What a push led to.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum PushOutcome {
    /// An execution started.
    Started { execution: String },
    /// Nothing started, and why.
    Skipped { reason: String },
}

/// A request to start an execution.
#[derive(Debug, Clone)]
pub struct Start {
    /// The revision (a commit), or `None` for the head of `reference`.
    pub revision: Option<String>,
    /// The branch or tag (`main`, `refs/tags/v1`); `None`: the pipeline's branch.
    pub reference: Option<String>,
    pub trigger: Trigger,
}

/// One configured pipeline and its repository.
#[derive(Debug)]
pub struct Pipeline {
    pub config: PipelineConfig,
    pub repo: Repo,
    /// One push (or poll) handled at a time, so one change starts one execution.
    pub pushes: tokio::sync::Mutex<()>,
}

pub struct Service {
    pub config: Config,
    pub pipelines: BTreeMap<String, Pipeline>,
    pub store: Arc<ServerStore>,
    /// The engine's store (executions, approvals, the ledger), for reads.
    pub engine: Arc<dyn Store>,
    pub hub: Arc<EventHub>,
    pub metrics: Arc<Metrics>,
    pub notifier: Arc<Notifier>,
    /// Executions this process drives now.
    running: Mutex<HashMap<String, JoinHandle<()>>>,
    pub shutdown: CancellationToken,
    /// This process among the servers on one store, to tell its broadcasts from theirs.
    origin: String,
    /// The actions this server runs at once (unlimited unless the store is shared).
    slots: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").finish_non_exhaustive()
    }
}

impl Service {
    pub fn new(
        config: Config,
        store: Arc<ServerStore>,
        engine: Arc<dyn Store>,
        notifier: Arc<Notifier>,
        metrics: Arc<Metrics>,
    ) -> Service {
        let pipelines = config
            .pipelines
            .iter()
            .map(|p| {
                (
                    p.name.clone(),
                    Pipeline {
                        repo: Repo::new(&config.state, &p.name, &p.repo),
                        config: p.clone(),
                        pushes: tokio::sync::Mutex::new(()),
                    },
                )
            })
            .collect();
        let slots = Arc::new(tokio::sync::Semaphore::new(
            match (config.actions_at_once, engine.shared()) {
                (Some(n), _) => n,
                (None, true) => ACTIONS_AT_ONCE,
                (None, false) => tokio::sync::Semaphore::MAX_PERMITS,
            },
        ));
        Service {
            slots,
            config,
            pipelines,
            store,
            engine,
            hub: Arc::new(EventHub::new()),
            metrics,
            notifier,
            running: Mutex::new(HashMap::new()),
            shutdown: CancellationToken::new(),
            origin: format!("{}-{}", std::process::id(), ferry_engine::model::now_ms()),
        }
    }

    pub fn pipeline(&self, name: &str) -> Result<&Pipeline, ServiceError> {
        self.pipelines
            .get(name)
            .ok_or_else(|| ServiceError::NoPipeline(name.to_owned()))
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<String, JoinHandle<()>>> {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The project of a pipeline at `revision`: its worktree's manifest, the server's state.
    async fn project_at(
        &self,
        pipeline: &Pipeline,
        revision: &str,
    ) -> Result<Project, ServiceError> {
        let dir = pipeline.repo.checkout(revision).await?;
        Ok(self.project_in(pipeline, &dir))
    }

    fn project_in(&self, pipeline: &Pipeline, dir: &std::path::Path) -> Project {
        Project::new(
            &dir.join(&pipeline.config.manifest),
            Some(&self.config.state),
        )
        .with_state_url(self.config.state_url.as_deref())
    }

    /// The project at the head of the pipeline's branch (fetched now): for environment-wide
    /// operations (releases, rollback), which read the manifest as it stands.
    pub async fn head_project(&self, name: &str) -> Result<Project, ServiceError> {
        let pipeline = self.pipeline(name)?;
        pipeline.repo.fetch().await?;
        let head = pipeline
            .repo
            .resolve(&format!("refs/heads/{}", pipeline.config.branch))
            .await?;
        self.project_at(pipeline, &head).await
    }

    /// The project at the head of the pipeline's branch as the mirror has it (fetched only
    /// when it was never fetched): for reads, which need not wait for the remote.
    pub async fn current_project(&self, name: &str) -> Result<Project, ServiceError> {
        let pipeline = self.pipeline(name)?;
        let reference = format!("refs/heads/{}", pipeline.config.branch);
        let head = match pipeline.repo.resolve(&reference).await {
            Ok(h) => h,
            Err(_) => {
                pipeline.repo.fetch().await?;
                pipeline.repo.resolve(&reference).await?
            }
        };
        self.project_at(pipeline, &head).await
    }

    /// The project an execution runs in (its revision's worktree).
    pub async fn project_of(&self, execution: &str) -> Result<Project, ServiceError> {
        let exec = self
            .engine
            .execution(execution)
            .map_err(FlowError::from)?
            .ok_or_else(|| FlowError::NotFound(format!("no execution `{execution}`")))?;
        let pipeline = self.pipeline(&exec.pipeline)?;
        if !pipeline.repo.has(&exec.revision) {
            pipeline.repo.fetch().await?;
        }
        self.project_at(pipeline, &exec.revision).await
    }

    /// Starts an execution and drives it in the background.
    pub async fn start(
        self: &Arc<Self>,
        name: &str,
        start: Start,
    ) -> Result<ExecutionView, ServiceError> {
        let pipeline = self.pipeline(name)?;
        pipeline.repo.fetch().await?;
        let reference = start
            .reference
            .clone()
            .unwrap_or_else(|| format!("refs/heads/{}", pipeline.config.branch));
        let revision = match &start.revision {
            Some(r) => pipeline.repo.resolve(r).await?,
            None => pipeline.repo.resolve(&reference).await?,
        };
        let project = self.project_at(pipeline, &revision).await?;
        let mut trigger = start.trigger.clone();
        if trigger.branch.is_none() {
            trigger.branch = Some(short_ref(&reference).to_owned());
        }
        // Checked here so that an unusable manifest fails the execution with why.
        match project.load() {
            Ok(m) if m.pipeline == name => {}
            Ok(m) => {
                let why = format!(
                    "{} at {} names pipeline `{}`; server.yaml runs it as `{name}`",
                    pipeline.config.manifest,
                    short(&revision),
                    m.pipeline
                );
                return self.failed_at_start(name, &revision, &trigger, why, None);
            }
            Err(FlowError::InvalidManifest(loaded)) => {
                let errors = loaded.diagnostics.iter().filter(|d| d.is_error()).count();
                let first = loaded
                    .diagnostics
                    .iter()
                    .find(|d| d.is_error())
                    .map(|d| d.message.clone())
                    .unwrap_or_default();
                let why = format!(
                    "{} at {} is not valid ({errors} error{}): {first}",
                    pipeline.config.manifest,
                    short(&revision),
                    if errors == 1 { "" } else { "s" }
                );
                let diagnostics = serde_json::json!({
                    "file": pipeline.config.manifest,
                    "text": loaded.render(false),
                    "diagnostics": loaded.diagnostics_json(),
                });
                return self.failed_at_start(name, &revision, &trigger, why, Some(&diagnostics));
            }
            Err(e) => return Err(e.into()),
        };
        let reporter = self.relay(name);
        let input = RunInput {
            revision: Some(revision.clone()),
            identity: trigger
                .identities
                .first()
                .cloned()
                .unwrap_or_else(|| "ferry serve".into()),
            trigger: Some(trigger.clone()),
            ..RunInput::default()
        };
        let exec = ferry_workflows::run::start(&project, &input, reporter).await?;
        self.store
            .note_execution(&exec.id, trigger.branch.as_deref(), None)?;
        tracing::info!(pipeline = name, execution = %exec.id, revision = %revision, trigger = %trigger.text, "execution started");
        self.drive(&exec.id, project);
        Ok(ExecutionView::read(&self.engine, &exec.id)?)
    }

    /// An execution that cannot run (its manifest is invalid at its revision): recorded as
    /// failed at once, with why, so it shows in the history and the API like any other.
    fn failed_at_start(
        &self,
        name: &str,
        revision: &str,
        trigger: &Trigger,
        why: String,
        diagnostics: Option<&serde_json::Value>,
    ) -> Result<ExecutionView, ServiceError> {
        let def = PipelineDef {
            name: name.to_owned(),
            mode: Mode::Parallel,
            stages: Vec::new(),
        };
        let exec = self
            .engine
            .create_execution(&def, revision, trigger)
            .map_err(FlowError::from)?;
        self.engine
            .set_execution_status(&exec.id, Status::Failed, Some(&why))
            .map_err(FlowError::from)?;
        self.store
            .note_execution(&exec.id, trigger.branch.as_deref(), diagnostics)?;
        tracing::warn!(pipeline = name, execution = %exec.id, "{why}");
        self.publish(
            "execution",
            name,
            &exec.id,
            serde_json::json!({"type": "execution", "id": exec.id, "status": "Failed", "reason": why}),
        );
        self.notifier.send(&Notice::ExecutionFailed {
            pipeline: name.to_owned(),
            execution: exec.id.clone(),
            reason: why,
        });
        Ok(ExecutionView::read(&self.engine, &exec.id)?)
    }

    /// Drives an execution in the background (unless this process drives it already).
    pub fn drive(self: &Arc<Self>, id: &str, project: Project) {
        let mut running = self.running();
        running.retain(|_, task| !task.is_finished());
        if running.contains_key(id) {
            return;
        }
        let pipeline = pipeline_of(id).to_owned();
        let this = self.clone();
        let key = id.to_owned();
        let task = tokio::spawn(async move {
            let input = RunInput {
                resume: Some(key.clone()),
                identity: "ferry serve".into(),
                slots: Some(this.slots.clone()),
                ..RunInput::default()
            };
            let reporter = this.relay(&pipeline);
            if let Err(e) = ferry_workflows::run::run(&project, &input, None, reporter).await {
                tracing::error!(execution = %key, error = %e, "driving the execution failed");
            }
            this.running().remove(&key);
            this.metrics.running(this.running().len());
        });
        running.insert(id.to_owned(), task);
        self.metrics.running(running.len());
    }

    /// Drives every unfinished execution of the configured pipelines that no live process
    /// drives: after a restart, or when another server on the same PostgreSQL died. The
    /// engine claims each before it runs, and reconciles what was interrupted before anything
    /// runs again, so nothing deploys twice.
    pub async fn resume_all(self: &Arc<Self>) {
        let query = ferry_engine::model::ExecutionQuery {
            status: Some(Status::InProgress),
            limit: 10_000,
            ..Default::default()
        };
        let Ok(unfinished) = self.engine.executions(&query) else {
            return;
        };
        for exec in unfinished {
            if !self.pipelines.contains_key(&exec.pipeline)
                || self.is_driving(&exec.id)
                || ferry_engine::driver::live_driver(&exec).is_some()
            {
                continue;
            }
            match self.project_of(&exec.id).await {
                Ok(project) => {
                    tracing::info!(execution = %exec.id, driver = ?exec.driver, "resuming");
                    self.drive(&exec.id, project);
                }
                Err(e) => tracing::error!(execution = %exec.id, error = %e, "cannot resume"),
            }
        }
    }

    fn is_driving(&self, id: &str) -> bool {
        self.running()
            .get(id)
            .is_some_and(|task| !task.is_finished())
    }

    /// Until shutdown: on a shared store, adopts the executions other servers left orphaned
    /// (its own were resumed at start); and while this process holds the `poll` lease (one
    /// process among all on the same store), polls the repositories — so one push starts one
    /// execution however many servers run.
    pub async fn supervise(self: Arc<Self>) {
        let mut polling: Option<(Box<dyn ferry_engine::store::Lease>, CancellationToken)> = None;
        let mut first = true;
        loop {
            if !std::mem::take(&mut first) && self.engine.shared() {
                self.resume_all().await;
            }
            if polling.as_ref().is_some_and(|(lease, _)| !lease.held()) {
                tracing::warn!("lost the poll lease: another server polls now");
                if let Some((_, stop)) = polling.take() {
                    stop.cancel();
                }
            }
            if polling.is_none() && self.pipelines.values().any(|p| p.config.poll.is_some()) {
                match self.engine.try_lead("ferry serve: poll") {
                    Ok(Some(lease)) => {
                        tracing::info!("this server polls the repositories");
                        let stop = self.shutdown.child_token();
                        for (name, p) in &self.pipelines {
                            if p.config.poll.is_some() {
                                tokio::spawn(self.clone().poll(name.clone(), stop.clone()));
                            }
                        }
                        polling = Some((lease, stop));
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot take the poll lease"),
                }
            }
            tokio::select! {
                () = tokio::time::sleep(SUPERVISE_EVERY) => {}
                () = self.shutdown.cancelled() => return,
            }
        }
    }

    /// Until shutdown, on a shared store: leases the actions other servers' executions queue
    /// that any machine may run, while this server has room, and runs each in its
    /// execution's project. One that cannot be run here is left to its lease's expiry.
    pub async fn work(self: Arc<Self>) {
        let worker = ferry_engine::driver::worker_id("worker");
        let this = self.clone();
        let run = move |lease: ferry_engine::model::ActionLease, slot| {
            let this = this.clone();
            async move {
                let id = lease.execution.clone();
                let pipeline = match this.engine.execution(&id) {
                    Ok(Some(exec)) => exec.pipeline,
                    _ => return,
                };
                let done = match this.project_of(&id).await {
                    Ok(project) => ferry_workflows::run::run_leased(
                        &project,
                        lease,
                        slot,
                        this.relay(&pipeline),
                    )
                    .await
                    .map_err(ServiceError::from),
                    Err(e) => Err(e),
                };
                if let Err(e) = done {
                    tracing::error!(execution = %id, error = %e, "running a leased action failed");
                }
            }
        };
        ferry_engine::Engine::work(
            self.engine.clone(),
            &worker,
            self.slots.clone(),
            LEASE_POLL,
            self.shutdown.child_token(),
            run,
        )
        .await;
    }

    /// Stops driving: running actions are left for the engine to reconcile on the next start.
    pub fn abandon_all(&self) {
        for (_, task) in self.running().drain() {
            task.abort();
        }
    }

    /// A push to `reference` at `revision`, from a webhook or the poller: starts an
    /// execution when the manifest at that revision says the push triggers it.
    pub async fn push(
        self: &Arc<Self>,
        name: &str,
        reference: &str,
        revision: Option<&str>,
        pushed_by: Option<&str>,
        source: &str,
    ) -> Result<PushOutcome, ServiceError> {
        let pipeline = self.pipeline(name)?;
        let _one_at_a_time = pipeline.pushes.lock().await;
        let skipped = |reason: String| Ok(PushOutcome::Skipped { reason });
        let Some(revision) = revision else {
            return skipped(format!("{reference} was deleted"));
        };
        let push_ref = if let Some(b) = reference.strip_prefix("refs/heads/") {
            b
        } else if let Some(t) = reference.strip_prefix("refs/tags/") {
            t
        } else {
            return skipped(format!("{reference} is neither a branch nor a tag"));
        };
        let is_tag = reference.starts_with("refs/tags/");
        pipeline.repo.fetch().await?;
        let revision = pipeline.repo.resolve(revision).await?;
        if !is_tag && push_ref == pipeline.config.branch {
            self.store.set_last_seen(name, &revision)?;
        }
        // What the pipeline last ran is the newest execution in the engine's store, which
        // every server on it shares.
        let last_run = self
            .engine
            .summaries(&ferry_engine::model::ExecutionQuery::newest(Some(name), 1))
            .map_err(FlowError::from)?
            .into_iter()
            .next()
            .map(|e| e.revision);
        if last_run.as_deref() == Some(revision.as_str()) {
            return skipped(format!("{} already ran", short(&revision)));
        }
        let who = pushed_by.map(str::to_owned);
        let trigger = Trigger {
            text: format!(
                "push to {push_ref}{} ({source})",
                who.as_ref().map(|w| format!(" by {w}")).unwrap_or_default()
            ),
            identities: who.into_iter().collect(),
            branch: Some(push_ref.to_owned()),
        };
        let project = self.project_at(pipeline, &revision).await?;
        let start = Start {
            revision: Some(revision.clone()),
            reference: Some(reference.to_owned()),
            trigger,
        };
        let manifest = match project.load() {
            Ok(m) => m,
            // An invalid manifest cannot say what triggers it: a push to the pipeline's branch
            // runs (and fails at once, with the diagnostics); others start nothing.
            Err(FlowError::InvalidManifest(_)) if !is_tag && push_ref == pipeline.config.branch => {
                let view = self.start(name, start).await?;
                return Ok(PushOutcome::Started { execution: view.id });
            }
            Err(FlowError::InvalidManifest(_)) => {
                return skipped(format!(
                    "{} at {} is not valid, and {reference} is not the pipeline's branch",
                    pipeline.config.manifest,
                    short(&revision)
                ));
            }
            Err(e) => return Err(e.into()),
        };
        let changed = match &last_run {
            Some(from) => pipeline.repo.changed(from, &revision).await.ok(),
            None => None,
        };
        let push = if is_tag {
            ManifestPush::Tag { name: push_ref }
        } else {
            ManifestPush::Branch {
                name: push_ref,
                changed: changed.as_deref(),
            }
        };
        if let Err(why) = manifest.source.triggered_by(&push) {
            return skipped(why);
        }
        let view = self.start(name, start).await?;
        Ok(PushOutcome::Started { execution: view.id })
    }

    /// Polls a pipeline's branch at its interval; a new head is a push. A remote that fails
    /// is asked again later and later (up to ten intervals), then at the interval once it
    /// answers.
    pub async fn poll(self: Arc<Self>, name: String, stop: CancellationToken) {
        let Some(interval) = self.pipelines.get(&name).and_then(|p| p.config.poll) else {
            return;
        };
        let mut wait = std::time::Duration::ZERO;
        loop {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stop.cancelled() => return,
            }
            let Some(pipeline) = self.pipelines.get(&name) else {
                return;
            };
            match pipeline.repo.remote_head(&pipeline.config.branch).await {
                Ok(Some(head)) => {
                    wait = interval;
                    if self.store.last_seen(&name).ok().flatten().as_deref() == Some(head.as_str())
                    {
                        continue;
                    }
                    let reference = format!("refs/heads/{}", pipeline.config.branch);
                    match self
                        .push(&name, &reference, Some(&head), None, "poll")
                        .await
                    {
                        Ok(PushOutcome::Started { execution }) => {
                            tracing::info!(pipeline = %name, %execution, "poll saw {}", short(&head));
                        }
                        Ok(PushOutcome::Skipped { reason }) => {
                            tracing::info!(pipeline = %name, "poll saw {}: {reason}", short(&head));
                        }
                        Err(e) => tracing::warn!(pipeline = %name, error = %e, "poll"),
                    }
                }
                Ok(None) => wait = interval,
                Err(e) => {
                    wait = (wait * 2).clamp(interval, interval * 10);
                    tracing::warn!(pipeline = %name, error = %e, "cannot poll; next try in {:?}", wait);
                }
            }
        }
    }

    /// A live event of an execution this process drives: to its own stream clients, and to
    /// every other server on the same store (PostgreSQL), which relay it to theirs.
    fn publish(&self, kind: &str, pipeline: &str, execution: &str, data: serde_json::Value) {
        let message = serde_json::json!({
            "origin": self.origin,
            "kind": kind,
            "pipeline": pipeline,
            "execution": execution,
            "data": data,
        });
        self.hub.publish(kind, pipeline, execution, data);
        self.engine.broadcast(&message.to_string());
    }

    /// Until shutdown: relays the live events other servers on the same store broadcast to
    /// this one's stream clients (listening again when the connection is lost). A store only
    /// this process opens has nothing to relay.
    pub async fn relay_peers(self: Arc<Self>) {
        #[derive(serde::Deserialize)]
        struct Peer {
            origin: String,
            kind: String,
            pipeline: String,
            execution: String,
            data: serde_json::Value,
        }
        loop {
            match self.engine.listen() {
                Ok(None) => return,
                Ok(Some(mut messages)) => {
                    tracing::info!("relaying the live events of the other servers on the store");
                    loop {
                        let message = tokio::select! {
                            m = messages.recv() => m,
                            () = self.shutdown.cancelled() => return,
                        };
                        let Some(message) = message else { break };
                        match serde_json::from_str::<Peer>(&message) {
                            Ok(p) if p.origin != self.origin => {
                                self.hub.publish(&p.kind, &p.pipeline, &p.execution, p.data);
                            }
                            Ok(_) => {}
                            // A message cut at NOTIFY's limit (a very long log line).
                            Err(e) => tracing::debug!(error = %e, "an unreadable peer event"),
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot listen for other servers' events"),
            }
            tokio::select! {
                () = tokio::time::sleep(SUPERVISE_EVERY) => {}
                () = self.shutdown.cancelled() => return,
            }
        }
    }

    /// The reporter of one execution's drive: live events, metrics, notifications.
    fn relay(self: &Arc<Self>, pipeline: &str) -> Arc<dyn Reporter> {
        Arc::new(Relay {
            service: Arc::downgrade(self),
            pipeline: pipeline.to_owned(),
            execution: Mutex::new(None),
        })
    }
}

/// Relays an execution's progress.
struct Relay {
    service: std::sync::Weak<Service>,
    pipeline: String,
    execution: Mutex<Option<String>>,
}

fn run_kind(event: &RunEvent) -> &'static str {
    match event {
        RunEvent::Execution { .. } => "execution",
        RunEvent::Stage { .. } => "stage",
        RunEvent::Action { .. } => "action",
        RunEvent::Log { .. } => "log",
        RunEvent::Waiting { .. } => "waiting",
        RunEvent::Release { .. } => "release",
    }
}

impl Reporter for Relay {
    fn report(&self, event: &Progress) {
        let Some(service) = self.service.upgrade() else {
            return;
        };
        let mut current = self
            .execution
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match event {
            Progress::Execution(
                ExecutionNote::Started { id, .. }
                | ExecutionNote::Resumed { id, .. }
                | ExecutionNote::Continuing { id }
                | ExecutionNote::Leased { id, .. }
                | ExecutionNote::Retrying { id, .. },
            ) => *current = Some(id.clone()),
            Progress::Run(RunEvent::Execution { id, .. }) => *current = Some(id.clone()),
            _ => {}
        }
        let Progress::Run(run) = event else { return };
        let Some(execution) = current.clone() else {
            return;
        };
        drop(current);
        service.metrics.observe(&self.pipeline, &execution, run);
        service.publish(
            run_kind(run),
            &self.pipeline,
            &execution,
            serde_json::to_value(run).unwrap_or_default(),
        );
        let pipeline = self.pipeline.clone();
        let notice = match run {
            RunEvent::Waiting { stage, why } if why.starts_with("approval") => {
                Some(Notice::ApprovalWaiting {
                    pipeline,
                    execution,
                    stage: stage.clone(),
                })
            }
            RunEvent::Execution {
                status: Status::Failed,
                reason,
                ..
            } => Some(Notice::ExecutionFailed {
                pipeline,
                execution,
                reason: reason.clone().unwrap_or_default(),
            }),
            RunEvent::Release {
                environment,
                target,
                outcome,
                version,
                ..
            } => match outcome.as_str() {
                "RolledBack" => Some(Notice::RolledBack {
                    pipeline,
                    execution,
                    environment: environment.clone(),
                    target: target.clone(),
                }),
                "Deployed" => Some(Notice::Released {
                    pipeline,
                    execution,
                    environment: environment.clone(),
                    target: target.clone(),
                    version: version.clone(),
                }),
                _ => None,
            },
            _ => None,
        };
        if let Some(n) = notice {
            service.notifier.send(&n);
        }
    }
}

/// `main` from `refs/heads/main`, `v1` from `refs/tags/v1`.
fn short_ref(reference: &str) -> &str {
    reference
        .strip_prefix("refs/heads/")
        .or_else(|| reference.strip_prefix("refs/tags/"))
        .unwrap_or(reference)
}

fn short(revision: &str) -> &str {
    &revision[..revision.len().min(12)]
}
