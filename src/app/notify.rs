//! The notify callbacks of clients: the calls (`Effect::Call`, made by the glue's HTTP
//! client), what their answers decide (`on_connect`, `on_publish`, `on_play`: go on,
//! rename, relay or refuse; `on_update`: keep or drop), and the end callbacks
//! (`on_publish_done`, `on_play_done`, `on_done`, `on_disconnect`) exactly once per stream.

use super::client::{Note, Waiting};
use super::exec::Owner;
use super::{App, Call, ClientId, Effect, Level, Now, Target, Timer};
use crate::conf::access::Action;
use crate::conf::notify::Event as Cb;
use crate::notify::{self as nf, Outcome, Verdict};
use crate::rtmp::client::Mode;

/// What a callback's answer is for.
pub enum Then {
    /// Only a failure is logged (end callbacks, `on_record_done`).
    Nothing { what: &'static str, number: u64 },
    Connect(ClientId),
    /// `on_publish` / `on_play`.
    Stream(ClientId),
    Update(ClientId),
    /// A file fetched for a player (`play http://...`).
    Fetch(Box<super::vod::Fetch>),
}

/// nginx-rtmp-module keeps a client's `flashVer` in 32 bytes; longer ones are cut there.
pub(super) fn cut(s: &mut String, max: usize) {
    if s.len() > max {
        let mut i = max;
        while !s.is_char_boundary(i) {
            i -= 1;
        }
        s.truncate(i);
    }
}

impl App {
    /// Sends a callback about client `id`. With `then`, its outcome goes on with the
    /// client (if it is still connected by then); without, only a failure is logged.
    pub(super) fn notify_call(&mut self, id: ClientId, url: &nf::Url, method: nf::Method, call: &nf::Call, then: Option<Then>) {
        let Some(c) = self.clients.get(id) else { return };
        let info = c.info.as_deref();
        let field = |f: fn(&crate::rtmp::session::ConnectInfo) -> &str| info.map_or("", f);
        let client = nf::Client {
            app: field(|i| &i.app),
            flashver: field(|i| &i.flash_ver),
            swfurl: field(|i| &i.swf_url),
            tcurl: field(|i| &i.tc_url),
            pageurl: field(|i| &i.page_url),
            addr: &c.addr,
            clientid: c.number,
            args: field(|i| &i.args),
        };
        let request = nf::request(method, url, &nf::form(&client, call));
        let what = call.name();
        let number = c.number;
        let server = c.server;
        let verify = c.app.and_then(|a| self.conf.app(server, a)).map_or(self.conf.servers[server].ssl_verify, |a| a.relays.ssl_verify);
        let srv = &self.conf.servers[server].notify;
        let (timeout, limit) = (srv.netcall_timeout(), srv.reply_limit());
        let target = match url.addr {
            Some(addr) => Target::Addr(addr),
            None => Target::Name { server, host: url.host.clone(), port: url.port },
        };
        self.info(id, format!("notify: {what} \"{}\"", url.text));
        let call_id = self.next_call;
        self.next_call += 1;
        self.calls.insert(call_id, then.unwrap_or(Then::Nothing { what, number }));
        let tls = url.tls.then(|| (url.host.clone(), verify));
        self.effects.push_back(Effect::Call(Box::new(Call { id: call_id, target, url: url.text.clone(), request, timeout, limit, tls, download: None })));
    }

    /// A callback's outcome.
    pub fn call_done(&mut self, call: super::CallId, outcome: Outcome, now: &Now) {
        let Some(then) = self.calls.remove(&call) else { return };
        match then {
            Then::Nothing { what, number } => {
                if let Err(why) = outcome {
                    self.log(None, Level::Err, format!("notify: {what} of client {number} failed: {why}"));
                }
            }
            // A client that is gone needs no answer.
            Then::Connect(id) if self.clients.contains(id) => self.connect_decided(id, outcome, now),
            Then::Stream(id) if self.clients.contains(id) => self.stream_decided(id, outcome, now),
            Then::Update(id) if self.clients.contains(id) => self.update_answered(id, outcome, now),
            Then::Fetch(f) => self.fetched(*f, outcome, now),
            _ => {}
        }
    }

    /// Logs why a callback refused a client: the answer (info: a normal refusal) or the
    /// failure (error: the callback service is down or broken).
    fn log_refusal(&mut self, id: ClientId, what: &str, outcome: &Outcome) {
        match outcome {
            Ok(r) => self.info(id, format!("notify: {what} refused (HTTP {})", r.status)),
            Err(why) => self.log(Some(id), Level::Err, format!("notify: {what} refused: {why}")),
        }
    }

