//! Players of files (`play DIR ...`, nginx-rtmp-module's VOD): a `play` whose name is a
//! file in one of the application's directories (tried in order) plays that file to
//! that one player, from its metadata and codec headers, in real time (a second ahead),
//! from the keyframe at or before the `play`'s start; `seek` and `pause` work; at its
//! end the player is told `NetStream.Play.Stop`. A name that is no file goes on to live
//! streaming (or, with `live off`, `NetStream.Play.StreamNotFound`).

use super::{App, ClientId, Effect, Now, Timer};
use crate::live::StreamKey;
use crate::vod::{self, Playback};

/// How far ahead of real time a file is sent (the player's buffer fills at once).
const AHEAD_MS: u64 = 1000;
/// How often frames are sent, and the most at a time.
const TICK_MS: u64 = 100;
const MAX_PER_TICK: usize = 400;
/// A player whose queue holds this many writes is not given more until it reads.
const MAX_QUEUED: usize = 16;

impl App {
    /// Plays the file `key.name` names to `id` if the application has `play`
    /// directories and one holds it; false if there is no such file.
    pub(super) fn start_vod(&mut self, id: ClientId, msid: u32, key: &StreamKey, now: &Now) -> bool {
        let Some(c) = self.clients.get(id) else { return false };
        let Some(run) = c.app.and_then(|a| self.conf.app(c.server, a)) else { return false };
        if run.play.is_empty() {
            return false;
        }
        let start = c.play_start;
        let (file, mp4) = vod::file_name(&key.name);
        let dirs = run.play.clone();
        let Some((path, f)) = dirs.iter().find_map(|d| {
            let path = format!("{d}/{file}");
            self.storage.open_read(&path).ok().map(|f| (path, f))
        }) else {
            return false;
        };
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
        true
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
