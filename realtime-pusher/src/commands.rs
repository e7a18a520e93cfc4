//! The client frames that act on the Hub: `pusher:subscribe`, `pusher:unsubscribe`,
//! `pusher:signin` and client events, with what follows from them (subscription counts,
//! webhooks, `pusher_internal:subscription_count`, cache channels).

use crate::authorizer::presence_member;
use crate::dialect::{Joined, PusherConn, PusherDialect, pusher_channel};
use crate::protocol::{self, ClientFrame, Signin, Subscribe, Unsubscribe, code};
use crate::sign;
use crate::state::{AppState, CONTROL_CHANNEL, is_cache_channel};
use crate::webhooks::WebhookEvent;
use bytes::Bytes;
use governor::{Quota, RateLimiter};
use realtime_core::{Channel, Credentials, Error, Event, EventData, Hub, Subscribed, Visibility};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// `pusher:subscription_error`'s `type` and `status` for a refused subscription.
fn subscription_refusal(e: &Error) -> (&'static str, u16) {
    match e {
        Error::Forbidden(_) | Error::Unauthenticated(_) => ("AuthError", 401),
        Error::Invalid { .. } | Error::InvalidChannel { .. } => ("InvalidChannel", 400),
        _ if e.is_temporary() => ("ServerError", 503),
        _ => ("ServerError", 500),
    }
}

/// A Pusher subscription of `channel` began on this node: count it; on the first in the
/// cluster, `channel_occupied`; with `subscription_count` on, tell the subscribers.
pub(crate) async fn joined(state: &AppState, hub: &Hub, channel: &Channel) {
    match state.counts.add(channel).await {
        Ok(n) => {
            if n == 1 {
                state.webhook(move || WebhookEvent::ChannelOccupied {
                    channel: channel.to_string(),
                });
            }
            announce_count(state, hub, channel, n).await;
        }
        Err(e) => tracing::warn!(error = %e, channel = %channel, "subscription count failed"),
    }
}

/// A Pusher subscription of `channel` ended (unsubscribe or disconnect).
pub(crate) async fn left(state: &AppState, hub: &Hub, channel: &Channel) {
    match state.counts.remove(channel).await {
        Ok(n) => {
            if n == 0 {
                state.webhook(move || WebhookEvent::ChannelVacated {
                    channel: channel.to_string(),
                });
            } else {
                announce_count(state, hub, channel, n).await;
            }
        }
        Err(e) => tracing::warn!(error = %e, channel = %channel, "subscription count failed"),
    }
}

/// `pusher_internal:subscription_count` to the channel's subscribers, when the app asks
/// for it (not on presence channels, which have their member list).
async fn announce_count(state: &AppState, hub: &Hub, channel: &Channel, n: u64) {
    if !state.app.subscription_count || channel.visibility() == Visibility::Presence {
        return;
    }
    let ev = Event::app(
        "pusher_internal:subscription_count",
        json!({ "subscription_count": n }),
    );
    if let Ok(ev) = ev
        && let Err(e) = hub.publish(std::slice::from_ref(channel), ev).await
    {
        tracing::debug!(error = %e, "subscription_count not sent");
    }
}

/// A signed-in connection of `user` ended.
pub(crate) async fn signed_out(state: &AppState, user: &str) {
    let Ok(key) = Channel::user(user) else { return };
    match state.counts.remove(&key).await {
        Ok(0) => state.webhook(move || WebhookEvent::UserOffline {
            user_id: user.to_owned(),
        }),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "user connection count failed"),
    }
}

/// `pusher_internal:subscription_succeeded` with `data` (JSON text).
fn succeeded(name: &str, data: &str) -> Bytes {
    protocol::frame("pusher_internal:subscription_succeeded", Some(name), data)
}

