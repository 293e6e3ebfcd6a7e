//! Opening the SQLite store: files, URLs, in-memory databases, pragmas.
//!
//! Pragmas: WAL journal, `synchronous = FULL`, `busy_timeout` =
//! `store.connect_timeout`, foreign keys on. FULL rather than NORMAL because
//! in WAL mode NORMAL can lose the last commits on power loss (not on a
//! process crash); the store holds the dedupe keys and the audit log, and the
//! embedded backbone's default likewise syncs before acknowledging. The cost
//! is one WAL fsync per write transaction.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::rows::map_err;
use super::SqliteStore;
use crate::config::StoreConfig;
use crate::store::StoreError;

impl SqliteStore {
    /// Opens (creating it and its directory if needed) the database file at `path`.
    pub async fn open_file(path: &Path, cfg: &StoreConfig) -> Result<Self, StoreError> {
        create_parent(path).await?;
        Self::open(SqliteConnectOptions::new().filename(path), cfg, false).await
    }

    /// Opens `sqlite://PATH` (created if missing) or an in-memory database
    /// (`sqlite::memory:`, `sqlite://?mode=memory`).
    pub async fn open_url(url: &str, cfg: &StoreConfig) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Invalid(format!("bad SQLite URL {url:?}: {e}")))?;
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        if !memory {
            create_parent(options.get_filename()).await?;
        }
        Self::open(options, cfg, memory).await
    }

    async fn open(options: SqliteConnectOptions, cfg: &StoreConfig, memory: bool) -> Result<Self, StoreError> {
        let base = options
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(cfg.connect_timeout)
            .foreign_keys(true);
        // Only the writer switches the journal to WAL (a persistent setting):
        // switching needs an exclusive lock that busy_timeout cannot wait for.
        let mut writer_options = base.clone().create_if_missing(true);
        if !memory {
            writer_options = writer_options.journal_mode(SqliteJournalMode::Wal);
        }
        // The writer is never closed for idleness or age: an in-memory database
        // lives exactly as long as its one connection.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(cfg.connect_timeout)
            .connect_with(writer_options)
            .await
            .map_err(map_err)?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&writer)
            .await
            .map_err(|e| StoreError::Migration(e.to_string()))?;
        let reader = if memory {
            // Every connection to `:memory:` would be a database of its own.
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(cfg.max_connections.max(1))
                .acquire_timeout(cfg.connect_timeout)
                .idle_timeout(Some(Duration::from_secs(600)))
                .connect_with(base)
                .await
                .map_err(map_err)?
        };
        Ok(SqliteStore { writer, reader })
    }
}

/// Creates the directory a database file will live in.
async fn create_parent(path: &Path) -> Result<(), StoreError> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))),
        _ => Ok(()),
    }
}
