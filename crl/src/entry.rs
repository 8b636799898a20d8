//! revokedCertificates entries (RFC 5280 §5.1.2.6) and their extensions (§5.3), encoded by
//! hand straight into the TBS buffer.
//!
//! ```text
//! SEQUENCE {
//!     userCertificate     CertificateSerialNumber,
//!     revocationDate      Time,
//!     crlEntryExtensions  Extensions OPTIONAL
//! }
//! ```

use const_oid::db::rfc5280::{ID_CE_CRL_REASONS, ID_CE_INVALIDITY_DATE};
use nesca_ca_types::{RevocationReason, Serial, UnixTime};

use crate::error::CrlError;
use crate::tlv::{self, push_tlv};

/// One revokedCertificates entry (RFC 5280 §5.1.2.6, §5.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlEntry {
    /// userCertificate: the revoked certificate's serial number (§4.1.2.2).
    pub serial: Serial,
    /// revocationDate (§5.1.2.6).
    pub revocation_time: UnixTime,
    /// reasonCode (§5.3.1). `None`: unspecified, and reasonCode is omitted as §5.3.1 asks.
    pub reason: Option<RevocationReason>,
    /// invalidityDate (§5.3.2): when the key is known or suspected to have been compromised.
    /// Always written as GeneralizedTime.
    pub invalidity_date: Option<UnixTime>,
}

/// Encodes entries one after another, reusing its scratch buffers so an entry costs no
/// allocation beyond the serial's octets.
pub(crate) struct EntryEncoder {
    /// Whether the CRL is a delta CRL: removeFromCRL is allowed only there (§5.3.1).
    delta: bool,
    /// The previous entry's serial: an adjacent duplicate is caught in O(1) memory (see
    /// [`crate::generate`] for why that is the whole duplicate check).
    previous: Option<Serial>,
    body: Vec<u8>,
    extensions: Vec<u8>,
    extension: Vec<u8>,
    value: Vec<u8>,
}

/// The largest serial number content RFC 5280 §4.1.2.2 allows.
const MAX_SERIAL_OCTETS: usize = 20;

impl EntryEncoder {
    pub(crate) fn new(delta: bool) -> Self {
        EntryEncoder {
            delta,
            previous: None,
            body: Vec::with_capacity(64),
            extensions: Vec::with_capacity(48),
            extension: Vec::with_capacity(32),
            value: Vec::with_capacity(17),
        }
    }

    /// Checks `entry`, the `index`th of the source (0-based), and appends its DER to `out`.
    /// On error `out` is unchanged and the error is [`CrlError::Entry`] with the rule broken.
    pub(crate) fn encode(
        &mut self,
        index: u64,
        entry: &CrlEntry,
        out: &mut Vec<u8>,
    ) -> Result<(), CrlError> {
        let at = At {
            index,
            serial: &entry.serial,
        };
        let serial = entry.serial.to_der_bytes();
        check_serial(&at, &serial)?;
        if self.previous == Some(entry.serial) {
            return Err(at.refuse("serial listed twice (the same serial as the previous entry)"));
        }

        self.body.clear();
        if !push_tlv(&mut self.body, tlv::TAG_INTEGER, &serial) {
            return Err(at.refuse("serial does not encode"));
        }
        tlv::push_time(&mut self.body, "revocationDate", entry.revocation_time)
            .map_err(|e| at.time(e))?;

        self.extensions.clear();
        if let Some(reason) = entry.reason {
            let code = check_reason(&at, reason, self.delta)?;
            // extnValue = DER of CRLReason ::= ENUMERATED; critical is DEFAULT FALSE and so
            // omitted (§5.3.1: reasonCode is non-critical).
            push_extension(
                &at,
                &mut self.extensions,
                &mut self.extension,
                ID_CE_CRL_REASONS.as_bytes(),
                &[tlv::TAG_ENUMERATED, 1, code],
            )?;
        }
        if let Some(invalidity) = entry.invalidity_date {
            self.value.clear();
            tlv::push_generalized_time(&mut self.value, "invalidityDate", invalidity)
                .map_err(|e| at.time(e))?;
            push_extension(
                &at,
                &mut self.extensions,
                &mut self.extension,
                ID_CE_INVALIDITY_DATE.as_bytes(),
                &self.value,
            )?;
        }
        // crlEntryExtensions is absent rather than an empty SEQUENCE when there is nothing
        // to say (Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension).
        if !self.extensions.is_empty()
            && !push_tlv(&mut self.body, tlv::TAG_SEQUENCE, &self.extensions)
        {
            return Err(at.refuse("crlEntryExtensions do not encode"));
        }
        if !push_tlv(out, tlv::TAG_SEQUENCE, &self.body) {
            return Err(at.refuse("entry does not encode"));
        }
        self.previous = Some(entry.serial);
        Ok(())
    }
}

