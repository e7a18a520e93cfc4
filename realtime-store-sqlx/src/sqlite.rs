//! SQLite: the embedded default. A file (`sqlite://chat.db`, created if missing) or
//! `sqlite::memory:`; WAL journal, `synchronous = NORMAL`, foreign keys on, a 5 s busy
//! timeout, temporary data in memory, a 16 MiB page cache per connection, the WAL
//! checkpointed by a background task every [`SqliteConfig::checkpoint_interval`] (25 ms;
//! not inside commits; on a connection of its own whose thread runs at nice 19:
//! [`SqliteConfig::checkpoint_nice`]) and rewound once it exceeds
//! [`SqliteConfig::wal_restart_bytes`] (64 MiB), and `BEGIN IMMEDIATE` for writing transactions so concurrent writers wait
//! instead of failing. Every write of a file database (transactions and single
//! statements alike) runs on one connection of its own, held for the store's life (not
//! pooled), so writes queue for it instead of polling for SQLite's lock; reads use the
//! pool.

use crate::PoolConfig;
use crate::sql::{impl_store, store_err};
use realtime_core::{Error, Result};
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool,
    SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// sqlx runs several `;`-separated statements of one SQLite query on its connection thread
/// in one go, binding parameters across them: a batch insert takes one hand-off, not two.
const MULTI_STATEMENT: bool = true;

/// Batch inserts padded to a few sizes and the batch's rooms bound as one JSON array
/// (`json_each`): a handful of statement texts, each prepared once (see `sql::batch_bucket`).
const STABLE_BATCH_TEXT: bool = true;

/// A room's last `seq` is read from the messages' `(room_id, seq)` index (`MAX(seq)`: the
/// last entry of the room's range, in the leaf page the insert writes next), not kept in
/// `realtime_rooms.last_seq`, which SQLite no longer updates. SQLite's WAL logs every page a
/// commit changes in full, and the counter's row put one more page per room in each commit
/// besides the index leaf: with thousands of rooms, ~37 % fewer WAL writes per message
///. The single writing connection and `BEGIN IMMEDIATE`
/// serialize inserts, so the maximum cannot move under a transaction; messages are never
/// deleted one by one (a room's go with the room), so a number is never given out twice.
const SEQ_FROM_MESSAGES: bool = true;

/// A room's last `seq` as SQL, for a room id given by `room` (a column or a parameter).
macro_rules! max_seq {
    ($room:literal) => {
        concat!(
            "COALESCE((SELECT MAX(seq) FROM realtime_messages WHERE room_id = ",
            $room,
            "), 0)"
        )
    };
}

/// The next `seq` of room `$1` ([`SEQ_FROM_MESSAGES`]; the caller holds the write lock):
/// one row, `last_seq`, or none for an unknown room.
const NEXT_SEQ: &str = concat!(
    "SELECT ",
    max_seq!("$1"),
    " + 1 AS last_seq FROM realtime_rooms WHERE id = $1"
);

/// The last `seq` of room `$1` (0 for a room without messages, or unknown).
const LATEST_SEQ: &str = concat!("SELECT ", max_seq!("$1"), " AS last_seq");

/// A [`realtime_core::Store`] on SQLite.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Every write: one connection of its own for a file (its page cache stays warm, since
    /// no other connection changes the database under it between its own commits, and
    /// writers queue for it instead of polling for the lock in SQLite's busy handler); the
    /// same pool otherwise.
    writer: Writer,
    /// Dropped with the last clone: stops the background checkpointer.
    _checkpointer: Option<Arc<tokio::sync::oneshot::Sender<()>>>,
    /// The name of the checkpointer connection's thread (a file store).
    checkpoint_thread: Option<String>,
    /// Rooms' last `seq` as this store committed them ([`SeqCache`]; a file store only).
    seqs: Option<Arc<SeqCache>>,
}

