//! `nesca.toml`: one file, typed with serde, every option documented in the README.
//! Relative paths are relative to the directory of the configuration file.

use std::path::{Path, PathBuf};

use ca_core::profile::{
    CaUrls, NesProfile, NesProfileConfig, PartnerCertKind, PartnerCertProfile, PartnerProfileConfig,
};
use ca_core::IssuerId;
use hsm::KeyAlgorithm;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::error::{CliError, Result};

fn default_sessions() -> usize {
    2
}
fn default_ocsp_sessions() -> usize {
    1
}
fn default_country() -> String {
    "TR".into()
}
fn default_root_id() -> String {
    "root-ca".into()
}
fn default_algorithm() -> String {
    KeyAlgorithm::EcdsaP256.name().into()
}
fn default_root_days() -> u32 {
    7305
}
fn default_issuing_days() -> u32 {
    3653
}
fn default_ocsp_days() -> u32 {
    90
}

/// The whole file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    pub ca: CaSection,
    pub hsm: HsmSection,
    pub store: StoreSection,
    pub profile: ProfileSection,
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub crl: CrlSection,
    #[serde(default)]
    pub ocsp: OcspSection,
    /// `[audit]`: the audit log's checkpoints and their anchor.
    #[serde(default)]
    pub audit: AuditSection,
    /// `[admin]`: the admin API for named operators (mTLS) and its dual control.
    #[serde(default)]
    pub admin: AdminSection,
    /// `[portal]`: the holders' and applicants' web pages (TLS).
    #[serde(default)]
    pub portal: PortalSection,
    #[serde(default)]
    pub channels: ChannelsSection,
    /// `[outbox]`: how notifications (access passwords) are delivered.
    #[serde(default)]
    pub outbox: OutboxSection,
    /// `[production]`: how approved institutional applications are produced. Absent: they
    /// wait, approved.
    #[serde(default)]
    pub production: Option<ProductionSection>,
    /// `[[plugins]]`: front-channel plugins to load, in order.
    #[serde(default)]
    pub plugins: Vec<PluginSection>,
}

/// `[production]`: where card keys come from and where card packages go.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProductionSection {
    /// `hsm`: the key pair is generated in the HSM and its private key wrapped for the card
    /// personalisation system; `card-bureau-csr`: the card bureau sends a CSR per application
    /// (`nesca production csr`).
    pub key_source: String,
    /// With `hsm`: the id of the card-personalisation system's registered transport key
    /// (`nesca transport-key add`; 64 lower-case hex digits). It must be registered and not
    /// withdrawn, its certificate valid, whenever production runs.
    #[serde(default)]
    pub transport_key: Option<String>,
    /// With `hsm`: the card key's algorithm (`ecdsa-p256`, `ecdsa-p384`, `rsa-2048`, …).
    #[serde(default = "default_card_key_algorithm")]
    pub key_algorithm: String,
    /// Where each produced application's card package (`<application>.json`) is written.
    #[serde(default = "default_package_dir")]
    pub package_dir: PathBuf,
    /// How often `nesca serve` produces due applications (renewals included).
    #[serde(default = "default_production_interval")]
    pub interval_seconds: u64,
}

fn default_card_key_algorithm() -> String {
    KeyAlgorithm::EcdsaP256.name().into()
}
fn default_package_dir() -> PathBuf {
    PathBuf::from("production/packages")
}
fn default_production_interval() -> u64 {
    60
}

/// `[channels]`: where the channel plugins are served.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChannelsSection {
    /// The mTLS listener of `/channels/…`. Unset: `nesca serve` refuses to serve plugins,
    /// unless `allow_plain_http` says to serve them on server.listen without TLS.
    #[serde(default)]
    pub listen: Option<String>,
    /// Development only: serve the plugins on server.listen, plain HTTP, with no client
    /// certificate at all — anyone who reaches that address can use every channel.
    #[serde(default)]
    pub allow_plain_http: bool,
    /// The listener's certificate chain, PEM (server certificate first).
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// Its private key, PEM (PKCS#8, SEC1 or PKCS#1), mode 0600.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// How long a certificate issued through an identity-card channel waits, suspended, for
    /// its holder's signed commitment before it is revoked (cessationOfOperation).
    #[serde(default = "default_commitment_deadline")]
    pub commitment_deadline_seconds: u64,
    /// How often overdue commitments are looked for.
    #[serde(default = "default_commitment_sweep")]
    pub commitment_sweep_seconds: u64,
}

impl Default for ChannelsSection {
    fn default() -> Self {
        ChannelsSection {
            listen: None,
            allow_plain_http: false,
            tls_cert: None,
            tls_key: None,
            commitment_deadline_seconds: default_commitment_deadline(),
            commitment_sweep_seconds: default_commitment_sweep(),
        }
    }
}

fn default_commitment_deadline() -> u64 {
    86_400
}
fn default_commitment_sweep() -> u64 {
    60
}

/// `[outbox]`: the notification outbox's e-mail delivery.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OutboxSection {
    /// The directory where the default e-mail sender writes one `.eml` file per message
    /// (relative to this file's directory).
    #[serde(default = "default_email_dir")]
    pub email_dir: PathBuf,
    /// The From address of the messages.
    #[serde(default = "default_email_from")]
    pub from: String,
    /// The page where invited people complete their application, named in the e-mail.
    /// Default: the portal's applicants' page, `{[portal] public_url}basvuru`; with no portal
    /// either, access passwords wait (README, `[outbox]`).
    #[serde(default)]
    pub completion_url: Option<String>,
    /// How often `nesca serve` delivers due messages.
    #[serde(default = "default_outbox_interval")]
    pub interval_seconds: u64,
    /// Deliver e-mail through this SMTP relay instead of writing `.eml` files.
    #[serde(default)]
    pub smtp: Option<SmtpSection>,
    /// The directory where the default SMS sender writes one `.sms` file per message.
    #[serde(default = "default_sms_dir")]
    pub sms_dir: PathBuf,
    /// Send SMS by running this program (no shell) with these arguments followed by the
    /// number, the text on its standard input, instead of writing files.
    #[serde(default)]
    pub sms_command: Option<Vec<String>>,
}

/// `[outbox.smtp]`: an SMTP relay. The password comes from an environment variable, never
/// from this file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SmtpSection {
    pub host: String,
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    /// `starttls` (default), `tls` (implicit, port 465) or `none` (a relay on this host).
    #[serde(default = "default_smtp_tls")]
    pub tls: String,
    #[serde(default)]
    pub username: Option<String>,
    /// The environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// A CA certificate (PEM) to trust for the relay besides the web PKI roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default = "default_smtp_timeout")]
    pub timeout_seconds: u64,
}

fn default_smtp_port() -> u16 {
    587
}
fn default_smtp_tls() -> String {
    "starttls".into()
}
fn default_smtp_timeout() -> u64 {
    30
}
fn default_sms_dir() -> PathBuf {
    PathBuf::from("outbox/sms")
}

impl Default for OutboxSection {
    fn default() -> Self {
        OutboxSection {
            email_dir: default_email_dir(),
            from: default_email_from(),
            completion_url: None,
            interval_seconds: default_outbox_interval(),
            smtp: None,
            sms_dir: default_sms_dir(),
            sms_command: None,
        }
    }
}

fn default_email_dir() -> PathBuf {
    PathBuf::from("outbox/email")
}
fn default_email_from() -> String {
    "nesca@localhost".into()
}
fn default_outbox_interval() -> u64 {
    5
}

