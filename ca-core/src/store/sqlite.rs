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
use super::prelude::*;
use super::{
    ApplicationIssued, ApplicationStatus, CaRecord, CaRole, CertRecord, CertStatus,
    ChannelApplication, CommitmentAcceptance, CommitmentOutcome, CommitmentRecord, Completion,
    CrlKind, CrlPlan, CrlRecord, CrlReservation, DeltaEntry, OutboxMessage, PreApplication,
    Reservation, Reserved, Revocation, RevokedEntry, StatusRecord, SubjectRecord,
    TransitionOutcome, TransitionRecord, TransitionWrite,
};
use crate::error::{CaError, Result};
use crate::lifecycle::{next_status, LifecycleAction, RevocationReason};
use crate::partner::{PartnerId, PartnerRecord};
use crate::serial::{IssuerId, Serial};

/// Versioned schema migrations, applied in order at open; never edit one that shipped.
mod commitments;
mod enrollments;
mod institutions;

pub use commitments::hold_request_id;

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
    // 2: the lifecycle (suspended, revoked), lifecycle requests, CRL numbers. The certificates
    // table is rebuilt because SQLite cannot change a CHECK constraint in place; the status
    // columns come before the DER so reading them never walks a row's overflow pages.
    "CREATE TABLE certificates_v2 (
        issuer          TEXT NOT NULL,
        serial          TEXT NOT NULL,
        profile         TEXT NOT NULL,
        status          TEXT NOT NULL
                        CHECK (status IN ('reserved', 'active', 'failed', 'suspended', 'revoked')),
        subject         TEXT NOT NULL,
        tckn            TEXT,
        given_name      TEXT,
        surname         TEXT,
        not_before      INTEGER NOT NULL,
        not_after       INTEGER NOT NULL,
        reserved_at     INTEGER NOT NULL,
        issued_at       INTEGER,
        fail_reason     TEXT,
        -- Suspended or revoked: revocationDate, CRLReason code (NULL: unspecified), invalidityDate.
        revoked_at      INTEGER,
        reason          INTEGER,
        invalidity_date INTEGER,
        -- Audit sequence number of the last status change (issue, suspend, release, revoke):
        -- what delta CRLs and the OCSP refresher read changes by.
        change_seq      INTEGER NOT NULL DEFAULT 0,
        tbs_der         BLOB NOT NULL,
        cert_der        BLOB,
        UNIQUE (issuer, serial)
    );
    INSERT INTO certificates_v2 (issuer, serial, profile, status, subject, tckn, given_name,
        surname, not_before, not_after, reserved_at, issued_at, fail_reason, tbs_der, cert_der)
      SELECT issuer, serial, profile, status, subject, tckn, given_name, surname, not_before,
        not_after, reserved_at, issued_at, fail_reason, tbs_der, cert_der FROM certificates;
    DROP TABLE certificates;
    ALTER TABLE certificates_v2 RENAME TO certificates;
    CREATE INDEX certificates_tckn ON certificates (tckn);
    CREATE INDEX certificates_change ON certificates (change_seq);
    -- Covering index of the full CRL's entries: a million-entry CRL scans this, not the table.
    CREATE INDEX certificates_revoked
        ON certificates (issuer, serial, status, revoked_at, reason, invalidity_date)
        WHERE status IN ('suspended', 'revoked');
    CREATE TABLE transitions (
        seq             INTEGER PRIMARY KEY,   -- the audit record's seq
        request_id      TEXT NOT NULL UNIQUE,  -- a request applies once
        issuer          TEXT NOT NULL,
        serial          TEXT NOT NULL,
        action          TEXT NOT NULL CHECK (action IN ('suspend', 'release', 'revoke')),
        from_status     TEXT NOT NULL,
        to_status       TEXT NOT NULL,
        reason          INTEGER,
        invalidity_date INTEGER,
        holder          TEXT NOT NULL,
        actor           TEXT NOT NULL,
        at              INTEGER NOT NULL
    );
    CREATE INDEX transitions_certificate ON transitions (issuer, serial, seq);
    CREATE TABLE crls (
        issuer      TEXT NOT NULL,
        number      INTEGER NOT NULL,          -- one sequence per issuer, full and delta
        kind        TEXT NOT NULL CHECK (kind IN ('full', 'delta')),
        base_number INTEGER,
        watermark   INTEGER,
        this_update INTEGER NOT NULL,
        next_update INTEGER NOT NULL,
        entries     INTEGER,
        published   INTEGER NOT NULL DEFAULT 0,
        created_at  INTEGER NOT NULL,
        PRIMARY KEY (issuer, number)
    );",
    // 3: registered licensed ESHS operators, the only holders of role and secure-communication
    // certificates.
    "CREATE TABLE partners (
        id         TEXT PRIMARY KEY,
        name       TEXT NOT NULL,
        license_no TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        active     INTEGER NOT NULL DEFAULT 1
    );",
    // 4: applications that front channels submitted, by the channel's own reference: a
    // reference seen before issues nothing new (replay of a KDBO, a retried request).
    "CREATE TABLE channel_applications (
        channel     TEXT NOT NULL,
        channel_ref TEXT NOT NULL,
        status      TEXT NOT NULL CHECK (status IN ('pending', 'issued', 'refused')),
        serial      TEXT,
        error       TEXT,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        PRIMARY KEY (channel, channel_ref)
    );",
    // 5: commitments (taahhütname) that certificates of the identity-card channels await while
    // suspended, with the signed commitment kept as evidence; and the card key wrapped for the
    // card, kept so that a replayed application answers with it (the HSM copy is destroyed).
    "CREATE TABLE commitments (
        issuer           TEXT NOT NULL,
        serial           TEXT NOT NULL,
        channel          TEXT NOT NULL,
        channel_ref      TEXT NOT NULL,
        text             TEXT NOT NULL,
        sha256           TEXT NOT NULL,
        deadline         INTEGER NOT NULL,
        overwrite_serial TEXT,
        status           TEXT NOT NULL CHECK (status IN ('pending', 'accepted', 'expired')),
        evidence         BLOB,
        accepted_at      INTEGER,
        created_at       INTEGER NOT NULL,
        PRIMARY KEY (issuer, serial)
    );
    CREATE INDEX commitments_due ON commitments (deadline) WHERE status = 'pending';
    ALTER TABLE channel_applications ADD COLUMN wrapped_key TEXT;",
    // 6: the institutional channel: institutions and their officers, imported FRM.01.03
    // lists, pre-applications, the notification outbox.
    institutions::MIGRATION,
    // 7: an invited person's completion: enrollments, applicant sessions, e-Onay consents,
    // invoice lines; the outbox learns SMS codes.
    enrollments::MIGRATION,
];

/// How many queued writes one transaction takes at most.
const MAX_BATCH: usize = 1024;

