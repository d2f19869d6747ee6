//! A stream's samples on their way into fMP4 segments (`hls_format fmp4`): the tracks
//! (their codec records, hence the init segment), each track's samples since the last
//! fragment, and their durations. A sample's duration is known when the next one of its
//! track arrives, or when the segment it is in ends; [`Cmaf::fragment`] writes what is
//! complete as one `moof` + `mdat`.

use super::fmp4::{self, AudioTrack, Run, Sample, VideoTrack, AUDIO_TRACK, VIDEO_TRACK};

/// One track's samples waiting for the next fragment.
#[derive(Default)]
struct Queue {
    /// Decode time of the first sample (in the track's timescale).
    base: u64,
    samples: Vec<Sample>,
    data: Vec<u8>,
    /// The last sample, whose duration is not known yet: (decode time, sample).
    pending: Option<(u64, Sample, Vec<u8>)>,
}

impl Queue {
    /// Completes the pending sample with the decode time of what follows it.
    fn complete(&mut self, next: u64) {
        if let Some((dt, mut s, bytes)) = self.pending.take() {
            s.duration = next.saturating_sub(dt).min(u64::from(u32::MAX)) as u32;
            if self.samples.is_empty() {
                self.base = dt;
            }
            self.samples.push(s);
            self.data.extend_from_slice(&bytes);
        }
    }

    fn push(&mut self, dt: u64, s: Sample, bytes: &[u8]) {
        self.complete(dt);
        self.pending = Some((dt, s, bytes.to_vec()));
    }

    fn bytes(&self) -> usize {
        self.data.len() + self.pending.as_ref().map_or(0, |p| p.2.len())
    }
}

#[derive(Default)]
pub struct Cmaf {
    video: Option<VideoTrack>,
    audio: Option<AudioTrack>,
    /// The tracks the last init segment was written for.
    written: Option<(Option<VideoTrack>, Option<AudioTrack>)>,
    vq: Queue,
    aq: Queue,
    /// The next audio sample's decode time, counted in samples (`hls_sync`).
    audio_next: Option<u64>,
    /// The last audio sample's nominal duration (for the last one of a segment).
    audio_nominal: u32,
    sequence: u32,
}

impl Cmaf {
    pub fn set_video(&mut self, v: Option<VideoTrack>) {
        self.video = v;
    }

    pub fn set_audio(&mut self, a: Option<AudioTrack>) {
        if self.audio != a {
            self.audio_next = None;
        }
        self.audio = a;
    }

    pub fn audio(&self) -> Option<&AudioTrack> {
        self.audio.as_ref()
    }

    pub fn has_video(&self) -> bool {
        self.video.is_some()
    }

    /// The init segment, when the tracks differ from those of the last one written (a
    /// new segment starts with it).
    pub fn new_init(&mut self) -> Option<Vec<u8>> {
        if self.video.is_none() && self.audio.is_none() {
            return None;
        }
        let now = (self.video.clone(), self.audio.clone());
        if self.written.as_ref() == Some(&now) {
            return None;
        }
        let bytes = fmp4::init(now.0.as_ref(), now.1.as_ref());
        self.written = Some(now);
        Some(bytes)
    }

    /// The last init segment was not written: the next segment writes it again.
    pub fn forget_init(&mut self) {
        self.written = None;
    }

    /// Whether the tracks changed since the last init segment.
    pub fn changed(&self) -> bool {
        self.written.as_ref().is_some_and(|(v, a)| *v != self.video || *a != self.audio)
    }

    pub fn video_track(&self) -> Option<&VideoTrack> {
        self.video.as_ref()
    }

    /// Where the next audio sample goes (the end of the last one), in the track's timescale.
    pub fn audio_end(&self) -> Option<u64> {
        self.audio_next
    }

    /// A video frame as its track stores it (length-prefixed NAL units); times in 90 kHz.
    pub fn video(&mut self, dts: u64, pts: u64, sync: bool, data: &[u8]) {
        let cts = (pts as i64 - dts as i64).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
        self.vq.push(dts, Sample { duration: 0, size: data.len() as u32, sync, cts }, data);
    }

    /// An audio frame at `ms` (stream time); its decode time is counted in samples while
    /// the publisher's timestamps stay within `sync_ms` of that count. Returns that decode
    /// time (in the track's timescale).
    pub fn audio_frame(&mut self, ms: u64, sync_ms: u64, data: &[u8]) -> Option<u64> {
        let Some(track) = &self.audio else { return None };
        let rate = u64::from(track.timescale());
        let nominal = match track {
            AudioTrack::Aac { .. } => 1024,
            AudioTrack::Opus { .. } => fmp4::opus_duration(data),
        };
        let from_ts = ms * rate / 1000;
        let dt = match self.audio_next {
            Some(next) if next.abs_diff(from_ts) <= sync_ms.max(1) * rate / 1000 => next,
            _ => from_ts,
        };
        self.audio_next = Some(dt + u64::from(nominal));
        self.audio_nominal = nominal;
        self.aq.push(dt, Sample { duration: 0, size: data.len() as u32, sync: true, cts: 0 }, data);
        Some(dt)
    }

    /// Bytes waiting for a fragment.
    pub fn buffered(&self) -> usize {
        self.vq.bytes() + self.aq.bytes()
    }

    /// Appends a fragment of the complete samples to `out`. `end` (90 kHz): the segment
    /// ends there, so the last samples are complete too (video up to `end`, audio by its
    /// frame size).
    pub fn fragment(&mut self, end: Option<u64>, out: &mut Vec<u8>) {
        if let Some(end) = end {
            if let Some((dt, ..)) = &self.vq.pending {
                let dt = *dt;
                // (A last frame at or after the cut lasts one 90 kHz tick.)
                self.vq.complete(end.max(dt + 1));
            }
            if let Some((dt, ..)) = &self.aq.pending {
                let dt = *dt + u64::from(self.audio_nominal.max(1));
                self.aq.complete(dt);
            }
        }
        let mut runs = Vec::with_capacity(2);
        if !self.vq.samples.is_empty() {
            runs.push(Run { track: VIDEO_TRACK, base: self.vq.base, samples: &self.vq.samples, data: &self.vq.data });
        }
        if !self.aq.samples.is_empty() {
            runs.push(Run { track: AUDIO_TRACK, base: self.aq.base, samples: &self.aq.samples, data: &self.aq.data });
        }
        if runs.is_empty() {
            return;
        }
        self.sequence = self.sequence.wrapping_add(1);
        fmp4::fragment(self.sequence, &runs, out);
        for q in [&mut self.vq, &mut self.aq] {
            q.samples.clear();
            q.data.clear();
        }
    }

    /// Drops what is waiting (a segment that could not be written).
    pub fn discard(&mut self) {
        for q in [&mut self.vq, &mut self.aq] {
            q.samples.clear();
            q.data.clear();
            q.pending = None;
        }
    }
}
