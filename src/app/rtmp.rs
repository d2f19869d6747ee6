//! A client's RTMP session in the application: accepting it, its input (bytes into its
//! session, the session's events handled: connect, publish, play, media, pause...), its
//! timers, and closing it. A protocol error closes that client (logged with the reason);
//! a client that sends but does not read is dropped at `out_queue`.

use bytes::BytesMut;

use super::client::{Client, Proto, Waiting};
use super::notify::{cut, Then};
use super::{Accept, App, ClientId, Effect, Kind, Level, Now, Timer};
use crate::conf::access::Action;
use crate::conf::notify::Event as Cb;
use crate::notify::{self as nf, Call};
use crate::rtmp::proxy;
use crate::rtmp::session::{self, Event, Session};
use crate::stat::Fault;

impl App {
    /// A new connection; its pings start.
    pub fn accept(&mut self, a: Accept, now: &Now) -> ClientId {
        let core = &self.conf.servers[a.server].core;
        let session = Session::new(session::Config {
            chunk_size: core.chunk_size as usize,
            ack_window: core.ack_window as u32,
            max_message: core.max_message as usize,
            max_streams: core.max_streams as u32,
            publish_time_fix: core.publish_time_fix,
        });
        let ping = core.ping;
        let deadline = core.handshake_timeout;
        let mut c = Client::new(a.server, a.kind, a.number, a.addr, a.ip, now.ms, Proto::Server(session));
        if a.proxy_protocol {
            c.proxy_header = Some(Box::default());
        }
        let id = self.clients.insert(c);
        self.totals.naccepted += 1;
        match a.kind {
            Kind::Whip => self.totals.health.whip_sessions_total += 1,
            Kind::Whep => self.totals.health.whep_sessions_total += 1,
            Kind::Rtmp | Kind::Peer => {}
        }
        self.info(id, "client connected".into());
        self.effects.push_back(Effect::Deadline(id, Some(deadline)));
        if ping > 0 {
            self.effects.push_back(Effect::Timer(id, Timer::Ping, ping));
        }
        id
    }

    /// Has the client's RTMP session say something (`accept_publish`, a status...) and
    /// queues it for the client. (A relay's session has nothing to say to the server.)
    pub(super) fn say(&mut self, id: ClientId, f: impl FnOnce(&mut Session)) {
        let Some(c) = self.clients.get_mut(id) else { return };
        if let Some(s) = c.session() {
            f(s);
        }
        c.drain_session();
        self.ready(id);
    }

    /// Whether the client's input is to be read now: not while a callback it waits for is
    /// pending (what it sends meanwhile stays in its socket), nor once it is to close.
    pub fn wants_input(&self, id: ClientId) -> bool {
        self.clients.get(id).is_some_and(|c| c.waiting.is_none() && !c.close_after_flush)
    }

    /// Whether the client waits for a callback (its read timeout does not run then).
    pub fn waiting(&self, id: ClientId) -> bool {
        self.clients.get(id).is_some_and(|c| c.waiting.is_some())
    }

    /// For a publisher, after its handshake: the buffer its input is to be received into
    /// (no copy), with room for at least `room` bytes; then `received_in_place`.
    pub fn input(&mut self, id: ClientId, room: usize) -> Option<&mut BytesMut> {
        let c = self.clients.get_mut(id)?;
        if !c.publishes() {
            return None;
        }
        match &mut c.proto {
            Proto::Server(s) => s.input(room),
            Proto::Relay(_) => None,
        }
    }

    /// `n` bytes were received into the `input` buffer.
    pub fn received_in_place(&mut self, id: ClientId, n: usize, now: &Now) {
        self.count_in(id, n);
        let Some(s) = self.clients.get_mut(id).and_then(Client::session) else { return };
        let fed = s.received(n);
        self.fed(id, fed, now);
    }

    /// Bytes from the client. `seed`: any varying number (the handshake's randomness).
    pub fn received(&mut self, id: ClientId, data: &[u8], seed: u64, now: &Now) {
        let Some(c) = self.clients.get_mut(id) else { return };
        if c.proxy_header.is_some() {
            return self.proxy_header(id, data, seed, now);
        }
        if c.relay().is_some() {
            self.count_in(id, data.len());
            return self.relay_received(id, data, now);
        }
        let Some(s) = c.session() else { return };
        let fed = s.feed(data, now.ms as u32, seed);
        self.count_in(id, data.len());
        self.fed(id, fed, now);
    }

