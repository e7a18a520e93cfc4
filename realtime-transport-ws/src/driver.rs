//! The connection driver: one WebSocket connection from authentication to close, generic
//! over any stream and sink of [`Frame`]s. The actix integration adapts its socket; the axum
//! route serves the upgraded TCP stream through `WsServer::serve_io` (tungstenite reads,
//! our own writer frames).
//!
//! A connection runs two halves. The reader opens the session as its [`Dialect`] says
//! (waiting for an authentication frame if the dialect asks for one), enforces the rate
//! limit and the idle timeout, and hands each text frame to the dialect. The writer
//! (`writer.rs`) drains the session's queue — many frames per flush — together with
//! the dialect's replies and heartbeats, and gives up on a socket that does not take a
//! write within the write timeout.

use crate::ctl;
use crate::dialect::{Closing, Dialect, Opening, Outbox};
use crate::frame::{Frame, WsError, close};
use crate::native::NativeDialect;
use crate::writer::{Replies, write_loop};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use realtime_core::{Authenticator, CloseReason, DialectId, Error, Hub, Identity};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// A close frame with `code` and `reason`.
fn close_frame(code: u16, reason: &str) -> Frame {
    Frame::Close(Some((code, reason.to_owned())))
}

/// The clock of every connection's rate limiter: one, cloned. Making a quanta clock
/// probes the CPU with `CPUID` several times (to find a usable TSC), and on a virtual
/// machine each `CPUID` exits to the hypervisor: ~2 % of the server's CPU while 10,000
/// clients connected (`perf record`) when each connection made its
/// own.
fn rate_clock() -> governor::clock::DefaultClock {
    static CLOCK: std::sync::OnceLock<governor::clock::DefaultClock> = std::sync::OnceLock::new();
    CLOCK
        .get_or_init(governor::clock::DefaultClock::default)
        .clone()
}

/// Who a connection's session opens as, boxed while the connection runs: it is used once,
/// at the opening, and a connection's state keeps the room of everything it was given.
pub(crate) struct Start {
    identity: Option<Identity>,
    info: ConnInfo,
}

/// What the reader's wait for the client ended with.
enum Read {
    /// A frame, or a read error.
    Frame(Result<Frame, WsError>),
    /// The stream ended.
    End,
    /// Nothing came for the idle timeout.
    Idle,
}

/// What the reading side of one connection keeps between frames.
struct Conn<C> {
    limiter: DefaultDirectRateLimiter,
    /// Refused frames in a row.
    strikes: u32,
    out: Outbox,
    /// The dialect's own state.
    dialect: C,
}

/// Connection settings. Defaults suit a chat server.
#[derive(Debug, Clone)]
pub struct WsConfig {
    /// Largest message a client may send, in bytes (default 64 KiB); larger closes with 1009.
    pub max_message_bytes: usize,
    /// Largest single frame, in bytes (default 64 KiB).
    pub max_frame_bytes: usize,
    /// Server ping period (default 25 s); the first ping comes after a random part of it.
    pub ping_interval: Duration,
    /// Close with 4004 when the client sends nothing, not even a pong, this long (default 60 s).
    pub idle_timeout: Duration,
    /// Time for the first `auth` frame when the upgrade had no token (default 5 s).
    pub auth_timeout: Duration,
    /// A write the socket does not take in this time drops the connection (default 10 s).
    pub write_timeout: Duration,
    /// Commands per second per connection, sustained (default 20).
    pub rate_per_second: NonZeroU32,
    /// Commands in a burst (default 40).
    pub rate_burst: NonZeroU32,
    /// Refused commands in a row before closing with 4029 (default 20).
    pub rate_strikes: u32,
    /// Frames the writer takes per flush (default 64).
    pub batch_frames: usize,
    /// `send` commands one connection may have waiting for the group commit before the
    /// next command waits (default 32). Replies (acks and errors) come back in the order
    /// the sends arrived.
    pub pipelined_sends: usize,
    /// Initial read buffer, bytes (default 1 KiB: an idle connection holds it all the
    /// time). A frame larger than it is still read whole: tungstenite reserves a frame's
    /// full length once its header is in; small frames are read up to this many at once.
    pub read_buffer_bytes: usize,
    /// Most bytes gathered for one socket write (default 64 KiB; a larger frame goes out
    /// alone). Frames queued for a connection are framed into one buffer and sent with one
    /// write, so a subscriber of a busy room gets a burst in one `send`: a buffer of 8 KiB
    /// splits a burst of ~20 seed-000 events into two writes, and one write per burst
    /// takes ~40 % less server CPU per delivery at W1, C = 10,000. The buffer is kept
    /// between writes while the connection is busy (up to 16 KiB) and released after a
    /// ping interval without data, so idle connections do not hold it.
    pub write_buffer_bytes: usize,
    /// After the server's close frame, how long it keeps reading (and dropping) what the
    /// client still sends, waiting for the client's close frame (default 2 s; RFC 6455
    /// §7.1.1: the server closes the TCP connection after the closing handshake). Closing
    /// a socket with unread data resets it, and the client would lose the frames before
    /// the close and its code. Zero: close at once.
    pub close_drain: Duration,
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            max_message_bytes: 64 << 10,
            max_frame_bytes: 64 << 10,
            ping_interval: Duration::from_secs(25),
            idle_timeout: Duration::from_secs(60),
            auth_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(10),
            rate_per_second: NonZeroU32::new(20).unwrap_or(NonZeroU32::MIN),
            rate_burst: NonZeroU32::new(40).unwrap_or(NonZeroU32::MIN),
            rate_strikes: 20,
            batch_frames: 64,
            pipelined_sends: 32,
            read_buffer_bytes: 1 << 10,
            write_buffer_bytes: 64 << 10,
            close_drain: Duration::from_secs(2),
        }
    }
}

