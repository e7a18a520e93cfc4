//! The conformance suites against the in-memory backends.

use realtime_core::{MemoryBus, MemoryStore, testing};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_passes_the_store_suite() {
    testing::store_suite(Arc::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn memory_bus_passes_the_broker_suite() {
    let bus = MemoryBus::new();
    testing::broker_suite(Arc::new(bus.node()), Arc::new(bus.node())).await;
}
