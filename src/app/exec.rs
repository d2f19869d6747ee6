//! The `exec*` children of the worker's streams, supervised: `exec`/`exec_push` runs while
//! its stream is published, `exec_pull` while it has players, `exec_static` while the
//! worker runs; `exec_publish`, `exec_play`, their `_done` and `exec_record_done` run once.
//! A supervised child that exits is respawned after `respawn_timeout`, doubling (up to a
//! minute) while it keeps failing and starting over once it has run 30 s, so a broken
//! command never spins a core; one whose RTMP output has had no media for
//! `exec_stall_timeout` while its source had is restarted; a stopped one gets
//! `exec_kill_signal`, then SIGKILL after [`KILL_GRACE_MS`]. Its output goes to the error
//! log, a few lines per ten seconds. The glue (`glue/spawn.rs`) starts processes
//! (`Effect::Spawn`), signals their process groups (`Effect::Signal`) and reports back
//! (`spawned`, `child_output`, `child_exited`).

use std::collections::BTreeMap;

use super::{App, ClientId, Effect, Level, Now, StreamId};
use crate::conf::exec::{Policy, KILL_GRACE_MS};
use crate::exec::{Command, Spec};
use crate::live::StreamKey;

/// A child process of the worker, as the application numbers them.
pub type ChildId = u64;

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exited with code {c}"),
            Exit::Signal(s) => write!(f, "was killed by signal {s}"),
        }
    }
}

/// What a child runs for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// `exec`/`exec_push`: while the stream is published.
    Push(StreamId),
    /// `exec_pull`: while the stream has players.
    Pull(StreamId),
    Static,
    /// Runs once (`exec_publish`...), never respawned nor stopped.
    Once,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// To be (re)started at this time.
    Waiting(u64),
    Spawning,
    Running,
    /// Asked to stop at this time; SIGKILL after the grace.
    Stopping(u64),
}

/// A run that lasted this long resets the respawn delay.
const HEALTHY_MS: u64 = 30_000;
/// The longest respawn delay (unless `respawn_timeout` is longer).
const MAX_RESPAWN_MS: u64 = 60_000;
/// Output lines logged per child per window.
const LINES_PER_WINDOW: u32 = 10;
const WINDOW_MS: u64 = 10_000;
/// The longest line kept (a longer one is cut).
const MAX_LINE: usize = 1024;

pub struct Child {
    /// For log lines: `exec_push "live/cam": ffmpeg`.
    pub what: String,
    spec: Spec,
    pub owner: Owner,
    policy: Policy,
    state: State,
    /// A stop was asked (the child goes when it is known to run).
    stop: bool,
    pub pid: i32,
    /// When it last started.
    pub since: u64,
    pub starts: u32,
    failures: u32,
    pub last_exit: Option<Exit>,
    /// The streams its RTMP output goes to (`exec_stall_timeout`).
    outputs: Vec<StreamKey>,
    /// Output not yet a whole line; the last line; lines logged and left out this window.
    partial: Vec<u8>,
    last_line: String,
    window: (u64, u32, u32),
}

#[derive(Default)]
pub struct Children {
    next: ChildId,
    pub map: BTreeMap<ChildId, Child>,
}