impl SqliteStore {
    /// Connect to `url` (`sqlite://path/to/file.db`, `sqlite:file.db`, `sqlite::memory:`)
    /// with default pool settings, and apply migrations.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming `database_url` for a malformed URL; [`Error::Store`] when
    /// the file cannot be opened or migrations fail.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, &PoolConfig::default()).await
    }

    /// [`connect`](Self::connect) with pool settings. An in-memory database always uses a
    /// single connection that is never closed (each connection would see its own database).
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub async fn connect_with(url: &str, config: &PoolConfig) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| Error::Invalid {
                field: "database_url",
                reason: e.to_string().into(),
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(config.sqlite.busy_timeout)
            // Statement journals (every multi-row insert that may roll back alone) in
            // memory, not in a temporary file; a 16 MiB page cache per connection.
            .pragma("temp_store", "memory")
            .pragma("cache_size", "-16384");
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        // Files: no checkpoint inside a commit (its fsync would stall every writer behind
        // it for tens of milliseconds); a background task checkpoints passively instead.
        let options = if memory {
            options
        } else {
            options.pragma("wal_autocheckpoint", "0").pragma(
                "journal_size_limit",
                journal_size_limit(config.sqlite.wal_restart_bytes).to_string(),
            )
        };
        let writer_options = options.clone();
        let writer_filename = writer_options.get_filename().to_owned();
        let pool = if memory {
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new()
                .max_connections(config.max_connections)
                .min_connections(config.min_connections)
                .idle_timeout(config.idle_timeout)
        }
        // No ping before each acquire: a local SQLite connection cannot have been hung up
        // on, and the ping is one more hand-off to the connection's thread per query.
        .test_before_acquire(false)
        .acquire_timeout(config.acquire_timeout)
        .connect_with(options)
        .await
        .map_err(store_err)?;
        let mut store = Self::from_pool(pool).await?;
        if !memory {
            let conn = writer_options.connect().await.map_err(store_err)?;
            store.writer = Writer::Own {
                conn: Arc::new(tokio::sync::Mutex::new(conn)),
                acquire_timeout: config.acquire_timeout,
            };
            store.seqs = Some(Arc::new(SeqCache::default()));
            let page_bytes: i64 = sqlx::query_scalar("PRAGMA page_size")
                .fetch_one(&store.pool)
                .await
                .map_err(store_err)?;
            let restart_frames = i64::try_from(config.sqlite.wal_restart_bytes).unwrap_or(i64::MAX)
                / page_bytes.max(512);
            let files = Arc::new(DbFiles::of(&writer_filename));
            let (ckpt, thread) =
                checkpoint_connection(&writer_options, config.sqlite.checkpoint_nice).await?;
            store.checkpoint_thread = Some(thread);
            store._checkpointer = Some(Arc::new(spawn_checkpointer(
                ckpt,
                store.writer.clone(),
                files,
                config.sqlite.checkpoint_interval,
                restart_frames,
            )));
        }
        Ok(store)
    }

    /// Use an existing pool (for reads and writes alike); applies migrations.
    ///
    /// # Errors
    /// [`Error::Store`] when migrations fail.
    pub async fn from_pool(pool: SqlitePool) -> Result<Self> {
        crate::migrate::run(crate::migrate::SQLITE, &pool).await?;
        Ok(SqliteStore {
            writer: Writer::Pool(pool.clone()),
            pool,
            _checkpointer: None,
            checkpoint_thread: None,
            seqs: None,
        })
    }

    /// The pool, for the host's own queries.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The connection every write runs on (waits for the write before to end; at most
    /// [`PoolConfig::acquire_timeout`]).
    async fn writer(&self) -> Result<WriterConn> {
        self.writer.acquire().await
    }

    /// `BEGIN IMMEDIATE` on `conn` (from [`writer`](Self::writer)): the write lock now, so
    /// no reader upgrades into a deadlock later.
    async fn begin_on(conn: &mut SqliteConnection) -> Result<sqlx::Transaction<'_, Sqlite>> {
        conn.begin_with("BEGIN IMMEDIATE").await.map_err(store_err)
    }

    /// Read the counters of `rooms` (`BEGIN IMMEDIATE` already holds the database's write
    /// lock): `(room id, last seq)` for each room that exists, the last seq read from the
    /// messages ([`SEQ_FROM_MESSAGES`]). One result row, a JSON
    /// object, not a row per room: every row would be one more hand-off from sqlx's
    /// SQLite thread to the runtime.
    async fn lock_counters(
        &self,
        tx: &mut sqlx::Transaction<'_, Sqlite>,
        rooms: &[String],
    ) -> Result<Vec<(String, i64)>> {
        use sqlx::Row;
        // One statement text for any number of rooms, so SQLite prepares it once (sqlx caches
        // prepared statements by their text; an `IN (?, …)` list per room count was a new
        // text, and a new prepare, at nearly every commit).
        let ids =
            serde_json::to_string(rooms).map_err(|e| Error::Store(format!("room ids: {e}")))?;
        let row = sqlx::query(concat!(
            "SELECT json_group_object(id, ",
            max_seq!("realtime_rooms.id"),
            ") AS counters FROM realtime_rooms WHERE id IN (SELECT value FROM json_each(?1))"
        ))
        .bind(ids)
        .fetch_one(&mut **tx)
        .await
        .map_err(store_err)?;
        let json: String = row.try_get("counters").map_err(store_err)?;
        let counters: std::collections::HashMap<String, i64> =
            serde_json::from_str(&json).map_err(|e| Error::Store(format!("room counters: {e}")))?;
        Ok(counters.into_iter().collect())
    }
}

