//! Two chat-server processes on different ports sharing one Redis and one PostgreSQL: a client
//! on one node sees what a client on the other does, and REST on either sees the same data.
//! A fault test runs its own redis-server, stops it mid-traffic and starts it again.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

async fn redis_up(url: &str) -> bool {
    let addr = url.trim_start_matches("redis://");
    tokio::net::TcpStream::connect(addr).await.is_ok()
}

async fn spawn_node(redis_url: &str, db: &str, prefix: &str) -> Node {
    Node::spawn(&[
        ("DATABASE_URL", db),
        ("REDIS_URL", redis_url),
        ("REDIS_PREFIX", prefix),
        ("PRESENCE_GRACE_MS", "100"),
    ])
    .await
}

async fn two_nodes(redis_url: &str, db: &str, prefix: &str) -> (Node, Node) {
    let a = spawn_node(redis_url, db, prefix).await;
    let b = spawn_node(redis_url, db, prefix).await;
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_on_two_nodes_see_each_other() {
    let redis = std::env::var("REALTIME_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    if !redis_up(&redis).await {
        assert!(
            !require(),
            "Redis is required (REALTIME_REQUIRE_SERVICES=1) but {redis} is unreachable"
        );
        eprintln!("SKIPPED: Redis not reachable at {redis}");
        return;
    }
    let Some((db, _schema)) = pg_schema().await else {
        return;
    };
    let prefix = format!("rt-e2e-{}:", uuid::Uuid::new_v4().simple());
    let (a, b) = two_nodes(&redis, &db, &prefix).await;
    let room = a.room("alice", &["bob"]).await;
    let mut alice = a.ws("alice").await; // on node A
    let mut bob = b.ws("bob").await; // on node B
    let online = until(&mut alice, "user_status_change").await;
    let online = if online["data"]["user_id"] == "bob" {
        online
    } else {
        until(&mut alice, "user_status_change").await
    };
    assert_eq!(
        (
            online["data"]["user_id"].as_str(),
            online["data"]["status"].as_str()
        ),
        (Some("bob"), Some("online"))
    );
    // A message sent through node B's REST API reaches Alice on node A.
    let (st, m) = b
        .post(
            "bob",
            "/api/v1/messages",
            json!({"room_id": room, "content": "from B"}),
        )
        .await;
    assert_eq!(st, 201, "{m}");
    assert_eq!(
        until(&mut alice, "event.message.send").await["data"]["content"],
        "from B"
    );
    // Typing over Bob's socket on B reaches Alice on A.
    send(
        &mut bob,
        json!({"type": "typing_start", "data": {"room_id": room}}),
    )
    .await;
    assert_eq!(
        until(&mut alice, "typing_start").await["data"]["user_id"],
        "bob"
    );
    // And the other way round.
    send(
        &mut alice,
        json!({"type": "send", "data": {"room_id": room, "content": "from A"}}),
    )
    .await;
    loop {
        let f = until(&mut bob, "event.message.send").await;
        if f["data"]["content"] == "from A" {
            break;
        }
        assert_eq!(
            f["data"]["content"], "from B",
            "only his own message may come first"
        );
    }
    // Both REST APIs see the same data.
    let (_, ha) = a
        .get("alice", &format!("/api/v1/rooms/{room}/messages"))
        .await;
    let (_, hb) = b
        .get("bob", &format!("/api/v1/rooms/{room}/messages"))
        .await;
    assert_eq!(ha, hb);
    assert_eq!(ha["messages"].as_array().map(Vec::len), Some(2));
    // Bob leaves node B entirely: Alice sees him go offline once the grace period ends.
    drop(bob);
    let off = loop {
        let f = until(&mut alice, "user_status_change").await;
        if f["data"]["user_id"] == "bob" {
            break f;
        }
    };
    assert_eq!(off["data"]["status"], "offline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_nodes_carry_on_through_a_redis_restart() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let spawn = || {
        tokio::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
    };
    let mut server = match spawn() {
        Ok(c) => c,
        Err(e) => {
            assert!(
                !require(),
                "redis-server is required for the fault test: {e}"
            );
            eprintln!("SKIPPED: cannot run redis-server ({e})");
            return;
        }
    };
    let url = format!("redis://127.0.0.1:{port}");
    for _ in 0..100 {
        if redis_up(&url).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let Some((db, _schema)) = pg_schema().await else {
        return;
    };
    let (a, b) = two_nodes(&url, &db, "realtime:").await;
    let room = a.room("alice", &["bob"]).await;
    let mut bob = b.ws("bob").await;
    let (st, _) = a
        .post(
            "alice",
            "/api/v1/messages",
            json!({"room_id": room, "content": "before"}),
        )
        .await;
    assert_eq!(st, 201);
    assert_eq!(
        until(&mut bob, "event.message.send").await["data"]["content"],
        "before"
    );

    server.kill().await.expect("stop redis");
    let _ = server.wait().await;
    // Mid-outage, messages are still stored and acknowledged (delivery to B waits for Redis).
    let (st, _) = a
        .post(
            "alice",
            "/api/v1/messages",
            json!({"room_id": room, "content": "during"}),
        )
        .await;
    assert_eq!(st, 201, "the store is up, so the send is acknowledged");
    assert_eq!(
        a.http
            .get(a.url("/health/ready"))
            .send()
            .await
            .expect("ready")
            .status(),
        503,
        "readiness turns red"
    );

    let mut server = spawn().expect("restart redis");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while tokio::time::Instant::now() < deadline {
        let ra = a
            .http
            .get(a.url("/health/ready"))
            .send()
            .await
            .expect("ready")
            .status();
        let rb = b
            .http
            .get(b.url("/health/ready"))
            .send()
            .await
            .expect("ready")
            .status();
        if ra == 200 && rb == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Both recovered without a restart: everything acknowledged from now on is delivered.
    for i in 0..20 {
        let (st, _) = a
            .post(
                "alice",
                "/api/v1/messages",
                json!({"room_id": room, "content": format!("after {i}")}),
            )
            .await;
        assert_eq!(st, 201);
    }
    let mut got = Vec::new();
    while got.len() < 20 {
        let f = until(&mut bob, "event.message.send").await;
        let c = f["data"]["content"].as_str().expect("content").to_owned();
        if c.starts_with("after") {
            got.push(c);
        }
    }
    assert_eq!(
        got,
        (0..20).map(|i| format!("after {i}")).collect::<Vec<_>>(),
        "all, in order"
    );
    // And the one sent during the outage is in the history (clients recover it by seq).
    let (_, h) = b
        .get("bob", &format!("/api/v1/rooms/{room}/messages?limit=100"))
        .await;
    assert!(
        h["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .any(|m| m["content"] == "during")
    );
    server.kill().await.expect("stop redis");
}
