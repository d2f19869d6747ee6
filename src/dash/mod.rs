//! MPEG-DASH: a published stream as a live MPD and CMAF fragments, with nginx-rtmp-module's
//! `dash` directives, paths and defaults: `NAME.mpd` (or `NAME/index.mpd` with
//! `dash_nested`), one fMP4 track per file (`.m4v` video, `.m4a` audio), fragments cut at
//! the first keyframe after `dash_fragment`, the MPD listing `dash_playlist_length` of
//! them. Files are named `NAME-PUB-init.m4v` and `NAME-PUB-TIME.m4v` (nested:
//! `NAME/PUB-TIME.m4v`), PUB being when the publication began (ms since 1970): media time
//! starts again with each publication, and nginx-rtmp-module's `NAME-TIME.m4v` then
//! reused names a cache may still hold; these never repeat, so they may be cached for good. The
//! boxes are HLS fMP4's (`hls::fmp4`, `hls::cmaf`): separate tracks because dash.js
//! (and the DASH-IF guidelines) take one media component per representation.
//!
//! Sans-IO like the HLS segmenter: frames and time in, file work through [`Files`].

mod mpd;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;

use crate::hls::cmaf::Cmaf;
use crate::hls::codec::{nal_lengths_ok, VideoCodec};
use crate::hls::fmp4::{self, AudioTrack};
use crate::hls::{Clock, Files};
use crate::media::config;
use crate::media::{Codec, Frame, MediaKind, Part};

/// Samples gathered before they are appended to a fragment file (as a `moof` + `mdat`).
const WRITE_CHUNK: usize = 256 * 1024;
/// How far an audio timestamp may stray from the count of samples before it counts
/// (`hls_sync`'s default).
const AUDIO_SYNC_MS: u64 = 2;
/// Fragments listed at most, whatever `dash_playlist_length` says.
const MAX_LISTED: usize = 4096;

/// An application's DASH settings (`dash*` directives), with nginx-rtmp-module's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub path: String,
    /// `dash_fragment`, ms.
    pub fragment: u64,
    /// `dash_playlist_length`, ms.
    pub playlist_length: u64,
    pub nested: bool,
    pub cleanup: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config { path: String::new(), fragment: 5000, playlist_length: 30_000, nested: false, cleanup: true }
    }
}

/// How long the cleanup sweep keeps a file of `name` (`None`: not a DASH file).
pub fn max_age_ms(name: &str, playlist_length: u64) -> Option<u64> {
    if name.ends_with(".m4v") || name.ends_with(".m4a") {
        Some(playlist_length * 2)
    } else if name.ends_with(".mpd") {
        Some(playlist_length)
    } else {
        None
    }
}

/// A listed fragment: start and duration in the track's timescale, size in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listed {
    pub t: u64,
    pub d: u64,
    pub bytes: u64,
}

/// One track's fragments: its samples, the file being written, what is listed.
struct Track<F: Files> {
    cmaf: Cmaf,
    files: F,
    ext: &'static str,
    /// The open fragment's start (track timescale) and file; `failed`: a write failed,
    /// it will not be listed.
    open: Option<(u64, String)>,
    created: bool,
    failed: bool,
    bytes: u64,
    buf: Vec<u8>,
    listed: VecDeque<Listed>,
    /// The init segment was written for the current codec record.
    init_written: bool,
}

impl<F: Files> Track<F> {
    fn new(files: F, ext: &'static str) -> Self {
        Track { cmaf: Cmaf::default(), files, ext, open: None, created: false, failed: false, bytes: 0, buf: Vec::new(), listed: VecDeque::new(), init_written: false }
    }

    fn timescale(&self) -> u32 {
        match self.cmaf.audio() {
            Some(a) => a.timescale(),
            None => fmp4::VIDEO_TIMESCALE,
        }
    }

    fn live(&self) -> bool {
        self.cmaf.has_video() || self.cmaf.audio().is_some()
    }