/// Where a connection comes from, for presence and logs.
#[derive(Debug, Clone, Default)]
pub struct ConnInfo {
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
    /// The peer address.
    pub ip: Option<String>,
    /// The client asked to resume (`?resume=1` on the upgrade, or `"resume": true` in the
    /// `auth` frame): the session is not subscribed to its rooms on connect; the client
    /// `join`s each, with `since`, and gets the replay before any live message of it.
    pub resume: bool,
    /// The upgrade request's target: its path and query as the client sent them
    /// (`/app/app-key?protocol=7&client=js`), for dialects that read them
    /// ([`ConnInfo::path`], [`ConnInfo::query_param`]).
    pub target: String,
}

impl ConnInfo {
    /// The path of [`ConnInfo::target`] (`/app/app-key`).
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(p, _)| p)
    }

    /// The first value of query parameter `name` in [`ConnInfo::target`],
    /// percent-decoded; `None` when absent.
    pub fn query_param(&self, name: &str) -> Option<String> {
        let (_, query) = self.target.split_once('?')?;
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// Whether a query parameter value turns [`ConnInfo::resume`] on (`1` or `true`).
    pub fn resume_flag(value: Option<&str>) -> bool {
        matches!(value, Some("1" | "true"))
    }
}

/// Serves WebSocket connections into a [`Hub`] in one [`Dialect`] (the native one by
/// default). Cheap to clone.
pub struct WsServer<D: Dialect = NativeDialect> {
    pub(crate) inner: Arc<Inner<D>>,
}

impl<D: Dialect> Clone for WsServer<D> {
    fn clone(&self) -> Self {
        WsServer {
            inner: self.inner.clone(),
        }
    }
}

pub(crate) struct Inner<D> {
    pub(crate) hub: Hub,
    pub(crate) auth: Arc<dyn Authenticator>,
    /// The dialect's encoder's id in the Hub.
    pub(crate) dialect_id: DialectId,
    pub(crate) dialect: D,
    pub(crate) config: WsConfig,
    pub(crate) allowed_origins: Option<Vec<String>>,
    /// WebSocket connections being served now (authenticated or not).
    pub(crate) open: std::sync::atomic::AtomicUsize,
}

/// Counts a connection in [`Inner::open`] while it lives.
struct Open<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> Open<'a> {
    fn new(n: &'a std::sync::atomic::AtomicUsize) -> Self {
        n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Open(n)
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl<D: Dialect> std::fmt::Debug for WsServer<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsServer")
            .field("config", &self.inner.config)
            .finish()
    }
}

