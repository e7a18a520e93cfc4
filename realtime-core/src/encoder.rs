//! The dialect encoder: how a transport turns an [`Event`] into its wire frame.
//!
//! The Hub encodes each event once per registered dialect and queues the same bytes to
//! every subscribed session of that dialect. Implemented by the transports; this module
//! needs no runtime, so a dialect crate builds on it without the Hub.

use crate::channel::Channel;
use crate::event::Event;
use bytes::Bytes;

/// Encodes events into one wire dialect's frames. Supplied by transports; core knows no
/// frame format. Return `None` for events the dialect does not carry.
pub trait Encoder: Send + Sync + 'static {
    /// The frame for `event` published on `channel`.
    fn encode(&self, channel: &Channel, event: &Event) -> Option<Bytes>;

    /// The dialect's name, for metrics and logs (`native`, `pusher`, `socketio`; default
    /// `json`).
    fn name(&self) -> &'static str {
        "json"
    }
}

/// The identity encoder: the event's JSON (seed 000's Event Data Structure) as is.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonEncoder;

impl Encoder for JsonEncoder {
    fn encode(&self, _channel: &Channel, event: &Event) -> Option<Bytes> {
        Some(Bytes::from(event.to_json_bytes()))
    }
}
