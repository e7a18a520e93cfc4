//! The store suite's messages: sequence numbers, client ids, edits and deletes,
//! concurrent sends and batch inserts.

use super::{member, new_msg, now, room, uid};
use crate::error::Error;
use crate::message::{MessageKind, MessageStatus, NewMessage};
use crate::room::{Role, Room};
use crate::store::Store;
use std::sync::Arc;

/// Messages: sequence, idempotency, verbatim content, updates, history, recovery.
pub async fn messages(store: &dyn Store) {
    let owner = uid("owner");
    let r = room(&uid("room"), &owner);
    store
        .create_room(&r, &[member(&r.id, &owner, Role::Owner)])
        .await
        .expect("room");
    assert_eq!(store.latest_seq(&r.id).await.expect("latest"), 0);
    let nasty = [
        "plain",
        "it's \"quoted\" \\ back\\slash",
        "nul \u{0} inside",
        "emoji 😀👍🏽 and ñ",
        "'); DROP TABLE messages; --",
        "%_ like wildcards",
    ];
    let mut ids = Vec::new();
    for (i, c) in nasty.iter().enumerate() {
        let ins = store
            .insert_message(new_msg(&r.id, &owner, c, None))
            .await
            .expect("insert");
        assert!(ins.created);
        assert_eq!(ins.message.seq, i as u64 + 1, "seq is gapless from 1");
        assert_eq!(ins.message.status, MessageStatus::Sent);
        let back = store
            .get_message(&ins.message.id)
            .await
            .expect("get")
            .expect("some");
        assert_eq!(back.content, *c, "content round-trips verbatim");
        assert_eq!(back, ins.message);
        ids.push(ins.message.id);
    }
    let first = store
        .insert_message(new_msg(&r.id, &owner, "retry me", Some("c-1")))
        .await
        .expect("insert");
    let again = store
        .insert_message(new_msg(&r.id, &owner, "retry me (2)", Some("c-1")))
        .await
        .expect("retry");
    assert!(first.created && !again.created, "retry is idempotent");
    assert_eq!(
        again.message, first.message,
        "retry returns the first message"
    );
    let other = store
        .insert_message(new_msg(&r.id, "someone-else", "x", Some("c-1")))
        .await
        .expect("other sender");
    assert!(other.created, "client ids are per sender");
    assert_eq!(
        other.message.seq,
        first.message.seq + 1,
        "a retry gives its number back: seq stays gapless"
    );
    assert!(matches!(
        store
            .insert_message(new_msg(&uid("none"), &owner, "x", None))
            .await,
        Err(Error::NotFound { .. })
    ));
    let latest = store.latest_seq(&r.id).await.expect("latest");
    assert_eq!(latest, nasty.len() as u64 + 2);

    let mut m = store
        .get_message(&ids[0])
        .await
        .expect("get")
        .expect("some");
    m.content = "edited".into();
    m.edited_at = Some(now());
    m.status = MessageStatus::Read;
    store.update_message(&m).await.expect("update");
    assert_eq!(
        store.get_message(&m.id).await.expect("get"),
        Some(m.clone())
    );
    m.content.clear();
    m.deleted_at = Some(now());
    store.update_message(&m).await.expect("tombstone");
    assert!(
        store
            .get_message(&m.id)
            .await
            .expect("get")
            .expect("kept")
            .is_deleted()
    );
    let mut ghost = m.clone();
    ghost.id = uid("none");
    assert!(matches!(
        store.update_message(&ghost).await,
        Err(Error::NotFound { .. })
    ));

    for i in 0..22 {
        store
            .insert_message(new_msg(&r.id, &owner, &format!("m{i}"), None))
            .await
            .expect("insert");
    }
    let total = store.latest_seq(&r.id).await.expect("latest");
    let page = store.history(&r.id, None, 10).await.expect("history");
    assert_eq!(page.messages.len(), 10);
    assert!(page.has_more);
    assert_eq!(
        page.messages.last().map(|m| m.seq),
        Some(total),
        "newest page ends at the latest"
    );
    assert!(
        page.messages.windows(2).all(|w| w[0].seq + 1 == w[1].seq),
        "oldest first, contiguous"
    );
    let before = page.messages[0].seq;
    let older = store
        .history(&r.id, Some(before), 1000)
        .await
        .expect("older");
    assert_eq!(older.messages.len() as u64, before - 1);
    assert!(!older.has_more);
    assert_eq!(older.messages[0].seq, 1);
    let exact = store.history(&r.id, Some(11), 10).await.expect("exact");
    assert_eq!(
        exact.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );
    assert!(!exact.has_more, "nothing before seq 1");
    assert!(
        store
            .history(&uid("none"), None, 10)
            .await
            .expect("unknown room")
            .messages
            .is_empty()
    );

    let after = store
        .messages_after(&r.id, total - 5, 100)
        .await
        .expect("after");
    assert_eq!(
        after.iter().map(|m| m.seq).collect::<Vec<_>>(),
        ((total - 4)..=total).collect::<Vec<_>>()
    );
    assert_eq!(
        store
            .messages_after(&r.id, 0, 3)
            .await
            .expect("after")
            .len(),
        3
    );
    assert!(
        store
            .messages_after(&r.id, total, 10)
            .await
            .expect("after")
            .is_empty()
    );
}

