//! The live MPD (ISO/IEC 23009-1, DASH-IF live profile): one period, an adaptation set
//! per track, each a `SegmentTemplate` with `$Time$` names and a `SegmentTimeline` of the
//! listed fragments. Pure text from what the segmenter knows.

use std::collections::VecDeque;
use std::fmt::Write;

use super::{Config, Listed};
use crate::hls::codec::VideoCodec;
use crate::hls::playlist::iso8601;

/// One adaptation set.
pub struct Set<'a> {
    pub codecs: &'a str,
    pub timescale: u32,
    /// Video: the picture size.
    pub size: Option<(u16, u16)>,
    /// Audio: its channels.
    pub audio: Option<u16>,
    pub listed: &'a VecDeque<Listed>,
}

pub struct Mpd<'a> {
    pub cfg: &'a Config,
    /// File names start with this (`NAME-PUB-`, or `PUB-` when nested).
    pub prefix: &'a str,
    /// Stream time (ms) where the first fragment started, and the wall-clock time then.
    pub origin_ms: u64,
    pub origin_wall: i64,
    pub now_ms: i64,
    pub video: Option<Set<'a>>,
    pub audio: Option<Set<'a>>,
}

/// Seconds as an ISO 8601 duration (`PT5.000S`).
fn duration(ms: u64) -> String {
    format!("PT{}.{:03}S", ms / 1000, ms % 1000)
}

/// RFC 6381 names for a video decoder configuration record: `avc1.PPCCLL`, or
/// `hvc1.P.C.TL.B` (ISO/IEC 14496-15 annex E) for HEVC.
pub fn video_codec(codec: VideoCodec, rec: &[u8]) -> String {
    match codec {
        VideoCodec::Avc if rec.len() >= 4 => format!("avc1.{:02x}{:02x}{:02x}", rec[1], rec[2], rec[3]),
        VideoCodec::Hevc if rec.len() >= 13 => {
            let space = ["", "A", "B", "C"][usize::from(rec[1] >> 6)];
            let tier = if rec[1] & 0x20 != 0 { 'H' } else { 'L' };
            let profile = rec[1] & 0x1f;
            let compat = u32::from_be_bytes([rec[2], rec[3], rec[4], rec[5]]).reverse_bits();
            let mut s = format!("hvc1.{space}{profile}.{compat:X}.{tier}{}", rec[12]);
            let constraints = &rec[6..12];
            let used = constraints.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            for b in &constraints[..used] {
                let _ = write!(s, ".{b:X}");
            }
            if used == 0 {
                s.push_str(".B0");
            }
            s
        }
        VideoCodec::Avc => "avc1".into(),
        VideoCodec::Hevc => "hvc1".into(),
    }
}

fn set(s: &mut String, m: &Mpd, set: &Set, video: bool) {
    let (kind, ext) = if video { ("video", "m4v") } else { ("audio", "m4a") };
    let scale = u64::from(set.timescale.max(1));
    let (bytes, units) = set.listed.iter().fold((0u64, 0u64), |(b, d), l| (b + l.bytes, d + l.d));
    let bandwidth = (bytes * 8 * scale).checked_div(units).unwrap_or(1).max(1);
    let _ = writeln!(s, "    <AdaptationSet id=\"{}\" contentType=\"{kind}\" mimeType=\"{kind}/mp4\" segmentAlignment=\"true\" startWithSAP=\"1\">", u8::from(!video));
    let _ = write!(s, "      <Representation id=\"{kind}\" codecs=\"{}\" bandwidth=\"{bandwidth}\"", set.codecs);
    if let Some((w, h)) = set.size {
        let _ = write!(s, " width=\"{w}\" height=\"{h}\" sar=\"1:1\"");
    }
    if set.audio.is_some() {
        let _ = write!(s, " audioSamplingRate=\"{}\"", set.timescale);
    }
    s.push_str(">\n");
    if let Some(ch) = set.audio {
        let _ = writeln!(s, "        <AudioChannelConfiguration schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" value=\"{ch}\"/>");
    }
    let _ = writeln!(
        s,
        "        <SegmentTemplate timescale=\"{scale}\" presentationTimeOffset=\"{}\" initialization=\"{p}init.{ext}\" media=\"{p}$Time$.{ext}\">",
        m.origin_ms * scale / 1000,
        p = m.prefix
    );
    s.push_str("          <SegmentTimeline>\n");
    for l in set.listed {
        let _ = writeln!(s, "            <S t=\"{}\" d=\"{}\"/>", l.t, l.d);
    }
    s.push_str("          </SegmentTimeline>\n        </SegmentTemplate>\n      </Representation>\n    </AdaptationSet>\n");
}

/// How much later than its end (in media time from the first fragment's wall-clock start)
/// a fragment is said to be available: it is written when the next keyframe arrives,
/// which is after its end by the encoder's and the network's delay, so a player that
/// goes by the clock to the live edge would ask for it too early.
const AVAILABILITY_MARGIN_MS: i64 = 500;

pub fn write(m: &Mpd) -> String {
    let fragment = m.cfg.fragment;
    let mut s = String::with_capacity(2048);
    s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" type=\"dynamic\" profiles=\"urn:mpeg:dash:profile:isoff-live:2011\" availabilityStartTime=\"{}\" publishTime=\"{}\" minimumUpdatePeriod=\"{}\" minBufferTime=\"{}\" timeShiftBufferDepth=\"{}\" suggestedPresentationDelay=\"{}\">",
        iso8601(m.origin_wall + AVAILABILITY_MARGIN_MS),
        iso8601(m.now_ms),
        duration(fragment),
        duration(fragment),
        duration(m.cfg.playlist_length),
        duration(fragment * 2),
    );
    s.push_str("  <Period id=\"0\" start=\"PT0S\">\n");
    if let Some(v) = &m.video {
        set(&mut s, m, v, true);
    }
    if let Some(a) = &m.audio {
        set(&mut s, m, a, false);
    }
    s.push_str("  </Period>\n");
    // The server's clock, so players need no time server of their own.
    let _ = writeln!(s, "  <UTCTiming schemeIdUri=\"urn:mpeg:dash:utc:direct:2014\" value=\"{}\"/>", iso8601(m.now_ms));
    s.push_str("</MPD>\n");
    s
}
