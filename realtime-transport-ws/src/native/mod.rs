//! The native dialect: seed 000's `{ "type": …, "data": … }` JSON frames, extended
//! consistently. `docs/protocol.md` in the repository is the client's reference, with an
//! example of every frame.
//!
//! # Server → client
//!
//! | frame | when |
//! |---|---|
//! | `{"type":"auth","data":{"status":"connected","user_id":"…"}}` | right after authentication (seed 000) |
//! | `{"type":"pong"}` (with the ping's `id`, if it had one) | answer to `ping` |
//! | `{"id","type":"typing_start","level":"user","action":"typing.start","data":{"room_id","user_id","username"},…}` | `event.user.typing.start` (seed 000) |
//! | `{…,"type":"typing_stop",…}` | `event.user.typing.stop` |
//! | `{…,"type":"user_status_change","data":{"user_id","username","status","last_seen"},…}` | `event.user.online`, `…offline`, `…status.change` |
//! | `{…,"type":"user_join","data":{"user_id","username","room_id","role"},…}` | `event.room.join` |
//! | `{…,"type":"user_leave",…}` | `event.room.leave` |
//! | `{…,"type":"event.message.send","data":{message},…}` | every other event, under its own name |
//! | `{…,"type":"notification",…}` | an app event ([`realtime_core::Event::app`]), under its name |
//! | `{"type":"ack","id":…,"data":{…}}` | a command with an `id` succeeded |
//! | `{"type":"error","id":…,"data":{"code","message","temporary"}}` | a command failed (`id` is `null` when it had none or could not be read) |
//!
//! A push is seed 000's *Event Data Structure*: the event's `id`, `type`, `level`,
//! `action`, `data`, `metadata`, `timestamp`, `user_id` and `room_id` at the top level,
//! with `type` the seed's WebSocket message type where it has one.
//! Messages carry their room `seq`; use the highest one seen for recovery.
//!
//! # Client → server
//!
//! Every command may carry an `id` (string or number); the reply is an `ack` or `error`
//! with that `id`. Without an `id`, success is silent and failures still get an `error`.
//! Replies come in command order: `send`s are pipelined (up to
//! `WsConfig::pipelined_sends` in flight, stored in order), and each later command runs
//! once the `send`s before it are stored and replied to.
//!
//! | `type` | `data` | ack `data` |
//! |---|---|---|
//! | `ping` | – | (a `pong`) |
//! | `auth` | `{"token", "resume"?: bool}` (only as the first frame, when no token came with the upgrade) | (an `auth` frame) |
//! | `join` | `{"room_id", "since"?: {"seq","epoch"}}` (joins if not a member, subscribes, recovers) | `{"channel","room_id","epoch","latest_seq","recovered"?,"replayed"?}` |
//! | `leave` | `{"room_id"}` | `{}` |
//! | `subscribe` | `{"channel", "since"?}` | `{"channel", …recovery for room channels}` |
//! | `unsubscribe` | `{"channel"}` | `{}` |
//! | `publish` | `{"channel","event","data"?}`: an app event to the channel's other subscribers, every dialect (allowed by the Hub's authorizer; by default `client-…` events on private and presence channels the connection joined) | `{}` |
//! | `send` | `{"room_id","content","type"?: "TEXT"/"FILE","client_id"?}` | the stored message |
//! | `edit` | `{"message_id","content"}` | the message |
//! | `delete` | `{"message_id"}` | the tombstone |
//! | `react` | `{"message_id","emoji","remove"?: bool}` | `{"changed"}` |
//! | `read` | `{"message_id"}` or `{"room_id","seq"?}` | `{"seq"}` (the read pointer) |
//! | `typing` | `{"room_id","is_typing"}` | `{}` |
//! | `typing_start` / `typing_stop` | `{"room_id"}` (seed 000) | `{}` |
//! | `presence` / `user_status_change` | `{"status": "online"/"away"}` | `{}` |
//! | `history` | `{"room_id","before"?,"limit"?}` | `{"messages","has_more"}` |
//!
//! # Recovery
//!
//! A room's messages carry a per-room `seq` (1, 2, 3, … with no gaps) and the room an
//! `epoch`. A client keeps, per room, the highest `seq` it has seen and the epoch, and
//! after a reconnect sends `join` (or `subscribe`) with `since: {seq, epoch}`. The server
//! then sends, in this order:
//!
//! 1. the missed messages, as `event.message.send` pushes in `seq` order;
//! 2. the ack: `{channel, room_id, epoch, latest_seq, recovered, replayed}` — with
//!    `recovered: true` the pushes were exactly `since.seq + 1 ..= latest_seq`; with
//!    `recovered: false` (another epoch, more than the recovery limit missed) nothing was
//!    replayed: reload the room's history and continue from `latest_seq`;
//! 3. the room's live events, from the first after `latest_seq`.
//!
//! So the highest `seq` seen never skips one, whenever the connection drops.
//!
//! To get this for every room, connect with `?resume=1` (or `"resume": true` in the
//! `auth` frame): the connection is then not subscribed to the user's rooms on connect,
//! and each room's live events start only with its `join`. Without it, the connection is
//! subscribed to its rooms at once (seed 000's behaviour) and a live message can arrive
//! before the `join` that recovers the ones before it; a client that recovers must
//! connect with `resume`.

