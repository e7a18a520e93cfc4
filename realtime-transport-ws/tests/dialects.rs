//! A second dialect on the same Hub as the native one: anonymous sessions greeted with
//! their socket id, its own frames, heartbeat and close codes. An event its client sends
//! reaches a native client on the same channel, encoded once per dialect.

mod common;

use bytes::Bytes;
use common::{Ws, next_frame, next_json};
use futures_util::SinkExt;
use realtime_core::{
    Channel, Claims, CloseReason, ConnectOptions, Credentials, Encoder, Error, Event, Hub,
    Identity, JwtAuthenticator, Session, SessionId,
};
use realtime_transport_ws::{
    Closing, ConnInfo, Dialect, Frame, Opening, Outbox, WsConfig, WsServer,
};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const SECRET: &[u8] = b"shared-test-secret-of-32-bytes!!!!";

/// Frames `{"event": name, "channel": …, "data": …}`, like Pusher's.
struct Tiny {
    encoded: Arc<AtomicUsize>,
}

struct TinyEncoder(Arc<AtomicUsize>);

impl Encoder for TinyEncoder {
    fn encode(&self, channel: &Channel, event: &Event) -> Option<Bytes> {
        self.0.fetch_add(1, Ordering::Relaxed);
        let name = event.name.clone()?;
        let frame = json!({"event": name, "channel": channel.to_string(), "data": event.data});
        Some(Bytes::from(frame.to_string()))
    }

    fn name(&self) -> &'static str {
        "tiny"
    }
}

impl Dialect for Tiny {
    type Conn = SessionId;

    fn encoder(&self) -> Arc<dyn Encoder> {
        Arc::new(TinyEncoder(self.encoded.clone()))
    }

    fn opening(&self, _identity: Option<Identity>, _info: &ConnInfo) -> Opening {
        Opening::Connect(ConnectOptions::anonymous())
    }

    fn greeting(&self, session: &Session) -> Option<Frame> {
        let hello = json!({"event": "hello", "data": {"socket_id": session.socket_id()}});
        Some(Frame::Text(Bytes::from(hello.to_string())))
    }

    fn new_conn(&self, session: &Session) -> SessionId {
        session.id()
    }

    async fn on_text(&self, hub: &Hub, conn: &mut SessionId, text: Bytes, out: &Outbox) -> bool {
        let result = async {
            let v: Value = serde_json::from_slice(&text)?;
            let channel = Channel::parse(v["channel"].as_str().unwrap_or_default())?;
            match v["event"].as_str() {
                Some("subscribe") => {
                    hub.subscribe(*conn, &channel, &Credentials::NONE).await?;
                    Ok(Some(
                        json!({"event": "subscribed", "channel": channel.to_string()}),
                    ))
                }
                Some("kick-me") => {
                    hub.kick(*conn, CloseReason::Kicked("asked".into())).await;
                    Ok(None)
                }
                Some(name) => {
                    let ev = Event::app(name, v["data"].clone())?;
                    hub.publish(&[channel], ev).await?;
                    Ok(None)
                }
                None => Err(Error::Invalid {
                    field: "event",
                    reason: "missing".into(),
                }),
            }
        }
        .await;
        let reply = match result {
            Ok(Some(v)) => Some(Frame::Text(Bytes::from(v.to_string()))),
            Ok(None) => None,
            Err(e) => self.error(None, &e),
        };
        match reply {
            Some(f) => out.send(f).await.is_ok(),
            None => true,
        }
    }

    fn error(&self, _request: Option<&[u8]>, error: &Error) -> Option<Frame> {
        let v = json!({"event": "error", "data": {"code": error.code()}});
        Some(Frame::Text(Bytes::from(v.to_string())))
    }

