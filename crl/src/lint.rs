//! Checks before signing: the header as typed values (RFC 5280 §5, docs/STANDARDS.md "CRLs"),
//! and the assembled TBSCertList re-read by an independent DER decoder.
//!
//! Entries are checked one by one as they are encoded (`crate::entry`); here the assembled
//! bytes are re-decoded entry by entry, without allocating, so that a mistake in the
//! hand-written encoder or in the splicing of lengths cannot reach the signer.

use std::collections::HashSet;

use const_oid::db::rfc5280::{
    ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_CRL_NUMBER, ID_CE_CRL_REASONS, ID_CE_DELTA_CRL_INDICATOR,
    ID_CE_FRESHEST_CRL, ID_CE_INVALIDITY_DATE, ID_CE_KEY_USAGE,
};
use const_oid::ObjectIdentifier;
use der::asn1::{AnyRef, ContextSpecific, GeneralizedTime, IntRef, OctetStringRef};
use der::{Decode, Reader, SliceReader, Tag, TagNumber};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::crl::TbsCertList;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::crl::{BaseCrlNumber, CrlNumber, CrlReason, FreshestCrl};
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, KeyUsage};
use x509_cert::ext::{Extension, Extensions};
use x509_cert::name::Name;
use x509_cert::time::Time;
use x509_cert::Version;

use crate::error::CrlError;
use crate::header::{self, CrlHeader, CrlKind};

/// cRLNumber and BaseCRLNumber: at most 20 octets (RFC 5280 §5.2.3).
const MAX_CRL_NUMBER_OCTETS: usize = 20;
/// Serial number content octets: 20 (RFC 5280 §4.1.2.2), the limit the entry encoder applies.
const MAX_SERIAL_DECODE_OCTETS: usize = 20;

/// Lints the header `tbs` built for `header`, to be signed by a key with `signer_key` and
/// `signer_alg`. All findings are reported together, each naming its field.
pub(crate) fn lint_header(
    header: &CrlHeader<'_>,
    tbs: &TbsCertList,
    signer_alg: &AlgorithmIdentifierOwned,
    signer_key: &SubjectPublicKeyInfoOwned,
) -> Result<(), CrlError> {
    let mut f = Vec::new();
    lint_fields(tbs, signer_alg, &mut f);
    lint_extensions(header, tbs, &mut f);
    lint_issuer_cert(header, signer_key, &mut f);
    if f.is_empty() {
        Ok(())
    } else {
        Err(CrlError::Lint { findings: f })
    }
}

fn lint_fields(tbs: &TbsCertList, signer_alg: &AlgorithmIdentifierOwned, f: &mut Vec<String>) {
    // §5.1.2.1: v2 whenever extensions are present, and nesca always writes them.
    if tbs.version != Version::V2 {
        f.push(format!(
            "version: {:?}, must be v2 (RFC 5280 §5.1.2.1)",
            tbs.version
        ));
    }
    // §5.1.1.2: the outer signatureAlgorithm equals the TBS signature field; both come from
    // the signer, so this also guards the signer's answer against the header built earlier.
    if &tbs.signature != signer_alg {
        f.push("signature: must equal the signer's signature algorithm (RFC 5280 §5.1.2.2)".into());
    }
    // §5.1.2.3: the issuer field MUST contain a non-empty distinguished name.
    if tbs.issuer.0.is_empty() {
        f.push("issuer: must be a non-empty distinguished name (RFC 5280 §5.1.2.3)".into());
    }
    match tbs.next_update {
        // §5.1.2.5: conforming CRL issuers MUST include nextUpdate.
        None => f.push("nextUpdate: must be present (RFC 5280 §5.1.2.5)".into()),
        Some(next) if next.to_unix_duration() <= tbs.this_update.to_unix_duration() => {
            f.push(format!(
                "nextUpdate {next} must be after thisUpdate {} (RFC 5280 §5.1.2.5)",
                tbs.this_update
            ))
        }
        Some(_) => {}
    }
    if tbs
        .revoked_certificates
        .as_ref()
        .is_some_and(|r| r.is_empty())
    {
        f.push("revokedCertificates: must be absent rather than empty (RFC 5280 §5.1.2.6)".into());
    }
}

