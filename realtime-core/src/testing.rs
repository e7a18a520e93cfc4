//! Conformance suites for [`Store`] and [`Broker`] backends (feature `testing`).
//!
//! Every backend crate runs the very same checks against itself:
//!
//! ```no_run
//! # async fn f() {
//! use std::sync::Arc;
//! realtime_core::testing::store_suite(Arc::new(realtime_core::MemoryStore::new())).await;
//! let bus = realtime_core::MemoryBus::new();
//! realtime_core::testing::broker_suite(Arc::new(bus.node()), Arc::new(bus.node())).await;
//! # }
//! ```
//!
//! The suites panic with a message naming the broken rule. They use fresh random ids, so
//! they can run repeatedly and in parallel against one database or Redis.

use crate::broker::{Broker, DeliveryHandler};
use crate::channel::Channel;
use crate::error::Error;
use crate::event::{Event, EventType};
use crate::message::{MessageKind, MessageStatus, NewMessage, Reaction};
use crate::presence::UserStatus;
use crate::room::{Invite, InviteState, Member, Role, Room, RoomKind};
use crate::store::{EventQuery, Favorite, FavoriteKind, Store, User};
use chrono::{DurationRound, TimeDelta, Utc};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn uid(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Now, truncated to milliseconds so every backend stores it exactly.
fn now() -> crate::Timestamp {
    Utc::now()
        .duration_trunc(TimeDelta::milliseconds(1))
        .unwrap_or_else(|_| Utc::now())
}

fn new_msg(room: &str, sender: &str, content: &str, client_id: Option<&str>) -> NewMessage {
    NewMessage {
        id: crate::ids::new_id(),
        room_id: room.to_owned(),
        sender_id: sender.to_owned(),
        client_id: client_id.map(str::to_owned),
        content: content.to_owned(),
        kind: MessageKind::Text,
        created_at: now(),
    }
}

fn room(id: &str, creator: &str) -> Room {
    let t = now();
    Room {
        id: id.to_owned(),
        name: format!("Room {id}"),
        kind: RoomKind::Group,
        description: Some("a room".into()),
        is_private: false,
        created_by: creator.to_owned(),
        created_at: t,
        updated_at: t,
        epoch: uuid::Uuid::new_v4().simple().to_string(),
    }
}

fn member(room: &str, user: &str, role: Role) -> Member {
    Member {
        room_id: room.to_owned(),
        user_id: user.to_owned(),
        role,
        joined_at: now(),
    }
}

/// Run every store check against `store`.
pub async fn store_suite(store: Arc<dyn Store>) {
    users(&*store).await;
    rooms_and_members(&*store).await;
    invites(&*store).await;
    messages(&*store).await;
    concurrent_sends(store.clone()).await;
    batch_inserts(&*store).await;
    reactions_reads_favorites(&*store).await;
    events(&*store).await;
    cascade(&*store).await;
}

/// Users: create, conflicts, lookup, update, paging, status, delete.
pub async fn users(store: &dyn Store) {
    let id = uid("u");
    let mut u = User::new(id.clone(), uid("name"), now());
    u.email = Some("a@example.com".into());
    u.password_hash = Some("$argon2id$v=19$fake".into());
    store.create_user(&u).await.expect("create_user");
    assert!(
        matches!(store.create_user(&u).await, Err(Error::Conflict { .. })),
        "duplicate id must conflict"
    );
    let same_name = User::new(uid("u"), u.username.clone(), now());
    assert!(
        matches!(
            store.create_user(&same_name).await,
            Err(Error::Conflict { .. })
        ),
        "duplicate username must conflict"
    );
    let got = store
        .get_user(&id)
        .await
        .expect("get_user")
        .expect("user exists");
    assert_eq!(got, u, "user round-trips");
    assert_eq!(
        got.password_hash, u.password_hash,
        "password hash is stored"
    );
    assert_eq!(
        store
            .get_user_by_username(&u.username)
            .await
            .expect("by name")
            .map(|x| x.id),
        Some(id.clone())
    );
    assert!(store.get_user(&uid("none")).await.expect("get").is_none());
    u.display_name = Some("Ann \"Quote\" O'Neil 😀".into());
    store.update_user(&u).await.expect("update_user");
    assert_eq!(
        store
            .get_user(&id)
            .await
            .expect("get")
            .expect("some")
            .display_name,
        u.display_name
    );
    let ghost = User::new(uid("ghost"), uid("ghost"), now());
    assert!(
        matches!(store.update_user(&ghost).await, Err(Error::NotFound { .. })),
        "update of unknown user"
    );
    let t = now();
    store
        .set_user_status(&id, UserStatus::Away, t)
        .await
        .expect("status");
    let got = store.get_user(&id).await.expect("get").expect("some");
    assert_eq!((got.status, got.last_seen), (UserStatus::Away, Some(t)));
    assert!(matches!(
        store
            .set_user_status(&ghost.id, UserStatus::Online, t)
            .await,
        Err(Error::NotFound { .. })
    ));
    let page = store.list_users(0, 1_000_000).await.expect("list");
    assert!(page.iter().any(|x| x.id == id));
    assert!(
        page.windows(2).all(|w| w[0].id < w[1].id),
        "users ordered by id"
    );
    assert_eq!(store.list_users(0, 1).await.expect("list").len(), 1);
    assert!(store.delete_user(&id).await.expect("delete"));
    assert!(!store.delete_user(&id).await.expect("delete again"));
}

/// Rooms and members.
pub async fn rooms_and_members(store: &dyn Store) {
    let (owner, alice) = (uid("owner"), uid("alice"));
    let r = room(&uid("room"), &owner);
    store
        .create_room(&r, &[member(&r.id, &owner, Role::Owner)])
        .await
        .expect("create_room");
    assert!(
        matches!(
            store.create_room(&r, &[]).await,
            Err(Error::Conflict { .. })
        ),
        "duplicate room"
    );
    assert_eq!(
        store.get_room(&r.id).await.expect("get").as_ref(),
        Some(&r),
        "room round-trips"
    );
    let mut r2 = r.clone();
    r2.name = "Renamed 'room' \"x\"".into();
    r2.is_private = true;
    store.update_room(&r2).await.expect("update_room");
    assert_eq!(store.get_room(&r.id).await.expect("get"), Some(r2.clone()));
    assert!(matches!(
        store.update_room(&room(&uid("none"), &owner)).await,
        Err(Error::NotFound { .. })
    ));
    let mut m = member(&r.id, &alice, Role::Member);
    m.joined_at += TimeDelta::seconds(1);
    store.add_member(&m).await.expect("add_member");
    assert!(
        matches!(store.add_member(&m).await, Err(Error::Conflict { .. })),
        "member twice"
    );
    assert!(
        matches!(
            store
                .add_member(&member(&uid("none"), &alice, Role::Member))
                .await,
            Err(Error::NotFound { .. })
        ),
        "member of unknown room"
    );
    assert_eq!(
        store.get_member(&r.id, &alice).await.expect("get_member"),
        Some(m.clone())
    );
    let members = store.list_members(&r.id).await.expect("list_members");
    assert_eq!(members.len(), 2);
    assert_eq!(members[0].role, Role::Owner, "members ordered by joined_at");
    assert_eq!(store.count_members(&r.id).await.expect("count_members"), 2);
    // A capped count stops at its limit, and is the count below it.
    for (limit, expected) in [(0, 0), (1, 1), (2, 2), (3, 2), (u64::MAX, 2)] {
        assert_eq!(
            store
                .count_members_up_to(&r.id, limit)
                .await
                .expect("count_members_up_to"),
            expected,
            "limit {limit}"
        );
    }
    assert_eq!(
        store
            .count_members_up_to(&uid("none"), 5)
            .await
            .expect("capped count of an unknown room"),
        0
    );
    // One answer per pair, in order, repeats and unknowns included.
    let none = uid("none");
    let nobody = uid("nobody");
    assert_eq!(
        store
            .are_members(&[
                (&r.id, &alice),
                (&r.id, &nobody),
                (&none, &alice),
                (&r.id, &owner),
                (&r.id, &alice),
            ])
            .await
            .expect("are_members"),
        [true, false, false, true, true]
    );
    assert!(store.are_members(&[]).await.expect("none asked").is_empty());
    let many: Vec<(&str, &str)> = (0..1200)
        .map(|i| {
            if i % 3 == 0 {
                (r.id.as_str(), alice.as_str())
            } else {
                (r.id.as_str(), nobody.as_str())
            }
        })
        .collect();
    let answers = store
        .are_members(&many)
        .await
        .expect("more pairs than one query takes");
    assert_eq!(answers.len(), 1200);
    assert!(answers.iter().enumerate().all(|(i, a)| *a == (i % 3 == 0)));
    assert_eq!(
        store
            .count_members(&uid("none"))
            .await
            .expect("count_members of an unknown room"),
        0
    );
    let mine = store
        .list_rooms(Some(&alice), 0, 100)
        .await
        .expect("list_rooms");
    assert_eq!(mine.iter().map(|x| &x.id).collect::<Vec<_>>(), [&r.id]);
    assert!(
        store
            .list_rooms(Some(&uid("nobody")), 0, 100)
            .await
            .expect("list")
            .is_empty()
    );
    assert!(store.remove_member(&r.id, &alice).await.expect("remove"));
    assert_eq!(store.count_members(&r.id).await.expect("count_members"), 1);
    assert!(
        !store
            .remove_member(&r.id, &alice)
            .await
            .expect("remove again")
    );
    assert!(
        store
            .get_member(&r.id, &alice)
            .await
            .expect("get")
            .is_none()
    );
}

/// Invites.
pub async fn invites(store: &dyn Store) {
    let owner = uid("owner");
    let r = room(&uid("room"), &owner);
    store
        .create_room(&r, &[member(&r.id, &owner, Role::Owner)])
        .await
        .expect("room");
    let t = now();
    let inv = Invite {
        code: uid("code"),
        room_id: r.id.clone(),
        created_by: owner.clone(),
        invitee: None,
        created_at: t,
        expires_at: t + TimeDelta::hours(1),
        state: InviteState::Pending,
        responded_by: None,
        responded_at: None,
    };
    store.create_invite(&inv).await.expect("create_invite");
    assert!(matches!(
        store.create_invite(&inv).await,
        Err(Error::Conflict { .. })
    ));
    assert_eq!(
        store.get_invite(&inv.code).await.expect("get"),
        Some(inv.clone())
    );
    let mut answered = inv.clone();
    answered.state = InviteState::Accepted;
    answered.responded_by = Some("bob".into());
    answered.responded_at = Some(t);
    let m = member(&r.id, "bob", Role::Member);
    store
        .answer_invite(&answered, Some(&m))
        .await
        .expect("answer");
    assert_eq!(
        store.get_invite(&inv.code).await.expect("get"),
        Some(answered.clone())
    );
    assert_eq!(
        store.get_member(&r.id, "bob").await.expect("member"),
        Some(m)
    );
    assert!(
        matches!(
            store.answer_invite(&answered, None).await,
            Err(Error::Conflict { .. })
        ),
        "answered twice"
    );
    let mut ghost = inv.clone();
    ghost.code = uid("none");
    assert!(matches!(
        store.answer_invite(&ghost, None).await,
        Err(Error::NotFound { .. })
    ));
}

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

/// Reactions, read pointers, unread counts and favorites.
pub async fn reactions_reads_favorites(store: &dyn Store) {
    let (owner, bob) = (uid("owner"), uid("bob"));
    let r = room(&uid("room"), &owner);
    store
        .create_room(
            &r,
            &[
                member(&r.id, &owner, Role::Owner),
                member(&r.id, &bob, Role::Member),
            ],
        )
        .await
        .expect("room");
    let m1 = store
        .insert_message(new_msg(&r.id, &owner, "one", None))
        .await
        .expect("m1")
        .message;
    let r1 = Reaction {
        message_id: m1.id.clone(),
        user_id: bob.clone(),
        emoji: "👍".into(),
        created_at: now(),
    };
    assert!(store.add_reaction(&r1).await.expect("add"));
    assert!(
        !store.add_reaction(&r1).await.expect("add twice"),
        "reactions idempotent"
    );
    let r2 = Reaction {
        emoji: "🎉".into(),
        ..r1.clone()
    };
    assert!(store.add_reaction(&r2).await.expect("add other emoji"));
    assert_eq!(store.list_reactions(&m1.id).await.expect("list").len(), 2);
    assert!(
        store
            .remove_reaction(&m1.id, &bob, "👍")
            .await
            .expect("remove")
    );
    assert!(
        !store
            .remove_reaction(&m1.id, &bob, "👍")
            .await
            .expect("remove twice")
    );
    assert_eq!(store.list_reactions(&m1.id).await.expect("list"), vec![r2]);
    let ghost = Reaction {
        message_id: uid("none"),
        ..r1.clone()
    };
    assert!(matches!(
        store.add_reaction(&ghost).await,
        Err(Error::NotFound { .. })
    ));

    store
        .insert_message(new_msg(&r.id, &bob, "own", None))
        .await
        .expect("m2");
    let m3 = store
        .insert_message(new_msg(&r.id, &owner, "three", None))
        .await
        .expect("m3")
        .message;
    store
        .insert_message(new_msg(&r.id, &owner, "four", None))
        .await
        .expect("m4");
    assert_eq!(store.read_pointer(&r.id, &bob).await.expect("ptr"), 0);
    assert_eq!(
        store.unread_count(&r.id, &bob).await.expect("unread"),
        3,
        "own messages are not unread"
    );
    assert_eq!(
        store
            .advance_read_pointer(&r.id, &bob, 3, now())
            .await
            .expect("adv"),
        3
    );
    assert_eq!(
        store
            .advance_read_pointer(&r.id, &bob, 1, now())
            .await
            .expect("back"),
        3,
        "never backwards"
    );
    assert_eq!(store.unread_count(&r.id, &bob).await.expect("unread"), 1);
    let mut m3d = m3.clone();
    m3d.deleted_at = Some(now());
    store.update_message(&m3d).await.expect("delete");
    store
        .advance_read_pointer(&r.id, &bob, 2, now())
        .await
        .expect("adv");
    assert_eq!(
        store.unread_count(&r.id, &bob).await.expect("unread"),
        1,
        "deleted messages are not unread"
    );

    let f = Favorite {
        user_id: bob.clone(),
        target_id: r.id.clone(),
        kind: FavoriteKind::Room,
        created_at: now(),
    };
    assert!(store.set_favorite(&f, true).await.expect("fav"));
    assert!(!store.set_favorite(&f, true).await.expect("fav twice"));
    let fu = Favorite {
        target_id: owner.clone(),
        kind: FavoriteKind::User,
        ..f.clone()
    };
    assert!(store.set_favorite(&fu, true).await.expect("fav user"));
    assert_eq!(store.list_favorites(&bob).await.expect("list").len(), 2);
    assert!(store.set_favorite(&f, false).await.expect("unfav"));
    assert!(!store.set_favorite(&f, false).await.expect("unfav twice"));
    assert_eq!(store.list_favorites(&bob).await.expect("list"), vec![fu]);
}

/// Event history: append, filter, newest first.
pub async fn events(store: &dyn Store) {
    let room = uid("room");
    let user = uid("user");
    let a = Event::new(EventType::MESSAGE_SEND, serde_json::json!({"n": 1}))
        .with_room(room.clone())
        .with_user(user.clone());
    let b = Event::new(EventType::ROOM_JOIN, serde_json::json!({"n": 2})).with_room(room.clone());
    let c = Event::new(
        EventType::MESSAGE_EDIT,
        serde_json::json!({"n": 3, "s": "it's"}),
    )
    .with_room(room.clone());
    for e in [&a, &b, &c] {
        store.append_event(e).await.expect("append");
    }
    let q = |p: Option<&str>| EventQuery {
        type_prefix: p.map(str::to_owned),
        room_id: Some(room.clone()),
        user_id: None,
        limit: 10,
    };
    let all = store.list_events(&q(None)).await.expect("list");
    assert_eq!(
        all.iter().map(|e| e.id).collect::<Vec<_>>(),
        [c.id, b.id, a.id],
        "newest first"
    );
    assert_eq!(all[0].data, c.data);
    let msgs = store
        .list_events(&q(Some("event.message.")))
        .await
        .expect("list");
    assert_eq!(msgs.len(), 2);
    let by_user = EventQuery {
        user_id: Some(user),
        ..q(None)
    };
    assert_eq!(store.list_events(&by_user).await.expect("list").len(), 1);
    assert_eq!(
        store
            .list_events(&EventQuery {
                limit: 1,
                ..q(None)
            })
            .await
            .expect("list")
            .len(),
        1
    );
}

/// Deleting a room deletes what is in it.
pub async fn cascade(store: &dyn Store) {
    let owner = uid("owner");
    let r = room(&uid("room"), &owner);
    store
        .create_room(&r, &[member(&r.id, &owner, Role::Owner)])
        .await
        .expect("room");
    let m = store
        .insert_message(new_msg(&r.id, &owner, "x", None))
        .await
        .expect("msg")
        .message;
    store
        .add_reaction(&Reaction {
            message_id: m.id.clone(),
            user_id: owner.clone(),
            emoji: "x".into(),
            created_at: now(),
        })
        .await
        .expect("react");
    store
        .advance_read_pointer(&r.id, &owner, 1, now())
        .await
        .expect("read");
    assert!(store.delete_room(&r.id).await.expect("delete"));
    assert!(!store.delete_room(&r.id).await.expect("delete twice"));
    assert!(store.get_room(&r.id).await.expect("get").is_none());
    assert!(
        store
            .get_member(&r.id, &owner)
            .await
            .expect("member")
            .is_none()
    );
    assert!(store.get_message(&m.id).await.expect("message").is_none());
    assert!(
        store
            .list_reactions(&m.id)
            .await
            .expect("reactions")
            .is_empty()
    );
    assert_eq!(store.latest_seq(&r.id).await.expect("seq"), 0);
}

/// Records deliveries for [`broker_suite`].
#[derive(Default)]
pub struct Collector {
    got: Mutex<Vec<(Channel, uuid::Uuid)>>,
}

impl DeliveryHandler for Collector {
    fn deliver(&self, channel: &Channel, event: Arc<Event>) {
        self.got
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((channel.clone(), event.id));
    }
}

impl Collector {
    /// Deliveries so far.
    pub fn all(&self) -> Vec<(Channel, uuid::Uuid)> {
        self.got.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn count(&self, id: uuid::Uuid) -> usize {
        self.all().iter().filter(|(_, e)| *e == id).count()
    }

    /// Wait up to 5 s until event `id` has arrived `n` times.
    pub async fn wait_for(&self, id: uuid::Uuid, n: usize) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while tokio::time::Instant::now() < deadline {
            if self.count(id) >= n {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        false
    }
}

fn ev(n: u64) -> Arc<Event> {
    Arc::new(Event::new(
        EventType::MESSAGE_SEND,
        serde_json::json!({ "n": n }),
    ))
}

/// Run every broker check. `a` and `b` must be two nodes on the same backend.
pub async fn broker_suite(a: Arc<dyn Broker>, b: Arc<dyn Broker>) {
    let (ca, cb) = (
        Arc::new(Collector::default()),
        Arc::new(Collector::default()),
    );
    a.set_handler(ca.clone());
    b.set_handler(cb.clone());
    let ch = Channel::room(&uid("room")).expect("channel");
    let other = Channel::room(&uid("room")).expect("channel");

    // Own publishes arrive exactly once.
    a.subscribe(&ch).await.expect("subscribe");
    a.subscribe(&ch).await.expect("subscribe is idempotent");
    let e1 = ev(1);
    a.publish(&ch, e1.clone()).await.expect("publish");
    assert!(
        ca.wait_for(e1.id, 1).await,
        "publisher's own subscription receives its event"
    );

    // A second node receives only after subscribing.
    b.subscribe(&ch).await.expect("subscribe b");
    let e2 = ev(2);
    a.publish(&ch, e2.clone()).await.expect("publish");
    assert!(cb.wait_for(e2.id, 1).await, "other node receives");
    assert!(ca.wait_for(e2.id, 1).await, "own node receives");
    let e3 = ev(3);
    b.publish(&ch, e3.clone()).await.expect("publish from b");
    assert!(
        ca.wait_for(e3.id, 1).await && cb.wait_for(e3.id, 1).await,
        "b's publish reaches both"
    );

    // Unsubscribed channels are not delivered; publishing to them is fine.
    let stray = ev(4);
    a.publish(&other, stray.clone())
        .await
        .expect("publish to channel nobody holds");

    // Order per channel.
    let batch: Vec<Arc<Event>> = (10..110).map(ev).collect();
    for e in &batch {
        a.publish(&ch, e.clone()).await.expect("publish");
    }
    let last = batch.last().map(|e| e.id).expect("last");
    assert!(cb.wait_for(last, 1).await, "batch arrives");
    let seen: Vec<uuid::Uuid> = cb
        .all()
        .into_iter()
        .filter(|(c, _)| *c == ch)
        .map(|(_, e)| e)
        .collect();
    let want: Vec<uuid::Uuid> = batch.iter().map(|e| e.id).collect();
    let got: Vec<uuid::Uuid> = seen.into_iter().filter(|id| want.contains(id)).collect();
    assert_eq!(got, want, "order preserved per channel");

    // Unsubscribe stops delivery.
    b.unsubscribe(&ch).await.expect("unsubscribe");
    b.unsubscribe(&ch).await.expect("unsubscribe is idempotent");
    let after = ev(5);
    a.publish(&ch, after.clone()).await.expect("publish");
    assert!(ca.wait_for(after.id, 1).await);
    // b is still subscribed to nothing; give a slow backend a moment, then check.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(cb.count(after.id), 0, "unsubscribed node receives nothing");
    for c in [&ca, &cb] {
        assert_eq!(
            c.count(stray.id),
            0,
            "unsubscribed channel delivered nothing"
        );
        for (_, id) in c.all() {
            assert!(c.count(id) <= 1, "no event delivered twice to one node");
        }
    }
    a.unsubscribe(&ch).await.expect("unsubscribe a");
}
