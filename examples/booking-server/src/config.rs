//! Command-line flags, each with the environment variable of the same meaning (clap). The
//! Pusher credentials use seed 003's names: `PUSHER_APP_ID`, `PUSHER_APP_KEY`,
//! `PUSHER_APP_SECRET`.

use clap::Parser;

/// The well-known development JWT secret (the same as chat-server's), used when no
/// `JWT_SECRET` is given. Anyone can sign tokens with it.
pub const DEV_JWT_SECRET: &str = "realtime-dev-secret-change-me-0123456789";

/// The development Pusher secret used when no `PUSHER_APP_SECRET` is given.
pub const DEV_APP_SECRET: &str = "app-secret";

/// booking-server: seed 003's real-time events for Laravel Echo (Pusher protocol 7).
#[derive(Debug, Clone, Parser)]
#[command(name = "booking-server", version, about)]
pub struct Config {
    /// Where to listen: WebSocket (`/app/{key}`), the Pusher HTTP API (`/apps/{id}/…`),
    /// the auth endpoint and the native WebSocket (`/ws`) share it.
    #[arg(long, env = "BIND", default_value = "0.0.0.0:6001")]
    pub bind: String,
    /// The Pusher app id (the HTTP API's `/apps/{id}/`).
    #[arg(long, env = "PUSHER_APP_ID", default_value = "app-id")]
    pub app_id: String,
    /// The Pusher app key clients connect with.
    #[arg(long, env = "PUSHER_APP_KEY", default_value = "app-key")]
    pub app_key: String,
    /// The Pusher app secret. Without it a public development secret is used, with a
    /// loud warning.
    #[arg(long, env = "PUSHER_APP_SECRET", hide_env_values = true)]
    pub app_secret: Option<String>,
    /// A JSON file of more apps beside this one, each on a Hub of its own
    /// (`booking_server::apps` documents the format).
    #[arg(long, env = "PUSHER_APPS_FILE")]
    pub apps_file: Option<std::path::PathBuf>,
    /// The 32-byte key, base64, from which `private-encrypted-…` channels' shared secrets
    /// are derived; without it such channels are refused by the auth endpoint.
    #[arg(
        long,
        env = "PUSHER_ENCRYPTION_MASTER_KEY_BASE64",
        hide_env_values = true
    )]
    pub encryption_master_key_base64: Option<String>,
    /// HS256 secret of the JWTs the auth endpoint and `/ws` accept (at least 32 bytes).
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Users (JWT `sub`) who may publish any event on any channel from the native
    /// WebSocket (`{"type":"publish"}`), comma-separated; others publish client events only.
    #[arg(long, env = "ADMIN_USERS", value_delimiter = ',')]
    pub admin_users: Vec<String>,
    /// Redis for running several nodes (`redis://127.0.0.1:6379`): events and presence
    /// members are shared by every node on it.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,
    /// Prefix of the Redis channels and keys.
    #[arg(long, env = "REDIS_PREFIX", default_value = "booking:")]
    pub redis_prefix: String,
    /// Browser origins allowed to connect and to call the auth endpoint, comma-separated;
    /// empty or `*` allows any.
    #[arg(long, env = "ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// The `activity_timeout` told to clients, seconds.
    #[arg(long, env = "ACTIVITY_TIMEOUT_SECS", default_value_t = 120)]
    pub activity_timeout_secs: u32,
    /// Open connections of the app on this node; past it, 4004.
    #[arg(long, env = "MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Client events per connection per second; past it, `pusher:error` 4301.
    #[arg(long, env = "CLIENT_EVENTS_PER_SECOND", default_value_t = 10)]
    pub client_events_per_second: u32,
    /// Largest event `data`, bytes.
    #[arg(long, env = "MAX_EVENT_BYTES", default_value_t = 10 * 1024)]
    pub max_event_bytes: usize,
    /// Members of one presence channel.
    #[arg(long, env = "MAX_PRESENCE_MEMBERS", default_value_t = 100)]
    pub max_presence_members: usize,
    /// Where the app's webhooks go (an `http://` URL): channel_occupied, channel_vacated,
    /// member_added, member_removed, client_event, user_online, user_offline; signed with
    /// `X-Pusher-Key` and `X-Pusher-Signature`.
    #[arg(long, env = "PUSHER_WEBHOOK_URL")]
    pub webhook_url: Option<String>,
    /// Send `pusher_internal:subscription_count` to subscribers when a channel's
    /// subscription count changes.
    #[arg(long, env = "SUBSCRIPTION_COUNT", default_value_t = false, action = clap::ArgAction::Set)]
    pub subscription_count: bool,
    /// Frames per second one connection may send, sustained (client events have their own
    /// limit too).
    #[arg(long, env = "RATE_PER_SECOND", default_value_t = 20)]
    pub rate_per_second: u32,
    /// Frames one connection may send in a burst.
    #[arg(long, env = "RATE_BURST", default_value_t = 40)]
    pub rate_burst: u32,
    /// Initial read buffer per connection, bytes; larger frames are still read whole.
    /// Pusher clients send small frames (pings, subscriptions, client events): 256 bytes
    /// instead of the transport's 1 KiB saves ~0.8 KiB per idle connection
    /// (`benches/run-pusher.sh` W3, BENCHMARKS.md).
    #[arg(long, env = "READ_BUFFER_BYTES", default_value_t = 256)]
    pub read_buffer_bytes: usize,
    /// Runtime worker threads: 1 runs a single-threaded runtime; 0 (default) one per core.
    #[arg(long, env = "WORKER_THREADS", default_value_t = 0)]
    pub worker_threads: usize,
    /// Server heartbeat (`pusher:ping`) period, seconds.
    #[arg(long, env = "PING_INTERVAL_SECS", default_value_t = 25)]
    pub ping_interval_secs: u64,
    /// Seconds given to connections to close on shutdown.
    #[arg(long, env = "SHUTDOWN_DRAIN_SECS", default_value_t = 5)]
    pub shutdown_drain_secs: u64,
}
