//! Sessions: one per connection, each with a bounded outbound queue.
//!
//! The Hub pushes already-encoded frames ([`bytes::Bytes`], shared by every session of
//! the same dialect) into a session's queue without ever waiting. The queue is bounded
//! twice: by frame count and by queued bytes ([`crate::HubConfig`]). A session that
//! overflows either bound is a slow consumer: it gets [`Outbound::Close`] with
//! [`CloseReason::SlowConsumer`] and receives nothing more; everyone else keeps receiving.

use crate::channel::Channel;
use crate::ids::SocketId;
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// A session's id, unique within one Hub.
pub type SessionId = u64;

/// Index of a dialect registered with [`crate::Hub::register_dialect`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DialectId(pub(crate) u16);

/// Why a session or its connection is closed. Each dialect says it in its own protocol:
/// the native dialect's close codes (`realtime_transport_ws::native::close_code`),
/// Pusher's 4000–4299 ranges and `pusher:error`, Socket.IO's transport close.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The server is shutting down. Reconnect, preferably to another node.
    Shutdown,
    /// The outbound queue overflowed. Reconnect and recover with `since`.
    SlowConsumer,
    /// The host application closed it, with a reason. Do not reconnect.
    Kicked(String),
    /// No, an invalid or an expired credential. Do not reconnect with the same one.
    Unauthorized,
    /// The client kept sending over the rate limit after being told. Reconnect later.
    RateLimited,
    /// The client sent nothing, not even a heartbeat, for the idle timeout.
    Idle,
    /// The user has as many connections as allowed. Do not reconnect at once.
    TooManyConnections,
}

impl CloseReason {
    /// Whether a client should reconnect.
    pub fn reconnect(&self) -> bool {
        matches!(
            self,
            CloseReason::Shutdown
                | CloseReason::SlowConsumer
                | CloseReason::RateLimited
                | CloseReason::Idle
        )
    }

    /// A short text for the close frame.
    pub fn text(&self) -> &str {
        match self {
            CloseReason::Shutdown => "server shutting down",
            CloseReason::SlowConsumer => "slow consumer",
            CloseReason::Kicked(r) => r,
            CloseReason::Unauthorized => "unauthorized",
            CloseReason::RateLimited => "rate limit",
            CloseReason::Idle => "idle timeout",
            CloseReason::TooManyConnections => "too many connections",
        }
    }
}

/// What a session's writer receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// An encoded frame to write as is.
    Frame(Bytes),
    /// Close the connection with this reason; nothing follows.
    Close(CloseReason),
}

/// The outbound queue: a plain deque under a lock that is only ever held for a push or a
/// pop (never across an await), with the waiting writer's waker under the same lock (so a
/// push and a writer going to sleep cannot miss each other). Lighter than a channel: an
/// idle session allocates nothing for it, and waiting costs no registration per wait.
#[derive(Debug, Default)]
struct Queue {
    frames: VecDeque<Bytes>,
    /// The writer waiting for the queue to become non-empty (or to end).
    waker: Option<Waker>,
    /// A graceful close, delivered after the frames queued before it.
    close_behind: Option<CloseReason>,
    /// The Hub let go of the session: after the queued frames, `recv` returns `None`.
    detached: bool,
}

/// A channel whose live frames a session holds back while it is being recovered
/// ([`SessionShared::hold`]), and the frames held so far, oldest first. Once released,
/// the entry stays a while as a floor: a message committed before the replay was read
/// can reach the fan-out after the release, and is the replay's duplicate.
#[derive(Debug)]
struct Hold {
    channel: Channel,
    frames: VecDeque<Held>,
    bytes: usize,
    /// Released: drop message frames with a `seq` up to this one, until a later message
    /// passes or [`FLOOR_TTL`] is over.
    floor: Option<(u64, std::time::Instant)>,
}

/// How long a released hold keeps dropping the replay's duplicates: far longer than an
/// event takes from its commit to the fan-out.
const FLOOR_TTL: std::time::Duration = std::time::Duration::from_secs(10);

impl Hold {
    fn expired(&self) -> bool {
        self.floor.is_some_and(|(_, at)| at.elapsed() > FLOOR_TTL)
    }
}

/// A held frame and, for a message event, its room `seq` (a replay covering it makes it
/// a duplicate).
#[derive(Debug)]
struct Held {
    frame: Bytes,
    seq: Option<u64>,
}

