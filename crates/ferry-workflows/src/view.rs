//! An execution as callers see it: its stages, each action's latest attempt, and the
//! approvals that wait — `ferry status`, the end of `ferry run`, and the server's
//! `GET /executions/{id}` are this one document.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferry_engine::model::{Execution, Snapshot, Status, now_ms};
use ferry_engine::store::Store;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExecutionView {
    pub id: String,
    pub pipeline: String,
    pub revision: String,
    pub trigger: String,
    pub status: Status,
    pub reason: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub stages: Vec<StageView>,
    pub pending_approvals: Vec<PendingApproval>,
    /// Its release is blocked: promoted nowhere, approved by no one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<ferry_engine::model::ReleaseBlock>,
    /// Its stages' gates as last checked: what holds each, and any override.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<ferry_engine::model::GateState>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StageView {
    pub name: String,
    pub status: Status,
    pub actions: Vec<ActionView>,
}

/// An action's latest attempt (or `Pending` with no attempt, when it has not run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ActionView {
    pub name: String,
    pub kind: String,
    pub attempt: Option<u32>,
    pub status: Status,
    pub error: Option<String>,
    pub outputs: Option<serde_json::Value>,
    pub log: Option<String>,
    pub started_ms: Option<i64>,
    pub ended_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PendingApproval {
    pub stage: String,
    /// The approval's name: its action's, or for an ECS hook's approval in the middle of a
    /// rollout, `ACTION@LIFECYCLE_STAGE`.
    #[serde(default)]
    pub action: String,
    pub approvers: Vec<String>,
    pub deadline_ms: i64,
    /// The artifacts being approved: name → sha256.
    pub digests: BTreeMap<String, String>,
    /// The command that approves it.
    pub approve: String,
}

impl ExecutionView {
    /// The execution `id` as the store has it now.
    pub fn read(store: &Arc<dyn Store>, id: &str) -> Result<ExecutionView> {
        let snapshot = store
            .snapshot(id)?
            .ok_or_else(|| Error::NotFound(format!("no execution `{id}`")))?;
        Ok(ExecutionView::of(&snapshot))
    }

    pub fn of(snapshot: &Snapshot) -> ExecutionView {
        let Snapshot {
            execution: exec,
            stages,
            actions,
            pending_approvals: approvals,
            blocked,
            gates,
        } = snapshot;
        ExecutionView {
            id: exec.id.clone(),
            pipeline: exec.pipeline.clone(),
            revision: exec.revision.clone(),
            trigger: exec.trigger.clone(),
            status: exec.status,
            reason: exec.reason.clone(),
            created_ms: exec.created_ms,
            updated_ms: exec.updated_ms,
            stages: stages
                .iter()
                .map(|s| StageView {
                    name: s.stage.clone(),
                    status: s.status,
                    actions: exec
                        .definition
                        .stage(&s.stage)
                        .map(|d| {
                            d.actions
                                .iter()
                                .map(|a| {
                                    let run = actions
                                        .iter()
                                        .filter(|r| r.stage == s.stage && r.action == a.name)
                                        .max_by_key(|r| r.attempt);
                                    ActionView {
                                        name: a.name.clone(),
                                        kind: a.kind.clone(),
                                        attempt: run.map(|r| r.attempt),
                                        status: run.map_or(Status::Pending, |r| r.status),
                                        error: run.and_then(|r| r.error.clone()),
                                        outputs: run.and_then(|r| r.outputs.clone()),
                                        log: run.and_then(|r| r.log_path.clone()),
                                        started_ms: run.map(|r| r.started_ms),
                                        ended_ms: run.and_then(|r| r.ended_ms),
                                    }
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                })
                .collect(),
            pending_approvals: approvals
                .iter()
                .map(|a| PendingApproval {
                    stage: a.stage.clone(),
                    action: a.action.clone(),
                    approvers: a.approvers.clone(),
                    deadline_ms: a.deadline_ms,
                    digests: a.digests.clone(),
                    approve: format!("ferry approve {} {}", exec.id, a.stage),
                })
                .collect(),
            blocked: blocked.clone(),
            gates: gates.clone(),
        }
    }

    /// How long it ran (so far, when it has not ended), in milliseconds.
    pub fn duration_ms(&self) -> i64 {
        let end = if self.status.is_final() {
            self.updated_ms
        } else {
            now_ms()
        };
        (end - self.created_ms).max(0)
    }

    /// The action that failed last, as (stage, action), for "see its log, retry its stage".
    pub fn last_failed(&self) -> Option<(&str, &str)> {
        self.stages
            .iter()
            .flat_map(|s| s.actions.iter().map(move |a| (s, a)))
            .filter(|(_, a)| a.status == Status::Failed)
            .max_by_key(|(_, a)| a.started_ms)
            .map(|(s, a)| (s.name.as_str(), a.name.as_str()))
    }
}

/// An execution by id (`orders-3`) or number (`3`) within the project's pipeline.
pub(crate) fn find(
    store: &Arc<dyn Store>,
    pipeline: Option<&str>,
    key: &str,
    state_dir: &std::path::Path,
) -> Result<Execution> {
    store.find_execution(pipeline, key)?.ok_or_else(|| {
        Error::NotFound(format!(
            "no execution `{key}` in {}; `ferry history` lists them",
            state_dir.display()
        ))
    })
}
