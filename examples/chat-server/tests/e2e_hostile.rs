//! What a hostile or careless client tries against the reference server over HTTP: huge
//! profile fields, registration and login floods, oversized bodies, NUL characters,
//! malformed tokens, connections that never finish their headers, too many connections.

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `POST /api/v1/users` with `body`, without a token.
async fn register(s: &Server, body: Value) -> reqwest::Response {
    s.http
        .post(s.url("/api/v1/users"))
        .json(&body)
        .send()
        .await
        .expect("post")
}

/// Every client still answers a ping: nobody was disconnected.
async fn all_alive(clients: &mut [Ws]) {
    for (i, ws) in clients.iter_mut().enumerate() {
        send(ws, json!({"type": "ping", "id": i})).await;
        let pong = until(ws, "pong").await;
        assert_eq!(pong["id"], i, "client {i} answered");
    }
}

#[tokio::test]
async fn a_huge_profile_field_is_refused_and_disconnects_nobody() {
    let s = start(|_| {}).await;
    let mut clients = Vec::new();
    for i in 0..20 {
        clients.push(s.ws(&format!("watcher-{i}")).await);
    }
    s.get("mallory", "/api/v1/users").await;
    let huge = "x".repeat(1_500_000);
    for (field, value) in [
        ("avatar", huge.clone()),
        ("display_name", huge[..1_100_000].to_owned()),
        ("email", "a".repeat(300)),
    ] {
        let r = s
            .http
            .put(s.url("/api/v1/users/mallory"))
            .bearer_auth(token("mallory"))
            .json(&json!({ field: value }))
            .send()
            .await
            .expect("put");
        assert_eq!(r.status().as_u16(), 422, "{field}");
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["kind"], "invalid", "{body}");
        assert!(
            body["details"].as_str().unwrap_or_default().contains(field),
            "{body}"
        );
    }
    // A field within its limit goes through and reaches everyone.
    let r = s
        .http
        .put(s.url("/api/v1/users/mallory"))
        .bearer_auth(token("mallory"))
        .json(&json!({ "avatar": format!("https://example.com/{}", "a".repeat(1900)) }))
        .send()
        .await
        .expect("put");
    assert_eq!(r.status().as_u16(), 200);
    for ws in &mut clients {
        let ev = until(ws, "event.user.profile.update").await;
        assert_eq!(ev["data"]["id"], "mallory");
    }
    all_alive(&mut clients).await;
    assert_eq!(s.hub().metrics().slow_consumers, 0);
}