/// Which entry is being encoded, so that every refusal names it.
struct At<'a> {
    index: u64,
    serial: &'a Serial,
}

impl At<'_> {
    /// [`CrlError::Entry`]: this entry breaks `rule`.
    fn refuse(&self, rule: impl Into<String>) -> CrlError {
        CrlError::Entry {
            index: self.index,
            serial: self.serial.to_hex(),
            rule: rule.into(),
        }
    }

    /// A time of this entry that X.509 cannot carry ([`CrlError::Time`] from `tlv`), as the
    /// entry's refusal naming the field; any other error is passed on as it is.
    fn time(&self, e: CrlError) -> CrlError {
        match e {
            CrlError::Time { field, unix, rule } => {
                self.refuse(format!("{field}: {unix} is {rule} and cannot be encoded"))
            }
            other => other,
        }
    }
}

/// Positive and at most 20 octets (RFC 5280 §4.1.2.2; §5.1.2.6 lists certificates by it).
fn check_serial(at: &At<'_>, content: &[u8]) -> Result<(), CrlError> {
    if content.len() > MAX_SERIAL_OCTETS {
        return Err(at.refuse(format!(
            "serial number is {} octets; RFC 5280 §4.1.2.2 allows at most {MAX_SERIAL_OCTETS}",
            content.len()
        )));
    }
    if content.iter().all(|b| *b == 0) || content.first().is_some_and(|b| b & 0x80 != 0) {
        return Err(at.refuse("serial number must be positive (RFC 5280 §4.1.2.2)"));
    }
    Ok(())
}

/// The ENUMERATED value to write, or why none may be written.
fn check_reason(at: &At<'_>, reason: RevocationReason, delta: bool) -> Result<u8, CrlError> {
    let code = reason.code();
    match code {
        // RevocationReason has no unspecified variant today; the check stays in case one is
        // added, since the rule is the CRL's, not the type's.
        0 => {
            Err(at
                .refuse("reasonCode unspecified(0) must be omitted, not written (RFC 5280 §5.3.1)"))
        }
        7 => Err(at.refuse("reasonCode 7 is not used (RFC 5280 §5.3.1)")),
        8 if !delta => {
            Err(at.refuse("removeFromCRL(8) appears only in delta CRLs (RFC 5280 §5.3.1)"))
        }
        1..=10 => Ok(code),
        _ => Err(at.refuse(format!(
            "reasonCode {code} is not a CRLReason (RFC 5280 §5.3.1)"
        ))),
    }
}

