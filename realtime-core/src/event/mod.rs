//! `Event` and `EventType`: the unit of everything (seed 000, "Event Data Structure").
//!
//! An event name is `event.<level>.<action>` where `<action>` may have several dotted
//! segments (`event.user.typing.start`: level `user`, action `typing.start`). Every name
//! of seed 000 is a constant on [`EventType`]; custom names such as `event.order.shipped`
//! are allowed as long as they follow the same grammar.
//!
//! ```
//! use realtime_core::{Event, EventType};
//! let ev = Event::new(EventType::MESSAGE_SEND, serde_json::json!({"content": "hi"}))
//!     .with_user("u1")
//!     .with_room("r1");
//! let json = serde_json::to_value(&ev).unwrap();
//! assert_eq!(json["type"], "event.message.send");
//! assert_eq!(json["level"], "message");
//! assert_eq!(json["action"], "send");
//! let back: Event = serde_json::from_value(json).unwrap();
//! assert_eq!(back, ev);
//! ```

use crate::clock::{Rfc3339, Timestamp};
use crate::error::{Error, Result, clip};
use crate::ids::SocketId;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

mod data;

pub use data::EventData;

/// Maximum length of an event name in bytes.
pub const MAX_EVENT_TYPE_LEN: usize = 128;
/// Maximum length of one dotted segment of an event name.
pub const MAX_SEGMENT_LEN: usize = 32;

/// A validated event name `event.<level>.<action>`.
///
/// Grammar: the literal `event`, then a level segment, then one or more action segments,
/// joined by `.`; each segment is 1–32 bytes of `[a-z0-9_]`; at most 128 bytes in all.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventType(Cow<'static, str>);

