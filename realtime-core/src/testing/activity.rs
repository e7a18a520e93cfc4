//! The store suite's reactions, read pointers, favorites, events and cascades.

use super::{member, new_msg, now, room, uid};
use crate::error::Error;
use crate::event::{Event, EventType};
use crate::message::Reaction;
use crate::room::Role;
use crate::store::{EventQuery, Favorite, FavoriteKind, Store};

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
