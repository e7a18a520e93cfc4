//! Pusher protocol 7 over WebSocket: the handshake and its refusals, public, private and
//! presence subscriptions, client events, keep-alive and bad input.

mod common;

use common::*;
use futures_util::SinkExt;
use realtime_pusher::{AppLimits, sign};
use serde_json::json;
use std::num::NonZeroU32;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn the_handshake_gives_a_socket_id_and_refuses_bad_keys_and_versions() {
    let server = start(AppLimits::default()).await;
    let (mut ws, socket) = connect(&server).await;
    let (node, session) = socket.split_once('.').expect("n.n");
    assert!(
        node.parse::<u64>().is_ok() && session.parse::<u64>().is_ok(),
        "{socket}"
    );
    // pusher:ping is answered with pusher:pong.
    send(&mut ws, json!({"event": "pusher:ping", "data": {}})).await;
    assert_eq!(next_event(&mut ws).await["event"], "pusher:pong");

    for (query, path, code) in [
        ("protocol=7", "/app/wrong-key", 4001),
        ("client=js", "/app/app-key", 4008),
        ("protocol=x", "/app/app-key", 4006),
        ("protocol=8", "/app/app-key", 4007),
    ] {
        let url = format!("ws://{}{path}?{query}", server.addr);
        let (mut ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("upgrade");
        let err = next_event(&mut ws).await;
        assert_eq!(
            (&err["event"], &err["data"]["code"]),
            (&json!("pusher:error"), &json!(code)),
            "{path}?{query}"
        );
        assert_eq!(close_code(&mut ws).await, code, "{path}?{query}");
    }
}

#[tokio::test]
async fn connections_over_the_apps_quota_get_4004() {
    let server = start(AppLimits {
        max_connections: Some(1),
        ..AppLimits::default()
    })
    .await;
    let (_first, _) = connect(&server).await;
    let url = format!("ws://{}/app/app-key?protocol=7", server.addr);
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("upgrade");
    assert_eq!(next_event(&mut ws).await["data"]["code"], 4004);
    assert_eq!(close_code(&mut ws).await, 4004);
}

#[tokio::test]
async fn private_channels_need_a_valid_signature_for_this_socket() {
    let server = start(AppLimits::default()).await;
    let (mut ws, socket) = connect(&server).await;
    let (_other, other_socket) = connect(&server).await;

    let ok = sign::channel_auth(&server.app, &socket, "private-booking.7", None);
    let r = subscribe(&mut ws, "private-booking.7", Some(&ok), None).await;
    assert_eq!(
        (&r["event"], &r["channel"]),
        (
            &json!("pusher_internal:subscription_succeeded"),
            &json!("private-booking.7")
        )
    );

    // Signed for another socket, another channel, with another secret, or not at all.
    let for_other = sign::channel_auth(&server.app, &other_socket, "private-booking.8", None);
    let wrong_channel = sign::channel_auth(&server.app, &socket, "private-booking.9", None);
    let mut forged_app = server.app.clone();
    forged_app.secret = "not-the-secret".into();
    let forged = sign::channel_auth(&forged_app, &socket, "private-booking.8", None);
    for auth in [
        Some(for_other.as_str()),
        Some(wrong_channel.as_str()),
        Some(forged.as_str()),
        None,
    ] {
        let r = subscribe(&mut ws, "private-booking.8", auth, None).await;
        assert_eq!(r["event"], "pusher:subscription_error", "{auth:?}");
        assert_eq!(r["channel"], "private-booking.8");
        assert_eq!(
            (&r["data"]["type"], &r["data"]["status"]),
            (&json!("AuthError"), &json!(401))
        );
    }
    // A refused subscription receives nothing; the granted one does.
    trigger(
        &server,
        &["private-booking.8", "private-booking.7"],
        "App\\Events\\BookingStatusUpdated",
        &json!({"data": {"booking_id": 1}}),
        None,
    )
    .await;
    let got = next_event(&mut ws).await;
    assert_eq!(
        (&got["channel"], &got["data"]["data"]["booking_id"]),
        (&json!("private-booking.7"), &json!(1))
    );
    quiet(&mut ws, 200).await;
}

#[tokio::test]
async fn presence_members_are_announced_once_per_user() {
    let server = start(AppLimits::default()).await;
    let ch = "presence-lobby";
    let (mut a1, s1) = connect(&server).await;
    let (mut a2, s2) = connect(&server).await;
    let (mut b, sb) = connect(&server).await;

    let r = join_presence(&server, &mut b, &sb, ch, "bob").await;
    assert_eq!(r["event"], "pusher_internal:subscription_succeeded");
    assert_eq!(
        r["data"]["presence"],
        json!({"ids": ["bob"], "hash": {"bob": {"name": "user bob"}}, "count": 1})
    );

    // Ana's first connection: bob sees member_added; her second: nothing more.
    let r = join_presence(&server, &mut a1, &s1, ch, "ana").await;
    assert_eq!(r["data"]["presence"]["count"], 2);
    assert_eq!(r["data"]["presence"]["ids"], json!(["ana", "bob"]));
    let added = next_event(&mut b).await;
    assert_eq!(
        (&added["event"], &added["channel"]),
        (&json!("pusher_internal:member_added"), &json!(ch))
    );
    assert_eq!(
        added["data"],
        json!({"user_id": "ana", "user_info": {"name": "user ana"}})
    );
    let r = join_presence(&server, &mut a2, &s2, ch, "ana").await;
    assert_eq!(r["data"]["presence"]["count"], 2);
    quiet(&mut b, 200).await;
    quiet(&mut a1, 0).await;

    // The HTTP API sees two users.
    let (status, body) = api(
        &server,
        "GET",
        &format!("/apps/1/channels/{ch}/users"),
        &[],
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).expect("json"),
        json!({"users": [{"id": "ana"}, {"id": "bob"}]})
    );

    // Ana leaves with one connection: still a member. With the last one: removed, once.
    send(
        &mut a1,
        json!({"event": "pusher:unsubscribe", "data": {"channel": ch}}),
    )
    .await;
    quiet(&mut b, 200).await;
    a2.close(None).await.expect("close");
    let removed = next_event(&mut b).await;
    assert_eq!(
        (&removed["event"], &removed["data"]),
        (
            &json!("pusher_internal:member_removed"),
            &json!({"user_id": "ana"})
        )
    );
    quiet(&mut b, 200).await;
}

