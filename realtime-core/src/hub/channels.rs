//! Subscribing a session to a channel with its rights checked, and presence channels:
//! the member list, and `event.channel.member.add` / `.remove` when a user's first
//! socket joins or their last one leaves ([`crate::ChannelPresence`]).

use crate::authorizer::{AuthRequest, Authorization, Credentials, PresenceMember};
use crate::channel::{Channel, Visibility};
use crate::error::{Error, Result};
use crate::event::{Event, EventType};
use crate::hub::{Hub, read};
use crate::ids::SocketId;
use crate::session::SessionId;

/// What [`Hub::subscribe`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Subscribed {
    /// The session is subscribed.
    Channel,
    /// The session is subscribed to a presence channel as `me`; `members` is the whole
    /// list now, `me` included, ordered by user id.
    Presence {
        /// The member the session joined as.
        me: PresenceMember,
        /// Every member of the channel.
        members: Vec<PresenceMember>,
    },
}

impl Hub {
    /// Subscribe session `id` to `channel` after checking its rights: `room:` needs
    /// membership (or a public room to read), `user:` only one's own, `private-` and
    /// `presence-` names the [`ChannelAuthorizer`](crate::ChannelAuthorizer) with
    /// `credentials`; `presence`, `system`, `global` and public names are open.
    /// Subscribing twice changes nothing.
    ///
    /// # Errors
    /// [`Error::Forbidden`] (refused), [`Error::Unauthenticated`] (a user's channel or a
    /// room for an anonymous session), [`Error::NotFound`] (room),
    /// [`Error::SessionClosed`]; authorizer, store and broker errors.
    pub async fn subscribe(
        &self,
        id: SessionId,
        channel: &Channel,
        credentials: &Credentials,
    ) -> Result<Subscribed> {
        match channel {
            Channel::Room(room) => {
                self.subscribe_room(id, room).await?;
                return Ok(Subscribed::Channel);
            }
            Channel::User(u) if **u != *self.session_user(id)? => {
                return Err(Error::forbidden("user channels are private to their user"));
            }
            Channel::Named(_) if channel.visibility() != Visibility::Public => {
                return self.subscribe_authorized(id, channel, credentials).await;
            }
            _ => {}
        }
        self.add_local(id, channel.clone()).await?;
        Ok(Subscribed::Channel)
    }

    /// Subscribe session `id` to `channel` without checking its rights, for a dialect that
    /// has checked them itself (the Pusher dialect's `#server-to-user-{id}` after a signed
    /// `pusher:signin`). Subscribing twice changes nothing.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a presence channel (joining one needs a member: use
    /// [`Hub::subscribe`]); [`Error::SessionClosed`]; broker errors.
    pub async fn subscribe_trusted(&self, id: SessionId, channel: &Channel) -> Result<()> {
        if channel.visibility() == Visibility::Presence {
            return Err(Error::invalid(
                "channel",
                "presence channels are joined with Hub::subscribe",
            ));
        }
        self.add_local(id, channel.clone()).await
    }

    /// Publish `event` on `channel` from session `id`, if the
    /// [`ChannelAuthorizer::authorize_publish`](crate::ChannelAuthorizer::authorize_publish)
    /// allows it (without an authorizer: client events only,
    /// [`PublishRequest::is_client_event`](crate::PublishRequest::is_client_event)). The event
    /// names the session's user and leaves the session out ([`Event::except`]). How a
    /// native client publishes app events, such as Pusher clients' client events.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an event without a name ([`Event::app`] gives one);
    /// [`Error::Forbidden`] when refused; [`Error::SessionClosed`]; [`Hub::publish`]'s.
    pub async fn publish_as(&self, id: SessionId, channel: &Channel, event: Event) -> Result<()> {
        let Some(name) = event.name.clone() else {
            return Err(Error::invalid(
                "event",
                "only app events (with a name) are published by connections",
            ));
        };
        let (user_id, subscribed) = {
            let sessions = read(&self.inner.sessions);
            let entry = sessions.get(&id).ok_or(Error::SessionClosed(id))?;
            (
                entry.shared.user_id.clone(),
                entry.channels.contains(channel),
            )
        };
        let socket_id = self.socket_id(id);
        let request = crate::PublishRequest {
            channel,
            event: &name,
            socket_id,
            user_id: user_id.as_deref(),
            subscribed,
        };
        let allowed = match &self.inner.authorizer {
            Some(a) => a.authorize_publish(&request).await?,
            None => request.is_client_event(),
        };
        if !allowed {
            return Err(Error::forbidden(
                "not allowed to publish this event on this channel",
            ));
        }
        let mut event = event.except(socket_id);
        if let Some(u) = user_id {
            event = event.with_user(u.to_string());
        }
        self.publish(std::slice::from_ref(channel), event).await
    }

