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
use crate::authorizer::presence_member;
use crate::encoder::PusherEncoder;
use crate::protocol::{self, ClientFrame, Subscribe, Unsubscribe, code};
use bytes::Bytes;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use realtime_core::{
    Channel, CloseReason, ConnectOptions, Credentials, Encoder, Error, Event, EventData, Hub,
    Identity, Session, SessionId, SocketId, Subscribed, Visibility,
};
use realtime_transport_ws::{Closing, ConnInfo, Dialect, Frame, Opening, Outbox};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Pusher protocol 7 for one [`App`] ([module](self)).
#[derive(Debug)]
pub struct PusherDialect {
    app: Arc<App>,
    activity_timeout: u32,
    connections: Arc<AtomicUsize>,
}

impl PusherDialect {
    /// The dialect of `app`, telling clients to ping after `activity_timeout` seconds of
    /// silence (Pusher's own servers say 120).
    pub fn new(app: Arc<App>, activity_timeout: u32) -> PusherDialect {
        PusherDialect {
            app,
            activity_timeout,
            connections: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The app.
    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// The app's open connections on this node.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

/// Counts a connection in [`PusherDialect::connections`] while it lives.
#[derive(Debug)]
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One channel a connection is subscribed to.
#[derive(Debug)]
struct Joined {
    /// The member it joined as, on a presence channel (its client events carry it).
    member: Option<Box<str>>,
}

/// What [`PusherDialect`] keeps per connection.
#[derive(Debug)]
pub struct PusherConn {
    session: SessionId,
    socket: SocketId,
    channels: HashMap<Channel, Joined>,
    /// Made on the first client event.
    client_events: Option<Box<DefaultDirectRateLimiter>>,
    _counted: Counted,
}

/// A reply or nothing.
type Reply = Option<Bytes>;

fn refuse(code: u16, message: &str) -> Opening {
    Opening::Refuse(Closing {
        notice: Some(Frame::Text(protocol::error(Some(code), message))),
        code,
        text: message.chars().take(100).collect(),
    })
}

/// `pusher:subscription_error`'s `type` and `status` for a refused subscription.
fn subscription_refusal(e: &Error) -> (&'static str, u16) {
    match e {
        Error::Forbidden(_) | Error::Unauthenticated(_) => ("AuthError", 401),
        Error::Invalid { .. } | Error::InvalidChannel { .. } => ("InvalidChannel", 400),
        _ if e.is_temporary() => ("ServerError", 503),
        _ => ("ServerError", 500),
    }
}

impl PusherDialect {
    async fn subscribe(&self, hub: &Hub, conn: &mut PusherConn, frame: &ClientFrame<'_>) -> Reply {
        let req: Subscribe = match protocol::data_of(frame.data) {
            Ok(r) => r,
            Err(e) => {
                return Some(protocol::error(
                    None,
                    &format!("invalid pusher:subscribe data: {e}"),
                ));
            }
        };
        let name = req.channel.as_str();
        let refused = |kind: &str, message: &str, status: u16| {
            Some(protocol::subscription_error(name, kind, message, status))
        };
        let channel = match pusher_channel(name) {
            Ok(c) => c,
            Err(e) => return refused("InvalidChannel", &e.to_string(), 400),
        };
        let limits = &self.app.limits;
        if !conn.channels.contains_key(&channel)
            && conn.channels.len() >= limits.max_channels_per_connection
        {
            let msg = format!(
                "a connection may join at most {} channels",
                limits.max_channels_per_connection
            );
            return refused("LimitReached", &msg, 403);
        }
        let presence = channel.visibility() == Visibility::Presence;
        if presence && let Some(data) = req.channel_data.as_deref() {
            // A new member past the limit is refused before joining (nobody sees them come and go).
            if let Ok(me) = presence_member(data)
                && let Ok(members) = hub.presence_members(&channel).await
                && members.len() >= limits.max_presence_members
                && !members.iter().any(|m| m.user_id == me.user_id)
            {
                let msg = format!(
                    "a presence channel holds at most {} members",
                    limits.max_presence_members
                );
                return refused("LimitReached", &msg, 403);
            }
        }
        let credentials = Credentials {
            auth: req.auth.filter(|a| !a.is_empty()),
            channel_data: req.channel_data,
        };
        match hub.subscribe(conn.session, &channel, &credentials).await {
            Ok(Subscribed::Channel) => {
                conn.channels.insert(channel, Joined { member: None });
                Some(protocol::frame(
                    "pusher_internal:subscription_succeeded",
                    Some(name),
                    "{}",
                ))
            }
            Ok(Subscribed::Presence { me, members }) => {
                let ids: Vec<&str> = members.iter().map(|m| m.user_id.as_str()).collect();
                let hash: Map<String, Value> = members
                    .iter()
                    .map(|m| (m.user_id.clone(), m.user_info.clone()))
                    .collect();
                let data = json!({"presence": {"ids": ids, "hash": hash, "count": members.len()}});
                conn.channels.insert(
                    channel,
                    Joined {
                        member: Some(me.user_id.into()),
                    },
                );
                Some(protocol::frame(
                    "pusher_internal:subscription_succeeded",
                    Some(name),
                    &data.to_string(),
                ))
            }
            Err(e) => {
                let (kind, status) = subscription_refusal(&e);
                refused(kind, &e.to_string(), status)
            }
        }
    }

    async fn unsubscribe(
        &self,
        hub: &Hub,
        conn: &mut PusherConn,
        frame: &ClientFrame<'_>,
    ) -> Reply {
        let req: Unsubscribe = match protocol::data_of(frame.data) {
            Ok(r) => r,
            Err(e) => {
                return Some(protocol::error(
                    None,
                    &format!("invalid pusher:unsubscribe data: {e}"),
                ));
            }
        };
        let Ok(channel) = pusher_channel(&req.channel) else {
            return None; // never subscribed: nothing to leave
        };
        // Not subscribed: nothing to leave.
        conn.channels.remove(&channel)?;
        match hub.unsubscribe(conn.session, &channel).await {
            Ok(()) => None,
            Err(e) => Some(protocol::error(None, &e.to_string())),
        }
    }

    async fn client_event(
        &self,
        hub: &Hub,
        conn: &mut PusherConn,
        frame: &ClientFrame<'_>,
    ) -> Reply {
        let name = frame.channel.as_deref().unwrap_or_default();
        let reject = |why: &str| {
            Some(protocol::error(
                None,
                &format!("client event rejected: {why}"),
            ))
        };
        let Ok(channel) = pusher_channel(name) else {
            return reject("no such channel");
        };
        let Some(joined) = conn.channels.get(&channel) else {
            return reject("the connection is not subscribed to the channel");
        };
        if channel.visibility() == Visibility::Public {
            return reject("client events are only supported on private and presence channels");
        }
        if name.starts_with("private-encrypted-") {
            return reject("client events are not supported on encrypted channels");
        }
        let limits = &self.app.limits;
        let limiter = conn.client_events.get_or_insert_with(|| {
            Box::new(RateLimiter::direct(Quota::per_second(
                limits.client_events_per_second,
            )))
        });
        if limiter.check().is_err() {
            let msg = format!(
                "client event rejected: at most {} client events per second",
                limits.client_events_per_second
            );
            return Some(protocol::error(Some(code::CLIENT_EVENT_RATE_LIMIT), &msg));
        }
        let raw = frame.data.map_or("null", |d| d.get());
        if raw.len() > limits.max_event_bytes {
            let msg = format!(
                "data is {} bytes; the limit is {}",
                raw.len(),
                limits.max_event_bytes
            );
            return reject(&msg);
        }
        let event = serde_json::from_str::<EventData>(raw)
            .map_err(Error::from)
            .and_then(|data| Event::app(frame.event.as_ref(), data));
        let mut event = match event {
            Ok(ev) => ev.except(conn.socket),
            Err(e) => return reject(&e.to_string()),
        };
        if let Some(member) = &joined.member {
            event = event.with_user(member.as_ref());
        }
        match hub.publish(&[channel], event).await {
            Ok(()) => None,
            Err(e) => reject(&e.to_string()),
        }
    }
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
        Arc::new(PusherEncoder)
    }

    fn opening(&self, identity: Option<Identity>, info: &ConnInfo) -> Opening {
        let Some(key) = info.path().rsplit_once("/app/").map(|(_, k)| k) else {
            return refuse(code::PATH_NOT_FOUND, "the path must be /app/{key}");
        };
        if key != self.app.key {
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
        if let Some(max) = self.app.limits.max_connections
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
            self.activity_timeout,
        )))
    }

