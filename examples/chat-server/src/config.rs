//! Command-line flags, each with a matching environment variable (clap).

use clap::Parser;
use std::path::PathBuf;

/// The well-known development secret used when no `JWT_SECRET` is given. Anyone can sign
/// tokens with it: never run with it outside a laptop.
pub const DEV_JWT_SECRET: &str = "realtime-dev-secret-change-me-0123456789";

/// chat-server: the realtime reference chat server (seed 000's API).
#[derive(Debug, Clone, Parser)]
#[command(name = "chat-server", version, about)]
pub struct Config {
    /// Runtime worker threads: 1 runs a single-threaded runtime; 0 (default) uses one per core.
    #[arg(long, env = "WORKER_THREADS", default_value_t = 0)]
    pub worker_threads: usize,
    /// Where to listen.
    #[arg(long, env = "BIND", default_value = "0.0.0.0:8080")]
    pub bind: String,
    /// The store: `sqlite://file.db` (created if missing), `sqlite::memory:` or `postgres://…`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://chat.db")]
    pub database_url: String,
    /// SQLite files: rewind the write-ahead log once it holds this many MiB (see
    /// `realtime_store_sqlx::PoolConfig::wal_restart_bytes`). Each rewind makes writers
    /// wait ~2–12 ms; a larger log makes that rarer and takes more disk.
    #[arg(long, env = "SQLITE_WAL_RESTART_MIB", default_value_t = 64)]
    pub sqlite_wal_restart_mib: u64,
    /// SQLite files: how often, in milliseconds, the write-ahead log is checkpointed into
    /// the database file in the background (see
    /// `realtime_store_sqlx::PoolConfig::checkpoint_interval`).
    #[arg(long, env = "SQLITE_CHECKPOINT_MS", default_value_t = 25, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub sqlite_checkpoint_ms: u64,
    /// SQLite files, Linux: the nice value (0–19) of the thread that checkpoints the
    /// write-ahead log in the background (see
    /// `realtime_store_sqlx::PoolConfig::checkpoint_nice`); 0 runs it at the server's own
    /// priority.
    #[arg(long, env = "SQLITE_CHECKPOINT_NICE", default_value_t = 19, value_parser = clap::value_parser!(u8).range(0..=19))]
    pub sqlite_checkpoint_nice: u8,
    /// Redis for running several nodes (`redis://127.0.0.1:6379`); without it, the
    /// in-memory broker (one node).
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,
    /// Prefix of the Redis channels and keys.
    #[arg(long, env = "REDIS_PREFIX", default_value = "realtime:")]
    pub redis_prefix: String,
    /// HS256 secret of the host's JWT issuer (at least 32 bytes). Without it and without
    /// `--jwt-public-key-file`, a public development secret is used, with a loud warning.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Verify RS256 tokens with this RSA public key (PEM) instead of HS256.
    #[arg(long, env = "JWT_PUBLIC_KEY_FILE")]
    pub jwt_public_key_file: Option<PathBuf>,
    /// With RS256, sign `auth/login` tokens with this RSA private key (PEM).
    #[arg(long, env = "JWT_PRIVATE_KEY_FILE")]
    pub jwt_private_key_file: Option<PathBuf>,
    /// Lifetime of tokens issued by `POST /api/v1/auth/login`, in seconds.
    #[arg(long, env = "TOKEN_TTL_SECS", default_value_t = 86_400)]
    pub token_ttl_secs: u64,
    /// Browser origins allowed for CORS and WebSocket upgrades, comma-separated; `*` or
    /// empty allows any.
    #[arg(long, env = "ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// Users allowed to publish system events (`POST /api/v1/events/system`), comma-separated.
    /// A token with the claim `"role": "admin"` is allowed too.
    #[arg(long, env = "ADMIN_USERS", value_delimiter = ',')]
    pub admin_users: Vec<String>,
    /// Largest WebSocket message a client may send, bytes.
    #[arg(long, env = "MAX_MESSAGE_BYTES", default_value_t = 64 * 1024)]
    pub max_message_bytes: usize,
    /// Largest chat message content, bytes.
    #[arg(long, env = "MAX_CONTENT_BYTES", default_value_t = 16 * 1024)]
    pub max_content_bytes: usize,
    /// WebSocket commands per second per connection.
    #[arg(long, env = "RATE_PER_SECOND", default_value_t = 20)]
    pub rate_per_second: u32,
    /// WebSocket command burst per connection.
    #[arg(long, env = "RATE_BURST", default_value_t = 40)]
    pub rate_burst: u32,
    /// Open WebSocket connections per user.
    #[arg(long, env = "MAX_CONNECTIONS_PER_USER", default_value_t = 32)]
    pub max_connections_per_user: usize,
    /// Frames queued per connection before it counts as a slow consumer.
    #[arg(long, env = "SESSION_QUEUE_FRAMES", default_value_t = 1024)]
    pub session_queue_frames: usize,
    /// Typing indicators stop by themselves after this many milliseconds.
    #[arg(long, env = "TYPING_TTL_MS", default_value_t = 5_000)]
    pub typing_ttl_ms: u64,
    /// A user with no connection left stays online this many milliseconds.
    #[arg(long, env = "PRESENCE_GRACE_MS", default_value_t = 5_000)]
    pub presence_grace_ms: u64,
    /// Subscribe every connection to the app-wide `presence` channel (seed 000's
    /// behaviour: every client gets every `user_status_change`). Costs one frame per
    /// connection per status change; with thousands of concurrent users set it to `false`
    /// and have the clients that show presence send `subscribe` for `presence`.
    #[arg(long, env = "AUTO_SUBSCRIBE_PRESENCE", default_value_t = true, action = clap::ArgAction::Set)]
    pub auto_subscribe_presence: bool,
    /// Rooms with at least this many members stop announcing joins and leaves to every
    /// member; only the user concerned is told.
    #[arg(long, env = "LARGE_ROOM_MEMBERS", default_value_t = 1000)]
    pub large_room_members: u64,
    /// Group-commit linger, microseconds (default 0: off). When at least
    /// `COMMIT_LINGER_AFTER` messages wait to be stored, wait up to this long for more so
    /// one transaction and one fan-out carry them all: less CPU per message, a few ms more
    /// latency. For servers whose CPU runs out first. At
    /// most 1,000,000 (1 s).
    #[arg(long, env = "COMMIT_LINGER_US", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub commit_linger_us: u64,
    /// Messages that must be waiting for `COMMIT_LINGER_US` to apply (at least 1).
    #[arg(long, env = "COMMIT_LINGER_AFTER", default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub commit_linger_after: u64,
    /// Event-loop passes a commit may wait for more messages (default 8; 0: off): before
    /// each commit the committer lets the runtime poll the sockets and run the readers
    /// with data, again while that added messages. No timer, so an idle server does not
    /// wait; a busy one stores and fans out more messages per transaction. At most 1,000.
    #[arg(long, env = "COMMIT_GATHER_PASSES", default_value_t = 8, value_parser = clap::value_parser!(u64).range(0..=1000))]
    pub commit_gather_passes: u64,
    /// Registrations (`POST /api/v1/users`) per client address per minute.
    #[arg(long, env = "REGISTRATIONS_PER_MINUTE", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub registrations_per_minute: u32,
    /// Login attempts (`POST /api/v1/auth/login`) per minute, per client address and per
    /// username.
    #[arg(long, env = "LOGINS_PER_MINUTE", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub logins_per_minute: u32,
    /// Most open connections (HTTP and WebSocket); by default the open-file limit (raised
    /// to its hard limit at start) less 128.
    #[arg(long, env = "MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Seconds a connection may take to send a request's headers, and may stay idle
    /// between two HTTP requests.
    #[arg(long, env = "HEADER_READ_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_read_timeout_secs: u64,
    /// Server WebSocket ping period, seconds.
    #[arg(long, env = "PING_INTERVAL_SECS", default_value_t = 25)]
    pub ping_interval_secs: u64,
    /// Close connections silent this long, seconds.
    #[arg(long, env = "IDLE_TIMEOUT_SECS", default_value_t = 60)]
    pub idle_timeout_secs: u64,
    /// A WebSocket write the client does not take in this many seconds drops the connection.
    #[arg(long, env = "WRITE_TIMEOUT_SECS", default_value_t = 10)]
    pub write_timeout_secs: u64,
    /// On shutdown, how long connections may drain, seconds.
    #[arg(long, env = "SHUTDOWN_DRAIN_SECS", default_value_t = 5)]
    pub shutdown_drain_secs: u64,
}

