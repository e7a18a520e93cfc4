//! `POST /api/broadcasting/auth`: who may join which private and presence channel, and
//! the signature that lets them (seed 003, "Broadcasting auth endpoint").
//!
//! The caller sends `Authorization: Bearer <JWT>` and `{socket_id, channel_name}`, as a
//! form (pusher-js, Echo) or as JSON (the seed's axios example). The rules:
//!
//! | channel | who |
//! |---|---|
//! | `private-booking.{user_id}` | that user only (the token's `sub`) |
//! | `private-admin` | tokens with `"role": "admin"` |
//! | `private-staff` | tokens with `"role"` `admin` or `staff` |
//! | `presence-…` | any signed-in user, as `{user_id: sub, user_info: {id, name}}` |
//! | `private-encrypted-…` | as the same name without `encrypted-`, when a master key is set |
//!
//! `POST /api/broadcasting/user-auth` signs `pusher.signin()` for the token's user
//! (`{auth, user_data}`), so the HTTP API's `terminate_connections` and the
//! `#server-to-user-{id}` channel reach them.
//!
//! Answers: 200 `{auth}` (`channel_data` for presence, `shared_secret` for encrypted
//! channels), 401 `{message}` for a missing or bad token, 403 for a channel the user may
//! not join, 400 for a malformed request.

use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use realtime_core::{Authenticator, Identity};
use realtime_pusher::sign;
use serde::Deserialize;
use serde_json::{Value, json};

/// The request's fields (`channel_name` is empty for user authentication).
#[derive(Debug, Deserialize)]
struct AuthRequest {
    socket_id: String,
    #[serde(default)]
    channel_name: String,
}

/// A refusal: status and message (`{"message": …}`, as Laravel answers).
struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "message": self.1 }))).into_response()
    }
}

fn forbidden(message: impl Into<String>) -> Refusal {
    Refusal(StatusCode::FORBIDDEN, message.into())
}

fn bad_request(message: impl Into<String>) -> Refusal {
    Refusal(StatusCode::BAD_REQUEST, message.into())
}

/// The body as a form or as JSON, by its `Content-Type`.
fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<AuthRequest, Refusal> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    if json {
        return serde_json::from_slice(body)
            .map_err(|e| bad_request(format!("invalid JSON body: {e}")));
    }
    let mut socket_id = None;
    let mut channel_name = None;
    for (k, v) in form_urlencoded::parse(body) {
        match k.as_ref() {
            "socket_id" => socket_id = Some(v.into_owned()),
            "channel_name" => channel_name = Some(v.into_owned()),
            _ => {}
        }
    }
    match socket_id {
        Some(socket_id) => Ok(AuthRequest {
            socket_id,
            channel_name: channel_name.unwrap_or_default(),
        }),
        None => Err(bad_request("socket_id is required")),
    }
}

/// Whether `s` is a Pusher socket id: digits, a dot, digits.
fn is_socket_id(s: &str) -> bool {
    s.split_once('.').is_some_and(|(a, b)| {
        !a.is_empty()
            && !b.is_empty()
            && a.bytes().all(|c| c.is_ascii_digit())
            && b.bytes().all(|c| c.is_ascii_digit())
    })
}

/// The token's `role` claim.
fn role(identity: &Identity) -> &str {
    identity
        .claims
        .get("role")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Whether `identity` may join private channel `name` (without `private-`).
fn may_join_private(identity: &Identity, name: &str) -> Result<(), Refusal> {
    let allowed = match name {
        "admin" => role(identity) == "admin",
        "staff" => matches!(role(identity), "admin" | "staff"),
        _ => match name.strip_prefix("booking.") {
            Some(owner) => owner == identity.user_id,
            None => false,
        },
    };
    if allowed {
        Ok(())
    } else {
        Err(forbidden(format!(
            "user {} may not join private-{name}",
            identity.user_id
        )))
    }
}

/// `POST /api/broadcasting/auth`.
pub async fn broadcasting_auth(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match authorize(&st, &headers, &body).await {
        Ok(v) => Json(v).into_response(),
        Err(r) => r.into_response(),
    }
}

/// The bearer token's identity.
async fn identity(st: &AppState, headers: &HeaderMap) -> Result<Identity, Refusal> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Refusal(StatusCode::UNAUTHORIZED, "Unauthenticated.".into()))?;
    st.jwt
        .authenticate(token)
        .await
        .map_err(|_| Refusal(StatusCode::UNAUTHORIZED, "Unauthenticated.".into()))
}

