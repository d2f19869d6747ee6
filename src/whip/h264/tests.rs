use super::*;

const SPROP: &str = "Z0LAH9oBQBbpUgAAAwACAAADAGR4wZJg,aM4NiA==";
const SPS: [u8; 24] = [
    0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe9, 0x52, 0x00, 0x00, 0x03, 0x00, 0x02,
    0x00, 0x00, 0x03, 0x00, 0x64, 0x78, 0xc1, 0x92, 0x60,
];
const PPS: [u8; 4] = [0x68, 0xce, 0x0d, 0x88];
const IDR: [u8; 6] = [0x65, 0x88, 0x84, 0x00, 0x33, 0xff];
const P: [u8; 5] = [0x41, 0x9a, 0x22, 0x11, 0x00];

fn stap_a(nals: &[&[u8]]) -> Vec<u8> {
    let mut p = vec![0x78]; // NRI 3, type 24
    for n in nals {
        p.extend_from_slice(&(n.len() as u16).to_be_bytes());
        p.extend_from_slice(n);
    }
    p
}

/// FU-A packets of `nal`, `chunk` payload bytes each.
fn fu_a(nal: &[u8], chunk: usize) -> Vec<Vec<u8>> {
    let h = nal[0];
    let parts: Vec<&[u8]> = nal[1..].chunks(chunk).collect();
    let last = parts.len() - 1;
    parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            let mut fh = h & 0x1F;
            if i == 0 {
                fh |= 0x80;
            }
            if i == last {
                fh |= 0x40;
            }
            let mut p = vec![(h & 0xE0) | FU_A, fh];
            p.extend_from_slice(part);
            p
        })
        .collect()
}

fn picture(key: bool, nals: &[&[u8]]) -> Vec<u8> {
    let mut b = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0];
    for n in nals {
        b.extend_from_slice(&(n.len() as u32).to_be_bytes());
        b.extend_from_slice(n);
    }
    b
}

fn seq_header(sps: &[u8], pps: &[u8]) -> Vec<u8> {
    let mut b = vec![0x17, 0, 0, 0, 0, 1, sps[1], sps[2], sps[3], 0xFF, 0xE1];
    b.extend_from_slice(&(sps.len() as u16).to_be_bytes());
    b.extend_from_slice(sps);
    b.push(1);
    b.extend_from_slice(&(pps.len() as u16).to_be_bytes());
    b.extend_from_slice(pps);
    b
}

/// A depacketizer that has emitted its first keyframe (at seq 0, ts 0).
fn started() -> Depacketizer {
    let mut d = Depacketizer::new(1 << 20);
    let out = d.push(0, 0, true, &stap_a(&[&SPS, &PPS, &IDR]));
    assert_eq!(out.len(), 2);
    assert!(d.take_keyframe_request());
    assert!(!d.take_keyframe_request());
    d
}

#[test]
fn base64() {
    assert_eq!(base64_decode(b"").unwrap(), b"");
    assert_eq!(base64_decode(b"Zg==").unwrap(), b"f");
    assert_eq!(base64_decode(b"Zg").unwrap(), b"f");
    assert_eq!(base64_decode(b"Zm8=").unwrap(), b"fo");
    assert_eq!(base64_decode(b"Zm9v").unwrap(), b"foo");
    assert_eq!(base64_decode(b"Zm9vYg==").unwrap(), b"foob");
    assert_eq!(base64_decode(b"+/+/").unwrap(), [0xfb, 0xff, 0xbf]);
    assert_eq!(
        base64_decode(b"Z0LAH9oBQBbpUgAAAwACAAADAGR4wZJg").unwrap(),
        SPS
    );
    assert_eq!(base64_decode(b"aM4NiA==").unwrap(), PPS);
    for bad in [
        &b"Z"[..],
        b"Zg=",
        b"Zg===",
        b"Z=g=",
        b"Zm9v!",
        b"Zm 9",
        b"Zm9v=",
        b"=",
        b"-_",
    ] {
        assert_eq!(base64_decode(bad), None, "{:?}", bad);
    }
}

