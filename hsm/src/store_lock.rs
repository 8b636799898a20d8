//! nesca's own lock over a SoftHSM token store, held while this process has SoftHSM read the
//! store's token metadata (`C_Initialize`, `C_GetSlotList`, `C_GetTokenInfo`) or rewrite it
//! (`C_Login`, `C_InitToken`, `C_InitPIN`), so that no other nesca process reads it meanwhile.
//!
//! SoftHSM 2.6.1 rewrites `<tokendir>/<token>/token.object` at every `C_Login`, successful or
//! not (`Token::loginUser` sets the token flags, `ObjectFile::store` writes the whole file even
//! when no flag changed): under its fcntl lock it truncates the file to 0 bytes and fills a
//! stdio buffer, unlocks, and the bytes reach the file only when the stream is closed — before
//! `C_Login` returns. A reader in another process that takes the fcntl lock in that window reads
//! an empty file: `C_Initialize` then leaves the token out of its slots for the life of the
//! process, `C_GetTokenInfo` answers `CKR_GENERAL_ERROR` or `CKR_OK` with a blank label, and
//! `C_Login` `CKR_GENERAL_ERROR` or `CKR_USER_PIN_NOT_INITIALIZED`. A nesca process cannot sign
//! without logging in, and SoftHSM offers no login that leaves the file alone, so nesca
//! processes take turns instead: this lock is an `flock(2)` on the token directory itself (no
//! file of its own; SoftHSM's locks are fcntl locks on files, which it does not disturb).
//!
//! It only orders nesca processes. Another program using the store (`softhsm2-util`, a second
//! application) still rewrites the file unannounced; `module::connect` retries what that
//! answers. The lock is advisory and never a reason to fail: a store that cannot be opened or
//! locked, or a lock held longer than [`WAIT`], is used without it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{flock, FlockOperation};

/// How long to wait for the lock before going on without it (a process holds it for the few
/// milliseconds of a `C_Initialize` and a `C_Login`; 48 processes queue for well under this).
const WAIT: Duration = Duration::from_secs(10);
/// The longest pause between two tries.
const MAX_POLL: Duration = Duration::from_millis(8);

/// Held while this process reads or rewrites the token store; released when dropped (and by
/// the kernel when the process ends, however it ends).
#[derive(Debug)]
pub(crate) struct StoreLock {
    /// The token directory.
    dir: Option<PathBuf>,
    /// The locked directory, while the lock is held.
    held: Option<File>,
}

impl StoreLock {
    /// Takes the lock on the token directory that `softhsm_conf` names; without a SoftHSM
    /// configuration (another vendor's module) there is nothing to take.
    pub(crate) fn acquire(softhsm_conf: Option<&Path>) -> StoreLock {
        let dir = softhsm_conf
            .and_then(|conf| std::fs::read_to_string(conf).ok())
            .and_then(|text| crate::softhsm_guard::tokendir(&text));
        let held = dir.as_deref().and_then(|dir| lock_dir(dir, WAIT));
        StoreLock { dir, held }
    }

    /// Sleeps for `pause` without the lock (other nesca processes have their turn meanwhile),
    /// then takes it again.
    pub(crate) fn release_for(&mut self, pause: Duration) {
        let was_held = self.held.take().is_some();
        std::thread::sleep(pause);
        if was_held {
            self.held = self.dir.as_deref().and_then(|dir| lock_dir(dir, WAIT));
        }
    }

    /// Whether the lock is held (false: going on without it).
    #[cfg(test)]
    fn held(&self) -> bool {
        self.held.is_some()
    }
}

/// An exclusive `flock` on `dir`, waiting up to `wait` for it.
fn lock_dir(dir: &Path, wait: Duration) -> Option<File> {
    let file = match File::open(dir) {
        Ok(file) => file,
        Err(e) => {
            tracing::debug!(dir = %dir.display(), error = %e, "SoftHSM token store not locked: cannot open it");
            return None;
        }
    };
    let started = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Some(file),
            Err(e) if e == rustix::io::Errno::WOULDBLOCK || e == rustix::io::Errno::INTR => {
                if started.elapsed() >= wait {
                    tracing::warn!(dir = %dir.display(), waited = ?wait, "another process holds nesca's lock on the SoftHSM token store; going on without it");
                    return None;
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(MAX_POLL);
            }
            Err(e) => {
                tracing::debug!(dir = %dir.display(), error = %e, "SoftHSM token store not locked");
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, std::path::PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let tokens = tmp.path().join("tokens");
        std::fs::create_dir(&tokens).unwrap();
        let conf = tmp.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!("directories.tokendir = {}\n", tokens.display()),
        )
        .unwrap();
        (tmp, conf)
    }

    #[test]
    fn holders_take_turns_and_a_dropped_lock_is_free() {
        let (tmp, conf) = store();
        let first = StoreLock::acquire(Some(&conf));
        assert!(first.held());
        // A second holder (another open file description, as another process has) waits.
        let tokens = tmp.path().join("tokens");
        let started = Instant::now();
        assert!(lock_dir(&tokens, Duration::from_millis(50)).is_none());
        assert!(started.elapsed() >= Duration::from_millis(50));
        // Released with the first one, and then taken at once.
        let waiter = {
            let tokens = tokens.clone();
            std::thread::spawn(move || lock_dir(&tokens, Duration::from_secs(5)))
        };
        std::thread::sleep(Duration::from_millis(30));
        drop(first);
        let second = waiter.join().unwrap();
        assert!(second.is_some());

        // A holder that pauses lets the other have its turn, then holds the lock again.
        drop(second);
        let mut pausing = StoreLock::acquire(Some(&conf));
        assert!(pausing.held());
        let other = {
            let tokens = tokens.clone();
            std::thread::spawn(move || lock_dir(&tokens, Duration::from_secs(5)).is_some())
        };
        pausing.release_for(Duration::from_millis(100));
        assert!(
            other.join().unwrap(),
            "the lock was not free during the pause"
        );
        assert!(pausing.held());
        assert!(lock_dir(&tokens, Duration::ZERO).is_none());
        // Nothing was created in the store: SoftHSM takes every directory there for a token.
        assert_eq!(
            std::fs::read_dir(tmp.path().join("tokens"))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn without_a_store_there_is_nothing_to_hold_and_no_error() {
        assert!(!StoreLock::acquire(None).held());
        assert!(!StoreLock::acquire(Some(Path::new("/nonexistent/softhsm2.conf"))).held());
        let (tmp, conf) = store();
        std::fs::remove_dir(tmp.path().join("tokens")).unwrap();
        assert!(!StoreLock::acquire(Some(&conf)).held());
    }
}
