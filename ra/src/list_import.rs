//! Importing an institution's FRM.01.03 list: only its registered e-İmza officer may submit
//! it, signed (a detached CMS signature over the file, made with the officer's certificate)
//! or marked wet-signed (the scan kept; the rows wait for an operator's confirmation). The
//! rows themselves were read and checked at the edge (`nesca-frm-list`); this decides — may
//! the institution import ([`may_import`]), are the rows invited or held ([`import_status`]),
//! who has an open pre-application already ([`split_already_open`]) — and the store records
//! it in one transaction (refusing, by its unique index, a second open pre-application that
//! appeared meanwhile).

use std::collections::HashMap;
use std::sync::Arc;

use nesca_pkix::cms::{verify_signed_data, Signer};

use crate::error::{RaError, Result};
use ca_core::clock::Clock;
use ca_core::institution::{
    ImportOutcome, InstitutionId, InstitutionRecord, ListImport, ListRow, ListSignature,
};
use ca_core::store::{CertStatus, ImportStatus, ListImportRecord, ListImportWrite, Store};
use ca_core::{Tckn, UnixTime};

/// What the issuer of an officer certificate that nesca did not issue (another ESHS's) says
/// of it: the transport fetches and verifies the issuer's CRL (the registration authority does
/// no I/O of its own); the registration authority decides what follows.
pub trait ForeignOfficerStatus: Send + Sync {
    /// Whether the issuer's current CRL lists `cert_der` at `now`; `Err` with the reason when
    /// no current, verified CRL could be had.
    fn crl_status(
        &self,
        cert_der: &[u8],
        now: UnixTime,
    ) -> std::result::Result<CrlStatus, StatusUnknown>;
}

/// Why an issuer's CRL gave no answer.
#[derive(Debug)]
pub struct StatusUnknown {
    /// True when asking again cannot help (the certificate names no `http:` URL, its issuer or
    /// CRL is of a kind nesca does not read or does not verify): the officer needs another
    /// certificate. False when it may (no answer in time, a CRL out of date).
    pub lasting: bool,
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// What an issuer's CRL says of a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrlStatus {
    NotRevoked,
    Revoked,
}

/// The most wet-signed lists of one institution awaiting confirmation at once.
pub const MAX_HELD_LISTS: u32 = 20;

/// The largest wet-signature scan kept with a list.
const MAX_SCAN_BYTES: usize = 20 * 1024 * 1024;

/// Checks that `file` is signed by the institution's officer (see the module doc).
pub fn check_officer_signature(
    institution: &InstitutionRecord,
    file: &[u8],
    signature: &ListSignature,
    now: UnixTime,
) -> Result<()> {
    match signature {
        ListSignature::Cms(cms) => {
            verify_signed_data(cms, Some(file), Signer::Exactly(&institution.officer_cert_der))
                .map_err(|e| {
                    RaError::invalid(
                        "signature",
                        format!(
                            "not the officer's signature over this file ({e}); only the e-İmza officer registered for \"{}\" may submit its lists",
                            institution.id
                        ),
                    )
                })?;
            let (not_before, not_after) =
                nesca_pkix::subject::validity(&institution.officer_cert_der)
                    .map_err(|e| RaError::invalid("signature", e.to_string()))?;
            if now.secs() < not_before || now.secs() > not_after {
                return Err(RaError::invalid(
                    "signature",
                    "the officer's certificate is not valid now",
                ));
            }
            Ok(())
        }
        ListSignature::Wet(scan) => {
            if scan.is_empty() || scan.len() > MAX_SCAN_BYTES {
                return Err(RaError::invalid(
                    "wet-scan",
                    format!("the scan of the signed list must be 1 byte to {MAX_SCAN_BYTES} bytes"),
                ));
            }
            Ok(())
        }
    }
}

/// How a list's file name says it is read: its extension, in lower case.
fn list_format(file_name: &str) -> Option<String> {
    std::path::Path::new(file_name)
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
}