/// A writing transaction begun by a statement of a query (`BEGIN IMMEDIATE; …; COMMIT`),
/// which sqlx does not track: its `Transaction` would cost one hand-off to the connection's
/// thread for `BEGIN` and one for `COMMIT`. Holds the writing connection until the
/// transaction has ended. Dropped before (its future cancelled mid-query: sqlx then skips
/// the query's remaining statements, `COMMIT` among them), it rolls the transaction back on
/// a task of its own, which holds the connection until that is done, so the next writer
/// never begins inside it.
struct RawTx {
    conn: Option<WriterConn>,
}

impl RawTx {
    fn new(conn: WriterConn) -> Self {
        RawTx { conn: Some(conn) }
    }

    /// Run `query` on the held connection.
    async fn fetch_all(
        &mut self,
        query: sqlx::query::Query<'_, Sqlite, sqlx::sqlite::SqliteArguments>,
    ) -> std::result::Result<Vec<SqliteRow>, sqlx::Error> {
        match self.conn.as_mut() {
            Some(conn) => query.fetch_all(&mut **conn).await,
            None => Err(sqlx::Error::PoolClosed),
        }
    }

    /// The transaction ended (the query committed it): hand the connection back.
    fn ended(&mut self) {
        self.conn = None;
    }

    /// Roll back whatever the query left open: nothing when its `BEGIN` failed or SQLite
    /// already rolled the transaction back (`no transaction is active`), else the
    /// transaction. [`Error::Store`] when the rollback fails otherwise.
    async fn rollback(mut self) -> Result<()> {
        match self.conn.take() {
            Some(mut conn) => rollback_raw(&mut conn).await,
            None => Ok(()),
        }
    }
}

impl Drop for RawTx {
    fn drop(&mut self) {
        if let Some(mut conn) = self.conn.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                if let Err(e) = rollback_raw(&mut conn).await {
                    tracing::warn!(error = %e, "rolling back a cancelled batch insert failed");
                }
            });
        }
    }
}

/// `ROLLBACK` on `conn`, where a transaction begun by a query may or may not be open.
async fn rollback_raw(conn: &mut SqliteConnection) -> Result<()> {
    match sqlx::query("ROLLBACK").execute(conn).await {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e)) if e.message().contains("no transaction is active") => Ok(()),
        Err(e) => Err(store_err(e)),
    }
}

