//! RTP H.264 (RFC 6184, packetization-mode 1) to FLV video tag bodies.
//!
//! Sans-IO: RTP packets go in (already decrypted, header parsed, padding removed),
//! FLV VIDEODATA bodies come out, as an RTMP publisher would send them.

use bytes::Bytes;

const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const NAL_AUD: u8 = 9;
const NAL_FILLER: u8 = 12;
const STAP_A: u8 = 24;
const FU_A: u8 = 28;

/// FLV frame/codec byte, AVC packet type and composition time.
const TAG_HEADER: usize = 5;
/// SPS/PPS longer than this cannot go in an avcC (16-bit lengths).
const MAX_PARAM_SET: usize = u16::MAX as usize;

/// One FLV VIDEODATA body ready for RTMP (what an RTMP publisher sends).
#[derive(Debug, Clone, PartialEq)]
pub struct VideoTag {
    /// RTP timestamp (90 kHz) of the access unit.
    pub rtp_ts: u32,
    pub keyframe: bool,
    /// An AVC sequence header (AVCDecoderConfigurationRecord), not a picture.
    pub sequence_header: bool,
    pub body: Bytes,
}

/// The access unit being assembled.
struct Au {
    ts: u32,
    /// Tag header, then each NAL unit as a 4-byte length and its bytes.
    body: Vec<u8>,
    idr: bool,
    /// Where the FU-A NAL unit being reassembled starts in `body` (at its length).
    fu: Option<usize>,
    /// Damaged or not wanted: keep nothing more of it.
    skip: bool,
}

impl Au {
    fn new(ts: u32, skip: bool) -> Self {
        let body = if skip {
            Vec::new()
        } else {
            vec![0; TAG_HEADER]
        };
        Au {
            ts,
            body,
            idr: false,
            fu: None,
            skip,
        }
    }

    /// Bytes buffered after the tag header.
    fn buffered(&self) -> usize {
        self.body.len().saturating_sub(TAG_HEADER)
    }

    fn drop_data(&mut self) {
        self.skip = true;
        self.fu = None;
        self.body = Vec::new();
    }
}

/// Reassembles H.264 access units from RTP packets of one SSRC.
pub struct Depacketizer {
    max_au: usize,
    last_seq: Option<u16>,
    sps: Option<Vec<u8>>,
    pps: Option<Vec<u8>>,
    /// SPS and PPS of the last sequence header emitted.
    sent: Option<(Vec<u8>, Vec<u8>)>,
    au: Option<Au>,
    /// After a loss the next access unit is damaged too (lost packets may be its start).
    skip_next: bool,
    /// Emit nothing until an IDR with known SPS and PPS.
    need_idr: bool,
    key_req: bool,
}

impl Depacketizer {
    /// `max_au` bounds the bytes of one access unit being assembled.
    pub fn new(max_au: usize) -> Self {
        Depacketizer {
            max_au,
            last_seq: None,
            sps: None,
            pps: None,
            sent: None,
            au: None,
            skip_next: false,
            need_idr: true,
            key_req: true,
        }
    }

    /// SPS/PPS from the SDP fmtp `sprop-parameter-sets` (comma-separated base64); bad input ignored.
    pub fn set_sprop(&mut self, sprop: &str) {
        // Longest base64 text of a parameter set we would keep.
        const MAX_TEXT: usize = MAX_PARAM_SET.div_ceil(3) * 4;
        for part in sprop.split(',') {
            let part = part.trim();
            if part.len() > MAX_TEXT {
                continue;
            }
            let Some(nal) = base64_decode(part.as_bytes()) else {
                continue;
            };
            match nal.first() {
                Some(&h) if h & 0x80 == 0 && h & 0x1F == NAL_SPS => self.set_sps(&nal),
                Some(&h) if h & 0x80 == 0 && h & 0x1F == NAL_PPS => self.set_pps(&nal),
                _ => {}
            }
        }
    }

    /// One RTP packet: sequence number, timestamp, marker bit, payload. Returns the tags
    /// completed by it: usually 0, 1 or 2 (a sequence header before a keyframe when SPS/PPS
    /// are new or changed); up to 4 when a timestamp change completes the previous access
    /// unit and the marker bit completes this one.
    pub fn push(&mut self, seq: u16, ts: u32, marker: bool, payload: &[u8]) -> Vec<VideoTag> {
        let mut out = Vec::new();
        if let Some(last) = self.last_seq {
            let d = seq.wrapping_sub(last);
            if d == 0 || d >= 0x8000 {
                // Duplicate or late: already past it.
                return out;
            }
            if d != 1 {
                self.lose();
            }
        }
        self.last_seq = Some(seq);
        if payload.is_empty() {
            // Padding-only packet: it only takes a sequence number.
            return out;
        }
        if self.au.as_ref().is_some_and(|au| au.ts != ts) {
            self.finish(&mut out);
        }
        if self.au.is_none() {
            self.au = Some(Au::new(ts, self.skip_next));
            self.skip_next = false;
        }
        self.packet(payload);
        if marker {
            self.finish(&mut out);
        }
        out
    }

