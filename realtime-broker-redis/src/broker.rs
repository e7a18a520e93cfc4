//! The Redis broker.

use crate::presence::RedisPresence;
use realtime_core::broker::LocalSubscriptions;
use realtime_core::{Channel, DeliveryHandler, Error, Event, Publisher, Result, Subscriber};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{PushInfo, PushKind, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Settings. Defaults: prefix `realtime:`, 1 s response and connect timeouts, reconnect
/// backoff up to 2 s, presence TTL 30 s refreshed every 10 s.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// Prefix of every Redis channel and key this crate uses.
    pub prefix: String,
    /// How long a command may take before it fails.
    pub response_timeout: Duration,
    /// How long a connection attempt may take.
    pub connection_timeout: Duration,
    /// Longest wait between reconnection attempts.
    pub max_reconnect_delay: Duration,
    /// A node's presence entry expires this long after its last refresh: the bound within
    /// which a crashed node's users go offline.
    pub presence_ttl: Duration,
    /// How often a node refreshes its presence entry.
    pub presence_refresh: Duration,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            prefix: "realtime:".into(),
            response_timeout: Duration::from_secs(1),
            connection_timeout: Duration::from_secs(1),
            max_reconnect_delay: Duration::from_secs(2),
            presence_ttl: Duration::from_secs(30),
            presence_refresh: Duration::from_secs(10),
        }
    }
}

/// What [`RedisBroker::health`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerHealth {
    /// Whether the subscriber connection is up.
    pub connected: bool,
    /// How long it has been down, when it is.
    pub down_for: Option<Duration>,
    /// Outages seen since start.
    pub outages: u64,
    /// Length of the last finished outage, in milliseconds.
    pub last_outage_ms: u64,
}

pub(crate) struct Shared {
    pub(crate) node_id: String,
    pub(crate) prefix: String,
    local: LocalSubscriptions,
    down_since: Mutex<Option<Instant>>,
    outages: AtomicU64,
    last_outage_ms: AtomicU64,
}

impl Shared {
    fn on_push(&self, info: PushInfo) {
        match info.kind {
            PushKind::Message => {
                let [chan, payload] = info.data.as_slice() else {
                    return;
                };
                let (Value::BulkString(chan), Value::BulkString(payload)) = (chan, payload) else {
                    return;
                };
                self.on_message(chan, payload);
            }
            PushKind::Disconnection => {
                let mut d = self.down_since.lock().unwrap_or_else(|p| p.into_inner());
                if d.is_none() {
                    *d = Some(Instant::now());
                    self.outages.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(node = %self.node_id, "redis connection lost; reconnecting");
                }
            }
            PushKind::Subscribe => self.mark_up(),
            _ => {}
        }
    }

    fn on_message(&self, chan: &[u8], payload: &[u8]) {
        let Some(name) = chan.strip_prefix(self.prefix.as_bytes()) else {
            return;
        };
        let Ok(channel) = std::str::from_utf8(name)
            .map_err(drop)
            .and_then(|n| Channel::parse(n).map_err(drop))
        else {
            tracing::warn!("message on an unparseable channel dropped");
            return;
        };
        let Some(sep) = payload.iter().position(|b| *b == b'|') else {
            return;
        };
        if &payload[..sep] == self.node_id.as_bytes() {
            return; // our own publish, already delivered locally
        }
        let event = match Event::from_json_bytes(&payload[sep + 1..]) {
            Ok(e) => Arc::new(e),
            Err(e) => {
                tracing::warn!(error = %e, channel = %channel, "undecodable event dropped");
                return;
            }
        };
        self.local.deliver(&channel, event);
    }

    fn mark_up(&self) {
        let since = self
            .down_since
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(t) = since {
            let ms = u64::try_from(t.elapsed().as_millis())
                .unwrap_or(u64::MAX)
                .max(1);
            self.last_outage_ms.store(ms, Ordering::Relaxed);
            tracing::warn!(node = %self.node_id, down_ms = ms, "redis back; subscriptions restored");
        }
    }

