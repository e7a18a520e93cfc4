//! Seed 000's two flows and the everyday behaviours, over real sockets.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn seed_000_message_flow() {
    let s = start(|_| {}).await;
    let room = s.room("alice", &["bob"]).await;
    let mut bob = s.ws("bob").await;
    // Seed 000: POST /api/v1/messages {room_id, content, type: "text"}
    let (status, msg) = s
        .post(
            "alice",
            "/api/v1/messages",
            json!({"room_id": room, "content": "Hello everyone!", "type": "text"}),
        )
        .await;
    assert_eq!(status, 201, "{msg}");
    assert_eq!(msg["seq"], 1);
    let push = until(&mut bob, "event.message.send").await;
    assert_eq!(push["data"]["content"], "Hello everyone!");
    assert_eq!(push["data"]["message_id"], msg["id"]);
    assert_eq!(push["type"], "event.message.send");
    assert_eq!(push["level"], "message");
    assert_eq!(push["action"], "send");
    assert_eq!(push["room_id"], room.as_str());
    assert_eq!(push["user_id"], "alice");
    let (status, page) = s
        .get("bob", &format!("/api/v1/rooms/{room}/messages"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(page["messages"][0]["content"], "Hello everyone!");
    assert_eq!(page["has_more"], false);
}

#[tokio::test]
async fn seed_000_room_join_flow() {
    let s = start(|_| {}).await;
    let room = s.room("alice", &[]).await;
    let mut alice = s.ws("alice").await;
    s.get("carol", "/api/v1/users").await;
    let mut carol = s.ws("carol").await;
    // Seed 000: POST /api/v1/rooms/:id/join
    let (status, member) = s
        .post("carol", &format!("/api/v1/rooms/{room}/join"), json!({}))
        .await;
    assert_eq!(status, 200, "{member}");
    assert_eq!(member["role"], "member");
    let joined = until(&mut alice, "user_join").await;
    assert_eq!(joined["data"]["user_id"], "carol");
    assert_eq!(joined["data"]["username"], "carol-name");
    assert_eq!(
        (&joined["level"], &joined["action"]),
        (&json!("room"), &json!("join"))
    );
    // The Hub added carol's connection to the room: she receives what follows.
    s.post(
        "alice",
        "/api/v1/messages",
        json!({"room_id": room, "content": "welcome"}),
    )
    .await;
    assert_eq!(
        until(&mut carol, "event.message.send").await["data"]["content"],
        "welcome"
    );
}

#[tokio::test]
async fn typing_starts_and_stops_by_itself() {
    let s = start(|c| c.typing_ttl_ms = 300).await;
    let room = s.room("alice", &["bob"]).await;
    let mut alice = s.ws("alice").await;
    let mut bob = s.ws("bob").await;
    // Seed 000's client example: {type: 'typing_start', data: {room_id}}
    send(
        &mut bob,
        json!({"type": "typing_start", "data": {"room_id": room}}),
    )
    .await;
    let start = until(&mut alice, "typing_start").await;
    assert_eq!(start["data"]["room_id"], room.as_str());
    assert_eq!(start["data"]["user_id"], "bob");
    assert_eq!(start["data"]["username"], "bob-name");
    let stop = until(&mut alice, "typing_stop").await;
    assert_eq!(stop["data"]["reason"], "timeout");
    // REST typing works the same.
    let r = s
        .http
        .post(s.url(&format!("/api/v1/rooms/{room}/typing/start")))
        .bearer_auth(token("bob"))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 204);
    assert_eq!(
        until(&mut alice, "typing_start").await["data"]["user_id"],
        "bob"
    );
}

