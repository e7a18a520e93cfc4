//! The message lifecycle, reactions and read pointers (seeds 000, 002, 004).
//!
//! * Status: `PENDING → SENT → DELIVERED → READ`, or `FAILED` from `PENDING`/`SENT`
//!   (seed 002's statuses). Status only moves forward ([`Message::advance_status`]).
//! * Edit sets `edited_at`; only the sender edits, never a deleted message.
//! * Delete is a tombstone: content is cleared, `deleted_at` set, the row and its `seq` stay
//!   so history and recovery keep no gaps. The sender, or a room owner/admin, may delete.
//! * Reactions are a set per `(user, emoji)`: adding twice is one reaction ([`ReactionSet`]).
//! * Read pointers only move forward ([`ReadPointer::advance`]).

use crate::clock::{Rfc3339, Timestamp};
use crate::error::{Error, Result};
use crate::event::{Event, EventData, EventType};
use crate::ids::{MessageId, RoomId, UserId, validate_id};
use crate::room::Role;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Size limits for user input, in bytes of UTF-8. Defaults: content 16 KiB, names (room
/// names, display names) 200, emoji 64, room descriptions 4 KiB, avatar URLs 2 KiB, email
/// addresses 254 (RFC 5321's path limit); ids and usernames 128 ([`crate::ids::MAX_ID_LEN`]).
///
/// Every user-supplied field of an event is bounded by one of these, so no event built
/// from user input can outgrow a session's queue ([`crate::HubConfig::max_event_bytes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum message content.
    pub max_content_bytes: usize,
    /// Maximum room name or user display name.
    pub max_name_bytes: usize,
    /// Maximum emoji (reaction key).
    pub max_emoji_bytes: usize,
    /// Maximum room description.
    pub max_description_bytes: usize,
    /// Maximum avatar URL.
    pub max_url_bytes: usize,
    /// Maximum email address.
    pub max_email_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_content_bytes: 16 * 1024,
            max_name_bytes: 200,
            max_emoji_bytes: 64,
            max_description_bytes: 4 * 1024,
            max_url_bytes: 2 * 1024,
            max_email_bytes: 254,
        }
    }
}

impl Limits {
    /// Check message content: not empty (after trimming) and at most `max_content_bytes`.
    ///
    /// # Errors
    /// [`Error::Invalid`] for empty content, [`Error::ContentTooLong`] when too long.
    pub fn check_content(&self, content: &str) -> Result<()> {
        if content.trim().is_empty() {
            return Err(Error::invalid("content", "must not be empty"));
        }
        if content.len() > self.max_content_bytes {
            return Err(Error::ContentTooLong {
                len: content.len(),
                max: self.max_content_bytes,
            });
        }
        Ok(())
    }

    /// Check a display name: 1..=`max_name_bytes` bytes, no control characters.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming `field`.
    pub fn check_name(&self, field: &'static str, name: &str) -> Result<()> {
        if name.trim().is_empty() {
            return Err(Error::invalid(field, "must not be empty"));
        }
        if name.len() > self.max_name_bytes {
            return Err(Error::invalid(
                field,
                format!(
                    "is {} bytes, the limit is {}",
                    name.len(),
                    self.max_name_bytes
                ),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(Error::invalid(field, "must not contain control characters"));
        }
        Ok(())
    }

    /// Check a free-text field (`field` names it in the error): at most `max` bytes and no
    /// NUL character (PostgreSQL's `text` cannot hold one). Empty is allowed.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming `field`.
    pub fn check_text(field: &'static str, text: &str, max: usize) -> Result<()> {
        if text.len() > max {
            return Err(Error::invalid(
                field,
                format!("is {} bytes, the limit is {max}", text.len()),
            ));
        }
        if text.contains('\0') {
            return Err(Error::invalid(field, "must not contain NUL characters"));
        }
        Ok(())
    }

    /// Check a user's profile fields: `username` as an id ([`validate_id`]), `display_name`
    /// as a name ([`Limits::check_name`]), `email` and `avatar` as text within
    /// `max_email_bytes` and `max_url_bytes`.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the first field that fails.
    pub fn check_profile(&self, user: &crate::store::User) -> Result<()> {
        validate_id("username", &user.username)?;
        if let Some(n) = &user.display_name {
            self.check_name("display_name", n)?;
        }
        if let Some(e) = &user.email {
            Self::check_text("email", e, self.max_email_bytes)?;
        }
        if let Some(a) = &user.avatar {
            Self::check_text("avatar", a, self.max_url_bytes)?;
        }
        Ok(())
    }

    /// Check a reaction emoji: 1..=`max_emoji_bytes` bytes, no whitespace or control chars.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming `emoji`.
    pub fn check_emoji(&self, emoji: &str) -> Result<()> {
        if emoji.is_empty() || emoji.len() > self.max_emoji_bytes {
            return Err(Error::invalid(
                "emoji",
                format!("must be 1 to {} bytes", self.max_emoji_bytes),
            ));
        }
        if emoji.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::invalid("emoji", "must not contain whitespace"));
        }
        Ok(())
    }
}

