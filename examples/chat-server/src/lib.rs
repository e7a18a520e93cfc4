//! # chat-server
//!
//! The realtime reference chat server: seed 000's REST API under `/api/v1`, a WebSocket at
//! `/ws` speaking the native dialect (see `realtime_transport_ws::native`), and health
//! endpoints, built only from the realtime crates. `main.rs` parses [`Config`] and calls
//! [`serve`]; tests call [`build`] and serve the router on an ephemeral port.

pub mod api;
pub mod config;
pub mod error;
pub mod guard;
pub mod prometheus;
pub mod state;
pub mod web;

pub use config::Config;

use axum::Router;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::routing::{get, post};
use realtime_core::{
    Error, Hub, HubConfig, JwtAuthenticator, Limits, MemoryBroker, PresenceConfig, TypingConfig,
};
use realtime_transport_ws::server::ServeConfig;
use realtime_transport_ws::{WsConfig, WsServer};
use state::{AppState, Shared};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// A built server: the router and the engine behind it.
pub struct App {
    /// Serve this.
    pub router: Router,
    /// The engine (for shutdown, or for tests).
    pub hub: Hub,
}

fn authenticator(config: &Config) -> Result<JwtAuthenticator, Error> {
    if let Some(path) = &config.jwt_public_key_file {
        let pem = std::fs::read(path).map_err(|e| Error::Invalid {
            field: "jwt_public_key_file",
            reason: e.to_string().into(),
        })?;
        let mut auth = JwtAuthenticator::rs256_pem(&pem)?;
        if let Some(p) = &config.jwt_private_key_file {
            let pem = std::fs::read(p).map_err(|e| Error::Invalid {
                field: "jwt_private_key_file",
                reason: e.to_string().into(),
            })?;
            auth = auth.with_rs256_signing_pem(&pem)?;
        }
        return Ok(auth);
    }
    let secret = match &config.jwt_secret {
        Some(s) if s.len() >= 32 => s.clone(),
        Some(_) => {
            return Err(Error::Invalid {
                field: "jwt_secret",
                reason: "must be at least 32 bytes".into(),
            });
        }
        None => {
            tracing::warn!("**************************************************************");
            tracing::warn!("* No JWT_SECRET set: using the PUBLIC development secret.     *");
            tracing::warn!("* Anyone can forge tokens. Set JWT_SECRET before deploying.   *");
            tracing::warn!("**************************************************************");
            config::DEV_JWT_SECRET.to_owned()
        }
    };
    Ok(JwtAuthenticator::hs256(secret.as_bytes()))
}

/// Connect the store, build the Hub, the WebSocket server and the router.
///
/// # Errors
/// A bad database URL or JWT setting ([`Error::Invalid`]), an unreachable database
/// ([`Error::Store`]).
pub async fn build(config: Config) -> Result<App, Error> {
    let auth = Arc::new(authenticator(&config)?);
    let store = realtime_store_sqlx::connect(&config.database_url).await?;
    let hub_config = hub_config(&config);
    let (hub, redis) = match &config.redis_url {
        Some(url) => {
            let redis_config = realtime_broker_redis::RedisConfig {
                prefix: config.redis_prefix.clone(),
                ..Default::default()
            };
            let broker = realtime_broker_redis::RedisBroker::connect(url, redis_config).await?;
            tracing::info!(
                node = broker.node_id(),
                "using Redis for cross-node delivery and presence"
            );
            let hub = Hub::builder(store, Arc::new(broker.clone()))
                .cluster_presence(Arc::new(broker.presence()))
                .channel_presence(Arc::new(broker.channel_presence()))
                .config(hub_config)
                .build();
            (hub, Some(broker))
        }
        None => (
            Hub::builder(store, Arc::new(MemoryBroker::new()))
                .config(hub_config)
                .build(),
            None,
        ),
    };
    let origins: Vec<String> = config
        .allowed_origins
        .iter()
        .filter(|o| !o.is_empty())
        .cloned()
        .collect();
    let any_origin = origins.is_empty() || origins.iter().any(|o| o == "*");
    let ws_config = ws_config(&config);
    let ws = WsServer::with_config(
        hub.clone(),
        auth.clone(),
        ws_config,
        (!any_origin).then(|| origins.clone()),
    );
    let prometheus = prometheus::handle();
    let cors = cors(&origins, any_origin);

    let guard = guard::Guard::new(config.registrations_per_minute, config.logins_per_minute);
    let state = AppState(Arc::new(Shared {
        hub: hub.clone(),
        auth,
        config,
        redis,
        guard,
        ws: ws.clone(),
        prometheus,
    }));
    // Rate-limit keys whose buckets are full again are forgotten once a minute.
    let weak = Arc::downgrade(&state.0);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        loop {
            every.tick().await;
            match weak.upgrade() {
                Some(s) => s.guard.forget_idle(),
                None => break,
            }
        }
    });
    let router = Router::new()
        .nest("/api/v1", api_v1())
        .route("/", get(web::index))
        .route("/app.js", get(web::app_js))
        .route("/app.css", get(web::app_css))
        .route("/realtime-client.js", get(web::client_js))
        .route("/health", get(api::health))
        .route("/health/ready", get(api::ready))
        .route("/health/live", get(api::live))
        .route("/metrics", get(prometheus::metrics))
        .route("/ws", realtime_transport_ws::axum::route(ws))
        .fallback(|| async {
            error::ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
        })
        .layer(cors)
        .with_state(state);
    Ok(App { router, hub })
}

