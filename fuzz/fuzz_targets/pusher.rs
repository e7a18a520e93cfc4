//! The Pusher dialect's decoders: client frames and each payload they carry, channel
//! names, and the HTTP API's signature check over any query string and body. Any bytes
//! give a value or a refusal, never a panic; a request the fuzzer makes up is never
//! taken as signed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use realtime_pusher::protocol::{self, ClientFrame, Signin, Subscribe, Unsubscribe};

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = serde_json::from_slice::<ClientFrame<'_>>(data) {
        let _ = protocol::data_of::<Subscribe>(frame.data);
        let _ = protocol::data_of::<Unsubscribe>(frame.data);
        let _ = protocol::data_of::<Signin>(frame.data);
        if let Some(c) = frame.channel.as_deref() {
            let _ = realtime_pusher::dialect::pusher_channel(c);
        }
    }
    let text = String::from_utf8_lossy(data);
    let (query, body) = text.split_once('\n').unwrap_or((&text, ""));
    let app = realtime_pusher::App::new("1", "key", "secret").expect("app");
    let method = axum::http::Method::POST;
    let signed = realtime_pusher::api::verify_request(&app, &method, "/apps/1/events", Some(query), body.as_bytes(), 1_700_000_000);
    assert!(signed.is_err() || query.contains("auth_signature="), "accepted without a signature: {query}");
});