enum Write {
    Reserve(Reservation),
    Complete {
        issuer: IssuerId,
        serial: Serial,
        cert_der: Vec<u8>,
        then: Box<Completion>,
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
    AddPartner {
        partner: PartnerRecord,
        actor: String,
        at: i64,
    },
    DeactivatePartner {
        id: PartnerId,
        actor: String,
        at: i64,
    },
    BeginApplication {
        channel: String,
        channel_ref: String,
        actor: String,
        at: i64,
    },
    FinishApplication {
        channel: String,
        channel_ref: String,
        outcome: std::result::Result<ApplicationIssued, String>,
        actor: String,
        at: i64,
    },
    Transition(TransitionWrite),
    AcceptCommitment(CommitmentAcceptance),
    ExpireCommitments {
        actor: String,
        at: i64,
    },
    AbandonPending {
        reason: String,
        actor: String,
        at: i64,
    },
    AddInstitution {
        institution: crate::institution::InstitutionRecord,
        actor: String,
        at: i64,
    },
    ImportList(crate::institution::ListImport),
    Enrollment(super::EnrollmentWrite),
    ConfirmList {
        institution: crate::institution::InstitutionId,
        file_sha256: String,
        actor: String,
        at: i64,
    },
    SetAccessPassword {
        id: String,
        hash: String,
        actor: String,
        at: i64,
    },
    OutboxAttempt {
        id: i64,
        result: std::result::Result<(), (String, i64)>,
        at: i64,
    },
    ReserveCrl(CrlReservation),
    PublishCrl {
        issuer: IssuerId,
        number: u64,
        watermark: i64,
        entries: u64,
        actor: String,
        at: i64,
    },
}

enum Outcome {
    Reserved(Reserved),
    Application(Option<ChannelApplication>),
    Transition(TransitionOutcome),
    Crl(CrlPlan),
    Commitment(CommitmentOutcome),
    Expired(Vec<Serial>),
    Count(u64),
    Import(crate::institution::ImportOutcome),
    Enrollment(super::EnrollmentOutcome),
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