/// One `[[plugins]]` entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PluginSection {
    /// The plugin's shared library (`.so`).
    pub path: PathBuf,
    /// How long one call into the plugin may take before the request gets 504.
    #[serde(default = "default_plugin_timeout")]
    pub timeout_ms: u64,
    /// Calls into the plugin at once (a hung call counts until it returns); more get 503.
    #[serde(default = "default_plugin_in_flight")]
    pub max_in_flight: usize,
    /// Largest request body forwarded to the plugin; a larger one gets 413.
    #[serde(default = "default_plugin_max_body")]
    pub max_body_bytes: usize,
    /// The plugin's own settings, handed to it as JSON at start.
    #[serde(default)]
    pub config: toml::Table,
}

fn default_plugin_timeout() -> u64 {
    10_000
}
fn default_plugin_in_flight() -> usize {
    16
}
fn default_plugin_max_body() -> usize {
    4 << 20
}

/// `[server]`: the public HTTP endpoints of `nesca serve` (OCSP, CRLs, CA certificates), and
/// the timeouts and connection limits of every listener (`crate::listener`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServerSection {
    /// Address and port of the public HTTP listener.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// On SIGTERM/SIGINT, how long in-flight requests may take to finish.
    #[serde(default = "default_grace")]
    pub shutdown_grace_seconds: u64,
    /// How long a client may take to send a request's headers (and, on the mTLS listener,
    /// to finish the handshake). Every listener.
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout_seconds: u64,
    /// A connection with no request in flight and no bytes moving for this long is closed.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_seconds: u64,
    /// How long a request may take from its headers to its answer; then 503.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_seconds: u64,
    /// Connections one listener holds at once; more are closed at once.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// Connections one client IP address holds at once on one listener.
    #[serde(default = "default_max_connections_per_ip")]
    pub max_connections_per_ip: u32,
    /// Public lookups by T.C. Kimlik No (`GET /certificates?tckn=`) one client address may
    /// make per minute (a token bucket: this many at once, refilled evenly); more get 429.
    #[serde(default = "default_lookup_per_minute")]
    pub lookup_per_minute: u32,
    /// A warning is logged (every `[ocsp] signer_check_seconds`) while a CA certificate or a
    /// delegated OCSP signer expires within this many days.
    #[serde(default = "default_warn_certificate_days")]
    pub warn_certificate_expiry_days: u32,
    /// A warning is logged while a CA's latest published CRL reaches its nextUpdate within
    /// this many seconds (its successor is late).
    #[serde(default = "default_warn_crl_seconds")]
    pub warn_crl_next_update_seconds: u64,
}

fn default_lookup_per_minute() -> u32 {
    30
}
fn default_warn_certificate_days() -> u32 {
    30
}
fn default_warn_crl_seconds() -> u64 {
    3_600
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_grace() -> u64 {
    10
}
fn default_header_read_timeout() -> u64 {
    10
}
fn default_idle_timeout() -> u64 {
    60
}
fn default_request_timeout() -> u64 {
    30
}
fn default_max_connections() -> u32 {
    1024
}
fn default_max_connections_per_ip() -> u32 {
    64
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            listen: default_listen(),
            shutdown_grace_seconds: default_grace(),
            header_read_timeout_seconds: default_header_read_timeout(),
            idle_timeout_seconds: default_idle_timeout(),
            request_timeout_seconds: default_request_timeout(),
            max_connections: default_max_connections(),
            max_connections_per_ip: default_max_connections_per_ip(),
            lookup_per_minute: default_lookup_per_minute(),
            warn_certificate_expiry_days: default_warn_certificate_days(),
            warn_crl_next_update_seconds: default_warn_crl_seconds(),
        }
    }
}

/// `[crl]`: CRL generation, schedule and publication.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CrlSection {
    /// Directory the CRLs are published to (and served from at /crl/).
    #[serde(default = "default_crl_dir")]
    pub dir: PathBuf,
    /// A full CRL every this many seconds.
    #[serde(default = "default_full_every")]
    pub full_every_seconds: u64,
    /// A delta CRL every this many seconds.
    #[serde(default = "default_delta_every")]
    pub delta_every_seconds: u64,
    /// nextUpdate − thisUpdate of a full CRL.
    #[serde(default = "default_full_validity")]
    pub full_validity_seconds: u64,
    /// nextUpdate − thisUpdate of a delta CRL.
    #[serde(default = "default_delta_validity")]
    pub delta_validity_seconds: u64,
    /// The root's CRL (the ARL: the issuing CAs it revoked; full CRLs only): one every this
    /// many seconds.
    #[serde(default = "default_root_every")]
    pub root_every_seconds: u64,
    /// nextUpdate − thisUpdate of the root's CRL (at most 366 days).
    #[serde(default = "default_root_validity")]
    pub root_validity_seconds: u64,
}

fn default_root_every() -> u64 {
    30 * 86_400
}
fn default_root_validity() -> u64 {
    90 * 86_400
}

fn default_crl_dir() -> PathBuf {
    "crl".into()
}
fn default_full_every() -> u64 {
    86_400
}
fn default_delta_every() -> u64 {
    900
}
fn default_full_validity() -> u64 {
    2 * 86_400
}
fn default_delta_validity() -> u64 {
    1_800
}

impl Default for CrlSection {
    fn default() -> Self {
        CrlSection {
            dir: default_crl_dir(),
            full_every_seconds: default_full_every(),
            delta_every_seconds: default_delta_every(),
            full_validity_seconds: default_full_validity(),
            delta_validity_seconds: default_delta_validity(),
            root_every_seconds: default_root_every(),
            root_validity_seconds: default_root_validity(),
        }
    }
}

/// `[audit]`: checkpoints of the audit chain's head, signed with an audit key in the HSM and
/// anchored in a file outside the database (docs/audit.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditSection {
    /// The audit key's token label (generated at the first checkpoint).
    #[serde(default = "default_audit_key")]
    pub key_label: String,
    /// The anchor: every checkpoint appended as a JSON line (ship it off the host).
    #[serde(default = "default_audit_anchor")]
    pub anchor_file: PathBuf,
    /// `nesca serve` checkpoints once this many records came since the last checkpoint…
    #[serde(default = "default_audit_records")]
    pub checkpoint_every_records: u64,
    /// …or this many seconds passed with at least one.
    #[serde(default = "default_audit_seconds")]
    pub checkpoint_every_seconds: u64,
}

fn default_audit_key() -> String {
    "nesca-audit".into()
}
fn default_audit_anchor() -> PathBuf {
    "audit-anchor.jsonl".into()
}
fn default_audit_records() -> u64 {
    100
}
fn default_audit_seconds() -> u64 {
    60
}

impl Default for AuditSection {
    fn default() -> Self {
        AuditSection {
            key_label: default_audit_key(),
            anchor_file: default_audit_anchor(),
            checkpoint_every_records: default_audit_records(),
            checkpoint_every_seconds: default_audit_seconds(),
        }
    }
}