#[tokio::test]
async fn presence_channels_refuse_a_member_past_the_limit() {
    let server = start(AppLimits {
        max_presence_members: 1,
        ..AppLimits::default()
    })
    .await;
    let (mut a, sa) = connect(&server).await;
    let (mut b, sb) = connect(&server).await;
    assert_eq!(
        join_presence(&server, &mut a, &sa, "presence-x", "ana").await["event"],
        "pusher_internal:subscription_succeeded"
    );
    let r = join_presence(&server, &mut b, &sb, "presence-x", "bob").await;
    assert_eq!(
        (&r["event"], &r["data"]["type"]),
        (&json!("pusher:subscription_error"), &json!("LimitReached"))
    );
    quiet(&mut a, 200).await;
}

#[tokio::test]
async fn client_events_reach_the_others_on_private_and_presence_channels_only() {
    let server = start(AppLimits::default()).await;
    let (mut a, sa) = connect(&server).await;
    let (mut b, sb) = connect(&server).await;
    for (ws, s) in [(&mut a, &sa), (&mut b, &sb)] {
        let auth = sign::channel_auth(&server.app, s, "private-chat", None);
        assert_eq!(
            subscribe(ws, "private-chat", Some(&auth), None).await["event"],
            "pusher_internal:subscription_succeeded"
        );
        assert_eq!(
            subscribe(ws, "public-news", None, None).await["event"],
            "pusher_internal:subscription_succeeded"
        );
    }
    send(
        &mut a,
        json!({"event": "client-typing", "channel": "private-chat", "data": {"who": "a"}}),
    )
    .await;
    let got = next_event(&mut b).await;
    assert_eq!(
        (&got["event"], &got["channel"], &got["data"]),
        (
            &json!("client-typing"),
            &json!("private-chat"),
            &json!({"who": "a"})
        )
    );
    assert!(got.get("user_id").is_none());
    quiet(&mut a, 200).await; // never echoed to the sender

    // Public channels, channels not joined, encrypted ones: refused with pusher:error.
    for channel in ["public-news", "private-other"] {
        send(
            &mut a,
            json!({"event": "client-x", "channel": channel, "data": {}}),
        )
        .await;
        let err = next_event(&mut a).await;
        assert_eq!(err["event"], "pusher:error", "{channel}");
    }
    quiet(&mut b, 200).await;

    // On a presence channel they name the sender's user.
    join_presence(&server, &mut a, &sa, "presence-room", "ana").await;
    join_presence(&server, &mut b, &sb, "presence-room", "bob").await;
    assert_eq!(
        next_event(&mut a).await["event"],
        "pusher_internal:member_added"
    );
    send(
        &mut a,
        json!({"event": "client-hi", "channel": "presence-room", "data": {"n": 1}}),
    )
    .await;
    let got = next_event(&mut b).await;
    assert_eq!(
        (&got["event"], &got["user_id"]),
        (&json!("client-hi"), &json!("ana"))
    );
}

