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

/// The local half every broker needs: which channels this node is subscribed to, and the
/// handler deliveries go to. Backends keep one and call [`LocalSubscriptions::deliver`]
/// for every event that reaches the node (their own publishes included).
#[derive(Default)]
pub struct LocalSubscriptions {
    handler: std::sync::RwLock<Option<Arc<dyn DeliveryHandler>>>,
    channels: std::sync::RwLock<std::collections::HashSet<Channel>>,
}

impl std::fmt::Debug for LocalSubscriptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalSubscriptions")
            .field("channels", &self.len())
            .finish()
    }
}

impl LocalSubscriptions {
    /// Set (or replace) the delivery handler.
    pub fn set_handler(&self, handler: Arc<dyn DeliveryHandler>) {
        *self.handler.write().unwrap_or_else(|p| p.into_inner()) = Some(handler);
    }

    /// Add `channel`; returns `false` when it was already there.
    pub fn add(&self, channel: &Channel) -> bool {
        self.channels
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(channel.clone())
    }

    /// Remove `channel`; returns `false` when it was not there.
    pub fn remove(&self, channel: &Channel) -> bool {
        self.channels
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(channel)
    }

    /// Whether this node is subscribed to `channel`.
    pub fn contains(&self, channel: &Channel) -> bool {
        self.channels
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(channel)
    }

    /// Number of subscribed channels.
    pub fn len(&self) -> usize {
        self.channels
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// Whether no channel is subscribed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Hand `event` to the handler if this node is subscribed to `channel`; otherwise drop
    /// it (nobody here wants it). Never blocks beyond the handler's own non-blocking work.
    pub fn deliver(&self, channel: &Channel, event: Arc<Event>) {
        if !self.contains(channel) {
            return;
        }
        let h = self
            .handler
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(h) = h {
            h.deliver(channel, event);
        }
    }
}
