//! The CA's own certificates over their lifetime: the delegated OCSP signer renewed at start
//! when the system clock has passed its validity (`faketime`, 100 and 300 days ahead; the
//! command line reads `NESCA_TEST_CLOCK_OFFSET_SECONDS`), its answers verified by OpenSSL at
//! that time; renewal on demand, from two processes at once; the root's CRL; revoking an
//! issuing CA; rollover; every URL in every certificate; `/metrics` and warnings.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::crl::assert_crl_lints_clean;
use crate::support::ocsp::*;
use crate::support::server::*;
use crate::support::*;

const DAY: i64 = 86_400;

/// `nesca ARGS` with the clock `days` ahead (a test build reads the offset).
#[track_caller]
fn nesca_at(demo: &Demo, days: i64, args: &[&str]) -> Output {
    let mut cmd: Command = nesca_command();
    cmd.args(args)
        .current_dir(&demo.work)
        .env("NESCA_TEST_CLOCK_OFFSET_SECONDS", (days * DAY).to_string());
    run(cmd)
}

/// `nesca ca list` at `days` ahead, one JSON object a line.
#[track_caller]
fn ca_list(demo: &Demo, days: i64) -> Vec<Value> {
    let out = nesca_at(demo, days, &["ca", "list", "--config", s(&demo.config())]).ok();
    out.stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// The OCSP signers `ca list` names, in its order.
fn signers(list: &[Value]) -> Vec<&Value> {
    list.iter().filter(|v| v["kind"] == "ocsp-signer").collect()
}

/// The key label of the one current signer (panics unless there is exactly one).
#[track_caller]
fn current_signer(list: &[Value]) -> String {
    let current: Vec<&Value> = signers(list)
        .into_iter()
        .filter(|v| v["status"] == "current")
        .collect();
    assert_eq!(current.len(), 1, "exactly one current signer: {list:?}");
    current[0]["key_label"].as_str().unwrap().to_owned()
}

/// Asks about `cert` with OpenSSL verifying at `days` ahead (`-attime`, and a response time
/// window wide enough for the moved clock): a verified `good` answer. Returns the responder
/// certificate it carried (PEM).
#[track_caller]
fn good_at(demo: &Demo, url: &str, cert: &Path, days: i64, name: &str) -> String {
    let at = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + days * DAY)
        .to_string();
    let window = (days * DAY + 3_600).to_string();
    let run = ocsp_query(
        demo,
        url,
        &[cert],
        &["-attime", &at, "-validity_period", &window, "-no_nonce"],
        name,
    );
    assert!(run.verified(), "{}", run.describe());
    assert_eq!(run.status_of(cert).as_deref(), Some("good"), "{}", run.text);
    // The responder's certificate, as OpenSSL prints it with -resp_text.
    let pem_start = run
        .text
        .find("-----BEGIN CERTIFICATE-----")
        .expect("signer certificate");
    let pem_end = run.text.find("-----END CERTIFICATE-----").expect("PEM end") + 25;
    run.text[pem_start..pem_end].to_owned()
}

/// Day 100 and day 300: `nesca serve` starts although the signer `init` made has expired (90
/// days), renews it at start (a new key in the token, a new certificate from the CA), and its
/// answers verify in OpenSSL at that time; `ca list` shows the old signer expired and exactly
/// one current one. The signer never stops the server from starting. The clock is moved the
/// way it moves for the binary in production: the system clock itself, under libfaketime
/// (`faketime -f +100d nesca serve`), not the test build's offset.
#[test]
fn serve_renews_an_expired_ocsp_signer_at_start_and_answers() {
    let demo = server_demo();
    let (nes, _) = demo.issue_ok(&demo.csr("nes", Key::P256), "nes.pem", &[]);
    let first = ca_list(&demo, 0);
    let init_signer = current_signer(&first);
    assert!(
        first
            .iter()
            .any(|v| v["kind"] == "ca" && v["role"] == "root" && v["status"] == "active"),
        "{first:?}"
    );
    let faketime = which_faketime();

    let mut seen = vec![init_signer.clone()];
    for days in [100, 300] {
        let shift = format!("+{days}d");
        let mut server = Server::serve_wrapped(&demo, &[faketime.as_str(), "-f", &shift]);
        let responder_cert = good_at(&demo, &server.url(), &nes, days, &format!("day{days}.der"));
        assert!(
            server.stderr().contains("OCSP signer renewed"),
            "{}",
            server.stderr()
        );
        server.assert_running();
        drop(server);
        let list = ca_list(&demo, days);
        let current = current_signer(&list);
        assert!(
            !seen.contains(&current),
            "a new signer at day {days}: {list:?}"
        );
        for old in &seen {
            let row = signers(&list)
                .into_iter()
                .find(|v| v["key_label"] == old.as_str())
                .expect("the old signer is listed");
            assert_eq!(row["status"], "expired", "{row}");
        }
        // The answer carried the new signer's certificate, not init's.
        let init_pem = std::fs::read_to_string(demo.path("ocsp-signer.pem")).unwrap();
        assert_ne!(responder_cert.trim(), init_pem.trim());
        seen.push(current);
    }
}

