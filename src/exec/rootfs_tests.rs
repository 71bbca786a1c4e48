//! The rootfs plan against a recording fake [`Sys`]: no root needed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::stat::SFlag;

use super::*;
use crate::exec::{Mount, MountKind, Network, RunSpec};

/// A filesystem of kinds and links; records every call as a line.
#[derive(Default)]
struct Fake {
    fs: HashMap<PathBuf, Kind>,
    links: HashMap<PathBuf, PathBuf>,
    calls: Vec<String>,
    fail_mount_on: Option<PathBuf>,
    userns: bool,
}

impl Fake {
    fn with(paths: &[(&str, Kind)]) -> Fake {
        let mut f = Fake::default();
        for (p, k) in paths {
            f.fs.insert(PathBuf::from(p), *k);
        }
        f
    }
}

impl Sys for Fake {
    fn unshare(&mut self, flags: CloneFlags) -> Result<(), Errno> {
        self.calls.push(format!("unshare {flags:?}"));
        Ok(())
    }
    fn kind(&mut self, path: &Path) -> Result<Kind, Errno> {
        Ok(*self.fs.get(path).unwrap_or(&Kind::Missing))
    }
    fn read_link(&mut self, path: &Path) -> Result<PathBuf, Errno> {
        self.links.get(path).cloned().ok_or(Errno::EINVAL)
    }
    fn mkdir(&mut self, path: &Path) -> Result<(), Errno> {
        self.fs.insert(path.to_path_buf(), Kind::Dir);
        self.calls.push(format!("mkdir {}", path.display()));
        Ok(())
    }
    fn create_file(&mut self, path: &Path) -> Result<(), Errno> {
        self.fs.insert(path.to_path_buf(), Kind::Other);
        self.calls.push(format!("touch {}", path.display()));
        Ok(())
    }
    fn create_secret(
        &mut self,
        path: &Path,
        data: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<(), Errno> {
        self.fs.insert(path.to_path_buf(), Kind::Other);
        self.calls.push(format!(
            "secret {} {} bytes {mode:o} {uid}:{gid}",
            path.display(),
            data.len()
        ));
        Ok(())
    }
    fn mknod(
        &mut self,
        path: &Path,
        kind: SFlag,
        major: u64,
        minor: u64,
        _mode: u32,
    ) -> Result<(), Errno> {
        let k = if kind == SFlag::S_IFBLK { " b" } else { "" };
        self.calls
            .push(format!("mknod {} {major}:{minor}{k}", path.display()));
        Ok(())
    }
    fn symlink(&mut self, target: &str, path: &Path) -> Result<(), Errno> {
        self.calls
            .push(format!("symlink {} -> {target}", path.display()));
        Ok(())
    }
    fn mount(
        &mut self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<(), Errno> {
        if self.fail_mount_on.as_deref() == Some(target) {
            return Err(Errno::EPERM);
        }
        let src = source.map_or("-".into(), |s| s.display().to_string());
        let flags = format!("{flags:?}");
        let flags = flags.trim_start_matches("MsFlags(").trim_end_matches(')');
        self.calls.push(format!(
            "mount {src} {} {} {flags} {}",
            target.display(),
            fstype.unwrap_or("-"),
            data.unwrap_or("-")
        ));
        Ok(())
    }
    fn umount(&mut self, target: &Path, _flags: MntFlags) -> Result<(), Errno> {
        self.calls.push(format!("umount {}", target.display()));
        Ok(())
    }
    fn chdir(&mut self, path: &Path) -> Result<(), Errno> {
        self.calls.push(format!("chdir {}", path.display()));
        Ok(())
    }
    fn pivot_here(&mut self) -> Result<(), Errno> {
        self.calls.push("pivot . .".into());
        Ok(())
    }
    fn sethostname(&mut self, name: &str) -> Result<(), Errno> {
        self.calls.push(format!("hostname {name}"));
        Ok(())
    }
    fn loopback_up(&mut self) -> Result<(), Errno> {
        self.calls.push("lo up".into());
        Ok(())
    }
    fn in_user_namespace(&mut self) -> bool {
        self.userns
    }
}

fn spec() -> RunSpec {
    RunSpec {
        lower_dirs: vec!["/s/snap/b".into(), "/s/snap/a".into()],
        upper_dir: "/t/up".into(),
        work_dir: "/t/work".into(),
        argv: vec!["sh".into()],
        env: vec![],
        cwd: "/".into(),
        user: String::new(),
        hostname: "box".into(),
        network: Network::Host,
        mounts: vec![],
        stdin: None,
        privileged: false,
        hosts_file: None,
        resolv_conf: None,
        ulimits: vec![],
        shm_size: None,
        capabilities: None,
        read_only_root: false,
        foreground: None,
        ports: Vec::new(),
    }
}

/// The image has /proc, /dev, /sys and /etc/hosts; the host has both files.
fn image() -> Fake {
    Fake::with(&[
        ("/t/work/root/proc", Kind::Dir),
        ("/t/work/root/dev", Kind::Dir),
        ("/t/work/root/sys", Kind::Dir),
        ("/t/work/root/etc", Kind::Dir),
        ("/t/work/root/etc/hosts", Kind::Other),
        ("/etc/resolv.conf", Kind::Other),
        ("/etc/hosts", Kind::Other),
        ("/dev/null", Kind::Other),
        ("/dev/zero", Kind::Other),
        ("/dev/full", Kind::Other),
        ("/dev/random", Kind::Other),
        ("/dev/urandom", Kind::Other),
        ("/dev/tty", Kind::Other),
    ])
}

fn position(calls: &[String], prefix: &str) -> usize {
    calls
        .iter()
        .position(|c| c.starts_with(prefix))
        .unwrap_or_else(|| panic!("no call {prefix:?} in {calls:#?}"))
}

#[test]
fn overlay_is_mounted_from_the_lower_dirs_parent_with_relative_names() {
    let mut fake = image();
    setup(&mut fake, &spec()).unwrap();
    let c = &fake.calls;
    assert_eq!(
        c[0],
        format!(
            "unshare {:?}",
            CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC
        )
    );
    assert!(
        c[1].starts_with("mount - / - MS_REC | MS_PRIVATE"),
        "{}",
        c[1]
    );
    let chdir = position(c, "chdir /s/snap");
    let overlay = position(c, "mount overlay /t/work/root overlay");
    assert_eq!(chdir + 1, overlay);
    assert!(
        c[overlay].ends_with("lowerdir=b:a,upperdir=/t/up,workdir=/t/work/w"),
        "{}",
        c[overlay]
    );
}

#[test]
fn system_mounts_then_pivot_then_detach() {
    let mut fake = image();
    let points = setup(&mut fake, &spec()).unwrap();
    let c = &fake.calls;
    let proc = position(c, "mount proc /t/work/root/proc proc");
    let dev = position(c, "mount tmpfs /t/work/root/dev tmpfs");
    let null = position(c, "mount /dev/null /t/work/root/dev/null - MS_BIND");
    let sys = position(c, "mount sysfs /t/work/root/sys sysfs");
    let resolv = position(
        c,
        "mount /etc/resolv.conf /t/work/root/etc/resolv.conf - MS_BIND | MS_REC",
    );
    let pivot = position(c, "pivot . .");
    assert!(proc < dev && dev < null && null < sys && sys < resolv && resolv < pivot);
    assert!(c[sys].contains("MS_RDONLY"));
    assert_eq!(c[pivot - 1], "chdir /t/work/root");
    assert_eq!(c[pivot + 1], "umount .");
    assert_eq!(c[pivot + 2], "chdir /");
    assert!(c.iter().any(|l| l == "hostname box"));
    assert!(!c.iter().any(|l| l == "lo up"));
    // resolv.conf was missing in the image: created, recorded; /etc/hosts existed.
    assert_eq!(points.created, vec![PathBuf::from("etc/resolv.conf")]);
    assert_eq!(points.parents, vec![PathBuf::from("etc")]);
}

#[test]
fn sandbox_masks_and_protects_proc_paths_that_exist() {
    let mut fake = image();
    for (p, k) in [
        ("/t/work/root/proc/kcore", Kind::Other),
        ("/t/work/root/proc/acpi", Kind::Dir),
        ("/t/work/root/proc/sys", Kind::Dir),
    ] {
        fake.fs.insert(PathBuf::from(p), k);
    }
    setup(&mut fake, &spec()).unwrap();
    let c = &fake.calls;
    let sys = position(c, "mount sysfs /t/work/root/sys sysfs");
    let kcore = position(
        c,
        "mount /t/work/root/dev/null /t/work/root/proc/kcore - MS_BIND",
    );
    let acpi = position(c, "mount tmpfs /t/work/root/proc/acpi tmpfs MS_RDONLY");
    let sys_bind = position(
        c,
        "mount /t/work/root/proc/sys /t/work/root/proc/sys - MS_BIND",
    );
    let sys_ro = position(c, "mount - /t/work/root/proc/sys - MS_RDONLY");
    assert!(sys < kcore && sys < acpi && sys_bind + 1 == sys_ro);
    assert!(c[sys_ro].contains("MS_REMOUNT") && c[sys_ro].contains("MS_BIND"));
    // Missing on this "kernel": skipped, not created.
    assert!(!c.iter().any(|l| l.contains("proc/keys")));
    assert!(!c.iter().any(|l| l.contains("proc/irq")));
}

/// Every mount a sandboxed command can write to is nodev, so a node it makes does not
/// open; its few devices are the host's, bound in. Privileged keeps mknod'd nodes.
#[test]
fn sandbox_mounts_are_nodev_and_devices_are_host_binds() {
    let mut fake = image();
    fake.fs.insert("/host/data".into(), Kind::Dir);
    let mut s = spec();
    s.mounts = vec![
        Mount {
            target: "/rw".into(),
            kind: MountKind::Bind {
                source: "/host/data".into(),
                readonly: false,
            },
        },
        Mount {
            target: "/discard".into(),
            kind: MountKind::BindDiscardWrites {
                source: "/host/data".into(),
                scratch: "/t/scr".into(),
            },
        },
    ];
    setup(&mut fake, &s).unwrap();
    let c = &fake.calls;
    let nodev = |prefix: &str| c[position(c, prefix)].contains("MS_NODEV");
    assert!(nodev("mount overlay /t/work/root overlay"), "{c:#?}");
    assert!(nodev("mount tmpfs /t/work/root/dev tmpfs"), "{c:#?}");
    assert!(nodev(
        "mount - /t/work/root/rw - MS_NODEV | MS_REMOUNT | MS_BIND"
    ));
    assert!(
        nodev("mount overlay /t/work/root/discard overlay"),
        "{c:#?}"
    );
    assert!(!c.iter().any(|l| l.starts_with("mknod")), "{c:#?}");
    for dev in ["null", "zero", "full", "random", "urandom", "tty"] {
        let touch = position(c, &format!("touch /t/work/root/dev/{dev}"));
        let bind = position(
            c,
            &format!("mount /dev/{dev} /t/work/root/dev/{dev} - MS_BIND"),
        );
        assert_eq!(touch + 1, bind);
    }
    // A host without /dev/tty: left out, never made with mknod.
    let mut fake = image();
    fake.fs.remove(Path::new("/dev/tty"));
    setup(&mut fake, &spec()).unwrap();
    assert!(!fake.calls.iter().any(|l| l.contains("dev/tty")));

    let mut fake = image();
    s.privileged = true;
    setup(&mut fake, &s).unwrap();
    let c = &fake.calls;
    assert!(!c[position(c, "mount overlay /t/work/root overlay")].contains("MS_NODEV"));
    assert!(!c[position(c, "mount tmpfs /t/work/root/dev tmpfs")].contains("MS_NODEV"));
    position(c, "mknod /t/work/root/dev/null 1:3");
    assert!(
        !c.iter().any(|l| l.starts_with("mount - /t/work/root/rw")),
        "{c:#?}"
    );
}

#[test]
fn privileged_gets_writable_sys_and_the_extra_devices() {
    let mut fake = image();
    setup(&mut fake, &spec()).unwrap();
    assert!(!fake.calls.iter().any(|l| l.contains("/dev/fuse")));
    let mut fake = image();
    fake.fs
        .insert(PathBuf::from("/t/work/root/proc/kcore"), Kind::Other);
    let mut s = spec();
    s.privileged = true;
    setup(&mut fake, &s).unwrap();
    let c = &fake.calls;
    let sys = position(c, "mount sysfs /t/work/root/sys sysfs");
    assert!(!c[sys].contains("MS_RDONLY"), "{}", c[sys]);
    let net = position(c, "mkdir /t/work/root/dev/net");
    let tun = position(c, "mknod /t/work/root/dev/net/tun 10:200");
    assert!(net < tun && tun < sys);
    position(c, "mknod /t/work/root/dev/fuse 10:229");
    position(c, "mknod /t/work/root/dev/loop7 7:7 b");
    assert!(!c.iter().any(|l| l.contains("proc/kcore")));
}

#[test]
fn network_none_unshares_net_and_raises_loopback() {
    let mut fake = image();
    let mut s = spec();
    s.network = Network::None;
    setup(&mut fake, &s).unwrap();
    assert!(fake.calls[0].contains("CLONE_NEWNET"));
    assert!(fake.calls.iter().any(|l| l == "lo up"));
}

#[test]
fn spec_files_are_bound_read_only_instead_of_the_hosts() {
    let mut fake = image();
    fake.fs.insert("/t/gen/resolv.conf".into(), Kind::Other);
    fake.fs.insert("/t/gen/hosts".into(), Kind::Other);
    let mut s = spec();
    s.resolv_conf = Some("/t/gen/resolv.conf".into());
    s.hosts_file = Some("/t/gen/hosts".into());
    setup(&mut fake, &s).unwrap();
    for (source, target) in [("resolv.conf", "resolv.conf"), ("hosts", "hosts")] {
        let bind = format!("mount /t/gen/{source} /t/work/root/etc/{target} - MS_BIND");
        let at = position(&fake.calls, &bind);
        let remount = &fake.calls[at + 1];
        assert!(
            remount.contains(&format!("/t/work/root/etc/{target}"))
                && ["MS_RDONLY", "MS_NOSUID", "MS_NOEXEC", "MS_NODEV"]
                    .iter()
                    .all(|f| remount.contains(f)),
            "{remount}"
        );
    }
    assert!(!fake.calls.iter().any(|l| l.starts_with("mount /etc/")));
}

#[test]
fn missing_system_dirs_and_scratch_image_get_recorded_points() {
    let mut fake = Fake::with(&[("/etc/hosts", Kind::Other)]);
    let mut s = spec();
    s.lower_dirs.clear();
    let points = setup(&mut fake, &s).unwrap();
    let want: Vec<PathBuf> = ["proc", "dev", "sys", "etc", "etc/hosts"]
        .iter()
        .map(PathBuf::from)
        .collect();
    assert_eq!(points.created, want);
    assert!(points.parents.is_empty());
    assert!(fake
        .calls
        .iter()
        .any(|l| l.ends_with("lowerdir=empty,upperdir=/t/up,workdir=/t/work/w")));
}

#[test]
fn extra_mounts_in_order_with_readonly_remount() {
    let mut fake = image();
    fake.fs.insert("/host/data".into(), Kind::Dir);
    let mut s = spec();
    s.cwd = "/app".into();
    s.mounts = vec![
        Mount {
            target: "/data".into(),
            kind: MountKind::Bind {
                source: "/host/data".into(),
                readonly: true,
            },
        },
        Mount {
            target: "cache".into(),
            kind: MountKind::BindDiscardWrites {
                source: "/host/data".into(),
                scratch: "/t/scr".into(),
            },
        },
        Mount {
            target: "/tmp".into(),
            kind: MountKind::Tmpfs {
                size: Some(1 << 20),
            },
        },
    ];
    let points = setup(&mut fake, &s).unwrap();
    let c = &fake.calls;
    let bind = position(c, "mount /host/data /t/work/root/data - MS_BIND | MS_REC");
    assert!(
        c[bind + 1]
            .starts_with("mount - /t/work/root/data - MS_RDONLY | MS_NODEV | MS_REMOUNT | MS_BIND"),
        "{}",
        c[bind + 1]
    );
    let discard = position(c, "mount overlay /t/work/root/app/cache overlay");
    assert!(c[discard].ends_with("lowerdir=/host/data,upperdir=/t/scr/upper,workdir=/t/scr/work"));
    let tmpfs = position(c, "mount tmpfs /t/work/root/tmp tmpfs");
    assert!(c[tmpfs].ends_with("size=1048576"));
    assert!(bind < discard && discard < tmpfs);
    for p in ["data", "app", "app/cache", "tmp"] {
        assert!(
            points.created.contains(&PathBuf::from(p)),
            "{p} not recorded: {:?}",
            points.created
        );
    }
}

#[test]
fn symlinked_mount_points_resolve_inside_the_root() {
    let mut fake = image();
    fake.fs
        .insert("/t/work/root/etc/resolv.conf".into(), Kind::Symlink);
    fake.links.insert(
        "/t/work/root/etc/resolv.conf".into(),
        "/run/resolv.conf".into(),
    );
    fake.fs.insert("/t/work/root/run".into(), Kind::Dir);
    let points = setup(&mut fake, &spec()).unwrap();
    assert!(fake
        .calls
        .iter()
        .any(|l| l.starts_with("mount /etc/resolv.conf /t/work/root/run/resolv.conf")));
    assert_eq!(points.created, vec![PathBuf::from("run/resolv.conf")]);
    let (existing, missing) =
        resolve_in_root(&mut fake, Path::new("/t/work/root"), "/etc/../../../x/y").unwrap();
    assert_eq!(
        (existing, missing),
        (PathBuf::new(), vec!["x".into(), "y".into()])
    );
}

#[test]
fn a_failed_mount_names_its_step_and_keeps_the_cause() {
    let mut fake = image();
    fake.fail_mount_on = Some("/t/work/root/sys".into());
    let err = setup(&mut fake, &spec()).unwrap_err();
    match err {
        ExecError::Mount {
            what,
            target,
            source,
        } => {
            assert_eq!(
                (what.as_str(), target, source),
                ("sysfs", PathBuf::from("/t/work/root/sys"), Errno::EPERM)
            );
        }
        other => panic!("wrong error {other:?}"),
    }
    assert!(!fake.calls.iter().any(|l| l.starts_with("pivot")));
}

#[test]
fn a_secret_is_a_file_on_a_tmpfs_outside_the_root_bound_read_only() {
    let mut fake = image();
    let mut s = spec();
    s.mounts = vec![Mount {
        target: "/run/secrets/tok".into(),
        kind: MountKind::Secret {
            data: b"abc".to_vec(),
            mode: 0o400,
            uid: 1000,
            gid: 50,
        },
    }];
    let points = setup(&mut fake, &s).unwrap();
    let c = &fake.calls;
    let tmpfs = position(c, "mount tmpfs /t/work/s0 tmpfs");
    let file = position(c, "secret /t/work/s0/secret 3 bytes 400 1000:50");
    let bind = position(
        c,
        "mount /t/work/s0/secret /t/work/root/run/secrets/tok - MS_BIND | MS_REC",
    );
    assert!(tmpfs < file && file < bind);
    assert!(c[bind + 1].contains("MS_RDONLY | MS_NODEV | MS_REMOUNT"));
    assert!(points.created.contains(&PathBuf::from("run/secrets/tok")));
}

#[test]
fn rootless_overlays_use_userxattr_and_sysfs_falls_back_to_a_read_only_bind() {
    let mut fake = image();
    fake.userns = true;
    fake.fail_mount_on = Some("/t/work/root/sys".into());
    let mut s = spec();
    s.mounts.push(Mount {
        target: "/src".into(),
        kind: MountKind::BindDiscardWrites {
            source: "/ctx".into(),
            scratch: "/t/scratch".into(),
        },
    });
    // The fake refuses the sysfs mount at the target, and would refuse the bind there
    // too: record the bind attempt by letting it fail and looking at the calls.
    let err = setup(&mut fake, &s).unwrap_err();
    assert!(
        matches!(&err, ExecError::Mount { what, .. } if what == "bind /sys"),
        "the fallback binds the host's /sys: {err:?}"
    );
    let c = &fake.calls;
    let overlay = position(c, "mount overlay /t/work/root overlay");
    assert!(c[overlay].ends_with(",userxattr"), "{}", c[overlay]);

    // Without the refusal the discard-writes overlay gets the option too.
    let mut fake = image();
    fake.userns = true;
    fake.fs.insert("/ctx".into(), Kind::Dir);
    setup(&mut fake, &s).unwrap();
    let c = &fake.calls;
    let discard = position(c, "mount overlay /t/work/root/src overlay");
    assert!(
        c[discard].ends_with("workdir=/t/scratch/work,userxattr"),
        "{}",
        c[discard]
    );
    // Root on the host: no option, sysfs as before.
    let mut fake = image();
    fake.fs.insert("/ctx".into(), Kind::Dir);
    setup(&mut fake, &s).unwrap();
    assert!(!fake.calls.iter().any(|l| l.contains("userxattr")));
}

#[test]
fn a_refused_rootless_overlay_says_so() {
    let mut fake = image();
    fake.userns = true;
    fake.fail_mount_on = Some("/t/work/root".into());
    let err = setup(&mut fake, &spec()).unwrap_err();
    assert!(
        matches!(
            err,
            ExecError::RootlessOverlay {
                source: Errno::EPERM,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("overlayfs refused to mount"),
        "{err}"
    );
    assert!(!fake.calls.iter().any(|l| l.starts_with("pivot")));
}

#[test]
fn rootless_insecure_mode_is_refused_by_name() {
    let mut fake = image();
    fake.userns = true;
    let mut s = spec();
    s.privileged = true;
    let err = setup(&mut fake, &s).unwrap_err();
    assert!(matches!(err, ExecError::RootlessInsecure), "{err:?}");
}