macro_rules! event_types {
    ($($(#[$doc:meta])* $name:ident = $s:literal;)*) => {
        impl EventType {
            $($(#[$doc])* pub const $name: EventType = EventType(Cow::Borrowed($s));)*
            /// Every event name seed 000 defines, in the seed's order.
            pub const ALL: &'static [EventType] = &[$(EventType::$name),*];
        }
    };
}

event_types! {
    /// `event.user.online`: a user's first connection opened (presence).
    USER_ONLINE = "event.user.online";
    /// `event.user.offline`: a user's last connection closed and the grace period passed.
    USER_OFFLINE = "event.user.offline";
    /// `event.user.typing.start`: a user started typing in a room.
    USER_TYPING_START = "event.user.typing.start";
    /// `event.user.typing.stop`: a user stopped typing (explicitly, by TTL, or by sending).
    USER_TYPING_STOP = "event.user.typing.stop";
    /// `event.user.status.change`: online/away/offline changed.
    USER_STATUS_CHANGE = "event.user.status.change";
    /// `event.user.profile.update`: a user's profile changed.
    USER_PROFILE_UPDATE = "event.user.profile.update";
    /// `event.room.create`
    ROOM_CREATE = "event.room.create";
    /// `event.room.update`
    ROOM_UPDATE = "event.room.update";
    /// `event.room.delete`
    ROOM_DELETE = "event.room.delete";
    /// `event.room.join`: a user joined by themselves.
    ROOM_JOIN = "event.room.join";
    /// `event.room.leave`: a user left by themselves.
    ROOM_LEAVE = "event.room.leave";
    /// `event.room.member.add`: an admin added a member.
    ROOM_MEMBER_ADD = "event.room.member.add";
    /// `event.room.member.remove`: an admin removed a member.
    ROOM_MEMBER_REMOVE = "event.room.member.remove";
    /// `event.room.invite.create`
    ROOM_INVITE_CREATE = "event.room.invite.create";
    /// `event.room.invite.accept`
    ROOM_INVITE_ACCEPT = "event.room.invite.accept";
    /// `event.room.invite.reject`
    ROOM_INVITE_REJECT = "event.room.invite.reject";
    /// `event.message.send`
    MESSAGE_SEND = "event.message.send";
    /// `event.message.edit`
    MESSAGE_EDIT = "event.message.edit";
    /// `event.message.delete`
    MESSAGE_DELETE = "event.message.delete";
    /// `event.message.read`: a read pointer moved forward.
    MESSAGE_READ = "event.message.read";
    /// `event.message.reaction.add`
    MESSAGE_REACTION_ADD = "event.message.reaction.add";
    /// `event.message.reaction.remove`
    MESSAGE_REACTION_REMOVE = "event.message.reaction.remove";
    /// `event.system.maintenance`
    SYSTEM_MAINTENANCE = "event.system.maintenance";
    /// `event.system.shutdown`
    SYSTEM_SHUTDOWN = "event.system.shutdown";
    /// `event.system.broadcast`
    SYSTEM_BROADCAST = "event.system.broadcast";
}

impl EventType {
    /// An app event ([`Event::app`]): an event a host publishes under the name its clients
    /// expect ([`Event::name`]), such as Laravel's `App\Events\OrderShipped` or seed 001's
    /// `notification`.
    pub const APP: EventType = EventType(Cow::Borrowed("event.app.publish"));
    /// A user became a member of a presence channel (their first socket there); data
    /// `{"user_id", "user_info"}` ([`crate::PresenceMember`]), on that channel.
    pub const CHANNEL_MEMBER_ADD: EventType = EventType(Cow::Borrowed("event.channel.member.add"));
    /// A user left a presence channel (their last socket there); data `{"user_id",
    /// "user_info"}`, on that channel.
    pub const CHANNEL_MEMBER_REMOVE: EventType =
        EventType(Cow::Borrowed("event.channel.member.remove"));
    /// An extension name for seed 001's per-user notifications: `event.user.notification`.
    pub const USER_NOTIFICATION: EventType = EventType(Cow::Borrowed("event.user.notification"));
    /// An extension name for message status changes (seed 002): `event.message.status`.
    pub const MESSAGE_STATUS: EventType = EventType(Cow::Borrowed("event.message.status"));

    /// Parse and validate a name.
    ///
    /// # Errors
    /// [`Error::InvalidEventType`] when the name breaks the grammar above.
    pub fn parse(name: &str) -> Result<EventType> {
        if let Some(known) = Self::ALL.iter().find(|t| t.as_str() == name) {
            return Ok(known.clone());
        }
        validate_event_type(name)?;
        Ok(EventType(Cow::Owned(name.to_owned())))
    }

    /// The whole dotted name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The level: the segment after `event.` (`user`, `room`, `message`, `system`, or custom).
    pub fn level(&self) -> &str {
        self.0[6..].split('.').next().unwrap_or_default()
    }

    /// The action: everything after the level (`send`, `typing.start`, `reaction.add`).
    pub fn action(&self) -> &str {
        let rest = &self.0[6..];
        rest.find('.').map(|i| &rest[i + 1..]).unwrap_or_default()
    }
}

fn validate_event_type(name: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidEventType {
            name: clip(name),
            reason,
        })
    };
    if name.len() > MAX_EVENT_TYPE_LEN {
        return bad("longer than 128 bytes");
    }
    let Some(rest) = name.strip_prefix("event.") else {
        return bad("must start with \"event.\"");
    };
    let mut segments = 0;
    for seg in rest.split('.') {
        if seg.is_empty() {
            return bad("empty segment");
        }
        if seg.len() > MAX_SEGMENT_LEN {
            return bad("segment longer than 32 bytes");
        }
        if !seg
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return bad("segments may only hold a-z, 0-9 and _");
        }
        segments += 1;
    }
    if segments < 2 {
        return bad("needs a level and an action: event.<level>.<action>");
    }
    Ok(())
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventType({})", self.0)
    }
}

impl FromStr for EventType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        EventType::parse(s)
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = Cow::<'de, str>::deserialize(d)?;
        EventType::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Seed 000's `metadata`: where the event came from. Unknown keys are kept in `extra`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventMetadata {
    /// The client's description of itself (User-Agent or SDK name), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_info: Option<String>,
    /// The client's IP address, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    /// Any other metadata keys.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl EventMetadata {
    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        self.client_info.is_none() && self.ip_address.is_none() && self.extra.is_empty()
    }
}