#[tokio::test]
async fn registrations_are_bounded_in_size_and_rate() {
    let s = start(|c| c.registrations_per_minute = 3).await;
    let big = "y".repeat(650 * 1024);
    let r = register(
        &s,
        json!({"username": "big", "display_name": big, "email": big, "avatar": big}),
    )
    .await;
    assert_eq!(r.status().as_u16(), 422, "oversized fields");
    for i in 0..2 {
        let r = register(
            &s,
            json!({"username": format!("ok-{i}"), "password": "a-password"}),
        )
        .await;
        assert_eq!(r.status().as_u16(), 201);
    }
    let r = register(
        &s,
        json!({"username": "one-too-many", "password": "a-password"}),
    )
    .await;
    assert_eq!(r.status().as_u16(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["kind"], "rate_limited");
}

#[tokio::test]
async fn failed_logins_are_rate_limited_per_user_and_address() {
    let s = start(|c| c.logins_per_minute = 5).await;
    let r = register(
        &s,
        json!({"username": "victim", "password": "the-right-one"}),
    )
    .await;
    assert_eq!(r.status().as_u16(), 201);
    let login = |pw: &'static str| {
        s.http
            .post(s.url("/api/v1/auth/login"))
            .json(&json!({"username": "victim", "password": pw}))
            .send()
    };
    for _ in 0..5 {
        assert_eq!(login("guess").await.expect("login").status().as_u16(), 401);
    }
    let r = login("the-right-one").await.expect("login");
    assert_eq!(r.status().as_u16(), 429, "even the right password waits");
    assert!(r.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn bodies_over_the_limit_get_413_and_bad_json_400() {
    let s = start(|_| {}).await;
    s.get("alice", "/api/v1/users").await;
    let body = format!(
        "{{\"name\":\"r\",\"description\":\"{}\"}}",
        "z".repeat(3 << 20)
    );
    let r = s
        .http
        .post(s.url("/api/v1/rooms"))
        .bearer_auth(token("alice"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 413);
    let v: Value = r.json().await.expect("json");
    assert_eq!(
        (v["code"].as_u64(), v["kind"].as_str()),
        (Some(413), Some("body_too_large"))
    );
    let r = s
        .http
        .post(s.url("/api/v1/rooms"))
        .bearer_auth(token("alice"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 400);
}

#[tokio::test]
async fn nul_characters_and_long_descriptions_get_422() {
    let s = start(|_| {}).await;
    let room = s.room("alice", &[]).await;
    for description in ["nul \u{0} inside".to_owned(), "d".repeat(5000)] {
        let r = s
            .http
            .put(s.url(&format!("/api/v1/rooms/{room}")))
            .bearer_auth(token("alice"))
            .json(&json!({ "description": description }))
            .send()
            .await
            .expect("put");
        assert_eq!(r.status().as_u16(), 422);
    }
    let (status, body) = s
        .post(
            "alice",
            "/api/v1/rooms",
            json!({"name": "n", "description": "a \u{0} b"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
}

#[tokio::test]
async fn a_room_cannot_start_with_more_than_1000_members() {
    let s = start(|_| {}).await;
    s.get("alice", "/api/v1/users").await;
    let members: Vec<String> = (0..1001).map(|i| format!("u{i}")).collect();
    let (status, body) = s
        .post(
            "alice",
            "/api/v1/rooms",
            json!({"name": "big", "members": members}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["details"]
            .as_str()
            .unwrap_or_default()
            .contains("members")
    );
}

#[tokio::test]
async fn refused_tokens_do_not_echo_the_decoders_messages() {
    let s = start(|_| {}).await;
    // A well-formed JWT whose claims are not the expected shape, and one that is garbage.
    let header = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"; // {"alg":"HS256","typ":"JWT"}
    let claims = "eyJzdWIiOjQyfQ"; // {"sub":42}
    for token in [
        format!("{header}.{claims}.c2ln"),
        "a.b.c".into(),
        "x".into(),
    ] {
        let r = s
            .http
            .get(s.url("/api/v1/users"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("get");
        assert_eq!(r.status().as_u16(), 401);
        let v: Value = r.json().await.expect("json");
        let details = v["details"].as_str().unwrap_or_default();
        for leak in [
            "line",
            "column",
            "expected",
            "invalid type",
            "Base64",
            "Json(",
        ] {
            assert!(!details.contains(leak), "{token}: {details}");
        }
    }
}

/// Read until the server closes the connection (EOF or reset); `false` if it stays open
/// for `secs`.
async fn closed_within(tcp: &mut tokio::net::TcpStream, secs: u64) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn connections_that_never_finish_their_headers_are_closed() {
    let s = start(|c| c.header_read_timeout_secs = 1).await;
    let mut silent = tokio::net::TcpStream::connect(s.addr).await.expect("tcp");
    let mut slow = tokio::net::TcpStream::connect(s.addr).await.expect("tcp");
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .expect("write");
    assert!(
        closed_within(&mut silent, 5).await,
        "silent connection closed"
    );
    assert!(closed_within(&mut slow, 5).await, "half a header, closed");
    // A kept-alive connection that goes quiet after a request is closed too.
    let mut idle = tokio::net::TcpStream::connect(s.addr).await.expect("tcp");
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    assert!(closed_within(&mut idle, 5).await, "idle keep-alive closed");
    let (status, _) = s.get("alice", "/api/v1/users").await;
    assert_eq!(status, 200, "the server still serves");
}

#[tokio::test]
async fn connections_past_the_cap_are_closed_at_once_and_websockets_count() {
    let s = start(|c| {
        c.max_connections = Some(3);
        c.header_read_timeout_secs = 60;
    })
    .await;
    let ws = s.ws("alice").await;
    let _a = tokio::net::TcpStream::connect(s.addr).await.expect("tcp");
    let _b = tokio::net::TcpStream::connect(s.addr).await.expect("tcp");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut over = tokio::net::TcpStream::connect(s.addr).await.expect("tcp");
    let _ = over
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    assert!(
        closed_within(&mut over, 5).await,
        "fourth connection closed"
    );
    drop(ws);
    // The WebSocket's slot comes back when it ends.
    let mut ok = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let client = reqwest::Client::new();
        if let Ok(r) = client.get(s.url("/health")).send().await {
            ok = r.status().is_success();
            break;
        }
    }
    assert!(ok, "a slot freed by the WebSocket serves a new request");
}
