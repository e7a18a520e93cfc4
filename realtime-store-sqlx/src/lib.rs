//! # realtime-store-sqlx
//!
//! [`realtime_core::Store`] on SQLite (embedded, the default) and PostgreSQL, from one code
//! base through sqlx. Schema and migrations are embedded and applied on connect.
//!
//! ```no_run
//! # async fn demo() -> realtime_core::Result<()> {
//! use realtime_core::{Hub, MemoryBroker};
//! use std::sync::Arc;
//!
//! // SQLite file in the working directory (created if missing):
//! let store = realtime_store_sqlx::connect("sqlite://chat.db").await?;
//! // or in memory: realtime_store_sqlx::connect("sqlite::memory:")
//! // or PostgreSQL: realtime_store_sqlx::connect("postgres://postgres@127.0.0.1:5432/chat")
//! let hub = Hub::new(store, Arc::new(MemoryBroker::new()));
//! # Ok(()) }
//! ```
//!
//! | backend | type | URL |
//! |---|---|---|
//! | SQLite (feature `sqlite`, default) | [`SqliteStore`] | `sqlite://file.db`, `sqlite:file.db`, `sqlite::memory:` |
//! | PostgreSQL (feature `postgres`, default) | [`PgStore`] | `postgres://…`, `postgresql://…` |
//!
//! What is stored (tables `realtime_*`): users (profile, status, last seen, password
//! hash), rooms (group/direct, with the recovery `epoch`, and a per-room
//! `last_seq` counter that PostgreSQL keeps; SQLite reads a room's last `seq` from its
//! messages instead and leaves the column as it was), members, invites, messages (per-room gapless `seq`, client id for idempotent
//! retries, content kept verbatim as bytes, TEXT/SYSTEM/FILE, status, `edited_at`,
//! `deleted_at`), reactions, read pointers, favorites and event history. Timestamps are
//! stored as microseconds since the Unix epoch.
//!
//! Guarantees (checked by `realtime_core::testing::store_suite` on both backends):
//! sequence numbers per room are gapless and strictly increasing under concurrent
//! senders; a retried send with the same client id returns the first message and stores
//! nothing; every multi-statement change is one transaction, so a dropped connection
//! leaves no partial rows; unique and foreign-key violations come back as
//! [`realtime_core::Error::Conflict`] / [`realtime_core::Error::NotFound`].
//!
//! A SQLite file store remembers each room's last `seq` after its first batch to the room
//! (at most 100,000 rooms), so later batches bind the numbers instead of reading them (−36 %
//! instructions per stored message). Another process writing messages to the same file is
//! caught by the `(room_id, seq)` unique index (that batch is redone exactly and the room
//! read again); the one case it cannot see is another process deleting a room and making
//! it again under the same id, whose numbering would then go on in the room's new `epoch`
//! instead of starting at 1. One writing process per file avoids it.
//!
//! Migrations (`migrations/sqlite`, `migrations/postgres`, recorded in
//! [`MIGRATIONS_TABLE`]): `0001_init` creates the tables; `0002_partial_client_id_index`
//! rebuilds the messages' client-id unique index as a partial one (`WHERE client_id IS NOT
//! NULL`). On PostgreSQL that rebuild blocks writes to `realtime_messages` while the index
//! builds: on a large existing table, apply it in a quiet moment. SQLite only:
//! `0003_deferred_message_room_key` rebuilds `realtime_messages` with its room foreign key
//! `DEFERRABLE INITIALLY DEFERRED` (so the batch insert needs no statement journal), copying
//! every message once at the first start of this version (foreign keys off meanwhile,
//! reactions kept, one transaction).
//!
//! Building SQLite: sqlx bundles it (libsqlite3-sys), with its memory statistics on, so
//! that every SQLite allocation takes a global mutex. Nothing here reads them; building
//! with `LIBSQLITE3_FLAGS="-DSQLITE_DEFAULT_MEMSTATUS=0"` (SQLite's own recommendation;
//! this repository sets it in `.cargo/config.toml`, `[env]`) saves ~3 % of the
//! instructions per stored message.

mod migrate;
mod sql;

#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use migrate::MIGRATIONS_TABLE;
#[cfg(feature = "postgres")]
pub use postgres::PgStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

use realtime_core::{Error, Result, Store};
use std::sync::Arc;
use std::time::Duration;

