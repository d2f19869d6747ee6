//! What the TS muxer needs from FLV audio and video tag bodies: codec configuration
//! records (AVC, HEVC, AAC) and frames turned into elementary streams (Annex B video with
//! access unit delimiters and parameter sets, ADTS audio). Pure functions over byte slices;
//! every length read from the input is checked.

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

/// A video tag body, classified.
#[derive(Debug, PartialEq, Eq)]
pub enum VideoTag<'a> {
    /// A decoder configuration record (`avcC` / `hvcC`).
    Config(VideoCodec, &'a [u8]),
    /// A coded frame: length-prefixed NAL units, composition time offset in ms.
    Frame { codec: VideoCodec, keyframe: bool, cts: i32, data: &'a [u8] },
    /// Anything else (end of sequence, metadata, a codec TS cannot carry, garbage).
    Other,
}

fn si24(b: &[u8]) -> i32 {
    let v = (i32::from(b[0]) << 16) | (i32::from(b[1]) << 8) | i32::from(b[2]);
    (v << 8) >> 8
}

pub fn video_tag(body: &[u8]) -> VideoTag<'_> {
    let Some(&b0) = body.first() else { return VideoTag::Other };
    if b0 & 0x80 != 0 {
        // Enhanced RTMP: [IsExHeader | FrameType | PacketType][FourCC][...]
        if body.len() < 5 {
            return VideoTag::Other;
        }
        let keyframe = (b0 >> 4) & 0x07 == 1;
        let codec = match &body[1..5] {
            b"avc1" => VideoCodec::Avc,
            b"hvc1" => VideoCodec::Hevc,
            _ => return VideoTag::Other,
        };
        let rest = &body[5..];
        match b0 & 0x0f {
            0 => VideoTag::Config(codec, rest),
            1 if rest.len() >= 3 => VideoTag::Frame { codec, keyframe, cts: si24(rest), data: &rest[3..] },
            3 => VideoTag::Frame { codec, keyframe, cts: 0, data: rest },
            _ => VideoTag::Other,
        }
    } else {
        let codec = match b0 & 0x0f {
            7 => VideoCodec::Avc,
            12 => VideoCodec::Hevc,
            _ => return VideoTag::Other,
        };
        if body.len() < 5 {
            return VideoTag::Other;
        }
        match body[1] {
            0 => VideoTag::Config(codec, &body[5..]),
            1 => VideoTag::Frame { codec, keyframe: b0 >> 4 == 1, cts: si24(&body[2..5]), data: &body[5..] },
            _ => VideoTag::Other,
        }
    }
}

/// An audio tag body, classified.
#[derive(Debug, PartialEq, Eq)]
pub enum AudioTag<'a> {
    /// AAC AudioSpecificConfig.
    AacConfig(&'a [u8]),
    /// One raw AAC frame.
    Aac(&'a [u8]),
    /// MP3 frames as they are.
    Mp3(&'a [u8]),
    Other,
}

pub fn audio_tag(body: &[u8]) -> AudioTag<'_> {
    let Some(&b0) = body.first() else { return AudioTag::Other };
    match b0 >> 4 {
        10 if body.len() >= 2 => {
            if body[1] == 0 {
                AudioTag::AacConfig(&body[2..])
            } else {
                AudioTag::Aac(&body[2..])
            }
        }
        2 | 14 if body.len() > 1 => AudioTag::Mp3(&body[1..]),
        _ => AudioTag::Other,
    }
}

/// Parameter sets of a video stream and how its frames' NAL units are prefixed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VideoConfig {
    /// 1, 2 or 4: bytes of the length in front of each NAL unit.
    pub nal_length_size: usize,
    /// VPS (HEVC), SPS and PPS NAL units, in the order decoders want them.
    pub parameter_sets: Vec<Vec<u8>>,
}

