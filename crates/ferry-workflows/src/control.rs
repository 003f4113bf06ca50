//! Acting on an execution that exists: `ferry approve|reject`, `retry`, `stop`, `override`.
//! A decision, a retry or an override continues the execution in this process when no other
//! process drives it.

use std::sync::Arc;

use ferry_engine::Engine;
use ferry_engine::model::{Approval, Execution, GateState, StopMode};
use ferry_engine::store::Decision;

use crate::error::Result;
use crate::pipeline::{EngineOptions, open_engine};
use crate::progress::{ExecutionNote, Progress, Quiet, Reporter};
use crate::project::Project;
use crate::run::{Stops, continue_here};
use crate::view::{ExecutionView, find};

#[derive(Debug, Clone)]
pub struct DecideInput {
    /// An execution id or number.
    pub execution: String,
    /// The stage whose approval this decides.
    pub stage: String,
    /// The approval action, when several wait in the stage (see [`Engine::decide_action`]).
    pub action: Option<String>,
    pub approve: bool,
    pub identity: String,
    /// The identity's groups (an approval may name a group).
    pub groups: Vec<String>,
    pub comment: Option<String>,
    /// Continue the execution here when no process drives it.
    pub continue_here: bool,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct DecideReport {
    pub approval: Approval,
    /// The execution after the decision, when it was continued here.
    pub execution: Option<ExecutionView>,
}

/// The engine over the project (with AWS when the manifest can be read and has a shared
/// account), and the execution `key` names.
async fn engine_and_execution(
    project: &Project,
    key: &str,
    identity: &str,
    reporter: Arc<dyn Reporter>,
) -> Result<(Engine, Execution)> {
    let manifest = project.try_load();
    let options = EngineOptions {
        auto_approve: false,
        identity: identity.to_owned(),
    };
    let engine = open_engine(project, manifest.as_ref(), &options, reporter).await?;
    let pipeline = manifest.as_ref().map(|m| m.pipeline.as_str());
    let exec = find(engine.store(), pipeline, key, &project.state_dir)?;
    Ok((engine, exec))
}

/// Approves or rejects the approval waiting in a stage.
pub async fn decide(
    project: &Project,
    input: &DecideInput,
    stops: Option<Stops>,
    reporter: Arc<dyn Reporter>,
) -> Result<DecideReport> {
    let (engine, exec) =
        engine_and_execution(project, &input.execution, &input.identity, reporter.clone()).await?;
    let decision = Decision {
        approve: input.approve,
        identity: input.identity.clone(),
        groups: input.groups.clone(),
        comment: input.comment.clone(),
        automatic: false,
    };
    let approval =
        engine.decide_action(&exec.id, &input.stage, input.action.as_deref(), &decision)?;
    reporter.report(&Progress::Decided {
        execution: exec.id.clone(),
        stage: approval.stage.clone(),
        approve: input.approve,
        identity: input.identity.clone(),
        digests: approval.digests.clone(),
    });
    let execution = if input.continue_here {
        Some(continue_here(&engine, &exec, stops, reporter.as_ref()).await?)
    } else {
        None
    };
    Ok(DecideReport {
        approval,
        execution,
    })
}

#[derive(Debug, Clone)]
pub struct RetryInput {
    pub execution: String,
    /// The failed stage; only its failed actions run again.
    pub stage: String,
    pub identity: String,
    /// Continue the execution here when no process drives it.
    pub continue_here: bool,
}

/// Runs the failed actions of a failed or stopped stage again, and continues the execution.
pub async fn retry(
    project: &Project,
    input: &RetryInput,
    stops: Option<Stops>,
    reporter: Arc<dyn Reporter>,
) -> Result<ExecutionView> {
    let (engine, exec) =
        engine_and_execution(project, &input.execution, &input.identity, reporter.clone()).await?;
    engine.retry(&exec.id, &input.stage)?;
    reporter.report(&Progress::Execution(ExecutionNote::Retrying {
        id: exec.id.clone(),
        stage: input.stage.clone(),
    }));
    if !input.continue_here {
        return ExecutionView::read(engine.store(), &exec.id);
    }
    continue_here(&engine, &exec, stops, reporter.as_ref()).await
}

#[derive(Debug, Clone)]
pub struct StopInput {
    pub execution: String,
    /// Cancel running actions too, instead of letting them finish.
    pub force: bool,
}

/// Stops an execution: asks the process driving it, or, with none, stops it here.
pub async fn stop(project: &Project, input: &StopInput) -> Result<ExecutionView> {
    // Stopping drives nothing: no AWS needed.
    let options = EngineOptions {
        auto_approve: false,
        identity: String::new(),
    };
    let engine = open_engine(project, None, &options, Arc::new(Quiet)).await?;
    let pipeline = project.try_load().map(|m| m.pipeline);
    let exec = find(
        engine.store(),
        pipeline.as_deref(),
        &input.execution,
        &project.state_dir,
    )?;
    let mode = if input.force {
        StopMode::Forced
    } else {
        StopMode::Graceful
    };
    let after = engine.stop(&exec.id, mode)?;
    ExecutionView::read(engine.store(), &after.id)
}

#[derive(Debug, Clone)]
pub struct OverrideInput {
    /// An execution id or number.
    pub execution: String,
    /// The stage whose gates hold it.
    pub stage: String,
    pub identity: String,
    /// Why: kept in the ledger of the stage's releases and in the audit log.
    pub reason: String,
    /// Continue the execution here when no process drives it.
    pub continue_here: bool,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct OverrideReport {
    /// The stage's gates, with the override.
    pub gates: GateState,
    /// The execution after the override, when it was continued here.
    pub execution: Option<ExecutionView>,
}

/// Lets a release past the gates that hold one of its stages (`ferry override`).
pub async fn override_gates(
    project: &Project,
    input: &OverrideInput,
    stops: Option<Stops>,
    reporter: Arc<dyn Reporter>,
) -> Result<OverrideReport> {
    let (engine, exec) =
        engine_and_execution(project, &input.execution, &input.identity, reporter.clone()).await?;
    let gates = engine.override_gate(&exec.id, &input.stage, &input.identity, &input.reason)?;
    let execution = if input.continue_here {
        Some(continue_here(&engine, &exec, stops, reporter.as_ref()).await?)
    } else {
        None
    };
    Ok(OverrideReport { gates, execution })
}