#[test]
fn sprop_and_single_nal_units() {
    let mut d = Depacketizer::new(1 << 20);
    d.set_sprop(SPROP);
    assert_eq!(d.sps.as_deref(), Some(&SPS[..]));
    assert_eq!(d.pps.as_deref(), Some(&PPS[..]));
    let out = d.push(10, 9000, true, &IDR);
    assert_eq!(out.len(), 2);
    assert_eq!(
        out[0],
        VideoTag {
            rtp_ts: 9000,
            keyframe: true,
            sequence_header: true,
            body: Bytes::from(seq_header(&SPS, &PPS)),
        }
    );
    // The real SDP's SPS: baseline (66), constraints 0xc0, level 3.1.
    assert_eq!(
        &out[0].body[..13],
        &[0x17, 0, 0, 0, 0, 1, 66, 0xc0, 31, 0xff, 0xe1, 0, 24]
    );
    assert_eq!(out[1].body, picture(true, &[&IDR]));
    assert!(out[1].keyframe && !out[1].sequence_header);
    let out = d.push(11, 12000, true, &P);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].body, picture(false, &[&P]));
    assert!(!out[0].keyframe);
    assert_eq!(out[0].rtp_ts, 12000);
    assert!(d.take_keyframe_request()); // only the initial one
    assert!(!d.take_keyframe_request());
}

#[test]
fn sprop_bad_input_ignored() {
    let mut d = Depacketizer::new(1 << 20);
    d.set_sprop("");
    d.set_sprop(",,, ,");
    d.set_sprop("!!!,Z0I=,aM4N iA==,AAAA,5Q==");
    assert_eq!(d.sps, None); // "Z0I=" is a 2-byte SPS: too short
    assert_eq!(d.pps, None);
    d.set_sprop(" Z0LAH9oBQBbpUgAAAwACAAADAGR4wZJg , aM4NiA ");
    assert_eq!(d.sps.as_deref(), Some(&SPS[..]));
    assert_eq!(d.pps.as_deref(), Some(&PPS[..]));
    d.set_sprop("garbage,Z0I=");
    assert_eq!(d.sps.as_deref(), Some(&SPS[..]));
    let long = "A".repeat(100_000);
    d.set_sprop(&long);
    assert_eq!(d.sps.as_deref(), Some(&SPS[..]));
}

#[test]
fn stap_a_with_sps_pps_idr() {
    let mut d = Depacketizer::new(1 << 20);
    let sei = [0x06, 0x05, 0x01, 0x80];
    let aud = [0x09, 0xf0];
    let out = d.push(500, 1234, true, &stap_a(&[&aud, &SPS, &PPS, &sei, &IDR]));
    assert_eq!(out.len(), 2);
    assert!(out[0].sequence_header && out[0].keyframe);
    assert_eq!(out[0].body, seq_header(&SPS, &PPS));
    assert_eq!(out[1].body, picture(true, &[&sei, &IDR]));
    assert_eq!(out[1].rtp_ts, 1234);
    // Same SPS/PPS again: no new sequence header.
    let out = d.push(501, 4234, true, &stap_a(&[&SPS, &PPS, &IDR]));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].body, picture(true, &[&IDR]));
}

#[test]
fn fu_a_idr_then_p_frame() {
    let mut d = Depacketizer::new(1 << 20);
    let mut idr = vec![0x65];
    idr.extend((0..3000u32).map(|i| (i * 7) as u8));
    let mut seq = 65000u16;
    assert!(d.push(seq, 100, false, &stap_a(&[&SPS, &PPS])).is_empty());
    let frags = fu_a(&idr, 1000);
    assert_eq!(frags.len(), 3);
    assert_eq!(frags[0][..2], [0x7c, 0x85]);
    assert_eq!(frags[2][..2], [0x7c, 0x45]);
    for (i, f) in frags.iter().enumerate() {
        seq = seq.wrapping_add(1);
        let out = d.push(seq, 100, i == 2, f);
        if i < 2 {
            assert!(out.is_empty());
        } else {
            assert_eq!(out.len(), 2);
            assert_eq!(out[0].body, seq_header(&SPS, &PPS));
            assert_eq!(out[1].body, picture(true, &[&idr]));
        }
    }
    let mut p = vec![0x41];
    p.extend([0x55; 2500]);
    for (i, f) in fu_a(&p, 1200).iter().enumerate() {
        seq = seq.wrapping_add(1);
        let out = d.push(seq, 3100, i == 2, f);
        if i == 2 {
            assert_eq!(out.len(), 1);
            assert_eq!(out[0].body, picture(false, &[&p]));
            assert_eq!(out[0].rtp_ts, 3100);
        } else {
            assert!(out.is_empty());
        }
    }
    d.take_keyframe_request();
    assert!(!d.take_keyframe_request());
}

