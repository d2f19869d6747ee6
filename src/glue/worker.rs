//! The worker's application (`crate::app::App`) in nginx's event loop: every handler of
//! a client's connection, timer or callback gives the application its input, then does
//! what it asks (`drain`: close connections, arm timers, make calls, connect relays, log)
//! and, at the end of the turn, writes what it has for its clients (`flush_all`): sixteen
//! to a system call through io_uring (`uring.rs`), or a `writev` each where io_uring is
//! refused. Nothing here decides anything about streams; no handler re-enters another.

use core::cell::RefCell;
use core::mem::MaybeUninit;
use std::io::IoSlice;
use std::panic::{catch_unwind, AssertUnwindSafe};

use ngx::ffi::{
    ngx_add_timer, ngx_connection_t, ngx_event_t, ngx_post_event, ngx_posted_events, NGX_LOG_ALERT, NGX_LOG_ERR,
    NGX_LOG_INFO, NGX_LOG_NOTICE, NGX_LOG_WARN, NGX_OK,
};

use super::clock::now;
use super::conf::{rtmp_conf, RtmpConf};
use super::conn::{Conn, Handlers, Recv, Tick};
use super::{files, notify, relay, resolve, shared, spawn, tls, uring};
use crate::app::{self, App, ClientId, Effect, Level, Shutdown};

macro_rules! log {
    ($level:expr, $log:expr, $($arg:tt)+) => {{
        ngx::ngx_log_error!($level, $log, $($arg)+);
    }};
}

/// Room made in a publisher's input buffer before each receive: while its input is read
/// in batches, and while it is read as it comes (the buffer settles at once or twice
/// this and is then reused).
const RECV_ROOM_BATCHED: usize = 64 * 1024;
const RECV_ROOM: usize = 16 * 1024;

/// Bytes read from one client per turn of the event loop.
const READ_BUDGET: usize = 256 * 1024;

/// `merge_reads`: a publisher's socket only wakes the worker once this much is waiting
/// (a quarter of its receive buffer at most when `listen ... rcvbuf=` fixes that size;
/// otherwise Linux grows the buffer to twice the mark), so a fast publisher is never held
/// up by a full buffer; the batch timer reads whatever came meanwhile.
const BATCH_LOWAT: i32 = 256 * 1024;

pub const HANDLERS: Handlers = Handlers { read: on_read, write: on_write, timer: on_timer };

/// The clients' connections, by client id (slot and generation, as the application's).
#[derive(Default)]
struct Conns {
    slots: Vec<(ClientId, *mut ngx_connection_t)>,
}

impl Conns {
    fn insert(&mut self, id: ClientId, c: *mut ngx_connection_t) {
        let i = id as u32 as usize;
        if self.slots.len() <= i {
            self.slots.resize(i + 1, (0, core::ptr::null_mut()));
        }
        self.slots[i] = (id, c);
    }

    fn get(&self, id: ClientId) -> Option<*mut ngx_connection_t> {
        self.slots.get(id as u32 as usize).filter(|(i, c)| *i == id && !c.is_null()).map(|(_, c)| *c)
    }

    fn remove(&mut self, id: ClientId) -> Option<*mut ngx_connection_t> {
        let c = self.get(id)?;
        self.slots[id as u32 as usize] = (0, core::ptr::null_mut());
        Some(c)
    }
}

pub struct Worker {
    pub app: App,
    conns: Conns,
    rc: &'static RtmpConf,
    /// The configuration generation this worker started in (`shared.rs`).
    generation: u64,
    batch: uring::Batch,
    /// Reused from turn to turn: the clients to write, a batch's writes (and how much
    /// each is), their outcomes, one client's buffers.
    ready: Vec<ClientId>,
    writing: Vec<(ClientId, usize)>,
    outcomes: Vec<uring::Wrote>,
    bufs: Vec<&'static [u8]>,
    /// The `exec*` children's processes.
    pub procs: spawn::Procs,
}

thread_local! {
    static WORKER: RefCell<Option<Worker>> = const { RefCell::new(None) };
}

