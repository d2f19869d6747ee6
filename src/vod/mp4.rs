//! MP4 files (ISO BMFF, as ffmpeg and cameras write them; `moov` first or last) as FLV
//! tags: H.264 video (`avc1`/`avc3` with `avcC`) and AAC audio (`mp4a` with `esds`), the
//! sample tables (`stts`, `ctts`, `stsc`, `stsz`, `stco`/`co64`, `stss`) turned into one
//! list of samples in decoding order. Other tracks and codecs are left out.

use bytes::Bytes;

use super::{read_exact, ReadAt, Source, Tag};
use crate::media::MediaKind;
use crate::rtmp::amf::{self, Value};

/// The largest `moov` read (its sample tables: about 12 bytes a sample).
const MAX_MOOV: u64 = 64 << 20;
/// The most samples a file may list.
const MAX_SAMPLES: usize = 2_000_000;

#[derive(Clone, Copy, Debug)]
struct Sample {
    offset: u64,
    size: u32,
    /// Decoding time and composition offset, in ms.
    dts: u32,
    cts: i32,
    key: bool,
    video: bool,
}

pub struct Mp4 {
    file: Box<dyn ReadAt>,
    samples: Vec<Sample>,
    next: usize,
    headers: Vec<Tag>,
    duration: Option<u32>,
}

/// A box's children: (type, body) in order.
fn boxes(mut data: &[u8]) -> Vec<([u8; 4], &[u8])> {
    let mut out = Vec::new();
    while data.len() >= 8 {
        let size = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as u64;
        let kind: [u8; 4] = data[4..8].try_into().expect("4 bytes");
        let (head, size) = match size {
            1 if data.len() >= 16 => (16, u64::from_be_bytes(data[8..16].try_into().expect("8 bytes"))),
            0 => (8, data.len() as u64),
            s => (8, s),
        };
        if size < head as u64 || size > data.len() as u64 {
            break;
        }
        out.push((kind, &data[head..size as usize]));
        data = &data[size as usize..];
    }
    out
}

fn child<'a>(data: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    boxes(data).into_iter().find(|(k, _)| k == kind).map(|(_, b)| b)
}

fn path<'a>(data: &'a [u8], kinds: &[&[u8; 4]]) -> Option<&'a [u8]> {
    kinds.iter().try_fold(data, |d, k| child(d, k))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// A full box's entry table: (entry count, the entries).
fn table(b: &[u8], entry: usize) -> Option<(usize, &[u8])> {
    let n = u32_at(b, 4)? as usize;
    let entries = b.get(8..)?;
    (n.checked_mul(entry)? <= entries.len()).then_some((n, entries))
}

/// The `esds` box's AudioSpecificConfig (the DecoderSpecificInfo, tag 5).
fn esds_asc(esds: &[u8]) -> Option<&[u8]> {
    let d = esds.get(4..)?;
    let mut i = 0;
    // Descriptors: tag, a length in up to 4 bytes of 7 bits, the body; 3 and 4 nest.
    while i < d.len() {
        let tag = d[i];
        i += 1;
        let mut len = 0usize;
        for _ in 0..4 {
            let b = *d.get(i)?;
            i += 1;
            len = (len << 7) | (b & 0x7f) as usize;
            if b & 0x80 == 0 {
                break;
            }
        }
        match tag {
            3 => i += 3, // ES_ID, flags (no optional fields in what encoders write)
            4 => i += 13,
            5 => return d.get(i..i + len),
            _ => i += len,
        }
    }
    None
}

