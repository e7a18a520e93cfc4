//! The batch insert of messages in one round trip: the statement text for a batch of
//! rows, its arguments, and the cache of each room's latest `seq`.

use super::*;
use std::sync::Arc;

impl SqliteStore {
    /// Forget the seq cache's numbers of `rooms` ([`SeqCache`]), after a write that moved
    /// them outside the one-query path (call it holding the writing connection).
    pub(crate) fn forget_seqs<'a>(&self, rooms: impl IntoIterator<Item = &'a str>) {
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
    pub(crate) async fn insert_batch_one_trip(
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
            realtime_core::Error::Store(format!("binding a batch insert: {e}").into())
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
                    .map_err(|e| realtime_core::Error::Store(format!("room list: {e}").into()))?;
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
                        ).into()));
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
pub(crate) const SEQ_CACHE_ROOMS: usize = 100_000;

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
pub(crate) struct SeqCache(std::sync::Mutex<std::collections::HashMap<String, i64>>);

impl SeqCache {
    pub(crate) fn map(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, i64>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The last seq of each of `rooms`, in their order, if every one is known.
    pub(crate) fn get<'a>(&self, rooms: impl Iterator<Item = &'a str>) -> Option<Vec<i64>> {
        let map = self.map();
        rooms.map(|r| map.get(r).copied()).collect()
    }

    /// `room`'s last seq is now `seq`.
    pub(crate) fn set(&self, room: &str, seq: i64) {
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
    pub(crate) fn forget<'a>(&self, rooms: impl IntoIterator<Item = &'a str>) {
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
pub(crate) fn one_trip_sql(rows: usize, known: bool) -> &'static str {
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
pub(crate) fn one_trip_args(
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
pub(crate) struct SharedTexts<'a>(Vec<(&'a str, Arc<str>)>);

impl<'a> SharedTexts<'a> {
    pub(crate) fn get(&mut self, text: &'a str) -> Arc<str> {
        if let Some((_, shared)) = self.0.iter().find(|(t, _)| *t == text) {
            return shared.clone();
        }
        let shared: Arc<str> = Arc::from(text);
        self.0.push((text, shared.clone()));
        shared
    }
}
