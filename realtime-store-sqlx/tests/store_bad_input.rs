//! Bad input and failure atomicity on both backends: typed errors, no partial rows.

mod common;

use chrono::Utc;
use realtime_core::*;
use realtime_store_sqlx::SqliteStore;
use std::sync::Arc;

fn room(id: &str) -> Room {
    let now = Utc::now();
    Room {
        id: id.into(),
        name: "r".into(),
        kind: RoomKind::Group,
        description: None,
        is_private: false,
        created_by: "o".into(),
        created_at: now,
        updated_at: now,
        epoch: "e".into(),
    }
}

fn member(room: &str, user: &str) -> Member {
    Member {
        room_id: room.into(),
        user_id: user.into(),
        role: Role::Member,
        joined_at: Utc::now(),
    }
}

fn msg(room: &str, id: &str) -> NewMessage {
    NewMessage {
        id: id.into(),
        room_id: room.into(),
        sender_id: "o".into(),
        client_id: None,
        content: "x".into(),
        kind: MessageKind::Text,
        created_at: Utc::now(),
    }
}

async fn atomicity(store: &dyn Store) {
    // A failing statement inside create_room rolls back the room row too.
    let r = room("atomic-room");
    let dup = [member(&r.id, "a"), member(&r.id, "a")];
    assert!(matches!(
        store.create_room(&r, &dup).await,
        Err(Error::Conflict { .. })
    ));
    assert!(
        store.get_room(&r.id).await.expect("get").is_none(),
        "no partial room"
    );
    store
        .create_room(&r, &[member(&r.id, "o")])
        .await
        .expect("create");
    // A failing message insert gives its sequence number back.
    store
        .insert_message(msg(&r.id, "m-1"))
        .await
        .expect("first");
    assert!(matches!(
        store.insert_message(msg(&r.id, "m-1")).await,
        Err(Error::Conflict { .. })
    ));
    assert_eq!(
        store.latest_seq(&r.id).await.expect("seq"),
        1,
        "failed insert used no seq"
    );
    assert_eq!(
        store
            .insert_message(msg(&r.id, "m-2"))
            .await
            .expect("next")
            .message
            .seq,
        2,
        "still gapless"
    );
    // An invite answered with a conflicting membership stays pending.
    let now = Utc::now();
    let inv = Invite {
        code: "code-1".into(),
        room_id: r.id.clone(),
        created_by: "o".into(),
        invitee: None,
        created_at: now,
        expires_at: now + chrono::TimeDelta::hours(1),
        state: InviteState::Pending,
        responded_by: None,
        responded_at: None,
    };
    store.create_invite(&inv).await.expect("invite");
    let mut answered = inv.clone();
    answered.state = InviteState::Accepted;
    assert!(
        store
            .answer_invite(&answered, Some(&member(&r.id, "o")))
            .await
            .is_err(),
        "o is a member already"
    );
    assert_eq!(
        store
            .get_invite("code-1")
            .await
            .expect("get")
            .expect("some")
            .state,
        InviteState::Pending
    );
    // Unknown parents are NotFound.
    assert!(matches!(
        store.insert_message(msg("no-room", "m-3")).await,
        Err(Error::NotFound { kind: "room", .. })
    ));
    assert!(matches!(
        store.add_member(&member("no-room", "a")).await,
        Err(Error::NotFound { kind: "room", .. })
    ));
}

