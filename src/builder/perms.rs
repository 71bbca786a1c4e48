//! `COPY --chmod` and `--chown`: parsing the flag values and resolving user
//! and group names against the target stage's `/etc/passwd` and `/etc/group`.
//! Pure: the caller reads those files. Invariant: a name that is not found is
//! an error, never a silent fallback to root.

/// Why a `--chmod` or `--chown` value was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PermsError {
    /// Neither octal nor a symbolic mode.
    #[error("invalid --chmod value {value:?}: expected octal (755) or symbolic (u+x,go-w)")]
    BadChmod {
        /// The value as written.
        value: String,
    },
    /// An empty `--chown` user.
    #[error("invalid --chown value {value:?}")]
    BadChown {
        /// The value as written.
        value: String,
    },
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

/// A parsed `--chmod`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chmod {
    /// `--chmod=755`: the permission bits replace the file's.
    Octal(u32),
    /// `--chmod=u+x,go-w`: clauses applied in order to the file's mode.
    Symbolic(Vec<Clause>),
}

/// One symbolic clause: `who op perms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    who: u32,
    op: char,
    perms: String,
}

impl Chmod {
    /// Parses an octal or symbolic mode (chmod(1) grammar, without `u=g` copies).
    pub fn parse(value: &str) -> Result<Self, PermsError> {
        let bad = || PermsError::BadChmod {
            value: value.into(),
        };
        if !value.is_empty() && value.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            let m = u32::from_str_radix(value, 8).map_err(|_| bad())?;
            return if m <= 0o7777 {
                Ok(Self::Octal(m))
            } else {
                Err(bad())
            };
        }
        let mut clauses = Vec::new();
        for part in value.split(',') {
            let op_at = part.find(['+', '-', '=']).ok_or_else(bad)?;
            let (who_s, rest) = part.split_at(op_at);
            let mut who = 0;
            for c in who_s.chars() {
                who |= match c {
                    'u' => 0o4700,
                    'g' => 0o2070,
                    'o' => 0o1007,
                    'a' => 0o7777,
                    _ => return Err(bad()),
                };
            }
            let op = rest.chars().next().ok_or_else(bad)?;
            let perms = &rest[1..];
            if !perms.chars().all(|c| "rwxXst".contains(c)) {
                return Err(bad());
            }
            clauses.push(Clause {
                who,
                op,
                perms: perms.into(),
            });
        }
        Ok(Self::Symbolic(clauses))
    }

    /// The new permission bits (`0o7777` part) for a file of mode `mode`.
    pub fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        match self {
            Self::Octal(m) => *m,
            Self::Symbolic(clauses) => clauses
                .iter()
                .fold(mode & 0o7777, |m, c| c.apply(m, is_dir)),
        }
    }
}

impl Clause {
    fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        // No `who` means "all", masked by umask in chmod(1); kiln uses no umask.
        let who = if self.who == 0 { 0o7777 } else { self.who };
        let any_x = mode & 0o111 != 0;
        let mut bits = 0;
        for c in self.perms.chars() {
            bits |= match c {
                'r' => 0o444,
                'w' => 0o222,
                'x' => 0o111,
                'X' if is_dir || any_x => 0o111,
                's' => 0o6000,
                't' => 0o1000,
                _ => 0,
            };
        }
        let bits = bits & who;
        match self.op {
            '+' => mode | bits,
            '-' => mode & !bits,
            _ => (mode & !who) | bits,
        }
    }
}

/// A parsed `--chown=user[:group]`, names not yet resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chown {
    user: IdOrName,
    group: Option<IdOrName>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum IdOrName {
    Id(u32),
    Name(String),
}

impl IdOrName {
    fn parse(s: &str) -> Self {
        s.parse()
            .map(Self::Id)
            .unwrap_or_else(|_| Self::Name(s.into()))
    }
}

impl Chown {
    /// Parses `user`, `user:group`, numeric or names.
    pub fn parse(value: &str) -> Result<Self, PermsError> {
        let (u, g) = match value.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (value, None),
        };
        if u.is_empty() || g == Some("") {
            return Err(PermsError::BadChown {
                value: value.into(),
            });
        }
        Ok(Self {
            user: IdOrName::parse(u),
            group: g.map(IdOrName::parse),
        })
    }

    /// True when resolving needs `/etc/passwd` or `/etc/group`.
    pub fn needs_lookup(&self) -> bool {
        matches!(self.user, IdOrName::Name(_)) || matches!(self.group, Some(IdOrName::Name(_)))
    }

    /// Resolves to `(uid, gid)`. `passwd`/`group` are the target's files
    /// (empty when absent).
    // COMPAT(buildkit): a numeric user alone gives gid = uid; a user name
    // alone gives that user's primary group.
    pub fn resolve(&self, passwd: &str, group: &str) -> Result<(u32, u32), PermsError> {
        let (uid, mut gid) = match &self.user {
            IdOrName::Id(id) => (*id, *id),
            IdOrName::Name(n) => lookup_passwd(passwd, n)
                .ok_or_else(|| PermsError::UnknownUser { name: n.clone() })?,
        };
        match &self.group {
            Some(IdOrName::Id(id)) => gid = *id,
            Some(IdOrName::Name(n)) => {
                gid = lookup_group(group, n)
                    .ok_or_else(|| PermsError::UnknownGroup { name: n.clone() })?
            }
            None => {}
        }
        Ok((uid, gid))
    }
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

    #[test]
    fn octal_and_symbolic_chmod() {
        assert_eq!(Chmod::parse("755").unwrap().apply(0o600, false), 0o755);
        assert_eq!(Chmod::parse("0640").unwrap().apply(0o777, false), 0o640);
        assert_eq!(Chmod::parse("u+x").unwrap().apply(0o644, false), 0o744);
        assert_eq!(Chmod::parse("go-w").unwrap().apply(0o666, false), 0o644);
        assert_eq!(Chmod::parse("a=r").unwrap().apply(0o755, false), 0o444);
        assert_eq!(
            Chmod::parse("u=rwx,g=rx,o=").unwrap().apply(0, false),
            0o750
        );
        assert_eq!(Chmod::parse("+x").unwrap().apply(0o600, false), 0o711);
        assert_eq!(Chmod::parse("a+X").unwrap().apply(0o600, true), 0o711);
        assert_eq!(Chmod::parse("a+X").unwrap().apply(0o600, false), 0o600);
        assert_eq!(Chmod::parse("u+s").unwrap().apply(0o755, false), 0o4755);
        for bad in ["", "9", "u+q", "z+x", "rwx", "77777"] {
            assert!(Chmod::parse(bad).is_err(), "{bad}");
        }
    }

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nstaff:x:50:app\napp:x:1001:\n";

    #[test]
    fn chown_numeric_and_names() {
        let r = |v: &str| Chown::parse(v).unwrap().resolve(PASSWD, GROUP);
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
        assert!(Chown::parse(":1").is_err());
        assert!(Chown::parse("1:").is_err());
        assert!(Chown::parse("app").unwrap().needs_lookup());
        assert!(!Chown::parse("1:2").unwrap().needs_lookup());
    }
}
