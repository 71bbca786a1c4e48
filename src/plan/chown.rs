//! `COPY/ADD --chown=user[:group]`, parsed once here: ids or names, the
//! names resolved later against the target stage's `/etc/passwd` and
//! `/etc/group` (the builder reads those files; this module is pure).

use serde::{Serialize, Serializer};

/// A `--chown` value that is not `user[:group]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid --chown value {value:?}: want user[:group], neither empty")]
pub struct ChownError {
    /// The value as written.
    pub value: String,
}

/// A user or group as written: a number, or a name to look up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdOrName {
    /// A numeric id.
    Id(u32),
    /// A name.
    Name(String),
}

impl IdOrName {
    fn parse(s: &str) -> Self {
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
    /// Parses `user`, `user:group`, numeric or names.
    pub fn parse(value: &str) -> Result<Self, ChownError> {
        let (u, g) = match value.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (value, None),
        };
        if u.is_empty() || g == Some("") {
            return Err(ChownError {
                value: value.into(),
            });
        }
        Ok(Self {
            text: value.into(),
            user: IdOrName::parse(u),
            group: g.map(IdOrName::parse),
        })
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
    fn ids_names_and_refusals() {
        let c = Chown::parse("app:50").unwrap();
        assert_eq!(c.user(), &IdOrName::Name("app".into()));
        assert_eq!(c.group(), Some(&IdOrName::Id(50)));
        assert_eq!(c.text(), "app:50");
        assert!(c.needs_lookup());
        assert!(!Chown::parse("1:2").unwrap().needs_lookup());
        assert!(Chown::parse("1").unwrap().group().is_none());
        for bad in ["", ":1", "1:", ":"] {
            assert!(Chown::parse(bad).is_err(), "{bad:?}");
        }
    }
}
