//! A transcoding ladder (`transcode SUFFIX WxH BITRATE ...`): for each stream published to
//! the application (but its renditions), one supervised ffmpeg that decodes it once and
//! encodes every rendition, keyframes where the source has them and its timestamps kept
//! (`-force_key_frames source -copyts`), publishing them back as `NAME_SUFFIX`. The ladder's
//! streams are cut on the fragment grid and numbered by it, so their segments line up. With
//! HLS the source's playlist becomes `NAME_src.m3u8` and `NAME.m3u8` the master, written
//! here from what each rendition's segments measured (BANDWIDTH, AVERAGE-BANDWIDTH) and
//! what its codec headers and metadata say (RESOLUTION, FRAME-RATE, CODECS).

use std::fmt::Write;

use super::exec::Owner;
use super::{App, Level, Now, StreamId};
use crate::conf::resolved::AppRun;
use crate::conf::transcode::Rendition;
use crate::exec::Spec;
use crate::hls::Measured;
use crate::live::StreamKey;

/// What was last written to a ladder's master playlist.
#[derive(Default)]
pub struct Master {
    text: String,
    /// The figures it was written with (rewritten when one moves by more than a tenth).
    figures: Vec<(String, u64, u64)>,
    complete: bool,
    /// Where it was written (kept fresh for the `hls_cleanup` sweep while it stays).
    path: Option<String>,
}

/// The rendition `name` is, in a ladder.
fn rendition_of<'a>(run: &'a AppRun, name: &str) -> Option<&'a Rendition> {
    run.ladder.iter().find(|r| name.len() > r.suffix.len() && name.ends_with(&r.suffix))
}

/// The HLS playlist name of stream `name`, and whether it is part of a ladder.
pub(super) fn hls_as(run: &AppRun, name: &str) -> (String, bool) {
    if run.ladder.is_empty() {
        (name.to_owned(), false)
    } else if rendition_of(run, name).is_some() {
        (name.to_owned(), true)
    } else {
        (format!("{name}_src"), true)
    }
}

impl App {
    /// What a WHEP viewer of `app`/`name` plays instead of the stream, if anything: when
    /// the stream has B-frames (browsers' WebRTC decoders do not reorder them) and the
    /// application's transcoding ladder makes renditions of it (encoded without: x264's
    /// `zerolatency`), its first rendition. (A stream another worker has is not known
    /// here: its viewers are refused as without a ladder.)
    pub fn whep_rendition(&self, app: &str, name: &str) -> Option<String> {
        for (server, s) in self.conf.servers.iter().enumerate() {
            let Some(ai) = s.apps.iter().position(|a| a.name == app) else { continue };
            let run = self.conf.app(server, ai)?;
            let first = run.ladder.first()?;
            if rendition_of(run, name).is_some() {
                return None;
            }
            let key = StreamKey { server, app: app.to_owned(), name: name.to_owned() };
            let st = self.streams.get(self.stream_of(&key)?)?;
            return st.stats.bframes.then(|| format!("{name}{}", first.suffix));
        }
        None
    }
}

/// The ffmpeg command of a ladder: one input, one output per rendition.
pub fn command(ffmpeg: &str, source: &str, base: &str, name: &str, ladder: &[Rendition]) -> Spec {
    let mut a: Vec<String> = [ffmpeg, "-hide_banner", "-loglevel", "warning", "-nostdin", "-copyts", "-i", source].map(str::to_owned).to_vec();
    for r in ladder {
        let b = r.bitrate.to_string();
        a.extend(["-map", "0:v:0", "-map", "0:a:0?", "-c:v", "libx264", "-preset", &r.preset, "-tune", "zerolatency"].map(str::to_owned));
        a.extend(["-profile:v", &r.profile, "-pix_fmt", "yuv420p", "-b:v", &b, "-maxrate", &b].map(str::to_owned));
        a.extend(["-bufsize".to_owned(), (r.bitrate * 2).to_string(), "-vf".to_owned(), format!("scale={}:{}", r.width, r.height)]);
        if let Some(fps) = r.fps {
            a.extend(["-r".to_owned(), fps.to_string()]);
        }
        // Keyframes where the source has them, and only there.
        a.extend(["-force_key_frames", "source", "-g", "100000", "-sc_threshold", "0"].map(str::to_owned));
        match r.audio {
            Some(rate) => a.extend(["-c:a".to_owned(), "aac".to_owned(), "-b:a".to_owned(), rate.to_string()]),
            None => a.extend(["-c:a", "copy"].map(str::to_owned)),
        }
        a.extend(["-f".to_owned(), "flv".to_owned(), format!("{base}{name}{}", r.suffix)]);
    }
    Spec { argv: a, redirects: vec![] }
}

