use std::collections::HashMap;
use std::io;

use aes::cipher::{BlockDecrypt, KeyInit};
use mpeg2ts::pes::{PesPacketReader, ReadPesPacket};
use mpeg2ts::ts::TsPacketReader;

use super::*;

/// Tag bodies in, as a publisher sends them.
trait Feed {
    fn video(&mut self, ts: u32, body: &[u8], now_ms: i64);
    fn audio(&mut self, ts: u32, body: &[u8], now_ms: i64);
}

impl<F: Files> Feed for Segmenter<F> {
    fn video(&mut self, ts: u32, body: &[u8], now_ms: i64) {
        self.frame(&Frame::parse(MediaKind::Video, ts, bytes::Bytes::copy_from_slice(body)), now_ms);
    }
    fn audio(&mut self, ts: u32, body: &[u8], now_ms: i64) {
        self.frame(&Frame::parse(MediaKind::Audio, ts, bytes::Bytes::copy_from_slice(body)), now_ms);
    }
}

/// Files in memory, with failures on demand.
#[derive(Default)]
struct Mem {
    files: HashMap<String, Vec<u8>>,
    open: Option<String>,
    fail_create: bool,
    /// A full disk: files are created, writing to them fails.
    fail_write: bool,
    replaced: Vec<String>,
}

impl Files for Mem {
    fn create(&mut self, path: &str) -> io::Result<()> {
        if self.fail_create {
            return Err(io::Error::other("disk full"));
        }
        self.files.insert(path.into(), vec![]);
        self.open = Some(path.into());
        Ok(())
    }
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        if self.fail_write {
            return Err(io::Error::other("No space left on device"));
        }
        let p = self.open.clone().ok_or_else(|| io::Error::other("closed"))?;
        self.files.get_mut(&p).unwrap().extend_from_slice(data);
        Ok(())
    }
    fn close(&mut self) -> io::Result<()> {
        self.open = None;
        Ok(())
    }
    fn replace(&mut self, path: &str, data: &[u8]) -> io::Result<()> {
        if self.fail_write {
            return Err(io::Error::other("No space left on device"));
        }
        self.files.insert(path.into(), data.to_vec());
        self.replaced.push(path.into());
        Ok(())
    }
    fn touch(&mut self, _: &str) {}
    fn mkdirs(&mut self, _: &str) -> io::Result<()> {
        Ok(())
    }
    fn read(&mut self, path: &str) -> Option<String> {
        self.files.get(path).map(|b| String::from_utf8_lossy(b).into_owned())
    }
    fn random(&mut self, buf: &mut [u8]) {
        buf.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8 * 7 + 1);
    }
}

const AVC_HEADER: &[u8] = &[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 3, 0x67, 1, 2, 1, 0, 2, 0x68, 3];
const AAC_HEADER: &[u8] = &[0xaf, 0, 0x12, 0x10];

fn video_frame(key: bool, size: usize) -> Vec<u8> {
    let mut v = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0];
    v.extend((size as u32).to_be_bytes());
    v.push(if key { 0x65 } else { 0x41 });
    v.extend(std::iter::repeat_n(0xab, size - 1));
    v
}

fn cfg() -> Config {
    Config { path: "/hls".into(), fragment: 2000, playlist_length: 6000, ..Config::default() }
}

/// Publishes `secs` of 25 fps video (keyframe every `gop` frames) and 44.1 kHz AAC.
fn publish(s: &mut Segmenter<Mem>, start_ms: u32, secs: u32, gop: u32, audio: bool, video: bool) {
    if video {
        s.video(start_ms, AVC_HEADER, 0);
    }
    if audio {
        s.audio(start_ms, AAC_HEADER, 0);
    }
    let frames = secs * 25;
    let mut a = 0u32;
    for i in 0..frames {
        let t = start_ms + i * 40;
        while audio && a * 1024 * 1000 / 44100 <= i * 40 {
            s.audio(start_ms + a * 1024 * 1000 / 44100, &[0xaf, 1, 0x21, 0x10, 0x04], t as i64);
            a += 1;
        }
        if video {
            s.video(t, &video_frame(i % gop == 0, 3000), 1_795_512_355_000 + t as i64);
        }
    }
}

