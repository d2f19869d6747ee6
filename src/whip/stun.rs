//! Just enough STUN (RFC 8489) to pick a session from a datagram on a shared UDP port.

const HEADER: usize = 20;
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
const BINDING_REQUEST: u16 = 0x0001;
const ATTR_USERNAME: u16 = 0x0006;
const ATTR_MESSAGE_INTEGRITY: u16 = 0x0008;
const ATTR_MESSAGE_INTEGRITY_SHA256: u16 = 0x001C;
const ATTR_FINGERPRINT: u16 = 0x8028;

/// Whether a datagram is STUN (RFC 7983 demux: first byte 0..=3, and the magic cookie
/// 0x2112A442 at bytes 4..8, length field consistent and multiple of 4).
pub fn is_stun(packet: &[u8]) -> bool {
    match packet {
        [b0, _, l0, l1, c0, c1, c2, c3, ..] if packet.len() >= HEADER => {
            let len = usize::from(u16::from_be_bytes([*l0, *l1]));
            *b0 <= 3
                && [*c0, *c1, *c2, *c3] == MAGIC_COOKIE
                && len % 4 == 0
                && HEADER + len == packet.len()
        }
        _ => false,
    }
}

/// The USERNAME attribute (type 0x0006) of a STUN message, if any (walk the attributes
/// with 4-byte padding, bounds-checked). Attributes after MESSAGE-INTEGRITY or
/// FINGERPRINT are not looked at (RFC 8489 section 14.5).
pub fn username(packet: &[u8]) -> Option<&[u8]> {
    if !is_stun(packet) {
        return None;
    }
    let mut rest = packet.get(HEADER..)?;
    while let [t0, t1, l0, l1, tail @ ..] = rest {
        let typ = u16::from_be_bytes([*t0, *t1]);
        let len = usize::from(u16::from_be_bytes([*l0, *l1]));
        let value = tail.get(..len)?;
        match typ {
            ATTR_USERNAME => return Some(value),
            ATTR_MESSAGE_INTEGRITY | ATTR_MESSAGE_INTEGRITY_SHA256 | ATTR_FINGERPRINT => {
                return None
            }
            _ => {}
        }
        let padded = len.checked_add(3)? & !3;
        rest = tail.get(padded..)?;
    }
    None
}

