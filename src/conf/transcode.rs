//! `transcode SUFFIX WIDTHxHEIGHT BITRATE [preset=P] [profile=P] [fps=N] [audio=RATE|copy]`
//! (one line per rendition of an application's ladder) and `transcode_ffmpeg PATH`: parsed
//! per level, a level with lines of its own keeping only those (as exec lines).

use super::invalid;

/// One rendition of a ladder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendition {
    /// Appended to the stream's name: `cam` → `cam_720p`.
    pub suffix: String,
    pub width: u32,
    pub height: u32,
    /// Video bit rate, bits per second.
    pub bitrate: u64,
    /// x264's preset (default `veryfast`).
    pub preset: String,
    /// H.264 profile (default `main`).
    pub profile: String,
    /// Frame rate (None: the source's).
    pub fps: Option<u32>,
    /// Audio: AAC at this many bits per second, or the source's copied (None).
    pub audio: Option<u64>,
}

#[derive(Clone, Debug, Default)]
pub struct TranscodeSettings {
    lines: Vec<Rendition>,
    ffmpeg: Option<String>,
}

const PRESETS: [&str; 9] = ["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"];

/// `2500k`, `2.5m`, `800000`: bits per second.
fn parse_bitrate(s: &str) -> Option<u64> {
    let (num, mult) = match s.as_bytes().last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 1_000.0),
        b'm' | b'M' => (&s[..s.len() - 1], 1_000_000.0),
        _ => (s, 1.0),
    };
    let v: f64 = num.parse().ok()?;
    let bits = (v * mult).round();
    (bits.is_finite() && (16_000.0..=100_000_000.0).contains(&bits)).then_some(bits as u64)
}

impl TranscodeSettings {
    /// Applies `transcode` or `transcode_ffmpeg`. `Ok(false)`: not one of them.
    pub fn apply(&mut self, name: &str, args: &[&str]) -> Result<bool, String> {
        match name {
            "transcode" => {
                let r = Self::rendition(args).map_err(|e| format!("{e} in \"transcode\" directive"))?;
                if self.lines.iter().any(|l| l.suffix == r.suffix) {
                    return Err(format!("duplicate rendition \"{}\" in \"transcode\" directive", r.suffix));
                }
                self.lines.push(r);
            }
            "transcode_ffmpeg" => {
                let p = args.first().copied().unwrap_or("");
                if p.is_empty() {
                    return Err(invalid(name, p, "it must be a program"));
                }
                if self.ffmpeg.is_some() {
                    return Err(format!("\"{name}\" directive is duplicate"));
                }
                self.ffmpeg = Some(p.to_owned());
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn rendition(args: &[&str]) -> Result<Rendition, String> {
        let [suffix, size, rate, options @ ..] = args else {
            return Err("a suffix, a size (WIDTHxHEIGHT) and a bit rate are needed".into());
        };
        if suffix.is_empty() || suffix.contains(['/', '\\', '\0', ' ']) || suffix.len() > 32 {
            return Err(format!("invalid suffix \"{suffix}\""));
        }
        let dims = size.split_once('x').and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)));
        let Some((width, height)) = dims.filter(|&(w, h)| (16..=8192).contains(&w) && (16..=8192).contains(&h) && w % 2 == 0 && h % 2 == 0) else {
            return Err(format!("invalid size \"{size}\" (WIDTHxHEIGHT, even numbers from 16 to 8192)"));
        };
        let bitrate = parse_bitrate(rate).ok_or_else(|| format!("invalid bit rate \"{rate}\" (such as \"2500k\", from 16k to 100m)"))?;
        let mut r = Rendition {
            suffix: (*suffix).to_owned(),
            width,
            height,
            bitrate,
            preset: "veryfast".into(),
            profile: "main".into(),
            fps: None,
            audio: Some(128_000),
        };
        for o in options {
            let (k, v) = o.split_once('=').ok_or_else(|| format!("invalid option \"{o}\" (KEY=VALUE)"))?;
            match k {
                "preset" if PRESETS.contains(&v) => r.preset = v.to_owned(),
                "profile" if ["baseline", "main", "high"].contains(&v) => r.profile = v.to_owned(),
                "fps" => r.fps = Some(v.parse().ok().filter(|f| (1..=240).contains(f)).ok_or_else(|| format!("invalid fps \"{v}\""))?),
                "audio" if v == "copy" => r.audio = None,
                "audio" => r.audio = Some(parse_bitrate(v).ok_or_else(|| format!("invalid audio bit rate \"{v}\""))?),
                _ => return Err(format!("invalid option \"{o}\" (preset=, profile=baseline|main|high, fps=, audio=RATE|copy)")),
            }
        }
        Ok(r)
    }

    pub fn inherit(&mut self, outer: &TranscodeSettings) {
        if self.lines.is_empty() {
            self.lines.clone_from(&outer.lines);
        }
        if self.ffmpeg.is_none() {
            self.ffmpeg.clone_from(&outer.ffmpeg);
        }
    }

    pub fn renditions(&self) -> &[Rendition] {
        &self.lines
    }

    pub fn ffmpeg(&self) -> &str {
        self.ffmpeg.as_deref().unwrap_or("ffmpeg")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renditions_and_their_options() {
        let mut s = TranscodeSettings::default();
        s.apply("transcode", &["_720p", "1280x720", "2500k"]).unwrap();
        s.apply("transcode", &["_360p", "640x360", "0.6m", "preset=ultrafast", "profile=baseline", "fps=15", "audio=64k"]).unwrap();
        let r = s.renditions();
        assert_eq!((r[0].width, r[0].height, r[0].bitrate, r[0].audio), (1280, 720, 2_500_000, Some(128_000)));
        assert_eq!((r[1].bitrate, r[1].preset.as_str(), r[1].profile.as_str(), r[1].fps, r[1].audio), (600_000, "ultrafast", "baseline", Some(15), Some(64_000)));
        assert_eq!(s.ffmpeg(), "ffmpeg");
        let mut app = TranscodeSettings::default();
        app.inherit(&s);
        assert_eq!(app.renditions().len(), 2);
    }

    #[test]
    fn errors_name_the_directive() {
        let mut s = TranscodeSettings::default();
        for bad in [&["_a", "1280x720"][..], &["_a", "1281x720", "1m"], &["_a", "1280x720", "1g"], &["a/b", "1280x720", "1m"], &["_a", "1280x720", "1m", "preset=warp"]] {
            let e = s.apply("transcode", bad).unwrap_err();
            assert!(e.contains("\"transcode\""), "{e}");
        }
        s.apply("transcode", &["_a", "640x360", "1m"]).unwrap();
        assert!(s.apply("transcode", &["_a", "640x360", "1m"]).unwrap_err().contains("duplicate rendition"));
        s.apply("transcode_ffmpeg", &["/usr/bin/ffmpeg"]).unwrap();
        assert!(s.apply("transcode_ffmpeg", &["x"]).unwrap_err().contains("duplicate"));
    }
}
