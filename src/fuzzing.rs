//! Fuzzing entry points (`fuzz/fuzz_targets/` calls them; `cargo test` replays the seed
//! corpora in `fuzz/corpus/` through them, so every input a campaign kept, and every crash
//! it found, is checked by CI). Each takes arbitrary bytes and must never panic.

use bytes::Bytes;

use crate::media::{self, Frame, MediaKind};
use crate::rtmp::session::{Config, Event, Session};

/// The RTMP server session from its first byte: handshake, chunks, commands (and the
/// same bytes as a PROXY protocol header, which comes first on a `proxy_protocol` listen).
pub fn handshake(data: &[u8]) {
    let _ = crate::rtmp::proxy::parse(&data[..data.len().min(crate::rtmp::proxy::MAX_HEADER)]);
    let mut s = Session::new(Config { max_message: 64 * 1024, ..Config::default() });
    for part in data.chunks(613) {
        if s.feed(part, 0, 1).is_err() {
            return;
        }
        while let Some(ev) = s.poll_event() {
            if let Event::Connect(_) = ev {
                s.accept_connect();
            }
        }
        let _ = s.take_output();
    }
}

/// FLV tag bodies and the codec records in them (AVC, HEVC, AAC; Enhanced RTMP's
/// `hvc1`, `av01`, `vp09`, `Opus` come through `Frame::parse`): the first byte picks the
/// kind. The same bytes as an FLV and an MP4 file played to a player (`play DIR`).
pub fn media(data: &[u8]) {
    for mp4 in [false, true] {
        if let Ok(mut s) = crate::vod::open(Box::new(data.to_vec()), mp4) {
            let _ = s.headers();
            for _ in 0..10_000 {
                if !matches!(s.next(), Ok(Some(_))) {
                    break;
                }
            }
            let _ = s.seek(u32::from(data.first().copied().unwrap_or(0)) * 100);
            let _ = s.next();
        }
    }
    let Some((&k, body)) = data.split_first() else { return };
    let kind = match k % 3 {
        0 => MediaKind::Audio,
        1 => MediaKind::Video,
        _ => MediaKind::Data,
    };
    let f = Frame::parse(kind, u32::from(k) * 1000, Bytes::copy_from_slice(body));
    // What a WHEP viewer would be sent of it, after a valid AVC configuration (so coded
    // frames reach the NAL unit splitting) and after itself (a configuration of its own).
    let mut prep = crate::whip::whep::Prep::new();
    let avc = b"\x17\x00\x00\x00\x00\x01\x42\xc0\x1f\xff\xe1\x00\x04\x67\x42\xc0\x1f\x01\x00\x02\x68\xce";
    let _ = prep.frame(&Frame::parse(MediaKind::Video, 0, Bytes::from_static(avc)));
    let _ = prep.frame(&f);
    let _ = prep.frame(&f);
    // (A truncated tag's `data_at` may lie past its end: `data()` is empty then. Found by
    // this target: fuzz/corpus/media/truncated-hevc.)
    let data = f.data();
    assert!(data.len() <= f.payload.len());
    if f.part == media::Part::Header {
        let _ = media::config::avc(data);
        let _ = media::config::hevc(data);
        let _ = media::config::aac(data);
    }
    let _ = media::config::avc(body);
    let _ = media::config::hevc(body);
    let _ = media::config::aac(body);
    let _ = media::config::video_profile(k & 1 == 1, body);
    // The picture size of a publisher's SPS (fMP4's sample entry says it).
    let _ = media::sps::avc_size(body);
    let _ = media::sps::hevc_size(body);
}

/// Text that comes from outside: playlists read back (`hls_continuous`) and served (`hls_serve`'s
/// query against a playlist), callback URLs,
/// WHIP offers, paths and `Authorization` headers, log formats, `allow`/`deny` rules,
/// other workers' `/stat` snapshots and `/control` answers; the first byte picks the
/// parser.
pub fn text(data: &[u8]) {
    let Some((&k, rest)) = data.split_first() else { return };
    let s = String::from_utf8_lossy(rest);
    match k % 9 {
        0 => {
            if let Some(p) = crate::hls::playlist::Playlist::parse(&s) {
                // What is read back renders and reads back the same.
                let again = crate::hls::playlist::Playlist::parse(&p.render()).expect("a rendered playlist parses");
                assert_eq!(again.entries.len(), p.entries.len());
            }
            // hls_serve: a query (the first line) against a playlist (the rest).
            let (query, playlist) = s.split_once('\n').unwrap_or((&s, ""));
            if let Ok(req) = crate::hls::serve::request(query) {
                let report = crate::hls::serve::report("r.m3u8", playlist).into_iter().collect::<Vec<_>>();
                let _ = crate::hls::serve::answer(playlist, &req, || report);
                let _ = crate::hls::serve::renditions(playlist);
                let _ = crate::hls::serve::master_of(query);
            }
        }
        1 => {
            let _ = crate::notify::Url::parse(&s);
            let words: Vec<&str> = s.split(' ').collect();
            let _ = crate::conf::relay::Target::parse("pull", &words);
        }
        2 => {
            let _ = crate::whip::check_offer(rest);
        }
        3 => {
            let _ = crate::whip::parse_path(&s, "whip");
            let _ = crate::whip::parse_path(&s, "whep");
            let _ = crate::whip::bearer(&s);
            let _ = crate::whip::is_session_id(&s);
        }
        4 => {
            let words: Vec<&str> = s.split(' ').collect();
            let _ = crate::conf::log::compile("f", &words);
        }
        5 => {
            let words: Vec<&str> = s.split_whitespace().collect();
            let _ = crate::conf::access::Rule::parse(k & 8 == 0, &words);
        }
        6 => {
            let _ = crate::notify::parse_reply(rest, k & 8 == 0);
        }
        7 => {
            if let Some(snap) = crate::stat::wire::decode(rest) {
                // What is read encodes and reads back the same.
                assert_eq!(crate::stat::wire::decode(&crate::stat::wire::encode(&snap)), Some(snap.clone()));
                let _ = crate::stat::merge(snap.clone(), vec![snap]);
            }
        }
        _ => {
            let _ = crate::app::control::decode(rest);
        }
    }
}

