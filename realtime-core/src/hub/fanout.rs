//! Publishing and fan-out: which channels an event goes to, the event history, and the
//! delivery of each broker event to the local sessions subscribed to its channel,
//! encoded once per dialect.
//!
//! [`HubDelivery`] is the broker's handler on every node. Besides queuing frames it
//! watches membership events and keeps the local sessions' room subscriptions in step
//! (additions seen on `user:{id}`, removals on `room:{id}`), in event order.

use crate::broker::DeliveryHandler;
use crate::channel::Channel;
use crate::error::{Error, Result};
use crate::event::{Event, EventType};
use crate::hub::Hub;
use crate::hub::Inner;
use crate::hub::PendingChange;
use crate::hub::lock;
use crate::hub::read;
use crate::hub::write;
use crate::ids::UserId;
use crate::session::{CloseReason, Push, SessionId};
use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

pub(crate) struct HubDelivery(pub(crate) Weak<Inner>);

/// One dialect's frame for the event being fanned out, made when its first session needs
/// it: each event is encoded at most once per dialect.
#[derive(Clone)]
enum Encoded {
    /// No session of the dialect has needed it yet.
    NotYet,
    /// The dialect does not carry this event ([`Encoder::encode`](crate::Encoder::encode) said `None`).
    NotCarried,
    /// The frame, shared by every session of the dialect.
    Frame(Bytes),
}

impl DeliveryHandler for HubDelivery {
    fn deliver(&self, channel: &Channel, event: Arc<Event>) {
        let Some(inner) = self.0.upgrade() else {
            return;
        };
        inner.fan_out(channel, &event);
        let Some(MembershipChange { user, room, add }) = membership_change(channel, &event) else {
            return;
        };
        if !add && let Some(room) = room.room_id() {
            inner.forget_members(room, user.as_deref());
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            // The sessions and their changes are fixed now, in event order; the task only
            // carries them out (the broker call may wait), unless something later about
            // the same session and channel has replaced them by then.
            let ticket = inner.next_ticket.fetch_add(1, Ordering::Relaxed);
            let ids = inner.mark_pending(user.as_deref(), &room, add, ticket);
            if ids.is_empty() {
                return;
            }
            let hub = Hub { inner };
            rt.spawn(async move {
                for id in ids {
                    if let Err(e) = hub.apply_pending(id, &room, ticket).await {
                        tracing::debug!(error = %e, session = id, "membership subscription change failed");
                    }
                }
            });
        }
    }
}

impl Inner {
    /// Record a membership event's subscription change of `channel` (`add` or remove)
    /// for `user`'s sessions (every session subscribed to it or with a change pending
    /// for it, when `None`: a deleted room), replacing a change pending for the same
    /// channel; returns the sessions marked.
    pub(crate) fn mark_pending(
        &self,
        user: Option<&str>,
        channel: &Channel,
        add: bool,
        ticket: u64,
    ) -> Vec<SessionId> {
        // `by_user` is changed under the `sessions` write lock: take that one first.
        let mut sessions = write(&self.sessions);
        let ids: Vec<SessionId> = match user {
            Some(u) => lock(&self.by_user).get(u).cloned().unwrap_or_default(),
            None => sessions
                .iter()
                .filter(|(_, e)| {
                    e.channels.contains(channel) || e.pending.iter().any(|p| p.channel == *channel)
                })
                .map(|(id, _)| *id)
                .collect(),
        };
        for id in &ids {
            if let Some(e) = sessions.get_mut(id) {
                e.pending.retain(|p| p.channel != *channel);
                e.pending.push(PendingChange {
                    channel: channel.clone(),
                    ticket,
                    add,
                });
            }
        }
        ids
    }

    /// Take back the changes pending for `id` on `channel`: all of them before a
    /// subscription change made now (`adds_only`: only additions — an explicit subscribe
    /// checked membership before it got here, and must not cancel a removal that came
    /// in since).
    pub(crate) fn cancel_pending(&self, id: SessionId, channel: &Channel, adds_only: bool) {
        // Nearly always nothing is pending: a read lock tells, not the write lock.
        if read(&self.sessions)
            .get(&id)
            .is_none_or(|e| e.pending.is_empty())
        {
            return;
        }
        if let Some(e) = write(&self.sessions).get_mut(&id)
            && !e.pending.is_empty()
        {
            e.pending
                .retain(|p| p.channel != *channel || (adds_only && !p.add));
        }
    }

    /// Drop cached memberships of `room` (of `user` only, when given).
    pub(crate) fn forget_members(&self, room: &str, user: Option<&str>) {
        lock(&self.may_post).forget(room, user);
    }

