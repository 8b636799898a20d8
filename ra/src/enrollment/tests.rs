use std::time::Duration;

use super::*;
use crate::outbox::Outbox;
use crate::testkit::Captured;
use ca_core::institution::{ListImport, ListSignature};
use ca_core::store::prelude::*;
use ca_core::store::{ImportStatus, ListImportWrite};
use ca_core::testkit::{demo_institution, fixture, list_row, nes_application, Fixture};

const PERSON: &str = "10000000146";

/// Lists PERSON (and a second person) on a signed list, delivers the access passwords, and
/// returns the outbox, the captured messages and PERSON's password.
fn invited(f: &Fixture) -> (Outbox, Arc<Captured>, String) {
    let id = demo_institution(f);
    f.store
        .import_list(ListImportWrite {
            import: ListImport {
                institution: id,
                file_sha256: "cd".repeat(32),
                file_name: "liste.csv".into(),
                signature: ListSignature::Cms(vec![1]),
                rows: vec![
                    list_row(2, PERSON, "Çağrı"),
                    list_row(3, "10000000078", "İpek"),
                ],
                invalid_rows: 0,
                actor: ca_core::Principal::HostOperator,
                at: ca_core::UnixTime::EPOCH,
            },
            status: ImportStatus::Accepted,
            already_open: vec![],
            held_limit: None,
        })
        .unwrap();
    let sent = Arc::new(Captured::default());
    let outbox = Outbox::new(
        f.store.clone(),
        f.clock.clone(),
        sent.clone(),
        sent.clone(),
        "https://e-imza.example/basvuru".into(),
    );
    assert_eq!(outbox.deliver_due(10).unwrap().sent, 2);
    let body = sent
        .emails()
        .into_iter()
        .find(|(to, _)| to == "p2@example.gov.tr")
        .unwrap()
        .1;
    let password = body
        .lines()
        .find_map(|l| l.strip_prefix("Erişim parolası: "))
        .unwrap()
        .to_owned();
    (outbox, sent, password)
}

fn tckn() -> Tckn {
    Tckn::parse(PERSON).unwrap()
}

/// The applicant's own address.
fn here() -> SignInSource {
    SignInSource::address("192.0.2.7".parse().unwrap())
}

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

fn form() -> ApplicantForm {
    ApplicantForm::parse(
        secret("Kırmızı7"),
        true,
        "Atatürk Bulvarı No: 1\nÇankaya / ANKARA",
    )
    .unwrap()
}

/// Signs in, fills the form and confirms the code: the application awaits its approval.
fn confirmed(f: &Fixture) -> (Enrollments, String) {
    let (outbox, sent, password) = invited(f);
    let e = Enrollments::new(f.store.clone(), f.clock.clone());
    let token = e
        .sign_in(&tckn(), &secret(&password), &here())
        .unwrap()
        .token;
    let token = token.expose_secret().to_owned();
    e.submit_form(&token, form()).unwrap();
    assert_eq!(outbox.deliver_due(10).unwrap().sent, 1);
    let code = last_code(&sent);
    e.confirm_code(&token, &secret(&code)).unwrap();
    (e, token)
}

/// The refusal of a code that cannot be confirmed any more (void, expired, none sent): a
/// conflict on `sms_code`, so the applicant asks for a new one.
#[track_caller]
fn assert_code_void(err: &RaError) {
    assert!(
        matches!(
            err,
            RaError::Conflict {
                field: "sms_code",
                ..
            }
        ),
        "{err:?}"
    );
}

fn last_code(sent: &Captured) -> String {
    let (to, body) = sent.sms().pop().expect("an SMS was sent");
    assert_eq!(to, "+905321234567");
    body.split(": ").nth(1).unwrap()[..6].to_owned()
}

fn stage(f: &Fixture) -> EnrollmentRecord {
    let id = f
        .store
        .open_pre_application(&Tckn::parse(PERSON).unwrap())
        .unwrap()
        .unwrap();
    f.store.enrollment(&id).unwrap().unwrap()
}

#[test]
fn sign_in_counts_failures_and_locks_for_half_an_hour() {
    let f = fixture();
    let (_, _, password) = invited(&f);
    let e = Enrollments::new(f.store.clone(), f.clock.clone());
    let unknown = Tckn::parse("17291716060").unwrap();
    let wrong = e
        .sign_in(&unknown, &secret(&password), &here())
        .unwrap_err();
    assert!(matches!(wrong, RaError::Unauthenticated { .. }), "{wrong}");
    for _ in 1..MAX_SIGN_IN_FAILURES {
        let err = e
            .sign_in(&tckn(), &secret("wrong-password"), &here())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            wrong.to_string(),
            "the same answer whether the number is known or not"
        );
    }
    let err = e
        .sign_in(&tckn(), &secret("wrong-password"), &here())
        .unwrap_err();
    assert_refused(&err);
    assert!(
        stage(&f).locked_until.is_some(),
        "the 5th wrong password locks"
    );
    // Locked: even the right password is refused until the lock ends — and the refusal is
    // the one an unknown number gets.
    let err = e.sign_in(&tckn(), &secret(&password), &here()).unwrap_err();
    assert_eq!(err.to_string(), wrong.to_string());
    f.clock
        .advance(Duration::from_secs(LOCK_SECONDS as u64 + 1));
    let grant = e.sign_in(&tckn(), &secret(&password), &here()).unwrap();
    assert_eq!(stage(&f).sign_in_attempts, 0);
    let view = e.session(grant.token.expose_secret()).unwrap();
    assert_eq!(view.pre.tckn.as_str(), PERSON);
    // The session ends after its time; the token itself is not stored.
    f.clock
        .advance(Duration::from_secs(SESSION_SECONDS as u64 + 1));
    let err = e.session(grant.token.expose_secret()).unwrap_err();
    assert!(matches!(err, RaError::Unauthenticated { .. }), "{err}");
    assert!(e.session("made-up").is_err());
    assert_eq!(f.store.verify_audit().unwrap().first_break, None);
}

