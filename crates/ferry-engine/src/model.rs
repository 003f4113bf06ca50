//! What the engine runs and what it records.

use serde::{Deserialize, Serialize};

/// How executions share stages (CodePipeline V2's execution modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A newer execution replaces an older one waiting to enter a stage.
    #[default]
    Superseded,
    /// Executions enter each stage in the order they started.
    Queued,
    /// Executions do not wait for each other.
    Parallel,
}

/// A pipeline as the engine runs it. Each action is a kind and a configuration that the
/// kind's factory reads; the engine knows nothing more about what an action does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineDef {
    pub name: String,
    #[serde(default)]
    pub mode: Mode,
    pub stages: Vec<StageDef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageDef {
    pub name: String,
    /// The environment the stage deploys to, if any (for the release ledger).
    #[serde(default)]
    pub environment: Option<String>,
    pub actions: Vec<ActionDef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionDef {
    pub name: String,
    /// The registered kind: `source`, `build`, `approval`, `ecs`, `lambda`, …
    pub kind: String,
    pub run_order: u32,
    /// The kind's typed configuration, as JSON.
    pub config: serde_json::Value,
    /// Artifacts read; the first is the working directory of a build.
    #[serde(default)]
    pub inputs: Vec<String>,
    /// Artifacts produced.
    #[serde(default)]
    pub outputs: Vec<String>,
    /// Longest the action may run.
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

impl PipelineDef {
    pub fn stage(&self, name: &str) -> Option<&StageDef> {
        self.stages.iter().find(|s| s.name == name)
    }
}

/// Statuses, as CodePipeline names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub enum Status {
    Pending,
    InProgress,
    AwaitingApproval,
    Succeeded,
    Failed,
    Stopped,
    Superseded,
    RolledBack,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "Pending",
            Status::InProgress => "InProgress",
            Status::AwaitingApproval => "AwaitingApproval",
            Status::Succeeded => "Succeeded",
            Status::Failed => "Failed",
            Status::Stopped => "Stopped",
            Status::Superseded => "Superseded",
            Status::RolledBack => "RolledBack",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        [
            Status::Pending,
            Status::InProgress,
            Status::AwaitingApproval,
            Status::Succeeded,
            Status::Failed,
            Status::Stopped,
            Status::Superseded,
            Status::RolledBack,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    /// Whether nothing more happens to it.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Status::Succeeded
                | Status::Failed
                | Status::Stopped
                | Status::Superseded
                | Status::RolledBack
        )
    }
}

/// A request to stop an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StopMode {
    /// Let running actions finish; start no new ones.
    Graceful,
    /// Cancel running actions too (builds are killed with their process group).
    Forced,
}

/// How an execution was started: in words, and by whom.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Trigger {
    /// `ferry run by alice`, `push to main by bob (github)`.
    pub text: String,
    /// Who started it, and who pushed the commit it runs: an approval with `forbid_self`
    /// refuses them.
    pub identities: Vec<String>,
    /// The branch (or tag) whose push or head it runs, when it runs one.
    pub branch: Option<String>,
}

impl From<&str> for Trigger {
    fn from(text: &str) -> Trigger {
        Trigger {
            text: text.to_owned(),
            ..Trigger::default()
        }
    }
}

/// Which executions to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct ExecutionQuery {
    pub pipeline: Option<String>,
    pub status: Option<Status>,
    pub branch: Option<String>,
    /// Executions whose trigger text holds this.
    pub trigger: Option<String>,
    /// Only executions created before this time (ms): the next page.
    pub before_ms: Option<i64>,
    pub limit: usize,
}

impl ExecutionQuery {
    /// The newest `limit` executions of `pipeline` (all pipelines when `None`).
    pub fn newest(pipeline: Option<&str>, limit: usize) -> ExecutionQuery {
        ExecutionQuery {
            pipeline: pipeline.map(str::to_owned),
            limit,
            ..ExecutionQuery::default()
        }
    }
}

