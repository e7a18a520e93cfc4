//! Hub end to end over the memory backends: messages, rooms, invites, reactions, reads,
//! recovery, rights and bad input.

mod common;

use common::*;
use realtime_core::*;
use std::sync::Arc;

fn of_type<'a>(evs: &'a [Event], t: &EventType) -> Vec<&'a Event> {
    evs.iter().filter(|e| &e.event_type == t).collect()
}

async fn setup() -> (Hub, Session, Session, Session, Room) {
    setup_on(Hub::in_memory()).await
}

/// alice, bob and carol connected to `hub`; alice's room "General" with bob in it.
async fn setup_on(hub: Hub) -> (Hub, Session, Session, Session, Room) {
    let setup = setup_unsettled(hub).await;
    // The room's `user:` events make the Hub subscribe the members' sessions in tasks of
    // its own: let them finish, so each test starts from the settled state.
    settle().await;
    setup
}

/// Let the Hub's spawned tasks (membership subscriptions) run.
async fn settle() {
    for _ in 0..16 {
        tokio::task::yield_now().await;
    }
}

/// [`setup_on`] without letting the room's membership tasks run.
async fn setup_unsettled(hub: Hub) -> (Hub, Session, Session, Session, Room) {
    let a = hub
        .connect(ConnectOptions::chat(who("alice")))
        .await
        .expect("alice");
    let b = hub
        .connect(ConnectOptions::chat(who("bob")))
        .await
        .expect("bob");
    let c = hub
        .connect(ConnectOptions::chat(who("carol")))
        .await
        .expect("carol");
    let room = hub
        .create_room(
            "alice",
            CreateRoom {
                name: "General".into(),
                members: vec!["bob".into()],
                ..Default::default()
            },
        )
        .await
        .expect("room");
    (hub, a, b, c, room)
}

#[tokio::test]
async fn members_receive_messages_and_outsiders_do_not() {
    let (hub, mut a, mut b, mut c, room) = setup().await;
    drain(&mut a);
    drain(&mut b);
    drain(&mut c);
    let m = hub
        .send_message("bob", send(&room.id, "Hello everyone!"))
        .await
        .expect("send");
    assert_eq!(m.seq, 1);
    assert_eq!(m.status, MessageStatus::Sent);
    for s in [&mut a, &mut b] {
        let evs = drain(s);
        let sent = of_type(&evs, &EventType::MESSAGE_SEND);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].data["content"], "Hello everyone!");
        assert_eq!(sent[0].data["message_id"], m.id.as_str());
        assert_eq!(sent[0].room_id.as_deref(), Some(room.id.as_str()));
        assert_eq!(sent[0].user_id.as_deref(), Some("bob"));
    }
    assert!(
        of_type(&drain(&mut c), &EventType::MESSAGE_SEND).is_empty(),
        "carol is not a member"
    );
    assert_eq!(
        hub.send_message("carol", send(&room.id, "hi"))
            .await
            .expect_err("outsider")
            .code(),
        "forbidden"
    );
    assert_eq!(
        hub.history("carol", &room.id, None, 10)
            .await
            .expect_err("outsider")
            .code(),
        "forbidden"
    );
    assert_eq!(
        hub.get_message("carol", &m.id)
            .await
            .expect_err("outsider")
            .code(),
        "forbidden"
    );
    assert_eq!(
        hub.send_message("bob", send("nope", "hi"))
            .await
            .expect_err("room")
            .code(),
        "not_found"
    );
    let page = hub
        .history("alice", &room.id, None, 0)
        .await
        .expect("history");
    assert_eq!(page.messages.len(), 1);
    assert!(hub.metrics().events_published >= 1);
    assert!(
        hub.event_history(Some("event.message."), 10)
            .iter()
            .any(|e| e.data["message_id"] == m.id.as_str())
    );
}

#[tokio::test]
async fn retried_send_is_idempotent() {
    let (hub, _a, mut b, _c, room) = setup().await;
    drain(&mut b);
    let req = SendMessage {
        client_id: Some("client-1".into()),
        ..send(&room.id, "once")
    };
    let first = hub.send_message("alice", req.clone()).await.expect("first");
    let again = hub.send_message("alice", req).await.expect("retry");
    assert_eq!(first, again);
    assert_eq!(
        of_type(&drain(&mut b), &EventType::MESSAGE_SEND).len(),
        1,
        "one event for two tries"
    );
    assert_eq!(
        hub.history("alice", &room.id, None, 10)
            .await
            .expect("h")
            .messages
            .len(),
        1
    );
}

