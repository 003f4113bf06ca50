//! [`Store`] on SQLite ([`Connections`]: WAL, `synchronous=NORMAL` — a commit survives the
//! process being killed; the crash test relies on it — migrations in `PRAGMA user_version`,
//! read-only connections beside the writer), immediate write transactions.
//!
//! The rows of one execution (stage runs, action runs, pending approvals) are sorted here,
//! not with ORDER BY: a cached statement with ORDER BY and a bound value is compiled again
//! each time it comes back out of rusqlite's cache (SQLite's REPREPARE counter says so),
//! which tripled the cost of reading them.

use std::path::Path;
use std::sync::{Arc, MutexGuard};

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params, params_from_iter};

use super::connections::{Connections, OpenError};
use super::rows::{
    approval_status, decided, json_column, stage_entry, status, stop_mode, stop_text,
};
use super::{ActionKey, Decision, Event, Result, StageEntry, Store, StoreError, digests};
use crate::approval::rules;
use crate::model::*;

/// Migrations, in order; the schema version is the number applied.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/001_initial.sql"),
    include_str!("../../migrations/002_approvers.sql"),
    include_str!("../../migrations/003_listing.sql"),
    include_str!("../../migrations/004_release_blocks.sql"),
    include_str!("../../migrations/005_gates.sql"),
    include_str!("../../migrations/006_action_leases.sql"),
];

const LEASE_COLUMNS: &str = "execution_id, stage, action, attempt, portable, worker, expires_ms";

fn lease_row(r: &Row<'_>) -> rusqlite::Result<ActionLease> {
    Ok(ActionLease {
        execution: r.get(0)?,
        stage: r.get(1)?,
        action: r.get(2)?,
        attempt: r.get(3)?,
        portable: r.get(4)?,
        worker: r.get(5)?,
        expires_ms: r.get(6)?,
    })
}

/// Called after each committed transition (the crash test kills the process there).
pub type TransitionHook = Arc<dyn Fn() + Send + Sync>;

pub struct SqliteStore {
    db: Connections,
    hook: Option<TransitionHook>,
    /// [`Store::action_changes`]: only this process opens the database, so it tells itself.
    changes: Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl From<OpenError> for StoreError {
    fn from(e: OpenError) -> StoreError {
        match e {
            OpenError::Sqlite(e) => StoreError::Sqlite(e),
            other => StoreError::Corrupt(other.to_string()),
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        Ok(SqliteStore {
            db: Connections::open(path, MIGRATIONS)?,
            hook: None,
            changes: Arc::default(),
        })
    }

    /// A private in-memory database (tests).
    pub fn in_memory() -> Result<SqliteStore> {
        Ok(SqliteStore {
            db: Connections::in_memory(MIGRATIONS)?,
            hook: None,
            changes: Arc::default(),
        })
    }

    /// Runs `hook` after every committed transition.
    #[must_use]
    pub fn with_transition_hook(mut self, hook: TransitionHook) -> Self {
        self.hook = Some(hook);
        self
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.db.write()
    }

    fn read(&self) -> MutexGuard<'_, Connection> {
        self.db.read()
    }

    /// A write transaction that records an event and runs the transition hook after commit.
    fn transition<T>(
        &self,
        event: (&str, Option<&str>, Option<&str>, &str, Option<&str>),
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        let out = {
            let mut conn = self.conn();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            let (execution, stage, action, kind, detail) = event;
            tx.execute(
                "INSERT INTO events (execution_id, stage, action, kind, detail, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![execution, stage, action, kind, detail, now_ms()],
            )?;
            tx.commit()?;
            out
        };
        if let Some(hook) = &self.hook {
            hook();
        }
        Ok(out)
    }
}

/// The SELECT of `columns` from the executions `q` asks for, and its values. Only the filters
/// given are in it, so that SQLite can use the index on pipeline (a constant
/// `?1 IS NULL OR pipeline = ?1` hides it, and the newest of a quiet pipeline would be found
/// by reading every execution).
fn listing(columns: &str, q: &ExecutionQuery) -> (String, Vec<Value>) {
    let mut sql = format!("SELECT {columns} FROM executions WHERE 1");
    let mut values: Vec<Value> = Vec::new();
    let mut filter = |clause: &str, value: Option<Value>| {
        if let Some(v) = value {
            sql.push_str(clause);
            values.push(v);
        }
    };
    filter(" AND pipeline = ?", q.pipeline.clone().map(Value::Text));
    filter(
        " AND status = ?",
        q.status.map(|s| Value::Text(s.as_str().to_owned())),
    );
    filter(" AND branch = ?", q.branch.clone().map(Value::Text));
    filter(
        " AND instr(trigger, ?) > 0",
        q.trigger.clone().map(Value::Text),
    );
    filter(" AND created_ms < ?", q.before_ms.map(Value::Integer));
    sql.push_str(" ORDER BY created_ms DESC, seq DESC LIMIT ?");
    values.push(Value::Integer(i64::try_from(q.limit).unwrap_or(i64::MAX)));
    (sql, values)
}

fn execution_in(conn: &Connection, id: &str) -> Result<Option<Execution>> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT {EXECUTION_COLUMNS} FROM executions WHERE id = ?1"
        ))?
        .query_row(params![id], execution_row)
        .optional()?;
    row.map(finish_execution).transpose()
}

