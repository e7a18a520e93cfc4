//! The connection driver: one WebSocket connection from authentication to close, generic
//! over any stream and sink of [`Frame`]s. The actix integration adapts its socket; the axum
//! route serves the upgraded TCP stream through `WsServer::serve_io` (tungstenite reads,
//! our own writer frames).
//!
//! A connection runs two halves. The reader authenticates (if the upgrade carried no
//! token), parses commands, enforces the rate limit and the idle timeout, and calls the
//! [`Hub`]. The writer drains the session's queue — many frames per flush — together with
//! command replies and server pings, and gives up on a socket that does not take a write
//! within the write timeout.

use crate::frame::{Frame, WsError, close};
use crate::native::{self, Command};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use realtime_core::{
    Authenticator, CloseReason, DialectId, Error, Hub, Identity, Outbound, Session, UserStatus,
};
use serde_json::{Value, json};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

/// One pipelined `send` waiting for its reply: its request id (for the ack) and the Hub's
/// pending message (already settled when it was refused before reaching the Hub: its
/// error waits for its turn, so replies keep the sends' order).
struct InFlight {
    id: Option<Value>,
    pending: realtime_core::PendingMessage,
}

/// A connection's `send`s in flight, in the order they were submitted.
///
/// The Hub's group committer stores a connection's sends in submission order, so only the
/// oldest is polled: nothing later can be owed a reply before it. A queue rather than a
/// `FuturesOrdered` of boxed futures: no allocation and no task of its own per `send`
/// (that machinery costs 5.4 % of the server's samples at W2 20 msg/s, and 3 % more CPU
/// at W2 10 msg/s).
#[derive(Default)]
struct Sends(std::collections::VecDeque<InFlight>);

impl Sends {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn push_back(&mut self, id: Option<Value>, pending: realtime_core::PendingMessage) {
        self.0.push_back(InFlight { id, pending });
    }

    /// The oldest send's reply once it is committed: `Some(None)` when it needs none (it
    /// was stored and had no id), `None` when nothing is in flight.
    fn poll_next(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Option<Option<Frame>>> {
        let Some(front) = self.0.front_mut() else {
            return Poll::Ready(None);
        };
        let result = std::task::ready!(std::pin::Pin::new(&mut front.pending).poll(cx));
        let id = self.0.pop_front().and_then(|f| f.id);
        Poll::Ready(Some(match result {
            Ok(m) => id.as_ref().map(|id| Frame::Text(native::ack_of(id, &m))),
            Err(e) => Some(native_error(id.as_ref(), &e)),
        }))
    }

    /// [`Sends::poll_next`] as a future.
    async fn next(&mut self) -> Option<Option<Frame>> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }
}

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

/// What the reading side of one connection keeps between frames.
struct Conn {
    limiter: DefaultDirectRateLimiter,
    /// Refused commands in a row.
    strikes: u32,
    /// `send`s in flight: queued for the Hub's group commit in arrival order, acked in
    /// that order as they complete; any other command waits until they are done.
    sends: Sends,
    ctl_tx: ctl::Sender,
    user: String,
    session_id: realtime_core::SessionId,
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
}

impl ConnInfo {
    /// Whether a query parameter value turns [`ConnInfo::resume`] on (`1` or `true`).
    pub fn resume_flag(value: Option<&str>) -> bool {
        matches!(value, Some("1" | "true"))
    }
}

/// Serves WebSocket connections into a [`Hub`] in the native dialect. Cheap to clone.
#[derive(Clone)]
pub struct WsServer {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) hub: Hub,
    pub(crate) auth: Arc<dyn Authenticator>,
    pub(crate) dialect: DialectId,
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

impl std::fmt::Debug for WsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsServer")
            .field("config", &self.inner.config)
            .finish()
    }
}

