//! Presence channel members on Redis, shared by every node: per channel, three hashes
//! under `{prefix}pc:{channel}:` — `sockets` (socket id → user id), `counts` (user id →
//! sockets on the channel) and `members` (user id → member JSON). A join and a leave are
//! each one Lua script, so two nodes changing the same user's sockets at once cannot
//! both see "first" or both see "last".
//!
//! A node that crashes leaves its sockets in these hashes: their users stay members of
//! the channels they were on until the keys are removed (a later version ties the
//! entries to the node's presence TTL).

use crate::broker::RedisBroker;
use realtime_core::{Channel, ChannelPresence, Error, PresenceMember, Result, SocketId};

/// Adds a socket; returns 1 when it is the user's first on the channel.
/// KEYS: sockets, counts, members. ARGV: socket id, user id, member JSON.
const JOIN: &str = r"
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
if redis.call('HINCRBY', KEYS[2], ARGV[2], 1) == 1 then
  redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
  return 1
end
return 0
";

/// Removes a socket; returns the member JSON when it was the user's last on the channel.
/// KEYS: sockets, counts, members. ARGV: socket id.
const LEAVE: &str = r"
local user = redis.call('HGET', KEYS[1], ARGV[1])
if not user then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('HINCRBY', KEYS[2], user, -1) > 0 then return false end
redis.call('HDEL', KEYS[2], user)
local member = redis.call('HGET', KEYS[3], user)
redis.call('HDEL', KEYS[3], user)
return member
";

/// [`ChannelPresence`] on Redis. Made by [`RedisBroker::channel_presence`].
#[derive(Debug, Clone)]
pub struct RedisChannelPresence {
    broker: RedisBroker,
}

fn err(e: redis::RedisError) -> Error {
    Error::Broker(realtime_core::BackendError::from_source(e))
}

impl RedisChannelPresence {
    pub(crate) fn new(broker: RedisBroker) -> Self {
        RedisChannelPresence { broker }
    }

    /// The channel's three keys: sockets, counts, members.
    fn keys(&self, channel: &Channel) -> [String; 3] {
        let base = format!("{}pc:{channel}:", self.broker.shared.prefix);
        [
            format!("{base}sockets"),
            format!("{base}counts"),
            format!("{base}members"),
        ]
    }
}

#[async_trait::async_trait]
impl ChannelPresence for RedisChannelPresence {
    async fn join(
        &self,
        channel: &Channel,
        socket: SocketId,
        member: &PresenceMember,
    ) -> Result<bool> {
        let json = serde_json::to_string(member)?;
        let mut c = self.broker.publisher.clone();
        let first: i64 = redis::cmd("EVAL")
            .arg(JOIN)
            .arg(3)
            .arg(&self.keys(channel))
            .arg(socket.to_string())
            .arg(&member.user_id)
            .arg(json)
            .query_async(&mut c)
            .await
            .map_err(err)?;
        Ok(first == 1)
    }

    async fn leave(&self, channel: &Channel, socket: SocketId) -> Result<Option<PresenceMember>> {
        let mut c = self.broker.publisher.clone();
        let gone: Option<String> = redis::cmd("EVAL")
            .arg(LEAVE)
            .arg(3)
            .arg(&self.keys(channel))
            .arg(socket.to_string())
            .query_async(&mut c)
            .await
            .map_err(err)?;
        gone.map(|json| serde_json::from_str(&json).map_err(Error::from))
            .transpose()
    }

    async fn members(&self, channel: &Channel) -> Result<Vec<PresenceMember>> {
        let [_, _, members] = self.keys(channel);
        let mut c = self.broker.publisher.clone();
        let values: Vec<String> = redis::cmd("HVALS")
            .arg(members)
            .query_async(&mut c)
            .await
            .map_err(err)?;
        let mut members = values
            .iter()
            .map(|v| serde_json::from_str(v).map_err(Error::from))
            .collect::<Result<Vec<PresenceMember>>>()?;
        members.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        Ok(members)
    }
}