#[test]
fn the_form_is_hashed_and_the_code_confirms_the_mobile_number() {
    let f = fixture();
    let (outbox, sent, password) = invited(&f);
    let e = Enrollments::new(f.store.clone(), f.clock.clone());
    let token = e
        .sign_in(&tckn(), &secret(&password), &here())
        .unwrap()
        .token;
    let token = token.expose_secret();

    // Bad fields are refused by name.
    for (word, address, field) in [
        ("ab", "Atatürk Bulvarı No: 1", "security_word"),
        ("iki kelime", "Atatürk Bulvarı No: 1", "security_word"),
        ("Kırmızı7", "kısa", "delivery_address"),
    ] {
        let err = ApplicantForm::parse(secret(word), false, address)
            .err()
            .unwrap();
        assert!(err.to_string().starts_with(field), "{err}");
    }
    let err = e.confirm_code(token, &secret("123456")).unwrap_err();
    assert!(matches!(err, RaError::Conflict { .. }), "{err}");

    e.submit_form(token, form()).unwrap();
    let rec = stage(&f);
    assert_eq!(rec.stage, EnrollmentStage::Form);
    assert!(rec.do_not_publish);
    let hash = rec.security_word_hash.unwrap();
    assert!(hash.starts_with("$argon2id$") && !hash.contains("Kırmızı7"));
    assert!(password_matches("Kırmızı7", &hash));

    assert_eq!(outbox.deliver_due(10).unwrap().sent, 1);
    let code = last_code(&sent);
    assert!(stage(&f).sms_code_hash.is_some_and(|h| !h.contains(&code)));
    // Wrong codes: counted, the third voids the code.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    // A wrong code with tries left is refused input (type it again), not a dead session; a
    // code made void, by its third wrong try or after it, is a conflict (ask for a new one).
    let err = e.confirm_code(token, &secret(wrong)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "sms_code: the code is wrong (tries left: 2)"
    );
    assert!(
        matches!(
            err,
            RaError::Invalid {
                field: "sms_code",
                ..
            }
        ),
        "{err:?}"
    );
    let err = e.confirm_code(token, &secret(wrong)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "sms_code: the code is wrong (tries left: 1)"
    );
    let err = e.confirm_code(token, &secret(wrong)).unwrap_err();
    assert!(err.to_string().contains("void"), "{err}");
    assert_code_void(&err);
    let err = e.confirm_code(token, &secret(&code)).unwrap_err();
    assert!(err.to_string().contains("ask for a new one"), "{err}");
    assert_code_void(&err);
    // The session itself is alive all along.
    e.session(token).unwrap();

    // A new code; it expires after ten minutes.
    e.resend_code(token).unwrap();
    outbox.deliver_due(10).unwrap();
    let code = last_code(&sent);
    f.clock
        .advance(Duration::from_secs(SMS_CODE_SECONDS as u64 + 1));
    let err = e.confirm_code(token, &secret(&code)).unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");
    assert_code_void(&err);
    e.resend_code(token).unwrap();
    outbox.deliver_due(10).unwrap();
    // Five codes in all (the form's and four more): then refused, by the form too, and
    // nothing changes.
    e.resend_code(token).unwrap();
    e.resend_code(token).unwrap();
    let err = e.resend_code(token).unwrap_err();
    assert!(
        err.to_string().contains("5 codes were sent already"),
        "{err}"
    );
    let err = e.submit_form(token, form()).unwrap_err();
    assert!(
        err.to_string().contains("5 codes were sent already"),
        "{err}"
    );
    assert_eq!(stage(&f).sms_codes_sent, MAX_CODES);
    outbox.deliver_due(10).unwrap();
    e.confirm_code(token, &secret(&last_code(&sent))).unwrap();
    assert_eq!(stage(&f).stage, EnrollmentStage::Confirmed);
    // The form is final once confirmed.
    let err = e.submit_form(token, form()).unwrap_err();
    assert!(matches!(err, RaError::Conflict { .. }), "{err}");
    assert_eq!(f.store.verify_audit().unwrap().first_break, None);
}