impl WsServer<NativeDialect> {
    /// Serve `hub` in the native dialect, authenticating with `auth`. Registers the
    /// dialect's encoder with the hub.
    pub fn new(hub: Hub, auth: Arc<dyn Authenticator>) -> Self {
        Self::with_config(hub, auth, WsConfig::default(), None)
    }

    /// With settings, and the browser `Origin`s allowed to connect (`None`: any origin;
    /// requests without an `Origin` header, i.e. non-browser clients, are always allowed).
    pub fn with_config(
        hub: Hub,
        auth: Arc<dyn Authenticator>,
        config: WsConfig,
        allowed_origins: Option<Vec<String>>,
    ) -> Self {
        let dialect = NativeDialect::new(config.pipelined_sends);
        Self::with_dialect(dialect, hub, auth, config, allowed_origins)
    }

    /// The token of an upgrade request: `?token=` or `Authorization: Bearer …`.
    pub fn token_from(query_token: Option<&str>, authorization: Option<&str>) -> Option<String> {
        if let Some(t) = query_token.filter(|t| !t.is_empty()) {
            return Some(t.to_owned());
        }
        let h = authorization?.trim();
        let t = h
            .strip_prefix("Bearer ")
            .or_else(|| h.strip_prefix("bearer "))?
            .trim();
        (!t.is_empty()).then(|| t.to_owned())
    }
}

impl<D: Dialect> WsServer<D> {
    /// Serve `hub` in `dialect`, with settings and allowed origins as
    /// [`WsServer::with_config`]. Registers the dialect's encoder with the hub.
    pub fn with_dialect(
        dialect: D,
        hub: Hub,
        auth: Arc<dyn Authenticator>,
        config: WsConfig,
        allowed_origins: Option<Vec<String>>,
    ) -> Self {
        let dialect_id = hub.register_dialect(dialect.encoder());
        WsServer {
            inner: Arc::new(Inner {
                hub,
                auth,
                dialect_id,
                dialect,
                config,
                allowed_origins,
                open: std::sync::atomic::AtomicUsize::new(0),
            }),
        }
    }

    /// The dialect.
    pub fn dialect(&self) -> &D {
        &self.inner.dialect
    }

    /// WebSocket connections this server is serving now, authenticated or not.
    pub fn open_connections(&self) -> usize {
        self.inner.open.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The hub.
    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    /// The settings.
    pub fn config(&self) -> &WsConfig {
        &self.inner.config
    }

    /// Whether a browser `Origin` may connect.
    pub fn origin_allowed(&self, origin: Option<&str>) -> bool {
        match (&self.inner.allowed_origins, origin) {
            (None, _) | (_, None) => true,
            (Some(list), Some(o)) => list.iter().any(|a| a == "*" || a.eq_ignore_ascii_case(o)),
        }
    }

    /// Authenticate an upgrade request before upgrading: `Ok(None)` when it carries no token
    /// (the client must then send an `auth` frame), `Err` for an invalid one (answer 401).
    ///
    /// # Errors
    /// [`Error::Unauthenticated`].
    pub async fn authenticate_upgrade(
        &self,
        token: Option<&str>,
    ) -> Result<Option<Identity>, Error> {
        match token {
            None => Ok(None),
            Some(t) => self.inner.auth.authenticate(t).await.map(Some),
        }
    }

    /// Run one connection to its end. `identity` is the user authenticated at the upgrade,
    /// or `None` to wait for an `auth` frame.
    pub async fn serve<S>(&self, socket: S, identity: Option<Identity>, info: ConnInfo)
    where
        S: Stream<Item = Result<Frame, WsError>>
            + Sink<Frame, Error = WsError>
            + Send
            + Unpin
            + 'static,
    {
        let (sink, stream) = socket.split();
        self.serve_halves(stream, sink, None, Box::new(Start { identity, info }))
            .await;
    }

    /// Run one connection over a raw byte stream, after the HTTP upgrade handshake: `read`
    /// and `write` are the two halves of the upgraded connection (with any bytes read past
    /// the HTTP request put back in front of `read`). The axum route serves this way; use
    /// it when you do the upgrade yourself. Frames are RFC 6455's, parsed by tungstenite.
    #[cfg(feature = "axum")]
    pub async fn serve_io<R, W>(
        &self,
        read: R,
        write: W,
        identity: Option<Identity>,
        info: ConnInfo,
    ) where
        R: tokio::io::AsyncRead + Send + Unpin + 'static,
        W: tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        self.clone()
            .connection(read, write, identity, info, ())
            .await;
    }

