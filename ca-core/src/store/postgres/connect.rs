//! How the PostgreSQL store reaches its server: the URL's parameters, the password (from
//! the environment or a file, never from the configuration), and TLS.

use std::path::PathBuf;

use postgres::config::{ChannelBinding, SslMode};
use secrecy::{ExposeSecret, SecretString};

use super::db::PgError;
use crate::error::{CaError, Result};

/// TLS to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgTls {
    /// Plain TCP (or a Unix socket): a server on the same host or a trusted network.
    Disable,
    /// TLS required, the server's certificate verified against the CA certificates in this
    /// PEM file and its name against the URL's host.
    VerifyFull {
        /// PEM file of the CA certificates that issue the server's certificate.
        ca_file: PathBuf,
    },
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// `postgres://USER@HOST:PORT/DB` (libpq's URL and key=value forms). A password in it is
    /// refused: it comes from `password`.
    pub url: String,
    /// The password, when the server asks for one.
    pub password: Option<SecretString>,
    /// TLS to the server.
    pub tls: PgTls,
    /// Connections kept open for reads, besides the writer's.
    pub pool_size: usize,
}

impl PgOptions {
    /// The checks [`crate::store::PgStore::open`] makes before connecting: the URL parses,
    /// names a user and holds no password; the TLS CA file holds certificates.
    pub fn check(&self) -> Result<()> {
        Connector::new(self).map(|_| ())
    }
}

/// Makes connections for the store (its writer, its readers, its listener).
pub(crate) struct Connector {
    config: postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // postgres::Config's Debug redacts the password.
        f.debug_struct("Connector")
            .field("config", &self.config)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// The limits every session of nesca's runs under (PostgreSQL's `options`).
const SESSION_LIMITS: &str = "-c idle_in_transaction_session_timeout=60000 -c lock_timeout=30000 -c statement_timeout=120000";

fn invalid(rule: impl Into<String>) -> CaError {
    CaError::invalid("store.postgres_url", rule)
}

impl Connector {
    /// Checks the options: a URL that parses and carries no password, a CA file that holds
    /// certificates.
    pub(crate) fn new(options: &PgOptions) -> Result<Connector> {
        let mut config: postgres::Config = options
            .url
            .parse()
            .map_err(|e: postgres::Error| invalid(format!("not a PostgreSQL URL: {e}")))?;
        if config.get_password().is_some() {
            return Err(invalid(
                "holds a password; give it through store.postgres_password_env or store.postgres_password_file instead",
            ));
        }
        if config.get_user().is_none() {
            return Err(invalid("names no user (postgres://USER@HOST:PORT/DB)"));
        }
        // TLS is store.postgres_tls's alone, and the session's settings are nesca's: a URL
        // saying otherwise would be silently overridden (or override them).
        if config.get_ssl_mode() != SslMode::Prefer
            || config.get_ssl_negotiation() != postgres::config::SslNegotiation::Postgres
            || config.get_channel_binding() != ChannelBinding::Prefer
        {
            return Err(invalid(
                "sets sslmode, sslnegotiation or channel_binding; TLS is store.postgres_tls (and store.postgres_ca_file)",
            ));
        }
        if config.get_options().is_some() {
            return Err(invalid(
                "sets options; nesca sets its sessions' own (time limits)",
            ));
        }
        if let Some(password) = &options.password {
            match &options.tls {
                // Over TLS, the SCRAM exchange is bound to the server's certificate too.
                PgTls::VerifyFull { .. } => {
                    config.channel_binding(ChannelBinding::Require);
                }
                PgTls::Disable if !local_only(&config) => {
                    return Err(CaError::invalid(
                        "store.postgres_tls",
                        "a password goes to a server on another host only over TLS: set postgres_tls = \"verify-full\" (or connect through a Unix socket or loopback)",
                    ));
                }
                PgTls::Disable => {}
            }
            config.password(password.expose_secret());
        }
        config.application_name("nesca");
        config.connect_timeout(std::time::Duration::from_secs(5));
        // A node that stops answering mid-transaction (frozen, partitioned) must not hold the
        // writers' advisory lock for hours: the server ends its idle transaction after a
        // minute and TCP keepalives find its dead connection; a node waits at most 30 s for
        // a lock (then its write fails: 503) and a statement runs at most 2 minutes.
        config.keepalives(true);
        config.keepalives_idle(std::time::Duration::from_secs(10));
        config.keepalives_interval(std::time::Duration::from_secs(5));
        config.keepalives_retries(3);
        config.options(SESSION_LIMITS);
        let tls = match &options.tls {
            PgTls::Disable => {
                config.ssl_mode(SslMode::Disable);
                None
            }
            PgTls::VerifyFull { ca_file } => {
                config.ssl_mode(SslMode::Require);
                Some(tls_connector(ca_file)?)
            }
        };
        Ok(Connector { config, tls })
    }

