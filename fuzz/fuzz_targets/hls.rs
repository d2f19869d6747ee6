//! The HLS segmenter fed arbitrary audio/video tag bodies and timestamps, under a
//! configuration picked by the input (MPEG-TS or fMP4, with or without low-latency
//! parts), and the DASH segmenter beside it when the input asks: they may skip what they
//! cannot use, never panic, and the playlist always parses back.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ngx_rtmp_rs::hls::playlist::Playlist;
use ngx_rtmp_rs::hls::{Config, Files, Format, Naming, Segmenter, Slicing};
use ngx_rtmp_rs::media::{Frame, MediaKind};
use bytes::Bytes;
use std::io;

#[derive(Default)]
struct Sink {
    playlist: String,
    open: bool,
}

impl Files for Sink {
    fn create(&mut self, _: &str) -> io::Result<()> {
        self.open = true;
        Ok(())
    }
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        assert!(self.open, "append to a closed segment");
        assert!(data.len() <= 64 << 20, "unbounded write");
        Ok(())
    }
    fn close(&mut self) -> io::Result<()> {
        self.open = false;
        Ok(())
    }
    fn replace(&mut self, path: &str, data: &[u8]) -> io::Result<()> {
        if path.ends_with(".m4s") {
            assert!(data.len() <= 64 << 20, "unbounded part");
        }
        if path.ends_with("/f.m3u8") {
            self.playlist = String::from_utf8(data.to_vec()).expect("utf-8 playlist");
        }
        Ok(())
    }
    fn touch(&mut self, _: &str) {}
    fn mkdirs(&mut self, _: &str) -> io::Result<()> {
        Ok(())
    }
    fn read(&mut self, _: &str) -> Option<String> {
        None
    }
    fn random(&mut self, buf: &mut [u8]) {
        buf.fill(7);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    // (A second byte: fMP4, and low-latency parts of 100-400 ms.)
    let Some((&more, mut rest)) = rest.split_first() else { return };
    let fmp4 = more & 1 != 0;
    let cfg = Config {
        format: if fmp4 { Format::Fmp4 } else { Format::MpegTs },
        partial: if fmp4 && more & 2 != 0 { 100 + u64::from(more >> 2 & 3) * 100 } else { 0 },
        path: "/hls".into(),
        fragment: 100 + u64::from(flags & 7) * 300,
        max_fragment: 3000,
        playlist_length: 2000,
        keys: flags & 8 != 0 && !fmp4,
        fragments_per_key: u64::from(flags >> 6),
        event: flags & 16 != 0,
        naming: if flags & 32 != 0 { Naming::Timestamp } else { Naming::Sequential },
        slicing: if flags & 64 != 0 { Slicing::Aligned } else { Slicing::Plain },
        audio_buffer_size: 4096,
        ..Config::default()
    };
    let mut s = Segmenter::new(&cfg, "f", Sink::default());
    let dash_cfg = ngx_rtmp_rs::dash::Config { path: "/dash".into(), fragment: cfg.fragment, playlist_length: 1000, nested: more & 32 != 0, cleanup: true };
    let mut dash = (more & 16 != 0).then(|| ngx_rtmp_rs::dash::Dash::new(&dash_cfg, "f", Sink::default(), Sink::default()));
    while rest.len() >= 7 {
        let kind = rest[0];
        let ts = u32::from_le_bytes([rest[1], rest[2], rest[3], rest[4]]);
        let len = (usize::from(rest[5]) | usize::from(rest[6]) << 8).min(rest.len() - 7);
        let body = &rest[7..7 + len];
        rest = &rest[7 + len..];
        let kind = if kind & 1 == 0 { MediaKind::Video } else { MediaKind::Audio };
        let frame = Frame::parse(kind, ts, Bytes::copy_from_slice(body));
        s.frame(&frame, 0);
        let _ = s.take_notices();
        if let Some(d) = &mut dash {
            d.frame(&frame, 0);
            let _ = d.take_notices();
        }
    }
    s.finish();
    if let Some(d) = &mut dash {
        d.finish(0);
    }
    if !s.files().playlist.is_empty() {
        assert!(Playlist::parse(&s.files().playlist).is_some(), "our playlist parses");
    }
});
