//! SQLite store (WAL, `synchronous=FULL`): the embedded default.
//!
//! Writes go through one writer thread that commits whatever has queued up in a single
//! transaction (group commit): many concurrent issuances share one fsync, while each caller
//! still returns only after its own change is durable. Each role trait is implemented in its
//! own module, where each write is one function that the writer runs inside the batch's
//! transaction ([`writer`]); reads use a shared reader connection or a snapshot of their own.

sql_role_modules!();
#[cfg(test)]
mod damaged_tests;
mod db;
mod files;
mod migrations;
#[cfg(test)]
mod plan_tests;

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{params, Connection};

use self::audit::AuditHead;
use self::certificates::reason_code;
use self::columns::{bad_column, opt_time_column, tckn_column, time_column};
use self::writer::{Refusal, Writer};
use crate::error::{CaError, Result};
use crate::lifecycle::RevocationReason;
use crate::serial::{IssuerId, Serial};
use crate::UnixTime;

/// The store type the shared role modules implement the traits for.
type Backend = SqliteStore;

/// The SQLite implementation of [`crate::store::Store`].
pub struct SqliteStore {
    path: PathBuf,
    writer: Writer,
    /// The writer and the checkpointer threads.
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Dropping this sender stops the checkpointer.
    checkpoint_stop: Mutex<Option<Sender<()>>>,
    reader: Mutex<Connection>,
}

/// How often the background thread moves the WAL into the database file.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(500);

/// The size the WAL is cut back to whenever it is reset (`journal_size_limit`), and past
/// which the checkpointer truncates it to nothing (`wal_checkpoint(TRUNCATE)`): without both,
/// the `-wal` file keeps the size of the largest transaction ever written (a list import,
/// a benchmark fill) and the old frames in it.
pub(crate) const WAL_LIMIT_BYTES: u64 = 4 * 1024 * 1024;

/// How long a truncating checkpoint may hold the write lock waiting for readers before it
/// gives up until the next round; writers wait at most this long for it.
const TRUNCATE_BUSY_MS: u32 = 200;

fn open_connection(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).map_err(|e| CaError::Store {
        operation: "open",
        reason: format!("{}: {e}", path.display()),
        source: Some(e.into()),
    })?;
    // FULL: in WAL mode NORMAL does not sync at commit, and a commit must survive power loss.
    // secure_delete: a deleted or overwritten value (an old password hash, a voided code's
    // hash) is zeroed in its page instead of lingering in free space.
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000; \
         PRAGMA secure_delete = ON; PRAGMA journal_size_limit = {WAL_LIMIT_BYTES};"
    ))
    .map_err(CaError::store("pragma"))?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database and runs pending migrations.
    ///
    /// A new database file is created 0600 (its `-wal` and `-shm` files follow its mode). A
    /// database file, `-wal` or `-shm` that group or others may reach, or a directory holding
    /// them that group or others may read or write, is refused ([`CaError::Exposed`], naming
    /// the path and its mode) before anything is opened.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        files::prepare(path)?;
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
        let (writer, writer_thread) = Writer::start(conn)?;
        let (stop, stopped) = mpsc::channel::<()>();
        let checkpoint = std::thread::Builder::new()
            .name("nesca-store-checkpoint".into())
            .spawn({
                let wal = files::database_files(path)[1].clone();
                move || checkpoint_loop(checkpointer, &wal, stopped)
            })
            .map_err(spawn_err)?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            writer,
            threads: Mutex::new(vec![writer_thread, checkpoint]),
            checkpoint_stop: Mutex::new(Some(stop)),
            reader: Mutex::new(reader),
        })
    }

    /// The checks [`SqliteStore::open`] makes on the database's files and directory, without
    /// creating or opening anything: for a caller that wants to refuse before other work.
    pub fn check_permissions(path: &Path) -> Result<()> {
        files::check(path)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Copies the whole WAL into the database file and truncates it to nothing (SQLite's
    /// `wal_checkpoint(TRUNCATE)`), waiting a moment for readers. Returns whether it
    /// completed; a busy database is left for the checkpointer's next round. `nesca serve`'s
    /// store does this by itself whenever the WAL passes 4 MiB.
    pub fn checkpoint_truncate(&self) -> Result<bool> {
        truncate_wal(&open_connection(&self.path)?)
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
        let rows = super::bench_revoked_rows(count, at);
        let mut conn = open_connection(&self.path)?;
        let op = "bench fill";
        let tx = conn.transaction().map_err(CaError::store(op))?;
        {
            let mut st = tx
                .prepare(
                    "INSERT INTO certificates (issuer, serial, profile, status, subject, not_before, not_after, reserved_at, issued_at, revoked_at, reason, tbs_der)
                     VALUES (?1, ?2, 'nes', 'revoked', 'CN=bench', ?3, ?4, ?3, ?3, ?5, ?6, x'')",
                )
                .map_err(CaError::store(op))?;
            for (serial, revoked_at, reason) in &rows {
                st.execute(params![
                    issuer.as_str(),
                    serial.to_hex(),
                    at.plus_secs(-86_400).secs(),
                    at.plus_secs(3 * 365 * 86_400).secs(),
                    revoked_at.secs(),
                    reason_code(*reason)
                ])
                .map_err(CaError::store(op))?;
            }
        }
        tx.commit().map_err(CaError::store(op))?;
        Ok(rows)
    }

    /// Queues `write` for the writer and waits until its batch is committed
    /// ([`writer::Writer::submit`]).
    fn submit<T, F>(&self, write: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &mut AuditHead) -> Result<T, Refusal> + Send + 'static,
    {
        self.writer.submit(write)
    }

    /// SQLite hears of no change (other processes write the file): waits out `timeout`, and
    /// the caller polls.
    fn wait_for_change_signal(&self, timeout: Duration) {
        std::thread::sleep(timeout);
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
        self.writer.close();
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
/// A WAL grown past [`WAL_LIMIT_BYTES`] (a large transaction), and the WAL at shutdown, are
/// truncated to nothing.
fn checkpoint_loop(conn: Connection, wal: &Path, stop: Receiver<()>) {
    loop {
        let stopping = !matches!(
            stop.recv_timeout(CHECKPOINT_INTERVAL),
            Err(mpsc::RecvTimeoutError::Timeout)
        );
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "WAL checkpoint failed; will retry");
        }
        let large = std::fs::metadata(wal).is_ok_and(|m| m.len() > WAL_LIMIT_BYTES);
        if large || stopping {
            match truncate_wal(&conn) {
                Ok(true) => {}
                Ok(false) => tracing::debug!("WAL truncation busy; will retry"),
                Err(e) => tracing::warn!(error = %e, "WAL truncation failed; will retry"),
            }
        }
        if stopping {
            return;
        }
    }
}

/// `wal_checkpoint(TRUNCATE)` on `conn`, holding the write lock at most
/// [`TRUNCATE_BUSY_MS`] while readers finish; whether it completed.
fn truncate_wal(conn: &Connection) -> Result<bool> {
    let op = "checkpoint";
    let before: i64 = conn
        .query_row("PRAGMA busy_timeout", [], |r| r.get(0))
        .map_err(CaError::store(op))?;
    conn.busy_timeout(Duration::from_millis(TRUNCATE_BUSY_MS.into()))
        .map_err(CaError::store(op))?;
    let outcome = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        r.get::<_, i64>(0)
    });
    conn.busy_timeout(Duration::from_millis(before.max(0) as u64))
        .map_err(CaError::store(op))?;
    match outcome {
        Ok(busy) => Ok(busy == 0),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::DatabaseBusy =>
        {
            Ok(false)
        }
        Err(e) => Err(CaError::store(op)(e)),
    }
}

