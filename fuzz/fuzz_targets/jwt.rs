//! Token verification (`JwtAuthenticator::verify`, jsonwebtoken underneath): any string
//! is refused with `Error::Unauthenticated` and a fixed short reason, or accepted —
//! never a panic. The input is tried as a token, and as the header and claims of a token
//! signed with the right key, which takes the header and claims parsing past the
//! signature check.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;
use realtime_core::{Error, JwtAuthenticator};

const SECRET: &[u8] = b"fuzz-secret-fuzz-secret-fuzz-secret!";

fuzz_target!(|data: &[u8]| {
    let auth = JwtAuthenticator::hs256(SECRET);
    let check = |token: &str| match auth.verify(token) {
        Ok(identity) => assert!(!identity.user_id.is_empty()),
        Err(Error::Unauthenticated(reason)) => assert!(reason.len() < 64, "{reason}"),
        Err(e) => panic!("unexpected error kind: {e:?}"),
    };
    if let Ok(s) = std::str::from_utf8(data) {
        check(s);
    }
    let cut = data
        .first()
        .map_or(0, |b| usize::from(*b) % data.len().max(1));
    let (header, claims) = data.split_at(cut);
    let signing = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let key = EncodingKey::from_secret(SECRET);
    let signature =
        jsonwebtoken::crypto::sign(signing.as_bytes(), &key, Algorithm::HS256).expect("sign");
    check(&format!("{signing}.{signature}"));
});