fn stage_runs_in(conn: &Connection, id: &str) -> Result<Vec<StageRun>> {
    let mut stmt = conn.prepare_cached("SELECT stage, position, status, started_ms, ended_ms FROM stage_runs WHERE execution_id = ?1")?;
    let rows = stmt.query_map(params![id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
            r.get(3)?,
            r.get(4)?,
        ))
    })?;
    rows.map(|row| {
        let (stage, position, s, started_ms, ended_ms) = row?;
        Ok(StageRun {
            stage,
            position: usize::try_from(position).unwrap_or(0),
            status: status(&s)?,
            started_ms,
            ended_ms,
        })
    })
    .collect::<Result<Vec<_>>>()
    .map(|mut runs| {
        runs.sort_by_key(|r| r.position);
        runs
    })
}

fn action_runs_in(conn: &Connection, id: &str) -> Result<Vec<ActionRun>> {
    let mut stmt = conn.prepare_cached(
        "SELECT stage, action, attempt, status, idempotency_key, outputs, error, log_path, started_ms, ended_ms
         FROM action_runs WHERE execution_id = ?1",
    )?;
    let rows = stmt.query_map(params![id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, Option<String>>(5)?,
            r.get::<_, Option<String>>(6)?,
            r.get::<_, Option<String>>(7)?,
            r.get::<_, i64>(8)?,
            r.get::<_, Option<i64>>(9)?,
        ))
    })?;
    rows.map(|row| {
        let (
            stage,
            action,
            attempt,
            s,
            idempotency_key,
            outputs,
            error,
            log_path,
            started_ms,
            ended_ms,
        ) = row?;
        Ok(ActionRun {
            stage,
            action,
            attempt: u32::try_from(attempt).unwrap_or(0),
            status: status(&s)?,
            idempotency_key,
            outputs: outputs
                .map(|o| serde_json::from_str(&o))
                .transpose()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            error,
            log_path,
            started_ms,
            ended_ms,
        })
    })
    .collect::<Result<Vec<_>>>()
    .map(|mut runs| {
        runs.sort_by(|a, b| {
            (a.started_ms, &a.stage, &a.action, a.attempt).cmp(&(
                b.started_ms,
                &b.stage,
                &b.action,
                b.attempt,
            ))
        });
        runs
    })
}

fn pending_in(conn: &Connection, id: Option<&str>) -> Result<Vec<Approval>> {
    // Two statements, not `?1 IS NULL OR …`: SQLite plans that one again for each value.
    let of_one = if id.is_some() {
        "AND execution_id = ?1"
    } else {
        ""
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {APPROVAL_COLUMNS} FROM approvals WHERE status = 'Pending' {of_one}"
    ))?;
    let rows: Vec<_> = match id {
        Some(id) => stmt.query_map(params![id], approval_row)?,
        None => stmt.query_map([], approval_row)?,
    }
    .collect::<rusqlite::Result<_>>()?;
    let mut approvals = rows
        .into_iter()
        .map(|r| finish_approval(conn, r))
        .collect::<Result<Vec<_>>>()?;
    approvals.sort_by(|a, b| {
        (a.requested_ms, &a.stage, &a.action).cmp(&(b.requested_ms, &b.stage, &b.action))
    });
    Ok(approvals)
}

const EXECUTION_COLUMNS: &str = "id, pipeline, seq, revision, trigger, status, reason, definition, stop_requested, driver, heartbeat_ms, created_ms, updated_ms, started_by, branch";

fn execution_row(r: &Row<'_>) -> rusqlite::Result<(Execution, String, String)> {
    let definition: String = r.get(7)?;
    let started_by: String = r.get(13)?;
    let status: String = r.get(5)?;
    let stop: Option<String> = r.get(8)?;
    Ok((
        Execution {
            id: r.get(0)?,
            pipeline: r.get(1)?,
            seq: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
            revision: r.get(3)?,
            trigger: r.get(4)?,
            started_by: serde_json::from_str(&started_by).unwrap_or_default(),
            branch: r.get(14)?,
            status: Status::Pending,
            reason: r.get(6)?,
            definition: PipelineDef {
                name: String::new(),
                mode: Mode::default(),
                stages: Vec::new(),
            },
            stop_requested: stop_mode(stop.as_deref()),
            driver: r.get(9)?,
            heartbeat_ms: r.get(10)?,
            created_ms: r.get(11)?,
            updated_ms: r.get(12)?,
        },
        status,
        definition,
    ))
}

fn finish_execution((mut e, s, def): (Execution, String, String)) -> Result<Execution> {
    e.status = status(&s)?;
    e.definition = serde_json::from_str(&def)
        .map_err(|err| StoreError::Corrupt(format!("definition of {}: {err}", e.id)))?;
    Ok(e)
}

fn approval_row(r: &Row<'_>) -> rusqlite::Result<(Approval, [String; 4])> {
    Ok((
        Approval {
            execution_id: r.get(0)?,
            stage: r.get(1)?,
            action: r.get(2)?,
            status: ApprovalStatus::Pending,
            approvers: Vec::new(),
            comment_required: r.get::<_, i64>(5)? != 0,
            required: u32::try_from(r.get::<_, i64>(12)?).unwrap_or(1),
            forbidden: Vec::new(),
            votes: Vec::new(),
            digests: Default::default(),
            requested_ms: r.get(7)?,
            deadline_ms: r.get(8)?,
            identity: r.get(9)?,
            comment: r.get(10)?,
            decided_ms: r.get(11)?,
        },
        [r.get(3)?, r.get(4)?, r.get(6)?, r.get(13)?],
    ))
}

