//! A guard over SoftHSM's token metadata (`<tokendir>/<token>/token.object`), run in every
//! process before `C_Initialize`.
//!
//! SoftHSM 2.6's file store rewrites `token.object` in place whenever a process logs in: it
//! locks the file (fcntl, whole file), truncates it to 0 bytes, unlocks it, and only then
//! writes the new contents (stdio flushes them at `fclose`), without fsync. A process killed in
//! between leaves the file empty, and SoftHSM then ignores the token for good: its label, flags
//! and the PIN-derived blobs that open every key object are in that file alone. The keys
//! themselves are in the token's other `<uuid>.object` files, which login does not rewrite.
//!
//! So nesca keeps a copy of each token's `token.object` beside it, [`COPY`], refreshed from a
//! file that parses completely, and puts the copy back (atomically, under SoftHSM's own fcntl
//! lock) when the file has stayed empty, missing, cut short or without a record a usable token
//! has for [`SETTLE`]. A file this parser does not understand (maybe another SoftHSM version's
//! format) is never replaced; a damaged file with no copy is left as it is and reported
//! ([`HsmError::TokenMetadataDamaged`], when no token of the directory is usable any more).
//! SoftHSM only loads files whose names end in `.object` (and treats `token.object` apart),
//! so it ignores the copy and the temporary files here.
//!
//! Format of a SoftHSM 2.6.1 `ObjectFile` (src/lib/object_store/ObjectFile.cpp, File.cpp): an
//! 8-byte big-endian generation number, then records until the end of the file, each a u64
//! attribute type, a u64 value kind and the value: kind 1 (bool) one byte; kind 2 (unsigned
//! long) a u64; kind 3 (byte string) a u64 length and that many bytes; kind 4 (attribute map)
//! a u64 byte length and then that many bytes of entries (u64 type, u64 kind 1/2/3/5, value as
//! above); kind 5 (mechanism set) a u64 count and that many u64s. All integers big-endian.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{fcntl_lock, FlockOperation};

use crate::HsmError;

/// SoftHSM's token metadata file, in each token's directory.
pub(crate) const TOKEN_OBJECT: &str = "token.object";
/// nesca's copy of it, beside it (not a `.object` name: SoftHSM ignores it).
pub(crate) const COPY: &str = "token.object.nesca-copy";
/// Where a new copy is written before it is renamed over [`COPY`].
const COPY_TMP: &str = "token.object.nesca-copy.tmp";
/// Where the copy is written before it is renamed over [`TOKEN_OBJECT`].
const RESTORE_TMP: &str = "token.object.nesca-restore.tmp";

/// How long a damaged `token.object` may stay so before it is restored: a live process may be
/// between its truncation and its write (which SoftHSM makes after unlocking).
const SETTLE: Duration = Duration::from_millis(500);
/// Between two looks at a damaged file.
const POLL: Duration = Duration::from_millis(20);
/// How long to wait for SoftHSM's lock before leaving the token to SoftHSM.
const LOCK_WAIT: Duration = Duration::from_secs(5);
/// Larger than any token metadata SoftHSM writes (about 320 bytes); larger files are left alone.
const MAX_LEN: u64 = 1 << 20;

/// SoftHSM's vendor attributes of a token (OSAttributes.h: `CKA_VENDOR_DEFINED + 0x5348 + n`).
const CKA_OS_TOKENLABEL: u64 = 0x8000_5349;
const CKA_OS_TOKENSERIAL: u64 = 0x8000_534A;
const CKA_OS_TOKENFLAGS: u64 = 0x8000_534B;
const CKA_OS_SOPIN: u64 = 0x8000_534C;
const CKA_OS_USERPIN: u64 = 0x8000_534D;

/// Value kinds of an `ObjectFile` record (ObjectFile.cpp).
const KIND_BOOL: u64 = 1;
const KIND_ULONG: u64 = 2;
const KIND_BYTES: u64 = 3;
const KIND_MAP: u64 = 4;
const KIND_MECHSET: u64 = 5;

/// The attributes a usable token's metadata holds, with their kinds, in the order SoftHSM
/// writes them (ascending type; the user PIN last).
const REQUIRED: [(u64, u64, &str); 5] = [
    (CKA_OS_TOKENLABEL, KIND_BYTES, "the token label"),
    (CKA_OS_TOKENSERIAL, KIND_BYTES, "the token serial"),
    (CKA_OS_TOKENFLAGS, KIND_ULONG, "the token flags"),
    (CKA_OS_SOPIN, KIND_BYTES, "the SO PIN blob"),
    (CKA_OS_USERPIN, KIND_BYTES, "the user PIN blob"),
];

/// A `token.object` that parsed completely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenMetadata {
    /// SoftHSM's generation number (bumped at every rewrite).
    pub(crate) generation: u64,
    /// The token label, without SoftHSM's padding.
    pub(crate) label: String,
    /// How many attribute records the file holds.
    pub(crate) attributes: usize,
}

