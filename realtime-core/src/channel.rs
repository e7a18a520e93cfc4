//! Channels: where events are published and what sessions subscribe to.
//!
//! | form | meaning | source |
//! |---|---|---|
//! | `room:{id}` | events of one room | seed 000 |
//! | `user:{id}` | events for one user (notifications, invites) | seeds 000, 001 |
//! | `presence` | presence / status changes | seed 000 |
//! | `system` | system events (maintenance, shutdown) | seed 000 |
//! | `global` | broadcast to everyone | seed 000 |
//! | any other name | a named channel (`availability`, `private-booking.1`, `presence-room.7`) | seed 003, Pusher |
//!
//! Named channels follow Pusher's naming: 1–164 bytes of `[A-Za-z0-9_\-=@,.;]`; the
//! `private-` and `private-encrypted-` prefixes make a channel private, `presence-` a
//! presence channel (see [`Visibility`]).
//!
//! ```
//! use realtime_core::{Channel, Visibility};
//! let c: Channel = "room:r1".parse().unwrap();
//! assert_eq!(c, Channel::room("r1").unwrap());
//! assert_eq!(c.to_string(), "room:r1");
//! assert_eq!("private-booking.1".parse::<Channel>().unwrap().visibility(), Visibility::Private);
//! assert!("room:".parse::<Channel>().is_err());
//! ```

use crate::error::{Error, Result, clip};
use crate::ids::{is_name_char, validate_id};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// Maximum length of a named channel (Pusher's limit).
pub const MAX_CHANNEL_LEN: usize = 164;

/// Who may subscribe to a channel, following the Pusher prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Visibility {
    /// Anyone connected may subscribe (`availability`, `global`).
    Public,
    /// Needs authorization (`private-…`, `private-encrypted-…`, and `room:` / `user:`).
    Private,
    /// Needs authorization and tracks who is subscribed (`presence-…`).
    Presence,
}

/// A validated channel name. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    /// `room:{id}`
    Room(Arc<str>),
    /// `user:{id}`
    User(Arc<str>),
    /// `presence`
    Presence,
    /// `system`
    System,
    /// `global`
    Global,
    /// Any other valid name (no `:`).
    Named(Arc<str>),
}

impl Channel {
    /// `room:{id}`.
    ///
    /// # Errors
    /// [`Error::InvalidChannel`] when `id` is not a valid id ([`crate::ids::validate_id`]).
    pub fn room(id: &str) -> Result<Channel> {
        validate_id("room_id", id).map_err(|_| Error::InvalidChannel {
            name: format!("room:{}", clip(id)),
            reason: "invalid room id",
        })?;
        Ok(Channel::Room(id.into()))
    }

    /// `user:{id}`.
    ///
    /// # Errors
    /// [`Error::InvalidChannel`] when `id` is not a valid id.
    pub fn user(id: &str) -> Result<Channel> {
        validate_id("user_id", id).map_err(|_| Error::InvalidChannel {
            name: format!("user:{}", clip(id)),
            reason: "invalid user id",
        })?;
        Ok(Channel::User(id.into()))
    }

    /// Parse any channel name.
    ///
    /// # Errors
    /// [`Error::InvalidChannel`] for empty or over-long names, characters outside
    /// `[A-Za-z0-9_\-=@,.;]`, an unknown `prefix:` or an invalid id after `room:`/`user:`.
    pub fn parse(name: &str) -> Result<Channel> {
        let bad = |reason| {
            Err(Error::InvalidChannel {
                name: clip(name),
                reason,
            })
        };
        if let Some(id) = name.strip_prefix("room:") {
            return Channel::room(id);
        }
        if let Some(id) = name.strip_prefix("user:") {
            return Channel::user(id);
        }
        match name {
            "presence" => return Ok(Channel::Presence),
            "system" => return Ok(Channel::System),
            "global" => return Ok(Channel::Global),
            _ => {}
        }
        if name.is_empty() {
            return bad("empty");
        }
        if name.len() > MAX_CHANNEL_LEN {
            return bad("longer than 164 bytes");
        }
        if name.contains(':') {
            return bad("unknown prefix; only room: and user: take a colon");
        }
        if !name.chars().all(is_name_char) {
            return bad("allowed are A-Z a-z 0-9 _ - = @ , . ;");
        }
        Ok(Channel::Named(name.into()))
    }

    /// The visibility: `room:`/`user:`/`private-…` are private, `presence-…` is presence,
    /// everything else public.
    pub fn visibility(&self) -> Visibility {
        match self {
            Channel::Room(_) | Channel::User(_) => Visibility::Private,
            Channel::Named(n) if n.starts_with("private-") => Visibility::Private,
            Channel::Named(n) if n.starts_with("presence-") => Visibility::Presence,
            _ => Visibility::Public,
        }
    }

    /// The room id of a `room:` channel.
    pub fn room_id(&self) -> Option<&str> {
        match self {
            Channel::Room(id) => Some(id),
            _ => None,
        }
    }

    /// The user id of a `user:` channel.
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Channel::User(id) => Some(id),
            _ => None,
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Channel::Room(id) => write!(f, "room:{id}"),
            Channel::User(id) => write!(f, "user:{id}"),
            Channel::Presence => f.write_str("presence"),
            Channel::System => f.write_str("system"),
            Channel::Global => f.write_str("global"),
            Channel::Named(n) => f.write_str(n),
        }
    }
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Channel({self})")
    }
}

impl FromStr for Channel {
    type Err = Error;
    fn from_str(s: &str) -> Result<Channel> {
        Channel::parse(s)
    }
}

impl serde::Serialize for Channel {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Channel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Channel::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_channels_round_trip() {
        for name in [
            "room:room-uuid",
            "user:42",
            "presence",
            "system",
            "global",
            "availability",
            "private-booking.1",
            "presence-room.7",
            "admin",
            "kafka-events",
        ] {
            let c = Channel::parse(name).expect(name);
            assert_eq!(c.to_string(), name);
        }
        assert_eq!(
            Channel::parse("presence-room.7").expect("ok").visibility(),
            Visibility::Presence
        );
        assert_eq!(
            Channel::parse("availability").expect("ok").visibility(),
            Visibility::Public
        );
        assert_eq!(Channel::parse("room:1").expect("ok").room_id(), Some("1"));
    }

    #[test]
    fn invalid_channels_rejected() {
        let long = "a".repeat(165);
        for bad in [
            "",
            "room:",
            "user:",
            "room:a b",
            "room:a:b",
            "foo:bar",
            "with space",
            "emoji😀",
            "new\nline",
            long.as_str(),
        ] {
            let e = Channel::parse(bad).expect_err(bad);
            assert_eq!(e.code(), "invalid_channel", "{bad:?}");
        }
    }
}