struct Cursor<'a> {
    b: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.b.len() < n {
            return None;
        }
        let (a, rest) = self.b.split_at(n);
        self.b = rest;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<usize> {
        self.take(2).map(|b| usize::from(b[0]) << 8 | usize::from(b[1]))
    }
    /// `count` NAL units, each with a 16-bit length in front (as configuration records
    /// hold parameter sets), appended to `out`.
    fn nal_units(&mut self, count: usize, out: &mut Vec<Vec<u8>>) -> Option<()> {
        for _ in 0..count {
            let n = self.u16()?;
            out.push(self.take(n)?.to_vec());
        }
        Some(())
    }
}

/// Parses an AVCDecoderConfigurationRecord (ISO 14496-15 5.3.3.1).
pub fn avc_config(rec: &[u8]) -> Option<VideoConfig> {
    let mut c = Cursor { b: rec };
    let head = c.take(5)?;
    if head[0] != 1 {
        return None;
    }
    let nal_length_size = usize::from(head[4] & 3) + 1;
    let mut sets = Vec::new();
    let nsps = c.u8()? & 0x1f;
    c.nal_units(usize::from(nsps), &mut sets)?;
    let npps = c.u8()?;
    c.nal_units(usize::from(npps), &mut sets)?;
    (nal_length_size != 3).then_some(VideoConfig { nal_length_size, parameter_sets: sets })
}

/// Parses an HEVCDecoderConfigurationRecord (ISO 14496-15 8.3.3.1.2).
pub fn hevc_config(rec: &[u8]) -> Option<VideoConfig> {
    let mut c = Cursor { b: rec };
    let head = c.take(22)?;
    if head[0] != 1 {
        return None;
    }
    let nal_length_size = usize::from(head[21] & 3) + 1;
    let mut sets = Vec::new();
    let arrays = c.u8()?;
    for _ in 0..arrays {
        let _type = c.u8()?;
        let n = c.u16()?;
        c.nal_units(n, &mut sets)?;
    }
    (nal_length_size != 3).then_some(VideoConfig { nal_length_size, parameter_sets: sets })
}

const START: [u8; 4] = [0, 0, 0, 1];

fn nal_type(codec: VideoCodec, nal: &[u8]) -> u8 {
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
    if data.is_empty() || !(1..=4).contains(&size) {
        return false;
    }
    // First pass: check the lengths and whether parameter sets are in band.
    let mut rest = data;
    let mut in_band = false;
    while !rest.is_empty() {
        if rest.len() < size {
            return false;
        }
        let len = rest[..size].iter().fold(0usize, |a, &b| a << 8 | usize::from(b));
        rest = &rest[size..];
        if len == 0 || len > rest.len() {
            return false;
        }
        let t = nal_type(codec, &rest[..len]);
        in_band |= match codec {
            VideoCodec::Avc => t == 7,
            VideoCodec::Hevc => t == 33,
        };
        rest = &rest[len..];
    }
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
    let mut rest = data;
    while !rest.is_empty() {
        let len = rest[..size].iter().fold(0usize, |a, &b| a << 8 | usize::from(b));
        let nal = &rest[size..size + len];
        rest = &rest[size + len..];
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

/// What an ADTS header needs from an AudioSpecificConfig.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AacConfig {
    /// ADTS profile (object type - 1; HE-AAC is signalled as AAC LC, decoders find SBR).
    pub profile: u8,
    pub sampling_index: u8,
    pub channels: u8,
}

const AAC_RATES: [u32; 13] = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];

impl AacConfig {
    pub fn sample_rate(&self) -> u32 {
        AAC_RATES[usize::from(self.sampling_index)]
    }