#[test]
fn e_onay_needs_a_recorded_consent() {
    let f = fixture();
    let (e, token) = confirmed(&f);
    let err = e.approve(&token, Approval::EOnay).unwrap_err();
    assert!(err.to_string().contains("prior e-Onay consent"), "{err}");
    let now = f.clock.now_unix();
    let consent = e
        .record_consent(
            &tckn(),
            "EDV-2026-000123",
            b"consent pdf".to_vec(),
            now.plus_secs(-86_400),
            &Principal::HostOperator,
        )
        .unwrap();
    assert_eq!(consent.evidence_sha256, sha256_hex(b"consent pdf"));
    let out = e.approve(&token, Approval::EOnay).unwrap();
    assert_eq!(
        out,
        ApprovalOutcome::Approved {
            produce_after: None
        }
    );
    let rec = stage(&f);
    assert_eq!(
        (rec.stage, rec.approval_method),
        (EnrollmentStage::Approved, Some(ApprovalMethod::EOnay))
    );
    let view = e.view(&rec.pre_application).unwrap().unwrap();
    let text = e.approval_text(&view).unwrap();
    assert_eq!(
        rec.approval_text_sha256.unwrap(),
        sha256_hex(text.as_bytes())
    );
    assert!(
        text.contains("Çağrı") && text.contains("İSTEMİYORUM"),
        "{text}"
    );
    // Approved once.
    assert!(e.approve(&token, Approval::EOnay).is_err());
    let due = f.store.enrollments_due(now, 10).unwrap();
    assert_eq!(due.len(), 1);
    // The approval record names the consent it relied on and the text approved.
    let record = e.approval_record(&rec.pre_application).unwrap().unwrap();
    assert_eq!(record.method, ApprovalMethod::EOnay);
    assert_eq!(
        record.approval_text_sha256,
        Some(Sha256Digest::of(text.as_bytes()))
    );
    assert_eq!(record.approved_at, Some(now));
    assert_eq!(
        record.consent,
        Some(ConsentReference {
            reference: "EDV-2026-000123".into(),
            evidence_sha256: Sha256Digest::of(b"consent pdf"),
            given_at: now.plus_secs(-86_400),
        })
    );
    let evidence = f
        .store
        .approval_evidence(&rec.pre_application)
        .unwrap()
        .unwrap();
    assert_eq!(record.evidence_sha256, Some(Sha256Digest::of(&evidence)));
    assert_eq!(record.signer_serial, None);
}

#[test]
fn a_wet_signature_waits_for_the_operator() {
    let f = fixture();
    let (e, token) = confirmed(&f);
    let ApprovalOutcome::AwaitingWet { form_pdf } = e.approve(&token, Approval::Wet).unwrap()
    else {
        panic!("the form to print was expected");
    };
    assert!(form_pdf.starts_with(b"%PDF-"));
    let id = stage(&f).pre_application;
    assert_eq!(stage(&f).stage, EnrollmentStage::AwaitingWet);
    // The form can be fetched again while it is awaited: the same text, the same hash, so
    // the same PDF byte for byte.
    let again = e.wet_form(&token).unwrap();
    assert!(again.starts_with(b"%PDF-"));
    assert_eq!(
        Sha256Digest::of(&again),
        Sha256Digest::of(&form_pdf),
        "the form printed again differs from the first"
    );
    let record = e.approval_record(&id).unwrap().unwrap();
    assert_eq!(
        (record.method, record.approved_at, record.evidence_sha256),
        (ApprovalMethod::Wet, None, None)
    );
    assert!(record.approval_text_sha256.is_some());
    let now = f.clock.now_unix();
    assert!(f.store.enrollments_due(now, 10).unwrap().is_empty());
    let err = e
        .receive_wet(&id, vec![], &Principal::HostOperator)
        .unwrap_err();
    assert!(err.to_string().starts_with("scan"), "{err}");
    assert_eq!(
        e.receive_wet(&id, b"scan".to_vec(), &Principal::HostOperator)
            .unwrap(),
        None
    );
    assert_eq!(stage(&f).stage, EnrollmentStage::Approved);
    let record = e.approval_record(&id).unwrap().unwrap();
    assert_eq!(record.evidence_sha256, Some(Sha256Digest::of(b"scan")));
    assert!(record.approved_at.is_some());
    // Approved: the printed form is no longer for this application (the stage rule says so).
    let err = e.wet_form(&token).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("stage: application {id} is approved; the printed form is only for an application awaiting its wet signature")
    );
    let err = e
        .receive_wet(&id, b"scan".to_vec(), &Principal::HostOperator)
        .unwrap_err();
    assert!(matches!(err, RaError::Conflict { .. }), "{err}");
}

#[test]
fn a_signature_must_come_from_the_persons_own_nesca_nes() {
    let f = fixture();
    let (e, token) = confirmed(&f);
    let err = e
        .approve(&token, Approval::Signature(b"not a CMS".to_vec()))
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("signature: not a valid signature"),
        "{err}"
    );
    assert_eq!(stage(&f).stage, EnrollmentStage::Confirmed);
}

