//! The dialect abstraction: what one wire protocol decides over a WebSocket connection,
//! apart from what every protocol shares.
//!
//! The driver ([`crate::WsServer`]) owns the socket: reading and size limits, the writer
//! that batches the session's frames into few writes, the rate limit, the idle timeout,
//! heartbeats on a timer, slow consumers and the closing handshake. A [`Dialect`] says
//! how the session opens (authentication at the upgrade or in a first frame, anonymous
//! or as a user), how the client is greeted, what a client frame means and how it is
//! answered, what the heartbeat looks like, and how each [`CloseReason`] is said. Its
//! [`Encoder`] is registered with the Hub once, so each event is encoded once per dialect
//! whatever the number of receivers.
//!
//! The native dialect ([`crate::native::NativeDialect`], seed 000's `{type, data}`
//! frames) is the first implementation; the Pusher dialect is another.

use crate::ctl;
use crate::driver::ConnInfo;
use crate::frame::Frame;
use bytes::Bytes;
use realtime_core::{CloseReason, ConnectOptions, Encoder, Error, Hub, Identity, Session};
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};

/// How a connection's session opens: [`Dialect::opening`]'s answer.
#[derive(Debug, Clone)]
pub enum Opening {
    /// Open it now, as these options say (anonymous, a user, a chat session).
    Connect(ConnectOptions),
    /// Wait for the client's first text frame to carry a credential
    /// ([`Dialect::auth_frame`]), within `WsConfig::auth_timeout`.
    AuthFrame,
    /// Refuse the connection: send these frames (Pusher's `pusher:error` with 4001 for an
    /// unknown app key, then the close frame) and end it. No session is opened.
    Refuse(Closing),
}

/// The credential a client's first frame carried ([`Dialect::auth_frame`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthFrame {
    /// The token, checked by the server's [`realtime_core::Authenticator`].
    pub token: String,
    /// The client recovers its rooms itself ([`ConnInfo::resume`]).
    pub resume: bool,
}

/// How a dialect says a [`CloseReason`]: an optional frame first (Pusher's
/// `pusher:error`), then the WebSocket close frame with `code` and `text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closing {
    /// A frame sent before the close frame.
    pub notice: Option<Frame>,
    /// The close code (RFC 6455 §7.4; 4000–4999 for the application).
    pub code: u16,
    /// The close frame's reason text (at most 123 bytes on the wire).
    pub text: String,
}

impl Closing {
    /// The close frame alone.
    pub fn code(code: u16, text: impl Into<String>) -> Closing {
        Closing {
            notice: None,
            code,
            text: text.into(),
        }
    }

    /// The frames to send, in order.
    pub(crate) fn frames(self) -> impl Iterator<Item = Frame> {
        self.notice
            .into_iter()
            .chain(std::iter::once(Frame::Close(Some((self.code, self.text)))))
    }
}

/// Where a dialect's replies go: the connection's writer, in order, between whole
/// batches of pushes. Bounded: [`Outbox::send`] waits for room.
pub struct Outbox(pub(crate) ctl::Sender);

/// The connection's writer is gone: stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

impl Outbox {
    /// Queue `frame`, waiting for room.
    ///
    /// # Errors
    /// [`Gone`] when the writer has ended (the connection is closing).
    pub async fn send(&self, frame: Frame) -> Result<(), Gone> {
        self.0.send(frame).await.map_err(|_| Gone)
    }

    /// Queue `frame` if there is room now.
    ///
    /// # Errors
    /// [`Gone`] when the queue is full or the writer has ended.
    pub fn try_send(&self, frame: Frame) -> Result<(), Gone> {
        self.0.try_send(frame).map_err(|_| Gone)
    }
}

/// One wire protocol over WebSocket. See the [module](self) for what the driver does
/// around it.
pub trait Dialect: Send + Sync + 'static {
    /// What the dialect keeps per connection between frames.
    type Conn: Send + 'static;

    /// The encoder of the Hub's events into this dialect's frames; registered with the
    /// Hub once per server.
    fn encoder(&self) -> Arc<dyn Encoder>;

    /// How the session opens. `identity` is what the upgrade's credential (`?token=`,
    /// `Authorization: Bearer`) authenticated, `None` when it carried none; after an
    /// [`Opening::AuthFrame`] the driver asks again with the frame's identity and
    /// `info.resume` updated, and must then get [`Opening::Connect`].
    fn opening(&self, identity: Option<Identity>, info: &ConnInfo) -> Opening;

    /// The credential in the client's first text frame, for [`Opening::AuthFrame`].
    ///
    /// # Errors
    /// [`Error::Unauthenticated`] when the frame is not an authentication frame; the
    /// driver then closes with [`CloseReason::Unauthorized`].
    fn auth_frame(&self, text: &[u8]) -> Result<AuthFrame, Error> {
        let _ = text;
        Err(Error::Unauthenticated(
            "this dialect takes no authentication frame".into(),
        ))
    }

    /// The frame that greets the client once its session is open (the native `auth`
    /// frame, Pusher's `pusher:connection_established` with the socket id), if any.
    fn greeting(&self, session: &Session) -> Option<Frame>;

    /// A new connection's state, once its session is open.
    fn new_conn(&self, session: &Session) -> Self::Conn;

    /// One text frame from the client, within the rate limit: run it against `hub` and
    /// queue its replies to `out`. Returns whether to go on reading (`false` also when
    /// `out` reports [`Gone`]).
    fn on_text<'a>(
        &'a self,
        hub: &'a Hub,
        conn: &'a mut Self::Conn,
        text: Bytes,
        out: &'a Outbox,
    ) -> impl Future<Output = bool> + Send + 'a;

    /// A reply the connection owes that completed in the background (the native
    /// dialect's pipelined `send`s): `Ready(Some(frame))` to queue it, `Ready(None)` when
    /// nothing is in flight any more. The driver polls it only while
    /// [`Dialect::has_pending`] says so.
    fn poll_pending(&self, conn: &mut Self::Conn, cx: &mut Context<'_>) -> Poll<Option<Frame>> {
        let _ = (conn, cx);
        Poll::Ready(None)
    }

    /// Whether replies are in flight ([`Dialect::poll_pending`]).
    fn has_pending(&self, conn: &Self::Conn) -> bool {
        let _ = conn;
        false
    }

    /// The frame that tells the client `error`; `request` is the frame it answers, when
    /// there is one (to echo its id). `None`: the dialect says nothing for it.
    fn error(&self, request: Option<&[u8]>, error: &Error) -> Option<Frame>;

    /// The server's heartbeat, sent every `WsConfig::ping_interval` (default: a
    /// WebSocket ping).
    fn heartbeat(&self) -> Frame {
        Frame::Ping(Bytes::new())
    }

    /// How to say `reason` to the client when closing.
    fn close(&self, reason: &CloseReason) -> Closing;
}
