//! The application body (`POST /v1/applications`), check 2 (`request`, 400): every field
//! present and well-formed. Whether the values are acceptable is for the later checks.

use nesca_plugin_api::host_api::{HsmKeyRequest, SecretText};

use crate::error::ChannelError;
use crate::fields::{parse_json, Fields};
use crate::identifiers::{is_sha256_hex, normalize_serial};

/// The largest request body accepted (1 MiB): a KDBO, two certificates and a CSR fit many times.
pub const MAX_BODY: usize = 1 << 20;

/// At most this many intermediates in `auth_chain`: an identity-card hierarchy is two or three deep.
const MAX_AUTH_CHAIN: usize = 8;

/// Where the new key pair comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A PKCS#10 request made on the card, DER.
    Csr(Vec<u8>),
    /// A key generated in nesca's HSM and wrapped for the card's transport key.
    Hsm(HsmKeyRequest),
}

/// The card's certificate slots (KEC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slots {
    pub total: u32,
    pub used: u32,
}

/// An application body, version 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationRequest {
    /// The KDBO, DER.
    pub kdbo: Vec<u8>,
    /// The KEC firmware digest as sent (64 hex digits, either case).
    pub firmware_sha256: String,
    /// Requested validity; the profile's default when absent.
    pub validity_days: Option<u32>,
    /// The applicant's ID-card authentication certificate, DER.
    pub auth_certificate: Vec<u8>,
    /// Intermediates between it and the identity-card CA, DER.
    pub auth_chain: Vec<Vec<u8>>,
    pub key: KeySource,
    /// The applicant's certificate to overwrite on the card (lower-case hex).
    pub overwrite_serial: Option<String>,
    /// The card's slots: required on the KEC channel, ignored by KDHS.
    pub slots: Option<Slots>,
    /// Where the holder is reached, and the security word they chose (all optional; the
    /// host checks them).
    pub mobile: Option<String>,
    pub email: Option<String>,
    pub security_word: Option<SecretText>,
}

impl ApplicationRequest {
    /// Parses a body; unknown fields are ignored.
    pub fn parse(body: &[u8]) -> Result<ApplicationRequest, ChannelError> {
        let value = parse_body(body)?;
        let f = Fields::versioned(&value, "", request_error)?;

        let kdbo = f.bytes("kdbo")?;
        let firmware_sha256 = f.str("firmware_sha256")?;
        if !is_sha256_hex(firmware_sha256) {
            return Err(f.fail("firmware_sha256", "must be 64 hex digits"));
        }
        let validity_days = f.opt_positive_u32("validity_days")?;
        let auth_certificate = f.bytes("auth_certificate")?;
        let auth_chain = f.bytes_list("auth_chain", MAX_AUTH_CHAIN)?;
        let key = parse_key(&f)?;
        let overwrite_serial = match f.opt_str("overwrite_serial")? {
            None => None,
            Some(s) => Some(
                normalize_serial(s)
                    .ok_or_else(|| f.fail("overwrite_serial", "must be 1 to 40 hex digits"))?,
            ),
        };
        let slots = match f.opt_object("slots")? {
            None => None,
            Some(s) => Some(Slots {
                total: s.u32("total")?,
                used: s.u32("used")?,
            }),
        };
        Ok(ApplicationRequest {
            kdbo,
            firmware_sha256: firmware_sha256.to_owned(),
            validity_days,
            auth_certificate,
            auth_chain,
            key,
            overwrite_serial,
            slots,
            mobile: f.opt_str("mobile")?.map(str::to_owned),
            email: f.opt_str("email")?.map(str::to_owned),
            security_word: f
                .opt_str("security_word")?
                .map(|w| SecretText(w.to_owned())),
        })
    }
}

