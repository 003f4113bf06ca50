//! The server's own state, beside the engine's: API tokens (only their SHA-256), the audit
//! log, webhook deliveries seen, what each pipeline last saw and ran, why an execution
//! failed before it started, and each notification's delivery. SQLite (`server.db` in the
//! state directory), held as the engine holds its own ([`Connections`]).

use std::path::Path;
use std::sync::MutexGuard;

use ferry_engine::model::now_ms;
use ferry_engine::store::{Connections, OpenError};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::auth::Role;

const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE tokens (
    name       TEXT PRIMARY KEY,
    role       TEXT NOT NULL,
    groups     TEXT NOT NULL,        -- JSON list
    hash       TEXT NOT NULL UNIQUE, -- hex SHA-256 of the token; the token itself is never stored
    created_ms INTEGER NOT NULL,
    last_used_ms INTEGER,
    revoked_ms INTEGER
);
CREATE TABLE audit (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms     INTEGER NOT NULL,
    identity  TEXT NOT NULL,         -- token name, or `webhook:github` …
    action    TEXT NOT NULL,         -- `approve`, `start`, `rollback`, …
    target    TEXT NOT NULL,         -- execution id, stage, environment …
    client    TEXT NOT NULL,         -- the client's address
    result    TEXT NOT NULL,         -- `ok`, or why it was refused
    status    INTEGER NOT NULL       -- the HTTP status answered
);
CREATE TABLE deliveries (
    source      TEXT NOT NULL,       -- github | gitlab | generic
    delivery    TEXT NOT NULL,       -- X-GitHub-Delivery, X-Gitlab-Event-UUID, X-Ferry-Delivery
    pipeline    TEXT NOT NULL,
    received_ms INTEGER NOT NULL,
    outcome     TEXT NOT NULL,       -- the execution started, or why none was
    PRIMARY KEY (source, delivery)
);
CREATE TABLE pipeline_state (
    pipeline     TEXT PRIMARY KEY,
    last_seen    TEXT,               -- the branch head polling saw last
    last_run     TEXT                -- unused: what a pipeline last ran is its newest execution
);
CREATE TABLE execution_notes (
    execution_id TEXT PRIMARY KEY,
    branch       TEXT,
    diagnostics  TEXT                -- JSON: why the manifest at its revision is invalid
);
CREATE TABLE notifications (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms    INTEGER NOT NULL,
    channel  TEXT NOT NULL,
    event    TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    outcome  TEXT NOT NULL           -- `delivered`, or the last error
);
"#,
    r#"
-- The dashboard's sign-ins: a browser's session cookie, for the token it signed in with.
CREATE TABLE sessions (
    hash       TEXT PRIMARY KEY,     -- hex SHA-256 of the cookie's secret; never the secret
    token_hash TEXT NOT NULL,        -- the token signed in with: revoking it ends the session
    csrf       TEXT NOT NULL,        -- the token every mutating request of the session carries
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
);
"#,
];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the server's database failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the server's database holds something unreadable: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Conflict(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A token as listed: never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TokenInfo {
    pub name: String,
    pub role: Role,
    pub groups: Vec<String>,
    pub created_ms: i64,
    pub last_used_ms: Option<i64>,
    pub revoked_ms: Option<i64>,
}

/// One mutating request, as the audit log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub at_ms: i64,
    pub identity: String,
    pub action: String,
    pub target: String,
    pub client: String,
    pub result: String,
    pub status: u16,
}

/// What a delivery id was seen with before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    New,
    /// Received already; its outcome then.
    Seen(String),
}

pub struct ServerStore {
    db: Connections,
}

impl std::fmt::Debug for ServerStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerStore").finish_non_exhaustive()
    }
}

impl ServerStore {
    /// How stale a token's `last_used_ms` may be.
    pub const LAST_USED_GRANULARITY_MS: i64 = 60_000;

    pub fn open(state_dir: &Path) -> Result<ServerStore> {
        let db =
            Connections::open(&state_dir.join("server.db"), MIGRATIONS).map_err(|e| match e {
                OpenError::Sqlite(e) => StoreError::Sqlite(e),
                other => StoreError::Corrupt(format!("server.db: {other}")),
            })?;
        Ok(ServerStore { db })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.db.write()
    }

