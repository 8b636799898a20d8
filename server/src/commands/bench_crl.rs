//! `nesca bench crl`: time and peak memory of generating and signing a full CRL of N revoked
//! certificates with `nesca crl` (HSM key, store streamed), against `openssl ca -gencrl` over
//! the same entries (software key), run in the same session.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ca_core::lifecycle::RevocationReason;
use ca_core::{Serial, UnixTime};
use clap::Args;

use super::init::create_demo;
use super::outln;
use crate::error::{CliError, Result};
use crate::wiring;

#[derive(Args)]
pub(crate) struct BenchCrlArgs {
    /// Revoked certificates in the CRL
    #[arg(long, default_value_t = 1_000_000)]
    entries: u64,
    /// Working directory (default: a new directory under the system's temporary directory)
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Skip the openssl baseline
    #[arg(long)]
    no_openssl: bool,
    /// Keep the store in a new database on this PostgreSQL server (dropped afterwards)
    /// instead of SQLite: postgres://USER@HOST:PORT/DB, DB being where it is created from
    #[arg(long)]
    postgres_url: Option<String>,
}

fn bench_err(what: &str, e: impl std::fmt::Display) -> CliError {
    CliError::config("bench", format!("{what}: {e}"))
}

/// Wall time and peak resident memory (VmHWM, sampled from /proc every 2 ms) of a child.
struct Measured {
    seconds: f64,
    peak_mb: f64,
}

fn measure(mut cmd: Command, what: &str) -> Result<Measured> {
    let start = Instant::now();
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| bench_err(what, e))?;
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0u64;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file) {
            if let Some(kb) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak_kb = peak_kb.max(kb);
            }
        }
        match child.try_wait().map_err(|e| bench_err(what, e))? {
            Some(status) => break status,
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    };
    let seconds = start.elapsed().as_secs_f64();
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        return Err(bench_err(what, format!("failed: {}", err.trim())));
    }
    Ok(Measured {
        seconds,
        peak_mb: peak_kb as f64 / 1024.0,
    })
}

fn openssl_time(t: UnixTime) -> String {
    time::OffsetDateTime::from_unix_timestamp(t.secs())
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year repr:last_two][month][day][hour][minute][second]Z"
            ))
            .ok()
        })
        .unwrap_or_default()
}

/// The same entries as an OpenSSL CA database (index.txt), and a software CA to sign with.
fn openssl_ca(
    dir: &Path,
    entries: &[(Serial, UnixTime, Option<RevocationReason>)],
    expiry: UnixTime,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| bench_err("openssl dir", e))?;
    let mut index = std::io::BufWriter::new(
        std::fs::File::create(dir.join("index.txt")).map_err(|e| bench_err("index.txt", e))?,
    );
    let exp = openssl_time(expiry);
    for (serial, at, reason) in entries {
        let reason = reason.map(|r| format!(",{}", r.name())).unwrap_or_default();
        writeln!(
            index,
            "R\t{exp}\t{}{reason}\t{}\tunknown\t/CN=bench",
            openssl_time(*at),
            serial.to_hex().to_uppercase()
        )
        .map_err(|e| bench_err("index.txt", e))?;
    }
    index.flush().map_err(|e| bench_err("index.txt", e))?;
    std::fs::write(dir.join("crlnumber"), "01\n").map_err(|e| bench_err("crlnumber", e))?;
    std::fs::write(
        dir.join("ca.cnf"),
        "[ca]\ndefault_ca = c\n[c]\ndatabase = index.txt\ncrlnumber = crlnumber\ndefault_md = sha256\ndefault_crl_days = 2\ncrl_extensions = ext\n[ext]\nauthorityKeyIdentifier = keyid\n",
    )
    .map_err(|e| bench_err("ca.cnf", e))?;
    let out = Command::new("openssl")
        .current_dir(dir)
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args([
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            "/CN=bench CA",
            "-days",
            "30",
        ])
        .output()
        .map_err(|e| bench_err("openssl req", e))?;
    if !out.status.success() {
        return Err(bench_err(
            "openssl req",
            String::from_utf8_lossy(&out.stderr),
        ));
    }
    Ok(())
}