    fn is_down(&self) -> bool {
        self.down_since
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }
}

/// A [`realtime_core::Broker`] on Redis pub/sub. Cheap to clone.
#[derive(Clone)]
pub struct RedisBroker {
    pub(crate) shared: Arc<Shared>,
    pub(crate) publisher: ConnectionManager,
    subscriber: ConnectionManager,
    pub(crate) config: RedisConfig,
}

impl std::fmt::Debug for RedisBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBroker")
            .field("node_id", &self.shared.node_id)
            .field("prefix", &self.shared.prefix)
            .finish()
    }
}

/// Pings the subscriber connection: every second while up (the pub/sub liveness probe),
/// and with backoff while down. A subscriber issues no commands of its own, and the
/// connection manager reconnects (and resubscribes) only when a command runs, so this is
/// what brings it back. Ends when the broker is dropped.
async fn keepalive(
    shared: std::sync::Weak<Shared>,
    mut conn: ConnectionManager,
    config: RedisConfig,
) {
    let mut delay = Duration::from_millis(100);
    loop {
        let down = match shared.upgrade() {
            Some(s) => s.is_down(),
            None => return,
        };
        tokio::time::sleep(if down { delay } else { Duration::from_secs(1) }).await;
        let ping = tokio::time::timeout(
            config.response_timeout + config.connection_timeout,
            redis::cmd("PING").query_async::<String>(&mut conn),
        )
        .await;
        let Some(s) = shared.upgrade() else { return };
        match ping {
            Ok(Ok(_)) => {
                s.mark_up();
                delay = Duration::from_millis(100);
            }
            _ => {
                let mut d = s.down_since.lock().unwrap_or_else(|p| p.into_inner());
                if d.is_none() {
                    *d = Some(Instant::now());
                    s.outages.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(node = %s.node_id, "redis unreachable; reconnecting");
                }
                delay = (delay * 2).min(config.max_reconnect_delay);
            }
        }
    }
}

fn broker_err(e: redis::RedisError) -> Error {
    Error::Broker(realtime_core::BackendError::from_source(e))
}

impl RedisBroker {
    /// Connect to `url` (`redis://host:port/db`); the subscriber connection uses RESP3.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming `redis_url` for a malformed URL; [`Error::Broker`] when
    /// Redis cannot be reached.
    pub async fn connect(url: &str, config: RedisConfig) -> Result<Self> {
        let invalid = |e: redis::RedisError| Error::Invalid {
            field: "redis_url",
            reason: e.to_string().into(),
        };
        let info = redis::IntoConnectionInfo::into_connection_info(url).map_err(invalid)?;
        let redis_settings = info
            .redis_settings()
            .clone()
            .set_protocol(redis::ProtocolVersion::RESP3);
        let info = info.set_redis_settings(redis_settings);
        let client = redis::Client::open(info).map_err(invalid)?;
        let shared = Arc::new(Shared {
            node_id: uuid::Uuid::new_v4().simple().to_string(),
            prefix: config.prefix.clone(),
            local: LocalSubscriptions::default(),
            down_since: Mutex::new(None),
            outages: AtomicU64::new(0),
            last_outage_ms: AtomicU64::new(0),
        });
        let base = ConnectionManagerConfig::new()
            .set_response_timeout(Some(config.response_timeout))
            .set_connection_timeout(Some(config.connection_timeout))
            .set_max_delay(config.max_reconnect_delay)
            .set_number_of_retries(2);
        let publisher = client
            .get_connection_manager_with_config(base.clone())
            .await
            .map_err(broker_err)?;
        let s = shared.clone();
        let sub_config = base
            .set_push_sender(move |info: PushInfo| {
                s.on_push(info);
                Ok::<(), redis::aio::SendError>(())
            })
            .set_automatic_resubscription();
        let subscriber = client
            .get_connection_manager_with_config(sub_config)
            .await
            .map_err(broker_err)?;
        tokio::spawn(keepalive(
            Arc::downgrade(&shared),
            subscriber.clone(),
            config.clone(),
        ));
        Ok(RedisBroker {
            shared,
            publisher,
            subscriber,
            config,
        })
    }