/// `[admin]`: the admin API (docs/admin.md): its mTLS listener, dual control, operator
/// certificates and rate limit.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AdminSection {
    /// The admin API's mTLS listener. Unset: `nesca serve` serves no admin API.
    #[serde(default)]
    pub listen: Option<String>,
    /// The listener's certificate chain, PEM (`nesca admin tls-cert` writes it).
    #[serde(default = "default_admin_cert")]
    pub tls_cert: PathBuf,
    /// Its private key, PEM, mode 0600.
    #[serde(default = "default_admin_key")]
    pub tls_key: PathBuf,
    /// Operators a dual-control request needs in all, the requester counting as one (2–5).
    #[serde(default = "default_approvals")]
    pub approvals_required: u32,
    /// How long a dual-control request waits for its approvals.
    #[serde(default = "default_request_expiry")]
    pub request_expiry_seconds: u64,
    /// Validity of an operator certificate, in days (at most 825).
    #[serde(default = "default_operator_days")]
    pub operator_validity_days: u32,
    /// Requests one operator certificate may make per minute.
    #[serde(default = "default_admin_rate")]
    pub requests_per_minute: u32,
}

fn default_admin_cert() -> PathBuf {
    "admin-tls.pem".into()
}
fn default_admin_key() -> PathBuf {
    "admin-tls.key".into()
}
fn default_approvals() -> u32 {
    2
}
fn default_request_expiry() -> u64 {
    86_400
}
fn default_operator_days() -> u32 {
    365
}
fn default_admin_rate() -> u32 {
    120
}

impl Default for AdminSection {
    fn default() -> Self {
        AdminSection {
            listen: None,
            tls_cert: default_admin_cert(),
            tls_key: default_admin_key(),
            approvals_required: default_approvals(),
            request_expiry_seconds: default_request_expiry(),
            operator_validity_days: default_operator_days(),
            requests_per_minute: default_admin_rate(),
        }
    }
}

/// `[portal]`: the holders' and applicants' web pages (docs/portal.md), served over TLS by
/// `nesca serve`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PortalSection {
    /// The portal's TLS listener. Unset: `nesca serve` serves no portal.
    #[serde(default)]
    pub listen: Option<String>,
    /// The listener's certificate chain, PEM (`nesca portal tls-cert` writes it).
    #[serde(default = "default_portal_cert")]
    pub tls_cert: PathBuf,
    /// Its private key, PEM, mode 0600.
    #[serde(default = "default_portal_key")]
    pub tls_key: PathBuf,
    /// The address people reach the portal at (`https://…/`), for the links in e-mails and
    /// SMS; unset: `https://` and the listen address.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Where a holder renews a certificate (the ESHS's renewal page), the link of the expiry
    /// reminders; unset: the portal's home page.
    #[serde(default)]
    pub renewal_url: Option<String>,
}

fn default_portal_cert() -> PathBuf {
    "portal-tls.pem".into()
}
fn default_portal_key() -> PathBuf {
    "portal-tls.key".into()
}

impl Default for PortalSection {
    fn default() -> Self {
        PortalSection {
            listen: None,
            tls_cert: default_portal_cert(),
            tls_key: default_portal_key(),
            public_url: None,
            renewal_url: None,
        }
    }
}

impl PortalSection {
    /// Where people reach the portal, ending in `/`: `public_url`, else `https://` and the
    /// listen address; `None` when neither is set.
    pub(crate) fn url(&self) -> Option<String> {
        let url = match (&self.public_url, &self.listen) {
            (Some(u), _) => u.clone(),
            (None, Some(l)) => format!("https://{l}/"),
            (None, None) => return None,
        };
        Some(if url.ends_with('/') {
            url
        } else {
            format!("{url}/")
        })
    }

    /// The link of the expiry reminders: `renewal_url`, else the portal's home page.
    pub(crate) fn renewal_link(&self) -> Option<String> {
        self.renewal_url.clone().or_else(|| self.url())
    }
}

/// `[ocsp]`: the OCSP responder, in `nesca serve` and in `nesca ocsp`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OcspSection {
    /// Listener of the standalone responder (`nesca ocsp`); `nesca serve` uses server.listen.
    #[serde(default = "default_ocsp_listen")]
    pub listen: String,
    /// nextUpdate − thisUpdate of a response.
    #[serde(default = "default_ocsp_validity")]
    pub validity_seconds: u64,
    /// A pre-produced response is signed again when its nextUpdate is this close.
    #[serde(default = "default_ocsp_refresh")]
    pub refresh_before_seconds: u64,
    /// How often the responder looks for status changes in the store.
    #[serde(default = "default_ocsp_poll")]
    pub poll_interval_ms: u64,
    /// Largest request body accepted; larger ones get malformedRequest.
    #[serde(default = "default_ocsp_body")]
    pub max_request_bytes: usize,
    /// Upper bound of `Cache-Control: max-age` on GET answers: how long an HTTP cache in front
    /// of the responder may keep an answer (never past its nextUpdate).
    #[serde(default = "default_ocsp_max_age")]
    pub max_age_seconds: u64,
    /// Responses signed live per second at most (requests with a nonce, unseen serials); past
    /// it the pre-produced response answers without the nonce, or tryLater.
    #[serde(default = "default_ocsp_live_per_second")]
    pub live_signatures_per_second: u32,
    /// The delegated OCSP signer is renewed (new key in the HSM, new certificate from the CA)
    /// when less than this share of its validity remains, or when it has expired.
    #[serde(default = "default_signer_renewal_share")]
    pub signer_renewal_share: f64,
    /// How often `nesca serve` and `nesca ocsp` look at their signers: renew one that is due,
    /// take up one that another process renewed.
    #[serde(default = "default_signer_check_seconds")]
    pub signer_check_seconds: u64,
}

fn default_signer_renewal_share() -> f64 {
    1.0 / 3.0
}

fn default_signer_check_seconds() -> u64 {
    600
}

fn default_ocsp_live_per_second() -> u32 {
    200
}

fn default_ocsp_max_age() -> u64 {
    3_600
}

fn default_ocsp_listen() -> String {
    "127.0.0.1:8081".into()
}
fn default_ocsp_validity() -> u64 {
    86_400
}
fn default_ocsp_refresh() -> u64 {
    43_200
}
fn default_ocsp_poll() -> u64 {
    1_000
}
fn default_ocsp_body() -> usize {
    8_192
}

impl Default for OcspSection {
    fn default() -> Self {
        OcspSection {
            listen: default_ocsp_listen(),
            validity_seconds: default_ocsp_validity(),
            refresh_before_seconds: default_ocsp_refresh(),
            poll_interval_ms: default_ocsp_poll(),
            max_request_bytes: default_ocsp_body(),
            max_age_seconds: default_ocsp_max_age(),
            live_signatures_per_second: default_ocsp_live_per_second(),
            signer_renewal_share: default_signer_renewal_share(),
            signer_check_seconds: default_signer_check_seconds(),
        }
    }
}

/// `[ca]`: the CAs nesca runs and where relying parties reach them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CaSection {
    /// Id of the issuing CA (used in URLs: `/crl/{id}.crl`, `/ca/{id}.crt`).
    pub id: String,
    /// Id of the root CA.
    #[serde(default = "default_root_id")]
    pub root_id: String,
    /// Public base URL written into every certificate (AIA, CDP); http://.
    pub public_url: String,
    /// Organisation name in the CA subjects.
    pub organization: String,
    /// Country in the CA subjects.
    #[serde(default = "default_country")]
    pub country: String,
    /// Common names of the root CA, the issuing CA and the OCSP signer.
    pub root_common_name: String,
    pub issuing_common_name: String,
    pub ocsp_common_name: String,
    /// Key algorithm of the CA keys `init` generates.
    #[serde(default = "default_algorithm")]
    pub key_algorithm: String,
    /// Validity, in days, of the certificates `init` creates.
    #[serde(default = "default_root_days")]
    pub root_validity_days: u32,
    #[serde(default = "default_issuing_days")]
    pub issuing_validity_days: u32,
    #[serde(default = "default_ocsp_days")]
    pub ocsp_validity_days: u32,
}

