//! Files on disk (docs/security.md, "Files on disk"): what `nesca init --demo` and the outbox
//! write that holds secrets or personal data is its owner's alone (files 0600, directories
//! 0700); a store, its directory or the PIN file that group or others can reach stops every
//! command that would open it; the external SMS program inherits neither the HSM PIN nor the
//! SMTP password from nesca's environment; a delivered access password is nowhere in the store.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::idcard::{Options, World};
use crate::support::institution::{import_signed_rows, institution, json as stdout_json};
use crate::support::outbox::{access_password_in, outbox_texts};
use crate::support::server::{server_demo, Server};
use crate::support::*;

/// What `init --demo` writes that anyone may read: certificates and settings, no secret.
const PUBLIC: [&str; 8] = [
    "root-ca.pem",
    "admin-tls.pem",
    "portal-tls.pem",
    "issuing-ca.pem",
    "ocsp-signer.pem",
    "ca-chain.pem",
    "nesca.toml",
    "softhsm2.conf",
];

fn mode(p: &Path) -> u32 {
    fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()));
}

/// Every file and directory under `dir` (itself excluded), depth first.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut all = Vec::new();
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all.extend(tree(&path));
        }
        all.push(path);
    }
    all
}

#[test]
fn init_demo_leaves_secrets_and_the_store_to_their_owner() {
    let demo = Demo::init_fresh(&[]);
    assert_eq!(mode(&demo.dir), 0o700, "the demo directory");
    for (name, expected) in [
        ("nesca.db", 0o600),
        ("user-pin", 0o600),
        ("so-pin", 0o600),
        ("tokens", 0o700),
    ] {
        assert_eq!(mode(&demo.path(name)), expected, "{name}");
    }
    // Everything else but the public files: no access for group or others, the token's own
    // files (SoftHSM's) included.
    let all = tree(&demo.dir);
    assert!(all.len() > 12, "{all:?}");
    for path in all {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.parent() == Some(demo.dir.as_path()) && PUBLIC.contains(&name.as_str()) {
            continue;
        }
        assert_eq!(
            mode(&path) & 0o077,
            0,
            "{} is open to group or others (mode {:04o})",
            path.display(),
            mode(&path)
        );
    }
    // The store a command opens and closes again stays so (SQLite gives -wal and -shm the
    // database's mode).
    demo.nesca(&["cert", "list", "--config", s(&demo.config())])
        .ok();
    assert_eq!(mode(&demo.path("nesca.db")), 0o600);
}

#[test]
fn a_store_or_pin_file_open_to_others_stops_every_command_that_opens_it() {
    let demo = server_demo();
    let config = demo.config();
    let config = s(&config);
    let commands: [&[&str]; 5] = [
        &["serve", "--config", config],
        &["ocsp", "--config", config, "--listen", "127.0.0.1:0"],
        &["cert", "list", "--config", config],
        &["outbox", "send", "--config", config],
        &["audit", "verify", "--config", config],
    ];
    let db = demo.path("nesca.db");
    for (target, bad, fix) in [
        (&db, 0o644, "chmod 600"),
        (&db, 0o660, "chmod 600"),
        (&demo.dir, 0o755, "chmod 700"),
        (&demo.dir, 0o770, "chmod 700"),
    ] {
        let good = mode(target);
        chmod(target, bad);
        for args in commands {
            let started = Instant::now();
            let out = demo.nesca(args);
            assert_refusal(
                &out,
                &["store.sqlite", s(target), &format!("(mode {bad:04o})"), fix],
            );
            assert_eq!(out.status.code(), Some(1), "{}", out.describe());
            assert!(started.elapsed() < Duration::from_secs(60), "{args:?}");
        }
        chmod(target, good);
    }
    // The PIN file: serve and ocsp (they log in at start) refuse it too.
    let pin = demo.path("user-pin");
    chmod(&pin, 0o640);
    for args in &commands[..2] {
        assert_refusal(&demo.nesca(args), &["hsm.pin_file", s(&pin), "chmod 600"]);
    }
    chmod(&pin, 0o600);
    demo.nesca(commands[2]).ok();
}

/// The institution of these tests.
const INSTITUTION: &str = "ankara-bb";

/// Registers the institution and imports a signed csv list of people given as
/// `TCKN;GIVEN;SURNAME;EMAIL;MOBILE` rows.
fn import_people(demo: &Demo, people: &[&str]) {
    let (cert, key) = institution(demo, INSTITUTION, "0680049583");
    let rows: Vec<String> = people.iter().map(|p| format!("{p};Bilgi İşlem")).collect();
    import_signed_rows(demo, INSTITUTION, (&cert, &key), "liste", &rows);
}

/// The access password in an `.eml` file's text.
fn password_in(mail: &str) -> String {
    access_password_in(mail).expect("the e-mail has a password line")
}