mod dialect;

pub use dialect::{NativeConn, NativeDialect};

use crate::frame::close;
use bytes::Bytes;
use realtime_core::{
    Channel, CloseReason, Encoder, Error, Event, EventType, MessageKind, SendMessage, Since,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// The native dialect's close code for each [`CloseReason`]: the one table
/// ([`crate::frame::close`] names the codes). A client reconnects after 4002, 4004, 4008
/// and 4029, and not after 4001, 4003 and 4009.
pub fn close_code(reason: &CloseReason) -> u16 {
    match reason {
        CloseReason::Unauthorized => close::UNAUTHORIZED,
        CloseReason::Shutdown => close::SHUTDOWN,
        CloseReason::Kicked(_) => close::KICKED,
        CloseReason::Idle => close::IDLE,
        CloseReason::SlowConsumer => close::SLOW_CONSUMER,
        CloseReason::TooManyConnections => close::TOO_MANY_CONNECTIONS,
        CloseReason::RateLimited => close::RATE_LIMITED,
        // A reason added to the core later: closed as the application's.
        _ => close::KICKED,
    }
}

/// The native dialect's encoder: one frame per event, as in the table above.
#[derive(Debug, Default, Clone, Copy)]
pub struct NativeEncoder;

/// The frame `type` for an event: seed 000's name where it has one, else the event name.
pub fn frame_type(t: &EventType) -> &str {
    if *t == EventType::USER_TYPING_START {
        "typing_start"
    } else if *t == EventType::USER_TYPING_STOP {
        "typing_stop"
    } else if *t == EventType::USER_STATUS_CHANGE
        || *t == EventType::USER_ONLINE
        || *t == EventType::USER_OFFLINE
    {
        "user_status_change"
    } else if *t == EventType::ROOM_JOIN {
        "user_join"
    } else if *t == EventType::ROOM_LEAVE {
        "user_leave"
    } else {
        t.as_str()
    }
}

/// A push frame: seed 000's Event Data Structure, fields in its order, with `type` the
/// seed's WebSocket message type ([`frame_type`]), or an app event's own name.
#[derive(serde::Serialize)]
struct Push<'a> {
    id: &'a uuid::Uuid,
    #[serde(rename = "type")]
    frame_type: &'a str,
    level: &'a str,
    action: &'a str,
    data: &'a realtime_core::EventData,
    metadata: &'a realtime_core::EventMetadata,
    timestamp: realtime_core::clock::Rfc3339,
    user_id: &'a Option<String>,
    room_id: &'a Option<String>,
}

/// Encode one event as a native push frame (serialized straight from borrowed fields;
/// no intermediate JSON value).
pub fn encode_event(event: &Event) -> Bytes {
    let frame = Push {
        id: &event.id,
        frame_type: event
            .name
            .as_deref()
            .unwrap_or_else(|| frame_type(&event.event_type)),
        level: event.level(),
        action: event.action(),
        data: &event.data,
        metadata: &event.metadata,
        timestamp: realtime_core::clock::Rfc3339(event.timestamp),
        user_id: &event.user_id,
        room_id: &event.room_id,
    };
    // Serialized into a buffer kept per thread, then copied out at its exact size: one
    // allocation per event instead of a growing Vec's reallocations (a message event is
    // ~450 bytes).
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut out) => {
            out.clear();
            // Serializing borrowed plain data with string keys cannot fail.
            let _ = serde_json::to_writer(&mut *out, &frame);
            let frame = Bytes::copy_from_slice(&out);
            // A rare huge event does not pin its size for the thread's lifetime.
            if out.capacity() > 64 << 10 {
                *out = Vec::new();
            }
            frame
        }
        // Re-entered (cannot happen: serializing does not encode events); no scratch.
        Err(_) => Bytes::from(serde_json::to_vec(&frame).unwrap_or_default()),
    })
}

