//! `COPY/ADD --chmod`: the one parser of the flag's value, octal or symbolic
//! (Dockerfile 1.14+), into a typed [`Chmod`] the builder applies and the
//! step key reads. Nothing downstream parses the text again.
//!
//! Invariants: a value that parses here applies to every mode without error;
//! the text is kept as written (after expansion) for the step key and the
//! history, so an octal mode keys as it always has.
//!
//! COMPAT(buildkit): the rules are those of BuildKit's Dockerfile frontend
//! (`dispatchCopy`: `strconv.ParseUint(v, 8, 32)` up to 07777, else
//! `tonistiigi/dchapes-mode`, a Go port of BSD `setmode(3)`) and of fsutil's
//! copier, which parses with umask 0: clauses `[ugoa]*[-+=][rwxXst]*`, several
//! operators per clause (`u+x-w`), copies from a class (`go=u-w`), comma lists,
//! no trailing comma; `s` and `t` are ignored for `o` alone; `X` sets the x bits
//! when the file is a directory or had any x bit before the whole mode applies.

use serde::{Serialize, Serializer};

const SUID: u32 = 0o4000;
const SGID: u32 = 0o2000;
const STICKY: u32 = 0o1000;
const USER: u32 = 0o700;
const GROUP: u32 = 0o070;
const OTHER: u32 = 0o007;
/// `a`, and what `=` without a class clears: everything but the sticky bit.
const STANDARD: u32 = SUID | SGID | USER | GROUP | OTHER;
const R: u32 = 0o444;
const W: u32 = 0o222;
const X: u32 = 0o111;

/// Why a `--chmod` value is refused; [`ChmodError::reason`] is the text the
/// plan error shows after the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChmodError {
    /// Starts with a digit but is not octal, or is above 07777.
    #[error("{}", self.reason())]
    NotOctal,
    /// Not a symbolic mode either.
    #[error("{}", self.reason())]
    Syntax,
}

impl ChmodError {
    /// The refusal as a static phrase (what `PlanError::FlagValue` carries).
    pub fn reason(self) -> &'static str {
        match self {
            // COMPAT(buildkit): its message for a value that looks numeric.
            Self::NotOctal => "it should be octal string and between 0 and 07777",
            Self::Syntax => {
                "invalid syntax: neither octal (0 to 07777) nor symbolic (e.g. u=rwX,go=rX)"
            }
        }
    }
}

/// A parsed `--chmod`: the text as written and what it does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chmod {
    text: String,
    mode: ChmodMode,
}

/// What a `--chmod` does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChmodMode {
    /// `--chmod=755`: these bits (`0o7777` part) replace the file's.
    Octal(u32),
    /// `--chmod=u=rwX,go=rX`: commands applied in order to the file's bits.
    Symbolic(Vec<ModeCmd>),
}

/// One step of a symbolic mode, on the `0o7777` bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModeCmd {
    /// Set these bits.
    Set(u32),
    /// Clear these bits.
    Clear(u32),
    /// `X`: set these bits when the file is a directory or had any x bit
    /// before the mode applied.
    SetIfSearchable(u32),
    /// `g=u`, `o+g`, `go-u`: the permission triple of `from`, as the commands
    /// before left it, cleared from (`clear`) and/or set into (`set`) each class
    /// in `to`; `=` clears the whole triple first.
    Copy {
        /// The class read.
        from: Class,
        /// The classes written.
        to: Classes,
        /// `+` or `=`.
        set: bool,
        /// `-` or `=`.
        clear: bool,
    },
}

/// A permission class of chmod(1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// `u`: the owner.
    User,
    /// `g`: the group.
    Group,
    /// `o`: the others.
    Other,
}

impl Class {
    /// How far its triple is shifted in a mode.
    pub fn shift(self) -> u32 {
        match self {
            Self::User => 6,
            Self::Group => 3,
            Self::Other => 0,
        }
    }
}

/// The classes a copy writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Classes {
    /// `u`.
    pub user: bool,
    /// `g`.
    pub group: bool,
    /// `o`.
    pub other: bool,
}

