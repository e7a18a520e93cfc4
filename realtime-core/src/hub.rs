//! The `Hub`: sessions, subscriptions, fan-out, timers and the chat service operations.
//!
//! A host holds one `Hub` (cheap to clone) per process. Transports call
//! [`Hub::connect`] for each authenticated connection and write what the returned
//! [`Session`] yields; REST and WebSocket handlers both call the service operations
//! ([`Hub::send_message`], [`Hub::join_room`], …), which check the acting user's rights,
//! commit to the [`Store`], and publish events through the [`Broker`].
//!
//! Fan-out: every event the broker delivers is encoded once per registered dialect
//! ([`Encoder`]) and the same [`Bytes`] is queued to each local session subscribed to the
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

use crate::auth::Identity;
use crate::broker::{Broker, DeliveryHandler};
use crate::channel::{Channel, Visibility};
use crate::clock::{Clock, SystemClock, Timestamp};
use crate::error::{Error, Result};
use crate::event::{Event, EventType};
use crate::ids::{RoomId, UserId, new_id, validate_id};
use crate::message::{
    Limits, Message, MessageKind, MessageStatus, NewMessage, Reaction, validate_client_id,
};
use crate::metrics::{EventMetrics, MetricsSnapshot};
use crate::presence::{PresenceConfig, PresenceTracker, UserStatus};
use crate::room::{Invite, Member, Role, Room, RoomPatch, direct_room_id};
use crate::router::EventRouter;
use crate::session::{CloseReason, DialectId, Push, Session, SessionId, SessionShared};
use crate::store::{HistoryPage, Inserted, Store, User};
use crate::typing::{TypingConfig, TypingTracker};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

#[path = "recovery.rs"]
mod recovery;
pub use recovery::{Recovery, Since};

/// Encodes events into one wire dialect's frames. Supplied by transports; core knows no
/// frame format. Return `None` for events the dialect does not carry.
pub trait Encoder: Send + Sync + 'static {
    /// The frame for `event` published on `channel`.
    fn encode(&self, channel: &Channel, event: &Event) -> Option<Bytes>;

    /// The dialect's name, for metrics and logs (`native`, `pusher`, `socketio`; default
    /// `json`).
    fn name(&self) -> &'static str {
        "json"
    }
}

/// The identity encoder: the event's JSON (seed 000's Event Data Structure) as is.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonEncoder;

impl Encoder for JsonEncoder {
    fn encode(&self, _channel: &Channel, event: &Event) -> Option<Bytes> {
        Some(Bytes::from(event.to_json_bytes()))
    }
}

/// Decides who may subscribe to private and presence named channels (`private-…`,
/// `presence-…`; seed 003's `/api/broadcasting/auth`). Without one, such channels are refused.
#[async_trait::async_trait]
pub trait ChannelAuthorizer: Send + Sync + 'static {
    /// Whether `user_id` may subscribe to `channel`.
    ///
    /// # Errors
    /// Any error refuses the subscription with that error.
    async fn authorize(&self, user_id: &str, channel: &Channel) -> Result<bool>;
}

/// Who is present on the other nodes of a cluster (implemented by
/// `realtime-broker-redis`). With one, the Hub emits `event.user.online`/`offline` only
/// for cluster-wide changes, refreshes this node's entry every
/// [`ClusterPresence::refresh_interval`], and — on one node only, the one `others`
/// names leader — announces `offline` for the users of a node whose entry expired.
#[async_trait::async_trait]
pub trait ClusterPresence: Send + Sync + 'static {
    /// Record this node's present users (replacing its previous entry) with a TTL.
    ///
    /// # Errors
    /// Backend errors ([`Error::Broker`]).
    async fn refresh(&self, users: &[(UserId, UserStatus)]) -> Result<()>;
    /// Whether `user` is present on another live node.
    ///
    /// # Errors
    /// Backend errors.
    async fn online_elsewhere(&self, user: &str) -> Result<bool>;
    /// Users present on the other live nodes, and whether this node is the leader that
    /// announces the users of expired nodes.
    ///
    /// # Errors
    /// Backend errors.
    async fn others(&self) -> Result<ClusterView>;
    /// How often to call [`ClusterPresence::refresh`].
    fn refresh_interval(&self) -> Duration;
}

/// What [`ClusterPresence::others`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterView {
    /// Users present on other live nodes.
    pub users: HashSet<UserId>,
    /// Whether this node announces the users of expired nodes.
    pub leader: bool,
}

/// Hub settings. All have defaults that suit a chat server.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Size limits for content, names and emoji.
    pub limits: Limits,
    /// Presence grace period.
    pub presence: PresenceConfig,
    /// Typing TTL.
    pub typing: TypingConfig,
    /// Frames a session may have queued (default 1024).
    pub session_queue_frames: usize,
    /// Bytes a session may have queued (default 1 MiB, as Centrifuge).
    pub session_queue_bytes: usize,
    /// Largest event [`Hub::publish`] accepts, in bytes of its JSON (default 256 KiB;
    /// never more than [`session_queue_bytes`](Self::session_queue_bytes) counts). A larger
    /// event is refused with [`Error::EventTooLarge`] instead of filling every receiving
    /// session's queue, which would close them all as slow consumers. Events the Hub
    /// builds itself stay far below it: their user-supplied fields are bounded by
    /// [`Limits`].
    pub max_event_bytes: usize,
    /// Sessions one user may have open on this node (default 32).
    pub max_sessions_per_user: usize,
    /// How long an invite stays valid (default 7 days).
    pub invite_ttl: Duration,
    /// Events kept in memory for [`Hub::event_history`] (default 1000).
    pub event_history: usize,
    /// Also append every published event to [`Store::append_event`] (default false).
    pub persist_events: bool,
    /// Most messages [`Hub::recover`] replays; beyond it the client must reload (default 1000).
    pub recovery_limit: u32,
    /// Largest history page (default 100).
    pub max_page: u32,
    /// Rooms subscribed automatically on connect (default 1000).
    pub max_auto_rooms: u32,
    /// How often presence and typing timers run (default 250 ms).
    pub tick_interval: Duration,
    /// Subscribe every new session to the app-wide `presence` channel (default `true`, as
    /// seed 000's Hub, which pushes every `user_status_change` to every client). Each
    /// status change then costs one frame per connected session, so a connect storm of N
    /// users costs N² frames: above a few thousand concurrent users turn it off and let the
    /// clients that show presence `subscribe` to `presence` themselves.
    pub auto_subscribe_presence: bool,
    /// Rooms with at least this many members are *large* (default 1,000): `join`, `leave`,
    /// `member.add` and `member.remove` there go to the `user:{id}` channel of the user
    /// concerned only, not to every member (a 10,000-member room would otherwise send
    /// 10,000 frames per join). Members read the list with [`Hub::list_members`]. As
    /// Telegram hides join notices in big groups and Discord's `large_threshold`.
    pub large_room_members: u64,
    /// How sends are grouped into store transactions (the group commit). The defaults
    /// need no tuning.
    pub commit: CommitConfig,
    /// How long this node trusts a membership it checked for sending, or read in a join
    /// (default 2 s; zero: ask the store every time). Leaves, removals and deletions seen
    /// by this node end it at once; one done on another node and not seen here ends it
    /// within this time.
    /// A membership in use past half this time is checked again in the background, so a
    /// sender who keeps posting never waits for the store.
    pub membership_cache_ttl: Duration,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            limits: Limits::default(),
            presence: PresenceConfig::default(),
            typing: TypingConfig::default(),
            session_queue_frames: 1024,
            session_queue_bytes: 1 << 20,
            max_event_bytes: 256 * 1024,
            max_sessions_per_user: 32,
            invite_ttl: Duration::from_secs(7 * 24 * 3600),
            event_history: 1000,
            persist_events: false,
            recovery_limit: 1000,
            max_page: 100,
            max_auto_rooms: 1000,
            tick_interval: Duration::from_millis(250),
            auto_subscribe_presence: true,
            large_room_members: 1000,
            commit: CommitConfig::default(),
            membership_cache_ttl: Duration::from_secs(2),
        }
    }
}

/// The group commit: concurrent sends are stored in one transaction and fanned out in one
/// pass ([`HubConfig::commit`]).
#[derive(Debug, Clone)]
pub struct CommitConfig {
    /// Most messages committed to the store in one transaction (default 256). Sends that
    /// arrive while a commit is running wait for the next one and go in together (group
    /// commit); at most 8× this many wait, then senders wait for room.
    pub batch: usize,
    /// Group-commit linger (default zero: off). When a commit would start with at least
    /// [`linger_after`](Self::linger_after) sends waiting, the committer
    /// first waits up to this long for more (or until [`batch`](Self::batch)
    /// sends wait), so one store transaction and one fan-out pass carry more messages. As
    /// Kafka's `linger.ms` and PostgreSQL's `commit_delay`: it trades latency for CPU. On
    /// the benchmark machine (W2, 1,000 clients in rooms of
    /// 10, SQLite) 1 ms cut the server's CPU per delivery by 29–34 % at 5 msg/s per client
    /// and by 15–16 % at 10, and raised the median latency from ~1 ms to 3–4.6 ms (the
    /// runtime's timer fires on a millisecond tick, after a pass of its run queue). Worth
    /// it when the server's CPU, not latency, is what runs out; a lone send never waits
    /// (see `linger_after`). Every send in a lingering batch waits with it, so keep
    /// it to a few milliseconds.
    pub linger: Duration,
    /// Sends that must be waiting when a commit starts for [`linger`](Self::linger)
    /// to apply (default 4; at least 1): under light load commits are small and go at
    /// once, so only a loaded node lingers.
    pub linger_after: usize,
    /// Passes of the event loop a commit may wait for more sends (default 8; zero: off).
    /// Before each commit the committer yields to the runtime, which runs every task ready
    /// to run, polls the sockets once and runs the readers that have data; sends they
    /// submit join the batch. It yields again while a pass added sends, up to this many
    /// times. No timer: an idle node commits a lone send after one pass (microseconds),
    /// and a busy one gathers what its sockets already hold — fewer, larger store
    /// transactions and fan-out passes. A pass slower than 1 ms (thousands of busy
    /// connections, as in one big room's fan-out, where waiting for it only delays the
    /// rare commit) turns gathering off for the next 64 commits. On the benchmark machine
    /// (W2, 1,000 clients in rooms of 10, SQLite) 8 passes
    /// raised messages per commit by ~40 % at 5 and 10 msg/s per client and cut the
    /// server's CPU per delivery by 11–15 % at 5 msg/s and 0–10 % at 10, with no rise in
    /// median latency.
    pub gather_passes: usize,
}

impl Default for CommitConfig {
    fn default() -> Self {
        CommitConfig {
            batch: 256,
            linger: Duration::ZERO,
            linger_after: 4,
            gather_passes: 8,
        }
    }
}

/// Who performs a privileged operation ([`Hub::notify_user`], [`Hub::broadcast_system`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// Trusted server-side code (the host decided the caller may do this).
    System,
    /// An end user; refused for privileged operations.
    User(UserId),
}

/// Seed 001's notification: `{ type, title, message, data?, timestamp }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// `info`, `success`, `warning` or `error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Title.
    pub title: String,
    /// Body text.
    pub message: String,
    /// Any extra payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

