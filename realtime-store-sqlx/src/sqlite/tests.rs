//! Unit tests of the SQLite store: the writer, checkpoints and rewinds, the batch insert
//! and its `seq` cache, migrations.

use super::*;

#[test]
fn a_wal_past_the_threshold_is_rewound_once_until_it_grows_again() {
    assert!(!needs_rewind(16_384, 16_384, None), "at the threshold");
    assert!(needs_rewind(17_031, 16_384, None), "past it");
    // The last RESTART left 17,031 frames and no commit came since: the next commit
    // starts the WAL over by itself.
    assert!(!needs_rewind(17_031, 16_384, Some(17_031)));
    // Commits appended to it since (a reader kept them from starting it over).
    assert!(needs_rewind(17_400, 16_384, Some(17_031)));
    // Started over since and filled past the threshold again.
    assert!(needs_rewind(17_031, 16_384, Some(16_611)));
}

/// Every size the one-trip insert is asked for gets the text of its bucket, with as
/// many parameters as [`one_trip_args`] binds for that size; sizes sharing a bucket
/// share a text.
#[test]
fn the_one_trip_text_has_a_parameter_for_every_bind() {
    use sqlx::Arguments;
    let new = realtime_core::NewMessage {
        id: realtime_core::ids::new_id(),
        room_id: "r1".into(),
        sender_id: "u1".into(),
        client_id: Some("c1".into()),
        content: "hi".into(),
        kind: realtime_core::MessageKind::Text,
        created_at: chrono::Utc::now(),
    };
    for rows in [
        1usize, 2, 3, 4, 5, 8, 9, 16, 31, 64, 100, 128, 255, 256, 257, 300, 500,
    ] {
        let bucket = crate::sql::batch_bucket(rows);
        let fresh: Vec<_> = (1..=rows as i64).map(|k| (&new, k)).collect();
        for known in [false, true] {
            let text = one_trip_sql(rows, known);
            let rooms = (!known).then(|| "[]".to_owned());
            let args = one_trip_args(rooms, &fresh).expect("binds");
            let lead = usize::from(!known);
            assert_eq!(args.len(), lead + 8 * bucket, "{rows} rows, known {known}");
            assert_eq!(text.matches('?').count(), args.len(), "{rows} rows");
            assert!(
                std::ptr::eq(text, one_trip_sql(bucket, known)),
                "{rows} rows"
            );
            assert_eq!(text.contains("MAX(seq)"), !known, "{rows} rows");
        }
    }
    assert_ne!(one_trip_sql(256, false), one_trip_sql(257, false));
    assert_ne!(one_trip_sql(256, true), one_trip_sql(256, false));
}

fn temp_db_url() -> (String, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!(
        "realtime-unit-{}.db",
        uuid::Uuid::new_v4().simple()
    ));
    (format!("sqlite://{}", path.display()), path)
}

/// Inserts room `?1` with placeholder columns.
const INSERT_BARE_ROOM: &str = "INSERT INTO realtime_rooms (id, name, kind, is_private, created_by, created_at, updated_at, epoch) VALUES (?1, 'x', 'GROUP', 0, 'u', 0, 0, 'e')";

/// A store on a fresh temporary file (default settings) and the file's path.
async fn file_store() -> (SqliteStore, std::path::PathBuf) {
    let (url, path) = temp_db_url();
    (SqliteStore::connect(&url).await.expect("connect"), path)
}

fn room(name: &str) -> realtime_core::Room {
    let now = chrono::Utc::now();
    realtime_core::Room {
        id: format!("{name}-{}", uuid::Uuid::new_v4().simple()),
        name: name.to_owned(),
        kind: realtime_core::RoomKind::Group,
        description: None,
        is_private: false,
        created_by: "u".to_owned(),
        created_at: now,
        updated_at: now,
        epoch: "e".to_owned(),
    }
}

