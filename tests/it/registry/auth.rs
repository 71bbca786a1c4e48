//! Auth and transport against the real registry: htpasswd basic auth, the
//! bearer token flow with our token server (basic credentials and identity
//! tokens, tokens reused across requests), and TLS with a CA from certs.d.

use kiln::oci::registry::{pull, push, Credential, RegistryError};
use kiln::oci::{validate, Platform};

use super::images::{basic, client, client_with, image, options};
use super::server::{Auth, Registry};
use super::token::{TokenServer, ISSUER, SERVICE};
use super::{error_chain, reference};
use crate::oci::store;

#[test]
fn htpasswd_basic_auth() {
    let reg = Registry::start(
        false,
        Auth::Htpasswd {
            user: "kiln".into(),
            password: "s3cret".into(),
        },
    );
    let (_d, src) = store();
    let img = image(&src, "basic", &[10_000], &Platform::host());
    let r = reference(&reg, "private/app:1");
    push(&client(basic("kiln", "s3cret")), &src, &img, &r, None).unwrap();
    let (_d2, dst) = store();
    let got = pull(
        &client(basic("kiln", "s3cret")),
        &dst,
        &r,
        &Platform::host(),
    )
    .unwrap();
    validate(&dst, &got.manifest).unwrap();

    for cred in [basic("kiln", "wrong"), None] {
        let (_d3, dst) = store();
        let e = pull(&client(cred), &dst, &r, &Platform::host()).unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(e, RegistryError::Unauthorized { status: 401, .. }),
            "{msg}"
        );
        assert!(msg.contains("UNAUTHORIZED"), "{msg}");
        assert!(!msg.contains("wrong"), "a password leaked: {msg}");
    }
}

fn token_registry(dir: &std::path::Path) -> (TokenServer, Registry) {
    let tokens = TokenServer::start(dir, "kiln", "tokpass");
    let reg = Registry::start(
        false,
        Auth::Token {
            realm: tokens.realm.clone(),
            service: SERVICE.into(),
            issuer: ISSUER.into(),
            cert: tokens.cert.clone(),
        },
    );
    (tokens, reg)
}

/// Push and pull through the token flow; one token per scope serves every
/// request of a push (or a pull).
#[test]
fn bearer_token_flow_reuses_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let (tokens, reg) = token_registry(dir.path());
    let (_d, src) = store();
    let img = image(&src, "bearer", &[10_000, 20_000, 30_000], &Platform::host());
    let r = reference(&reg, "team/app:1");
    let c = client(basic("kiln", "tokpass"));
    push(&c, &src, &img, &r, None).unwrap();
    assert_eq!(
        tokens.request_count(),
        1,
        "{:?}",
        tokens.requests.lock().unwrap()
    );
    let (_d2, dst) = store();
    let got = pull(&c, &dst, &r, &Platform::host()).unwrap();
    validate(&dst, &got.manifest).unwrap();
    let reqs = tokens.requests.lock().unwrap().clone();
    assert_eq!(reqs.len(), 2, "pull needs its own (pull) scope: {reqs:?}");
    assert!(
        reqs[0]
            .1
            .contains("scope=repository%3Ateam%2Fapp%3Apull%2Cpush"),
        "{reqs:?}"
    );
    assert!(reqs[1].1.contains("service=kiln-test-registry"), "{reqs:?}");

    // An identity token is exchanged with grant_type=refresh_token.
    let id = Some(Credential::IdentityToken(
        super::token::REFRESH_TOKEN.into(),
    ));
    let (_d3, dst) = store();
    pull(&client(id), &dst, &r, &Platform::host()).unwrap();
    let last = tokens.requests.lock().unwrap().last().cloned().unwrap();
    assert_eq!(last.0, "POST");
    assert!(last.1.contains("grant_type=refresh_token"), "{last:?}");

    // Wrong credentials: the token server refuses, and the error says where.
    let (_d4, dst) = store();
    let e = pull(&client(basic("kiln", "nope")), &dst, &r, &Platform::host()).unwrap_err();
    let chain = error_chain(&e);
    assert!(matches!(e, RegistryError::Token { .. }), "{chain}");
    assert!(
        chain.contains(&tokens.realm) && chain.contains("UNAUTHORIZED"),
        "{chain}"
    );
    assert!(!chain.contains("nope"), "a password leaked: {chain}");
}

/// HTTPS with a CA trusted only through certs.d; without it the pull fails.
#[test]
fn tls_with_a_ca_from_certs_d() {
    let reg = Registry::start(true, Auth::None);
    let certs_d = reg.certs_d.clone().unwrap();
    let (_d, src) = store();
    let img = image(&src, "tls", &[10_000], &Platform::host());
    let r = reference(&reg, "secure:1");
    let c = client_with(None, options(Some(&certs_d)));
    push(&c, &src, &img, &r, None).unwrap();
    let (_d2, dst) = store();
    let got = pull(&c, &dst, &r, &Platform::host()).unwrap();
    validate(&dst, &got.manifest).unwrap();

    // Without the CA: the certificate error, not a plain-HTTP fallback.
    let (_d3, dst) = store();
    let e = pull(&client(None), &dst, &r, &Platform::host()).unwrap_err();
    let chain = error_chain(&e);
    assert!(matches!(e, RegistryError::Transport { .. }), "{chain}");
    assert!(
        chain.contains(&format!("https://{}/v2/", reg.host)),
        "{chain}"
    );
    assert!(chain.to_lowercase().contains("certificate"), "{chain}");
}

/// What `kiln login` asks: a bearer registry accepts the right password (an
/// unscoped token fetched with it) and refuses a wrong one; basic likewise.
#[test]
fn check_credentials_through_token_and_basic_auth() {
    let dir = tempfile::tempdir().unwrap();
    let (tokens, reg) = token_registry(dir.path());
    let check = |c| client(c).check_credentials(&reg.host);
    check(basic("kiln", "tokpass")).unwrap();
    let before = tokens.request_count();
    let err = check(basic("kiln", "wrong")).unwrap_err();
    assert!(
        tokens.request_count() > before,
        "the token server was asked"
    );
    assert!(!error_chain(&err).contains("wrong"), "a password leaked");

    let htpasswd = Registry::start(
        false,
        Auth::Htpasswd {
            user: "kiln".into(),
            password: "s3cret".into(),
        },
    );
    let check = |c| client(c).check_credentials(&htpasswd.host);
    check(basic("kiln", "s3cret")).unwrap();
    let err = check(basic("kiln", "nope")).unwrap_err();
    assert!(
        error_chain(&err).contains("UNAUTHORIZED"),
        "{}",
        error_chain(&err)
    );
    assert!(check(None).is_err(), "anonymous is not a login");
}
