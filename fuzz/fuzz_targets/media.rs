//! FLV tag bodies and the codec records in them (AVC, HEVC, AAC, Enhanced RTMP).
//! (The body is `ngx_rtmp_rs::fuzzing::media`, which `cargo test` replays the corpus through.)
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ngx_rtmp_rs::fuzzing::media(data));
