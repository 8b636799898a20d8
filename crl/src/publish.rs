//! Atomic publication of CRL files: readers (the HTTP server) see the old file or the new one,
//! never a partial one.
//!
//! The file is written to a temporary name in the same directory (so the rename cannot cross
//! file systems), flushed and fsynced, renamed over the published name (atomic on POSIX), and
//! the directory is fsynced so that the rename itself survives a crash.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nesca_ca_types::IssuerId;

use crate::error::CrlError;
use crate::header::CrlType;

/// `{ca}.crl`: the complete CRL, the URL the certificates' cRLDistributionPoints name.
pub fn full_file_name(ca: &IssuerId) -> String {
    format!("{ca}.crl")
}

/// `{ca}-delta.crl`: the delta CRL, the URL the complete CRL's freshestCRL names.
pub fn delta_file_name(ca: &IssuerId) -> String {
    format!("{ca}-delta.crl")
}

/// The file name for a CRL of `kind`.
pub fn file_name(ca: &IssuerId, kind: CrlType) -> String {
    match kind {
        CrlType::Full => full_file_name(ca),
        CrlType::Delta => delta_file_name(ca),
    }
}

/// Temporary files start with this and end with [`TEMP_SUFFIX`]; a published name may not
/// start with it, so a reader serving published names never serves a temporary file.
const TEMP_PREFIX: &str = ".";
const TEMP_SUFFIX: &str = ".tmp";

/// Distinguishes temporary files of concurrent publications within one process (the process
/// id distinguishes processes).
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Buffer between the generator and the file; large writes (the entries) bypass it.
const WRITE_BUFFER: usize = 1 << 20;

/// A temporary file older than this was left by a publication that crashed: a live one is
/// renamed within seconds.
const ABANDONED_AFTER: std::time::Duration = std::time::Duration::from_secs(3600);

/// Removes temporary files that crashed publications left behind. Best effort: a file that
/// cannot be read or removed stays (it is never served: published names never start with
/// [`TEMP_PREFIX`]).
fn remove_abandoned_temp_files(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !(name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX)) {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > ABANDONED_AFTER);
        if old && fs::remove_file(entry.path()).is_ok() {
            tracing::info!(file = %entry.path().display(), "removed a temporary CRL file left by a crash");
        }
    }
}

/// Publishes files into one directory atomically.
#[derive(Debug, Clone)]
pub struct Publisher {
    dir: PathBuf,
}

impl Publisher {
    /// A publisher for `dir`, created (with its parents) if missing.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, CrlError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|source| CrlError::Publish {
            step: "create directory",
            path: dir.clone(),
            source,
        })?;
        remove_abandoned_temp_files(&dir);
        Ok(Publisher { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where `file_name` is published.
    pub fn path(&self, file_name: &str) -> PathBuf {
        self.dir.join(file_name)
    }

    /// Publishes what `write` writes as `file_name`. `write` may stream (a 50 MB CRL goes
    /// straight into the temporary file). If `write` fails (or panics) or any step fails
    /// before the rename, the published file is unchanged and the temporary file is removed.
    pub fn publish_with<T>(
        &self,
        file_name: &str,
        write: impl FnOnce(&mut dyn Write) -> Result<T, CrlError>,
    ) -> Result<T, CrlError> {
        check_file_name(file_name)?;
        let target = self.path(file_name);
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp_path = self.dir.join(format!(
            "{TEMP_PREFIX}{file_name}.{}.{n}{TEMP_SUFFIX}",
            std::process::id()
        ));
        let fail = |step: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| CrlError::Publish { step, path, source }
        };

        // create_new: never truncate a file someone else is writing.
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp_path)
            .map_err(fail("create temporary file", &temp_path))?;
        let guard = TempFile(Some(temp_path.clone()));

        let mut w = BufWriter::with_capacity(WRITE_BUFFER, file);
        let value = write(&mut w)?;
        let file = w
            .into_inner()
            .map_err(|e| e.into_error())
            .map_err(fail("write temporary file", &temp_path))?;
        file.sync_all()
            .map_err(fail("fsync temporary file", &temp_path))?;
        drop(file);

        fs::rename(&temp_path, &target).map_err(fail("rename", &target))?;
        guard.disarm();
        // Without this, a crash soon after could bring back the old file (or none).
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(fail("fsync directory", &self.dir))?;
        tracing::debug!(path = %target.display(), "published");
        Ok(value)
    }

    /// Publishes `bytes` as `file_name`.
    pub fn publish_bytes(&self, file_name: &str, bytes: &[u8]) -> Result<(), CrlError> {
        self.publish_with(file_name, |w| w.write_all(bytes).map_err(CrlError::Output))
    }
}

/// A published name is one plain, visible file name: no directories, nothing that could
/// collide with the temporary files.
fn check_file_name(name: &str) -> Result<(), CrlError> {
    let rule = if name.is_empty() {
        Some("must not be empty")
    } else if name.contains(['/', '\\', '\0']) {
        Some("must be a plain file name without path separators")
    } else if name.starts_with(TEMP_PREFIX) {
        Some("must not start with '.' (reserved for temporary files)")
    } else {
        None
    };
    match rule {
        Some(rule) => Err(CrlError::FileName {
            name: name.to_string(),
            rule,
        }),
        None => Ok(()),
    }
}

/// Removes the temporary file on every path that does not reach the rename, including a
/// panic in the caller's closure.
struct TempFile(Option<PathBuf>);

