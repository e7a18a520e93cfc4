//! # realtime-broker-redis
//!
//! A [`realtime_core::Broker`] over Redis pub/sub, so several nodes (each with its own
//! [`realtime_core::Hub`]) behind a load balancer act as one, plus [`RedisPresence`], the
//! cross-node view of who is online, and [`RedisChannelPresence`], the members of each
//! presence channel.
//!
//! ```no_run
//! # async fn demo() -> realtime_core::Result<()> {
//! use realtime_broker_redis::{RedisBroker, RedisConfig};
//! use realtime_core::{Hub, MemoryStore};
//! use std::sync::Arc;
//!
//! let broker = RedisBroker::connect("redis://127.0.0.1:6379", RedisConfig::default()).await?;
//! let presence = broker.presence();
//! let members = broker.channel_presence();
//! let hub = Hub::builder(Arc::new(MemoryStore::new()), Arc::new(broker))
//!     .cluster_presence(Arc::new(presence))
//!     .channel_presence(Arc::new(members))
//!     .build();
//! # Ok(()) }
//! ```
//!
//! How it works:
//! * Channels (`room:{id}`, `user:{id}`, `presence`, `system`, `global`, named ones) map to
//!   Redis channels `{prefix}{channel}` (prefix default `realtime:`).
//! * One subscriber connection per node (RESP3, `redis::aio::ConnectionManager`) carries
//!   every channel. A channel is subscribed when it gains its first local session and
//!   unsubscribed when it loses its last (the Hub calls `subscribe`/`unsubscribe` exactly
//!   then). Messages go straight from the connection's push callback to the Hub's
//!   non-blocking fan-out: no queue in between.
//! * Each envelope carries the publishing node's id. A node delivers its own publishes
//!   locally at once and skips them when Redis echoes them back: once, not twice.
//! * Order is kept per channel: one publishing connection per node, and Redis delivers in
//!   publish order.
//! * When Redis goes away, the connections reconnect with exponential backoff (up to
//!   [`RedisConfig::max_reconnect_delay`]) and the subscriber resubscribes to every channel
//!   it held. Publishing meanwhile fails within [`RedisConfig::response_timeout`] with
//!   [`realtime_core::Error::Broker`] — never hangs, never panics — and local delivery
//!   goes on. The outage's length is logged and kept ([`RedisBroker::health`]).

mod broker;
mod channel_presence;
mod presence;
mod subscription_counts;

pub use broker::{BrokerHealth, RedisBroker, RedisConfig};
pub use channel_presence::RedisChannelPresence;
pub use presence::RedisPresence;
pub use subscription_counts::RedisSubscriptionCounts;