/// What a message holds (seed 004: `TEXT | SYSTEM | FILE`). Serialized uppercase;
/// deserialization also accepts lowercase (seed 000 sends `"type": "text"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum MessageKind {
    /// Plain text.
    #[default]
    Text,
    /// Generated by the system (e.g. "Direct chat started").
    System,
    /// A file reference; `content` holds its URL or descriptor.
    File,
}

impl MessageKind {
    /// The uppercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Text => "TEXT",
            MessageKind::System => "SYSTEM",
            MessageKind::File => "FILE",
        }
    }

    /// Parse case-insensitively.
    ///
    /// # Errors
    /// [`Error::Invalid`] for anything but text/system/file.
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_uppercase().as_str() {
            "TEXT" => Ok(MessageKind::Text),
            "SYSTEM" => Ok(MessageKind::System),
            "FILE" => Ok(MessageKind::File),
            _ => Err(Error::invalid("type", "must be TEXT, SYSTEM or FILE")),
        }
    }
}

impl<'de> Deserialize<'de> for MessageKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        MessageKind::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Delivery status (seed 002): serialized `PENDING`, `SENT`, `DELIVERED`, `READ`, `FAILED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "UPPERCASE")]
pub enum MessageStatus {
    /// Accepted from the client, not yet committed.
    Pending,
    /// Committed to the store and published.
    Sent,
    /// Received by at least one other member's client.
    Delivered,
    /// Read by at least one other member.
    Read,
    /// Could not be sent.
    Failed,
}

impl MessageStatus {
    /// The uppercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Pending => "PENDING",
            MessageStatus::Sent => "SENT",
            MessageStatus::Delivered => "DELIVERED",
            MessageStatus::Read => "READ",
            MessageStatus::Failed => "FAILED",
        }
    }

    /// Parse an uppercase name.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an unknown status.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "PENDING" => Ok(MessageStatus::Pending),
            "SENT" => Ok(MessageStatus::Sent),
            "DELIVERED" => Ok(MessageStatus::Delivered),
            "READ" => Ok(MessageStatus::Read),
            "FAILED" => Ok(MessageStatus::Failed),
            _ => Err(Error::invalid("status", "unknown message status")),
        }
    }
}

/// A message to be stored: what a client sends. The store assigns `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// The new message's id (UUID v7, chosen by the Hub).
    pub id: MessageId,
    /// The room it goes to.
    pub room_id: RoomId,
    /// The sender.
    pub sender_id: UserId,
    /// The client's own id for this message (idempotency key): a retry with the same
    /// `(room_id, sender_id, client_id)` returns the first message.
    pub client_id: Option<String>,
    /// The content.
    pub content: String,
    /// The kind.
    pub kind: MessageKind,
    /// When it was accepted.
    pub created_at: Timestamp,
}

