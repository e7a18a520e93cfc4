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
//! upgraded and must send an `auth` frame first. A request that is not a WebSocket
//! opening handshake gets 400, one on a connection that cannot be upgraded 426.
//!
//! After the upgrade the route does not use axum's `WebSocket`: it takes the TCP stream
//! back from hyper and serves it with [`WsServer::serve_io`] — tungstenite parses the
//! client's frames, and the server's frames are written many to a buffer, one `write` per
//! batch, with no lock between the reading and the writing half. Behind TLS or a custom
//! listener (any I/O other than `TcpStream`) the upgraded connection is split with
//! `tokio::io::split` instead, with the same behaviour. To serve from your own
//! `WebSocketUpgrade` handler, wrap the socket in [`AxumSocket`] and call
//! [`WsServer::serve`].

use crate::dialect::Dialect;
use crate::driver::{ConnInfo, WsServer};
use crate::frame::{Frame, WsError};
use axum::body::Body;
use axum::extract::Query;
use axum::extract::Request;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use futures_util::{Sink, Stream};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// A `GET` route serving WebSocket connections with `server`; mount it at any path.
///
/// Answers, before upgrading: 400 for a request that is not a WebSocket upgrade (RFC 6455
/// §4.2.1: `Connection: upgrade`, `Upgrade: websocket`, `Sec-WebSocket-Version: 13`,
/// `Sec-WebSocket-Key`), 426 when the connection cannot be upgraded (HTTP/2), 403 for a
/// disallowed `Origin`, 401 for an invalid token — each with seed 004's JSON error body
/// `{error, details, code}`.
pub fn route<S: Clone + Send + Sync + 'static, D: Dialect>(server: WsServer<D>) -> MethodRouter<S> {
    get(move |req: Request| {
        let server = server.clone();
        async move { upgrade(server, req).await }
    })
}

/// The upgrade request's query string (`?token=`).
#[derive(Debug, serde::Deserialize)]
struct WsQuery {
    token: Option<String>,
    resume: Option<String>,
}

fn error_response(status: StatusCode, error: &str, details: String) -> Response {
    let body = serde_json::json!({ "error": error, "details": details, "code": status.as_u16() });
    (status, axum::Json(body)).into_response()
}

fn bad_request(details: &str) -> Response {
    error_response(StatusCode::BAD_REQUEST, "Bad Request", details.to_owned())
}

/// Whether a comma-separated header lists `token` (case-insensitive), as `Connection` does.
fn header_lists(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.as_bytes()
            .split(|b| *b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

fn header_is(headers: &HeaderMap, name: HeaderName, value: &str) -> bool {
    headers
        .get(name)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(value.as_bytes()))
}

/// Answer one WebSocket upgrade request with `server`: what [`route`] does, for a handler
/// of your own that chooses the server first (the Pusher crate picks the app's server by
/// the key in `/app/{key}`). The answers before upgrading are [`route`]'s.
pub async fn upgrade<D: Dialect>(server: WsServer<D>, mut req: Request) -> Response {
    let headers = req.headers();
    // The opening handshake (RFC 6455 §4.2.1), checked as axum's WebSocketUpgrade does.
    if !header_lists(headers, header::CONNECTION, "upgrade") {
        return bad_request("Connection header did not include 'upgrade'");
    }
    if !header_is(headers, header::UPGRADE, "websocket") {
        return bad_request("`Upgrade` header did not include 'websocket'");
    }
    if !header_is(headers, header::SEC_WEBSOCKET_VERSION, "13") {
        return bad_request("`Sec-WebSocket-Version` header did not include '13'");
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return bad_request("`Sec-WebSocket-Key` header missing");
    };
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let (query_token, resume) = match Query::<WsQuery>::try_from_uri(req.uri()) {
        Ok(q) => (q.0.token, ConnInfo::resume_flag(q.0.resume.as_deref())),
        Err(e) => return bad_request(&e.body_text()),
    };
    let Some(on_upgrade) = req.extensions_mut().remove::<OnUpgrade>() else {
        return error_response(
            StatusCode::UPGRADE_REQUIRED,
            "Upgrade Required",
            "this connection cannot be upgraded to a WebSocket (HTTP/1.1 only)".into(),
        );
    };
    let headers = req.headers();
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
        resume,
        target: req
            .uri()
            .path_and_query()
            .map_or_else(String::new, |pq| pq.as_str().to_owned()),
    };
    // The connection's slot under `server::serve`'s cap, held while the WebSocket lives.
    let slot = req
        .extensions_mut()
        .remove::<crate::server::ConnectionSlot>();
    // This task only waits for the upgrade; the connection then runs as a task of its own
    // whose state is one box (`connection`), so no idle connection keeps this task's.
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                tokio::spawn(connection(server, upgraded, identity, info, slot));
            }
            Err(e) => tracing::debug!(error = %e, "websocket upgrade failed"),
        }
    });
    let mut res = Response::new(Body::empty());
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = res.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    res
}

/// The connection on an upgraded stream, as one boxed future holding `slot`. A plain TCP
/// connection (what `axum::serve` accepts) is taken back from hyper and split into owned
/// halves, with no lock between reader and writer; any other I/O (TLS, a custom listener)
/// is split with `tokio::io::split`.
fn connection<D: Dialect>(
    server: WsServer<D>,
    upgraded: Upgraded,
    identity: Option<realtime_core::Identity>,
    info: ConnInfo,
    slot: Option<crate::server::ConnectionSlot>,
) -> Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>> {
    let tcp =
        match hyper_util::server::conn::auto::upgrade::downcast::<TokioIo<TcpStream>>(upgraded) {
            Ok(p) => Ok((p.io, p.read_buf)),
            Err(upgraded) => upgraded
                .downcast::<TokioIo<TcpStream>>()
                .map(|p| (p.io, p.read_buf)),
        };
    match tcp {
        Ok((io, read_buf)) => {
            let (read, write) = io.into_inner().into_split();
            // `read_buf` is a view into hyper's read buffer (8 KiB or more): keep a copy of
            // what it holds, and free the buffer now, not at the connection's end.
            let rest = bytes::Bytes::copy_from_slice(&read_buf);
            drop(read_buf);
            let read = std::io::Cursor::new(rest).chain(read);
            server.connection(read, write, identity, info, slot)
        }
        Err(upgraded) => {
            let (read, write) = tokio::io::split(TokioIo::new(upgraded));
            server.connection(read, write, identity, info, slot)
        }
    }
}

/// axum's `WebSocket` as a stream and sink of [`Frame`]s, for serving with
/// [`WsServer::serve`] after your own `WebSocketUpgrade`. [`route`] does not use it: it
/// serves the upgraded TCP stream directly ([`WsServer::serve_io`]), which writes faster.
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