impl SqliteStore {
    /// Forget the seq cache's numbers of `rooms` ([`SeqCache`]), after a write that moved
    /// them outside the one-query path (call it holding the writing connection).
    fn forget_seqs<'a>(&self, rooms: impl IntoIterator<Item = &'a str>) {
        if let Some(cache) = &self.seqs {
            cache.forget(rooms);
        }
    }

    /// SQLite's batch insert as one query, `BEGIN IMMEDIATE` to `COMMIT`: one hand-off
    /// to its connection thread instead of three; single
    /// inserts take it too, as a batch of one (instead of four). The query
    /// begins, inserts the rows with `seq` = the room's last seq + the row's place among its
    /// room's new rows, and commits; the last seqs come from the [`SeqCache`] when it knows
    /// every room of the batch, else the query reads them first (and the cache keeps them).
    /// A batch not as this path assumes fails: a client id already stored (the
    /// unique index; no `ON CONFLICT` here) or a number another writer took (the
    /// `(room_id, seq)` index) fails the insert, which rolls the transaction
    /// back (`OR ROLLBACK`); an unknown room fails the `COMMIT` (the room's foreign key is
    /// deferred, migration 0003). Then what is still open is rolled back, the batch's rooms
    /// forgotten by the cache, and the batch given
    /// back (`Ok(Err(batch))`) for the exact path to redo. `Err`
    /// when the writing connection cannot be had, or the rollback fails. Takes the batch
    /// to move each message into its result (no copy besides the one sqlx binds).
    async fn insert_batch_one_trip(
        &self,
        batch: Vec<realtime_core::NewMessage>,
    ) -> realtime_core::Result<
        std::result::Result<Vec<realtime_core::Inserted>, Vec<realtime_core::NewMessage>>,
    > {
        use crate::sql::to_u64;
        use realtime_core::{Inserted, Message};
        use sqlx::Row;
        use std::collections::{BTreeMap, HashMap};
        // Each send is a repeat of a client id earlier in the batch (by its index), or
        // its room's k-th new row (k).
        enum Slot {
            Repeat(usize),
            Fresh(i64),
        }
        let mut per_room: BTreeMap<&str, i64> = BTreeMap::new();
        let mut seen: HashMap<(&str, &str, &str), usize> = HashMap::new();
        let mut slots = Vec::with_capacity(batch.len());
        let mut fresh: Vec<(&realtime_core::NewMessage, i64)> = Vec::with_capacity(batch.len());
        for (i, new) in batch.iter().enumerate() {
            if let Some(cid) = &new.client_id {
                let key = (new.room_id.as_str(), new.sender_id.as_str(), cid.as_str());
                if let Some(&first) = seen.get(&key) {
                    slots.push(Slot::Repeat(first));
                    continue;
                }
                seen.insert(key, i);
            }
            let k = per_room.entry(new.room_id.as_str()).or_insert(0);
            *k += 1;
            slots.push(Slot::Fresh(*k));
            fresh.push((new, *k));
        }
        if fresh.len() > 500 || per_room.len() > 500 {
            return Ok(Err(batch));
        }
        // The writing connection first: the seq cache is read and changed only while it
        // is held ([`SeqCache`]).
        let mut tx = RawTx::new(self.writer().await?);
        let known = self
            .seqs
            .as_ref()
            .and_then(|cache| cache.get(per_room.keys().copied()));
        let bind_err = |e: sqlx::error::BoxDynError| {
            realtime_core::Error::Store(format!("binding a batch insert: {e}"))
        };
        let query = match &known {
            // Every room's number is known: each row's `seq` is bound.
            Some(last) => {
                let last_of: BTreeMap<&str, i64> =
                    per_room.keys().copied().zip(last.iter().copied()).collect();
                let numbered: Vec<(&realtime_core::NewMessage, i64)> = fresh
                    .iter()
                    .map(|(m, k)| {
                        (
                            *m,
                            last_of.get(m.room_id.as_str()).copied().unwrap_or_default() + k,
                        )
                    })
                    .collect();
                let args = one_trip_args(None, &numbered).map_err(bind_err)?;
                sqlx::query_with(one_trip_sql(fresh.len(), true), args)
            }
            None => {
                let rooms = serde_json::to_string(&per_room.keys().collect::<Vec<_>>())
                    .map_err(|e| realtime_core::Error::Store(format!("room list: {e}")))?;
                let args = one_trip_args(Some(rooms), &fresh).map_err(bind_err)?;
                sqlx::query_with(one_trip_sql(fresh.len(), false), args)
            }
        };
        let rows = match tx.fetch_all(query).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::debug!(error = %e, "one-query batch insert failed; redoing it exactly");
                self.forget_seqs(per_room.keys().copied());
                tx.rollback().await?;
                return Ok(Err(batch));
            }
        };
        // Committed: every room exists (the room key is checked at `COMMIT`). Without
        // known numbers the one `SELECT` (an aggregate: always one row) read each counter
        // inside the transaction, as a JSON array in the order of `per_room`'s keys (the
        // order the rooms were bound in), `null` for a room not found: numbers only, no
        // room ids to parse and hash back. The error below
        // cannot happen for that reason; were it to, it would say so, as the batch is
        // stored already.
        let last: Vec<i64> = match known {
            Some(last) => last,
            None => {
                let counters: Option<String> = match rows.as_slice() {
                    [row] => row.try_get("counters").ok().flatten(),
                    _ => None,
                };
                let values: Vec<Option<i64>> = counters
                    .and_then(|c| serde_json::from_str(&c).ok())
                    .unwrap_or_default();
                let read: Option<Vec<i64>> = (0..per_room.len())
                    .map(|i| values.get(i).copied().flatten())
                    .collect();
                match read {
                    Some(last) => last,
                    None => {
                        self.forget_seqs(per_room.keys().copied());
                        tx.ended();
                        return Err(realtime_core::Error::Store(format!(
                            "a batch of {} messages was stored, but its rooms' counters were not read back",
                            batch.len()
                        )));
                    }
                }
            }
        };
        if let Some(cache) = &self.seqs {
            for ((room, added), last) in per_room.iter().zip(&last) {
                cache.set(room, last + added);
            }
        }
        tx.ended();
        let last_of: BTreeMap<&str, i64> = per_room.keys().copied().zip(last).collect();
        // Each send's room's last seq before the batch, read while `last_of` still borrows
        // the batch.
        let before: Vec<i64> = batch
            .iter()
            .map(|new| {
                last_of
                    .get(new.room_id.as_str())
                    .copied()
                    .unwrap_or_default()
            })
            .collect();
        let mut out: Vec<Inserted> = Vec::with_capacity(batch.len());
        for ((new, slot), before) in batch.into_iter().zip(slots).zip(before) {
            out.push(match slot {
                Slot::Repeat(first) => Inserted {
                    message: out[first].message.clone(),
                    created: false,
                },
                Slot::Fresh(k) => {
                    let seq = before + k;
                    Inserted {
                        message: Message::from_new(new, to_u64(seq)),
                        created: true,
                    }
                }
            });
        }
        Ok(Ok(out))
    }
}

/// Most rooms [`SeqCache`] holds; past it, it starts over (bounded memory).
const SEQ_CACHE_ROOMS: usize = 100_000;

