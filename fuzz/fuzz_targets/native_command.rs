//! The native dialect's client commands (`realtime_transport_ws::native::parse`): any
//! bytes give a command or a typed error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = realtime_transport_ws::native::parse(data);
});