    /// Appends what is gathered to the fragment file (creating it first).
    fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        if self.failed || bytes.is_empty() {
            return Ok(());
        }
        let Some((_, path)) = &self.open else { return Ok(()) };
        let r = (|| {
            if !self.created {
                self.files.create(path)?;
                self.created = true;
            }
            self.files.append(bytes)
        })();
        self.bytes += bytes.len() as u64;
        r.map_err(|e| {
            self.failed = true;
            format!("dash: writing \"{path}\" failed: {e}")
        })
    }

    fn spill(&mut self) -> Result<(), String> {
        if self.cmaf.buffered() < WRITE_CHUNK {
            return Ok(());
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        self.cmaf.fragment(None, &mut buf);
        let r = self.write(&buf);
        self.buf = buf;
        r
    }

    /// Ends the open fragment at `end` (video: 90 kHz; audio: by its last frame): the
    /// fragment listed, or dropped if a write failed.
    fn close(&mut self, end: u64, listed_max_ms: u64) -> Result<(), String> {
        let Some((t, path)) = self.open.clone() else { return Ok(()) };
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        self.cmaf.fragment(Some(end), &mut buf);
        let mut r = self.write(&buf);
        self.buf = buf;
        if self.created {
            if let Err(e) = self.files.close() {
                if r.is_ok() {
                    r = Err(format!("dash: writing \"{path}\" failed: {e}"));
                }
                self.failed = true;
            }
        }
        let end = match self.cmaf.audio() {
            Some(_) => self.cmaf.audio_end().unwrap_or(end),
            None => end,
        };
        if !self.failed && self.created && end > t {
            self.listed.push_back(Listed { t, d: end - t, bytes: self.bytes });
            let scale = u64::from(self.timescale());
            let keep = listed_max_ms.saturating_mul(scale) / 1000;
            while self.listed.len() > MAX_LISTED || (self.listed.len() > 1 && self.listed.iter().skip(1).map(|l| l.d).sum::<u64>() > keep) {
                self.listed.pop_front();
            }
        }
        self.open = None;
        self.created = false;
        self.failed = false;
        self.bytes = 0;
        r
    }
}

/// One published stream's DASH output.
pub struct Dash<F: Files> {
    cfg: Config,
    name: String,
    dir: String,
    /// File names start with this (`NAME-`, or nothing when nested), then the
    /// publication's `PUB-` once it has begun (`files`).
    prefix: String,
    files: String,
    mpd_path: String,
    video: Track<F>,
    audio: Track<F>,
    codecs: (String, String),
    /// The video decoder configuration's NAL length size.
    nal_length_size: Option<usize>,
    clock: Clock,
    last_video_dts: Option<u64>,
    /// Where the open fragment started (ms of stream time), if one is open.
    started: Option<u64>,
    /// Stream time (ms) of the first fragment and the wall-clock time (ms) it stood for:
    /// the MPD's `availabilityStartTime` and `presentationTimeOffset`s.
    origin: Option<(u64, i64)>,
    dirs_ready: bool,
    failing: bool,
    notices: Vec<String>,
    fragments: u64,
}

impl<F: Files> Dash<F> {
    /// `files` for the video track, the audio track (one open file each).
    pub fn new(cfg: &Config, name: &str, video_files: F, audio_files: F) -> Self {
        let (dir, prefix, mpd) = if cfg.nested {
            let dir = format!("{}/{name}", cfg.path.trim_end_matches('/'));
            (dir.clone(), String::new(), format!("{dir}/index.mpd"))
        } else {
            let dir = cfg.path.trim_end_matches('/').to_owned();
            (dir.clone(), format!("{name}-"), format!("{dir}/{name}.mpd"))
        };
        Dash {
            cfg: cfg.clone(),
            name: name.to_owned(),
            dir,
            files: prefix.clone(),
            prefix,
            mpd_path: mpd,
            video: Track::new(video_files, "m4v"),
            audio: Track::new(audio_files, "m4a"),
            codecs: (String::new(), String::new()),
            nal_length_size: None,
            clock: Clock::default(),
            last_video_dts: None,
            started: None,
            origin: None,
            dirs_ready: false,
            failing: false,
            notices: Vec::new(),
            fragments: 0,
        }
    }

    pub fn mpd_path(&self) -> &str {
        &self.mpd_path
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn take_notices(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notices)
    }

    /// Fragments completed and listed so far.
    pub fn fragments(&self) -> u64 {
        self.fragments
    }

    fn notice(&mut self, s: String) {
        self.notices.push(s);
    }