impl PusherDialect {
    pub(crate) async fn subscribe(
        &self,
        hub: &Hub,
        conn: &mut PusherConn,
        frame: &ClientFrame<'_>,
    ) -> Vec<Bytes> {
        let req: Subscribe = match protocol::data_of(frame.data) {
            Ok(r) => r,
            Err(e) => {
                return vec![protocol::error(
                    None,
                    &format!("invalid pusher:subscribe data: {e}"),
                )];
            }
        };
        let name = req.channel.as_str();
        let refused = |kind: &str, message: &str, status: u16| {
            vec![protocol::subscription_error(name, kind, message, status)]
        };
        let channel = match pusher_channel(name) {
            Ok(_) if name == CONTROL_CHANNEL => {
                return refused("InvalidChannel", "this channel is reserved", 400);
            }
            Ok(c) => c,
            Err(e) => return refused("InvalidChannel", &e.to_string(), 400),
        };
        let limits = &self.state.app.limits;
        let new = !conn.channels.contains(&channel);
        if new && conn.channels.len() >= limits.max_channels_per_connection {
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
        let (reply, member) = match hub.subscribe(conn.session, &channel, &credentials).await {
            Ok(Subscribed::Channel) => (succeeded(name, "{}"), None),
            Ok(Subscribed::Presence { me, members }) => {
                let ids: Vec<&str> = members.iter().map(|m| m.user_id.as_str()).collect();
                let hash: Map<String, Value> = members
                    .iter()
                    .map(|m| (m.user_id.clone(), m.user_info.clone()))
                    .collect();
                let data = json!({"presence": {"ids": ids, "hash": hash, "count": members.len()}});
                (
                    succeeded(name, &data.to_string()),
                    Some(me.user_id.into_boxed_str()),
                )
            }
            Err(e) => {
                let (kind, status) = subscription_refusal(&e);
                return refused(kind, &e.to_string(), status);
            }
        };
        conn.channels.insert(channel.clone(), Joined { member });
        let mut replies = vec![reply];
        if is_cache_channel(name) {
            replies.push(match self.state.cached(&channel) {
                Some(frame) => frame,
                None => protocol::frame("pusher:cache_miss", Some(name), "{}"),
            });
        }
        if new {
            joined(&self.state, hub, &channel).await;
        }
        replies
    }

    pub(crate) async fn unsubscribe(
        &self,
        hub: &Hub,
        conn: &mut PusherConn,
        frame: &ClientFrame<'_>,
    ) -> Option<Bytes> {
        let req: Unsubscribe = match protocol::data_of(frame.data) {
            Ok(r) => r,
            Err(e) => {
                return Some(protocol::error(
                    None,
                    &format!("invalid pusher:unsubscribe data: {e}"),
                ));
            }
        };
        let channel = pusher_channel(&req.channel).ok()?;
        // Not subscribed: nothing to leave.
        conn.channels.remove(&channel)?;
        let result = hub.unsubscribe(conn.session, &channel).await;
        left(&self.state, hub, &channel).await;
        result.err().map(|e| protocol::error(None, &e.to_string()))
    }

    /// `pusher:signin`: check the user signature, subscribe the connection to
    /// `#server-to-user-{id}`, answer `pusher:signin_success`.
    pub(crate) async fn signin(
        &self,
        hub: &Hub,
        conn: &mut PusherConn,
        frame: &ClientFrame<'_>,
    ) -> Option<Bytes> {
        let refuse = |why: &str| {
            Some(protocol::error(
                Some(code::UNAUTHORIZED),
                &format!("sign-in refused: {why}"),
            ))
        };
        if conn.user.is_some() {
            return refuse("the connection is signed in already");
        }
        let req: Signin = match protocol::data_of(frame.data) {
            Ok(r) => r,
            Err(e) => return refuse(&format!("invalid pusher:signin data: {e}")),
        };
        let socket = conn.socket.to_string();
        if !sign::verify_user_auth(&self.state.app, &socket, &req.user_data, &req.auth) {
            return refuse("invalid signature");
        }
        let id = match serde_json::from_str::<Value>(&req.user_data)
            .ok()
            .and_then(|v| v.get("id").cloned())
        {
            Some(Value::String(id)) if !id.is_empty() => id,
            _ => return refuse("user_data needs a non-empty string id"),
        };
        let channel = match Channel::user(&id) {
            Ok(c) => c,
            Err(e) => return refuse(&e.to_string()),
        };
        if let Err(e) = hub.subscribe_trusted(conn.session, &channel).await {
            return Some(protocol::error(None, &e.to_string()));
        }
        let user: Arc<str> = id.as_str().into();
        self.state.sign_in(&user, conn.session);
        conn.user = Some(user);
        match self.state.counts.add(&channel).await {
            Ok(1) => self
                .state
                .webhook(move || WebhookEvent::UserOnline { user_id: id }),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "user connection count failed"),
        }
        let data = json!({ "user_data": req.user_data });
        Some(protocol::frame(
            "pusher:signin_success",
            None,
            &data.to_string(),
        ))
    }

    pub(crate) async fn client_event(
        &self,
        hub: &Hub,
        conn: &mut PusherConn,
        frame: &ClientFrame<'_>,
    ) -> Option<Bytes> {
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
        let limits = &self.state.app.limits;
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
            return reject(&format!(
                "data is {} bytes; the limit is {}",
                raw.len(),
                limits.max_event_bytes
            ));
        }
        let event = serde_json::from_str::<EventData>(raw)
            .map_err(Error::from)
            .and_then(|data| Event::app(frame.event.as_ref(), data));
        let mut event = match event {
            Ok(ev) => ev.except(conn.socket),
            Err(e) => return reject(&e.to_string()),
        };
        let member = joined.member.as_deref().map(str::to_owned);
        if let Some(m) = &member {
            event = event.with_user(m.as_str());
        }
        if let Err(e) = hub.publish(&[channel], event).await {
            return reject(&e.to_string());
        }
        self.state.webhook(move || WebhookEvent::ClientEvent {
            channel: name.to_owned(),
            event: frame.event.to_string(),
            data: raw.to_owned(),
            socket_id: conn.socket.to_string(),
            user_id: member,
        });
        None
    }
}
