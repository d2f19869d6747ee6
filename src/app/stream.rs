//! A live stream and its lifecycle, in one place: a publish or play is admitted (name,
//! access rules), allowed by its callback (`notify`), then started: the source is set and
//! the outputs made (HLS, recorders), or the player joins the log; frames go to the log
//! and the outputs; when the publisher leaves, the outputs end and the players are told;
//! the end callbacks follow (`notify`).

use bytes::{Bytes, BytesMut};

use super::client::Role;
use super::exec::Owner;
use super::output::{self, Ask, Count, Cx, Output};
use super::{App, ClientId, Effect, Kind, Now, StreamId, Timer};
use crate::conf::access::{self, Action};
use crate::conf::Meta;
use crate::live::fanout::{self, Fanout};
use crate::live::StreamKey;
use crate::media::{Frame, MediaKind};
use crate::rtmp::amf::Value;
use crate::rtmp::message::{self as msg};
use crate::stat;

/// What `/stat` says about a stream's publishing.
pub struct Pub {
    pub since: u64,
    pub bytes: u64,
    pub audio: u64,
    pub video: u64,
    pub rate: stat::Rate,
    pub audio_rate: stat::Rate,
    pub video_rate: stat::Rate,
    pub codec: stat::Codec,
    /// Audio or video came.
    pub active: bool,
    pub audio_ts: u32,
    pub video_ts: u32,
    /// A video frame came with a presentation time before the last one's: B-frames
    /// (which browsers' WebRTC decoders do not reorder).
    pub bframes: bool,
    last_pts: Option<i64>,
}

impl Pub {
    fn new(now: u64) -> Pub {
        let rate = stat::Rate::new(now, 0);
        Pub {
            since: now,
            bytes: 0,
            audio: 0,
            video: 0,
            rate: rate.clone(),
            audio_rate: rate.clone(),
            video_rate: rate,
            codec: stat::Codec::default(),
            active: false,
            audio_ts: 0,
            video_ts: 0,
            bframes: false,
            last_pts: None,
        }
    }

    /// Counts a frame and takes codec details from it.
    fn count(&mut self, f: &Frame) {
        let len = f.payload.len() as u64;
        self.bytes += len;
        match f.kind {
            MediaKind::Video => {
                self.video += len;
                self.video_ts = f.timestamp;
                self.active = true;
                if f.part == crate::media::Part::Coded {
                    let pts = i64::from(f.timestamp) + i64::from(f.cts);
                    self.bframes |= self.last_pts.is_some_and(|l| pts < l);
                    self.last_pts = Some(pts);
                }
            }
            MediaKind::Audio => {
                self.audio += len;
                self.audio_ts = f.timestamp;
                self.active = true;
            }
            MediaKind::Data => {}
        }
        self.codec.frame(f);
    }

    pub(super) fn sample(&mut self, now: u64) {
        self.rate.sample(now, self.bytes);
        self.audio_rate.sample(now, self.audio);
        self.video_rate.sample(now, self.video);
    }
}

pub struct Stream {
    pub key: StreamKey,
    /// The application's index in its server.
    pub app: usize,
    /// Its publisher (an RTMP client, a WHIP session, a pull relay), on `source_msid`.
    pub source: Option<ClientId>,
    pub source_msid: u32,
    pub players: Vec<ClientId>,
    pub fanout: Fanout,
    pub outputs: Vec<Box<dyn Output>>,
    pub stats: Pub,
    /// Its players are to be written this turn / at the next merge grid point.
    pub dirty: bool,
    pub merged: bool,
    /// Frames appended since the log was last trimmed.
    pub appended: u32,
    /// How far a player may lag, in messages (`out_queue`), and how far it must before
    /// it is written (`buffer` with `out_cork`; 0: at once).
    pub out_queue: u64,
    pub cork: u64,
}

/// Stream names become file names (HLS, recordings): no paths, no control characters.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && !name.chars().any(|ch| ch == '/' || ch == '\\' || ch.is_control())
}

