//! Test helpers of the registration authority's unit tests.

/// An e-mail and SMS sender that keeps what it was given (recipient, text), or fails on
/// demand.
#[derive(Default)]
pub(crate) struct Captured {
    emails: std::sync::Mutex<Vec<(String, String)>>,
    sms: std::sync::Mutex<Vec<(String, String)>>,
    failing: std::sync::atomic::AtomicBool,
}

impl Captured {
    pub(crate) fn fail(&self, failing: bool) {
        self.failing
            .store(failing, std::sync::atomic::Ordering::SeqCst);
    }
    pub(crate) fn emails(&self) -> Vec<(String, String)> {
        self.emails.lock().unwrap().clone()
    }
    pub(crate) fn sms(&self) -> Vec<(String, String)> {
        self.sms.lock().unwrap().clone()
    }
    fn keep(
        &self,
        into: &std::sync::Mutex<Vec<(String, String)>>,
        to: &str,
        body: &secrecy::SecretString,
    ) -> crate::Result<()> {
        use secrecy::ExposeSecret as _;
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(crate::RaError::Relay {
                relay: "captured".into(),
                reason: "connection refused".into(),
            });
        }
        into.lock()
            .unwrap()
            .push((to.to_owned(), body.expose_secret().to_owned()));
        Ok(())
    }
}

impl crate::outbox::EmailSender for Captured {
    fn send(&self, email: &crate::outbox::Email) -> crate::Result<()> {
        self.keep(&self.emails, &email.to, &email.body)
    }
}

impl crate::outbox::SmsSender for Captured {
    fn send(&self, sms: &crate::outbox::Sms) -> crate::Result<()> {
        self.keep(&self.sms, &sms.to, &sms.body)
    }
}

/// An issuer's CRL as a test wants it: listing nothing, listing everything, or unreachable.
pub(crate) struct FixedCrl(pub(crate) Option<crate::list_import::CrlStatus>);

impl crate::list_import::ForeignOfficerStatus for FixedCrl {
    fn crl_status(
        &self,
        _cert_der: &[u8],
        _now: ca_core::UnixTime,
    ) -> Result<crate::list_import::CrlStatus, crate::list_import::StatusUnknown> {
        self.0.ok_or_else(|| crate::list_import::StatusUnknown {
            lasting: false,
            source: "the CRL server did not answer".into(),
        })
    }
}

/// A certificate whose status can never be had (no CRL URL in it).
pub(crate) struct LastingUnknown;

impl crate::list_import::ForeignOfficerStatus for LastingUnknown {
    fn crl_status(
        &self,
        _cert_der: &[u8],
        _now: ca_core::UnixTime,
    ) -> Result<crate::list_import::CrlStatus, crate::list_import::StatusUnknown> {
        Err(crate::list_import::StatusUnknown {
            lasting: true,
            source: "it names no http CRL URL".into(),
        })
    }
}

/// The list imports of `f`'s store, with every foreign officer certificate's CRL listing
/// nothing.
pub(crate) fn list_imports(f: &ca_core::testkit::Fixture) -> crate::list_import::ListImports {
    crate::list_import::ListImports::new(
        f.store.clone(),
        f.clock.clone(),
        std::sync::Arc::new(FixedCrl(Some(crate::list_import::CrlStatus::NotRevoked))),
    )
}

/// A NES of the test holder (10000000146) issued by `f`'s CA.
pub(crate) fn issue_nes(f: &ca_core::testkit::Fixture) -> ca_core::Serial {
    issue_nes_for_days(f, None).serial
}

/// [`issue_nes`] valid for `days` (the profile's default when `None`), with its DER.
pub(crate) fn issue_nes_for_days(
    f: &ca_core::testkit::Fixture,
    days: Option<u32>,
) -> ca_core::engine::Issued {
    f.engine
        .issue_nes(
            &f.ca,
            &f.nes,
            ca_core::testkit::nes_application(days, false),
            &ca_core::Principal::HostOperator,
        )
        .unwrap()
}
