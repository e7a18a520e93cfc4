//! A WebSocket over a raw byte stream, after the HTTP upgrade (feature `axum`).
//!
//! The axum route does not go through axum's `WebSocket`: it takes the upgraded TCP
//! stream back from hyper and splits it into its two halves, so reading and writing
//! share no lock. tungstenite (RFC 6455) parses what the client sends; what the server
//! sends is framed here by [`FrameWriter`] with tungstenite's frame header, many frames
//! into one buffer and one `write` — fan-out is almost all writes, and this is where
//! their cost was (see `BENCHMARKS.md`).
//!
//! tungstenite answers a client's ping with a pong on its own; those replies reach the
//! writer through [`Replies`] and go out between two whole frames.

use crate::frame::{Frame, WsError};
use bytes::Bytes;
use futures_util::{Sink, StreamExt};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{CloseFrame, FrameHeader};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};

/// Most bytes of automatic replies (pongs) waiting for the writer: a client that pings
/// without reading loses its connection past this, instead of growing the buffer.
const MAX_REPLY_BYTES: usize = 64 << 10;

pub(crate) use crate::writer::Replies;

/// The read half as tungstenite sees it: reads come from the socket, writes (its
/// automatic replies) go to [`Replies`].
pub(crate) struct ReadSide<R> {
    read: R,
    replies: Arc<Replies>,
}

impl<R: AsyncRead + Unpin> AsyncRead for ReadSide<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.read).poll_read(cx, buf)
    }
}