    /// True (then reset to false) when the sender should be asked for a keyframe (PLI): at
    /// the start before any IDR, after packet loss, after an oversized access unit, after a
    /// malformed packet, after an IDR without known SPS/PPS.
    pub fn take_keyframe_request(&mut self) -> bool {
        std::mem::take(&mut self.key_req)
    }

    /// True while nothing is emitted until the next IDR (for repeating a PLI).
    pub fn waiting_for_keyframe(&self) -> bool {
        self.need_idr
    }

    /// Wait for the next IDR and ask for one.
    fn want_idr(&mut self) {
        self.need_idr = true;
        self.key_req = true;
    }

    /// Packets were lost: drop the access unit in progress and the next one.
    fn lose(&mut self) {
        self.au = None;
        self.skip_next = true;
        self.want_idr();
    }

    /// Malformed packet, broken FU-A or oversized access unit: drop the access unit.
    fn damage(&mut self) {
        if let Some(au) = self.au.as_mut() {
            au.drop_data();
        }
        self.want_idr();
    }

    fn packet(&mut self, p: &[u8]) {
        let Some(&h) = p.first() else { return };
        if h & 0x80 != 0 {
            return self.damage();
        }
        let t = h & 0x1F;
        if t != FU_A && self.au.as_ref().is_some_and(|au| au.fu.is_some()) {
            // A FU-A never got its end.
            return self.damage();
        }
        match t {
            1..=23 => self.nal(p),
            STAP_A => self.stap_a(p),
            FU_A => self.fu_a(p),
            // STAP-B, MTAP16, MTAP24, FU-B, reserved.
            _ => self.damage(),
        }
    }

    fn stap_a(&mut self, p: &[u8]) {
        let units = p.get(1..).unwrap_or(&[]);
        if units.is_empty() || StapUnits(units).any(|u| u.is_none()) {
            return self.damage();
        }
        for nal in StapUnits(units).flatten() {
            self.nal(nal);
        }
    }

    /// One whole NAL unit (single NAL unit packet or STAP-A unit).
    fn nal(&mut self, nal: &[u8]) {
        let Some(&h) = nal.first() else {
            return self.damage();
        };
        let t = h & 0x1F;
        if h & 0x80 != 0 || t == 0 || t >= 24 {
            return self.damage();
        }
        match t {
            NAL_SPS => self.set_sps(nal),
            NAL_PPS => self.set_pps(nal),
            NAL_AUD | NAL_FILLER => {}
            _ => self.append(t, nal),
        }
    }

    fn append(&mut self, t: u8, nal: &[u8]) {
        let (max_au, need_idr) = (self.max_au, self.need_idr);
        let Some(au) = self.au.as_mut() else { return };
        if au.skip {
            return;
        }
        if need_idr && is_non_idr_slice(t) {
            // Not an IDR picture: nothing of it will be emitted.
            au.drop_data();
            return;
        }
        let Ok(len) = u32::try_from(nal.len()) else {
            return self.damage();
        };
        if au.buffered().saturating_add(4).saturating_add(nal.len()) > max_au {
            return self.damage();
        }
        au.body.extend_from_slice(&len.to_be_bytes());
        au.body.extend_from_slice(nal);
        if t == NAL_IDR {
            au.idr = true;
        }
    }

    fn fu_a(&mut self, p: &[u8]) {
        let (Some(&ind), Some(&fh)) = (p.first(), p.get(1)) else {
            return self.damage();
        };
        let data = p.get(2..).unwrap_or(&[]);
        let (start, end, t) = (fh & 0x80 != 0, fh & 0x40 != 0, fh & 0x1F);
        if (start && end) || t == 0 || t >= 24 {
            return self.damage();
        }
        let (max_au, need_idr) = (self.max_au, self.need_idr);
        let Some(au) = self.au.as_mut() else { return };
        if au.skip {
            return;
        }
        let pos = if start {
            if au.fu.is_some() {
                // The previous FU-A never got its end.
                return self.damage();
            }
            if need_idr && is_non_idr_slice(t) {
                au.drop_data();
                return;
            }
            if au.buffered().saturating_add(5).saturating_add(data.len()) > max_au {
                return self.damage();
            }
            let pos = au.body.len();
            au.body.extend_from_slice(&[0, 0, 0, 0, (ind & 0xE0) | t]);
            au.fu = Some(pos);
            pos
        } else {
            let Some(pos) = au.fu else {
                // Start missing.
                return self.damage();
            };
            let open = au.body.get(pos + 4).map(|h| h & 0x1F);
            if open != Some(t) {
                // Fragments of different NAL units interleaved.
                return self.damage();
            }
            if au.buffered().saturating_add(data.len()) > max_au {
                return self.damage();
            }
            pos
        };
        au.body.extend_from_slice(data);
        if !end {
            return;
        }
        au.fu = None;
        match t {
            NAL_SPS | NAL_PPS => {
                let nal = au.body.get(pos + 4..).unwrap_or(&[]).to_vec();
                au.body.truncate(pos);
                if t == NAL_SPS {
                    self.set_sps(&nal);
                } else {
                    self.set_pps(&nal);
                }
            }
            NAL_AUD | NAL_FILLER => au.body.truncate(pos),
            _ => {
                let len = au.body.len().saturating_sub(pos + 4);
                let Ok(len) = u32::try_from(len) else {
                    return self.damage();
                };
                if let Some(prefix) = au.body.get_mut(pos..pos + 4) {
                    prefix.copy_from_slice(&len.to_be_bytes());
                }
                if t == NAL_IDR {
                    au.idr = true;
                }
            }
        }
    }

