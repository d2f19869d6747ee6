//! WHEP's pure part: an RTMP stream's FLV tags turned into what a WebRTC viewer is sent:
//! H.264 access units in Annex B with the parameter sets in front of every keyframe (a
//! browser joining or recovering decodes from any IDR), Opus packets as they are, each
//! with its RTP timestamp (90 kHz video at its presentation time, 48 kHz audio).
//! Everything else (other codecs, metadata, truncated tags) yields nothing.

use bytes::{BufMut, Bytes, BytesMut};

use crate::media::config::{self, VideoConfig};

use crate::media::{Codec, Frame, MediaKind, Part};

/// What one FLV tag becomes.
#[derive(Debug, PartialEq)]
pub enum Out {
    /// One H.264 access unit (Annex B) at RTP time `ts` (90 kHz).
    Video { ts: u32, keyframe: bool, annexb: Bytes },
    /// One Opus packet at RTP time `ts` (48 kHz).
    Opus { ts: u32, packet: Bytes },
    /// AAC (an RTMP publisher's audio) at RTP time `ts` (48 kHz), with the stream's
    /// AudioSpecificConfig: for the transcoder.
    Aac { ts: u32, asc: Bytes, frame: Bytes },
}

/// The largest access unit passed on (as WHIP's depacketizer).
const MAX_AU: usize = 8 << 20;

#[derive(Default)]
pub struct Prep {
    avc: Option<VideoConfig>,
    asc: Option<Bytes>,
    /// Why video is not passed on (for the session's log), once.
    pub refused_video: Option<&'static str>,
    /// Coded H.264 frames seen, and the last one's presentation time.
    pub video_frames: u64,
    last_pts: Option<i64>,
    /// A frame came to be presented before the one decoded ahead of it: the stream has
    /// B-frames, which browsers' WebRTC decoders do not take (they show frames in decode
    /// order). Such frames are never passed on (`frame` answers None from then on).
    pub bframes: bool,
}

impl Prep {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the stream's AVC configuration has been seen (video can be sent).
    pub fn has_video_config(&self) -> bool {
        self.avc.is_some()
    }

    /// One message of the stream being played.
    pub fn frame(&mut self, f: &Frame) -> Option<Out> {
        let data = f.payload.get(f.data_at..)?;
        match (f.kind, f.codec, f.part) {
            (MediaKind::Video, Codec::Avc, Part::Header) => {
                self.avc = config::avc(data).filter(|c| !c.parameter_sets.is_empty());
                None
            }
            (MediaKind::Video, Codec::Avc, Part::Coded) => {
                let pts = i64::from(f.timestamp) + i64::from(f.cts);
                self.video_frames += 1;
                if self.last_pts.is_some_and(|l| pts < l) {
                    self.bframes = true;
                }
                self.last_pts = Some(pts);
                if self.bframes {
                    return None;
                }
                let cfg = self.avc.as_ref()?;
                let mut au = BytesMut::with_capacity(data.len() + 64);
                if f.keyframe {
                    for ps in &cfg.parameter_sets {
                        au.put_slice(&[0, 0, 0, 1]);
                        au.put_slice(ps);
                    }
                }
                let n = cfg.nal_length_size;
                let mut rest = data;
                while !rest.is_empty() {
                    let len = rest.get(..n)?.iter().fold(0usize, |a, b| a << 8 | usize::from(*b));
                    let nal = rest.get(n..n + len)?;
                    rest = &rest[n + len..];
                    // Parameter sets in the frame itself are sent where they are; an
                    // access unit delimiter is not sent (the payloader drops it anyway).
                    if nal.is_empty() || nal[0] & 0x1f == 9 {
                        continue;
                    }
                    au.put_slice(&[0, 0, 0, 1]);
                    au.put_slice(nal);
                    if au.len() > MAX_AU {
                        return None;
                    }
                }
                Some(Out::Video { ts: (pts as u32).wrapping_mul(90), keyframe: f.keyframe, annexb: au.freeze() })
            }
            (MediaKind::Video, Codec::Hevc | Codec::Av1 | Codec::Vp9, _) => {
                self.refused_video.get_or_insert("the stream's video is not H.264");
                None
            }
            (MediaKind::Audio, Codec::Opus, Part::Coded) if !data.is_empty() => {
                Some(Out::Opus { ts: f.timestamp.wrapping_mul(48), packet: f.payload.slice(f.data_at..) })
            }
            (MediaKind::Audio, Codec::Aac, Part::Header) => {
                self.asc = Some(f.payload.slice(f.data_at..));
                None
            }
            (MediaKind::Audio, Codec::Aac, Part::Coded) if !data.is_empty() => {
                let asc = self.asc.clone()?;
                Some(Out::Aac { ts: f.timestamp.wrapping_mul(48), asc, frame: f.payload.slice(f.data_at..) })
            }
            _ => None,
        }
    }
}

