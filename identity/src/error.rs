//! The one error type of `nesca-identity` (apart from [`crate::TcknError`], which predates it
//! and keeps its own variants).

/// Why a value is not an identity value: the field it came from and the rule it broke.
///
/// `field` is the caller's name for the input (a command-line flag, an API or form field), so
/// the message tells a person what to fix. It is `&'static str`, as in `ca_core::CaError`, so
/// that the conversion into `CaError::Invalid` keeps both the variant and the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// Input refused by policy: the field and the rule it broke.
    #[error("{field}: {rule}")]
    Invalid { field: &'static str, rule: String },
}

impl IdentityError {
    pub(crate) fn invalid(field: &'static str, rule: impl Into<String>) -> Self {
        IdentityError::Invalid {
            field,
            rule: rule.into(),
        }
    }

    /// The caller's name for the refused input.
    pub fn field(&self) -> &'static str {
        match self {
            IdentityError::Invalid { field, .. } => field,
        }
    }

    /// The rule the input broke, without the field name.
    pub fn rule(&self) -> &str {
        match self {
            IdentityError::Invalid { rule, .. } => rule,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_field_then_rule() {
        let e = IdentityError::invalid("surname", "must not be empty");
        assert_eq!(e.to_string(), "surname: must not be empty");
        assert_eq!(e.field(), "surname");
        assert_eq!(e.rule(), "must not be empty");
    }
}
