//! A stream's DASH output (`dash on`): its segmenter (`crate::dash`), fed every frame.

use super::{Ask, Count, Cx, Output};
use crate::app::Level;
use crate::dash::{Config, Dash as Segmenter};
use crate::hls::Files;
use crate::media::Frame;

pub struct Dash {
    seg: Segmenter<Box<dyn Files>>,
}

impl Dash {
    pub fn new(cfg: &Config, stream: &str, video: Box<dyn Files>, audio: Box<dyn Files>, cx: &mut Cx) -> Dash {
        let seg = Segmenter::new(cfg, stream, video, audio);
        cx.asks.push(Ask::Log(Level::Info, format!("dash: \"{stream}\" to \"{}\"", seg.mpd_path())));
        Dash { seg }
    }

    fn notices(&mut self, cx: &mut Cx) {
        for n in self.seg.take_notices() {
            cx.asks.push(Ask::Log(Level::Err, format!("{n} (stream \"{}\")", self.seg.name())));
            cx.asks.push(Ask::Count(Count::HlsError));
        }
    }
}

impl Output for Dash {
    fn frame(&mut self, f: &Frame, cx: &mut Cx) {
        self.seg.frame(f, cx.now.wall_ms);
        self.notices(cx);
    }

    fn end(&mut self, cx: &mut Cx) {
        self.seg.finish(cx.now.wall_ms);
        self.notices(cx);
    }
}
