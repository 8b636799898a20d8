//! Reading an OCSPRequest (RFC 6960 §4.1.1) from a POST body or a GET path (RFC 6960
//! Appendix A.1), down to what the responder acts on. Everything a client can get wrong
//! ends here as [`Malformed`]; nothing panics.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use const_oid::db::rfc6960::{
    ID_PKIX_OCSP_NONCE, ID_PKIX_OCSP_PREF_SIG_ALGS, ID_PKIX_OCSP_RESPONSE,
    ID_PKIX_OCSP_SERVICE_LOCATOR,
};
use der::asn1::OctetString;
use der::Decode;
use x509_cert::ext::Extension;
use x509_ocsp::{CertId, OcspRequest};

/// The request cannot be answered as it stands: `malformedRequest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed(pub &'static str);

/// RFC 8954 §2.1 allows 1 to 32 octets; nesca accepts up to 128 (docs/STANDARDS.md "OCSP"),
/// since some clients send longer ones, and refuses more.
pub const MAX_NONCE_LEN: usize = 128;

/// What the responder needs from an OCSPRequest.
#[derive(Debug)]
pub(crate) struct ParsedRequest {
    /// `requestList`, in order; never empty.
    pub cert_ids: Vec<CertId>,
    /// The nonce extension (RFC 8954) as received, to be echoed.
    pub nonce: Option<Extension>,
}

/// Decodes and checks a DER OCSPRequest (`max_len` already applied by the caller).
pub(crate) fn parse(der: &[u8]) -> Result<ParsedRequest, Malformed> {
    if der.is_empty() {
        return Err(Malformed("empty request"));
    }
    let req = OcspRequest::from_der(der).map_err(|_| Malformed("not a DER OCSPRequest"))?;
    let tbs = req.tbs_request;
    if tbs.request_list.is_empty() {
        return Err(Malformed("requestList is empty"));
    }
    let mut nonce = None;
    for ext in tbs.request_extensions.iter().flatten() {
        if ext.extn_id == ID_PKIX_OCSP_NONCE {
            if nonce.is_some() {
                return Err(Malformed("more than one nonce"));
            }
            check_nonce(ext)?;
            nonce = Some(Extension {
                extn_id: ID_PKIX_OCSP_NONCE,
                // RFC 8954 §2.1: the nonce extension is non-critical.
                critical: false,
                extn_value: ext.extn_value.clone(),
            });
        } else if ext.critical
            && ext.extn_id != ID_PKIX_OCSP_RESPONSE
            && ext.extn_id != ID_PKIX_OCSP_PREF_SIG_ALGS
        {
            // A critical extension the responder does not understand must not be ignored.
            return Err(Malformed("unrecognised critical request extension"));
        }
    }
    let mut cert_ids = Vec::with_capacity(tbs.request_list.len());
    for r in tbs.request_list {
        let unknown_critical = r
            .single_request_extensions
            .iter()
            .flatten()
            .any(|e| e.critical && e.extn_id != ID_PKIX_OCSP_SERVICE_LOCATOR);
        if unknown_critical {
            return Err(Malformed("unrecognised critical singleRequestExtension"));
        }
        cert_ids.push(r.req_cert);
    }
    Ok(ParsedRequest { cert_ids, nonce })
}

/// RFC 8954: the extnValue holds an OCTET STRING of 1 to 32 octets (here up to
/// [`MAX_NONCE_LEN`]). A few old clients put the nonce octets directly in extnValue; those
/// are measured as they are and echoed the same way.
fn check_nonce(ext: &Extension) -> Result<(), Malformed> {
    let raw = ext.extn_value.as_bytes();
    let len = match OctetString::from_der(raw) {
        Ok(inner) => inner.as_bytes().len(),
        Err(_) => raw.len(),
    };
    if len == 0 {
        return Err(Malformed("empty nonce"));
    }
    if len > MAX_NONCE_LEN {
        return Err(Malformed("nonce longer than 128 octets"));
    }
    Ok(())
}

/// Base64 in either alphabet once normalised, padding optional (RFC 6960 Appendix A.1 says
/// base64 then URL-encoding; clients also send base64url, and with or without `=`).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The DER request carried in a GET path segment (everything after `/ocsp/`, still
/// percent-encoded). `max_len` bounds the decoded request.
pub(crate) fn decode_get_path(encoded: &str, max_len: usize) -> Result<Vec<u8>, Malformed> {
    // Base64 of max_len octets, each character possibly percent-encoded (3 characters).
    let max_encoded = (max_len / 3 + 1).saturating_mul(12);
    if encoded.is_empty() {
        return Err(Malformed("empty GET request"));
    }
    if encoded.len() > max_encoded {
        return Err(Malformed("GET request too long"));
    }
    let mut text = Vec::with_capacity(encoded.len());
    let mut bytes = encoded.as_bytes().iter();
    while let Some(&b) = bytes.next() {
        let c = if b == b'%' {
            let hi = bytes.next().and_then(|h| hex_value(*h));
            let lo = bytes.next().and_then(|l| hex_value(*l));
            match (hi, lo) {
                (Some(hi), Some(lo)) => hi << 4 | lo,
                _ => return Err(Malformed("bad percent-encoding")),
            }
        } else {
            b
        };
        // base64url to the standard alphabet.
        text.push(match c {
            b'-' => b'+',
            b'_' => b'/',
            c => c,
        });
    }
    let der = BASE64.decode(&text).map_err(|_| Malformed("bad base64"))?;
    if der.is_empty() {
        return Err(Malformed("empty request"));
    }
    if der.len() > max_len {
        return Err(Malformed("request too long"));
    }
    Ok(der)
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

    #[test]
    fn get_paths_in_every_spelling() {
        let der: Vec<u8> = (0u8..=255).collect();
        let std = STANDARD.encode(&der);
        assert!(std.contains('+') && std.contains('/') && std.ends_with('='));
        let url = URL_SAFE_NO_PAD.encode(&der);
        let pct = std
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3d");
        for s in [&std, &url, &pct, std.trim_end_matches('=')] {
            assert_eq!(decode_get_path(s, 4096).unwrap(), der, "{s}");
        }
    }

    #[test]
    fn bad_get_paths_are_malformed() {
        for s in ["", "%", "%zz", "AB%2", "!!!!", "QQ=Q", "QUJD\n", "A"] {
            assert!(decode_get_path(s, 4096).is_err(), "{s:?}");
        }
        let long = STANDARD.encode(vec![0u8; 200]);
        assert!(decode_get_path(&long, 100).is_err());
        assert!(decode_get_path(&long, 200).is_ok());
        assert!(decode_get_path(&"A".repeat(100_000), 8192).is_err());
    }

    #[test]
    fn garbage_is_malformed() {
        assert!(parse(&[]).is_err());
        assert!(parse(&[0x30, 0x00]).is_err());
        assert!(parse(&[0x30, 0x80, 0x00, 0x00]).is_err());
        assert!(parse(b"GET / HTTP/1.1").is_err());
    }
}