/// A system event kind (seed 000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SystemEvent {
    /// `event.system.maintenance` on `system`.
    Maintenance,
    /// `event.system.shutdown` on `system`.
    Shutdown,
    /// `event.system.broadcast` on `global`.
    Broadcast,
}

/// Most users [`CreateRoom::members`] may list: each is looked up and added in the
/// creating request.
pub const MAX_INITIAL_MEMBERS: usize = 1000;

/// What to create with [`Hub::create_room`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateRoom {
    /// The id; a UUID v7 when `None`.
    #[serde(default)]
    pub id: Option<RoomId>,
    /// Display name.
    pub name: String,
    /// Optional description.
    #[serde(default)]
    pub description: Option<String>,
    /// Invite-only.
    #[serde(default)]
    pub is_private: bool,
    /// Other users to add as members right away (seed 004's `participants`; at most
    /// [`MAX_INITIAL_MEMBERS`]).
    #[serde(default)]
    pub members: Vec<UserId>,
}

impl CreateRoom {
    /// A public group room called `name`, with a generated id and no other member.
    pub fn named(name: impl Into<String>) -> Self {
        CreateRoom {
            name: name.into(),
            ..CreateRoom::default()
        }
    }
}

/// What to send with [`Hub::send_message`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendMessage {
    /// The room.
    pub room_id: RoomId,
    /// The content.
    pub content: String,
    /// TEXT (default), SYSTEM or FILE.
    #[serde(default, rename = "type")]
    pub kind: MessageKind,
    /// The client's idempotency key.
    #[serde(default)]
    pub client_id: Option<String>,
}

impl SendMessage {
    /// A text message to `room_id`, with no idempotency key.
    pub fn text(room_id: impl Into<RoomId>, content: impl Into<String>) -> Self {
        SendMessage {
            room_id: room_id.into(),
            content: content.into(),
            kind: MessageKind::Text,
            client_id: None,
        }
    }
}

/// How [`Hub::connect_with`] opens a session.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// A free-form device label kept by presence.
    pub device: Option<String>,
    /// Subscribe the session to its user's rooms now (default `true`). A client that will
    /// recover each room ([`Hub::resume_room`]) says `false`: a room's live messages must
    /// not reach it before the replay of what it missed there.
    pub subscribe_rooms: bool,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            device: None,
            subscribe_rooms: true,
        }
    }
}

struct SubEntry {
    shared: Arc<SessionShared>,
}

struct SessionEntry {
    shared: Arc<SessionShared>,
    channels: HashSet<Channel>,
    /// Subscription changes that membership events ordered for this session and that a
    /// task has yet to apply (usually none): at most one per channel, the latest event's.
    pending: Vec<PendingChange>,
}

/// A membership event's subscription change for one session, waiting for its task
/// ([`HubDelivery::deliver`]). A later change of the same (session, channel) replaces or
/// takes it back, so the task that runs late cannot undo what happened after the event.
struct PendingChange {
    channel: Channel,
    ticket: u64,
    add: bool,
}

impl Drop for SessionEntry {
    /// The Hub lets go of the session (disconnect, or the Hub itself dropped): its writer
    /// ends after the frames already queued.
    fn drop(&mut self) {
        self.shared.detach();
    }
}

struct Inner {
    store: Arc<dyn Store>,
    broker: Arc<dyn Broker>,
    clock: Arc<dyn Clock>,
    config: HubConfig,
    router: Option<Arc<EventRouter>>,
    authorizer: Option<Arc<dyn ChannelAuthorizer>>,
    cluster: Option<Arc<dyn ClusterPresence>>,
    /// Users seen on other nodes at the last cluster refresh.
    cluster_seen: Mutex<HashSet<UserId>>,
    dialects: RwLock<Vec<Arc<dyn Encoder>>>,
    sessions: RwLock<HashMap<SessionId, SessionEntry>>,
    /// The open sessions of each user; changed only under the `sessions` write lock.
    by_user: Mutex<HashMap<Arc<str>, Vec<SessionId>>>,
    subs: RwLock<HashMap<Channel, Vec<SubEntry>>>,
    /// Serializes local subscription changes so the broker subscribe/unsubscribe of a
    /// channel's first/last session cannot interleave.
    sub_lock: tokio::sync::Mutex<()>,
    presence: Mutex<PresenceTracker>,
    typing: Mutex<TypingTracker>,
    metrics: Arc<EventMetrics>,
    history: Mutex<VecDeque<Arc<Event>>>,
    next_session: AtomicU64,
    /// Numbers the membership events' pending subscription changes ([`PendingChange`]).
    next_ticket: AtomicU64,
    /// The group-commit queue of [`Hub::submit_message`]; `None` without a runtime.
    commits: Option<tokio::sync::mpsc::Sender<SendJob>>,
    /// (room, user) pairs recently checked as members, for [`HubConfig::membership_cache_ttl`].
    may_post: Mutex<MayPost>,
    /// Whether a background renewal of `may_post` entries is running (at most one).
    renewing: std::sync::atomic::AtomicBool,
}

/// Most entries of `Inner::may_post` before it is cleared (bounded memory).
const MAY_POST_MAX: usize = 100_000;

/// When each (room, user) pair was last checked as a member: room → user → time.
#[derive(Default)]
struct MayPost {
    rooms: HashMap<RoomId, HashMap<UserId, std::time::Instant>>,
    entries: usize,
}

impl MayPost {
    fn fresh(&self, room: &str, user: &str, ttl: Duration) -> bool {
        self.age(room, user).is_some_and(|age| age < ttl)
    }

    /// How long ago the pair was last checked, if it is cached.
    fn age(&self, room: &str, user: &str) -> Option<Duration> {
        self.rooms
            .get(room)
            .and_then(|users| users.get(user))
            .map(|t| t.elapsed())
    }

    /// Re-stamp the pair as checked now, if it is still cached (not forgotten since).
    fn touch(&mut self, room: &str, user: &str) {
        if let Some(t) = self
            .rooms
            .get_mut(room)
            .and_then(|users| users.get_mut(user))
        {
            *t = std::time::Instant::now();
        }
    }

    fn insert(&mut self, room: &str, user: &str) {
        if self.entries >= MAY_POST_MAX {
            *self = MayPost::default();
        }
        let users = self.rooms.entry(room.to_owned()).or_default();
        if users
            .insert(user.to_owned(), std::time::Instant::now())
            .is_none()
        {
            self.entries += 1;
        }
    }

    /// Forget `user` in `room`, or everyone in `room`.
    fn forget(&mut self, room: &str, user: Option<&str>) {
        let gone = match user {
            Some(u) => self
                .rooms
                .get_mut(room)
                .and_then(|users| users.remove(u))
                .map_or(0, |_| 1),
            None => self.rooms.remove(room).map_or(0, |users| users.len()),
        };
        self.entries -= gone;
    }
}

/// A validated send waiting for the committer.
struct SendJob {
    actor: String,
    req: SendMessage,
    reply: tokio::sync::oneshot::Sender<Result<Message>>,
}

/// A message accepted by [`Hub::submit_message`]: await it for the stored message (or
/// the reason it was refused). Sends submitted in order are stored in that order.
#[must_use = "await it for the stored message"]
pub struct PendingMessage(PendingState);

enum PendingState {
    Queued(tokio::sync::oneshot::Receiver<Result<Message>>),
    Done(Option<Result<Message>>),
}

impl std::fmt::Debug for PendingMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PendingMessage")
    }
}

impl PendingMessage {
    /// A pending message settled already with `result`: for a transport that refuses a
    /// send before it reaches the Hub and queues that reply behind the sends before it.
    pub fn ready(result: Result<Message>) -> Self {
        Self(PendingState::Done(Some(result)))
    }
}

impl std::future::Future for PendingMessage {
    type Output = Result<Message>;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<Message>> {
        match &mut self.0 {
            PendingState::Queued(rx) => std::pin::Pin::new(rx).poll(cx).map(|r| {
                r.unwrap_or_else(|_| Err(Error::Store("the Hub stopped before the commit".into())))
            }),
            PendingState::Done(r) => std::task::Poll::Ready(
                r.take()
                    .unwrap_or_else(|| Err(Error::Store("polled after completion".into()))),
            ),
        }
    }
}

/// The group committer: takes every queued send (lingering for more first when `linger`
/// applies: [`CommitConfig::linger`]; then up to `passes` event-loop passes:
/// [`CommitConfig::gather_passes`]), commits them as one batch, repeats.
async fn commit_loop(
    weak: Weak<Inner>,
    mut rx: tokio::sync::mpsc::Receiver<SendJob>,
    max: usize,
    linger: Linger,
    passes: usize,
) {
    let mut batch = Vec::with_capacity(max);
    let mut gather = Gather { passes, skip: 0 };
    while rx.recv_many(&mut batch, max).await > 0 {
        if linger.applies(batch.len(), max) {
            linger.gather(&mut rx, &mut batch, max).await;
        }
        gather.run(&mut rx, &mut batch, max).await;
        let Some(inner) = weak.upgrade() else { break };
        // Drained, not taken: the buffer keeps its capacity for the next batch.
        Hub { inner }.commit(&mut batch).await;
    }
}

/// [`CommitConfig::gather_passes`], with a brake: a pass is one trip through
/// everything the runtime has ready, and on a node with thousands of busy connections
/// (one big room's fan-out) that trip takes milliseconds. Waiting for it then delays
/// every commit for little gain — commits are rare there — so after a pass slower than
/// [`Gather::SLOW_PASS`] the next [`Gather::SKIP_AFTER_SLOW`] commits do not gather.
struct Gather {
    passes: usize,
    /// Commits left that go without gathering.
    skip: u32,
}

impl Gather {
    /// A pass slower than this turns gathering off for a while.
    const SLOW_PASS: Duration = Duration::from_millis(1);
    /// Commits that go without gathering after a slow pass.
    const SKIP_AFTER_SLOW: u32 = 64;

    /// Yield to the runtime (which runs what is ready, polls the sockets and runs the
    /// readers with data before it resumes this task) and take the sends submitted
    /// meanwhile; again while a pass added some, at most `passes` times, until `batch`
    /// holds `max`, or until a pass is slow.
    async fn run(
        &mut self,
        rx: &mut tokio::sync::mpsc::Receiver<SendJob>,
        batch: &mut Vec<SendJob>,
        max: usize,
    ) {
        if self.skip > 0 {
            self.skip -= 1;
            return;
        }
        for _ in 0..self.passes {
            if batch.len() >= max {
                return;
            }
            let started = tokio::time::Instant::now();
            tokio::task::yield_now().await;
            let before = batch.len();
            while batch.len() < max {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            if started.elapsed() > Self::SLOW_PASS {
                self.skip = Self::SKIP_AFTER_SLOW;
                return;
            }
            if batch.len() == before {
                return;
            }
        }
    }
}

/// [`CommitConfig::linger`] and [`CommitConfig::linger_after`].
#[derive(Debug, Clone, Copy)]
struct Linger {
    wait: Duration,
    after: usize,
}

impl Linger {
    /// Whether a batch of `waiting` sends (of at most `max`) lingers for more.
    fn applies(&self, waiting: usize, max: usize) -> bool {
        !self.wait.is_zero() && waiting >= self.after.max(1) && waiting < max
    }

