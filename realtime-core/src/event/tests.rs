//! Tests of event names, data and the wire form.

use super::*;
use serde_json::Value;

/// Event data: serialized once, read like a `Value`, equal by value, carried as is
/// through an event's JSON; bad input is a typed error.
#[test]
fn event_data_reads_like_a_value_and_travels_as_text() {
    let d = EventData::from(serde_json::json!({"b": [1, 2], "a": {"x": null}}));
    assert_eq!(d.json(), r#"{"a":{"x":null},"b":[1,2]}"#);
    assert_eq!(d["b"][1], 2);
    assert_eq!(d["missing"], Value::Null);
    assert!(d.get("missing").is_none());
    // Equal by value: other key order and spacing.
    let same: EventData = serde_json::from_str(r#"{ "b": [1,2], "a": {"x": null} }"#).expect("raw");
    assert_eq!(same, d);
    assert_ne!(EventData::from(serde_json::json!({"b": [2, 1]})), d);
    assert_eq!(EventData::default().json(), "null");
    // Typed reads, and a shape mismatch as an error, not a panic.
    #[derive(Deserialize, Debug, PartialEq)]
    struct B {
        b: Vec<u32>,
    }
    assert_eq!(d.deserialize::<B>().expect("typed"), B { b: vec![1, 2] });
    assert_eq!(
        d.deserialize::<Vec<u32>>().expect_err("shape").code(),
        "invalid_json"
    );
    // A map with non-string keys cannot be event data.
    let bad: std::collections::BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into();
    assert_eq!(
        EventData::from_serialize(&bad).expect_err("keys").code(),
        "invalid_json"
    );
    // Through an event's JSON and back: the text goes out as is, without re-spacing.
    let raw: EventData = serde_json::from_str(r#"{"k":  "v"}"#).expect("raw");
    let ev = Event::new(EventType::SYSTEM_BROADCAST, raw);
    let text = String::from_utf8(ev.to_json_bytes()).expect("utf8");
    assert!(text.contains(r#""data":{"k":  "v"}"#), "{text}");
    let back = Event::from_json_bytes(text.as_bytes()).expect("parse");
    assert_eq!(back.data["k"], "v");
    assert_eq!(back, ev);
    // Missing or null data reads as null.
    let mut v = serde_json::to_value(&ev).expect("value");
    v.as_object_mut().expect("object").remove("data");
    let no_data: Event = serde_json::from_value(v).expect("no data");
    assert_eq!(no_data.data.json(), "null");
}

#[test]
fn every_seed_name_round_trips() {
    assert_eq!(EventType::ALL.len(), 25);
    for t in EventType::ALL {
        let parsed = EventType::parse(t.as_str()).expect("seed name parses");
        assert_eq!(&parsed, t);
        assert_eq!(parsed.to_string(), t.as_str());
        assert_eq!(
            format!("event.{}.{}", parsed.level(), parsed.action()),
            t.as_str()
        );
    }
    assert_eq!(EventType::USER_TYPING_START.level(), "user");
    assert_eq!(EventType::USER_TYPING_START.action(), "typing.start");
    assert_eq!(EventType::MESSAGE_REACTION_ADD.action(), "reaction.add");
}

#[test]
fn custom_names_allowed_bad_names_rejected() {
    let t = EventType::parse("event.order.shipped").expect("custom");
    assert_eq!((t.level(), t.action()), ("order", "shipped"));
    for bad in [
        "",
        "event",
        "event.",
        "event.user",
        "event..send",
        "event.user.",
        "Event.user.online",
        "event.User.online",
        "event.user.on line",
        "evt.user.online",
        "event.user.online\0",
        &format!("event.user.{}", "a".repeat(33)),
        &format!("event.{}", ["ab"; 50].join(".")),
    ] {
        let err = EventType::parse(bad).expect_err(bad);
        assert_eq!(err.code(), "invalid_event_type", "{bad}");
    }
}

#[test]
fn event_json_matches_seed_shape() {
    let mut ev = Event::new(
        EventType::MESSAGE_SEND,
        serde_json::json!({"message_id": "m", "content": "Hello world"}),
    )
    .with_user("user-uuid")
    .with_room("room-uuid");
    ev.metadata.client_info = Some("curl".into());
    ev.metadata.ip_address = Some("127.0.0.1".into());
    let v = serde_json::to_value(&ev).expect("serialize");
    let obj = v.as_object().expect("object");
    let mut keys: Vec<_> = obj.keys().cloned().collect();
    keys.sort();
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
    assert_eq!(v["metadata"]["ip_address"], "127.0.0.1");
    assert_eq!(v["id"].as_str().map(|s| &s[14..15]), Some("7"), "uuid v7");
    let ts = v["timestamp"].as_str().expect("ts");
    assert!(ts.ends_with('Z') || ts.ends_with("+00:00"), "{ts}");
    let back = Event::from_json_bytes(&ev.to_json_bytes()).expect("round trip");
    assert_eq!(back, ev);
}

#[test]
fn parses_seed_example_and_rejects_inconsistent_level() {
    let seed = r#"{
      "id": "0190a3b4-0000-7000-8000-000000000000",
      "type": "event.message.send", "level": "message", "action": "send",
      "data": {"message_id": "msg-uuid", "content": "Hello world", "timestamp": "2024-01-01T00:00:00Z"},
      "metadata": {"client_info": "...", "ip_address": "..."},
      "timestamp": "2024-01-01T00:00:00Z", "user_id": "user-uuid", "room_id": "room-uuid"
    }"#;
    let ev = Event::from_json_bytes(seed.as_bytes()).expect("seed example parses");
    assert_eq!(ev.event_type, EventType::MESSAGE_SEND);
    assert_eq!(ev.metadata.client_info.as_deref(), Some("..."));
    let wrong = seed.replace(r#""level": "message""#, r#""level": "room""#);
    assert_eq!(
        Event::from_json_bytes(wrong.as_bytes())
            .expect_err("mismatch")
            .code(),
        "invalid"
    );
    let bad_type = seed.replace("event.message.send", "message.send");
    assert_eq!(
        Event::from_json_bytes(bad_type.as_bytes())
            .expect_err("bad")
            .code(),
        "invalid_event_type"
    );
    assert_eq!(
        Event::from_json_bytes(b"{not json")
            .expect_err("bad")
            .code(),
        "invalid_json"
    );
}
