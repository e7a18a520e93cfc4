//! PostgreSQL, for production and for many nodes sharing one database. Writes into one
//! room are serialized by a row lock on the room's sequence counter.

use crate::PoolConfig;
use crate::sql::{impl_store, store_err};
use realtime_core::{Error, Result};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow, Postgres};
use std::str::FromStr;

/// The extended query protocol takes one statement per query.
const MULTI_STATEMENT: bool = false;

/// Batch statement texts follow the batch's size: the padding (untyped NULL rows) and the
/// `json_each` room list are SQLite's; PostgreSQL's stable form would bind arrays
/// through `UNNEST` (not done).
const STABLE_BATCH_TEXT: bool = false;

/// Each room's last `seq` is its row's `last_seq`, whose row lock serializes the writers of
/// every node (PostgreSQL's WAL logs the changed row, not the page, so the counter costs
/// little there).
const SEQ_FROM_MESSAGES: bool = false;

/// Take the next `seq` of room `$1` (locking its row): one row, `last_seq`, or none for an
/// unknown room.
const NEXT_SEQ: &str =
    "UPDATE realtime_rooms SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq";

/// The last `seq` of room `$1`: one row, `last_seq`, or none for an unknown room.
const LATEST_SEQ: &str = "SELECT last_seq FROM realtime_rooms WHERE id = $1";

/// A [`realtime_core::Store`] on PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connect to `url` (`postgres://user@host:5432/db`) with default pool settings, and
    /// apply migrations (tables `realtime_*`, bookkeeping in `_realtime_migrations`).
    ///
    /// # Errors
    /// [`Error::Invalid`] naming `database_url` for a malformed URL; [`Error::Store`] when
    /// the server cannot be reached or migrations fail.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, &PoolConfig::default()).await
    }

    /// [`connect`](Self::connect) with pool settings.
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub async fn connect_with(url: &str, config: &PoolConfig) -> Result<Self> {
        let options = PgConnectOptions::from_str(url).map_err(|e| Error::Invalid {
            field: "database_url",
            reason: e.to_string().into(),
        })?;
        Self::connect_options(options, config).await
    }

    /// Connect with explicit options (e.g. a `search_path` for a schema of one's own).
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub async fn connect_options(options: PgConnectOptions, config: &PoolConfig) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .min_connections(config.min_connections)
            .idle_timeout(config.idle_timeout)
            .acquire_timeout(config.acquire_timeout)
            .connect_with(options)
            .await
            .map_err(store_err)?;
        Self::from_pool(pool).await
    }

    /// Use an existing pool; applies migrations.
    ///
    /// # Errors
    /// [`Error::Store`] when migrations fail.
    pub async fn from_pool(pool: PgPool) -> Result<Self> {
        crate::migrate::run(crate::migrate::POSTGRES, &pool).await?;
        Ok(PgStore { pool })
    }

    /// The pool, for the host's own queries.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A connection of the pool, for a writing transaction.
    async fn writer(&self) -> Result<sqlx::pool::PoolConnection<Postgres>> {
        self.pool.acquire().await.map_err(store_err)
    }

    /// `BEGIN` on `conn` (from [`writer`](Self::writer)); counters are locked row by row.
    async fn begin_on(conn: &mut PgConnection) -> Result<sqlx::Transaction<'_, Postgres>> {
        conn.begin().await.map_err(store_err)
    }

    /// SQLite's one-query batch insert has no PostgreSQL form (one statement per query):
    /// the batch back at once, for the exact path. Never called (`MULTI_STATEMENT` is
    /// false).
    async fn insert_batch_one_trip(
        &self,
        batch: Vec<realtime_core::NewMessage>,
    ) -> Result<std::result::Result<Vec<realtime_core::Inserted>, Vec<realtime_core::NewMessage>>>
    {
        Ok(Err(batch))
    }

    /// SQLite's seq cache has no PostgreSQL counterpart (the counters are row-locked in the
    /// database, where several nodes share them): nothing to forget.
    fn forget_seqs<'a>(&self, _rooms: impl IntoIterator<Item = &'a str>) {}

    /// Lock the counters of `rooms` (row locks until the transaction ends) and read them:
    /// `(room id, last_seq)` for each room that exists.
    async fn lock_counters(
        &self,
        tx: &mut sqlx::Transaction<'_, Postgres>,
        rooms: &[String],
    ) -> Result<Vec<(String, i64)>> {
        use sqlx::Row;
        let mut qb = crate::sql::id_list_query::<Postgres>(
            "UPDATE realtime_rooms SET last_seq = last_seq WHERE id IN (",
            rooms,
            ") RETURNING id, last_seq",
        );
        let rows = qb.build().fetch_all(&mut **tx).await.map_err(store_err)?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("id").map_err(store_err)?,
                    row.try_get("last_seq").map_err(store_err)?,
                ))
            })
            .collect()
    }
}

impl_store!(PgStore, Postgres, PgRow);
