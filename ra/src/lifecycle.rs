//! Holder requests: suspension, release and revocation of a certificate on its holder's
//! request, the one entry point of the command line, the channels and the admin API (later
//! the portal) — through the admin API as an operator took the request in, proven by the
//! holder's channel and, by phone, the security word; a revocation the provider makes on legal
//! grounds once dual control approved it; and the revocation of an issuing CA's certificate by its root
//! ([`Lifecycle::revoke_ca`]). The rule here is who may ask and with which reason; the
//! transitions themselves are ca-core's (`ca_core::lifecycle`).

use std::sync::Arc;

use ca_core::clock::Clock;
use ca_core::lifecycle::{LifecycleAction, LifecycleRequest, RequestId, RevocationReason};
use ca_core::store::{
    CertRecord, CommitmentStatus, HolderChannel, RequestedBy, RevocationGrounds, Store,
    TransitionOutcome, TransitionWrite,
};
use ca_core::{CaError, IssuerId, Principal, Serial, Tckn};
use secrecy::{ExposeSecret, SecretString};

use crate::error::{RaError, Result};

/// Applies holder-requested lifecycle changes. Needs no key: a status change is a store
/// record, and CRLs and OCSP responses are signed from it afterwards.
pub struct Lifecycle {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

impl Lifecycle {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Lifecycle {
        Lifecycle { store, clock }
    }

    /// Checks that the holder asks, then records the transition durably (or answers with the
    /// first outcome of a request id seen before).
    ///
    /// The time of the change is the clock's now: a caller cannot date a revocation in the
    /// past (Law 5070 art. 11, no retroactive revocation); only keyCompromise may say since
    /// when the key was compromised, as an invalidity date.
    pub fn apply(&self, req: LifecycleRequest) -> Result<TransitionOutcome> {
        // An operator through the admin API takes the admin API's ids (`admin-…`), nobody
        // else takes any of nesca's own.
        let operators_own = matches!(req.actor, Principal::Operator(_))
            && req.request_id.as_str().starts_with("admin-");
        if req.request_id.is_reserved() && !operators_own {
            return Err(RaError::invalid(
                "request_id",
                "is reserved for nesca's own changes (the commitment process, the admin API)",
            ));
        }
        let record = self
            .store
            .get(req.issuer.as_ref(), &req.serial)?
            .ok_or_else(|| {
                RaError::from(CaError::NotFound {
                    serial: req.serial.to_hex(),
                })
            })?;
        let holder = req.holder.as_ref().map(Tckn::as_str);
        match (record.subject.tckn.as_ref().map(Tckn::as_str), holder) {
            (Some(subject), Some(asking)) if subject == asking => {}
            (Some(_), _) => {
                return Err(RaError::invalid(
                    "holder_tckn",
                    format!(
                        "{} must be requested by the certificate holder",
                        noun(&req.action)
                    ),
                ))
            }
            (None, Some(_)) => {
                return Err(RaError::invalid(
                    "holder_tckn",
                    "this certificate has no T.C. Kimlik No holder; the operator acts without one",
                ))
            }
            // The operator may suspend and revoke partners', operators' and listeners'
            // certificates, which have no T.C. Kimlik No holder.
            (None, None) if record.profile.is_operated() => {}
            (None, None) => {
                return Err(RaError::invalid(
                    "serial",
                    format!(
                        "{} certificates are not suspended or revoked through lifecycle requests",
                        record.profile
                    ),
                ))
            }
        }
        let requested_by = match req.holder {
            Some(tckn) => RequestedBy::Holder(tckn),
            None => RequestedBy::Operator,
        };
        self.write(record, req.request_id, req.action, requested_by, req.actor)
    }