fn pes_of(ts: &[u8]) -> Vec<(bool, u64, usize)> {
    let mut r = PesPacketReader::new(TsPacketReader::new(ts));
    let mut out = vec![];
    while let Some(p) = r.read_pes_packet().unwrap() {
        out.push((p.header.stream_id.is_video(), p.header.pts.unwrap().as_u64(), p.data.len()));
    }
    out
}

#[test]
fn segments_cut_at_keyframes_with_measured_durations() {
    let mut s = Segmenter::new(&cfg(), "cam", Mem::default());
    publish(&mut s, 0, 11, 50, true, true);
    let p = s.playlist().clone();
    // 11 s with keyframes every 2 s: segments 0..4 closed (the one from 10 s is open);
    // a 6 s window keeps 3.
    assert_eq!(p.sequence, 2);
    assert_eq!(p.entries.len(), 3);
    assert!(p.entries.iter().all(|e| (e.duration - 2.0).abs() < 1e-9), "{:?}", p.entries);
    assert_eq!(p.entries[0].uri, "cam-2.ts");
    assert_eq!(p.target, 2);
    let text = String::from_utf8(s.files().files["/hls/cam.m3u8"].clone()).unwrap();
    assert_eq!(text, p.render());
    assert!(!text.contains("#EXT-X-ENDLIST"));
    assert!(text.contains("#EXT-X-PROGRAM-DATE-TIME:2026-11-24T09:25:59.000Z"), "{text}");

    // A segment: PAT, PMT, then audio (gathered before the keyframe) and a video keyframe
    // with SPS/PPS; durations in the TS agree with the playlist.
    let seg = &s.files().files["/hls/cam-3.ts"];
    assert_eq!(seg.len() % 188, 0);
    assert_eq!(&seg[..4], &[0x47, 0x40, 0x00, 0x30 | 3], "PAT first (continuity counter runs on)");
    let pes = pes_of(seg);
    let first_video = pes.iter().find(|p| p.0).unwrap();
    assert_eq!(first_video.1, 6000 * 90 + 700 * 90, "starts on the keyframe at 6 s (+ muxdelay)");
    let videos: Vec<u64> = pes.iter().filter(|p| p.0).map(|p| p.1).collect();
    assert_eq!(videos.len(), 50);
    assert!(pes.iter().any(|p| !p.0), "has audio");
    // Annex B keyframe: AUD, SPS, PPS, IDR.
    let mut r = PesPacketReader::new(TsPacketReader::new(&seg[..]));
    let data = loop {
        let p = r.read_pes_packet().unwrap().unwrap();
        if p.header.stream_id.is_video() {
            break p.data;
        }
    };
    assert_eq!(&data[..19], &[0, 0, 0, 1, 9, 0xf0, 0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x68, 3][..]);

    // The publisher leaves: the open segment is listed with its real length.
    s.finish();
    let p = s.playlist();
    assert_eq!(p.entries.last().unwrap().uri, "cam-5.ts");
    assert!((p.entries.last().unwrap().duration - 0.96).abs() < 1e-9);
    assert!(!p.ended, "live playlists are left as nginx-rtmp-module leaves them");
}

#[test]
fn video_decode_timestamps_always_increase() {
    // Frames that share a millisecond timestamp (as a WHIP browser's can) still get
    // increasing decode timestamps, a 90 kHz tick apart.
    let mut s = Segmenter::new(&cfg(), "cam", Mem::default());
    s.video(0, AVC_HEADER, 0);
    let frames = [(0, true), (40, false), (40, false), (80, false), (2000, true), (2000, false), (2000, false), (2040, false), (4000, true)];
    for (t, key) in frames {
        s.video(t, &video_frame(key, 3000), 1_795_512_355_000 + i64::from(t));
    }
    s.finish();
    let mut names: Vec<&String> = s.files().files.keys().filter(|n| n.ends_with(".ts")).collect();
    names.sort_by_key(|n| n.trim_start_matches("/hls/cam-").trim_end_matches(".ts").parse::<u64>().unwrap());
    let pts: Vec<u64> = names.iter().flat_map(|n| pes_of(&s.files().files[*n])).filter(|p| p.0).map(|p| p.1).collect();
    assert_eq!(pts.len(), frames.len(), "{names:?}");
    assert!(pts.windows(2).all(|w| w[0] < w[1]), "{pts:?}");
    assert_eq!(pts[2] - pts[1], 1, "{pts:?}");
}