/// An approval row with its JSON columns read and its votes loaded.
fn finish_approval(
    conn: &Connection,
    (mut a, [status, approvers, digests, forbidden]): (Approval, [String; 4]),
) -> Result<Approval> {
    a.status = approval_status(&status)?;
    a.approvers = json_column(&approvers, "approvers")?;
    a.digests = json_column(&digests, "digests")?;
    a.forbidden = json_column(&forbidden, "forbidden")?;
    let mut stmt = conn.prepare_cached(
        "SELECT identity, approve, comment, digests, decided_ms FROM approval_votes
         WHERE execution_id = ?1 AND stage = ?2 AND action = ?3 ORDER BY decided_ms, rowid",
    )?;
    let votes = stmt.query_map(params![a.execution_id, a.stage, a.action], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)? != 0,
            r.get::<_, Option<String>>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, i64>(4)?,
        ))
    })?;
    for v in votes {
        let (identity, approve, comment, digests, decided_ms) = v?;
        a.votes.push(Vote {
            identity,
            approve,
            comment,
            digests: json_column(&digests, "vote digests")?,
            decided_ms,
        });
    }
    Ok(a)
}

const APPROVAL_COLUMNS: &str = "execution_id, stage, action, status, approvers, comment_required, digests, requested_ms, deadline_ms, identity, comment, decided_ms, required, forbidden";

fn approval_in(conn: &Connection, id: &str, stage: &str, action: &str) -> Result<Option<Approval>> {
    let row = conn
        .prepare_cached(&format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE execution_id = ?1 AND stage = ?2 AND action = ?3"))?
        .query_row(params![id, stage, action], approval_row)
        .optional()?;
    row.map(|r| finish_approval(conn, r)).transpose()
}

fn block_row(r: &Row<'_>) -> rusqlite::Result<ReleaseBlock> {
    Ok(ReleaseBlock {
        execution_id: r.get(0)?,
        reason: r.get(1)?,
        identity: r.get(2)?,
        blocked_ms: r.get(3)?,
    })
}

fn block_in(conn: &Connection, id: &str) -> Result<Option<ReleaseBlock>> {
    Ok(conn
        .prepare_cached("SELECT execution_id, reason, identity, blocked_ms FROM release_blocks WHERE execution_id = ?1")?
        .query_row(params![id], block_row)
        .optional()?)
}

fn gates_in(conn: &Connection, id: &str) -> Result<Vec<GateState>> {
    let mut stmt = conn.prepare_cached(
        "SELECT stage, holds, checked_ms, override_identity, override_reason, override_ms FROM gates WHERE execution_id = ?1 ORDER BY stage",
    )?;
    let rows = stmt.query_map(params![id], |r| {
        let holds: String = r.get(1)?;
        let overridden = match (r.get(3)?, r.get(4)?, r.get(5)?) {
            (Some(identity), Some(reason), Some(at_ms)) => Some(GateOverride {
                identity,
                reason,
                at_ms,
            }),
            _ => None,
        };
        Ok((r.get::<_, String>(0)?, holds, r.get(2)?, overridden))
    })?;
    rows.map(|row| {
        let (stage, holds, checked_ms, overridden) = row?;
        Ok(GateState {
            stage,
            holds: serde_json::from_str(&holds).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            checked_ms,
            overridden,
        })
    })
    .collect()
}

fn artifacts_in(tx: &Connection, id: &str) -> Result<Vec<ArtifactRef>> {
    let mut stmt = tx.prepare_cached("SELECT name, sha256, size, location, envelope FROM artifacts WHERE execution_id = ?1 ORDER BY name")?;
    let rows = stmt.query_map(params![id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
        ))
    })?;
    rows.map(|row| {
        let (name, sha256, size, location, envelope) = row?;
        Ok(ArtifactRef {
            name,
            sha256,
            size: u64::try_from(size).unwrap_or(0),
            location,
            envelope: serde_json::from_str(&envelope)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        })
    })
    .collect()
}

impl SqliteStore {
    /// [`Store::create_execution`]; with `once`, the execution of the same pipeline and trigger
    /// text when there is one.
    fn create(
        &self,
        definition: &PipelineDef,
        revision: &str,
        trigger: &Trigger,
        once: bool,
    ) -> Result<Execution> {
        let def =
            serde_json::to_string(definition).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let now = now_ms();
        let (id, created) = {
            let mut conn = self.conn();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let existing: Option<String> = if once {
                tx.query_row(
                    "SELECT id FROM executions WHERE pipeline = ?1 AND trigger = ?2 ORDER BY seq LIMIT 1",
                    params![definition.name, trigger.text],
                    |r| r.get(0),
                )
                .optional()?
            } else {
                None
            };
            if let Some(id) = existing {
                (id, false)
            } else {
                let seq: i64 = tx.query_row(
                    "SELECT COALESCE(MAX(seq), 0) + 1 FROM executions WHERE pipeline = ?1",
                    params![definition.name],
                    |r| r.get(0),
                )?;
                let id = format!("{}-{seq}", definition.name);
                tx.execute(
                "INSERT INTO executions (id, pipeline, seq, revision, trigger, status, definition, created_ms, updated_ms, started_by, branch) VALUES (?1, ?2, ?3, ?4, ?5, 'InProgress', ?6, ?7, ?7, ?8, ?9)",
                params![
                    id,
                    definition.name,
                    seq,
                    revision,
                    trigger.text,
                    def,
                    now,
                    serde_json::to_string(&trigger.identities).unwrap_or_default(),
                    trigger.branch
                ],
            )?;
                for (position, stage) in definition.stages.iter().enumerate() {
                    tx.execute(
                    "INSERT INTO stage_runs (execution_id, stage, position, status) VALUES (?1, ?2, ?3, 'Pending')",
                    params![id, stage.name, position as i64],
                )?;
                }
                tx.execute(
                "INSERT INTO events (execution_id, kind, detail, at_ms) VALUES (?1, 'execution-created', ?2, ?3)",
                params![id, format!("revision {revision}, {}", trigger.text), now],
            )?;
                tx.commit()?;
                (id, true)
            }
        };
        if created && let Some(hook) = &self.hook {
            hook();
        }
        self.execution(&id)?.ok_or_else(|| StoreError::NotFound(id))
    }
}

