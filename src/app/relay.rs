//! Relays: a push is a client of ours that plays a local stream to another server; a pull
//! publishes another server's stream into a local one. The `push` and `pull` directives
//! make them (nginx-rtmp-module's way), kept as tasks that reconnect: a push follows its
//! stream and reconnects with backoff; a pull starts on a stream's first player, tries
//! its origins in order, and ends `pull_idle_timeout` after its last player left (a
//! `static` pull starts with the worker and never ends). A notify redirect to an `rtmp://` URL makes a
//! one-off relay. Relays make no callbacks of their own, and a pulled stream is not
//! pushed on (as in nginx-rtmp-module: no relay loops).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::client::{Client, Proto, Relay};
use super::{App, ClientId, Connect, Effect, Kind, Level, Now, Target};
use crate::conf::relay::Target as Line;
use crate::live::StreamKey;
use crate::rtmp::client::{parse_url, Client as RelaySession, ClientEvent, Mode};
use crate::rtmp::session::ConnectInfo;
use crate::stat;

/// The longest wait between reconnections (unless `push_reconnect`/`pull_reconnect` is
/// longer): the delay doubles after each failure up to this.
const MAX_BACKOFF_MS: u64 = 30_000;

/// The local name of a relayed stream with `notify_relay_redirect on`: made from the URL
/// (nginx-rtmp-module uses its MD5; here the first 16 bytes of its SHA-256, in hex).
pub fn relay_name(url: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(url.as_bytes())[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// A `push` or `pull` of one local stream, across its connections.
pub(super) struct Task {
    id: u64,
    mode: Mode,
    key: StreamKey,
    /// The application (its index in the server).
    app: usize,
    /// The lines it uses (indexes into the application's pushes or pulls): one for a
    /// push; for a pull, the origins to try in order.
    lines: Vec<usize>,
    /// The line tried now.
    at: usize,
    /// The arguments of the client that started it (its publisher, or a pull's first
    /// player), passed on where the remote name is the local one (`?token=...` reaches
    /// the other server's `on_publish`/`on_play`).
    args: String,
    client: Option<ClientId>,
    /// Whether the connection now open got the stream going.
    live: bool,
    retry_at: Option<u64>,
    /// Failures since it last got going (the backoff).
    failures: u32,
    reconnects: u64,
    last_error: String,
    is_static: bool,
    /// Ending on purpose (no players left): not to be reconnected.
    ending: bool,
    /// A pull from the worker that publishes the stream (`peer.rs`), not a `pull` line.
    peer: bool,
    /// When it last got going.
    since: u64,
    /// Bytes of its connections that are closed.
    bytes_in: u64,
    bytes_out: u64,
}

/// The relays of a worker.
#[derive(Default)]
pub(super) struct Relays {
    tasks: Vec<Task>,
    next: u64,
    /// Static pulls are started (at the first tick).
    statics: bool,
    /// The worker shuts down: nothing reconnects.
    pub(super) stopping: bool,
}

impl Relays {
    pub(super) fn set_peer(&mut self, task: u64) {
        if let Some(t) = self.tasks.iter_mut().find(|t| t.id == task) {
            t.peer = true;
        }
    }

    pub(super) fn retry(&mut self, task: u64, at: u64) {
        if let Some(t) = self.tasks.iter_mut().find(|t| t.id == task) {
            t.retry_at = Some(at);
            t.client = None;
            t.live = false;
        }
    }
}

/// The delay before reconnection number `failures` (from 1): `base`, doubled after each
/// failure, at most `MAX_BACKOFF_MS` (or `base` if that is longer).
fn backoff(base: u64, failures: u32) -> u64 {
    base.saturating_mul(1 << failures.saturating_sub(1).min(10)).min(base.max(MAX_BACKOFF_MS))
}

/// How a relay's connection is opened: its session, where it goes, what it says.
pub(super) struct Open<'a> {
    pub server: usize,
    pub app: usize,
    pub mode: Mode,
    pub key: StreamKey,
    pub url: &'a str,
    pub host: &'a str,
    pub port: u16,
    pub addr: Option<SocketAddr>,
    /// Another worker's Unix socket (`peer.rs`) instead of a host.
    pub unix: Option<String>,
    /// TLS: (server name, verify).
    pub tls: Option<(String, bool)>,
    pub session: RelaySession,
    pub task: Option<u64>,
}

impl App {
    /// Whether a pull relay into `key` is under way (or waits to reconnect).
    pub(super) fn pulling(&self, key: &StreamKey) -> bool {
        self.relays.tasks.iter().any(|t| t.mode == Mode::Play && t.key == *key)
            || self.clients.iter().any(|(_, c)| c.relay().is_some_and(|r| r.mode == Mode::Play && r.key == *key))
    }

    fn players_of(&self, key: &StreamKey) -> usize {
        self.stream_of(key).and_then(|s| self.streams.get(s)).map_or(0, |s| s.players.len())
    }

    /// A one-off relay (a notify redirect to `url`) for the stream `key` of client
    /// `from`'s server: pushing it to `url` (`Mode::Publish`) or pulling `url` into it
    /// (`Mode::Play`).
    pub(super) fn start_relay(&mut self, from: ClientId, mode: Mode, url: &str, key: StreamKey, now: &Now) -> Result<(), String> {
        let (host, port, app, stream) = parse_url(url).ok_or("not an rtmp://HOST[:PORT]/APP/STREAM URL")?;
        let f = self.clients.get(from).ok_or("the client is gone")?;
        let (server, app_index) = (f.server, f.app.ok_or("no application")?);
        let addr = host.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, port));
        if addr.is_none() && !self.conf.servers[server].resolver {
            return Err(format!("\"{host}\" is not an IP address, and the server has no \"resolver\""));
        }
        let core = &self.conf.servers[server].core;
        let seed = self.clients.next_id() ^ (now.ms << 20);
        let tc_url = url.rsplit_once('/').map_or(url, |(a, _)| a);
        let session = RelaySession::new(mode, &app, tc_url, &stream, core.chunk_size as usize, core.max_message as usize, seed);
        let open = Open { server, app: app_index, mode, key, url, host: &host, port, addr, unix: None, tls: None, session, task: None };
        self.open_relay(open, now);
        Ok(())
    }

    /// Makes a relay's client and asks the glue to connect it.
    pub(super) fn open_relay(&mut self, o: Open, now: &Now) -> ClientId {
        let (verb, dir) = if o.mode == Mode::Publish { ("pushing", "to") } else { ("pulling", "from") };
        let what = format!("{verb} \"{}/{}\" {dir} {}", o.key.app, o.key.name, o.url);
        let host = if o.host.contains(':') { format!("[{}]", o.host) } else { o.host.to_owned() };
        let text = match (&o.unix, o.addr) {
            (Some(_), _) => "unix:".to_owned(),
            (None, Some(a)) => a.to_string(),
            (None, None) => format!("{host}:{}", o.port),
        };
        let ip = o.addr.map_or(IpAddr::V4(if o.unix.is_some() { Ipv4Addr::LOCALHOST } else { Ipv4Addr::UNSPECIFIED }), |a| a.ip());
        let peer = o.unix.is_some();
        let relay = Relay { session: o.session, mode: o.mode, key: o.key.clone(), url: o.url.to_owned(), idle_since: None, task: o.task, peer };
        let mut c = Client::new(o.server, Kind::Rtmp, 0, &text, ip, now.ms, Proto::Relay(Box::new(relay)));
        c.app = Some(o.app);
        c.info = Some(Box::new(ConnectInfo { app: o.key.app, flash_ver: if peer { super::peer::FLASH_VER } else { "ngx-rtmp-rs relay" }.into(), tc_url: o.url.to_owned(), ..ConnectInfo::default() }));
        // C0 C1, written once the connection is made.
        c.drain_session();
        let id = self.clients.insert(c);
        let target = match (o.unix, o.addr) {
            (Some(path), _) => Target::Unix(path),
            (None, Some(a)) => Target::Addr(a),
            (None, None) => Target::Name { server: o.server, host: o.host.to_owned(), port: o.port },
        };
        self.effects.push_back(Effect::Connect(id, Box::new(Connect { target, text, url: o.url.to_owned(), tls: o.tls })));
        if !peer {
            self.info(id, format!("relay: {what}"));
        }
        self.ready(id);
        id
    }

    /// The glue opened a relay's connection (to `addr`, once its name is resolved): its
    /// nginx connection number.
    /// (None: a Unix socket, whose address the client has already.)
    pub fn relay_opened(&mut self, id: ClientId, number: u64, addr: Option<SocketAddr>) {
        if let Some(c) = self.clients.get_mut(id) {
            c.number = number;
            if let Some(addr) = addr {
                c.ip = addr.ip();
                c.addr = addr.to_string().into();
            }
        }
    }

    /// The glue could not open a relay's connection.
    pub fn relay_failed(&mut self, id: ClientId, why: String, now: &Now) {
        self.relay_error(id, why);
        self.close(id, now);
    }

    /// Remembers why a relay's connection ends, for `/stat`.
    fn relay_error(&mut self, id: ClientId, why: String) {
        let Some(task) = self.clients.get(id).and_then(Client::relay).and_then(|r| r.task) else { return };
        if let Some(t) = self.relays.tasks.iter_mut().find(|t| t.id == task) {
            t.last_error = why;
        }
    }

    /// Bytes from the server a relay talks to.
    pub(super) fn relay_received(&mut self, id: ClientId, data: &[u8], now: &Now) {
        let Some(r) = self.clients.get_mut(id).and_then(Client::relay_mut) else { return };
        if let Err(e) = r.session.feed(data) {
            let url = r.url.clone();
            self.info(id, format!("relay {url}: {e}"));
            self.relay_error(id, e.to_string());
            return self.close(id, now);
        }
        loop {
            let Some(r) = self.clients.get_mut(id).and_then(Client::relay_mut) else { return };
            let Some(ev) = r.session.poll_event() else { break };
            let (mode, key, url, task) = (r.mode, r.key.clone(), r.url.clone(), r.task);
            match ev {
                ClientEvent::Ready { msid } => {
                    if let Some(t) = self.relays.tasks.iter_mut().find(|t| Some(t.id) == task) {
                        t.live = true;
                        t.failures = 0;
                        t.since = now.ms;
                    }
                    let name = key.name.clone();
                    match mode {
                        Mode::Publish if !self.is_live(&key) => {
                            // The stream ended before the server took the push.
                            return self.close(id, now);
                        }
                        Mode::Publish => self.join(id, msid, key, name, String::new(), now),
                        Mode::Play => self.start_publish(id, msid, key, name, String::new(), now),
                    }
                }
                ClientEvent::Media { kind, timestamp, payload } => {
                    let msid = self.clients.get(id).and_then(|c| c.roles.first()).map_or(0, |r| r.msid);
                    self.media(id, msid, kind, timestamp, payload, now);
                }
                ClientEvent::KeyframeRequest => {}
                ClientEvent::Failed(why) => {
                    self.info(id, format!("relay {url}: the server said {why}"));
                    self.relay_error(id, why);
                    return self.close(id, now);
                }
            }
        }
        if let Some(c) = self.clients.get_mut(id) {
            c.drain_session();
            if c.has_own_output() {
                self.ready(id);
            }
        }
    }

    /// A stream was published by `id`: its application's pushes start. (A pulled stream
    /// is not pushed on.)
    pub(super) fn relay_published(&mut self, id: ClientId, key: &StreamKey, app: usize, args: &str, now: &Now) {
        if self.clients.get(id).is_some_and(|c| c.relay().is_some()) {
            return;
        }
        let Some(run) = self.conf.app(key.server, app) else { return };
        let lines: Vec<usize> = run.relays.pushes.iter().enumerate().filter(|(_, l)| l.applies_to(&key.name)).map(|(i, _)| i).collect();
        for i in lines {
            let task = self.new_task(Mode::Publish, key.clone(), app, vec![i], false, args);
            self.attempt(task, now);
        }
    }

    /// A player asked for `key`: if it is not live here and the application pulls it, a
    /// pull starts (once).
    pub(super) fn relay_wanted(&mut self, key: &StreamKey, app: usize, args: &str, now: &Now) {
        if self.is_live(key) || self.pulling(key) || self.relays.stopping {
            return;
        }
        let Some(run) = self.conf.app(key.server, app) else { return };
        let lines: Vec<usize> =
            run.relays.pulls.iter().enumerate().filter(|(_, l)| !l.is_static && l.applies_to(&key.name)).map(|(i, _)| i).collect();
        if !lines.is_empty() {
            let task = self.new_task(Mode::Play, key.clone(), app, lines, false, args);
            self.attempt(task, now);
        }
    }

    pub(super) fn new_task(&mut self, mode: Mode, key: StreamKey, app: usize, lines: Vec<usize>, is_static: bool, args: &str) -> u64 {
        self.relays.next += 1;
        let id = self.relays.next;
        self.relays.tasks.push(Task {
            id,
            mode,
            key,
            app,
            lines,
            at: 0,
            args: args.to_owned(),
            client: None,
            live: false,
            retry_at: None,
            failures: 0,
            reconnects: 0,
            last_error: String::new(),
            is_static,
            ending: false,
            peer: false,
            since: 0,
            bytes_in: 0,
            bytes_out: 0,
        });
        id
    }

    fn line(&self, t: &Task) -> Option<&Line> {
        let relays = &self.conf.app(t.key.server, t.app)?.relays;
        let lines = if t.mode == Mode::Publish { &relays.pushes } else { &relays.pulls };
        lines.get(*t.lines.get(t.at)?)
    }

    /// Opens a task's connection to the line it is at.
    pub(super) fn attempt(&mut self, task: u64, now: &Now) {
        let Some(i) = self.relays.tasks.iter().position(|t| t.id == task) else { return };
        let t = &self.relays.tasks[i];
        if t.mode == Mode::Play && !t.is_static && !t.peer && !self.relays.stopping && self.workers.owner(&t.key).is_some() {
            // Another worker has the stream (pulled there, or published): it is played
            // from that worker rather than pulled twice.
            self.relays.tasks[i].peer = true;
        }
        let t = &self.relays.tasks[i];
        if t.peer {
            if self.players_of(&t.key) == 0 || self.is_live(&t.key) || self.relays.stopping {
                self.relays.tasks.remove(i);
                return;
            }
            let (key, app) = (t.key.clone(), t.app);
            let client = self.peer_attempt(task, key, app, now);
            if let Some(t) = self.relays.tasks.iter_mut().find(|t| t.id == task).filter(|_| client.is_some()) {
                t.client = client;
                t.live = false;
                t.retry_at = None;
            }
            return;
        }
        if t.mode == Mode::Play && t.is_static && !self.relays.stopping && self.workers.owner(&t.key).is_some() {
            // Another worker runs this static pull: tried again later.
            let base = self.conf.app(t.key.server, t.app).map_or(crate::conf::relay::RECONNECT_MS, |a| a.relays.pull_reconnect);
            self.relays.tasks[i].retry_at = Some(now.ms + base.max(MAX_BACKOFF_MS));
            return;
        }
        if t.mode == Mode::Play && t.is_static && self.is_live(&t.key) && !self.relays.stopping {
            // A local publisher has the static pull's name for now: it is tried again later.
            let base = self.conf.app(t.key.server, t.app).map_or(crate::conf::relay::RECONNECT_MS, |a| a.relays.pull_reconnect);
            self.relays.tasks[i].retry_at = Some(now.ms + base.max(MAX_BACKOFF_MS));
            return;
        }
        let drop = match t.mode {
            Mode::Publish => !self.is_live(&t.key),
            Mode::Play => (!t.is_static && self.players_of(&t.key) == 0) || self.is_live(&t.key),
        };
        if drop || self.relays.stopping {
            self.relays.tasks.remove(i);
            return;
        }
        let Some(line) = self.line(t).cloned() else { return };
        let (app, tc_url, mut stream) = line.names(&t.key.app, &t.key.name);
        if line.play_path.is_none() && !t.args.is_empty() {
            stream = format!("{stream}?{}", t.args);
        }
        let core = &self.conf.servers[t.key.server].core;
        let seed = self.clients.next_id() ^ (now.ms << 20);
        let mut session = RelaySession::new(t.mode, &app, &tc_url, &stream, core.chunk_size as usize, core.max_message as usize, seed)
            .with_urls(line.page_url.as_deref().unwrap_or(""), line.swf_url.as_deref().unwrap_or(""))
            .with_range(line.live, line.start, line.stop);
        if let Some(f) = &line.flash_ver {
            session = session.with_flash_ver(f);
        }
        let (server, app_index, mode, key) = (t.key.server, t.app, t.mode, t.key.clone());
        let verify = self.conf.app(server, app_index).is_none_or(|a| a.relays.ssl_verify);
        let tls = line.tls.then(|| (line.host.clone(), verify));
        let open =
            Open { server, app: app_index, mode, key, url: &line.url, host: &line.host, port: line.port, addr: line.addr, unix: None, tls, session, task: Some(task) };
        let id = self.open_relay(open, now);
        let t = &mut self.relays.tasks[i];
        t.client = Some(id);
        t.live = false;
        t.retry_at = None;
    }

    /// A relay's connection closed (from `close`, once the client is gone): its task
    /// reconnects, tries the next origin, or ends.
    pub(super) fn relay_closed(&mut self, task: u64, bytes: (u64, u64), now: &Now) {
        let Some(i) = self.relays.tasks.iter().position(|t| t.id == task) else { return };
        let players = self.players_of(&self.relays.tasks[i].key);
        let live_here = self.is_live(&self.relays.tasks[i].key);
        let stopping = self.relays.stopping;
        let t = &mut self.relays.tasks[i];
        t.client = None;
        t.bytes_in += bytes.0;
        t.bytes_out += bytes.1;
        let was_live = std::mem::take(&mut t.live);
        if t.last_error.is_empty() {
            t.last_error = if was_live { "connection lost" } else { "no connection (refused, unreachable or closed)" }.into();
        }
        let wanted = match t.mode {
            Mode::Publish => live_here,
            Mode::Play => t.is_static || (players > 0 && !live_here),
        };
        if t.ending || stopping || !wanted {
            self.relays.tasks.remove(i);
            return;
        }
        if t.peer {
            // (Quietly: a stream that moved to another worker, or ended, is looked for again.)
            t.failures = if was_live { 1 } else { t.failures + 1 };
            let failures = t.failures;
            let at = now.ms + self.peer_retry(failures);
            self.relays.retry(task, at);
            self.effects.push_back(Effect::Wake(at));
            return;
        }
        let conf = self.conf.app(t.key.server, t.app).map(|a| a.relays.clone());
        let base = conf.map_or(crate::conf::relay::RECONNECT_MS, |r| if t.mode == Mode::Publish { r.push_reconnect } else { r.pull_reconnect });
        t.reconnects += 1;
        let next_origin = t.mode == Mode::Play && !was_live && t.at + 1 < t.lines.len();
        let (task, key, mode, error) = (t.id, t.key.clone(), t.mode, t.last_error.clone());
        if next_origin {
            t.at += 1;
            self.log(None, Level::Notice, format!("relay: pulling \"{}/{}\" failed ({error}), trying the next origin", key.app, key.name));
            return self.attempt(task, now);
        }
        t.at = 0;
        t.failures += 1;
        let delay = backoff(base, t.failures);
        t.retry_at = Some(now.ms + delay);
        let what = if mode == Mode::Publish { "pushing" } else { "pulling" };
        self.log(None, Level::Notice, format!("relay: {what} \"{}/{}\" failed ({error}), again in {delay} ms", key.app, key.name));
    }

    /// Once a second: static pulls start, tasks whose delay is over reconnect, pulls
    /// without players end, and the worker's shutdown stops them all.
    pub(super) fn relay_tick(&mut self, now: &Now, stopping: bool) {
        self.relays.stopping |= stopping;
        if self.relays.stopping {
            self.relays.tasks.retain(|t| t.client.is_some());
            return;
        }
        if !self.relays.statics {
            self.relays.statics = true;
            let conf = self.conf.clone();
            for (server, apps) in conf.apps.iter().enumerate() {
                for (app, run) in apps.iter().enumerate() {
                    for (i, l) in run.relays.pulls.iter().enumerate().filter(|(_, l)| l.is_static) {
                        let name = l.name.clone().expect("a static pull has a name");
                        let key = StreamKey { server, app: conf.servers[server].apps[app].name.clone(), name };
                        let task = self.new_task(Mode::Play, key, app, vec![i], true, "");
                        self.attempt(task, now);
                    }
                }
            }
        }
        self.relay_due(now);
        self.end_idle_pulls(now);
    }

    /// Tasks whose delay is over reconnect (from the tick, and from `wake` for the peer
    /// tasks' short delays).
    pub(super) fn relay_due(&mut self, now: &Now) {
        if self.relays.stopping {
            return;
        }
        let due: Vec<u64> = self.relays.tasks.iter().filter(|t| t.retry_at.is_some_and(|at| at <= now.ms)).map(|t| t.id).collect();
        for task in due {
            self.attempt(task, now);
        }
    }

    /// Ends pull relays whose stream has had no player for a while.
    fn end_idle_pulls(&mut self, now: &Now) {
        let mut idle = vec![];
        let pulls: Vec<(ClientId, StreamKey, Option<u64>, u64)> = self
            .clients
            .iter()
            .filter_map(|(id, c)| {
                let r = c.relay().filter(|r| r.mode == Mode::Play)?;
                // (A pull from another worker ends with its last player.)
                let idle = if r.peer {
                    0
                } else {
                    c.app.and_then(|a| self.conf.app(c.server, a)).map_or(crate::conf::relay::PULL_IDLE_MS, |a| a.relays.pull_idle_timeout)
                };
                Some((id, r.key.clone(), r.task, idle))
            })
            .collect();
        for (id, key, task, idle_ms) in pulls {
            if task.is_some_and(|task| self.relays.tasks.iter().any(|t| t.id == task && t.is_static)) {
                continue;
            }
            let watched = self.players_of(&key) > 0;
            let Some(r) = self.clients.get_mut(id).and_then(Client::relay_mut) else { continue };
            if watched {
                r.idle_since = None;
            } else if now.ms.saturating_sub(*r.idle_since.get_or_insert(now.ms)) >= idle_ms {
                idle.push((id, task));
            }
        }
        for (id, task) in idle {
            if let Some(t) = self.relays.tasks.iter_mut().find(|t| Some(t.id) == task) {
                t.ending = true;
            }
            if self.clients.get(id).and_then(Client::relay).is_some_and(|r| !r.peer) {
                self.log(Some(id), Level::Info, "relay: no players left, ending the pull".into());
            }
            self.close(id, now);
        }
        // Pulls waiting to reconnect for players who left.
        let gone: Vec<u64> = self
            .relays
            .tasks
            .iter()
            .filter(|t| t.mode == Mode::Play && !t.is_static && t.client.is_none() && self.players_of(&t.key) == 0)
            .map(|t| t.id)
            .collect();
        self.relays.tasks.retain(|t| !gone.contains(&t.id));
    }

    /// The relays for `/stat`.
    pub(super) fn relay_stats(&self, now_ms: u64) -> Vec<stat::Relay> {
        self.relays
            .tasks
            .iter()
            .filter(|t| !t.peer)
            .map(|t| {
                let c = t.client.and_then(|id| self.clients.get(id));
                let state = match (c, t.live) {
                    (Some(_), true) => "live",
                    (Some(_), false) => "connecting",
                    (None, _) => "waiting",
                };
                stat::Relay {
                    direction: if t.mode == Mode::Publish { "push" } else { "pull" },
                    app: t.key.app.clone(),
                    name: t.key.name.clone(),
                    url: self.line(t).map_or_else(String::new, |l| l.url.clone()),
                    state,
                    reconnects: t.reconnects,
                    last_error: t.last_error.clone(),
                    bytes_in: t.bytes_in + c.map_or(0, |c| c.bytes_in),
                    bytes_out: t.bytes_out + c.map_or(0, |c| c.bytes_out),
                    uptime: if t.live { now_ms.saturating_sub(t.since) / 1000 } else { 0 },
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::backoff;

    #[test]
    fn reconnection_backs_off_to_a_ceiling() {
        let d: Vec<u64> = (1..=7).map(|f| backoff(3000, f)).collect();
        assert_eq!(d, [3000, 6000, 12000, 24000, 30000, 30000, 30000]);
        assert_eq!(backoff(60_000, 3), 60_000, "a longer configured delay is kept");
    }
}