#[tokio::test]
async fn presence_with_two_connections_of_one_user() {
    let s = start(|c| c.presence_grace_ms = 200).await;
    let mut watcher = s.ws("watcher").await;
    let one = s.ws("u").await;
    let mut two = s.ws("u").await;
    let mut online = until(&mut watcher, "user_status_change").await;
    while online["data"]["user_id"] != "u" {
        online = until(&mut watcher, "user_status_change").await;
    }
    assert_eq!(
        (
            online["data"]["user_id"].as_str(),
            online["data"]["status"].as_str()
        ),
        (Some("u"), Some("online"))
    );
    assert_eq!(
        (&online["level"], &online["action"]),
        (&json!("user"), &json!("online"))
    );
    drop(one);
    let quiet = within(&mut watcher, Duration::from_millis(600)).await;
    assert!(
        quiet.iter().all(|f| f["type"] != "user_status_change"),
        "one connection left: still online: {quiet:?}"
    );
    send(
        &mut two,
        json!({"type": "user_status_change", "id": 1, "data": {"status": "away"}}),
    )
    .await;
    assert_eq!(until(&mut two, "ack").await["id"], 1);
    assert_eq!(
        until(&mut watcher, "user_status_change").await["data"]["status"],
        "away"
    );
    drop(two);
    let offline = until(&mut watcher, "user_status_change").await;
    assert_eq!(offline["data"]["status"], "offline");
    assert_eq!(
        (&offline["level"], &offline["action"]),
        (&json!("user"), &json!("offline"))
    );
    let (_, u) = s.get("watcher", "/api/v1/users/u").await;
    assert_eq!(u["status"], "offline");
    assert!(u["last_seen"].is_string());
}

