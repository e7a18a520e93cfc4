//! The core Broker conformance suite on the machine's Redis.

mod common;

use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_passes_the_broker_suite() {
    let Some((a, b)) = common::two_nodes(common::config()).await else {
        return;
    };
    assert_ne!(a.node_id(), b.node_id());
    realtime_core::testing::broker_suite(Arc::new(a), Arc::new(b)).await;
}

#[tokio::test]
async fn a_malformed_url_is_a_typed_error() {
    let e = realtime_broker_redis::RedisBroker::connect("http://nope", common::config())
        .await
        .expect_err("bad url");
    assert_eq!(e.code(), "invalid");
}
