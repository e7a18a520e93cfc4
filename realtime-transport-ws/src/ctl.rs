//! The reader's replies to the writer: a bounded single-producer, single-consumer queue.
//! Unlike a channel it allocates nothing until used, and gives its buffer back once the
//! writer has drained it and waits again: idle connections (10,000 of them, W3) notice.

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
        if q.frames.capacity() > 0 {
            // Drained: the connection may stay idle for hours; replies are rare.
            q.frames = VecDeque::new();
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

    #[test]
    fn a_drained_queue_gives_its_buffer_back_when_the_writer_waits() {
        let (tx, mut rx) = channel(4);
        let mut cx = Context::from_waker(Waker::noop());
        tx.try_send(Frame::Ping(bytes::Bytes::new())).expect("room");
        assert!(rx.0.queue().frames.capacity() > 0);
        assert!(matches!(
            rx.poll_recv(&mut cx),
            Poll::Ready(Some(Frame::Ping(_)))
        ));
        assert!(rx.poll_recv(&mut cx).is_pending());
        assert_eq!(rx.0.queue().frames.capacity(), 0);
        tx.try_send(Frame::Pong(bytes::Bytes::new())).expect("room");
        assert!(matches!(
            rx.poll_recv(&mut cx),
            Poll::Ready(Some(Frame::Pong(_)))
        ));
    }
}