impl App {
    /// The stream `key` of application `app`, made if it is new.
    fn stream_id(&mut self, key: &StreamKey, app: usize) -> StreamId {
        if let Some(&sid) = self.by_key.get(key) {
            return sid;
        }
        let server = &self.conf.servers[key.server];
        let live = self.conf.app(key.server, app).map(|a| a.live.clone());
        let settings = fanout::Settings {
            chunk_size: server.core.chunk_size as usize,
            gop_cache: live.as_ref().is_none_or(|l| l.gop_cache),
            wait_video: live.as_ref().is_some_and(|l| l.wait_video),
            interleave: live.as_ref().is_some_and(|l| l.interleave),
            time_fix: live.as_ref().is_none_or(|l| l.play_time_fix),
            ..fanout::Settings::default()
        };
        let sid = self.streams.insert(Stream {
            key: key.clone(),
            app,
            source: None,
            source_msid: 0,
            players: Vec::new(),
            fanout: Fanout::new(settings),
            outputs: Vec::new(),
            stats: Pub::new(0),
            dirty: false,
            merged: false,
            appended: 0,
            out_queue: server.core.out_queue,
            cork: if live.as_ref().is_some_and(|l| l.buffer > 0) { server.core.out_cork } else { 0 },
        });
        self.by_key.insert(key.clone(), sid);
        sid
    }

    /// A stream with neither a publisher nor players is forgotten.
    fn forget_if_unused(&mut self, sid: StreamId) {
        if self.streams.get(sid).is_some_and(|s| s.source.is_none() && s.players.is_empty()) {
            let s = self.streams.remove(sid).expect("checked");
            self.by_key.remove(&s.key);
        }
    }

    /// The stream `key`, if it exists.
    pub(super) fn stream_of(&self, key: &StreamKey) -> Option<StreamId> {
        self.by_key.get(key).copied()
    }

    /// Whether `key` has a publisher now.
    pub(super) fn is_live(&self, key: &StreamKey) -> bool {
        self.stream_of(key).and_then(|sid| self.streams.get(sid)).is_some_and(|s| s.source.is_some())
    }

    /// The client publishing `key`, if any.
    pub(super) fn publisher(&self, key: &StreamKey) -> Option<ClientId> {
        self.stream_of(key).and_then(|sid| self.streams.get(sid)).and_then(|s| s.source)
    }

    /// Refuses something with an error status, then closes once it is sent.
    pub(super) fn refuse(&mut self, id: ClientId, msid: u32, code: &str, description: &str) {
        self.info(id, format!("{code}: {description}"));
        self.fault(crate::stat::Fault::Refused);
        self.say(id, |s| s.status(msid, "error", code, description));
        if let Some(c) = self.clients.get_mut(id) {
            c.close_after_flush = true;
        }
    }

    /// What publish and play check alike: a usable stream name, the application's access
    /// rules, a stream id not already in use. Refuses with the action's status codes (and
    /// returns None) when a check fails.
    pub(super) fn admit(&mut self, id: ClientId, msid: u32, name: &str, action: Action) -> Option<StreamKey> {
        let c = self.clients.get(id)?;
        let app_index = c.app?;
        let server = c.server;
        let app = &self.conf.servers[server].apps[app_index];
        let (bad_name, forbidden, in_use) = match action {
            Action::Publish => (
                "NetStream.Publish.BadName",
                ("NetStream.Publish.Unauthorized", "Publishing is not allowed from this address"),
                "NetStream.Publish.BadConnection",
            ),
            Action::Play => (
                "NetStream.Play.StreamNotFound",
                ("NetStream.Play.Forbidden", "Playing is not allowed from this address"),
                "NetStream.Play.Failed",
            ),
        };
        if !valid_name(name) {
            let shown: String = name.chars().take(64).collect();
            self.info(
                id,
                format!("stream name {shown:?} refused: empty, \".\", \"..\", longer than 255 bytes, or with \"/\", \"\\\" or control characters"),
            );
            self.refuse(id, msid, bad_name, "Invalid stream name");
        } else if c.kind != Kind::Peer && !access::allowed(&app.settings.access, action, c.ip) {
            self.refuse(id, msid, forbidden.0, forbidden.1);
        } else if c.role(msid).is_some() {
            self.refuse(id, msid, in_use, "Stream is already in use");
        } else {
            return Some(StreamKey { server, app: app.name.clone(), name: name.to_owned() });
        }
        None
    }