/// The `faketime` program (libfaketime; the test command installs it).
fn which_faketime() -> String {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("faketime"))
        .find(|p| p.is_file());
    found
        .expect("faketime on PATH: apt-get install -y faketime")
        .to_string_lossy()
        .into_owned()
}

/// `nesca ca renew-ocsp-signer` from two processes at once: each either renews or is refused
/// as a conflict, and afterwards exactly one signer is current, the others listed once each;
/// unknown and root CAs are refused.
#[test]
fn renewals_from_two_processes_leave_exactly_one_current_signer() {
    let demo = server_demo();
    let config = demo.config();
    let before = signers(&ca_list(&demo, 0)).len();
    let renew = || {
        let mut cmd = nesca_command();
        cmd.args([
            "ca",
            "renew-ocsp-signer",
            "--config",
            s(&config),
            "--ca",
            "nes-ca",
        ])
        .current_dir(&demo.work);
        cmd
    };
    let outs: Vec<Output> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..2).map(|_| sc.spawn(|| run(renew()))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let renewed = outs.iter().filter(|o| o.success()).count();
    assert!(renewed >= 1, "{}", outs[0].describe());
    for o in outs.iter().filter(|o| !o.success()) {
        assert!(
            o.stderr.contains("ocsp_signer"),
            "a refusal names the signer: {}",
            o.describe()
        );
    }
    let list = ca_list(&demo, 0);
    current_signer(&list);
    assert_eq!(signers(&list).len(), before + renewed, "{list:?}");
    // Unknown and root CAs are refused, naming the field.
    for (ca, rule) in [("nobody", "no CA"), ("root-ca", "root CA")] {
        let out = demo.nesca(&[
            "ca",
            "renew-ocsp-signer",
            "--config",
            s(&config),
            "--ca",
            ca,
        ]);
        assert!(
            !out.success() && out.stderr.contains(rule),
            "{}",
            out.describe()
        );
    }
}

/// The URL in `cert`'s cRLDistributionPoints (the first `URI:`).
#[track_caller]
fn crl_url_of(cert: &Path) -> String {
    let text = openssl(&["x509", "-in", s(cert), "-noout", "-text"]).stdout;
    let (_, body) =
        extension(&text, "X509v3 CRL Distribution Points").expect("cRLDistributionPoints");
    body.split_whitespace()
        .find_map(|t| t.strip_prefix("URI:"))
        .expect("a URI")
        .to_owned()
}

/// `nesca crl --ca root-ca --out WORK/NAME`, which must succeed.
/// `nesca crl --config … --ca CA --out OUT`, whatever the outcome.
fn crl_of(demo: &Demo, ca: &str, out: &Path) -> Output {
    let config = demo.config();
    demo.nesca(&["crl", "--config", s(&config), "--ca", ca, "--out", s(out)])
}

/// `nesca crl --ca root-ca --out WORK/NAME`, which must succeed.
#[track_caller]
fn root_crl(demo: &Demo, name: &str) -> (std::path::PathBuf, Output) {
    let out = demo.work.join(name);
    let made = crl_of(demo, "root-ca", &out).ok();
    (out, made)
}

/// `openssl crl -inform DER -in DER -noout EXTRA…`.
#[track_caller]
fn openssl_crl(der: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["crl", "-inform", "DER", "-in", s(der), "-noout"];
    args.extend_from_slice(extra);
    openssl(&args)
}

/// `openssl crl -verify` of a DER CRL under `issuer` (PEM): `verify OK`.
#[track_caller]
fn crl_verifies(der: &Path, issuer: &Path) -> String {
    let out = openssl_crl(der, &["-CAfile", s(issuer), "-text"]);
    let all = format!("{}\n{}", out.stdout, out.stderr);
    assert!(all.contains("verify OK"), "{all}");
    all
}