/// Why a `token.object` did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Damage {
    /// 0 bytes: what a process killed between SoftHSM's truncation and its write leaves.
    Empty,
    /// The file ends inside a record (or inside the generation number).
    Truncated {
        /// Where the unfinished record starts.
        record_at: usize,
        /// The file's length.
        len: usize,
    },
    /// Every record is whole, but an attribute a usable token has is not there (a file cut at
    /// a record boundary; also a token whose user PIN is not set yet).
    Incomplete { missing: &'static str },
    /// Something this parser does not know (an unknown value kind, an attribute map whose
    /// length disagrees with its entries, an attribute of an unexpected kind): possibly a
    /// format of another SoftHSM version, so never overwritten.
    Unknown { at: usize, reason: String },
}

impl Damage {
    /// What a crash during SoftHSM's rewrite (or a full disk) leaves, and so what the copy may
    /// replace.
    fn restorable(&self) -> bool {
        !matches!(self, Damage::Unknown { .. })
    }
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Damage::Empty => write!(f, "empty (0 bytes)"),
            Damage::Truncated { record_at, len } => write!(
                f,
                "cut short: {len} bytes, ending inside the record that starts at byte {record_at}"
            ),
            Damage::Incomplete { missing } => {
                write!(f, "incomplete: it has no record of {missing}")
            }
            Damage::Unknown { at, reason } => write!(f, "not understood at byte {at}: {reason}"),
        }
    }
}

/// Reads big-endian values off a byte slice; running out is [`Damage::Truncated`].
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Where the record being read starts (for [`Damage::Truncated`]).
    record_at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: u64) -> Result<&'a [u8], Damage> {
        let left = self.bytes.len() - self.pos;
        match usize::try_from(n) {
            Ok(n) if n <= left => {
                let out = &self.bytes[self.pos..self.pos + n];
                self.pos += n;
                Ok(out)
            }
            _ => Err(Damage::Truncated {
                record_at: self.record_at,
                len: self.bytes.len(),
            }),
        }
    }

    fn u64(&mut self) -> Result<u64, Damage> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    fn at_end(&self) -> bool {
        self.pos == self.bytes.len()
    }
}

/// Parses a SoftHSM token metadata file: it must end exactly at the end of its last record and
/// hold the attributes of a usable token ([`REQUIRED`]).
pub(crate) fn parse(bytes: &[u8]) -> Result<TokenMetadata, Damage> {
    if bytes.is_empty() {
        return Err(Damage::Empty);
    }
    let mut r = Reader {
        bytes,
        pos: 0,
        record_at: 0,
    };
    let generation = r.u64()?;
    let mut found: Vec<(u64, u64, &[u8])> = Vec::new();
    while !r.at_end() {
        r.record_at = r.pos;
        let attribute = r.u64()?;
        let kind = r.u64()?;
        let value = match kind {
            KIND_BOOL => r.take(1)?,
            KIND_ULONG => r.take(8)?,
            KIND_BYTES => {
                let n = r.u64()?;
                r.take(n)?
            }
            KIND_MAP => {
                let n = r.u64()?;
                let body = r.take(n)?;
                check_map(body, r.record_at)?;
                body
            }
            KIND_MECHSET => {
                let count = r.u64()?;
                // More than the file could hold is a file cut short (or garbage, which the
                // copy replaces as well).
                r.take(count.saturating_mul(8))?
            }
            other => {
                return Err(Damage::Unknown {
                    at: r.record_at,
                    reason: format!("value kind {other} of attribute {attribute:#x}"),
                })
            }
        };
        found.push((attribute, kind, value));
    }
    for (attribute, kind, what) in REQUIRED {
        match found.iter().rev().find(|(a, _, _)| *a == attribute) {
            None => return Err(Damage::Incomplete { missing: what }),
            Some((_, k, _)) if *k != kind => {
                return Err(Damage::Unknown {
                    at: 8,
                    reason: format!("{what} ({attribute:#x}) has value kind {k}, not {kind}"),
                })
            }
            Some(_) => {}
        }
    }
    let label = found
        .iter()
        .rev()
        .find(|(a, _, _)| *a == CKA_OS_TOKENLABEL)
        .map(|(_, _, v)| String::from_utf8_lossy(v).trim_end().to_string())
        .unwrap_or_default();
    Ok(TokenMetadata {
        generation,
        label,
        attributes: found.len(),
    })
}

