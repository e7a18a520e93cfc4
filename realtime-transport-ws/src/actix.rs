//! actix-web integration (feature `actix`), behaving like the axum one.
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//! use realtime_core::{Hub, JwtAuthenticator};
//! use realtime_transport_ws::WsServer;
//! use std::sync::Arc;
//!
//! #[actix_web::main]
//! async fn main() -> std::io::Result<()> {
//!     let ws = WsServer::new(Hub::in_memory(), Arc::new(JwtAuthenticator::hs256(b"secret")));
//!     HttpServer::new(move || {
//!         App::new()
//!             .app_data(web::Data::new(ws.clone()))
//!             .route("/ws", web::get().to(realtime_transport_ws::actix::handler))
//!     })
//!     .bind("127.0.0.1:8080")?
//!     .run()
//!     .await
//! }
//! ```
//!
//! actix-ws's message stream is `!Send`: it is read (and the session written) by a task on
//! actix's own runtime, which forwards frames through bounded channels to the shared
//! connection driver. A full inbound channel stops reading from the socket (backpressure).

use crate::driver::{ConnInfo, WsServer};
use crate::frame::{Frame, WsError};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage as Message, CloseCode, CloseReason, ProtocolError};
use futures_util::{Sink, Stream, StreamExt};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;
use tokio_util::sync::PollSender;

#[derive(serde::Deserialize)]
struct WsQuery {
    token: Option<String>,
    resume: Option<String>,
}

fn error_response(
    status: actix_web::http::StatusCode,
    error: &str,
    details: String,
) -> HttpResponse {
    HttpResponse::build(status)
        .json(serde_json::json!({ "error": error, "details": details, "code": status.as_u16() }))
}

/// The actix-web handler: checks the origin (403), authenticates (401), upgrades, and
/// serves the connection with the [`WsServer`] found in the app data.
///
/// # Errors
/// actix's handshake errors (400 for a request that is not a WebSocket upgrade).
pub async fn handler(
    req: HttpRequest,
    body: web::Payload,
    server: web::Data<WsServer>,
) -> actix_web::Result<HttpResponse> {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok());
    if !server.origin_allowed(origin) {
        return Ok(error_response(
            actix_web::http::StatusCode::FORBIDDEN,
            "Forbidden",
            format!("origin {} is not allowed", origin.unwrap_or_default()),
        ));
    }
    let (query, resume) = web::Query::<WsQuery>::from_query(req.query_string())
        .map(|q| {
            let q = q.into_inner();
            (q.token, ConnInfo::resume_flag(q.resume.as_deref()))
        })
        .unwrap_or((None, false));
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let token = WsServer::token_from(query.as_deref(), auth);
    let identity = match server.authenticate_upgrade(token.as_deref()).await {
        Ok(i) => i,
        Err(e) => {
            return Ok(error_response(
                actix_web::http::StatusCode::UNAUTHORIZED,
                "Unauthorized",
                e.to_string(),
            ));
        }
    };
    let info = ConnInfo {
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        ip: req.peer_addr().map(|a| a.ip().to_string()),
        resume,
        target: req
            .uri()
            .path_and_query()
            .map_or_else(String::new, |pq| pq.as_str().to_owned()),
    };
    let (response, mut session, stream) = actix_ws::handle(&req, body)?;
    let cfg = server.config().clone();
    let mut stream = stream
        .max_frame_size(cfg.max_frame_bytes)
        .aggregate_continuations()
        .max_continuation_size(cfg.max_message_bytes);
    let (in_tx, in_rx) = mpsc::channel::<Result<Frame, WsError>>(16);
    let (out_tx, mut out_rx) = mpsc::channel::<Frame>(16);
    // The !Send half, on actix's runtime: socket -> in_tx, out_rx -> socket.
    actix_web::rt::spawn(async move {
        loop {
            tokio::select! {
                m = stream.next() => {
                    let f = match m {
                        None => break,
                        Some(Ok(Message::Text(t))) => Ok(Frame::Text(t.into_bytes())),
                        Some(Ok(Message::Binary(b))) => Ok(Frame::Binary(b)),
                        Some(Ok(Message::Ping(b))) => {
                            if session.pong(&b).await.is_err() {
                                break;
                            }
                            Ok(Frame::Ping(b))
                        }
                        Some(Ok(Message::Pong(b))) => Ok(Frame::Pong(b)),
                        Some(Ok(Message::Close(c))) => Ok(Frame::Close(c.map(|c| (u16::from(c.code), c.description.unwrap_or_default())))),
                        Some(Err(ProtocolError::Overflow)) => Err(WsError::TooLarge),
                        Some(Err(ProtocolError::Io(e))) => Err(WsError::Other(e.to_string())),
                        Some(Err(e)) => Err(WsError::Protocol(e.to_string())),
                    };
                    let end = f.is_err();
                    if in_tx.send(f).await.is_err() || end {
                        // Keep writing what the driver still sends (e.g. the close frame).
                        while let Some(f) = out_rx.recv().await {
                            if write(&mut session, f).await.is_err() {
                                break;
                            }
                        }
                        break;
                    }
                }
                f = out_rx.recv() => match f {
                    None => {
                        let _ = session.close(None).await;
                        break;
                    }
                    Some(f) => {
                        if write(&mut session, f).await.is_err() {
                            break;
                        }
                    }
                },
            }
        }
    });
    let socket = ChannelSocket {
        rx: in_rx,
        tx: PollSender::new(out_tx),
    };
    let server = server.get_ref().clone();
    actix_web::rt::spawn(async move { server.serve(socket, identity, info).await });
    Ok(response)
}

/// Write one frame; `Err` once the session is closed. A close frame consumes the session's
/// ability to send, so it is sent on a clone.
async fn write(session: &mut actix_ws::Session, f: Frame) -> Result<(), ()> {
    let r = match f {
        Frame::Text(b) => match bytestring::ByteString::try_from(b) {
            Ok(s) => session.text(s).await,
            Err(_) => return Ok(()),
        },
        Frame::Binary(b) => session.binary(b).await,
        Frame::Ping(b) => session.ping(&b).await,
        Frame::Pong(b) => session.pong(&b).await,
        Frame::Close(c) => {
            let reason = c.map(|(code, text)| CloseReason {
                code: CloseCode::from(code),
                description: Some(text),
            });
            let _ = session.clone().close(reason).await;
            return Err(());
        }
    };
    r.map_err(|_| ())
}

/// The driver's side of the bridge: a `Send` stream and sink over bounded channels.
struct ChannelSocket {
    rx: mpsc::Receiver<Result<Frame, WsError>>,
    tx: PollSender<Frame>,
}

impl Stream for ChannelSocket {
    type Item = Result<Frame, WsError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Sink<Frame> for ChannelSocket {
    type Error = WsError;
    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        Pin::new(&mut self.tx)
            .poll_ready(cx)
            .map_err(|_| WsError::Closed)
    }
    fn start_send(mut self: Pin<&mut Self>, item: Frame) -> Result<(), WsError> {
        Pin::new(&mut self.tx)
            .start_send(item)
            .map_err(|_| WsError::Closed)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        Pin::new(&mut self.tx)
            .poll_flush(cx)
            .map_err(|_| WsError::Closed)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        Pin::new(&mut self.tx)
            .poll_close(cx)
            .map_err(|_| WsError::Closed)
    }
}
