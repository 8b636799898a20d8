//! What a process does before it loads plugins: let go of the descriptors it inherited.
//!
//! A plugin-host process is started by the CA, which may hold descriptors opened without
//! close-on-exec by code it does not control (a PKCS#11 module's token files, say). Whatever
//! the host process inherited beyond stdin, stdout and stderr is closed before any plugin code
//! runs, so that no plugin can reach a file through a descriptor the sandbox never saw.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::path::Path;

/// Closes every descriptor above 2 this process has open; answers how many.
///
/// # Contract
///
/// Call it as the first act of a process that was just started (`exec`), while it has one
/// thread and has opened nothing of its own: every descriptor above 2 is then one it inherited,
/// owned by no object in it. Called later, it closes descriptors that live objects own (a
/// `File`, a socket) and breaks them. It is not an `unsafe fn` only because the binary that
/// calls it (`nesca plugin-host`) forbids unsafe code; this crate is where nesca keeps the
/// plugin boundary's unsafe code, so the one dangerous step lives here, under this contract.
pub fn close_inherited_descriptors_at_start() -> std::io::Result<usize> {
    let listed: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    // The directory's own descriptor is in the list and closed by now: check each is still open.
    let mut closed = 0;
    for fd in listed {
        if Path::new(&format!("/proc/self/fd/{fd}"))
            .symlink_metadata()
            .is_ok()
        {
            // SAFETY: `fd` is open (just checked) and, by this function's contract, inherited and
            // owned by nothing in this process; the OwnedFd takes it over and closes it once.
            drop(unsafe { OwnedFd::from_raw_fd(fd) });
            closed += 1;
        }
    }
    Ok(closed)
}