#[test]
fn loss_inside_fu_a() {
    let mut d = started();
    let mut idr = vec![0x25]; // NRI 1
    idr.extend([0xab; 3000]);
    let frags = fu_a(&idr, 1000);
    assert!(d.push(1, 3000, false, &frags[0]).is_empty());
    // frags[1] lost
    assert!(d.push(3, 3000, true, &frags[2]).is_empty());
    assert!(d.take_keyframe_request());
    assert!(!d.take_keyframe_request());
    assert!(d.waiting_for_keyframe());
    // P frames are not emitted until the next IDR.
    assert!(d.push(4, 6000, true, &P).is_empty());
    assert!(d.push(5, 9000, true, &P).is_empty());
    assert!(!d.take_keyframe_request());
    let mut seq = 5;
    let mut outs = Vec::new();
    for (i, f) in frags.iter().enumerate() {
        seq += 1;
        outs.extend(d.push(seq, 12000, i == 2, f));
    }
    // Same SPS/PPS: no new sequence header.
    assert_eq!(outs.len(), 1);
    assert_eq!(outs[0].body, picture(true, &[&idr]));
    assert!(!d.waiting_for_keyframe());
    assert_eq!(d.push(seq + 1, 15000, true, &P).len(), 1);
}

#[test]
fn loss_drops_the_next_access_unit_too() {
    let mut d = started();
    // seq 1 lost; seq 2 might be the rest of its access unit.
    assert!(d.push(2, 3000, true, &IDR).is_empty());
    assert!(d.take_keyframe_request());
    assert_eq!(d.push(3, 6000, true, &IDR).len(), 1);
}

#[test]
fn timestamp_change_without_marker() {
    let mut d = started();
    let p2 = [0x41, 0x01];
    assert!(d.push(1, 3000, false, &P).is_empty());
    assert!(d.push(2, 3000, false, &p2).is_empty());
    let out = d.push(3, 6000, false, &P);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].rtp_ts, 3000);
    assert_eq!(out[0].body, picture(false, &[&P, &p2]));
    // Both complete in one push: the previous by its timestamp, this one by its marker.
    let out = d.push(4, 9000, true, &IDR);
    assert_eq!(out.len(), 2);
    assert_eq!((out[0].rtp_ts, out[0].keyframe), (6000, false));
    assert_eq!((out[1].rtp_ts, out[1].keyframe), (9000, true));
    assert!(!d.take_keyframe_request());
}

#[test]
fn sequence_wraparound_and_old_packets() {
    let mut d = Depacketizer::new(1 << 20);
    assert_eq!(
        d.push(65534, 0, true, &stap_a(&[&SPS, &PPS, &IDR])).len(),
        2
    );
    assert!(d.take_keyframe_request());
    assert_eq!(d.push(65535, 3000, true, &P).len(), 1);
    assert_eq!(d.push(0, 6000, true, &P).len(), 1);
    assert_eq!(d.push(1, 9000, true, &P).len(), 1);
    // Duplicate and reordered: dropped silently.
    assert!(d.push(1, 9000, true, &P).is_empty());
    assert!(d.push(65535, 3000, true, &P).is_empty());
    assert!(d.push(60000, 3000, true, &P).is_empty());
    assert!(!d.take_keyframe_request());
    assert_eq!(d.push(2, 12000, true, &P).len(), 1);
    // A jump forward is a loss.
    assert!(d.push(40, 15000, true, &P).is_empty());
    assert!(d.take_keyframe_request());
}

