//! Event counters (seed 000's `GET /api/v1/events/metrics`).
//!
//! Plain atomics and one small map, always on; with feature `metrics` the same counts also
//! go to the `metrics` facade, named by Prometheus' conventions:
//!
//! | metric | kind | what |
//! |---|---|---|
//! | `realtime_events_published_total{type}` | counter | events published by this node |
//! | `realtime_deliveries_total` | counter | frames queued to sessions |
//! | `realtime_slow_consumers_total` | counter | sessions closed because they could not keep up |
//! | `realtime_dropped_frames_total` | counter | frames queued to those sessions and never sent |
//! | `realtime_oversized_frames_total` | counter | frames too large for any session queue, not queued |
//! | `realtime_message_commits_total` | counter | store transactions of the group committer |
//! | `realtime_messages_committed_total` | counter | messages stored by them |
//! | `realtime_store_commit_seconds` | histogram | how long each of those transactions took |
//!
//! Gauges of the current state (sessions per dialect, connections) are the host's to set
//! when it renders them ([`crate::Hub::sessions_by_dialect`]).

use crate::event::EventType;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters shared by the Hub and the router.
#[derive(Debug, Default)]
pub struct EventMetrics {
    published: AtomicU64,
    delivered: AtomicU64,
    routed: AtomicU64,
    failed: AtomicU64,
    slow_consumers: AtomicU64,
    dropped: AtomicU64,
    oversized: AtomicU64,
    commits: AtomicU64,
    committed: AtomicU64,
    by_type: Mutex<BTreeMap<String, u64>>,
}

/// A point-in-time copy of [`EventMetrics`], serialized as the metrics endpoint's body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MetricsSnapshot {
    /// Events published by this node.
    pub events_published: u64,
    /// Frames queued to local sessions (one per session per event).
    pub deliveries: u64,
    /// Events dispatched through an `EventRouter` with a `MetricsLayer`.
    pub events_routed: u64,
    /// Dispatches that ended in an error.
    pub events_failed: u64,
    /// Sessions disconnected because they could not keep up.
    pub slow_consumers: u64,
    /// Frames that were queued to those sessions when they were closed, and never sent.
    pub dropped_frames: u64,
    /// Frames not queued to a session because the one frame was larger than the session's
    /// whole queue may hold (an event from a broker peer with larger limits than this
    /// node's; this node's own [`crate::Hub::publish`] refuses such events). The session
    /// stays open.
    pub oversized_frames: u64,
    /// Batches of queued sends the group committer wrote to the store (one transaction
    /// each; a batch the store refused as a whole is redone send by send and still counts
    /// once).
    pub message_commits: u64,
    /// Messages stored by those writes: `messages_committed / message_commits` is the
    /// mean batch size, which grows with load (each commit costs about the same).
    pub messages_committed: u64,
    /// Published events per type.
    pub by_type: BTreeMap<String, u64>,
}

impl EventMetrics {
    /// Count one published event.
    pub fn record_published(&self, t: &EventType) {
        self.published.fetch_add(1, Ordering::Relaxed);
        let mut by_type = self.by_type.lock().unwrap_or_else(|p| p.into_inner());
        // Looked up before inserting: no key allocated per event once a type is known.
        match by_type.get_mut(t.as_str()) {
            Some(n) => *n += 1,
            None => {
                by_type.insert(t.as_str().to_owned(), 1);
            }
        }
        drop(by_type);
        #[cfg(feature = "metrics")]
        metrics::counter!("realtime_events_published_total", "type" => t.as_str().to_owned())
            .increment(1);
    }

    /// Count `n` frames queued to sessions.
    pub fn record_deliveries(&self, n: u64) {
        self.delivered.fetch_add(n, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        metrics::counter!("realtime_deliveries_total").increment(n);
    }

    /// Count one routed event.
    pub fn record_routed(&self, _t: &EventType) {
        self.routed.fetch_add(1, Ordering::Relaxed);
    }

    /// Count one failed dispatch.
    pub fn record_failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    /// Count one group commit of `messages` queued sends that took `took` in the store.
    pub fn record_commit(&self, messages: u64, took: std::time::Duration) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.committed.fetch_add(messages, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        {
            metrics::counter!("realtime_message_commits_total").increment(1);
            metrics::counter!("realtime_messages_committed_total").increment(messages);
            metrics::histogram!("realtime_store_commit_seconds").record(took.as_secs_f64());
        }
        #[cfg(not(feature = "metrics"))]
        let _ = took;
    }

    /// Count one slow-consumer disconnect, which drops the `backlog` frames it had queued.
    pub fn record_slow_consumer(&self, backlog: u64) {
        self.slow_consumers.fetch_add(1, Ordering::Relaxed);
        self.dropped.fetch_add(backlog, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        {
            metrics::counter!("realtime_slow_consumers_total").increment(1);
            metrics::counter!("realtime_dropped_frames_total").increment(backlog);
        }
    }

    /// Count `n` frames too large for any session's queue, not queued.
    pub fn record_oversized(&self, n: u64) {
        self.oversized.fetch_add(n, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        metrics::counter!("realtime_oversized_frames_total").increment(n);
    }

    /// Copy the counters.
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            events_published: self.published.load(Ordering::Relaxed),
            deliveries: self.delivered.load(Ordering::Relaxed),
            events_routed: self.routed.load(Ordering::Relaxed),
            events_failed: self.failed.load(Ordering::Relaxed),
            slow_consumers: self.slow_consumers.load(Ordering::Relaxed),
            dropped_frames: self.dropped.load(Ordering::Relaxed),
            oversized_frames: self.oversized.load(Ordering::Relaxed),
            message_commits: self.commits.load(Ordering::Relaxed),
            messages_committed: self.committed.load(Ordering::Relaxed),
            by_type: self
                .by_type
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }
}
