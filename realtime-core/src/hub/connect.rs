//! Opening a session: [`ConnectOptions`] says who it belongs to (a chat user, a user with
//! no chat state, or nobody), the dialect its frames are encoded in, and which channels it
//! joins on connect; [`Hub::connect`] opens it.

use crate::auth::Identity;
use crate::channel::Channel;
use crate::error::{Error, Result};
use crate::hub::{Hub, SessionEntry, lock, read, write};
use crate::ids::validate_id;
use crate::presence::UserStatus;
use crate::session::{DialectId, Session, SessionShared};
use crate::store::User;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// How [`Hub::connect`] opens a session. Start from [`ConnectOptions::chat`],
/// [`ConnectOptions::user`] or [`ConnectOptions::anonymous`].
///
/// ```
/// # use realtime_core::{Channel, ConnectOptions, Identity};
/// let alice = Identity { user_id: "alice".into(), username: None, claims: Default::default() };
/// // Seed 000's chat session: alice's channels and rooms, presence.
/// let chat = ConnectOptions::chat(alice.clone()).device("web");
/// // A notification client (seed 001): only alice's own channel.
/// let notify = ConnectOptions::user(alice).channels(vec![Channel::user("alice")?]);
/// // A Pusher socket before any subscription.
/// let anonymous = ConnectOptions::anonymous();
/// # Ok::<(), realtime_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// The session's user; `None` for an anonymous session.
    pub identity: Option<Identity>,
    /// What the session joins on connect.
    pub join: Join,
    /// The dialect its frames are encoded in (default [`DialectId::JSON`]).
    pub dialect: DialectId,
    /// A free-form device label kept by presence (chat sessions).
    pub device: Option<String>,
}

/// What a session joins on connect ([`ConnectOptions::join`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Join {
    /// A chat session (seed 000). Its user is created in the store on first connect from
    /// the identity's claims ([`Hub::ensure_user`]), counts for presence
    /// (`event.user.online` / `offline`), follows its rooms (joining or being added to a
    /// room subscribes it) and is subscribed now to `user:{id}`, `system`, `global`,
    /// `presence` (see [`HubConfig::auto_subscribe_presence`](crate::HubConfig::auto_subscribe_presence)) and, when `rooms`,
    /// each room of its user (up to [`HubConfig::max_auto_rooms`](crate::HubConfig::max_auto_rooms)). A client
    /// that recovers each room with [`Hub::resume_room`] connects with `rooms: false`,
    /// so that no live message reaches it before the replay of what it missed.
    Chat {
        /// Subscribe to the user's rooms now.
        rooms: bool,
    },
    /// Exactly these channels, as the host chose them (possibly none; more with
    /// [`Hub::subscribe`]). No store user, no presence, no room following.
    Channels(Vec<Channel>),
}

impl ConnectOptions {
    /// A chat session for `identity` ([`Join::Chat`] with its rooms).
    pub fn chat(identity: Identity) -> ConnectOptions {
        ConnectOptions {
            identity: Some(identity),
            join: Join::Chat { rooms: true },
            dialect: DialectId::JSON,
            device: None,
        }
    }

    /// A session for `identity` with no chat state, joining no channel until
    /// [`ConnectOptions::channels`] or [`Hub::subscribe`] says which.
    pub fn user(identity: Identity) -> ConnectOptions {
        ConnectOptions {
            identity: Some(identity),
            join: Join::Channels(Vec::new()),
            dialect: DialectId::JSON,
            device: None,
        }
    }

    /// A session with no user (a Pusher socket before any private subscription).
    pub fn anonymous() -> ConnectOptions {
        ConnectOptions {
            identity: None,
            join: Join::Channels(Vec::new()),
            dialect: DialectId::JSON,
            device: None,
        }
    }

    /// Join exactly `channels` on connect ([`Join::Channels`]).
    pub fn channels(mut self, channels: Vec<Channel>) -> ConnectOptions {
        self.join = Join::Channels(channels);
        self
    }

