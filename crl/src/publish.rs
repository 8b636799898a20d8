//! Atomic publication of CRL files: readers (the HTTP server) see the old file or the new one,
//! never a partial one; and a published CRL never goes back to a lower cRLNumber.
//!
//! The file is written to a temporary name in the same directory (so the rename cannot cross
//! file systems), flushed and fsynced, renamed over the published name (atomic on POSIX), and
//! the directory is fsynced so that the rename itself survives a crash.
//!
//! Publishers take turns from the check to the rename: each holds an exclusive advisory lock
//! (`flock(2)`) on the publication directory itself, whichever thread or process it is
//! (`nesca serve`'s schedule, `nesca crl`, the admin API, under any configuration naming the
//! directory). A numbered publication ([`Publisher::publish_crl_with`]) reads the cRLNumber of
//! the file in place under that lock and leaves it there when it is not lower than the new
//! CRL's: a slower publisher never replaces a newer CRL with an older one. Nothing is locked
//! while the CRL is generated and written, so the lock is held for a read and a rename. Anyone
//! who can open the directory can take that lock too: a publisher waits for it at most
//! [`LOCK_WAIT`] and then goes on without it (publishers sharing a store also take turns under
//! the CA's lease, so the lock is the second guard, not the only one).

use std::cmp::Ordering as CmpOrdering;
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use const_oid::db::rfc5280::ID_CE_CRL_NUMBER;
use der::asn1::{AnyRef, UintRef};
use der::{Decode, Header, Reader, SliceReader, Tag, TagNumber, Tagged};
use nesca_ca_types::IssuerId;
use x509_cert::ext::Extensions;

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

    /// Publishes what `write` writes as `file_name`, whatever is in place. `write` may stream
    /// (a 50 MB CRL goes straight into the temporary file). If `write` fails (or panics) or
    /// any step fails before the rename, the published file is unchanged and the temporary
    /// file is removed.
    pub fn publish_with<T>(
        &self,
        file_name: &str,
        write: impl FnOnce(&mut dyn Write) -> Result<T, CrlError>,
    ) -> Result<T, CrlError> {
        self.publish_inner(file_name, None, write)
            .map(|(value, _)| value)
    }

    /// Publishes the CRL numbered `number` that `write` writes as `file_name`, unless the file
    /// in place is a CRL whose cRLNumber is not lower than `number`: then that one stays, the
    /// new CRL is not published (its temporary file is removed) and the outcome is
    /// [`PublishOutcome::Kept`]. A file in place that is not a CRL with a cRLNumber is
    /// replaced. Failures as [`Publisher::publish_with`]; a file in place that exists but
    /// cannot be read is an error (step "read the published CRL"), not a replacement.
    pub fn publish_crl_with<T>(
        &self,
        file_name: &str,
        number: u64,
        write: impl FnOnce(&mut dyn Write) -> Result<T, CrlError>,
    ) -> Result<(T, PublishOutcome), CrlError> {
        self.publish_inner(file_name, Some(number), write)
    }

    /// [`Publisher::publish_with`], and with `number` [`Publisher::publish_crl_with`].
    fn publish_inner<T>(
        &self,
        file_name: &str,
        number: Option<u64>,
        write: impl FnOnce(&mut dyn Write) -> Result<T, CrlError>,
    ) -> Result<(T, PublishOutcome), CrlError> {
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

        // From here to the directory's fsync, publishers of this directory take turns: the
        // lock is held until `dir` is closed.
        let dir = File::open(&self.dir).map_err(fail("open directory", &self.dir))?;
        if !lock_exclusive(&dir, LOCK_WAIT).map_err(fail("lock directory", &self.dir))? {
            // Anyone who may read the directory may hold its lock: past the wait it is gone
            // on without (publishers sharing a store also take turns under the CA's lease).
            tracing::warn!(dir = %self.dir.display(), "CRL directory lock held too long by someone; publishing without it");
        }
        if let Some(number) = number {
            if let Some(published) = published_number(&target)? {
                if !replaces(number, published) {
                    tracing::debug!(
                        path = %target.display(),
                        number,
                        published,
                        "not published: the file in place has a cRLNumber at least as high"
                    );
                    drop(guard); // removes the temporary file
                    return Ok((value, PublishOutcome::Kept { published }));
                }
            }
        }
        fs::rename(&temp_path, &target).map_err(fail("rename", &target))?;
        guard.disarm();
        // Without this, a crash soon after could bring back the old file (or none).
        dir.sync_all().map_err(fail("fsync directory", &self.dir))?;
        tracing::debug!(path = %target.display(), "published");
        Ok((value, PublishOutcome::Replaced))
    }

    /// Publishes `bytes` as `file_name`.
    pub fn publish_bytes(&self, file_name: &str, bytes: &[u8]) -> Result<(), CrlError> {
        self.publish_with(file_name, |w| w.write_all(bytes).map_err(CrlError::Output))
    }
}

