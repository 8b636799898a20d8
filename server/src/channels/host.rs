//! The host API a channel plugin gets: submit an issuance application (with a CSR, or for a
//! key the HSM generates and wraps for the card), hand in the holder's signed commitment, a
//! lifecycle request on the holder's behalf, an institution's list, an applicant's step,
//! lookups, and logging. Nothing else: no key, no HSM, no SQL, no file system. Every input is
//! parsed into typed values here, at the edge, and the registration authority (`ra`) decides;
//! its refusals come back as typed [`HostError`]s.

use std::sync::Arc;

use ca_core::lifecycle::{LifecycleAction, LifecycleRequest, RequestId};
use ca_core::store::Store;
use ca_core::{CaError, ChannelName, PersonName, Principal, Serial, Tckn, UnixTime, VerifiedCsr};
use nesca_plugin_api::host_api::{
    self, ApplicationInfo, CertificateInfo, Commitment, CommitmentAccepted, HsmKeyRequest,
    ImportList, Issued, LifecycleCall, LifecycleOutcome, ListImported, ListProblem,
    LookupApplication, LookupCertificate, SubmitApplication, SubmitCommitment, WrappedKey,
};
use nesca_plugin_api::{HostApi, HostError, HostErrorCode, LogLevel};
use nesca_ra::commitment::Commitments;
use nesca_ra::holder_details::HolderDetails;
use nesca_ra::lifecycle::Lifecycle;
use nesca_ra::nes::{
    ChannelRef, IssuedNes, NesHolder, NesIssuance, NesOutcome, NesRequest, SubscriberKey,
};
use nesca_ra::refusal::Refusal;

use super::refusal::{self, ca, identity, invalid, principal, ra, request, response};

/// What the host needs to answer plugins.
pub(crate) struct ChannelHost {
    pub store: Arc<dyn Store>,
    pub lifecycle: Lifecycle,
    /// `None` in `nesca plugins list`, which loads plugins without issuing anything.
    pub issuance: Option<Issuing>,
    /// Invited people completing their applications (the `applicant` method).
    pub enrollments: nesca_ra::enrollment::Enrollments,
}

/// Issuance as channels reach it: the registration authority's NES issuance, and what the
/// answers need.
pub(crate) struct Issuing {
    /// The one path of NES issuance (`nesca_ra::nes`).
    pub nes: NesIssuance,
    /// The chain handed back with each certificate: issuing CA, then root (DER).
    pub chain_der: Vec<Vec<u8>>,
    pub commitments: Commitments,
    /// How long a certificate waits suspended for its signed commitment.
    pub commitment_deadline_seconds: i64,
}

/// The application's key, from the request: a CSR, or a card key for the HSM to generate.
fn subscriber_key(
    csr_der: &[u8],
    hsm_key: Option<&HsmKeyRequest>,
) -> Result<SubscriberKey, HostError> {
    match (csr_der.is_empty(), hsm_key) {
        (false, None) => Ok(SubscriberKey::Csr(VerifiedCsr::parse(csr_der).map_err(ca)?)),
        (true, Some(h)) => {
            let algorithm: hsm::KeyAlgorithm =
                h.algorithm.parse().map_err(invalid("hsm_key.algorithm"))?;
            // Only the id of a registered transport key: whether it may be wrapped for is the
            // registration authority's decision (`nesca_ra::transport_keys`).
            if h.transport_key.is_empty() {
                return Err(HostError::invalid(
                    "hsm_key.transport_key",
                    "is required: the id of a registered transport key",
                ));
            }
            let transport_key = ca_core::transport_key::TransportKeyId::parse(
                "hsm_key.transport_key",
                &h.transport_key,
            )
            .map_err(ca)?;
            Ok(SubscriberKey::Card {
                algorithm,
                transport_key,
            })
        }
        (true, None) => Err(HostError::invalid(
            "csr_der",
            "a CSR or hsm_key is required",
        )),
        (false, Some(_)) => Err(HostError::invalid(
            "hsm_key",
            "give either csr_der or hsm_key, not both",
        )),
    }
}

