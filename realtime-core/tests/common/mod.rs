//! Helpers shared by the Hub tests.
#![allow(dead_code)]

use realtime_core::*;

/// An identity for `id` with username `{id}-name`.
pub fn who(id: &str) -> Identity {
    Identity {
        user_id: id.into(),
        username: Some(format!("{id}-name")),
        claims: serde_json::Value::Null,
    }
}

/// Every event queued for `s` now; panics on a close.
pub fn drain(s: &mut Session) -> Vec<Event> {
    let mut out = Vec::new();
    while let Some(m) = s.try_recv() {
        match m {
            Outbound::Frame(b) => out.push(Event::from_json_bytes(&b).expect("frame is an event")),
            Outbound::Close(r) => panic!("unexpected close {r:?}"),
        }
    }
    out
}

/// The next event queued for `s`, waiting up to a second; panics on anything else.
pub async fn next(s: &mut Session) -> Event {
    match tokio::time::timeout(std::time::Duration::from_secs(1), s.recv()).await {
        Ok(Some(Outbound::Frame(b))) => Event::from_json_bytes(&b).expect("an event"),
        other => panic!("no event: {other:?}"),
    }
}

/// Whether `s` gets nothing more within 100 ms.
pub async fn quiet(s: &mut Session) -> bool {
    tokio::time::timeout(std::time::Duration::from_millis(100), s.recv())
        .await
        .is_err()
}

/// How many of `evs` have type `t`.
pub fn count(evs: &[Event], t: &EventType) -> usize {
    evs.iter().filter(|e| &e.event_type == t).count()
}

/// A text message request.
pub fn send(room: &str, content: &str) -> SendMessage {
    SendMessage {
        room_id: room.into(),
        content: content.into(),
        kind: MessageKind::Text,
        client_id: None,
    }
}

// ---- chat fixtures: three users in a public room ----

pub fn of_type<'a>(evs: &'a [Event], t: &EventType) -> Vec<&'a Event> {
    evs.iter().filter(|e| &e.event_type == t).collect()
}

pub async fn setup() -> (Hub, Session, Session, Session, Room) {
    setup_on(Hub::in_memory()).await
}

/// alice, bob and carol connected to `hub`; alice's room "General" with bob in it.
pub async fn setup_on(hub: Hub) -> (Hub, Session, Session, Session, Room) {
    let setup = setup_unsettled(hub).await;
    // The room's `user:` events make the Hub subscribe the members' sessions in tasks of
    // its own: let them finish, so each test starts from the settled state.
    settle().await;
    setup
}

/// Let the Hub's spawned tasks (membership subscriptions) run.
pub async fn settle() {
    for _ in 0..16 {
        tokio::task::yield_now().await;
    }
}

/// [`setup_on`] without letting the room's membership tasks run.
pub async fn setup_unsettled(hub: Hub) -> (Hub, Session, Session, Session, Room) {
    let a = hub
        .connect(ConnectOptions::chat(who("alice")))
        .await
        .expect("alice");
    let b = hub
        .connect(ConnectOptions::chat(who("bob")))
        .await
        .expect("bob");
    let c = hub
        .connect(ConnectOptions::chat(who("carol")))
        .await
        .expect("carol");
    let room = hub
        .create_room(
            "alice",
            CreateRoom {
                name: "General".into(),
                members: vec!["bob".into()],
                ..Default::default()
            },
        )
        .await
        .expect("room");
    (hub, a, b, c, room)
}

/// alice's private room "Secret" (no other member).
pub async fn secret_room(hub: &Hub) -> Room {
    hub.create_room(
        "alice",
        CreateRoom {
            name: "Secret".into(),
            is_private: true,
            ..Default::default()
        },
    )
    .await
    .expect("secret room")
}
