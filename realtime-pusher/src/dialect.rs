//! [`PusherDialect`]: Pusher Channels protocol 7 over the WebSocket driver of
//! `realtime-transport-ws`, one app per dialect.
//!
//! | client frame | what happens |
//! |---|---|
//! | (connect to `/app/{key}?protocol=7`) | `pusher:connection_established` with the socket id and `activity_timeout`; an unknown key is closed with 4001, a missing, malformed or unsupported protocol with 4008, 4006, 4007, a connection over the app's quota with 4004 |
//! | `pusher:ping` | `pusher:pong` |
//! | `pusher:subscribe` `{channel, auth?, channel_data?}` | [`Hub::subscribe`] (the app's [`PusherAuthorizer`](crate::PusherAuthorizer) checks `auth`), then `pusher_internal:subscription_succeeded` (with `{presence: {ids, hash, count}}` on presence channels) or `pusher:subscription_error` `{type, error, status}` |
//! | `pusher:unsubscribe` `{channel}` | [`Hub::unsubscribe`]; nothing is sent back |
//! | `client-…` on a channel | published to the channel's other subscribers (every dialect, every node); only on private and presence channels the socket joined, never on encrypted ones, within [`AppLimits::client_events_per_second`](crate::AppLimits::client_events_per_second) (else `pusher:error` 4301) |
//! | anything else | `pusher:error` with code `null` and the reason; the connection stays |
//!
//! The server's heartbeat is `pusher:ping` every `WsConfig::ping_interval`; pusher-js
//! answers `pusher:pong`. Closes carry a `pusher:error` notice and the protocol's codes
//! ([`crate::protocol::code`]).

use crate::app::App;
use crate::encoder::PusherEncoder;
use crate::protocol::{self, ClientFrame, code};
use crate::state::{AppState, control_loop};
use bytes::Bytes;
use governor::DefaultDirectRateLimiter;
use realtime_core::{
    Channel, CloseReason, ConnectOptions, Encoder, Error, Hub, Identity, Session, SessionId,
    SocketId,
};
use realtime_transport_ws::{Closing, ConnInfo, Dialect, Frame, Opening, Outbox};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Pusher protocol 7 for one [`App`] ([module](self)).
#[derive(Debug)]
pub struct PusherDialect {
    pub(crate) state: Arc<AppState>,
    hub: Hub,
}

impl PusherDialect {
    /// The dialect of `app` on `hub`, with its shared state; starts the control channel
    /// listener on the current tokio runtime (when there is one).
    pub(crate) fn new(state: Arc<AppState>, hub: Hub) -> PusherDialect {
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(control_loop(hub.clone(), state.clone()));
        }
        hub.observe(Arc::new(crate::state::Observer(state.clone())));
        PusherDialect { state, hub }
    }

    /// The app.
    pub fn app(&self) -> &Arc<App> {
        &self.state.app
    }

    /// The app's open connections on this node.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::Relaxed)
    }

    /// Webhook events dropped so far (0 without webhooks).
    pub fn webhooks_dropped(&self) -> u64 {
        self.state
            .webhooks
            .as_ref()
            .map_or(0, crate::webhooks::Webhooks::dropped)
    }
}

/// One channel a connection is subscribed to.
#[derive(Debug)]
pub(crate) struct Joined {
    /// The member it joined as, on a presence channel (its client events carry it).
    pub(crate) member: Option<Box<str>>,
}

/// A connection's channels: a short list (at most
/// [`AppLimits::max_channels_per_connection`](crate::AppLimits::max_channels_per_connection)),
/// searched in order. A hash map holds four buckets for a single channel, and most
/// connections have one or a few: per idle connection the list is ~120 bytes smaller.
#[derive(Debug, Default)]
pub(crate) struct Channels(Vec<(Channel, Joined)>);

impl Channels {
    pub(crate) fn get(&self, channel: &Channel) -> Option<&Joined> {
        self.0.iter().find(|(c, _)| c == channel).map(|(_, j)| j)
    }

    pub(crate) fn contains(&self, channel: &Channel) -> bool {
        self.get(channel).is_some()
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Add or replace `channel`'s entry.
    pub(crate) fn insert(&mut self, channel: Channel, joined: Joined) {
        match self.0.iter_mut().find(|(c, _)| *c == channel) {
            Some((_, j)) => *j = joined,
            None => self.0.push((channel, joined)),
        }
    }

    /// Remove `channel`'s entry, if any.
    pub(crate) fn remove(&mut self, channel: &Channel) -> Option<Joined> {
        let i = self.0.iter().position(|(c, _)| c == channel)?;
        Some(self.0.swap_remove(i).1)
    }

    /// Every channel, emptying the list.
    pub(crate) fn take(&mut self) -> Vec<Channel> {
        std::mem::take(&mut self.0)
            .into_iter()
            .map(|(c, _)| c)
            .collect()
    }
}

/// What [`PusherDialect`] keeps per connection.
#[derive(Debug)]
pub struct PusherConn {
    pub(crate) session: SessionId,
    pub(crate) socket: SocketId,
    pub(crate) channels: Channels,
    /// Made on the first client event.
    pub(crate) client_events: Option<Box<DefaultDirectRateLimiter>>,
    /// The user it signed in as (`pusher:signin`).
    pub(crate) user: Option<Arc<str>>,
    pub(crate) state: Arc<AppState>,
    pub(crate) hub: Hub,
}

impl Drop for PusherConn {
    /// The connection ended: its subscriptions and sign-in no longer count (counts,
    /// webhooks, `subscription_count`).
    fn drop(&mut self) {
        self.state.connections.fetch_sub(1, Ordering::Relaxed);
        if let Some(user) = &self.user {
            self.state.sign_out(user, self.session);
        }
        let channels = self.channels.take();
        let user = self.user.take();
        if channels.is_empty() && user.is_none() {
            return;
        }
        let (state, hub) = (self.state.clone(), self.hub.clone());
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                for c in &channels {
                    crate::commands::left(&state, &hub, c).await;
                }
                if let Some(user) = user {
                    crate::commands::signed_out(&state, &user).await;
                }
            });
        }
    }
}

