//! # booking-server
//!
//! Seed 003's real-time API for Laravel Echo on one port (6001 by default):
//!
//! | route | what |
//! |---|---|
//! | `GET /app/{key}?protocol=7` | Pusher protocol 7 WebSocket (pusher-js, Laravel Echo) |
//! | `POST /apps/{id}/events`, `/batch_events`, `GET /apps/{id}/channels…` | the signed Pusher HTTP API a Laravel backend triggers events with |
//! | `POST /api/broadcasting/auth` | the auth endpoint: Bearer JWT, form or JSON body ([`auth`]) |
//! | `POST /api/broadcasting/user-auth` | `pusher.signin()`'s endpoint for the token's user |
//! | `GET /ws?token=<JWT>` | the native WebSocket dialect, on the same Hub and channels |
//! | `GET /health` | `{"status", "connections"}` |
//!
//! The seed's channels: `availability`, `admin` and `staff` are public (the seed's client
//! code joins them with `echo.channel(...)`); `private-booking.{user_id}` is its user's
//! alone. With `REDIS_URL`, several nodes share events and presence members.

pub mod apps;
pub mod auth;
pub mod authorizer;
pub mod config;
pub mod state;

pub use config::Config;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, Method, header};
use axum::routing::{get, post};
use base64::Engine;
use realtime_core::{Hub, JwtAuthenticator, MemoryBroker, MemoryStore};
use realtime_core::{MemorySubscriptionCounts, SubscriptionCounts};
use realtime_pusher::{App, AppLimits, PusherAuthorizer, PusherServer, WebhookConfig};
use realtime_transport_ws::{WsConfig, WsServer};
use serde_json::json;
use state::{AppState, Shared};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// A configuration or startup error, with its reason.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The built server: its routes and its Hub.
pub struct Built {
    /// Every route of the server.
    pub router: Router,
    /// The Hub the Pusher and native dialects share.
    pub hub: Hub,
}

/// The Pusher app from the configuration.
///
/// # Errors
/// An invalid id, key or secret.
pub fn app(config: &Config) -> Result<App, BoxError> {
    let secret = match &config.app_secret {
        Some(s) => s.clone(),
        None => {
            tracing::warn!("******************************************************************");
            tracing::warn!("* No PUSHER_APP_SECRET set: using the PUBLIC development secret. *");
            tracing::warn!("* Anyone can sign channels and triggers. Set it before deploying. *");
            tracing::warn!("******************************************************************");
            config::DEV_APP_SECRET.to_owned()
        }
    };
    let limits = AppLimits {
        max_connections: config.max_connections,
        client_events_per_second: NonZeroU32::new(config.client_events_per_second)
            .unwrap_or(NonZeroU32::MIN),
        max_event_bytes: config.max_event_bytes,
        max_presence_members: config.max_presence_members,
        ..AppLimits::default()
    };
    let mut app = App::new(&config.app_id, &config.app_key, secret)?
        .limits(limits)
        .subscription_count(config.subscription_count);
    if let Some(url) = &config.webhook_url {
        if !url.starts_with("http://") {
            return Err(
                "PUSHER_WEBHOOK_URL must be an http:// URL (put a TLS proxy in front for https)"
                    .into(),
            );
        }
        app = app.webhooks(WebhookConfig::new(url));
    }
    Ok(app)
}

fn jwt(config: &Config) -> Result<JwtAuthenticator, BoxError> {
    let secret = match &config.jwt_secret {
        Some(s) if s.len() >= 32 => s.clone(),
        Some(_) => return Err("JWT_SECRET must be at least 32 bytes".into()),
        None => {
            tracing::warn!(
                "No JWT_SECRET set: the auth endpoint accepts tokens signed with the PUBLIC development secret."
            );
            config::DEV_JWT_SECRET.to_owned()
        }
    };
    Ok(JwtAuthenticator::hs256(secret.as_bytes()))
}