#[tokio::test]
async fn bad_input_gets_typed_errors() {
    let (hub, _a, _b, _c, room) = setup().await;
    let long = "x".repeat(Limits::default().max_content_bytes + 1);
    assert_eq!(
        hub.send_message("alice", send(&room.id, &long))
            .await
            .expect_err("long")
            .code(),
        "content_too_long"
    );
    assert_eq!(
        hub.send_message("alice", send(&room.id, "   "))
            .await
            .expect_err("empty")
            .code(),
        "invalid"
    );
    let sys = SendMessage {
        kind: MessageKind::System,
        ..send(&room.id, "x")
    };
    assert_eq!(
        hub.send_message("alice", sys)
            .await
            .expect_err("system")
            .code(),
        "forbidden"
    );
    let bad_cid = SendMessage {
        client_id: Some("has space".into()),
        ..send(&room.id, "x")
    };
    assert_eq!(
        hub.send_message("alice", bad_cid)
            .await
            .expect_err("cid")
            .code(),
        "invalid"
    );
    assert_eq!(
        hub.send_message("alice", send("bad room id!", "x"))
            .await
            .expect_err("id")
            .code(),
        "invalid"
    );
    let m = hub
        .send_message("alice", send(&room.id, "x"))
        .await
        .expect("ok");
    assert_eq!(
        hub.react("alice", &m.id, "two words", true)
            .await
            .expect_err("emoji")
            .code(),
        "invalid"
    );
    assert_eq!(
        hub.react("alice", "missing", "👍", true)
            .await
            .expect_err("msg")
            .code(),
        "not_found"
    );
    let bad = CreateRoom {
        name: "".into(),
        ..Default::default()
    };
    assert_eq!(
        hub.create_room("alice", bad)
            .await
            .expect_err("name")
            .code(),
        "invalid"
    );
    let ghost = CreateRoom {
        name: "x".into(),
        members: vec!["ghost".into()],
        ..Default::default()
    };
    assert_eq!(
        hub.create_room("alice", ghost)
            .await
            .expect_err("member")
            .code(),
        "not_found"
    );
    assert_eq!(
        hub.join_room("alice", &room.id)
            .await
            .expect_err("member already")
            .code(),
        "conflict"
    );
}

#[tokio::test]
async fn join_flow_notifies_members_and_subscribes_the_joiner() {
    let (hub, mut a, _b, mut c, room) = setup().await;
    drain(&mut a);
    drain(&mut c);
    hub.join_room("carol", &room.id).await.expect("join");
    let joins = drain(&mut a);
    let j = of_type(&joins, &EventType::ROOM_JOIN);
    assert_eq!(j.len(), 1, "existing member is told");
    assert_eq!(j[0].data["user_id"], "carol");
    assert_eq!(j[0].data["username"], "carol-name");
    hub.send_message("alice", send(&room.id, "welcome"))
        .await
        .expect("send");
    assert_eq!(
        of_type(&drain(&mut c), &EventType::MESSAGE_SEND).len(),
        1,
        "joiner now receives"
    );
    hub.leave_room("carol", &room.id).await.expect("leave");
    assert_eq!(of_type(&drain(&mut a), &EventType::ROOM_LEAVE).len(), 1);
    drain(&mut c);
    hub.send_message("alice", send(&room.id, "bye"))
        .await
        .expect("send");
    assert!(
        of_type(&drain(&mut c), &EventType::MESSAGE_SEND).is_empty(),
        "left: no more messages"
    );
    assert_eq!(
        hub.leave_room("alice", &room.id)
            .await
            .expect_err("owner")
            .code(),
        "forbidden"
    );
}

/// alice's private room "Secret" (no other member).
async fn secret_room(hub: &Hub) -> Room {
    hub.create_room(
        "alice",
        CreateRoom {
            name: "Secret".into(),
            is_private: true,
            ..Default::default()
        },
    )
    .await
    .expect("secret room")
}

