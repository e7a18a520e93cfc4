//! The `Store` trait: everything that outlives a connection.
//!
//! Implementations: [`crate::MemoryStore`] (feature `runtime`), and `realtime-store-sqlx`
//! for SQLite and PostgreSQL. Every implementation must pass the conformance suite in
//! [`crate::testing`] (feature `testing`).
//!
//! Contract highlights:
//! * [`Store::insert_message`] gives each room a gapless, strictly increasing `seq`
//!   (1, 2, 3, …) and is idempotent on `(room_id, sender_id, client_id)`.
//! * [`Store::history`] pages backwards: the `limit` messages just before `before`
//!   (a `seq`), returned oldest first, with `has_more` telling whether older ones exist.
//! * [`Store::messages_after`] returns what a reconnecting client missed, oldest first.
//! * Read pointers never move backwards.
//! * Deleting a room deletes its members, invites, messages, reactions and read pointers.

use crate::clock::Timestamp;
use crate::error::Result;
use crate::event::Event;
use crate::ids::{MessageId, RoomId, UserId};
use crate::message::{Message, NewMessage, Reaction};
use crate::presence::UserStatus;
use crate::room::{Invite, Member, Room};
use serde::{Deserialize, Serialize};

/// A user profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The id (the JWT `sub`).
    pub id: UserId,
    /// Unique login / handle.
    pub username: String,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Email address.
    #[serde(default)]
    pub email: Option<String>,
    /// Avatar URL.
    #[serde(default)]
    pub avatar: Option<String>,
    /// Last known status (written by the Hub's presence).
    #[serde(default)]
    pub status: UserStatus,
    /// When the user was last seen connected.
    #[serde(default)]
    pub last_seen: Option<Timestamp>,
    /// When created.
    pub created_at: Timestamp,
    /// Last profile change.
    pub updated_at: Timestamp,
    /// A password hash (PHC string, e.g. argon2) when the host keeps passwords here.
    /// Never serialized.
    #[serde(skip)]
    pub password_hash: Option<String>,
}

impl User {
    /// A user with `id` and `username`, everything else empty, stamped `now`.
    pub fn new(id: impl Into<UserId>, username: impl Into<String>, now: Timestamp) -> User {
        User {
            id: id.into(),
            username: username.into(),
            display_name: None,
            email: None,
            avatar: None,
            status: UserStatus::Offline,
            last_seen: None,
            created_at: now,
            updated_at: now,
            password_hash: None,
        }
    }
}

/// The result of [`Store::insert_message`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inserted {
    /// The stored message (the first one, on a retry).
    pub message: Message,
    /// `false` when a message with the same client id existed and nothing was stored.
    pub created: bool,
}

/// A page of history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryPage {
    /// Messages, oldest first.
    pub messages: Vec<Message>,
    /// Whether older messages exist before the first one.
    pub has_more: bool,
}

/// What to favorite (seed 004: `'ROOM' | 'USER'`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum FavoriteKind {
    /// A room.
    Room,
    /// A person.
    User,
}

impl FavoriteKind {
    /// `ROOM` or `USER`.
    pub fn as_str(self) -> &'static str {
        match self {
            FavoriteKind::Room => "ROOM",
            FavoriteKind::User => "USER",
        }
    }
}

/// A favorite of a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Favorite {
    /// Whose favorite.
    pub user_id: UserId,
    /// The room or user id.
    pub target_id: String,
    /// Room or user.
    #[serde(rename = "type")]
    pub kind: FavoriteKind,
    /// When added.
    pub created_at: Timestamp,
}

/// A filter over stored events, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    /// Only events whose type starts with this (`event.message.` or a full name).
    pub type_prefix: Option<String>,
    /// Only events of this room.
    pub room_id: Option<RoomId>,
    /// Only events of this acting user.
    pub user_id: Option<UserId>,
    /// At most this many (the store may cap it at 1000).
    pub limit: u32,
}