#[test]
fn changed_sps_emits_new_sequence_header() {
    let mut d = started();
    let mut sps2 = SPS.to_vec();
    sps2[3] = 0x28; // level 4.0
    let out = d.push(1, 3000, true, &stap_a(&[&sps2, &PPS, &IDR]));
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].body, seq_header(&sps2, &PPS));
    assert_eq!(out[0].body[8], 0x28);
    // Changed PPS only.
    let pps2 = [0x68, 0xee, 0x3c, 0x80];
    let out = d.push(2, 6000, true, &stap_a(&[&sps2, &pps2, &IDR]));
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].body, seq_header(&sps2, &pps2));
    // In-band SPS with a P frame: the header waits for the next IDR.
    let out = d.push(3, 9000, true, &stap_a(&[&SPS, &P]));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].body, picture(false, &[&P]));
    let out = d.push(4, 12000, true, &IDR);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].body, seq_header(&SPS, &pps2));
    // A too short SPS is ignored.
    let out = d.push(5, 15000, true, &stap_a(&[&[0x67, 0x42, 0xc0], &IDR]));
    assert_eq!(out.len(), 1);
}

#[test]
fn sps_pps_in_fu_a() {
    let mut d = Depacketizer::new(1 << 20);
    let mut seq = 0u16;
    let mut out = Vec::new();
    for nal in [&SPS[..], &PPS[..]] {
        for f in fu_a(nal, 2) {
            out.extend(d.push(seq, 0, false, &f));
            seq += 1;
        }
    }
    out.extend(d.push(seq, 0, true, &IDR));
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].body, seq_header(&SPS, &PPS));
    assert_eq!(out[1].body, picture(true, &[&IDR]));
}

#[test]
fn nothing_before_first_idr() {
    let mut d = Depacketizer::new(1 << 20);
    assert!(d.push(0, 0, true, &P).is_empty());
    assert!(d.take_keyframe_request());
    assert!(!d.take_keyframe_request());
    assert!(d.push(1, 3000, true, &stap_a(&[&SPS, &P])).is_empty());
    // IDR without PPS: not emitted, asks again.
    assert!(d.push(2, 6000, true, &IDR).is_empty());
    assert!(d.take_keyframe_request());
    assert!(d.push(3, 9000, true, &P).is_empty());
    assert!(!d.take_keyframe_request());
    assert_eq!(d.push(4, 12000, true, &stap_a(&[&PPS, &IDR])).len(), 2);
    assert!(!d.waiting_for_keyframe());
}

#[test]
fn oversize_access_unit() {
    let mut d = Depacketizer::new(2000);
    d.set_sprop(SPROP);
    let mut big = vec![0x65];
    big.extend([1; 2999]);
    let mut seq = 0;
    for (i, f) in fu_a(&big, 1000).iter().enumerate() {
        assert!(d.push(seq, 0, i == 2, f).is_empty());
        seq += 1;
    }
    assert!(d.take_keyframe_request());
    assert!(!d.take_keyframe_request());
    // Many single NAL units adding up over the bound.
    let slice = [0x65; 600];
    for i in 0..4 {
        assert!(d.push(seq, 3000, i == 3, &slice).is_empty());
        seq += 1;
    }
    assert!(d.take_keyframe_request());
    // Exactly at the bound: kept.
    let fits = [0x65; 1996];
    let out = d.push(seq, 6000, true, &fits);
    assert_eq!(out.len(), 2);
    assert_eq!(out[1].body.len(), 5 + 2000);
    // Zero bound: everything oversized.
    let mut d = Depacketizer::new(0);
    d.set_sprop(SPROP);
    d.take_keyframe_request();
    assert!(d.push(0, 0, true, &IDR).is_empty());
    assert!(d.take_keyframe_request());
}

#[test]
fn refused_payload_types() {
    for t in [0u8, 25, 26, 27, 29, 30, 31] {
        let mut d = started();
        let pkt = [0x60 | t, 0x85, 1, 2, 3, 4, 5, 6];
        assert!(d.push(1, 3000, true, &pkt).is_empty(), "type {t}");
        assert!(d.take_keyframe_request(), "type {t}");
        assert!(d.push(2, 6000, true, &P).is_empty(), "type {t}");
        assert_eq!(d.push(3, 9000, true, &IDR).len(), 1, "type {t}");
    }
}