#[tokio::test]
async fn private_rooms_invites_and_member_management() {
    let (hub, _a, mut b, mut c, _room) = setup().await;
    let secret = secret_room(&hub).await;
    assert_eq!(
        hub.join_room("carol", &secret.id)
            .await
            .expect_err("private")
            .code(),
        "forbidden"
    );
    assert_eq!(
        hub.get_room("carol", &secret.id)
            .await
            .expect_err("hidden")
            .code(),
        "forbidden"
    );
    assert_eq!(
        hub.create_invite("carol", &secret.id, None)
            .await
            .expect_err("not admin")
            .code(),
        "forbidden"
    );
    drain(&mut c);
    let inv = hub
        .create_invite("alice", &secret.id, Some("carol".into()))
        .await
        .expect("invite");
    assert_eq!(
        of_type(&drain(&mut c), &EventType::ROOM_INVITE_CREATE).len(),
        1,
        "invitee is told"
    );
    assert_eq!(
        hub.accept_invite("bob", &inv.code)
            .await
            .expect_err("not for bob")
            .code(),
        "forbidden"
    );
    hub.accept_invite("carol", &inv.code).await.expect("accept");
    assert_eq!(
        hub.accept_invite("carol", &inv.code)
            .await
            .expect_err("twice")
            .code(),
        "conflict"
    );
    assert_eq!(
        hub.reject_invite("carol", "no-such-code")
            .await
            .expect_err("unknown")
            .code(),
        "not_found"
    );
    let open = hub
        .create_invite("alice", &secret.id, None)
        .await
        .expect("open invite");
    hub.reject_invite("bob", &open.code).await.expect("reject");
    assert_eq!(
        hub.accept_invite("bob", &open.code)
            .await
            .expect_err("rejected")
            .code(),
        "invalid_transition"
    );
    drain(&mut b);
    hub.add_member("alice", &secret.id, "bob", Role::Admin)
        .await
        .expect("add admin");
    assert_eq!(
        of_type(&drain(&mut b), &EventType::ROOM_MEMBER_ADD).len(),
        1,
        "added user is told"
    );
    assert_eq!(
        hub.remove_member("bob", &secret.id, "alice")
            .await
            .expect_err("owner")
            .code(),
        "forbidden"
    );
    hub.remove_member("bob", &secret.id, "carol")
        .await
        .expect("admin removes member");
    assert_eq!(
        hub.send_message("carol", send(&secret.id, "x"))
            .await
            .expect_err("removed")
            .code(),
        "forbidden"
    );
    assert_eq!(
        hub.list_members("alice", &secret.id)
            .await
            .expect("members")
            .len(),
        2
    );
    assert_eq!(
        hub.delete_room("bob", &secret.id)
            .await
            .expect_err("admin")
            .code(),
        "forbidden"
    );
    hub.delete_room("alice", &secret.id)
        .await
        .expect("owner deletes");
    assert_eq!(
        hub.get_room("alice", &secret.id)
            .await
            .expect_err("gone")
            .code(),
        "not_found"
    );
}

#[tokio::test]
async fn edit_delete_react_read() {
    let (hub, mut a, mut b, _c, room) = setup().await;
    let m = hub
        .send_message("bob", send(&room.id, "tpyo"))
        .await
        .expect("send");
    assert_eq!(
        hub.edit_message("alice", &m.id, "x".into())
            .await
            .expect_err("not sender")
            .code(),
        "forbidden"
    );
    let e = hub
        .edit_message("bob", &m.id, "typo".into())
        .await
        .expect("edit");
    assert!(e.edited_at.is_some());
    drain(&mut a);
    assert!(hub.react("alice", &m.id, "👍", true).await.expect("react"));
    assert!(
        !hub.react("alice", &m.id, "👍", true).await.expect("again"),
        "idempotent"
    );
    assert_eq!(
        of_type(&drain(&mut a), &EventType::MESSAGE_REACTION_ADD).len(),
        1,
        "one event"
    );
    assert!(
        hub.react("alice", &m.id, "👍", false)
            .await
            .expect("remove")
    );
    assert!(
        !hub.react("alice", &m.id, "👍", false)
            .await
            .expect("remove again")
    );
    let m2 = hub
        .send_message("bob", send(&room.id, "second"))
        .await
        .expect("send");
    assert_eq!(
        hub.unread_count("alice", &room.id).await.expect("unread"),
        2
    );
    drain(&mut b);
    assert_eq!(hub.read_message("alice", &m2.id).await.expect("read"), 2);
    let evs = drain(&mut b);
    assert_eq!(of_type(&evs, &EventType::MESSAGE_READ).len(), 1);
    assert_eq!(
        of_type(&evs, &EventType::MESSAGE_STATUS)[0].data["status"],
        "READ"
    );
    assert_eq!(
        hub.mark_read("alice", &room.id, Some(1))
            .await
            .expect("back"),
        2,
        "never backwards"
    );
    assert_eq!(
        hub.unread_count("alice", &room.id).await.expect("unread"),
        0
    );
    assert_eq!(
        hub.delete_message("carol", &m.id)
            .await
            .expect_err("outsider")
            .code(),
        "forbidden"
    );
    hub.delete_message("alice", &m.id)
        .await
        .expect("owner deletes any");
    let gone = hub.get_message("bob", &m.id).await.expect("tombstone kept");
    assert!(gone.is_deleted() && gone.content.is_empty());
    assert_eq!(
        hub.react("bob", &m.id, "👍", true)
            .await
            .expect_err("deleted")
            .code(),
        "invalid_transition"
    );
    assert_eq!(
        hub.edit_message("bob", &m.id, "x".into())
            .await
            .expect_err("deleted")
            .code(),
        "invalid_transition"
    );
}

