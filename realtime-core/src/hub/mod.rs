//! The engine: the [`Hub`] holds the sessions, their channel subscriptions, the fan-out
//! that encodes each event once per dialect, presence and typing timers, the committer
//! and reconnect recovery. The chat operations (rooms, messages, reads, …) are in
//! [`crate::chat`], on top of it.
//!
//! | file | what it holds |
//! |---|---|
//! | `hub/mod.rs` | the `Hub` handle, its shared state, accessors, shutdown |
//! | `hub/builder.rs` | [`HubBuilder`] and the background tasks it starts |
//! | `hub/config.rs` | [`HubConfig`], [`CommitConfig`] |
//! | `hub/connect.rs` | [`ConnectOptions`], [`Hub::connect`] |
//! | `hub/sessions.rs` | the session registry, local subscriptions, disconnect, kick |
//! | `hub/channels.rs` | [`Hub::subscribe`] with rights checked, presence channels |
//! | `hub/fanout.rs` | publish, event routing to channels, delivery to local sessions |
//! | `hub/presence.rs` | status, typing, the tick, the cluster refresh |
//! | `hub/commit.rs` | batched message commits ([`PendingMessage`]) |
//! | `hub/recovery.rs` | [`Since`], [`Recovery`], [`Hub::resume_room`] |
//!
//! A host holds one `Hub` (cheap to clone) per process. Transports call
//! [`Hub::connect`] for each authenticated connection and write what the returned
//! [`Session`](crate::Session) yields; REST and WebSocket handlers both call the service operations
//! ([`Hub::send_message`], [`Hub::join_room`], …), which check the acting user's rights,
//! commit to the [`Store`], and publish events through the [`Broker`].
//!
//! Fan-out: every event the broker delivers is encoded once per registered dialect
//! ([`Encoder`]) and the same [`Bytes`](bytes::Bytes) is queued to each local session subscribed to the
//! channel — no per-recipient serialization, no waiting, no lock held across an await.
//!
//! Which channel an event goes to:
//!
//! | events | channel |
//! |---|---|
//! | `event.message.*`, `event.user.typing.*`, `event.room.*` | `room:{id}` |
//! | `event.room.create`, `event.room.join`, `event.room.member.add` | also `user:{id}` of each user added |
//! | `join`, `leave`, `member.add`, `member.remove` in a large room ([`HubConfig::large_room_members`]) | only `user:{id}` of the user concerned |
//! | `event.room.invite.create` | also `user:{invitee}` |
//! | `event.user.online/offline/status.change` | `presence` |
//! | `event.user.notification` (seed 001) | `user:{id}` |
//! | `event.system.maintenance/shutdown` | `system` |
//! | `event.system.broadcast` | `global` |
//!
//! A session gets each event once: the `user:{id}` copy of a room event is skipped for
//! sessions already holding that room's channel. Every node keeps its sessions'
//! subscriptions in step with membership by watching these events: additions seen on
//! `user:{id}` subscribe that user's local sessions to the room; `leave`, `member.remove`
//! and `delete` seen on `room:{id}` unsubscribe them (after they received the event).
//!
//! Every session is subscribed on connect to `user:{id}`, `system`, `global`, `presence`
//! (unless [`HubConfig::auto_subscribe_presence`] is off) and the `room:` channel of each room its user is a member of (up to
//! [`HubConfig::max_auto_rooms`]); joining or leaving a room updates the subscriptions of
//! all the user's sessions.

use crate::authorizer::ChannelAuthorizer;
use crate::broker::Broker;
use crate::channel::Channel;
use crate::clock::{Clock, SystemClock, Timestamp};
use crate::cluster::ClusterPresence;
use crate::encoder::Encoder;
use crate::event::{Event, EventType};
use crate::hub::commit::MayPost;
use crate::hub::commit::SendJob;
use crate::ids::UserId;
use crate::metrics::{EventMetrics, MetricsSnapshot};
use crate::presence::PresenceTracker;
use crate::router::EventRouter;
use crate::session::{CloseReason, DialectId, SessionId, SessionShared};
use crate::store::Store;
use crate::typing::TypingTracker;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