/// Each room's last `seq` as this store last committed it, so that a batch to rooms it
/// knows binds its rows' numbers instead of reading `MAX(seq)` for every row and the
/// rooms' counters for the batch: the insert's `SELECT` then no longer reads the table it
/// inserts into, so SQLite no longer copies the rows into a temporary table first: 46,175
/// → 29,498 instructions per stored message, −36 %.
///
/// Only a file store has one: every write goes through its one writing connection, and the
/// cache is read and changed only while that connection is held, so no write of this store
/// falls between a read and the commit. Whatever the cache misses is caught: numbers taken
/// by another writer of the same file (another process) make the batch's rows collide in
/// the messages' unique `(room_id, seq)` index, which rolls the batch back to the exact
/// path, and a batch that goes back forgets its rooms. Numbers only move back when a room
/// is deleted, and [`SqliteStore`]'s `delete_room` forgets it; a room deleted and created
/// again under the same id by another process while this one still holds its number would
/// go on from that number (in the room's new `epoch`). At most [`SEQ_CACHE_ROOMS`] rooms.
#[derive(Debug, Default)]
struct SeqCache(std::sync::Mutex<std::collections::HashMap<String, i64>>);

impl SeqCache {
    fn map(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, i64>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The last seq of each of `rooms`, in their order, if every one is known.
    fn get<'a>(&self, rooms: impl Iterator<Item = &'a str>) -> Option<Vec<i64>> {
        let map = self.map();
        rooms.map(|r| map.get(r).copied()).collect()
    }

    /// `room`'s last seq is now `seq`.
    fn set(&self, room: &str, seq: i64) {
        let mut map = self.map();
        if let Some(last) = map.get_mut(room) {
            *last = seq;
            return;
        }
        if map.len() >= SEQ_CACHE_ROOMS {
            map.clear();
        }
        map.insert(room.to_owned(), seq);
    }

    /// Forget `rooms`: the next batch to them reads their numbers from the messages.
    fn forget<'a>(&self, rooms: impl IntoIterator<Item = &'a str>) {
        let mut map = self.map();
        for room in rooms {
            map.remove(room);
        }
    }
}

/// The one-trip batch insert's statement text for `rows` messages (≤ 500; larger batches
/// take the exact path): `BEGIN IMMEDIATE`, the insert, `COMMIT`; the rows padded with
/// all-NULL rows to a [`crate::sql::batch_bucket`] size (so that the text repeats and stays
/// prepared in sqlx's cache). The insert is `OR ROLLBACK` and the room's foreign key
/// deferred (checked at `COMMIT`): a failing row ends the whole transaction, which this path
/// redoes exactly anyway, so SQLite keeps no statement journal (a copy of every page the
/// insert changes, ~10 % of a message's instructions). A new
/// message's status is always `sent`, written into the text rather than bound.
///
/// `known`: every room's last seq is in the [`SeqCache`], and each row's `seq` is bound
/// (eight parameters per row). Otherwise the rooms' last seqs are read from the messages
/// ([`SEQ_FROM_MESSAGES`]): the rooms come first, as a JSON array, and the statement's one
/// result row, `counters`, is a JSON array of their last seq before the batch, in the order
/// given, `null` for an unknown room; each row's `seq` is its room's `MAX(seq)` + its place
/// among the room's new rows (bound). That insert's `SELECT` reads the table it inserts
/// into, so SQLite computes every row into a temporary table before it inserts one.
/// Parameters: [`one_trip_args`]. Built once per bucket (building
/// it and its binds through `QueryBuilder` for every batch was 10 % of a batch's
/// instructions). The exact path's padded `VALUES` (`push_padded_rows`, rarely taken) still
/// goes through `QueryBuilder`.
fn one_trip_sql(rows: usize, known: bool) -> &'static str {
    use std::sync::OnceLock;
    debug_assert!(
        rows <= 500,
        "the caller takes the exact path above 500 rows"
    );
    static TEXTS: [[OnceLock<String>; 10]; 2] = [const { [const { OnceLock::new() }; 10] }; 2];
    let bucket = crate::sql::batch_bucket(rows);
    // 1, 2, 4, … 256 (slots 0–8), then 500 (slot 9).
    let slot = if bucket > 256 {
        9
    } else {
        bucket.trailing_zeros() as usize
    };
    TEXTS[usize::from(known)][slot].get_or_init(|| {
        let row = "(?, ?, ?, ?, ?, ?, ?, ?)";
        let values = vec![row; bucket].join(", ");
        let (counters, seq) = if known {
            (String::new(), "column3".to_owned())
        } else {
            (
                format!(
                    "SELECT json_group_array(\
                     (SELECT {last} FROM realtime_rooms WHERE realtime_rooms.id = rooms.value) \
                     ORDER BY rooms.key) AS counters FROM json_each(?) AS rooms; ",
                    last = max_seq!("realtime_rooms.id"),
                ),
                format!("{} + column3", max_seq!("column2")),
            )
        };
        format!(
            "BEGIN IMMEDIATE; {counters}\
             INSERT OR ROLLBACK INTO realtime_messages (id, room_id, seq, client_id, sender_id, content, kind, status, created_at, edited_at, deleted_at) \
             SELECT column1, column2, {seq}, \
             column4, column5, CAST(column6 AS BLOB), column7, '{sent}', column8, NULL, NULL \
             FROM (VALUES {values}) WHERE column1 IS NOT NULL; COMMIT",
            sent = realtime_core::MessageStatus::Sent.as_str(),
        )
    })
}

