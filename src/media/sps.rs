//! The picture size an H.264 or H.265 sequence parameter set describes (ITU-T H.264
//! 7.3.2.1.1, H.265 7.3.2.2), for containers that state it (fMP4's `tkhd` and sample
//! entry). Reads only as far as the size; every read is checked (`None` past the end).

/// Reads bits, with emulation prevention bytes (`00 00 03`) removed.
struct Bits {
    b: Vec<u8>,
    pos: usize,
}

impl Bits {
    fn new(nal: &[u8]) -> Bits {
        let mut b = Vec::with_capacity(nal.len().min(256));
        let mut zeros = 0;
        // (The size is in the first few dozen bytes.)
        for &x in nal.iter().take(256) {
            if zeros >= 2 && x == 3 {
                zeros = 0;
                continue;
            }
            zeros = if x == 0 { zeros + 1 } else { 0 };
            b.push(x);
        }
        Bits { b, pos: 0 }
    }

    fn bit(&mut self) -> Option<u32> {
        let byte = *self.b.get(self.pos / 8)?;
        let v = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(u32::from(v))
    }

    fn bits(&mut self, n: u32) -> Option<u32> {
        (0..n).try_fold(0u32, |a, _| Some(a << 1 | self.bit()?))
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        self.pos += n;
        (self.pos <= self.b.len() * 8).then_some(())
    }

    /// ue(v).
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        Some(((1u64 << zeros) - 1 + u64::from(self.bits(zeros)?)).min(u64::from(u32::MAX)) as u32)
    }

    /// se(v).
    fn se(&mut self) -> Option<i64> {
        let k = i64::from(self.ue()?);
        Some(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }
}

fn clamp(v: i64) -> Option<u16> {
    u16::try_from(v).ok().filter(|&v| v > 0)
}

/// (width, height) from an H.264 SPS NAL unit (its header byte first).
pub fn avc_size(nal: &[u8]) -> Option<(u16, u16)> {
    let mut r = Bits::new(nal);
    r.skip(8)?;
    let profile = r.bits(8)?;
    r.skip(16)?;
    r.ue()?;
    let mut chroma = 1;
    let mut separate = false;
    if matches!(profile, 100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135) {
        chroma = r.ue()?;
        if chroma == 3 {
            separate = r.bit()? == 1;
        }
        r.ue()?;
        r.ue()?;
        r.skip(1)?;
        if r.bit()? == 1 {
            for i in 0..if chroma == 3 { 12 } else { 8 } {
                if r.bit()? == 1 {
                    let size = if i < 6 { 16 } else { 64 };
                    let (mut last, mut next) = (8i64, 8i64);
                    for _ in 0..size {
                        if next != 0 {
                            next = (last + r.se()? + 256).rem_euclid(256);
                        }
                        if next != 0 {
                            last = next;
                        }
                    }
                }
            }
        }
    }
    r.ue()?;
    match r.ue()? {
        0 => {
            r.ue()?;
        }
        1 => {
            r.skip(1)?;
            r.se()?;
            r.se()?;
            for _ in 0..r.ue()?.min(255) {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?;
    r.skip(1)?;
    let w = i64::from(r.ue()?) + 1;
    let h = i64::from(r.ue()?) + 1;
    let frame_mbs_only = i64::from(r.bit()?);
    if frame_mbs_only == 0 {
        r.skip(1)?;
    }
    r.skip(1)?;
    let mut crop = [0i64; 4];
    if r.bit()? == 1 {
        for c in &mut crop {
            *c = i64::from(r.ue()?);
        }
    }
    let (ux, uy) = match (chroma, separate) {
        (0, _) | (_, true) => (1, 2 - frame_mbs_only),
        (1, _) => (2, 2 * (2 - frame_mbs_only)),
        (2, _) => (2, 2 - frame_mbs_only),
        _ => (1, 2 - frame_mbs_only),
    };
    Some((clamp(w * 16 - ux * (crop[0] + crop[1]))?, clamp((2 - frame_mbs_only) * h * 16 - uy * (crop[2] + crop[3]))?))
}

/// (width, height) from an H.265 SPS NAL unit (its two header bytes first).
pub fn hevc_size(nal: &[u8]) -> Option<(u16, u16)> {
    let mut r = Bits::new(nal);
    r.skip(16)?;
    r.skip(4)?;
    let sub_layers = r.bits(3)? as usize;
    r.skip(1)?;
    // profile_tier_level: the general profile and level, then the sub-layers'.
    r.skip(96)?;
    let mut present = [(false, false); 8];
    for p in present.iter_mut().take(sub_layers) {
        *p = (r.bit()? == 1, r.bit()? == 1);
    }
    if sub_layers > 0 {
        r.skip(2 * (8 - sub_layers))?;
    }
    for &(profile, level) in present.iter().take(sub_layers) {
        if profile {
            r.skip(88)?;
        }
        if level {
            r.skip(8)?;
        }
    }
    r.ue()?;
    let chroma = r.ue()?;
    if chroma == 3 {
        r.skip(1)?;
    }
    let w = i64::from(r.ue()?);
    let h = i64::from(r.ue()?);
    let mut crop = [0i64; 4];
    if r.bit()? == 1 {
        for c in &mut crop {
            *c = i64::from(r.ue()?);
        }
    }
    let (sx, sy) = match chroma {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    Some((clamp(w - sx * (crop[0] + crop[1]))?, clamp(h - sy * (crop[2] + crop[3]))?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_of_real_parameter_sets() {
        // x264, 640x360 High (cropped from 640x368).
        let sps = [
            0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00,
            0x03, 0x00, 0x3c, 0x0f, 0x16, 0x2d, 0x96,
        ];
        assert_eq!(avc_size(&sps), Some((640, 360)));
        assert_eq!(avc_size(&sps[..6]), None);
        assert_eq!(avc_size(&[]), None);
        // x265, 1280x720 Main.
        let sps = [
            0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x5d, 0xa0,
            0x02, 0x80, 0x80, 0x2d, 0x16, 0x59, 0x59, 0xa4, 0x93, 0x2b, 0xc0, 0x5a, 0x02, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00,
            0x00, 0x03, 0x00, 0x3c, 0x10,
        ];
        assert_eq!(hevc_size(&sps), Some((1280, 720)));
        assert_eq!(hevc_size(&sps[..12]), None);
    }
}
