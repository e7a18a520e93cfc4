//! axum integration (feature `axum`, default).
//!
//! ```no_run
//! # async fn demo() {
//! use realtime_core::{Hub, JwtAuthenticator};
//! use realtime_transport_ws::WsServer;
//! use std::sync::Arc;
//!
//! let hub = Hub::in_memory();
//! let ws = WsServer::new(hub.clone(), Arc::new(JwtAuthenticator::hs256(b"secret")));
//! let app: axum::Router = axum::Router::new().route("/ws", realtime_transport_ws::axum::route(ws));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.unwrap();
//! // Small realtime frames should leave at once: turn Nagle's algorithm off.
//! use axum::serve::ListenerExt;
//! let listener = listener.tap_io(|tcp| { let _ = tcp.set_nodelay(true); });
//! axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await.unwrap();
//! # }
//! ```
//!
//! Set `TCP_NODELAY` on accepted sockets as above: without it, a frame written while the
//! previous one is unacknowledged can wait for the peer's delayed ACK (40 ms on Linux).
//!
//! The route authenticates before upgrading: a request with an invalid or expired token
//! (`?token=` or `Authorization: Bearer`) gets HTTP 401 with seed 004's error body; one
//! from a browser `Origin` not in the allowed list gets 403. A request without a token is
//! upgraded and must send an `auth` frame first.

use crate::driver::{ConnInfo, WsServer};
use crate::frame::{Frame, WsError};
use axum::extract::Query;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use futures_util::{Sink, Stream};
use std::pin::Pin;
use std::task::{Context, Poll};

/// A `GET` route serving WebSocket connections with `server`; mount it at any path.
pub fn route<S: Clone + Send + Sync + 'static>(server: WsServer) -> MethodRouter<S> {
    get(
        move |headers: HeaderMap, query: Query<WsQuery>, ws: WebSocketUpgrade| {
            let server = server.clone();
            async move { upgrade(server, ws, query.0.token, headers).await }
        },
    )
}

/// The upgrade request's query string (`?token=`).
#[derive(Debug, serde::Deserialize)]
struct WsQuery {
    token: Option<String>,
}

fn error_response(status: StatusCode, error: &str, details: String) -> Response {
    let body = serde_json::json!({ "error": error, "details": details, "code": status.as_u16() });
    (status, axum::Json(body)).into_response()
}

async fn upgrade(
    server: WsServer,
    ws: WebSocketUpgrade,
    query_token: Option<String>,
    headers: HeaderMap,
) -> Response {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    if !server.origin_allowed(origin) {
        return error_response(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!("origin {} is not allowed", origin.unwrap_or_default()),
        );
    }
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let token = WsServer::token_from(query_token.as_deref(), auth);
    let identity = match server.authenticate_upgrade(token.as_deref()).await {
        Ok(i) => i,
        Err(e) => return error_response(StatusCode::UNAUTHORIZED, "Unauthorized", e.to_string()),
    };
    let info = ConnInfo {
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        ip: headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    let cfg = server.config().clone();
    ws.read_buffer_size(cfg.read_buffer_bytes)
        .write_buffer_size(cfg.write_buffer_bytes)
        .max_write_buffer_size(cfg.write_buffer_bytes.max(cfg.max_message_bytes) * 4)
        .max_message_size(cfg.max_message_bytes)
        .max_frame_size(cfg.max_frame_bytes)
        .on_upgrade(
            move |socket| async move { server.serve(AxumSocket(socket), identity, info).await },
        )
}

/// axum's `WebSocket` as a stream and sink of [`Frame`]s.
pub struct AxumSocket(pub WebSocket);

fn map_err(e: axum::Error) -> WsError {
    let s = e.to_string();
    if s.contains("Space limit exceeded") || s.contains("too long") || s.contains("too big") {
        WsError::TooLarge
    } else if s.contains("closed") || s.contains("Closed") {
        WsError::Closed
    } else {
        WsError::Other(s)
    }
}

fn from_axum(m: Message) -> Frame {
    match m {
        Message::Text(t) => Frame::Text(bytes::Bytes::from(t)),
        Message::Binary(b) => Frame::Binary(b),
        Message::Ping(b) => Frame::Ping(b),
        Message::Pong(b) => Frame::Pong(b),
        Message::Close(c) => Frame::Close(c.map(|c| (c.code, c.reason.to_string()))),
    }
}

fn to_axum(f: Frame) -> Message {
    match f {
        Frame::Text(b) => match Utf8Bytes::try_from(b) {
            Ok(t) => Message::Text(t),
            Err(_) => Message::Text(Utf8Bytes::from_static("")),
        },
        Frame::Binary(b) => Message::Binary(b),
        Frame::Ping(b) => Message::Ping(b),
        Frame::Pong(b) => Message::Pong(b),
        Frame::Close(c) => Message::Close(c.map(|(code, reason)| CloseFrame {
            code,
            reason: reason.into(),
        })),
    }
}

impl Stream for AxumSocket {
    type Item = Result<Frame, WsError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.0)
            .poll_next(cx)
            .map(|o| o.map(|r| r.map(from_axum).map_err(map_err)))
    }
}

impl Sink<Frame> for AxumSocket {
    type Error = WsError;
    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        Pin::new(&mut self.0).poll_ready(cx).map_err(map_err)
    }
    fn start_send(mut self: Pin<&mut Self>, item: Frame) -> Result<(), WsError> {
        Pin::new(&mut self.0)
            .start_send(to_axum(item))
            .map_err(map_err)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        Pin::new(&mut self.0).poll_flush(cx).map_err(map_err)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        Pin::new(&mut self.0).poll_close(cx).map_err(map_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens() {
        assert_eq!(
            WsServer::token_from(None, Some("Bearer xyz")),
            Some("xyz".into())
        );
        assert_eq!(
            WsServer::token_from(Some("q"), Some("Bearer xyz")),
            Some("q".into())
        );
        assert_eq!(WsServer::token_from(Some(""), Some("Basic xyz")), None);
        assert_eq!(WsServer::token_from(None, None), None);
    }
}