#[derive(Debug)]
// In declaration order (`repr(C)`): what every push reads comes first and shares a cache
// line; what recovery and closing use comes last.
#[repr(C)]
pub(crate) struct SessionShared {
    queued_bytes: AtomicUsize,
    max_bytes: usize,
    max_frames: usize,
    /// No more frames are queued.
    stopped: AtomicBool,
    /// Whether `holds` has any: the fan-out's one extra check per frame.
    holding: AtomicBool,
    /// The close jumps the queue (slow consumer).
    urgent: AtomicBool,
    pub(crate) dialect: DialectId,
    /// A chat session ([`crate::Join::Chat`]): counted by presence, follows its user's
    /// rooms. (Beside `dialect`, in what would be padding.)
    pub(crate) chat: bool,
    pub(crate) id: SessionId,
    queue: Mutex<Queue>,
    /// The session's user; `None` for an anonymous session.
    pub(crate) user_id: Option<Arc<str>>,
    close: Mutex<Option<CloseReason>>,
    /// Channels held back during recovery (usually none).
    holds: Mutex<Vec<Hold>>,
}

/// Result of [`SessionShared::push`].
pub(crate) enum Push {
    Queued,
    Overflow,
    Gone,
    /// The frame alone is larger than the queue's byte bound: not queued, and not the
    /// session's fault (no slow-consumer close).
    TooLarge,
    /// A message the session's recovery replay already queued: not queued again.
    Duplicate,
}

impl SessionShared {
    pub(crate) fn new(
        id: SessionId,
        user_id: Option<Arc<str>>,
        dialect: DialectId,
        chat: bool,
        max_bytes: usize,
        max_frames: usize,
    ) -> Self {
        SessionShared {
            id,
            user_id,
            chat,
            dialect,
            queued_bytes: AtomicUsize::new(0),
            max_bytes,
            max_frames: max_frames.max(1),
            stopped: AtomicBool::new(false),
            urgent: AtomicBool::new(false),
            close: Mutex::new(None),
            queue: Mutex::default(),
            holding: AtomicBool::new(false),
            holds: Mutex::default(),
        }
    }

    fn holds(&self) -> MutexGuard<'_, Vec<Hold>> {
        self.holds.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hold back `channel`'s live frames from now on (see [`SessionShared::push_on`])
    /// until [`SessionShared::release`]. Holding a channel already held changes nothing.
    pub(crate) fn hold(&self, channel: &Channel) {
        let mut holds = self.holds();
        holds.retain(|h| !h.expired());
        match holds.iter_mut().find(|h| h.channel == *channel) {
            // A floor left by an earlier recovery holds again.
            Some(h) => h.floor = None,
            None => holds.push(Hold {
                channel: channel.clone(),
                frames: VecDeque::new(),
                bytes: 0,
                floor: None,
            }),
        }
        self.holding.store(true, Ordering::SeqCst);
    }

    /// Queue `replay` (frames of a recovery, in order; bounded by bytes only, not by the
    /// frame count), then the frames held on `channel` except message events with a `seq`
    /// of at most `covered` (the replay holds them), and stop holding it; later message
    /// frames up to `covered` are dropped too, until one past it passes. Atomic with
    /// respect to [`SessionShared::push_on`]: every frame of `channel` pushed before this
    /// call is queued before every frame pushed after it.
    ///
    /// Returns `Overflow` (or `TooLarge`, for one frame over the byte bound) when the
    /// session's queue cannot take it all: nothing more is queued, and the caller closes
    /// the session as a slow consumer.
    pub(crate) fn release(&self, channel: &Channel, replay: &[Bytes], covered: u64) -> Push {
        let mut holds = self.holds();
        let held = match holds.iter_mut().find(|h| h.channel == *channel) {
            Some(h) => {
                h.bytes = 0;
                h.floor = Some((covered, std::time::Instant::now()));
                std::mem::take(&mut h.frames)
            }
            None => VecDeque::new(),
        };
        let frames = replay.iter().chain(
            held.iter()
                .filter(|h| h.seq.is_none_or(|s| s > covered))
                .map(|h| &h.frame),
        );
        let mut result = Push::Queued;
        for f in frames {
            match self.push_bounded(f, usize::MAX) {
                Push::Queued => {}
                other => {
                    result = other;
                    break;
                }
            }
        }
        drop(holds);
        result
    }

