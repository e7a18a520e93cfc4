//! Hub end to end over the memory backends: messages, rooms, invites, reactions, reads,
//! recovery, rights and bad input.

mod common;

use common::*;
use realtime_core::*;
use std::sync::Arc;

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
