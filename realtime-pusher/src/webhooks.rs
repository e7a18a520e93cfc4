//! Webhooks (Pusher Channels, *Webhooks*): what happened on the app's channels, POSTed to
//! the app's URL in batches, signed, retried with back-off, from a bounded queue that
//! never slows the fan-out.
//!
//! A request's body is `{"time_ms": <Unix ms>, "events": [...]}` with these events:
//!
//! | `name` | fields | when |
//! |---|---|---|
//! | `channel_occupied` | `channel` | a channel's first Pusher subscription, counted on every node ([`realtime_core::SubscriptionCounts`]) |
//! | `channel_vacated` | `channel` | its last one ended |
//! | `member_added` | `channel`, `user_id` | a user's first connection on a presence channel, once across nodes |
//! | `member_removed` | `channel`, `user_id` | their last one left |
//! | `client_event` | `channel`, `event`, `data` (string), `socket_id`, `user_id` (presence channels) | a client event was published |
//! | `user_online` | `user_id` | a signed-in user's (`pusher:signin`) first connection anywhere |
//! | `user_offline` | `user_id` | their last connection ended |
//!
//! Headers: `X-Pusher-Key` (the app key) and `X-Pusher-Signature` (hex HMAC-SHA256 of the
//! body with the app secret); the receiver checks the signature before trusting the body.
//! `user_online` and `user_offline` are this server's own; Pusher has no such events.
//!
//! Webhooks go over plain HTTP (the crate builds no TLS stack): point them at the
//! application's private address, or at a local TLS-terminating proxy.

use crate::app::App;
use crate::sign;
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

/// Where and how webhooks are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// The `http://` URL POSTed to.
    pub url: String,
    /// Events waiting to be sent; past it new events are dropped and counted
    /// ([`Webhooks::dropped`]) (default 10,000).
    pub queue: usize,
    /// Most events in one request (default 100).
    pub max_batch: usize,
    /// How long the first event of a batch waits for others (default 50 ms).
    pub batch_window: Duration,
    /// Attempts after the first failure (default 5); then the batch is dropped and counted.
    pub retries: u32,
    /// Wait before the first retry, doubled after each (default 500 ms).
    pub backoff: Duration,
    /// One request's time limit (default 5 s).
    pub timeout: Duration,
}

impl WebhookConfig {
    /// Webhooks to `url` with the default settings.
    pub fn new(url: impl Into<String>) -> WebhookConfig {
        WebhookConfig {
            url: url.into(),
            queue: 10_000,
            max_batch: 100,
            batch_window: Duration::from_millis(50),
            retries: 5,
            backoff: Duration::from_millis(500),
            timeout: Duration::from_secs(5),
        }
    }
}

/// One webhook event ([module](self)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum WebhookEvent {
    /// A channel got its first subscription.
    ChannelOccupied {
        /// The channel.
        channel: String,
    },
    /// A channel lost its last subscription.
    ChannelVacated {
        /// The channel.
        channel: String,
    },
    /// A user joined a presence channel.
    MemberAdded {
        /// The channel.
        channel: String,
        /// The member's user id.
        user_id: String,
    },
    /// A user left a presence channel.
    MemberRemoved {
        /// The channel.
        channel: String,
        /// The member's user id.
        user_id: String,
    },
    /// A client sent a client event.
    ClientEvent {
        /// The channel.
        channel: String,
        /// The event name (`client-…`).
        event: String,
        /// The event's data as JSON text.
        data: String,
        /// The sender's socket id.
        socket_id: String,
        /// The sender's user, on presence channels.
        #[serde(skip_serializing_if = "Option::is_none")]
        user_id: Option<String>,
    },
    /// A signed-in user's first connection anywhere.
    UserOnline {
        /// The user id.
        user_id: String,
    },
    /// A signed-in user's last connection ended.
    UserOffline {
        /// The user id.
        user_id: String,
    },
}