fn lint_extensions(header: &CrlHeader<'_>, tbs: &TbsCertList, f: &mut Vec<String>) {
    let exts = header::extensions(tbs);
    let mut seen = HashSet::new();
    for e in exts {
        if !seen.insert(e.extn_id) {
            f.push(format!(
                "crlExtensions: {} appears twice (RFC 5280 §4.2)",
                e.extn_id
            ));
        }
        if ![
            ID_CE_AUTHORITY_KEY_IDENTIFIER,
            ID_CE_CRL_NUMBER,
            ID_CE_FRESHEST_CRL,
            ID_CE_DELTA_CRL_INDICATOR,
        ]
        .contains(&e.extn_id)
        {
            f.push(format!(
                "crlExtensions: {} is not an extension nesca writes",
                e.extn_id
            ));
        }
    }

    // §5.2.1: conforming CRL issuers MUST use the key identifier method.
    match decode::<AuthorityKeyIdentifier>(
        exts,
        ID_CE_AUTHORITY_KEY_IDENTIFIER,
        "authorityKeyIdentifier",
        false,
        f,
    ) {
        None => f.push("authorityKeyIdentifier: must be present (RFC 5280 §5.2.1)".into()),
        Some(aki) => {
            let key_id = aki
                .key_identifier
                .as_ref()
                .map_or(&[][..], |k| k.as_bytes());
            if key_id.is_empty() {
                f.push("authorityKeyIdentifier: must carry keyIdentifier (RFC 5280 §5.2.1)".into());
            }
        }
    }

    // §5.2.3: MUST be present, non-critical, at most 20 octets.
    match decode::<CrlNumber>(exts, ID_CE_CRL_NUMBER, "cRLNumber", false, f) {
        None => f.push("cRLNumber: must be present (RFC 5280 §5.2.3)".into()),
        Some(n) => {
            number_fits("cRLNumber", &n.0, f);
            if n.0.as_bytes() != trimmed(header.number).as_slice() {
                f.push("cRLNumber: does not carry the header's number".into());
            }
        }
    }

    let delta = decode::<BaseCrlNumber>(
        exts,
        ID_CE_DELTA_CRL_INDICATOR,
        "deltaCRLIndicator",
        true,
        f,
    );
    let freshest = decode::<FreshestCrl>(exts, ID_CE_FRESHEST_CRL, "freshestCRL", false, f);
    match &header.kind {
        CrlKind::Full { freshest_crl } => {
            if delta.is_some() {
                f.push("deltaCRLIndicator: must not appear in a complete CRL".into());
            }
            match (freshest_crl, &freshest) {
                (Some(url), Some(points)) => {
                    if !is_single_uri(&points.0, url) {
                        f.push(format!("freshestCRL: must be one distribution point with the fullName URI {url}"));
                    }
                }
                (Some(_), None) => f.push("freshestCRL: missing".into()),
                (None, Some(_)) => f.push("freshestCRL: present but no delta URL given".into()),
                (None, None) => {}
            }
        }
        CrlKind::Delta { base_number } => {
            // §5.2.6: freshestCRL MUST NOT appear in delta CRLs.
            if freshest.is_some() {
                f.push("freshestCRL: must not appear in a delta CRL (RFC 5280 §5.2.6)".into());
            }
            match delta {
                None => f.push(
                    "deltaCRLIndicator: must be present in a delta CRL (RFC 5280 §5.2.4)".into(),
                ),
                Some(base) => {
                    number_fits("deltaCRLIndicator", &base.0, f);
                    if base.0.as_bytes() != trimmed(*base_number).as_slice() {
                        f.push("deltaCRLIndicator: does not carry the base CRL number".into());
                    }
                }
            }
            // §5.2.4: the delta's own cRLNumber, from the same sequence, comes after the
            // base's; a delta cannot update a complete CRL issued after it.
            if *base_number >= header.number {
                f.push(format!(
                    "deltaCRLIndicator: base CRL number {base_number} must be lower than the delta's cRLNumber {} (RFC 5280 §5.2.4)",
                    header.number
                ));
            }
        }
    }
}