/// Persistent state of the chat. All methods are cancel-safe in the sense that a dropped
/// future leaves either the whole change or none of it.
///
/// Errors: [`crate::Error::NotFound`] and [`crate::Error::Conflict`] where documented,
/// [`crate::Error::Store`] for backend failures.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    // --- users ---
    /// Insert a user. [`crate::Error::Conflict`] when the id or username is taken.
    async fn create_user(&self, user: &User) -> Result<()>;
    /// Look up a user by id.
    async fn get_user(&self, id: &str) -> Result<Option<User>>;
    /// Look up a user by username.
    async fn get_user_by_username(&self, username: &str) -> Result<Option<User>>;
    /// Replace a user's profile fields (all but `created_at`). [`crate::Error::NotFound`],
    /// [`crate::Error::Conflict`] when the new username is taken.
    async fn update_user(&self, user: &User) -> Result<()>;
    /// Delete a user; `false` if there was none.
    async fn delete_user(&self, id: &str) -> Result<bool>;
    /// Users ordered by id, `offset`/`limit` paged.
    async fn list_users(&self, offset: u32, limit: u32) -> Result<Vec<User>>;
    /// Record a status and last-seen time. [`crate::Error::NotFound`].
    async fn set_user_status(
        &self,
        id: &str,
        status: UserStatus,
        last_seen: Timestamp,
    ) -> Result<()>;

    // --- rooms and members ---
    /// Insert a room with its first members, atomically. [`crate::Error::Conflict`] when the id exists.
    async fn create_room(&self, room: &Room, members: &[Member]) -> Result<()>;
    /// Look up a room.
    async fn get_room(&self, id: &str) -> Result<Option<Room>>;
    /// Replace a room's mutable fields. [`crate::Error::NotFound`].
    async fn update_room(&self, room: &Room) -> Result<()>;
    /// Delete a room and everything in it; `false` if there was none.
    async fn delete_room(&self, id: &str) -> Result<bool>;
    /// Rooms ordered by id; only those `member_of` is in when given, `offset`/`limit` paged.
    async fn list_rooms(
        &self,
        member_of: Option<&str>,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<Room>>;
    /// Add a member. [`crate::Error::Conflict`] when already one, [`crate::Error::NotFound`] for an unknown room.
    async fn add_member(&self, member: &Member) -> Result<()>;
    /// Look up a membership.
    async fn get_member(&self, room_id: &str, user_id: &str) -> Result<Option<Member>>;
    /// Which of `pairs` (room id, user id) are memberships: one `bool` per pair, in order.
    /// The Hub's group committer asks it once per batch for the senders whose membership
    /// it has not checked lately ([`crate::HubConfig::membership_cache_ttl`]). The default
    /// asks [`Store::get_member`] pair by pair; stores should answer in one query. An
    /// unknown room or user is simply `false`; errors: [`crate::Error::Store`] only.
    async fn are_members(&self, pairs: &[(&str, &str)]) -> Result<Vec<bool>> {
        let mut out = Vec::with_capacity(pairs.len());
        for (room, user) in pairs {
            out.push(self.get_member(room, user).await?.is_some());
        }
        Ok(out)
    }
    /// Remove a member; `false` if there was none.
    async fn remove_member(&self, room_id: &str, user_id: &str) -> Result<bool>;
    /// Members of a room ordered by `joined_at`, then user id.
    async fn list_members(&self, room_id: &str) -> Result<Vec<Member>>;
    /// How many members a room has (0 for an unknown room). The default counts
    /// [`Store::list_members`]; stores should override it with a `COUNT`.
    async fn count_members(&self, room_id: &str) -> Result<u64> {
        Ok(self.list_members(room_id).await?.len() as u64)
    }
    /// How many members a room has, counting no further than `limit`: `min(members,
    /// limit)` (0 for an unknown room). The Hub asks it on every join and leave to tell
    /// large rooms apart ([`crate::HubConfig::large_room_members`] as the limit), so its
    /// cost must not grow with the room: a full `COUNT` read every membership entry of a
    /// 10,000-member room for each of its joins. The default
    /// caps [`Store::count_members`]; stores should override it with a bounded count.
    async fn count_members_up_to(&self, room_id: &str, limit: u64) -> Result<u64> {
        Ok(self.count_members(room_id).await?.min(limit))
    }

    // --- invites ---
    /// Insert an invite. [`crate::Error::Conflict`] when the code is taken.
    async fn create_invite(&self, invite: &Invite) -> Result<()>;
    /// Look up an invite by code.
    async fn get_invite(&self, code: &str) -> Result<Option<Invite>>;
    /// Store an answered invite and, when given, the membership it created, atomically.
    /// [`crate::Error::NotFound`] for an unknown code, [`crate::Error::Conflict`] when the
    /// stored invite is no longer pending (a concurrent answer won).
    async fn answer_invite(&self, invite: &Invite, member: Option<&Member>) -> Result<()>;

    // --- messages ---
    /// Store a message at the room's next `seq`. Idempotent on
    /// `(room_id, sender_id, client_id)` when `client_id` is set. [`crate::Error::NotFound`]
    /// for an unknown room.
    async fn insert_message(&self, message: NewMessage) -> Result<Inserted>;
    /// Store several messages in one transaction, in order, each by the rules of
    /// [`Store::insert_message`] (a retried client id — also one repeated inside the batch —
    /// returns the first message). All or nothing: an unknown room or a taken id fails the
    /// whole batch and stores nothing. Returns one [`Inserted`] per input, in input order.
    async fn insert_messages(&self, batch: Vec<NewMessage>) -> Result<Vec<Inserted>>;
    /// Look up a message.
    async fn get_message(&self, id: &str) -> Result<Option<Message>>;
    /// Replace a message's `content`, `status`, `edited_at` and `deleted_at`. [`crate::Error::NotFound`].
    async fn update_message(&self, message: &Message) -> Result<()>;
    /// The `limit` messages with `seq < before` (or the newest when `None`), oldest first.
    async fn history(&self, room_id: &str, before: Option<u64>, limit: u32) -> Result<HistoryPage>;
    /// Up to `limit` messages with `seq > after`, oldest first.
    async fn messages_after(&self, room_id: &str, after: u64, limit: u32) -> Result<Vec<Message>>;
    /// The highest `seq` of a room (0 when empty).
    async fn latest_seq(&self, room_id: &str) -> Result<u64>;

    // --- reactions ---
    /// Add a reaction; `false` when `(message, user, emoji)` existed. [`crate::Error::NotFound`] for an unknown message.
    async fn add_reaction(&self, reaction: &Reaction) -> Result<bool>;
    /// Remove a reaction; `false` when there was none.
    async fn remove_reaction(&self, message_id: &str, user_id: &str, emoji: &str) -> Result<bool>;
    /// Reactions of a message ordered by `created_at`.
    async fn list_reactions(&self, message_id: &MessageId) -> Result<Vec<Reaction>>;

    // --- read pointers ---
    /// Move `user`'s read pointer in `room` to `seq` if that is ahead; returns the pointer
    /// after the call (never lower than before).
    async fn advance_read_pointer(
        &self,
        room_id: &str,
        user_id: &str,
        seq: u64,
        now: Timestamp,
    ) -> Result<u64>;
    /// The read pointer (0 when nothing read).
    async fn read_pointer(&self, room_id: &str, user_id: &str) -> Result<u64>;
    /// Messages after the read pointer, not sent by `user_id`, not deleted.
    async fn unread_count(&self, room_id: &str, user_id: &str) -> Result<u64>;

    // --- favorites ---
    /// Set (`on = true`) or clear a favorite; returns whether anything changed.
    async fn set_favorite(&self, favorite: &Favorite, on: bool) -> Result<bool>;
    /// Favorites of a user ordered by `created_at`.
    async fn list_favorites(&self, user_id: &str) -> Result<Vec<Favorite>>;

    // --- event history ---
    /// Append an event to the history.
    async fn append_event(&self, event: &Event) -> Result<()>;
    /// Events matching `query`, newest first.
    async fn list_events(&self, query: &EventQuery) -> Result<Vec<Event>>;
}