    /// Publishes `key` (admitted, and allowed by `on_publish` if there is one); `name` and
    /// `args` are what the client asked for, for the callbacks that follow.
    pub(super) fn start_publish(&mut self, id: ClientId, msid: u32, key: StreamKey, name: String, args: String, now: &Now) {
        let Some(app) = self.clients.get(id).and_then(|c| c.app) else { return };
        let sid = self.stream_id(&key, app);
        if self.streams.get(sid).is_some_and(|s| s.source.is_some()) {
            return self.refuse(id, msid, "NetStream.Publish.BadName", "Already publishing");
        }
        let mirror = self.clients.get(id).and_then(|c| c.relay()).is_some_and(|r| r.peer);
        if mirror {
            // Another worker's stream, for this worker's players: no outputs, no callbacks.
            self.clients.get_mut(id).expect("known").roles.push(Role { msid, stream: sid, play: None });
            let s = self.streams.get_mut(sid).expect("made");
            s.source = Some(id);
            s.source_msid = msid;
            s.stats = Pub::new(now.ms);
            self.repace(id);
            return self.tell_players(sid, true, now);
        }
        if !self.workers.claim(&key) {
            self.forget_if_unused(sid);
            return self.refuse(id, msid, "NetStream.Publish.BadName", "Already publishing (in another worker)");
        }
        self.info(id, format!("publish: \"{}/{}\"", key.app, key.name));
        self.say(id, |s| s.accept_publish(msid, &key.name));
        self.clients.get_mut(id).expect("known").roles.push(Role { msid, stream: sid, play: None });
        let conf = self.conf.clone();
        let run = conf.app(key.server, app).expect("the client's application");
        let mut asks = Vec::new();
        let (hls_name, ladder) = super::ladder::hls_as(run, &key.name);
        let hls_as = output::HlsAs { name: &hls_name, ladder };
        let mut outputs = output::start(run, &mut *self.storage, &key.name, hls_as, &name, &args, &mut Cx { now, asks: &mut asks });
        if let Some(anchor) = self.ladder_anchor(run, &key) {
            outputs.iter_mut().for_each(|o| o.anchor_dates(anchor));
        }
        let s = self.streams.get_mut(sid).expect("made");
        s.source = Some(id);
        s.source_msid = msid;
        s.stats = Pub::new(now.ms);
        s.outputs = outputs;
        self.apply_asks(id, sid, asks, now);
        self.repace(id);
        let idle = run.live.drop_idle_publisher;
        if idle > 0 {
            if let Some(c) = self.clients.get_mut(id) {
                c.last_media = now.ms;
            }
            self.effects.push_back(Effect::Timer(id, Timer::Idle, idle));
        }
        let exec = &run.exec;
        if !exec.publish.is_empty() || !exec.push.is_empty() {
            let vars = self.exec_vars(Some(id), &key.app, &key.name, &args);
            self.exec("exec_publish", &exec.publish, Owner::Once, &vars, now);
            self.exec("exec_push", &exec.push, Owner::Push(sid), &vars, now);
        }
        self.ladder_start(sid, now);
        self.relay_published(id, &key, app, &args, now);
        self.noted(id, msid, false, name, args, now);
        self.tell_players(sid, true, now);
    }

    /// Plays `key` (admitted, and allowed by `on_play` if there is one). A publisher read
    /// in batches has its waiting input read first (`Effect::ReadNow`, then `proceed`), so
    /// that the player starts from the newest keyframe sent, not the newest one read.
    pub(super) fn start_play(&mut self, id: ClientId, msid: u32, key: StreamKey, name: String, args: String, now: &Now) {
        let Some(c) = self.clients.get(id) else { return };
        let Some(run) = c.app.and_then(|a| self.conf.app(c.server, a)) else { return };
        if !run.play.sources.is_empty() {
            match self.start_vod(id, msid, &key, &name, &args, 0, now) {
                super::vod::VodStart::Playing | super::vod::VodStart::Fetching => return,
                super::vod::VodStart::NotFound => return self.vod_not_found(id, msid, key, name, args, now),
            }
        }
        self.start_live_play(id, msid, key, name, args, now);
    }

    /// A play no file answered: live, or (with `live off`) no such stream.
    pub(super) fn vod_not_found(&mut self, id: ClientId, msid: u32, key: StreamKey, name: String, args: String, now: &Now) {
        let live = self.clients.get(id).and_then(|c| c.app.and_then(|a| self.conf.app(c.server, a))).is_some_and(|r| r.live.enabled);
        if !live {
            return self.refuse(id, msid, "NetStream.Play.StreamNotFound", "No such file");
        }
        self.start_live_play(id, msid, key, name, args, now);
    }