/// The signing key must be the issuer certificate's, and that certificate must allow CRL
/// signing (RFC 5280 §4.2.1.3: cRLSign; CA certificates MUST carry keyUsage).
fn lint_issuer_cert(
    header: &CrlHeader<'_>,
    signer_key: &SubjectPublicKeyInfoOwned,
    f: &mut Vec<String>,
) {
    let tbs = &header.issuer_cert.tbs_certificate;
    if &tbs.subject_public_key_info != signer_key {
        f.push("signer: the signing key is not the issuer certificate's public key".into());
    }
    let exts = tbs.extensions.as_deref().unwrap_or(&[]);
    match exts.iter().find(|e| e.extn_id == ID_CE_KEY_USAGE) {
        None => f.push(
            "issuer certificate: has no keyUsage; a CRL issuer needs cRLSign (RFC 5280 §4.2.1.3)"
                .into(),
        ),
        Some(e) => match KeyUsage::from_der(e.extn_value.as_bytes()) {
            Ok(ku) if ku.crl_sign() => {}
            Ok(_) => {
                f.push("issuer certificate: keyUsage lacks cRLSign (RFC 5280 §4.2.1.3)".into())
            }
            Err(err) => f.push(format!(
                "issuer certificate: keyUsage does not decode: {err}"
            )),
        },
    }
}

/// Decodes the extension `oid` if present; a decoding failure or wrong criticality is a
/// finding.
fn decode<T: for<'a> Decode<'a>>(
    exts: &[Extension],
    oid: const_oid::ObjectIdentifier,
    name: &str,
    critical: bool,
    f: &mut Vec<String>,
) -> Option<T> {
    let e = exts.iter().find(|e| e.extn_id == oid)?;
    if e.critical != critical {
        let want = if critical { "critical" } else { "non-critical" };
        f.push(format!("{name}: must be {want}"));
    }
    match T::from_der(e.extn_value.as_bytes()) {
        Ok(v) => Some(v),
        Err(err) => {
            f.push(format!("{name}: does not decode: {err}"));
            None
        }
    }
}

fn number_fits(name: &str, n: &der::asn1::Uint, f: &mut Vec<String>) {
    // Content octets of the INTEGER, with the sign octet a high bit needs.
    let octets =
        n.as_bytes().len() + usize::from(n.as_bytes().first().is_some_and(|b| b & 0x80 != 0));
    if octets > MAX_CRL_NUMBER_OCTETS {
        f.push(format!(
            "{name}: {octets} octets, at most {MAX_CRL_NUMBER_OCTETS} (RFC 5280 §5.2.3)"
        ));
    }
}

/// Big-endian octets without leading zeros (one zero octet for 0), as `Uint` keeps them.
fn trimmed(n: u64) -> Vec<u8> {
    let be = n.to_be_bytes();
    let skip = be.iter().position(|b| *b != 0).unwrap_or(be.len() - 1);
    be[skip..].to_vec()
}

fn is_single_uri(points: &[DistributionPoint], url: &str) -> bool {
    matches!(points, [DistributionPoint {
        distribution_point: Some(DistributionPointName::FullName(names)),
        reasons: None,
        crl_issuer: None,
    }] if matches!(names.as_slice(), [GeneralName::UniformResourceIdentifier(u)] if u.as_str() == url))
}

/// Re-reads the assembled TBSCertList: its header fields must decode to exactly `expected`
/// (the linted header) and revokedCertificates must hold `entries` entries, each a valid
/// `RevokedCert`, or be absent when there are none.
pub(crate) fn check_assembled(
    tbs: &[u8],
    expected: &TbsCertList,
    entries: u64,
) -> Result<(), CrlError> {
    let reader = SliceReader::new(tbs).map_err(CrlError::der("assembled TBSCertList"))?;
    let (decoded, count) =
        decode_shallow(reader).map_err(CrlError::der("assembled TBSCertList"))?;
    let mut f = Vec::new();
    if &decoded != expected {
        f.push("assembled TBSCertList: header fields differ from the linted header".into());
    }
    match count {
        Some(0) => f.push("revokedCertificates: present but empty (RFC 5280 §5.1.2.6)".into()),
        Some(n) if n != entries => f.push(format!(
            "revokedCertificates: {n} entries decoded, {entries} encoded"
        )),
        None if entries != 0 => f.push(format!(
            "revokedCertificates: absent, {entries} entries encoded"
        )),
        _ => {}
    }
    if f.is_empty() {
        Ok(())
    } else {
        Err(CrlError::Lint { findings: f })
    }
}

