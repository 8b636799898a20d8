//! The holders' portal: contact details per certificate, attempts counted per key in one
//! statement, holder sessions whose SMS code is spent by the one update that finds it.

use super::db;
use super::db::{params, Connection, OptionalExtension};

use super::audit::{append_event, AuditHead};
use super::columns::{opt_time_column, tckn_column, time_column};
use super::writer::{refused, Refusal};
use super::{bad_column, Backend};
use crate::error::Result;
use crate::serial::{IssuerId, Serial};
use crate::store::portal::{
    HolderContact, HolderSession, HolderSessionStage, NewHolderSession, PortalStore,
};
use crate::{Principal, UnixTime};

/// The recipients of a certificate's holder: the mobile number and e-mail address recorded
/// with it, else those of the institutional application that produced it. A statement
/// fragment binding the issuer as `?1` and the serial as `?2`.
const RECIPIENTS: &str = "SELECT mobile AS recipient FROM holder_contacts WHERE issuer = ?1 AND serial = ?2 AND mobile IS NOT NULL \
    UNION SELECT email FROM holder_contacts WHERE issuer = ?1 AND serial = ?2 AND email IS NOT NULL \
    UNION SELECT p.mobile FROM enrollments e JOIN pre_applications p ON p.id = e.pre_application \
      JOIN certificates c ON c.serial = e.serial AND c.issuer = ?1 AND c.tckn = p.tckn \
      WHERE e.serial = ?2 AND NOT EXISTS (SELECT 1 FROM holder_contacts h WHERE h.issuer = ?1 AND h.serial = ?2) \
    UNION SELECT p.email FROM enrollments e JOIN pre_applications p ON p.id = e.pre_application \
      JOIN certificates c ON c.serial = e.serial AND c.issuer = ?1 AND c.tckn = p.tckn \
      WHERE e.serial = ?2 AND NOT EXISTS (SELECT 1 FROM holder_contacts h WHERE h.issuer = ?1 AND h.serial = ?2)";

/// Queues a notice of a certificate's status change to each of its holder's recipients, in
/// the transaction of the change (`subject_ref` `ISSUER/SERIAL/SEQ/STATUS`), so that no change
/// goes unannounced and none is announced that did not happen.
pub(super) fn queue_status_notices(
    conn: &Connection,
    issuer: &IssuerId,
    serial_hex: &str,
    (seq, to): (i64, crate::store::CertStatus),
    at: UnixTime,
) -> db::Result<()> {
    let subject = format!("{issuer}/{serial_hex}/{seq}/{to}");
    conn.prepare_cached(&format!(
        "INSERT INTO outbox (kind, subject_ref, recipient, status, next_attempt_at, created_at) \
         SELECT 'status-notice', ?3, r.recipient, 'pending', ?4, ?4 FROM ({RECIPIENTS}) r"
    ))?
    .execute(params![issuer.as_str(), serial_hex, subject, at.secs()])?;
    Ok(())
}