/// Runs `f` with the worker's state (None before `init_process`, or without `rtmp {}`).
pub fn with<R>(f: impl FnOnce(&mut Worker) -> R) -> Option<R> {
    WORKER.with(|w| w.try_borrow_mut().ok().and_then(|mut w| w.as_mut().map(f)))
}

/// Runs a handler's body; a panic is logged (and, for a client, closes that client).
fn guarded(log: *mut ngx::ffi::ngx_log_t, client: Option<ClientId>, f: impl FnOnce(&mut Worker)) {
    let r = catch_unwind(AssertUnwindSafe(|| with(f)));
    if r.is_err() {
        // SAFETY: a log nginx gave us, or the cycle's.
        log!(NGX_LOG_ALERT, log, "ngx-rtmp-rs: internal error (panic), closing client");
        if let Some(id) = client {
            let _ = catch_unwind(AssertUnwindSafe(|| {
                with(|w| {
                    w.app.close(id, &now());
                    w.drain();
                })
            }));
        }
    }
}

static mut FLUSH_ALL: MaybeUninit<ngx_event_t> = MaybeUninit::zeroed();
static mut MERGE: MaybeUninit<ngx_event_t> = MaybeUninit::zeroed();
static mut TICK: MaybeUninit<ngx_event_t> = MaybeUninit::zeroed();

fn event(e: *mut MaybeUninit<ngx_event_t>) -> *mut ngx_event_t {
    e.cast()
}

/// A worker starts: its application, its 1 s tick, the write and merge events.
pub unsafe extern "C" fn init_process(cycle: *mut ngx::ffi::ngx_cycle_t) -> ngx::ffi::ngx_int_t {
    let Some(rc) = rtmp_conf() else { return NGX_OK as ngx::ffi::ngx_int_t };
    let generation = if rc.shared_zone.is_null() { 0 } else { shared::generation(rc.shared_zone) };
    let mut app = App::new(rc.resolved.clone(), Box::new(files::Disk), &now());
    if !rc.shared_zone.is_null() {
        app.set_workers(Box::new(super::peer::Shm::new(rc)));
    }
    WORKER.with(|w| {
        *w.borrow_mut() = Some(Worker {
            app,
            conns: Conns::default(),
            rc,
            generation,
            batch: uring::Batch::default(),
            ready: Vec::new(),
            writing: Vec::new(),
            outcomes: Vec::new(),
            bufs: Vec::new(),
            procs: spawn::Procs::default(),
        })
    });
    for (e, handler) in [(&raw mut FLUSH_ALL, on_flush_all as unsafe extern "C" fn(*mut ngx_event_t)), (&raw mut MERGE, on_merge), (&raw mut TICK, on_tick)] {
        let ev = event(e);
        (*ev).handler = Some(handler);
        (*ev).log = (*cycle).log;
        (*ev).set_cancelable(1);
    }
    ngx_add_timer(event(&raw mut TICK), app::write::grid_delay(now().ms, 1000) as _);
    super::sweep::init_process(cycle, rc);
    if ngx::ffi::ngx_process as u32 == ngx::ffi::NGX_PROCESS_WORKER {
        super::peer::init_process(cycle, rc);
        if !rc.shared_zone.is_null() {
            super::peer_control::init_process(cycle, rc);
        }
    }
    // `exec_static`: once per nginx, by its first worker.
    if ngx::ffi::ngx_process as u32 == ngx::ffi::NGX_PROCESS_WORKER && ngx::ffi::ngx_worker == 0 {
        guarded((*cycle).log, None, |w| {
            w.app.exec_static(&now());
            w.drain();
        });
    }
    NGX_OK as ngx::ffi::ngx_int_t
}

/// Runs a child's event handler (`spawn.rs`), then what the application asks.
pub fn guarded_child(f: impl FnOnce(&mut Worker)) {
    guarded(Worker::cycle_log(), None, |w| {
        f(w);
        w.drain();
    });
}