    /// Add sends arriving within `wait` to `batch`, until it holds `max` or the channel
    /// closes. Sends already queued when the time is up go in the next batch.
    async fn gather(
        &self,
        rx: &mut tokio::sync::mpsc::Receiver<SendJob>,
        batch: &mut Vec<SendJob>,
        max: usize,
    ) {
        let deadline = tokio::time::sleep(self.wait);
        tokio::pin!(deadline);
        while batch.len() < max {
            let room = max - batch.len();
            tokio::select! {
                biased;
                () = &mut deadline => break,
                n = rx.recv_many(batch, room) => if n == 0 { break },
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|p| p.into_inner())
}
fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|p| p.into_inner())
}

/// Builds a [`Hub`].
pub struct HubBuilder {
    store: Arc<dyn Store>,
    broker: Arc<dyn Broker>,
    clock: Arc<dyn Clock>,
    config: HubConfig,
    router: Option<Arc<EventRouter>>,
    authorizer: Option<Arc<dyn ChannelAuthorizer>>,
    cluster: Option<Arc<dyn ClusterPresence>>,
    metrics: Arc<EventMetrics>,
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
            cluster: self.cluster,
            cluster_seen: Mutex::default(),
            dialects: RwLock::new(vec![Arc::new(JsonEncoder)]),
            sessions: RwLock::default(),
            by_user: Mutex::default(),
            subs: RwLock::default(),
            sub_lock: tokio::sync::Mutex::new(()),
            metrics: self.metrics,
            history: Mutex::default(),
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

struct HubDelivery(Weak<Inner>);

impl DeliveryHandler for HubDelivery {
    fn deliver(&self, channel: &Channel, event: Arc<Event>) {
        let Some(inner) = self.0.upgrade() else {
            return;
        };
        inner.fan_out(channel, &event);
        let change = membership_change(channel, &event);
        if let Some((user, room, false)) = &change
            && let Some(room) = room.room_id()
        {
            inner.forget_members(room, user.as_deref());
        }
        if let Some((user, room, add)) = change
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            // The sessions and their changes are fixed now, in event order; the task only
            // carries them out (the broker call may wait), unless something later about
            // the same session and channel has replaced them by then.
            let ticket = inner.next_ticket.fetch_add(1, Ordering::Relaxed);
            let ids = inner.mark_pending(user.as_deref(), &room, add, ticket);
            if ids.is_empty() {
                return;
            }
            let hub = Hub { inner };
            rt.spawn(async move {
                for id in ids {
                    if let Err(e) = hub.apply_pending(id, &room, ticket).await {
                        tracing::debug!(error = %e, session = id, "membership subscription change failed");
                    }
                }
            });
        }
    }
}

impl Inner {
    /// Record a membership event's subscription change of `channel` (`add` or remove)
    /// for `user`'s sessions (every session subscribed to it or with a change pending
    /// for it, when `None`: a deleted room), replacing a change pending for the same
    /// channel; returns the sessions marked.
    fn mark_pending(
        &self,
        user: Option<&str>,
        channel: &Channel,
        add: bool,
        ticket: u64,
    ) -> Vec<SessionId> {
        // `by_user` is changed under the `sessions` write lock: take that one first.
        let mut sessions = write(&self.sessions);
        let ids: Vec<SessionId> = match user {
            Some(u) => lock(&self.by_user).get(u).cloned().unwrap_or_default(),
            None => sessions
                .iter()
                .filter(|(_, e)| {
                    e.channels.contains(channel) || e.pending.iter().any(|p| p.channel == *channel)
                })
                .map(|(id, _)| *id)
                .collect(),
        };
        for id in &ids {
            if let Some(e) = sessions.get_mut(id) {
                e.pending.retain(|p| p.channel != *channel);
                e.pending.push(PendingChange {
                    channel: channel.clone(),
                    ticket,
                    add,
                });
            }
        }
        ids
    }

    /// Take back the changes pending for `id` on `channel`: all of them before a
    /// subscription change made now (`adds_only`: only additions — an explicit subscribe
    /// checked membership before it got here, and must not cancel a removal that came
    /// in since).
    fn cancel_pending(&self, id: SessionId, channel: &Channel, adds_only: bool) {
        // Nearly always nothing is pending: a read lock tells, not the write lock.
        if read(&self.sessions)
            .get(&id)
            .is_none_or(|e| e.pending.is_empty())
        {
            return;
        }
        if let Some(e) = write(&self.sessions).get_mut(&id)
            && !e.pending.is_empty()
        {
            e.pending
                .retain(|p| p.channel != *channel || (adds_only && !p.add));
        }
    }

    /// Drop cached memberships of `room` (of `user` only, when given).
    fn forget_members(&self, room: &str, user: Option<&str>) {
        lock(&self.may_post).forget(room, user);
    }

    fn fan_out(&self, channel: &Channel, event: &Event) {
        let mut slow = Vec::new();
        let mut delivered = 0u64;
        let mut oversized = 0u64;
        {
            // The user-channel copy of a room event is for sessions not in that room yet
            // (see `Hub::emit_to`); sessions holding the room channel get the room copy.
            // Removals reach `user:` only from large rooms, with no room copy: delivered.
            let removal = event.event_type == EventType::ROOM_LEAVE
                || event.event_type == EventType::ROOM_MEMBER_REMOVE;
            let skip_room = match (channel, &event.room_id) {
                (Channel::User(_), Some(r)) if !removal => Channel::room(r).ok(),
                _ => None,
            };
            // Lock order everywhere: sessions, then subs. Sessions only when deduplicating.
            let sessions = skip_room.as_ref().map(|_| read(&self.sessions));
            let subs = read(&self.subs);
            let Some(list) = subs.get(channel) else {
                return;
            };
            let dialects = read(&self.dialects);
            let mut encoded: Vec<Option<Option<Bytes>>> = vec![None; dialects.len()];
            for s in list {
                if let (Some(room), Some(sessions)) = (&skip_room, &sessions)
                    && sessions
                        .get(&s.shared.id)
                        .is_some_and(|e| e.channels.contains(room))
                {
                    continue;
                }
                let d = s.shared.dialect.0 as usize;
                let Some(slot) = encoded.get_mut(d) else {
                    continue;
                };
                let frame = slot.get_or_insert_with(|| dialects[d].encode(channel, event));
                let Some(frame) = frame else { continue };
                match s.shared.push_on(channel, frame, || message_seq(event)) {
                    Push::Queued => delivered += 1,
                    Push::Overflow => slow.push(s.shared.clone()),
                    Push::TooLarge => oversized += 1,
                    Push::Gone | Push::Duplicate => {}
                }
            }
        }
        if oversized > 0 {
            self.metrics.record_oversized(oversized);
            tracing::warn!(
                event = %event.event_type, channel = %channel, sessions = oversized,
                "event larger than a session queue's byte bound: not delivered"
            );
        }
        for s in slow {
            let backlog = s.queued_frames() as u64;
            if s.close(false, CloseReason::SlowConsumer) {
                self.metrics.record_slow_consumer(backlog);
                tracing::warn!(session = s.id, user = %s.user_id, "slow consumer disconnected");
            }
        }
        self.metrics.record_deliveries(delivered);
    }
}

/// The room `seq` of a message event (`event.message.send`), which a recovery's replay
/// may already hold.
fn message_seq(event: &Event) -> Option<u64> {
    (event.event_type == EventType::MESSAGE_SEND)
        .then(|| event.data.get("seq").and_then(serde_json::Value::as_u64))
        .flatten()
}

/// Membership changes seen on a channel that change this node's subscriptions:
/// additions arrive on `user:{id}` (the user's sessions are not in the room yet),
/// removals on `room:{id}` (after the removed user's sessions got the event), or on
/// `user:{id}` alone in large rooms ([`HubConfig::large_room_members`]).
fn membership_change(channel: &Channel, event: &Event) -> Option<(Option<UserId>, Channel, bool)> {
    let t = &event.event_type;
    // Every published event passes here: the room's channel is built only for the few
    // membership types (not for each message).
    if !(*t == EventType::ROOM_JOIN
        || *t == EventType::ROOM_MEMBER_ADD
        || *t == EventType::ROOM_CREATE
        || *t == EventType::ROOM_LEAVE
        || *t == EventType::ROOM_MEMBER_REMOVE
        || *t == EventType::ROOM_DELETE)
    {
        return None;
    }
    let room = Channel::room(event.room_id.as_deref()?).ok()?;
    match channel {
        Channel::User(u)
            if *t == EventType::ROOM_JOIN
                || *t == EventType::ROOM_MEMBER_ADD
                || *t == EventType::ROOM_CREATE =>
        {
            Some((Some(u.to_string()), room, true))
        }
        Channel::Room(_) if *t == EventType::ROOM_LEAVE || *t == EventType::ROOM_MEMBER_REMOVE => {
            let u = event.data.get("user_id")?.as_str()?;
            Some((Some(u.to_owned()), room, false))
        }
        Channel::User(u) if *t == EventType::ROOM_LEAVE || *t == EventType::ROOM_MEMBER_REMOVE => {
            Some((Some(u.to_string()), room, false))
        }
        Channel::Room(_) if *t == EventType::ROOM_DELETE => Some((None, room, false)),
        _ => None,
    }
}

/// The engine. Cheap to clone; all clones share state.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("sessions", &read(&self.inner.sessions).len())
            .finish()
    }
}

