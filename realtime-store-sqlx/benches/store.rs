//! Store throughput and history latency on SQLite and PostgreSQL.
//!
//! ```sh
//! cargo bench -p realtime-store-sqlx --bench store -- --backend all
//! cargo test  -p realtime-store-sqlx --bench store -- --quick   # a few-second smoke run
//! ```
//!
//! Measures: messages stored per second one at a time (`insert_message`, each its own
//! transaction, with a client id as a real client sends) and in batches
//! (`insert_messages`, 100 per transaction); then fills one room to `--history-rows`
//! messages and times `history(room, before = random, 50)` pages.

use chrono::Utc;
use clap::Parser;
use realtime_core::{Member, MessageKind, NewMessage, Role, Room, RoomKind, Store};
use realtime_store_sqlx::{PgStore, PoolConfig, SqliteStore};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::str::FromStr;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
struct Args {
    /// sqlite, postgres or all.
    #[arg(long, default_value = "all")]
    backend: String,
    /// Messages for the insert measurements.
    #[arg(long, default_value_t = 20_000)]
    messages: u32,
    /// Messages per batch.
    #[arg(long, default_value_t = 100)]
    batch: u32,
    /// Rows in the history room.
    #[arg(long, default_value_t = 1_000_000)]
    history_rows: u32,
    /// History pages to time.
    #[arg(long, default_value_t = 2_000)]
    pages: u32,
    /// Small sizes for a smoke run.
    #[arg(long)]
    quick: bool,
    /// PostgreSQL URL.
    #[arg(
        long,
        env = "REALTIME_TEST_PG_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    pg_url: String,
    /// Ignored (passed by `cargo bench`).
    #[arg(long, hide = true)]
    bench: bool,
}

fn room(id: &str) -> Room {
    let now = Utc::now();
    Room {
        id: id.into(),
        name: id.into(),
        kind: RoomKind::Group,
        description: None,
        is_private: false,
        created_by: "bench".into(),
        created_at: now,
        updated_at: now,
        epoch: "e".into(),
    }
}

fn msg(room: &str, i: u32, client: bool) -> NewMessage {
    NewMessage {
        id: realtime_core::ids::new_id(),
        room_id: room.into(),
        sender_id: format!("user-{}", i % 10),
        client_id: client.then(|| format!("c-{i}")),
        content: format!("message number {i}: a typical short chat line of about eighty bytes."),
        kind: MessageKind::Text,
        created_at: Utc::now(),
    }
}

async fn new_room(store: &dyn Store, id: &str) {
    let m = Member {
        room_id: id.into(),
        user_id: "bench".into(),
        role: Role::Owner,
        joined_at: Utc::now(),
    };
    store.create_room(&room(id), &[m]).await.expect("room");
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

async fn run(name: &str, store: &dyn Store, a: &Args) {
    new_room(store, "single").await;
    let t = Instant::now();
    for i in 0..a.messages {
        store
            .insert_message(msg("single", i, true))
            .await
            .expect("insert");
    }
    let single = f64::from(a.messages) / t.elapsed().as_secs_f64();

    new_room(store, "batched").await;
    let t = Instant::now();
    let mut i = 0;
    while i < a.messages {
        let n = a.batch.min(a.messages - i);
        let batch = (i..i + n).map(|j| msg("batched", j, true)).collect();
        store.insert_messages(batch).await.expect("batch");
        i += n;
    }
    let batched = f64::from(a.messages) / t.elapsed().as_secs_f64();

    new_room(store, "history").await;
    let t = Instant::now();
    let mut i = 0;
    while i < a.history_rows {
        let n = 1000.min(a.history_rows - i);
        store
            .insert_messages((i..i + n).map(|j| msg("history", j, false)).collect())
            .await
            .expect("fill");
        i += n;
    }
    let fill = t.elapsed();
    let mut lat = Vec::with_capacity(a.pages as usize);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..a.pages {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let before = 51 + x % u64::from(a.history_rows.saturating_sub(50).max(1));
        let t = Instant::now();
        let page = store
            .history("history", Some(before), 50)
            .await
            .expect("page");
        lat.push(t.elapsed());
        assert_eq!(page.messages.len(), 50);
    }
    let newest = {
        let t = Instant::now();
        store.history("history", None, 50).await.expect("page");
        t.elapsed()
    };
    lat.sort();
    println!(
        "| {name} | {single:.0} | {batched:.0} | {} | {:.0} | {:.0} | {:.0} | {:.1} s |",
        a.history_rows,
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        newest.as_secs_f64() * 1e6,
        fill.as_secs_f64()
    );
    println!(
        "{{\"backend\":\"{name}\",\"single_msgs_per_s\":{single:.0},\"batched_msgs_per_s\":{batched:.0},\"batch\":{},\"history_rows\":{},\"page_p50_us\":{:.0},\"page_p99_us\":{:.0}}}",
        a.batch,
        a.history_rows,
        pct(&lat, 0.5),
        pct(&lat, 0.99)
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut a = Args::parse();
    if a.quick {
        a.messages = a.messages.min(300);
        a.history_rows = a.history_rows.min(3_000);
        a.pages = a.pages.min(100);
    }
    println!(
        "| backend | single msgs/s | batched msgs/s (x{}) | history rows | page p50 µs | page p99 µs | newest page µs | fill |",
        a.batch
    );
    println!("|---|---|---|---|---|---|---|---|");
    if a.backend == "sqlite" || a.backend == "all" {
        let path = std::env::temp_dir().join(format!("realtime-bench-{}.db", std::process::id()));
        let store = SqliteStore::connect(&format!("sqlite://{}", path.display()))
            .await
            .expect("sqlite");
        run("SQLite (file, WAL)", &store, &a).await;
        drop(store);
        for s in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{s}", path.display()));
        }
    }
    if a.backend == "postgres" || a.backend == "all" {
        let admin = match PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(3))
            .connect(&a.pg_url)
            .await
        {
            Ok(p) => p,
            Err(e) => {
                println!("PostgreSQL skipped: {} unreachable ({e})", a.pg_url);
                return;
            }
        };
        let schema = format!("rt_bench_{}", std::process::id());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&admin)
            .await
            .expect("schema");
        let opts = PgConnectOptions::from_str(&a.pg_url)
            .expect("url")
            .options([("search_path", schema.as_str())]);
        let store = PgStore::connect_options(opts, &PoolConfig::default())
            .await
            .expect("pg");
        run("PostgreSQL 15 (loopback)", &store, &a).await;
        drop(store);
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&admin)
            .await
            .expect("drop");
    }
}
