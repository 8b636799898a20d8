//! The SQLite side of the institutional channel (migration 6): institutions, imported lists
//! and pre-applications (the outbox table is created here too; its reads and writes are in
//! `outbox.rs`). An import is one write of the writer's batch transaction: all of its rows,
//! their outbox messages and its audit record, or nothing.

use rusqlite::{params, Connection, OptionalExtension};

use super::audit::{append_audit, event_entry, AuditHead};
use super::writer::{refused, Refusal};
use super::SqliteStore;
use crate::error::{CaError, Result};
use crate::institution::{
    ImportOutcome, InstitutionId, InstitutionRecord, ListImport, ListSignature, Payer, TaxNo,
};
use crate::store::{InstitutionStore, PreApplication};

pub(super) const MIGRATION: &str = "
    CREATE TABLE institutions (
        id           TEXT PRIMARY KEY,
        name         TEXT NOT NULL,
        tax_no       TEXT NOT NULL UNIQUE,
        payer        TEXT NOT NULL CHECK (payer IN ('institution', 'person')),
        officer_tckn TEXT NOT NULL,
        officer_cert BLOB NOT NULL,
        created_at   INTEGER NOT NULL,
        active       INTEGER NOT NULL DEFAULT 1
    );
    CREATE TABLE list_imports (
        institution  TEXT NOT NULL,
        file_sha256  TEXT NOT NULL,
        file_name    TEXT NOT NULL,
        signature    TEXT NOT NULL CHECK (signature IN ('cms', 'wet')),
        evidence     BLOB NOT NULL,
        status       TEXT NOT NULL CHECK (status IN ('accepted', 'awaiting_confirmation')),
        rows_created INTEGER NOT NULL,
        rows_invalid INTEGER NOT NULL,
        created_at   INTEGER NOT NULL,
        PRIMARY KEY (institution, file_sha256)
    );
    CREATE TABLE pre_applications (
        id            TEXT PRIMARY KEY,
        institution   TEXT NOT NULL,
        file_sha256   TEXT NOT NULL,
        row_no        INTEGER NOT NULL,
        tckn          TEXT NOT NULL,
        given_name    TEXT NOT NULL,
        surname       TEXT NOT NULL,
        email         TEXT NOT NULL,
        mobile        TEXT NOT NULL,
        unit          TEXT NOT NULL,
        title         TEXT,
        status        TEXT NOT NULL CHECK (status IN ('held', 'invited', 'closed')),
        password_hash TEXT,
        created_at    INTEGER NOT NULL
    );
    -- One open application per person, whichever institution listed them.
    CREATE UNIQUE INDEX pre_applications_open ON pre_applications (tckn) WHERE status <> 'closed';
    CREATE INDEX pre_applications_list ON pre_applications (institution, file_sha256);
    CREATE TABLE outbox (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        kind            TEXT NOT NULL CHECK (kind IN ('access-password')),
        subject_ref     TEXT NOT NULL,
        recipient       TEXT NOT NULL,
        status          TEXT NOT NULL CHECK (status IN ('pending', 'sent')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        last_error      TEXT,
        created_at      INTEGER NOT NULL,
        sent_at         INTEGER
    );
    CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status = 'pending';";

/// Queues the access-password message of pre-application ?1 to ?2 at ?3.
const QUEUE_ACCESS_PASSWORD: &str = "INSERT INTO outbox (kind, subject_ref, recipient, status, next_attempt_at, created_at) VALUES ('access-password', ?1, ?2, 'pending', ?3, ?3)";

const INSTITUTION_COLUMNS: &str =
    "id, name, tax_no, payer, officer_tckn, officer_cert, created_at, active";

pub(super) fn institution_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<InstitutionRecord> {
    let bad = |i: usize, e: CaError| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    };
    let id: String = r.get(0)?;
    let tax: String = r.get(2)?;
    let payer: String = r.get(3)?;
    Ok(InstitutionRecord {
        id: InstitutionId::parse(&id).map_err(|e| bad(0, e))?,
        name: r.get(1)?,
        tax_no: TaxNo::parse(&tax).map_err(|e| bad(2, e))?,
        payer: Payer::parse(&payer).map_err(|e| bad(3, e))?,
        officer_tckn: super::tckn_column(r, 4)?,
        officer_cert_der: r.get(5)?,
        created_at: r.get(6)?,
        active: r.get(7)?,
    })
}