/// Approves PERSON's confirmed application as the store takes it, with `evidence` kept: what
/// the approval record reads back does not depend on the approval's checks.
fn approved_with(f: &Fixture, e: &Enrollments, method: ApprovalMethod, evidence: &[u8]) -> String {
    let id = stage(f).pre_application;
    let text = e.approval_text(&e.view(&id).unwrap().unwrap()).unwrap();
    f.store
        .enrollment_write(EnrollmentWrite::Approve {
            id: id.clone(),
            from: EnrollmentStage::Confirmed,
            expect_printed_sha256: None,
            method,
            text_sha256: sha256_hex(text.as_bytes()),
            evidence: evidence.to_vec(),
            produce_after: None,
            actor: applicant(&id),
            at: f.clock.now_unix(),
        })
        .unwrap();
    id
}

/// The signer's serial is read from the kept CMS, whatever the application's text is now,
/// and not from a signature verified again.
#[test]
fn the_signer_serial_is_the_kept_cms_signers() {
    use approval::tests::{unsigned_cms, Sid};
    let f = fixture();
    let nes = crate::testkit::issue_nes_for_days(&f, Some(365));
    let (e, _) = confirmed(&f);
    let cms = unsigned_cms(&nes.cert_der, &[&nes.cert_der], Sid::KeyId);
    let id = approved_with(&f, &e, ApprovalMethod::Signature, &cms);
    let record = e.approval_record(&id).unwrap().unwrap();
    assert_eq!(
        (record.method, record.signer_serial, record.consent),
        (ApprovalMethod::Signature, Some(nes.serial), None)
    );
    assert_eq!(record.evidence_sha256, Some(Sha256Digest::of(&cms)));
}

/// Kept evidence that does not read is an error naming the record's field, never a `null`.
#[test]
fn evidence_that_does_not_read_is_an_error_naming_the_field() {
    for (method, field) in [
        (ApprovalMethod::Signature, "signer_serial"),
        (ApprovalMethod::EOnay, "consent"),
    ] {
        let f = fixture();
        let (e, _) = confirmed(&f);
        let id = approved_with(&f, &e, method, b"not what was kept");
        let err = e.approval_record(&id).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "store: approval record: application {id}: {field}: "
            )),
            "{err}"
        );
    }
    // An e-Onay record missing a field names it.
    let f = fixture();
    let (e, _) = confirmed(&f);
    let id = approved_with(
        &f,
        &e,
        ApprovalMethod::EOnay,
        br#"{"method":"e-onay","consent_reference":"EDV-1"}"#,
    );
    let err = e.approval_record(&id).unwrap_err().to_string();
    assert!(
        err.contains(
            "consent: the e-Onay record kept does not read: missing field `approval_text_sha256`"
        ),
        "{err}"
    );
}

#[test]
fn a_renewal_is_held_until_two_months_before_the_expiry() {
    let f = fixture();
    // The person holds a certificate valid for a year.
    let current = crate::testkit::issue_nes_for_days(&f, Some(365));
    let not_after = f
        .store
        .get(None, &current.serial)
        .unwrap()
        .unwrap()
        .not_after;
    let (e, token) = confirmed(&f);
    record_consent(&e);
    let ApprovalOutcome::Approved {
        produce_after: Some(start),
    } = e.approve(&token, Approval::EOnay).unwrap()
    else {
        panic!("a renewal is held");
    };
    assert_eq!(start, renewal_window_start(not_after));
    let held = not_after.secs_since(start);
    assert!((59 * 86_400..=63 * 86_400).contains(&held), "{held}");
    assert!(f
        .store
        .enrollments_due(start.plus_secs(-1), 10)
        .unwrap()
        .is_empty());
    assert_eq!(f.store.enrollments_due(start, 10).unwrap().len(), 1);
}

#[test]
fn renewal_windows_and_billing_months_follow_turkish_dates() {
    let at = |s: &str| {
        UnixTime::from_secs(
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .unwrap()
                .unix_timestamp(),
        )
    };
    // 31 December in Turkey → from 31 October, 00:00 Turkey's time.
    assert_eq!(
        renewal_window_start(at("2027-12-31T10:00:00+03:00")),
        at("2027-10-31T00:00:00+03:00")
    );
    // 30 April → 28 February (2027 is not a leap year); 29 February in 2028.
    assert_eq!(
        renewal_window_start(at("2027-04-30T12:00:00Z")),
        at("2027-02-28T00:00:00+03:00")
    );
    assert_eq!(
        renewal_window_start(at("2028-04-30T12:00:00Z")),
        at("2028-02-29T00:00:00+03:00")
    );
    // 15 February → 15 December of the year before; 22:30 UTC is already the next day in Turkey.
    assert_eq!(
        renewal_window_start(at("2027-02-14T22:30:00Z")),
        at("2026-12-15T00:00:00+03:00")
    );
    assert_eq!(billing_month(at("2026-11-30T21:30:00Z")), "2026-12");
    assert_eq!(billing_month(at("2026-11-30T20:59:59Z")), "2026-11");
}

