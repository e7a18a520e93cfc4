//! What the `Store` implementation shares between backends besides its statements:
//! timestamps and integers as stored, id lists, batch sizes, and errors.

use chrono::{DateTime, Utc};
use realtime_core::Error;

/// Microseconds since the Unix epoch: how every timestamp is stored.
pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn from_micros(v: i64) -> realtime_core::Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(v)
        .ok_or_else(|| Error::Store(format!("timestamp {v} out of range").into()))
}

pub(crate) fn opt_micros(v: Option<i64>) -> realtime_core::Result<Option<DateTime<Utc>>> {
    v.map(from_micros).transpose()
}

/// `{head}$1, $2, …{tail}`, one bound parameter per id (callers keep lists to ≤ 500 ids,
/// under SQLite's parameter limit).
pub(crate) fn id_list_query<DB>(head: &str, ids: &[String], tail: &str) -> sqlx::QueryBuilder<DB>
where
    DB: sqlx::Database,
    <DB as sqlx::Database>::Arguments: Default,
    for<'t> String: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    let mut qb = sqlx::QueryBuilder::<DB>::new(head);
    let mut list = qb.separated(", ");
    for id in ids {
        list.push_bind(id.clone());
    }
    qb.push(tail);
    qb
}

/// The row count a batch insert of `n` rows (1–500) is padded to: the next of 1, 2, 4, …,
/// 256, 500. Ten statement texts in all, each prepared once and kept in sqlx's statement
/// cache, instead of one new text (and one SQLite prepare, ~9 % of its thread's CPU under
/// load) for nearly every commit.
pub(crate) fn batch_bucket(n: usize) -> usize {
    if n > 256 {
        500.max(n)
    } else {
        n.max(1).next_power_of_two()
    }
}

pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Map a driver error: unique violations to `Conflict { kind, id }`, foreign-key
/// violations to `NotFound { parent, id }`, text the database refuses (PostgreSQL's NUL
/// in `text`) to `Invalid`, anything else to `Store`.
pub(crate) fn db_err(
    e: sqlx::Error,
    kind: &'static str,
    id: &str,
    parent: &'static str,
    parent_id: &str,
) -> Error {
    if let sqlx::Error::Database(d) = &e {
        match d.kind() {
            sqlx::error::ErrorKind::UniqueViolation => {
                return Error::Conflict {
                    kind,
                    id: id.to_owned(),
                };
            }
            sqlx::error::ErrorKind::ForeignKeyViolation => {
                return Error::NotFound {
                    kind: parent,
                    id: parent_id.to_owned(),
                };
            }
            _ => {}
        }
    }
    store_err(e)
}

/// A driver error as [`Error::Store`], except text the database refuses (PostgreSQL's
/// 22021 `character_not_in_repertoire`, a NUL in `text`, and 22P05
/// `untranslatable_character`), which is the caller's input: [`Error::Invalid`].
pub(crate) fn store_err(e: sqlx::Error) -> Error {
    if let sqlx::Error::Database(d) = &e
        && matches!(d.code().as_deref(), Some("22021" | "22P05"))
    {
        return Error::Invalid {
            field: "text",
            reason: "contains a character the database cannot store (NUL)".into(),
        };
    }
    Error::Store(realtime_core::BackendError::from_source(e))
}