/// A stored message. Serialized with snake_case keys; `seq` is the per-room sequence number
/// (gapless, strictly increasing, starting at 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// UUID v7.
    pub id: MessageId,
    /// The room.
    pub room_id: RoomId,
    /// Position in the room's stream: 1, 2, 3, …
    pub seq: u64,
    /// The client's idempotency key, if it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The sender.
    pub sender_id: UserId,
    /// The content; empty once deleted.
    pub content: String,
    /// TEXT / SYSTEM / FILE.
    #[serde(rename = "type")]
    pub kind: MessageKind,
    /// Delivery status.
    pub status: MessageStatus,
    /// When it was stored.
    #[serde(serialize_with = "crate::clock::serialize_rfc3339")]
    pub created_at: Timestamp,
    /// When it was last edited.
    #[serde(serialize_with = "crate::clock::serialize_rfc3339_opt")]
    pub edited_at: Option<Timestamp>,
    /// When it was deleted (tombstone).
    #[serde(serialize_with = "crate::clock::serialize_rfc3339_opt")]
    pub deleted_at: Option<Timestamp>,
}

impl Message {
    /// The message a store writes for `new` at position `seq`, with status `SENT`.
    pub fn from_new(new: NewMessage, seq: u64) -> Message {
        Message {
            id: new.id,
            room_id: new.room_id,
            seq,
            client_id: new.client_id,
            sender_id: new.sender_id,
            content: new.content,
            kind: new.kind,
            status: MessageStatus::Sent,
            created_at: new.created_at,
            edited_at: None,
            deleted_at: None,
        }
    }

    /// Whether it is a tombstone.
    pub fn is_deleted(&self) -> bool {
        self.deleted_at.is_some()
    }

    /// Move the status forward. Returns `Ok(false)` when already there (idempotent).
    ///
    /// # Errors
    /// [`Error::InvalidTransition`] for a backwards move, leaving `FAILED`, or failing a
    /// message already delivered.
    pub fn advance_status(&mut self, to: MessageStatus) -> Result<bool> {
        use MessageStatus::*;
        let from = self.status;
        if from == to {
            return Ok(false);
        }
        let ok = match (from, to) {
            (Failed, _) => false,
            (Pending | Sent, Failed) => true,
            (_, Failed) => false,
            (a, b) => b > a,
        };
        if !ok {
            return Err(Error::InvalidTransition {
                entity: "message",
                from: from.as_str().into(),
                to: to.as_str().into(),
            });
        }
        self.status = to;
        Ok(true)
    }

    /// Edit the content. Returns the `event.message.edit` event.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless `actor` is the sender, [`Error::InvalidTransition`] on a
    /// deleted message, content errors from [`Limits::check_content`].
    pub fn edit(
        &mut self,
        actor: &str,
        content: String,
        limits: &Limits,
        now: Timestamp,
    ) -> Result<Event> {
        if actor != self.sender_id {
            return Err(Error::forbidden("only the sender can edit a message"));
        }
        if self.is_deleted() {
            return Err(Error::InvalidTransition {
                entity: "message",
                from: "deleted".into(),
                to: "edited".into(),
            });
        }
        limits.check_content(&content)?;
        self.content = content;
        self.edited_at = Some(now);
        Ok(self.event(EventType::MESSAGE_EDIT, actor, now))
    }

    /// Delete as a tombstone. `actor_role` is the actor's role in the room (`None` if not a
    /// member). Returns the `event.message.delete` event.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless the actor is the sender (and still a member) or a room
    /// owner/admin; [`Error::InvalidTransition`] when already deleted.
    pub fn delete(
        &mut self,
        actor: &str,
        actor_role: Option<Role>,
        now: Timestamp,
    ) -> Result<Event> {
        let allowed = match actor_role {
            Some(Role::Owner | Role::Admin) => true,
            Some(Role::Member) => actor == self.sender_id,
            None => false,
        };
        if !allowed {
            return Err(Error::forbidden(
                "only the sender or a room owner/admin can delete a message",
            ));
        }
        if self.is_deleted() {
            return Err(Error::InvalidTransition {
                entity: "message",
                from: "deleted".into(),
                to: "deleted".into(),
            });
        }
        self.content.clear();
        self.deleted_at = Some(now);
        Ok(Event::at(
            EventType::MESSAGE_DELETE,
            serde_json::json!({ "message_id": self.id, "room_id": self.room_id, "seq": self.seq }),
            now,
        )
        .with_user(actor)
        .with_room(self.room_id.clone()))
    }

