//! What one app's connections share on this node: connection count, subscription counts,
//! webhooks, signed-in users' sessions, the cache channels' last events, and the control
//! channel that carries `terminate_connections` to every node.

use crate::app::App;
use crate::encoder::PusherEncoder;
use crate::webhooks::{WebhookEvent, Webhooks};
use bytes::Bytes;
use realtime_core::{
    Channel, CloseReason, ConnectOptions, Encoder, Event, EventType, Hub, Outbound,
    PublishObserver, SessionId, SubscriptionCounts,
};
use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The channel that carries `terminate_connections` to every node. Reserved: clients
/// cannot subscribe to it nor trigger on it.
pub const CONTROL_CHANNEL: &str = "private-realtime-pusher-control";

/// How long a cache channel keeps its last event (Pusher's 30 minutes).
pub const CACHE_TTL: Duration = Duration::from_secs(30 * 60);

/// Most cache channels remembered per app on one node.
pub const CACHE_CHANNELS: usize = 10_000;

/// Whether `name` is a cache channel (`cache-`, `private-cache-`, `presence-cache-`,
/// `private-encrypted-cache-`).
pub fn is_cache_channel(name: &str) -> bool {
    [
        "cache-",
        "private-cache-",
        "presence-cache-",
        "private-encrypted-cache-",
    ]
    .iter()
    .any(|p| name.starts_with(p))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One app's shared state on this node.
pub(crate) struct AppState {
    pub(crate) app: Arc<App>,
    pub(crate) activity_timeout: u32,
    pub(crate) connections: AtomicUsize,
    pub(crate) counts: Arc<dyn SubscriptionCounts>,
    pub(crate) webhooks: Option<Webhooks>,
    /// Signed-in users' sessions on this node.
    users: Mutex<HashMap<Arc<str>, Vec<SessionId>>>,
    /// The last event frame of each cache channel seen on this node, and when.
    cache: Mutex<HashMap<Channel, (Instant, Bytes)>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("app", &self.app)
            .finish_non_exhaustive()
    }
}

impl AppState {
    pub(crate) fn new(
        app: Arc<App>,
        activity_timeout: u32,
        counts: Arc<dyn SubscriptionCounts>,
        webhooks: Option<Webhooks>,
    ) -> AppState {
        AppState {
            app,
            activity_timeout,
            connections: AtomicUsize::new(0),
            counts,
            webhooks,
            users: Mutex::new(HashMap::new()),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Queue the webhook event `make` builds, when the app has webhooks (otherwise nothing
    /// is built: client events and subscriptions pay for no strings they would not send).
    pub(crate) fn webhook(&self, make: impl FnOnce() -> WebhookEvent) {
        if let Some(w) = &self.webhooks {
            w.send(make());
        }
    }

    /// Remember `frame` as `channel`'s last event.
    pub(crate) fn cache_event(&self, channel: &Channel, frame: Bytes) {
        let mut cache = lock(&self.cache);
        if cache.len() >= CACHE_CHANNELS && !cache.contains_key(channel) {
            let now = Instant::now();
            cache.retain(|_, (at, _)| now.duration_since(*at) < CACHE_TTL);
            if cache.len() >= CACHE_CHANNELS {
                // Still full of live entries: forget one to make room.
                if let Some(k) = cache.keys().next().cloned() {
                    cache.remove(&k);
                }
            }
        }
        cache.insert(channel.clone(), (Instant::now(), frame));
    }

    /// `channel`'s last event, if one came within [`CACHE_TTL`].
    pub(crate) fn cached(&self, channel: &Channel) -> Option<Bytes> {
        let cache = lock(&self.cache);
        let (at, frame) = cache.get(channel)?;
        (at.elapsed() < CACHE_TTL).then(|| frame.clone())
    }

    pub(crate) fn sign_in(&self, user: &Arc<str>, session: SessionId) {
        lock(&self.users)
            .entry(user.clone())
            .or_default()
            .push(session);
    }

    pub(crate) fn sign_out(&self, user: &Arc<str>, session: SessionId) {
        let mut users = lock(&self.users);
        if let Some(list) = users.get_mut(user) {
            list.retain(|s| *s != session);
            if list.is_empty() {
                users.remove(user);
            }
        }
    }

    /// This node's sessions of signed-in user `user`.
    pub(crate) fn sessions_of(&self, user: &str) -> Vec<SessionId> {
        lock(&self.users).get(user).cloned().unwrap_or_default()
    }
}

/// Sees the Hub's publications for webhooks (`member_added`, `member_removed`, once
/// across nodes: the node where the change happened publishes it) and for the cache
/// channels' last events.
pub(crate) struct Observer(pub(crate) Arc<AppState>);

impl PublishObserver for Observer {
    fn published(&self, event: &Arc<Event>, channels: &[Channel]) {
        let t = &event.event_type;
        if *t == EventType::CHANNEL_MEMBER_ADD || *t == EventType::CHANNEL_MEMBER_REMOVE {
            if self.0.webhooks.is_none() {
                return;
            }
            let Some(user_id) = event.data.get("user_id").and_then(|v| v.as_str()) else {
                return;
            };
            for c in channels {
                let (channel, user_id) = (c.to_string(), user_id.to_owned());
                self.0.webhook(|| {
                    if *t == EventType::CHANNEL_MEMBER_ADD {
                        WebhookEvent::MemberAdded { channel, user_id }
                    } else {
                        WebhookEvent::MemberRemoved { channel, user_id }
                    }
                });
            }
        } else if *t == EventType::APP {
            for c in channels {
                if let Channel::Named(n) = c
                    && is_cache_channel(n)
                    && let Some(frame) = PusherEncoder::default().encode(c, event)
                {
                    self.0.cache_event(c, frame);
                }
            }
        }
    }
}

/// The control channel.
pub(crate) fn control_channel() -> Channel {
    Channel::Named(CONTROL_CHANNEL.into())
}

/// Ask every node to close signed-in user `user_id`'s connections (4009).
///
/// # Errors
/// The Hub's publish errors.
pub(crate) async fn terminate(hub: &Hub, user_id: &str) -> realtime_core::Result<()> {
    let ev = Event::app("terminate", serde_json::json!({ "user_id": user_id }))?;
    hub.publish(&[control_channel()], ev).await
}

/// This node's listener on the control channel: closes the local connections of users
/// whose termination any node asked for. Ends with the Hub.
pub(crate) async fn control_loop(hub: Hub, state: Arc<AppState>) {
    let mut session = match hub.connect(ConnectOptions::anonymous()).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "Pusher control channel unavailable: terminate_connections acts on this node only");
            return;
        }
    };
    if let Err(e) = hub
        .subscribe_trusted(session.id(), &control_channel())
        .await
    {
        tracing::warn!(error = %e, "Pusher control channel unavailable");
        return;
    }
    while let Some(out) = session.recv().await {
        let Outbound::Frame(bytes) = out else {
            continue;
        };
        let Ok(ev) = Event::from_json_bytes(&bytes) else {
            continue;
        };
        if ev.name.as_deref() != Some("terminate") {
            continue;
        }
        let Some(user) = ev.data.get("user_id").and_then(|v| v.as_str()) else {
            continue;
        };
        for id in state.sessions_of(user) {
            hub.kick(id, CloseReason::Kicked("terminated by the server".into()))
                .await;
        }
    }
}
