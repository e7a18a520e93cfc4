//! The WebSocket frame decoder of every axum connection (tungstenite under our limits):
//! any bytes after the upgrade give frames and at most one typed error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use realtime_transport_ws::WsConfig;

fuzz_target!(|data: &[u8]| {
    let cfg = WsConfig {
        max_message_bytes: 4096,
        max_frame_bytes: 4096,
        ..WsConfig::default()
    };
    let frames = realtime_transport_ws::decode_client_bytes(data, &cfg, 64);
    // Only the last result may be an error: the reader stops at the first.
    if let Some(i) = frames.iter().position(Result::is_err) {
        assert_eq!(i + 1, frames.len());
    }
    // Each text frame that came through is UTF-8 and the native parser takes it.
    for f in frames.into_iter().flatten() {
        if let realtime_transport_ws::Frame::Text(t) = f {
            assert!(std::str::from_utf8(&t).is_ok());
            let _ = realtime_transport_ws::native::parse(&t);
        }
    }
});
