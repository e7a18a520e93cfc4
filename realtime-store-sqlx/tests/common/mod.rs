//! Test helpers: a PostgreSQL schema of one's own per test, SQLite temp files.
#![allow(dead_code)]

use realtime_store_sqlx::{PgStore, PoolConfig};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

/// The PostgreSQL test server: `REALTIME_TEST_PG_URL`, default the machine's local one.
pub fn pg_url() -> String {
    std::env::var("REALTIME_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn require_services() -> bool {
    std::env::var("REALTIME_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// Drops the test's schema when the test ends (also on failure).
pub struct Schema {
    pub name: String,
}

impl Drop for Schema {
    fn drop(&mut self) {
        let name = self.name.clone();
        // A fresh runtime on its own thread: Drop may run inside the test's runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("rt");
            rt.block_on(async {
                if let Ok(pool) = PgPoolOptions::new()
                    .max_connections(1)
                    .connect(&pg_url())
                    .await
                {
                    let sql = format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await;
                }
            });
        })
        .join();
    }
}

/// A `PgStore` in a new schema, or `None` (with a printed reason) when PostgreSQL is not
/// reachable. Panics instead when `REALTIME_REQUIRE_SERVICES=1`.
pub async fn pg_store(max_connections: u32) -> Option<(PgStore, Schema)> {
    let url = pg_url();
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(3))
        .connect(&url)
        .await;
    let admin = match admin {
        Ok(p) => p,
        Err(e) => {
            if require_services() {
                panic!(
                    "PostgreSQL is required (REALTIME_REQUIRE_SERVICES=1) but {url} is unreachable: {e}"
                );
            }
            eprintln!(
                "SKIPPED: PostgreSQL not reachable at {url} ({e}); set REALTIME_TEST_PG_URL or start it"
            );
            return None;
        }
    };
    let name = format!("rt_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{name}\"")))
        .execute(&admin)
        .await
        .expect("create schema");
    let schema = Schema { name: name.clone() };
    let options = PgConnectOptions::from_str(&url)
        .expect("url")
        .options([("search_path", name.as_str())]);
    let config = PoolConfig {
        max_connections,
        ..PoolConfig::default()
    };
    let store = PgStore::connect_options(options, &config)
        .await
        .expect("connect PgStore");
    Some((store, schema))
}

/// A unique SQLite file path in the temp dir, removed (with its WAL files) on drop.
pub struct TempDb(pub std::path::PathBuf);

impl TempDb {
    pub fn new() -> Self {
        TempDb(std::env::temp_dir().join(format!(
            "realtime-test-{}.db",
            uuid::Uuid::new_v4().simple()
        )))
    }
    pub fn url(&self) -> String {
        format!("sqlite://{}", self.0.display())
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}
