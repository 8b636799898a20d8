//! The host calls the channels make, behind a trait so that the checks can be tested against a
//! fake host; [`Host`] (the real one, through the plugin ABI) implements it.

use nesca_plugin_api::host_api::{
    CertificateInfo, CommitmentAccepted, Issued, LifecycleCall, LifecycleOutcome, SubmitApplication,
};
use nesca_plugin_api::{Host, HostError, LogLevel};

/// What a channel asks of nesca. A refusal is the host's typed [`HostError`] (code, field, rule).
pub trait HostCalls: Send + Sync {
    /// Submits an issuance application (idempotent per `channel_ref`).
    fn submit_application(&self, application: &SubmitApplication) -> Result<Issued, HostError>;
    /// Hands over the applicant's signed commitment for the certificate `serial`.
    fn submit_commitment(
        &self,
        serial: &str,
        signed_commitment_der: Vec<u8>,
    ) -> Result<CommitmentAccepted, HostError>;
    /// A certificate and its status, by serial (hex).
    fn lookup_certificate(&self, serial: &str) -> Result<CertificateInfo, HostError>;
    /// Suspends, unsuspends or revokes a certificate on its holder's behalf.
    fn lifecycle(&self, call: &LifecycleCall) -> Result<LifecycleOutcome, HostError>;
    /// Logs one line (never a secret, never personal data such as a T.C. Kimlik No).
    fn log(&self, level: LogLevel, message: &str);
}

impl HostCalls for Host {
    fn submit_application(&self, application: &SubmitApplication) -> Result<Issued, HostError> {
        Host::submit_application(self, application)
    }

    fn submit_commitment(
        &self,
        serial: &str,
        signed_commitment_der: Vec<u8>,
    ) -> Result<CommitmentAccepted, HostError> {
        Host::submit_commitment(self, serial, signed_commitment_der)
    }

    fn lookup_certificate(&self, serial: &str) -> Result<CertificateInfo, HostError> {
        Host::lookup_certificate(self, serial)
    }

    fn lifecycle(&self, call: &LifecycleCall) -> Result<LifecycleOutcome, HostError> {
        Host::lifecycle(self, call)
    }

    fn log(&self, level: LogLevel, message: &str) {
        Host::log(self, level, message);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use nesca_plugin_api::host_api::{LOOKUP_CERTIFICATE, SUBMIT_COMMITMENT};
    use nesca_plugin_api::{HostApi, HostErrorCode};

    use super::*;

    /// Answers each method with a canned JSON and records what was called.
    #[derive(Default)]
    struct Recorder {
        calls: Mutex<Vec<(String, String, serde_json::Value)>>,
    }

    impl HostApi for Recorder {
        fn call(
            &self,
            plugin: &str,
            method: &str,
            request_json: &[u8],
        ) -> Result<Vec<u8>, HostError> {
            let request: serde_json::Value = serde_json::from_slice(request_json).unwrap();
            self.calls
                .lock()
                .unwrap()
                .push((plugin.into(), method.into(), request));
            match method {
                LOOKUP_CERTIFICATE => Ok(br#"{"v":1,"serial":"0a","status":"active","subject":"CN=x","tckn":null,"not_before":1,"not_after":2}"#.to_vec()),
                SUBMIT_COMMITMENT => Err(HostError::new(
                    HostErrorCode::Refused,
                    "signed_commitment",
                    "too late",
                )),
                _ => Err(HostError::internal("unexpected")),
            }
        }

        fn log(&self, _plugin: &str, _level: LogLevel, _message: &str) {}
    }

    #[test]
    fn the_real_host_carries_the_calls_through_the_abi() {
        let recorder = Arc::new(Recorder::default());
        let host = Host::with_api("kdhs", recorder.clone());
        let calls: &dyn HostCalls = &host;
        let info = calls.lookup_certificate("0A").unwrap();
        assert_eq!(
            (info.serial.as_str(), info.status.as_str()),
            ("0a", "active")
        );
        // The refusal arrives typed, as the host built it.
        let e = calls.submit_commitment("0a", vec![1, 2]).unwrap_err();
        assert_eq!(
            e,
            HostError::new(HostErrorCode::Refused, "signed_commitment", "too late")
        );
        let recorded = recorder.calls.lock().unwrap().clone();
        assert_eq!(recorded[0].0, "kdhs");
        assert_eq!(recorded[0].1, LOOKUP_CERTIFICATE);
        assert_eq!(recorded[0].2["serial"], "0A");
        assert_eq!(recorded[1].1, SUBMIT_COMMITMENT);
        assert_eq!(recorded[1].2["signed_commitment_der"], "AQI=");
    }
}
