//! The notification outbox in SQLite (migrations 6 and 7): messages queued by the writes
//! that make them due, their delivery attempts counted in the row (`attempts + 1`), and the
//! access password's hash recorded before its message goes out.

use rusqlite::{params, Connection};

use super::audit::{append_audit, event_entry, AuditHead};
use super::writer::{refused, Refusal};
use super::SqliteStore;
use crate::error::Result;
use crate::store::{OutboxMessage, OutboxStore};

fn read_outbox_due(conn: &Connection, at: i64, limit: u32) -> rusqlite::Result<Vec<OutboxMessage>> {
    let mut st = conn.prepare_cached(
        "SELECT id, kind, subject_ref, recipient, attempts FROM outbox WHERE status = 'pending' AND next_attempt_at <= ?1 ORDER BY next_attempt_at, id LIMIT ?2",
    )?;
    let rows = st.query_map(params![at, limit], |r| {
        Ok(OutboxMessage {
            id: r.get(0)?,
            kind: r.get(1)?,
            subject_ref: r.get(2)?,
            recipient: r.get(3)?,
            attempts: r.get(4)?,
        })
    })?;
    rows.collect()
}

fn read_outbox_all(conn: &Connection) -> rusqlite::Result<Vec<(OutboxMessage, String)>> {
    let mut st = conn.prepare(
        "SELECT id, kind, subject_ref, recipient, attempts, status FROM outbox ORDER BY id",
    )?;
    let rows = st.query_map([], |r| {
        Ok((
            OutboxMessage {
                id: r.get(0)?,
                kind: r.get(1)?,
                subject_ref: r.get(2)?,
                recipient: r.get(3)?,
                attempts: r.get(4)?,
            },
            r.get(5)?,
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
    actor: &str,
    at: i64,
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

/// The outcome of one delivery attempt.
fn outbox_attempt(
    conn: &Connection,
    id: i64,
    result: &std::result::Result<(), (String, i64)>,
    at: i64,
) -> Result<(), Refusal> {
    match result {
        Ok(()) => conn
            .prepare_cached(
                "UPDATE outbox SET status = 'sent', attempts = attempts + 1, sent_at = ?1, last_error = NULL WHERE id = ?2 AND status = 'pending'",
            )?
            .execute(params![at, id])?,
        Err((error, next)) => conn
            .prepare_cached(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?1, next_attempt_at = ?2 WHERE id = ?3 AND status = 'pending'",
            )?
            .execute(params![error, next, id])?,
    };
    Ok(())
}

impl OutboxStore for SqliteStore {
    fn outbox_due(&self, at: i64, limit: u32) -> Result<Vec<OutboxMessage>> {
        self.read(|c| read_outbox_due(c, at, limit), "read outbox")
    }

    fn outbox(&self) -> Result<Vec<(OutboxMessage, String)>> {
        self.read(read_outbox_all, "read outbox")
    }

    fn set_access_password(&self, id: &str, hash: &str, actor: &str, at: i64) -> Result<()> {
        let (id, hash, actor) = (id.to_owned(), hash.to_owned(), actor.to_owned());
        self.submit(move |conn, head| set_access_password(conn, &id, &hash, &actor, at, head))
    }

    fn outbox_attempt(
        &self,
        id: i64,
        result: std::result::Result<(), (String, i64)>,
        at: i64,
    ) -> Result<()> {
        self.submit(move |conn, _| outbox_attempt(conn, id, &result, at))
    }
}
