//! The host API a channel plugin gets: submit an issuance application (with a CSR, or for a
//! key the HSM generates and wraps for the card), hand in the holder's signed commitment, a
//! lifecycle request on the holder's behalf, lookups, and logging. Nothing else: no key, no
//! HSM, no SQL, no file system. Every input is parsed into ca-core's typed values here, at the
//! edge.

use std::sync::Arc;

use ca_core::engine::{Engine, NesApplication, SigningCa};
use ca_core::lifecycle::{LifecycleAction, LifecycleRequest, RequestId};
use ca_core::profile::NesProfile;
use ca_core::store::{
    ApplicationIssued, ApplicationStatus, CertStatus, ChannelApplication, FinishedApplication,
    Store,
};
use ca_core::{CaError, PersonName, Serial, SubjectKey, Tckn, VerifiedCsr};
use nesca_plugin_api::host_api::{
    self, ApplicationInfo, CertificateInfo, Commitment, CommitmentAccepted, HsmKeyRequest,
    ImportList, Issued, LifecycleCall, LifecycleOutcome, ListImported, ListProblem,
    LookupApplication, LookupCertificate, SubmitApplication, SubmitCommitment, WrappedKey,
};
use nesca_plugin_api::{HostApi, HostError, HostErrorCode, LogLevel};
use nesca_ra::commitment::{commitment_text, new_commitment, CommitmentSubject, Commitments};
use nesca_ra::lifecycle::Lifecycle;

use super::refusal::{self, ca, identity, invalid, principal, ra, request, response};

/// What the host needs to answer plugins.
pub struct ChannelHost {
    pub store: Arc<dyn Store>,
    pub lifecycle: Lifecycle,
    /// `None` in `nesca plugins list`, which loads plugins without issuing anything.
    pub issuance: Option<Issuing>,
    /// Invited people completing their applications (the `applicant` method).
    pub enrollments: nesca_ra::enrollment::Enrollments,
}

/// Issuance as channels reach it: the engine, the issuing CA and the NES profile.
pub struct Issuing {
    pub engine: Engine,
    pub ca: SigningCa,
    pub nes: NesProfile,
    /// The chain handed back with each certificate: issuing CA, then root (DER).
    pub chain_der: Vec<Vec<u8>>,
    /// The token, for card keys generated and wrapped for a card.
    pub hsm: hsm::Hsm,
    pub commitments: Commitments,
    /// How long a certificate waits suspended for its signed commitment.
    pub commitment_deadline_seconds: i64,
}

/// Who an application is for and who sends it, after parsing.
struct Target<'a> {
    plugin: &'a str,
    actor: &'a str,
    tckn: &'a Tckn,
    given_name: PersonName,
    surname: PersonName,
    overwrite: Option<Serial>,
}

/// The key of an application, checked before anything is recorded.
enum KeySource {
    Csr(VerifiedCsr),
    Hsm {
        algorithm: hsm::KeyAlgorithm,
        transport_public_key_der: Vec<u8>,
    },
}