/// Issuance (or its commitments) asked of a host that has none (`nesca plugins list`).
fn issuance_unavailable(operation: &'static str) -> HostError {
    ra(nesca_ra::RaError::Unavailable { operation })
}

/// The channel asking, as the principal that acts.
fn channel_principal(plugin: &str) -> Result<(Principal, ChannelName), HostError> {
    let channel = ChannelName::parse(plugin).map_err(principal)?;
    Ok((Principal::Channel(channel.clone()), channel))
}

impl ChannelHost {
    /// Parses a channel's application into the registration authority's request and has it
    /// issued (once per `channel_ref`; a replay answers the first result): see
    /// `nesca_ra::nes`.
    fn submit(&self, plugin: &str, a: SubmitApplication) -> Result<Issued, HostError> {
        let Some(iss) = &self.issuance else {
            return Err(issuance_unavailable(host_api::SUBMIT_APPLICATION));
        };
        let channel_ref = ChannelRef::parse(&a.channel_ref).map_err(ra)?;
        let tckn = Tckn::parse(&a.tckn).map_err(invalid("tckn"))?;
        let given_name = PersonName::parse("given_name", &a.given_name).map_err(identity)?;
        let surname = PersonName::parse("surname", &a.surname).map_err(identity)?;
        let key = subscriber_key(&a.csr_der, a.hsm_key.as_ref())?;
        let overwrite = match &a.overwrite_serial {
            Some(hex) => Some(
                Serial::parse_hex(hex)
                    .map_err(|e| e.rule())
                    .map_err(invalid("overwrite_serial"))?,
            ),
            None => None,
        };
        // Checked before anything is issued: a bad value refuses the application.
        let holder_details = HolderDetails::parse(
            a.mobile.as_deref(),
            a.email.as_deref(),
            a.security_word
                .as_ref()
                .map(|w| secrecy::SecretString::from(w.0.clone())),
        )
        .map_err(ra)?;
        let (by, channel) = channel_principal(plugin)?;
        let request = NesRequest {
            channel,
            channel_ref,
            holder: NesHolder {
                tckn,
                given_name,
                surname,
            },
            key,
            validity_days: a.validity_days,
            commitment_within_seconds: a.commitment.then_some(iss.commitment_deadline_seconds),
            overwrite,
            production: None,
        };
        let issued = match iss.nes.apply(&by, request).map_err(ra)? {
            NesOutcome::Issued(issued) => {
                tracing::info!(plugin, serial = %issued.serial, channel_ref = %a.channel_ref, awaits_commitment = a.commitment, "issued through a channel");
                issued
            }
            NesOutcome::SeenBefore(seen) => iss.nes.replay(seen).map_err(ra)?,
        };
        // Recorded after the issuance, and on a replay while the certificate awaits its
        // commitment: a retry fills in what the first attempt did not record, and changes
        // nothing recorded. Later, a partner replaying an old verification must not plant a
        // security word or a mobile number (the holder's portal access) on a live certificate.
        if !issued.replayed || iss.nes.awaits_commitment(&issued.serial).map_err(ra)? {
            holder_details
                .record(
                    (&self.store, &crate::wiring::clock()),
                    &iss.nes.ca.context.id,
                    &issued.serial,
                    &by,
                )
                .map_err(ra)?;
        }
        self.answer_issued(iss, issued)
    }

    /// The answer for an issued application (first time or replay), with the certificate's
    /// status now, the wrapped key and the commitment.
    fn answer_issued(&self, iss: &Issuing, issued: IssuedNes) -> Result<Issued, HostError> {
        let serial = issued.serial;
        let status = self
            .store
            .get(Some(&iss.nes.ca.context.id), &serial)
            .map_err(ca)?
            .map(|r| r.status.as_str().to_owned());
        let commitment = self
            .store
            .commitment(&serial)
            .map_err(ca)?
            .map(|c| Commitment {
                text: c.text,
                sha256: c.sha256_hex,
                deadline: c.deadline.secs(),
            });
        let wrapped_key = issued.wrapped_key.map(|w| WrappedKey {
            scheme: w.scheme.as_str().to_owned(),
            wrapped_key: w.wrapped_key,
            wrapped_private_key: w.wrapped_private_key,
            transport_key: w.transport_key.map(|id| id.to_string()),
        });
        Ok(Issued {
            serial: serial.to_hex(),
            certificate_der: issued.cert_der,
            chain_der: iss.chain_der.clone(),
            status,
            wrapped_key,
            commitment,
            replayed: issued.replayed,
        })
    }