    /// Ends the access unit in progress, emitting it if whole and wanted.
    fn finish(&mut self, out: &mut Vec<VideoTag>) {
        let Some(mut au) = self.au.take() else { return };
        if au.skip {
            return;
        }
        if au.fu.is_some() {
            // FU-A end missing.
            return self.want_idr();
        }
        if au.buffered() == 0 {
            return;
        }
        if au.idr {
            let (Some(sps), Some(pps)) = (self.sps.as_ref(), self.pps.as_ref()) else {
                return self.want_idr();
            };
            let same = self
                .sent
                .as_ref()
                .is_some_and(|(s, p)| s == sps && p == pps);
            if !same {
                out.push(VideoTag {
                    rtp_ts: au.ts,
                    keyframe: true,
                    sequence_header: true,
                    body: Bytes::from(sequence_header(sps, pps)),
                });
                self.sent = Some((sps.clone(), pps.clone()));
            }
            self.need_idr = false;
        } else if self.need_idr {
            return;
        }
        if let Some(head) = au.body.get_mut(..TAG_HEADER) {
            head.copy_from_slice(&[if au.idr { 0x17 } else { 0x27 }, 0x01, 0, 0, 0]);
        }
        out.push(VideoTag {
            rtp_ts: au.ts,
            keyframe: au.idr,
            sequence_header: false,
            body: Bytes::from(au.body),
        });
    }

    fn set_sps(&mut self, nal: &[u8]) {
        if (4..=MAX_PARAM_SET).contains(&nal.len()) && self.sps.as_deref() != Some(nal) {
            self.sps = Some(nal.to_vec());
        }
    }

    fn set_pps(&mut self, nal: &[u8]) {
        if (2..=MAX_PARAM_SET).contains(&nal.len()) && self.pps.as_deref() != Some(nal) {
            self.pps = Some(nal.to_vec());
        }
    }
}

/// Coded slice types of non-IDR pictures (slice and data partitions A, B, C).
fn is_non_idr_slice(t: u8) -> bool {
    (1..=4).contains(&t)
}

/// The NAL units of a STAP-A payload (after its header): `None` where malformed.
struct StapUnits<'a>(&'a [u8]);

impl<'a> Iterator for StapUnits<'a> {
    type Item = Option<&'a [u8]>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let unit = match self.0 {
            [hi, lo, rest @ ..] => {
                let n = usize::from(u16::from_be_bytes([*hi, *lo]));
                match (rest.get(..n), rest.get(n..)) {
                    (Some(nal), Some(tail)) if n > 0 => {
                        self.0 = tail;
                        return Some(Some(nal));
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        self.0 = &[];
        Some(unit)
    }
}

/// FLV AVC sequence header body: tag header and AVCDecoderConfigurationRecord.
fn sequence_header(sps: &[u8], pps: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(TAG_HEADER + 11 + sps.len() + pps.len());
    b.extend_from_slice(&[0x17, 0x00, 0, 0, 0]);
    b.push(1); // configurationVersion
    b.extend_from_slice(sps.get(1..4).unwrap_or(&[0, 0, 0]));
    b.push(0xFF); // 4-byte NAL lengths
    b.push(0xE1); // one SPS
    b.extend_from_slice(&(sps.len() as u16).to_be_bytes());
    b.extend_from_slice(sps);
    b.push(1); // one PPS
    b.extend_from_slice(&(pps.len() as u16).to_be_bytes());
    b.extend_from_slice(pps);
    b
}

/// Standard base64 (RFC 4648), padding optional; `None` if not valid.
fn base64_decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3 + 2);
    let (mut acc, mut bits, mut n, mut pad) = (0u32, 0u32, 0usize, 0usize);
    for &c in s {
        if c == b'=' {
            pad += 1;
            continue;
        }
        if pad > 0 {
            return None;
        }
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        n += 1;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if n % 4 == 1 || pad > 2 || (pad > 0 && (n + pad) % 4 != 0) {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests;
