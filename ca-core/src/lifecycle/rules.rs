//! Which transitions the state machine allows. Pure, so every store applies the same rules
//! inside its own write transaction.

use super::{LifecycleAction, RevocationReason};
use crate::error::{CaError, Result};
use crate::store::CertStatus;
use crate::UnixTime;

/// Whether a certificate is live at `at`: in use (active or suspended) and within its
/// validity, notAfter included (RFC 5280 §4.1.2.5: valid "through" notAfter). The one
/// meaning of "live" for the rules that need it (a status change, a commitment's supersede,
/// a renewal); a store query that selects live certificates says the same in SQL.
pub fn is_live(status: CertStatus, not_after: UnixTime, at: UnixTime) -> bool {
    matches!(status, CertStatus::Active | CertStatus::Suspended) && at <= not_after
}

/// The status `action` leads to from `current`, or the rule it breaks.
///
/// An expired certificate's status no longer changes
/// (relying parties stop checking it at notAfter). Revocation is final. An invalidity date
/// goes only with keyCompromise and never lies in the future.
pub fn next_status(
    current: CertStatus,
    action: &LifecycleAction,
    not_after: UnixTime,
    now: UnixTime,
) -> Result<CertStatus> {
    match current {
        CertStatus::Reserved | CertStatus::Failed => {
            return Err(CaError::invalid(
                "serial",
                "no certificate was issued under this serial",
            ))
        }
        CertStatus::Revoked => {
            return Err(CaError::invalid(
                "serial",
                "the certificate is revoked; revocation is final",
            ))
        }
        CertStatus::Active | CertStatus::Suspended => {}
    }
    if !is_live(current, not_after, now) {
        return Err(CaError::invalid(
            "serial",
            format!(
                "the certificate expired at {}; its status can no longer change",
                crate::rfc3339(not_after)
            ),
        ));
    }
    match (current, action) {
        (CertStatus::Active, LifecycleAction::Suspend) => Ok(CertStatus::Suspended),
        (CertStatus::Suspended, LifecycleAction::Suspend) => Err(CaError::invalid(
            "serial",
            "the certificate is already suspended",
        )),
        (CertStatus::Suspended, LifecycleAction::Release) => Ok(CertStatus::Active),
        (_, LifecycleAction::Release) => Err(CaError::invalid(
            "serial",
            "the certificate is not suspended",
        )),
        (
            _,
            LifecycleAction::Revoke {
                reason,
                invalidity_date,
            },
        ) => {
            if let Some(d) = invalidity_date {
                if *reason != Some(RevocationReason::KeyCompromise) {
                    return Err(CaError::invalid(
                        "invalidity_date",
                        "only a revocation for keyCompromise carries an invalidity date",
                    ));
                }
                if *d > now {
                    return Err(CaError::invalid(
                        "invalidity_date",
                        "must not lie in the future",
                    ));
                }
            }
            Ok(CertStatus::Revoked)
        }
        _ => unreachable_transition(),
    }
}

/// Every (status, action) pair is matched above; kept as an error, not a panic.
fn unreachable_transition() -> Result<CertStatus> {
    Err(CaError::invalid("action", "transition not allowed"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use CertStatus::*;

    const REVOKE: LifecycleAction = LifecycleAction::Revoke {
        reason: None,
        invalidity_date: None,
    };

    #[test]
    fn live_means_in_use_through_not_after() {
        let end = UnixTime::from_secs(1000);
        for status in [Active, Suspended] {
            assert!(is_live(status, end, UnixTime::from_secs(999)));
            assert!(
                is_live(status, end, end),
                "notAfter itself is within the validity"
            );
            assert!(!is_live(status, end, UnixTime::from_secs(1001)));
        }
        for status in [Revoked, Reserved, Failed] {
            assert!(!is_live(status, end, UnixTime::from_secs(0)));
        }
    }

    fn rule(current: CertStatus, a: LifecycleAction) -> std::result::Result<CertStatus, String> {
        next_status(
            current,
            &a,
            UnixTime::from_secs(1000),
            UnixTime::from_secs(500),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn the_state_machine() {
        assert_eq!(rule(Active, LifecycleAction::Suspend), Ok(Suspended));
        assert_eq!(rule(Suspended, LifecycleAction::Release), Ok(Active));
        assert_eq!(rule(Active, REVOKE), Ok(Revoked));
        assert_eq!(rule(Suspended, REVOKE), Ok(Revoked));
        assert!(rule(Revoked, LifecycleAction::Release)
            .unwrap_err()
            .contains("final"));
        assert!(rule(Revoked, REVOKE).unwrap_err().contains("final"));
        assert!(rule(Active, LifecycleAction::Release)
            .unwrap_err()
            .contains("not suspended"));
        assert!(rule(Suspended, LifecycleAction::Suspend)
            .unwrap_err()
            .contains("already"));
        assert!(rule(Reserved, REVOKE)
            .unwrap_err()
            .contains("no certificate was issued"));
        assert!(rule(Failed, LifecycleAction::Suspend)
            .unwrap_err()
            .contains("no certificate"));
    }

    #[test]
    fn expiry_and_invalidity_date() {
        let expired = next_status(
            Active,
            &REVOKE,
            UnixTime::from_secs(100),
            UnixTime::from_secs(500),
        )
        .unwrap_err()
        .to_string();
        assert!(
            expired.contains("expired at 1970-01-01T00:01:40Z"),
            "{expired}"
        );
        let kc = |d| LifecycleAction::Revoke {
            reason: Some(RevocationReason::KeyCompromise),
            invalidity_date: Some(UnixTime::from_secs(d)),
        };
        assert_eq!(rule(Active, kc(400)), Ok(Revoked));
        assert!(rule(Active, kc(501)).unwrap_err().contains("future"));
        let other = LifecycleAction::Revoke {
            reason: Some(RevocationReason::Superseded),
            invalidity_date: Some(UnixTime::from_secs(1)),
        };
        assert!(rule(Active, other)
            .unwrap_err()
            .starts_with("invalidity_date:"));
    }
}
