//! Publishing and subscribing across nodes: `Publisher`, `Subscriber`, `Broker`.
//!
//! A [`Broker`] carries `(channel, event)` pairs between the Hubs of all nodes (seed 000:
//! EventPublisher / EventSubscriber over Redis channels). Contract, checked by the
//! conformance suite in [`crate::testing`]:
//!
//! * A node receives an event on a channel only while it is subscribed to it, exactly
//!   once — including the node's own publishes, which are delivered locally without a
//!   round trip.
//! * Order is preserved per channel and publisher.
//! * `publish` never hangs: when the backend is away it returns [`crate::Error::Broker`].
//!
//! Delivery goes to one [`DeliveryHandler`] per broker (the Hub), which must not block.

use crate::channel::Channel;
use crate::error::Result;
use crate::event::Event;
use std::sync::Arc;

/// Receives events a broker delivers. Called on the broker's task; must not block.
pub trait DeliveryHandler: Send + Sync + 'static {
    /// `event` arrived on `channel`.
    fn deliver(&self, channel: &Channel, event: Arc<Event>);
}

/// Publishes events to channels (seed 000's EventPublisher).
#[async_trait::async_trait]
pub trait Publisher: Send + Sync + 'static {
    /// Publish `event` on `channel` to every subscribed node, this one included.
    ///
    /// # Errors
    /// [`crate::Error::Broker`] when the backend cannot take it now.
    async fn publish(&self, channel: &Channel, event: Arc<Event>) -> Result<()>;
}

/// Subscribes this node to channels (seed 000's EventSubscriber).
#[async_trait::async_trait]
pub trait Subscriber: Send + Sync + 'static {
    /// Set where deliveries go. A later call replaces the handler.
    fn set_handler(&self, handler: Arc<dyn DeliveryHandler>);
    /// Start receiving `channel`. Idempotent.
    ///
    /// # Errors
    /// [`crate::Error::Broker`] when the backend cannot take it now.
    async fn subscribe(&self, channel: &Channel) -> Result<()>;
    /// Stop receiving `channel`. Idempotent.
    ///
    /// # Errors
    /// [`crate::Error::Broker`] when the backend cannot take it now.
    async fn unsubscribe(&self, channel: &Channel) -> Result<()>;
}

/// Both halves.
pub trait Broker: Publisher + Subscriber {}

impl<T: Publisher + Subscriber> Broker for T {}
