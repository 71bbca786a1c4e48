//! One `auths` entry: reading the credential out of it and writing one in.
//!
//! An entry holds `auth` (base64 of `user:password`), or `username` and
//! `password`, and maybe an `identitytoken`; other fields (`email`, …) are
//! kept untouched when kiln rewrites the entry. Secrets never reach an error
//! message.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::super::Credential;

/// The fields of an entry kiln reads; unknown ones are ignored here and kept
/// in the file by working on the raw JSON.
#[derive(Default, Deserialize)]
pub struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

impl std::fmt::Debug for AuthEntry {
    // Which fields are there, never what they hold.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let present = |field: &Option<String>| field.as_ref().map(|_| "<redacted>");
        f.debug_struct("AuthEntry")
            .field("auth", &present(&self.auth))
            .field("username", &self.username)
            .field("password", &present(&self.password))
            .field("identitytoken", &present(&self.identitytoken))
            .finish()
    }
}

/// The fields that carry a secret: all of them go when an entry is rewritten,
/// so a stale password never outlives a new token.
const SECRET_FIELDS: [&str; 5] = [
    "auth",
    "username",
    "password",
    "identitytoken",
    "registrytoken",
];

/// Why an `auth` field could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadAuth {
    /// Not standard base64.
    #[error("auth is not base64")]
    NotBase64,
    /// Decoded, but not UTF-8 text.
    #[error("decoded auth is not utf-8")]
    NotUtf8,
    /// No `:` between user name and password.
    #[error("decoded auth has no ':' between user name and password")]
    NoColon,
}

impl AuthEntry {
    /// The credential this entry holds, if any.
    // COMPAT(docker): an identity token wins over a password (docker sends
    // the token when both are present); `auth` wins over separate
    // `username`/`password` fields, as docker's decodeAuth overwrites them.
    pub fn credential(&self) -> Result<Option<Credential>, BadAuth> {
        if let Some(token) = self.identitytoken.as_deref().filter(|t| !t.is_empty()) {
            return Ok(Some(Credential::IdentityToken(token.to_string())));
        }
        if let Some(auth) = self.auth.as_deref().filter(|a| !a.is_empty()) {
            let (username, password) = decode_auth(auth)?;
            return Ok(Some(Credential::Basic { username, password }));
        }
        match (self.username.as_deref(), self.password.as_deref()) {
            (Some(u), Some(p)) if !u.is_empty() || !p.is_empty() => Ok(Some(Credential::Basic {
                username: u.to_string(),
                password: p.to_string(),
            })),
            _ => Ok(None),
        }
    }
}

/// Rewrites `entry` to hold `credential` (or no secret at all, as docker
/// leaves an entry whose secret lives in a credential helper), keeping its
/// other fields.
pub fn write_credential(entry: &mut Map<String, Value>, credential: Option<&Credential>) {
    for field in SECRET_FIELDS {
        entry.remove(field);
    }
    match credential {
        Some(Credential::Basic { username, password }) => {
            let auth = encode(format!("{username}:{password}").as_bytes());
            entry.insert("auth".into(), Value::String(auth));
        }
        Some(Credential::IdentityToken(token)) => {
            entry.insert("identitytoken".into(), Value::String(token.clone()));
        }
        None => {}
    }
}

/// Decodes an `auth` field into user name and password.
fn decode_auth(auth: &str) -> Result<(String, String), BadAuth> {
    let bytes = decode(auth.trim()).ok_or(BadAuth::NotBase64)?;
    let text = String::from_utf8(bytes).map_err(|_| BadAuth::NotUtf8)?;
    let (user, password) = text.split_once(':').ok_or(BadAuth::NoColon)?;
    // COMPAT(docker): decodeAuth trims NULs some old writers padded with.
    Ok((user.to_string(), password.trim_matches('\0').to_string()))
}

/// Standard base64 as Go's `base64.StdEncoding` writes it; reading also takes
/// it with its padding dropped (some writers drop it) and, as Go does, with
/// stray bits in the last character.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

fn encode(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

fn decode(text: &str) -> Option<Vec<u8>> {
    // Padding is not checked at all (surplus `=` included), as the
    // hand-written decoder this replaced read it.
    BASE64.decode(text.trim_end_matches('=')).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(json: &str) -> AuthEntry {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn surplus_padding_is_read_as_before() {
        assert_eq!(decode("Zm9v=").unwrap(), b"foo");
        assert_eq!(decode("Zm9vYmE==").unwrap(), b"fooba");
    }

    #[test]
    fn base64_round_trips_every_padding() {
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("user:pa:ss", "dXNlcjpwYTpzcw=="),
        ] {
            assert_eq!(encode(plain.as_bytes()), coded);
            assert_eq!(decode(coded).unwrap(), plain.as_bytes());
        }
        assert_eq!(decode("Zg").unwrap(), b"f");
        assert_eq!(decode("Z!=="), None);
        assert_eq!(decode("Z"), None);
    }

    #[test]
    fn auth_splits_at_the_first_colon() {
        let e = entry(r#"{"auth":"dXNlcjpwYTpzcw=="}"#);
        assert_eq!(
            e.credential().unwrap(),
            Some(Credential::Basic {
                username: "user".into(),
                password: "pa:ss".into()
            })
        );
    }

    #[test]
    fn username_and_password_fields_are_read() {
        let e = entry(r#"{"username":"u","password":"p"}"#);
        assert_eq!(
            e.credential().unwrap(),
            Some(Credential::Basic {
                username: "u".into(),
                password: "p".into()
            })
        );
    }

    #[test]
    fn identity_token_wins() {
        let e = entry(r#"{"auth":"dTpw","identitytoken":"tok"}"#);
        assert_eq!(
            e.credential().unwrap(),
            Some(Credential::IdentityToken("tok".into()))
        );
    }

    #[test]
    fn empty_entries_hold_nothing_and_bad_auth_says_why() {
        assert_eq!(entry("{}").credential().unwrap(), None);
        assert_eq!(entry(r#"{"auth":""}"#).credential().unwrap(), None);
        assert_eq!(
            entry(r#"{"auth":"not base64!"}"#).credential(),
            Err(BadAuth::NotBase64)
        );
        let no_colon = encode(b"justauser");
        assert_eq!(
            entry(&format!(r#"{{"auth":"{no_colon}"}}"#)).credential(),
            Err(BadAuth::NoColon)
        );
    }

    #[test]
    fn rewriting_keeps_other_fields_and_drops_old_secrets() {
        let mut e: Map<String, Value> =
            serde_json::from_str(r#"{"email":"a@b","password":"old","identitytoken":"t"}"#)
                .unwrap();
        let basic = Credential::Basic {
            username: "u".into(),
            password: "p".into(),
        };
        write_credential(&mut e, Some(&basic));
        assert_eq!(
            Value::Object(e.clone()),
            serde_json::json!({"email":"a@b","auth":"dTpw"})
        );
        write_credential(&mut e, None);
        assert_eq!(Value::Object(e), serde_json::json!({"email":"a@b"}));
    }
}
