//! Sessions without a chat user, socket ids, and app events: what the Pusher and
//! Socket.IO dialects build on.

mod common;

use common::*;
use realtime_core::*;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

fn named(name: &str) -> Channel {
    Channel::parse(name).expect("channel")
}

#[tokio::test]
async fn socket_ids_have_pushers_form_and_are_unique() {
    let hub = Hub::in_memory();
    let a = hub.connect(ConnectOptions::anonymous()).await.expect("a");
    let b = hub
        .connect(ConnectOptions::chat(who("b")))
        .await
        .expect("b");
    for s in [&a, &b] {
        let text = s.socket_id().to_string();
        let (node, session) = text.split_once('.').expect("a dot");
        assert!(
            !node.is_empty() && node.bytes().all(|c| c.is_ascii_digit()),
            "{text}"
        );
        assert!(
            !session.is_empty() && session.bytes().all(|c| c.is_ascii_digit()),
            "{text}"
        );
        assert_eq!(text.parse::<SocketId>().expect("parses"), s.socket_id());
    }
    assert_ne!(a.socket_id(), b.socket_id());
    assert_eq!(a.socket_id().node(), b.socket_id().node(), "one node");
    assert_eq!(a.user_id(), None);
    assert_eq!(b.user_id(), Some("b"));
}

#[tokio::test]
async fn an_anonymous_session_joins_only_what_the_host_chose_and_counts_for_nothing() {
    let hub = Hub::in_memory();
    let mut watcher = hub
        .connect(ConnectOptions::chat(who("w")))
        .await
        .expect("watcher");
    drain(&mut watcher);
    let mut anon = hub
        .connect(ConnectOptions::anonymous().channels(vec![named("orders")]))
        .await
        .expect("anonymous");
    assert!(
        quiet(&mut watcher).await,
        "no presence for an anonymous session"
    );
    assert_eq!(hub.present_users().len(), 1);

    let ev = Event::app("App\\Events\\OrderShipped", json!({"id": 7})).expect("name");
    hub.publish(&[named("orders")], ev).await.expect("publish");
    let got = next(&mut anon).await;
    assert_eq!(got.event_type, EventType::APP);
    assert_eq!(got.name.as_deref(), Some("App\\Events\\OrderShipped"));
    assert_eq!(got.data["id"], 7);
    assert!(quiet(&mut watcher).await, "not subscribed to orders");

    // It has no user: no user channel, no chat; no private channel without an authorizer.
    let err = hub
        .subscribe(
            anon.id(),
            &Channel::user("w").expect("channel"),
            &Credentials::NONE,
        )
        .await
        .expect_err("no user");
    assert!(matches!(err, Error::Unauthenticated(_)), "{err:?}");
    let err = hub
        .subscribe(anon.id(), &named("private-orders"), &Credentials::NONE)
        .await
        .expect_err("no authorizer");
    assert!(matches!(err, Error::Forbidden(_)), "{err:?}");
    // A chat session needs a user.
    let chat_without_user = ConnectOptions {
        join: Join::Chat { rooms: true },
        ..ConnectOptions::anonymous()
    };
    let err = hub.connect(chat_without_user).await.expect_err("no user");
    assert!(matches!(err, Error::Invalid { .. }), "{err:?}");
    drop(anon);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(quiet(&mut watcher).await, "nobody went offline");
    assert_eq!(hub.session_count(), 1);
}

#[tokio::test]
async fn a_user_session_without_chat_state_follows_no_room() {
    let hub = Hub::in_memory();
    let mut notify = hub
        .connect(ConnectOptions::user(who("n")).channels(vec![Channel::user("n").expect("ch")]))
        .await
        .expect("notification client");
    // No store user, no presence.
    assert_eq!(hub.store().get_user("n").await.expect("store"), None);
    assert_eq!(hub.presence_of("n"), UserStatus::Offline);

    // Seed 001's `notification`, to the user's channel.
    let ev = Event::app("notification", json!({"title": "Hi"})).expect("name");
    hub.publish(&[Channel::user("n").expect("ch")], ev)
        .await
        .expect("publish");
    assert_eq!(
        next(&mut notify).await.name.as_deref(),
        Some("notification")
    );

    // When the chat user `n` is added to a room, this session is not subscribed to it.
    let mut chat = hub
        .connect(ConnectOptions::chat(who("n")))
        .await
        .expect("chat");
    let room = hub
        .create_room("n", CreateRoom::named("general"))
        .await
        .expect("room");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(count(&drain(&mut chat), &EventType::ROOM_CREATE), 1);
    // The user-channel copy of the room's creation reaches the notification session too
    // (it holds `user:n`), but no room subscription comes with it.
    let copies = drain(&mut notify);
    assert_eq!(count(&copies, &EventType::ROOM_CREATE), 1, "{copies:?}");
    let room_id = room.id;
    hub.send_message("n", send(&room_id, "in the room"))
        .await
        .expect("send");
    assert_eq!(
        next(&mut chat).await.event_type,
        EventType::MESSAGE_SEND,
        "the chat session follows its room"
    );
    assert!(quiet(&mut notify).await, "the user session does not");
}

