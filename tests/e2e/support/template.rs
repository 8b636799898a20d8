//! The prepared demo: `nesca init --demo` (key generation in a new SoftHSM token, several
//! seconds) runs once per distinct set of flags per test process, into a template directory;
//! every test then gets a copy of it with a token, a store and a configuration of its own.
//!
//! A copy is a demo like any other because nothing in it keys on its directory but the paths
//! written into it: the configuration names its files relative to itself (`nesca.toml`), and
//! `softhsm2.conf` names the token directory absolutely, so that path is rewritten to the
//! copy's. The token's label and serial are the template's in every copy, which is harmless:
//! each copy's `softhsm2.conf` points at its own token directory, and nesca sets
//! `SOFTHSM2_CONF` for itself from its configuration. Any other file that names the template's
//! directory stops the copy (see [`rewrite_paths`]) rather than sharing the template's files.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use super::demo::Demo;
use super::der::contains_bytes;
use super::run::s;

/// The template demo for `flags`, made on first use. Each set of flags has its own cell, so
/// that tests needing different templates make them in parallel while tests needing the same
/// one wait for the first. The templates live for the whole process, in Cargo's scratch
/// directory for integration tests (`target/tmp`; a static is never dropped, and
/// `cargo clean` removes them).
#[track_caller]
fn template(flags: &[&str]) -> &'static Demo {
    type Cells = BTreeMap<Vec<String>, &'static OnceLock<Demo>>;
    static TEMPLATES: Mutex<Cells> = Mutex::new(BTreeMap::new());
    let key: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
    let cell = *TEMPLATES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(key)
        .or_insert_with(|| Box::leak(Box::new(OnceLock::new())));
    // A panic in init leaves the cell empty: the next test tries again, and fails the same way.
    cell.get_or_init(|| {
        let parent = Path::new(env!("CARGO_TARGET_TMPDIR"));
        Demo::init_fresh_in(parent, "nesca-e2e-template-", flags)
    })
}

/// Copies the template demo for `flags` to `dest` (which must not exist), then rewrites the
/// template's directory to `dest` in every file that names it.
#[track_caller]
pub(super) fn copy_prepared(flags: &[&str], dest: &Path) {
    let template = template(flags);
    copy_tree(&template.dir, dest);
    rewrite_paths(dest, s(&template.dir), s(dest));
}

/// Copies the directory `from` to `to`, recursively, with each file's and directory's
/// permission bits (the PIN files must stay 0600, the token directory 0700).
#[track_caller]
fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir(to).unwrap_or_else(|e| panic!("creating {}: {e}", to.display()));
    for entry in fs::read_dir(from).unwrap_or_else(|e| panic!("reading {}: {e}", from.display())) {
        let entry = entry.expect("directory entry");
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().expect("file type");
        if kind.is_dir() {
            copy_tree(&source, &target);
        } else if kind.is_file() {
            // fs::copy carries the permission bits over.
            fs::copy(&source, &target)
                .unwrap_or_else(|e| panic!("copying {}: {e}", source.display()));
        } else {
            panic!(
                "the template holds {}, neither a file nor a directory",
                source.display()
            );
        }
    }
    let mode = fs::metadata(from).expect("metadata").permissions().mode();
    fs::set_permissions(to, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", to.display()));
}

/// Replaces `old` by `new` in every file under `dir` that contains it. Panics on such a file
/// that is not UTF-8 text (the store, a token object): its copy would still point into the
/// template, and rewriting it byte-wise could break it.
#[track_caller]
fn rewrite_paths(dir: &Path, old: &str, new: &str) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rewrite_paths(&path, old, new);
            continue;
        }
        let bytes = fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        if !contains_bytes(&bytes, old.as_bytes()) {
            continue;
        }
        let text = String::from_utf8(bytes).unwrap_or_else(|_| {
            panic!(
                "{} names the template directory {old} and is not text: the prepared demo \
                 cannot be copied (make the test run `Demo::init_fresh`)",
                path.display()
            )
        });
        // fs::write keeps the file's permission bits.
        fs::write(&path, text.replace(old, new))
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }
}

/// Two copies of one template: each names its own token directory, keeps the PIN files
/// private, and has a store of its own.
#[test]
fn a_prepared_demo_is_copied_with_its_own_paths() {
    use super::openssl::Key;
    let (a, b) = (Demo::init(), Demo::init());
    let template_dir = s(&template(&[]).dir).to_string();
    for demo in [&a, &b] {
        let conf = fs::read_to_string(demo.path("softhsm2.conf")).expect("softhsm2.conf");
        let tokens = demo.path("tokens");
        assert!(
            conf.contains(&format!("directories.tokendir = {}\n", s(&tokens))),
            "softhsm2.conf does not name the copy's token directory:\n{conf}"
        );
        assert!(
            !conf.contains(&template_dir),
            "softhsm2.conf names the template:\n{conf}"
        );
        for pin in ["user-pin", "so-pin"] {
            let mode = fs::metadata(demo.path(pin))
                .expect("PIN file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{pin} of the copy");
        }
        let mode = fs::metadata(&tokens).expect("tokens").permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "the copy's token directory");
    }
    let before = b.cert_list_lines();
    let csr = a.csr("own", Key::P256);
    a.issue_ok(&csr, "own.pem", &[]);
    assert_eq!(
        a.cert_list_lines().len(),
        before.len() + 1,
        "the copy that issued"
    );
    assert_eq!(
        b.cert_list_lines(),
        before,
        "the other copy's store changed"
    );
}
