//! [`PublishObserver`]: a hook called once for each event published through the Hub, on
//! the node that published it, with the channels it went to. Webhooks are built on it
//! (the Pusher dialect's `member_added` / `member_removed`): a presence change is
//! published once, by the node where it happened, so an observer sees it once in the
//! whole cluster.

use crate::channel::Channel;
use crate::event::Event;
use std::sync::Arc;

/// Sees every event the Hub publishes ([`crate::Hub::observe`]).
pub trait PublishObserver: Send + Sync + 'static {
    /// `event` is being published to `channels`. Called on the publishing task before the
    /// broker hand-off: return at once (queue work elsewhere, never wait).
    fn published(&self, event: &Arc<Event>, channels: &[Channel]);
}
