//! The signed HTTP API: triggers (one, many channels, batches, excluding a socket), channel
//! info, refusals of bad signatures, and events crossing between the Pusher dialect, the
//! native dialect and Hub calls on one Hub. Apps on one server do not see each other.

mod common;

use common::*;
use futures_util::SinkExt;
use realtime_core::{Channel, Claims, Event, JwtAuthenticator};
use realtime_pusher::{App, AppLimits, sign};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

fn body(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|_| panic!("json body: {s}"))
}

#[tokio::test]
async fn triggers_reach_subscribers_exactly_as_laravel_sent_them() {
    let server = start(AppLimits::default()).await;
    let (mut a, sa) = connect(&server).await;
    let (mut b, _) = connect(&server).await;
    for ws in [&mut a, &mut b] {
        subscribe(ws, "availability", None, None).await;
        subscribe(ws, "admin", None, None).await;
    }
    // Laravel's pusher driver: name App\Events\<Name>, data the JSON of the public properties.
    let data = json!({"data": {"session_id": 1, "available_slots": 5}});
    let (status, text) = trigger(
        &server,
        &["availability"],
        "App\\Events\\AvailabilityUpdated",
        &data,
        None,
    )
    .await;
    assert_eq!((status, body(&text)), (200, json!({})));
    for ws in [&mut a, &mut b] {
        let got = next_event(ws).await;
        assert_eq!(got["event"], "App\\Events\\AvailabilityUpdated");
        assert_eq!(
            (&got["channel"], &got["data"]),
            (&json!("availability"), &data)
        );
    }
    // Two channels at once; socket_id leaves that connection out.
    let (status, _) = trigger(
        &server,
        &["availability", "admin"],
        "X",
        &json!({"n": 2}),
        Some(&sa),
    )
    .await;
    assert_eq!(status, 200);
    let first = next_event(&mut b).await;
    let second = next_event(&mut b).await;
    let mut channels = [
        first["channel"].as_str().unwrap_or_default().to_owned(),
        second["channel"].as_str().unwrap_or_default().to_owned(),
    ];
    channels.sort();
    assert_eq!(channels, ["admin".to_owned(), "availability".to_owned()]);
    quiet(&mut a, 200).await;

    // `channel` (singular) and a data string that is not JSON, relayed as it is.
    let path = format!("/apps/{}/events", server.app.id);
    let (status, _) = api(
        &server,
        "POST",
        &path,
        &[],
        Some(json!({"name": "plain", "channel": "admin", "data": "just text"})),
    )
    .await;
    assert_eq!(status, 200);
    let raw = loop {
        if let Message::Text(t) = next_frame(&mut a).await
            && !t.as_str().contains("pusher:ping")
        {
            break t.as_str().to_owned();
        }
    };
    assert_eq!(
        body(&raw),
        json!({"event": "plain", "channel": "admin", "data": "just text"})
    );

    // Batches.
    let batch = json!({"batch": [
        {"name": "one", "channel": "admin", "data": "{\"i\":1}"},
        {"name": "two", "channel": "admin", "data": "{\"i\":2}", "info": "subscription_count"},
    ]});
    let (status, text) = api(&server, "POST", "/apps/1/batch_events", &[], Some(batch)).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        body(&text),
        json!({"batch": [{}, {"admin": {"subscription_count": 2}}]})
    );
    assert_eq!(next_event(&mut a).await["event"], "one");
    assert_eq!(next_event(&mut a).await["event"], "two");
}