    /// `on_connect` answered.
    fn connect_decided(&mut self, id: ClientId, outcome: Outcome, now: &Now) {
        let c = self.clients.get_mut(id).expect("checked");
        c.waiting = None;
        match nf::verdict(&outcome) {
            Verdict::Allow => self.connect_app(id),
            Verdict::Rename(app) | Verdict::Relay(app) => {
                self.info(id, format!("notify: connect redirect to \"{}\"", app.escape_debug()));
                if let Some(info) = self.clients.get_mut(id).and_then(|c| c.info.as_mut()) {
                    info.app = app;
                }
                self.connect_app(id);
            }
            Verdict::Deny(_) => {
                self.log_refusal(id, "connect", &outcome);
                self.say(id, |s| s.reject_connect("Connection refused by on_connect"));
                if let Some(c) = self.clients.get_mut(id) {
                    c.close_after_flush = true;
                }
            }
        }
        self.resume(id, now);
    }

    /// `on_publish` or `on_play` answered: go on (under the redirected name), or refuse
    /// with the action's status.
    fn stream_decided(&mut self, id: ClientId, outcome: Outcome, now: &Now) {
        let c = self.clients.get_mut(id).expect("checked");
        let Some(w) = c.waiting.take() else { return };
        let Waiting::Stream { player, msid, name, args } = *w else {
            c.waiting = Some(w);
            return;
        };
        let (action, what, relay, code) = if player {
            (Action::Play, "play", "pull", "NetStream.Play.Forbidden")
        } else {
            (Action::Publish, "publish", "push", "NetStream.Publish.Unauthorized")
        };
        let start = |app: &mut App, msid, key, name, args| {
            if player {
                app.start_play(id, msid, key, name, args, now);
            } else {
                app.start_publish(id, msid, key, name, args, now);
            }
        };
        match nf::verdict(&outcome) {
            Verdict::Allow => {
                if let Some(key) = self.admit(id, msid, &name, action) {
                    start(self, msid, key, name, args);
                }
            }
            Verdict::Rename(to) => {
                self.info(id, format!("notify: {what} redirect to \"{}\"", to.escape_debug()));
                if let Some(key) = self.admit(id, msid, &to, action) {
                    start(self, msid, key, name, args);
                }
            }
            Verdict::Relay(to) => {
                // The stream stays local (under a name made from the URL with
                // notify_relay_redirect); a relay pushes it to, or pulls it from, `to`.
                let c = self.clients.get(id).expect("checked");
                let redirect = c.app.is_some_and(|a| self.conf.servers[c.server].apps[a].settings.notify.relay_redirect());
                let local = if redirect { super::relay::relay_name(&to) } else { name.clone() };
                let dir = if player { "from" } else { "to" };
                self.info(id, format!("notify: {relay} \"{local}\" {dir} {}", to.escape_debug()));
                if let Some(key) = self.admit(id, msid, &local, action) {
                    let mode = if player { Mode::Play } else { Mode::Publish };
                    let pulled = player && (self.is_live(&key) || self.pulling(&key));
                    start(self, msid, key.clone(), name, args);
                    let started = self.clients.get(id).is_some_and(|c| !c.close_after_flush);
                    if started && !pulled {
                        if let Err(why) = self.start_relay(id, mode, &to, key, now) {
                            self.log(Some(id), Level::Err, format!("relay {relay} {dir} {}: {why}", to.escape_debug()));
                        }
                    }
                }
            }
            Verdict::Deny(_) => {
                self.log_refusal(id, &format!("{what} \"{name}\""), &outcome);
                self.refuse(id, msid, code, &format!("Refused by on_{what}"));
            }
        }
        self.resume(id, now);
    }

    /// Remembers a stream for its later callbacks (`on_*_done`, `on_update`), and starts
    /// the updates.
    pub(super) fn noted(&mut self, id: ClientId, msid: u32, player: bool, name: String, args: String, now: &Now) {
        let Some(c) = self.clients.get_mut(id).filter(|c| c.kind != super::Kind::Peer) else { return };
        let Some(app) = c.app else { return };
        let n = &self.conf.servers[c.server].apps[app].settings.notify;
        let run = self.conf.app(c.server, app);
        let exec_done = run.is_some_and(|r| !r.exec.publish_done.is_empty() || !r.exec.play_done.is_empty());
        // (Relays make no callbacks, as in nginx-rtmp-module; they do run `exec_*_done`.)
        if !n.any_stream_callback() && !exec_done {
            return;
        }
        let every = n.update_timeout();
        let updates = n.url(Cb::Update).is_some() && every > 0 && c.relay().is_none();
        let first = c.notes.is_empty() && c.updates_pending == 0;
        c.notes.push(Note { msid, player, name, args, since: now.ms });
        if updates && first {
            self.effects.push_back(Effect::Timer(id, Timer::Update, every));
        }
    }

