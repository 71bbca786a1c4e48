//! `COPY/ADD --chown=user[:group]`, parsed once here: ids or names, the
//! names resolved later against the target stage's `/etc/passwd` and
//! `/etc/group` (the builder reads those files; this module is pure).

use serde::{Serialize, Serializer};

/// A user or group as written: a number, or a name to look up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdOrName {
    /// A numeric id.
    Id(u32),
    /// A name.
    Name(String),
}

impl IdOrName {
    // COMPAT(buildkit): an empty part (`--chown=:1`, `1:`, `:`) is a name that no
    // passwd or group line has, which BuildKit's file op leaves at id 0: the user
    // root, the group 0 (not the user's own group).
    fn parse(s: &str) -> Self {
        if s.is_empty() {
            return Self::Id(0);
        }
        s.parse()
            .map(Self::Id)
            .unwrap_or_else(|_| Self::Name(s.into()))
    }
}

/// A parsed `--chown` (or a `USER` value a WORKDIR owner comes from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chown {
    text: String,
    user: IdOrName,
    group: Option<IdOrName>,
}

impl Chown {
    /// Parses `user`, `user:group`, numeric or names; an empty part is id 0.
    /// (An empty value is no `--chown` at all: the caller leaves it out.)
    pub fn parse(value: &str) -> Self {
        let (u, g) = match value.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (value, None),
        };
        Self {
            text: value.into(),
            user: IdOrName::parse(u),
            group: g.map(IdOrName::parse),
        }
    }

    /// The value as written (after expansion): what the step key and the
    /// history show.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The user part.
    pub fn user(&self) -> &IdOrName {
        &self.user
    }

    /// The group part, when given.
    pub fn group(&self) -> Option<&IdOrName> {
        self.group.as_ref()
    }

    /// True when resolving needs `/etc/passwd` or `/etc/group`.
    pub fn needs_lookup(&self) -> bool {
        matches!(self.user, IdOrName::Name(_)) || matches!(self.group, Some(IdOrName::Name(_)))
    }
}

/// Serializes as written, as the plan dump shows every flag.
impl Serialize for Chown {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.text.serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_names_and_empty_parts() {
        let c = Chown::parse("app:50");
        assert_eq!(c.user(), &IdOrName::Name("app".into()));
        assert_eq!(c.group(), Some(&IdOrName::Id(50)));
        assert_eq!(c.text(), "app:50");
        assert!(c.needs_lookup());
        assert!(!Chown::parse("1:2").needs_lookup());
        assert!(Chown::parse("1").group().is_none());
        let ids = |v: &str| {
            let c = Chown::parse(v);
            (c.user().clone(), c.group().cloned())
        };
        assert_eq!(ids(":1"), (IdOrName::Id(0), Some(IdOrName::Id(1))));
        assert_eq!(ids("1:"), (IdOrName::Id(1), Some(IdOrName::Id(0))));
        assert_eq!(ids(":"), (IdOrName::Id(0), Some(IdOrName::Id(0))));
    }
}