    /// [`WsServer::serve_io`] as one boxed future that owns everything the connection
    /// needs, `guard` included (dropped when the connection ends): spawned as a task of its
    /// own, the task holds only the box's pointer, not the state of whatever made it.
    #[cfg(feature = "axum")]
    pub(crate) fn connection<R, W, G>(
        self,
        read: R,
        write: W,
        identity: Option<Identity>,
        info: ConnInfo,
        guard: G,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>>
    where
        R: tokio::io::AsyncRead + Send + Unpin + 'static,
        W: tokio::io::AsyncWrite + Send + Unpin + 'static,
        G: Send + 'static,
    {
        let start = Box::new(Start { identity, info });
        Box::pin(async move {
            let _guard = guard;
            let (stream, sink, replies) = crate::io::framed(read, write, &self.inner.config).await;
            self.serve_halves(stream, sink, Some(replies), start).await;
        })
    }

    /// Not an `async fn`: its arguments would be kept twice in the future (once as passed,
    /// once moved into the body), and this future lives as long as the connection.
    #[allow(clippy::manual_async_fn)] // on purpose: see above
    fn serve_halves<R, W>(
        &self,
        mut stream: R,
        mut sink: W,
        replies: Option<Arc<Replies>>,
        start: Box<Start>,
    ) -> impl std::future::Future<Output = ()> + Send + '_
    where
        R: Stream<Item = Result<Frame, WsError>> + Send + Unpin + 'static,
        W: Sink<Frame, Error = WsError> + Send + Unpin + 'static,
    {
        async move {
            let _open = Open::new(&self.inner.open);
            let cfg = &self.inner.config;
            let dialect = &self.inner.dialect;
            let hub = &self.inner.hub;
            // Boxed, as everything that runs once or rarely: the connection's long-lived
            // task then does not reserve the space of the opening's state.
            let Start { identity, info } = *start;
            let Some(session) = Box::pin(self.open(&mut stream, &mut sink, identity, info)).await
            else {
                return;
            };
            let session_id = session.id();
            let (ctl_tx, ctl_rx) = ctl::channel(64);
            let mut st = Conn {
                limiter: RateLimiter::direct_with_clock(
                    Quota::per_second(cfg.rate_per_second).allow_burst(cfg.rate_burst),
                    rate_clock(),
                ),
                strikes: 0,
                out: Outbox(ctl_tx),
                dialect: dialect.new_conn(&session),
            };
            let mut writer = tokio::spawn(write_loop(sink, session, ctl_rx, replies, self.clone()));
            let mut writer_done = false;
            // One idle timer for the connection's life, moved on lazily: a frame only
            // records when it came, and the timer, when it fires early, sleeps again until
            // the client has really been quiet for `idle_timeout`. A timer per frame read
            // would be registered and removed again for nearly every frame.
            let idle = cfg.idle_timeout;
            let mut last_frame = tokio::time::Instant::now();
            let mut idle_timer = std::pin::pin!(tokio::time::sleep(idle));
            loop {
                let next = tokio::select! {
                    biased;
                    _ = &mut writer => {
                        writer_done = true;
                        break;
                    }
                    reply = std::future::poll_fn(|cx| dialect.poll_pending(&mut st.dialect, cx)),
                        if dialect.has_pending(&st.dialect) =>
                    {
                        // Boxed, as the other rare waits here: the connection's state is as
                        // large as its largest wait, for as long as the connection lives.
                        if let Some(r) = reply
                            && Box::pin(st.out.send(r)).await.is_err()
                        {
                            break;
                        }
                        continue;
                    }
                    r = stream.next() => {
                        last_frame = tokio::time::Instant::now();
                        match r {
                            Some(r) => Read::Frame(r),
                            None => Read::End,
                        }
                    }
                    () = &mut idle_timer => {
                        let due = last_frame + idle;
                        if due > tokio::time::Instant::now() {
                            idle_timer.as_mut().reset(due);
                            continue;
                        }
                        Read::Idle
                    }
                };
                if !Box::pin(self.on_frame(next, &mut st)).await {
                    break;
                }
            }
            // Work already queued completes anyway (the native dialect's sends are
            // committed); its replies go out if the writer lives.
            while dialect.has_pending(&st.dialect)
                && let Some(reply) =
                    std::future::poll_fn(|cx| dialect.poll_pending(&mut st.dialect, cx)).await
            {
                let _ = st.out.try_send(reply);
            }
            drop(st);
            // A finished JoinHandle must not be polled again.
            if !writer_done {
                let _ = Box::pin(tokio::time::timeout(cfg.write_timeout, &mut writer)).await;
            }
            writer.abort();
            Box::pin(hub.disconnect(session_id)).await;
            // The close frame is out: read and drop what the client still sends until its
            // own close (or the end, or `close_drain`), so that closing the socket does
            // not reset it under the replies and close frame the client has yet to read.
            let until = tokio::time::Instant::now() + cfg.close_drain;
            while !cfg.close_drain.is_zero()
                && let Ok(Some(Ok(f))) =
                    Box::pin(tokio::time::timeout_at(until, stream.next())).await
            {
                if matches!(f, Frame::Close(_)) {
                    break;
                }
            }
        }
    }

    /// One frame from the client (or the end of the stream, or the idle timeout): hand
    /// it to the dialect within the rate limit. Returns whether to go on reading.
    /// Kept out of `serve` and boxed there, so an idle connection's task does not carry
    /// the space of every command's futures.
    async fn on_frame(&self, next: Read, st: &mut Conn<D::Conn>) -> bool {
        let cfg = &self.inner.config;
        let dialect = &self.inner.dialect;
        let frame = match next {
            Read::Idle => {
                for f in dialect.close(&CloseReason::Idle).frames() {
                    let _ = st.out.send(f).await;
                }
                return false;
            }
            Read::End | Read::Frame(Ok(Frame::Close(_))) => return false,
            Read::Frame(Err(e)) => {
                // The close code that says why (RFC 6455 §7.4.1); none when the
                // connection is gone already.
                let close = match e {
                    WsError::TooLarge => Some((close::TOO_LARGE, "message too large")),
                    WsError::InvalidUtf8 => Some((close::INVALID_DATA, "text is not UTF-8")),
                    WsError::Protocol(_) => Some((close::PROTOCOL_ERROR, "protocol error")),
                    WsError::Closed | WsError::Other(_) => None,
                };
                if let Some((code, reason)) = close {
                    let _ = st.out.send(close_frame(code, reason)).await;
                }
                return false;
            }
            Read::Frame(Ok(f)) => f,
        };
        let text = match frame {
            Frame::Text(t) => t,
            Frame::Binary(_) => {
                let e = Error::Invalid {
                    field: "frame",
                    reason: "binary frames are not supported; send JSON text".into(),
                };
                return match dialect.error(None, &e) {
                    Some(f) => st.out.send(f).await.is_ok(),
                    None => true,
                };
            }
            Frame::Ping(_) | Frame::Pong(_) | Frame::Close(_) => return true,
        };
        if let Err(not_until) = st.limiter.check() {
            st.strikes += 1;
            let wait = not_until.wait_time_from(governor::clock::Clock::now(st.limiter.clock()));
            let e = Error::RateLimited {
                retry_after_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1),
            };
            let refusal = dialect.error(Some(&text), &e);
            if st.strikes > cfg.rate_strikes {
                let closing = dialect.close(&CloseReason::RateLimited);
                for f in refusal.into_iter().chain(closing.frames()) {
                    let _ = st.out.send(f).await;
                }
                return false;
            }
            return match refusal {
                Some(f) => st.out.send(f).await.is_ok(),
                None => true,
            };
        }
        st.strikes = 0;
        dialect
            .on_text(&self.inner.hub, &mut st.dialect, text, &st.out)
            .await
    }

