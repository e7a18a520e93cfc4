//! One Hub for both dialects on the seed 003 server: an admin's native `publish` reaches
//! Laravel Echo's channel as Laravel's own trigger would, another user's is refused, and
//! a trigger reaches a native subscriber.

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use realtime_core::{Claims, JwtAuthenticator};
use realtime_pusher::{App, sign};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const JWT: &str = "booking-test-jwt-secret-of-32-bytes!!";

async fn next(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("ok");
        if let Message::Text(t) = m {
            let v: Value = serde_json::from_str(t.as_str()).expect("json");
            if v["event"] != "pusher:ping" {
                return v;
            }
        }
    }
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.expect("send");
}

async fn native(addr: std::net::SocketAddr, user: &str) -> Ws {
    let token = JwtAuthenticator::hs256(JWT.as_bytes())
        .issue(&Claims::new(user, 600))
        .expect("token");
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws?token={token}"))
        .await
        .expect("native");
    assert_eq!(next(&mut ws).await["type"], "auth");
    ws
}

/// Build the server from command-line `args` and serve it on a random port.
async fn start(args: &[&str]) -> std::net::SocketAddr {
    let config = booking_server::Config::parse_from(
        std::iter::once("booking-server").chain(args.iter().copied()),
    );
    let built = booking_server::build(config).await.expect("build");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, built.router).await });
    addr
}

/// A Pusher client of the app with `key`, subscribed to public `channel`.
async fn pusher_on(addr: std::net::SocketAddr, key: &str, channel: &str) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/app/{key}?protocol=7"))
        .await
        .expect("pusher");
    assert_eq!(
        next(&mut ws).await["event"],
        "pusher:connection_established"
    );
    send(
        &mut ws,
        json!({"event": "pusher:subscribe", "data": {"channel": channel, "auth": ""}}),
    )
    .await;
    assert_eq!(
        next(&mut ws).await["event"],
        "pusher_internal:subscription_succeeded"
    );
    ws
}

/// A signed trigger of `name` on `channel` as app (`id`, `key`, `secret`); the status.
async fn trigger(
    addr: std::net::SocketAddr,
    (id, key, secret): (&str, &str, &str),
    channel: &str,
    name: &str,
    data: &str,
) -> u16 {
    let app = App::new(id, key, secret).expect("app");
    let body = json!({"name": name, "channels": [channel], "data": data}).to_string();
    let path = format!("/apps/{id}/events");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let q = sign::signed_query(&app, "POST", &path, &[], body.as_bytes(), now);
    reqwest::Client::new()
        .post(format!("http://{addr}{path}?{q}"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("trigger")
        .status()
        .as_u16()
}

/// The native reply to command `id`, skipping pushes.
async fn reply(ws: &mut Ws, id: u64) -> Value {
    loop {
        let v = next(ws).await;
        if v["id"] == id && (v["type"] == "ack" || v["type"] == "error") {
            return v;
        }
    }
}

#[tokio::test]
async fn admins_publish_natively_to_echo_and_triggers_reach_native_clients() {
    let addr = start(&[
        "--app-secret",
        "s3cret",
        "--jwt-secret",
        JWT,
        "--admin-users",
        "admin1",
    ])
    .await;
    // An Echo client on `availability` (public, as the seed's client code joins it).
    let mut echo = pusher_on(addr, "app-key", "availability").await;

    // The admin's native publish arrives as Laravel's trigger would.
    let mut admin = native(addr, "admin1").await;
    let data = json!({"data": {"session_id": 5, "available_slots": 2}});
    send(&mut admin, json!({"type": "publish", "id": 1, "data": {"channel": "availability", "event": "App\\Events\\AvailabilityUpdated", "data": data}})).await;
    assert_eq!(reply(&mut admin, 1).await["type"], "ack");
    let got = next(&mut echo).await;
    assert_eq!(got["event"], "App\\Events\\AvailabilityUpdated");
    assert_eq!(
        serde_json::from_str::<Value>(got["data"].as_str().expect("string")).expect("json"),
        data
    );

    // Another user may not; nothing reaches Echo.
    let mut user = native(addr, "7").await;
    send(&mut user, json!({"type": "publish", "id": 2, "data": {"channel": "availability", "event": "App\\Events\\AvailabilityUpdated", "data": {}}})).await;
    let refused = reply(&mut user, 2).await;
    assert_eq!(
        (&refused["type"], &refused["data"]["code"]),
        (&json!("error"), &json!("forbidden"))
    );

    // A trigger reaches a native subscriber of the channel.
    send(
        &mut user,
        json!({"type": "subscribe", "id": 3, "data": {"channel": "staff"}}),
    )
    .await;
    assert_eq!(reply(&mut user, 3).await["type"], "ack");
    let status = trigger(
        addr,
        ("app-id", "app-key", "s3cret"),
        "staff",
        "App\\Events\\CheckInNotification",
        "{\"data\":{\"booking_id\":1}}",
    )
    .await;
    assert_eq!(status, 200);
    let push = next(&mut user).await;
    assert_eq!(
        (&push["type"], &push["data"]["data"]["booking_id"]),
        (&json!("App\\Events\\CheckInNotification"), &json!(1))
    );
    // Echo on `availability` got nothing from the user's refused publish.
    let quiet = tokio::time::timeout(Duration::from_millis(200), next(&mut echo)).await;
    assert!(quiet.is_err(), "{quiet:?}");
}

#[tokio::test]
async fn apps_from_the_file_are_served_apart() {
    let dir = std::env::temp_dir().join(format!("booking-apps-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("apps.json");
    std::fs::write(
        &file,
        r#"[{"id":"2","key":"key-two","secret":"secret-two"}]"#,
    )
    .expect("write");
    let addr = start(&[
        "--app-secret",
        "s3cret",
        "--jwt-secret",
        JWT,
        "--apps-file",
        file.to_str().expect("path"),
    ])
    .await;
    let mut one = pusher_on(addr, "app-key", "availability").await;
    let mut two = pusher_on(addr, "key-two", "availability").await;
    let (seed, second) = (
        ("app-id", "app-key", "s3cret"),
        ("2", "key-two", "secret-two"),
    );
    assert_eq!(
        trigger(addr, second, "availability", "for-two", "{}").await,
        200
    );
    assert_eq!(next(&mut two).await["event"], "for-two");
    assert_eq!(
        trigger(addr, seed, "availability", "for-one", "{}").await,
        200
    );
    assert_eq!(next(&mut one).await["event"], "for-one");
    // Each app's client got only its own app's event.
    for ws in [&mut one, &mut two] {
        let quiet = tokio::time::timeout(Duration::from_millis(200), next(ws)).await;
        assert!(quiet.is_err(), "{quiet:?}");
    }
    // App two's credentials do not sign for the seed's app.
    assert_eq!(
        trigger(
            addr,
            ("app-id", "key-two", "secret-two"),
            "availability",
            "x",
            "{}"
        )
        .await,
        401
    );
    let _ = std::fs::remove_dir_all(&dir);
}