    /// Records a checked change: a release waits for nothing the commitment process awaits.
    fn write(
        &self,
        record: ca_core::store::CertRecord,
        request_id: RequestId,
        action: LifecycleAction,
        requested_by: RequestedBy,
        actor: Principal,
    ) -> Result<TransitionOutcome> {
        // A certificate issued suspended awaiting its signed commitment is released only by
        // the commitment's acceptance (`ra::commitment`), never by a request. The commitment
        // is pending from the issuance on, so reading it before the write is not a race.
        if matches!(action, LifecycleAction::Release) {
            let awaited = self.store.commitment(&record.serial)?.is_some_and(|c| {
                c.issuer == record.issuer && c.status == CommitmentStatus::Pending
            });
            if awaited {
                return Err(RaError::invalid(
                    "serial",
                    format!(
                        "certificate {} stays suspended until its signed commitment arrives",
                        record.serial
                    ),
                ));
            }
        }
        let outcome = self.store.transition(TransitionWrite {
            request_id,
            issuer: record.issuer,
            serial: record.serial,
            action,
            requested_by,
            actor,
            at: self.clock.now_unix(),
        })?;
        tracing::info!(
            serial = %outcome.serial,
            issuer = %outcome.issuer,
            status = %outcome.status,
            replayed = outcome.replayed,
            "lifecycle {}",
            action.name()
        );
        Ok(outcome)
    }
}

/// The revocation of an issuing CA's certificate by its root: for good, with a reason a root
/// gives (`cACompromise`, `superseded`, `cessationOfOperation`, `affiliationChanged`), listed
/// in the root's CRL from then on.
pub struct CaRevocation {
    /// The issuing CA's certificate: its serial (issued by the root).
    pub serial: ca_core::Serial,
    pub reason: ca_core::lifecycle::RevocationReason,
    pub request_id: ca_core::lifecycle::RequestId,
    pub actor: ca_core::Principal,
}

impl Lifecycle {
    /// Revokes an issuing CA's certificate (an operator's decision, recorded like any
    /// revocation, at the clock's now). Refuses a certificate that is not an issuing CA's,
    /// and a reason a root does not give.
    pub fn revoke_ca(&self, r: CaRevocation) -> Result<TransitionOutcome> {
        if !ca_core::lifecycle::RevocationReason::FOR_CA_REVOCATION.contains(&r.reason) {
            let names: Vec<&str> = ca_core::lifecycle::RevocationReason::FOR_CA_REVOCATION
                .iter()
                .map(|r| r.name())
                .collect();
            return Err(RaError::invalid(
                "reason",
                format!(
                    "{} is not a reason to revoke a CA; one of {}",
                    r.reason,
                    names.join(", ")
                ),
            ));
        }
        let record = self.store.get(None, &r.serial)?.ok_or_else(|| {
            RaError::from(CaError::NotFound {
                serial: r.serial.to_hex(),
            })
        })?;
        if record.profile != ca_core::profile::ProfileName::IssuingCa {
            return Err(RaError::invalid(
                "serial",
                format!(
                    "{} is a {} certificate, not an issuing CA's",
                    r.serial, record.profile
                ),
            ));
        }
        Ok(self.store.transition(TransitionWrite {
            request_id: r.request_id,
            issuer: record.issuer,
            serial: r.serial,
            action: LifecycleAction::Revoke {
                reason: Some(r.reason),
                invalidity_date: None,
            },
            requested_by: RequestedBy::Operator,
            actor: r.actor,
            at: self.clock.now_unix(),
        })?)
    }
}

fn noun(action: &LifecycleAction) -> &'static str {
    match action {
        LifecycleAction::Suspend => "suspension",
        LifecycleAction::Release => "release of a suspension",
        LifecycleAction::Revoke { .. } => "revocation",
    }
}

/// Security-word checks allowed per certificate in [`SECURITY_WORD_WINDOW_SECS`]; the next
/// is refused, unchecked and uncounted, until the oldest leaves the window.
pub const SECURITY_WORD_CHECKS: u32 = 5;
/// The window of [`SECURITY_WORD_CHECKS`]: 24 hours.
pub const SECURITY_WORD_WINDOW_SECS: u64 = 86_400;

