//! What a live stream feeds besides its RTMP players: one [`Output`] per HLS or DASH
//! segmenter or recorder, made when the stream is published (`start`) and ended with it.
//! An output gets every frame (but a stream's second audio track, which is for Enhanced RTMP
//! players only) and asks for what it needs done through [`Cx`]: log lines, a status to
//! the publisher, a callback, a keyframe, a new reading pace.
//!
//! Adding an output: a file here with a type implementing [`Output`], and a line in
//! [`start`].

mod dash;
mod hls;
mod record;

use super::{Level, Now, Storage};
use crate::conf::resolved::AppRun;
use crate::media::Frame;
use crate::notify::{Method, Url};

/// What an output asks the stream's publisher or the worker to do.
pub enum Ask {
    /// A line for the error log (about the stream's publisher).
    Log(Level, String),
    /// `onStatus` to the publisher (`record_notify`).
    Status { level: &'static str, code: &'static str, description: String },
    /// `on_record_done` for a completed file.
    RecordDone { url: Url, method: Method, recorder: String, name: String, path: String, args: String },
    /// `exec_record_done` for a completed file.
    ExecRecordDone { commands: std::sync::Arc<[crate::exec::Command]>, recorder: String, name: String, path: String },
    /// The stream's next keyframe is wanted now (a WHIP publisher can be asked for one).
    Keyframe,
    /// Whether the publisher's input may be read in batches changed (`merge_reads`).
    Repace,
    /// Something `/metrics` counts happened.
    Count(Count),
}

/// What outputs count for monitoring (`crate::stat::Health`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Count {
    HlsSegment,
    HlsError,
    RecordFile,
    RecordError,
}

/// What an output's calls get: the time, and where to put what it asks for.
pub struct Cx<'a> {
    pub now: &'a Now,
    pub asks: &'a mut Vec<Ask>,
}

/// A recorder, as `/control/record` sees it.
pub trait Recording {
    fn id(&self) -> &str;
    /// Starts a file (`record manual`); its path, if one was opened.
    fn start(&mut self, cx: &mut Cx) -> Option<String>;
    /// Stops the file being written; its path, if there was one.
    fn stop(&mut self, cx: &mut Cx) -> Option<String>;
}

pub trait Output {
    /// A frame of the stream.
    fn frame(&mut self, f: &Frame, cx: &mut Cx);
    /// The stream ended (its publisher left).
    fn end(&mut self, cx: &mut Cx);
    /// Whether the publisher's input may be read in batches (HLS: once its playlist
    /// lists three segments, see `pace`).
    fn settled(&self) -> bool {
        true
    }
    /// Whether it is writing a recording file now (`rtmp_recordings`).
    fn recording_now(&self) -> bool {
        false
    }
    /// HLS's fragment length, which bounds how long input may wait (`merge_reads auto`).
    fn fragment_ms(&self) -> Option<u64> {
        None
    }
    fn recording(&mut self) -> Option<&mut dyn Recording> {
        None
    }
    /// HLS: what its segments measured (a ladder's master playlist says it).
    fn measured(&self) -> Option<crate::hls::Measured> {
        None
    }
    /// HLS: how its segments are dated (wall clock ms, media time), and dating them as
    /// another stream's (a ladder's renditions as their source).
    fn date_anchor(&self) -> Option<(i64, u64)> {
        None
    }
    fn anchor_dates(&mut self, _anchor: (i64, u64)) {}
}

/// How a stream's HLS output is named and cut.
pub struct HlsAs<'a> {
    /// The playlist's name (a ladder's source: `NAME_src`, its master taking `NAME`).
    pub name: &'a str,
    /// A stream of a transcoding ladder: cut on the fragment grid, numbered by it.
    pub ladder: bool,
}

/// The outputs of a stream of application `run` that starts now: `stream` is its name,
/// `name` and `args` what the publisher asked for (for `on_record_done`).
pub fn start(run: &AppRun, storage: &mut dyn Storage, stream: &str, hls_as: HlsAs, name: &str, args: &str, cx: &mut Cx) -> Vec<Box<dyn Output>> {
    let mut out: Vec<Box<dyn Output>> = Vec::new();
    if let Some(cfg) = &run.hls {
        let ladder;
        let cfg = if hls_as.ladder {
            ladder = crate::hls::Config { slicing: crate::hls::Slicing::Aligned, numbered_by_time: true, continuous: false, ..cfg.clone() };
            &ladder
        } else {
            cfg
        };
        out.push(Box::new(hls::Hls::new(cfg, hls_as.name, storage.hls(), cx)));
    }
    if let Some(cfg) = &run.dash {
        out.push(Box::new(dash::Dash::new(cfg, stream, storage.hls(), storage.hls(), cx)));
    }
    for r in &run.recorders {
        out.push(Box::new(record::Record::new(r, stream, name, args, storage.record())));
    }
    out
}
