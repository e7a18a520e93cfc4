//! Channel authorization: who may subscribe to private and presence named channels.
//!
//! A backend trait, outside the `runtime` feature, implemented by the host (seed 003's
//! `/api/broadcasting/auth` decides it with the application's own rules).

use crate::channel::Channel;
use crate::error::Result;

/// Decides who may subscribe to private and presence named channels (`private-…`,
/// `presence-…`; seed 003's `/api/broadcasting/auth`). Without one, such channels are refused.
#[async_trait::async_trait]
pub trait ChannelAuthorizer: Send + Sync + 'static {
    /// Whether `user_id` may subscribe to `channel`.
    ///
    /// # Errors
    /// Any error refuses the subscription with that error.
    async fn authorize(&self, user_id: &str, channel: &Channel) -> Result<bool>;
}
