//! The SQLite read path of the per-login reads (the login session, the consent record): a
//! point lookup by primary key, run on the calling thread on a connection of a small pool.
//!
//! Through sqlx every statement is a hand-off to the connection's worker thread and back;
//! `perf` showed those hand-offs as a quarter of the OP's time per login. A WAL reader does
//! not wait for the writer, and a primary-key lookup in a warm page cache takes microseconds,
//! well under what blocking an async worker thread briefly may cost. A connection that
//! fails is dropped rather than returned to the pool.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, OptionalExtension, named_params};
use time::OffsetDateTime;

use super::hot_sql::{CONSENT_GET, SESSION_LOAD};
use super::{ConsentRow, HotReads, StoreError, parse_impi, time_from_db};
use crate::ids::Impi;

/// Idle connections kept at most.
const POOL: usize = 8;

#[derive(Debug)]
pub struct SqliteReader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

fn reader_error(e: rusqlite::Error) -> StoreError {
    StoreError::Writer(e.to_string())
}

impl SqliteReader {
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
        }
    }

    fn open(&self) -> Result<Connection, StoreError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(reader_error)?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(reader_error)?;
        conn.set_prepared_statement_cache_capacity(8);
        Ok(conn)
    }

    fn read<R>(
        &self,
        work: impl FnOnce(&Connection) -> rusqlite::Result<R>,
    ) -> Result<R, StoreError> {
        let conn = match self.idle.lock().ok().and_then(|mut idle| idle.pop()) {
            Some(conn) => conn,
            None => self.open()?,
        };
        let result = work(&conn).map_err(reader_error)?;
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < POOL
        {
            idle.push(conn);
        }
        Ok(result)
    }
}

#[async_trait]
impl HotReads for SqliteReader {
    async fn session_load(
        &self,
        id: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(SESSION_LOAD)?
                .query_row(
                    named_params! {"$1": id, "$2": now.unix_timestamp()},
                    |row| row.get(0),
                )
                .optional()
        })
    }

    async fn consent_get(
        &self,
        impi: &Impi,
        relying_party: &str,
    ) -> Result<Option<ConsentRow>, StoreError> {
        let raw: Option<(String, String, String, i64)> = self.read(|conn| {
            conn.prepare_cached(CONSENT_GET)?
                .query_row(
                    named_params! {"$1": impi.as_str(), "$2": relying_party},
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
                )
                .optional()
        })?;
        raw.map(|(impi, relying_party, shared, created_at)| {
            Ok(ConsentRow {
                impi: parse_impi(&impi)?,
                relying_party,
                shared,
                created_at: time_from_db(created_at)?,
            })
        })
        .transpose()
    }
}