/// How much faster than real time the media held while a viewer connected goes out.
pub const CATCH_UP: u64 = 4;

/// A connecting viewer's start: the media held from the last keyframe goes out paced
/// (video by its timestamps at [`CATCH_UP`] times real time, audio in its place between
/// them), not in one burst, which a real link would queue and lose; what comes live
/// meanwhile waits behind it. With a 2 s GOP at 4x: the keyframe at once, the GOP in
/// half a second, live after two thirds of one.
pub struct Pacer {
    queue: std::collections::VecDeque<Out>,
    /// When pacing began and the first video timestamp.
    start: Option<(std::time::Instant, u32)>,
}

impl Pacer {
    pub fn new(held: Vec<Out>) -> Self {
        Pacer { queue: held.into(), start: None }
    }

    /// Nothing waits: live media goes straight out.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Live media while the held media is still going out: after it.
    pub fn push(&mut self, o: Out) {
        self.queue.push_back(o);
    }

    fn due(&self, ts: u32) -> Option<std::time::Instant> {
        let (at, t0) = self.start?;
        let ahead = u64::from(ts.wrapping_sub(t0)).min(u64::from(u32::MAX / 2));
        Some(at + std::time::Duration::from_micros(ahead * 1_000_000 / 90_000 / CATCH_UP))
    }

    /// The next piece due by `now`, if any.
    pub fn pop(&mut self, now: std::time::Instant) -> Option<Out> {
        if let Some(Out::Video { ts, .. }) = self.queue.front() {
            let ts = *ts;
            let (_, t0) = *self.start.get_or_insert((now, ts));
            // (A timestamp going back, as at a publisher's restart: no wait.)
            if ts.wrapping_sub(t0) < u32::MAX / 2 && self.due(ts).is_some_and(|d| d > now) {
                return None;
            }
        }
        self.queue.pop_front()
    }