/// Decodes one revokedCertificates entry (RFC 5280 §5.1.2.6) without allocating: the same
/// grammar `x509_cert::crl::RevokedCert` reads, with borrowed types, and the values of the
/// two entry extensions nesca writes. A million entries take a fraction of a second.
fn decode_entry<'a, R: Reader<'a>>(r: &mut R) -> der::Result<()> {
    r.sequence(|e| {
        let serial = AnyRef::decode(e)?;
        // IntRef checks the INTEGER is canonical (X.690 §8.3.2); positive, non-zero and at
        // most 20 octets is RFC 5280 §4.1.2.2.
        IntRef::try_from(serial)?;
        let octets = serial.value();
        let positive =
            octets.first().is_some_and(|b| b & 0x80 == 0) && octets.iter().any(|b| *b != 0);
        if !positive || octets.len() > MAX_SERIAL_DECODE_OCTETS {
            return Err(Tag::Integer.value_error());
        }
        Time::decode(e)?;
        if !e.is_finished() {
            e.sequence(|exts| {
                while !exts.is_finished() {
                    exts.sequence(|x| {
                        let oid = ObjectIdentifier::decode(x)?;
                        // critical is DEFAULT FALSE: DER omits it, and nesca's entry
                        // extensions are non-critical.
                        let value = OctetStringRef::decode(x)?;
                        if oid == ID_CE_CRL_REASONS {
                            CrlReason::from_der(value.as_bytes())?;
                        } else if oid == ID_CE_INVALIDITY_DATE {
                            GeneralizedTime::from_der(value.as_bytes())?;
                        } else {
                            return Err(Tag::ObjectIdentifier.value_error());
                        }
                        Ok(())
                    })?;
                }
                Ok(())
            })?;
        }
        Ok(())
    })
}