/// Production's store side: the certificate, the application's outcome, the enrollment
/// produced, the pre-application closed and the invoice line are one transaction; an
/// enrollment that is not approved gets nothing (the signed certificate's serial is failed).
#[test]
fn production_is_one_transaction_with_its_invoice_line() {
    use ca_core::store::{
        ApplicationIssued, CertStatus, FinishedApplication, InvoicePayer, ProducedEnrollment,
    };
    let f = fixture();
    let (e, token) = confirmed(&f);
    let id = e.session(&token).unwrap().pre.id;
    let produce = |channel_ref: &str| {
        f.store
            .begin_application(
                &ca_core::ChannelName::parse("batch-import").unwrap(),
                channel_ref,
                &ca_core::Principal::HostOperator,
                ca_core::UnixTime::EPOCH,
            )
            .unwrap();
        let produced = ProducedEnrollment {
            pre_application: id.clone(),
            from: EnrollmentStage::Approved,
            institution: ca_core::institution::InstitutionId::parse("ankara-bb").unwrap(),
            payer: InvoicePayer {
                kind: ca_core::institution::Payer::Institution,
                name: "Ankara Büyükşehir Belediyesi".into(),
                id: "0680049583".into(),
            },
            holder_tckn: Tckn::parse(PERSON).unwrap(),
            holder_name: "Çağrı ÖZTÜRK".into(),
            item: "NES 730 gün".into(),
            month: billing_month(f.clock.now_unix()),
            attempt: 0,
        };
        f.engine.issue_nes_then(
            &f.ca,
            &f.nes,
            nes_application(None, false),
            &ca_core::Principal::System(ca_core::SystemTask::Production),
            &|issued| {
                Ok(Some(FinishedApplication {
                    channel: ca_core::ChannelName::parse("batch-import").unwrap(),
                    channel_ref: channel_ref.into(),
                    issued: ApplicationIssued::plain(issued.serial),
                    production: Some(produced.clone()),
                }))
            },
        )
    };
    // Not approved (the stage the production says it saw): a conflict, nothing produced, the
    // serial on record as failed.
    let err = produce(&format!("{id}.0")).unwrap_err();
    assert!(
        err.to_string()
            .contains("is confirmed; it was approved when this step began"),
        "{err}"
    );
    let all = f.store.list(None).unwrap();
    let nes: Vec<CertStatus> = all
        .iter()
        .filter(|r| r.profile == ca_core::profile::ProfileName::Nes)
        .map(|r| r.status)
        .collect();
    assert_eq!(
        nes,
        vec![CertStatus::Failed],
        "no NES issued, its serial failed"
    );
    assert_eq!(stage(&f).stage, EnrollmentStage::Confirmed);

    record_consent(&e);
    e.approve(&token, Approval::EOnay).unwrap();
    let issued = produce(&format!("{id}.1")).unwrap();
    let rec = stage_of(&f, &id);
    assert_eq!(
        (rec.stage, rec.serial),
        (EnrollmentStage::Produced, Some(issued.serial))
    );
    assert_eq!(
        f.store.pre_application(&id).unwrap().unwrap().status,
        ca_core::store::PreApplicationStatus::Closed
    );
    assert!(f
        .store
        .open_pre_application(&Tckn::parse(PERSON).unwrap())
        .unwrap()
        .is_none());
    let month = billing_month(f.clock.now_unix());
    let lines = f.store.invoice_lines("ankara-bb", &month).unwrap();
    assert_eq!(lines.len(), 1);
    assert_eq!(
        (
            lines[0].serial,
            lines[0].produced.payer.id.as_str(),
            lines[0].produced.item.as_str()
        ),
        (issued.serial, "0680049583", "NES 730 gün")
    );
    assert!(f
        .store
        .invoice_lines("ankara-bb", "2001-01")
        .unwrap()
        .is_empty());
    // The holder chose "do not publish": the public lookup does not show it.
    let lookup = lookup::CertificateLookup::new(f.store.clone());
    assert_eq!(lookup.by_serial(&issued.serial).unwrap(), None);
    assert!(lookup
        .by_holder(&tckn())
        .unwrap()
        .iter()
        .all(|c| c.serial != issued.serial));
    assert_eq!(f.store.verify_audit().unwrap().first_break, None);
}

/// Publication is opt-in: a NES issued without an enrollment that asked its holder (here by
/// an operator) is a candidate the lookup does not show, by serial or by holder. (A produced
/// enrollment whose holder agreed is shown: e2e `enrollment::invited_people_…`.)
#[test]
fn the_public_lookup_shows_nothing_its_holder_did_not_agree_to() {
    let f = fixture();
    let issued = f
        .engine
        .issue_nes(
            &f.ca,
            &f.nes,
            nes_application(None, false),
            &ca_core::Principal::HostOperator,
        )
        .unwrap();
    let candidates = f
        .store
        .lookup_candidates(ca_core::store::LookupKey::Serial(&issued.serial))
        .unwrap();
    assert_eq!(
        candidates
            .iter()
            .map(|c| (c.serial, c.status, c.holder_agreed))
            .collect::<Vec<_>>(),
        [(issued.serial, ca_core::store::CertStatus::Active, false)]
    );
    let lookup = lookup::CertificateLookup::new(f.store.clone());
    assert_eq!(lookup.by_serial(&issued.serial).unwrap(), None);
    assert!(lookup.by_holder(&tckn()).unwrap().is_empty());
    assert_eq!(lookup.by_serial(&Serial::random()).unwrap(), None);
}