impl Encoder for NativeEncoder {
    fn encode(&self, _channel: &Channel, event: &Event) -> Option<Bytes> {
        Some(encode_event(event))
    }

    fn name(&self) -> &'static str {
        "native"
    }
}

/// `{"type":"auth","data":{"status":"connected","user_id":…}}`.
pub fn auth_ok(user_id: &str) -> Bytes {
    to_bytes(&json!({"type": "auth", "data": {"status": "connected", "user_id": user_id}}))
}

/// `{"type":"pong"}`, with `id` when the ping had one.
pub fn pong(id: Option<&Value>) -> Bytes {
    match id {
        Some(id) => to_bytes(&json!({"type": "pong", "id": id})),
        None => Bytes::from_static(br#"{"type":"pong"}"#),
    }
}

/// `{"type":"ack","id":…,"data":…}`.
pub fn ack(id: &Value, data: Value) -> Bytes {
    ack_of(id, &data)
}

/// [`ack`] with `data` serialized straight from `data`, without building a JSON value
/// first: a `send`'s ack carries the whole stored message, and a message as a
/// `serde_json::Value` is a dozen strings and map nodes allocated only to be written out
/// and dropped.
pub fn ack_of<T: serde::Serialize + ?Sized>(id: &Value, data: &T) -> Bytes {
    #[derive(serde::Serialize)]
    struct Ack<'a, T: ?Sized> {
        #[serde(rename = "type")]
        kind: &'static str,
        id: &'a Value,
        data: &'a T,
    }
    // Borrowed plain data with string keys: serializing cannot fail.
    Bytes::from(
        serde_json::to_vec(&Ack {
            kind: "ack",
            id,
            data,
        })
        .unwrap_or_default(),
    )
}

/// `{"type":"error","id":…,"data":{"code","message","temporary"}}`.
pub fn error(id: Option<&Value>, e: &Error) -> Bytes {
    to_bytes(&json!({
        "type": "error",
        "id": id,
        "data": {"code": e.code(), "message": e.to_string(), "temporary": e.is_temporary()}
    }))
}

fn to_bytes(v: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(v).unwrap_or_default())
}

/// A parsed client command.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `ping`
    Ping,
    /// `auth`
    Auth {
        /// The JWT.
        token: String,
        /// `resume: true`: do not subscribe the connection to its rooms; the client
        /// `join`s each with `since` (see the module docs, *Recovery*).
        resume: bool,
    },
    /// `join`
    Join {
        /// Room.
        room_id: String,
        /// Recovery position.
        since: Option<Since>,
    },
    /// `leave`
    Leave {
        /// Room.
        room_id: String,
    },
    /// `subscribe`
    Subscribe {
        /// Channel.
        channel: Channel,
        /// Recovery position (room channels).
        since: Option<Since>,
    },
    /// `unsubscribe`
    Unsubscribe {
        /// Channel.
        channel: Channel,
    },
    /// `send`
    Send(SendMessage),
    /// `edit`
    Edit {
        /// Message.
        message_id: String,
        /// New content.
        content: String,
    },
    /// `delete`
    Delete {
        /// Message.
        message_id: String,
    },
    /// `react`
    React {
        /// Message.
        message_id: String,
        /// Emoji.
        emoji: String,
        /// Remove instead of add.
        remove: bool,
    },
    /// `read`
    Read {
        /// Message read (moves the pointer to its seq).
        message_id: Option<String>,
        /// Room (with `seq`, or the latest).
        room_id: Option<String>,
        /// Sequence number.
        seq: Option<u64>,
    },
    /// `typing`, `typing_start`, `typing_stop`
    Typing {
        /// Room.
        room_id: String,
        /// Start or stop.
        is_typing: bool,
    },
    /// `presence`, `user_status_change`
    Presence {
        /// `online` or `away`.
        status: String,
    },
    /// `publish`: an app event on a channel, if the Hub's authorizer allows it
    /// ([`realtime_core::Hub::publish_as`]).
    Publish {
        /// Channel.
        channel: Channel,
        /// The event's name, as the channel's clients know it (`client-typing`).
        event: String,
        /// Its data.
        data: realtime_core::EventData,
    },
    /// `history`
    History {
        /// Room.
        room_id: String,
        /// Page before this seq.
        before: Option<u64>,
        /// Page size.
        limit: Option<u32>,
    },
}

