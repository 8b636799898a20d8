//! Front channels' applications: recorded once per (channel, reference), finished
//! once, and abandoned at start when a crash cut them off.

use super::db;
use super::db::{params, Connection, OptionalExtension};
use crate::card_key::WrappedCardKey;

use super::audit::{append_audit, event_entry, AuditHead};
use super::commitments;
use super::writer::{after_writes, Refusal};
use super::{bad_column, time_column, Backend};
use crate::error::{CaError, Result};
use crate::serial::{IssuerId, Serial};
use crate::store::{
    ApplicationIssued, ApplicationOutcome, ApplicationStatus, ApplicationStore, ChannelApplication,
};
use crate::{ChannelName, UnixTime};

/// The issuer of a serial: the index `certificates_serial` (migration 10).
pub(super) const ISSUER_OF_SERIAL: &str = "SELECT issuer FROM certificates WHERE serial = ?1";

/// Records a pending application, or answers the one recorded under its reference.
fn begin_application(
    conn: &Connection,
    (channel, channel_ref): (&str, &str),
    (actor, at): (&crate::Principal, UnixTime),
    head: &mut AuditHead,
) -> Result<Option<ChannelApplication>, Refusal> {
    if let Some(seen) = read_application(conn, channel, channel_ref)? {
        return Ok(Some(seen));
    }
    conn.prepare_cached(
        "INSERT INTO channel_applications (channel, channel_ref, status, created_at, updated_at) VALUES (?1, ?2, 'pending', ?3, ?3)",
    )?
    .execute(params![channel, channel_ref, at.secs()])?;
    append_audit(
        conn,
        head,
        event_entry(
            at,
            actor,
            "application",
            String::new(),
            format!("channel={channel} channel_ref={channel_ref}"),
        ),
    )?;
    Ok(None)
}

/// Records a pending application's outcome (and the commitment its certificate awaits).
pub(super) fn finish_application(
    conn: &Connection,
    head: &mut AuditHead,
    (channel, channel_ref): (&str, &str),
    outcome: &ApplicationOutcome,
    (actor, at): (&crate::Principal, UnixTime),
) -> Result<(), Refusal> {
    let (status, action, serial, error, wrapped_key) = match outcome {
        ApplicationOutcome::Issued(issued) => (
            ApplicationStatus::Issued,
            "application-issued",
            Some(issued.serial.to_hex()),
            None,
            issued.wrapped_key.as_ref().map(WrappedCardKey::to_record),
        ),
        ApplicationOutcome::Refused(e) => (
            ApplicationStatus::Refused,
            "application-refused",
            None,
            Some(e.clone()),
            None,
        ),
    };
    let n = conn
        .prepare_cached(
            "UPDATE channel_applications SET status = ?1, serial = ?2, error = ?3, updated_at = ?4, wrapped_key = ?7 WHERE channel = ?5 AND channel_ref = ?6 AND status = 'pending'",
        )?
        .execute(params![status.as_str(), serial, error, at.secs(), channel, channel_ref, wrapped_key])?;
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
            action,
            serial.unwrap_or_default(),
            format!("channel={channel} channel_ref={channel_ref}"),
        ),
    )?;
    if let ApplicationOutcome::Issued(ApplicationIssued {
        serial,
        commitment: Some(c),
        ..
    }) = outcome
    {
        let issuer = conn
            .prepare_cached(ISSUER_OF_SERIAL)?
            .query_row([serial.to_hex()], |r| r.get::<_, String>(0))
            .optional()?
            .ok_or_else(|| {
                Refusal::Fatal(CaError::NotFound {
                    serial: serial.to_hex(),
                })
            })?;
        let issuer = IssuerId::parse(&issuer)
            .map_err(|e| Refusal::Fatal(CaError::invalid("issuer", e.rule())))?;
        commitments::insert(conn, &issuer, serial, channel, channel_ref, c, at.secs())
            .map_err(after_writes)?;
    }
    Ok(())
}

/// Runs one statement and, when it changed rows, appends its audit event (`detail` given the
/// count) in the same transaction; returns how many rows changed.
fn change_with_event(
    conn: &Connection,
    head: &mut AuditHead,
    (sql, params): (&str, impl db::Params),
    (actor, at): (&crate::Principal, UnixTime),
    action: &'static str,
    detail: impl FnOnce(usize) -> String,
) -> Result<usize, Refusal> {
    let n = conn.prepare_cached(sql)?.execute(params)?;
    if n > 0 {
        append_audit(conn, head, event_entry(at, actor, action, "", detail(n)))?;
    }
    Ok(n)
}

