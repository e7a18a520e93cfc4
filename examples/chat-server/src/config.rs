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
    fn the_limits_against_hostile_clients_have_defaults_and_refuse_zero() {
        let c = Config::for_tests();
        assert_eq!(
            (
                c.registrations_per_minute,
                c.logins_per_minute,
                c.header_read_timeout_secs,
                c.max_connections
            ),
            (10, 20, 10, None)
        );
        for flag in [
            "--registrations-per-minute",
            "--logins-per-minute",
            "--header-read-timeout-secs",
        ] {
            assert!(
                Config::try_parse_from(["chat-server", flag, "0"]).is_err(),
                "{flag}"
            );
        }
        let c = Config::parse_from(["chat-server", "--max-connections", "500"]);
        assert_eq!(c.max_connections, Some(500));
    }

    #[test]
    fn tuning_that_needs_no_decision_is_not_a_flag() {
        for flag in [
            "--commit-linger-us",
            "--sqlite-checkpoint-ms",
            "--sqlite-wal-restart-mib",
        ] {
            assert!(
                Config::try_parse_from(["chat-server", flag, "1"]).is_err(),
                "{flag}"
            );
        }
    }
}
