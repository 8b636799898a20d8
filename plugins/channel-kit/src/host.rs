//! The host calls the channels make, behind a trait so that the checks can be tested against a
//! fake host; [`Host`] (the real one, through the plugin ABI) implements it.

use nesca_plugin_api::host_api::{
    CertificateInfo, CommitmentAccepted, Issued, LifecycleCall, LifecycleOutcome, SubmitApplication,
};
use nesca_plugin_api::{Host, LogLevel};

/// What a channel asks of nesca. Errors are the host's messages, written `"field: rule"`.
pub trait HostCalls: Send + Sync {
    /// Submits an issuance application (idempotent per `channel_ref`).
    fn submit_application(&self, application: &SubmitApplication) -> Result<Issued, String>;
    /// Hands over the applicant's signed commitment for the certificate `serial`.
    fn submit_commitment(
        &self,
        serial: &str,
        signed_commitment_der: Vec<u8>,
    ) -> Result<CommitmentAccepted, String>;
    /// A certificate and its status, by serial (hex).
    fn lookup_certificate(&self, serial: &str) -> Result<CertificateInfo, String>;
    /// Suspends, unsuspends or revokes a certificate on its holder's behalf.
    fn lifecycle(&self, call: &LifecycleCall) -> Result<LifecycleOutcome, String>;
    /// Logs one line (never a secret, never personal data such as a T.C. Kimlik No).
    fn log(&self, level: LogLevel, message: &str);
}

impl HostCalls for Host {
    fn submit_application(&self, application: &SubmitApplication) -> Result<Issued, String> {
        Host::submit_application(self, application)
    }

    fn submit_commitment(
        &self,
        serial: &str,
        signed_commitment_der: Vec<u8>,
    ) -> Result<CommitmentAccepted, String> {
        Host::submit_commitment(self, serial, signed_commitment_der)
    }

    fn lookup_certificate(&self, serial: &str) -> Result<CertificateInfo, String> {
        Host::lookup_certificate(self, serial)
    }

    fn lifecycle(&self, call: &LifecycleCall) -> Result<LifecycleOutcome, String> {
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
    use nesca_plugin_api::HostApi;

    use super::*;

    /// Answers each method with a canned JSON and records what was called.
    #[derive(Default)]
    struct Recorder {
        calls: Mutex<Vec<(String, String, serde_json::Value)>>,
    }

    impl HostApi for Recorder {
        fn call(&self, plugin: &str, method: &str, request_json: &[u8]) -> Result<Vec<u8>, String> {
            let request: serde_json::Value =
                serde_json::from_slice(request_json).map_err(|e| e.to_string())?;
            self.calls
                .lock()
                .unwrap()
                .push((plugin.into(), method.into(), request));
            match method {
                LOOKUP_CERTIFICATE => Ok(br#"{"v":1,"serial":"0a","status":"active","subject":"CN=x","tckn":null,"not_before":1,"not_after":2}"#.to_vec()),
                SUBMIT_COMMITMENT => Err("signed_commitment: too late".into()),
                _ => Err("unexpected".into()),
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
        let e = calls.submit_commitment("0a", vec![1, 2]).unwrap_err();
        assert!(e.contains("signed_commitment: too late"), "{e}");
        let recorded = recorder.calls.lock().unwrap().clone();
        assert_eq!(recorded[0].0, "kdhs");
        assert_eq!(recorded[0].1, LOOKUP_CERTIFICATE);
        assert_eq!(recorded[0].2["serial"], "0A");
        assert_eq!(recorded[1].1, SUBMIT_COMMITMENT);
        assert_eq!(recorded[1].2["signed_commitment_der"], "AQI=");
    }
}
