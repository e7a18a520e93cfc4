//! The reference server's REST bodies: the first byte picks an endpoint's body type, the
//! rest is its JSON. serde_json parses it (or refuses it) and the handler's own checks
//! run on what parsed — field limits, kinds, roles, ids — without a panic.
#![no_main]

use chat_server::api;
use libfuzzer_sys::fuzz_target;
use realtime_core::{CreateRoom, Limits, MessageKind, Role, RoomPatch, User, validate_id};

fn profile(limits: &Limits, u: &User) {
    let _ = limits.check_profile(u);
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, json)) = data.split_first() else {
        return;
    };
    let limits = Limits::default();
    let now = chrono::DateTime::UNIX_EPOCH;
    match which % 9 {
        0 => {
            if let Ok(b) = serde_json::from_slice::<api::NewUser>(json) {
                let mut u = User::new(b.id.unwrap_or_default(), b.username, now);
                u.display_name = b.display_name;
                u.email = b.email;
                u.avatar = b.avatar;
                profile(&limits, &u);
            }
        }
        1 => {
            if let Ok(b) = serde_json::from_slice::<api::UserPatch>(json) {
                let mut u = User::new("u", b.username.unwrap_or_default(), now);
                u.display_name = b.display_name;
                u.email = b.email;
                u.avatar = b.avatar;
                profile(&limits, &u);
            }
        }
        2 => {
            if let Ok(b) = serde_json::from_slice::<api::Login>(json) {
                let _ = validate_id("username", &b.username);
            }
        }
        3 => {
            if let Ok(b) = serde_json::from_slice::<CreateRoom>(json) {
                let _ = limits.check_name("name", &b.name);
                if let Some(d) = &b.description {
                    let _ = Limits::check_text("description", d, limits.max_description_bytes);
                }
                for m in &b.members {
                    let _ = validate_id("user_id", m);
                }
            }
        }
        4 => {
            if let Ok(b) = serde_json::from_slice::<RoomPatch>(json)
                && let Some(d) = &b.description
            {
                let _ = Limits::check_text("description", d, limits.max_description_bytes);
            }
        }
        5 => {
            if let Ok(b) = serde_json::from_slice::<api::NewMessageBody>(json) {
                let _ = validate_id("room_id", &b.room_id);
                let _ = limits.check_content(&b.content);
                if let Some(k) = &b.kind {
                    let _ = MessageKind::parse(k);
                }
            }
        }
        6 => {
            if let Ok(b) = serde_json::from_slice::<api::AddMember>(json)
                && let Some(r) = &b.role
            {
                let _ = Role::parse(r);
            }
        }
        7 => {
            if let Ok(b) = serde_json::from_slice::<api::EmojiBody>(json) {
                let _ = limits.check_emoji(&b.emoji);
            }
        }
        _ => {
            let _ = serde_json::from_slice::<api::SystemBody>(json);
            let _ = serde_json::from_slice::<api::EditBody>(json);
            let _ = serde_json::from_slice::<api::NewInvite>(json);
        }
    }
});