/// Only an active institution imports lists.
pub fn may_import(institution: &InstitutionRecord) -> Result<()> {
    if institution.active {
        return Ok(());
    }
    Err(RaError::invalid(
        "institution",
        format!("institution \"{}\" is deactivated", institution.id),
    ))
}

/// A CMS-signed list is accepted and its people invited at once; a wet-signed one awaits an
/// operator's confirmation of the paper, its rows held.
pub fn import_status(signature: &ListSignature) -> ImportStatus {
    match signature {
        ListSignature::Cms(_) => ImportStatus::Accepted,
        ListSignature::Wet(_) => ImportStatus::AwaitingConfirmation,
    }
}

/// Splits `rows` into those to create and those whose person has an open pre-application in
/// `open` (row, its id): a person has one open application, whichever institution listed
/// them.
pub fn split_already_open(
    rows: Vec<ListRow>,
    open: &HashMap<Tckn, String>,
) -> (Vec<ListRow>, Vec<(u32, String)>) {
    let mut already_open = Vec::new();
    let rows = rows
        .into_iter()
        .filter(|r| match open.get(&r.tckn) {
            Some(id) => {
                already_open.push((r.row, id.clone()));
                false
            }
            None => true,
        })
        .collect();
    (rows, already_open)
}

/// Imports lists for the institutions in the store.
pub struct ListImports {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    foreign: Arc<dyn ForeignOfficerStatus>,
}