fn event_channels(event: &Event) -> Vec<Channel> {
    let t = &event.event_type;
    let room = || event.room_id.as_deref().and_then(|r| Channel::room(r).ok());
    let user_of = |key: &str| {
        event
            .data
            .get(key)
            .and_then(|v| v.as_str())
            .and_then(|u| Channel::user(u).ok())
    };
    let mut out = Vec::with_capacity(2);
    match t.level() {
        "system" => out.push(if *t == EventType::SYSTEM_BROADCAST {
            Channel::Global
        } else {
            Channel::System
        }),
        "user" if t.action().starts_with("typing.") => out.extend(room()),
        "user" if *t == EventType::USER_NOTIFICATION => {
            out.extend(event.user_id.as_deref().and_then(|u| Channel::user(u).ok()))
        }
        "user" => out.push(Channel::Presence),
        _ => {
            out.extend(room());
            if *t == EventType::ROOM_INVITE_CREATE {
                out.extend(user_of("invitee"));
            }
        }
    }
    out
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

    fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// Register a dialect's encoder; sessions connect with the returned id. Dialect 0
    /// (`DialectId::JSON`) is always [`JsonEncoder`].
    pub fn register_dialect(&self, encoder: Arc<dyn Encoder>) -> DialectId {
        let mut d = write(&self.inner.dialects);
        d.push(encoder);
        DialectId(u16::try_from(d.len() - 1).unwrap_or(u16::MAX))
    }

    // ------------------------------------------------------------------ publishing

    /// Publish `event` on `channel`: count it, keep it in the event history, dispatch it
    /// through the router (if any), and hand it to the broker for fan-out on every node.
    ///
    /// # Errors
    /// [`Error::EventTooLarge`] when the event's JSON is over
    /// [`HubConfig::max_event_bytes`] (or over the session queue's byte bound); nobody
    /// receives it. [`Error::Broker`] when the broker refuses it.
    pub async fn publish(&self, channel: &Channel, event: Event) -> Result<()> {
        let max = self.max_event_bytes();
        let len = event.json_len();
        if len > max {
            return Err(Error::EventTooLarge { len, max });
        }
        self.publish_arc(channel, Arc::new(event)).await
    }

    /// The largest event [`Hub::publish`] accepts, bytes: [`HubConfig::max_event_bytes`],
    /// capped by [`HubConfig::session_queue_bytes`].
    pub fn max_event_bytes(&self) -> usize {
        let c = &self.inner.config;
        c.max_event_bytes.min(c.session_queue_bytes)
    }

    async fn publish_arc(&self, channel: &Channel, event: Arc<Event>) -> Result<()> {
        self.inner.broker.publish(channel, event).await
    }

    async fn record(&self, event: &Arc<Event>) {
        let inner = &self.inner;
        inner.metrics.record_published(&event.event_type);
        if inner.config.event_history > 0 {
            let mut h = lock(&inner.history);
            while h.len() >= inner.config.event_history {
                h.pop_front();
            }
            h.push_back(event.clone());
        }
        if inner.config.persist_events
            && let Err(e) = inner.store.append_event(event).await
        {
            tracing::warn!(error = %e, "could not persist event");
        }
        if let Some(r) = &inner.router
            && let Err(e) = r.dispatch(event.clone()).await
        {
            tracing::debug!(error = %e, event = %event.event_type, "router handler failed");
        }
    }

    /// Publish the events a committed operation caused, each to its channels. Broker
    /// failures are logged, not returned: the change is committed and clients recover it
    /// through `seq`.
    async fn emit(&self, events: Vec<Event>) {
        self.emit_to(events, &[]).await;
    }

    /// [`Hub::emit`], also publishing each event to `user:{id}` of `users`: how users who
    /// are not yet in a room's channel — on any node — learn that they were added. Their
    /// nodes subscribe their sessions on seeing it; sessions already in the room skip
    /// that copy, so nobody gets an event twice.
    async fn emit_to(&self, events: Vec<Event>, users: &[&str]) {
        for ev in events {
            let extra = users.iter().filter_map(|u| Channel::user(u).ok());
            let channels: Vec<Channel> = event_channels(&ev).into_iter().chain(extra).collect();
            self.record_and_publish(ev, channels).await;
        }
    }

    /// Record `ev` in the history and publish it to each of `channels` (a broker failure
    /// is logged: the state change is committed and recoverable).
    async fn record_and_publish(&self, ev: Event, channels: Vec<Channel>) {
        let ev = Arc::new(ev);
        self.record(&ev).await;
        for ch in channels {
            if let Err(e) = self.publish_arc(&ch, ev.clone()).await {
                tracing::warn!(error = %e, channel = %ch, "publish failed");
            }
        }
    }

    /// Whether `room_id` is a large room ([`HubConfig::large_room_members`]).
    async fn is_large(&self, room_id: &str) -> Result<bool> {
        let limit = self.inner.config.large_room_members;
        Ok(self.inner.store.count_members_up_to(room_id, limit).await? >= limit)
    }

    /// Emit membership events (`join`, `leave`, `member.add`, `member.remove`) about `user`:
    /// to the room and `user:{user}` as usual, or, in a large room, to `user:{user}` only.
    /// Every node follows both routes with its subscriptions (see `membership_change`).
    async fn emit_membership(&self, events: Vec<Event>, user: &str, large: bool) {
        if !large {
            let adds = events.iter().any(|e| {
                e.event_type == EventType::ROOM_JOIN || e.event_type == EventType::ROOM_MEMBER_ADD
            });
            return if adds {
                self.emit_to(events, &[user]).await
            } else {
                self.emit(events).await
            };
        }
        let Ok(ch) = Channel::user(user) else { return };
        for ev in events {
            self.record_and_publish(ev, vec![ch.clone()]).await;
        }
    }

    async fn add_usernames(&self, events: Vec<Event>) -> Vec<Event> {
        self.add_usernames_with(events, None).await
    }

    /// Add `username` to each event's `data` that names a `user_id`, looked up in the store
    /// unless it is `known`'s (the caller has just read that user: one store round trip
    /// fewer per join and per connect).
    async fn add_usernames_with(&self, mut events: Vec<Event>, known: Option<&User>) -> Vec<Event> {
        for ev in &mut events {
            let Some(uid) = ev
                .data
                .get("user_id")
                .and_then(|v| v.as_str())
                .map(str::to_owned)
            else {
                continue;
            };
            let username = match known {
                Some(u) if u.id == uid => Some(u.username.clone()),
                _ => match self.inner.store.get_user(&uid).await {
                    Ok(Some(u)) => Some(u.username),
                    _ => None,
                },
            };
            if let Some(username) = username {
                let mut data = ev.data.to_value();
                if let Some(obj) = data.as_object_mut() {
                    obj.insert("username".into(), username.into());
                    ev.data = data.into();
                }
            }
        }
        events
    }

    // ------------------------------------------------------------------ sessions

    /// Make sure `identity`'s user exists in the store, creating it from the claims
    /// (`username`, else `name`, else the id) the first time. Returns the user.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a bad user id; store errors.
    pub async fn ensure_user(&self, identity: &Identity) -> Result<User> {
        validate_id("user_id", &identity.user_id)?;
        let store = &self.inner.store;
        if let Some(u) = store.get_user(&identity.user_id).await? {
            return Ok(u);
        }
        let now = self.now();
        // Claims are the issuer's, but still bounded like any profile: a username that
        // is not a valid handle falls back to the id, an over-long name is left out.
        let limits = &self.inner.config.limits;
        let wanted = identity
            .username
            .clone()
            .filter(|n| validate_id("username", n).is_ok())
            .unwrap_or_else(|| identity.user_id.clone());
        let mut user = User::new(identity.user_id.clone(), wanted, now);
        if let Some(name) = identity.claims.get("name").and_then(|v| v.as_str())
            && limits.check_name("display_name", name).is_ok()
        {
            user.display_name = Some(name.to_owned());
        }
        match store.create_user(&user).await {
            Ok(()) => Ok(user),
            Err(Error::Conflict { .. }) => {
                if let Some(u) = store.get_user(&identity.user_id).await? {
                    return Ok(u);
                }
                // The username is taken by someone else: fall back to the id.
                user.username = identity.user_id.clone();
                store.create_user(&user).await?;
                Ok(user)
            }
            Err(e) => Err(e),
        }
    }

    /// Open a session for an authenticated user, encoded in `dialect`. Subscribes it to
    /// `user:{id}`, `system`, `global`, `presence` (see [`HubConfig::auto_subscribe_presence`])
    /// and the user's rooms, and marks the user
    /// online. `device` is a free-form label kept by presence.
    ///
    /// # Errors
    /// [`Error::Forbidden`] past [`HubConfig::max_sessions_per_user`]; [`Error::Invalid`]
    /// for an unknown dialect; store and broker errors.
    pub async fn connect(
        &self,
        identity: &Identity,
        dialect: DialectId,
        device: Option<String>,
    ) -> Result<Session> {
        let options = ConnectOptions {
            device,
            ..ConnectOptions::default()
        };
        self.connect_with(identity, dialect, options).await
    }

    /// [`Hub::connect`] with [`ConnectOptions`]: with `subscribe_rooms: false` the session
    /// is not subscribed to its user's rooms; it takes each one it wants with
    /// [`Hub::resume_room`], which replays what it missed before any live message. What
    /// a reconnecting client that recovers needs.
    ///
    /// # Errors
    /// As [`Hub::connect`].
    pub async fn connect_with(
        &self,
        identity: &Identity,
        dialect: DialectId,
        options: ConnectOptions,
    ) -> Result<Session> {
        let ConnectOptions {
            device,
            subscribe_rooms,
        } = options;
        if dialect.0 as usize >= read(&self.inner.dialects).len() {
            return Err(Error::invalid("dialect", "not registered"));
        }
        let user = self.ensure_user(identity).await?;
        let inner = &self.inner;
        let id = inner.next_session.fetch_add(1, Ordering::Relaxed);
        let user_id: Arc<str> = user.id.as_str().into();
        let shared = Arc::new(SessionShared::new(
            id,
            user_id.clone(),
            dialect,
            inner.config.session_queue_bytes,
            inner.config.session_queue_frames,
        ));
        {
            let mut sessions = write(&inner.sessions);
            let mut by_user = lock(&inner.by_user);
            let mine = by_user.entry(user_id).or_default();
            if mine.len() >= inner.config.max_sessions_per_user {
                return Err(Error::forbidden(format!(
                    "too many connections for this user (limit {})",
                    inner.config.max_sessions_per_user
                )));
            }
            mine.push(id);
            sessions.insert(
                id,
                SessionEntry {
                    shared: shared.clone(),
                    channels: HashSet::new(),
                    pending: Vec::new(),
                },
            );
        }
        let weak = Arc::downgrade(inner);
        let session = Session {
            shared,
            on_drop: Some(Box::new(move |id| {
                let Some(inner) = weak.upgrade() else { return };
                if !read(&inner.sessions).contains_key(&id) {
                    return;
                }
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    rt.spawn(async move { Hub { inner }.disconnect(id).await });
                }
            })),
            done: false,
        };
        let mut channels = vec![Channel::user(&user.id)?, Channel::System, Channel::Global];
        if inner.config.auto_subscribe_presence {
            channels.push(Channel::Presence);
        }
        if subscribe_rooms {
            for r in inner
                .store
                .list_rooms(Some(&user.id), 0, inner.config.max_auto_rooms)
                .await?
            {
                channels.push(Channel::room(&r.id)?);
            }
        }
        for ch in channels {
            self.add_local(id, ch).await?;
        }
        let now = self.now();
        let events = lock(&inner.presence).connect(&user.id, id, device, now);
        let events = self.cluster_filter(events).await;
        if let Some(c) = &inner.cluster {
            let present = self.present_users();
            if let Err(e) = c.refresh(&present).await {
                tracing::warn!(error = %e, "cluster presence refresh failed");
            }
        }
        if !events.is_empty() {
            if let Err(e) = inner
                .store
                .set_user_status(&user.id, UserStatus::Online, now)
                .await
            {
                tracing::warn!(error = %e, "could not store status");
            }
            let events = self.add_usernames_with(events, Some(&user)).await;
            self.emit(events).await;
        }
        Ok(session)
    }
}

impl Hub {
    /// Subscribe `id` to `channel` locally (and the node through the broker for the
    /// channel's first session); takes back an addition a membership event left pending.
    async fn add_local(&self, id: SessionId, channel: Channel) -> Result<()> {
        self.inner.cancel_pending(id, &channel, true);
        let _g = self.inner.sub_lock.lock().await;
        self.add_locked(id, channel).await
    }

    /// [`Hub::add_local`] with `sub_lock` held.
    async fn add_locked(&self, id: SessionId, channel: Channel) -> Result<()> {
        let inner = &self.inner;
        let first = {
            let mut sessions = write(&inner.sessions);
            let Some(entry) = sessions.get_mut(&id) else {
                return Err(Error::SessionClosed(id));
            };
            if !entry.channels.insert(channel.clone()) {
                return Ok(());
            }
            let mut subs = write(&inner.subs);
            let list = subs.entry(channel.clone()).or_default();
            list.push(SubEntry {
                shared: entry.shared.clone(),
            });
            list.len() == 1
        };
        if first && let Err(e) = inner.broker.subscribe(&channel).await {
            self.drop_local(id, &channel);
            return Err(e);
        }
        Ok(())
    }

