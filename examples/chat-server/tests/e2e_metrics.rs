//! `GET /metrics` in the Prometheus text format: scraped while clients are connected and
//! messages flow, its connection, session, delivery and commit series move. (One test in
//! this file: the recorder is the process's.)

mod common;

use common::*;
use serde_json::json;

/// The value of the sample `name` (with its labels, as written) in an exposition.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

async fn scrape(s: &Server) -> String {
    let r = s.http.get(s.url("/metrics")).send().await.expect("scrape");
    assert_eq!(r.status().as_u16(), 200);
    let ct = r.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    r.text().await.expect("text")
}

#[tokio::test]
async fn metrics_move_while_clients_are_connected() {
    let s = start(|_| {}).await;
    let room = s.room("alice", &["bob", "carol"]).await;
    let mut clients = vec![s.ws("alice").await, s.ws("bob").await, s.ws("carol").await];
    let before = scrape(&s).await;
    assert_eq!(
        sample(&before, r#"realtime_connections{dialect="native"}"#),
        Some(3.0),
        "{before}"
    );
    assert_eq!(
        sample(&before, r#"realtime_sessions{dialect="native"}"#),
        Some(3.0)
    );
    let delivered = sample(&before, "realtime_deliveries_total").unwrap_or(0.0);
    let stored = sample(&before, "realtime_messages_committed_total").unwrap_or(0.0);
    for i in 0..5 {
        let (status, _) = s
            .post(
                "alice",
                "/api/v1/messages",
                json!({"room_id": room, "content": format!("m{i}")}),
            )
            .await;
        assert_eq!(status, 201);
    }
    for ws in &mut clients {
        for _ in 0..5 {
            until(ws, "event.message.send").await;
        }
    }
    drop(clients.pop());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let after = scrape(&s).await;
    assert_eq!(
        sample(&after, "realtime_messages_committed_total"),
        Some(stored + 5.0),
        "{after}"
    );
    assert!(
        sample(&after, "realtime_deliveries_total").unwrap_or(0.0) >= delivered + 15.0,
        "{after}"
    );
    assert!(sample(&after, "realtime_store_commit_seconds_count").unwrap_or(0.0) >= 1.0);
    assert!(after.contains("realtime_store_commit_seconds_bucket{le=\"0.001\"}"));
    assert_eq!(
        sample(&after, r#"realtime_connections{dialect="native"}"#),
        Some(2.0)
    );
    assert_eq!(
        sample(&after, r#"realtime_sessions{dialect="native"}"#),
        Some(2.0)
    );
    assert!(after.contains("# TYPE realtime_deliveries_total counter"));
}