/// The root's CRL (ARL): made on demand (`nesca crl --ca root-ca`), signed by the root's key,
/// lint-clean, valid for the configured 90 days, with no deltas; and published and served by
/// `nesca serve` at exactly the URL the issuing CA's certificate names.
#[test]
fn the_root_crl_is_made_on_demand_and_served_where_the_issuing_ca_points() {
    let demo = server_demo();
    let config = demo.config();
    let root = demo.path("root-ca.pem");
    let (out, made) = root_crl(&demo, "root.crl");
    assert!(
        made.stdout.starts_with("full CRL number=1 entries=0 "),
        "{}",
        made.describe()
    );
    assert_crl_lints_clean(&out);
    let text = crl_verifies(&out, &root);
    assert!(text.contains("CN = nesca Demo Root CA"), "{text}");
    // nextUpdate − thisUpdate: the configured 90 days.
    let times = openssl_crl(&out, &["-lastupdate", "-nextupdate"]).stdout;
    let parse = |key: &str| {
        let v = times
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .expect("a time");
        time::PrimitiveDateTime::parse(
            v.trim().trim_end_matches(" GMT"),
            &time::format_description::parse_borrowed::<2>(
                "[month repr:short] [day padding:space] [hour]:[minute]:[second] [year]",
            )
            .unwrap(),
        )
        .unwrap()
        .assume_utc()
    };
    let validity = parse("nextUpdate=") - parse("lastUpdate=");
    assert_eq!(validity.whole_days(), 90, "{times}");
    assert!(
        !text.contains("Freshest CRL"),
        "no delta is announced: {text}"
    );
    for (args, rule) in [
        (
            vec!["--ca", "root-ca", "--delta"],
            "delta: \"root-ca\" is a root",
        ),
        (vec!["--ca", "nobody"], "ca: no CA \"nobody\""),
        (vec!["--ca", "Not An Id"], "ca: "),
    ] {
        let mut all = vec!["crl", "--config", s(&config), "--out"];
        let refused = demo.work.join("refused.crl");
        all.push(s(&refused));
        all.extend(args);
        let r = demo.nesca(&all);
        assert!(!r.success() && r.stderr.contains(rule), "{}", r.describe());
        assert!(!refused.exists(), "a refused run writes no file");
    }

    // The issuing CA names the root's CRL; `nesca serve` publishes it there.
    let url = crl_url_of(&demo.path("issuing-ca.pem"));
    let path = url
        .split_once("/crl/")
        .map(|(_, f)| format!("/crl/{f}"))
        .expect("a /crl/ URL");
    assert_eq!(path, "/crl/root-ca.crl");
    let server = Server::serve(&demo);
    let served = server.get(&path);
    assert_eq!(served.status, 200, "{}", served.describe());
    assert_eq!(served.header("content-type"), Some("application/pkix-crl"));
    let fetched = demo.work.join("fetched-root.crl");
    std::fs::write(&fetched, &served.body).unwrap();
    crl_verifies(&fetched, &root);
    assert_crl_lints_clean(&fetched);
    // The issuing CA's CRL is still its own.
    let issuing = server.get("/crl/nes-ca.crl");
    assert_eq!(issuing.status, 200, "{}", issuing.describe());
}

/// `nesca ca revoke`: the root revokes its issuing CA's certificate with a root's reason; the
/// root's next CRL lists it with that reason (lint-clean), `ca list` shows it revoked, and a
/// holder's reason or a root is refused, naming the field.
#[test]
fn a_revoked_issuing_ca_is_listed_in_the_root_crl() {
    let demo = server_demo();
    let config = demo.config();
    for (args, rule) in [
        (
            vec!["--ca", "nes-ca", "--reason", "keyCompromise"],
            "reason: keyCompromise is not a reason to revoke a CA",
        ),
        (
            vec!["--ca", "nes-ca", "--reason", "bogus"],
            "reason: unknown reason",
        ),
        (vec!["--ca", "root-ca", "--reason", "superseded"], "root CA"),
    ] {
        let mut all = vec!["ca", "revoke", "--config", s(&config)];
        all.extend(args);
        let r = demo.nesca(&all);
        assert!(!r.success() && r.stderr.contains(rule), "{}", r.describe());
    }
    let revoked = demo
        .nesca(&[
            "ca",
            "revoke",
            "--config",
            s(&config),
            "--ca",
            "nes-ca",
            "--reason",
            "cACompromise",
        ])
        .ok();
    let v: Value = serde_json::from_str(revoked.stdout.trim()).unwrap();
    assert_eq!(
        (v["status"].as_str(), v["issuer"].as_str()),
        (Some("revoked"), Some("root-ca")),
        "{v}"
    );
    let serial = v["serial"].as_str().unwrap().to_owned();
    let list = ca_list(&demo, 0);
    let nes = list.iter().find(|c| c["id"] == "nes-ca").unwrap();
    assert_eq!(nes["status"], "revoked", "{nes}");

    let (out, _) = root_crl(&demo, "arl.crl");
    assert_crl_lints_clean(&out);
    let text = crl_verifies(&out, &demo.path("root-ca.pem"));
    let entries = crate::support::crl::crl_entries(&text);
    assert_eq!(entries.len(), 1, "{text}");
    assert_eq!(
        crate::support::crl::crl_reason_of(&text, &serial),
        Some(Some("CA Compromise".to_owned())),
        "{text}"
    );
    // Nothing is issued under a revoked CA; serve still answers (its CRLs and OCSP go on);
    // a rollover brings issuance back.
    let refused = demo.issue(&demo.csr("after", Key::P256), &[]);
    assert!(
        !refused.success() && refused.stderr.contains("is revoked"),
        "{}",
        refused.describe()
    );
    let mut server = Server::serve(&demo);
    published(&server, "/crl/nes-ca.crl");
    server.assert_running();
    drop(server);
    demo.nesca(&["ca", "rollover", "--config", s(&config), "--ca", "nes-ca"])
        .ok();
    demo.issue_ok(&demo.csr("new-gen", Key::P256), "new-gen.pem", &[]);
}

