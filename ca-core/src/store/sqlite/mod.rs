//! SQLite store (WAL, `synchronous=FULL`): the embedded default.
//!
//! Writes go through one writer thread that commits whatever has queued up in a single
//! transaction (group commit): many concurrent issuances share one fsync, while each caller
//! still returns only after its own change is durable. Each role trait is implemented in its
//! own module, where each write is one function that the writer runs inside the batch's
//! transaction ([`writer`]); reads use a shared reader connection or a snapshot of their own.

mod applications;
mod audit;
mod certificates;
mod commitments;
mod crl;
#[cfg(test)]
mod damaged_tests;
mod enrollments;
mod institutions;
mod migrations;
mod outbox;
mod registry;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{params, Connection};

pub use commitments::hold_request_id;

use self::audit::AuditHead;
use self::certificates::reason_code;
use self::writer::{writer_loop, Job, Refusal};
use crate::error::{CaError, Result};
use crate::lifecycle::RevocationReason;
use crate::serial::{IssuerId, Serial};
use crate::UnixTime;

/// The SQLite implementation of [`crate::store::Store`].
pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Option<Sender<Job>>>,
    /// The writer and the checkpointer threads.
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Dropping this sender stops the checkpointer.
    checkpoint_stop: Mutex<Option<Sender<()>>>,
    reader: Mutex<Connection>,
}

/// How often the background thread moves the WAL into the database file.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(500);

fn open_connection(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).map_err(|e| CaError::Store {
        operation: "open",
        reason: format!("{}: {e}", path.display()),
        source: Some(e),
    })?;
    // FULL: in WAL mode NORMAL does not sync at commit, and a commit must survive power loss.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000;",
    )
    .map_err(CaError::store("pragma"))?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database and runs pending migrations.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        let mut conn = open_connection(path)?;
        migrations::migrate(&mut conn)?;
        // Checkpoints run on their own thread and connection: in the writer they would stall
        // every caller waiting on a commit while the WAL is copied and the database synced.
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0;")
            .map_err(CaError::store("pragma"))?;
        let checkpointer = open_connection(path)?;
        let reader = open_connection(path)?;
        let spawn_err = |e: std::io::Error| CaError::Store {
            operation: "start store threads",
            reason: e.to_string(),
            source: None,
        };
        let (tx, rx) = mpsc::channel::<Job>();
        let writer = std::thread::Builder::new()
            .name("nesca-store-writer".into())
            .spawn(move || writer_loop(conn, rx))
            .map_err(spawn_err)?;
        let (stop, stopped) = mpsc::channel::<()>();
        let checkpoint = std::thread::Builder::new()
            .name("nesca-store-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpointer, stopped))
            .map_err(spawn_err)?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            writer: Mutex::new(Some(tx)),
            threads: Mutex::new(vec![writer, checkpoint]),
            checkpoint_stop: Mutex::new(Some(stop)),
            reader: Mutex::new(reader),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Benchmarks only (`nesca bench crl`): writes `count` revoked certificates with random
    /// serials under `issuer` in one transaction, bypassing issuance and the audit log, and
    /// returns them in serial order with their revocation times. Never call it on a store
    /// that holds real certificates.
    #[doc(hidden)]
    pub fn bench_fill_revoked(
        &self,
        issuer: &IssuerId,
        count: u64,
        at: UnixTime,
    ) -> Result<Vec<(Serial, UnixTime, Option<RevocationReason>)>> {
        let mut conn = open_connection(&self.path)?;
        let op = "bench fill";
        let tx = conn.transaction().map_err(CaError::store(op))?;
        let mut rows = Vec::with_capacity(count as usize);
        {
            let mut st = tx
                .prepare(
                    "INSERT INTO certificates (issuer, serial, profile, status, subject, not_before, not_after, reserved_at, issued_at, revoked_at, reason, tbs_der)
                     VALUES (?1, ?2, 'nes', 'revoked', 'CN=bench', ?3, ?4, ?3, ?3, ?5, ?6, x'')",
                )
                .map_err(CaError::store(op))?;
            let reasons = [
                None,
                Some(RevocationReason::KeyCompromise),
                Some(RevocationReason::Superseded),
                Some(RevocationReason::CessationOfOperation),
            ];
            for i in 0..count {
                let serial = Serial::random();
                let revoked_at = at.plus_secs(-((i % 86_400) as i64));
                let reason = reasons[(i % 4) as usize];
                st.execute(params![
                    issuer.as_str(),
                    serial.to_hex(),
                    at.plus_secs(-86_400).secs(),
                    at.plus_secs(3 * 365 * 86_400).secs(),
                    revoked_at.secs(),
                    reason_code(reason)
                ])
                .map_err(CaError::store(op))?;
                rows.push((serial, revoked_at, reason));
            }
        }
        tx.commit().map_err(CaError::store(op))?;
        rows.sort_by_key(|r| r.0);
        Ok(rows)
    }

    /// Queues `write` for the writer and waits until its batch is committed (or rolled back):
    /// a write is one function of a role's module, run inside the batch's transaction with
    /// the audit chain's head; its typed outcome comes back on a channel of its own.
    fn submit<T, F>(&self, write: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &mut AuditHead) -> Result<T, Refusal> + Send + 'static,
    {
        let (reply, answer) = mpsc::sync_channel(1);
        let sender = self
            .writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let closed = || CaError::Store {
            operation: "write",
            reason: "the store writer has stopped".into(),
            source: None,
        };
        sender
            .ok_or_else(closed)?
            .send(Job::new(write, reply))
            .map_err(|_| closed())?;
        answer.recv().map_err(|_| closed())?
    }

    /// A connection of its own inside an open read transaction (one snapshot), with the
    /// snapshot's watermark: the last audit sequence number it includes. Long scans (a
    /// million-entry CRL) use it so they never hold the shared reader that OCSP lookups use.
    fn snapshot(&self, operation: &'static str) -> Result<(Connection, i64)> {
        let conn = open_connection(&self.path)?;
        conn.execute_batch("BEGIN")
            .map_err(CaError::store(operation))?;
        let watermark: i64 = conn
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM audit", [], |r| r.get(0))
            .map_err(CaError::store(operation))?;
        Ok((conn, watermark))
    }

    /// Runs `f` on the shared reader connection (each statement its own snapshot).
    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
        operation: &'static str,
    ) -> Result<T> {
        let conn = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn).map_err(CaError::store(operation))
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Closing the channels ends the writer after it has committed what it holds, and the
        // checkpointer after a last checkpoint.
        self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        self.checkpoint_stop
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        for t in self
            .threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            let _ = t.join();
        }
    }
}