/// `key`: exactly one of `csr` and `hsm`.
fn parse_key(f: &Fields<'_>) -> Result<KeySource, ChannelError> {
    let key = f
        .opt_object("key")?
        .ok_or_else(|| f.fail("key", "is required: exactly one of csr or hsm"))?;
    let csr = key.get("csr").is_some();
    let hsm = key.opt_object("hsm")?;
    match (csr, hsm) {
        (true, None) => Ok(KeySource::Csr(key.bytes("csr")?)),
        (false, Some(hsm)) => {
            let algorithm = hsm.str("algorithm")?;
            if algorithm.is_empty() {
                return Err(hsm.fail("algorithm", "must name a key algorithm, e.g. ecdsa-p256"));
            }
            let transport_key = hsm.str("transport_key")?;
            let is_id = transport_key.len() == 64
                && transport_key
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !is_id {
                return Err(hsm.fail(
                    "transport_key",
                    "must be the id of a registered transport key: 64 lower-case hex digits",
                ));
            }
            Ok(KeySource::Hsm(HsmKeyRequest {
                algorithm: algorithm.to_owned(),
                transport_key: transport_key.to_owned(),
            }))
        }
        _ => Err(f.fail("key", "exactly one of csr or hsm")),
    }
}

/// The body as JSON, within [`MAX_BODY`].
pub(crate) fn parse_body(body: &[u8]) -> Result<serde_json::Value, ChannelError> {
    if body.len() > MAX_BODY {
        return Err(ChannelError::request(
            "body",
            format!(
                "is {} bytes; at most {MAX_BODY} (1 MiB) are accepted",
                body.len()
            ),
        ));
    }
    parse_json(body, "body", request_error)
}

