//! The KDB (kimlik doğrulama bildirimi, identity verification notice): the JSON that a KDBO signs.
//! Checks 5 (`kdb`) and 6 (`kdb_age`) of the protocol.

use sha2::{Digest, Sha256};

use crate::error::ChannelError;
use crate::fields::{parse_json, Fields};
use crate::identifiers::{is_valid_kdb_id, is_valid_tckn, normalize_serial};

/// How far in the future `verified_at` may lie: the partner's clock may run a little ahead.
pub const MAX_CLOCK_SKEW_SECONDS: i64 = 5 * 60;

/// The longest `method` accepted (it is free text, kept as evidence).
const MAX_METHOD_LEN: usize = 128;

/// What the identity verification was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A certificate application.
    Application,
    /// The holder asks to revoke the certificate `serial`.
    Revoke,
    /// The holder asks to suspend the certificate `serial`.
    Suspend,
    /// The holder asks to lift the suspension of the certificate `serial`.
    Unsuspend,
}

impl Purpose {
    /// The purpose named `s` in the protocol (`"application"`, `"revoke"`, …).
    pub fn parse(s: &str) -> Option<Purpose> {
        match s {
            "application" => Some(Purpose::Application),
            "revoke" => Some(Purpose::Revoke),
            "suspend" => Some(Purpose::Suspend),
            "unsuspend" => Some(Purpose::Unsuspend),
            _ => None,
        }
    }

    /// The protocol's name of the purpose.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Application => "application",
            Purpose::Revoke => "revoke",
            Purpose::Suspend => "suspend",
            Purpose::Unsuspend => "unsuspend",
        }
    }
}

/// A KDB, version 1, checked field by field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kdb {
    /// The KDHS's (or KEC's) own id of the verification.
    pub kdb_id: String,
    pub purpose: Purpose,
    /// The verified person's T.C. Kimlik No.
    pub tckn: String,
    /// When the person was verified with the ID card, Unix seconds.
    pub verified_at: i64,
    /// How the person was verified (free text, e.g. `id-card-pin`).
    pub method: String,
    /// The certificate concerned (lower-case hex), for revoke, suspend and unsuspend only.
    pub serial: Option<String>,
}

impl Kdb {
    /// Reads the KDBO's signed content as a KDB v1; unknown fields are ignored.
    pub fn parse(content: &[u8]) -> Result<Kdb, ChannelError> {
        let value = parse_json(content, "kdb", kdb_error)?;
        let f = Fields::versioned(&value, "kdb", kdb_error)?;

        let kdb_id = f.str("kdb_id")?;
        if !is_valid_kdb_id(kdb_id) {
            return Err(f.fail(
                "kdb_id",
                "must be 1 to 64 of A-Z, a-z, 0-9, '.', '_', ':', '-'",
            ));
        }
        let purpose = Purpose::parse(f.str("purpose")?).ok_or_else(|| {
            f.fail(
                "purpose",
                "must be one of application, revoke, suspend, unsuspend",
            )
        })?;
        let tckn = f.str("tckn")?;
        if !is_valid_tckn(tckn) {
            return Err(f.fail(
                "tckn",
                "must be a T.C. Kimlik No (11 digits, valid check digits)",
            ));
        }
        let verified_at = f.i64("verified_at")?;
        let method = f.str("method")?;
        if method.trim().is_empty() || method.chars().count() > MAX_METHOD_LEN {
            return Err(f.fail(
                "method",
                format!("must be 1 to {MAX_METHOD_LEN} characters"),
            ));
        }
        let serial = match (purpose, f.opt_str("serial")?) {
            (Purpose::Application, None) => None,
            (Purpose::Application, Some(_)) => {
                return Err(f.fail("serial", "only for revoke, suspend and unsuspend"))
            }
            (_, None) => {
                return Err(f.fail("serial", "is required for revoke, suspend and unsuspend"))
            }
            (_, Some(s)) => Some(
                normalize_serial(s)
                    .ok_or_else(|| f.fail("serial", "must be 1 to 40 hex digits"))?,
            ),
        };
        Ok(Kdb {
            kdb_id: kdb_id.to_owned(),
            purpose,
            tckn: tckn.to_owned(),
            verified_at,
            method: method.to_owned(),
            serial,
        })
    }

    /// Check 5's last part: the KDB was made for what this endpoint does.
    pub fn require_purpose(&self, wanted: Purpose) -> Result<(), ChannelError> {
        if self.purpose == wanted {
            return Ok(());
        }
        Err(ChannelError::kdb(
            "kdb.purpose",
            format!(
                "must be \"{}\" here, not \"{}\"",
                wanted.as_str(),
                self.purpose.as_str()
            ),
        ))
    }