impl WsServer {
    /// Serve `hub`, authenticating with `auth`. Registers the native dialect with the hub.
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
        let dialect = hub.register_dialect(Arc::new(native::NativeEncoder));
        WsServer {
            inner: Arc::new(Inner {
                hub,
                auth,
                dialect,
                config,
                allowed_origins,
                open: std::sync::atomic::AtomicUsize::new(0),
            }),
        }
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
        self.serve_halves(stream, sink, None, identity, info).await;
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
        // One box for the whole connection: the caller's task then holds only a pointer,
        // not the reader under construction and the connection's state side by side.
        let conn: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> =
            Box::pin(async move {
                let (stream, sink, replies) =
                    crate::io::framed(read, write, &self.inner.config).await;
                self.serve_halves(stream, sink, Some(replies), identity, info)
                    .await;
            });
        conn.await;
    }

    /// Not an `async fn`: its arguments would be kept twice in the future (once as passed,
    /// once moved into the body), and this future lives as long as the connection.
    #[allow(clippy::manual_async_fn)] // on purpose: see above
    fn serve_halves<R, W>(
        &self,
        mut stream: R,
        mut sink: W,
        replies: Option<Arc<Replies>>,
        identity: Option<Identity>,
        mut info: ConnInfo,
    ) -> impl std::future::Future<Output = ()> + Send + '_
    where
        R: Stream<Item = Result<Frame, WsError>> + Send + Unpin + 'static,
        W: Sink<Frame, Error = WsError> + Send + Unpin + 'static,
    {
        async move {
            let _open = Open::new(&self.inner.open);
            let cfg = &self.inner.config;
            let identity = match identity {
                Some(i) => i,
                None => match Box::pin(self.auth_frame(&mut stream, &mut sink)).await {
                    Some((i, resume)) => {
                        info.resume |= resume;
                        i
                    }
                    None => return,
                },
            };
            let hub = &self.inner.hub;
            let mut options =
                realtime_core::ConnectOptions::chat(identity.clone()).dialect(self.inner.dialect);
            options.device = info.user_agent;
            if info.resume {
                options = options.recovering();
            }
            // Boxed here and below: a large future held inline would make every idle
            // connection's task carry its space.
            let session = match Box::pin(hub.connect(options)).await {
                Ok(s) => s,
                Err(e) => {
                    let code = if matches!(e, Error::Forbidden(_)) {
                        close::TOO_MANY_CONNECTIONS
                    } else {
                        1011
                    };
                    let _ = sink.send(native_error(None, &e)).await;
                    let _ = sink.send(Frame::Close(Some((code, e.to_string())))).await;
                    return;
                }
            };
            if sink
                .send(Frame::Text(native::auth_ok(&identity.user_id)))
                .await
                .is_err()
            {
                return;
            }
            let session_id = session.id();
            // Only the id is needed from here on; the claims go now, not at the end.
            let Identity {
                user_id: user,
                username,
                claims,
            } = identity;
            drop((username, claims));
            let (ctl_tx, ctl_rx) = ctl::channel(64);
            let mut writer = tokio::spawn(write_loop(sink, session, ctl_rx, replies, cfg.clone()));
            let mut st = Conn {
                limiter: RateLimiter::direct_with_clock(
                    Quota::per_second(cfg.rate_per_second).allow_burst(cfg.rate_burst),
                    rate_clock(),
                ),
                strikes: 0,
                sends: Sends::default(),
                ctl_tx,
                user,
                session_id,
            };
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
                    Some(reply) = st.sends.next(), if !st.sends.is_empty() => {
                        if let Some(r) = reply
                            && st.ctl_tx.send(r).await.is_err()
                        {
                            break;
                        }
                        continue;
                    }
                    r = stream.next() => {
                        last_frame = tokio::time::Instant::now();
                        Some(r)
                    }
                    () = &mut idle_timer => {
                        let due = last_frame + idle;
                        if due > tokio::time::Instant::now() {
                            idle_timer.as_mut().reset(due);
                            continue;
                        }
                        None
                    }
                };
                if !Box::pin(self.on_frame(next, &mut st)).await {
                    break;
                }
            }
            // Sends already queued are committed anyway; their acks go out if the writer lives.
            while let Some(reply) = st.sends.next().await {
                if let Some(r) = reply {
                    let _ = st.ctl_tx.try_send(r);
                }
            }
            drop(st);
            // A finished JoinHandle must not be polled again.
            if !writer_done {
                let _ = tokio::time::timeout(cfg.write_timeout, &mut writer).await;
            }
            writer.abort();
            Box::pin(hub.disconnect(session_id)).await;
            // The close frame is out: read and drop what the client still sends until its
            // own close (or the end, or `close_drain`), so that closing the socket does
            // not reset it under the replies and close frame the client has yet to read.
            let until = tokio::time::Instant::now() + cfg.close_drain;
            while !cfg.close_drain.is_zero()
                && let Ok(Some(Ok(f))) = tokio::time::timeout_at(until, stream.next()).await
            {
                if matches!(f, Frame::Close(_)) {
                    break;
                }
            }
        }
    }

    /// One frame from the client (or the end of the stream; `None`: the idle timeout): run
    /// it, queue the reply.
    /// Returns whether to go on reading. Kept out of `serve` and boxed there, so an idle
    /// connection's task does not carry the space of every command's futures.
    async fn on_frame(&self, next: Option<Option<Result<Frame, WsError>>>, st: &mut Conn) -> bool {
        let cfg = &self.inner.config;
        let frame = match next {
            None => {
                let _ = st
                    .ctl_tx
                    .send(close_frame(close::IDLE, "idle timeout"))
                    .await;
                return false;
            }
            Some(None) | Some(Some(Ok(Frame::Close(_)))) => return false,
            Some(Some(Err(e))) => {
                // The close code that says why (RFC 6455 §7.4.1); none when the
                // connection is gone already.
                let close = match e {
                    WsError::TooLarge => Some((close::TOO_LARGE, "message too large")),
                    WsError::InvalidUtf8 => Some((close::INVALID_DATA, "text is not UTF-8")),
                    WsError::Protocol(_) => Some((close::PROTOCOL_ERROR, "protocol error")),
                    WsError::Closed | WsError::Other(_) => None,
                };
                if let Some((code, reason)) = close {
                    let _ = st.ctl_tx.send(close_frame(code, reason)).await;
                }
                return false;
            }
            Some(Some(Ok(f))) => f,
        };
        let text = match frame {
            Frame::Text(t) => t,
            Frame::Binary(_) => {
                let e = Error::Invalid {
                    field: "frame",
                    reason: "binary frames are not supported; send JSON text".into(),
                };
                if st.ctl_tx.send(native_error(None, &e)).await.is_err() {
                    return false;
                }
                return true;
            }
            Frame::Ping(_) | Frame::Pong(_) | Frame::Close(_) => return true,
        };
        if let Err(not_until) = st.limiter.check() {
            st.strikes += 1;
            let wait = not_until.wait_time_from(governor::clock::Clock::now(st.limiter.clock()));
            let e = Error::RateLimited {
                retry_after_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1),
            };
            let id = native::parse(&text).ok().and_then(|(id, _)| id);
            if st.strikes > cfg.rate_strikes {
                let _ = st.ctl_tx.send(native_error(id.as_ref(), &e)).await;
                let _ = st
                    .ctl_tx
                    .send(close_frame(close::RATE_LIMITED, "rate limit"))
                    .await;
                return false;
            }
            if st.ctl_tx.send(native_error(id.as_ref(), &e)).await.is_err() {
                return false;
            }
            return true;
        }
        st.strikes = 0;
        let (id, cmd) = match native::parse(&text) {
            Ok(x) => x,
            Err((id, e)) => {
                if st.ctl_tx.send(native_error(id.as_ref(), &e)).await.is_err() {
                    return false;
                }
                return true;
            }
        };
        let cmd = match cmd {
            Command::Send(req) if st.sends.len() < cfg.pipelined_sends => {
                let pending = match self.inner.hub.submit_message(&st.user, req).await {
                    Ok(pending) => pending,
                    Err(e) => realtime_core::PendingMessage::ready(Err(e)),
                };
                st.sends.push_back(id, pending);
                return true;
            }
            cmd => cmd,
        };
        // Everything else sees the effect of the st.sends before it.
        let mut gone = false;
        while let Some(reply) = st.sends.next().await {
            if let Some(r) = reply
                && st.ctl_tx.send(r).await.is_err()
            {
                gone = true;
            }
        }
        if gone {
            return false;
        }
        let reply = match cmd {
            Command::Ping => Some(Frame::Text(native::pong(id.as_ref()))),
            Command::Auth { .. } => {
                let e = Error::Invalid {
                    field: "type",
                    reason: "already authenticated".into(),
                };
                Some(native_error(id.as_ref(), &e))
            }
            // Boxed: the Hub operations' futures are large, and an idle connection
            // should not carry their space.
            cmd => match Box::pin(self.execute(&st.user, st.session_id, cmd, id.as_ref())).await {
                Ok(Some(data)) => id.as_ref().map(|id| Frame::Text(native::ack(id, data))),
                // Queued by the Hub already, behind the recovery's replay.
                Ok(None) => None,
                Err(e) => Some(native_error(id.as_ref(), &e)),
            },
        };
        if let Some(r) = reply
            && st.ctl_tx.send(r).await.is_err()
        {
            return false;
        }
        true
    }

    /// The first frame's `auth`: the identity, and whether the client resumes.
    async fn auth_frame<R, W>(&self, stream: &mut R, sink: &mut W) -> Option<(Identity, bool)>
    where
        R: Stream<Item = Result<Frame, WsError>> + Unpin,
        W: Sink<Frame, Error = WsError> + Unpin,
    {
        let cfg = &self.inner.config;
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
        let result = match first.as_deref().map(native::parse) {
            Some(Ok((_, Command::Auth { token, resume }))) => self
                .inner
                .auth
                .authenticate(&token)
                .await
                .map(|i| (i, resume)),
            Some(Ok(_)) | Some(Err(_)) => Err(Error::Unauthenticated(
                "the first frame must be auth".into(),
            )),
            None => Err(Error::Unauthenticated("no auth frame in time".into())),
        };
        match result {
            Ok(i) => Some(i),
            Err(e) => {
                let _ = sink.send(native_error(None, &e)).await;
                let _ = sink
                    .send(close_frame(close::UNAUTHORIZED, "unauthorized"))
                    .await;
                None
            }
        }
    }

    /// Run `cmd`; `Ok(None)` when its ack is queued already (a room's `join` or
    /// `subscribe`, answered behind the replay).
    async fn execute(
        &self,
        user: &str,
        session: u64,
        cmd: Command,
        id: Option<&Value>,
    ) -> Result<Option<Value>, Error> {
        let hub = &self.inner.hub;
        Ok(Some(match cmd {
            Command::Ping | Command::Auth { .. } => Value::Null,
            Command::Join { room_id, since } => {
                self.resume(session, &room_id, since, true, id).await?;
                return Ok(None);
            }
            Command::Leave { room_id } => {
                hub.leave_room(user, &room_id).await?;
                json!({})
            }
            Command::Subscribe { channel, since } => match channel.room_id() {
                Some(room_id) => {
                    self.resume(session, room_id, since, false, id).await?;
                    return Ok(None);
                }
                None => {
                    hub.subscribe(session, &channel, &realtime_core::Credentials::NONE)
                        .await?;
                    json!({ "channel": channel })
                }
            },
            Command::Unsubscribe { channel } => {
                hub.unsubscribe(session, &channel).await?;
                json!({ "channel": channel })
            }
            Command::Send(req) => serde_json::to_value(hub.send_message(user, req).await?)?,
            Command::Edit {
                message_id,
                content,
            } => serde_json::to_value(hub.edit_message(user, &message_id, content).await?)?,
            Command::Delete { message_id } => {
                serde_json::to_value(hub.delete_message(user, &message_id).await?)?
            }
            Command::React {
                message_id,
                emoji,
                remove,
            } => {
                json!({ "changed": hub.react(user, &message_id, &emoji, !remove).await? })
            }
            Command::Read {
                message_id: Some(m),
                ..
            } => json!({ "seq": hub.read_message(user, &m).await? }),
            Command::Read {
                room_id: Some(r),
                seq,
                ..
            } => json!({ "seq": hub.mark_read(user, &r, seq).await? }),
            Command::Read { .. } => {
                return Err(Error::Invalid {
                    field: "data",
                    reason: "read needs message_id or room_id".into(),
                });
            }
            Command::Typing { room_id, is_typing } => {
                hub.typing(user, &room_id, is_typing).await?;
                json!({})
            }
            Command::Presence { status } => {
                hub.set_status(user, UserStatus::parse(&status)?).await?;
                json!({})
            }
            Command::History {
                room_id,
                before,
                limit,
            } => serde_json::to_value(
                hub.history(user, &room_id, before, limit.unwrap_or(50))
                    .await?,
            )?,
        }))
    }

    /// A room's `join` (`join`: joining it if not a member) or `subscribe`, with the
    /// recovery of what was missed since `since`: [`Hub::resume_room`] queues the replay,
    /// then the ack (for a command with an `id`), then the room's live frames. The ack's
    /// `data`: `{channel, room_id, epoch, latest_seq}`, plus `recovered` and `replayed`
    /// with `since`.
    async fn resume(
        &self,
        session: u64,
        room_id: &str,
        since: Option<realtime_core::Since>,
        join: bool,
        id: Option<&Value>,
    ) -> Result<(), Error> {
        let with_since = since.is_some();
        self.inner
            .hub
            .resume_room(session, room_id, since.as_ref(), join, |room, r| {
                let id = id?;
                let channel = format!("room:{}", room.id);
                let data = if with_since {
                    json!({
                        "channel": channel, "room_id": room.id, "epoch": r.epoch,
                        "latest_seq": r.latest_seq, "recovered": r.recovered,
                        "replayed": r.messages.len()
                    })
                } else {
                    json!({
                        "channel": channel, "room_id": room.id, "epoch": r.epoch,
                        "latest_seq": r.latest_seq
                    })
                };
                Some(native::ack(id, data))
            })
            .await
            .map(drop)
    }
}

