//! Text from outside: playlists read back, callback URLs, WHIP offers and headers, log formats, access rules, callback replies, other workers' /stat snapshots and /control answers.
//! (The body is `ngx_rtmp_rs::fuzzing::text`, which `cargo test` replays the corpus through.)
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ngx_rtmp_rs::fuzzing::text(data));
