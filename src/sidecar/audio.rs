//! One AAC-to-Opus transcoder per stream, shared by the WHEP sessions playing it (all on
//! the sidecar's thread). Transcoding costs about 1% of a core per stream (AAC 128k
//! stereo to Opus 96k: 1.15 s of CPU per 120 s of audio with the same FFmpeg libraries,
//! measured with ffmpeg on this machine), so a hundred viewers of one stream would
//! otherwise spend a core on the same work.
//!
//! Every session of a stream gets the same AAC frames with the same timestamps (the
//! worker's fan-out encodes each frame once for all its players), at its own pace: the
//! first session to bring a frame transcodes it, the others find it done. Opus packets
//! wait in a short ring; each session sends those up to its own frame's time, from where
//! it joined.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::{Rc, Weak};

use bytes::Bytes;

use crate::whip::opus::Encoder;

/// Opus packets kept for sessions behind the first (20 ms each: 5 s).
const RING: usize = 250;
/// A frame further back than this is a new timeline, not one already transcoded (48 kHz).
const BACK: i32 = 48_000 * 5;
/// A session sends packets up to this far past its own frame's time (48 kHz: 40 ms).
const AHEAD: u32 = 1_920;

pub struct Shared {
    asc: Bytes,
    enc: Encoder,
    last_in: Option<u32>,
    ring: VecDeque<(u32, Bytes)>,
}

thread_local! {
    /// The streams' transcoders, by `APP/NAME` (dead entries are swept at each insert).
    static BY_STREAM: RefCell<HashMap<String, Weak<RefCell<Shared>>>> = RefCell::new(HashMap::new());
}

/// A session's view: the stream's transcoder and what it has sent of it.
pub struct Audio {
    key: String,
    bitrate: u32,
    shared: Option<Rc<RefCell<Shared>>>,
    cursor: Option<u32>,
}

/// Whether `a` is after `b` on a wrapping 32-bit clock.
fn after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

impl Audio {
    /// `key`: the stream (`APP/NAME`); `bitrate`: `whep_audio_bitrate`.
    pub fn new(key: String, bitrate: u32) -> Self {
        Audio { key, bitrate, shared: None, cursor: None }
    }

    /// The stream's transcoder for this configuration: the one the other sessions use,
    /// or a new one.
    fn attach(&mut self, asc: &Bytes) -> Result<Rc<RefCell<Shared>>, String> {
        if let Some(s) = &self.shared {
            if &s.borrow().asc == asc {
                return Ok(s.clone());
            }
        }
        self.cursor = None;
        let found = BY_STREAM.with(|m| m.borrow().get(&self.key).and_then(Weak::upgrade)).filter(|s| &s.borrow().asc == asc);
        let s = match found {
            Some(s) => s,
            None => {
                // Opus with the source's channels (mono stays mono).
                let channels = crate::media::config::aac(asc).map_or(2, |c| if c.channels == 1 { 1 } else { 2 });
                let enc = Encoder::new(asc, channels, self.bitrate)?;
                let s = Rc::new(RefCell::new(Shared { asc: asc.clone(), enc, last_in: None, ring: VecDeque::new() }));
                BY_STREAM.with(|m| {
                    let mut m = m.borrow_mut();
                    m.retain(|_, w| w.strong_count() > 0);
                    m.insert(self.key.clone(), Rc::downgrade(&s));
                });
                s
            }
        };
        self.shared = Some(s.clone());
        Ok(s)
    }

    /// One AAC frame of the stream at `ts` (48 kHz): the Opus packets this session sends
    /// now, with their RTP times.
    pub fn frame(&mut self, ts: u32, asc: &Bytes, aac: &[u8]) -> Result<Vec<(u32, Bytes)>, String> {
        let shared = self.attach(asc)?;
        let mut s = shared.borrow_mut();
        let done = s.last_in.is_some_and(|l| {
            let d = ts.wrapping_sub(l) as i32;
            d <= 0 && d > -BACK
        });
        if !done {
            s.last_in = Some(ts);
            // (A frame that does not decode loses itself only.)
            if s.enc.push(ts, aac).is_ok() {
                while let Some((t, p)) = s.enc.pull() {
                    s.ring.push_back((t, Bytes::from(p)));
                    if s.ring.len() > RING {
                        s.ring.pop_front();
                    }
                }
            }
        }
        // A session starts at its own frame's time; then sends what follows its cursor.
        let from = *self.cursor.get_or_insert(ts.wrapping_sub(1));
        let until = ts.wrapping_add(AHEAD);
        let out: Vec<(u32, Bytes)> = s.ring.iter().filter(|(t, _)| after(*t, from) && !after(*t, until)).cloned().collect();
        if let Some((t, _)) = out.last() {
            self.cursor = Some(*t);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::whip::opus::testing::aac_sine;

    #[test]
    fn wrapping_order() {
        assert!(after(5, 3) && !after(3, 5) && !after(3, 3));
        assert!(after(2, u32::MAX - 2), "across the wrap");
    }

    #[test]
    fn sessions_of_a_stream_share_one_transcoder_and_each_gets_every_packet_once() {
        let (asc, aus) = aac_sine(100);
        let asc = Bytes::from(asc);
        let (mut a, mut b) = (Audio::new("live/x".into(), 64_000), Audio::new("live/x".into(), 64_000));
        let mut other = Audio::new("live/y".into(), 64_000);
        let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
        for (i, (ms, au)) in aus.iter().enumerate() {
            let ts = *ms as u32 * 48;
            got_a.extend(a.frame(ts, &asc, au).unwrap());
            // b joins at the 20th frame, and runs 3 frames behind a.
            if i >= 23 {
                let (ms_b, au_b) = &aus[i - 3];
                got_b.extend(b.frame(*ms_b as u32 * 48, &asc, au_b).unwrap());
            }
            if i == 0 {
                other.frame(ts, &asc, au).unwrap();
            }
        }
        assert!(Rc::ptr_eq(a.shared.as_ref().unwrap(), b.shared.as_ref().unwrap()), "one transcoder for live/x");
        assert!(!Rc::ptr_eq(a.shared.as_ref().unwrap(), other.shared.as_ref().unwrap()), "another for live/y");
        let steps = |v: &[(u32, Bytes)]| v.windows(2).all(|w| w[1].0.wrapping_sub(w[0].0) == 960);
        assert!(got_a.len() > 80 && steps(&got_a), "a: {} packets", got_a.len());
        assert!(got_b.len() > 60 && steps(&got_b), "b: {} packets", got_b.len());
        // b's packets are a's from where b joined (the same bytes, not transcoded again).
        let at = got_a.iter().position(|p| p.0 == got_b[0].0).expect("b's first packet is one of a's");
        assert_eq!(&got_a[at..at + got_b.len()], &got_b[..]);
        // When the last session leaves, the stream's transcoder goes.
        drop((a, b));
        assert!(BY_STREAM.with(|m| m.borrow().get("live/x").is_none_or(|w| w.upgrade().is_none())));
    }
}
