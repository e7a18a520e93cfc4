//! WebSocket behaviour over real sockets: auth, limits, bad frames, recovery, slow consumers.

mod common;

use common::*;
use futures_util::SinkExt;
use realtime_core::{Claims, JwtAuthenticator, MessageKind, SendMessage};
use serde_json::json;
use std::time::Duration;
use tokio_tungstenite::tungstenite::{self, Message};

fn status_of(e: tungstenite::Error) -> u16 {
    match e {
        tungstenite::Error::Http(r) => r.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn expired_and_forged_tokens_are_refused() {
    let s = start(|_| {}).await;
    let mut expired = Claims::new("u", 0);
    expired.exp = 1_000_000; // 1970
    let expired = JwtAuthenticator::hs256(SECRET.as_bytes())
        .issue(&expired)
        .expect("token");
    let forged = JwtAuthenticator::hs256(b"someone-else's-secret-of-32-bytes!!")
        .issue(&Claims::new("u", 3600))
        .expect("token");
    for t in [&expired, &forged, &"garbage".to_string()] {
        let url = format!("ws://{}/ws?token={t}", s.addr);
        let e = tokio_tungstenite::connect_async(url)
            .await
            .expect_err("refused");
        assert_eq!(status_of(e), 401, "refused before the upgrade");
        let r = s
            .http
            .get(s.url("/api/v1/users"))
            .bearer_auth(t)
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), 401);
    }
    // Without a token in the URL: the first frame must authenticate.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", s.addr))
        .await
        .expect("upgrade");
    send(&mut ws, json!({"type": "auth", "data": {"token": forged}})).await;
    assert_eq!(
        until(&mut ws, "error").await["data"]["code"],
        "unauthenticated"
    );
    assert_eq!(close_code(&mut ws, 5).await, Some(4001));
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", s.addr))
        .await
        .expect("upgrade");
    send(
        &mut ws,
        json!({"type": "auth", "data": {"token": token("frame-user")}}),
    )
    .await;
    let ok = next_json(&mut ws).await;
    assert_eq!(
        (ok["type"].as_str(), ok["data"]["user_id"].as_str()),
        (Some("auth"), Some("frame-user"))
    );
    // And with the Authorization header.
    let mut req =
        tungstenite::client::IntoClientRequest::into_client_request(format!("ws://{}/ws", s.addr))
            .expect("req");
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", token("hdr")).parse().expect("header"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("upgrade with header");
    assert_eq!(next_json(&mut ws).await["data"]["user_id"], "hdr");
}

#[tokio::test]
async fn no_auth_frame_in_time_closes_with_4001() {
    let s = start(|_| {}).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", s.addr))
        .await
        .expect("upgrade");
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(
        close_code(&mut ws, 8).await,
        Some(4001),
        "the first frame must be auth"
    );
}

#[tokio::test]
async fn a_2_mb_frame_is_closed_with_1009() {
    let s = start(|_| {}).await;
    let mut ws = s.ws("big").await;
    let huge = format!(
        "{{\"type\":\"ping\",\"data\":\"{}\"}}",
        "x".repeat(2 * 1024 * 1024)
    );
    let _ = ws.send(Message::Text(huge.into())).await;
    assert_eq!(close_code(&mut ws, 5).await, Some(1009));
}

#[tokio::test]
async fn malformed_json_gets_an_error_frame_and_the_connection_stays() {
    let s = start(|_| {}).await;
    let mut ws = s.ws("m").await;
    ws.send(Message::Text("{not json".into()))
        .await
        .expect("send");
    let e = until(&mut ws, "error").await;
    assert_eq!(e["data"]["code"], "invalid_json");
    assert_eq!(e["id"], serde_json::Value::Null);
    send(&mut ws, json!({"type": "teleport", "id": 5})).await;
    let e = until(&mut ws, "error").await;
    assert_eq!(
        (e["id"].as_i64(), e["data"]["code"].as_str()),
        (Some(5), Some("invalid"))
    );
    ws.send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .expect("send");
    assert_eq!(until(&mut ws, "error").await["data"]["code"], "invalid");
    send(&mut ws, json!({"type": "ping", "id": "p"})).await;
    let pong = until(&mut ws, "pong").await;
    assert_eq!(pong["id"], "p", "still connected");
}