pub(super) fn read_institution(
    conn: &Connection,
    id: &InstitutionId,
) -> rusqlite::Result<Option<InstitutionRecord>> {
    conn.prepare_cached(&format!(
        "SELECT {INSTITUTION_COLUMNS} FROM institutions WHERE id = ?1"
    ))?
    .query_row([id.as_str()], institution_row)
    .optional()
}

pub(super) fn read_institutions(conn: &Connection) -> rusqlite::Result<Vec<InstitutionRecord>> {
    let mut st = conn.prepare(&format!(
        "SELECT {INSTITUTION_COLUMNS} FROM institutions ORDER BY created_at, id"
    ))?;
    let rows = st.query_map([], institution_row)?;
    rows.collect()
}

pub(super) fn add_institution(
    conn: &Connection,
    i: &InstitutionRecord,
    actor: &crate::Principal,
    at: i64,
    head: &mut AuditHead,
) -> Result<(), Refusal> {
    let taken = conn
        .prepare_cached("SELECT id FROM institutions WHERE id = ?1 OR tax_no = ?2")?
        .query_row(params![i.id.as_str(), i.tax_no.as_str()], |r| {
            r.get::<_, String>(0)
        })
        .optional()?;
    if let Some(other) = taken {
        return Err(Refusal::Refused(CaError::AlreadyExists {
            what: format!("institution \"{other}\" (same id or tax number)"),
        }));
    }
    conn.prepare_cached(&format!(
        "INSERT INTO institutions ({INSTITUTION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    ))?
    .execute(params![
        i.id.as_str(),
        i.name,
        i.tax_no.as_str(),
        i.payer.as_str(),
        i.officer_tckn.as_str(),
        i.officer_cert_der,
        i.created_at,
        i.active
    ])?;
    append_audit(
        conn,
        head,
        event_entry(
            crate::UnixTime::from_secs(at),
            actor,
            "add-institution",
            String::new(),
            format!(
                "institution={} tax_no={} payer={} name={}",
                i.id,
                i.tax_no.as_str(),
                i.payer.as_str(),
                i.name
            ),
        ),
    )?;
    Ok(())
}

/// A fresh pre-application id: 128 bits from the OS CSPRNG, hex.
fn new_id() -> String {
    use rand::RngCore as _;
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("pa-{}", hex::encode(b))
}

/// Imports a list: see [`InstitutionStore::import_list`].
pub(super) fn import_list(
    conn: &Connection,
    l: &ListImport,
    head: &mut AuditHead,
) -> Result<ImportOutcome, Refusal> {
    let Some(inst) = read_institution(conn, &l.institution)? else {
        return Err(refused(
            "institution",
            format!("no registered institution \"{}\"", l.institution),
        ));
    };
    if !inst.active {
        return Err(refused(
            "institution",
            format!("institution \"{}\" is deactivated", l.institution),
        ));
    }
    let seen = conn
        .prepare_cached(
            "SELECT status FROM list_imports WHERE institution = ?1 AND file_sha256 = ?2",
        )?
        .query_row(params![l.institution.as_str(), l.file_sha256], |r| {
            r.get::<_, String>(0)
        })
        .optional()?;
    if let Some(status) = seen {
        let mut st = conn.prepare_cached(
            "SELECT row_no, id FROM pre_applications WHERE institution = ?1 AND file_sha256 = ?2 ORDER BY row_no",
        )?;
        let created = st
            .query_map(params![l.institution.as_str(), l.file_sha256], |r| {
                Ok((r.get::<_, u32>(0)?, r.get::<_, String>(1)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        return Ok(ImportOutcome {
            replayed: true,
            created,
            already_open: Vec::new(),
            status,
        });
    }
    let (status, row_status) = match l.signature {
        ListSignature::Cms(_) => ("accepted", "invited"),
        ListSignature::Wet(_) => ("awaiting_confirmation", "held"),
    };
    let mut open = conn
        .prepare_cached("SELECT id FROM pre_applications WHERE tckn = ?1 AND status <> 'closed'")?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO pre_applications (id, institution, file_sha256, row_no, tckn, given_name, surname, email, mobile, unit, title, status, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?;
    let mut outbox = conn.prepare_cached(QUEUE_ACCESS_PASSWORD)?;
    let mut created = Vec::with_capacity(l.rows.len());
    let mut already_open = Vec::new();
    for row in &l.rows {
        if let Some(id) = open
            .query_row([row.tckn.as_str()], |r| r.get::<_, String>(0))
            .optional()?
        {
            already_open.push((row.row, id));
            continue;
        }
        let id = new_id();
        insert.execute(params![
            id,
            l.institution.as_str(),
            l.file_sha256,
            row.row,
            row.tckn.as_str(),
            row.given_name.as_str(),
            row.surname.as_str(),
            row.email.as_str(),
            row.mobile.as_str(),
            row.unit,
            row.title,
            row_status,
            l.at
        ])?;
        if row_status == "invited" {
            outbox.execute(params![id, row.email.as_str(), l.at])?;
        }
        created.push((row.row, id));
    }
    let evidence = match &l.signature {
        ListSignature::Cms(b) | ListSignature::Wet(b) => b,
    };
    conn.prepare_cached(
        "INSERT INTO list_imports (institution, file_sha256, file_name, signature, evidence, status, rows_created, rows_invalid, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        l.institution.as_str(),
        l.file_sha256,
        l.file_name,
        l.signature.kind(),
        evidence,
        status,
        created.len() as i64,
        (l.invalid_rows + already_open.len() as u64) as i64,
        l.at
    ])?;
    append_audit(
        conn,
        head,
        event_entry(
            crate::UnixTime::from_secs(l.at),
            &l.actor,
            "import-list",
            String::new(),
            format!(
                "institution={} file_sha256={} signature={} created={} already_open={} invalid={}",
                l.institution,
                l.file_sha256,
                l.signature.kind(),
                created.len(),
                already_open.len(),
                l.invalid_rows
            ),
        ),
    )?;
    Ok(ImportOutcome {
        replayed: false,
        created,
        already_open,
        status: status.to_owned(),
    })
}

/// Confirms a wet-signed list an operator has seen on paper: its held rows become invited,
/// each with its access-password message, in one transaction.
pub(super) fn confirm_list(
    conn: &Connection,
    institution: &InstitutionId,
    file_sha256: &str,
    actor: &crate::Principal,
    at: i64,
    head: &mut AuditHead,
) -> Result<u64, Refusal> {
    let n = conn
        .prepare_cached(
            "UPDATE list_imports SET status = 'accepted' WHERE institution = ?1 AND file_sha256 = ?2 AND status = 'awaiting_confirmation'",
        )?
        .execute(params![institution.as_str(), file_sha256])?;
    if n != 1 {
        return Err(refused(
            "file-sha256",
            format!("no wet-signed list {file_sha256} of \"{institution}\" awaits confirmation"),
        ));
    }
    let mut held = conn.prepare_cached(
        "SELECT id, email FROM pre_applications WHERE institution = ?1 AND file_sha256 = ?2 AND status = 'held'",
    )?;
    let rows: Vec<(String, String)> = held
        .query_map(params![institution.as_str(), file_sha256], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut outbox = conn.prepare_cached(QUEUE_ACCESS_PASSWORD)?;
    for (id, email) in &rows {
        outbox.execute(params![id, email, at])?;
    }
    conn.prepare_cached(
        "UPDATE pre_applications SET status = 'invited' WHERE institution = ?1 AND file_sha256 = ?2 AND status = 'held'",
    )?
    .execute(params![institution.as_str(), file_sha256])?;
    append_audit(
        conn,
        head,
        event_entry(
            crate::UnixTime::from_secs(at),
            actor,
            "confirm-list",
            String::new(),
            format!(
                "institution={institution} file_sha256={file_sha256} invited={}",
                rows.len()
            ),
        ),
    )?;
    Ok(rows.len() as u64)
}

pub(super) const PRE_COLUMNS: &str = "id, institution, file_sha256, row_no, tckn, given_name, surname, email, mobile, unit, title, status, password_hash, created_at";

pub(super) fn pre_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PreApplication> {
    Ok(PreApplication {
        id: r.get(0)?,
        institution: r.get(1)?,
        file_sha256: r.get(2)?,
        row: r.get(3)?,
        tckn: super::tckn_column(r, 4)?,
        given_name: r.get(5)?,
        surname: r.get(6)?,
        email: r.get(7)?,
        mobile: r.get(8)?,
        unit: r.get(9)?,
        title: r.get(10)?,
        status: r.get(11)?,
        password_hash: r.get(12)?,
        created_at: r.get(13)?,
    })
}

pub(super) fn read_pre_applications(
    conn: &Connection,
    institution: &InstitutionId,
) -> rusqlite::Result<Vec<PreApplication>> {
    let mut st = conn.prepare(&format!(
        "SELECT {PRE_COLUMNS} FROM pre_applications WHERE institution = ?1 ORDER BY created_at, file_sha256, row_no"
    ))?;
    let rows = st.query_map([institution.as_str()], pre_row)?;
    rows.collect()
}

pub(super) fn read_pre_application(
    conn: &Connection,
    id: &str,
) -> rusqlite::Result<Option<PreApplication>> {
    conn.prepare_cached(&format!(
        "SELECT {PRE_COLUMNS} FROM pre_applications WHERE id = ?1"
    ))?
    .query_row([id], pre_row)
    .optional()
}

impl InstitutionStore for SqliteStore {
    fn add_institution(
        &self,
        institution: crate::institution::InstitutionRecord,
        actor: &crate::Principal,
        at: i64,
    ) -> Result<()> {
        let actor = actor.to_owned();
        self.submit(move |conn, head| add_institution(conn, &institution, &actor, at, head))
    }

    fn institution(
        &self,
        id: &crate::institution::InstitutionId,
    ) -> Result<Option<crate::institution::InstitutionRecord>> {
        self.read(|c| read_institution(c, id), "read institution")
    }

    fn institutions(&self) -> Result<Vec<crate::institution::InstitutionRecord>> {
        self.read(read_institutions, "read institutions")
    }

    fn import_list(
        &self,
        import: crate::institution::ListImport,
    ) -> Result<crate::institution::ImportOutcome> {
        self.submit(move |conn, head| import_list(conn, &import, head))
    }

    fn confirm_list(
        &self,
        institution: &crate::institution::InstitutionId,
        file_sha256: &str,
        actor: &crate::Principal,
        at: i64,
    ) -> Result<u64> {
        let (institution, file_sha256, actor) = (
            institution.clone(),
            file_sha256.to_owned(),
            actor.to_owned(),
        );
        self.submit(move |conn, head| {
            confirm_list(conn, &institution, &file_sha256, &actor, at, head)
        })
    }

    fn pre_applications(
        &self,
        institution: &crate::institution::InstitutionId,
    ) -> Result<Vec<PreApplication>> {
        self.read(
            |c| read_pre_applications(c, institution),
            "read pre-applications",
        )
    }

    fn pre_application(&self, id: &str) -> Result<Option<PreApplication>> {
        self.read(|c| read_pre_application(c, id), "read pre-application")
    }
}
