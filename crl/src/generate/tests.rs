//! Generation end to end: decode what was written with `x509-cert`, verify it, and have
//! openssl (and pkilint, when installed) read it.

use std::convert::Infallible;

use const_oid::db::rfc5280::{
    ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_CRL_NUMBER, ID_CE_CRL_REASONS, ID_CE_DELTA_CRL_INDICATOR,
    ID_CE_FRESHEST_CRL, ID_CE_INVALIDITY_DATE,
};
use der::asn1::GeneralizedTime;
use der::{Decode, Encode};
use nesca_ca_types::{CaTypesError, RevocationReason, Serial, UnixTime};
use sha1::{Digest, Sha1};
use x509_cert::crl::{CertificateList, RevokedCert};
use x509_cert::ext::pkix::crl::{BaseCrlNumber, CrlNumber, CrlReason, FreshestCrl};
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::AuthorityKeyIdentifier;
use x509_cert::ext::Extension;
use x509_cert::time::Time;

use super::*;
use crate::testkit::{self, Issuer, Ski, SoftSigner, NOW};

const DELTA_URL: &str = "http://pki.nesca-demo.com.tr/crl/nes-ca-delta.crl";

fn header(issuer: &Issuer, kind: CrlKind) -> CrlHeader<'_> {
    CrlHeader {
        issuer_cert: &issuer.cert,
        number: 7,
        this_update: NOW,
        next_update: NOW.plus_secs(7 * 86_400),
        kind,
    }
}

fn full() -> CrlKind {
    CrlKind::Full {
        freshest_crl: Some(DELTA_URL.into()),
    }
}

fn ok(entries: &[CrlEntry]) -> impl Iterator<Item = Result<CrlEntry, Infallible>> + '_ {
    entries.iter().cloned().map(Ok)
}

fn entry(reason: Option<RevocationReason>) -> CrlEntry {
    CrlEntry {
        serial: Serial::random(),
        revocation_time: NOW.plus_secs(-3600),
        reason,
        invalidity_date: None,
    }
}

/// Generates into a Vec and decodes it.
fn build(
    h: &CrlHeader<'_>,
    entries: &[CrlEntry],
    signer: &dyn TbsSigner,
) -> (Vec<u8>, CrlSummary, CertificateList) {
    let mut out = Vec::new();
    let summary = generate(h, ok(entries), signer, &mut out).unwrap();
    let crl = CertificateList::from_der(&out).unwrap();
    (out, summary, crl)
}

fn ext(crl: &CertificateList, oid: const_oid::ObjectIdentifier) -> &Extension {
    crl.tbs_cert_list
        .crl_extensions
        .as_ref()
        .unwrap()
        .iter()
        .find(|e| e.extn_id == oid)
        .unwrap_or_else(|| panic!("extension {oid} missing"))
}

fn unix(t: &Time) -> UnixTime {
    UnixTime::from_system(t.to_system_time())
}

fn entry_ext(rc: &RevokedCert, oid: const_oid::ObjectIdentifier) -> Option<&Extension> {
    rc.crl_entry_extensions
        .as_ref()?
        .iter()
        .find(|e| e.extn_id == oid)
}

fn assert_signature_verifies(der: &[u8], crl: &CertificateList, issuer: &Issuer) {
    let tbs = crl.tbs_cert_list.to_der().unwrap();
    // The re-encoded TBS is the signed one (DER is unique), and it sits inside the output.
    assert!(der.windows(tbs.len()).any(|w| w == tbs.as_slice()));
    nesca_ca_types::verify::verify(
        &issuer.cert.tbs_certificate.subject_public_key_info,
        &crl.signature_algorithm,
        &tbs,
        crl.signature.raw_bytes(),
    )
    .unwrap();
}

