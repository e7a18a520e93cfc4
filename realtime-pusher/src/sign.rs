//! Pusher's HMAC-SHA256 signatures (Pusher Channels, *Authenticating channels*,
//! *Authenticating users* and *HTTP API reference: Authentication*).
//!
//! | what | signed string | form |
//! |---|---|---|
//! | private channel | `<socket_id>:<channel>` | `"<key>:<hex>"` |
//! | presence channel | `<socket_id>:<channel>:<channel_data>` | `"<key>:<hex>"` |
//! | user (`pusher:signin`) | `<socket_id>::user::<user_data>` | `"<key>:<hex>"` |
//! | HTTP API request | `<METHOD>\n<path>\n<query>` | `auth_signature=<hex>` |
//!
//! The HTTP API's `<query>` is every query parameter but `auth_signature`, keys
//! lower-cased, sorted by key, as `key=value` (values decoded) joined by `&`.
//! Checks compare in constant time.

use crate::app::App;
use hmac::{Hmac, KeyInit, Mac};
use md5::Digest;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &str, parts: &[&str]) -> HmacSha256 {
    // HMAC takes a key of any length.
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    for p in parts {
        mac.update(p.as_bytes());
    }
    mac
}

/// Lower-case hex HMAC-SHA256 of the concatenated `parts` under `secret`.
pub fn hmac_hex(secret: &str, parts: &[&str]) -> String {
    hex::encode(mac(secret, parts).finalize().into_bytes())
}

/// Whether `signature_hex` is the HMAC-SHA256 of `parts` under `secret` (constant time).
fn verify_hex(secret: &str, parts: &[&str], signature_hex: &str) -> bool {
    match hex::decode(signature_hex) {
        Ok(sig) => mac(secret, parts).verify_slice(&sig).is_ok(),
        Err(_) => false,
    }
}

/// The `auth` a client sends to subscribe to a private (`channel_data: None`) or presence
/// channel: `"<key>:<hex HMAC-SHA256 of socket_id:channel[:channel_data]>"`. What an auth
/// endpoint such as seed 003's `/api/broadcasting/auth` answers.
pub fn channel_auth(
    app: &App,
    socket_id: &str,
    channel: &str,
    channel_data: Option<&str>,
) -> String {
    let sig = match channel_data {
        Some(data) => hmac_hex(&app.secret, &[socket_id, ":", channel, ":", data]),
        None => hmac_hex(&app.secret, &[socket_id, ":", channel]),
    };
    format!("{}:{sig}", app.key)
}

/// Whether `auth` is [`channel_auth`] of these values.
pub fn verify_channel_auth(
    app: &App,
    socket_id: &str,
    channel: &str,
    channel_data: Option<&str>,
    auth: &str,
) -> bool {
    let Some(sig) = auth
        .strip_prefix(app.key.as_str())
        .and_then(|s| s.strip_prefix(':'))
    else {
        return false;
    };
    match channel_data {
        Some(data) => verify_hex(&app.secret, &[socket_id, ":", channel, ":", data], sig),
        None => verify_hex(&app.secret, &[socket_id, ":", channel], sig),
    }
}

/// The `auth` of a `pusher:signin`: `"<key>:<hex HMAC-SHA256 of socket_id::user::user_data>"`.
pub fn user_auth(app: &App, socket_id: &str, user_data: &str) -> String {
    format!(
        "{}:{}",
        app.key,
        hmac_hex(&app.secret, &[socket_id, "::user::", user_data])
    )
}

/// Whether `auth` is [`user_auth`] of these values.
pub fn verify_user_auth(app: &App, socket_id: &str, user_data: &str, auth: &str) -> bool {
    auth.strip_prefix(app.key.as_str())
        .and_then(|s| s.strip_prefix(':'))
        .is_some_and(|sig| verify_hex(&app.secret, &[socket_id, "::user::", user_data], sig))
}

