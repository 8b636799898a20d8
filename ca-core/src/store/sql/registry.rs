//! The registry: the CAs nesca runs, the licensed ESHS partners and the trusted
//! transport keys.

use super::db;
use super::db::{params, Connection, OptionalExtension};

use super::audit::{append_audit, append_event, audit_entry, AuditHead};
use super::writer::Refusal;
use super::{bad_column, opt_time_column, time_column, Backend};
use crate::error::{CaError, Result};
use crate::partner::{PartnerId, PartnerRecord};
use crate::serial::IssuerId;
use crate::store::{CaRecord, CaRole, OcspSignerRecord, RegistryStore};
use crate::transport_key::{TransportKeyId, TransportKeyRecord};
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
    if let Some(previous) = &ca.supersedes {
        let taken: Option<String> = conn
            .prepare_cached("SELECT id FROM cas WHERE supersedes = ?1")?
            .query_row([previous.as_str()], |r| r.get(0))
            .optional()?;
        if let Some(taken) = taken {
            return Err(Refusal::Refused(CaError::AlreadyExists {
                what: format!("a generation superseding \"{previous}\" (\"{taken}\")"),
            }));
        }
        let role: Option<String> = conn
            .prepare_cached("SELECT role FROM cas WHERE id = ?1")?
            .query_row([previous.as_str()], |r| r.get(0))
            .optional()?;
        if role.as_deref() != Some(CaRole::Issuing.as_str()) || ca.role != CaRole::Issuing {
            return Err(Refusal::Refused(CaError::Invalid {
                field: "supersedes",
                rule: format!("\"{previous}\" is not an issuing CA in the store: only an issuing CA is rolled over"),
            }));
        }
    }
    conn.prepare_cached(
        "INSERT INTO cas (id, role, key_label, cert_der, ocsp_key_label, ocsp_cert_der, created_at, supersedes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![ca.id.as_str(), ca.role.as_str(), ca.key_label, ca.cert_der, ca.ocsp_key_label, ca.ocsp_cert_der, at.secs(), ca.supersedes.as_ref().map(IssuerId::as_str)])?;
    if let (Some(label), Some(cert)) = (&ca.ocsp_key_label, &ca.ocsp_cert_der) {
        conn.prepare_cached(INSERT_OCSP_SIGNER)?.execute(params![
            ca.id.as_str(),
            label,
            cert,
            at.secs()
        ])?;
    }
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

const INSERT_OCSP_SIGNER: &str =
    "INSERT INTO ocsp_signers (ca, key_label, cert_der, since) VALUES (?1, ?2, ?3, ?4)";

/// Records `ca` revoked at `at` unless it was already.
fn record_ca_revoked(
    conn: &Connection,
    ca: &IssuerId,
    actor: &crate::Principal,
    at: UnixTime,
    head: &mut AuditHead,
) -> Result<(), Refusal> {
    let known: Option<Option<i64>> = conn
        .prepare_cached("SELECT revoked_at FROM cas WHERE id = ?1")?
        .query_row([ca.as_str()], |r| r.get(0))
        .optional()?;
    match known {
        None => Err(Refusal::Refused(CaError::Invalid {
            field: "ca",
            rule: format!("no CA \"{ca}\" in the store"),
        })),
        Some(Some(_)) => Ok(()),
        Some(None) => {
            conn.prepare_cached("UPDATE cas SET revoked_at = ?2 WHERE id = ?1")?
                .execute(params![ca.as_str(), at.secs()])?;
            append_event(conn, head, at, actor, "ca-revoked", format!("ca={ca}"))?;
            Ok(())
        }
    }
}

/// Makes `signer` the current OCSP signer of `ca` if the current one is `expect_label`.
fn replace_ocsp_signer(
    conn: &Connection,
    ca: &IssuerId,
    expect_label: Option<&str>,
    signer: &OcspSignerRecord,
    actor: &crate::Principal,
    head: &mut AuditHead,
) -> Result<(), Refusal> {
    let current: Option<(String, Option<String>)> = conn
        .prepare_cached("SELECT role, ocsp_key_label FROM cas WHERE id = ?1")?
        .query_row([ca.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((role, label)) = current else {
        return Err(Refusal::Refused(CaError::Invalid {
            field: "ca",
            rule: format!("no CA \"{ca}\" in the store"),
        }));
    };
    if role != CaRole::Issuing.as_str() {
        return Err(Refusal::Refused(CaError::Invalid {
            field: "ca",
            rule: format!(
                "\"{ca}\" is a {role} CA; only an issuing CA has a delegated OCSP signer"
            ),
        }));
    }
    if label.as_deref() != expect_label {
        return Err(Refusal::Refused(CaError::Conflict {
            field: "ocsp_signer",
            rule: format!(
                "the OCSP signer of \"{ca}\" was replaced meanwhile (it is now {})",
                label.as_deref().unwrap_or("none")
            ),
        }));
    }
    conn.prepare_cached("UPDATE cas SET ocsp_key_label = ?2, ocsp_cert_der = ?3 WHERE id = ?1")?
        .execute(params![ca.as_str(), signer.key_label, signer.cert_der])?;
    conn.prepare_cached(INSERT_OCSP_SIGNER)?.execute(params![
        ca.as_str(),
        signer.key_label,
        signer.cert_der,
        signer.since.secs()
    ])?;
    append_event(
        conn,
        head,
        signer.since,
        actor,
        "ocsp-signer-replaced",
        format!(
            "ca={ca} key_label={} previous={}",
            signer.key_label,
            expect_label.unwrap_or("none")
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
    // A licence number names one partner: the channels recognise a partner's certificates
    // by the licence in their subject, so a second partner with it would let a deactivated
    // partner's certificates in again.
    let taken: Option<String> = conn
        .prepare_cached("SELECT id FROM partners WHERE id = ?1 OR license_no = ?2")?
        .query_row(params![partner.id.as_str(), partner.license_no], |r| {
            r.get(0)
        })
        .optional()?;
    if let Some(other) = taken {
        let what = if other == partner.id.as_str() {
            format!("partner \"{other}\"")
        } else {
            format!(
                "licence number {} (partner \"{other}\")",
                partner.license_no
            )
        };
        return Err(Refusal::Refused(CaError::AlreadyExists { what }));
    }
    conn.prepare_cached(
        "INSERT INTO partners (id, name, license_no, created_at, active) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![partner.id.as_str(), partner.name, partner.license_no, partner.created_at.secs(), partner.active])?;
    append_event(
        conn,
        head,
        at,
        actor,
        "add-partner",
        format!(
            "partner={} license_no={} name={}",
            partner.id, partner.license_no, partner.name
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
    append_event(
        conn,
        head,
        at,
        actor,
        "deactivate-partner",
        format!("partner={id}"),
    )?;
    Ok(())
}

/// Registers a transport key; refuses an id that exists (withdrawn or not).
fn add_transport_key(
    conn: &Connection,
    key: &TransportKeyRecord,
    (actor, at): (&crate::Principal, UnixTime),
    head: &mut AuditHead,
) -> Result<(), Refusal> {
    let exists = conn
        .prepare_cached("SELECT 1 FROM transport_keys WHERE id = ?1")?
        .exists([key.id.as_str()])?;
    if exists {
        return Err(Refusal::Refused(CaError::AlreadyExists {
            what: format!("transport key {}", key.id),
        }));
    }
    conn.prepare_cached(
        "INSERT INTO transport_keys (id, name, cert_der, spki_der, not_before, not_after, registered_at, withdrawn_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        key.id.as_str(),
        key.name,
        key.cert_der,
        key.spki_der,
        key.not_before.secs(),
        key.not_after.secs(),
        key.registered_at.secs(),
        key.withdrawn_at.map(UnixTime::secs),
    ])?;
    append_event(
        conn,
        head,
        at,
        actor,
        "add-transport-key",
        format!(
            "transport_key={} name={} not_after={}",
            key.id,
            key.name,
            key.not_after.secs()
        ),
    )?;
    Ok(())
}

/// Withdraws a registered transport key that is not withdrawn yet.
fn withdraw_transport_key(
    conn: &Connection,
    id: &TransportKeyId,
    (actor, at): (&crate::Principal, UnixTime),
    head: &mut AuditHead,
) -> Result<(), Refusal> {
    let withdrawn: Option<Option<i64>> = conn
        .prepare_cached("SELECT withdrawn_at FROM transport_keys WHERE id = ?1")?
        .query_row([id.as_str()], |r| r.get(0))
        .optional()?;
    match withdrawn {
        None => {
            return Err(Refusal::Refused(CaError::invalid(
                "id",
                format!("no registered transport key {id}"),
            )))
        }
        Some(Some(_)) => {
            return Err(Refusal::Refused(CaError::Conflict {
                field: "id",
                rule: format!("transport key {id} is withdrawn already"),
            }))
        }
        Some(None) => {}
    }
    conn.prepare_cached(
        "UPDATE transport_keys SET withdrawn_at = ?2 WHERE id = ?1 AND withdrawn_at IS NULL",
    )?
    .execute(params![id.as_str(), at.secs()])?;
    append_event(
        conn,
        head,
        at,
        actor,
        "withdraw-transport-key",
        format!("transport_key={id}"),
    )?;
    Ok(())
}

const TRANSPORT_KEY_COLUMNS: &str =
    "id, name, cert_der, spki_der, not_before, not_after, registered_at, withdrawn_at";

fn transport_key_row(r: &db::Row<'_>) -> db::Result<TransportKeyRecord> {
    let id: String = r.get(0)?;
    Ok(TransportKeyRecord {
        id: TransportKeyId::parse("transport_keys.id", &id).map_err(|e| bad_column(0, e))?,
        name: r.get(1)?,
        cert_der: r.get(2)?,
        spki_der: r.get(3)?,
        not_before: time_column(r, 4)?,
        not_after: time_column(r, 5)?,
        registered_at: time_column(r, 6)?,
        withdrawn_at: opt_time_column(r, 7)?,
    })
}

/// The columns [`ca_row`] reads, in its order.
const CA_COLUMNS: &str = "id, role, key_label, cert_der, ocsp_key_label, ocsp_cert_der, supersedes";

fn ca_row(r: &db::Row<'_>) -> db::Result<CaRecord> {
    let bad = |i: usize, e: String| db::conversion_error(i, e.into());
    let id: String = r.get(0)?;
    let role: String = r.get(1)?;
    Ok(CaRecord {
        id: IssuerId::parse(&id).map_err(|e| bad(0, e.rule()))?,
        role: CaRole::parse(&role).map_err(|e| bad_column(1, e))?,
        key_label: r.get(2)?,
        cert_der: r.get(3)?,
        ocsp_key_label: r.get(4)?,
        ocsp_cert_der: r.get(5)?,
        supersedes: r
            .get::<_, Option<String>>(6)?
            .map(|s| IssuerId::parse(&s).map_err(|e| bad(6, e.rule())))
            .transpose()?,
    })
}

const PARTNER_COLUMNS: &str = "id, name, license_no, created_at, active";

fn partner_row(r: &db::Row<'_>) -> db::Result<PartnerRecord> {
    let id: String = r.get(0)?;
    Ok(PartnerRecord {
        id: PartnerId::parse(&id).map_err(|e| db::conversion_error(0, e.into()))?,
        name: r.get(1)?,
        license_no: r.get(2)?,
        created_at: time_column(r, 3)?,
        active: r.get(4)?,
    })
}

/// Reads a registry row by its id, or every row: `table` with `columns`, read by `row`.
struct RegistryTable<T> {
    table: &'static str,
    columns: &'static str,
    order: &'static str,
    row: fn(&db::Row<'_>) -> db::Result<T>,
    what: &'static str,
}

impl<T> RegistryTable<T> {
    fn one(&self, store: &Backend, id: &str) -> Result<Option<T>> {
        let sql = format!("SELECT {} FROM {} WHERE id = ?1", self.columns, self.table);
        store.read(|c| c.query_row(&sql, [id], self.row).optional(), self.what)
    }

    fn all(&self, store: &Backend) -> Result<Vec<T>> {
        let sql = format!(
            "SELECT {} FROM {} ORDER BY {}",
            self.columns, self.table, self.order
        );
        store.read(
            |c| {
                let mut st = c.prepare(&sql)?;
                let rows = st.query_map([], self.row)?;
                rows.collect()
            },
            self.what,
        )
    }
}

const CAS: RegistryTable<CaRecord> = RegistryTable {
    table: "cas",
    columns: CA_COLUMNS,
    order: "created_at, id",
    row: ca_row,
    what: "read CAs",
};

const PARTNERS: RegistryTable<PartnerRecord> = RegistryTable {
    table: "partners",
    columns: PARTNER_COLUMNS,
    order: "created_at, id",
    row: partner_row,
    what: "read partners",
};

const TRANSPORT_KEYS: RegistryTable<TransportKeyRecord> = RegistryTable {
    table: "transport_keys",
    columns: TRANSPORT_KEY_COLUMNS,
    order: "registered_at, id",
    row: transport_key_row,
    what: "read transport keys",
};

impl RegistryStore for Backend {
    fn add_ca(&self, ca: CaRecord, actor: &crate::Principal, at: UnixTime) -> Result<()> {
        let actor = actor.to_owned();
        self.submit(move |conn, head| add_ca(conn, &ca, (&actor, at), head))
    }

    fn ca(&self, id: &IssuerId) -> Result<Option<CaRecord>> {
        CAS.one(self, id.as_str())
    }

    fn cas(&self) -> Result<Vec<CaRecord>> {
        CAS.all(self)
    }

    fn replace_ocsp_signer(
        &self,
        ca: &IssuerId,
        expect_label: Option<&str>,
        signer: OcspSignerRecord,
        actor: &crate::Principal,
    ) -> Result<()> {
        let (ca, expect, actor) = (
            ca.clone(),
            expect_label.map(str::to_owned),
            actor.to_owned(),
        );
        self.submit(move |conn, head| {
            replace_ocsp_signer(conn, &ca, expect.as_deref(), &signer, &actor, head)
        })
    }

    fn record_ca_revoked(
        &self,
        ca: &IssuerId,
        actor: &crate::Principal,
        at: UnixTime,
    ) -> Result<()> {
        let (ca, actor) = (ca.clone(), actor.to_owned());
        self.submit(move |conn, head| record_ca_revoked(conn, &ca, &actor, at, head))
    }

    fn ca_revoked_at(&self, ca: &IssuerId) -> Result<Option<UnixTime>> {
        self.read(
            |c| {
                c.prepare_cached("SELECT revoked_at FROM cas WHERE id = ?1")?
                    .query_row([ca.as_str()], |r| r.get::<_, Option<i64>>(0))
                    .optional()
                    .map(|v| v.flatten().map(UnixTime::from_secs))
            },
            "read a CA's revocation",
        )
    }

    fn ocsp_signers(&self, ca: &IssuerId) -> Result<Vec<OcspSignerRecord>> {
        self.read(
            |c| {
                let mut st = c.prepare_cached(
                    "SELECT key_label, cert_der, since FROM ocsp_signers WHERE ca = ?1 ORDER BY since, rowid",
                )?;
                let rows = st.query_map([ca.as_str()], |r| {
                    Ok(OcspSignerRecord {
                        key_label: r.get(0)?,
                        cert_der: r.get(1)?,
                        since: time_column(r, 2)?,
                    })
                })?;
                rows.collect()
            },
            "read OCSP signers",
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
        PARTNERS.one(self, id.as_str())
    }

    fn partners(&self) -> Result<Vec<PartnerRecord>> {
        PARTNERS.all(self)
    }

    fn add_transport_key(
        &self,
        key: TransportKeyRecord,
        actor: &crate::Principal,
        at: UnixTime,
    ) -> Result<()> {
        let actor = actor.to_owned();
        self.submit(move |conn, head| add_transport_key(conn, &key, (&actor, at), head))
    }

    fn withdraw_transport_key(
        &self,
        id: &TransportKeyId,
        actor: &crate::Principal,
        at: UnixTime,
    ) -> Result<()> {
        let (id, actor) = (id.clone(), actor.to_owned());
        self.submit(move |conn, head| withdraw_transport_key(conn, &id, (&actor, at), head))
    }

    fn transport_key(&self, id: &TransportKeyId) -> Result<Option<TransportKeyRecord>> {
        TRANSPORT_KEYS.one(self, id.as_str())
    }

    fn transport_keys(&self) -> Result<Vec<TransportKeyRecord>> {
        TRANSPORT_KEYS.all(self)
    }
}