/// The Hub's settings from the server's configuration.
fn hub_config(config: &Config) -> HubConfig {
    HubConfig {
        limits: Limits {
            max_content_bytes: config.max_content_bytes,
            ..Limits::default()
        },
        presence: PresenceConfig {
            grace: Duration::from_millis(config.presence_grace_ms),
        },
        typing: TypingConfig {
            ttl: Duration::from_millis(config.typing_ttl_ms),
        },
        max_sessions_per_user: config.max_connections_per_user,
        session_queue_frames: config.session_queue_frames,
        auto_subscribe_presence: config.auto_subscribe_presence,
        large_room_members: config.large_room_members,
        ..HubConfig::default()
    }
}

/// The WebSocket settings from the server's configuration.
fn ws_config(config: &Config) -> WsConfig {
    WsConfig {
        max_message_bytes: config.max_message_bytes,
        max_frame_bytes: config.max_message_bytes,
        rate_per_second: NonZeroU32::new(config.rate_per_second).unwrap_or(NonZeroU32::MIN),
        rate_burst: NonZeroU32::new(config.rate_burst).unwrap_or(NonZeroU32::MIN),
        ping_interval: Duration::from_secs(config.ping_interval_secs.max(1)),
        idle_timeout: Duration::from_secs(config.idle_timeout_secs.max(1)),
        write_timeout: Duration::from_secs(config.write_timeout_secs.max(1)),
        ..WsConfig::default()
    }
}

/// CORS for the REST API: `origins`, or any origin.
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
    .allow_methods([
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::OPTIONS,
    ])
    .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
}

/// The REST API's routes (seed 000), under `/api/v1`.
fn api_v1() -> Router<AppState> {
    Router::new()
        .route("/users", post(api::create_user).get(api::list_users))
        .route(
            "/users/{id}",
            get(api::get_user)
                .put(api::update_user)
                .delete(api::delete_user),
        )
        .route("/auth/login", post(api::login))
        .route("/rooms", post(api::create_room).get(api::list_rooms))
        .route(
            "/rooms/{id}",
            get(api::get_room)
                .put(api::update_room)
                .delete(api::delete_room),
        )
        .route("/rooms/{id}/join", post(api::join_room))
        .route("/rooms/{id}/leave", post(api::leave_room))
        .route(
            "/rooms/{id}/members",
            get(api::list_members).post(api::add_member),
        )
        .route(
            "/rooms/{id}/members/{user_id}",
            axum::routing::delete(api::remove_member),
        )
        .route("/rooms/{id}/invites", post(api::create_invite))
        .route("/rooms/invites/{code}/accept", post(api::accept_invite))
        .route("/rooms/invites/{code}/reject", post(api::reject_invite))
        .route("/rooms/{id}/messages", get(api::room_messages))
        .route("/rooms/{id}/typing/start", post(api::typing_start))
        .route("/rooms/{id}/typing/stop", post(api::typing_stop))
        .route("/messages", post(api::send_message))
        .route(
            "/messages/{id}",
            get(api::get_message)
                .put(api::edit_message)
                .delete(api::delete_message),
        )
        .route(
            "/messages/{id}/reactions",
            post(api::add_reaction).delete(api::remove_reaction),
        )
        .route("/messages/{id}/read", post(api::read_message))
        .route("/events/metrics", get(api::metrics))
        .route("/events/system", post(api::system_event))
        .route("/events/history", get(api::event_history))
}

/// The HTTP server settings of `config` ([`realtime_transport_ws::server`]).
pub fn serve_config(config: &Config) -> ServeConfig {
    ServeConfig {
        header_read_timeout: Duration::from_secs(config.header_read_timeout_secs),
        max_connections: config.max_connections,
        ..ServeConfig::default()
    }
}

/// Build and serve until Ctrl-C or SIGTERM; then announce `event.system.shutdown`, close
/// every WebSocket (4002) after the drain time, and stop. Served by
/// [`realtime_transport_ws::server::serve`]: header-read timeout, connection cap (the
/// open-file limit is raised to its hard limit first), `TCP_NODELAY`.
///
/// # Errors
/// As [`build`], or when the address cannot be bound.
pub async fn serve(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let bind = config.bind.clone();
    let drain = Duration::from_secs(config.shutdown_drain_secs);
    let serve_config = serve_config(&config);
    let files = realtime_transport_ws::server::raise_open_file_limit();
    let app = build(config).await?;
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    tracing::info!(address = %listener.local_addr()?, open_files = ?files, "chat-server listening");
    let hub = app.hub.clone();
    realtime_transport_ws::server::serve(listener, app.router, serve_config, async move {
        realtime_transport_ws::server::shutdown_signal().await;
        tracing::info!("shutting down: telling clients, draining");
        hub.shutdown("server shutting down", drain).await;
    })
    .await?;
    Ok(())
}
