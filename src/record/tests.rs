use std::collections::HashMap;

use super::*;
use crate::rtmp::amf::{self, Value};

/// Tag bodies in, as a publisher sends them.
trait Feed {
    fn media(&mut self, kind: MediaKind, ts: u32, body: &Bytes, now: &Now);
}

impl<F: Files> Feed for Recorder<F> {
    fn media(&mut self, kind: MediaKind, ts: u32, body: &Bytes, now: &Now) {
        self.frame(&Frame::parse(kind, ts, body.clone()), now);
    }
}

/// Files in memory; writes past `fail_after` bytes (in all) fail like a full disk.
#[derive(Default)]
struct Mem {
    files: HashMap<String, Vec<u8>>,
    current: Option<String>,
    written: usize,
    fail_after: Option<usize>,
    locked: Vec<String>,
}

impl Files for Mem {
    fn open(&mut self, path: &str, append: bool, lock: bool) -> io::Result<u64> {
        let f = self.files.entry(path.to_owned()).or_default();
        if !append {
            f.clear();
        }
        if lock {
            self.locked.push(path.to_owned());
        }
        self.current = Some(path.to_owned());
        Ok(f.len() as u64)
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let f = &self.files[self.current.as_ref().unwrap()];
        buf.copy_from_slice(&f[offset as usize..offset as usize + buf.len()]);
        Ok(())
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let f = self.files.get_mut(self.current.as_ref().expect("open")).unwrap();
        let mut n = data.len();
        if let Some(limit) = self.fail_after {
            n = n.min(limit.saturating_sub(self.written));
        }
        let end = offset as usize + n;
        if f.len() < end {
            f.resize(end, 0);
        }
        f[offset as usize..end].copy_from_slice(&data[..n]);
        self.written += n;
        if n < data.len() {
            return Err(io::Error::other("No space left on device"));
        }
        Ok(())
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.files.get_mut(self.current.as_ref().unwrap()).unwrap().truncate(len as usize);
        Ok(())
    }
    fn close(&mut self) -> io::Result<()> {
        self.current = None;
        Ok(())
    }
}

fn cfg() -> Config {
    Config {
        id: String::new(),
        audio: true,
        video: true,
        keyframes: false,
        manual: false,
        path: "/rec".into(),
        suffix: ".flv".into(),
        unique: false,
        append: false,
        lock: false,
        max_size: 0,
        max_frames: 0,
        interval: None,
        notify: false,
    }
}

fn now(ms: u64) -> Now {
    Now { ms, unix: 1_700_000_000 + (ms / 1000) as i64, local: Tm::default() }
}

const AVC_HEADER: &[u8] = &[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f];
const AAC_HEADER: &[u8] = &[0xaf, 0, 0x12, 0x10];

fn video(key: bool) -> Bytes {
    Bytes::from(vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0, 0, 0, 0, 2, 0x65, 0x88])
}

fn audio() -> Bytes {
    Bytes::from_static(&[0xaf, 1, 0x21, 0x10])
}

/// A publisher's first seconds: metadata, headers, then 25 fps video (keyframe every
/// second) and audio every 23 ms, from stream time `t0`.
fn publish<F: Files>(r: &mut Recorder<F>, t0: u32, seconds: u32, wall0: u64) {
    let meta = amf::encode(&[Value::str("onMetaData"), Value::object(&[("width", Value::Number(320.0)), ("duration", Value::Number(99.0))])]);
    r.media(MediaKind::Data, t0, &Bytes::from(meta.to_vec()), &now(wall0));
    r.media(MediaKind::Video, t0, &Bytes::from_static(AVC_HEADER), &now(wall0));
    r.media(MediaKind::Audio, t0, &Bytes::from_static(AAC_HEADER), &now(wall0));
    let (mut v, mut a) = (0u32, 0u32);
    while v < seconds * 1000 {
        if a <= v {
            r.media(MediaKind::Audio, t0 + a, &audio(), &now(wall0 + a as u64));
            a += 23;
        } else {
            r.media(MediaKind::Video, t0 + v, &video(v % 1000 == 0), &now(wall0 + v as u64));
            v += 40;
        }
    }
}

#[derive(Debug)]
struct Tag {
    kind: u8,
    ts: u32,
    body: Vec<u8>,
}