    /// The PROXY protocol header before a client's bytes (`listen ... proxy_protocol`):
    /// once whole, the client's address is the one it gives, and what follows it is the
    /// client's.
    fn proxy_header(&mut self, id: ClientId, data: &[u8], seed: u64, now: &Now) {
        let Some(c) = self.clients.get_mut(id) else { return };
        let Some(buf) = c.proxy_header.as_mut() else { return };
        let take = data.len().min(proxy::MAX_HEADER - buf.len());
        buf.extend_from_slice(&data[..take]);
        match proxy::parse(buf) {
            Ok(proxy::Header::Incomplete) if take == data.len() => self.count_in(id, data.len()),
            Ok(proxy::Header::Incomplete) => {
                self.info(id, format!("client error: a PROXY protocol header longer than {} bytes", proxy::MAX_HEADER));
                self.fault(Fault::Protocol);
                self.close(id, now);
            }
            Err(e) => {
                self.info(id, format!("client error: {e}"));
                self.fault(Fault::Protocol);
                self.close(id, now);
            }
            Ok(proxy::Header::Done { len, client }) => {
                let buf = c.proxy_header.take().expect("checked");
                // (The header's bytes are the proxy's, not the client's.)
                let rest: Vec<u8> = buf[len..].iter().chain(&data[take..]).copied().collect();
                if let Some(addr) = client {
                    let text = addr.ip().to_string();
                    self.info(id, format!("PROXY protocol: the client is {addr}"));
                    let c = self.clients.get_mut(id).expect("known");
                    c.ip = addr.ip();
                    c.addr = text.clone().into();
                    self.effects.push_back(Effect::Peer(id, text));
                }
                if !rest.is_empty() {
                    self.received(id, &rest, seed, now);
                }
            }
        }
    }

    fn count_in(&mut self, id: ClientId, n: usize) {
        if let Some(c) = self.clients.get_mut(id) {
            c.bytes_in += n as u64;
        }
        self.totals.bytes_in += n as u64;
    }

    /// After input went into the session: its events, or its error.
    fn fed(&mut self, id: ClientId, fed: Result<(), session::Error>, now: &Now) {
        if let Err(e) = fed {
            self.info(id, format!("client error: {e}"));
            self.fault(Fault::Protocol);
            return self.close(id, now);
        }
        self.handle_events(id, now);
        let Some(c) = self.clients.get_mut(id) else { return };
        if !c.publishes() {
            // (A player sends a few commands: its input buffer's memory goes back.)
            if let Some(s) = c.session() {
                s.shrink_input();
            }
        }
        // Replies (acks, pings, statuses) to a client that sends but does not read must not
        // pile up: the same bound as for players.
        let out_queue = self.conf.servers[c.server].core.out_queue;
        if c.queued_live() as u64 > out_queue && c.waiting.is_none() && !c.close_after_flush {
            self.info(id, "client does not read what it is sent (out_queue), closing".into());
            self.fault(Fault::Slow);
            self.close(id, now);
        }
    }

    /// Handles the session's events until one waits for a callback.
    fn handle_events(&mut self, id: ClientId, now: &Now) {
        loop {
            let Some(c) = self.clients.get_mut(id) else { return };
            if c.waiting.is_some() {
                break;
            }
            let Some(ev) = c.session().and_then(Session::poll_event) else { break };
            self.handle_event(id, ev, now);
        }
        if let Some(c) = self.clients.get_mut(id) {
            c.drain_session();
            if c.has_own_output() {
                self.ready(id);
            }
        }
    }

    /// Goes on with a client whose callback answered (or whose play waited for its
    /// publisher to be read): the commands and media that came with the one that waited,
    /// then what waits in its socket.
    pub(super) fn resume(&mut self, id: ClientId, now: &Now) {
        self.handle_events(id, now);
        if self.wants_input(id) {
            self.effects.push_back(Effect::Resume(id));
        }
    }

