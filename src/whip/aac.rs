//! Opus → AAC-LC for WHIP ingest: WebRTC publishers send Opus, RTMP players and HLS want AAC.
//!
//! A safe wrapper over `opus_aac.c`, a small shim on libavcodec (FFmpeg ≥ 5.1: the native
//! `opus` decoder and the native `aac` encoder, 48 kHz throughout, no resampling). This file
//! holds every `unsafe` of the transcoder.
//!
//! Timing: the first packet's RTP timestamp is time 0; from then on the audio is a contiguous
//! 48 kHz timeline. Lost packets (a forward jump in RTP time beyond what was decoded) are
//! filled with silence up to 1 s; the rest of a longer gap becomes a forward jump of the AAC
//! timestamps, so audio stays in sync with video either way. A packet going back in time
//! (duplicate, reordered too late) is dropped; one more than 1 s back is taken as the sender's
//! clock restarting and decoded without a gap.
//!
//! The encoder's first access unit (its 1024 priming samples, negative pts) is not returned:
//! timestamps then mean what they say (the first AU returned, at 0 ms, decodes to the audio
//! of the first packet), at the cost of a 21 ms fade-in for a decoder starting there, the
//! same a player joining the stream later gets anyway.

use std::ffi::{c_char, c_int, CStr};
use std::marker::{PhantomData, PhantomPinned};
use std::ptr::NonNull;

/// Samples per second of both codecs (RTP's Opus clock).
const RATE: u32 = 48_000;
/// A packet further back in RTP time than this is a clock restart, not a late packet.
const RESYNC: i32 = RATE as i32;
/// Raw AAC-LC access units are at most 6144 bits per channel.
const AU_MAX: usize = 8192;

/// The shim's `oa_t`, only ever behind a pointer.
#[repr(C)]
struct Oa {
    _opaque: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

// SAFETY: these match the prototypes in opus_aac.c (int = c_int, size_t = usize,
// int64_t = i64, uint8_t = u8). Every function takes the handle returned by `oa_new`, alive
// until `oa_free`, and buffers valid for the lengths passed with them.
unsafe extern "C" {
    fn oa_new(channels: c_int, bitrate: c_int, err: *mut c_char, errlen: usize) -> *mut Oa;
    fn oa_asc(t: *const Oa, out: *mut u8, cap: c_int) -> c_int;
    fn oa_push(t: *mut Oa, opus: *const u8, len: c_int) -> c_int;
    fn oa_gap(t: *mut Oa, samples: i64) -> c_int;
    fn oa_pull(t: *mut Oa, out: *mut u8, cap: c_int, pts: *mut i64) -> c_int;
    fn oa_strerror(code: c_int, buf: *mut c_char, len: usize);
    fn oa_free(t: *mut Oa);
}

/// FFmpeg's text for an AVERROR code (both transcoders' errors).
pub(crate) fn av_error(code: c_int) -> String {
    let mut buf = [0 as c_char; 128];
    // SAFETY: `buf` is writable for its length; av_strerror NUL-terminates within it.
    unsafe { oa_strerror(code, buf.as_mut_ptr(), buf.len()) };
    // SAFETY: zero-initialised and NUL-terminated by av_strerror, all within `buf`.
    let text = unsafe { CStr::from_ptr(buf.as_ptr()) };
    text.to_string_lossy().into_owned()
}

/// One Opus stream to AAC-LC. Used from a single thread at a time (`Send`, not `Sync`).
pub struct Transcoder {
    raw: NonNull<Oa>,
    asc: Vec<u8>,
    /// RTP timestamp of the sample after everything queued so far; `None` before the first packet.
    next_ts: Option<u32>,
    au: Box<[u8]>,
}

// SAFETY: the handle owns its FFmpeg contexts, FIFO and buffers outright; none is tied to
// the thread that created it, and every call goes through `&mut self` (or `&self` for the
// read-only `asc` copy made in `new`), so moving the transcoder to another thread is sound.
unsafe impl Send for Transcoder {}

impl Transcoder {
    /// `channels` (1 or 2) of AAC-LC at `bitrate` bit/s, 48 kHz.
    pub fn new(channels: u8, bitrate: u32) -> Result<Self, String> {
        if channels != 1 && channels != 2 {
            return Err(format!("AAC channels must be 1 or 2, not {channels}"));
        }
        let bitrate = c_int::try_from(bitrate).map_err(|_| format!("AAC bitrate {bitrate} out of range"))?;
        let mut err = [0 as c_char; 256];
        // SAFETY: `err` is writable for its length; the shim NUL-terminates within it.
        let raw = unsafe { oa_new(c_int::from(channels), bitrate, err.as_mut_ptr(), err.len()) };
        let Some(raw) = NonNull::new(raw) else {
            // SAFETY: zero-initialised, and snprintf NUL-terminates within the buffer.
            let msg = unsafe { CStr::from_ptr(err.as_ptr()) };
            return Err(format!("AAC transcoder: {}", msg.to_string_lossy()));
        };
        let mut t = Transcoder { raw, asc: Vec::new(), next_ts: None, au: vec![0; AU_MAX].into_boxed_slice() };
        let mut asc = [0u8; 64];
        // SAFETY: live handle; `asc` is writable for the length passed.
        let n = unsafe { oa_asc(t.raw.as_ptr(), asc.as_mut_ptr(), asc.len() as c_int) };
        if n <= 0 {
            return Err(format!("AAC transcoder: no AudioSpecificConfig ({})", av_error(n)));
        }
        t.asc = asc[..n as usize].to_vec();
        Ok(t)
    }