pub unsafe extern "C" fn exit_process(_cycle: *mut ngx::ffi::ngx_cycle_t) {
    uring::close();
    // Children still running get exec_kill_signal, then SIGKILL; none is left behind.
    with(|w| {
        let pids = w.app.child_pids();
        w.procs.exit(&pids, 2000);
    });
    // (A worker of the newest configuration that ends tells the older ones still
    // finishing that nginx quits; not nginx's cache loader, which ends on its own.)
    if ngx::ffi::ngx_process as u32 != ngx::ffi::NGX_PROCESS_WORKER {
        return;
    }
    if let Some(rc) = rtmp_conf() {
        super::peer::exit_process(rc);
        super::peer_control::exit_process();
    }
    with(|w| {
        if !w.rc.shared_zone.is_null() {
            shared::quitting(w.rc.shared_zone, w.generation);
        }
    });
}

unsafe extern "C" fn on_read(rev: *mut ngx_event_t) {
    let Some(conn) = Conn::of_event(rev) else { return };
    let (id, log) = (conn.id, conn.log());
    guarded(log, Some(id), |w| {
        w.read(id);
        w.drain();
    });
}

unsafe extern "C" fn on_write(wev: *mut ngx_event_t) {
    let Some(conn) = Conn::of_event(wev) else { return };
    let (id, log) = (conn.id, conn.log());
    guarded(log, Some(id), |w| {
        if conn.write_timed_out() {
            log!(NGX_LOG_INFO, log, "client timed out while sending");
            w.app.close(id, &now());
        } else if conn.connecting && conn.tls.is_some() {
            // (The relay's connection is made: TLS first.)
            w.start_tls(id);
        } else {
            conn.connecting = false;
            w.write_one(id);
        }
        w.drain();
    });
}

/// nginx's TLS layer is done with a relay's handshake.
unsafe extern "C" fn on_tls_done(c: *mut ngx::ffi::ngx_connection_t) {
    let Some(conn) = Conn::of(c) else { return };
    let (id, log) = (conn.id, conn.log());
    guarded(log, Some(id), |w| {
        w.tls_done(id);
        w.drain();
    });
}

unsafe extern "C" fn on_timer(ev: *mut ngx_event_t) {
    let Some(conn) = Conn::of_event(ev) else { return };
    let (id, log) = (conn.id, conn.log());
    let Some(tick) = conn.tick_of(ev) else { return };
    guarded(log, Some(id), |w| {
        match tick {
            Tick::App(t) => w.app.timer(id, t, &now()),
            Tick::Batch => w.batch_read(id),
        }
        w.drain();
    });
}

unsafe extern "C" fn on_flush_all(ev: *mut ngx_event_t) {
    guarded((*ev).log, None, |w| w.flush_all());
}

unsafe extern "C" fn on_merge(ev: *mut ngx_event_t) {
    guarded((*ev).log, None, |w| {
        w.app.wake(&now());
        w.drain();
    });
}

/// Once a second: rates, idle pulls, and while the worker shuts down (reload or quit),
/// its clients (see `App::tick`).
unsafe extern "C" fn on_tick(ev: *mut ngx_event_t) {
    guarded((*ev).log, None, |w| {
        let shutdown = (ngx::ffi::ngx_exiting != 0).then(|| {
            if !w.rc.shared_zone.is_null() && shared::quitting(w.rc.shared_zone, w.generation) {
                Shutdown::Quit
            } else {
                Shutdown::Reload
            }
        });
        let now = now();
        w.app.tick(&now, shutdown);
        w.drain();
        // (For /stat answered by another worker; a worker alone writes nothing.)
        if super::peer::has_others(w.rc) {
            super::peer::write_snapshot(w.rc, &snapshot_of(w));
        }
        ngx_add_timer(ev, app::write::grid_delay(now.ms, 1000) as _);
    });
}

fn level(l: Level) -> usize {
    (match l {
        Level::Alert => NGX_LOG_ALERT,
        Level::Err => NGX_LOG_ERR,
        Level::Warn => NGX_LOG_WARN,
        Level::Notice => NGX_LOG_NOTICE,
        Level::Info => NGX_LOG_INFO,
    }) as usize
}

