//! The one error type of the channel kit (and of the kdhs and kec plugins, which add no error of
//! their own): every refusal of the protocol, each with its error code and HTTP status.

use nesca_plugin_api::HostError;

/// Why a channel request (or the plugin's configuration) was refused. Each variant is one error
/// code of the protocol (`docs/channels/kdhs.md`); `field` names the field and `rule` the rule it
/// broke, and the two together are the message: `"field: rule"`. Messages never carry a secret or
/// the request body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// Check 1: no verified TLS client certificate, or not the right one (401).
    #[error("{field}: {rule}")]
    ClientCertificate { field: String, rule: String },
    /// Check 2: the body does not parse, or a field is missing or ill-formed (400).
    #[error("{field}: {rule}")]
    Request { field: String, rule: String },
    /// Check 3: the KDBO's CMS signature does not verify (422).
    #[error("{field}: {rule}")]
    KdboSignature { field: String, rule: String },
    /// Check 4: the KDBO's signer is not one this channel trusts (422).
    #[error("{field}: {rule}")]
    KdboSigner { field: String, rule: String },
    /// Check 5: the KDBO's content is not a KDB v1 for this request (422).
    #[error("{field}: {rule}")]
    Kdb { field: String, rule: String },
    /// Check 6: the identity verification is too old, or in the future (422).
    #[error("{field}: {rule}")]
    KdbAge { field: String, rule: String },
    /// Check 7: the ID-card authentication certificate does not verify (422).
    #[error("{field}: {rule}")]
    AuthCertificate { field: String, rule: String },
    /// Check 8: the KDB names another person than the authentication certificate (422).
    #[error("{field}: {rule}")]
    TcknMismatch { field: String, rule: String },
    /// Check 9: the KEC firmware digest is not an approved one (422).
    #[error("{field}: {rule}")]
    Firmware { field: String, rule: String },
    /// Check 10 (KEC): the card's slots are missing, inconsistent, or full without a choice (422).
    #[error("{field}: {rule}")]
    Slots { field: String, rule: String },
    /// Check 11: the certificate chosen to be overwritten cannot be (422).
    #[error("{field}: {rule}")]
    Overwrite { field: String, rule: String },
    /// The host refused the requested validity (422).
    #[error("{field}: {rule}")]
    Validity { field: String, rule: String },
    /// The host refused the transport key a card key was to be wrapped for: not registered,
    /// withdrawn, or its certificate not valid now (422).
    #[error("{field}: {rule}")]
    TransportKey { field: String, rule: String },
    /// The host refused the application or the lifecycle request (422).
    #[error("{field}: {rule}")]
    Refused { field: String, rule: String },
    /// The host refused the signed commitment (422).
    #[error("{field}: {rule}")]
    Commitment { field: String, rule: String },
    /// The KDB's person is not the certificate's holder (403).
    #[error("{field}: {rule}")]
    Holder { field: String, rule: String },
    /// No endpoint at this path (404).
    #[error("{field}: {rule}")]
    NotFound { field: String, rule: String },
    /// The endpoint exists but not for this method (405).
    #[error("{field}: {rule}")]
    MethodNotAllowed { field: String, rule: String },
    /// The plugin's configuration is refused at start (`field` is the configuration key).
    #[error("{field}: {rule}")]
    Config { field: String, rule: String },
}

/// Builds a variant from anything string-like, so call sites stay one line.
macro_rules! constructors {
    ($($fn_name:ident => $variant:ident),* $(,)?) => {
        impl ChannelError {
            $(
                #[doc = concat!("A [`ChannelError::", stringify!($variant), "`].")]
                pub fn $fn_name(field: impl Into<String>, rule: impl Into<String>) -> ChannelError {
                    ChannelError::$variant { field: field.into(), rule: rule.into() }
                }
            )*
        }
    };
}

constructors! {
    client_certificate => ClientCertificate,
    request => Request,
    kdbo_signature => KdboSignature,
    kdbo_signer => KdboSigner,
    kdb => Kdb,
    kdb_age => KdbAge,
    auth_certificate => AuthCertificate,
    tckn_mismatch => TcknMismatch,
    firmware => Firmware,
    slots => Slots,
    overwrite => Overwrite,
    validity => Validity,
    transport_key => TransportKey,
    refused => Refused,
    commitment => Commitment,
    holder => Holder,
    not_found => NotFound,
    method_not_allowed => MethodNotAllowed,
    config => Config,
}