/// The parameters of [`one_trip_sql`]: `rooms` (a JSON array; none when the rooms' numbers
/// are known), then each of `fresh` (a message and its seq, or its place among its room's
/// new rows) as id, room, seq or place, client id, sender, content (as
/// text: one copy, where a blob parameter is two; the statement casts it to the `BLOB` it
/// always was), kind and time, then all-NULL padding rows. Each
/// text is one allocation (`Arc<str>`, which sqlx binds without copying it again); the rows'
/// kinds share theirs.
fn one_trip_args(
    rooms: Option<String>,
    fresh: &[(&realtime_core::NewMessage, i64)],
) -> std::result::Result<sqlx::sqlite::SqliteArguments, sqlx::error::BoxDynError> {
    use sqlx::Arguments;
    let bucket = crate::sql::batch_bucket(fresh.len());
    let mut args = sqlx::sqlite::SqliteArguments::default();
    args.reserve(usize::from(rooms.is_some()) + 8 * bucket, 0);
    if let Some(rooms) = rooms {
        args.add(rooms)?;
    }
    let mut kinds = SharedTexts::default();
    for (m, k) in fresh {
        args.add(Arc::<str>::from(m.id.as_str()))?;
        args.add(Arc::<str>::from(m.room_id.as_str()))?;
        args.add(*k)?;
        args.add(m.client_id.as_deref().map(Arc::<str>::from))?;
        args.add(Arc::<str>::from(m.sender_id.as_str()))?;
        args.add(Arc::<str>::from(m.content.as_str()))?;
        args.add(kinds.get(m.kind.as_str()))?;
        args.add(crate::sql::micros(m.created_at))?;
    }
    for _ in fresh.len()..bucket {
        for _ in 0..8 {
            args.add(None::<i64>)?;
        }
    }
    Ok(args)
}

/// One `Arc<str>` per distinct text, for a parameter with a few values that repeat within
/// a batch (the messages' kinds): a linear scan.
#[derive(Default)]
struct SharedTexts<'a>(Vec<(&'a str, Arc<str>)>);

impl<'a> SharedTexts<'a> {
    fn get(&mut self, text: &'a str) -> Arc<str> {
        if let Some((_, shared)) = self.0.iter().find(|(t, _)| *t == text) {
            return shared.clone();
        }
        let shared: Arc<str> = Arc::from(text);
        self.0.push((text, shared.clone()));
        shared
    }
}

/// Where writes run.
#[derive(Debug, Clone)]
enum Writer {
    /// `sqlite::memory:` (every connection would see a database of its own) and
    /// [`SqliteStore::from_pool`]: the pool.
    Pool(SqlitePool),
    /// A file: one connection, held for the store's life. Not a pool of one: a pooled
    /// connection is handed back through a spawned task that pings it (one more hand-off
    /// to sqlx's SQLite thread per commit), and is closed and
    /// reopened with a cold page cache at the pool's `max_lifetime`.
    Own {
        conn: Arc<tokio::sync::Mutex<SqliteConnection>>,
        acquire_timeout: Duration,
    },
}

impl Writer {
    /// The writing connection; [`Error::Store`] (sqlx's pool time-out) after waiting
    /// `acquire_timeout` for it.
    async fn acquire(&self) -> Result<WriterConn> {
        match self {
            Writer::Pool(pool) => pool
                .acquire()
                .await
                .map(WriterConn::Pooled)
                .map_err(store_err),
            Writer::Own {
                conn,
                acquire_timeout,
            } => tokio::time::timeout(*acquire_timeout, conn.clone().lock_owned())
                .await
                .map(WriterConn::Own)
                .map_err(|_| store_err(sqlx::Error::PoolTimedOut)),
        }
    }
}

/// The writing connection, while a writer holds it.
enum WriterConn {
    Pooled(PoolConnection<Sqlite>),
    Own(tokio::sync::OwnedMutexGuard<SqliteConnection>),
}

impl std::ops::Deref for WriterConn {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        match self {
            WriterConn::Pooled(c) => c,
            WriterConn::Own(c) => c,
        }
    }
}

impl std::ops::DerefMut for WriterConn {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        match self {
            WriterConn::Pooled(c) => c,
            WriterConn::Own(c) => c,
        }
    }
}

/// The WAL file is trimmed back to twice the rewind threshold (`PRAGMA journal_size_limit`),
/// not to the threshold itself: a WAL rewound at the threshold has always grown a little
/// past it, and trimming it to the threshold at every rewind freed those blocks on the
/// first commit after it (an `ftruncate` of 2–5 ms inside a writing transaction on the
/// benchmark machine) only for the file to grow back a second later.
fn journal_size_limit(wal_restart_bytes: u64) -> i64 {
    i64::try_from(wal_restart_bytes.saturating_mul(2)).unwrap_or(i64::MAX)
}