impl<R: Unpin> AsyncWrite for ReadSide<R> {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        // Whole writes only, so the writer never sees half a frame.
        match self.replies.push(b, MAX_REPLY_BYTES) {
            Ok(()) => Poll::Ready(Ok(b.len())),
            Err(()) => Poll::Ready(Err(io::Error::other("client does not read its pongs"))),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// What a connection reads: the client's frames, parsed by tungstenite.
pub(crate) type FrameReader<R> = futures_util::stream::Map<
    WebSocketStream<ReadSide<R>>,
    fn(Result<Message, tungstenite::Error>) -> Result<Frame, WsError>,
>;

/// tungstenite's reader over `read`, its replies into `replies`. `read_buffer_bytes`,
/// `max_message_bytes` and `max_frame_bytes` are [`crate::WsConfig`]'s.
async fn reader<R: AsyncRead + Unpin>(
    read: R,
    replies: Arc<Replies>,
    cfg: &crate::WsConfig,
) -> FrameReader<R> {
    let config = WebSocketConfig::default()
        .read_buffer_size(cfg.read_buffer_bytes)
        .write_buffer_size(0)
        .max_message_size(Some(cfg.max_message_bytes))
        .max_frame_size(Some(cfg.max_frame_bytes));
    let ws =
        WebSocketStream::from_raw_socket(ReadSide { read, replies }, Role::Server, Some(config))
            .await;
    ws.map(from_message as fn(_) -> _)
}

fn from_message(m: Result<Message, tungstenite::Error>) -> Result<Frame, WsError> {
    use tungstenite::Error as E;
    match m {
        Ok(Message::Text(t)) => Ok(Frame::Text(Bytes::from(t))),
        Ok(Message::Binary(b)) => Ok(Frame::Binary(b)),
        Ok(Message::Ping(b)) => Ok(Frame::Ping(b)),
        Ok(Message::Pong(b)) => Ok(Frame::Pong(b)),
        Ok(Message::Close(c)) => {
            Ok(Frame::Close(c.map(|CloseFrame { code, reason }| {
                (u16::from(code), reason.to_string())
            })))
        }
        // Only produced when writing raw frames, which nothing here does.
        Ok(Message::Frame(_)) => Err(WsError::Other("unexpected raw frame".into())),
        Err(E::Capacity(_)) => Err(WsError::TooLarge),
        Err(E::ConnectionClosed | E::AlreadyClosed) => Err(WsError::Closed),
        Err(E::Utf8(_)) => Err(WsError::InvalidUtf8),
        Err(E::Protocol(p)) => Err(WsError::Protocol(p.to_string())),
        Err(e) => Err(WsError::Other(e.to_string())),
    }
}

/// The most write-buffer capacity a busy connection keeps between writes: a burst of
/// ~30 seed-000 events. Larger bursts (a connect storm's presence events to every
/// connection) regrow it each time rather than hold more memory per connection.
const KEEP_BYTES: usize = 16 << 10;

/// Writes [`Frame`]s to `io`: each is framed (RFC 6455 §5.2, server frames unmasked) into
/// one buffer that goes out in as few writes as the socket allows. After a close frame
/// nothing more is sent. A `Sink`: `feed` adds a frame (writing out first when the buffer
/// holds `limit` bytes), `flush` writes everything, with any pongs waiting in [`Replies`].
///
/// The buffer keeps its capacity between writes (up to 16 KiB), so a connection that
/// gets bursts does not regrow it for each; it is released once a ping goes out with no
/// data frame sent since the ping before (the driver pings every
/// [`WsConfig::ping_interval`](crate::WsConfig::ping_interval)), so a connection that goes
/// idle after a burst holds it for at most two ping intervals.
pub(crate) struct FrameWriter<W> {
    io: W,
    buf: Vec<u8>,
    /// Bytes of `buf` already written.
    written: usize,
    limit: usize,
    replies: Arc<Replies>,
    /// A close frame is in `buf` or sent.
    closed: bool,
    /// A text or binary frame was added since the last ping.
    data_since_ping: bool,
    /// The last ping found no data since the one before: release the buffer once it is
    /// written out (unless data comes first).
    idle: bool,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    pub(crate) fn new(io: W, limit: usize, replies: Arc<Replies>) -> Self {
        FrameWriter {
            io,
            buf: Vec::new(),
            written: 0,
            limit: limit.max(1),
            replies,
            closed: false,
            data_since_ping: false,
            idle: false,
        }
    }

    /// Account a data frame (the connection is busy) or a ping (one ping interval went by).
    fn note(&mut self, frame: &Frame) {
        match frame {
            Frame::Text(_) | Frame::Binary(_) => {
                self.data_since_ping = true;
                self.idle = false;
            }
            Frame::Ping(_) => {
                self.idle = !std::mem::take(&mut self.data_since_ping);
            }
            Frame::Pong(_) | Frame::Close(_) => {}
        }
    }

    fn push(&mut self, opcode: OpCode, payload: &[u8]) {
        let header = FrameHeader {
            opcode,
            ..FrameHeader::default()
        };
        // Room for the whole frame first (a header is at most 14 bytes): one allocation
        // where a buffer freed after a burst regrows, not one for the header and another
        // for the payload.
        self.buf.reserve(payload.len() + 14);
        // Writing into a Vec cannot fail.
        let _ = header.format(payload.len() as u64, &mut self.buf);
        self.buf.extend_from_slice(payload);
    }

    /// Move waiting pongs into the buffer; `buf` holds whole frames whenever this runs.
    fn take_replies(&mut self) {
        if self.closed {
            return;
        }
        self.replies.take_into(&mut self.buf);
    }

    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        if self.written == 0 {
            self.take_replies();
        }
        while self.written < self.buf.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.buf[self.written..]))
                .map_err(io_error)?;
            if n == 0 {
                return Poll::Ready(Err(WsError::Closed));
            }
            self.written += n;
        }
        self.written = 0;
        self.buf.clear();
        // Larger than a usual burst needs, or a ping interval without data: a burst's
        // buffer is not kept by a connection that goes idle after it.
        if self.buf.capacity() > KEEP_BYTES.min(self.limit) || std::mem::take(&mut self.idle) {
            self.buf = Vec::new();
        }
        Poll::Ready(Ok(()))
    }
}

fn io_error(e: io::Error) -> WsError {
    match e.kind() {
        io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::NotConnected => WsError::Closed,
        _ => WsError::Other(e.to_string()),
    }
}

