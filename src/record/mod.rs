//! Recording a published stream to FLV files, sans-IO: one [`Recorder`] per recorder of
//! the application (nginx-rtmp-module's `record*` directives and `recorder` blocks) per
//! published stream. It is given the stream's audio, video and metadata, and writes
//! through [`Files`]: the FLV header, an `onMetaData` tag (the publisher's fields, plus
//! `duration` and `filesize` patched in when the file is closed), the codec sequence
//! headers at the start of every file, then tags with timestamps that start at 0 and never
//! go backwards. Each tag is written whole with one call, so a file cut short by a crash
//! ends on a complete tag; a failed write is cut back off and stops that file.

pub mod flv;
#[cfg(test)]
mod tests;

use std::io;

use bytes::Bytes;

use crate::media::{Frame, MediaKind};

/// How far after the last tag of a file an appended recording starts (ms).
pub const APPEND_GAP_MS: u32 = 100;

/// One recorder's settings, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The `recorder` block's name; "" for the application's own.
    pub id: String,
    pub audio: bool,
    pub video: bool,
    /// Video keyframes only (with `video` off).
    pub keyframes: bool,
    /// Started and stopped by the control API only.
    pub manual: bool,
    /// The directory (absolute).
    pub path: String,
    pub suffix: String,
    pub unique: bool,
    pub append: bool,
    pub lock: bool,
    /// Bytes after which a file is closed (0: no limit); the next file starts at the next
    /// keyframe.
    pub max_size: u64,
    /// Frames after which a file is closed (0: no limit).
    pub max_frames: u64,
    /// Milliseconds after which a new file starts at the next keyframe.
    pub interval: Option<u64>,
    /// `record_notify`: tell the publisher (`NetStream.Record.Start/Stop/Failed`).
    pub notify: bool,
}

/// Local time, broken down (the caller has the time zone).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tm {
    pub year: i32,
    /// 1..=12
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// 0 = Sunday
    pub weekday: u32,
    /// 0..=365
    pub yearday: u32,
    /// Seconds east of UTC (the access log's `$time_local`).
    pub gmtoff: i32,
}

/// The time when something happens: a millisecond clock, and the wall clock for names.
#[derive(Clone, Copy, Debug, Default)]
pub struct Now {
    pub ms: u64,
    pub unix: i64,
    pub local: Tm,
}

/// What the files are: real ones (the glue), or memory (tests).
pub trait Files {
    /// Opens `path` for writing: emptied, or (`append`) kept as it is; returns its size.
    /// `lock`: hold a write lock on it while it is open.
    fn open(&mut self, path: &str, append: bool, lock: bool) -> io::Result<u64>;
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Cuts the file to `len` bytes (after a failed write).
    fn truncate(&mut self, len: u64) -> io::Result<()>;
    fn close(&mut self) -> io::Result<()>;
}

impl<T: Files + ?Sized> Files for Box<T> {
    fn open(&mut self, path: &str, append: bool, lock: bool) -> io::Result<u64> {
        (**self).open(path, append, lock)
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        (**self).read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        (**self).write_at(offset, data)
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        (**self).truncate(len)
    }
    fn close(&mut self) -> io::Result<()> {
        (**self).close()
    }
}

/// What the caller should act on (log, tell the publisher, call `on_record_done`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    Started { path: String },
    /// A file is complete.
    Done { path: String },
    /// Recording to `path` stopped on an error (said once per file).
    Failed { path: String, why: String },
}

struct File {
    path: String,
    offset: u64,
    /// When it was opened (for `record_interval`).
    opened_ms: u64,
    /// The stream timestamp that is 0 in this file (once the first tag is written).
    epoch: Option<u32>,
    /// Where timestamps continue from (the last tag's, when appending).
    shift: u32,
    last_ts: u32,
    frames: u64,
    audio: bool,
    video: bool,
    audio_header: bool,
    video_header: bool,
    keyframe_seen: bool,
    /// Where the metadata's `duration` and `filesize` numbers are.
    patch: Option<(u64, u64)>,
}

