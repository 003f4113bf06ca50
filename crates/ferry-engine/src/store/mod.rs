//! The engine's state. [`Store`] is what the scheduler and the command line need; SQLite is
//! the implementation (`sqlite.rs`), and the schema is documented in `migrations/`.
//!
//! Architecture invariant: every transition is committed here before the side effect it
//! announces starts, and every mutation leaves an event row.

mod connections;
mod postgres;
mod rows;
mod sqlite;
pub mod tls;

use std::collections::BTreeMap;

pub use connections::{Connections, OpenError};
pub use postgres::{PostgresStore, create_database};
pub use sqlite::{SqliteStore, TransitionHook};

use crate::model::*;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the state database failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL (`state: postgres://…`): what the server or the connection said.
    #[error("the PostgreSQL state database failed: {0}")]
    Postgres(String),
    /// The state URL's `sslmode` or `sslrootcert` cannot be used.
    #[error("the PostgreSQL state URL: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("{0}")]
    NotFound(String),
    /// A decision the approval rules refuse (approving twice, approving changed artifacts, …).
    #[error(transparent)]
    Refused(#[from] crate::approval::rules::Refusal),
    #[error("the state database holds something unreadable: {0}")]
    Corrupt(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// One attempt of one action of one execution.
#[derive(Debug, Clone, Copy)]
pub struct ActionKey<'a> {
    pub execution: &'a str,
    pub stage: &'a str,
    pub action: &'a str,
    pub attempt: u32,
}

/// The outcome of asking to enter a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageEntry {
    Entered,
    /// Another execution holds the stage.
    Waiting {
        holder: String,
    },
    /// A newer execution waits for the stage (mode `superseded`): this one is replaced.
    Superseded {
        by: String,
    },
}

/// A decision on an approval.
#[derive(Debug, Clone, Default)]
pub struct Decision {
    pub approve: bool,
    pub identity: String,
    /// The groups the identity belongs to (an approval may name a group as approver).
    pub groups: Vec<String>,
    pub comment: Option<String>,
    /// Made by `ferry run --auto-approve`: it decides the approval alone.
    pub automatic: bool,
}

/// One row of an execution's history.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Event {
    pub stage: Option<String>,
    pub action: Option<String>,
    pub kind: String,
    pub detail: Option<String>,
    pub at_ms: i64,
}

pub trait Store: Send + Sync {
    // Executions.
    fn create_execution(
        &self,
        definition: &PipelineDef,
        revision: &str,
        trigger: &Trigger,
    ) -> Result<Execution>;
    /// [`Store::create_execution`], unless `definition`'s pipeline has an execution started by
    /// the same trigger text already: then that one. The deploys of one run outside ferry's
    /// engine (a CodePipeline execution) are one execution, however many record at once.
    fn create_execution_once(
        &self,
        definition: &PipelineDef,
        revision: &str,
        trigger: &Trigger,
    ) -> Result<Execution>;
    fn execution(&self, id: &str) -> Result<Option<Execution>>;
    /// An execution by id, or by its number within `pipeline`.
    fn find_execution(&self, pipeline: Option<&str>, key: &str) -> Result<Option<Execution>>;
    /// The executions `query` asks for, newest first.
    fn executions(&self, query: &ExecutionQuery) -> Result<Vec<Execution>>;
    /// An execution and its runs, read together; `None` when there is no such execution.
    fn snapshot(&self, id: &str) -> Result<Option<Snapshot>>;
    /// The same executions, without their definitions.
    fn summaries(&self, query: &ExecutionQuery) -> Result<Vec<ExecutionSummary>>;
    fn set_execution_status(&self, id: &str, status: Status, reason: Option<&str>) -> Result<()>;
    fn request_stop(&self, id: &str, mode: StopMode) -> Result<()>;
    /// Takes the driver lease unless another driver renewed it within `stale_ms` — or, with
    /// `replacing`, unless it is held by any driver but that one (known dead): a compare and
    /// swap, so two processes adopting the same orphan cannot both take it. `Err(holder)`
    /// names the driver that holds it.
    fn claim_driver(
        &self,
        id: &str,
        driver: &str,
        stale_ms: i64,
        replacing: Option<&str>,
    ) -> Result<Result<(), String>>;
    fn heartbeat(&self, id: &str, driver: &str) -> Result<()>;
    fn release_driver(&self, id: &str, driver: &str) -> Result<()>;