#[test]
fn settled_once_three_segments_are_listed() {
    // Keyframes every 2 s: segments close at 2, 4 and 6 s.
    let mut s = Segmenter::new(&cfg(), "cam", Mem::default());
    publish(&mut s, 0, 5, 50, true, true);
    assert_eq!((s.playlist().entries.len(), s.settled()), (2, false));
    let mut s = Segmenter::new(&cfg(), "cam", Mem::default());
    publish(&mut s, 0, 7, 50, true, true);
    assert_eq!((s.playlist().entries.len(), s.settled()), (3, true));
}

#[test]
fn republish_continues_numbering_with_a_discontinuity() {
    let mut s = Segmenter::new(&cfg(), "cam", Mem::default());
    publish(&mut s, 0, 5, 50, true, true);
    s.finish();
    let files = std::mem::take(&mut s.files);
    let seq = s.playlist().entries.len();
    assert_eq!(seq, 3);
    // A new publisher, timestamps from 0 again.
    let mut s = Segmenter::new(&cfg(), "cam", files);
    publish(&mut s, 0, 5, 50, true, true);
    let p = s.playlist();
    assert_eq!(p.sequence, 2);
    let uris: Vec<&str> = p.entries.iter().map(|e| e.uri.as_str()).collect();
    assert_eq!(uris, ["cam-2.ts", "cam-3.ts", "cam-4.ts"]);
    assert!(p.entries[1].discont && !p.entries[0].discont && !p.entries[2].discont);

    // Without hls_continuous, a new publisher starts over.
    let c = Config { continuous: false, ..cfg() };
    let files = std::mem::take(&mut s.files);
    let mut s = Segmenter::new(&c, "cam", files);
    publish(&mut s, 0, 3, 50, true, true);
    assert_eq!(s.playlist().sequence, 0);
    assert_eq!(s.playlist().entries[0].uri, "cam-0.ts");
}

#[test]
fn event_playlists_keep_everything_and_end() {
    let c = Config { event: true, ..cfg() };
    let mut s = Segmenter::new(&c, "ev", Mem::default());
    publish(&mut s, 0, 13, 50, true, true);
    s.finish();
    let text = String::from_utf8(s.files().files["/hls/ev.m3u8"].clone()).unwrap();
    assert!(text.contains("#EXT-X-PLAYLIST-TYPE:EVENT\n"));
    assert!(text.ends_with("#EXT-X-ENDLIST\n"));
    assert_eq!(s.playlist().sequence, 0);
    assert_eq!(s.playlist().entries.len(), 7);
}

#[test]
fn audio_only_cuts_by_duration_and_video_only_works() {
    let mut s = Segmenter::new(&cfg(), "radio", Mem::default());
    publish(&mut s, 1000, 9, 50, true, false);
    let p = s.playlist();
    assert_eq!(p.entries.len(), 3);
    assert!(p.entries.iter().all(|e| (e.duration - 2.0).abs() < 0.05), "{:?}", p.entries);
    let seg = &s.files().files["/hls/radio-1.ts"];
    assert!(pes_of(seg).iter().all(|p| !p.0));
    // Audio PES gather several frames, at most hls_max_audio_delay apart.
    assert!(pes_of(seg).len() < 2000 * 44100 / 1024 / 1000 / 2);

    let mut s = Segmenter::new(&cfg(), "silent", Mem::default());
    publish(&mut s, 0, 7, 50, false, true);
    assert_eq!(s.playlist().entries.len(), 3);
    assert!(pes_of(&s.files().files["/hls/silent-1.ts"]).iter().all(|p| p.0));
}