    /// Check 6: the verification is at most `max_age_minutes` old at `now` and at most
    /// [`MAX_CLOCK_SKEW_SECONDS`] in the future.
    pub fn check_age(&self, now: i64, max_age_minutes: u32) -> Result<(), ChannelError> {
        let age = now.saturating_sub(self.verified_at);
        if age > i64::from(max_age_minutes) * 60 {
            return Err(ChannelError::kdb_age(
                "kdb.verified_at",
                format!(
                    "the identity was verified {} minutes ago; at most {max_age_minutes} minutes are accepted",
                    // Rounded up, so that 15 min 30 s never reads as "15 minutes ago".
                    ceil_minutes(age)
                ),
            ));
        }
        let ahead = self.verified_at.saturating_sub(now);
        if ahead > MAX_CLOCK_SKEW_SECONDS {
            return Err(ChannelError::kdb_age(
                "kdb.verified_at",
                format!(
                    "lies {} minutes in the future; at most {} minutes of clock difference are accepted",
                    ceil_minutes(ahead),
                    MAX_CLOCK_SKEW_SECONDS / 60
                ),
            ));
        }
        Ok(())
    }
}

impl Kdb {
    /// The request's reference (`channel_ref` of an application, the id of a holder's
    /// lifecycle request): `"kdb-"` and the lower-case hex SHA-256 of `namespace` (whose
    /// `kdb_id`s these are: the partner's licence, to which check 4 binds the KDBO's signer,
    /// or for a KEC `LICENCE/DEVICE`; see `ChannelPolicy::replay_namespace`), the `kdb_id`,
    /// the `tckn`, the `purpose` and the `serial` concerned, each preceded by its length as 4
    /// bytes big-endian (an absent serial is empty).
    ///
    /// What identifies one verification is the partner's own id of it, not the bytes of its
    /// KDBO: a retry re-signs the KDB (a new signingTime, a new ECDSA signature), may carry
    /// other certificates, or even write the KDB anew (another `verified_at`, another key
    /// order), and each would otherwise be a new application and a second certificate. The
    /// person, the purpose and the certificate are part of the key, so that a partner that
    /// reuses an id for another person or another request gets that request decided on its
    /// own, never another person's answer.
    pub fn reference(&self, namespace: &str) -> String {
        let mut digest = Sha256::new();
        for part in [
            namespace,
            &self.kdb_id,
            &self.tckn,
            self.purpose.as_str(),
            self.serial.as_deref().unwrap_or(""),
        ] {
            // Every part is short (a certificate field or a checked KDB field), far below 4 GiB.
            let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
            digest.update(len.to_be_bytes());
            digest.update(part.as_bytes());
        }
        format!("kdb-{}", hex::encode(digest.finalize()))
    }
}

fn ceil_minutes(seconds: i64) -> i64 {
    seconds.saturating_add(59) / 60
}

