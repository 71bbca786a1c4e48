//! The root filesystem plan: from a [`RunSpec`] to the unshare, mounts and pivot that
//! build the sandbox's root, all made through the [`Sys`] seam. Invariants: mount
//! points are resolved inside the root (an image's absolute symlink never leads to a
//! host path); every path the setup creates in the overlay only to mount on is recorded
//! in [`MountPoints`], so it can be removed from the upper dir after the run.

use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::stat::SFlag;

#[cfg(test)]
use super::mountpoint::resolve_in_root;
pub use super::mountpoint::MountPoints;
use super::mountpoint::{create_err, ensure_point, resolve_err};
use super::overlay::overlay_options;
use super::sys::{Kind, Sys};
use super::{ExecError, MountKind, Network, RunSpec};

/// Where, under the spec's work dir, the overlay is mounted, works and finds an empty
/// lower dir when the spec has none (a `FROM scratch` first step).
pub fn root_dir(spec: &RunSpec) -> PathBuf {
    spec.work_dir.join("root")
}
fn overlay_work(spec: &RunSpec) -> PathBuf {
    spec.work_dir.join("w")
}
fn empty_lower(spec: &RunSpec) -> PathBuf {
    spec.work_dir.join("empty")
}

/// The namespaces the sandbox init unshares here (PID is unshared by the helper before
/// it forks, since a new PID namespace applies to children; a private network's
/// namespace by the init before this setup, so the helper can wire it up first).
pub fn namespaces(network: Network) -> CloneFlags {
    let mut flags = CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC;
    if network == Network::None {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    flags
}

/// `MS_NODEV` for every mount a sandboxed command can write to or read a device node
/// from; nothing for a privileged one.
// COMPAT(buildkit): runc's device cgroup lets a sandboxed command open only null, zero,
// full, random, urandom, tty, console, ptmx and pts; `mknod` itself succeeds there and
// here. kiln gets the same result without a cgroup: every mount in the sandbox is
// `nodev` (opening a node on it fails with EACCES), and the allowed nodes are bind
// mounts of the host's own. Without CAP_SYS_ADMIN the command cannot mount or remount
// anything to lift it. Insecure mode, like BuildKit's, allows every device.
pub fn nodev(privileged: bool) -> MsFlags {
    if privileged {
        MsFlags::empty()
    } else {
        MsFlags::MS_NODEV
    }
}

/// Builds the root and pivots into it. Afterwards `/` is the overlay and the current
/// directory is `/`.
pub fn setup(sys: &mut dyn Sys, spec: &RunSpec) -> Result<MountPoints, ExecError> {
    let flags = namespaces(spec.network);
    sys.unshare(flags).map_err(|source| ExecError::Unshare {
        flags: format!("{flags:?}"),
        source,
    })?;
    // Nothing below may propagate back to the host's mounts.
    mount(
        sys,
        None,
        Path::new("/"),
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
        "private /",
    )?;
    let root = root_dir(spec);
    mount_overlay_root(sys, spec, &root)?;
    let mut points = MountPoints::default();
    mount_system(sys, &root, spec, &mut points)?;
    for (i, m) in spec.mounts.iter().enumerate() {
        let target = join_cwd(&spec.cwd, &m.target);
        let cx = MountCx {
            root: &root,
            scratch: spec.work_dir.join(format!("s{i}")),
            nodev: nodev(spec.privileged),
        };
        mount_extra(sys, &cx, &target, &m.kind, &mut points)?;
    }
    if matches!(spec.network, Network::None | Network::Private) {
        sys.loopback_up()
            .map_err(|source| ExecError::Loopback { source })?;
    }
    sys.sethostname(&spec.hostname)
        .map_err(|source| ExecError::SetHostname {
            hostname: spec.hostname.clone(),
            source,
        })?;
    if spec.read_only_root {
        // COMPAT(docker): a missing working directory is made in the container's layer
        // before it starts, so a read-only root still gets one.
        ensure_point(sys, &root, &spec.cwd, true, &mut points)?;
        // A bind remount changes this mount's flags only: the mounts above stay as set.
        mount(
            sys,
            None,
            &root,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | nodev(spec.privileged),
            None,
            "read-only remount of the root",
        )?;
    }
    pivot(sys, &root)?;
    Ok(points)
}

/// The overlay option that rootless mounts add.
pub const USERXATTR: &str = ",userxattr";

fn mount_overlay_root(sys: &mut dyn Sys, spec: &RunSpec, root: &Path) -> Result<(), ExecError> {
    let mut lowers = spec.lower_dirs.clone();
    if lowers.is_empty() {
        lowers.push(empty_lower(spec));
    }
    let links_dir = spec.work_dir.join("l");
    for dir in [
        root.to_path_buf(),
        overlay_work(spec),
        empty_lower(spec),
        links_dir.clone(),
    ] {
        if sys.kind(&dir).map_err(|source| create_err(&dir, source))? == Kind::Missing {
            sys.mkdir(&dir).map_err(|source| create_err(&dir, source))?;
        }
    }
    let mut opts = overlay_options(&lowers, &spec.upper_dir, &overlay_work(spec), &links_dir)?;
    // Rootless: overlayfs keeps its whiteouts' and opaque dirs' marks in `user.overlay.*`
    // (trusted.* needs CAP_SYS_ADMIN on the host); the unpacked snapshots carry the
    // same (see layer::unpack). Appending it never overflows: overlay_options leaves
    // room for it.
    if sys.in_user_namespace() {
        opts.data.push_str(USERXATTR);
    }
    for (name, target) in &opts.links {
        let link = links_dir.join(name);
        sys.symlink(&target.to_string_lossy(), &link)
            .map_err(|source| create_err(&link, source))?;
    }
    let userns = sys.in_user_namespace();
    let overlay_err = |source| ExecError::MountOverlay {
        target: root.to_path_buf(),
        source_dir: opts.base.clone(),
        source,
    };
    sys.chdir(&opts.base).map_err(overlay_err)?;
    let overlay_err = |source| match source {
        Errno::EPERM | Errno::EINVAL | Errno::EOPNOTSUPP if userns => ExecError::RootlessOverlay {
            target: root.to_path_buf(),
            source,
        },
        source => overlay_err(source),
    };
    let fs = Path::new("overlay");
    sys.mount(
        Some(fs),
        root,
        Some("overlay"),
        nodev(spec.privileged),
        Some(&opts.data),
    )
    .map_err(overlay_err)
}

/// The devices a privileged sandbox adds to the minimal /dev: name, kind, major, minor.
// COMPAT(buildkit): `entitlements.WithInsecureSpec` adds kmsg, cuse, fuse, kvm, net/tun,
// loop-control and loop devices up to the first free one plus 7; kiln makes loop0-7
// (the count when none is in use) without asking loop-control. Mode 0666 as runc
// gives a device without a file mode.
pub const PRIVILEGED_DEVICES: [(&str, SFlag, u64, u64); 14] = [
    ("kmsg", SFlag::S_IFCHR, 1, 11),
    ("cuse", SFlag::S_IFCHR, 10, 203),
    ("fuse", SFlag::S_IFCHR, 10, 229),
    ("kvm", SFlag::S_IFCHR, 10, 232),
    ("net/tun", SFlag::S_IFCHR, 10, 200),
    ("loop-control", SFlag::S_IFCHR, 10, 237),
    ("loop0", SFlag::S_IFBLK, 7, 0),
    ("loop1", SFlag::S_IFBLK, 7, 1),
    ("loop2", SFlag::S_IFBLK, 7, 2),
    ("loop3", SFlag::S_IFBLK, 7, 3),
    ("loop4", SFlag::S_IFBLK, 7, 4),
    ("loop5", SFlag::S_IFBLK, 7, 5),
    ("loop6", SFlag::S_IFBLK, 7, 6),
    ("loop7", SFlag::S_IFBLK, 7, 7),
];

/// /proc, a minimal /dev, /sys (read-only unless privileged), and the spec's
/// resolv.conf and hosts files (the host's own when the spec has none), read-only.
fn mount_system(
    sys: &mut dyn Sys,
    root: &Path,
    spec: &RunSpec,
    points: &mut MountPoints,
) -> Result<(), ExecError> {
    let privileged = spec.privileged;
    let nosuid_noexec = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let proc = ensure_point(sys, root, "/proc", true, points)?;
    mount(
        sys,
        Some("proc"),
        &proc,
        Some("proc"),
        nosuid_noexec,
        None,
        "proc",
    )?;
    let dev = ensure_point(sys, root, "/dev", true, points)?;
    let dev_flags = MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME | nodev(privileged);
    mount(
        sys,
        Some("tmpfs"),
        &dev,
        Some("tmpfs"),
        dev_flags,
        Some("mode=755,size=65536k"),
        "tmpfs /dev",
    )?;
    if privileged && sys.in_user_namespace() {
        // mknod of a device is refused in a user namespace.
        return Err(ExecError::RootlessInsecure);
    }
    if privileged {
        populate_dev_nodes(sys, &dev)?;
        privileged_devices(sys, &dev)?;
    } else {
        bind_host_devices(sys, &dev)?;
    }
    populate_dev(sys, &dev, spec.shm_size)?;
    let sysfs = ensure_point(sys, root, "/sys", true, points)?;
    // COMPAT(buildkit): `oci.WithWriteableSysfs` in insecure mode.
    let sys_ro = if privileged {
        MsFlags::empty()
    } else {
        MsFlags::MS_RDONLY
    };
    let fresh = sys.mount(
        Some(Path::new("sysfs")),
        &sysfs,
        Some("sysfs"),
        nosuid_noexec | sys_ro,
        None,
    );
    match fresh {
        // Rootless with the host's network: sysfs belongs to the host's network
        // namespace, which a user namespace may not mount; bind the host's /sys instead,
        // with the same flags, as rootless podman does.
        Err(Errno::EPERM) if sys.in_user_namespace() => {
            bind(sys, Path::new("/sys"), &sysfs, !privileged, nosuid_noexec)?
        }
        other => other.map_err(|source| ExecError::Mount {
            what: "sysfs".into(),
            target: sysfs.clone(),
            source,
        })?,
    }
    // COMPAT(buildkit): insecure mode clears the masked and read-only paths.
    if !privileged {
        mask_and_protect(sys, root)?;
    }
    let resolv = spec.resolv_conf.as_deref();
    let hosts = spec.hosts_file.as_deref();
    for (file, source) in [("/etc/resolv.conf", resolv), ("/etc/hosts", hosts)] {
        let source = source.unwrap_or(Path::new(file));
        // A host without the file has nothing to share; the image's own copy stays.
        if sys
            .kind(source)
            .map_err(|e| resolve_err(&source.to_string_lossy(), e))?
            == Kind::Missing
        {
            continue;
        }
        let target = ensure_point(sys, root, file, false, points)?;
        // COMPAT(buildkit): `withROBind`: "nosuid", "noexec", "nodev", "rbind", "ro",
        // insecure or not; a RUN can neither change these files nor exec them.
        let flags = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV;
        bind(sys, source, &target, true, flags)?;
    }
    Ok(())
}

/// The device nodes every sandbox has: name, major, minor (all character devices,
/// mode 0666). ptmx and pts come from the sandbox's own devpts.
pub const DEFAULT_DEVICES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// A privileged /dev (no `nodev`): the default nodes made with mknod.
fn populate_dev_nodes(sys: &mut dyn Sys, dev: &Path) -> Result<(), ExecError> {
    for (name, major, minor) in DEFAULT_DEVICES {
        let path = dev.join(name);
        sys.mknod(&path, SFlag::S_IFCHR, major, minor, 0o666)
            .map_err(|source| create_err(&path, source))?;
    }
    Ok(())
}

/// A sandboxed /dev is `nodev`, so its default nodes are bind mounts of the host's: a
/// bind mount keeps the flags of the mount it comes from (the host's /dev), so these
/// few open while a node the command makes beside them does not. A node the host lacks
/// (a /dev without tty) is left out rather than made openable.
fn bind_host_devices(sys: &mut dyn Sys, dev: &Path) -> Result<(), ExecError> {
    for (name, _, _) in DEFAULT_DEVICES {
        let host = Path::new("/dev").join(name);
        if sys
            .kind(&host)
            .map_err(|source| resolve_err(&host.to_string_lossy(), source))?
            == Kind::Missing
        {
            continue;
        }
        let path = dev.join(name);
        sys.create_file(&path)
            .map_err(|source| create_err(&path, source))?;
        mount(
            sys,
            host.to_str(),
            &path,
            None,
            MsFlags::MS_BIND,
            None,
            &format!("bind {}", host.display()),
        )?;
    }
    Ok(())
}

fn populate_dev(sys: &mut dyn Sys, dev: &Path, shm_size: Option<u64>) -> Result<(), ExecError> {
    for (name, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        let path = dev.join(name);
        sys.symlink(target, &path)
            .map_err(|source| create_err(&path, source))?;
    }
    for name in ["pts", "shm"] {
        let path = dev.join(name);
        sys.mkdir(&path)
            .map_err(|source| create_err(&path, source))?;
    }
    let pts_data = "newinstance,ptmxmode=0666,mode=0620,gid=5";
    let pts = dev.join("pts");
    let pts_flags = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
    let devpts = Some(Path::new("devpts"));
    match sys.mount(devpts, &pts, Some("devpts"), pts_flags, Some(pts_data)) {
        // A single-ID rootless namespace has no gid 5 (tty): new ptys get gid 0.
        Err(Errno::EINVAL) if sys.in_user_namespace() => {
            let data = pts_data.trim_end_matches(",gid=5");
            mount(
                sys,
                Some("devpts"),
                &pts,
                Some("devpts"),
                pts_flags,
                Some(data),
                "devpts",
            )?;
        }
        other => other.map_err(|source| ExecError::Mount {
            what: "devpts".into(),
            target: pts.clone(),
            source,
        })?,
    }
    let shm_flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let shm_data = match shm_size {
        Some(bytes) => format!("mode=1777,size={bytes}"),
        None => "mode=1777,size=65536k".to_string(),
    };
    mount(
        sys,
        Some("shm"),
        &dev.join("shm"),
        Some("tmpfs"),
        shm_flags,
        Some(&shm_data),
        "tmpfs /dev/shm",
    )
}

/// Hidden from a sandboxed command: a file under /dev/null, a dir under an
/// empty read-only tmpfs.
// COMPAT(buildkit): containerd's `oci.WithDefaultSpec` masked paths, which
// BuildKit's sandbox mode keeps.
pub const MASKED_PATHS: [&str; 11] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Read-only for a sandboxed command (containerd's default read-only paths).
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Masks [`MASKED_PATHS`] and makes [`READONLY_PATHS`] read-only, skipping
/// what this kernel does not have. Needs /proc, /sys and /dev/null mounted.
fn mask_and_protect(sys: &mut dyn Sys, root: &Path) -> Result<(), ExecError> {
    let null = root.join("dev/null");
    for path in MASKED_PATHS {
        let host = root.join(path.trim_start_matches('/'));
        match sys.kind(&host).map_err(|e| resolve_err(path, e))? {
            Kind::Missing | Kind::Symlink => {}
            Kind::Dir => mount(
                sys,
                Some("tmpfs"),
                &host,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None,
                &format!("masking {path}"),
            )?,
            Kind::Other => bind(sys, &null, &host, false, MsFlags::empty())?,
        }
    }
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    for path in READONLY_PATHS {
        let host = root.join(path.trim_start_matches('/'));
        if sys.kind(&host).map_err(|e| resolve_err(path, e))? == Kind::Missing {
            continue;
        }
        bind(sys, &host, &host, false, MsFlags::empty())?;
        let ro = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | flags;
        mount(
            sys,
            None,
            &host,
            None,
            ro,
            None,
            &format!("read-only {path}"),
        )?;
    }
    Ok(())
}

fn privileged_devices(sys: &mut dyn Sys, dev: &Path) -> Result<(), ExecError> {
    let net = dev.join("net");
    sys.mkdir(&net).map_err(|source| create_err(&net, source))?;
    for (name, kind, major, minor) in PRIVILEGED_DEVICES {
        let path = dev.join(name);
        sys.mknod(&path, kind, major, minor, 0o666)
            .map_err(|source| create_err(&path, source))?;
    }
    Ok(())
}

/// A secret's file on a tmpfs of its own, mounted at `s<i>` in the work dir: outside
/// the root, so the command reaches the file only through its bind mount, and in this
/// mount namespace only (`/` is private), so the tmpfs is freed with the namespace
/// however the run ends. The empty mount point is all that touches the disk.
// COMPAT(buildkit): its secrets are files on a tmpfs too (`secretmount` in llbsolver).
fn secret_file(
    sys: &mut dyn Sys,
    dir: &Path,
    data: &[u8],
    (mode, uid, gid): (u32, u32, u32),
) -> Result<PathBuf, ExecError> {
    sys.mkdir(dir).map_err(|source| create_err(dir, source))?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    // Room for the content and the inode; the tmpfs holds nothing else.
    let size = data.len() as u64 + 4096;
    mount(
        sys,
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        flags,
        Some(&format!("mode=0755,size={size}")),
        "tmpfs for a secret",
    )?;
    let file = dir.join("secret");
    sys.create_secret(&file, data, mode, uid, gid)
        .map_err(|source| create_err(&file, source))?;
    Ok(file)
}

/// What an extra mount needs besides itself.
struct MountCx<'a> {
    root: &'a Path,
    /// A fresh host path of this mount's own in the work dir (a secret's tmpfs).
    scratch: PathBuf,
    /// [`nodev`] of the spec.
    nodev: MsFlags,
}

fn mount_extra(
    sys: &mut dyn Sys,
    cx: &MountCx<'_>,
    target: &str,
    kind: &MountKind,
    points: &mut MountPoints,
) -> Result<(), ExecError> {
    let (root, nodev) = (cx.root, cx.nodev);
    match kind {
        MountKind::Bind { source, readonly } => {
            let is_dir = sys
                .kind(source)
                .map_err(|e| resolve_err(&source.to_string_lossy(), e))?
                == Kind::Dir;
            let host = ensure_point(sys, root, target, is_dir, points)?;
            bind(sys, source, &host, *readonly, nodev)
        }
        MountKind::BindDiscardWrites { source, scratch } => {
            let host = ensure_point(sys, root, target, true, points)?;
            let (upper, work) = (scratch.join("upper"), scratch.join("work"));
            for dir in [&upper, &work] {
                if sys.kind(dir).map_err(|e| create_err(dir, e))? == Kind::Missing {
                    sys.mkdir(dir).map_err(|e| create_err(dir, e))?;
                }
            }
            let mut data = format!(
                "lowerdir={},upperdir={},workdir={}",
                source.display(),
                upper.display(),
                work.display()
            );
            if sys.in_user_namespace() {
                data.push_str(USERXATTR);
            }
            sys.mount(
                Some(Path::new("overlay")),
                &host,
                Some("overlay"),
                nodev,
                Some(&data),
            )
            .map_err(|e| ExecError::MountOverlay {
                target: host.clone(),
                source_dir: source.clone(),
                source: e,
            })
        }
        MountKind::Secret {
            data,
            mode,
            uid,
            gid,
        } => {
            let file = secret_file(sys, &cx.scratch, data, (*mode, *uid, *gid))?;
            let host = ensure_point(sys, root, target, false, points)?;
            // Always nodev: a secret never needs a device, insecure or not.
            bind(sys, &file, &host, true, MsFlags::MS_NODEV)
        }
        MountKind::Tmpfs { size } => {
            let host = ensure_point(sys, root, target, true, points)?;
            let data = size.map(|s| format!("size={s}"));
            mount(
                sys,
                Some("tmpfs"),
                &host,
                Some("tmpfs"),
                // Always nodev: a tmpfs mount never held devices, insecure or not.
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                data.as_deref(),
                "tmpfs",
            )
        }
    }
}

/// A recursive bind mount, then a remount that adds `extra` (`MS_NODEV`) and read-only
/// when asked: a bind keeps the flags of the mount it comes from until remounted.
fn bind(
    sys: &mut dyn Sys,
    source: &Path,
    target: &Path,
    readonly: bool,
    extra: MsFlags,
) -> Result<(), ExecError> {
    let what = format!("bind {}", source.display());
    let src = source.to_str();
    mount(
        sys,
        src,
        target,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
        &what,
    )?;
    if readonly || !extra.is_empty() {
        let ro = if readonly {
            MsFlags::MS_RDONLY
        } else {
            MsFlags::empty()
        };
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | ro | extra;
        mount(
            sys,
            None,
            target,
            None,
            flags,
            None,
            &format!("remount of {what}"),
        )?;
    }
    Ok(())
}

fn pivot(sys: &mut dyn Sys, root: &Path) -> Result<(), ExecError> {
    let err = |source| ExecError::PivotRoot {
        new_root: root.to_path_buf(),
        source,
    };
    sys.chdir(root).map_err(err)?;
    // pivot_root(".", ".") stacks the old root on the new one; detaching it leaves only
    // the new root, with no put_old directory to clean out of the layer.
    sys.pivot_here().map_err(err)?;
    sys.umount(Path::new("."), MntFlags::MNT_DETACH)
        .map_err(err)?;
    sys.chdir(Path::new("/")).map_err(err)
}

#[allow(clippy::too_many_arguments)]
fn mount(
    sys: &mut dyn Sys,
    source: Option<&str>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
    what: &str,
) -> Result<(), ExecError> {
    sys.mount(source.map(Path::new), target, fstype, flags, data)
        .map_err(|source| ExecError::Mount {
            what: what.to_string(),
            target: target.to_path_buf(),
            source,
        })
}

fn join_cwd(cwd: &str, target: &str) -> String {
    if target.starts_with('/') {
        target.to_string()
    } else {
        format!("{}/{target}", cwd.trim_end_matches('/'))
    }
}

#[cfg(test)]
#[path = "rootfs_tests.rs"]
mod tests;
