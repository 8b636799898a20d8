//! The applicant as the ID-card authentication certificate states them: checks 7
//! (`auth_certificate`) and 8 (`tckn_mismatch`). The NES subject is taken from this certificate.

use nesca_pkix::chain::{verify_path, ID_KP_CLIENT_AUTH};
use nesca_pkix::subject::person_identity;

use crate::error::ChannelError;
use crate::identifiers::is_valid_tckn;

/// The person the authentication certificate names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applicant {
    /// T.C. Kimlik No (11 digits, the certificate's optional `TCKN` prefix removed).
    pub tckn: String,
    /// givenName, exactly as the certificate writes it.
    pub given_name: String,
    /// surname, exactly as the certificate writes it.
    pub surname: String,
}

impl Applicant {
    /// Check 7: `certificate` chains through `chain` to one of `idcard_ca` at `now`, is for
    /// client authentication (when it restricts its use), and names a person by T.C. Kimlik No,
    /// given name and surname.
    pub fn verify(
        certificate: &[u8],
        chain: &[Vec<u8>],
        idcard_ca: &[Vec<u8>],
        now: i64,
    ) -> Result<Applicant, ChannelError> {
        verify_path(certificate, chain, idcard_ca, now, Some(ID_KP_CLIENT_AUTH)).map_err(|e| {
            ChannelError::auth_certificate(
                "auth_certificate",
                format!("does not verify against the identity-card CA: {e}"),
            )
        })?;
        let person = person_identity(certificate)
            .map_err(|e| ChannelError::auth_certificate("auth_certificate", e.to_string()))?;
        // Turkish ID-card certificates write the number bare or as "TCKN12345678901".
        let tckn = person
            .serial_number
            .strip_prefix("TCKN")
            .unwrap_or(&person.serial_number);
        if !is_valid_tckn(tckn) {
            return Err(ChannelError::auth_certificate(
                "auth_certificate",
                "subject serialNumber must be a T.C. Kimlik No (optionally prefixed TCKN)",
            ));
        }
        Ok(Applicant {
            tckn: tckn.to_owned(),
            given_name: person.given_name,
            surname: person.surname,
        })
    }

    /// Check 8: the KDB was made for this person.
    pub fn check_tckn(&self, kdb_tckn: &str) -> Result<(), ChannelError> {
        if self.tckn == kdb_tckn {
            return Ok(());
        }
        // Neither number goes into the message: both are personal data, and the partner has them.
        Err(ChannelError::tckn_mismatch(
            "kdb.tckn",
            "differs from the T.C. Kimlik No of auth_certificate: the identity was verified for another person",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::pki::{LeafSpec, Pki, NOW, OTHER_TCKN, TCKN};

    #[test]
    fn the_authentication_certificate_names_the_applicant() {
        let pki = Pki::get();
        let anchors = vec![pki.idcard_root.cert.clone()];
        let chain = vec![pki.idcard_sub.cert.clone()];
        let applicant = Applicant::verify(&pki.auth.cert, &chain, &anchors, NOW).unwrap();
        assert_eq!(
            applicant,
            Applicant {
                tckn: TCKN.into(),
                given_name: "Ayşe".into(),
                surname: "Yılmaz".into()
            }
        );
        assert!(applicant.check_tckn(TCKN).is_ok());
        let e = applicant.check_tckn(OTHER_TCKN).unwrap_err();
        assert_eq!((e.code(), e.http_status()), ("tckn_mismatch", 422));
        assert!(!e.to_string().contains(TCKN) && !e.to_string().contains(OTHER_TCKN));
    }

    #[test]
    fn the_tckn_prefix_is_removed() {
        let pki = Pki::get();
        // The "other" applicant's certificate writes serialNumber as "TCKN17291716060".
        let applicant = Applicant::verify(
            &pki.other_auth.cert,
            std::slice::from_ref(&pki.idcard_sub.cert),
            std::slice::from_ref(&pki.idcard_root.cert),
            NOW,
        )
        .unwrap();
        assert_eq!(applicant.tckn, OTHER_TCKN);
    }

    #[test]
    fn a_certificate_of_another_ca_or_out_of_validity_is_refused() {
        let pki = Pki::get();
        let chain = vec![pki.idcard_sub.cert.clone()];
        let wrong_ca = Applicant::verify(
            &pki.auth.cert,
            &chain,
            std::slice::from_ref(&pki.kdhs_root.cert),
            NOW,
        )
        .unwrap_err();
        assert_eq!(
            (wrong_ca.code(), wrong_ca.http_status()),
            ("auth_certificate", 422)
        );
        assert!(wrong_ca
            .to_string()
            .starts_with("auth_certificate: does not verify against the identity-card CA: "));
        let anchors = vec![pki.idcard_root.cert.clone()];
        let missing_sub = Applicant::verify(&pki.auth.cert, &[], &anchors, NOW).unwrap_err();
        assert_eq!(missing_sub.code(), "auth_certificate");
        let expired = pki.idcard_sub.issue(&LeafSpec {
            not_after: NOW - 1,
            ..LeafSpec::person(TCKN, "Ayşe", "Yılmaz")
        });
        let e = Applicant::verify(&expired.cert, &chain, &anchors, NOW).unwrap_err();
        assert_eq!(e.code(), "auth_certificate");
    }

    #[test]
    fn a_serial_number_that_is_not_a_tckn_is_refused() {
        let pki = Pki::get();
        let odd = pki
            .idcard_sub
            .issue(&LeafSpec::person("17291716050", "Ali", "Kaya"));
        let e = Applicant::verify(
            &odd.cert,
            std::slice::from_ref(&pki.idcard_sub.cert),
            std::slice::from_ref(&pki.idcard_root.cert),
            NOW,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "auth_certificate: subject serialNumber must be a T.C. Kimlik No (optionally prefixed TCKN)"
        );
    }
}
