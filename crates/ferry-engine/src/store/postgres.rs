//! [`Store`] on PostgreSQL (`state: postgres://…` or `FERRY_STATE_URL`): the same tables as
//! SQLite (`migrations/postgres/`), so that state outlives any one host and several ferry
//! processes can share it.
//!
//! The `Store` trait is synchronous, as SQLite is; tokio-postgres is async. Each call runs its
//! future to completion on the calling thread ([`block_on`]) while a small runtime of the
//! store's own drives the connections, so a call works from plain threads and from inside any
//! tokio runtime alike, and blocks its caller as a SQLite call does.
//!
//! SQLite serializes every write; here the transactions that read before they write take
//! the lock that makes them safe among several processes: a transaction-scoped advisory lock
//! per pipeline (numbering executions) or per stage (entering it), and `FOR UPDATE` on the row
//! a decision changes (the driver's claim, an approval).

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Row};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::rows::{
    approval_status, decided, json_column, stage_entry, status, stop_mode, stop_text,
};
use super::sqlite::TransitionHook;
use super::{ActionKey, Decision, Event, Result, StageEntry, Store, StoreError, digests};
use crate::approval::rules;
use crate::model::*;

/// Migrations, in order; `ferry_schema` records the number applied.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/postgres/001_initial.sql"),
    include_str!("../../migrations/postgres/002_action_leases.sql"),
];

/// The NOTIFY channel of [`Store::broadcast`].
const CHANNEL: &str = "ferry_events";

/// The NOTIFY channel of [`Store::action_changes`]: an action was queued, ended or freed.
const ACTIONS: &str = "ferry_actions";

/// NOTIFY's limit on a payload is 8000 bytes; a longer message is cut (at a character).
const MAX_MESSAGE: usize = 7900;

/// Connections in the pool: what one process's concurrent actions use at once.
const POOL_SIZE: usize = 8;

pub struct PostgresStore {
    pool: Pool,
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    /// Messages to NOTIFY, sent in order by a task of the runtime.
    outbox: tokio::sync::mpsc::UnboundedSender<String>,
    /// Drives the connections; `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
    hook: Option<TransitionHook>,
    /// [`Store::action_changes`], told by a session that LISTENs on [`ACTIONS`] from the
    /// first call on (a CLI command that never waits for actions opens none).
    changes: Arc<tokio::sync::Notify>,
    listening: std::sync::Once,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // Not a blocking shutdown: the store may be dropped inside another runtime.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn pg(e: &tokio_postgres::Error) -> StoreError {
    let text = match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text = format!("{text}: {s}");
                source = s.source();
            }
            match super::tls::certificate_hint(e) {
                Some(hint) => format!("{text} — {hint}"),
                None => text,
            }
        }
    };
    StoreError::Postgres(text)
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> StoreError {
        pg(&e)
    }
}

/// The URL with its password replaced, for messages: in the user part, and libpq's
/// `password=` parameter.
pub(crate) fn redacted(url: &str) -> String {
    let (url, query) = match url.split_once('?') {
        Some((url, query)) => (url, Some(query)),
        None => (url, None),
    };
    let mut shown = match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    };
    if let Some(query) = query {
        let pairs: Vec<&str> = query
            .split('&')
            .map(|p| {
                if p.starts_with("password=") {
                    "password=***"
                } else {
                    p
                }
            })
            .collect();
        shown = format!("{shown}?{}", pairs.join("&"));
    }
    shown
}