/// A new text message "hi" from `u1` to `room`, with `client_id`.
fn sent_by_u1(room: &str, client_id: Option<&str>) -> realtime_core::NewMessage {
    realtime_core::NewMessage {
        id: realtime_core::ids::new_id(),
        room_id: room.to_owned(),
        sender_id: "u1".into(),
        client_id: client_id.map(str::to_owned),
        content: "hi".into(),
        kind: realtime_core::MessageKind::Text,
        created_at: chrono::Utc::now(),
    }
}

fn remove_db(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// The nice value in a `/proc/…/stat` line (field 19).
#[cfg(target_os = "linux")]
fn nice_in_stat(stat: &str) -> Option<i64> {
    // Fields after the command's closing parenthesis start at field 3.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19 - 3)?.parse().ok()
}

/// The nice value of this process's thread named `name`.
#[cfg(target_os = "linux")]
fn nice_of_thread(name: &str) -> Option<i64> {
    let stat = std::fs::read_to_string(super::task_named(name)?.join("stat")).ok()?;
    nice_in_stat(&stat)
}

/// A file store checkpoints on a connection of its own whose thread runs at
/// `checkpoint_nice` (19 by default; 0 leaves the process's priority; above 19 is 19).
/// (That the checkpoints and rewinds still happen is `tests/conformance_sqlite.rs`'s.)
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checkpoints_run_on_a_thread_of_their_own_at_the_configured_nice_value() {
    let process_nice = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| nice_in_stat(&stat));
    for (asked, expected) in [
        (None, 19),
        (Some(0), process_nice.unwrap_or(0)),
        (Some(7), 7),
        (Some(200), 19),
    ] {
        let (url, path) = temp_db_url();
        let mut config = PoolConfig {
            sqlite: crate::SqliteConfig {
                checkpoint_interval: Duration::from_millis(5),
                ..Default::default()
            },
            ..PoolConfig::default()
        };
        if let Some(n) = asked {
            config.sqlite.checkpoint_nice = n;
        }
        let store = SqliteStore::connect_with(&url, &config)
            .await
            .expect("connect");
        let thread = store
            .checkpoint_thread
            .clone()
            .expect("a file store has one");
        assert!(
            thread.starts_with("sqlite-ckpt-") && thread.len() <= 15,
            "{thread}"
        );
        assert_eq!(
            nice_of_thread(&thread),
            Some(expected),
            "checkpoint_nice {asked:?}"
        );
        drop(store);
        remove_db(&path);
    }
}

/// A file database's writes run on one connection held for the store's life: a writer waiting for it longer than `acquire_timeout` gets the pool's
/// time-out error (as it did from the pool of one it replaced), and once the holder
/// lets go the next writer gets it at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_waits_for_the_writing_connection_at_most_the_acquire_timeout() {
    use realtime_core::Store;
    let (mut store, path) = file_store().await;
    // Connecting (pool, migrations) keeps the default time-out: 100 ms is too short for
    // it on a loaded CI machine, and it is not what this test is about.
    match &mut store.writer {
        Writer::Own {
            acquire_timeout, ..
        } => *acquire_timeout = Duration::from_millis(100),
        Writer::Pool(_) => panic!("a file has its own writer"),
    }
    let held = store.writer().await.expect("the writing connection");
    let started = std::time::Instant::now();
    let room = room("timeout");
    let err = store
        .create_room(&room, &[])
        .await
        .expect_err("the writing connection is held");
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert!(err.to_string().contains("timed out"), "{err}");
    drop(held);
    store
        .create_room(&room, &[])
        .await
        .expect("then it is free");
    assert!(store.get_room(&room.id).await.expect("read").is_some());
    drop(store);
    remove_db(&path);
}