    /// The 7-byte ADTS header for a raw frame of `len` bytes.
    pub fn adts(&self, len: usize) -> [u8; 7] {
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

/// Parses an AudioSpecificConfig (ISO 14496-3 1.6.2.1) as far as ADTS needs.
pub fn aac_config(asc: &[u8]) -> Option<AacConfig> {
    if asc.len() < 2 {
        return None;
    }
    let mut object_type = asc[0] >> 3;
    let sampling_index = ((asc[0] & 7) << 1) | (asc[1] >> 7);
    let channels = (asc[1] >> 3) & 0x0f;
    if object_type == 5 || object_type == 29 {
        object_type = 2;
    }
    // ADTS can express object types 1..=4 and the 13 table rates only.
    if !(1..=4).contains(&object_type) || usize::from(sampling_index) >= AAC_RATES.len() || channels > 7 {
        return None;
    }
    Some(AacConfig { profile: object_type - 1, sampling_index, channels })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags() {
        assert_eq!(video_tag(&[0x17, 0, 0, 0, 0, 1, 2]), VideoTag::Config(VideoCodec::Avc, &[1, 2]));
        assert_eq!(
            video_tag(&[0x27, 1, 0xff, 0xff, 0xfe, 9]),
            VideoTag::Frame { codec: VideoCodec::Avc, keyframe: false, cts: -2, data: &[9] }
        );
        assert_eq!(video_tag(b"\x91hvc1\x00\x00\x28\x07"), VideoTag::Frame {
            codec: VideoCodec::Hevc,
            keyframe: true,
            cts: 40,
            data: &[7]
        });
        assert_eq!(video_tag(b"\x93hvc1\x07"), VideoTag::Frame { codec: VideoCodec::Hevc, keyframe: true, cts: 0, data: &[7] });
        assert_eq!(video_tag(b"\x90av01\x01"), VideoTag::Other);
        assert_eq!(video_tag(&[0x17, 0]), VideoTag::Other);
        assert_eq!(video_tag(&[0x12]), VideoTag::Other);
        assert_eq!(audio_tag(&[0xaf, 0, 0x12, 0x10]), AudioTag::AacConfig(&[0x12, 0x10]));
        assert_eq!(audio_tag(&[0xaf, 1, 5]), AudioTag::Aac(&[5]));
        assert_eq!(audio_tag(&[0x2f, 0xff, 0xfb]), AudioTag::Mp3(&[0xff, 0xfb]));
        assert_eq!(audio_tag(&[0xaf]), AudioTag::Other);
    }

    #[test]
    fn aac() {
        // AAC LC, 44100 Hz, stereo.
        let c = aac_config(&[0x12, 0x10]).unwrap();
        assert_eq!(c, AacConfig { profile: 1, sampling_index: 4, channels: 2 });
        assert_eq!(c.sample_rate(), 44100);
        let h = c.adts(100);
        assert_eq!(h[0..2], [0xff, 0xf1]);
        let len = (usize::from(h[3] & 3) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
        assert_eq!(len, 107);
        assert_eq!(aac_config(&[0x12]), None);
        assert_eq!(aac_config(&[0xf8, 0x10]), None, "escape object type");
        assert_eq!(aac_config(&[0x17, 0x90]), None, "sampling index 15");
    }

    #[test]
    fn avc_to_annex_b() {
        let rec = [1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 3, 0x67, 1, 2, 1, 0, 2, 0x68, 3];
        let cfg = avc_config(&rec).unwrap();
        assert_eq!(cfg.nal_length_size, 4);
        assert_eq!(cfg.parameter_sets, vec![vec![0x67, 1, 2], vec![0x68, 3]]);
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
        assert_eq!(avc_config(&rec[..10]), None);
        assert_eq!(avc_config(&[]), None);
    }

    #[test]
    fn hevc_config_arrays() {
        let mut rec = vec![1u8];
        rec.extend([0; 20]);
        rec.push(0x0f); // lengthSizeMinusOne = 3
        rec.push(2); // two arrays
        rec.extend([0x20, 0, 1, 0, 2, 0x40, 1]); // VPS
        rec.extend([0x21, 0, 1, 0, 1, 0x42]); // SPS
        let cfg = hevc_config(&rec).unwrap();
        assert_eq!(cfg.nal_length_size, 4);
        assert_eq!(cfg.parameter_sets, vec![vec![0x40, 1], vec![0x42]]);
        assert_eq!(hevc_config(&rec[..rec.len() - 1]), None);
    }
}