/// 8 concurrent senders into one room give a gapless sequence with no duplicates.
pub async fn concurrent_sends(store: Arc<dyn Store>) {
    let owner = uid("owner");
    let r = room(&uid("room"), &owner);
    store
        .create_room(&r, &[member(&r.id, &owner, Role::Owner)])
        .await
        .expect("room");
    let per_task = 25u64;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let store = store.clone();
        let rid = r.id.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_task {
                // Every third send is retried with the same client id.
                let cid = format!("t{t}-{i}");
                let ins = store
                    .insert_message(new_msg(&rid, &format!("s{t}"), "hi", Some(&cid)))
                    .await
                    .expect("insert");
                if i % 3 == 0 {
                    let again = store
                        .insert_message(new_msg(&rid, &format!("s{t}"), "hi", Some(&cid)))
                        .await
                        .expect("retry");
                    assert_eq!(again.message.id, ins.message.id);
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let all = store.messages_after(&r.id, 0, 10_000).await.expect("all");
    assert_eq!(
        all.len() as u64,
        8 * per_task,
        "no lost and no duplicate messages"
    );
    assert!(
        all.iter().enumerate().all(|(i, m)| m.seq == i as u64 + 1),
        "gapless, strictly increasing seq"
    );
}

/// Two new rooms owned by `owner`.
async fn two_rooms(store: &dyn Store, owner: &str) -> (Room, Room) {
    let (a, b) = (room(&uid("room"), owner), room(&uid("room"), owner));
    for r in [&a, &b] {
        store
            .create_room(r, &[member(&r.id, owner, Role::Owner)])
            .await
            .expect("room");
    }
    (a, b)
}

/// Batched inserts: order, per-room sequences, idempotency inside and across batches,
/// all or nothing.
pub async fn batch_inserts(store: &dyn Store) {
    let owner = uid("owner");
    let (a, b) = two_rooms(store, &owner).await;
    assert!(
        store
            .insert_messages(Vec::new())
            .await
            .expect("empty batch")
            .is_empty()
    );
    let batch = vec![
        new_msg(&a.id, &owner, "a1", None),
        new_msg(&b.id, &owner, "b1", None),
        new_msg(&a.id, &owner, "a2", Some("cid-1")),
        new_msg(&a.id, &owner, "a2 again", Some("cid-1")),
        new_msg(&a.id, &owner, "a3", None),
    ];
    let out = store.insert_messages(batch).await.expect("batch");
    let seqs: Vec<(u64, bool)> = out.iter().map(|i| (i.message.seq, i.created)).collect();
    assert_eq!(
        seqs,
        [(1, true), (1, true), (2, true), (2, false), (3, true)],
        "per-room seq, in order"
    );
    assert_eq!(
        out[3].message, out[2].message,
        "a repeat inside the batch returns the first"
    );
    assert_eq!(out[4].message.content, "a3");
    let next_b = store
        .insert_message(new_msg(&b.id, &owner, "b2", None))
        .await
        .expect("b2");
    assert_eq!(
        next_b.message.seq, 2,
        "each room's counter moved by the batch"
    );
    let next_a = store
        .insert_messages(vec![new_msg(&a.id, &owner, "a4", None)])
        .await
        .expect("a4");
    assert_eq!(next_a[0].message.seq, 4);
    let retry = store
        .insert_messages(vec![new_msg(&a.id, &owner, "late retry", Some("cid-1"))])
        .await
        .expect("retry");
    assert!(!retry[0].created);
    assert_eq!(retry[0].message.id, out[2].message.id);
    let bad = vec![
        new_msg(&a.id, &owner, "would be a5", None),
        new_msg(&uid("none"), &owner, "x", None),
    ];
    assert!(
        matches!(
            store.insert_messages(bad).await,
            Err(Error::NotFound { .. })
        ),
        "unknown room fails the batch"
    );
    assert_eq!(
        store.latest_seq(&a.id).await.expect("seq"),
        4,
        "a failed batch stores nothing"
    );
    let dup = new_msg(&a.id, &owner, "dup id", None);
    let twice = vec![dup.clone(), dup];
    assert!(
        matches!(
            store.insert_messages(twice).await,
            Err(Error::Conflict { .. })
        ),
        "duplicate id fails the batch"
    );
    assert_eq!(store.latest_seq(&a.id).await.expect("seq"), 4);
    assert_eq!(
        store.messages_after(&a.id, 0, 10).await.expect("all").len(),
        4
    );
    // A batch stores every field as given, whatever the content holds (quotes,
    // backslashes, control characters, non-ASCII), and reads back equal.
    let mut tricky = new_msg(
        &b.id,
        &owner,
        "\"q\" \\ \n\t\u{1} é 📧 '; --",
        Some("cid-x"),
    );
    tricky.kind = MessageKind::File;
    let plain = new_msg(&b.id, &owner, "", None);
    let stored = store
        .insert_messages(vec![tricky, plain])
        .await
        .expect("tricky batch");
    for inserted in &stored {
        assert!(inserted.created);
        let back = store
            .get_message(&inserted.message.id)
            .await
            .expect("read")
            .expect("stored");
        assert_eq!(back, inserted.message, "read back as stored");
    }
    assert_eq!(
        (stored[0].message.seq, stored[1].message.seq),
        (3, 4),
        "b's counter moved on from 2"
    );
    // Batches that SQL stores pad to their statement sizes (3 → 4 rows, 300 → 500) store
    // their own rows and nothing else (in rooms of their own).
    let (a, b) = two_rooms(store, &owner).await;
    for n in [3usize, 300] {
        let (before_a, before_b) = (
            store.latest_seq(&a.id).await.expect("seq a"),
            store.latest_seq(&b.id).await.expect("seq b"),
        );
        let batch: Vec<NewMessage> = (0..n)
            .map(|i| {
                let r = if i % 3 == 0 { &b.id } else { &a.id };
                new_msg(r, &owner, &format!("n{n} #{i}"), None)
            })
            .collect();
        let out = store.insert_messages(batch).await.expect("padded batch");
        assert_eq!(out.len(), n);
        assert!(out.iter().all(|i| i.created));
        let in_b = n.div_ceil(3) as u64;
        let in_a = n as u64 - in_b;
        assert_eq!(
            store.latest_seq(&a.id).await.expect("seq a"),
            before_a + in_a
        );
        assert_eq!(
            store.latest_seq(&b.id).await.expect("seq b"),
            before_b + in_b
        );
        let stored = store
            .messages_after(&a.id, before_a, 1000)
            .await
            .expect("read back");
        let want: Vec<String> = (0..n)
            .filter(|i| i % 3 != 0)
            .map(|i| format!("n{n} #{i}"))
            .collect();
        assert_eq!(
            stored.iter().map(|m| m.content.clone()).collect::<Vec<_>>(),
            want
        );
        assert_eq!(
            stored.iter().map(|m| m.seq).collect::<Vec<_>>(),
            (before_a + 1..=before_a + in_a).collect::<Vec<_>>()
        );
    }
}
