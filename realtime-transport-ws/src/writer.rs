//! The writing half of a connection, in its own task: the session's pushes, the
//! dialect's replies, heartbeats and pongs owed, batched into few socket writes under
//! one write timeout; and [`Replies`], the frames the reading side wrote on its own.

use crate::ctl;
use crate::dialect::{Closing, Dialect};
use crate::driver::WsServer;
use crate::frame::{Frame, WsError, close};
use futures_util::{Sink, SinkExt};
use realtime_core::{Outbound, Session};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

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
pub(crate) fn write_loop<W, D>(
    mut sink: W,
    mut session: Session,
    mut ctl: ctl::Receiver,
    replies: Option<Arc<Replies>>,
    server: WsServer<D>,
) -> impl std::future::Future<Output = ()> + Send
where
    W: Sink<Frame, Error = WsError> + Send + Unpin,
    D: Dialect,
{
    async move {
        let cfg = &server.inner.config;
        let dialect = &server.inner.dialect;
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
                                    return Ok(Some(dialect.close(&r)));
                                }
                                None => break,
                            }
                        }
                        while let Some(f) = ctl.try_recv() {
                            if let Frame::Close(c) = f {
                                sink.flush().await?;
                                return Ok(Some(Closing {
                                    notice: None,
                                    code: c.as_ref().map_or(close::NORMAL, |c| c.0),
                                    text: c.map(|c| c.1).unwrap_or_default(),
                                }));
                            }
                            sink.feed(f).await?;
                        }
                        sink.flush().await.map(|()| None)
                    };
                    // Boxed, as the closing sends below: the writer's future is as large as
                    // its largest wait, and an idle connection carries that size all along
                    // (with the batch inline, 1,128 bytes instead of ~655: `-Zprint-type-sizes`).
                    match within(wt, Box::pin(batch)).await {
                        Some(Ok(None)) => {}
                        Some(Ok(Some(closing))) => {
                            let _ =
                                within(wt, Box::pin(send_all(&mut sink, closing.frames()))).await;
                            return;
                        }
                        _ => return,
                    }
                }
                Wake::Out(Some(Outbound::Close(r))) => {
                    let frames = dialect.close(&r).frames();
                    let _ = within(wt, Box::pin(send_all(&mut sink, frames))).await;
                    return;
                }
                Wake::Out(None) => return,
                Wake::Ping => io!(sink.send(dialect.heartbeat())),
                // Pongs owed to the client: flushing the sink writes them.
                Wake::Replies => io!(sink.flush()),
            }
        }
    }
}

/// Feed `frames` and flush once.
async fn send_all<W>(sink: &mut W, frames: impl Iterator<Item = Frame>) -> Result<(), WsError>
where
    W: Sink<Frame, Error = WsError> + Unpin,
{
    for f in frames {
        sink.feed(f).await?;
    }
    sink.flush().await
}
