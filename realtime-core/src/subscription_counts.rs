//! [`SubscriptionCounts`]: how many subscriptions a channel has across every node, kept by
//! the dialect that wants them (the Pusher dialect counts its sockets per channel for
//! `channel_occupied` / `channel_vacated` webhooks, `subscription_count`, and a user's
//! connections for the user online/offline hook). [`MemorySubscriptionCounts`] serves
//! one node; `realtime_broker_redis::RedisSubscriptionCounts` shares the counts.

use crate::channel::Channel;
use crate::error::Result;
use std::collections::HashMap;
use std::sync::Mutex;

/// Counts per channel, shared by the nodes that use the same backend.
#[async_trait::async_trait]
pub trait SubscriptionCounts: Send + Sync + 'static {
    /// One more subscription of `channel`; returns the count after it (1: the channel was
    /// empty until now).
    async fn add(&self, channel: &Channel) -> Result<u64>;

    /// One subscription of `channel` fewer; returns the count after it (0: it is empty
    /// now). Never goes below 0.
    async fn remove(&self, channel: &Channel) -> Result<u64>;

    /// The count now.
    async fn count(&self, channel: &Channel) -> Result<u64>;
}

/// [`SubscriptionCounts`] in this process.
#[derive(Debug, Default)]
pub struct MemorySubscriptionCounts {
    counts: Mutex<HashMap<Channel, u64>>,
}

impl MemorySubscriptionCounts {
    /// Empty counts.
    pub fn new() -> MemorySubscriptionCounts {
        MemorySubscriptionCounts::default()
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<Channel, u64>> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait::async_trait]
impl SubscriptionCounts for MemorySubscriptionCounts {
    async fn add(&self, channel: &Channel) -> Result<u64> {
        let mut counts = self.counts();
        let n = counts.entry(channel.clone()).or_insert(0);
        *n += 1;
        Ok(*n)
    }

    async fn remove(&self, channel: &Channel) -> Result<u64> {
        let mut counts = self.counts();
        let Some(n) = counts.get_mut(channel) else {
            return Ok(0);
        };
        *n = n.saturating_sub(1);
        let left = *n;
        if left == 0 {
            counts.remove(channel);
        }
        Ok(left)
    }

    async fn count(&self, channel: &Channel) -> Result<u64> {
        Ok(self.counts().get(channel).copied().unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_go_up_and_down_never_below_zero() {
        let c = MemorySubscriptionCounts::new();
        let ch = Channel::parse("news").expect("channel");
        assert_eq!(c.add(&ch).await.ok(), Some(1));
        assert_eq!(c.add(&ch).await.ok(), Some(2));
        assert_eq!(c.remove(&ch).await.ok(), Some(1));
        assert_eq!(c.remove(&ch).await.ok(), Some(0));
        assert_eq!(c.remove(&ch).await.ok(), Some(0));
        assert_eq!(c.count(&ch).await.ok(), Some(0));
    }
}
