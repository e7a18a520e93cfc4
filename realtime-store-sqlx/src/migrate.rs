//! Embedded migrations, applied on connect through sqlx's migrator, recorded in our own
//! table `_realtime_migrations` so they never collide with the host application's.

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

/// SQLite migrations, oldest first.
#[cfg(feature = "sqlite")]
pub(crate) const SQLITE: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "partial client id index",
        include_str!("../migrations/sqlite/0002_partial_client_id_index.sql"),
    ),
    (
        3,
        "deferred message room key",
        include_str!("../migrations/sqlite/0003_deferred_message_room_key.sql"),
    ),
];
/// PostgreSQL migrations, oldest first.
#[cfg(feature = "postgres")]
pub(crate) const POSTGRES: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "partial client id index",
        include_str!("../migrations/postgres/0002_partial_client_id_index.sql"),
    ),
];

/// The first line of a migration that runs outside sqlx's transaction (as sqlx's CLI
/// marks one).
const NO_TRANSACTION: &str = "-- no-transaction";

/// The migrations table.
pub const MIGRATIONS_TABLE: &str = "_realtime_migrations";

pub(crate) async fn run<'a, A>(
    migrations: &[(i64, &'static str, &'static str)],
    conn: A,
) -> realtime_core::Result<()>
where
    A: sqlx::Acquire<'a>,
    <A::Connection as std::ops::Deref>::Target: sqlx::migrate::Migrate,
{
    let list = migrations
        .iter()
        .map(|(v, d, sql)| {
            Migration::new(
                *v,
                (*d).into(),
                MigrationType::Simple,
                sql.into_sql_str(),
                // A migration that must run outside a transaction (it opens its own, to
                // switch foreign keys off around it) says so on its first line.
                sql.starts_with(NO_TRANSACTION),
            )
        })
        .collect();
    let mut m = Migrator::with_migrations(list);
    m.dangerous_set_table_name(MIGRATIONS_TABLE);
    m.run(conn).await.map_err(|e| {
        tracing::error!(error = %e, "realtime-store-sqlx migrations failed");
        realtime_core::Error::Store(format!("migration failed: {e}"))
    })
}
