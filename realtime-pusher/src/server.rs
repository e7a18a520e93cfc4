//! [`PusherServer`]: the apps, their WebSocket endpoint `/app/{key}` and their HTTP API
//! `/apps/{id}/…`, as one axum router.

use crate::api::{self, ApiState, AppHub};
use crate::app::App;
use crate::dialect::PusherDialect;
use crate::state::AppState;
use crate::webhooks::Webhooks;
use axum::Router;
use axum::extract::{Path, Request};
use axum::response::Response;
use axum::routing::{get, post};
use realtime_core::{
    Authenticator, Error, Hub, Identity, MemorySubscriptionCounts, SubscriptionCounts,
};
use realtime_transport_ws::{WsConfig, WsServer};
use std::sync::Arc;

/// Pusher connections carry no token at the upgrade: they authenticate per channel.
struct NoToken;

#[async_trait::async_trait]
impl Authenticator for NoToken {
    async fn authenticate(&self, _token: &str) -> realtime_core::Result<Identity> {
        Err(Error::Unauthenticated(
            "Pusher connections take no token; private channels are authorized per subscription"
                .into(),
        ))
    }
}

/// Builds a [`PusherServer`]: [`PusherServer::builder`].
pub struct PusherBuilder {
    apps: Vec<(App, Hub, Arc<dyn SubscriptionCounts>)>,
    config: WsConfig,
    origins: Option<Vec<String>>,
    activity_timeout: u32,
}

impl PusherBuilder {
    /// Serve `app` on `hub`. Give each app its own Hub (channel names are per app); build
    /// that Hub with the app's [`PusherAuthorizer`](crate::PusherAuthorizer) so its
    /// private and presence channels can be joined.
    pub fn app(self, app: App, hub: Hub) -> Self {
        self.app_on(app, hub, Arc::new(MemorySubscriptionCounts::new()))
    }

    /// [`PusherBuilder::app`] with subscription counts shared by the nodes
    /// (`realtime_broker_redis::RedisBroker::subscription_counts`), so that
    /// `channel_occupied` / `channel_vacated`, `subscription_count` and the user online
    /// hook count every node's connections.
    pub fn app_on(mut self, app: App, hub: Hub, counts: Arc<dyn SubscriptionCounts>) -> Self {
        self.apps.push((app, hub, counts));
        self
    }

    /// WebSocket settings (default [`WsConfig::default`], whose `ping_interval` paces the
    /// server's `pusher:ping`).
    pub fn ws_config(mut self, config: WsConfig) -> Self {
        self.config = config;
        self
    }

    /// Browser `Origin`s allowed to connect (default: any).
    pub fn allowed_origins(mut self, origins: Option<Vec<String>>) -> Self {
        self.origins = origins;
        self
    }

    /// The `activity_timeout` told to clients, in seconds (default 120, as Pusher): a
    /// client pings after that long without a message.
    pub fn activity_timeout(mut self, secs: u32) -> Self {
        self.activity_timeout = secs;
        self
    }

    /// The server. Registers the Pusher encoder with each app's Hub and, on the current
    /// tokio runtime, starts each app's webhook sender and control channel listener
    /// (call it inside the runtime).
    ///
    /// # Errors
    /// [`Error::Invalid`] when no app was given, or two apps share an id or a key.
    pub fn build(self) -> Result<PusherServer, Error> {
        if self.apps.is_empty() {
            return Err(Error::invalid("apps", "give at least one Pusher app"));
        }
        let mut apps: Vec<AppServer> = Vec::with_capacity(self.apps.len());
        for (app, hub, counts) in self.apps {
            if apps
                .iter()
                .any(|a| a.app.id == app.id || a.app.key == app.key)
            {
                return Err(Error::invalid(
                    "apps",
                    format!("two apps share the id {} or the key {}", app.id, app.key),
                ));
            }
            let app = Arc::new(app);
            let webhooks = match (&app.webhooks, tokio::runtime::Handle::try_current()) {
                (Some(config), Ok(_)) => Some(Webhooks::start(app.clone(), config.clone())),
                (Some(_), Err(_)) => {
                    return Err(Error::invalid(
                        "webhooks",
                        "build the Pusher server inside a tokio runtime to send webhooks",
                    ));
                }
                (None, _) => None,
            };
            let state = Arc::new(AppState::new(
                app.clone(),
                self.activity_timeout,
                counts,
                webhooks,
            ));
            let dialect = PusherDialect::new(state.clone(), hub.clone());
            let ws = WsServer::with_dialect(
                dialect,
                hub,
                Arc::new(NoToken),
                self.config.clone(),
                self.origins.clone(),
            );
            apps.push(AppServer { app, state, ws });
        }
        Ok(PusherServer { apps: apps.into() })
    }
}

