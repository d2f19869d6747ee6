//! Codec configuration records, read once for every consumer: the AVC and HEVC decoder
//! configuration records (parameter sets, NAL length size, profile and level) and AAC's
//! AudioSpecificConfig. Every length read from the input is checked.

/// A video stream's decoder configuration: how its frames' NAL units are prefixed, its
/// parameter sets, and what `/stat` shows of it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VideoConfig {
    /// 1, 2 or 4: bytes of the length in front of each NAL unit.
    pub nal_length_size: usize,
    /// VPS (HEVC), SPS and PPS NAL units, in the order decoders want them.
    pub parameter_sets: Vec<Vec<u8>>,
    /// AVC: `profile_idc`; HEVC: `general_profile_idc`.
    pub profile: u8,
    /// AVC's profile compatibility flags (0 for HEVC).
    pub compat: u8,
    /// AVC: `level_idc` (31 is 3.1); HEVC: `general_level_idc` (93 is 3.1).
    pub level: u8,
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
pub fn avc(rec: &[u8]) -> Option<VideoConfig> {
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
    (nal_length_size != 3).then_some(VideoConfig { nal_length_size, parameter_sets: sets, profile: head[1], compat: head[2], level: head[3] })
}

/// Parses an HEVCDecoderConfigurationRecord (ISO 14496-15 8.3.3.1.2).
pub fn hevc(rec: &[u8]) -> Option<VideoConfig> {
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
    (nal_length_size != 3).then_some(VideoConfig { nal_length_size, parameter_sets: sets, profile: head[1] & 0x1f, compat: 0, level: head[12] })
}

/// The profile and level of an AVC or HEVC record as `/stat` shows them ("High", "3.1"),
/// and AVC's compatibility flags; read from the record's fixed head alone, so a record
/// whose parameter sets are broken still says what it is.
pub fn video_profile(hevc: bool, rec: &[u8]) -> Option<(&'static str, u8, String)> {
    if !hevc && rec.len() >= 4 {
        let name = match rec[1] {
            66 => "Baseline",
            77 => "Main",
            88 => "Extended",
            100 => "High",
            110 => "High 10",
            122 => "High 4:2:2",
            144 | 244 => "High 4:4:4",
            _ => "",
        };
        return Some((name, rec[2], format!("{:.1}", f64::from(rec[3]) / 10.0)));
    }
    if hevc && rec.len() >= 13 {
        let name = match rec[1] & 0x1f {
            1 => "Main",
            2 => "Main 10",
            3 => "Main Still Picture",
            _ => "",
        };
        return Some((name, 0, format!("{:.1}", f64::from(rec[12]) / 30.0)));
    }
    None
}

/// An AudioSpecificConfig (ISO 14496-3 1.6.2.1), as far as ADTS and `/stat` need it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AacConfig {
    /// The audio object type as written (2 is LC, 5 HE, 29 HE v2).
    pub object_type: u8,
    pub sampling_index: u8,
    pub channels: u8,
}

pub const AAC_RATES: [u32; 13] = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];

/// Parses the first two bytes of an AudioSpecificConfig.
pub fn aac(asc: &[u8]) -> Option<AacConfig> {
    if asc.len() < 2 {
        return None;
    }
    Some(AacConfig {
        object_type: asc[0] >> 3,
        sampling_index: ((asc[0] & 7) << 1) | (asc[1] >> 7),
        channels: (asc[1] >> 3) & 0x0f,
    })
}

impl AacConfig {
    /// The sample rate (0 for an index outside the table).
    pub fn sample_rate(&self) -> u32 {
        AAC_RATES.get(usize::from(self.sampling_index)).copied().unwrap_or(0)
    }

    /// The profile's name as nginx-rtmp-module's `/stat` gives it.
    pub fn profile_name(&self) -> &'static str {
        match self.object_type {
            1 => "Main",
            2 => "LC",
            3 => "SSR",
            4 => "LTP",
            5 => "HE",
            29 => "HEv2",
            _ => "",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avc_record() {
        let rec = [1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 3, 0x67, 1, 2, 1, 0, 2, 0x68, 3];
        let cfg = avc(&rec).unwrap();
        assert_eq!(cfg.nal_length_size, 4);
        assert_eq!(cfg.parameter_sets, vec![vec![0x67, 1, 2], vec![0x68, 3]]);
        assert_eq!((cfg.profile, cfg.compat, cfg.level), (100, 0, 31));
        assert_eq!(video_profile(false, &rec), Some(("High", 0, "3.1".into())));
        assert_eq!(avc(&rec[..10]), None);
        assert_eq!(avc(&[]), None);
        assert_eq!(video_profile(false, &rec[..3]), None);
    }

    #[test]
    fn hevc_record() {
        let mut rec = vec![1u8, 1];
        rec.extend([0; 10]);
        rec.push(93); // level 3.1
        rec.extend([0; 8]);
        rec.push(0x0f); // lengthSizeMinusOne = 3
        rec.push(2); // two arrays
        rec.extend([0x20, 0, 1, 0, 2, 0x40, 1]); // VPS
        rec.extend([0x21, 0, 1, 0, 1, 0x42]); // SPS
        let cfg = hevc(&rec).unwrap();
        assert_eq!(cfg.nal_length_size, 4);
        assert_eq!(cfg.parameter_sets, vec![vec![0x40, 1], vec![0x42]]);
        assert_eq!(video_profile(true, &rec), Some(("Main", 0, "3.1".into())));
        assert_eq!(hevc(&rec[..rec.len() - 1]), None);
    }

    #[test]
    fn aac_config() {
        // AAC LC, 44100 Hz, stereo.
        let c = aac(&[0x12, 0x10]).unwrap();
        assert_eq!(c, AacConfig { object_type: 2, sampling_index: 4, channels: 2 });
        assert_eq!((c.sample_rate(), c.profile_name()), (44100, "LC"));
        assert_eq!(aac(&[0x12]), None);
        assert_eq!(aac(&[0x17, 0x90]).unwrap().sample_rate(), 0, "sampling index 15");
        assert_eq!(aac(&[0x2b, 0x92]).unwrap().profile_name(), "HE");
    }
}