    /// A write failed: said once until writing works again.
    fn failed(&mut self, r: Result<(), String>) {
        match r {
            Ok(()) => {}
            Err(e) if !self.failing => {
                self.failing = true;
                self.notice(e);
            }
            Err(_) => {}
        }
    }

    pub fn frame(&mut self, f: &Frame, now_ms: i64) {
        match f.kind {
            MediaKind::Video => self.on_video(f, now_ms),
            MediaKind::Audio => self.on_audio(f, now_ms),
            MediaKind::Data => {}
        }
    }

    fn on_video(&mut self, f: &Frame, now_ms: i64) {
        let c = match f.codec {
            Codec::Avc => VideoCodec::Avc,
            Codec::Hevc => VideoCodec::Hevc,
            _ => return,
        };
        match f.part {
            Part::Header => {
                let Some((track, vcfg)) = fmp4::video_track(c, f.data()) else {
                    self.notice(format!("dash: unusable {c:?} decoder configuration record, video skipped"));
                    return;
                };
                if self.video.cmaf.video_track() != Some(&track) {
                    self.video.cmaf.set_video(Some(track));
                    self.video.init_written = false;
                }
                self.codecs.0 = mpd::video_codec(c, f.data());
                self.nal_length_size = Some(vcfg.nal_length_size);
            }
            Part::Coded => {
                let Some(nls) = self.nal_length_size else { return };
                if self.video.cmaf.video_track().map(|v| v.codec) != Some(c) {
                    return;
                }
                if !nal_lengths_ok(nls, f.data()) {
                    self.notice("dash: video frame with bad NAL unit lengths skipped".into());
                    return;
                }
                let ms = self.clock.ms(f.timestamp);
                let mut dts = ms * 90;
                if let Some(prev) = self.last_video_dts {
                    if dts <= prev && prev - dts < 90 {
                        dts = prev + 1;
                    }
                }
                self.last_video_dts = Some(dts);
                let pts = (dts as i64 + i64::from(f.cts) * 90).max(0) as u64;
                if f.keyframe && self.started.is_none_or(|s| ms >= s + self.cfg.fragment || !self.video.init_written) {
                    self.cut(ms, dts, now_ms);
                }
                if self.video.open.is_some() {
                    self.video.cmaf.video(dts, pts, f.keyframe, f.data());
                    let r = self.video.spill();
                    self.failed(r);
                }
            }
            Part::Other => {}
        }
    }

    fn on_audio(&mut self, f: &Frame, now_ms: i64) {
        let raw = f.data();
        match (f.codec, f.part) {
            (Codec::Aac, Part::Header) => {
                if matches!(self.audio.cmaf.audio(), Some(AudioTrack::Opus { .. })) {
                    return;
                }
                match config::aac(raw).filter(|c| c.sample_rate() > 0) {
                    Some(c) => {
                        let track = AudioTrack::Aac { asc: raw.to_vec(), rate: c.sample_rate(), channels: c.channels };
                        self.codecs.1 = format!("mp4a.40.{}", c.object_type);
                        self.set_audio(track);
                    }
                    None => self.notice("dash: unsupported AAC configuration, audio skipped".into()),
                }
            }
            (Codec::Opus, Part::Header) => {
                if raw.len() >= 19 && raw.starts_with(b"OpusHead") {
                    self.codecs.1 = "opus".into();
                    self.set_audio(AudioTrack::Opus { head: raw.to_vec() });
                }
            }
            (Codec::Aac | Codec::Opus, Part::Coded) => {
                let ours = matches!(
                    (f.codec, self.audio.cmaf.audio()),
                    (Codec::Aac, Some(AudioTrack::Aac { .. })) | (Codec::Opus, Some(AudioTrack::Opus { .. }))
                );
                if !ours || raw.is_empty() || raw.len() > 1 << 20 {
                    return;
                }
                let ms = self.clock.ms(f.timestamp);
                if !self.video.live() && self.started.is_none_or(|s| ms >= s + self.cfg.fragment || !self.audio.init_written) {
                    // Without video, audio cuts the fragments.
                    self.cut(ms, ms * 90, now_ms);
                }
                if self.started.is_none() {
                    return;
                }
                let Some(dt) = self.audio.cmaf.audio_frame(ms, AUDIO_SYNC_MS, raw) else { return };
                if self.audio.open.is_none() {
                    let path = format!("{}/{}{dt}.m4a", self.dir, self.files);
                    self.audio.open = Some((dt, path));
                }
                let r = self.audio.spill();
                self.failed(r);
            }
            _ => {}
        }
    }