    /// AudioSpecificConfig for the FLV AAC sequence header (AAC-LC 48 kHz stereo starts
    /// `0x11 0x90`; FFmpeg appends the explicit "no SBR" extension, 5 bytes in all).
    pub fn asc(&self) -> Vec<u8> {
        self.asc.clone()
    }

    /// One Opus packet with its RTP timestamp (48 kHz clock). Returns the samples decoded:
    /// 0 when the packet was dropped as late, an error when it does not decode (not fatal:
    /// the next packet's gap is filled with silence).
    pub fn push(&mut self, rtp_ts: u32, opus: &[u8]) -> Result<usize, String> {
        let next = *self.next_ts.get_or_insert(rtp_ts);
        let delta = rtp_ts.wrapping_sub(next) as i32;
        if delta < 0 && delta > -RESYNC {
            return Ok(0);
        }
        if delta > 0 {
            // SAFETY: live handle.
            let r = unsafe { oa_gap(self.raw.as_ptr(), i64::from(delta)) };
            if r < 0 {
                return Err(format!("Opus gap: {}", av_error(r)));
            }
        }
        self.next_ts = Some(rtp_ts);
        // Longer than the shim accepts (64 KiB): it rejects the length before reading.
        let len = c_int::try_from(opus.len()).unwrap_or(c_int::MAX);
        // SAFETY: live handle; `opus` is readable for `len` bytes (or the shim rejects the
        // length before reading).
        let n = unsafe { oa_push(self.raw.as_ptr(), opus.as_ptr(), len) };
        if n < 0 {
            return Err(format!("Opus decode: {}", av_error(n)));
        }
        self.next_ts = Some(rtp_ts.wrapping_add(n as u32));
        Ok(n as usize)
    }

