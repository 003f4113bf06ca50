//! `ferry run`: an execution started (or resumed) and driven to its end, stage by stage.

use std::sync::Arc;

use ferry_engine::model::{Execution, ExecutionQuery, StopMode, Trigger};
use ferry_engine::{Engine, EngineError};
use ferry_manifest::Manifest;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::error::{Error, Result};
use crate::pipeline::{EngineOptions, definition, open_engine};
use crate::progress::{ExecutionNote, Progress, Reporter};
use crate::project::Project;
use crate::snapshot::check_before_run;
use crate::view::{ExecutionView, find};

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct RunInput {
    /// A git revision to build; `None`: the working tree.
    pub revision: Option<String>,
    /// Stop after this stage.
    pub until: Option<String>,
    /// Approvals approve themselves.
    pub auto_approve: bool,
    /// Continue an interrupted execution instead of starting one: `Some("")` the newest
    /// unfinished one.
    pub resume: Option<String>,
    /// Who runs it (approvals with `auto_approve`; the trigger, unless `trigger` says more).
    pub identity: String,
    /// How it was started; default `ferry run by <identity>`.
    pub trigger: Option<Trigger>,
    /// How many actions run at once, shared with other engines of the process (`ferry
    /// serve` on a shared store); `None`: no limit.
    pub slots: Option<Arc<tokio::sync::Semaphore>>,
}

/// Requests to stop the execution while it runs (Ctrl-C at a terminal): the first is
/// graceful, the next forced.
pub type Stops = UnboundedReceiver<StopMode>;

async fn engine(
    project: &Project,
    manifest: Option<&Manifest>,
    input: &RunInput,
    reporter: Arc<dyn Reporter>,
) -> Result<Engine> {
    let options = EngineOptions {
        auto_approve: input.auto_approve,
        identity: input.identity.clone(),
    };
    let engine = open_engine(project, manifest, &options, reporter).await?;
    Ok(match &input.slots {
        Some(slots) => engine.with_slots(slots.clone()),
        None => engine,
    })
}

/// Runs one action that the driver of its execution — another `ferry serve` on the same
/// store — queued, and this process leased: an engine over the project at the execution's
/// revision, reporting as the execution.
pub async fn run_leased(
    project: &Project,
    lease: ferry_engine::model::ActionLease,
    slot: ferry_engine::action::Slot,
    reporter: Arc<dyn Reporter>,
) -> Result<()> {
    let manifest = project.load()?;
    let input = RunInput {
        identity: "ferry serve".into(),
        ..RunInput::default()
    };
    let engine = engine(project, Some(&manifest), &input, reporter.clone()).await?;
    reporter.report(&Progress::Execution(ExecutionNote::Leased {
        id: lease.execution.clone(),
        stage: lease.stage.clone(),
        action: lease.action.clone(),
    }));
    engine
        .run_leased(lease, slot, tokio_util::sync::CancellationToken::new())
        .await?;
    Ok(())
}

/// Starts an execution of the project's manifest at `input.revision` (after checking the
/// access it needs against the foundation last read), without driving it.
pub async fn start(
    project: &Project,
    input: &RunInput,
    reporter: Arc<dyn Reporter>,
) -> Result<Execution> {
    let manifest = project.load()?;
    let engine = engine(project, Some(&manifest), input, reporter.clone()).await?;
    start_with(&engine, project, &manifest, input, reporter.as_ref())
}