/// The variables of a command (`$name`...), by name.
pub type Vars = Vec<(&'static str, String)>;

impl App {
    /// Starts `commands` (those that apply to stream `name`) for `owner`.
    pub(super) fn exec(&mut self, label: &str, commands: &[Command], owner: Owner, vars: &Vars, now: &Now) {
        let Some(policy) = self.conf.exec_static_policy else { return };
        let policy = match owner {
            Owner::Push(sid) | Owner::Pull(sid) => self
                .streams
                .get(sid)
                .and_then(|s| self.conf.app(s.key.server, s.app))
                .map_or(policy, |a| a.exec.policy()),
            Owner::Static => policy,
            Owner::Once => Policy { respawn: None, ..policy },
        };
        let name = vars.iter().find(|(k, _)| *k == "name").map_or("", |(_, v)| v.as_str());
        let var = |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        for c in commands.iter().filter(|c| c.applies_to(name)) {
            let what = if name.is_empty() { label.to_owned() } else { format!("{label} \"{name}\"") };
            match c.expand(&var) {
                Ok(spec) => self.start_child(what, spec, owner, policy, now),
                Err(e) => self.log(None, Level::Err, format!("{what}: {e}; not started")),
            }
        }
    }

    /// Starts a child running `spec` (`what`: for log lines, before the program's name).
    pub(super) fn start_child(&mut self, what: String, spec: Spec, owner: Owner, policy: Policy, now: &Now) {
        // (By port: the server that takes them; a port none of ours listens on is not ours.)
        let servers = &self.conf.servers;
        let server_on = |port: u16| servers.iter().position(|s| s.listens.iter().any(|l| l.addr.port() == port));
        let outputs = Command::outputs(&spec).into_iter().filter_map(|(port, app, name)| Some(StreamKey { server: server_on(port)?, app, name })).collect();
        let what = format!("{what}: {}", spec.argv[0].rsplit('/').next().unwrap_or(""));
        let id = self.children.next;
        self.children.next += 1;
        let child = Child {
            what,
            spec: spec.clone(),
            owner,
            policy,
            state: State::Spawning,
            stop: false,
            pid: 0,
            since: now.ms,
            starts: 0,
            failures: 0,
            last_exit: None,
            outputs,
            partial: Vec::new(),
            last_line: String::new(),
            window: (now.ms, 0, 0),
        };
        self.children.map.insert(id, child);
        self.effects.push_back(Effect::Spawn(id, Box::new(spec)));
    }

    /// Stops the supervised children of `owner` (its stream ended, its last player left).
    pub(super) fn exec_stop(&mut self, owner: Owner, now: &Now) {
        let ids: Vec<ChildId> = self.children.map.iter().filter(|(_, c)| c.owner == owner).map(|(&id, _)| id).collect();
        for id in ids {
            self.stop_child(id, now);
        }
    }

    fn stop_child(&mut self, id: ChildId, now: &Now) {
        let Some(c) = self.children.map.get_mut(&id) else { return };
        c.stop = true;
        match c.state {
            State::Waiting(_) => {
                self.children.map.remove(&id);
            }
            State::Running => {
                c.state = State::Stopping(now.ms);
                let (pid, signal) = (c.pid, c.policy.kill_signal);
                self.signal_stop(pid, signal);
            }
            State::Spawning | State::Stopping(_) => {}
        }
    }

    /// The glue started child `id` (`Ok(pid)`) or could not.
    pub fn spawned(&mut self, id: ChildId, outcome: Result<i32, String>, now: &Now) {
        let Some(c) = self.children.map.get_mut(&id) else { return };
        match outcome {
            Ok(pid) => {
                c.pid = pid;
                c.since = now.ms;
                c.starts += 1;
                c.state = State::Running;
                let msg = format!("{} started (pid {pid})", c.what);
                let stop = c.stop;
                self.log(None, Level::Info, msg);
                if stop {
                    self.stop_child(id, now);
                }
            }
            Err(e) => {
                let msg = format!("{}: cannot start: {e}", c.what);
                self.log(None, Level::Err, msg);
                self.ended(id, None, now);
            }
        }
    }

    /// What child `id` wrote to its standard output or error.
    pub fn child_output(&mut self, id: ChildId, bytes: &[u8], now: &Now) {
        let Some(c) = self.children.map.get_mut(&id) else { return };
        let mut lines = Vec::new();
        for &b in bytes {
            if b == b'\n' || b == b'\r' {
                if !c.partial.is_empty() {
                    lines.push(std::mem::take(&mut c.partial));
                }
            } else if c.partial.len() < MAX_LINE {
                c.partial.push(b);
            }
        }
        let mut out = Vec::new();
        for l in lines {
            let line = String::from_utf8_lossy(&l).trim().to_owned();
            if line.is_empty() {
                continue;
            }
            if now.ms >= c.window.0 + WINDOW_MS {
                if c.window.2 > 0 {
                    out.push(format!("{}: {} more lines of output not logged", c.what, c.window.2));
                }
                c.window = (now.ms, 0, 0);
            }
            if c.window.1 < LINES_PER_WINDOW {
                c.window.1 += 1;
                out.push(format!("{}: {line}", c.what));
            } else {
                c.window.2 += 1;
            }
            c.last_line = line;
        }
        for m in out {
            self.log(None, Level::Notice, m);
        }
    }

    /// Child `id` ended.
    pub fn child_exited(&mut self, id: ChildId, exit: Exit, now: &Now) {
        let Some(c) = self.children.map.get_mut(&id) else { return };
        if !c.partial.is_empty() {
            self.child_output(id, b"\n", now);
        }
        self.ended(id, Some(exit), now);
    }

    /// A child is gone (or never started): forgotten, or respawned later.
    fn ended(&mut self, id: ChildId, exit: Option<Exit>, now: &Now) {
        let Some(c) = self.children.map.get_mut(&id) else { return };
        let ran = now.ms.saturating_sub(c.since);
        c.last_exit = exit;
        let how = exit.map_or_else(|| "did not start".to_owned(), |e| format!("(pid {}) {e} after {:.1} s", c.pid, ran as f64 / 1000.0));
        let last = if c.last_line.is_empty() { String::new() } else { format!(" (its last line: {})", c.last_line) };
        if c.stop || c.owner == Owner::Once {
            let level = if c.owner == Owner::Once && exit != Some(Exit::Code(0)) { Level::Warn } else { Level::Info };
            let msg = format!("{} {how}{last}", c.what);
            self.children.map.remove(&id);
            return self.log(None, level, msg);
        }
        let Some(base) = c.policy.respawn else {
            let msg = format!("{} {how}{last}; not respawned (respawn off)", c.what);
            self.children.map.remove(&id);
            return self.log(None, Level::Err, msg);
        };
        if ran >= HEALTHY_MS && exit.is_some() {
            c.failures = 0;
        }
        let delay = if c.failures == 0 { base } else { (base.max(1000) << c.failures.min(6)).min(MAX_RESPAWN_MS.max(base)) };
        c.failures += 1;
        c.state = State::Waiting(now.ms + delay);
        let msg = format!("{} {how}{last}; respawning in {:.1} s", c.what, delay as f64 / 1000.0);
        self.log(None, Level::Err, msg);
    }

    /// Once a second: respawns that are due, SIGKILL for children that outlived their
    /// grace, restarts of stalled ones.
    pub(super) fn exec_tick(&mut self, now: &Now) {
        let mut respawn = Vec::new();
        let mut kill = Vec::new();
        let mut stalled = Vec::new();
        for (&id, c) in &self.children.map {
            match c.state {
                State::Waiting(at) if now.ms >= at => respawn.push(id),
                State::Stopping(since) if now.ms >= since + KILL_GRACE_MS => kill.push(id),
                State::Running if !c.stop => {
                    if let (Some(limit), Owner::Push(sid)) = (c.policy.stall, c.owner) {
                        if self.stalled(c, sid, limit, now) {
                            stalled.push(id);
                        }
                    }
                }
                _ => {}
            }
        }
        for id in respawn {
            let c = self.children.map.get_mut(&id).expect("listed");
            c.state = State::Spawning;
            c.last_line.clear();
            let spec = c.spec.clone();
            self.effects.push_back(Effect::Spawn(id, Box::new(spec)));
        }
        for id in kill {
            let c = self.children.map.get_mut(&id).expect("listed");
            c.state = State::Stopping(u64::MAX - KILL_GRACE_MS);
            let (pid, what) = (c.pid, c.what.clone());
            self.log(None, Level::Warn, format!("{what} (pid {pid}) did not stop in {KILL_GRACE_MS} ms: SIGKILL"));
            self.effects.push_back(Effect::Signal { pid, signal: 9 });
        }
        for id in stalled {
            let c = self.children.map.get_mut(&id).expect("listed");
            let (pid, signal, what) = (c.pid, c.policy.kill_signal, c.what.clone());
            let limit = c.policy.stall.unwrap_or(0);
            // Stopping, but not for good: it respawns when it has gone.
            c.state = State::Stopping(now.ms);
            self.log(None, Level::Err, format!("{what} (pid {pid}): its output has had no media for {limit} ms while its source had: restarting it"));
            self.signal_stop(pid, signal);
        }
    }

    /// Whether child `c` of stream `sid` is hung: it has run `limit`, the stream's source
    /// sent media within `limit`, and none of the streams it publishes did.
    fn stalled(&self, c: &Child, sid: StreamId, limit: u64, now: &Now) -> bool {
        if c.outputs.is_empty() || now.ms < c.since + limit {
            return false;
        }
        let recent = |id: Option<ClientId>| id.and_then(|id| self.clients.get(id)).is_some_and(|p| now.ms < p.last_media + limit);
        let source = self.streams.get(sid).and_then(|s| s.source);
        if !recent(source) {
            return false;
        }
        !c.outputs.iter().any(|k| recent(self.publisher(k)))
    }

    /// `exec_kill_signal`, then SIGCONT: a stopped child (SIGSTOP, a debugger let go)
    /// gets it now rather than SIGKILL after the grace.
    fn signal_stop(&mut self, pid: i32, signal: i32) {
        self.effects.push_back(Effect::Signal { pid, signal });
        if signal != 9 {
            self.effects.push_back(Effect::Signal { pid, signal: 18 });
        }
    }

    /// The children, for `/stat`.
    pub(super) fn child_stats(&self, now: u64) -> Vec<crate::stat::Child> {
        self.children
            .map
            .values()
            .map(|c| {
                let running = c.state == State::Running;
                crate::stat::Child {
                    command: c.what.clone(),
                    pid: if running || matches!(c.state, State::Stopping(_)) { c.pid } else { 0 },
                    state: match c.state {
                        State::Waiting(_) => "waiting",
                        State::Spawning => "starting",
                        State::Running => "running",
                        State::Stopping(_) => "stopping",
                    },
                    starts: c.starts,
                    last_exit: c.last_exit.map_or(String::new(), |e| e.to_string()),
                    uptime: if running { now.saturating_sub(c.since) / 1000 } else { 0 },
                }
            })
            .collect()
    }

    /// The pids of running children (for the glue, when the worker exits).
    pub fn child_pids(&self) -> Vec<(i32, i32)> {
        self.children.map.values().filter(|c| c.pid > 0 && matches!(c.state, State::Running | State::Stopping(_))).map(|c| (c.pid, c.policy.kill_signal)).collect()
    }

    /// The variables of a command run for client `id` on stream `name` (nginx-rtmp-module's
    /// session variables, and `$name`, `$args`).
    pub(super) fn exec_vars(&self, id: Option<ClientId>, app: &str, name: &str, args: &str) -> Vars {
        let c = id.and_then(|id| self.clients.get(id));
        let info = c.and_then(|c| c.info.as_deref());
        let text = |f: fn(&crate::rtmp::session::ConnectInfo) -> &str| info.map_or(String::new(), |i| f(i).to_owned());
        vec![
            ("name", name.to_owned()),
            ("args", args.to_owned()),
            ("app", app.to_owned()),
            ("addr", c.map_or(String::new(), |c| c.ip.to_string())),
            ("flashver", text(|i| &i.flash_ver)),
            ("swfurl", text(|i| &i.swf_url)),
            ("tcurl", text(|i| &i.tc_url)),
            ("pageurl", text(|i| &i.page_url)),
        ]
    }

    /// Starts `exec_static` (the first worker only, once).
    pub fn exec_static(&mut self, now: &Now) {
        let lines = self.conf.exec_static.clone();
        self.exec("exec_static", &lines, Owner::Static, &Vec::new(), now);
    }

    /// The worker shuts down: its static children stop (the new workers run their own).
    pub(super) fn exec_shutdown(&mut self, now: &Now) {
        self.exec_stop(Owner::Static, now);
    }
}