/// A client frame: `data` is kept as raw JSON and parsed once, straight into the
/// command's own shape.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(default)]
    id: Option<Value>,
    #[serde(default, borrow)]
    data: Option<&'a serde_json::value::RawValue>,
}

#[derive(Deserialize)]
struct RoomData {
    room_id: String,
    #[serde(default)]
    since: Option<Since>,
}
#[derive(Deserialize)]
struct PublishData {
    channel: String,
    event: String,
    #[serde(default)]
    data: Option<realtime_core::EventData>,
}
#[derive(Deserialize)]
struct ChannelData {
    channel: String,
    #[serde(default)]
    since: Option<Since>,
}
#[derive(Deserialize)]
struct SendData {
    room_id: String,
    content: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
}
#[derive(Deserialize)]
struct EditData {
    message_id: String,
    content: String,
}
#[derive(Deserialize)]
struct MessageData {
    message_id: String,
}
#[derive(Deserialize)]
struct ReactData {
    message_id: String,
    emoji: String,
    #[serde(default)]
    remove: bool,
}
#[derive(Deserialize)]
struct ReadData {
    #[serde(default)]
    message_id: Option<String>,
    #[serde(default)]
    room_id: Option<String>,
    #[serde(default)]
    seq: Option<u64>,
}
#[derive(Deserialize)]
struct TypingData {
    room_id: String,
    #[serde(default = "yes")]
    is_typing: bool,
}
fn yes() -> bool {
    true
}
#[derive(Deserialize)]
struct StatusData {
    status: String,
}
#[derive(Deserialize)]
struct TokenData {
    token: String,
    #[serde(default)]
    resume: bool,
}
#[derive(Deserialize)]
struct HistoryData {
    room_id: String,
    #[serde(default)]
    before: Option<u64>,
    #[serde(default)]
    limit: Option<u32>,
}

fn data<T: serde::de::DeserializeOwned>(
    kind: &str,
    raw: Option<&serde_json::value::RawValue>,
) -> Result<T, Error> {
    serde_json::from_str(raw.map_or("null", |r| r.get())).map_err(|e| Error::Invalid {
        field: "data",
        reason: format!("{kind}: {e}").into(),
    })
}

/// A client frame: its command and the `id` its reply carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The frame's `id` (a string or a number), if it had one.
    pub id: Option<Value>,
    /// What it asks.
    pub command: Command,
}

/// A client frame that does not parse: why, and its `id` when it could be read.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    /// The frame's `id`, when it could be read, so the error reply can carry it.
    pub id: Option<Value>,
    /// Why it was refused.
    pub error: Error,
}

/// Parse a client text frame.
///
/// # Errors
/// [`Refused`] with [`Error::Json`] for malformed JSON or a frame without `type`, with
/// [`Error::Invalid`] for an unknown `type`, a `data` of the wrong shape, an invalid
/// channel or message type.
pub fn parse(text: &[u8]) -> Result<Request, Refused> {
    let env: Envelope<'_> = serde_json::from_slice(text).map_err(|e| Refused {
        id: None,
        error: Error::Json(e.to_string()),
    })?;
    let id = env.id.filter(|v| v.is_string() || v.is_number());
    match command(&env.kind, env.data) {
        Ok(command) => Ok(Request { id, command }),
        Err(error) => Err(Refused { id, error }),
    }
}

