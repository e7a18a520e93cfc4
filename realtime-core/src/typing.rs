//! Typing indicators: a tiny TTL state per `(room, user)`, never persisted (seeds 000, 004).
//!
//! * `start` on a user not typing emits `event.user.typing.start`. Further starts while
//!   typing are throttled: they only push the deadline back and emit nothing.
//! * `stop`, a sent message ([`TypingTracker::message_sent`]) or the TTL running out
//!   (default 5 s, [`TypingTracker::tick`]) emit `event.user.typing.stop` once.
//!
//! Event data: `{ "room_id", "user_id", "reason": "stop"|"timeout"|"message"|"disconnect" }`
//! (`reason` on stops only).

use crate::clock::{Timestamp, add};
use crate::event::{Event, EventType};
use crate::ids::{RoomId, UserId};
use std::collections::HashMap;
use std::time::Duration;

/// Typing settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypingConfig {
    /// How long a start lasts without a repeat (default 5 s).
    pub ttl: Duration,
}

impl Default for TypingConfig {
    fn default() -> Self {
        TypingConfig {
            ttl: Duration::from_secs(5),
        }
    }
}

/// Who is typing where, on one node.
#[derive(Debug, Default)]
pub struct TypingTracker {
    config: TypingConfig,
    typing: HashMap<(RoomId, UserId), Timestamp>,
}

fn event(ty: EventType, room: &str, user: &str, reason: Option<&str>, now: Timestamp) -> Event {
    let mut data = serde_json::json!({ "room_id": room, "user_id": user });
    if let Some(r) = reason {
        data["reason"] = r.into();
    }
    Event::at(ty, data, now).with_user(user).with_room(room)
}

impl TypingTracker {
    /// An empty tracker.
    pub fn new(config: TypingConfig) -> Self {
        TypingTracker {
            config,
            typing: HashMap::new(),
        }
    }

    /// `user` types in `room`.
    pub fn start(&mut self, room: &str, user: &str, now: Timestamp) -> Vec<Event> {
        let deadline = add(now, self.config.ttl);
        match self
            .typing
            .insert((room.to_owned(), user.to_owned()), deadline)
        {
            None => vec![event(EventType::USER_TYPING_START, room, user, None, now)],
            Some(_) => Vec::new(),
        }
    }

    fn stop_with(&mut self, room: &str, user: &str, reason: &str, now: Timestamp) -> Vec<Event> {
        match self.typing.remove(&(room.to_owned(), user.to_owned())) {
            Some(_) => vec![event(
                EventType::USER_TYPING_STOP,
                room,
                user,
                Some(reason),
                now,
            )],
            None => Vec::new(),
        }
    }

    /// `user` stopped typing in `room`.
    pub fn stop(&mut self, room: &str, user: &str, now: Timestamp) -> Vec<Event> {
        self.stop_with(room, user, "stop", now)
    }

    /// `user` sent a message to `room`: typing ends.
    pub fn message_sent(&mut self, room: &str, user: &str, now: Timestamp) -> Vec<Event> {
        self.stop_with(room, user, "message", now)
    }

    /// `user` is gone (last connection closed): every typing of theirs ends.
    pub fn user_gone(&mut self, user: &str, now: Timestamp) -> Vec<Event> {
        let rooms: Vec<RoomId> = self
            .typing
            .keys()
            .filter(|(_, u)| u == user)
            .map(|(r, _)| r.clone())
            .collect();
        rooms
            .iter()
            .flat_map(|r| self.stop_with(r, user, "disconnect", now))
            .collect()
    }

    /// Stop every typing whose TTL ran out by `now`.
    pub fn tick(&mut self, now: Timestamp) -> Vec<Event> {
        let mut out = Vec::new();
        self.typing.retain(|(room, user), deadline| {
            if *deadline <= now {
                out.push(event(
                    EventType::USER_TYPING_STOP,
                    room,
                    user,
                    Some("timeout"),
                    now,
                ));
                false
            } else {
                true
            }
        });
        out
    }

    /// Users typing in `room`, sorted.
    pub fn typing_in(&self, room: &str) -> Vec<UserId> {
        let mut v: Vec<UserId> = self
            .typing
            .keys()
            .filter(|(r, _)| r == room)
            .map(|(_, u)| u.clone())
            .collect();
        v.sort();
        v
    }

    /// Whether `user` is typing in `room`.
    pub fn is_typing(&self, room: &str, user: &str) -> bool {
        self.typing
            .contains_key(&(room.to_owned(), user.to_owned()))
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.typing.values().min().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};

    #[test]
    fn start_throttle_and_auto_stop() {
        let clock = ManualClock::at_epoch();
        let mut t = TypingTracker::new(TypingConfig::default());
        assert_eq!(t.start("r", "u", clock.now()).len(), 1);
        clock.advance(Duration::from_secs(3));
        assert!(
            t.start("r", "u", clock.now()).is_empty(),
            "repeat is throttled"
        );
        clock.advance(Duration::from_secs(3));
        assert!(t.tick(clock.now()).is_empty(), "repeat extended the TTL");
        clock.advance(Duration::from_secs(2));
        let evs = t.tick(clock.now());
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0].event_type, EventType::USER_TYPING_STOP);
        assert_eq!(evs[0].data["reason"], "timeout");
        assert!(t.stop("r", "u", clock.now()).is_empty(), "already stopped");
    }

    #[test]
    fn message_and_disconnect_stop_typing() {
        let now = ManualClock::at_epoch().now();
        let mut t = TypingTracker::default();
        t.start("r1", "u", now);
        t.start("r2", "u", now);
        assert_eq!(t.message_sent("r1", "u", now)[0].data["reason"], "message");
        assert_eq!(t.user_gone("u", now).len(), 1);
        assert!(t.typing_in("r2").is_empty());
    }
}
