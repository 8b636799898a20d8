//! The store side of the institutional channel: institutions, imported
//! lists and pre-applications (the outbox table is created here too; its reads and writes are
//! in `outbox.rs`). An import is one write of the writer's batch transaction: all of its rows,
//! their outbox messages and its audit record, or nothing. The one rule kept here is a
//! constraint: the unique index `pre_applications_open` (one open pre-application per person).

use super::db;
use super::db::{params, Connection, OptionalExtension};

use super::audit::{append_event, AuditHead};
use super::writer::{after_writes, Refusal};
use super::Backend;
use crate::error::{CaError, Result};
use crate::institution::{
    ImportOutcome, InstitutionId, InstitutionRecord, ListSignature, Payer, TaxNo,
};
use crate::store::{
    HeldListEnd, ImportStatus, InstitutionChange, InstitutionStore, ListConfirmation,
    ListConfirmed, ListImportRecord, ListImportWrite, ListSignatureKind, PreApplication,
    PreApplicationStatus,
};
use crate::UnixTime;

/// Queues the access-password message of pre-application ?1 to ?2 at ?3.
const QUEUE_ACCESS_PASSWORD: &str = "INSERT INTO outbox (kind, subject_ref, recipient, status, next_attempt_at, created_at) VALUES ('access-password', ?1, ?2, 'pending', ?3, ?3)";

const INSTITUTION_COLUMNS: &str =
    "id, name, tax_no, payer, officer_tckn, officer_cert, created_at, active";

pub(super) fn institution_row(r: &db::Row<'_>) -> db::Result<InstitutionRecord> {
    let bad = |i: usize, e: CaError| db::conversion_error(i, e.into());
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
        created_at: UnixTime::from_secs(r.get(6)?),
        active: r.get(7)?,
    })
}

pub(super) fn read_institution(
    conn: &Connection,
    id: &InstitutionId,
) -> db::Result<Option<InstitutionRecord>> {
    conn.prepare_cached(&format!(
        "SELECT {INSTITUTION_COLUMNS} FROM institutions WHERE id = ?1"
    ))?
    .query_row([id.as_str()], institution_row)
    .optional()
}

pub(super) fn read_institutions(conn: &Connection) -> db::Result<Vec<InstitutionRecord>> {
    let mut st = conn.prepare(&format!(
        "SELECT {INSTITUTION_COLUMNS} FROM institutions ORDER BY created_at, id"
    ))?;
    let rows = st.query_map([], institution_row)?;
    rows.collect()
}

pub(super) fn change_institution(
    conn: &Connection,
    (id, change): (&InstitutionId, &InstitutionChange),
    actor: &crate::Principal,
    at: UnixTime,
    head: &mut AuditHead,
) -> Result<(), Refusal> {
    let (changed, action, detail) =
        match change {
            InstitutionChange::Officer {
                officer_tckn,
                officer_cert_der,
            } => {
                use sha2::Digest as _;
                let n = conn
                .prepare_cached(
                    "UPDATE institutions SET officer_tckn = ?2, officer_cert = ?3 WHERE id = ?1",
                )?
                .execute(params![id.as_str(), officer_tckn.as_str(), officer_cert_der])?;
                let digest = hex::encode(sha2::Sha256::digest(officer_cert_der));
                (
                    n,
                    "change-institution-officer",
                    format!(
                        "institution={id} officer_tckn={} officer_cert_sha256={digest}",
                        officer_tckn.as_str()
                    ),
                )
            }
            InstitutionChange::Active(active) => {
                let n = conn
                    .prepare_cached("UPDATE institutions SET active = ?2 WHERE id = ?1")?
                    .execute(params![id.as_str(), active])?;
                let action = if *active {
                    "activate-institution"
                } else {
                    "deactivate-institution"
                };
                (n, action, format!("institution={id}"))
            }
        };
    if changed != 1 {
        return Err(Refusal::Refused(CaError::invalid(
            "institution",
            format!("no registered institution \"{id}\""),
        )));
    }
    append_event(conn, head, at, actor, action, detail)
}

