//! The staging half of COPY/ADD: writing selected nodes into a plain
//! directory that becomes the layer, with the destination resolved through
//! the target's symlinks, parents staged with the target's own attributes,
//! ownership (`--chown`, or root for the context, or the source's owner for
//! another stage) and modes (`--chmod`) applied, and directory mtimes set
//! last, deepest first, so writing children cannot disturb them.

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use filetime::FileTime;

use crate::dockerfile::ignore::IgnorePatterns;
use crate::oci::Digest;
use crate::plan::{Chmod, CopyOp};

use super::{join, werr, CopyError};
use crate::builder::add::{self, AddError};
use crate::builder::perms::apply_chmod;
use crate::builder::source::{clean, Selected, Source};
use crate::layer::{MergedFs, MergedFsError, Node};

/// How many dangling symlinks one destination may go through (Linux's
/// `MAXSYMLINKS`).
const MAX_DANGLING_HOPS: usize = 40;

pub(super) struct Stager<'a> {
    pub(super) src: &'a Source,
    pub(super) staging: &'a Path,
    pub(super) view: &'a MergedFs,
    pub(super) owner: Option<(u32, u32)>,
    pub(super) chmod: Option<&'a Chmod>,
    /// Mode of the directories the copy creates (parents of the
    /// destination, and a directory source's own top).
    pub(super) dir_mode: u32,
    pub(super) keep_owner: bool,
    pub(super) excludes: Option<&'a IgnorePatterns>,
    /// Directory mtimes to set last (writing children changes them).
    pub(super) dir_times: Vec<(PathBuf, FileTime)>,
    /// Staged path of each multiply-linked source inode copied so far.
    pub(super) links: std::collections::HashMap<(u64, u64), PathBuf>,
}

