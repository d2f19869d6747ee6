//! HLS: a published stream muxed into MPEG-TS segments and an m3u8 playlist, the way
//! nginx-rtmp-module's `hls` does it (same directives, file names and defaults), with
//! segments cut at keyframes, durations measured, playlists replaced atomically and only
//! complete segments listed.
//!
//! The segmenter takes frames (`crate::media::Frame`) and time, and does its file work
//! through the [`Files`] trait: [`disk::Disk`] in the module, memory in the tests.

pub(crate) mod cmaf;
pub mod codec;
pub mod fmp4;
mod settings;
pub mod crypt;
pub mod disk;
mod files;
pub mod playlist;
pub mod serve;
pub mod ts;

pub use settings::{Config, Format, Naming, Slicing, Variant};

pub use files::Files;

use mpeg2ts::es::StreamType;

use codec::{Adts, AudioCodec, VideoCodec};
use crate::media::config::{self, VideoConfig};
use crate::media::{Codec, Frame, MediaKind, Part};
use playlist::{Entry, PartEntry, Parts, Playlist};
use ts::{Muxer, Times, Track};

/// Bytes gathered in memory before they are appended to the segment file.
const WRITE_CHUNK: usize = 256 * 1024;
/// An event playlist keeps every segment; past this many, the oldest go anyway.
const MAX_ENTRIES: usize = 65536;

struct Open {
    id: u64,
    path: String,
    start: u64,
    date_ms: i64,
    discont: bool,
    key: Option<(String, u128)>,
    /// A write failed: the segment is abandoned (never listed).
    failed: bool,
    /// Bytes written to it.
    bytes: u64,
}

/// What a stream's last segments measured (a ladder's master playlist says it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Measured {
    /// Segments listed so far.
    pub segments: u64,
    /// Bits per second: the highest of one segment, and over the last ones.
    pub peak: u64,
    pub average: u64,
}

/// Segments the figures are taken over.
const MEASURED: usize = 10;

/// Extends 32-bit millisecond timestamps (which wrap after 49 days) to 64 bits.
#[derive(Default)]
pub(crate) struct Clock {
    last: Option<u32>,
    high: u64,
}

impl Clock {
    pub(crate) fn ms(&mut self, ts: u32) -> u64 {
        if let Some(last) = self.last {
            if ts < last && last - ts > 1 << 31 {
                self.high += 1 << 32;
            } else if ts > last && ts - last > 1 << 31 && self.high > 0 {
                // A late frame from before the wrap.
                return self.high - (1 << 32) + u64::from(ts);
            }
        }
        self.last = Some(ts);
        self.high + u64::from(ts)
    }
}

/// One published stream's HLS output.
pub struct Segmenter<F: Files> {
    cfg: Config,
    files: F,
    name: String,
    playlist_path: String,
    /// The master playlist (path, text) when the name ends with a variant suffix.
    master: Option<(String, String)>,
    /// Segment files are `seg_prefix + id + ".ts"`, listed as `uri_prefix + id + ".ts"`.
    seg_prefix: String,
    uri_prefix: String,
    key_prefix: String,
    key_uri_prefix: String,
    dirs_ready: bool,

    video: Option<(VideoCodec, VideoConfig)>,
    aac: Option<Adts>,
    audio: Option<AudioCodec>,
    muxer: Muxer,
    /// `hls_format fmp4`: the samples on their way into fragments.
    cmaf: Option<cmaf::Cmaf>,
    /// fMP4: the current init segment (file, URI).
    init: Option<(String, String)>,
    /// fMP4: the tracks changed; a segment (with a new init segment) starts at the next
    /// keyframe, however short the open one is.
    cut_now: bool,
    /// The last segment's id (names never repeat within a publication).
    last_id: Option<u64>,
    /// Low-latency HLS: the part being gathered (its number in the segment, where it
    /// starts (90 kHz), whether it starts with a keyframe).
    part: Option<(u32, u64, bool)>,
    clock: Clock,
    scratch: Vec<u8>,

    open: Option<Open>,
    buf: Vec<u8>,
    cipher: Option<crypt::Cbc>,
    last_dts: u64,
    /// The last video frame's decode timestamp (they must increase).
    last_video_dts: Option<u64>,

    abuf: Vec<u8>,
    apts: u64,
    /// Audio timestamp smoothing (`hls_sync`): where counting samples started, and frames since.
    abase: u64,
    aframes: u64,