    /// An event of `event_type` whose `data` is this message.
    pub fn event(&self, event_type: EventType, actor: &str, now: Timestamp) -> Event {
        Event::at(event_type, self.to_data(), now)
            .with_user(actor)
            .with_room(self.room_id.clone())
    }

    /// The message as event data: its fields plus seed 000's `message_id` and `timestamp`,
    /// serialized once (keys in alphabetical order).
    pub fn to_data(&self) -> EventData {
        /// The message's own fields plus the two seed-000 aliases, borrowed.
        #[derive(Serialize)]
        struct MessageData<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            client_id: &'a Option<String>,
            content: &'a str,
            created_at: Rfc3339,
            deleted_at: Option<Rfc3339>,
            edited_at: Option<Rfc3339>,
            id: &'a str,
            message_id: &'a str,
            room_id: &'a str,
            sender_id: &'a str,
            seq: u64,
            status: MessageStatus,
            timestamp: Rfc3339,
            #[serde(rename = "type")]
            kind: MessageKind,
        }
        let data = MessageData {
            client_id: &self.client_id,
            content: &self.content,
            created_at: Rfc3339(self.created_at),
            deleted_at: self.deleted_at.map(Rfc3339),
            edited_at: self.edited_at.map(Rfc3339),
            id: &self.id,
            message_id: &self.id,
            room_id: &self.room_id,
            sender_id: &self.sender_id,
            seq: self.seq,
            status: self.status,
            timestamp: Rfc3339(self.created_at),
            kind: self.kind,
        };
        // Plain strings, numbers and timestamps: serializing cannot fail.
        EventData::from_serialize(&data).unwrap_or_default()
    }
}

/// One user's reaction to one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    /// The message.
    pub message_id: MessageId,
    /// Who reacted.
    pub user_id: UserId,
    /// The emoji (any short string without whitespace).
    pub emoji: String,
    /// When.
    pub created_at: Timestamp,
}

/// Reactions of one message grouped by emoji (seed 004's `reactions: [{emoji, users}]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReactionSet(BTreeMap<String, BTreeSet<UserId>>);

/// One entry of a [`ReactionSet`] summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReactionSummary {
    /// The emoji.
    pub emoji: String,
    /// Users who reacted with it, sorted.
    pub users: Vec<UserId>,
}

impl ReactionSet {
    /// Build from stored reactions.
    pub fn from_reactions<'a>(reactions: impl IntoIterator<Item = &'a Reaction>) -> Self {
        let mut s = ReactionSet::default();
        for r in reactions {
            s.add(&r.user_id, &r.emoji);
        }
        s
    }

    /// Add; returns `false` when `(user, emoji)` was already there.
    pub fn add(&mut self, user: &str, emoji: &str) -> bool {
        self.0
            .entry(emoji.to_owned())
            .or_default()
            .insert(user.to_owned())
    }

    /// Remove; returns `false` when `(user, emoji)` was not there.
    pub fn remove(&mut self, user: &str, emoji: &str) -> bool {
        let Some(users) = self.0.get_mut(emoji) else {
            return false;
        };
        let removed = users.remove(user);
        if users.is_empty() {
            self.0.remove(emoji);
        }
        removed
    }

    /// How many users reacted with `emoji`.
    pub fn count(&self, emoji: &str) -> usize {
        self.0.get(emoji).map_or(0, BTreeSet::len)
    }

    /// Grouped summary, sorted by emoji.
    pub fn summary(&self) -> Vec<ReactionSummary> {
        self.0
            .iter()
            .map(|(emoji, users)| ReactionSummary {
                emoji: emoji.clone(),
                users: users.iter().cloned().collect(),
            })
            .collect()
    }
}

/// How far one user has read in one room: every message with `seq <= self.seq` is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadPointer {
    /// The room.
    pub room_id: RoomId,
    /// The reader.
    pub user_id: UserId,
    /// The last read sequence number (0: nothing read).
    pub seq: u64,
    /// When it last moved.
    pub updated_at: Timestamp,
}

impl ReadPointer {
    /// Move forward to `seq`; returns `false` (and changes nothing) when `seq` is not ahead.
    pub fn advance(&mut self, seq: u64, now: Timestamp) -> bool {
        if seq <= self.seq {
            return false;
        }
        self.seq = seq;
        self.updated_at = now;
        true
    }
}

