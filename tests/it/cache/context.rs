//! Context hashing: the digest follows exactly what COPY copies (names,
//! types, modes, sizes, contents, link targets) and nothing else (mtime,
//! owners, inodes, ignored files); the stat cache makes a warm run read no
//! contents and never trusts a racy entry.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::Duration;

use filetime::FileTime;
use kiln::cache::{CacheError, ContentDigest, ContextHasher, RACY_WINDOW_NS};
use kiln::dockerfile::ignore::IgnorePatterns;

/// A named edit of a context directory.
type Change = (&'static str, Box<dyn Fn(&Path)>);

fn all(_: &Path, _: bool) -> bool {
    true
}

/// A small context: two files, a subdirectory, a symlink.
fn make_context(root: &Path) {
    fs::create_dir_all(root.join("src/lib")).unwrap();
    fs::write(root.join("README"), b"hello\n").unwrap();
    fs::write(root.join("src/main.c"), b"int main(){}\n").unwrap();
    fs::write(root.join("src/lib/a.c"), b"int a;\n").unwrap();
    fs::write(root.join("src/lib/a.o"), b"\x7fELF").unwrap();
    symlink("lib/a.c", root.join("src/link")).unwrap();
}

/// Lets every file of a fresh context age past the racy window.
fn age_past_racy_window() {
    sleep(Duration::from_nanos(RACY_WINDOW_NS as u64) + Duration::from_millis(100));
}

fn digest(store: &Path, ctx: &Path, paths: &[&str]) -> ContentDigest {
    let h = ContextHasher::open(store, ctx).unwrap();
    let paths: Vec<PathBuf> = paths.iter().map(PathBuf::from).collect();
    h.digest_paths(&paths, &all).unwrap()
}

#[test]
fn digest_ignores_mtime_owner_and_inode_but_not_content_mode_or_names() {
    let store = tempfile::tempdir().unwrap();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    make_context(a.path());
    make_context(b.path());
    // A second checkout: other inodes, other mtimes, other owners.
    filetime::set_file_mtime(b.path().join("README"), FileTime::from_unix_time(1, 0)).unwrap();
    std::os::unix::fs::chown(b.path().join("src/main.c"), Some(1234), Some(99)).unwrap();
    let base = digest(store.path(), a.path(), &["."]);
    assert_eq!(base, digest(store.path(), b.path(), &["."]));

    let changes: Vec<Change> = vec![
        (
            "content",
            Box::new(|r| fs::write(r.join("README"), b"hellO\n").unwrap()),
        ),
        (
            "size",
            Box::new(|r| fs::write(r.join("README"), b"hello!\n").unwrap()),
        ),
        (
            "mode",
            Box::new(|r| {
                fs::set_permissions(r.join("README"), fs::Permissions::from_mode(0o600)).unwrap()
            }),
        ),
        (
            "name",
            Box::new(|r| fs::rename(r.join("README"), r.join("README.md")).unwrap()),
        ),
        (
            "new file",
            Box::new(|r| fs::write(r.join("src/new"), b"").unwrap()),
        ),
        (
            "new dir",
            Box::new(|r| fs::create_dir(r.join("src/empty")).unwrap()),
        ),
        (
            "link target",
            Box::new(|r| {
                fs::remove_file(r.join("src/link")).unwrap();
                symlink("lib/a.o", r.join("src/link")).unwrap();
            }),
        ),
        (
            "file becomes link",
            Box::new(|r| {
                fs::remove_file(r.join("README")).unwrap();
                symlink("x", r.join("README")).unwrap();
            }),
        ),
    ];
    for (what, change) in changes {
        let c = tempfile::tempdir().unwrap();
        make_context(c.path());
        change(c.path());
        assert_ne!(
            digest(store.path(), c.path(), &["."]),
            base,
            "{what} must change the digest"
        );
    }
}

#[test]
fn only_the_selected_paths_matter() {
    let store = tempfile::tempdir().unwrap();
    let ctx = tempfile::tempdir().unwrap();
    make_context(ctx.path());
    let src = digest(store.path(), ctx.path(), &["src"]);
    fs::write(ctx.path().join("README"), b"changed").unwrap();
    assert_eq!(src, digest(store.path(), ctx.path(), &["src"]));
    assert_ne!(src, digest(store.path(), ctx.path(), &["src/lib"]));
    // The order and the spelling of the sources are part of what COPY does.
    let two = digest(store.path(), ctx.path(), &["README", "src"]);
    assert_ne!(two, digest(store.path(), ctx.path(), &["src", "README"]));
}

#[test]
fn ignored_files_do_not_matter() {
    let store = tempfile::tempdir().unwrap();
    let ctx = tempfile::tempdir().unwrap();
    make_context(ctx.path());
    let ignore = IgnorePatterns::parse("**/*.o\nsrc/lib\n!src/lib/a.c\n").unwrap();
    let filter = |p: &Path, is_dir: bool| {
        let p = p.to_str().unwrap();
        !ignore.is_excluded(p) || (is_dir && ignore.dir_may_have_exceptions(p))
    };
    let hash = || {
        let h = ContextHasher::open(store.path(), ctx.path()).unwrap();
        h.digest_paths(&[PathBuf::from(".")], &filter).unwrap()
    };
    let before = hash();
    fs::write(ctx.path().join("src/lib/a.o"), b"rebuilt object").unwrap();
    fs::write(ctx.path().join("src/lib/b.c"), b"ignored too").unwrap();
    assert_eq!(before, hash(), "ignored files changed the digest");
    fs::write(ctx.path().join("src/lib/a.c"), b"int a = 1;\n").unwrap();
    assert_ne!(before, hash(), "a re-included file must still count");
}

#[test]
fn a_warm_run_reads_no_contents() {
    let store = tempfile::tempdir().unwrap();
    let ctx = tempfile::tempdir().unwrap();
    make_context(ctx.path());
    age_past_racy_window();
    let cold = ContextHasher::open(store.path(), ctx.path()).unwrap();
    let d1 = cold.digest_paths(&[PathBuf::from(".")], &all).unwrap();
    assert_eq!(cold.content_reads(), 4);
    cold.save().unwrap();

    let warm = ContextHasher::open(store.path(), ctx.path()).unwrap();
    assert_eq!(warm.cached_files(), 4);
    let d2 = warm.digest_paths(&[PathBuf::from(".")], &all).unwrap();
    assert_eq!(d1, d2);
    assert_eq!(
        warm.content_reads(),
        0,
        "a stat-cache hit must not read the file"
    );

    // Same size, content changed, mtime put back: the ctime still moves, so
    // the stale digest is never used.
    let readme = ctx.path().join("README");
    let mtime = FileTime::from_last_modification_time(&fs::metadata(&readme).unwrap());
    fs::write(&readme, b"HELLO\n").unwrap();
    filetime::set_file_mtime(&readme, mtime).unwrap();
    let d3 = warm.digest_paths(&[PathBuf::from(".")], &all).unwrap();
    assert_eq!(warm.content_reads(), 1);
    assert_ne!(d1, d3);
}

#[test]
fn racy_entries_are_rehashed() {
    let store = tempfile::tempdir().unwrap();
    let ctx = tempfile::tempdir().unwrap();
    fs::write(ctx.path().join("old"), b"old").unwrap();
    age_past_racy_window();
    fs::write(ctx.path().join("fresh"), b"fresh").unwrap();
    let first = ContextHasher::open(store.path(), ctx.path()).unwrap();
    first.digest_paths(&[PathBuf::from(".")], &all).unwrap();
    first.save().unwrap();

    let second = ContextHasher::open(store.path(), ctx.path()).unwrap();
    assert_eq!(second.cached_files(), 1, "only the aged file is trusted");
    second.digest_paths(&[PathBuf::from(".")], &all).unwrap();
    assert_eq!(second.content_reads(), 1, "the racy file is read again");
}

#[test]
fn symlinks_resolve_inside_the_context() {
    let store = tempfile::tempdir().unwrap();
    let ctx = tempfile::tempdir().unwrap();
    fs::create_dir(ctx.path().join("etc")).unwrap();
    fs::write(
        ctx.path().join("etc/passwd"),
        b"root:x:0:0::/root:/bin/sh\n",
    )
    .unwrap();
    // An absolute link names a path inside the context, never the host's.
    symlink("/etc/passwd", ctx.path().join("pw")).unwrap();
    symlink("../../../etc/passwd", ctx.path().join("up")).unwrap();
    let pw = digest(store.path(), ctx.path(), &["pw"]);
    let before_up = digest(store.path(), ctx.path(), &["up"]);
    fs::write(ctx.path().join("etc/passwd"), b"changed\n").unwrap();
    assert_ne!(pw, digest(store.path(), ctx.path(), &["pw"]));
    assert_ne!(before_up, digest(store.path(), ctx.path(), &["up"]));

    symlink("loop", ctx.path().join("loop")).unwrap();
    let h = ContextHasher::open(store.path(), ctx.path()).unwrap();
    let err = h.digest_paths(&[PathBuf::from("loop")], &all).unwrap_err();
    assert!(matches!(err, CacheError::SymlinkLoop { .. }), "{err}");
}

#[test]
fn a_missing_source_is_an_error_naming_it() {
    let store = tempfile::tempdir().unwrap();
    let ctx = tempfile::tempdir().unwrap();
    let h = ContextHasher::open(store.path(), ctx.path()).unwrap();
    let err = h.digest_paths(&[PathBuf::from("nope")], &all).unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
}

#[test]
fn chmod_replaces_file_modes() {
    let store = tempfile::tempdir().unwrap();
    let ctx = tempfile::tempdir().unwrap();
    make_context(ctx.path());
    let h = ContextHasher::open(store.path(), ctx.path()).unwrap();
    let paths = [PathBuf::from("src")];
    let a = h.digest_paths_chmod(&paths, &all, Some(0o755)).unwrap();
    let main = ctx.path().join("src/main.c");
    fs::set_permissions(&main, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(a, h.digest_paths_chmod(&paths, &all, Some(0o755)).unwrap());
    assert_ne!(a, h.digest_paths_chmod(&paths, &all, Some(0o700)).unwrap());
    assert_ne!(a, h.digest_paths(&paths, &all).unwrap());
}

#[test]
fn an_unchanged_cache_is_not_rewritten() {
    let store = tempfile::tempdir().unwrap();
    let ctx = tempfile::tempdir().unwrap();
    make_context(ctx.path());
    age_past_racy_window();
    let h = ContextHasher::open(store.path(), ctx.path()).unwrap();
    h.digest_paths(&[PathBuf::from(".")], &all).unwrap();
    h.save().unwrap();
    let dir = store.path().join("cache/context");
    let files: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    let stamp = fs::metadata(&files[0]).unwrap().modified().unwrap();
    let inode = std::os::unix::fs::MetadataExt::ino(&fs::metadata(&files[0]).unwrap());
    let warm = ContextHasher::open(store.path(), ctx.path()).unwrap();
    warm.digest_paths(&[PathBuf::from(".")], &all).unwrap();
    warm.save().unwrap();
    let meta = fs::metadata(&files[0]).unwrap();
    assert_eq!(meta.modified().unwrap(), stamp);
    assert_eq!(std::os::unix::fs::MetadataExt::ino(&meta), inode);
}

#[test]
fn deleted_files_leave_the_stat_cache_on_the_next_write() {
    let store = tempfile::tempdir().unwrap();
    let ctx = tempfile::tempdir().unwrap();
    make_context(ctx.path());
    age_past_racy_window();
    let h = ContextHasher::open(store.path(), ctx.path()).unwrap();
    h.digest_paths(&[PathBuf::from(".")], &all).unwrap();
    h.save().unwrap();
    assert_eq!(h.cached_files(), 4);

    fs::remove_file(ctx.path().join("src/lib/a.o")).unwrap();
    fs::write(ctx.path().join("README"), b"new content\n").unwrap();
    let again = ContextHasher::open(store.path(), ctx.path()).unwrap();
    again.digest_paths(&[PathBuf::from(".")], &all).unwrap();
    again.save().unwrap();
    // a.o is gone; README is racy (just written), so it is not trusted either.
    let reopened = ContextHasher::open(store.path(), ctx.path()).unwrap();
    assert_eq!(reopened.cached_files(), 2);
}