    /// After `Effect::ReadNow` of its publisher: a play goes on.
    pub fn proceed(&mut self, id: ClientId, now: &Now) {
        let Some(c) = self.clients.get_mut(id) else { return };
        let Some(w) = c.waiting.take() else { return };
        let Waiting::CatchUp { msid, name, args, key } = *w else {
            c.waiting = Some(w);
            return;
        };
        self.join(id, msid, key, name, args, now);
        self.resume(id, now);
    }

    fn handle_event(&mut self, id: ClientId, ev: Event, now: &Now) {
        let Some(c) = self.clients.get_mut(id) else { return };
        if c.close_after_flush {
            return;
        }
        match ev {
            Event::Connect(mut info) => {
                self.info(
                    id,
                    format!(
                        "connect: app \"{}\" flashver \"{}\" tcurl \"{}\"",
                        // (escaped: what a client sends must not forge log lines)
                        info.app.escape_debug(),
                        info.flash_ver.escape_debug(),
                        info.tc_url.escape_debug()
                    ),
                );
                cut(&mut info.flash_ver, nf::FLASHVER_MAX);
                let c = self.clients.get_mut(id).expect("checked");
                c.info = Some(Box::new(info));
                let srv = self.conf.servers[c.server].notify.clone();
                // (Another worker's pull was let in there: no callbacks here.)
                let peer = c.kind == Kind::Peer;
                if let Some(url) = srv.url(Cb::Connect).filter(|_| !peer) {
                    // (nginx-rtmp-module's epoch: the worker's millisecond clock when the
                    // client connected.)
                    let epoch = c.since as u32;
                    c.waiting = Some(Box::new(Waiting::Connect));
                    self.notify_call(id, url, srv.method(), &Call::Connect { epoch }, Some(Then::Connect(id)));
                    return;
                }
                self.connect_app(id);
            }
            Event::Publish { msid, name, args, kind } => {
                self.log_command(id, super::log::PUBLISH, &name, &args);
                let Some(key) = self.admit(id, msid, &name, Action::Publish) else { return };
                let c = self.clients.get_mut(id).expect("admitted");
                let n = self.conf.servers[c.server].apps[c.app.expect("admitted")].settings.notify.clone();
                if let Some(url) = n.url(Cb::Publish) {
                    self.notify_call(id, url, n.method(), &Call::Publish { name: &name, kind: &kind, args: &args }, Some(Then::Stream(id)));
                    let c = self.clients.get_mut(id).expect("admitted");
                    c.waiting = Some(Box::new(Waiting::Stream { player: false, msid, name, args }));
                    return;
                }
                self.start_publish(id, msid, key, name, args, now);
            }
            Event::Play { msid, name, args, start, duration, reset } => {
                self.log_command(id, super::log::PLAY, &name, &args);
                let Some(key) = self.admit(id, msid, &name, Action::Play) else { return };
                let c = self.clients.get_mut(id).expect("admitted");
                // (librtmp's -1000 and -2000 ask for live or anything: the start.)
                c.play_start = if start > 0.0 { start.min(f64::from(u32::MAX)) as u32 } else { 0 };
                let app = &self.conf.servers[c.server].apps[c.app.expect("admitted")];
                if !app.live().enabled && app.settings.play.is_none() {
                    return self.refuse(id, msid, "NetStream.Play.StreamNotFound", "Live streaming is off in this application (live off)");
                }
                let n = app.settings.notify.clone();
                let peer = c.kind == Kind::Peer;
                if let Some(url) = n.url(Cb::Play).filter(|_| !peer) {
                    let call = Call::Play { name: &name, start, duration, reset, args: &args };
                    self.notify_call(id, url, n.method(), &call, Some(Then::Stream(id)));
                    let c = self.clients.get_mut(id).expect("admitted");
                    c.waiting = Some(Box::new(Waiting::Stream { player: true, msid, name, args }));
                    return;
                }
                self.start_play(id, msid, key, name, args, now);
            }
            Event::Media { msid, kind, timestamp, payload } => self.media(id, msid, kind, timestamp, payload, now),
            Event::CloseStream { msid } => {
                if c.vod.as_ref().is_some_and(|v| v.0 == msid) {
                    c.vod = None;
                }
                self.end_stream(id, msid, now)
            }
            Event::Pause { msid, pause } if c.vod.is_some() => {
                self.vod_pause(id, msid, pause, now);
            }
            Event::Seek { msid, ms } => self.vod_seek(id, msid, ms, now),
            Event::Pause { msid, pause } => {
                let Some(r) = c.roles.iter_mut().find(|r| r.msid == msid) else { return };
                let (Some(cur), Some(s)) = (r.play.as_mut(), self.streams.get(r.stream)) else { return };
                s.fanout.pause(cur, pause);
                self.say(id, |s| s.paused(msid, pause));
            }
            Event::Receive { msid, kind, on } => {
                let Some(r) = c.roles.iter_mut().find(|r| r.msid == msid) else { return };
                let (Some(cur), Some(s)) = (r.play.as_mut(), self.streams.get(r.stream)) else { return };
                s.fanout.receive(cur, kind, on);
            }
            Event::KeyframeRequest { msid } => {
                let Some(r) = c.roles.iter().find(|r| r.msid == msid && r.play.is_some()) else { return };
                let sid = r.stream;
                // (Only a WHIP publisher can be asked; at most every 500 ms.)
                if let Some(p) = self.streams.get(sid).and_then(|s| s.source) {
                    self.ask_keyframe(p, sid, false, now);
                }
            }
        }
    }

