//! Sessions and room channels: joins from a session, unsubscribes that membership
//! events must not undo, subscription rights, connection limits, notifications and
//! system events.

mod common;

use common::*;
use realtime_core::*;
use std::sync::Arc;

#[tokio::test]
async fn notifications_and_system_events() {
    let (hub, mut a, mut b, _c, _room) = setup().await;
    drain(&mut a);
    drain(&mut b);
    let n = Notification {
        kind: "info".into(),
        title: "📧 New Email".into(),
        message: "From: john".into(),
        data: None,
    };
    let bad = Notification {
        kind: "shouting".into(),
        ..n.clone()
    };
    assert_eq!(
        hub.notify_user("alice", bad)
            .await
            .expect_err("kind")
            .code(),
        "invalid"
    );
    hub.notify_user("alice", n).await.expect("notify");
    let got = drain(&mut a);
    let note = of_type(&got, &EventType::USER_NOTIFICATION);
    assert_eq!(note.len(), 1);
    assert_eq!(note[0].data["title"], "📧 New Email");
    assert!(note[0].data["timestamp"].is_string());
    assert!(
        of_type(&drain(&mut b), &EventType::USER_NOTIFICATION).is_empty(),
        "only the addressee"
    );
    hub.broadcast_system(SystemEvent::Maintenance, serde_json::json!({"in": "5m"}))
        .await
        .expect("sys");
    hub.broadcast_system(SystemEvent::Broadcast, serde_json::json!({"title": "hi"}))
        .await
        .expect("sys");
    for s in [&mut a, &mut b] {
        let evs = drain(s);
        assert_eq!(of_type(&evs, &EventType::SYSTEM_MAINTENANCE).len(), 1);
        assert_eq!(of_type(&evs, &EventType::SYSTEM_BROADCAST).len(), 1);
    }
}

#[tokio::test]
async fn a_sessions_join_joins_once_then_only_subscribes() {
    let (hub, mut a, _b, mut c, room) = setup().await;
    drain(&mut a);
    // carol is no member: she joins (alice is told) and her session is subscribed.
    let (got, _) = hub
        .resume_room(c.id(), &room.id, None, true, |_, _| None)
        .await
        .expect("join");
    assert_eq!(
        (got.id.as_str(), got.epoch.as_str()),
        (room.id.as_str(), room.epoch.as_str())
    );
    assert_eq!(of_type(&drain(&mut a), &EventType::ROOM_JOIN).len(), 1);
    drain(&mut c);
    hub.send_message("alice", send(&room.id, "hello"))
        .await
        .expect("send");
    assert_eq!(of_type(&drain(&mut c), &EventType::MESSAGE_SEND).len(), 1);
    // A member now: only subscribed, no second join.
    hub.resume_room(c.id(), &room.id, None, true, |_, _| None)
        .await
        .expect("again");
    assert!(of_type(&drain(&mut a), &EventType::ROOM_JOIN).is_empty());
    let members = hub.list_members("alice", &room.id).await.expect("members");
    assert_eq!(members.iter().filter(|m| m.user_id == "carol").count(), 1);
    // Private rooms are entered by invite only.
    let secret = secret_room(&hub).await;
    assert_eq!(
        hub.resume_room(c.id(), &secret.id, None, true, |_, _| None)
            .await
            .expect_err("private")
            .code(),
        "forbidden"
    );
}

/// A membership event (here the new room's `user:` events) makes the Hub subscribe the
/// user's sessions in a task of its own; an unsubscribe that comes after the event but
/// before that task runs is the later word, and the task must not undo it.
#[tokio::test]
async fn an_unsubscribe_after_a_membership_event_is_not_undone_by_its_task() {
    let (hub, mut a, mut b, mut c, room) = setup_unsettled(Hub::in_memory()).await;
    // No yield since the events: their subscription tasks have not run yet.
    let ch = Channel::room(&room.id).expect("ch");
    hub.unsubscribe(b.id(), &ch).await.expect("unsubscribe");
    settle().await;
    drain(&mut a);
    drain(&mut b);
    hub.send_message("alice", send(&room.id, "bob unsubscribed"))
        .await
        .expect("send");
    assert!(
        of_type(&drain(&mut b), &EventType::MESSAGE_SEND).is_empty(),
        "bob's session stays unsubscribed"
    );
    assert_eq!(
        of_type(&drain(&mut a), &EventType::MESSAGE_SEND).len(),
        1,
        "alice's session still is"
    );
    // An addition is still carried out: carol, added now (by `add_member` itself and by
    // the event's task after it), is subscribed once the task has run.
    hub.add_member("alice", &room.id, "carol", Role::Member)
        .await
        .expect("add carol");
    settle().await;
    drain(&mut c);
    hub.send_message("alice", send(&room.id, "carol hears this"))
        .await
        .expect("send");
    assert_eq!(of_type(&drain(&mut c), &EventType::MESSAGE_SEND).len(), 1);
}

