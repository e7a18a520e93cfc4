//! The core Store conformance suite on SQLite, in memory and in a file.

mod common;

use realtime_core::{Member, MessageKind, NewMessage, Role, Room, RoomKind, Store};
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
    assert_eq!(
        n, 3,
        "0001 init, 0002 partial client id index and 0003 deferred message room key, each once"
    );
    // Only messages with a client id have an entry in the idempotency index.
    let index: String = sqlx::query_scalar(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'realtime_messages_client_id'",
    )
    .fetch_one(again.pool())
    .await
    .expect("index");
    assert!(index.ends_with("WHERE client_id IS NOT NULL"), "{index}");
}

/// Room `r1` with its owner; returns the time used for it.
async fn room_r1(store: &SqliteStore) -> chrono::DateTime<chrono::Utc> {
    let now = chrono::Utc::now();
    let room = Room {
        id: "r1".into(),
        name: "r".into(),
        kind: RoomKind::Group,
        description: None,
        is_private: false,
        created_by: "owner".into(),
        created_at: now,
        updated_at: now,
        epoch: "e1".into(),
    };
    let owner = Member {
        room_id: "r1".into(),
        user_id: "owner".into(),
        role: Role::Owner,
        joined_at: now,
    };
    store.create_room(&room, &[owner]).await.expect("room");
    now
}

/// A TEXT message `id` from `owner` into `r1`, of `bytes` bytes.
fn r1_message(id: String, bytes: usize, now: chrono::DateTime<chrono::Utc>) -> NewMessage {
    NewMessage {
        id,
        room_id: "r1".into(),
        sender_id: "owner".into(),
        client_id: None,
        content: "x".repeat(bytes),
        kind: MessageKind::Text,
        created_at: now,
    }
}

