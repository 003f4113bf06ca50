//! One SQLite database as ferry's stores hold it (the engine's `state.db`, the server's
//! `server.db`): WAL, `synchronous=NORMAL`, migrations tracked in `PRAGMA user_version`, one
//! connection for writes and, for a file, a few read-only ones, so that a server's readers
//! queue neither behind each other nor behind the driver (WAL lets them read while it writes).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

/// How long a connection waits for another process's write before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Prepared statements kept per connection: every query ferry makes fits. (Preparing was a
/// quarter of a server's time on reads.)
const STATEMENT_CACHE: usize = 64;

/// Why a database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot create {}: {source}", dir.display())]
    Directory {
        dir: PathBuf,
        source: std::io::Error,
    },
    /// A newer ferry migrated it.
    #[error("schema version {found} is newer than this ferry knows ({known}); upgrade ferry")]
    Newer { found: i64, known: usize },
}

pub struct Connections {
    /// Every write, and the reads of an in-memory database.
    writer: Mutex<Connection>,
    /// The database file, for the read-only connections; `None` in memory.
    path: Option<PathBuf>,
    /// Opened at the first read: a one-shot CLI command needs none of them.
    readers: OnceLock<Vec<Mutex<Connection>>>,
    next_reader: AtomicUsize,
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Connections {
    /// Opens (creating it and its directory if needed) the database at `path` and applies
    /// the `migrations` it lacks.
    pub fn open(path: &Path, migrations: &[&str]) -> Result<Connections, OpenError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| OpenError::Directory {
                dir: dir.to_owned(),
                source,
            })?;
        }
        let mut c = Self::setup(Connection::open(path)?, migrations)?;
        c.path = Some(path.to_owned());
        Ok(c)
    }

    /// A private in-memory database (tests).
    pub fn in_memory(migrations: &[&str]) -> Result<Connections, OpenError> {
        Self::setup(Connection::open_in_memory()?, migrations)
    }

    fn setup(mut conn: Connection, migrations: &[&str]) -> Result<Connections, OpenError> {
        // First: other processes (`ferry approve` while `ferry run` drives) wait their turn
        // instead of failing with "database is locked".
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Switching to WAL takes an exclusive lock, and SQLite reports a conflict at once
        // instead of calling the busy handler: retry it for as long as the busy timeout.
        let deadline = Instant::now() + BUSY_TIMEOUT;
        loop {
            match conn.pragma_update(None, "journal_mode", "WAL") {
                Ok(()) => break,
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::DatabaseBusy && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(e.into()),
            }
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // Each step reads the version inside its write transaction: two processes opening a
        // new database at once (`ferry run` and `ferry status`) must not both migrate it.
        loop {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let found: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
            let version = usize::try_from(found).unwrap_or(usize::MAX);
            if version > migrations.len() {
                return Err(OpenError::Newer {
                    found,
                    known: migrations.len(),
                });
            }
            let Some(sql) = migrations.get(version) else {
                break;
            };
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", found + 1)?;
            tx.commit()?;
        }
        Ok(Connections {
            writer: Mutex::new(conn),
            path: None,
            readers: OnceLock::new(),
            next_reader: AtomicUsize::new(0),
        })
    }

    /// The connection for writes (and for reads inside them).
    pub fn write(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable: SQLite rolled back.
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A connection for a read: a free read-only one (one per core, at most four), else the
    /// next in turn. Each statement reads what was committed when it began, as on the writer.
    pub fn read(&self) -> MutexGuard<'_, Connection> {
        let Some(path) = &self.path else {
            return self.write();
        };
        let readers = self.readers.get_or_init(|| {
            let n = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
            (0..n)
                .filter_map(|_| open_reader(path).ok())
                .map(Mutex::new)
                .collect()
        });
        if readers.is_empty() {
            return self.write();
        }
        let first = self.next_reader.fetch_add(1, Ordering::Relaxed);
        for i in 0..readers.len() {
            match readers[(first + i) % readers.len()].try_lock() {
                Ok(guard) => return guard,
                Err(TryLockError::Poisoned(p)) => return p.into_inner(),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        readers[first % readers.len()]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &[&str] = &["CREATE TABLE t (x INTEGER)"];

    #[test]
    fn a_read_sees_what_the_writer_committed() {
        let dir = tempfile::tempdir().unwrap();
        let db = Connections::open(&dir.path().join("a/b.db"), SCHEMA).unwrap();
        let count = |db: &Connections| -> i64 {
            db.read()
                .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(count(&db), 0);
        db.write().execute("INSERT INTO t VALUES (1)", []).unwrap();
        // Every reader, not only the one that read before.
        for _ in 0..8 {
            assert_eq!(count(&db), 1);
        }
    }

    #[test]
    fn readers_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let db = Connections::open(&dir.path().join("s.db"), SCHEMA).unwrap();
        let err = db
            .read()
            .execute("INSERT INTO t VALUES (1)", [])
            .unwrap_err();
        assert!(err.to_string().contains("readonly"), "{err}");
    }

    #[test]
    fn a_database_from_a_newer_ferry_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        drop(Connections::open(&path, &[SCHEMA[0], "CREATE TABLE u (y)"]).unwrap());
        let err = Connections::open(&path, SCHEMA).unwrap_err();
        assert!(
            matches!(err, OpenError::Newer { found: 2, known: 1 }),
            "{err}"
        );
    }
}
