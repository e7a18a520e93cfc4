//! How the server ends a WebSocket: the close frame and the replies before it reach the
//! client even when the client's own frames are still unread (no TCP reset), and the
//! close code says why (RFC 6455 §7.4.1: 1007 for text that is not UTF-8, 1002 for a
//! protocol error).

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message;

/// Every frame until the close; the close code (`None`: the connection ended without a
/// close frame, a reset included).
async fn frames_until_close(ws: &mut Ws) -> (Vec<serde_json::Value>, Option<u16>) {
    let mut frames = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                frames.push(serde_json::from_str(t.as_str()).expect("json"));
            }
            Ok(Some(Ok(Message::Close(c)))) => return (frames, c.map(|c| u16::from(c.code))),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_))) | Ok(None) => return (frames, None),
            Err(_) => panic!("no close within 10 s"),
        }
    }
}

/// Write raw bytes on the WebSocket's TCP connection.
async fn raw(ws: &mut Ws, bytes: &[u8]) {
    match ws.get_mut() {
        MaybeTlsStream::Plain(tcp) => tcp.write_all(bytes).await.expect("write"),
        _ => panic!("plain TCP expected"),
    }
}

#[tokio::test]
async fn a_flood_gets_its_replies_and_the_4029_close_not_a_reset() {
    let s = start(|_| {}).await;
    let ws = s.ws("flooder").await;
    let (mut tx, mut rx) = ws.split();
    // Pings as fast as the socket takes them, for a second, nothing read meanwhile: 40
    // pass (the burst), then refusals, then the close after the 21st refusal in a row,
    // while the client is still sending.
    let flood = tokio::spawn(async move {
        let end = tokio::time::Instant::now() + Duration::from_secs(1);
        let mut i = 0u32;
        while tokio::time::Instant::now() < end {
            let ping = json!({"type": "ping", "id": i}).to_string();
            if tx.send(Message::Text(ping.into())).await.is_err() {
                break;
            }
            i += 1;
            if i.is_multiple_of(50) {
                tokio::task::yield_now().await;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut frames = Vec::new();
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(10), rx.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                frames.push(serde_json::from_str::<serde_json::Value>(t.as_str()).expect("json"));
            }
            Ok(Some(Ok(Message::Close(c)))) => break c.map(|c| u16::from(c.code)),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_))) | Ok(None) => break None,
            Err(_) => panic!("no close within 10 s"),
        }
    };
    // The client answers the close (tungstenite does) and the server ends the TCP
    // connection cleanly: no reset under the client's still-arriving frames.
    let end = tokio::time::timeout(Duration::from_secs(5), rx.next()).await;
    let reset = matches!(
        &end,
        Ok(Some(Err(tokio_tungstenite::tungstenite::Error::Io(e))))
            if e.kind() == std::io::ErrorKind::ConnectionReset
    );
    assert!(!reset, "the connection was reset: {end:?}");
    let _ = flood.await;
    let pongs = frames.iter().filter(|f| f["type"] == "pong").count();
    let limited = frames
        .iter()
        .filter(|f| f["type"] == "error" && f["data"]["code"] == "rate_limited")
        .count();
    assert_eq!(code, Some(4029), "the close code arrives ({pongs} pongs)");
    assert_eq!(pongs, 40, "every pong before the close arrives");
    assert_eq!(limited, 21);
}

#[tokio::test]
async fn text_that_is_not_utf8_closes_with_1007() {
    let s = start(|_| {}).await;
    let mut ws = s.ws("bytes").await;
    // FIN + text, masked, 2 bytes, mask 0: the payload 0xff 0xfe as is.
    raw(&mut ws, &[0x81, 0x82, 0, 0, 0, 0, 0xff, 0xfe]).await;
    let (_, code) = frames_until_close(&mut ws).await;
    assert_eq!(code, Some(1007));
}

#[tokio::test]
async fn an_unmasked_client_frame_closes_with_1002() {
    let s = start(|_| {}).await;
    let mut ws = s.ws("unmasked").await;
    // FIN + text, not masked: clients must mask (RFC 6455 §5.1).
    raw(&mut ws, &[0x81, 0x02, b'h', b'i']).await;
    let (_, code) = frames_until_close(&mut ws).await;
    assert_eq!(code, Some(1002));
}
