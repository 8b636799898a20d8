//! Check 11 (`overwrite`): the certificate the applicant chose to overwrite on the card is theirs
//! and still in use. The host revokes it as superseded once the new one is accepted.

use nesca_plugin_api::HostErrorCode;

use crate::error::ChannelError;
use crate::host::HostCalls;

/// `serial` is known to the host, belongs to the person `tckn`, and is active or suspended.
pub fn check_overwrite(host: &dyn HostCalls, serial: &str, tckn: &str) -> Result<(), ChannelError> {
    let refuse = |rule: String| ChannelError::overwrite("overwrite_serial", rule);
    let info = host.lookup_certificate(serial).map_err(|e| {
        // Only the host's `not_found` means an unknown serial; anything else is a failure to
        // look, which must not read as "not found".
        if e.code == HostErrorCode::NotFound {
            refuse(format!("certificate {serial} is not found"))
        } else {
            refuse(format!("certificate {serial} cannot be looked up: {e}"))
        }
    })?;
    if info.tckn.as_deref() != Some(tckn) {
        return Err(refuse(format!(
            "certificate {serial} belongs to another person"
        )));
    }
    match info.status.as_str() {
        "active" | "suspended" => Ok(()),
        status => Err(refuse(format!(
            "certificate {serial} is {status}; only an active or suspended certificate can be overwritten"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{certificate_info, FakeHost, OTHER_TCKN, TCKN};

    fn host_with(serial: &str, tckn: Option<&str>, status: &str) -> FakeHost {
        let host = FakeHost::new();
        host.state()
            .certificates
            .insert(serial.into(), certificate_info(serial, tckn, status));
        host
    }

    #[test]
    fn the_applicants_active_or_suspended_certificate_may_be_overwritten() {
        for status in ["active", "suspended"] {
            let host = host_with("0b0b", Some(TCKN), status);
            check_overwrite(&host, "0b0b", TCKN).unwrap();
            assert_eq!(host.state().lookups, vec!["0b0b".to_string()]);
        }
    }

    #[test]
    fn anothers_unknown_or_revoked_certificate_may_not() {
        let host = host_with("0b0b", Some(OTHER_TCKN), "active");
        let e = check_overwrite(&host, "0b0b", TCKN).unwrap_err();
        assert_eq!((e.code(), e.http_status()), ("overwrite", 422));
        assert_eq!(
            e.to_string(),
            "overwrite_serial: certificate 0b0b belongs to another person"
        );

        let host = host_with("0c0c", None, "active");
        let e = check_overwrite(&host, "0c0c", TCKN).unwrap_err();
        assert_eq!(
            e.to_string(),
            "overwrite_serial: certificate 0c0c belongs to another person"
        );

        let e = check_overwrite(&FakeHost::new(), "0d0d", TCKN).unwrap_err();
        assert_eq!(
            e.to_string(),
            "overwrite_serial: certificate 0d0d is not found"
        );

        // A host that cannot look (its store is down) is not a host that found nothing.
        let host = FakeHost::new();
        host.state().lookup_failure = Some(nesca_plugin_api::HostError::new(
            HostErrorCode::Unavailable,
            "store",
            "read: database is locked",
        ));
        let e = check_overwrite(&host, "0a0a", TCKN).unwrap_err();
        assert_eq!(
            e.to_string(),
            "overwrite_serial: certificate 0a0a cannot be looked up: store: read: database is locked"
        );

        let host = host_with("0e0e", Some(TCKN), "revoked");
        let e = check_overwrite(&host, "0e0e", TCKN).unwrap_err();
        assert_eq!(
            e.to_string(),
            "overwrite_serial: certificate 0e0e is revoked; only an active or suspended certificate can be overwritten"
        );
    }
}