impl TempFile {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            if let Err(e) = fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "could not remove temporary CRL file");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn file_names() {
        let ca = IssuerId::parse("nes-ca").unwrap();
        assert_eq!(full_file_name(&ca), "nes-ca.crl");
        assert_eq!(delta_file_name(&ca), "nes-ca-delta.crl");
        assert_eq!(file_name(&ca, CrlType::Delta), "nes-ca-delta.crl");
        assert_eq!(file_name(&ca, CrlType::Full), "nes-ca.crl");
    }

    #[test]
    fn abandoned_temporary_files_are_removed_and_fresh_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join(".nes-ca.crl.1.0.tmp");
        let fresh = dir.path().join(".nes-ca.crl.2.0.tmp");
        let published = dir.path().join("nes-ca.crl");
        for f in [&old, &fresh, &published] {
            fs::write(f, b"x").unwrap();
        }
        let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
        File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(two_hours_ago)
            .unwrap();
        Publisher::new(dir.path()).unwrap();
        assert!(!old.exists());
        assert!(fresh.exists() && published.exists());
    }

    #[test]
    fn new_creates_the_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/crl");
        let p = Publisher::new(&dir).unwrap();
        assert!(dir.is_dir());
        assert_eq!(p.path("x.crl"), dir.join("x.crl"));
        assert_eq!(p.dir(), dir);
    }

    #[test]
    fn publish_replaces_and_leaves_no_temporary_file() {
        let tmp = tempfile::tempdir().unwrap();
        let p = Publisher::new(tmp.path()).unwrap();
        p.publish_bytes("ca.crl", b"first").unwrap();
        assert_eq!(fs::read(p.path("ca.crl")).unwrap(), b"first");
        let n = p
            .publish_with("ca.crl", |w| {
                w.write_all(b"sec").map_err(CrlError::Output)?;
                w.write_all(b"ond").map_err(CrlError::Output)?;
                Ok(42)
            })
            .unwrap();
        assert_eq!(n, 42);
        assert_eq!(fs::read(p.path("ca.crl")).unwrap(), b"second");
        assert_eq!(listing(tmp.path()), ["ca.crl"]);
    }

    #[test]
    fn a_failing_writer_leaves_the_old_file_and_no_temporary_file() {
        let tmp = tempfile::tempdir().unwrap();
        let p = Publisher::new(tmp.path()).unwrap();
        p.publish_bytes("ca.crl", b"old").unwrap();
        let err = p
            .publish_with("ca.crl", |w| -> Result<(), CrlError> {
                w.write_all(b"partial new content")
                    .map_err(CrlError::Output)?;
                // While the closure runs, the temporary file exists beside the old one.
                assert_eq!(listing(tmp.path()).len(), 2);
                Err(CrlError::header("test", "fails on purpose"))
            })
            .unwrap_err();
        assert!(err.to_string().contains("fails on purpose"));
        assert_eq!(fs::read(p.path("ca.crl")).unwrap(), b"old");
        assert_eq!(listing(tmp.path()), ["ca.crl"]);
    }

    #[test]
    fn a_panicking_writer_leaves_no_temporary_file() {
        let tmp = tempfile::tempdir().unwrap();
        let p = Publisher::new(tmp.path()).unwrap();
        let r = std::panic::catch_unwind(|| {
            let _ = p.publish_with("ca.crl", |_w| -> Result<(), CrlError> { panic!("boom") });
        });
        assert!(r.is_err());
        assert!(listing(tmp.path()).is_empty());
    }

    #[test]
    fn a_failed_rename_leaves_no_temporary_file() {
        let tmp = tempfile::tempdir().unwrap();
        let p = Publisher::new(tmp.path()).unwrap();
        // A non-empty directory where the file should go: rename(2) fails.
        fs::create_dir(p.path("ca.crl")).unwrap();
        fs::write(p.path("ca.crl").join("x"), b"x").unwrap();
        let err = p.publish_bytes("ca.crl", b"new").unwrap_err();
        assert!(
            matches!(err, CrlError::Publish { step: "rename", .. }),
            "{err}"
        );
        assert_eq!(listing(tmp.path()), ["ca.crl"]);
    }

    #[test]
    fn bad_file_names_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let p = Publisher::new(tmp.path()).unwrap();
        for name in ["", "../x.crl", "a/b.crl", ".hidden.crl", "..", "."] {
            assert!(
                matches!(p.publish_bytes(name, b"x"), Err(CrlError::FileName { .. })),
                "{name:?}"
            );
        }
        assert!(listing(tmp.path()).is_empty());
    }

    #[test]
    fn readers_see_old_or_new_never_partial() {
        // A reader thread keeps reading while the writer republishes two different contents;
        // every read must be one of them exactly.
        let tmp = tempfile::tempdir().unwrap();
        let p = Publisher::new(tmp.path()).unwrap();
        let a = vec![b'a'; 1 << 20];
        let b = vec![b'b'; 3 << 19];
        p.publish_bytes("ca.crl", &a).unwrap();
        let path = p.path("ca.crl");
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            let reader = s.spawn(|| {
                let mut reads = 0;
                while !stop.load(Ordering::Relaxed) {
                    let got = fs::read(&path).unwrap();
                    assert!(got == a || got == b, "partial read of {} bytes", got.len());
                    reads += 1;
                }
                reads
            });
            for i in 0..40 {
                p.publish_bytes("ca.crl", if i % 2 == 0 { &b } else { &a })
                    .unwrap();
            }
            stop.store(true, Ordering::Relaxed);
            assert!(reader.join().unwrap() > 0);
        });
        assert_eq!(listing(tmp.path()), ["ca.crl"]);
    }
}