    /// Queue `frame` on `channel` without waiting: held back when the channel is held
    /// ([`SessionShared::hold`]), else as [`SessionShared::push`]. `seq` gives a message
    /// event's room `seq`, asked only when the frame is held.
    #[inline]
    pub(crate) fn push_on(
        &self,
        channel: &Channel,
        frame: &Bytes,
        seq: impl FnOnce() -> Option<u64>,
    ) -> Push {
        if !self.holding.load(Ordering::SeqCst) {
            return self.push(frame);
        }
        let mut holds = self.holds();
        let Some(i) = holds.iter().position(|h| h.channel == *channel) else {
            // Pushed under the holds lock, so a release running now cannot interleave.
            let r = self.push(frame);
            drop(holds);
            return r;
        };
        if let Some((floor, _)) = holds[i].floor {
            let seq = seq();
            if seq.is_some_and(|s| s <= floor) && !holds[i].expired() {
                return Push::Duplicate;
            }
            if seq.is_some() || holds[i].expired() {
                holds.swap_remove(i);
                self.holding.store(!holds.is_empty(), Ordering::SeqCst);
            }
            let r = self.push(frame);
            drop(holds);
            return r;
        }
        let hold = &mut holds[i];
        if self.is_closed() {
            return Push::Gone;
        }
        if frame.len() > self.max_bytes {
            return Push::TooLarge;
        }
        if hold.frames.len() >= self.max_frames || hold.bytes + frame.len() > self.max_bytes {
            return Push::Overflow;
        }
        hold.bytes += frame.len();
        hold.frames.push_back(Held {
            frame: frame.clone(),
            seq: seq(),
        });
        Push::Queued
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Frames queued and not yet taken by the writer.
    pub(crate) fn queued_frames(&self) -> usize {
        self.queue().frames.len()
    }

    /// The Hub let go of the session (disconnect, or the Hub dropped): the writer gets the
    /// frames queued so far, then `None`.
    pub(crate) fn detach(&self) {
        let waker = {
            let mut q = self.queue();
            q.detached = true;
            q.waker.take()
        };
        wake(waker);
    }

    /// Wake the waiting writer, if any.
    fn wake_writer(&self) {
        let waker = self.queue().waker.take();
        wake(waker);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    fn is_urgent(&self) -> bool {
        self.urgent.load(Ordering::Acquire)
    }

    /// Queue `frame` without waiting.
    #[inline]
    pub(crate) fn push(&self, frame: &Bytes) -> Push {
        self.push_bounded(frame, self.max_frames)
    }

    /// [`SessionShared::push`] with at most `max_frames` queued (a recovery's replay may
    /// hold more frames than the live bound, as long as their bytes fit).
    #[inline]
    fn push_bounded(&self, frame: &Bytes, max_frames: usize) -> Push {
        if self.is_closed() {
            return Push::Gone;
        }
        let len = frame.len();
        if len > self.max_bytes {
            return Push::TooLarge;
        }
        if self.queued_bytes.fetch_add(len, Ordering::AcqRel) + len > self.max_bytes {
            self.queued_bytes.fetch_sub(len, Ordering::AcqRel);
            return Push::Overflow;
        }
        let waker = {
            let mut q = self.queue();
            if q.detached {
                drop(q);
                self.queued_bytes.fetch_sub(len, Ordering::AcqRel);
                return Push::Gone;
            }
            if q.frames.len() >= max_frames {
                drop(q);
                self.queued_bytes.fetch_sub(len, Ordering::AcqRel);
                return Push::Overflow;
            }
            q.frames.push_back(frame.clone());
            // The writer leaves its waker only when it finds the queue empty, and drains
            // it to empty before it waits again: the first push after takes the waker,
            // the rest of the batch finds none — one wake-up per batch, not per frame.
            q.waker.take()
        };
        wake(waker);
        Push::Queued
    }

    /// Close with `reason` (the first reason wins; returns whether this call closed it).
    /// `graceful`: the close is delivered after the frames already queued (shutdown,
    /// kick); otherwise it jumps the queue and the backlog is dropped (slow consumer).
    pub(crate) fn close(&self, graceful: bool, reason: CloseReason) -> bool {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return false;
        }
        if graceful {
            self.queue().close_behind = Some(reason);
        } else {
            *self.close.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
            self.urgent.store(true, Ordering::Release);
        }
        self.wake_writer();
        true
    }

    fn take_close(&self) -> Option<CloseReason> {
        self.close.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// One connection's end of the Hub: read frames with [`Session::recv`] and write them to
/// the socket. Dropping it disconnects the session from the Hub (presence, subscriptions).
pub struct Session {
    pub(crate) shared: Arc<SessionShared>,
    pub(crate) on_drop: Option<Box<dyn FnOnce(SessionId) + Send + Sync>>,
    pub(crate) done: bool,
    /// The Hub's node number, the first half of the socket id.
    pub(crate) node: u32,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("socket_id", &self.socket_id())
            .field("user_id", &self.shared.user_id)
            .finish()
    }
}

impl Session {
    /// The session id.
    pub fn id(&self) -> SessionId {
        self.shared.id
    }

    /// The public socket id (`"<node>.<session>"`), what a dialect shows its client and
    /// what [`crate::Event::except`] names.
    pub fn socket_id(&self) -> SocketId {
        SocketId::new(self.node, self.shared.id)
    }

    /// The session's user; `None` for an anonymous session.
    pub fn user_id(&self) -> Option<&str> {
        self.shared.user_id.as_deref()
    }

    /// The dialect frames are encoded in.
    pub fn dialect(&self) -> DialectId {
        self.shared.dialect
    }

    /// Bytes queued and not yet received.
    pub fn queued_bytes(&self) -> usize {
        self.shared.queued_bytes.load(Ordering::Acquire)
    }

    /// The next frame, waiting for one. After an [`Outbound::Close`] (returned once: after
    /// the queued frames for a shutdown or kick, ahead of them for a slow consumer) or
    /// when the Hub is gone, `None`.
    pub async fn recv(&mut self) -> Option<Outbound> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// [`Session::recv`] for hand-written futures: `Ready` as `recv` would return,
    /// `Pending` (and `cx` woken on the next push, close or detach) while nothing is
    /// queued. Only the last context polled is woken: one writer per session.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Outbound>> {
        self.poll_queue(Some(cx))
    }

    /// The next frame if one is queued now (for writers that batch: `recv` one, then
    /// `try_recv` the rest before flushing).
    pub fn try_recv(&mut self) -> Option<Outbound> {
        match self.poll_queue(None) {
            Poll::Ready(m) => m,
            Poll::Pending => None,
        }
    }

    /// `Ready(None)` at the end, `Pending` when nothing is queued yet (registering `cx`).
    fn poll_queue(&mut self, cx: Option<&mut Context<'_>>) -> Poll<Option<Outbound>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.shared.is_urgent() {
            self.done = true;
            return Poll::Ready(self.shared.take_close().map(Outbound::Close));
        }
        let mut q = self.shared.queue();
        if let Some(b) = q.frames.pop_front() {
            drop(q);
            self.shared
                .queued_bytes
                .fetch_sub(b.len(), Ordering::AcqRel);
            return Poll::Ready(Some(Outbound::Frame(b)));
        }
        if let Some(r) = q.close_behind.take() {
            self.done = true;
            return Poll::Ready(Some(Outbound::Close(r)));
        }
        if q.detached {
            self.done = true;
            return Poll::Ready(None);
        }
        if let Some(cx) = cx {
            keep_waker(&mut q.waker, cx);
            // An urgent close sets its flag before it takes the waker: seen now or woken.
            if self.shared.is_urgent() {
                drop(q);
                return self.poll_queue(None);
            }
        }
        Poll::Pending
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Nobody reads the queue any more: later pushes are dropped as `Gone`, not
        // counted against a slow consumer.
        self.shared.detach();
        self.shared.queue().frames.clear();
        if let Some(f) = self.on_drop.take() {
            f(self.shared.id);
        }
    }
}