    /// Benchmarks only (`nesca bench crl`): writes `count` revoked certificates with random
    /// serials under `issuer` in one transaction, bypassing issuance and the audit log, and
    /// returns them in serial order with their revocation times. Never call it on a store
    /// that holds real certificates.
    #[doc(hidden)]
    pub fn bench_fill_revoked(
        &self,
        issuer: &IssuerId,
        count: u64,
        at: i64,
    ) -> Result<Vec<(Serial, i64, Option<RevocationReason>)>> {
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
                let revoked_at = at - (i % 86_400) as i64;
                let reason = reasons[(i % 4) as usize];
                st.execute(params![
                    issuer.as_str(),
                    serial.to_hex(),
                    at - 86_400,
                    at + 3 * 365 * 86_400,
                    revoked_at,
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

/// An audit record of a change that is not about one CA's certificate (partners, channel
/// applications): no issuer.
fn event_entry(
    at: i64,
    actor: &str,
    action: impl Into<String>,
    serial: impl Into<String>,
    detail: String,
) -> AuditEntry {
    AuditEntry {
        seq: 0,
        at,
        actor: actor.into(),
        action: action.into(),
        issuer: String::new(),
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
            then,
            actor,
            at,
        } => {
            if let Some(a) = &then.application {
                // Checked before anything is written: a refusal must leave nothing behind.
                let pending = read_application(conn, &a.channel, &a.channel_ref)?
                    .is_some_and(|p| p.status == ApplicationStatus::Pending);
                if !pending {
                    return Err(refused(
                        "channel_ref",
                        format!(
                            "no pending application {} of channel {}",
                            a.channel_ref, a.channel
                        ),
                    ));
                }
                if let Some(p) = &a.production {
                    enrollments::check_producible(conn, &p.pre_application)?;
                }
            }
            let n = conn
                .prepare_cached(
                    "UPDATE certificates SET status = 'active', cert_der = ?1, issued_at = ?2, change_seq = ?5 WHERE issuer = ?3 AND serial = ?4 AND status = 'reserved'",
                )?
                // The audit record appended below gets head.seq + 1.
                .execute(params![cert_der, at, issuer.as_str(), serial.to_hex(), head.seq + 1])?;
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
            if then.hold {
                apply_transition(
                    conn,
                    &TransitionWrite {
                        request_id: hold_request_id(serial).map_err(Refusal::Fatal)?,
                        issuer: issuer.clone(),
                        serial: *serial,
                        action: LifecycleAction::Suspend,
                        holder: "commitment".into(),
                        actor: actor.clone(),
                        at: *at,
                    },
                    head,
                )
                .map_err(after_writes)?;
            }
            if let Some(a) = &then.application {
                let outcome = Ok(a.issued.clone());
                finish_application(
                    conn,
                    head,
                    (&a.channel, &a.channel_ref),
                    &outcome,
                    (actor, *at),
                )
                .map_err(after_writes)?;
                if let Some(p) = &a.production {
                    enrollments::produced(conn, p, issuer, serial, (actor, *at), head)
                        .map_err(after_writes)?;
                }
            }
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
        Write::AddPartner { partner, actor, at } => {
            let exists = conn
                .prepare_cached("SELECT 1 FROM partners WHERE id = ?1")?
                .exists([partner.id.as_str()])?;
            if exists {
                return Err(Refusal::Refused(CaError::AlreadyExists {
                    what: format!("partner \"{}\"", partner.id),
                }));
            }
            conn.prepare_cached(
                "INSERT INTO partners (id, name, license_no, created_at, active) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![partner.id.as_str(), partner.name, partner.license_no, partner.created_at, partner.active])?;
            // Not about a certificate: issuer and serial stay empty, the partner is in the detail.
            append_audit(
                conn,
                head,
                event_entry(
                    *at,
                    actor,
                    "add-partner",
                    String::new(),
                    format!(
                        "partner={} license_no={} name={}",
                        partner.id, partner.license_no, partner.name
                    ),
                ),
            )?;
            Ok(Outcome::Done)
        }
        Write::BeginApplication {
            channel,
            channel_ref,
            actor,
            at,
        } => {
            if let Some(seen) = read_application(conn, channel, channel_ref)? {
                return Ok(Outcome::Application(Some(seen)));
            }
            conn.prepare_cached(
                "INSERT INTO channel_applications (channel, channel_ref, status, created_at, updated_at) VALUES (?1, ?2, 'pending', ?3, ?3)",
            )?
            .execute(params![channel, channel_ref, at])?;
            append_audit(
                conn,
                head,
                event_entry(
                    *at,
                    actor,
                    "application",
                    String::new(),
                    format!("channel={channel} channel_ref={channel_ref}"),
                ),
            )?;
            Ok(Outcome::Application(None))
        }
        Write::FinishApplication {
            channel,
            channel_ref,
            outcome,
            actor,
            at,
        } => finish_application(conn, head, (channel, channel_ref), outcome, (actor, *at)),
        Write::DeactivatePartner { id, actor, at } => {
            let n = conn
                .prepare_cached("UPDATE partners SET active = 0 WHERE id = ?1 AND active = 1")?
                .execute([id.as_str()])?;
            if n != 1 {
                return Err(Refusal::Refused(CaError::invalid(
                    "partner",
                    format!("no active registered ESHS partner \"{id}\""),
                )));
            }
            append_audit(
                conn,
                head,
                event_entry(
                    *at,
                    actor,
                    "deactivate-partner",
                    String::new(),
                    format!("partner={id}"),
                ),
            )?;
            Ok(Outcome::Done)
        }
        Write::Transition(t) => apply_transition(conn, t, head),
        Write::AcceptCommitment(a) => commitments::accept(conn, a, head),
        Write::ExpireCommitments { actor, at } => commitments::expire(conn, actor, *at, head),
        Write::AddInstitution {
            institution,
            actor,
            at,
        } => institutions::add_institution(conn, institution, actor, *at, head),
        Write::ImportList(l) => institutions::import_list(conn, l, head),
        Write::Enrollment(w) => enrollments::write(conn, w, head),
        Write::ConfirmList {
            institution,
            file_sha256,
            actor,
            at,
        } => institutions::confirm_list(conn, institution, file_sha256, actor, *at, head),
        Write::SetAccessPassword {
            id,
            hash,
            actor,
            at,
        } => institutions::set_access_password(conn, id, hash, actor, *at, head),
        Write::OutboxAttempt { id, result, at } => {
            institutions::outbox_attempt(conn, *id, result, *at)
        }
        Write::AbandonPending { reason, actor, at } => {
            let n = conn
                .prepare_cached(
                    "UPDATE channel_applications SET status = 'refused', error = ?1, updated_at = ?2 WHERE status = 'pending'",
                )?
                .execute(params![reason, at])?;
            if n > 0 {
                append_audit(
                    conn,
                    head,
                    event_entry(
                        *at,
                        actor,
                        "applications-abandoned",
                        "",
                        format!("count={n} reason={reason}"),
                    ),
                )?;
            }
            Ok(Outcome::Count(n as u64))
        }
        Write::ReserveCrl(r) => reserve_crl(conn, r, head),
        Write::PublishCrl {
            issuer,
            number,
            watermark,
            entries,
            actor,
            at,
        } => {
            let n = conn
                .prepare_cached(
                    "UPDATE crls SET published = 1, watermark = ?1, entries = ?2 WHERE issuer = ?3 AND number = ?4 AND published = 0",
                )?
                .execute(params![watermark, *entries as i64, issuer.as_str(), *number as i64])?;
            if n != 1 {
                return Err(Refusal::Refused(CaError::Store {
                    operation: "publish CRL",
                    reason: format!("CRL number {number} of {issuer} is not reserved"),
                }));
            }
            append_audit(
                conn,
                head,
                audit_entry(
                    *at,
                    actor,
                    "crl-publish",
                    issuer,
                    "",
                    format!("number={number} entries={entries} watermark={watermark}"),
                ),
            )?;
            Ok(Outcome::Done)
        }
    }
}

/// Records a pending application's outcome (and the commitment its certificate awaits).
fn finish_application(
    conn: &Connection,
    head: &mut AuditHead,
    (channel, channel_ref): (&str, &str),
    outcome: &std::result::Result<ApplicationIssued, String>,
    (actor, at): (&str, i64),
) -> Result<Outcome, Refusal> {
    let (status, serial, error, wrapped_key) = match outcome {
        Ok(issued) => (
            "issued",
            Some(issued.serial.to_hex()),
            None,
            issued.wrapped_key.clone(),
        ),
        Err(e) => ("refused", None, Some(e.clone()), None),
    };
    let n = conn
        .prepare_cached(
            "UPDATE channel_applications SET status = ?1, serial = ?2, error = ?3, updated_at = ?4, wrapped_key = ?7 WHERE channel = ?5 AND channel_ref = ?6 AND status = 'pending'",
        )?
        .execute(params![status, serial, error, at, channel, channel_ref, wrapped_key])?;
    if n != 1 {
        return Err(Refusal::Refused(CaError::invalid(
            "channel_ref",
            format!("no pending application {channel_ref} of channel {channel}"),
        )));
    }
    append_audit(
        conn,
        head,
        event_entry(
            at,
            actor,
            format!("application-{status}"),
            serial.unwrap_or_default(),
            format!("channel={channel} channel_ref={channel_ref}"),
        ),
    )?;
    if let Ok(ApplicationIssued {
        serial,
        commitment: Some(c),
        ..
    }) = outcome
    {
        let issuer = conn
            .prepare_cached("SELECT issuer FROM certificates WHERE serial = ?1")?
            .query_row([serial.to_hex()], |r| r.get::<_, String>(0))
            .optional()?
            .ok_or_else(|| {
                Refusal::Fatal(CaError::NotFound {
                    serial: serial.to_hex(),
                })
            })?;
        let issuer =
            IssuerId::new(&issuer).map_err(|e| Refusal::Fatal(CaError::invalid("issuer", e)))?;
        commitments::insert(conn, &issuer, serial, channel, channel_ref, c, at)
            .map_err(after_writes)?;
    }
    Ok(Outcome::Done)
}

fn read_application(
    conn: &Connection,
    channel: &str,
    channel_ref: &str,
) -> rusqlite::Result<Option<ChannelApplication>> {
    conn.prepare_cached(
        "SELECT status, serial, error, created_at, wrapped_key FROM channel_applications WHERE channel = ?1 AND channel_ref = ?2",
    )?
    .query_row(params![channel, channel_ref], |r| {
        let status: String = r.get(0)?;
        let serial: Option<String> = r.get(1)?;
        Ok(ChannelApplication {
            channel: channel.to_owned(),
            channel_ref: channel_ref.to_owned(),
            status: match status.as_str() {
                "issued" => ApplicationStatus::Issued,
                "refused" => ApplicationStatus::Refused,
                _ => ApplicationStatus::Pending,
            },
            serial: serial.and_then(|h| Serial::from_hex(&h).ok()),
            error: r.get(2)?,
            wrapped_key: r.get(4)?,
            created_at: r.get(3)?,
        })
    })
    .optional()
}

fn reason_code(r: Option<RevocationReason>) -> Option<i64> {
    r.map(|r| i64::from(r.code()))
}

fn reason_from(code: Option<i64>) -> Option<RevocationReason> {
    code.and_then(|c| u8::try_from(c).ok())
        .and_then(RevocationReason::from_code)
}

/// A refusal met after a write of the same job has been made cannot leave that write behind
/// (the batch commits the other jobs' writes): it fails the whole batch instead.
fn after_writes(r: Refusal) -> Refusal {
    match r {
        Refusal::Refused(e) => Refusal::Fatal(e),
        fatal => fatal,
    }
}

fn refused(field: &'static str, rule: impl Into<String>) -> Refusal {
    Refusal::Refused(CaError::invalid(field, rule))
}

/// One lifecycle change: replay check, state machine, row update, transition row, audit.
fn apply_transition(
    conn: &Connection,
    t: &TransitionWrite,
    head: &mut AuditHead,
) -> Result<Outcome, Refusal> {
    let serial_hex = t.serial.to_hex();
    let reason = t.action.reason();
    let invalidity = t.action.invalidity_date();
    // A request id seen before: the same request answers with its first outcome; another
    // request under the same id is refused rather than silently ignored.
    let seen = conn
        .prepare_cached(
            "SELECT issuer, serial, action, reason, invalidity_date, to_status, at FROM transitions WHERE request_id = ?1",
        )?
        .query_row([t.request_id.as_str()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, Option<i64>>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, i64>(6)?,
            ))
        })
        .optional()?;
    if let Some((issuer, serial, action, code, inv, to, at)) = seen {
        let same = issuer == t.issuer.as_str()
            && serial == serial_hex
            && action == t.action.name()
            && code == reason_code(reason)
            && inv == invalidity;
        if !same {
            return Err(refused(
                "request_id",
                format!("{} was already used for a different request", t.request_id),
            ));
        }
        return Ok(Outcome::Transition(TransitionOutcome {
            issuer: t.issuer.clone(),
            serial: t.serial,
            status: to.parse().map_err(|e: String| refused("status", e))?,
            reason,
            at,
            replayed: true,
        }));
    }
    let current = conn
        .prepare_cached(
            "SELECT status, not_after FROM certificates WHERE issuer = ?1 AND serial = ?2",
        )?
        .query_row(params![t.issuer.as_str(), serial_hex], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })
        .optional()?;
    let Some((status, not_after)) = current else {
        return Err(Refusal::Refused(CaError::NotFound { serial: serial_hex }));
    };
    let from: CertStatus = status.parse().map_err(|e: String| refused("status", e))?;
    if matches!(t.action, LifecycleAction::Release)
        && commitments::is_pending(conn, &t.issuer, &t.serial)?
    {
        return Err(refused(
            "serial",
            format!("certificate {serial_hex} stays suspended until its signed commitment arrives"),
        ));
    }
    let to = next_status(from, &t.action, not_after, t.at).map_err(Refusal::Refused)?;
    let seq = head.seq + 1;
    let (revoked_at, code, inv) = match to {
        CertStatus::Active => (None, None, None),
        _ => (Some(t.at), reason_code(reason), invalidity),
    };
    conn.prepare_cached(
        "UPDATE certificates SET status = ?1, revoked_at = ?2, reason = ?3, invalidity_date = ?4, change_seq = ?5 WHERE issuer = ?6 AND serial = ?7",
    )?
    .execute(params![to.as_str(), revoked_at, code, inv, seq, t.issuer.as_str(), serial_hex])?;
    conn.prepare_cached(
        "INSERT INTO transitions (seq, request_id, issuer, serial, action, from_status, to_status, reason, invalidity_date, holder, actor, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        seq, t.request_id.as_str(), t.issuer.as_str(), serial_hex, t.action.name(), from.as_str(),
        to.as_str(), reason_code(reason), invalidity, t.holder, t.actor, t.at
    ])?;
    let mut detail = format!("request_id={} {}->{}", t.request_id, from, to);
    if let Some(r) = reason {
        detail.push_str(&format!(" reason={r}"));
    }
    if let Some(d) = invalidity {
        detail.push_str(&format!(" invalidity_date={d}"));
    }
    append_audit(
        conn,
        head,
        audit_entry(
            t.at,
            &t.actor,
            t.action.name(),
            &t.issuer,
            &serial_hex,
            detail,
        ),
    )?;
    Ok(Outcome::Transition(TransitionOutcome {
        issuer: t.issuer.clone(),
        serial: t.serial,
        status: to,
        reason: if to == CertStatus::Active {
            None
        } else {
            reason
        },
        at: t.at,
        replayed: false,
    }))
}

const CRL_COLUMNS: &str =
    "issuer, number, kind, base_number, watermark, this_update, next_update, entries, published";

fn crl_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CrlRecord> {
    let bad = |i: usize, e: String| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    };
    let issuer: String = r.get(0)?;
    let kind: String = r.get(2)?;
    Ok(CrlRecord {
        issuer: IssuerId::new(&issuer).map_err(|e| bad(0, e))?,
        number: r.get::<_, i64>(1)? as u64,
        kind: if kind == "delta" {
            CrlKind::Delta
        } else {
            CrlKind::Full
        },
        base_number: r.get::<_, Option<i64>>(3)?.map(|n| n as u64),
        watermark: r.get::<_, Option<i64>>(4)?.unwrap_or(0),
        this_update: r.get(5)?,
        next_update: r.get(6)?,
        entries: r.get::<_, Option<i64>>(7)?.unwrap_or(0) as u64,
        published: r.get::<_, i64>(8)? != 0,
    })
}

fn latest_crl(
    conn: &Connection,
    issuer: &IssuerId,
    kind: CrlKind,
) -> rusqlite::Result<Option<CrlRecord>> {
    conn.prepare_cached(&format!(
        "SELECT {CRL_COLUMNS} FROM crls WHERE issuer = ?1 AND kind = ?2 AND published = 1 ORDER BY number DESC LIMIT 1"
    ))?
    .query_row(params![issuer.as_str(), kind.as_str()], crl_row)
    .optional()
}

/// Takes the issuer's next CRL number: one increasing sequence for full and delta CRLs
/// (RFC 5280 §5.2.3). A number whose CRL is never published stays used: numbers only grow.
fn reserve_crl(
    conn: &Connection,
    r: &CrlReservation,
    head: &mut AuditHead,
) -> Result<Outcome, Refusal> {
    let known = conn
        .prepare_cached("SELECT 1 FROM cas WHERE id = ?1 AND role = 'issuing'")?
        .exists([r.issuer.as_str()])?;
    if !known {
        return Err(refused(
            "ca",
            format!("\"{}\" is not an issuing CA in the store", r.issuer),
        ));
    }
    let base = match r.kind {
        CrlKind::Full => None,
        CrlKind::Delta => Some(latest_crl(conn, &r.issuer, CrlKind::Full)?.ok_or_else(|| {
            refused(
                "delta",
                "a delta CRL needs a published full CRL as its base; generate a full CRL first",
            )
        })?),
    };
    let number: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(number), 0) + 1 FROM crls WHERE issuer = ?1")?
        .query_row([r.issuer.as_str()], |row| row.get(0))?;
    conn.prepare_cached(
        "INSERT INTO crls (issuer, number, kind, base_number, this_update, next_update, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        r.issuer.as_str(), number, r.kind.as_str(), base.as_ref().map(|b| b.number as i64),
        r.this_update, r.next_update, r.at
    ])?;
    append_audit(
        conn,
        head,
        audit_entry(
            r.at,
            &r.actor,
            "crl-reserve",
            &r.issuer,
            "",
            format!("number={number} kind={}", r.kind.as_str()),
        ),
    )?;
    Ok(Outcome::Crl(CrlPlan {
        number: number as u64,
        base,
    }))
}

