//! `nesca init`: create the CA hierarchy — as a self-contained demo with its own SoftHSM
//! token (`--demo --dir`), or on an existing token named in a configuration (`--config`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ca_core::bootstrap::{create_hierarchy, CaKey, HierarchyPlan};
use ca_core::engine::Engine;
use ca_core::name::organization_name;
use ca_core::store::{prelude::*, SqliteStore};
use clap::Args;
use hsm::{Hsm, KeyAlgorithm};
use rand::distributions::{Alphanumeric, DistString};
use secrecy::SecretString;

use super::{cert_pem, outln, write_new};
use crate::config::Loaded;
use crate::error::{CliError, Result};
use crate::wiring;

/// Where Debian's softhsm2 package puts the module.
const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The demo token's label.
pub(crate) const DEMO_TOKEN: &str = "nesca-demo";

/// Where `init` (and `nesca root init`) creates its CA: a demo of its own, or the token a
/// configuration names.
#[derive(Args)]
pub(crate) struct InitTarget {
    /// Create a self-contained demo: its own SoftHSM token, PIN file, database and configuration
    #[arg(long, requires = "dir", conflicts_with = "config")]
    demo: bool,
    /// Directory of the demo (created if missing)
    #[arg(long, requires = "demo")]
    dir: Option<PathBuf>,
    /// Public base URL written into certificates (AIA, CDP); demo only
    #[arg(long, default_value = "http://127.0.0.1:8080", requires = "demo")]
    public_url: String,
    /// Key algorithm of the CA keys: ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096
    #[arg(long)]
    algorithm: Option<KeyAlgorithm>,
    /// Use the existing token and settings in this nesca.toml (production)
    #[arg(long)]
    config: Option<PathBuf>,
    /// Demo only: keep the demo's store in this PostgreSQL database
    /// (postgres://USER@HOST:PORT/DB, no password in it) instead of a SQLite file
    #[arg(long, requires = "demo")]
    postgres_url: Option<String>,
}

#[derive(Args)]
pub(crate) struct InitArgs {
    #[command(flatten)]
    target: InitTarget,
    /// The root is offline (`nesca root`, on a token of its own): create only the issuing
    /// CA's key and write its certification request (`issuing-ca.csr`); install the
    /// certificate the root signs with `nesca ca import-cert`
    #[arg(long)]
    external_root: bool,
}

/// What `init` creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Root, issuing CA and its OCSP signer, on one token.
    Hierarchy,
    /// The issuing CA's key and its request to an offline root.
    ExternalRoot,
    /// An offline root alone (`nesca root init`).
    RootOnly,
}

pub(crate) fn run(a: InitArgs) -> Result<()> {
    let scope = if a.external_root {
        Scope::ExternalRoot
    } else {
        Scope::Hierarchy
    };
    init(a.target, scope)
}

/// `init` of `scope`, as a demo (`--demo --dir`) or on the token a configuration names.
pub(crate) fn init(target: InitTarget, scope: Scope) -> Result<()> {
    let InitTarget {
        demo: demo_flag,
        dir,
        public_url,
        algorithm,
        config,
        postgres_url,
    } = target;
    let public_url = public_url.as_str();
    match (demo_flag, dir, config) {
        (true, Some(dir), None) => demo(
            &dir,
            DemoOptions {
                public_url,
                algorithm,
                postgres_url: postgres_url.as_deref(),
            },
            scope,
        ),
        (false, None, Some(config)) => {
            let cfg = Loaded::read(&config)?;
            let created = create_ca(&cfg, algorithm, scope)?;
            print_created(&cfg, &created)
        }
        _ => Err(CliError::Argument {
            field: "init",
            rule: "give either --demo --dir DIR or --config FILE".into(),
        }),
    }
}

/// Files created so far; removed again unless the whole init succeeds.
struct Created {
    paths: Vec<PathBuf>,
    done: bool,
}

impl Created {
    fn add(&mut self, p: PathBuf) {
        self.paths.push(p);
    }
}

impl Drop for Created {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        for p in self.paths.iter().rev() {
            let _ = if p.is_dir() {
                std::fs::remove_dir_all(p)
            } else {
                std::fs::remove_file(p)
            };
        }
    }
}

/// How a demo is made.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DemoOptions<'a> {
    /// Public base URL written into certificates (AIA, CDP).
    pub public_url: &'a str,
    /// Key algorithm of the CA keys (default ECDSA P-256).
    pub algorithm: Option<KeyAlgorithm>,
    /// A PostgreSQL database for the store instead of `nesca.db`.
    pub postgres_url: Option<&'a str>,
}