    /// Finds the application the client connected to and accepts or refuses the connect.
    pub(super) fn connect_app(&mut self, id: ClientId) {
        let Some(c) = self.clients.get_mut(id) else { return };
        let name = c.info.as_ref().map(|i| i.app.clone()).unwrap_or_default();
        let found = self.conf.servers[c.server].apps.iter().position(|a| a.name == name);
        match found {
            Some(i) => {
                c.app = Some(i);
                self.effects.push_back(Effect::Deadline(id, None));
                let fix = self.conf.app(c.server, i).is_none_or(|a| a.live.publish_time_fix);
                if let Some(s) = c.session() {
                    s.set_publish_time_fix(fix);
                }
                self.say(id, Session::accept_connect);
            }
            None => {
                c.close_after_flush = true;
                self.fault(Fault::Refused);
                self.info(id, format!("application \"{}\" not found", name.escape_debug()));
                self.say(id, |s| s.reject_connect("Application not found"));
            }
        }
    }

    /// A client's timer fired.
    pub fn timer(&mut self, id: ClientId, t: Timer, now: &Now) {
        let Some(c) = self.clients.get_mut(id) else { return };
        let core = self.conf.servers[c.server].core.clone();
        match t {
            Timer::Ping => {
                // `busy`: a client with nothing in or out during a whole ping interval is
                // closed, and none is pinged (nginx-rtmp-module: "not busy between pings").
                if core.busy {
                    let io = c.bytes_in + c.bytes_out;
                    if io == c.ping_bytes {
                        self.info(id, "ping: not busy between pings (busy on)".into());
                        self.fault(Fault::Idle);
                        return self.close(id, now);
                    }
                    c.ping_bytes = io;
                    self.effects.push_back(Effect::Timer(id, Timer::Ping, core.ping));
                    return;
                }
                self.effects.push_back(Effect::Timer(id, Timer::Ping, core.ping));
                let Some(s) = c.session().filter(|s| s.is_open()) else { return };
                s.ping(now.ms as u32);
                c.drain_session();
                // The answer (any input) must come within ping_timeout.
                self.effects.push_back(Effect::Expect(id, core.ping_timeout));
                self.ready(id);
            }
            Timer::Idle => {
                let limit = c.app.and_then(|a| self.conf.app(c.server, a)).map_or(0, |a| a.live.drop_idle_publisher);
                let idle = now.ms.saturating_sub(c.last_media);
                if idle >= limit {
                    self.info(id, format!("drop idle publisher: no audio or video for {idle} ms (drop_idle_publisher)"));
                    self.fault(Fault::Idle);
                    self.close(id, now);
                } else {
                    self.effects.push_back(Effect::Timer(id, Timer::Idle, limit - idle));
                }
            }
            Timer::Update => self.on_update(id, now),
            Timer::Vod => self.vod_tick(id, now),
        }
    }

