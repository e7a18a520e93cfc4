//! [`NativeDialect`]: seed 000's `{type, data}` protocol as a [`Dialect`]. Authentication
//! by the upgrade's token or a first `auth` frame, a chat session per connection, the
//! `auth` greeting, commands answered by `ack` and `error` frames in command order, and
//! `send`s pipelined into the Hub's group commit.

use super::{Command, Refused, Request, close_code};
use crate::dialect::{AuthFrame, Closing, Dialect, Opening, Outbox};
use crate::driver::ConnInfo;
use crate::frame::Frame;
use crate::native;
use bytes::Bytes;
use realtime_core::{
    CloseReason, ConnectOptions, Encoder, Error, Event, Hub, Identity, Session, SessionId,
    UserStatus,
};
use serde_json::{Value, json};
use std::sync::Arc;
use std::task::{Context, Poll};

/// The native dialect. `pipelined_sends`: `send` commands one connection may have
/// waiting for the group commit before the next command waits (`WsConfig::pipelined_sends`).
#[derive(Debug, Clone, Copy)]
pub struct NativeDialect {
    pipelined_sends: usize,
}

impl NativeDialect {
    /// With at most `pipelined_sends` `send`s in flight per connection (at least 1).
    pub fn new(pipelined_sends: usize) -> NativeDialect {
        NativeDialect {
            pipelined_sends: pipelined_sends.max(1),
        }
    }
}

/// What the native dialect keeps per connection.
pub struct NativeConn {
    /// `send`s in flight: queued for the Hub's group commit in arrival order, acked in
    /// that order as they complete; any other command waits until they are done.
    sends: Sends,
    user: String,
    session: SessionId,
}

fn native_error(id: Option<&Value>, e: &Error) -> Frame {
    Frame::Text(native::error(id, e))
}

/// One pipelined `send` waiting for its reply: its request id (for the ack) and the Hub's
/// pending message (already settled when it was refused before reaching the Hub: its
/// error waits for its turn, so replies keep the sends' order).
struct InFlight {
    id: Option<Value>,
    pending: realtime_core::PendingMessage,
}

/// A committed (or refused) `send`.
enum Settled {
    /// Its ack or error.
    Reply(Frame),
    /// Stored, and it had no id: no reply.
    Silent,
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

    /// The oldest send once it is committed; `None` when nothing is in flight.
    fn poll_next(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Option<Settled>> {
        let Some(front) = self.0.front_mut() else {
            return Poll::Ready(None);
        };
        let result = std::task::ready!(std::pin::Pin::new(&mut front.pending).poll(cx));
        let id = self.0.pop_front().and_then(|f| f.id);
        Poll::Ready(Some(match (result, id) {
            (Ok(m), Some(id)) => Settled::Reply(Frame::Text(native::ack_of(&id, &m))),
            (Ok(_), None) => Settled::Silent,
            (Err(e), id) => Settled::Reply(native_error(id.as_ref(), &e)),
        }))
    }

    /// [`Sends::poll_next`] as a future.
    async fn next(&mut self) -> Option<Settled> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }
}

impl Dialect for NativeDialect {
    type Conn = NativeConn;

    fn encoder(&self) -> Arc<dyn Encoder> {
        Arc::new(native::NativeEncoder)
    }

    fn opening(&self, identity: Option<Identity>, info: &ConnInfo) -> Opening {
        let Some(identity) = identity else {
            return Opening::AuthFrame;
        };
        let mut options = ConnectOptions::chat(identity);
        options.device.clone_from(&info.user_agent);
        if info.resume {
            options = options.recovering();
        }
        Opening::Connect(options)
    }

    fn auth_frame(&self, text: &[u8]) -> Result<AuthFrame, Error> {
        match native::parse(text) {
            Ok(Request {
                command: Command::Auth { token, resume },
                ..
            }) => Ok(AuthFrame { token, resume }),
            Ok(_) | Err(_) => Err(Error::Unauthenticated(
                "the first frame must be auth".into(),
            )),
        }
    }