impl<'a> DemoOptions<'a> {
    /// A demo at `public_url` with the default algorithm, on SQLite.
    pub(crate) fn at(public_url: &'a str) -> DemoOptions<'a> {
        DemoOptions {
            public_url,
            algorithm: None,
            postgres_url: None,
        }
    }
}

fn demo(dir: &Path, options: DemoOptions<'_>, scope: Scope) -> Result<()> {
    let demo = create_demo(dir, options, scope)?;
    outln!("nesca demo created in {}", demo.dir.display());
    outln!(
        "  SoftHSM token   \"{DEMO_TOKEN}\" in {} ({})",
        demo.dir.join("tokens").display(),
        demo.dir.join("softhsm2.conf").display()
    );
    outln!(
        "  user PIN        {} (mode 0600, referenced by the configuration, never written in it)",
        demo.dir.join("user-pin").display()
    );
    print_created(&demo.cfg, &demo.ca)
}

/// A demo CA, created.
pub(crate) struct Demo {
    pub dir: PathBuf,
    pub cfg: Loaded,
    ca: CreatedCa,
}

/// Creates a self-contained demo CA in `dir` (also used by the benchmark).
pub(crate) fn create_demo(dir: &Path, options: DemoOptions<'_>, scope: Scope) -> Result<Demo> {
    let DemoOptions {
        public_url,
        algorithm,
        postgres_url,
    } = options;
    // The demo's directory holds the store and the PINs: the owner's alone (0700).
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(CliError::io("cannot create directory", dir))?;
    let dir = std::fs::canonicalize(dir).map_err(CliError::io("cannot resolve directory", dir))?;
    let creates = [
        "nesca.toml",
        "nesca.db",
        "nesca.db-wal",
        "nesca.db-shm",
        "tokens",
        "user-pin",
        "so-pin",
        "softhsm2.conf",
    ];
    let pems = [
        "root-ca.pem",
        "issuing-ca.pem",
        "ocsp-signer.pem",
        "ca-chain.pem",
        "issuing-ca.csr",
        "admin-tls.pem",
        "admin-tls.key",
        "portal-tls.pem",
        "portal-tls.key",
    ];
    for name in creates.iter().chain(pems.iter()) {
        let p = dir.join(name);
        if p.exists() {
            return Err(CliError::AlreadyInitialised {
                dir: dir.display().to_string(),
                found: p.display().to_string(),
            });
        }
    }
    if !Path::new(SOFTHSM_MODULE).is_file() {
        return Err(CliError::Missing {
            what: "SoftHSM",
            detail: format!("no {SOFTHSM_MODULE}"),
            install: "apt-get install -y softhsm2",
        });
    }
    // The URL check comes before anything is created, and so does the store's: an existing
    // directory that others can read or write would hold the database.
    let host = demo_host(public_url)?;
    SqliteStore::check_permissions(&dir.join("nesca.db")).map_err(|e| CliError::Argument {
        field: "dir",
        rule: e.to_string(),
    })?;

    let mut created = Created {
        paths: Vec::new(),
        done: false,
    };
    let tokens = dir.join("tokens");
    std::fs::create_dir(&tokens).map_err(CliError::io("cannot create directory", &tokens))?;
    created.add(tokens.clone());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o700))
            .map_err(CliError::io("cannot protect", &tokens))?;
    }
    let softhsm_conf = dir.join("softhsm2.conf");
    let conf_text = format!("# SoftHSM configuration of this nesca demo\ndirectories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", tokens.display());
    write_new(&softhsm_conf, conf_text.as_bytes(), false)?;
    created.add(softhsm_conf.clone());

    let user_pin = Alphanumeric.sample_string(&mut rand::rngs::OsRng, 24);
    let so_pin = Alphanumeric.sample_string(&mut rand::rngs::OsRng, 24);
    let pin_file = dir.join("user-pin");
    write_new(&pin_file, user_pin.as_bytes(), true)?;
    created.add(pin_file.clone());
    let so_pin_file = dir.join("so-pin");
    write_new(&so_pin_file, so_pin.as_bytes(), true)?;
    created.add(so_pin_file.clone());
    Hsm::init_token(
        Path::new(SOFTHSM_MODULE),
        Some(&softhsm_conf),
        DEMO_TOKEN,
        &SecretString::from(so_pin),
        &SecretString::from(user_pin),
    )?;

    let algorithm = algorithm.unwrap_or(KeyAlgorithm::EcdsaP256);
    let config = dir.join("nesca.toml");
    write_new(
        &config,
        demo_config(public_url, &host, algorithm, scope, postgres_url).as_bytes(),
        false,
    )?;
    created.add(config.clone());
    let cfg = Loaded::read(&config)?;
    // Checked absent above: whatever of these exists after a failure, this run made.
    for name in ["nesca.db", "nesca.db-wal", "nesca.db-shm"]
        .iter()
        .chain(pems.iter())
    {
        created.add(dir.join(name));
    }
    let ca = create_ca(&cfg, None, scope)?;
    // The admin API's listener certificate, for 127.0.0.1 (admin.listen), from the new
    // issuing CA; an external root's demo gets it once the root signed (`nesca admin
    // tls-cert`).
    if scope == Scope::Hierarchy {
        use super::admin::{issue_listener_certificate, Listener};
        issue_listener_certificate(&cfg, Listener::Admin, Vec::new(), 365)?;
        issue_listener_certificate(&cfg, Listener::Portal, Vec::new(), 365)?;
    }
    created.done = true;
    Ok(Demo { dir, cfg, ca })
}