/// The one answer of a refused sign-in: wrong, unknown and locked alike.
fn assert_refused(err: &RaError) {
    assert!(
        matches!(err, RaError::Unauthenticated { field: "sign_in", rule } if rule == SIGN_IN_REFUSED),
        "{err}"
    );
}

/// Two attempts counted at once get different counts: the one past the limit is refused
/// unchecked and locks too, so no attempt escapes the lock (here the other one's count is
/// written straight to the store).
#[test]
fn a_failure_counted_past_the_limit_locks_too() {
    let f = fixture();
    let (_, _, password) = invited(&f);
    let e = Enrollments::new(f.store.clone(), f.clock.clone());
    for _ in 1..MAX_SIGN_IN_FAILURES {
        e.sign_in(&tckn(), &secret("wrong-password"), &here())
            .unwrap_err();
    }
    let id = stage(&f).pre_application;
    // A concurrent failure took the count to the limit without locking (yet).
    let counted = f
        .store
        .enrollment_write(EnrollmentWrite::SignInAttempt {
            id: id.clone(),
            source: here(),
            actor: applicant(&id),
            at: f.clock.now_unix(),
        })
        .unwrap();
    assert_eq!(
        counted,
        EnrollmentOutcome::AttemptCounted {
            count: MAX_SIGN_IN_FAILURES,
            locked_until: None,
            person_count: MAX_SIGN_IN_FAILURES,
        }
    );
    let err = e
        .sign_in(&tckn(), &secret("wrong-password"), &here())
        .unwrap_err();
    assert_refused(&err);
    let err = e.sign_in(&tckn(), &secret(&password), &here()).unwrap_err();
    assert_refused(&err);
    let rec = stage(&f);
    assert_eq!(
        rec.locked_until,
        Some(f.clock.now_unix().plus_secs(LOCK_SECONDS))
    );
}

/// The quota is decided on the count the service read; a form filled after the last code
/// is refused before anything is written.
#[test]
fn the_code_quota_is_checked_before_anything_is_written() {
    let f = fixture();
    let (_, _, password) = invited(&f);
    let e = Enrollments::new(f.store.clone(), f.clock.clone());
    let token = e
        .sign_in(&tckn(), &secret(&password), &here())
        .unwrap()
        .token;
    let token = token.expose_secret();
    e.submit_form(token, form()).unwrap();
    for _ in 1..MAX_CODES {
        e.resend_code(token).unwrap();
    }
    let before = (stage(&f), f.store.outbox().unwrap().len());
    for err in [
        e.resend_code(token).unwrap_err(),
        e.submit_form(token, form()).unwrap_err(),
    ] {
        assert!(
            matches!(
                err,
                RaError::Invalid {
                    field: "sms_code",
                    ..
                }
            ),
            "{err}"
        );
    }
    assert_eq!((stage(&f), f.store.outbox().unwrap().len()), before);
}

/// An operator records PERSON's e-Onay consent.
fn record_consent(e: &Enrollments) {
    e.record_consent(
        &tckn(),
        "EDV-1",
        b"c".to_vec(),
        UnixTime::EPOCH,
        &Principal::HostOperator,
    )
    .unwrap();
}

fn stage_of(f: &Fixture, id: &str) -> EnrollmentRecord {
    f.store.enrollment(id).unwrap().unwrap()
}

/// A correct password that arrives after the last allowed failure was counted, but before
/// the lock is written (a concurrent request, or a crash between the two writes), is refused
/// as locked and writes the lock; the lock then expires as any other does.
#[test]
fn a_correct_password_racing_the_lock_is_refused() {
    let f = fixture();
    let (_, _, password) = invited(&f);
    let e = Enrollments::new(f.store.clone(), f.clock.clone());
    e.sign_in(&tckn(), &secret(&password), &here()).unwrap();
    let id = stage(&f).pre_application;
    for _ in 0..MAX_SIGN_IN_FAILURES {
        f.store
            .enrollment_write(EnrollmentWrite::SignInAttempt {
                id: id.clone(),
                source: here(),
                actor: applicant(&id),
                at: f.clock.now_unix(),
            })
            .unwrap();
    }
    assert_eq!(stage(&f).locked_until, None, "no lock written yet");
    let err = e.sign_in(&tckn(), &secret(&password), &here()).unwrap_err();
    assert_refused(&err);
    let rec = stage(&f);
    let until = f.clock.now_unix().plus_secs(LOCK_SECONDS);
    assert_eq!(
        (rec.sign_in_attempts, rec.locked_until),
        (MAX_SIGN_IN_FAILURES + 1, Some(until)),
        "the lock is the source's; the count from every source goes on to the next sign-in"
    );
    f.clock
        .advance(Duration::from_secs(LOCK_SECONDS as u64 + 1));
    e.sign_in(&tckn(), &secret(&password), &here()).unwrap();
}

