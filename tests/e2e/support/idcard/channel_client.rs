//! An mTLS client (rustls) for the channel listener: HTTP/1.1, one connection per request.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct};
use rustls::{RootCertStore, SignatureScheme, StreamOwned};
use serde_json::Value;

use super::kdbo::Signer;
use crate::support::http::{read_response, request_head, HttpResponse, HTTP_LIMIT};

/// Verifies the listener's chain under nesca's CA certificates. nesca's secure-communication
/// certificates carry no subjectAltName, so the name check alone is waived: what the tests
/// check is the client side of the handshake.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// HTTP/1.1 over mTLS to the channel listener, one connection per request.
pub(crate) struct ChannelClient {
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    /// The name the listener's certificate is checked for (by [`ChannelClient::verifying`];
    /// [`ChannelClient::new`] checks the chain only).
    name: ServerName<'static>,
}

impl ChannelClient {
    #[track_caller]
    /// A client of the listener on 127.0.0.1:`port` that trusts `ca_chain` and presents
    /// `client` (no certificate when `None`).
    pub(crate) fn new(port: u16, ca_chain: &Path, client: Option<&Signer>) -> ChannelClient {
        ChannelClient::build(port, ca_chain, client, None)
    }

    /// A client that checks the listener's certificate as any TLS client does: its chain and
    /// that it names `name` (a DNS name or IP address) in subjectAltName.
    #[track_caller]
    pub(crate) fn verifying(
        port: u16,
        ca_chain: &Path,
        client: Option<&Signer>,
        name: &str,
    ) -> ChannelClient {
        let name = ServerName::try_from(name.to_owned()).expect("a DNS name or IP address");
        ChannelClient::build(port, ca_chain, client, Some(name))
    }

    #[track_caller]
    fn build(
        port: u16,
        ca_chain: &Path,
        client: Option<&Signer>,
        name: Option<ServerName<'static>>,
    ) -> ChannelClient {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca_chain).expect("ca-chain.pem") {
            roots
                .add(cert.expect("a PEM certificate"))
                .expect("a CA certificate");
        }
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .expect("server verifier");
        let verifier: Arc<dyn ServerCertVerifier> = match name {
            Some(_) => webpki,
            None => Arc::new(ChainOnly(webpki)),
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match client {
            Some(c) => {
                let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&c.cert)
                    .expect("client certificate")
                    .map(|c| c.expect("a PEM certificate"))
                    .collect();
                let key = PrivateKeyDer::from_pem_file(&c.key).expect("client key");
                builder
                    .with_client_auth_cert(chain, key)
                    .expect("client certificate and key")
            }
            None => builder.with_no_client_auth(),
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        ChannelClient {
            name: name.unwrap_or_else(|| ServerName::IpAddress(addr.ip().into())),
            addr,
            config: Arc::new(config),
        }
    }

    /// `GET PATH`. `Err` when no HTTP response came back (the handshake or the connection
    /// was refused), with what happened.
    pub(crate) fn get(&self, path: &str) -> Result<HttpResponse, String> {
        self.request("GET", path, None)
    }

    /// `POST PATH` with a JSON body. `Err` when no HTTP response came back (the handshake or
    /// the connection was refused), with what happened.
    pub(crate) fn post(&self, path: &str, body: &Value) -> Result<HttpResponse, String> {
        self.request("POST", path, Some(body.to_string().as_bytes()))
    }

    /// `POST PATH`; panics (with what happened) when no HTTP response came back.
    #[track_caller]
    pub(crate) fn post_ok(&self, path: &str, body: &Value) -> HttpResponse {
        self.post(path, body)
            .unwrap_or_else(|e| panic!("POST {path}: no HTTP response: {e}"))
    }

    /// `METHOD PATH` with `Authorization: Bearer TOKEN` when given, and a JSON body when
    /// given; panics (with what happened) when no HTTP response came back.
    #[track_caller]
    pub(crate) fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> HttpResponse {
        let auth = token.map(|t| format!("Bearer {t}"));
        let body = body.map(|b| b.to_string().into_bytes());
        self.request_with(method, path, body.as_deref(), auth.as_deref())
            .unwrap_or_else(|e| panic!("{method} {path}: no HTTP response: {e}"))
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<HttpResponse, String> {
        self.request_with(method, path, body, None)
    }

    /// One TLS connection kept open across requests (HTTP/1.1 keep-alive).
    pub(crate) fn keep_alive(&self) -> Result<KeptConnection, String> {
        Ok(KeptConnection {
            tls: self.connect("keep-alive")?,
        })
    }

    /// A TLS connection to the listener (the handshake happens on first use); `request`
    /// names what it is for in errors.
    fn connect(&self, request: &str) -> Result<StreamOwned<ClientConnection, TcpStream>, String> {
        let sock = TcpStream::connect_timeout(&self.addr, HTTP_LIMIT)
            .map_err(|e| format!("{request}: cannot connect to {}: {e}", self.addr))?;
        sock.set_read_timeout(Some(HTTP_LIMIT)).expect("timeout");
        sock.set_write_timeout(Some(HTTP_LIMIT)).expect("timeout");
        let conn = ClientConnection::new(self.config.clone(), self.name.clone())
            .map_err(|e| format!("{request}: TLS client: {e}"))?;
        Ok(StreamOwned::new(conn, sock))
    }

    fn request_with(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        authorization: Option<&str>,
    ) -> Result<HttpResponse, String> {
        let request = format!("{method} {path}");
        let mut tls = self.connect(&request)?;
        let mut headers = vec![("Accept", "application/json")];
        if let Some(a) = authorization {
            headers.push(("Authorization", a));
        }
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        let head = request_head(method, path, "127.0.0.1", &headers, body.map(<[u8]>::len));
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body.unwrap_or_default());
        let sent = tls.write_all(&bytes).and_then(|_| tls.flush());
        // A server may answer before it has read the whole body (413 for a body over the
        // limit) and close: its answer is then read all the same; only without one is the
        // failed send the outcome.
        let response = read_response(&mut tls, &request);
        let response = match (sent, response) {
            (Err(e), Err(_)) => Err(format!("{request}: sending: {e}")),
            (_, response) => response,
        };
        let _ = tls.sock.shutdown(std::net::Shutdown::Both);
        response
    }
}

/// A connection of [`ChannelClient::keep_alive`]: requests go one after another on it.
pub(crate) struct KeptConnection {
    tls: StreamOwned<ClientConnection, TcpStream>,
}

impl KeptConnection {
    /// `GET PATH` on this connection, asking to keep it open. `Err` when no HTTP response
    /// came back on it (the server closed it, or refused).
    pub(crate) fn get(&mut self, path: &str) -> Result<HttpResponse, String> {
        let head =
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\r\n");
        self.tls
            .write_all(head.as_bytes())
            .and_then(|_| self.tls.flush())
            .map_err(|e| format!("GET {path}: sending: {e}"))?;
        read_response(&mut self.tls, &format!("GET {path}"))
    }
}
