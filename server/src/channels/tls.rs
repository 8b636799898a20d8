//! The mTLS listener of the channel endpoints (rustls): a client must present a certificate
//! that nesca issued with a partner profile (role or secure-communication) and that is active
//! now. Anything else fails the handshake. Whether its partner is still active, and whether
//! the certificate still is, is checked again on every request (`partner_status`).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use ca_core::store::Store;
use ca_core::IssuerId;
use der::Decode;
use nesca_ra::partners::{ChannelClientRefusal, ChannelClients};
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
/// the plugin with each request.
#[derive(Clone, Debug, Default)]
pub(super) struct ClientChain(pub Vec<Vec<u8>>);

/// Verifies the chain up to the issuing CA (webpki: signature, validity, clientAuth EKU), then
/// asks the registration authority's rule for channel clients (`ChannelClients`, the same
/// check every request makes again): nesca's own record of that certificate, a partner
/// profile, active, of an active partner.
struct IssuedAndActive {
    webpki: Arc<dyn ClientCertVerifier>,
    clients: ChannelClients,
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
        // Decided on the certificate alone, before the store is asked: every partner
        // certificate carries clientAuth (the partner profiles write it), so a NES holder's
        // certificate, or anything else without it, costs no store read.
        if !offers_client_auth(&cert) {
            return Err(refuse(
                "no clientAuth extended key usage: not a partner certificate",
            ));
        }
        // The verifier runs inside the handshake, on the async runtime: the store reads (index
        // lookups, but under the reader's lock) are moved off it.
        match off_the_runtime(|| self.clients.check(end_entity.as_ref())) {
            Ok(()) => Ok(()),
            Err(ChannelClientRefusal::Revoked) => {
                tracing::info!(
                    reason = ChannelClientRefusal::Revoked.reason(),
                    "client certificate refused"
                );
                Err(rustls::Error::InvalidCertificate(CertificateError::Revoked))
            }
            Err(why) => Err(refuse(why.reason())),
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

/// The TLS configuration of the channel listener: the server's certificate chain and key from
/// PEM files, client certificates required and checked by [`IssuedAndActive`].
pub(crate) fn acceptor(
    cert_file: &Path,
    key_file: &Path,
    issuing_cas: &[(IssuerId, Vec<u8>)],
    store: Arc<dyn Store>,
) -> Result<TlsAcceptor> {
    let bad = |field: &str, rule: String| CliError::config(field, rule);
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| bad("channels.tls_cert", format!("{}: {e}", cert_file.display())))?;
    if chain.is_empty() {
        return Err(bad(
            "channels.tls_cert",
            format!("{} holds no certificate", cert_file.display()),
        ));
    }
    crate::config::check_private_file("channels.tls_key", key_file)?;
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| bad("channels.tls_key", format!("{}: {e}", key_file.display())))?;
    let provider = Arc::new(default_provider());
    let mut roots = RootCertStore::empty();
    for (id, der) in issuing_cas {
        roots.add(CertificateDer::from(der.clone())).map_err(|e| {
            bad(
                "ca.id",
                format!("the issuing CA certificate of \"{id}\" as a trust anchor: {e}"),
            )
        })?;
    }
    let webpki = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| bad("channels", format!("client verifier: {e}")))?;
    let verifier = Arc::new(IssuedAndActive {
        webpki,
        clients: ChannelClients::new(
            store,
            issuing_cas.iter().map(|(id, _)| id.clone()).collect(),
            crate::wiring::clock(),
        ),
    });
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("channels", format!("TLS versions: {e}")))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| {
            bad(
                "channels.tls_key",
                format!("does not match channels.tls_cert: {e}"),
            )
        })?;
    // No session resumption: a resumed session skips the client-certificate check, so a
    // partner certificate would keep opening connections after it expired or was revoked.
    let mut config = config;
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves the channels on `listener` under the `[server]` limits (the shared listener, as
/// every listener nesca opens) until `stop` flips. Each admitted connection first finishes
/// its TLS handshake within the header read timeout; `app` is then served with the verified
/// client chain as a request extension.
pub(crate) async fn serve(
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
                    tracing::info!(%peer, error = %e, "channel TLS handshake refused");
                    return None;
                }
                Err(_) => {
                    tracing::info!(%peer, "channel TLS handshake not finished in time");
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
            Some((tls, app.layer(axum::Extension(chain))))
        }
    };
    crate::listener::serve("channels.listen", listener, limits, open, stop).await;
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
