//! `GET /metrics`: the server's metrics in the Prometheus text format (version 0.0.4),
//! through the `metrics` facade and `metrics-exporter-prometheus`.
//!
//! | metric | kind | what |
//! |---|---|---|
//! | `realtime_connections{dialect}` | gauge | WebSocket connections open now |
//! | `realtime_sessions{dialect}` | gauge | Hub sessions open now (authenticated connections) |
//! | `realtime_events_published_total{type}` | counter | events published by this node |
//! | `realtime_deliveries_total` | counter | frames queued to sessions |
//! | `realtime_messages_committed_total` | counter | messages stored |
//! | `realtime_message_commits_total` | counter | store transactions that stored them |
//! | `realtime_store_commit_seconds` | histogram | how long each of those transactions took |
//! | `realtime_slow_consumers_total` | counter | sessions closed because they could not keep up |
//! | `realtime_dropped_frames_total` | counter | frames queued to those sessions and never sent |
//! | `realtime_oversized_frames_total` | counter | frames larger than a session queue, not queued |
//!
//! The counters come from `realtime_core::metrics` as they happen; the gauges are read
//! from the Hub and the WebSocket server at each scrape. The endpoint needs no token, as
//! Prometheus scrapes expect: keep it off the public internet (a reverse proxy rule, or a
//! network policy).

use crate::state::AppState;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// Upper bounds of the commit-latency histogram's buckets, seconds: 100 µs to 1 s.
const COMMIT_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// The process's Prometheus recorder, installed as the `metrics` facade's global recorder
/// the first time it is asked for; `None` when another recorder was installed first (an
/// embedding application's own).
pub fn handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("realtime_store_commit_seconds".into()),
                    COMMIT_BUCKETS,
                )
                .map_err(|e| tracing::warn!(error = %e, "bad histogram buckets"))
                .ok()?;
            match builder.install_recorder() {
                Ok(h) => Some(h),
                Err(e) => {
                    tracing::warn!(error = %e, "no /metrics: a metrics recorder is installed already");
                    None
                }
            }
        })
        .clone()
}

/// `GET /metrics`: the text exposition; 503 when no recorder could be installed.
pub async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    let Some(handle) = &s.prometheus else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "metrics are not recorded by this process\n".to_owned(),
        );
    };
    for (dialect, n) in s.hub.sessions_by_dialect() {
        metrics::gauge!("realtime_sessions", "dialect" => dialect).set(n as f64);
    }
    metrics::gauge!("realtime_connections", "dialect" => "native")
        .set(s.ws.open_connections() as f64);
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
}
