//! `EventRouter`: route events to handlers by name or pattern, through middleware
//! (seed 000's EventRouter).
//!
//! Patterns are dotted like event names. A `*` segment matches exactly one segment, except
//! as the last segment, where it matches one or more: `event.message.*` matches
//! `event.message.send` and `event.message.reaction.add`; `event.*.delete` matches
//! `event.room.delete` and `event.message.delete`; `*` matches everything.
//!
//! Middleware wraps every dispatch, outermost first, and may stop it by returning an error:
//! [`RequireUser`] (authentication), [`RateLimit`] (feature `runtime`, per-user limits via
//! governor) and [`MetricsLayer`] (counts into [`crate::EventMetrics`]).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use realtime_core::{Event, EventRouter, EventType};
//! use std::sync::{Arc, atomic::{AtomicUsize, Ordering}};
//! let seen = Arc::new(AtomicUsize::new(0));
//! let mut router = EventRouter::new();
//! let s = seen.clone();
//! router.on("event.message.*", move |_ev| {
//!     let s = s.clone();
//!     async move { s.fetch_add(1, Ordering::SeqCst); Ok(()) }
//! }).unwrap();
//! let ev = Arc::new(Event::new(EventType::MESSAGE_REACTION_ADD, serde_json::json!({})));
//! assert_eq!(router.dispatch(ev).await.unwrap(), 1);
//! assert_eq!(seen.load(Ordering::SeqCst), 1);
//! # }
//! ```

use crate::error::{Error, Result, clip};
use crate::event::Event;
use crate::metrics::EventMetrics;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

type HandlerFn = Arc<dyn Fn(Arc<Event>) -> BoxFuture<'static, Result<()>> + Send + Sync>;

/// A parsed routing pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    segments: Vec<String>,
}

impl Pattern {
    /// Parse a pattern: dotted segments of `[a-z0-9_]` or a lone `*`.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming `pattern`.
    pub fn parse(p: &str) -> Result<Pattern> {
        if p.is_empty() || p.len() > crate::event::MAX_EVENT_TYPE_LEN {
            return Err(Error::invalid("pattern", "must be 1 to 128 bytes"));
        }
        let segments: Vec<String> = p.split('.').map(str::to_owned).collect();
        for s in &segments {
            let ok = s == "*"
                || (!s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
            if !ok {
                return Err(Error::invalid(
                    "pattern",
                    format!("{:?}: segments are a-z 0-9 _ or a lone *", clip(p)),
                ));
            }
        }
        Ok(Pattern { segments })
    }

    /// Whether `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        let mut parts = name.split('.');
        let last = self.segments.len() - 1;
        for (i, seg) in self.segments.iter().enumerate() {
            match parts.next() {
                None => return false,
                Some(part) => {
                    if seg == "*" {
                        if i == last {
                            return true;
                        }
                    } else if seg != part {
                        return false;
                    }
                }
            }
        }
        parts.next().is_none()
    }
}

/// What middleware calls to continue the chain.
pub struct Next<'a> {
    router: &'a EventRouter,
    index: usize,
}

impl Next<'_> {
    /// Run the rest of the chain and then the handlers; returns how many handlers matched.
    ///
    /// # Errors
    /// The first error of a later middleware or handler.
    pub async fn run(self, event: Arc<Event>) -> Result<usize> {
        self.router.run_from(self.index, event).await
    }
}

/// Wraps dispatches. Return an error to stop the event.
#[async_trait::async_trait]
pub trait Middleware: Send + Sync + 'static {
    /// Handle `event`, calling `next.run(event)` to continue.
    async fn call(&self, event: Arc<Event>, next: Next<'_>) -> Result<usize>;
}

/// Routes events to handlers. Build it, then share it (`Arc<EventRouter>`).
#[derive(Default)]
pub struct EventRouter {
    routes: Vec<(Pattern, HandlerFn)>,
    middleware: Vec<Arc<dyn Middleware>>,
}

