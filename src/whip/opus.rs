//! AAC → Opus for WHEP playback: RTMP publishers send AAC, browsers' WebRTC wants Opus.
//!
//! A safe wrapper over `aac_opus.c`, a small shim on libavcodec and libswresample (FFmpeg
//! ≥ 5.1: the native `aac` decoder, resampling to 48 kHz, `libopus` in 20 ms frames). This
//! file holds every `unsafe` of that transcoder. One per WHEP session (a session is an
//! RTMP player of its own; sharing one per stream across sessions is a later step).
//!
//! Timing: the first AAC frame's time is the Opus timeline's start; from then on the audio
//! is a contiguous 48 kHz timeline. An AAC frame more than half a second away from where
//! the timeline expects it (the publisher's audio stopped, or its clock jumped) starts the
//! transcoder afresh at that frame's time, so audio stays in sync with video either way.

use std::ffi::{c_char, c_int, CStr};
use std::marker::{PhantomData, PhantomPinned};
use std::ptr::NonNull;

use super::aac::av_error;

/// Opus's clock, and the resampler's output rate.
const RATE: u32 = 48_000;
/// A frame further than this from the expected time restarts the timeline (48 kHz samples).
const RESYNC: i64 = RATE as i64 / 2;
/// An Opus packet of 20 ms is at most 1275 bytes per frame (RFC 6716).
const PACKET_MAX: usize = 4000;

/// The shim's `ao_t`, only ever behind a pointer.
#[repr(C)]
struct Ao {
    _opaque: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

// SAFETY: these match the prototypes in aac_opus.c: int =
// c_int, size_t = usize, int64_t = i64, uint8_t = u8. Every function takes the handle
// returned by `ao_new`, alive until `ao_free`, and buffers valid for the lengths passed.
unsafe extern "C" {
    fn ao_new(asc: *const u8, asclen: c_int, channels: c_int, bitrate: c_int, err: *mut c_char, errlen: usize) -> *mut Ao;
    fn ao_push(t: *mut Ao, aac: *const u8, len: c_int) -> c_int;
    fn ao_pull(t: *mut Ao, out: *mut u8, cap: c_int, pts: *mut i64) -> c_int;
    fn ao_free(t: *mut Ao);
}

/// One AAC stream to Opus. Used from a single thread at a time.
pub struct Encoder {
    raw: NonNull<Ao>,
    asc: Vec<u8>,
    channels: u8,
    bitrate: u32,
    /// The timeline's start (48 kHz, the first frame's time) and where the next frame is
    /// expected on it.
    started: bool,
    base: u32,
    expected: i64,
    /// Input samples per AAC frame at 48 kHz (1024 at the stream's rate).
    per_frame: i64,
    out: Box<[u8]>,
}

impl Encoder {
    /// An encoder for the AAC stream whose AudioSpecificConfig is `asc`: Opus with
    /// `channels` (1 or 2) at `bitrate` bit/s.
    pub fn new(asc: &[u8], channels: u8, bitrate: u32) -> Result<Self, String> {
        let cfg = crate::media::config::aac(asc).ok_or("not an AAC AudioSpecificConfig")?;
        let rate = i64::from(cfg.sample_rate().max(1));
        let raw = Self::open(asc, channels, bitrate)?;
        Ok(Encoder {
            raw,
            asc: asc.to_vec(),
            channels,
            bitrate,
            started: false,
            base: 0,
            expected: 0,
            per_frame: 1024 * i64::from(RATE) / rate,
            out: vec![0; PACKET_MAX].into_boxed_slice(),
        })
    }

    fn open(asc: &[u8], channels: u8, bitrate: u32) -> Result<NonNull<Ao>, String> {
        let bitrate = c_int::try_from(bitrate).map_err(|_| format!("Opus bit rate {bitrate} out of range"))?;
        let mut err = [0 as c_char; 256];
        // SAFETY: `asc` is readable for its length (the shim refuses more than 64 bytes),
        // `err` writable for its own; the shim NUL-terminates within it.
        let raw = unsafe { ao_new(asc.as_ptr(), asc.len().min(1 << 16) as c_int, c_int::from(channels), bitrate, err.as_mut_ptr(), err.len()) };
        NonNull::new(raw).ok_or_else(|| {
            // SAFETY: zero-initialised, and snprintf NUL-terminates within the buffer.
            let msg = unsafe { CStr::from_ptr(err.as_ptr()) };
            format!("Opus transcoder: {}", msg.to_string_lossy())
        })
    }

