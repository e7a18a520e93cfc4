//! Pusher Channels protocol 7 frames: what a client sends, what the server answers, and
//! the protocol's error and close codes (Pusher Channels, *Pusher Channels Protocol*;
//! `shared/client-protocols.md` §2 records what pusher-js 8 and laravel-echo 2 send).
//!
//! Every frame is a JSON object `{"event", "channel"?, "data"}`. From the client `data` is
//! a JSON object; from the server it is always a JSON **string** holding JSON, as Pusher
//! clients other than pusher-js require.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// Close codes and `pusher:error` codes (Pusher protocol, *Error codes*). pusher-js does
/// not reconnect after 4000–4099, backs off after 4100–4199, reconnects at once after
/// 4200–4299.
pub mod code {
    /// The app key in `/app/{key}` is unknown.
    pub const APP_UNKNOWN: u16 = 4001;
    /// Over the app's connection quota.
    pub const OVER_QUOTA: u16 = 4004;
    /// The path is not `/app/{key}`.
    pub const PATH_NOT_FOUND: u16 = 4005;
    /// The `protocol` parameter is not a number.
    pub const INVALID_VERSION: u16 = 4006;
    /// A protocol version this server does not speak.
    pub const UNSUPPORTED_PROTOCOL: u16 = 4007;
    /// No `protocol` parameter.
    pub const NO_PROTOCOL: u16 = 4008;
    /// The connection is not authorized (refused, or terminated by the HTTP API).
    pub const UNAUTHORIZED: u16 = 4009;
    /// The server is over capacity: reconnect after a back-off (a slow consumer).
    pub const OVER_CAPACITY: u16 = 4100;
    /// Reconnect now (the server is shutting down).
    pub const RECONNECT: u16 = 4200;
    /// The client sent nothing, not even a pong, for too long.
    pub const PONG_NOT_RECEIVED: u16 = 4201;
    /// Client events over the app's rate limit (`pusher:error` only; the connection stays).
    pub const CLIENT_EVENT_RATE_LIMIT: u16 = 4301;
}

/// The oldest and newest protocol versions served (`?protocol=`). pusher-js 8 sends 7.
pub const PROTOCOLS: std::ops::RangeInclusive<u32> = 5..=7;

/// A frame from the client, its `data` kept as JSON text.
#[derive(Debug, Deserialize)]
pub struct ClientFrame<'a> {
    /// `pusher:subscribe`, `pusher:ping`, `client-…`, ….
    #[serde(borrow)]
    pub event: Cow<'a, str>,
    /// The channel of a client event.
    #[serde(borrow, default)]
    pub channel: Option<Cow<'a, str>>,
    /// The payload: an object from pusher-js (some clients send it as a JSON string).
    #[serde(borrow, default)]
    pub data: Option<&'a RawValue>,
}

/// `pusher:subscribe`'s `data`.
#[derive(Debug, Deserialize)]
pub struct Subscribe {
    /// The channel name.
    pub channel: String,
    /// `"<key>:<signature>"` for private and presence channels; `""` or absent for public ones.
    #[serde(default)]
    pub auth: Option<String>,
    /// Presence channels: the signed `{"user_id", "user_info"}` as a JSON string.
    #[serde(default)]
    pub channel_data: Option<String>,
}

/// `pusher:unsubscribe`'s `data`.
#[derive(Debug, Deserialize)]
pub struct Unsubscribe {
    /// The channel name.
    pub channel: String,
}

/// `pusher:signin`'s `data`.
#[derive(Debug, Deserialize)]
pub struct Signin {
    /// `"<key>:<signature>"` over `socket_id::user::user_data`.
    pub auth: String,
    /// The user as a JSON string, with at least a string `id`.
    pub user_data: String,
}

/// The payload of a client frame as `T`: `data` is an object, or a string holding one.
///
/// # Errors
/// serde_json's, when `data` is absent or has the wrong shape.
pub fn data_of<T: serde::de::DeserializeOwned>(data: Option<&RawValue>) -> serde_json::Result<T> {
    let raw = data.map_or("null", RawValue::get);
    match serde_json::from_str::<T>(raw) {
        Ok(t) => Ok(t),
        Err(e) => match serde_json::from_str::<String>(raw) {
            Ok(inner) => serde_json::from_str(&inner),
            Err(_) => Err(e),
        },
    }
}

/// Append `s` as a JSON string literal.
fn push_str(out: &mut Vec<u8>, s: &str) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// `{"event":…,"channel":…,"data":"<data_json>"}`: `data_json` (JSON text) sent as a
/// JSON string, `channel` only when given.
pub fn frame(event: &str, channel: Option<&str>, data_json: &str) -> Bytes {
    let mut out = Vec::with_capacity(48 + event.len() + data_json.len() * 5 / 4);
    out.extend_from_slice(b"{\"event\":");
    push_str(&mut out, event);
    if let Some(c) = channel {
        out.extend_from_slice(b",\"channel\":");
        push_str(&mut out, c);
    }
    out.extend_from_slice(b",\"data\":");
    push_str(&mut out, data_json);
    out.push(b'}');
    Bytes::from(out)
}