/// What a numbered publication ([`Publisher::publish_crl_with`]) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishOutcome {
    /// The new CRL is the published file now.
    Replaced,
    /// The published file already held a CRL numbered `published`, not lower than the new
    /// one's: it stays, and the new CRL was not published.
    ///
    /// `published` is the file's cRLNumber, `u128::MAX` for one longer than 16 octets.
    Kept { published: u128 },
}

/// The never-goes-back rule: a CRL numbered `new` replaces a published one numbered
/// `published` only when it is newer (cRLNumbers of one CA only grow, RFC 5280 §5.2.3). The
/// same number is never republished either: the file in place is that CRL or one that took
/// its number first.
pub(crate) fn replaces(new: u64, published: u128) -> bool {
    u128::from(new).cmp(&published) == CmpOrdering::Greater
}

/// How long a publisher waits for the directory's lock: far longer than a rename and a
/// number read take, short enough that a lock held by a stranger cannot stop publication.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Takes the exclusive `flock(2)` on `dir`, trying for at most `wait`; whether it was had.
/// Advisory: it orders publishers, readers never take it.
fn lock_exclusive(dir: &File, wait: std::time::Duration) -> std::io::Result<bool> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        match rustix::fs::flock(dir, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(true),
            Err(rustix::io::Errno::WOULDBLOCK | rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        if std::time::Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// The cRLNumber of the CRL published at `path`: `None` when there is no file, or when it is
/// not a CRL with a cRLNumber (it is replaced, with a warning).
fn published_number(path: &Path) -> Result<Option<u128>, CrlError> {
    // Something other than a regular file at the name is refused without reading it (a
    // FIFO would block the read, with the directory's lock held).
    match fs::symlink_metadata(path) {
        Ok(m) if !m.file_type().is_file() => {
            return Err(CrlError::Publish {
                step: "read the published CRL",
                path: path.to_path_buf(),
                source: std::io::Error::other("not a regular file"),
            })
        }
        _ => {}
    }
    let der = match fs::read(path) {
        Ok(der) => der,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CrlError::Publish {
                step: "read the published CRL",
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let number = crl_number_of(&der);
    if number.is_none() {
        tracing::warn!(
            path = %path.display(),
            "the published file is not a CRL with a cRLNumber: it is replaced"
        );
    }
    Ok(number)
}

/// The cRLNumber of a DER CertificateList (RFC 5280 §5.1, §5.2.3), `u128::MAX` for one
/// longer than 16 octets; `None` when `der` does not read as one or has no cRLNumber. Reads
/// the headers and skips over revokedCertificates without decoding it: a CRL of tens of
/// megabytes costs a pass over a few fields.
pub(crate) fn crl_number_of(der: &[u8]) -> Option<u128> {
    let mut r = SliceReader::new(der).ok()?;
    let outer = Header::decode(&mut r).ok()?; // CertificateList
                                              // Whole: a file cut short (or with bytes after the CRL) is no CRL, whatever it starts with.
    if outer.tag != Tag::Sequence || outer.length != r.remaining_len() {
        return None;
    }
    let tbs = Header::decode(&mut r).ok()?; // TBSCertList
    if tbs.tag != Tag::Sequence {
        return None;
    }
    if r.peek_tag().ok()? == Tag::Integer {
        AnyRef::decode(&mut r).ok()?; // version
    }
    AnyRef::decode(&mut r).ok()?; // signature AlgorithmIdentifier
    AnyRef::decode(&mut r).ok()?; // issuer Name
    AnyRef::decode(&mut r).ok()?; // thisUpdate
    if matches!(r.peek_tag().ok()?, Tag::UtcTime | Tag::GeneralizedTime) {
        AnyRef::decode(&mut r).ok()?; // nextUpdate
    }
    if r.peek_tag().ok()? == Tag::Sequence {
        AnyRef::decode(&mut r).ok()?; // revokedCertificates
    }
    let extensions = AnyRef::decode(&mut r).ok()?; // crlExtensions [0] EXPLICIT
    let explicit_0 = Tag::ContextSpecific {
        constructed: true,
        number: TagNumber::N0,
    };
    if extensions.tag() != explicit_0 {
        return None;
    }
    let extensions = Extensions::from_der(extensions.value()).ok()?;
    let ext = extensions.iter().find(|e| e.extn_id == ID_CE_CRL_NUMBER)?;
    let number = UintRef::from_der(ext.extn_value.as_bytes()).ok()?;
    let bytes = number.as_bytes();
    if bytes.len() > 16 {
        return Some(u128::MAX);
    }
    Some(bytes.iter().fold(0u128, |n, b| (n << 8) | u128::from(*b)))
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
    use crate::entry::CrlEntry;
    use crate::header::{CrlHeader, CrlKind};
    use crate::testkit::{Issuer, NOW};

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

    /// A CRL signed by `issuer`, numbered `number`, a delta (of base `number - 1`) or a full one, with
    /// `entries` revoked certificates.
    fn signed_crl(issuer: &Issuer, number: u64, delta: bool, entries: usize) -> Vec<u8> {
        let header = CrlHeader {
            issuer_cert: &issuer.cert,
            number,
            this_update: NOW,
            next_update: NOW.plus_secs(86_400),
            kind: if delta {
                CrlKind::Delta {
                    base_number: number - 1,
                }
            } else {
                CrlKind::Full { freshest_crl: None }
            },
        };
        let entries = (0..entries).map(|_| {
            Ok::<_, std::convert::Infallible>(CrlEntry {
                serial: nesca_ca_types::Serial::random(),
                revocation_time: NOW.plus_secs(-3600),
                reason: None,
                invalidity_date: None,
            })
        });
        let mut der = Vec::new();
        crate::generate(&header, entries, &issuer.signer, &mut der).unwrap();
        der
    }

    /// Publishes `der` as CRL number `number` through `publish_crl_with`.
    fn publish_numbered(
        p: &Publisher,
        name: &str,
        number: u64,
        der: &[u8],
    ) -> Result<PublishOutcome, CrlError> {
        p.publish_crl_with(name, number, |w| w.write_all(der).map_err(CrlError::Output))
            .map(|((), outcome)| outcome)
    }

    #[test]
    fn the_published_number_never_goes_back() {
        assert!(replaces(4, 3));
        assert!(replaces(1, 0));
        assert!(replaces(u64::MAX, u128::from(u64::MAX - 1)));
        // Equal: the CRL in place took that number first (or is that CRL).
        assert!(!replaces(3, 3));
        assert!(!replaces(3, 4));
        assert!(!replaces(0, 1));
        assert!(!replaces(u64::MAX, u128::from(u64::MAX)));
        // Longer than any number nesca gives (an imported CRL's 20-octet number).
        assert!(!replaces(u64::MAX, u128::MAX));
    }

    #[test]
    fn the_crl_number_is_read_from_full_and_delta_crls() {
        let issuer = Issuer::new();
        for number in [1, 2, 127, 128, 255, 256, 65_536, u64::MAX] {
            for delta in [false, true] {
                for entries in [0, 3] {
                    let der = signed_crl(&issuer, number, delta, entries);
                    assert_eq!(
                        crl_number_of(&der),
                        Some(u128::from(number)),
                        "number {number}, delta {delta}, {entries} entries"
                    );
                    // What x509-cert reads agrees.
                    let crl = x509_cert::crl::CertificateList::from_der(&der).unwrap();
                    assert_eq!(
                        crl.tbs_cert_list
                            .revoked_certificates
                            .map_or(0, |r| r.len()),
                        entries
                    );
                }
            }
        }
        let der = signed_crl(&issuer, 9, false, 2);
        assert_eq!(crl_number_of(&der[..der.len() - 1]), None, "truncated");
        assert_eq!(crl_number_of(&der[..40]), None, "truncated");
        let mut longer = der.clone();
        longer.push(0);
        assert_eq!(crl_number_of(&longer), None, "trailing bytes");
        assert_eq!(crl_number_of(b"not a CRL"), None);
        assert_eq!(crl_number_of(&[]), None);
        // A certificate is a SEQUENCE of a SEQUENCE too, but no CRL.
        let cert = der::Encode::to_der(&issuer.cert).unwrap();
        assert_eq!(crl_number_of(&cert), None);
    }

    /// Anyone who can open the directory can hold its lock: publication waits a bounded
    /// time for it, then goes on without it, and the rule still holds.
    #[test]
    fn a_lock_held_by_a_stranger_delays_publication_but_never_stops_it() {
        let issuer = Issuer::new();
        let tmp = tempfile::tempdir().unwrap();
        let p = Publisher::new(tmp.path()).unwrap();
        let stranger = File::open(tmp.path()).unwrap();
        rustix::fs::flock(&stranger, rustix::fs::FlockOperation::LockShared).unwrap();
        let start = std::time::Instant::now();
        let one = signed_crl(&issuer, 1, false, 0);
        assert_eq!(
            publish_numbered(&p, "ca.crl", 1, &one).unwrap(),
            PublishOutcome::Replaced
        );
        assert!(start.elapsed() >= LOCK_WAIT, "the lock was not waited for");
        assert_eq!(fs::read(p.path("ca.crl")).unwrap(), one);
        drop(stranger);
    }

    #[test]
    fn a_crl_of_a_lower_or_equal_number_never_replaces_the_published_one() {
        let issuer = Issuer::new();
        let tmp = tempfile::tempdir().unwrap();
        let p = Publisher::new(tmp.path()).unwrap();
        for (name, delta) in [("ca.crl", false), ("ca-delta.crl", true)] {
            let five = signed_crl(&issuer, 5, delta, 1);
            assert_eq!(
                publish_numbered(&p, name, 5, &five).unwrap(),
                PublishOutcome::Replaced
            );
            for lower in [4, 1, 5] {
                let older = signed_crl(&issuer, lower, delta, 2);
                assert_eq!(
                    publish_numbered(&p, name, lower, &older).unwrap(),
                    PublishOutcome::Kept { published: 5 },
                    "{name}: {lower} after 5"
                );
                assert_eq!(fs::read(p.path(name)).unwrap(), five, "{name}");
            }
            let six = signed_crl(&issuer, 6, delta, 0);
            assert_eq!(
                publish_numbered(&p, name, 6, &six).unwrap(),
                PublishOutcome::Replaced
            );
            assert_eq!(fs::read(p.path(name)).unwrap(), six);
        }
        // No temporary file of the CRLs that were not published is left.
        assert_eq!(listing(tmp.path()), ["ca-delta.crl", "ca.crl"]);

        // A file in place that is not a CRL with a number is replaced.
        fs::write(p.path("ca.crl"), b"garbage").unwrap();
        let two = signed_crl(&issuer, 2, false, 0);
        assert_eq!(
            publish_numbered(&p, "ca.crl", 2, &two).unwrap(),
            PublishOutcome::Replaced
        );
        assert_eq!(fs::read(p.path("ca.crl")).unwrap(), two);

        // One that cannot be read is an error, and nothing is replaced.
        fs::remove_file(p.path("ca.crl")).unwrap();
        fs::create_dir(p.path("ca.crl")).unwrap();
        let err = publish_numbered(&p, "ca.crl", 3, &two).unwrap_err();
        assert!(
            matches!(
                err,
                CrlError::Publish {
                    step: "read the published CRL",
                    ..
                }
            ),
            "{err}"
        );
        assert!(p.path("ca.crl").is_dir());
        assert_eq!(listing(tmp.path()), ["ca-delta.crl", "ca.crl"]);
    }

    #[test]
    fn racing_publishers_leave_the_highest_number() {
        // Each thread publishes a CRL of its own number; they all finish writing at once and
        // race for the rename. Whatever the order, the highest number is what stays, and
        // every publication that did not replace the file saw a number above its own.
        const THREADS: u64 = 12;
        let issuer = Issuer::new();
        let tmp = tempfile::tempdir().unwrap();
        let p = Publisher::new(tmp.path()).unwrap();
        let crls: Vec<Vec<u8>> = (1..=THREADS)
            .map(|n| signed_crl(&issuer, n, false, n as usize))
            .collect();
        let barrier = std::sync::Barrier::new(THREADS as usize);
        let outcomes: Vec<(u64, PublishOutcome)> = std::thread::scope(|s| {
            let handles: Vec<_> = (1..=THREADS)
                .map(|n| {
                    let (p, der, barrier) = (&p, &crls[n as usize - 1], &barrier);
                    s.spawn(move || {
                        let ((), outcome) = p
                            .publish_crl_with("ca.crl", n, |w| {
                                w.write_all(der).map_err(CrlError::Output)?;
                                barrier.wait();
                                Ok(())
                            })
                            .unwrap();
                        (n, outcome)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (n, outcome) in &outcomes {
            if let PublishOutcome::Kept { published } = outcome {
                assert!(*published > u128::from(*n), "{n} kept {published}");
            }
        }
        assert!(outcomes
            .iter()
            .any(|&(n, o)| n == THREADS && o == PublishOutcome::Replaced));
        let der = fs::read(p.path("ca.crl")).unwrap();
        assert_eq!(der, crls[THREADS as usize - 1]);
        assert_eq!(crl_number_of(&der), Some(u128::from(THREADS)));
        assert_eq!(listing(tmp.path()), ["ca.crl"]);
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
