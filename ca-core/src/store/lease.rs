//! Leases: which process (node) runs a task that must run in one place at a time — a CA's
//! CRL publication, the commitment sweep, the outbox, production — when several share the
//! store. A lease is held until a time; its holder renews it while it works, and another
//! takes it over once it has run out (a holder that died stops renewing).

use crate::error::Result;
use crate::UnixTime;

/// Leases on named tasks.
pub trait LeaseStore: Send + Sync {
    /// Takes lease `name` for `holder` until `until`, or renews it: granted when nobody holds
    /// it, when `holder` holds it, or when its holder's lease ran out at `now`; refused (with
    /// nothing changed) while another holder's lease runs.
    fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: UnixTime,
        until: UnixTime,
    ) -> Result<bool>;
    /// Gives lease `name` up if `holder` holds it.
    fn release_lease(&self, name: &str, holder: &str) -> Result<()>;
    /// Who holds lease `name`, and until when (`None`: nobody has taken it, or it was given
    /// up).
    fn lease_holder(&self, name: &str) -> Result<Option<(String, UnixTime)>>;
    /// Takes lease `name` for `holder` until `until` from `from`, a holder known to be gone
    /// (a process of this host that no longer runs); refused when someone else holds it now.
    fn take_over_lease(
        &self,
        name: &str,
        from: &str,
        holder: &str,
        until: UnixTime,
    ) -> Result<bool>;
}
