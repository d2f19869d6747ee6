//! Files played to RTMP players (`play DIR`, nginx-rtmp-module's VOD): an FLV or MP4 file
//! read as FLV tags (metadata, codec headers, frames), paced in real time from a start
//! point, with seeking to the keyframe at or before a time. Sans-IO but for `ReadAt`:
//! the glue's is a file, the tests' a byte vector.

pub mod flv;
pub mod mp4;

use bytes::Bytes;

use crate::media::MediaKind;

/// Random access to a file's bytes.
pub trait ReadAt {
    /// Reads at `offset` into `buf`; fewer bytes only at the end.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize>;
    fn len(&self) -> u64;
}

/// What an `ReadAt` gives as a vector (for tests).
impl ReadAt for Vec<u8> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        let start = (offset as usize).min(self.len());
        let n = buf.len().min(self.len() - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
    }

    fn len(&self) -> u64 {
        Vec::len(self) as u64
    }
}

/// The largest tag or sample read (a bound on what a file can make us allocate).
pub const MAX_TAG: usize = 16 << 20;

/// One FLV tag: its kind, timestamp (ms) and body.
#[derive(Clone, Debug, PartialEq)]
pub struct Tag {
    pub kind: MediaKind,
    pub ts: u32,
    pub body: Bytes,
}

/// A file as FLV tags.
pub trait Source {
    /// What a player gets first: metadata and codec headers.
    fn headers(&self) -> Vec<Tag>;
    /// The next frame, None at the end.
    fn next(&mut self) -> Result<Option<Tag>, String>;
    /// Goes to the keyframe at or before `ms` (the first frame if none); returns its time.
    fn seek(&mut self, ms: u32) -> Result<u32, String>;
    /// The file's duration in ms, when known.
    fn duration(&self) -> Option<u32>;
}

/// Which reader a name asks for (nginx-rtmp-module's: a `flv:`/`mp4:` prefix, else the
/// extension, else FLV with `.flv` appended): (file name, MP4).
pub fn file_name(name: &str) -> (String, bool) {
    if let Some(rest) = name.strip_prefix("mp4:") {
        return (rest.to_owned(), true);
    }
    if let Some(rest) = name.strip_prefix("flv:") {
        return (rest.to_owned(), false);
    }
    let lower = name.to_ascii_lowercase();
    if [".mp4", ".m4v", ".mov", ".f4v"].iter().any(|e| lower.ends_with(e)) {
        return (name.to_owned(), true);
    }
    if lower.ends_with(".flv") {
        return (name.to_owned(), false);
    }
    (format!("{name}.flv"), false)
}

/// Opens `file` as FLV or MP4.
pub fn open(file: Box<dyn ReadAt>, mp4: bool) -> Result<Box<dyn Source>, String> {
    Ok(if mp4 { Box::new(mp4::Mp4::open(file)?) } else { Box::new(flv::Flv::open(file)?) })
}

/// A player's playback of a file: which frames are due when.
pub struct Playback {
    source: Box<dyn Source>,
    /// The media time that plays at `base_ms` of the worker's clock.
    base_media: u32,
    base_ms: u64,
    paused_at: Option<u64>,
    next: Option<Tag>,
    pub ended: bool,
}

impl Playback {
    /// Starts at `start_ms` of the media (0: the beginning).
    pub fn new(mut source: Box<dyn Source>, start_ms: u32, now_ms: u64) -> Result<Playback, String> {
        let at = if start_ms > 0 { source.seek(start_ms)? } else { 0 };
        Ok(Playback { source, base_media: at, base_ms: now_ms, paused_at: None, next: None, ended: false })
    }

    pub fn headers(&self) -> Vec<Tag> {
        self.source.headers()
    }

    pub fn duration(&self) -> Option<u32> {
        self.source.duration()
    }

    /// The frames due by `now_ms`, up to `ahead_ms` ahead of real time and at most `max`.
    pub fn due(&mut self, now_ms: u64, ahead_ms: u64, max: usize) -> Result<Vec<Tag>, String> {
        let mut out = Vec::new();
        if self.paused_at.is_some() || self.ended {
            return Ok(out);
        }
        let horizon = u64::from(self.base_media) + now_ms.saturating_sub(self.base_ms) + ahead_ms;
        while out.len() < max {
            let tag = match self.next.take() {
                Some(t) => t,
                None => match self.source.next()? {
                    Some(t) => t,
                    None => {
                        self.ended = true;
                        break;
                    }
                },
            };
            if u64::from(tag.ts) > horizon {
                self.next = Some(tag);
                break;
            }
            out.push(tag);
        }
        Ok(out)
    }

    /// Seeks to `ms`: returns the keyframe's time it starts from.
    pub fn seek(&mut self, ms: u32, now_ms: u64) -> Result<u32, String> {
        let at = self.source.seek(ms)?;
        self.next = None;
        self.ended = false;
        self.base_media = at;
        self.base_ms = now_ms;
        if self.paused_at.is_some() {
            self.paused_at = Some(now_ms);
        }
        Ok(at)
    }

    pub fn pause(&mut self, pause: bool, now_ms: u64) {
        match (pause, self.paused_at) {
            (true, None) => self.paused_at = Some(now_ms),
            (false, Some(at)) => {
                self.base_ms += now_ms.saturating_sub(at);
                self.paused_at = None;
            }
            _ => {}
        }
    }
}

/// Reads exactly `n` bytes at `offset` (an error at the end of the file).
fn read_exact(f: &dyn ReadAt, offset: u64, n: usize) -> Result<Vec<u8>, String> {
    if n > MAX_TAG {
        return Err(format!("a tag of {n} bytes (at most {MAX_TAG})"));
    }
    let mut buf = vec![0u8; n];
    let mut got = 0;
    while got < n {
        let r = f.read_at(offset + got as u64, &mut buf[got..]).map_err(|e| e.to_string())?;
        if r == 0 {
            return Err("the file ends early".into());
        }
        got += r;
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_pick_the_reader() {
        assert_eq!(file_name("rec"), ("rec.flv".into(), false));
        assert_eq!(file_name("rec.flv"), ("rec.flv".into(), false));
        assert_eq!(file_name("mp4:movie.mp4"), ("movie.mp4".into(), true));
        assert_eq!(file_name("movie.MP4"), ("movie.MP4".into(), true));
        assert_eq!(file_name("flv:old"), ("old".into(), false));
    }
}