/// The background checkpoints' connection: one of its own (not the pool's, whose threads
/// serve reads at the process's priority), its sqlx thread named `sqlite-ckpt-<n>` so it
/// can be found and given `nice` ([`SqliteConfig::checkpoint_nice`]). Returns the thread's
/// name too.
async fn checkpoint_connection(
    options: &SqliteConnectOptions,
    nice: u8,
) -> Result<(SqliteConnection, String)> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Thread names are cut at 15 bytes.
    let name = format!(
        "sqlite-ckpt-{}",
        NEXT.fetch_add(1, Ordering::Relaxed) % 1000
    );
    let thread = name.clone();
    let conn = options
        .clone()
        .thread_name(move |_| thread.clone())
        .connect()
        .await
        .map_err(store_err)?;
    if nice > 0 {
        lower_priority(&name, nice.min(19));
    }
    Ok((conn, name))
}

/// Give this process's thread named `name` the nice value `nice` (on Linux,
/// `setpriority(PRIO_PROCESS, tid)` changes one thread). A failure is logged at `debug`:
/// the thread then keeps the process's priority.
#[cfg(target_os = "linux")]
fn lower_priority(name: &str, nice: u8) {
    let tid = task_named(name)
        .and_then(|task| task.file_name()?.to_str()?.parse::<i32>().ok())
        .and_then(rustix::process::Pid::from_raw);
    let set = match tid {
        Some(tid) => rustix::process::setpriority_process(Some(tid), i32::from(nice))
            .map_err(|e| e.to_string()),
        None => Err(format!("no thread named {name}")),
    };
    match set {
        Ok(()) => tracing::trace!(thread = name, nice, "checkpoint thread's priority lowered"),
        Err(e) => {
            tracing::debug!(error = %e, thread = name, "the checkpoint thread keeps the process's priority")
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority(_name: &str, _nice: u8) {}

/// `/proc/self/task/<tid>` of this process's thread named `name` (its `comm`), if any.
#[cfg(target_os = "linux")]
fn task_named(name: &str) -> Option<std::path::PathBuf> {
    std::fs::read_dir("/proc/self/task")
        .ok()?
        .flatten()
        .map(|task| task.path())
        .find(|task| std::fs::read_to_string(task.join("comm")).is_ok_and(|c| c.trim_end() == name))
}

/// Checkpoint the WAL every `interval` until the returned sender is dropped: `PASSIVE` on
/// `conn`, the checkpoints' own connection (never waits for readers or writers), and once
/// the WAL holds more than `restart_frames` pages, a rewind ([`rewind`]).
///
/// Why both: under continuous writes a `PASSIVE` checkpoint never catches up with the last
/// commit, and SQLite rewinds the WAL only when one has, so the file grew without end
/// (~75 MB/s at 20,000 messages/s; 400 MB after 5 s).
fn spawn_checkpointer(
    mut conn: SqliteConnection,
    writer: Writer,
    files: Arc<DbFiles>,
    interval: Duration,
    restart_frames: i64,
) -> tokio::sync::oneshot::Sender<()> {
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(interval.max(Duration::from_millis(1)));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The WAL's length when the last `RESTART` finished.
        let mut rewound_at = None;
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                _ = every.tick() => {
                    if let Some(frames) = passive(&mut conn).await
                        && needs_rewind(frames, restart_frames, rewound_at)
                    {
                        rewound_at = rewind(&mut conn, &writer, &files).await;
                    }
                }
            }
        }
    });
    stop
}

/// Whether a WAL of `frames` frames needs a rewind: when it holds more than
/// `restart_frames`, unless it still holds exactly what it held when the last `RESTART`
/// finished (`rewound_at`): then no commit came since, and the next one starts the WAL over
/// by itself. Without that, a rewind was followed at once by a second one, as the next tick
/// came before any commit (rewinds in pairs 3 ms apart, each
/// holding the writer's connection), and an idle database left with a long WAL was
/// `RESTART`ed at every tick. A WAL that grew since (a reader kept the commit from
/// starting it over) is rewound again.
fn needs_rewind(frames: i64, restart_frames: i64, rewound_at: Option<i64>) -> bool {
    frames > restart_frames && rewound_at != Some(frames)
}

