//! RUN on a platform the host does not run natively: the kernel's
//! binfmt_misc hands the foreign binary to a QEMU user emulator, so the
//! sandbox needs nothing of its own. This module decides which platforms
//! need it and checks, before such a RUN starts, that a handler is
//! registered in a form that works inside the sandbox.
//!
//! A handler must carry the `F` flag (fix binary): the kernel then opens the
//! interpreter when it is registered, so it runs in the RUN's mount
//! namespace after `pivot_root`, where the host's `/usr/bin` is gone.
//! Debian's `qemu-user-static` ships such registrations
//! (`/usr/lib/binfmt.d/qemu-*.conf`, flags `OPF`).
//!
//! Decision: kiln never registers a handler itself. A registration is
//! host-wide (every process of every container on the machine then runs
//! foreign binaries through it) and outlives the build; changing that is
//! the administrator's call, so a missing handler fails the RUN with the
//! package and the command that registers it. Stages with no RUN on a
//! foreign platform (COPY, metadata, `FROM --platform=$BUILDPLATFORM`
//! stages) never reach this check and need no emulator.

use std::path::{Path, PathBuf};

use crate::oci::{Platform, PlatformMatcher};

/// Where binfmt_misc is mounted.
const BINFMT_MISC: &str = "/proc/sys/fs/binfmt_misc";

/// Why a RUN on a foreign platform cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmulationError {
    /// No QEMU user emulator is known for the architecture.
    #[error("RUN on {platform} needs an emulator, and kiln knows no QEMU user emulator for architecture {architecture}")]
    Unsupported {
        /// The platform.
        platform: String,
        /// Its architecture.
        architecture: String,
    },
    /// binfmt_misc is not mounted, so no handler can be registered.
    #[error("RUN on {platform} needs QEMU user emulation, but binfmt_misc is not mounted at {BINFMT_MISC}: as root, `mount -t binfmt_misc binfmt_misc {BINFMT_MISC}`, install Debian's qemu-user-static (`apt-get install qemu-user-static`) and register it: `cat /usr/lib/binfmt.d/qemu-{qemu}.conf > {BINFMT_MISC}/register`")]
    NotMounted {
        /// The platform.
        platform: String,
        /// QEMU's name of the architecture.
        qemu: &'static str,
    },
    /// No handler for the architecture.
    #[error("RUN on {platform} needs QEMU user emulation, and no binfmt_misc handler is registered ({path}): install Debian's qemu-user-static (`apt-get install qemu-user-static`) and, as root, register it: `cat /usr/lib/binfmt.d/qemu-{qemu}.conf > {BINFMT_MISC}/register` (kiln does not change the host's binfmt_misc itself)")]
    NoHandler {
        /// The platform.
        platform: String,
        /// QEMU's name of the architecture.
        qemu: &'static str,
        /// The handler's entry that is missing.
        path: PathBuf,
    },
    /// The handler is registered but disabled.
    #[error("RUN on {platform} needs QEMU user emulation, and the binfmt_misc handler {path} is disabled: as root, `echo 1 > {path}`")]
    Disabled {
        /// The platform.
        platform: String,
        /// The handler's entry.
        path: PathBuf,
    },
    /// The handler lacks the `F` flag: its interpreter is not reachable
    /// inside the sandbox.
    #[error("RUN on {platform} needs QEMU user emulation, and the binfmt_misc handler {path} was registered without the F flag (its interpreter would be looked up inside the RUN's root and not found): as root, `echo -1 > {path}`, then `cat /usr/lib/binfmt.d/qemu-{qemu}.conf > {BINFMT_MISC}/register` (Debian's qemu-user-static registers with F)")]
    NoFixBinary {
        /// The platform.
        platform: String,
        /// QEMU's name of the architecture.
        qemu: &'static str,
        /// The handler's entry.
        path: PathBuf,
    },
}

/// Whether the host runs `platform`'s binaries itself: the same
/// architecture (any variant: a RUN that needs a newer one fails as it
/// would on the host), or 386 on amd64.
pub fn is_native(platform: &Platform) -> bool {
    let host = Platform::host();
    let bare = |p: &Platform| Platform {
        variant: None,
        ..p.clone()
    };
    if PlatformMatcher::only(&bare(&host)).matches(&bare(platform)) {
        return true;
    }
    host.architecture == "amd64" && platform.architecture == "386"
}

