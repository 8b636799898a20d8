//! What every refusal of nesca must look like, and a snapshot of a directory to prove that a
//! refusal changed nothing.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::run::Output;

/// Asserts what every refusal of nesca must look like: a non-zero exit status and, on stderr,
/// exactly one line that starts with `error: ` and contains each phrase (case-insensitively).
#[track_caller]
pub(crate) fn assert_refusal(out: &Output, phrases: &[&str]) {
    assert!(
        !out.success(),
        "expected a refusal (non-zero exit) mentioning {phrases:?}, but it succeeded: {}",
        out.describe()
    );
    let body = out.stderr.strip_suffix('\n').unwrap_or(&out.stderr);
    let body = body.strip_suffix('\r').unwrap_or(body);
    assert!(
        !body.is_empty() && !body.contains('\n'),
        "a refusal must write exactly one line on stderr, got {} line(s): {}",
        out.stderr.lines().count(),
        out.describe()
    );
    assert!(
        body.starts_with("error: "),
        "a refusal's stderr line must start with `error: `: {}",
        out.describe()
    );
    let lower = body.to_lowercase();
    for p in phrases {
        assert!(
            lower.contains(&p.to_lowercase()),
            "the refusal does not mention {p:?} (expected all of {phrases:?}): {}",
            out.describe()
        );
    }
    assert!(
        !out.stdout.contains("BEGIN CERTIFICATE"),
        "a refusal must not write a certificate: {}",
        out.describe()
    );
}

/// Every file under `dir` with its bytes and permission bits, to prove that nothing changed.
pub(crate) fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap_or_else(|e| panic!("reading {}: {e}", d.display())) {
            let entry = entry.expect("directory entry");
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).expect("metadata");
            if meta.is_dir() {
                out.insert(path.clone(), (Vec::new(), meta.permissions().mode()));
                stack.push(path);
            } else {
                let bytes = fs::read(&path).unwrap_or_default();
                out.insert(path, (bytes, meta.permissions().mode()));
            }
        }
    }
    out
}