impl App {
    /// `rtmp://ADDR:PORT` of server `server`'s first listening address (loopback for a
    /// wildcard).
    fn local_url(&self, server: usize) -> Option<String> {
        let l = self.conf.servers.get(server)?.listens.first()?;
        let ip = match (l.wildcard || l.addr.ip().is_unspecified(), l.addr) {
            (true, std::net::SocketAddr::V6(_)) => "[::1]".to_owned(),
            (true, _) => "127.0.0.1".to_owned(),
            (false, std::net::SocketAddr::V6(a)) => format!("[{}]", a.ip()),
            (false, a) => a.ip().to_string(),
        };
        Some(format!("rtmp://{ip}:{}", l.addr.port()))
    }

    /// A stream was published: its ladder starts (not for a rendition).
    pub(super) fn ladder_start(&mut self, sid: StreamId, now: &Now) {
        let conf = self.conf.clone();
        let Some(s) = self.streams.get(sid) else { return };
        let Some(run) = conf.app(s.key.server, s.app) else { return };
        if run.ladder.is_empty() || rendition_of(run, &s.key.name).is_some() {
            return;
        }
        let key = s.key.clone();
        let Some(url) = self.local_url(key.server) else {
            return self.log(None, Level::Err, format!("transcode \"{}\": its server has no listen address to reach", key.name));
        };
        let base = format!("{url}/{}/", key.app);
        let spec = command(&run.ffmpeg, &format!("{base}{}", key.name), &base, &key.name, &run.ladder);
        self.start_child(format!("transcode \"{}\"", key.name), spec, Owner::Push(sid), run.exec.policy(), now);
        if run.hls.is_some() {
            self.ladders.insert(sid, Master::default());
        }
    }

    /// A rendition's source's HLS date anchor (its segments are dated alike).
    pub(super) fn ladder_anchor(&self, run: &AppRun, key: &StreamKey) -> Option<(i64, u64)> {
        let r = rendition_of(run, &key.name)?;
        let source = StreamKey { name: key.name[..key.name.len() - r.suffix.len()].to_owned(), ..key.clone() };
        let s = self.streams.get(self.stream_of(&source)?)?;
        s.outputs.iter().find_map(|o| o.date_anchor())
    }

    /// Once a second: each ladder's master playlist, (re)written when what it lists
    /// changed.
    pub(super) fn ladder_tick(&mut self) {
        let sids: Vec<StreamId> = self.ladders.keys().copied().collect();
        for sid in sids {
            let Some(s) = self.streams.get(sid).filter(|s| s.source.is_some()) else {
                self.ladders.remove(&sid);
                continue;
            };
            let conf = self.conf.clone();
            let Some(run) = conf.app(s.key.server, s.app) else { continue };
            let Some(cfg) = &run.hls else { continue };
            let key = s.key.clone();
            let mut rows = Vec::new();
            for (suffix, stream) in std::iter::once(("_src", Some(sid))).chain(run.ladder.iter().map(|r| {
                let k = StreamKey { name: format!("{}{}", key.name, r.suffix), ..key.clone() };
                (r.suffix.as_str(), self.stream_of(&k).filter(|&id| self.streams.get(id).is_some_and(|s| s.source.is_some())))
            })) {
                let Some(st) = stream.and_then(|id| self.streams.get(id)) else { continue };
                let Some(m) = st.outputs.iter().find_map(|o| o.measured()).filter(|m| m.segments > 0) else { continue };
                rows.push((suffix.to_owned(), m, st.stats.codec.clone()));
            }
            if rows.first().is_none_or(|r| r.0 != "_src") {
                continue;
            }
            let complete = rows.len() == run.ladder.len() + 1;
            let master = self.ladders.get_mut(&sid).expect("listed");
            let moved = |old: u64, new: u64| new.abs_diff(old) * 10 > old;
            let same = master.figures.len() == rows.len()
                && master.figures.iter().zip(&rows).all(|((s, p, a), (rs, m, _))| s == rs && !moved(*p, m.peak) && !moved(*a, m.average));
            if same {
                if let Some(p) = &master.path {
                    self.storage.hls().touch(p);
                }
                continue;
            }
            let index = if cfg.nested { "/index" } else { "" };
            let mut text = String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n");
            for (suffix, m, c) in &rows {
                text.push_str(&stream_inf(m, c));
                let _ = writeln!(text, "{}{}{suffix}{index}.m3u8", cfg.base_url, key.name);
            }
            master.figures = rows.iter().map(|(s, m, _)| (s.clone(), m.peak, m.average)).collect();
            if text == master.text {
                if let Some(p) = &master.path {
                    self.storage.hls().touch(p);
                }
                continue;
            }
            master.text = text.clone();
            let first_complete = complete && !master.complete;
            master.complete |= complete;
            let path = crate::hls::Segmenter::<Box<dyn crate::hls::Files>>::playlist_file(&crate::hls::Config { nested: false, ..cfg.clone() }, &key.name);
            master.path = Some(path.clone());
            let mut files = self.storage.hls();
            match files.replace(&path, text.as_bytes()) {
                Ok(()) if first_complete => {
                    self.log(None, Level::Info, format!("transcode \"{}\": \"{path}\" lists the source and {} renditions", key.name, rows.len() - 1));
                }
                Ok(()) => {}
                Err(e) => self.log(None, Level::Err, format!("transcode \"{}\": writing \"{path}\" failed: {e}", key.name)),
            }
        }
    }
}

