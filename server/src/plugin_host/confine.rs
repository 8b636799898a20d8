//! Confining a plugin-host process with Landlock before it loads its plugin: the file system
//! becomes read-only and limited to what loading and running the plugin needs, TCP bind and
//! connect are closed, and (where the kernel has them) signals to and abstract sockets of
//! processes outside the sandbox are refused. Landlock also forbids tracing a process outside
//! the sandbox, so the plugin cannot read the CA's memory through ptrace or `/proc`.
//!
//! Then a system-call filter (seccomp) refuses what Landlock does not cover: new processes
//! (`fork`, a `clone` that is not a thread) and programs (`execve`, also of a memfd), new
//! sockets of any kind (the one to the CA is inherited), tracing and other processes' memory,
//! System V IPC, calls that name another process (limits, priorities, scheduling, memory
//! placement: only its own), and the kernel's administrative calls (modules, mounts,
//! namespaces, BPF, keys, clock, reboot, swap, kernel log).
//!
//! Landlock is best effort, as the kernel allows: what was enforced is reported to the CA, which
//! logs it. The filter is not optional: a kernel without seccomp stops the process.

use std::path::{Path, PathBuf};

/// The Landlock version whose rights are asked for: file system (with device ioctls, v5),
/// TCP (v4) and scoping of signals and abstract UNIX sockets (v6). A newer kernel enforces all
/// of it; an older one what it has.
#[cfg(target_os = "linux")]
const TARGET_ABI: landlock::ABI = landlock::ABI::V6;

/// Directories the dynamic loader reads a plugin's libraries from (libc, libgcc_s, libm and
/// what else a plugin links), and its cache. Read-only; nothing under them is secret.
const LIBRARY_PATHS: [&str; 6] = [
    "/lib",
    "/lib64",
    "/usr/lib",
    "/usr/lib64",
    "/usr/local/lib",
    "/etc/ld.so.cache",
];

/// What confinement was achieved, as reported to the CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Confinement {
    /// Every restriction asked for is enforced.
    Full,
    /// Some are (an older kernel).
    Partial,
    /// None: the kernel has no Landlock (or it is disabled).
    None,
}

/// The files the plugin may read: its library, the loader's directories, and `extra` (the
/// files its configuration names). Paths that do not exist are left out.
pub(crate) fn readable_paths(plugin: &Path, extra: &[PathBuf]) -> Vec<PathBuf> {
    LIBRARY_PATHS
        .iter()
        .map(PathBuf::from)
        .chain(std::iter::once(plugin.to_owned()))
        .chain(extra.iter().cloned())
        .filter(|p| p.exists())
        .collect()
}

/// Restricts this process (and every thread it starts afterwards; call it before starting
/// any) to reading `readable`, with no TCP and no signals or abstract sockets outside.
#[cfg(target_os = "linux")]
pub(crate) fn restrict_to(readable: &[PathBuf]) -> Result<Confinement, landlock::RulesetError> {
    use landlock::{
        path_beneath_rules, Access, AccessFs, AccessNet, Ruleset, RulesetAttr, RulesetCreatedAttr,
        RulesetStatus, Scope,
    };
    // Read files and list directories; not `Execute` (which `AccessFs::from_read` includes):
    // with it, the dynamic loader under /lib would run any readable program
    // (`/lib64/ld-linux-x86-64.so.2 PROGRAM`). Mapping a library for execution (dlopen) is
    // not Landlock's `Execute`.
    let read = AccessFs::ReadFile | AccessFs::ReadDir;
    let status = Ruleset::default()
        .handle_access(AccessFs::from_all(TARGET_ABI))
        .and_then(|r| r.handle_access(AccessNet::from_all(TARGET_ABI)))
        .and_then(|r| r.scope(Scope::from_all(TARGET_ABI)))
        .and_then(|r| r.create())
        .and_then(|r| r.add_rules(path_beneath_rules(readable, read)))
        .and_then(|r| r.restrict_self())?;
    Ok(match status.ruleset {
        RulesetStatus::FullyEnforced => Confinement::Full,
        RulesetStatus::PartiallyEnforced => Confinement::Partial,
        _ => Confinement::None,
    })
}