#[test]
fn malformed_packets() {
    let mut bad: Vec<Vec<u8>> = vec![
        vec![0xE5, 1, 2],                   // forbidden bit
        vec![0x78],                         // empty STAP-A
        vec![0x78, 0x00, 0x05, 0x65, 0x01], // STAP-A unit truncated
        vec![0x78, 0x00, 0x00, 0x00, 0x01], // zero-size unit
        vec![0x78, 0x00, 0x01, 0x65, 0x00], // trailing byte
        vec![0x78, 0x00, 0x01, 0x78],       // STAP-A in STAP-A
        vec![0x78, 0x00, 0x01, 0x00],       // type 0 unit
        vec![0x7c],                         // FU-A without FU header
        vec![0x7c, 0xc5, 1],                // start and end
        vec![0x7c, 0x45, 1],                // end without start
        vec![0x7c, 0x05, 1],                // middle without start
        vec![0x7c, 0x98, 1],                // FU of a STAP-A
    ];
    bad.push(stap_a(&[&SPS, &[0x80, 1]]));
    for pkt in &bad {
        let mut d = started();
        assert!(d.push(1, 3000, true, pkt).is_empty(), "{pkt:02x?}");
        assert!(d.take_keyframe_request(), "{pkt:02x?}");
        assert!(d.waiting_for_keyframe(), "{pkt:02x?}");
        assert!(d.push(2, 6000, true, &P).is_empty());
        assert_eq!(d.push(3, 9000, true, &IDR).len(), 1);
    }
}

#[test]
fn broken_fu_a() {
    let mut idr = vec![0x65];
    idr.extend([7; 100]);
    let frags = fu_a(&idr, 40);
    // End missing: the access unit ends at the marker.
    let mut d = started();
    assert!(d.push(1, 3000, false, &frags[0]).is_empty());
    assert!(d.push(2, 3000, true, &frags[1]).is_empty());
    assert!(d.take_keyframe_request());
    // End missing: another NAL unit follows.
    let mut d = started();
    assert!(d.push(1, 3000, false, &frags[0]).is_empty());
    assert!(d.push(2, 3000, true, &IDR).is_empty());
    assert!(d.take_keyframe_request());
    // Interleaved: a new start while one is open.
    let mut d = started();
    assert!(d.push(1, 3000, false, &frags[0]).is_empty());
    assert!(d.push(2, 3000, false, &frags[0]).is_empty());
    assert!(d.push(3, 3000, false, &frags[1]).is_empty());
    assert!(d.push(4, 3000, true, &frags[2]).is_empty());
    assert!(d.take_keyframe_request());
    // Interleaved: fragments of another NAL type.
    let mut d = started();
    let other = fu_a(&[0x66, 1, 2, 3, 4], 2);
    assert!(d.push(1, 3000, false, &frags[0]).is_empty());
    assert!(d.push(2, 3000, false, &other[1]).is_empty());
    assert!(d.take_keyframe_request());
    // End missing, then the timestamp changes.
    let mut d = started();
    assert!(d.push(1, 3000, false, &frags[0]).is_empty());
    assert!(d.push(2, 6000, true, &IDR).len() == 1);
    assert!(d.take_keyframe_request());
}

#[test]
fn empty_payloads_and_filler() {
    let mut d = started();
    assert!(d.push(1, 3000, true, &[]).is_empty());
    assert!(d.push(2, 3000, false, &[]).is_empty());
    assert!(!d.take_keyframe_request());
    assert_eq!(d.push(3, 3000, true, &P).len(), 1);
    // Only AUD and filler: nothing to emit, not an error.
    assert!(d
        .push(
            4,
            6000,
            true,
            &stap_a(&[&[0x09, 0x10], &[0x0c, 0xff, 0xff]])
        )
        .is_empty());
    assert!(d.push(5, 9000, true, &[0x0c, 0xff]).is_empty());
    assert!(!d.take_keyframe_request());
    let out = d.push(6, 12000, true, &stap_a(&[&[0x09, 0x10], &P, &[0x0c, 0xff]]));
    assert_eq!(out[0].body, picture(false, &[&P]));
    // A one-byte NAL unit is fine.
    assert_eq!(
        d.push(7, 15000, true, &[0x41])[0].body,
        picture(false, &[&[0x41]])
    );
}