pub(crate) fn request_error(field: String, rule: String) -> ChannelError {
    ChannelError::Request { field, rule }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    /// A transport key's id.
    const TK: &str = crate::testing::TRANSPORT_KEY;

    fn body() -> Value {
        json!({"v":1,"kdbo":"MAM=","firmware_sha256":"Ab".repeat(32),"validity_days":730,
               "auth_certificate":"MAQ=","auth_chain":["MAU="],"key":{"csr":"MAY="},
               "overwrite_serial":"0A1B","slots":{"total":3,"used":2},"later_field":{"x":1},
               "mobile":"05321234567","email":"ayse@example.com","security_word":"gizli1234"})
    }

    fn parse(value: &Value) -> Result<ApplicationRequest, ChannelError> {
        ApplicationRequest::parse(value.to_string().as_bytes())
    }

    fn refusal(value: &Value) -> String {
        let e = parse(value).unwrap_err();
        assert_eq!((e.code(), e.http_status()), ("request", 400));
        e.to_string()
    }

    fn with(path: &[&str], value: Value) -> Value {
        let mut v = body();
        let mut at = &mut v;
        for p in &path[..path.len() - 1] {
            at = &mut at[*p];
        }
        at[path[path.len() - 1]] = value;
        v
    }

    #[test]
    fn a_full_body_parses() {
        let r = parse(&body()).unwrap();
        assert_eq!(
            r,
            ApplicationRequest {
                kdbo: vec![0x30, 0x03],
                firmware_sha256: "Ab".repeat(32),
                validity_days: Some(730),
                auth_certificate: vec![0x30, 0x04],
                auth_chain: vec![vec![0x30, 0x05]],
                key: KeySource::Csr(vec![0x30, 0x06]),
                overwrite_serial: Some("0a1b".into()),
                slots: Some(Slots { total: 3, used: 2 }),
                mobile: Some("05321234567".into()),
                email: Some("ayse@example.com".into()),
                security_word: Some(SecretText("gizli1234".into())),
            }
        );
        // The word is never in a debug print (a log line).
        assert!(!format!("{r:?}").contains("gizli1234"));
    }

    #[test]
    fn optional_fields_may_be_absent_or_null() {
        let mut v = body();
        for k in [
            "validity_days",
            "auth_chain",
            "overwrite_serial",
            "slots",
            "mobile",
            "email",
            "security_word",
        ] {
            v.as_object_mut().unwrap().remove(k);
        }
        let r = parse(&v).unwrap();
        assert_eq!(
            (
                r.validity_days,
                r.auth_chain.len(),
                r.overwrite_serial,
                r.slots
            ),
            (None, 0, None, None)
        );
        let nulls = with(&["validity_days"], Value::Null);
        assert_eq!(parse(&nulls).unwrap().validity_days, None);
    }

    #[test]
    fn an_hsm_key_parses() {
        let v = with(
            &["key"],
            json!({"hsm":{"algorithm":"ecdsa-p256","transport_key":TK}}),
        );
        assert_eq!(
            parse(&v).unwrap().key,
            KeySource::Hsm(HsmKeyRequest {
                algorithm: "ecdsa-p256".into(),
                transport_key: TK.into()
            })
        );
    }

    #[test]
    fn each_ill_formed_field_is_named() {
        let cases = [
            (with(&["v"], json!(2)), "v: must be 1"),
            (with(&["kdbo"], Value::Null), "kdbo: is required"),
            (
                with(&["kdbo"], json!("@@")),
                "kdbo: must be standard base64 with padding",
            ),
            (
                with(&["firmware_sha256"], json!("abc")),
                "firmware_sha256: must be 64 hex digits",
            ),
            (
                with(&["validity_days"], json!(0)),
                "validity_days: must be a whole number from 1",
            ),
            (
                with(&["validity_days"], json!("730")),
                "validity_days: must be a whole number from 1",
            ),
            (
                with(&["auth_certificate"], json!(1)),
                "auth_certificate: must be a string",
            ),
            (
                with(&["auth_chain"], json!("MAU=")),
                "auth_chain: must be a list of base64 strings",
            ),
            (
                with(&["auth_chain"], json!(["MAU=", 5])),
                "auth_chain[1]: must be a base64 string",
            ),
            (
                with(&["key"], Value::Null),
                "key: is required: exactly one of csr or hsm",
            ),
            (with(&["key"], json!({})), "key: exactly one of csr or hsm"),
            (
                with(
                    &["key", "hsm"],
                    json!({"algorithm":"ecdsa-p256","transport_key":TK}),
                ),
                "key: exactly one of csr or hsm",
            ),
            (
                with(&["key"], json!({"hsm":{"transport_key":TK}})),
                "key.hsm.algorithm: is required",
            ),
            (
                with(&["key"], json!({"hsm":{"algorithm":"ecdsa-p256"}})),
                "key.hsm.transport_key: is required",
            ),
            (
                with(
                    &["key"],
                    json!({"hsm":{"algorithm":"ecdsa-p256","transport_key":"MIIBIjAN"}}),
                ),
                "key.hsm.transport_key: must be the id of a registered transport key: 64 lower-case hex digits",
            ),
            (
                with(&["key"], json!({"hsm":"rsa"})),
                "key.hsm: must be a JSON object",
            ),
            (
                with(&["key", "csr"], json!("")),
                "key.csr: must not be empty",
            ),
            (
                with(&["overwrite_serial"], json!("xyz")),
                "overwrite_serial: must be 1 to 40 hex digits",
            ),
            (
                with(&["slots", "total"], json!(-1)),
                "slots.total: must be a whole number from 0",
            ),
            (
                with(&["slots"], json!({"total":3})),
                "slots.used: is required",
            ),
        ];
        for (value, expected) in cases {
            let text = refusal(&value);
            assert!(text.starts_with(expected), "{text} / {expected}");
        }
    }

    #[test]
    fn the_body_is_bounded_and_must_be_json() {
        let big = vec![b' '; MAX_BODY + 1];
        let e = ApplicationRequest::parse(&big).unwrap_err();
        assert_eq!(
            e.to_string(),
            "body: is 1048577 bytes; at most 1048576 (1 MiB) are accepted"
        );
        let e = ApplicationRequest::parse(b"kdbo=MAM=").unwrap_err();
        assert!(e.to_string().starts_with("body: is not JSON"), "{e}");
        assert_eq!(refusal(&json!([1])), "body: must be a JSON object");
    }
}