#[test]
fn nested_naming_base_url_and_variants() {
    let c = Config {
        nested: true,
        base_url: "http://cdn/hls/".into(),
        naming: Naming::Timestamp,
        variants: vec![
            Variant { suffix: "_hi".into(), params: vec!["BANDWIDTH=2000000".into(), "RESOLUTION=1280x720".into()] },
            Variant { suffix: "_lo".into(), params: vec!["BANDWIDTH=500000".into()] },
        ],
        ..cfg()
    };
    let mut s = Segmenter::new(&c, "show_hi", Mem::default());
    publish(&mut s, 0, 5, 50, true, true);
    let files = &s.files().files;
    assert!(files.contains_key("/hls/show_hi/index.m3u8"));
    assert!(files.contains_key(&format!("/hls/show_hi/{}.ts", 2000 * 90)));
    assert_eq!(s.playlist().entries[1].uri, format!("http://cdn/hls/show_hi/{}.ts", 2000 * 90));
    let master = String::from_utf8(files["/hls/show.m3u8"].clone()).unwrap();
    assert_eq!(
        master,
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-STREAM-INF:BANDWIDTH=2000000,RESOLUTION=1280x720\nhttp://cdn/hls/show_hi/index.m3u8\n\
         #EXT-X-STREAM-INF:BANDWIDTH=500000\nhttp://cdn/hls/show_lo/index.m3u8\n"
    );
    // Nested without a base URL: segment URIs relative to the playlist's directory.
    let c = Config { nested: true, ..cfg() };
    let mut s = Segmenter::new(&c, "n", Mem::default());
    publish(&mut s, 0, 3, 50, true, true);
    assert_eq!(s.playlist().entries[0].uri, "0.ts");
}

#[test]
fn keys_encrypt_segments_that_decrypt_to_ts() {
    let c = Config { keys: true, fragments_per_key: 2, key_url: "https://keys/".into(), ..cfg() };
    let mut s = Segmenter::new(&c, "sec", Mem::default());
    publish(&mut s, 0, 9, 50, true, true);
    let files = &s.files().files;
    let text = String::from_utf8(files["/hls/sec.m3u8"].clone()).unwrap();
    assert!(text.contains("#EXT-X-KEY:METHOD=AES-128,URI=\"https://keys/sec-2.key\",IV=0x00000000000000000000000000000002"), "{text}");
    assert!(files.contains_key("/hls/sec-0.key") && files.contains_key("/hls/sec-2.key") && !files.contains_key("/hls/sec-1.key"));
    let key: [u8; 16] = files["/hls/sec-2.key"].clone().try_into().unwrap();
    let enc = &files["/hls/sec-3.ts"];
    assert_eq!(enc.len() % 16, 0);
    // Decrypt (CBC, IV = 2) and unpad: a TS segment.
    let aes = aes::Aes128::new(&key.into());
    let mut prev = 2u128.to_be_bytes();
    let mut plain = vec![];
    for block in enc.chunks(16) {
        let mut b: [u8; 16] = block.try_into().unwrap();
        aes.decrypt_block((&mut b).into());
        plain.extend(b.iter().zip(prev).map(|(x, p)| x ^ p));
        prev = block.try_into().unwrap();
    }
    let pad = *plain.last().unwrap() as usize;
    plain.truncate(plain.len() - pad);
    assert_eq!(plain.len() % 188, 0);
    assert_eq!(pes_of(&plain).iter().filter(|p| p.0).count(), 50);
}

#[test]
fn a_failed_write_is_never_listed() {
    let files = Mem { fail_create: true, ..Mem::default() };
    let mut s = Segmenter::new(&cfg(), "full", files);
    publish(&mut s, 0, 5, 50, true, true);
    assert!(s.playlist().entries.is_empty());
    let notices = s.take_notices();
    assert_eq!(notices.iter().filter(|n| n.contains("disk full")).count(), 1, "said once: {notices:?}");
    s.files.fail_create = false;
    publish(&mut s, 5000, 5, 50, true, true);
    assert!(s.take_notices().iter().any(|n| n.contains("works again")));
    let p = s.playlist();
    assert!(!p.entries.is_empty());
    assert!(p.entries[0].discont, "a gap is a discontinuity");
}