/// `PRAGMA wal_checkpoint(PASSIVE)`: copies the WAL's frames into the database file as far
/// as readers allow, without waiting for anyone. The frames in the WAL, or `None` when the
/// checkpoint failed (logged at `debug`; the next tick retries). Logged at `trace`.
async fn passive(conn: &mut SqliteConnection) -> Option<i64> {
    let started = std::time::Instant::now();
    // One row: (busy, frames in the WAL, frames checkpointed).
    match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(conn)
        .await
    {
        Ok((_, frames, done)) => {
            tracing::trace!(frames, done, took = ?started.elapsed(), "WAL checkpoint (PASSIVE)");
            Some(frames)
        }
        Err(e) => {
            tracing::debug!(error = %e, "WAL checkpoint failed; retrying");
            None
        }
    }
}

/// Rewind the WAL: `PRAGMA wal_checkpoint(RESTART)` on the `writer`'s connection, after
/// syncing, without any lock, what the `PASSIVE` checkpoints copied. The next commit writes
/// from the WAL's start again.
///
/// `RESTART` holds the write lock while it copies the frames the last `PASSIVE` left and
/// syncs the WAL and the database file, and writers wait for all of it. SQLite syncs the
/// database file only when a checkpoint completes, so that sync had to write every page the
/// `PASSIVE`s copied since the last rewind (~1 s of them under load: 12–21 ms of the
/// rewind's 20–25 ms on the benchmark machine). So first the database file is synced here
/// (`fdatasync`, on a blocking thread), one more `PASSIVE` copies what was written
/// meanwhile, and the database file and the WAL are synced again: the `RESTART` is left
/// with a few milliseconds' worth of frames. The syncs only move
/// work out of the lock; a failed one is logged at `debug` and leaves its pages to the
/// `RESTART`'s own syncs.
///
/// Why on the writer's own connection: every write shares that one connection, so the
/// `RESTART` queues behind the current write for it, and the next write waits for it
/// there and is woken the moment it ends. Run on another
/// connection, it took the lock from under the writer, whose `BEGIN IMMEDIATE` then polled
/// in SQLite's busy handler, sleeping 1, 2, 5, 10, 15, 20 ms … between tries: commits were
/// held 10–15 ms longer than the rewind lasted.
///
/// Logged at `debug` with its duration.
///
/// Returns the WAL's length in frames when the `RESTART` finished, if it did.
async fn rewind(ckpt: &mut SqliteConnection, writer: &Writer, files: &Arc<DbFiles>) -> Option<i64> {
    sync_files(files, false).await;
    passive(ckpt).await;
    sync_files(files, true).await;
    let mut conn = match writer.acquire().await {
        Ok(conn) => conn,
        Err(e) => {
            tracing::debug!(error = %e, "WAL restart checkpoint got no connection; retrying");
            return None;
        }
    };
    let started = std::time::Instant::now();
    // One row: (busy, frames in the WAL, frames checkpointed).
    match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(RESTART)")
        .fetch_one(&mut *conn)
        .await
    {
        Ok((0, log, _)) => {
            tracing::debug!(frames = log, took = ?started.elapsed(), "WAL rewound (RESTART checkpoint)");
            Some(log)
        }
        Ok((_, log, done)) => {
            tracing::debug!(frames = log, done, took = ?started.elapsed(), "WAL restart checkpoint could not finish (readers); retrying");
            None
        }
        Err(e) => {
            tracing::debug!(error = %e, "WAL restart checkpoint failed; retrying");
            None
        }
    }
}

/// The files a rewind syncs ahead of the `RESTART`: the database and its WAL
/// (`<database>-wal`). Opened at each sync, by name: SQLite deletes the WAL when its last
/// connection closes and makes a new one later.
struct DbFiles {
    db: std::path::PathBuf,
    wal: std::path::PathBuf,
}

impl DbFiles {
    /// The database file `db` (as SQLite opens it) and its WAL.
    fn of(db: &std::path::Path) -> Self {
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        DbFiles {
            db: db.to_owned(),
            wal: wal.into(),
        }
    }

    /// `fdatasync` the database file, and the WAL if `wal_too` (blocking).
    fn sync(&self, wal_too: bool) -> std::io::Result<()> {
        std::fs::File::open(&self.db)?.sync_data()?;
        if wal_too {
            std::fs::File::open(&self.wal)?.sync_data()?;
        }
        Ok(())
    }
}

/// `fdatasync` the database file, and the WAL if `wal_too`, on a blocking thread (logged at
/// `trace`; a failure at `debug`).
async fn sync_files(files: &Arc<DbFiles>, wal_too: bool) {
    let files = files.clone();
    let started = std::time::Instant::now();
    let synced = tokio::task::spawn_blocking(move || files.sync(wal_too)).await;
    match synced {
        Ok(Ok(())) => {
            tracing::trace!(wal_too, took = ?started.elapsed(), "synced before the WAL rewind")
        }
        Ok(Err(e)) => tracing::debug!(error = %e, "syncing before the WAL rewind failed"),
        Err(e) => tracing::debug!(error = %e, "syncing before the WAL rewind did not finish"),
    }
}

impl_store!(SqliteStore, Sqlite, SqliteRow);

#[cfg(test)]
mod tests {
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
}
