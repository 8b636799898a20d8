//! The registry in SQLite: the CAs nesca runs and the licensed ESHS partners.

use rusqlite::{params, Connection, OptionalExtension};

use super::audit::{append_audit, audit_entry, event_entry, AuditHead};
use super::writer::Refusal;
use super::{bad_column, time_column, SqliteStore};
use crate::error::{CaError, Result};
use crate::partner::{PartnerId, PartnerRecord};
use crate::serial::IssuerId;
use crate::store::{CaRecord, CaRole, RegistryStore};
use crate::UnixTime;

/// Registers a CA; refuses an id that exists.
fn add_ca(
    conn: &Connection,
    ca: &CaRecord,
    (actor, at): (&crate::Principal, UnixTime),
    head: &mut AuditHead,
) -> Result<(), Refusal> {
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
    .execute(params![ca.id.as_str(), ca.role.as_str(), ca.key_label, ca.cert_der, ca.ocsp_key_label, ca.ocsp_cert_der, at.secs()])?;
    append_audit(
        conn,
        head,
        audit_entry(
            at,
            actor,
            "add-ca",
            &ca.id,
            "",
            format!("role={}", ca.role.as_str()),
        ),
    )?;
    Ok(())
}

/// Registers a partner; refuses an id that exists.
fn add_partner(
    conn: &Connection,
    partner: &PartnerRecord,
    (actor, at): (&crate::Principal, UnixTime),
    head: &mut AuditHead,
) -> Result<(), Refusal> {
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
    .execute(params![partner.id.as_str(), partner.name, partner.license_no, partner.created_at.secs(), partner.active])?;
    // Not about a certificate: issuer and serial stay empty, the partner is in the detail.
    append_audit(
        conn,
        head,
        event_entry(
            at,
            actor,
            "add-partner",
            String::new(),
            format!(
                "partner={} license_no={} name={}",
                partner.id, partner.license_no, partner.name
            ),
        ),
    )?;
    Ok(())
}

/// Deactivates an active partner.
fn deactivate_partner(
    conn: &Connection,
    id: &PartnerId,
    (actor, at): (&crate::Principal, UnixTime),
    head: &mut AuditHead,
) -> Result<(), Refusal> {
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
            at,
            actor,
            "deactivate-partner",
            String::new(),
            format!("partner={id}"),
        ),
    )?;
    Ok(())
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
        id: IssuerId::parse(&id).map_err(|e| bad(0, e.rule()))?,
        role: CaRole::parse(&role).map_err(|e| bad_column(1, e))?,
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
        created_at: time_column(r, 3)?,
        active: r.get(4)?,
    })
}

impl RegistryStore for SqliteStore {
    fn add_ca(&self, ca: CaRecord, actor: &crate::Principal, at: UnixTime) -> Result<()> {
        let actor = actor.to_owned();
        self.submit(move |conn, head| add_ca(conn, &ca, (&actor, at), head))
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

    fn add_partner(
        &self,
        partner: PartnerRecord,
        actor: &crate::Principal,
        at: UnixTime,
    ) -> Result<()> {
        let actor = actor.to_owned();
        self.submit(move |conn, head| add_partner(conn, &partner, (&actor, at), head))
    }

    fn deactivate_partner(
        &self,
        id: &PartnerId,
        actor: &crate::Principal,
        at: UnixTime,
    ) -> Result<()> {
        let (id, actor) = (id.clone(), actor.to_owned());
        self.submit(move |conn, head| deactivate_partner(conn, &id, (&actor, at), head))
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
