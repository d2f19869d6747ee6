//! WHIP ingest fed arbitrary datagrams: the H.264 depacketizer and the STUN demux never
//! panic, never grow past their bounds, and every tag is well formed.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ngx_rtmp_rs::whip::{h264::Depacketizer, stun};

const MAX_AU: usize = 64 * 1024;

/// Each picture tag's NAL length prefixes add up to its body.
fn check(tag: &ngx_rtmp_rs::whip::h264::VideoTag) {
    let b = &tag.body[..];
    if tag.sequence_header {
        assert_eq!(b.get(..6), Some(&[0x17, 0, 0, 0, 0, 1][..]));
        return;
    }
    assert!(b.len() <= 5 + MAX_AU);
    assert_eq!(b.first(), Some(&if tag.keyframe { 0x17 } else { 0x27 }));
    let mut rest = b.get(5..).expect("tag header");
    assert!(!rest.is_empty());
    while !rest.is_empty() {
        let len: [u8; 4] = rest.get(..4).expect("length").try_into().expect("4 bytes");
        let n = u32::from_be_bytes(len) as usize;
        assert!(n > 0);
        rest = rest.get(4 + n..).expect("NAL unit inside the body");
    }
}

// Packets: 2-byte length, 2-byte sequence number, 4-byte timestamp, flags (bit 0 marker,
// bit 1 the payload is sprop-parameter-sets text), payload.
fuzz_target!(|data: &[u8]| {
    let mut d = Depacketizer::new(MAX_AU);
    let mut rest = data;
    while let [l0, l1, s0, s1, t0, t1, t2, t3, flags, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*l0, *l1])).min(tail.len());
        let (payload, next) = tail.split_at(len);
        rest = next;
        if stun::is_stun(payload) {
            let _ = stun::username(payload);
        }
        if let Some(ufrag) = stun::local_ufrag(payload) {
            assert!(!ufrag.is_empty());
        }
        if flags & 2 != 0 {
            if let Ok(text) = std::str::from_utf8(payload) {
                d.set_sprop(text);
            }
            continue;
        }
        let seq = u16::from_be_bytes([*s0, *s1]);
        let ts = u32::from_be_bytes([*t0, *t1, *t2, *t3]);
        let tags = d.push(seq, ts, flags & 1 != 0, payload);
        assert!(tags.len() <= 4);
        for tag in &tags {
            check(tag);
        }
        let _ = d.take_keyframe_request();
    }
});
