//! Hub sessions: presence, typing timers, slow consumers, encode-once fan-out, many nodes,
//! shutdown.

use bytes::Bytes;
mod common;

use common::*;
use realtime_core::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

fn hub_with_clock(clock: &ManualClock, config: HubConfig) -> Hub {
    Hub::builder(Arc::new(MemoryStore::new()), Arc::new(MemoryBroker::new()))
        .clock(Arc::new(clock.clone()))
        .config(config)
        .build()
}

#[tokio::test]
async fn presence_across_two_connections_with_grace() {
    let clock = ManualClock::at_epoch();
    let hub = hub_with_clock(&clock, HubConfig::default());
    let mut watcher = hub
        .connect(ConnectOptions::chat(who("w")))
        .await
        .expect("watcher");
    drain(&mut watcher);
    let phone = hub
        .connect(ConnectOptions::chat(who("u")).device("phone"))
        .await
        .expect("phone");
    let laptop = hub
        .connect(ConnectOptions::chat(who("u")).device("laptop"))
        .await
        .expect("laptop");
    let evs = drain(&mut watcher);
    assert_eq!(
        count(&evs, &EventType::USER_ONLINE),
        1,
        "one online for two connections"
    );
    assert_eq!(evs[0].data["username"], "u-name");
    assert_eq!(hub.presence_of("u"), UserStatus::Online);
    hub.disconnect(phone.id()).await;
    hub.tick().await;
    assert_eq!(
        hub.presence_of("u"),
        UserStatus::Online,
        "still one connection"
    );
    hub.set_status("u", UserStatus::Away).await.expect("away");
    assert_eq!(
        count(&drain(&mut watcher), &EventType::USER_STATUS_CHANGE),
        1
    );
    assert_eq!(
        hub.store()
            .get_user("u")
            .await
            .expect("get")
            .expect("user")
            .status,
        UserStatus::Away
    );
    drop(laptop); // dropping the Session disconnects it
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(hub.session_count(), 1);
    hub.tick().await;
    assert!(
        drain(&mut watcher).is_empty(),
        "nothing during the grace period"
    );
    clock.advance(Duration::from_secs(6));
    hub.tick().await;
    let evs = drain(&mut watcher);
    assert_eq!(count(&evs, &EventType::USER_OFFLINE), 1);
    assert_eq!(hub.presence_of("u"), UserStatus::Offline);
    let stored = hub.store().get_user("u").await.expect("get").expect("user");
    assert_eq!(
        (stored.status, stored.last_seen.is_some()),
        (UserStatus::Offline, true)
    );
    assert_eq!(
        hub.set_status("u", UserStatus::Online)
            .await
            .expect_err("offline")
            .code(),
        "forbidden"
    );
}

#[tokio::test]
async fn typing_starts_throttles_and_stops_by_itself_or_on_send() {
    let clock = ManualClock::at_epoch();
    let hub = hub_with_clock(&clock, HubConfig::default());
    let _a = hub
        .connect(ConnectOptions::chat(who("a")))
        .await
        .expect("a");
    let mut b = hub
        .connect(ConnectOptions::chat(who("b")))
        .await
        .expect("b");
    let room = hub
        .create_room(
            "a",
            CreateRoom {
                name: "r".into(),
                members: vec!["b".into()],
                ..Default::default()
            },
        )
        .await
        .expect("room");
    drain(&mut b);
    hub.typing("a", &room.id, true).await.expect("start");
    hub.typing("a", &room.id, true).await.expect("repeat");
    let evs = drain(&mut b);
    assert_eq!(
        count(&evs, &EventType::USER_TYPING_START),
        1,
        "repeat throttled"
    );
    assert_eq!(evs[0].data["username"], "a-name");
    assert_eq!(hub.typing_in(&room.id), vec!["a".to_string()]);
    clock.advance(Duration::from_secs(6));
    hub.tick().await;
    let evs = drain(&mut b);
    assert_eq!(
        count(&evs, &EventType::USER_TYPING_STOP),
        1,
        "auto-stop after the TTL"
    );
    assert_eq!(evs[0].data["reason"], "timeout");
    hub.typing("a", &room.id, true).await.expect("start");
    hub.send_message("a", send(&room.id, "done"))
        .await
        .expect("send");
    let evs = drain(&mut b);
    let stop = evs
        .iter()
        .find(|e| e.event_type == EventType::USER_TYPING_STOP)
        .expect("stop on send");
    assert_eq!(stop.data["reason"], "message");
    assert!(hub.typing_in(&room.id).is_empty());
    assert_eq!(
        hub.typing("c", &room.id, true)
            .await
            .expect_err("outsider")
            .code(),
        "forbidden"
    );
}