/// The store contract ([`crate::store::conformance`]), run against a fresh database file.
#[cfg(test)]
mod conformance {
    use super::SqliteStore;

    crate::store_conformance_tests!(|| {
        let dir = crate::testkit::private_tempdir();
        let store = SqliteStore::open(&dir.path().join("conformance.db")).expect("open store");
        (store, dir)
    });
}

#[cfg(test)]
mod wal_tests {
    use std::time::Instant;

    use super::*;

    fn wal_len(path: &Path) -> u64 {
        std::fs::metadata(&files::database_files(path)[1]).map_or(0, |m| m.len())
    }

    /// Many writes in one large transaction grow the WAL past its limit; a truncating
    /// checkpoint (by hand, and the checkpointer's own) brings it back under the bound.
    #[test]
    fn the_wal_is_truncated_after_large_writes() {
        let dir = crate::testkit::private_tempdir();
        let path = dir.path().join("wal.db");
        drop(SqliteStore::open(&path).unwrap());
        // No store running, so no checkpointer: a large transaction leaves a large WAL.
        let mut conn = open_connection(&path).unwrap();
        let tx = conn.transaction().unwrap();
        for i in 0..20_000 {
            tx.execute(
                "INSERT INTO certificates (issuer, serial, profile, status, subject, not_before, not_after, reserved_at, tbs_der) VALUES ('nes-ca', ?1, 'nes', 'reserved', 'CN=wal', 0, 0, 0, zeroblob(256))",
                params![format!("{i:032x}")],
            )
            .unwrap();
        }
        tx.commit().unwrap();
        assert!(wal_len(&path) > WAL_LIMIT_BYTES, "{}", wal_len(&path));
        assert!(truncate_wal(&conn).unwrap());
        assert_eq!(wal_len(&path), 0);
        drop(conn);

        // Left to a running store's checkpointer: the WAL falls back under the limit.
        let store = SqliteStore::open(&path).unwrap();
        let issuer = IssuerId::parse("nes-ca").unwrap();
        store
            .bench_fill_revoked(&issuer, 60_000, UnixTime::from_secs(1_800_000_000))
            .unwrap();
        let start = Instant::now();
        while wal_len(&path) > WAL_LIMIT_BYTES && start.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            wal_len(&path) <= WAL_LIMIT_BYTES,
            "{} bytes",
            wal_len(&path)
        );
        // And by hand, to nothing.
        assert!(store.checkpoint_truncate().unwrap());
        assert_eq!(wal_len(&path), 0);
    }
}
