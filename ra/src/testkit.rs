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