impl Stager<'_> {
    fn host(&self, canonical: &str) -> PathBuf {
        self.staging.join(canonical.trim_start_matches('/'))
    }

    pub(super) fn copy_source(
        &mut self,
        op: &CopyOp,
        source: &str,
        sel: &Selected,
        dest: &str,
        dest_dir: bool,
    ) -> Result<(), CopyError> {
        let node = &sel.node;
        let to = if op.parents {
            parents_dest(dest, source, &node.path)
        } else if node.meta.is_dir() {
            dest.to_string()
        } else if dest_dir {
            join(dest, sel.name())
        } else {
            dest.to_string()
        };
        if self.excluded(&node.path, "") {
            return Ok(());
        }
        let unpack = op.add.as_ref().is_some_and(|a| a.unpack != Some(false));
        if unpack && node.meta.is_file() {
            let kind = add::archive_kind(&node.host).map_err(|e| CopyError::Add {
                source_path: source.into(),
                source: AddError::Extract {
                    path: node.host.clone(),
                    source: e,
                },
            })?;
            if let Some(kind) = kind {
                // COMPAT(buildkit): its `unpack` makes the destination 0755
                // whatever `--chmod` says.
                let canon = self.resolve_dest(dest)?;
                let dir_mode = std::mem::replace(&mut self.dir_mode, 0o755);
                let dir = self.ensure_canon_dir(&canon);
                self.dir_mode = dir_mode;
                let dir = dir?;
                let beneath = add::ImageBeneath {
                    view: self.view,
                    dest: canon,
                };
                return add::extract(&node.host, kind, &dir, Some(&beneath))
                    .and_then(|()| self.chown_tree(&dir))
                    .map_err(|e| CopyError::Add {
                        source_path: source.into(),
                        source: e,
                    });
            }
        }
        if node.meta.is_dir() {
            let canon = self.resolve_dest(&to)?;
            self.check_dir_onto(&canon)?;
            let dir = self.ensure_canon_dir(&canon)?;
            self.copy_children(node, &dir, &node.path)
        } else {
            let host = self.prepare(&to)?;
            self.copy_node(node, &host)
        }
    }

    fn excluded(&self, path: &str, rel_to_source: &str) -> bool {
        let Some(ex) = self.excludes else {
            return false;
        };
        let rel = path.trim_start_matches('/');
        (!rel.is_empty() && ex.is_excluded(rel))
            || (!rel_to_source.is_empty() && ex.is_excluded(rel_to_source))
    }

    /// The canonical image path of `path`, symlinks of the target followed
    /// (a dangling one to where it points, which the copy then creates).
    fn resolve_dest(&self, path: &str) -> Result<String, CopyError> {
        let mut path = path.to_string();
        for _ in 0..=MAX_DANGLING_HOPS {
            match self.resolve_dest_step(&path)? {
                Ok(canon) => return Ok(canon),
                Err(respliced) => path = respliced,
            }
        }
        Err(MergedFsError::SymlinkLoop { path }.into())
    }

    /// One pass of [`Self::resolve_dest`]: the canonical path, or (`Err`) the
    /// path again with its first dangling symlink replaced by its target.
    fn resolve_dest_step(&self, path: &str) -> Result<Result<String, String>, CopyError> {
        let mut cur = String::from("/");
        let comps = clean(path);
        for (i, c) in comps.iter().enumerate() {
            let next = join(&cur, c);
            match self.view.resolve(&next, true)? {
                Some(n) if !n.meta.is_dir() && i + 1 < comps.len() => {
                    return Err(CopyError::NotADirectory { path: n.path });
                }
                Some(n) => cur = n.path,
                None => {
                    // COMPAT(buildkit): fsutil's RootPath follows a dangling
                    // symlink to where it points: `COPY a /l` over `l -> gone`
                    // writes /gone and keeps the link (likewise WORKDIR).
                    let link = self.view.resolve(&next, false)?;
                    if let Some(link) = link.filter(|n| n.meta.file_type().is_symlink()) {
                        let target =
                            fs::read_link(&link.host).map_err(werr("reading link", &link.host))?;
                        let target = target.to_string_lossy();
                        let base = if target.starts_with('/') {
                            target.into_owned()
                        } else {
                            join(&cur, &target)
                        };
                        return Ok(Err(join(&base, &comps[i + 1..].join("/"))));
                    }
                    let rest = comps[i..].join("/");
                    return Ok(Ok(join(&cur, &rest)));
                }
            }
        }
        Ok(Ok(cur))
    }

    /// The canonical image path a staged host path stands for.
    fn image_path(&self, host: &Path) -> String {
        let rel = host.strip_prefix(self.staging).unwrap_or(host);
        format!("/{}", rel.to_string_lossy())
    }

    /// Refuses to copy a directory onto canonical `path` when the target has a
    /// non-directory there.
    // COMPAT(buildkit): fsutil's copier `lstat`s each directory it copies
    // into and fails with "cannot copy to non-directory" on anything else, a
    // symlink to a directory included (`COPY t/ /` with `t/lib/` over
    // merged-usr `/lib -> usr/lib`); only the named destination is resolved.
    fn check_dir_onto(&self, path: &str) -> Result<(), CopyError> {
        let Some(n) = self.view.resolve(path, false)? else {
            return Ok(());
        };
        let ft = n.meta.file_type();
        let kind = if n.path != path || ft.is_dir() {
            return Ok(());
        } else if ft.is_symlink() {
            "symlink"
        } else if ft.is_file() {
            "file"
        } else {
            "special file"
        };
        Err(CopyError::DirOntoNonDir {
            path: path.to_string(),
            kind,
        })
    }

    /// Creates the staged parents of canonical `path`; returns its host path.
    fn prepare(&mut self, path: &str) -> Result<PathBuf, CopyError> {
        let canon = self.resolve_dest(path)?;
        let comps = clean(&canon);
        let mut cur = String::new();
        for c in comps.iter().take(comps.len().saturating_sub(1)) {
            cur = format!("{cur}/{c}");
            self.stage_dir(&cur)?;
        }
        Ok(self.host(&canon))
    }

    /// Stages directory `path` (canonical): the target's attributes when it
    /// exists there, else `dir_mode` owned by `--chown` (or root).
    fn stage_dir(&mut self, path: &str) -> Result<PathBuf, CopyError> {
        let host = self.host(path);
        if fs::symlink_metadata(&host).is_ok_and(|m| m.is_dir()) {
            return Ok(host);
        }
        remove_any(&host)?;
        fs::create_dir(&host).map_err(werr("creating", &host))?;
        let (mode, uid, gid, mtime) = match self.view.resolve(path, false)? {
            Some(n) if n.meta.is_dir() => (
                n.meta.mode() & 0o7777,
                n.meta.uid(),
                n.meta.gid(),
                Some(FileTime::from_last_modification_time(&n.meta)),
            ),
            _ => {
                let (u, g) = self.owner.unwrap_or((0, 0));
                (self.dir_mode, u, g, None)
            }
        };
        set_owner_mode(&host, uid, gid, Some(mode))?;
        if let Some(t) = mtime {
            self.dir_times.push((host.clone(), t));
        }
        Ok(host)
    }

    pub(super) fn ensure_dir(&mut self, path: &str) -> Result<PathBuf, CopyError> {
        let canon = self.resolve_dest(path)?;
        self.ensure_canon_dir(&canon)
    }

    /// [`Self::ensure_dir`] for a path already resolved by [`Self::resolve_dest`].
    fn ensure_canon_dir(&mut self, canon: &str) -> Result<PathBuf, CopyError> {
        self.prepare(canon)?;
        if canon == "/" {
            return Ok(self.staging.to_path_buf());
        }
        self.stage_dir(canon)
    }

    fn copy_children(&mut self, dir: &Node, host: &Path, root: &str) -> Result<(), CopyError> {
        for child in self.src.children(&dir.path)? {
            let rel = child.path[root.len()..].trim_start_matches('/').to_string();
            if self.excluded(&child.path, &rel) {
                continue;
            }
            let name = child.path.rsplit('/').next().unwrap_or("");
            let to = host.join(name);
            if child.meta.is_dir() {
                self.check_dir_onto(&self.image_path(&to))?;
                remove_non_dir(&to)?;
                if !to.is_dir() {
                    fs::create_dir(&to).map_err(werr("creating", &to))?;
                }
                self.apply_attrs(&child, &to)?;
                self.copy_children(&child, &to, root)?;
                self.dir_times
                    .push((to, FileTime::from_last_modification_time(&child.meta)));
            } else {
                self.copy_node(&child, &to)?;
            }
        }
        Ok(())
    }

    fn copy_node(&mut self, node: &Node, to: &Path) -> Result<(), CopyError> {
        remove_any(to)?;
        let ft = node.meta.file_type();
        // Hard links within one copy stay hard links, as BuildKit's copier keeps them.
        let inode = (node.meta.dev(), node.meta.ino());
        if ft.is_file() && node.meta.nlink() > 1 {
            if let Some(first) = self.links.get(&inode) {
                return fs::hard_link(first, to).map_err(werr("linking", to));
            }
            self.links.insert(inode, to.to_path_buf());
        }
        if ft.is_symlink() {
            let target = fs::read_link(&node.host).map_err(werr("reading link", &node.host))?;
            symlink(&target, to).map_err(werr("creating symlink", to))?;
        } else if ft.is_file() {
            fs::copy(&node.host, to).map_err(werr("copying to", to))?;
            copy_xattrs(&node.host, to);
        } else {
            let kind = nix::sys::stat::SFlag::from_bits_truncate(node.meta.mode() & libc::S_IFMT);
            let perm = nix::sys::stat::Mode::from_bits_truncate(node.meta.mode() & 0o7777);
            nix::sys::stat::mknod(to, kind, perm, node.meta.rdev())
                .map_err(|e| werr("creating device node", to)(e.into()))?;
        }
        self.apply_attrs(node, to)?;
        let t = FileTime::from_last_modification_time(&node.meta);
        filetime::set_symlink_file_times(to, t, t).map_err(werr("setting times of", to))
    }

    fn apply_attrs(&self, node: &Node, to: &Path) -> Result<(), CopyError> {
        let (uid, gid) = match (self.owner, self.keep_owner) {
            (Some(o), _) => o,
            (None, true) => (node.meta.uid(), node.meta.gid()),
            (None, false) => (0, 0),
        };
        let mode = if node.meta.file_type().is_symlink() {
            None
        } else {
            let m = node.meta.mode() & 0o7777;
            Some(match self.chmod {
                Some(c) => apply_chmod(c, m, node.meta.is_dir()),
                None => m,
            })
        };
        set_owner_mode(to, uid, gid, mode)
    }

    pub(super) fn write_inline(
        &mut self,
        to: &str,
        content: &[u8],
        mode: u32,
    ) -> Result<(), CopyError> {
        let host = self.prepare(to)?;
        remove_any(&host)?;
        fs::write(&host, content).map_err(werr("writing", &host))?;
        let mode = self.chmod.map_or(mode, |c| apply_chmod(c, mode, false));
        let (uid, gid) = self.owner.unwrap_or((0, 0));
        set_owner_mode(&host, uid, gid, Some(mode))
    }

    pub(super) fn fetch(
        &mut self,
        url: &str,
        checksum: Option<&Digest>,
        to: &str,
    ) -> Result<(), CopyError> {
        let host = self.prepare(to)?;
        remove_any(&host)?;
        let mtime = add::fetch(url, checksum, &host).map_err(|source| CopyError::Add {
            source_path: url.into(),
            source,
        })?;
        let t = FileTime::from_unix_time(mtime, 0);
        filetime::set_file_mtime(&host, t).map_err(werr("setting times of", &host))?;
        // COMPAT(buildkit): downloaded files are 0600 unless --chmod says otherwise.
        let mode = self.chmod.map_or(0o600, |c| apply_chmod(c, 0o600, false));
        let (uid, gid) = self.owner.unwrap_or((0, 0));
        set_owner_mode(&host, uid, gid, Some(mode))
    }

    /// After extracting an archive: `--chown` applies to what it held.
    fn chown_tree(&self, dir: &Path) -> Result<(), AddError> {
        let Some((uid, gid)) = self.owner else {
            return Ok(());
        };
        for e in walkdir::WalkDir::new(dir).min_depth(1) {
            let e = e.map_err(|e| AddError::Extract {
                path: dir.into(),
                source: e.into(),
            })?;
            std::os::unix::fs::lchown(e.path(), Some(uid), Some(gid)).map_err(|source| {
                AddError::Extract {
                    path: e.path().into(),
                    source,
                }
            })?;
        }
        Ok(())
    }

    pub(super) fn finish(mut self) -> Result<(), CopyError> {
        // Deepest first, so setting a child's time cannot disturb a parent's.
        self.dir_times.sort_by(|a, b| b.0.cmp(&a.0));
        for (p, t) in &self.dir_times {
            filetime::set_file_mtime(p, *t).map_err(werr("setting times of", p))?;
        }
        Ok(())
    }
}