#[test]
fn full_crl_carries_every_field() {
    let issuer = Issuer::new();
    let mut entries = vec![
        entry(None),
        entry(Some(RevocationReason::CertificateHold)),
        CrlEntry {
            invalidity_date: Some(NOW.plus_secs(-86_400)),
            ..entry(Some(RevocationReason::KeyCompromise))
        },
        CrlEntry {
            invalidity_date: Some(NOW.plus_secs(-2 * 86_400)),
            ..entry(None)
        },
    ];
    entries.extend(RevocationReason::FOR_REVOCATION.map(|r| entry(Some(r))));
    let h = header(&issuer, full());
    let (der, summary, crl) = build(&h, &entries, &issuer.signer);

    let tbs = &crl.tbs_cert_list;
    assert_eq!(tbs.version, x509_cert::Version::V2);
    assert_eq!(tbs.signature, issuer.signer.signature_algorithm());
    assert_eq!(crl.signature_algorithm, issuer.signer.signature_algorithm());
    assert_eq!(tbs.issuer, issuer.cert.tbs_certificate.subject);
    assert_eq!(
        tbs.issuer.to_der().unwrap(),
        issuer.cert.tbs_certificate.subject.to_der().unwrap()
    );
    assert!(matches!(tbs.this_update, Time::UtcTime(_)));
    assert_eq!(unix(&tbs.this_update), NOW);
    assert_eq!(
        unix(tbs.next_update.as_ref().unwrap()),
        NOW.plus_secs(7 * 86_400)
    );

    // Extensions: exactly AKI, cRLNumber, freshestCRL, in that order, all non-critical.
    let exts = tbs.crl_extensions.as_ref().unwrap();
    let oids: Vec<_> = exts.iter().map(|e| e.extn_id).collect();
    assert_eq!(
        oids,
        [
            ID_CE_AUTHORITY_KEY_IDENTIFIER,
            ID_CE_CRL_NUMBER,
            ID_CE_FRESHEST_CRL
        ]
    );
    assert!(exts.iter().all(|e| !e.critical));
    let aki = AuthorityKeyIdentifier::from_der(
        ext(&crl, ID_CE_AUTHORITY_KEY_IDENTIFIER)
            .extn_value
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(aki.key_identifier.unwrap().as_bytes(), [0x5a; 20]);
    assert!(aki.authority_cert_issuer.is_none() && aki.authority_cert_serial_number.is_none());
    let number = CrlNumber::from_der(ext(&crl, ID_CE_CRL_NUMBER).extn_value.as_bytes()).unwrap();
    assert_eq!(number.0.as_bytes(), [7]);
    let fresh = FreshestCrl::from_der(ext(&crl, ID_CE_FRESHEST_CRL).extn_value.as_bytes()).unwrap();
    assert_eq!(fresh.0.len(), 1);
    match &fresh.0[0].distribution_point {
        Some(DistributionPointName::FullName(names)) => match names.as_slice() {
            [GeneralName::UniformResourceIdentifier(u)] => assert_eq!(u.as_str(), DELTA_URL),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }

    // Entries, in source order, with exactly what the source said.
    let revoked = tbs.revoked_certificates.as_ref().unwrap();
    assert_eq!(revoked.len(), entries.len());
    for (rc, e) in revoked.iter().zip(&entries) {
        assert_eq!(
            rc.serial_number.as_bytes(),
            e.serial.to_der_bytes().as_slice()
        );
        assert!(matches!(rc.revocation_date, Time::UtcTime(_)));
        assert_eq!(unix(&rc.revocation_date), e.revocation_time);
        let reason = entry_ext(rc, ID_CE_CRL_REASONS);
        match e.reason {
            None => assert!(reason.is_none(), "unspecified must be omitted"),
            Some(r) => {
                let ext = reason.unwrap();
                assert!(!ext.critical);
                let decoded = CrlReason::from_der(ext.extn_value.as_bytes()).unwrap();
                assert_eq!(decoded as u32, u32::from(r.code()));
            }
        }
        let inv = entry_ext(rc, ID_CE_INVALIDITY_DATE);
        match e.invalidity_date {
            None => assert!(inv.is_none()),
            Some(t) => {
                let ext = inv.unwrap();
                assert!(!ext.critical);
                let g = GeneralizedTime::from_der(ext.extn_value.as_bytes()).unwrap();
                assert_eq!(UnixTime::from_system(g.to_system_time()), t);
            }
        }
        if e.reason.is_none() && e.invalidity_date.is_none() {
            assert!(
                rc.crl_entry_extensions.is_none(),
                "no empty crlEntryExtensions"
            );
        }
    }
    assert_signature_verifies(&der, &crl, &issuer);
    assert_eq!(
        summary,
        CrlSummary {
            number: 7,
            entries: entries.len() as u64,
            bytes: der.len() as u64,
            this_update: NOW,
            next_update: NOW.plus_secs(7 * 86_400),
            kind: CrlType::Full,
        }
    );
}

#[test]
fn full_crl_without_delta_url_has_no_freshest_crl() {
    let issuer = Issuer::new();
    let h = header(&issuer, CrlKind::Full { freshest_crl: None });
    let (_, _, crl) = build(&h, &[entry(None)], &issuer.signer);
    let oids: Vec<_> = crl
        .tbs_cert_list
        .crl_extensions
        .unwrap()
        .iter()
        .map(|e| e.extn_id)
        .collect();
    assert_eq!(oids, [ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_CRL_NUMBER]);
}

#[test]
fn delta_crl_has_critical_indicator_and_may_remove_from_crl() {
    let issuer = Issuer::new();
    let mut h = header(&issuer, CrlKind::Delta { base_number: 5 });
    h.number = 6;
    let entries = [
        entry(Some(RevocationReason::RemoveFromCrl)),
        entry(Some(RevocationReason::CertificateHold)),
    ];
    let (der, summary, crl) = build(&h, &entries, &issuer.signer);
    assert_eq!(summary.kind, CrlType::Delta);
    let exts = crl.tbs_cert_list.crl_extensions.as_ref().unwrap();
    let oids: Vec<_> = exts.iter().map(|e| e.extn_id).collect();
    assert_eq!(
        oids,
        [
            ID_CE_AUTHORITY_KEY_IDENTIFIER,
            ID_CE_CRL_NUMBER,
            ID_CE_DELTA_CRL_INDICATOR
        ]
    );
    let indicator = ext(&crl, ID_CE_DELTA_CRL_INDICATOR);
    assert!(indicator.critical);
    assert_eq!(
        BaseCrlNumber::from_der(indicator.extn_value.as_bytes())
            .unwrap()
            .0
            .as_bytes(),
        [5]
    );
    let number = CrlNumber::from_der(ext(&crl, ID_CE_CRL_NUMBER).extn_value.as_bytes()).unwrap();
    assert_eq!(number.0.as_bytes(), [6]);
    let revoked = crl.tbs_cert_list.revoked_certificates.as_ref().unwrap();
    let reason = entry_ext(&revoked[0], ID_CE_CRL_REASONS).unwrap();
    assert_eq!(
        CrlReason::from_der(reason.extn_value.as_bytes()).unwrap(),
        CrlReason::RemoveFromCRL
    );
    assert_signature_verifies(&der, &crl, &issuer);
}

#[test]
fn empty_crl_has_no_revoked_certificates_element() {
    let issuer = Issuer::new();
    for kind in [full(), CrlKind::Delta { base_number: 6 }] {
        let h = header(&issuer, kind);
        let (der, summary, crl) = build(&h, &[], &issuer.signer);
        assert_eq!(summary.entries, 0);
        // x509-cert would decode an empty SEQUENCE as Some(vec![]): None means absent.
        assert_eq!(crl.tbs_cert_list.revoked_certificates, None);
        // The TBS is exactly what der encodes for the header alone.
        let expected =
            header::tbs_without_entries(&h, issuer.signer.signature_algorithm()).unwrap();
        assert_eq!(crl.tbs_cert_list, expected);
        assert_signature_verifies(&der, &crl, &issuer);
    }
}

#[test]
fn times_switch_from_utc_to_generalized_in_2050() {
    const LAST_UTC: UnixTime = UnixTime::from_secs(2_524_607_999); // 2049-12-31T23:59:59Z
    let issuer = Issuer::new();
    let h = CrlHeader {
        issuer_cert: &issuer.cert,
        number: 1,
        this_update: LAST_UTC,
        next_update: LAST_UTC.plus_secs(1),
        kind: CrlKind::Full { freshest_crl: None },
    };
    let entries = [
        CrlEntry {
            revocation_time: LAST_UTC,
            invalidity_date: Some(NOW), // always GeneralizedTime (RFC 5280 §5.3.2)
            ..entry(None)
        },
        CrlEntry {
            revocation_time: LAST_UTC.plus_secs(1),
            ..entry(None)
        },
    ];
    let (der, _, crl) = build(&h, &entries, &issuer.signer);
    let tbs = &crl.tbs_cert_list;
    assert!(matches!(tbs.this_update, Time::UtcTime(_)));
    assert!(matches!(tbs.next_update, Some(Time::GeneralTime(_))));
    assert_eq!(
        unix(tbs.next_update.as_ref().unwrap()),
        LAST_UTC.plus_secs(1)
    );
    let revoked = tbs.revoked_certificates.as_ref().unwrap();
    assert!(matches!(revoked[0].revocation_date, Time::UtcTime(_)));
    assert!(matches!(revoked[1].revocation_date, Time::GeneralTime(_)));
    assert_eq!(unix(&revoked[1].revocation_date), LAST_UTC.plus_secs(1));
    let inv = entry_ext(&revoked[0], ID_CE_INVALIDITY_DATE).unwrap();
    assert_eq!(inv.extn_value.as_bytes()[0], 0x18, "GeneralizedTime tag");
    assert_signature_verifies(&der, &crl, &issuer);
}

#[test]
fn aki_is_sha1_of_the_key_when_the_issuer_has_no_ski() {
    let issuer = Issuer::with(Ski::Absent, true);
    let h = header(&issuer, full());
    let (_, _, crl) = build(&h, &[], &issuer.signer);
    let aki = AuthorityKeyIdentifier::from_der(
        ext(&crl, ID_CE_AUTHORITY_KEY_IDENTIFIER)
            .extn_value
            .as_bytes(),
    )
    .unwrap();
    let spki = &issuer.cert.tbs_certificate.subject_public_key_info;
    assert_eq!(
        aki.key_identifier.unwrap().as_bytes(),
        &Sha1::digest(spki.subject_public_key.raw_bytes())[..]
    );
}

#[test]
fn large_numbers_and_long_lengths_round_trip() {
    // 5000 entries: the revokedCertificates and TBS lengths need three length octets.
    let issuer = Issuer::new();
    let mut h = header(
        &issuer,
        CrlKind::Delta {
            base_number: u64::MAX - 1,
        },
    );
    h.number = u64::MAX;
    let entries: Vec<CrlEntry> = (0..5000)
        .map(|i| CrlEntry {
            revocation_time: NOW.plus_secs(-i),
            ..entry(if i % 2 == 0 {
                Some(RevocationReason::Superseded)
            } else {
                None
            })
        })
        .collect();
    let (der, summary, crl) = build(&h, &entries, &issuer.signer);
    assert!(der.len() > 0xffff);
    assert_eq!(summary.entries, 5000);
    let revoked = crl.tbs_cert_list.revoked_certificates.as_ref().unwrap();
    let serials: Vec<Vec<u8>> = revoked
        .iter()
        .map(|r| r.serial_number.as_bytes().to_vec())
        .collect();
    let expected: Vec<Vec<u8>> = entries.iter().map(|e| e.serial.to_der_bytes()).collect();
    assert_eq!(serials, expected);
    // u64::MAX needs a sign octet: 9 octets.
    let number = ext(&crl, ID_CE_CRL_NUMBER).extn_value.to_der().unwrap();
    assert!(number.ends_with(&[0x02, 0x09, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]));
    assert_signature_verifies(&der, &crl, &issuer);
}

#[test]
fn crl_number_zero_is_allowed() {
    let issuer = Issuer::new();
    let mut h = header(&issuer, full());
    h.number = 0;
    let (_, _, crl) = build(&h, &[], &issuer.signer);
    let number = CrlNumber::from_der(ext(&crl, ID_CE_CRL_NUMBER).extn_value.as_bytes()).unwrap();
    assert_eq!(number.0.as_bytes(), [0]);
}

/// Runs `generate` expecting an error; checks nothing was written.
fn fails(h: &CrlHeader<'_>, entries: &[CrlEntry], signer: &dyn TbsSigner) -> CrlError {
    let mut out = Vec::new();
    let err = generate(h, ok(entries), signer, &mut out).unwrap_err();
    assert!(out.is_empty(), "nothing may be written on error ({err})");
    err
}

fn findings(err: CrlError) -> String {
    match err {
        CrlError::Lint { findings } => findings.join("\n"),
        other => panic!("expected lint findings, got {other}"),
    }
}

#[test]
fn header_lint_refuses_before_signing() {
    let issuer = Issuer::new();
    let mut h = header(&issuer, full());
    h.next_update = h.this_update;
    assert!(findings(fails(&h, &[], &issuer.signer)).contains("nextUpdate"));

    let mut h = header(&issuer, CrlKind::Delta { base_number: 7 });
    h.number = 7;
    assert!(findings(fails(&h, &[], &issuer.signer)).contains("base CRL number 7"));

    let other = SoftSigner::random();
    let h = header(&issuer, full());
    assert!(findings(fails(&h, &[], &other)).contains("not the issuer certificate's public key"));

    let no_crl_sign = Issuer::with(Ski::Value(vec![1; 20]), false);
    let h = header(&no_crl_sign, full());
    assert!(findings(fails(&h, &[], &no_crl_sign.signer)).contains("cRLSign"));

    for url in [
        "https://x/d.crl",
        "http://",
        "http://a b/d.crl",
        "ftp://x",
        "http://ü/d.crl",
    ] {
        let h = header(
            &issuer,
            CrlKind::Full {
                freshest_crl: Some(url.into()),
            },
        );
        let err = fails(&h, &[], &issuer.signer);
        assert!(
            matches!(
                err,
                CrlError::Header {
                    field: "freshestCRL",
                    ..
                }
            ),
            "{url}: {err}"
        );
    }

    let mut h = header(&issuer, full());
    h.this_update = UnixTime::from_secs(-1);
    assert!(matches!(
        fails(&h, &[], &issuer.signer),
        CrlError::Header {
            field: "thisUpdate",
            ..
        }
    ));
    let mut h = header(&issuer, full());
    h.next_update = UnixTime::from_secs(i64::MAX);
    assert!(matches!(
        fails(&h, &[], &issuer.signer),
        CrlError::Header {
            field: "nextUpdate",
            ..
        }
    ));
}

#[test]
fn entry_errors_name_the_entry() {
    let issuer = Issuer::new();
    let h = header(&issuer, full());
    let mut entries: Vec<CrlEntry> = (0..20).map(|_| entry(None)).collect();

    entries[17].serial = Serial::parse_hex("00").unwrap();
    let err = fails(&h, &entries, &issuer.signer);
    assert!(matches!(err, CrlError::Entry { index: 17, .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("encode revokedCertificates entry 17"),
        "{err}"
    );

    entries[17] = entry(Some(RevocationReason::RemoveFromCrl));
    let err = fails(&h, &entries, &issuer.signer);
    assert!(err.to_string().contains("entry 17") && err.to_string().contains("removeFromCRL"));

    entries[17] = entry(None);
    entries[17].revocation_time = UnixTime::from_secs(i64::MIN);
    assert!(matches!(
        fails(&h, &entries, &issuer.signer),
        CrlError::Entry { index: 17, .. }
    ));

    entries[17] = entries[16].clone();
    let err = fails(&h, &entries, &issuer.signer);
    assert!(err.to_string().contains("twice"), "{err}");
}

#[test]
fn source_errors_stop_generation() {
    let issuer = Issuer::new();
    let h = header(&issuer, full());
    let source = (0..10).map(|i| {
        if i == 3 {
            Err("database is locked")
        } else {
            Ok(entry(None))
        }
    });
    let mut out = Vec::new();
    let err = generate(&h, source, &issuer.signer, &mut out).unwrap_err();
    assert!(matches!(err, CrlError::Source { index: 3, .. }));
    assert_eq!(
        err.to_string(),
        "entry source: at entry 3: database is locked"
    );
    assert!(out.is_empty());
}

struct BrokenSigner<'a> {
    inner: &'a SoftSigner,
    garbage: bool,
}

impl TbsSigner for BrokenSigner<'_> {
    fn signature_algorithm(&self) -> spki::AlgorithmIdentifierOwned {
        self.inner.signature_algorithm()
    }
    fn public_key(&self) -> spki::SubjectPublicKeyInfoOwned {
        self.inner.public_key()
    }
    fn sign(&self, tbs_der: &[u8]) -> Result<Vec<u8>, CaTypesError> {
        if self.garbage {
            // A valid signature over other bytes.
            self.inner.sign(&[tbs_der, b"x"].concat())
        } else {
            Err(CaTypesError::Signer {
                rule: "token removed".into(),
            })
        }
    }
}

#[test]
fn signer_failures_and_bad_signatures_write_nothing() {
    let issuer = Issuer::new();
    let h = header(&issuer, full());
    let failing = BrokenSigner {
        inner: &issuer.signer,
        garbage: false,
    };
    let err = fails(&h, &[entry(None)], &failing);
    assert!(matches!(err, CrlError::Sign(_)) && err.to_string().contains("token removed"));
    let garbage = BrokenSigner {
        inner: &issuer.signer,
        garbage: true,
    };
    assert!(matches!(
        fails(&h, &[entry(None)], &garbage),
        CrlError::Verify(_)
    ));
}

#[test]
fn output_errors_are_reported() {
    struct Full;
    impl std::io::Write for Full {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "disk full",
            ))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let issuer = Issuer::new();
    let h = header(&issuer, full());
    let err = generate(&h, ok(&[]), &issuer.signer, &mut Full).unwrap_err();
    assert!(matches!(err, CrlError::Output(_)), "{err}");
}

#[test]
fn generate_into_publisher() {
    let issuer = Issuer::new();
    let tmp = tempfile::tempdir().unwrap();
    let p = crate::Publisher::new(tmp.path()).unwrap();
    let ca = nesca_ca_types::IssuerId::parse("nes-ca").unwrap();
    let h = header(&issuer, full());
    let entries = [entry(None), entry(Some(RevocationReason::CertificateHold))];
    let summary = p
        .publish_with(&crate::full_file_name(&ca), |w| {
            generate(&h, ok(&entries), &issuer.signer, w)
        })
        .unwrap();
    let der = std::fs::read(p.path("nes-ca.crl")).unwrap();
    assert_eq!(summary.bytes, der.len() as u64);
    let crl = CertificateList::from_der(&der).unwrap();
    assert_signature_verifies(&der, &crl, &issuer);

    // A failing generation leaves the published CRL as it was.
    let mut bad = header(&issuer, full());
    bad.next_update = bad.this_update.plus_secs(-1);
    assert!(p
        .publish_with("nes-ca.crl", |w| generate(
            &bad,
            ok(&entries),
            &issuer.signer,
            w
        ))
        .is_err());
    assert_eq!(std::fs::read(p.path("nes-ca.crl")).unwrap(), der);
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
}

/// Writes the issuer PEM and CRLs into a temp dir for the external tools.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new(issuer: &Issuer) -> Files {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), issuer.pem()).unwrap();
        Files { dir }
    }
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_string()
    }
    fn write(&self, name: &str, der: &[u8]) -> String {
        std::fs::write(self.path(name), der).unwrap();
        self.path(name)
    }
}

