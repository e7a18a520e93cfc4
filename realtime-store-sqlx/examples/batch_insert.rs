//! A repeatable load for instruction counts of SQLite's batch insert: `N` messages (default
//! 20,000) in batches of 5–30 (a fixed pseudo-random sequence), or of `BATCH` each (third
//! argument), to `ROOMS` rooms (second argument, default 100), through
//! [`Store::insert_messages`], in a fresh database file under the system's temp directory,
//! with the background checkpoints held off (their share varies with wall time under
//! valgrind). The difference of two sizes is the cost per message without the set-up:
//!
//! ```sh
//! cargo build --release -p realtime-store-sqlx --example batch_insert
//! valgrind --tool=callgrind target/release/examples/batch_insert 10000
//! valgrind --tool=callgrind target/release/examples/batch_insert 20000
//! strace -f -c -e trace=pwrite64 target/release/examples/batch_insert 20000 5000  # WAL writes
//! ```
//!
//! The same `N` in batches of two sizes gives the cost of a commit apart from its messages
//! (`… batch_insert 20000 100 10` and `… 20000 100 40`).

use chrono::Utc;
use realtime_core::{Member, MessageKind, NewMessage, Role, Room, RoomKind, Store};
use realtime_store_sqlx::{PoolConfig, SqliteStore};
use std::time::Duration;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let path = std::env::temp_dir().join(format!("realtime-batch-insert-{n}.db"));
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
    let config = PoolConfig {
        sqlite: realtime_store_sqlx::SqliteConfig {
            checkpoint_interval: Duration::from_secs(3600),
            ..Default::default()
        },
        ..Default::default()
    };
    let store = SqliteStore::connect_with(&format!("sqlite://{}", path.display()), &config)
        .await
        .expect("store");
    let now = Utc::now();
    let nrooms: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let fixed_batch: Option<u64> = std::env::args().nth(3).and_then(|s| s.parse().ok());
    let rooms: Vec<String> = (0..nrooms)
        .map(|i| format!("room-{i:03}-0123456789abcdef"))
        .collect();
    for id in &rooms {
        let room = Room {
            id: id.clone(),
            name: id.clone(),
            kind: RoomKind::Group,
            description: None,
            is_private: false,
            created_by: "owner".into(),
            created_at: now,
            updated_at: now,
            epoch: "e".into(),
        };
        let owner = Member {
            room_id: id.clone(),
            user_id: "owner".into(),
            role: Role::Owner,
            joined_at: now,
        };
        store.create_room(&room, &[owner]).await.expect("room");
    }
    // xorshift64: the same batches and rooms on every run.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut sent = 0;
    while sent < n {
        let size = fixed_batch
            .unwrap_or_else(|| 5 + next() % 26)
            .clamp(1, u64::from(n - sent)) as u32;
        let batch = (sent..sent + size)
            .map(|i| NewMessage {
                id: realtime_core::ids::new_id(),
                room_id: rooms[(next() % nrooms as u64) as usize].clone(),
                sender_id: format!("user-{:04}", i % 1000),
                client_id: None,
                content: format!(
                    "{{\"n\":{i},\"text\":\"a typical short chat line of about eighty bytes\"}}"
                ),
                kind: MessageKind::Text,
                created_at: Utc::now(),
            })
            .collect();
        store.insert_messages(batch).await.expect("batch");
        sent += size;
    }
}