    playlist: Playlist,
    next_discont: bool,
    key: Option<Key>,
    notices: Vec<String>,
    /// Writing fails (disk full, no permission): said once, until it works again.
    failing: bool,
    /// Writing the playlist failed (logged once until it works again).
    playlist_failing: bool,
    finished: bool,
    /// EXT-X-PROGRAM-DATE-TIME's anchor: a wall-clock time (ms) and the media time (90 kHz)
    /// it stands for. Segments' dates follow media time from it, not the moment their
    /// first frame happened to be read (input read in batches would make them jitter).
    date_anchor: Option<(i64, u64)>,
    /// `numbered_by_time`: the first segment got its number.
    numbered: bool,
    /// (seconds, bytes) of the last segments, and how many were listed.
    recent: std::collections::VecDeque<(f64, u64)>,
    listed: u64,
}

/// How far a segment's date may drift from the wall clock before it is anchored anew.
const DATE_DRIFT_MS: i64 = 1000;

struct Key {
    id: u64,
    path: String,
    uri: String,
    key: [u8; 16],
    /// Segments that may still use it (`hls_fragments_per_key`); `u64::MAX`: forever.
    left: u64,
}

fn join(dir: &str, file: &str) -> String {
    if dir.is_empty() || dir.ends_with('/') {
        format!("{dir}{file}")
    } else {
        format!("{dir}/{file}")
    }
}

impl<F: Files> Segmenter<F> {
    /// The playlist file of stream `name` (its directory made by `create`).
    pub fn playlist_file(cfg: &Config, name: &str) -> String {
        if cfg.nested {
            join(&join(&cfg.path, name), "index.m3u8")
        } else {
            join(&cfg.path, &format!("{name}.m3u8"))
        }
    }