    /// One raw AAC frame at `ts` (48 kHz clock, wrapping). An error loses that frame only.
    pub fn push(&mut self, ts: u32, aac: &[u8]) -> Result<(), String> {
        let at = i64::from(ts.wrapping_sub(self.base) as i32);
        if !self.started {
            self.started = true;
            self.base = ts;
        } else if (at - self.expected).abs() > RESYNC {
            // The stream's audio jumped: a new timeline from here.
            let fresh = Self::open(&self.asc, self.channels, self.bitrate)?;
            // SAFETY: the old handle came from `ao_new` and is freed exactly once, here.
            unsafe { ao_free(std::mem::replace(&mut self.raw, fresh).as_ptr()) };
            self.base = ts;
            self.expected = 0;
        }
        self.expected += self.per_frame;
        let len = c_int::try_from(aac.len()).unwrap_or(c_int::MAX);
        // SAFETY: live handle; `aac` readable for `len` bytes (or rejected before reading).
        let n = unsafe { ao_push(self.raw.as_ptr(), aac.as_ptr(), len) };
        if n < 0 {
            return Err(format!("AAC decode: {}", av_error(n)));
        }
        Ok(())
    }

    /// The next Opus packet ready, if any, with its RTP timestamp (48 kHz).
    pub fn pull(&mut self) -> Option<(u32, Vec<u8>)> {
        let mut pts = 0i64;
        // SAFETY: live handle; `out` writable for the length passed; `pts` a local.
        let n = unsafe { ao_pull(self.raw.as_ptr(), self.out.as_mut_ptr(), self.out.len() as c_int, &mut pts) };
        // (The first packet starts before the first frame by libopus's look-ahead, 6.5 ms:
        // its negative pts keeps every packet's RTP time where its audio is.)
        (n > 0).then(|| (self.base.wrapping_add(pts as u32), self.out[..n as usize].to_vec()))
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        // SAFETY: the handle came from `ao_new` and is freed exactly once, here.
        unsafe { ao_free(self.raw.as_ptr()) };
    }
}

/// AAC test material for this file's tests and the sidecar's (`cfg(test)` only).
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::whip::aac::Transcoder;

    // SAFETY: test helpers in opus_aac.c; prototypes as declared there.
    unsafe extern "C" {
        fn oa_test_opus_sine(channels: c_int, freq: f64, amp: f64, frames: c_int, out: *mut u8, cap: c_int, lens: *mut c_int, maxpkts: c_int) -> c_int;
        fn oa_test_aac_decode(asc: *const u8, asclen: c_int, data: *const u8, lens: *const c_int, n: c_int, out: *mut f32, cap: c_int, channels: *mut c_int) -> c_int;
    }

    pub fn opus_sine(freq: f64, frames: usize) -> Vec<Vec<u8>> {
        let mut buf = vec![0u8; frames * 2000 + 4000];
        let mut lens = vec![0 as c_int; frames + 8];
        // SAFETY: `buf` and `lens` are writable for the capacities passed.
        let n = unsafe { oa_test_opus_sine(2, freq, 0.5, frames as c_int, buf.as_mut_ptr(), buf.len() as c_int, lens.as_mut_ptr(), lens.len() as c_int) };
        assert!(n > 0);
        let mut off = 0;
        lens[..n as usize].iter().map(|&l| { off += l as usize; buf[off - l as usize..off].to_vec() }).collect()
    }

    /// Opus packets (20 ms apart) to AAC frames, through the WHIP transcoder: the
    /// AudioSpecificConfig and (ms, frame).
    pub fn to_aac(packets: &[Vec<u8>]) -> (Vec<u8>, Vec<(u64, Vec<u8>)>) {
        let mut t = Transcoder::new(2, 128_000).unwrap();
        let mut out = Vec::new();
        for (i, p) in packets.iter().enumerate() {
            t.push(i as u32 * 960, p).unwrap();
            while let Some(au) = t.pull() {
                out.push(au);
            }
        }
        (t.asc(), out)
    }