#[tokio::test]
async fn client_events_over_the_rate_get_4301_and_the_connection_stays() {
    let limits = AppLimits {
        client_events_per_second: NonZeroU32::new(3).expect("3"),
        ..AppLimits::default()
    };
    let server = start(limits).await;
    let (mut a, sa) = connect(&server).await;
    let (mut b, sb) = connect(&server).await;
    for (ws, s) in [(&mut a, &sa), (&mut b, &sb)] {
        let auth = sign::channel_auth(&server.app, s, "private-r", None);
        subscribe(ws, "private-r", Some(&auth), None).await;
    }
    for i in 0..5 {
        send(
            &mut a,
            json!({"event": "client-n", "channel": "private-r", "data": {"i": i}}),
        )
        .await;
    }
    for _ in 0..2 {
        let err = next_event(&mut a).await;
        assert_eq!(
            (&err["event"], &err["data"]["code"]),
            (&json!("pusher:error"), &json!(4301))
        );
    }
    for i in 0..3 {
        assert_eq!(next_event(&mut b).await["data"]["i"], i);
    }
    quiet(&mut b, 200).await;
    send(&mut a, json!({"event": "pusher:ping", "data": {}})).await;
    assert_eq!(next_event(&mut a).await["event"], "pusher:pong");
}

#[tokio::test]
async fn bad_input_gets_pusher_errors_and_the_connection_stays() {
    let server = start(AppLimits {
        max_event_bytes: 100,
        ..AppLimits::default()
    })
    .await;
    let (mut ws, socket) = connect(&server).await;
    let auth = sign::channel_auth(&server.app, &socket, "private-big", None);
    subscribe(&mut ws, "private-big", Some(&auth), None).await;
    for bad in [
        "not json".to_owned(),
        json!({"no_event": 1}).to_string(),
        json!({"event": "pusher:subscribe", "data": {"nochannel": 1}}).to_string(),
        json!({"event": "pusher:subscribe", "data": 5}).to_string(),
        json!({"event": "what-is-this", "data": {}}).to_string(),
        json!({"event": "client-big", "channel": "private-big", "data": {"x": "y".repeat(200)}})
            .to_string(),
    ] {
        ws.send(Message::text(bad.clone())).await.expect("send");
        let err = next_event(&mut ws).await;
        assert_eq!(err["event"], "pusher:error", "{bad}");
        assert!(
            err["data"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{bad}"
        );
    }
    // Invalid channel names are a subscription error on that name.
    let r = subscribe(&mut ws, "bad name!", None, None).await;
    assert_eq!(
        (&r["event"], &r["data"]["type"]),
        (
            &json!("pusher:subscription_error"),
            &json!("InvalidChannel")
        )
    );
    let r = subscribe(&mut ws, "room:abc", None, None).await;
    assert_eq!(r["event"], "pusher:subscription_error");
    let r = subscribe(&mut ws, &"a".repeat(200), None, None).await;
    assert_eq!(r["event"], "pusher:subscription_error");
    // Still alive.
    send(&mut ws, json!({"event": "pusher:ping", "data": {}})).await;
    assert_eq!(next_event(&mut ws).await["event"], "pusher:pong");
}

#[tokio::test]
async fn a_subscribe_flood_is_refused_then_closed_and_the_server_stays_healthy() {
    let server = start(AppLimits::default()).await;
    let (mut ws, _) = connect(&server).await;
    for i in 0..200 {
        send(
            &mut ws,
            json!({"event": "pusher:subscribe", "data": {"channel": format!("flood-{i}")}}),
        )
        .await;
    }
    let mut limited = 0;
    let code = loop {
        match next_frame(&mut ws).await {
            Message::Text(t) => {
                let v: serde_json::Value = serde_json::from_str(t.as_str()).expect("json");
                match v["event"].as_str() {
                    Some("pusher:error") if t.as_str().contains("4301") => limited += 1,
                    _ => {}
                }
            }
            Message::Close(Some(c)) => break u16::from(c.code),
            _ => {}
        }
    };
    assert!(limited > 0, "the driver's rate limit answered");
    assert_eq!(code, 4301);
    // Others connect and work.
    let (mut other, _) = connect(&server).await;
    send(&mut other, json!({"event": "pusher:ping", "data": {}})).await;
    assert_eq!(next_event(&mut other).await["event"], "pusher:pong");
}

#[tokio::test]
async fn subscriptions_past_the_connections_limit_are_refused() {
    let server = start(AppLimits {
        max_channels_per_connection: 2,
        ..AppLimits::default()
    })
    .await;
    let (mut ws, _) = connect(&server).await;
    for ch in ["a", "b"] {
        assert_eq!(
            subscribe(&mut ws, ch, None, None).await["event"],
            "pusher_internal:subscription_succeeded"
        );
    }
    let r = subscribe(&mut ws, "c", None, None).await;
    assert_eq!(
        (&r["event"], &r["data"]["type"]),
        (&json!("pusher:subscription_error"), &json!("LimitReached"))
    );
    // Subscribing again to a joined channel is not a new one.
    assert_eq!(
        subscribe(&mut ws, "a", None, None).await["event"],
        "pusher_internal:subscription_succeeded"
    );
    send(
        &mut ws,
        json!({"event": "pusher:unsubscribe", "data": {"channel": "a"}}),
    )
    .await;
    assert_eq!(
        subscribe(&mut ws, "c", None, None).await["event"],
        "pusher_internal:subscription_succeeded"
    );
}