#[tokio::test]
async fn an_app_event_skips_the_excepted_socket_on_every_node() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let bus = MemoryBus::new();
    let node_a = Hub::new(store.clone(), Arc::new(bus.node()));
    let node_b = Hub::new(store, Arc::new(bus.node()));
    let channel = named("presence-room.1");
    let open = |hub: &Hub| {
        let hub = hub.clone();
        let channel = channel.clone();
        async move {
            hub.connect(ConnectOptions::anonymous().channels(vec![channel]))
                .await
                .expect("session")
        }
    };
    let mut sender = open(&node_a).await;
    let mut peer_a = open(&node_a).await;
    let mut peer_b = open(&node_b).await;
    assert_ne!(sender.socket_id().node(), peer_b.socket_id().node());

    let ev = Event::app("client-moved", json!({"x": 1}))
        .expect("name")
        .except(sender.socket_id());
    node_a
        .publish(std::slice::from_ref(&channel), ev)
        .await
        .expect("publish");
    for s in [&mut peer_a, &mut peer_b] {
        let got = next(s).await;
        assert_eq!(got.name.as_deref(), Some("client-moved"));
        assert_eq!(got.except, Some(sender.socket_id()));
    }
    assert!(quiet(&mut sender).await, "the excepted socket got nothing");

    // Without `except`, the sender receives its own event too.
    let ev = Event::app("client-moved", json!({"x": 2})).expect("name");
    node_a.publish(&[channel], ev).await.expect("publish");
    assert_eq!(next(&mut sender).await.data["x"], 2);
}

#[tokio::test]
async fn app_events_are_counted_and_kept_in_the_history() {
    let hub = Hub::in_memory();
    let before = hub.metrics().events_published;
    let ev = Event::app("kafka-event", json!({"offset": 1})).expect("name");
    hub.publish(&[named("a"), named("b")], ev)
        .await
        .expect("publish");
    assert_eq!(hub.metrics().events_published, before + 1);
    let history = hub.event_history(Some("event.app"), 10);
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].name.as_deref(), Some("kafka-event"));
}

#[test]
fn app_event_names_are_checked_and_survive_the_broker() {
    for bad in ["", "a\nb", &"x".repeat(MAX_APP_EVENT_NAME + 1)] {
        let err = Event::app(bad, json!({})).expect_err("bad name");
        assert!(
            matches!(err, Error::Invalid { field: "event", .. }),
            "{err:?}"
        );
    }
    let ev = Event::app("chat:message", json!({"text": "hi"}))
        .expect("name")
        .except(SocketId::new(12, 34));
    let back = Event::from_json_bytes(&ev.to_json_bytes()).expect("round trip");
    assert_eq!(back, ev);
    let text = String::from_utf8(ev.to_json_bytes()).expect("utf-8");
    assert!(text.contains(r#""name":"chat:message""#), "{text}");
    assert!(text.contains(r#""except_socket":"12.34""#), "{text}");
    // A structured event carries neither.
    let plain = Event::new(EventType::USER_ONLINE, json!({}));
    let text = String::from_utf8(plain.to_json_bytes()).expect("utf-8");
    assert!(!text.contains("name") && !text.contains("except"), "{text}");
    // A forged name on the wire is refused like a bad one.
    let forged = text.replacen('{', r#"{"name":"","#, 1);
    assert!(Event::from_json_bytes(forged.as_bytes()).is_err());
}

#[tokio::test]
async fn connections_publish_client_events_only_unless_the_authorizer_says_more() {
    let hub = Hub::in_memory();
    let mut a = hub
        .connect(ConnectOptions::user(who("ana")))
        .await
        .expect("a");
    let mut b = hub.connect(ConnectOptions::anonymous()).await.expect("b");
    let private = named("private-room");
    for s in [&a, &b] {
        hub.subscribe_trusted(s.id(), &private)
            .await
            .expect("trusted");
        hub.subscribe(s.id(), &named("news"), &Credentials::NONE)
            .await
            .expect("news");
    }
    assert!(
        hub.subscribe_trusted(a.id(), &named("presence-x"))
            .await
            .is_err(),
        "presence channels need a member"
    );
    let ev = |name: &str| Event::app(name, json!({"n": 1})).expect("event");
    // A client event on a private channel both joined: b gets it with ana's id, a does not.
    hub.publish_as(a.id(), &private, ev("client-typing"))
        .await
        .expect("client event");
    let got = next(&mut b).await;
    assert_eq!(
        (got.name.as_deref(), got.user_id.as_deref()),
        (Some("client-typing"), Some("ana"))
    );
    assert!(quiet(&mut a).await, "never to the sender");
    // Not a client event, a public channel, a channel not joined, an event without a name.
    for (channel, event) in [
        (private.clone(), ev("App\\Events\\X")),
        (named("news"), ev("client-typing")),
        (named("private-other"), ev("client-typing")),
    ] {
        let e = hub
            .publish_as(a.id(), &channel, event)
            .await
            .expect_err("refused");
        assert_eq!(e.code(), "forbidden", "{channel}");
    }
    let unnamed = Event::new(EventType::SYSTEM_BROADCAST, json!({}));
    assert_eq!(
        hub.publish_as(a.id(), &private, unnamed)
            .await
            .expect_err("no name")
            .code(),
        "invalid"
    );
    assert!(quiet(&mut b).await, "nothing refused was delivered");
}