impl Worker {
    fn conn(&self, id: ClientId) -> Option<&'static mut Conn> {
        // SAFETY: the table holds open connections only (removed when closed).
        self.conns.get(id).and_then(|c| unsafe { Conn::of(c) })
    }

    /// Registers a client's connection.
    pub fn attach(&mut self, id: ClientId, c: *mut ngx_connection_t) {
        self.conns.insert(id, c);
    }

    fn cycle_log() -> *mut ngx::ffi::ngx_log_t {
        // SAFETY: the cycle lives as long as the worker.
        unsafe { (*ngx::ffi::ngx_cycle).log }
    }

    /// Does what the application asks, until it asks for nothing more; then has what is
    /// ready written at the end of this turn.
    pub fn drain(&mut self) {
        while let Some(e) = self.app.poll_effect() {
            self.effect(e);
        }
        if self.app.has_ready() {
            let ev = event(&raw mut FLUSH_ALL);
            // SAFETY: the worker's own event.
            unsafe {
                if (*ev).posted() == 0 {
                    ngx_post_event(ev, &raw mut ngx_posted_events);
                }
            }
        }
    }

    fn effect(&mut self, e: Effect) {
        match e {
            Effect::Log { client, level: l, msg } => {
                let log = client.and_then(|id| self.conn(id)).map_or_else(Worker::cycle_log, |c| c.log());
                // SAFETY: a connection's log, or the cycle's.
                log!(level(l), log, "{msg}");
            }
            Effect::AccessLog { file, line } => {
                let log = Worker::cycle_log();
                super::access_log::write(file, &line, log);
            }
            Effect::Drop(id) => {
                if let (Some(conn), Some(_)) = (self.conn(id), self.conns.remove(id)) {
                    // SAFETY: the client is gone; nothing uses its Conn after this.
                    unsafe { conn.close() };
                }
            }
            Effect::Timer(id, t, ms) => {
                if let Some(conn) = self.conn(id) {
                    conn.arm(Tick::App(t), ms);
                }
            }
            Effect::Deadline(id, ms) => {
                if let Some(conn) = self.conn(id) {
                    conn.set_deadline(ms);
                }
            }
            Effect::Expect(id, ms) => {
                if let Some(conn) = self.conn(id) {
                    conn.expect_within(ms);
                }
            }
            Effect::Pace(id, ms) => self.pace(id, ms),
            Effect::ReadNow(id) => {
                if let Some(conn) = self.conn(id) {
                    conn.mark_readable();
                    self.read(id);
                }
            }
            Effect::Resume(id) => {
                if let Some(conn) = self.conn(id) {
                    conn.post_read();
                }
            }
            Effect::Proceed(id) => self.app.proceed(id, &now()),
            Effect::Call(call) => self.call(*call),
            Effect::Connect(id, to) => self.connect(id, *to),
            Effect::Peer(id, text) => {
                if let Some(conn) = self.conn(id) {
                    conn.set_addr_text(&text);
                }
            }
            Effect::Spawn(id, spec) => {
                let outcome = self.procs.start(id, &spec);
                self.app.spawned(id, outcome, &now());
            }
            Effect::Signal { pid, signal } => spawn::Procs::signal(pid, signal),
            Effect::Wake(at) => {
                let ev = event(&raw mut MERGE);
                let now = now().ms;
                // SAFETY: the worker's own event.
                unsafe {
                    let deadline = ngx::ffi::ngx_current_msec.wrapping_add(at.saturating_sub(now) as _);
                    if (*ev).timer_set() == 0 || (*ev).timer.key > deadline {
                        ngx_add_timer(ev, at.saturating_sub(now).max(1) as _);
                    }
                }
            }
        }
    }

    /// Makes an HTTP callback; its outcome goes back to the application.
    fn call(&mut self, call: app::Call) {
        let target = match call.target {
            app::Target::Addr(a) => notify::Target::Addr(a),
            // (Callbacks go to URLs: never to a Unix socket.)
            app::Target::Unix(_) => return,
            app::Target::Name { server, host, port } => {
                let resolver = self.rc.server_resolvers.get(server).copied().unwrap_or(core::ptr::null_mut());
                notify::Target::Name { resolver, host, port }
            }
        };
        let id = call.id;
        let done: notify::Done = Box::new(move |outcome| {
            with(|w| {
                w.app.call_done(id, outcome, &now());
                w.drain();
            });
        });
        // SAFETY: starts a call in nginx's event loop; its outcome comes from a posted event.
        unsafe { notify::start(target, &call.url, call.request, call.timeout, call.limit, call.tls, call.download, done) };
    }

    /// Opens a relay's connection, its host name first asked of the server's resolver.
    fn connect(&mut self, id: ClientId, to: app::Connect) {
        let Some(server) = self.app.client(id).map(|c| c.server) else { return };
        match to.target {
            app::Target::Addr(addr) => self.open_relay(id, &to, notify::Dest::Ip(addr), server),
            app::Target::Unix(ref path) => {
                let path = path.clone();
                self.open_relay(id, &to, notify::Dest::Unix(&path), server)
            }
            app::Target::Name { ref host, port, .. } => {
                let resolver = self.rc.server_resolvers.get(server).copied().unwrap_or(core::ptr::null_mut());
                let timeout = self.app.conf().servers[server].core.timeout;
                let host = host.clone();
                let answered = move |a: Result<std::net::SocketAddr, String>| {
                    with(|w| {
                        // (The relay may have ended meanwhile.)
                        if w.app.exists(id) {
                            match a {
                                Ok(addr) => w.open_relay(id, &to, notify::Dest::Ip(addr), server),
                                Err(why) => {
                                    // SAFETY: the cycle's log.
                                    log!(NGX_LOG_ERR, Worker::cycle_log(), "relay to {}: {why}", to.url);
                                    w.app.relay_failed(id, why, &now());
                                }
                            }
                        }
                        w.drain();
                    });
                };
                // SAFETY: asks nginx's resolver from its event loop; the answer comes from a
                // posted event.
                unsafe { resolve::name(resolver, host, port, timeout, Box::new(answered)) };
            }
        }
    }

    fn open_relay(&mut self, id: ClientId, to: &app::Connect, addr: notify::Dest, server: usize) {
        let timeout = self.app.conf().servers[server].core.timeout;
        // SAFETY: opens a connection with nginx's peer machinery.
        match unsafe { relay::open(to, addr, server) } {
            Ok((c, connected)) => {
                // SAFETY: a fresh connection of ours, without data.
                let conn = unsafe { Conn::attach(c, id, timeout, &HANDLERS, core::ptr::null_mut()) };
                self.conns.insert(id, c);
                let ip = match addr {
                    notify::Dest::Ip(a) => Some(a),
                    notify::Dest::Unix(_) => None,
                };
                self.app.relay_opened(id, conn.number(), ip);
                conn.expect_input();
                // (Connected at once, on loopback: written with the others; else once the
                // connection is made, which the write event says. An rtmps:// relay
                // writes once its TLS handshake is done.)
                conn.connecting = !connected;
                if let Some((name, verify)) = &to.tls {
                    conn.tls = Some(Box::new((name.clone(), *verify)));
                    conn.connecting = true;
                    if connected {
                        self.start_tls(id);
                    }
                }
            }
            Err(why) => {
                // SAFETY: the cycle's log.
                log!(NGX_LOG_ERR, Worker::cycle_log(), "relay to {}: {why}", to.url);
                self.app.relay_failed(id, why, &now());
            }
        }
    }

    /// A relay's connection is made: its TLS handshake starts.
    fn start_tls(&mut self, id: ClientId) {
        let Some(conn) = self.conn(id) else { return };
        let Some(ssl) = rtmp_conf().and_then(|rc| rc.relay_ssl) else {
            return self.app.relay_failed(id, "no TLS context".into(), &now());
        };
        match conn.start_tls(ssl, on_tls_done) {
            tls::Handshake::Again => {}
            tls::Handshake::Done => self.tls_done(id),
            tls::Handshake::Failed(why) => {
                // SAFETY: the connection's log.
                log!(NGX_LOG_ERR, conn.log(), "relay: {why}");
                self.app.relay_failed(id, why, &now());
            }
        }
    }

    /// A relay's TLS handshake is over: checked, it writes what waits (C0 C1).
    fn tls_done(&mut self, id: ClientId) {
        let Some(conn) = self.conn(id) else { return };
        match conn.tls_done(&HANDLERS) {
            Ok(()) => {
                conn.connecting = false;
                conn.expect_input();
                self.write_one(id);
            }
            Err(why) => {
                // SAFETY: the connection's log.
                log!(NGX_LOG_ERR, conn.log(), "relay: {why}");
                self.app.relay_failed(id, why, &now());
            }
        }
    }

    /// Reads a client's input: into its session, as much as it sends (a fair share per
    /// turn), while the application wants it.
    fn read(&mut self, id: ClientId) {
        let Some(conn) = self.conn(id) else { return };
        let now = now();
        if conn.read_timed_out() {
            if self.app.waiting(id) {
                // The client waits for a callback, not the other way round.
                conn.expect_input();
                return;
            }
            if conn.past_deadline() {
                // SAFETY: the connection's log.
                log!(NGX_LOG_INFO, conn.log(), "handshake and connect not done in time (handshake_timeout), closing");
            } else {
                // SAFETY: the connection's log.
                log!(NGX_LOG_INFO, conn.log(), "client timed out");
            }
            self.app.fault(crate::stat::Fault::Timeout);
            return self.app.close(id, &now);
        }
        if !self.app.wants_input(id) {
            // What the client sends meanwhile stays in the socket.
            return;
        }
        // Not zeroed: recv fills the front and only that is read. Small: only the
        // handshake, players' few bytes and relays come through it.
        let mut buf = [MaybeUninit::<u8>::uninit(); 16 * 1024];
        let mut budget = READ_BUDGET;
        let seed = conn.number() ^ (now.ms << 20);
        loop {
            if budget == 0 {
                conn.post_read();
                break;
            }
            let room = if self.app.pace(id) > 0 { RECV_ROOM_BATCHED } else { RECV_ROOM };
            // A publisher's input goes straight into the buffer its chunks are parsed
            // from (no copy); the handshake, players and relays go through `buf`.
            let (got, direct) = match self.app.input(id, room) {
                Some(b) => {
                    let r = conn.recv(b.spare_capacity_mut());
                    if let Recv::Data(n) = r {
                        // SAFETY: recv wrote these n bytes of the spare capacity.
                        unsafe { b.set_len(b.len() + n) };
                    }
                    (r, true)
                }
                None => (conn.recv(&mut buf), false),
            };
            let n = match got {
                Recv::Again => break,
                Recv::Closed => {
                    // SAFETY: the connection's log.
                    log!(NGX_LOG_INFO, conn.log(), "client closed connection");
                    return self.app.close(id, &now);
                }
                // (nginx logged why.)
                Recv::Failed => return self.app.close(id, &now),
                Recv::Data(n) => n,
            };
            budget = budget.saturating_sub(n);
            conn.expect_input();
            if direct {
                self.app.received_in_place(id, n, &now);
            } else {
                // SAFETY: recv wrote these n bytes of `buf`.
                let data = unsafe { core::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n) };
                self.app.received(id, data, seed, &now);
            }
            if !self.app.wants_input(id) {
                break;
            }
        }
        if self.app.exists(id) && !conn.wait_readable() {
            self.app.close(id, &now);
        }
    }

    /// `merge_reads`: the batch timer; what the batch brings is written at once.
    fn batch_read(&mut self, id: ClientId) {
        let Some(conn) = self.conn(id) else { return };
        conn.mark_readable();
        self.app.batch(true);
        self.read(id);
        self.app.batch(false);
        let pace = self.app.pace(id);
        if pace > 0 {
            if let Some(conn) = self.conn(id) {
                conn.arm(Tick::Batch, app::write::grid_delay(now().ms, pace));
            }
        }
    }

    /// Reads a client in batches every `ms` (on the worker's grid), or as it comes (0).
    fn pace(&mut self, id: ClientId, ms: u64) {
        let Some(conn) = self.conn(id) else { return };
        conn.disarm(Tick::Batch);
        if ms > 0 {
            if !conn.lowat {
                let rcvbuf = conn.rcvbuf();
                let lowat = if rcvbuf > 0 { BATCH_LOWAT.min(rcvbuf / 4).max(1) } else { BATCH_LOWAT };
                if !conn.set_rcvlowat(lowat) {
                    return;
                }
                conn.lowat = true;
            }
            // (On the worker's grid: batched reads of every publisher on this pace fall
            // due together.)
            conn.arm(Tick::Batch, app::write::grid_delay(now().ms, ms));
        } else {
            conn.lowat = false;
            conn.set_rcvlowat(1);
            conn.mark_readable();
            conn.post_read();
        }
    }

    /// Writes a client's output with `writev` until it is all written or the socket is full.
    fn write_one(&mut self, id: ClientId) {
        let now = now();
        let mut slices: Vec<IoSlice<'static>> = Vec::with_capacity(crate::app::IOV_PER_WRITE);
        loop {
            let Some(conn) = self.conn(id) else { return };
            if conn.connecting {
                return;
            }
            slices.clear();
            self.app.pending(id, &mut |b| {
                // SAFETY: the application keeps these buffers as they are until `written`
                // (nothing else runs in between); the 'static never leaves this loop.
                slices.push(IoSlice::new(unsafe { &*(b as *const [u8]) }));
                true
            });
            if slices.is_empty() {
                let r = self.app.written(id, 0, &now);
                if r == app::Written::Done && !conn.flushed(true) {
                    self.app.close(id, &now);
                }
                return;
            }
            let wrote = if conn.is_tls() { conn.send_tls(&slices) } else { conn.writev(&slices) };
            match wrote {
                Ok(n) => {
                    slices.clear();
                    match self.app.written(id, n, &now) {
                        app::Written::More => continue,
                        app::Written::Done => {
                            if !conn.flushed(true) {
                                self.app.close(id, &now);
                            }
                            return;
                        }
                        app::Written::Closed => return,
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    slices.clear();
                    conn.write_blocked();
                    if !conn.flushed(false) {
                        self.app.close(id, &now);
                    }
                    return;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    slices.clear();
                    // SAFETY: the connection's log.
                    log!(NGX_LOG_INFO, conn.log(), "send failed: {e}");
                    return self.app.close(id, &now);
                }
            }
        }
    }

    /// Writes every ready client, a few to a system call.
    fn flush_all(&mut self) {
        let now = now();
        let mut ids = std::mem::take(&mut self.ready);
        ids.clear();
        self.app.take_ready(&mut ids, &now);
        // (Players dropped as too slow are closed first.)
        while let Some(e) = self.app.poll_effect() {
            self.effect(e);
        }
        let cap = uring::capacity_or_open(|e| {
            let e = std::io::Error::from_raw_os_error(e);
            // SAFETY: the cycle's log.
            log!(NGX_LOG_NOTICE, Worker::cycle_log(), "io_uring unavailable ({e}): each player is written with its own writev");
        });
        if cap == 0 {
            for &id in &ids {
                self.write_one(id);
            }
        } else {
            self.write_batches(&ids, cap, &now);
        }
        self.ready = ids;
        self.drain();
    }

    fn write_batches(&mut self, ids: &[ClientId], cap: usize, now: &app::Now) {
        let mut writing = std::mem::take(&mut self.writing);
        let mut bufs = std::mem::take(&mut self.bufs);
        let mut outcomes = std::mem::take(&mut self.outcomes);
        let mut tls_ids = Vec::new();
        for group in ids.chunks(cap) {
            writing.clear();
            self.batch.clear();
            for &id in group {
                let Some(conn) = self.conn(id) else { continue };
                if conn.connecting {
                    continue;
                }
                if conn.is_tls() {
                    // (Through nginx's TLS layer, not a plain sendmsg.)
                    tls_ids.push(id);
                    continue;
                }
                bufs.clear();
                let mut total = 0;
                self.app.pending(id, &mut |b| {
                    total += b.len();
                    // SAFETY: as in `write_one`: unchanged until `written`, after the batch.
                    bufs.push(unsafe { &*(b as *const [u8]) });
                    true
                });
                if bufs.is_empty() {
                    if self.app.written(id, 0, now) == app::Written::Done && !conn.flushed(true) {
                        self.app.close(id, now);
                    }
                    continue;
                }
                // SAFETY: the buffers stay alive and unchanged until `submit` returns (no
                // call of the application changes them before `written`).
                unsafe { self.batch.push(conn.fd(), bufs.drain(..)) };
                writing.push((id, total));
            }
            if writing.is_empty() {
                continue;
            }
            outcomes.clear();
            outcomes.extend(self.batch.submit());
            self.batch.clear();
            if uring::capacity() == 0 {
                // SAFETY: the cycle's log.
                log!(NGX_LOG_ERR, Worker::cycle_log(), "io_uring failed: each player is written with its own writev from now on");
            }
            for (&(id, total), &outcome) in writing.iter().zip(outcomes.iter().chain(std::iter::repeat(&uring::Wrote::NotMade))) {
                // (An earlier one's outcome may have closed this one.)
                let Some(conn) = self.conn(id) else { continue };
                match outcome {
                    uring::Wrote::Bytes(n) => {
                        conn.count_sent(n);
                        match self.app.written(id, n, now) {
                            app::Written::Closed => {}
                            _ if n < total => {
                                // The socket's buffer is full.
                                conn.write_blocked();
                                if !conn.flushed(false) {
                                    self.app.close(id, now);
                                }
                            }
                            app::Written::Done => {
                                if !conn.flushed(true) {
                                    self.app.close(id, now);
                                }
                            }
                            app::Written::More => self.write_one(id),
                        }
                    }
                    uring::Wrote::Failed(e) => {
                        let e = std::io::Error::from_raw_os_error(e);
                        match e.kind() {
                            std::io::ErrorKind::WouldBlock => {
                                conn.write_blocked();
                                if !conn.flushed(false) {
                                    self.app.close(id, now);
                                }
                            }
                            std::io::ErrorKind::Interrupted => self.write_one(id),
                            _ => {
                                // SAFETY: the connection's log.
                                log!(NGX_LOG_INFO, conn.log(), "send failed: {e}");
                                self.app.close(id, now);
                            }
                        }
                    }
                    uring::Wrote::NotMade => self.write_one(id),
                    uring::Wrote::Unknown => {
                        // SAFETY: the connection's log.
                        log!(NGX_LOG_ERR, conn.log(), "send failed: the batched write's outcome is unknown, closing");
                        self.app.close(id, now);
                    }
                }
            }
        }
        self.writing = writing;
        self.bufs = bufs;
        self.outcomes = outcomes;
        for id in tls_ids {
            self.write_one(id);
        }
    }
}

