//! The Hub's typed settings: [`HubConfig`] (limits, presence and typing timers, queue
//! bounds, subscriptions on connect) and [`CommitConfig`] (the committer's batching).
//! Every field has a default that suits a chat server.

use crate::message::Limits;
use crate::presence::PresenceConfig;
use crate::typing::TypingConfig;
use std::time::Duration;

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
    /// Largest event [`Hub::publish`](crate::Hub::publish) accepts, in bytes of its JSON (default 256 KiB;
    /// never more than [`session_queue_bytes`](Self::session_queue_bytes) counts). A larger
    /// event is refused with [`Error::EventTooLarge`](crate::Error::EventTooLarge) instead of filling every receiving
    /// session's queue, which would close them all as slow consumers. Events the Hub
    /// builds itself stay far below it: their user-supplied fields are bounded by
    /// [`Limits`].
    pub max_event_bytes: usize,
    /// Sessions one user may have open on this node (default 32).
    pub max_sessions_per_user: usize,
    /// How long an invite stays valid (default 7 days).
    pub invite_ttl: Duration,
    /// Events kept in memory for [`Hub::event_history`](crate::Hub::event_history) (default 1000).
    pub event_history: usize,
    /// Also append every published event to [`Store::append_event`](crate::Store::append_event) (default false).
    pub persist_events: bool,
    /// Most messages [`Hub::recover`](crate::Hub::recover) replays; beyond it the client must reload (default 1000).
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
    /// 10,000 frames per join). Members read the list with [`Hub::list_members`](crate::Hub::list_members). As
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
