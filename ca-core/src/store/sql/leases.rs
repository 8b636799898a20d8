//! Leases (migration 18 of SQLite, 2 of PostgreSQL): one row per task, its holder and until
//! when. Taken through the writer, so a grant is decided against every other node's.
//! Leases are scheduling, not records: no audit record.

use super::db::{params, Connection, OptionalExtension};
use super::writer::Refusal;
use super::Backend;
use crate::error::Result;
use crate::store::LeaseStore;
use crate::UnixTime;

fn acquire(
    conn: &Connection,
    (name, holder): (&str, &str),
    now: UnixTime,
    until: UnixTime,
) -> Result<bool, Refusal> {
    let granted = conn
        .prepare_cached(
            "INSERT INTO leases (name, holder, expires_at) VALUES (?1, ?2, ?4)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
             WHERE leases.holder = excluded.holder OR leases.expires_at <= ?3",
        )?
        .execute(params![name, holder, now.secs(), until.secs()])?;
    Ok(granted == 1)
}

impl LeaseStore for Backend {
    fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: UnixTime,
        until: UnixTime,
    ) -> Result<bool> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.submit(move |conn, _| acquire(conn, (&name, &holder), now, until))
    }

    fn lease_holder(&self, name: &str) -> Result<Option<(String, UnixTime)>> {
        self.read(
            |c| {
                c.prepare_cached("SELECT holder, expires_at FROM leases WHERE name = ?1")?
                    .query_row(params![name], |r| {
                        Ok((r.get(0)?, UnixTime::from_secs(r.get(1)?)))
                    })
                    .optional()
            },
            "read lease",
        )
    }

    fn take_over_lease(
        &self,
        name: &str,
        from: &str,
        holder: &str,
        until: UnixTime,
    ) -> Result<bool> {
        let (name, from, holder) = (name.to_owned(), from.to_owned(), holder.to_owned());
        self.submit(move |conn, _| {
            let taken = conn
                .prepare_cached("UPDATE leases SET holder = ?3, expires_at = ?4 WHERE name = ?1 AND holder = ?2")?
                .execute(params![name, from, holder, until.secs()])?;
            Ok(taken == 1)
        })
    }

    fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.submit(move |conn, _| {
            conn.prepare_cached("DELETE FROM leases WHERE name = ?1 AND holder = ?2")?
                .execute(params![name, holder])?;
            Ok(())
        })
    }
}