/// For a Binding request sent to us: USERNAME is "OUR_UFRAG:THEIR_UFRAG"; returns OUR_UFRAG
/// as &str (valid UTF-8, non-empty) or None. THEIR_UFRAG must be non-empty too.
pub fn local_ufrag(packet: &[u8]) -> Option<&str> {
    let typ = u16::from_be_bytes([*packet.first()?, *packet.get(1)?]);
    if typ != BINDING_REQUEST {
        return None;
    }
    let user = username(packet)?;
    let colon = user.iter().position(|&b| b == b':')?;
    let ours = user.get(..colon)?;
    let theirs = user.get(colon + 1..)?;
    if ours.is_empty() || theirs.is_empty() {
        return None;
    }
    std::str::from_utf8(ours).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TID: [u8; 12] = [
        0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
    ];

    fn attr(buf: &mut Vec<u8>, typ: u16, value: &[u8]) {
        buf.extend_from_slice(&typ.to_be_bytes());
        buf.extend_from_slice(&(value.len() as u16).to_be_bytes());
        buf.extend_from_slice(value);
        buf.resize(buf.len().next_multiple_of(4), 0);
    }

    /// A STUN message with these attributes, MESSAGE-INTEGRITY and FINGERPRINT (dummy values).
    fn message(typ: u16, attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&typ.to_be_bytes());
        m.extend_from_slice(&[0, 0]);
        m.extend_from_slice(&MAGIC_COOKIE);
        m.extend_from_slice(&TID);
        for (t, v) in attrs {
            attr(&mut m, *t, v);
        }
        attr(&mut m, ATTR_MESSAGE_INTEGRITY, &[0x5a; 20]);
        attr(&mut m, ATTR_FINGERPRINT, &[0xe5, 0x7a, 0x3b, 0xcf]);
        let len = (m.len() - HEADER) as u16;
        m[2..4].copy_from_slice(&len.to_be_bytes());
        m
    }

    /// What a browser sends: USERNAME, GOOG-NETWORK-INFO, ICE-CONTROLLING, USE-CANDIDATE,
    /// PRIORITY, MESSAGE-INTEGRITY, FINGERPRINT.
    fn browser_binding(user: &[u8]) -> Vec<u8> {
        message(
            BINDING_REQUEST,
            &[
                (ATTR_USERNAME, user),
                (0xC057, &[0x00, 0x01, 0x00, 0x0a]),
                (0x802A, &[0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]),
                (0x0025, &[]),
                (0x0024, &[0x6e, 0x7f, 0x1e, 0xff]),
            ],
        )
    }

    #[test]
    fn binding_request() {
        let m = browser_binding(b"a1b2c3d4:XyZw");
        assert_eq!(m.len(), 20 + 20 + 8 + 12 + 4 + 8 + 24 + 8);
        assert!(is_stun(&m));
        assert_eq!(username(&m), Some(&b"a1b2c3d4:XyZw"[..]));
        assert_eq!(local_ufrag(&m), Some("a1b2c3d4"));
        // Every padding length.
        for user in ["abc:d", "abc:de", "abc:def", "abcd:efgh", "x/+9:y"] {
            let m = browser_binding(user.as_bytes());
            assert!(is_stun(&m));
            assert_eq!(username(&m), Some(user.as_bytes()));
            assert_eq!(local_ufrag(&m), user.split(':').next());
        }
    }

    #[test]
    fn username_after_other_attributes() {
        let m = message(
            BINDING_REQUEST,
            &[
                (0x8022, b"odd"),
                (0x0024, &[1, 2, 3, 4]),
                (ATTR_USERNAME, b"us:them"),
            ],
        );
        assert_eq!(local_ufrag(&m), Some("us"));
        // The first USERNAME counts.
        let m = message(
            BINDING_REQUEST,
            &[(ATTR_USERNAME, b"a:b"), (ATTR_USERNAME, b"c:d")],
        );
        assert_eq!(local_ufrag(&m), Some("a"));
    }

    #[test]
    fn no_username() {
        let m = message(BINDING_REQUEST, &[(0x0024, &[1, 2, 3, 4])]);
        assert!(is_stun(&m));
        assert_eq!(username(&m), None);
        assert_eq!(local_ufrag(&m), None);
        // Header only.
        let mut m = vec![0, 1, 0, 0];
        m.extend_from_slice(&MAGIC_COOKIE);
        m.extend_from_slice(&TID);
        assert!(is_stun(&m));
        assert_eq!(username(&m), None);
        // USERNAME after MESSAGE-INTEGRITY is not protected: ignored.
        let mut m = message(BINDING_REQUEST, &[]);
        attr(&mut m, ATTR_USERNAME, b"late:x");
        let len = (m.len() - HEADER) as u16;
        m[2..4].copy_from_slice(&len.to_be_bytes());
        assert!(is_stun(&m));
        assert_eq!(username(&m), None);
    }

    #[test]
    fn not_a_request_for_us() {
        let user: &[u8] = b"ours:theirs";
        // Binding success response, indication, error response.
        for typ in [0x0101u16, 0x0011, 0x0111] {
            let m = message(typ, &[(ATTR_USERNAME, user)]);
            assert_eq!(username(&m), Some(user));
            assert_eq!(local_ufrag(&m), None);
        }
        for bad in [
            &b"nocolon"[..],
            b":theirs",
            b"ours:",
            b":",
            b"",
            b"\xff\xfe:x",
        ] {
            assert_eq!(local_ufrag(&browser_binding(bad)), None, "{bad:?}");
        }
        // Only our part must be UTF-8; a second colon belongs to theirs.
        assert_eq!(local_ufrag(&browser_binding(b"ok:\xff")), Some("ok"));
        assert_eq!(local_ufrag(&browser_binding(b"a:b:c")), Some("a"));
        assert_eq!(local_ufrag(&browser_binding("é:x".as_bytes())), Some("é"));
    }

    #[test]
    fn truncated_and_inconsistent() {
        let m = browser_binding(b"abcd:efg");
        for n in 0..m.len() {
            assert!(!is_stun(&m[..n]), "{n}");
            assert_eq!(username(&m[..n]), None);
            assert_eq!(local_ufrag(&m[..n]), None);
        }
        // Extra bytes after the message.
        let mut long = m.clone();
        long.extend_from_slice(&[0; 4]);
        assert!(!is_stun(&long));
        long.push(0);
        assert!(!is_stun(&long));
        // Length field not a multiple of 4 (and the datagram to match).
        let mut odd = m.clone();
        odd.push(0);
        let len = (odd.len() - HEADER) as u16;
        odd[2..4].copy_from_slice(&len.to_be_bytes());
        assert!(!is_stun(&odd));
        // Attribute length running past the end.
        let mut m2 = m.clone();
        m2[22..24].copy_from_slice(&200u16.to_be_bytes());
        assert!(is_stun(&m2));
        assert_eq!(username(&m2), None);
        let mut m3 = message(
            BINDING_REQUEST,
            &[(0x0024, &[1, 2, 3, 4]), (ATTR_USERNAME, b"a:b")],
        );
        m3[22..24].copy_from_slice(&0xFFFFu16.to_be_bytes());
        assert_eq!(username(&m3), None);
        // Padding of an odd length running past the end.
        let mut m4 = Vec::new();
        m4.extend_from_slice(&[0, 1, 0, 8]);
        m4.extend_from_slice(&MAGIC_COOKIE);
        m4.extend_from_slice(&TID);
        m4.extend_from_slice(&[0x80, 0x22, 0, 5, 1, 2, 3, 4]);
        assert!(is_stun(&m4));
        assert_eq!(username(&m4), None);
        // A zero-length attribute, then USERNAME with padding ending the message.
        let mut m5 = Vec::new();
        m5.extend_from_slice(&[0, 1, 0, 12]);
        m5.extend_from_slice(&MAGIC_COOKIE);
        m5.extend_from_slice(&TID);
        m5.extend_from_slice(&[0x00, 0x25, 0, 0, 0, 6, 0, 3, b'a', b':', b'b', 0]);
        assert!(is_stun(&m5));
        assert_eq!(local_ufrag(&m5), Some("a"));
    }

    #[test]
    fn other_protocols() {
        let m = browser_binding(b"abcd:efg");
        // RTP/RTCP (128..=191), DTLS (20..=63), TURN channels (64..=79), first bytes 4..=19.
        for first in [0x80u8, 0x90, 0xbf, 20, 22, 23, 63, 64, 79, 4, 19, 0xff] {
            let mut x = m.clone();
            x[0] = first;
            assert!(!is_stun(&x), "{first}");
            assert_eq!(local_ufrag(&x), None);
        }
        for first in 0..=3u8 {
            let mut x = m.clone();
            x[0] = first;
            assert!(is_stun(&x));
        }
        // Wrong cookie (RFC 3489 style).
        let mut x = m.clone();
        x[4] = 0x22;
        assert!(!is_stun(&x));
        // A DTLS ClientHello record header and an RTP packet.
        let dtls = [
            22u8, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x60, 1, 0, 0, 0x54, 0, 0, 0,
        ];
        assert!(!is_stun(&dtls));
        let mut rtp = vec![0x80, 0x60, 0x12, 0x34, 0x21, 0x12, 0xa4, 0x42];
        rtp.extend_from_slice(&[0; 12]);
        assert!(!is_stun(&rtp));
        assert_eq!(username(&rtp), None);
    }

    #[test]
    fn random_bytes() {
        let mut s = 0x1234_5678_9abc_def0u64;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let base = browser_binding(b"abcd:efgh");
        for i in 0..20000 {
            let mut m = if i % 2 == 0 {
                base.clone()
            } else {
                let n = (next() % 80) as usize;
                let mut m: Vec<u8> = (0..n).map(|_| next() as u8).collect();
                if n >= 8 {
                    m[0] &= 3;
                    m[2..4].copy_from_slice(&((n.saturating_sub(20)) as u16).to_be_bytes());
                    m[4..8].copy_from_slice(&MAGIC_COOKIE);
                }
                m
            };
            for _ in 0..(next() % 4) {
                if !m.is_empty() {
                    let at = (next() as usize) % m.len();
                    m[at] = next() as u8;
                }
            }
            let stun = is_stun(&m);
            if let Some(u) = username(&m) {
                assert!(stun);
                assert!(u.len() <= m.len() - 24);
            }
            if let Some(ours) = local_ufrag(&m) {
                assert!(!ours.is_empty() && !ours.contains(':'));
            }
        }
    }
}