impl Classes {
    /// The classes written, in `u`, `g`, `o` order.
    pub fn iter(self) -> impl Iterator<Item = Class> {
        [
            (self.user, Class::User),
            (self.group, Class::Group),
            (self.other, Class::Other),
        ]
        .into_iter()
        .filter_map(|(on, c)| on.then_some(c))
    }
}

impl Chmod {
    /// Parses an expanded `--chmod` value.
    pub fn parse(text: &str) -> Result<Self, ChmodError> {
        let mode = if text.bytes().next().is_some_and(|b| b.is_ascii_digit()) {
            // COMPAT(buildkit): `ParseUint(v, 8, 32)`: octal digits only, no
            // sign, prefix or `_`.
            match u32::from_str_radix(text, 8) {
                Ok(m) if m <= 0o7777 => ChmodMode::Octal(m),
                _ => return Err(ChmodError::NotOctal),
            }
        } else {
            ChmodMode::Symbolic(symbolic(text.as_bytes())?)
        };
        Ok(Self {
            text: text.to_string(),
            mode,
        })
    }

    /// The value as written (after expansion): what the step key and the
    /// history show.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// What it does.
    pub fn mode(&self) -> &ChmodMode {
        &self.mode
    }

    /// The bits of an octal mode; `None` for a symbolic one.
    pub fn octal(&self) -> Option<u32> {
        match self.mode {
            ChmodMode::Octal(m) => Some(m),
            ChmodMode::Symbolic(_) => None,
        }
    }
}