pub(crate) fn refuse(code: u16, message: &str) -> Opening {
    Opening::Refuse(Closing {
        notice: Some(Frame::Text(protocol::error(Some(code), message))),
        code,
        text: message.chars().take(100).collect(),
    })
}

/// A Pusher channel name as a Hub channel: 1–164 characters of `A-Z a-z 0-9 _ - = @ , . ;`.
/// `#server-to-user-…` channels are not subscribed to by name.
///
/// # Errors
/// [`Error::InvalidChannel`].
pub fn pusher_channel(name: &str) -> Result<Channel, Error> {
    if name.contains(':') {
        return Err(Error::InvalidChannel {
            name: name.chars().take(64).collect(),
            reason: "allowed are A-Z a-z 0-9 _ - = @ , . ;",
        });
    }
    Channel::parse(name)
}

impl Dialect for PusherDialect {
    type Conn = PusherConn;

    fn encoder(&self) -> Arc<dyn Encoder> {
        Arc::new(PusherEncoder::caching(self.state.clone()))
    }

    fn opening(&self, identity: Option<Identity>, info: &ConnInfo) -> Opening {
        let Some(key) = info.path().rsplit_once("/app/").map(|(_, k)| k) else {
            return refuse(code::PATH_NOT_FOUND, "the path must be /app/{key}");
        };
        if key != self.state.app.key {
            return refuse(
                code::APP_UNKNOWN,
                &format!("App key {key} is not known to this server"),
            );
        }
        match info.query_param("protocol").map(|p| p.parse::<u32>()) {
            None => return refuse(code::NO_PROTOCOL, "no protocol version given"),
            Some(Err(_)) => {
                return refuse(
                    code::INVALID_VERSION,
                    "the protocol version is not a number",
                );
            }
            Some(Ok(v)) if !protocol::PROTOCOLS.contains(&v) => {
                return refuse(
                    code::UNSUPPORTED_PROTOCOL,
                    &format!("protocol {v} is not supported; use 7"),
                );
            }
            Some(Ok(_)) => {}
        }
        if let Some(max) = self.state.app.limits.max_connections
            && self.connections() >= max
        {
            return refuse(code::OVER_QUOTA, "the app is over its connection quota");
        }
        Opening::Connect(identity.map_or_else(ConnectOptions::anonymous, ConnectOptions::user))
    }

    fn greeting(&self, session: &Session) -> Option<Frame> {
        let socket = session.socket_id().to_string();
        Some(Frame::Text(protocol::connection_established(
            &socket,
            self.state.activity_timeout,
        )))
    }

    fn new_conn(&self, session: &Session) -> PusherConn {
        self.state.connections.fetch_add(1, Ordering::Relaxed);
        PusherConn {
            session: session.id(),
            socket: session.socket_id(),
            channels: Channels::default(),
            client_events: None,
            user: None,
            state: self.state.clone(),
            hub: self.hub.clone(),
        }
    }

    async fn on_text(&self, hub: &Hub, conn: &mut PusherConn, text: Bytes, out: &Outbox) -> bool {
        let replies = match serde_json::from_slice::<ClientFrame<'_>>(&text) {
            Err(e) => vec![protocol::error(None, &format!("invalid frame: {e}"))],
            Ok(frame) => match frame.event.as_ref() {
                "pusher:ping" => vec![Bytes::from_static(protocol::PONG)],
                "pusher:pong" => Vec::new(),
                "pusher:subscribe" => self.subscribe(hub, conn, &frame).await,
                "pusher:unsubscribe" => self
                    .unsubscribe(hub, conn, &frame)
                    .await
                    .into_iter()
                    .collect(),
                "pusher:signin" => self.signin(hub, conn, &frame).await.into_iter().collect(),
                name if name.starts_with("client-") => self
                    .client_event(hub, conn, &frame)
                    .await
                    .into_iter()
                    .collect(),
                name => vec![protocol::error(
                    None,
                    &format!("unknown event {:?}", clip(name)),
                )],
            },
        };
        for r in replies {
            if out.send(Frame::Text(r)).await.is_err() {
                return false;
            }
        }
        true
    }

    fn error(&self, _request: Option<&[u8]>, error: &Error) -> Option<Frame> {
        let code =
            matches!(error, Error::RateLimited { .. }).then_some(code::CLIENT_EVENT_RATE_LIMIT);
        Some(Frame::Text(protocol::error(code, &error.to_string())))
    }

    fn heartbeat(&self) -> Frame {
        Frame::Text(Bytes::from_static(protocol::PING))
    }

    fn close(&self, reason: &CloseReason) -> Closing {
        let code = match reason {
            CloseReason::Shutdown => code::RECONNECT,
            CloseReason::SlowConsumer => code::OVER_CAPACITY,
            CloseReason::Kicked(_) | CloseReason::Unauthorized => code::UNAUTHORIZED,
            CloseReason::RateLimited => code::CLIENT_EVENT_RATE_LIMIT,
            CloseReason::Idle => code::PONG_NOT_RECEIVED,
            CloseReason::TooManyConnections => code::OVER_QUOTA,
            _ => code::RECONNECT,
        };
        let text = reason.text();
        Closing {
            notice: Some(Frame::Text(protocol::error(Some(code), text))),
            code,
            text: text.chars().take(100).collect(),
        }
    }
}

fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}