    /// Open the session as the dialect says — after an authentication frame if it asks
    /// for one — and greet the client; `None` after closing the connection (refused,
    /// or the socket is gone).
    async fn open<R, W>(
        &self,
        stream: &mut R,
        sink: &mut W,
        identity: Option<Identity>,
        mut info: ConnInfo,
    ) -> Option<realtime_core::Session>
    where
        R: Stream<Item = Result<Frame, WsError>> + Unpin,
        W: Sink<Frame, Error = WsError> + Unpin,
    {
        let dialect = &self.inner.dialect;
        let mut options = match dialect.opening(identity, &info) {
            Opening::Connect(options) => options,
            Opening::AuthFrame => self.auth_frame(stream, sink, &mut info).await?,
            Opening::Refuse(closing) => {
                for f in closing.frames() {
                    let _ = sink.send(f).await;
                }
                return None;
            }
        };
        options.dialect = self.inner.dialect_id;
        let hub = &self.inner.hub;
        let session = match hub.connect(options).await {
            Ok(s) => s,
            Err(e) => {
                let closing = if matches!(e, Error::Forbidden(_)) {
                    dialect.close(&CloseReason::TooManyConnections)
                } else {
                    Closing::code(close::INTERNAL_ERROR, e.to_string())
                };
                if let Some(f) = dialect.error(None, &e) {
                    let _ = sink.send(f).await;
                }
                for f in closing.frames() {
                    let _ = sink.send(f).await;
                }
                return None;
            }
        };
        if let Some(greeting) = dialect.greeting(&session)
            && sink.send(greeting).await.is_err()
        {
            return None;
        }
        Some(session)
    }