const CERT_COLUMNS: &str =
    "issuer, serial, profile, status, subject, tckn, given_name, surname, not_before, not_after, reserved_at, issued_at, cert_der, revoked_at, reason, invalidity_date";

/// The revocation columns (revoked_at, reason, invalidity_date) starting at `i`.
fn revocation_at(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<Revocation>> {
    let at: Option<i64> = r.get(i)?;
    Ok(match at {
        Some(at) => Some(Revocation {
            at,
            reason: reason_from(r.get(i + 1)?),
            invalidity_date: r.get(i + 2)?,
        }),
        None => None,
    })
}

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
        revocation: revocation_at(r, 13)?,
    })
}

fn unexpected(operation: &'static str) -> CaError {
    CaError::Store {
        operation,
        reason: "the writer answered a different request".into(),
    }
}

/// The columns [`ca_row`] reads, in its order.
const CA_COLUMNS: &str = "id, role, key_label, cert_der, ocsp_key_label, ocsp_cert_der";

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

const PARTNER_COLUMNS: &str = "id, name, license_no, created_at, active";

fn partner_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PartnerRecord> {
    let id: String = r.get(0)?;
    Ok(PartnerRecord {
        id: PartnerId::parse(&id).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
        })?,
        name: r.get(1)?,
        license_no: r.get(2)?,
        created_at: r.get(3)?,
        active: r.get(4)?,
    })
}

