//! `nesca bench issue`: the raw `C_Sign` rate of the issuing key through the session pool,
//! against end-to-end issuance (CSR in → durably stored certificate out), measured in the
//! same run for 1 and 2 workers, so the ratio is independent of how busy the machine is.
//!
//! A worker is one HSM session. Issuance runs `clients` concurrent requests per worker, as a
//! server with many callers would, so that the store's group commit has writes to batch.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ca_core::engine::{NesApplication, SigningCa};
use ca_core::{PersonName, Tckn, VerifiedCsr};
use clap::Args;
use hsm::{Hsm, HsmConfig, KeyAlgorithm};
use x509_cert::builder::{Builder, RequestBuilder};

use super::init::create_demo;
use super::outln;
use crate::error::{CliError, Result};
use crate::wiring;

#[derive(Args)]
pub(crate) struct BenchArgs {
    /// CA key algorithms to measure
    #[arg(long, value_delimiter = ',', default_value = "ecdsa-p256,rsa-2048")]
    algorithms: Vec<KeyAlgorithm>,
    /// Seconds per measurement
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent issuance requests per worker
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Working directory (default: a new directory under the system's temporary directory)
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep each measurement's store in a new database on this PostgreSQL server (dropped
    /// afterwards) instead of SQLite: postgres://USER@HOST:PORT/DB
    #[arg(long, conflicts_with = "config")]
    postgres_url: Option<String>,
    /// Measure this existing CA (its store and token) instead of a new demo, with its own key
    /// algorithm: several of these at once against one PostgreSQL store are several nodes
    /// issuing together (scripts/bench-nodes.sh). Every issuance is a real certificate in
    /// that store: never a production CA's
    #[arg(long)]
    config: Option<PathBuf>,
    /// Internal: measure one algorithm in this process and print its rows only. SoftHSM reads
    /// its configuration once per process, so each algorithm's demo token gets a process.
    #[arg(long, hide = true)]
    child: bool,
}

pub(crate) fn run(a: BenchArgs) -> Result<()> {
    if a.seconds == 0 || a.clients == 0 {
        return Err(CliError::Argument {
            field: "seconds/clients",
            rule: "must be at least 1".into(),
        });
    }
    let base = match &a.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("nesca-bench-{}", std::process::id())),
    };
    if !a.child && a.config.is_none() {
        outln!(
            "nesca bench issue: {} s per measurement, {} requests in flight per worker",
            a.seconds,
            a.clients
        );
        outln!(
            "{:<12} {:>7} {:>14} {:>12} {:>7} {:>11} {:>11}",
            "CA key",
            "workers",
            "raw C_Sign/s",
            "issuance/s",
            "ratio",
            "cores(raw)",
            "cores(iss)"
        );
        let exe = std::env::current_exe().map_err(|e| CliError::config("bench", e.to_string()))?;
        for alg in &a.algorithms {
            let status = std::process::Command::new(&exe)
                .args(["bench", "issue", "--child", "--algorithms", alg.name()])
                .args([
                    "--seconds",
                    &a.seconds.to_string(),
                    "--clients",
                    &a.clients.to_string(),
                ])
                .arg("--dir")
                .arg(base.join(alg.name()))
                .args(
                    a.postgres_url
                        .iter()
                        .flat_map(|u| ["--postgres-url", u.as_str()]),
                )
                .status()
                .map_err(|e| CliError::config("bench", e.to_string()))?;
            if !status.success() {
                return Err(CliError::config("bench", format!("measuring {alg} failed")));
            }
        }
        outln!("targets: issuance >= 0.9x raw for rsa-2048, >= 0.5x for ecdsa-p256");
        if a.dir.is_none() {
            let _ = std::fs::remove_dir_all(&base);
        }
        return Ok(());
    }
    let csr = make_csr()?;
    if let Some(config) = &a.config {
        let cfg = crate::config::Loaded::read(config)?;
        // Every measured issuance is a real certificate for a made-up holder: a demo's only.
        if cfg.raw.hsm.token_label != super::init::DEMO_TOKEN {
            return Err(CliError::Argument {
                field: "config",
                rule: format!(
                    "measures a demo CA only (token \"{}\", made by nesca init --demo): every issuance is a real certificate",
                    super::init::DEMO_TOKEN
                ),
            });
        }
        let alg = cfg.key_algorithm;
        return measure_issuance(&a, &cfg, &alg, &csr);
    }
    let [alg] = a.algorithms.as_slice() else {
        return Err(CliError::Argument {
            field: "algorithms",
            rule: "--child measures exactly one".into(),
        });
    };
    let scratch = a
        .postgres_url
        .as_deref()
        .map(|server| ca_core::store::ScratchDatabase::create(server, "nesca_bench"))
        .transpose()?;
    let demo = create_demo(
        &base,
        super::init::DemoOptions {
            algorithm: Some(*alg),
            postgres_url: scratch.as_ref().map(|d| d.url()),
            ..super::init::DemoOptions::at("http://pki.nesca-demo.com.tr")
        },
        super::init::Scope::Hierarchy,
    )?;
    measure_issuance(&a, &demo.cfg, alg, &csr)
}