/// 2,000 messages of 200 bytes into `r1`, one batch (one transaction).
async fn insert_2000(store: &SqliteStore, now: chrono::DateTime<chrono::Utc>) {
    let batch: Vec<NewMessage> = (0..2000)
        .map(|i| r1_message(format!("m{i:05}"), 200, now))
        .collect();
    store.insert_messages(batch).await.expect("insert");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_leave_checkpoints_to_the_background_task() {
    assert_eq!(
        realtime_store_sqlx::PoolConfig::default()
            .sqlite
            .checkpoint_interval,
        std::time::Duration::from_millis(25)
    );
    let db = common::TempDb::new();
    // Checkpoints every second here, so the commit below falls between two of them.
    let config = realtime_store_sqlx::PoolConfig {
        sqlite: realtime_store_sqlx::SqliteConfig {
            checkpoint_interval: std::time::Duration::from_secs(1),
            ..Default::default()
        },
        ..Default::default()
    };
    let store = SqliteStore::connect_with(&db.url(), &config)
        .await
        .expect("connect");
    let autock = pragma(&store, "wal_autocheckpoint").await;
    assert_eq!(autock, 0, "no checkpoint inside commits");
    let now = room_r1(&store).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let before = std::fs::metadata(&db.0).expect("db file").len();
    insert_2000(&store, now).await;
    assert_eq!(
        std::fs::metadata(&db.0).expect("db file").len(),
        before,
        "the commit wrote the WAL only"
    );
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert!(
        std::fs::metadata(&db.0).expect("db file").len() > before,
        "the background checkpoint copied the pages into the database file"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_checkpoint_interval_still_checkpoints() {
    let db = common::TempDb::new();
    let config = realtime_store_sqlx::PoolConfig {
        sqlite: realtime_store_sqlx::SqliteConfig {
            checkpoint_interval: std::time::Duration::ZERO,
            ..Default::default()
        },
        ..Default::default()
    };
    let store = SqliteStore::connect_with(&db.url(), &config)
        .await
        .expect("connect with a zero interval");
    let now = room_r1(&store).await;
    let before = std::fs::metadata(&db.0).expect("db file").len();
    insert_2000(&store, now).await;
    // Zero counts as 1 ms: the checkpointer runs (a zero tokio interval would panic its task).
    let mut grew = false;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        if std::fs::metadata(&db.0).expect("db file").len() > before {
            grew = true;
            break;
        }
    }
    assert!(
        grew,
        "the background checkpoint copied the pages into the database file"
    );
}

/// Writes without a pause: a `PASSIVE` checkpoint never catches up with the last commit, so
/// without the `RESTART` past `wal_restart_bytes` the WAL grows by every page written
/// (here 46.5 MB: 100 batches of 100 messages of 3,000 bytes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wal_written_without_pause_is_rewound() {
    assert_eq!(
        realtime_store_sqlx::PoolConfig::default()
            .sqlite
            .wal_restart_bytes,
        64 << 20
    );
    let (_db, store, now, wal) = file_store_with_r1(realtime_store_sqlx::PoolConfig {
        sqlite: realtime_store_sqlx::SqliteConfig {
            checkpoint_interval: std::time::Duration::from_millis(5),
            wal_restart_bytes: 512 << 10,
            // The process's own priority: at the default nice 19 the checkpoints starve while
            // other processes keep both cores busy (as a parallel build does), and no rewind
            // comes within the test. The priority is the unit test's in `src/sqlite.rs`.
            checkpoint_nice: 0,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let (mut largest, mut last, mut rewound) = (0, 0, 0);
    let mut stored = 0u64;
    for b in 0..100 {
        let batch: Vec<NewMessage> = (0..100)
            .map(|i| r1_message(format!("m{b:03}-{i:03}"), 3000, now))
            .collect();
        stored += store.insert_messages(batch).await.expect("insert").len() as u64;
        let size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        if size < last {
            rewound += 1;
        }
        last = size;
        largest = largest.max(size);
    }
    assert_eq!(stored, 10_000);
    assert_eq!(store.latest_seq("r1").await.expect("seq"), 10_000);
    // Without the rewind the file only grows (46.5 MB here); with it, it is trimmed back
    // each time (how often depends on when the checkpointer gets the write lock between
    // batches: 10–20 MB peaks on a quiet machine).
    assert!(
        rewound >= 1,
        "the WAL was never rewound (peak {largest} bytes)"
    );
    assert!(largest < 40 << 20, "the WAL reached {largest} bytes");
}

/// The `RESTART` that rewinds the WAL runs on the writer's own connection, so writing
/// transactions wait for it in the pool instead of meeting SQLite's lock: with no busy
/// timeout at all, not one write fails while the checkpointer rewinds the WAL under
/// them. (Run on another connection, the `RESTART` held the write lock from under the
/// writer, whose `BEGIN IMMEDIATE` then failed at once with "database is locked" here, or
/// with a busy timeout polled for the lock, sleeping up to 20 ms between tries.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewinding_the_wal_never_takes_the_lock_from_a_writer() {
    let (_db, store, now, wal) = file_store_with_r1(realtime_store_sqlx::PoolConfig {
        sqlite: realtime_store_sqlx::SqliteConfig {
            busy_timeout: std::time::Duration::ZERO,
            checkpoint_interval: std::time::Duration::from_millis(2),
            wal_restart_bytes: 256 << 10,
            // As in `a_wal_written_without_pause_is_rewound`: not starved under load.
            checkpoint_nice: 0,
        },
        ..Default::default()
    })
    .await;
    let resets_before = wal_resets(&wal);
    // Rounds of 4,000 messages until the checkpointer has rewound the WAL under them (one
    // round on a quiet machine; on a loaded one the inserts can outrun the first rewind).
    let (mut stored, mut rounds) = (0, 0);
    while rounds < 10 && (rounds == 0 || wal_resets(&wal) == resets_before) {
        stored += insert_batches(
            &store,
            &format!("w{rounds}-"),
            200,
            2000,
            now,
            "while the WAL was being rewound",
        )
        .await;
        rounds += 1;
    }
    assert_eq!(stored, 4_000 * rounds);
    assert_eq!(store.latest_seq("r1").await.expect("seq"), 4_000 * rounds);
    let resets = wal_resets(&wal) - resets_before;
    assert!(resets >= 1, "the WAL was never rewound in {rounds} rounds");
}

/// Every write of a file store runs on its one writing connection, so writes wait for
/// each other there and never meet SQLite's lock: with no busy timeout at all, members,
/// read pointers and favorites written while batches of messages are committed never fail
/// with "database is locked", and neither do the batches. (Single-statement writes on pool
/// connections would fail here at once; with a busy timeout they would poll for the lock,
/// sleeping up to 20 ms between tries, and make the committer's `BEGIN IMMEDIATE` poll for
/// it too.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_writes_and_batches_never_meet_the_lock() {
    let (_db, store, now, _wal) = file_store_with_r1(realtime_store_sqlx::PoolConfig {
        sqlite: realtime_store_sqlx::SqliteConfig {
            busy_timeout: std::time::Duration::ZERO,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let store = Arc::new(store);
    let side = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..300u64 {
                let user = format!("u{}", i % 20);
                let member = Member {
                    room_id: "r1".into(),
                    user_id: user.clone(),
                    role: Role::Member,
                    joined_at: now,
                };
                if i < 20 {
                    store.add_member(&member).await?;
                }
                store.advance_read_pointer("r1", &user, i + 1, now).await?;
                let favorite = realtime_core::Favorite {
                    user_id: user.clone(),
                    target_id: "r1".into(),
                    kind: realtime_core::FavoriteKind::Room,
                    created_at: now,
                };
                store.set_favorite(&favorite, i % 2 == 0).await?;
            }
            Ok::<_, realtime_core::Error>(())
        })
    };
    let stored = insert_batches(&store, "s", 100, 500, now, "beside single writes").await;
    side.await
        .expect("the single writes' task")
        .expect("no single write met the lock");
    assert_eq!(stored, 2_000);
    assert_eq!(store.count_members("r1").await.expect("count"), 21);
    assert_eq!(store.read_pointer("r1", "u19").await.expect("pointer"), 300);
}

/// `batches` batches of 20 messages of `bytes` bytes into `r1` (ids `{prefix}{batch}-{i}`),
/// one after another; panics naming the batch and `during` when one fails. Messages stored.
async fn insert_batches(
    store: &SqliteStore,
    prefix: &str,
    batches: usize,
    bytes: usize,
    now: chrono::DateTime<chrono::Utc>,
    during: &str,
) -> u64 {
    let mut stored = 0u64;
    for b in 0..batches {
        let batch: Vec<NewMessage> = (0..20)
            .map(|i| r1_message(format!("{prefix}{b:03}-{i:02}"), bytes, now))
            .collect();
        match store.insert_messages(batch).await {
            Ok(v) => stored += v.len() as u64,
            Err(e) => panic!("batch {b} failed {during}: {e}"),
        }
    }
    stored
}

/// A file store with `config` and room `r1`: the file (removed on drop), the store, the
/// room's creation time and the WAL's path.
async fn file_store_with_r1(
    config: realtime_store_sqlx::PoolConfig,
) -> (
    common::TempDb,
    SqliteStore,
    chrono::DateTime<chrono::Utc>,
    String,
) {
    let db = common::TempDb::new();
    let store = SqliteStore::connect_with(&db.url(), &config)
        .await
        .expect("connect");
    let now = room_r1(&store).await;
    let wal = format!("{}-wal", db.0.display());
    (db, store, now, wal)
}

/// How many times the WAL was rewound: its header's checkpoint sequence number, which
/// SQLite raises by one at every reset (bytes 12..16, big-endian; sqlite.org/fileformat2,
/// "WAL File Format"). 0 for a WAL not written yet.
fn wal_resets(wal: &str) -> u32 {
    let bytes = std::fs::read(wal).unwrap_or_default();
    bytes
        .get(12..16)
        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// After a rewind the WAL file keeps up to twice `wal_restart_bytes` (SQLite's
/// `journal_size_limit`, set here to that): a WAL that grew a little past the threshold is
/// reused as it is rather than trimmed at every rewind (the `ftruncate` ran inside the next
/// writing transaction). This checks the setting, not SQLite's trimming itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_is_trimmed_to_twice_the_rewind_threshold() {
    let db = common::TempDb::new();
    let config = realtime_store_sqlx::PoolConfig {
        sqlite: realtime_store_sqlx::SqliteConfig {
            wal_restart_bytes: 1 << 20,
            ..Default::default()
        },
        ..Default::default()
    };
    let store = SqliteStore::connect_with(&db.url(), &config)
        .await
        .expect("connect");
    let limit = pragma(&store, "journal_size_limit").await;
    assert_eq!(limit, 2 << 20);
}

/// The integer value of SQLite's `PRAGMA name` on a connection of `store`'s pool.
async fn pragma(store: &SqliteStore, name: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("PRAGMA {name}")))
        .fetch_one(store.pool())
        .await
        .expect("pragma")
}