fn master_key(config: &Config) -> Result<Option<Vec<u8>>, BoxError> {
    let Some(b64) = &config.encryption_master_key_base64 else {
        return Ok(None);
    };
    let key = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| format!("PUSHER_ENCRYPTION_MASTER_KEY_BASE64 is not base64: {e}"))?;
    if key.len() != 32 {
        return Err(format!(
            "PUSHER_ENCRYPTION_MASTER_KEY_BASE64 must hold 32 bytes, not {}",
            key.len()
        )
        .into());
    }
    Ok(Some(key))
}

/// An app's Hub: on Redis under `prefix` when configured (with shared presence members
/// and subscription counts), else in memory.
async fn app_hub(
    config: &Config,
    authorizer: Arc<dyn realtime_core::ChannelAuthorizer>,
    prefix: &str,
) -> Result<
    (
        Hub,
        Option<realtime_broker_redis::RedisBroker>,
        Arc<dyn SubscriptionCounts>,
    ),
    BoxError,
> {
    let store = Arc::new(MemoryStore::new());
    let Some(url) = &config.redis_url else {
        let hub = Hub::builder(store, Arc::new(MemoryBroker::new()))
            .channel_authorizer(authorizer)
            .build();
        return Ok((hub, None, Arc::new(MemorySubscriptionCounts::new())));
    };
    let redis_config = realtime_broker_redis::RedisConfig {
        prefix: prefix.to_owned(),
        ..Default::default()
    };
    let broker = realtime_broker_redis::RedisBroker::connect(url, redis_config).await?;
    tracing::info!(
        node = broker.node_id(),
        prefix,
        "using Redis: events and presence members shared by every node"
    );
    let hub = Hub::builder(store, Arc::new(broker.clone()))
        .channel_presence(Arc::new(broker.channel_presence()))
        .channel_authorizer(authorizer)
        .build();
    let counts = Arc::new(broker.subscription_counts());
    Ok((hub, Some(broker), counts))
}

/// Build the Hub (on Redis when configured), the Pusher server, the auth endpoint and
/// the native WebSocket.
///
/// # Errors
/// A bad setting, or Redis unreachable.
pub async fn build(config: Config) -> Result<Built, BoxError> {
    let app = app(&config)?;
    let jwt = Arc::new(jwt(&config)?);
    let encryption_master_key = master_key(&config)?;
    let authorizer = Arc::new(authorizer::BookingAuthorizer::new(
        PusherAuthorizer::new(Arc::new(app.clone())),
        config.admin_users.clone(),
    ));
    let (hub, redis, counts) = app_hub(&config, authorizer, &config.redis_prefix).await?;
    let extra_apps = match &config.apps_file {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            apps::parse(&text)?
        }
        None => Vec::new(),
    };
    let origins: Vec<String> = config
        .allowed_origins
        .iter()
        .filter(|o| !o.is_empty())
        .cloned()
        .collect();
    let any_origin = origins.is_empty() || origins.iter().any(|o| o == "*");
    let allowed = (!any_origin).then(|| origins.clone());
    let ws_config = WsConfig {
        ping_interval: Duration::from_secs(config.ping_interval_secs.max(1)),
        rate_per_second: NonZeroU32::new(config.rate_per_second).unwrap_or(NonZeroU32::MIN),
        rate_burst: NonZeroU32::new(config.rate_burst).unwrap_or(NonZeroU32::MIN),
        read_buffer_bytes: config.read_buffer_bytes.max(64),
        ..WsConfig::default()
    };
    let mut builder = PusherServer::builder().app_on(app.clone(), hub.clone(), counts);
    for extra in extra_apps {
        let authorizer = Arc::new(PusherAuthorizer::new(Arc::new(extra.clone())));
        let prefix = format!("{}app:{}:", config.redis_prefix, extra.id);
        let (hub, _, counts) = app_hub(&config, authorizer, &prefix).await?;
        builder = builder.app_on(extra, hub, counts);
    }
    let pusher = builder
        .ws_config(ws_config)
        .allowed_origins(allowed.clone())
        .activity_timeout(config.activity_timeout_secs)
        .build()?;
    let native = WsServer::with_config(hub.clone(), jwt.clone(), WsConfig::default(), allowed);
    let state = AppState(Arc::new(Shared {
        hub: hub.clone(),
        app: Arc::new(app),
        jwt,
        encryption_master_key,
        pusher: pusher.clone(),
        redis,
    }));
    let api = Router::new()
        .route("/api/broadcasting/auth", post(auth::broadcasting_auth))
        .route("/api/broadcasting/user-auth", post(auth::user_auth))
        .route("/health", get(health))
        .layer(cors(&origins, any_origin))
        .with_state(state);
    let router = pusher
        .router()
        .route("/ws", realtime_transport_ws::axum::route(native))
        .merge(api);
    Ok(Built { router, hub })
}

