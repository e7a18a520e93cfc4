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
/// besides the index leaf: with thousands of rooms, ~37 % fewer WAL writes per message.
/// The single writing connection and `BEGIN IMMEDIATE`
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

mod checkpoint;
mod insert;
#[cfg(test)]
mod tests;

use checkpoint::*;
use insert::*;

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
        let ids = serde_json::to_string(rooms)
            .map_err(|e| Error::Store(format!("room ids: {e}").into()))?;
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
        let counters: std::collections::HashMap<String, i64> = serde_json::from_str(&json)
            .map_err(|e| Error::Store(format!("room counters: {e}").into()))?;
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

impl_store!(SqliteStore, Sqlite, SqliteRow);