/// Queues the reminders of one band (`subject_ref` `ISSUER/SERIAL/DAYS`); the unique index
/// `outbox_notices` keeps each to one per certificate, band and recipient.
fn queue_reminders(
    conn: &Connection,
    days: u32,
    (after, until): (UnixTime, UnixTime),
    at: UnixTime,
) -> db::Result<u64> {
    let due: Vec<(String, String)> = {
        let mut st = conn.prepare_cached(
            "SELECT issuer, serial FROM certificates WHERE status = 'active' AND tckn IS NOT NULL AND not_after > ?1 AND not_after <= ?2",
        )?;
        let rows = st.query_map(params![after.secs(), until.secs()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        rows.collect::<db::Result<_>>()?
    };
    let mut queued = 0u64;
    for (issuer, serial) in due {
        let subject = format!("{issuer}/{serial}/{days}");
        // `WHERE true`: SQLite reads `ON CONFLICT` after `INSERT … SELECT … FROM …` as a join
        // constraint unless the SELECT has a WHERE clause.
        queued += conn
            .prepare_cached(&format!(
                "INSERT INTO outbox (kind, subject_ref, recipient, status, next_attempt_at, created_at) \
                 SELECT 'expiry-reminder', ?3, r.recipient, 'pending', ?4, ?4 FROM ({RECIPIENTS}) r WHERE true \
                 ON CONFLICT DO NOTHING"
            ))?
            .execute(params![issuer, serial, subject, at.secs()])? as u64;
    }
    Ok(queued)
}

const SESSION_COLUMNS: &str = "id, tckn, stage, code_hash, code_expires_at, code_failures, created_at, last_seen_at, expires_at";

fn session_row(r: &db::Row<'_>) -> db::Result<HolderSession> {
    let stage: String = r.get(2)?;
    let failures: i64 = r.get(5)?;
    Ok(HolderSession {
        id: r.get(0)?,
        tckn: tckn_column(r, 1)?,
        stage: HolderSessionStage::parse(&stage).map_err(|e| bad_column(2, e))?,
        code_hash: r.get(3)?,
        code_expires_at: opt_time_column(r, 4)?,
        code_failures: u32::try_from(failures).unwrap_or(u32::MAX),
        created_at: time_column(r, 6)?,
        last_seen_at: time_column(r, 7)?,
        expires_at: time_column(r, 8)?,
    })
}

fn read_session(conn: &Connection, column: &str, value: &str) -> db::Result<Option<HolderSession>> {
    // `column` is one of two names written below, never input.
    conn.prepare_cached(&format!(
        "SELECT {SESSION_COLUMNS} FROM holder_sessions WHERE {column} = ?1"
    ))?
    .query_row([value], session_row)
    .optional()
}

fn read_contact(
    conn: &Connection,
    issuer: &str,
    serial: &str,
) -> db::Result<Option<HolderContact>> {
    let contact = |r: &db::Row<'_>| {
        Ok(HolderContact {
            mobile: r.get(0)?,
            email: r.get(1)?,
        })
    };
    let recorded = conn
        .prepare_cached(
            "SELECT mobile, email FROM holder_contacts WHERE issuer = ?1 AND serial = ?2",
        )?
        .query_row(params![issuer, serial], contact)
        .optional()?;
    if recorded.is_some() {
        return Ok(recorded);
    }
    // The enrollment that produced this very certificate: its serial, and the certificate's
    // issuer and holder (an enrollment records the serial alone).
    conn.prepare_cached(
        "SELECT p.mobile, p.email FROM enrollments e JOIN pre_applications p ON p.id = e.pre_application \
         JOIN certificates c ON c.serial = e.serial AND c.issuer = ?1 AND c.tckn = p.tckn WHERE e.serial = ?2",
    )?
    .query_row(params![issuer, serial], contact)
    .optional()
}

fn start_session(
    conn: &Connection,
    s: &NewHolderSession,
    (actor, at): (&Principal, UnixTime),
    head: &mut AuditHead,
) -> Result<(), Refusal> {
    conn.prepare_cached(
        "INSERT INTO holder_sessions (id, token_sha256, tckn, stage, code_failures, created_at, last_seen_at, expires_at) VALUES (?1, ?2, ?3, 'awaiting-code', 0, ?4, ?4, ?5)",
    )?
    .execute(params![s.id, s.token_sha256, s.tckn.as_str(), at.secs(), s.expires_at.secs()])?;
    conn.prepare_cached(
        "INSERT INTO outbox (kind, subject_ref, recipient, status, next_attempt_at, created_at) VALUES ('holder-sms-code', ?1, ?2, 'pending', ?3, ?3)",
    )?
    .execute(params![s.id, s.mobile, at.secs()])?;
    append_event(
        conn,
        head,
        at,
        actor,
        "holder-security-word-accepted",
        format!("session={}", s.id),
    )?;
    Ok(())
}

/// Records `action` on session `id` when the update before it changed its row (`changed`
/// rows): a write that found the session moved on records nothing. Answers whether it did.
fn session_event(
    conn: &Connection,
    head: &mut AuditHead,
    changed: usize,
    (actor, at): (&Principal, UnixTime),
    (action, id): (&'static str, &str),
) -> Result<bool, Refusal> {
    if changed == 1 {
        append_event(conn, head, at, actor, action, format!("session={id}"))?;
    }
    Ok(changed == 1)
}

impl PortalStore for Backend {
    fn set_holder_contact(
        &self,
        issuer: &IssuerId,
        serial: &Serial,
        contact: &HolderContact,
        actor: &Principal,
        at: UnixTime,
    ) -> Result<()> {
        let (issuer, serial, contact, actor) =
            (issuer.clone(), *serial, contact.clone(), actor.clone());
        self.submit(move |conn, head| {
            let known = conn
                .prepare_cached("SELECT 1 FROM certificates WHERE issuer = ?1 AND serial = ?2")?
                .exists(params![issuer.as_str(), serial.to_hex()])?;
            if !known {
                return Err(refused("serial", format!("no certificate {serial} of {issuer}")));
            }
            // Once: two requests racing to fill it in leave the first one's.
            let n = conn
                .prepare_cached(
                    "INSERT INTO holder_contacts (issuer, serial, mobile, email) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (issuer, serial) DO NOTHING",
                )?
                .execute(params![issuer.as_str(), serial.to_hex(), contact.mobile, contact.email])?;
            if n == 0 {
                return Ok(());
            }
            append_event(
                conn,
                head,
                at,
                &actor,
                "set-holder-contact",
                format!(
                    "issuer={issuer} serial={serial} mobile={} email={}",
                    contact.mobile.is_some(),
                    contact.email.is_some()
                ),
            )
        })
    }

    fn holder_contact(&self, issuer: &IssuerId, serial: &Serial) -> Result<Option<HolderContact>> {
        let (issuer, serial) = (issuer.as_str(), serial.to_hex());
        self.read(|c| read_contact(c, issuer, &serial), "read holder contact")
    }

    fn count_portal_attempt(&self, key: &str, window_seconds: i64, at: UnixTime) -> Result<u32> {
        let key = key.to_owned();
        self.submit(move |conn, _head| {
            // The SET expressions read the row as it was: a window that ended starts again
            // with this attempt.
            let count: i64 = conn
                .prepare_cached(
                    "INSERT INTO portal_attempts (key, window_start, window_seconds, count) VALUES (?1, ?2, ?4, 1) \
                     ON CONFLICT (key) DO UPDATE SET \
                       count = CASE WHEN portal_attempts.window_start <= ?3 THEN 1 ELSE portal_attempts.count + 1 END, \
                       window_start = CASE WHEN portal_attempts.window_start <= ?3 THEN ?2 ELSE portal_attempts.window_start END, \
                       window_seconds = ?4 \
                     RETURNING count",
                )?
                .query_row(
                    params![key, at.secs(), at.secs() - window_seconds, window_seconds],
                    |r| r.get(0),
                )?;
            Ok(u32::try_from(count).unwrap_or(u32::MAX))
        })
    }

    fn forgive_portal_attempt(&self, key: &str) -> Result<()> {
        let key = key.to_owned();
        self.submit(move |conn, _head| {
            conn.prepare_cached(
                "UPDATE portal_attempts SET count = count - 1 WHERE key = ?1 AND count > 0",
            )?
            .execute([&key])?;
            Ok(())
        })
    }

    fn start_holder_session(
        &self,
        session: &NewHolderSession,
        actor: &Principal,
        at: UnixTime,
    ) -> Result<()> {
        let (session, actor) = (session.clone(), actor.clone());
        self.submit(move |conn, head| start_session(conn, &session, (&actor, at), head))
    }

    fn holder_session(&self, token_sha256: &str) -> Result<Option<HolderSession>> {
        self.read(
            |c| read_session(c, "token_sha256", token_sha256),
            "read holder session",
        )
    }

    fn holder_session_by_id(&self, id: &str) -> Result<Option<HolderSession>> {
        self.read(|c| read_session(c, "id", id), "read holder session")
    }

    fn holder_code_issued(
        &self,
        id: &str,
        code_hash: &str,
        expires_at: UnixTime,
        actor: &Principal,
        at: UnixTime,
    ) -> Result<bool> {
        let (id, code_hash, actor) = (id.to_owned(), code_hash.to_owned(), actor.clone());
        self.submit(move |conn, head| {
            let n = conn
                .prepare_cached(
                    "UPDATE holder_sessions SET code_hash = ?2, code_expires_at = ?3 WHERE id = ?1 AND stage = 'awaiting-code' AND expires_at > ?4",
                )?
                .execute(params![id, code_hash, expires_at.secs(), at.secs()])?;
            session_event(conn, head, n, (&actor, at), ("holder-sms-code-issued", &id))
        })
    }

    fn holder_code_failed(
        &self,
        id: &str,
        max_failures: u32,
        actor: &Principal,
        at: UnixTime,
    ) -> Result<Option<u32>> {
        let (id, actor) = (id.to_owned(), actor.clone());
        self.submit(move |conn, head| {
            let failures: Option<i64> = conn
                .prepare_cached(
                    "UPDATE holder_sessions SET code_failures = code_failures + 1, \
                       stage = CASE WHEN code_failures + 1 >= ?2 THEN 'ended' ELSE stage END, \
                       code_hash = CASE WHEN code_failures + 1 >= ?2 THEN NULL ELSE code_hash END \
                     WHERE id = ?1 AND stage = 'awaiting-code' RETURNING code_failures",
                )?
                .query_row(params![id, i64::from(max_failures)], |r| r.get(0))
                .optional()?;
            let Some(failures) = failures else {
                return Ok(None);
            };
            append_event(
                conn,
                head,
                at,
                &actor,
                "holder-sms-code-wrong",
                format!("session={id}"),
            )?;
            Ok(Some(u32::try_from(failures).unwrap_or(u32::MAX)))
        })
    }

    fn holder_signed_in(
        &self,
        id: &str,
        code_hash: &str,
        new_token_sha256: &str,
        actor: &Principal,
        at: UnixTime,
    ) -> Result<bool> {
        let (id, code_hash, token, actor) = (
            id.to_owned(),
            code_hash.to_owned(),
            new_token_sha256.to_owned(),
            actor.clone(),
        );
        self.submit(move |conn, head| {
            let n = conn
                .prepare_cached(
                    "UPDATE holder_sessions SET stage = 'signed-in', code_hash = NULL, token_sha256 = ?3, last_seen_at = ?4 WHERE id = ?1 AND stage = 'awaiting-code' AND code_hash = ?2",
                )?
                .execute(params![id, code_hash, token, at.secs()])?;
            session_event(conn, head, n, (&actor, at), ("holder-signed-in", &id))
        })
    }

    fn touch_holder_session(&self, id: &str, at: UnixTime) -> Result<()> {
        let id = id.to_owned();
        self.submit(move |conn, _head| {
            conn.prepare_cached(
                "UPDATE holder_sessions SET last_seen_at = ?2 WHERE id = ?1 AND stage = 'signed-in'",
            )?
            .execute(params![id, at.secs()])?;
            Ok(())
        })
    }

    fn end_holder_session(&self, id: &str, actor: &Principal, at: UnixTime) -> Result<()> {
        let (id, actor) = (id.to_owned(), actor.clone());
        self.submit(move |conn, head| {
            let n = conn
                .prepare_cached(
                    "UPDATE holder_sessions SET stage = 'ended', code_hash = NULL WHERE id = ?1 AND stage <> 'ended'",
                )?
                .execute([&id])?;
            session_event(conn, head, n, (&actor, at), ("holder-signed-out", &id))?;
            Ok(())
        })
    }

    fn sweep_portal(&self, at: UnixTime, sessions_before: UnixTime) -> Result<u64> {
        self.submit(move |conn, _head| {
            // Each counter by its own window: a day's counter outlives the half-hour ones.
            let attempts = conn
                .prepare_cached(
                    "DELETE FROM portal_attempts WHERE window_start + window_seconds <= ?1",
                )?
                .execute([at.secs()])?;
            let sessions = conn
                .prepare_cached("DELETE FROM holder_sessions WHERE expires_at < ?1")?
                .execute([sessions_before.secs()])?;
            Ok((attempts + sessions) as u64)
        })
    }

    fn queue_expiry_reminders(
        &self,
        days: u32,
        expiring: (UnixTime, UnixTime),
        at: UnixTime,
    ) -> Result<u64> {
        self.submit(move |conn, _head| Ok(queue_reminders(conn, days, expiring, at)?))
    }

    fn replace_security_words(
        &self,
        holder: &crate::Tckn,
        certificates: &[(IssuerId, Serial)],
        hash: &str,
        actor: &Principal,
        at: UnixTime,
    ) -> Result<()> {
        let (holder, certificates, hash, actor) =
            (*holder, certificates.to_vec(), hash.to_owned(), actor.clone());
        self.submit(move |conn, head| {
            let subject = format!("{holder}/{}", at.secs());
            for (issuer, serial) in &certificates {
                conn.prepare_cached(
                    "INSERT INTO security_words (issuer, serial, hash) VALUES (?1, ?2, ?3) ON CONFLICT (issuer, serial) DO UPDATE SET hash = excluded.hash",
                )?
                .execute(params![issuer.as_str(), serial.to_hex(), hash])?;
                // One notice per recipient, whichever certificates name it (`WHERE true`: see
                // `queue_reminders`).
                conn.prepare_cached(&format!(
                    "INSERT INTO outbox (kind, subject_ref, recipient, status, next_attempt_at, created_at) \
                     SELECT 'security-word-notice', ?3, r.recipient, 'pending', ?4, ?4 FROM ({RECIPIENTS}) r WHERE true \
                     ON CONFLICT DO NOTHING"
                ))?
                .execute(params![issuer.as_str(), serial.to_hex(), subject, at.secs()])?;
                append_event(
                    conn,
                    head,
                    at,
                    &actor,
                    "replace-security-word",
                    format!("issuer={issuer} serial={serial}"),
                )?;
            }
            Ok(())
        })
    }
}
