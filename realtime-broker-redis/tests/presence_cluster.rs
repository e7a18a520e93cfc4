//! Presence across two Hubs sharing one Redis: online once for the cluster, and a crashed
//! node's users go offline within the TTL without anyone calling anything.

mod common;

use realtime_broker_redis::RedisConfig;
use realtime_core::*;
use std::sync::Arc;
use std::time::Duration;

fn who(id: &str) -> Identity {
    Identity {
        user_id: id.into(),
        username: None,
        claims: serde_json::Value::Null,
    }
}

fn statuses(s: &mut Session, user: &str) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(Outbound::Frame(b)) = s.try_recv() {
        let e = Event::from_json_bytes(&b).expect("event");
        if e.user_id.as_deref() == Some(user) && e.event_type.as_str().starts_with("event.user.") {
            out.push(e.event_type.to_string());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_spans_nodes_and_expires_with_a_crashed_node() {
    let cfg = RedisConfig {
        presence_ttl: Duration::from_millis(1500),
        presence_refresh: Duration::from_millis(300),
        ..common::config()
    };
    let Some((ba, bb)) = common::two_nodes(cfg).await else {
        return;
    };
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let config = HubConfig {
        presence: PresenceConfig {
            grace: Duration::from_millis(100),
        },
        ..HubConfig::default()
    };
    let pa = Arc::new(ba.presence());
    let pb = Arc::new(bb.presence());
    let hub_a = Hub::builder(store.clone(), Arc::new(ba))
        .cluster_presence(pa)
        .config(config.clone())
        .build();
    let hub_b = Hub::builder(store.clone(), Arc::new(bb))
        .cluster_presence(pb.clone())
        .config(config)
        .build();

    let mut watcher = hub_b
        .connect(ConnectOptions::chat(who("watcher")))
        .await
        .expect("watcher on B");
    let on_a = hub_a
        .connect(ConnectOptions::chat(who("u")))
        .await
        .expect("u on A");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(statuses(&mut watcher, "u"), ["event.user.online"]);
    assert!(
        pb.online_elsewhere("u").await.expect("ask"),
        "B sees u on A"
    );

    // A second connection of u, on node B: no second online for the cluster.
    let on_b = hub_b
        .connect(ConnectOptions::chat(who("u")))
        .await
        .expect("u on B");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        statuses(&mut watcher, "u").is_empty(),
        "still the same online user"
    );
    // Closing it: u is still on A, so no offline either.
    drop(on_b);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        statuses(&mut watcher, "u").is_empty(),
        "u is still online on A"
    );

    // Node A crashes: its session never closes, its Hub and refresh task are gone.
    std::mem::forget(on_a);
    drop(hub_a);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(6);
    let mut got = Vec::new();
    while tokio::time::Instant::now() < deadline && got.is_empty() {
        tokio::time::sleep(Duration::from_millis(100)).await;
        got = statuses(&mut watcher, "u");
    }
    assert_eq!(
        got,
        ["event.user.offline"],
        "announced within the TTL by the surviving node"
    );
}
