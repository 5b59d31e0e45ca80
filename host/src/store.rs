//! Persistence. Only this module speaks SQL.
//!
//! One store API over two backends: SQLite (default; a file under the data dir, WAL, foreign
//! keys on) and PostgreSQL. Each query is written once in portable SQL (`$N` placeholders,
//! `RETURNING`, `ON CONFLICT`) and run on whichever pool is configured through the
//! [`on_tx!`] / [`on_pool!`] macros, which expand the same body once per backend so each copy
//! is type-checked against its own driver.
//!
//! Portable column types: text ids and ISO timestamps, `i64` integers (SQLite `INTEGER`,
//! PostgreSQL `BIGINT`), `bool` (SQLite `INTEGER` 0/1, PostgreSQL `BOOLEAN`), JSON as text,
//! bytes as `BLOB`/`BYTEA`.
//!
//! Layout: `store/settings.rs` (system_settings), `store/status.rs` (counters for the system
//! status); feature areas add their own submodule.

pub mod client_state;
pub mod config_state;
pub mod configs;
pub mod control_logs;
pub mod links;
pub mod nodes;
mod packed;
pub mod runtime;
pub mod plugins;
pub mod settings;
pub mod status;
pub mod tags;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

/// Store failures, kept distinct so the service layer can map them to codes.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such row.
    #[error("not found")]
    NotFound,
    /// A unique or foreign-key constraint was violated.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Anything else (connection, I/O, decode).
    #[error("database error: {0}")]
    Other(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db)
                if db.is_unique_violation() || db.is_foreign_key_violation() || db.is_check_violation() =>
            {
                StoreError::Conflict(db.message().to_string())
            }
            _ => StoreError::Other(e.to_string()),
        }
    }
}

/// Store result.
pub type StoreResult<T> = Result<T, StoreError>;

/// Which backend a URL selects. `Debug` hides a PostgreSQL password.
#[derive(Clone, PartialEq, Eq)]
pub enum DbTarget {
    /// A SQLite file path.
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL URL in `postgres://` form.
    Postgres(String),
}

impl std::fmt::Debug for DbTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbTarget::Sqlite(p) => f.debug_tuple("Sqlite").field(p).finish(),
            DbTarget::Postgres(url) => {
                let shown = match url::Url::parse(url) {
                    Ok(mut u) => {
                        if u.password().is_some() {
                            let _ = u.set_password(Some("<redacted>"));
                        }
                        u.to_string()
                    }
                    Err(_) => "<unparsable url>".to_string(),
                };
                f.debug_tuple("Postgres").field(&shown).finish()
            }
        }
    }
}

impl DbTarget {
    /// Interprets a database URL, accepting the upstream forms too:
    /// `sqlite:///relative/or/./path.db`, `sqlite:////abs/path.db`, `sqlite:path.db`,
    /// `postgres://`, `postgresql://`, `postgresql+psycopg://`, `postgresql+asyncpg://`.
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        if let Some(rest) = url.strip_prefix("sqlite:") {
            // sqlite:///x => "x" (relative, SQLAlchemy style); sqlite:////x => "/x".
            let path = if let Some(p) = rest.strip_prefix("///") {
                p
            } else if let Some(p) = rest.strip_prefix("//") {
                p
            } else {
                rest
            };
            let path = path.split('?').next().unwrap_or("");
            if path.is_empty() || path == ":memory:" {
                return Err("a SQLite database needs a file path".into());
            }
            return Ok(DbTarget::Sqlite(path.into()));
        }
        let lower = url.to_ascii_lowercase();
        for prefix in ["postgresql+psycopg://", "postgresql+psycopg2://", "postgresql+asyncpg://", "postgresql://", "postgres://"] {
            if lower.starts_with(prefix) {
                return Ok(DbTarget::Postgres(format!("postgres://{}", &url[prefix.len()..])));
            }
        }
        Err("expected a sqlite:/// or postgres:// URL".into())
    }
}

/// The connection pools of the configured backend.
#[derive(Clone, Debug)]
pub enum Db {
    /// SQLite: one writer connection (SQLite allows one writer; serialising in-process avoids
    /// busy-retry storms) and a pool of readers.
    Sqlite {
        /// Write pool (one connection).
        write: SqlitePool,
        /// Read pool.
        read: SqlitePool,
        /// The background WAL checkpointer's connection ([`spawn_checkpointer`]); it stops
        /// when the last clone of this `Db` is gone or the pool is closed.
        checkpoint: SqlitePool,
        /// Held by every clone of this `Db`; the checkpointer watches it weakly.
        alive: std::sync::Arc<()>,
    },
    /// PostgreSQL pool.
    Pg(PgPool),
}

