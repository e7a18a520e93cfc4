//! The store suite's users, rooms and members, and invites.

use super::{member, now, room, uid};
use crate::error::Error;
use crate::presence::UserStatus;
use crate::room::{Invite, InviteState, Role};
use crate::store::{Store, User};
use chrono::TimeDelta;

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
