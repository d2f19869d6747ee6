//! CMAF fragmented MP4 (ISO/IEC 14496-12, 14496-15, 23000-19) for `hls_format fmp4`: the
//! init segment (`ftyp` + `moov` with one track per stream) and media fragments (`moof` +
//! `mdat`). Pure functions from codec records and samples to bytes; nothing is read here.

use crate::hls::codec::VideoCodec;

/// Video timestamps are 90 kHz (as in TS, and as RTMP's milliseconds convert exactly).
pub const VIDEO_TIMESCALE: u32 = 90_000;
pub const VIDEO_TRACK: u32 = 1;
pub const AUDIO_TRACK: u32 = 2;

/// The video stream: its decoder configuration record as the publisher sent it (its NAL
/// length size is the samples'), and its picture size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VideoTrack {
    pub codec: VideoCodec,
    pub record: Vec<u8>,
    pub width: u16,
    pub height: u16,
}

/// A video decoder configuration record (as the publisher sent it) as a track: its
/// sample entry (picture size from the SPS; 16x16 if unreadable) and the parsed record
/// (NAL length size, parameter sets). None: not a usable record.
pub fn video_track(codec: VideoCodec, record: &[u8]) -> Option<(VideoTrack, crate::media::config::VideoConfig)> {
    let cfg = match codec {
        VideoCodec::Avc => crate::media::config::avc(record),
        VideoCodec::Hevc => crate::media::config::hevc(record),
    }?;
    let sps = |t: u8| cfg.parameter_sets.iter().find(|p| !p.is_empty() && crate::hls::codec::nal_type(codec, p) == t);
    let size = match codec {
        VideoCodec::Avc => sps(7).and_then(|p| crate::media::sps::avc_size(p)),
        VideoCodec::Hevc => sps(33).and_then(|p| crate::media::sps::hevc_size(p)),
    };
    let (width, height) = size.unwrap_or((16, 16));
    Some((VideoTrack { codec, record: record.to_vec(), width, height }, cfg))
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AudioTrack {
    /// AAC: its AudioSpecificConfig.
    Aac { asc: Vec<u8>, rate: u32, channels: u8 },
    /// Opus: its identification header (`OpusHead`, RFC 7845).
    Opus { head: Vec<u8> },
}

impl AudioTrack {
    pub fn timescale(&self) -> u32 {
        match self {
            AudioTrack::Aac { rate, .. } => *rate,
            AudioTrack::Opus { .. } => 48_000,
        }
    }

    pub fn channels(&self) -> u16 {
        match self {
            AudioTrack::Aac { channels, .. } => u16::from(*channels).max(1),
            AudioTrack::Opus { head } => u16::from(head.get(9).copied().unwrap_or(2)).max(1),
        }
    }
}

/// One sample of a fragment; its bytes are in the fragment's data, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// In the track's timescale.
    pub duration: u32,
    pub size: u32,
    pub sync: bool,
    /// Composition time offset (pts - dts), in the track's timescale.
    pub cts: i32,
}

/// One track's samples in a fragment.
pub struct Run<'a> {
    pub track: u32,
    /// Decode time of the first sample (`tfdt`).
    pub base: u64,
    pub samples: &'a [Sample],
    pub data: &'a [u8],
}