impl Config {
    /// Defaults for tests: an in-memory database, an ephemeral port, a fixed secret.
    pub fn for_tests() -> Config {
        let mut c = Config::parse_from(["chat-server"]);
        c.bind = "127.0.0.1:0".into();
        c.database_url = "sqlite::memory:".into();
        c.jwt_secret = Some("test-secret-test-secret-test-secret!!".into());
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wal_rewind_size_defaults_to_64_mib_and_is_settable() {
        assert_eq!(Config::for_tests().sqlite_wal_restart_mib, 64);
        let c = Config::parse_from(["chat-server", "--sqlite-wal-restart-mib", "256"]);
        assert_eq!(c.sqlite_wal_restart_mib, 256);
        assert!(Config::try_parse_from(["chat-server", "--sqlite-wal-restart-mib", "-1"]).is_err());
    }

    #[test]
    fn the_commit_linger_is_off_by_default_and_its_threshold_is_at_least_one() {
        let c = Config::for_tests();
        assert_eq!((c.commit_linger_us, c.commit_linger_after), (0, 4));
        let c = Config::parse_from([
            "chat-server",
            "--commit-linger-us",
            "1000",
            "--commit-linger-after",
            "8",
        ]);
        assert_eq!((c.commit_linger_us, c.commit_linger_after), (1000, 8));
        assert!(Config::try_parse_from(["chat-server", "--commit-linger-after", "0"]).is_err());
        assert!(Config::try_parse_from(["chat-server", "--commit-linger-us", "-5"]).is_err());
        assert!(Config::try_parse_from(["chat-server", "--commit-linger-us", "1000001"]).is_err());
    }

    #[test]
    fn the_commit_gather_passes_default_to_8_and_are_bounded() {
        assert_eq!(Config::for_tests().commit_gather_passes, 8);
        let c = Config::parse_from(["chat-server", "--commit-gather-passes", "0"]);
        assert_eq!(c.commit_gather_passes, 0);
        assert!(Config::try_parse_from(["chat-server", "--commit-gather-passes", "1001"]).is_err());
        assert!(Config::try_parse_from(["chat-server", "--commit-gather-passes", "-1"]).is_err());
    }

    #[test]
    fn the_checkpoint_nice_value_and_interval_have_defaults_and_bounds() {
        assert_eq!(Config::for_tests().sqlite_checkpoint_ms, 25);
        let c = Config::parse_from(["chat-server", "--sqlite-checkpoint-ms", "250"]);
        assert_eq!(c.sqlite_checkpoint_ms, 250);
        assert!(Config::try_parse_from(["chat-server", "--sqlite-checkpoint-ms", "0"]).is_err());
        assert!(
            Config::try_parse_from(["chat-server", "--sqlite-checkpoint-ms", "60001"]).is_err()
        );
        assert_eq!(Config::for_tests().sqlite_checkpoint_nice, 19);
        let c = Config::parse_from(["chat-server", "--sqlite-checkpoint-nice", "0"]);
        assert_eq!(c.sqlite_checkpoint_nice, 0);
        assert!(Config::try_parse_from(["chat-server", "--sqlite-checkpoint-nice", "20"]).is_err());
        assert!(Config::try_parse_from(["chat-server", "--sqlite-checkpoint-nice", "-1"]).is_err());
    }
}
