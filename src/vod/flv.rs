//! FLV files (recordings, nginx-rtmp-module's and ours) as tags: the header, then tags
//! read one at a time; seeking scans tag headers for the last keyframe before a time.

use bytes::Bytes;

use super::{read_exact, ReadAt, Source, Tag};
use crate::media::{Frame, MediaKind};
use crate::rtmp::amf::{self, Value};

/// How many tags from the start are looked at for metadata and codec headers.
const HEADER_SCAN: usize = 32;

pub struct Flv {
    file: Box<dyn ReadAt>,
    /// Where the first tag starts, and the next one.
    first: u64,
    pos: u64,
    headers: Vec<Tag>,
    duration: Option<u32>,
}

/// A tag's header: (kind, timestamp, body size, where the body starts).
struct Head {
    kind: Option<MediaKind>,
    ts: u32,
    size: usize,
    body: u64,
}

impl Flv {
    pub fn open(file: Box<dyn ReadAt>) -> Result<Flv, String> {
        let h = read_exact(&*file, 0, 9)?;
        if &h[..3] != b"FLV" {
            return Err("not an FLV file".into());
        }
        let offset = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) as u64;
        let first = offset.max(9) + 4;
        let mut f = Flv { file, first, pos: first, headers: Vec::new(), duration: None };
        // Metadata and codec headers: the tags before the first coded frame.
        let mut at = first;
        let (mut video, mut audio) = (false, false);
        for _ in 0..HEADER_SCAN {
            let Some(head) = f.head(at)? else { break };
            at = head.body + head.size as u64 + 4;
            let Some(kind) = head.kind else { continue };
            let body = Bytes::from(read_exact(&*f.file, head.body, head.size)?);
            match kind {
                MediaKind::Data => {
                    let values = amf::Reader::new(&body).read_all().unwrap_or_default();
                    if values.first().and_then(Value::as_str) == Some("onMetaData") {
                        let d = values.get(1).and_then(|m| m.get("duration")).and_then(Value::as_f64);
                        f.duration = d.filter(|d| d.is_finite() && *d > 0.0).map(|d| (d * 1000.0) as u32);
                        f.headers.push(Tag { kind, ts: 0, body });
                    }
                }
                _ => {
                    let frame = Frame::parse(kind, head.ts, body.clone());
                    if frame.is_header() {
                        let seen = if kind == MediaKind::Video { &mut video } else { &mut audio };
                        if !*seen {
                            *seen = true;
                            f.headers.push(Tag { kind, ts: 0, body });
                        }
                    } else if (video || kind == MediaKind::Audio) && (audio || kind == MediaKind::Video) {
                        break;
                    }
                }
            }
        }
        Ok(f)
    }

    /// The tag header at `at` (None at the end of the file); kind None for a tag of
    /// another type.
    fn head(&self, at: u64) -> Result<Option<Head>, String> {
        if at + 11 > self.file.len() {
            return Ok(None);
        }
        let h = read_exact(&*self.file, at, 11)?;
        let kind = match h[0] & 0x1f {
            8 => Some(MediaKind::Audio),
            9 => Some(MediaKind::Video),
            18 => Some(MediaKind::Data),
            _ => None,
        };
        let size = u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize;
        let ts = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
        if at + 11 + size as u64 > self.file.len() {
            // (A recording cut short: its last tag is not whole.)
            return Ok(None);
        }
        Ok(Some(Head { kind, ts, size, body: at + 11 }))
    }
}

impl Source for Flv {
    fn headers(&self) -> Vec<Tag> {
        self.headers.clone()
    }

    fn next(&mut self) -> Result<Option<Tag>, String> {
        loop {
            let Some(head) = self.head(self.pos)? else { return Ok(None) };
            self.pos = head.body + head.size as u64 + 4;
            match head.kind {
                // (Metadata went first, once.)
                None | Some(MediaKind::Data) => continue,
                Some(kind) => {
                    let body = Bytes::from(read_exact(&*self.file, head.body, head.size)?);
                    return Ok(Some(Tag { kind, ts: head.ts, body }));
                }
            }
        }
    }