impl KeySource {
    fn parse(csr_der: &[u8], hsm_key: Option<&HsmKeyRequest>) -> Result<KeySource, HostError> {
        match (csr_der.is_empty(), hsm_key) {
            (false, None) => Ok(KeySource::Csr(VerifiedCsr::parse(csr_der).map_err(ca)?)),
            (true, Some(h)) => {
                let algorithm: hsm::KeyAlgorithm =
                    h.algorithm.parse().map_err(invalid("hsm_key.algorithm"))?;
                if h.transport_public_key_der.is_empty() {
                    return Err(HostError::invalid(
                        "hsm_key.transport_public_key_der",
                        "is empty",
                    ));
                }
                Ok(KeySource::Hsm {
                    algorithm,
                    transport_public_key_der: h.transport_public_key_der.clone(),
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
}

/// The wire name of a wrapping scheme.
pub(crate) fn scheme_name(scheme: hsm::WrapScheme) -> &'static str {
    match scheme {
        hsm::WrapScheme::RsaOaepSha1AesKwp => "rsa-oaep-sha1+aes-kwp",
        _ => "rsa-oaep-sha256+aes-kwp",
    }
}

/// A channel's reference: 1–128 of `A-Z a-z 0-9 . _ : -` (a digest in hex or base64url fits).
fn check_channel_ref(r: &str) -> Result<(), HostError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-');
    if r.is_empty() || r.len() > 128 || !r.chars().all(ok_char) {
        return Err(HostError::invalid(
            "channel_ref",
            "must be 1 to 128 characters of A-Z, a-z, 0-9, '.', '_', ':', '-'",
        ));
    }
    Ok(())
}

/// Issuance (or its commitments) asked of a host that has none (`nesca plugins list`).
fn issuance_unavailable(method: &str) -> HostError {
    HostError::new(
        HostErrorCode::Unavailable,
        method,
        "issuance is not available here",
    )
}

impl ChannelHost {
    /// Issues for a channel's application, once per `channel_ref`: the inputs are checked
    /// first (a refused input uses up nothing), then the reference is recorded as pending
    /// before anything is generated or signed, so a replay or a retry gets the first result
    /// and never a second certificate.
    fn submit(&self, plugin: &str, a: SubmitApplication) -> Result<Issued, HostError> {
        let Some(iss) = &self.issuance else {
            return Err(issuance_unavailable(host_api::SUBMIT_APPLICATION));
        };
        check_channel_ref(&a.channel_ref)?;
        let tckn = Tckn::parse(&a.tckn).map_err(invalid("tckn"))?;
        let given_name = PersonName::parse("given_name", &a.given_name).map_err(identity)?;
        let surname = PersonName::parse("surname", &a.surname).map_err(identity)?;
        let key = KeySource::parse(&a.csr_der, a.hsm_key.as_ref())?;
        if let Some(days) = a.validity_days {
            // ca-core names the command-line flag; a channel's field is `validity_days`.
            ca_core::profile::check_validity_days(&iss.nes, days).map_err(|e| match e {
                CaError::Invalid { rule, .. } => HostError::invalid("validity_days", rule),
                other => ca(other),
            })?;
        }
        let overwrite = match &a.overwrite_serial {
            Some(hex) => Some(self.check_overwrite(hex, &tckn)?),
            None => None,
        };
        let actor = format!("plugin:{plugin}");
        let now = ca_core::clock::unix_seconds(iss.engine.clock().now());
        if let Some(seen) = self
            .store
            .begin_application(plugin, &a.channel_ref, &actor, now)
            .map_err(ca)?
        {
            return self.first_result(iss, seen);
        }
        let target = Target {
            plugin,
            actor: &actor,
            tckn: &tckn,
            given_name,
            surname,
            overwrite,
        };
        // On success the application's outcome was recorded with the certificate, in one
        // transaction; a refusal is recorded here, so that a replay gets the same refusal.
        let (recorded, cert_der) = match self.issue_for(iss, key, &target, &a) {
            Ok(done) => done,
            Err(e) => {
                let record = Err(refusal::to_record(&e));
                self.store
                    .finish_application(plugin, &a.channel_ref, record, &actor, now)
                    .map_err(ca)?;
                return Err(e);
            }
        };
        tracing::info!(plugin, serial = %recorded.serial, channel_ref = %a.channel_ref, awaits_commitment = a.commitment, "issued through a channel");
        self.answer_issued(iss, recorded, cert_der, false)
    }

    /// The new holder certificate must overwrite one of the same person's live certificates.
    fn check_overwrite(&self, hex: &str, tckn: &Tckn) -> Result<Serial, HostError> {
        const FIELD: &str = "overwrite_serial";
        let serial = Serial::from_hex(hex).map_err(invalid(FIELD))?;
        let record = self.store.get(None, &serial).map_err(ca)?.ok_or_else(|| {
            HostError::new(
                HostErrorCode::NotFound,
                FIELD,
                format!("certificate {serial} is not found"),
            )
        })?;
        if record.subject.tckn.as_deref() != Some(tckn.as_str()) {
            return Err(HostError::new(
                HostErrorCode::Refused,
                FIELD,
                format!("certificate {serial} belongs to another person"),
            ));
        }
        if !matches!(record.status, CertStatus::Active | CertStatus::Suspended) {
            return Err(HostError::new(
                HostErrorCode::Refused,
                FIELD,
                format!(
                    "certificate {serial} is {}, not active or suspended",
                    record.status
                ),
            ));
        }
        Ok(serial)
    }

    /// Generates the card key if asked and issues; the store records the certificate, its
    /// suspension and the application's outcome (the wrapped key, the awaited commitment) in
    /// one transaction.
    fn issue_for(
        &self,
        iss: &Issuing,
        key: KeySource,
        t: &Target<'_>,
        a: &SubmitApplication,
    ) -> Result<(ApplicationIssued, Vec<u8>), HostError> {
        let (key, wrapped) = match key {
            KeySource::Csr(csr) => (SubjectKey::from(csr), None),
            KeySource::Hsm {
                algorithm,
                transport_public_key_der,
            } => {
                let card = iss
                    .hsm
                    .generate_wrapped_card_key(algorithm, &transport_public_key_der)
                    .map_err(refusal::hsm_key)?;
                let key = SubjectKey::generated(card.public_key.spki_der()).map_err(ca)?;
                let wrapped = WrappedKey {
                    scheme: scheme_name(card.mechanism).to_owned(),
                    wrapped_key: card.wrapped_key,
                    wrapped_private_key: card.wrapped_private_key,
                };
                (key, Some(wrapped))
            }
        };
        let wrapped_key = match &wrapped {
            Some(w) => Some(serde_json::to_string(w).map_err(|e| {
                HostError::internal(format!("the wrapped key does not encode: {e}"))
            })?),
            None => None,
        };
        let deadline = ca_core::clock::unix_seconds(iss.engine.clock().now())
            + iss.commitment_deadline_seconds;
        let record = |issued: &ca_core::engine::Issued| -> ca_core::Result<_> {
            let commitment = match a.commitment {
                true => Some(new_commitment(
                    self.commitment_text(iss, t, issued)?,
                    deadline,
                    t.overwrite,
                )),
                false => None,
            };
            Ok(Some(FinishedApplication {
                production: None,
                channel: t.plugin.to_owned(),
                channel_ref: a.channel_ref.clone(),
                issued: ApplicationIssued {
                    serial: issued.serial,
                    wrapped_key: wrapped_key.clone(),
                    commitment,
                },
            }))
        };
        let issued = iss
            .engine
            .issue_nes_then(
                &iss.ca,
                &iss.nes,
                NesApplication {
                    key,
                    tckn: *t.tckn,
                    given_name: t.given_name.clone(),
                    surname: t.surname.clone(),
                    validity_days: a.validity_days,
                    await_commitment: a.commitment,
                },
                t.actor,
                &record,
            )
            .map_err(ca)?;
        // The commitment as recorded is read back by the answer.
        let recorded = ApplicationIssued {
            serial: issued.serial,
            wrapped_key,
            commitment: None,
        };
        Ok((recorded, issued.cert_der))
    }

    /// The commitment text of a freshly signed certificate.
    fn commitment_text(
        &self,
        iss: &Issuing,
        t: &Target<'_>,
        issued: &ca_core::engine::Issued,
    ) -> ca_core::Result<String> {
        use der::Decode as _;
        let cert =
            x509_cert::Certificate::from_der(&issued.cert_der).map_err(|e| CaError::Der {
                what: "Certificate",
                reason: e.to_string(),
            })?;
        let validity = &cert.tbs_certificate.validity;
        Ok(commitment_text(
            &CommitmentSubject {
                tckn: t.tckn.as_str(),
                given_name: &t.given_name.to_string(),
                surname: &t.surname.to_string(),
                issuer: iss.ca.context.id.as_str(),
            },
            &issued.serial,
            ca_core::clock::unix_seconds(validity.not_before.to_system_time()),
            ca_core::clock::unix_seconds(validity.not_after.to_system_time()),
            &issued.cert_der,
        ))
    }

    /// The answer for an issued application (first time or replay), with the certificate's
    /// status now, the wrapped key and the commitment.
    fn answer_issued(
        &self,
        iss: &Issuing,
        recorded: ApplicationIssued,
        cert_der: Vec<u8>,
        replayed: bool,
    ) -> Result<Issued, HostError> {
        let serial = recorded.serial;
        let status = self
            .store
            .get(Some(&iss.ca.context.id), &serial)
            .map_err(ca)?
            .map(|r| r.status.as_str().to_owned());
        let commitment = match recorded.commitment {
            Some(c) => Some(Commitment {
                text: c.text,
                sha256: c.sha256_hex,
                deadline: c.deadline,
            }),
            None => self
                .store
                .commitment(&serial)
                .map_err(ca)?
                .map(|c| Commitment {
                    text: c.text,
                    sha256: c.sha256_hex,
                    deadline: c.deadline,
                }),
        };
        let wrapped_key = match recorded.wrapped_key {
            Some(json) => Some(serde_json::from_str::<WrappedKey>(&json).map_err(|e| {
                HostError::internal(format!("the recorded wrapped key does not decode: {e}"))
            })?),
            None => None,
        };
        Ok(Issued {
            serial: serial.to_hex(),
            certificate_der: cert_der,
            chain_der: iss.chain_der.clone(),
            status,
            wrapped_key,
            commitment,
            replayed,
        })
    }

    /// The answer to a `channel_ref` seen before: the same certificate, or the same refusal.
    fn first_result(&self, iss: &Issuing, seen: ChannelApplication) -> Result<Issued, HostError> {
        match (seen.status, seen.serial) {
            (ApplicationStatus::Issued, Some(serial)) => {
                let cert_der = self
                    .store
                    .get(Some(&iss.ca.context.id), &serial)
                    .map_err(ca)?
                    .and_then(|r| r.cert_der)
                    .ok_or_else(|| {
                        HostError::internal(format!(
                            "certificate {serial} of a replayed application is missing"
                        ))
                    })?;
                let recorded = ApplicationIssued {
                    serial,
                    wrapped_key: seen.wrapped_key,
                    commitment: None,
                };
                self.answer_issued(iss, recorded, cert_der, true)
            }
            (ApplicationStatus::Refused, _) => {
                Err(refusal::from_record(seen.error.unwrap_or_default()))
            }
            _ => Err(HostError::new(
                HostErrorCode::Conflict,
                "channel_ref",
                format!("application {} is still being processed", seen.channel_ref),
            )),
        }
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
        let serial = Serial::from_hex(&c.serial).map_err(invalid("serial"))?;
        let accepted = iss
            .commitments
            .accept(
                plugin,
                &serial,
                &c.signed_commitment_der,
                &ca_core::Principal::channel(plugin).map_err(principal)?,
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
            &format!("plugin:{plugin}"),
            &|step| tracing::debug!(plugin, "list import: {step}"),
        )
        .map_err(refusal::import)?;
        let o = &imported.outcome;
        Ok(ListImported {
            file_sha256: imported.report.file_sha256.clone(),
            status: o.status.clone(),
            replayed: o.replayed,
            valid: imported.valid as u64,
            invalid: (imported.report.counts.invalid + o.already_open.len()) as u64,
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
        let a = self
            .store
            .application(plugin, &l.channel_ref)
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
            error: a.error.map(|e| refusal::from_record(e).to_string()),
            submitted_at: a.created_at,
        })
    }

    fn lifecycle(&self, plugin: &str, c: LifecycleCall) -> Result<LifecycleOutcome, HostError> {
        let serial = Serial::from_hex(&c.serial).map_err(invalid("serial"))?;
        let holder = Tckn::parse(&c.holder_tckn).map_err(invalid("holder_tckn"))?;
        let action = LifecycleAction::parse(&c.action, c.reason.as_deref(), c.invalidity_date)
            .map_err(ca)?;
        let request_id = RequestId::new(&c.request_id).map_err(ca)?;
        let o = self
            .lifecycle
            .apply(LifecycleRequest {
                request_id,
                issuer: None,
                serial,
                holder: Some(holder),
                action,
                actor: ca_core::Principal::channel(plugin).map_err(principal)?,
            })
            .map_err(ra)?;
        Ok(LifecycleOutcome {
            status: o.status.as_str().to_string(),
            at: o.at,
            reason: o.reason.map(|r| r.name().to_string()),
            replayed: o.replayed,
        })
    }

    fn lookup(&self, l: LookupCertificate) -> Result<CertificateInfo, HostError> {
        let serial = Serial::from_hex(&l.serial).map_err(invalid("serial"))?;
        let r = self.store.get(None, &serial).map_err(ca)?.ok_or_else(|| {
            ca(CaError::NotFound {
                serial: serial.to_hex(),
            })
        })?;
        Ok(CertificateInfo {
            serial: r.serial.to_hex(),
            status: r.status.as_str().to_string(),
            subject: r.subject.subject,
            tckn: r.subject.tckn,
            not_before: r.not_before,
            not_after: r.not_after,
            certificate_der: r.cert_der,
        })
    }
}

impl HostApi for ChannelHost {
    fn call(&self, plugin: &str, method: &str, request_json: &[u8]) -> Result<Vec<u8>, HostError> {
        let json = request_json;
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

    fn log(&self, plugin: &str, level: LogLevel, message: &str) {
        match level {
            LogLevel::Error => tracing::error!(plugin, "{message}"),
            LogLevel::Warn => tracing::warn!(plugin, "{message}"),
            LogLevel::Info => tracing::info!(plugin, "{message}"),
            _ => tracing::debug!(plugin, "{message}"),
        }
    }
}