async fn through_the_hub(store: Arc<dyn Store>) {
    let hub = Hub::new(store, Arc::new(MemoryBroker::new()));
    let who = Identity {
        user_id: "alice".into(),
        username: None,
        claims: serde_json::Value::Null,
    };
    let _s = hub
        .connect(ConnectOptions::chat(who.clone()))
        .await
        .expect("connect");
    let r = hub
        .create_room(
            "alice",
            CreateRoom {
                name: "r".into(),
                ..Default::default()
            },
        )
        .await
        .expect("room");
    let send = |content: String| SendMessage {
        room_id: r.id.clone(),
        content,
        kind: MessageKind::Text,
        client_id: None,
    };
    let long = "é".repeat(Limits::default().max_content_bytes);
    assert_eq!(
        hub.send_message("alice", send(long))
            .await
            .expect_err("long")
            .code(),
        "content_too_long"
    );
    let unknown = SendMessage {
        room_id: "nope".into(),
        ..send("x".into())
    };
    assert_eq!(
        hub.send_message("alice", unknown)
            .await
            .expect_err("room")
            .code(),
        "not_found"
    );
    let m = hub
        .send_message("alice", send("ok".into()))
        .await
        .expect("send");
    assert_eq!(m.seq, 1);
}

#[tokio::test]
async fn sqlite_bad_input_and_atomicity() {
    let store = SqliteStore::connect("sqlite::memory:")
        .await
        .expect("connect");
    atomicity(&store).await;
    through_the_hub(Arc::new(
        SqliteStore::connect("sqlite::memory:")
            .await
            .expect("connect"),
    ))
    .await;
    assert_eq!(
        realtime_store_sqlx::connect("mysql://x")
            .await
            .err()
            .map(|e| e.code()),
        Some("invalid"),
        "unknown scheme is a typed error"
    );
    assert!(
        realtime_store_sqlx::connect("sqlite:///nonexistent-dir/x/y.db")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn postgres_bad_input_and_atomicity() {
    let Some((store, _schema)) = common::pg_store(4).await else {
        return;
    };
    atomicity(&store).await;
    through_the_hub(Arc::new(store)).await;
}

#[tokio::test]
async fn postgres_dropped_connection_leaves_no_partial_rows() {
    let Some((store, _schema)) = common::pg_store(4).await else {
        return;
    };
    store
        .create_room(&room("drop-room"), &[])
        .await
        .expect("room");
    let mut tx = store.pool().begin().await.expect("begin");
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *tx)
        .await
        .expect("pid");
    sqlx::query("UPDATE realtime_rooms SET last_seq = last_seq + 1 WHERE id = 'drop-room'")
        .execute(&mut *tx)
        .await
        .expect("update");
    sqlx::query("INSERT INTO realtime_messages (id, room_id, seq, sender_id, content, kind, status, created_at) VALUES ('half', 'drop-room', 1, 'o', 'x'::bytea, 'TEXT', 'SENT', 0)")
        .execute(&mut *tx)
        .await
        .expect("insert");
    // Kill the connection mid-transaction from another session.
    let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(store.pool())
        .await
        .expect("terminate");
    assert!(killed);
    assert!(tx.commit().await.is_err(), "the commit cannot succeed");
    assert!(
        store.get_message("half").await.expect("get").is_none(),
        "no partial message"
    );
    assert_eq!(
        store.latest_seq("drop-room").await.expect("seq"),
        0,
        "no partial counter"
    );
    let m = store
        .insert_message(msg("drop-room", "whole"))
        .await
        .expect("store still works");
    assert_eq!(m.message.seq, 1);
}

#[tokio::test]
async fn postgres_refuses_nul_in_text_fields_with_a_typed_error() {
    let Some((store, _schema)) = common::pg_store(2).await else {
        return;
    };
    let mut u = User::new("nul-user", "nul\u{0}name", Utc::now());
    u.display_name = None;
    let e = store.create_user(&u).await.expect_err("NUL in text");
    assert_eq!(e.code(), "invalid", "{e}");
    // An update goes through the same mapping (it was a store error, HTTP 500).
    let mut r = room("nul-room");
    store
        .create_room(&r, &[member("nul-room", "o")])
        .await
        .expect("room");
    r.description = Some("a \u{0} b".into());
    let e = store
        .update_room(&r)
        .await
        .expect_err("NUL in a description");
    assert_eq!((e.code(), e.http_status()), ("invalid", 422), "{e}");
    // Message content, stored as bytes, keeps NULs verbatim (checked by the suite).
}