    fn read(&self) -> MutexGuard<'_, Connection> {
        self.db.read()
    }

    // Tokens.

    pub fn add_token(&self, name: &str, role: Role, groups: &[String], hash: &str) -> Result<()> {
        let conn = self.conn();
        let exists: bool = conn
            .query_row(
                "SELECT 1 FROM tokens WHERE name = ?1 AND revoked_ms IS NULL",
                params![name],
                |_| Ok(true),
            )
            .optional()?
            .unwrap_or(false);
        if exists {
            return Err(StoreError::Conflict(format!(
                "a token named `{name}` exists; revoke it first (`ferry serve token revoke --name {name}`)"
            )));
        }
        conn.execute(
            "INSERT OR REPLACE INTO tokens (name, role, groups, hash, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                name,
                role.as_str(),
                serde_json::to_string(groups).unwrap_or_default(),
                hash,
                now_ms()
            ],
        )?;
        Ok(())
    }

    /// The live token whose hash is `hash`, with that hash as stored (for a constant-time
    /// comparison); records its use.
    pub fn token_by_hash(&self, hash: &str) -> Result<Option<(TokenInfo, String)>> {
        let found = self
            .read()
            .prepare_cached(
                "SELECT name, role, groups, created_ms, last_used_ms, revoked_ms, hash FROM tokens WHERE hash = ?1 AND revoked_ms IS NULL",
            )?
            .query_row(
                params![hash],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, Option<i64>>(4)?,
                        r.get::<_, Option<i64>>(5)?,
                        r.get::<_, String>(6)?,
                    ))
                },
            )
            .optional()?;
        let Some((name, role, groups, created_ms, last_used_ms, revoked_ms, stored)) = found else {
            return Ok(None);
        };
        // To the minute: a write for every request would make every read a write.
        let now = now_ms();
        if last_used_ms.is_none_or(|t| now - t >= Self::LAST_USED_GRANULARITY_MS) {
            self.conn()
                .prepare_cached("UPDATE tokens SET last_used_ms = ?2 WHERE name = ?1")?
                .execute(params![name, now])?;
        }
        let info = TokenInfo {
            role: Role::parse(&role)
                .ok_or_else(|| StoreError::Corrupt(format!("token role `{role}`")))?,
            groups: serde_json::from_str(&groups)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            name,
            created_ms,
            last_used_ms,
            revoked_ms,
        };
        Ok(Some((info, stored)))
    }

    pub fn tokens(&self) -> Result<Vec<TokenInfo>> {
        let conn = self.read();
        let mut stmt = conn.prepare(
            "SELECT name, role, groups, created_ms, last_used_ms, revoked_ms FROM tokens ORDER BY name",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Option<i64>>(4)?,
                r.get::<_, Option<i64>>(5)?,
            ))
        })?;
        rows.map(|row| {
            let (name, role, groups, created_ms, last_used_ms, revoked_ms) = row?;
            Ok(TokenInfo {
                role: Role::parse(&role)
                    .ok_or_else(|| StoreError::Corrupt(format!("token role `{role}`")))?,
                groups: serde_json::from_str(&groups)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                name,
                created_ms,
                last_used_ms,
                revoked_ms,
            })
        })
        .collect()
    }

    // Sessions.

    /// Keeps a session (its secret's hash), and forgets the expired ones.
    pub fn add_session(&self, hash: &str, token_hash: &str, csrf: &str, ttl_ms: i64) -> Result<()> {
        let conn = self.conn();
        let now = now_ms();
        conn.execute("DELETE FROM sessions WHERE expires_ms <= ?1", params![now])?;
        conn.execute(
            "INSERT INTO sessions (hash, token_hash, csrf, created_ms, expires_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![hash, token_hash, csrf, now, now + ttl_ms],
        )?;
        Ok(())
    }

    /// The live session whose secret hashes to `hash`: its token (the hash the token is
    /// stored under) and its CSRF token. `None` once expired.
    pub fn session(&self, hash: &str) -> Result<Option<(String, String)>> {
        Ok(self
            .read()
            .prepare_cached(
                "SELECT token_hash, csrf FROM sessions WHERE hash = ?1 AND expires_ms > ?2",
            )?
            .query_row(params![hash, now_ms()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    pub fn remove_session(&self, hash: &str) -> Result<()> {
        self.conn()
            .execute("DELETE FROM sessions WHERE hash = ?1", params![hash])?;
        Ok(())
    }

    /// Revokes the token `name`; `false` when there is no live token of that name.
    pub fn revoke_token(&self, name: &str) -> Result<bool> {
        let n = self.conn().execute(
            "UPDATE tokens SET revoked_ms = ?2 WHERE name = ?1 AND revoked_ms IS NULL",
            params![name, now_ms()],
        )?;
        Ok(n > 0)
    }

    // The audit log.

    pub fn audit(&self, e: &AuditEntry) -> Result<i64> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO audit (at_ms, identity, action, target, client, result, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![e.at_ms, e.identity, e.action, e.target, e.client, e.result, e.status],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// Records how a request recorded before ended.
    pub fn audit_result(&self, id: i64, result: &str, status: u16) -> Result<()> {
        self.conn().execute(
            "UPDATE audit SET result = ?2, status = ?3 WHERE id = ?1",
            params![id, result, status],
        )?;
        Ok(())
    }

    /// Newest first; entries older than `before` (an id) when given.
    pub fn audit_log(&self, limit: usize, before: Option<i64>) -> Result<Vec<AuditEntry>> {
        let conn = self.read();
        let mut stmt = conn.prepare(
            "SELECT id, at_ms, identity, action, target, client, result, status FROM audit
             WHERE (?2 IS NULL OR id < ?2) ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map(params![limit as i64, before], |r| {
            Ok(AuditEntry {
                id: r.get(0)?,
                at_ms: r.get(1)?,
                identity: r.get(2)?,
                action: r.get(3)?,
                target: r.get(4)?,
                client: r.get(5)?,
                result: r.get(6)?,
                status: u16::try_from(r.get::<_, i64>(7)?).unwrap_or(0),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    // Webhook deliveries.

    /// Claims a delivery id: `New` the first time, `Seen` with its outcome after.
    pub fn claim_delivery(&self, source: &str, delivery: &str, pipeline: &str) -> Result<Delivery> {
        let conn = self.conn();
        let seen: Option<String> = conn
            .query_row(
                "SELECT outcome FROM deliveries WHERE source = ?1 AND delivery = ?2",
                params![source, delivery],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(outcome) = seen {
            return Ok(Delivery::Seen(outcome));
        }
        conn.execute(
            "INSERT INTO deliveries (source, delivery, pipeline, received_ms, outcome) VALUES (?1, ?2, ?3, ?4, 'received')",
            params![source, delivery, pipeline, now_ms()],
        )?;
        Ok(Delivery::New)
    }

    /// Forgets a delivery that failed, so that its redelivery is tried again.
    pub fn forget_delivery(&self, source: &str, delivery: &str) -> Result<()> {
        self.conn().execute(
            "DELETE FROM deliveries WHERE source = ?1 AND delivery = ?2",
            params![source, delivery],
        )?;
        Ok(())
    }

    pub fn delivery_outcome(&self, source: &str, delivery: &str, outcome: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE deliveries SET outcome = ?3 WHERE source = ?1 AND delivery = ?2",
            params![source, delivery, outcome],
        )?;
        Ok(())
    }

    // What each pipeline saw and ran.

    pub fn last_seen(&self, pipeline: &str) -> Result<Option<String>> {
        Ok(self
            .read()
            .query_row(
                "SELECT last_seen FROM pipeline_state WHERE pipeline = ?1",
                params![pipeline],
                |r| r.get(0),
            )
            .optional()?
            .flatten())
    }

    pub fn set_last_seen(&self, pipeline: &str, revision: &str) -> Result<()> {
        self.conn().execute(
            "INSERT INTO pipeline_state (pipeline, last_seen) VALUES (?1, ?2)
             ON CONFLICT (pipeline) DO UPDATE SET last_seen = ?2",
            params![pipeline, revision],
        )?;
        Ok(())
    }

    // Notes on executions.

    pub fn note_execution(
        &self,
        id: &str,
        branch: Option<&str>,
        diagnostics: Option<&serde_json::Value>,
    ) -> Result<()> {
        self.conn().execute(
            "INSERT OR REPLACE INTO execution_notes (execution_id, branch, diagnostics) VALUES (?1, ?2, ?3)",
            params![id, branch, diagnostics.map(ToString::to_string)],
        )?;
        Ok(())
    }

    /// The branch an execution ran from, and the diagnostics of a manifest that stopped it.
    pub fn execution_note(&self, id: &str) -> Result<(Option<String>, Option<serde_json::Value>)> {
        let row: Option<(Option<String>, Option<String>)> = self
            .read()
            .prepare_cached(
                "SELECT branch, diagnostics FROM execution_notes WHERE execution_id = ?1",
            )?
            .query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((branch, diagnostics)) = row else {
            return Ok((None, None));
        };
        Ok((
            branch,
            diagnostics.and_then(|d| serde_json::from_str(&d).ok()),
        ))
    }

    // Notifications.

    pub fn record_notification(
        &self,
        channel: &str,
        event: &str,
        attempts: u32,
        outcome: &str,
    ) -> Result<()> {
        self.conn().execute(
            "INSERT INTO notifications (at_ms, channel, event, attempts, outcome) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![now_ms(), channel, event, attempts, outcome],
        )?;
        Ok(())
    }
}
