//! The whole application core (publisher, players, HLS, recording) driven by operations read from the input.
//! (The body is `ngx_rtmp_rs::fuzzing::app`, which `cargo test` replays the corpus through.)
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ngx_rtmp_rs::fuzzing::app(data));
