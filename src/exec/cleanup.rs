//! Removing the sandbox's own traces from the upper dir after the command exited, so the
//! layer holds only the command's writes. Two kinds of trace: the mount points setup
//! created (removed when still empty: the command cannot have used a path it could only
//! see as a mount), and existing directories overlay copied up only because a mount
//! point was created in them (removed when empty, not opaque and with the mode and owner
//! of their lower copy, i.e. when the copy-up changed nothing but mtime).

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::rootfs::MountPoints;
use super::ExecError;

/// Removes `points` from `upper`. `lowers` are the overlay's lower dirs, top-most first.
pub fn remove_mount_points(
    upper: &Path,
    lowers: &[PathBuf],
    points: &MountPoints,
) -> Result<(), ExecError> {
    for rel in points.created.iter().rev() {
        if !under_real_dirs(upper, rel) {
            continue;
        }
        let path = upper.join(rel);
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(remove_err(&path, &e)),
        };
        let removed = if meta.is_dir() {
            fs::remove_dir(&path)
        } else if meta.is_file() && meta.len() == 0 {
            fs::remove_file(&path)
        } else {
            continue;
        };
        match removed {
            Ok(()) => {}
            // The command put something in a directory made for a mount: keep it.
            Err(e) if e.kind() == ErrorKind::DirectoryNotEmpty => {}
            Err(e) => return Err(remove_err(&path, &e)),
        }
    }
    for rel in &points.parents {
        remove_copied_up(upper, lowers, rel)?;
    }
    Ok(())
}

/// Removes `rel` and its ancestors from `upper` while each is a no-op copy-up.
fn remove_copied_up(upper: &Path, lowers: &[PathBuf], rel: &Path) -> Result<(), ExecError> {
    let mut rel = rel.to_path_buf();
    while !rel.as_os_str().is_empty() {
        let path = upper.join(&rel);
        if !under_real_dirs(upper, &rel) || !is_noop_copy_up(&path, lowers, &rel) {
            return Ok(());
        }
        match fs::remove_dir(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::DirectoryNotEmpty => return Ok(()),
            Err(e) => return Err(remove_err(&path, &e)),
        }
        rel.pop();
    }
    Ok(())
}

/// Whether every parent of `rel` in `upper` is a real directory. The command ran as
/// root and may have swapped a parent for a symlink; following it here, on the host,
/// would remove host files.
fn under_real_dirs(upper: &Path, rel: &Path) -> bool {
    let mut dir = upper.to_path_buf();
    let parents: Vec<_> = rel.components().collect();
    parents[..parents.len().saturating_sub(1)].iter().all(|c| {
        dir.push(c);
        fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir())
    })
}

fn is_noop_copy_up(path: &Path, lowers: &[PathBuf], rel: &Path) -> bool {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return false;
    };
    if !meta.is_dir() || fs::read_dir(path).map_or(true, |mut d| d.next().is_some()) {
        return false;
    }
    // Rootless overlays (`userxattr`) mark opaque dirs in the user namespace.
    let opaque = ["trusted.overlay.opaque", "user.overlay.opaque"];
    if opaque
        .iter()
        .any(|a| matches!(xattr::get(path, a), Ok(Some(v)) if v == b"y"))
    {
        return false;
    }
    let Some(lower) = lowers
        .iter()
        .map(|l| l.join(rel))
        .find_map(|p| fs::symlink_metadata(p).ok())
    else {
        return false;
    };
    lower.is_dir()
        && lower.mode() == meta.mode()
        && lower.uid() == meta.uid()
        && lower.gid() == meta.gid()
}

fn remove_err(path: &Path, err: &std::io::Error) -> ExecError {
    ExecError::RemoveMountPoint {
        path: path.to_path_buf(),
        source: ExecError::errno_of(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_points_and_noop_copy_ups_go_written_content_stays() {
        let tmp = tempfile::tempdir().unwrap();
        let (upper, lower) = (tmp.path().join("u"), tmp.path().join("l"));
        fs::create_dir_all(lower.join("etc")).unwrap();
        fs::create_dir_all(upper.join("etc")).unwrap();
        fs::write(upper.join("etc/hosts"), "").unwrap();
        fs::create_dir_all(upper.join("proc")).unwrap();
        fs::create_dir_all(upper.join("mnt/data")).unwrap();
        fs::write(upper.join("mnt/data/kept"), "written by the command").unwrap();
        let points = MountPoints {
            created: vec![
                "etc/hosts".into(),
                "proc".into(),
                "mnt".into(),
                "mnt/data".into(),
            ],
            parents: vec!["etc".into()],
        };
        remove_mount_points(&upper, &[lower], &points).unwrap();
        let mut left: Vec<_> = walkdir::WalkDir::new(&upper)
            .min_depth(1)
            .into_iter()
            .map(|e| {
                e.unwrap()
                    .path()
                    .strip_prefix(&upper)
                    .unwrap()
                    .to_path_buf()
            })
            .collect();
        left.sort();
        let want: Vec<PathBuf> = vec!["mnt".into(), "mnt/data".into(), "mnt/data/kept".into()];
        assert_eq!(left, want);
    }

    #[test]
    fn a_parent_swapped_for_a_symlink_is_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let (upper, outside) = (tmp.path().join("u"), tmp.path().join("host"));
        fs::create_dir_all(&upper).unwrap();
        fs::create_dir_all(outside.join("victim")).unwrap();
        std::os::unix::fs::symlink(&outside, upper.join("etc")).unwrap();
        let points = MountPoints {
            created: vec!["etc".into(), "etc/victim".into()],
            parents: vec!["etc/victim".into()],
        };
        remove_mount_points(&upper, &[], &points).unwrap();
        assert!(
            outside.join("victim").is_dir(),
            "followed a symlink out of the upper dir"
        );
    }

    #[test]
    fn a_copied_up_dir_whose_mode_changed_is_kept() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let (upper, lower) = (tmp.path().join("u"), tmp.path().join("l"));
        fs::create_dir_all(lower.join("etc")).unwrap();
        fs::create_dir_all(upper.join("etc")).unwrap();
        fs::set_permissions(upper.join("etc"), fs::Permissions::from_mode(0o700)).unwrap();
        let points = MountPoints {
            created: vec![],
            parents: vec!["etc".into()],
        };
        remove_mount_points(&upper, &[lower], &points).unwrap();
        assert!(upper.join("etc").is_dir());
    }
}