/// `[hsm]`: the PKCS#11 token. The PIN comes from `pin_file` or `pin_env`, never from here.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HsmSection {
    /// Path of the vendor's PKCS#11 module.
    pub module: PathBuf,
    /// Label of the token holding the CA keys.
    pub token_label: String,
    /// File holding the user PIN (must not be readable by group or others).
    #[serde(default)]
    pub pin_file: Option<PathBuf>,
    /// Name of an environment variable holding the user PIN.
    #[serde(default)]
    pub pin_env: Option<String>,
    /// SoftHSM only: its configuration file, set as SOFTHSM2_CONF before the module loads.
    #[serde(default)]
    pub softhsm_conf: Option<PathBuf>,
    /// Sessions (signing workers) in the pool.
    #[serde(default = "default_sessions")]
    pub sessions: usize,
    /// Sessions of their own for the OCSP signers (0: they share `sessions`).
    #[serde(default = "default_ocsp_sessions")]
    pub ocsp_sessions: usize,
    /// Allow wrapping card keys with RSA-OAEP SHA-1 when the token refuses RSA-OAEP SHA-256
    /// (SoftHSM 2.6.1 does). Default false: such a token wraps nothing.
    #[serde(default)]
    pub allow_rsa_oaep_sha1_wrap: bool,
    /// On a token whose AES key wrap with padding is not RFC 5649 (SoftHSM 2.6.1 zero-pads the
    /// key first), let nesca re-wrap card keys exactly per RFC 5649; the card key then passes
    /// through nesca's memory. Default false: such a token wraps no card key.
    #[serde(default)]
    pub aes_key_wrap_repair: bool,
}

/// `[store]`: SQLite (`sqlite`) or PostgreSQL (`postgres_url`), exactly one.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StoreSection {
    /// Path of the SQLite database file (one host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sqlite: Option<PathBuf>,
    /// `postgres://USER@HOST:PORT/DB`: the database several nodes share. No password in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres_url: Option<String>,
    /// The environment variable holding the PostgreSQL password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres_password_env: Option<String>,
    /// A file (mode 0600) holding the PostgreSQL password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres_password_file: Option<PathBuf>,
    /// `disable` (default) or `verify-full` (TLS, the server's certificate checked against
    /// `postgres_ca_file` and its name against the URL's host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres_tls: Option<String>,
    /// PEM file of the CA certificates that issue the PostgreSQL server's certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres_ca_file: Option<PathBuf>,
    /// Connections each process keeps for reads (1–64, default 8), besides its writer's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres_pool: Option<usize>,
}

/// Which store a configuration names.
#[derive(Debug, Clone)]
pub(crate) enum StoreChoice {
    /// A SQLite file (resolved against the configuration's directory).
    Sqlite(PathBuf),
    /// A PostgreSQL database; the password is read when the store is opened.
    Postgres {
        url: String,
        tls: ca_core::store::PgTls,
        pool: usize,
    },
}

/// A PostgreSQL option the store refused (`CaError::Invalid` names its field, such as
/// `store.postgres_url` or `store.postgres_ca_file`) as the configuration error it is.
pub(crate) fn store_option_refused(e: ca_core::CaError) -> CliError {
    match e {
        ca_core::CaError::Invalid { field, rule } => CliError::config(field, rule),
        other => other.into(),
    }
}

/// `[store]`: exactly one of `sqlite` and `postgres_url`; the PostgreSQL options only with
/// `postgres_url`, at most one password source, a known `postgres_tls` with its CA file.
fn check_store(s: &StoreSection, resolve: impl Fn(&Path) -> PathBuf) -> Result<StoreChoice> {
    let url = match (&s.sqlite, &s.postgres_url) {
        (Some(path), None) => {
            let pg_options = s.postgres_password_env.is_some()
                || s.postgres_password_file.is_some()
                || s.postgres_ca_file.is_some()
                || s.postgres_tls.is_some()
                || s.postgres_pool.is_some();
            if pg_options {
                return Err(CliError::config(
                    "store",
                    "postgres_password_env, postgres_password_file, postgres_tls, postgres_ca_file and postgres_pool go with postgres_url, not sqlite",
                ));
            }
            return Ok(StoreChoice::Sqlite(resolve(path)));
        }
        (None, Some(url)) => url,
        (Some(_), Some(_)) => {
            return Err(CliError::config(
                "store",
                "set either sqlite or postgres_url, not both",
            ))
        }
        (None, None) => {
            return Err(CliError::config(
                "store",
                "set sqlite (a database file) or postgres_url (postgres://USER@HOST:PORT/DB)",
            ))
        }
    };
    if s.postgres_password_env.is_some() && s.postgres_password_file.is_some() {
        return Err(CliError::config(
            "store.postgres_password_file",
            "set postgres_password_env or postgres_password_file, not both",
        ));
    }
    let pool = s.postgres_pool.unwrap_or(8);
    if !(1..=64).contains(&pool) {
        return Err(CliError::config(
            "store.postgres_pool",
            "must be between 1 and 64",
        ));
    }
    let tls = match (
        s.postgres_tls.as_deref().unwrap_or("disable"),
        &s.postgres_ca_file,
    ) {
        ("disable", None) => ca_core::store::PgTls::Disable,
        ("disable", Some(_)) => {
            return Err(CliError::config(
                "store.postgres_ca_file",
                "is used only with postgres_tls = \"verify-full\"",
            ))
        }
        ("verify-full", Some(ca)) => ca_core::store::PgTls::VerifyFull {
            ca_file: resolve(ca),
        },
        ("verify-full", None) => {
            return Err(CliError::config(
                "store.postgres_ca_file",
                "is required with postgres_tls = \"verify-full\" (the CA certificates of the server's certificate, PEM)",
            ))
        }
        (other, _) => {
            return Err(CliError::config(
                "store.postgres_tls",
                format!("\"{other}\" must be disable or verify-full"),
            ))
        }
    };
    // The URL's own checks (it parses, names a user, holds no password) are the store's.
    ca_core::store::PgOptions {
        url: url.clone(),
        password: None,
        tls: tls.clone(),
        pool_size: pool,
    }
    .check()
    .map_err(store_option_refused)?;
    Ok(StoreChoice::Postgres {
        url: url.clone(),
        tls,
        pool,
    })
}

/// `[profile.*]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProfileSection {
    pub nes: NesProfileConfig,
    /// `[profile.partner]`: role and secure-communication certificates of licensed ESHS
    /// partners; optional, every key has a default.
    #[serde(default)]
    pub partner: PartnerProfileConfig,
}

/// A configuration read from a file, with its paths resolved and its values checked.
#[derive(Clone)]
pub(crate) struct Loaded {
    pub file: PathBuf,
    pub raw: Config,
    pub issuing_id: IssuerId,
    pub root_id: IssuerId,
    pub key_algorithm: KeyAlgorithm,
    pub nes: NesProfile,
    /// The partner role-certificate profile (`[profile.partner]`).
    pub partner_role: PartnerCertProfile,
    /// The partner secure-communication-certificate profile (`[profile.partner]`).
    pub partner_secure_comm: PartnerCertProfile,
    pub urls: CaUrls,
    /// The store `[store]` names.
    pub store: StoreChoice,
}