/// How long a recorder waits before trying a new file after a failure, at first and at
/// most (doubling in between).
const RETRY_MIN_MS: u64 = 10_000;
const RETRY_MAX_MS: u64 = 60_000;

pub struct Recorder<F: Files> {
    cfg: Config,
    files: F,
    name: String,
    file: Option<File>,
    /// A file failed (a full disk, say): the next is tried `backoff` later (at a
    /// keyframe), appending to the failed one if it has the same name, so that nothing
    /// written is lost; each try that fails is reported once, and waits twice as long.
    failed: bool,
    retry_at: Option<u64>,
    backoff: u64,
    /// The file that failed (it is appended to when the retry has its name).
    resume: Option<String>,
    /// Manual recorders: started by the control API.
    started: bool,
    notices: Vec<Notice>,
    metadata: Option<Bytes>,
    video_header: Option<(u32, Bytes)>,
    audio_header: Option<(u32, Bytes)>,
    /// Whether the stream has had any video yet.
    seen_video: bool,
}

/// `ngx_escape_uri(..., NGX_ESCAPE_URI_COMPONENT)`: all but letters, digits, `-._~`.
fn escape_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `strftime` for the conversions a file name needs (unknown ones are kept as written).
pub fn strftime(pattern: &str, t: &Tm, unix: i64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let mut out = String::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(spec) = chars.next() else {
            out.push('%');
            break;
        };
        let s = match spec {
            'Y' => format!("{:04}", t.year),
            'y' => format!("{:02}", t.year.rem_euclid(100)),
            'm' => format!("{:02}", t.month),
            'd' => format!("{:02}", t.day),
            'e' => format!("{:2}", t.day),
            'H' => format!("{:02}", t.hour),
            'I' => format!("{:02}", (t.hour + 11) % 12 + 1),
            'M' => format!("{:02}", t.minute),
            'S' => format!("{:02}", t.second),
            'p' => (if t.hour < 12 { "AM" } else { "PM" }).to_owned(),
            'j' => format!("{:03}", t.yearday + 1),
            'a' => DAYS[(t.weekday % 7) as usize].to_owned(),
            'b' | 'h' => MONTHS[(t.month.clamp(1, 12) - 1) as usize].to_owned(),
            'F' => format!("{:04}-{:02}-{:02}", t.year, t.month, t.day),
            'T' => format!("{:02}:{:02}:{:02}", t.hour, t.minute, t.second),
            'R' => format!("{:02}:{:02}", t.hour, t.minute),
            's' => unix.to_string(),
            '%' => "%".to_owned(),
            other => format!("%{other}"),
        };
        out.push_str(&s);
    }
    out
}

/// The file a recorder writes for stream `name`: `PATH/NAME[-UNIXTIME]SUFFIX`, the suffix
/// through `strftime` when it has a `%`, as nginx-rtmp-module names them.
pub fn file_path(cfg: &Config, name: &str, now: &Now) -> String {
    let mut p = format!("{}/{}", cfg.path.trim_end_matches('/'), escape_component(name));
    if cfg.unique {
        p.push_str(&format!("-{}", now.unix));
    }
    if cfg.suffix.contains('%') {
        p.push_str(&strftime(&cfg.suffix, &now.local, now.unix));
    } else {
        p.push_str(&cfg.suffix);
    }
    p
}