/// The host of the demo's public URL, for its CPS and PDS URLs.
fn demo_host(public_url: &str) -> Result<String> {
    let rest = public_url.strip_prefix("http://").ok_or_else(|| CliError::Argument {
        field: "public-url",
        rule: format!("\"{public_url}\" must start with http:// (relying parties fetch CRLs and OCSP over plain http)"),
    })?;
    let authority = rest.split('/').next().unwrap_or("");
    let host = if authority.starts_with('[') {
        authority
            .split(']')
            .next()
            .map(|h| format!("{h}]"))
            .unwrap_or_default()
    } else {
        authority.split(':').next().unwrap_or("").to_string()
    };
    if host.is_empty() || !host.is_ascii() || host.contains(char::is_whitespace) {
        return Err(CliError::Argument {
            field: "public-url",
            rule: format!("\"{public_url}\" has no usable host"),
        });
    }
    Ok(host)
}

fn demo_config(
    public_url: &str,
    host: &str,
    algorithm: KeyAlgorithm,
    scope: Scope,
    postgres_url: Option<&str>,
) -> String {
    let store = match postgres_url {
        // A TOML string, quoted and escaped as TOML writes it.
        Some(url) => format!("postgres_url = {}", toml::Value::String(url.to_owned())),
        None => "sqlite = \"nesca.db\"".to_owned(),
    };
    format!(
        r#"# nesca configuration (written by `nesca init --demo`). Every option is described in the
# README's "Configuration" section. Relative paths are relative to this file's directory.

[ca]
id = "nes-ca"
root_id = "root-ca"
public_url = "{public_url}"
organization = "nesca Demo ESHS"
country = "TR"
root_common_name = "nesca Demo Root CA"
issuing_common_name = "nesca Demo NES CA"
ocsp_common_name = "nesca Demo NES CA OCSP Signer"
key_algorithm = "{algorithm}"
root_validity_days = 7305
issuing_validity_days = 3653
ocsp_validity_days = 90

[hsm]
module = "{SOFTHSM_MODULE}"
token_label = "{DEMO_TOKEN}"
pin_file = "user-pin"
softhsm_conf = "softhsm2.conf"
sessions = 2
# SoftHSM 2.6 refuses RSA-OAEP with SHA-256 in C_WrapKey: card keys are wrapped for transport
# keys with RSA-OAEP SHA-1 only because this line allows it. Remove it on an HSM that wraps
# with SHA-256.
allow_rsa_oaep_sha1_wrap = true
# SoftHSM 2.6's CKM_AES_KEY_WRAP_PAD zero-pads a card key before wrapping it, which is not
# RFC 5649: with this line nesca re-wraps card keys exactly per RFC 5649 itself, and the card
# key passes through nesca's memory. Remove it on an HSM whose AES key wrap is RFC 5649
# (nesca checks, and refuses to wrap card keys on one that is not).
aes_key_wrap_repair = true

[store]
{store}

[profile.nes]
# Replace with your ESHS's NES policy OID (this is Kamu SM's, as an example).
policy_oid = "2.16.792.1.2.1.1.5.7.1.1"
cps_uri = "https://{host}/cps"
pds = [
  {{ url = "https://{host}/pds/tr", language = "tr" }},
  {{ url = "https://{host}/pds/en", language = "en" }},
]
retention_years = 20
validity_days = 1095
max_validity_days = 1826
legacy_serial_number = false

[server]
# Public HTTP: OCSP, CRLs and CA certificates (`nesca serve`).
listen = "{listen}"
shutdown_grace_seconds = 10

[crl]
dir = "crl"
full_every_seconds = 86400
delta_every_seconds = 900
full_validity_seconds = 172800
delta_validity_seconds = 1800

[ocsp]
# The standalone responder (`nesca ocsp`); `nesca serve` answers OCSP on server.listen.
listen = "127.0.0.1:8081"
validity_seconds = 86400
refresh_before_seconds = 43200
poll_interval_ms = 1000
max_request_bytes = 8192
max_age_seconds = 3600

[admin]
# The admin API for named operators, HTTPS with operator client certificates (docs/admin.md).
{admin_listen}
tls_cert = "admin-tls.pem"
tls_key = "admin-tls.key"
approvals_required = 2
request_expiry_seconds = 86400
requests_per_minute = 120

[portal]
# The holders' and applicants' pages, HTTPS (docs/portal.md).
{portal_listen}
tls_cert = "portal-tls.pem"
tls_key = "portal-tls.key"
"#,
        listen = demo_listen(public_url),
        admin_listen = match scope {
            Scope::Hierarchy => "listen = \"127.0.0.1:8443\"",
            // No issuing CA certificate yet to issue the listener's: `nesca admin tls-cert`
            // once the root signed, then set the listener.
            _ => "# listen = \"127.0.0.1:8443\"",
        },
        portal_listen = match scope {
            Scope::Hierarchy => "listen = \"127.0.0.1:8444\"",
            _ => "# listen = \"127.0.0.1:8444\"",
        },
    )
}