/// An attribute map's entries (File::readAttributeMap): they must fill `body` exactly. The
/// body itself is whole (its length was read), so a mismatch is not a file cut short.
fn check_map(body: &[u8], record_at: usize) -> Result<(), Damage> {
    let mut r = Reader {
        bytes: body,
        pos: 0,
        record_at: 0,
    };
    let unknown = |reason: String| Damage::Unknown {
        at: record_at,
        reason,
    };
    let mismatch = |_| unknown("an attribute map whose length disagrees with its entries".into());
    while !r.at_end() {
        let _attribute = r.u64().map_err(mismatch)?;
        let kind = r.u64().map_err(mismatch)?;
        match kind {
            KIND_BOOL => r.take(1).map(drop).map_err(mismatch)?,
            KIND_ULONG => r.take(8).map(drop).map_err(mismatch)?,
            KIND_BYTES => {
                let n = r.u64().map_err(mismatch)?;
                r.take(n).map(drop).map_err(mismatch)?
            }
            KIND_MECHSET => {
                let count = r.u64().map_err(mismatch)?;
                r.take(count.saturating_mul(8))
                    .map(drop)
                    .map_err(mismatch)?
            }
            other => {
                return Err(unknown(format!(
                    "value kind {other} inside an attribute map"
                )))
            }
        }
    }
    Ok(())
}

/// What the guard did with one token directory.
#[derive(Debug)]
enum Outcome {
    /// Neither `token.object` nor a copy: not a token (SoftHSM ignores it too).
    NotAToken,
    /// `token.object` parsed; the copy is up to date (or could not be refreshed: logged).
    Healthy,
    /// `token.object` was damaged and the copy is back in its place.
    Restored,
    /// Left to SoftHSM: a file this parser does not understand, a token still being set up,
    /// or the guard's own I/O trouble (logged).
    LeftAlone,
    /// Damaged, and cannot be restored.
    Lost(HsmError),
}

/// Runs the guard over every token under the `directories.tokendir` of `softhsm_conf`. Returns
/// an error only when a token's metadata is damaged beyond repair and no token under the
/// directory is usable any more (so it can never stop a healthy token from opening); the
/// guard's own I/O trouble is logged and SoftHSM left to do what it would have done.
pub(crate) fn guard_tokens(softhsm_conf: &Path) -> Result<(), HsmError> {
    let Some(tokendir) = fs::read_to_string(softhsm_conf)
        .ok()
        .and_then(|text| tokendir(&text))
    else {
        return Ok(());
    };
    let entries = match fs::read_dir(&tokendir) {
        Ok(entries) => entries,
        Err(e) => {
            tracing::warn!(dir = %tokendir.display(), error = %e, "cannot list the SoftHSM token directory; its tokens are not guarded");
            return Ok(());
        }
    };
    let mut usable = 0;
    let mut lost = Vec::new();
    for entry in entries.flatten() {
        let dir = entry.path();
        if !entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        match guard_token(&dir) {
            Outcome::NotAToken => {}
            Outcome::Healthy | Outcome::Restored | Outcome::LeftAlone => usable += 1,
            Outcome::Lost(e) => {
                tracing::error!(dir = %dir.display(), error = %e, "SoftHSM token metadata damaged beyond nesca's repair");
                lost.push(e);
            }
        }
    }
    match lost.into_iter().next() {
        Some(e) if usable == 0 => Err(e),
        _ => Ok(()),
    }
}

/// Whether a token under the `directories.tokendir` of `softhsm_conf` is labelled `label`, by
/// its metadata file or, when that does not parse (another process is rewriting it), nesca's
/// copy of it. Read without SoftHSM's lock: a hint that the token exists, for a process whose
/// SoftHSM did not show it (it reads its store at `C_Initialize` only).
pub(crate) fn label_on_disk(softhsm_conf: &Path, label: &str) -> bool {
    let Some(tokendir) = fs::read_to_string(softhsm_conf)
        .ok()
        .and_then(|text| tokendir(&text))
    else {
        return false;
    };
    let Ok(entries) = fs::read_dir(tokendir) else {
        return false;
    };
    let labelled = |file: PathBuf| {
        fs::read(file)
            .ok()
            .and_then(|bytes| parse(&bytes).ok())
            .map(|meta| meta.label == label)
    };
    entries.flatten().any(|entry| {
        let dir = entry.path();
        labelled(dir.join(TOKEN_OBJECT))
            .or_else(|| labelled(dir.join(COPY)))
            .unwrap_or(false)
    })
}

/// The `directories.tokendir` of a `softhsm2.conf`.
pub(crate) fn tokendir(conf: &str) -> Option<PathBuf> {
    conf.lines().find_map(|line| {
        let (key, value) = line.trim().split_once('=')?;
        (key.trim() == "directories.tokendir").then(|| PathBuf::from(value.trim()))
    })
}