impl<F: Files> Recorder<F> {
    pub fn new(cfg: Config, name: &str, files: F) -> Self {
        Recorder {
            cfg,
            files,
            name: name.to_owned(),
            file: None,
            failed: false,
            retry_at: None,
            backoff: RETRY_MIN_MS,
            resume: None,
            started: false,
            notices: Vec::new(),
            metadata: None,
            video_header: None,
            audio_header: None,
            seen_video: false,
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    pub fn files(&self) -> &F {
        &self.files
    }

    #[cfg(test)]
    pub fn files_mut(&mut self) -> &mut F {
        &mut self.files
    }

    /// The file being written, if any.
    pub fn current(&self) -> Option<&str> {
        self.file.as_ref().map(|f| f.path.as_str())
    }

    /// The publisher's metadata (`onMetaData` as players get it): kept for the next file.
    pub fn metadata(&mut self, payload: Bytes) {
        self.metadata = Some(payload);
    }

    /// A manual recorder's start (the control API). Returns the file it will write.
    pub fn start(&mut self, now: &Now) -> Option<String> {
        self.started = true;
        self.failed = false;
        self.retry_at = None;
        self.backoff = RETRY_MIN_MS;
        self.open(now);
        self.current().map(str::to_owned)
    }

    /// A manual recorder's stop. Returns the file it closed.
    pub fn stop(&mut self) -> Option<String> {
        self.started = false;
        let path = self.current().map(str::to_owned);
        self.close();
        path
    }

    /// The publisher stopped: the file is completed.
    pub fn finish(&mut self) {
        self.close();
    }

    fn fail(&mut self, why: String) {
        self.failed = true;
        if let Some(f) = self.file.take() {
            let _ = self.files.truncate(f.offset);
            let _ = self.files.close();
            self.resume = Some(f.path.clone());
            self.notices.push(Notice::Failed { path: f.path, why });
        }
    }

    /// Whether a new file may be opened now: always, unless one failed; then once its
    /// backoff has passed (counted from the first frame after the failure).
    fn may_open(&mut self, now: &Now) -> bool {
        if !self.failed {
            return true;
        }
        match self.retry_at {
            None => {
                self.retry_at = Some(now.ms + self.backoff);
                false
            }
            Some(at) if now.ms >= at => {
                self.retry_at = None;
                self.backoff = (self.backoff * 2).min(RETRY_MAX_MS);
                true
            }
            Some(_) => false,
        }
    }

    fn open(&mut self, now: &Now) {
        if self.file.is_some() {
            return;
        }
        let path = file_path(&self.cfg, &self.name, now);
        // After a failure, a file of the same name is continued, never overwritten.
        let append = self.cfg.append || self.resume.as_deref() == Some(path.as_str());
        let size = match self.files.open(&path, append, self.cfg.lock) {
            Ok(size) => size,
            Err(e) => {
                self.failed = true;
                self.notices.push(Notice::Failed { why: format!("cannot open {path}: {e}"), path });
                return;
            }
        };
        let mut file = File {
            path,
            offset: 0,
            opened_ms: now.ms,
            epoch: None,
            shift: 0,
            last_ts: 0,
            frames: 0,
            audio: false,
            video: false,
            audio_header: false,
            video_header: false,
            keyframe_seen: false,
            patch: None,
        };
        if append && size > 0 {
            match self.read_end(size) {
                Ok((last, patch)) => {
                    // Continue a little after the last tag, so that no track's next frame
                    // comes before its last one.
                    let shift = last.saturating_add(APPEND_GAP_MS);
                    file.offset = size;
                    file.shift = shift;
                    file.last_ts = shift;
                    file.patch = patch;
                }
                Err(why) => {
                    let _ = self.files.close();
                    self.failed = true;
                    self.notices.push(Notice::Failed { why: format!("cannot append to {}: {why}", file.path), path: file.path });
                    return;
                }
            }
        }
        self.notices.push(Notice::Started { path: file.path.clone() });
        self.file = Some(file);
        self.failed = false;
        self.resume = None;
    }

    /// For appending: the last tag's timestamp (where this recording continues), and where
    /// the metadata numbers of the file's first tag are.
    fn read_end(&mut self, size: u64) -> Result<(u32, Option<(u64, u64)>), String> {
        if size < flv::HEADER_LEN + 15 {
            return Err("too short for an FLV file".into());
        }
        let mut b4 = [0u8; 4];
        self.files.read_at(size - 4, &mut b4).map_err(|e| e.to_string())?;
        let tag_size = u32::from_be_bytes(b4) as u64;
        if tag_size < 11 || tag_size + 4 > size - flv::HEADER_LEN {
            return Err("it does not end with a complete tag".into());
        }
        let mut h = [0u8; 11];
        self.files.read_at(size - 4 - tag_size, &mut h).map_err(|e| e.to_string())?;
        let (_, len, ts) = flv::parse_tag_header(&h);
        if len as u64 + 11 != tag_size {
            return Err("it does not end with a complete tag".into());
        }
        let mut first = vec![0u8; 2048.min((size - flv::HEADER_LEN) as usize)];
        self.files.read_at(flv::HEADER_LEN, &mut first).map_err(|e| e.to_string())?;
        let patch = if first[0] == flv::SCRIPT {
            let (_, len, _) = flv::parse_tag_header(first[..11].try_into().expect("11"));
            let tag = &first[..(11 + len as usize).min(first.len())];
            match (flv::find_number(tag, "duration"), flv::find_number(tag, "filesize")) {
                (Some(d), Some(f)) if d + 8 <= tag.len() && f + 8 <= tag.len() => {
                    Some((flv::HEADER_LEN + d as u64, flv::HEADER_LEN + f as u64))
                }
                _ => None,
            }
        } else {
            None
        };
        Ok((ts, patch))
    }

    fn close(&mut self) {
        let Some(f) = self.file.take() else { return };
        let mut result = Ok(());
        if f.epoch.is_some() {
            let duration = f.last_ts as f64 / 1000.0;
            result = self
                .files
                .write_at(4, &[flv::av_flags(f.audio, f.video)])
                .and_then(|_| match f.patch {
                    Some((d, s)) => self
                        .files
                        .write_at(d, &duration.to_be_bytes())
                        .and_then(|_| self.files.write_at(s, &(f.offset as f64).to_be_bytes())),
                    None => Ok(()),
                });
        }
        let closed = self.files.close();
        match result.and(closed) {
            Ok(()) => self.notices.push(Notice::Done { path: f.path }),
            Err(e) => {
                self.failed = true;
                self.notices.push(Notice::Failed { why: format!("cannot complete {}: {e}", f.path), path: f.path });
            }
        }
    }

    /// Appends one tag; false (and the file closed) if writing failed.
    fn write(&mut self, kind: u8, timestamp: u32, body: &[u8]) -> bool {
        let Some(f) = self.file.as_mut() else { return false };
        let tag = flv::tag(kind, timestamp, body);
        match self.files.write_at(f.offset, &tag) {
            Ok(()) => {
                f.offset += tag.len() as u64;
                // (Writing works: the next failure waits the shortest time again. Not on
                // opening: on a full disk, opening works and writing does not.)
                self.backoff = RETRY_MIN_MS;
                true
            }
            Err(e) => {
                let why = format!("cannot write {}: {e}", f.path);
                self.fail(why);
                false
            }
        }
    }

    /// Audio, video or metadata from the publisher.
    pub fn frame(&mut self, f: &Frame, now: &Now) {
        let (kind, timestamp, body) = (f.kind, f.timestamp, &f.payload);
        if kind == MediaKind::Data {
            return self.metadata(body.clone());
        }
        let (keyframe, header, needs_header) = (f.keyframe, f.is_header(), f.needs_header());
        if header {
            self.seen_video |= kind == MediaKind::Video;
            let slot = if kind == MediaKind::Video { &mut self.video_header } else { &mut self.audio_header };
            *slot = Some((timestamp, body.clone()));
            // A new sequence header goes into the open file too (a codec change).
            if let Some(f) = self.file.as_mut() {
                if f.epoch.is_some() {
                    match kind {
                        MediaKind::Video if self.cfg.video || self.cfg.keyframes => f.video_header = false,
                        MediaKind::Audio if self.cfg.audio => f.audio_header = false,
                        _ => {}
                    }
                }
            }
            return;
        }
        let records_video = self.cfg.video || self.cfg.keyframes;
        self.seen_video |= kind == MediaKind::Video;
        // Where a new file may start: a video keyframe; an audio frame when the recorder
        // records no video or the stream has none (nginx-rtmp-module never starts a file
        // of an audio-only stream with `record all`).
        let brk = match kind {
            MediaKind::Video => keyframe,
            _ => !self.cfg.video || !self.seen_video,
        };
        if brk && !self.cfg.manual {
            match (self.cfg.interval, self.file.as_ref().map(|f| f.opened_ms)) {
                (Some(every), Some(opened)) if now.ms >= opened + every => {
                    self.close();
                    self.open(now);
                }
                (_, None) if self.may_open(now) => self.open(now),
                _ => {}
            }
        }
        let wanted = match kind {
            MediaKind::Audio => self.cfg.audio,
            _ => self.cfg.video || (self.cfg.keyframes && keyframe),
        };
        let Some(f) = self.file.as_mut() else { return };
        if !wanted || (self.cfg.manual && !brk && f.frames == 0) {
            return;
        }
        let epoch = *f.epoch.get_or_insert(timestamp.wrapping_sub(f.shift));
        if f.offset == 0 {
            let mut start = flv::header(self.cfg.audio, records_video).to_vec();
            let (meta, d, s) = flv::metadata(self.metadata.as_deref());
            f.patch = Some((flv::HEADER_LEN + d as u64, flv::HEADER_LEN + s as u64));
            start.extend_from_slice(&meta);
            if let Err(e) = self.files.write_at(0, &start) {
                let why = format!("cannot write {}: {e}", f.path);
                return self.fail(why);
            }
            f.offset = start.len() as u64;
        }
        // Codec headers first (at this file's current time), then the frame.
        let ts = {
            let t = timestamp.wrapping_sub(epoch);
            if (t as i32) < 0 { 0 } else { t }
        };
        let ts = ts.max(f.last_ts);
        let (need_video_header, need_audio_header) = (
            records_video && !f.video_header && self.video_header.is_some(),
            self.cfg.audio && !f.audio_header && self.audio_header.is_some(),
        );
        for (is_video, need) in [(false, need_audio_header), (true, need_video_header)] {
            if !need {
                continue;
            }
            let (k, body) = if is_video {
                (flv::VIDEO, self.video_header.as_ref().map(|(_, b)| b.clone()))
            } else {
                (flv::AUDIO, self.audio_header.as_ref().map(|(_, b)| b.clone()))
            };
            let body = body.expect("checked");
            if !self.write(k, ts, &body) {
                return;
            }
            let f = self.file.as_mut().expect("written");
            f.last_ts = ts;
            if is_video {
                f.video_header = true;
            } else {
                f.audio_header = true;
            }
        }
        let f = self.file.as_mut().expect("open");
        match kind {
            MediaKind::Video => {
                if needs_header && !f.video_header {
                    return;
                }
                f.keyframe_seen |= keyframe;
                if !f.keyframe_seen {
                    return;
                }
                f.video = true;
            }
            _ => {
                if needs_header && !f.audio_header {
                    return;
                }
                f.audio = true;
            }
        }
        f.last_ts = ts;
        let k = if kind == MediaKind::Video { flv::VIDEO } else { flv::AUDIO };
        if !self.write(k, ts, body) {
            return;
        }
        let f = self.file.as_mut().expect("written");
        f.frames += 1;
        if (self.cfg.max_size > 0 && f.offset >= self.cfg.max_size) || (self.cfg.max_frames > 0 && f.frames >= self.cfg.max_frames) {
            self.close();
        }
    }
}