/// Pool settings. Defaults: up to 10 connections, none kept idle, 5 s to acquire one,
/// idle ones closed after 10 min; SQLite's own in [`SqliteConfig`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// Most open connections (a SQLite file store opens one more, held for its writes
    /// for the store's life: never closed for age or idleness).
    pub max_connections: u32,
    /// Connections kept open even when idle.
    pub min_connections: u32,
    /// How long a query waits for a free connection before failing ([`Error::Store`],
    /// "pool timed out while waiting for an open connection"); for a SQLite file's
    /// writes, how long one waits for the writing connection.
    pub acquire_timeout: Duration,
    /// Idle connections are closed after this long (`None`: never).
    pub idle_timeout: Option<Duration>,
    /// Settings that only SQLite reads (PostgreSQL ignores them).
    pub sqlite: SqliteConfig,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_connections: 10,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(5),
            idle_timeout: Some(Duration::from_secs(600)),
            sqlite: SqliteConfig::default(),
        }
    }
}

/// SQLite's settings: the busy timeout, and how a file's write-ahead log is kept small
/// (checkpoints in the background, rewinds past a size). The defaults need no tuning:
/// busy timeout 5 s, a checkpoint every 25 ms on a thread at nice 19, a rewind past 64 MiB.
/// The checkpoint settings apply to files only (an in-memory database has no WAL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteConfig {
    /// How long a writer waits for the database lock.
    pub busy_timeout: Duration,
    /// How often a background task checkpoints the WAL into the database file (`PRAGMA wal_checkpoint(PASSIVE)`; commits never checkpoint). Short
    /// intervals keep each checkpoint short: the checkpoint's copying shares the CPU with
    /// the writers, and under load a longer one showed in delivery latency (100 ms against
    /// 25 ms at W2 20 msg/s: p99 6.9–31.7 ms against 4.7–6.4 ms). An idle database costs a
    /// wake-up per interval. Zero counts as 1 ms.
    /// Default 25 ms.
    pub checkpoint_interval: Duration,
    /// The WAL's size, in bytes, past which the background checkpoint
    /// rewinds it (`PRAGMA wal_checkpoint(RESTART)` on the writer's connection, after
    /// syncing what earlier checkpoints copied; writes wait for the
    /// `RESTART`: 2–12 ms on the benchmark machine). After a rewind
    /// the file is trimmed back to twice this size (`journal_size_limit`).
    /// Without it a WAL written to without pause is never rewound and grows without bound.
    /// Larger: rarer waits, more disk (at 20,000 messages/s, ~3.3 KB of WAL each, 64 MiB
    /// lasts ~1 s). Default 64 MiB.
    pub wal_restart_bytes: u64,
    /// Linux only: the nice value (0–19; larger is lower priority, as
    /// `nice(1)`) of the thread that runs the background checkpoints, a connection of its
    /// own. At the default 19 the copying of the WAL into the database file takes the CPU
    /// that the connections' threads leave idle instead of sharing it with them, so
    /// deliveries do not wait behind it (W2 20 msg/s, four
    /// alternating pairs, p99 5.5 / 37.4 / 3.5 / 5.4 ms at 0 → 3.6 / 3.4 / 4.5 / 4.0 ms at
    /// 19, the same CPU per delivery). On a core that stays full the checkpoints can fall
    /// behind, and each rewind (on the writing connection, at the process's priority)
    /// copies what they left, holding writes longer. 0 leaves it at the process's
    /// priority. Values above 19 count as 19; where the priority cannot be set, the
    /// checkpoints run at the process's (logged at `debug`).
    pub checkpoint_nice: u8,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        SqliteConfig {
            busy_timeout: Duration::from_secs(5),
            checkpoint_interval: Duration::from_millis(25),
            wal_restart_bytes: 64 << 20,
            checkpoint_nice: 19,
        }
    }
}

/// Connect to a store by URL: `sqlite:…` or `postgres:`/`postgresql:…`, with default pool
/// settings; migrations are applied.
///
/// # Errors
/// [`Error::Invalid`] naming `database_url` for an unknown scheme or a malformed URL (or a
/// backend whose feature is off); [`Error::Store`] when the database cannot be reached.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>> {
    connect_with(url, &PoolConfig::default()).await
}

/// [`connect`] with pool settings.
///
/// # Errors
/// As [`connect`].
pub async fn connect_with(url: &str, config: &PoolConfig) -> Result<Arc<dyn Store>> {
    let scheme = url.split(':').next().unwrap_or_default();
    match scheme {
        #[cfg(feature = "sqlite")]
        "sqlite" => Ok(Arc::new(SqliteStore::connect_with(url, config).await?)),
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => Ok(Arc::new(PgStore::connect_with(url, config).await?)),
        _ => Err(Error::Invalid {
            field: "database_url",
            reason: format!("unsupported scheme {scheme:?}: use sqlite:… or postgres://…").into(),
        }),
    }
}
