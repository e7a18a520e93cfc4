//! What `/proc` says about a process: CPU time (in total and per thread name) and RSS.

/// (utime + stime) in microseconds for a /proc stat file.
pub(crate) fn cpu_us(path: &str) -> Option<u64> {
    let s = std::fs::read_to_string(path).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks * 10_000) // CLK_TCK = 100 on Linux
}

pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// CPU µs of each of the server's threads by name (`/proc/<pid>/task/*/comm` and `stat`;
/// threads of one name summed): where the server's time goes without a profiler — for
/// chat-server, the runtime's threads (`chat-server`, the main thread, with
/// `WORKER_THREADS=1` as in benches/run.sh; `tokio-rt-worker` otherwise) against SQLite's
/// (`sqlx-sqlite-wor`, names cut at 15 bytes, and the checkpoints' `sqlite-ckpt-0`).
pub(crate) type ThreadsCpu = std::collections::BTreeMap<String, u64>;

pub(crate) fn threads_cpu(pid: u32) -> Option<ThreadsCpu> {
    let mut by_name = ThreadsCpu::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let dir = task.path();
        // A thread that ended between the listing and the read is skipped.
        let Ok(name) = std::fs::read_to_string(dir.join("comm")) else {
            continue;
        };
        let Some(us) = cpu_us(&dir.join("stat").to_string_lossy()) else {
            continue;
        };
        *by_name.entry(name.trim().to_owned()).or_insert(0) += us;
    }
    Some(by_name)
}

/// `after − before` per thread name (a name new since `before` counts from zero; time of
/// threads that ended meanwhile is lost, so the parts may sum to less than the whole, and
/// each thread's count is rounded to the 10 ms tick on its own, so to a little more).
pub(crate) fn threads_cpu_delta(
    before: Option<ThreadsCpu>,
    after: Option<ThreadsCpu>,
) -> Option<ThreadsCpu> {
    let (before, after) = (before?, after?);
    Some(
        after
            .into_iter()
            .map(|(name, us)| {
                let was = before.get(&name).copied().unwrap_or(0);
                (name, us.saturating_sub(was))
            })
            .collect(),
    )
}