/// An execution as a list shows it: no definition, which a list has no use for and which
/// costs more to read than the rest of the row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExecutionSummary {
    pub id: String,
    pub pipeline: String,
    pub status: Status,
    pub revision: String,
    pub trigger: String,
    pub branch: Option<String>,
    pub reason: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Execution {
    pub id: String,
    pub pipeline: String,
    pub seq: u64,
    pub revision: String,
    pub trigger: String,
    /// Who started it and who pushed its commit.
    pub started_by: Vec<String>,
    /// The branch (or tag) it runs, when it runs one.
    pub branch: Option<String>,
    pub status: Status,
    pub reason: Option<String>,
    pub definition: PipelineDef,
    pub stop_requested: Option<StopMode>,
    pub driver: Option<String>,
    pub heartbeat_ms: Option<i64>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// An execution with its stage runs, action runs and pending approvals, all as they were at
/// one instant (one read transaction), so that a view never mixes two states.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub execution: Execution,
    pub stages: Vec<StageRun>,
    pub actions: Vec<ActionRun>,
    pub pending_approvals: Vec<Approval>,
    /// The execution's release is blocked (`ferry release block`).
    pub blocked: Option<ReleaseBlock>,
    /// Its stages' gates, as last checked.
    pub gates: Vec<GateState>,
}

/// A stage's gates as their action last found them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GateState {
    pub stage: String,
    /// Why the release may not enter yet, one line per holding gate; empty: open.
    pub holds: Vec<String>,
    /// When the gates were last recorded: the action records them when what holds changes.
    pub checked_ms: i64,
    /// An operator let the release past them (`ferry override`).
    pub overridden: Option<GateOverride>,
}

/// An operator's decision to let a release past its stage's gates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GateOverride {
    pub identity: String,
    pub reason: String,
    pub at_ms: i64,
}

impl GateOverride {
    /// As the ledger keeps it.
    pub fn ledger_text(&self) -> String {
        format!("{}: {}", self.identity, self.reason)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageRun {
    pub stage: String,
    pub position: usize,
    pub status: Status,
    pub started_ms: Option<i64>,
    pub ended_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionRun {
    pub stage: String,
    pub action: String,
    pub attempt: u32,
    pub status: Status,
    pub idempotency_key: String,
    pub outputs: Option<serde_json::Value>,
    pub error: Option<String>,
    pub log_path: Option<String>,
    pub started_ms: i64,
    pub ended_ms: Option<i64>,
}

/// An action attempt in the scheduler's queue, and the worker that holds its lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionLease {
    pub execution: String,
    pub stage: String,
    pub action: String,
    pub attempt: u32,
    /// Any worker may run it (its artifacts are where every machine reads them); otherwise
    /// only the execution's driver does.
    pub portable: bool,
    /// Who holds it, until when; `None` while it waits for a worker.
    pub worker: Option<String>,
    pub expires_ms: Option<i64>,
}

impl ActionLease {
    pub fn key(&self) -> crate::store::ActionKey<'_> {
        crate::store::ActionKey {
            execution: &self.execution,
            stage: &self.stage,
            action: &self.action,
            attempt: self.attempt,
        }
    }
}

/// Where an artifact is and how to read it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactRef {
    pub name: String,
    /// sha256 of the plaintext (a zip): the content address.
    pub sha256: String,
    pub size: u64,
    /// Backend-specific location of the ciphertext.
    pub location: String,
    /// Backend-specific JSON that says how to decrypt it.
    pub envelope: serde_json::Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Rejected,
    Expired,
}

/// One identity's decision on an approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Vote {
    pub identity: String,
    pub approve: bool,
    pub comment: Option<String>,
    /// The artifacts it approved: name → sha256.
    pub digests: std::collections::BTreeMap<String, String>,
    pub decided_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Approval {
    pub execution_id: String,
    pub stage: String,
    pub action: String,
    pub status: ApprovalStatus,
    /// Identities or groups that may decide; empty: anyone.
    pub approvers: Vec<String>,
    pub comment_required: bool,
    /// How many distinct identities must approve.
    pub required: u32,
    /// Identities that may not decide (who started the execution or pushed its commit).
    pub forbidden: Vec<String>,
    /// The decisions recorded so far, in order.
    pub votes: Vec<Vote>,
    /// The artifacts being approved: name → sha256.
    pub digests: std::collections::BTreeMap<String, String>,
    pub requested_ms: i64,
    pub deadline_ms: i64,
    /// Who decided it: the approvers, comma-separated, or the one who rejected it.
    pub identity: Option<String>,
    /// The deciding vote's comment.
    pub comment: Option<String>,
    pub decided_ms: Option<i64>,
}

/// A deployment, as an action reports it for the release ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ReleaseRecord {
    /// What was deployed to, e.g. `lambda:orders-fn:live`.
    pub target: String,
    pub version: String,
    pub digest: Option<String>,
    pub previous_version: Option<String>,
    #[serde(default)]
    pub details: serde_json::Value,
    /// `Deployed`, `RolledBack`, `Failed`, or `Restored` (put back by `ferry rollback`).
    pub outcome: String,
    /// The new version ran through its bake or steady-state check without an alarm.
    pub verified: bool,
}