/// One structured event, serialized exactly as seed 000's "Event Data Structure":
///
/// ```json
/// { "id": "<uuid v7>", "type": "event.message.send", "level": "message", "action": "send",
///   "data": {…}, "metadata": {"client_info": "…", "ip_address": "…"},
///   "timestamp": "2024-01-01T00:00:00Z", "user_id": "…", "room_id": "…" }
/// ```
///
/// `level` and `action` are derived from `type` when serializing and checked against it
/// when deserializing. `user_id` and `room_id` are `null` when the event has none.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Unique id, a UUID v7 (time-ordered).
    pub id: uuid::Uuid,
    /// The dotted event name.
    pub event_type: EventType,
    /// Event-specific payload (any JSON; usually an object), kept as JSON text.
    pub data: EventData,
    /// Where the event came from.
    pub metadata: EventMetadata,
    /// When the event happened, UTC, serialized as RFC 3339.
    pub timestamp: Timestamp,
    /// The acting user, if any.
    pub user_id: Option<String>,
    /// The room the event belongs to, if any.
    pub room_id: Option<String>,
    /// The name clients know an app event by ([`Event::app`]); `None` for the structured
    /// events, whose wire name each dialect derives from `event_type`. Serialized as
    /// `name` only when present.
    pub name: Option<String>,
    /// The session that must not receive the event: the client that caused it (Pusher's
    /// `socket_id` on a trigger, Socket.IO's `socket.broadcast`). Serialized as
    /// `except_socket` only when present, so it travels through the broker to every node.
    pub except: Option<SocketId>,
}

impl Event {
    /// A new event stamped with the system time and a fresh UUID v7.
    pub fn new(event_type: EventType, data: impl Into<EventData>) -> Event {
        Event::at(event_type, data, chrono::Utc::now())
    }

    /// A new event stamped with `timestamp` (for state machines driven by a [`crate::Clock`]).
    pub fn at(event_type: EventType, data: impl Into<EventData>, timestamp: Timestamp) -> Event {
        Event {
            id: uuid::Uuid::now_v7(),
            event_type,
            data: data.into(),
            metadata: EventMetadata::default(),
            timestamp,
            user_id: None,
            room_id: None,
            name: None,
            except: None,
        }
    }

    /// An app event: `data` published under `name`, the event name the clients listen
    /// for (`App\Events\AvailabilityUpdated`, `notification`, `chat:message`), with the
    /// type [`EventType::APP`].
    ///
    /// # Errors
    /// [`Error::Invalid`] (field `event`) when `name` is empty, over
    /// [`MAX_APP_EVENT_NAME`] bytes (Pusher's limit) or holds a control character.
    pub fn app(name: impl Into<String>, data: impl Into<EventData>) -> Result<Event> {
        let name = name.into();
        validate_app_name(&name)?;
        let mut event = Event::new(EventType::APP, data);
        event.name = Some(name);
        Ok(event)
    }

    /// Exclude the session with socket id `socket` from the event's recipients.
    pub fn except(mut self, socket: SocketId) -> Event {
        self.except = Some(socket);
        self
    }

    /// Set the acting user.
    pub fn with_user(mut self, user_id: impl Into<String>) -> Event {
        self.user_id = Some(user_id.into());
        self
    }

    /// Set the room.
    pub fn with_room(mut self, room_id: impl Into<String>) -> Event {
        self.room_id = Some(room_id.into());
        self
    }

    /// Set the metadata.
    pub fn with_metadata(mut self, metadata: EventMetadata) -> Event {
        self.metadata = metadata;
        self
    }

    /// Shorthand for `self.event_type.level()`.
    pub fn level(&self) -> &str {
        self.event_type.level()
    }