    /// A chat session that does not subscribe to its rooms now (`Join::Chat { rooms:
    /// false }`): it takes each with [`Hub::resume_room`].
    pub fn recovering(mut self) -> ConnectOptions {
        if let Join::Chat { rooms } = &mut self.join {
            *rooms = false;
        }
        self
    }

    /// Encode the session's frames in `dialect`.
    pub fn dialect(mut self, dialect: DialectId) -> ConnectOptions {
        self.dialect = dialect;
        self
    }

    /// Label the session's device (kept by presence).
    pub fn device(mut self, device: impl Into<String>) -> ConnectOptions {
        self.device = Some(device.into());
        self
    }
}

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

    /// Open a session as `options` say: its user (or none), dialect and channels.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an unknown dialect or a bad user id; [`Error::Forbidden`]
    /// past [`HubConfig::max_sessions_per_user`](crate::HubConfig::max_sessions_per_user) (chat sessions); store and broker errors.
    pub async fn connect(&self, options: ConnectOptions) -> Result<Session> {
        let ConnectOptions {
            identity,
            join,
            dialect,
            device,
        } = options;
        if dialect.0 as usize >= read(&self.inner.dialects).len() {
            return Err(Error::invalid("dialect", "not registered"));
        }
        let inner = &self.inner;
        // The store user of a chat session; `None` for every other session.
        let user = match (&identity, &join) {
            (Some(identity), Join::Chat { .. }) => Some(self.ensure_user(identity).await?),
            (Some(identity), Join::Channels(_)) => {
                validate_id("user_id", &identity.user_id)?;
                None
            }
            (None, Join::Chat { .. }) => {
                return Err(Error::invalid("identity", "a chat session needs a user"));
            }
            (None, Join::Channels(_)) => None,
        };
        let chat = user.is_some();
        let user_id: Option<Arc<str>> = identity.as_ref().map(|i| i.user_id.as_str().into());
        let id = inner.next_session.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::new(SessionShared::new(
            id,
            user_id.clone(),
            dialect,
            chat,
            inner.config.session_queue_bytes,
            inner.config.session_queue_frames,
        ));
        {
            let mut sessions = write(&inner.sessions);
            if chat && let Some(user_id) = user_id {
                let mut by_user = lock(&inner.by_user);
                let mine = by_user.entry(user_id).or_default();
                if mine.len() >= inner.config.max_sessions_per_user {
                    return Err(Error::forbidden(format!(
                        "too many connections for this user (limit {})",
                        inner.config.max_sessions_per_user
                    )));
                }
                mine.push(id);
            }
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
            node: inner.node,
        };
        let channels = match (join, &user) {
            (Join::Chat { rooms }, Some(user)) => self.chat_channels(user, rooms).await?,
            (Join::Channels(channels), _) => channels,
            // Refused above: a chat session has a user.
            (Join::Chat { .. }, None) => Vec::new(),
        };
        for ch in channels {
            self.add_local(id, ch).await?;
        }
        if let Some(user) = &user {
            self.come_online(user, id, device).await;
        }
        Ok(session)
    }

    /// A chat session's channels on connect ([`Join::Chat`]).
    async fn chat_channels(&self, user: &User, rooms: bool) -> Result<Vec<Channel>> {
        let inner = &self.inner;
        let mut channels = vec![Channel::user(&user.id)?, Channel::System, Channel::Global];
        if inner.config.auto_subscribe_presence {
            channels.push(Channel::Presence);
        }
        if rooms {
            for r in inner
                .store
                .list_rooms(Some(&user.id), 0, inner.config.max_auto_rooms)
                .await?
            {
                channels.push(Channel::room(&r.id)?);
            }
        }
        Ok(channels)
    }

    /// Count a chat session for presence; announces the user online when it is their
    /// first (in the cluster).
    async fn come_online(&self, user: &User, id: crate::SessionId, device: Option<String>) {
        let inner = &self.inner;
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
            let events = self.add_usernames_with(events, Some(user)).await;
            self.emit(events).await;
        }
    }
}