/// `--parents`: the source's path below the context root (or below a `/./`
/// pivot in the source) is kept under the destination.
fn parents_dest(dest: &str, source: &str, node_path: &str) -> String {
    let kept = match source.find("/./") {
        Some(i) => {
            let prefix = clean(&source[..i]).join("/");
            let rel = node_path.trim_start_matches('/');
            rel.strip_prefix(&prefix)
                .unwrap_or(rel)
                .trim_start_matches('/')
                .to_string()
        }
        None => node_path.trim_start_matches('/').to_string(),
    };
    if kept.is_empty() {
        dest.to_string()
    } else {
        join(dest, &kept)
    }
}

fn set_owner_mode(p: &Path, uid: u32, gid: u32, mode: Option<u32>) -> Result<(), CopyError> {
    match std::os::unix::fs::lchown(p, Some(uid), Some(gid)) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            return Err(CopyError::UnmappedOwner {
                path: p.into(),
                uid,
                gid,
            })
        }
        other => other.map_err(werr("changing owner of", p))?,
    }
    if let Some(m) = mode {
        // After chown: chown clears setuid/setgid bits.
        fs::set_permissions(p, fs::Permissions::from_mode(m))
            .map_err(werr("changing mode of", p))?;
    }
    Ok(())
}

fn copy_xattrs(from: &Path, to: &Path) {
    let Ok(names) = xattr::list(from) else {
        return;
    };
    for name in names {
        let n = name.to_string_lossy();
        // overlayfs's own marks (`user.overlay.` in a rootless snapshot) describe the
        // snapshot, not the file.
        if n.starts_with("trusted.overlay.")
            || n.starts_with("user.overlay.")
            || n == "security.selinux"
        {
            continue;
        }
        if let Ok(Some(v)) = xattr::get(from, &name) {
            // An xattr the staging filesystem refuses is dropped, as cp -a does.
            let _ = xattr::set(to, &name, &v);
        }
    }
}

fn remove_any(p: &Path) -> Result<(), CopyError> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p).map_err(werr("replacing", p)),
        Ok(_) => fs::remove_file(p).map_err(werr("replacing", p)),
        Err(_) => Ok(()),
    }
}

fn remove_non_dir(p: &Path) -> Result<(), CopyError> {
    match fs::symlink_metadata(p) {
        Ok(m) if !m.is_dir() => fs::remove_file(p).map_err(werr("replacing", p)),
        _ => Ok(()),
    }
}