    fn greeting(&self, session: &Session) -> Option<Frame> {
        Some(Frame::Text(native::auth_ok(
            session.user_id().unwrap_or_default(),
        )))
    }

    fn new_conn(&self, session: &Session) -> NativeConn {
        NativeConn {
            sends: Sends::default(),
            user: session.user_id().unwrap_or_default().to_owned(),
            session: session.id(),
        }
    }

    async fn on_text(&self, hub: &Hub, conn: &mut NativeConn, text: Bytes, out: &Outbox) -> bool {
        let (id, cmd) = match native::parse(&text) {
            Ok(Request { id, command }) => (id, command),
            Err(Refused { id, error }) => {
                return out.send(native_error(id.as_ref(), &error)).await.is_ok();
            }
        };
        let cmd = match cmd {
            Command::Send(req) if conn.sends.len() < self.pipelined_sends => {
                let pending = match hub.submit_message(&conn.user, req).await {
                    Ok(pending) => pending,
                    Err(e) => realtime_core::PendingMessage::ready(Err(e)),
                };
                conn.sends.push_back(id, pending);
                return true;
            }
            cmd => cmd,
        };
        // Everything else sees the effect of the sends before it.
        let mut gone = false;
        while let Some(settled) = conn.sends.next().await {
            if let Settled::Reply(r) = settled
                && out.send(r).await.is_err()
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
            cmd => match Box::pin(self.execute(hub, &conn.user, conn.session, cmd, id.as_ref()))
                .await
            {
                Ok(Some(data)) => id.as_ref().map(|id| Frame::Text(native::ack(id, data))),
                // Queued by the Hub already, behind the recovery's replay.
                Ok(None) => None,
                Err(e) => Some(native_error(id.as_ref(), &e)),
            },
        };
        match reply {
            Some(r) => out.send(r).await.is_ok(),
            None => true,
        }
    }

    fn poll_pending(&self, conn: &mut NativeConn, cx: &mut Context<'_>) -> Poll<Option<Frame>> {
        loop {
            match std::task::ready!(conn.sends.poll_next(cx)) {
                None => return Poll::Ready(None),
                Some(Settled::Reply(frame)) => return Poll::Ready(Some(frame)),
                Some(Settled::Silent) => {}
            }
        }
    }

    fn has_pending(&self, conn: &NativeConn) -> bool {
        !conn.sends.is_empty()
    }

    fn error(&self, request: Option<&[u8]>, error: &Error) -> Option<Frame> {
        let id = request.and_then(|t| match native::parse(t) {
            Ok(Request { id, .. }) | Err(Refused { id, .. }) => id,
        });
        Some(native_error(id.as_ref(), error))
    }

    fn close(&self, reason: &CloseReason) -> Closing {
        Closing::code(close_code(reason), reason.text())
    }
}

impl NativeDialect {
    /// Run `cmd`; `Ok(None)` when its ack is queued already (a room's `join` or
    /// `subscribe`, answered behind the replay).
    async fn execute(
        &self,
        hub: &Hub,
        user: &str,
        session: u64,
        cmd: Command,
        id: Option<&Value>,
    ) -> Result<Option<Value>, Error> {
        Ok(Some(match cmd {
            Command::Ping | Command::Auth { .. } => Value::Null,
            Command::Join { room_id, since } => {
                Self::resume(hub, session, &room_id, since, true, id).await?;
                return Ok(None);
            }
            Command::Leave { room_id } => {
                hub.leave_room(user, &room_id).await?;
                json!({})
            }
            Command::Subscribe { channel, since } => match channel.room_id() {
                Some(room_id) => {
                    Self::resume(hub, session, room_id, since, false, id).await?;
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
            Command::Publish {
                channel,
                event,
                data,
            } => {
                hub.publish_as(session, &channel, Event::app(event, data)?)
                    .await?;
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
        hub: &Hub,
        session: u64,
        room_id: &str,
        since: Option<realtime_core::Since>,
        join: bool,
        id: Option<&Value>,
    ) -> Result<(), Error> {
        let with_since = since.is_some();
        hub.resume_room(session, room_id, since.as_ref(), join, |room, r| {
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
