//! Property tests for the invariants: presence is never offline while a connection is
//! open; typing always ends; reactions are idempotent; read pointers never move backwards;
//! a non-member can never read or post; names parse and print consistently.

use chrono::TimeDelta;
use proptest::prelude::*;
use realtime_core::*;
use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

#[derive(Debug, Clone)]
enum POp {
    Connect(u64),
    Disconnect(u64),
    Advance(u64),
    Tick,
    Away,
}

fn pop() -> impl Strategy<Value = POp> {
    prop_oneof![
        (0u64..4).prop_map(POp::Connect),
        (0u64..4).prop_map(POp::Disconnect),
        (0u64..8000).prop_map(POp::Advance),
        Just(POp::Tick),
        Just(POp::Away),
    ]
}

proptest! {
    #[test]
    fn presence_is_never_offline_while_connected(ops in proptest::collection::vec(pop(), 1..80)) {
        let clock = ManualClock::at_epoch();
        let mut p = PresenceTracker::new(PresenceConfig::default());
        let mut open: HashSet<u64> = HashSet::new();
        let mut online_events = 0i64;
        let mut offline_events = 0i64;
        for op in ops {
            let evs = match op {
                POp::Connect(c) => { open.insert(c); p.connect("u", c, None, clock.now()) }
                POp::Disconnect(c) => { open.remove(&c); p.disconnect("u", c, clock.now()) }
                POp::Advance(ms) => { clock.advance(Duration::from_millis(ms)); Vec::new() }
                POp::Tick => p.tick(clock.now()),
                POp::Away => p.set_status("u", UserStatus::Away, clock.now()).unwrap_or_default(),
            };
            for e in &evs {
                if e.event_type == EventType::USER_ONLINE { online_events += 1; }
                if e.event_type == EventType::USER_OFFLINE { offline_events += 1; }
            }
            prop_assert_eq!(p.connection_count("u"), open.len());
            if !open.is_empty() {
                prop_assert_ne!(p.status("u"), UserStatus::Offline);
            }
            // online and offline alternate, starting with online
            prop_assert!(online_events - offline_events == 0 || online_events - offline_events == 1);
        }
        // Everyone gone long enough: offline.
        for c in 0..4 { p.disconnect("u", c, clock.now()); }
        clock.advance(Duration::from_secs(10));
        p.tick(clock.now());
        prop_assert_eq!(p.status("u"), UserStatus::Offline);
    }

    #[test]
    fn typing_always_ends(ops in proptest::collection::vec((0u8..4, 0u8..3, 0u8..3, 0u64..7000), 1..80)) {
        let clock = ManualClock::at_epoch();
        let mut t = TypingTracker::new(TypingConfig::default());
        let mut starts = 0usize;
        let mut stops = 0usize;
        let rooms = ["r0", "r1", "r2"];
        let users = ["a", "b", "c"];
        for (op, r, u, ms) in ops {
            let (r, u) = (rooms[r as usize], users[u as usize]);
            let evs = match op {
                0 => t.start(r, u, clock.now()),
                1 => t.stop(r, u, clock.now()),
                2 => t.message_sent(r, u, clock.now()),
                _ => { clock.advance(Duration::from_millis(ms)); t.tick(clock.now()) }
            };
            starts += evs.iter().filter(|e| e.event_type == EventType::USER_TYPING_START).count();
            stops += evs.iter().filter(|e| e.event_type == EventType::USER_TYPING_STOP).count();
            prop_assert!(stops <= starts);
        }
        clock.advance(Duration::from_secs(6));
        stops += t.tick(clock.now()).len();
        prop_assert_eq!(starts, stops, "every start is matched by exactly one stop");
        for r in rooms { prop_assert!(t.typing_in(r).is_empty()); }
        prop_assert!(t.next_deadline().is_none());
    }

    #[test]
    fn reactions_are_idempotent(ops in proptest::collection::vec((any::<bool>(), 0u8..3, 0u8..3), 1..100)) {
        let mut set = ReactionSet::default();
        let mut model: BTreeSet<(u8, u8)> = BTreeSet::new();
        for (add, u, e) in ops {
            let (user, emoji) = (format!("u{u}"), ["👍", "🎉", "x"][e as usize]);
            let changed = if add { set.add(&user, emoji) } else { set.remove(&user, emoji) };
            let model_changed = if add { model.insert((u, e)) } else { model.remove(&(u, e)) };
            prop_assert_eq!(changed, model_changed);
            for (i, em) in ["👍", "🎉", "x"].iter().enumerate() {
                prop_assert_eq!(set.count(em), model.iter().filter(|(_, e)| *e as usize == i).count());
            }
        }
    }

    #[test]
    fn read_pointers_never_move_backwards(seqs in proptest::collection::vec(0u64..1000, 1..50)) {
        let t0 = ManualClock::at_epoch().now();
        let mut p = ReadPointer { room_id: "r".into(), user_id: "u".into(), seq: 0, updated_at: t0 };
        let mut max = 0;
        for (i, s) in seqs.into_iter().enumerate() {
            let moved = p.advance(s, t0 + TimeDelta::seconds(i as i64));
            prop_assert_eq!(moved, s > max);
            max = max.max(s);
            prop_assert_eq!(p.seq, max);
        }
    }

    #[test]
    fn valid_event_names_round_trip(level in "[a-z][a-z0-9_]{0,10}", action in proptest::collection::vec("[a-z0-9_]{1,10}", 1..4)) {
        let name = format!("event.{level}.{}", action.join("."));
        let t = EventType::parse(&name).expect("valid by construction");
        prop_assert_eq!(t.as_str(), name.as_str());
        prop_assert_eq!(t.level(), level.as_str());
        prop_assert_eq!(t.action(), action.join("."));
    }

    #[test]
    fn arbitrary_names_never_panic(s in ".{0,200}") {
        if let Ok(t) = EventType::parse(&s) { prop_assert_eq!(t.to_string(), s.clone()); }
        if let Ok(c) = Channel::parse(&s) { prop_assert_eq!(c.to_string(), s.clone()); }
        let _ = Event::from_json_bytes(s.as_bytes());
    }
}

