//! Channel authorization: who may subscribe to private and presence named channels
//! (`private-…`, `presence-…`), with the context a dialect has: the socket id, the
//! client's signature or token, and presence channel data.
//!
//! A backend trait, outside the `runtime` feature, implemented by the host or by a
//! dialect: seed 003's `/api/broadcasting/auth` decides with the application's own rules,
//! the Pusher dialect checks the HMAC signature of `"<socket_id>:<channel>"` (Pusher
//! protocol 7, *Authenticating channels*).

use crate::channel::Channel;
use crate::error::Result;
use crate::ids::SocketId;
use serde::{Deserialize, Serialize};

/// What a client sent with its subscription besides the channel's name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// The client's signature or token for the channel: Pusher's `auth`
    /// (`"<key>:<hex HMAC-SHA256>"`), or a host's own token.
    pub auth: Option<String>,
    /// Presence channel data as the client sent it: Pusher's `channel_data`, a JSON
    /// string `{"user_id": …, "user_info": …}` covered by the signature.
    pub channel_data: Option<String>,
}

impl Credentials {
    /// No credentials: enough for public channels, rooms and the user's own channel.
    pub const NONE: Credentials = Credentials {
        auth: None,
        channel_data: None,
    };
}

/// One subscription request to decide: [`ChannelAuthorizer::authorize`]'s argument.
#[derive(Debug, Clone, Copy)]
pub struct AuthRequest<'a> {
    /// The channel asked for (private or presence).
    pub channel: &'a Channel,
    /// The asking session's socket id (signed into Pusher's `auth`).
    pub socket_id: SocketId,
    /// The session's user, when it has one.
    pub user_id: Option<&'a str>,
    /// What the client sent with the request.
    pub credentials: &'a Credentials,
}

/// A presence channel member: one per user, whatever their number of connections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresenceMember {
    /// The member's user id (Pusher's `user_id`).
    pub user_id: String,
    /// What other members see of them (Pusher's `user_info`; any JSON, `null` if none).
    #[serde(default)]
    pub user_info: serde_json::Value,
}

/// The answer to an [`AuthRequest`].
#[derive(Debug, Clone, PartialEq)]
pub enum Authorization {
    /// Refused.
    Deny,
    /// Allowed. On a presence channel the session joins as its own user with no
    /// `user_info` (refused when it has no user).
    Allow,
    /// Allowed on a presence channel as this member.
    Member(PresenceMember),
}

/// A session asking to publish an event on a channel ([`crate::Hub::publish_as`]):
/// [`ChannelAuthorizer::authorize_publish`]'s argument.
#[derive(Debug, Clone, Copy)]
pub struct PublishRequest<'a> {
    /// The channel published on.
    pub channel: &'a Channel,
    /// The event's name ([`crate::Event::name`]).
    pub event: &'a str,
    /// The publishing session's socket id.
    pub socket_id: SocketId,
    /// Its user, when it has one.
    pub user_id: Option<&'a str>,
    /// Whether the session is subscribed to the channel.
    pub subscribed: bool,
}

impl PublishRequest<'_> {
    /// Pusher's rule for client events: a `client-…` event, on a private or presence
    /// channel the session is subscribed to. What [`ChannelAuthorizer::authorize_publish`]
    /// allows by default, and what a Hub without an authorizer allows.
    pub fn is_client_event(&self) -> bool {
        self.subscribed
            && self.event.starts_with("client-")
            && self.channel.visibility() != crate::channel::Visibility::Public
    }
}

/// Decides who may subscribe to private and presence named channels, and who may publish
/// on channels from a connection. Without one, private and presence channels are refused
/// and only client events are published.
#[async_trait::async_trait]
pub trait ChannelAuthorizer: Send + Sync + 'static {
    /// Whether the request may subscribe, and as which presence member.
    ///
    /// # Errors
    /// Any error refuses the subscription with that error.
    async fn authorize(&self, request: &AuthRequest<'_>) -> Result<Authorization>;

    /// Whether a session may publish `request.event` on `request.channel` (the native
    /// dialect's `publish`). Default: only client events
    /// ([`PublishRequest::is_client_event`]); a host grants more (an admin's events on a
    /// public channel) by overriding it.
    ///
    /// # Errors
    /// Any error refuses the publish with that error.
    async fn authorize_publish(&self, request: &PublishRequest<'_>) -> Result<bool> {
        Ok(request.is_client_event())
    }
}
