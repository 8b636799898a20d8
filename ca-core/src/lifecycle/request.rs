//! What a holder asks for, typed at the edge.

use std::fmt;

use rand::RngCore;

use super::RevocationReason;
use crate::error::{CaError, Result};
use crate::serial::{IssuerId, Serial};
use crate::store::TransitionKind;
use crate::{Tckn, UnixTime};

/// The caller's id for one lifecycle request: the same id twice is the same request, so a
/// retry after a lost answer cannot apply a change twice. 1–128 characters of
/// `A–Z a–z 0–9 . _ : -`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(String);

impl RequestId {
    pub const MAX_LEN: usize = 128;

    pub fn new(s: &str) -> Result<RequestId> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-');
        if s.is_empty() || s.len() > Self::MAX_LEN || !s.chars().all(ok_char) {
            return Err(CaError::invalid(
                "request_id",
                format!(
                    "must be 1 to {} characters of A-Z, a-z, 0-9, '.', '_', ':', '-'",
                    Self::MAX_LEN
                ),
            ));
        }
        Ok(RequestId(s.to_owned()))
    }

    /// The prefixes of the ids nesca gives its own transitions: the commitment process's
    /// (`store/sql/commitments.rs`: `{kind}-{serial}`) and the admin API's. A request from
    /// outside must not take one: the id would then be spent, and nesca's own change refused,
    /// for the certificate it names.
    pub const RESERVED_PREFIXES: [&'static str; 5] = [
        "commitment-hold-",
        "commitment-release-",
        "superseded-by-",
        "commitment-expired-",
        // The admin API's: `admin-{x-request-id}`, `admin-{dual-control request id}[-serial]`.
        "admin-",
    ];

    /// Whether the id is one of those the commitment process keeps for itself.
    pub fn is_reserved(&self) -> bool {
        Self::RESERVED_PREFIXES
            .iter()
            .any(|p| self.0.starts_with(p))
    }

    /// A fresh random id (128 bits from the OS CSPRNG), for callers that do not bring one.
    pub fn random() -> RequestId {
        let mut b = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut b);
        RequestId(hex::encode(b))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The change asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleAction {
    /// Suspension: revoked with reason certificateHold until released.
    Suspend,
    /// Release of a suspension: the certificate is good again.
    Release,
    /// Final revocation. `reason: None` is unspecified (no reasonCode is written);
    /// `invalidity_date` (RFC 5280 §5.3.2) only with keyCompromise.
    Revoke {
        reason: Option<RevocationReason>,
        invalidity_date: Option<UnixTime>,
    },
}

