//! Sessions and their subscriptions: connecting (with the channels joined on connect),
//! subscribing and unsubscribing, the per-user session registry, disconnecting and
//! kicking.
//!
//! Lock order everywhere: `sessions`, then `subs`; `sub_lock` (async) serializes the
//! broker subscribe and unsubscribe of a channel's first and last local session.

use crate::auth::Identity;
use crate::channel::{Channel, Visibility};
use crate::error::{Error, Result};
use crate::hub::Hub;
use crate::hub::SessionEntry;
use crate::hub::SubEntry;
use crate::hub::config::ConnectOptions;
use crate::hub::lock;
use crate::hub::read;
use crate::hub::write;
use crate::ids::validate_id;
use crate::presence::UserStatus;
use crate::session::{CloseReason, DialectId, Session, SessionId, SessionShared};
use crate::store::User;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

impl Hub {
    /// Make sure `identity`'s user exists in the store, creating it from the claims
    /// (`username`, else `name`, else the id) the first time. Returns the user.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a bad user id; store errors.
    pub async fn ensure_user(&self, identity: &Identity) -> Result<User> {
        validate_id("user_id", &identity.user_id)?;
        let store = &self.inner.store;
        if let Some(u) = store.get_user(&identity.user_id).await? {
            return Ok(u);
        }
        let now = self.now();
        // Claims are the issuer's, but still bounded like any profile: a username that
        // is not a valid handle falls back to the id, an over-long name is left out.
        let limits = &self.inner.config.limits;
        let wanted = identity
            .username
            .clone()
            .filter(|n| validate_id("username", n).is_ok())
            .unwrap_or_else(|| identity.user_id.clone());
        let mut user = User::new(identity.user_id.clone(), wanted, now);
        if let Some(name) = identity.claims.get("name").and_then(|v| v.as_str())
            && limits.check_name("display_name", name).is_ok()
        {
            user.display_name = Some(name.to_owned());
        }
        match store.create_user(&user).await {
            Ok(()) => Ok(user),
            Err(Error::Conflict { .. }) => {
                if let Some(u) = store.get_user(&identity.user_id).await? {
                    return Ok(u);
                }
                // The username is taken by someone else: fall back to the id.
                user.username = identity.user_id.clone();
                store.create_user(&user).await?;
                Ok(user)
            }
            Err(e) => Err(e),
        }
    }

    /// Open a session for an authenticated user, encoded in `dialect`. Subscribes it to
    /// `user:{id}`, `system`, `global`, `presence` (see [`HubConfig::auto_subscribe_presence`](crate::HubConfig::auto_subscribe_presence))
    /// and the user's rooms, and marks the user
    /// online. `device` is a free-form label kept by presence.
    ///
    /// # Errors
    /// [`Error::Forbidden`] past [`HubConfig::max_sessions_per_user`](crate::HubConfig::max_sessions_per_user); [`Error::Invalid`]
    /// for an unknown dialect; store and broker errors.
    pub async fn connect(
        &self,
        identity: &Identity,
        dialect: DialectId,
        device: Option<String>,
    ) -> Result<Session> {
        let options = ConnectOptions {
            device,
            ..ConnectOptions::default()
        };
        self.connect_with(identity, dialect, options).await
    }

