//! The server side of the RTMP handshake: C0 C1 -> S0 S1 S2, then C2.
//!
//! Clients that put an HMAC-SHA256 digest into C1 (Flash Player 9+, ffmpeg, OBS, GStreamer)
//! get the "digest" handshake back: S1 carries our digest and S2 is signed with a key
//! derived from the client's digest, which those clients verify. Clients that do not
//! (C1 with a zero version, or no valid digest) get the plain handshake: S2 echoes C1.

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const C0: u8 = 3;
pub const SIZE: usize = 1536;
const DIGEST_LEN: usize = 32;

/// "Genuine Adobe Flash Player 001"
const CLIENT_KEY: &[u8] = b"Genuine Adobe Flash Player 001";
/// "Genuine Adobe Flash Media Server 001" followed by 32 fixed bytes: the full server key.
const SERVER_KEY: [u8; 68] = {
    let text = *b"Genuine Adobe Flash Media Server 001";
    let tail: [u8; 32] = [
        0xf0, 0xee, 0xc2, 0x4a, 0x80, 0x68, 0xbe, 0xe8, 0x2e, 0x00, 0xd0, 0xd1, 0x02, 0x9e, 0x7e, 0x57,
        0x6e, 0xec, 0x5d, 0x2d, 0x29, 0x80, 0x6f, 0xab, 0x93, 0xb8, 0xe6, 0x36, 0xcf, 0xeb, 0x31, 0xae,
    ];
    let mut k = [0u8; 68];
    let mut i = 0;
    while i < 36 {
        k[i] = text[i];
        i += 1;
    }
    while i < 68 {
        k[i] = tail[i - 36];
        i += 1;
    }
    k
};
/// The version we announce in S1 (as nginx-rtmp-module: 13.14.10.13).
const SERVER_VERSION: [u8; 4] = [0x0d, 0x0e, 0x0a, 0x0d];

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; DIGEST_LEN] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// Where the digest sits in a 1536-byte C1/S1 for a given scheme: the digest block starts
/// at 8 (scheme 0) or 772 (scheme 1); its first 4 bytes, summed, give the offset in it.
fn digest_pos(block: &[u8; SIZE], scheme: usize) -> usize {
    let base = if scheme == 0 { 8 } else { 772 };
    let sum: usize = block[base..base + 4].iter().map(|&b| b as usize).sum();
    base + 4 + sum % 728
}

fn digest_of(block: &[u8; SIZE], pos: usize, key: &[u8]) -> [u8; DIGEST_LEN] {
    hmac(key, &[&block[..pos], &block[pos + DIGEST_LEN..]])
}

/// Finds the client's digest in C1: (scheme, digest), if it has a valid one.
fn client_digest(c1: &[u8; SIZE]) -> Option<(usize, [u8; DIGEST_LEN])> {
    if c1[4..8] == [0, 0, 0, 0] {
        return None;
    }
    (0..2).find_map(|scheme| {
        let pos = digest_pos(c1, scheme);
        let digest: [u8; DIGEST_LEN] = c1[pos..pos + DIGEST_LEN].try_into().expect("32 bytes");
        (digest == digest_of(c1, pos, CLIENT_KEY)).then_some((scheme, digest))
    })
}

/// A small, fast pseudo-random filler for S1/S2 (handshake bytes need not be secret).
fn fill_random(buf: &mut [u8], mut seed: u64) {
    for chunk in buf.chunks_mut(8) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        chunk.copy_from_slice(&seed.to_le_bytes()[..chunk.len()]);
    }
}