#[tokio::test]
async fn reconnect_recovers_exactly_what_was_missed() {
    let (hub, _a, b, _c, room) = setup().await;
    hub.send_message("alice", send(&room.id, "seen"))
        .await
        .expect("send");
    let epoch = hub.get_room("bob", &room.id).await.expect("room").epoch;
    drop(b);
    for i in 0..50 {
        hub.send_message("alice", send(&room.id, &format!("missed {i}")))
            .await
            .expect("send");
    }
    let since = Since {
        seq: 1,
        epoch: epoch.clone(),
    };
    let r = hub.recover("bob", &room.id, &since).await.expect("recover");
    assert!(r.recovered);
    assert_eq!(r.messages.len(), 50);
    assert!(
        r.messages
            .iter()
            .enumerate()
            .all(|(i, m)| m.seq == i as u64 + 2 && m.content == format!("missed {i}"))
    );
    let wrong = hub
        .recover(
            "bob",
            &room.id,
            &Since {
                seq: 1,
                epoch: "other".into(),
            },
        )
        .await
        .expect("recover");
    assert!(
        !wrong.recovered && wrong.messages.is_empty(),
        "epoch mismatch is never a silent gap"
    );
    let ahead = hub
        .recover(
            "bob",
            &room.id,
            &Since {
                seq: 999,
                epoch: epoch.clone(),
            },
        )
        .await
        .expect("recover");
    assert!(!ahead.recovered);
    assert_eq!(
        hub.recover("carol", &room.id, &since)
            .await
            .expect_err("outsider")
            .code(),
        "forbidden"
    );

    let small = Hub::builder(Arc::new(MemoryStore::new()), Arc::new(MemoryBroker::new()))
        .config(HubConfig {
            recovery_limit: 10,
            ..Default::default()
        })
        .build();
    let _s = small
        .connect(ConnectOptions::chat(who("alice")))
        .await
        .expect("connect");
    let r2 = small
        .create_room(
            "alice",
            CreateRoom {
                name: "r".into(),
                ..Default::default()
            },
        )
        .await
        .expect("room");
    for _ in 0..11 {
        small
            .send_message("alice", send(&r2.id, "x"))
            .await
            .expect("send");
    }
    let too_many = small
        .recover(
            "alice",
            &r2.id,
            &Since {
                seq: 0,
                epoch: r2.epoch.clone(),
            },
        )
        .await
        .expect("recover");
    assert!(
        !too_many.recovered,
        "beyond the recovery limit the client must reload"
    );
}

#[tokio::test]
async fn direct_rooms_are_deterministic() {
    let (hub, mut a, mut b, _c, _room) = setup().await;
    drain(&mut a);
    drain(&mut b);
    let r1 = hub.start_direct("alice", "bob").await.expect("direct");
    let r2 = hub.start_direct("bob", "alice").await.expect("again");
    assert_eq!(r1.id, r2.id);
    assert_eq!(r1.kind, RoomKind::Direct);
    assert_eq!(
        of_type(&drain(&mut b), &EventType::ROOM_CREATE).len(),
        1,
        "the other user is told"
    );
    hub.send_message("alice", send(&r1.id, "hey"))
        .await
        .expect("dm");
    assert_eq!(of_type(&drain(&mut b), &EventType::MESSAGE_SEND).len(), 1);
    assert_eq!(
        hub.start_direct("alice", "alice")
            .await
            .expect_err("self")
            .code(),
        "invalid"
    );
    assert_eq!(
        hub.start_direct("alice", "ghost")
            .await
            .expect_err("ghost")
            .code(),
        "not_found"
    );
    assert_eq!(
        hub.join_room("carol", &r1.id).await.expect_err("dm").code(),
        "forbidden"
    );
    let sys = hub
        .send_system_message(&r1.id, "Direct chat started".into())
        .await
        .expect("sys");
    assert_eq!(sys.kind, MessageKind::System);
    assert_eq!(
        hub.send_system_message("nope", "x".into())
            .await
            .expect_err("no such room")
            .code(),
        "not_found"
    );
}

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