    fn heartbeat(&self) -> Frame {
        Frame::Text(Bytes::from_static(br#"{"event":"ping"}"#))
    }

    fn close(&self, reason: &CloseReason) -> Closing {
        let code = match reason {
            CloseReason::Kicked(_) => 4100,
            _ => 4200,
        };
        Closing {
            notice: Some(Frame::Text(Bytes::from(
                json!({"event": "error", "data": {"code": code}}).to_string(),
            ))),
            code,
            text: reason.text().to_owned(),
        }
    }
}

/// The next frame that is not the tiny dialect's heartbeat (which comes on its own timer).
async fn next_event(ws: &mut Ws) -> Value {
    loop {
        let v = next_json(ws).await;
        if v["event"] != "ping" {
            return v;
        }
    }
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.expect("send");
}

#[tokio::test]
async fn a_second_dialect_shares_the_hub_with_the_native_one() {
    let hub = Hub::in_memory();
    let auth = Arc::new(JwtAuthenticator::hs256(SECRET));
    let native = WsServer::new(hub.clone(), auth.clone());
    let encoded = Arc::new(AtomicUsize::new(0));
    let config = WsConfig {
        ping_interval: Duration::from_millis(200),
        ..WsConfig::default()
    };
    let tiny = WsServer::with_dialect(
        Tiny {
            encoded: encoded.clone(),
        },
        hub.clone(),
        auth,
        config,
        None,
    );
    let app = axum::Router::new()
        .route("/ws", realtime_transport_ws::axum::route(native))
        .route("/tiny", realtime_transport_ws::axum::route(tiny));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });

    // A native client (a chat session) on the public channel `orders`.
    let token = JwtAuthenticator::hs256(SECRET)
        .issue(&Claims::new("nat", 600))
        .expect("token");
    let (mut nat, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws?token={token}"))
        .await
        .expect("native");
    assert_eq!(next_json(&mut nat).await["type"], "auth");
    send(
        &mut nat,
        json!({"type": "subscribe", "id": 1, "data": {"channel": "orders"}}),
    )
    .await;
    loop {
        if next_json(&mut nat).await["type"] == "ack" {
            break;
        }
    }

    // Two clients of the tiny dialect: anonymous, greeted with their socket ids.
    let connect = || async {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/tiny"))
            .await
            .expect("tiny");
        let hello = next_event(&mut ws).await;
        assert_eq!(hello["event"], "hello");
        let socket = hello["data"]["socket_id"].as_str().expect("id").to_owned();
        assert!(
            socket.parse::<realtime_core::SocketId>().is_ok(),
            "{socket}"
        );
        send(&mut ws, json!({"event": "subscribe", "channel": "orders"})).await;
        assert_eq!(next_event(&mut ws).await["event"], "subscribed");
        (ws, socket)
    };
    let (mut t1, s1) = connect().await;
    let (mut t2, s2) = connect().await;
    assert_ne!(s1, s2);

    // t1 publishes: t2 gets the tiny frame, the native client the native push.
    send(
        &mut t1,
        json!({"event": "order-shipped", "channel": "orders", "data": {"id": 7}}),
    )
    .await;
    let got = next_event(&mut t2).await;
    assert_eq!(
        (&got["event"], &got["channel"], &got["data"]["id"]),
        (&json!("order-shipped"), &json!("orders"), &json!(7))
    );
    let push = next_json(&mut nat).await;
    assert_eq!(
        (&push["type"], &push["level"], &push["data"]["id"]),
        (&json!("order-shipped"), &json!("app"), &json!(7))
    );
    // Encoded once for the tiny dialect, whatever its number of receivers (t1 and t2).
    assert_eq!(encoded.load(Ordering::Relaxed), 1);

    // Bad input: the dialect's own error frame, and the connection stays.
    t2.send(Message::text("not json")).await.expect("send");
    let err = next_event(&mut t2).await;
    assert_eq!(
        (&err["event"], &err["data"]["code"]),
        (&json!("error"), &json!("invalid_json"))
    );

    // The dialect's heartbeat is a text frame on the server's timer.
    loop {
        if next_json(&mut t2).await["event"] == "ping" {
            break;
        }
    }

    // A close the Hub decides, said the dialect's way: its notice, then its code.
    send(&mut t1, json!({"event": "kick-me", "channel": "orders"})).await;
    let notice = loop {
        let v = next_event(&mut t1).await;
        if v["event"] == "error" {
            break v;
        }
    };
    assert_eq!(notice["data"]["code"], 4100);
    loop {
        if let Message::Close(Some(c)) = next_frame(&mut t1).await {
            assert_eq!(u16::from(c.code), 4100);
            assert_eq!(c.reason.as_str(), "asked");
            break;
        }
    }
}