    /// Closes a client: it leaves its streams (players are told a publisher left; the
    /// stream's outputs end), its end callbacks are made, and the glue closes its
    /// connection (`Effect::Drop`). The glue calls this too, for a connection that ended
    /// (closed by the peer, timed out, an I/O error).
    pub fn close(&mut self, id: ClientId, now: &Now) {
        let Some(c) = self.clients.get_mut(id) else { return };
        let roles = std::mem::take(&mut c.roles);
        for r in roles {
            self.leave(id, r, now);
        }
        self.notify_close(id, now);
        self.log_session(id, now);
        let mut task = None;
        if let Some(c) = self.clients.remove(id) {
            self.totals.bytes_out_gone += c.bytes_out;
            task = c.relay().and_then(|r| r.task).map(|t| (t, (c.bytes_in, c.bytes_out)));
        }
        self.effects.push_back(Effect::Drop(id));
        if let Some((task, bytes)) = task {
            self.relay_closed(task, bytes, now);
        }
    }

    /// The 1 s tick of the worker: rates for `/stat`, idle pulls, and, while the worker
    /// shuts down, its clients (see `shutdown`).
    pub fn tick(&mut self, now: &Now, shutdown: Option<super::Shutdown>) {
        self.sample_rates(now);
        self.relay_tick(now, shutdown.is_some());
        self.exec_tick(now);
        self.ladder_tick();
        if let Some(how) = shutdown {
            self.exec_shutdown(now);
            self.shutdown(how, now);
        }
    }

    /// While the worker shuts down. When nginx quits (no newer workers take over, unlike
    /// a reload), live publishers have `drain_timeout` to finish; then they are closed as
    /// if they had left (recordings completed, `on_publish_done`, players told the stream
    /// ended and then closed at the next tick), so that nginx ends in time (`docker stop`
    /// waits 10 s). A worker that no longer accepts can never get a publisher again, so
    /// its players of streams without one, and clients that neither publish nor play,
    /// are closed (they reconnect to the new workers); publishers and their players are
    /// left to finish.
    fn shutdown(&mut self, how: super::Shutdown, now: &Now) {
        if how == super::Shutdown::Quit {
            if let Some(limit) = self.conf.drain_timeout {
                let publishers: Vec<ClientId> = self.clients.iter().filter(|(_, c)| c.publishes()).map(|(id, _)| id).collect();
                let since = match self.quit_seen {
                    Some(t) => t,
                    None => {
                        self.quit_seen = Some(now.ms);
                        if !publishers.is_empty() {
                            let n = publishers.len();
                            self.log(None, Level::Notice, format!("nginx is quitting: {n} live publisher(s) have {limit} ms to finish (drain_timeout)"));
                        }
                        now.ms
                    }
                };
                if now.ms.saturating_sub(since) >= limit && !publishers.is_empty() {
                    for id in publishers {
                        self.info(id, format!("closing publisher: nginx is quitting and drain_timeout ({limit} ms) is over"));
                        self.close(id, now);
                    }
                    // (Their players are closed at the next tick, once told.)
                    return;
                }
            }
        }
        let orphans: Vec<ClientId> = self
            .clients
            .iter()
            .filter(|(_, c)| {
                // A pull relay ends too: its players reconnect to the new workers, which
                // pull again. (Not a pull from another worker: that stream goes on there,
                // and so do its players here.)
                let pull = c.relay().is_some_and(|r| r.mode == crate::rtmp::client::Mode::Play && !r.peer);
                pull || !c.roles.iter().any(|r| r.publishes() || self.streams.get(r.stream).is_some_and(|s| s.source.is_some()))
            })
            .map(|(id, _)| id)
            .collect();
        for id in orphans {
            self.info(id, "closing client: the worker is shutting down and it has no live stream".into());
            self.close(id, now);
        }
    }

    /// The client is a WHIP session's (for `/stat` and asking for keyframes).
    pub fn kind(&self, id: ClientId) -> Option<Kind> {
        self.clients.get(id).map(|c| c.kind)
    }
}
