//! A host for tests: records every call and answers what the test set up.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use nesca_plugin_api::host_api::{
    CertificateInfo, Commitment, CommitmentAccepted, Issued, LifecycleCall, LifecycleOutcome,
    SubmitApplication, WrappedKey,
};
use nesca_plugin_api::{HostError, HostErrorCode, LogLevel};

use super::pki::{NOW, TCKN};
use crate::host::HostCalls;

/// What the fake host answers and what it was asked.
#[derive(Debug, Clone)]
pub struct FakeState {
    /// `lookup_certificate` answers from here; an absent serial is `not_found`, as the host
    /// answers it.
    pub certificates: BTreeMap<String, CertificateInfo>,
    /// `lookup_certificate` fails with this, when set (the store is down, say).
    pub lookup_failure: Option<HostError>,
    /// The answer to `submit_application`.
    pub submit: Result<Issued, HostError>,
    /// The answer to `submit_commitment`.
    pub commitment: Result<CommitmentAccepted, HostError>,
    /// The answer to `lifecycle`.
    pub lifecycle: Result<LifecycleOutcome, HostError>,
    /// Every application submitted.
    pub submitted: Vec<SubmitApplication>,
    /// Every commitment submitted: (serial, DER).
    pub commitments: Vec<(String, Vec<u8>)>,
    /// Every lifecycle call.
    pub lifecycle_calls: Vec<LifecycleCall>,
    /// Every serial looked up.
    pub lookups: Vec<String>,
    /// Every log line.
    pub logs: Vec<(LogLevel, String)>,
}

/// A fake [`HostCalls`].
#[derive(Debug)]
pub struct FakeHost {
    state: Mutex<FakeState>,
}

/// The certificate the fake host issues.
pub const ISSUED_SERIAL: &str = "7a3f0c11";

/// A certificate record as the host's lookup answers it.
pub fn certificate_info(serial: &str, tckn: Option<&str>, status: &str) -> CertificateInfo {
    CertificateInfo {
        serial: serial.to_owned(),
        status: status.to_owned(),
        subject: "CN=Test".into(),
        tckn: tckn.map(str::to_owned),
        not_before: NOW - 86_400,
        not_after: NOW + 86_400 * 365,
        certificate_der: None,
    }
}

/// The issuance the fake host answers by default: suspended, awaiting its commitment.
pub fn issued() -> Issued {
    Issued {
        serial: ISSUED_SERIAL.into(),
        certificate_der: vec![0x30, 0x82, 0x01],
        chain_der: vec![vec![0x30, 0x01], vec![0x30, 0x02]],
        status: Some("suspended".into()),
        wrapped_key: None,
        commitment: Some(Commitment {
            text: "Taahhütname: …".into(),
            sha256: "ab".repeat(32),
            deadline: NOW + 3600,
        }),
        replayed: false,
    }
}

/// A wrapped key as the host answers it for `hsm_key`.
/// A registered transport key's id, as a request names it.
pub const TRANSPORT_KEY: &str = "7f83b1657ff1fc53b92dc18148a1d65dfc2d4b1fa3d677284addd200126d9069";

pub fn wrapped_key() -> WrappedKey {
    WrappedKey {
        scheme: "rsa-oaep-sha1+aes-kwp".into(),
        wrapped_key: vec![1, 2, 3],
        wrapped_private_key: vec![4, 5, 6],
        transport_key: Some(TRANSPORT_KEY.into()),
    }
}

impl Default for FakeHost {
    fn default() -> Self {
        FakeHost::new()
    }
}

impl FakeHost {
    /// A host that issues [`issued`], accepts commitments and lifecycle requests, and knows the
    /// applicant's active certificate `0a0a` (and nothing else).
    pub fn new() -> FakeHost {
        let mut certificates = BTreeMap::new();
        certificates.insert(
            "0a0a".into(),
            certificate_info("0a0a", Some(TCKN), "active"),
        );
        FakeHost {
            state: Mutex::new(FakeState {
                certificates,
                lookup_failure: None,
                submit: Ok(issued()),
                commitment: Ok(CommitmentAccepted {
                    serial: ISSUED_SERIAL.into(),
                    status: "active".into(),
                    signed_commitment_der: vec![0x30, 0x09],
                    superseded: Some("0a0a".into()),
                    replayed: false,
                }),
                lifecycle: Ok(LifecycleOutcome {
                    status: "revoked".into(),
                    at: NOW,
                    reason: Some("keyCompromise".into()),
                    replayed: false,
                }),
                submitted: Vec::new(),
                commitments: Vec::new(),
                lifecycle_calls: Vec::new(),
                lookups: Vec::new(),
                logs: Vec::new(),
            }),
        }
    }

    /// The state, to set answers up or read what was asked.
    pub fn state(&self) -> MutexGuard<'_, FakeState> {
        // A test that panicked while holding the lock has failed already; go on with its state.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl HostCalls for FakeHost {
    fn submit_application(&self, application: &SubmitApplication) -> Result<Issued, HostError> {
        let mut s = self.state();
        s.submitted.push(application.clone());
        s.submit.clone()
    }

    fn submit_commitment(
        &self,
        serial: &str,
        signed_commitment_der: Vec<u8>,
    ) -> Result<CommitmentAccepted, HostError> {
        let mut s = self.state();
        s.commitments
            .push((serial.to_owned(), signed_commitment_der));
        s.commitment.clone()
    }

    fn lookup_certificate(&self, serial: &str) -> Result<CertificateInfo, HostError> {
        let mut s = self.state();
        s.lookups.push(serial.to_owned());
        if let Some(failure) = &s.lookup_failure {
            return Err(failure.clone());
        }
        s.certificates.get(serial).cloned().ok_or_else(|| {
            HostError::without_field(
                HostErrorCode::NotFound,
                format!("certificate {serial} not found"),
            )
        })
    }

    fn lifecycle(&self, call: &LifecycleCall) -> Result<LifecycleOutcome, HostError> {
        let mut s = self.state();
        s.lifecycle_calls.push(call.clone());
        s.lifecycle.clone()
    }

    fn log(&self, level: LogLevel, message: &str) {
        self.state().logs.push((level, message.to_owned()));
    }
}
