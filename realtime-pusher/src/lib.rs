//! # realtime-pusher
//!
//! Pusher Channels protocol 7 on a [`realtime_core::Hub`]: unchanged pusher-js 8 and
//! laravel-echo 2 clients connect to `/app/{key}`, and a Laravel backend's pusher driver
//! triggers events through the signed HTTP API. The Hub is shared with the other
//! dialects: an event on channel `availability` reaches its Pusher subscribers whether a
//! trigger, a Hub call or a native client published it, and a trigger reaches native
//! subscribers of that channel.
//!
//! | module | what it holds |
//! |---|---|
//! | [`app`] | [`App`] (id, key, secret) and [`AppLimits`] |
//! | [`sign`] | the HMAC-SHA256 signatures of channels, users and HTTP API requests |
//! | [`protocol`] | frames, error and close codes |
//! | [`dialect`] | [`PusherDialect`]: connections, subscriptions, client events |
//! | [`encoder`] | [`PusherEncoder`]: Hub events as Pusher frames, encoded once |
//! | [`authorizer`] | [`PusherAuthorizer`]: private and presence channels for the Hub |
//! | [`api`] | the HTTP API: `events`, `batch_events`, channel info, presence users |
//! | [`server`] | [`PusherServer`]: all of it as one axum router |
//! | [`state`] | what an app's connections share on a node: counts, cache channels, signed-in users, the control channel |
//! | [`webhooks`] | signed, batched, retried webhooks from a bounded queue |
//! | `commands` | subscribe, unsubscribe, sign-in and client events |
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use realtime_core::{Event, Hub, MemoryBroker, MemoryStore};
//! use realtime_pusher::{App, PusherAuthorizer, PusherServer};
//! use std::sync::Arc;
//!
//! let app = App::new("app-id", "app-key", "app-secret")?;
//! let hub = Hub::builder(Arc::new(MemoryStore::new()), Arc::new(MemoryBroker::new()))
//!     .channel_authorizer(Arc::new(PusherAuthorizer::new(Arc::new(app.clone()))))
//!     .build();
//! let pusher = PusherServer::builder().app(app, hub.clone()).build()?;
//! // What Echo's `.listen('AvailabilityUpdated', …)` receives, published from Rust:
//! let ev = Event::app("App\\Events\\AvailabilityUpdated", serde_json::json!({"data": {"session_id": 1}}))?;
//! hub.publish(&[realtime_core::Channel::parse("availability")?], ev).await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:6001").await?;
//! axum::serve(listener, pusher.router::<()>()).await?;
//! # Ok(()) }
//! ```
//!
//! Presence channels keep one member per user across that user's connections and across
//! nodes (the Hub's [`ChannelPresence`](realtime_core::ChannelPresence); with Redis,
//! `realtime_broker_redis::RedisChannelPresence`): `pusher_internal:member_added` and
//! `member_removed` go out exactly once per user.

pub mod api;
pub mod app;
pub mod authorizer;
mod commands;
pub mod dialect;
pub mod encoder;
pub mod protocol;
pub mod server;
pub mod sign;
pub mod state;
pub mod webhooks;

pub use app::{App, AppLimits, InvalidApp};
pub use authorizer::PusherAuthorizer;
pub use dialect::{PusherConn, PusherDialect};
pub use encoder::PusherEncoder;
pub use server::{PusherBuilder, PusherServer};
pub use webhooks::{WebhookConfig, WebhookEvent, Webhooks};