    // Stages.
    fn stage_runs(&self, id: &str) -> Result<Vec<StageRun>>;
    fn set_stage_status(&self, id: &str, stage: &str, status: Status) -> Result<()>;
    fn enter_stage(&self, execution: &Execution, stage: &str, mode: Mode) -> Result<StageEntry>;
    fn leave_stage(&self, pipeline: &str, stage: &str, id: &str) -> Result<()>;

    // Actions.
    /// Every attempt of every action, in start order.
    fn action_runs(&self, id: &str) -> Result<Vec<ActionRun>>;
    fn begin_action(&self, run: &ActionKey<'_>, log_path: &str) -> Result<ActionRun>;
    fn set_action_status(&self, run: &ActionKey<'_>, status: Status) -> Result<()>;
    /// Ends the attempt, and its lease.
    fn finish_action(
        &self,
        run: &ActionKey<'_>,
        status: Status,
        outputs: Option<&serde_json::Value>,
        error: Option<&str>,
    ) -> Result<()>;

    // The action queue. A driver queues the actions it wants run; a worker leases one
    // before it runs it, renews the lease while it runs, and `finish_action` ends it.
    /// Queues an attempt to run; queuing it again changes nothing.
    fn queue_action(&self, run: &ActionKey<'_>, portable: bool) -> Result<()>;
    /// Leases the longest-waiting queued attempt that no worker holds or whose lease expired
    /// before `now_ms`, to `worker` until `now_ms + lease_ms`: of `execution` when given (its
    /// driver), else a portable one of any execution. Two workers never lease the same one
    /// (PostgreSQL: `FOR UPDATE SKIP LOCKED`).
    fn lease_action(
        &self,
        worker: &str,
        execution: Option<&str>,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<ActionLease>>;
    /// Extends `worker`'s lease to `now_ms + lease_ms`; `false` when it no longer holds it
    /// (it expired and another worker took it, or the action ended).
    fn renew_action_lease(
        &self,
        run: &ActionKey<'_>,
        worker: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<bool>;
    /// Frees what `worker` holds of `execution` (a driver known dead): another may lease it
    /// at once. How many were freed.
    fn free_action_leases(&self, execution: &str, worker: &str) -> Result<usize>;
    /// The attempts of `execution` queued or running, oldest first.
    fn action_leases(&self, execution: &str) -> Result<Vec<ActionLease>>;

    // Artifacts.
    fn record_artifact(&self, id: &str, artifact: &ArtifactRef, produced_by: &str) -> Result<()>;
    fn artifacts(&self, id: &str) -> Result<Vec<ArtifactRef>>;

    // Approvals.
    /// Records a request, or returns the one already recorded (after a restart).
    fn request_approval(&self, request: &Approval) -> Result<Approval>;
    fn approval(&self, id: &str, stage: &str, action: &str) -> Result<Option<Approval>>;
    fn pending_approvals(&self, id: Option<&str>) -> Result<Vec<Approval>>;
    /// Records a decision, as [`crate::approval::rules::check`] allows: refused when not
    /// pending, when the identity may not decide, when a required comment is missing, or when
    /// the artifacts changed since the request. The approval is decided once enough identities
    /// approved, or one rejected.
    fn decide_approval(
        &self,
        id: &str,
        stage: &str,
        action: &str,
        decision: &Decision,
    ) -> Result<Approval>;
    fn expire_approval(&self, id: &str, stage: &str, action: &str) -> Result<()>;

    // The release ledger.
    fn record_release(
        &self,
        execution: &Execution,
        environment: &str,
        approved_by: Option<&str>,
        gate_override: Option<&str>,
        record: &ReleaseRecord,
    ) -> Result<i64>;
    /// Records that `identity` put `release` back in place of `replaced` (`ferry rollback`):
    /// a new ledger entry with outcome `Restored`, keeping the release's execution and revision.
    fn restore_release(
        &self,
        release: &Release,
        identity: &str,
        replaced: Option<&str>,
    ) -> Result<i64>;
    /// Newest first.
    fn releases(
        &self,
        pipeline: &str,
        environment: Option<&str>,
        target: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Release>>;

    // Release verdicts.
    /// Marks the release of execution `id` bad; blocking it again replaces the reason.
    fn block_release(&self, id: &str, identity: &str, reason: &str) -> Result<ReleaseBlock>;
    /// Lifts the block; `None` when the release was not blocked.
    fn unblock_release(&self, id: &str, identity: &str) -> Result<Option<ReleaseBlock>>;
    fn release_block(&self, id: &str) -> Result<Option<ReleaseBlock>>;

    /// Records what a stage's gates hold now (empty: open). A change leaves an event row.
    fn record_gate(&self, id: &str, stage: &str, holds: &[String]) -> Result<()>;
    /// Records that `identity` lets the release past the stage's gates, for `reason`.
    fn override_gate(
        &self,
        id: &str,
        stage: &str,
        identity: &str,
        reason: &str,
    ) -> Result<GateState>;
    fn gates(&self, id: &str) -> Result<Vec<GateState>>;

    fn events(&self, id: &str) -> Result<Vec<Event>>;

    /// Whether several processes may share this store (PostgreSQL): then an execution may
    /// lose its driver to another process's crash, and roles, broadcasts and listeners mean
    /// something. A store only one process opens (SQLite) is not shared.
    fn shared(&self) -> bool {
        false
    }

    /// Takes `role` — something one process at a time does among all that share this store,
    /// such as polling the repositories — while the returned lease is held; `None` when
    /// another process has it. A store only one process opens (SQLite, which `ferry serve`
    /// locks to itself) always grants it.
    fn try_lead(&self, role: &str) -> Result<Option<Box<dyn Lease>>> {
        let _ = role;
        Ok(Some(Box::new(Sole)))
    }

    /// Sends `message` to every process listening on this store (PostgreSQL's NOTIFY), in
    /// order and without waiting; a store only one process opens has no one to tell.
    fn broadcast(&self, message: &str) {
        let _ = message;
    }

    /// What processes broadcast on this store, as it arrives (this process's own messages
    /// too); `None` for a store only one process opens. The channel closes when the
    /// connection is lost: listen again.
    fn listen(&self) -> Result<Option<tokio::sync::mpsc::UnboundedReceiver<String>>> {
        Ok(None)
    }

    /// Told (`notify_waiters`) when any process on this store queues an action, ends one or
    /// frees the leases it held: a worker waiting for an action to lease and a driver waiting
    /// for another worker's action to end look again then, not at their next poll. Arm a
    /// `notified()` before reading the store, so that a change between the two is not missed.
    /// Polling stays the fallback: a wake-up is lost while a connection is (and a lease that
    /// expires tells no one).
    fn action_changes(&self) -> std::sync::Arc<tokio::sync::Notify>;
}

/// A role held among the processes that share a store; dropping it lets another take it.
pub trait Lease: Send + Sync {
    /// Whether it is still held (a lost connection loses it).
    fn held(&self) -> bool;
}

/// The lease of the only process on a store.
struct Sole;

impl Lease for Sole {
    fn held(&self) -> bool {
        true
    }
}

/// The artifacts of an execution as approval digests: name → sha256.
pub fn digests(artifacts: &[ArtifactRef]) -> BTreeMap<String, String> {
    artifacts
        .iter()
        .map(|a| (a.name.clone(), a.sha256.clone()))
        .collect()
}