/// A change the holder asked the provider's operator for (the admin API): by letter, in
/// person, or by telephone with the security word from the application form.
pub struct HolderRequest {
    pub serial: Serial,
    pub action: LifecycleAction,
    /// Who the holder said they are: must be the certificate's subject.
    pub tckn: Tckn,
    pub channel: HolderChannel,
    /// Required for `phone`, refused otherwise.
    pub security_word: Option<SecretString>,
    pub request_id: RequestId,
    /// The operator who took the request in.
    pub actor: Principal,
}

/// A revocation the provider makes without the holder's request, on `grounds` (the admin
/// API, once other operators approved it).
pub struct ProviderRevocation {
    pub issuer: IssuerId,
    pub serial: Serial,
    pub reason: Option<RevocationReason>,
    pub grounds: RevocationGrounds,
    pub request_id: RequestId,
    /// The operator whose approval carried it out.
    pub actor: Principal,
}

impl Lifecycle {
    /// A NES with a T.C. Kimlik No holder, by serial (any CA nesca runs when `issuer` is
    /// `None`).
    pub fn holder_certificate(
        &self,
        issuer: Option<&IssuerId>,
        serial: &Serial,
    ) -> Result<CertRecord> {
        let record = self
            .store
            .get(issuer, serial)?
            .ok_or_else(|| RaError::NotFound {
                field: "serial",
                rule: format!("no certificate {serial}"),
            })?;
        if record.subject.tckn.is_none() {
            return Err(RaError::Invalid {
                field: "serial",
                rule: format!(
                    "certificate {serial} is a {} certificate, which has no T.C. Kimlik No holder",
                    record.profile
                ),
            });
        }
        Ok(record)
    }

    /// Applies a holder's request an operator took in, once the holder is proven: the T.C.
    /// Kimlik No must be the certificate's subject's; a telephone request needs the
    /// security word (argon2id-checked, [`SECURITY_WORD_CHECKS`] a day per certificate).
    pub fn apply_holder_request(&self, r: HolderRequest) -> Result<TransitionOutcome> {
        let record = self.holder_certificate(None, &r.serial)?;
        match (r.channel, &r.security_word) {
            (HolderChannel::Phone, None) => {
                return Err(RaError::invalid(
                    "holder_request.security_word",
                    "is required for a phone request",
                ))
            }
            (HolderChannel::Written | HolderChannel::InPerson, Some(_)) => {
                return Err(RaError::invalid(
                    "holder_request.security_word",
                    "is given only for a phone request",
                ))
            }
            _ => {}
        }
        if record.subject.tckn != Some(r.tckn) {
            return Err(RaError::Refused {
                field: "holder_request.tckn",
                rule: "is not the certificate holder's T.C. Kimlik No".into(),
            });
        }
        // The change must be possible before the word is checked: a check whose answer
        // changes nothing would tell a guesser the word for free.
        ca_core::lifecycle::next_status(
            record.status,
            &r.action,
            record.not_after,
            self.clock.now_unix(),
        )?;
        let (issuer, serial) = (record.issuer.clone(), record.serial);
        if let Some(word) = &r.security_word {
            self.check_security_word(&record, word, &r.actor)?;
        }
        let outcome = self.write(
            record,
            r.request_id,
            r.action,
            RequestedBy::HolderThrough(r.tckn, r.channel),
            r.actor,
        )?;
        // The count starts again only once the right word made a change.
        if r.security_word.is_some() {
            self.store.clear_security_word_checks(&issuer, &serial)?;
        }
        Ok(outcome)
    }