/// Near the issuing CA's own end a renewed OCSP signer runs to it and no further (a signer
/// never outlives its CA): `renew-ocsp-signer` 3600 days on, with 53 days left of the CA's
/// 3653, makes a signer whose notAfter is within the last day before the CA's.
#[test]
fn a_signer_renewed_near_the_cas_end_runs_to_it() {
    let demo = server_demo();
    let config = demo.config();
    let renewed = nesca_at(
        &demo,
        3600,
        &[
            "ca",
            "renew-ocsp-signer",
            "--config",
            s(&config),
            "--ca",
            "nes-ca",
        ],
    )
    .ok();
    let v: Value = serde_json::from_str(renewed.stdout.trim()).unwrap();
    let list = ca_list(&demo, 3600);
    let ca = list.iter().find(|c| c["id"] == "nes-ca").unwrap();
    let t = |v: &Value| {
        time::OffsetDateTime::parse(
            v.as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
        .unix_timestamp()
    };
    let (signer_end, ca_end) = (t(&v["not_after"]), t(&ca["not_after"]));
    assert!(
        signer_end <= ca_end && ca_end - signer_end < DAY,
        "{v} / {ca}"
    );
    assert_eq!(v["previous_status"], "expired", "{v}");
}

/// `/metrics` shows how long each CA certificate and current OCSP signer has left, and each
/// published CRL until its nextUpdate; a certificate within `[server]
/// warn_certificate_expiry_days` is warned about in the log (the 90-day signer, with 100).
#[test]
fn metrics_and_the_log_show_what_expires_before_it_hurts() {
    let demo = server_demo();
    let path = demo.config();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("[server]\n"), "{text}");
    let text = text.replacen(
        "[server]\n",
        "[server]\nwarn_certificate_expiry_days = 100\n",
        1,
    );
    std::fs::write(&path, text).unwrap();
    let server = Server::serve(&demo);
    // The CRL thread publishes at start, beside the listener: wait for the root's CRL.
    let mut metrics = String::new();
    for _ in 0..200 {
        metrics = server.get("/metrics").text();
        if metrics.contains("nesca_crl_next_update_seconds{ca=\"root-ca\"") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let gauge = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<i64>().ok())
            .unwrap_or_else(|| panic!("{name} in {metrics}"))
    };
    let signer =
        gauge("nesca_certificate_expiry_seconds{ca=\"nes-ca\",certificate=\"ocsp-signer\"}");
    assert!((89 * DAY..=90 * DAY).contains(&signer), "{signer}");
    let root = gauge("nesca_certificate_expiry_seconds{ca=\"root-ca\",certificate=\"ca\"}");
    assert!(root > 20 * 365 * DAY, "{root}");
    gauge("nesca_certificate_expiry_seconds{ca=\"nes-ca\",certificate=\"ca\"}");
    // The CRLs published at start, the root's included.
    let root_crl = gauge("nesca_crl_next_update_seconds{ca=\"root-ca\",kind=\"full\"}");
    assert!((89 * DAY..=90 * DAY).contains(&root_crl), "{root_crl}");
    gauge("nesca_crl_next_update_seconds{ca=\"nes-ca\",kind=\"delta\"}");
    // The signer's 90 days are within the 100 the configuration warns about.
    let warned = (0..100).any(|_| {
        let log = server.stderr();
        if log.contains("a CA certificate expires soon") && log.contains("ocsp-signer") {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        false
    });
    assert!(warned, "{}", server.stderr());
    assert!(
        !server.stderr().contains("certificate=\"ca\"")
            && !server.stderr().contains("certificate=ca"),
        "the CA certificates are far from their end: {}",
        server.stderr()
    );
}

