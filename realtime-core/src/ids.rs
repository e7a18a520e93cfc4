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