#[tokio::test]
async fn commands_over_the_socket_are_acked() {
    let s = start(|_| {}).await;
    let room = s.room("alice", &["bob"]).await;
    let mut a = s.ws("alice").await;
    let mut b = s.ws("bob").await;
    send(&mut a, json!({"type": "send", "id": 1, "data": {"room_id": room, "content": "hi", "client_id": "c-1"}})).await;
    let ack = until(&mut a, "ack").await;
    assert_eq!(
        (ack["id"].as_i64(), ack["data"]["seq"].as_u64()),
        (Some(1), Some(1))
    );
    let push = until(&mut b, "event.message.send").await;
    let mid = push["data"]["id"].as_str().expect("id").to_owned();
    send(&mut a, json!({"type": "send", "id": 2, "data": {"room_id": room, "content": "hi", "client_id": "c-1"}})).await;
    assert_eq!(
        until(&mut a, "ack").await["data"]["id"],
        mid.as_str(),
        "retry returns the first message"
    );
    send(
        &mut b,
        json!({"type": "react", "id": 3, "data": {"message_id": mid, "emoji": "👍"}}),
    )
    .await;
    assert_eq!(until(&mut b, "ack").await["data"]["changed"], true);
    assert_eq!(
        until(&mut a, "event.message.reaction.add").await["data"]["emoji"],
        "👍"
    );
    send(
        &mut b,
        json!({"type": "read", "id": 4, "data": {"message_id": mid}}),
    )
    .await;
    assert_eq!(until(&mut b, "ack").await["data"]["seq"], 1);
    send(
        &mut a,
        json!({"type": "edit", "id": 5, "data": {"message_id": mid, "content": "hello"}}),
    )
    .await;
    assert_eq!(until(&mut a, "ack").await["data"]["content"], "hello");
    assert_eq!(
        until(&mut b, "event.message.edit").await["data"]["content"],
        "hello"
    );
    send(
        &mut a,
        json!({"type": "history", "id": 6, "data": {"room_id": room}}),
    )
    .await;
    assert_eq!(
        until(&mut a, "ack").await["data"]["messages"][0]["content"],
        "hello"
    );
    send(
        &mut b,
        json!({"type": "delete", "id": 7, "data": {"message_id": mid}}),
    )
    .await;
    assert_eq!(
        until(&mut b, "error").await["data"]["code"],
        "forbidden",
        "bob did not send it"
    );
}

#[tokio::test]
async fn a_join_over_the_socket_answers_with_the_room_and_subscribes() {
    let s = start(|_| {}).await;
    let room = s.room("alice", &[]).await;
    let (_, r) = s.get("alice", &format!("/api/v1/rooms/{room}")).await;
    let epoch = r["epoch"].as_str().expect("epoch").to_owned();
    let mut carol = s.ws("carol").await;
    // The `join` command's answer: its room, the room's epoch and latest seq.
    async fn join(
        ws: &mut Ws,
        id: &str,
        room: &str,
    ) -> (serde_json::Value, serde_json::Value, serde_json::Value) {
        send(
            ws,
            json!({"type": "join", "id": id, "data": {"room_id": room}}),
        )
        .await;
        let ack = until(ws, "ack").await;
        assert_eq!(ack["id"], id, "{ack}");
        let d = &ack["data"];
        (
            d["room_id"].clone(),
            d["epoch"].clone(),
            d["latest_seq"].clone(),
        )
    }
    // Not a member yet: the join makes her one and subscribes this session.
    assert_eq!(
        join(&mut carol, "j", &room).await,
        (json!(room), json!(epoch), json!(0))
    );
    let (st, _) = s
        .post(
            "alice",
            "/api/v1/messages",
            json!({"room_id": room, "content": "hi carol"}),
        )
        .await;
    assert_eq!(st, 201);
    let m = until(&mut carol, "event.message.send").await;
    assert_eq!(m["data"]["content"], "hi carol");
    // A member already: the same answer, the seq moved on.
    assert_eq!(
        join(&mut carol, "k", &room).await,
        (json!(room), json!(epoch), json!(1))
    );
    // An unknown room: a typed error, the session stays.
    send(
        &mut carol,
        json!({"type": "join", "id": "n", "data": {"room_id": "nope"}}),
    )
    .await;
    let err = until(&mut carol, "error").await;
    assert_eq!(err["id"], "n", "{err}");
    assert_eq!(err["data"]["code"], "not_found");
}