impl LifecycleAction {
    /// The verb as the audit log and the store record it.
    pub fn name(&self) -> &'static str {
        self.kind().as_str()
    }

    /// The verb, as a transition records it.
    pub fn kind(&self) -> TransitionKind {
        match self {
            LifecycleAction::Suspend => TransitionKind::Suspend,
            LifecycleAction::Release => TransitionKind::Release,
            LifecycleAction::Revoke { .. } => TransitionKind::Revoke,
        }
    }

    /// The reason written into CRLs and OCSP for the resulting state.
    pub fn reason(&self) -> Option<RevocationReason> {
        match self {
            LifecycleAction::Suspend => Some(RevocationReason::CertificateHold),
            LifecycleAction::Release => None,
            LifecycleAction::Revoke { reason, .. } => *reason,
        }
    }

    /// invalidityDate (RFC 5280 §5.3.2) of a revocation for keyCompromise.
    pub fn invalidity_date(&self) -> Option<UnixTime> {
        match self {
            LifecycleAction::Revoke {
                invalidity_date, ..
            } => *invalidity_date,
            _ => None,
        }
    }

    /// Builds the action from its command-line/API parts, refusing what a holder cannot ask.
    pub fn parse(
        verb: &str,
        reason: Option<&str>,
        invalidity_date: Option<UnixTime>,
    ) -> Result<LifecycleAction> {
        let reason = reason
            .map(|r| r.parse::<RevocationReason>().map_err(CaError::from))
            .transpose()?;
        let action = match verb {
            "suspend" => {
                if reason.is_some_and(|r| r != RevocationReason::CertificateHold) {
                    return Err(CaError::invalid(
                        "reason",
                        "a suspension's reason is certificateHold",
                    ));
                }
                LifecycleAction::Suspend
            }
            "release" | "unsuspend" => {
                if reason.is_some() {
                    return Err(CaError::invalid(
                        "reason",
                        "releasing a suspension takes no reason",
                    ));
                }
                LifecycleAction::Release
            }
            "revoke" => {
                if let Some(r) = reason {
                    if !RevocationReason::FOR_REVOCATION.contains(&r) {
                        let names: Vec<&str> = RevocationReason::FOR_REVOCATION
                            .iter()
                            .map(|r| r.name())
                            .collect();
                        return Err(CaError::invalid(
                            "reason",
                            format!(
                                "{r} is not a revocation reason; one of {}",
                                names.join(", ")
                            ),
                        ));
                    }
                }
                LifecycleAction::Revoke {
                    reason,
                    invalidity_date,
                }
            }
            other => {
                return Err(CaError::invalid(
                    "action",
                    format!("unknown lifecycle action \"{other}\""),
                ))
            }
        };
        if invalidity_date.is_some() && !matches!(action, LifecycleAction::Revoke { .. }) {
            return Err(CaError::invalid(
                "invalidity_date",
                "only a revocation for keyCompromise carries an invalidity date",
            ));
        }
        Ok(action)
    }
}

/// A lifecycle request on the holder's behalf.
#[derive(Debug, Clone)]
pub struct LifecycleRequest {
    pub request_id: RequestId,
    /// The issuing CA; `None` finds the serial under any CA nesca runs.
    pub issuer: Option<IssuerId>,
    pub serial: Serial,
    /// Who asks. For a NES: the holder, who must be the certificate's subject (Law 5070:
    /// only the holder may have a NES revoked). `None`: the CA's operator, allowed only for
    /// partner (role / secure-communication) certificates, which have no T.C. Kimlik No.
    pub holder: Option<Tckn>,
    pub action: LifecycleAction,
    /// Who carried the request in (the host operator, a channel), for the audit log.
    pub actor: crate::Principal,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids() {
        assert!(RequestId::new("req-1:a.b_c").is_ok());
        assert!(RequestId::new("").is_err());
        assert!(RequestId::new("a b").is_err());
        assert!(RequestId::new(&"a".repeat(128)).is_ok());
        assert!(RequestId::new(&"a".repeat(129)).is_err());
        let a = RequestId::random();
        assert_eq!(a.as_str().len(), 32);
        assert_ne!(a, RequestId::random());
    }

    #[test]
    fn actions_refuse_what_a_holder_cannot_ask() {
        let err = |v, r, d| LifecycleAction::parse(v, r, d).unwrap_err().to_string();
        assert_eq!(
            LifecycleAction::parse(
                "revoke",
                Some("keyCompromise"),
                Some(UnixTime::from_secs(5))
            )
            .unwrap(),
            LifecycleAction::Revoke {
                reason: Some(RevocationReason::KeyCompromise),
                invalidity_date: Some(UnixTime::from_secs(5))
            }
        );
        assert_eq!(
            LifecycleAction::parse("suspend", Some("certificateHold"), None).unwrap(),
            LifecycleAction::Suspend
        );
        assert!(err("revoke", Some("certificateHold"), None)
            .starts_with("reason: certificateHold is not a revocation reason"));
        assert!(err("revoke", Some("removeFromCRL"), None).starts_with("reason:"));
        assert!(err("revoke", Some("keycompromise"), None).starts_with("reason: unknown reason"));
        assert!(err("suspend", Some("superseded"), None).starts_with("reason:"));
        assert!(err("unsuspend", Some("superseded"), None).starts_with("reason:"));
        assert!(err("suspend", None, Some(UnixTime::from_secs(1))).starts_with("invalidity_date:"));
    }
}
