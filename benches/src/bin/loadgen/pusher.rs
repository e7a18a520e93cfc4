//! The Pusher protocol 7 side of the load generator: connect to `/app/{key}`, subscribe,
//! publish through the signed HTTP API (W1) or as client events on private channels (W2),
//! answer the server's `pusher:ping`. Signatures come from `realtime_pusher::sign`, as a
//! Laravel backend's and an auth endpoint's would.

use super::{Gen, Ws, next_text};
use futures_util::SinkExt;
use realtime_pusher::{App, sign};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

/// The app the generator speaks as.
pub(crate) fn app(g: &Gen) -> App {
    App::new(&g.args.app_id, &g.args.app_key, &g.args.app_secret)
        .expect("the app's id, key and secret")
}

/// The channel of `room`: public for W1 and W3 (HTTP triggers), private for W2 (client
/// events are only allowed on private and presence channels).
pub(crate) fn channel(g: &Gen, room: &str) -> String {
    match g.args.workload {
        super::Workload::W2 => format!("private-{room}"),
        _ => room.to_owned(),
    }
}

/// Finish opening a Pusher connection: read `pusher:connection_established`, subscribe
/// to `room`'s channel (signed when private), wait for `subscription_succeeded`.
pub(crate) async fn open(g: &Gen, ws: &mut Ws, room: &str) -> Result<(), String> {
    let socket = loop {
        let t = next_text(ws).await?;
        let v: serde_json::Value = serde_json::from_str(&t).map_err(|e| e.to_string())?;
        if v["event"] == "pusher:connection_established" {
            let data: serde_json::Value = serde_json::from_str(v["data"].as_str().unwrap_or("{}"))
                .map_err(|e| e.to_string())?;
            break data["socket_id"].as_str().unwrap_or_default().to_owned();
        }
        if v["event"] == "pusher:error" {
            return Err(format!("refused: {t}"));
        }
    };
    let ch = channel(g, room);
    let auth = if ch.starts_with("private-") {
        sign::channel_auth(&app(g), &socket, &ch, None)
    } else {
        String::new()
    };
    let sub = json!({"event": "pusher:subscribe", "data": {"channel": ch, "auth": auth}});
    ws.send(Message::Text(sub.to_string().into()))
        .await
        .map_err(|e| e.to_string())?;
    loop {
        let t = next_text(ws).await?;
        if t.contains("pusher_internal:subscription_succeeded") {
            return Ok(());
        }
        if t.contains("pusher:subscription_error") || t.contains("pusher:error") {
            return Err(format!("subscription refused: {t}"));
        }
    }
}

/// A client event carrying `content` on `room`'s channel (W2).
pub(crate) fn client_event(g: &Gen, room: &str, content: &str) -> Message {
    let ev = json!({"event": "client-msg", "channel": channel(g, room), "data": content});
    Message::Text(ev.to_string().into())
}

/// Trigger `content` on `room`'s channel through the HTTP API (W1), as Laravel does.
pub(crate) async fn trigger(g: &Gen, room: &str, content: &str) -> Result<(), String> {
    let app = app(g);
    let body = json!({"name": "msg", "channels": [channel(g, room)], "data": content}).to_string();
    let path = format!("/apps/{}/events", app.id);
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let query = sign::signed_query(&app, "POST", &path, &[], body.as_bytes(), ts);
    let res = g
        .http
        .post(format!("{}{path}?{query}", g.args.server))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if res.status().is_success() {
        Ok(())
    } else {
        Err(format!(
            "trigger: {} {}",
            res.status(),
            res.text().await.unwrap_or_default()
        ))
    }
}

/// Whether a frame is the server's `pusher:ping`.
pub(crate) fn is_ping(s: &str) -> bool {
    s.starts_with(r#"{"event":"pusher:ping""#)
}

/// The answer to it.
pub(crate) fn pong() -> Message {
    Message::Text(r#"{"event":"pusher:pong","data":{}}"#.into())
}