#[tokio::test]
async fn an_event_too_large_for_the_queues_is_refused_and_closes_nobody() {
    let broker = Arc::new(MemoryBroker::new());
    let hub = Hub::builder(Arc::new(MemoryStore::new()), broker.clone())
        .config(HubConfig {
            session_queue_bytes: 64 * 1024,
            ..Default::default()
        })
        .build();
    assert_eq!(
        hub.max_event_bytes(),
        64 * 1024,
        "capped by the queue bound"
    );
    let mut sessions = Vec::new();
    for i in 0..5 {
        sessions.push(
            hub.connect(ConnectOptions::chat(who(&format!("u{i}"))))
                .await
                .expect("session"),
        );
    }
    for s in &mut sessions {
        drain(s);
    }
    let big = Event::new(
        EventType::USER_PROFILE_UPDATE,
        serde_json::json!({ "avatar": "x".repeat(100 * 1024) }),
    );
    let err = hub
        .publish(&[Channel::Presence], big.clone())
        .await
        .expect_err("too large");
    assert!(
        matches!(err, Error::EventTooLarge { max: 65536, .. }),
        "{err:?}"
    );
    assert_eq!((err.code(), err.http_status()), ("event_too_large", 413));
    // The same event reaching this node from a broker peer (which did not check it) is
    // not queued, counted, and closes nobody.
    broker
        .publish(&Channel::Presence, Arc::new(big))
        .await
        .expect("peer publish");
    assert_eq!(hub.metrics().oversized_frames, 5);
    let small = Event::new(
        EventType::USER_PROFILE_UPDATE,
        serde_json::json!({ "ok": 1 }),
    );
    hub.publish(&[Channel::Presence], small)
        .await
        .expect("small");
    for s in &mut sessions {
        let evs = drain(s);
        assert_eq!(evs.len(), 1, "only the small event");
        assert_eq!(evs[0].data["ok"], 1);
    }
    assert_eq!(hub.metrics().slow_consumers, 0);
}

#[tokio::test]
async fn a_slow_consumer_is_closed_while_others_keep_receiving() {
    let hub = Hub::builder(Arc::new(MemoryStore::new()), Arc::new(MemoryBroker::new()))
        .config(HubConfig {
            session_queue_frames: 8,
            ..Default::default()
        })
        .build();
    let mut fast = hub
        .connect(ConnectOptions::chat(who("fast")))
        .await
        .expect("fast");
    let mut slow = hub
        .connect(ConnectOptions::chat(who("slow")))
        .await
        .expect("slow");
    let room = hub
        .create_room(
            "fast",
            CreateRoom {
                name: "r".into(),
                members: vec!["slow".into()],
                ..Default::default()
            },
        )
        .await
        .expect("room");
    drain(&mut fast);
    let mut received = 0;
    for i in 0..50 {
        hub.send_message("fast", send(&room.id, &format!("m{i}")))
            .await
            .expect("send");
        received += count(&drain(&mut fast), &EventType::MESSAGE_SEND);
    }
    assert_eq!(received, 50, "the reader got everything");
    assert_eq!(
        slow.recv().await,
        Some(Outbound::Close(CloseReason::SlowConsumer)),
        "close comes first"
    );
    assert_eq!(slow.recv().await, None);
    assert_eq!(hub.metrics().slow_consumers, 1);
    assert!(CloseReason::SlowConsumer.reconnect());
}

