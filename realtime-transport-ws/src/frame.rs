//! Our own WebSocket frame type, so no tungstenite (or actix) type appears in the API.

use bytes::Bytes;

/// A WebSocket frame (RFC 6455 data and control frames).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A text frame; the bytes are UTF-8.
    Text(Bytes),
    /// A binary frame.
    Binary(Bytes),
    /// A ping.
    Ping(Bytes),
    /// A pong.
    Pong(Bytes),
    /// A close frame with an optional code and reason.
    Close(Option<(u16, String)>),
}

/// Why reading or writing a socket failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WsError {
    /// A message or frame exceeded the configured size limit (close code 1009).
    #[error("message too large")]
    TooLarge,
    /// The connection is closed.
    #[error("connection closed")]
    Closed,
    /// A text message that is not UTF-8 (close code 1007, RFC 6455 §8.1).
    #[error("text message is not valid UTF-8")]
    InvalidUtf8,
    /// The peer broke the WebSocket protocol (close code 1002): an unmasked frame, a bad
    /// opcode, a continuation without a start, a control frame too long, …
    #[error("websocket protocol error: {0}")]
    Protocol(String),
    /// Any other protocol or I/O error.
    #[error("websocket error: {0}")]
    Other(String),
}

/// Close codes this crate sends. 1000–1011 are RFC 6455's; 4000–4999 are ours: a client
/// should reconnect after 4002, 4004 and 4008 (and 1001), later after 4029, and not after
/// 4001, 4003 and 4009. The native dialect maps each [`realtime_core::CloseReason`] to one
/// of them in [`crate::native::close_code`].
pub mod close {
    /// Normal closure.
    pub const NORMAL: u16 = 1000;
    /// The server is going away (RFC 6455).
    pub const GOING_AWAY: u16 = 1001;
    /// The server met an unexpected condition (RFC 6455 §7.4.1).
    pub const INTERNAL_ERROR: u16 = 1011;
    /// Malformed frames at the protocol level.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A text message that is not UTF-8 (RFC 6455 §7.4.1).
    pub const INVALID_DATA: u16 = 1007;
    /// A message larger than the configured maximum.
    pub const TOO_LARGE: u16 = 1009;
    /// Not authenticated: no, invalid or expired token, or no `auth` frame in time.
    pub const UNAUTHORIZED: u16 = 4001;
    /// The server is shutting down; reconnect (to another node).
    pub const SHUTDOWN: u16 = 4002;
    /// Closed by the application.
    pub const KICKED: u16 = 4003;
    /// The client sent nothing (not even a pong) for the idle timeout.
    pub const IDLE: u16 = 4004;
    /// The client could not keep up with what it was sent; reconnect and recover.
    pub const SLOW_CONSUMER: u16 = 4008;
    /// Too many connections for this user.
    pub const TOO_MANY_CONNECTIONS: u16 = 4009;
    /// Kept sending over the rate limit after being told.
    pub const RATE_LIMITED: u16 = 4029;
}
