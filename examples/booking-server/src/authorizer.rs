//! Who may subscribe and who may publish from a connection: the app's Pusher signatures
//! for private and presence channels, plus the native `publish` of the seed's events by
//! the server's admins (`ADMIN_USERS`), on any channel. Everyone else publishes client
//! events only (`client-…` on private and presence channels they joined).

use realtime_core::{AuthRequest, Authorization, ChannelAuthorizer, PublishRequest, Result};
use realtime_pusher::PusherAuthorizer;
use std::collections::HashSet;

/// The booking server's [`ChannelAuthorizer`].
#[derive(Debug)]
pub struct BookingAuthorizer {
    pusher: PusherAuthorizer,
    admins: HashSet<String>,
}

impl BookingAuthorizer {
    /// Subscriptions checked by `pusher`; `admins` may publish any event on any channel.
    pub fn new(pusher: PusherAuthorizer, admins: impl IntoIterator<Item = String>) -> Self {
        BookingAuthorizer {
            pusher,
            admins: admins.into_iter().filter(|a| !a.is_empty()).collect(),
        }
    }
}

#[async_trait::async_trait]
impl ChannelAuthorizer for BookingAuthorizer {
    async fn authorize(&self, request: &AuthRequest<'_>) -> Result<Authorization> {
        self.pusher.authorize(request).await
    }

    async fn authorize_publish(&self, request: &PublishRequest<'_>) -> Result<bool> {
        let admin = request.user_id.is_some_and(|u| self.admins.contains(u));
        Ok(admin || request.is_client_event())
    }
}