    /// A new connection.
    pub(crate) fn connect(&self) -> Result<postgres::Client, PgError> {
        Ok(match &self.tls {
            Some(tls) => self.config.connect(tls.clone())?,
            None => self.config.connect(postgres::NoTls)?,
        })
    }
}

/// Whether every host the configuration names is on this machine: a Unix socket, `localhost`
/// or a loopback address.
fn local_only(config: &postgres::Config) -> bool {
    let loopback = |host: &str| {
        host == "localhost"
            || host
                .trim_matches(|c| c == '[' || c == ']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    };
    config.get_hostaddrs().iter().all(|ip| ip.is_loopback())
        && config.get_hosts().iter().all(|h| match h {
            postgres::config::Host::Unix(_) => true,
            postgres::config::Host::Tcp(name) => loopback(name),
        })
}

/// A rustls client configuration trusting only the certificates of `ca_file`.
fn tls_connector(ca_file: &std::path::Path) -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    use rustls_pki_types::pem::PemObject;
    let field = "store.postgres_ca_file";
    let mut roots = rustls::RootCertStore::empty();
    let certs = rustls_pki_types::CertificateDer::pem_file_iter(ca_file)
        .map_err(|e| CaError::invalid(field, format!("{}: {e}", ca_file.display())))?;
    for cert in certs {
        let cert =
            cert.map_err(|e| CaError::invalid(field, format!("{}: {e}", ca_file.display())))?;
        roots
            .add(cert)
            .map_err(|e| CaError::invalid(field, format!("{}: {e}", ca_file.display())))?;
    }
    if roots.is_empty() {
        return Err(CaError::invalid(
            field,
            format!("{} holds no certificate", ca_file.display()),
        ));
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| CaError::invalid(field, e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The local test server's own certificate (Debian's postgresql package makes it: a
    /// self-signed `CN=localhost`).
    const SERVER_CERT: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";

    fn options(url: String, tls: PgTls) -> PgOptions {
        PgOptions {
            url,
            password: None,
            tls,
            pool_size: 1,
        }
    }

    #[test]
    fn a_url_with_a_password_or_without_a_user_is_refused() {
        for url in [
            "postgres://nesca:secret@127.0.0.1:5432/nesca",
            "postgres://127.0.0.1:5432/nesca",
            "not a url",
        ] {
            let e = Connector::new(&options(url.into(), PgTls::Disable)).unwrap_err();
            let text = e.to_string();
            assert!(text.starts_with("store.postgres_url: "), "{text}");
            assert!(!text.contains("secret"), "the password is echoed: {text}");
        }
    }

    #[test]
    fn verify_full_checks_the_servers_certificate_and_name() {
        let db = crate::testkit::TestDatabase::create();
        // The server's certificate names localhost.
        let url = db.url().replace("127.0.0.1", "localhost");
        let trusted = PgTls::VerifyFull {
            ca_file: SERVER_CERT.into(),
        };
        let mut client = Connector::new(&options(url.clone(), trusted.clone()))
            .unwrap()
            .connect()
            .expect("TLS to the local server, verified");
        let ssl: bool = client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .unwrap()
            .get(0);
        assert!(ssl, "the connection is not TLS");
        // Another name than the certificate's, or a CA file that does not issue it: refused.
        let by_address = Connector::new(&options(db.url(), trusted))
            .unwrap()
            .connect();
        assert!(by_address.is_err(), "127.0.0.1 is not in the certificate");
        let dir = crate::testkit::private_tempdir();
        let other_ca = dir.path().join("other.pem");
        std::fs::write(
            &other_ca,
            crate::testkit::fixture()
                .ca
                .cert_der
                .map_or_else(Vec::new, |der| pem_of(&der)),
        )
        .unwrap();
        let untrusted = Connector::new(&options(url, PgTls::VerifyFull { ca_file: other_ca }))
            .unwrap()
            .connect();
        assert!(
            untrusted.is_err(),
            "a server certificate no configured CA issued"
        );
    }

    fn pem_of(der: &[u8]) -> Vec<u8> {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).unwrap());
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
        pem.into_bytes()
    }

    #[test]
    fn tls_and_session_settings_in_the_url_are_refused() {
        for url in [
            "postgres://nesca@db.example/nesca?sslmode=require",
            "postgres://nesca@db.example/nesca?sslmode=disable",
            "postgres://nesca@db.example/nesca?channel_binding=disable",
            "postgres://nesca@db.example/nesca?options=-c%20statement_timeout%3D0",
        ] {
            let e = Connector::new(&options(url.into(), PgTls::Disable)).unwrap_err();
            assert!(
                e.to_string().starts_with("store.postgres_url: sets "),
                "{url}: {e}"
            );
        }
    }

    #[test]
    fn a_password_goes_to_another_host_only_over_tls() {
        let with_password = |url: &str, tls: PgTls| PgOptions {
            password: Some(SecretString::from("S3cr3t-DB-pass")),
            ..options(url.into(), tls)
        };
        let e = Connector::new(&with_password(
            "postgres://nesca@db.example/nesca",
            PgTls::Disable,
        ))
        .unwrap_err();
        assert!(e.to_string().starts_with("store.postgres_tls: "), "{e}");
        assert!(!e.to_string().contains("S3cr3t"), "{e}");
        for local in [
            "postgres://nesca@127.0.0.1:5432/nesca",
            "postgres://nesca@localhost/nesca",
            "postgres://nesca@[::1]/nesca",
            "postgres://nesca@/nesca?host=/run/postgresql",
        ] {
            Connector::new(&with_password(local, PgTls::Disable))
                .unwrap_or_else(|e| panic!("{local}: {e}"));
        }
        let over_tls = Connector::new(&with_password(
            "postgres://nesca@db.example/nesca",
            PgTls::VerifyFull {
                ca_file: SERVER_CERT.into(),
            },
        ))
        .unwrap();
        assert_eq!(
            over_tls.config.get_channel_binding(),
            ChannelBinding::Require
        );
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = crate::testkit::private_tempdir();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "nothing here\n").unwrap();
        let e = Connector::new(&options(
            "postgres://postgres@localhost/postgres".into(),
            PgTls::VerifyFull { ca_file: empty },
        ))
        .unwrap_err();
        assert!(e.to_string().starts_with("store.postgres_ca_file: "), "{e}");
    }
}