impl ListImports {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        foreign: Arc<dyn ForeignOfficerStatus>,
    ) -> ListImports {
        ListImports {
            store,
            clock,
            foreign,
        }
    }

    /// Checks that the institution may import and the officer's signature over `file`, then
    /// imports `import`'s rows (which must have been read from `file`) in one transaction. The
    /// same file again answers its first outcome.
    pub fn import(&self, file: &[u8], mut import: ListImport) -> Result<ImportOutcome> {
        let institution = self
            .store
            .institution(&import.institution)?
            .ok_or_else(|| {
                RaError::invalid(
                    "institution",
                    format!("no registered institution \"{}\"", import.institution),
                )
            })?;
        may_import(&institution)?;
        let now = self.clock.now_unix();
        check_officer_signature(&institution, file, &import.signature, now)?;
        // The digest that makes a re-import recognisable is the file's, whatever the caller said.
        import.file_sha256 = {
            use sha2::Digest as _;
            hex::encode(sha2::Sha256::digest(file))
        };
        import.at = now;
        if let Some(seen) = self
            .store
            .list_import(&import.institution, &import.file_sha256)?
        {
            return self.import_again(seen, import, &institution);
        }
        // After the replay check: a file imported before answers its outcome without another
        // status check (for another ESHS's officer, without fetching its CRL again).
        if matches!(import.signature, ListSignature::Cms(_)) {
            self.check_officer_status(&institution, now)?;
        }
        let status = import_status(&import.signature);
        if status == ImportStatus::AwaitingConfirmation {
            self.check_held_room(&import.institution)?;
        }
        // A pre-application closed between this read and the write makes the store refuse
        // with `Conflict` and write nothing; the same file sent again is decided afresh.
        let write = self.decide_rows(import, status)?;
        Ok(self.store.import_list(write)?)
    }

    /// Anyone with the channel's certificate can upload a wet-signed list with any scan: at
    /// most [`MAX_HELD_LISTS`] of an institution's lists wait at once, so that they cannot
    /// fill the store (an operator confirms or rejects them, or they expire).
    fn check_held_room(&self, institution: &InstitutionId) -> Result<()> {
        let held = self.store.held_list_count(institution)?;
        if held >= MAX_HELD_LISTS {
            return Err(RaError::invalid(
                "wet-scan",
                format!(
                    "\"{institution}\" has {held} wet-signed lists awaiting confirmation, the most there may be; an operator confirms or rejects them first (nesca confirm-list / reject-list)"
                ),
            ));
        }
        Ok(())
    }

    /// A revoked or suspended officer signs nothing. When nesca issued the officer's
    /// certificate, its status in the store must be active; when another ESHS did, its issuer's
    /// current CRL must not list it — and a CRL that cannot be had refuses the list too (for
    /// now when asking again may help, for good when it cannot): no answer is not "not
    /// revoked".
    fn check_officer_status(&self, institution: &InstitutionRecord, now: UnixTime) -> Result<()> {
        let cert = &institution.officer_cert_der;
        let serial = crate::certificate_serial(cert);
        let ours = serial
            .map(|s| self.store.get(None, &s))
            .transpose()?
            .flatten()
            // The same serial under another CA is another certificate.
            .filter(|record| record.cert_der.as_deref() == Some(cert.as_slice()));
        let revoked = |how: String| {
            RaError::invalid(
                "signature",
                format!(
                    "the officer's certificate {how}: a new officer must be registered for \"{}\"",
                    institution.id
                ),
            )
        };
        match ours {
            Some(record) if record.status == CertStatus::Active => Ok(()),
            Some(record) => Err(revoked(format!("{} is {}", record.serial, record.status))),
            None => match self.foreign.crl_status(cert, now) {
                Ok(CrlStatus::NotRevoked) => Ok(()),
                Ok(CrlStatus::Revoked) => Err(revoked("is revoked (its issuer's CRL)".into())),
                Err(StatusUnknown {
                    lasting: true,
                    source,
                }) => Err(RaError::invalid(
                    "signature",
                    format!(
                        "the officer's certificate status cannot be checked: {source}; register the officer of \"{}\" with a certificate whose issuer publishes a CRL nesca reads",
                        institution.id
                    ),
                )),
                Err(StatusUnknown { source, .. }) => Err(RaError::OfficerStatusUnknown { source }),
            },
        }
    }

    /// The same file imported before. Its first outcome again — unless the file was held
    /// (wet-signed) and now comes with the officer's verified signature: a held list must not
    /// block the signed one, so the signature confirms it. A file whose held list was
    /// rejected or expired is refused with what to do, never answered as that list's replay.
    fn import_again(
        &self,
        seen: ListImportRecord,
        import: ListImport,
        institution: &InstitutionRecord,
    ) -> Result<ImportOutcome> {
        let ListSignature::Cms(cms) = import.signature else {
            return Ok(seen.replayed());
        };
        match seen.status {
            ImportStatus::AwaitingConfirmation => {
                // The signature confirms the held list: the officer must still be one.
                self.check_officer_status(institution, import.at)?;
                // The held rows were read from the file as the wet upload named it (csv or
                // xlsx): the signature confirms them only if the signer's upload names it so.
                if list_format(&seen.file_name) != list_format(&import.file_name) {
                    return Err(RaError::Conflict {
                        field: "file",
                        rule: format!(
                            "this file was held as \"{}\" and comes now as \"{}\": it must be read the same way; export the list again (a new file) and sign that",
                            seen.file_name, import.file_name
                        ),
                    });
                }
                let done = crate::held_lists::HeldLists::new(self.store.clone(), self.clock.clone())
                    .confirm_signed(&import.actor, &import.institution, &import.file_sha256, cms)?;
                tracing::info!(institution = %import.institution, invited = done.invited, already_open = done.already_open, "held list confirmed by the officer's signature");
                let record = self
                    .store
                    .list_import(&import.institution, &import.file_sha256)?
                    .ok_or_else(|| RaError::invalid("file", "the confirmed list vanished"))?;
                Ok(ImportOutcome {
                    replayed: false,
                    ..record.replayed()
                })
            }
            ImportStatus::Rejected | ImportStatus::Expired => Err(RaError::Conflict {
                field: "file",
                rule: format!(
                    "this file was uploaded wet-signed and that list was {}; export the list again (a new file) and sign that",
                    seen.status.as_str()
                ),
            }),
            ImportStatus::Accepted => Ok(seen.replayed()),
        }
    }

    /// The open applications of the people a list of `institution` skipped (`already_open`:
    /// row, the person's open pre-application), as the list's report names them: the id of
    /// an application of this institution (from one of its earlier lists), which its officer
    /// and portal may follow; `None` for another institution's, whose id is not theirs to see
    /// (nor which institution it is). One read of the institution's pre-applications, none
    /// when no row was skipped.
    pub fn name_open(
        &self,
        institution: &InstitutionId,
        already_open: &[(u32, String)],
    ) -> Result<Vec<(u32, Option<String>)>> {
        if already_open.is_empty() {
            return Ok(Vec::new());
        }
        let own: std::collections::HashSet<String> = self
            .store
            .pre_applications(institution)?
            .into_iter()
            .map(|p| p.id)
            .collect();
        Ok(already_open
            .iter()
            .map(|(row, id)| (*row, own.contains(id).then(|| id.clone())))
            .collect())
    }

    /// Splits the list's rows into those to create and those whose person has an open
    /// pre-application, as the store holds them now.
    fn decide_rows(&self, mut import: ListImport, status: ImportStatus) -> Result<ListImportWrite> {
        // A wet-signed list proves nothing until an operator has seen the paper, and any
        // partner can upload one naming any institution: it learns nothing of who has an open
        // application. Every row is held; the confirmation closes the rows of people who are
        // open by then and invites the rest.
        let already_open = if status == ImportStatus::AwaitingConfirmation {
            Vec::new()
        } else {
            let people: Vec<Tckn> = import.rows.iter().map(|r| r.tckn).collect();
            let open: HashMap<Tckn, String> = self
                .store
                .open_pre_applications(&people)?
                .into_iter()
                .collect();
            let (rows, already_open) = split_already_open(std::mem::take(&mut import.rows), &open);
            import.rows = rows;
            already_open
        };
        Ok(ListImportWrite {
            import,
            status,
            already_open,
            held_limit: Some(MAX_HELD_LISTS),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::outbox::{password_matches, Outbox};
    use crate::testkit::Captured;
    use ca_core::institution::{InstitutionId, ListRow};
    use ca_core::store::prelude::*;
    use ca_core::testkit::{demo_institution as institution, fixture, list_row as row};

    fn list(id: &InstitutionId, rows: Vec<ListRow>, signature: ListSignature) -> ListImport {
        ListImport {
            institution: id.clone(),
            file_sha256: String::new(),
            file_name: "liste.xlsx".into(),
            signature,
            rows,
            invalid_rows: 2,
            actor: ca_core::Principal::HostOperator,
            at: UnixTime::EPOCH,
        }
    }

    #[test]
    fn a_list_imports_once_and_each_person_has_one_open_application() {
        let f = fixture();
        let id = institution(&f);
        let imports = crate::testkit::list_imports(&f);
        let rows = vec![
            row(2, "10000000146", "Çağrı"),
            row(3, "10000000078", "İpek"),
        ];
        let scan = ListSignature::Wet(b"%PDF-1.7 scan".to_vec());
        let cms = |rows| list(&id, rows, ListSignature::Cms(b"not a signature".to_vec()));

        // Only the officer's signature opens the door; a wet-signed list waits, held.
        let e = imports.import(b"file-1", cms(rows.clone())).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("signature: not the officer's signature"),
            "{e}"
        );
        let held = imports
            .import(b"file-1", list(&id, rows.clone(), scan.clone()))
            .unwrap();
        assert_eq!(
            (held.replayed, held.status.as_str(), held.created.len()),
            (false, "awaiting_confirmation", 2)
        );
        assert!(
            f.store.outbox().unwrap().is_empty(),
            "nothing is sent for a held list"
        );
        let pre = f.store.pre_applications(&id).unwrap();
        assert_eq!(
            pre.iter()
                .map(|p| (p.row, p.status.as_str(), p.given_name.as_str()))
                .collect::<Vec<_>>(),
            vec![(2, "held", "Çağrı"), (3, "held", "İpek")]
        );

        // The same file again: nothing new, the first result.
        let again = imports
            .import(b"file-1", list(&id, rows.clone(), scan.clone()))
            .unwrap();
        assert!(again.replayed);
        assert_eq!(again.created, held.created);
        // Another held file naming the same person: held rows are not applications, so both
        // lists hold a row for her.
        let other = imports
            .import(
                b"file-2",
                list(
                    &id,
                    vec![
                        row(2, "10000000146", "Çağrı"),
                        row(3, "17291716060", "Şükrü"),
                    ],
                    scan,
                ),
            )
            .unwrap();
        assert_eq!((other.created.len(), other.already_open.len()), (2, 0));
        assert_eq!(f.store.pre_applications(&id).unwrap().len(), 4);
        // Its replay answers the same, the already-open row too.
        let replayed = imports
            .import(
                b"file-2",
                list(&id, vec![], ListSignature::Wet(b"x".to_vec())),
            )
            .unwrap();
        assert!(replayed.replayed);
        assert_eq!(
            (replayed.created, replayed.already_open),
            (other.created.clone(), other.already_open.clone())
        );

        // The operator saw the paper of the first list: its people are invited now.
        let sha = {
            use sha2::Digest as _;
            hex::encode(sha2::Sha256::digest(b"file-1"))
        };
        let lists = crate::held_lists::HeldLists::new(f.store.clone(), f.clock.clone());
        let by = &ca_core::Principal::HostOperator;
        assert_eq!(lists.confirm(by, &id, &sha).unwrap().invited, 2);
        assert_eq!(f.store.outbox().unwrap().len(), 2);
        // Now Çağrı is invited: a list naming her again skips her as already open.
        let third = imports
            .import(
                b"file-3",
                list(
                    &id,
                    vec![row(2, "10000000146", "Çağrı")],
                    ListSignature::Wet(b"x".to_vec()),
                ),
            )
            .unwrap();
        // A wet-signed list learns nothing of who is open: her row is held, and the
        // confirmation closes it (she is open by then) and invites no one.
        assert!(third.already_open.is_empty(), "{third:?}");
        let third_sha = {
            use sha2::Digest as _;
            hex::encode(sha2::Sha256::digest(b"file-3"))
        };
        assert_eq!(lists.confirm(by, &id, &third_sha).unwrap().invited, 0);
        assert_eq!(f.store.outbox().unwrap().len(), 2);
        let e = lists.confirm(by, &id, &sha).unwrap_err();
        assert!(e.to_string().contains("awaits confirmation"), "{e}");
        assert_eq!(f.store.verify_audit().unwrap().first_break, None);

        let unknown = InstitutionId::parse("nobody").unwrap();
        let e = imports
            .import(
                b"f",
                list(&unknown, vec![], ListSignature::Wet(b"x".to_vec())),
            )
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("no registered institution \"nobody\""),
            "{e}"
        );
    }

    #[test]
    fn access_passwords_are_sent_once_hashed_first_and_retried_on_failure() {
        let f = fixture();
        let id = institution(&f);
        // Written as a signed list would be: invited at once, one message each.
        f.store
            .import_list(ListImportWrite {
                import: ListImport {
                    file_sha256: "ab".repeat(32),
                    ..list(
                        &id,
                        vec![
                            row(2, "10000000146", "Çağrı"),
                            row(3, "10000000078", "İpek"),
                        ],
                        ListSignature::Cms(vec![1]),
                    )
                },
                status: ImportStatus::Accepted,
                already_open: vec![],
                held_limit: None,
            })
            .unwrap();
        assert_eq!(f.store.outbox().unwrap().len(), 2);
        let mail = Arc::new(Captured::default());
        let outbox = Outbox::new(
            f.store.clone(),
            f.clock.clone(),
            mail.clone(),
            mail.clone(),
            "https://e-imza.example/basvuru".into(),
        );

        mail.fail(true);
        let r = outbox.deliver_due(10).unwrap();
        assert_eq!((r.sent, r.failed), (0, 2));
        // Not due again before its retry time.
        mail.fail(false);
        assert_eq!(outbox.deliver_due(10).unwrap().sent, 0);
        f.clock.advance(Duration::from_secs(61));
        assert_eq!(outbox.deliver_due(10).unwrap().sent, 2);
        assert_eq!(outbox.deliver_due(10).unwrap().sent, 0, "sent once");
        assert!(f
            .store
            .outbox()
            .unwrap()
            .iter()
            .all(|(m, s)| *s == ca_core::store::OutboxStatus::Sent && m.attempts == 2));

        let sent = mail.emails();
        assert_eq!(sent.len(), 2);
        for pre in f.store.pre_applications(&id).unwrap() {
            let (_, body) = sent.iter().find(|(to, _)| *to == pre.email).unwrap();
            let password = body
                .lines()
                .find_map(|l| l.strip_prefix("Erişim parolası: "))
                .unwrap();
            let hash = pre.password_hash.unwrap();
            assert!(hash.starts_with("$argon2id$"), "{hash}");
            assert!(!hash.contains(password));
            assert!(password_matches(password, &hash));
            assert!(!password_matches("wrong", &hash));
        }
    }

    /// A person skipped as already open is reported once, with the id of their own open
    /// application when it is this institution's, and without any id when another
    /// institution's list invited them.
    #[test]
    fn the_report_names_only_the_institutions_own_open_applications() {
        let f = fixture();
        let ankara = institution(&f);
        let mut other = ca_core::testkit::institution_record();
        other.id = InstitutionId::parse("izmir-bb").unwrap();
        other.tax_no = ca_core::institution::TaxNo::parse("1234567890").unwrap();
        let izmir = other.id.clone();
        f.store
            .add_institution(other, &ca_core::Principal::HostOperator, UnixTime::EPOCH)
            .unwrap();
        let imports = crate::testkit::list_imports(&f);
        let wet = || ListSignature::Wet(b"%PDF scan".to_vec());
        // Çağrı invited through Ankara's list (signed: written as the RA decides it).
        invite_cagri(&f, &ankara, "aa");
        let cagri = f
            .store
            .open_pre_application(&Tckn::parse("10000000146").unwrap())
            .unwrap()
            .unwrap();
        let people = || {
            vec![
                row(2, "10000000078", "İpek"),
                row(3, "10000000146", "Çağrı"),
            ]
        };
        // A signed list of Ankara's naming her would skip her: the report names her own
        // application's id to Ankara, and none to İzmir (Ankara's application is not İzmir's).
        let skipped = vec![(3, cagri.clone())];
        assert_eq!(
            imports.name_open(&ankara, &skipped).unwrap(),
            vec![(3, Some(cagri.clone()))]
        );
        assert_eq!(
            imports.name_open(&izmir, &skipped).unwrap(),
            vec![(3, None)]
        );
        // A wet-signed list, which anyone with the channel's certificate can send naming any
        // institution, learns nothing of who is open: both rows are held.
        for (institution, file) in [(&ankara, &b"ankara-2"[..]), (&izmir, &b"izmir-1"[..])] {
            let held = imports
                .import(file, list(institution, people(), wet()))
                .unwrap();
            assert!(held.already_open.is_empty(), "{held:?}");
        }
    }

    /// Çağrı (10000000146) invited by `institution`'s signed list whose SHA-256 is `byte`
    /// repeated, written to the store as the RA decides it.
    fn invite_cagri(f: &ca_core::testkit::Fixture, institution: &InstitutionId, byte: &str) {
        f.store
            .import_list(ListImportWrite {
                import: ListImport {
                    file_sha256: byte.repeat(32),
                    ..list(
                        institution,
                        vec![row(2, "10000000146", "Çağrı")],
                        ListSignature::Cms(vec![1]),
                    )
                },
                status: ImportStatus::Accepted,
                already_open: vec![],
                held_limit: None,
            })
            .unwrap();
    }

    /// An officer certificate another ESHS issued (not in the store): its issuer's CRL decides,
    /// and no CRL is no answer.
    #[test]
    fn a_foreign_officer_is_checked_against_the_issuers_crl() {
        use crate::testkit::FixedCrl;
        let f = fixture();
        let id = institution(&f);
        let record = f.store.institution(&id).unwrap().unwrap();
        let now = f.clock.now_unix();
        let with_status = |status: Arc<dyn ForeignOfficerStatus>| {
            ListImports::new(f.store.clone(), f.clock.clone(), status)
                .check_officer_status(&record, now)
        };
        let with = |crl: Option<CrlStatus>| with_status(Arc::new(FixedCrl(crl)));
        assert!(with(Some(CrlStatus::NotRevoked)).is_ok());
        let revoked = with(Some(CrlStatus::Revoked)).unwrap_err();
        assert!(
            matches!(&revoked, RaError::Invalid { field: "signature", rule } if rule.contains("is revoked (its issuer's CRL)")),
            "{revoked}"
        );
        let unknown = with(None).unwrap_err();
        assert!(
            matches!(unknown, RaError::OfficerStatusUnknown { .. }),
            "{unknown}"
        );
        assert_eq!(
            unknown.to_string(),
            "signature: the officer's certificate status cannot be checked: the CRL server did not answer; try again later"
        );
        let lasting = with_status(Arc::new(crate::testkit::LastingUnknown)).unwrap_err();
        assert!(
            matches!(&lasting, RaError::Invalid { field: "signature", rule } if rule.contains("register the officer")),
            "{lasting}"
        );
    }

    #[test]
    fn a_deactivated_institution_imports_nothing() {
        let f = fixture();
        let mut record = ca_core::testkit::institution_record();
        record.active = false;
        assert_eq!(
            may_import(&record).unwrap_err().to_string(),
            "institution: institution \"ankara-bb\" is deactivated"
        );
        let id = record.id.clone();
        f.store
            .add_institution(record, &ca_core::Principal::HostOperator, UnixTime::EPOCH)
            .unwrap();
        let imports = crate::testkit::list_imports(&f);
        let audit = f.store.verify_audit().unwrap().records;
        let e = imports
            .import(
                b"f",
                list(
                    &id,
                    vec![row(2, "10000000146", "Çağrı")],
                    ListSignature::Wet(b"x".to_vec()),
                ),
            )
            .unwrap_err();
        assert!(e.to_string().contains("is deactivated"), "{e}");
        assert_eq!(f.store.verify_audit().unwrap().records, audit);
        assert!(f.store.pre_applications(&id).unwrap().is_empty());
    }

    #[test]
    fn wet_signed_rows_are_held_and_open_people_skipped() {
        assert_eq!(
            import_status(&ListSignature::Cms(vec![1])),
            ImportStatus::Accepted
        );
        assert_eq!(
            import_status(&ListSignature::Wet(vec![1])),
            ImportStatus::AwaitingConfirmation
        );
        assert_eq!(
            ImportStatus::AwaitingConfirmation.rows_status(),
            ca_core::store::PreApplicationStatus::Held
        );
        let open: HashMap<Tckn, String> =
            [(Tckn::parse("10000000078").unwrap(), "pa-1".to_owned())].into();
        let (rows, already_open) = split_already_open(
            vec![
                row(2, "10000000146", "Çağrı"),
                row(3, "10000000078", "İpek"),
            ],
            &open,
        );
        assert_eq!(rows.iter().map(|r| r.row).collect::<Vec<_>>(), [2]);
        assert_eq!(already_open, vec![(3, "pa-1".to_owned())]);
    }
}