/// A full CRL with every kind of entry, a delta CRL with removeFromCRL, and an empty CRL.
fn sample_crls(issuer: &Issuer) -> Vec<(&'static str, Vec<u8>)> {
    let full_entries = [
        entry(None),
        entry(Some(RevocationReason::CertificateHold)),
        CrlEntry {
            invalidity_date: Some(NOW.plus_secs(-86_400)),
            ..entry(Some(RevocationReason::KeyCompromise))
        },
        entry(Some(RevocationReason::PrivilegeWithdrawn)),
    ];
    let delta_entries = [
        entry(Some(RevocationReason::RemoveFromCrl)),
        entry(Some(RevocationReason::Superseded)),
    ];
    let mut delta = header(issuer, CrlKind::Delta { base_number: 7 });
    delta.number = 8;
    let mut empty = header(issuer, CrlKind::Delta { base_number: 7 });
    empty.number = 9;
    vec![
        (
            "full.crl",
            build(&header(issuer, full()), &full_entries, &issuer.signer).0,
        ),
        ("delta.crl", build(&delta, &delta_entries, &issuer.signer).0),
        ("empty.crl", build(&empty, &[], &issuer.signer).0),
    ]
}

#[test]
fn openssl_reads_and_verifies_generated_crls() {
    let issuer = Issuer::new();
    let files = Files::new(&issuer);
    let openssl = std::path::Path::new(testkit::OPENSSL);
    for (name, der) in sample_crls(&issuer) {
        let path = files.write(name, &der);
        let text = testkit::run(
            openssl,
            &["crl", "-inform", "DER", "-noout", "-text", "-in", &path],
        );
        assert_eq!(text.code, Some(0), "{name}: {}", text.stderr);
        let t = &text.stdout;
        assert!(t.contains("Version 2 (0x1)"), "{name}: {t}");
        assert!(t.contains("X509v3 Authority Key Identifier"), "{name}: {t}");
        assert!(t.contains("X509v3 CRL Number"), "{name}: {t}");
        match name {
            "full.crl" => {
                assert!(t.contains("Freshest CRL") && t.contains(DELTA_URL), "{t}");
                assert!(
                    t.contains("Certificate Hold") && t.contains("Key Compromise"),
                    "{t}"
                );
                assert!(t.contains("Invalidity Date"), "{t}");
                assert!(!t.contains("Delta CRL Indicator"), "{t}");
            }
            "delta.crl" => {
                assert!(t.contains("X509v3 Delta CRL Indicator: critical"), "{t}");
                assert!(t.contains("Remove From CRL"), "{t}");
                assert!(!t.contains("Freshest CRL"), "{t}");
            }
            _ => assert!(t.contains("No Revoked Certificates."), "{t}"),
        }
        let ca = files.path("ca.pem");
        let verify = testkit::run(
            openssl,
            &[
                "crl", "-inform", "DER", "-noout", "-in", &path, "-verify", "-CAfile", &ca,
            ],
        );
        assert_eq!(
            verify.code,
            Some(0),
            "{name}: {}{}",
            verify.stdout,
            verify.stderr
        );
        assert!(
            format!("{}{}", verify.stdout, verify.stderr).contains("verify OK"),
            "{name}: {}{}",
            verify.stdout,
            verify.stderr
        );
    }
    // And a CRL signed by another key does not verify against this CA.
    let other = Issuer::new();
    let (der, _, _) = build(&header(&other, full()), &[], &other.signer);
    let path = files.write("other.crl", &der);
    let ca = files.path("ca.pem");
    let verify = testkit::run(
        openssl,
        &[
            "crl", "-inform", "DER", "-noout", "-in", &path, "-verify", "-CAfile", &ca,
        ],
    );
    assert!(!format!("{}{}", verify.stdout, verify.stderr).contains("verify OK"));
}