    /// This node's id (a UUID): what its envelopes carry.
    pub fn node_id(&self) -> &str {
        &self.shared.node_id
    }

    /// The cross-node presence registry sharing this broker's connection.
    pub fn presence(&self) -> RedisPresence {
        RedisPresence::new(self.clone())
    }

    /// The presence channel member lists, shared by every node on this Redis.
    pub fn channel_presence(&self) -> crate::RedisChannelPresence {
        crate::RedisChannelPresence::new(self.clone())
    }

    /// Subscription counts shared by every node on this Redis (the Pusher dialect's
    /// occupancy, `subscription_count` and user connection counts).
    pub fn subscription_counts(&self) -> crate::RedisSubscriptionCounts {
        crate::RedisSubscriptionCounts::new(self.clone())
    }

    /// Connection state and outage history.
    pub fn health(&self) -> BrokerHealth {
        let down = *self
            .shared
            .down_since
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        BrokerHealth {
            connected: down.is_none(),
            down_for: down.map(|t| t.elapsed()),
            outages: self.shared.outages.load(Ordering::Relaxed),
            last_outage_ms: self.shared.last_outage_ms.load(Ordering::Relaxed),
        }
    }

    fn redis_channel(&self, channel: &Channel) -> String {
        format!("{}{channel}", self.shared.prefix)
    }
}

#[async_trait::async_trait]
impl Publisher for RedisBroker {
    async fn publish(&self, channel: &Channel, event: Arc<Event>) -> Result<()> {
        let mut payload = Vec::with_capacity(self.shared.node_id.len() + 1 + 256);
        payload.extend_from_slice(self.shared.node_id.as_bytes());
        payload.push(b'|');
        payload.extend_from_slice(&event.to_json_bytes());
        // Local sessions first: they keep receiving while Redis is away.
        self.shared.local.deliver(channel, event);
        let mut conn = self.publisher.clone();
        let timeout = self.config.response_timeout + self.config.connection_timeout;
        let sent: redis::RedisResult<i64> = match tokio::time::timeout(
            timeout,
            redis::cmd("PUBLISH")
                .arg(self.redis_channel(channel))
                .arg(payload)
                .query_async(&mut conn),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => return Err(Error::Broker("redis publish timed out".into())),
        };
        sent.map(drop).map_err(broker_err)
    }
}

#[async_trait::async_trait]
impl Subscriber for RedisBroker {
    fn set_handler(&self, handler: Arc<dyn DeliveryHandler>) {
        self.shared.local.set_handler(handler);
    }

    async fn subscribe(&self, channel: &Channel) -> Result<()> {
        if !self.shared.local.add(channel) {
            return Ok(());
        }
        let mut conn = self.subscriber.clone();
        let r = tokio::time::timeout(
            self.config.response_timeout + self.config.connection_timeout,
            conn.subscribe(self.redis_channel(channel)),
        )
        .await;
        match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                self.shared.local.remove(channel);
                Err(broker_err(e))
            }
            Err(_) => {
                self.shared.local.remove(channel);
                Err(Error::Broker("redis subscribe timed out".into()))
            }
        }
    }

    async fn unsubscribe(&self, channel: &Channel) -> Result<()> {
        if !self.shared.local.remove(channel) {
            return Ok(());
        }
        let mut conn = self.subscriber.clone();
        match tokio::time::timeout(
            self.config.response_timeout + self.config.connection_timeout,
            conn.unsubscribe(self.redis_channel(channel)),
        )
        .await
        {
            Ok(r) => r.map_err(broker_err),
            Err(_) => Err(Error::Broker("redis unsubscribe timed out".into())),
        }
    }
}