/// `openssl ocsp` about `cert` issued by `issuer` (PEM), verified with the demo's chain file:
/// the status line.
#[track_caller]
fn ocsp_status(demo: &Demo, url: &str, issuer: &Path, cert: &Path) -> String {
    let out = openssl_may_fail(&[
        "ocsp",
        "-issuer",
        s(issuer),
        "-cert",
        s(cert),
        "-url",
        &format!("{url}/ocsp"),
        "-CAfile",
        s(&demo.path("ca-chain.pem")),
        "-no_nonce",
    ]);
    let text = format!("{}\n{}", out.stdout, out.stderr);
    assert!(text.contains("Response verify OK"), "{text}");
    let prefix = format!("{}: ", s(cert));
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no status line in {text}"))
        .trim()
        .to_owned()
}

/// The authorityKeyIdentifier, CRL URL and caIssuers URL of a certificate (PEM).
#[track_caller]
fn issuer_links(cert: &Path) -> (String, String, String) {
    let text = openssl(&["x509", "-in", s(cert), "-noout", "-text"]).stdout;
    let (_, aki) = extension(&text, "X509v3 Authority Key Identifier").expect("AKI");
    let (_, aia) = extension(&text, "Authority Information Access").expect("AIA");
    let ca_issuers = aia
        .split_whitespace()
        .find_map(|t| t.strip_prefix("URI:").filter(|u| u.ends_with(".crt")))
        .expect("caIssuers")
        .to_owned();
    (aki, crl_url_of(cert), ca_issuers)
}

/// `nesca ca rollover`: a new generation of the issuing CA (same name, new key) certified by
/// the root; issuance moves to it; certificates of both generations carry their own
/// generation's URLs, which `nesca serve` answers — each generation's CRL and certificate,
/// OCSP for both; `ca-chain.pem` holds both; a generation rolled over already is refused.
#[test]
fn a_rollover_moves_issuance_to_a_new_key_and_both_generations_answer() {
    let demo = server_demo();
    let config = demo.config();
    let (old, _) = demo.issue_ok(&demo.csr("old", Key::P256), "old.pem", &[]);
    let rolled = demo
        .nesca(&["ca", "rollover", "--config", s(&config), "--ca", "nes-ca"])
        .ok();
    let v: Value = serde_json::from_str(rolled.stdout.trim()).unwrap();
    assert_eq!(
        (v["ca"].as_str(), v["supersedes"].as_str()),
        (Some("nes-ca-g2"), Some("nes-ca")),
        "{v}"
    );
    let again = demo.nesca(&["ca", "rollover", "--config", s(&config), "--ca", "nes-ca"]);
    assert!(
        !again.success() && again.stderr.contains("rolled over already"),
        "{}",
        again.describe()
    );
    let list = ca_list(&demo, 0);
    let g2 = list
        .iter()
        .find(|c| c["id"] == "nes-ca-g2")
        .expect("the new generation");
    assert_eq!(
        (g2["supersedes"].as_str(), g2["status"].as_str()),
        (Some("nes-ca"), Some("active")),
        "{g2}"
    );
    assert_eq!(
        signers(&list)
            .iter()
            .filter(|s| s["ca"] == "nes-ca-g2" && s["status"] == "current")
            .count(),
        1,
        "{list:?}"
    );
    let chain = std::fs::read_to_string(demo.path("ca-chain.pem")).unwrap();
    assert_eq!(
        chain.matches("BEGIN CERTIFICATE").count(),
        3,
        "both generations and the root"
    );
    let g2_pem = demo.path("nes-ca-g2.pem");
    let same_name = |p: &Path| openssl(&["x509", "-in", s(p), "-noout", "-subject"]).stdout;
    assert_eq!(same_name(&g2_pem), same_name(&demo.path("issuing-ca.pem")));

    // Issuance uses the new key now.
    let (new, _) = demo.issue_ok(&demo.csr("new", Key::P256), "new.pem", &[]);
    let (old_aki, old_crl, old_issuer) = issuer_links(&old);
    let (new_aki, new_crl, new_issuer) = issuer_links(&new);
    assert_ne!(old_aki, new_aki);
    assert!(old_crl.ends_with("/crl/nes-ca.crl") && old_issuer.ends_with("/ca/nes-ca.crt"));
    assert!(new_crl.ends_with("/crl/nes-ca-g2.crl") && new_issuer.ends_with("/ca/nes-ca-g2.crt"));
    let verify = |cert: &Path| {
        openssl(&["verify", "-CAfile", s(&demo.path("ca-chain.pem")), s(cert)]).stdout
    };
    assert!(verify(&new).contains(": OK"));
    assert!(verify(&old).contains(": OK"));

    // Both generations answer: OCSP, CRL and certificate at the URLs their certificates name.
    let mut server = Server::serve(&demo);
    let url = server.url();
    assert_eq!(
        ocsp_status(&demo, &url, &demo.path("issuing-ca.pem"), &old),
        "good"
    );
    assert_eq!(ocsp_status(&demo, &url, &g2_pem, &new), "good");
    for (crl, issuer) in [
        ("/crl/nes-ca.crl", demo.path("issuing-ca.pem")),
        ("/crl/nes-ca-g2.crl", g2_pem.clone()),
    ] {
        let file = demo.work.join(crl.trim_start_matches("/crl/"));
        std::fs::write(&file, published(&server, crl)).unwrap();
        crl_verifies(&file, &issuer);
    }
    let served = server.get("/ca/nes-ca-g2.crt");
    assert_eq!(served.status, 200);
    let der = openssl(&["x509", "-in", s(&g2_pem), "-outform", "DER"]).stdout_bytes;
    assert_eq!(served.body, der);
    server.assert_running();
}