    /// Remove `id` from `channel` locally; returns whether the channel has no local session left.
    fn drop_local(&self, id: SessionId, channel: &Channel) -> bool {
        let inner = &self.inner;
        if let Some(e) = write(&inner.sessions).get_mut(&id) {
            e.channels.remove(channel);
        }
        let mut subs = write(&inner.subs);
        let Some(list) = subs.get_mut(channel) else {
            return false;
        };
        list.retain(|s| s.shared.id != id);
        if list.is_empty() {
            subs.remove(channel);
            true
        } else {
            false
        }
    }

    /// Unsubscribe `id` from `channel` locally (and the node for its last session); takes
    /// back every change a membership event left pending for it.
    async fn remove_local(&self, id: SessionId, channel: &Channel) -> Result<()> {
        self.inner.cancel_pending(id, channel, false);
        let _g = self.inner.sub_lock.lock().await;
        self.remove_locked(id, channel).await
    }

    /// [`Hub::remove_local`] with `sub_lock` held.
    async fn remove_locked(&self, id: SessionId, channel: &Channel) -> Result<()> {
        if self.drop_local(id, channel) {
            self.inner.broker.unsubscribe(channel).await?;
        }
        Ok(())
    }

    /// Carry out the change of `channel` a membership event left pending for `id` under
    /// `ticket`, unless it was replaced or taken back since (or the session closed).
    async fn apply_pending(&self, id: SessionId, channel: &Channel, ticket: u64) -> Result<()> {
        let _g = self.inner.sub_lock.lock().await;
        let add = {
            let mut sessions = write(&self.inner.sessions);
            let Some(entry) = sessions.get_mut(&id) else {
                return Ok(());
            };
            let Some(i) = entry
                .pending
                .iter()
                .position(|p| p.ticket == ticket && p.channel == *channel)
            else {
                return Ok(());
            };
            entry.pending.swap_remove(i).add
        };
        if add {
            self.add_locked(id, channel.clone()).await
        } else {
            self.remove_locked(id, channel).await
        }
    }

    fn sessions_of(&self, user: &str) -> Vec<SessionId> {
        lock(&self.inner.by_user)
            .get(user)
            .cloned()
            .unwrap_or_default()
    }

    async fn subscribe_user(&self, user: &str, channel: &Channel) {
        for id in self.sessions_of(user) {
            if let Err(e) = self.add_local(id, channel.clone()).await {
                tracing::warn!(error = %e, session = id, "auto-subscribe failed");
            }
        }
    }

    async fn unsubscribe_user(&self, user: &str, channel: &Channel) {
        for id in self.sessions_of(user) {
            if let Err(e) = self.remove_local(id, channel).await {
                tracing::warn!(error = %e, session = id, "unsubscribe failed");
            }
        }
    }

    fn session_user(&self, id: SessionId) -> Result<Arc<str>> {
        read(&self.inner.sessions)
            .get(&id)
            .map(|s| s.shared.user_id.clone())
            .ok_or(Error::SessionClosed(id))
    }

    /// Subscribe session `id` to `channel` after checking its user's rights: `room:` needs
    /// membership, `user:` only one's own, `private-`/`presence-` the
    /// [`ChannelAuthorizer`]; `presence`, `system`, `global` and public names are open.
    ///
    /// # Errors
    /// [`Error::Forbidden`], [`Error::NotFound`] (room), [`Error::SessionClosed`], broker errors.
    pub async fn subscribe(&self, id: SessionId, channel: &Channel) -> Result<()> {
        if let Channel::Room(room) = channel {
            return self.subscribe_room(id, room).await.map(drop);
        }
        let user = self.session_user(id)?;
        match channel {
            Channel::User(u) if **u != *user => {
                return Err(Error::forbidden("user channels are private to their user"));
            }
            Channel::Named(_) if channel.visibility() != Visibility::Public => {
                let ok = match &self.inner.authorizer {
                    Some(a) => a.authorize(&user, channel).await?,
                    None => false,
                };
                if !ok {
                    return Err(Error::forbidden("not authorized for this channel"));
                }
            }
            _ => {}
        }
        self.add_local(id, channel.clone()).await
    }

    /// Subscribe session `id` to `room:{room_id}` as [`Hub::subscribe`] does, and return the
    /// room: one lookup of the room and of the session user's membership serves both the
    /// read check (members only) and the caller's reply (the native dialect answers `join`
    /// and `subscribe` with the room's `epoch`), instead of a second [`Hub::get_room`].
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown room, [`Error::SessionClosed`] for an unknown
    /// session, [`Error::Forbidden`] for non-members, [`Error::Invalid`] for a bad room id;
    /// broker errors.
    pub async fn subscribe_room(&self, id: SessionId, room_id: &str) -> Result<Room> {
        let user = self.session_user(id)?;
        let (room, member) = self.room_and_member(&user, room_id).await?;
        room.check_read(member.as_ref())?;
        self.add_local(id, Channel::room(room_id)?).await?;
        Ok(room)
    }

    /// Unsubscribe session `id` from `channel` (idempotent).
    ///
    /// # Errors
    /// Broker errors.
    pub async fn unsubscribe(&self, id: SessionId, channel: &Channel) -> Result<()> {
        self.remove_local(id, channel).await
    }

    /// Close session `id`: drop its subscriptions and update presence (the user goes
    /// offline after the grace period if this was their last session). Idempotent; also
    /// done when the [`Session`] is dropped.
    pub async fn disconnect(&self, id: SessionId) {
        let inner = &self.inner;
        let entry = {
            let mut sessions = write(&inner.sessions);
            let Some(entry) = sessions.remove(&id) else {
                return;
            };
            let mut by_user = lock(&inner.by_user);
            if let Some(mine) = by_user.get_mut(&entry.shared.user_id) {
                mine.retain(|s| *s != id);
                if mine.is_empty() {
                    by_user.remove(&entry.shared.user_id);
                }
            }
            entry
        };
        entry
            .shared
            .close(true, CloseReason::Kicked("disconnected".into()));
        for ch in &entry.channels {
            let _g = inner.sub_lock.lock().await;
            let last = {
                let mut subs = write(&inner.subs);
                match subs.get_mut(ch) {
                    Some(list) => {
                        list.retain(|s| s.shared.id != id);
                        let empty = list.is_empty();
                        if empty {
                            subs.remove(ch);
                        }
                        empty
                    }
                    None => false,
                }
            };
            if last && let Err(e) = inner.broker.unsubscribe(ch).await {
                tracing::warn!(error = %e, channel = %ch, "broker unsubscribe failed");
            }
        }
        let user = entry.shared.user_id.clone();
        let now = self.now();
        let mut events = lock(&inner.presence).disconnect(&user, id, now);
        if self.sessions_of(&user).is_empty() {
            events.extend(lock(&inner.typing).user_gone(&user, now));
        }
        self.after_presence(events).await;
    }

    /// Close session `id` from the server side with `reason` (the session's next
    /// [`Session::recv`] returns [`Outbound::Close`]), then disconnect it.
    pub async fn kick(&self, id: SessionId, reason: CloseReason) {
        if let Some(e) = read(&self.inner.sessions).get(&id) {
            e.shared.close(true, reason);
        }
        self.disconnect(id).await;
    }

    async fn after_presence(&self, events: Vec<Event>) {
        let events = self.cluster_filter(events).await;
        for ev in &events {
            if ev.event_type == EventType::USER_OFFLINE
                && let Some(u) = &ev.user_id
                && let Err(e) = self
                    .inner
                    .store
                    .set_user_status(u, UserStatus::Offline, ev.timestamp)
                    .await
            {
                tracing::warn!(error = %e, "could not store status");
            }
        }
        if !events.is_empty() {
            let events = self.add_usernames(events).await;
            self.emit(events).await;
        }
    }

    /// Drop `online`/`offline` events of users present on another node: for the cluster
    /// nothing changed. Without cluster presence, or when it cannot be asked, events pass.
    async fn cluster_filter(&self, events: Vec<Event>) -> Vec<Event> {
        let Some(c) = &self.inner.cluster else {
            return events;
        };
        let mut out = Vec::with_capacity(events.len());
        for ev in events {
            let edge =
                ev.event_type == EventType::USER_ONLINE || ev.event_type == EventType::USER_OFFLINE;
            if edge
                && let Some(u) = &ev.user_id
                && c.online_elsewhere(u).await.unwrap_or(false)
            {
                continue;
            }
            out.push(ev);
        }
        out
    }

