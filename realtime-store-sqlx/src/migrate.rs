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
                false,
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