    /// The next AAC access unit ready, if any: (ms since the first packet's RTP time, raw
    /// AAC, no ADTS header). Call until `None` after each `push`.
    pub fn pull(&mut self) -> Option<(u64, Vec<u8>)> {
        loop {
            let mut pts = 0i64;
            // SAFETY: live handle; `au` is writable for the length passed; `pts` is a local.
            let n = unsafe { oa_pull(self.raw.as_ptr(), self.au.as_mut_ptr(), self.au.len() as c_int, &mut pts) };
            if n <= 0 {
                return None; // nothing ready, or an encoder error (which loses that frame)
            }
            if pts < 0 {
                continue; // priming
            }
            return Some((pts as u64 * 1000 / u64::from(RATE), self.au[..n as usize].to_vec()));
        }
    }
}

impl Drop for Transcoder {
    fn drop(&mut self) {
        // SAFETY: the handle came from `oa_new` and is freed exactly once, here.
        unsafe { oa_free(self.raw.as_ptr()) };
    }
}

/// FLV AUDIODATA body of the AAC sequence header: `0xAF 0x00` + AudioSpecificConfig.
pub fn flv_sequence_header(asc: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(2 + asc.len());
    v.extend_from_slice(&[0xAF, 0x00]);
    v.extend_from_slice(asc);
    v
}

/// FLV AUDIODATA body of one raw AAC frame: `0xAF 0x01` + AAC.
pub fn flv_frame(aac: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(2 + aac.len());
    v.extend_from_slice(&[0xAF, 0x01]);
    v.extend_from_slice(aac);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    // SAFETY: test helpers in opus_aac.c; prototypes as declared there.
    unsafe extern "C" {
        fn oa_test_opus_sine(
            channels: c_int,
            freq: f64,
            amp: f64,
            frames: c_int,
            out: *mut u8,
            cap: c_int,
            lens: *mut c_int,
            maxpkts: c_int,
        ) -> c_int;
        fn oa_test_aac_decode(
            asc: *const u8,
            asclen: c_int,
            data: *const u8,
            lens: *const c_int,
            n: c_int,
            out: *mut f32,
            cap: c_int,
            channels: *mut c_int,
        ) -> c_int;
    }

    /// `frames` Opus packets of 20 ms carrying a sine.
    fn opus_sine(channels: c_int, freq: f64, frames: usize) -> Vec<Vec<u8>> {
        let mut buf = vec![0u8; frames * 2000 + 4000];
        let mut lens = vec![0 as c_int; frames + 8];
        // SAFETY: `buf` and `lens` are writable for the capacities passed.
        let n = unsafe {
            oa_test_opus_sine(
                channels,
                freq,
                0.5,
                frames as c_int,
                buf.as_mut_ptr(),
                buf.len() as c_int,
                lens.as_mut_ptr(),
                lens.len() as c_int,
            )
        };
        assert!(n > 0, "Opus encoder: {}", av_error(n));
        let mut off = 0;
        lens[..n as usize]
            .iter()
            .map(|&l| {
                off += l as usize;
                buf[off - l as usize..off].to_vec()
            })
            .collect()
    }

    /// AAC back to PCM (channel 0) and the decoder's channel count.
    fn aac_decode(asc: &[u8], aus: &[(u64, Vec<u8>)]) -> (Vec<f32>, c_int) {
        let data: Vec<u8> = aus.iter().flat_map(|(_, a)| a.iter().copied()).collect();
        let lens: Vec<c_int> = aus.iter().map(|(_, a)| a.len() as c_int).collect();
        let mut pcm = vec![0f32; aus.len() * 1024 + 1024];
        let mut channels = 0;
        // SAFETY: input slices readable for the lengths passed, `pcm` writable for its own.
        let n = unsafe {
            oa_test_aac_decode(
                asc.as_ptr(),
                asc.len() as c_int,
                data.as_ptr(),
                lens.as_ptr(),
                lens.len() as c_int,
                pcm.as_mut_ptr(),
                pcm.len() as c_int,
                &mut channels,
            )
        };
        assert!(n >= 0, "AAC decoder: {}", av_error(n));
        pcm.truncate(n as usize);
        (pcm, channels)
    }

    fn rms(x: &[f32]) -> f64 {
        (x.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / x.len() as f64).sqrt()
    }

    /// Frequency from the zero crossings.
    fn freq(x: &[f32]) -> f64 {
        let crossings = x.windows(2).filter(|w| (w[0] < 0.0) != (w[1] < 0.0)).count();
        crossings as f64 / 2.0 / (x.len() as f64 / f64::from(RATE))
    }

    fn drain(t: &mut Transcoder, out: &mut Vec<(u64, Vec<u8>)>) {
        while let Some(au) = t.pull() {
            out.push(au);
        }
    }

    /// Strictly increasing, and `k * 1024` samples apart where contiguous.
    fn check_timestamps(aus: &[(u64, Vec<u8>)]) {
        for w in aus.windows(2) {
            assert!(w[1].0 > w[0].0, "timestamps not increasing: {} then {}", w[0].0, w[1].0);
        }
    }

    struct Run {
        aus: Vec<(u64, Vec<u8>)>,
        samples: usize,
        asc: Vec<u8>,
    }

    /// Pushes `packets` at 20 ms RTP spacing from `base`, skipping the indices in `lost`.
    fn run(channels: u8, packets: &[Vec<u8>], base: u32, lost: std::ops::Range<usize>) -> Run {
        let mut t = Transcoder::new(channels, 128_000).unwrap();
        let mut aus = Vec::new();
        let mut samples = 0;
        for (i, p) in packets.iter().enumerate() {
            if lost.contains(&i) {
                continue;
            }
            samples += t.push(base.wrapping_add(960 * i as u32), p).unwrap();
            drain(&mut t, &mut aus);
        }
        Run { aus, samples, asc: t.asc() }
    }

    /// Normalised correlation of `x[from..]` with a sine of `f` Hz delayed by `lag` samples:
    /// near 1 when the audio sits where its timestamps say (a 1024-sample slip gives -0.75
    /// at 440 Hz).
    fn phase_match(x: &[f32], from: usize, f: f64, lag: usize) -> f64 {
        let w = |i: usize| (2.0 * std::f64::consts::PI * f * (i as f64 - lag as f64) / f64::from(RATE)).sin();
        let (mut xy, mut xx, mut yy) = (0.0, 0.0, 0.0);
        for (i, &s) in x.iter().enumerate().skip(from) {
            let (a, b) = (f64::from(s), w(i));
            xy += a * b;
            xx += a * a;
            yy += b * b;
        }
        xy / (xx * yy).sqrt()
    }

    /// First sample index where the signal gets loud (the tone's onset).
    fn onset(x: &[f32], from: usize) -> usize {
        from + x[from..].iter().position(|s| s.abs() > 0.1).unwrap()
    }

    #[test]
    fn sine_stereo_two_seconds() {
        let packets = opus_sine(2, 440.0, 100);
        // RTP time wraps around 2^32 within the run.
        let r = run(2, &packets, 0xFFFF_0000, 0..0);
        assert_eq!(r.samples, 960 * packets.len());
        // Whole 1024-sample frames, less the one inside the encoder, less the priming AU.
        let expected = r.samples / 1024 - 2;
        assert_eq!(r.aus.len(), expected);
        assert!((90..=95).contains(&r.aus.len()));
        check_timestamps(&r.aus);
        for (k, (ms, au)) in r.aus.iter().enumerate() {
            assert_eq!(*ms, (k as u64 * 1024) * 1000 / 48_000);
            assert!(!au.is_empty() && au.len() <= 1536);
        }
        assert_eq!(&r.asc[..2], &[0x11, 0x90], "AAC-LC, 48 kHz, 2 channels");

        let (pcm, channels) = aac_decode(&r.asc, &r.aus);
        assert_eq!(channels, 2);
        assert_eq!(pcm.len(), r.aus.len() * 1024);
        // Sample i of the AAC output is sample i of the Opus decoder's, the input delayed by
        // libopus's 312-sample lookahead: pts 0 is the first packet's RTP time.
        let start = onset(&pcm, 0);
        assert!(start < 1024, "onset at {start}");
        let phase = phase_match(&pcm[..pcm.len() - 1024], 4096, 440.0, 312);
        assert!(phase > 0.95, "correlation {phase}");
        let steady = &pcm[4096..pcm.len() - 1024];
        let (level, f) = (rms(steady), freq(steady));
        eprintln!("stereo: {} AUs, onset {start}, phase {phase:.3}, rms {level:.3}, {f:.1} Hz", r.aus.len());
        assert!((0.30..0.41).contains(&level), "rms {level}"); // 0.5 / sqrt(2) = 0.354
        assert!((f - 440.0).abs() < 4.0, "frequency {f}");
    }

    #[test]
    fn mono() {
        let packets = opus_sine(1, 1000.0, 50);
        let r = run(1, &packets, 1234, 0..0);
        assert_eq!(&r.asc[..2], &[0x11, 0x88], "AAC-LC, 48 kHz, 1 channel");
        let (pcm, channels) = aac_decode(&r.asc, &r.aus);
        assert_eq!(channels, 1);
        let steady = &pcm[4096..pcm.len() - 1024];
        assert!((0.30..0.41).contains(&rms(steady)));
        assert!((freq(steady) - 1000.0).abs() < 8.0);
        // Mono Opus into stereo AAC (and back) works too.
        let r = run(2, &packets, 0, 0..0);
        let (pcm, channels) = aac_decode(&r.asc, &r.aus);
        assert_eq!(channels, 2);
        assert!((0.30..0.41).contains(&rms(&pcm[4096..pcm.len() - 1024])));
    }

    #[test]
    fn lost_packets_keep_sync() {
        let packets = opus_sine(2, 440.0, 100);
        let full = run(2, &packets, 77, 0..0);
        // 200 ms lost.
        let lossy = run(2, &packets, 77, 40..50);
        // Same timeline: as many AUs, same timestamps.
        assert_eq!(lossy.samples, full.samples - 10 * 960);
        assert_eq!(lossy.aus.len(), full.aus.len());
        let ts = |r: &Run| r.aus.iter().map(|a| a.0).collect::<Vec<_>>();
        assert_eq!(ts(&lossy), ts(&full));
        // Silence where the packets were lost, the tone back where their successors belong.
        let (pcm, _) = aac_decode(&lossy.asc, &lossy.aus);
        let (gap, back) = (40 * 960, 50 * 960);
        assert!(rms(&pcm[gap + 1500..back - 1500]) < 0.01);
        let resumed = onset(&pcm, gap + 1500);
        assert!(resumed.abs_diff(back) < 200, "tone back at {resumed}, expected {back}");
        assert!(rms(&pcm[back + 1500..back + 9600]) > 0.3);
        let phase = phase_match(&pcm[..back + 20 * 960], back + 1500, 440.0, 312);
        assert!(phase > 0.95, "correlation after the gap {phase}");
        eprintln!("loss: tone back at {resumed} (RTP {back}), phase {phase:.3}");
    }

    #[test]
    fn long_gap_becomes_a_timestamp_jump() {
        let packets = opus_sine(2, 440.0, 100);
        let mut t = Transcoder::new(2, 96_000).unwrap();
        let mut aus = Vec::new();
        for (i, p) in packets.iter().enumerate() {
            // Packets 50.. arrive 5 s later in RTP time: a 4 s gap after the first second.
            let slot = if i < 50 { i } else { i + 250 };
            t.push(960 * slot as u32, p).unwrap();
            drain(&mut t, &mut aus);
        }
        check_timestamps(&aus);
        // 1 s of silence (to 96000, padded to a frame: 96256), then the timeline jumps so
        // that packet 50 starts exactly at its RTP time, 300 * 960 = 288000 (6000 ms).
        let jump = aus.windows(2).find(|w| w[1].0 - w[0].0 > 1000).expect("a jump");
        assert_eq!((jump[0].0, jump[1].0), ((96256 - 1024) / 48, 6000));
        let last = aus.last().unwrap().0;
        assert!((6900..=7000).contains(&last), "last AU at {last} ms");
    }

    #[test]
    fn late_and_duplicate_packets_are_dropped() {
        let packets = opus_sine(2, 440.0, 10);
        let mut t = Transcoder::new(2, 128_000).unwrap();
        assert_eq!(t.push(1000, &packets[0]).unwrap(), 960);
        assert_eq!(t.push(1960, &packets[1]).unwrap(), 960);
        assert_eq!(t.push(1960, &packets[1]).unwrap(), 0, "duplicate");
        assert_eq!(t.push(1000, &packets[0]).unwrap(), 0, "late");
        assert_eq!(t.push(2920, &packets[2]).unwrap(), 960);
        // Far back: the sender restarted its clock; decoded, no gap.
        assert_eq!(t.push(1000u32.wrapping_sub(500_000), &packets[3]).unwrap(), 960);
        assert_eq!(t.push(1000u32.wrapping_sub(500_000 - 960), &packets[4]).unwrap(), 960);
        let mut aus = Vec::new();
        drain(&mut t, &mut aus);
        assert_eq!(aus.len(), 5 * 960 / 1024 - 2);
        check_timestamps(&aus);
    }

    #[test]
    fn garbage_is_an_error_and_the_stream_goes_on() {
        let mut t = Transcoder::new(2, 128_000).unwrap();
        let bad: [&[u8]; 6] = [
            &[],
            &[0x03, 0x00],             // code 3, zero frames
            &[0x1B, 0x03, 1, 2, 3],    // code 3, 3 x 60 ms > 120 ms
            &[0x01, 1, 2, 3],          // code 1, odd size: no two equal frames
            &[0x02, 250, 1, 2],        // code 2, first frame longer than the packet
            &[0xFC, 0xFF, 0xFF, 0xFF], // code 0, 2.5 ms CELT, garbage
        ];
        let mut errors = 0;
        for b in &bad {
            match t.push(0, b) {
                Err(e) => {
                    errors += 1;
                    assert!(e.starts_with("Opus decode: "), "{e}");
                }
                Ok(n) => eprintln!("{b:02x?} decoded to {n} samples"),
            }
        }
        assert!(errors >= 5, "{errors} errors");
        assert!(t.push(4800, &vec![0u8; 70_000]).is_err(), "oversized");
        let packets = opus_sine(2, 440.0, 50);
        let mut aus = Vec::new();
        for (i, p) in packets.iter().enumerate() {
            assert_eq!(t.push(4800 + 960 * i as u32, p).unwrap(), 960);
            drain(&mut t, &mut aus);
        }
        check_timestamps(&aus);
        let (pcm, _) = aac_decode(&t.asc(), &aus);
        let steady = &pcm[4096..pcm.len() - 1024];
        assert!((0.30..0.41).contains(&rms(steady)));
        assert!((freq(steady) - 440.0).abs() < 6.0);
    }

    #[test]
    fn random_packets_do_not_crash() {
        let mut t = Transcoder::new(2, 128_000).unwrap();
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut rnd = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (mut ok, mut err, mut aus, mut last, mut samples) = (0, 0, 0usize, None, 0usize);
        let mut ts = 0u32;
        let mut buf = Vec::new();
        for _ in 0..10_000 {
            let len = (rnd() % 1500) as usize;
            buf.clear();
            buf.extend((0..len).map(|_| rnd() as u8));
            // Mostly 20 ms apart, sometimes anywhere.
            ts = if rnd() % 50 == 0 { rnd() as u32 } else { ts.wrapping_add(960) };
            match t.push(ts, &buf) {
                Ok(n) => {
                    ok += 1;
                    samples += n;
                }
                Err(_) => err += 1,
            }
            while let Some((ms, au)) = t.pull() {
                assert!(au.len() <= 1536);
                assert!(last.is_none_or(|l| ms > l), "{ms} after {last:?}");
                last = Some(ms);
                aus += 1;
            }
        }
        eprintln!("random: {ok} decoded ({samples} samples), {err} errors, {aus} AUs, last at {last:?} ms");
        assert_eq!(ok + err, 10_000);
    }

    #[test]
    fn fifo_is_bounded() {
        let packets = opus_sine(2, 440.0, 250);
        let mut t = Transcoder::new(2, 128_000).unwrap();
        for (i, p) in packets.iter().enumerate() {
            t.push(960 * i as u32, p).unwrap(); // 5 s, never pulled
        }
        let mut aus = Vec::new();
        drain(&mut t, &mut aus);
        check_timestamps(&aus);
        // At most 2 s were kept (the oldest dropped); they keep their own timestamps.
        assert!(aus.len() <= 96_000 / 1024 + 1, "{} AUs", aus.len());
        let (first, last) = (aus[0].0, aus.last().unwrap().0);
        assert!(first >= 2900 && (4900..=5000).contains(&last), "{first}..{last} ms");
    }

    #[test]
    fn bad_parameters() {
        assert!(Transcoder::new(3, 128_000).is_err());
        assert!(Transcoder::new(0, 128_000).is_err());
        let e = Transcoder::new(2, 1_000).err().unwrap();
        assert!(e.contains("bitrate"), "{e}");
        assert!(Transcoder::new(2, u32::MAX).is_err());
    }

    #[test]
    fn flv_bodies() {
        assert_eq!(flv_sequence_header(&[0x11, 0x90]), [0xAF, 0x00, 0x11, 0x90]);
        assert_eq!(flv_frame(&[1, 2, 3]), [0xAF, 0x01, 1, 2, 3]);
    }

    #[test]
    fn transcoder_is_send() {
        fn send<T: Send>(_: T) {}
        send(Transcoder::new(1, 64_000).unwrap());
    }
}