/// A transaction on either backend. Service methods own one per write.
pub enum Tx {
    /// SQLite transaction on the writer connection.
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    /// PostgreSQL transaction.
    Pg(sqlx::Transaction<'static, sqlx::Postgres>),
}

/// Runs `$body` with `$c` bound to the transaction's connection of whichever backend.
/// Both expansions must produce the same type, so map driver-specific results inside the body
/// (e.g. `.execute(c).await.map(|r| r.rows_affected())`).
#[macro_export]
macro_rules! on_tx {
    ($tx:expr, |$c:ident| $body:expr) => {
        match $tx {
            $crate::store::Tx::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
            $crate::store::Tx::Pg(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}

/// Runs `$body` with `$c` bound to a read pool of whichever backend.
#[macro_export]
macro_rules! on_pool {
    ($db:expr, |$c:ident| $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite { read, .. } => {
                let $c = read;
                $body
            }
            $crate::store::Db::Pg(p) => {
                let $c = p;
                $body
            }
        }
    };
}

/// Executes one statement in a transaction with positional binds and returns the number of
/// affected rows: `exec!(tx, "UPDATE t SET a = $2 WHERE id = $1", id, a)?`.
#[macro_export]
macro_rules! exec {
    ($tx:expr, $sql:expr $(, $arg:expr)* $(,)?) => {
        $crate::on_tx!($tx, |c| sqlx::query($sql)$(.bind($arg))*.execute(c).await.map(|r| r.rows_affected()))
    };
}

impl Tx {
    /// Commits.
    pub async fn commit(self) -> StoreResult<()> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Pg(t) => t.commit().await?,
        }
        Ok(())
    }

    /// Rolls back explicitly (dropping a `Tx` also rolls back).
    pub async fn rollback(self) -> StoreResult<()> {
        match self {
            Tx::Sqlite(t) => t.rollback().await?,
            Tx::Pg(t) => t.rollback().await?,
        }
        Ok(())
    }

    /// True on PostgreSQL.
    pub fn is_pg(&self) -> bool {
        matches!(self, Tx::Pg(_))
    }
}

/// `journal_size_limit` of the SQLite connections, in bytes.
const WAL_SIZE_LIMIT: &str = "67108864";

/// How often the checkpointer looks at the WAL.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// Copies committed WAL frames into the SQLite database file in the background, with
/// `PRAGMA wal_checkpoint(PASSIVE)` on a connection of its own every [`CHECKPOINT_EVERY`].
///
/// SQLite's default is for the committing connection to checkpoint once the WAL passes 1000
/// pages, so some write pays for copying what many wrote: a 150 MB Quick Mesh commit spent
/// ~0.35 s of its ~0.6 s commit in the checkpoint. A passive checkpoint never blocks readers or
/// the writer, and with nothing to copy it returns at once. The writer restarts the WAL from
/// its beginning once everything in it has been copied, so it does not grow while the
/// checkpointer keeps up. A failed checkpoint is logged and retried on the next tick.
fn spawn_checkpointer(pool: SqlitePool, alive: std::sync::Weak<()>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if alive.strong_count() == 0 || pool.is_closed() {
                break;
            }
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await {
                if pool.is_closed() {
                    break;
                }
                tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
            }
        }
        pool.close().await;
    });
}

