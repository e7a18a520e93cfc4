//! The Pusher encoder: a Hub [`Event`] as a Pusher frame, made once per event whatever the
//! number of Pusher subscribers.
//!
//! | Hub event | Pusher frame |
//! |---|---|
//! | an app event ([`Event::app`]: a trigger, a client event, a host's publish) | `{"event": name, "channel", "data"}`, plus `user_id` for client events on presence channels |
//! | `event.channel.member.add` | `pusher_internal:member_added` with `{"user_id","user_info"}` |
//! | `event.channel.member.remove` | `pusher_internal:member_removed` with `{"user_id"}` |
//! | any other event (chat events on channels a Pusher client joined) | `{"event": "<event type>", "channel", "data"}` |
//!
//! The channel `user:{id}` is Pusher's `#server-to-user-{id}`; other names are the same
//! in both. `data` goes as [`protocol::event_frame`] says: what a trigger sent, unchanged.

use crate::protocol;
use crate::state::{AppState, is_cache_channel};
use bytes::Bytes;
use realtime_core::{Channel, Encoder, Event, EventType, Visibility};
use std::sync::Arc;

/// Prefix of the channel a signed-in user's events go to (Pusher's *user channel*).
pub const USER_CHANNEL_PREFIX: &str = "#server-to-user-";

/// The Pusher name of a Hub channel.
pub fn channel_name(channel: &Channel) -> std::borrow::Cow<'_, str> {
    match channel {
        Channel::User(id) => format!("{USER_CHANNEL_PREFIX}{id}").into(),
        Channel::Named(n) => std::borrow::Cow::Borrowed(n),
        other => other.to_string().into(),
    }
}

/// Encodes Hub events into Pusher frames ([module](self)). The encoder of a
/// [`PusherDialect`](crate::PusherDialect) also remembers each cache channel's last event.
#[derive(Debug, Default, Clone)]
pub struct PusherEncoder {
    cache: Option<Arc<AppState>>,
}

impl PusherEncoder {
    /// The encoder of an app whose cache channels remember their last event in `state`.
    pub(crate) fn caching(state: Arc<AppState>) -> PusherEncoder {
        PusherEncoder { cache: Some(state) }
    }
}

impl Encoder for PusherEncoder {
    fn encode(&self, channel: &Channel, event: &Event) -> Option<Bytes> {
        let name = channel_name(channel);
        let t = &event.event_type;
        if *t == EventType::APP {
            let user_id = (channel.visibility() == Visibility::Presence)
                .then_some(event.user_id.as_deref())
                .flatten();
            let ev = event.name.as_deref().unwrap_or_default();
            let frame = protocol::event_frame(ev, &name, event.data.json(), user_id);
            if let Some(state) = &self.cache
                && is_cache_channel(&name)
            {
                state.cache_event(channel, frame.clone());
            }
            return Some(frame);
        }
        if *t == EventType::CHANNEL_MEMBER_ADD {
            return Some(protocol::frame(
                "pusher_internal:member_added",
                Some(&name),
                event.data.json(),
            ));
        }
        if *t == EventType::CHANNEL_MEMBER_REMOVE {
            let user_id = event.data.get("user_id").cloned().unwrap_or_default();
            let data = serde_json::json!({ "user_id": user_id });
            return Some(protocol::frame(
                "pusher_internal:member_removed",
                Some(&name),
                &data.to_string(),
            ));
        }
        Some(protocol::event_frame(
            t.as_str(),
            &name,
            event.data.json(),
            None,
        ))
    }

    fn name(&self) -> &'static str {
        "pusher"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn enc(channel: &str, ev: &Event) -> Value {
        let ch = Channel::parse(channel).expect("channel");
        serde_json::from_slice(&PusherEncoder::default().encode(&ch, ev).expect("frame"))
            .expect("json")
    }

    #[test]
    fn app_events_keep_their_name_and_data() {
        let data: realtime_core::EventData =
            serde_json::from_str(r#"{"data":{"session_id":1}}"#).expect("data");
        let ev = Event::app("App\\Events\\AvailabilityUpdated", data).expect("event");
        let f = enc("availability", &ev);
        assert_eq!(f["event"], "App\\Events\\AvailabilityUpdated");
        assert_eq!(f["channel"], "availability");
        assert_eq!(f["data"], r#"{"data":{"session_id":1}}"#);
        // Client events on presence channels name their sender.
        let ev = Event::app("client-typing", json!({}))
            .expect("event")
            .with_user("7");
        assert_eq!(enc("presence-room", &ev)["user_id"], "7");
        assert!(enc("private-room", &ev).get("user_id").is_none());
    }

    #[test]
    fn member_events_are_pusher_internal() {
        let member = json!({"user_id": "7", "user_info": {"name": "Ana"}});
        let add = Event::new(EventType::CHANNEL_MEMBER_ADD, member.clone());
        let f = enc("presence-lobby", &add);
        assert_eq!(f["event"], "pusher_internal:member_added");
        let data: Value = serde_json::from_str(f["data"].as_str().expect("string")).expect("json");
        assert_eq!(data, member);
        let remove = Event::new(EventType::CHANNEL_MEMBER_REMOVE, member);
        let f = enc("presence-lobby", &remove);
        assert_eq!(f["event"], "pusher_internal:member_removed");
        assert_eq!(f["data"], r#"{"user_id":"7"}"#);
    }

    #[test]
    fn user_channels_are_server_to_user() {
        let ev = Event::app("notice", json!({"n": 1})).expect("event");
        assert_eq!(enc("user:7", &ev)["channel"], "#server-to-user-7");
    }
}