/// The one-trip batch insert binds content as text and casts it to `BLOB` in SQL: every
/// byte is stored (a NUL, multi-byte characters), as a `BLOB` like the exact path's rows,
/// and reads back equal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_content_is_stored_as_the_same_blob_byte_for_byte() {
    let db = common::TempDb::new();
    let store = SqliteStore::connect(&db.url()).await.expect("connect");
    let now = room_r1(&store).await;
    let contents = ["a\u{0}b", "é 📧 \u{0}", "", "plain"];
    let batch: Vec<NewMessage> = contents
        .iter()
        .enumerate()
        .map(|(i, c)| NewMessage {
            content: (*c).to_owned(),
            ..r1_message(format!("nul{i}"), 0, now)
        })
        .collect();
    let stored = store.insert_messages(batch).await.expect("batch");
    assert_eq!(stored.len(), contents.len());
    for (inserted, content) in stored.iter().zip(contents) {
        let back = store
            .get_message(&inserted.message.id)
            .await
            .expect("read")
            .expect("stored");
        assert_eq!(back.content, content);
        let (kind, bytes): (String, i64) = sqlx::query_as(
            "SELECT typeof(content), length(CAST(content AS BLOB)) FROM realtime_messages WHERE id = ?",
        )
        .bind(&inserted.message.id)
        .fetch_one(store.pool())
        .await
        .expect("row");
        assert_eq!(
            (kind.as_str(), bytes),
            ("blob", content.len() as i64),
            "{content:?}"
        );
    }
}
