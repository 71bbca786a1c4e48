//! Overlay mount options. The kernel copies mount data into one page, so a long chain of
//! absolute lower-dir paths overflows it. The options here name lower dirs relative to
//! their deepest common ancestor, and the mount is made with the current directory set
//! to that ancestor. When even that is too long (120 snapshot dirs named by a 64-hex
//! digest take ~7.8 KiB), lower dirs are named through short symlinks (`0`, `1`, … in
//! base 36) in a links dir, as Docker's overlay2 driver does; the kernel resolves them
//! at mount time. Invariant: the returned options never exceed [`MAX_OPTIONS`].

use std::path::{Component, Path, PathBuf};

use super::ExecError;

/// Mount data longer than a page minus its NUL is refused by the kernel; room is kept
/// for the `,userxattr` a rootless mount appends (see `rootfs`).
pub const MAX_OPTIONS: usize = 4095 - ",userxattr".len();

/// Where to chdir and which option string to pass for an overlay mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayOptions {
    /// The directory the lower dirs are relative to.
    pub base: PathBuf,
    /// `lowerdir=a:b,upperdir=…,workdir=…`.
    pub data: String,
    /// Symlinks to create in `base` first: (name, lower dir it points to).
    pub links: Vec<(String, PathBuf)>,
}

/// Builds the options for `lowers` (top-most first, absolute) over `upper` and `work`;
/// `links_dir` is an empty scratch dir to hold short symlinks if they are needed.
pub fn overlay_options(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    links_dir: &Path,
) -> Result<OverlayOptions, ExecError> {
    let Some(first) = lowers.first() else {
        return Err(ExecError::NoLowerDir);
    };
    let mut base: PathBuf = first.clone();
    for lower in &lowers[1..] {
        base = common_ancestor(&base, lower);
    }
    // A single lower dir (or one that is the common ancestor itself) is named by its
    // last component from its parent, never as "" or ".".
    if lowers.iter().any(|l| l == &base) {
        base = base
            .parent()
            .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    }
    let rel: Vec<String> = lowers
        .iter()
        .map(|l| {
            // Every lower dir is under the common ancestor; were one not, its absolute
            // path would still name it, whatever the current directory.
            l.strip_prefix(&base).unwrap_or(l).display().to_string()
        })
        .collect();
    let data = options(&rel, upper, work);
    if data.len() <= MAX_OPTIONS {
        return Ok(OverlayOptions {
            base,
            data,
            links: Vec::new(),
        });
    }
    let links: Vec<(String, PathBuf)> = lowers
        .iter()
        .enumerate()
        .map(|(i, l)| (base36(i), l.clone()))
        .collect();
    let names: Vec<String> = links.iter().map(|(n, _)| n.clone()).collect();
    let data = options(&names, upper, work);
    if data.len() > MAX_OPTIONS {
        return Err(ExecError::OverlayOptionsTooLong {
            len: data.len(),
            max: MAX_OPTIONS,
            layers: lowers.len(),
        });
    }
    Ok(OverlayOptions {
        base: links_dir.to_path_buf(),
        data,
        links,
    })
}

fn options(lowers: &[String], upper: &Path, work: &Path) -> String {
    format!(
        "lowerdir={},upperdir={},workdir={}",
        lowers.join(":"),
        upper.display(),
        work.display()
    )
}

fn base36(mut n: usize) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[n % 36]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

fn common_ancestor(a: &Path, b: &Path) -> PathBuf {
    a.components()
        .zip(b.components())
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x)
        .collect()
}

/// Refuses paths the overlay option syntax cannot carry (`,` separates options, `:`
/// separates lower dirs) and relative paths (the mount runs from another directory).
pub fn check_overlay_path(path: &Path) -> Result<(), ExecError> {
    let relative = !path.is_absolute() || path.components().any(|c| c == Component::ParentDir);
    if relative || path.to_string_lossy().contains([',', ':', '\n']) {
        return Err(ExecError::OverlayPath {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_dirs_are_relative_to_their_common_ancestor() {
        let lowers = vec![
            PathBuf::from("/store/snapshots/bbb"),
            PathBuf::from("/store/snapshots/aaa"),
        ];
        let o = overlay_options(
            &lowers,
            Path::new("/t/up"),
            Path::new("/t/w"),
            Path::new("/l"),
        )
        .unwrap();
        assert_eq!(o.base, PathBuf::from("/store/snapshots"));
        assert_eq!(o.data, "lowerdir=bbb:aaa,upperdir=/t/up,workdir=/t/w");
    }

    #[test]
    fn single_lower_dir_is_named_from_its_parent() {
        let lowers = vec![PathBuf::from("/s/one")];
        let o =
            overlay_options(&lowers, Path::new("/u"), Path::new("/w"), Path::new("/l")).unwrap();
        assert_eq!(o.base, PathBuf::from("/s"));
        assert!(o.data.starts_with("lowerdir=one,"));
    }

    #[test]
    fn sixty_digest_named_snapshots_fit_relative_without_links() {
        let lowers: Vec<PathBuf> = (0..60)
            .map(|i| PathBuf::from(format!("/var/lib/kiln/snapshots/{i:064}")))
            .collect();
        let absolute: usize = lowers.iter().map(|l| l.as_os_str().len() + 1).sum();
        assert!(absolute > MAX_OPTIONS, "the test must need relative paths");
        let o =
            overlay_options(&lowers, Path::new("/u"), Path::new("/w"), Path::new("/l")).unwrap();
        assert!(o.data.len() <= MAX_OPTIONS && o.links.is_empty());
        assert_eq!(o.base, PathBuf::from("/var/lib/kiln/snapshots"));
    }

    #[test]
    fn a_hundred_and_twenty_digest_named_snapshots_go_through_short_links() {
        let lowers: Vec<PathBuf> = (0..120)
            .map(|i| PathBuf::from(format!("/var/lib/kiln/snapshots/{i:064}")))
            .collect();
        let o =
            overlay_options(&lowers, Path::new("/u"), Path::new("/w"), Path::new("/l")).unwrap();
        assert!(o.data.len() <= MAX_OPTIONS);
        assert_eq!(o.base, PathBuf::from("/l"));
        assert_eq!(o.links.len(), 120);
        assert_eq!(o.links[37], ("11".to_string(), lowers[37].clone()));
        assert!(o.data.starts_with("lowerdir=0:1:2:"), "{}", o.data);
        assert!(o.data.contains(":3b,upperdir=/u,"), "{}", o.data);
    }

    #[test]
    fn too_many_layers_is_a_clear_error() {
        let lowers: Vec<PathBuf> = (0..1500)
            .map(|i| PathBuf::from(format!("/a{i}/{}", "x".repeat(20))))
            .collect();
        let err = overlay_options(&lowers, Path::new("/u"), Path::new("/w"), Path::new("/l"))
            .unwrap_err();
        assert!(matches!(
            err,
            ExecError::OverlayOptionsTooLong { layers: 1500, .. }
        ));
    }

    #[test]
    fn separators_in_paths_are_refused() {
        assert!(check_overlay_path(Path::new("/a,b")).is_err());
        assert!(check_overlay_path(Path::new("/a:b")).is_err());
        assert!(check_overlay_path(Path::new("rel")).is_err());
        assert!(check_overlay_path(Path::new("/ok/path")).is_ok());
    }
}
