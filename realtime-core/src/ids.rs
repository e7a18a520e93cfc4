//! Identifier rules shared by users, rooms and messages.
//!
//! Ids are opaque strings chosen by the host application (a JWT `sub`, a database key, a
//! UUID). To keep them safe inside channel names (`room:{id}`), Redis channels and URLs they
//! must be 1–128 bytes of `[A-Za-z0-9_\-=@,.;]` — the Pusher channel-name alphabet.

use crate::error::{Error, Result, clip};

/// A user id (`sub` of the JWT, seed 000's `user_id`). See [`validate_id`].
pub type UserId = String;
/// A room id (seed 000's `room_id`). See [`validate_id`].
pub type RoomId = String;
/// A message id: a UUID v7 string assigned by the Hub.
pub type MessageId = String;

/// Maximum length of an id in bytes.
pub const MAX_ID_LEN: usize = 128;

/// Whether `c` is allowed in ids and channel names (Pusher's alphabet).
pub(crate) fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '=' | '@' | ',' | '.' | ';')
}

/// Check an id: 1–[`MAX_ID_LEN`] bytes of `[A-Za-z0-9_\-=@,.;]`.
///
/// # Errors
/// [`Error::Invalid`] naming `field` when the id is empty, too long or has another character.
pub fn validate_id(field: &'static str, id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if id.len() > MAX_ID_LEN {
        return Err(Error::invalid(
            field,
            format!("is {} bytes, the limit is {MAX_ID_LEN}", id.len()),
        ));
    }
    if let Some(c) = id.chars().find(|c| !is_name_char(*c)) {
        return Err(Error::invalid(
            field,
            format!(
                "{:?} contains {c:?}; allowed are A-Z a-z 0-9 _ - = @ , . ;",
                clip(id)
            ),
        ));
    }
    Ok(())
}

/// A new time-ordered id (UUID v7, hyphenated lowercase).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A session's public socket id, `"<node>.<session>"`: this node's random number and the
/// session's number on it, the form Pusher protocol 7 requires of `socket_id`
/// (`\d+\.\d+`). Unique within a cluster (nodes draw their number at random from 10⁹),
/// stable for the session's life, and safe to show to its client: a host passes it back
/// to exclude that client from an event ([`crate::Event::except`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId {
    node: u32,
    session: u64,
}

impl SocketId {
    /// The socket id of session `session` on node `node`.
    pub const fn new(node: u32, session: u64) -> SocketId {
        SocketId { node, session }
    }

    /// The node's number.
    pub const fn node(&self) -> u32 {
        self.node
    }

    /// The session's number on its node.
    pub const fn session(&self) -> u64 {
        self.session
    }
}

impl std::fmt::Display for SocketId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.node, self.session)
    }
}

impl std::str::FromStr for SocketId {
    type Err = Error;

    /// Parse `"<digits>.<digits>"`.
    ///
    /// # Errors
    /// [`Error::Invalid`] (field `socket_id`) for anything else.
    fn from_str(s: &str) -> Result<SocketId> {
        let bad = || {
            Error::invalid(
                "socket_id",
                format!("{:?} is not <digits>.<digits>", clip(s)),
            )
        };
        let (node, session) = s.split_once('.').ok_or_else(bad)?;
        let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(node) || !digits(session) {
            return Err(bad());
        }
        Ok(SocketId {
            node: node.parse().map_err(|_| bad())?,
            session: session.parse().map_err(|_| bad())?,
        })
    }
}

impl serde::Serialize for SocketId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for SocketId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<SocketId, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_ids_print_and_parse_as_pusher_requires() {
        let id = SocketId::new(123_456_789, 42);
        assert_eq!(id.to_string(), "123456789.42");
        assert_eq!("123456789.42".parse::<SocketId>().expect("parse"), id);
        let json = serde_json::to_string(&id).expect("json");
        assert_eq!(json, r#""123456789.42""#);
        assert_eq!(serde_json::from_str::<SocketId>(&json).expect("back"), id);
        for bad in [
            "",
            ".",
            "1.",
            ".1",
            "1.2.3",
            "a.1",
            "1.-2",
            "+1.2",
            "99999999999.1",
            "1 .2",
        ] {
            let err = bad.parse::<SocketId>().expect_err(bad);
            assert!(matches!(err, Error::Invalid { .. }), "{bad}: {err}");
        }
    }
}
