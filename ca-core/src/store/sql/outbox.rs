//! The notification outbox: messages queued by the writes
//! that make them due, their delivery attempts counted in the row (`attempts + 1`), and the
//! access password's hash recorded before its message goes out.

use super::db;
use super::db::{params, Connection};

use super::audit::{append_audit, event_entry, AuditHead};
use super::writer::{refused, Refusal};
use super::{bad_column, Backend};
use crate::error::Result;
use crate::store::{OutboxAttempt, OutboxKind, OutboxMessage, OutboxStatus, OutboxStore};
use crate::UnixTime;

/// The columns [`message_row`] reads, in its order.
const MESSAGE_COLUMNS: &str = "id, kind, subject_ref, recipient, attempts";

/// A message from [`MESSAGE_COLUMNS`]; a kind nesca does not know is a damaged row.
fn message_row(r: &db::Row<'_>) -> db::Result<OutboxMessage> {
    let kind: String = r.get(1)?;
    Ok(OutboxMessage {
        id: r.get(0)?,
        kind: OutboxKind::parse(&kind).map_err(|e| bad_column(1, e))?,
        subject_ref: r.get(2)?,
        recipient: r.get(3)?,
        attempts: r.get(4)?,
    })
}

/// Due messages, oldest first; codes and passwords (someone is waiting for them) before
/// notices and reminders, so that a burst of notices delays no sign-in.
fn read_outbox_due(conn: &Connection, at: UnixTime, limit: u32) -> db::Result<Vec<OutboxMessage>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM outbox WHERE status = 'pending' AND next_attempt_at <= ?1 ORDER BY CASE WHEN kind IN ('status-notice', 'expiry-reminder', 'security-word-notice') THEN 1 ELSE 0 END, next_attempt_at, id LIMIT ?2"
    ))?;
    let rows = st.query_map(params![at.secs(), limit], message_row)?;
    rows.collect()
}

fn read_outbox_all(conn: &Connection) -> db::Result<Vec<(OutboxMessage, OutboxStatus)>> {
    let mut st = conn.prepare(&format!(
        "SELECT {MESSAGE_COLUMNS}, status FROM outbox ORDER BY id"
    ))?;
    let rows = st.query_map([], |r| {
        let status: String = r.get(5)?;
        Ok((
            message_row(r)?,
            OutboxStatus::parse(&status).map_err(|e| bad_column(5, e))?,
        ))
    })?;
    rows.collect()
}

/// Records the access password's hash of a pre-application before its e-mail goes out: a
/// crash after this and before the message is marked sent sends a new password at the retry,
/// and only the latest one works.
fn set_access_password(
    conn: &Connection,
    id: &str,
    hash: &str,
    actor: &crate::Principal,
    at: UnixTime,
    head: &mut AuditHead,
) -> Result<(), Refusal> {
    let n = conn
        .prepare_cached(
            "UPDATE pre_applications SET password_hash = ?1 WHERE id = ?2 AND status = 'invited'",
        )?
        .execute(params![hash, id])?;
    if n != 1 {
        return Err(refused(
            "pre_application",
            format!("no invited pre-application {id}"),
        ));
    }
    append_audit(
        conn,
        head,
        event_entry(
            at,
            actor,
            "access-password-issued",
            String::new(),
            format!("pre_application={id}"),
        ),
    )?;
    Ok(())
}

/// The outcome of one delivery attempt of a pending message, with its audit record; a
/// message no longer pending is left alone.
fn outbox_attempt(
    conn: &Connection,
    id: i64,
    attempt: &OutboxAttempt,
    (actor, at): (&crate::Principal, UnixTime),
    head: &mut AuditHead,
) -> Result<(), Refusal> {
    let (n, action, detail) = match attempt {
        OutboxAttempt::Sent => (
            conn.prepare_cached(
                "UPDATE outbox SET status = 'sent', attempts = attempts + 1, sent_at = ?1, last_error = NULL WHERE id = ?2 AND status = 'pending'",
            )?
            .execute(params![at.secs(), id])?,
            "outbox-sent",
            format!("outbox={id}"),
        ),
        OutboxAttempt::Failed { error, retry_at } => (
            conn.prepare_cached(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?1, next_attempt_at = ?2 WHERE id = ?3 AND status = 'pending'",
            )?
            .execute(params![error, retry_at.secs(), id])?,
            "outbox-failed",
            // The error stays in the row (for the operator), out of the chained log.
            format!("outbox={id} retry_at={retry_at}"),
        ),
    };
    if n == 1 {
        append_audit(
            conn,
            head,
            event_entry(at, actor, action, String::new(), detail),
        )?;
    }
    Ok(())
}

impl OutboxStore for Backend {
    fn outbox_due(&self, at: UnixTime, limit: u32) -> Result<Vec<OutboxMessage>> {
        self.read(|c| read_outbox_due(c, at, limit), "read outbox")
    }

    fn outbox(&self) -> Result<Vec<(OutboxMessage, OutboxStatus)>> {
        self.read(read_outbox_all, "read outbox")
    }

    fn set_access_password(
        &self,
        id: &str,
        hash: &str,
        actor: &crate::Principal,
        at: UnixTime,
    ) -> Result<()> {
        let (id, hash, actor) = (id.to_owned(), hash.to_owned(), actor.to_owned());
        self.submit(move |conn, head| set_access_password(conn, &id, &hash, &actor, at, head))
    }

    fn outbox_attempt(
        &self,
        id: i64,
        attempt: OutboxAttempt,
        actor: &crate::Principal,
        at: UnixTime,
    ) -> Result<()> {
        let actor = actor.to_owned();
        self.submit(move |conn, head| outbox_attempt(conn, id, &attempt, (&actor, at), head))
    }
}