fn start_with(
    engine: &Engine,
    project: &Project,
    manifest: &Manifest,
    input: &RunInput,
    reporter: &dyn Reporter,
) -> Result<Execution> {
    // Before anything deploys: would every access the manifest needs be allowed?
    check_before_run(project, manifest, reporter)?;
    let def = definition(project, manifest);
    let repo = project.source_repo(manifest);
    let revision = ferry_engine::source::resolve_revision(
        &repo,
        Some(&manifest.source.branch),
        input.revision.as_deref(),
    )
    .map_err(Error::Failed)?;
    let trigger = input.trigger.clone().unwrap_or_else(|| Trigger {
        text: format!("ferry run by {}", input.identity),
        identities: vec![input.identity.clone()],
        branch: None,
    });
    let exec = engine
        .start(&def, &revision, trigger)
        .map_err(|e| match e {
            EngineError::Invalid(why) => Error::Usage(why),
            other => other.into(),
        })?;
    reporter.report(&Progress::Execution(ExecutionNote::Started {
        id: exec.id.clone(),
        pipeline: manifest.pipeline.clone(),
        revision,
        state_dir: project.state_dir.display().to_string(),
    }));
    Ok(exec)
}

/// Starts (or resumes) an execution and drives it to its end.
pub async fn run(
    project: &Project,
    input: &RunInput,
    stops: Option<Stops>,
    reporter: Arc<dyn Reporter>,
) -> Result<ExecutionView> {
    let manifest = project.load()?;
    let engine = engine(project, Some(&manifest), input, reporter.clone()).await?;
    let exec = if let Some(key) = &input.resume {
        let found = if key.is_empty() {
            engine
                .store()
                .executions(&ExecutionQuery::newest(Some(&manifest.pipeline), 50))?
                .into_iter()
                .find(|e| !e.status.is_final())
        } else {
            Some(find(
                engine.store(),
                Some(&manifest.pipeline),
                key,
                &project.state_dir,
            )?)
        };
        let e = found.ok_or_else(|| {
            Error::NotFound("no unfinished execution to resume; `ferry history` lists them".into())
        })?;
        reporter.report(&Progress::Execution(ExecutionNote::Resumed {
            id: e.id.clone(),
            revision: e.revision.clone(),
        }));
        e
    } else {
        start_with(&engine, project, &manifest, input, reporter.as_ref())?
    };
    let done = drive(
        &engine,
        &exec.id,
        input.until.as_deref(),
        stops,
        reporter.as_ref(),
    )
    .await?;
    ExecutionView::read(engine.store(), &done.id)
}

/// Drives an execution to its end (or the end of stage `until`), turning each stop request
/// into a stop of the execution.
pub(crate) async fn drive(
    engine: &Engine,
    id: &str,
    until: Option<&str>,
    stops: Option<Stops>,
    reporter: &dyn Reporter,
) -> Result<Execution> {
    let driving = engine.drive(id, until);
    let Some(mut stops) = stops else {
        return Ok(driving.await?);
    };
    tokio::pin!(driving);
    loop {
        tokio::select! {
            done = &mut driving => return Ok(done?),
            Some(mode) = stops.recv() => {
                let _ = engine.store().request_stop(id, mode);
                reporter.report(&Progress::StopRequested { forced: mode == StopMode::Forced });
            }
        }
    }
}

/// Continues an execution nobody drives (after a decision or a retry) and reports how it
/// ended; one another process drives continues there.
pub(crate) async fn continue_here(
    engine: &Engine,
    exec: &Execution,
    stops: Option<Stops>,
    reporter: &dyn Reporter,
) -> Result<ExecutionView> {
    let current = engine
        .store()
        .execution(&exec.id)?
        .ok_or_else(|| Error::NotFound(format!("no execution `{}`", exec.id)))?;
    if current.status.is_final() {
        return ExecutionView::read(engine.store(), &current.id);
    }
    if let Some(driver) = engine.live_driver(&current) {
        reporter.report(&Progress::Execution(ExecutionNote::DrivenElsewhere {
            id: exec.id.clone(),
            driver,
        }));
        return ExecutionView::read(engine.store(), &current.id);
    }
    reporter.report(&Progress::Execution(ExecutionNote::Continuing {
        id: exec.id.clone(),
    }));
    let done = drive(engine, &exec.id, None, stops, reporter).await?;
    ExecutionView::read(engine.store(), &done.id)
}
