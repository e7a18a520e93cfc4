//! The WAL's upkeep: a background checkpointer on a connection and thread of its own
//! (at a low priority), the rewind once the WAL passes its size, and the file syncs.

use super::*;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use std::sync::Arc;
use std::time::Duration;

/// The WAL file is trimmed back to twice the rewind threshold (`PRAGMA journal_size_limit`),
/// not to the threshold itself: a WAL rewound at the threshold has always grown a little
/// past it, and trimming it to the threshold at every rewind freed those blocks on the
/// first commit after it (an `ftruncate` of 2–5 ms inside a writing transaction on the
/// benchmark machine) only for the file to grow back a second later.
pub(crate) fn journal_size_limit(wal_restart_bytes: u64) -> i64 {
    i64::try_from(wal_restart_bytes.saturating_mul(2)).unwrap_or(i64::MAX)
}

/// The background checkpoints' connection: one of its own (not the pool's, whose threads
/// serve reads at the process's priority), its sqlx thread named `sqlite-ckpt-<n>` so it
/// can be found and given `nice` ([`SqliteConfig::checkpoint_nice`]). Returns the thread's
/// name too.
pub(crate) async fn checkpoint_connection(
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
pub(crate) fn lower_priority(name: &str, nice: u8) {
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
pub(crate) fn lower_priority(_name: &str, _nice: u8) {}

/// `/proc/self/task/<tid>` of this process's thread named `name` (its `comm`), if any.
#[cfg(target_os = "linux")]
pub(crate) fn task_named(name: &str) -> Option<std::path::PathBuf> {
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
pub(crate) fn spawn_checkpointer(
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
pub(crate) fn needs_rewind(frames: i64, restart_frames: i64, rewound_at: Option<i64>) -> bool {
    frames > restart_frames && rewound_at != Some(frames)
}

/// `PRAGMA wal_checkpoint(PASSIVE)`: copies the WAL's frames into the database file as far
/// as readers allow, without waiting for anyone. The frames in the WAL, or `None` when the
/// checkpoint failed (logged at `debug`; the next tick retries). Logged at `trace`.
pub(crate) async fn passive(conn: &mut SqliteConnection) -> Option<i64> {
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
pub(crate) async fn rewind(
    ckpt: &mut SqliteConnection,
    writer: &Writer,
    files: &Arc<DbFiles>,
) -> Option<i64> {
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
pub(crate) struct DbFiles {
    pub(crate) db: std::path::PathBuf,
    pub(crate) wal: std::path::PathBuf,
}

impl DbFiles {
    /// The database file `db` (as SQLite opens it) and its WAL.
    pub(crate) fn of(db: &std::path::Path) -> Self {
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        DbFiles {
            db: db.to_owned(),
            wal: wal.into(),
        }
    }

    /// `fdatasync` the database file, and the WAL if `wal_too` (blocking).
    pub(crate) fn sync(&self, wal_too: bool) -> std::io::Result<()> {
        std::fs::File::open(&self.db)?.sync_data()?;
        if wal_too {
            std::fs::File::open(&self.wal)?.sync_data()?;
        }
        Ok(())
    }
}

/// `fdatasync` the database file, and the WAL if `wal_too`, on a blocking thread (logged at
/// `trace`; a failure at `debug`).
pub(crate) async fn sync_files(files: &Arc<DbFiles>, wal_too: bool) {
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
