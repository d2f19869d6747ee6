//! What the TS muxer makes of frames: video in Annex B form (access unit delimiters and
//! parameter sets) and ADTS-framed AAC. Pure functions over byte slices; every length
//! read from the input is checked. (Frames and codec records are parsed by
//! `crate::media`.)

use crate::media::config::{AacConfig, VideoConfig};

/// A video codec HLS can carry in MPEG-TS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoCodec {
    Avc,
    Hevc,
}

/// An audio codec HLS can carry in MPEG-TS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AudioCodec {
    Aac,
    Mp3,
}

const START: [u8; 4] = [0, 0, 0, 1];

pub(crate) fn nal_type(codec: VideoCodec, nal: &[u8]) -> u8 {
    match codec {
        VideoCodec::Avc => nal[0] & 0x1f,
        VideoCodec::Hevc => (nal[0] >> 1) & 0x3f,
    }
}

/// Appends a frame's NAL units to `out` in Annex B form: an access unit delimiter first,
/// then (on keyframes, unless the frame carries its own) the parameter sets. Returns false
/// (leaving `out` as it was) if the NAL lengths do not add up.
pub fn annex_b(codec: VideoCodec, cfg: &VideoConfig, keyframe: bool, data: &[u8], out: &mut Vec<u8>) -> bool {
    let size = cfg.nal_length_size;
    if !nal_lengths_ok(size, data) {
        return false;
    }
    let in_band = nal_units(size, data).any(|nal| {
        let t = nal_type(codec, nal);
        match codec {
            VideoCodec::Avc => t == 7,
            VideoCodec::Hevc => t == 33,
        }
    });
    match codec {
        VideoCodec::Avc => out.extend_from_slice(&[0, 0, 0, 1, 0x09, 0xf0]),
        VideoCodec::Hevc => out.extend_from_slice(&[0, 0, 0, 1, 0x46, 0x01, 0x50]),
    }
    if keyframe && !in_band {
        for ps in &cfg.parameter_sets {
            out.extend_from_slice(&START);
            out.extend_from_slice(ps);
        }
    }
    for nal in nal_units(size, data) {
        let t = nal_type(codec, nal);
        let aud = match codec {
            VideoCodec::Avc => t == 9,
            VideoCodec::Hevc => t == 35,
        };
        if !aud {
            out.extend_from_slice(&START);
            out.extend_from_slice(nal);
        }
    }
    true
}

/// The NAL units of a frame whose lengths `nal_lengths_ok` has checked.
fn nal_units(size: usize, data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.len() <= size {
            return None;
        }
        let len = rest[..size].iter().fold(0usize, |a, &b| a << 8 | usize::from(b)).min(rest.len() - size);
        let nal = &rest[size..size + len];
        rest = &rest[size + len..];
        Some(nal)
    })
}

/// Whether a frame's NAL units, each with a `size`-byte length in front, add up to the
/// frame (fMP4 stores frames that way, as they come).
pub fn nal_lengths_ok(size: usize, data: &[u8]) -> bool {
    if data.is_empty() || !(1..=4).contains(&size) {
        return false;
    }
    let mut rest = data;
    while !rest.is_empty() {
        if rest.len() < size {
            return false;
        }
        let len = rest[..size].iter().fold(0usize, |a, &b| a << 8 | usize::from(b));
        rest = &rest[size..];
        if len == 0 || len > rest.len() {
            return false;
        }
        rest = &rest[len..];
    }
    true
}

/// What an ADTS header needs from an AudioSpecificConfig.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Adts {
    /// ADTS profile (object type - 1; HE-AAC is signalled as AAC LC, decoders find SBR).
    pub profile: u8,
    pub sampling_index: u8,
    pub channels: u8,
}

impl Adts {
    /// The ADTS framing of a stream with this configuration; None where ADTS cannot say
    /// it (object types beyond 4, rates outside the table, more than 7 channels).
    pub fn new(c: &AacConfig) -> Option<Adts> {
        let object_type = if c.object_type == 5 || c.object_type == 29 { 2 } else { c.object_type };
        if !(1..=4).contains(&object_type) || c.sample_rate() == 0 || c.channels > 7 {
            return None;
        }
        Some(Adts { profile: object_type - 1, sampling_index: c.sampling_index, channels: c.channels })
    }

    pub fn sample_rate(&self) -> u32 {
        crate::media::config::AAC_RATES[usize::from(self.sampling_index)]
    }

    /// The 7-byte ADTS header for a raw frame of `len` bytes.
    pub fn header(&self, len: usize) -> [u8; 7] {
        let full = len + 7;
        [
            0xff,
            0xf1,
            (self.profile << 6) | (self.sampling_index << 2) | (self.channels >> 2),
            ((self.channels & 3) << 6) | ((full >> 11) as u8 & 3),
            (full >> 3) as u8,
            ((full as u8 & 7) << 5) | 0x1f,
            0xfc,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::media::config;

    #[test]
    fn aac() {
        // AAC LC, 44100 Hz, stereo.
        let c = Adts::new(&config::aac(&[0x12, 0x10]).unwrap()).unwrap();
        assert_eq!(c, Adts { profile: 1, sampling_index: 4, channels: 2 });
        assert_eq!(c.sample_rate(), 44100);
        let h = c.header(100);
        assert_eq!(h[0..2], [0xff, 0xf1]);
        let len = (usize::from(h[3] & 3) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
        assert_eq!(len, 107);
        let adts = |asc: &[u8]| config::aac(asc).and_then(|c| Adts::new(&c));
        assert_eq!(adts(&[0x12]), None);
        assert_eq!(adts(&[0xf8, 0x10]), None, "escape object type");
        assert_eq!(adts(&[0x17, 0x90]), None, "sampling index 15");
        assert_eq!(adts(&[0x2b, 0x92]).unwrap().profile, 1, "HE-AAC is signalled as LC");
    }

    #[test]
    fn avc_to_annex_b() {
        let rec = [1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 3, 0x67, 1, 2, 1, 0, 2, 0x68, 3];
        let cfg = config::avc(&rec).unwrap();
        let frame = [0, 0, 0, 2, 0x09, 0x10, 0, 0, 0, 3, 0x65, 7, 8];
        let mut out = vec![];
        assert!(annex_b(VideoCodec::Avc, &cfg, true, &frame, &mut out));
        assert_eq!(out, [0, 0, 0, 1, 9, 0xf0, 0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 7, 8]);
        out.clear();
        assert!(annex_b(VideoCodec::Avc, &cfg, false, &frame[6..], &mut out));
        assert_eq!(out, [0, 0, 0, 1, 9, 0xf0, 0, 0, 0, 1, 0x65, 7, 8]);
        // Lengths that run past the end are refused and leave nothing behind.
        out.clear();
        assert!(!annex_b(VideoCodec::Avc, &cfg, false, &[0, 0, 0, 9, 0x65], &mut out));
        assert!(!annex_b(VideoCodec::Avc, &cfg, false, &[0, 0], &mut out));
        assert!(out.is_empty());
    }
}
