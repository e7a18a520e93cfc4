//! Shared state and the bearer-token extractor.

use crate::config::Config;
use crate::error::ApiError;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use realtime_core::{Error, Hub, Identity, JwtAuthenticator};
use std::net::{IpAddr, SocketAddr};
use std::ops::Deref;
use std::sync::Arc;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState(pub Arc<Shared>);

/// The shared parts.
pub struct Shared {
    /// The engine.
    pub hub: Hub,
    /// Verifies (and for HS256 issues) tokens.
    pub auth: Arc<JwtAuthenticator>,
    /// Settings.
    pub config: Config,
    /// The Redis broker, when running several nodes (for readiness).
    pub redis: Option<realtime_broker_redis::RedisBroker>,
    /// Registration and login rate limits, and the password hashing pool.
    pub guard: crate::guard::Guard,
    /// The WebSocket server (for its connection count).
    pub ws: realtime_transport_ws::WsServer,
    /// Renders `/metrics`; `None` when another metrics recorder was installed first.
    pub prometheus: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl Shared {
    /// Whether `who` may publish system events.
    pub fn is_admin(&self, who: &Identity) -> bool {
        self.config.admin_users.contains(&who.user_id)
            || who.claims.get("role").and_then(|r| r.as_str()) == Some("admin")
    }
}

/// The client's address: the TCP peer, from the [`ConnectInfo`] that
/// [`realtime_transport_ws::server::serve`] puts in every request; the unspecified address
/// when the router is served without it (then all clients share one rate-limit budget).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

impl<S: Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip()),
        ))
    }
}

/// The caller, from `Authorization: Bearer <JWT>`. A valid token is enough: a user seen
/// for the first time is created from its claims.
#[derive(Debug, Clone)]
pub struct AuthUser(pub Identity);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let h = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let token = realtime_transport_ws::WsServer::token_from(None, h).ok_or_else(|| {
            Error::Unauthenticated("missing Authorization: Bearer <token>".into())
        })?;
        let identity = state.auth.verify(&token)?;
        state.hub.ensure_user(&identity).await?;
        Ok(AuthUser(identity))
    }
}
