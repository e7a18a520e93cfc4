//! A Pusher server on a random port (one app on an in-memory Hub, a native WebSocket
//! endpoint on the same Hub at `/ws`) and a small Pusher protocol client.
#![allow(dead_code)]

use futures_util::{SinkExt, StreamExt};
use realtime_core::{Hub, JwtAuthenticator, MemoryBroker, MemoryStore};
use realtime_pusher::{App, AppLimits, PusherAuthorizer, PusherServer, sign};
use realtime_transport_ws::WsServer;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

pub const JWT_SECRET: &[u8] = b"pusher-tests-secret-of-32-bytes!!";

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    pub app: App,
    pub hub: Hub,
    pub pusher: PusherServer,
}

/// An app's Hub, with its Pusher authorizer.
pub fn hub_for(app: &App) -> Hub {
    Hub::builder(Arc::new(MemoryStore::new()), Arc::new(MemoryBroker::new()))
        .channel_authorizer(Arc::new(PusherAuthorizer::new(Arc::new(app.clone()))))
        .build()
}

/// Start a server for `app` (its limits as given).
pub async fn start_with(app: App) -> Server {
    let hub = hub_for(&app);
    let pusher = PusherServer::builder()
        .app(app.clone(), hub.clone())
        .build()
        .expect("pusher");
    let native = WsServer::new(hub.clone(), Arc::new(JwtAuthenticator::hs256(JWT_SECRET)));
    let router = pusher
        .router()
        .route("/ws", realtime_transport_ws::axum::route(native));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    Server {
        addr,
        app,
        hub,
        pusher,
    }
}

/// Start a server for app `1` / `app-key` / `app-secret` with `limits`.
pub async fn start(limits: AppLimits) -> Server {
    start_with(
        App::new("1", "app-key", "app-secret")
            .expect("app")
            .limits(limits),
    )
    .await
}

/// The next frame within 5 s.
pub async fn next_frame(ws: &mut Ws) -> Message {
    tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("a frame in time")
        .expect("open")
        .expect("ok")
}

/// The next Pusher event, skipping the server's `pusher:ping`s; `data` parsed from its
/// JSON string when it holds JSON.
pub async fn next_event(ws: &mut Ws) -> Value {
    loop {
        match next_frame(ws).await {
            Message::Text(t) => {
                let mut v: Value = serde_json::from_str(t.as_str()).expect("json");
                if v["event"] == "pusher:ping" {
                    continue;
                }
                let data = v["data"]
                    .as_str()
                    .expect("server data is a JSON string")
                    .to_owned();
                v["data"] = serde_json::from_str(&data).unwrap_or(Value::String(data));
                return v;
            }
            Message::Close(c) => panic!("closed: {c:?}"),
            _ => continue,
        }
    }
}

/// The close frame's code, reading past other frames.
pub async fn close_code(ws: &mut Ws) -> u16 {
    loop {
        match next_frame(ws).await {
            Message::Close(Some(c)) => return u16::from(c.code),
            Message::Close(None) => panic!("close without a code"),
            _ => continue,
        }
    }
}

/// Nothing but heartbeats arrives for `ms` milliseconds.
pub async fn quiet(ws: &mut Ws, ms: u64) {
    let until = tokio::time::Instant::now() + Duration::from_millis(ms);
    loop {
        match tokio::time::timeout_at(until, ws.next()).await {
            Err(_) => return,
            Ok(Some(Ok(Message::Text(t)))) if t.as_str().contains("pusher:ping") => continue,
            Ok(other) => panic!("expected nothing, got {other:?}"),
        }
    }
}

pub async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.expect("send");
}

/// Connect to `/app/{key}?{query}` and read `pusher:connection_established`: the socket
/// and its socket id.
pub async fn connect(server: &Server) -> (Ws, String) {
    let url = format!(
        "ws://{}/app/{}?protocol=7&client=js&version=8.6.0",
        server.addr, server.app.key
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    let hello = next_event(&mut ws).await;
    assert_eq!(hello["event"], "pusher:connection_established");
    let socket = hello["data"]["socket_id"]
        .as_str()
        .expect("socket id")
        .to_owned();
    (ws, socket)
}

/// Subscribe and return the server's answer (succeeded or error).
pub async fn subscribe(
    ws: &mut Ws,
    channel: &str,
    auth: Option<&str>,
    channel_data: Option<&str>,
) -> Value {
    let mut data = json!({"channel": channel, "auth": auth.unwrap_or("")});
    if let Some(d) = channel_data {
        data["channel_data"] = json!(d);
    }
    send(ws, json!({"event": "pusher:subscribe", "data": data})).await;
    next_event(ws).await
}

/// Subscribe to a presence channel as `user_id`, signed as an auth endpoint would.
pub async fn join_presence(
    server: &Server,
    ws: &mut Ws,
    socket: &str,
    channel: &str,
    user_id: &str,
) -> Value {
    let data =
        json!({"user_id": user_id, "user_info": {"name": format!("user {user_id}")}}).to_string();
    let auth = sign::channel_auth(&server.app, socket, channel, Some(&data));
    subscribe(ws, channel, Some(&auth), Some(&data)).await
}

/// Unix seconds now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// A signed HTTP API request as pusher-php-server makes it; returns status and body.
pub async fn api(
    server: &Server,
    method: &str,
    path: &str,
    params: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, String) {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let q = sign::signed_query(&server.app, method, path, params, body.as_bytes(), now());
    raw_api(server, method, &format!("{path}?{q}"), body).await
}

/// An HTTP API request as given (no signing).
pub async fn raw_api(
    server: &Server,
    method: &str,
    path_and_query: &str,
    body: String,
) -> (u16, String) {
    let url = format!("http://{}{path_and_query}", server.addr);
    let client = reqwest::Client::new();
    let req = match method {
        "POST" => client
            .post(url)
            .header("content-type", "application/json")
            .body(body),
        _ => client.get(url),
    };
    let res = req.send().await.expect("http");
    let status = res.status().as_u16();
    (status, res.text().await.expect("body"))
}

/// Trigger `name` with `data` (a JSON string, as Laravel sends it) on `channels`.
pub async fn trigger(
    server: &Server,
    channels: &[&str],
    name: &str,
    data: &Value,
    socket_id: Option<&str>,
) -> (u16, String) {
    let mut body = json!({"name": name, "channels": channels, "data": data.to_string()});
    if let Some(s) = socket_id {
        body["socket_id"] = json!(s);
    }
    let path = format!("/apps/{}/events", server.app.id);
    api(server, "POST", &path, &[], Some(body)).await
}