    /// `frames` Opus packets' worth of a 440 Hz sine as AAC.
    pub fn aac_sine(frames: usize) -> (Vec<u8>, Vec<(u64, Vec<u8>)>) {
        to_aac(&opus_sine(440.0, frames))
    }

    pub fn decode(asc: &[u8], aus: &[(u64, Vec<u8>)]) -> Vec<f32> {
        let data: Vec<u8> = aus.iter().flat_map(|(_, a)| a.iter().copied()).collect();
        let lens: Vec<c_int> = aus.iter().map(|(_, a)| a.len() as c_int).collect();
        let mut pcm = vec![0f32; aus.len() * 1024 + 1024];
        let mut ch = 0;
        // SAFETY: inputs readable for the lengths passed, `pcm` writable for its own.
        let n = unsafe { oa_test_aac_decode(asc.as_ptr(), asc.len() as c_int, data.as_ptr(), lens.as_ptr(), lens.len() as c_int, pcm.as_mut_ptr(), pcm.len() as c_int, &mut ch) };
        assert!(n >= 0);
        pcm.truncate(n as usize);
        pcm
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    fn rms(x: &[f32]) -> f64 {
        (x.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / x.len() as f64).sqrt()
    }

    fn crossings_hz(x: &[f32]) -> f64 {
        let c = x.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
        c as f64 * 48_000.0 / x.len() as f64
    }

    #[test]
    fn aac_becomes_opus_that_decodes_to_the_same_sine_with_steady_timestamps() {
        // A 440 Hz sine: Opus → AAC (the WHIP path), then AAC → Opus (this one), then
        // back to AAC to listen to it.
        let (asc, aus) = aac_sine(150);
        let mut e = Encoder::new(&asc, 2, 96_000).unwrap();
        let mut packets = Vec::new();
        for (ms, au) in &aus {
            e.push(1000 * 48 + *ms as u32 * 48, au).unwrap();
            while let Some(p) = e.pull() {
                packets.push(p);
            }
        }
        assert!(packets.len() > 100, "{} Opus packets", packets.len());
        // 20 ms apart on the 48 kHz clock, from the first frame's time on.
        assert!(packets[0].0 >= 48_000 - 1_000 && packets[0].0 < 48_000 + 1_000, "first at {}", packets[0].0);
        let steps: Vec<u32> = packets.windows(2).map(|w| w[1].0.wrapping_sub(w[0].0)).collect();
        assert!(steps.iter().all(|&d| d == 960), "{:?} {:?}", &packets.iter().map(|p| p.0).take(6).collect::<Vec<_>>(), &steps[..8]);
        let opus: Vec<Vec<u8>> = packets.into_iter().map(|(_, p)| p).collect();
        let (asc2, back) = to_aac(&opus);
        let pcm = decode(&asc2, &back);
        let mid = &pcm[pcm.len() / 4..pcm.len() * 3 / 4];
        let (level, hz) = (rms(mid), crossings_hz(mid));
        assert!(level > 0.2 && level < 0.5, "rms {level}");
        assert!((hz - 440.0).abs() < 10.0, "{hz} Hz");
    }

    #[test]
    fn a_jump_in_the_stream_starts_a_new_timeline_and_garbage_is_an_error() {
        let (asc, aus) = aac_sine(50);
        let mut e = Encoder::new(&asc, 2, 64_000).unwrap();
        for (ms, au) in &aus[..20] {
            e.push(*ms as u32 * 48, au).unwrap();
        }
        while e.pull().is_some() {}
        // Ten seconds later: the next packets are stamped from there.
        for (ms, au) in &aus[20..] {
            e.push((10_000 + *ms as u32) * 48, au).unwrap();
        }
        let (ts, _) = e.pull().expect("a packet after the jump");
        assert!(ts >= 10_000 * 48, "{ts}");
        // Garbage loses itself only (an error or nothing), and the next frame goes on.
        let _ = e.push(ts + 40 * 48, &[0xff; 300]);
        e.push(ts + 60 * 48, &aus[30].1).unwrap();
        assert!(Encoder::new(&[0xff], 2, 64_000).is_err());
        assert!(Encoder::new(&asc, 3, 64_000).is_err());
    }
}