#[test]
fn a_full_disk_is_reported_once_until_it_has_room_again() {
    let mut s = Segmenter::new(&cfg(), "full", Mem::default());
    publish(&mut s, 0, 10, 50, true, true);
    let listed = s.playlist().entries.len();
    assert!(listed >= 3);
    s.take_notices();
    // Full for 60 s of segments: files are created, writes fail.
    s.files.fail_write = true;
    publish(&mut s, 10_000, 60, 50, true, true);
    let notices = s.take_notices();
    assert_eq!(notices.len(), 1, "one line for a minute of failing segments: {notices:?}");
    assert!(notices[0].contains("No space left on device") && notices[0].contains("the stream goes on"), "{notices:?}");
    assert!(s.playlist().entries.iter().all(|e| s.files.files.get(&format!("/hls/{}", e.uri)).is_some_and(|f| !f.is_empty())), "only complete segments listed");
    // Room again: one line, and segments are listed after a discontinuity.
    s.files.fail_write = false;
    publish(&mut s, 70_000, 5, 50, true, true);
    let notices = s.take_notices();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(notices[0].contains("works again"), "{notices:?}");
    let p = s.playlist();
    assert!(p.entries.iter().any(|e| e.discont) || p.discontinuity_sequence > 0, "the gap is a discontinuity: {:?}", p.entries);
}

#[test]
fn garbage_never_panics() {
    let mut s = Segmenter::new(&cfg(), "g", Mem::default());
    let mut seed = 7u64;
    for i in 0..20000u32 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let len = (seed % 64) as usize;
        let body: Vec<u8> = (0..len).map(|j| (seed >> (j % 8 * 8)) as u8).collect();
        let ts = (seed >> 40) as u32;
        if i % 2 == 0 {
            s.video(ts, &body, 0);
        } else {
            s.audio(ts, &body, 0);
        }
        if i == 100 {
            s.video(0, AVC_HEADER, 0);
            s.audio(0, AAC_HEADER, 0);
        }
    }
    s.finish();
}

#[test]
fn timestamps_wrap() {
    let mut c = Clock::default();
    assert_eq!(c.ms(u32::MAX - 10), u64::from(u32::MAX - 10));
    assert_eq!(c.ms(5), (1u64 << 32) + 5);
    assert_eq!(c.ms(u32::MAX - 2), u64::from(u32::MAX - 2), "late frame from before the wrap");
    assert_eq!(c.ms(50), (1u64 << 32) + 50);
}

#[test]
fn a_slightly_late_audio_frame_does_not_cut_an_audio_only_stream() {
    let mut s = Segmenter::new(&cfg(), "late", Mem::default());
    s.audio(0, AAC_HEADER, 0);
    s.audio(1000, &[0xaf, 1, 0x21], 0);
    s.audio(990, &[0xaf, 1, 0x21], 0);
    s.audio(1023, &[0xaf, 1, 0x21], 0);
    assert!(s.playlist().entries.is_empty(), "{:?}", s.playlist().entries);
}

#[test]
fn a_stream_starts_with_its_video() {
    // Audio before the first keyframe (an encoder's first audio frames come a frame or
    // so before its first picture) stays out of the first segment: it starts with video.
    let mut s = Segmenter::new(&cfg(), "cam", Mem::default());
    s.video(0, AVC_HEADER, 0);
    s.audio(0, AAC_HEADER, 0);
    s.audio(0, &[0xaf, 1, 0x21, 0x10, 0x04], 0);
    s.audio(23, &[0xaf, 1, 0x21, 0x10, 0x04], 0);
    for i in 0..60u32 {
        s.video(33 + i * 40, &video_frame(i % 50 == 0, 500), 0);
        s.audio(46 + i * 40, &[0xaf, 1, 0x21, 0x10, 0x04], 0);
    }
    let pes = pes_of(&s.files().files["/hls/cam-0.ts"]);
    assert!(pes[0].0, "the first PES is video");
    let first_audio = pes.iter().find(|p| !p.0).expect("audio").1;
    assert!(first_audio >= pes[0].1, "no audio before the first picture");
}