/// PERSON signed in and sent the form; the SMS code went out. Returns the service, the
/// session token and the code.
fn awaiting_code(f: &Fixture) -> (Enrollments, String, String) {
    let (outbox, sent, password) = invited(f);
    let e = Enrollments::new(f.store.clone(), f.clock.clone());
    let grant = e.sign_in(&tckn(), &secret(&password), &here()).unwrap();
    let token = grant.token.expose_secret().to_owned();
    e.submit_form(&token, form()).unwrap();
    outbox.deliver_due(10).unwrap();
    (e, token, last_code(&sent))
}

/// The right code, sent after the last allowed wrong try was counted but before the code
/// was voided, is refused: the code is void from its last counted try on.
#[test]
fn the_right_code_after_the_last_wrong_try_is_refused() {
    let f = fixture();
    let (e, token, code) = awaiting_code(&f);
    let token = token.as_str();
    let id = stage(&f).pre_application;
    for _ in 0..MAX_CODE_FAILURES {
        f.store
            .enrollment_write(EnrollmentWrite::CodeAttempt {
                id: id.clone(),
                from: EnrollmentStage::Form,
                actor: applicant(&id),
                at: f.clock.now_unix(),
            })
            .unwrap();
    }
    assert!(
        stage(&f).sms_code_hash.is_some(),
        "the code is not voided yet"
    );
    let err = e.confirm_code(token, &secret(&code)).unwrap_err();
    assert!(err.to_string().contains("ask for a new one"), "{err}");
    assert_eq!(stage(&f).stage, EnrollmentStage::Form);
}

/// Runs `attempt` on `n` threads at once; returns the refusals and the argon2 checks made.
fn in_parallel(n: usize, attempt: impl Fn() -> RaError + Sync) -> (Vec<RaError>, usize) {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|_| s.spawn(|| (attempt(), crate::outbox::checks::made())))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).fold(
            (Vec::new(), 0),
            |(mut all, checks), (a, c)| {
                all.push(a);
                (all, checks + c)
            },
        )
    })
}

/// Twelve wrong passwords at once: each attempt is counted before its password is checked,
/// so at most five passwords are checked (argon2), at most four answered "wrong" (the fifth
/// locks) and the others refused as locked; the right password after them is locked out.
#[test]
fn parallel_wrong_passwords_are_counted_before_they_are_checked() {
    let f = fixture();
    let (_, _, password) = invited(&f);
    let e = Enrollments::new(f.store.clone(), f.clock.clone());
    let (answers, checks) = in_parallel(12, || {
        e.sign_in(&tckn(), &secret("wrong-password"), &here())
            .unwrap_err()
    });
    assert!(
        checks <= MAX_SIGN_IN_FAILURES as usize,
        "{checks} passwords checked"
    );
    answers.iter().for_each(assert_refused);
    assert!(stage(&f).locked_until.is_some(), "locked");
    let err = e.sign_in(&tckn(), &secret(&password), &here()).unwrap_err();
    assert_refused(&err);
}

/// A guesser's five wrong passwords lock their own address out of PERSON's sign-in, not
/// PERSON: the right password from PERSON's address signs in while the guesser's lock lasts,
/// and the guesser's right password (had they learnt it) stays refused until it ends.
#[test]
fn a_lock_others_caused_lets_the_right_password_through() {
    let f = fixture();
    let (_, _, password) = invited(&f);
    let e = Enrollments::new(f.store.clone(), f.clock.clone());
    let guesser = SignInSource::address("2001:db8:1:2::66".parse().unwrap());
    // Another address in the guesser's /64 is the guesser too.
    let next_door = SignInSource::address("2001:db8:1:2:ffff::1".parse().unwrap());
    for _ in 0..MAX_SIGN_IN_FAILURES {
        assert_refused(
            &e.sign_in(&tckn(), &secret("wrong-password"), &guesser)
                .unwrap_err(),
        );
    }
    assert!(
        stage(&f).locked_until.is_some(),
        "the guesser's address is locked"
    );
    for source in [&guesser, &next_door] {
        assert_refused(&e.sign_in(&tckn(), &secret(&password), source).unwrap_err());
    }
    let grant = e.sign_in(&tckn(), &secret(&password), &here()).unwrap();
    assert_eq!(
        e.session(grant.token.expose_secret())
            .unwrap()
            .pre
            .tckn
            .as_str(),
        PERSON
    );
    // PERSON's sign-in does not lift the guesser's lock.
    assert_refused(
        &e.sign_in(&tckn(), &secret(&password), &guesser)
            .unwrap_err(),
    );
    // A portal that names no address is one source of its own.
    e.sign_in(&tckn(), &secret(&password), &SignInSource::unnamed())
        .unwrap();
}

