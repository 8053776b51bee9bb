//! The SQLite write path of the hot Ub statements: one connection on one thread, with group
//! commit.
//!
//! SQLite lets one writer in at a time. Through the pool, every Ub statement was its own
//! transaction on one of eight connections: the writers queued on the database lock (with
//! the busy handler's sleeps) and each statement cost two thread hand-offs on a machine
//! whose two cores also run the handsets. Here a bootstrap's five writes (rate counter, SQN
//! step, challenge insert, challenge take, session insert) go to one thread that owns one
//! connection: it takes every job that is waiting, runs them in one `BEGIN IMMEDIATE …
//! COMMIT`, and only then answers each, so nothing is reported done before it is
//! committed. A failed statement rolls back that statement only (SQLite's default
//! conflict resolution); a failed commit fails every job of the batch.
//!
//! The SQL is the same text the pool runs ([`super::hot_sql`]); SQLite treats `$1` as a
//! named parameter, bound here by that name.
//!
//! Checkpoints (copying the WAL back into the database file, with an fsync) are not this
//! thread's business: with SQLite's automatic checkpoint every thousandth page of WAL made
//! one commit wait for the disk, and every caller behind it. A checkpointer thread of its own
//! runs passive checkpoints, which never block the writer, every [`CHECKPOINT_EVERY`].

use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, OptionalExtension, named_params};
use time::OffsetDateTime;
use tokio::sync::oneshot;

use super::hot_sql::{
    BOOTSTRAP_INSERT, CHALLENGE_INSERT, CHALLENGE_TAKE, CODE_INSERT, CODE_TAKE, CODE_WHY,
    GRANT_INSERT, NONCE_RECORD, RATE_HIT,
};
use super::{
    BootstrapRow, ChallengeRow, CodeRow, CodeTake, Grant, HotWrites, NEXT_SQN_SQL, SealedKeys,
    StoreError, TakenCode, UntakenCode, code_take_outcome, sealed_keys, time_from_db,
};
use crate::ids::Impi;

/// Jobs in one transaction at most: bounds the latency a job waits behind others.
const MAX_BATCH: usize = 512;
/// How often the checkpointer runs.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// One checkpoint in this many is a RESTART.
const RESTART_EVERY: u32 = 8;

/// What a job leaves after it ran: the answer to send once the commit's outcome is known.
type Reply = Box<dyn FnOnce(Result<(), String>) + Send>;
type Job = Box<dyn FnOnce(&Connection) -> Reply + Send>;

/// The handle: cheap to share; the threads end when the last handle is dropped.
#[derive(Debug)]
pub struct SqliteWriter {
    jobs: mpsc::Sender<Job>,
    /// Never sent on: dropping it tells the checkpointer to stop.
    _checkpointer: mpsc::Sender<()>,
}

impl SqliteWriter {
    /// Opens a second connection to the database file at `path` (which the pool has already
    /// created and put in WAL mode) and starts the writer thread.
    pub fn start(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(writer_error)?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(writer_error)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
             PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 67108864;",
        )
        .map_err(writer_error)?;
        conn.set_prepared_statement_cache_capacity(16);
        let (jobs, queue) = mpsc::channel::<Job>();
        thread::Builder::new()
            .name("akaid-sqlite-writer".into())
            .spawn(move || run(conn, queue))
            .map_err(|e| StoreError::Writer(format!("cannot start the writer thread: {e}")))?;
        let checkpoint_conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(writer_error)?;
        checkpoint_conn
            .busy_timeout(Duration::from_secs(10))
            .map_err(writer_error)?;
        let (checkpointer, stop) = mpsc::channel::<()>();
        thread::Builder::new()
            .name("akaid-sqlite-checkpoint".into())
            .spawn(move || checkpoint(checkpoint_conn, stop))
            .map_err(|e| StoreError::Writer(format!("cannot start the checkpointer: {e}")))?;
        Ok(Self {
            jobs,
            _checkpointer: checkpointer,
        })
    }

    /// Runs `work` in the next batch and returns its result once the batch is committed.
    async fn write<R: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    ) -> Result<R, StoreError> {
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let outcome = work(conn);
            Box::new(move |committed: Result<(), String>| {
                let result = match (outcome, committed) {
                    (Err(e), _) => Err(writer_error(e)),
                    (Ok(_), Err(e)) => Err(StoreError::Writer(e)),
                    (Ok(value), Ok(())) => Ok(value),
                };
                // The caller may have gone (a dropped request); the write stands regardless.
                let _ = answer.send(result);
            })
        });
        self.jobs
            .send(job)
            .map_err(|_| StoreError::Writer("the writer thread has stopped".into()))?;
        answered
            .await
            .map_err(|_| StoreError::Writer("the writer thread has stopped".into()))?
    }
}