/// A ledger entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Release {
    pub id: i64,
    pub pipeline: String,
    pub environment: String,
    pub execution_id: String,
    pub revision: String,
    pub approved_by: Option<String>,
    pub created_ms: i64,
    #[serde(flatten)]
    pub record: ReleaseRecord,
    /// Why the execution's release is blocked (`ferry release block`), when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
    /// Who let it past the environment's gates, and why (`ferry override`), when someone did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate_override: Option<String>,
}

/// A release marked bad by `ferry release block`: what one execution built. While blocked it
/// enters no environment, no approval of it is accepted, and no rollback returns to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ReleaseBlock {
    pub execution_id: String,
    pub reason: String,
    /// Who blocked it.
    pub identity: String,
    pub blocked_ms: i64,
}

impl ReleaseBlock {
    /// Why a stage or an approval of the release is refused, in words.
    pub fn refusal(&self) -> String {
        format!(
            "release {} is blocked by {}: {} (`ferry release unblock {}` lets it be promoted again)",
            self.execution_id, self.identity, self.reason, self.execution_id
        )
    }
}

/// Where `ferry rollback` returns a target to: the newest release the ledger marks verified
/// good (deployed or restored, and through its bake or steady-state check) that is not the
/// version running now, nor one an earlier rollback moved away from, nor blocked — not merely
/// the previous version, which may never have been good. `releases` is one target's ledger,
/// newest first.
pub fn rollback_target<'a>(
    releases: &'a [Release],
    live_version: Option<&str>,
) -> Option<&'a Release> {
    let mut abandoned: Vec<&str> = Vec::new();
    for r in releases {
        if r.record.outcome == "Restored"
            && let Some(replaced) = &r.record.previous_version
        {
            abandoned.push(replaced);
        }
        let version = r.record.version.as_str();
        if r.record.verified
            && r.blocked.is_none()
            && matches!(r.record.outcome.as_str(), "Deployed" | "Restored")
            && Some(version) != live_version
            && !abandoned.contains(&version)
        {
            return Some(r);
        }
    }
    None
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The idempotency key of one attempt of one action: every side effect carries it, so a
/// retry after a crash can tell whether the effect already happened.
pub fn idempotency_key(execution: &str, stage: &str, action: &str, attempt: u32) -> String {
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("{execution}\n{stage}\n{action}\n{attempt}").as_bytes(),
    );
    digest.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(id: i64, version: &str, outcome: &str, verified: bool) -> Release {
        Release {
            id,
            pipeline: "orders".into(),
            environment: "prod".into(),
            execution_id: format!("orders-{id}"),
            revision: "abc".into(),
            approved_by: None,
            gate_override: None,
            created_ms: id,
            record: ReleaseRecord {
                target: "lambda:orders-fn:live".into(),
                version: version.into(),
                digest: None,
                previous_version: None,
                details: serde_json::Value::Null,
                outcome: outcome.into(),
                verified,
            },
            blocked: None,
        }
    }

    #[test]
    fn rollback_skips_the_live_version_and_releases_never_verified() {
        // Newest first: 5 is live (verified, but users found a bug); 4 was deployed but its
        // last alarm check is unknown; 3 rolled back; 2 is the last good one.
        let ledger = [
            release(5, "5", "Deployed", true),
            release(4, "4", "Deployed", false),
            release(3, "3", "RolledBack", false),
            release(2, "2", "Deployed", true),
            release(1, "1", "Deployed", true),
        ];
        assert_eq!(rollback_target(&ledger, Some("5")).map(|r| r.id), Some(2));
        // After restoring 2 in place of 5, the next rollback goes further back, never to 5.
        let mut restored = release(6, "2", "Restored", true);
        restored.record.previous_version = Some("5".into());
        let mut after = vec![restored];
        after.extend(ledger.iter().cloned());
        assert_eq!(rollback_target(&after, Some("2")).map(|r| r.id), Some(1));
        assert_eq!(rollback_target(&ledger[3..4], Some("2")), None);
    }

    #[test]
    fn rollback_never_returns_to_a_blocked_release() {
        let mut bad = release(2, "2", "Deployed", true);
        bad.blocked = Some("corrupts orders".into());
        let ledger = [
            release(3, "3", "Deployed", true),
            bad,
            release(1, "1", "Deployed", true),
        ];
        assert_eq!(rollback_target(&ledger, Some("3")).map(|r| r.id), Some(1));
    }
}
