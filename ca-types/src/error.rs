//! The one error type of `nesca-ca-types`.

/// Why a value was refused, a key or signature did not check, or a signer failed.
///
/// Every variant names its field and the rule: [`CaTypesError::field`] and
/// [`CaTypesError::rule`] give them apart, so that a caller can put them into its own error
/// type unchanged. The key and signature variants display the rule alone, as the callers have
/// always embedded it in their own messages.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaTypesError {
    /// A value that does not parse (`serial`, `issuer`, `reason`): the field and the rule.
    #[error("{field}: {rule}")]
    Invalid { field: &'static str, rule: String },
    /// A subject public key nesca never certifies or cannot read (RFC 5280 §4.1.2.7).
    #[error("{rule}")]
    PublicKey { rule: String },
    /// A signature that does not verify, or whose algorithm nesca does not take or that does
    /// not fit the key (RFC 5280 §4.1.1.2, §4.1.1.3).
    #[error("{rule}")]
    Signature { rule: String },
    /// The HSM failed to sign (after its own retries of transient errors).
    #[cfg(feature = "hsm")]
    #[error(transparent)]
    Hsm(#[from] hsm::HsmError),
    /// A signer that is not an HSM key failed (the software keys that stand in for the HSM in
    /// tests).
    #[error("{rule}")]
    Signer { rule: String },
}

impl CaTypesError {
    pub(crate) fn invalid(field: &'static str, rule: impl Into<String>) -> Self {
        CaTypesError::Invalid {
            field,
            rule: rule.into(),
        }
    }

    pub(crate) fn public_key(rule: impl Into<String>) -> Self {
        CaTypesError::PublicKey { rule: rule.into() }
    }

    pub(crate) fn signature(rule: impl Into<String>) -> Self {
        CaTypesError::Signature { rule: rule.into() }
    }

    /// What was refused: the input's name for [`CaTypesError::Invalid`], otherwise the part
    /// that failed (`public key`, `signature`, `signer`).
    pub fn field(&self) -> &'static str {
        match self {
            CaTypesError::Invalid { field, .. } => field,
            CaTypesError::PublicKey { .. } => "public key",
            CaTypesError::Signature { .. } => "signature",
            #[cfg(feature = "hsm")]
            CaTypesError::Hsm(_) => "signer",
            CaTypesError::Signer { .. } => "signer",
        }
    }

    /// The rule broken, without the field name. For an HSM failure, the HSM's message.
    pub fn rule(&self) -> String {
        match self {
            CaTypesError::Invalid { rule, .. }
            | CaTypesError::PublicKey { rule }
            | CaTypesError::Signature { rule }
            | CaTypesError::Signer { rule } => rule.clone(),
            #[cfg(feature = "hsm")]
            CaTypesError::Hsm(e) => e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_values_display_field_then_rule() {
        let e = CaTypesError::invalid("serial", "must be hexadecimal");
        assert_eq!(e.to_string(), "serial: must be hexadecimal");
        assert_eq!(e.field(), "serial");
        assert_eq!(e.rule(), "must be hexadecimal");
    }

    #[test]
    fn key_and_signature_errors_display_the_rule_alone() {
        let e = CaTypesError::signature("signature does not verify");
        assert_eq!(e.to_string(), "signature does not verify");
        assert_eq!(e.field(), "signature");
        let e = CaTypesError::public_key("RSA public exponent must be 65537");
        assert_eq!(e.to_string(), "RSA public exponent must be 65537");
        assert_eq!(e.field(), "public key");
    }
}