    /// Shorthand for `self.event_type.action()`.
    pub fn action(&self) -> &str {
        self.event_type.action()
    }

    /// Serialize to JSON bytes (the form stores and brokers carry).
    pub fn to_json_bytes(&self) -> Vec<u8> {
        // Serializing this type cannot fail: every field is plain data with string keys.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The length in bytes of [`Event::to_json_bytes`], counted without building it.
    pub fn json_len(&self) -> usize {
        struct Count(usize);
        impl std::io::Write for Count {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0 += buf.len();
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut count = Count(0);
        // As in `to_json_bytes`: serializing this type cannot fail.
        let _ = serde_json::to_writer(&mut count, self);
        count.0
    }

    /// Parse from JSON bytes.
    ///
    /// # Errors
    /// [`Error::Json`] for malformed JSON or a wrong shape, [`Error::InvalidEventType`] for a
    /// bad `type`, [`Error::Invalid`] when `level`/`action` disagree with `type`.
    pub fn from_json_bytes(bytes: &[u8]) -> Result<Event> {
        let wire: WireEvent<'_> = serde_json::from_slice(bytes)?;
        wire.try_into()
    }
}

/// The longest app event name in bytes (Pusher's limit on event names).
pub const MAX_APP_EVENT_NAME: usize = 200;

/// Check an app event's name: 1–[`MAX_APP_EVENT_NAME`] bytes, no control characters.
fn validate_app_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid("event", "the name must not be empty"));
    }
    if name.len() > MAX_APP_EVENT_NAME {
        return Err(Error::invalid(
            "event",
            format!(
                "the name is {} bytes, the limit is {MAX_APP_EVENT_NAME}",
                name.len()
            ),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "event",
            "the name holds a control character",
        ));
    }
    Ok(())
}

#[derive(Serialize)]
struct WireEventRef<'a> {
    id: &'a uuid::Uuid,
    #[serde(rename = "type")]
    event_type: &'a EventType,
    level: &'a str,
    action: &'a str,
    data: &'a EventData,
    metadata: &'a EventMetadata,
    timestamp: Rfc3339,
    user_id: &'a Option<String>,
    room_id: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    except_socket: &'a Option<SocketId>,
}

#[derive(Deserialize)]
struct WireEvent<'a> {
    id: uuid::Uuid,
    #[serde(rename = "type", borrow)]
    event_type: Cow<'a, str>,
    #[serde(default, borrow)]
    level: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    action: Option<Cow<'a, str>>,
    #[serde(default)]
    data: Option<EventData>,
    #[serde(default)]
    metadata: EventMetadata,
    timestamp: Timestamp,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    room_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    except_socket: Option<SocketId>,
}

impl TryFrom<WireEvent<'_>> for Event {
    type Error = Error;
    fn try_from(w: WireEvent<'_>) -> Result<Event> {
        let event_type = EventType::parse(&w.event_type)?;
        if let Some(level) = &w.level
            && level.as_ref() != event_type.level()
        {
            return Err(Error::invalid("level", "does not match the event type"));
        }
        if let Some(action) = &w.action
            && action.as_ref() != event_type.action()
        {
            return Err(Error::invalid("action", "does not match the event type"));
        }
        if let Some(name) = &w.name {
            validate_app_name(name)?;
        }
        Ok(Event {
            id: w.id,
            event_type,
            data: w.data.unwrap_or_default(),
            metadata: w.metadata,
            timestamp: w.timestamp,
            user_id: w.user_id,
            room_id: w.room_id,
            name: w.name,
            except: w.except_socket,
        })
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        WireEventRef {
            id: &self.id,
            event_type: &self.event_type,
            level: self.event_type.level(),
            action: self.event_type.action(),
            data: &self.data,
            metadata: &self.metadata,
            timestamp: Rfc3339(self.timestamp),
            user_id: &self.user_id,
            room_id: &self.room_id,
            name: &self.name,
            except_socket: &self.except,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let wire = WireEvent::deserialize(d)?;
        wire.try_into().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
