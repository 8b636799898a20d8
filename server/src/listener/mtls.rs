//! The mTLS listeners (rustls): the channels' and the admin API's. A client must present a
//! certificate that chains to one of nesca's issuing CAs (webpki: signature, validity,
//! clientAuth) and that the listener's [`ClientCheck`] accepts — a partner's for the
//! channels, an operator's for the admin API. Anything else fails the handshake. The same
//! check runs again on every request (`channels::partner_status`, `admin::auth`), so a
//! revocation stops a kept-alive connection at its next request.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use ca_core::IssuerId;
use der::Decode;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::ring::default_provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme,
};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use crate::error::{CliError, Result};
use crate::listener::Limits;

/// The client's certificate chain as the TLS handshake verified it (DER, leaf first), handed to
/// the routes with each request.
#[derive(Clone, Debug, Default)]
pub(crate) struct ClientChain(pub Vec<Vec<u8>>);

/// Why a listener refuses a client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientRefusal {
    /// Suspended or revoked (the handshake's alert says so).
    Revoked,
    /// Anything else, in words for the log.
    Refused(&'static str),
}

/// The registration authority's rule for whom a listener admits, asked with the end-entity
/// certificate (DER) after webpki verified its chain.
pub(crate) trait ClientCheck: Send + Sync {
    fn check(&self, end_entity: &[u8]) -> std::result::Result<(), ClientRefusal>;
}

/// Verifies the chain up to an issuing CA (webpki: signature, validity, clientAuth EKU), then
/// asks the listener's [`ClientCheck`].
struct IssuedAndActive {
    webpki: Arc<dyn ClientCertVerifier>,
    check: Arc<dyn ClientCheck>,
}

impl std::fmt::Debug for IssuedAndActive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedAndActive").finish_non_exhaustive()
    }
}

impl IssuedAndActive {
    fn check_store(
        &self,
        end_entity: &CertificateDer<'_>,
    ) -> std::result::Result<(), rustls::Error> {
        let refuse = |why: &str| {
            tracing::info!(reason = why, "client certificate refused");
            rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure)
        };
        let cert = x509_cert::Certificate::from_der(end_entity.as_ref())
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        // Decided on the certificate alone, before the store is asked: every partner and
        // operator certificate carries clientAuth, so a NES holder's certificate, or anything
        // else without it, costs no store read.
        if !offers_client_auth(&cert) {
            return Err(refuse(
                "no clientAuth extended key usage: not a partner or operator certificate",
            ));
        }
        // The verifier runs inside the handshake, on the async runtime: the store reads (index
        // lookups, but under the reader's lock) are moved off it.
        match off_the_runtime(|| self.check.check(end_entity.as_ref())) {
            Ok(()) => Ok(()),
            Err(ClientRefusal::Revoked) => {
                tracing::info!(
                    reason = "the certificate is suspended or revoked",
                    "client certificate refused"
                );
                Err(rustls::Error::InvalidCertificate(CertificateError::Revoked))
            }
            Err(ClientRefusal::Refused(why)) => Err(refuse(why)),
        }
    }
}

/// Whether the certificate's extKeyUsage names id-kp-clientAuth (RFC 5280 §4.2.1.12). A
/// certificate without the extension, or with one that does not decode, does not.
fn offers_client_auth(cert: &x509_cert::Certificate) -> bool {
    use x509_cert::ext::pkix::ExtendedKeyUsage;
    use x509_cert::spki::ObjectIdentifier;
    const EXT_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");
    const KP_CLIENT_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.2");
    cert.tbs_certificate
        .extensions
        .iter()
        .flatten()
        .filter(|e| e.extn_id == EXT_KEY_USAGE)
        .any(|e| {
            ExtendedKeyUsage::from_der(e.extn_value.as_bytes())
                .is_ok_and(|u| u.0.contains(&KP_CLIENT_AUTH))
        })
}

