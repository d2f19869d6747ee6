//! The RTMP server session from its very first byte (C0, C1, C2, then chunks).
//! (The body is `ngx_rtmp_rs::fuzzing::handshake`, which `cargo test` replays the corpus through.)
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ngx_rtmp_rs::fuzzing::handshake(data));