impl<W: AsyncWrite + Unpin> Sink<Frame> for FrameWriter<W> {
    type Error = WsError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        if self.buf.len() - self.written >= self.limit {
            ready!(self.poll_write_out(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(mut self: Pin<&mut Self>, frame: Frame) -> Result<(), WsError> {
        if self.closed {
            return Ok(());
        }
        self.note(&frame);
        match frame {
            Frame::Text(b) => self.push(OpCode::Data(Data::Text), &b),
            Frame::Binary(b) => self.push(OpCode::Data(Data::Binary), &b),
            Frame::Ping(b) => self.push(OpCode::Control(Control::Ping), &b),
            Frame::Pong(b) => self.push(OpCode::Control(Control::Pong), &b),
            Frame::Close(c) => {
                // Pongs already owed go first.
                self.take_replies();
                let mut payload = Vec::new();
                if let Some((code, reason)) = c {
                    payload.extend_from_slice(&code.to_be_bytes());
                    // A control frame's payload is at most 125 bytes (RFC 6455 §5.5).
                    let mut end = reason.len().min(123);
                    while !reason.is_char_boundary(end) {
                        end -= 1;
                    }
                    payload.extend_from_slice(&reason.as_bytes()[..end]);
                }
                self.push(OpCode::Control(Control::Close), &payload);
                self.closed = true;
            }
        }
        Ok(())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        ready!(self.poll_write_out(cx))?;
        Pin::new(&mut self.io).poll_flush(cx).map_err(io_error)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.io).poll_shutdown(cx).map_err(io_error)
    }
}

/// The two halves of a connection's byte stream, ready for the driver.
pub(crate) async fn framed<R, W>(
    read: R,
    write: W,
    cfg: &crate::WsConfig,
) -> (FrameReader<R>, FrameWriter<W>, Arc<Replies>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let replies = Arc::new(Replies::default());
    let reader = reader(read, replies.clone(), cfg).await;
    let writer = FrameWriter::new(write, cfg.write_buffer_bytes, replies.clone());
    (reader, writer, replies)
}

/// The frames a client's raw bytes (what follows the HTTP upgrade) decode to, with the
/// reader every axum connection uses and `cfg`'s limits: at most `max_frames` results,
/// the last one the error that ends the connection, if any. Runs without a runtime (a
/// byte slice never makes the reader wait). For fuzzing and tests of the frame decoder.
#[doc(hidden)]
pub fn decode_client_bytes(
    bytes: &[u8],
    cfg: &crate::WsConfig,
    max_frames: usize,
) -> Vec<Result<Frame, WsError>> {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let replies = Arc::new(Replies::default());
    let mut start = std::pin::pin!(reader(bytes, replies, cfg));
    let Poll::Ready(mut frames) = start.as_mut().poll(&mut cx) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    while out.len() < max_frames {
        match frames.poll_next_unpin(&mut cx) {
            Poll::Ready(Some(f)) => {
                let end = f.is_err();
                out.push(f);
                if end {
                    break;
                }
            }
            Poll::Ready(None) | Poll::Pending => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::SinkExt;

    #[test]
    fn raw_client_bytes_decode_to_frames_or_a_typed_error() {
        let cfg = crate::WsConfig::default();
        // A masked text frame "hi" (mask 0), then a masked close 1000.
        let ok = decode_client_bytes(
            &[
                0x81, 0x82, 0, 0, 0, 0, b'h', b'i', 0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8,
            ],
            &cfg,
            10,
        );
        assert_eq!(ok[0], Ok(Frame::Text(Bytes::from_static(b"hi"))));
        assert_eq!(ok[1], Ok(Frame::Close(Some((1000, String::new())))));
        let utf8 = decode_client_bytes(&[0x81, 0x82, 0, 0, 0, 0, 0xff, 0xfe], &cfg, 10);
        assert_eq!(utf8, vec![Err(WsError::InvalidUtf8)]);
        let unmasked = decode_client_bytes(&[0x81, 0x02, b'h', b'i'], &cfg, 10);
        assert!(
            matches!(unmasked[..], [Err(WsError::Protocol(_))]),
            "{unmasked:?}"
        );
    }

    #[tokio::test]
    async fn frames_go_out_whole_with_pongs_between_and_nothing_after_close() {
        let (client, server) = tokio::io::duplex(4096);
        let (read, write) = tokio::io::split(server);
        let cfg = crate::WsConfig {
            write_buffer_bytes: 16,
            ..crate::WsConfig::default()
        };
        let (mut frames, mut sink, replies) = framed(read, write, &cfg).await;
        let mut peer =
            WebSocketStream::from_raw_socket(client, Role::Client, Some(Default::default())).await;
        // A ping from the client: tungstenite reads it and owes a pong.
        peer.send(Message::Ping(Bytes::from_static(b"hi")))
            .await
            .expect("ping");
        assert_eq!(
            frames.next().await,
            Some(Ok(Frame::Ping(Bytes::from_static(b"hi"))))
        );
        let server_side = tokio::spawn(async move {
            // The pong is written on tungstenite's next read; keep reading in the background.
            let next = frames.next().await;
            (frames, next)
        });
        std::future::poll_fn(|cx| replies.poll_waiting(cx)).await;
        // More than `limit` bytes of text: poll_ready writes out between frames.
        for i in 0..5 {
            sink.feed(Frame::Text(Bytes::from(format!("message {i}"))))
                .await
                .expect("feed");
        }
        sink.send(Frame::Close(Some((4003, "é".repeat(100)))))
            .await
            .expect("close");
        sink.send(Frame::Text(Bytes::from_static(b"after close")))
            .await
            .expect("ignored");
        sink.close().await.expect("shutdown");
        let mut got = Vec::new();
        while let Some(m) = peer.next().await {
            match m {
                Ok(m) => got.push(m),
                Err(_) => break,
            }
        }
        // The pong goes out at the first write after it was owed, between whole frames.
        let pong = Message::Pong(Bytes::from_static(b"hi"));
        assert_eq!(got.iter().filter(|m| **m == pong).count(), 1, "{got:?}");
        let texts: Vec<_> = got
            .iter()
            .filter(|m| m.is_text())
            .map(|m| m.to_text().expect("text"))
            .collect();
        assert_eq!(
            texts,
            [
                "message 0",
                "message 1",
                "message 2",
                "message 3",
                "message 4"
            ]
        );
        match &got[6] {
            Message::Close(Some(c)) => {
                assert_eq!(u16::from(c.code), 4003);
                assert!(c.reason.len() <= 123 && c.reason.starts_with('é'));
            }
            other => panic!("expected close, got {other:?}"),
        }
        assert_eq!(got.len(), 7, "nothing after the close: {got:?}");
        server_side.abort();
    }

    /// An `AsyncWrite` that takes everything and counts its writes.
    #[derive(Default)]
    struct Counting {
        writes: usize,
        bytes: usize,
    }

    impl tokio::io::AsyncWrite for Counting {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.writes += 1;
            self.bytes += buf.len();
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// 20 text frames of 470 bytes (about a seed-000 message event each) fed and flushed.
    async fn burst(sink: &mut FrameWriter<Counting>) {
        for _ in 0..20 {
            sink.feed(Frame::Text(Bytes::from(vec![b'x'; 470])))
                .await
                .expect("feed");
        }
        sink.flush().await.expect("flush");
    }

    #[tokio::test]
    async fn a_burst_goes_out_in_one_write_under_the_default_limit() {
        let limit = crate::WsConfig::default().write_buffer_bytes;
        let mut sink = FrameWriter::new(Counting::default(), limit, Arc::default());
        burst(&mut sink).await;
        // 20 × (470 + a 4-byte header).
        assert_eq!((sink.io.writes, sink.io.bytes), (1, 9_480));
        // The old 8 KiB limit split the same burst in two writes.
        let mut small = FrameWriter::new(Counting::default(), 8 << 10, Arc::default());
        burst(&mut small).await;
        assert_eq!((small.io.writes, small.io.bytes), (2, 9_480));
    }

    #[tokio::test]
    async fn the_write_buffer_is_kept_while_busy_and_released_after_an_idle_ping_interval() {
        let mut sink = FrameWriter::new(Counting::default(), 64 << 10, Arc::default());
        burst(&mut sink).await;
        let kept = sink.buf.capacity();
        assert!(kept >= 9_480, "kept for the next burst: {kept}");
        // A ping after data: the interval was busy, the buffer stays.
        sink.send(Frame::Ping(Bytes::new())).await.expect("ping");
        assert_eq!(sink.buf.capacity(), kept);
        // Data after an idle ping, before its write: still busy, still kept.
        sink.feed(Frame::Ping(Bytes::new())).await.expect("ping");
        burst(&mut sink).await;
        assert_eq!(sink.buf.capacity(), kept);
        sink.send(Frame::Ping(Bytes::new())).await.expect("ping");
        assert_eq!(sink.buf.capacity(), kept);
        // A whole ping interval without data: released once the ping is out.
        sink.send(Frame::Ping(Bytes::new())).await.expect("ping");
        assert_eq!(sink.buf.capacity(), 0);
        // And grown again by the next burst, which goes out whole.
        let before = sink.io.writes;
        burst(&mut sink).await;
        assert_eq!(sink.io.writes, before + 1);
        // A burst past 16 KiB goes out whole too, but its buffer is not kept.
        for _ in 0..40 {
            sink.feed(Frame::Text(Bytes::from(vec![b'x'; 470])))
                .await
                .expect("feed");
        }
        sink.flush().await.expect("flush");
        assert_eq!(sink.io.writes, before + 2);
        assert_eq!(sink.buf.capacity(), 0);
    }

    #[tokio::test]
    async fn bad_input_maps_to_typed_errors() {
        let cfg = crate::WsConfig {
            max_message_bytes: 100,
            max_frame_bytes: 100,
            ..crate::WsConfig::default()
        };
        // Too large: 1009 in the driver.
        let (client, server) = tokio::io::duplex(4096);
        let (read, write) = tokio::io::split(server);
        let (mut frames, _sink, _) = framed(read, write, &cfg).await;
        let mut peer =
            WebSocketStream::from_raw_socket(client, Role::Client, Some(Default::default())).await;
        peer.send(Message::text("x".repeat(500)))
            .await
            .expect("send");
        assert_eq!(frames.next().await, Some(Err(WsError::TooLarge)));
        // An unmasked client frame is a protocol error (RFC 6455 §5.1), not a panic.
        let (mut client, server) = tokio::io::duplex(4096);
        let (read, write) = tokio::io::split(server);
        let (mut frames, _sink, _) = framed(read, write, &cfg).await;
        tokio::io::AsyncWriteExt::write_all(&mut client, &[0x81, 0x02, b'h', b'i'])
            .await
            .expect("write");
        assert!(matches!(
            frames.next().await,
            Some(Err(WsError::Protocol(_)))
        ));
        // Invalid UTF-8 in a text frame.
        let (mut client, server) = tokio::io::duplex(4096);
        let (read, write) = tokio::io::split(server);
        let (mut frames, _sink, _) = framed(read, write, &cfg).await;
        let mask = [1u8, 2, 3, 4];
        let payload: Vec<u8> = [0xffu8, 0xfe]
            .iter()
            .zip(mask.iter().cycle())
            .map(|(b, m)| b ^ m)
            .collect();
        let mut f = vec![0x81, 0x82];
        f.extend_from_slice(&mask);
        f.extend_from_slice(&payload);
        tokio::io::AsyncWriteExt::write_all(&mut client, &f)
            .await
            .expect("write");
        assert_eq!(frames.next().await, Some(Err(WsError::InvalidUtf8)));
        // The peer going away ends the stream.
        drop(client);
        assert!(matches!(
            frames.next().await,
            None | Some(Err(WsError::Closed)) | Some(Err(WsError::Other(_)))
        ));
    }

    #[tokio::test]
    async fn a_client_that_pings_without_reading_is_cut_off() {
        let (client, server) = tokio::io::duplex(1 << 20);
        let (read, write) = tokio::io::split(server);
        let (mut frames, _sink, _) = framed(read, write, &crate::WsConfig::default()).await;
        let mut peer =
            WebSocketStream::from_raw_socket(client, Role::Client, Some(Default::default())).await;
        let n = MAX_REPLY_BYTES / 100 + 10;
        for _ in 0..n {
            peer.feed(Message::Ping(Bytes::from(vec![0u8; 98])))
                .await
                .expect("ping");
        }
        peer.flush().await.expect("flush");
        let mut pings = 0;
        let end = loop {
            match frames.next().await {
                Some(Ok(Frame::Ping(_))) => pings += 1,
                other => break other,
            }
        };
        assert!(matches!(end, Some(Err(WsError::Other(_)))), "{end:?}");
        assert!(pings < n, "cut off before all {n} pings: {pings}");
    }
}
