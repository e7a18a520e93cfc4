//! Conformance suites for [`Store`] and [`Broker`](crate::Broker) backends (feature `testing`).
//!
//! Every backend crate runs the very same checks against itself:
//!
//! ```no_run
//! # async fn f() {
//! use std::sync::Arc;
//! realtime_core::testing::store_suite(Arc::new(realtime_core::MemoryStore::new())).await;
//! let bus = realtime_core::MemoryBus::new();
//! realtime_core::testing::broker_suite(Arc::new(bus.node()), Arc::new(bus.node())).await;
//! # }
//! ```
//!
//! The suites panic with a message naming the broken rule. They use fresh random ids, so
//! they can run repeatedly and in parallel against one database or Redis.

use crate::message::{MessageKind, NewMessage};
use crate::room::{Member, Role, Room, RoomKind};
use crate::store::Store;
use chrono::{DurationRound, TimeDelta, Utc};
use std::sync::Arc;

mod activity;
mod broker;
mod messages;
mod people;

pub use activity::{cascade, events, reactions_reads_favorites};
pub use broker::{Collector, broker_suite};
pub use messages::{batch_inserts, concurrent_sends, messages};
pub use people::{invites, rooms_and_members, users};

pub(crate) fn uid(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Now, truncated to milliseconds so every backend stores it exactly.
pub(crate) fn now() -> crate::Timestamp {
    Utc::now()
        .duration_trunc(TimeDelta::milliseconds(1))
        .unwrap_or_else(|_| Utc::now())
}

pub(crate) fn new_msg(
    room: &str,
    sender: &str,
    content: &str,
    client_id: Option<&str>,
) -> NewMessage {
    NewMessage {
        id: crate::ids::new_id(),
        room_id: room.to_owned(),
        sender_id: sender.to_owned(),
        client_id: client_id.map(str::to_owned),
        content: content.to_owned(),
        kind: MessageKind::Text,
        created_at: now(),
    }
}

pub(crate) fn room(id: &str, creator: &str) -> Room {
    let t = now();
    Room {
        id: id.to_owned(),
        name: format!("Room {id}"),
        kind: RoomKind::Group,
        description: Some("a room".into()),
        is_private: false,
        created_by: creator.to_owned(),
        created_at: t,
        updated_at: t,
        epoch: uuid::Uuid::new_v4().simple().to_string(),
    }
}

pub(crate) fn member(room: &str, user: &str, role: Role) -> Member {
    Member {
        room_id: room.to_owned(),
        user_id: user.to_owned(),
        role,
        joined_at: now(),
    }
}

/// Run every store check against `store`.
pub async fn store_suite(store: Arc<dyn Store>) {
    users(&*store).await;
    rooms_and_members(&*store).await;
    invites(&*store).await;
    messages(&*store).await;
    concurrent_sends(store.clone()).await;
    batch_inserts(&*store).await;
    reactions_reads_favorites(&*store).await;
    events(&*store).await;
    cascade(&*store).await;
}