#[test]
fn delivered_access_passwords_are_in_owner_only_files_and_nowhere_in_the_store() {
    let demo = Demo::init();
    import_people(
        &demo,
        &[
            "10000000078;Çağrı;Öztürk;cagri@ankara.bel.tr;+905331112233",
            "10000000214;İpek;Şahin;ipek@ankara.bel.tr;+905051112233",
        ],
    );
    let config = demo.config();
    let sent = demo.nesca(&["outbox", "send", "--config", s(&config)]).ok();
    assert_eq!(stdout_json(&sent)["sent"], 2, "{}", sent.describe());

    // The pickup directory is the delivery: its files stay, the owner's alone.
    let outbox = demo.path("outbox");
    let email = outbox.join("email");
    assert_eq!(mode(&outbox), 0o700, "{}", outbox.display());
    assert_eq!(mode(&email), 0o700, "{}", email.display());
    let mut passwords = Vec::new();
    for path in tree(&email) {
        assert_eq!(mode(&path), 0o600, "{}", path.display());
        passwords.push(password_in(&fs::read_to_string(&path).unwrap()));
    }
    assert_eq!(passwords.len(), 2);

    // Delivered: the rows say so, and no byte of the store's files holds a password (only its
    // argon2 hash is kept, for the sign-in).
    let list = demo.nesca(&["outbox", "list", "--config", s(&config)]).ok();
    let rows: Vec<serde_json::Value> = list
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter().all(|m| m["status"] == "sent"),
        "{}",
        list.stdout
    );
    for suffix in ["", "-wal", "-shm"] {
        let file = demo.path(&format!("nesca.db{suffix}"));
        let Ok(bytes) = fs::read(&file) else { continue };
        for p in &passwords {
            assert!(
                !contains_bytes(&bytes, p.as_bytes()),
                "{} holds a delivered access password (not shown)",
                file.display()
            );
        }
    }
    for p in &passwords {
        assert!(!list.stdout.contains(p.as_str()) && !sent.stdout.contains(p.as_str()));
    }
}

#[test]
fn the_sms_program_inherits_neither_the_pin_nor_the_smtp_password() {
    const PIN_VAR: &str = "NESCA_E2E_HSM_PIN";
    const SMTP_VAR: &str = "NESCA_E2E_SMTP_PASSWORD";
    let smtp_password = "e2e-smtp-secret-4410";
    let demo = server_demo();
    let world = World::new(&demo, Options::default());
    let pin = fs::read_to_string(demo.path("user-pin"))
        .unwrap()
        .trim()
        .to_owned();
    // The program dumps its environment (and its arguments) where the test reads them.
    let dump = demo.work.join("sms-env.txt");
    let program = demo.work.join("sms-gateway.sh");
    fs::write(
        &program,
        format!(
            "#!/bin/sh\ncat > /dev/null\necho \"$@\" > '{dump}.args'\nenv > '{dump}.tmp'\nmv '{dump}.tmp' '{dump}'\n",
            dump = s(&dump)
        ),
    )
    .unwrap();
    chmod(&program, 0o700);
    // The officer's certificate and the list first, with the PIN file.
    import_people(
        &demo,
        &["10000000078;Çağrı;Öztürk;cagri@ankara.bel.tr;+905331112233"],
    );
    // Then the PIN comes from nesca's environment (hsm.pin_env), as an SMTP password does.
    let path = demo.config();
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains("pin_file = \"user-pin\"\n"), "{text}");
    let text = text.replace(
        "pin_file = \"user-pin\"\n",
        &format!("pin_env = \"{PIN_VAR}\"\n"),
    );
    fs::write(
        &path,
        format!(
            "{text}\n[outbox]\ninterval_seconds = 1\nsms_command = [\"{}\"]\n",
            s(&program)
        ),
    )
    .unwrap();
    let _server = Server::serve_with_env(&demo, &[(PIN_VAR, &pin), (SMTP_VAR, smtp_password)]);

    // Sign in with the e-mailed password and send the form: an SMS code goes out through the
    // program.
    let email = demo.path("outbox/email");
    let password = wait_for_within(
        "the access password e-mail",
        Duration::from_secs(60),
        || outbox_texts(&email).first().map(|mail| password_in(mail)),
    );
    let portal = world.client(Some(&world.kdhs_client));
    let applicants = "/channels/batch-import/v1/applicants";
    let r = portal.call(
        "POST",
        &format!("{applicants}/sign-in"),
        None,
        Some(&json!({ "v": 1, "tckn": "10000000078", "password": password })),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let token = serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let form = json!({
        "v": 1,
        "security_word": "Kırmızı7",
        "do_not_publish": false,
        "delivery_address": "Atatürk Bulvarı No: 1, Çankaya / ANKARA",
    });
    let r = portal.call(
        "POST",
        &format!("{applicants}/me/form"),
        Some(&token),
        Some(&form),
    );
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));

    let env = wait_for_within("the SMS program's run", Duration::from_secs(60), || {
        fs::read_to_string(&dump).ok()
    });
    let args = fs::read_to_string(format!("{}.args", s(&dump))).unwrap();
    assert_eq!(args.trim(), "+905331112233", "the number is its argument");
    let names: Vec<&str> = env
        .lines()
        .filter_map(|l| l.split_once('=').map(|(n, _)| n))
        .collect();
    assert!(names.contains(&"PATH"), "{names:?}");
    for name in &names {
        assert!(
            ["PATH", "LANG", "PWD", "SHLVL", "_", "OLDPWD"].contains(name),
            "the SMS program got {name} from nesca's environment"
        );
    }
    assert!(!names.contains(&PIN_VAR) && !names.contains(&SMTP_VAR));
    assert!(
        !env.contains(&pin) && !env.contains(smtp_password),
        "the SMS program's environment holds the PIN or the SMTP password (not shown)"
    );
}