/// Checkpoints until the writer handle is dropped. Passive ones copy the WAL back without
/// stopping the writer, but under steady writes they never catch up with it, and the WAL only
/// starts again from its beginning once it is all copied: so every [`RESTART_EVERY`]th is a
/// RESTART, which holds the writer for the few frames the passive ones left and lets the WAL
/// start over (bounding its size). A failed checkpoint is logged and tried again next time.
fn checkpoint(conn: Connection, stop: mpsc::Receiver<()>) {
    let mut tick: u32 = 0;
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        tick = tick.wrapping_add(1);
        let sql = if tick.is_multiple_of(RESTART_EVERY) {
            "PRAGMA wal_checkpoint(RESTART)"
        } else {
            "PRAGMA wal_checkpoint(PASSIVE)"
        };
        if let Err(e) = conn.query_row(sql, [], |_| Ok(())) {
            tracing::warn!(error = %e, "SQLite checkpoint failed");
        }
    }
}

fn run(conn: Connection, queue: mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            let message = format!("cannot begin a write transaction: {e}");
            // Each job still runs (in autocommit) so that no caller is left without an answer.
            for job in batch {
                job(&conn)(Err(message.clone()));
            }
            continue;
        }
        let replies: Vec<Reply> = batch.into_iter().map(|job| job(&conn)).collect();
        let committed = conn.execute_batch("COMMIT").map_err(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            format!("cannot commit: {e}")
        });
        for reply in replies {
            reply(committed.clone());
        }
    }
}

fn writer_error(e: rusqlite::Error) -> StoreError {
    StoreError::Writer(e.to_string())
}

fn corrupt(e: StoreError) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(e))
}

#[async_trait]
impl HotWrites for SqliteWriter {
    async fn insert_grant(
        &self,
        grant: &Grant,
        code: &CodeRow,
        created_at: OffsetDateTime,
        keep_until: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let (grant, code) = (grant.clone(), code.clone());
        self.write(move |conn| {
            // Both rows or neither, inside the batch's transaction.
            conn.execute_batch("SAVEPOINT grant_insert")?;
            let scope = grant.scope.to_string();
            let inserted = conn
                .prepare_cached(GRANT_INSERT)?
                .execute(named_params! {
                    "$1": grant.id.as_str(),
                    "$2": grant.client_id.as_str(),
                    "$3": grant.impi.as_str(),
                    "$4": scope,
                    "$5": grant.shared,
                    "$6": grant.auth_time.unix_timestamp(),
                    "$7": grant.acr,
                    "$8": created_at.unix_timestamp(),
                    // Kept at least as long as its code, so a second use is recognised.
                    "$9": keep_until.max(code.expires_at).unix_timestamp(),
                    "$10": grant.openid2_id,
                })
                .and_then(|_| {
                    conn.prepare_cached(CODE_INSERT)?.execute(named_params! {
                        "$1": &code.hash.as_bytes()[..],
                        "$2": grant.id.as_str(),
                        "$3": grant.client_id.as_str(),
                        "$4": grant.impi.as_str(),
                        "$5": code.redirect_uri,
                        "$6": scope,
                        "$7": grant.shared,
                        "$8": code.nonce,
                        "$9": code.code_challenge.as_ref().map(|c| c.as_str()),
                        "$10": grant.auth_time.unix_timestamp(),
                        "$11": grant.acr,
                        "$12": code.expires_at.unix_timestamp(),
                        "$13": grant.openid2_id,
                    })
                });
            match inserted {
                Ok(_) => conn.execute_batch("RELEASE grant_insert"),
                Err(e) => {
                    conn.execute_batch("ROLLBACK TO grant_insert; RELEASE grant_insert")?;
                    Err(e)
                }
            }
        })
        .await
    }

