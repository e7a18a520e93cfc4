//! [`HubBuilder`]: a Hub's store, broker, clock, settings and optional backends, and the
//! background tasks (committer, timers, cluster refresh) that [`HubBuilder::build`] starts
//! on the current tokio runtime.

use crate::authorizer::ChannelAuthorizer;
use crate::broker::Broker;
use crate::clock::Clock;
use crate::cluster::ClusterPresence;
use crate::encoder::JsonEncoder;
use crate::hub::Hub;
use crate::hub::HubConfig;
use crate::hub::Inner;
use crate::hub::commit::Linger;
use crate::hub::commit::commit_loop;
use crate::hub::fanout::HubDelivery;
use crate::metrics::EventMetrics;
use crate::presence::PresenceTracker;
use crate::router::EventRouter;
use crate::store::Store;
use crate::typing::TypingTracker;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};

/// Builds a [`Hub`].
pub struct HubBuilder {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) broker: Arc<dyn Broker>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: HubConfig,
    pub(crate) router: Option<Arc<EventRouter>>,
    pub(crate) authorizer: Option<Arc<dyn ChannelAuthorizer>>,
    pub(crate) channel_presence: Arc<dyn crate::ChannelPresence>,
    pub(crate) cluster: Option<Arc<dyn ClusterPresence>>,
    pub(crate) metrics: Arc<EventMetrics>,
}

impl HubBuilder {
    /// Share presence with the other nodes of a cluster through `p`.
    pub fn cluster_presence(mut self, p: Arc<dyn ClusterPresence>) -> Self {
        self.cluster = Some(p);
        self
    }
    /// Use this clock (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
    /// Use these settings.
    pub fn config(mut self, config: HubConfig) -> Self {
        self.config = config;
        self
    }
    /// Dispatch every published event through `router` too (on the publishing node).
    pub fn router(mut self, router: Arc<EventRouter>) -> Self {
        self.router = Some(router);
        self
    }
    /// Authorize private/presence named channels with `a`.
    pub fn channel_authorizer(mut self, a: Arc<dyn ChannelAuthorizer>) -> Self {
        self.authorizer = Some(a);
        self
    }
    /// Keep presence channel members in `p` (default: a [`crate::MemoryChannelPresence`]
    /// of this Hub's own; the nodes of a cluster share one).
    pub fn channel_presence(mut self, p: Arc<dyn crate::ChannelPresence>) -> Self {
        self.channel_presence = p;
        self
    }
    /// Share these counters (e.g. with a router's `MetricsLayer`).
    pub fn metrics(mut self, metrics: Arc<EventMetrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Build the Hub. When called inside a tokio runtime it spawns the presence/typing
    /// timer task (every [`HubConfig::tick_interval`]); the task ends when the last `Hub`
    /// clone is dropped. Without a runtime, call [`Hub::tick`] yourself.
    pub fn build(self) -> Hub {
        let batch = self.config.commit.batch.max(1);
        let runtime = tokio::runtime::Handle::try_current().ok();
        let (commits, commit_rx) = match &runtime {
            Some(_) => {
                let (tx, rx) = tokio::sync::mpsc::channel(batch * 8);
                (Some(tx), Some(rx))
            }
            None => (None, None),
        };
        let inner = Arc::new(Inner {
            presence: Mutex::new(PresenceTracker::new(self.config.presence)),
            typing: Mutex::new(TypingTracker::new(self.config.typing)),
            store: self.store,
            broker: self.broker,
            clock: self.clock,
            config: self.config,
            router: self.router,
            authorizer: self.authorizer,
            channel_presence: self.channel_presence,
            cluster: self.cluster,
            cluster_seen: Mutex::default(),
            dialects: RwLock::new(vec![Arc::new(JsonEncoder)]),
            observers: RwLock::new(Vec::new()),
            sessions: RwLock::default(),
            by_user: Mutex::default(),
            subs: RwLock::default(),
            sub_lock: tokio::sync::Mutex::new(()),
            metrics: self.metrics,
            history: Mutex::default(),
            // Below 10⁹, so that a socket id's node part has at most nine digits.
            node: u32::try_from(uuid::Uuid::new_v4().as_u128() % 1_000_000_000).unwrap_or_default(),
            next_session: AtomicU64::new(1),
            next_ticket: AtomicU64::new(1),
            commits,
            may_post: Mutex::default(),
            renewing: std::sync::atomic::AtomicBool::new(false),
        });
        let weak = Arc::downgrade(&inner);
        if let (Some(rt), Some(rx)) = (&runtime, commit_rx) {
            let linger = Linger {
                wait: inner.config.commit.linger,
                after: inner.config.commit.linger_after,
            };
            let passes = inner.config.commit.gather_passes;
            rt.spawn(commit_loop(weak.clone(), rx, batch, linger, passes));
        }
        inner
            .broker
            .set_handler(Arc::new(HubDelivery(weak.clone())));
        if let (Ok(rt), Some(cluster)) =
            (tokio::runtime::Handle::try_current(), inner.cluster.clone())
        {
            let weak = weak.clone();
            rt.spawn(async move {
                let mut interval = tokio::time::interval(cluster.refresh_interval());
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    interval.tick().await;
                    let Some(inner) = weak.upgrade() else { break };
                    Hub { inner }.cluster_tick().await;
                }
            });
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let every = inner.config.tick_interval;
            rt.spawn(async move {
                let mut interval = tokio::time::interval(every);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    interval.tick().await;
                    let Some(inner) = weak.upgrade() else { break };
                    Hub { inner }.tick().await;
                }
            });
        }
        Hub { inner }
    }
}
