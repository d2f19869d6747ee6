//! Players of files (`play DIR ...`, nginx-rtmp-module's VOD): a `play` whose name is a
//! file in one of the application's directories (tried in order) plays that file to
//! that one player, from its metadata and codec headers, in real time (a second ahead),
//! from the keyframe at or before the `play`'s start; `seek` and `pause` work; at its
//! end the player is told `NetStream.Play.Stop`. A `play http://...` location is asked
//! for the file, which is written to `play_temp_path` (kept in `play_local_path` if set)
//! and played once whole. A name that is no file goes on to live streaming (or, with
//! `live off`, `NetStream.Play.StreamNotFound`).

use super::notify::Then;
use super::{App, ClientId, Effect, Now, Timer};
use crate::conf::resolved::PlaySource;
use crate::live::StreamKey;
use crate::vod::{self, Playback};

/// A file name in a URL's path: what is not unreserved is `%XX`.
fn escape_path(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// How far ahead of real time a file is sent (the player's buffer fills at once).
const AHEAD_MS: u64 = 1000;
/// How often frames are sent, and the most at a time.
const TICK_MS: u64 = 100;
const MAX_PER_TICK: usize = 400;
/// A player whose queue holds this many writes is not given more until it reads.
const MAX_QUEUED: usize = 16;

/// A file being fetched for a player (`play http://...`): what to do once it is here.
pub struct Fetch {
    id: ClientId,
    msid: u32,
    key: StreamKey,
    name: String,
    args: String,
    /// The source after the one fetched from (to try next if this fails).
    next: usize,
    temp: String,
    /// Where it is kept once complete (`play_local_path`), if anywhere.
    keep: Option<String>,
    mp4: bool,
}

/// What a `play` of a file came to.
pub(super) enum VodStart {
    Playing,
    /// A file is being fetched over HTTP; `fetched` goes on.
    Fetching,
    NotFound,
}

impl App {
    /// Plays the file `key.name` names to `id` from the application's `play` sources,
    /// from source `from` on: a directory that has it, or a location it is fetched from.
    pub(super) fn start_vod(&mut self, id: ClientId, msid: u32, key: &StreamKey, name: &str, args: &str, from: usize, now: &Now) -> VodStart {
        let Some(c) = self.clients.get(id) else { return VodStart::NotFound };
        let Some(run) = c.app.and_then(|a| self.conf.app(c.server, a)) else { return VodStart::NotFound };
        let (server, number, timeout) = (c.server, c.number, self.conf.servers[c.server].core.timeout);
        let play = run.play.clone();
        let verify = run.relays.ssl_verify;
        let (file, mp4) = vod::file_name(&key.name);
        for (i, source) in play.sources.iter().enumerate().skip(from) {
            match source {
                PlaySource::Dir(d) => {
                    let path = format!("{d}/{file}");
                    if let Ok(f) = self.storage.open_read(&path) {
                        self.play_file(id, msid, key, &path, f, mp4, now);
                        return VodStart::Playing;
                    }
                }
                PlaySource::Http(url) => {
                    let keep = play.local_path.as_ref().map(|l| format!("{l}/{file}"));
                    if let Some(path) = &keep {
                        if let Ok(f) = self.storage.open_read(path) {
                            self.play_file(id, msid, key, path, f, mp4, now);
                            return VodStart::Playing;
                        }
                    }
                    let path = format!("{}/{}", url.path.trim_end_matches('/'), escape_path(&file));
                    let temp = format!("{}/ngx-rtmp-rs-vod-{number}-{i}-{}", play.temp_path, now.ms);
                    self.info(id, format!("play: fetching \"{file}\" from {}", url.text));
                    let target = match url.addr {
                        Some(a) => super::Target::Addr(a),
                        None => super::Target::Name { server, host: url.host.clone(), port: url.port },
                    };
                    let call_id = self.next_call;
                    self.next_call += 1;
                    let fetch = Fetch { id, msid, key: key.clone(), name: name.to_owned(), args: args.to_owned(), next: i + 1, temp: temp.clone(), keep, mp4 };
                    self.calls.insert(call_id, Then::Fetch(Box::new(fetch)));
                    let limit = self.conf.servers[server].notify.reply_limit();
                    self.effects.push_back(Effect::Call(Box::new(super::Call {
                        id: call_id,
                        target,
                        url: format!("{}/{}", url.text.trim_end_matches('/'), escape_path(&file)),
                        request: crate::notify::get(url, &path),
                        timeout,
                        limit,
                        tls: url.tls.then(|| (url.host.clone(), verify)),
                        download: Some(temp),
                    })));
                    return VodStart::Fetching;
                }
            }
        }
        VodStart::NotFound
    }

    /// A file fetched for a player came (or did not).
    pub(super) fn fetched(&mut self, f: Fetch, outcome: crate::notify::Outcome, now: &Now) {
        let ok = matches!(&outcome, Ok(r) if r.status == 200);
        if !self.clients.contains(f.id) {
            self.storage.remove(&f.temp);
            return;
        }
        if !ok {
            self.storage.remove(&f.temp);
            let why = match outcome {
                Ok(r) => format!("HTTP {}", r.status),
                Err(e) => e,
            };
            self.info(f.id, format!("play: fetching \"{}\" failed: {why}", f.key.name));
            match self.start_vod(f.id, f.msid, &f.key, &f.name, &f.args, f.next, now) {
                VodStart::Playing | VodStart::Fetching => {}
                VodStart::NotFound => self.vod_not_found(f.id, f.msid, f.key, f.name, f.args, now),
            }
            return;
        }
        let path = match &f.keep {
            Some(keep) if self.storage.rename(&f.temp, keep).is_ok() => keep.clone(),
            _ => f.temp.clone(),
        };
        match self.storage.open_read(&path) {
            Ok(file) => self.play_file(f.id, f.msid, &f.key, &path, file, f.mp4, now),
            Err(e) => self.refuse(f.id, f.msid, "NetStream.Play.StreamNotFound", &format!("The file cannot be read: {e}")),
        }
        if f.keep.as_deref() != Some(&path) {
            // (Played from the open file: the name can go.)
            self.storage.remove(&path);
        }
        self.ready(f.id);
    }

    /// Plays `file` (opened from `path`) to `id`.
    #[allow(clippy::too_many_arguments)]
    fn play_file(&mut self, id: ClientId, msid: u32, key: &StreamKey, path: &str, f: Box<dyn vod::ReadAt>, mp4: bool, now: &Now) {
        let start = self.clients.get(id).map_or(0, |c| c.play_start);
        match vod::open(f, mp4).and_then(|s| Playback::new(s, start, now.ms)) {
            Err(e) => {
                self.info(id, format!("play: cannot play file \"{path}\": {e}"));
                self.refuse(id, msid, "NetStream.Play.StreamNotFound", "The file cannot be played");
            }
            Ok(p) => {
                self.info(id, format!("play: file \"{path}\" from {start} ms"));
                let name = key.name.clone();
                let headers = p.headers();
                self.say(id, |s| {
                    s.accept_play(msid, &name);
                    for t in &headers {
                        s.media_out(msid, t.kind, 0, &t.body);
                    }
                });
                if let Some(c) = self.clients.get_mut(id) {
                    c.vod = Some(Box::new((msid, p)));
                }
                self.effects.push_back(Effect::Timer(id, Timer::Vod, 0));
            }
        }
    }

    /// A file's player: the frames due now (`Timer::Vod`).
    pub(super) fn vod_tick(&mut self, id: ClientId, now: &Now) {
        let Some(c) = self.clients.get_mut(id) else { return };
        let queued = c.queued_live();
        let Some(v) = c.vod.as_mut() else { return };
        let msid = v.0;
        if queued >= MAX_QUEUED {
            // (It does not read: its send timeout ends it, or it reads and goes on.)
            self.effects.push_back(Effect::Timer(id, Timer::Vod, TICK_MS));
            return;
        }
        let due = v.1.due(now.ms, AHEAD_MS, MAX_PER_TICK);
        let ended = v.1.ended;
        match due {
            Err(e) => {
                self.info(id, format!("play: the file cannot be read on: {e}"));
                if let Some(c) = self.clients.get_mut(id) {
                    c.vod = None;
                }
                self.say(id, |s| s.play_stopped(msid));
            }
            Ok(tags) => {
                self.say(id, |s| {
                    for t in &tags {
                        s.media_out(msid, t.kind, t.ts, &t.body);
                    }
                });
                if ended {
                    self.info(id, "play: the file ended".into());
                    if let Some(c) = self.clients.get_mut(id) {
                        c.vod = None;
                    }
                    self.say(id, |s| s.play_stopped(msid));
                } else {
                    self.effects.push_back(Effect::Timer(id, Timer::Vod, TICK_MS));
                }
            }
        }
    }

    /// `seek` from a file's player.
    pub(super) fn vod_seek(&mut self, id: ClientId, msid: u32, ms: f64, now: &Now) {
        let Some(v) = self.clients.get_mut(id).and_then(|c| c.vod.as_mut()).filter(|v| v.0 == msid) else { return };
        match v.1.seek(ms.clamp(0.0, f64::from(u32::MAX)) as u32, now.ms) {
            Ok(at) => {
                self.info(id, format!("play: seek to {} ms, from the keyframe at {at} ms", ms as u64));
                self.say(id, |s| s.seeked(msid, at));
                self.effects.push_back(Effect::Timer(id, Timer::Vod, 0));
            }
            Err(e) => self.info(id, format!("play: seek failed: {e}")),
        }
    }

    /// `pause` from a file's player; false if it plays no file on `msid`.
    pub(super) fn vod_pause(&mut self, id: ClientId, msid: u32, pause: bool, now: &Now) -> bool {
        let Some(v) = self.clients.get_mut(id).and_then(|c| c.vod.as_mut()).filter(|v| v.0 == msid) else { return false };
        v.1.pause(pause, now.ms);
        self.say(id, |s| s.paused(msid, pause));
        true
    }
}
