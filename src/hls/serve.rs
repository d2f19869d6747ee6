//! `hls_serve`: a live playlist served with RFC 8216bis's low-latency delivery on top of
//! the file the segmenter writes: blocking playlist reload (`_HLS_msn`, `_HLS_part`: the
//! answer waits until the playlist has that segment or part; `400` for one too far ahead)
//! and delta updates (`_HLS_skip=YES`: the oldest segments replaced by `EXT-X-SKIP`);
//! a rendition of a master playlist (`NAME_SUFFIX` beside `NAME.m3u8`: `hls_variant`,
//! `transcode`) reports where the other renditions are (`EXT-X-RENDITION-REPORT`).
//! Pure functions of the playlist's text and the request's query; the glue holds the
//! request and looks again.

use std::fmt::Write;

/// What a playlist request asks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Request {
    pub msn: Option<u64>,
    pub part: Option<u64>,
    pub skip: bool,
}

/// Reads the query (`_HLS_msn=M&_HLS_part=P&_HLS_skip=YES|v2`); other arguments are left
/// alone. `Err`: a malformed value, or `_HLS_part` without `_HLS_msn` (400).
pub fn request(query: &str) -> Result<Request, &'static str> {
    let mut r = Request::default();
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "_HLS_msn" => r.msn = Some(v.parse().map_err(|_| "_HLS_msn must be a number")?),
            "_HLS_part" => r.part = Some(v.parse().map_err(|_| "_HLS_part must be a number")?),
            "_HLS_skip" => r.skip = v == "YES" || v == "v2",
            _ => {}
        }
    }
    if r.part.is_some() && r.msn.is_none() {
        return Err("_HLS_part without _HLS_msn");
    }
    Ok(r)
}

#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// The playlist to send.
    Ready(String),
    /// Not there yet: look again later.
    Wait,
    /// More than two segments ahead of the playlist (RFC 8216bis 6.2.5.2): 400.
    TooFar,
}

/// What the playlist says about where it is.
struct State {
    /// The media sequence number of the last complete segment (None: none yet).
    last: Option<u64>,
    /// Parts listed after the last complete segment (of the one being written).
    parts_after: u64,
    ended: bool,
    target: u64,
}

fn state(text: &str) -> State {
    let mut seq = 0u64;
    let mut segments = 0u64;
    let mut parts_after = 0u64;
    let mut ended = false;
    let mut target = 0;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            seq = v.trim().parse().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            target = v.trim().parse().unwrap_or(0);
        } else if line.starts_with("#EXT-X-PART:") {
            parts_after += 1;
        } else if line.starts_with("#EXT-X-ENDLIST") {
            ended = true;
        } else if !line.is_empty() && !line.starts_with('#') {
            segments += 1;
            parts_after = 0;
        }
    }
    State { last: (segments > 0).then(|| seq.saturating_add(segments - 1)), parts_after, ended, target }
}

/// The master playlist a rendition's playlist file may belong to: `NAME_SUFFIX.m3u8` ->
/// `NAME.m3u8`.
pub fn master_of(file: &str) -> Option<String> {
    let stem = file.strip_suffix(".m3u8")?;
    let (name, suffix) = stem.rsplit_once('_')?;
    (!name.is_empty() && !suffix.is_empty()).then(|| format!("{name}.m3u8"))
}

/// The playlists a master playlist lists (plain names, beside it).
pub fn renditions(master: &str) -> Vec<&str> {
    master.lines().filter(|l| !l.is_empty() && !l.starts_with('#') && !l.contains(['/', '?', '"'])).collect()
}

/// `EXT-X-RENDITION-REPORT` for the playlist `uri` whose text is `text`: its last segment
/// (or the one being written) and last part.
pub fn report(uri: &str, text: &str) -> Option<String> {
    let st = state(text);
    if st.parts_after > 0 {
        let msn = st.last.map_or(0, |l| l.saturating_add(1));
        return Some(format!("#EXT-X-RENDITION-REPORT:URI=\"{uri}\",LAST-MSN={msn},LAST-PART={}", st.parts_after - 1));
    }
    st.last.map(|msn| format!("#EXT-X-RENDITION-REPORT:URI=\"{uri}\",LAST-MSN={msn}"))
}

/// The answer to `req` from the playlist `text` as it is now; `reports` gives the other
/// renditions' `EXT-X-RENDITION-REPORT` lines (asked only for an answer that is ready),
/// added at the end.
pub fn answer(text: &str, req: &Request, reports: impl FnOnce() -> Vec<String>) -> Answer {
    let st = state(text);
    if let Some(m) = req.msn {
        let next = st.last.map_or(0, |l| l.saturating_add(1));
        if !st.ended {
            if m > next.saturating_add(1) {
                return Answer::TooFar;
            }
            let ready = m < next || (m == next && req.part.is_some_and(|p| st.parts_after > p));
            if !ready {
                return Answer::Wait;
            }
        }
    }
    let mut out = rewrite(text, req.skip, st.target);
    for r in reports() {
        out.push_str(&r);
        out.push('\n');
    }
    Answer::Ready(out)
}