/// The sending side of an app's webhooks: cheap to call from any task, never waits.
#[derive(Debug, Clone)]
pub struct Webhooks {
    tx: mpsc::Sender<WebhookEvent>,
    dropped: Arc<AtomicU64>,
}

impl Webhooks {
    /// Start sending `app`'s webhooks as `config` says, on the current tokio runtime.
    pub fn start(app: Arc<App>, config: WebhookConfig) -> Webhooks {
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        tokio::spawn(send_loop(app, config, rx, dropped.clone()));
        Webhooks { tx, dropped }
    }

    /// Queue `event`; when the queue is full it is dropped, counted and logged.
    pub fn send(&self, event: WebhookEvent) {
        if self.tx.try_send(event).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(dropped = n, "webhook queue full or stopped: events dropped");
            }
        }
    }

    /// Events dropped so far (queue full, or a batch that failed every retry).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// A request body.
#[derive(Serialize)]
struct Body<'a> {
    time_ms: u128,
    events: &'a [WebhookEvent],
}

async fn send_loop(
    app: Arc<App>,
    config: WebhookConfig,
    mut rx: mpsc::Receiver<WebhookEvent>,
    dropped: Arc<AtomicU64>,
) {
    let client = match reqwest::Client::builder().timeout(config.timeout).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhooks disabled: no HTTP client");
            return;
        }
    };
    let mut batch = Vec::with_capacity(config.max_batch);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        let until = tokio::time::Instant::now() + config.batch_window;
        while batch.len() < config.max_batch {
            match tokio::time::timeout_at(until, rx.recv()).await {
                Ok(Some(ev)) => batch.push(ev),
                Ok(None) | Err(_) => break,
            }
        }
        if !deliver(&client, &app, &config, &batch).await {
            let n = u64::try_from(batch.len()).unwrap_or(u64::MAX);
            dropped.fetch_add(n, Ordering::Relaxed);
            tracing::warn!(events = batch.len(), url = %config.url, "webhook batch dropped after every retry");
        }
        batch.clear();
    }
}

/// POST one batch, retrying with back-off; whether it was accepted (a 2xx).
async fn deliver(
    client: &reqwest::Client,
    app: &App,
    config: &WebhookConfig,
    events: &[WebhookEvent],
) -> bool {
    let time_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let Ok(body) = serde_json::to_string(&Body { time_ms, events }) else {
        return false;
    };
    let signature = sign::hmac_hex(&app.secret, &[&body]);
    let mut wait = config.backoff;
    for attempt in 0..=config.retries {
        let sent = client
            .post(&config.url)
            .header("content-type", "application/json")
            .header("x-pusher-key", &app.key)
            .header("x-pusher-signature", &signature)
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => return true,
            Ok(r) => tracing::debug!(status = %r.status(), attempt, "webhook refused"),
            Err(e) => tracing::debug!(error = %e, attempt, "webhook failed"),
        }
        if attempt < config.retries {
            tokio::time::sleep(wait).await;
            wait = wait.saturating_mul(2);
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_serialize_as_pusher_names_them() {
        let v = serde_json::to_value(WebhookEvent::MemberAdded {
            channel: "presence-a".into(),
            user_id: "7".into(),
        })
        .expect("json");
        assert_eq!(
            v,
            json!({"name": "member_added", "channel": "presence-a", "user_id": "7"})
        );
        let v = serde_json::to_value(WebhookEvent::ClientEvent {
            channel: "private-a".into(),
            event: "client-x".into(),
            data: "{}".into(),
            socket_id: "1.2".into(),
            user_id: None,
        })
        .expect("json");
        assert_eq!(v["name"], "client_event");
        assert!(v.get("user_id").is_none());
        let v = serde_json::to_value(WebhookEvent::ChannelVacated {
            channel: "c".into(),
        })
        .expect("json");
        assert_eq!(v, json!({"name": "channel_vacated", "channel": "c"}));
    }
}