#[tokio::test]
async fn the_byte_bound_also_counts() {
    let hub = Hub::builder(Arc::new(MemoryStore::new()), Arc::new(MemoryBroker::new()))
        .config(HubConfig {
            session_queue_bytes: 4096,
            ..Default::default()
        })
        .build();
    let _a = hub
        .connect(ConnectOptions::chat(who("a")))
        .await
        .expect("a");
    let mut b = hub
        .connect(ConnectOptions::chat(who("b")))
        .await
        .expect("b");
    let room = hub
        .create_room(
            "a",
            CreateRoom {
                name: "r".into(),
                members: vec!["b".into()],
                ..Default::default()
            },
        )
        .await
        .expect("room");
    let big = "x".repeat(1500);
    for _ in 0..4 {
        hub.send_message("a", send(&room.id, &big))
            .await
            .expect("send");
    }
    assert!(matches!(
        b.try_recv(),
        Some(Outbound::Close(CloseReason::SlowConsumer))
    ));
}

struct Counting(AtomicUsize);
impl Encoder for Counting {
    fn encode(&self, _c: &Channel, e: &Event) -> Option<Bytes> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Some(Bytes::from(format!("custom:{}", e.event_type)))
    }
}

#[tokio::test]
async fn fan_out_encodes_once_per_dialect() {
    let hub = Hub::in_memory();
    let enc = Arc::new(Counting(AtomicUsize::new(0)));
    let custom = hub.register_dialect(enc.clone());
    let mut sessions = Vec::new();
    for i in 0..5 {
        sessions.push(
            hub.connect(ConnectOptions::chat(who(&format!("u{i}"))).dialect(custom))
                .await
                .expect("connect"),
        );
    }
    let mut json = hub
        .connect(ConnectOptions::chat(who("j")))
        .await
        .expect("json");
    while sessions[0].try_recv().is_some() {}
    let before = enc.0.load(Ordering::SeqCst);
    hub.broadcast_system(SystemEvent::Broadcast, serde_json::json!({}))
        .await
        .expect("sys");
    assert_eq!(
        enc.0.load(Ordering::SeqCst) - before,
        1,
        "one encode for five sessions"
    );
    let mut frames: Vec<Bytes> = Vec::new();
    for s in &mut sessions {
        while let Some(Outbound::Frame(b)) = s.try_recv() {
            frames.push(b);
        }
    }
    let last: Vec<&Bytes> = frames
        .iter()
        .filter(|b| b.ends_with(b"event.system.broadcast"))
        .collect();
    assert_eq!(last.len(), 5);
    assert!(
        last.windows(2).all(|w| w[0].as_ptr() == w[1].as_ptr()),
        "the same bytes are shared"
    );
    assert_eq!(
        count(&drain(&mut json), &EventType::SYSTEM_BROADCAST),
        1,
        "JSON dialect too"
    );
    let bad = DialectId::JSON;
    assert!(
        hub.connect(ConnectOptions::chat(who("x")).dialect(bad))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn two_nodes_share_a_store_and_a_bus() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let bus = MemoryBus::new();
    let node_a = Hub::new(store.clone(), Arc::new(bus.node()));
    let node_b = Hub::new(store.clone(), Arc::new(bus.node()));
    let mut alice = node_a
        .connect(ConnectOptions::chat(who("alice")))
        .await
        .expect("alice on A");
    let mut bob = node_b
        .connect(ConnectOptions::chat(who("bob")))
        .await
        .expect("bob on B");
    let room = node_a
        .create_room(
            "alice",
            CreateRoom {
                name: "r".into(),
                ..Default::default()
            },
        )
        .await
        .expect("room");
    drain(&mut bob);
    // Bob is added on node A; his session lives on node B.
    node_a
        .add_member("alice", &room.id, "bob", Role::Member)
        .await
        .expect("add");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        count(&drain(&mut bob), &EventType::ROOM_MEMBER_ADD),
        1,
        "told once, via user channel"
    );
    node_a
        .send_message("alice", send(&room.id, "cross-node"))
        .await
        .expect("send");
    let evs = drain(&mut bob);
    assert_eq!(
        count(&evs, &EventType::MESSAGE_SEND),
        1,
        "node B subscribed bob to the room"
    );
    drain(&mut alice);
    node_b
        .typing("bob", &room.id, true)
        .await
        .expect("typing on B");
    assert_eq!(count(&drain(&mut alice), &EventType::USER_TYPING_START), 1);
    node_a
        .remove_member("alice", &room.id, "bob")
        .await
        .expect("remove");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(count(&drain(&mut bob), &EventType::ROOM_MEMBER_REMOVE), 1);
    node_a
        .send_message("alice", send(&room.id, "private now"))
        .await
        .expect("send");
    assert_eq!(
        count(&drain(&mut bob), &EventType::MESSAGE_SEND),
        0,
        "node B unsubscribed bob"
    );
}

