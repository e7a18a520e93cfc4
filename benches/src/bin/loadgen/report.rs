//! The JSON report of a W1 or W2 run, and of a run whose set-up failed.

use super::procfs::{ThreadsCpu, rss_kib};
use super::{Gen, Stats};
use serde_json::json;
use std::sync::atomic::Ordering;

/// What one W1 or W2 run measured besides the readers' [`Stats`].
pub(crate) struct Measured {
    pub(crate) sent: u64,
    pub(crate) expected: u64,
    pub(crate) wall: f64,
    pub(crate) server_cpu: Option<u64>,
    pub(crate) server_threads_cpu: Option<ThreadsCpu>,
    pub(crate) generator_cpu: Option<u64>,
    pub(crate) setup: f64,
}

/// The common part of the W1 and W2 reports.
pub(crate) fn report(g: &Gen, stats: &Stats, m: Measured) -> serde_json::Value {
    let Measured {
        sent,
        expected,
        wall,
        server_cpu: cpu,
        server_threads_cpu: threads,
        generator_cpu: gen_cpu,
        setup,
    } = m;
    let got = stats.delivered.load(Ordering::Relaxed);
    let pct = |p: f64| stats.latency.quantile(p);
    json!({
        "workload": format!("{:?}", g.args.workload).to_lowercase(), "protocol": g.protocol(),
        "clients": g.args.clients, "setup_seconds": setup, "seconds": wall,
        "messages_sent": sent, "deliveries": got, "deliveries_per_second": got as f64 / wall,
        "losses": expected.saturating_sub(got),
        "acks": g.args.send_ids.then(|| stats.acks.load(Ordering::Relaxed)),
        "latency_us": {"p50": pct(0.5), "p99": pct(0.99), "max": pct(1.0)},
        "server_cpu_us": cpu,
        "server_cpu_us_per_delivery": cpu.map(|c| c as f64 / got.max(1) as f64),
        "server_cpu_share": cpu.map(|c| c as f64 / 1e6 / wall),
        "server_cpu_us_by_thread": threads,
        "server_rss_kib": g.args.server_pid.and_then(rss_kib),
        "generator_cpu_share": gen_cpu.map(|c| c as f64 / 1e6 / wall),
    })
}

pub(crate) fn setup_failed(g: &Gen, stats: &Stats, e: String) -> serde_json::Value {
    stats.stop.store(true, Ordering::Relaxed);
    json!({
        "workload": format!("{:?}", g.args.workload).to_lowercase(), "protocol": g.protocol(),
        "clients": g.args.clients, "error": e,
        "connected": stats.connected.load(Ordering::Relaxed),
        "setup_timeout_seconds": g.args.setup_timeout,
        "inflight": if g.args.rate.is_none() { json!(g.args.inflight) } else { serde_json::Value::Null },
        "rate": g.args.rate, "rate_per_client": g.args.rate.unwrap_or(20.0),
        "room_size": g.args.room_size.max(1),
    })
}