impl Loaded {
    pub(crate) fn read(path: &Path) -> Result<Loaded> {
        let text = std::fs::read_to_string(path)
            .map_err(CliError::io("cannot read configuration", path))?;
        let raw: Config = toml::from_str(&text).map_err(|e| {
            // toml's Display spans several lines with a source excerpt; keep the message and
            // say where it is.
            let line = e
                .span()
                .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
            let place = match line {
                Some(n) => format!("configuration {} line {n}", path.display()),
                None => format!("configuration {}", path.display()),
            };
            CliError::config(&place, e.message().trim())
        })?;
        Loaded::check(path, raw)
    }

    pub(crate) fn check(path: &Path, raw: Config) -> Result<Loaded> {
        let config_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let store = check_store(&raw.store, |p| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                config_dir.join(p)
            }
        })?;
        let issuing_id =
            IssuerId::parse(&raw.ca.id).map_err(|e| CliError::config("ca.id", e.rule()))?;
        let root_id = IssuerId::parse(&raw.ca.root_id)
            .map_err(|e| CliError::config("ca.root_id", e.rule()))?;
        if issuing_id == root_id {
            return Err(CliError::config("ca.root_id", "must differ from ca.id"));
        }
        let key_algorithm = raw
            .ca
            .key_algorithm
            .parse()
            .map_err(|e: hsm::HsmError| CliError::config("ca.key_algorithm", e.to_string()))?;
        let nes = NesProfile::from_config(&raw.profile.nes)?;
        let partner_role =
            PartnerCertProfile::from_config(PartnerCertKind::Role, &raw.profile.partner)?;
        let partner_secure_comm =
            PartnerCertProfile::from_config(PartnerCertKind::SecureComm, &raw.profile.partner)?;
        let urls = CaUrls::new(&raw.ca.public_url, &issuing_id)?;
        if raw.hsm.sessions == 0 || raw.hsm.sessions > 64 {
            return Err(CliError::config("hsm.sessions", "must be between 1 and 64"));
        }
        if raw.hsm.ocsp_sessions > 16 {
            return Err(CliError::config(
                "hsm.ocsp_sessions",
                "must be between 0 and 16",
            ));
        }
        check_listen("server.listen", &raw.server.listen)?;
        check_listen("ocsp.listen", &raw.ocsp.listen)?;
        check_server_limits(&raw.server)?;
        let o = &raw.ocsp;
        if o.validity_seconds < 60 || o.validity_seconds > 7 * 86_400 {
            return Err(CliError::config(
                "ocsp.validity_seconds",
                "must be between 60 and 604800 (7 days)",
            ));
        }
        if o.refresh_before_seconds >= o.validity_seconds {
            return Err(CliError::config(
                "ocsp.refresh_before_seconds",
                "must be less than ocsp.validity_seconds",
            ));
        }
        if o.poll_interval_ms < 10 || o.poll_interval_ms > 600_000 {
            return Err(CliError::config(
                "ocsp.poll_interval_ms",
                "must be between 10 and 600000",
            ));
        }
        if o.max_request_bytes < 64 || o.max_request_bytes > 65_536 {
            return Err(CliError::config(
                "ocsp.max_request_bytes",
                "must be between 64 and 65536",
            ));
        }
        if !(o.signer_renewal_share > 0.0 && o.signer_renewal_share < 1.0) {
            return Err(CliError::config(
                "ocsp.signer_renewal_share",
                "must be more than 0 and less than 1 (the share of the signer's validity left when it is renewed)",
            ));
        }
        // The audit key signs checkpoints only: never a CA's or an OCSP signer's key.
        let audit_label = &raw.audit.key_label;
        let ca_ids = [raw.ca.id.as_str(), raw.ca.root_id.as_str()];
        if audit_label.is_empty()
            || audit_label.contains(':')
            || ca_ids
                .iter()
                .any(|id| audit_label == id || audit_label.starts_with(&format!("{id}-ocsp")))
        {
            return Err(CliError::config(
                "audit.key_label",
                "must name a key of its own: not empty, no ':', not a CA's id or an OCSP signer's label",
            ));
        }
        if !(1..=86_400).contains(&o.signer_check_seconds) {
            return Err(CliError::config(
                "ocsp.signer_check_seconds",
                "must be between 1 and 86400",
            ));
        }
        if !(1..=100_000).contains(&o.live_signatures_per_second) {
            return Err(CliError::config(
                "ocsp.live_signatures_per_second",
                "must be between 1 and 100000",
            ));
        }
        if let Some(listen) = &raw.channels.listen {
            check_listen("channels.listen", listen)?;
            if raw.channels.tls_cert.is_none() || raw.channels.tls_key.is_none() {
                return Err(CliError::config(
                    "channels",
                    "listen needs tls_cert and tls_key (the listener is mTLS only)",
                ));
            }
        }
        check_admin(&raw.admin)?;
        check_portal(&raw.portal)?;
        if !(1..=30 * 86_400).contains(&raw.channels.commitment_deadline_seconds) {
            return Err(CliError::config(
                "channels.commitment_deadline_seconds",
                "must be between 1 and 2592000 (30 days)",
            ));
        }
        if !(1..=3_600).contains(&raw.outbox.interval_seconds) {
            return Err(CliError::config(
                "outbox.interval_seconds",
                "must be between 1 and 3600",
            ));
        }
        if raw.outbox.from.is_empty()
            || !raw.outbox.from.contains('@')
            || raw.outbox.from.chars().any(|c| c.is_control() || c == ' ')
        {
            return Err(CliError::config("outbox.from", "must be an e-mail address"));
        }
        if let Some(p) = &raw.production {
            check_production(p)?;
        }
        if let Some(smtp) = &raw.outbox.smtp {
            check_smtp(smtp)?;
        }
        if raw
            .outbox
            .sms_command
            .as_ref()
            .is_some_and(|c| c.is_empty() || c[0].is_empty())
        {
            return Err(CliError::config(
                "outbox.sms_command",
                "must name a program",
            ));
        }
        if !(1..=3_600).contains(&raw.channels.commitment_sweep_seconds) {
            return Err(CliError::config(
                "channels.commitment_sweep_seconds",
                "must be between 1 and 3600",
            ));
        }
        for (i, p) in raw.plugins.iter().enumerate() {
            if p.timeout_ms < 10 || p.timeout_ms > 600_000 {
                return Err(CliError::config(
                    &format!("plugins[{i}].timeout_ms"),
                    "must be between 10 and 600000",
                ));
            }
            if p.max_in_flight == 0 || p.max_in_flight > 1024 {
                return Err(CliError::config(
                    &format!("plugins[{i}].max_in_flight"),
                    "must be between 1 and 1024",
                ));
            }
            if p.max_body_bytes < 1024 || p.max_body_bytes > 128 << 20 {
                return Err(CliError::config(
                    &format!("plugins[{i}].max_body_bytes"),
                    "must be between 1024 and 134217728 (128 MiB)",
                ));
            }
        }
        if raw.hsm.pin_file.is_none() && raw.hsm.pin_env.is_none() {
            return Err(CliError::config(
                "hsm",
                "set pin_file or pin_env (the PIN itself never goes in the configuration)",
            ));
        }
        Ok(Loaded {
            file: path.to_path_buf(),
            raw,
            issuing_id,
            root_id,
            key_algorithm,
            nes,
            partner_role,
            partner_secure_comm,
            urls,
            store,
        })
    }

    /// The PostgreSQL password from `postgres_password_env` or `postgres_password_file`,
    /// `None` when neither is set (the server trusts the connection, or a client
    /// certificate).
    pub(crate) fn postgres_password(&self) -> Result<Option<SecretString>> {
        let s = &self.raw.store;
        if let Some(var) = &s.postgres_password_env {
            return match std::env::var(var) {
                Ok(v) if !v.is_empty() => Ok(Some(SecretString::from(v))),
                _ => Err(CliError::config(
                    "store.postgres_password_env",
                    format!(
                        "environment variable {var} holding the PostgreSQL password is not set"
                    ),
                )),
            };
        }
        match &s.postgres_password_file {
            Some(file) => {
                read_secret_file("store.postgres_password_file", "password", &self.path(file))
                    .map(Some)
            }
            None => Ok(None),
        }
    }

    /// The store as people name it: the SQLite file, or the PostgreSQL URL (which holds no
    /// password).
    pub(crate) fn store_location(&self) -> String {
        match &self.store {
            StoreChoice::Sqlite(path) => path.display().to_string(),
            StoreChoice::Postgres { url, .. } => url.clone(),
        }
    }

    /// The checked profile of one kind of partner certificate.
    pub(crate) fn partner_profile(&self, kind: PartnerCertKind) -> &PartnerCertProfile {
        match kind {
            PartnerCertKind::Role => &self.partner_role,
            PartnerCertKind::SecureComm => &self.partner_secure_comm,
        }
    }

    /// The directory relative paths start from.
    pub(crate) fn dir(&self) -> PathBuf {
        self.file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    /// Resolves a configured path against the configuration's directory.
    pub(crate) fn path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir().join(p)
        }
    }

    /// The RSA mechanisms card keys may be wrapped with (`[hsm] allow_rsa_oaep_sha1_wrap`), and
    /// whether a token's AES key wrap may be repaired (`[hsm] aes_key_wrap_repair`).
    pub(crate) fn wrap_policy(&self) -> hsm::WrapPolicy {
        hsm::WrapPolicy {
            allow_rsa_oaep_sha1: self.raw.hsm.allow_rsa_oaep_sha1_wrap,
            aes_key_wrap_repair: self.raw.hsm.aes_key_wrap_repair,
        }
    }

    /// Reads the user PIN from `pin_file` or `pin_env`.
    pub(crate) fn pin(&self) -> Result<SecretString> {
        if let Some(var) = &self.raw.hsm.pin_env {
            return match std::env::var(var) {
                Ok(v) if !v.is_empty() => Ok(SecretString::from(v)),
                _ => Err(CliError::config(
                    "hsm.pin_env",
                    format!("environment variable {var} holding the HSM PIN is not set"),
                )),
            };
        }
        let file = self.path(self.raw.hsm.pin_file.as_deref().unwrap_or(Path::new("")));
        read_pin_file(&file)
    }
}