/// A writing transaction dropped unfinished (its future cancelled, say) is rolled back
/// on the shared writing connection before the next writer's `BEGIN IMMEDIATE`, which
/// would otherwise fail inside the dangling transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_dropped_unfinished_leaves_the_writing_connection_clean() {
    use realtime_core::Store;
    let (store, path) = file_store().await;
    let room = room("dangling");
    {
        let mut conn = store.writer().await.expect("the writing connection");
        let mut tx = SqliteStore::begin_on(&mut conn).await.expect("begin");
        sqlx::query(INSERT_BARE_ROOM)
            .bind(&room.id)
            .execute(&mut *tx)
            .await
            .expect("insert inside the transaction");
        // Dropped here without commit or rollback.
    }
    assert!(
        store.get_room(&room.id).await.expect("read").is_none(),
        "the dropped transaction's row is not visible"
    );
    store
        .create_room(&room, &[])
        .await
        .expect("the next writer begins cleanly");
    assert_eq!(
        store.get_room(&room.id).await.expect("read").map(|r| r.id),
        Some(room.id.clone())
    );
    drop(store);
    remove_db(&path);
}

/// Migration 0003 rebuilds a file's messages table with the room key deferred, keeping
/// every message, its reactions (foreign keys are off while the old table is dropped,
/// so nothing cascades), the client-id index and the cascade from a deleted room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_3_defers_the_message_room_key_and_keeps_every_row() {
    use realtime_core::Store;
    let (url, path) = temp_db_url();
    let options = SqliteConnectOptions::from_str(&url)
        .expect("url")
        .create_if_missing(true);
    let pool = SqlitePool::connect_with(options).await.expect("pool");
    crate::migrate::run(&crate::migrate::SQLITE[..2], &pool)
        .await
        .expect("migrations 1 and 2");
    for sql in [
        "INSERT INTO realtime_rooms (id, name, kind, is_private, created_by, created_at, updated_at, epoch, last_seq) VALUES ('r1', 'x', 'GROUP', 0, 'u', 0, 0, 'e', 2)",
        "INSERT INTO realtime_messages (id, room_id, seq, client_id, sender_id, content, kind, status, created_at) VALUES ('m1', 'r1', 1, 'c1', 'u', x'6869', 'TEXT', 'SENT', 1)",
        "INSERT INTO realtime_messages (id, room_id, seq, client_id, sender_id, content, kind, status, created_at) VALUES ('m2', 'r1', 2, NULL, 'u', x'6869', 'TEXT', 'SENT', 2)",
        "INSERT INTO realtime_reactions (message_id, user_id, emoji, created_at) VALUES ('m1', 'u', '👍', 3)",
    ] {
        sqlx::query(sql).execute(&pool).await.expect(sql);
    }
    pool.close().await;
    let store = SqliteStore::connect(&url)
        .await
        .expect("migration 3 on connect");
    let count = |sql: &'static str| {
        let pool = store.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .expect(sql)
        }
    };
    assert_eq!(count("SELECT COUNT(*) FROM realtime_messages").await, 2);
    assert_eq!(count("SELECT COUNT(*) FROM realtime_reactions").await, 1);
    let table: String = sqlx::query_scalar(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'realtime_messages'",
    )
    .fetch_one(&store.pool)
    .await
    .expect("schema");
    assert!(table.contains("DEFERRABLE INITIALLY DEFERRED"), "{table}");
    assert_eq!(
        count("SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'realtime_messages_client_id' AND sql LIKE '%WHERE client_id IS NOT NULL%'").await,
        1
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM pragma_foreign_key_check").await,
        0
    );
    // The kept rows behave as before: the next seq, a repeated client id, the cascade.
    let new = |client_id: Option<&str>| realtime_core::NewMessage {
        id: realtime_core::ids::new_id(),
        room_id: "r1".into(),
        sender_id: "u".into(),
        client_id: client_id.map(str::to_owned),
        content: "hi".into(),
        kind: realtime_core::MessageKind::Text,
        created_at: chrono::Utc::now(),
    };
    let out = store
        .insert_messages(vec![new(None), new(Some("c1"))])
        .await
        .expect("insert");
    assert_eq!(
        out.iter()
            .map(|i| (i.message.seq, i.created, i.message.id.clone()))
            .collect::<Vec<_>>()[1..],
        [(1, false, "m1".to_owned())]
    );
    assert_eq!(out[0].message.seq, 3);
    store.delete_room("r1").await.expect("delete the room");
    assert_eq!(count("SELECT COUNT(*) FROM realtime_messages").await, 0);
    assert_eq!(count("SELECT COUNT(*) FROM realtime_reactions").await, 0);
    drop(store);
    remove_db(&path);
}