    /// When the next piece is due (None: nothing waits).
    pub fn next_at(&self) -> Option<std::time::Instant> {
        match self.queue.front()? {
            Out::Video { ts, .. } => self.due(*ts).or(Some(std::time::Instant::now())),
            _ => Some(std::time::Instant::now()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(ts: u32, body: &[u8]) -> Frame {
        Frame::parse(MediaKind::Video, ts, Bytes::copy_from_slice(body))
    }

    const SPS: &[u8] = &[0x67, 0x42, 0xc0, 0x1f, 0xda];
    const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];

    fn avc_header() -> Vec<u8> {
        let mut b = vec![0x17, 0, 0, 0, 0, 1, 0x42, 0xc0, 0x1f, 0xff, 0xe1];
        b.extend_from_slice(&(SPS.len() as u16).to_be_bytes());
        b.extend_from_slice(SPS);
        b.push(1);
        b.extend_from_slice(&(PPS.len() as u16).to_be_bytes());
        b.extend_from_slice(PPS);
        b
    }

    #[test]
    fn keyframes_carry_parameter_sets_and_timestamps_are_presentation_times() {
        let mut p = Prep::new();
        // Before the configuration: nothing to send.
        assert_eq!(p.frame(&video(0, &[0x17, 1, 0, 0, 0, 0, 0, 0, 2, 0x65, 0x88])), None);
        assert_eq!(p.frame(&video(0, &avc_header())), None);
        assert!(p.has_video_config());
        // A keyframe with an AUD and an IDR slice, composition time 40 ms.
        let key = [0x17, 1, 0, 0, 40, 0, 0, 0, 2, 0x09, 0xf0, 0, 0, 0, 3, 0x65, 0x88, 0x84];
        let Some(Out::Video { ts, keyframe, annexb }) = p.frame(&video(1000, &key)) else { panic!() };
        assert_eq!((ts, keyframe), (1040 * 90, true));
        let mut want = vec![0, 0, 0, 1];
        want.extend_from_slice(SPS);
        want.extend_from_slice(&[0, 0, 0, 1]);
        want.extend_from_slice(PPS);
        want.extend_from_slice(&[0, 0, 0, 1, 0x65, 0x88, 0x84]);
        assert_eq!(&annexb[..], &want[..]);
        // An inter frame: its slice only.
        let Some(Out::Video { keyframe, annexb, .. }) = p.frame(&video(1050, &[0x27, 1, 0, 0, 0, 0, 0, 0, 2, 0x41, 0x9a])) else { panic!() };
        assert!(!keyframe);
        assert_eq!(&annexb[..], &[0, 0, 0, 1, 0x41, 0x9a]);
        // A length running past the end: the frame is dropped, nothing panics.
        assert_eq!(p.frame(&video(1066, &[0x27, 1, 0, 0, 0, 0, 0, 0, 9, 0x41])), None);
    }

    #[test]
    fn b_frames_are_seen_and_not_passed_on() {
        let mut p = Prep::new();
        p.frame(&video(0, &avc_header()));
        // Decode order I P B: presentation times 80, 200, 120 (cts 80, 120, 0).
        assert!(p.frame(&video(0, &[0x17, 1, 0, 0, 80, 0, 0, 0, 2, 0x65, 0x88])).is_some());
        assert!(p.frame(&video(80, &[0x27, 1, 0, 0, 120, 0, 0, 0, 2, 0x41, 0x9a])).is_some());
        assert!(!p.bframes);
        assert_eq!(p.frame(&video(120, &[0x27, 1, 0, 0, 0, 0, 0, 0, 2, 0x01, 0x9e])), None);
        assert!(p.bframes && p.video_frames == 3);
        // A constant composition offset without reordering is not B-frames.
        let mut q = Prep::new();
        q.frame(&video(0, &avc_header()));
        for i in 0..5u8 {
            q.frame(&video(u32::from(i) * 33, &[0x27, 1, 0, 0, 66, 0, 0, 0, 2, 0x41, 0x9a]));
        }
        assert!(!q.bframes);
    }

    #[test]
    fn opus_as_is_aac_with_its_config_other_codecs_not() {
        let mut p = Prep::new();
        let opus = Frame::parse(MediaKind::Audio, 20, Bytes::from_static(b"\x91Opus\xfc\x01\x02"));
        assert_eq!(p.frame(&opus), Some(Out::Opus { ts: 960, packet: Bytes::from_static(b"\xfc\x01\x02") }));
        let aac = Frame::parse(MediaKind::Audio, 10, Bytes::from_static(b"\xaf\x01\x21\x00"));
        assert_eq!(p.frame(&aac), None, "no AAC before its AudioSpecificConfig");
        p.frame(&Frame::parse(MediaKind::Audio, 0, Bytes::from_static(b"\xaf\x00\x12\x10")));
        assert_eq!(
            p.frame(&aac),
            Some(Out::Aac { ts: 480, asc: Bytes::from_static(b"\x12\x10"), frame: Bytes::from_static(b"\x21\x00") })
        );
        let hevc = Frame::parse(MediaKind::Video, 0, Bytes::from_static(b"\x1c\x01\x00\x00\x00\x00"));
        assert_eq!(p.frame(&hevc), None);
        assert_eq!(p.refused_video, Some("the stream's video is not H.264"));
    }

    #[test]
    fn held_media_goes_out_paced_at_four_times_real_time() {
        use std::time::{Duration, Instant};
        let v = |ms: u32, key: bool| Out::Video { ts: ms * 90, keyframe: key, annexb: Bytes::from_static(b"v") };
        let a = |ms: u32| Out::Opus { ts: ms * 48, packet: Bytes::from_static(b"a") };
        // A 2 s GOP at 10 fps with audio between the pictures.
        let mut held = Vec::new();
        for i in 0..20 {
            held.push(v(1000 + i * 100, i == 0));
            held.push(a(1000 + i * 100 + 50));
        }
        let mut p = Pacer::new(held);
        let t0 = Instant::now();
        // The keyframe and the audio after it at once; the next picture 25 ms later.
        assert!(matches!(p.pop(t0), Some(Out::Video { keyframe: true, .. })));
        assert!(matches!(p.pop(t0), Some(Out::Opus { .. })));
        assert!(p.pop(t0).is_none());
        assert_eq!(p.next_at(), Some(t0 + Duration::from_millis(25)));
        // Live media waits behind what is held.
        p.push(v(3000, false));
        let mut sent = 2;
        let mut last = t0;
        let mut t = t0;
        while !p.is_empty() {
            t += Duration::from_millis(5);
            while p.pop(t).is_some() {
                sent += 1;
                last = t;
            }
        }
        assert_eq!(sent, 41);
        // 2 s of pictures at 4x: half a second.
        assert_eq!(last.duration_since(t0), Duration::from_millis(500));
    }
}