/// Reads an FLV file back, checking every PreviousTagSize.
fn read(file: &[u8]) -> (u8, Vec<Tag>) {
    assert_eq!(&file[..3], b"FLV");
    assert_eq!(&file[5..13], &[0, 0, 0, 9, 0, 0, 0, 0]);
    let mut tags = vec![];
    let mut at = 13;
    while at < file.len() {
        let h: [u8; 11] = file[at..at + 11].try_into().unwrap();
        let (kind, len, ts) = flv::parse_tag_header(&h);
        let body = file[at + 11..at + 11 + len as usize].to_vec();
        let prev = u32::from_be_bytes(file[at + 11 + len as usize..at + 15 + len as usize].try_into().unwrap());
        assert_eq!(prev, 11 + len, "PreviousTagSize");
        tags.push(Tag { kind, ts, body });
        at += 15 + len as usize;
    }
    assert_eq!(at, file.len(), "ends on a complete tag");
    (file[4], tags)
}

fn meta_number(tag: &Tag, key: &str) -> f64 {
    let values = amf::Reader::new(&tag.body).read_all().unwrap();
    values[1].get(key).and_then(Value::as_f64).unwrap()
}

#[test]
fn a_recording_is_a_complete_flv() {
    let mut r = Recorder::new(cfg(), "cam", Mem::default());
    publish(&mut r, 5000, 3, 0);
    r.finish();
    assert_eq!(
        r.take_notices(),
        vec![Notice::Started { path: "/rec/cam.flv".into() }, Notice::Done { path: "/rec/cam.flv".into() }]
    );
    let file = &r.files().files["/rec/cam.flv"];
    let (flags, tags) = read(file);
    assert_eq!(flags, 5, "audio and video");
    assert_eq!(tags[0].kind, flv::SCRIPT);
    assert_eq!(meta_number(&tags[0], "width"), 320.0, "the publisher's fields are kept");
    assert_eq!(meta_number(&tags[0], "filesize"), file.len() as f64);
    let last = tags.last().unwrap().ts;
    assert_eq!(meta_number(&tags[0], "duration"), last as f64 / 1000.0);
    assert!(last >= 2900, "{last}");
    assert_eq!((tags[1].kind, &tags[1].body[..]), (flv::AUDIO, AAC_HEADER));
    assert_eq!((tags[2].kind, &tags[2].body[..]), (flv::VIDEO, AVC_HEADER));
    let first_video = tags.iter().find(|t| t.kind == flv::VIDEO && t.body[1] == 1).unwrap();
    assert_eq!(first_video.body[0], 0x17, "video starts on a keyframe");
    assert_eq!(tags[1].ts, 0, "timestamps start at 0");
    assert!(tags.windows(2).all(|w| w[0].ts <= w[1].ts), "and never go backwards");
}

#[test]
fn audio_video_and_keyframe_recorders() {
    let only = |audio, video, keyframes| {
        let mut r = Recorder::new(Config { audio, video, keyframes, ..cfg() }, "s", Mem::default());
        publish(&mut r, 0, 3, 0);
        r.finish();
        let (flags, tags) = read(&r.files().files["/rec/s.flv"]);
        (flags, tags)
    };
    let (flags, tags) = only(true, false, false);
    assert_eq!(flags, 4);
    assert!(tags.iter().all(|t| t.kind != flv::VIDEO) && tags.iter().filter(|t| t.kind == flv::AUDIO).count() > 100);
    let (flags, tags) = only(false, true, false);
    assert_eq!(flags, 1);
    assert!(tags.iter().all(|t| t.kind != flv::AUDIO) && tags.iter().filter(|t| t.kind == flv::VIDEO).count() == 76);
    let (_, tags) = only(false, false, true);
    let frames: Vec<&Tag> = tags.iter().filter(|t| t.kind == flv::VIDEO && t.body[1] == 1).collect();
    assert_eq!(frames.len(), 3, "one keyframe a second");
    assert!(frames.iter().all(|t| t.body[0] == 0x17));
}

#[test]
fn interval_and_size_limits_split_at_keyframes() {
    let mut r = Recorder::new(Config { unique: true, interval: Some(1500), ..cfg() }, "s", Mem::default());
    publish(&mut r, 0, 5, 0);
    r.finish();
    let notices = r.take_notices();
    let done: Vec<&String> = notices.iter().filter_map(|n| if let Notice::Done { path } = n { Some(path) } else { None }).collect();
    assert_eq!(done.len(), 3, "{notices:?}");
    assert_eq!(done[0], "/rec/s-1700000000.flv");
    for path in &done {
        let (_, tags) = read(&r.files().files[*path]);
        assert_eq!(tags[0].kind, flv::SCRIPT);
        assert_eq!(&tags[2].body[..], AVC_HEADER, "{path}: codec headers at the start");
        let first = tags.iter().find(|t| t.kind == flv::VIDEO && t.body[1] == 1).unwrap();
        assert_eq!(first.body[0], 0x17, "{path}: starts on a keyframe");
        assert_eq!(tags[1].ts, 0, "{path}: starts at 0");
    }
    let mut r = Recorder::new(Config { unique: true, max_frames: 60, ..cfg() }, "s", Mem::default());
    publish(&mut r, 0, 5, 0);
    r.finish();
    let done = r.take_notices().iter().filter(|n| matches!(n, Notice::Done { .. })).count();
    assert!(done >= 2, "{done}");
}

