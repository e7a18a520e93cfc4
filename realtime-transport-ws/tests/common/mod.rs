//! Helpers shared by the WebSocket tests: a client connection and reading its frames.
#![allow(dead_code)]

use futures_util::StreamExt;
use serde_json::Value;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// A client connection.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next frame, within 5 s, from a connection that stays open.
pub async fn next_frame(ws: &mut Ws) -> Message {
    tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("frame in time")
        .expect("open")
        .expect("ok")
}

/// The next text frame as JSON, skipping control frames; panics on a close.
pub async fn next_json(ws: &mut Ws) -> Value {
    loop {
        match next_frame(ws).await {
            Message::Text(t) => return serde_json::from_str(t.as_str()).expect("json"),
            Message::Close(c) => panic!("closed: {c:?}"),
            _ => continue,
        }
    }
}