    /// The identity in the client's first text frame ([`Opening::AuthFrame`]), and the
    /// session's options; `None` after closing with [`CloseReason::Unauthorized`].
    async fn auth_frame<R, W>(
        &self,
        stream: &mut R,
        sink: &mut W,
        info: &mut ConnInfo,
    ) -> Option<realtime_core::ConnectOptions>
    where
        R: Stream<Item = Result<Frame, WsError>> + Unpin,
        W: Sink<Frame, Error = WsError> + Unpin,
    {
        let cfg = &self.inner.config;
        let dialect = &self.inner.dialect;
        let first = tokio::time::timeout(cfg.auth_timeout, async {
            loop {
                match stream.next().await {
                    Some(Ok(Frame::Text(t))) => return Some(t),
                    Some(Ok(Frame::Ping(_) | Frame::Pong(_))) => continue,
                    _ => return None,
                }
            }
        })
        .await
        .ok()
        .flatten();
        let authenticated = match first.as_deref().map(|t| dialect.auth_frame(t)) {
            Some(Ok(frame)) => self
                .inner
                .auth
                .authenticate(&frame.token)
                .await
                .map(|identity| (identity, frame.resume)),
            Some(Err(e)) => Err(e),
            None => Err(Error::Unauthenticated("no auth frame in time".into())),
        };
        let refused = match authenticated {
            Ok((identity, resume)) => {
                info.resume |= resume;
                match dialect.opening(Some(identity), info) {
                    Opening::Connect(options) => return Some(options),
                    Opening::Refuse(closing) => {
                        for f in closing.frames() {
                            let _ = sink.send(f).await;
                        }
                        return None;
                    }
                    Opening::AuthFrame => Error::Unauthenticated(
                        "the dialect asked for a second authentication frame".into(),
                    ),
                }
            }
            Err(e) => e,
        };
        let closing = dialect.close(&CloseReason::Unauthorized);
        for f in dialect
            .error(None, &refused)
            .into_iter()
            .chain(closing.frames())
        {
            let _ = sink.send(f).await;
        }
        None
    }
}

#[cfg(test)]
mod rate_tests {
    use super::*;

    /// Every connection's limiter shares one clock (`rate_clock`), never one bucket, and a
    /// refusal's wait read off that shared clock is the bucket's real refill time.
    #[test]
    fn connections_share_the_clock_not_the_bucket() {
        let quota = || {
            Quota::per_second(NonZeroU32::new(5).expect("5"))
                .allow_burst(NonZeroU32::new(2).expect("2"))
        };
        let a = RateLimiter::direct_with_clock(quota(), rate_clock());
        let b = RateLimiter::direct_with_clock(quota(), rate_clock());
        assert!(a.check().is_ok() && a.check().is_ok(), "a's burst of 2");
        let refused = a.check().expect_err("a's third at once");
        let wait = refused.wait_time_from(governor::clock::Clock::now(a.clock()));
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(200),
            "one token of 5/s comes within 200 ms, got {wait:?}"
        );
        assert!(
            b.check().is_ok() && b.check().is_ok(),
            "b's own burst, untouched by a"
        );
        assert!(b.check().is_err(), "b's third at once");
    }
}
