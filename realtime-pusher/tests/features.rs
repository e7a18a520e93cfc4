//! User sign-in and `#server-to-user-…`, terminating a user's connections, cache
//! channels, `subscription_count`, and webhooks (signed, batched, retried) received by a
//! small HTTP server.

mod common;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use common::*;
use realtime_pusher::{App, AppLimits, WebhookConfig, sign};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Sign in as `id` on connection `ws` with socket id `socket`.
async fn signin(server: &Server, ws: &mut Ws, socket: &str, id: &str) -> Value {
    let user_data = json!({"id": id, "name": format!("user {id}")}).to_string();
    let auth = sign::user_auth(&server.app, socket, &user_data);
    send(
        ws,
        json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}}),
    )
    .await;
    next_event(ws).await
}

#[tokio::test]
async fn signed_in_users_get_their_channel_and_can_be_terminated() {
    let server = start(AppLimits::default()).await;
    let (mut a1, s1) = connect(&server).await;
    let (mut a2, s2) = connect(&server).await;
    let (mut other, so) = connect(&server).await;
    let ok = signin(&server, &mut a1, &s1, "ana").await;
    assert_eq!(ok["event"], "pusher:signin_success");
    assert_eq!(
        serde_json::from_str::<Value>(ok["data"]["user_data"].as_str().expect("string"))
            .expect("json")["id"],
        "ana"
    );
    assert_eq!(
        signin(&server, &mut a2, &s2, "ana").await["event"],
        "pusher:signin_success"
    );
    assert_eq!(
        signin(&server, &mut other, &so, "bob").await["event"],
        "pusher:signin_success"
    );

    // A bad signature, a second sign-in, a channel by name: refused.
    let (mut c, sc) = connect(&server).await;
    let user_data = json!({"id": "eve"}).to_string();
    let forged = sign::user_auth(&server.app, &s1, &user_data);
    send(
        &mut c,
        json!({"event": "pusher:signin", "data": {"auth": forged, "user_data": user_data}}),
    )
    .await;
    assert_eq!(next_event(&mut c).await["data"]["code"], 4009);
    assert_eq!(
        signin(&server, &mut a1, &s1, "ana").await["event"],
        "pusher:error"
    );
    assert_eq!(
        subscribe(&mut c, "#server-to-user-ana", None, None).await["event"],
        "pusher:subscription_error"
    );
    let _ = sc;

    // Events for user ana reach both her connections, nobody else's.
    let ev = realtime_core::Event::app("notice", json!({"n": 1})).expect("event");
    server
        .hub
        .publish(&[realtime_core::Channel::user("ana").expect("user")], ev)
        .await
        .expect("publish");
    for ws in [&mut a1, &mut a2] {
        let got = next_event(ws).await;
        assert_eq!(
            (&got["event"], &got["channel"]),
            (&json!("notice"), &json!("#server-to-user-ana"))
        );
    }
    quiet(&mut other, 200).await;

    // Terminating ana closes her two connections with 4009, and only hers.
    let (status, body) = api(
        &server,
        "POST",
        "/apps/1/users/ana/terminate_connections",
        &[],
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(close_code(&mut a1).await, 4009);
    assert_eq!(close_code(&mut a2).await, 4009);
    send(&mut other, json!({"event": "pusher:ping", "data": {}})).await;
    assert_eq!(next_event(&mut other).await["event"], "pusher:pong");
}

#[tokio::test]
async fn cache_channels_replay_the_last_event_or_say_cache_miss() {
    let server = start(AppLimits::default()).await;
    let (mut a, _) = connect(&server).await;
    assert_eq!(
        subscribe(&mut a, "cache-prices", None, None).await["event"],
        "pusher_internal:subscription_succeeded"
    );
    let miss = next_event(&mut a).await;
    assert_eq!(
        (&miss["event"], &miss["channel"]),
        (&json!("pusher:cache_miss"), &json!("cache-prices"))
    );
    // With no subscriber yet the trigger is still remembered by the publishing node.
    trigger(&server, &["cache-other"], "price", &json!({"p": 1}), None).await;
    trigger(&server, &["cache-prices"], "price", &json!({"p": 2}), None).await;
    assert_eq!(next_event(&mut a).await["data"]["p"], 2);
    let (mut b, _) = connect(&server).await;
    subscribe(&mut b, "cache-prices", None, None).await;
    let replay = next_event(&mut b).await;
    assert_eq!(
        (&replay["event"], &replay["data"]["p"]),
        (&json!("price"), &json!(2))
    );
    subscribe(&mut b, "cache-other", None, None).await;
    assert_eq!(next_event(&mut b).await["data"]["p"], 1);
}

#[tokio::test]
async fn subscription_counts_are_announced_when_the_app_asks() {
    let server = start_with(
        App::new("1", "app-key", "app-secret")
            .expect("app")
            .subscription_count(true),
    )
    .await;
    let (mut a, _) = connect(&server).await;
    let (mut b, _) = connect(&server).await;
    subscribe(&mut a, "room", None, None).await;
    let count = next_event(&mut a).await;
    assert_eq!(
        (&count["event"], &count["data"]),
        (
            &json!("pusher_internal:subscription_count"),
            &json!({"subscription_count": 1})
        )
    );
    subscribe(&mut b, "room", None, None).await;
    assert_eq!(next_event(&mut a).await["data"]["subscription_count"], 2);
    assert_eq!(next_event(&mut b).await["data"]["subscription_count"], 2);
    drop(b);
    assert_eq!(next_event(&mut a).await["data"]["subscription_count"], 1);
}

/// What the webhook receiver got: verified bodies' events, and requests refused on purpose.
#[derive(Default)]
struct Received {
    events: Vec<Value>,
    bad_signatures: usize,
    fail_next: usize,
}

async fn receiver(secret: &'static str) -> (String, Arc<Mutex<Received>>) {
    let got = Arc::new(Mutex::new(Received::default()));
    let handler = |State((got, secret)): State<(Arc<Mutex<Received>>, &'static str)>,
                   headers: HeaderMap,
                   body: Bytes| async move {
        let mut got = got.lock().expect("lock");
        if got.fail_next > 0 {
            got.fail_next -= 1;
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
        let sig = headers
            .get("x-pusher-signature")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let text = std::str::from_utf8(&body).unwrap_or_default();
        if headers.get("x-pusher-key").and_then(|v| v.to_str().ok()) != Some("app-key")
            || sig != sign::hmac_hex(secret, &[text])
        {
            got.bad_signatures += 1;
            return StatusCode::UNAUTHORIZED;
        }
        let v: Value = serde_json::from_str(text).expect("json");
        assert!(v["time_ms"].as_u64().is_some(), "{v}");
        got.events
            .extend(v["events"].as_array().cloned().unwrap_or_default());
        StatusCode::OK
    };
    let app = axum::Router::new()
        .route("/hooks", axum::routing::post(handler))
        .with_state((got.clone(), secret));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hooks", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

/// Wait until the receiver holds an event named `name`; return it.
async fn hook(got: &Arc<Mutex<Received>>, name: &str, channel_or_user: &str) -> Value {
    for _ in 0..200 {
        if let Some(e) = got.lock().expect("lock").events.iter().find(|e| {
            e["name"] == name
                && (e["channel"] == channel_or_user || e["user_id"] == channel_or_user)
        }) {
            return e.clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "no {name} for {channel_or_user}: {:?}",
        got.lock().expect("lock").events
    );
}

fn count(got: &Arc<Mutex<Received>>, name: &str) -> usize {
    got.lock()
        .expect("lock")
        .events
        .iter()
        .filter(|e| e["name"] == name)
        .count()
}

#[tokio::test]
async fn webhooks_are_signed_batched_and_retried() {
    let (url, got) = receiver("app-secret").await;
    got.lock().expect("lock").fail_next = 2; // the first two requests fail: retried
    let mut config = WebhookConfig::new(url);
    config.backoff = Duration::from_millis(50);
    let server = start_with(
        App::new("1", "app-key", "app-secret")
            .expect("app")
            .webhooks(config),
    )
    .await;

    let (mut a, sa) = connect(&server).await;
    let (mut b, sb) = connect(&server).await;
    subscribe(&mut a, "news", None, None).await;
    subscribe(&mut b, "news", None, None).await;
    assert_eq!(
        hook(&got, "channel_occupied", "news").await["channel"],
        "news"
    );

    join_presence(&server, &mut a, &sa, "presence-team", "ana").await;
    join_presence(&server, &mut b, &sb, "presence-team", "bob").await;
    assert_eq!(
        next_event(&mut a).await["event"],
        "pusher_internal:member_added"
    );
    assert_eq!(
        hook(&got, "member_added", "ana").await["channel"],
        "presence-team"
    );
    hook(&got, "member_added", "bob").await;

    send(
        &mut a,
        json!({"event": "client-wave", "channel": "presence-team", "data": {"hi": 1}}),
    )
    .await;
    let ce = hook(&got, "client_event", "presence-team").await;
    assert_eq!(
        (&ce["event"], &ce["socket_id"], &ce["user_id"]),
        (&json!("client-wave"), &json!(sa), &json!("ana"))
    );
    assert_eq!(
        serde_json::from_str::<Value>(ce["data"].as_str().expect("string")).expect("json"),
        json!({"hi": 1})
    );

    assert_eq!(
        signin(&server, &mut a, &sa, "ana").await["event"],
        "pusher:signin_success"
    );
    hook(&got, "user_online", "ana").await;

    send(
        &mut b,
        json!({"event": "pusher:unsubscribe", "data": {"channel": "news"}}),
    )
    .await;
    drop(a); // leaves news (vacated), presence-team (member_removed), signs out (user_offline)
    hook(&got, "channel_vacated", "news").await;
    hook(&got, "member_removed", "ana").await;
    hook(&got, "user_offline", "ana").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        count(&got, "channel_occupied"),
        2,
        "news and presence-team, once each (a user channel is not a subscription)"
    );
    assert_eq!(count(&got, "member_added"), 2);
    assert_eq!(got.lock().expect("lock").bad_signatures, 0);
    assert_eq!(
        got.lock().expect("lock").fail_next,
        0,
        "the failed requests were retried"
    );
    let dropped: u64 = server
        .pusher
        .ws_servers()
        .map(|s| s.dialect().webhooks_dropped())
        .sum();
    assert_eq!(dropped, 0);
}

#[tokio::test]
async fn a_receiver_that_never_accepts_loses_only_what_it_refused_and_fan_out_goes_on() {
    let (url, got) = receiver("another-secret").await; // every signature looks wrong to it
    let mut config = WebhookConfig::new(url);
    config.retries = 1;
    config.backoff = Duration::from_millis(10);
    let server = start_with(
        App::new("1", "app-key", "app-secret")
            .expect("app")
            .webhooks(config),
    )
    .await;
    let (mut a, _) = connect(&server).await;
    subscribe(&mut a, "news", None, None).await;
    trigger(&server, &["news"], "e", &json!({}), None).await;
    assert_eq!(next_event(&mut a).await["event"], "e");
    for _ in 0..100 {
        let dropped: u64 = server
            .pusher
            .ws_servers()
            .map(|s| s.dialect().webhooks_dropped())
            .sum();
        if dropped > 0 {
            assert!(
                got.lock().expect("lock").bad_signatures >= 2,
                "tried, then retried"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the refused batch was not counted as dropped");
}
