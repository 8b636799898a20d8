//! Why the host refused or failed a host API call: [`HostError`], the payload of a `call` that
//! answers status 1 (`STATUS_ERROR`). It crosses the boundary as JSON, so the plugin decodes
//! the same typed value the host built: a code to act on, the field at fault and the rule it
//! broke. Plugins map [`HostErrorCode`] (and the field) to their protocol's answer; they never
//! read the text.

use std::fmt;

/// What kind of refusal or failure a [`HostError`] is. Plugins choose their answer (an HTTP
/// status, an error code) from it. New codes may be added; a plugin treats a code it does not
/// know as [`HostErrorCode::Internal`] (a code it cannot decode arrives as `Internal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum HostErrorCode {
    /// A field of the request is ill-formed or breaks a rule of the profile (a bad T.C. Kimlik
    /// No, a CSR that does not verify, a validity that is too long): the request is at fault.
    Invalid,
    /// What the request names does not exist (a certificate, an application).
    NotFound,
    /// The request is valid but the record is not at a point where it applies: an application
    /// still being processed, a request id replayed for another request, a step out of order.
    Conflict,
    /// A policy refusal: the request is well-formed but nesca will not do it (another person's
    /// certificate, a holder's reason that is not the holder's to give, a refused signature).
    Refused,
    /// Who asks could not be authenticated (a wrong password or code, an expired session).
    Unauthenticated,
    /// Too many failed attempts: refused for a while.
    Locked,
    /// Issuance is not available here, or the HSM or the store is down: try again later.
    Unavailable,
    /// The host failed in a way the request cannot fix (a bug, a record that does not decode),
    /// or the call could not be carried (an answer that does not decode).
    #[serde(other)]
    Internal,
}

impl HostErrorCode {
    /// The code's wire name (`"invalid"`, `"not_found"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            HostErrorCode::Invalid => "invalid",
            HostErrorCode::NotFound => "not_found",
            HostErrorCode::Conflict => "conflict",
            HostErrorCode::Refused => "refused",
            HostErrorCode::Unauthenticated => "unauthenticated",
            HostErrorCode::Locked => "locked",
            HostErrorCode::Unavailable => "unavailable",
            HostErrorCode::Internal => "internal",
        }
    }
}

impl fmt::Display for HostErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

payload! {
    /// Why a host API call failed (the JSON answer of a `call` with status 1). `Display` is one
    /// line: `field: rule`, or the rule alone when no field is at fault. Never carries a secret.
    pub struct HostError {
        /// What kind of refusal or failure.
        pub code: HostErrorCode,
        /// The request field at fault (`tckn`, `validity_days`, `overwrite_serial`…), if one is.
        #[serde(default)]
        pub field: Option<String>,
        /// The rule the request broke, or what failed.
        pub rule: String,
    }
}

impl HostError {
    /// An error with `code` about `field`.
    pub fn new(code: HostErrorCode, field: impl Into<String>, rule: impl Into<String>) -> Self {
        HostError {
            code,
            field: Some(field.into()),
            rule: rule.into(),
        }
    }

    /// An error with `code` that no single field is at fault for.
    pub fn without_field(code: HostErrorCode, rule: impl Into<String>) -> Self {
        HostError {
            code,
            field: None,
            rule: rule.into(),
        }
    }

    /// [`HostErrorCode::Invalid`] about `field`.
    pub fn invalid(field: impl Into<String>, rule: impl Into<String>) -> Self {
        HostError::new(HostErrorCode::Invalid, field, rule)
    }

    /// [`HostErrorCode::Internal`] without a field: the host, or the call itself, failed.
    pub fn internal(rule: impl Into<String>) -> Self {
        HostError::without_field(HostErrorCode::Internal, rule)
    }

    /// The error as the payload of a status-1 answer (its JSON).
    pub fn to_payload(&self) -> Vec<u8> {
        // A struct of strings and a unit enum always serializes; the fallback is for form's sake.
        serde_json::to_vec(self).unwrap_or_else(|_| {
            br#"{"v":1,"code":"internal","field":null,"rule":"the host error does not encode"}"#
                .to_vec()
        })
    }

    /// The error a status-1 answer carries. An answer that is not a `HostError` (a peer that
    /// does not speak this payload) is kept, as one bounded line, in an `Internal` error.
    pub fn from_payload(bytes: &[u8]) -> HostError {
        serde_json::from_slice(bytes).unwrap_or_else(|_| {
            HostError::internal(format!(
                "the host answered an error that is not a HostError payload: {}",
                crate::error::one_line(bytes)
            ))
        })
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {}", self.rule),
            None => f.write_str(&self.rule),
        }
    }
}

impl std::error::Error for HostError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_field_then_rule() {
        let e = HostError::invalid("validity_days", "must be at most 1095");
        assert_eq!(e.to_string(), "validity_days: must be at most 1095");
        let e = HostError::without_field(HostErrorCode::NotFound, "certificate 0a not found");
        assert_eq!(e.to_string(), "certificate 0a not found");
    }

    #[test]
    fn the_payload_round_trips_with_its_version() {
        let e = HostError::new(
            HostErrorCode::Conflict,
            "channel_ref",
            "still being processed",
        );
        let json: serde_json::Value = serde_json::from_slice(&e.to_payload()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"v":1,"code":"conflict","field":"channel_ref","rule":"still being processed"})
        );
        assert_eq!(HostError::from_payload(&e.to_payload()), e);
        for code in [
            HostErrorCode::Invalid,
            HostErrorCode::NotFound,
            HostErrorCode::Refused,
            HostErrorCode::Unauthenticated,
            HostErrorCode::Locked,
            HostErrorCode::Unavailable,
            HostErrorCode::Internal,
        ] {
            let e = HostError::without_field(code, "r");
            assert_eq!(HostError::from_payload(&e.to_payload()).code, code);
            let wire: serde_json::Value = serde_json::from_slice(&e.to_payload()).unwrap();
            assert_eq!(wire["code"], code.as_str());
        }
    }

    #[test]
    fn unknown_codes_and_foreign_text_read_as_internal() {
        let later = HostError::from_payload(br#"{"v":1,"code":"added_later","rule":"x"}"#);
        assert_eq!(
            later,
            HostError::without_field(HostErrorCode::Internal, "x")
        );
        let text = HostError::from_payload(b"refused\nby an old host");
        assert_eq!(text.code, HostErrorCode::Internal);
        assert_eq!(
            text.to_string(),
            "the host answered an error that is not a HostError payload: refused by an old host"
        );
    }
}