/// QEMU's name of an OCI architecture (`linux-user` emulator and Debian's
/// binfmt registration both use it).
fn qemu_name(architecture: &str) -> Option<&'static str> {
    Some(match architecture {
        "amd64" => "x86_64",
        "386" => "i386",
        "arm64" => "aarch64",
        "arm" => "arm",
        "ppc64le" => "ppc64le",
        "ppc64" => "ppc64",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "mips64le" => "mips64el",
        "mips64" => "mips64",
        "mipsle" => "mipsel",
        "mips" => "mips",
        "loong64" => "loongarch64",
        _ => return None,
    })
}

/// Checks that a RUN on `platform` can run: natively, or through an
/// enabled binfmt_misc QEMU handler with the `F` flag.
pub fn check(platform: &Platform) -> Result<(), EmulationError> {
    check_in(Path::new(BINFMT_MISC), platform)
}

/// [`check`] against a binfmt_misc directory `dir` (a test gives its own).
fn check_in(dir: &Path, platform: &Platform) -> Result<(), EmulationError> {
    if is_native(platform) {
        return Ok(());
    }
    let spec = platform.to_specifier();
    let qemu = qemu_name(&platform.architecture).ok_or_else(|| EmulationError::Unsupported {
        platform: spec.clone(),
        architecture: platform.architecture.clone(),
    })?;
    if !dir.join("status").exists() {
        return Err(EmulationError::NotMounted {
            platform: spec,
            qemu,
        });
    }
    let path = dir.join(format!("qemu-{qemu}"));
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Err(EmulationError::NoHandler {
            platform: spec,
            qemu,
            path,
        });
    };
    if text.lines().next() != Some("enabled") {
        return Err(EmulationError::Disabled {
            platform: spec,
            path,
        });
    }
    let flags = text
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .unwrap_or("");
    if !flags.contains('F') {
        return Err(EmulationError::NoFixBinary {
            platform: spec,
            qemu,
            path,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(spec: &str) -> Platform {
        crate::oci::parse_platform(spec).unwrap()
    }

    #[test]
    fn the_host_and_its_variants_are_native() {
        let host = Platform::host();
        assert!(is_native(&host));
        assert!(is_native(&Platform {
            variant: Some("v2".into()),
            ..host.clone()
        }));
        let foreign = if host.architecture == "arm64" {
            "linux/s390x"
        } else {
            "linux/arm64"
        };
        assert!(!is_native(&p(foreign)));
    }

    /// Each refusal of a foreign platform, against a fake binfmt_misc dir:
    /// not mounted, no handler, disabled, no F flag; then accepted.
    #[test]
    fn a_handler_must_be_enabled_with_the_fix_binary_flag() {
        let foreign = match Platform::host().architecture.as_str() {
            "arm64" => p("linux/amd64"),
            _ => p("linux/arm64"),
        };
        let qemu = qemu_name(&foreign.architecture).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let err = check_in(dir.path(), &foreign).unwrap_err();
        assert!(matches!(err, EmulationError::NotMounted { .. }), "{err}");
        assert!(err.to_string().contains("qemu-user-static"), "{err}");
        std::fs::write(dir.path().join("status"), "enabled\n").unwrap();
        let err = check_in(dir.path(), &foreign).unwrap_err();
        assert!(matches!(err, EmulationError::NoHandler { .. }), "{err}");
        assert!(err.to_string().contains("apt-get install qemu-user-static"));
        let entry = dir.path().join(format!("qemu-{qemu}"));
        std::fs::write(&entry, "disabled\ninterpreter /x\nflags: OCF\n").unwrap();
        let err = check_in(dir.path(), &foreign).unwrap_err();
        assert!(matches!(err, EmulationError::Disabled { .. }), "{err}");
        std::fs::write(&entry, "enabled\ninterpreter /x\nflags: OC\n").unwrap();
        let err = check_in(dir.path(), &foreign).unwrap_err();
        assert!(matches!(err, EmulationError::NoFixBinary { .. }), "{err}");
        std::fs::write(&entry, "enabled\ninterpreter /x\nflags: POF\n").unwrap();
        check_in(dir.path(), &foreign).unwrap();
        // The host needs none of it.
        check_in(dir.path(), &Platform::host()).unwrap();
        let err = check_in(dir.path(), &p("linux/pdp11")).unwrap_err();
        assert!(matches!(err, EmulationError::Unsupported { .. }), "{err}");
    }
}