struct AppServer {
    app: Arc<App>,
    state: Arc<AppState>,
    ws: WsServer<PusherDialect>,
}

/// One or more Pusher apps on their Hubs: the WebSocket endpoint and the HTTP API.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use realtime_core::Hub;
/// use realtime_pusher::{App, PusherAuthorizer, PusherServer};
/// use std::sync::Arc;
///
/// let app = App::new("app-id", "app-key", "app-secret")?;
/// let hub = Hub::builder(Arc::new(realtime_core::MemoryStore::new()), Arc::new(realtime_core::MemoryBroker::new()))
///     .channel_authorizer(Arc::new(PusherAuthorizer::new(Arc::new(app.clone()))))
///     .build();
/// let pusher = PusherServer::builder().app(app, hub).build()?;
/// let router: axum::Router = pusher.router();
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:6001").await?;
/// axum::serve(listener, router).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PusherServer {
    apps: Arc<[AppServer]>,
}

impl std::fmt::Debug for PusherServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let apps: Vec<&App> = self.apps.iter().map(|a| a.app.as_ref()).collect();
        f.debug_struct("PusherServer").field("apps", &apps).finish()
    }
}

impl PusherServer {
    /// Start building: at least one [`PusherBuilder::app`].
    pub fn builder() -> PusherBuilder {
        PusherBuilder {
            apps: Vec::new(),
            config: WsConfig::default(),
            origins: None,
            activity_timeout: 120,
        }
    }

    /// The app with this key and its Hub.
    pub fn app_by_key(&self, key: &str) -> Option<(&Arc<App>, &Hub)> {
        self.apps
            .iter()
            .find(|a| a.app.key == key)
            .map(|a| (&a.app, a.ws.hub()))
    }

    /// The app with this id and its Hub.
    pub fn app_by_id(&self, id: &str) -> Option<(&Arc<App>, &Hub)> {
        self.apps
            .iter()
            .find(|a| a.app.id == id)
            .map(|a| (&a.app, a.ws.hub()))
    }

    /// The WebSocket servers of the apps, in the order given.
    pub fn ws_servers(&self) -> impl Iterator<Item = &WsServer<PusherDialect>> {
        self.apps.iter().map(|a| &a.ws)
    }

    /// The routes: `GET /app/{key}` (WebSocket; an unknown key is closed with 4001 after
    /// the upgrade, as pusher-js expects) and the HTTP API under `/apps/{id}/`
    /// ([`crate::api`]). Merge it into your router at the root.
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        let ws = self.clone();
        let state = ApiState {
            apps: self
                .apps
                .iter()
                .map(|a| AppHub {
                    app: a.app.clone(),
                    hub: a.ws.hub().clone(),
                    state: a.state.clone(),
                })
                .collect(),
        };
        let api = Router::new()
            .route("/apps/{app_id}/events", post(api::events))
            .route("/apps/{app_id}/batch_events", post(api::batch_events))
            .route("/apps/{app_id}/channels", get(api::channels))
            .route("/apps/{app_id}/channels/{channel}", get(api::channel))
            .route("/apps/{app_id}/channels/{channel}/users", get(api::users))
            .route(
                "/apps/{app_id}/users/{user_id}/terminate_connections",
                post(api::terminate_connections),
            )
            .with_state(state);
        Router::new()
            .route(
                "/app/{key}",
                get(move |Path(key): Path<String>, req: Request| {
                    let ws = ws.clone();
                    async move { ws.upgrade(&key, req).await }
                }),
            )
            .merge(api)
    }

    /// Upgrade `req` on the server of the app with `key`; an unknown key goes to the first
    /// app's server, whose dialect closes it with 4001.
    async fn upgrade(&self, key: &str, req: Request) -> Response {
        let server = self
            .apps
            .iter()
            .find(|a| a.app.key == key)
            .unwrap_or(&self.apps[0])
            .ws
            .clone();
        realtime_transport_ws::axum::upgrade(server, req).await
    }
}