/// The served playlist: `CAN-BLOCK-RELOAD=YES` and `CAN-SKIP-UNTIL` (six target durations)
/// said in `EXT-X-SERVER-CONTROL`, and for a delta update the segments older than that
/// replaced by `EXT-X-SKIP` (not across a discontinuity, an init segment or a key change,
/// whose tags must stay; the playlist is then sent whole).
pub fn rewrite(text: &str, skip: bool, target: u64) -> String {
    let until = target.clamp(1, 1 << 32) * 6;
    let mut head: Vec<&str> = Vec::new();
    let mut blocks: Vec<(Vec<&str>, f64)> = Vec::new();
    let mut cur: Vec<&str> = Vec::new();
    let mut in_body = false;
    let mut tail: Vec<&str> = Vec::new();
    for line in text.lines() {
        let media = !line.is_empty() && !line.starts_with('#');
        // (An init segment or key before the first segment stays in the header.)
        let segment_tag = ["#EXTINF:", "#EXT-X-PART:", "#EXT-X-PROGRAM-DATE-TIME:", "#EXT-X-DISCONTINUITY"]
            .iter()
            .any(|t| line.starts_with(t) && !(*t == "#EXT-X-DISCONTINUITY" && line.starts_with("#EXT-X-DISCONTINUITY-SEQUENCE")));
        if !in_body && !segment_tag && !media {
            head.push(line);
            continue;
        }
        in_body = true;
        cur.push(line);
        if media {
            let d = cur.iter().find_map(|l| l.strip_prefix("#EXTINF:")).and_then(|v| v.split(',').next()?.parse().ok()).unwrap_or(0.0);
            blocks.push((std::mem::take(&mut cur), d));
        }
    }
    tail.append(&mut cur);
    // Segments that may be skipped: the oldest, while what follows them lasts `until`.
    let mut skipped = 0;
    if skip {
        let total: f64 = blocks.iter().map(|b| b.1).sum();
        let mut before = 0.0;
        for (lines, d) in &blocks {
            let later = total - before - d;
            let sticky = lines.iter().any(|l| l.starts_with("#EXT-X-DISCONTINUITY") || l.starts_with("#EXT-X-MAP:") || l.starts_with("#EXT-X-KEY:"));
            if later < until as f64 || (sticky && skipped > 0) {
                break;
            }
            if sticky {
                // (Its tags apply to the segments after it: nothing is skipped.)
                break;
            }
            skipped += 1;
            before += d;
        }
    }
    let mut out = String::with_capacity(text.len() + 64);
    let control = format!("CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL={until}.0");
    // With blocking reload a player learns of each part as it comes, so three parts of
    // hold-back are enough (RFC 8216bis's recommendation); the file on disk, for players
    // that poll it, keeps a segment more.
    let part_target = head.iter().find_map(|l| l.strip_prefix("#EXT-X-PART-INF:PART-TARGET=")).and_then(|v| v.parse::<f64>().ok());
    let mut said = head.iter().any(|l| l.starts_with("#EXT-X-SERVER-CONTROL:"));
    for l in &head {
        if let Some(v) = l.strip_prefix("#EXT-X-SERVER-CONTROL:") {
            let rest: Vec<String> = v
                .split(',')
                .map(|a| match (a.strip_prefix("PART-HOLD-BACK="), part_target) {
                    (Some(_), Some(t)) => format!("PART-HOLD-BACK={:.3}", t * 3.0),
                    _ => a.to_owned(),
                })
                .collect();
            let _ = writeln!(out, "#EXT-X-SERVER-CONTROL:{control},{}", rest.join(","));
        } else if skipped > 0 && l.starts_with("#EXT-X-VERSION:") {
            // (EXT-X-SKIP needs version 9.)
            out.push_str("#EXT-X-VERSION:9\n");
        } else {
            out.push_str(l);
            out.push('\n');
            if !said && l.starts_with("#EXT-X-TARGETDURATION:") {
                let _ = writeln!(out, "#EXT-X-SERVER-CONTROL:{control}");
                said = true;
            }
        }
    }
    if skipped > 0 {
        let _ = writeln!(out, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
    }
    for (lines, _) in blocks.iter().skip(skipped) {
        for l in lines {
            out.push_str(l);
            out.push('\n');
        }
    }
    for l in tail {
        out.push_str(l);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIVE: &str = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:1\n#EXT-X-PART-INF:PART-TARGET=0.250\n#EXT-X-SERVER-CONTROL:PART-HOLD-BACK=1.750\n#EXT-X-MEDIA-SEQUENCE:10\n#EXT-X-MAP:URI=\"s-init1.mp4\"\n#EXTINF:1.000,\ns-10.m4s\n#EXTINF:1.000,\ns-11.m4s\n#EXT-X-PART:DURATION=0.250,URI=\"s-12.0.m4s\",INDEPENDENT=YES\n#EXT-X-PART:DURATION=0.250,URI=\"s-12.1.m4s\"\n";

    #[test]
    fn blocking_reload_waits_for_the_part_and_refuses_too_far() {
        let ask = |q: &str| answer(LIVE, &request(q).unwrap(), Vec::new);
        assert!(matches!(ask(""), Answer::Ready(_)));
        assert!(matches!(ask("_HLS_msn=11"), Answer::Ready(_)), "segment 11 is complete");
        assert!(matches!(ask("_HLS_msn=12&_HLS_part=1"), Answer::Ready(_)), "part 1 of 12 is listed");
        assert_eq!(ask("_HLS_msn=12&_HLS_part=2"), Answer::Wait);
        assert_eq!(ask("_HLS_msn=12"), Answer::Wait, "segment 12 is not complete");
        assert_eq!(ask("_HLS_msn=13&_HLS_part=0"), Answer::Wait, "next but one: held");
        assert_eq!(ask("_HLS_msn=14"), Answer::TooFar);
        assert!(request("_HLS_part=1").is_err());
        assert!(request("_HLS_msn=x").is_err());
        let ended = format!("{LIVE}#EXT-X-ENDLIST\n");
        assert!(matches!(answer(&ended, &request("_HLS_msn=99").unwrap(), Vec::new), Answer::Ready(_)), "an ended stream answers at once");
    }

    #[test]
    fn served_playlists_say_they_block_and_skip() {
        let Answer::Ready(p) = answer(LIVE, &Request::default(), Vec::new) else { panic!() };
        assert!(p.contains("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=6.0,PART-HOLD-BACK=0.750\n"), "{p}");
        assert_eq!(p.lines().count(), LIVE.lines().count());
        let plain = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:2.0,\na.ts\n";
        let p = rewrite(plain, false, 2);
        assert!(p.contains("#EXT-X-TARGETDURATION:2\n#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.0\n"), "{p}");
    }

    #[test]
    fn delta_updates_skip_the_oldest_segments() {
        let mut text = String::from("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:5\n#EXT-X-MAP:URI=\"i.mp4\"\n");
        for i in 5..15 {
            text.push_str(&format!("#EXT-X-PROGRAM-DATE-TIME:2026-12-04T00:00:{i:02}.000Z\n#EXTINF:1.000,\ns-{i}.m4s\n"));
        }
        let Answer::Ready(p) = answer(&text, &request("_HLS_skip=YES").unwrap(), Vec::new) else { panic!() };
        // 10 s listed, 6 s must stay: the 4 oldest go.
        assert!(p.contains("#EXT-X-VERSION:9\n") && p.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS=4\n"), "{p}");
        assert!(!p.contains("s-8.m4s") && p.contains("s-9.m4s") && p.contains("#EXT-X-MAP:URI=\"i.mp4\""), "{p}");
        // A discontinuity among the old ones: nothing is skipped past it.
        let disc = text.replace("#EXT-X-PROGRAM-DATE-TIME:2026-12-04T00:00:07", "#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2026-12-04T00:00:07");
        let Answer::Ready(p) = answer(&disc, &request("_HLS_skip=YES").unwrap(), Vec::new) else { panic!() };
        assert!(p.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS=2\n") && p.contains("s-7.m4s"), "{p}");
    }

    #[test]
    fn renditions_report_where_the_others_are() {
        assert_eq!(master_of("cam_hi.m3u8").as_deref(), Some("cam.m3u8"));
        assert_eq!(master_of("my_cam_lo.m3u8").as_deref(), Some("my_cam.m3u8"));
        assert_eq!(master_of("cam.m3u8"), None);
        let master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\ncam_hi.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=2\ncam_lo.m3u8\nhttp://x/y.m3u8\n";
        assert_eq!(renditions(master), ["cam_hi.m3u8", "cam_lo.m3u8"]);
        assert_eq!(report("s.m3u8", LIVE).unwrap(), "#EXT-X-RENDITION-REPORT:URI=\"s.m3u8\",LAST-MSN=12,LAST-PART=1");
        let plain = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:4\n#EXTINF:2.0,\na.ts\n#EXTINF:2.0,\nb.ts\n";
        assert_eq!(report("p.m3u8", plain).unwrap(), "#EXT-X-RENDITION-REPORT:URI=\"p.m3u8\",LAST-MSN=5");
        assert_eq!(report("e.m3u8", "#EXTM3U\n"), None);
        let Answer::Ready(p) = answer(plain, &Request::default(), || vec![report("q.m3u8", plain).unwrap()]) else { panic!() };
        assert!(p.ends_with("b.ts\n#EXT-X-RENDITION-REPORT:URI=\"q.m3u8\",LAST-MSN=5\n"), "{p}");
    }
}