#[test]
fn pkilint_finds_nothing_in_generated_crls() {
    let Some(lint_crl) = testkit::lint_crl() else {
        eprintln!(
            "note: {} not installed; pkilint check skipped",
            testkit::LINT_CRL
        );
        return;
    };
    let issuer = Issuer::new();
    let files = Files::new(&issuer);
    for (name, der) in sample_crls(&issuer) {
        let path = files.write(name, &der);
        let r = testkit::run(&lint_crl, &["lint", "-t", "CRL", "-p", "PKIX", &path]);
        eprintln!(
            "lint_crl {name}: exit {:?} {}{}",
            r.code, r.stdout, r.stderr
        );
        assert_eq!(
            r.code,
            Some(0),
            "{name}: findings:\n{}{}",
            r.stdout,
            r.stderr
        );
    }
}

/// Peak resident set size of this process, from /proc/self/status (kB).
fn vm_hwm_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A million entries into a Vec sink, with a software signer: prints time and peak RSS.
/// A measurement, not an assertion on time:
/// `cargo test -p crl --release -- --ignored --nocapture scale`
#[test]
#[ignore]
fn scale_one_million_entries() {
    const N: u64 = 1_000_000;
    let issuer = Issuer::new();
    let h = header(&issuer, full());
    let rss_before = vm_hwm_kb();
    // A cheap deterministic source (xorshift), so the time is the generator's, not the RNG's.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let source = (0..N).map(move |i| {
        let mut b = [0u8; 20];
        for chunk in b.chunks_mut(8) {
            let v = next().to_be_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        b[0] = (b[0] & 0x7f).max(1);
        let serial = Serial::from_der_bytes(&b).expect("20 positive octets");
        let reason = match i % 3 {
            0 => None,
            1 => Some(RevocationReason::KeyCompromise),
            _ => Some(RevocationReason::CertificateHold),
        };
        Ok::<_, Infallible>(CrlEntry {
            serial,
            revocation_time: NOW.plus_secs(-(i as i64)),
            reason,
            invalidity_date: (i % 3 == 1).then_some(NOW.plus_secs(-(i as i64) - 86_400)),
        })
    });
    let started = std::time::Instant::now();
    let mut out = Vec::new();
    let summary = generate(&h, source, &issuer.signer, &mut out).unwrap();
    let elapsed = started.elapsed();
    let rss_after = vm_hwm_kb();
    eprintln!(
        "scale: {} entries, {} bytes ({:.1} MB) in {:.2} s; peak RSS (VmHWM) before {} kB, after {} kB",
        summary.entries,
        summary.bytes,
        summary.bytes as f64 / 1e6,
        elapsed.as_secs_f64(),
        rss_before.map_or("?".into(), |v| v.to_string()),
        rss_after.map_or("?".into(), |v| v.to_string()),
    );
    assert_eq!(summary.entries, N);
    assert_eq!(summary.bytes, out.len() as u64);

    // openssl checks the signature of the million-entry CRL, outside this process's RSS.
    let files = Files::new(&issuer);
    let path = files.write("big.crl", &out);
    drop(out);
    let ca = files.path("ca.pem");
    let t = std::time::Instant::now();
    let verify = testkit::run(
        std::path::Path::new(testkit::OPENSSL),
        &[
            "crl", "-inform", "DER", "-noout", "-in", &path, "-verify", "-CAfile", &ca,
        ],
    );
    assert!(
        format!("{}{}", verify.stdout, verify.stderr).contains("verify OK"),
        "{}{}",
        verify.stdout,
        verify.stderr
    );
    eprintln!(
        "scale: openssl crl -verify OK in {:.2} s",
        t.elapsed().as_secs_f64()
    );
}
