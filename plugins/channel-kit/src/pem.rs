//! Certificate files named in the plugin configuration: PEM with one or more `CERTIFICATE`
//! blocks, read once at start.

use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use der::Decode as _;

use crate::error::ChannelError;

/// A CA file larger than this is a mistake (a whole trust store of thousands of roots would be).
const MAX_PEM_FILE: u64 = 4 << 20;

const BEGIN_CERTIFICATE: &str = "-----BEGIN CERTIFICATE-----";
const END_CERTIFICATE: &str = "-----END CERTIFICATE-----";

/// Reads the certificates (DER) of the PEM file at `path`, which the configuration key `key`
/// names. Text outside the blocks (openssl's `subject=` lines) is ignored; a block of another
/// kind (a private key put there by mistake), a certificate that does not decode, or a file with
/// no certificate is refused with the key and the path.
pub fn read_certificates(key: &str, path: &Path) -> Result<Vec<Vec<u8>>, ChannelError> {
    let shown = path.display();
    let cannot_read =
        |e: std::io::Error| ChannelError::config(key, format!("cannot read {shown}: {e}"));
    let size = std::fs::metadata(path).map_err(cannot_read)?.len();
    if size > MAX_PEM_FILE {
        return Err(ChannelError::config(
            key,
            format!("{shown} is {size} bytes; at most {MAX_PEM_FILE} are accepted"),
        ));
    }
    let text = std::fs::read_to_string(path).map_err(cannot_read)?;
    parse_certificates(&text).map_err(|rule| ChannelError::config(key, format!("{shown}: {rule}")))
}

/// The DER certificates of PEM `text`; the rule broken otherwise.
fn parse_certificates(text: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut certificates = Vec::new();
    let mut block: Option<String> = None;
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        match &mut block {
            None if line == BEGIN_CERTIFICATE => block = Some(String::new()),
            None if line.starts_with("-----BEGIN ") => {
                return Err(format!(
                    "line {}: only CERTIFICATE blocks are accepted, not {line}",
                    number + 1
                ))
            }
            None => {}
            Some(body) if line == END_CERTIFICATE => {
                let index = certificates.len() + 1;
                let der = STANDARD
                    .decode(body.as_bytes())
                    .map_err(|_| format!("certificate {index}: the block is not base64"))?;
                x509_cert::Certificate::from_der(&der)
                    .map_err(|e| format!("certificate {index}: not an X.509 certificate: {e}"))?;
                certificates.push(der);
                block = None;
            }
            Some(_) if line.starts_with("-----") => {
                return Err(format!(
                    "line {}: unexpected {line} inside a CERTIFICATE block",
                    number + 1
                ))
            }
            Some(body) => body.push_str(line),
        }
    }
    if block.is_some() {
        return Err(format!("a CERTIFICATE block has no {END_CERTIFICATE}"));
    }
    if certificates.is_empty() {
        return Err(format!("holds no {BEGIN_CERTIFICATE} block"));
    }
    Ok(certificates)
}

/// Certificates (DER) as a PEM text, the form [`read_certificates`] reads.
pub fn to_pem(certificates: &[Vec<u8>]) -> String {
    let mut out = String::new();
    for der in certificates {
        out.push_str(BEGIN_CERTIFICATE);
        out.push('\n');
        let b64 = STANDARD.encode(der);
        for chunk in b64.as_bytes().chunks(64) {
            // base64 output is ASCII, so every chunk is valid UTF-8.
            out.push_str(&String::from_utf8_lossy(chunk));
            out.push('\n');
        }
        out.push_str(END_CERTIFICATE);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::pki::Pki;

    #[test]
    fn reads_every_certificate_block_in_order() {
        let pki = Pki::get();
        let certs = vec![pki.idcard_root.cert.clone(), pki.idcard_sub.cert.clone()];
        let text = format!("subject=CN=x\n{}", to_pem(&certs));
        assert_eq!(parse_certificates(&text).unwrap(), certs);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, &text).unwrap();
        assert_eq!(read_certificates("idcard_ca", &path).unwrap(), certs);
    }

    #[test]
    fn refusals_name_the_key_and_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let e = read_certificates("idcard_ca", &missing).unwrap_err();
        assert_eq!(e.code(), "config");
        let text = e.to_string();
        assert!(text.starts_with("idcard_ca: cannot read "), "{text}");
        assert!(text.contains("missing.pem"), "{text}");

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "nothing here\n").unwrap();
        let e = read_certificates("device_ca", &empty)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("device_ca: ")
                && e.ends_with("holds no -----BEGIN CERTIFICATE----- block"),
            "{e}"
        );
    }

    #[test]
    fn bad_blocks_are_refused() {
        let key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert_eq!(
            parse_certificates(key).unwrap_err(),
            "line 1: only CERTIFICATE blocks are accepted, not -----BEGIN PRIVATE KEY-----"
        );
        let not_b64 = format!("{BEGIN_CERTIFICATE}\n***\n{END_CERTIFICATE}\n");
        assert_eq!(
            parse_certificates(&not_b64).unwrap_err(),
            "certificate 1: the block is not base64"
        );
        let not_cert = format!("{BEGIN_CERTIFICATE}\nMAMCAQE=\n{END_CERTIFICATE}\n");
        assert!(parse_certificates(&not_cert)
            .unwrap_err()
            .starts_with("certificate 1: not an X.509 certificate"));
        let open = format!("{BEGIN_CERTIFICATE}\nMAMCAQE=\n");
        assert!(parse_certificates(&open)
            .unwrap_err()
            .contains("has no -----END CERTIFICATE-----"));
    }
}