impl Db {
    /// Connects and applies the embedded migrations of the backend.
    pub async fn connect(target: &DbTarget) -> anyhow::Result<Db> {
        match target {
            DbTarget::Sqlite(path) => {
                if let Some(dir) = path.parent()
                    && !dir.as_os_str().is_empty()
                {
                    std::fs::create_dir_all(dir)?;
                }
                let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(10));
                // The writer gets a larger page cache (up to 256 MB, allocated only as pages are
                // used) and in-memory temp storage: a Quick Mesh replace of half a million pairs
                // touches four B-trees in one transaction and thrashes SQLite's 2 MB default.
                // Commits never checkpoint the WAL themselves (see `spawn_checkpointer`); a
                // WAL that grew past 64 MB is cut back to that when it is next reset.
                let opts = opts.pragma("wal_autocheckpoint", "0").pragma("journal_size_limit", WAL_SIZE_LIMIT);
                let write_opts = opts.clone().pragma("cache_size", "-262144").pragma("temp_store", "MEMORY");
                let write = SqlitePoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(write_opts)
                    .await?;
                sqlx::migrate!("../migrations/sqlite").run(&write).await?;
                let read = SqlitePoolOptions::new()
                    .max_connections(8)
                    .connect_with(opts.clone().read_only(true))
                    .await?;
                let checkpoint = SqlitePoolOptions::new().max_connections(1).connect_with(opts).await?;
                let alive = std::sync::Arc::new(());
                spawn_checkpointer(checkpoint.clone(), std::sync::Arc::downgrade(&alive));
                Ok(Db::Sqlite { write, read, checkpoint, alive })
            }
            DbTarget::Postgres(url) => {
                // No parallel query workers: WFM's queries are small and indexed, and starting
                // two workers cost ~8 ms on a 3 ms render read (a planner choice once a table
                // passes a few hundred thousand rows).
                let opts = PgConnectOptions::from_str(url)?.options([("max_parallel_workers_per_gather", "0")]);
                let pool = PgPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(opts)
                    .await?;
                sqlx::migrate!("../migrations/postgres").run(&pool).await?;
                Ok(Db::Pg(pool))
            }
        }
    }

    /// Begins a write transaction.
    pub async fn begin(&self) -> StoreResult<Tx> {
        Ok(match self {
            Db::Sqlite { write, .. } => Tx::Sqlite(write.begin().await?),
            Db::Pg(p) => Tx::Pg(p.begin().await?),
        })
    }

    /// Backend name for status output: `sqlite` or `postgresql`.
    pub fn backend(&self) -> &'static str {
        match self {
            Db::Sqlite { .. } => "sqlite",
            Db::Pg(_) => "postgresql",
        }
    }

    /// A trivial query, for health checks.
    pub async fn ping(&self) -> StoreResult<()> {
        on_pool!(self, |c| sqlx::query("SELECT 1").execute(c).await.map(|_| ()))?;
        Ok(())
    }

    /// Closes all pools.
    pub async fn close(&self) {
        match self {
            Db::Sqlite { write, read, checkpoint, .. } => {
                read.close().await;
                write.close().await;
                checkpoint.close().await;
            }
            Db::Pg(p) => p.close().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_upstream_urls() {
        assert_eq!(
            DbTarget::parse("sqlite:///./data/wg_free_mesh.db").unwrap(),
            DbTarget::Sqlite("./data/wg_free_mesh.db".into())
        );
        assert_eq!(DbTarget::parse("sqlite:////var/lib/wfm.db").unwrap(), DbTarget::Sqlite("/var/lib/wfm.db".into()));
        assert_eq!(
            DbTarget::parse("postgresql+psycopg://wfm:pw@db:5432/wfm").unwrap(),
            DbTarget::Postgres("postgres://wfm:pw@db:5432/wfm".into())
        );
        assert_eq!(
            DbTarget::parse("postgres://u@h/d").unwrap(),
            DbTarget::Postgres("postgres://u@h/d".into())
        );
        assert!(DbTarget::parse("mysql://x").is_err());
        let t = DbTarget::parse("postgresql://wfm:s3cret@db/wfm").unwrap();
        assert!(!format!("{t:?}").contains("s3cret"));
        assert!(DbTarget::parse("sqlite:///").is_err());
    }

    /// Commits leave the WAL alone (`wal_autocheckpoint` 0) and the background checkpointer
    /// copies it into the database file shortly after; it stops with the last `Db` clone.
    #[tokio::test]
    async fn sqlite_wal_is_checkpointed_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let db = Db::connect(&DbTarget::Sqlite(path.clone())).await.unwrap();
        let size = || std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let mut tx = db.begin().await.unwrap();
        let Tx::Sqlite(t) = &mut tx else { unreachable!() };
        let auto: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint").fetch_one(&mut **t).await.unwrap();
        assert_eq!(auto, 0);
        sqlx::query("CREATE TABLE filler (v BLOB)").execute(&mut **t).await.unwrap();
        for _ in 0..64 {
            sqlx::query("INSERT INTO filler VALUES (randomblob(65536))").execute(&mut **t).await.unwrap();
        }
        tx.commit().await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while size() < 4 << 20 {
            assert!(std::time::Instant::now() < deadline, "database file still {} bytes", size());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let Db::Sqlite { checkpoint, .. } = &db else { unreachable!() };
        let checkpoint = checkpoint.clone();
        drop(db);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !checkpoint.is_closed() {
            assert!(std::time::Instant::now() < deadline, "checkpointer still running");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