    fn start_live_play(&mut self, id: ClientId, msid: u32, key: StreamKey, name: String, args: String, now: &Now) {
        let Some(c) = self.clients.get(id) else { return };
        let Some(run) = c.app.and_then(|a| self.conf.app(c.server, a)) else { return };
        let app = c.app.unwrap_or(0);
        let has_pulls = run.relays.pulls.iter().any(|l| !l.is_static && l.applies_to(&key.name));
        if !run.live.idle_streams && !self.is_live(&key) && run.relays.pulls.is_empty() && self.workers.owner(&key).is_none() {
            return self.refuse(id, msid, "NetStream.Play.StreamNotFound", "No such stream (idle_streams off)");
        }
        self.info(id, format!("play: \"{}/{}\"", key.app, key.name));
        self.say(id, |s| s.accept_play(msid, &key.name));
        if let Some(p) = self.publisher(&key).filter(|&p| p != id) {
            if self.clients.get(p).is_some_and(|pc| pc.pace > 0) {
                let c = self.clients.get_mut(id).expect("known");
                c.waiting = Some(Box::new(super::client::Waiting::CatchUp { msid, name, args, key }));
                self.effects.push_back(Effect::ReadNow(p));
                self.effects.push_back(Effect::Proceed(id));
                return;
            }
        }
        let pull_args = args.clone();
        self.join(id, msid, key.clone(), name, args, now);
        if !self.peer_wanted(&key, app, has_pulls, now) {
            self.relay_wanted(&key, app, &pull_args, now);
        }
    }

    /// A player joins the stream's log: metadata, codec headers and the cached GOP first.
    pub(super) fn join(&mut self, id: ClientId, msid: u32, key: StreamKey, name: String, args: String, now: &Now) {
        let Some(c) = self.clients.get(id) else { return };
        let Some(app) = c.app else { return };
        let opus = c.info.as_ref().is_some_and(|i| i.opus);
        let sid = self.stream_id(&key, app);
        let s = self.streams.get_mut(sid).expect("made");
        let (cursor, burst) = s.fanout.join(msid, opus, s.source.is_some());
        // A player with nothing cached to start from: a WHIP publisher is asked for a keyframe.
        let waits = !s.fanout.settings().gop_cache || !s.fanout.has_gop();
        s.players.push(id);
        let first = s.players.len() == 1;
        let source = s.source;
        let c = self.clients.get_mut(id).expect("known");
        c.roles.push(Role { msid, stream: sid, play: Some(cursor) });
        c.queue_burst(burst);
        self.ready(id);
        if let Some(p) = source.filter(|_| waits) {
            self.ask_keyframe(p, sid, true, now);
        }
        if let Some(p) = source {
            self.repace(p);
        }
        let peer = self.clients.get(id).is_some_and(|c| c.kind == Kind::Peer);
        if let Some(run) = self.conf.clone().app(key.server, app).filter(|_| !peer) {
            let exec = &run.exec;
            if !exec.play.is_empty() {
                let vars = self.exec_vars(Some(id), &key.app, &key.name, &args);
                self.exec("exec_play", &exec.play, Owner::Once, &vars, now);
            }
            if first && !exec.pull.is_empty() {
                let vars = vec![("name", key.name.clone()), ("app", key.app.clone())];
                self.exec("exec_pull", &exec.pull, Owner::Pull(sid), &vars, now);
            }
        }
        self.noted(id, msid, true, name, args, now);
    }