    fn new_conn(&self, session: &Session) -> PusherConn {
        self.connections.fetch_add(1, Ordering::Relaxed);
        PusherConn {
            session: session.id(),
            socket: session.socket_id(),
            channels: HashMap::new(),
            client_events: None,
            _counted: Counted(self.connections.clone()),
        }
    }

    async fn on_text(&self, hub: &Hub, conn: &mut PusherConn, text: Bytes, out: &Outbox) -> bool {
        let reply = match serde_json::from_slice::<ClientFrame<'_>>(&text) {
            Err(e) => Some(protocol::error(None, &format!("invalid frame: {e}"))),
            Ok(frame) => match frame.event.as_ref() {
                "pusher:ping" => Some(Bytes::from_static(protocol::PONG)),
                "pusher:pong" => None,
                "pusher:subscribe" => self.subscribe(hub, conn, &frame).await,
                "pusher:unsubscribe" => self.unsubscribe(hub, conn, &frame).await,
                name if name.starts_with("client-") => self.client_event(hub, conn, &frame).await,
                name => Some(protocol::error(
                    None,
                    &format!("unknown event {:?}", clip(name)),
                )),
            },
        };
        match reply {
            Some(r) => out.send(Frame::Text(r)).await.is_ok(),
            None => true,
        }
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