impl Store for SqliteStore {
    fn create_execution(
        &self,
        definition: &PipelineDef,
        revision: &str,
        trigger: &Trigger,
    ) -> Result<Execution> {
        self.create(definition, revision, trigger, false)
    }

    fn create_execution_once(
        &self,
        definition: &PipelineDef,
        revision: &str,
        trigger: &Trigger,
    ) -> Result<Execution> {
        self.create(definition, revision, trigger, true)
    }

    fn execution(&self, id: &str) -> Result<Option<Execution>> {
        execution_in(&self.read(), id)
    }

    fn find_execution(&self, pipeline: Option<&str>, key: &str) -> Result<Option<Execution>> {
        if let Some(e) = self.execution(key)? {
            return Ok(Some(e));
        }
        let Ok(seq) = key.trim_start_matches('#').parse::<i64>() else {
            return Ok(None);
        };
        let row = self
            .read()
            .prepare_cached(&format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE seq = ?1 AND (?2 IS NULL OR pipeline = ?2) ORDER BY created_ms DESC LIMIT 1"))?
            .query_row(params![seq, pipeline], execution_row)
            .optional()?;
        row.map(finish_execution).transpose()
    }

    fn executions(&self, q: &ExecutionQuery) -> Result<Vec<Execution>> {
        let (sql, values) = listing(EXECUTION_COLUMNS, q);
        let conn = self.read();
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params_from_iter(values), execution_row)?;
        rows.map(|r| finish_execution(r?)).collect()
    }

    fn snapshot(&self, id: &str) -> Result<Option<Snapshot>> {
        let conn = self.read();
        // One read transaction: one snapshot of the WAL, and one lock taken instead of four.
        let tx = conn.unchecked_transaction()?;
        let Some(execution) = execution_in(&tx, id)? else {
            return Ok(None);
        };
        let snapshot = Snapshot {
            execution,
            stages: stage_runs_in(&tx, id)?,
            actions: action_runs_in(&tx, id)?,
            pending_approvals: pending_in(&tx, Some(id))?,
            blocked: block_in(&tx, id)?,
            gates: gates_in(&tx, id)?,
        };
        tx.finish()?;
        Ok(Some(snapshot))
    }