    /// Tells a stream's players that it was published (or unpublished): a status each,
    /// after what they have not read yet. A push relay ends with its stream; without
    /// `idle_streams`, players leave with their publisher.
    fn tell_players(&mut self, sid: StreamId, published: bool, now: &Now) {
        let Some(s) = self.streams.get_mut(sid) else { return };
        let name = s.key.name.clone();
        let Some(live) = self.conf.app(s.key.server, s.app).map(|a| a.live.clone()) else { return };
        for &p in &s.players {
            let Some(c) = self.clients.get_mut(p) else { continue };
            if c.relay().is_some() || c.kind == Kind::Peer {
                // (Another worker's pull ends with the publisher: that worker's players
                // are told, and it looks for the stream's next publisher, on any worker.)
                if !published {
                    c.close_after_flush = true;
                }
                continue;
            }
            c.drain_session();
            let Some(role) = c.roles.iter().position(|r| r.stream == sid && r.play.is_some()) else { continue };
            let msid = c.roles[role].msid;
            let Some(session) = c.session() else { continue };
            if published {
                session.published(msid, &name, live.publish_notify, live.play_restart);
            } else {
                session.unpublished(msid, &name, live.publish_notify, live.play_restart);
            }
            let status = session.take_output().unwrap_or_default();
            let cur = c.roles[role].play.as_mut().expect("a player");
            s.fanout.status(cur, status);
            if published {
                s.fanout.restart(cur);
            } else if !live.idle_streams {
                c.close_after_flush = true;
            }
        }
        self.stream_changed(sid, now);
    }

    /// A client leaves one of its streams (its role is already off its list).
    pub(super) fn leave(&mut self, id: ClientId, role: Role, now: &Now) {
        let sid = role.stream;
        let Some(s) = self.streams.get_mut(sid) else { return };
        if role.publishes() {
            if s.source != Some(id) {
                return;
            }
            let key = s.key.clone();
            s.source = None;
            s.fanout.unpublished();
            // (Does nothing for a mirror: the stream is another worker's.)
            self.workers.release(&key);
            let Some(s) = self.streams.get_mut(sid) else { return };
            let mut outputs = std::mem::take(&mut s.outputs);
            self.info(id, format!("unpublish: \"{}/{}\"", key.app, key.name));
            let mut asks = Vec::new();
            for o in outputs.iter_mut() {
                o.end(&mut Cx { now, asks: &mut asks });
            }
            self.apply_asks(id, sid, asks, now);
            self.exec_stop(Owner::Push(sid), now);
            self.tell_players(sid, false, now);
        } else {
            s.players.retain(|&p| p != id);
            s.fanout.leave();
            let last = s.players.is_empty();
            if let Some(p) = s.source {
                self.repace(p);
            }
            if last {
                self.exec_stop(Owner::Pull(sid), now);
            }
        }
        self.forget_if_unused(sid);
    }

    /// Ends a stream of this client (the client closed it, or `/control` moves it): its
    /// publishing or playing, then the end callbacks.
    pub(super) fn end_stream(&mut self, id: ClientId, msid: u32, now: &Now) {
        let Some(c) = self.clients.get_mut(id) else { return };
        let Some(i) = c.roles.iter().position(|r| r.msid == msid) else { return };
        let role = c.roles.remove(i);
        let publisher = role.publishes();
        self.leave(id, role, now);
        if publisher {
            // (A client that stopped publishing has its commands read as they come.)
            self.repace(id);
        }
        let Some(c) = self.clients.get_mut(id) else { return };
        if let Some(i) = c.notes.iter().position(|n| n.msid == msid) {
            let note = c.notes.remove(i);
            self.notify_done(id, note.player, &note.name, &note.args, now);
        }
    }

    /// Audio, video or metadata from a publisher.
    pub(super) fn media(&mut self, id: ClientId, msid: u32, kind: MediaKind, timestamp: u32, payload: Bytes, now: &Now) {
        let Some(c) = self.clients.get_mut(id) else { return };
        c.last_ts = timestamp;
        let Some(role) = c.role(msid).filter(|r| r.publishes()) else { return };
        let sid = role.stream;
        let meta = c.app.and_then(|a| self.conf.app(c.server, a)).map_or(Meta::On, |a| a.live.meta);
        let payload = match (kind, meta) {
            (MediaKind::Data, Meta::Off) => return,
            (MediaKind::Data, Meta::On) => match msg::known_metadata(&payload) {
                Some(p) => p,
                None => return,
            },
            _ => payload,
        };
        if kind != MediaKind::Data {
            c.last_media = now.ms;
        }
        let frame = Frame::parse(kind, timestamp, payload);
        let Some(s) = self.streams.get_mut(sid).filter(|s| s.source == Some(id)) else { return };
        s.fanout.append(frame.clone());
        s.appended += 1;
        // A stream with its audio twice (a WHIP publisher's AAC and Opus): the Enhanced
        // RTMP track is for the players that asked for it, not for HLS, recordings or the
        // statistics.
        let second_audio = kind == MediaKind::Audio && frame.ex && s.fanout.two_audio_tracks();
        self.stream_changed(sid, now);
        if second_audio {
            return;
        }
        let s = self.streams.get_mut(sid).expect("checked");
        let mut asks = Vec::new();
        for o in s.outputs.iter_mut() {
            o.frame(&frame, &mut Cx { now, asks: &mut asks });
        }
        s.stats.count(&frame);
        if !asks.is_empty() {
            self.apply_asks(id, sid, asks, now);
        }
    }

