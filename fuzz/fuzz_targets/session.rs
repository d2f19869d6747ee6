//! A server session fed a valid handshake and then arbitrary bytes, accepting whatever the
//! client asks: it may refuse the client (an error), never panic or grow without bound.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ngx_rtmp_rs::rtmp::session::{Config, Event, Session};

fuzz_target!(|data: &[u8]| {
    let mut s = Session::new(Config { max_message: 64 * 1024, ..Config::default() });
    let mut hs = vec![3u8];
    hs.extend_from_slice(&[0u8; 1536 * 2]);
    s.feed(&hs, 0, 1).expect("handshake");
    for part in data.chunks(997) {
        if s.feed(part, 0, 1).is_err() {
            return;
        }
        while let Some(ev) = s.poll_event() {
            match ev {
                Event::Connect(_) => s.accept_connect(),
                Event::Publish { msid, name, .. } => s.accept_publish(msid, &name),
                Event::Play { msid, name, .. } => s.accept_play(msid, &name),
                _ => {}
            }
        }
        let _ = s.take_output();
    }
});