/// Installs the system-call filter on this thread and every thread it starts afterwards (call
/// it while the process has one thread): the calls below answer `EPERM`, `clone3` `ENOSYS` (so
/// that the C library falls back to `clone`, where a thread can be told from a process).
#[cfg(target_os = "linux")]
pub(crate) fn forbid_syscalls() -> Result<(), seccompiler::Error> {
    use std::collections::BTreeMap;

    use seccompiler::{
        apply_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
        SeccompFilter, SeccompRule, TargetArch,
    };
    let arch = TargetArch::try_from(std::env::consts::ARCH)?;
    let errno = |e: i32| SeccompAction::Errno(e as u32);

    let mut refused: BTreeMap<i64, Vec<SeccompRule>> =
        FORBIDDEN.iter().map(|call| (*call, Vec::new())).collect();
    // `clone` without CLONE_THREAD makes a process; with it, a thread (which plugins use) —
    // unless it also asks for a namespace.
    let mut clone_rules = vec![SeccompRule::new(vec![SeccompCondition::new(
        0,
        SeccompCmpArgLen::Qword,
        SeccompCmpOp::MaskedEq(libc::CLONE_THREAD as u64),
        0,
    )?])?];
    for flag in NAMESPACE_FLAGS {
        clone_rules.push(SeccompRule::new(vec![SeccompCondition::new(
            0,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::MaskedEq(flag as u64),
            flag as u64,
        )?])?);
    }
    refused.insert(libc::SYS_clone, clone_rules);
    // Calls that may name another process (the CA, by pid, process group or user): only this
    // process itself may be named — pid or `who` 0, and for priorities "a process".
    let not_zero = |arg: u8| -> Result<SeccompRule, seccompiler::Error> {
        Ok(SeccompRule::new(vec![SeccompCondition::new(
            arg,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::Ne,
            0,
        )?])?)
    };
    for call in [
        libc::SYS_prlimit64,
        libc::SYS_sched_setaffinity,
        libc::SYS_sched_setscheduler,
        libc::SYS_sched_setparam,
        libc::SYS_sched_setattr,
        libc::SYS_migrate_pages,
        libc::SYS_move_pages,
    ] {
        refused.insert(call, vec![not_zero(0)?]);
    }
    // setpriority(which, who, …): only PRIO_PROCESS (0) of this process (who 0).
    refused.insert(libc::SYS_setpriority, vec![not_zero(0)?, not_zero(1)?]);
    // ioprio_set(which, who, …): only IOPRIO_WHO_PROCESS (1) of this process (who 0).
    refused.insert(
        libc::SYS_ioprio_set,
        vec![
            SeccompRule::new(vec![SeccompCondition::new(
                0,
                SeccompCmpArgLen::Dword,
                SeccompCmpOp::Ne,
                1,
            )?])?,
            not_zero(1)?,
        ],
    );
    let refused: BpfProgram =
        SeccompFilter::new(refused, SeccompAction::Allow, errno(libc::EPERM), arch)?.try_into()?;
    let clone3: BpfProgram = SeccompFilter::new(
        BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
        SeccompAction::Allow,
        errno(libc::ENOSYS),
        arch,
    )?
    .try_into()?;
    apply_filter(&clone3)?;
    apply_filter(&refused)?;
    #[cfg(target_arch = "x86_64")]
    apply_filter(&x32_refused())?;
    Ok(())
}