/// A guesser with many addresses: once 25 attempts came from all of them since PERSON's last
/// sign-in, each address gets one try (a wrong one locks it at once), and PERSON, from an
/// address of their own — one where they mistyped before — still signs in with the right
/// password.
#[test]
fn many_addresses_get_one_try_each_and_the_person_still_signs_in() {
    let f = fixture();
    let (_, _, password) = invited(&f);
    let e = Enrollments::new(f.store.clone(), f.clock.clone());
    let address = |i: u8| SignInSource::address(std::net::Ipv4Addr::new(198, 51, 100, i).into());
    // PERSON mistypes once at home.
    assert_refused(&e.sign_in(&tckn(), &secret("typo"), &here()).unwrap_err());
    let id = f.store.open_pre_application(&tckn()).unwrap().unwrap();
    // Five addresses, five attempts each (counted as a guesser's parallel requests would be).
    for i in 0..5 {
        for _ in 0..MAX_SIGN_IN_FAILURES {
            f.store
                .enrollment_write(EnrollmentWrite::SignInAttempt {
                    id: id.clone(),
                    source: address(i),
                    actor: applicant(&id),
                    at: f.clock.now_unix(),
                })
                .unwrap();
        }
    }
    assert_eq!(stage(&f).sign_in_attempts, ONE_TRY_AFTER_FAILURES + 1);
    let checks = crate::outbox::checks::made();
    assert_refused(
        &e.sign_in(&tckn(), &secret("wrong-password"), &address(9))
            .unwrap_err(),
    );
    assert_eq!(
        crate::outbox::checks::made() - checks,
        1,
        "its one try was checked"
    );
    // Locked at once: the same address's next try is refused whatever it sends.
    assert_refused(
        &e.sign_in(&tckn(), &secret(&password), &address(9))
            .unwrap_err(),
    );
    // An address that used its five tries gets none more.
    assert_refused(
        &e.sign_in(&tckn(), &secret(&password), &address(0))
            .unwrap_err(),
    );
    // Home had a typo before the guesser came: its next try is still checked.
    e.sign_in(&tckn(), &secret(&password), &here()).unwrap();
    // The sign-in starts the count from every source again.
    assert_eq!(stage(&f).sign_in_attempts, 0);
}

/// An address past its budget in the window, whoever it named — a known person, a number
/// nobody holds — gets one try per person: its answers are the usual ones (no refusal tells
/// it apart), the right password from it still signs in, and a wrong one locks it out of that
/// person at once; the window's end gives it its tries back.
#[test]
fn an_address_past_its_budget_gets_one_try_per_person() {
    let f = fixture();
    let (_, _, password) = invited(&f);
    let e = Enrollments::new(f.store.clone(), f.clock.clone());
    let sprayer = SignInSource::address("203.0.113.9".parse().unwrap());
    let nobody = Tckn::parse("17291716060").unwrap();
    let wrong = e.sign_in(&nobody, &secret("x"), &sprayer).unwrap_err();
    for _ in 1..SOURCE_ATTEMPTS_PER_WINDOW {
        let again = e.sign_in(&nobody, &secret("x"), &sprayer).unwrap_err();
        assert_eq!(again.to_string(), wrong.to_string());
    }
    // Past the budget: unknown numbers are answered as before; PERSON's right password signs
    // in from it.
    let again = e.sign_in(&nobody, &secret("x"), &sprayer).unwrap_err();
    assert_eq!(again.to_string(), wrong.to_string());
    e.sign_in(&tckn(), &secret(&password), &sprayer).unwrap();
    // A wrong one locks the address out of PERSON at once; another address is not.
    assert_refused(&e.sign_in(&tckn(), &secret("wrong"), &sprayer).unwrap_err());
    assert_refused(
        &e.sign_in(&tckn(), &secret(&password), &sprayer)
            .unwrap_err(),
    );
    e.sign_in(&tckn(), &secret(&password), &here()).unwrap();
    // A portal that names no address is never counted this way.
    for _ in 0..=SOURCE_ATTEMPTS_PER_WINDOW {
        e.sign_in(&nobody, &secret("x"), &SignInSource::unnamed())
            .unwrap_err();
    }
    assert_refused(
        &e.sign_in(&tckn(), &secret("wrong"), &SignInSource::unnamed())
            .unwrap_err(),
    );
    e.sign_in(&tckn(), &secret(&password), &SignInSource::unnamed())
        .unwrap();
}

/// Nine wrong codes at once: at most two are answered with tries left, the code is void
/// after them, and the right code is refused.
#[test]
fn parallel_wrong_codes_void_the_code() {
    let f = fixture();
    let (e, token, code) = awaiting_code(&f);
    let token = token.as_str();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (answers, checks) = in_parallel(9, || e.confirm_code(token, &secret(wrong)).unwrap_err());
    assert!(
        checks <= MAX_CODE_FAILURES as usize,
        "{checks} codes checked"
    );
    let with_tries_left = answers
        .iter()
        .filter(|a| a.to_string().contains("tries left"))
        .count();
    assert!(with_tries_left <= 2, "{answers:?}");
    let err = e.confirm_code(token, &secret(&code)).unwrap_err();
    assert!(err.to_string().contains("ask for a new one"), "{err}");
    assert_eq!(stage(&f).stage, EnrollmentStage::Form);
}
