//! `nesca admin tls-cert`, `nesca portal tls-cert` and `nesca channels tls-cert`: the admin
//! API's, the portal's and the partners' channel listener certificates, issued by the issuing CA with the listener's names in
//! subjectAltName (so that `curl --cacert ca-chain.pem https://127.0.0.1:8443/…` verifies
//! it), and their keys, made here in software and written 0600 (rustls holds them in memory
//! to serve). `init --demo` runs the same for both.

use std::path::PathBuf;

use ca_core::engine::CertRequest;
use ca_core::profile::{ServerName, TlsServerProfile};
use ca_core::store::SubjectRecord;
use ca_core::Principal;
use clap::Args;
use p256::pkcs8::EncodePrivateKey;

use super::{cert_pem, emit, OutFile};
use crate::config::Loaded;
use crate::error::{CliError, Result};
use crate::wiring;

#[derive(Args)]
pub(crate) struct TlsCertArgs {
    /// Path of nesca.toml
    #[arg(long)]
    config: PathBuf,
    /// A DNS name or IP address the listener is reached at (repeatable; default: the IP
    /// address the listener's `listen` binds)
    #[arg(long = "name")]
    names: Vec<String>,
    /// Validity in days (at most 825)
    #[arg(long, default_value_t = 365)]
    validity_days: u32,
}

/// A TLS listener of nesca's that serves a certificate of its own issuing CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listener {
    /// `[admin]`: the admin API.
    Admin,
    /// `[portal]`: the holders' and applicants' pages.
    Portal,
    /// `[channels]`: the partners' mTLS listener.
    Channels,
}

impl Listener {
    fn section(self) -> &'static str {
        match self {
            Listener::Admin => "admin",
            Listener::Portal => "portal",
            Listener::Channels => "channels",
        }
    }

    fn listen(self, cfg: &Loaded) -> Option<&str> {
        match self {
            Listener::Admin => cfg.raw.admin.listen.as_deref(),
            Listener::Portal => cfg.raw.portal.listen.as_deref(),
            Listener::Channels => cfg.raw.channels.listen.as_deref(),
        }
    }

    /// The certificate chain's and the key's files (the channels' have no default: they must
    /// be configured).
    fn files(self, cfg: &Loaded) -> Result<(PathBuf, PathBuf)> {
        let (cert, key) = match self {
            Listener::Admin => (&cfg.raw.admin.tls_cert, &cfg.raw.admin.tls_key),
            Listener::Portal => (&cfg.raw.portal.tls_cert, &cfg.raw.portal.tls_key),
            Listener::Channels => {
                let c = &cfg.raw.channels;
                let missing =
                    |field: &str| CliError::config(field, "is not set: name the file to write");
                (
                    c.tls_cert
                        .as_ref()
                        .ok_or_else(|| missing("channels.tls_cert"))?,
                    c.tls_key
                        .as_ref()
                        .ok_or_else(|| missing("channels.tls_key"))?,
                )
            }
        };
        Ok((cfg.path(cert), cfg.path(key)))
    }
}

pub(crate) fn tls_cert(a: TlsCertArgs) -> Result<()> {
    listener_tls_cert(Listener::Admin, a)
}

pub(crate) fn portal_tls_cert(a: TlsCertArgs) -> Result<()> {
    listener_tls_cert(Listener::Portal, a)
}

pub(crate) fn channels_tls_cert(a: TlsCertArgs) -> Result<()> {
    listener_tls_cert(Listener::Channels, a)
}

fn listener_tls_cert(listener: Listener, a: TlsCertArgs) -> Result<()> {
    let cfg = Loaded::read(&a.config)?;
    let names = a
        .names
        .iter()
        .map(|n| ServerName::parse(n))
        .collect::<ca_core::Result<Vec<_>>>()?;
    let serial = issue_listener_certificate(&cfg, listener, names, a.validity_days)?;
    let (cert, key) = listener.files(&cfg)?;
    emit(&format!(
        "{}\n",
        serde_json::json!({
            "serial": serial.to_hex(),
            "tls_cert": cert.display().to_string(),
            "tls_key": key.display().to_string(),
        })
    ))
}