    /// [`Hub::connect`] with [`ConnectOptions`]: with `subscribe_rooms: false` the session
    /// is not subscribed to its user's rooms; it takes each one it wants with
    /// [`Hub::resume_room`], which replays what it missed before any live message. What
    /// a reconnecting client that recovers needs.
    ///
    /// # Errors
    /// As [`Hub::connect`].
    pub async fn connect_with(
        &self,
        identity: &Identity,
        dialect: DialectId,
        options: ConnectOptions,
    ) -> Result<Session> {
        let ConnectOptions {
            device,
            subscribe_rooms,
        } = options;
        if dialect.0 as usize >= read(&self.inner.dialects).len() {
            return Err(Error::invalid("dialect", "not registered"));
        }
        let user = self.ensure_user(identity).await?;
        let inner = &self.inner;
        let id = inner.next_session.fetch_add(1, Ordering::Relaxed);
        let user_id: Arc<str> = user.id.as_str().into();
        let shared = Arc::new(SessionShared::new(
            id,
            user_id.clone(),
            dialect,
            inner.config.session_queue_bytes,
            inner.config.session_queue_frames,
        ));
        {
            let mut sessions = write(&inner.sessions);
            let mut by_user = lock(&inner.by_user);
            let mine = by_user.entry(user_id).or_default();
            if mine.len() >= inner.config.max_sessions_per_user {
                return Err(Error::forbidden(format!(
                    "too many connections for this user (limit {})",
                    inner.config.max_sessions_per_user
                )));
            }
            mine.push(id);
            sessions.insert(
                id,
                SessionEntry {
                    shared: shared.clone(),
                    channels: HashSet::new(),
                    pending: Vec::new(),
                },
            );
        }
        let weak = Arc::downgrade(inner);
        let session = Session {
            shared,
            on_drop: Some(Box::new(move |id| {
                let Some(inner) = weak.upgrade() else { return };
                if !read(&inner.sessions).contains_key(&id) {
                    return;
                }
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    rt.spawn(async move { Hub { inner }.disconnect(id).await });
                }
            })),
            done: false,
        };
        let mut channels = vec![Channel::user(&user.id)?, Channel::System, Channel::Global];
        if inner.config.auto_subscribe_presence {
            channels.push(Channel::Presence);
        }
        if subscribe_rooms {
            for r in inner
                .store
                .list_rooms(Some(&user.id), 0, inner.config.max_auto_rooms)
                .await?
            {
                channels.push(Channel::room(&r.id)?);
            }
        }
        for ch in channels {
            self.add_local(id, ch).await?;
        }
        let now = self.now();
        let events = lock(&inner.presence).connect(&user.id, id, device, now);
        let events = self.cluster_filter(events).await;
        if let Some(c) = &inner.cluster {
            let present = self.present_users();
            if let Err(e) = c.refresh(&present).await {
                tracing::warn!(error = %e, "cluster presence refresh failed");
            }
        }
        if !events.is_empty() {
            if let Err(e) = inner
                .store
                .set_user_status(&user.id, UserStatus::Online, now)
                .await
            {
                tracing::warn!(error = %e, "could not store status");
            }
            let events = self.add_usernames_with(events, Some(&user)).await;
            self.emit(events).await;
        }
        Ok(session)
    }

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

    pub(crate) fn session_user(&self, id: SessionId) -> Result<Arc<str>> {
        read(&self.inner.sessions)
            .get(&id)
            .map(|s| s.shared.user_id.clone())
            .ok_or(Error::SessionClosed(id))
    }

    /// Subscribe session `id` to `channel` after checking its user's rights: `room:` needs
    /// membership, `user:` only one's own, `private-`/`presence-` the
    /// [`ChannelAuthorizer`](crate::ChannelAuthorizer); `presence`, `system`, `global` and public names are open.
    ///
    /// # Errors
    /// [`Error::Forbidden`], [`Error::NotFound`] (room), [`Error::SessionClosed`], broker errors.
    pub async fn subscribe(&self, id: SessionId, channel: &Channel) -> Result<()> {
        if let Channel::Room(room) = channel {
            return self.subscribe_room(id, room).await.map(drop);
        }
        let user = self.session_user(id)?;
        match channel {
            Channel::User(u) if **u != *user => {
                return Err(Error::forbidden("user channels are private to their user"));
            }
            Channel::Named(_) if channel.visibility() != Visibility::Public => {
                let ok = match &self.inner.authorizer {
                    Some(a) => a.authorize(&user, channel).await?,
                    None => false,
                };
                if !ok {
                    return Err(Error::forbidden("not authorized for this channel"));
                }
            }
            _ => {}
        }
        self.add_local(id, channel.clone()).await
    }

    /// Unsubscribe session `id` from `channel` (idempotent).
    ///
    /// # Errors
    /// Broker errors.
    pub async fn unsubscribe(&self, id: SessionId, channel: &Channel) -> Result<()> {
        self.remove_local(id, channel).await
    }

    /// Close session `id`: drop its subscriptions and update presence (the user goes
    /// offline after the grace period if this was their last session). Idempotent; also
    /// done when the [`Session`] is dropped.
    pub async fn disconnect(&self, id: SessionId) {
        let inner = &self.inner;
        let entry = {
            let mut sessions = write(&inner.sessions);
            let Some(entry) = sessions.remove(&id) else {
                return;
            };
            let mut by_user = lock(&inner.by_user);
            if let Some(mine) = by_user.get_mut(&entry.shared.user_id) {
                mine.retain(|s| *s != id);
                if mine.is_empty() {
                    by_user.remove(&entry.shared.user_id);
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
        let user = entry.shared.user_id.clone();
        let now = self.now();
        let mut events = lock(&inner.presence).disconnect(&user, id, now);
        if self.sessions_of(&user).is_empty() {
            events.extend(lock(&inner.typing).user_gone(&user, now));
        }
        self.after_presence(events).await;
    }

    /// Close session `id` from the server side with `reason` (the session's next
    /// [`Session::recv`] returns [`Outbound::Close`](crate::Outbound::Close)), then disconnect it.
    pub async fn kick(&self, id: SessionId, reason: CloseReason) {
        if let Some(e) = read(&self.inner.sessions).get(&id) {
            e.shared.close(true, reason);
        }
        self.disconnect(id).await;
    }
}