    pub(crate) fn fan_out(&self, channel: &Channel, event: &Event) {
        let mut slow = Vec::new();
        let mut delivered = 0u64;
        let mut oversized = 0u64;
        {
            // The user-channel copy of a room event is for sessions not in that room yet
            // (see `Hub::emit_to`); sessions holding the room channel get the room copy.
            // Removals reach `user:` only from large rooms, with no room copy: delivered.
            let removal = event.event_type == EventType::ROOM_LEAVE
                || event.event_type == EventType::ROOM_MEMBER_REMOVE;
            let skip_room = match (channel, &event.room_id) {
                (Channel::User(_), Some(r)) if !removal => Channel::room(r).ok(),
                _ => None,
            };
            // Lock order everywhere: sessions, then subs. Sessions only when deduplicating.
            let sessions = skip_room.as_ref().map(|_| read(&self.sessions));
            let subs = read(&self.subs);
            let Some(list) = subs.get(channel) else {
                return;
            };
            let dialects = read(&self.dialects);
            let mut encoded: Vec<Encoded> = vec![Encoded::NotYet; dialects.len()];
            // The excepted session, when it is one of this node's.
            let except = event
                .except
                .filter(|x| x.node() == self.node)
                .map(|x| x.session());
            for s in list {
                if except == Some(s.shared.id) {
                    continue;
                }
                if let (Some(room), Some(sessions)) = (&skip_room, &sessions)
                    && sessions
                        .get(&s.shared.id)
                        .is_some_and(|e| e.channels.contains(room))
                {
                    continue;
                }
                let d = s.shared.dialect.0 as usize;
                let Some(slot) = encoded.get_mut(d) else {
                    continue;
                };
                if let Encoded::NotYet = slot {
                    *slot = match dialects[d].encode(channel, event) {
                        Some(frame) => Encoded::Frame(frame),
                        None => Encoded::NotCarried,
                    };
                }
                let Encoded::Frame(frame) = &*slot else {
                    continue;
                };
                match s.shared.push_on(channel, frame, || message_seq(event)) {
                    Push::Queued => delivered += 1,
                    Push::Overflow => slow.push(s.shared.clone()),
                    Push::TooLarge => oversized += 1,
                    Push::Gone | Push::Duplicate => {}
                }
            }
        }
        if oversized > 0 {
            self.metrics.record_oversized(oversized);
            tracing::warn!(
                event = %event.event_type, channel = %channel, sessions = oversized,
                "event larger than a session queue's byte bound: not delivered"
            );
        }
        for s in slow {
            let backlog = s.queued_frames() as u64;
            if s.close(false, CloseReason::SlowConsumer) {
                self.metrics.record_slow_consumer(backlog);
                tracing::warn!(session = s.id, user = ?s.user_id, "slow consumer disconnected");
            }
        }
        self.metrics.record_deliveries(delivered);
    }
}

/// The room `seq` of a message event (`event.message.send`), which a recovery's replay
/// may already hold.
pub(crate) fn message_seq(event: &Event) -> Option<u64> {
    (event.event_type == EventType::MESSAGE_SEND)
        .then(|| event.data.get("seq").and_then(serde_json::Value::as_u64))
        .flatten()
}

/// A membership event's change to this node's subscriptions.
pub(crate) struct MembershipChange {
    /// Whose sessions change; `None`: every session on the room's channel (a deleted
    /// room).
    pub(crate) user: Option<UserId>,
    /// The room's channel.
    pub(crate) room: Channel,
    /// Subscribe (`true`) or unsubscribe.
    pub(crate) add: bool,
}

/// Membership changes seen on a channel that change this node's subscriptions:
/// additions arrive on `user:{id}` (the user's sessions are not in the room yet),
/// removals on `room:{id}` (after the removed user's sessions got the event), or on
/// `user:{id}` alone in large rooms ([`HubConfig::large_room_members`](crate::HubConfig::large_room_members)).
pub(crate) fn membership_change(channel: &Channel, event: &Event) -> Option<MembershipChange> {
    let t = &event.event_type;
    // Every published event passes here: the room's channel is built only for the few
    // membership types (not for each message).
    if !(*t == EventType::ROOM_JOIN
        || *t == EventType::ROOM_MEMBER_ADD
        || *t == EventType::ROOM_CREATE
        || *t == EventType::ROOM_LEAVE
        || *t == EventType::ROOM_MEMBER_REMOVE
        || *t == EventType::ROOM_DELETE)
    {
        return None;
    }
    let room = Channel::room(event.room_id.as_deref()?).ok()?;
    match channel {
        Channel::User(u)
            if *t == EventType::ROOM_JOIN
                || *t == EventType::ROOM_MEMBER_ADD
                || *t == EventType::ROOM_CREATE =>
        {
            Some(MembershipChange {
                user: Some(u.to_string()),
                room,
                add: true,
            })
        }
        Channel::Room(_) if *t == EventType::ROOM_LEAVE || *t == EventType::ROOM_MEMBER_REMOVE => {
            let u = event.data.get("user_id")?.as_str()?;
            Some(MembershipChange {
                user: Some(u.to_owned()),
                room,
                add: false,
            })
        }
        Channel::User(u) if *t == EventType::ROOM_LEAVE || *t == EventType::ROOM_MEMBER_REMOVE => {
            Some(MembershipChange {
                user: Some(u.to_string()),
                room,
                add: false,
            })
        }
        Channel::Room(_) if *t == EventType::ROOM_DELETE => Some(MembershipChange {
            user: None,
            room,
            add: false,
        }),
        _ => None,
    }
}

