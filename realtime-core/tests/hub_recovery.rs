//! Recovery under a steady writer: `Hub::resume_room` replays what a session missed
//! before any live message of the room, reads the missed messages consistently, and a
//! session cut at any point never leaves its highest seen `seq` past a message it did not
//! get.

mod common;

use bytes::Bytes;
use common::*;
use realtime_core::*;
use std::sync::Arc;
use std::time::Duration;

const ACK: &[u8] = b"ACK";

/// What a session saw: message seqs of `room` (in arrival order) and where the ack came.
struct Seen {
    seqs: Vec<u64>,
    ack_after: Option<usize>,
}

fn take(session: &mut Session, room: &str, seen: &mut Seen) {
    while let Some(m) = session.try_recv() {
        let Outbound::Frame(b) = m else {
            panic!("closed: {m:?}")
        };
        if b.as_ref() == ACK {
            assert!(seen.ack_after.is_none(), "one ack");
            seen.ack_after = Some(seen.seqs.len());
            continue;
        }
        let ev = Event::from_json_bytes(&b).expect("event");
        if ev.event_type == EventType::MESSAGE_SEND && ev.room_id.as_deref() == Some(room) {
            seen.seqs.push(ev.data["seq"].as_u64().expect("seq"));
        }
    }
}

/// A Hub with users alice, bob and carol, and alice's room with bob in it.
async fn alice_and_bob() -> (Hub, Room) {
    let hub = Hub::in_memory();
    for u in ["alice", "bob", "carol"] {
        hub.ensure_user(&who(u)).await.expect("user");
    }
    let mut req = CreateRoom::named("r");
    req.members = vec!["bob".into()];
    let room = hub.create_room("alice", req).await.expect("room");
    (hub, room)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_cut_anywhere_never_skips_a_seq_and_recovery_is_never_falsely_refused() {
    let (hub, room) = alice_and_bob().await;
    for i in 0..20 {
        hub.send_message("alice", send(&room.id, &format!("m{i}")))
            .await
            .expect("send");
    }
    let total = 400u64;
    let writer = {
        let hub = hub.clone();
        let room = room.id.clone();
        tokio::spawn(async move {
            for i in 20..total {
                hub.send_message("alice", send(&room, &format!("m{i}")))
                    .await
                    .expect("send");
                if i % 4 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    // The client's state: the highest seq seen, and every seq received.
    let mut high = 5u64;
    let mut received: Vec<u64> = (1..=5).collect();
    let mut rounds = 0;
    while high < total {
        rounds += 1;
        assert!(rounds < 10_000, "no progress at seq {high}");
        let mut s = hub
            .connect(ConnectOptions::chat(who("bob")).recovering())
            .await
            .expect("session");
        let since = Since {
            seq: high,
            epoch: room.epoch.clone(),
        };
        let (_, rec) = hub
            .resume_room(s.id(), &room.id, Some(&since), false, |_, _| {
                Some(Bytes::from_static(ACK))
            })
            .await
            .expect("resume");
        assert!(rec.recovered, "round {rounds}: recovery refused: {rec:?}");
        // Cut after a varying wait: sometimes before the replay is read, sometimes after
        // live messages arrived.
        if rounds % 3 != 0 {
            tokio::time::sleep(Duration::from_micros(200 * (rounds % 7))).await;
        }
        let mut seen = Seen {
            seqs: Vec::new(),
            ack_after: None,
        };
        take(&mut s, &room.id, &mut seen);
        // Replay, ack, live: one unbroken run from since + 1, the ack right after the
        // replay's last seq.
        for (i, seq) in seen.seqs.iter().enumerate() {
            assert_eq!(
                *seq,
                since.seq + 1 + i as u64,
                "round {rounds}: {seen:?}",
                seen = seen.seqs
            );
        }
        let ack_at = seen.ack_after.expect("the ack is queued with the replay");
        assert_eq!(
            ack_at as u64,
            rec.latest_seq - since.seq,
            "ack after the replay"
        );
        assert_eq!(rec.messages.len(), ack_at);
        received.extend(&seen.seqs);
        high = high.max(seen.seqs.last().copied().unwrap_or(high));
        drop(s);
        if writer.is_finished() && high == total {
            break;
        }
    }
    writer.await.expect("writer");
    received.sort_unstable();
    let want: Vec<u64> = (1..=total).collect();
    assert_eq!(received, want, "every seq exactly once");
}

#[tokio::test]
async fn resume_without_since_answers_the_latest_seq_and_holds_nothing_back() {
    let (hub, room) = alice_and_bob().await;
    hub.send_message("alice", send(&room.id, "one"))
        .await
        .expect("send");
    let mut s = hub
        .connect(ConnectOptions::chat(who("bob")).recovering())
        .await
        .expect("session");
    hub.send_message("alice", send(&room.id, "not subscribed yet"))
        .await
        .expect("send");
    let (_, rec) = hub
        .resume_room(s.id(), &room.id, None, false, |_, _| None)
        .await
        .expect("resume");
    assert_eq!((rec.latest_seq, rec.recovered), (2, false));
    hub.send_message("alice", send(&room.id, "live"))
        .await
        .expect("send");
    let mut seen = Seen {
        seqs: Vec::new(),
        ack_after: None,
    };
    take(&mut s, &room.id, &mut seen);
    assert_eq!(seen.seqs, vec![3], "only the live message");
    // A non-member cannot subscribe; with `join` a public room is joined.
    let carol = hub
        .connect(ConnectOptions::chat(who("carol")))
        .await
        .expect("carol");
    let e = hub
        .resume_room(carol.id(), &room.id, None, false, |_, _| None)
        .await
        .expect_err("not a member");
    assert_eq!(e.code(), "forbidden");
    hub.resume_room(carol.id(), &room.id, None, true, |_, _| None)
        .await
        .expect("joined");
    assert!(
        hub.list_members("carol", &room.id)
            .await
            .expect("members")
            .iter()
            .any(|m| m.user_id == "carol")
    );
    // Another epoch or a seq from the future: not recovered, nothing replayed.
    for since in [
        Since {
            seq: 1,
            epoch: "another".into(),
        },
        Since {
            seq: 99,
            epoch: room.epoch.clone(),
        },
    ] {
        let (_, rec) = hub
            .resume_room(s.id(), &room.id, Some(&since), false, |_, _| None)
            .await
            .expect("resume");
        assert!(
            !rec.recovered && rec.messages.is_empty(),
            "{since:?}: {rec:?}"
        );
        assert_eq!(rec.latest_seq, 3);
    }
    let _keep = Arc::new(carol);
}
