//! What the handlers share.

use realtime_core::{Hub, JwtAuthenticator};
use realtime_pusher::App;
use std::sync::Arc;

/// The server's shared state (cheap to clone).
#[derive(Clone)]
pub struct AppState(pub Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] holds.
pub struct Shared {
    /// The Hub every dialect of this server is on.
    pub hub: Hub,
    /// The Pusher app.
    pub app: Arc<App>,
    /// Checks the auth endpoint's and `/ws`'s bearer tokens.
    pub jwt: Arc<JwtAuthenticator>,
    /// The decoded `PUSHER_ENCRYPTION_MASTER_KEY_BASE64`.
    pub encryption_master_key: Option<Vec<u8>>,
    /// The Pusher server (its connection counts, for `/health`).
    pub pusher: realtime_pusher::PusherServer,
    /// The Redis broker, when running several nodes.
    pub redis: Option<realtime_broker_redis::RedisBroker>,
}
