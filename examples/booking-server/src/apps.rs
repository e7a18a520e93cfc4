//! More Pusher apps beside the seed's, from a JSON file (`--apps-file`, `PUSHER_APPS_FILE`):
//!
//! ```json
//! [{"id": "2", "key": "key-two", "secret": "secret-two",
//!   "max_connections": 5000, "client_events_per_second": 10, "max_event_bytes": 10240,
//!   "max_presence_members": 100, "webhook_url": "http://app-two.internal/hooks",
//!   "subscription_count": false}]
//! ```
//!
//! Only `id`, `key` and `secret` are required; the rest default to Pusher's limits. Each
//! app gets a Hub of its own (channel names are per app), on Redis under its own prefix
//! when `REDIS_URL` is set. The auth endpoints sign for the seed's app only: the other
//! apps' backends sign their own channels.

use realtime_pusher::{App, AppLimits, WebhookConfig};
use serde::Deserialize;
use std::num::NonZeroU32;

/// One app of the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppEntry {
    id: String,
    key: String,
    secret: String,
    #[serde(default)]
    max_connections: Option<usize>,
    #[serde(default)]
    client_events_per_second: Option<u32>,
    #[serde(default)]
    max_event_bytes: Option<usize>,
    #[serde(default)]
    max_presence_members: Option<usize>,
    #[serde(default)]
    webhook_url: Option<String>,
    #[serde(default)]
    subscription_count: bool,
}

impl AppEntry {
    /// The app it describes.
    ///
    /// # Errors
    /// An invalid id, key or secret; a webhook URL that is not `http://`.
    pub fn app(self) -> Result<App, String> {
        let d = AppLimits::default();
        let limits = AppLimits {
            max_connections: self.max_connections,
            client_events_per_second: self
                .client_events_per_second
                .and_then(NonZeroU32::new)
                .unwrap_or(d.client_events_per_second),
            max_event_bytes: self.max_event_bytes.unwrap_or(d.max_event_bytes),
            max_presence_members: self.max_presence_members.unwrap_or(d.max_presence_members),
            ..d
        };
        let mut app = App::new(self.id, self.key, self.secret)
            .map_err(|e| e.to_string())?
            .limits(limits)
            .subscription_count(self.subscription_count);
        if let Some(url) = self.webhook_url {
            if !url.starts_with("http://") {
                return Err(format!("app {}: webhook_url must be http://", app.id));
            }
            app = app.webhooks(WebhookConfig::new(url));
        }
        Ok(app)
    }
}

/// The apps of `json` (the file's text).
///
/// # Errors
/// The JSON's or an app's error, naming what is wrong.
pub fn parse(json: &str) -> Result<Vec<App>, String> {
    let entries: Vec<AppEntry> =
        serde_json::from_str(json).map_err(|e| format!("apps file: {e}"))?;
    entries.into_iter().map(AppEntry::app).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apps_with_their_limits() {
        let apps = parse(
            r#"[{"id":"2","key":"k2","secret":"s2","client_events_per_second":5,"webhook_url":"http://h/x"},
                {"id":"3","key":"k3","secret":"s3"}]"#,
        )
        .expect("apps");
        assert_eq!(apps.len(), 2);
        assert_eq!(apps[0].limits.client_events_per_second.get(), 5);
        assert!(apps[0].webhooks.is_some());
        assert_eq!(apps[1].limits, AppLimits::default());
        assert!(parse(r#"[{"id":"2","key":"k2"}]"#).is_err(), "no secret");
        assert!(
            parse(r#"[{"id":"2","key":"k2","secret":"s","colour":1}]"#).is_err(),
            "unknown field"
        );
        assert!(
            parse(r#"[{"id":"2","key":"k 2","secret":"s"}]"#).is_err(),
            "bad key"
        );
        assert!(
            parse(r#"[{"id":"2","key":"k2","secret":"s","webhook_url":"https://h"}]"#).is_err()
        );
    }
}