impl Mp4 {
    pub fn open(file: Box<dyn ReadAt>) -> Result<Mp4, String> {
        // Find `moov` among the top-level boxes.
        let len = file.len();
        let mut at = 0u64;
        let moov = loop {
            if at + 8 > len {
                return Err("no moov box (not an MP4 file, or cut short)".into());
            }
            let h = read_exact(&*file, at, 8)?;
            let mut size = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as u64;
            let mut head = 8;
            if size == 1 {
                size = u64::from_be_bytes(read_exact(&*file, at + 8, 8)?.try_into().expect("8 bytes"));
                head = 16;
            } else if size == 0 {
                size = len - at;
            }
            if size < head || at + size > len {
                return Err("a broken box".into());
            }
            if &h[4..8] == b"moov" {
                if size > MAX_MOOV {
                    return Err(format!("a moov of {size} bytes (at most {MAX_MOOV})"));
                }
                break read_exact(&*file, at + head, (size - head) as usize)?;
            }
            at += size;
        };
        let mut samples = Vec::new();
        let mut headers = Vec::new();
        let mut duration = None;
        if let Some(mvhd) = child(&moov, b"mvhd") {
            let (scale, dur) = if mvhd.first() == Some(&1) {
                (u32_at(mvhd, 20), mvhd.get(24..32).map(|b| u64::from_be_bytes(b.try_into().expect("8"))))
            } else {
                (u32_at(mvhd, 12), u32_at(mvhd, 16).map(u64::from))
            };
            if let (Some(s), Some(d)) = (scale.filter(|&s| s > 0), dur) {
                duration = Some((d * 1000 / u64::from(s)).min(u64::from(u32::MAX)) as u32);
            }
        }
        let (mut video_header, mut audio_header) = (None, None);
        for (kind, trak) in boxes(&moov) {
            if &kind != b"trak" {
                continue;
            }
            let Some(mdia) = child(trak, b"mdia") else { continue };
            let handler = child(mdia, b"hdlr").and_then(|h| h.get(8..12));
            let video = match handler {
                Some(b"vide") if video_header.is_none() => true,
                Some(b"soun") if audio_header.is_none() => false,
                _ => continue,
            };
            let Some(mdhd) = child(mdia, b"mdhd") else { continue };
            let scale = if mdhd.first() == Some(&1) { u32_at(mdhd, 20) } else { u32_at(mdhd, 12) };
            let Some(scale) = scale.filter(|&s| s > 0) else { continue };
            let Some(stbl) = path(mdia, &[b"minf", b"stbl"]) else { continue };
            // The sample description: H.264 or AAC, and its configuration record.
            let Some(stsd) = child(stbl, b"stsd") else { continue };
            let Some(entry) = stsd.get(8..).and_then(|e| boxes(e).into_iter().next()) else { continue };
            let header = match (&entry.0, video) {
                (b"avc1" | b"avc3", true) => entry.1.get(78..).and_then(|b| child(b, b"avcC")).map(|c| {
                    let mut t = vec![0x17, 0, 0, 0, 0];
                    t.extend_from_slice(c);
                    t
                }),
                (b"mp4a", false) => entry.1.get(28..).and_then(|b| child(b, b"esds")).and_then(esds_asc).map(|asc| {
                    let mut t = vec![0xaf, 0];
                    t.extend_from_slice(asc);
                    t
                }),
                _ => None,
            };
            let Some(header) = header else { continue };
            let tag = Tag { kind: if video { MediaKind::Video } else { MediaKind::Audio }, ts: 0, body: Bytes::from(header) };
            if video {
                video_header = Some(tag);
            } else {
                audio_header = Some(tag);
            }
            Self::track(stbl, scale, video, &mut samples).ok_or("broken sample tables")?;
        }
        if samples.is_empty() {
            return Err("no H.264 or AAC track".into());
        }
        samples.sort_by_key(|s| (s.dts, !s.video, s.offset));
        let mut meta = vec![("duration", Value::Number(f64::from(duration.unwrap_or(0)) / 1000.0))];
        if video_header.is_some() {
            meta.push(("videocodecid", Value::Number(7.0)));
        }
        if audio_header.is_some() {
            meta.push(("audiocodecid", Value::Number(10.0)));
        }
        headers.push(Tag { kind: MediaKind::Data, ts: 0, body: amf::encode(&[Value::str("onMetaData"), Value::object(&meta)]).freeze() });
        headers.extend(video_header);
        headers.extend(audio_header);
        Ok(Mp4 { file, samples, next: 0, headers, duration })
    }

