//! The relay's client session fed what a hostile server could send after its handshake:
//! never a panic, never an unbounded buffer (the chunk reader's limits hold).
#![no_main]
use libfuzzer_sys::fuzz_target;
use ngx_rtmp_rs::rtmp::client::{Client, Mode};

fuzz_target!(|data: &[u8]| {
    let mode = if data.first().is_some_and(|b| b & 1 == 0) { Mode::Play } else { Mode::Publish };
    let mut c = Client::new(mode, "app", "rtmp://h/app", "s", 4096, 1 << 20, 7);
    let mut hs = vec![3u8];
    hs.resize(1 + 2 * 1536, 0);
    if c.feed(&hs).is_err() {
        return;
    }
    for piece in data.chunks(97) {
        if c.feed(piece).is_err() {
            break;
        }
        while c.poll_event().is_some() {}
        let _ = c.take_output();
    }
});