#[test]
fn append_continues_the_timeline() {
    let mut r = Recorder::new(Config { append: true, ..cfg() }, "s", Mem::default());
    publish(&mut r, 0, 2, 0);
    r.finish();
    let first_len = r.files().files["/rec/s.flv"].len();
    let mut r = Recorder::new(Config { append: true, ..cfg() }, "s", r.files);
    publish(&mut r, 777_000, 2, 10_000);
    r.finish();
    let file = &r.files().files["/rec/s.flv"];
    assert!(file.len() > first_len);
    let (_, tags) = read(file);
    assert!(tags.windows(2).all(|w| w[0].ts <= w[1].ts), "timestamps go on from the first recording");
    assert!(tags.last().unwrap().ts >= 3800);
    assert_eq!(tags.iter().filter(|t| t.kind == flv::SCRIPT).count(), 1);
    assert_eq!(meta_number(&tags[0], "filesize"), file.len() as f64, "the first metadata is patched");
}

#[test]
fn a_failed_write_cuts_back_to_the_last_complete_tag_and_stops() {
    let mem = Mem { fail_after: Some(3000), ..Mem::default() };
    let mut r = Recorder::new(Config { lock: true, ..cfg() }, "s", mem);
    publish(&mut r, 0, 3, 0);
    r.finish();
    let notices = r.take_notices();
    let failed: Vec<&Notice> = notices.iter().filter(|n| matches!(n, Notice::Failed { .. })).collect();
    assert_eq!(failed.len(), 1, "said once: {notices:?}");
    assert!(!notices.iter().any(|n| matches!(n, Notice::Done { .. })));
    let file = &r.files().files["/rec/s.flv"];
    assert!(file.len() <= 3000 && file.len() > 1000, "{}", file.len());
    read(file);
    assert_eq!(r.files().locked, vec!["/rec/s.flv".to_owned()]);
}

#[test]
fn after_a_failure_the_recording_resumes_later_into_the_same_file() {
    let mem = Mem { fail_after: Some(3000), ..Mem::default() };
    let mut r = Recorder::new(cfg(), "s", mem);
    publish(&mut r, 0, 3, 0);
    let failed = |n: &Vec<Notice>| n.iter().filter(|n| matches!(n, Notice::Failed { .. })).count();
    assert_eq!(failed(&r.take_notices()), 1);
    let cut = r.files().files["/rec/s.flv"].len();
    // Space comes back: nothing for 10 s after the failure, then the file is continued.
    r.files_mut().fail_after = None;
    let keyframe = |r: &mut Recorder<Mem>, ts: u32| r.media(MediaKind::Video, ts, &video(true), &now(ts as u64));
    keyframe(&mut r, 5000);
    keyframe(&mut r, 9000);
    assert!(r.current().is_none(), "still waiting");
    keyframe(&mut r, 16_000);
    assert_eq!(r.current(), Some("/rec/s.flv"));
    let notices = r.take_notices();
    assert_eq!(failed(&notices), 0);
    assert!(notices.iter().any(|n| matches!(n, Notice::Started { .. })));
    for i in 1..50 {
        r.media(MediaKind::Video, 16_000 + i * 40, &video(false), &now(16_000 + i as u64 * 40));
    }
    r.finish();
    let file = &r.files().files["/rec/s.flv"];
    assert!(file.len() > cut + 1000, "appended: {} then {}", cut, file.len());
    let (_, tags) = read(file);
    let ts: Vec<u32> = tags.iter().filter(|t| t.kind == flv::VIDEO).map(|t| t.ts).collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "one timeline: {ts:?}");
}

#[test]
fn repeated_failures_are_reported_once_per_try_and_backed_off() {
    let mem = Mem { fail_after: Some(3000), ..Mem::default() };
    let mut r = Recorder::new(Config { unique: true, ..cfg() }, "s", mem);
    publish(&mut r, 0, 2, 0);
    // The disk stays full for ten minutes of keyframes every second: tries 10, 20, 40
    // then 60 s apart.
    for s in 2..600u32 {
        r.media(MediaKind::Video, s * 1000, &video(true), &now(s as u64 * 1000));
    }
    let failed = r.take_notices().iter().filter(|n| matches!(n, Notice::Failed { .. })).count();
    assert!((10..=14).contains(&failed), "{failed} failures reported in 10 minutes");
}

