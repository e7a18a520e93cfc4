//! JwtAuthenticator: HS256 and RS256, expiry, not-before, pinned algorithm, forged tokens.

use realtime_core::{Authenticator, Claims, JwtAuthenticator};

const SECRET: &[u8] = b"test-secret-that-is-long-enough-for-hs256";
const PRIVATE: &[u8] = include_bytes!("fixtures/rsa_private.pem");
const PUBLIC: &[u8] = include_bytes!("fixtures/rsa_public.pem");
const OTHER_PRIVATE: &[u8] = include_bytes!("fixtures/rsa_other_private.pem");

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

#[tokio::test]
async fn hs256_round_trip_with_claims() {
    let auth = JwtAuthenticator::hs256(SECRET);
    let mut c = Claims::new("user-1", 60);
    c.username = Some("alice".into());
    c.extra.insert("role".into(), "admin".into());
    let who = auth
        .authenticate(&auth.issue(&c).expect("issue"))
        .await
        .expect("valid");
    assert_eq!(who.user_id, "user-1");
    assert_eq!(who.username.as_deref(), Some("alice"));
    assert_eq!(who.claims["role"], "admin");
    let mut named = Claims::new("user-2", 60);
    named.name = Some("Bob".into());
    let who = auth
        .verify(&auth.issue(&named).expect("issue"))
        .expect("valid");
    assert_eq!(
        who.username.as_deref(),
        Some("Bob"),
        "name is used when username is absent"
    );
}

#[tokio::test]
async fn expired_not_yet_valid_and_forged_tokens_are_refused() {
    let auth = JwtAuthenticator::hs256(SECRET).with_leeway(0);
    let mut expired = Claims::new("u", 0);
    expired.exp = now() - 10;
    let e = auth
        .authenticate(&auth.issue(&expired).expect("issue"))
        .await
        .expect_err("expired");
    assert_eq!(e.code(), "unauthenticated");
    assert!(e.to_string().contains("expired"), "{e}");
    let mut early = Claims::new("u", 600);
    early.nbf = Some(now() + 300);
    assert!(
        auth.verify(&auth.issue(&early).expect("issue"))
            .expect_err("nbf")
            .to_string()
            .contains("nbf")
    );
    let forger = JwtAuthenticator::hs256(b"another-secret-of-sufficient-length!!");
    let forged = forger.issue(&Claims::new("admin", 60)).expect("issue");
    assert!(
        auth.verify(&forged)
            .expect_err("forged")
            .to_string()
            .contains("signature")
    );
    for garbage in [
        "",
        "abc",
        "a.b.c",
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4IiwiZXhwIjo5OTk5OTk5OTk5fQ.",
    ] {
        assert_eq!(
            auth.verify(garbage).expect_err(garbage).code(),
            "unauthenticated",
            "{garbage:?}"
        );
    }
    // A token whose sub is not a valid id is refused even with a good signature.
    let bad_sub = Claims {
        sub: "has space".into(),
        ..Claims::new("x", 60)
    };
    assert!(auth.issue(&bad_sub).is_err(), "issuing refuses it too");
}

#[tokio::test]
async fn rs256_verifies_and_pins_the_algorithm() {
    let signer = JwtAuthenticator::rs256_pem(PUBLIC)
        .expect("public")
        .with_rs256_signing_pem(PRIVATE)
        .expect("private");
    let token = signer.issue(&Claims::new("user-9", 60)).expect("issue");
    let verify_only = JwtAuthenticator::rs256_pem(PUBLIC).expect("public");
    assert_eq!(verify_only.verify(&token).expect("valid").user_id, "user-9");
    assert!(
        verify_only.issue(&Claims::new("x", 60)).is_err(),
        "no private key, no signing"
    );
    let other = JwtAuthenticator::rs256_pem(PUBLIC)
        .expect("public")
        .with_rs256_signing_pem(OTHER_PRIVATE)
        .expect("other");
    assert!(
        verify_only
            .verify(&other.issue(&Claims::new("x", 60)).expect("issue"))
            .is_err(),
        "wrong key"
    );
    // An HS256 token must not pass an RS256 verifier (algorithm confusion).
    let hs = JwtAuthenticator::hs256(PUBLIC)
        .issue(&Claims::new("x", 60))
        .expect("issue");
    assert!(verify_only.verify(&hs).is_err(), "algorithm pinned");
    assert!(JwtAuthenticator::rs256_pem(b"not a pem").is_err());
    assert!(
        JwtAuthenticator::hs256(SECRET)
            .with_rs256_signing_pem(PRIVATE)
            .is_err()
    );
}

#[tokio::test]
async fn issuer_and_audience_when_configured() {
    let auth = JwtAuthenticator::hs256(SECRET)
        .with_issuer("https://idp.example")
        .with_audience("chat");
    let mut c = Claims::new("u", 60);
    assert!(
        auth.verify(&auth.issue(&c).expect("issue")).is_err(),
        "iss/aud required"
    );
    c.extra.insert("iss".into(), "https://idp.example".into());
    c.extra.insert("aud".into(), "other".into());
    assert!(
        auth.verify(&auth.issue(&c).expect("issue")).is_err(),
        "wrong aud"
    );
    c.extra.insert("aud".into(), "chat".into());
    assert!(auth.verify(&auth.issue(&c).expect("issue")).is_ok());
}