    /// Starts the HLS output of a stream that is being published. With `hls_continuous`,
    /// the playlist left by an earlier publisher is read and its numbering continued.
    pub fn new(cfg: &Config, name: &str, mut files: F) -> Self {
        let cfg = cfg.clone();
        let playlist_path = Self::playlist_file(&cfg, name);
        let (seg_prefix, name_part, sep) = if cfg.nested {
            (join(&join(&cfg.path, name), ""), if cfg.base_url.is_empty() { "" } else { name }, if cfg.base_url.is_empty() { "" } else { "/" })
        } else {
            (join(&cfg.path, &format!("{name}-")), name, "-")
        };
        let uri_prefix = format!("{}{name_part}{sep}", cfg.base_url);
        let key_dir = if cfg.key_path.is_empty() { cfg.path.clone() } else { cfg.key_path.clone() };
        let key_prefix = if cfg.nested { join(&join(&key_dir, name), "") } else { join(&key_dir, &format!("{name}-")) };
        let key_uri_prefix = if cfg.nested {
            if cfg.key_url.is_empty() { String::new() } else { format!("{}{name}/", cfg.key_url) }
        } else {
            format!("{}{name}-", cfg.key_url)
        };
        let master = cfg.variants.iter().find(|v| name.len() > v.suffix.len() && name.ends_with(&v.suffix)).map(|v| {
            let base = &name[..name.len() - v.suffix.len()];
            let mut text = String::from("#EXTM3U\n#EXT-X-VERSION:3\n");
            for var in &cfg.variants {
                text.push_str("#EXT-X-STREAM-INF:");
                text.push_str(&var.params.join(","));
                text.push('\n');
                let index = if cfg.nested { "/index" } else { "" };
                text.push_str(&format!("{}{base}{}{index}.m3u8\n", cfg.base_url, var.suffix));
            }
            (join(&cfg.path, &format!("{base}.m3u8")), text)
        });
        // PART-HOLD-BACK: three parts (as RFC 8216bis advises), plus a segment's duration:
        // the playlist is a static file, reloaded by players about once a segment (no
        // blocking reload), so the live edge they know is up to that much behind. (With
        // three parts only, hls.js stalled once at the start, then played 2.05 s behind.)
        let parts = (cfg.format == Format::Fmp4 && cfg.partial > 0).then(|| Parts {
            target: cfg.partial as f64 / 1000.0,
            hold_back: (3 * cfg.partial + cfg.fragment) as f64 / 1000.0,
            open: Vec::new(),
        });
        let mut playlist = Playlist { event: cfg.event, target: cfg.fragment.div_ceil(1000).max(1), parts, ..Playlist::default() };
        let mut next_discont = false;
        if cfg.continuous {
            if let Some(old) = files.read(&playlist_path).as_deref().and_then(Playlist::parse) {
                playlist.sequence = old.sequence;
                playlist.discontinuity_sequence = old.discontinuity_sequence;
                playlist.entries = old.entries;
                playlist.target = playlist.target.max(old.target);
                next_discont = !playlist.entries.is_empty();
            }
        }
        Segmenter {
            cmaf: (cfg.format == Format::Fmp4).then(cmaf::Cmaf::default),
            cfg,
            files,
            name: name.to_owned(),
            playlist_path,
            master,
            seg_prefix,
            uri_prefix,
            key_prefix,
            key_uri_prefix,
            dirs_ready: false,
            video: None,
            aac: None,
            audio: None,
            muxer: Muxer::new(None, None),
            init: None,
            cut_now: false,
            last_id: None,
            part: None,
            clock: Clock::default(),
            scratch: Vec::new(),
            open: None,
            buf: Vec::new(),
            cipher: None,
            last_dts: 0,
            last_video_dts: None,
            abuf: Vec::new(),
            apts: 0,
            abase: 0,
            aframes: 0,
            playlist,
            next_discont,
            key: None,
            notices: Vec::new(),
            failing: false,
            playlist_failing: false,
            date_anchor: None,
            finished: false,
            numbered: false,
            recent: std::collections::VecDeque::new(),
            listed: 0,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `hls_fragment`, in ms.
    pub fn fragment_ms(&self) -> u64 {
        self.cfg.fragment
    }

    /// Whether the playlist holds three segments (or has slid): players start three
    /// target durations from its live edge (RFC 8216, hls.js), so from then on a playlist
    /// update a fraction of a segment late does not stall anyone. Before, a player that
    /// joins a new stream plays at the edge and waits for every update.
    pub fn settled(&self) -> bool {
        self.playlist.entries.len() >= 3 || self.playlist.sequence > 0
    }

    pub fn playlist_path(&self) -> &str {
        &self.playlist_path
    }

    /// What went wrong since the last call (for the error log).
    /// Segments completed and listed so far.
    pub fn segments(&self) -> u64 {
        self.listed
    }

    pub fn take_notices(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notices)
    }

    pub fn files(&self) -> &F {
        &self.files
    }

    fn notice(&mut self, s: String) {
        if self.notices.len() < 16 {
            self.notices.push(s);
        }
    }

    /// A file operation failed: logged once while failures go on.
    fn write_failed(&mut self, s: String) {
        if !self.failing {
            self.failing = true;
            self.notice(format!("{s}; the stream goes on, its segments are skipped until writing works again"));
        }
    }

    fn delay(&self) -> u64 {
        self.cfg.muxdelay * 90
    }

    /// A frame of the stream; `now_ms`: wall clock.
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
                let parsed = fmp4::video_track(c, f.data());
                if let (Some(cmaf), Some((track, _))) = (&mut self.cmaf, &parsed) {
                    cmaf.set_video(Some(track.clone()));
                    self.cut_now |= cmaf.changed();
                }
                match parsed {
                    Some((_, cfg)) => self.video = Some((c, cfg)),
                    None => self.notice(format!("hls: unusable {c:?} decoder configuration record, video skipped")),
                }
            }
            Part::Coded => {
                let Some((vc, vcfg)) = &self.video else { return };
                if *vc != c {
                    return;
                }
                let (keyframe, timestamp) = (f.keyframe, f.timestamp);
                if self.cmaf.is_some() {
                    if !codec::nal_lengths_ok(vcfg.nal_length_size, f.data()) {
                        self.notice("hls: video frame with bad NAL unit lengths skipped".into());
                        return;
                    }
                    let (dts, pts) = self.video_times(timestamp, f.cts);
                    self.update(dts, keyframe, 1, now_ms);
                    self.part_due(dts, keyframe);
                    if self.open.is_some() {
                        if let Some(cmaf) = &mut self.cmaf {
                            cmaf.video(dts, pts, keyframe, f.data());
                        }
                        self.last_dts = self.last_dts.max(dts);
                        self.spill();
                    }
                    return;
                }
                let mut scratch = std::mem::take(&mut self.scratch);
                scratch.clear();
                let ok = codec::annex_b(c, vcfg, keyframe, f.data(), &mut scratch);
                if !ok {
                    self.scratch = scratch;
                    self.notice("hls: video frame with bad NAL unit lengths skipped".into());
                    return;
                }
                let (dts, pts) = self.video_times(timestamp, f.cts);
                self.update(dts, keyframe, 1, now_ms);
                if self.open.is_some() {
                    let pcr = (self.muxer.clock() == Track::Video).then_some(dts);
                    let d = self.delay();
                    self.muxer.pes(&mut self.buf, Track::Video, Times { pts: pts + d, dts: dts + d, pcr }, keyframe, &scratch);
                    self.last_dts = self.last_dts.max(dts);
                    self.spill();
                }
                self.scratch = scratch;
            }
            Part::Other => {}
        }
    }

    /// A video frame's decode and presentation times (90 kHz).
    fn video_times(&mut self, timestamp: u32, cts: i32) -> (u64, u64) {
        let mut dts = self.clock.ms(timestamp) * 90;
        // Two frames with one millisecond timestamp (a WHIP browser's frames can share
        // one) would share a decode timestamp, which TS forbids (and fMP4 cannot say):
        // the second goes a 90 kHz tick later.
        if let Some(prev) = self.last_video_dts {
            if dts <= prev && prev - dts < 90 {
                dts = prev + 1;
            }
        }
        self.last_video_dts = Some(dts);
        (dts, (dts as i64 + i64::from(cts) * 90).max(0) as u64)
    }

    /// fMP4's audio: AAC, or Opus (a WHIP stream's own, preferred to its AAC: no
    /// transcoding in the way).
    fn on_audio_fmp4(&mut self, f: &Frame, now_ms: i64) {
        let Some(cmaf) = &mut self.cmaf else { return };
        let raw = f.data();
        match (f.codec, f.part) {
            (Codec::Aac, Part::Header) => {
                if matches!(cmaf.audio(), Some(fmp4::AudioTrack::Opus { .. })) {
                    return;
                }
                match config::aac(raw).filter(|c| c.sample_rate() > 0) {
                    Some(c) => {
                        let rate = c.sample_rate();
                        cmaf.set_audio(Some(fmp4::AudioTrack::Aac { asc: raw.to_vec(), rate, channels: c.channels }));
                    }
                    None => self.notice("hls: unsupported AAC configuration, audio skipped".into()),
                }
            }
            (Codec::Opus, Part::Header) => {
                if raw.len() >= 19 && raw.starts_with(b"OpusHead") {
                    cmaf.set_audio(Some(fmp4::AudioTrack::Opus { head: raw.to_vec() }));
                }
            }
            (Codec::Aac | Codec::Opus, Part::Coded) => {
                let ours = matches!(
                    (f.codec, cmaf.audio()),
                    (Codec::Aac, Some(fmp4::AudioTrack::Aac { .. })) | (Codec::Opus, Some(fmp4::AudioTrack::Opus { .. }))
                );
                if !ours || raw.is_empty() {
                    return;
                }
                if raw.len() > self.cfg.audio_buffer_size {
                    self.notice("hls: audio frame larger than hls_audio_buffer_size skipped".into());
                    return;
                }
                let ms = self.clock.ms(f.timestamp);
                // Without video, audio cuts the segments.
                let no_video = !cmaf.has_video();
                self.update(ms * 90, no_video, 2, now_ms);
                if no_video {
                    self.part_due(ms * 90, true);
                }
                if self.open.is_some() {
                    let sync = self.cfg.sync;
                    if let Some(cmaf) = &mut self.cmaf {
                        let _ = cmaf.audio_frame(ms, sync, raw);
                    }
                    self.last_dts = self.last_dts.max(ms * 90);
                    self.spill();
                }
            }
            _ => {}
        }
        if self.cmaf.as_ref().is_some_and(|c| c.changed()) {
            self.cut_now = true;
        }
    }

    /// Low-latency HLS: the open part ends at `ts` (90 kHz) once it is `hls_partial_duration`
    /// long; the next starts with the sample at `ts` (`keyframe`: an independent part).
    fn part_due(&mut self, ts: u64, keyframe: bool) {
        let Some((n, start, _)) = self.part else { return };
        if self.open.is_none() || ts.saturating_sub(start) < self.cfg.partial * 90 {
            return;
        }
        if self.finish_part(ts) {
            self.part = Some((n + 1, ts, keyframe));
        }
    }

    /// Writes the open part (the samples gathered, up to `end`): its own file, and the
    /// segment's; lists it in the playlist. False if it had no samples.
    fn finish_part(&mut self, end: u64) -> bool {
        let (Some((n, start, independent)), Some(open)) = (self.part, &self.open) else { return false };
        let id = open.id;
        let failed = open.failed;
        let at = self.buf.len();
        if let Some(cmaf) = &mut self.cmaf {
            cmaf.fragment(Some(end), &mut self.buf);
        }
        if self.buf.len() == at {
            return false;
        }
        let path = format!("{}{id}.{n}.m4s", self.seg_prefix);
        if !failed {
            if let Err(e) = self.files.replace_often(&path, &self.buf[at..]) {
                self.write_failed(format!("hls: writing \"{path}\" failed: {e}"));
            }
        }
        let uri = format!("{}{id}.{n}.m4s", self.uri_prefix);
        if let Some(parts) = &mut self.playlist.parts {
            parts.open.push(PartEntry { uri, duration: end.saturating_sub(start) as f64 / 90_000.0, independent });
        }
        if !failed {
            self.write_playlist();
        }
        self.spill();
        true
    }

    /// Whether the open segment is `hls_fragment` long and ends at the next keyframe
    /// (a WHIP publisher is asked for one then).
    pub fn keyframe_due(&self) -> bool {
        self.open.as_ref().is_some_and(|o| self.last_dts.saturating_sub(o.start) >= self.cfg.fragment * 90)
    }

    fn on_audio(&mut self, f: &Frame, now_ms: i64) {
        if self.cmaf.is_some() {
            return self.on_audio_fmp4(f, now_ms);
        }
        // (Enhanced RTMP audio, such as a WHIP stream's Opus, is not for TS: its AAC is.)
        if f.ex || f.part == Part::Other {
            return;
        }
        let timestamp = f.timestamp;
        let raw = f.data();
        let adts = match (f.codec, f.part) {
            (Codec::Aac, Part::Header) => {
                match config::aac(raw).as_ref().and_then(Adts::new) {
                    Some(c) => {
                        self.aac = Some(c);
                        self.audio = Some(AudioCodec::Aac);
                    }
                    None => self.notice("hls: unsupported AAC configuration, audio skipped".into()),
                }
                return;
            }
            (Codec::Aac, _) => match self.aac {
                Some(c) if self.audio == Some(AudioCodec::Aac) => Some(c.header(raw.len())),
                _ => return,
            },
            (Codec::Mp3, _) => {
                if self.audio.is_none() {
                    self.audio = Some(AudioCodec::Mp3);
                }
                if self.audio != Some(AudioCodec::Mp3) {
                    return;
                }
                None
            }
            _ => return,
        };
        let size = raw.len() + adts.map_or(0, |h| h.len());
        if raw.is_empty() || size > self.cfg.audio_buffer_size {
            if !raw.is_empty() {
                self.notice("hls: audio frame larger than hls_audio_buffer_size skipped".into());
            }
            return;
        }
        let mut pts = self.clock.ms(timestamp) * 90;
        // Without video, audio cuts the segments.
        self.update(pts, self.video.is_none(), 2, now_ms);
        if self.abuf.len() + size > self.cfg.audio_buffer_size {
            self.flush_audio();
            if self.open.is_none() {
                self.abuf.clear();
            }
        }
        // hls_sync: AAC timestamps counted from the sample rate, unless the publisher's
        // timestamps drift further than the threshold from them.
        if let (Some(c), true) = (self.aac, adts.is_some() && self.cfg.sync > 0) {
            let est = self.abase + self.aframes * 90_000 * 1024 / u64::from(c.sample_rate());
            let diff = est as i64 - pts as i64;
            if diff.abs() <= self.cfg.sync as i64 * 90 {
                pts = est;
                self.aframes += 1;
            } else {
                self.abase = pts;
                self.aframes = 1;
            }
        }
        if self.abuf.is_empty() {
            self.apts = pts;
        }
        if let Some(h) = adts {
            self.abuf.extend_from_slice(&h);
        }
        self.abuf.extend_from_slice(raw);
    }

    /// Decides whether a new segment starts at `ts` (90 kHz): at a boundary (a keyframe, or
    /// an audio frame without video) once the segment is long enough; or forced, after
    /// `hls_max_fragment` or a jump back in time.
    fn update(&mut self, ts: u64, mut boundary: bool, flush_rate: u64, now_ms: i64) {
        let mut force = false;
        let mut duration = None;
        // (fMP4 tracks that changed: cut at this boundary, however short the segment.)
        let cut_now = boundary && self.cut_now && self.open.is_some();
        if let Some(open) = &self.open {
            let d = ts as i64 - open.start as i64;
            if d > self.cfg.max_fragment as i64 * 90 || d < -90_000 {
                self.notice(format!("hls: force fragment split: {:.3} sec", d as f64 / 90_000.0));
                force = true;
            } else {
                // (Slightly negative: a frame a little older than the segment's start.)
                duration = Some(d.max(0) as u64);
            }
        }
        match self.cfg.slicing {
            Slicing::Plain => {
                if duration.is_some_and(|d| d < self.cfg.fragment * 90) {
                    boundary = false;
                }
            }
            Slicing::Aligned => {
                let len = (self.cfg.fragment * 90).max(1);
                if let Some(open) = &self.open {
                    if open.start / len == ts / len {
                        boundary = false;
                    }
                }
            }
        }
        boundary |= cut_now;
        if boundary || force {
            let end = if force { self.last_dts } else { ts };
            // Audio from before the cut ends the old segment.
            self.flush_audio();
            self.close_segment(end);
            let discont = force || self.next_discont;
            self.open_segment(ts, discont, now_ms);
        }
        if self.open.is_some() && !self.abuf.is_empty() && self.apts + self.cfg.max_audio_delay * 90 / flush_rate < ts {
            self.flush_audio();
        }
    }

    fn flush_audio(&mut self) {
        if self.open.is_none() || self.cmaf.is_some() || self.abuf.is_empty() {
            return;
        }
        let pts = self.apts + self.delay();
        let pcr = (self.muxer.clock() == Track::Audio).then_some(self.apts);
        let abuf = std::mem::take(&mut self.abuf);
        self.muxer.pes(&mut self.buf, Track::Audio, Times { pts, dts: pts, pcr }, false, &abuf);
        self.last_dts = self.last_dts.max(self.apts);
        self.abuf = abuf;
        self.abuf.clear();
        self.spill();
    }

    /// Moves gathered bytes to the file once there are enough of them.
    fn spill(&mut self) {
        // (fMP4: a segment is written as fragments of up to this much, so memory stays
        // bounded however long a segment is.)
        if let Some(cmaf) = self.cmaf.as_mut().filter(|_| self.part.is_none()) {
            if cmaf.buffered() >= WRITE_CHUNK {
                cmaf.fragment(None, &mut self.buf);
            }
        }
        if self.buf.len() >= WRITE_CHUNK {
            self.write_out(false);
        }
    }

    fn write_out(&mut self, last: bool) {
        let Some(open) = &mut self.open else { return };
        if open.failed {
            self.buf.clear();
            return;
        }
        let n = match &mut self.cipher {
            Some(c) => c.encrypt(&mut self.buf, last),
            None => self.buf.len(),
        };
        if n == 0 {
            return;
        }
        open.bytes += n as u64;
        if let Err(e) = self.files.append(&self.buf[..n]) {
            open.failed = true;
            let msg = format!("hls: writing \"{}\" failed: {e}", open.path);
            self.write_failed(msg);
        }
        self.buf.drain(..n);
    }

    fn ensure_dirs(&mut self) -> bool {
        if self.dirs_ready {
            return true;
        }
        // The directories segments and keys go to (with their parents): where their
        // file name prefixes point.
        let dir_of = |prefix: &str| prefix.rfind('/').map(|i| prefix[..i].to_owned()).filter(|d| !d.is_empty());
        let mut dirs: Vec<String> = dir_of(&self.seg_prefix).into_iter().collect();
        if self.cfg.keys {
            dirs.extend(dir_of(&self.key_prefix));
        }
        for d in dirs {
            if let Err(e) = self.files.mkdirs(&d) {
                self.write_failed(format!("hls: creating directory \"{d}\" failed: {e}"));
                return false;
            }
        }
        self.dirs_ready = true;
        true
    }

    fn segment_id(&self, ts: u64, now_ms: i64) -> u64 {
        let id = match self.cfg.naming {
            Naming::Sequential => self.playlist.sequence + self.playlist.entries.len() as u64,
            Naming::Timestamp => ts,
            Naming::System => now_ms.max(0) as u64,
        };
        let id = match self.cfg.granularity {
            0 => id,
            g => id / g * g,
        };
        // Names by the clock (or by time, rounded) must still differ: media that comes
        // faster than real time (a relay catching up, a burst) opened two segments in one
        // millisecond, and the second overwrote the first (seen in CI: a segment listed
        // twice, another's media gone).
        match self.last_id {
            Some(last) if id <= last && self.cfg.naming != Naming::Sequential => last + 1,
            _ => id,
        }
    }

    fn open_segment(&mut self, ts: u64, discont: bool, now_ms: i64) {
        if !self.ensure_dirs() {
            return;
        }
        if self.cfg.numbered_by_time && !self.numbered {
            self.numbered = true;
            if self.playlist.entries.is_empty() {
                self.playlist.sequence = ts / (self.cfg.fragment * 90).max(1);
            }
        }
        let id = self.segment_id(ts, now_ms);
        self.last_id = Some(id);
        let mut discont = discont;
        if let Some(mut cmaf) = self.cmaf.take() {
            // The init segment, new when the tracks are (the first segment's, or after a
            // change: a discontinuity for players).
            let init = cmaf.new_init();
            self.cmaf = Some(cmaf);
            if let Some(bytes) = init {
                let file = format!("{}init{id}.mp4", self.seg_prefix);
                if let Err(e) = self.files.replace(&file, &bytes) {
                    self.write_failed(format!("hls: writing \"{file}\" failed: {e}"));
                    if let Some(cmaf) = &mut self.cmaf {
                        cmaf.discard();
                        // (Written again at the next segment.)
                        cmaf.forget_init();
                    }
                    return;
                }
                discont |= self.init.is_some();
                self.init = Some((file, format!("{}init{id}.mp4", self.uri_prefix)));
            }
            self.cut_now = false;
            if self.init.is_none() {
                return;
            }
        }
        if self.playlist.parts.is_some() {
            self.part = Some((0, ts, true));
        }
        let ext = if self.cmaf.is_some() { "m4s" } else { "ts" };
        let path = format!("{}{id}.{ext}", self.seg_prefix);
        let key = if self.cfg.keys { self.next_key(id) } else { None };
        let failed = match self.files.create(&path) {
            // (Whether writing works again is known once a segment is complete: on a full
            // disk, creating a file works and writing to it does not.)
            Ok(()) => false,
            Err(e) => {
                self.write_failed(format!("hls: creating \"{path}\" failed: {e}"));
                true
            }
        };
        self.cipher = key.as_ref().map(|k| crypt::Cbc::new(&k.key, u128::from(k.id)));
        let key_line = key.as_ref().map(|k| (k.uri.clone(), u128::from(k.id)));
        self.key = key;
        let date_ms = match self.date_anchor {
            // (A ladder's renditions are dated by their source's anchor, a transcoder's delay
            // behind it: they may be further off.)
            Some((d0, t0)) if !discont => {
                let drift = if self.cfg.numbered_by_time { 10 * DATE_DRIFT_MS } else { DATE_DRIFT_MS };
                Some(d0 + (ts as i64 - t0 as i64) / 90).filter(|d| (d - now_ms).abs() <= drift)
            }
            _ => None,
        };
        let date_ms = date_ms.unwrap_or_else(|| {
            self.date_anchor = Some((now_ms, ts));
            now_ms
        });
        self.open = Some(Open { id, path, start: ts, date_ms, discont, key: key_line, failed, bytes: 0 });
        self.next_discont = false;
        self.buf.clear();
        if self.cmaf.is_some() {
            return;
        }
        self.muxer.set_streams(
            self.video.as_ref().map(|(c, _)| match c {
                VideoCodec::Avc => StreamType::H264,
                VideoCodec::Hevc => StreamType::H265,
            }),
            self.audio.map(|a| match a {
                AudioCodec::Aac => StreamType::AdtsAac,
                AudioCodec::Mp3 => StreamType::Mpeg1Audio,
            }),
        );
        self.muxer.tables(&mut self.buf);
        // Audio gathered while no segment was open came before this segment's keyframe:
        // it is dropped, so that a stream's first segment starts with its video. (Kept,
        // it started that segment a frame or so before the video, and hls.js opening a
        // new stream found a hole at the start: `bufferSeekOverHole`, in one page load of
        // three to five here.)
        if !self.abuf.is_empty() && self.apts < ts {
            self.abuf.clear();
        }
        self.flush_audio();
    }

    /// The key for a new segment: the current one while `hls_fragments_per_key` allows,
    /// else a new random key, written to its file.
    fn next_key(&mut self, id: u64) -> Option<Key> {
        if let Some(mut k) = self.key.take() {
            if k.left > 0 {
                if k.left != u64::MAX {
                    k.left -= 1;
                }
                self.files.touch(&k.path);
                return Some(k);
            }
        }
        let mut key = [0u8; 16];
        self.files.random(&mut key);
        let path = format!("{}{id}.key", self.key_prefix);
        if let Err(e) = self.files.replace(&path, &key) {
            self.notice(format!("hls: writing key \"{path}\" failed: {e}"));
            return None;
        }
        let left = match self.cfg.fragments_per_key {
            0 => u64::MAX,
            n => n - 1,
        };
        Some(Key { id, path, uri: format!("{}{id}.key", self.key_uri_prefix), key, left })
    }

    fn close_segment(&mut self, end: u64) {
        if self.open.is_none() {
            return;
        }
        if self.part.is_some() {
            self.finish_part(end);
            self.part = None;
        } else if let Some(cmaf) = &mut self.cmaf {
            cmaf.fragment(Some(end), &mut self.buf);
        }
        self.write_out(true);
        let open = self.open.take().expect("open");
        let parts = self.playlist.parts.as_mut().map(|p| std::mem::take(&mut p.open)).unwrap_or_default();
        self.cipher = None;
        if let Err(e) = self.files.close() {
            if !open.failed {
                self.write_failed(format!("hls: closing \"{}\" failed: {e}", open.path));
                self.next_discont = true;
                return;
            }
        }
        if open.failed {
            self.next_discont = true;
            return;
        }
        if self.failing {
            self.failing = false;
            self.notice(format!("hls: writing works again (\"{}\")", open.path));
        }
        let duration = end.saturating_sub(open.start) as f64 / 90_000.0;
        if self.recent.len() == MEASURED {
            self.recent.pop_front();
        }
        self.recent.push_back((duration, open.bytes));
        self.listed += 1;
        let (ext, map) = match &self.init {
            Some((file, uri)) if self.cmaf.is_some() => {
                // (In use while segments list it: the cleanup sweep goes by age.)
                self.files.touch(file);
                ("m4s", Some(uri.clone()))
            }
            _ => ("ts", None),
        };
        self.playlist.entries.push(Entry {
            uri: format!("{}{}.{ext}", self.uri_prefix, open.id),
            map,
            parts,
            duration,
            discont: open.discont,
            date_ms: Some(open.date_ms),
            key: open.key,
        });
        // RFC 8216: EXTINF rounded to the nearest integer never above the target duration;
        // it never goes down during a stream.
        self.playlist.target = self.playlist.target.max((duration + 0.5) as u64);
        let window = if self.cfg.event {
            MAX_ENTRIES
        } else {
            (self.cfg.playlist_length / self.cfg.fragment.max(1)).max(1) as usize
        };
        while self.playlist.entries.len() > window {
            let gone = self.playlist.entries.remove(0);
            self.playlist.sequence += 1;
            if gone.discont {
                self.playlist.discontinuity_sequence += 1;
            }
        }
        // With parts, the playlist is written again once the next segment's first part
        // is there: a playlist that ends with a complete segment and no part after it
        // made hls.js 1.7 fail its next update ("media sequence mismatch") in most runs
        // with 500 ms parts (it kept a hint of the open segment from the playlist before).
        if self.playlist.parts.is_none() || self.finished {
            self.write_playlist();
        }
    }

    fn write_playlist(&mut self) {
        let text = self.playlist.render();
        // A playlist is rewritten at every segment; its last version (the stream ended)
        // is the one that stays, written the durable way.
        let finished = self.finished;
        let put = |files: &mut F, path: &str, data: &[u8]| {
            if finished {
                files.replace(path, data)
            } else {
                files.replace_often(path, data)
            }
        };
        match put(&mut self.files, &self.playlist_path, text.as_bytes()) {
            Err(e) if !self.playlist_failing => {
                self.playlist_failing = true;
                let msg = format!("hls: writing playlist \"{}\" failed: {e}; it is written again with the next segment", self.playlist_path);
                self.notice(msg);
            }
            Err(_) => {}
            Ok(()) if self.playlist_failing => {
                self.playlist_failing = false;
                let msg = format!("hls: writing playlist \"{}\" works again", self.playlist_path);
                self.notice(msg);
            }
            Ok(()) => {}
        }
        if let Some((path, text)) = self.master.take() {
            match put(&mut self.files, &path, text.as_bytes()) {
                Ok(()) => self.files.touch(&path),
                Err(e) => self.notice(format!("hls: writing variant playlist \"{path}\" failed: {e}")),
            }
            self.master = Some((path, text));
        }
    }

    /// The publisher left: the open segment is completed and listed. Event playlists get
    /// `#EXT-X-ENDLIST`; live playlists stay as they are (as nginx-rtmp-module leaves them)
    /// until `hls_cleanup` removes them.
    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.flush_audio();
        let end = self.last_dts;
        if self.open.is_some() {
            self.close_segment(end);
        }
        if self.cfg.event && !self.playlist.entries.is_empty() {
            self.playlist.ended = true;
            self.write_playlist();
        }
    }

    /// The playlist as it stands (for tests and stats).
    /// EXT-X-PROGRAM-DATE-TIME's anchor: a wall-clock time (ms) and the media time it
    /// stands for.
    pub fn date_anchor(&self) -> Option<(i64, u64)> {
        self.date_anchor
    }

    /// Dates segments from `anchor` (a ladder's rendition, from its source's: players
    /// line up a ladder's playlists by their dates).
    pub fn anchor_dates(&mut self, anchor: (i64, u64)) {
        self.date_anchor = Some(anchor);
    }

    /// What the last segments measured.
    pub fn measured(&self) -> Measured {
        let rate = |d: f64, b: u64| if d > 0.0 { (b as f64 * 8.0 / d) as u64 } else { 0 };
        let (d, b) = self.recent.iter().fold((0.0, 0), |(d, b), &(sd, sb)| (d + sd, b + sb));
        Measured {
            segments: self.listed,
            peak: self.recent.iter().filter(|(d, _)| *d >= 0.5).map(|&(d, b)| rate(d, b)).max().unwrap_or_else(|| rate(d, b)),
            average: rate(d, b),
        }
    }

    pub fn playlist(&self) -> &Playlist {
        &self.playlist
    }
}

/// How long cleanup keeps files: `.m3u8` one playlist length after their last change,
/// segments, init segments and keys two (so players that fetched the playlist last can still get them).
pub fn max_age_ms(file: &str, playlist_length: u64) -> Option<u64> {
    if let Some(age) = crate::dash::max_age_ms(file, playlist_length) {
        Some(age)
    } else if [".ts", ".key", ".m4s", ".mp4"].iter().any(|e| file.ends_with(e)) {
        Some(playlist_length * 2)
    } else if file.ends_with(".m3u8") {
        Some(playlist_length)
    } else {
        None
    }
}

#[cfg(test)]
mod tests;