fn check_production(p: &ProductionSection) -> Result<()> {
    match p.key_source.as_str() {
        "hsm" => match &p.transport_key {
            None => Err(CliError::config(
                "production.transport_key",
                "is required with key_source = \"hsm\" (the id of the card personalisation system's registered transport key, nesca transport-key add)",
            )),
            Some(id) => ca_core::transport_key::TransportKeyId::parse("transport_key", id)
                .map(|_| ())
                .map_err(|_| {
                    CliError::config(
                        "production.transport_key",
                        "must be a transport key id: 64 lower-case hex digits (nesca transport-key list)",
                    )
                }),
        }
        .and_then(|()| p
            .key_algorithm
            .parse::<KeyAlgorithm>()
            .map(|_| ())
            .map_err(|e| CliError::config("production.key_algorithm", e.to_string()))),
        "card-bureau-csr" => Ok(()),
        other => Err(CliError::config(
            "production.key_source",
            format!("\"{other}\" must be hsm or card-bureau-csr"),
        )),
    }?;
    if !(1..=86_400).contains(&p.interval_seconds) {
        return Err(CliError::config(
            "production.interval_seconds",
            "must be between 1 and 86400",
        ));
    }
    Ok(())
}

/// `[outbox.smtp]`: a host, a known `tls`, a username with a password, a timeout within
/// bounds; and no AUTH in the clear over the network: with `tls = "none"`
/// a username or password is allowed only for a relay on this host.
fn check_smtp(smtp: &SmtpSection) -> Result<()> {
    if smtp.host.is_empty()
        || smtp
            .host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(CliError::config(
            "outbox.smtp.host",
            "must be a host name or address",
        ));
    }
    if !["starttls", "tls", "none"].contains(&smtp.tls.as_str()) {
        return Err(CliError::config(
            "outbox.smtp.tls",
            "must be starttls, tls or none",
        ));
    }
    if smtp.password_env.is_some() && smtp.username.is_none() {
        return Err(CliError::config(
            "outbox.smtp.username",
            "is needed with password_env",
        ));
    }
    if !(1..=300).contains(&smtp.timeout_seconds) {
        return Err(CliError::config(
            "outbox.smtp.timeout_seconds",
            "must be between 1 and 300",
        ));
    }
    let authenticates = smtp.username.is_some() || smtp.password_env.is_some();
    if smtp.tls == "none" && authenticates && !is_loopback_host(&smtp.host) {
        return Err(CliError::config(
            "outbox.smtp.tls",
            format!(
                "\"none\" with username or password_env sends the password in the clear; it is allowed only for a relay on this host (127.0.0.0/8, ::1, localhost), not \"{}\": use starttls or tls",
                smtp.host
            ),
        ));
    }
    Ok(())
}