#[test]
fn manual_recorders_wait_for_start() {
    let mut r = Recorder::new(Config { manual: true, ..cfg() }, "s", Mem::default());
    publish(&mut r, 0, 1, 0);
    assert!(r.files().files.is_empty());
    assert_eq!(r.start(&now(1000)), Some("/rec/s.flv".into()));
    publish(&mut r, 1000, 2, 1000);
    assert_eq!(r.stop(), Some("/rec/s.flv".into()));
    let (_, tags) = read(&r.files().files["/rec/s.flv"]);
    assert!(tags.iter().filter(|t| t.kind == flv::VIDEO).count() > 40);
}

#[test]
fn names() {
    let t = Tm { year: 2026, month: 11, day: 4, hour: 9, minute: 5, second: 7, weekday: 3, yearday: 307, gmtoff: 0 };
    let n = Now { ms: 0, unix: 1_790_000_000, local: t };
    assert_eq!(file_path(&cfg(), "a b/..", &n), "/rec/a%20b%2F...flv");
    assert_eq!(file_path(&Config { unique: true, ..cfg() }, "k", &n), "/rec/k-1790000000.flv");
    let c = Config { suffix: "-%Y%m%d-%H%M%S.flv".into(), ..cfg() };
    assert_eq!(file_path(&c, "k", &n), "/rec/k-20261104-090507.flv");
    assert_eq!(strftime("%F %T %j %a %b %s %% %q", &t, 5), "2026-11-04 09:05:07 308 Wed Nov 5 % %q");
}

#[test]
fn random_media_never_panics() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..200 {
        let c = Config { interval: (round % 3 == 0).then_some(300), max_frames: round % 5, append: round % 2 == 0, ..cfg() };
        let mut r = Recorder::new(c, "s", Mem { fail_after: (round % 7 == 0).then_some(5000), ..Mem::default() });
        for i in 0..300u64 {
            let len = (next() % 40) as usize;
            let body: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let kind = [MediaKind::Audio, MediaKind::Video, MediaKind::Data][(next() % 3) as usize];
            r.media(kind, next() as u32 % 100_000, &Bytes::from(body), &now(i * 37));
        }
        r.finish();
        for (_, f) in r.files().files.iter() {
            if !f.is_empty() {
                read(f);
            }
        }
    }
}

#[test]
fn an_audio_only_stream_is_recorded_with_record_all() {
    let mut r = Recorder::new(cfg(), "radio", Mem::default());
    r.media(MediaKind::Audio, 0, &Bytes::from_static(AAC_HEADER), &now(0));
    for i in 0..100u32 {
        r.media(MediaKind::Audio, i * 23, &audio(), &now(i as u64 * 23));
    }
    r.finish();
    let (flags, tags) = read(&r.files().files["/rec/radio.flv"]);
    assert_eq!(flags, 4);
    assert_eq!(tags.iter().filter(|t| t.kind == flv::AUDIO).count(), 101);
}

#[test]
fn an_end_of_sequence_tag_does_not_start_a_file() {
    let mut r = Recorder::new(Config { unique: true, interval: Some(1000), ..cfg() }, "s", Mem::default());
    publish(&mut r, 0, 2, 0);
    // AVC end of sequence: keyframe type, packet type 2.
    r.media(MediaKind::Video, 5000, &Bytes::from_static(&[0x17, 2, 0, 0, 0]), &now(5000));
    r.finish();
    let started = r.take_notices().iter().filter(|n| matches!(n, Notice::Started { .. })).count();
    assert_eq!(started, 2, "one file per interval, none for the end of the stream");
}

#[test]
fn a_codec_header_alone_moves_the_clock_too() {
    // (found by fuzzing) a sequence header written late, then audio with an older
    // timestamp: the audio must not go before the header.
    let mut r = Recorder::new(cfg(), "s", Mem::default());
    r.media(MediaKind::Audio, 18_109, &Bytes::new(), &now(40));
    r.media(MediaKind::Video, 66_577, &Bytes::from_static(&[0x57, 0, 0x0a, 0, 0xa9]), &now(80));
    r.media(MediaKind::Video, 302_855, &Bytes::new(), &now(120));
    r.media(MediaKind::Audio, 0, &Bytes::new(), &now(160));
    r.finish();
    let (_, tags) = read(&r.files().files["/rec/s.flv"]);
    assert!(tags.windows(2).all(|w| w[0].ts <= w[1].ts), "{:?}", tags.iter().map(|t| t.ts).collect::<Vec<_>>());
}