/// xorshift64*
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// `min` plus up to `spread - 1` random bytes.
    fn bytes(&mut self, min: usize, spread: u64) -> Vec<u8> {
        let n = min + self.below(spread) as usize;
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn check(tag: &VideoTag) {
    let b = &tag.body[..];
    if tag.sequence_header {
        assert!(tag.keyframe);
        assert_eq!(b[..6], [0x17, 0, 0, 0, 0, 1]);
        assert_eq!(b[9..11], [0xff, 0xe1]);
        let sl = u16::from_be_bytes([b[11], b[12]]) as usize;
        assert!(sl >= 4);
        assert_eq!(b[6..9], b[14..17]);
        assert_eq!(b[13 + sl], 1);
        let pl = u16::from_be_bytes([b[14 + sl], b[15 + sl]]) as usize;
        assert_eq!(b.len(), 16 + sl + pl);
        return;
    }
    assert_eq!(b[0], if tag.keyframe { 0x17 } else { 0x27 });
    assert_eq!(b[1..5], [1, 0, 0, 0]);
    let mut rest = &b[5..];
    assert!(!rest.is_empty());
    let mut idr = false;
    while !rest.is_empty() {
        let n = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        assert!(n >= 1 && rest.len() >= 4 + n);
        let t = rest[4] & 0x1f;
        assert!(![0, 7, 8, 9, 12].contains(&t) && t < 24);
        idr |= t == 5;
        rest = &rest[4 + n..];
    }
    assert_eq!(idr, tag.keyframe);
}

#[test]
fn random_packets() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut emitted = 0;
    for round in 0..40 {
        let max_au = [0, 10, 3000, 100_000][round % 4];
        let mut d = Depacketizer::new(max_au);
        if round % 3 == 0 {
            d.set_sprop(SPROP);
        }
        let mut seq = rng.next() as u16;
        let mut ts = rng.next() as u32;
        let mut saw_fu = false;
        for _ in 0..5000 {
            seq = match rng.below(20) {
                0 => seq.wrapping_add(rng.below(5) as u16),
                1 => seq.wrapping_sub(rng.below(5) as u16),
                2 => rng.next() as u16,
                _ => seq.wrapping_add(1),
            };
            if rng.below(6) == 0 {
                ts = ts.wrapping_add(3000);
            }
            let marker = rng.below(5) == 0;
            let payload = match rng.below(8) {
                0 => rng.bytes(0, 40),
                1 => stap_a(&[&SPS, &PPS, &IDR]),
                2 => {
                    // A mostly sane FU-A fragment.
                    let t = [1u8, 5, 7, 8, 9, 6][rng.below(6) as usize];
                    let fh = (rng.below(4) as u8) << 6 | t;
                    let mut p = vec![0x60 | FU_A, fh];
                    p.extend(rng.bytes(0, 1500));
                    saw_fu = true;
                    p
                }
                3 => {
                    let n = rng.below(4) as usize;
                    let nals: Vec<Vec<u8>> = (0..n)
                        .map(|_| {
                            let mut v = rng.bytes(1, 30);
                            v[0] &= 0x7f;
                            v
                        })
                        .collect();
                    let refs: Vec<&[u8]> = nals.iter().map(|v| &v[..]).collect();
                    stap_a(&refs)
                }
                4 => {
                    let mut v = rng.bytes(1, 2000);
                    v[0] = (v[0] & 0x60) | (1 + rng.below(23) as u8);
                    v
                }
                5 => P.to_vec(),
                6 => IDR.to_vec(),
                _ => Vec::new(),
            };
            for tag in d.push(seq, ts, marker, &payload) {
                check(&tag);
                assert!(tag.body.len() <= 5 + max_au.max(200_000));
                if !tag.sequence_header {
                    assert!(tag.body.len() <= 5 + max_au);
                }
                emitted += 1;
            }
            let _ = d.take_keyframe_request();
        }
        assert!(saw_fu);
    }
    assert!(emitted > 1000, "{emitted}");
}

#[test]
fn random_sprop() {
    let mut rng = Rng(42);
    let alphabet = b"ABZaz09+/=, Zg";
    for _ in 0..5000 {
        let n = rng.below(60) as usize;
        let s: String = (0..n)
            .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize] as char)
            .collect();
        let mut d = Depacketizer::new(100);
        d.set_sprop(&s);
        d.set_sprop(SPROP);
        d.set_sprop(&s);
        if let Some(sps) = &d.sps {
            assert!(sps.len() >= 4 && sps[0] & 0x9f == 7);
        }
    }
}