/// The `shared_secret` an auth endpoint returns for a `private-encrypted-…` channel
/// (Pusher Channels, *End-to-end encryption*): base64 of SHA-256 over the channel name
/// followed by the app's 32-byte encryption master key. Clients encrypt and decrypt
/// payloads with it; the server relays them unread.
pub fn shared_secret(master_key: &[u8], channel: &str) -> String {
    use base64::Engine;
    let mut h = Sha256::new();
    h.update(channel.as_bytes());
    h.update(master_key);
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// Lower-case hex MD5 of an HTTP API request body (`body_md5`).
pub fn body_md5(body: &[u8]) -> String {
    hex::encode(md5::Md5::digest(body))
}

/// The string an HTTP API request signs: `"<METHOD>\n<path>\n<query>"` with `query` as the
/// [module](self) says, from `params` (decoded pairs, `auth_signature` left out here).
pub fn api_string_to_sign<'a>(
    method: &str,
    path: &str,
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> String {
    let mut pairs: Vec<(String, &str)> = params
        .into_iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("auth_signature"))
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    pairs.sort();
    let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(
        "{}\n{path}\n{}",
        method.to_ascii_uppercase(),
        query.join("&")
    )
}

/// The `auth_signature` of an HTTP API request ([`api_string_to_sign`]).
pub fn api_signature<'a>(
    secret: &str,
    method: &str,
    path: &str,
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> String {
    hmac_hex(secret, &[&api_string_to_sign(method, path, params)])
}

/// Whether `signature` is the request's [`api_signature`] (constant time).
pub fn verify_api_signature<'a>(
    secret: &str,
    method: &str,
    path: &str,
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
    signature: &str,
) -> bool {
    verify_hex(
        secret,
        &[&api_string_to_sign(method, path, params)],
        signature,
    )
}