    fn summaries(&self, q: &ExecutionQuery) -> Result<Vec<ExecutionSummary>> {
        let (sql, values) = listing(
            "id, pipeline, status, revision, trigger, branch, reason, created_ms, updated_ms",
            q,
        );
        let conn = self.read();
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params_from_iter(values), |r| {
            Ok((
                ExecutionSummary {
                    id: r.get(0)?,
                    pipeline: r.get(1)?,
                    status: Status::Pending,
                    revision: r.get(3)?,
                    trigger: r.get(4)?,
                    branch: r.get(5)?,
                    reason: r.get(6)?,
                    created_ms: r.get(7)?,
                    updated_ms: r.get(8)?,
                },
                r.get::<_, String>(2)?,
            ))
        })?;
        rows.map(|row| {
            let (mut summary, s) = row?;
            summary.status = status(&s)?;
            Ok(summary)
        })
        .collect()
    }

    fn set_execution_status(&self, id: &str, status: Status, reason: Option<&str>) -> Result<()> {
        self.transition((id, None, None, &format!("execution-{}", status.as_str()), reason), |tx| {
            let n = tx.execute(
                "UPDATE executions SET status = ?2, reason = CASE WHEN ?2 = 'InProgress' THEN ?3 ELSE COALESCE(?3, reason) END,
                    stop_requested = CASE WHEN ?2 = 'InProgress' THEN NULL ELSE stop_requested END, updated_ms = ?4 WHERE id = ?1",
                params![id, status.as_str(), reason, now_ms()],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("no execution `{id}`")));
            }
            if status.is_final() {
                // A finished execution holds no stage and waits for none.
                tx.execute("DELETE FROM stage_locks WHERE execution_id = ?1", params![id])?;
                tx.execute("DELETE FROM stage_waiters WHERE execution_id = ?1", params![id])?;
            }
            Ok(())
        })
    }

    fn request_stop(&self, id: &str, mode: StopMode) -> Result<()> {
        let m = stop_text(mode);
        self.transition((id, None, None, "stop-requested", Some(m)), |tx| {
            tx.execute(
                "UPDATE executions SET stop_requested = ?2, updated_ms = ?3 WHERE id = ?1",
                params![id, m, now_ms()],
            )?;
            Ok(())
        })
    }

    fn claim_driver(
        &self,
        id: &str,
        driver: &str,
        stale_ms: i64,
        replacing: Option<&str>,
    ) -> Result<Result<(), String>> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (current, beat): (Option<String>, Option<i64>) = tx.query_row(
            "SELECT driver, heartbeat_ms FROM executions WHERE id = ?1",
            params![id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let now = now_ms();
        if let (Some(holder), Some(beat)) = (&current, beat)
            && holder != driver
            && Some(holder.as_str()) != replacing
            && now - beat < stale_ms
        {
            return Ok(Err(holder.clone()));
        }
        tx.execute(
            "UPDATE executions SET driver = ?2, heartbeat_ms = ?3 WHERE id = ?1",
            params![id, driver, now],
        )?;
        tx.commit()?;
        Ok(Ok(()))
    }

    fn heartbeat(&self, id: &str, driver: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE executions SET heartbeat_ms = ?3 WHERE id = ?1 AND driver = ?2",
            params![id, driver, now_ms()],
        )?;
        Ok(())
    }

    fn release_driver(&self, id: &str, driver: &str) -> Result<()> {
        self.conn().execute("UPDATE executions SET driver = NULL, heartbeat_ms = NULL WHERE id = ?1 AND driver = ?2", params![id, driver])?;
        Ok(())
    }

    fn stage_runs(&self, id: &str) -> Result<Vec<StageRun>> {
        stage_runs_in(&self.read(), id)
    }

    fn set_stage_status(&self, id: &str, stage: &str, status: Status) -> Result<()> {
        self.transition((id, Some(stage), None, &format!("stage-{}", status.as_str()), None), |tx| {
            let now = now_ms();
            tx.execute(
                "UPDATE stage_runs SET status = ?3,
                    started_ms = CASE WHEN ?3 = 'InProgress' THEN COALESCE(started_ms, ?4) ELSE started_ms END,
                    ended_ms = CASE WHEN ?3 IN ('Succeeded','Failed','Stopped','Superseded','RolledBack') THEN ?4 ELSE NULL END
                 WHERE execution_id = ?1 AND stage = ?2",
                params![id, stage, status.as_str(), now],
            )?;
            Ok(())
        })
    }

    fn enter_stage(&self, execution: &Execution, stage: &str, mode: Mode) -> Result<StageEntry> {
        if mode == Mode::Parallel {
            return Ok(StageEntry::Entered);
        }
        let (pipeline, id, seq) = (
            &execution.pipeline,
            &execution.id,
            i64::try_from(execution.seq).unwrap_or(i64::MAX),
        );
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // A holder that finished (or vanished) does not hold the stage.
        tx.execute(
            "DELETE FROM stage_locks WHERE pipeline = ?1 AND stage = ?2 AND execution_id NOT IN (SELECT id FROM executions WHERE status = 'InProgress')",
            params![pipeline, stage],
        )?;
        let holder: Option<(String, i64)> = tx
            .query_row(
                "SELECT l.execution_id, e.seq FROM stage_locks l JOIN executions e ON e.id = l.execution_id
                 WHERE l.pipeline = ?1 AND l.stage = ?2",
                params![pipeline, stage],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        tx.execute(
            "INSERT OR IGNORE INTO stage_waiters (pipeline, stage, execution_id, seq) VALUES (?1, ?2, ?3, ?4)",
            params![pipeline, stage, id, seq],
        )?;
        tx.execute(
            "DELETE FROM stage_waiters WHERE pipeline = ?1 AND stage = ?2 AND execution_id NOT IN (SELECT id FROM executions WHERE status = 'InProgress')",
            params![pipeline, stage],
        )?;
        // The waiter that goes next: the newest (superseded) or the oldest (queued).
        let order = if mode == Mode::Superseded {
            "DESC"
        } else {
            "ASC"
        };
        let next: String = tx.query_row(
            &format!("SELECT execution_id FROM stage_waiters WHERE pipeline = ?1 AND stage = ?2 ORDER BY seq {order} LIMIT 1"),
            params![pipeline, stage],
            |r| r.get(0),
        )?;
        let entry = stage_entry(mode, (id, seq), holder, next);
        if entry == StageEntry::Entered {
            tx.execute("INSERT OR REPLACE INTO stage_locks (pipeline, stage, execution_id) VALUES (?1, ?2, ?3)", params![pipeline, stage, id])?;
        }
        if !matches!(entry, StageEntry::Waiting { .. }) {
            tx.execute("DELETE FROM stage_waiters WHERE pipeline = ?1 AND stage = ?2 AND execution_id = ?3", params![pipeline, stage, id])?;
        }
        tx.commit()?;
        Ok(entry)
    }

    fn leave_stage(&self, pipeline: &str, stage: &str, id: &str) -> Result<()> {
        self.conn().execute(
            "DELETE FROM stage_locks WHERE pipeline = ?1 AND stage = ?2 AND execution_id = ?3",
            params![pipeline, stage, id],
        )?;
        Ok(())
    }

    fn action_runs(&self, id: &str) -> Result<Vec<ActionRun>> {
        action_runs_in(&self.read(), id)
    }

    fn begin_action(&self, run: &ActionKey<'_>, log_path: &str) -> Result<ActionRun> {
        let ActionKey {
            execution: id,
            stage,
            action,
            attempt,
        } = *run;
        let key = idempotency_key(id, stage, action, attempt);
        let now = now_ms();
        self.transition((id, Some(stage), Some(action), "action-InProgress", Some(&format!("attempt {attempt}"))), |tx| {
            tx.execute(
                "INSERT INTO action_runs (execution_id, stage, action, attempt, status, idempotency_key, log_path, started_ms)
                 VALUES (?1, ?2, ?3, ?4, 'InProgress', ?5, ?6, ?7)",
                params![id, stage, action, attempt, key, log_path, now],
            )?;
            Ok(())
        })?;
        Ok(ActionRun {
            stage: stage.into(),
            action: action.into(),
            attempt,
            status: Status::InProgress,
            idempotency_key: key,
            outputs: None,
            error: None,
            log_path: Some(log_path.into()),
            started_ms: now,
            ended_ms: None,
        })
    }

    fn set_action_status(&self, run: &ActionKey<'_>, status: Status) -> Result<()> {
        let ActionKey {
            execution: id,
            stage,
            action,
            attempt,
        } = *run;
        self.transition((id, Some(stage), Some(action), &format!("action-{}", status.as_str()), None), |tx| {
            tx.execute(
                "UPDATE action_runs SET status = ?5 WHERE execution_id = ?1 AND stage = ?2 AND action = ?3 AND attempt = ?4",
                params![id, stage, action, attempt, status.as_str()],
            )?;
            Ok(())
        })
    }

    fn finish_action(
        &self,
        run: &ActionKey<'_>,
        status: Status,
        outputs: Option<&serde_json::Value>,
        error: Option<&str>,
    ) -> Result<()> {
        let ActionKey {
            execution: id,
            stage,
            action,
            attempt,
        } = *run;
        let outputs = outputs.map(serde_json::Value::to_string);
        self.transition(
            (
                id,
                Some(stage),
                Some(action),
                &format!("action-{}", status.as_str()),
                error,
            ),
            |tx| {
                tx.execute(
                    "UPDATE action_runs SET status = ?5, outputs = ?6, error = ?7, ended_ms = ?8
                 WHERE execution_id = ?1 AND stage = ?2 AND action = ?3 AND attempt = ?4",
                    params![
                        id,
                        stage,
                        action,
                        attempt,
                        status.as_str(),
                        outputs,
                        error,
                        now_ms()
                    ],
                )?;
                tx.execute(
                    "UPDATE action_leases SET done = 1
                     WHERE execution_id = ?1 AND stage = ?2 AND action = ?3 AND attempt = ?4",
                    params![id, stage, action, attempt],
                )?;
                Ok(())
            },
        )?;
        self.changes.notify_waiters();
        Ok(())
    }

    fn queue_action(&self, run: &ActionKey<'_>, portable: bool) -> Result<()> {
        self.conn().execute(
            "INSERT OR IGNORE INTO action_leases (execution_id, stage, action, attempt, portable, queued_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![run.execution, run.stage, run.action, run.attempt, portable, now_ms()],
        )?;
        self.changes.notify_waiters();
        Ok(())
    }

    fn lease_action(
        &self,
        worker: &str,
        execution: Option<&str>,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<ActionLease>> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found = tx
            .query_row(
                &format!(
                    "SELECT {LEASE_COLUMNS} FROM action_leases
                     WHERE done = 0 AND (worker IS NULL OR expires_ms < ?1)
                       AND (execution_id = ?2 OR (?2 IS NULL AND portable = 1))
                     ORDER BY queued_ms, execution_id, stage, action LIMIT 1"
                ),
                params![now_ms, execution],
                lease_row,
            )
            .optional()?;
        let Some(mut lease) = found else {
            return Ok(None);
        };
        let expires = now_ms + lease_ms;
        tx.execute(
            "UPDATE action_leases SET worker = ?5, expires_ms = ?6
             WHERE execution_id = ?1 AND stage = ?2 AND action = ?3 AND attempt = ?4",
            params![
                lease.execution,
                lease.stage,
                lease.action,
                lease.attempt,
                worker,
                expires
            ],
        )?;
        tx.commit()?;
        lease.worker = Some(worker.to_owned());
        lease.expires_ms = Some(expires);
        Ok(Some(lease))
    }

    fn renew_action_lease(
        &self,
        run: &ActionKey<'_>,
        worker: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<bool> {
        let changed = self.conn().execute(
            "UPDATE action_leases SET expires_ms = ?6
             WHERE execution_id = ?1 AND stage = ?2 AND action = ?3 AND attempt = ?4
               AND worker = ?5 AND done = 0",
            params![
                run.execution,
                run.stage,
                run.action,
                run.attempt,
                worker,
                now_ms + lease_ms
            ],
        )?;
        Ok(changed == 1)
    }

    fn free_action_leases(&self, execution: &str, worker: &str) -> Result<usize> {
        let freed = self.conn().execute(
            "UPDATE action_leases SET worker = NULL, expires_ms = NULL
             WHERE execution_id = ?1 AND worker = ?2 AND done = 0",
            params![execution, worker],
        )?;
        if freed > 0 {
            self.changes.notify_waiters();
        }
        Ok(freed)
    }

    fn action_changes(&self) -> Arc<tokio::sync::Notify> {
        self.changes.clone()
    }

    fn action_leases(&self, execution: &str) -> Result<Vec<ActionLease>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {LEASE_COLUMNS} FROM action_leases WHERE execution_id = ?1 AND done = 0
             ORDER BY queued_ms, stage, action"
        ))?;
        let rows = stmt.query_map(params![execution], lease_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn record_artifact(&self, id: &str, artifact: &ArtifactRef, produced_by: &str) -> Result<()> {
        self.transition((id, None, None, "artifact", Some(&format!("{} {}", artifact.name, artifact.sha256))), |tx| {
            tx.execute(
                "INSERT OR REPLACE INTO artifacts (execution_id, name, sha256, size, location, envelope, produced_by, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![id, artifact.name, artifact.sha256, artifact.size as i64, artifact.location, artifact.envelope.to_string(), produced_by, now_ms()],
            )?;
            Ok(())
        })
    }

    fn artifacts(&self, id: &str) -> Result<Vec<ArtifactRef>> {
        artifacts_in(&self.read(), id)
    }

    fn request_approval(&self, request: &Approval) -> Result<Approval> {
        if let Some(existing) =
            self.approval(&request.execution_id, &request.stage, &request.action)?
        {
            return Ok(existing);
        }
        let r = request;
        self.transition((&r.execution_id, Some(&r.stage), Some(&r.action), "approval-requested", None), |tx| {
            tx.execute(
                &format!("INSERT INTO approvals ({APPROVAL_COLUMNS}) VALUES (?1, ?2, ?3, 'Pending', ?4, ?5, ?6, ?7, ?8, NULL, NULL, NULL, ?9, ?10)"),
                params![
                    r.execution_id,
                    r.stage,
                    r.action,
                    serde_json::to_string(&r.approvers).unwrap_or_default(),
                    i64::from(r.comment_required),
                    serde_json::to_string(&r.digests).unwrap_or_default(),
                    r.requested_ms,
                    r.deadline_ms,
                    i64::from(r.required.max(1)),
                    serde_json::to_string(&r.forbidden).unwrap_or_default()
                ],
            )?;
            Ok(())
        })?;
        self.approval(&r.execution_id, &r.stage, &r.action)?
            .ok_or_else(|| StoreError::NotFound("approval".into()))
    }

    fn approval(&self, id: &str, stage: &str, action: &str) -> Result<Option<Approval>> {
        approval_in(&self.read(), id, stage, action)
    }

    fn pending_approvals(&self, id: Option<&str>) -> Result<Vec<Approval>> {
        pending_in(&self.read(), id)
    }

    fn decide_approval(
        &self,
        id: &str,
        stage: &str,
        action: &str,
        decision: &Decision,
    ) -> Result<Approval> {
        let verb = if decision.approve {
            "approved"
        } else {
            "rejected"
        };
        self.transition((id, Some(stage), Some(action), &format!("approval-vote-{verb}"), Some(&decision.identity)), |tx| {
            let current = approval_in(tx, id, stage, action)?.ok_or_else(|| {
                StoreError::NotFound(format!("`{id}` has no approval in stage `{stage}`"))
            })?;
            if let Some(block) = block_in(tx, id)? {
                return Err(rules::Refusal::Blocked { stage: stage.to_owned(), why: block.refusal() }.into());
            }
            let artifacts = digests(&artifacts_in(tx, id)?);
            let now = now_ms();
            let verdict = rules::check(&current, decision, now, &artifacts)?;
            tx.execute(
                "INSERT INTO approval_votes (execution_id, stage, action, identity, approve, comment, digests, decided_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    id,
                    stage,
                    action,
                    decision.identity,
                    i64::from(decision.approve),
                    decision.comment,
                    serde_json::to_string(&artifacts).unwrap_or_default(),
                    now
                ],
            )?;
            let Some(decided) = decided(&current, decision, verdict) else {
                return Ok(());
            };
            tx.execute(
                "UPDATE approvals SET status = ?4, identity = ?5, comment = ?6, decided_ms = ?7 WHERE execution_id = ?1 AND stage = ?2 AND action = ?3",
                params![id, stage, action, decided.0, decided.1, decision.comment, now],
            )?;
            Ok(())
        })?;
        self.approval(id, stage, action)?
            .ok_or_else(|| StoreError::NotFound("approval".into()))
    }

    fn expire_approval(&self, id: &str, stage: &str, action: &str) -> Result<()> {
        self.transition((id, Some(stage), Some(action), "approval-Expired", None), |tx| {
            tx.execute(
                "UPDATE approvals SET status = 'Expired', decided_ms = ?4 WHERE execution_id = ?1 AND stage = ?2 AND action = ?3 AND status = 'Pending'",
                params![id, stage, action, now_ms()],
            )?;
            Ok(())
        })
    }

    fn record_release(
        &self,
        execution: &Execution,
        environment: &str,
        approved_by: Option<&str>,
        gate_override: Option<&str>,
        r: &ReleaseRecord,
    ) -> Result<i64> {
        self.transition((&execution.id, None, None, "release", Some(&format!("{environment} {} {}", r.target, r.version))), |tx| {
            tx.execute(
                "INSERT INTO releases (pipeline, environment, target, execution_id, revision, version, digest, previous_version, details, approved_by, outcome, verified, created_ms, gate_override)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    execution.pipeline,
                    environment,
                    r.target,
                    execution.id,
                    execution.revision,
                    r.version,
                    r.digest,
                    r.previous_version,
                    r.details.to_string(),
                    approved_by,
                    r.outcome,
                    i64::from(r.verified),
                    now_ms(),
                    gate_override
                ],
            )?;
            Ok(tx.last_insert_rowid())
        })
    }

    fn restore_release(
        &self,
        release: &Release,
        identity: &str,
        replaced: Option<&str>,
    ) -> Result<i64> {
        let r = &release.record;
        let detail = format!(
            "{} {} {} restored",
            release.environment, r.target, r.version
        );
        self.transition((&release.execution_id, None, None, "release", Some(&detail)), |tx| {
            tx.execute(
                "INSERT INTO releases (pipeline, environment, target, execution_id, revision, version, digest, previous_version, details, approved_by, outcome, verified, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'Restored', 1, ?11)",
                params![
                    release.pipeline,
                    release.environment,
                    r.target,
                    release.execution_id,
                    release.revision,
                    r.version,
                    r.digest,
                    replaced,
                    r.details.to_string(),
                    identity,
                    now_ms()
                ],
            )?;
            Ok(tx.last_insert_rowid())
        })
    }

    fn releases(
        &self,
        pipeline: &str,
        environment: Option<&str>,
        target: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Release>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT r.id, r.pipeline, r.environment, r.target, r.execution_id, r.revision, r.version, r.digest, r.previous_version, r.details, r.approved_by, r.outcome, r.verified, r.created_ms, b.reason, r.gate_override
             FROM releases r LEFT JOIN release_blocks b ON b.execution_id = r.execution_id
             WHERE r.pipeline = ?1 AND (?2 IS NULL OR r.environment = ?2) AND (?3 IS NULL OR r.target = ?3)
             ORDER BY r.id DESC LIMIT ?4",
        )?;
        let rows = stmt.query_map(params![pipeline, environment, target, limit as i64], |r| {
            let details: Option<String> = r.get(9)?;
            Ok(Release {
                id: r.get(0)?,
                pipeline: r.get(1)?,
                environment: r.get(2)?,
                execution_id: r.get(4)?,
                revision: r.get(5)?,
                approved_by: r.get(10)?,
                created_ms: r.get(13)?,
                record: ReleaseRecord {
                    target: r.get(3)?,
                    version: r.get(6)?,
                    digest: r.get(7)?,
                    previous_version: r.get(8)?,
                    details: details
                        .and_then(|d| serde_json::from_str(&d).ok())
                        .unwrap_or_default(),
                    outcome: r.get(11)?,
                    verified: r.get::<_, i64>(12)? != 0,
                },
                blocked: r.get(14)?,
                gate_override: r.get(15)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn block_release(&self, id: &str, identity: &str, reason: &str) -> Result<ReleaseBlock> {
        self.transition((id, None, None, "release-blocked", Some(&format!("{identity}: {reason}"))), |tx| {
            let known: Option<String> = tx
                .query_row("SELECT id FROM executions WHERE id = ?1", params![id], |r| r.get(0))
                .optional()?;
            if known.is_none() {
                return Err(StoreError::NotFound(format!("no execution `{id}`")));
            }
            tx.execute(
                "INSERT INTO release_blocks (execution_id, reason, identity, blocked_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (execution_id) DO UPDATE SET reason = excluded.reason, identity = excluded.identity, blocked_ms = excluded.blocked_ms",
                params![id, reason, identity, now_ms()],
            )?;
            block_in(tx, id)?.ok_or_else(|| StoreError::NotFound("release block".into()))
        })
    }

    fn record_gate(&self, id: &str, stage: &str, holds: &[String]) -> Result<()> {
        let json = serde_json::to_string(holds).unwrap_or_else(|_| "[]".into());
        let same = {
            let conn = self.read();
            let before: Option<String> = conn
                .prepare_cached("SELECT holds FROM gates WHERE execution_id = ?1 AND stage = ?2")?
                .query_row(params![id, stage], |r| r.get(0))
                .optional()?;
            before.as_deref() == Some(json.as_str())
        };
        let upsert = |tx: &Connection| -> Result<()> {
            tx.execute(
                "INSERT INTO gates (execution_id, stage, holds, checked_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (execution_id, stage) DO UPDATE SET holds = excluded.holds, checked_ms = excluded.checked_ms",
                params![id, stage, json, now_ms()],
            )?;
            Ok(())
        };
        if same {
            // Only the time of the check moved: no event, no transition.
            return upsert(&self.conn());
        }
        let (kind, detail) = if holds.is_empty() {
            ("gates-open", None)
        } else {
            ("gates-held", Some(holds.join("; ")))
        };
        self.transition((id, Some(stage), None, kind, detail.as_deref()), |tx| {
            upsert(tx)
        })
    }

    fn override_gate(
        &self,
        id: &str,
        stage: &str,
        identity: &str,
        reason: &str,
    ) -> Result<GateState> {
        let decision = GateOverride {
            identity: identity.to_owned(),
            reason: reason.to_owned(),
            at_ms: now_ms(),
        };
        self.transition(
            (id, Some(stage), None, "gates-overridden", Some(&decision.ledger_text())),
            |tx| {
                let changed = tx.execute(
                    "UPDATE gates SET override_identity = ?3, override_reason = ?4, override_ms = ?5 WHERE execution_id = ?1 AND stage = ?2",
                    params![id, stage, decision.identity, decision.reason, decision.at_ms],
                )?;
                if changed == 0 {
                    return Err(StoreError::NotFound(format!("no gates of stage `{stage}` in `{id}`")));
                }
                gates_in(tx, id)?
                    .into_iter()
                    .find(|g| g.stage == stage)
                    .ok_or_else(|| StoreError::NotFound("gate".into()))
            },
        )
    }

    fn gates(&self, id: &str) -> Result<Vec<GateState>> {
        gates_in(&self.read(), id)
    }

    fn unblock_release(&self, id: &str, identity: &str) -> Result<Option<ReleaseBlock>> {
        let Some(block) = self.release_block(id)? else {
            return Ok(None);
        };
        self.transition(
            (id, None, None, "release-unblocked", Some(identity)),
            |tx| {
                tx.execute(
                    "DELETE FROM release_blocks WHERE execution_id = ?1",
                    params![id],
                )?;
                Ok(())
            },
        )?;
        Ok(Some(block))
    }

    fn release_block(&self, id: &str) -> Result<Option<ReleaseBlock>> {
        block_in(&self.read(), id)
    }

    fn events(&self, id: &str) -> Result<Vec<Event>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached("SELECT stage, action, kind, detail, at_ms FROM events WHERE execution_id = ?1 ORDER BY id")?;
        let rows = stmt.query_map(params![id], |r| {
            Ok(Event {
                stage: r.get(0)?,
                action: r.get(1)?,
                kind: r.get(2)?,
                detail: r.get(3)?,
                at_ms: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: `ferry status` polling a new state directory while `ferry run` created it
    /// raced to migrate the schema, and one failed with "table already exists"; then the
    /// switch to WAL failed with "database is locked" without waiting.
    #[test]
    fn concurrent_opens_of_a_new_database_migrate_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || SqliteStore::open(&path).map(|_| ()))
            })
            .collect();
        for h in handles {
            h.join().unwrap().unwrap();
        }
    }
}