fn native_error(id: Option<&Value>, e: &Error) -> Frame {
    Frame::Text(native::error(id, e))
}

fn close_code(reason: &CloseReason) -> u16 {
    match reason {
        CloseReason::Shutdown => close::SHUTDOWN,
        CloseReason::SlowConsumer => close::SLOW_CONSUMER,
        CloseReason::Kicked(_) => close::KICKED,
    }
}

/// Frames the reading side wrote on its own (tungstenite's pongs, on the axum path; actix-ws
/// answers pings itself), waiting for the writer to send them between two whole frames.
#[derive(Default)]
#[cfg_attr(not(feature = "axum"), allow(dead_code))]
pub(crate) struct Replies {
    state: std::sync::Mutex<RepliesState>,
}

#[derive(Default)]
struct RepliesState {
    /// Whole frames only.
    bytes: Vec<u8>,
    /// The writer, waiting for `bytes` to get something.
    waker: Option<std::task::Waker>,
}

#[cfg_attr(not(feature = "axum"), allow(dead_code))]
impl Replies {
    fn state(&self) -> std::sync::MutexGuard<'_, RepliesState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Append whole frames and wake the writer; `Err` (nothing appended) past `max` bytes.
    pub(crate) fn push(&self, frames: &[u8], max: usize) -> Result<(), ()> {
        let waker = {
            let mut st = self.state();
            if st.bytes.len() + frames.len() > max {
                return Err(());
            }
            st.bytes.extend_from_slice(frames);
            st.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// Move the waiting bytes to the end of `out`.
    pub(crate) fn take_into(&self, out: &mut Vec<u8>) {
        let mut st = self.state();
        if !st.bytes.is_empty() {
            out.extend_from_slice(&st.bytes);
            st.bytes.clear();
        }
    }

    /// `Ready` when bytes wait; otherwise `cx` is woken by the next [`Replies::push`].
    pub(crate) fn poll_waiting(&self, cx: &mut std::task::Context<'_>) -> Poll<()> {
        let mut st = self.state();
        if !st.bytes.is_empty() {
            return Poll::Ready(());
        }
        realtime_core::session::keep_waker(&mut st.waker, cx);
        Poll::Pending
    }
}

/// Run `fut` to completion within `limit`, arming the timer only if the first poll does
/// not finish it: a write the socket takes at once — nearly all of them — costs no timer.
/// `None` when the time ran out.
async fn within<F: std::future::Future>(limit: Duration, fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let first = std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await;
    match first {
        Poll::Ready(out) => Some(out),
        Poll::Pending => tokio::time::timeout(limit, fut).await.ok(),
    }
}

/// What wakes the writer.
enum Wake {
    Ctl(Option<Frame>),
    Out(Option<Outbound>),
    Ping,
    Replies,
}

/// The writing half of a connection, in its own task. A plain `fn` returning an `async`
/// block for the reason given at `serve_halves`.
///
/// It waits on all its sources at once — the reader's replies, the session's queue, the
/// ping interval and owed pongs, in that order of priority — with one waker left in each
/// (no future built and dropped per wait), and arms the write timeout only for a write
/// the socket does not take at once.
#[allow(clippy::manual_async_fn)] // on purpose: see above
fn write_loop<W>(
    mut sink: W,
    mut session: Session,
    mut ctl: ctl::Receiver,
    replies: Option<Arc<Replies>>,
    cfg: WsConfig,
) -> impl std::future::Future<Output = ()> + Send
where
    W: Sink<Frame, Error = WsError> + Send + Unpin,
{
    async move {
        // Random first ping offset so reconnect storms do not ping in lockstep.
        let jitter = (uuid::Uuid::new_v4().as_u128() % 1000) as u32;
        let first = cfg
            .ping_interval
            .mul_f64(f64::from(jitter) / 1000.0)
            .max(Duration::from_millis(1));
        let mut ping =
            tokio::time::interval_at(tokio::time::Instant::now() + first, cfg.ping_interval);
        let wt = cfg.write_timeout;
        macro_rules! io {
            ($e:expr) => {
                match within(wt, $e).await {
                    Some(Ok(())) => {}
                    _ => return,
                }
            };
        }
        loop {
            let wake = std::future::poll_fn(|cx| {
                if let Poll::Ready(c) = ctl.poll_recv(cx) {
                    return Poll::Ready(Wake::Ctl(c));
                }
                if let Poll::Ready(o) = session.poll_recv(cx) {
                    return Poll::Ready(Wake::Out(o));
                }
                if ping.poll_tick(cx).is_ready() {
                    return Poll::Ready(Wake::Ping);
                }
                if let Some(r) = &replies
                    && r.poll_waiting(cx).is_ready()
                {
                    return Poll::Ready(Wake::Replies);
                }
                Poll::Pending
            })
            .await;
            match wake {
                Wake::Ctl(None) => {
                    let _ = within(
                        wt,
                        sink.send(Frame::Close(Some((close::NORMAL, String::new())))),
                    )
                    .await;
                    return;
                }
                Wake::Ctl(Some(f @ Frame::Close(_))) => {
                    let _ = within(wt, sink.send(f)).await;
                    return;
                }
                Wake::Ctl(Some(f)) => {
                    io!(sink.feed(f));
                    while let Some(more) = ctl.try_recv() {
                        let done = matches!(more, Frame::Close(_));
                        io!(sink.feed(more));
                        if done {
                            let _ = within(wt, sink.flush()).await;
                            return;
                        }
                    }
                    io!(sink.flush());
                }
                Wake::Out(Some(Outbound::Frame(b))) => {
                    // One deadline for the whole batch: feed what is queued — pushes, then
                    // replies waiting too (a sender's ack and its own message go out in one
                    // write) — and flush once.
                    let batch = async {
                        sink.feed(Frame::Text(b)).await?;
                        for _ in 1..cfg.batch_frames {
                            match session.try_recv() {
                                Some(Outbound::Frame(b)) => sink.feed(Frame::Text(b)).await?,
                                Some(Outbound::Close(r)) => {
                                    sink.flush().await?;
                                    return Ok(Some(Frame::Close(Some((
                                        close_code(&r),
                                        r.text().to_owned(),
                                    )))));
                                }
                                None => break,
                            }
                        }
                        while let Some(f) = ctl.try_recv() {
                            if matches!(f, Frame::Close(_)) {
                                sink.flush().await?;
                                return Ok(Some(f));
                            }
                            sink.feed(f).await?;
                        }
                        sink.flush().await.map(|()| None)
                    };
                    match within(wt, batch).await {
                        Some(Ok(None)) => {}
                        Some(Ok(Some(close))) => {
                            let _ = within(wt, sink.send(close)).await;
                            return;
                        }
                        _ => return,
                    }
                }
                Wake::Out(Some(Outbound::Close(r))) => {
                    let _ = within(
                        wt,
                        sink.send(Frame::Close(Some((close_code(&r), r.text().to_owned())))),
                    )
                    .await;
                    return;
                }
                Wake::Out(None) => return,
                Wake::Ping => io!(sink.send(Frame::Ping(bytes::Bytes::new()))),
                // Pongs owed to the client: flushing the sink writes them.
                Wake::Replies => io!(sink.flush()),
            }
        }
    }
}

/// The reader's replies to the writer: a bounded single-producer, single-consumer queue.
/// Unlike a channel it allocates nothing until used, which idle connections notice.
mod ctl {
    use crate::frame::Frame;
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex, MutexGuard};
    use std::task::{Context, Poll, Waker};
    use tokio::sync::Semaphore;

    #[derive(Default)]
    struct Queue {
        frames: VecDeque<Frame>,
        /// The writer, waiting for a frame (or the sender's end).
        waker: Option<Waker>,
        sender_gone: bool,
    }

    struct Shared {
        queue: Mutex<Queue>,
        room: Semaphore,
    }

    impl Shared {
        fn queue(&self) -> MutexGuard<'_, Queue> {
            self.queue.lock().unwrap_or_else(|p| p.into_inner())
        }

        fn push(&self, f: Frame) {
            let waker = {
                let mut q = self.queue();
                q.frames.push_back(f);
                q.waker.take()
            };
            if let Some(w) = waker {
                w.wake();
            }
        }
    }