#[derive(Debug, Clone)]
enum HOp {
    Join(usize),
    Leave(usize),
    Add(usize, usize),
    Remove(usize, usize),
}

fn hop() -> impl Strategy<Value = HOp> {
    prop_oneof![
        (0usize..4).prop_map(HOp::Join),
        (0usize..4).prop_map(HOp::Leave),
        (0usize..4, 0usize..4).prop_map(|(a, b)| HOp::Add(a, b)),
        (0usize..4, 0usize..4).prop_map(|(a, b)| HOp::Remove(a, b)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn a_non_member_can_never_read_or_post(private in any::<bool>(), ops in proptest::collection::vec(hop(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async move {
            let users = ["owner", "u1", "u2", "u3"];
            let hub = Hub::in_memory();
            let mut sessions = Vec::new();
            for u in users {
                let id = Identity { user_id: u.into(), username: None, claims: serde_json::Value::Null };
                sessions.push(hub.connect(ConnectOptions::chat(id.clone())).await.expect("connect"));
            }
            let room = hub.create_room("owner", CreateRoom { name: "r".into(), is_private: private, ..Default::default() }).await.expect("room");
            for op in ops {
                let _ = match op {
                    HOp::Join(u) => hub.join_room(users[u], &room.id).await.map(drop),
                    HOp::Leave(u) => hub.leave_room(users[u], &room.id).await,
                    HOp::Add(a, b) => hub.add_member(users[a], &room.id, users[b], Role::Member).await.map(drop),
                    HOp::Remove(a, b) => hub.remove_member(users[a], &room.id, users[b]).await,
                };
                for u in users {
                    let member = hub.store().get_member(&room.id, u).await.expect("store").is_some();
                    let send = hub.send_message(u, SendMessage { room_id: room.id.clone(), content: "x".into(), kind: MessageKind::Text, client_id: None }).await;
                    let read = hub.history(u, &room.id, None, 5).await;
                    assert_eq!(send.is_ok(), member, "{u} post allowed iff member");
                    assert_eq!(read.is_ok(), member, "{u} read allowed iff member");
                    if !member {
                        assert_eq!(send.expect_err("no").code(), "forbidden");
                    }
                }
            }
            // A session never holds a room channel whose room it is not a member of: a
            // message sent now reaches exactly the members' sessions.
            for s in sessions.iter_mut() { while s.try_recv().is_some() {} }
            hub.send_message("owner", SendMessage { room_id: room.id.clone(), content: "final".into(), kind: MessageKind::Text, client_id: None }).await.expect("owner posts");
            for (i, s) in sessions.iter_mut().enumerate() {
                let mut got = false;
                while let Some(Outbound::Frame(b)) = s.try_recv() {
                    let e = Event::from_json_bytes(&b).expect("event");
                    got |= e.event_type == EventType::MESSAGE_SEND && e.data["content"] == "final";
                }
                let member = hub.store().get_member(&room.id, users[i]).await.expect("store").is_some();
                assert_eq!(got, member, "{} receives iff member", users[i]);
            }
        });
    }
}
