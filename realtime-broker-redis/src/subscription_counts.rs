//! Subscription counts on Redis, shared by every node: one hash `{prefix}subs`, channel
//! name → count. A change is one Lua script, so two nodes changing one channel at once
//! cannot both see "first" or both see "empty". Like the presence channel hashes, a
//! node that crashes leaves its counts behind.

use crate::broker::RedisBroker;
use realtime_core::{Channel, Error, Result, SubscriptionCounts};

/// Adds ARGV[2] (1 or -1) to field ARGV[1] of hash KEYS[1], never below 0; a field at 0
/// is removed. Returns the count after.
const CHANGE: &str = r"
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
if n <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 0
end
return n
";

/// [`SubscriptionCounts`] on Redis. Made by [`RedisBroker::subscription_counts`].
#[derive(Debug, Clone)]
pub struct RedisSubscriptionCounts {
    broker: RedisBroker,
}

fn err(e: redis::RedisError) -> Error {
    Error::Broker(realtime_core::BackendError::from_source(e))
}

impl RedisSubscriptionCounts {
    pub(crate) fn new(broker: RedisBroker) -> Self {
        RedisSubscriptionCounts { broker }
    }

    fn key(&self) -> String {
        format!("{}subs", self.broker.shared.prefix)
    }

    async fn change(&self, channel: &Channel, by: i64) -> Result<u64> {
        let mut c = self.broker.publisher.clone();
        let n: i64 = redis::cmd("EVAL")
            .arg(CHANGE)
            .arg(1)
            .arg(self.key())
            .arg(channel.to_string())
            .arg(by)
            .query_async(&mut c)
            .await
            .map_err(err)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

#[async_trait::async_trait]
impl SubscriptionCounts for RedisSubscriptionCounts {
    async fn add(&self, channel: &Channel) -> Result<u64> {
        self.change(channel, 1).await
    }

    async fn remove(&self, channel: &Channel) -> Result<u64> {
        self.change(channel, -1).await
    }

    async fn count(&self, channel: &Channel) -> Result<u64> {
        let mut c = self.broker.publisher.clone();
        let n: Option<i64> = redis::cmd("HGET")
            .arg(self.key())
            .arg(channel.to_string())
            .query_async(&mut c)
            .await
            .map_err(err)?;
        Ok(n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
    }
}
