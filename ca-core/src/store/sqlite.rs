//! SQLite store (WAL, `synchronous=FULL`): the embedded default.
//!
//! Writes go through one writer thread that commits whatever has queued up in a single
//! transaction (group commit): many concurrent issuances share one fsync, while each caller
//! still returns only after its own change is durable.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::audit::{chain_hash, AuditEntry, AuditReport, GENESIS};
use super::{CaRecord, CaRole, CertRecord, Reservation, Reserved, Store, SubjectRecord};
use crate::error::{CaError, Result};
use crate::serial::{IssuerId, Serial};

/// Versioned schema migrations, applied in order at open; never edit one that shipped.
const MIGRATIONS: &[&str] = &[
    // 1: certificates, CAs, audit log.
    "CREATE TABLE certificates (
        issuer       TEXT NOT NULL,
        serial       TEXT NOT NULL,
        profile      TEXT NOT NULL,
        status       TEXT NOT NULL CHECK (status IN ('reserved', 'active', 'failed')),
        subject      TEXT NOT NULL,
        tckn         TEXT,
        given_name   TEXT,
        surname      TEXT,
        not_before   INTEGER NOT NULL,
        not_after    INTEGER NOT NULL,
        tbs_der      BLOB NOT NULL,
        cert_der     BLOB,
        reserved_at  INTEGER NOT NULL,
        issued_at    INTEGER,
        fail_reason  TEXT,
        -- The constraint that makes a serial unique per issuer (RFC 5280 §4.1.2.2). A rowid
        -- table: rows carry kilobytes of DER, too large for a WITHOUT ROWID b-tree.
        UNIQUE (issuer, serial)
    );
    CREATE INDEX certificates_tckn ON certificates (tckn);
    CREATE TABLE cas (
        id             TEXT PRIMARY KEY,
        role           TEXT NOT NULL CHECK (role IN ('root', 'issuing')),
        key_label      TEXT NOT NULL,
        cert_der       BLOB NOT NULL,
        ocsp_key_label TEXT,
        ocsp_cert_der  BLOB,
        created_at     INTEGER NOT NULL
    );
    CREATE TABLE audit (
        seq       INTEGER PRIMARY KEY,
        at        INTEGER NOT NULL,
        actor     TEXT NOT NULL,
        action    TEXT NOT NULL,
        issuer    TEXT NOT NULL,
        serial    TEXT NOT NULL,
        detail    TEXT NOT NULL,
        prev_hash BLOB NOT NULL,
        hash      BLOB NOT NULL
    );",
];

/// How many queued writes one transaction takes at most.
const MAX_BATCH: usize = 1024;

enum Write {
    Reserve(Reservation),
    Complete {
        issuer: IssuerId,
        serial: Serial,
        cert_der: Vec<u8>,
        actor: String,
        at: i64,
    },
    Fail {
        issuer: IssuerId,
        serial: Serial,
        reason: String,
        actor: String,
        at: i64,
    },
    AddCa {
        ca: CaRecord,
        actor: String,
        at: i64,
    },
}

enum Outcome {
    Reserved(Reserved),
    Done,
}

struct Job {
    write: Write,
    reply: SyncSender<Result<Outcome>>,
}

/// The SQLite implementation of [`Store`].
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
    })?;
    // FULL: in WAL mode NORMAL does not sync at commit, and a commit must survive power loss.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000;",
    )
    .map_err(CaError::store("pragma"))?;
    Ok(conn)
}

/// The schema version, read without taking a lock (0 for a new database).
fn schema_version(conn: &Connection) -> i64 {
    conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_version",
        [],
        |r| r.get(0),
    )
    .unwrap_or(0)
}