/// On x86_64 the x32 ABI reaches the same kernel calls under other numbers (the x64 ones with
/// bit 30 set, and some of their own) that the filter above does not name: every one of them
/// answers `ENOSYS`. (seccompiler checks the architecture, which x32 shares with x86_64.)
#[cfg(target_arch = "x86_64")]
fn x32_refused() -> seccompiler::BpfProgram {
    use seccompiler::sock_filter;
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    // Classic BPF opcodes (linux/filter.h): BPF_LD|BPF_W|BPF_ABS, BPF_JMP|BPF_JGE|BPF_K,
    // BPF_RET|BPF_K.
    const LD_W_ABS: u16 = 0x20;
    const JGE_K: u16 = 0x35;
    const RET_K: u16 = 0x06;
    let op = |code, jt, jf, k| sock_filter { code, jt, jf, k };
    vec![
        // A = seccomp_data.nr
        op(LD_W_ABS, 0, 0, 0),
        // nr >= X32_SYSCALL_BIT ? next : skip one
        op(JGE_K, 0, 1, X32_SYSCALL_BIT),
        op(RET_K, 0, 0, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
        op(RET_K, 0, 0, libc::SECCOMP_RET_ALLOW),
    ]
}

/// The `clone` flags that make a namespace: refused even for a thread.
#[cfg(target_os = "linux")]
const NAMESPACE_FLAGS: [i32; 7] = [
    libc::CLONE_NEWNS,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWCGROUP,
];

/// The calls the filter refuses outright (`clone` is refused for processes only, and the calls
/// that can name another process only when they do).
#[cfg(target_os = "linux")]
const FORBIDDEN: &[i64] = &[
    #[cfg(target_arch = "x86_64")]
    libc::SYS_fork,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_vfork,
    libc::SYS_execve,
    libc::SYS_execveat,
    libc::SYS_socket,
    libc::SYS_socketpair,
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_pidfd_getfd,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_userfaultfd,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_kexec_load,
    libc::SYS_io_uring_setup,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    // What only root may do, refused to a root plugin too: the machine's clock, name, power,
    // swap, kernel log, accounting, port I/O, quotas, file-access notification, mounts by the
    // new API.
    libc::SYS_reboot,
    libc::SYS_kexec_file_load,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_syslog,
    libc::SYS_acct,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    libc::SYS_sethostname,
    libc::SYS_setdomainname,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_iopl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_ioperm,
    libc::SYS_quotactl,
    libc::SYS_fanotify_init,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_open_tree,
    libc::SYS_move_mount,
    libc::SYS_mount_setattr,
    // System V IPC: segments and queues other processes of the same user may share.
    libc::SYS_shmget,
    libc::SYS_shmat,
    libc::SYS_shmctl,
    libc::SYS_msgget,
    libc::SYS_msgsnd,
    libc::SYS_msgrcv,
    libc::SYS_msgctl,
    libc::SYS_semget,
    libc::SYS_semop,
    libc::SYS_semctl,
];

/// Elsewhere there is no seccomp: nesca's plugins run confined on Linux only.
#[cfg(not(target_os = "linux"))]
pub(crate) fn forbid_syscalls() -> Result<(), std::convert::Infallible> {
    Ok(())
}

/// Elsewhere there is no Landlock.
#[cfg(not(target_os = "linux"))]
pub(crate) fn restrict_to(_readable: &[PathBuf]) -> Result<Confinement, std::convert::Infallible> {
    Ok(Confinement::None)
}

/// The files a plugin's configuration names: every string in it (at any depth) that is the
/// path of an existing file. The operator wrote them there for the plugin to read (trust
/// anchors, CA certificates), so the plugin may read those and nothing else of theirs.
///
/// Landlock allows a file by its inode, as it is when the process starts: a file replaced
/// since (written anew by rename, as deployment tools do) is refused until the plugin's process
/// restarts.
pub(crate) fn files_named_in(config: &serde_json::Value) -> Vec<PathBuf> {
    let mut out = Vec::new();
    collect_files(config, &mut out);
    out
}

fn collect_files(v: &serde_json::Value, out: &mut Vec<PathBuf>) {
    match v {
        serde_json::Value::String(s) if !s.is_empty() && !s.contains('\n') => {
            let p = Path::new(s);
            if p.is_file() && !out.iter().any(|o| o == p) {
                out.push(p.to_owned());
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| collect_files(i, out)),
        serde_json::Value::Object(map) => map.values().for_each(|i| collect_files(i, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_existing_files_named_in_the_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let anchor = dir.path().join("anchor.pem");
        std::fs::write(&anchor, "x").unwrap();
        let a = anchor.to_str().unwrap();
        let config = serde_json::json!({
            "kdhs_trust_anchors": a,
            "nested": {"list": [a, "/nonexistent/file.pem", 5, true]},
            "dir": dir.path().to_str().unwrap(),
            "licences": ["KDHS-1"],
        });
        assert_eq!(files_named_in(&config), vec![anchor]);
    }

    #[test]
    fn readable_paths_leave_out_what_does_not_exist() {
        let paths = readable_paths(
            Path::new("/nonexistent/libp.so"),
            &[PathBuf::from("/etc/hostname")],
        );
        assert!(!paths.iter().any(|p| p.starts_with("/nonexistent")));
        assert!(paths.iter().all(|p| p.exists()), "{paths:?}");
    }
}