    /// `on_publish_done` / `on_play_done`, then `on_done`, for a stream that ended.
    pub(super) fn notify_done(&mut self, id: ClientId, player: bool, name: &str, args: &str, now: &Now) {
        let Some(c) = self.clients.get(id) else { return };
        let Some(app) = c.app else { return };
        let server = c.server;
        if let Some(run) = self.conf.clone().app(server, app) {
            let (label, lines) = if player { ("exec_play_done", &run.exec.play_done) } else { ("exec_publish_done", &run.exec.publish_done) };
            if !lines.is_empty() {
                let vars = self.exec_vars(Some(id), &self.conf.servers[server].apps[app].name, name, args);
                self.exec(label, lines, Owner::Once, &vars, now);
            }
        }
        let Some(c) = self.clients.get(id) else { return };
        if c.relay().is_some() {
            return;
        }
        let n = self.conf.servers[c.server].apps[app].settings.notify.clone();
        let first = if player { (Cb::PlayDone, "play_done") } else { (Cb::PublishDone, "publish_done") };
        for (cb, call) in [first, (Cb::Done, "done")] {
            if let Some(url) = n.url(cb) {
                self.notify_call(id, url, n.method(), &nf::Call::Done { call, name, args }, None);
            }
        }
    }

    /// The end callbacks of a client that closes (its streams have been left): the ends
    /// of its streams (and of a publish or play still waiting for its callback, as
    /// nginx-rtmp-module does), then `on_disconnect`.
    pub(super) fn notify_close(&mut self, id: ClientId, now: &Now) {
        let Some(c) = self.clients.get_mut(id) else { return };
        let notes = std::mem::take(&mut c.notes);
        let waiting = c.waiting.take();
        for note in notes {
            self.notify_done(id, note.player, &note.name, &note.args, now);
        }
        match waiting.map(|w| *w) {
            Some(Waiting::Stream { player, name, args, .. }) => self.notify_done(id, player, &name, &args, now),
            Some(Waiting::CatchUp { name, args, .. }) => self.notify_done(id, true, &name, &args, now),
            _ => {}
        }
        let c = self.clients.get(id).expect("checked");
        let srv = self.conf.servers[c.server].notify.clone();
        if let (Some(url), Some(_), None, false) = (srv.url(Cb::Disconnect), &c.info, c.relay(), c.kind == super::Kind::Peer) {
            self.notify_call(id, url, srv.method(), &nf::Call::Disconnect, None);
        }
    }

    /// `on_update`: one call per stream of the client; the next round is scheduled when
    /// every answer is in.
    pub(super) fn on_update(&mut self, id: ClientId, now: &Now) {
        let Some(c) = self.clients.get(id) else { return };
        let Some(app) = c.app else { return };
        let n = self.conf.servers[c.server].apps[app].settings.notify.clone();
        let Some(url) = n.url(Cb::Update) else { return };
        let last_ts = c.last_ts;
        let notes: Vec<(bool, u64, String, String)> = c.notes.iter().map(|n| (n.player, n.since, n.name.clone(), n.args.clone())).collect();
        for (player, since, name, args) in notes {
            let call = nf::Call::Update { publishing: !player, time: now.ms.saturating_sub(since) / 1000, timestamp: last_ts, name: &name, args: &args };
            self.notify_call(id, url, n.method(), &call, Some(Then::Update(id)));
            if let Some(c) = self.clients.get_mut(id) {
                c.updates_pending += 1;
            }
        }
    }

    fn update_answered(&mut self, id: ClientId, outcome: Outcome, now: &Now) {
        let c = self.clients.get_mut(id).expect("checked");
        c.updates_pending = c.updates_pending.saturating_sub(1);
        let Some(app) = c.app else { return };
        let n = &self.conf.servers[c.server].apps[app].settings.notify;
        let (strict, every) = (n.update_strict(), n.update_timeout());
        if nf::update_drops(&outcome, strict) {
            self.log_refusal(id, "update", &outcome);
            self.info(id, "on_update refused the client, closing it".into());
            return self.close(id, now);
        }
        let c = self.clients.get(id).expect("checked");
        if c.updates_pending == 0 && !c.notes.is_empty() {
            self.effects.push_back(Effect::Timer(id, Timer::Update, every));
        }
    }
}
