//! Event JSON as brokers and stores carry it (`Event::from_json_bytes`): any bytes give
//! an event or a typed error; an event that parses serializes and parses back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use realtime_core::Event;

fuzz_target!(|data: &[u8]| {
    if let Ok(ev) = Event::from_json_bytes(data) {
        let bytes = ev.to_json_bytes();
        assert_eq!(bytes.len(), ev.json_len());
        let back = Event::from_json_bytes(&bytes).expect("an event's own JSON parses");
        assert_eq!(back.id, ev.id);
        assert_eq!(back.event_type, ev.event_type);
    }
});