    /// Adds one track's samples (None: its tables do not agree).
    fn track(stbl: &[u8], scale: u32, video: bool, out: &mut Vec<Sample>) -> Option<()> {
        let ms = |t: u64| (t * 1000 / u64::from(scale)).min(u64::from(u32::MAX)) as u32;
        // Sizes.
        let stsz = child(stbl, b"stsz")?;
        let fixed = u32_at(stsz, 4)?;
        let count = u32_at(stsz, 8)? as usize;
        if count > MAX_SAMPLES || out.len() + count > MAX_SAMPLES {
            return None;
        }
        let sizes = stsz.get(12..)?;
        if fixed == 0 && sizes.len() < count * 4 {
            return None;
        }
        let size = |i: usize| if fixed != 0 { fixed } else { u32_at(sizes, i * 4).unwrap_or(0) };
        // Chunk offsets.
        let (offsets, wide) = match child(stbl, b"stco") {
            Some(b) => (b, false),
            None => (child(stbl, b"co64")?, true),
        };
        let (chunks, offs) = table(offsets, if wide { 8 } else { 4 })?;
        let chunk_offset = |c: usize| -> u64 {
            if wide {
                offs.get(c * 8..c * 8 + 8).map_or(0, |b| u64::from_be_bytes(b.try_into().expect("8")))
            } else {
                u64::from(u32_at(offs, c * 4).unwrap_or(0))
            }
        };
        // Samples per chunk.
        let (nstsc, stsc) = table(child(stbl, b"stsc")?, 12)?;
        // Decoding times.
        let (nstts, stts) = table(child(stbl, b"stts")?, 8)?;
        let ctts = child(stbl, b"ctts").and_then(|b| table(b, 8));
        let stss = child(stbl, b"stss").and_then(|b| table(b, 4));
        let mut keys: Vec<u32> = stss.map(|(n, e)| (0..n).filter_map(|i| u32_at(e, i * 4)).collect()).unwrap_or_default();
        keys.sort_unstable();

        let mut times = Vec::with_capacity(count);
        let mut t = 0u64;
        for i in 0..nstts {
            let (n, delta) = (u32_at(stts, i * 8)?, u32_at(stts, i * 8 + 4)?);
            for _ in 0..n {
                if times.len() == count {
                    break;
                }
                times.push(t);
                t += u64::from(delta);
            }
        }
        let mut offsets_ct = Vec::new();
        if let Some((n, e)) = ctts {
            for i in 0..n {
                let (k, off) = (u32_at(e, i * 8)?, u32_at(e, i * 8 + 4)? as i32);
                for _ in 0..k {
                    if offsets_ct.len() == count {
                        break;
                    }
                    offsets_ct.push(off);
                }
            }
        }
        let mut i = 0usize;
        for e in 0..nstsc {
            let first = u32_at(stsc, e * 12)? as usize;
            let per = u32_at(stsc, e * 12 + 4)? as usize;
            let last = if e + 1 < nstsc { u32_at(stsc, (e + 1) * 12)? as usize } else { chunks + 1 };
            for c in first.max(1)..last.min(chunks + 1) {
                let mut at = chunk_offset(c - 1);
                for _ in 0..per {
                    if i >= count || i >= times.len() {
                        return Some(());
                    }
                    let s = size(i);
                    let key = !video || (stss.is_none()) || keys.binary_search(&(i as u32 + 1)).is_ok();
                    let cts = offsets_ct.get(i).map_or(0, |&o| (i64::from(o) * 1000 / i64::from(scale)) as i32);
                    out.push(Sample { offset: at, size: s, dts: ms(times[i]), cts, key, video });
                    at += u64::from(s);
                    i += 1;
                }
            }
        }
        Some(())
    }
}

impl Source for Mp4 {
    fn headers(&self) -> Vec<Tag> {
        self.headers.clone()
    }

    fn next(&mut self) -> Result<Option<Tag>, String> {
        let Some(&s) = self.samples.get(self.next) else { return Ok(None) };
        self.next += 1;
        let data = read_exact(&*self.file, s.offset, s.size as usize)?;
        let mut body = Vec::with_capacity(data.len() + 5);
        if s.video {
            let cts = s.cts.clamp(-(1 << 23), (1 << 23) - 1);
            body.push(if s.key { 0x17 } else { 0x27 });
            body.push(1);
            body.extend_from_slice(&cts.to_be_bytes()[1..]);
        } else {
            body.extend_from_slice(&[0xaf, 1]);
        }
        body.extend_from_slice(&data);
        Ok(Some(Tag { kind: if s.video { MediaKind::Video } else { MediaKind::Audio }, ts: s.dts, body: Bytes::from(body) }))
    }

    fn seek(&mut self, ms: u32) -> Result<u32, String> {
        let has_video = self.samples.iter().any(|s| s.video);
        let found = self.samples.iter().enumerate().filter(|(_, s)| s.dts <= ms && (s.key && (s.video || !has_video))).last();
        let (i, ts) = found.map_or((0, 0), |(i, s)| (i, s.dts));
        // (Audio of the same time, listed before the keyframe, goes too.)
        let mut start = i;
        while start > 0 && self.samples[start - 1].dts == ts {
            start -= 1;
        }
        self.next = start;
        Ok(ts)
    }

    fn duration(&self) -> Option<u32> {
        self.duration
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_files_are_errors_not_panics() {
        let mut x = 5u64;
        for n in 0..3000usize {
            let mut v: Vec<u8> = (0..n % 400)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            if n % 2 == 0 && v.len() > 8 {
                let len = (v.len() as u32).to_be_bytes();
                v[..4].copy_from_slice(&len);
                v[4..8].copy_from_slice(b"moov");
            }
            if let Ok(mut m) = Mp4::open(Box::new(v)) {
                while let Ok(Some(_)) = m.next() {}
                let _ = m.seek(1000);
            }
        }
        assert!(Mp4::open(Box::new(b"\0\0\0\x08ftyp".to_vec())).is_err());
    }
}
