//! What isolation this process can give a command, found by trying it.
//!
//! [`probe_sandbox`] starts the real sandbox over an empty root with a command that
//! does not exist: every step before `execve` (unsharing the PID, mount, UTS and IPC
//! namespaces, the overlay, /proc, /dev, /sys, pivot_root, capabilities, seccomp, the
//! user) runs as for a RUN, so "exec failed with ENOENT" means the sandbox works and any
//! other error names the first step the environment refuses (Docker's default seccomp
//! profile refuses `unshare` with EPERM; a container without CAP_SYS_ADMIN refuses
//! `mount`). [`chroot_missing_capabilities`] reads the effective set for what the
//! chroot isolation needs. Neither caches: the caller does, once per process.

use std::path::Path;

use super::caps::NAMES;
use super::{ExecError, Network, RunSpec};

/// Capabilities a chroot run needs, by number: SYS_CHROOT (chroot), CHOWN, FOWNER,
/// DAC_OVERRIDE (copying an image's files with their owners and modes), MKNOD (the
/// layer's whiteouts), SETUID and SETGID (a step's `USER`). Docker grants them all.
const CHROOT_NEEDS: [u32; 7] = [18, 0, 3, 1, 27, 7, 6];

/// Runs the sandbox over an empty root in `scratch` (an empty directory of the
/// caller's, which it removes afterwards) with a command that cannot exist: `Ok` when
/// the sandbox got as far as `execve`, else why it could not.
pub fn probe_sandbox(exe: &Path, scratch: &Path) -> Result<(), ExecError> {
    let dir = |name: &str| -> Result<std::path::PathBuf, ExecError> {
        let p = scratch.join(name);
        std::fs::create_dir_all(&p).map_err(|e| ExecError::Helper {
            step: format!("creating the probe's {name} dir"),
            source: ExecError::errno_of(&e),
        })?;
        Ok(p)
    };
    let (lower, upper, work, files) = (dir("lower")?, dir("upper")?, dir("work")?, dir("etc")?);
    let file = |name: &str, text: &str| -> Result<std::path::PathBuf, ExecError> {
        let p = files.join(name);
        std::fs::write(&p, text).map_err(|e| ExecError::Helper {
            step: format!("writing the probe's {name}"),
            source: ExecError::errno_of(&e),
        })?;
        Ok(p)
    };
    let spec = RunSpec {
        lower_dirs: vec![lower],
        upper_dir: upper,
        work_dir: work,
        argv: vec!["/.kiln-isolation-probe".into()],
        env: Vec::new(),
        cwd: "/".into(),
        user: String::new(),
        hostname: "probe".into(),
        network: Network::Host,
        mounts: Vec::new(),
        stdin: None,
        privileged: false,
        hosts_file: Some(file("hosts", "127.0.0.1\tlocalhost\n")?),
        resolv_conf: Some(file("resolv.conf", "")?),
        ulimits: Vec::new(),
        shm_size: None,
        capabilities: None,
        read_only_root: false,
        foreground: None,
        ports: Vec::new(),
    };
    match super::run(&spec, exe, &mut |_| {}) {
        Ok(_) => Ok(()),
        Err(ExecError::Exec {
            source: nix::errno::Errno::ENOENT,
            ..
        }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The names (`CAP_…`) of the capabilities a chroot run needs that this process
/// does not have in its effective set; empty when it has them all.
pub fn chroot_missing_capabilities() -> Vec<String> {
    let effective = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0);
    missing_from(effective)
}

fn missing_from(effective: u64) -> Vec<String> {
    CHROOT_NEEDS
        .iter()
        .filter(|&&c| effective & (1u64 << c) == 0)
        .map(|&c| format!("CAP_{}", NAMES[c as usize]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_capabilities_are_named() {
        assert!(missing_from(u64::MAX).is_empty());
        let all_but_chroot = !(1u64 << 18);
        assert_eq!(missing_from(all_but_chroot), ["CAP_SYS_CHROOT"]);
        assert_eq!(missing_from(0).len(), CHROOT_NEEDS.len());
    }
}
