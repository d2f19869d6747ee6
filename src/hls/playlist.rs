//! Media playlists (RFC 8216): rendering the window of segments, and reading back one we
//! wrote (for `hls_continuous`, which continues a stream's numbering after a restart).

use std::fmt::Write;

/// One segment as the playlist lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// What the playlist says (base URL, name, id).
    pub uri: String,
    pub duration: f64,
    /// `EXT-X-DISCONTINUITY` before it.
    pub discont: bool,
    /// Wall clock at its first frame, ms since the Unix epoch.
    pub date_ms: Option<i64>,
    /// AES-128 key URI and IV.
    pub key: Option<(String, u128)>,
    /// fMP4: the init segment's URI (`EXT-X-MAP`).
    pub map: Option<String>,
    /// Low-latency HLS: the segment's parts. (Listed for every segment in the window: hls.js
    /// 1.7 failed a playlist update, "media sequence mismatch", when the parts of the
    /// oldest of four segments were left out as RFC 8216bis allows.)
    pub parts: Vec<PartEntry>,
}

/// A part of a segment (`EXT-X-PART`).
#[derive(Clone, Debug, PartialEq)]
pub struct PartEntry {
    pub uri: String,
    pub duration: f64,
    /// It starts with a keyframe.
    pub independent: bool,
}

/// Low-latency HLS: the part target (s), and the parts of the segment being written.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Parts {
    pub target: f64,
    /// `PART-HOLD-BACK` (s): how far from the end players start.
    pub hold_back: f64,
    pub open: Vec<PartEntry>,
}



#[derive(Clone, Debug, Default, PartialEq)]
pub struct Playlist {
    /// Media sequence number of the first entry.
    pub sequence: u64,
    /// Discontinuities that slid out of the window.
    pub discontinuity_sequence: u64,
    pub target: u64,
    pub event: bool,
    pub ended: bool,
    pub entries: Vec<Entry>,
    /// Low-latency HLS (`hls_partial_duration`).
    pub parts: Option<Parts>,
}

/// `2026-11-24T09:25:55.123Z`.
pub fn iso8601(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86400);
    let sod = secs.rem_euclid(86400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60,
        ms.rem_euclid(1000)
    )
}

fn parse_iso8601(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hh, mm, ss) = (n(11..13)?, n(14..16)?, n(17..19)?);
    let ms = if b[19] == b'.' { n(20..23).unwrap_or(0) } else { 0 };
    // Days from civil (inverse of the above).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86400 + hh * 3600 + mm * 60 + ss) * 1000) + ms)
}

impl Playlist {
    pub fn render(&self) -> String {
        let mut s = String::with_capacity(128 + self.entries.len() * 120);
        // (EXT-X-MAP outside I-frame playlists needs version 6; 7 as other fMP4 writers.)
        let version = if self.entries.iter().any(|e| e.map.is_some()) { 7 } else { 3 };
        let _ = write!(
            s,
            "#EXTM3U\n#EXT-X-VERSION:{version}\n#EXT-X-MEDIA-SEQUENCE:{}\n#EXT-X-TARGETDURATION:{}\n",
            self.sequence, self.target
        );
        if self.discontinuity_sequence > 0 {
            let _ = writeln!(s, "#EXT-X-DISCONTINUITY-SEQUENCE:{}", self.discontinuity_sequence);
        }
        if self.event {
            s.push_str("#EXT-X-PLAYLIST-TYPE:EVENT\n");
        }
        if let Some(p) = &self.parts {
            let _ = write!(s, "#EXT-X-PART-INF:PART-TARGET={:.3}\n#EXT-X-SERVER-CONTROL:PART-HOLD-BACK={:.3}\n", p.target, p.hold_back);
        }
        let part_line = |s: &mut String, p: &PartEntry| {
            let _ = writeln!(s, "#EXT-X-PART:DURATION={:.3},URI=\"{}\"{}", p.duration, p.uri, if p.independent { ",INDEPENDENT=YES" } else { "" });
        };
        let mut key: Option<&(String, u128)> = None;
        let mut map: Option<&String> = None;
        for e in &self.entries {
            if e.discont {
                s.push_str("#EXT-X-DISCONTINUITY\n");
            }
            if e.map.is_some() && e.map.as_ref() != map {
                let _ = writeln!(s, "#EXT-X-MAP:URI=\"{}\"", e.map.as_deref().unwrap_or(""));
                map = e.map.as_ref();
            }
            if e.key.as_ref() != key {
                if let Some((uri, iv)) = &e.key {
                    let _ = writeln!(s, "#EXT-X-KEY:METHOD=AES-128,URI=\"{uri}\",IV=0x{iv:032X}");
                } else {
                    s.push_str("#EXT-X-KEY:METHOD=NONE\n");
                }
                key = e.key.as_ref();
            }
            if let Some(ms) = e.date_ms {
                let _ = writeln!(s, "#EXT-X-PROGRAM-DATE-TIME:{}", iso8601(ms));
            }
            if self.parts.is_some() {
                e.parts.iter().for_each(|p| part_line(&mut s, p));
            }
            let _ = write!(s, "#EXTINF:{:.3},\n{}\n", e.duration, e.uri);
        }
        if let Some(p) = &self.parts {
            p.open.iter().for_each(|p| part_line(&mut s, p));
        }
        if self.ended {
            s.push_str("#EXT-X-ENDLIST\n");
        }
        s
    }