/// Writes a box: its size (patched once its body is written), its type, its body.
fn bx(out: &mut Vec<u8>, kind: &[u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    let at = out.len();
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(kind);
    body(out);
    let size = (out.len() - at) as u32;
    out[at..at + 4].copy_from_slice(&size.to_be_bytes());
}

/// A full box: version and flags first.
fn full(out: &mut Vec<u8>, kind: &[u8; 4], version: u8, flags: u32, body: impl FnOnce(&mut Vec<u8>)) {
    bx(out, kind, |o| {
        o.extend_from_slice(&(u32::from(version) << 24 | (flags & 0xff_ffff)).to_be_bytes());
        body(o);
    });
}

fn u16b(o: &mut Vec<u8>, v: u16) {
    o.extend_from_slice(&v.to_be_bytes());
}
fn u32b(o: &mut Vec<u8>, v: u32) {
    o.extend_from_slice(&v.to_be_bytes());
}
fn zeros(o: &mut Vec<u8>, n: usize) {
    o.resize(o.len() + n, 0);
}

const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

fn matrix(o: &mut Vec<u8>) {
    for v in MATRIX {
        u32b(o, v);
    }
}

/// The init segment for these tracks (at least one).
pub fn init(video: Option<&VideoTrack>, audio: Option<&AudioTrack>) -> Vec<u8> {
    let mut o = Vec::with_capacity(1024);
    bx(&mut o, b"ftyp", |o| {
        o.extend_from_slice(b"iso6");
        u32b(o, 0);
        for brand in [b"iso6", b"cmfc", b"mp41"] {
            o.extend_from_slice(brand);
        }
    });
    bx(&mut o, b"moov", |o| {
        full(o, b"mvhd", 0, 0, |o| {
            zeros(o, 8); // creation, modification
            u32b(o, 1000);
            u32b(o, 0); // duration: unknown (fragments)
            u32b(o, 0x0001_0000); // rate
            u16b(o, 0x0100); // volume
            zeros(o, 10);
            matrix(o);
            zeros(o, 24);
            u32b(o, AUDIO_TRACK + 1);
        });
        if let Some(v) = video {
            trak(o, VIDEO_TRACK, VIDEO_TIMESCALE, (v.width, v.height), |o| video_entry(o, v));
        }
        if let Some(a) = audio {
            trak(o, AUDIO_TRACK, a.timescale(), (0, 0), |o| audio_entry(o, a));
        }
        bx(o, b"mvex", |o| {
            for (track, present) in [(VIDEO_TRACK, video.is_some()), (AUDIO_TRACK, audio.is_some())] {
                if present {
                    full(o, b"trex", 0, 0, |o| {
                        u32b(o, track);
                        u32b(o, 1); // sample description index
                        zeros(o, 12); // default duration, size, flags
                    });
                }
            }
        });
    });
    o
}

/// A track; `size` is (0, 0) for audio.
fn trak(o: &mut Vec<u8>, id: u32, timescale: u32, size: (u16, u16), entry: impl FnOnce(&mut Vec<u8>)) {
    let is_video = id == VIDEO_TRACK;
    bx(o, b"trak", |o| {
        full(o, b"tkhd", 0, 3, |o| {
            zeros(o, 8);
            u32b(o, id);
            zeros(o, 4);
            u32b(o, 0); // duration
            zeros(o, 8);
            u16b(o, 0); // layer
            u16b(o, 0); // alternate group
            u16b(o, if is_video { 0 } else { 0x0100 });
            zeros(o, 2);
            matrix(o);
            u32b(o, u32::from(size.0) << 16);
            u32b(o, u32::from(size.1) << 16);
        });
        bx(o, b"mdia", |o| {
            full(o, b"mdhd", 0, 0, |o| {
                zeros(o, 8);
                u32b(o, timescale);
                u32b(o, 0);
                u16b(o, 0x55c4); // "und"
                u16b(o, 0);
            });
            full(o, b"hdlr", 0, 0, |o| {
                zeros(o, 4);
                o.extend_from_slice(if is_video { b"vide" } else { b"soun" });
                zeros(o, 12);
                o.extend_from_slice(if is_video { b"VideoHandler\0" } else { b"SoundHandler\0" });
            });
            bx(o, b"minf", |o| {
                if is_video {
                    full(o, b"vmhd", 0, 1, |o| zeros(o, 8));
                } else {
                    full(o, b"smhd", 0, 0, |o| zeros(o, 4));
                }
                bx(o, b"dinf", |o| {
                    full(o, b"dref", 0, 0, |o| {
                        u32b(o, 1);
                        full(o, b"url ", 0, 1, |_| {});
                    });
                });
                bx(o, b"stbl", |o| {
                    full(o, b"stsd", 0, 0, |o| {
                        u32b(o, 1);
                        entry(o);
                    });
                    full(o, b"stts", 0, 0, |o| u32b(o, 0));
                    full(o, b"stsc", 0, 0, |o| u32b(o, 0));
                    full(o, b"stsz", 0, 0, |o| zeros(o, 8));
                    full(o, b"stco", 0, 0, |o| u32b(o, 0));
                });
            });
        });
    });
}

fn video_entry(o: &mut Vec<u8>, v: &VideoTrack) {
    let (kind, config) = match v.codec {
        VideoCodec::Avc => (b"avc1", b"avcC"),
        VideoCodec::Hevc => (b"hvc1", b"hvcC"),
    };
    bx(o, kind, |o| {
        zeros(o, 6);
        u16b(o, 1); // data reference index
        zeros(o, 16); // pre-defined, reserved
        u16b(o, v.width);
        u16b(o, v.height);
        u32b(o, 0x0048_0000); // 72 dpi
        u32b(o, 0x0048_0000);
        zeros(o, 4);
        u16b(o, 1); // frame count
        zeros(o, 32); // compressor name
        u16b(o, 0x0018); // depth
        u16b(o, 0xffff); // pre-defined: -1
        bx(o, config, |o| o.extend_from_slice(&v.record));
    });
}

fn audio_entry(o: &mut Vec<u8>, a: &AudioTrack) {
    let kind = match a {
        AudioTrack::Aac { .. } => b"mp4a",
        AudioTrack::Opus { .. } => b"Opus",
    };
    bx(o, kind, |o| {
        zeros(o, 6);
        u16b(o, 1);
        zeros(o, 8);
        u16b(o, a.channels());
        u16b(o, 16); // sample size
        zeros(o, 4);
        u32b(o, a.timescale().min(0xffff) << 16);
        match a {
            AudioTrack::Aac { asc, .. } => full(o, b"esds", 0, 0, |o| esds(o, asc)),
            AudioTrack::Opus { head } => bx(o, b"dOps", |o| dops(o, head)),
        }
    });
}

/// An MPEG-4 descriptor: tag, size (in the four-byte form every reader takes), body.
fn descriptor(o: &mut Vec<u8>, tag: u8, body: impl FnOnce(&mut Vec<u8>)) {
    o.push(tag);
    let at = o.len();
    zeros(o, 4);
    body(o);
    let n = (o.len() - at - 4) as u32;
    o[at..at + 4].copy_from_slice(&[0x80 | (n >> 21 & 0x7f) as u8, 0x80 | (n >> 14 & 0x7f) as u8, 0x80 | (n >> 7 & 0x7f) as u8, (n & 0x7f) as u8]);
}

fn esds(o: &mut Vec<u8>, asc: &[u8]) {
    descriptor(o, 3, |o| {
        u16b(o, 0); // ES_ID
        o.push(0); // flags
        descriptor(o, 4, |o| {
            o.push(0x40); // Audio ISO/IEC 14496-3
            o.push(0x15); // audio stream
            zeros(o, 3); // buffer size
            zeros(o, 8); // max, average bit rate: unknown
            descriptor(o, 5, |o| o.extend_from_slice(asc));
        });
        descriptor(o, 6, |o| o.push(2));
    });
}

/// `dOps` (Opus in ISO BMFF, 4.3.2) from an `OpusHead`: the same fields, big-endian,
/// without the magic and with version 0.
fn dops(o: &mut Vec<u8>, head: &[u8]) {
    let h = |i: usize| head.get(i).copied().unwrap_or(0);
    o.push(0);
    o.push(h(9).max(1)); // channels
    o.extend_from_slice(&[h(11), h(10)]); // pre-skip
    o.extend_from_slice(&[h(15), h(14), h(13), h(12)]); // input sample rate
    o.extend_from_slice(&[h(17), h(16)]); // output gain
    let family = h(18);
    o.push(family);
    if family != 0 {
        // Stream count, coupled count, channel mapping.
        let n = 2 + usize::from(h(9));
        o.extend((0..n).map(|i| h(19 + i)));
    }
}

/// Sample flags: a sync sample depends on no other; others do, and are not sync.
const SYNC: u32 = 0x0200_0000;
const NON_SYNC: u32 = 0x0101_0000;

/// One fragment: `moof` (sequence number `seq`, a `traf` per run) and its `mdat`.
pub fn fragment(seq: u32, runs: &[Run], out: &mut Vec<u8>) {
    let start = out.len();
    let mut offsets = Vec::with_capacity(runs.len());
    bx(out, b"moof", |o| {
        full(o, b"mfhd", 0, 0, |o| u32b(o, seq));
        for r in runs {
            bx(o, b"traf", |o| {
                full(o, b"tfhd", 0, 0x02_0000, |o| u32b(o, r.track)); // default-base-is-moof
                full(o, b"tfdt", 1, 0, |o| o.extend_from_slice(&r.base.to_be_bytes()));
                let video = r.track == VIDEO_TRACK;
                // data offset, duration, size, flags, and for video the composition offset
                let flags = 0x01 | 0x100 | 0x200 | 0x400 | if video { 0x800 } else { 0 };
                full(o, b"trun", 1, flags, |o| {
                    u32b(o, r.samples.len() as u32);
                    // (Where in `out` the data offset goes, patched below.)
                    offsets.push(o.len());
                    u32b(o, 0);
                    for s in r.samples {
                        u32b(o, s.duration);
                        u32b(o, s.size);
                        u32b(o, if s.sync { SYNC } else { NON_SYNC });
                        if video {
                            o.extend_from_slice(&s.cts.to_be_bytes());
                        }
                    }
                });
            });
        }
    });
    let moof_len = out.len() - start;
    let data_len: usize = runs.iter().map(|r| r.data.len()).sum();
    // (An mdat over 4 GiB never happens: fragments are cut long before.)
    u32b(out, (8 + data_len) as u32);
    out.extend_from_slice(b"mdat");
    let mut at = moof_len + 8;
    for (r, off) in runs.iter().zip(offsets) {
        out[off..off + 4].copy_from_slice(&(at as u32).to_be_bytes());
        out.extend_from_slice(r.data);
        at += r.data.len();
    }
}

/// An Opus packet's duration in 48 kHz samples, from its TOC byte (RFC 6716 3.1); 960
/// (20 ms) for a packet too short to say.
pub fn opus_duration(packet: &[u8]) -> u32 {
    let Some(&toc) = packet.first() else { return 960 };
    let config = toc >> 3;
    // Frame size in 1/400 s (2.5 ms = 120 samples).
    let per_frame: u32 = match config {
        0..=11 => [4, 8, 16, 24][usize::from(config % 4)],
        12..=15 => [4, 8][usize::from(config % 2)],
        _ => [1, 2, 4, 8][usize::from(config % 4)],
    };
    let frames = match toc & 3 {
        0 => 1,
        1 | 2 => 2,
        _ => packet.get(1).map_or(1, |b| u32::from(b & 0x3f).max(1)),
    };
    // At most 120 ms in a packet.
    (per_frame * frames * 120).min(5760)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks boxes: (type, body) at one level.
    fn boxes(mut b: &[u8]) -> Vec<([u8; 4], &[u8])> {
        let mut v = Vec::new();
        while b.len() >= 8 {
            let n = u32::from_be_bytes(b[..4].try_into().unwrap()) as usize;
            assert!(n >= 8 && n <= b.len(), "box size {n} of {}", b.len());
            v.push((b[4..8].try_into().unwrap(), &b[8..n]));
            b = &b[n..];
        }
        assert!(b.is_empty());
        v
    }

    fn find<'a>(b: &'a [u8], path: &[&[u8; 4]]) -> Option<&'a [u8]> {
        let (first, rest) = path.split_first()?;
        let (_, body) = boxes(b).into_iter().find(|(k, _)| k == *first)?;
        if rest.is_empty() {
            Some(body)
        } else {
            find(body, rest)
        }
    }

    #[test]
    fn init_segment_layout() {
        let v = VideoTrack { codec: VideoCodec::Avc, record: vec![1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 0], width: 640, height: 360 };
        let a = AudioTrack::Aac { asc: vec![0x12, 0x10], rate: 44_100, channels: 2 };
        let b = init(Some(&v), Some(&a));
        let top: Vec<_> = boxes(&b).into_iter().map(|(k, _)| k).collect();
        assert_eq!(top, [*b"ftyp", *b"moov"]);
        let moov = find(&b, &[b"moov"]).unwrap();
        let kinds: Vec<_> = boxes(moov).into_iter().map(|(k, _)| k).collect();
        assert_eq!(kinds, [*b"mvhd", *b"trak", *b"trak", *b"mvex"]);
        let tkhd = find(&b, &[b"moov", b"trak", b"tkhd"]).unwrap();
        assert_eq!(&tkhd[76..84], &[2, 0x80, 0, 0, 1, 0x68, 0, 0], "640x360 in 16.16");
        let stsd = find(&b, &[b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"]).unwrap();
        let entry = boxes(&stsd[8..]);
        assert_eq!(&entry[0].0, b"avc1");
        let avcc = boxes(&entry[0].1[78..]);
        assert_eq!((&avcc[0].0, avcc[0].1), (b"avcC", &v.record[..]));
        // The audio track: an esds holding the AudioSpecificConfig.
        let audio = boxes(moov).into_iter().filter(|(k, _)| k == b"trak").nth(1).unwrap().1;
        let mdhd = find(audio, &[b"mdia", b"mdhd"]).unwrap();
        assert_eq!(u32::from_be_bytes(mdhd[12..16].try_into().unwrap()), 44_100);
        let stsd = find(audio, &[b"mdia", b"minf", b"stbl", b"stsd"]).unwrap();
        let mp4a = boxes(&stsd[8..]);
        assert_eq!(&mp4a[0].0, b"mp4a");
        assert_eq!(&mp4a[0].1[16..18], &[0, 2], "channels");
        let esds = boxes(&mp4a[0].1[28..]);
        assert!(esds[0].1.windows(7).any(|w| w == [5, 0x80, 0x80, 0x80, 2, 0x12, 0x10]));
    }

    #[test]
    fn opus_entry_from_opus_head() {
        let head = [b'O', b'p', b'u', b's', b'H', b'e', b'a', b'd', 1, 2, 0x38, 0x01, 0x80, 0xbb, 0, 0, 0, 0, 0];
        let b = init(None, Some(&AudioTrack::Opus { head: head.to_vec() }));
        let stsd = find(&b, &[b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"]).unwrap();
        let opus = boxes(&stsd[8..]);
        assert_eq!(&opus[0].0, b"Opus");
        let dops = boxes(&opus[0].1[28..]);
        assert_eq!((&dops[0].0, dops[0].1), (b"dOps", &[0, 2, 0x01, 0x38, 0, 0, 0xbb, 0x80, 0, 0, 0][..]));
    }

    #[test]
    fn fragment_offsets_point_at_each_tracks_data() {
        let vs = [Sample { duration: 3000, size: 3, sync: true, cts: 6000 }, Sample { duration: 3000, size: 2, sync: false, cts: -3000 }];
        let as_ = [Sample { duration: 1024, size: 4, sync: true, cts: 0 }];
        let mut out = vec![9; 5]; // (written after other bytes)
        fragment(
            7,
            &[
                Run { track: VIDEO_TRACK, base: 1 << 33, samples: &vs, data: b"vvvww" },
                Run { track: AUDIO_TRACK, base: 44_100, samples: &as_, data: b"aaaa" },
            ],
            &mut out,
        );
        let b = &out[5..];
        let top = boxes(b);
        assert_eq!((&top[0].0, &top[1].0, top[1].1), (b"moof", b"mdat", &b"vvvwwaaaa"[..]));
        let moof_len = top[0].1.len() + 8;
        let trafs: Vec<_> = boxes(top[0].1).into_iter().filter(|(k, _)| k == b"traf").collect();
        for (i, want) in [(0usize, &b"vvvww"[..]), (1, &b"aaaa"[..])] {
            let traf = trafs[i].1;
            let tfdt = find(traf, &[b"tfdt"]).unwrap();
            assert_eq!(u64::from_be_bytes(tfdt[4..12].try_into().unwrap()), [1u64 << 33, 44_100][i]);
            let trun = find(traf, &[b"trun"]).unwrap();
            let off = u32::from_be_bytes(trun[8..12].try_into().unwrap()) as usize;
            assert!(off > moof_len);
            assert_eq!(&b[off..off + want.len()], want);
        }
        let trun = find(trafs[0].1, &[b"trun"]).unwrap();
        assert_eq!(&trun[12 + 12..12 + 16], &6000i32.to_be_bytes());
        assert_eq!(&trun[12 + 16 + 12..12 + 32], &(-3000i32).to_be_bytes());
    }

    #[test]
    fn opus_durations() {
        assert_eq!(opus_duration(&[0xfc]), 960); // CELT 20 ms
        assert_eq!(opus_duration(&[0x70]), 480); // hybrid 10 ms
        assert_eq!(opus_duration(&[0x09]), 960 * 2); // SILK 20 ms, two frames
        assert_eq!(opus_duration(&[0xfb, 0x03]), 960 * 3); // code 3, three 20 ms frames
        assert_eq!(opus_duration(&[]), 960);
    }
}