/// Decodes a TBSCertList without keeping its entries: the header as a `TbsCertList` with
/// `revoked_certificates: None`, and the number of entries (`None`: element absent).
fn decode_shallow(mut reader: SliceReader<'_>) -> der::Result<(TbsCertList, Option<u64>)> {
    let value = reader.sequence(|r| {
        let version = Version::decode(r)?;
        let signature = AlgorithmIdentifierOwned::decode(r)?;
        let issuer = Name::decode(r)?;
        let this_update = Time::decode(r)?;
        let next_update = Option::<Time>::decode(r)?;
        let mut count = None;
        if !r.is_finished() && r.peek_tag()? == Tag::Sequence {
            count = Some(r.sequence(|list| {
                let mut n = 0u64;
                while !list.is_finished() {
                    decode_entry(list)?;
                    n += 1;
                }
                Ok(n)
            })?);
        }
        let crl_extensions =
            ContextSpecific::<Extensions>::decode_explicit(r, TagNumber::N0)?.map(|c| c.value);
        let tbs = TbsCertList {
            version,
            signature,
            issuer,
            this_update,
            next_update,
            revoked_certificates: None,
            crl_extensions,
        };
        Ok((tbs, count))
    })?;
    reader.finish(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::{encode_parts, tbs_without_entries};
    use crate::testkit::{Issuer, NOW};
    use der::Encode;
    use nesca_ca_types::TbsSigner;

    fn header(issuer: &Issuer, kind: CrlKind) -> CrlHeader<'_> {
        CrlHeader {
            issuer_cert: &issuer.cert,
            number: 10,
            this_update: NOW,
            next_update: NOW.plus_secs(3600),
            kind,
        }
    }

    fn lint(issuer: &Issuer, h: &CrlHeader<'_>, tbs: &TbsCertList) -> Vec<String> {
        match lint_header(
            h,
            tbs,
            &issuer.signer.signature_algorithm(),
            &issuer.signer.public_key(),
        ) {
            Ok(()) => vec![],
            Err(CrlError::Lint { findings }) => findings,
            Err(e) => panic!("{e}"),
        }
    }

    fn has(findings: &[String], needle: &str) -> bool {
        findings.iter().any(|f| f.contains(needle))
    }

    #[test]
    fn built_headers_are_clean() {
        let issuer = Issuer::new();
        for kind in [
            CrlKind::Full { freshest_crl: None },
            CrlKind::Full {
                freshest_crl: Some("http://x/d.crl".into()),
            },
            CrlKind::Delta { base_number: 9 },
        ] {
            let h = header(&issuer, kind);
            let tbs = tbs_without_entries(&h, issuer.signer.signature_algorithm()).unwrap();
            assert_eq!(lint(&issuer, &h, &tbs), Vec::<String>::new());
        }
    }

    #[test]
    fn lint_catches_what_the_builder_never_writes() {
        let issuer = Issuer::new();
        let h = header(&issuer, CrlKind::Delta { base_number: 9 });
        let good = tbs_without_entries(&h, issuer.signer.signature_algorithm()).unwrap();

        let mut t = good.clone();
        t.version = x509_cert::Version::V1;
        assert!(has(&lint(&issuer, &h, &t), "must be v2"));

        let mut t = good.clone();
        t.next_update = None;
        assert!(has(&lint(&issuer, &h, &t), "nextUpdate: must be present"));

        let mut t = good.clone();
        t.revoked_certificates = Some(vec![]);
        assert!(has(&lint(&issuer, &h, &t), "absent rather than empty"));

        let mut t = good.clone();
        t.signature.oid = const_oid::db::rfc5912::SHA_256_WITH_RSA_ENCRYPTION;
        assert!(has(&lint(&issuer, &h, &t), "signature: must equal"));

        let mut t = good.clone();
        t.issuer = x509_cert::name::Name::default();
        assert!(has(&lint(&issuer, &h, &t), "issuer: must be a non-empty"));

        // Extensions: [AKI, cRLNumber, deltaCRLIndicator].
        let mut t = good.clone();
        t.crl_extensions.as_mut().unwrap()[2].critical = false;
        assert!(has(
            &lint(&issuer, &h, &t),
            "deltaCRLIndicator: must be critical"
        ));

        let mut t = good.clone();
        t.crl_extensions.as_mut().unwrap().remove(0);
        assert!(has(
            &lint(&issuer, &h, &t),
            "authorityKeyIdentifier: must be present"
        ));

        let mut t = good.clone();
        t.crl_extensions.as_mut().unwrap().remove(1);
        assert!(has(&lint(&issuer, &h, &t), "cRLNumber: must be present"));

        let mut t = good.clone();
        t.crl_extensions.as_mut().unwrap().remove(2);
        assert!(has(
            &lint(&issuer, &h, &t),
            "deltaCRLIndicator: must be present"
        ));

        let mut t = good.clone();
        let dup = t.crl_extensions.as_ref().unwrap()[1].clone();
        t.crl_extensions.as_mut().unwrap().push(dup);
        assert!(has(&lint(&issuer, &h, &t), "appears twice"));

        let mut t = good.clone();
        t.crl_extensions.as_mut().unwrap()[1].extn_value = der::asn1::OctetString::new(
            vec![0x02, 0x15, 0x01]
                .into_iter()
                .chain([0u8; 20])
                .collect::<Vec<u8>>(),
        )
        .unwrap();
        assert!(has(&lint(&issuer, &h, &t), "cRLNumber: 21 octets"));

        // A delta CRL does not carry freshestCRL; a full CRL not deltaCRLIndicator.
        let full_h = header(
            &issuer,
            CrlKind::Full {
                freshest_crl: Some("http://x/d.crl".into()),
            },
        );
        let full = tbs_without_entries(&full_h, issuer.signer.signature_algorithm()).unwrap();
        let mut t = good.clone();
        t.crl_extensions.as_mut().unwrap()[2] = full.crl_extensions.as_ref().unwrap()[2].clone();
        let f = lint(&issuer, &h, &t);
        assert!(
            has(&f, "freshestCRL: must not appear in a delta CRL"),
            "{f:?}"
        );
        let mut t = full.clone();
        t.crl_extensions.as_mut().unwrap()[2] = good.crl_extensions.as_ref().unwrap()[2].clone();
        assert!(has(
            &lint(&issuer, &full_h, &t),
            "deltaCRLIndicator: must not appear"
        ));
    }

    /// A TBS assembled by hand: header parts around `entries` (already a SEQUENCE or nothing).
    fn assemble(tbs: &TbsCertList, revoked: &[u8]) -> Vec<u8> {
        let parts = encode_parts(tbs).unwrap();
        let content = [
            parts.before_entries.as_slice(),
            revoked,
            &parts.after_entries,
        ]
        .concat();
        let mut out = crate::tlv::Header::new(0x30, content.len())
            .unwrap()
            .as_bytes()
            .to_vec();
        out.extend_from_slice(&content);
        out
    }

    fn entries(list: &[&[u8]]) -> Vec<u8> {
        let content = list.concat();
        let mut out = crate::tlv::Header::new(0x30, content.len())
            .unwrap()
            .as_bytes()
            .to_vec();
        out.extend_from_slice(&content);
        out
    }

    #[test]
    fn check_assembled_rereads_header_and_entries() {
        let issuer = Issuer::new();
        let h = header(&issuer, CrlKind::Full { freshest_crl: None });
        let tbs = tbs_without_entries(&h, issuer.signer.signature_algorithm()).unwrap();

        let alone = assemble(&tbs, &[]);
        assert_eq!(alone, tbs.to_der().unwrap());
        check_assembled(&alone, &tbs, 0).unwrap();
        assert!(check_assembled(&alone, &tbs, 1).is_err());

        const OK: &[u8] = b"\x30\x13\x02\x02\x0a\xbc\x17\x0d261122000000Z";
        check_assembled(&assemble(&tbs, &entries(&[OK, OK])), &tbs, 2).unwrap();
        let err = check_assembled(&assemble(&tbs, &entries(&[OK, OK])), &tbs, 3).unwrap_err();
        assert!(
            err.to_string().contains("2 entries decoded, 3 encoded"),
            "{err}"
        );

        let err = check_assembled(&assemble(&tbs, &entries(&[])), &tbs, 0).unwrap_err();
        assert!(err.to_string().contains("present but empty"), "{err}");

        // Negative, zero, non-canonical serials; an unknown entry extension; a bad reason.
        for bad in [
            &b"\x30\x12\x02\x01\x80\x17\x0d261122000000Z"[..],
            b"\x30\x12\x02\x01\x00\x17\x0d261122000000Z",
            b"\x30\x13\x02\x02\x00\x01\x17\x0d261122000000Z",
            b"\x30\x20\x02\x01\x01\x17\x0d261122000000Z\x30\x0c\x30\x0a\x06\x03\x55\x1d\x99\x04\x03\x0a\x01\x01",
            b"\x30\x20\x02\x01\x01\x17\x0d261122000000Z\x30\x0c\x30\x0a\x06\x03\x55\x1d\x15\x04\x03\x0a\x01\x07",
        ] {
            let err = check_assembled(&assemble(&tbs, &entries(&[OK, bad])), &tbs, 2).unwrap_err();
            assert!(matches!(err, CrlError::Der { .. }), "{err}");
        }

        // Header bytes that decode to something else than the linted header.
        let mut other = tbs.clone();
        other.this_update = crate::tlv::time("thisUpdate", NOW.plus_secs(-1)).unwrap();
        let err = check_assembled(&assemble(&other, &[]), &tbs, 0).unwrap_err();
        assert!(
            err.to_string().contains("differ from the linted header"),
            "{err}"
        );

        // Trailing bytes after the TBS.
        let mut trailing = alone.clone();
        trailing.push(0);
        assert!(check_assembled(&trailing, &tbs, 0).is_err());
    }
}
