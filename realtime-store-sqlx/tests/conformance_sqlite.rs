//! The core Store conformance suite on SQLite, in memory and in a file.

mod common;

use realtime_store_sqlx::SqliteStore;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_memory_passes_the_store_suite() {
    let store = SqliteStore::connect("sqlite::memory:")
        .await
        .expect("connect");
    realtime_core::testing::store_suite(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_passes_the_store_suite() {
    let db = common::TempDb::new();
    let store = SqliteStore::connect(&db.url()).await.expect("connect");
    realtime_core::testing::store_suite(Arc::new(store)).await;
    // Reopening applies no migration twice and sees the data.
    let again = SqliteStore::connect(&db.url()).await.expect("reconnect");
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _realtime_migrations")
        .fetch_one(again.pool())
        .await
        .expect("count");
    assert_eq!(n, 1);
}
