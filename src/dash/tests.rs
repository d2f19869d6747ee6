use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::rc::Rc;

use super::*;

/// Files in memory, shared by the two tracks' handles; writes fail on demand.
#[derive(Clone, Default)]
struct Mem {
    fs: Rc<RefCell<HashMap<String, Vec<u8>>>>,
    full: Rc<RefCell<bool>>,
    open: Option<String>,
}

impl Files for Mem {
    fn create(&mut self, path: &str) -> io::Result<()> {
        self.fs.borrow_mut().insert(path.into(), vec![]);
        self.open = Some(path.into());
        Ok(())
    }
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        if *self.full.borrow() {
            return Err(io::Error::other("No space left on device"));
        }
        let p = self.open.clone().ok_or_else(|| io::Error::other("closed"))?;
        self.fs.borrow_mut().get_mut(&p).unwrap().extend_from_slice(data);
        Ok(())
    }
    fn close(&mut self) -> io::Result<()> {
        self.open = None;
        Ok(())
    }
    fn replace(&mut self, path: &str, data: &[u8]) -> io::Result<()> {
        if *self.full.borrow() {
            return Err(io::Error::other("No space left on device"));
        }
        self.fs.borrow_mut().insert(path.into(), data.to_vec());
        Ok(())
    }
    fn touch(&mut self, _: &str) {}
    fn mkdirs(&mut self, _: &str) -> io::Result<()> {
        Ok(())
    }
    fn read(&mut self, path: &str) -> Option<String> {
        self.fs.borrow().get(path).map(|b| String::from_utf8_lossy(b).into_owned())
    }
    fn random(&mut self, _: &mut [u8]) {}
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

fn feed(d: &mut Dash<Mem>, kind: MediaKind, ts: u32, body: &[u8], now: i64) {
    d.frame(&Frame::parse(kind, ts, bytes::Bytes::copy_from_slice(body)), now);
}

/// `secs` of 25 fps video (a keyframe every `gop` frames) and 44.1 kHz AAC from `start` ms.
fn publish(d: &mut Dash<Mem>, start: u32, secs: u32, gop: u32, video: bool) {
    let wall = 1_795_512_355_000i64;
    if video {
        feed(d, MediaKind::Video, start, AVC_HEADER, wall);
    }
    feed(d, MediaKind::Audio, start, AAC_HEADER, wall);
    let mut a = 0u32;
    for i in 0..secs * 25 {
        let t = i * 40;
        while a * 1024 * 1000 / 44100 <= t {
            feed(d, MediaKind::Audio, start + a * 1024 * 1000 / 44100, &[0xaf, 1, 0x21, 0x10, 0x04], wall + i64::from(t));
            a += 1;
        }
        if video {
            feed(d, MediaKind::Video, start + t, &video_frame(i % gop == 0, 3000), wall + i64::from(t));
        }
    }
}

fn new(cfg: &Config) -> (Dash<Mem>, Mem) {
    let m = Mem::default();
    (Dash::new(cfg, "cam", m.clone(), m.clone()), m)
}

fn attr(text: &str, name: &str) -> Vec<u64> {
    text.split(&format!(" {name}=\"")).skip(1).map(|s| s[..s.find('"').unwrap()].parse().unwrap()).collect()
}