/// An event's `data` field for the wire: JSON text that is a string literal goes as is
/// (its content is what a trigger sent, JSON or not); any other JSON goes as a string
/// holding it. `user_id` is added for client events on presence channels.
pub fn event_frame(event: &str, channel: &str, data_json: &str, user_id: Option<&str>) -> Bytes {
    let mut out = Vec::with_capacity(64 + event.len() + channel.len() + data_json.len() * 5 / 4);
    out.extend_from_slice(b"{\"event\":");
    push_str(&mut out, event);
    out.extend_from_slice(b",\"channel\":");
    push_str(&mut out, channel);
    out.extend_from_slice(b",\"data\":");
    if data_json.starts_with('"') {
        out.extend_from_slice(data_json.as_bytes());
    } else {
        push_str(&mut out, data_json);
    }
    if let Some(u) = user_id {
        out.extend_from_slice(b",\"user_id\":");
        push_str(&mut out, u);
    }
    out.push(b'}');
    Bytes::from(out)
}

/// `pusher:connection_established` with the socket id and the activity timeout (seconds).
pub fn connection_established(socket_id: &str, activity_timeout: u32) -> Bytes {
    let data = serde_json::json!({"socket_id": socket_id, "activity_timeout": activity_timeout});
    frame("pusher:connection_established", None, &data.to_string())
}

/// `pusher:error` with a code (`None`: JSON `null`, for errors with no protocol code) and
/// a message.
pub fn error(code: Option<u16>, message: &str) -> Bytes {
    let data = serde_json::json!({"code": code, "message": message});
    frame("pusher:error", None, &data.to_string())
}

/// `pusher:subscription_error` on `channel`, as pusher-js and Echo's `.error()` read it:
/// `{type, error, status}`.
pub fn subscription_error(channel: &str, kind: &str, message: &str, status: u16) -> Bytes {
    let data = serde_json::json!({"type": kind, "error": message, "status": status});
    frame(
        "pusher:subscription_error",
        Some(channel),
        &data.to_string(),
    )
}

/// `{"event":"pusher:pong","data":"{}"}`.
pub const PONG: &[u8] = br#"{"event":"pusher:pong","data":"{}"}"#;

/// `{"event":"pusher:ping","data":"{}"}`: the server's heartbeat.
pub const PING: &[u8] = br#"{"event":"pusher:ping","data":"{}"}"#;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn parse(b: &Bytes) -> Value {
        serde_json::from_slice(b).expect("json")
    }

    #[test]
    fn server_data_is_a_json_string() {
        let f = parse(&connection_established("1.2", 120));
        assert_eq!(f["event"], "pusher:connection_established");
        let data: Value = serde_json::from_str(f["data"].as_str().expect("string")).expect("json");
        assert_eq!(data, json!({"socket_id": "1.2", "activity_timeout": 120}));
        let e = parse(&subscription_error("private-x", "AuthError", "no", 401));
        assert_eq!(e["channel"], "private-x");
        let data: Value = serde_json::from_str(e["data"].as_str().expect("string")).expect("json");
        assert_eq!(data["status"], 401);
    }

    #[test]
    fn event_data_keeps_what_the_trigger_sent() {
        // JSON text is sent as a string holding it.
        let f = parse(&event_frame(
            "App\\Events\\X",
            "availability",
            r#"{"data":{"a":1}}"#,
            None,
        ));
        assert_eq!(f["data"], r#"{"data":{"a":1}}"#);
        assert_eq!(f["event"], "App\\Events\\X");
        assert!(f.get("user_id").is_none());
        // A string that is not JSON goes as that string.
        let f = parse(&event_frame("e", "c", r#""plain text""#, Some("7")));
        assert_eq!(
            (&f["data"], &f["user_id"]),
            (&json!("plain text"), &json!("7"))
        );
    }

    #[test]
    fn client_payloads_as_objects_or_strings() {
        let f: ClientFrame<'_> = serde_json::from_str(
            r#"{"event":"pusher:subscribe","data":{"channel":"a","auth":""}}"#,
        )
        .expect("frame");
        let s: Subscribe = data_of(f.data).expect("subscribe");
        assert_eq!((s.channel.as_str(), s.auth.as_deref()), ("a", Some("")));
        let f: ClientFrame<'_> =
            serde_json::from_str(r#"{"event":"pusher:subscribe","data":"{\"channel\":\"b\"}"}"#)
                .expect("frame");
        assert_eq!(
            data_of::<Subscribe>(f.data).expect("subscribe").channel,
            "b"
        );
        let f: ClientFrame<'_> =
            serde_json::from_str(r#"{"event":"pusher:subscribe"}"#).expect("frame");
        assert!(data_of::<Subscribe>(f.data).is_err());
    }
}
