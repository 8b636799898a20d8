//! The host's refusals as plugins receive them: a [`HostError`] (code, field, rule) made from
//! the typed error that refused the call (the registration authority's, ca-core's,
//! nesca-identity's, the HSM's, the list import's). Each keeps the field and rule its error names, so the message a partner reads is
//! the one the error has always printed; the code tells the plugin what kind of refusal it is.

use std::fmt::Display;

use ca_core::{CaError, IdentityError};
use nesca_plugin_api::{HostError, HostErrorCode};
use nesca_ra::refusal::{Refusal, RefusalKind};
use nesca_ra::RaError;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::list_import::ImportError;

/// A ca-core error, classified as the registration authority classifies it (`Refusal::of`):
/// refused input and conflicts keep their field and rule; an unknown certificate is
/// `not_found`; a store or HSM failure is `unavailable` (try later); anything else `internal`.
pub(crate) fn ca(e: CaError) -> HostError {
    ra(RaError::from(e))
}

/// A registration-authority error, as the registration authority classifies it
/// ([`Refusal::of`]): the kind becomes the code of the same name, field and rule are kept.
pub(crate) fn ra(e: RaError) -> HostError {
    refused(Refusal::of(&e))
}

/// A refusal of the registration authority (fresh, or the one recorded for a replay).
pub(crate) fn refused(r: Refusal) -> HostError {
    let code = match r.kind {
        RefusalKind::Invalid => HostErrorCode::Invalid,
        RefusalKind::NotFound => HostErrorCode::NotFound,
        RefusalKind::Conflict => HostErrorCode::Conflict,
        RefusalKind::Refused => HostErrorCode::Refused,
        RefusalKind::Unauthenticated => HostErrorCode::Unauthenticated,
        RefusalKind::Locked => HostErrorCode::Locked,
        RefusalKind::Unavailable => HostErrorCode::Unavailable,
        _ => HostErrorCode::Internal,
    };
    HostError {
        code,
        field: r.field,
        rule: r.rule,
    }
}

/// The channel's own name refused as a principal: the loader checked it already, so this is
/// the host's fault (`internal`).
pub(crate) fn principal(e: ca_core::CaTypesError) -> HostError {
    HostError::internal(e.to_string())
}

/// A refused identity value (a name): `invalid`, with its field and rule.
pub(crate) fn identity(e: IdentityError) -> HostError {
    HostError::invalid(e.field(), e.rule())
}

/// A value of the request's `field` that does not parse: `invalid`, the parser's message as
/// the rule.
pub(crate) fn invalid<E: Display>(field: &'static str) -> impl FnOnce(E) -> HostError {
    move |rule| HostError::invalid(field, rule.to_string())
}

/// A list that could not be imported: an unreadable file is `invalid` (`file`); the rest is
/// the registration authority's refusal.
pub(crate) fn import(e: ImportError) -> HostError {
    match e {
        ImportError::List(rule) => HostError::invalid("file", rule),
        ImportError::Ra(e) => ra(e),
    }
}

/// A fresh request id (`r-` and 16 hex digits), named both in a log line and in the answer
/// that hides what the log says.
pub(crate) fn request_id() -> String {
    format!("r-{:016x}", rand::random::<u64>())
}

/// What a partner reads of a failure inside nesca: an `internal` or
/// `unavailable` error carries the raw text of a store, HSM or encoding error (paths, SQL
/// errors, PKCS#11 codes). That text is logged at `error` with a fresh request id; the plugin,
/// and through it the partner, gets a generic message naming the id. Refusals of the request
/// itself (invalid, not found, conflict, …) keep their field and rule: they are the answer.
pub(crate) fn redacted(plugin: &str, method: &str, e: HostError) -> HostError {
    let generic = match e.code {
        HostErrorCode::Internal => "internal error",
        HostErrorCode::Unavailable => "temporarily unavailable; try again later",
        _ => return e,
    };
    let id = request_id();
    tracing::error!(request_id = %id, plugin, method, code = e.code.as_str(), error = %e, "host call failed");
    HostError {
        code: e.code,
        field: e.field,
        rule: format!("{generic}; request id {id}"),
    }
}

/// The request of host method `method`. The plugin builds it, so one that does not decode is
/// a fault of the plugin, not of what the partner sent: `internal`.
pub(crate) fn request<T: DeserializeOwned>(method: &str, json: &[u8]) -> Result<T, HostError> {
    serde_json::from_slice(json).map_err(|e| {
        HostError::new(
            HostErrorCode::Internal,
            method,
            format!("request does not parse: {e}"),
        )
    })
}

