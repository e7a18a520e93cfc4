//! # realtime-core
//!
//! The transport-agnostic heart of the `realtime` crates: add chat and live events —
//! rooms, messages, presence, typing, notifications — to an axum or actix-web server.
//!
//! * [`Event`] / [`EventType`]: structured events `event.<level>.<action>` (seed 000).
//! * [`Channel`]: `room:{id}`, `user:{id}`, `presence`, `system`, `global` and named
//!   channels with Pusher visibility.
//! * State machines, pure and driven by a [`Clock`]: [`room`] (membership, roles,
//!   invites, direct rooms), [`presence`], [`typing`], [`message`] (status, edit, delete,
//!   reactions, read pointers).
//! * Traits: [`Publisher`], [`Subscriber`], [`Broker`], [`Store`], [`Authenticator`],
//!   and the [`EventRouter`] with middleware.
//! * [`Hub`] (feature `runtime`): sessions, subscriptions, fan-out that encodes each event
//!   once per dialect, bounded queues with slow-consumer disconnect, timers, and the
//!   service operations REST and WebSocket handlers call.
//!
//! ## Feature flags
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `runtime` | yes | [`Hub`], [`MemoryStore`], [`MemoryBroker`], [`RateLimit`] (tokio, governor) |
//! | `jwt` | yes | [`JwtAuthenticator`] (HS256 / RS256 via jsonwebtoken) |
//! | `metrics` | no | counters also sent to the `metrics` facade |
//! | `testing` | no | [`testing`]: the `Store` and `Broker` conformance suites |
//!
//! Without default features the crate builds with no tokio: the model, the state
//! machines and the traits only.
//!
//! ## A message between two sessions
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> realtime_core::Result<()> {
//! use realtime_core::{ConnectOptions, CreateRoom, Event, Hub, Identity, Outbound, SendMessage};
//!
//! let hub = Hub::in_memory();
//! let who = |id: &str| Identity { user_id: id.into(), username: Some(id.into()), claims: Default::default() };
//! let mut alice = hub.connect(ConnectOptions::chat(who("alice"))).await?;
//! let mut bob = hub.connect(ConnectOptions::chat(who("bob"))).await?;
//!
//! let room = hub.create_room("alice", CreateRoom {
//!     name: "General".into(), members: vec!["bob".into()], ..Default::default()
//! }).await?;
//! let sent = hub.send_message("alice", SendMessage {
//!     room_id: room.id.clone(), content: "Hello everyone!".into(),
//!     kind: Default::default(), client_id: None,
//! }).await?;
//! assert_eq!(sent.seq, 1);
//!
//! // Bob's session receives the event as JSON frames (the default dialect).
//! loop {
//!     let Some(Outbound::Frame(bytes)) = bob.try_recv() else { panic!("no message") };
//!     let ev = Event::from_json_bytes(&bytes)?;
//!     if ev.event_type.as_str() == "event.message.send" {
//!         assert_eq!(ev.data["content"], "Hello everyone!");
//!         break;
//!     }
//! }
//! # drop(alice); Ok(()) }
//! ```

pub mod auth;
pub mod authorizer;
pub mod broker;
pub mod channel;
pub mod channel_presence;
pub mod clock;
pub mod cluster;
pub mod encoder;
pub mod error;
pub mod event;
pub mod ids;
pub mod message;
pub mod metrics;
pub mod observer;
pub mod presence;
pub mod room;
pub mod router;
pub mod store;
pub mod subscription_counts;
pub mod typing;

#[cfg(feature = "runtime")]
pub mod chat;
#[cfg(feature = "runtime")]
pub mod hub;
#[cfg(feature = "runtime")]
pub mod memory;
#[cfg(feature = "runtime")]
pub mod session;
#[cfg(feature = "testing")]
pub mod testing;

pub use auth::{Authenticator, Identity};
#[cfg(feature = "jwt")]
pub use auth::{Claims, JwtAuthenticator};
pub use authorizer::{
    AuthRequest, Authorization, ChannelAuthorizer, Credentials, PresenceMember, PublishRequest,
};
pub use broker::{Broker, DeliveryHandler, Publisher, Subscriber};
pub use channel::{Channel, Visibility};
pub use channel_presence::{ChannelPresence, MemoryChannelPresence};
pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use cluster::{ClusterPresence, ClusterView};
pub use encoder::{Encoder, JsonEncoder};
pub use error::{BackendError, Error, Result};
pub use event::{Event, EventData, EventMetadata, EventType, MAX_APP_EVENT_NAME};
pub use ids::{MessageId, RoomId, SocketId, UserId, validate_id};
pub use message::{
    Limits, Message, MessageKind, MessageStatus, NewMessage, Reaction, ReactionSet, ReadPointer,
};
pub use metrics::{EventMetrics, MetricsSnapshot};
pub use observer::PublishObserver;
pub use presence::{PresenceConfig, PresenceTracker, UserStatus};
pub use room::{Invite, InviteState, Member, Role, Room, RoomKind, RoomPatch, direct_room_id};
#[cfg(feature = "runtime")]
pub use router::RateLimit;
pub use router::{EventRouter, MetricsLayer, Middleware, Next, Pattern, RequireUser};
pub use store::{EventQuery, Favorite, FavoriteKind, HistoryPage, Inserted, Store, User};
pub use subscription_counts::{MemorySubscriptionCounts, SubscriptionCounts};
pub use typing::{TypingConfig, TypingTracker};

#[cfg(feature = "runtime")]
pub use chat::{CreateRoom, Notification, SendMessage, SystemEvent};
#[cfg(feature = "runtime")]
pub use hub::{
    CommitConfig, ConnectOptions, Hub, HubBuilder, HubConfig, Join, PendingMessage, Recovery,
    Since, Subscribed,
};
#[cfg(feature = "runtime")]
pub use memory::{MemoryBroker, MemoryBus, MemoryStore};
#[cfg(feature = "runtime")]
pub use session::{CloseReason, DialectId, Outbound, Session, SessionId};