    /// The reader's end.
    pub(crate) struct Sender(Arc<Shared>);
    /// The writer's end.
    pub(crate) struct Receiver(Arc<Shared>);

    /// A queue of at most `cap` frames.
    pub(crate) fn channel(cap: usize) -> (Sender, Receiver) {
        let shared = Arc::new(Shared {
            queue: Mutex::default(),
            room: Semaphore::new(cap.max(1)),
        });
        (Sender(shared.clone()), Receiver(shared))
    }

    impl Sender {
        /// Queue `f`, waiting for room; `Err` once the writer is gone.
        pub(crate) async fn send(&self, f: Frame) -> Result<(), Frame> {
            match self.0.room.acquire().await {
                Ok(p) => p.forget(),
                Err(_) => return Err(f),
            }
            self.0.push(f);
            Ok(())
        }

        /// Queue `f` if there is room now.
        pub(crate) fn try_send(&self, f: Frame) -> Result<(), Frame> {
            match self.0.room.try_acquire() {
                Ok(p) => p.forget(),
                Err(_) => return Err(f),
            }
            self.0.push(f);
            Ok(())
        }
    }

    impl Drop for Sender {
        fn drop(&mut self) {
            let waker = {
                let mut q = self.0.queue();
                q.sender_gone = true;
                q.waker.take()
            };
            if let Some(w) = waker {
                w.wake();
            }
        }
    }

