//! Building and signing responses: OCSPResponse with a BasicOCSPResponse (RFC 6960 §4.2.1),
//! and the unsigned error statuses.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use const_oid::db::rfc6960::ID_PKIX_OCSP_EXTENDED_REVOKE;
use der::asn1::{BitString, GeneralizedTime, Null, OctetString};
use der::Encode;
use sha2::{Digest, Sha256};
use x509_cert::ext::pkix::CrlReason;
use x509_cert::ext::Extension;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspGeneralizedTime, OcspResponse, OcspResponseStatus,
    ResponseData, RevokedInfo, SingleResponse, Version,
};

use nesca_ca_types::{RevocationReason, UnixTime};

use crate::error::OcspError;
use crate::http::HttpMeta;
use crate::issuer::Issuer;
use crate::source::CertState;

/// An unsigned OCSPResponse carrying only a responseStatus (RFC 6960 §4.2.1: error statuses
/// have no responseBytes): `SEQUENCE { ENUMERATED status }`.
pub(crate) fn unsigned(status: OcspResponseStatus) -> Bytes {
    const MALFORMED: &[u8] = &[0x30, 0x03, 0x0a, 0x01, 0x01];
    const INTERNAL: &[u8] = &[0x30, 0x03, 0x0a, 0x01, 0x02];
    const TRY_LATER: &[u8] = &[0x30, 0x03, 0x0a, 0x01, 0x03];
    const SIG_REQUIRED: &[u8] = &[0x30, 0x03, 0x0a, 0x01, 0x05];
    const UNAUTHORIZED: &[u8] = &[0x30, 0x03, 0x0a, 0x01, 0x06];
    Bytes::from_static(match status {
        OcspResponseStatus::MalformedRequest => MALFORMED,
        OcspResponseStatus::InternalError | OcspResponseStatus::Successful => INTERNAL,
        OcspResponseStatus::TryLater => TRY_LATER,
        OcspResponseStatus::SigRequired => SIG_REQUIRED,
        OcspResponseStatus::Unauthorized => UNAUTHORIZED,
    })
}

/// One certificate's answer to be signed.
#[derive(Debug, Clone)]
pub(crate) struct Single {
    /// Echoed as the client sent it.
    pub cert_id: CertId,
    pub state: CertState,
}

/// A signed, verified OCSPResponse and what HTTP caching needs of it.
#[derive(Debug)]
pub struct SignedResponse {
    der: Bytes,
    this_update: SystemTime,
    next_update: SystemTime,
    etag: String,
    /// Any of its SingleResponses is for a never-issued serial.
    pub(crate) not_issued: bool,
    /// The generation of the delegated signer that signed it (see `issuer::Delegate`).
    pub(crate) signer_generation: u64,
    pub(crate) http: HttpMeta,
}

impl SignedResponse {
    /// The DER OCSPResponse.
    pub fn der(&self) -> &Bytes {
        &self.der
    }
    /// thisUpdate (= producedAt) of its SingleResponses.
    pub fn this_update(&self) -> SystemTime {
        self.this_update
    }
    /// nextUpdate of its SingleResponses.
    pub fn next_update(&self) -> SystemTime {
        self.next_update
    }
    /// The HTTP entity tag, quoted: a prefix of the SHA-256 of the DER.
    pub fn etag(&self) -> &str {
        &self.etag
    }
}