impl CertificateStore for SqliteStore {
    fn reserve(&self, r: Reservation) -> Result<Reserved> {
        match self.submit(Write::Reserve(r))? {
            Outcome::Reserved(x) => Ok(x),
            _ => Ok(Reserved::Ok),
        }
    }

    fn complete(
        &self,
        issuer: &IssuerId,
        serial: &Serial,
        cert_der: Vec<u8>,
        then: Completion,
        actor: &str,
        at: i64,
    ) -> Result<()> {
        self.submit(Write::Complete {
            issuer: issuer.clone(),
            serial: *serial,
            cert_der,
            then: Box::new(then),
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

    fn transition(&self, t: TransitionWrite) -> Result<TransitionOutcome> {
        match self.submit(Write::Transition(t))? {
            Outcome::Transition(o) => Ok(o),
            _ => Err(unexpected("transition")),
        }
    }

    fn transitions(&self, issuer: &IssuerId, serial: &Serial) -> Result<Vec<TransitionRecord>> {
        self.read(
            |c| {
                let mut st = c.prepare_cached(
                    "SELECT seq, request_id, action, from_status, to_status, reason, invalidity_date, at, actor FROM transitions WHERE issuer = ?1 AND serial = ?2 ORDER BY seq",
                )?;
                let rows = st.query_map(params![issuer.as_str(), serial.to_hex()], |r| {
                    let status = |i: usize| -> rusqlite::Result<CertStatus> {
                        let s: String = r.get(i)?;
                        s.parse().map_err(|e: String| {
                            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
                        })
                    };
                    Ok(TransitionRecord {
                        seq: r.get(0)?,
                        request_id: r.get(1)?,
                        action: r.get(2)?,
                        from: status(3)?,
                        to: status(4)?,
                        reason: reason_from(r.get(5)?),
                        invalidity_date: r.get(6)?,
                        at: r.get(7)?,
                        actor: r.get(8)?,
                    })
                })?;
                rows.collect()
            },
            "read transitions",
        )
    }

    fn status(&self, issuer: &IssuerId, serial: &Serial) -> Result<Option<StatusRecord>> {
        self.read(
            |c| {
                c.prepare_cached(
                    "SELECT status, not_after, revoked_at, reason, invalidity_date FROM certificates WHERE issuer = ?1 AND serial = ?2",
                )?
                .query_row(params![issuer.as_str(), serial.to_hex()], |r| {
                    let s: String = r.get(0)?;
                    Ok(StatusRecord {
                        status: s.parse().map_err(|e: String| {
                            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
                        })?,
                        not_after: r.get(1)?,
                        revocation: revocation_at(r, 2)?,
                    })
                })
                .optional()
            },
            "read status",
        )
    }

    fn changes_since(&self, cursor: i64, limit: usize) -> Result<(Vec<(IssuerId, Serial)>, i64)> {
        self.read(
            |c| {
                let mut st = c.prepare_cached(
                    "SELECT issuer, serial, change_seq FROM certificates WHERE change_seq > ?1 ORDER BY change_seq LIMIT ?2",
                )?;
                let mut rows = st.query(params![cursor, limit as i64])?;
                let mut out = Vec::new();
                let mut next = cursor;
                while let Some(r) = rows.next()? {
                    let issuer: String = r.get(0)?;
                    let serial: String = r.get(1)?;
                    next = r.get(2)?;
                    if let (Ok(i), Ok(s)) = (IssuerId::new(&issuer), Serial::from_hex(&serial)) {
                        out.push((i, s));
                    }
                }
                Ok((out, next))
            },
            "read changes",
        )
    }

    fn latest_change(&self) -> Result<i64> {
        self.read(
            |c| {
                c.query_row(
                    "SELECT COALESCE(MAX(change_seq), 0) FROM certificates",
                    [],
                    |r| r.get(0),
                )
            },
            "read latest change",
        )
    }

    fn serials(
        &self,
        issuer: &IssuerId,
        after: Option<&Serial>,
        limit: usize,
    ) -> Result<Vec<Serial>> {
        self.read(
            |c| {
                let mut st = c.prepare_cached(
                    "SELECT serial FROM certificates WHERE issuer = ?1 AND serial > ?2 AND status IN ('active', 'suspended', 'revoked') ORDER BY serial LIMIT ?3",
                )?;
                let after = after.map(|s| s.to_hex()).unwrap_or_default();
                let rows = st.query_map(params![issuer.as_str(), after, limit as i64], |r| r.get::<_, String>(0))?;
                let mut out = Vec::new();
                for hex in rows {
                    if let Ok(s) = Serial::from_hex(&hex?) {
                        out.push(s);
                    }
                }
                Ok(out)
            },
            "list serials",
        )
    }
}

impl CrlStore for SqliteStore {
    fn scan_revoked(
        &self,
        issuer: &IssuerId,
        sink: &mut dyn FnMut(RevokedEntry) -> Result<()>,
    ) -> Result<i64> {
        let (conn, watermark) = self.snapshot("scan revoked")?;
        let mut st = conn
            .prepare(
                "SELECT serial, revoked_at, reason, invalidity_date FROM certificates INDEXED BY certificates_revoked
                 WHERE issuer = ?1 AND status IN ('suspended', 'revoked') ORDER BY serial",
            )
            .map_err(CaError::store("scan revoked"))?;
        let mut rows = st
            .query([issuer.as_str()])
            .map_err(CaError::store("scan revoked"))?;
        loop {
            let row = match rows.next() {
                Ok(Some(row)) => row,
                Ok(None) => break,
                Err(err) => return Err(CaError::store("scan revoked")(err)),
            };
            let hex: String = row.get(0).map_err(CaError::store("scan revoked"))?;
            let serial = Serial::from_hex(&hex).map_err(|reason| CaError::Store {
                operation: "scan revoked",
                reason: format!("serial {hex}: {reason}"),
            })?;
            let revocation = revocation_at(row, 1)
                .map_err(CaError::store("scan revoked"))?
                .ok_or_else(|| CaError::Store {
                    operation: "scan revoked",
                    reason: format!("serial {hex} is revoked without a revocation time"),
                })?;
            sink(RevokedEntry { serial, revocation })?;
        }
        Ok(watermark)
    }

    fn delta_since(
        &self,
        issuer: &IssuerId,
        base_watermark: i64,
    ) -> Result<(Vec<DeltaEntry>, i64)> {
        let op = "delta entries";
        let (conn, watermark) = self.snapshot(op)?;
        // Changed since the base: what is listed now, and what was on hold at the base and is
        // good again (removeFromCRL). A certificate issued after the base and never held is
        // not in either CRL.
        let mut st = conn
            .prepare(
                "SELECT c.serial, c.status, c.revoked_at, c.reason, c.invalidity_date,
                    (SELECT t.to_status FROM transitions t WHERE t.issuer = c.issuer AND t.serial = c.serial AND t.seq <= ?2 ORDER BY t.seq DESC LIMIT 1),
                    (SELECT t.at FROM transitions t WHERE t.issuer = c.issuer AND t.serial = c.serial ORDER BY t.seq DESC LIMIT 1)
                 FROM certificates c WHERE c.change_seq > ?2 AND c.issuer = ?1 AND c.status IN ('active', 'suspended', 'revoked')
                 ORDER BY c.serial",
            )
            .map_err(CaError::store(op))?;
        let rows = st
            .query_map(params![issuer.as_str(), base_watermark], |r| {
                let hex: String = r.get(0)?;
                let status: String = r.get(1)?;
                let revocation = revocation_at(r, 2)?;
                let at_base: Option<String> = r.get(5)?;
                let last_change: Option<i64> = r.get(6)?;
                Ok((hex, status, revocation, at_base, last_change))
            })
            .map_err(CaError::store(op))?;
        let mut out = Vec::new();
        for row in rows {
            let (hex, status, revocation, at_base, last_change) =
                row.map_err(CaError::store(op))?;
            let serial = Serial::from_hex(&hex).map_err(|reason| CaError::Store {
                operation: op,
                reason: format!("serial {hex}: {reason}"),
            })?;
            match (status.as_str(), revocation) {
                ("suspended" | "revoked", Some(revocation)) => {
                    out.push(DeltaEntry::Listed(RevokedEntry { serial, revocation }))
                }
                ("active", _) if at_base.as_deref() == Some("suspended") => {
                    out.push(DeltaEntry::Removed {
                        serial,
                        at: last_change.unwrap_or(0),
                    })
                }
                _ => {}
            }
        }
        Ok((out, watermark))
    }

    fn reserve_crl(&self, r: CrlReservation) -> Result<CrlPlan> {
        match self.submit(Write::ReserveCrl(r))? {
            Outcome::Crl(plan) => Ok(plan),
            _ => Err(unexpected("reserve CRL")),
        }
    }

    fn publish_crl(
        &self,
        issuer: &IssuerId,
        number: u64,
        watermark: i64,
        entries: u64,
        actor: &str,
        at: i64,
    ) -> Result<()> {
        self.submit(Write::PublishCrl {
            issuer: issuer.clone(),
            number,
            watermark,
            entries,
            actor: actor.into(),
            at,
        })
        .map(|_| ())
    }

    fn latest_crl(&self, issuer: &IssuerId, kind: CrlKind) -> Result<Option<CrlRecord>> {
        self.read(|c| latest_crl(c, issuer, kind), "read CRL")
    }
}

impl RegistryStore for SqliteStore {
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
            |c| {
                c.query_row(
                    &format!("SELECT {CA_COLUMNS} FROM cas WHERE id = ?1"),
                    [id.as_str()],
                    ca_row,
                )
                .optional()
            },
            "read CA",
        )
    }

    fn cas(&self) -> Result<Vec<CaRecord>> {
        self.read(
            |c| {
                let mut st = c.prepare(&format!(
                    "SELECT {CA_COLUMNS} FROM cas ORDER BY created_at, id"
                ))?;
                let rows = st.query_map([], ca_row)?;
                rows.collect()
            },
            "read CAs",
        )
    }

    fn add_partner(&self, partner: PartnerRecord, actor: &str, at: i64) -> Result<()> {
        self.submit(Write::AddPartner {
            partner,
            actor: actor.into(),
            at,
        })
        .map(|_| ())
    }

    fn deactivate_partner(&self, id: &PartnerId, actor: &str, at: i64) -> Result<()> {
        self.submit(Write::DeactivatePartner {
            id: id.clone(),
            actor: actor.into(),
            at,
        })
        .map(|_| ())
    }

    fn partner(&self, id: &PartnerId) -> Result<Option<PartnerRecord>> {
        let sql = format!("SELECT {PARTNER_COLUMNS} FROM partners WHERE id = ?1");
        self.read(
            |c| c.query_row(&sql, [id.as_str()], partner_row).optional(),
            "read partner",
        )
    }

    fn partners(&self) -> Result<Vec<PartnerRecord>> {
        let sql = format!("SELECT {PARTNER_COLUMNS} FROM partners ORDER BY created_at, id");
        self.read(
            |c| {
                let mut st = c.prepare(&sql)?;
                let rows = st.query_map([], partner_row)?;
                rows.collect()
            },
            "read partners",
        )
    }
}

impl AuditStore for SqliteStore {
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

impl ApplicationStore for SqliteStore {
    fn begin_application(
        &self,
        channel: &str,
        channel_ref: &str,
        actor: &str,
        at: i64,
    ) -> Result<Option<ChannelApplication>> {
        match self.submit(Write::BeginApplication {
            channel: channel.into(),
            channel_ref: channel_ref.into(),
            actor: actor.into(),
            at,
        })? {
            Outcome::Application(seen) => Ok(seen),
            _ => Err(unexpected("begin application")),
        }
    }