/// Boxes at one level of an MP4 file: (type, body).
fn mp4_boxes(mut b: &[u8]) -> Vec<([u8; 4], &[u8])> {
    let mut v = Vec::new();
    while b.len() >= 8 {
        let n = u32::from_be_bytes(b[..4].try_into().unwrap()) as usize;
        assert!(n >= 8 && n <= b.len());
        v.push((b[4..8].try_into().unwrap(), &b[8..n]));
        b = &b[n..];
    }
    assert!(b.is_empty(), "trailing bytes");
    v
}

#[test]
fn fmp4_segments_with_an_init_segment_and_a_new_one_when_the_tracks_change() {
    let c = Config { format: Format::Fmp4, ..cfg() };
    let mut s = Segmenter::new(&c, "cam", Mem::default());
    publish(&mut s, 0, 7, 50, true, true);
    let text = s.playlist().render();
    assert!(text.starts_with("#EXTM3U\n#EXT-X-VERSION:7\n"), "{text}");
    assert_eq!(text.matches("#EXT-X-MAP:URI=\"cam-init0.mp4\"").count(), 1, "{text}");
    assert!(text.contains("#EXTINF:2.000,\ncam-0.m4s\n"), "{text}");
    let files = &s.files().files;
    let init = &files["/hls/cam-init0.mp4"];
    let top: Vec<_> = mp4_boxes(init).iter().map(|b| b.0).collect();
    assert_eq!(top, [*b"ftyp", *b"moov"]);
    // A segment: fragments of moof + mdat; 2 s of video (50 frames) in all.
    let seg = &files["/hls/cam-0.m4s"];
    let boxes = mp4_boxes(seg);
    assert!(boxes.len() >= 2 && boxes.chunks(2).all(|p| p[0].0 == *b"moof" && p[1].0 == *b"mdat"));
    let video_bytes: usize = boxes.iter().filter(|b| b.0 == *b"mdat").map(|b| b.1.len()).sum();
    assert!(video_bytes >= 50 * 3004, "{video_bytes}");
    // A new AVC configuration: the next segment has a new init segment, after a
    // discontinuity; the playlist says both.
    let mut header = AVC_HEADER.to_vec();
    *header.last_mut().unwrap() = 4;
    s.video(7000, &header, 0);
    for i in 0..60u32 {
        s.video(7000 + i * 40, &video_frame(i % 50 == 0, 100), 0);
    }
    s.finish();
    let text = s.playlist().render();
    assert!(text.contains("#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"cam-init4.mp4\"\n"), "{text}");
    assert!(s.files().files.contains_key("/hls/cam-init4.mp4"));
    // hls_continuous reads it back with its maps.
    let back = Playlist::parse(&text).unwrap();
    assert_eq!(back.entries.last().unwrap().map.as_deref(), Some("cam-init4.mp4"));
    assert_eq!(back.entries[0].map.as_deref(), Some("cam-init0.mp4"));
}