/// Copies committed WAL frames into the database file every [`CHECKPOINT_INTERVAL`].
/// PASSIVE never waits for the writer or readers; what it cannot copy now, it copies next time.
fn checkpoint_loop(conn: Connection, stop: Receiver<()>) {
    loop {
        let stopping = !matches!(
            stop.recv_timeout(CHECKPOINT_INTERVAL),
            Err(mpsc::RecvTimeoutError::Timeout)
        );
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "WAL checkpoint failed; will retry");
        }
        if stopping {
            return;
        }
    }
}

/// Reads an instant column (Unix seconds, as every stored instant is kept).
pub(super) fn time_column(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<UnixTime> {
    r.get(i).map(UnixTime::from_secs)
}

/// Reads an instant column that may be NULL.
pub(super) fn opt_time_column(
    r: &rusqlite::Row<'_>,
    i: usize,
) -> rusqlite::Result<Option<UnixTime>> {
    Ok(r.get::<_, Option<i64>>(i)?.map(UnixTime::from_secs))
}

/// A typed column's text that its `parse` refuses: a damaged row, refused where it is read
/// with the parse's error (which names the field and the values it knows).
pub(super) fn bad_column(i: usize, e: CaError) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
}

/// Reads a T.C. Kimlik No column: a stored value that is not one is a damaged row, refused
/// where it is read.
pub(super) fn tckn_column(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<crate::Tckn> {
    let text: String = r.get(i)?;
    crate::Tckn::parse(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// The store contract ([`crate::store::conformance`]), run against a fresh database file.
#[cfg(test)]
mod conformance {
    use super::SqliteStore;

    crate::store_conformance_tests!(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(&dir.path().join("conformance.db")).expect("open store");
        (store, dir)
    });
}