/// This workspace builds the bundled SQLite without memory statistics
/// (`.cargo/config.toml`: `LIBSQLITE3_FLAGS`), so its allocations take no global mutex.
#[tokio::test]
async fn the_workspace_builds_sqlite_without_memory_statistics() {
    let store = SqliteStore::connect("sqlite::memory:")
        .await
        .expect("connect");
    let options: Vec<String> =
        sqlx::query_scalar("SELECT compile_options FROM pragma_compile_options")
            .fetch_all(&store.pool)
            .await
            .expect("compile options");
    assert!(
        options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
        "{options:?}"
    );
}

/// The seq cache: a batch to rooms whose numbers the store knows binds them (the cache
/// holds them after the first batch), another writer of the same file is caught by the
/// unique `(room_id, seq)` index (the batch goes back, is redone exactly, and its rooms
/// are read again), and a deleted room made again under its id numbers from 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seq_cache_numbers_known_rooms_and_misses_nothing() {
    use realtime_core::Store;
    let new = |room: &str| sent_by_u1(room, None);
    let seqs = |out: &[realtime_core::Inserted]| -> Vec<u64> {
        out.iter().map(|i| i.message.seq).collect()
    };
    let (url, path) = temp_db_url();
    let store = SqliteStore::connect(&url).await.expect("connect");
    let cache = store.seqs.clone().expect("a file store has a seq cache");
    let (a, b) = (room("cache-a"), room("cache-b"));
    store.create_room(&a, &[]).await.expect("room a");
    store.create_room(&b, &[]).await.expect("room b");
    assert_eq!(cache.get([a.id.as_str()].into_iter()), None);
    let out = store
        .insert_messages(vec![new(&a.id), new(&b.id), new(&a.id)])
        .await
        .expect("first batch");
    assert_eq!(seqs(&out), [1, 1, 2]);
    assert_eq!(
        cache.get([a.id.as_str(), b.id.as_str()].into_iter()),
        Some(vec![2, 1])
    );
    // Known rooms: the numbers come from the cache, and the cache moves on.
    let out = store
        .insert_messages(vec![new(&b.id), new(&a.id)])
        .await
        .expect("known rooms");
    assert_eq!(seqs(&out), [2, 3]);
    assert_eq!(
        cache.get([a.id.as_str(), b.id.as_str()].into_iter()),
        Some(vec![3, 2])
    );
    // Another writer of the file takes a's numbers 4 and 5.
    let other = SqliteStore::connect(&url).await.expect("second store");
    let out = other
        .insert_messages(vec![new(&a.id), new(&a.id)])
        .await
        .expect("other writer");
    assert_eq!(seqs(&out), [4, 5]);
    assert_eq!(cache.get([a.id.as_str()].into_iter()), Some(vec![3]));
    // This store's next batch collides, goes back, is redone exactly: 6, not 4.
    let out = store
        .insert_messages(vec![new(&a.id), new(&b.id)])
        .await
        .expect("after the other writer");
    assert_eq!(seqs(&out), [6, 3]);
    assert_eq!(cache.get([a.id.as_str()].into_iter()), None);
    let out = store
        .insert_messages(vec![new(&a.id)])
        .await
        .expect("read again");
    assert_eq!(seqs(&out), [7]);
    assert_eq!(cache.get([a.id.as_str()].into_iter()), Some(vec![7]));
    let stored: Vec<i64> =
        sqlx::query_scalar("SELECT seq FROM realtime_messages WHERE room_id = ? ORDER BY seq")
            .bind(&a.id)
            .fetch_all(&store.pool)
            .await
            .expect("a's messages");
    assert_eq!(stored, [1, 2, 3, 4, 5, 6, 7]);
    // Deleted and made again under the same id: numbered from 1.
    assert!(store.delete_room(&a.id).await.expect("delete"));
    assert_eq!(cache.get([a.id.as_str()].into_iter()), None);
    store.create_room(&a, &[]).await.expect("room a again");
    let out = store
        .insert_messages(vec![new(&a.id), new(&a.id)])
        .await
        .expect("after the delete");
    assert_eq!(seqs(&out), [1, 2]);
    drop(other);
    drop(store);
    remove_db(&path);
}