/// The query string of a signed HTTP API request: `params` plus `auth_key`,
/// `auth_timestamp` (`timestamp`, Unix seconds), `auth_version=1.0`, `body_md5` (when
/// `body` is not empty) and `auth_signature`. What a Pusher server library (such as
/// Laravel's pusher-php-server) sends; used by tests, benches and examples.
pub fn signed_query(
    app: &App,
    method: &str,
    path: &str,
    params: &[(&str, &str)],
    body: &[u8],
    timestamp: u64,
) -> String {
    let ts = timestamp.to_string();
    let md5 = body_md5(body);
    let mut all: Vec<(&str, &str)> = params.to_vec();
    all.push(("auth_key", &app.key));
    all.push(("auth_timestamp", &ts));
    all.push(("auth_version", "1.0"));
    if !body.is_empty() {
        all.push(("body_md5", &md5));
    }
    let sig = api_signature(&app.secret, method, path, all.iter().copied());
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in &all {
        q.append_pair(k, v);
    }
    q.append_pair("auth_signature", &sig);
    q.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked examples of Pusher's documentation (key 278d425bdf160c739803, secret
    /// 7ad3773142a6692b25b8).
    fn docs_app() -> App {
        App::new("3", "278d425bdf160c739803", "7ad3773142a6692b25b8").expect("app")
    }

    #[test]
    fn private_channel_signature_matches_pushers_docs() {
        let app = docs_app();
        let auth = channel_auth(&app, "1234.1234", "private-foobar", None);
        assert_eq!(
            auth,
            "278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
        );
        assert!(verify_channel_auth(
            &app,
            "1234.1234",
            "private-foobar",
            None,
            &auth
        ));
        assert!(!verify_channel_auth(
            &app,
            "1234.1235",
            "private-foobar",
            None,
            &auth
        ));
        assert!(!verify_channel_auth(
            &app,
            "1234.1234",
            "private-foobaz",
            None,
            &auth
        ));
        let other_key = auth.replacen("278d", "378d", 1);
        assert!(!verify_channel_auth(
            &app,
            "1234.1234",
            "private-foobar",
            None,
            &other_key
        ));
        assert!(!verify_channel_auth(
            &app,
            "1234.1234",
            "private-foobar",
            None,
            "278d425bdf160c739803:zz"
        ));
        assert!(!verify_channel_auth(
            &app,
            "1234.1234",
            "private-foobar",
            None,
            ""
        ));
    }

    #[test]
    fn presence_channel_signature_signs_the_channel_data() {
        let app = docs_app();
        let data = r#"{"user_id":10,"user_info":{"name":"Mr. Channels"}}"#;
        let auth = channel_auth(&app, "1234.1234", "presence-foobar", Some(data));
        // The private channel's HMAC (checked against Pusher's example above) over
        // "<socket_id>:<channel>:<channel_data>".
        let whole = format!("1234.1234:presence-foobar:{data}");
        assert_eq!(
            auth,
            format!("278d425bdf160c739803:{}", hmac_hex(&app.secret, &[&whole]))
        );
        assert!(verify_channel_auth(
            &app,
            "1234.1234",
            "presence-foobar",
            Some(data),
            &auth
        ));
        let forged = r#"{"user_id":11,"user_info":{"name":"Mr. Channels"}}"#;
        assert!(!verify_channel_auth(
            &app,
            "1234.1234",
            "presence-foobar",
            Some(forged),
            &auth
        ));
    }

    #[test]
    fn api_signature_matches_pushers_docs() {
        let app = docs_app();
        let body = br#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;
        assert_eq!(body_md5(body), "ec365a775a4cd0599faeb73354201b6f");
        let params = [
            ("auth_key", "278d425bdf160c739803"),
            ("auth_timestamp", "1353088179"),
            ("auth_version", "1.0"),
            ("body_md5", "ec365a775a4cd0599faeb73354201b6f"),
        ];
        let sig = api_signature(&app.secret, "POST", "/apps/3/events", params);
        assert_eq!(
            sig,
            "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
        );
        // Order and key case of the parameters do not matter; auth_signature is left out.
        let shuffled = [
            ("auth_signature", "whatever"),
            ("BODY_MD5", "ec365a775a4cd0599faeb73354201b6f"),
            ("auth_version", "1.0"),
            ("auth_timestamp", "1353088179"),
            ("auth_key", "278d425bdf160c739803"),
        ];
        assert!(verify_api_signature(
            &app.secret,
            "post",
            "/apps/3/events",
            shuffled,
            &sig
        ));
        assert!(!verify_api_signature(
            &app.secret,
            "POST",
            "/apps/4/events",
            params,
            &sig
        ));
    }

    #[test]
    fn signed_queries_verify() {
        let app = docs_app();
        let body = br#"{"name":"x","channel":"c","data":"{}"}"#;
        let q = signed_query(&app, "POST", "/apps/3/events", &[], body, 1_700_000_000);
        let pairs: Vec<(String, String)> =
            form_urlencoded::parse(q.as_bytes()).into_owned().collect();
        let sig = pairs
            .iter()
            .find(|(k, _)| k == "auth_signature")
            .map(|(_, v)| v.clone());
        let params = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        assert!(verify_api_signature(
            &app.secret,
            "POST",
            "/apps/3/events",
            params,
            &sig.expect("sig")
        ));
        assert!(q.contains("body_md5="), "{q}");
    }

    #[test]
    fn shared_secrets_are_per_channel() {
        let key = [7u8; 32];
        let a = shared_secret(&key, "private-encrypted-a");
        assert_eq!(a.len(), 44, "base64 of 32 bytes");
        assert_ne!(a, shared_secret(&key, "private-encrypted-b"));
        assert_ne!(a, shared_secret(&[8u8; 32], "private-encrypted-a"));
        // SHA-256("private-encrypted-a" || key), computed independently of this module.
        let mut h = Sha256::new();
        h.update([b"private-encrypted-a".as_slice(), &key].concat());
        use base64::Engine;
        assert_eq!(
            a,
            base64::engine::general_purpose::STANDARD.encode(h.finalize())
        );
    }

    #[test]
    fn user_signatures() {
        let app = docs_app();
        let data = r#"{"id":"7","name":"Ana"}"#;
        let auth = user_auth(&app, "1.2", data);
        assert!(verify_user_auth(&app, "1.2", data, &auth));
        assert!(!verify_user_auth(&app, "1.3", data, &auth));
        // A channel signature is not a user signature.
        assert!(!verify_user_auth(
            &app,
            "1.2",
            data,
            &channel_auth(&app, "1.2", data, None)
        ));
    }
}
