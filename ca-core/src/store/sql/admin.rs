//! The admin API's records: operators, dual-control requests and their approvals,
//! and the security-word checks counted per certificate.

use super::db;
use super::db::{params, Connection, OptionalExtension};

use super::audit::{append_event, AuditHead};
use super::certificates::{cert_row, CERT_COLUMNS};
use super::writer::Refusal;
use super::{bad_column, opt_time_column, time_column, Backend};
use crate::error::{CaError, Result};
use crate::serial::{IssuerId, Serial};
use crate::store::admin::{
    AdminRequestRecord, AdminRequestStatus, AdminStore, CertificateQuery, NewAdminRequest,
    OperatorRecord,
};
use crate::store::CertRecord;
use crate::{OperatorName, OperatorRole, Principal, UnixTime};

const OPERATOR_COLUMNS: &str = "name, role, issuer, serial, created_at, disabled_at";

fn operator_row(r: &db::Row<'_>) -> db::Result<OperatorRecord> {
    let name: String = r.get(0)?;
    let role: String = r.get(1)?;
    let issuer: String = r.get(2)?;
    let serial: String = r.get(3)?;
    Ok(OperatorRecord {
        name: OperatorName::parse(&name).map_err(|e| bad_column(0, e.into()))?,
        role: OperatorRole::parse(&role).map_err(|e| bad_column(1, e.into()))?,
        issuer: IssuerId::parse(&issuer).map_err(|e| bad_column(2, e.into()))?,
        serial: Serial::parse_hex(&serial).map_err(|e| bad_column(3, e.into()))?,
        created_at: time_column(r, 4)?,
        disabled_at: opt_time_column(r, 5)?,
    })
}

fn add_operator(
    conn: &Connection,
    o: &OperatorRecord,
    (actor, at): (&Principal, UnixTime),
    head: &mut AuditHead,
) -> Result<(), Refusal> {
    let taken = conn
        .prepare_cached("SELECT 1 FROM operators WHERE name = ?1 OR (issuer = ?2 AND serial = ?3)")?
        .exists(params![
            o.name.as_str(),
            o.issuer.as_str(),
            o.serial.to_hex()
        ])?;
    if taken {
        return Err(Refusal::Refused(CaError::AlreadyExists {
            what: format!("operator \"{}\" (or their certificate)", o.name),
        }));
    }
    conn.prepare_cached(
        "INSERT INTO operators (name, role, issuer, serial, created_at, disabled_at) VALUES (?1, ?2, ?3, ?4, ?5, NULL)",
    )?
    .execute(params![o.name.as_str(), o.role.as_str(), o.issuer.as_str(), o.serial.to_hex(), o.created_at.secs()])?;
    append_event(
        conn,
        head,
        at,
        actor,
        "add-operator",
        format!(
            "operator={} role={} issuer={} serial={}",
            o.name, o.role, o.issuer, o.serial
        ),
    )?;
    Ok(())
}

fn disable_operator(
    conn: &Connection,
    name: &OperatorName,
    (actor, at): (&Principal, UnixTime),
    head: &mut AuditHead,
) -> Result<OperatorRecord, Refusal> {
    let n = conn
        .prepare_cached(
            "UPDATE operators SET disabled_at = ?2 WHERE name = ?1 AND disabled_at IS NULL",
        )?
        .execute(params![name.as_str(), at.secs()])?;
    if n != 1 {
        return Err(Refusal::Refused(CaError::invalid(
            "name",
            format!("no active operator \"{name}\""),
        )));
    }
    append_event(
        conn,
        head,
        at,
        actor,
        "disable-operator",
        format!("operator={name}"),
    )?;
    let sql = format!("SELECT {OPERATOR_COLUMNS} FROM operators WHERE name = ?1");
    Ok(conn.query_row(&sql, [name.as_str()], operator_row)?)
}

const REQUEST_COLUMNS: &str = "id, action, payload, approver_role, requested_by, created_at, expires_at, status, decided_at, result";

fn request_row(r: &db::Row<'_>) -> db::Result<AdminRequestRecord> {
    let role: String = r.get(3)?;
    let by: String = r.get(4)?;
    let status: String = r.get(7)?;
    Ok(AdminRequestRecord {
        id: r.get(0)?,
        action: r.get(1)?,
        payload: r.get(2)?,
        approver_role: OperatorRole::parse(&role).map_err(|e| bad_column(3, e.into()))?,
        requested_by: OperatorName::parse(&by).map_err(|e| bad_column(4, e.into()))?,
        created_at: time_column(r, 5)?,
        expires_at: time_column(r, 6)?,
        status: AdminRequestStatus::parse(&status).map_err(|e| bad_column(7, e))?,
        approvals: Vec::new(),
        decided_at: opt_time_column(r, 8)?,
        result: r.get(9)?,
    })
}