#[tokio::test]
async fn pipelined_sends_commit_together_in_order_and_a_bad_one_sinks_nothing() {
    let (hub, _a, mut b, _c, room) = setup().await;
    drain(&mut b);
    // Submitted back to back without awaiting: they queue for one group commit.
    let mut pending = Vec::new();
    for i in 0..50 {
        let sender = if i % 2 == 0 { "alice" } else { "bob" };
        pending.push(
            hub.submit_message(sender, send(&room.id, &format!("m{i}")))
                .await
                .expect("queued"),
        );
        if i == 20 {
            // carol is no member: refused by the committer, the others still go in.
            pending.push(
                hub.submit_message("carol", send(&room.id, "intruder"))
                    .await
                    .expect("queued"),
            );
        }
    }
    assert_eq!(
        hub.submit_message("alice", send(&room.id, &"x".repeat(100_000)))
            .await
            .expect_err("too long is refused before queueing")
            .code(),
        "content_too_long"
    );
    let mut stored = Vec::new();
    for p in pending {
        match p.await {
            Ok(m) => stored.push(m),
            Err(e) => assert_eq!(e.code(), "forbidden", "{e}"),
        }
    }
    assert_eq!(stored.len(), 50);
    let contents: Vec<_> = stored.iter().map(|m| m.content.clone()).collect();
    assert_eq!(
        contents,
        (0..50).map(|i| format!("m{i}")).collect::<Vec<_>>()
    );
    let seqs: Vec<u64> = stored.iter().map(|m| m.seq).collect();
    assert_eq!(
        seqs,
        (1..=50).collect::<Vec<u64>>(),
        "gapless, in submission order"
    );
    let pushed = of_type(&drain(&mut b), &EventType::MESSAGE_SEND)
        .iter()
        .map(|e| e.data["content"].as_str().unwrap_or_default().to_owned())
        .collect::<Vec<_>>();
    assert_eq!(pushed, contents, "published in the same order");
}

#[tokio::test]
async fn uncached_senders_are_checked_per_batch_and_each_refusal_is_exact() {
    // No membership cache: the committer asks the store (`Store::are_members`) for every
    // sender of every batch.
    let hub = Hub::builder(Arc::new(MemoryStore::new()), Arc::new(MemoryBroker::new()))
        .config(HubConfig {
            membership_cache_ttl: std::time::Duration::ZERO,
            ..Default::default()
        })
        .build();
    let (hub, _a, _b, _c, room) = setup_on(hub).await;
    let sends = [
        ("alice", room.id.as_str(), "m0"),
        ("carol", room.id.as_str(), "intruder"),
        ("bob", room.id.as_str(), "m1"),
        ("alice", "nope", "no such room"),
        ("bob", room.id.as_str(), "m2"),
        ("carol", room.id.as_str(), "intruder again"),
    ];
    let mut pending = Vec::new();
    for (sender, room_id, text) in sends {
        pending.push(
            hub.submit_message(sender, send(room_id, text))
                .await
                .expect("queued"),
        );
    }
    let mut outcomes = Vec::new();
    for p in pending {
        outcomes.push(match p.await {
            Ok(m) => format!("{}#{}", m.content, m.seq),
            Err(e) => e.code().to_owned(),
        });
    }
    assert_eq!(
        outcomes,
        [
            "m0#1",
            "forbidden",
            "m1#2",
            "not_found",
            "m2#3",
            "forbidden"
        ]
    );
    // The committer counts its store writes and the messages they stored (refusals are
    // not stored); each stored message was published once.
    let m = hub.metrics();
    assert_eq!(m.messages_committed, 3);
    assert!((1..=3).contains(&m.message_commits), "{m:?}");
    assert_eq!(m.by_type.get(EventType::MESSAGE_SEND.as_str()), Some(&3));
    // Nothing cached: a member who leaves is refused at the next send.
    hub.leave_room("bob", &room.id).await.expect("leave");
    assert_eq!(
        hub.send_message("bob", send(&room.id, "after leaving"))
            .await
            .expect_err("left")
            .code(),
        "forbidden"
    );
    assert_eq!(
        hub.send_message("alice", send(&room.id, "still here"))
            .await
            .expect("member")
            .seq,
        4
    );
}