#[tokio::test]
async fn channel_info_and_listings() {
    let server = start(AppLimits::default()).await;
    let (mut a, sa) = connect(&server).await;
    let (mut b, sb) = connect(&server).await;
    subscribe(&mut a, "availability", None, None).await;
    subscribe(&mut b, "availability", None, None).await;
    join_presence(&server, &mut a, &sa, "presence-team", "ana").await;
    join_presence(&server, &mut b, &sb, "presence-team", "ana").await;

    let (status, text) = api(
        &server,
        "GET",
        "/apps/1/channels/availability",
        &[("info", "subscription_count")],
        None,
    )
    .await;
    assert_eq!(
        (status, body(&text)),
        (200, json!({"occupied": true, "subscription_count": 2}))
    );
    let (_, text) = api(
        &server,
        "GET",
        "/apps/1/channels/presence-team",
        &[("info", "user_count,subscription_count")],
        None,
    )
    .await;
    assert_eq!(
        body(&text),
        json!({"occupied": true, "user_count": 1, "subscription_count": 2})
    );
    let (_, text) = api(&server, "GET", "/apps/1/channels/empty", &[], None).await;
    assert_eq!(body(&text), json!({"occupied": false}));
    // user_count is for presence channels only.
    let (status, _) = api(
        &server,
        "GET",
        "/apps/1/channels/availability",
        &[("info", "user_count")],
        None,
    )
    .await;
    assert_eq!(status, 400);

    let (_, text) = api(&server, "GET", "/apps/1/channels", &[], None).await;
    assert_eq!(
        body(&text),
        json!({"channels": {"availability": {}, "presence-team": {}}})
    );
    let (_, text) = api(
        &server,
        "GET",
        "/apps/1/channels",
        &[("filter_by_prefix", "presence-"), ("info", "user_count")],
        None,
    )
    .await;
    assert_eq!(
        body(&text),
        json!({"channels": {"presence-team": {"user_count": 1}}})
    );
    let (status, _) = api(
        &server,
        "GET",
        "/apps/1/channels",
        &[("info", "user_count")],
        None,
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = api(
        &server,
        "GET",
        "/apps/1/channels/availability/users",
        &[],
        None,
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn unsigned_stale_or_forged_requests_get_401_with_the_reason() {
    let server = start(AppLimits {
        max_event_bytes: 64,
        ..AppLimits::default()
    })
    .await;
    let (mut ws, _) = connect(&server).await;
    subscribe(&mut ws, "availability", None, None).await;
    let path = "/apps/1/events";
    let payload = json!({"name": "e", "channels": ["availability"], "data": "{}"}).to_string();
    let signed = |ts: u64, app: &App, body: &str| {
        sign::signed_query(app, "POST", path, &[], body.as_bytes(), ts)
    };

    let mut wrong_secret = server.app.clone();
    wrong_secret.secret = "guess".into();
    let mut wrong_key = server.app.clone();
    wrong_key.key = "other-key".into();
    let good = signed(now(), &server.app, &payload);
    let cases: Vec<(String, String, &str)> = vec![
        (String::new(), payload.clone(), "auth_key"),
        (
            signed(now(), &wrong_secret, &payload),
            payload.clone(),
            "auth_signature",
        ),
        (
            signed(now(), &wrong_key, &payload),
            payload.clone(),
            "auth_key",
        ),
        (
            signed(now() - 3600, &server.app, &payload),
            payload.clone(),
            "auth_timestamp",
        ),
        (
            signed(now() + 3600, &server.app, &payload),
            payload.clone(),
            "auth_timestamp",
        ),
        // The body changed after signing.
        (good.clone(), payload.replace("\"e\"", "\"f\""), "body_md5"),
        (
            good.replace("auth_version=1.0", "auth_version=2.0"),
            payload.clone(),
            "auth_version",
        ),
    ];
    for (query, body, reason) in cases {
        let (status, text) = raw_api(&server, "POST", &format!("{path}?{query}"), body).await;
        assert_eq!(status, 401, "{reason}: {text}");
        assert!(text.contains(reason), "{reason}: {text}");
    }
    // Another path than the one signed.
    let (status, _) = raw_api(
        &server,
        "POST",
        &format!("/apps/1/batch_events?{good}"),
        payload.clone(),
    )
    .await;
    assert_eq!(status, 401);
    // An unknown app.
    let (status, _) = api(&server, "POST", "/apps/9/events", &[], Some(json!({}))).await;
    assert_eq!(status, 404);
    // Signed but malformed or too large.
    let (status, _) = api(&server, "POST", path, &[], Some(json!({"name": "e"}))).await;
    assert_eq!(status, 400);
    let (status, _) = api(
        &server,
        "POST",
        path,
        &[],
        Some(json!({"name": "e", "channel": "bad name", "data": "{}"})),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = trigger(
        &server,
        &["availability"],
        "e",
        &json!({"x": "y".repeat(100)}),
        None,
    )
    .await;
    assert_eq!(status, 413);
    let (status, _) = trigger(
        &server,
        &["availability"],
        "e",
        &json!({}),
        Some("not-a-socket"),
    )
    .await;
    assert_eq!(status, 400);
    // None of it reached the subscriber; a good request does.
    quiet(&mut ws, 200).await;
    let (status, _) = raw_api(&server, "POST", &format!("{path}?{good}"), payload).await;
    assert_eq!(status, 200);
    assert_eq!(next_event(&mut ws).await["event"], "e");
}

#[tokio::test]
async fn one_hub_for_pusher_native_and_hub_calls() {
    let server = start(AppLimits::default()).await;
    let (mut pusher, _) = connect(&server).await;
    subscribe(&mut pusher, "availability", None, None).await;

    let token = JwtAuthenticator::hs256(JWT_SECRET)
        .issue(&Claims::new("nat", 600))
        .expect("token");
    let (mut native, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws?token={token}", server.addr))
            .await
            .expect("native");
    let native_json = |m: Message| match m {
        Message::Text(t) => Some(body(t.as_str())),
        _ => None,
    };
    native
        .send(Message::text(
            json!({"type": "subscribe", "id": 1, "data": {"channel": "availability"}}).to_string(),
        ))
        .await
        .expect("send");
    loop {
        if native_json(next_frame(&mut native).await).is_some_and(|v| v["type"] == "ack") {
            break;
        }
    }

    // A Pusher trigger reaches the native client, with the data the trigger's string held.
    let data = json!({"data": {"session_id": 3}});
    trigger(
        &server,
        &["availability"],
        "App\\Events\\CapacityUpdated",
        &data,
        None,
    )
    .await;
    let push = loop {
        if let Some(v) = native_json(next_frame(&mut native).await)
            && v["type"] != "pong"
        {
            break v;
        }
    };
    assert_eq!(
        (&push["type"], &push["data"]),
        (&json!("App\\Events\\CapacityUpdated"), &data)
    );
    assert_eq!(next_event(&mut pusher).await["data"], data);

    // A Hub call reaches the Pusher client.
    let ev = Event::app(
        "App\\Events\\AvailabilityUpdated",
        json!({"data": {"session_id": 4}}),
    )
    .expect("event");
    server
        .hub
        .publish(&[Channel::parse("availability").expect("channel")], ev)
        .await
        .expect("publish");
    let got = next_event(&mut pusher).await;
    assert_eq!(
        (&got["event"], &got["data"]["data"]["session_id"]),
        (&json!("App\\Events\\AvailabilityUpdated"), &json!(4))
    );
}

#[tokio::test]
async fn apps_on_one_server_are_apart() {
    let one = App::new("1", "key-one", "secret-one").expect("app");
    let two = App::new("2", "key-two", "secret-two").expect("app");
    let (hub1, hub2) = (hub_for(&one), hub_for(&two));
    let pusher = realtime_pusher::PusherServer::builder()
        .app(one.clone(), hub1.clone())
        .app(two.clone(), hub2.clone())
        .build()
        .expect("pusher");
    assert!(
        realtime_pusher::PusherServer::builder()
            .app(one.clone(), hub1.clone())
            .app(one.clone(), hub2.clone())
            .build()
            .is_err()
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = pusher.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let s1 = Server {
        addr,
        app: one.clone(),
        hub: hub1,
        pusher: pusher.clone(),
    };
    let s2 = Server {
        addr,
        app: two.clone(),
        hub: hub2,
        pusher,
    };

    let (mut c1, sock1) = connect(&s1).await;
    let (mut c2, _) = connect(&s2).await;
    subscribe(&mut c1, "news", None, None).await;
    subscribe(&mut c2, "news", None, None).await;
    trigger(&s2, &["news"], "for-two", &json!({}), None).await;
    assert_eq!(next_event(&mut c2).await["event"], "for-two");
    quiet(&mut c1, 200).await;
    // App two's signature does not open app one's private channels.
    let auth = sign::channel_auth(&two, &sock1, "private-x", None);
    assert_eq!(
        subscribe(&mut c1, "private-x", Some(&auth), None).await["event"],
        "pusher:subscription_error"
    );
    // App one's id with app two's credentials.
    let (status, _) = api(
        &s2,
        "POST",
        "/apps/1/events",
        &[],
        Some(json!({"name": "x", "channel": "news", "data": "{}"})),
    )
    .await;
    assert_eq!(status, 401);
}