    /// [`Hub::subscribe`] to a private or presence channel: ask the authorizer.
    async fn subscribe_authorized(
        &self,
        id: SessionId,
        channel: &Channel,
        credentials: &Credentials,
    ) -> Result<Subscribed> {
        let (socket_id, user_id) = {
            let sessions = read(&self.inner.sessions);
            let entry = sessions.get(&id).ok_or(Error::SessionClosed(id))?;
            (self.socket_id(id), entry.shared.user_id.clone())
        };
        let request = AuthRequest {
            channel,
            socket_id,
            user_id: user_id.as_deref(),
            credentials,
        };
        let answer = match &self.inner.authorizer {
            Some(a) => a.authorize(&request).await?,
            None => Authorization::Deny,
        };
        let me = match (answer, channel.visibility()) {
            (Authorization::Deny, _) => {
                return Err(Error::forbidden("not authorized for this channel"));
            }
            (_, Visibility::Private | Visibility::Public) => {
                self.add_local(id, channel.clone()).await?;
                return Ok(Subscribed::Channel);
            }
            (Authorization::Member(member), Visibility::Presence) => member,
            (Authorization::Allow, Visibility::Presence) => match user_id {
                Some(user) => PresenceMember {
                    user_id: user.to_string(),
                    user_info: serde_json::Value::Null,
                },
                None => {
                    return Err(Error::forbidden(
                        "a presence channel needs a member: the authorizer named none",
                    ));
                }
            },
        };
        crate::ids::validate_id("user_id", &me.user_id)?;
        self.add_local(id, channel.clone()).await?;
        let presence = &self.inner.channel_presence;
        let first = match presence.join(channel, socket_id, &me).await {
            Ok(first) => first,
            Err(e) => {
                let _ = self.remove_local(id, channel).await;
                return Err(e);
            }
        };
        if first {
            self.announce_member(channel, EventType::CHANNEL_MEMBER_ADD, &me, Some(socket_id))
                .await;
        }
        let members = presence.members(channel).await?;
        Ok(Subscribed::Presence { me, members })
    }

    /// Unsubscribe session `id` from `channel` (idempotent). Leaving a presence channel
    /// with the user's last socket there announces `event.channel.member.remove`.
    ///
    /// # Errors
    /// Broker errors.
    pub async fn unsubscribe(&self, id: SessionId, channel: &Channel) -> Result<()> {
        self.remove_local(id, channel).await?;
        // A socket that was not on the channel leaves nothing (and announces nothing).
        self.leave_presence(self.socket_id(id), std::iter::once(channel))
            .await;
        Ok(())
    }

    /// The members of presence channel `channel`, one per user, ordered by user id.
    ///
    /// # Errors
    /// Backend errors of the [`ChannelPresence`](crate::ChannelPresence).
    pub async fn presence_members(&self, channel: &Channel) -> Result<Vec<PresenceMember>> {
        self.inner.channel_presence.members(channel).await
    }

    /// Every channel with at least one subscribed session on this node, with its number
    /// of subscribed sessions, in no particular order. Other nodes' subscribers are not
    /// counted: the broker knows nodes, not sessions.
    pub fn local_channels(&self) -> Vec<(Channel, usize)> {
        read(&self.inner.subs)
            .iter()
            .filter(|(_, list)| !list.is_empty())
            .map(|(c, list)| (c.clone(), list.len()))
            .collect()
    }

    /// Take `socket` off the presence channels among `channels`, announcing each member
    /// whose last socket it was.
    pub(crate) async fn leave_presence(
        &self,
        socket: SocketId,
        channels: impl Iterator<Item = &Channel>,
    ) {
        for channel in channels.filter(|c| c.visibility() == Visibility::Presence) {
            match self.inner.channel_presence.leave(channel, socket).await {
                Ok(Some(member)) => {
                    self.announce_member(channel, EventType::CHANNEL_MEMBER_REMOVE, &member, None)
                        .await;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, channel = %channel, "presence channel leave failed");
                }
            }
        }
    }

    /// Publish a member change on `channel` (not to `except`, the joining socket).
    async fn announce_member(
        &self,
        channel: &Channel,
        event_type: EventType,
        member: &PresenceMember,
        except: Option<SocketId>,
    ) {
        let data = serde_json::to_value(member).unwrap_or_default();
        let mut event = Event::new(event_type, data).with_user(member.user_id.clone());
        event.except = except;
        if let Err(e) = self.publish(std::slice::from_ref(channel), event).await {
            tracing::warn!(error = %e, channel = %channel, "presence member event failed");
        }
    }
}