/// While the worker shuts down: whether nginx quits (no newer workers take over), rather
/// than reloads.
pub fn quitting() -> bool {
    // SAFETY: the module's zone.
    with(|w| !w.rc.shared_zone.is_null() && unsafe { shared::quitting(w.rc.shared_zone, w.generation) }).unwrap_or(true)
}

/// This worker's part of `/stat`.
fn snapshot_of(w: &Worker) -> crate::stat::Snapshot {
    let version = ngx::ffi::NGINX_VERSION.to_str().unwrap_or("");
    w.app.snapshot(&now(), app::SnapshotMeta {
        nginx_version: version.to_owned(),
        compiler: format!("rustc (ngx-rtmp-rs {})", env!("CARGO_PKG_VERSION")),
        built: env!("NGX_RTMP_RS_BUILT").to_owned(),
        pid: std::process::id() as u64,
    })
}

/// What `/stat` shows: every worker's streams and clients (the others' as they said them
/// at their last tick, at most a second ago).
pub fn snapshot() -> Option<crate::stat::Snapshot> {
    let (mine, rc) = with(|w| (snapshot_of(w), w.rc))?;
    Some(crate::stat::merge(mine, super::peer::other_snapshots(rc)))
}

/// `/control`.
pub fn control(section: &str, method: &str, arg: &dyn Fn(&str) -> Option<String>) -> Result<app::Answer, String> {
    with(|w| {
        let r = w.app.control(section, method, arg, &now());
        w.drain();
        r
    })
    .unwrap_or_else(|| Err("there is no rtmp {} block".into()))
}

/// The ladder rendition a WHEP viewer of a stream with B-frames plays (see
/// `App::whep_rendition`).
pub fn whep_rendition(app: &str, name: &str) -> Option<String> {
    with(|w| w.app.whep_rendition(app, name)).flatten()
}

/// An HLS segment of `stream` was served to `viewer` (from the http log phase).
pub fn hls_seen(stream: &str, viewer: u64) {
    with(|w| w.app.hls_seen(stream, viewer, &now()));
}
