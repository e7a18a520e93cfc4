//! The same behaviour through axum and through actix-web.

mod common;

use common::{Ws, next_frame, next_json};
use futures_util::{SinkExt, StreamExt};
use realtime_core::{
    Claims, CreateRoom, Hub, Identity, JwtAuthenticator, MessageKind, SendMessage,
};
use realtime_transport_ws::{WsConfig, WsServer};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::{self, Message};

const SECRET: &[u8] = b"shared-test-secret-of-32-bytes!!!!";

fn server(hub: &Hub) -> WsServer {
    // A burst big enough for the pipelining check; the rate limit has its own test.
    let config = WsConfig {
        rate_burst: NonZeroU32::new(100).expect("non-zero"),
        ..WsConfig::default()
    };
    WsServer::with_config(
        hub.clone(),
        Arc::new(JwtAuthenticator::hs256(SECRET)),
        config,
        None,
    )
}

fn token(sub: &str) -> String {
    JwtAuthenticator::hs256(SECRET)
        .issue(&Claims::new(sub, 600))
        .expect("token")
}

async fn until(ws: &mut Ws, ty: &str) -> Value {
    loop {
        let v = next_json(ws).await;
        if v["type"] == ty {
            return v;
        }
    }
}

async fn behaviour(addr: SocketAddr, hub: Hub) {
    let url = |t: &str| format!("ws://{addr}/ws?token={t}");
    match tokio_tungstenite::connect_async(url("forged")).await {
        Err(tungstenite::Error::Http(r)) => assert_eq!(r.status().as_u16(), 401),
        other => panic!("expected 401, got {:?}", other.map(|_| ())),
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(url(&token("alice")))
        .await
        .expect("connect");
    let auth = next_json(&mut ws).await;
    assert_eq!(
        (auth["type"].as_str(), auth["data"]["user_id"].as_str()),
        (Some("auth"), Some("alice"))
    );
    // A protocol-level ping gets its pong (RFC 6455 §5.5.2), payload echoed.
    ws.send(Message::Ping(bytes::Bytes::from_static(b"are you there")))
        .await
        .expect("ping frame");
    loop {
        match next_frame(&mut ws).await {
            Message::Pong(p) => {
                assert_eq!(&p[..], b"are you there");
                break;
            }
            Message::Close(c) => panic!("closed: {c:?}"),
            _ => continue,
        }
    }
    let who = Identity {
        user_id: "bob".into(),
        username: None,
        claims: Value::Null,
    };
    hub.ensure_user(&who).await.expect("bob");
    let room = hub
        .create_room(
            "bob",
            CreateRoom {
                name: "r".into(),
                members: vec!["alice".into()],
                ..Default::default()
            },
        )
        .await
        .expect("room");
    let req = SendMessage {
        room_id: room.id.clone(),
        content: "fan-out".into(),
        kind: MessageKind::Text,
        client_id: None,
    };
    hub.send_message("bob", req).await.expect("send");
    assert_eq!(
        until(&mut ws, "event.message.send").await["data"]["content"],
        "fan-out"
    );
    ws.send(Message::Text(
        json!({"type": "ping", "id": 1}).to_string().into(),
    ))
    .await
    .expect("ping");
    assert_eq!(until(&mut ws, "pong").await["id"], 1);
    ws.send(Message::Text("{oops".into())).await.expect("bad");
    assert_eq!(
        until(&mut ws, "error").await["data"]["code"],
        "invalid_json"
    );
    let send =
        json!({"type": "send", "id": "s", "data": {"room_id": room.id, "content": "from ws"}});
    ws.send(Message::Text(send.to_string().into()))
        .await
        .expect("send");
    assert_eq!(until(&mut ws, "ack").await["data"]["content"], "from ws");
    // A room alice is not in: a send there passes the driver's checks and is refused by
    // the Hub's committer, after the sends before it are stored.
    let closed = hub
        .create_room(
            "bob",
            CreateRoom {
                name: "closed".into(),
                ..Default::default()
            },
        )
        .await
        .expect("room");
    // Pipelined: 40 sends back to back (more than the 32 the driver keeps in flight), one
    // refused at once (7: empty) and one by the committer (11: not a member), then a
    // ping. Replies — acks and errors — come in send order, the ping's pong after them.
    for i in 0..40 {
        let content = if i == 7 {
            String::new()
        } else {
            format!("p{i}")
        };
        let to = if i == 11 { &closed.id } else { &room.id };
        let f = json!({"type": "send", "id": i, "data": {"room_id": to, "content": content}});
        ws.send(Message::Text(f.to_string().into()))
            .await
            .expect("send");
    }
    ws.send(Message::Text(
        json!({"type": "ping", "id": "after"}).to_string().into(),
    ))
    .await
    .expect("ping");
    let mut replies = Vec::new();
    let mut seqs = Vec::new();
    loop {
        let v = next_json(&mut ws).await;
        match v["type"].as_str() {
            Some("ack") => {
                replies.push(v["id"].as_i64().expect("id"));
                seqs.push(v["data"]["seq"].as_u64().expect("seq"));
            }
            Some("error") => {
                let id = v["id"].as_i64().expect("id");
                let code = if id == 7 { "invalid" } else { "forbidden" };
                assert!(id == 7 || id == 11, "only 7 and 11 are refused: {v}");
                assert_eq!(v["data"]["code"], code, "{v}");
                replies.push(id);
            }
            Some("pong") => {
                assert_eq!(v["id"], "after");
                break;
            }
            _ => {}
        }
    }
    let want: Vec<i64> = (0..40).collect();
    assert_eq!(replies, want, "replies in send order, all before the pong");
    assert_eq!(seqs.len(), 38);
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "gapless: {seqs:?}"
    );
    let huge = format!("{{\"type\":\"ping\",\"x\":\"{}\"}}", "x".repeat(2 << 20));
    let _ = ws.send(Message::Text(huge.into())).await;
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("close in time")
        {
            Some(Ok(Message::Close(c))) => break c.map(|c| u16::from(c.code)),
            Some(Ok(_)) => continue,
            _ => break None,
        }
    };
    assert_eq!(code, Some(1009), "over-size message");
}