#[tokio::test]
async fn shutdown_announces_then_closes() {
    let hub = Hub::in_memory();
    let mut s = hub
        .connect(ConnectOptions::chat(who("u")))
        .await
        .expect("connect");
    drain(&mut s);
    hub.shutdown("deploy", Duration::from_millis(50)).await;
    let mut saw_event = false;
    loop {
        match s.recv().await {
            Some(Outbound::Frame(b)) => {
                let e = Event::from_json_bytes(&b).expect("event");
                saw_event |= e.event_type == EventType::SYSTEM_SHUTDOWN;
            }
            Some(Outbound::Close(r)) => {
                assert_eq!(r, CloseReason::Shutdown);
                break;
            }
            None => panic!("closed without a reason"),
        }
    }
    assert!(saw_event, "the shutdown event comes before the close");
    assert_eq!(hub.session_count(), 0);
}

#[tokio::test]
async fn presence_is_opt_in_when_auto_subscribe_is_off() {
    let clock = ManualClock::at_epoch();
    let config = HubConfig {
        auto_subscribe_presence: false,
        ..HubConfig::default()
    };
    let hub = hub_with_clock(&clock, config);
    let mut quiet = hub
        .connect(ConnectOptions::chat(who("q")))
        .await
        .expect("quiet");
    let mut watcher = hub
        .connect(ConnectOptions::chat(who("w")))
        .await
        .expect("watcher");
    hub.subscribe(watcher.id(), &Channel::Presence, &Credentials::NONE)
        .await
        .expect("presence is open to everyone");
    drain(&mut quiet);
    drain(&mut watcher);
    let _u = hub
        .connect(ConnectOptions::chat(who("u")))
        .await
        .expect("u");
    assert_eq!(count(&drain(&mut watcher), &EventType::USER_ONLINE), 1);
    assert!(
        drain(&mut quiet).is_empty(),
        "not subscribed to presence: no status frames"
    );
    assert_eq!(hub.presence_of("u"), UserStatus::Online, "still tracked");
}

/// A room with `n` members (owner `o`, then `m0`, `m1`, …), created on `hub`.
async fn room_of(hub: &Hub, n: usize) -> Room {
    let room = hub
        .create_room(
            "o",
            CreateRoom {
                name: "big".into(),
                ..Default::default()
            },
        )
        .await
        .expect("room");
    for i in 1..n {
        hub.join_room(&format!("m{i}"), &room.id)
            .await
            .expect("join");
    }
    room
}