    /// Verifies and records the holder's signed commitment; see [`Commitments::accept`].
    fn submit_commitment(
        &self,
        plugin: &str,
        c: SubmitCommitment,
    ) -> Result<CommitmentAccepted, HostError> {
        let Some(iss) = &self.issuance else {
            return Err(issuance_unavailable(host_api::SUBMIT_COMMITMENT));
        };
        let serial = Serial::parse_hex(&c.serial)
            .map_err(|e| e.rule())
            .map_err(invalid("serial"))?;
        let accepted = iss
            .commitments
            .accept(
                plugin,
                &serial,
                &c.signed_commitment_der,
                &channel_principal(plugin)?.0,
            )
            .map_err(ra)?;
        let status = self
            .store
            .get(Some(&accepted.record.issuer), &serial)
            .map_err(ca)?
            .map(|r| r.status.as_str().to_owned())
            .unwrap_or_default();
        Ok(CommitmentAccepted {
            serial: serial.to_hex(),
            status,
            signed_commitment_der: c.signed_commitment_der,
            superseded: accepted.outcome.superseded.map(|s| s.to_hex()),
            replayed: accepted.outcome.replayed,
        })
    }

    /// Imports an institution's list (see `crate::list_import`): the officer's signature is
    /// what authorises it; a wet-signed list is only held until an operator confirms it.
    fn import_list(&self, plugin: &str, l: ImportList) -> Result<ListImported, HostError> {
        use ca_core::institution::{InstitutionId, ListSignature};
        let institution = InstitutionId::parse(&l.institution).map_err(ca)?;
        let format = nesca_frm_list::ListFormat::from_file_name(&l.file_name)
            .map_err(invalid("file_name"))?;
        let signature = match (l.signature_der, l.wet_scan) {
            (Some(sig), None) => ListSignature::Cms(sig),
            (None, Some(scan)) => ListSignature::Wet(scan),
            _ => {
                return Err(HostError::invalid(
                    "signature_der",
                    "give exactly one of signature_der and wet_scan",
                ))
            }
        };
        let imported = crate::list_import::import_file(
            self.store.clone(),
            &institution,
            &l.file_name,
            format,
            &l.file,
            signature,
            &channel_principal(plugin)?.0,
            &|step| tracing::debug!(plugin, "list import: {step}"),
        )
        .map_err(refusal::import)?;
        let o = &imported.outcome;
        Ok(ListImported {
            file_sha256: imported.report.file_sha256.clone(),
            status: o.status.as_str().to_owned(),
            replayed: o.replayed,
            valid: imported.valid_rows() as u64,
            invalid: imported.invalid_rows() as u64,
            created: o.created.len() as u64,
            already_open: o.already_open.len() as u64,
            problems: imported
                .report
                .invalid
                .iter()
                .map(|p| ListProblem {
                    row: p.row,
                    field: p.field.to_owned(),
                    reason: p.reason.clone(),
                })
                .collect(),
            warnings: imported.report.warnings.clone(),
            report_csv: imported.csv(),
        })
    }

    fn lookup_application(
        &self,
        plugin: &str,
        l: LookupApplication,
    ) -> Result<ApplicationInfo, HostError> {
        let (_, channel) = channel_principal(plugin)?;
        let a = self
            .store
            .application(&channel, &l.channel_ref)
            .map_err(ca)?
            .ok_or_else(|| {
                HostError::new(
                    HostErrorCode::NotFound,
                    "channel_ref",
                    format!("no application {}", l.channel_ref),
                )
            })?;
        Ok(ApplicationInfo {
            channel_ref: a.channel_ref,
            status: a.status.as_str().to_string(),
            serial: a.serial.map(|s| s.to_hex()),
            // The refusal as its message, whether the host or the store recorded it.
            error: a.error.map(|e| Refusal::from_record(&e).to_string()),
            // The plugin API carries instants as Unix seconds.
            submitted_at: a.created_at.secs(),
        })
    }