/// Checks one token directory, refreshing the copy or restoring `token.object` from it.
fn guard_token(dir: &Path) -> Outcome {
    let object = dir.join(TOKEN_OBJECT);
    let copy_path = dir.join(COPY);
    let exists = |p: &Path| fs::symlink_metadata(p).is_ok();
    let has_copy = exists(&copy_path);
    if !exists(&object) && !has_copy {
        return Outcome::NotAToken;
    }
    if fs::symlink_metadata(&object).is_ok_and(|m| m.file_type().is_symlink()) {
        // Renaming a file over it would replace the link, not what it points to.
        tracing::warn!(file = %object.display(), "SoftHSM token metadata is a symbolic link; not guarded");
        return Outcome::LeftAlone;
    }
    let settle_until = Instant::now() + SETTLE;
    loop {
        // SoftHSM's own lock; with a copy, a missing token.object is created (empty) as
        // SoftHSM's writer would, so that there is a file to lock and then to replace.
        let locked = match lock_token_object(&object, has_copy) {
            Ok(file) => file,
            Err(e) => {
                tracing::warn!(file = %object.display(), error = %e, "cannot lock SoftHSM's token metadata; left to SoftHSM");
                return Outcome::LeftAlone;
            }
        };
        let bytes = match read_all(&locked) {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::warn!(file = %object.display(), error = %e, "cannot read SoftHSM's token metadata; left to SoftHSM");
                return Outcome::LeftAlone;
            }
        };
        let copy = match fs::read(&copy_path) {
            Ok(copy) => Some(copy),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => {
                tracing::warn!(file = %copy_path.display(), error = %e, "cannot read nesca's copy of the token metadata");
                None
            }
        };
        let damage = match parse(&bytes) {
            Ok(meta) => {
                // The generation number changes at every login; the copy is rewritten when
                // anything else did (label, flags, serial, PIN blobs).
                let current = copy
                    .as_deref()
                    .is_some_and(|c| c.get(8..) == bytes.get(8..));
                if !current {
                    if let Err(e) = write_atomically(dir, COPY_TMP, COPY, &bytes) {
                        tracing::warn!(file = %copy_path.display(), error = %e, "cannot refresh nesca's copy of the token metadata");
                    } else {
                        tracing::debug!(token = %meta.label, file = %copy_path.display(), "copy of the SoftHSM token metadata refreshed");
                    }
                }
                for leftover in [COPY_TMP, RESTORE_TMP] {
                    let _ = fs::remove_file(dir.join(leftover));
                }
                return Outcome::Healthy;
            }
            Err(damage) => damage,
        };
        if !damage.restorable() {
            tracing::warn!(file = %object.display(), %damage, "SoftHSM token metadata not understood; left as it is");
            return Outcome::LeftAlone;
        }
        if copy.is_none() && matches!(damage, Damage::Incomplete { .. }) {
            // Every record whole and no copy ever made: a token still being set up (no user
            // PIN yet), not one nesca has used. SoftHSM decides.
            tracing::debug!(file = %object.display(), %damage, "SoftHSM token metadata incomplete and no copy; left as it is");
            return Outcome::LeftAlone;
        }
        if Instant::now() < settle_until {
            drop(locked);
            std::thread::sleep(POLL);
            continue;
        }
        let damage_text = damage.to_string();
        let lost = |why: String| {
            Outcome::Lost(HsmError::TokenMetadataDamaged {
                path: object.display().to_string(),
                damage: damage_text.clone(),
                why,
            })
        };
        let Some(copy) = copy else {
            return lost(format!(
                "nesca has no copy of it ({COPY}); the token's keys are still in the other .object files of {}, but SoftHSM cannot open them without this file",
                dir.display()
            ));
        };
        let restored = match parse(&copy) {
            Ok(meta) => meta,
            Err(e) => {
                return lost(format!(
                    "nesca's copy {} is damaged too: {e}",
                    copy_path.display()
                ))
            }
        };
        if let Err(e) = write_atomically(dir, RESTORE_TMP, TOKEN_OBJECT, &copy) {
            return lost(format!(
                "restoring it from {} failed: {e}",
                copy_path.display()
            ));
        }
        drop(locked);
        tracing::warn!(
            dir = %dir.display(),
            token = %restored.label,
            %damage,
            "SoftHSM token metadata restored from nesca's copy"
        );
        return Outcome::Restored;
    }
}

/// Opens `path` and takes SoftHSM's lock on it (an fcntl write lock on the whole file, as
/// SoftHSM's writers take; its readers take a read lock), on the file that is still at `path`
/// once locked (a guard in another process may have renamed a new one into place meanwhile).
///
/// fcntl locks belong to the process and inode, and closing any descriptor of the inode drops
/// them: while the returned file is held, the guard never opens `path` again.
fn lock_token_object(path: &Path, create: bool) -> io::Result<File> {
    let started = Instant::now();
    loop {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .mode(0o600)
            .open(path)?;
        loop {
            match fcntl_lock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => break,
                Err(e) if e == rustix::io::Errno::AGAIN || e == rustix::io::Errno::ACCESS => {
                    if started.elapsed() > LOCK_WAIT {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("another process has held its lock for {LOCK_WAIT:?}"),
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(e) => return Err(e.into()),
            }
        }
        let held = file.metadata()?;
        match fs::symlink_metadata(path) {
            Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => return Ok(file),
            // Replaced (or removed) while we waited: lock the file that is there now.
            _ if started.elapsed() <= LOCK_WAIT => continue,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the file kept being replaced while nesca waited for its lock",
                ))
            }
        }
    }
}

