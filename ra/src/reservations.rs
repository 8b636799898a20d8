//! Reservations whose signing never completed.
//!
//! The engine reserves a serial (with its linted TBSCertificate) before the HSM signs, and
//! completes it once the signature is checked and stored. A process killed in between leaves
//! the row `reserved` for ever. Nobody holds a certificate under such a serial: the engine hands
//! a certificate out only after it is stored. So at start (`nesca serve`, `nesca ocsp`), a
//! reservation older than [`STALE_RESERVATION_SECONDS`] is resolved as `failed`, with its audit
//! record by `serve-start`; its serial stays on record and is never reused, and OCSP answers it
//! as never issued (docs/STANDARDS.md, "OCSP").
//!
//! The bound leaves alone a reservation another process (a `nesca issue` sharing the store) is
//! signing right now: an issuance takes milliseconds, ten minutes is far beyond every retry
//! of the HSM layer.

use std::sync::Arc;

use ca_core::clock::Clock;
use ca_core::store::Store;
use ca_core::{IssuerId, Principal, Serial, SystemTask};

use crate::error::Result;

/// How old a reservation must be before start-up resolves it as failed: 10 minutes.
pub const STALE_RESERVATION_SECONDS: i64 = 600;

/// The reason recorded on each resolved reservation (its `fail` audit record's detail).
pub const STALE_RESERVATION_REASON: &str =
    "signing never completed (the process stopped between reservation and storage); resolved at start";

/// Resolves every reservation older than [`STALE_RESERVATION_SECONDS`] whose signing never
/// completed as `failed`, by `Principal::System(SystemTask::Startup)`; returns them.
pub fn fail_stale_reservations(
    store: &Arc<dyn Store>,
    clock: &dyn Clock,
) -> Result<Vec<(IssuerId, Serial)>> {
    fail_stale_reservations_by(store, clock, SystemTask::Startup)
}

/// [`fail_stale_reservations`] by `task`: `nesca serve`'s sweep
/// ([`SystemTask::ReservationSweep`]) resolves those another node left while it runs.
pub fn fail_stale_reservations_by(
    store: &Arc<dyn Store>,
    clock: &dyn Clock,
    task: SystemTask,
) -> Result<Vec<(IssuerId, Serial)>> {
    let now = clock.now_unix();
    let failed = store.fail_stale_reservations(
        now.plus_secs(-STALE_RESERVATION_SECONDS),
        STALE_RESERVATION_REASON,
        &Principal::System(task),
        now,
    )?;
    Ok(failed)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ca_core::store::prelude::*;
    use ca_core::store::{CertStatus, Reservation, Reserved, SubjectRecord};
    use ca_core::testkit::fixture;

    use super::*;

    #[test]
    fn only_reservations_older_than_the_bound_are_failed_by_serve_start() {
        let f = fixture();
        let store: Arc<dyn Store> = f.store.clone();
        let reserve = |serial: Serial| {
            let r = Reservation {
                issuer: f.ca.context.id.clone(),
                serial,
                profile: ca_core::profile::ProfileName::Nes,
                subject: SubjectRecord {
                    subject: "CN=AYŞE YILMAZ".into(),
                    ..SubjectRecord::default()
                },
                not_before: f.clock.now_unix(),
                not_after: f.clock.now_unix().plus_secs(86_400),
                tbs_der: vec![0x30, 0x00],
                actor: Principal::HostOperator,
                at: f.clock.now_unix(),
            };
            assert_eq!(store.reserve(r).unwrap(), Reserved::Ok);
        };
        let (old, young) = (Serial::random(), Serial::random());
        reserve(old);
        f.clock
            .advance(Duration::from_secs(STALE_RESERVATION_SECONDS as u64 - 60));
        reserve(young);
        f.clock.advance(Duration::from_secs(61));

        let failed = fail_stale_reservations(&store, f.clock.as_ref()).unwrap();
        assert_eq!(failed, vec![(f.ca.context.id.clone(), old)]);
        let status = |s: &Serial| store.get(None, s).unwrap().unwrap().status;
        assert_eq!(status(&old), CertStatus::Failed);
        assert_eq!(status(&young), CertStatus::Reserved);
        assert!(fail_stale_reservations(&store, f.clock.as_ref())
            .unwrap()
            .is_empty());
        assert_eq!(store.verify_audit().unwrap().first_break, None);
    }
}