/// Runs blocking work (a store read) from inside a synchronous callback of the async runtime
/// (rustls calls the verifier while tokio-rustls drives the handshake): on a multi-threaded
/// runtime the worker hands its other tasks to the rest of the pool first
/// (`tokio::task::block_in_place`); elsewhere (no runtime, a current-thread one) it runs as is.
fn off_the_runtime<T>(work: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

impl ClientCertVerifier for IssuedAndActive {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.webpki.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> std::result::Result<ClientCertVerified, rustls::Error> {
        self.webpki
            .verify_client_cert(end_entity, intermediates, now)?;
        self.check_store(end_entity)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// The certificate chain and key of a listener, from PEM files (`section`: its configuration
/// section, for errors); the key file must be the owner's alone.
fn server_identity(
    section: &str,
    (cert_file, key_file): (&Path, &Path),
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let bad = |field: &str, rule: String| CliError::config(&format!("{section}.{field}"), rule);
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| bad("tls_cert", format!("{}: {e}", cert_file.display())))?;
    if chain.is_empty() {
        return Err(bad(
            "tls_cert",
            format!("{} holds no certificate", cert_file.display()),
        ));
    }
    crate::config::check_private_file(&format!("{section}.tls_key"), key_file)?;
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| bad("tls_key", format!("{}: {e}", key_file.display())))?;
    Ok((chain, key))
}

/// The TLS configuration of a listener that asks for no client certificate (the portal,
/// where people sign in with what they know and an SMS code).
pub(crate) fn server_acceptor(section: &str, files: (&Path, &Path)) -> Result<TlsAcceptor> {
    let (chain, key) = server_identity(section, files)?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| CliError::config(section, format!("TLS versions: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            CliError::config(
                &format!("{section}.tls_key"),
                format!("does not match {section}.tls_cert: {e}"),
            )
        })?;
    // HTTP/1.1 only, as every listener (listener/mod.rs).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The TLS configuration of an mTLS listener (`section`: `channels` or `admin`, for errors):
/// the server's certificate chain and key from PEM files, client certificates required,
/// chained to one of `issuing_cas` and accepted by `check`.
pub(crate) fn acceptor(
    section: &str,
    (cert_file, key_file): (&Path, &Path),
    issuing_cas: &[(IssuerId, Vec<u8>)],
    check: Arc<dyn ClientCheck>,
) -> Result<TlsAcceptor> {
    let bad = |field: &str, rule: String| CliError::config(&format!("{section}.{field}"), rule);
    let (chain, key) = server_identity(section, (cert_file, key_file))?;
    let provider = Arc::new(default_provider());
    let mut roots = RootCertStore::empty();
    for (id, der) in issuing_cas {
        roots.add(CertificateDer::from(der.clone())).map_err(|e| {
            CliError::config(
                "ca.id",
                format!("the issuing CA certificate of \"{id}\" as a trust anchor: {e}"),
            )
        })?;
    }
    let webpki = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| CliError::config(section, format!("client verifier: {e}")))?;
    let verifier = Arc::new(IssuedAndActive { webpki, check });
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| CliError::config(section, format!("TLS versions: {e}")))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| bad("tls_key", format!("does not match {section}.tls_cert: {e}")))?;
    // No session resumption: a resumed session skips the client-certificate check, so a
    // client certificate would keep opening connections after it expired or was revoked.
    let mut config = config;
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `app` on `listener` (`field`: its configuration key, for the log) under the
/// `[server]` limits (the shared listener, as every listener nesca opens) until `stop` flips.
/// Each admitted connection first finishes its TLS handshake within the header read timeout;
/// `app` is then served with the verified client chain as a request extension.
pub(crate) async fn serve(
    field: &'static str,
    listener: tokio::net::TcpListener,
    acceptor: TlsAcceptor,
    app: Router,
    limits: Limits,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let handshake_limit = limits.header_read;
    let open = move |tcp: TcpStream, peer: SocketAddr| {
        let (acceptor, app) = (acceptor.clone(), app.clone());
        async move {
            let tls = match tokio::time::timeout(handshake_limit, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::info!(%peer, error = %e, listener = field, "TLS handshake refused");
                    return None;
                }
                Err(_) => {
                    tracing::info!(%peer, listener = field, "TLS handshake not finished in time");
                    return None;
                }
            };
            let chain = ClientChain(
                tls.get_ref()
                    .1
                    .peer_certificates()
                    .map(|c| c.iter().map(|d| d.as_ref().to_vec()).collect())
                    .unwrap_or_default(),
            );
            let app = app
                .layer(axum::Extension(chain))
                .layer(axum::Extension(axum::extract::ConnectInfo(peer)));
            Some((tls, app))
        }
    };
    crate::listener::serve(field, listener, limits, open, stop).await;
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use der::Encode;
    use x509_cert::builder::{Builder, CertificateBuilder, Profile};
    use x509_cert::ext::pkix::ExtendedKeyUsage;
    use x509_cert::name::Name;
    use x509_cert::serial_number::SerialNumber;
    use x509_cert::time::Validity;

    use super::*;

    /// A self-signed P-256 certificate with the extKeyUsage purposes given (none: no extension).
    fn certificate(purposes: Option<Vec<der::asn1::ObjectIdentifier>>) -> x509_cert::Certificate {
        let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
        let spki = spki::SubjectPublicKeyInfoOwned::from_key(*key.verifying_key()).unwrap();
        let mut builder = CertificateBuilder::new(
            Profile::Leaf {
                issuer: Name::from_str("CN=test").unwrap(),
                enable_key_agreement: false,
                enable_key_encipherment: false,
            },
            SerialNumber::from(7u32),
            Validity::from_now(std::time::Duration::from_secs(3600)).unwrap(),
            Name::from_str("CN=test").unwrap(),
            spki,
            &key,
        )
        .unwrap();
        if let Some(p) = purposes {
            builder.add_extension(&ExtendedKeyUsage(p)).unwrap();
        }
        let cert = builder.build::<p256::ecdsa::DerSignature>().unwrap();
        x509_cert::Certificate::from_der(&cert.to_der().unwrap()).unwrap()
    }

    /// Only a certificate naming clientAuth reaches the store: a NES (no extKeyUsage) or a
    /// server-only certificate is refused on the certificate alone.
    #[test]
    fn only_client_auth_certificates_are_looked_up() {
        use const_oid::db::rfc5280::{ID_KP_CLIENT_AUTH, ID_KP_SERVER_AUTH};
        assert!(!offers_client_auth(&certificate(None)));
        assert!(!offers_client_auth(&certificate(Some(vec![
            ID_KP_SERVER_AUTH
        ]))));
        assert!(offers_client_auth(&certificate(Some(vec![
            ID_KP_CLIENT_AUTH
        ]))));
        assert!(offers_client_auth(&certificate(Some(vec![
            ID_KP_SERVER_AUTH,
            ID_KP_CLIENT_AUTH
        ]))));
    }

    /// Blocking work from a synchronous callback on either kind of runtime, and outside one.
    #[test]
    fn blocking_work_runs_on_every_kind_of_runtime() {
        assert_eq!(off_the_runtime(|| 1), 1);
        let multi = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        assert_eq!(
            multi.block_on(async { tokio::spawn(async { off_the_runtime(|| 2) }).await.unwrap() }),
            2
        );
        let single = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(single.block_on(async { off_the_runtime(|| 3) }), 3);
    }
}
