//! A refusal in the registration authority's own terms — what kind it is, the field at fault
//! and the rule — so that every transport maps one set of refusals (the channel host to its
//! host API codes; later the admin API and the portal to HTTP), and so that a refused
//! application keeps its refusal typed in the store: its replay answers the same refusal.

use serde::{Deserialize, Serialize};

use crate::error::RaError;

/// What kind of refusal or failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RefusalKind {
    /// A field is ill-formed or breaks a rule of the profile: the request is at fault.
    Invalid,
    /// What the request names does not exist.
    NotFound,
    /// Valid, but its subject is not at a point where it applies.
    Conflict,
    /// Well-formed, and refused by policy.
    Refused,
    /// Who asks could not be authenticated.
    Unauthenticated,
    /// Too many failed attempts: refused for a while.
    Locked,
    /// Issuance, the HSM or the store is not available now: try again later.
    Unavailable,
    /// A failure the request cannot fix.
    #[serde(other)]
    Internal,
}

impl RefusalKind {
    /// A failure that is not the request's fault and may pass (the HSM or the store down, a
    /// fault of nesca's): the same request may succeed later, so it is not kept as its answer.
    pub fn is_transient(self) -> bool {
        matches!(self, RefusalKind::Unavailable | RefusalKind::Internal)
    }
}

/// A refusal: its kind, the field at fault (if one is) and the rule. Its record is the JSON
/// `{"v":1,"code":…,"field":…,"rule":…}`, the same shape as the plugin host API's error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The record's version.
    #[serde(default = "version")]
    pub v: u32,
    /// What kind.
    #[serde(rename = "code")]
    pub kind: RefusalKind,
    /// The field at fault.
    #[serde(default)]
    pub field: Option<String>,
    /// The rule broken, or what failed.
    pub rule: String,
}

fn version() -> u32 {
    1
}

impl Refusal {
    fn new(kind: RefusalKind, field: Option<&str>, rule: impl Into<String>) -> Refusal {
        Refusal {
            v: 1,
            kind,
            field: field.map(str::to_owned),
            rule: rule.into(),
        }
    }

    /// The refusal an error amounts to. The message (`field: rule`) is the error's own.
    pub fn of(e: &RaError) -> Refusal {
        use ca_core::CaError;
        let with = |kind, field: &'static str, rule: &str| Refusal::new(kind, Some(field), rule);
        match e {
            RaError::Invalid { field, rule } => with(RefusalKind::Invalid, field, rule),
            RaError::NotFound { field, rule } => with(RefusalKind::NotFound, field, rule),
            RaError::Conflict { field, rule } => with(RefusalKind::Conflict, field, rule),
            RaError::Refused { field, rule } => with(RefusalKind::Refused, field, rule),
            RaError::Unauthenticated { field, rule } => {
                with(RefusalKind::Unauthenticated, field, rule)
            }
            RaError::Locked {
                field, until_text, ..
            } => with(
                RefusalKind::Locked,
                field,
                &format!("too many failed attempts; try again after {until_text}"),
            ),
            RaError::RefusedBefore { refusal } => refusal.clone(),
            RaError::Unavailable { operation } => with(
                RefusalKind::Unavailable,
                operation,
                "issuance is not available here",
            ),
            RaError::CardKey(source) => {
                with(RefusalKind::Unavailable, "hsm_key", &source.to_string())
            }
            RaError::OfficerStatusUnknown { source } => with(
                RefusalKind::Unavailable,
                "signature",
                &format!(
                    "the officer's certificate status cannot be checked: {source}; try again later"
                ),
            ),
            RaError::Ca(CaError::NotFound { .. }) => {
                Refusal::new(RefusalKind::NotFound, None, e.to_string())
            }
            RaError::Ca(CaError::Store {
                operation, reason, ..
            }) => with(
                RefusalKind::Unavailable,
                "store",
                &format!("{operation}: {reason}"),
            ),
            RaError::Ca(CaError::Hsm(_)) | RaError::Hsm(_) => {
                Refusal::new(RefusalKind::Unavailable, None, e.to_string())
            }
            other => Refusal::new(RefusalKind::Internal, None, other.to_string()),
        }
    }

    /// The record kept with a refused application.
    pub fn to_record(&self) -> String {
        serde_json::to_string(self).expect("a struct of strings always encodes")
    }

    /// A kept refusal. A reason the store wrote itself (an application a stop cut off) or an
    /// older nesca wrote is plain text: it reads as a `refused` refusal with no field.
    pub fn from_record(text: &str) -> Refusal {
        serde_json::from_str(text)
            .unwrap_or_else(|_| Refusal::new(RefusalKind::Refused, None, text))
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {}", self.rule),
            None => f.write_str(&self.rule),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_keeps_the_errors_message_and_reads_back_from_its_record() {
        let e = RaError::Refused {
            field: "overwrite_serial",
            rule: "certificate 0a belongs to another person".into(),
        };
        let r = Refusal::of(&e);
        assert_eq!(r.to_string(), e.to_string());
        assert_eq!(r.kind, RefusalKind::Refused);
        let record = r.to_record();
        assert_eq!(
            record,
            r#"{"v":1,"code":"refused","field":"overwrite_serial","rule":"certificate 0a belongs to another person"}"#
        );
        assert_eq!(Refusal::from_record(&record), r);
        let replayed = RaError::RefusedBefore { refusal: r.clone() };
        assert_eq!(Refusal::of(&replayed), r);
    }

    #[test]
    fn plain_text_records_read_as_refusals_without_a_field() {
        let r = Refusal::from_record("interrupted: nesca stopped; apply again");
        assert_eq!(r.kind, RefusalKind::Refused);
        assert_eq!(r.field, None);
        assert_eq!(r.to_string(), "interrupted: nesca stopped; apply again");
        // An unknown code from a newer nesca reads as internal, not as a parse failure.
        let r = Refusal::from_record(r#"{"v":1,"code":"weird","rule":"x"}"#);
        assert_eq!(r.kind, RefusalKind::Internal);
    }

    #[test]
    fn store_and_hsm_failures_are_unavailable_and_others_internal() {
        let store = RaError::from(ca_core::CaError::Store {
            operation: "read",
            reason: "database is locked".into(),
            source: None,
        });
        let r = Refusal::of(&store);
        assert_eq!(
            (r.kind, r.field.as_deref()),
            (RefusalKind::Unavailable, Some("store"))
        );
        let der = RaError::from(ca_core::CaError::Der {
            what: "Certificate",
            reason: "bad tag".into(),
            source: None,
        });
        assert_eq!(Refusal::of(&der).kind, RefusalKind::Internal);
        let missing = RaError::from(ca_core::CaError::NotFound {
            serial: "0a".into(),
        });
        assert_eq!(Refusal::of(&missing).kind, RefusalKind::NotFound);
    }
}
