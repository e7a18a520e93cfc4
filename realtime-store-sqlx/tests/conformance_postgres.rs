//! The core Store conformance suite on the machine's PostgreSQL, each test in its own schema.

mod common;

use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_passes_the_store_suite() {
    let Some((store, _schema)) = common::pg_store(10).await else {
        return;
    };
    realtime_core::testing::store_suite(Arc::new(store)).await;
}
