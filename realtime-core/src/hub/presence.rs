//! Presence and typing on the Hub: status changes, the periodic tick that expires grace
//! periods and typing indicators, and the cluster refresh that merges this node's
//! presence with the other nodes' ([`crate::ClusterPresence`]).

use crate::error::Result;
use crate::event::{Event, EventType};
use crate::hub::Hub;
use crate::hub::lock;
use crate::ids::UserId;
use crate::presence::UserStatus;
use std::collections::HashSet;

impl Hub {
    pub(crate) async fn after_presence(&self, events: Vec<Event>) {
        let events = self.cluster_filter(events).await;
        for ev in &events {
            if ev.event_type == EventType::USER_OFFLINE
                && let Some(u) = &ev.user_id
                && let Err(e) = self
                    .inner
                    .store
                    .set_user_status(u, UserStatus::Offline, ev.timestamp)
                    .await
            {
                tracing::warn!(error = %e, "could not store status");
            }
        }
        if !events.is_empty() {
            let events = self.add_usernames(events).await;
            self.emit(events).await;
        }
    }

    /// Drop `online`/`offline` events of users present on another node: for the cluster
    /// nothing changed. Without cluster presence, or when it cannot be asked, events pass.
    pub(crate) async fn cluster_filter(&self, events: Vec<Event>) -> Vec<Event> {
        let Some(c) = &self.inner.cluster else {
            return events;
        };
        let mut out = Vec::with_capacity(events.len());
        for ev in events {
            let edge =
                ev.event_type == EventType::USER_ONLINE || ev.event_type == EventType::USER_OFFLINE;
            if edge
                && let Some(u) = &ev.user_id
                && c.online_elsewhere(u).await.unwrap_or(false)
            {
                continue;
            }
            out.push(ev);
        }
        out
    }

    /// Refresh this node's cluster presence entry and, as leader, announce `offline` for
    /// users who vanished with an expired node (the Hub's cluster task calls this every
    /// [`ClusterPresence::refresh_interval`](crate::ClusterPresence::refresh_interval)).
    pub async fn cluster_tick(&self) {
        let Some(c) = self.inner.cluster.clone() else {
            return;
        };
        let present = self.present_users();
        if let Err(e) = c.refresh(&present).await {
            tracing::warn!(error = %e, "cluster presence refresh failed");
            return;
        }
        let view = match c.others().await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "cluster presence read failed");
                return;
            }
        };
        let local: HashSet<&str> = present.iter().map(|(u, _)| u.as_str()).collect();
        let gone: Vec<UserId> = {
            let mut seen = lock(&self.inner.cluster_seen);
            let gone = seen
                .iter()
                .filter(|u| !view.users.contains(*u) && !local.contains(u.as_str()))
                .cloned()
                .collect();
            *seen = view.users.clone();
            gone
        };
        if !view.leader || gone.is_empty() {
            return;
        }
        let now = self.now();
        let events: Vec<Event> = gone
            .iter()
            .map(|u| {
                Event::at(EventType::USER_OFFLINE, serde_json::json!({ "user_id": u, "status": UserStatus::Offline, "last_seen": now }), now)
                    .with_user(u.clone())
            })
            .collect();
        for u in &gone {
            if let Err(e) = self
                .inner
                .store
                .set_user_status(u, UserStatus::Offline, now)
                .await
            {
                tracing::debug!(error = %e, "could not store status");
            }
        }
        let events = self.add_usernames(events).await;
        self.emit(events).await;
    }

    /// Run the presence and typing timers now (the Hub's timer task calls this every
    /// [`HubConfig::tick_interval`](crate::HubConfig::tick_interval)).
    pub async fn tick(&self) {
        let now = self.now();
        let presence = lock(&self.inner.presence).tick(now);
        let typing = lock(&self.inner.typing).tick(now);
        self.after_presence(presence).await;
        if !typing.is_empty() {
            let typing = self.add_usernames(typing).await;
            self.emit(typing).await;
        }
    }

    /// A user's presence status on this node.
    pub fn presence_of(&self, user: &str) -> UserStatus {
        lock(&self.inner.presence).status(user)
    }

    /// Users present on this node with their status.
    pub fn present_users(&self) -> Vec<(UserId, UserStatus)> {
        lock(&self.inner.presence).present()
    }

    /// Users typing in `room` now.
    pub fn typing_in(&self, room: &str) -> Vec<UserId> {
        lock(&self.inner.typing).typing_in(room)
    }

    /// `actor` starts (`true`) or stops typing in `room_id`. Repeated starts are throttled
    /// (see [`crate::typing`]); typing stops by itself after the TTL.
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::Error::NotFound), [`Error::Forbidden`](crate::Error::Forbidden).
    pub async fn typing(&self, actor: &str, room_id: &str, is_typing: bool) -> Result<()> {
        let (room, member) = self.room_and_member(actor, room_id).await?;
        room.check_post(member.as_ref())?;
        let now = self.now();
        let events = {
            let mut t = lock(&self.inner.typing);
            if is_typing {
                t.start(room_id, actor, now)
            } else {
                t.stop(room_id, actor, now)
            }
        };
        if !events.is_empty() {
            let events = self.add_usernames(events).await;
            self.emit(events).await;
        }
        Ok(())
    }

    /// A connected `actor` sets `online` or `away` (seed 004's `chat:presence`).
    ///
    /// # Errors
    /// [`Error::Invalid`](crate::Error::Invalid) for `offline`, [`Error::Forbidden`](crate::Error::Forbidden) when not connected here.
    pub async fn set_status(&self, actor: &str, status: UserStatus) -> Result<()> {
        let now = self.now();
        let events = lock(&self.inner.presence).set_status(actor, status, now)?;
        if !events.is_empty() {
            self.inner.store.set_user_status(actor, status, now).await?;
            let events = self.add_usernames(events).await;
            self.emit(events).await;
        }
        Ok(())
    }
}
