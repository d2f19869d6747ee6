//! A stream's HLS output: its segmenter (`crate::hls`), fed every frame.

use super::{Ask, Count, Cx, Output};
use crate::app::Level;
use crate::hls::{Config, Files, Segmenter};
use crate::media::{Frame, MediaKind};

pub struct Hls {
    seg: Segmenter<Box<dyn Files>>,
}

impl Hls {
    pub fn new(cfg: &Config, stream: &str, files: Box<dyn Files>, cx: &mut Cx) -> Hls {
        let seg = Segmenter::new(cfg, stream, files);
        cx.asks.push(Ask::Log(Level::Info, format!("hls: \"{stream}\" to \"{}\"", seg.playlist_path())));
        let mut h = Hls { seg };
        h.notices(cx);
        h
    }

    fn notices(&mut self, cx: &mut Cx) {
        for n in self.seg.take_notices() {
            cx.asks.push(Ask::Log(Level::Err, format!("{n} (stream \"{}\")", self.seg.name())));
            cx.asks.push(Ask::Count(Count::HlsError));
        }
    }

    /// Counts the segments completed since `before`.
    fn count(&self, before: u64, cx: &mut Cx) {
        for _ in before..self.seg.segments() {
            cx.asks.push(Ask::Count(Count::HlsSegment));
        }
    }
}

impl Output for Hls {
    fn frame(&mut self, f: &Frame, cx: &mut Cx) {
        let was_settled = self.seg.settled();
        let before = self.seg.segments();
        self.seg.frame(f, cx.now.wall_ms);
        self.count(before, cx);
        self.notices(cx);
        if !was_settled && self.seg.settled() {
            // Batched reading may start now.
            cx.asks.push(Ask::Repace);
        }
        if f.kind == MediaKind::Video && self.seg.keyframe_due() {
            // (The segment ends at the next keyframe: a WHIP publisher sends one when asked.)
            cx.asks.push(Ask::Keyframe);
        }
    }

    fn end(&mut self, cx: &mut Cx) {
        let before = self.seg.segments();
        self.seg.finish();
        self.count(before, cx);
        self.notices(cx);
    }

    fn settled(&self) -> bool {
        self.seg.settled()
    }

    fn fragment_ms(&self) -> Option<u64> {
        Some(self.seg.fragment_ms())
    }

    fn measured(&self) -> Option<crate::hls::Measured> {
        Some(self.seg.measured())
    }

    fn date_anchor(&self) -> Option<(i64, u64)> {
        self.seg.date_anchor()
    }

    fn anchor_dates(&mut self, anchor: (i64, u64)) {
        self.seg.anchor_dates(anchor);
    }
}