pub(crate) mod builder;
pub(crate) mod channels;
pub(crate) mod commit;
pub(crate) mod config;
pub(crate) mod connect;
pub(crate) mod fanout;
pub(crate) mod presence;
mod recovery;
pub(crate) mod sessions;

pub use builder::HubBuilder;
pub use channels::Subscribed;
pub use commit::PendingMessage;
pub use config::{CommitConfig, HubConfig};
pub use connect::{ConnectOptions, Join};
pub use recovery::{Recovery, Since};

pub(crate) struct SubEntry {
    pub(crate) shared: Arc<SessionShared>,
}

pub(crate) struct SessionEntry {
    pub(crate) shared: Arc<SessionShared>,
    pub(crate) channels: HashSet<Channel>,
    /// Subscription changes that membership events ordered for this session and that a
    /// task has yet to apply (usually none): at most one per channel, the latest event's.
    pub(crate) pending: Vec<PendingChange>,
}

/// A membership event's subscription change for one session, waiting for its task
/// ([`HubDelivery::deliver`]). A later change of the same (session, channel) replaces or
/// takes it back, so the task that runs late cannot undo what happened after the event.
pub(crate) struct PendingChange {
    pub(crate) channel: Channel,
    pub(crate) ticket: u64,
    pub(crate) add: bool,
}

impl Drop for SessionEntry {
    /// The Hub lets go of the session (disconnect, or the Hub itself dropped): its writer
    /// ends after the frames already queued.
    fn drop(&mut self) {
        self.shared.detach();
    }
}

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) broker: Arc<dyn Broker>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: HubConfig,
    pub(crate) router: Option<Arc<EventRouter>>,
    pub(crate) authorizer: Option<Arc<dyn ChannelAuthorizer>>,
    pub(crate) channel_presence: Arc<dyn crate::ChannelPresence>,
    pub(crate) cluster: Option<Arc<dyn ClusterPresence>>,
    /// Users seen on other nodes at the last cluster refresh.
    pub(crate) cluster_seen: Mutex<HashSet<UserId>>,
    pub(crate) dialects: RwLock<Vec<Arc<dyn Encoder>>>,
    /// Called for each published event ([`Hub::observe`]).
    pub(crate) observers: RwLock<Vec<Arc<dyn crate::PublishObserver>>>,
    pub(crate) sessions: RwLock<HashMap<SessionId, SessionEntry>>,
    /// The open sessions of each user; changed only under the `sessions` write lock.
    pub(crate) by_user: Mutex<HashMap<Arc<str>, Vec<SessionId>>>,
    pub(crate) subs: RwLock<HashMap<Channel, Vec<SubEntry>>>,
    /// Serializes local subscription changes so the broker subscribe/unsubscribe of a
    /// channel's first/last session cannot interleave.
    pub(crate) sub_lock: tokio::sync::Mutex<()>,
    pub(crate) presence: Mutex<PresenceTracker>,
    pub(crate) typing: Mutex<TypingTracker>,
    pub(crate) metrics: Arc<EventMetrics>,
    pub(crate) history: Mutex<VecDeque<Arc<Event>>>,
    /// This node's number in socket ids ([`crate::SocketId`]), drawn at random.
    pub(crate) node: u32,
    pub(crate) next_session: AtomicU64,
    /// Numbers the membership events' pending subscription changes ([`PendingChange`]).
    pub(crate) next_ticket: AtomicU64,
    /// The group-commit queue of [`Hub::submit_message`]; `None` without a runtime.
    pub(crate) commits: Option<tokio::sync::mpsc::Sender<SendJob>>,
    /// (room, user) pairs recently checked as members, for [`HubConfig::membership_cache_ttl`].
    pub(crate) may_post: Mutex<MayPost>,
    /// Whether a background renewal of `may_post` entries is running (at most one).
    pub(crate) renewing: std::sync::atomic::AtomicBool,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|p| p.into_inner())
}

/// The engine. Cheap to clone; all clones share state.
#[derive(Clone)]
pub struct Hub {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("sessions", &read(&self.inner.sessions).len())
            .finish()
    }
}