    /// Checks the holder's security word for `record`, counting the check first (`by`: the
    /// operator asking, for the log).
    fn check_security_word(
        &self,
        record: &CertRecord,
        word: &SecretString,
        by: &Principal,
    ) -> Result<()> {
        let field = "holder_request.security_word";
        let Some(hash) = self
            .store
            .holder_security_word(&record.issuer, &record.serial)?
        else {
            return Err(RaError::Refused {
                field,
                rule: "no security word is on record for this certificate; the holder asks in writing or in person".into(),
            });
        };
        let now = self.clock.now_unix();
        let since = ca_core::UnixTime::from_secs(
            now.secs().saturating_sub(SECURITY_WORD_WINDOW_SECS as i64),
        );
        let counted = self.store.count_security_word_check(
            &record.issuer,
            &record.serial,
            (since, now),
            SECURITY_WORD_CHECKS,
        )?;
        if let Err(oldest) = counted {
            // Refused without a check: the next one is counted once the oldest check in the
            // window leaves it.
            let until = oldest.plus(std::time::Duration::from_secs(SECURITY_WORD_WINDOW_SECS));
            tracing::warn!(serial = %record.serial, operator = %by, "security word: too many checks");
            return Err(RaError::Locked {
                field,
                until,
                until_text: ca_core::rfc3339(until),
            });
        }
        if !crate::outbox::password_matches(word.expose_secret(), &hash) {
            tracing::warn!(serial = %record.serial, operator = %by, "security word: no match");
            return Err(RaError::Unauthenticated {
                field,
                rule: "does not match the holder's security word".into(),
            });
        }
        Ok(())
    }

    /// The holder's certificate `serial` if the provider may ask to revoke it: a NES with a
    /// T.C. Kimlik No holder, active or suspended now (checked again when the revocation is
    /// carried out).
    pub fn provider_revocable(&self, serial: &Serial) -> Result<CertRecord> {
        let record = self.holder_certificate(None, serial)?;
        let now = self.clock.now_unix();
        if !ca_core::lifecycle::is_live(record.status, record.not_after, now) {
            return Err(RaError::Conflict {
                field: "serial",
                rule: format!(
                    "certificate {serial} is {} (or expired): nothing to revoke",
                    record.status
                ),
            });
        }
        Ok(record)
    }