/// A request with its approvals, read on `conn`.
fn read_request(conn: &Connection, id: &str) -> db::Result<Option<AdminRequestRecord>> {
    let sql = format!("SELECT {REQUEST_COLUMNS} FROM admin_requests WHERE id = ?1");
    let Some(mut req) = conn.query_row(&sql, [id], request_row).optional()? else {
        return Ok(None);
    };
    req.approvals = approvals(conn, id)?;
    Ok(Some(req))
}

fn approvals(conn: &Connection, id: &str) -> db::Result<Vec<(OperatorName, UnixTime)>> {
    let mut st = conn.prepare_cached(
        "SELECT operator, at FROM admin_request_approvals WHERE request_id = ?1 ORDER BY at, rowid",
    )?;
    let rows = st.query_map([id], |r| {
        let name: String = r.get(0)?;
        Ok((
            OperatorName::parse(&name).map_err(|e| bad_column(0, e.into()))?,
            time_column(r, 1)?,
        ))
    })?;
    rows.collect()
}

fn add_request(
    conn: &Connection,
    q: &NewAdminRequest,
    actor: &Principal,
    head: &mut AuditHead,
) -> Result<(), Refusal> {
    let exists = conn
        .prepare_cached("SELECT 1 FROM admin_requests WHERE id = ?1")?
        .exists([q.id.as_str()])?;
    if exists {
        return Err(Refusal::Refused(CaError::AlreadyExists {
            what: format!("request {}", q.id),
        }));
    }
    conn.prepare_cached(
        "INSERT INTO admin_requests (id, action, payload, approver_role, requested_by, created_at, expires_at, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending')",
    )?
    .execute(params![q.id, q.action, q.payload, q.approver_role.as_str(), q.requested_by.as_str(), q.created_at.secs(), q.expires_at.secs()])?;
    append_event(
        conn,
        head,
        q.created_at,
        actor,
        "request",
        format!(
            "request={} action={} approver_role={} expires_at={} payload={}{}",
            q.id,
            q.action,
            q.approver_role,
            q.expires_at.secs(),
            q.payload,
            traced(&q.trace)
        ),
    )?;
    Ok(())
}

fn conflict(rule: String) -> Refusal {
    Refusal::Refused(CaError::Conflict {
        field: "request",
        rule,
    })
}

/// ` http_request_id=…` for an audit detail, when the write came from an admin API call.
fn traced(trace: &str) -> String {
    match trace {
        "" => String::new(),
        t => format!(" http_request_id={t}"),
    }
}

/// A request read back after its write in the same transaction.
fn reread(conn: &Connection, id: &str) -> Result<AdminRequestRecord, Refusal> {
    read_request(conn, id)?.ok_or_else(|| conflict(format!("request {id} vanished")))
}