fn kdb_error(field: String, rule: String) -> ChannelError {
    ChannelError::Kdb { field, rule }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn kdb_json() -> Value {
        json!({"v":1,"kdb_id":"kdhs:0001","purpose":"application","tckn":"10000000146",
               "verified_at":1_767_225_000,"method":"id-card-pin","extra":"ignored"})
    }

    fn parse(value: &Value) -> Result<Kdb, ChannelError> {
        Kdb::parse(value.to_string().as_bytes())
    }

    fn with(field: &str, value: Value) -> Value {
        let mut v = kdb_json();
        v[field] = value;
        v
    }

    #[test]
    fn a_good_kdb_parses() {
        let kdb = parse(&kdb_json()).unwrap();
        assert_eq!(
            kdb,
            Kdb {
                kdb_id: "kdhs:0001".into(),
                purpose: Purpose::Application,
                tckn: "10000000146".into(),
                verified_at: 1_767_225_000,
                method: "id-card-pin".into(),
                serial: None,
            }
        );
        let revoke = parse(
            &json!({"v":1,"kdb_id":"x","purpose":"revoke","tckn":"10000000146",
            "verified_at":1,"method":"m","serial":"0A1B"}),
        )
        .unwrap();
        assert_eq!(
            (revoke.purpose, revoke.serial.as_deref()),
            (Purpose::Revoke, Some("0a1b"))
        );
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases = [
            (with("v", json!(2)), "kdb.v: must be 1"),
            (with("kdb_id", json!("a b")), "kdb.kdb_id: must be 1 to 64"),
            (
                with("kdb_id", json!("a".repeat(65))),
                "kdb.kdb_id: must be 1 to 64",
            ),
            (
                with("purpose", json!("renew")),
                "kdb.purpose: must be one of",
            ),
            (
                with("tckn", json!("17291716050")),
                "kdb.tckn: must be a T.C. Kimlik No",
            ),
            (
                with("tckn", json!(10000000146_u64)),
                "kdb.tckn: must be a string",
            ),
            (
                with("verified_at", json!("now")),
                "kdb.verified_at: must be a whole number",
            ),
            (with("method", json!("")), "kdb.method: must be 1 to 128"),
            (with("serial", json!("0a1b")), "kdb.serial: only for revoke"),
            (
                with("purpose", json!("suspend")),
                "kdb.serial: is required for revoke",
            ),
            (json!({"v":1}), "kdb.kdb_id: is required"),
        ];
        for (value, expected) in cases {
            let e = parse(&value).unwrap_err();
            assert_eq!(e.code(), "kdb");
            assert!(e.to_string().starts_with(expected), "{e} / {expected}");
        }
        let not_json = Kdb::parse(b"\x30\x03abc").unwrap_err();
        assert!(
            not_json.to_string().starts_with("kdb: is not JSON"),
            "{not_json}"
        );
    }

    #[test]
    fn the_reference_is_the_verification_not_its_encoding() {
        let kdb = parse(&kdb_json()).unwrap();
        let reference = kdb.reference("KDHS-LIC-1");
        assert!(reference.starts_with("kdb-"), "{reference}");
        assert_eq!(reference.len(), 4 + 64);
        let mut expected = Vec::new();
        for part in ["KDHS-LIC-1", "kdhs:0001", "10000000146", "application", ""] {
            expected.extend_from_slice(&(part.len() as u32).to_be_bytes());
            expected.extend_from_slice(part.as_bytes());
        }
        assert_eq!(
            reference,
            format!("kdb-{}", hex::encode(Sha256::digest(&expected)))
        );

        // The same verification written anew (another time, method, key order) is the same.
        let rewritten = Kdb::parse(
            br#"{"method":"pin","verified_at":1767229999,"tckn":"10000000146","purpose":"application","kdb_id":"kdhs:0001","v":1}"#,
        )
        .unwrap();
        assert_eq!(rewritten.reference("KDHS-LIC-1"), reference);

        // Another partner, id, person, purpose or certificate is another request.
        assert_ne!(kdb.reference("KDHS-LIC-2"), reference);
        for (field, value) in [
            ("kdb_id", json!("kdhs:0002")),
            ("tckn", json!("10000000078")),
        ] {
            assert_ne!(
                parse(&with(field, value)).unwrap().reference("KDHS-LIC-1"),
                reference
            );
        }
        let suspend = |serial: &str| {
            parse(
                &json!({"v":1,"kdb_id":"kdhs:0001","purpose":"suspend","tckn":"10000000146",
                          "verified_at":1,"method":"m","serial":serial}),
            )
            .unwrap()
            .reference("KDHS-LIC-1")
        };
        assert_ne!(suspend("0a"), reference);
        assert_ne!(suspend("0a"), suspend("0b"));
        // The length prefixes keep the parts apart.
        assert_ne!(
            parse(&with("kdb_id", json!("1:0001")))
                .unwrap()
                .reference("KDHS-LIC-1"),
            parse(&with("kdb_id", json!("0001")))
                .unwrap()
                .reference("KDHS-LIC-11")
        );
    }

    #[test]
    fn purpose_must_match_the_endpoint() {
        let kdb = parse(&kdb_json()).unwrap();
        assert!(kdb.require_purpose(Purpose::Application).is_ok());
        let e = kdb.require_purpose(Purpose::Revoke).unwrap_err();
        assert_eq!(
            e.to_string(),
            "kdb.purpose: must be \"revoke\" here, not \"application\""
        );
        assert_eq!(e.code(), "kdb");
    }

    #[test]
    fn age_is_bounded_both_ways() {
        let kdb = parse(&kdb_json()).unwrap(); // verified_at 1_767_225_000
        let at = kdb.verified_at;
        assert!(kdb.check_age(at, 15).is_ok());
        assert!(kdb.check_age(at + 15 * 60, 15).is_ok());
        let old = kdb.check_age(at + 125 * 60, 15).unwrap_err();
        assert_eq!(
            old.to_string(),
            "kdb.verified_at: the identity was verified 125 minutes ago; at most 15 minutes are accepted"
        );
        assert_eq!(old.code(), "kdb_age");
        let just_over = kdb.check_age(at + 15 * 60 + 1, 15).unwrap_err();
        assert!(
            just_over.to_string().contains("verified 16 minutes ago"),
            "{just_over}"
        );
        assert!(kdb.check_age(at - 5 * 60, 15).is_ok());
        let future = kdb.check_age(at - 5 * 60 - 1, 15).unwrap_err();
        assert_eq!(
            future.to_string(),
            "kdb.verified_at: lies 6 minutes in the future; at most 5 minutes of clock difference are accepted"
        );
        // Extreme values neither overflow nor pass.
        assert!(kdb.check_age(i64::MAX, 1440).is_err());
        assert!(kdb.check_age(i64::MIN, 1440).is_err());
    }
}