impl Hub {
    /// Start building a Hub over `store` and `broker`.
    pub fn builder(store: Arc<dyn Store>, broker: Arc<dyn Broker>) -> HubBuilder {
        HubBuilder {
            store,
            broker,
            clock: Arc::new(SystemClock),
            config: HubConfig::default(),
            router: None,
            authorizer: None,
            channel_presence: Arc::new(crate::MemoryChannelPresence::new()),
            cluster: None,
            metrics: Arc::default(),
        }
    }

    /// A Hub over `store` and `broker` with default settings.
    pub fn new(store: Arc<dyn Store>, broker: Arc<dyn Broker>) -> Hub {
        Self::builder(store, broker).build()
    }

    /// A Hub on [`crate::MemoryStore`] and [`crate::MemoryBroker`]: nothing else needed.
    pub fn in_memory() -> Hub {
        Self::new(
            Arc::new(crate::MemoryStore::new()),
            Arc::new(crate::MemoryBroker::new()),
        )
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The socket id of session `id` on this node.
    pub fn socket_id(&self, id: SessionId) -> crate::SocketId {
        crate::SocketId::new(self.inner.node, id)
    }

    /// The settings.
    pub fn config(&self) -> &HubConfig {
        &self.inner.config
    }

    /// The counters.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.metrics.snapshot()
    }

    /// The shared counters themselves.
    pub fn metrics_handle(&self) -> Arc<EventMetrics> {
        self.inner.metrics.clone()
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// Register a dialect's encoder; sessions connect with the returned id. Dialect 0
    /// (`DialectId::JSON`) is always [`JsonEncoder`](crate::JsonEncoder).
    pub fn register_dialect(&self, encoder: Arc<dyn Encoder>) -> DialectId {
        let mut d = write(&self.inner.dialects);
        d.push(encoder);
        DialectId(u16::try_from(d.len() - 1).unwrap_or(u16::MAX))
    }

    /// Call `observer` for every event published from now on, on the node that publishes
    /// it ([`crate::PublishObserver`]).
    pub fn observe(&self, observer: Arc<dyn crate::PublishObserver>) {
        write(&self.inner.observers).push(observer);
    }

    /// Open sessions on this node per dialect, by the dialect's [`Encoder::name`]
    /// (registered dialects with no session count 0).
    pub fn sessions_by_dialect(&self) -> Vec<(&'static str, usize)> {
        let dialects = read(&self.inner.dialects);
        let mut counts = vec![0usize; dialects.len()];
        for e in read(&self.inner.sessions).values() {
            if let Some(n) = counts.get_mut(e.shared.dialect.0 as usize) {
                *n += 1;
            }
        }
        dialects.iter().map(|d| d.name()).zip(counts).collect()
    }

    /// Number of open sessions on this node.
    pub fn session_count(&self) -> usize {
        read(&self.inner.sessions).len()
    }

    /// The newest `limit` events published by this node, newest first, whose type starts
    /// with `type_prefix` (seed 000's `GET /api/v1/events/history`).
    pub fn event_history(&self, type_prefix: Option<&str>, limit: usize) -> Vec<Arc<Event>> {
        lock(&self.inner.history)
            .iter()
            .rev()
            .filter(|e| type_prefix.is_none_or(|p| e.event_type.as_str().starts_with(p)))
            .take(limit)
            .cloned()
            .collect()
    }

    /// Announce shutdown to everyone (`event.system.shutdown` with `data.reason`), then
    /// close every local session with [`CloseReason::Shutdown`] once `drain` has passed or
    /// all queues are empty, whichever is first.
    pub async fn shutdown(&self, reason: &str, drain: Duration) {
        let ev = Event::at(
            EventType::SYSTEM_SHUTDOWN,
            serde_json::json!({ "reason": reason }),
            self.now(),
        );
        self.emit(vec![ev]).await;
        let deadline = tokio::time::Instant::now() + drain;
        while tokio::time::Instant::now() < deadline {
            let busy = read(&self.inner.sessions)
                .values()
                .any(|s| s.shared.queued_frames() > 0);
            if !busy {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let ids: Vec<SessionId> = read(&self.inner.sessions).keys().copied().collect();
        for id in ids {
            self.kick(id, CloseReason::Shutdown).await;
        }
    }
}