    fn finish_application(
        &self,
        channel: &str,
        channel_ref: &str,
        outcome: std::result::Result<ApplicationIssued, String>,
        actor: &str,
        at: i64,
    ) -> Result<()> {
        self.submit(Write::FinishApplication {
            channel: channel.into(),
            channel_ref: channel_ref.into(),
            outcome,
            actor: actor.into(),
            at,
        })
        .map(|_| ())
    }

    fn abandon_pending_applications(&self, reason: &str, actor: &str, at: i64) -> Result<u64> {
        match self.submit(Write::AbandonPending {
            reason: reason.into(),
            actor: actor.into(),
            at,
        })? {
            Outcome::Count(n) => Ok(n),
            _ => Err(unexpected("abandon pending applications")),
        }
    }

    fn application(&self, channel: &str, channel_ref: &str) -> Result<Option<ChannelApplication>> {
        self.read(
            |c| read_application(c, channel, channel_ref),
            "read application",
        )
    }
}

impl CommitmentStore for SqliteStore {
    fn commitment(&self, serial: &Serial) -> Result<Option<CommitmentRecord>> {
        self.read(|c| commitments::read(c, serial), "read commitment")
    }

    fn accept_commitment(&self, a: CommitmentAcceptance) -> Result<CommitmentOutcome> {
        match self.submit(Write::AcceptCommitment(a))? {
            Outcome::Commitment(o) => Ok(o),
            _ => Err(unexpected("accept commitment")),
        }
    }