#[tokio::test]
async fn large_rooms_tell_membership_changes_only_to_the_user_concerned() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let bus = MemoryBus::new();
    let config = HubConfig {
        large_room_members: 3,
        ..HubConfig::default()
    };
    let a = Hub::builder(store.clone(), Arc::new(bus.node()))
        .config(config.clone())
        .build();
    let b = Hub::builder(store.clone(), Arc::new(bus.node()))
        .config(config)
        .build();
    for u in ["o", "m1", "m2", "late"] {
        a.ensure_user(&who(u)).await.expect("user");
    }
    let mut owner = a.connect(ConnectOptions::chat(who("o"))).await.expect("o");
    let room = room_of(&a, 2).await; // o, m1: small
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        count(&drain(&mut owner), &EventType::ROOM_JOIN),
        1,
        "a small room announces joins"
    );
    a.join_room("m2", &room.id).await.expect("join m2"); // 2 members before: still small
    assert_eq!(count(&drain(&mut owner), &EventType::ROOM_JOIN), 1);
    // Three members now: the room is large. `late` has a session on node B.
    let mut late_b = b
        .connect(ConnectOptions::chat(who("late")))
        .await
        .expect("late on B");
    drain(&mut late_b);
    a.join_room("late", &room.id).await.expect("join late");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        count(&drain(&mut owner), &EventType::ROOM_JOIN),
        0,
        "no join announcement to the members of a large room"
    );
    assert_eq!(
        count(&drain(&mut late_b), &EventType::ROOM_JOIN),
        1,
        "the joiner's session on another node is told on user:{{id}}"
    );
    a.send_message("o", send(&room.id, "hello"))
        .await
        .expect("send");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        count(&drain(&mut late_b), &EventType::MESSAGE_SEND),
        1,
        "node B subscribed the joiner's session to the room"
    );
    drain(&mut owner);
    a.leave_room("late", &room.id).await.expect("leave");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        count(&drain(&mut owner), &EventType::ROOM_LEAVE),
        0,
        "no leave announcement either"
    );
    assert_eq!(count(&drain(&mut late_b), &EventType::ROOM_LEAVE), 1);
    a.send_message("o", send(&room.id, "after"))
        .await
        .expect("send");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        count(&drain(&mut late_b), &EventType::MESSAGE_SEND),
        0,
        "node B unsubscribed the leaver"
    );
    assert_eq!(store.count_members(&room.id).await.expect("count"), 3);
}

#[tokio::test]
async fn a_member_removed_on_another_node_cannot_post_through_the_membership_cache() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let bus = MemoryBus::new();
    let a = Hub::new(store.clone(), Arc::new(bus.node()));
    let b = Hub::new(store.clone(), Arc::new(bus.node()));
    let _alice = a
        .connect(ConnectOptions::chat(who("alice")))
        .await
        .expect("alice on A");
    let _bob = b
        .connect(ConnectOptions::chat(who("bob")))
        .await
        .expect("bob on B");
    let room = a
        .create_room(
            "alice",
            CreateRoom {
                name: "r".into(),
                members: vec!["bob".into()],
                ..Default::default()
            },
        )
        .await
        .expect("room");
    tokio::time::sleep(Duration::from_millis(20)).await;
    b.send_message("bob", send(&room.id, "cached now"))
        .await
        .expect("bob may post (and node B remembers)");
    a.remove_member("alice", &room.id, "bob")
        .await
        .expect("remove on A");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        b.send_message("bob", send(&room.id, "after removal"))
            .await
            .expect_err("node B saw the removal")
            .code(),
        "forbidden"
    );
    // A removal on the same node ends it too, even with nobody subscribed here.
    let c = Hub::new(store.clone(), Arc::new(bus.node()));
    a.add_member("alice", &room.id, "bob", Role::Member)
        .await
        .expect("add again");
    c.send_message("bob", send(&room.id, "via REST on C"))
        .await
        .expect("posted");
    c.remove_member("alice", &room.id, "bob")
        .await
        .expect("remove on C");
    assert_eq!(
        c.send_message("bob", send(&room.id, "again"))
            .await
            .expect_err("removed")
            .code(),
        "forbidden"
    );
}
