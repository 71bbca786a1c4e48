//! Resolving a step's `USER` against the image's /etc/passwd and /etc/group, the way
//! runc does for Docker: names are looked up, numbers are taken as they are, and the
//! supplementary groups are every group listing the user as a member. Pure: it is given
//! the files' text.

use super::ExecError;

/// A resolved user: what `setgroups`, `setgid` and `setuid` receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    /// The user id.
    pub uid: u32,
    /// The primary group id.
    pub gid: u32,
    /// Supplementary groups (the primary group included).
    pub groups: Vec<u32>,
    /// The user's home: its passwd entry's, `/` without one.
    pub home: String,
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

fn passwd_entries(text: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    text.lines().filter_map(|line| {
        let mut f = line.split(':');
        let name = f.next()?;
        let _password = f.next()?;
        let uid = f.next()?.trim().parse().ok()?;
        let gid = f.next()?.trim().parse().ok()?;
        let _gecos = f.next();
        let home = f.next().unwrap_or("");
        Some(PasswdEntry {
            name,
            uid,
            gid,
            home,
        })
    })
}

fn group_entries(text: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    text.lines().filter_map(|line| {
        let mut f = line.split(':');
        let name = f.next()?;
        let _password = f.next()?;
        let gid = f.next()?.trim().parse().ok()?;
        let members = f
            .next()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .collect();
        Some(GroupEntry { name, gid, members })
    })
}

/// Resolves `user` (`""`, `name`, `uid`, `name:group`, `uid:gid`). `passwd` and `group`
/// are the image's files, empty when the image lacks them.
pub fn resolve(user: &str, passwd: &str, group: &str) -> Result<Ids, ExecError> {
    let (user_part, group_part) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let entry = passwd_entries(passwd).find(|e| e.name == user_part);
    let entry = match (entry, user_part.parse::<u32>()) {
        (Some(e), _) => Some(e),
        (None, Ok(uid)) => passwd_entries(passwd).find(|e| e.uid == uid),
        (None, Err(_)) => return Err(unknown("user", user_part, "/etc/passwd")),
    };
    // COMPAT(buildkit): runc's HOME is the passwd entry's home, `/` without an entry
    // (or with an empty home field).
    let home = match &entry {
        Some(e) if !e.home.is_empty() => e.home.to_string(),
        _ => "/".to_string(),
    };
    let (uid, mut gid, name) = match (entry, user_part.parse::<u32>()) {
        (Some(e), _) => (e.uid, e.gid, Some(e.name)),
        // COMPAT(buildkit): a uid absent from /etc/passwd runs with gid 0.
        (None, Ok(uid)) => (uid, 0, None),
        (None, Err(_)) => return Err(unknown("user", user_part, "/etc/passwd")),
    };
    if let Some(g) = group_part {
        gid = match group_entries(group).find(|e| e.name == g) {
            Some(e) => e.gid,
            None => g.parse().map_err(|_| unknown("group", g, "/etc/group"))?,
        };
        // COMPAT(buildkit): an explicit group replaces the supplementary groups.
        return Ok(Ids {
            uid,
            gid,
            groups: vec![gid],
            home,
        });
    }
    let mut groups = vec![gid];
    if let Some(name) = name {
        for e in group_entries(group).filter(|e| e.members.contains(&name)) {
            if !groups.contains(&e.gid) {
                groups.push(e.gid);
            }
        }
    }
    Ok(Ids {
        uid,
        gid,
        groups,
        home,
    })
}

fn unknown(kind: &str, name: &str, file: &str) -> ExecError {
    ExecError::UnknownId {
        kind: kind.into(),
        name: name.into(),
        file: file.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nuser:x:1000:\nwheel:x:10:root,user\naudio:x:29:user\n";

    #[test]
    fn empty_user_is_root_with_roots_groups() {
        let ids = resolve("", PASSWD, GROUP).unwrap();
        assert_eq!(
            ids,
            Ids {
                uid: 0,
                gid: 0,
                groups: vec![0, 10],
                home: "/root".into(),
            }
        );
    }

    #[test]
    fn name_brings_primary_and_supplementary_groups() {
        let ids = resolve("user", PASSWD, GROUP).unwrap();
        assert_eq!(
            ids,
            Ids {
                uid: 1000,
                gid: 1000,
                groups: vec![1000, 10, 29],
                home: "/home/user".into(),
            }
        );
    }

    #[test]
    fn known_uid_is_looked_up_unknown_uid_gets_gid_zero() {
        assert_eq!(
            resolve("1000", PASSWD, GROUP).unwrap().groups,
            vec![1000, 10, 29]
        );
        assert_eq!(
            resolve("4242", PASSWD, GROUP).unwrap(),
            Ids {
                uid: 4242,
                gid: 0,
                groups: vec![0],
                home: "/".into(),
            }
        );
    }

    #[test]
    fn explicit_group_by_name_or_number() {
        assert_eq!(
            resolve("user:audio", PASSWD, GROUP).unwrap(),
            Ids {
                uid: 1000,
                gid: 29,
                groups: vec![29],
                home: "/home/user".into(),
            }
        );
        assert_eq!(
            resolve("5:7", "", "").unwrap(),
            Ids {
                uid: 5,
                gid: 7,
                groups: vec![7],
                home: "/".into(),
            }
        );
    }

    #[test]
    fn unknown_names_are_errors() {
        assert!(matches!(
            resolve("nobody", PASSWD, GROUP),
            Err(ExecError::UnknownId { .. })
        ));
        assert!(matches!(
            resolve("user:nogroup", PASSWD, GROUP),
            Err(ExecError::UnknownId { .. })
        ));
    }
}