    fn expire_commitments(&self, actor: &str, at: i64) -> Result<Vec<Serial>> {
        match self.submit(Write::ExpireCommitments {
            actor: actor.into(),
            at,
        })? {
            Outcome::Expired(serials) => Ok(serials),
            _ => Err(unexpected("expire commitments")),
        }
    }
}

impl InstitutionStore for SqliteStore {
    fn add_institution(
        &self,
        institution: crate::institution::InstitutionRecord,
        actor: &str,
        at: i64,
    ) -> Result<()> {
        self.submit(Write::AddInstitution {
            institution,
            actor: actor.into(),
            at,
        })
        .map(|_| ())
    }

    fn institution(
        &self,
        id: &crate::institution::InstitutionId,
    ) -> Result<Option<crate::institution::InstitutionRecord>> {
        self.read(
            |c| institutions::read_institution(c, id),
            "read institution",
        )
    }

    fn institutions(&self) -> Result<Vec<crate::institution::InstitutionRecord>> {
        self.read(institutions::read_institutions, "read institutions")
    }

    fn import_list(
        &self,
        import: crate::institution::ListImport,
    ) -> Result<crate::institution::ImportOutcome> {
        match self.submit(Write::ImportList(import))? {
            Outcome::Import(o) => Ok(o),
            _ => Err(unexpected("import list")),
        }
    }

    fn confirm_list(
        &self,
        institution: &crate::institution::InstitutionId,
        file_sha256: &str,
        actor: &str,
        at: i64,
    ) -> Result<u64> {
        match self.submit(Write::ConfirmList {
            institution: institution.clone(),
            file_sha256: file_sha256.into(),
            actor: actor.into(),
            at,
        })? {
            Outcome::Count(n) => Ok(n),
            _ => Err(unexpected("confirm list")),
        }
    }

    fn pre_applications(
        &self,
        institution: &crate::institution::InstitutionId,
    ) -> Result<Vec<PreApplication>> {
        self.read(
            |c| institutions::read_pre_applications(c, institution),
            "read pre-applications",
        )
    }

    fn pre_application(&self, id: &str) -> Result<Option<PreApplication>> {
        self.read(
            |c| institutions::read_pre_application(c, id),
            "read pre-application",
        )
    }
}

impl OutboxStore for SqliteStore {
    fn outbox_due(&self, at: i64, limit: u32) -> Result<Vec<OutboxMessage>> {
        self.read(
            |c| institutions::read_outbox_due(c, at, limit),
            "read outbox",
        )
    }

    fn outbox(&self) -> Result<Vec<(OutboxMessage, String)>> {
        self.read(institutions::read_outbox_all, "read outbox")
    }

    fn set_access_password(&self, id: &str, hash: &str, actor: &str, at: i64) -> Result<()> {
        self.submit(Write::SetAccessPassword {
            id: id.into(),
            hash: hash.into(),
            actor: actor.into(),
            at,
        })
        .map(|_| ())
    }

    fn outbox_attempt(
        &self,
        id: i64,
        result: std::result::Result<(), (String, i64)>,
        at: i64,
    ) -> Result<()> {
        self.submit(Write::OutboxAttempt { id, result, at })
            .map(|_| ())
    }
}

impl EnrollmentStore for SqliteStore {
    fn enrollment_write(&self, w: super::EnrollmentWrite) -> Result<super::EnrollmentOutcome> {
        match self.submit(Write::Enrollment(w))? {
            Outcome::Enrollment(o) => Ok(o),
            _ => Err(unexpected("enrollment")),
        }
    }

    fn open_pre_application(&self, tckn: &str) -> Result<Option<String>> {
        self.read(
            |c| enrollments::read_open_pre_application_id(c, tckn),
            "read pre-application",
        )
    }

    fn enrollment(&self, pre_application: &str) -> Result<Option<super::EnrollmentRecord>> {
        self.read(
            |c| enrollments::read_enrollment(c, pre_application),
            "read enrollment",
        )
    }

    fn enrollments_due(&self, at: i64, limit: u32) -> Result<Vec<super::EnrollmentRecord>> {
        self.read(
            |c| enrollments::read_enrollments_due(c, at, limit),
            "read enrollments",
        )
    }

    fn applicant_session(&self, token_sha256: &str) -> Result<Option<(String, i64)>> {
        self.read(
            |c| enrollments::read_session(c, token_sha256),
            "read applicant session",
        )
    }

    fn eonay_consent(&self, tckn: &str) -> Result<Option<super::EOnayConsent>> {
        self.read(
            |c| enrollments::read_consent(c, tckn),
            "read e-Onay consent",
        )
    }

    fn invoice_lines(&self, institution: &str, month: &str) -> Result<Vec<super::InvoiceLine>> {
        self.read(
            |c| enrollments::read_invoice_lines(c, institution, month),
            "read invoice lines",
        )
    }

    fn current_not_after(&self, tckn: &str, at: i64) -> Result<Option<i64>> {
        self.read(
            |c| enrollments::read_current_not_after(c, tckn, at),
            "read current certificate",
        )
    }

