//! The command's capabilities. A RUN in the default sandbox gets Docker's (and
//! containerd's, which BuildKit uses) default set: everything else is dropped from the
//! bounding set before the command is exec'd, and the inheritable and ambient sets are
//! cleared, so a root command ends with exactly [`DEFAULT`] (exec gives root the
//! bounding set) and a non-root one with none (setuid clears them) that no setuid
//! binary can widen past [`DEFAULT`]. `RUN --security=insecure` keeps them all.

use nix::errno::Errno;

use super::ExecError;

/// Capability numbers (linux/capability.h) of the default set, in BuildKit's order:
/// FSETID, KILL, FOWNER, MKNOD, CHOWN, DAC_OVERRIDE, NET_RAW, SETGID, SETUID, SETPCAP,
/// SETFCAP, NET_BIND_SERVICE, SYS_CHROOT, AUDIT_WRITE.
// COMPAT(buildkit): the first 14 capabilities of `entitlements.WithInsecureSpec`'s
// list, which are containerd's default `oci.WithDefaultSpec` set.
pub const DEFAULT: [u32; 14] = [4, 5, 3, 27, 0, 1, 13, 6, 7, 8, 31, 10, 18, 29];

/// The highest capability number the kernel knows.
fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        // CAP_CHECKPOINT_RESTORE, the last one as of Linux 5.9.
        .unwrap_or(40)
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_V3: u32 = 0x2008_0522;

fn err(step: &'static str) -> impl Fn(Errno) -> ExecError {
    move |source| ExecError::Capabilities {
        step: step.into(),
        source,
    }
}

/// Every capability by its name in linux/capability.h (without `CAP_`), by number.
pub const NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The number of the capability docker calls `name` (`NET_ADMIN`, `CAP_NET_ADMIN`,
/// any case).
pub fn by_name(name: &str) -> Option<u32> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    NAMES.iter().position(|n| *n == bare).map(|i| i as u32)
}

/// Narrows this process to `keep` ([`DEFAULT`] for a RUN) for what it execs. Needs
/// CAP_SETPCAP (the sandbox init runs as root with every capability).
pub fn keep(keep: &[u32]) -> Result<(), ExecError> {
    for cap in 0..=last_cap() {
        if keep.contains(&cap) {
            continue;
        }
        // SAFETY: PR_CAPBSET_DROP takes plain integers and no pointers.
        let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        match Errno::result(rc) {
            // A capability this kernel does not have is not in the set either.
            Ok(_) | Err(Errno::EINVAL) => {}
            Err(e) => return Err(err("dropping from the bounding set")(e)),
        }
    }
    // SAFETY: as above.
    let rc = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    };
    // EINVAL: a kernel without ambient capabilities has none to clear.
    if let Err(e) = Errno::result(rc) {
        if e != Errno::EINVAL {
            return Err(err("clearing the ambient set")(e));
        }
    }
    let mut header = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget writes two CapData (the v3 layout) and reads the header; both live
    // for the call.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    Errno::result(rc).map_err(err("reading the capability sets"))?;
    for d in &mut data {
        d.inheritable = 0;
    }
    // SAFETY: capset reads the header and two CapData, which live for the call.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) };
    Errno::result(rc).map_err(err("clearing the inheritable set"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_set_is_the_fourteen_docker_keeps_and_not_sys_admin() {
        let mut sorted = DEFAULT.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, [0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31]);
        // CAP_SYS_ADMIN (21), CAP_NET_ADMIN (12), CAP_SYS_PTRACE (19) need --security=insecure.
        for cap in [21, 12, 19] {
            assert!(!DEFAULT.contains(&cap));
        }
    }

    #[test]
    fn names_are_the_kernel_numbers() {
        assert_eq!(by_name("CHOWN"), Some(0));
        assert_eq!(by_name("cap_sys_admin"), Some(21));
        assert_eq!(by_name("net_admin"), Some(12));
        assert_eq!(by_name("CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(by_name("ALL"), None);
        assert_eq!(by_name("NOPE"), None);
    }
}