/// Appends `Extension ::= SEQUENCE { extnID, extnValue OCTET STRING }` (critical omitted:
/// DEFAULT FALSE, and every entry extension nesca writes is non-critical).
fn push_extension(
    at: &At<'_>,
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    oid: &[u8],
    value_der: &[u8],
) -> Result<(), CrlError> {
    scratch.clear();
    let ok = push_tlv(scratch, tlv::TAG_OID, oid)
        && push_tlv(scratch, tlv::TAG_OCTET_STRING, value_der)
        && push_tlv(out, tlv::TAG_SEQUENCE, scratch);
    if ok {
        Ok(())
    } else {
        Err(at.refuse("crlEntryExtension does not encode"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::{Decode, Encode};
    use x509_cert::crl::RevokedCert;
    use x509_cert::ext::pkix::crl::CrlReason;
    use x509_cert::ext::Extension;

    fn serial(hex: &str) -> Serial {
        Serial::parse_hex(hex).unwrap()
    }

    fn encode(entry: &CrlEntry, delta: bool) -> Result<Vec<u8>, CrlError> {
        let mut out = Vec::new();
        EntryEncoder::new(delta).encode(0, entry, &mut out)?;
        Ok(out)
    }

    /// The rule of an entry's refusal.
    fn rule(e: CrlError) -> String {
        match e {
            CrlError::Entry { rule, .. } => rule,
            other => panic!("not an entry error: {other}"),
        }
    }

    #[test]
    fn minimal_entry_has_no_extensions() {
        let e = CrlEntry {
            serial: serial("0a:bc"),
            revocation_time: UnixTime::from_secs(1_795_305_600),
            reason: None,
            invalidity_date: None,
        };
        let der = encode(&e, false).unwrap();
        assert_eq!(der, b"\x30\x13\x02\x02\x0a\xbc\x17\x0d261122000000Z");
        let rc = RevokedCert::from_der(&der).unwrap();
        assert_eq!(rc.serial_number.as_bytes(), [0x0a, 0xbc]);
        assert!(rc.crl_entry_extensions.is_none());
    }

    #[test]
    fn entry_matches_what_der_encodes_for_the_same_value() {
        let s = Serial::random();
        let e = CrlEntry {
            serial: s,
            revocation_time: UnixTime::from_secs(2_600_000_000), // 2052: GeneralizedTime
            reason: Some(RevocationReason::KeyCompromise),
            invalidity_date: Some(UnixTime::from_secs(1_700_000_000)),
        };
        let mine = encode(&e, false).unwrap();
        let reason = Extension {
            extn_id: ID_CE_CRL_REASONS,
            critical: false,
            extn_value: der::asn1::OctetString::new(CrlReason::KeyCompromise.to_der().unwrap())
                .unwrap(),
        };
        let inv = Extension {
            extn_id: ID_CE_INVALIDITY_DATE,
            critical: false,
            extn_value: der::asn1::OctetString::new(
                der::asn1::GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(
                    1_700_000_000,
                ))
                .unwrap()
                .to_der()
                .unwrap(),
            )
            .unwrap(),
        };
        let theirs = RevokedCert {
            serial_number: x509_cert::serial_number::SerialNumber::new(&s.to_der_bytes()).unwrap(),
            revocation_date: crate::tlv::time("revocationDate", UnixTime::from_secs(2_600_000_000))
                .unwrap(),
            crl_entry_extensions: Some(vec![reason, inv]),
        }
        .to_der()
        .unwrap();
        assert_eq!(mine, theirs);
    }

    #[test]
    fn remove_from_crl_only_in_delta() {
        let e = CrlEntry {
            serial: Serial::random(),
            revocation_time: UnixTime::from_secs(1_795_305_600),
            reason: Some(RevocationReason::RemoveFromCrl),
            invalidity_date: None,
        };
        assert!(rule(encode(&e, false).unwrap_err()).contains("only in delta"));
        let der = encode(&e, true).unwrap();
        let rc = RevokedCert::from_der(&der).unwrap();
        let ext = &rc.crl_entry_extensions.unwrap()[0];
        assert_eq!(
            CrlReason::from_der(ext.extn_value.as_bytes()).unwrap(),
            CrlReason::RemoveFromCRL
        );
    }

    #[test]
    fn bad_serials_and_times_are_refused_without_output() {
        let mut enc = EntryEncoder::new(false);
        let mut out = Vec::new();
        let mut e = CrlEntry {
            serial: serial("00"),
            revocation_time: UnixTime::from_secs(1_795_305_600),
            reason: None,
            invalidity_date: None,
        };
        let err = enc.encode(7, &e, &mut out).unwrap_err();
        assert!(
            matches!(&err, CrlError::Entry { index: 7, serial, .. } if serial == &e.serial.to_hex()),
            "{err}"
        );
        assert!(rule(err).contains("positive"));
        // 20 octets with the high bit set would need a 21st octet: Serial refuses to hold one.
        assert!(Serial::parse_hex(&"ff".repeat(20)).is_err());
        e.serial = Serial::random();
        e.revocation_time = UnixTime::from_secs(-1);
        assert!(rule(enc.encode(0, &e, &mut out).unwrap_err())
            .starts_with("revocationDate: -1 is before 1970"));
        e.revocation_time = UnixTime::EPOCH;
        e.invalidity_date = Some(UnixTime::from_secs(i64::MAX));
        assert!(rule(enc.encode(0, &e, &mut out).unwrap_err()).contains("invalidityDate"));
        assert!(out.is_empty());
    }

    #[test]
    fn adjacent_duplicate_serial_is_refused() {
        let mut enc = EntryEncoder::new(false);
        let mut out = Vec::new();
        let e = CrlEntry {
            serial: Serial::random(),
            revocation_time: UnixTime::from_secs(1_795_305_600),
            reason: Some(RevocationReason::CertificateHold),
            invalidity_date: None,
        };
        enc.encode(0, &e, &mut out).unwrap();
        let len = out.len();
        assert!(rule(enc.encode(1, &e, &mut out).unwrap_err()).contains("twice"));
        assert_eq!(out.len(), len);
    }
}