#[tokio::test]
async fn subscribing_to_a_room_checks_membership() {
    let (hub, mut a, _b, mut c, room) = setup().await;
    // alice's session leaves the room's channel (she stays a member) …
    let ch = Channel::room(&room.id).expect("ch");
    hub.unsubscribe(a.id(), &ch).await.expect("unsubscribe");
    drain(&mut a);
    hub.send_message("alice", send(&room.id, "unheard"))
        .await
        .expect("send");
    assert!(of_type(&drain(&mut a), &EventType::MESSAGE_SEND).is_empty());
    // carol is no member of the (public) room: refused, and not subscribed.
    assert_eq!(
        hub.subscribe(c.id(), &ch, &Credentials::NONE)
            .await
            .expect_err("not a member")
            .code(),
        "forbidden"
    );
    // … and subscribing puts it back.
    assert_eq!(
        hub.subscribe(a.id(), &ch, &Credentials::NONE)
            .await
            .expect("member"),
        Subscribed::Channel
    );
    let nope = Channel::room("nope").expect("ch");
    assert_eq!(
        hub.subscribe(a.id(), &nope, &Credentials::NONE)
            .await
            .expect_err("missing")
            .code(),
        "not_found"
    );
    assert_eq!(
        hub.subscribe(9999, &ch, &Credentials::NONE)
            .await
            .expect_err("session")
            .code(),
        "session_closed"
    );
    drain(&mut a);
    drain(&mut c);
    hub.send_message("alice", send(&room.id, "hi"))
        .await
        .expect("send");
    assert_eq!(
        of_type(&drain(&mut a), &EventType::MESSAGE_SEND).len(),
        1,
        "subscribed again"
    );
    assert!(
        of_type(&drain(&mut c), &EventType::MESSAGE_SEND).is_empty(),
        "the refused session got nothing"
    );
}

#[tokio::test]
async fn subscription_rights() {
    let (hub, a, _b, _c, room) = setup().await;
    let other_user = Channel::user("bob").expect("ch");
    assert_eq!(
        hub.subscribe(a.id(), &other_user, &Credentials::NONE)
            .await
            .expect_err("other")
            .code(),
        "forbidden"
    );
    let private = Channel::parse("private-booking.1").expect("ch");
    assert_eq!(
        hub.subscribe(a.id(), &private, &Credentials::NONE)
            .await
            .expect_err("private")
            .code(),
        "forbidden"
    );
    hub.subscribe(
        a.id(),
        &Channel::parse("availability").expect("ch"),
        &Credentials::NONE,
    )
    .await
    .expect("public");
    hub.subscribe(
        a.id(),
        &Channel::room(&room.id).expect("ch"),
        &Credentials::NONE,
    )
    .await
    .expect("member");
    let missing = Channel::room("nope").expect("ch");
    assert_eq!(
        hub.subscribe(a.id(), &missing, &Credentials::NONE)
            .await
            .expect_err("missing")
            .code(),
        "not_found"
    );
    assert_eq!(
        hub.subscribe(9999, &missing, &Credentials::NONE)
            .await
            .expect_err("session")
            .code(),
        "session_closed"
    );

    struct AllowBooking;
    #[async_trait::async_trait]
    impl ChannelAuthorizer for AllowBooking {
        async fn authorize(&self, request: &AuthRequest<'_>) -> Result<Authorization> {
            let user = request.user_id.unwrap_or_default();
            Ok(
                if request.channel.to_string() == format!("private-booking.{user}") {
                    Authorization::Allow
                } else {
                    Authorization::Deny
                },
            )
        }
    }
    let hub2 = Hub::builder(Arc::new(MemoryStore::new()), Arc::new(MemoryBroker::new()))
        .channel_authorizer(Arc::new(AllowBooking))
        .build();
    let s = hub2
        .connect(ConnectOptions::chat(who("1")))
        .await
        .expect("connect");
    hub2.subscribe(s.id(), &private, &Credentials::NONE)
        .await
        .expect("authorized");
    let p2 = Channel::parse("private-booking.2").expect("ch");
    assert!(
        hub2.subscribe(s.id(), &p2, &Credentials::NONE)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn connection_limit_per_user() {
    let hub = Hub::builder(Arc::new(MemoryStore::new()), Arc::new(MemoryBroker::new()))
        .config(HubConfig {
            max_sessions_per_user: 2,
            ..Default::default()
        })
        .build();
    let _first = hub
        .connect(ConnectOptions::chat(who("u")))
        .await
        .expect("1");
    let _second = hub
        .connect(ConnectOptions::chat(who("u")))
        .await
        .expect("2");
    assert_eq!(
        hub.connect(ConnectOptions::chat(who("u")))
            .await
            .expect_err("3")
            .code(),
        "forbidden"
    );
    assert!(
        hub.connect(ConnectOptions::chat(who("v"))).await.is_ok(),
        "other users unaffected"
    );
    let bad = Identity {
        user_id: "bad id".into(),
        username: None,
        claims: serde_json::Value::Null,
    };
    assert_eq!(
        hub.connect(ConnectOptions::chat(bad.clone()))
            .await
            .expect_err("id")
            .code(),
        "invalid"
    );
}