fn approve(
    conn: &Connection,
    id: &str,
    approver: &OperatorName,
    (actor, at, trace): (&Principal, UnixTime, &str),
    head: &mut AuditHead,
) -> Result<AdminRequestRecord, Refusal> {
    let Some(req) = read_request(conn, id)? else {
        return Err(Refusal::Refused(CaError::invalid(
            "id",
            format!("no request {id}"),
        )));
    };
    if req.status != AdminRequestStatus::Pending {
        return Err(conflict(format!(
            "request {id} is {}, not pending",
            req.status
        )));
    }
    if req.expires_at <= at {
        return Err(conflict(format!("request {id} has expired")));
    }
    if &req.requested_by == approver {
        return Err(conflict(
            "the requester cannot approve their own request".into(),
        ));
    }
    if req.approvals.iter().any(|(n, _)| n == approver) {
        return Err(conflict(format!(
            "{approver} has approved request {id} already"
        )));
    }
    conn.prepare_cached(
        "INSERT INTO admin_request_approvals (request_id, operator, at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![id, approver.as_str(), at.secs()])?;
    append_event(
        conn,
        head,
        at,
        actor,
        "approve-request",
        format!("request={id} action={}{}", req.action, traced(trace)),
    )?;
    reread(conn, id)
}

fn decide(
    conn: &Connection,
    id: &str,
    (from, to): (AdminRequestStatus, AdminRequestStatus),
    result: &str,
    (actor, at, trace): (&Principal, UnixTime, &str),
    head: &mut AuditHead,
) -> Result<AdminRequestRecord, Refusal> {
    let n = conn
        .prepare_cached(
            "UPDATE admin_requests SET status = ?3, decided_at = ?4, result = ?5 WHERE id = ?1 AND status = ?2",
        )?
        .execute(params![id, from.as_str(), to.as_str(), at.secs(), result])?;
    if n != 1 {
        return Err(conflict(format!("request {id} is not {from}")));
    }
    let action = match to {
        AdminRequestStatus::Rejected => "reject-request",
        AdminRequestStatus::Expired => "expire-request",
        AdminRequestStatus::Approved => "request-approved",
        AdminRequestStatus::Executed => "request-executed",
        AdminRequestStatus::Failed => "request-failed",
        AdminRequestStatus::Pending => "request-pending",
    };
    append_event(
        conn,
        head,
        at,
        actor,
        action,
        format!("request={id} result={result}{}", traced(trace)),
    )?;
    reread(conn, id)
}

impl AdminStore for Backend {
    fn add_operator(
        &self,
        operator: OperatorRecord,
        actor: &Principal,
        at: UnixTime,
    ) -> Result<()> {
        let actor = actor.clone();
        self.submit(move |conn, head| add_operator(conn, &operator, (&actor, at), head))
    }

    fn operator(&self, name: &OperatorName) -> Result<Option<OperatorRecord>> {
        let sql = format!("SELECT {OPERATOR_COLUMNS} FROM operators WHERE name = ?1");
        self.read(
            |c| c.query_row(&sql, [name.as_str()], operator_row).optional(),
            "read operator",
        )
    }

    fn operator_by_certificate(
        &self,
        issuer: &IssuerId,
        serial: &Serial,
    ) -> Result<Option<OperatorRecord>> {
        let sql =
            format!("SELECT {OPERATOR_COLUMNS} FROM operators WHERE issuer = ?1 AND serial = ?2");
        self.read(
            |c| {
                c.query_row(
                    &sql,
                    params![issuer.as_str(), serial.to_hex()],
                    operator_row,
                )
                .optional()
            },
            "read operator",
        )
    }

    fn operators(&self) -> Result<Vec<OperatorRecord>> {
        let sql = format!("SELECT {OPERATOR_COLUMNS} FROM operators ORDER BY created_at, name");
        self.read(
            |c| {
                let mut st = c.prepare(&sql)?;
                let rows = st.query_map([], operator_row)?;
                rows.collect()
            },
            "read operators",
        )
    }

    fn disable_operator(
        &self,
        name: &OperatorName,
        actor: &Principal,
        at: UnixTime,
    ) -> Result<OperatorRecord> {
        let (name, actor) = (name.clone(), actor.clone());
        self.submit(move |conn, head| disable_operator(conn, &name, (&actor, at), head))
    }

    fn add_admin_request(&self, request: NewAdminRequest, actor: &Principal) -> Result<()> {
        let actor = actor.clone();
        self.submit(move |conn, head| add_request(conn, &request, &actor, head))
    }

    fn admin_request(&self, id: &str) -> Result<Option<AdminRequestRecord>> {
        self.read(|c| read_request(c, id), "read request")
    }

    fn admin_requests(
        &self,
        status: Option<AdminRequestStatus>,
        limit: u32,
    ) -> Result<Vec<AdminRequestRecord>> {
        self.read(
            |c| {
                let sql = format!(
                    "SELECT {REQUEST_COLUMNS} FROM admin_requests WHERE (CAST(?1 AS TEXT) IS NULL OR status = ?1) ORDER BY created_at DESC, id LIMIT ?2"
                );
                let mut st = c.prepare(&sql)?;
                let rows = st.query_map(params![status.map(AdminRequestStatus::as_str), limit], request_row)?;
                let mut out: Vec<AdminRequestRecord> = rows.collect::<db::Result<_>>()?;
                for r in &mut out {
                    r.approvals = approvals(c, &r.id)?;
                }
                Ok(out)
            },
            "read requests",
        )
    }

    fn approve_admin_request(
        &self,
        id: &str,
        approver: &OperatorName,
        actor: &Principal,
        at: UnixTime,
        trace: &str,
    ) -> Result<AdminRequestRecord> {
        let (id, approver, actor, trace) = (
            id.to_owned(),
            approver.clone(),
            actor.clone(),
            trace.to_owned(),
        );
        self.submit(move |conn, head| approve(conn, &id, &approver, (&actor, at, &trace), head))
    }

    fn decide_admin_request(
        &self,
        id: &str,
        from: AdminRequestStatus,
        to: AdminRequestStatus,
        result: &str,
        actor: &Principal,
        at: UnixTime,
        trace: &str,
    ) -> Result<AdminRequestRecord> {
        let (id, result, actor, trace) = (
            id.to_owned(),
            result.to_owned(),
            actor.clone(),
            trace.to_owned(),
        );
        self.submit(move |conn, head| {
            decide(conn, &id, (from, to), &result, (&actor, at, &trace), head)
        })
    }

    fn count_security_word_check(
        &self,
        issuer: &IssuerId,
        serial: &Serial,
        (since, at): (UnixTime, UnixTime),
        limit: u32,
    ) -> Result<std::result::Result<u32, UnixTime>> {
        let (issuer, serial) = (issuer.as_str().to_owned(), serial.to_hex());
        self.submit(move |conn, _head| {
            conn.prepare_cached(
                "DELETE FROM security_word_checks WHERE issuer = ?1 AND serial = ?2 AND at < ?3",
            )?
            .execute(params![issuer, serial, since.secs()])?;
            let (n, oldest): (u32, Option<i64>) = conn
                .prepare_cached(
                    "SELECT COUNT(*), MIN(at) FROM security_word_checks WHERE issuer = ?1 AND serial = ?2",
                )?
                .query_row(params![issuer, serial], |r| Ok((r.get(0)?, r.get(1)?)))?;
            if n >= limit {
                return Ok(Err(UnixTime::from_secs(oldest.unwrap_or(at.secs()))));
            }
            conn.prepare_cached(
                "INSERT INTO security_word_checks (issuer, serial, at) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![issuer, serial, at.secs()])?;
            Ok(Ok(n + 1))
        })
    }

    fn clear_security_word_checks(&self, issuer: &IssuerId, serial: &Serial) -> Result<()> {
        let (issuer, serial) = (issuer.as_str().to_owned(), serial.to_hex());
        self.submit(move |conn, _head| {
            conn.prepare_cached(
                "DELETE FROM security_word_checks WHERE issuer = ?1 AND serial = ?2",
            )?
            .execute(params![issuer, serial])?;
            Ok(())
        })
    }

    fn set_security_word(
        &self,
        issuer: &IssuerId,
        serial: &Serial,
        hash: &str,
        actor: &Principal,
        at: UnixTime,
    ) -> Result<()> {
        let (issuer, serial, hash, actor) =
            (issuer.clone(), *serial, hash.to_owned(), actor.clone());
        self.submit(move |conn, head| {
            let exists = conn
                .prepare_cached("SELECT 1 FROM security_words WHERE issuer = ?1 AND serial = ?2")?
                .exists(params![issuer.as_str(), serial.to_hex()])?;
            if exists {
                return Err(Refusal::Refused(CaError::AlreadyExists {
                    what: format!("a security word for certificate {serial}"),
                }));
            }
            conn.prepare_cached(
                "INSERT INTO security_words (issuer, serial, hash) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![issuer.as_str(), serial.to_hex(), hash])?;
            append_event(
                conn,
                head,
                at,
                &actor,
                "set-security-word",
                format!("issuer={issuer} serial={serial}"),
            )?;
            Ok(())
        })
    }

    fn holder_security_word(&self, issuer: &IssuerId, serial: &Serial) -> Result<Option<String>> {
        self.read(
            |c| {
                let recorded: Option<String> = c
                    .prepare_cached(
                        "SELECT hash FROM security_words WHERE issuer = ?1 AND serial = ?2",
                    )?
                    .query_row(params![issuer.as_str(), serial.to_hex()], |r| r.get(0))
                    .optional()?;
                if recorded.is_some() {
                    return Ok(recorded);
                }
                // The enrollment that produced this very certificate: an enrollment records
                // the serial alone, so the certificate's issuer and holder are matched too.
                c.prepare_cached(
                    "SELECT e.security_word_hash FROM enrollments e JOIN pre_applications p ON p.id = e.pre_application \
                     JOIN certificates c ON c.serial = e.serial AND c.issuer = ?1 AND c.tckn = p.tckn \
                     WHERE e.serial = ?2 AND e.security_word_hash IS NOT NULL",
                )?
                .query_row(params![issuer.as_str(), serial.to_hex()], |r| r.get(0))
                .optional()
            },
            "read security word",
        )
    }

    fn find_certificates(&self, q: &CertificateQuery) -> Result<Vec<CertRecord>> {
        // One statement per shape, so that the T.C. Kimlik No search uses its index.
        let (sql, tckn) = match &q.tckn {
            Some(t) => (
                format!("SELECT {CERT_COLUMNS} FROM certificates WHERE tckn = ?1 AND (CAST(?2 AS TEXT) IS NULL OR status = ?2) AND status NOT IN ('reserved', 'failed') ORDER BY reserved_at DESC, serial LIMIT ?3"),
                Some(t.as_str().to_owned()),
            ),
            None => (
                format!("SELECT {CERT_COLUMNS} FROM certificates WHERE CAST(?1 AS TEXT) IS NULL AND (CAST(?2 AS TEXT) IS NULL OR status = ?2) AND status NOT IN ('reserved', 'failed') ORDER BY reserved_at DESC, serial LIMIT ?3"),
                None,
            ),
        };
        let status = q.status.map(|s| s.as_str());
        self.read(
            |c| {
                let mut st = c.prepare(&sql)?;
                let rows = st.query_map(params![tckn, status, q.limit], cert_row)?;
                rows.collect()
            },
            "find certificates",
        )
    }
}