/// `#EXT-X-STREAM-INF` of one rendition.
fn stream_inf(m: &Measured, c: &crate::stat::Codec) -> String {
    let mut t = format!("#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={}", m.peak.max(1), m.average.max(1));
    if c.width > 0 && c.height > 0 {
        let _ = write!(t, ",RESOLUTION={}x{}", c.width, c.height);
    }
    if c.frame_rate > 0 {
        let _ = write!(t, ",FRAME-RATE={:.3}", c.frame_rate as f64);
    }
    let codecs: Vec<&str> = [c.rfc6381_video.as_str(), c.rfc6381_audio.as_str()].into_iter().filter(|s| !s.is_empty()).collect();
    // (Only when every track is known: a partial list would tell players to drop a track.)
    let tracks = usize::from(!c.video_codec.is_empty()) + usize::from(!c.audio_codec.is_empty());
    if !codecs.is_empty() && codecs.len() == tracks {
        let _ = write!(t, ",CODECS=\"{}\"", codecs.join(","));
    }
    t.push('\n');
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_decode_every_rendition_keyframes_where_the_source_has_them() {
        let l = [
            Rendition { suffix: "_720p".into(), width: 1280, height: 720, bitrate: 2_500_000, preset: "veryfast".into(), profile: "main".into(), fps: None, audio: Some(128_000) },
            Rendition { suffix: "_360p".into(), width: 640, height: 360, bitrate: 600_000, preset: "veryfast".into(), profile: "baseline".into(), fps: Some(15), audio: None },
        ];
        let s = command("ffmpeg", "rtmp://127.0.0.1:1935/live/cam", "rtmp://127.0.0.1:1935/live/", "cam", &l);
        let line = s.argv.join(" ");
        assert_eq!(s.argv.iter().filter(|a| *a == "-i").count(), 1, "{line}");
        assert!(line.contains("-copyts -i rtmp://127.0.0.1:1935/live/cam"));
        assert!(line.contains("-b:v 2500000 -maxrate 2500000 -bufsize 5000000 -vf scale=1280:720 -force_key_frames source"));
        assert!(line.contains("-c:a aac -b:a 128000 -f flv rtmp://127.0.0.1:1935/live/cam_720p"));
        assert!(line.contains("-profile:v baseline") && line.contains("-r 15") && line.ends_with("-c:a copy -f flv rtmp://127.0.0.1:1935/live/cam_360p"));
    }

    #[test]
    fn stream_inf_says_what_was_measured() {
        let c = crate::stat::Codec {
            width: 640,
            height: 360,
            frame_rate: 30,
            video_codec: "H264".into(),
            audio_codec: "AAC".into(),
            rfc6381_video: "avc1.4d401e".into(),
            rfc6381_audio: "mp4a.40.2".into(),
            ..Default::default()
        };
        let m = Measured { segments: 3, peak: 900_000, average: 700_000 };
        assert_eq!(
            stream_inf(&m, &c),
            "#EXT-X-STREAM-INF:BANDWIDTH=900000,AVERAGE-BANDWIDTH=700000,RESOLUTION=640x360,FRAME-RATE=30.000,CODECS=\"avc1.4d401e,mp4a.40.2\"\n"
        );
        let partial = crate::stat::Codec { rfc6381_audio: String::new(), ..c };
        assert!(!stream_inf(&m, &partial).contains("CODECS"), "a partial list is left out");
    }
}