/// Refuses every pending application with `reason`; returns how many.
fn abandon_pending(
    conn: &Connection,
    reason: &str,
    by: (&crate::Principal, UnixTime),
    head: &mut AuditHead,
) -> Result<u64, Refusal> {
    let n = change_with_event(
        conn,
        head,
        (
            "UPDATE channel_applications SET status = 'refused', error = ?1, updated_at = ?2 WHERE status = 'pending'",
            params![reason, by.1.secs()],
        ),
        by,
        "applications-abandoned",
        |n| format!("count={n} reason={reason}"),
    )?;
    Ok(n as u64)
}

/// Forgets a pending application (a failure that was not its fault); false when it is not
/// pending.
fn release_pending(
    conn: &Connection,
    (channel, channel_ref): (&str, &str),
    by: (&crate::Principal, UnixTime),
    head: &mut AuditHead,
) -> Result<bool, Refusal> {
    let n = change_with_event(
        conn,
        head,
        (
            "DELETE FROM channel_applications WHERE channel = ?1 AND channel_ref = ?2 AND status = 'pending'",
            params![channel, channel_ref],
        ),
        by,
        "application-released",
        |_| format!("channel={channel} channel_ref={channel_ref}"),
    )?;
    Ok(n > 0)
}

/// An application by its channel reference.
pub(super) fn read_application(
    conn: &Connection,
    channel: &str,
    channel_ref: &str,
) -> db::Result<Option<ChannelApplication>> {
    conn.prepare_cached(
        "SELECT status, serial, error, created_at, wrapped_key, channel FROM channel_applications WHERE channel = ?1 AND channel_ref = ?2",
    )?
    .query_row(params![channel, channel_ref], |r| {
        let status: String = r.get(0)?;
        let serial: Option<String> = r.get(1)?;
        let channel: String = r.get(5)?;
        Ok(ChannelApplication {
            channel: ChannelName::parse(&channel).map_err(|e| bad_column(5, e.into()))?,
            channel_ref: channel_ref.to_owned(),
            status: ApplicationStatus::parse(&status).map_err(|e| bad_column(0, e))?,
            serial: match serial {
                Some(hex) => Some(Serial::parse_hex(&hex).map_err(|e| {
                    bad_column(1, CaError::invalid("serial", e.rule()))
                })?),
                None => None,
            },
            error: r.get(2)?,
            wrapped_key: match r.get::<_, Option<String>>(4)? {
                // A record that does not decode is refused where it is read, by field.
                Some(text) => Some(WrappedCardKey::from_record(&text).map_err(|e| {
                    db::conversion_error(4, Box::new(e))
                })?),
                None => None,
            },
            created_at: time_column(r, 3)?,
        })
    })
    .optional()
}

impl ApplicationStore for Backend {
    fn begin_application(
        &self,
        channel: &ChannelName,
        channel_ref: &str,
        actor: &crate::Principal,
        at: UnixTime,
    ) -> Result<Option<ChannelApplication>> {
        let (channel, channel_ref, actor) = (
            channel.to_string(),
            channel_ref.to_owned(),
            actor.to_owned(),
        );
        self.submit(move |conn, head| {
            begin_application(conn, (&channel, &channel_ref), (&actor, at), head)
        })
    }

    fn finish_application(
        &self,
        channel: &ChannelName,
        channel_ref: &str,
        outcome: ApplicationOutcome,
        actor: &crate::Principal,
        at: UnixTime,
    ) -> Result<()> {
        let (channel, channel_ref, actor) = (
            channel.to_string(),
            channel_ref.to_owned(),
            actor.to_owned(),
        );
        self.submit(move |conn, head| {
            finish_application(conn, head, (&channel, &channel_ref), &outcome, (&actor, at))
        })
    }

    fn abandon_pending_applications(
        &self,
        reason: &str,
        actor: &crate::Principal,
        at: UnixTime,
    ) -> Result<u64> {
        let (reason, actor) = (reason.to_owned(), actor.to_owned());
        self.submit(move |conn, head| abandon_pending(conn, &reason, (&actor, at), head))
    }

    fn release_pending_application(
        &self,
        channel: &ChannelName,
        channel_ref: &str,
        actor: &crate::Principal,
        at: UnixTime,
    ) -> Result<bool> {
        let (channel, channel_ref, actor) = (
            channel.to_string(),
            channel_ref.to_owned(),
            actor.to_owned(),
        );
        self.submit(move |conn, head| {
            release_pending(conn, (&channel, &channel_ref), (&actor, at), head)
        })
    }

    fn application(
        &self,
        channel: &ChannelName,
        channel_ref: &str,
    ) -> Result<Option<ChannelApplication>> {
        self.read(
            |c| read_application(c, channel.as_str(), channel_ref),
            "read application",
        )
    }
}