/// The JSON of a response.
pub(crate) fn response<T: Serialize>(value: &T) -> Result<Vec<u8>, HostError> {
    serde_json::to_vec(value)
        .map_err(|e| HostError::internal(format!("response does not encode: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The message a partner reads is the one the typed error prints.
    #[test]
    fn ca_errors_keep_their_message_and_get_a_code() {
        let cases = [
            (
                CaError::Invalid {
                    field: "tckn",
                    rule: "must be 11 digits".into(),
                },
                HostErrorCode::Invalid,
                Some("tckn"),
            ),
            (
                CaError::Conflict {
                    field: "stage",
                    rule: "is form".into(),
                },
                HostErrorCode::Conflict,
                Some("stage"),
            ),
            (
                CaError::NotFound {
                    serial: "0a".into(),
                },
                HostErrorCode::NotFound,
                None,
            ),
            (
                CaError::Store {
                    operation: "read",
                    reason: "database is locked".into(),
                    source: None,
                },
                HostErrorCode::Unavailable,
                Some("store"),
            ),
            (
                CaError::Der {
                    what: "Certificate",
                    reason: "bad tag".into(),
                    source: None,
                },
                HostErrorCode::Internal,
                None,
            ),
        ];
        for (error, code, field) in cases {
            let message = error.to_string();
            let host = ca(error);
            assert_eq!(host.to_string(), message);
            assert_eq!(
                (host.code, host.field.as_deref()),
                (code, field),
                "{message}"
            );
        }
    }

    #[test]
    fn ra_errors_keep_their_message_and_get_a_code() {
        let cases = [
            (
                RaError::NotFound {
                    field: "channel_ref",
                    rule: "no application x".into(),
                },
                HostErrorCode::NotFound,
                Some("channel_ref"),
            ),
            (
                RaError::Locked {
                    field: "sign_in",
                    until: ca_core::UnixTime::from_secs(5),
                    until_text: "1970-01-01T00:00:05Z".into(),
                },
                HostErrorCode::Locked,
                Some("sign_in"),
            ),
            (
                RaError::Unavailable {
                    operation: "submit_application",
                },
                HostErrorCode::Unavailable,
                Some("submit_application"),
            ),
            (
                RaError::from(CaError::Store {
                    operation: "read",
                    reason: "database is locked".into(),
                    source: None,
                }),
                HostErrorCode::Unavailable,
                Some("store"),
            ),
        ];
        for (error, code, field) in cases {
            let message = error.to_string();
            let host = ra(error);
            assert_eq!(host.to_string(), message);
            assert_eq!(
                (host.code, host.field.as_deref()),
                (code, field),
                "{message}"
            );
        }
        let before = Refusal::of(&RaError::Invalid {
            field: "csr",
            rule: "the signature does not verify".into(),
        });
        assert_eq!(
            ra(RaError::RefusedBefore { refusal: before }),
            HostError::invalid("csr", "the signature does not verify")
        );
        let cut_off = ra(RaError::RefusedBefore {
            refusal: Refusal::from_record("interrupted: nesca stopped"),
        });
        assert_eq!(
            cut_off,
            HostError::without_field(HostErrorCode::Refused, "interrupted: nesca stopped")
        );
    }

    #[test]
    fn identity_hsm_and_import_errors() {
        let name = ca_core::PersonName::parse("given_name", "").unwrap_err();
        let host = identity(name.clone());
        assert_eq!(host.to_string(), name.to_string());
        assert_eq!(host.code, HostErrorCode::Invalid);

        let e = invalid("serial")("not hex");
        assert_eq!(e, HostError::invalid("serial", "not hex"));

        let refused = ra(RaError::CardKey(hsm::HsmError::KeyNotFound {
            label: "k".into(),
        }));
        assert_eq!(
            (refused.code, refused.field.as_deref()),
            (HostErrorCode::Unavailable, Some("hsm_key"))
        );

        let list = import(ImportError::List("header: no column".into()));
        assert_eq!(list, HostError::invalid("file", "header: no column"));
    }

    /// The raw text of a store failure stays in the log, under a request id that the answer
    /// names; a refusal of the request itself is answered as it is.
    #[test]
    fn internal_errors_reach_the_log_not_the_answer() {
        let logged = crate::test_log::capture(|| {
            let secret = "database disk image is malformed: /srv/nesca/nesca.db";
            let host = redacted(
                "kdhs",
                "lookup_certificate",
                ca(CaError::Store {
                    operation: "read certificate",
                    reason: secret.into(),
                    source: None,
                }),
            );
            assert_eq!(host.code, HostErrorCode::Unavailable);
            assert!(!host.to_string().contains("malformed"), "{host}");
            assert!(!host.to_string().contains("/srv/nesca"), "{host}");
            let id = host
                .rule
                .rsplit("request id ")
                .next()
                .filter(|id| id.starts_with("r-") && id.len() == 18)
                .unwrap_or_else(|| panic!("no request id in {host}"))
                .to_owned();
            let der = redacted(
                "kdhs",
                "submit_application",
                HostError::without_field(HostErrorCode::Internal, "DER Certificate: bad tag"),
            );
            assert!(
                der.rule.starts_with("internal error; request id r-"),
                "{der}"
            );
            let invalid = HostError::invalid("tckn", "must be 11 digits");
            assert_eq!(
                redacted("kdhs", "lookup_certificate", invalid.clone()),
                invalid
            );
            id
        });
        let (lines, id) = logged;
        let line = lines
            .lines()
            .find(|l| l.contains(&id))
            .unwrap_or_else(|| panic!("no log line names {id}:\n{lines}"));
        assert!(line.contains("malformed: /srv/nesca/nesca.db"), "{line}");
        assert!(
            line.contains("lookup_certificate") && line.contains("kdhs"),
            "{line}"
        );
        assert!(lines.contains("DER Certificate: bad tag"), "{lines}");
        assert!(!lines.contains("must be 11 digits"), "{lines}");
    }

    #[test]
    fn requests_and_records() {
        let e =
            request::<nesca_plugin_api::host_api::LookupCertificate>("lookup_certificate", b"[")
                .unwrap_err();
        assert_eq!(e.code, HostErrorCode::Internal);
        assert!(
            e.to_string()
                .starts_with("lookup_certificate: request does not parse: "),
            "{e}"
        );
    }
}
