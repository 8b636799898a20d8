//! Generation: stream the entries into one buffer, splice the header around them, lint,
//! sign, verify, write the CertificateList (RFC 5280 §5.1).
//!
//! Memory: the entries are encoded as they arrive into the buffer that becomes the TBS, so a
//! CRL costs about its own size once (plus what the caller's `out` keeps). The buffer starts
//! with a gap large enough for the TBS header, the fields before the entries and the
//! revokedCertificates header; once the entries' length is known, those are written
//! right-aligned into the gap, and the TBS is the buffer from there on: the entries are never
//! moved or copied before they are written out.

use std::fmt::Display;
use std::io::Write;
use std::time::Instant;

use der::asn1::BitString;
use der::Encode;
use nesca_ca_types::{TbsSigner, UnixTime};

use crate::entry::{CrlEntry, EntryEncoder};
use crate::error::CrlError;
use crate::header::{self, CrlHeader, CrlKind, CrlType};
use crate::lint;
use crate::tlv::{self, Header, MAX_LEN};

/// What was generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlSummary {
    /// cRLNumber.
    pub number: u64,
    /// Entries in revokedCertificates.
    pub entries: u64,
    /// Length of the CertificateList DER written to the output.
    pub bytes: u64,
    /// thisUpdate.
    pub this_update: UnixTime,
    /// nextUpdate.
    pub next_update: UnixTime,
    pub kind: CrlType,
}

/// Typical encoded entry: 20-octet serial, UTCTime, one reasonCode (~52 octets), used only to
/// size the first allocation from the source's size hint.
const TYPICAL_ENTRY_LEN: usize = 56;
/// Cap on that first allocation, so a wrong size hint cannot reserve absurd memory.
const MAX_PREALLOCATION: usize = 64 << 20;

/// Generates a CRL and writes its DER to `out`.
///
/// `entries` is consumed one entry at a time; each is checked, encoded and dropped (see
/// [`CrlEntry`] for what is written). Nothing is written to `out` unless the TBSCertList
/// passed the lint, was signed and its signature verified under the issuer certificate's key;
/// a failure while writing can leave `out` partly written (publish through
/// [`crate::Publisher`] so that readers never see that).
///
/// Duplicate serials: a serial equal to the previous entry's is refused, which costs O(1)
/// memory. A full check would need memory proportional to the CRL; uniqueness of the serials
/// the store lists is guaranteed by its UNIQUE (issuer, serial) constraint, and a source that
/// yields entries in serial order (as the store's index gives them cheaply) makes this
/// adjacent check complete.
pub fn generate<I, E>(
    header: &CrlHeader<'_>,
    entries: I,
    signer: &dyn TbsSigner,
    out: &mut dyn Write,
) -> Result<CrlSummary, CrlError>
where
    I: IntoIterator<Item = Result<CrlEntry, E>>,
    E: Display,
{
    let started = Instant::now();
    let alg = signer.signature_algorithm();
    let tbs_header = header::tbs_without_entries(header, alg.clone())?;
    // Header problems fail before a million entries are read.
    lint::lint_header(header, &tbs_header, &alg, &signer.public_key())?;
    let parts = header::encode_parts(&tbs_header)?;

    let entries = entries.into_iter();
    let gap = Header::MAX + parts.before_entries.len() + Header::MAX;
    let expected = entries
        .size_hint()
        .0
        .saturating_mul(TYPICAL_ENTRY_LEN)
        .min(MAX_PREALLOCATION);
    let mut buf = Vec::with_capacity(gap + expected + parts.after_entries.len());
    buf.resize(gap, 0);

    let mut encoder = EntryEncoder::new(matches!(header.kind, CrlKind::Delta { .. }));
    let mut count: u64 = 0;
    for item in entries {
        let entry = item.map_err(|e| CrlError::Source {
            index: count,
            reason: e.to_string(),
        })?;
        encoder.encode(count, &entry, &mut buf)?;
        count += 1;
        if buf.len() - gap > MAX_LEN {
            return Err(too_large("revokedCertificates", buf.len() - gap));
        }
    }
    let entries_len = buf.len() - gap;
    buf.extend_from_slice(&parts.after_entries);

    // No revokedCertificates element at all when there is no entry (RFC 5280 §5.1.2.6: an
    // empty SEQUENCE is not allowed; absent means "none").
    let revoked_header = if count == 0 {
        None
    } else {
        Some(
            Header::new(tlv::TAG_SEQUENCE, entries_len)
                .ok_or_else(|| too_large("revokedCertificates", entries_len))?,
        )
    };
    let revoked_header = revoked_header.as_ref().map_or(&[][..], Header::as_bytes);
    let tbs_content_len =
        parts.before_entries.len() + revoked_header.len() + entries_len + parts.after_entries.len();
    let tbs_header_tlv = Header::new(tlv::TAG_SEQUENCE, tbs_content_len)
        .ok_or_else(|| too_large("TBSCertList", tbs_content_len))?;
    let start =
        gap - revoked_header.len() - parts.before_entries.len() - tbs_header_tlv.as_bytes().len();
    let mut at = start;
    for piece in [
        tbs_header_tlv.as_bytes(),
        &parts.before_entries,
        revoked_header,
    ] {
        buf[at..at + piece.len()].copy_from_slice(piece);
        at += piece.len();
    }
    let tbs = &buf[start..];

    lint::check_assembled(tbs, &tbs_header, count)?;

    let signature = signer.sign(tbs).map_err(CrlError::Sign)?;
    let issuer_key = &header.issuer_cert.tbs_certificate.subject_public_key_info;
    nesca_ca_types::verify::verify(issuer_key, &alg, tbs, &signature).map_err(CrlError::Verify)?;

    // CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue }
    let alg_der = alg.to_der().map_err(CrlError::der("signatureAlgorithm"))?;
    let sig_der = BitString::from_bytes(&signature)
        .and_then(|b| b.to_der())
        .map_err(CrlError::der("signatureValue"))?;
    let outer_len = tbs.len() + alg_der.len() + sig_der.len();
    let outer = Header::new(tlv::TAG_SEQUENCE, outer_len)
        .ok_or_else(|| too_large("CertificateList", outer_len))?;
    for piece in [outer.as_bytes(), tbs, &alg_der, &sig_der] {
        out.write_all(piece).map_err(CrlError::Output)?;
    }
    out.flush().map_err(CrlError::Output)?;

    let bytes = (outer.as_bytes().len() + outer_len) as u64;
    tracing::debug!(
        number = header.number,
        kind = ?header.kind.crl_type(),
        entries = count,
        bytes,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "CRL generated"
    );
    Ok(CrlSummary {
        number: header.number,
        entries: count,
        bytes,
        this_update: header.this_update,
        next_update: header.next_update,
        kind: header.kind.crl_type(),
    })
}

fn too_large(what: &'static str, bytes: usize) -> CrlError {
    CrlError::TooLarge {
        what,
        bytes: bytes as u64,
        max: MAX_LEN as u64,
    }
}

#[cfg(test)]
mod tests;