/// The one-query batch reads its rooms' counters back as a JSON array in the order the
/// rooms were bound: each send gets its own room's next seq when the rooms' ids sort
/// in another order than the batch sends to them and every room's counter differs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_one_query_insert_matches_each_rooms_counter_to_its_room() {
    use realtime_core::{NewMessage, Store};
    let new = |room: &str| sent_by_u1(room, None);
    let (url, path) = temp_db_url();
    let store = SqliteStore::connect(&url).await.expect("connect");
    // Rooms whose ids sort in another order than they are created and sent to; room i
    // gets i messages first, so every counter differs.
    let rooms: Vec<realtime_core::Room> = ["m", "c", "x", "a", "q", "f"]
        .iter()
        .map(|n| room(&format!("{n}-order")))
        .collect();
    for (i, r) in rooms.iter().enumerate() {
        store.create_room(r, &[]).await.expect("room");
        if i > 0 {
            let batch = (0..i).map(|_| new(&r.id)).collect();
            store
                .insert_batch_one_trip(batch)
                .await
                .expect("store")
                .unwrap_or_else(|_| panic!("the one-query insert went through"));
        }
    }
    // One batch to every room, last created first, two sends to the first room.
    let mut batch: Vec<NewMessage> = rooms.iter().rev().map(|r| new(&r.id)).collect();
    batch.push(new(&rooms[0].id));
    let out = store
        .insert_batch_one_trip(batch)
        .await
        .expect("store")
        .unwrap_or_else(|_| panic!("the one-query insert went through"));
    let got: Vec<(String, u64)> = out
        .iter()
        .map(|i| (i.message.room_id.clone(), i.message.seq))
        .collect();
    let mut want: Vec<(String, u64)> = rooms
        .iter()
        .enumerate()
        .rev()
        .map(|(i, r)| (r.id.clone(), i as u64 + 1))
        .collect();
    want.push((rooms[0].id.clone(), 2));
    assert_eq!(got, want);
    for (room, seq) in &got {
        let stored: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM realtime_messages WHERE room_id = ? AND seq = ?",
        )
        .bind(room)
        .bind(*seq as i64)
        .fetch_one(&store.pool)
        .await
        .expect("read back");
        assert_eq!(stored, 1, "room {room} seq {seq} is stored");
    }
    drop(store);
    remove_db(&path);
}