    fn published_certificates(
        &self,
        serial: Option<&Serial>,
        tckn: Option<&str>,
    ) -> Result<Vec<super::PublishedCertificate>> {
        self.read(
            |c| enrollments::read_published(c, serial, tckn),
            "read published certificates",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database written by the first schema keeps its rows when migration 2 rebuilds the
    /// certificates table.
    #[test]
    fn migration_2_keeps_version_1_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.execute_batch(
                "CREATE TABLE schema_version (version INTEGER NOT NULL);
                 INSERT INTO schema_version VALUES (1);
                 INSERT INTO certificates (issuer, serial, profile, status, subject, tckn, not_before, not_after, tbs_der, cert_der, reserved_at, issued_at)
                 VALUES ('nes-ca', '0101010101010101010101010101010101010101', 'nes', 'active', 'CN=A', '10000000146', 1, 2000000000, x'30', x'3000', 1, 1);",
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let serial = Serial::from_hex("0101010101010101010101010101010101010101").unwrap();
        let rec = store.get(None, &serial).unwrap().unwrap();
        assert_eq!(rec.status, CertStatus::Active);
        assert_eq!(rec.cert_der.as_deref(), Some(&[0x30, 0][..]));
        assert_eq!(rec.subject.tckn.as_deref(), Some("10000000146"));
        assert_eq!(rec.revocation, None);
        let version: i64 = store
            .read(
                |c| c.query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0)),
                "v",
            )
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
    }

    fn partner(id: &str) -> PartnerRecord {
        PartnerRecord {
            id: PartnerId::parse(id).unwrap(),
            name: "Örnek ESHS A.Ş.".into(),
            license_no: "BTK-2024-17".into(),
            created_at: 1_700_000_000,
            active: true,
        }
    }

    #[test]
    fn partners_are_added_read_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("p.db")).unwrap();
        let id = PartnerId::parse("eshs-a").unwrap();
        assert_eq!(store.partner(&id).unwrap(), None);
        store
            .add_partner(partner("eshs-a"), "test", 1_700_000_000)
            .unwrap();
        assert_eq!(store.partner(&id).unwrap(), Some(partner("eshs-a")));
        let mut other = partner("eshs-a");
        other.name = "Someone Else".into();
        let e = store.add_partner(other, "test", 1_700_000_001).unwrap_err();
        assert!(matches!(e, CaError::AlreadyExists { .. }), "{e}");
        assert_eq!(store.partner(&id).unwrap(), Some(partner("eshs-a")));
        store
            .add_partner(partner("eshs-b"), "test", 1_700_000_002)
            .unwrap();
        let ids: Vec<String> = store
            .partners()
            .unwrap()
            .into_iter()
            .map(|p| p.id.to_string())
            .collect();
        assert_eq!(ids, ["eshs-a", "eshs-b"]);
        // Each registration left its audit record, and the chain holds.
        let report = store.verify_audit().unwrap();
        assert_eq!((report.records, report.first_break), (2, None));
    }

    /// A database at schema version 2 keeps its certificates and gains the partners table.
    #[test]
    fn migration_3_keeps_version_2_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v2.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.execute_batch(MIGRATIONS[1]).unwrap();
            conn.execute_batch(
                "CREATE TABLE schema_version (version INTEGER NOT NULL);
                 INSERT INTO schema_version VALUES (1);
                 INSERT INTO schema_version VALUES (2);
                 INSERT INTO certificates (issuer, serial, profile, status, subject, tckn, not_before, not_after, tbs_der, cert_der, reserved_at, issued_at, revoked_at, reason)
                 VALUES ('nes-ca', '0202020202020202020202020202020202020202', 'nes', 'revoked', 'CN=B', '10000000146', 1, 2000000000, x'30', x'3000', 1, 1, 5, 1);",
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let serial = Serial::from_hex("0202020202020202020202020202020202020202").unwrap();
        let rec = store.get(None, &serial).unwrap().unwrap();
        assert_eq!(rec.status, CertStatus::Revoked);
        assert_eq!(rec.revocation.map(|r| r.at), Some(5));
        assert!(store.partners().unwrap().is_empty());
        store
            .add_partner(partner("eshs-a"), "test", 1_700_000_000)
            .unwrap();
        assert_eq!(store.partners().unwrap().len(), 1);
        let version: i64 = store
            .read(
                |c| c.query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0)),
                "v",
            )
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
    }

    /// A channel reference is recorded once: the second begin returns the first application,
    /// and its outcome once finished; a finished application cannot be finished again.
    #[test]
    fn channel_applications_begin_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("a.db")).unwrap();
        assert_eq!(
            store.begin_application("kdhs", "ref-1", "t", 10).unwrap(),
            None
        );
        let seen = store
            .begin_application("kdhs", "ref-1", "t", 11)
            .unwrap()
            .unwrap();
        assert_eq!(seen.status, ApplicationStatus::Pending);
        // Another channel's reference of the same text is another application.
        assert_eq!(
            store.begin_application("kec", "ref-1", "t", 12).unwrap(),
            None
        );
        let serial = Serial::random();
        store
            .finish_application(
                "kdhs",
                "ref-1",
                Ok(ApplicationIssued::plain(serial)),
                "t",
                13,
            )
            .unwrap();
        let done = store
            .begin_application("kdhs", "ref-1", "t", 14)
            .unwrap()
            .unwrap();
        assert_eq!(
            (done.status, done.serial, done.created_at),
            (ApplicationStatus::Issued, Some(serial), 10)
        );
        assert!(store
            .finish_application("kdhs", "ref-1", Err("x".into()), "t", 15)
            .is_err());
        store
            .finish_application("kec", "ref-1", Err("tckn: bad".into()), "t", 16)
            .unwrap();
        let refused = store.application("kec", "ref-1").unwrap().unwrap();
        assert_eq!(refused.status, ApplicationStatus::Refused);
        assert_eq!(refused.error.as_deref(), Some("tckn: bad"));
        assert_eq!(store.verify_audit().unwrap().first_break, None);

        // Cut off by a crash: abandoned at the next start, answered as refused from then on;
        // finished applications keep their outcome.
        assert_eq!(
            store.begin_application("kdhs", "ref-2", "t", 17).unwrap(),
            None
        );
        assert_eq!(
            store
                .abandon_pending_applications("interrupted", "t", 18)
                .unwrap(),
            1
        );
        let cut = store
            .begin_application("kdhs", "ref-2", "t", 19)
            .unwrap()
            .unwrap();
        assert_eq!(
            (cut.status, cut.error.as_deref()),
            (ApplicationStatus::Refused, Some("interrupted"))
        );
        let done = store.application("kdhs", "ref-1").unwrap().unwrap();
        assert_eq!(done.status, ApplicationStatus::Issued);
        assert_eq!(
            store
                .abandon_pending_applications("interrupted", "t", 20)
                .unwrap(),
            0
        );
        assert_eq!(store.verify_audit().unwrap().first_break, None);
    }
}