/// `GET /health`: `{"status": "ok", "connections": <Pusher connections on this node>}`.
async fn health(State(st): State<AppState>) -> axum::Json<serde_json::Value> {
    let connections: usize = st
        .pusher
        .ws_servers()
        .map(|s| s.dialect().connections())
        .sum();
    let redis = st
        .redis
        .as_ref()
        .map(|r| if r.health().connected { "up" } else { "down" });
    axum::Json(json!({"status": "ok", "connections": connections, "redis": redis}))
}

/// CORS for the auth endpoint, which a browser calls from the Laravel app's origin.
fn cors(origins: &[String], any_origin: bool) -> CorsLayer {
    if any_origin {
        CorsLayer::new().allow_origin(AllowOrigin::any())
    } else {
        let list: Vec<HeaderValue> = origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        CorsLayer::new().allow_origin(list)
    }
    .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
    .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
}

/// Build and serve until Ctrl-C or SIGTERM, then tell clients to reconnect and drain.
///
/// # Errors
/// A bad setting, the address taken, Redis unreachable.
pub async fn serve(config: Config) -> Result<(), BoxError> {
    let bind = config.bind.clone();
    let drain = Duration::from_secs(config.shutdown_drain_secs);
    realtime_transport_ws::server::raise_open_file_limit();
    let built = build(config).await?;
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    tracing::info!(address = %listener.local_addr()?, "booking-server listening");
    let hub = built.hub.clone();
    let serve_config = realtime_transport_ws::server::ServeConfig::default();
    realtime_transport_ws::server::serve(listener, built.router, serve_config, async move {
        realtime_transport_ws::server::shutdown_signal().await;
        tracing::info!("shutting down: telling clients to reconnect, draining");
        hub.shutdown("server shutting down", drain).await;
    })
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn config(args: &[&str]) -> Config {
        Config::parse_from(std::iter::once("booking-server").chain(args.iter().copied()))
    }

    #[test]
    fn bad_settings_are_refused_with_their_reason() {
        let key32 = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert_eq!(
            master_key(&config(&["--encryption-master-key-base64", &key32]))
                .ok()
                .flatten()
                .map(|k| k.len()),
            Some(32)
        );
        let short = base64::engine::general_purpose::STANDARD.encode([7u8; 16]);
        let e =
            master_key(&config(&["--encryption-master-key-base64", &short])).expect_err("16 bytes");
        assert!(e.to_string().contains("32 bytes"), "{e}");
        assert!(master_key(&config(&["--encryption-master-key-base64", "not base64!"])).is_err());
        assert!(jwt(&config(&["--jwt-secret", "too-short"])).is_err());
        assert!(app(&config(&["--app-key", "bad key"])).is_err());
        let e = app(&config(&[
            "--app-secret",
            "s",
            "--webhook-url",
            "https://h/x",
        ]))
        .expect_err("https");
        assert!(e.to_string().contains("http://"), "{e}");
    }
}