    /// Revokes a holder's certificate on the provider's grounds (no holder request).
    pub fn revoke_by_provider(&self, r: ProviderRevocation) -> Result<TransitionOutcome> {
        let record = self.holder_certificate(Some(&r.issuer), &r.serial)?;
        self.write(
            record,
            r.request_id,
            LifecycleAction::Revoke {
                reason: r.reason,
                invalidity_date: None,
            },
            RequestedBy::Provider(r.grounds),
            r.actor,
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use ca_core::lifecycle::{RequestId, RevocationReason};
    use ca_core::store::prelude::*;
    use ca_core::store::{CertStatus, CrlKind, CrlReservation, DeltaEntry, RevokedEntry};
    use ca_core::testkit::{fixture, Fixture};
    use ca_core::{Principal, Serial, Tckn, UnixTime};

    const HOLDER: &str = "10000000146";

    fn issue(f: &Fixture) -> Serial {
        crate::testkit::issue_nes(f)
    }

    fn lifecycle(f: &Fixture) -> Lifecycle {
        Lifecycle::new(f.store.clone(), f.clock.clone())
    }

    fn request(serial: Serial, id: &str, verb: &str, reason: Option<&str>) -> LifecycleRequest {
        LifecycleRequest {
            request_id: RequestId::new(id).unwrap(),
            issuer: None,
            serial,
            holder: Some(Tckn::parse(HOLDER).unwrap()),
            action: LifecycleAction::parse(verb, reason, None).unwrap(),
            actor: Principal::HostOperator,
        }
    }

    #[test]
    fn request_ids_of_the_commitment_process_are_refused_from_outside() {
        let f = fixture();
        let serial = issue(&f);
        let l = Lifecycle::new(f.store.clone(), f.clock.clone());
        for prefix in RequestId::RESERVED_PREFIXES {
            let id = format!("{prefix}{}", serial.to_hex());
            let e = l.apply(request(serial, &id, "suspend", None)).unwrap_err();
            assert_eq!(
                e.to_string(),
                "request_id: is reserved for nesca's own changes (the commitment process, the admin API)"
            );
        }
        // Nothing was applied, and an ordinary id still works.
        assert_eq!(
            f.store.get(None, &serial).unwrap().unwrap().status,
            CertStatus::Active
        );
        l.apply(request(serial, "holder-1", "suspend", None))
            .unwrap();
    }

    #[test]
    fn suspend_release_revoke_with_history_and_audit() {
        let f = fixture();
        let serial = issue(&f);
        let l = lifecycle(&f);
        let o = l.apply(request(serial, "r1", "suspend", None)).unwrap();
        assert_eq!(o.status, CertStatus::Suspended);
        assert_eq!(o.reason, Some(RevocationReason::CertificateHold));
        let rec = f.store.get(None, &serial).unwrap().unwrap();
        assert_eq!(rec.status, CertStatus::Suspended);
        assert_eq!(
            rec.revocation.unwrap().reason,
            Some(RevocationReason::CertificateHold)
        );

        f.clock.advance(Duration::from_secs(60));
        let o = l.apply(request(serial, "r2", "unsuspend", None)).unwrap();
        assert_eq!((o.status, o.reason), (CertStatus::Active, None));
        assert_eq!(
            f.store.get(None, &serial).unwrap().unwrap().revocation,
            None
        );

        let o = l
            .apply(request(serial, "r3", "revoke", Some("keyCompromise")))
            .unwrap();
        assert_eq!(o.status, CertStatus::Revoked);
        let err = l
            .apply(request(serial, "r4", "unsuspend", None))
            .unwrap_err()
            .to_string();
        assert!(err.contains("revocation is final"), "{err}");

        let history = f.store.transitions(&f.ca.context.id, &serial).unwrap();
        let steps: Vec<_> = history.iter().map(|t| (t.action.as_str(), t.to)).collect();
        assert_eq!(
            steps,
            [
                ("suspend", CertStatus::Suspended),
                ("release", CertStatus::Active),
                ("revoke", CertStatus::Revoked)
            ]
        );
        assert!(history.windows(2).all(|w| w[0].seq < w[1].seq));
        assert_eq!(f.store.verify_audit().unwrap().first_break, None);
    }

    #[test]
    fn only_the_holder_may_ask_and_nothing_changes_otherwise() {
        let f = fixture();
        let serial = issue(&f);
        let mut req = request(serial, "r1", "revoke", None);
        req.holder = Some(Tckn::parse("17291716060").unwrap());
        let err = lifecycle(&f).apply(req).unwrap_err().to_string();
        assert_eq!(
            err,
            "holder_tckn: revocation must be requested by the certificate holder"
        );
        let mut req = request(serial, "r2", "suspend", None);
        req.holder = Some(Tckn::parse("17291716060").unwrap());
        assert!(lifecycle(&f)
            .apply(req)
            .unwrap_err()
            .to_string()
            .contains("suspension must be requested by the certificate holder"));
        assert_eq!(
            f.store.get(None, &serial).unwrap().unwrap().status,
            CertStatus::Active
        );
        assert!(f
            .store
            .transitions(&f.ca.context.id, &serial)
            .unwrap()
            .is_empty());
        // Without a holder: refused for a NES (only its holder may ask).
        let mut req = request(serial, "r2b", "revoke", None);
        req.holder = None;
        assert!(lifecycle(&f)
            .apply(req)
            .unwrap_err()
            .to_string()
            .starts_with("holder_tckn: revocation must be requested by the certificate holder"));
        let unknown = lifecycle(&f)
            .apply(request(Serial::random(), "r3", "revoke", None))
            .unwrap_err()
            .to_string();
        assert!(unknown.ends_with("not found"), "{unknown}");
    }

    #[test]
    fn a_request_id_applies_once() {
        let f = fixture();
        let serial = issue(&f);
        let l = lifecycle(&f);
        let first = l.apply(request(serial, "same", "suspend", None)).unwrap();
        f.clock.advance(Duration::from_secs(5));
        let again = l.apply(request(serial, "same", "suspend", None)).unwrap();
        assert!(again.replayed && !first.replayed);
        assert_eq!((again.status, again.at), (first.status, first.at));
        assert_eq!(
            f.store
                .transitions(&f.ca.context.id, &serial)
                .unwrap()
                .len(),
            1
        );
        let other = l
            .apply(request(serial, "same", "revoke", None))
            .unwrap_err()
            .to_string();
        assert!(
            other.starts_with("request_id: same was already used"),
            "{other}"
        );
    }

    #[test]
    fn concurrent_requests_never_apply_twice() {
        let f = fixture();
        let serial = issue(&f);
        let l = Arc::new(lifecycle(&f));
        let results: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let l = l.clone();
                    s.spawn(move || l.apply(request(serial, &format!("c{i}"), "suspend", None)))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
        assert_eq!(
            f.store
                .transitions(&f.ca.context.id, &serial)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn expired_certificates_keep_their_status() {
        let f = fixture();
        let serial = issue(&f);
        f.clock.advance(Duration::from_secs(86_400 * 1200));
        let err = lifecycle(&f)
            .apply(request(serial, "late", "revoke", None))
            .unwrap_err()
            .to_string();
        assert!(err.contains("expired"), "{err}");
    }

    #[test]
    fn crl_feeds_full_and_delta() {
        let f = fixture();
        let l = lifecycle(&f);
        let id = f.ca.context.id.clone();
        let [held, revoked, released, fresh_hold, good] = [(); 5].map(|_| issue(&f));
        l.apply(request(held, "a", "suspend", None)).unwrap();
        l.apply(request(revoked, "b", "revoke", Some("superseded")))
            .unwrap();
        l.apply(request(released, "c", "suspend", None)).unwrap();

        let reserve = |kind| {
            f.store.reserve_crl(CrlReservation {
                issuer: id.clone(),
                kind,
                this_update: UnixTime::EPOCH,
                next_update: UnixTime::from_secs(1),
                actor: ca_core::Principal::HostOperator,
                at: UnixTime::EPOCH,
            })
        };
        let err = reserve(CrlKind::Delta).unwrap_err().to_string();
        assert!(err.contains("needs a published full CRL"), "{err}");
        let full = reserve(CrlKind::Full).unwrap();
        let mut listed = Vec::new();
        let watermark = f
            .store
            .scan_revoked(&id, &mut |e: RevokedEntry| {
                listed.push(e);
                Ok(())
            })
            .unwrap();
        let mut expect = vec![held, revoked, released];
        expect.sort();
        assert_eq!(listed.iter().map(|e| e.serial).collect::<Vec<_>>(), expect);
        f.store
            .publish_crl(
                &id,
                full.number,
                watermark,
                listed.len() as u64,
                &ca_core::Principal::HostOperator,
                UnixTime::EPOCH,
            )
            .unwrap();

        // After the base: release one hold, hold another, leave `good` alone.
        l.apply(request(released, "d", "unsuspend", None)).unwrap();
        l.apply(request(fresh_hold, "e", "suspend", None)).unwrap();
        let delta = reserve(CrlKind::Delta).unwrap();
        assert_eq!(delta.number, full.number + 1);
        assert_eq!(delta.base.as_ref().map(|b| b.number), Some(full.number));
        let (entries, _) = f.store.delta_since(&id, watermark).unwrap();
        assert_eq!(entries.len(), 2, "{entries:?}");
        assert!(entries.contains(&DeltaEntry::Removed {
            serial: released,
            at: f.store.transitions(&id, &released).unwrap()[1].at
        }));
        assert!(entries.iter().any(|e| matches!(e,
            DeltaEntry::Listed(r) if r.serial == fresh_hold
                && r.revocation.reason == Some(RevocationReason::CertificateHold))));
        assert!(!entries
            .iter()
            .any(|e| matches!(e, DeltaEntry::Listed(r) if r.serial == good)));
    }
}