#[tokio::test]
async fn a_client_that_missed_50_messages_gets_exactly_those() {
    let s = start(|_| {}).await;
    let room = s.room("alice", &["bob"]).await;
    let mut bob = s.ws("bob").await;
    s.post(
        "alice",
        "/api/v1/messages",
        json!({"room_id": room, "content": "seen"}),
    )
    .await;
    let seen = until(&mut bob, "event.message.send").await;
    let last_seq = seen["data"]["seq"].as_u64().expect("seq");
    let (_, r) = s.get("bob", &format!("/api/v1/rooms/{room}")).await;
    let epoch = r["epoch"].as_str().expect("epoch").to_owned();
    drop(bob);
    for i in 0..50 {
        let (st, _) = s
            .post(
                "alice",
                "/api/v1/messages",
                json!({"room_id": room, "content": format!("missed {i}")}),
            )
            .await;
        assert_eq!(st, 201);
    }
    let mut bob = s.ws("bob").await;
    // Frames pushed before the join (none are expected) would be live; take only the replay.
    send(&mut bob, json!({"type": "join", "id": "j", "data": {"room_id": room, "since": {"seq": last_seq, "epoch": epoch}}})).await;
    let mut got = Vec::new();
    loop {
        let f = next_json(&mut bob).await;
        match f["type"].as_str() {
            Some("event.message.send") => got.push((
                f["data"]["seq"].as_u64().expect("seq"),
                f["data"]["content"].as_str().expect("c").to_owned(),
            )),
            Some("ack") => {
                assert_eq!(f["id"], "j");
                assert_eq!(f["data"]["recovered"], true);
                assert_eq!(f["data"]["replayed"], 50);
                break;
            }
            _ => {}
        }
    }
    let want: Vec<(u64, String)> = (0..50)
        .map(|i| (last_seq + 1 + i, format!("missed {i}")))
        .collect();
    assert_eq!(got, want, "exactly the 50 missed, in order");
    send(&mut bob, json!({"type": "join", "id": "k", "data": {"room_id": room, "since": {"seq": 0, "epoch": "stale"}}})).await;
    let ack = until(&mut bob, "ack").await;
    assert_eq!(
        ack["data"]["recovered"], false,
        "unknown epoch: reload, never a silent gap"
    );
}