    fn set_audio(&mut self, track: AudioTrack) {
        if self.audio.cmaf.audio() != Some(&track) {
            self.audio.cmaf.set_audio(Some(track));
            self.audio.init_written = false;
        }
    }

    fn ensure_dirs(&mut self) -> bool {
        if !self.dirs_ready {
            match self.video.files.mkdirs(&self.dir) {
                Ok(()) => self.dirs_ready = true,
                Err(e) => self.failed(Err(format!("dash: creating \"{}\" failed: {e}", self.dir))),
            }
        }
        self.dirs_ready
    }

    /// Ends the open fragment (at `dts`, 90 kHz) and starts the next there (`ms`).
    fn cut(&mut self, ms: u64, dts: u64, now_ms: i64) {
        let closed = self.started.is_some();
        let v = self.video.close(dts, self.cfg.playlist_length);
        self.failed(v);
        let a = self.audio.close(dts, self.cfg.playlist_length);
        self.failed(a);
        if closed {
            self.fragments += 1;
            self.write_mpd(now_ms);
        }
        self.started = None;
        if !self.ensure_dirs() {
            return;
        }
        if self.origin.is_none() {
            self.files = format!("{}{now_ms}-", self.prefix);
        }
        // The init segments (again when a codec record changed; touched for the sweep).
        let mut failed = Ok(());
        for track in [&mut self.video, &mut self.audio] {
            if !track.live() {
                continue;
            }
            let path = format!("{}/{}init.{}", self.dir, self.files, track.ext);
            if track.init_written {
                track.files.touch(&path);
                continue;
            }
            track.cmaf.forget_init();
            if let Some(init) = track.cmaf.new_init() {
                match track.files.replace(&path, &init) {
                    Ok(()) => track.init_written = true,
                    Err(e) => failed = Err(format!("dash: writing \"{path}\" failed: {e}")),
                }
            }
        }
        self.failed(failed);
        if self.video.live() && !self.video.init_written || self.audio.live() && !self.audio.init_written {
            return;
        }
        self.origin.get_or_insert((ms, now_ms));
        self.started = Some(ms);
        if self.video.live() {
            self.video.open = Some((dts, format!("{}/{}{dts}.m4v", self.dir, self.files)));
        }
    }

    fn write_mpd(&mut self, now_ms: i64) {
        let Some((origin_ms, origin_wall)) = self.origin else { return };
        let text = mpd::write(&mpd::Mpd {
            cfg: &self.cfg,
            prefix: &self.files,
            origin_ms,
            origin_wall,
            now_ms,
            video: self.video.live().then(|| mpd::Set {
                codecs: &self.codecs.0,
                timescale: fmp4::VIDEO_TIMESCALE,
                size: self.video.cmaf.video_track().map(|v| (v.width, v.height)),
                audio: None,
                listed: &self.video.listed,
            }),
            audio: self.audio.cmaf.audio().map(|a| mpd::Set {
                codecs: &self.codecs.1,
                timescale: a.timescale(),
                size: None,
                audio: Some(a.channels()),
                listed: &self.audio.listed,
            }),
        });
        match self.video.files.replace_often(&self.mpd_path, text.as_bytes()) {
            Ok(()) => self.failing = false,
            Err(e) => {
                let e = format!("dash: writing \"{}\" failed: {e}", self.mpd_path);
                self.failed(Err(e));
            }
        }
    }

    /// The stream ended: its last fragment is completed and listed.
    pub fn finish(&mut self, now_ms: i64) {
        if self.started.is_none() {
            return;
        }
        let end = self.last_video_dts.map_or(0, |d| d + 1);
        let v = self.video.close(end.max(self.video.open.as_ref().map_or(0, |o| o.0 + 1)), self.cfg.playlist_length);
        self.failed(v);
        let a = self.audio.close(0, self.cfg.playlist_length);
        self.failed(a);
        self.fragments += 1;
        self.started = None;
        self.write_mpd(now_ms);
    }
}