pub(crate) fn event_channels(event: &Event) -> Vec<Channel> {
    let t = &event.event_type;
    let room = || event.room_id.as_deref().and_then(|r| Channel::room(r).ok());
    let user_of = |key: &str| {
        event
            .data
            .get(key)
            .and_then(|v| v.as_str())
            .and_then(|u| Channel::user(u).ok())
    };
    let mut out = Vec::with_capacity(2);
    match t.level() {
        "system" => out.push(if *t == EventType::SYSTEM_BROADCAST {
            Channel::Global
        } else {
            Channel::System
        }),
        "user" if t.action().starts_with("typing.") => out.extend(room()),
        "user" if *t == EventType::USER_NOTIFICATION => {
            out.extend(event.user_id.as_deref().and_then(|u| Channel::user(u).ok()))
        }
        "user" => out.push(Channel::Presence),
        _ => {
            out.extend(room());
            if *t == EventType::ROOM_INVITE_CREATE {
                out.extend(user_of("invitee"));
            }
        }
    }
    out
}

impl Hub {
    /// Publish `event` on each of `channels`: count it, keep it in the event history,
    /// dispatch it through the router (if any), and hand it to the broker for fan-out on
    /// every node, where each receiving dialect encodes it once. The session
    /// [`Event::except`](crate::Event::except) names, if any, does not receive it. How a host publishes app events
    /// ([`Event::app`](crate::Event::app)) as well as structured ones.
    ///
    /// # Errors
    /// [`Error::EventTooLarge`] when the event's JSON is over
    /// [`HubConfig::max_event_bytes`](crate::HubConfig::max_event_bytes) (or over the session queue's byte bound); nobody
    /// receives it. [`Error::Broker`] when the broker refuses it on a channel (the first
    /// such error; the other channels are still tried).
    pub async fn publish(&self, channels: &[Channel], event: Event) -> Result<()> {
        let max = self.max_event_bytes();
        let len = event.json_len();
        if len > max {
            return Err(Error::EventTooLarge { len, max });
        }
        self.record_and_publish(event, channels).await
    }

    /// The largest event [`Hub::publish`] accepts, bytes: [`HubConfig::max_event_bytes`](crate::HubConfig::max_event_bytes),
    /// capped by [`HubConfig::session_queue_bytes`](crate::HubConfig::session_queue_bytes).
    pub fn max_event_bytes(&self) -> usize {
        let c = &self.inner.config;
        c.max_event_bytes.min(c.session_queue_bytes)
    }

    pub(crate) async fn publish_arc(&self, channel: &Channel, event: Arc<Event>) -> Result<()> {
        self.inner.broker.publish(channel, event).await
    }

    pub(crate) async fn record(&self, event: &Arc<Event>) {
        let inner = &self.inner;
        inner.metrics.record_published(&event.event_type);
        if inner.config.event_history > 0 {
            let mut h = lock(&inner.history);
            while h.len() >= inner.config.event_history {
                h.pop_front();
            }
            h.push_back(event.clone());
        }
        if inner.config.persist_events
            && let Err(e) = inner.store.append_event(event).await
        {
            tracing::warn!(error = %e, "could not persist event");
        }
        if let Some(r) = &inner.router
            && let Err(e) = r.dispatch(event.clone()).await
        {
            tracing::debug!(error = %e, event = %event.event_type, "router handler failed");
        }
    }

    /// Publish the events a committed operation caused, each to its channels. Broker
    /// failures are logged, not returned: the change is committed and clients recover it
    /// through `seq`.
    pub(crate) async fn emit(&self, events: Vec<Event>) {
        self.emit_to(events, &[]).await;
    }

    /// [`Hub::emit`], also publishing each event to `user:{id}` of `users`: how users who
    /// are not yet in a room's channel — on any node — learn that they were added. Their
    /// nodes subscribe their sessions on seeing it; sessions already in the room skip
    /// that copy, so nobody gets an event twice.
    pub(crate) async fn emit_to(&self, events: Vec<Event>, users: &[&str]) {
        for ev in events {
            let extra = users.iter().filter_map(|u| Channel::user(u).ok());
            let channels: Vec<Channel> = event_channels(&ev).into_iter().chain(extra).collect();
            // Logged inside: the state change is committed, and clients recover it.
            let _ = self.record_and_publish(ev, &channels).await;
        }
    }

    /// Record `ev` (metrics, history, router) and publish it to each of `channels`. A
    /// broker failure is logged and the other channels are still tried.
    ///
    /// # Errors
    /// The first broker failure.
    pub(crate) async fn record_and_publish(&self, ev: Event, channels: &[Channel]) -> Result<()> {
        let ev = Arc::new(ev);
        self.record(&ev).await;
        for o in read(&self.inner.observers).iter() {
            o.published(&ev, channels);
        }
        let mut first_error = None;
        for ch in channels {
            if let Err(e) = self.publish_arc(ch, ev.clone()).await {
                tracing::warn!(error = %e, channel = %ch, "publish failed");
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
