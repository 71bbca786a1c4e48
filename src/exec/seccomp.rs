//! The command's system-call filter. A RUN in the default sandbox gets the part of
//! Docker's default seccomp profile that its capabilities do not already cover: what a
//! process can do with no capability at all and that reaches past the container. Above
//! all, new namespaces: an unprivileged `unshare(CLONE_NEWUSER)` would hand the command
//! a fresh full capability set inside a user namespace, undoing the narrowing in
//! [`super::caps`]. `RUN --security=insecure` runs unfiltered, as BuildKit's
//! `WithInsecureSpec` (seccomp unconfined) does.
//!
//! The filter is a deny list (everything else allowed), so ordinary build tools never
//! meet it; denied calls fail with `EPERM`, `clone3` with `ENOSYS` so that libc falls
//! back to `clone`, whose flags the filter can read (Docker's profile does the same).
//!
//! Installed with `seccomp(2)` directly while the helper still holds `CAP_SYS_ADMIN`,
//! never through `PR_SET_NO_NEW_PRIVS`: that would also stop setuid binaries (`su`,
//! `ping`) inside a RUN, which Docker's default allows.

use std::collections::BTreeMap;

use nix::errno::Errno;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use super::ExecError;

/// The `clone` flags that make namespaces (Docker's profile mask 0x7E020000, plus
/// CLONE_NEWTIME).
const NAMESPACE_FLAGS: [u64; 8] = [
    0x0002_0000, // CLONE_NEWNS
    0x0200_0000, // CLONE_NEWCGROUP
    0x0400_0000, // CLONE_NEWUTS
    0x0800_0000, // CLONE_NEWIPC
    0x1000_0000, // CLONE_NEWUSER
    0x2000_0000, // CLONE_NEWPID
    0x4000_0000, // CLONE_NEWNET
    0x0000_0080, // CLONE_NEWTIME
];

/// Calls a capability-less process could make that reach the host: the kernel keyring
/// (not namespaced), BPF and perf, userfaultfd and io_uring (favourite exploit
/// primitives), namespaces, and the ones Docker denies outright.
fn denied() -> Vec<i64> {
    let mut calls = vec![
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_keyctl,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_userfaultfd,
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_open_by_handle_at,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_reboot,
        libc::SYS_syslog,
        libc::SYS_acct,
        libc::SYS_settimeofday,
        libc::SYS_clock_settime,
        libc::SYS_clock_adjtime,
        libc::SYS_adjtimex,
        libc::SYS_quotactl,
        libc::SYS_lookup_dcookie,
    ];
    #[cfg(target_arch = "x86_64")]
    calls.extend([libc::SYS_iopl, libc::SYS_ioperm]);
    calls
}

fn arch() -> TargetArch {
    #[cfg(target_arch = "aarch64")]
    return TargetArch::aarch64;
    #[cfg(not(target_arch = "aarch64"))]
    TargetArch::x86_64
}

fn compile(rules: BTreeMap<i64, Vec<SeccompRule>>, errno: Errno) -> Result<BpfProgram, String> {
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno as u32),
        arch(),
    )
    .map_err(|e| e.to_string())?;
    filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| e.to_string())
}

/// The two programs: the `EPERM` deny list (with `clone` by its flags), then `clone3`
/// → `ENOSYS`. Of two filters answering with errors the later one's errno wins, and
/// each answers only for its own calls.
pub fn programs() -> Result<[BpfProgram; 2], String> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        denied().into_iter().map(|c| (c, Vec::new())).collect();
    let clone_rules = NAMESPACE_FLAGS
        .iter()
        .map(|&flag| {
            let cond = SeccompCondition::new(
                0,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::MaskedEq(flag),
                flag,
            )
            .map_err(|e| e.to_string())?;
            SeccompRule::new(vec![cond]).map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, String>>()?;
    rules.insert(libc::SYS_clone, clone_rules);
    let deny = compile(rules, Errno::EPERM)?;
    let clone3 = compile([(libc::SYS_clone3, Vec::new())].into(), Errno::ENOSYS)?;
    Ok([deny, clone3])
}

/// Installs the filters on this process (inherited by the command it execs).
pub fn install() -> Result<(), ExecError> {
    let err = |step: String, source| ExecError::Seccomp { step, source };
    let programs =
        programs().map_err(|e| err(format!("compiling the filter: {e}"), Errno::EINVAL))?;
    for prog in &programs {
        let fprog = libc::sock_fprog {
            len: prog.len() as u16,
            filter: prog.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: seccomp(SECCOMP_SET_MODE_FILTER) reads `fprog` and the `len`
        // instructions it points at; both outlive the call. seccompiler's `sock_filter`
        // has libc's layout.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &fprog as *const libc::sock_fprog,
            )
        };
        Errno::result(rc).map_err(|e| err("installing the filter".into(), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_programs_compile_and_deny_namespaces() {
        let [deny, clone3] = programs().unwrap();
        assert!(deny.len() > denied().len(), "one check per call at least");
        assert!(!clone3.is_empty());
        assert!(denied().contains(&libc::SYS_unshare));
        assert!(NAMESPACE_FLAGS.contains(&(libc::CLONE_NEWUSER as u64)));
    }
}
