//! Pusher apps: the `(id, key, secret)` a client and a backend are configured with
//! (`PUSHER_APP_ID`, `PUSHER_APP_KEY`, `PUSHER_APP_SECRET` in Laravel), and each app's
//! limits.

use crate::webhooks::WebhookConfig;
use std::num::NonZeroU32;

/// One Pusher app. Clients connect with its `key` (`/app/{key}`), channel and user
/// signatures are made with its `secret`, and the HTTP API lives under `/apps/{id}/`.
#[derive(Clone, PartialEq, Eq)]
pub struct App {
    /// The app id of the HTTP API's paths (`/apps/{id}/events`).
    pub id: String,
    /// The public key clients connect with and signatures start with (`"<key>:<hex>"`).
    pub key: String,
    /// The shared secret of every HMAC-SHA256 signature.
    pub secret: String,
    /// The app's limits.
    pub limits: AppLimits,
    /// Send `pusher_internal:subscription_count` to a channel's subscribers when its
    /// number of subscriptions changes (off by default, as on Pusher).
    pub subscription_count: bool,
    /// Where the app's webhooks go ([`crate::webhooks`]); none by default.
    pub webhooks: Option<WebhookConfig>,
}

impl std::fmt::Debug for App {
    /// Everything but the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("id", &self.id)
            .field("key", &self.key)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Why an [`App`] was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidApp(pub String);

impl std::fmt::Display for InvalidApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid Pusher app: {}", self.0)
    }
}

impl std::error::Error for InvalidApp {}

impl App {
    /// An app with the default limits ([`AppLimits::default`]).
    ///
    /// # Errors
    /// [`InvalidApp`] when a field is empty, or the id or key holds characters other than
    /// `A-Z a-z 0-9 - _ .` (they appear in URL paths).
    pub fn new(
        id: impl Into<String>,
        key: impl Into<String>,
        secret: impl Into<String>,
    ) -> Result<App, InvalidApp> {
        let app = App {
            id: id.into(),
            key: key.into(),
            secret: secret.into(),
            limits: AppLimits::default(),
            subscription_count: false,
            webhooks: None,
        };
        let path_safe = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        };
        for (field, value) in [("id", &app.id), ("key", &app.key)] {
            if value.is_empty() || value.len() > 200 || !path_safe(value) {
                return Err(InvalidApp(format!(
                    "the app {field} must be 1-200 characters of A-Z a-z 0-9 - _ ."
                )));
            }
        }
        if app.secret.is_empty() {
            return Err(InvalidApp("the app secret is empty".into()));
        }
        Ok(app)
    }

    /// With these limits.
    pub fn limits(mut self, limits: AppLimits) -> App {
        self.limits = limits;
        self
    }

    /// With webhooks to `config.url`.
    pub fn webhooks(mut self, config: WebhookConfig) -> App {
        self.webhooks = Some(config);
        self
    }

    /// With `pusher_internal:subscription_count` events on or off.
    pub fn subscription_count(mut self, on: bool) -> App {
        self.subscription_count = on;
        self
    }
}

/// An app's limits. The defaults are Pusher's published ones where it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppLimits {
    /// Open connections of the app on this node; past it a new one is closed with 4004
    /// (default: none).
    pub max_connections: Option<usize>,
    /// Client events (`client-*`) one connection may send per second (default 10, as
    /// Pusher); past it the event is dropped with `pusher:error` 4301.
    pub client_events_per_second: NonZeroU32,
    /// Largest event `data`, in bytes, from a trigger or a client event (default 10 KiB, as
    /// Pusher).
    pub max_event_bytes: usize,
    /// Members of one presence channel (default 100, as Pusher); a new user past it gets
    /// `pusher:subscription_error` with status 403.
    pub max_presence_members: usize,
    /// Channels one connection may be subscribed to at once (default 100).
    pub max_channels_per_connection: usize,
    /// Channels one trigger may name (default 100, as Pusher).
    pub max_trigger_channels: usize,
    /// Events in one `batch_events` call (default 10, as Pusher).
    pub max_batch_events: usize,
}

impl Default for AppLimits {
    fn default() -> Self {
        AppLimits {
            max_connections: None,
            client_events_per_second: NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN),
            max_event_bytes: 10 << 10,
            max_presence_members: 100,
            max_channels_per_connection: 100,
            max_trigger_channels: 100,
            max_batch_events: 10,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apps_are_checked() {
        assert!(App::new("1", "app-key", "s3cret").is_ok());
        assert!(App::new("", "k", "s").is_err());
        assert!(App::new("1", "a key", "s").is_err());
        assert!(App::new("1", "k/../x", "s").is_err());
        assert!(App::new("1", "k", "").is_err());
        let shown = format!("{:?}", App::new("1", "k", "s3cret").expect("app"));
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}