impl std::fmt::Debug for EventRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventRouter")
            .field(
                "routes",
                &self.routes.iter().map(|r| &r.0).collect::<Vec<_>>(),
            )
            .field("middleware", &self.middleware.len())
            .finish()
    }
}

impl EventRouter {
    /// An empty router.
    pub fn new() -> Self {
        Self::default()
    }

    /// Register `handler` for `pattern` (an exact name or a pattern with `*`).
    ///
    /// # Errors
    /// [`Error::Invalid`] for a bad pattern.
    pub fn on<F, Fut>(&mut self, pattern: &str, handler: F) -> Result<&mut Self>
    where
        F: Fn(Arc<Event>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        let p = Pattern::parse(pattern)?;
        self.routes.push((
            p,
            Arc::new(move |ev| Box::pin(handler(ev)) as BoxFuture<'static, _>),
        ));
        Ok(self)
    }

    /// Add middleware; the first added runs outermost.
    pub fn layer(&mut self, m: impl Middleware) -> &mut Self {
        self.middleware.push(Arc::new(m));
        self
    }

    /// Run `event` through the middleware and every matching handler, in registration
    /// order. Returns how many handlers matched (0 is not an error).
    ///
    /// # Errors
    /// A middleware's error (nothing runs after it), or the first handler error (the other
    /// matching handlers still run).
    pub async fn dispatch(&self, event: Arc<Event>) -> Result<usize> {
        self.run_from(0, event).await
    }

    fn run_from(&self, index: usize, event: Arc<Event>) -> BoxFuture<'_, Result<usize>> {
        Box::pin(async move {
            if let Some(m) = self.middleware.get(index) {
                return m
                    .call(
                        event,
                        Next {
                            router: self,
                            index: index + 1,
                        },
                    )
                    .await;
            }
            let name = event.event_type.as_str();
            let mut matched = 0;
            let mut first_err = None;
            for (p, h) in &self.routes {
                if p.matches(name) {
                    matched += 1;
                    if let Err(e) = h(event.clone()).await
                        && first_err.is_none()
                    {
                        first_err = Some(e);
                    }
                }
            }
            match first_err {
                Some(e) => Err(e),
                None => Ok(matched),
            }
        })
    }
}

/// Middleware refusing events without a `user_id` ([`Error::Unauthenticated`]), except
/// `event.system.*`.
#[derive(Debug, Default, Clone, Copy)]
pub struct RequireUser;

#[async_trait::async_trait]
impl Middleware for RequireUser {
    async fn call(&self, event: Arc<Event>, next: Next<'_>) -> Result<usize> {
        if event.user_id.is_none() && event.level() != "system" {
            return Err(Error::Unauthenticated("event has no user".into()));
        }
        next.run(event).await
    }
}

/// Middleware counting every dispatched event and every failure into [`EventMetrics`].
#[derive(Debug, Clone)]
pub struct MetricsLayer(pub Arc<EventMetrics>);

#[async_trait::async_trait]
impl Middleware for MetricsLayer {
    async fn call(&self, event: Arc<Event>, next: Next<'_>) -> Result<usize> {
        self.0.record_routed(&event.event_type);
        let r = next.run(event).await;
        if r.is_err() {
            self.0.record_failed();
        }
        r
    }
}

#[cfg(feature = "runtime")]
pub use rate::RateLimit;

#[cfg(feature = "runtime")]
mod rate {
    use super::*;
    use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
    use std::num::NonZeroU32;

    /// Middleware limiting events per user with a token bucket (governor): `per_second`
    /// sustained, bursts up to `burst`. Events without a user share one bucket.
    /// Refused events get [`Error::RateLimited`] with the wait in milliseconds.
    pub struct RateLimit {
        limiter: DefaultKeyedRateLimiter<String>,
        clock: governor::clock::DefaultClock,
    }

