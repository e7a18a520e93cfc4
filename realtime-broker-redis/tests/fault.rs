//! Redis goes away mid-traffic and comes back: publishes fail fast with a typed error,
//! both nodes reconnect and resubscribe by themselves, and everything published after
//! recovery is delivered.

mod common;

use realtime_core::testing::Collector;
use realtime_core::{Channel, Event, EventType, Publisher, Subscriber};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_survive_a_redis_restart() {
    let Some(mut redis) = common::OwnRedis::start(None).await else {
        return;
    };
    let port = redis.port;
    let cfg = common::config();
    let a = realtime_broker_redis::RedisBroker::connect(&redis.url(), cfg.clone())
        .await
        .expect("a");
    let b = realtime_broker_redis::RedisBroker::connect(&redis.url(), cfg)
        .await
        .expect("b");
    let got = Arc::new(Collector::default());
    b.set_handler(got.clone());
    a.set_handler(Arc::new(Collector::default()));
    let ch = Channel::room("fault").expect("channel");
    b.subscribe(&ch).await.expect("subscribe");
    let before = Arc::new(Event::new(
        EventType::MESSAGE_SEND,
        serde_json::json!({"n": "before"}),
    ));
    a.publish(&ch, before.clone())
        .await
        .expect("publish before");
    assert!(
        got.wait_for(before.id, 1).await,
        "delivered before the outage"
    );

    redis.stop().await;
    let t = Instant::now();
    let during = Arc::new(Event::new(
        EventType::MESSAGE_SEND,
        serde_json::json!({"n": "during"}),
    ));
    let e = a.publish(&ch, during).await.expect_err("Redis is down");
    assert_eq!(e.code(), "broker_error");
    assert!(e.is_temporary());
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "fails fast, never hangs: {:?}",
        t.elapsed()
    );

    let mut redis = common::OwnRedis::start(Some(port))
        .await
        .expect("restart on the same port");
    // Both nodes come back by themselves: wait until the subscriber reports it resubscribed.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(a.health().connected && b.health().connected) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        b.health().connected,
        "node b reconnected without a restart: {:?}",
        b.health()
    );
    // From here on, every acknowledged publish must arrive.
    let mut acked = Vec::new();
    while acked.len() < 20 && Instant::now() < deadline {
        let ev = Arc::new(Event::new(
            EventType::MESSAGE_SEND,
            serde_json::json!({"n": acked.len()}),
        ));
        if a.publish(&ch, ev.clone()).await.is_ok() {
            acked.push(ev.id);
        } else {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert_eq!(acked.len(), 20, "publishing recovered by itself");
    // The subscriber resubscribed by itself; the first acked publishes may have gone out
    // before it did, so wait for the last one and then require all after the first seen.
    let last = *acked.last().expect("last");
    assert!(
        got.wait_for(last, 1).await,
        "node b resubscribed and receives again"
    );
    let seen: Vec<_> = got.all().into_iter().map(|(_, id)| id).collect();
    for id in &acked {
        assert!(
            seen.contains(id),
            "every publish acknowledged after recovery is delivered"
        );
    }
    let h = b.health();
    assert!(h.connected, "{h:?}");
    assert!(
        h.outages >= 1 && h.last_outage_ms > 0,
        "the outage was measured: {h:?}"
    );
    redis.stop().await;
}