    /// Does what a stream's outputs asked, for its publisher `id`.
    pub(super) fn apply_asks(&mut self, id: ClientId, sid: StreamId, asks: Vec<Ask>, now: &Now) {
        let msid = self.streams.get(sid).map_or(0, |s| s.source_msid);
        for a in asks {
            match a {
                Ask::Log(level, m) => self.log(Some(id), level, m),
                Ask::Status { level, code, description } => self.say(id, |s| s.status(msid, level, code, &description)),
                Ask::RecordDone { url, method, recorder, name, path, args } => {
                    let call = crate::notify::Call::RecordDone { recorder: &recorder, name: &name, path: &path, args: &args };
                    self.notify_call(id, &url, method, &call, None);
                }
                Ask::ExecRecordDone { commands, recorder, name, path } => {
                    let Some(s) = self.streams.get(sid) else { continue };
                    let app = s.key.app.clone();
                    let mut vars = self.exec_vars(Some(id), &app, &name, "");
                    let file = std::path::Path::new(&path);
                    let part = |p: Option<&std::ffi::OsStr>| p.map_or(String::new(), |p| p.to_string_lossy().into_owned());
                    vars.extend([
                        ("path", path.clone()),
                        ("filename", part(file.file_name())),
                        ("basename", part(file.file_stem())),
                        ("dirname", file.parent().map_or(String::new(), |d| d.to_string_lossy().into_owned())),
                        ("recorder", recorder),
                    ]);
                    self.exec("exec_record_done", &commands, Owner::Once, &vars, now);
                }
                Ask::Keyframe => self.ask_keyframe(id, sid, false, now),
                Ask::Repace => self.repace(id),
                Ask::Count(c) => {
                    let h = &mut self.totals.health;
                    match c {
                        Count::HlsSegment => h.hls_segments += 1,
                        Count::HlsError => h.hls_errors += 1,
                        Count::RecordFile => h.record_files += 1,
                        Count::RecordError => h.record_errors += 1,
                    }
                }
            }
        }
    }

    /// Asks a WHIP publisher (its session in the sidecar, which spaces its requests to the
    /// client) for a keyframe of stream `sid`: at once for a player (`at_once`), at most
    /// every half second while an HLS segment waits for one; the pull of a stream of
    /// another worker passes the request on to that worker. Other publishers cannot be
    /// asked.
    pub(super) fn ask_keyframe(&mut self, id: ClientId, sid: StreamId, at_once: bool, now: &Now) {
        let Some(c) = self.clients.get_mut(id) else { return };
        if c.relay().is_some_and(|r| r.peer && r.mode == crate::rtmp::client::Mode::Play) {
            // A copy of another worker's stream: the request goes on over the pull, and
            // that worker asks its WHIP publisher (with the same spacing).
            if at_once || now.ms >= c.keyframe_asked + 500 {
                c.keyframe_asked = now.ms;
                if let Some(r) = c.relay_mut() {
                    r.session.request_keyframe();
                }
                c.drain_session();
                self.ready(id);
            }
            return;
        }
        if c.kind != Kind::Whip {
            return;
        }
        let Some(msid) = c.roles.iter().find(|r| r.stream == sid && r.publishes()).map(|r| r.msid) else { return };
        if !at_once && now.ms < c.keyframe_asked + 500 {
            return;
        }
        c.keyframe_asked = now.ms;
        let ask = [Value::str(msg::KEYFRAME_REQUEST), Value::Number(0.0), Value::Null];
        let mut b = BytesMut::new();
        msg::amf0(&mut b, msg::CSID_COMMAND, msg::COMMAND_AMF0, msid, &ask, self.conf.servers[c.server].core.chunk_size as usize);
        c.queue(b.freeze());
        self.ready(id);
    }
}
