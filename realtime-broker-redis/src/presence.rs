//! Cross-node presence on Redis: each node keeps a hash `{prefix}presence:{node}` of its
//! present users (user → status) with a TTL, refreshed every
//! [`crate::RedisConfig::presence_refresh`], and its expiry time in the sorted set
//! `{prefix}nodes`. A user is online if any live node lists them; a crashed node stops
//! refreshing, its entry expires within [`crate::RedisConfig::presence_ttl`], and the
//! leader (the live node with the lowest id) announces its users offline.

use crate::broker::RedisBroker;
use realtime_core::{ClusterPresence, ClusterView, Error, Result, UserId, UserStatus};
use std::collections::HashSet;
use std::time::Duration;

/// [`ClusterPresence`] on Redis. Made by [`RedisBroker::presence`].
#[derive(Debug, Clone)]
pub struct RedisPresence {
    broker: RedisBroker,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn err(e: redis::RedisError) -> Error {
    Error::Broker(realtime_core::BackendError::from_source(e))
}

impl RedisPresence {
    pub(crate) fn new(broker: RedisBroker) -> Self {
        RedisPresence { broker }
    }

    fn key(&self, node: &str) -> String {
        format!("{}presence:{node}", self.broker.shared.prefix)
    }

    fn nodes_key(&self) -> String {
        format!("{}nodes", self.broker.shared.prefix)
    }

    /// Live nodes other than this one.
    async fn other_nodes(&self) -> Result<Vec<String>> {
        let mut c = self.broker.publisher.clone();
        let now = now_ms();
        let (_, nodes): ((), Vec<String>) = redis::pipe()
            .cmd("ZREMRANGEBYSCORE")
            .arg(self.nodes_key())
            .arg("-inf")
            .arg(now)
            .ignore()
            .cmd("ZRANGEBYSCORE")
            .arg(self.nodes_key())
            .arg(now)
            .arg("+inf")
            .query_async(&mut c)
            .await
            .map(|n: (Vec<String>,)| ((), n.0))
            .map_err(err)?;
        Ok(nodes
            .into_iter()
            .filter(|n| *n != self.broker.shared.node_id)
            .collect())
    }
}

#[async_trait::async_trait]
impl ClusterPresence for RedisPresence {
    async fn refresh(&self, users: &[(UserId, UserStatus)]) -> Result<()> {
        let ttl_ms = i64::try_from(self.broker.config.presence_ttl.as_millis()).unwrap_or(i64::MAX);
        let key = self.key(&self.broker.shared.node_id);
        let mut p = redis::pipe();
        p.atomic().cmd("DEL").arg(&key).ignore();
        if !users.is_empty() {
            let mut h = redis::cmd("HSET");
            h.arg(&key);
            for (u, s) in users {
                h.arg(u).arg(s.as_str());
            }
            p.add_command(h).ignore();
            p.cmd("PEXPIRE").arg(&key).arg(ttl_ms).ignore();
        }
        p.cmd("ZADD")
            .arg(self.nodes_key())
            .arg(now_ms() + ttl_ms)
            .arg(&self.broker.shared.node_id)
            .ignore();
        // The registry itself expires when no node refreshes it any more.
        p.cmd("PEXPIRE")
            .arg(self.nodes_key())
            .arg(ttl_ms.saturating_mul(2))
            .ignore();
        let mut c = self.broker.publisher.clone();
        p.query_async::<()>(&mut c).await.map_err(err)
    }

    async fn online_elsewhere(&self, user: &str) -> Result<bool> {
        let nodes = self.other_nodes().await?;
        if nodes.is_empty() {
            return Ok(false);
        }
        let mut p = redis::pipe();
        for n in &nodes {
            p.cmd("HEXISTS").arg(self.key(n)).arg(user);
        }
        let mut c = self.broker.publisher.clone();
        let found: Vec<bool> = p.query_async(&mut c).await.map_err(err)?;
        Ok(found.into_iter().any(|b| b))
    }

    async fn others(&self) -> Result<ClusterView> {
        let nodes = self.other_nodes().await?;
        let leader = nodes.iter().all(|n| self.broker.shared.node_id < *n);
        if nodes.is_empty() {
            return Ok(ClusterView {
                users: HashSet::new(),
                leader,
            });
        }
        let mut p = redis::pipe();
        for n in &nodes {
            p.cmd("HKEYS").arg(self.key(n));
        }
        let mut c = self.broker.publisher.clone();
        let lists: Vec<Vec<String>> = p.query_async(&mut c).await.map_err(err)?;
        Ok(ClusterView {
            users: lists.into_iter().flatten().collect(),
            leader,
        })
    }

    fn refresh_interval(&self) -> Duration {
        self.broker.config.presence_refresh
    }
}
