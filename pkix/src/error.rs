//! The one error type of this crate.
//!
//! Every message names the field that failed (ASN.1 names from RFC 5652 / RFC 5280) and the
//! rule it broke, so that a channel can hand it to its caller unchanged.

/// Why a verification or a field read failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PkixError {
    /// The input was refused before parsing: it is larger than this crate accepts.
    #[error("{what}: {len} bytes is over the limit of {limit} bytes")]
    TooLarge {
        /// Which input (e.g. "ContentInfo", "certificate").
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit it broke.
        limit: usize,
    },
    /// The bytes are not the DER encoding of the structure named.
    #[error("{field}: malformed DER: {detail}")]
    Malformed {
        /// The ASN.1 field or structure (e.g. "SignedData.signerInfos").
        field: &'static str,
        /// What the decoder said.
        detail: String,
    },
    /// The structure decoded but breaks a rule this crate enforces.
    #[error("{field}: {rule}")]
    Invalid {
        /// The ASN.1 field (e.g. "signedAttrs.messageDigest").
        field: &'static str,
        /// The rule, with what was found.
        rule: String,
    },
    /// The signature value does not verify with the signer's public key.
    #[error("SignerInfo.signature: does not verify with the signer certificate's public key ({algorithm})")]
    BadSignature {
        /// The signature algorithm tried, e.g. "ecdsa-with-SHA256 over P-256".
        algorithm: String,
    },
    /// A certificate of the path is past its notAfter at the validation time.
    #[error("certification path: certificate expired (notAfter {not_after} is before the validation time {at}, Unix seconds)")]
    Expired {
        /// notAfter, Unix seconds.
        not_after: i64,
        /// The validation time, Unix seconds.
        at: i64,
    },
    /// A certificate of the path is before its notBefore at the validation time.
    #[error("certification path: certificate not yet valid (notBefore {not_before} is after the validation time {at}, Unix seconds)")]
    NotYetValid {
        /// notBefore, Unix seconds.
        not_before: i64,
        /// The validation time, Unix seconds.
        at: i64,
    },
    /// No path leads from the leaf to a configured trust anchor.
    #[error("certification path: unknown issuer: does not chain to a configured trust anchor")]
    UnknownIssuer,
    /// The leaf has an extendedKeyUsage extension that lacks the purpose required.
    #[error("certification path: extendedKeyUsage lacks {required}")]
    EkuMissing {
        /// The purpose required, dotted OID.
        required: String,
    },
    /// The certificate is listed in its issuer's CRL.
    #[error("the certificate is revoked (listed in its issuer's CRL)")]
    Revoked,
    /// The issuer's CRL is out of date: its nextUpdate has passed (Unix seconds).
    #[error("the issuer's CRL is out of date (its nextUpdate {next_update} is before {at})")]
    CrlOutOfDate { next_update: i64, at: i64 },
    /// The path failed for another reason (named in `reason`).
    #[error("certification path: {reason}")]
    Path {
        /// What webpki found.
        reason: String,
    },
}

impl PkixError {
    /// A broken rule on `field`.
    pub(crate) fn invalid(field: &'static str, rule: impl Into<String>) -> Self {
        PkixError::Invalid {
            field,
            rule: rule.into(),
        }
    }

    /// A decoder error on `field`, for `map_err`.
    pub(crate) fn der(field: &'static str) -> impl FnOnce(der::Error) -> PkixError {
        move |e| PkixError::Malformed {
            field,
            detail: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_field_and_the_rule() {
        let e = PkixError::invalid(
            "signerInfos",
            "exactly one SignerInfo is accepted (found 2)",
        );
        assert_eq!(
            e.to_string(),
            "signerInfos: exactly one SignerInfo is accepted (found 2)"
        );
        let e = PkixError::TooLarge {
            what: "ContentInfo",
            len: 2_000_000,
            limit: 1_048_576,
        };
        assert_eq!(
            e.to_string(),
            "ContentInfo: 2000000 bytes is over the limit of 1048576 bytes"
        );
    }
}