    fn seek(&mut self, ms: u32) -> Result<u32, String> {
        // The last video keyframe at or before `ms` (or, without video, the last audio).
        let (mut at, mut best, mut best_ts, mut has_video) = (self.first, self.first, 0, false);
        while let Some(head) = self.head(at)? {
            if head.ts > ms && (has_video || head.kind == Some(MediaKind::Audio)) {
                break;
            }
            match head.kind {
                Some(MediaKind::Video) if head.size > 0 => {
                    let b0 = read_exact(&*self.file, head.body, 1)?[0];
                    // (Legacy and Enhanced RTMP: the frame type is the high nibble's
                    // lower three bits; 1 is a keyframe. Codec headers are keyframes too
                    // but are not where decoding starts.)
                    let header = read_exact(&*self.file, head.body, head.size.min(2))?;
                    let is_header = if b0 & 0x80 != 0 { b0 & 0x0f == 0 } else { header.get(1) == Some(&0) };
                    if !has_video {
                        has_video = true;
                        best = at;
                        best_ts = 0;
                    }
                    if (b0 >> 4) & 7 == 1 && !is_header && head.ts <= ms {
                        best = at;
                        best_ts = head.ts;
                    }
                }
                Some(MediaKind::Audio) if !has_video && head.ts <= ms => {
                    best = at;
                    best_ts = head.ts;
                }
                _ => {}
            }
            at = head.body + head.size as u64 + 4;
        }
        self.pos = best;
        Ok(best_ts)
    }

    fn duration(&self) -> Option<u32> {
        self.duration
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An FLV file of these tags (type, timestamp, body).
    pub fn file(tags: &[(u8, u32, &[u8])]) -> Vec<u8> {
        let mut f = b"FLV\x01\x05\0\0\0\x09\0\0\0\0".to_vec();
        for &(t, ts, body) in tags {
            let size = body.len() as u32;
            f.push(t);
            f.extend_from_slice(&size.to_be_bytes()[1..]);
            f.extend_from_slice(&ts.to_be_bytes()[1..]);
            f.push((ts >> 24) as u8);
            f.extend_from_slice(&[0, 0, 0]);
            f.extend_from_slice(body);
            f.extend_from_slice(&(size + 11).to_be_bytes());
        }
        f
    }

    fn meta() -> Vec<u8> {
        amf::encode(&[Value::str("onMetaData"), Value::object(&[("duration", Value::Number(2.5))])]).to_vec()
    }

    #[test]
    fn headers_frames_and_seeking() {
        let m = meta();
        let tags: Vec<(u8, u32, &[u8])> = vec![
            (18, 0, &m),
            (9, 0, b"\x17\x00\x00\x00\x00\x01\x64"),
            (8, 0, b"\xaf\x00\x12\x10"),
            (9, 0, b"\x17\x01\x00\x00\x00k0"),
            (8, 10, b"\xaf\x01a"),
            (9, 1000, b"\x27\x01\x00\x00\x00p"),
            (9, 2000, b"\x17\x01\x00\x00\x00k2"),
            (8, 2010, b"\xaf\x01b"),
        ];
        let mut f = Flv::open(Box::new(file(&tags))).unwrap();
        let h = f.headers();
        assert_eq!(h.iter().map(|t| t.kind).collect::<Vec<_>>(), vec![MediaKind::Data, MediaKind::Video, MediaKind::Audio]);
        assert_eq!(f.duration(), Some(2500));
        let all: Vec<u32> = std::iter::from_fn(|| f.next().unwrap()).map(|t| t.ts).collect();
        assert_eq!(all, vec![0, 0, 0, 10, 1000, 2000, 2010], "every audio and video tag, metadata once");
        assert_eq!(f.seek(1500).unwrap(), 0, "the keyframe before 1.5 s is the first one");
        assert_eq!(f.next().unwrap().unwrap().body.as_ref(), b"\x17\x01\x00\x00\x00k0");
        assert_eq!(f.seek(2500).unwrap(), 2000);
        assert_eq!(f.next().unwrap().unwrap().ts, 2000);
        assert_eq!(f.seek(99_000).unwrap(), 2000);
    }

    #[test]
    fn truncated_and_hostile_files_end_cleanly() {
        let good = file(&[(9, 0, b"\x17\x01\x00\x00\x00k"), (8, 5, b"\xaf\x01a")]);
        for cut in 0..good.len() {
            let Ok(mut f) = Flv::open(Box::new(good[..cut].to_vec())) else { continue };
            while let Ok(Some(_)) = f.next() {}
            let _ = f.seek(3);
        }
        // A tag claiming more than the file has ends the file, it is not allocated.
        let mut lying = file(&[(9, 0, b"\x17\x01\x00\x00\x00k")]);
        lying[14..17].copy_from_slice(&[0xff, 0xff, 0xff]);
        let mut f = Flv::open(Box::new(lying)).unwrap();
        assert_eq!(f.next(), Ok(None));
        assert!(Flv::open(Box::new(b"MP4 nope".to_vec())).is_err());
    }
}