/// Whether `host` names this host: `localhost` (any case, a trailing dot allowed), an address
/// in 127.0.0.0/8, or `::1` (bracketed or not). A name that merely resolves to one is not.
fn is_loopback_host(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// The listeners' timeouts and connection limits: each within a ceiling, so that a typo
/// cannot turn the slow-loris protection off.
fn check_server_limits(s: &ServerSection) -> Result<()> {
    let within = |field: &str, value: u64, range: std::ops::RangeInclusive<u64>| {
        if range.contains(&value) {
            Ok(())
        } else {
            Err(CliError::config(
                field,
                format!(
                    "must be between {} and {}, not {value}",
                    range.start(),
                    range.end()
                ),
            ))
        }
    };
    within(
        "server.header_read_timeout_seconds",
        s.header_read_timeout_seconds,
        1..=30,
    )?;
    within(
        "server.idle_timeout_seconds",
        s.idle_timeout_seconds,
        1..=75,
    )?;
    within(
        "server.request_timeout_seconds",
        s.request_timeout_seconds,
        1..=300,
    )?;
    within(
        "server.max_connections",
        s.max_connections.into(),
        1..=65_536,
    )?;
    within(
        "server.lookup_per_minute",
        s.lookup_per_minute.into(),
        1..=60_000,
    )?;
    if s.max_connections_per_ip == 0 || s.max_connections_per_ip > s.max_connections {
        return Err(CliError::config(
            "server.max_connections_per_ip",
            format!(
                "must be between 1 and server.max_connections ({}), not {}",
                s.max_connections, s.max_connections_per_ip
            ),
        ));
    }
    Ok(())
}

fn check_listen(field: &str, addr: &str) -> Result<()> {
    addr.parse::<std::net::SocketAddr>()
        .map(|_| ())
        .map_err(|_| {
            CliError::config(
                field,
                format!("\"{addr}\" is not an address and port such as 127.0.0.1:8080"),
            )
        })
}

/// `[admin]`: each option within its range.
fn check_admin(a: &AdminSection) -> Result<()> {
    if let Some(listen) = &a.listen {
        check_listen("admin.listen", listen)?;
    }
    if !(2..=5).contains(&a.approvals_required) {
        return Err(CliError::config(
            "admin.approvals_required",
            "must be between 2 and 5 (the requester counts as one)",
        ));
    }
    if !(60..=7 * 86_400).contains(&a.request_expiry_seconds) {
        return Err(CliError::config(
            "admin.request_expiry_seconds",
            "must be between 60 and 604800 (7 days)",
        ));
    }
    let ceiling = ca_core::profile::SERVICE_VALIDITY_CEILING_DAYS;
    if !(1..=ceiling).contains(&a.operator_validity_days) {
        return Err(CliError::config(
            "admin.operator_validity_days",
            format!("must be between 1 and {ceiling}"),
        ));
    }
    if !(1..=100_000).contains(&a.requests_per_minute) {
        return Err(CliError::config(
            "admin.requests_per_minute",
            "must be between 1 and 100000",
        ));
    }
    Ok(())
}

/// `[portal]`: a listen address, https URLs; a public URL when the listener binds every
/// address (the links would name none people can reach).
fn check_portal(p: &PortalSection) -> Result<()> {
    if let Some(listen) = &p.listen {
        check_listen("portal.listen", listen)?;
        let unspecified = listen
            .parse::<std::net::SocketAddr>()
            .is_ok_and(|a| a.ip().is_unspecified());
        if unspecified && p.public_url.is_none() {
            return Err(CliError::config(
                "portal.public_url",
                format!("must be set when portal.listen ({listen}) binds every address: the links in e-mails and SMS need an address people reach"),
            ));
        }
    }
    for (field, url) in [
        ("portal.public_url", &p.public_url),
        ("portal.renewal_url", &p.renewal_url),
    ] {
        let Some(url) = url else { continue };
        let ok = url.strip_prefix("https://").is_some_and(|rest| {
            !rest.is_empty()
                && url.len() <= 200
                && !url.chars().any(|c| c.is_whitespace() || c.is_control())
        });
        if !ok {
            return Err(CliError::config(
                field,
                "must be an https:// URL of at most 200 characters without spaces",
            ));
        }
    }
    Ok(())
}

/// Refuses a secret's file (a PIN, a private key) that group or others can read.
pub(crate) fn check_private_file(field: &str, file: &Path) -> Result<()> {
    let meta = std::fs::metadata(file)
        .map_err(|e| CliError::config(field, format!("cannot read {}: {e}", file.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(CliError::config(
                field,
                format!(
                    "{} is readable by group or others (mode {mode:o}); run chmod 600 on it",
                    file.display()
                ),
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    Ok(())
}

/// Reads a PIN file, refusing one that others can read. The PIN is never echoed.
pub(crate) fn read_pin_file(file: &Path) -> Result<SecretString> {
    read_secret_file("hsm.pin_file", "PIN", file)
}

/// Reads a file holding one secret (`what`: a PIN, a password) for the option `field`,
/// refusing one that others can read, or an empty one. The secret is never echoed.
pub(crate) fn read_secret_file(field: &str, what: &str, file: &Path) -> Result<SecretString> {
    check_private_file(field, file)?;
    let text = std::fs::read_to_string(file).map_err(|e| {
        CliError::config(
            field,
            format!("cannot read {what} file {}: {e}", file.display()),
        )
    })?;
    let secret = text.trim_end_matches(['\n', '\r']);
    if secret.is_empty() {
        return Err(CliError::config(
            field,
            format!("{what} file {} is empty", file.display()),
        ));
    }
    Ok(SecretString::from(secret.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `[store]` with `sqlite`, or `postgres_url`, and `edit` applied.
    fn store(postgres: bool, edit: impl FnOnce(&mut StoreSection)) -> Result<StoreChoice> {
        let mut s = StoreSection {
            sqlite: (!postgres).then(|| PathBuf::from("nesca.db")),
            postgres_url: postgres.then(|| "postgres://nesca@db.example:5432/nesca".into()),
            postgres_password_env: None,
            postgres_password_file: None,
            postgres_tls: None,
            postgres_ca_file: None,
            postgres_pool: None,
        };
        edit(&mut s);
        check_store(&s, |p| Path::new("/etc/nesca").join(p))
    }

    fn refusal(r: Result<StoreChoice>) -> (String, String) {
        match r {
            Err(CliError::Config { field, rule }) => (field, rule),
            other => panic!("not a configuration error: {other:?}"),
        }
    }

    #[test]
    fn the_store_is_sqlite_or_postgres_with_its_own_options() {
        assert!(matches!(
            store(false, |_| {}).unwrap(),
            StoreChoice::Sqlite(p) if p == Path::new("/etc/nesca/nesca.db")
        ));
        assert!(matches!(
            store(true, |_| {}).unwrap(),
            StoreChoice::Postgres {
                pool: 8,
                tls: ca_core::store::PgTls::Disable,
                ..
            }
        ));
        // Both, neither, and a PostgreSQL option beside sqlite: refused, naming `store`.
        let both = refusal(store(true, |s| s.sqlite = Some("nesca.db".into())));
        assert_eq!(both.0, "store");
        let neither = refusal(store(false, |s| s.sqlite = None));
        assert_eq!(neither.0, "store");
        for edit in [
            (|s: &mut StoreSection| s.postgres_pool = Some(3)) as fn(&mut StoreSection),
            |s| s.postgres_tls = Some("disable".into()),
            |s| s.postgres_password_env = Some("P".into()),
        ] {
            let (field, rule) = refusal(store(false, edit));
            assert_eq!(field, "store");
            assert!(rule.contains("go with postgres_url"), "{rule}");
        }
    }

    #[test]
    fn postgres_options_are_checked_and_refusals_name_one_field_once() {
        let (field, rule) = refusal(store(true, |s| {
            s.postgres_url = Some("postgres://nesca:secret@db.example/nesca".into())
        }));
        assert_eq!(field, "store.postgres_url");
        assert!(rule.starts_with("holds a password"), "{rule}");
        assert!(
            !rule.contains("secret") && !rule.contains("store.postgres_url"),
            "{rule}"
        );
        let (field, _) = refusal(store(true, |s| s.postgres_pool = Some(0)));
        assert_eq!(field, "store.postgres_pool");
        let (field, _) = refusal(store(true, |s| s.postgres_tls = Some("prefer".into())));
        assert_eq!(field, "store.postgres_tls");
        let (field, _) = refusal(store(true, |s| s.postgres_tls = Some("verify-full".into())));
        assert_eq!(field, "store.postgres_ca_file");
        let (field, _) = refusal(store(true, |s| s.postgres_ca_file = Some("ca.pem".into())));
        assert_eq!(field, "store.postgres_ca_file");
        let (field, _) = refusal(store(true, |s| {
            s.postgres_password_env = Some("P".into());
            s.postgres_password_file = Some("p".into());
        }));
        assert_eq!(field, "store.postgres_password_file");
        // A CA file that is not there: the store's own check, under its own field, once.
        let (field, rule) = refusal(store(true, |s| {
            s.postgres_tls = Some("verify-full".into());
            s.postgres_ca_file = Some("/nonexistent/ca.pem".into());
        }));
        assert_eq!(field, "store.postgres_ca_file");
        assert!(!rule.contains("store.postgres"), "{rule}");
    }

    fn server(edit: impl FnOnce(&mut ServerSection)) -> Result<()> {
        let mut s = ServerSection::default();
        edit(&mut s);
        check_server_limits(&s)
    }

    fn refused_field(r: Result<()>) -> String {
        match r {
            Err(CliError::Config { field, rule }) => {
                assert!(rule.contains("must be between"), "{rule}");
                field
            }
            other => panic!("not a configuration error: {other:?}"),
        }
    }

    #[test]
    fn listener_limits_default_and_are_read_from_server() {
        let s: ServerSection = toml::from_str("").unwrap();
        assert_eq!(
            (
                s.header_read_timeout_seconds,
                s.idle_timeout_seconds,
                s.request_timeout_seconds,
                s.max_connections,
                s.max_connections_per_ip
            ),
            (10, 60, 30, 1024, 64)
        );
        check_server_limits(&s).expect("the defaults are within their ranges");
        let s: ServerSection = toml::from_str(
            "header_read_timeout_seconds = 2\nidle_timeout_seconds = 3\n\
             request_timeout_seconds = 4\nmax_connections = 5\nmax_connections_per_ip = 5\n",
        )
        .unwrap();
        check_server_limits(&s).unwrap();
        assert_eq!(s.max_connections_per_ip, 5);
        // A negative count is refused as it is read.
        assert!(toml::from_str::<ServerSection>("max_connections = -1").is_err());
    }

    #[test]
    fn listener_limits_have_floors_and_ceilings() {
        type Edit = fn(&mut ServerSection, u64);
        let keys: [(&str, Edit, u64, u64); 4] = [
            (
                "server.header_read_timeout_seconds",
                |s, v| s.header_read_timeout_seconds = v,
                1,
                30,
            ),
            (
                "server.idle_timeout_seconds",
                |s, v| s.idle_timeout_seconds = v,
                1,
                75,
            ),
            (
                "server.request_timeout_seconds",
                |s, v| s.request_timeout_seconds = v,
                1,
                300,
            ),
            (
                "server.max_connections",
                |s, v| {
                    s.max_connections = v as u32;
                    s.max_connections_per_ip = 1;
                },
                1,
                65_536,
            ),
        ];
        for (field, set, low, high) in keys {
            server(|s| set(s, low)).unwrap_or_else(|e| panic!("{field} = {low}: {e}"));
            server(|s| set(s, high)).unwrap_or_else(|e| panic!("{field} = {high}: {e}"));
            assert_eq!(refused_field(server(|s| set(s, low - 1))), field);
            assert_eq!(refused_field(server(|s| set(s, high + 1))), field);
        }
    }

    #[test]
    fn the_per_address_limit_is_at_most_the_listener_limit() {
        let field = "server.max_connections_per_ip";
        assert_eq!(
            refused_field(server(|s| s.max_connections_per_ip = 0)),
            field
        );
        assert_eq!(
            refused_field(server(|s| {
                s.max_connections = 10;
                s.max_connections_per_ip = 11;
            })),
            field
        );
        server(|s| {
            s.max_connections = 10;
            s.max_connections_per_ip = 10;
        })
        .unwrap();
    }

    fn smtp(text: &str) -> Result<()> {
        check_smtp(&toml::from_str::<SmtpSection>(text).unwrap())
    }

    /// AUTH without TLS is refused for a relay on another host, naming the key and the rule;
    /// allowed on this host, and without credentials anywhere.
    #[test]
    fn smtp_auth_in_the_clear_only_on_this_host() {
        for host in [
            "mail.example.com",
            "10.0.0.5",
            "::2",
            "localhost.example.com",
        ] {
            for auth in [
                "username = \"nesca\"",
                "username = \"nesca\"\npassword_env = \"P\"",
            ] {
                let text = format!("host = \"{host}\"\ntls = \"none\"\n{auth}");
                match smtp(&text) {
                    Err(CliError::Config { field, rule }) => {
                        assert_eq!(field, "outbox.smtp.tls", "{text}");
                        assert!(rule.contains("only for a relay on this host"), "{rule}");
                        assert!(rule.contains(host), "{rule}");
                    }
                    other => panic!("{text}: {other:?}"),
                }
            }
        }
        for host in [
            "127.0.0.1",
            "127.10.0.1",
            "::1",
            "[::1]",
            "localhost",
            "LOCALHOST.",
        ] {
            smtp(&format!(
                "host = \"{host}\"\ntls = \"none\"\nusername = \"nesca\"\npassword_env = \"P\""
            ))
            .unwrap_or_else(|e| panic!("{host}: {e}"));
        }
        smtp("host = \"mail.example.com\"\ntls = \"none\"").unwrap();
        smtp("host = \"mail.example.com\"\ntls = \"starttls\"\nusername = \"nesca\"").unwrap();
        smtp("host = \"mail.example.com\"\nusername = \"nesca\"").unwrap();
    }

    #[test]
    fn the_lookup_rate_defaults_to_30_and_has_bounds() {
        let s: ServerSection = toml::from_str("").unwrap();
        assert_eq!(s.lookup_per_minute, 30);
        server(|s| s.lookup_per_minute = 1).unwrap();
        server(|s| s.lookup_per_minute = 60_000).unwrap();
        assert_eq!(
            refused_field(server(|s| s.lookup_per_minute = 0)),
            "server.lookup_per_minute"
        );
        assert_eq!(
            refused_field(server(|s| s.lookup_per_minute = 60_001)),
            "server.lookup_per_minute"
        );
    }

    /// `[production]` with HSM keys names a registered transport key by its id; the old bare
    /// key file is not a key any more; the SHA-1 wrap is off unless allowed.
    #[test]
    fn production_names_its_transport_key_by_id() {
        let production = |text: &str| -> Result<()> {
            let p: ProductionSection =
                toml::from_str(text).map_err(|e| CliError::config("production", e.to_string()))?;
            check_production(&p)
        };
        let field = |r: Result<()>| match r {
            Err(CliError::Config { field, rule }) => format!("{field}: {rule}"),
            other => panic!("not a configuration error: {other:?}"),
        };
        let id = "ab".repeat(32);
        production(&format!("key_source = \"hsm\"\ntransport_key = \"{id}\"\n")).unwrap();
        production("key_source = \"card-bureau-csr\"\n").unwrap();
        assert!(field(production("key_source = \"hsm\"\n"))
            .starts_with("production.transport_key: is required with key_source = \"hsm\""));
        assert!(field(production(&format!(
            "key_source = \"hsm\"\ntransport_key = \"{}\"\n",
            id.to_uppercase()
        )))
        .starts_with("production.transport_key: must be a transport key id"));
        assert!(field(production(
            "key_source = \"hsm\"\ntransport_public_key = \"t.der\"\n"
        ))
        .contains("transport_public_key"));
        let hsm: HsmSection = toml::from_str("module = \"m.so\"\ntoken_label = \"t\"\n").unwrap();
        assert!(!hsm.allow_rsa_oaep_sha1_wrap);
        assert!(!hsm.aes_key_wrap_repair);
        let hsm: HsmSection =
            toml::from_str("module = \"m.so\"\ntoken_label = \"t\"\naes_key_wrap_repair = true\n")
                .unwrap();
        assert!(hsm.aes_key_wrap_repair);
    }
}