/// Signs a BasicOCSPResponse for `singles` at `now`, valid for `validity`, and checks the
/// signature under the signer's public key before anything is served: a faulty signer (or
/// HSM) must not put a bad response on the wire.
pub(crate) fn sign(
    issuer: &Issuer,
    singles: Vec<Single>,
    nonce: Option<Extension>,
    now: SystemTime,
    validity: Duration,
) -> Result<SignedResponse, OcspError> {
    let delegate = issuer.delegate();
    if !delegate.valid_at(now) {
        return Err(OcspError::Signing {
            issuer: issuer.id.clone(),
            reason: "the delegated signer's certificate is not valid now; nothing is signed until it is renewed".into(),
        });
    }
    let next = now + validity;
    let this_update = ocsp_time(UnixTime::from_system(now))?;
    let next_update = ocsp_time(UnixTime::from_system(next))?;
    let not_issued = singles.iter().any(|s| s.state == CertState::NotIssued);
    let responses = singles
        .into_iter()
        .map(|s| {
            Ok(SingleResponse {
                cert_id: s.cert_id,
                cert_status: cert_status(s.state)?,
                this_update,
                next_update: Some(next_update),
                single_extensions: None,
            })
        })
        .collect::<Result<Vec<_>, OcspError>>()?;
    let mut extensions = Vec::new();
    if let Some(n) = nonce {
        extensions.push(n);
    }
    if not_issued {
        extensions.push(extended_revoke()?);
    }
    let tbs = ResponseData {
        version: Version::V1,
        responder_id: delegate.responder_id.clone(),
        produced_at: this_update,
        responses,
        response_extensions: (!extensions.is_empty()).then_some(extensions),
    };
    let tbs_der = tbs.to_der().map_err(OcspError::encoding("ResponseData"))?;
    let signing = |reason: String| OcspError::Signing {
        issuer: issuer.id.clone(),
        reason,
    };
    let signature = delegate
        .signer
        .sign(&tbs_der)
        .map_err(|e| signing(e.to_string()))?;
    nesca_ca_types::verify::verify_with(
        delegate.signer_key_kind,
        &delegate.signer_spki,
        &delegate.signature_algorithm,
        &tbs_der,
        &signature,
    )
    .map_err(|e| signing(format!("the signer's signature does not verify: {e}")))?;
    let basic = BasicOcspResponse {
        tbs_response_data: tbs,
        signature_algorithm: delegate.signature_algorithm.clone(),
        signature: BitString::from_bytes(&signature).map_err(OcspError::encoding("signature"))?,
        certs: Some(vec![delegate.signer_cert.clone()]),
    };
    let der = OcspResponse::successful(basic)
        .and_then(|r| r.to_der())
        .map_err(OcspError::encoding("OCSPResponse"))?;
    let digest = Sha256::digest(&der);
    let etag = format!("\"{}\"", hex(&digest[..16]));
    let http = HttpMeta::new(&etag, now, next);
    Ok(SignedResponse {
        der: Bytes::from(der),
        this_update: now,
        next_update: next,
        etag,
        not_issued,
        signer_generation: delegate.generation,
        http,
    })
}

/// RFC 6960 §2.2. A never-issued serial is `revoked` with certificateHold at the epoch.
fn cert_status(state: CertState) -> Result<CertStatus, OcspError> {
    Ok(match state {
        CertState::Good => CertStatus::good(),
        CertState::Revoked { time, reason } => CertStatus::Revoked(RevokedInfo {
            revocation_time: ocsp_time(time)?,
            revocation_reason: reason.and_then(crl_reason),
        }),
        CertState::NotIssued => CertStatus::Revoked(RevokedInfo {
            revocation_time: ocsp_time(UnixTime::EPOCH)?,
            revocation_reason: Some(CrlReason::CertificateHold),
        }),
    })
}

/// The extended revoked definition extension, non-critical, value NULL (RFC 6960 §4.4.8).
fn extended_revoke() -> Result<Extension, OcspError> {
    Ok(Extension {
        extn_id: ID_PKIX_OCSP_EXTENDED_REVOKE,
        critical: false,
        extn_value: OctetString::new(
            Null.to_der()
                .map_err(OcspError::encoding("extended-revoke"))?,
        )
        .map_err(OcspError::encoding("extended-revoke"))?,
    })
}

/// CRLReason as RFC 5280 §5.3.1 numbers it.
fn crl_reason(r: RevocationReason) -> Option<CrlReason> {
    Some(match r.code() {
        1 => CrlReason::KeyCompromise,
        2 => CrlReason::CaCompromise,
        3 => CrlReason::AffiliationChanged,
        4 => CrlReason::Superseded,
        5 => CrlReason::CessationOfOperation,
        6 => CrlReason::CertificateHold,
        8 => CrlReason::RemoveFromCRL,
        9 => CrlReason::PrivilegeWithdrawn,
        10 => CrlReason::AaCompromise,
        _ => return None,
    })
}

/// GeneralizedTime in Zulu without fractions (RFC 6960 §4.2.2.1 via RFC 5280 §4.1.2.5.2):
/// the one way from an instant to a time in a response (instants before the epoch are the
/// epoch).
fn ocsp_time(t: UnixTime) -> Result<OcspGeneralizedTime, OcspError> {
    let secs = u64::try_from(t.secs()).unwrap_or(0);
    GeneralizedTime::from_unix_duration(Duration::from_secs(secs))
        .map(OcspGeneralizedTime)
        .map_err(OcspError::encoding("GeneralizedTime"))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}