#[tokio::test]
async fn a_client_that_never_reads_is_disconnected_while_others_keep_receiving() {
    let s = start(|c| {
        c.session_queue_frames = 128;
        c.write_timeout_secs = 1;
    })
    .await;
    let room = s.room("alice", &["slow", "fast"]).await;
    let _slow = s.ws("slow").await; // never read again
    let mut fast = s.ws("fast").await;
    let total = 3000usize;
    // The reader hands the connection back: dropped, it would close the fast session too,
    // racing the count of sessions below (CI once saw 0).
    let reader = tokio::spawn(async move {
        let mut n = 0;
        while n < total {
            let f = next_json(&mut fast).await;
            if f["type"] == "event.message.send" {
                n += 1;
            }
        }
        (n, fast)
    });
    let body = "x".repeat(4000);
    for _ in 0..total {
        let req = SendMessage {
            room_id: room.clone(),
            content: body.clone(),
            kind: MessageKind::Text,
            client_id: None,
        };
        s.hub().send_message("alice", req).await.expect("send");
    }
    let (n, _fast) = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .expect("fast reader finished")
        .expect("join");
    assert_eq!(n, total, "the reading client got every message");
    assert!(
        s.hub().metrics().slow_consumers >= 1,
        "the slow one was cut off: {:?}",
        s.hub().metrics()
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while s.hub().session_count() > 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(s.hub().session_count(), 1, "only the fast session remains");
    assert_eq!(panics(), 0, "no server task panicked");
}

#[tokio::test]
async fn sustained_flooding_is_rate_limited_then_closed() {
    let s = start(|c| {
        c.rate_per_second = 5;
        c.rate_burst = 5;
    })
    .await;
    let mut ws = s.ws("flood").await;
    for i in 0..200 {
        if ws
            .send(Message::Text(
                json!({"type": "ping", "id": i}).to_string().into(),
            ))
            .await
            .is_err()
        {
            break;
        }
    }
    let mut limited = 0;
    let code = loop {
        match tokio::time::timeout(
            Duration::from_secs(5),
            futures_util::StreamExt::next(&mut ws),
        )
        .await
        .expect("frame")
        {
            Some(Ok(Message::Text(t))) => {
                let v: serde_json::Value = serde_json::from_str(t.as_str()).expect("json");
                if v["data"]["code"] == "rate_limited" {
                    limited += 1;
                }
            }
            Some(Ok(Message::Close(c))) => break c.map(|c| u16::from(c.code)),
            Some(Ok(_)) => {}
            _ => break None,
        }
    };
    assert!(limited >= 1, "told before being closed");
    assert_eq!(code, Some(4029));
}

#[tokio::test]
async fn shutdown_tells_clients_then_closes_with_4002() {
    let s = start(|_| {}).await;
    let mut ws = s.ws("u").await;
    let hub = s.hub().clone();
    tokio::spawn(async move { hub.shutdown("deploy", Duration::from_millis(200)).await });
    let ev = until(&mut ws, "event.system.shutdown").await;
    assert_eq!(ev["data"]["reason"], "deploy");
    assert_eq!(close_code(&mut ws, 5).await, Some(4002));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(panics(), 0, "no server task panicked");
}

#[tokio::test]
async fn clients_vanishing_mid_stream_cause_no_panic() {
    let s = start(|c| c.write_timeout_secs = 1).await;
    let room = s.room("alice", &["v0", "v1", "v2", "v3"]).await;
    let mut socks = Vec::new();
    for i in 0..4 {
        socks.push(s.ws(&format!("v{i}")).await);
    }
    let hub = s.hub().clone();
    let sender = tokio::spawn(async move {
        for _ in 0..300 {
            let req = SendMessage {
                room_id: room.clone(),
                content: "x".repeat(2000),
                kind: MessageKind::Text,
                client_id: None,
            };
            let _ = hub.send_message("alice", req).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    drop(socks); // every client disappears while frames are being written
    sender.await.expect("sender");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while s.hub().session_count() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(s.hub().session_count(), 0, "all sessions cleaned up");
    assert_eq!(panics(), 0, "no server task panicked");
}

#[tokio::test]
async fn a_silent_client_is_closed_after_the_idle_timeout() {
    let s = start(|c| c.idle_timeout_secs = 1).await;
    let mut ws = s.ws("quiet").await;
    assert_eq!(close_code(&mut ws, 5).await, Some(4004));
}

#[tokio::test]
async fn connections_per_user_are_limited() {
    let s = start(|c| c.max_connections_per_user = 1).await;
    let _first = s.ws("one").await;
    let url = format!("ws://{}/ws?token={}", s.addr, token("one"));
    let (mut second, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("upgrade");
    assert_eq!(
        until(&mut second, "error").await["data"]["code"],
        "forbidden"
    );
    assert_eq!(close_code(&mut second, 5).await, Some(4009));
}

#[tokio::test]
async fn browser_origins_are_checked() {
    let s = start(|c| c.allowed_origins = vec!["http://good.example".into()]).await;
    let req = |origin: &str| {
        let mut r = tungstenite::client::IntoClientRequest::into_client_request(format!(
            "ws://{}/ws?token={}",
            s.addr,
            token("o")
        ))
        .expect("request");
        r.headers_mut()
            .insert("origin", origin.parse().expect("header"));
        r
    };
    let e = tokio_tungstenite::connect_async(req("http://evil.example"))
        .await
        .expect_err("refused");
    assert_eq!(status_of(e), 403);
    let (mut ok, _) = tokio_tungstenite::connect_async(req("http://good.example"))
        .await
        .expect("allowed");
    assert_eq!(next_json(&mut ok).await["type"], "auth");
    let pre = s
        .http
        .request(reqwest::Method::OPTIONS, s.url("/api/v1/messages"))
        .header("origin", "http://good.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .expect("preflight");
    assert_eq!(
        pre.headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("http://good.example")
    );
}
