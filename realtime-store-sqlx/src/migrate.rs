//! Embedded migrations, applied on connect through sqlx's migrator, recorded in our own
//! table `_realtime_migrations` so they never collide with the host application's.
//!
//! sqlx records each applied migration's SHA-384 checksum and refuses to start when an
//! embedded migration's text no longer matches it. A migration whose comments were
//! edited after release keeps the checksum of its released text
//! ([`Embedded::released_checksum`]): its statements are unchanged, so the databases
//! that applied it stay valid.

use std::borrow::Cow;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

/// One migration compiled into the crate.
pub(crate) struct Embedded {
    pub version: i64,
    pub description: &'static str,
    pub sql: &'static str,
    /// SHA-384 of the text as released, when its comments changed since. The
    /// statements must stay byte-for-byte what was released.
    pub released_checksum: Option<&'static [u8; 48]>,
}

impl Embedded {
    const fn new(version: i64, description: &'static str, sql: &'static str) -> Self {
        Embedded {
            version,
            description,
            sql,
            released_checksum: None,
        }
    }

    fn migration(&self) -> Migration {
        let mut migration = Migration::new(
            self.version,
            self.description.into(),
            MigrationType::Simple,
            self.sql.into_sql_str(),
            // A migration that must run outside a transaction (it opens its own, to
            // switch foreign keys off around it) says so on its first line.
            self.sql.starts_with(NO_TRANSACTION),
        );
        if let Some(released) = self.released_checksum {
            migration.checksum = Cow::Borrowed(released);
        }
        migration
    }
}

/// SQLite migrations, oldest first.
#[cfg(feature = "sqlite")]
pub(crate) const SQLITE: &[Embedded] = &[
    Embedded::new(
        1,
        "init",
        include_str!("../migrations/sqlite/0001_init.sql"),
    ),
    Embedded::new(
        2,
        "partial client id index",
        include_str!("../migrations/sqlite/0002_partial_client_id_index.sql"),
    ),
    Embedded {
        released_checksum: Some(&SQLITE_0003_RELEASED),
        ..Embedded::new(
            3,
            "deferred message room key",
            include_str!("../migrations/sqlite/0003_deferred_message_room_key.sql"),
        )
    },
];

/// SHA-384 of `0003_deferred_message_room_key.sql` as released (one comment line has
/// changed since).
#[cfg(feature = "sqlite")]
const SQLITE_0003_RELEASED: [u8; 48] = [
    0x37, 0x9f, 0x40, 0x24, 0x80, 0xff, 0x01, 0x43, 0x63, 0x49, 0xe8, 0x48, 0xc6, 0x63, 0x2a, 0x3b,
    0x26, 0x8a, 0xd9, 0x0a, 0x8a, 0xf7, 0xd6, 0xa4, 0x1e, 0xce, 0x5e, 0x13, 0x5d, 0x6a, 0x23, 0x18,
    0xe2, 0xe8, 0x40, 0xcb, 0x72, 0x33, 0xfd, 0x00, 0x50, 0xef, 0x1a, 0x07, 0x1e, 0xe3, 0xa2, 0xbf,
];

/// PostgreSQL migrations, oldest first.
#[cfg(feature = "postgres")]
pub(crate) const POSTGRES: &[Embedded] = &[
    Embedded::new(
        1,
        "init",
        include_str!("../migrations/postgres/0001_init.sql"),
    ),
    Embedded::new(
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

pub(crate) async fn run<'a, A>(migrations: &[Embedded], conn: A) -> realtime_core::Result<()>
where
    A: sqlx::Acquire<'a>,
    <A::Connection as std::ops::Deref>::Target: sqlx::migrate::Migrate,
{
    let list = migrations.iter().map(Embedded::migration).collect();
    let mut m = Migrator::with_migrations(list);
    m.dangerous_set_table_name(MIGRATIONS_TABLE);
    m.run(conn).await.map_err(|e| {
        tracing::error!(error = %e, "realtime-store-sqlx migrations failed");
        realtime_core::Error::Store(realtime_core::BackendError::with_context(
            "migration failed",
            e,
        ))
    })
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;

    /// A database records the released checksum of migration 3 and sqlx's own checksum
    /// of every other migration's text, and opens again with the same list.
    #[tokio::test]
    async fn migration_3_is_recorded_with_its_released_checksum() {
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .expect("pool");
        run(SQLITE, &pool).await.expect("migrations");
        let rows: Vec<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT version, checksum FROM _realtime_migrations ORDER BY version")
                .fetch_all(&pool)
                .await
                .expect("applied");
        assert_eq!(rows.len(), SQLITE.len());
        for ((version, checksum), embedded) in rows.iter().zip(SQLITE) {
            assert_eq!(*version, embedded.version);
            let own = Migration::new(
                embedded.version,
                embedded.description.into(),
                MigrationType::Simple,
                embedded.sql.into_sql_str(),
                false,
            );
            match embedded.released_checksum {
                Some(released) => {
                    assert_eq!(checksum.as_slice(), released.as_slice());
                    assert_ne!(checksum.as_slice(), &*own.checksum, "the text changed");
                }
                None => assert_eq!(checksum.as_slice(), &*own.checksum),
            }
        }
        run(SQLITE, &pool).await.expect("the same list again");
    }
}
