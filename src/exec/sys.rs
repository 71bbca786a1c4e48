//! The seam between the sandbox's logic and the kernel: every mount, pivot, mknod and
//! file probe the rootfs setup makes goes through [`Sys`], so the spec → syscall plan is
//! unit-tested without root against a recording fake. [`RealSys`] is the one
//! implementation that touches the system; it holds the only `unsafe` of the setup.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::stat::{Mode, SFlag};

/// What a path is, as far as mount-point creation cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Nothing there.
    Missing,
    /// A directory.
    Dir,
    /// A symbolic link (not followed).
    Symlink,
    /// Anything else (file, device, socket).
    Other,
}

/// The syscalls the rootfs setup makes. Paths are host paths (before the pivot).
pub trait Sys {
    /// `unshare(2)`.
    fn unshare(&mut self, flags: CloneFlags) -> Result<(), Errno>;
    /// `lstat`: what is at `path`, without following a final symlink.
    fn kind(&mut self, path: &Path) -> Result<Kind, Errno>;
    /// `readlink`.
    fn read_link(&mut self, path: &Path) -> Result<PathBuf, Errno>;
    /// `mkdir` with mode 0755.
    fn mkdir(&mut self, path: &Path) -> Result<(), Errno>;
    /// Creates an empty regular file (mode 0644), a bind target.
    fn create_file(&mut self, path: &Path) -> Result<(), Errno>;
    /// Creates `path` (`O_CREAT|O_EXCL`, so never an existing file or a symlink's
    /// target) with `mode`, gives it `uid:gid` and `mode` (the umask does not apply),
    /// and only then writes `data`.
    fn create_secret(
        &mut self,
        path: &Path,
        data: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<(), Errno>;
    /// `mknod` of a device: `kind` is `S_IFCHR` or `S_IFBLK`.
    fn mknod(
        &mut self,
        path: &Path,
        kind: SFlag,
        major: u64,
        minor: u64,
        mode: u32,
    ) -> Result<(), Errno>;
    /// `symlink(target, path)`.
    fn symlink(&mut self, target: &str, path: &Path) -> Result<(), Errno>;
    /// `mount(2)`.
    fn mount(
        &mut self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<(), Errno>;
    /// `umount2(2)`.
    fn umount(&mut self, target: &Path, flags: MntFlags) -> Result<(), Errno>;
    /// `chdir(2)`.
    fn chdir(&mut self, path: &Path) -> Result<(), Errno>;
    /// `pivot_root(".", ".")` from the current directory.
    fn pivot_here(&mut self) -> Result<(), Errno>;
    /// `sethostname(2)`.
    fn sethostname(&mut self, name: &str) -> Result<(), Errno>;
    /// Brings the loopback interface up (new network namespaces start with it down).
    fn loopback_up(&mut self) -> Result<(), Errno>;
    /// Whether the process is in a user namespace other than the host's (rootless):
    /// then overlayfs needs `userxattr`, and sysfs may only be bound, not mounted.
    fn in_user_namespace(&mut self) -> bool;
}

/// The real kernel.
pub struct RealSys;

impl Sys for RealSys {
    fn unshare(&mut self, flags: CloneFlags) -> Result<(), Errno> {
        nix::sched::unshare(flags)
    }

    fn kind(&mut self, path: &Path) -> Result<Kind, Errno> {
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => Ok(Kind::Symlink),
            Ok(m) if m.is_dir() => Ok(Kind::Dir),
            Ok(_) => Ok(Kind::Other),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Kind::Missing),
            Err(e) => Err(super::ExecError::errno_of(&e)),
        }
    }

    fn read_link(&mut self, path: &Path) -> Result<PathBuf, Errno> {
        nix::fcntl::readlink(path).map(PathBuf::from)
    }

    fn mkdir(&mut self, path: &Path) -> Result<(), Errno> {
        nix::unistd::mkdir(path, Mode::from_bits_truncate(0o755))
    }

    fn create_file(&mut self, path: &Path) -> Result<(), Errno> {
        let flags = nix::fcntl::OFlag::O_CREAT
            | nix::fcntl::OFlag::O_EXCL
            | nix::fcntl::OFlag::O_WRONLY
            | nix::fcntl::OFlag::O_CLOEXEC;
        let fd = nix::fcntl::open(path, flags, Mode::from_bits_truncate(0o644))?;
        nix::unistd::close(fd)
    }

    fn create_secret(
        &mut self,
        path: &Path,
        data: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<(), Errno> {
        use nix::fcntl::OFlag;
        let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC;
        let perm = Mode::from_bits_truncate(mode);
        let fd = nix::fcntl::open(path, flags, perm)?;
        // SAFETY: `open` just returned this fd and nothing else owns it.
        let file = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        nix::unistd::fchown(
            file.as_raw_fd(),
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
        )?;
        nix::sys::stat::fchmod(file.as_raw_fd(), perm)?;
        std::io::Write::write_all(&mut &file, data).map_err(|e| super::ExecError::errno_of(&e))
    }

    fn mknod(
        &mut self,
        path: &Path,
        kind: SFlag,
        major: u64,
        minor: u64,
        mode: u32,
    ) -> Result<(), Errno> {
        let dev = nix::sys::stat::makedev(major, minor);
        nix::sys::stat::mknod(path, kind, Mode::from_bits_truncate(mode), dev)?;
        // mknod honours the umask; the device modes are fixed (0666 for null and friends).
        nix::sys::stat::fchmodat(
            None,
            path,
            Mode::from_bits_truncate(mode),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )
    }

    fn symlink(&mut self, target: &str, path: &Path) -> Result<(), Errno> {
        nix::unistd::symlinkat(target, None, path)
    }

    fn mount(
        &mut self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<(), Errno> {
        nix::mount::mount(source, target, fstype, flags, data)
    }

    fn umount(&mut self, target: &Path, flags: MntFlags) -> Result<(), Errno> {
        nix::mount::umount2(target, flags)
    }

    fn chdir(&mut self, path: &Path) -> Result<(), Errno> {
        nix::unistd::chdir(path)
    }

    fn pivot_here(&mut self) -> Result<(), Errno> {
        nix::unistd::pivot_root(".", ".")
    }

    fn sethostname(&mut self, name: &str) -> Result<(), Errno> {
        nix::unistd::sethostname(name)
    }

    fn in_user_namespace(&mut self) -> bool {
        super::userns::in_user_namespace()
    }

    fn loopback_up(&mut self) -> Result<(), Errno> {
        // SAFETY: socket(2) takes no pointers; the fd it returns is owned just below.
        let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        let raw = Errno::result(raw)?;
        // SAFETY: `raw` is a fresh fd nothing else owns.
        let sock = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
        // SAFETY: ifreq is plain old data; all-zero is a valid value.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        // SAFETY: SIOCGIFFLAGS reads the name and writes the flags of `req`, which lives
        // for the call; the socket fd is open.
        let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) };
        Errno::result(rc)?;
        // SAFETY: the kernel just filled the flags member of the union.
        unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
        // SAFETY: as above; SIOCSIFFLAGS only reads `req`.
        let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) };
        Errno::result(rc).map(drop)
    }
}