/// A join (or a member's `join` of a room it is in) reads the membership; the Hub caches
/// it as a right to post, so the first sends after a join need no store lookup. Seen from
/// outside: a member removed behind the Hub's back (as another node would) right after
/// joining is still trusted with her first send; without a membership cache she is not.
#[tokio::test]
async fn a_join_vouches_for_the_members_first_sends() {
    use std::time::Duration;
    for ttl in [Duration::from_secs(2), Duration::ZERO] {
        let store = Arc::new(MemoryStore::new());
        let hub = Hub::builder(store.clone(), Arc::new(MemoryBroker::new()))
            .config(HubConfig {
                membership_cache_ttl: ttl,
                ..Default::default()
            })
            .build();
        let (hub, _a, b, c, room) = setup_on(hub).await;
        // carol joins the public room; bob, a member already, joins it from his session.
        hub.resume_room(c.id(), &room.id, None, true, |_, _| None)
            .await
            .expect("carol joins");
        hub.resume_room(b.id(), &room.id, None, true, |_, _| None)
            .await
            .expect("bob's join");
        for who in ["carol", "bob"] {
            assert!(store.remove_member(&room.id, who).await.expect("remove"));
            let sent = hub.send_message(who, send(&room.id, "first")).await;
            if ttl.is_zero() {
                assert_eq!(sent.expect_err("checked").code(), "forbidden", "{who}");
            } else {
                sent.unwrap_or_else(|e| panic!("{who}: vouched for by the join: {e}"));
            }
        }
    }
}

#[tokio::test]
async fn memberships_in_use_are_renewed_in_the_background_within_their_ttl() {
    // Memberships are cached for 1.5 s. One in use past half of that is checked again in
    // the background: a sender who keeps posting never waits for the store, and one
    // removed behind this node's back (as another node would) is refused as soon as the
    // renewal sees it, never later than 1.5 s after the store last vouched for it.
    use std::time::Duration;
    let store = Arc::new(MemoryStore::new());
    let hub = Hub::builder(store.clone(), Arc::new(MemoryBroker::new()))
        .config(HubConfig {
            membership_cache_ttl: Duration::from_millis(1500),
            ..Default::default()
        })
        .build();
    let (hub, _a, _b, _c, room) = setup_on(hub).await;
    let post = |who: &'static str, text: &'static str| {
        let (hub, room) = (hub.clone(), room.id.clone());
        async move {
            hub.send_message(who, send(&room, text))
                .await
                .map_err(|e| e.code().to_owned())
        }
    };
    post("bob", "b1")
        .await
        .expect("checked with the store, cached");
    post("alice", "a1")
        .await
        .expect("checked with the store, cached");
    let t0 = tokio::time::Instant::now();
    let pause = || tokio::time::sleep(Duration::from_millis(50));
    // 0.9 s: past half the TTL. Bob's send is trusted from the cache and renews him.
    tokio::time::sleep_until(t0 + Duration::from_millis(900)).await;
    post("bob", "b2").await.expect("cached");
    pause().await;
    // Alice is removed from the store behind the hub's back; her next send is still
    // trusted (cached 0.95 s ago), and its renewal finds her gone.
    assert!(
        store
            .remove_member(&room.id, "alice")
            .await
            .expect("remove")
    );
    post("alice", "a2").await.expect("cached, renewal started");
    pause().await;
    assert_eq!(
        post("alice", "a3").await.expect_err("renewal forgot her"),
        "forbidden",
        "refused at once, not only when her entry would have expired (1.5 s)"
    );
    // Bob is removed the same way after his renewal. At 1.8 s his first check is older
    // than the TTL, but the renewal at 0.9 s vouched for him: still trusted, and renewed
    // again, which finds him gone.
    assert!(store.remove_member(&room.id, "bob").await.expect("remove"));
    tokio::time::sleep_until(t0 + Duration::from_millis(1800)).await;
    post("bob", "b3")
        .await
        .expect("renewed at 0.9 s, so trusted until 2.4 s");
    pause().await;
    assert_eq!(post("bob", "b4").await.expect_err("gone"), "forbidden");
}

