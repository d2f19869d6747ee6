//! FLV file pieces: the file header, tags, and an `onMetaData` tag whose `duration` and
//! `filesize` can be patched in place when the file is closed.

use crate::rtmp::amf::{self, Value};

pub const HEADER_LEN: u64 = 13;
pub const AUDIO: u8 = 8;
pub const VIDEO: u8 = 9;
pub const SCRIPT: u8 = 18;

/// The file header (with `PreviousTagSize0`): "FLV", version 1, the audio/video flags.
pub fn header(audio: bool, video: bool) -> [u8; 13] {
    [b'F', b'L', b'V', 1, av_flags(audio, video), 0, 0, 0, 9, 0, 0, 0, 0]
}

/// The header's byte 4.
pub fn av_flags(audio: bool, video: bool) -> u8 {
    (audio as u8) << 2 | video as u8
}

/// One tag: its 11-byte header, the body, and the `PreviousTagSize` after it, in one piece
/// (written with one call, so a crash never leaves half a tag).
pub fn tag(kind: u8, timestamp: u32, body: &[u8]) -> Vec<u8> {
    let len = body.len() as u32;
    let mut t = Vec::with_capacity(15 + body.len());
    t.push(kind);
    t.extend_from_slice(&len.to_be_bytes()[1..]);
    t.extend_from_slice(&timestamp.to_be_bytes()[1..]);
    t.push((timestamp >> 24) as u8);
    t.extend_from_slice(&[0, 0, 0]);
    t.extend_from_slice(body);
    t.extend_from_slice(&(11 + len).to_be_bytes());
    t
}

/// An `onMetaData` tag at timestamp 0: the publisher's fields (from its metadata message,
/// if any) without its own `duration`/`filesize`, then ours, zero for now. Returns the tag
/// and where, in it, the two numbers' 8 bytes are.
pub fn metadata(publisher: Option<&[u8]>) -> (Vec<u8>, usize, usize) {
    let mut fields: Vec<(String, Value)> = Vec::new();
    if let Some(p) = publisher {
        if let Ok(values) = amf::Reader::new(p).read_all() {
            if let Some(Value::Object(f) | Value::EcmaArray(f)) = values.get(1) {
                fields = f.iter().filter(|(k, _)| k != "duration" && k != "filesize").cloned().collect();
            }
        }
    }
    fields.push(("duration".into(), Value::Number(0.0)));
    fields.push(("filesize".into(), Value::Number(0.0)));
    let body = amf::encode(&[Value::str("onMetaData"), Value::EcmaArray(fields)]);
    let t = tag(SCRIPT, 0, &body);
    let duration = find_number(&t, "duration").expect("just written");
    let filesize = find_number(&t, "filesize").expect("just written");
    (t, duration, filesize)
}

/// Where the 8 bytes of the number after key `key` (an AMF0 property name) are in `bytes`.
pub fn find_number(bytes: &[u8], key: &str) -> Option<usize> {
    let mut pattern = (key.len() as u16).to_be_bytes().to_vec();
    pattern.extend_from_slice(key.as_bytes());
    pattern.push(0x00); // AMF0 number marker
    bytes.windows(pattern.len()).position(|w| w == pattern.as_slice()).map(|i| i + pattern.len())
}

/// A tag's header fields: kind, body length, timestamp.
pub fn parse_tag_header(h: &[u8; 11]) -> (u8, u32, u32) {
    let len = u32::from_be_bytes([0, h[1], h[2], h[3]]);
    let ts = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
    (h[0], len, ts)
}