/// The axum route served on a fresh loopback port; `wrapped`: through a listener whose
/// connections are not plain `TcpStream`s (see [`Wrapped`]).
async fn serve_axum(hub: &Hub, wrapped: bool) -> SocketAddr {
    let app: axum::Router =
        axum::Router::new().route("/ws", realtime_transport_ws::axum::route(server(hub)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    if wrapped {
        tokio::spawn(async move { axum::serve(Wrapped(listener), app).await });
    } else {
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
    addr
}

#[tokio::test]
async fn axum_integration() {
    let hub = Hub::in_memory();
    let addr = serve_axum(&hub, false).await;
    behaviour(addr, hub).await;
}

/// A listener whose connections are not plain `TcpStream`s (as with TLS): the axum route
/// cannot take the TCP stream back from hyper and serves through `tokio::io::split`.
struct Wrapped(tokio::net::TcpListener);

struct WrappedIo(tokio::net::TcpStream);

impl tokio::io::AsyncRead for WrappedIo {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for WrappedIo {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl axum::serve::Listener for Wrapped {
    type Io = WrappedIo;
    type Addr = SocketAddr;
    async fn accept(&mut self) -> (WrappedIo, SocketAddr) {
        loop {
            if let Ok((s, a)) = self.0.accept().await {
                return (WrappedIo(s), a);
            }
        }
    }
    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

#[tokio::test]
async fn axum_integration_over_other_io() {
    let hub = Hub::in_memory();
    let addr = serve_axum(&hub, true).await;
    behaviour(addr, hub).await;
}

/// Requests that are not a WebSocket opening handshake (RFC 6455 §4.2.1) get 400 with
/// seed 004's error body, before any token is looked at.
#[tokio::test]
async fn axum_refuses_bad_upgrades() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let hub = Hub::in_memory();
    let addr = serve_axum(&hub, false).await;
    let good = [
        "Connection: Upgrade",
        "Upgrade: websocket",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    ];
    for (missing, details) in [
        (0, "Connection"),
        (1, "Upgrade"),
        (2, "Sec-WebSocket-Version"),
        (3, "Sec-WebSocket-Key"),
    ] {
        let mut req = format!("GET /ws?token=forged HTTP/1.1\r\nHost: {addr}\r\n");
        for (i, h) in good.iter().enumerate() {
            if i != missing {
                req.push_str(h);
                req.push_str("\r\n");
            }
        }
        req.push_str("\r\n");
        let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        tcp.write_all(req.as_bytes()).await.expect("write");
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
            .await
            .expect("answer in time")
            .expect("read");
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(
            text.starts_with("HTTP/1.1 400"),
            "without {details}: {text}"
        );
        let body: Value =
            serde_json::from_str(text.split("\r\n\r\n").nth(1).expect("body")).expect("json");
        assert_eq!(body["code"], 400);
        assert!(
            body["details"].as_str().expect("details").contains(details),
            "{body}"
        );
    }
    // The whole handshake: 101 with the RFC 6455 §1.3 example's accept key.
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\n{}\r\n\r\n",
        good.join("\r\n")
    );
    tcp.write_all(req.as_bytes()).await.expect("write");
    let mut buf = vec![0u8; 4096];
    let n = tcp.read(&mut buf).await.expect("read");
    let text = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 101"), "{text}");
    assert!(
        text.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{text}"
    );
}

/// A request hyper cannot upgrade (no upgrade handle, as on HTTP/2 or in a test without a
/// server) gets 426 with seed 004's error body, not a 101 that could never complete.
#[tokio::test]
async fn axum_answers_426_when_the_connection_cannot_upgrade() {
    use tower::ServiceExt;
    let hub = Hub::in_memory();
    let app: axum::Router =
        axum::Router::new().route("/ws", realtime_transport_ws::axum::route(server(&hub)));
    let req = axum::http::Request::get("/ws")
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .body(axum::body::Body::empty())
        .expect("request");
    let res = app.oneshot(req).await.expect("response");
    assert_eq!(res.status().as_u16(), 426);
    let body = axum::body::to_bytes(res.into_body(), 4096)
        .await
        .expect("body");
    let body: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(body["code"], 426);
    assert_eq!(body["error"], "Upgrade Required");
}

#[actix_web::test]
async fn actix_integration() {
    use actix_web::{App, HttpServer, web};
    let hub = Hub::in_memory();
    let ws = server(&hub);
    let http = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(ws.clone()))
            .route("/ws", web::get().to(realtime_transport_ws::actix::handler))
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .expect("bind");
    let addr = http.addrs()[0];
    let running = http.run();
    let handle = running.handle();
    actix_web::rt::spawn(running);
    behaviour(addr, hub).await;
    handle.stop(false).await;
}

/// The idle timeout counts from the client's last frame: a client that keeps sending stays
/// connected well past it (the one timer is moved on, not fired), a quiet one is closed
/// with 4004.
#[tokio::test]
async fn idle_timeout_counts_from_the_last_frame() {
    let hub = Hub::in_memory();
    let config = WsConfig {
        idle_timeout: Duration::from_millis(400),
        // No server pings in the window: only the client's frames count.
        ping_interval: Duration::from_secs(600),
        ..WsConfig::default()
    };
    let srv = WsServer::with_config(
        hub.clone(),
        Arc::new(JwtAuthenticator::hs256(SECRET)),
        config,
        None,
    );
    let app: axum::Router =
        axum::Router::new().route("/ws", realtime_transport_ws::axum::route(srv));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/ws?token={}", token("alice")))
            .await
            .expect("connect");
    assert_eq!(next_json(&mut ws).await["type"], "auth");
    // 1.2 s of pings every 100 ms: three idle timeouts long, never 400 ms quiet.
    for _ in 0..12 {
        ws.send(Message::Ping(Default::default()))
            .await
            .expect("ping");
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Pongs and events come back; a close here would fail the test.
        while let Ok(Some(m)) = tokio::time::timeout(Duration::ZERO, ws.next()).await {
            let m = m.expect("open");
            assert!(
                !matches!(m, Message::Close(_)),
                "closed while active: {m:?}"
            );
        }
    }
    assert_eq!(
        hub.session_count(),
        1,
        "still connected after 3× the idle timeout"
    );
    // Now quiet: closed with 4004 after ~400 ms.
    let close = loop {
        match next_frame(&mut ws).await {
            Message::Close(c) => break c.expect("close frame with a code"),
            _ => continue,
        }
    };
    assert_eq!(u16::from(close.code), 4004, "{close:?}");
}