/// A Hub on the memory backends with this group-commit linger, `after` sends to start it.
fn lingering_hub(linger_ms: u64, after: usize) -> Hub {
    Hub::builder(Arc::new(MemoryStore::new()), Arc::new(MemoryBroker::new()))
        .config(HubConfig {
            commit: CommitConfig {
                linger: std::time::Duration::from_millis(linger_ms),
                linger_after: after,
                ..Default::default()
            },
            ..Default::default()
        })
        .build()
}

/// One send, then three more 10 ms later (virtual time: the test's clock is paused and
/// jumps to the next timer when every task waits): the seqs they got, how many commits
/// stored them, and how long (virtual) the first send took.
async fn send_one_then_three(hub: Hub) -> (Vec<u64>, u64, std::time::Duration) {
    let (hub, _a, _b, _c, room) = setup_on(hub).await;
    let before = hub.metrics().message_commits;
    let started = tokio::time::Instant::now();
    let first = hub
        .submit_message("alice", send(&room.id, "first"))
        .await
        .expect("queued");
    let first = tokio::spawn(async move {
        let m = first.await.expect("stored");
        (m.seq, started.elapsed())
    });
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    let mut rest = Vec::new();
    for text in ["second", "third", "fourth"] {
        rest.push(
            hub.submit_message("bob", send(&room.id, text))
                .await
                .expect("queued"),
        );
    }
    let (first_seq, first_took) = first.await.expect("task");
    let mut seqs = vec![first_seq];
    for p in rest {
        seqs.push(p.await.expect("stored").seq);
    }
    (seqs, hub.metrics().message_commits - before, first_took)
}

#[tokio::test(start_paused = true)]
async fn a_commit_linger_gathers_the_sends_that_arrive_within_it() {
    let (seqs, commits, first_took) = send_one_then_three(lingering_hub(50, 1)).await;
    assert_eq!(seqs, [1, 2, 3, 4], "stored in submission order");
    assert_eq!(commits, 1, "the first send waited for the other three");
    assert_eq!(
        first_took,
        std::time::Duration::from_millis(50),
        "the linger ran its whole time: no more sends came to fill the batch"
    );
}