/// The request's body, with its socket id checked.
fn request(headers: &HeaderMap, body: &[u8]) -> Result<AuthRequest, Refusal> {
    let req = parse_body(headers, body)?;
    if !is_socket_id(&req.socket_id) {
        return Err(bad_request("socket_id must look like 1234.5678"));
    }
    Ok(req)
}

/// `POST /api/broadcasting/user-auth`: the signature of `pusher.signin()` for the
/// token's user: `{auth, user_data}` with `user_data` `{"id": sub, "user_info": {"name"}}`.
pub async fn user_auth(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let answer = async {
        let identity = identity(&st, &headers).await?;
        let req = request(&headers, &body)?;
        let name = identity
            .username
            .clone()
            .unwrap_or_else(|| identity.user_id.clone());
        let user_data = json!({"id": identity.user_id, "user_info": {"name": name}}).to_string();
        Ok::<_, Refusal>(json!({
            "auth": sign::user_auth(&st.app, &req.socket_id, &user_data),
            "user_data": user_data,
        }))
    };
    match answer.await {
        Ok(v) => Json(v).into_response(),
        Err(r) => r.into_response(),
    }
}

async fn authorize(st: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Value, Refusal> {
    let identity = identity(st, headers).await?;
    let req = request(headers, body)?;
    if req.channel_name.is_empty() {
        return Err(bad_request("channel_name is required"));
    }
    let channel = req.channel_name.as_str();
    if realtime_pusher::dialect::pusher_channel(channel).is_err() {
        return Err(bad_request("invalid channel name"));
    }
    let app = &st.app;
    if let Some(rest) = channel.strip_prefix("private-encrypted-") {
        may_join_private(&identity, rest)?;
        let key = st
            .encryption_master_key
            .as_deref()
            .ok_or_else(|| forbidden("encrypted channels are not configured on this server"))?;
        return Ok(json!({
            "auth": sign::channel_auth(app, &req.socket_id, channel, None),
            "shared_secret": sign::shared_secret(key, channel),
        }));
    }
    if let Some(rest) = channel.strip_prefix("private-") {
        may_join_private(&identity, rest)?;
        return Ok(json!({ "auth": sign::channel_auth(app, &req.socket_id, channel, None) }));
    }
    if channel.starts_with("presence-") {
        let name = identity
            .username
            .clone()
            .unwrap_or_else(|| identity.user_id.clone());
        let data = json!({"user_id": identity.user_id, "user_info": {"id": identity.user_id, "name": name}}).to_string();
        return Ok(json!({
            "auth": sign::channel_auth(app, &req.socket_id, channel, Some(&data)),
            "channel_data": data,
        }));
    }
    Err(bad_request("public channels need no authorization"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, role: &str) -> Identity {
        Identity {
            user_id: id.into(),
            username: None,
            claims: json!({"sub": id, "role": role}),
        }
    }

    #[test]
    fn channel_rules() {
        assert!(may_join_private(&user("7", ""), "booking.7").is_ok());
        assert!(may_join_private(&user("7", ""), "booking.8").is_err());
        assert!(may_join_private(&user("7", ""), "booking.").is_err());
        assert!(may_join_private(&user("7", ""), "admin").is_err());
        assert!(may_join_private(&user("7", "admin"), "admin").is_ok());
        assert!(may_join_private(&user("7", "staff"), "staff").is_ok());
        assert!(may_join_private(&user("7", "staff"), "admin").is_err());
        assert!(may_join_private(&user("7", "admin"), "other").is_err());
    }

    #[test]
    fn socket_ids() {
        assert!(is_socket_id("123.456"));
        for bad in ["123", "a.1", "1.", ".1", "1.2.3", ""] {
            assert!(!is_socket_id(bad), "{bad}");
        }
    }

    #[test]
    fn bodies_as_forms_or_json() {
        let mut h = HeaderMap::new();
        let r = parse_body(&h, b"socket_id=1.2&channel_name=private-booking.7")
            .ok()
            .expect("form");
        assert_eq!(
            (r.socket_id.as_str(), r.channel_name.as_str()),
            ("1.2", "private-booking.7")
        );
        h.insert(
            header::CONTENT_TYPE,
            "application/json".parse().expect("header"),
        );
        let r = parse_body(&h, br#"{"socket_id":"1.2","channel_name":"presence-x"}"#)
            .ok()
            .expect("json");
        assert_eq!(r.channel_name, "presence-x");
        assert!(parse_body(&h, br#"{"channel_name":"x"}"#).is_err());
        assert!(parse_body(&HeaderMap::new(), b"channel_name=x").is_err());
    }
}