    impl std::fmt::Debug for RateLimit {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("RateLimit")
        }
    }

    impl RateLimit {
        /// `per_second` events per second per user, bursts of `burst` (both at least 1).
        pub fn new(per_second: NonZeroU32, burst: NonZeroU32) -> Self {
            RateLimit {
                limiter: RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)),
                clock: governor::clock::DefaultClock::default(),
            }
        }

        /// Check one event of `key` now.
        ///
        /// # Errors
        /// [`Error::RateLimited`].
        pub fn check(&self, key: &str) -> Result<()> {
            use governor::clock::Clock;
            self.limiter
                .check_key(&key.to_owned())
                .map_err(|not_until| Error::RateLimited {
                    retry_after_ms: not_until
                        .wait_time_from(self.clock.now())
                        .as_millis()
                        .try_into()
                        .unwrap_or(u64::MAX)
                        .max(1),
                })
        }
    }

    #[async_trait::async_trait]
    impl Middleware for RateLimit {
        async fn call(&self, event: Arc<Event>, next: Next<'_>) -> Result<usize> {
            self.check(event.user_id.as_deref().unwrap_or(""))?;
            next.run(event).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventType;

    #[test]
    fn patterns() {
        let p = |s| Pattern::parse(s).expect(s);
        assert!(p("event.message.*").matches("event.message.send"));
        assert!(p("event.message.*").matches("event.message.reaction.add"));
        assert!(!p("event.message.*").matches("event.message"));
        assert!(!p("event.message.*").matches("event.room.join"));
        assert!(p("event.*.delete").matches("event.room.delete"));
        assert!(!p("event.*.delete").matches("event.room.member.delete"));
        assert!(p("*").matches("event.user.online"));
        assert!(p("event.user.online").matches("event.user.online"));
        assert!(!p("event.user.online").matches("event.user.online.x"));
        for bad in ["", "event..x", "event.Message", "event.mes*", "a b"] {
            assert!(Pattern::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn middleware_and_errors() {
        let mut r = EventRouter::new();
        r.layer(RequireUser);
        r.on("event.message.send", |_| async {
            Err(Error::forbidden("nope"))
        })
        .expect("route");
        r.on("event.message.*", |_| async { Ok(()) })
            .expect("route");
        let anon = Arc::new(Event::new(EventType::MESSAGE_SEND, serde_json::Value::Null));
        assert_eq!(
            r.dispatch(anon).await.expect_err("anon").code(),
            "unauthenticated"
        );
        let ev =
            Arc::new(Event::new(EventType::MESSAGE_SEND, serde_json::Value::Null).with_user("u"));
        assert_eq!(
            r.dispatch(ev).await.expect_err("handler error").code(),
            "forbidden"
        );
        let other =
            Arc::new(Event::new(EventType::ROOM_JOIN, serde_json::Value::Null).with_user("u"));
        assert_eq!(r.dispatch(other).await.expect("no match"), 0);
    }

    #[tokio::test]
    async fn rate_limit_refuses_bursts() {
        let mut r = EventRouter::new();
        r.layer(RateLimit::new(
            NonZeroU32::MIN,
            NonZeroU32::new(2).expect("2"),
        ));
        r.on("*", |_| async { Ok(()) }).expect("route");
        let ev =
            Arc::new(Event::new(EventType::MESSAGE_SEND, serde_json::Value::Null).with_user("u"));
        r.dispatch(ev.clone()).await.expect("1");
        r.dispatch(ev.clone()).await.expect("2");
        let e = r.dispatch(ev).await.expect_err("3rd");
        assert!(matches!(e, Error::RateLimited { retry_after_ms } if retry_after_ms > 0));
        let other =
            Arc::new(Event::new(EventType::MESSAGE_SEND, serde_json::Value::Null).with_user("v"));
        r.dispatch(other).await.expect("other user has own bucket");
    }
    use std::num::NonZeroU32;
}
