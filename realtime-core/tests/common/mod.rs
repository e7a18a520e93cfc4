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