pub(super) fn resend_access_password(
    conn: &Connection,
    id: &str,
    actor: &crate::Principal,
    at: UnixTime,
    head: &mut AuditHead,
) -> Result<(), Refusal> {
    let email: Option<String> = conn
        .prepare_cached("SELECT email FROM pre_applications WHERE id = ?1 AND status = 'invited'")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    let Some(email) = email else {
        return Err(Refusal::Refused(CaError::Conflict {
            field: "id",
            rule: format!("{id} is not an invited application"),
        }));
    };
    conn.prepare_cached(QUEUE_ACCESS_PASSWORD)?
        .execute(params![id, email, at.secs()])?;
    conn.prepare_cached(
        "UPDATE enrollments SET failed_sign_ins = 0, updated_at = ?2 WHERE pre_application = ?1",
    )?
    .execute(params![id, at.secs()])?;
    // A new password lifts every source's lock.
    conn.prepare_cached("DELETE FROM sign_in_sources WHERE pre_application = ?1")?
        .execute([id])?;
    append_event(
        conn,
        head,
        at,
        actor,
        "resend-access-password",
        format!("pre_application={id}"),
    )
}

pub(super) fn add_institution(
    conn: &Connection,
    i: &InstitutionRecord,
    actor: &crate::Principal,
    at: UnixTime,
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
        i.created_at.secs(),
        i.active
    ])?;
    append_event(
        conn,
        head,
        at,
        actor,
        "add-institution",
        format!(
            "institution={} tax_no={} payer={} name={}",
            i.id,
            i.tax_no.as_str(),
            i.payer.as_str(),
            i.name
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

/// The open pre-applications of `people`: see [`InstitutionStore::open_pre_applications`].
/// Asked in chunks through the unique index, so a list of a hundred thousand people is a few
/// hundred statements, not one per person.
pub(super) fn read_open_pre_applications(
    conn: &Connection,
    people: &[crate::Tckn],
) -> db::Result<Vec<(crate::Tckn, String)>> {
    const CHUNK: usize = 500;
    let mut open = Vec::new();
    for chunk in people.chunks(CHUNK) {
        let marks = (1..=chunk.len())
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut st = conn.prepare_cached(&format!(
            "SELECT tckn, id FROM pre_applications WHERE status = 'invited' AND tckn IN ({marks})"
        ))?;
        let rows = st.query_map(
            db::params_from_iter(chunk.iter().map(crate::Tckn::as_str)),
            |r| Ok((super::tckn_column(r, 0)?, r.get::<_, String>(1)?)),
        )?;
        for row in rows {
            open.push(row?);
        }
    }
    Ok(open)
}

/// `(row, id)` pairs of a list from `sql` (institution ?1, digest ?2), in row order.
fn row_ids(
    conn: &Connection,
    sql: &str,
    (institution, file_sha256): (&InstitutionId, &str),
) -> db::Result<Vec<(u32, String)>> {
    let mut st = conn.prepare_cached(sql)?;
    let rows = st.query_map(params![institution.as_str(), file_sha256], |r| {
        Ok((r.get::<_, u32>(0)?, r.get::<_, String>(1)?))
    })?;
    rows.collect()
}

/// A list imported before: see [`InstitutionStore::list_import`].
pub(super) fn read_list_import(
    conn: &Connection,
    institution: &InstitutionId,
    file_sha256: &str,
) -> db::Result<Option<ListImportRecord>> {
    let bad = |i: usize, what: &str, text: &str| {
        db::conversion_error(i, format!("unknown list {what} \"{text}\"").into())
    };
    let head = conn
        .prepare_cached(
            "SELECT file_name, signature, status, created_at FROM list_imports WHERE institution = ?1 AND file_sha256 = ?2",
        )?
        .query_row(params![institution.as_str(), file_sha256], |r| {
            let signature: String = r.get(1)?;
            let status: String = r.get(2)?;
            Ok((
                r.get::<_, String>(0)?,
                ListSignatureKind::parse(&signature).ok_or_else(|| bad(1, "signature", &signature))?,
                ImportStatus::parse(&status).ok_or_else(|| bad(2, "status", &status))?,
                UnixTime::from_secs(r.get(3)?),
            ))
        })
        .optional()?;
    let Some((file_name, signature, status, created_at)) = head else {
        return Ok(None);
    };
    let list = (institution, file_sha256);
    Ok(Some(ListImportRecord {
        institution: institution.clone(),
        file_sha256: file_sha256.to_owned(),
        file_name,
        signature,
        status,
        created: row_ids(
            conn,
            "SELECT row_no, id FROM pre_applications WHERE institution = ?1 AND file_sha256 = ?2 ORDER BY row_no",
            list,
        )?,
        already_open: row_ids(
            conn,
            "SELECT row_no, pre_application FROM list_import_already_open WHERE institution = ?1 AND file_sha256 = ?2 ORDER BY row_no",
            list,
        )?,
        created_at,
    }))
}

/// Imports a list as the RA decided it: see [`InstitutionStore::import_list`].
pub(super) fn import_list(
    conn: &Connection,
    w: &ListImportWrite,
    head: &mut AuditHead,
) -> Result<ImportOutcome, Refusal> {
    let l = &w.import;
    if let Some(seen) = read_list_import(conn, &l.institution, &l.file_sha256)? {
        return Ok(seen.replayed());
    }
    if let (ImportStatus::AwaitingConfirmation, Some(limit)) = (w.status, w.held_limit) {
        let held: u32 = conn
            .prepare_cached(
                "SELECT COUNT(*) FROM list_imports WHERE institution = ?1 AND status = 'awaiting_confirmation'",
            )?
            .query_row([l.institution.as_str()], |r| r.get(0))?;
        if held >= limit {
            return Err(Refusal::Refused(CaError::Conflict {
                field: "wet-scan",
                rule: format!(
                    "\"{}\" has {held} wet-signed lists awaiting confirmation, the most there may be; an operator confirms or rejects them first (nesca confirm-list / reject-list)",
                    l.institution
                ),
            }));
        }
    }
    // The people the registration authority skipped as open must still be open: one closed
    // meanwhile would be reported as skipped and then have no application at all.
    let mut still_open =
        conn.prepare_cached("SELECT 1 FROM pre_applications WHERE id = ?1 AND status = 'invited'")?;
    for (row, id) in &w.already_open {
        if !still_open.exists(params![id])? {
            return Err(Refusal::Refused(CaError::Conflict {
                field: "already_open",
                rule: format!(
                    "row {row}: pre-application {id} was closed after the list was read; read it again"
                ),
            }));
        }
    }
    let row_status = w.status.rows_status();
    // The unique index `pre_applications_open` refuses a second open pre-application of a
    // person (one imported meanwhile, or listed twice): that row is skipped, not an error.
    let mut insert = conn.prepare_cached(
        "INSERT INTO pre_applications (id, institution, file_sha256, row_no, tckn, given_name, surname, email, mobile, unit, title, status, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT (tckn) WHERE status = 'invited' DO NOTHING",
    )?;
    let mut outbox = conn.prepare_cached(QUEUE_ACCESS_PASSWORD)?;
    let mut created = Vec::with_capacity(l.rows.len());
    let mut refused = Vec::new();
    for row in &l.rows {
        let id = new_id();
        let n = insert.execute(params![
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
            row_status.as_str(),
            l.at.secs()
        ])?;
        if n == 0 {
            refused.push(row);
            continue;
        }
        if row_status == PreApplicationStatus::Invited {
            outbox.execute(params![id, row.email.as_str(), l.at.secs()])?;
        }
        created.push((row.row, id));
    }
    let mut already_open = w.already_open.clone();
    if !refused.is_empty() {
        let people: Vec<crate::Tckn> = refused.iter().map(|r| r.tckn).collect();
        let open: std::collections::HashMap<_, _> = read_open_pre_applications(conn, &people)?
            .into_iter()
            .collect();
        for row in refused {
            let id = open.get(&row.tckn).cloned().ok_or_else(|| {
                after_writes(Refusal::Refused(CaError::Store {
                    operation: "import list",
                    reason: format!(
                        "row {} was refused but its person has no open pre-application",
                        row.row
                    ),
                    source: None,
                }))
            })?;
            already_open.push((row.row, id));
        }
    }
    already_open.sort_by_key(|(row, _)| *row);
    let mut skipped = conn.prepare_cached(
        "INSERT INTO list_import_already_open (institution, file_sha256, row_no, pre_application) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (row, id) in &already_open {
        skipped.execute(params![l.institution.as_str(), l.file_sha256, row, id])?;
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
        l.signature.kind().as_str(),
        evidence,
        w.status.as_str(),
        created.len() as i64,
        (l.invalid_rows + already_open.len() as u64) as i64,
        l.at.secs()
    ])?;
    append_event(
        conn,
        head,
        l.at,
        &l.actor,
        "import-list",
        format!(
            "institution={} file_sha256={} signature={} created={} already_open={} invalid={}",
            l.institution,
            l.file_sha256,
            l.signature.kind().as_str(),
            created.len(),
            already_open.len(),
            l.invalid_rows
        ),
    )?;
    Ok(ImportOutcome {
        replayed: false,
        created,
        already_open,
        status: w.status,
    })
}

/// Moves list `institution`/`file_sha256` from `from` to `to`, or refuses with a conflict
/// when it is no longer in `from`.
fn move_list(
    conn: &Connection,
    (institution, file_sha256): (&InstitutionId, &str),
    from: ImportStatus,
    to: ImportStatus,
) -> Result<(), Refusal> {
    let n = conn
        .prepare_cached(
            "UPDATE list_imports SET status = ?1 WHERE institution = ?2 AND file_sha256 = ?3 AND status = ?4",
        )?
        .execute(params![to.as_str(), institution.as_str(), file_sha256, from.as_str()])?;
    if n != 1 {
        return Err(Refusal::Refused(CaError::Conflict {
            field: "file-sha256",
            rule: format!(
                "list {file_sha256} of \"{institution}\" is no longer {}; read it again",
                from.as_str()
            ),
        }));
    }
    Ok(())
}

/// Closes the rows of the list still held; returns how many.
fn close_held_rows(
    conn: &Connection,
    (institution, file_sha256): (&InstitutionId, &str),
) -> db::Result<usize> {
    conn.prepare_cached(
        "UPDATE pre_applications SET status = 'closed' WHERE institution = ?1 AND file_sha256 = ?2 AND status = 'held'",
    )?
    .execute(params![institution.as_str(), file_sha256])
}

/// Confirms a wet-signed list an operator has seen on paper: see
/// [`InstitutionStore::confirm_list`].
pub(super) fn confirm_list(
    conn: &Connection,
    c: &ListConfirmation,
    head: &mut AuditHead,
) -> Result<ListConfirmed, Refusal> {
    let list = (&c.institution, c.file_sha256.as_str());
    let (institution, file_sha256) = list;
    move_list(conn, list, c.from, ImportStatus::Accepted)?;
    if let Some(cms) = &c.signature_cms {
        conn.prepare_cached(
            "UPDATE list_imports SET signature = 'cms', evidence = ?3 WHERE institution = ?1 AND file_sha256 = ?2",
        )?
        .execute(params![institution.as_str(), file_sha256, cms])?;
    }
    let rows: Vec<(String, String)> = conn
        .prepare_cached(
            "SELECT id, email FROM pre_applications WHERE institution = ?1 AND file_sha256 = ?2 AND status = 'held' ORDER BY row_no",
        )?
        .query_map(params![institution.as_str(), file_sha256], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<db::Result<_>>()?;
    // A row whose person was invited meanwhile stays held (the one-invited-per-person index
    // would refuse it); those rows are closed below.
    let mut invite = conn.prepare_cached(
        "UPDATE pre_applications SET status = 'invited' WHERE id = ?1 AND status = 'held' AND NOT EXISTS (SELECT 1 FROM pre_applications o WHERE o.tckn = pre_applications.tckn AND o.status = 'invited')",
    )?;
    let mut outbox = conn.prepare_cached(QUEUE_ACCESS_PASSWORD)?;
    let mut invited = 0u64;
    for (id, email) in &rows {
        if invite.execute(params![id])? == 1 {
            outbox.execute(params![id, email, c.at.secs()])?;
            invited += 1;
        }
    }
    let already_open = close_held_rows(conn, list)? as u64;
    append_event(conn, head, c.at,
            &c.actor,
            "confirm-list", format!(
                "institution={institution} file_sha256={file_sha256} by={} invited={invited} already_open={already_open}",
                if c.signature_cms.is_some() { "officer-signature" } else { "operator" }
            ))?;
    Ok(ListConfirmed {
        invited,
        already_open,
    })
}

/// Ends a held list unconfirmed: see [`InstitutionStore::end_held_list`].
pub(super) fn end_held_list(
    conn: &Connection,
    e: &HeldListEnd,
    head: &mut AuditHead,
) -> Result<u64, Refusal> {
    let list = (&e.institution, e.file_sha256.as_str());
    move_list(conn, list, e.from, e.to.status())?;
    let closed = close_held_rows(conn, list)? as u64;
    // The scan of a list nobody confirmed is evidence of nothing: it is not kept (a partner
    // could otherwise store 20 MiB per file for ever). The list's own digest stays recorded.
    conn.prepare_cached(
        "UPDATE list_imports SET evidence = ?3 WHERE institution = ?1 AND file_sha256 = ?2",
    )?
    .execute(params![
        e.institution.as_str(),
        e.file_sha256,
        Vec::<u8>::new()
    ])?;
    let action = e.to.action();
    append_event(
        conn,
        head,
        e.at,
        &e.actor,
        action,
        format!(
            "institution={} file_sha256={} status={} closed={closed}",
            e.institution,
            e.file_sha256,
            e.to.status().as_str()
        ),
    )?;
    Ok(closed)
}

fn read_held_lists_before(
    conn: &Connection,
    at: UnixTime,
    limit: u32,
) -> db::Result<Vec<(InstitutionId, String)>> {
    conn.prepare_cached(
        "SELECT institution, file_sha256 FROM list_imports WHERE status = 'awaiting_confirmation' AND created_at <= ?1 ORDER BY created_at LIMIT ?2",
    )?
    .query_map(params![at.secs(), limit], |r| {
        let id: String = r.get(0)?;
        let id = InstitutionId::parse(&id).map_err(|e| {
            db::conversion_error(0, e.into())
        })?;
        Ok((id, r.get(1)?))
    })?
    .collect()
}

pub(super) const PRE_COLUMNS: &str = "id, institution, file_sha256, row_no, tckn, given_name, surname, email, mobile, unit, title, status, password_hash, created_at";

pub(super) fn pre_row(r: &db::Row<'_>) -> db::Result<PreApplication> {
    let bad = |i: usize, e: Box<dyn std::error::Error + Send + Sync>| db::conversion_error(i, e);
    let institution: String = r.get(1)?;
    let status: String = r.get(11)?;
    Ok(PreApplication {
        id: r.get(0)?,
        institution: InstitutionId::parse(&institution).map_err(|e| bad(1, e.into()))?,
        file_sha256: r.get(2)?,
        row: r.get(3)?,
        tckn: super::tckn_column(r, 4)?,
        given_name: r.get(5)?,
        surname: r.get(6)?,
        email: r.get(7)?,
        mobile: r.get(8)?,
        unit: r.get(9)?,
        title: r.get(10)?,
        status: PreApplicationStatus::parse(&status).ok_or_else(|| {
            bad(
                11,
                format!("unknown pre-application status \"{status}\"").into(),
            )
        })?,
        password_hash: r.get(12)?,
        created_at: UnixTime::from_secs(r.get(13)?),
    })
}

pub(super) fn read_pre_applications(
    conn: &Connection,
    institution: &InstitutionId,
) -> db::Result<Vec<PreApplication>> {
    let mut st = conn.prepare(&format!(
        "SELECT {PRE_COLUMNS} FROM pre_applications WHERE institution = ?1 ORDER BY created_at, file_sha256, row_no"
    ))?;
    let rows = st.query_map([institution.as_str()], pre_row)?;
    rows.collect()
}

pub(super) fn read_pre_application(
    conn: &Connection,
    id: &str,
) -> db::Result<Option<PreApplication>> {
    conn.prepare_cached(&format!(
        "SELECT {PRE_COLUMNS} FROM pre_applications WHERE id = ?1"
    ))?
    .query_row([id], pre_row)
    .optional()
}

impl InstitutionStore for Backend {
    fn add_institution(
        &self,
        institution: InstitutionRecord,
        actor: &crate::Principal,
        at: UnixTime,
    ) -> Result<()> {
        let actor = actor.to_owned();
        self.submit(move |conn, head| add_institution(conn, &institution, &actor, at, head))
    }

    fn change_institution(
        &self,
        id: &InstitutionId,
        change: InstitutionChange,
        actor: &crate::Principal,
        at: UnixTime,
    ) -> Result<()> {
        let (id, actor) = (id.clone(), actor.to_owned());
        self.submit(move |conn, head| change_institution(conn, (&id, &change), &actor, at, head))
    }

    fn resend_access_password(
        &self,
        id: &str,
        actor: &crate::Principal,
        at: UnixTime,
    ) -> Result<()> {
        let (id, actor) = (id.to_owned(), actor.to_owned());
        self.submit(move |conn, head| resend_access_password(conn, &id, &actor, at, head))
    }

    fn institution(&self, id: &InstitutionId) -> Result<Option<InstitutionRecord>> {
        self.read(|c| read_institution(c, id), "read institution")
    }

    fn institutions(&self) -> Result<Vec<InstitutionRecord>> {
        self.read(read_institutions, "read institutions")
    }

    fn open_pre_applications(&self, people: &[crate::Tckn]) -> Result<Vec<(crate::Tckn, String)>> {
        self.read(
            |c| read_open_pre_applications(c, people),
            "read open pre-applications",
        )
    }

    fn list_import(
        &self,
        institution: &InstitutionId,
        file_sha256: &str,
    ) -> Result<Option<ListImportRecord>> {
        self.read(
            |c| read_list_import(c, institution, file_sha256),
            "read list import",
        )
    }

    fn import_list(&self, write: ListImportWrite) -> Result<ImportOutcome> {
        self.submit(move |conn, head| import_list(conn, &write, head))
    }

    fn confirm_list(&self, confirmation: ListConfirmation) -> Result<ListConfirmed> {
        self.submit(move |conn, head| confirm_list(conn, &confirmation, head))
    }

    fn end_held_list(&self, end: HeldListEnd) -> Result<u64> {
        self.submit(move |conn, head| end_held_list(conn, &end, head))
    }

    fn held_list_count(&self, institution: &InstitutionId) -> Result<u32> {
        self.read(
            |c| {
                c.prepare_cached(
                    "SELECT COUNT(*) FROM list_imports WHERE institution = ?1 AND status = 'awaiting_confirmation'",
                )?
                .query_row([institution.as_str()], |r| r.get(0))
            },
            "count held lists",
        )
    }

    fn held_lists_before(&self, at: UnixTime, limit: u32) -> Result<Vec<(InstitutionId, String)>> {
        self.read(|c| read_held_lists_before(c, at, limit), "read held lists")
    }

    fn pre_applications(&self, institution: &InstitutionId) -> Result<Vec<PreApplication>> {
        self.read(
            |c| read_pre_applications(c, institution),
            "read pre-applications",
        )
    }

    fn pre_application(&self, id: &str) -> Result<Option<PreApplication>> {
        self.read(|c| read_pre_application(c, id), "read pre-application")
    }
}
