//! [`EventData`]: an event's `data`, held as its JSON text and parsed on first read.

use crate::error::Result;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;
use std::fmt;
use std::sync::OnceLock;

/// An event's `data`: any JSON value, held as its JSON text.
///
/// The text is what every copy of the event carries — a dialect's frame, the broker's
/// payload, the event store — so it is serialized once, when the event is made, and each
/// encoding copies it as is instead of walking a [`Value`] tree again (for a chat message,
/// building, encoding and dropping that tree was ~12 % of the server's CPU).
///
/// Reading works as on a [`Value`]: `data["content"]`, [`EventData::get`],
/// [`EventData::value`] parse the text once, on first use, and keep the tree. To change
/// data, build a new value and convert it (`ev.data = value.into()`).
///
/// ```
/// use realtime_core::EventData;
/// use serde_json::json;
/// let d = EventData::from(json!({"content": "hi", "n": 1}));
/// assert_eq!(d["content"], "hi");
/// assert_eq!(d.get("n").and_then(|v| v.as_u64()), Some(1));
/// assert_eq!(d.json(), r#"{"content":"hi","n":1}"#);
/// #[derive(serde::Serialize)]
/// struct Typed<'a> { content: &'a str }
/// let t = EventData::from_serialize(&Typed { content: "hi" }).unwrap();
/// assert_eq!(t["content"], "hi");
/// ```
pub struct EventData {
    json: Box<RawValue>,
    /// The parsed tree, made on first read.
    parsed: OnceLock<Value>,
}

impl EventData {
    /// `null`.
    pub fn null() -> EventData {
        EventData::from_raw(RawValue::NULL.to_owned())
    }

    fn from_raw(json: Box<RawValue>) -> EventData {
        EventData {
            json,
            parsed: OnceLock::new(),
        }
    }

    /// Serialize `value` once into event data.
    ///
    /// # Errors
    /// [`Error::Json`](crate::Error::Json) when `value`'s `Serialize` fails (a map with non-string keys, or the
    /// type's own error).
    pub fn from_serialize<T: Serialize + ?Sized>(value: &T) -> Result<EventData> {
        Ok(EventData::from_raw(serde_json::value::to_raw_value(value)?))
    }

    /// The JSON text, compact, as it goes on the wire.
    pub fn json(&self) -> &str {
        self.json.get()
    }

    /// The data as a [`Value`] tree (parsed on first use, then kept).
    pub fn value(&self) -> &Value {
        self.parsed.get_or_init(|| {
            // The text came from serializing a value or from a parsed document: valid JSON.
            serde_json::from_str(self.json.get()).unwrap_or(Value::Null)
        })
    }

    /// The data as an owned [`Value`] tree.
    pub fn to_value(&self) -> Value {
        self.value().clone()
    }

    /// `data[key]` of an object, like [`Value::get`].
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.value().get(key)
    }

    /// Deserialize the data into `T`.
    ///
    /// # Errors
    /// [`Error::Json`](crate::Error::Json) when the data does not have `T`'s shape.
    pub fn deserialize<'a, T: Deserialize<'a>>(&'a self) -> Result<T> {
        Ok(serde_json::from_str(self.json.get())?)
    }
}

impl Default for EventData {
    fn default() -> Self {
        EventData::null()
    }
}

impl Clone for EventData {
    fn clone(&self) -> Self {
        EventData {
            json: self.json.clone(),
            parsed: self.parsed.clone(),
        }
    }
}

impl From<Value> for EventData {
    fn from(v: Value) -> Self {
        // A `Value` always serializes (its map keys are strings).
        let json =
            serde_json::value::to_raw_value(&v).unwrap_or_else(|_| RawValue::NULL.to_owned());
        let parsed = OnceLock::new();
        let _ = parsed.set(v);
        EventData { json, parsed }
    }
}

impl PartialEq for EventData {
    /// Equal when the JSON values are equal (key order and spacing aside).
    fn eq(&self, other: &Self) -> bool {
        self.json.get() == other.json.get() || self.value() == other.value()
    }
}

impl fmt::Debug for EventData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.json.get())
    }
}

impl<I: serde_json::value::Index> std::ops::Index<I> for EventData {
    type Output = Value;
    /// As indexing a [`Value`]: `Value::Null` for a missing key or index.
    fn index(&self, index: I) -> &Value {
        &self.value()[index]
    }
}

impl Serialize for EventData {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.json.serialize(s)
    }
}

impl<'de> Deserialize<'de> for EventData {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(EventData::from_raw(Box::<RawValue>::deserialize(d)?))
    }
}