/// Rooms' sequence numbers come from their messages (`SEQ_FROM_MESSAGES`) on every
/// path — the one-query batch (which must go through, not fall back), the exact path
/// (a repeated client id), single sends — and they carry on across reopening the file;
/// `latest_seq` is the last one, and no insert writes the room's `last_seq` row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequence_numbers_come_from_the_messages_on_every_insert_path() {
    use realtime_core::Store;
    let new = sent_by_u1;
    let seqs = |out: &[realtime_core::Inserted]| -> Vec<(u64, bool)> {
        out.iter().map(|i| (i.message.seq, i.created)).collect()
    };
    let (url, path) = temp_db_url();
    let store = SqliteStore::connect(&url).await.expect("connect");
    let (a, b) = (room("seq-a"), room("seq-b"));
    store.create_room(&a, &[]).await.expect("room a");
    store.create_room(&b, &[]).await.expect("room b");
    // One query: three to a, one to b, then two more to a.
    let out = store
        .insert_batch_one_trip(vec![
            new(&a.id, None),
            new(&b.id, None),
            new(&a.id, Some("c1")),
            new(&a.id, None),
        ])
        .await
        .expect("store")
        .unwrap_or_else(|_| panic!("the one-query insert went through"));
    assert_eq!(seqs(&out), [(1, true), (1, true), (2, true), (3, true)]);
    let out = store
        .insert_batch_one_trip(vec![new(&a.id, None), new(&a.id, None)])
        .await
        .expect("store")
        .unwrap_or_else(|_| panic!("the one-query insert went through"));
    assert_eq!(seqs(&out), [(4, true), (5, true)]);
    // A stored client id sends the batch down the exact path.
    let out = store
        .insert_messages(vec![
            new(&b.id, None),
            new(&a.id, Some("c1")),
            new(&a.id, None),
        ])
        .await
        .expect("exact path");
    assert_eq!(seqs(&out), [(2, true), (2, false), (6, true)]);
    // A single send, and a single send of a stored client id (its fallback path).
    let one = store
        .insert_message(new(&a.id, None))
        .await
        .expect("single");
    assert_eq!((one.message.seq, one.created), (7, true));
    let again = store
        .insert_message(new(&a.id, Some("c1")))
        .await
        .expect("single repeat");
    assert_eq!((again.message.seq, again.created), (2, false));
    assert!(matches!(
        store.insert_message(new("no-such-room", None)).await,
        Err(realtime_core::Error::NotFound { .. })
    ));
    assert_eq!(store.latest_seq(&a.id).await.expect("latest a"), 7);
    assert_eq!(store.latest_seq(&b.id).await.expect("latest b"), 2);
    assert_eq!(store.latest_seq("no-such-room").await.expect("latest"), 0);
    let counters: Vec<i64> = sqlx::query_scalar("SELECT last_seq FROM realtime_rooms")
        .fetch_all(&store.pool)
        .await
        .expect("rooms");
    assert_eq!(
        counters,
        [0, 0],
        "the rooms' rows are not written per message"
    );
    drop(store);
    let store = SqliteStore::connect(&url).await.expect("reopen");
    let out = store
        .insert_messages(vec![new(&b.id, None), new(&a.id, None)])
        .await
        .expect("after reopening");
    assert_eq!(seqs(&out), [(3, true), (8, true)]);
    drop(store);
    remove_db(&path);
}

/// A transaction begun inside a query (the one-query batch insert) and dropped before
/// its `COMMIT` (a cancelled future) is rolled back before the next writer gets the
/// connection; rolling back when the query never began one is no error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_begun_transaction_dropped_unfinished_is_rolled_back() {
    use realtime_core::Store;
    let (store, path) = file_store().await;
    let room = room("raw");
    {
        let mut tx = RawTx::new(store.writer().await.expect("the writing connection"));
        tx.fetch_all(
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "BEGIN IMMEDIATE; {INSERT_BARE_ROOM}"
            )))
            .bind(&room.id),
        )
        .await
        .expect("begun and inserted, not committed");
        // Dropped here, neither ended nor rolled back.
    }
    store
        .create_room(&room, &[])
        .await
        .expect("the next writer begins cleanly, and the dropped row is gone");
    let tx = RawTx::new(store.writer().await.expect("the writing connection"));
    tx.rollback()
        .await
        .expect("no transaction open: nothing to roll back");
    store
        .create_room(&room, &[])
        .await
        .expect_err("the room exists once");
    drop(store);
    remove_db(&path);
}

/// The files a rewind syncs ahead of its `RESTART` are the database's own, found from
/// the URL as SQLite reads it: a wrong name would only be logged (at `debug`) and leave
/// every page to the `RESTART`'s syncs, under the write lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rewind_syncs_the_database_file_and_its_wal() {
    let (url, path) = temp_db_url();
    let store = SqliteStore::connect(&url).await.expect("connect");
    let options = SqliteConnectOptions::from_str(&url).expect("url");
    let files = DbFiles::of(options.get_filename());
    assert_eq!(files.db, path);
    assert_eq!(
        files.wal,
        std::path::PathBuf::from(format!("{}-wal", path.display()))
    );
    assert!(
        files.wal.exists(),
        "the WAL of an open file database exists"
    );
    files.sync(true).expect("both files sync");
    drop(store);
    remove_db(&path);
    assert!(
        DbFiles::of(&path).sync(false).is_err(),
        "a missing file is an error, not silence"
    );
}