    /// Reads a playlist this module wrote. `None` if it is not one (no `#EXTM3U`).
    pub fn parse(text: &str) -> Option<Playlist> {
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        if lines.next()? != "#EXTM3U" {
            return None;
        }
        let mut p = Playlist::default();
        let (mut discont, mut date_ms, mut duration, mut key) = (false, None, None, None);
        let mut map = None;
        for line in lines {
            if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
                p.sequence = v.parse().ok()?;
            } else if let Some(v) = line.strip_prefix("#EXT-X-DISCONTINUITY-SEQUENCE:") {
                p.discontinuity_sequence = v.parse().ok()?;
            } else if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
                p.target = v.parse().ok()?;
            } else if line.starts_with("#EXT-X-PLAYLIST-TYPE:") {
                p.event = line.ends_with("EVENT");
            } else if line == "#EXT-X-DISCONTINUITY" {
                discont = true;
            } else if line == "#EXT-X-ENDLIST" {
                p.ended = true;
            } else if let Some(v) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
                date_ms = parse_iso8601(v);
            } else if let Some(v) = line.strip_prefix("#EXT-X-KEY:") {
                key = if v.starts_with("METHOD=NONE") {
                    None
                } else {
                    let uri = v.split("URI=\"").nth(1)?.split('"').next()?.to_owned();
                    let iv = v.split("IV=0x").nth(1).and_then(|h| u128::from_str_radix(h.trim(), 16).ok()).unwrap_or(0);
                    Some((uri, iv))
                };
            } else if let Some(v) = line.strip_prefix("#EXT-X-MAP:") {
                map = Some(v.split("URI=\"").nth(1)?.split('"').next()?.to_owned());
            } else if let Some(v) = line.strip_prefix("#EXTINF:") {
                duration = v.split(',').next()?.parse::<f64>().ok();
            } else if !line.starts_with('#') {
                p.entries.push(Entry {
                    uri: line.to_owned(),
                    duration: duration.take()?,
                    discont: std::mem::take(&mut discont),
                    date_ms: date_ms.take(),
                    key: key.clone(),
                    map: map.clone(),
                    // (Parts are for the live edge: an earlier publisher's are not kept.)
                    parts: Vec::new(),
                });
            }
        }
        Some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_795_512_355_123), "2026-11-24T09:25:55.123Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
        for ms in [0, 1_795_512_355_123, 951_782_400_999, 4_102_444_800_000] {
            assert_eq!(parse_iso8601(&iso8601(ms)), Some(ms));
        }
    }

    #[test]
    fn render_and_parse_back() {
        let e = |n: u64, discont, key: Option<u128>| Entry {
            uri: format!("s-{n}.ts"),
            duration: 2.0 + n as f64 / 1000.0,
            discont,
            date_ms: Some(1_795_512_355_000 + n as i64 * 2000),
            key: key.map(|k| (format!("k-{k}.key"), k)),
            map: None,
            parts: Vec::new(),
        };
        let p = Playlist {
            sequence: 6,
            discontinuity_sequence: 1,
            target: 2,
            event: false,
            ended: false,
            entries: vec![e(6, false, Some(6)), e(7, true, Some(6)), e(8, false, Some(8))],
            parts: None,
        };
        let text = p.render();
        assert!(text.starts_with("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:6\n#EXT-X-TARGETDURATION:2\n"));
        assert_eq!(text.matches("#EXT-X-KEY").count(), 2, "a key line where the key changes");
        assert!(text.contains("IV=0x00000000000000000000000000000006"));
        assert!(text.contains("#EXTINF:2.007,\ns-7.ts\n"));
        assert_eq!(Playlist::parse(&text), Some(p));
        assert_eq!(Playlist::parse("garbage"), None);
        // nginx-rtmp-module's own playlists read too.
        let theirs = include_str!("testdata/nginx-rtmp-final.m3u8");
        let p = Playlist::parse(theirs).unwrap();
        assert_eq!((p.sequence, p.entries.len(), p.entries[4].duration), (6, 5, 1.989));
    }
}