/// The CRL `path` once `nesca serve`'s CRL thread has published it (it runs beside the
/// listener from the start), for at most 10 s.
#[track_caller]
fn published(server: &Server, path: &str) -> Vec<u8> {
    for _ in 0..200 {
        let r = server.get(path);
        if r.status == 200 {
            return r.body;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{path} was not published within 10 s: {}", server.stderr());
}

/// The URLs a certificate names: (caIssuers, cRLDistributionPoints, OCSP).
#[track_caller]
fn urls_in(cert: &Path) -> (Vec<String>, Vec<String>, Vec<String>) {
    let text = openssl(&["x509", "-in", s(cert), "-noout", "-text"]).stdout;
    let uris = |ext: &str, prefix: &str| -> Vec<String> {
        extension(&text, ext)
            .map(|(_, body)| {
                body.lines()
                    .filter_map(|l| l.trim().strip_prefix(prefix))
                    .map(|u| u.trim().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    (
        uris("Authority Information Access", "CA Issuers - URI:"),
        uris("X509v3 CRL Distribution Points", "URI:"),
        uris("Authority Information Access", "OCSP - URI:"),
    )
}

/// Every URL in every certificate answers, starting from the certificates alone — the root,
/// the issuing CA, the OCSP signer, a NES and a partner's role certificate: each caIssuers URL
/// returns the certificate that signed it (DER), each CRL URL a current CRL that certificate
/// signed, each OCSP URL an answer OpenSSL verifies, `good`.
#[test]
fn every_url_in_every_certificate_answers() {
    let demo = server_demo();
    let (nes, _) = demo.issue_ok(&demo.csr("walk", Key::P256), "walk.pem", &[]);
    crate::support::partner::add_partner(&demo, "eshs-walk").ok();
    let (issued, partner) =
        crate::support::partner::issue_cert(&demo, "eshs-walk", "role", "walk-role", "role.pem");
    assert!(issued.success(), "{}", issued.describe());
    let mut server = Server::serve(&demo);
    let local = |url: &str| -> String {
        url.strip_prefix(LINT_URL)
            .unwrap_or_else(|| panic!("{url} is not under the public URL {LINT_URL}"))
            .to_owned()
    };
    // The root's CRL comes with the CRL thread's first round.
    published(&server, "/crl/root-ca.crl");
    let mut walked = 0;
    for cert in [
        demo.path("root-ca.pem"),
        demo.path("issuing-ca.pem"),
        demo.path("ocsp-signer.pem"),
        nes,
        partner,
    ] {
        let (ca_issuers, crls, ocsp) = urls_in(&cert);
        let is_root = cert == demo.path("root-ca.pem");
        let needs_urls = !is_root && cert != demo.path("ocsp-signer.pem");
        assert_eq!(
            !ca_issuers.is_empty(),
            needs_urls,
            "{}: caIssuers",
            cert.display()
        );
        assert_eq!(!crls.is_empty(), needs_urls, "{}: CRL URLs", cert.display());
        let name = cert.file_stem().unwrap().to_string_lossy().to_string();
        let mut issuer_pem = None;
        for url in &ca_issuers {
            let r = server.get(&local(url));
            assert_eq!(r.status, 200, "{url}: {}", r.describe());
            let der = demo.work.join(format!("{name}-issuer.der"));
            std::fs::write(&der, &r.body).unwrap();
            let pem = demo.work.join(format!("{name}-issuer.pem"));
            openssl(&["x509", "-inform", "DER", "-in", s(&der), "-out", s(&pem)]);
            // The fetched certificate is the one that signed this one.
            let v = openssl_may_fail(&["verify", "-partial_chain", "-CAfile", s(&pem), s(&cert)]);
            assert!(
                v.stdout.contains(": OK"),
                "{url} did not sign {}: {}",
                cert.display(),
                v.describe()
            );
            issuer_pem = Some(pem);
            walked += 1;
        }
        let issuer = issuer_pem.unwrap_or_else(|| cert.clone());
        for url in &crls {
            let r = server.get(&local(url));
            assert_eq!(r.status, 200, "{url}: {}", r.describe());
            let file = demo.work.join(format!("{name}.crl"));
            std::fs::write(&file, &r.body).unwrap();
            crl_verifies(&file, &issuer);
            let next = openssl_crl(&file, &["-nextupdate"]).stdout;
            assert!(!next.trim().is_empty(), "{url}: {next}");
            walked += 1;
        }
        for url in &ocsp {
            assert!(local(url) == "/ocsp", "{url}");
            assert_eq!(
                ocsp_status(&demo, &server.url(), &issuer, &cert),
                "good",
                "{url}"
            );
            walked += 1;
        }
    }
    // issuing CA: caIssuers + CRL; NES and partner: caIssuers + CRL + OCSP each.
    assert_eq!(walked, 2 + 3 + 3, "every URL walked");
    server.assert_running();
}

/// The offline root: `nesca root init` on a token and store of its own; `nesca init
/// --external-root` makes only the issuing CA's key and its request; `nesca root sign`
/// certifies it; `nesca ca import-cert` refuses a certificate for another key or a root that
/// is not one, then installs the right one (the root's key stays offline: the online CA
/// never signs as the root); `nesca root crl` + `nesca ca import-crl` publish the root's CRL
/// (an older one refused), which `nesca serve` serves at the URL the issuing CA names, and
/// the online CA issues, answers OCSP and publishes its own CRLs.
#[test]
fn an_offline_root_certifies_the_online_issuing_ca() {
    let root = Demo::empty();
    root.nesca(&[
        "root",
        "init",
        "--demo",
        "--dir",
        s(&root.dir),
        "--public-url",
        LINT_URL,
    ])
    .ok();
    let online = Demo::empty();
    online
        .init_again(&["--public-url", LINT_URL, "--external-root"])
        .ok();
    let csr = online.path("issuing-ca.csr");
    assert!(csr.is_file() && !online.path("issuing-ca.pem").exists());
    let config = online.config();
    let text = std::fs::read_to_string(&config).unwrap();
    let text = toml_replace(&text, "server", "listen", "127.0.0.1:0");
    std::fs::write(
        &config,
        toml_replace_raw(&text, "ocsp", "poll_interval_ms", "50"),
    )
    .unwrap();
    let (root_cfg, root_pem) = (root.config(), root.path("root-ca.pem"));

    // Refused: a certificate for another key (the root signs any request), a "root" that is
    // not self-issued.
    let stranger = root.work.join("stranger.pem");
    let other_csr = online.csr("stranger", Key::P256);
    root.nesca(&[
        "root",
        "sign",
        "--config",
        s(&root_cfg),
        "--csr",
        s(&other_csr),
        "--out",
        s(&stranger),
    ])
    .ok();
    let issuing = root.work.join("issuing.pem");
    root.nesca(&[
        "root",
        "sign",
        "--config",
        s(&root_cfg),
        "--csr",
        s(&csr),
        "--out",
        s(&issuing),
    ])
    .ok();
    for (cert, root_file, rule) in [
        (&stranger, &root_pem, "cert: "),
        (&issuing, &issuing, "root: is not self-issued"),
    ] {
        let r = online.nesca(&[
            "ca",
            "import-cert",
            "--config",
            s(&config),
            "--cert",
            s(cert),
            "--root",
            s(root_file),
        ]);
        assert!(!r.success() && r.stderr.contains(rule), "{}", r.describe());
    }
    let imported = online
        .nesca(&[
            "ca",
            "import-cert",
            "--config",
            s(&config),
            "--cert",
            s(&issuing),
            "--root",
            s(&root_pem),
        ])
        .ok();
    let v: Value = serde_json::from_str(imported.stdout.trim()).unwrap();
    assert_eq!(
        v["root_crl_urls"][0],
        format!("{LINT_URL}/crl/root-ca.crl"),
        "{v}"
    );
    let list = ca_list(&online, 0);
    let root_row = list.iter().find(|c| c["id"] == "root-ca").unwrap();
    assert_eq!(root_row["key_label"], "offline:root-ca", "{root_row}");
    current_signer(&list);
    // The online CA cannot sign as the root.
    let out = online.work.join("nope.crl");
    let r = crl_of(&online, "root-ca", &out);
    assert!(
        !r.success() && r.stderr.contains("no key on this token"),
        "{}",
        r.describe()
    );

    // The root's CRL, made offline and published online; an older one is refused.
    let import_crl =
        |crl: &Path| online.nesca(&["ca", "import-crl", "--config", s(&config), "--crl", s(crl)]);
    let first = root.work.join("root-1.crl");
    root.nesca(&["root", "crl", "--config", s(&root_cfg), "--out", s(&first)])
        .ok();
    let second = root.work.join("root-2.crl");
    root.nesca(&["root", "crl", "--config", s(&root_cfg), "--out", s(&second)])
        .ok();
    import_crl(&second).ok();
    let older = import_crl(&first);
    assert!(
        !older.success() && older.stderr.contains("older than the published one"),
        "{}",
        older.describe()
    );
    let not_a_crl = import_crl(&issuing);
    assert!(
        !not_a_crl.success() && not_a_crl.stderr.contains("crl: "),
        "{}",
        not_a_crl.describe()
    );

    // In service: issuance, OCSP, and the root's CRL where the issuing CA says.
    let (nes, _) = online.issue_ok(&online.csr("nes", Key::P256), "nes.pem", &[]);
    let server = Server::serve(&online);
    let served = server.get("/crl/root-ca.crl");
    assert_eq!(served.status, 200, "{}", served.describe());
    assert_eq!(served.body, std::fs::read(&second).unwrap());
    assert_eq!(
        ocsp_status(&online, &server.url(), &online.path("issuing-ca.pem"), &nes),
        "good"
    );
    let chain = openssl(&[
        "verify",
        "-CAfile",
        s(&online.path("ca-chain.pem")),
        s(&nes),
    ])
    .stdout;
    assert!(chain.contains(": OK"), "{chain}");
    drop(server);

    // The root refuses to certify its own name.
    let own = make_csr_for(
        &root.work,
        "own-name",
        Key::P256,
        "/C=TR/O=nesca Demo ESHS/CN=nesca Demo Root CA",
        false,
    );
    let refused = root.nesca(&[
        "root",
        "sign",
        "--config",
        s(&root_cfg),
        "--csr",
        s(&own),
        "--out",
        s(&root.work.join("own.pem")),
    ]);
    assert!(
        !refused.success() && refused.stderr.contains("names the root itself"),
        "{}",
        refused.describe()
    );

    // The root revokes the issuing CA; its CRL, imported online, stops issuance there.
    let serial = openssl(&["x509", "-in", s(&issuing), "-noout", "-serial"]).stdout;
    let serial = serial.trim().trim_start_matches("serial=").to_lowercase();
    root.nesca(&[
        "root",
        "revoke",
        "--config",
        s(&root_cfg),
        "--serial",
        &serial,
        "--reason",
        "cACompromise",
    ])
    .ok();
    let third = root.work.join("root-3.crl");
    root.nesca(&["root", "crl", "--config", s(&root_cfg), "--out", s(&third)])
        .ok();
    let imported = import_crl(&third).ok();
    let v: Value = serde_json::from_str(imported.stdout.trim()).unwrap();
    assert_eq!(v["issuing_ca_revoked"], true, "{v}");
    let after = online.issue(&online.csr("after", Key::P256), &[]);
    assert!(
        !after.success() && after.stderr.contains("is revoked"),
        "{}",
        after.describe()
    );
    let list = ca_list(&online, 0);
    let nes_ca = list.iter().find(|c| c["id"] == "nes-ca").unwrap();
    assert_eq!(nes_ca["status"], "revoked", "{nes_ca}");
    // Un-revoking the row by hand (an intruder with the database file) is found by the audit.
    online
        .nesca(&["audit", "checkpoint", "--config", s(&config)])
        .ok();
    rusqlite::Connection::open(online.path("nesca.db"))
        .unwrap()
        .execute("UPDATE cas SET revoked_at = NULL WHERE id = 'nes-ca'", [])
        .unwrap();
    let audit = online.nesca(&["audit", "verify", "--config", s(&config)]);
    assert!(
        !audit.success() && audit.stderr.contains("ca-revoked"),
        "{}",
        audit.describe()
    );
}