#[test]
fn fragments_per_track_cut_at_keyframes_and_listed_in_the_mpd() {
    let cfg = Config { path: "/dash/".into(), fragment: 2000, playlist_length: 6000, ..Config::default() };
    let (mut d, m) = new(&cfg);
    publish(&mut d, 1000, 11, 25, true);
    let mpd = m.fs.borrow()["/dash/cam.mpd"].clone();
    let mpd = String::from_utf8(mpd).unwrap();
    assert!(mpd.contains("type=\"dynamic\""), "{mpd}");
    assert!(mpd.contains("codecs=\"avc1.64001f\"") && mpd.contains("codecs=\"mp4a.40.2\""), "{mpd}");
    // (1795512355000: when the first fragment began, the publication's mark in the names.)
    assert!(mpd.contains("media=\"cam-1795512355000-$Time$.m4v\"") && mpd.contains("initialization=\"cam-1795512355000-init.m4a\""), "{mpd}");
    // Two-second fragments (the keyframes are a second apart), the last 6 s and one more.
    let video = &mpd[..mpd.find("contentType=\"audio\"").unwrap()];
    let (t, dur) = (attr(video, "t"), attr(video, "d"));
    assert_eq!(dur, vec![180_000; 4], "{mpd}");
    for w in t.windows(2) {
        assert_eq!(w[1] - w[0], 180_000);
    }
    assert_eq!(attr(video, "presentationTimeOffset"), vec![90_000]);
    // Every listed fragment exists, starts with moof, and the init segments are there.
    let fs = m.fs.borrow();
    for t in &t {
        let f = &fs[&format!("/dash/cam-1795512355000-{t}.m4v")];
        assert_eq!(&f[4..8], b"moof");
    }
    let audio = &mpd[mpd.find("contentType=\"audio\"").unwrap()..];
    let at = attr(audio, "t");
    let ad = attr(audio, "d");
    assert_eq!(at.len(), 4);
    for (w, d) in at.windows(2).zip(&ad) {
        assert_eq!(w[0] + d, w[1], "audio fragments follow each other: {mpd}");
    }
    for t in &at {
        assert!(fs.contains_key(&format!("/dash/cam-1795512355000-{t}.m4a")));
    }
    assert_eq!(&fs["/dash/cam-1795512355000-init.m4v"][4..8], b"ftyp");
    assert_eq!(&fs["/dash/cam-1795512355000-init.m4a"][4..8], b"ftyp");
    assert!(d.fragments() >= 5);
}

#[test]
fn nested_audio_only_and_the_end_lists_the_last_fragment() {
    let cfg = Config { path: "/d".into(), fragment: 3000, nested: true, ..Config::default() };
    let (mut d, m) = new(&cfg);
    publish(&mut d, 0, 7, 25, false);
    d.finish(0);
    let fs = m.fs.borrow();
    let mpd = String::from_utf8(fs["/d/cam/index.mpd"].clone()).unwrap();
    assert!(!mpd.contains("contentType=\"video\""), "{mpd}");
    assert!(mpd.contains("media=\"1795512355000-$Time$.m4a\"") && fs.contains_key("/d/cam/1795512355000-init.m4a"), "{mpd}");
    let total: u64 = attr(&mpd, "d").iter().sum();
    // 7 s of audio at 44.1 kHz (to within two frames).
    assert!(total.abs_diff(7 * 44_100) <= 2048, "{total}: {mpd}");
}

#[test]
fn a_full_disk_is_said_once_and_nothing_half_written_is_listed() {
    let cfg = Config { path: "/dash".into(), fragment: 1000, ..Config::default() };
    let (mut d, m) = new(&cfg);
    publish(&mut d, 0, 3, 25, true);
    let before = String::from_utf8(m.fs.borrow()["/dash/cam.mpd"].clone()).unwrap();
    *m.full.borrow_mut() = true;
    publish(&mut d, 3000, 3, 25, true);
    let notices = d.take_notices();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(notices[0].contains("No space left"), "{notices:?}");
    assert_eq!(String::from_utf8(m.fs.borrow()["/dash/cam.mpd"].clone()).unwrap(), before);
    *m.full.borrow_mut() = false;
    publish(&mut d, 6000, 3, 25, true);
    let after = String::from_utf8(m.fs.borrow()["/dash/cam.mpd"].clone()).unwrap();
    let t = attr(&after[..after.find("contentType=\"audio\"").unwrap()], "t");
    assert!(*t.last().unwrap() >= 7000 * 90, "{after}");
}

#[test]
fn hevc_codec_names() {
    // x265's record: Main profile, compat flags 0x60000000, level 93 (3.1), progressive etc.
    let rec = [1u8, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 93, 0xf0];
    assert_eq!(mpd::video_codec(VideoCodec::Hevc, &rec), "hvc1.1.6.L93.90");
    assert_eq!(mpd::video_codec(VideoCodec::Avc, &[1, 0x42, 0xc0, 0x1e]), "avc1.42c01e");
}

#[test]
fn garbage_never_panics() {
    let (mut d, _) = new(&Config { path: "/x".into(), ..Config::default() });
    let mut seed = 7u32;
    for i in 0..5000u32 {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let len = (seed >> 8) as usize % 64;
        let body: Vec<u8> = (0..len).map(|k| (seed >> (k % 24)) as u8).collect();
        let kind = if seed & 1 == 0 { MediaKind::Video } else { MediaKind::Audio };
        feed(&mut d, kind, i.wrapping_mul(seed % 97), &body, 0);
    }
    d.finish(0);
}