#[tokio::test]
async fn a_non_member_cannot_post_or_read() {
    let s = start(|_| {}).await;
    let room = s.room("alice", &[]).await;
    let (status, body) = s
        .post(
            "mallory",
            "/api/v1/messages",
            json!({"room_id": room, "content": "hi"}),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(body["code"], 403, "seed 004 error shape: {body}");
    assert_eq!(body["error"], "Forbidden");
    assert!(body["details"].is_string());
    assert_eq!(
        s.get("mallory", &format!("/api/v1/rooms/{room}/messages"))
            .await
            .0,
        403
    );
    let mut m = s.ws("mallory").await;
    send(
        &mut m,
        json!({"type": "send", "id": "x1", "data": {"room_id": room, "content": "hi"}}),
    )
    .await;
    let err = until(&mut m, "error").await;
    assert_eq!(err["id"], "x1");
    assert_eq!(err["data"]["code"], "forbidden");
    send(
        &mut m,
        json!({"type": "subscribe", "id": "x2", "data": {"channel": format!("room:{room}")}}),
    )
    .await;
    assert_eq!(until(&mut m, "error").await["data"]["code"], "forbidden");
    assert_eq!(s.get("mallory", "/api/v1/rooms/nope").await.0, 404);
}

#[tokio::test]
async fn rest_bad_input_gets_the_error_shape() {
    let s = start(|_| {}).await;
    let room = s.room("alice", &[]).await;
    let r = s
        .http
        .post(s.url("/api/v1/messages"))
        .bearer_auth(token("alice"))
        .header("content-type", "application/json")
        .body("{bad")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(
        (v["code"].as_u64(), v["kind"].as_str()),
        (Some(400), Some("invalid_json"))
    );
    let (status, v) = s
        .post("alice", "/api/v1/messages", json!({"room_id": room}))
        .await;
    assert_eq!(
        (status, v["code"].as_u64()),
        (422, Some(422)),
        "missing content: {v}"
    );
    let (status, _) = s
        .post(
            "alice",
            "/api/v1/messages",
            json!({"room_id": room, "content": "x".repeat(20_000)}),
        )
        .await;
    assert_eq!(status, 413);
    let (status, _) = s
        .post(
            "alice",
            "/api/v1/messages",
            json!({"room_id": room, "content": "x", "type": "video"}),
        )
        .await;
    assert_eq!(status, 422);
    let (status, _) = s
        .post("alice", "/api/v1/users", json!({"username": "has space"}))
        .await;
    assert_eq!(status, 422);
    let (status, _) = s
        .post("alice", "/api/v1/users", json!({"username": "alice-name"}))
        .await;
    assert_eq!(
        status, 409,
        "alice-name exists (created from alice's token)"
    );
    let r = s
        .http
        .get(s.url("/api/v1/users"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn register_login_and_use_the_issued_token() {
    let s = start(|_| {}).await;
    let r = s
        .http
        .post(s.url("/api/v1/users"))
        .json(&json!({"username": "dana", "password": "correct horse battery"}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 201);
    let user: serde_json::Value = r.json().await.expect("json");
    assert!(
        user.get("password_hash").is_none() && user.get("password").is_none(),
        "never returned: {user}"
    );
    let bad = s
        .http
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({"username": "dana", "password": "wrong password"}))
        .send()
        .await
        .expect("post");
    assert_eq!(bad.status(), 401);
    let ok: serde_json::Value = s
        .http
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({"username": "dana", "password": "correct horse battery"}))
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    let t = ok["token"].as_str().expect("token");
    let me = s
        .http
        .get(s.url(&format!(
            "/api/v1/users/{}",
            user["id"].as_str().expect("id")
        )))
        .bearer_auth(t)
        .send()
        .await
        .expect("get");
    assert_eq!(me.status(), 200);
    let short = s
        .http
        .post(s.url("/api/v1/users"))
        .json(&json!({"username": "eve", "password": "short"}))
        .send()
        .await
        .expect("post");
    assert_eq!(short.status(), 422);
}

#[tokio::test]
async fn health_and_metrics() {
    let s = start(|_| {}).await;
    for p in ["/health", "/health/ready", "/health/live"] {
        assert_eq!(
            s.http.get(s.url(p)).send().await.expect("get").status(),
            200,
            "{p}"
        );
    }
    let room = s.room("alice", &[]).await;
    s.post(
        "alice",
        "/api/v1/messages",
        json!({"room_id": room, "content": "x"}),
    )
    .await;
    let (_, m) = s.get("alice", "/api/v1/events/metrics").await;
    assert!(m["events_published"].as_u64() >= Some(2), "{m}");
    assert_eq!(m["by_type"]["event.message.send"], 1);
    let (_, h) = s
        .get("alice", "/api/v1/events/history?type=event.message.")
        .await;
    assert_eq!(h["events"][0]["type"], "event.message.send");
    let (status, _) = s
        .post(
            "alice",
            "/api/v1/events/system",
            json!({"type": "maintenance", "data": {}}),
        )
        .await;
    assert_eq!(status, 403, "not an admin");
}

#[tokio::test]
async fn the_web_client_is_served() {
    let s = start(|_| {}).await;
    for (path, ty, needle) in [
        ("/", "text/html", "realtime chat"),
        ("/app.js", "text/javascript", "RealtimeClient"),
        (
            "/realtime-client.js",
            "text/javascript",
            "export class RealtimeClient",
        ),
        ("/app.css", "text/css", "#messages"),
    ] {
        let r = s.http.get(s.url(path)).send().await.expect("get");
        assert_eq!(r.status(), 200, "{path}");
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(ct.starts_with(ty), "{path}: {ct}");
        assert!(r.text().await.expect("body").contains(needle), "{path}");
    }
    assert_eq!(
        s.http
            .get(s.url("/nope.js"))
            .send()
            .await
            .expect("get")
            .status(),
        404
    );
}

#[tokio::test]
async fn system_events_reach_everyone() {
    let s = start(|c| c.admin_users = vec!["root".into()]).await;
    let mut a = s.ws("a").await;
    let (status, ev) = s
        .post(
            "root",
            "/api/v1/events/system",
            json!({"type": "maintenance", "data": {"in": "10m"}}),
        )
        .await;
    assert_eq!(status, 202, "{ev}");
    let got = until(&mut a, "event.system.maintenance").await;
    assert_eq!(got["data"]["in"], "10m");
}