/// The names of the listener when none are given: the IP address its `listen` binds.
fn default_names(cfg: &Loaded, listener: Listener) -> Result<Vec<ServerName>> {
    let field = format!("{}.listen", listener.section());
    let listen = listener
        .listen(cfg)
        .ok_or_else(|| CliError::config(&field, "is not set: give --name, or set the listener"))?;
    let addr: std::net::SocketAddr = listen
        .parse()
        .map_err(|_| CliError::config(&field, "must be IP:PORT"))?;
    if addr.ip().is_unspecified() {
        return Err(CliError::Argument {
            field: "name",
            rule: format!(
                "{field} {listen} binds every address: name the ones clients use with --name"
            ),
        });
    }
    Ok(vec![ServerName::Ip(addr.ip())])
}

/// Issues a listener's certificate for `names` (default: its listen address) with a new P-256
/// key, and writes the chain (certificate, issuing CA) to its `tls_cert` and the key to its
/// `tls_key`, replacing what was there.
pub(crate) fn issue_listener_certificate(
    cfg: &Loaded,
    listener: Listener,
    names: Vec<ServerName>,
    validity_days: u32,
) -> Result<ca_core::Serial> {
    // Where it goes is claimed before anything is issued: an unwritable place refuses the
    // command, not a certificate issued with its key lost.
    let (cert_file, key_file) = listener.files(cfg)?;
    let section = listener.section();
    let key_out = OutFile::claim("tls_key", &key_file).map_err(|e| in_section(section, e))?;
    let cert_out = OutFile::claim("tls_cert", &cert_file).map_err(|e| in_section(section, e))?;
    let names = if names.is_empty() {
        default_names(cfg, listener)?
    } else {
        names
    };
    let profile = TlsServerProfile::new(names, validity_days)?;
    let key = p256::SecretKey::random(&mut rand::rngs::OsRng);
    let spki = spki::SubjectPublicKeyInfoOwned::from_key(key.public_key()).map_err(key_error)?;
    let subject = profile.subject(&cfg.raw.ca.country, &cfg.raw.ca.organization)?;
    let request = CertRequest {
        record: SubjectRecord {
            subject: subject.to_string(),
            ..SubjectRecord::default()
        },
        subject,
        subject_key: spki,
        validity_days,
        await_commitment: false,
    };
    let store = wiring::open_existing_store(cfg)?;
    let issuance = wiring::open_issuance(cfg, store.clone())?;
    nesca_ra::ca_status::ensure_not_revoked(store.as_ref(), &issuance.ca.context.id)?;
    let issued =
        issuance
            .engine
            .issue(&issuance.ca, &profile, request, &Principal::HostOperator)?;
    let key_der = key.to_pkcs8_der().map_err(key_error)?;
    let key_pem =
        der::pem::encode_string("PRIVATE KEY", der::pem::LineEnding::LF, key_der.as_bytes())
            .map_err(key_error)?;
    let key_pem = secrecy::SecretString::from(key_pem);
    let mut chain = cert_pem(&issued.cert_der);
    if let Some(ca_cert) = &issuance.ca.cert_der {
        chain.push_str(&cert_pem(ca_cert));
    }
    // Both files are the owner's alone (0600) from the first byte, each moved into place.
    key_out.commit(secrecy::ExposeSecret::expose_secret(&key_pem).as_bytes())?;
    cert_out.commit(chain.as_bytes())?;
    Ok(issued.serial)
}

/// A claim's refusal, naming the listener's own option (`portal.tls_key`, …).
fn in_section(section: &'static str, e: CliError) -> CliError {
    match e {
        CliError::Argument { field, rule } => CliError::config(&format!("{section}.{field}"), rule),
        other => other,
    }
}

/// The listener key could not be encoded (never expected: a fresh P-256 key).
fn key_error(e: impl std::fmt::Display) -> CliError {
    CliError::Argument {
        field: "key",
        rule: format!("the listener key cannot be encoded: {e}"),
    }
}