/// The command a frame of type `kind` with `d` as its `data` asks for.
fn command(kind: &str, d: Option<&serde_json::value::RawValue>) -> Result<Command, Error> {
    Ok(match kind {
        "ping" => Command::Ping,
        "auth" => {
            let t: TokenData = data(kind, d)?;
            Command::Auth {
                token: t.token,
                resume: t.resume,
            }
        }
        "join" => {
            let r: RoomData = data(kind, d)?;
            Command::Join {
                room_id: r.room_id,
                since: r.since,
            }
        }
        "leave" => Command::Leave {
            room_id: data::<RoomData>(kind, d)?.room_id,
        },
        "subscribe" => {
            let c: ChannelData = data(kind, d)?;
            Command::Subscribe {
                channel: Channel::parse(&c.channel)?,
                since: c.since,
            }
        }
        "unsubscribe" => Command::Unsubscribe {
            channel: Channel::parse(&data::<ChannelData>(kind, d)?.channel)?,
        },
        "publish" => {
            let p: PublishData = data(kind, d)?;
            Command::Publish {
                channel: Channel::parse(&p.channel)?,
                event: p.event,
                data: p.data.unwrap_or_default(),
            }
        }
        "send" => {
            let s: SendData = data(kind, d)?;
            let kind = match s.kind.as_deref() {
                None => MessageKind::Text,
                Some(k) => MessageKind::parse(k)?,
            };
            Command::Send(SendMessage {
                room_id: s.room_id,
                content: s.content,
                kind,
                client_id: s.client_id,
            })
        }
        "edit" => {
            let e: EditData = data(kind, d)?;
            Command::Edit {
                message_id: e.message_id,
                content: e.content,
            }
        }
        "delete" => Command::Delete {
            message_id: data::<MessageData>(kind, d)?.message_id,
        },
        "react" => {
            let r: ReactData = data(kind, d)?;
            Command::React {
                message_id: r.message_id,
                emoji: r.emoji,
                remove: r.remove,
            }
        }
        "read" => {
            let r: ReadData = data(kind, d)?;
            if r.message_id.is_none() && r.room_id.is_none() {
                return Err(Error::Invalid {
                    field: "data",
                    reason: "read needs message_id or room_id".into(),
                });
            }
            Command::Read {
                message_id: r.message_id,
                room_id: r.room_id,
                seq: r.seq,
            }
        }
        "typing" => {
            let t: TypingData = data(kind, d)?;
            Command::Typing {
                room_id: t.room_id,
                is_typing: t.is_typing,
            }
        }
        "typing_start" => Command::Typing {
            room_id: data::<TypingData>(kind, d)?.room_id,
            is_typing: true,
        },
        "typing_stop" => Command::Typing {
            room_id: data::<TypingData>(kind, d)?.room_id,
            is_typing: false,
        },
        "presence" | "user_status_change" => Command::Presence {
            status: data::<StatusData>(kind, d)?.status,
        },
        "history" => {
            let h: HistoryData = data(kind, d)?;
            Command::History {
                room_id: h.room_id,
                before: h.before,
                limit: h.limit,
            }
        }
        other => {
            return Err(Error::Invalid {
                field: "type",
                reason: format!(
                    "unknown frame type {:?}",
                    other.chars().take(64).collect::<String>()
                )
                .into(),
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sends_ack_carries_the_message_as_its_json_value_would() {
        let m = realtime_core::Message::from_new(
            realtime_core::NewMessage {
                id: "m-1".into(),
                room_id: "r-1".into(),
                sender_id: "alice".into(),
                client_id: Some("c-\"1\"".into()),
                content: "héllo \"there\"\n".into(),
                kind: MessageKind::Text,
                created_at: realtime_core::clock::Clock::now(&realtime_core::clock::SystemClock),
            },
            42,
        );
        for id in [json!(7), json!("a")] {
            let direct: Value = serde_json::from_slice(&ack_of(&id, &m)).expect("json");
            let via_value: Value =
                serde_json::from_slice(&ack(&id, serde_json::to_value(&m).expect("value")))
                    .expect("json");
            assert_eq!(direct, via_value);
            assert_eq!(direct["type"], "ack");
            assert_eq!(direct["id"], id);
            assert_eq!(direct["data"]["seq"], 42);
            assert_eq!(direct["data"]["content"], "héllo \"there\"\n");
        }
    }

    #[test]
    fn parses_seed_frames_and_rejects_bad_ones() {
        let c = parse(br#"{"type":"typing_start","data":{"room_id":"room-uuid"}}"#)
            .expect("seed typing")
            .command;
        assert_eq!(
            c,
            Command::Typing {
                room_id: "room-uuid".into(),
                is_typing: true
            }
        );
        let r = parse(br#"{"type":"ping","id":7}"#).expect("ping");
        assert_eq!((r.id, r.command), (Some(json!(7)), Command::Ping));
        let r = parse(br#"{"type":"send","id":"a","data":{"room_id":1}}"#).expect_err("shape");
        assert_eq!((r.id, r.error.code()), (Some(json!("a")), "invalid"));
        assert_eq!(
            parse(b"{not json").expect_err("json").error.code(),
            "invalid_json"
        );
        assert_eq!(
            parse(br#"{"data":{}}"#).expect_err("no type").error.code(),
            "invalid_json"
        );
        assert_eq!(
            parse(br#"{"type":"fly"}"#)
                .expect_err("unknown")
                .error
                .code(),
            "invalid"
        );
        assert_eq!(
            parse(br#"{"type":"subscribe","data":{"channel":"bad channel"}}"#)
                .expect_err("ch")
                .error
                .code(),
            "invalid_channel"
        );
        assert_eq!(
            parse(br#"{"type":"read","data":{}}"#)
                .expect_err("read")
                .error
                .code(),
            "invalid"
        );
        // `data` missing, or null: the command's shape is still checked.
        let r = parse(br#"{"type":"join","id":3}"#).expect_err("no data");
        assert_eq!((r.id, r.error.code()), (Some(json!(3)), "invalid"));
        assert!(r.error.to_string().contains("join"), "{}", r.error);
        assert_eq!(
            parse(br#"{"type":"leave","data":null}"#)
                .expect_err("null data")
                .error
                .code(),
            "invalid"
        );
        // Escapes in `type` and in `data` strings are decoded.
        let c = parse(br#"{"type":"jo\u0069n","data":{"room_id":"r\"1"}}"#)
            .expect("escapes")
            .command;
        assert_eq!(
            c,
            Command::Join {
                room_id: "r\"1".into(),
                since: None
            }
        );
        let c = parse(br#"{"type":"send","data":{"room_id":"r","content":"hi","type":"text","client_id":"c1"}}"#).expect("send").command;
        assert!(matches!(
            c,
            Command::Send(SendMessage {
                kind: MessageKind::Text,
                ..
            })
        ));
    }

    #[test]
    fn a_push_is_seed_000s_event_data_structure() {
        let typing = Event::new(
            EventType::USER_TYPING_START,
            json!({"room_id": "r", "user_id": "u", "username": "ann"}),
        )
        .with_user("u")
        .with_room("r");
        let message = Event::new(
            EventType::MESSAGE_SEND,
            json!({"message_id": "m", "content": "hi", "timestamp": "2026-12-07T00:00:00Z"}),
        )
        .with_user("u")
        .with_room("r");
        let app = Event::app("notification", json!({"title": "hi"})).expect("app event");
        for (ev, wire_type) in [
            (typing, "typing_start"),
            (message, "event.message.send"),
            (app, "notification"),
        ] {
            let frame = encode_event(&ev);
            assert!(frame.starts_with(br#"{"id":""#), "the seed's field order");
            let v: Value = serde_json::from_slice(&frame).expect("json");
            let mut keys: Vec<&str> = v
                .as_object()
                .expect("object")
                .keys()
                .map(String::as_str)
                .collect();
            keys.sort_unstable();
            assert_eq!(
                keys,
                [
                    "action",
                    "data",
                    "id",
                    "level",
                    "metadata",
                    "room_id",
                    "timestamp",
                    "type",
                    "user_id"
                ]
            );
            assert_eq!(v["type"], wire_type);
            // The frame is the event itself, but for `type` naming the seed's message type.
            let mut whole = v.clone();
            whole["type"] = Value::from(ev.event_type.as_str());
            if let Some(name) = &ev.name {
                whole["name"] = Value::from(name.as_str());
            }
            let back: Event = serde_json::from_value(whole).expect("event");
            assert_eq!(back, ev);
        }
    }

    #[test]
    fn every_close_reason_has_its_own_native_code() {
        let reasons = [
            (CloseReason::Unauthorized, 4001),
            (CloseReason::Shutdown, 4002),
            (CloseReason::Kicked("bye".into()), 4003),
            (CloseReason::Idle, 4004),
            (CloseReason::SlowConsumer, 4008),
            (CloseReason::TooManyConnections, 4009),
            (CloseReason::RateLimited, 4029),
        ];
        for (reason, code) in &reasons {
            assert_eq!(close_code(reason), *code, "{reason:?}");
            // The documented rule: reconnect after 4002, 4004, 4008 and 4029 only.
            assert_eq!(
                reason.reconnect(),
                matches!(code, 4002 | 4004 | 4008 | 4029),
                "{reason:?}"
            );
        }
    }
}