pub(crate) fn run(a: BenchCrlArgs) -> Result<()> {
    if a.entries == 0 {
        return Err(CliError::Argument {
            field: "entries",
            rule: "must be at least 1".into(),
        });
    }
    let base = match &a.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("nesca-bench-crl-{}", std::process::id())),
    };
    let scratch = a
        .postgres_url
        .as_deref()
        .map(|server| ca_core::store::ScratchDatabase::create(server, "nesca_bench"))
        .transpose()?;
    let demo = create_demo(
        &base.join("ca"),
        super::init::DemoOptions {
            postgres_url: scratch.as_ref().map(|d| d.url()),
            ..super::init::DemoOptions::at("http://pki.nesca-demo.com.tr")
        },
        super::init::Scope::Hierarchy,
    )?;
    let cfg = demo.cfg;
    let now = ca_core::UnixTime::from_system(std::time::SystemTime::now());
    let filled = Instant::now();
    let entries = match wiring::open_backend(&cfg)? {
        wiring::StoreBackend::Sqlite(store) => {
            store.bench_fill_revoked(&cfg.issuing_id, a.entries, now)?
        }
        wiring::StoreBackend::Postgres(store) => {
            store.bench_fill_revoked(&cfg.issuing_id, a.entries, now)?
        }
    };
    outln!(
        "nesca bench crl: {} revoked certificates written to the store in {:.1} s",
        a.entries,
        filled.elapsed().as_secs_f64()
    );

    let exe = std::env::current_exe().map_err(|e| bench_err("nesca binary", e))?;
    let out = base.join("full.crl");
    let mut cmd = Command::new(&exe);
    cmd.arg("crl")
        .arg("--config")
        .arg(&cfg.file)
        .arg("--out")
        .arg(&out);
    let nesca = measure(cmd, "nesca crl")?;
    let nesca_bytes = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);

    outln!(
        "{:<28} {:>10} {:>14} {:>12}",
        "",
        "seconds",
        "peak RSS (MB)",
        "CRL (MB)"
    );
    let mb = |b: u64| b as f64 / 1e6;
    outln!(
        "{:<28} {:>10.2} {:>14.1} {:>12.1}",
        "nesca crl (SoftHSM P-256)",
        nesca.seconds,
        nesca.peak_mb,
        mb(nesca_bytes)
    );
    if !a.no_openssl {
        let odir = base.join("openssl");
        openssl_ca(&odir, &entries, now.plus_secs(3 * 365 * 86_400))?;
        drop(entries);
        let mut cmd = Command::new("openssl");
        cmd.current_dir(&odir)
            .args([
                "ca", "-config", "ca.cnf", "-gencrl", "-cert", "ca.pem", "-keyfile", "ca.key",
            ])
            .args(["-out", "full.crl"]);
        let openssl = measure(cmd, "openssl ca -gencrl")?;
        let obytes = std::fs::metadata(odir.join("full.crl"))
            .map(|m| m.len())
            .unwrap_or(0);
        outln!(
            "{:<28} {:>10.2} {:>14.1} {:>12.1}",
            "openssl ca -gencrl (PEM)",
            openssl.seconds,
            openssl.peak_mb,
            mb(obytes)
        );
        outln!(
            "nesca / openssl: time {:.2}x, peak memory {:.2}x",
            nesca.seconds / openssl.seconds,
            nesca.peak_mb / openssl.peak_mb
        );
    }
    outln!("targets: nesca under 5 s and under 300 MB for 1,000,000 entries");
    if a.dir.is_none() {
        let _ = std::fs::remove_dir_all(&base);
    }
    Ok(())
}
