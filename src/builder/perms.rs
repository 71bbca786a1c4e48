//! `COPY --chmod` and `--chown`: applying the mode the plan parsed, and
//! resolving the owner's user and group names against the target stage's
//! `/etc/passwd` and `/etc/group`. Pure: the caller reads those files.
//! Invariant: a name that is not found is an error, never a silent fallback
//! to root.

use crate::plan::{Chmod, ChmodMode, Chown, IdOrName, ModeCmd};

/// Why a `--chown` value was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PermsError {
    /// A user name not in `/etc/passwd`.
    #[error("unable to find user {name}: no matching entries in passwd file")]
    UnknownUser {
        /// The name.
        name: String,
    },
    /// A group name not in `/etc/group`.
    #[error("unable to find group {name}: no matching entries in group file")]
    UnknownGroup {
        /// The name.
        name: String,
    },
}

/// The permission bits (`0o7777` part) `chmod` gives a file of mode `mode`
/// (a directory when `is_dir`).
// COMPAT(buildkit): fsutil's copier: an octal mode replaces the bits, a
// symbolic one runs its commands over them with umask 0; `X` looks at the
// bits from before the whole mode.
pub fn apply_chmod(chmod: &Chmod, mode: u32, is_dir: bool) -> u32 {
    let before = mode & 0o7777;
    let cmds = match chmod.mode() {
        ChmodMode::Octal(m) => return *m,
        ChmodMode::Symbolic(cmds) => cmds,
    };
    let mut m = before;
    for c in cmds {
        match *c {
            ModeCmd::Set(bits) => m |= bits,
            ModeCmd::Clear(bits) => m &= !bits,
            ModeCmd::SetIfSearchable(bits) => {
                if is_dir || before & 0o111 != 0 {
                    m |= bits
                }
            }
            ModeCmd::Copy {
                from,
                to,
                set,
                clear,
            } => {
                let value = (m >> from.shift()) & 0o7;
                // `=` clears the whole triple, `-` only the copied bits.
                let cleared = if set { 0o7 } else { value };
                for t in to.iter() {
                    if clear {
                        m &= !(cleared << t.shift());
                    }
                    if set {
                        m |= value << t.shift();
                    }
                }
            }
        }
    }
    m & 0o7777
}

/// Resolves `chown` to `(uid, gid)`. `passwd`/`group` are the target's
/// files (empty when absent).
// COMPAT(buildkit): a numeric user alone gives gid = uid; a user name
// alone gives that user's primary group.
pub fn resolve_owner(chown: &Chown, passwd: &str, group: &str) -> Result<(u32, u32), PermsError> {
    let (uid, mut gid) = match chown.user() {
        IdOrName::Id(id) => (*id, *id),
        IdOrName::Name(n) => {
            lookup_passwd(passwd, n).ok_or_else(|| PermsError::UnknownUser { name: n.clone() })?
        }
    };
    match chown.group() {
        Some(IdOrName::Id(id)) => gid = *id,
        Some(IdOrName::Name(n)) => {
            gid = lookup_group(group, n)
                .ok_or_else(|| PermsError::UnknownGroup { name: n.clone() })?
        }
        None => {}
    }
    Ok((uid, gid))
}
/// `name:x:uid:gid:...` → (uid, gid) for `name`.
fn lookup_passwd(passwd: &str, name: &str) -> Option<(u32, u32)> {
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 4 && f[0] == name).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    })
}

/// `name:x:gid:members` → gid for `name`.
fn lookup_group(group: &str, name: &str) -> Option<u32> {
    group.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 3 && f[0] == name).then(|| f[2].parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(mode, bits before, is a directory, bits after)`, each checked.
    fn check(cases: &[(&str, u32, bool, u32)]) {
        for &(mode, before, is_dir, after) in cases {
            let got = apply_chmod(&Chmod::parse(mode).unwrap(), before, is_dir);
            assert_eq!(got, after, "{mode} on {before:o} (dir: {is_dir}): {got:o}");
        }
    }

    #[test]
    fn octal_and_symbolic_chmod() {
        check(&[
            ("755", 0o600, false, 0o755),
            ("0640", 0o777, false, 0o640),
            ("4711", 0o644, false, 0o4711),
            ("u+x", 0o644, false, 0o744),
            ("go-w", 0o666, false, 0o644),
            ("a=r", 0o755, false, 0o444),
            ("u=rwx,g=rx,o=", 0, false, 0o750),
            ("+x", 0o600, false, 0o711),
            ("a-w", 0o777, true, 0o555),
            ("u+s", 0o755, false, 0o4755),
            ("g+s,+t", 0o755, true, 0o3755),
            // `=` without a class keeps the sticky bit, as setmode(3) does.
            ("=rw", 0o1777, true, 0o1666),
        ]);
    }

    #[test]
    fn capital_x_looks_at_the_mode_before() {
        check(&[
            // The conformance case `copy-chmod-symbolic`, as BuildKit leaves it.
            ("u=rwX,go=rX", 0o644, false, 0o644),
            ("u=rwX,go=rX", 0o700, false, 0o755),
            ("u=rwX,go=rX", 0o700, true, 0o755),
            ("a+X", 0o600, true, 0o711),
            ("a+X", 0o600, false, 0o600),
            ("a+X", 0o610, false, 0o711),
            // Not the x bits an earlier clause set.
            ("u+x,go+X", 0o600, false, 0o700),
            ("a-x,a+X", 0o744, false, 0o755),
        ]);
    }

    #[test]
    fn copies_from_a_class() {
        check(&[
            ("go=u-w", 0o700, false, 0o755),
            ("g=u", 0o640, false, 0o660),
            ("o+g", 0o650, false, 0o655),
            ("u-g", 0o750, false, 0o250),
            // Reads the bits as the commands before it left them.
            ("u+x,g=u", 0o600, false, 0o770),
        ]);
    }

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nstaff:x:50:app\napp:x:1001:\n";

    #[test]
    fn chown_numeric_and_names() {
        let r = |v: &str| resolve_owner(&Chown::parse(v), PASSWD, GROUP);
        assert_eq!(r("1000"), Ok((1000, 1000)));
        assert_eq!(r("1000:7"), Ok((1000, 7)));
        assert_eq!(r("app"), Ok((1000, 1001)));
        assert_eq!(r("app:staff"), Ok((1000, 50)));
        assert_eq!(r("5:staff"), Ok((5, 50)));
        assert_eq!(
            r("ghost"),
            Err(PermsError::UnknownUser {
                name: "ghost".into()
            })
        );
        assert_eq!(
            r("app:ghosts"),
            Err(PermsError::UnknownGroup {
                name: "ghosts".into()
            })
        );
    }
}
