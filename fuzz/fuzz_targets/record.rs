//! A recorder fed arbitrary audio, video and metadata bodies and timestamps, under a
//! configuration picked by the input: never a panic, and every file it leaves is a chain
//! of whole FLV tags whose timestamps never go back.
#![no_main]
use std::collections::HashMap;
use std::io;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use ngx_rtmp_rs::record::{flv, Config, Files, Now, Recorder};
use ngx_rtmp_rs::media::{Frame, MediaKind};

#[derive(Default)]
struct Mem {
    files: HashMap<String, Vec<u8>>,
    current: String,
    budget: usize,
}

impl Files for Mem {
    fn open(&mut self, path: &str, append: bool, _lock: bool) -> io::Result<u64> {
        let f = self.files.entry(path.to_owned()).or_default();
        if !append {
            f.clear();
        }
        self.current = path.to_owned();
        Ok(f.len() as u64)
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let f = &self.files[&self.current];
        let end = offset as usize + buf.len();
        assert!(end <= f.len(), "read past the end");
        buf.copy_from_slice(&f[offset as usize..end]);
        Ok(())
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let f = self.files.get_mut(&self.current).expect("open");
        let n = data.len().min(self.budget);
        self.budget -= n;
        let end = offset as usize + n;
        if f.len() < end {
            f.resize(end, 0);
        }
        f[offset as usize..end].copy_from_slice(&data[..n]);
        if n < data.len() {
            return Err(io::Error::other("full"));
        }
        Ok(())
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.files.get_mut(&self.current).expect("open").truncate(len as usize);
        Ok(())
    }
    fn close(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn check(file: &[u8]) {
    if file.is_empty() {
        return;
    }
    assert_eq!(&file[..3], b"FLV");
    let (mut at, mut last) = (13usize, 0u32);
    while at < file.len() {
        let h: [u8; 11] = file[at..at + 11].try_into().expect("a whole tag header");
        let (_, len, ts) = flv::parse_tag_header(&h);
        let end = at + 15 + len as usize;
        assert!(end <= file.len(), "a whole tag");
        assert_eq!(u32::from_be_bytes(file[end - 4..end].try_into().unwrap()), 11 + len);
        assert!(ts >= last, "timestamps never go back: {ts} after {last} at {at} of {}", file.len());
        (at, last) = (end, ts);
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let c = data[0];
    let cfg = Config {
        id: String::new(),
        audio: c & 1 != 0,
        video: c & 2 != 0,
        keyframes: c & 4 != 0,
        manual: false,
        path: "/r".into(),
        suffix: ".flv".into(),
        unique: c & 8 != 0,
        append: c & 16 != 0,
        lock: false,
        max_size: if c & 32 != 0 { 2000 } else { 0 },
        max_frames: (data[1] % 8) as u64,
        interval: (c & 64 != 0).then_some(500),
        notify: false,
    };
    let mem = Mem { budget: if c & 128 != 0 { data[2] as usize * 64 } else { usize::MAX }, ..Mem::default() };
    let mut r = Recorder::new(cfg, "s", mem);
    let mut rest = &data[3..];
    let mut clock = 0u64;
    while rest.len() >= 4 {
        let kind = [MediaKind::Audio, MediaKind::Video, MediaKind::Data][(rest[0] % 3) as usize];
        let ts = u16::from_be_bytes([rest[1], rest[2]]) as u32 * 7;
        let len = (rest[3] as usize % 48).min(rest.len() - 4);
        let body = Bytes::copy_from_slice(&rest[4..4 + len]);
        clock += 40;
        r.frame(&Frame::parse(kind, ts, body), &Now { ms: clock, unix: clock as i64 / 1000, ..Now::default() });
        rest = &rest[4 + len..];
    }
    r.finish();
    for f in r.files().files.values() {
        check(f);
    }
});