    async fn take_code(
        &self,
        hash: &crate::oidc::grant::TokenHash,
        now: OffsetDateTime,
    ) -> Result<CodeTake, StoreError> {
        let hash = hash.as_bytes().to_vec();
        let (taken, why) = self
            .write(move |conn| {
                let taken = conn
                    .prepare_cached(CODE_TAKE)?
                    .query_row(
                        named_params! {"$1": &hash[..], "$2": now.unix_timestamp()},
                        |row| {
                            Ok(TakenCode {
                                code_hash: row.get("code_hash")?,
                                grant_id: row.get("grant_id")?,
                                client_id: row.get("client_id")?,
                                impi: row.get("impi")?,
                                redirect_uri: row.get("redirect_uri")?,
                                scope: row.get("scope")?,
                                shared: row.get("shared")?,
                                nonce: row.get("nonce")?,
                                code_challenge: row.get("code_challenge")?,
                                auth_time: row.get("auth_time")?,
                                acr: row.get("acr")?,
                                expires_at: row.get("expires_at")?,
                                openid2_id: row.get("openid2_id")?,
                            })
                        },
                    )
                    .optional()?;
                let why = match taken {
                    Some(_) => None,
                    None => conn
                        .prepare_cached(CODE_WHY)?
                        .query_row(named_params! {"$1": &hash[..]}, |row| {
                            Ok(UntakenCode {
                                grant_id: row.get("grant_id")?,
                                used_at: row.get("used_at")?,
                                revoked_at: row.get("revoked_at")?,
                            })
                        })
                        .optional()?,
                };
                Ok((taken, why))
            })
            .await?;
        code_take_outcome(taken, why)
    }

    async fn advance_sqn(&self, impi: &Impi) -> Result<Option<SealedKeys>, StoreError> {
        let impi = impi.as_str().to_owned();
        self.write(move |conn| {
            conn.prepare_cached(NEXT_SQN_SQL)?
                .query_row(named_params! {"$1": impi}, |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
                })
                .optional()
        })
        .await?
        .map(|(k, opc, amf, sqn)| sealed_keys(k, opc, amf, sqn))
        .transpose()
    }

    async fn insert_challenge(&self, row: &ChallengeRow) -> Result<(), StoreError> {
        let row = row.clone();
        self.write(move |conn| {
            conn.prepare_cached(CHALLENGE_INSERT)?
                .execute(named_params! {
                    "$1": row.nonce,
                    "$2": row.impi,
                    "$3": row.opaque,
                    "$4": row.secrets_sealed,
                    "$5": row.expires_at.unix_timestamp(),
                })
                .map(drop)
        })
        .await
    }

    async fn take_challenge(&self, nonce: &str) -> Result<Option<ChallengeRow>, StoreError> {
        let nonce = nonce.to_owned();
        self.write(move |conn| {
            conn.prepare_cached(CHALLENGE_TAKE)?
                .query_row(named_params! {"$1": nonce}, |row| {
                    Ok(ChallengeRow {
                        nonce: row.get(0)?,
                        impi: row.get(1)?,
                        opaque: row.get(2)?,
                        secrets_sealed: row.get(3)?,
                        expires_at: time_from_db(row.get(4)?).map_err(corrupt)?,
                    })
                })
                .optional()
        })
        .await
    }

    async fn insert_bootstrap(&self, row: &BootstrapRow) -> Result<(), StoreError> {
        let row = row.clone();
        self.write(move |conn| {
            conn.prepare_cached(BOOTSTRAP_INSERT)?
                .execute(named_params! {
                    "$1": row.btid,
                    "$2": row.impi.as_str(),
                    "$3": &row.rand[..],
                    "$4": row.ks_sealed,
                    "$5": row.created_at.unix_timestamp(),
                    "$6": row.expires_at.unix_timestamp(),
                })
                .map(drop)
        })
        .await
    }

    async fn rate_hit(&self, key: &str, window_start: i64) -> Result<u64, StoreError> {
        let key = key.to_owned();
        let count: i64 = self
            .write(move |conn| {
                conn.prepare_cached(RATE_HIT)?
                    .query_row(named_params! {"$1": key, "$2": window_start}, |row| {
                        row.get(0)
                    })
            })
            .await?;
        Ok(count.unsigned_abs())
    }

    async fn record_nonce(
        &self,
        nonce: &str,
        expires_at: time::OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let nonce = nonce.to_owned();
        let inserted = self
            .write(move |conn| {
                conn.prepare_cached(NONCE_RECORD)?.execute(named_params! {
                    "$1": nonce,
                    "$2": expires_at.unix_timestamp(),
                })
            })
            .await?;
        Ok(inserted == 1)
    }
}
