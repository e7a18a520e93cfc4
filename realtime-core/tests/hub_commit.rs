//! The committer: pipelined sends in one commit and in order, membership checks per
//! batch and their cache, the linger and the gather passes.

mod common;

use common::*;
use realtime_core::*;
use std::sync::Arc;

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