/// Stores `cx`'s waker in `slot` for a later wake, cloning it only when `slot` holds none
/// or one that would wake another task. A poll that returns `Pending` calls this while it
/// holds the lock the producer takes before it takes the waker, so no wake-up is lost.
/// (The session queue, and the WebSocket driver's reply and pong queues, wait this way.)
pub fn keep_waker(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(w) if w.will_wake(cx.waker()) => {}
        w => *w = Some(cx.waker().clone()),
    }
}

/// Wake outside the lock that produced the waker.
fn wake(waker: Option<Waker>) {
    if let Some(w) = waker {
        w.wake();
    }
}

impl DialectId {
    /// The built-in dialect: each event's JSON as is ([`crate::JsonEncoder`]).
    pub const JSON: DialectId = DialectId(0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn session() -> Session {
        Session {
            shared: Arc::new(SessionShared::new(
                1,
                Some(Arc::from("u")),
                DialectId::JSON,
                true,
                1 << 20,
                1024,
            )),
            on_drop: None,
            done: false,
            node: 7,
        }
    }

    /// Only a push into an empty queue wakes the writer; the writer drains to empty before
    /// it waits, so every frame is received, in order, whatever the interleaving.
    #[tokio::test]
    async fn one_wake_per_batch_loses_nothing() {
        let mut s = session();
        let shared = s.shared.clone();
        let consumer = tokio::spawn(async move {
            let mut got = Vec::new();
            while got.len() < 300 {
                match tokio::time::timeout(std::time::Duration::from_secs(5), s.recv()).await {
                    Ok(Some(Outbound::Frame(b))) => got.push(b),
                    other => panic!("stalled or ended after {}: {other:?}", got.len()),
                }
                if got.len() % 7 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            got
        });
        for burst in 0..30 {
            for i in 0..10 {
                let f = Bytes::from(format!("{}", burst * 10 + i));
                assert!(matches!(shared.push(&f), Push::Queued));
            }
            tokio::task::yield_now().await;
        }
        let got = consumer.await.expect("consumer");
        let want: Vec<Bytes> = (0..300).map(|i| Bytes::from(i.to_string())).collect();
        assert_eq!(got, want);
        assert_eq!(shared.queued_frames(), 0);
    }
}