#[tokio::test(start_paused = true)]
async fn without_a_linger_or_below_its_threshold_a_send_commits_at_once() {
    // The default: no linger; the first send is committed before the others arrive.
    let (seqs, commits, first_took) = send_one_then_three(lingering_hub(0, 4)).await;
    assert_eq!(seqs, [1, 2, 3, 4]);
    assert_eq!(commits, 2);
    assert_eq!(first_took, std::time::Duration::ZERO);
    // A linger, but one send waiting is under `CommitConfig::linger_after` (4): no wait either.
    let (seqs, commits, first_took) = send_one_then_three(lingering_hub(50, 4)).await;
    assert_eq!(seqs, [1, 2, 3, 4]);
    assert_eq!(commits, 2);
    assert_eq!(first_took, std::time::Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn a_linger_ends_early_once_the_batch_is_full() {
    // Batches of at most 2: the first send lingers, the second fills the batch and both
    // commit at once, 10 ms in, not after the 50 ms linger.
    let hub = Hub::builder(Arc::new(MemoryStore::new()), Arc::new(MemoryBroker::new()))
        .config(HubConfig {
            commit: CommitConfig {
                linger: std::time::Duration::from_millis(50),
                linger_after: 1,
                batch: 2,
                ..Default::default()
            },
            ..Default::default()
        })
        .build();
    let (seqs, commits, first_took) = send_one_then_three(hub).await;
    assert_eq!(seqs, [1, 2, 3, 4]);
    assert_eq!(commits, 2, "[first, second], then [third, fourth]");
    assert_eq!(first_took, std::time::Duration::from_millis(10));
}

/// A Hub on the memory backends that waits up to `passes` event-loop passes per commit.
fn gathering_hub(passes: usize) -> Hub {
    Hub::builder(Arc::new(MemoryStore::new()), Arc::new(MemoryBroker::new()))
        .config(HubConfig {
            commit: CommitConfig {
                gather_passes: passes,
                ..Default::default()
            },
            ..Default::default()
        })
        .build()
}

/// One send; then `late` more, each from a task that submits once its socket (one end of
/// a Unix socket pair) is readable — as a connection's reader does. The bytes are written
/// before the first send, but the runtime learns of them only when it next polls its
/// sockets: between the first send's arrival and its commit, unless the committer waits
/// for that pass. Returns the seqs and how many commits stored them.
async fn send_one_then_late(hub: Hub, late: usize) -> (Vec<u64>, u64) {
    let (hub, _a, _b, _c, room) = setup_on(hub).await;
    late_round(&hub, &room.id, late, std::time::Duration::ZERO).await
}

/// [`send_one_then_late`] on a set-up Hub; each late task first takes `work` of (virtual,
/// paused) time, as a busy connection's task would of real time.
async fn late_round(
    hub: &Hub,
    room: &str,
    late: usize,
    work: std::time::Duration,
) -> (Vec<u64>, u64) {
    use tokio::io::AsyncWriteExt;
    let before = hub.metrics().message_commits;
    let mut tasks = Vec::new();
    let mut writers = Vec::new();
    for i in 0..late {
        let (w, r) = tokio::net::UnixStream::pair().expect("socket pair");
        writers.push(w);
        let (hub, room) = (hub.clone(), room.to_owned());
        tasks.push(tokio::spawn(async move {
            r.readable().await.expect("readable");
            if !work.is_zero() {
                tokio::time::advance(work).await;
            }
            hub.submit_message("bob", send(&room, &format!("late {i}")))
                .await
                .expect("queued")
                .await
                .expect("stored")
                .seq
        }));
    }
    // Let every task start waiting on its socket.
    for _ in 0..4 {
        tokio::task::yield_now().await;
    }
    for w in &mut writers {
        w.write_all(b"x").await.expect("write");
    }
    let first = hub
        .submit_message("alice", send(room, "first"))
        .await
        .expect("queued");
    let mut seqs = vec![first.await.expect("stored").seq];
    for t in tasks {
        seqs.push(t.await.expect("task"));
    }
    seqs.sort_unstable();
    (seqs, hub.metrics().message_commits - before)
}

#[tokio::test]
async fn gather_passes_put_the_sends_of_the_next_socket_poll_in_the_same_commit() {
    // A current-thread runtime, like the benchmark's server: the first send wakes the
    // committer, whose pass lets the runtime poll the sockets and run the five readers.
    let (seqs, commits) = send_one_then_late(gathering_hub(8), 5).await;
    assert_eq!(commits, 1, "one commit for all six");
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    // Off: the first send is committed alone, before the runtime sees the sockets.
    let (seqs, commits) = send_one_then_late(gathering_hub(0), 5).await;
    assert_eq!(commits, 2, "the first alone, then the five");
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
}

#[tokio::test(start_paused = true)]
async fn a_slow_pass_turns_gathering_off_for_the_next_64_commits() {
    let (hub, _a, _b, _c, room) = setup_on(gathering_hub(8)).await;
    // The first commit's pass runs five tasks of 2 ms each: 10 ms, over the 1 ms a pass
    // may take (each task also yields once more, so their sends make the second commit).
    let (seqs, commits) = late_round(&hub, &room.id, 5, std::time::Duration::from_millis(2)).await;
    assert_eq!((seqs, commits), (vec![1, 2, 3, 4, 5, 6], 2));
    // The next 64 commits (the second above, then 63 here) do not wait for a pass: each
    // round's first send goes alone …
    for round in 0..32 {
        let (_, commits) = late_round(&hub, &room.id, 2, std::time::Duration::ZERO).await;
        assert_eq!(commits, 2, "round {round}");
    }
    // … and then gathering is back.
    let (_, commits) = late_round(&hub, &room.id, 5, std::time::Duration::ZERO).await;
    assert_eq!(commits, 1);
}

#[tokio::test(start_paused = true)]
async fn a_lone_send_does_not_wait_on_the_clock_for_gather_passes() {
    // No other task submits: the pass finds nothing new and the send commits at once —
    // no virtual time passes (a timer would move the paused clock).
    let (hub, _a, _b, _c, room) = setup_on(gathering_hub(8)).await;
    let t0 = tokio::time::Instant::now();
    let m = hub
        .send_message("alice", send(&room.id, "alone"))
        .await
        .expect("stored");
    assert_eq!(m.seq, 1);
    assert_eq!(t0.elapsed(), std::time::Duration::ZERO);
    assert_eq!(hub.metrics().message_commits, 1);
}
