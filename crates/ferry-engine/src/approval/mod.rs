//! The `approval` action: waits, persisted across restarts, for `ferry approve|reject` or its
//! timeout. The request records the exact artifact digests being approved; [`rules`] decides
//! who may decide it.

pub mod rules;

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::action::{Action, ActionContext, ActionError, ActionKind, ActionOutput, Reconciled};
use crate::model::{ActionDef, Approval, ApprovalStatus, Status, now_ms};
use crate::store::{ActionKey, Decision, digests};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalConfig {
    /// Identities or groups that may decide; empty: anyone.
    #[serde(default)]
    pub approvers: Vec<String>,
    pub timeout_secs: u64,
    #[serde(default)]
    pub comment_required: bool,
    /// How many distinct identities must approve.
    #[serde(default = "one")]
    pub required: u32,
    /// Who started the execution or pushed its commit may not decide.
    #[serde(default)]
    pub forbid_self: bool,
}

fn one() -> u32 {
    1
}

pub struct ApprovalKind;

impl ActionKind for ApprovalKind {
    type Config = ApprovalConfig;

    fn name(&self) -> &'static str {
        "approval"
    }

    fn build(&self, config: ApprovalConfig, _def: &ActionDef) -> Result<Arc<dyn Action>, String> {
        Ok(Arc::new(ApprovalAction { config }))
    }
}

struct ApprovalAction {
    config: ApprovalConfig,
}

fn store_err(e: impl std::fmt::Display) -> ActionError {
    ActionError::Failed(e.to_string())
}

fn outcome(a: &Approval) -> Option<Result<ActionOutput, ActionError>> {
    let who = a.identity.clone().unwrap_or_default();
    let comment = a
        .comment
        .clone()
        .map(|c| format!(": {c}"))
        .unwrap_or_default();
    match a.status {
        ApprovalStatus::Pending => None,
        ApprovalStatus::Approved => Some(Ok(ActionOutput {
            outputs: json!({"approved_by": a.identity, "comment": a.comment, "digests": a.digests}),
            ..ActionOutput::default()
        })),
        ApprovalStatus::Rejected => Some(Err(ActionError::Failed(format!(
            "rejected by {who}{comment}"
        )))),
        ApprovalStatus::Expired => Some(Err(ActionError::Failed(
            "no decision before the approval's timeout".into(),
        ))),
    }
}

#[async_trait]
impl Action for ApprovalAction {
    async fn run(&self, ctx: &ActionContext) -> Result<ActionOutput, ActionError> {
        wait_for(ctx, &ctx.action, &self.config).await
    }

    async fn reconcile(&self, ctx: &ActionContext) -> Result<Reconciled, ActionError> {
        let exec = &ctx.execution;
        match ctx
            .store
            .approval(&exec.id, &ctx.stage, &ctx.action)
            .map_err(store_err)?
            .as_ref()
            .and_then(outcome)
        {
            Some(Ok(out)) => Ok(Reconciled::Done(Box::new(out))),
            Some(Err(e)) => Ok(Reconciled::Failed(e.to_string())),
            // Still pending (or never requested): wait again, with the recorded deadline.
            None => Ok(Reconciled::NotDone),
        }
    }
}

/// Requests the approval `name` in the action's stage and waits for its decision: the
/// `approval` action's whole work, and a pause in another action (an ECS hook's approval,
/// named after that action and its hook), decided with `ferry approve` like any other. The
/// request survives a restart: asked again, it is the same request. While it waits, the
/// action and its stage show as awaiting approval; a blocked release or the deadline ends
/// it. Approved: the decision's record; rejected or expired: an error that says so.
pub async fn wait_for(
    ctx: &ActionContext,
    name: &str,
    config: &ApprovalConfig,
) -> Result<ActionOutput, ActionError> {
    let exec = &ctx.execution;
    let artifacts = ctx.store.artifacts(&exec.id).map_err(store_err)?;
    let now = now_ms();
    let request = ctx
        .store
        .request_approval(&Approval {
            execution_id: exec.id.clone(),
            stage: ctx.stage.clone(),
            action: name.to_owned(),
            status: ApprovalStatus::Pending,
            approvers: config.approvers.clone(),
            comment_required: config.comment_required,
            required: config.required.max(1),
            forbidden: if config.forbid_self {
                exec.started_by.clone()
            } else {
                Vec::new()
            },
            votes: Vec::new(),
            digests: digests(&artifacts),
            requested_ms: now,
            deadline_ms: now.saturating_add(
                i64::try_from(config.timeout_secs)
                    .unwrap_or(i64::MAX / 2)
                    .saturating_mul(1000),
            ),
            identity: None,
            comment: None,
            decided_ms: None,
        })
        .map_err(store_err)?;
    if let Some(done) = outcome(&request) {
        return done;
    }
    let run = ActionKey {
        execution: &exec.id,
        stage: &ctx.stage,
        action: &ctx.action,
        attempt: ctx.attempt,
    };
    ctx.store
        .set_action_status(&run, Status::AwaitingApproval)
        .map_err(store_err)?;
    ctx.store
        .set_stage_status(&exec.id, &ctx.stage, Status::AwaitingApproval)
        .map_err(store_err)?;
    ctx.log
        .awaiting(&format!("ferry approve {} {}", exec.id, ctx.stage));
    // Waiting for people holds no worker.
    ctx.slot.release();
    for (name, sha) in &request.digests {
        ctx.log
            .line(&format!("[ferry] approving artifact {name} sha256:{sha}"));
    }
    if ctx.settings.auto_approve {
        let decision = Decision {
            approve: true,
            identity: format!("{} (--auto-approve)", ctx.settings.identity),
            comment: Some("approved automatically by ferry run --auto-approve".into()),
            automatic: true,
            ..Decision::default()
        };
        ctx.store
            .decide_approval(&exec.id, &ctx.stage, name, &decision)
            .map_err(store_err)?;
    }
    loop {
        let current = ctx
            .store
            .approval(&exec.id, &ctx.stage, name)
            .map_err(store_err)?
            .ok_or_else(|| store_err("the approval request vanished"))?;
        if let Some(done) = outcome(&current) {
            ctx.store
                .set_stage_status(&exec.id, &ctx.stage, Status::InProgress)
                .map_err(store_err)?;
            ctx.store
                .set_action_status(&run, Status::InProgress)
                .map_err(store_err)?;
            if let Ok(out) = &done {
                ctx.log.line(&format!(
                    "[ferry] approved by {}",
                    out.outputs["approved_by"].as_str().unwrap_or("?")
                ));
            }
            return done;
        }
        // A release blocked while it waits is never approved: the request is closed (no
        // longer listed as pending) and the stage fails at once, with the block's reason.
        if let Some(block) = ctx.store.release_block(&exec.id).map_err(store_err)? {
            ctx.store
                .expire_approval(&exec.id, &ctx.stage, name)
                .map_err(store_err)?;
            return Err(ActionError::Failed(block.refusal()));
        }
        if now_ms() > current.deadline_ms {
            ctx.store
                .expire_approval(&exec.id, &ctx.stage, name)
                .map_err(store_err)?;
            continue;
        }
        tokio::select! {
            () = tokio::time::sleep(ctx.settings.poll) => {}
            () = ctx.cancel.cancelled() => return Err(ActionError::Cancelled),
        }
    }
}
