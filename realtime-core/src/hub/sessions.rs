//! Sessions and their subscriptions: connecting (with the channels joined on connect),
//! subscribing and unsubscribing, the per-user session registry, disconnecting and
//! kicking.
//!
//! Lock order everywhere: `sessions`, then `subs`; `sub_lock` (async) serializes the
//! broker subscribe and unsubscribe of a channel's first and last local session.

use crate::channel::Channel;
use crate::error::{Error, Result};
use crate::hub::Hub;
use crate::hub::SubEntry;
use crate::hub::lock;
use crate::hub::read;
use crate::hub::write;
use crate::session::{CloseReason, SessionId};
use std::sync::Arc;

impl Hub {
    /// Subscribe `id` to `channel` locally (and the node through the broker for the
    /// channel's first session); takes back an addition a membership event left pending.
    pub(crate) async fn add_local(&self, id: SessionId, channel: Channel) -> Result<()> {
        self.inner.cancel_pending(id, &channel, true);
        let _g = self.inner.sub_lock.lock().await;
        self.add_locked(id, channel).await
    }

    /// [`Hub::add_local`] with `sub_lock` held.
    pub(crate) async fn add_locked(&self, id: SessionId, channel: Channel) -> Result<()> {
        let inner = &self.inner;
        let first = {
            let mut sessions = write(&inner.sessions);
            let Some(entry) = sessions.get_mut(&id) else {
                return Err(Error::SessionClosed(id));
            };
            if !entry.channels.insert(channel.clone()) {
                return Ok(());
            }
            let mut subs = write(&inner.subs);
            let list = subs.entry(channel.clone()).or_default();
            list.push(SubEntry {
                shared: entry.shared.clone(),
            });
            list.len() == 1
        };
        if first && let Err(e) = inner.broker.subscribe(&channel).await {
            self.drop_local(id, &channel);
            return Err(e);
        }
        Ok(())
    }

    /// Remove `id` from `channel` locally; returns whether the channel has no local session left.
    pub(crate) fn drop_local(&self, id: SessionId, channel: &Channel) -> bool {
        let inner = &self.inner;
        if let Some(e) = write(&inner.sessions).get_mut(&id) {
            e.channels.remove(channel);
        }
        let mut subs = write(&inner.subs);
        let Some(list) = subs.get_mut(channel) else {
            return false;
        };
        list.retain(|s| s.shared.id != id);
        if list.is_empty() {
            subs.remove(channel);
            true
        } else {
            false
        }
    }

    /// Unsubscribe `id` from `channel` locally (and the node for its last session); takes
    /// back every change a membership event left pending for it.
    pub(crate) async fn remove_local(&self, id: SessionId, channel: &Channel) -> Result<()> {
        self.inner.cancel_pending(id, channel, false);
        let _g = self.inner.sub_lock.lock().await;
        self.remove_locked(id, channel).await
    }

    /// [`Hub::remove_local`] with `sub_lock` held.
    pub(crate) async fn remove_locked(&self, id: SessionId, channel: &Channel) -> Result<()> {
        if self.drop_local(id, channel) {
            self.inner.broker.unsubscribe(channel).await?;
        }
        Ok(())
    }

    /// Carry out the change of `channel` a membership event left pending for `id` under
    /// `ticket`, unless it was replaced or taken back since (or the session closed).
    pub(crate) async fn apply_pending(
        &self,
        id: SessionId,
        channel: &Channel,
        ticket: u64,
    ) -> Result<()> {
        let _g = self.inner.sub_lock.lock().await;
        let add = {
            let mut sessions = write(&self.inner.sessions);
            let Some(entry) = sessions.get_mut(&id) else {
                return Ok(());
            };
            let Some(i) = entry
                .pending
                .iter()
                .position(|p| p.ticket == ticket && p.channel == *channel)
            else {
                return Ok(());
            };
            entry.pending.swap_remove(i).add
        };
        if add {
            self.add_locked(id, channel.clone()).await
        } else {
            self.remove_locked(id, channel).await
        }
    }

    pub(crate) fn sessions_of(&self, user: &str) -> Vec<SessionId> {
        lock(&self.inner.by_user)
            .get(user)
            .cloned()
            .unwrap_or_default()
    }

    pub(crate) async fn subscribe_user(&self, user: &str, channel: &Channel) {
        for id in self.sessions_of(user) {
            if let Err(e) = self.add_local(id, channel.clone()).await {
                tracing::warn!(error = %e, session = id, "auto-subscribe failed");
            }
        }
    }

    pub(crate) async fn unsubscribe_user(&self, user: &str, channel: &Channel) {
        for id in self.sessions_of(user) {
            if let Err(e) = self.remove_local(id, channel).await {
                tracing::warn!(error = %e, session = id, "unsubscribe failed");
            }
        }
    }

    /// The user of session `id`.
    ///
    /// # Errors
    /// [`Error::SessionClosed`]; [`Error::Unauthenticated`] for an anonymous session.
    pub(crate) fn session_user(&self, id: SessionId) -> Result<Arc<str>> {
        read(&self.inner.sessions)
            .get(&id)
            .ok_or(Error::SessionClosed(id))?
            .shared
            .user_id
            .clone()
            .ok_or_else(|| Error::Unauthenticated("an anonymous session has no user".into()))
    }

    /// Close session `id`: drop its subscriptions and update presence (the user goes
    /// offline after the grace period if this was their last session). Idempotent; also
    /// done when the [`Session`](crate::Session) is dropped.
    pub async fn disconnect(&self, id: SessionId) {
        let inner = &self.inner;
        let entry = {
            let mut sessions = write(&inner.sessions);
            let Some(entry) = sessions.remove(&id) else {
                return;
            };
            if entry.shared.chat
                && let Some(user) = &entry.shared.user_id
            {
                let mut by_user = lock(&inner.by_user);
                if let Some(mine) = by_user.get_mut(user) {
                    mine.retain(|s| *s != id);
                    if mine.is_empty() {
                        by_user.remove(user);
                    }
                }
            }
            entry
        };
        entry
            .shared
            .close(true, CloseReason::Kicked("disconnected".into()));
        for ch in &entry.channels {
            let _g = inner.sub_lock.lock().await;
            let last = {
                let mut subs = write(&inner.subs);
                match subs.get_mut(ch) {
                    Some(list) => {
                        list.retain(|s| s.shared.id != id);
                        let empty = list.is_empty();
                        if empty {
                            subs.remove(ch);
                        }
                        empty
                    }
                    None => false,
                }
            };
            if last && let Err(e) = inner.broker.unsubscribe(ch).await {
                tracing::warn!(error = %e, channel = %ch, "broker unsubscribe failed");
            }
        }
        self.leave_presence(self.socket_id(id), entry.channels.iter())
            .await;
        let user = match (&entry.shared.user_id, entry.shared.chat) {
            (Some(user), true) => user.clone(),
            _ => return,
        };
        let now = self.now();
        let mut events = lock(&inner.presence).disconnect(&user, id, now);
        if self.sessions_of(&user).is_empty() {
            events.extend(lock(&inner.typing).user_gone(&user, now));
        }
        self.after_presence(events).await;
    }

    /// Close session `id` from the server side with `reason` (the session's next
    /// [`Session::recv`](crate::Session::recv) returns [`Outbound::Close`](crate::Outbound::Close)), then disconnect it.
    pub async fn kick(&self, id: SessionId, reason: CloseReason) {
        if let Some(e) = read(&self.inner.sessions).get(&id) {
            e.shared.close(true, reason);
        }
        self.disconnect(id).await;
    }
}