impl Serialize for Chmod {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// The symbolic grammar: `clause (',' clause)*`, `clause = who* (op perm*)+`.
fn symbolic(s: &[u8]) -> Result<Vec<ModeCmd>, ChmodError> {
    let mut cmds = Vec::new();
    let mut i = 0;
    // `=` without perms still clears, once per run of `=` (BSD's `equalopdone`).
    let mut equal_done = false;
    loop {
        let mut who = 0;
        loop {
            who |= match s.get(i).ok_or(ChmodError::Syntax)? {
                b'a' => STANDARD,
                b'u' => SUID | USER,
                b'g' => SGID | GROUP,
                b'o' => OTHER,
                _ => break,
            };
            i += 1;
        }
        // One or more `op perm*` runs; `s[i]` exists here.
        loop {
            let op = s[i];
            i += 1;
            match op {
                b'+' | b'-' => {}
                b'=' => equal_done = false,
                _ => return Err(ChmodError::Syntax),
            }
            who &= !STICKY;
            i = perms(s, i, op, &mut who, &mut equal_done, &mut cmds);
            match s.get(i) {
                None => return Ok(cmds),
                Some(b',') => {
                    i += 1;
                    break;
                }
                Some(_) => {}
            }
        }
    }
}

/// The perms after operator `op` from `s[i]`; returns where they end.
fn perms(
    s: &[u8],
    mut i: usize,
    op: u8,
    who: &mut u32,
    equal_done: &mut bool,
    cmds: &mut Vec<ModeCmd>,
) -> usize {
    let (mut perm, mut perm_x) = (0, 0);
    // `s` and `t` mean nothing for the others alone.
    let not_only_other = |who: u32| who == 0 || who & !OTHER != 0;
    loop {
        match s.get(i).copied() {
            Some(b'r') => perm |= R,
            Some(b'w') => perm |= W,
            Some(b'x') => perm |= X,
            Some(b'X') if op == b'-' => perm |= X,
            Some(b'X') => perm_x = X,
            Some(b's') if not_only_other(*who) => perm |= SUID | SGID,
            Some(b't') if not_only_other(*who) => {
                *who |= STICKY;
                perm |= STICKY;
            }
            Some(b's' | b't') => {}
            Some(c @ (b'u' | b'g' | b'o')) => {
                if perm != 0 {
                    push(cmds, op, *who, perm);
                    perm = 0;
                }
                if op == b'=' {
                    *equal_done = true;
                }
                if perm_x != 0 {
                    push(cmds, b'X', *who, perm_x);
                    perm_x = 0;
                }
                cmds.push(copy_cmd(c, *who, op));
            }
            _ => {
                if perm != 0 || (op == b'=' && !*equal_done) {
                    if op == b'=' {
                        *equal_done = true;
                    }
                    push(cmds, op, *who, perm);
                }
                if perm_x != 0 {
                    push(cmds, b'X', *who, perm_x);
                }
                return i;
            }
        }
        i += 1;
    }
}

/// `op perm` for the classes in `who` (none: all, as with umask 0).
fn push(cmds: &mut Vec<ModeCmd>, op: u8, who: u32, perm: u32) {
    let bits = if who != 0 { who & perm } else { perm };
    if op == b'=' {
        cmds.push(ModeCmd::Clear(if who != 0 { who } else { STANDARD }));
    }
    cmds.push(match op {
        b'-' => ModeCmd::Clear(bits),
        b'X' => ModeCmd::SetIfSearchable(bits),
        _ => ModeCmd::Set(bits),
    });
}

fn copy_cmd(from: u8, who: u32, op: u8) -> ModeCmd {
    let from = match from {
        b'u' => Class::User,
        b'g' => Class::Group,
        _ => Class::Other,
    };
    let to = if who == 0 {
        Classes {
            user: true,
            group: true,
            other: true,
        }
    } else {
        Classes {
            user: who & 0o400 != 0,
            group: who & 0o040 != 0,
            other: who & 0o004 != 0,
        }
    };
    ModeCmd::Copy {
        from,
        to,
        set: op != b'-',
        clear: op != b'+',
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ModeCmd::*;

    fn sym(s: &str) -> Vec<ModeCmd> {
        match Chmod::parse(s).unwrap().mode {
            ChmodMode::Symbolic(c) => c,
            ChmodMode::Octal(m) => panic!("{s} parsed as octal {m:o}"),
        }
    }

    #[test]
    fn octal_as_buildkit_reads_it() {
        for (s, m) in [("755", 0o755), ("0640", 0o640), ("4711", 0o4711), ("0", 0)] {
            let c = Chmod::parse(s).unwrap();
            assert_eq!((c.octal(), c.text()), (Some(m), s));
        }
        // A value that starts with a digit is octal or refused as not octal.
        for bad in ["9", "17777", "0o755", "7_55", "755x", "0x1ff"] {
            assert_eq!(Chmod::parse(bad), Err(ChmodError::NotOctal), "{bad}");
        }
    }

    #[test]
    fn symbolic_clauses() {
        assert_eq!(sym("u+x"), [Set(0o100)]);
        assert_eq!(sym("+x"), [Set(0o111)]);
        assert_eq!(sym("a-w"), [Clear(0o222)]);
        assert_eq!(
            sym("go=rX"),
            [Clear(0o2077), Set(0o044), SetIfSearchable(0o011)]
        );
        assert_eq!(sym("u=rwX,go=rX").len(), 6);
        // Several operators in one clause, `=` alone clears.
        assert_eq!(sym("u+x-w"), [Set(0o100), Clear(0o200)]);
        assert_eq!(sym("o="), [Clear(0o007), Set(0)]);
        assert_eq!(sym("="), [Clear(STANDARD), Set(0)]);
        // `s` is set-id for u/g, ignored for o alone; `t` only without o alone.
        assert_eq!(sym("u+s"), [Set(0o4000)]);
        assert_eq!(sym("o+s"), []);
        assert_eq!(sym("+t"), [Set(0o1000)]);
        assert_eq!(sym("o+t"), []);
        // `X` in a `-` clause is plain `x`.
        assert_eq!(sym("a-X"), [Clear(0o111)]);
        assert!(matches!(
            sym("go=u")[..],
            [Copy {
                from: Class::User,
                set: true,
                clear: true,
                ..
            }]
        ));
    }

    #[test]
    fn refused_like_setmode() {
        for bad in [
            "", "u", "rwx", "u+x,", ",u+x", "u+x,,g+x", "z+x", "u+q", "u +x", "u+x g+x", "u:x",
            "+7",
        ] {
            assert_eq!(Chmod::parse(bad), Err(ChmodError::Syntax), "{bad:?}");
        }
    }

    #[test]
    fn serializes_as_written() {
        let c = Chmod::parse("u=rwX,go=rX").unwrap();
        assert_eq!(serde_json::to_string(&c).unwrap(), r#""u=rwX,go=rX""#);
    }
}
