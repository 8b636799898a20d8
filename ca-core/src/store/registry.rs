//! The registry: the CAs nesca runs, the licensed ESHS partners it issues role and
//! secure-communication certificates to, and the transport keys it may wrap card keys for.

use crate::error::Result;
use crate::partner::{PartnerId, PartnerRecord};
use crate::serial::IssuerId;
use crate::transport_key::{TransportKeyId, TransportKeyRecord};
use crate::UnixTime;

column_enum! {
    /// The role of a CA nesca runs.
    pub enum CaRole in "role" as "CA role" {
        /// The root CA: self-signed.
        Root = "root",
        /// An issuing CA: issues end-entity certificates, CRLs and OCSP signers.
        Issuing = "issuing",
    }
}

/// A CA nesca runs: its certificate and the token label of its key.
#[derive(Debug, Clone)]
pub struct CaRecord {
    /// The CA's id (its issuer id).
    pub id: IssuerId,
    /// Root or issuing.
    pub role: CaRole,
    /// The token label of its key.
    pub key_label: String,
    /// Its certificate, DER.
    pub cert_der: Vec<u8>,
    /// For an issuing CA: its delegated OCSP signer's key label and certificate.
    pub ocsp_key_label: Option<String>,
    /// The delegated OCSP signer's certificate, DER (RFC 6960 §4.2.2.2).
    pub ocsp_cert_der: Option<Vec<u8>>,
    /// For an issuing CA made by a key rollover: the generation it took over from (same
    /// name, older key). Issuance follows the chain to its newest generation; the older ones
    /// keep their CRLs and OCSP for the certificates they issued.
    pub supersedes: Option<IssuerId>,
}

/// A delegated OCSP signer an issuing CA has had (RFC 6960 §4.2.2.2): its key's token label,
/// its certificate, and when it became the current one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcspSignerRecord {
    pub key_label: String,
    /// DER.
    pub cert_der: Vec<u8>,
    pub since: UnixTime,
}

/// The CAs and the registered partners.
pub trait RegistryStore: Send + Sync {
    /// Registers a CA; refuses an id that exists, and a second generation superseding the
    /// same CA ([`crate::CaError::AlreadyExists`]: two rollovers at once make one).
    fn add_ca(&self, ca: CaRecord, actor: &crate::Principal, at: UnixTime) -> Result<()>;
    /// A CA by id.
    fn ca(&self, id: &IssuerId) -> Result<Option<CaRecord>>;
    /// The CAs nesca runs.
    fn cas(&self) -> Result<Vec<CaRecord>>;
    /// Makes `signer` the current delegated OCSP signer of the issuing CA `ca` while the
    /// current one is still `expect_label` (compare-and-set: of two renewals at once exactly
    /// one lands, the other is refused with [`crate::CaError::Conflict`] on `ocsp_signer` and
    /// writes nothing). The signer is kept in the CA's history. One transaction with its
    /// audit record. Refuses an unknown CA or a root ([`crate::CaError::Invalid`] on `ca`).
    fn replace_ocsp_signer(
        &self,
        ca: &IssuerId,
        expect_label: Option<&str>,
        signer: OcspSignerRecord,
        actor: &crate::Principal,
    ) -> Result<()>;
    /// Every delegated OCSP signer the CA `ca` has had, oldest first (the current one last).
    fn ocsp_signers(&self, ca: &IssuerId) -> Result<Vec<OcspSignerRecord>>;
    /// Records that the root revoked the issuing CA `ca` (an offline root's CRL lists it:
    /// nesca holds no record of that certificate otherwise), once; the first time stays.
    /// One transaction with its audit record. Refuses an unknown CA.
    fn record_ca_revoked(
        &self,
        ca: &IssuerId,
        actor: &crate::Principal,
        at: UnixTime,
    ) -> Result<()>;
    /// When the root's revocation of `ca` was recorded (`record_ca_revoked`), if it was.
    fn ca_revoked_at(&self, ca: &IssuerId) -> Result<Option<UnixTime>>;
    /// Registers a licensed ESHS partner; refuses an id that exists
    /// ([`crate::CaError::AlreadyExists`]). One transaction with its audit record.
    fn add_partner(
        &self,
        partner: PartnerRecord,
        actor: &crate::Principal,
        at: UnixTime,
    ) -> Result<()>;
    /// Deactivates a partner: no new certificate is issued to it. Its certificates stay as
    /// they are (revoke them one by one). Refuses an unknown or already inactive partner.
    fn deactivate_partner(
        &self,
        id: &PartnerId,
        actor: &crate::Principal,
        at: UnixTime,
    ) -> Result<()>;
    /// A partner by id.
    fn partner(&self, id: &PartnerId) -> Result<Option<PartnerRecord>>;
    /// Every registered partner, registration order.
    fn partners(&self) -> Result<Vec<PartnerRecord>>;
    /// Registers a trusted transport key (`ra::transport_keys` checked its certificate);
    /// refuses an id that exists, withdrawn or not ([`crate::CaError::AlreadyExists`]): a
    /// withdrawn key is never registered again. One transaction with its audit record.
    fn add_transport_key(
        &self,
        key: TransportKeyRecord,
        actor: &crate::Principal,
        at: UnixTime,
    ) -> Result<()>;
    /// Withdraws a registered transport key for good: no card key is wrapped for it again.
    /// Refuses an unknown id ([`crate::CaError::Invalid`] for `id`) and one already withdrawn
    /// ([`crate::CaError::Conflict`]). One transaction with its audit record.
    fn withdraw_transport_key(
        &self,
        id: &TransportKeyId,
        actor: &crate::Principal,
        at: UnixTime,
    ) -> Result<()>;
    /// A transport key by id, withdrawn or not.
    fn transport_key(&self, id: &TransportKeyId) -> Result<Option<TransportKeyRecord>>;
    /// Every registered transport key, registration order.
    fn transport_keys(&self) -> Result<Vec<TransportKeyRecord>>;
}

/// The generations of the issuing CA `base`, oldest first: `base`, then the CA that
/// supersedes it, and so on (a key rollover adds one). The last is the one that issues.
/// Empty when `base` is not in the store.
pub fn generations(store: &dyn RegistryStore, base: &IssuerId) -> Result<Vec<CaRecord>> {
    let all = store.cas()?;
    let mut out: Vec<CaRecord> = Vec::new();
    let mut next = all.iter().find(|c| &c.id == base);
    while let Some(ca) = next {
        // The store refuses two successors of one CA and a loop cannot be written (a
        // successor is added after what it supersedes), but a damaged store stops here.
        if out.iter().any(|seen| seen.id == ca.id) {
            break;
        }
        out.push(ca.clone());
        next = all.iter().find(|c| c.supersedes.as_ref() == Some(&ca.id));
    }
    Ok(out)
}