#[test]
fn fmp4_hevc_from_enhanced_rtmp() {
    // An HEVCDecoderConfigurationRecord holding x265's SPS of a 1280x720 stream.
    let sps: &[u8] = &[
        0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x5d, 0xa0, 0x02,
        0x80, 0x80, 0x2d, 0x16, 0x59, 0x59, 0xa4, 0x93, 0x2b, 0xc0, 0x5a, 0x02, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x03,
        0x00, 0x3c, 0x10,
    ];
    let mut rec = vec![1, 1, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 93, 0xf0, 0, 0xfc, 0xfd, 0xf8, 0xf8, 0, 0, 0x0f, 1, 0x21, 0, 1];
    rec.extend((sps.len() as u16).to_be_bytes());
    rec.extend_from_slice(sps);
    let mut s = Segmenter::new(&Config { format: Format::Fmp4, ..cfg() }, "h", Mem::default());
    let tag = |frame_type: u8, packet_type: u8, body: &[u8]| {
        let mut t = vec![0x80 | frame_type << 4 | packet_type];
        t.extend_from_slice(b"hvc1");
        t.extend_from_slice(body);
        t
    };
    s.video(0, &tag(1, 0, &rec), 0);
    for i in 0..150u32 {
        let key = i % 50 == 0;
        // CodedFramesX (no composition time): one NAL unit, IDR or trailing picture.
        let nal: &[u8] = if key { &[0x26, 0x01, 0xaa] } else { &[0x02, 0x01, 0xbb] };
        let mut body = (nal.len() as u32).to_be_bytes().to_vec();
        body.extend_from_slice(nal);
        s.video(i * 40, &tag(if key { 1 } else { 2 }, 3, &body), 0);
    }
    s.finish();
    let init = &s.files().files["/hls/h-init0.mp4"];
    let at = init.windows(4).position(|w| w == b"hvc1").expect("an hvc1 sample entry");
    assert_eq!(&init[at + 4 + 24..at + 4 + 28], &[5, 0, 2, 0xd0], "1280x720 from the SPS");
    assert!(init.windows(4).any(|w| w == b"hvcC"));
    assert!(s.playlist().render().contains("h-2.m4s"));
}

#[test]
fn low_latency_parts_are_listed_and_make_up_their_segments() {
    let c = Config { format: Format::Fmp4, partial: 500, ..cfg() };
    let mut s = Segmenter::new(&c, "cam", Mem::default());
    publish(&mut s, 0, 7, 50, true, true);
    let text = s.playlist().render();
    assert!(text.contains("#EXT-X-PART-INF:PART-TARGET=0.500\n#EXT-X-SERVER-CONTROL:PART-HOLD-BACK=3.500\n"), "{text}");
    // Segment 2 (4 s to 6 s): parts of at least 0.5 s (cut at the frame after), adding up
    // to the segment, the first one independent (it starts with the keyframe).
    let parts: Vec<&str> = text.lines().filter(|l| l.contains("URI=\"cam-2.")).collect();
    assert_eq!(parts.len(), 4, "{text}");
    let total: f64 = parts.iter().map(|l| l["#EXT-X-PART:DURATION=".len()..].split(',').next().unwrap().parse::<f64>().unwrap()).sum();
    assert!((total - 2.0).abs() < 0.002, "{total}");
    assert!(parts[0].ends_with("URI=\"cam-2.0.m4s\",INDEPENDENT=YES") && parts[1..].iter().all(|l| !l.contains("INDEPENDENT")), "{parts:?}");
    assert!(text.contains("#EXTINF:2.000,\ncam-2.m4s\n#EXT-X-PART:DURATION=0.520,URI=\"cam-3.0.m4s\",INDEPENDENT=YES\n"), "the open segment's parts last: {text}");
    let files = &s.files().files;
    let joined: Vec<u8> = (0..4).flat_map(|n| files[&format!("/hls/cam-2.{n}.m4s")].clone()).collect();
    assert_eq!(&joined, &files["/hls/cam-2.m4s"], "a segment is its parts");
    // Parts are for the live edge: read back (hls_continuous), none are kept.
    assert!(Playlist::parse(&text).unwrap().entries.iter().all(|e| e.parts.is_empty()));
}

#[test]
fn segments_named_by_the_clock_differ_when_media_comes_faster_than_real_time() {
    let c = Config { naming: Naming::System, ..cfg() };
    let mut s = Segmenter::new(&c, "cam", Mem::default());
    s.video(0, AVC_HEADER, 0);
    // 6 s of media within one millisecond of wall clock.
    for i in 0..150u32 {
        s.video(i * 40, &video_frame(i % 50 == 0, 100), 1_795_512_355_000);
    }
    s.finish();
    let uris: Vec<&str> = s.playlist().entries.iter().map(|e| e.uri.as_str()).collect();
    assert_eq!(uris, ["cam-1795512355000.ts", "cam-1795512355001.ts", "cam-1795512355002.ts"]);
}