fn migrate(conn: &mut Connection) -> Result<()> {
    // Up to date: nothing to write, so no write lock. Read-only commands (cert list, audit
    // verify) must not queue behind a busy writer just to learn that.
    if schema_version(conn) == MIGRATIONS.len() as i64 {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(CaError::store("migrate"))?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        .map_err(CaError::store("migrate"))?;
    let current: i64 = tx
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_version",
            [],
            |r| r.get(0),
        )
        .map_err(CaError::store("migrate"))?;
    if current > MIGRATIONS.len() as i64 {
        return Err(CaError::Store {
            operation: "migrate",
            reason: format!(
                "database schema version {current} is newer than this nesca understands ({})",
                MIGRATIONS.len()
            ),
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.execute_batch(sql).map_err(CaError::store("migrate"))?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [i as i64 + 1],
        )
        .map_err(CaError::store("migrate"))?;
    }
    tx.commit().map_err(CaError::store("migrate"))
}

impl SqliteStore {
    /// Opens (creating if needed) the database and runs pending migrations.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        let mut conn = open_connection(path)?;
        migrate(&mut conn)?;
        // Checkpoints run on their own thread and connection: in the writer they would stall
        // every caller waiting on a commit while the WAL is copied and the database synced.
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0;")
            .map_err(CaError::store("pragma"))?;
        let checkpointer = open_connection(path)?;
        let reader = open_connection(path)?;
        let spawn_err = |e: std::io::Error| CaError::Store {
            operation: "start store threads",
            reason: e.to_string(),
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

    fn submit(&self, write: Write) -> Result<Outcome> {
        let (reply, answer) = mpsc::sync_channel(1);
        let sender = self
            .writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let closed = || CaError::Store {
            operation: "write",
            reason: "the store writer has stopped".into(),
        };
        sender
            .ok_or_else(closed)?
            .send(Job { write, reply })
            .map_err(|_| closed())?;
        answer.recv().map_err(|_| closed())?
    }

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

fn writer_loop(mut conn: Connection, rx: Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let results = commit_batch(&mut conn, &batch);
        for (job, result) in batch.into_iter().zip(results) {
            // The caller may have gone away; its change is committed either way.
            let _ = job.reply.send(result);
        }
    }
}

/// Why one write of a batch did not happen.
enum Refusal {
    /// The write was refused before it changed anything; the rest of the batch goes on.
    Refused(CaError),
    /// The database failed; the whole batch is rolled back.
    Fatal(CaError),
}

impl From<rusqlite::Error> for Refusal {
    fn from(e: rusqlite::Error) -> Self {
        Refusal::Fatal(CaError::Store {
            operation: "write",
            reason: e.to_string(),
        })
    }
}

/// The head of the audit chain while a batch is being written.
struct AuditHead {
    seq: i64,
    hash: Vec<u8>,
}

/// Applies every write of the batch in one transaction and commits once.
///
/// A refused write (serial not reserved, CA exists) is checked before it writes anything, so
/// no savepoint is needed; any database error rolls the whole batch back and every caller in
/// it gets the error (fail closed: no change without its audit record).
fn commit_batch(conn: &mut Connection, batch: &[Job]) -> Vec<Result<Outcome>> {
    let fail_all = |e: &CaError| {
        batch
            .iter()
            .map(|_| {
                Err(CaError::Store {
                    operation: "commit",
                    reason: e.to_string(),
                })
            })
            .collect()
    };
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return fail_all(&CaError::store("begin")(e)),
    };
    let mut head = match audit_head(&tx) {
        Ok(h) => h,
        Err(e) => return fail_all(&e),
    };
    let mut results = Vec::with_capacity(batch.len());
    for job in batch {
        match apply(&tx, &job.write, &mut head) {
            Ok(outcome) => results.push(Ok(outcome)),
            Err(Refusal::Refused(e)) => results.push(Err(e)),
            Err(Refusal::Fatal(e)) => return fail_all(&e),
        }
    }
    match tx.commit() {
        Ok(()) => results,
        Err(e) => fail_all(&CaError::store("commit")(e)),
    }
}

fn audit_head(conn: &Connection) -> Result<AuditHead> {
    let head = conn
        .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        .and_then(|mut st| {
            st.query_row([], |r| {
                Ok(AuditHead {
                    seq: r.get(0)?,
                    hash: r.get(1)?,
                })
            })
            .optional()
        })
        .map_err(CaError::store("read audit head"))?;
    Ok(head.unwrap_or(AuditHead {
        seq: 0,
        hash: GENESIS.to_vec(),
    }))
}

/// Appends an audit record at the head of the chain.
fn append_audit(conn: &Connection, head: &mut AuditHead, mut e: AuditEntry) -> Result<(), Refusal> {
    e.seq = head.seq + 1;
    let hash = chain_hash(&head.hash, &e);
    conn.prepare_cached(
        "INSERT INTO audit (seq, at, actor, action, issuer, serial, detail, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![e.seq, e.at, e.actor, e.action, e.issuer, e.serial, e.detail, head.hash, hash])?;
    head.seq = e.seq;
    head.hash = hash;
    Ok(())
}

fn audit_entry(
    at: i64,
    actor: &str,
    action: &str,
    issuer: &IssuerId,
    serial: &str,
    detail: String,
) -> AuditEntry {
    AuditEntry {
        seq: 0,
        at,
        actor: actor.into(),
        action: action.into(),
        issuer: issuer.to_string(),
        serial: serial.into(),
        detail,
    }
}

fn apply(conn: &Connection, write: &Write, head: &mut AuditHead) -> Result<Outcome, Refusal> {
    match write {
        Write::Reserve(r) => {
            let inserted = conn
                .prepare_cached(
                    "INSERT INTO certificates (issuer, serial, profile, status, subject, tckn, given_name, surname, not_before, not_after, tbs_der, reserved_at)
                     VALUES (?1, ?2, ?3, 'reserved', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT DO NOTHING",
                )?
                .execute(params![
                    r.issuer.as_str(), r.serial.to_hex(), r.profile, r.subject.subject, r.subject.tckn, r.subject.given_name,
                    r.subject.surname, r.not_before, r.not_after, r.tbs_der, r.at
                ])?;
            if inserted == 0 {
                return Ok(Outcome::Reserved(Reserved::SerialTaken));
            }
            let detail = format!("profile={} subject={}", r.profile, r.subject.subject);
            append_audit(
                conn,
                head,
                audit_entry(
                    r.at,
                    &r.actor,
                    "reserve",
                    &r.issuer,
                    &r.serial.to_hex(),
                    detail,
                ),
            )?;
            Ok(Outcome::Reserved(Reserved::Ok))
        }
        Write::Complete {
            issuer,
            serial,
            cert_der,
            actor,
            at,
        } => {
            let n = conn
                .prepare_cached(
                    "UPDATE certificates SET status = 'active', cert_der = ?1, issued_at = ?2 WHERE issuer = ?3 AND serial = ?4 AND status = 'reserved'",
                )?
                .execute(params![cert_der, at, issuer.as_str(), serial.to_hex()])?;
            if n != 1 {
                return Err(Refusal::Refused(CaError::Store {
                    operation: "store certificate",
                    reason: format!("serial {serial} is not reserved for {issuer}"),
                }));
            }
            append_audit(
                conn,
                head,
                audit_entry(*at, actor, "issue", issuer, &serial.to_hex(), String::new()),
            )?;
            Ok(Outcome::Done)
        }
        Write::Fail {
            issuer,
            serial,
            reason,
            actor,
            at,
        } => {
            conn.prepare_cached(
                "UPDATE certificates SET status = 'failed', fail_reason = ?1 WHERE issuer = ?2 AND serial = ?3 AND status = 'reserved'",
            )?
            .execute(params![reason, issuer.as_str(), serial.to_hex()])?;
            append_audit(
                conn,
                head,
                audit_entry(*at, actor, "fail", issuer, &serial.to_hex(), reason.clone()),
            )?;
            Ok(Outcome::Done)
        }
        Write::AddCa { ca, actor, at } => {
            let exists = conn
                .prepare_cached("SELECT 1 FROM cas WHERE id = ?1")?
                .exists([ca.id.as_str()])?;
            if exists {
                return Err(Refusal::Refused(CaError::AlreadyExists {
                    what: format!("CA \"{}\" in the store", ca.id),
                }));
            }
            conn.prepare_cached(
                "INSERT INTO cas (id, role, key_label, cert_der, ocsp_key_label, ocsp_cert_der, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![ca.id.as_str(), ca.role.as_str(), ca.key_label, ca.cert_der, ca.ocsp_key_label, ca.ocsp_cert_der, at])?;
            append_audit(
                conn,
                head,
                audit_entry(
                    *at,
                    actor,
                    "add-ca",
                    &ca.id,
                    "",
                    format!("role={}", ca.role.as_str()),
                ),
            )?;
            Ok(Outcome::Done)
        }
    }
}

const CERT_COLUMNS: &str =
    "issuer, serial, profile, status, subject, tckn, given_name, surname, not_before, not_after, reserved_at, issued_at, cert_der";

fn cert_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CertRecord> {
    let bad = |i: usize, e: String| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    };
    let issuer: String = r.get(0)?;
    let serial: String = r.get(1)?;
    let status: String = r.get(3)?;
    Ok(CertRecord {
        issuer: IssuerId::new(&issuer).map_err(|e| bad(0, e))?,
        serial: Serial::from_hex(&serial).map_err(|e| bad(1, e))?,
        profile: r.get(2)?,
        status: status.parse().map_err(|e| bad(3, e))?,
        subject: SubjectRecord {
            subject: r.get(4)?,
            tckn: r.get(5)?,
            given_name: r.get(6)?,
            surname: r.get(7)?,
        },
        not_before: r.get(8)?,
        not_after: r.get(9)?,
        reserved_at: r.get(10)?,
        issued_at: r.get(11)?,
        cert_der: r.get(12)?,
    })
}

fn ca_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CaRecord> {
    let bad = |i: usize, e: String| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    };
    let id: String = r.get(0)?;
    let role: String = r.get(1)?;
    Ok(CaRecord {
        id: IssuerId::new(&id).map_err(|e| bad(0, e))?,
        role: if role == "root" {
            CaRole::Root
        } else {
            CaRole::Issuing
        },
        key_label: r.get(2)?,
        cert_der: r.get(3)?,
        ocsp_key_label: r.get(4)?,
        ocsp_cert_der: r.get(5)?,
    })
}

impl Store for SqliteStore {
    fn reserve(&self, r: Reservation) -> Result<Reserved> {
        match self.submit(Write::Reserve(r))? {
            Outcome::Reserved(x) => Ok(x),
            Outcome::Done => Ok(Reserved::Ok),
        }
    }

    fn complete(
        &self,
        issuer: &IssuerId,
        serial: &Serial,
        cert_der: Vec<u8>,
        actor: &str,
        at: i64,
    ) -> Result<()> {
        self.submit(Write::Complete {
            issuer: issuer.clone(),
            serial: *serial,
            cert_der,
            actor: actor.into(),
            at,
        })
        .map(|_| ())
    }

    fn fail(
        &self,
        issuer: &IssuerId,
        serial: &Serial,
        reason: &str,
        actor: &str,
        at: i64,
    ) -> Result<()> {
        self.submit(Write::Fail {
            issuer: issuer.clone(),
            serial: *serial,
            reason: reason.into(),
            actor: actor.into(),
            at,
        })
        .map(|_| ())
    }

    fn get(&self, issuer: Option<&IssuerId>, serial: &Serial) -> Result<Option<CertRecord>> {
        let sql = format!("SELECT {CERT_COLUMNS} FROM certificates WHERE serial = ?1 AND (?2 IS NULL OR issuer = ?2)");
        self.read(
            |c| {
                c.query_row(
                    &sql,
                    params![serial.to_hex(), issuer.map(|i| i.as_str())],
                    cert_row,
                )
                .optional()
            },
            "read certificate",
        )
    }

    fn list(&self, issuer: Option<&IssuerId>) -> Result<Vec<CertRecord>> {
        let sql = format!("SELECT {CERT_COLUMNS} FROM certificates WHERE (?1 IS NULL OR issuer = ?1) ORDER BY reserved_at, serial");
        self.read(
            |c| {
                let mut stmt = c.prepare(&sql)?;
                let rows = stmt.query_map(params![issuer.map(|i| i.as_str())], cert_row)?;
                rows.collect()
            },
            "list certificates",
        )
    }

    fn add_ca(&self, ca: CaRecord, actor: &str, at: i64) -> Result<()> {
        self.submit(Write::AddCa {
            ca,
            actor: actor.into(),
            at,
        })
        .map(|_| ())
    }

    fn ca(&self, id: &IssuerId) -> Result<Option<CaRecord>> {
        self.read(
            |c| c.query_row("SELECT id, role, key_label, cert_der, ocsp_key_label, ocsp_cert_der FROM cas WHERE id = ?1", [id.as_str()], ca_row).optional(),
            "read CA",
        )
    }

    fn verify_audit(&self) -> Result<AuditReport> {
        self.read(
            |c| {
                let mut stmt = c.prepare("SELECT seq, at, actor, action, issuer, serial, detail, prev_hash, hash FROM audit ORDER BY seq")?;
                let mut rows = stmt.query([])?;
                let mut prev = GENESIS.to_vec();
                let mut records = 0u64;
                let mut expected_seq = 1i64;
                while let Some(r) = rows.next()? {
                    let e = AuditEntry { seq: r.get(0)?, at: r.get(1)?, actor: r.get(2)?, action: r.get(3)?, issuer: r.get(4)?, serial: r.get(5)?, detail: r.get(6)? };
                    let stored_prev: Vec<u8> = r.get(7)?;
                    let stored: Vec<u8> = r.get(8)?;
                    if e.seq != expected_seq || stored_prev != prev || chain_hash(&prev, &e) != stored {
                        return Ok(AuditReport { records, first_break: Some(e.seq) });
                    }
                    prev = stored;
                    records += 1;
                    expected_seq += 1;
                }
                Ok(AuditReport { records, first_break: None })
            },
            "verify audit",
        )
    }
}
