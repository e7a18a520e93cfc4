//! The smoke test both minimal examples run against their own binary: a room created over
//! REST, a WebSocket joined to it, a message posted over REST arriving on the socket.

use futures_util::{SinkExt, StreamExt};
use realtime_core::{Claims, JwtAuthenticator};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "minimal-example-secret-of-32-bytes!!";

fn token(user: &str) -> String {
    JwtAuthenticator::hs256(SECRET.as_bytes())
        .issue(&Claims::new(user, 600))
        .expect("token")
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next text frame as JSON, within 5 s.
async fn next(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("frame");
        if let Message::Text(t) = m {
            return serde_json::from_str(t.as_str()).expect("json");
        }
    }
}

/// Start `binary` on a spare port and walk through the flow above.
pub async fn run(binary: &str) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let mut child = tokio::process::Command::new(binary)
        .env("JWT_SECRET", SECRET)
        .env("DATABASE_URL", "sqlite::memory:")
        .env("BIND", format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the example");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut room = Value::Null;
    for _ in 0..100 {
        if let Ok(r) = http
            .post(format!("{base}/rooms"))
            .bearer_auth(token("alice"))
            .json(&json!({"name": "General"}))
            .send()
            .await
        {
            room = r.json().await.expect("room");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let room_id = room["id"].as_str().expect("a room id").to_owned();
    let url = format!("ws://127.0.0.1:{port}/ws?token={}", token("bob"));
    let (mut bob, _) = tokio_tungstenite::connect_async(url).await.expect("ws");
    let join = json!({"type": "join", "id": 1, "data": {"room_id": room_id}});
    bob.send(Message::Text(join.to_string().into()))
        .await
        .expect("join");
    while next(&mut bob).await["type"] != "ack" {}
    let r = http
        .post(format!("{base}/rooms/{room_id}/messages"))
        .bearer_auth(token("alice"))
        .json(&json!({"content": "Hello everyone!"}))
        .send()
        .await
        .expect("post");
    assert!(r.status().is_success(), "{}", r.status());
    loop {
        let f = next(&mut bob).await;
        if f["type"] == "event.message.send" {
            assert_eq!(f["data"]["content"], "Hello everyone!");
            break;
        }
    }
    let _ = child.start_kill();
}
