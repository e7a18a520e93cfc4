//! The chat layer: rooms, members, invites, direct rooms, messages, reactions, reads,
//! notifications and system broadcasts (seed 000), on top of the engine in [`crate::hub`].
//!
//! Each operation takes the acting user's id, checks their rights with the state
//! machines in [`crate::room`] and [`crate::message`], commits to the [`crate::Store`] and
//! publishes the resulting events through the engine's fan-out. A host that needs only
//! channels and events (a Pusher or Socket.IO app) never calls these.

use crate::ids::{RoomId, UserId};
use crate::message::MessageKind;
use serde::{Deserialize, Serialize};

mod invites;
mod messages;
mod notify;
mod reads;
mod rooms;

/// Seed 001's notification: `{ type, title, message, data?, timestamp }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// `info`, `success`, `warning` or `error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Title.
    pub title: String,
    /// Body text.
    pub message: String,
    /// Any extra payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

/// A system event kind (seed 000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SystemEvent {
    /// `event.system.maintenance` on `system`.
    Maintenance,
    /// `event.system.shutdown` on `system`.
    Shutdown,
    /// `event.system.broadcast` on `global`.
    Broadcast,
}

/// Most users [`CreateRoom::members`] may list: each is looked up and added in the
/// creating request.
pub const MAX_INITIAL_MEMBERS: usize = 1000;

/// What to create with [`Hub::create_room`](crate::Hub::create_room).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateRoom {
    /// The id; a UUID v7 when `None`.
    #[serde(default)]
    pub id: Option<RoomId>,
    /// Display name.
    pub name: String,
    /// Optional description.
    #[serde(default)]
    pub description: Option<String>,
    /// Invite-only.
    #[serde(default)]
    pub is_private: bool,
    /// Other users to add as members right away (seed 004's `participants`; at most
    /// [`MAX_INITIAL_MEMBERS`]).
    #[serde(default)]
    pub members: Vec<UserId>,
}

impl CreateRoom {
    /// A public group room called `name`, with a generated id and no other member.
    pub fn named(name: impl Into<String>) -> Self {
        CreateRoom {
            name: name.into(),
            ..CreateRoom::default()
        }
    }
}

/// What to send with [`Hub::send_message`](crate::Hub::send_message).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendMessage {
    /// The room.
    pub room_id: RoomId,
    /// The content.
    pub content: String,
    /// TEXT (default), SYSTEM or FILE.
    #[serde(default, rename = "type")]
    pub kind: MessageKind,
    /// The client's idempotency key.
    #[serde(default)]
    pub client_id: Option<String>,
}

impl SendMessage {
    /// A text message to `room_id`, with no idempotency key.
    pub fn text(room_id: impl Into<RoomId>, content: impl Into<String>) -> Self {
        SendMessage {
            room_id: room_id.into(),
            content: content.into(),
            kind: MessageKind::Text,
            client_id: None,
        }
    }
}