/// Validate a client message id (idempotency key): same alphabet as ids.
///
/// # Errors
/// [`Error::Invalid`] naming `client_id`.
pub fn validate_client_id(client_id: &str) -> Result<()> {
    validate_id("client_id", client_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn msg() -> Message {
        Message::from_new(
            NewMessage {
                id: "m1".into(),
                room_id: "r".into(),
                sender_id: "alice".into(),
                client_id: None,
                content: "hi".into(),
                kind: MessageKind::Text,
                created_at: Utc::now(),
            },
            1,
        )
    }

    /// The event data is the message's own JSON plus `message_id` and `timestamp`, byte for
    /// byte what serializing that as a `Value` gives (sorted keys), with and without the
    /// optional fields and with content that needs escaping.
    #[test]
    fn event_data_is_the_message_plus_seed_aliases() {
        let mut with_all = msg();
        with_all.client_id = Some("c-1".into());
        with_all.content = "line\n\"quoted\" é 📧".into();
        with_all.edited_at = Some(Utc::now());
        with_all.deleted_at = Some(Utc::now());
        for m in [msg(), with_all] {
            let mut want = serde_json::to_value(&m).expect("message");
            let obj = want.as_object_mut().expect("object");
            obj.insert("message_id".into(), m.id.clone().into());
            obj.insert(
                "timestamp".into(),
                serde_json::to_value(m.created_at).expect("ts"),
            );
            let data = m.to_data();
            assert_eq!(data.value(), &want);
            assert_eq!(data.json(), serde_json::to_string(&want).expect("text"));
        }
    }

    #[test]
    fn status_moves_forward_only() {
        let mut m = msg();
        assert_eq!(m.status, MessageStatus::Sent);
        assert!(m.advance_status(MessageStatus::Delivered).expect("fwd"));
        assert!(!m.advance_status(MessageStatus::Delivered).expect("same"));
        assert_eq!(
            m.advance_status(MessageStatus::Sent)
                .expect_err("back")
                .code(),
            "invalid_transition"
        );
        assert!(m.advance_status(MessageStatus::Failed).is_err());
        assert!(m.advance_status(MessageStatus::Read).expect("fwd"));
        let mut p = msg();
        p.status = MessageStatus::Pending;
        assert!(p.advance_status(MessageStatus::Failed).expect("fail"));
        assert!(p.advance_status(MessageStatus::Sent).is_err());
    }

    #[test]
    fn edit_and_delete_rights() {
        let l = Limits::default();
        let now = Utc::now();
        let mut m = msg();
        assert_eq!(
            m.edit("bob", "x".into(), &l, now)
                .expect_err("not sender")
                .code(),
            "forbidden"
        );
        let ev = m.edit("alice", "hello".into(), &l, now).expect("edit");
        assert_eq!(ev.event_type, EventType::MESSAGE_EDIT);
        assert_eq!(m.edited_at, Some(now));
        assert!(m.edit("alice", "".into(), &l, now).is_err());
        assert!(m.delete("bob", Some(Role::Member), now).is_err());
        assert!(m.delete("alice", None, now).is_err(), "left the room");
        m.delete("bob", Some(Role::Admin), now)
            .expect("admin deletes");
        assert!(m.is_deleted() && m.content.is_empty());
        assert!(m.delete("alice", Some(Role::Member), now).is_err());
        assert!(m.edit("alice", "again".into(), &l, now).is_err());
    }

    #[test]
    fn limits() {
        let l = Limits::default();
        assert_eq!(
            l.check_content(&"x".repeat(16 * 1024 + 1))
                .expect_err("long")
                .code(),
            "content_too_long"
        );
        assert!(l.check_content("  ").is_err());
        assert!(l.check_emoji("👍").is_ok());
        assert!(l.check_emoji("a b").is_err());
        assert!(l.check_emoji("").is_err());
        assert!(l.check_name("name", "a\u{0}b").is_err());
        assert_eq!(
            MessageKind::parse("text").expect("lower"),
            MessageKind::Text
        );
        assert!(MessageKind::parse("video").is_err());
    }
}