impl ChannelError {
    /// The protocol's error code (`error.code` in the answer).
    pub fn code(&self) -> &'static str {
        match self {
            ChannelError::ClientCertificate { .. } => "client_certificate",
            ChannelError::Request { .. } => "request",
            ChannelError::KdboSignature { .. } => "kdbo_signature",
            ChannelError::KdboSigner { .. } => "kdbo_signer",
            ChannelError::Kdb { .. } => "kdb",
            ChannelError::KdbAge { .. } => "kdb_age",
            ChannelError::AuthCertificate { .. } => "auth_certificate",
            ChannelError::TcknMismatch { .. } => "tckn_mismatch",
            ChannelError::Firmware { .. } => "firmware",
            ChannelError::Slots { .. } => "slots",
            ChannelError::Overwrite { .. } => "overwrite",
            ChannelError::Validity { .. } => "validity",
            ChannelError::TransportKey { .. } => "transport_key",
            ChannelError::Refused { .. } => "refused",
            ChannelError::Commitment { .. } => "commitment",
            ChannelError::Holder { .. } => "holder",
            ChannelError::NotFound { .. } => "not_found",
            ChannelError::MethodNotAllowed { .. } => "method_not_allowed",
            ChannelError::Config { .. } => "config",
        }
    }

    /// The HTTP status the protocol answers this refusal with.
    pub fn http_status(&self) -> u16 {
        match self {
            ChannelError::ClientCertificate { .. } => 401,
            ChannelError::Request { .. } => 400,
            ChannelError::Holder { .. } => 403,
            ChannelError::NotFound { .. } => 404,
            ChannelError::MethodNotAllowed { .. } => 405,
            // Never answered over HTTP: a refused configuration stops the plugin's start.
            ChannelError::Config { .. } => 500,
            _ => 422,
        }
    }

    /// The field the refusal names (the configuration key, for [`ChannelError::Config`]).
    pub fn field(&self) -> &str {
        match self {
            ChannelError::ClientCertificate { field, .. }
            | ChannelError::Request { field, .. }
            | ChannelError::KdboSignature { field, .. }
            | ChannelError::KdboSigner { field, .. }
            | ChannelError::Kdb { field, .. }
            | ChannelError::KdbAge { field, .. }
            | ChannelError::AuthCertificate { field, .. }
            | ChannelError::TcknMismatch { field, .. }
            | ChannelError::Firmware { field, .. }
            | ChannelError::Slots { field, .. }
            | ChannelError::Overwrite { field, .. }
            | ChannelError::Validity { field, .. }
            | ChannelError::TransportKey { field, .. }
            | ChannelError::Refused { field, .. }
            | ChannelError::Commitment { field, .. }
            | ChannelError::Holder { field, .. }
            | ChannelError::NotFound { field, .. }
            | ChannelError::MethodNotAllowed { field, .. }
            | ChannelError::Config { field, .. } => field,
        }
    }

    /// A refusal from the host's [`HostError`], with its field and rule; one that names no field
    /// is reported under `default_field`. `make` chooses the protocol's code (and so the HTTP
    /// status) from the host's code and field.
    pub(crate) fn from_host(
        error: HostError,
        default_field: &str,
        make: fn(&HostError, String, String) -> ChannelError,
    ) -> ChannelError {
        let field = error
            .field
            .clone()
            .unwrap_or_else(|| default_field.to_owned());
        make(&error, field, error.rule.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_is_field_then_rule() {
        let e = ChannelError::request("firmware_sha256", "must be 64 hex digits");
        assert_eq!(e.to_string(), "firmware_sha256: must be 64 hex digits");
        assert_eq!(e.code(), "request");
        assert_eq!(e.http_status(), 400);
        assert_eq!(e.field(), "firmware_sha256");
    }

    #[test]
    fn codes_and_statuses_follow_the_protocol() {
        let cases = [
            (
                ChannelError::client_certificate("a", "b"),
                "client_certificate",
                401,
            ),
            (
                ChannelError::kdbo_signature("a", "b"),
                "kdbo_signature",
                422,
            ),
            (ChannelError::kdbo_signer("a", "b"), "kdbo_signer", 422),
            (ChannelError::kdb("a", "b"), "kdb", 422),
            (ChannelError::kdb_age("a", "b"), "kdb_age", 422),
            (
                ChannelError::auth_certificate("a", "b"),
                "auth_certificate",
                422,
            ),
            (ChannelError::tckn_mismatch("a", "b"), "tckn_mismatch", 422),
            (ChannelError::firmware("a", "b"), "firmware", 422),
            (ChannelError::slots("a", "b"), "slots", 422),
            (ChannelError::overwrite("a", "b"), "overwrite", 422),
            (ChannelError::validity("a", "b"), "validity", 422),
            (ChannelError::transport_key("a", "b"), "transport_key", 422),
            (ChannelError::refused("a", "b"), "refused", 422),
            (ChannelError::commitment("a", "b"), "commitment", 422),
            (ChannelError::holder("a", "b"), "holder", 403),
            (ChannelError::not_found("a", "b"), "not_found", 404),
            (
                ChannelError::method_not_allowed("a", "b"),
                "method_not_allowed",
                405,
            ),
        ];
        for (error, code, status) in cases {
            assert_eq!((error.code(), error.http_status()), (code, status));
        }
    }

    #[test]
    fn host_errors_keep_their_field() {
        use nesca_plugin_api::HostErrorCode;
        let refused = |_: &HostError, field, rule| ChannelError::Refused { field, rule };
        let e = ChannelError::from_host(
            HostError::invalid(
                "validity_days",
                "4000 is more than the profile's maximum 1095",
            ),
            "application",
            refused,
        );
        assert_eq!(
            e,
            ChannelError::refused(
                "validity_days",
                "4000 is more than the profile's maximum 1095"
            )
        );
        let free = ChannelError::from_host(
            HostError::without_field(HostErrorCode::Unavailable, "the HSM is not answering"),
            "application",
            refused,
        );
        assert_eq!(free.to_string(), "application: the HSM is not answering");
    }
}