    impl Receiver {
        /// The next frame; `None` once the sender is gone and the queue is empty.
        #[cfg(test)]
        pub(crate) async fn recv(&mut self) -> Option<Frame> {
            std::future::poll_fn(|cx| self.poll_recv(cx)).await
        }

        /// [`Receiver::recv`] as a poll: `Pending` leaves `cx` to be woken by the next
        /// frame or by the sender's end.
        pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Frame>> {
            let mut q = self.0.queue();
            if let Some(f) = q.frames.pop_front() {
                drop(q);
                self.0.room.add_permits(1);
                return Poll::Ready(Some(f));
            }
            if q.sender_gone {
                return Poll::Ready(None);
            }
            realtime_core::session::keep_waker(&mut q.waker, cx);
            Poll::Pending
        }

        /// The next frame if one is queued.
        pub(crate) fn try_recv(&mut self) -> Option<Frame> {
            let f = self.0.queue().frames.pop_front()?;
            self.0.room.add_permits(1);
            Some(f)
        }
    }

    impl Drop for Receiver {
        fn drop(&mut self) {
            self.0.room.close();
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[tokio::test]
        async fn bounded_in_order_and_ends_with_the_sender() {
            let (tx, mut rx) = channel(2);
            tx.send(Frame::Ping(bytes::Bytes::new()))
                .await
                .expect("room");
            tx.try_send(Frame::Pong(bytes::Bytes::new())).expect("room");
            assert!(tx.try_send(Frame::Close(None)).is_err(), "full at 2");
            assert!(matches!(rx.recv().await, Some(Frame::Ping(_))));
            tx.try_send(Frame::Close(None)).expect("room again");
            drop(tx);
            assert!(matches!(rx.recv().await, Some(Frame::Pong(_))));
            assert!(matches!(rx.recv().await, Some(Frame::Close(None))));
            assert!(rx.recv().await.is_none(), "sender gone, queue empty");
            let (tx, rx) = channel(1);
            drop(rx);
            assert!(tx.send(Frame::Close(None)).await.is_err(), "writer gone");
        }
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