/// Prints the raw signing rate and the issuance rate of `cfg`'s CA with 1 and 2 workers.
fn measure_issuance(
    a: &BenchArgs,
    cfg: &crate::config::Loaded,
    alg: &KeyAlgorithm,
    csr: &[u8],
) -> Result<()> {
    let store = wiring::open_existing_store(cfg)?;
    for workers in [1usize, 2] {
        let hsm = Hsm::open(HsmConfig {
            module: cfg.raw.hsm.module.clone(),
            token_label: cfg.raw.hsm.token_label.clone(),
            pin: cfg.pin()?,
            pool_size: workers,
            ocsp_pool_size: 0,
            softhsm_conf: cfg.raw.hsm.softhsm_conf.as_ref().map(|p| cfg.path(p)),
        })?;
        let mut issuance = wiring::open_issuance(cfg, store.clone())?;
        let record = ca_core::store::RegistryStore::ca(&*store, &cfg.issuing_id)?
            .ok_or_else(|| CliError::config("ca.id", "missing"))?;
        let signer = Arc::new(hsm.find_key(&record.key_label)?);
        issuance.ca = SigningCa::new(
            cfg.issuing_id.clone(),
            record.cert_der,
            signer.clone(),
            Some(cfg.urls.clone()),
        )?;

        let duration = Duration::from_secs(a.seconds);
        // A message the size of a NES TBSCertificate.
        let tbs_sized = vec![0x5au8; 700];
        let raw = measure(workers, duration, || {
            signer.sign(&tbs_sized).map(|_| ()).map_err(CliError::from)
        })?;
        let engine = &issuance.engine;
        let ca = &issuance.ca;
        let nes = &cfg.nes;
        let issued = measure(workers * a.clients, duration, || {
            let app = NesApplication {
                key: VerifiedCsr::parse(csr)?.into(),
                tckn: Tckn::parse("10000000146")
                    .map_err(|e| CliError::config("tckn", e.to_string()))?,
                given_name: PersonName::parse("given-name", "AYŞE")?,
                surname: PersonName::parse("surname", "YILMAZ")?,
                validity_days: None,
                await_commitment: false,
            };
            engine
                .issue_nes(ca, nes, app, &ca_core::Principal::HostOperator)
                .map(|_| ())
                .map_err(CliError::from)
        })?;
        outln!(
            "{:<12} {:>7} {:>14.0} {:>12.0} {:>7.2} {:>11.2} {:>11.2}",
            alg.name(),
            workers,
            raw.per_second,
            issued.per_second,
            issued.per_second / raw.per_second,
            raw.cores,
            issued.cores
        );
    }
    Ok(())
}

/// CPU time (user + system) this process has used, from /proc/self/stat (Linux).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Operations per second and cores kept busy.
struct Rate {
    per_second: f64,
    cores: f64,
}

/// Runs `op` on `threads` threads for `duration`; returns completed operations per second.
/// Stops at the first error.
fn measure(threads: usize, duration: Duration, op: impl Fn() -> Result<()> + Sync) -> Result<Rate> {
    let cpu_start = cpu_seconds();
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let start = Instant::now();
    let errors: Vec<CliError> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    while !stop.load(Ordering::Relaxed) {
                        if let Err(e) = op() {
                            stop.store(true, Ordering::Relaxed);
                            return Some(e);
                        }
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    None
                })
            })
            .collect();
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
        handles
            .into_iter()
            .filter_map(|h| h.join().ok().flatten())
            .collect()
    });
    let elapsed = start.elapsed().as_secs_f64();
    if let Some(e) = errors.into_iter().next() {
        return Err(e);
    }
    Ok(Rate {
        per_second: done.load(Ordering::Relaxed) as f64 / elapsed,
        cores: (cpu_seconds() - cpu_start) / elapsed,
    })
}

/// A P-256 CSR made in software (the applicant's side).
fn make_csr() -> Result<Vec<u8>> {
    use der::Encode;
    let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
    let subject = ca_core::name::organization_name("TR", "bench", "bench applicant")?;
    let fail = |e: String| CliError::config("bench CSR", e);
    let req = RequestBuilder::new(subject, &key)
        .map_err(|e| fail(e.to_string()))?
        .build::<p256::ecdsa::DerSignature>()
        .map_err(|e| fail(e.to_string()))?;
    req.to_der().map_err(|e| fail(e.to_string()))
}