/// For as long as the store's runtime runs: LISTENs on [`ACTIONS`] and tells `changes` of
/// each notification. A lost session is opened again a second later, and `changes` told once
/// it listens, since what changed meanwhile was not heard.
async fn listen_for_actions(
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    changes: Arc<tokio::sync::Notify>,
) {
    loop {
        match config.connect(tls.clone()).await {
            Ok((client, mut connection)) => {
                let told = changes.clone();
                let session = tokio::spawn(async move {
                    while let Some(message) =
                        std::future::poll_fn(|cx| connection.poll_message(cx)).await
                    {
                        match message {
                            Ok(tokio_postgres::AsyncMessage::Notification(_)) => {
                                told.notify_waiters();
                            }
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                });
                match client.batch_execute(&format!("LISTEN {ACTIONS}")).await {
                    Ok(()) => {
                        changes.notify_waiters();
                        let _ = session.await;
                    }
                    Err(e) => {
                        tracing::debug!(error = %pg(&e), "cannot listen for actions");
                        session.abort();
                    }
                }
            }
            Err(e) => tracing::debug!(error = %pg(&e), "cannot listen for actions"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// Runs a future to completion on this thread, parking between polls.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Arc::new(Unpark(std::thread::current())).into();
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

type Params<'a> = [&'a (dyn ToSql + Sync)];

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`, with
    /// libpq's `sslmode` and `sslrootcert`: [`super::tls`]) and brings its schema up to date.
    pub fn open(url: &str) -> Result<PostgresStore> {
        let store = PostgresStore::connect(url)?;
        store.run(store.migrate()).map_err(|e| match e {
            StoreError::Postgres(why) => StoreError::Postgres(format!("{}: {why}", redacted(url))),
            other => other,
        })?;
        Ok(store)
    }

    /// A pool on `url`, its schema not looked at.
    fn connect(url: &str) -> Result<PostgresStore> {
        let options = super::tls::options(url)?;
        let tls = super::tls::connector(&options)?;
        let config: tokio_postgres::Config = options.url.parse().map_err(|e| {
            StoreError::Postgres(format!("`{}` is not a PostgreSQL URL: {e}", redacted(url)))
        })?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("ferry-postgres")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Postgres(format!("cannot start its runtime: {e}")))?;
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = {
            let _in = runtime.enter();
            Pool::builder(manager)
                .max_size(POOL_SIZE)
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .build()
                .map_err(|e| StoreError::Postgres(e.to_string()))?
        };
        let (outbox, mut queued) = tokio::sync::mpsc::unbounded_channel::<String>();
        let sender = pool.clone();
        runtime.spawn(async move {
            while let Some(message) = queued.recv().await {
                // Lost while the database is away: listeners resynchronize from the state.
                if let Ok(client) = sender.get().await {
                    let _ = client
                        .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &message])
                        .await;
                }
            }
        });
        Ok(PostgresStore {
            pool,
            config,
            tls,
            outbox,
            runtime: Some(runtime),
            hook: None,
            changes: Arc::default(),
            listening: std::sync::Once::new(),
        })
    }

    /// Runs `hook` after every committed transition.
    #[must_use]
    pub fn with_transition_hook(mut self, hook: TransitionHook) -> Self {
        self.hook = Some(hook);
        self
    }

    fn run<T>(&self, future: impl Future<Output = Result<T>>) -> Result<T> {
        let _in = self.runtime.as_ref().map(tokio::runtime::Runtime::enter);
        block_on(future)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(e) => pg(&e),
            other => StoreError::Postgres(other.to_string()),
        })
    }

    async fn migrate(&self) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // Several processes may start on a new database at once: one migrates.
        tx.execute("SELECT pg_advisory_xact_lock(7296001)", &[])
            .await?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS ferry_schema (version BIGINT NOT NULL)")
            .await?;
        let applied: i64 = tx
            .query_opt("SELECT version FROM ferry_schema", &[])
            .await?
            .map_or(0, |r| r.get(0));
        let applied = usize::try_from(applied).unwrap_or(0);
        if applied > MIGRATIONS.len() {
            return Err(StoreError::Corrupt(format!(
                "the database is at schema version {applied}, newer than this ferry ({}): upgrade ferry",
                MIGRATIONS.len()
            )));
        }
        for sql in &MIGRATIONS[applied..] {
            tx.batch_execute(sql).await?;
        }
        let version = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
        tx.execute("DELETE FROM ferry_schema", &[]).await?;
        tx.execute(
            "INSERT INTO ferry_schema (version) VALUES ($1)",
            &[&version],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A write transaction that records an event and runs the transition hook after commit.
    async fn transition<T>(
        &self,
        event: (&str, Option<&str>, Option<&str>, &str, Option<&str>),
        f: impl AsyncFnOnce(&tokio_postgres::Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        let out = {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let out = f(&tx).await?;
            let (execution, stage, action, kind, detail) = event;
            tx.execute(
                "INSERT INTO events (execution_id, stage, action, kind, detail, at_ms) VALUES ($1, $2, $3, $4, $5, $6)",
                &[&execution, &stage, &action, &kind, &detail, &now_ms()],
            )
            .await?;
            tx.commit().await?;
            out
        };
        if let Some(hook) = &self.hook {
            hook();
        }
        Ok(out)
    }

    async fn read<T>(
        &self,
        f: impl AsyncFnOnce(&deadpool_postgres::Object) -> Result<T>,
    ) -> Result<T> {
        let client = self.client().await?;
        f(&client).await
    }

    async fn execute(&self, sql: &str, params: &Params<'_>) -> Result<u64> {
        Ok(self.client().await?.execute(sql, params).await?)
    }
}

const LEASE_COLUMNS: &str = "execution_id, stage, action, attempt, portable, worker, expires_ms";

fn lease_row(r: &Row) -> ActionLease {
    ActionLease {
        execution: r.get(0),
        stage: r.get(1),
        action: r.get(2),
        attempt: u32::try_from(r.get::<_, i64>(3)).unwrap_or(0),
        portable: r.get(4),
        worker: r.get(5),
        expires_ms: r.get(6),
    }
}

const EXECUTION_COLUMNS: &str = "id, pipeline, seq, revision, trigger, status, reason, definition, stop_requested, driver, heartbeat_ms, created_ms, updated_ms, started_by, branch";

fn execution_row(r: &Row) -> Result<Execution> {
    let definition: String = r.get(7);
    let started_by: String = r.get(13);
    let id: String = r.get(0);
    Ok(Execution {
        definition: serde_json::from_str(&definition)
            .map_err(|err| StoreError::Corrupt(format!("definition of {id}: {err}")))?,
        id,
        pipeline: r.get(1),
        seq: u64::try_from(r.get::<_, i64>(2)).unwrap_or(0),
        revision: r.get(3),
        trigger: r.get(4),
        started_by: serde_json::from_str(&started_by).unwrap_or_default(),
        branch: r.get(14),
        status: status(r.get(5))?,
        reason: r.get(6),
        stop_requested: stop_mode(r.get(8)),
        driver: r.get(9),
        heartbeat_ms: r.get(10),
        created_ms: r.get(11),
        updated_ms: r.get(12),
    })
}

/// The SELECT of `columns` from the executions `q` asks for, and its values.
fn listing(columns: &str, q: &ExecutionQuery) -> (String, Vec<Box<dyn ToSql + Sync + Send>>) {
    let mut sql = format!("SELECT {columns} FROM executions WHERE TRUE");
    let mut values: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    let mut filter = |clause: &str, value: Option<Box<dyn ToSql + Sync + Send>>| {
        if let Some(v) = value {
            values.push(v);
            sql.push_str(&clause.replace('?', &format!("${}", values.len())));
        }
    };
    filter(
        " AND pipeline = ?",
        q.pipeline.clone().map(|v| Box::new(v) as _),
    );
    filter(
        " AND status = ?",
        q.status.map(|s| Box::new(s.as_str().to_owned()) as _),
    );
    filter(
        " AND branch = ?",
        q.branch.clone().map(|v| Box::new(v) as _),
    );
    filter(
        " AND strpos(trigger, ?) > 0",
        q.trigger.clone().map(|v| Box::new(v) as _),
    );
    filter(" AND created_ms < ?", q.before_ms.map(|v| Box::new(v) as _));
    values.push(Box::new(i64::try_from(q.limit).unwrap_or(i64::MAX)));
    sql.push_str(&format!(
        " ORDER BY created_ms DESC, seq DESC LIMIT ${}",
        values.len()
    ));
    (sql, values)
}

async fn execution_in(c: &impl GenericClient, id: &str) -> Result<Option<Execution>> {
    c.query_opt(
        &format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE id = $1"),
        &[&id],
    )
    .await?
    .as_ref()
    .map(execution_row)
    .transpose()
}

async fn stage_runs_in(c: &impl GenericClient, id: &str) -> Result<Vec<StageRun>> {
    c.query(
        "SELECT stage, position, status, started_ms, ended_ms FROM stage_runs WHERE execution_id = $1 ORDER BY position",
        &[&id],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(StageRun {
            stage: r.get(0),
            position: usize::try_from(r.get::<_, i64>(1)).unwrap_or(0),
            status: status(r.get(2))?,
            started_ms: r.get(3),
            ended_ms: r.get(4),
        })
    })
    .collect()
}

async fn action_runs_in(c: &impl GenericClient, id: &str) -> Result<Vec<ActionRun>> {
    c.query(
        "SELECT stage, action, attempt, status, idempotency_key, outputs, error, log_path, started_ms, ended_ms
         FROM action_runs WHERE execution_id = $1 ORDER BY started_ms, stage, action, attempt",
        &[&id],
    )
    .await?
    .iter()
    .map(|r| {
        let outputs: Option<String> = r.get(5);
        Ok(ActionRun {
            stage: r.get(0),
            action: r.get(1),
            attempt: u32::try_from(r.get::<_, i64>(2)).unwrap_or(0),
            status: status(r.get(3))?,
            idempotency_key: r.get(4),
            outputs: outputs
                .map(|o| json_column(&o, "action outputs"))
                .transpose()?,
            error: r.get(6),
            log_path: r.get(7),
            started_ms: r.get(8),
            ended_ms: r.get(9),
        })
    })
    .collect()
}

const APPROVAL_COLUMNS: &str = "execution_id, stage, action, status, approvers, comment_required, digests, requested_ms, deadline_ms, identity, comment, decided_ms, required, forbidden";

/// An approval row with its JSON columns read and its votes loaded.
async fn approval_row(c: &impl GenericClient, r: &Row) -> Result<Approval> {
    let mut a = Approval {
        execution_id: r.get(0),
        stage: r.get(1),
        action: r.get(2),
        status: approval_status(r.get(3))?,
        approvers: json_column(r.get(4), "approvers")?,
        comment_required: r.get::<_, i64>(5) != 0,
        digests: json_column(r.get(6), "digests")?,
        requested_ms: r.get(7),
        deadline_ms: r.get(8),
        identity: r.get(9),
        comment: r.get(10),
        decided_ms: r.get(11),
        required: u32::try_from(r.get::<_, i64>(12)).unwrap_or(1),
        forbidden: json_column(r.get(13), "forbidden")?,
        votes: Vec::new(),
    };
    for v in c
        .query(
            "SELECT identity, approve, comment, digests, decided_ms FROM approval_votes
             WHERE execution_id = $1 AND stage = $2 AND action = $3 ORDER BY decided_ms, id",
            &[&a.execution_id, &a.stage, &a.action],
        )
        .await?
    {
        a.votes.push(Vote {
            identity: v.get(0),
            approve: v.get::<_, i64>(1) != 0,
            comment: v.get(2),
            digests: json_column(v.get(3), "vote digests")?,
            decided_ms: v.get(4),
        });
    }
    Ok(a)
}

async fn approval_in(
    c: &impl GenericClient,
    id: &str,
    stage: &str,
    action: &str,
    lock: bool,
) -> Result<Option<Approval>> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let row = c
        .query_opt(
            &format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE execution_id = $1 AND stage = $2 AND action = $3{lock}"),
            &[&id, &stage, &action],
        )
        .await?;
    match row {
        Some(r) => Ok(Some(approval_row(c, &r).await?)),
        None => Ok(None),
    }
}

async fn pending_in(c: &impl GenericClient, id: Option<&str>) -> Result<Vec<Approval>> {
    let rows = c
        .query(
            &format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE status = 'Pending' AND ($1::text IS NULL OR execution_id = $1) ORDER BY requested_ms, stage, action"),
            &[&id],
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.push(approval_row(c, r).await?);
    }
    Ok(out)
}

async fn block_in(c: &impl GenericClient, id: &str) -> Result<Option<ReleaseBlock>> {
    Ok(c
        .query_opt(
            "SELECT execution_id, reason, identity, blocked_ms FROM release_blocks WHERE execution_id = $1",
            &[&id],
        )
        .await?
        .map(|r| ReleaseBlock {
            execution_id: r.get(0),
            reason: r.get(1),
            identity: r.get(2),
            blocked_ms: r.get(3),
        }))
}

async fn gates_in(c: &impl GenericClient, id: &str) -> Result<Vec<GateState>> {
    c.query(
        "SELECT stage, holds, checked_ms, override_identity, override_reason, override_ms FROM gates WHERE execution_id = $1 ORDER BY stage",
        &[&id],
    )
    .await?
    .iter()
    .map(|r| {
        let overridden = match (r.get(3), r.get(4), r.get(5)) {
            (Some(identity), Some(reason), Some(at_ms)) => Some(GateOverride {
                identity,
                reason,
                at_ms,
            }),
            _ => None,
        };
        Ok(GateState {
            stage: r.get(0),
            holds: json_column(r.get(1), "gate holds")?,
            checked_ms: r.get(2),
            overridden,
        })
    })
    .collect()
}

async fn artifacts_in(c: &impl GenericClient, id: &str) -> Result<Vec<ArtifactRef>> {
    c.query(
        "SELECT name, sha256, size, location, envelope FROM artifacts WHERE execution_id = $1 ORDER BY name",
        &[&id],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(ArtifactRef {
            name: r.get(0),
            sha256: r.get(1),
            size: u64::try_from(r.get::<_, i64>(2)).unwrap_or(0),
            location: r.get(3),
            envelope: json_column(r.get(4), "artifact envelope")?,
        })
    })
    .collect()
}

/// A transaction-scoped advisory lock on `key` (a pipeline, a stage): held to the commit.
async fn lock(tx: &tokio_postgres::Transaction<'_>, key: &str) -> Result<()> {
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        &[&key],
    )
    .await?;
    Ok(())
}

impl PostgresStore {
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
        let (id, created) = self.run(async {
            let now = now_ms();
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            lock(&tx, &format!("pipeline {}", definition.name)).await?;
            if once
                && let Some(row) = tx
                    .query_opt(
                        "SELECT id FROM executions WHERE pipeline = $1 AND trigger = $2 ORDER BY seq LIMIT 1",
                        &[&definition.name, &trigger.text],
                    )
                    .await?
            {
                return Ok((row.get::<_, String>(0), false));
            }
            let seq: i64 = tx
                .query_one(
                    "SELECT COALESCE(MAX(seq), 0) + 1 FROM executions WHERE pipeline = $1",
                    &[&definition.name],
                )
                .await?
                .get(0);
            let id = format!("{}-{seq}", definition.name);
            let started_by = serde_json::to_string(&trigger.identities).unwrap_or_default();
            tx.execute(
                "INSERT INTO executions (id, pipeline, seq, revision, trigger, status, definition, created_ms, updated_ms, started_by, branch) VALUES ($1, $2, $3, $4, $5, 'InProgress', $6, $7, $7, $8, $9)",
                &[&id, &definition.name, &seq, &revision, &trigger.text, &def, &now, &started_by, &trigger.branch],
            )
            .await?;
            for (position, stage) in definition.stages.iter().enumerate() {
                let position = i64::try_from(position).unwrap_or(i64::MAX);
                tx.execute(
                    "INSERT INTO stage_runs (execution_id, stage, position, status) VALUES ($1, $2, $3, 'Pending')",
                    &[&id, &stage.name, &position],
                )
                .await?;
            }
            tx.execute(
                "INSERT INTO events (execution_id, kind, detail, at_ms) VALUES ($1, 'execution-created', $2, $3)",
                &[&id, &format!("revision {revision}, {}", trigger.text), &now],
            )
            .await?;
            tx.commit().await?;
            Ok((id, true))
        })?;
        if created && let Some(hook) = &self.hook {
            hook();
        }
        self.execution(&id)?.ok_or_else(|| StoreError::NotFound(id))
    }
}

impl Store for PostgresStore {
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
        self.run(self.read(async |c| execution_in(&***c, id).await))
    }

    fn find_execution(&self, pipeline: Option<&str>, key: &str) -> Result<Option<Execution>> {
        if let Some(e) = self.execution(key)? {
            return Ok(Some(e));
        }
        let Ok(seq) = key.trim_start_matches('#').parse::<i64>() else {
            return Ok(None);
        };
        self.run(self.read(async |c| {
            c.query_opt(
                &format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE seq = $1 AND ($2::text IS NULL OR pipeline = $2) ORDER BY created_ms DESC LIMIT 1"),
                &[&seq, &pipeline],
            )
            .await?
            .as_ref()
            .map(execution_row)
            .transpose()
        }))
    }

    fn executions(&self, q: &ExecutionQuery) -> Result<Vec<Execution>> {
        let (sql, values) = listing(EXECUTION_COLUMNS, q);
        let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| &**v as _).collect();
        self.run(self.read(async |c| {
            c.query(&sql, &params)
                .await?
                .iter()
                .map(execution_row)
                .collect()
        }))
    }

    fn snapshot(&self, id: &str) -> Result<Option<Snapshot>> {
        self.run(async {
            let mut client = self.client().await?;
            // One repeatable-read transaction: one consistent view of the execution.
            let tx = client
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            let Some(execution) = execution_in(&*tx, id).await? else {
                return Ok(None);
            };
            let snapshot = Snapshot {
                execution,
                stages: stage_runs_in(&*tx, id).await?,
                actions: action_runs_in(&*tx, id).await?,
                pending_approvals: pending_in(&*tx, Some(id)).await?,
                blocked: block_in(&*tx, id).await?,
                gates: gates_in(&*tx, id).await?,
            };
            tx.commit().await?;
            Ok(Some(snapshot))
        })
    }

    fn summaries(&self, q: &ExecutionQuery) -> Result<Vec<ExecutionSummary>> {
        let (sql, values) = listing(
            "id, pipeline, status, revision, trigger, branch, reason, created_ms, updated_ms",
            q,
        );
        let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| &**v as _).collect();
        self.run(self.read(async |c| {
            c.query(&sql, &params)
                .await?
                .iter()
                .map(|r| {
                    Ok(ExecutionSummary {
                        id: r.get(0),
                        pipeline: r.get(1),
                        status: status(r.get(2))?,
                        revision: r.get(3),
                        trigger: r.get(4),
                        branch: r.get(5),
                        reason: r.get(6),
                        created_ms: r.get(7),
                        updated_ms: r.get(8),
                    })
                })
                .collect()
        }))
    }

    fn set_execution_status(&self, id: &str, status: Status, reason: Option<&str>) -> Result<()> {
        let kind = format!("execution-{}", status.as_str());
        self.run(self.transition((id, None, None, &kind, reason), async |tx| {
            let n = tx
                .execute(
                    "UPDATE executions SET status = $2, reason = CASE WHEN $2 = 'InProgress' THEN $3 ELSE COALESCE($3, reason) END,
                        stop_requested = CASE WHEN $2 = 'InProgress' THEN NULL ELSE stop_requested END, updated_ms = $4 WHERE id = $1",
                    &[&id, &status.as_str(), &reason, &now_ms()],
                )
                .await?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("no execution `{id}`")));
            }
            if status.is_final() {
                // A finished execution holds no stage and waits for none.
                tx.execute("DELETE FROM stage_locks WHERE execution_id = $1", &[&id])
                    .await?;
                tx.execute("DELETE FROM stage_waiters WHERE execution_id = $1", &[&id])
                    .await?;
            }
            Ok(())
        }))
    }

    fn request_stop(&self, id: &str, mode: StopMode) -> Result<()> {
        let m = stop_text(mode);
        self.run(
            self.transition((id, None, None, "stop-requested", Some(m)), async |tx| {
                tx.execute(
                    "UPDATE executions SET stop_requested = $2, updated_ms = $3 WHERE id = $1",
                    &[&id, &m, &now_ms()],
                )
                .await?;
                Ok(())
            }),
        )
    }

    fn claim_driver(
        &self,
        id: &str,
        driver: &str,
        stale_ms: i64,
        replacing: Option<&str>,
    ) -> Result<Result<(), String>> {
        self.run(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let row = tx
                .query_one(
                    "SELECT driver, heartbeat_ms FROM executions WHERE id = $1 FOR UPDATE",
                    &[&id],
                )
                .await?;
            let (current, beat): (Option<String>, Option<i64>) = (row.get(0), row.get(1));
            let now = now_ms();
            if let (Some(holder), Some(beat)) = (&current, beat)
                && holder != driver
                && Some(holder.as_str()) != replacing
                && now - beat < stale_ms
            {
                return Ok(Err(holder.clone()));
            }
            tx.execute(
                "UPDATE executions SET driver = $2, heartbeat_ms = $3 WHERE id = $1",
                &[&id, &driver, &now],
            )
            .await?;
            tx.commit().await?;
            Ok(Ok(()))
        })
    }

    fn heartbeat(&self, id: &str, driver: &str) -> Result<()> {
        self.run(self.execute(
            "UPDATE executions SET heartbeat_ms = $3 WHERE id = $1 AND driver = $2",
            &[&id, &driver, &now_ms()],
        ))?;
        Ok(())
    }

    fn release_driver(&self, id: &str, driver: &str) -> Result<()> {
        self.run(self.execute(
            "UPDATE executions SET driver = NULL, heartbeat_ms = NULL WHERE id = $1 AND driver = $2",
            &[&id, &driver],
        ))?;
        Ok(())
    }

    fn stage_runs(&self, id: &str) -> Result<Vec<StageRun>> {
        self.run(self.read(async |c| stage_runs_in(&***c, id).await))
    }

    fn set_stage_status(&self, id: &str, stage: &str, status: Status) -> Result<()> {
        let kind = format!("stage-{}", status.as_str());
        self.run(self.transition((id, Some(stage), None, &kind, None), async |tx| {
            tx.execute(
                "UPDATE stage_runs SET status = $3,
                    started_ms = CASE WHEN $3 = 'InProgress' THEN COALESCE(started_ms, $4) ELSE started_ms END,
                    ended_ms = CASE WHEN $3 IN ('Succeeded','Failed','Stopped','Superseded','RolledBack') THEN $4 ELSE NULL END
                 WHERE execution_id = $1 AND stage = $2",
                &[&id, &stage, &status.as_str(), &now_ms()],
            )
            .await?;
            Ok(())
        }))
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
        self.run(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            lock(&tx, &format!("stage {pipeline} {stage}")).await?;
            // A holder that finished (or vanished) does not hold the stage.
            tx.execute(
                "DELETE FROM stage_locks WHERE pipeline = $1 AND stage = $2 AND execution_id NOT IN (SELECT id FROM executions WHERE status = 'InProgress')",
                &[pipeline, &stage],
            )
            .await?;
            let holder: Option<(String, i64)> = tx
                .query_opt(
                    "SELECT l.execution_id, e.seq FROM stage_locks l JOIN executions e ON e.id = l.execution_id
                     WHERE l.pipeline = $1 AND l.stage = $2",
                    &[pipeline, &stage],
                )
                .await?
                .map(|r| (r.get(0), r.get(1)));
            tx.execute(
                "INSERT INTO stage_waiters (pipeline, stage, execution_id, seq) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[pipeline, &stage, id, &seq],
            )
            .await?;
            tx.execute(
                "DELETE FROM stage_waiters WHERE pipeline = $1 AND stage = $2 AND execution_id NOT IN (SELECT id FROM executions WHERE status = 'InProgress')",
                &[pipeline, &stage],
            )
            .await?;
            // The waiter that goes next: the newest (superseded) or the oldest (queued).
            let order = if mode == Mode::Superseded { "DESC" } else { "ASC" };
            let next: String = tx
                .query_one(
                    &format!("SELECT execution_id FROM stage_waiters WHERE pipeline = $1 AND stage = $2 ORDER BY seq {order} LIMIT 1"),
                    &[pipeline, &stage],
                )
                .await?
                .get(0);
            let entry = stage_entry(mode, (id, seq), holder, next);
            if entry == StageEntry::Entered {
                tx.execute(
                    "INSERT INTO stage_locks (pipeline, stage, execution_id) VALUES ($1, $2, $3)
                     ON CONFLICT (pipeline, stage) DO UPDATE SET execution_id = excluded.execution_id",
                    &[pipeline, &stage, id],
                )
                .await?;
            }
            if !matches!(entry, StageEntry::Waiting { .. }) {
                tx.execute(
                    "DELETE FROM stage_waiters WHERE pipeline = $1 AND stage = $2 AND execution_id = $3",
                    &[pipeline, &stage, id],
                )
                .await?;
            }
            tx.commit().await?;
            Ok(entry)
        })
    }

    fn leave_stage(&self, pipeline: &str, stage: &str, id: &str) -> Result<()> {
        self.run(self.execute(
            "DELETE FROM stage_locks WHERE pipeline = $1 AND stage = $2 AND execution_id = $3",
            &[&pipeline, &stage, &id],
        ))?;
        Ok(())
    }

    fn action_runs(&self, id: &str) -> Result<Vec<ActionRun>> {
        self.run(self.read(async |c| action_runs_in(&***c, id).await))
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
        let detail = format!("attempt {attempt}");
        self.run(self.transition(
            (id, Some(stage), Some(action), "action-InProgress", Some(&detail)),
            async |tx| {
                tx.execute(
                    "INSERT INTO action_runs (execution_id, stage, action, attempt, status, idempotency_key, log_path, started_ms)
                     VALUES ($1, $2, $3, $4, 'InProgress', $5, $6, $7)",
                    &[&id, &stage, &action, &i64::from(attempt), &key, &log_path, &now],
                )
                .await?;
                Ok(())
            },
        ))?;
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
        let kind = format!("action-{}", status.as_str());
        self.run(self.transition((id, Some(stage), Some(action), &kind, None), async |tx| {
            tx.execute(
                "UPDATE action_runs SET status = $5 WHERE execution_id = $1 AND stage = $2 AND action = $3 AND attempt = $4",
                &[&id, &stage, &action, &i64::from(attempt), &status.as_str()],
            )
            .await?;
            Ok(())
        }))
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
        let kind = format!("action-{}", status.as_str());
        self.run(
            self.transition((id, Some(stage), Some(action), &kind, error), async |tx| {
                tx.execute(
                    "UPDATE action_runs SET status = $5, outputs = $6, error = $7, ended_ms = $8
                 WHERE execution_id = $1 AND stage = $2 AND action = $3 AND attempt = $4",
                    &[
                        &id,
                        &stage,
                        &action,
                        &i64::from(attempt),
                        &status.as_str(),
                        &outputs,
                        &error,
                        &now_ms(),
                    ],
                )
                .await?;
                tx.execute(
                    "UPDATE action_leases SET done = TRUE
                     WHERE execution_id = $1 AND stage = $2 AND action = $3 AND attempt = $4",
                    &[&id, &stage, &action, &i64::from(attempt)],
                )
                .await?;
                // Delivered when the transaction commits.
                tx.execute("SELECT pg_notify($1, '')", &[&ACTIONS]).await?;
                Ok(())
            }),
        )
    }

    fn queue_action(&self, run: &ActionKey<'_>, portable: bool) -> Result<()> {
        // One statement, which tells the listeners only when it queued something.
        self.run(self.execute(
            "WITH queued AS (
                 INSERT INTO action_leases (execution_id, stage, action, attempt, portable, queued_ms)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING 1)
             SELECT pg_notify($7, '') FROM queued",
            &[
                &run.execution,
                &run.stage,
                &run.action,
                &i64::from(run.attempt),
                &portable,
                &now_ms(),
                &ACTIONS,
            ],
        ))?;
        Ok(())
    }

    fn lease_action(
        &self,
        worker: &str,
        execution: Option<&str>,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<ActionLease>> {
        // One statement: the row is locked by the inner SELECT, and a worker racing for it
        // skips it and takes the next, instead of waiting for this one's commit.
        let row = self.run(self.read(async |c| {
            Ok(c.query_opt(
                "UPDATE action_leases l SET worker = $1, expires_ms = $3::BIGINT + $4::BIGINT
                     FROM (SELECT execution_id, stage, action, attempt FROM action_leases
                           WHERE NOT done AND (worker IS NULL OR expires_ms < $3)
                             AND (execution_id = $2 OR ($2::TEXT IS NULL AND portable))
                           ORDER BY queued_ms, execution_id, stage, action
                           LIMIT 1 FOR UPDATE SKIP LOCKED) n
                     WHERE l.execution_id = n.execution_id AND l.stage = n.stage
                       AND l.action = n.action AND l.attempt = n.attempt
                     RETURNING l.execution_id, l.stage, l.action, l.attempt, l.portable, l.worker, l.expires_ms",
                &[&worker, &execution, &now_ms, &lease_ms],
            )
            .await?)
        }))?;
        Ok(row.as_ref().map(lease_row))
    }

    fn renew_action_lease(
        &self,
        run: &ActionKey<'_>,
        worker: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<bool> {
        let changed = self.run(self.execute(
            "UPDATE action_leases SET expires_ms = $6
             WHERE execution_id = $1 AND stage = $2 AND action = $3 AND attempt = $4
               AND worker = $5 AND NOT done",
            &[
                &run.execution,
                &run.stage,
                &run.action,
                &i64::from(run.attempt),
                &worker,
                &(now_ms + lease_ms),
            ],
        ))?;
        Ok(changed == 1)
    }

    fn free_action_leases(&self, execution: &str, worker: &str) -> Result<usize> {
        let freed = self.run(self.execute(
            "UPDATE action_leases SET worker = NULL, expires_ms = NULL
             WHERE execution_id = $1 AND worker = $2 AND NOT done",
            &[&execution, &worker],
        ))?;
        if freed > 0 {
            self.run(self.execute("SELECT pg_notify($1, '')", &[&ACTIONS]))?;
        }
        Ok(usize::try_from(freed).unwrap_or(usize::MAX))
    }

    fn action_leases(&self, execution: &str) -> Result<Vec<ActionLease>> {
        let rows = self.run(self.read(async |c| {
            Ok(c.query(
                &format!(
                    "SELECT {LEASE_COLUMNS} FROM action_leases WHERE execution_id = $1 AND NOT done
                     ORDER BY queued_ms, stage, action"
                ),
                &[&execution],
            )
            .await?)
        }))?;
        Ok(rows.iter().map(lease_row).collect())
    }

    fn record_artifact(&self, id: &str, artifact: &ArtifactRef, produced_by: &str) -> Result<()> {
        let detail = format!("{} {}", artifact.name, artifact.sha256);
        let size = i64::try_from(artifact.size).unwrap_or(i64::MAX);
        let envelope = artifact.envelope.to_string();
        self.run(self.transition((id, None, None, "artifact", Some(&detail)), async |tx| {
            tx.execute(
                "INSERT INTO artifacts (execution_id, name, sha256, size, location, envelope, produced_by, created_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (execution_id, name) DO UPDATE SET sha256 = excluded.sha256, size = excluded.size,
                    location = excluded.location, envelope = excluded.envelope, produced_by = excluded.produced_by,
                    created_ms = excluded.created_ms",
                &[&id, &artifact.name, &artifact.sha256, &size, &artifact.location, &envelope, &produced_by, &now_ms()],
            )
            .await?;
            Ok(())
        }))
    }

    fn artifacts(&self, id: &str) -> Result<Vec<ArtifactRef>> {
        self.run(self.read(async |c| artifacts_in(&***c, id).await))
    }

    fn request_approval(&self, request: &Approval) -> Result<Approval> {
        if let Some(existing) =
            self.approval(&request.execution_id, &request.stage, &request.action)?
        {
            return Ok(existing);
        }
        let r = request;
        let approvers = serde_json::to_string(&r.approvers).unwrap_or_default();
        let digests = serde_json::to_string(&r.digests).unwrap_or_default();
        let forbidden = serde_json::to_string(&r.forbidden).unwrap_or_default();
        self.run(self.transition(
            (&r.execution_id, Some(&r.stage), Some(&r.action), "approval-requested", None),
            async |tx| {
                tx.execute(
                    &format!("INSERT INTO approvals ({APPROVAL_COLUMNS}) VALUES ($1, $2, $3, 'Pending', $4, $5, $6, $7, $8, NULL, NULL, NULL, $9, $10) ON CONFLICT DO NOTHING"),
                    &[
                        &r.execution_id,
                        &r.stage,
                        &r.action,
                        &approvers,
                        &i64::from(r.comment_required),
                        &digests,
                        &r.requested_ms,
                        &r.deadline_ms,
                        &i64::from(r.required.max(1)),
                        &forbidden,
                    ],
                )
                .await?;
                Ok(())
            },
        ))?;
        self.approval(&r.execution_id, &r.stage, &r.action)?
            .ok_or_else(|| StoreError::NotFound("approval".into()))
    }

    fn approval(&self, id: &str, stage: &str, action: &str) -> Result<Option<Approval>> {
        self.run(self.read(async |c| approval_in(&***c, id, stage, action, false).await))
    }

    fn pending_approvals(&self, id: Option<&str>) -> Result<Vec<Approval>> {
        self.run(self.read(async |c| pending_in(&***c, id).await))
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
        let kind = format!("approval-vote-{verb}");
        self.run(self.transition(
            (id, Some(stage), Some(action), &kind, Some(&decision.identity)),
            async |tx| {
                // Locked to the commit: two approvers deciding at once are decided in turn.
                let current = approval_in(tx, id, stage, action, true)
                    .await?
                    .ok_or_else(|| {
                        StoreError::NotFound(format!("`{id}` has no approval in stage `{stage}`"))
                    })?;
                if let Some(block) = block_in(tx, id).await? {
                    return Err(rules::Refusal::Blocked {
                        stage: stage.to_owned(),
                        why: block.refusal(),
                    }
                    .into());
                }
                let artifacts = digests(&artifacts_in(tx, id).await?);
                let now = now_ms();
                let verdict = rules::check(&current, decision, now, &artifacts)?;
                let approved = serde_json::to_string(&artifacts).unwrap_or_default();
                tx.execute(
                    "INSERT INTO approval_votes (execution_id, stage, action, identity, approve, comment, digests, decided_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    &[&id, &stage, &action, &decision.identity, &i64::from(decision.approve), &decision.comment, &approved, &now],
                )
                .await?;
                let Some((status, who)) = decided(&current, decision, verdict) else {
                    return Ok(());
                };
                tx.execute(
                    "UPDATE approvals SET status = $4, identity = $5, comment = $6, decided_ms = $7 WHERE execution_id = $1 AND stage = $2 AND action = $3",
                    &[&id, &stage, &action, &status, &who, &decision.comment, &now],
                )
                .await?;
                Ok(())
            },
        ))?;
        self.approval(id, stage, action)?
            .ok_or_else(|| StoreError::NotFound("approval".into()))
    }

    fn expire_approval(&self, id: &str, stage: &str, action: &str) -> Result<()> {
        self.run(self.transition(
            (id, Some(stage), Some(action), "approval-Expired", None),
            async |tx| {
                tx.execute(
                    "UPDATE approvals SET status = 'Expired', decided_ms = $4 WHERE execution_id = $1 AND stage = $2 AND action = $3 AND status = 'Pending'",
                    &[&id, &stage, &action, &now_ms()],
                )
                .await?;
                Ok(())
            },
        ))
    }

    fn record_release(
        &self,
        execution: &Execution,
        environment: &str,
        approved_by: Option<&str>,
        gate_override: Option<&str>,
        r: &ReleaseRecord,
    ) -> Result<i64> {
        let detail = format!("{environment} {} {}", r.target, r.version);
        let details = r.details.to_string();
        self.run(self.transition((&execution.id, None, None, "release", Some(&detail)), async |tx| {
            Ok(tx
                .query_one(
                    "INSERT INTO releases (pipeline, environment, target, execution_id, revision, version, digest, previous_version, details, approved_by, outcome, verified, created_ms, gate_override)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
                    &[
                        &execution.pipeline,
                        &environment,
                        &r.target,
                        &execution.id,
                        &execution.revision,
                        &r.version,
                        &r.digest,
                        &r.previous_version,
                        &details,
                        &approved_by,
                        &r.outcome,
                        &i64::from(r.verified),
                        &now_ms(),
                        &gate_override,
                    ],
                )
                .await?
                .get(0))
        }))
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
        let details = r.details.to_string();
        self.run(self.transition((&release.execution_id, None, None, "release", Some(&detail)), async |tx| {
            Ok(tx
                .query_one(
                    "INSERT INTO releases (pipeline, environment, target, execution_id, revision, version, digest, previous_version, details, approved_by, outcome, verified, created_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'Restored', 1, $11) RETURNING id",
                    &[
                        &release.pipeline,
                        &release.environment,
                        &r.target,
                        &release.execution_id,
                        &release.revision,
                        &r.version,
                        &r.digest,
                        &replaced,
                        &details,
                        &identity,
                        &now_ms(),
                    ],
                )
                .await?
                .get(0))
        }))
    }

    fn releases(
        &self,
        pipeline: &str,
        environment: Option<&str>,
        target: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Release>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(self.read(async |c| {
            Ok(c.query(
                "SELECT r.id, r.pipeline, r.environment, r.target, r.execution_id, r.revision, r.version, r.digest, r.previous_version, r.details, r.approved_by, r.outcome, r.verified, r.created_ms, b.reason, r.gate_override
                 FROM releases r LEFT JOIN release_blocks b ON b.execution_id = r.execution_id
                 WHERE r.pipeline = $1 AND ($2::text IS NULL OR r.environment = $2) AND ($3::text IS NULL OR r.target = $3)
                 ORDER BY r.id DESC LIMIT $4",
                &[&pipeline, &environment, &target, &limit],
            )
            .await?
            .iter()
            .map(|r| {
                let details: Option<String> = r.get(9);
                Release {
                    id: r.get(0),
                    pipeline: r.get(1),
                    environment: r.get(2),
                    execution_id: r.get(4),
                    revision: r.get(5),
                    approved_by: r.get(10),
                    created_ms: r.get(13),
                    record: ReleaseRecord {
                        target: r.get(3),
                        version: r.get(6),
                        digest: r.get(7),
                        previous_version: r.get(8),
                        details: details
                            .and_then(|d| serde_json::from_str(&d).ok())
                            .unwrap_or_default(),
                        outcome: r.get(11),
                        verified: r.get::<_, i64>(12) != 0,
                    },
                    blocked: r.get(14),
                    gate_override: r.get(15),
                }
            })
            .collect())
        }))
    }

    fn block_release(&self, id: &str, identity: &str, reason: &str) -> Result<ReleaseBlock> {
        let detail = format!("{identity}: {reason}");
        self.run(self.transition((id, None, None, "release-blocked", Some(&detail)), async |tx| {
            if execution_in(tx, id).await?.is_none() {
                return Err(StoreError::NotFound(format!("no execution `{id}`")));
            }
            tx.execute(
                "INSERT INTO release_blocks (execution_id, reason, identity, blocked_ms) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (execution_id) DO UPDATE SET reason = excluded.reason, identity = excluded.identity, blocked_ms = excluded.blocked_ms",
                &[&id, &reason, &identity, &now_ms()],
            )
            .await?;
            block_in(tx, id)
                .await?
                .ok_or_else(|| StoreError::NotFound("release block".into()))
        }))
    }

    fn unblock_release(&self, id: &str, identity: &str) -> Result<Option<ReleaseBlock>> {
        let Some(block) = self.release_block(id)? else {
            return Ok(None);
        };
        self.run(self.transition(
            (id, None, None, "release-unblocked", Some(identity)),
            async |tx| {
                tx.execute("DELETE FROM release_blocks WHERE execution_id = $1", &[&id])
                    .await?;
                Ok(())
            },
        ))?;
        Ok(Some(block))
    }

    fn release_block(&self, id: &str) -> Result<Option<ReleaseBlock>> {
        self.run(self.read(async |c| block_in(&***c, id).await))
    }

    fn record_gate(&self, id: &str, stage: &str, holds: &[String]) -> Result<()> {
        let json = serde_json::to_string(holds).unwrap_or_else(|_| "[]".into());
        const UPSERT: &str = "INSERT INTO gates (execution_id, stage, holds, checked_ms) VALUES ($1, $2, $3, $4)
             ON CONFLICT (execution_id, stage) DO UPDATE SET holds = excluded.holds, checked_ms = excluded.checked_ms";
        let before: Option<String> = self.run(self.read(async |c| {
            Ok(c.query_opt(
                "SELECT holds FROM gates WHERE execution_id = $1 AND stage = $2",
                &[&id, &stage],
            )
            .await?
            .map(|r| r.get(0)))
        }))?;
        if before.as_deref() == Some(json.as_str()) {
            // Only the time of the check moved: no event, no transition.
            self.run(self.execute(UPSERT, &[&id, &stage, &json, &now_ms()]))?;
            return Ok(());
        }
        let (kind, detail) = if holds.is_empty() {
            ("gates-open", None)
        } else {
            ("gates-held", Some(holds.join("; ")))
        };
        self.run(self.transition(
            (id, Some(stage), None, kind, detail.as_deref()),
            async |tx| {
                tx.execute(UPSERT, &[&id, &stage, &json, &now_ms()]).await?;
                Ok(())
            },
        ))
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
        let detail = decision.ledger_text();
        self.run(self.transition(
            (id, Some(stage), None, "gates-overridden", Some(&detail)),
            async |tx| {
                let changed = tx
                    .execute(
                        "UPDATE gates SET override_identity = $3, override_reason = $4, override_ms = $5 WHERE execution_id = $1 AND stage = $2",
                        &[&id, &stage, &decision.identity, &decision.reason, &decision.at_ms],
                    )
                    .await?;
                if changed == 0 {
                    return Err(StoreError::NotFound(format!(
                        "no gates of stage `{stage}` in `{id}`"
                    )));
                }
                gates_in(tx, id)
                    .await?
                    .into_iter()
                    .find(|g| g.stage == stage)
                    .ok_or_else(|| StoreError::NotFound("gate".into()))
            },
        ))
    }

    fn gates(&self, id: &str) -> Result<Vec<GateState>> {
        self.run(self.read(async |c| gates_in(&***c, id).await))
    }

    fn shared(&self) -> bool {
        true
    }

    fn try_lead(&self, role: &str) -> Result<Option<Box<dyn super::Lease>>> {
        self.run(self.lead(role))
    }

    fn broadcast(&self, message: &str) {
        let mut end = message.len().min(MAX_MESSAGE);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let _ = self.outbox.send(message[..end].to_owned());
    }

    fn listen(&self) -> Result<Option<tokio::sync::mpsc::UnboundedReceiver<String>>> {
        self.run(async {
            let (client, mut connection) = self.config.connect(self.tls.clone()).await?;
            // The session lives while its task polls it and holds the client.
            let client = Arc::new(client);
            let held = client.clone();
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            self.runtime
                .as_ref()
                .ok_or_else(|| StoreError::Postgres("the store is closing".into()))?
                .spawn(async move {
                    let _session = held;
                    while let Some(message) =
                        std::future::poll_fn(|cx| connection.poll_message(cx)).await
                    {
                        match message {
                            Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                                if tx.send(n.payload().to_owned()).is_err() {
                                    break;
                                }
                            }
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                });
            client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
            Ok(Some(rx))
        })
    }

    fn action_changes(&self) -> Arc<tokio::sync::Notify> {
        self.listening.call_once(|| {
            if let Some(rt) = &self.runtime {
                rt.spawn(listen_for_actions(
                    self.config.clone(),
                    self.tls.clone(),
                    self.changes.clone(),
                ));
            }
        });
        self.changes.clone()
    }

    fn events(&self, id: &str) -> Result<Vec<Event>> {
        self.run(self.read(async |c| {
            Ok(c.query(
                "SELECT stage, action, kind, detail, at_ms FROM events WHERE execution_id = $1 ORDER BY id",
                &[&id],
            )
            .await?
            .iter()
            .map(|r| Event {
                stage: r.get(0),
                action: r.get(1),
                kind: r.get(2),
                detail: r.get(3),
                at_ms: r.get(4),
            })
            .collect())
        }))
    }
}

/// Creates database `name` on the cluster `admin_url` connects to, unless it exists: a new
/// installation's first step, and each test's own database. `name` must be a plain
/// identifier (letters, digits, `_`).
pub fn create_database(admin_url: &str, name: &str) -> Result<()> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(StoreError::Postgres(format!(
            "`{name}` is not a plain database name (letters, digits, `_`)"
        )));
    }
    let store = PostgresStore::connect(admin_url)?;
    store.run(async {
        let client = store.client().await?;
        let exists = client
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
            .await?
            .is_some();
        if !exists {
            match client
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
            {
                Ok(()) => {}
                // Created meanwhile by another process.
                Err(e)
                    if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    })
}

/// A session-level advisory lock on a connection of its own, taken out of the pool: the lock
/// lives as long as the connection, which dropping the lease closes.
struct AdvisoryLease {
    /// Dropping it ends its connection task, and so the session and its lock.
    client: deadpool_postgres::ClientWrapper,
}

impl super::Lease for AdvisoryLease {
    fn held(&self) -> bool {
        !self.client.is_closed()
    }
}

impl PostgresStore {
    async fn lead(&self, role: &str) -> Result<Option<Box<dyn super::Lease>>> {
        let client = deadpool_postgres::Object::take(self.client().await?);
        let got: bool = client
            .query_one(
                "SELECT pg_try_advisory_lock(hashtextextended($1, 1))",
                &[&role],
            )
            .await?
            .get(0);
        Ok(got.then(|| Box::new(AdvisoryLease { client }) as Box<dyn super::Lease>))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_urls_password_never_reaches_a_message() {
        assert_eq!(
            redacted("postgres://ferry:s3cret@127.0.0.1:5432/ferry"),
            "postgres://ferry:***@127.0.0.1:5432/ferry"
        );
        assert_eq!(
            redacted("postgres://127.0.0.1/ferry"),
            "postgres://127.0.0.1/ferry"
        );
        assert_eq!(
            redacted("postgres://ferry@h/ferry?sslmode=require&password=s3cret"),
            "postgres://ferry@h/ferry?sslmode=require&password=***"
        );
        let err = PostgresStore::open("postgres://ferry:s3cret@[bad").unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }
}