/// The whole file, through the locked descriptor (never a second one: see
/// [`lock_token_object`]).
fn read_all(mut file: &File) -> io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(0))?;
    let mut bytes = Vec::new();
    file.take(MAX_LEN + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {MAX_LEN} bytes"),
        ));
    }
    Ok(bytes)
}

/// Writes `bytes` to `dir/tmp` (mode 0600), fsyncs it, renames it to `dir/name` and fsyncs the
/// directory: `dir/name` is the old file or the new one, whatever happens when.
fn write_atomically(dir: &Path, tmp: &str, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(tmp);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        // A leftover temporary file keeps its old mode through open().
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, dir.join(name))?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A token.object SoftHSM 2.6.1 wrote for a token labelled "guard-vector" after
    /// `softhsm2-util --init-token` and a few user logins (throwaway PINs).
    const REAL: &[u8] = include_bytes!("../tests/data/softhsm-token.object");

    /// A token directory holding [`REAL`] as its token.object, and the directory around it
    /// that a softhsm2.conf names.
    fn token_dir() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let tokens = tmp.path().join("tokens");
        let dir = tokens.join("0b1c2d3e-token");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(TOKEN_OBJECT), REAL).unwrap();
        // Key objects and SoftHSM's other files, which the guard must never touch.
        fs::write(dir.join("1234-key.object"), b"a key object").unwrap();
        fs::write(dir.join("1234-key.lock"), b"").unwrap();
        fs::write(dir.join("token.lock"), b"").unwrap();
        let conf = tmp.path().join("softhsm2.conf");
        fs::write(
            &conf,
            format!(
                "# test\ndirectories.tokendir = {}\nobjectstore.backend = file\n",
                tokens.display()
            ),
        )
        .unwrap();
        (tmp, dir, conf)
    }

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    /// Every file of `dir` but the token's own metadata and nesca's copy, with its contents.
    fn other_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    fs::read(e.path()).unwrap(),
                )
            })
            .filter(|(n, _)| n != TOKEN_OBJECT && n != COPY)
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_real_token_object_parses() {
        let meta = parse(REAL).unwrap();
        assert_eq!(meta.label, "guard-vector");
        assert_eq!(meta.attributes, 5);
        assert!(meta.generation > 1, "{meta:?}");
    }

    #[test]
    fn every_prefix_of_a_real_file_fails_to_parse_but_the_whole() {
        for len in 0..REAL.len() {
            let damage = parse(&REAL[..len]).expect_err(&format!("prefix of {len} bytes parsed"));
            assert!(damage.restorable(), "prefix of {len} bytes: {damage}");
            match len {
                0 => assert_eq!(damage, Damage::Empty),
                1..=7 => assert_eq!(damage, Damage::Truncated { record_at: 0, len }),
                _ => assert!(
                    matches!(damage, Damage::Truncated { .. } | Damage::Incomplete { .. }),
                    "prefix of {len} bytes: {damage}"
                ),
            }
        }
        assert!(parse(REAL).is_ok());
    }

    #[test]
    fn trailing_bytes_and_unknown_kinds_are_not_understood() {
        // One byte more: a record cut short after the last one.
        let mut longer = REAL.to_vec();
        longer.push(0);
        assert!(matches!(parse(&longer), Err(Damage::Truncated { .. })));
        // A record of a value kind SoftHSM 2.6.1 does not write: maybe another version's.
        let mut unknown = REAL.to_vec();
        unknown.extend_from_slice(&0x8000_6000u64.to_be_bytes());
        unknown.extend_from_slice(&9u64.to_be_bytes());
        unknown.extend_from_slice(&[0; 8]);
        let damage = parse(&unknown).unwrap_err();
        assert!(matches!(damage, Damage::Unknown { .. }), "{damage}");
        assert!(!damage.restorable());
    }

    #[test]
    fn maps_and_mechanism_sets_parse() {
        let mut file = REAL.to_vec();
        // CKA_ALLOWED_MECHANISMS-like set of two, and a map of a bool, a ulong, bytes and a set.
        file.extend_from_slice(&0x4000_0600u64.to_be_bytes());
        file.extend_from_slice(&KIND_MECHSET.to_be_bytes());
        file.extend_from_slice(&2u64.to_be_bytes());
        file.extend_from_slice(&0x1040u64.to_be_bytes());
        file.extend_from_slice(&0x1041u64.to_be_bytes());
        let mut map = Vec::new();
        for (kind, value) in [
            (KIND_BOOL, vec![0xff]),
            (KIND_ULONG, 7u64.to_be_bytes().to_vec()),
            (KIND_BYTES, [&3u64.to_be_bytes()[..], b"abc"].concat()),
            (
                KIND_MECHSET,
                [&1u64.to_be_bytes()[..], &0x250u64.to_be_bytes()[..]].concat(),
            ),
        ] {
            map.extend_from_slice(&0x100u64.to_be_bytes());
            map.extend_from_slice(&kind.to_be_bytes());
            map.extend_from_slice(&value);
        }
        file.extend_from_slice(&0x4000_0211u64.to_be_bytes());
        file.extend_from_slice(&KIND_MAP.to_be_bytes());
        file.extend_from_slice(&(map.len() as u64).to_be_bytes());
        file.extend_from_slice(&map);
        assert_eq!(parse(&file).unwrap().attributes, 7);
        // A map whose length says one byte more than its entries fill.
        let n = file.len();
        let mut bad = file.clone();
        bad[n - map.len() - 8..n - map.len()]
            .copy_from_slice(&(map.len() as u64 - 1).to_be_bytes());
        bad.push(0);
        assert!(
            matches!(parse(&bad), Err(Damage::Unknown { .. })),
            "{:?}",
            parse(&bad)
        );
        // Cut anywhere inside the new records: cut short (at the end of the set, a whole file).
        let set_end = REAL.len() + 8 + 8 + 8 + 2 * 8;
        for len in REAL.len() + 1..file.len() {
            match parse(&file[..len]) {
                Ok(meta) => assert!(len == set_end && meta.attributes == 6, "{len}: {meta:?}"),
                Err(damage) => assert!(
                    matches!(damage, Damage::Truncated { .. }),
                    "{len}: {damage}"
                ),
            }
        }
    }

    #[test]
    fn a_label_is_found_on_disk_in_the_metadata_or_else_in_the_copy() {
        let (_tmp, dir, conf) = token_dir();
        assert!(label_on_disk(&conf, "guard-vector"));
        assert!(!label_on_disk(&conf, "guard"), "a prefix is not the label");
        assert!(!label_on_disk(&conf, "other"));
        // Caught mid-rewrite (empty) with no copy yet: not found; with a copy: found.
        fs::write(dir.join(TOKEN_OBJECT), b"").unwrap();
        assert!(!label_on_disk(&conf, "guard-vector"));
        fs::write(dir.join(COPY), REAL).unwrap();
        assert!(label_on_disk(&conf, "guard-vector"));
        // No configuration, or no token directory: nothing is on disk.
        assert!(!label_on_disk(
            Path::new("/nonexistent/softhsm2.conf"),
            "guard-vector"
        ));
        let none = dir.parent().unwrap().join("none.conf");
        fs::write(&none, "directories.tokendir = /nonexistent/tokens\n").unwrap();
        assert!(!label_on_disk(&none, "guard-vector"));
    }

    #[test]
    fn the_tokendir_is_read_from_the_configuration() {
        let conf = "# c\ndirectories.tokendir = /x/tokens\nobjectstore.backend = file\n";
        assert_eq!(tokendir(conf), Some(PathBuf::from("/x/tokens")));
        assert_eq!(tokendir("directories.tokendirx = /y\n"), None);
        assert_eq!(tokendir("log.level = ERROR\n"), None);
    }

    #[test]
    fn a_healthy_token_gets_a_copy_refreshed_when_it_changes() {
        let (_tmp, dir, conf) = token_dir();
        let others = other_files(&dir);
        guard_tokens(&conf).unwrap();
        let copy = dir.join(COPY);
        assert_eq!(fs::read(&copy).unwrap(), REAL);
        assert_eq!(mode(&copy), 0o600);
        assert_eq!(fs::read(dir.join(TOKEN_OBJECT)).unwrap(), REAL);

        // A login bumps the generation only: the copy stays as it was.
        let mut next = REAL.to_vec();
        next[7] = next[7].wrapping_add(1);
        fs::write(dir.join(TOKEN_OBJECT), &next).unwrap();
        guard_tokens(&conf).unwrap();
        assert_eq!(fs::read(&copy).unwrap(), REAL);

        // The flags changed (say CKF_USER_PIN_COUNT_LOW): the copy follows.
        let flags_at = REAL.len() - 2 * (8 + 8 + 8 + 0x48) - 8;
        assert_eq!(
            &next[flags_at - 16..flags_at - 8],
            &CKA_OS_TOKENFLAGS.to_be_bytes()
        );
        next[flags_at + 7] ^= 0x01;
        parse(&next).unwrap();
        fs::write(dir.join(TOKEN_OBJECT), &next).unwrap();
        fs::set_permissions(&copy, fs::Permissions::from_mode(0o644)).unwrap();
        guard_tokens(&conf).unwrap();
        assert_eq!(fs::read(&copy).unwrap(), next);
        assert_eq!(mode(&copy), 0o600);
        assert!(!dir.join(COPY_TMP).exists());
        assert_eq!(other_files(&dir), others, "the guard touched another file");
    }

    #[test]
    fn an_emptied_token_object_is_restored_from_the_copy() {
        let (_tmp, dir, conf) = token_dir();
        guard_tokens(&conf).unwrap();
        let object = dir.join(TOKEN_OBJECT);
        let before = fs::metadata(&object).unwrap().ino();
        fs::write(&object, b"").unwrap();
        let started = Instant::now();
        guard_tokens(&conf).unwrap();
        assert!(
            started.elapsed() >= SETTLE,
            "restored without waiting for a live writer"
        );
        assert_eq!(fs::read(&object).unwrap(), REAL);
        assert_eq!(mode(&object), 0o600);
        assert_ne!(
            fs::metadata(&object).unwrap().ino(),
            before,
            "written in place, not renamed"
        );
        assert!(!dir.join(RESTORE_TMP).exists());

        // Cut short, or gone altogether: the same.
        for cut in [&REAL[..REAL.len() - 1], &REAL[..100]] {
            fs::write(&object, cut).unwrap();
            guard_tokens(&conf).unwrap();
            assert_eq!(fs::read(&object).unwrap(), REAL);
        }
        fs::remove_file(&object).unwrap();
        guard_tokens(&conf).unwrap();
        assert_eq!(fs::read(&object).unwrap(), REAL);
    }

    #[test]
    fn a_file_written_while_the_guard_waits_is_kept() {
        let (_tmp, dir, conf) = token_dir();
        guard_tokens(&conf).unwrap();
        let object = dir.join(TOKEN_OBJECT);
        // As SoftHSM does: truncated under its lock, written after (here 100 ms later).
        let mut newer = REAL.to_vec();
        newer[7] = newer[7].wrapping_add(5);
        fs::write(&object, b"").unwrap();
        let writer = {
            let (object, newer) = (object.clone(), newer.clone());
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                let mut f = OpenOptions::new().write(true).open(&object).unwrap();
                f.write_all(&newer).unwrap();
            })
        };
        guard_tokens(&conf).unwrap();
        writer.join().unwrap();
        assert_eq!(
            fs::read(&object).unwrap(),
            newer,
            "the live writer's file was replaced"
        );
    }

    #[test]
    fn a_damaged_token_object_without_a_copy_is_refused_and_left_alone() {
        let (_tmp, dir, conf) = token_dir();
        let object = dir.join(TOKEN_OBJECT);
        fs::write(&object, b"").unwrap();
        let e = guard_tokens(&conf).unwrap_err();
        let text = e.to_string();
        assert!(
            matches!(e, HsmError::TokenMetadataDamaged { .. })
                && text.contains(&object.display().to_string())
                && text.contains("empty")
                && text.contains("no copy"),
            "{text}"
        );
        assert_eq!(fs::read(&object).unwrap(), b"");
        assert!(!dir.join(COPY).exists());

        // Another token under the same directory is healthy: no error (it may be the one
        // wanted), the damaged one still untouched.
        let healthy = dir.parent().unwrap().join("healthy-token");
        fs::create_dir(&healthy).unwrap();
        fs::write(healthy.join(TOKEN_OBJECT), REAL).unwrap();
        guard_tokens(&conf).unwrap();
        assert_eq!(fs::read(&object).unwrap(), b"");
        assert!(!dir.join(COPY).exists());
        assert_eq!(fs::read(healthy.join(COPY)).unwrap(), REAL);
    }

    #[test]
    fn a_file_not_understood_is_never_replaced() {
        let (_tmp, dir, conf) = token_dir();
        guard_tokens(&conf).unwrap();
        let object = dir.join(TOKEN_OBJECT);
        let mut unknown = REAL.to_vec();
        unknown.extend_from_slice(&0x8000_6000u64.to_be_bytes());
        unknown.extend_from_slice(&6u64.to_be_bytes());
        unknown.extend_from_slice(&[1; 8]);
        fs::write(&object, &unknown).unwrap();
        guard_tokens(&conf).unwrap();
        assert_eq!(fs::read(&object).unwrap(), unknown);
        assert_eq!(
            fs::read(dir.join(COPY)).unwrap(),
            REAL,
            "the copy followed a file not understood"
        );

        // Without a copy, the same (and no error: it may well be a good file).
        fs::remove_file(dir.join(COPY)).unwrap();
        guard_tokens(&conf).unwrap();
        assert_eq!(fs::read(&object).unwrap(), unknown);
        assert!(!dir.join(COPY).exists());
    }

    #[test]
    fn a_token_without_a_user_pin_and_no_copy_is_left_alone() {
        let (_tmp, dir, conf) = token_dir();
        let object = dir.join(TOKEN_OBJECT);
        // Everything up to the user PIN record, as SoftHSM leaves a token before C_InitPIN.
        let user_pin_at = REAL.len() - (8 + 8 + 8 + 0x48);
        let no_user_pin = &REAL[..user_pin_at];
        assert_eq!(
            parse(no_user_pin),
            Err(Damage::Incomplete {
                missing: "the user PIN blob"
            })
        );
        fs::write(&object, no_user_pin).unwrap();
        let started = Instant::now();
        guard_tokens(&conf).unwrap();
        assert!(
            started.elapsed() < SETTLE,
            "waited for a token being set up"
        );
        assert_eq!(fs::read(&object).unwrap(), no_user_pin);
        assert!(!dir.join(COPY).exists());
    }

    #[test]
    fn a_directory_without_token_files_is_no_token() {
        let (_tmp, dir, conf) = token_dir();
        fs::create_dir(dir.parent().unwrap().join("stray")).unwrap();
        fs::write(dir.parent().unwrap().join("stray-file"), b"x").unwrap();
        guard_tokens(&conf).unwrap();
        assert!(!dir
            .parent()
            .unwrap()
            .join("stray")
            .join(TOKEN_OBJECT)
            .exists());
        // A configuration without a token directory, or one that is not there: nothing to do.
        let none = dir.parent().unwrap().join("none.conf");
        fs::write(&none, "log.level = ERROR\n").unwrap();
        guard_tokens(&none).unwrap();
        guard_tokens(Path::new("/nonexistent/softhsm2.conf")).unwrap();
    }

    #[test]
    fn a_symbolic_link_is_not_guarded() {
        let (tmp, dir, conf) = token_dir();
        let object = dir.join(TOKEN_OBJECT);
        let elsewhere = tmp.path().join("elsewhere.object");
        fs::rename(&object, &elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &object).unwrap();
        let started = Instant::now();
        guard_tokens(&conf).unwrap();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(fs::symlink_metadata(&object)
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(!dir.join(COPY).exists());
    }

    /// SoftHSM's lock is respected: while another process holds it (a writer between its
    /// truncation and its unlock), the guard waits, then keeps the file that process wrote.
    /// The holder keeps the file empty for longer than [`SETTLE`]: a guard that did not wait
    /// for the lock would restore the copy meanwhile, and the holder's write would land in the
    /// replaced file.
    #[test]
    fn the_guard_waits_for_softhsm_s_lock() {
        use std::io::BufRead;
        let (_tmp, dir, conf) = token_dir();
        guard_tokens(&conf).unwrap();
        let object = dir.join(TOKEN_OBJECT);
        // fcntl locks do not exclude threads of one process: this test binary again, running
        // `lock_holder` alone, holds it.
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "softhsm_guard::tests::lock_holder",
                "--nocapture",
            ])
            .env(HOLDER_ENV, &object)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = io::BufReader::new(child.stdout.take().unwrap()).lines();
        assert!(
            lines.any(|l| l.unwrap() == "lock-holder: locked"),
            "the lock holder did not start"
        );
        let started = Instant::now();
        guard_tokens(&conf).unwrap();
        assert!(
            started.elapsed() >= SETTLE + Duration::from_millis(200),
            "did not wait for the lock"
        );
        assert!(child.wait().unwrap().success());
        assert_eq!(fs::read(&object).unwrap(), held_and_written());
        assert_eq!(fs::read(dir.join(COPY)).unwrap(), REAL);
    }

    const HOLDER_ENV: &str = "NESCA_GUARD_TEST_LOCK_HOLDER";

    /// What [`lock_holder`] writes: [`REAL`] a few generations on.
    fn held_and_written() -> Vec<u8> {
        let mut newer = REAL.to_vec();
        newer[7] = newer[7].wrapping_add(9);
        newer
    }

    /// Not a test of its own: with [`HOLDER_ENV`] set, takes the fcntl write lock on that
    /// file, empties it, waits [`SETTLE`] and 300 ms more, writes [`held_and_written`] and
    /// unlocks (SoftHSM unlocks before its write reaches the file, a window the guard's
    /// [`SETTLE`] covers; see `a_file_written_while_the_guard_waits_is_kept`).
    #[test]
    fn lock_holder() {
        let Some(path) = std::env::var_os(HOLDER_ENV) else {
            return;
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        fcntl_lock(&file, FlockOperation::LockExclusive).unwrap();
        file.set_len(0).unwrap();
        println!("lock-holder: locked");
        std::thread::sleep(SETTLE + Duration::from_millis(300));
        file.write_all(&held_and_written()).unwrap();
        file.sync_all().unwrap();
        fcntl_lock(&file, FlockOperation::Unlock).unwrap();
    }
}