/// Builds S0 S1 S2 (3073 bytes) answering C1. `epoch` is our uptime in ms (S1's time),
/// `seed` any varying number.
pub fn respond(c1: &[u8; SIZE], epoch: u32, seed: u64) -> Vec<u8> {
    let mut out = vec![0u8; 1 + 2 * SIZE];
    out[0] = C0;
    let (s1, s2) = out[1..].split_at_mut(SIZE);
    let s1: &mut [u8; SIZE] = s1.try_into().expect("S1 size");
    let s2: &mut [u8; SIZE] = s2.try_into().expect("S2 size");
    fill_random(&mut s1[8..], seed | 1);
    s1[0..4].copy_from_slice(&epoch.to_be_bytes());

    match client_digest(c1) {
        Some((scheme, cdigest)) => {
            s1[4..8].copy_from_slice(&SERVER_VERSION);
            let pos = digest_pos(s1, scheme);
            let d = digest_of(s1, pos, &SERVER_KEY[..36]);
            s1[pos..pos + DIGEST_LEN].copy_from_slice(&d);
            // S2: random bytes signed with a key derived from the client's digest.
            fill_random(&mut s2[..], seed.rotate_left(17) | 1);
            let key = hmac(&SERVER_KEY, &[&cdigest]);
            let sig = hmac(&key, &[&s2[..SIZE - DIGEST_LEN]]);
            s2[SIZE - DIGEST_LEN..].copy_from_slice(&sig);
        }
        None => {
            // Plain handshake: zero version in S1; S2 echoes C1 (its time, then our read time).
            s2.copy_from_slice(c1);
            s2[4..8].copy_from_slice(&epoch.to_be_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A C1 as a digest-handshake client builds it.
    fn client_c1(scheme: usize) -> [u8; SIZE] {
        let mut c1 = [0u8; SIZE];
        fill_random(&mut c1, 0x1234_5678_9abc_def1);
        c1[0..4].copy_from_slice(&[0, 0, 0, 0]);
        c1[4..8].copy_from_slice(&[9, 0, 124, 2]);
        let pos = digest_pos(&c1, scheme);
        let d = digest_of(&c1, pos, CLIENT_KEY);
        c1[pos..pos + DIGEST_LEN].copy_from_slice(&d);
        c1
    }

    #[test]
    fn digest_handshake_verifies_like_a_client_would() {
        for scheme in 0..2 {
            let c1 = client_c1(scheme);
            let out = respond(&c1, 1000, 42);
            assert_eq!(out.len(), 3073);
            assert_eq!(out[0], 3);
            let s1: [u8; SIZE] = out[1..1 + SIZE].try_into().unwrap();
            let s2 = &out[1 + SIZE..];
            // The client checks S1's digest with the server's short key, at either scheme.
            let ok = (0..2).any(|s| {
                let pos = digest_pos(&s1, s);
                s1[pos..pos + DIGEST_LEN] == digest_of(&s1, pos, &SERVER_KEY[..36])
            });
            assert!(ok, "S1 digest (scheme {scheme})");
            // …and S2's signature with the key derived from its own C1 digest.
            let cpos = digest_pos(&c1, scheme);
            let key = hmac(&SERVER_KEY, &[&c1[cpos..cpos + DIGEST_LEN]]);
            assert_eq!(&s2[SIZE - DIGEST_LEN..], &hmac(&key, &[&s2[..SIZE - DIGEST_LEN]]));
        }
    }

    /// C0+C1 as real clients sent them (captured on loopback): ffmpeg 5.1 uses the digest
    /// handshake, rtmpdump/librtmp (as OBS) the plain one.
    #[test]
    fn recorded_clients() {
        let ff: &[u8; 1537] = include_bytes!("testdata/ffmpeg-c0c1.bin");
        assert_eq!(ff[0], C0);
        let c1: &[u8; SIZE] = ff[1..].try_into().unwrap();
        let (scheme, digest) = client_digest(c1).expect("ffmpeg's C1 carries a valid digest");
        let out = respond(c1, 123, 99);
        let s1: [u8; SIZE] = out[1..1 + SIZE].try_into().unwrap();
        let pos = digest_pos(&s1, scheme);
        assert_eq!(s1[pos..pos + DIGEST_LEN], digest_of(&s1, pos, &SERVER_KEY[..36]));
        let key = hmac(&SERVER_KEY, &[&digest]);
        assert_eq!(out[1 + 2 * SIZE - DIGEST_LEN..], hmac(&key, &[&out[1 + SIZE..1 + 2 * SIZE - DIGEST_LEN]]));

        let rd: &[u8; 1537] = include_bytes!("testdata/rtmpdump-c0c1.bin");
        let c1: &[u8; SIZE] = rd[1..].try_into().unwrap();
        assert!(client_digest(c1).is_none(), "librtmp sends a plain C1");
        let out = respond(c1, 123, 99);
        assert_eq!(&out[1 + SIZE + 8..], &c1[8..], "and gets its C1 echoed");
    }

    #[test]
    fn plain_handshake_echoes_c1() {
        let mut c1 = [7u8; SIZE];
        c1[4..8].copy_from_slice(&[0, 0, 0, 0]);
        let out = respond(&c1, 5, 1);
        assert_eq!(&out[1 + 4..1 + 8], &[0, 0, 0, 0], "S1 version zero");
        assert_eq!(&out[1 + SIZE + 8..], &c1[8..], "S2 echoes C1's random bytes");
        assert_eq!(&out[1 + SIZE..1 + SIZE + 4], &c1[..4], "S2 echoes C1's time");
        // A nonzero version without a valid digest also gets the plain handshake.
        c1[4] = 9;
        let out = respond(&c1, 5, 1);
        assert_eq!(&out[1 + SIZE + 8..], &c1[8..]);
    }
}