    fn lifecycle(&self, plugin: &str, c: LifecycleCall) -> Result<LifecycleOutcome, HostError> {
        let serial = Serial::parse_hex(&c.serial)
            .map_err(|e| e.rule())
            .map_err(invalid("serial"))?;
        let holder = Tckn::parse(&c.holder_tckn).map_err(invalid("holder_tckn"))?;
        let action = LifecycleAction::parse(
            &c.action,
            c.reason.as_deref(),
            c.invalidity_date.map(UnixTime::from_secs),
        )
        .map_err(ca)?;
        // A KEC's holder request is the holder's: the same reasons as in the portal.
        nesca_ra::portal::check_holder_reason(&action).map_err(ra)?;
        let request_id = RequestId::new(&c.request_id).map_err(ca)?;
        let o = self
            .lifecycle
            .apply(LifecycleRequest {
                request_id,
                issuer: None,
                serial,
                holder: Some(holder),
                action,
                actor: channel_principal(plugin)?.0,
            })
            .map_err(ra)?;
        Ok(LifecycleOutcome {
            status: o.status.as_str().to_string(),
            at: o.at.secs(),
            reason: o.reason.map(|r| r.name().to_string()),
            replayed: o.replayed,
        })
    }

    fn lookup(&self, l: LookupCertificate) -> Result<CertificateInfo, HostError> {
        let serial = Serial::parse_hex(&l.serial)
            .map_err(|e| e.rule())
            .map_err(invalid("serial"))?;
        let r = self.store.get(None, &serial).map_err(ca)?.ok_or_else(|| {
            ca(CaError::NotFound {
                serial: serial.to_hex(),
            })
        })?;
        Ok(CertificateInfo {
            serial: r.serial.to_hex(),
            status: r.status.as_str().to_string(),
            subject: r.subject.subject,
            tckn: r.subject.tckn.map(|t| t.to_string()),
            not_before: r.not_before.secs(),
            not_after: r.not_after.secs(),
            certificate_der: r.cert_der,
        })
    }
}

impl HostApi for ChannelHost {
    fn call(&self, plugin: &str, method: &str, request_json: &[u8]) -> Result<Vec<u8>, HostError> {
        self.answer(plugin, method, request_json)
            .map_err(|e| refusal::redacted(plugin, method, e))
    }

    fn log(&self, plugin: &str, level: LogLevel, message: &str) {
        match level {
            LogLevel::Error => tracing::error!(plugin, "{message}"),
            LogLevel::Warn => tracing::warn!(plugin, "{message}"),
            LogLevel::Info => tracing::info!(plugin, "{message}"),
            _ => tracing::debug!(plugin, "{message}"),
        }
    }
}

impl ChannelHost {
    /// One host call; its failures are redacted by [`HostApi::call`] before the plugin sees
    /// them (`refusal::redacted`).
    fn answer(&self, plugin: &str, method: &str, json: &[u8]) -> Result<Vec<u8>, HostError> {
        match method {
            host_api::SUBMIT_APPLICATION => response(&self.submit(plugin, request(method, json)?)?),
            host_api::LIFECYCLE => response(&self.lifecycle(plugin, request(method, json)?)?),
            host_api::LOOKUP_CERTIFICATE => response(&self.lookup(request(method, json)?)?),
            host_api::LOOKUP_APPLICATION => {
                response(&self.lookup_application(plugin, request(method, json)?)?)
            }
            host_api::SUBMIT_COMMITMENT => {
                response(&self.submit_commitment(plugin, request(method, json)?)?)
            }
            host_api::APPLICANT => response(&super::applicant::answer(
                &self.enrollments,
                request(method, json)?,
            )?),
            host_api::IMPORT_LIST => response(&self.import_list(plugin, request(method, json)?)?),
            other => Err(HostError::without_field(
                HostErrorCode::Invalid,
                format!("unknown host method \"{other}\""),
            )),
        }
    }
}