    /// Refresh this node's cluster presence entry and, as leader, announce `offline` for
    /// users who vanished with an expired node (the Hub's cluster task calls this every
    /// [`ClusterPresence::refresh_interval`]).
    pub async fn cluster_tick(&self) {
        let Some(c) = self.inner.cluster.clone() else {
            return;
        };
        let present = self.present_users();
        if let Err(e) = c.refresh(&present).await {
            tracing::warn!(error = %e, "cluster presence refresh failed");
            return;
        }
        let view = match c.others().await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "cluster presence read failed");
                return;
            }
        };
        let local: HashSet<&str> = present.iter().map(|(u, _)| u.as_str()).collect();
        let gone: Vec<UserId> = {
            let mut seen = lock(&self.inner.cluster_seen);
            let gone = seen
                .iter()
                .filter(|u| !view.users.contains(*u) && !local.contains(u.as_str()))
                .cloned()
                .collect();
            *seen = view.users.clone();
            gone
        };
        if !view.leader || gone.is_empty() {
            return;
        }
        let now = self.now();
        let events: Vec<Event> = gone
            .iter()
            .map(|u| {
                Event::at(EventType::USER_OFFLINE, serde_json::json!({ "user_id": u, "status": UserStatus::Offline, "last_seen": now }), now)
                    .with_user(u.clone())
            })
            .collect();
        for u in &gone {
            if let Err(e) = self
                .inner
                .store
                .set_user_status(u, UserStatus::Offline, now)
                .await
            {
                tracing::debug!(error = %e, "could not store status");
            }
        }
        let events = self.add_usernames(events).await;
        self.emit(events).await;
    }

    /// Run the presence and typing timers now (the Hub's timer task calls this every
    /// [`HubConfig::tick_interval`]).
    pub async fn tick(&self) {
        let now = self.now();
        let presence = lock(&self.inner.presence).tick(now);
        let typing = lock(&self.inner.typing).tick(now);
        self.after_presence(presence).await;
        if !typing.is_empty() {
            let typing = self.add_usernames(typing).await;
            self.emit(typing).await;
        }
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

    /// A user's presence status on this node.
    pub fn presence_of(&self, user: &str) -> UserStatus {
        lock(&self.inner.presence).status(user)
    }

    /// Users present on this node with their status.
    pub fn present_users(&self) -> Vec<(UserId, UserStatus)> {
        lock(&self.inner.presence).present()
    }

    /// Users typing in `room` now.
    pub fn typing_in(&self, room: &str) -> Vec<UserId> {
        lock(&self.inner.typing).typing_in(room)
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

    // ------------------------------------------------------------------ rooms

    async fn room_and_member(&self, actor: &str, room_id: &str) -> Result<(Room, Option<Member>)> {
        validate_id("room_id", room_id)?;
        let store = &self.inner.store;
        let room = store
            .get_room(room_id)
            .await?
            .ok_or_else(|| Error::not_found("room", room_id))?;
        let member = store.get_member(room_id, actor).await?;
        Ok((room, member))
    }

    async fn require_user(&self, user: &str) -> Result<User> {
        validate_id("user_id", user)?;
        self.inner
            .store
            .get_user(user)
            .await?
            .ok_or_else(|| Error::not_found("user", user))
    }

    /// Create a group room owned by `actor`, with `req.members` as plain members.
    /// Emits `event.room.create` (and `event.room.member.add` per extra member).
    ///
    /// # Errors
    /// [`Error::Invalid`] for bad ids/names, [`Error::NotFound`] for unknown members,
    /// [`Error::Conflict`] for a taken id.
    pub async fn create_room(&self, actor: &str, req: CreateRoom) -> Result<Room> {
        let now = self.now();
        let id = req.id.unwrap_or_else(new_id);
        let (mut room, owner, mut events) = Room::create_group(
            id,
            req.name,
            actor,
            req.is_private,
            &self.inner.config.limits,
            now,
        )?;
        if let Some(d) = req.description {
            room.update(
                Some(&owner),
                RoomPatch {
                    description: Some(d),
                    ..RoomPatch::default()
                },
                &self.inner.config.limits,
                now,
            )?;
        }
        if req.members.len() > MAX_INITIAL_MEMBERS {
            return Err(Error::invalid(
                "members",
                format!(
                    "{} users; a room starts with at most {MAX_INITIAL_MEMBERS} (add more with add_member)",
                    req.members.len()
                ),
            ));
        }
        let mut members = vec![owner.clone()];
        let mut extra: Vec<UserId> = req.members.into_iter().filter(|u| u != actor).collect();
        extra.sort();
        extra.dedup();
        for u in &extra {
            self.require_user(u).await?;
            let (m, evs) = room.add_member(Some(&owner), u, None, Role::Member, now)?;
            members.push(m);
            events.extend(evs);
        }
        self.inner.store.create_room(&room, &members).await?;
        let ch = Channel::room(&room.id)?;
        for m in &members {
            self.subscribe_user(&m.user_id, &ch).await;
        }
        let users: Vec<&str> = members.iter().map(|m| m.user_id.as_str()).collect();
        self.emit_to(events, &users).await;
        Ok(room)
    }

    /// A room, if `actor` may see it (members always; anyone for public group rooms).
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Forbidden`].
    pub async fn get_room(&self, actor: &str, room_id: &str) -> Result<Room> {
        let (room, member) = self.room_and_member(actor, room_id).await?;
        if member.is_none() && (room.is_private || room.kind == crate::room::RoomKind::Direct) {
            return Err(Error::forbidden("not a member of this room"));
        }
        Ok(room)
    }

    /// Rooms `actor` is a member of, ordered by id.
    ///
    /// # Errors
    /// Store errors.
    pub async fn list_rooms(&self, actor: &str, offset: u32, limit: u32) -> Result<Vec<Room>> {
        self.inner
            .store
            .list_rooms(
                Some(actor),
                offset,
                limit.min(self.inner.config.max_page.max(1000)),
            )
            .await
    }

    /// Update a room (owner/admin). Emits `event.room.update`.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Forbidden`], [`Error::Invalid`].
    pub async fn update_room(&self, actor: &str, room_id: &str, patch: RoomPatch) -> Result<Room> {
        let (mut room, member) = self.room_and_member(actor, room_id).await?;
        let events = room.update(
            member.as_ref(),
            patch,
            &self.inner.config.limits,
            self.now(),
        )?;
        self.inner.store.update_room(&room).await?;
        self.emit(events).await;
        Ok(room)
    }

    /// Delete a room (owner). Emits `event.room.delete`, then unsubscribes everyone.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Forbidden`].
    pub async fn delete_room(&self, actor: &str, room_id: &str) -> Result<()> {
        let (room, member) = self.room_and_member(actor, room_id).await?;
        let events = room.delete(member.as_ref(), self.now())?;
        let members = self.inner.store.list_members(room_id).await?;
        self.inner.store.delete_room(room_id).await?;
        self.inner.forget_members(room_id, None);
        self.emit(events).await;
        let ch = Channel::room(room_id)?;
        for m in members {
            self.unsubscribe_user(&m.user_id, &ch).await;
        }
        Ok(())
    }

    /// `actor` joins a public group room (seed 000's room join flow). Emits
    /// `event.room.join` to the members and subscribes the actor's sessions. In a large
    /// room ([`HubConfig::large_room_members`]) the event goes to `user:{actor}` only: the
    /// actor's other nodes subscribe on it, and the joining caller learns from the reply.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Forbidden`] (private/direct), [`Error::Conflict`] (already a member).
    pub async fn join_room(&self, actor: &str, room_id: &str) -> Result<Member> {
        let (room, member) = self.room_and_member(actor, room_id).await?;
        self.join_read(actor, room, member).await.map(|(_, m)| m)
    }

    /// The native dialect's `join`: subscribe session `id` to `room:{room_id}` when its user
    /// is a member, else join the room first ([`Hub::join_room`]: public group rooms only;
    /// it subscribes every session of the user). Returns the room, which the caller answers
    /// with (its `epoch`). One lookup of the room and the membership serves it all.
    ///
    /// # Errors
    /// [`Error::NotFound`] (room), [`Error::SessionClosed`], [`Error::Forbidden`]
    /// (private/direct rooms to non-members), [`Error::Invalid`]; store and broker errors.
    pub async fn join_or_subscribe(&self, id: SessionId, room_id: &str) -> Result<Room> {
        let user = self.session_user(id)?;
        let (room, member) = self.room_and_member(&user, room_id).await?;
        if member.is_some() {
            self.add_local(id, Channel::room(room_id)?).await?;
            self.vouch(&room, member.as_ref(), &user);
            return Ok(room);
        }
        self.join_read(&user, room, None).await.map(|(r, _)| r)
    }

    /// Cache (`HubConfig::membership_cache_ttl`) that `user` may post in `room`, just
    /// read or written as a member: a client sends right after it joins, and its first
    /// sends need no store lookup then (on a fresh node every sender's first message
    /// waited for one, in the committer's path).
    fn vouch(&self, room: &Room, member: Option<&Member>, user: &str) {
        if !self.inner.config.membership_cache_ttl.is_zero() && room.check_post(member).is_ok() {
            lock(&self.inner.may_post).insert(&room.id, user);
        }
    }

    /// [`Hub::join_room`] with the room and `actor`'s membership already read.
    async fn join_read(
        &self,
        actor: &str,
        room: Room,
        member: Option<Member>,
    ) -> Result<(Room, Member)> {
        let room_id = room.id.as_str();
        let user = self.require_user(actor).await?;
        let (m, events) = room.join(actor, member.as_ref(), self.now())?;
        let large = self.is_large(room_id).await?;
        self.inner.store.add_member(&m).await?;
        self.subscribe_user(actor, &Channel::room(room_id)?).await;
        self.vouch(&room, Some(&m), actor);
        let events = self.add_usernames_with(events, Some(&user)).await;
        self.emit_membership(events, actor, large).await;
        Ok((room, m))
    }

    /// `actor` leaves a room. Emits `event.room.leave` (the actor's sessions still get it),
    /// then unsubscribes the actor's sessions.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Forbidden`] (owner, direct room).
    pub async fn leave_room(&self, actor: &str, room_id: &str) -> Result<()> {
        let (room, member) = self.room_and_member(actor, room_id).await?;
        let events = room.leave(member.as_ref(), self.now())?;
        let large = self.is_large(room_id).await?;
        self.inner.store.remove_member(room_id, actor).await?;
        self.inner.forget_members(room_id, Some(actor));
        let events = self.add_usernames(events).await;
        self.emit_membership(events, actor, large).await;
        self.unsubscribe_user(actor, &Channel::room(room_id)?).await;
        Ok(())
    }

    /// Members of a room, for members (and anyone for public group rooms).
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Forbidden`].
    pub async fn list_members(&self, actor: &str, room_id: &str) -> Result<Vec<Member>> {
        self.get_room(actor, room_id).await?;
        self.inner.store.list_members(room_id).await
    }

    /// `actor` adds `user` with `role`. Emits `event.room.member.add` to the room and the user.
    ///
    /// # Errors
    /// [`Error::NotFound`] (room, user), [`Error::Forbidden`], [`Error::Conflict`].
    pub async fn add_member(
        &self,
        actor: &str,
        room_id: &str,
        user: &str,
        role: Role,
    ) -> Result<Member> {
        let (room, member) = self.room_and_member(actor, room_id).await?;
        self.require_user(user).await?;
        let existing = self.inner.store.get_member(room_id, user).await?;
        let (m, events) =
            room.add_member(member.as_ref(), user, existing.as_ref(), role, self.now())?;
        let large = self.is_large(room_id).await?;
        self.inner.store.add_member(&m).await?;
        self.subscribe_user(user, &Channel::room(room_id)?).await;
        let events = self.add_usernames(events).await;
        self.emit_membership(events, user, large).await;
        Ok(m)
    }

    /// `actor` removes `user`. Emits `event.room.member.remove`, then unsubscribes the user.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Forbidden`].
    pub async fn remove_member(&self, actor: &str, room_id: &str, user: &str) -> Result<()> {
        let (room, member) = self.room_and_member(actor, room_id).await?;
        let target = self.inner.store.get_member(room_id, user).await?;
        let events = room.remove_member(member.as_ref(), target.as_ref(), self.now())?;
        let large = self.is_large(room_id).await?;
        self.inner.store.remove_member(room_id, user).await?;
        self.inner.forget_members(room_id, Some(user));
        let events = self.add_usernames(events).await;
        self.emit_membership(events, user, large).await;
        self.unsubscribe_user(user, &Channel::room(room_id)?).await;
        Ok(())
    }

    /// `actor` (owner/admin) creates an invite, for `invitee` only or for anyone holding
    /// the code, valid for [`HubConfig::invite_ttl`]. Emits `event.room.invite.create`.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Forbidden`].
    pub async fn create_invite(
        &self,
        actor: &str,
        room_id: &str,
        invitee: Option<UserId>,
    ) -> Result<Invite> {
        let (room, member) = self.room_and_member(actor, room_id).await?;
        if let Some(u) = &invitee {
            self.require_user(u).await?;
        }
        let code = uuid::Uuid::new_v4().simple().to_string();
        let (invite, events) = room.create_invite(
            member.as_ref(),
            code,
            invitee,
            self.inner.config.invite_ttl,
            self.now(),
        )?;
        self.inner.store.create_invite(&invite).await?;
        self.emit(events).await;
        Ok(invite)
    }

    async fn invite_and_room(&self, code: &str) -> Result<(Invite, Room)> {
        validate_id("code", code)?;
        let store = &self.inner.store;
        let invite = store
            .get_invite(code)
            .await?
            .ok_or_else(|| Error::not_found("invite", code))?;
        let room = store
            .get_room(&invite.room_id)
            .await?
            .ok_or_else(|| Error::not_found("room", &invite.room_id))?;
        Ok((invite, room))
    }

    /// `actor` accepts invite `code` and becomes a member. Emits
    /// `event.room.invite.accept` and `event.room.join`.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Expired`], [`Error::InvalidTransition`],
    /// [`Error::Forbidden`], [`Error::Conflict`].
    pub async fn accept_invite(&self, actor: &str, code: &str) -> Result<Member> {
        let (mut invite, room) = self.invite_and_room(code).await?;
        self.require_user(actor).await?;
        let existing = self.inner.store.get_member(&room.id, actor).await?;
        let (m, events) = invite.accept(actor, existing.as_ref(), &room, self.now())?;
        self.inner.store.answer_invite(&invite, Some(&m)).await?;
        self.subscribe_user(actor, &Channel::room(&room.id)?).await;
        let events = self.add_usernames(events).await;
        self.emit_to(events, &[actor]).await;
        Ok(m)
    }

    /// `actor` rejects invite `code`. Emits `event.room.invite.reject`.
    ///
    /// # Errors
    /// As [`Hub::accept_invite`].
    pub async fn reject_invite(&self, actor: &str, code: &str) -> Result<()> {
        let (mut invite, _room) = self.invite_and_room(code).await?;
        let events = invite.reject(actor, self.now())?;
        self.inner.store.answer_invite(&invite, None).await?;
        self.emit(events).await;
        Ok(())
    }

    /// The direct room of `actor` and `other`, created on first use (seed 004's
    /// `chat:start_direct`). Emits `event.room.create` to both users when created.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown `other`, [`Error::Invalid`] for `actor == other`.
    pub async fn start_direct(&self, actor: &str, other: &str) -> Result<Room> {
        let id = direct_room_id(actor, other)?;
        if let Some(r) = self.inner.store.get_room(&id).await? {
            return Ok(r);
        }
        self.require_user(other).await?;
        let (room, members, events) = Room::create_direct(actor, other, self.now())?;
        match self.inner.store.create_room(&room, &members).await {
            Ok(()) => {}
            Err(Error::Conflict { .. }) => {
                return self
                    .inner
                    .store
                    .get_room(&id)
                    .await?
                    .ok_or_else(|| Error::not_found("room", &id));
            }
            Err(e) => return Err(e),
        }
        let ch = Channel::room(&room.id)?;
        self.subscribe_user(actor, &ch).await;
        self.subscribe_user(other, &ch).await;
        self.emit_to(events, &[actor, other]).await;
        Ok(room)
    }

    // ------------------------------------------------------------------ messages

    /// `actor` sends a message (seed 000's message flow). Committed to the store at the
    /// room's next `seq` before anything is published; a retry with the same `client_id`
    /// returns the first message and publishes nothing. Stops the actor's typing.
    /// Emits `event.message.send` whose `data` is the message.
    ///
    /// # Errors
    /// [`Error::NotFound`] (room), [`Error::Forbidden`] (non-member),
    /// [`Error::ContentTooLong`], [`Error::Invalid`].
    pub async fn send_message(&self, actor: &str, req: SendMessage) -> Result<Message> {
        self.submit_message(actor, req).await?.await
    }

    /// [`Hub::send_message`] in two steps, for transports that pipeline: the request is
    /// checked for shape and queued for the group committer now (in call order), and the
    /// returned [`PendingMessage`] resolves once it is stored and published. Rights
    /// (membership, room state) are checked by the committer against the store.
    ///
    /// # Errors
    /// Now: [`Error::ContentTooLong`], [`Error::Invalid`], [`Error::Forbidden`] (SYSTEM).
    /// From the pending message: those of [`Hub::send_message`].
    pub async fn submit_message(&self, actor: &str, req: SendMessage) -> Result<PendingMessage> {
        self.inner.config.limits.check_content(&req.content)?;
        if let Some(c) = &req.client_id {
            validate_client_id(c)?;
        }
        if req.kind == MessageKind::System {
            return Err(Error::forbidden("SYSTEM messages are sent by the server"));
        }
        validate_id("room_id", &req.room_id)?;
        if let Some(tx) = &self.inner.commits {
            let (reply, rx) = tokio::sync::oneshot::channel();
            let job = SendJob {
                actor: actor.to_owned(),
                req,
                reply,
            };
            return match tx.send(job).await {
                Ok(()) => Ok(PendingMessage(PendingState::Queued(rx))),
                // The committer is gone: commit here.
                Err(e) => {
                    let SendJob { actor, req, .. } = e.0;
                    let r = self.commit_one(&actor, req).await;
                    Ok(PendingMessage(PendingState::Done(Some(r))))
                }
            };
        }
        let r = self.commit_one(actor, req).await;
        Ok(PendingMessage(PendingState::Done(Some(r))))
    }

    /// Check and store one send, without the committer (no runtime, or it is gone).
    async fn commit_one(&self, actor: &str, req: SendMessage) -> Result<Message> {
        self.check_post(actor, &req.room_id).await?;
        self.insert_and_publish(actor, req).await
    }

    /// Whether the sender of each of `jobs` may post in its room, in order: the
    /// membership cache first, then one [`Store::are_members`] call for every pair it does
    /// not vouch for (not a store round trip per pair: entries cached together expire
    /// together, and checking them one by one held up the committer for tens of ms).
    /// Pairs that are not memberships get their exact error from [`Hub::check_post`]
    /// (unknown room or not a member).
    async fn rights_to_post(&self, jobs: &[SendJob]) -> Vec<Result<()>> {
        let ttl = self.inner.config.membership_cache_ttl;
        let mut rights: HashMap<(&str, &str), Result<()>> = HashMap::with_capacity(jobs.len());
        let mut ask: Vec<(&str, &str)> = Vec::new();
        let mut renew: Vec<(String, String)> = Vec::new();
        // While a renewal runs, the pairs it would be given are not even collected.
        let renewing = self
            .inner
            .renewing
            .load(std::sync::atomic::Ordering::Acquire);
        {
            let cache = lock(&self.inner.may_post);
            for job in jobs {
                let key = (job.req.room_id.as_str(), job.actor.as_str());
                if rights.contains_key(&key) {
                    continue;
                }
                match cache.age(key.0, key.1) {
                    Some(age) if !ttl.is_zero() && age < ttl => {
                        rights.insert(key, Ok(()));
                        if !renewing && age >= ttl / 2 {
                            renew.push((key.0.to_owned(), key.1.to_owned()));
                        }
                    }
                    _ => {
                        // Answered by `ask_rights`, which sets every pair it is given.
                        rights.insert(key, Err(Error::Store("membership not checked".into())));
                        ask.push(key);
                    }
                }
            }
        }
        if !renew.is_empty() {
            self.renew_rights(renew);
        }
        if !ask.is_empty() {
            self.ask_rights(ask, ttl, &mut rights).await;
        }
        jobs.iter()
            .map(|job| {
                let key = (job.req.room_id.as_str(), job.actor.as_str());
                rights
                    .get(&key)
                    .cloned()
                    .unwrap_or_else(|| Err(Error::Store("membership not checked".into())))
            })
            .collect()
    }

    /// Renew cached memberships past half their time to live, in a background task (one
    /// at a time; none without a runtime): one [`Store::are_members`] call, then each pair
    /// still a member and still cached (not forgotten meanwhile, by a leave this node saw)
    /// is stamped as checked now, and each that is not is forgotten. So a sender who keeps
    /// posting is never held up by the store: the committer waits for `are_members` only
    /// for pairs not cached or expired, and under load every wait is a pass of the
    /// runtime's run queue. The guarantee is unchanged: a pair
    /// is trusted at most [`HubConfig::membership_cache_ttl`] after the store last said so.
    fn renew_rights(&self, pairs: Vec<(String, String)>) {
        use std::sync::atomic::Ordering;
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.inner.renewing.swap(true, Ordering::AcqRel) {
            return;
        }
        let hub = self.clone();
        rt.spawn(async move {
            let asked: Vec<(&str, &str)> = pairs
                .iter()
                .map(|(r, u)| (r.as_str(), u.as_str()))
                .collect();
            match hub.inner.store.are_members(&asked).await {
                Ok(members) if members.len() == asked.len() => {
                    let mut cache = lock(&hub.inner.may_post);
                    for ((room, user), member) in asked.into_iter().zip(members) {
                        if member {
                            cache.touch(room, user);
                        } else {
                            cache.forget(room, Some(user));
                        }
                    }
                }
                // Left to expire: the committer asks for them then.
                Ok(_) => tracing::debug!("membership renewal answered the wrong number of pairs"),
                Err(e) => tracing::debug!(error = %e, "membership renewal failed"),
            }
            hub.inner.renewing.store(false, Ordering::Release);
        });
    }

    /// [`Hub::rights_to_post`]'s store part: one [`Store::are_members`] call for `ask`.
    async fn ask_rights<'a>(
        &self,
        ask: Vec<(&'a str, &'a str)>,
        ttl: Duration,
        rights: &mut HashMap<(&'a str, &'a str), Result<()>>,
    ) {
        let members = match self.inner.store.are_members(&ask).await {
            Ok(m) if m.len() == ask.len() => m,
            // Unanswered: each pair on its own below.
            _ => vec![false; ask.len()],
        };
        for (key, member) in ask.into_iter().zip(members) {
            let right = if member {
                if !ttl.is_zero() {
                    lock(&self.inner.may_post).insert(key.0, key.1);
                }
                Ok(())
            } else {
                self.check_post(key.1, key.0).await
            };
            rights.insert(key, right);
        }
    }

    async fn check_post(&self, actor: &str, room_id: &str) -> Result<()> {
        let ttl = self.inner.config.membership_cache_ttl;
        if !ttl.is_zero() && lock(&self.inner.may_post).fresh(room_id, actor, ttl) {
            return Ok(());
        }
        let (room, member) = self.room_and_member(actor, room_id).await?;
        room.check_post(member.as_ref())?;
        if !ttl.is_zero() {
            lock(&self.inner.may_post).insert(room_id, actor);
        }
        Ok(())
    }

    /// Commit queued sends: rights checked once per (room, sender), one store transaction
    /// for all (one by one if the batch fails, so one bad send cannot sink the others),
    /// then publish and reply in order.
    async fn commit(&self, jobs: &mut Vec<SendJob>) {
        let rights = self.rights_to_post(jobs).await;
        let mut accepted = Vec::with_capacity(jobs.len());
        let mut batch = Vec::with_capacity(jobs.len());
        for (job, right) in jobs.drain(..).zip(rights) {
            if let Err(e) = right {
                let _ = job.reply.send(Err(e));
                continue;
            }
            batch.push(self.new_message(&job));
            accepted.push(job);
        }
        let store = &self.inner.store;
        let started = std::time::Instant::now();
        let results: Vec<Result<Inserted>> = match batch.len() {
            0 => return,
            1 => vec![store.insert_message(batch.remove(0)).await],
            _ => match store.insert_messages(batch).await {
                Ok(v) => v.into_iter().map(Ok).collect(),
                Err(e) => {
                    // Nothing of the batch was stored; each again from its request.
                    tracing::debug!(error = %e, "batch commit failed; committing one by one");
                    let mut v = Vec::with_capacity(accepted.len());
                    for job in &accepted {
                        v.push(store.insert_message(self.new_message(job)).await);
                    }
                    v
                }
            },
        };
        let stored = results.iter().filter(|r| r.is_ok()).count();
        self.inner
            .metrics
            .record_commit(stored as u64, started.elapsed());
        for (job, r) in accepted.into_iter().zip(results) {
            let r = match r {
                Ok(inserted) => {
                    self.publish_inserted(&job.actor, &inserted).await;
                    Ok(inserted.message)
                }
                Err(e) => Err(e),
            };
            let _ = job.reply.send(r);
        }
    }

    fn new_message(&self, job: &SendJob) -> NewMessage {
        NewMessage {
            id: new_id(),
            room_id: job.req.room_id.clone(),
            sender_id: job.actor.clone(),
            client_id: job.req.client_id.clone(),
            content: job.req.content.clone(),
            kind: job.req.kind,
            created_at: self.now(),
        }
    }

    async fn publish_inserted(&self, actor: &str, inserted: &Inserted) {
        if !inserted.created {
            return;
        }
        let m = &inserted.message;
        let now = self.now();
        let mut events = lock(&self.inner.typing).message_sent(&m.room_id, actor, now);
        let mut ev = m.event(EventType::MESSAGE_SEND, actor, now);
        ev.timestamp = m.created_at;
        events.insert(0, ev);
        self.emit(events).await;
    }

    async fn insert_and_publish(&self, actor: &str, req: SendMessage) -> Result<Message> {
        let now = self.now();
        let inserted = self
            .inner
            .store
            .insert_message(NewMessage {
                id: new_id(),
                room_id: req.room_id.clone(),
                sender_id: actor.to_owned(),
                client_id: req.client_id,
                content: req.content,
                kind: req.kind,
                created_at: now,
            })
            .await?;
        self.publish_inserted(actor, &inserted).await;
        Ok(inserted.message)
    }

    /// Post a SYSTEM message to a room as trusted server code (seed 004's
    /// "Direct chat started"), sender `system`.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for a user actor; [`Error::NotFound`].
    pub async fn send_system_message(
        &self,
        actor: &Actor,
        room_id: &str,
        content: String,
    ) -> Result<Message> {
        if *actor != Actor::System {
            return Err(Error::forbidden("only the server may post SYSTEM messages"));
        }
        self.inner.config.limits.check_content(&content)?;
        self.insert_and_publish(
            "system",
            SendMessage {
                room_id: room_id.to_owned(),
                content,
                kind: MessageKind::System,
                client_id: None,
            },
        )
        .await
    }

    async fn message_and_member(
        &self,
        actor: &str,
        message_id: &str,
    ) -> Result<(Message, Option<Member>)> {
        validate_id("message_id", message_id)?;
        let store = &self.inner.store;
        let msg = store
            .get_message(message_id)
            .await?
            .ok_or_else(|| Error::not_found("message", message_id))?;
        let member = store.get_member(&msg.room_id, actor).await?;
        Ok((msg, member))
    }

    /// A message, for members of its room.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Forbidden`].
    pub async fn get_message(&self, actor: &str, message_id: &str) -> Result<Message> {
        let (msg, member) = self.message_and_member(actor, message_id).await?;
        if member.is_none() {
            return Err(Error::forbidden("not a member of this room"));
        }
        Ok(msg)
    }

    /// The sender edits a message. Emits `event.message.edit`.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Forbidden`], [`Error::InvalidTransition`] (deleted), content errors.
    pub async fn edit_message(
        &self,
        actor: &str,
        message_id: &str,
        content: String,
    ) -> Result<Message> {
        let (mut msg, member) = self.message_and_member(actor, message_id).await?;
        if member.is_none() {
            return Err(Error::forbidden("not a member of this room"));
        }
        let ev = msg.edit(actor, content, &self.inner.config.limits, self.now())?;
        self.inner.store.update_message(&msg).await?;
        self.emit(vec![ev]).await;
        Ok(msg)
    }

    /// The sender or a room owner/admin deletes a message (tombstone). Emits `event.message.delete`.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Forbidden`], [`Error::InvalidTransition`] (already deleted).
    pub async fn delete_message(&self, actor: &str, message_id: &str) -> Result<Message> {
        let (mut msg, member) = self.message_and_member(actor, message_id).await?;
        let ev = msg.delete(actor, member.map(|m| m.role), self.now())?;
        self.inner.store.update_message(&msg).await?;
        self.emit(vec![ev]).await;
        Ok(msg)
    }

    /// Add (`add = true`) or remove a reaction; idempotent per `(user, emoji)`. Emits
    /// `event.message.reaction.add/remove` only when something changed. Returns whether it did.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Forbidden`], [`Error::Invalid`] (emoji), [`Error::InvalidTransition`] (deleted message).
    pub async fn react(
        &self,
        actor: &str,
        message_id: &str,
        emoji: &str,
        add: bool,
    ) -> Result<bool> {
        self.inner.config.limits.check_emoji(emoji)?;
        let (msg, member) = self.message_and_member(actor, message_id).await?;
        if member.is_none() {
            return Err(Error::forbidden("not a member of this room"));
        }
        if msg.is_deleted() {
            return Err(Error::InvalidTransition {
                entity: "message",
                from: "deleted".into(),
                to: "reacted".into(),
            });
        }
        let now = self.now();
        let changed = if add {
            self.inner
                .store
                .add_reaction(&Reaction {
                    message_id: msg.id.clone(),
                    user_id: actor.to_owned(),
                    emoji: emoji.to_owned(),
                    created_at: now,
                })
                .await?
        } else {
            self.inner
                .store
                .remove_reaction(&msg.id, actor, emoji)
                .await?
        };
        if changed {
            let ty = if add {
                EventType::MESSAGE_REACTION_ADD
            } else {
                EventType::MESSAGE_REACTION_REMOVE
            };
            let ev = Event::at(ty, serde_json::json!({ "message_id": msg.id, "room_id": msg.room_id, "user_id": actor, "emoji": emoji }), now)
                .with_user(actor)
                .with_room(msg.room_id.clone());
            self.emit(vec![ev]).await;
        }
        Ok(changed)
    }

    /// Move `actor`'s read pointer in `room_id` to `seq` (the latest when `None`). Emits
    /// `event.message.read` when it moved. Returns the pointer, which never moves back.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Forbidden`].
    pub async fn mark_read(&self, actor: &str, room_id: &str, seq: Option<u64>) -> Result<u64> {
        let (room, member) = self.room_and_member(actor, room_id).await?;
        room.check_read(member.as_ref())?;
        let store = &self.inner.store;
        let latest = store.latest_seq(room_id).await?;
        let target = seq.unwrap_or(latest).min(latest);
        let before = store.read_pointer(room_id, actor).await?;
        let now = self.now();
        let after = store
            .advance_read_pointer(room_id, actor, target, now)
            .await?;
        if after > before {
            let ev = Event::at(
                EventType::MESSAGE_READ,
                serde_json::json!({ "room_id": room_id, "user_id": actor, "seq": after }),
                now,
            )
            .with_user(actor)
            .with_room(room_id);
            self.emit(vec![ev]).await;
        }
        Ok(after)
    }

    /// `actor` read message `message_id` (seed 000's `POST /messages/:id/read`): moves the
    /// read pointer to its `seq` and, when the reader is not the sender, advances the
    /// message status to `READ` (`event.message.status`, seed 002).
    ///
    /// # Errors
    /// As [`Hub::mark_read`].
    pub async fn read_message(&self, actor: &str, message_id: &str) -> Result<u64> {
        let mut msg = self.get_message(actor, message_id).await?;
        let pointer = self.mark_read(actor, &msg.room_id, Some(msg.seq)).await?;
        if msg.sender_id != actor
            && !msg.is_deleted()
            && msg.advance_status(MessageStatus::Read).unwrap_or(false)
        {
            self.inner.store.update_message(&msg).await?;
            let ev = Event::at(EventType::MESSAGE_STATUS, serde_json::json!({ "message_id": msg.id, "room_id": msg.room_id, "status": msg.status }), self.now())
                .with_user(actor)
                .with_room(msg.room_id.clone());
            self.emit(vec![ev]).await;
        }
        Ok(pointer)
    }

    /// Unread messages for `actor` in `room_id`.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Forbidden`].
    pub async fn unread_count(&self, actor: &str, room_id: &str) -> Result<u64> {
        let (room, member) = self.room_and_member(actor, room_id).await?;
        room.check_read(member.as_ref())?;
        self.inner.store.unread_count(room_id, actor).await
    }

    /// A page of history (seed 004's `GET /messages?roomId&before&limit`), for members.
    /// `limit` is capped at [`HubConfig::max_page`]; 0 means 50.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Forbidden`].
    pub async fn history(
        &self,
        actor: &str,
        room_id: &str,
        before: Option<u64>,
        limit: u32,
    ) -> Result<HistoryPage> {
        let (room, member) = self.room_and_member(actor, room_id).await?;
        room.check_read(member.as_ref())?;
        let limit = if limit == 0 {
            50
        } else {
            limit.min(self.inner.config.max_page)
        };
        self.inner.store.history(room_id, before, limit).await
    }

    // ------------------------------------------------------------------ typing, presence

    /// `actor` starts (`true`) or stops typing in `room_id`. Repeated starts are throttled
    /// (see [`crate::typing`]); typing stops by itself after the TTL.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Forbidden`].
    pub async fn typing(&self, actor: &str, room_id: &str, is_typing: bool) -> Result<()> {
        let (room, member) = self.room_and_member(actor, room_id).await?;
        room.check_post(member.as_ref())?;
        let now = self.now();
        let events = {
            let mut t = lock(&self.inner.typing);
            if is_typing {
                t.start(room_id, actor, now)
            } else {
                t.stop(room_id, actor, now)
            }
        };
        if !events.is_empty() {
            let events = self.add_usernames(events).await;
            self.emit(events).await;
        }
        Ok(())
    }

    /// A connected `actor` sets `online` or `away` (seed 004's `chat:presence`).
    ///
    /// # Errors
    /// [`Error::Invalid`] for `offline`, [`Error::Forbidden`] when not connected here.
    pub async fn set_status(&self, actor: &str, status: UserStatus) -> Result<()> {
        let now = self.now();
        let events = lock(&self.inner.presence).set_status(actor, status, now)?;
        if !events.is_empty() {
            self.inner.store.set_user_status(actor, status, now).await?;
            let events = self.add_usernames(events).await;
            self.emit(events).await;
        }
        Ok(())
    }

    // ------------------------------------------------------------------ notifications, system

    /// Send seed 001's notification to one user (`event.user.notification` on `user:{id}`,
    /// data `{type, title, message, data?, timestamp}`). Privileged.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for a user actor; [`Error::Invalid`] for a bad kind or user id.
    pub async fn notify_user(&self, actor: &Actor, user: &str, n: Notification) -> Result<Event> {
        if *actor != Actor::System {
            return Err(Error::forbidden("only the server may send notifications"));
        }
        validate_id("user_id", user)?;
        if !matches!(n.kind.as_str(), "info" | "success" | "warning" | "error") {
            return Err(Error::invalid(
                "type",
                "must be info, success, warning or error",
            ));
        }
        let now = self.now();
        let mut data = serde_json::to_value(&n)?;
        data["timestamp"] = serde_json::to_value(now)?;
        let ev = Event::at(EventType::USER_NOTIFICATION, data, now).with_user(user);
        self.emit(vec![ev.clone()]).await;
        Ok(ev)
    }

    /// Publish a system event (seed 000's `POST /api/v1/events/system`). Privileged.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for a user actor.
    pub async fn broadcast_system(
        &self,
        actor: &Actor,
        kind: SystemEvent,
        data: serde_json::Value,
    ) -> Result<Event> {
        if *actor != Actor::System {
            return Err(Error::forbidden(
                "only the server may publish system events",
            ));
        }
        let ty = match kind {
            SystemEvent::Maintenance => EventType::SYSTEM_MAINTENANCE,
            SystemEvent::Shutdown => EventType::SYSTEM_SHUTDOWN,
            SystemEvent::Broadcast => EventType::SYSTEM_BROADCAST,
        };
        let ev = Event::at(ty, data, self.now());
        self.emit(vec![ev.clone()]).await;
        Ok(ev)
    }
}