/// Where the demo listens: the public URL's own address when it names an IP and port on this
/// machine (the default http://127.0.0.1:8080), else 127.0.0.1:8080.
fn demo_listen(public_url: &str) -> String {
    let authority = public_url
        .strip_prefix("http://")
        .and_then(|r| r.split('/').next())
        .unwrap_or("");
    match authority.parse::<std::net::SocketAddr>() {
        Ok(addr) if addr.ip().is_loopback() => addr.to_string(),
        _ => "127.0.0.1:8080".into(),
    }
}

/// The certificates of a new hierarchy.
pub(crate) struct CreatedCa {
    algorithm: KeyAlgorithm,
    scope: Scope,
    files: Vec<(&'static str, PathBuf)>,
}

/// Generates the CA keys of `scope` in the token and creates what it names: root, issuing CA
/// and OCSP signer; or the issuing CA's key and request to an offline root; or a root alone.
fn create_ca(cfg: &Loaded, algorithm: Option<KeyAlgorithm>, scope: Scope) -> Result<CreatedCa> {
    let algorithm = algorithm.unwrap_or(cfg.key_algorithm);
    let dir = cfg.dir();
    let files: Vec<(&'static str, PathBuf)> = match scope {
        Scope::Hierarchy => vec![
            ("root CA", dir.join("root-ca.pem")),
            ("issuing CA", dir.join("issuing-ca.pem")),
            ("OCSP signer", dir.join("ocsp-signer.pem")),
            ("chain", dir.join("ca-chain.pem")),
        ],
        Scope::ExternalRoot => vec![("request", dir.join("issuing-ca.csr"))],
        Scope::RootOnly => vec![("root CA", dir.join("root-ca.pem"))],
    };
    for (_, f) in &files {
        if f.exists() {
            return Err(CliError::Exists(f.display().to_string()));
        }
    }
    let db = cfg.store_location();
    let store = wiring::open_store(cfg)?;
    let ids: Vec<&ca_core::IssuerId> = match scope {
        Scope::Hierarchy => vec![&cfg.root_id, &cfg.issuing_id],
        Scope::ExternalRoot => vec![&cfg.issuing_id],
        Scope::RootOnly => vec![&cfg.root_id],
    };
    for id in &ids {
        if store.ca(id)?.is_some() {
            return Err(CliError::Exists(format!("CA \"{id}\" in {db}")));
        }
    }
    let hsm = wiring::open_hsm(cfg)?;
    let labels: Vec<String> = match scope {
        Scope::Hierarchy => vec![
            cfg.root_id.to_string(),
            cfg.issuing_id.to_string(),
            format!("{}-ocsp", cfg.issuing_id),
        ],
        Scope::ExternalRoot => vec![cfg.issuing_id.to_string()],
        Scope::RootOnly => vec![cfg.root_id.to_string()],
    };
    for label in &labels {
        if hsm.has_key(label)? {
            return Err(CliError::Exists(format!(
                "key \"{label}\" on token \"{}\"",
                cfg.raw.hsm.token_label
            )));
        }
    }
    let mut keys = labels
        .iter()
        .map(|label| -> Result<CaKey> {
            let signer = hsm.generate_key(label, algorithm)?;
            Ok(CaKey {
                label: label.clone(),
                signer: Arc::new(signer),
            })
        })
        .collect::<Result<Vec<CaKey>>>()?
        .into_iter();
    let mut next_key = || keys.next().expect("one key per label");
    let c = &cfg.raw.ca;
    let store_dyn: Arc<dyn Store> = store;
    let engine = Engine::new(store_dyn, crate::wiring::clock());
    let actor = ca_core::Principal::HostOperator;
    match scope {
        Scope::Hierarchy => {
            let plan = HierarchyPlan {
                root_id: cfg.root_id.clone(),
                root_name: organization_name(&c.country, &c.organization, &c.root_common_name)?,
                root_validity_days: c.root_validity_days,
                issuing_id: cfg.issuing_id.clone(),
                issuing_name: organization_name(
                    &c.country,
                    &c.organization,
                    &c.issuing_common_name,
                )?,
                issuing_validity_days: c.issuing_validity_days,
                ocsp_name: organization_name(&c.country, &c.organization, &c.ocsp_common_name)?,
                ocsp_validity_days: c.ocsp_validity_days,
                public_url: c.public_url.clone(),
            };
            let (root, issuing, ocsp) = (next_key(), next_key(), next_key());
            let h = create_hierarchy(&engine, &plan, root, issuing, ocsp, &actor)?;
            let chain = format!("{}{}", cert_pem(&h.issuing_cert), cert_pem(&h.root_cert));
            write_new(&files[0].1, cert_pem(&h.root_cert).as_bytes(), false)?;
            write_new(&files[1].1, cert_pem(&h.issuing_cert).as_bytes(), false)?;
            write_new(&files[2].1, cert_pem(&h.ocsp_cert).as_bytes(), false)?;
            write_new(&files[3].1, chain.as_bytes(), false)?;
        }
        Scope::ExternalRoot => {
            let issuing = next_key();
            let name = organization_name(&c.country, &c.organization, &c.issuing_common_name)?;
            let der = ca_core::csr::build(&name, issuing.signer.as_ref())?;
            let pem =
                der::pem::encode_string("CERTIFICATE REQUEST", der::pem::LineEnding::LF, &der)
                    .map_err(|e| CliError::Argument {
                        field: "csr",
                        rule: format!("cannot encode: {e}"),
                    })?;
            write_new(&files[0].1, pem.as_bytes(), false)?;
        }
        Scope::RootOnly => {
            let root = next_key();
            let name = organization_name(&c.country, &c.organization, &c.root_common_name)?;
            let cert = ca_core::bootstrap::create_root(
                &engine,
                &cfg.root_id,
                &name,
                c.root_validity_days,
                root.label,
                root.signer,
                &actor,
            )?;
            write_new(&files[0].1, cert_pem(&cert).as_bytes(), false)?;
        }
    }
    Ok(CreatedCa {
        algorithm,
        scope,
        files,
    })
}

fn print_created(cfg: &Loaded, c: &CreatedCa) -> Result<()> {
    outln!("  configuration   {}", cfg.file.display());
    outln!("  database        {}", cfg.store_location());
    outln!(
        "  CA keys         {} (generated in the token, non-extractable)",
        c.algorithm
    );
    for (what, path) in &c.files {
        outln!("  {what:<15} {}", path.display());
    }
    match c.scope {
        // The root's certificates name the root's CRL and certificate.
        Scope::RootOnly => outln!(
            "  public URL      {} (the root's CRL {}/crl/{}.crl)",
            cfg.raw.ca.public_url,
            cfg.raw.ca.public_url.trim_end_matches('/'),
            cfg.root_id
        ),
        _ => outln!(
            "  public URL      {} (CRL {}, OCSP {})",
            cfg.raw.ca.public_url,
            cfg.urls.crl,
            cfg.urls.ocsp
        ),
    }
    let config = cfg.file.display();
    match c.scope {
        Scope::Hierarchy => outln!(
            "next: nesca issue --config {config} --csr req.pem --tckn 10000000146 --given-name \"AYŞE\" --surname \"YILMAZ\" --out ayse.pem"
        ),
        Scope::ExternalRoot => outln!(
            "next: have the offline root sign issuing-ca.csr (nesca root sign --config ROOT.toml --csr issuing-ca.csr --out issuing-ca.pem), then nesca ca import-cert --config {config} --cert issuing-ca.pem --root root-ca.pem"
        ),
        Scope::RootOnly => outln!(
            "next: nesca root sign --config {config} --csr ISSUING.csr --out ISSUING.pem, and nesca root crl --config {config} --out root-ca.crl"
        ),
    }
    Ok(())
}