/// The whole application core (`app::sim`): a publisher of `live/s` with HLS, a recording
/// and players, driven by operations read from the input: raw bytes from the publisher,
/// chunked media and command messages with arbitrary bodies, the clock moving, players
/// joining, reading and leaving. Whatever the publisher sends, the server's output to
/// every player must stay well-formed RTMP.
pub fn app(data: &[u8]) {
    run_app(data);
}

fn run_app(data: &[u8]) -> crate::app::sim::Sim {
    use crate::app::sim::{Peer, Sim};
    use crate::rtmp::{chunk, message as msg};
    let mut sim = Sim::new(
        "rtmp { server { listen 1935; ping 3s; application live { live on; hls on; hls_path /hls; \
         hls_fragment 1s; hls_playlist_length 3s; record all; record_path /rec; record_max_size 256K; } } }",
    );
    let mut publisher = Peer::new(&mut sim);
    publisher.connect(&mut sim, "live");
    publisher.publish(&mut sim, "s");
    let mut players: Vec<Peer> = Vec::new();
    let mut ts = 0u32;
    let mut rest = data;
    let alive = |sim: &Sim, id| sim.app.exists(id) && sim.app.wants_input(id);
    while let [op, n, tail @ ..] = rest {
        // Operations 0-2 carry `n` bytes; 3-5 only their `n`.
        let len = if op % 6 < 3 { usize::from(*n).min(tail.len()) } else { 0 };
        let (arg, next) = tail.split_at(len);
        rest = next;
        match op % 6 {
            0 if alive(&sim, publisher.id) => sim.send(publisher.id, arg),
            1 if alive(&sim, publisher.id) => {
                let (type_id, csid) = match op / 6 % 3 {
                    0 => (msg::AUDIO, 4),
                    1 => (msg::VIDEO, 6),
                    _ => (msg::DATA_AMF0, 5),
                };
                ts = ts.wrapping_add(u32::from(*n) * 4);
                let bytes = chunk::encode(csid, ts, type_id, publisher.msid, arg, chunk::DEFAULT_CHUNK_SIZE);
                sim.send(publisher.id, &bytes);
            }
            2 if alive(&sim, publisher.id) => {
                let bytes = chunk::encode(3, 0, msg::COMMAND_AMF0, u32::from(op / 6 % 2) * publisher.msid, arg, chunk::DEFAULT_CHUNK_SIZE);
                sim.send(publisher.id, &bytes);
            }
            3 => sim.advance(u64::from(*n) * 20),
            4 if players.len() < 4 => {
                let mut p = Peer::new(&mut sim);
                p.connect(&mut sim, "live");
                p.play(&mut sim, "s");
                players.push(p);
            }
            5 if !players.is_empty() => {
                let p = players.remove(usize::from(*n) % players.len());
                if sim.app.exists(p.id) {
                    p.vanish(&mut sim);
                }
            }
            _ => {}
        }
        for p in players.iter_mut() {
            // (Peer::read checks that every chunk the server wrote parses.)
            p.read(&mut sim);
        }
    }
    sim.advance(5000);
    sim
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file of `fuzz/corpus/NAME/` through `f`.
    fn replay(name: &str, f: fn(&[u8])) -> usize {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(name);
        let Ok(entries) = std::fs::read_dir(&dir) else { return 0 };
        let mut n = 0;
        for e in entries.flatten() {
            let data = std::fs::read(e.path()).expect("a corpus file");
            f(&data);
            n += 1;
        }
        n
    }

    #[test]
    fn corpora_replay_without_a_panic() {
        for (name, f) in [("handshake", handshake as fn(&[u8])), ("media", media), ("text", text), ("app", app)] {
            f(&[]);
            f(&[0; 64]);
            f(&[0xff; 3000]);
            let n = replay(name, f);
            assert!(n > 0, "the seed corpus of {name} (fuzz/capture.pl makes it)");
        }
    }

    #[test]
    fn the_app_target_gets_deep() {
        // A keyframe with an AVC header and an AAC header, then media over four seconds
        // with a player: the ops reach HLS and the recorder.
        let mut ops = vec![4, 0];
        ops.extend([1 + 6, 21, 0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 3, 0x67, 1, 2, 1, 0, 2, 0x68, 3]);
        ops.extend([1, 4, 0xaf, 0, 0x12, 0x10]);
        for _ in 0..100 {
            // (n = 10: the timestamp moves 40 ms, a second of video every 25.)
            ops.extend([1 + 6, 10, 0x17, 1, 0, 0, 0, 0, 0, 0, 1, 0x65]);
            ops.extend([3, 2]);
        }
        let sim = run_app(&ops);
        assert!(!sim.logs.iter().any(|l| l.2.contains("error")), "{:?}", sim.logs);
        let fs = sim.fs.borrow();
        assert!(fs.files.get("/hls/s.m3u8").is_some_and(|p| p.windows(4).any(|w| w == b".ts\n")), "HLS segments listed");
        assert!(fs.files.get("/rec/s.flv").is_some_and(|f| f.len() > 1000), "a recording: {:?}", fs.files.iter().map(|(k, v)| (k, v.len())).collect::<Vec<_>>());
    }
}
