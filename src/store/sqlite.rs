//! SQLite implementation of the store traits: the embedded default.
//!
//! WAL with `synchronous=NORMAL` (DESIGN.md §3): a power loss may lose the last commits; an
//! SQN that goes back is repaired by the handset's AUTS and never accepted twice by a USIM.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::sqlite_reader::SqliteReader;
use super::sqlite_writer::SqliteWriter;
use super::{
    HotReads, HotWrites, StoreError, impl_clients_sql, impl_common_sql, impl_keys_sql,
    impl_openid_sql,
};

use super::impl_grants_sql;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// The hot Ub writes, on a thread of their own with group commit; `None` for an
    /// in-memory database, which a second connection could not see.
    writer: Option<std::sync::Arc<SqliteWriter>>,
    /// The per-login point reads, on the caller's thread; `None` as for `writer`.
    reader: Option<std::sync::Arc<SqliteReader>>,
}

impl SqliteStore {
    /// Opens (creating if missing) the database file named by `url`. The directory must
    /// exist.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(StoreError::Connect)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let in_memory = url.contains("mode=memory")
            || options.get_filename().starts_with("file:")
            || options.get_filename().as_os_str() == ":memory:";
        let path = options.get_filename().to_path_buf();
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(StoreError::Connect)?;
        let (writer, reader) = if in_memory {
            (None, None)
        } else {
            (
                Some(std::sync::Arc::new(SqliteWriter::start(&path)?)),
                Some(std::sync::Arc::new(SqliteReader::new(&path))),
            )
        };
        Ok(Self {
            pool,
            writer,
            reader,
        })
    }

    fn hot_reads(&self) -> Option<&dyn HotReads> {
        self.reader.as_deref().map(|r| r as &dyn HotReads)
    }

    fn hot_writes(&self) -> Option<&dyn HotWrites> {
        self.writer.as_deref().map(|w| w as &dyn HotWrites)
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

impl_common_sql!(SqliteStore, sqlx::Sqlite, sqlx::sqlite::SqliteRow);
impl_openid_sql!(SqliteStore, sqlx::Sqlite, sqlx::sqlite::SqliteRow);
impl_keys_sql!(SqliteStore, sqlx::Sqlite, sqlx::sqlite::SqliteRow);
impl_grants_sql!(SqliteStore, sqlx::Sqlite, sqlx::sqlite::SqliteRow);
impl_clients_sql!(SqliteStore, sqlx::Sqlite, sqlx::sqlite::SqliteRow);
