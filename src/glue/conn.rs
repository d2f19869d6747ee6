//! RTMP client connections in nginx's event loop. Bytes read from a client go to its
//! `rtmp::Session`; the session's events drive the worker's `live::Hub`; what the hub and
//! sessions produce is queued per connection and written at the end of the event loop's
//! turn, so a burst of frames costs each player one write per turn: everything queued in
//! one `sendmsg`, sixteen players to a system call through io_uring (`uring.rs`), or a
//! `writev` each where io_uring is refused.
//!
//! Nothing here trusts the client: a protocol error closes that client (logged with its
//! address and the reason), a player that cannot keep up is dropped when its queue passes
//! `out_queue`, and no panic crosses into nginx.

use core::ffi::c_void;
use core::ptr;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{IoSlice, Write};
use std::mem::ManuallyDrop;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpStream};
use std::os::fd::FromRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};

use bytes::Bytes;
use ngx::ffi::{
    ngx_add_timer, ngx_close_connection, ngx_connection_t, ngx_current_msec, ngx_del_timer,
    ngx_destroy_pool, ngx_event_t, ngx_handle_read_event, ngx_handle_write_event, ngx_log_t,
    ngx_post_event, ngx_posted_events, u_char, AF_INET, AF_INET6, NGX_AGAIN, NGX_LOG_ALERT,
    NGX_LOG_ERR, NGX_LOG_INFO, NGX_LOG_NOTICE, NGX_OK,
};

use super::block::{Listener, RtmpConf};
use super::record as rec;
use super::{hls, notify, shared, uring};
use crate::conf::access::{self, Action};
use crate::conf::notify::Event as Cb;
use crate::conf::{auto_merge_reads, Application, Live, Meta, MergeReads, ResolvedServer};
use crate::live::{self, ConnId, Frame, Hub, Out, Slab, StreamKey};
use crate::rtmp::message::{self as msg, MediaKind};
use crate::notify::{self as nf, Call, Outcome, Verdict};
use crate::rtmp::session::{self, ConnectInfo, Event, Session};
use crate::stat;

macro_rules! log {
    ($level:expr, $log:expr, $($arg:tt)+) => {
        ngx::ngx_log_error!($level, $log, $($arg)+)
    };
}

/// The worker's live state. Connections own their `Conn` (in `c->data`); the worker maps
/// ids to connections so the hub's output can reach them.
#[derive(Default)]
struct Worker {
    hub: Hub,
    conns: Slab<*mut ngx_connection_t>,
    stats: WorkerStats,
}

/// The worker's totals for `/stat`.
#[derive(Default)]
struct WorkerStats {
    started: u64,
    naccepted: u64,
    bytes_in: u64,
    /// Bytes sent to connections that are closed (open ones count their own).
    bytes_out_closed: u64,
    in_rate: stat::Rate,
    out_rate: stat::Rate,
    hls: stat::HlsViewers,
}

/// What `/stat` says about a stream this connection publishes.
struct Pub {
    msid: u32,
    since: u64,
    bytes: u64,
    audio: u64,
    video: u64,
    rate: stat::Rate,
    audio_rate: stat::Rate,
    video_rate: stat::Rate,
    codec: stat::Codec,
    /// Audio or video came.
    active: bool,
    audio_ts: u32,
    video_ts: u32,
}

thread_local! {
    static WORKER: RefCell<Worker> = RefCell::new(Worker::default());
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Publisher,
    Player,
}

/// What the fan-out path needs of a connection's settings, resolved when it connects, so
/// that queueing a frame for a player touches only the first bytes of its `Conn`.
#[derive(Clone, Copy)]
struct Fanout {
    out_queue: usize,
    /// `buffer` (nginx-rtmp-module's out_buffer): hold live media until this many messages
    /// are queued (`out_cork`), then write them together; 0: never hold.
    cork: usize,
    merge_ms: u64,
    publish_notify: bool,
    play_restart: bool,
    idle_streams: bool,
}

impl Fanout {
    fn new(server: &ResolvedServer, live: Option<&Live>) -> Self {
        let core = &server.core;
        Fanout {
            out_queue: core.out_queue as usize,
            cork: if live.is_some_and(|l| l.buffer > 0) { core.out_cork as usize } else { 0 },
            merge_ms: live.map_or(0, |l| l.merge_writes),
            publish_notify: live.is_some_and(|l| l.publish_notify),
            play_restart: live.is_some_and(|l| l.play_restart),
            idle_streams: live.is_none_or(|l| l.idle_streams),
        }
    }
}

/// Per-connection state, owned by `c->data`. The fields the fan-out path uses come first.
#[repr(C)]
struct Conn {
    /// Bytes queued for the client; `sent` of the front buffer are already written.
    out: VecDeque<Bytes>,
    sent: usize,
    /// How many queued buffers are a start-up burst rather than live output (the burst is
    /// queued first, so these are the next ones written); `out_queue` counts the rest.
    burst: usize,
    fanout: Fanout,
    /// Close once the queue is written (after an error status), or at once (too slow).
    close_after_flush: bool,
    close_now: bool,
    /// In `FLUSH_SOON`: written with the other players' at the end of this turn.
    flush_soon: bool,
    id: ConnId,
    listener: *const Listener,
    session: Session,
    app: Option<usize>,
    /// Streams this connection publishes or plays, by message stream id.
    streams: Vec<(u32, StreamKey, Role)>,
    /// The `max_connections` zone this connection holds a slot in.
    limit_zone: *mut ngx::ffi::ngx_shm_zone_t,
    /// The application's live settings, once connected.
    live: Option<Live>,
    /// When a publisher last sent audio or video (for `drop_idle_publisher`).
    last_media: usize,
    /// HLS output of the streams this connection publishes, by message stream id.
    hls: Vec<(u32, hls::Stream)>,
    /// Timers: pings, idle publisher check, delayed (merged) writes.
    ping: ngx_event_t,
    idle: ngx_event_t,
    merge: ngx_event_t,
    /// `merge_reads`: a publisher's input is read on this timer, every `pace` ms (0: as
    /// it comes, no timer).
    batch: ngx_event_t,
    pace: u64,
    /// What the client said in `connect` (the application renamed if `on_connect` did).
    info: Option<Box<ConnectInfo>>,
    /// A command held until its callback (`on_connect`, `on_publish`, `on_play`) answers;
    /// meanwhile nothing more of this client is read or handled.
    waiting: Option<Waiting>,
    /// What the callbacks of the streams this connection publishes or plays say.
    notes: Vec<Note>,
    /// `on_update`: its timer, and how many of its calls are not answered yet.
    update: ngx_event_t,
    updates_pending: u32,
    /// The timestamp of the last audio, video or data message from the client.
    last_ts: u32,
    /// Recordings of the streams this connection publishes, by message stream id.
    records: Vec<(u32, Vec<Rec>)>,
    /// Bytes read from the client, and the rates `/stat` shows.
    bytes_in: u64,
    in_rate: stat::Rate,
    out_rate: stat::Rate,
    pubs: Vec<Pub>,
    /// Set when this is an outgoing relay connection (ours, to another RTMP server).
    relay: Option<Box<Relay>>,
    /// When this (WHIP) publisher was last asked for a keyframe.
    keyframe_asked: u64,
}

/// A relay: this connection pushes a local stream to another server, or pulls one from it
/// into a local stream.
struct Relay {
    client: crate::rtmp::client::Client,
    mode: crate::rtmp::client::Mode,
    key: StreamKey,
    url: String,
    /// When the pulled stream last had no player (a pull ends 10 s after its last player).
    idle_since: Option<u64>,
}

/// How long a pull relay stays without players.
const PULL_IDLE_MS: u64 = 10_000;

/// One recorder of a published stream.
struct Rec {
    r: crate::record::Recorder<rec::Disk>,
    /// Its place in the application's recorders (for `on_record_done`).
    idx: usize,
    /// The stream name and arguments as the client published them (for the callback).
    name: String,
    args: String,
}

/// A command waiting for its callback's answer.
enum Waiting {
    Connect,
    /// `publish` (role Publisher) or `play` (Player).
    Stream { role: Role, msid: u32, name: String, args: String },
}

/// A stream of this connection as its callbacks see it: the name as the client asked for
/// it (before any rename), its arguments, and when it started.
struct Note {
    msid: u32,
    role: Role,
    name: String,
    args: String,
    since: usize,
}

impl Conn {
    /// The connection's server configuration. Not tied to the borrow of `self`: it lives
    /// in the cycle's configuration, which outlives every connection of its sockets.
    fn server(&self) -> &'static ResolvedServer {
        // SAFETY: see above; nothing changes a resolved configuration once it is parsed.
        unsafe { &*(*self.listener).server }
    }

    fn app(&self) -> Option<&'static Application> {
        self.app.map(|i| &self.server().apps[i])
    }

    fn hub_settings(&self) -> live::Settings {
        let l = self.live.as_ref();
        live::Settings {
            chunk_size: self.server().core.chunk_size as usize,
            gop_cache: l.is_none_or(|l| l.gop_cache),
            wait_video: l.is_some_and(|l| l.wait_video),
            interleave: l.is_some_and(|l| l.interleave),
            opus_audio: self.info.as_ref().is_some_and(|i| i.opus),
            ..live::Settings::default()
        }
    }

    /// Messages queued beyond the start-up burst (what `out_queue` limits).
    fn queued_live(&self) -> usize {
        self.out.len() - self.burst.min(self.out.len())
    }

    /// What one write takes from the queue: the front buffer's unsent part, then whole
    /// buffers, up to `IOV_PER_WRITE` of them.
    fn pending(&self) -> impl Iterator<Item = &[u8]> + Clone {
        let sent = self.sent;
        self.out.iter().take(IOV_PER_WRITE).enumerate().map(move |(i, b)| if i == 0 { &b[sent..] } else { &b[..] })
    }

    /// `n` more bytes of the queue are written.
    fn advance(&mut self, mut n: usize) {
        while n > 0 {
            let Some(front) = self.out.front() else { break };
            let left = front.len() - self.sent;
            if n >= left {
                n -= left;
                self.out.pop_front();
                self.sent = 0;
                self.burst = self.burst.saturating_sub(1);
            } else {
                self.sent += n;
                n = 0;
            }
        }
    }

    fn queue(&mut self, b: Bytes) {
        if !b.is_empty() {
            self.out.push_back(b);
        }
    }

    fn drain_session(&mut self) {
        while let Some(b) = self.session.take_output() {
            // (A relay talks to its server through its client session: what the server
            // session says for it, such as statuses, goes nowhere.)
            if self.relay.is_none() {
                self.queue(b);
            }
        }
        if let Some(r) = self.relay.as_mut() {
            while let Some(b) = r.client.take_output() {
                self.out.push_back(b);
            }
        }
    }
}

impl Conn {
    /// A connection's state before it says anything: the settings of its server, no
    /// application yet.
    unsafe fn new(id: ConnId, listener: *const Listener, session: Session, limit_zone: *mut ngx::ffi::ngx_shm_zone_t) -> Conn {
        let now = ngx_current_msec as u64;
        Conn {
            id,
            listener,
            session,
            out: VecDeque::new(),
            sent: 0,
            burst: 0,
            fanout: Fanout::new(&*(*listener).server, None),
            app: None,
            streams: Vec::new(),
            close_after_flush: false,
            close_now: false,
            flush_soon: false,
            limit_zone,
            live: None,
            last_media: 0,
            hls: Vec::new(),
            ping: core::mem::zeroed(),
            idle: core::mem::zeroed(),
            merge: core::mem::zeroed(),
            batch: core::mem::zeroed(),
            pace: 0,
            info: None,
            waiting: None,
            notes: Vec::new(),
            update: core::mem::zeroed(),
            updates_pending: 0,
            last_ts: 0,
            records: Vec::new(),
            bytes_in: 0,
            in_rate: stat::Rate::new(now, 0),
            out_rate: stat::Rate::new(now, 0),
            pubs: Vec::new(),
            relay: None,
            keyframe_asked: 0,
        }
    }
}

/// Gives `conn` to nginx's connection `c` (as `c->data`): its timers and the read and
/// write handlers are set up.
unsafe fn attach(c: *mut ngx_connection_t, conn: Conn) -> *mut Conn {
    let conn = Box::into_raw(Box::new(conn));
    (*c).data = conn as *mut c_void;
    init_event(&raw mut (*conn).ping, c, on_ping);
    init_event(&raw mut (*conn).idle, c, on_idle_check);
    init_event(&raw mut (*conn).batch, c, on_batch_read);
    init_event(&raw mut (*conn).merge, c, on_merged_write);
    init_event(&raw mut (*conn).update, c, on_update);
    (*(*c).read).handler = Some(on_read);
    (*(*c).write).handler = Some(on_write);
    conn
}

unsafe fn conn_of(c: *mut ngx_connection_t) -> *mut Conn {
    (*c).data as *mut Conn
}

/// The peer's address of a connection (an RTMP client's, or an HTTP client's for WHIP).
pub(super) fn client_ip(c: *const ngx_connection_t) -> IpAddr {
    // SAFETY: nginx fills c->sockaddr with the peer's address of c->socklen bytes.
    unsafe { sockaddr_ip((*c).sockaddr as *const u8) }
}

/// The IP address of a socket address nginx holds (IPv4 or IPv6; else unspecified).
unsafe fn sockaddr_ip(sa: *const u8) -> IpAddr {
    let family = u16::from_ne_bytes([*sa, *sa.add(1)]) as u32;
    if family == AF_INET {
        let b = core::slice::from_raw_parts(sa.add(4), 4);
        IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    } else if family == AF_INET6 {
        let b: [u8; 16] = core::slice::from_raw_parts(sa.add(8), 16).try_into().expect("16");
        IpAddr::V6(Ipv6Addr::from(b))
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
}

/// The address the client reached us on (a WHIP answer's candidate by default).
pub unsafe fn local_ip(c: *mut ngx_connection_t) -> IpAddr {
    if ngx::ffi::ngx_connection_local_sockaddr(c, ptr::null_mut(), 0) != NGX_OK as isize || (*c).local_sockaddr.is_null() {
        return IpAddr::V4(Ipv4Addr::LOCALHOST);
    }
    match sockaddr_ip((*c).local_sockaddr as *const u8) {
        ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip => ip,
    }
}

/// Makes `fd` (the worker's end of a WHIP session's socketpair) an RTMP client
/// connection of the server that has application `app`, standing for the client of the
/// HTTP connection `http` (its address, for `allow`/`deny`, callbacks and `/stat`).
pub unsafe fn accept_local(fd: i32, app: &str, http: *mut ngx_connection_t) -> Result<(), String> {
    let close_fd = |fd| drop(std::fs::File::from_raw_fd(fd));
    let Some(rc) = rtmp_conf() else {
        close_fd(fd);
        return Err("there is no rtmp {} block".into());
    };
    let Some(server) = rc.servers.iter().position(|s| s.apps.iter().any(|a| a.name == app)) else {
        close_fd(fd);
        return Err(format!("whip_publish: no rtmp application \"{app}\""));
    };
    let cycle = ngx::ffi::ngx_cycle;
    let all = &(*cycle).listening;
    let listening = core::slice::from_raw_parts_mut(all.elts as *mut ngx::ffi::ngx_listening_t, all.nelts);
    let ours = init_connection as unsafe extern "C" fn(*mut ngx_connection_t) as usize;
    let Some(ls) = listening.iter_mut().find(|l| {
        l.handler.map(|h| h as usize) == Some(ours) && !l.servers.is_null() && (*(l.servers as *const Listener)).index == server
    }) else {
        close_fd(fd);
        return Err(format!("whip_publish: the rtmp server of application \"{app}\" has no listening socket"));
    };
    let c = ngx::ffi::ngx_get_connection(fd, (*cycle).log);
    if c.is_null() {
        close_fd(fd);
        return Err("no free connection (worker_connections)".into());
    }
    let pool = ngx::ffi::ngx_create_pool(ls.pool_size, (*cycle).log);
    let log = if pool.is_null() { ptr::null_mut() } else { ngx::ffi::ngx_pcalloc(pool, core::mem::size_of::<ngx_log_t>()) as *mut ngx_log_t };
    let sockaddr = if pool.is_null() { ptr::null_mut() } else { ngx::ffi::ngx_pnalloc(pool, (*http).socklen as usize) as *mut u8 };
    let text = (*http).addr_text;
    let addr = if pool.is_null() { ptr::null_mut() } else { ngx::ffi::ngx_pnalloc(pool, text.len.max(1)) as *mut u8 };
    if log.is_null() || sockaddr.is_null() || addr.is_null() {
        if !pool.is_null() {
            ngx_destroy_pool(pool);
        }
        ngx_close_connection(c);
        return Err("out of memory".into());
    }
    *log = ls.log;
    (*c).pool = pool;
    (*c).log = log;
    (*(*c).read).log = log;
    (*(*c).write).log = log;
    (*c).recv = ngx::ffi::ngx_io.recv;
    (*c).send = ngx::ffi::ngx_io.send;
    (*c).recv_chain = ngx::ffi::ngx_io.recv_chain;
    (*c).send_chain = ngx::ffi::ngx_io.send_chain;
    ptr::copy_nonoverlapping((*http).sockaddr as *const u8, sockaddr, (*http).socklen as usize);
    (*c).sockaddr = sockaddr.cast();
    (*c).socklen = (*http).socklen;
    if !text.data.is_null() {
        ptr::copy_nonoverlapping(text.data, addr, text.len);
    }
    (*c).addr_text = ngx::ffi::ngx_str_t { len: text.len, data: addr };
    (*c).listening = ls;
    (*c).number = core::sync::atomic::AtomicUsize::from_ptr(ngx::ffi::ngx_connection_counter as *mut usize)
        .fetch_add(1, core::sync::atomic::Ordering::SeqCst) as _;
    (*(*c).write).set_ready(1);
    guarded(c, || unsafe { init(c) });
    Ok(())
}

/// Runs an event handler body; a panic is logged and closes that one connection.
unsafe fn guarded(c: *mut ngx_connection_t, f: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(f)).is_err() {
        log!(NGX_LOG_ALERT, (*c).log, "ngx-rtmp-rs: internal error (panic), closing client");
        if (*c).fd != -1 {
            close(c);
        }
    }
}

/// The listening socket's handler: a new client.
pub unsafe extern "C" fn init_connection(c: *mut ngx_connection_t) {
    guarded(c, || unsafe { init(c) });
}

unsafe fn init(c: *mut ngx_connection_t) {
    let listener = &*((*(*c).listening).servers as *const Listener);
    let server = &*listener.server;
    let zone = (*listener.conf).shared_zone;
    let log = (*c).log;
    (*log).connection = (*c).number;
    (*log).data = c as *mut c_void;
    (*log).handler = Some(log_handler);
    // Resets and broken pipes from clients are their business: log them at info.
    (*c).set_log_error(ngx::ffi::ngx_connection_log_error_e_NGX_ERROR_INFO);

    let limit_zone = match (server.max_connections, zone.is_null()) {
        (Some(max), false) => {
            if !shared::acquire(zone, max) {
                log!(NGX_LOG_INFO, log, "max_connections ({max}) reached, closing client");
                free_connection(c);
                return;
            }
            zone
        }
        _ => ptr::null_mut(),
    };
    let core = &server.core;
    let id = WORKER.with(|w| {
        let mut w = w.borrow_mut();
        w.stats.naccepted += 1;
        w.conns.insert(c)
    });
    let conn = attach(c, Conn::new(id, listener, Session::new(session::Config {
        chunk_size: core.chunk_size as usize,
        ack_window: core.ack_window as u32,
        max_message: core.max_message as usize,
        max_streams: core.max_streams as u32,
    }), limit_zone));
    let ping = &raw mut (*conn).ping;
    log!(NGX_LOG_INFO, log, "client connected");

    ngx_add_timer((*c).read, core.timeout as _);
    if core.ping > 0 {
        ngx_add_timer(ping, core.ping as _);
    }
    if (*(*c).read).ready() != 0 {
        read(c);
    } else if ngx_handle_read_event((*c).read, 0) != NGX_OK as isize {
        close(c);
    }
}

/// Once a second, while the worker is shutting down (reload or quit): a worker that no
/// longer accepts can never get a publisher again, so its players of streams without one,
/// and clients that neither publish nor play, are closed (they reconnect to the new
/// workers); publishers and their players are left to finish.
static mut EXIT_WATCH: core::mem::MaybeUninit<ngx_event_t> = core::mem::MaybeUninit::zeroed();

pub unsafe extern "C" fn init_process(cycle: *mut ngx::ffi::ngx_cycle_t) -> ngx::ffi::ngx_int_t {
    let ev = (&raw mut EXIT_WATCH).cast::<ngx_event_t>();
    (*ev).handler = Some(on_exit_watch);
    let now = ngx_current_msec as u64;
    WORKER.with(|w| {
        let s = &mut w.borrow_mut().stats;
        s.started = now;
        s.in_rate = stat::Rate::new(now, 0);
        s.out_rate = stat::Rate::new(now, 0);
    });
    (*ev).log = (*cycle).log;
    (*ev).set_cancelable(1);
    ngx_add_timer(ev, grid_delay(1000) as _);
    let ev = (&raw mut FLUSH_ALL).cast::<ngx_event_t>();
    (*ev).handler = Some(on_flush_all);
    (*ev).log = (*cycle).log;
    let ctx = (*cycle).conf_ctx as *mut *mut c_void;
    let rc = *ctx.add(super::ngx_rtmp_module.index) as *const RtmpConf;
    if !rc.is_null() && !(*rc).shared_zone.is_null() {
        GENERATION.with(|g| g.set(shared::generation((*rc).shared_zone)));
    }
    hls::init_process(cycle, rc);
    NGX_OK as ngx::ffi::ngx_int_t
}

pub unsafe extern "C" fn exit_process(_cycle: *mut ngx::ffi::ngx_cycle_t) {
    uring::close();
    // (A worker of the newest configuration that ends tells the older ones still
    // finishing that nginx quits: see `drain`.)
    // (Not nginx's cache loader, which ends on its own.)
    if ngx::ffi::ngx_process as u32 != ngx::ffi::NGX_PROCESS_WORKER {
        return;
    }
    if let Some(rc) = rtmp_conf().filter(|rc| !rc.shared_zone.is_null()) {
        shared::quitting(rc.shared_zone, GENERATION.with(|g| g.get()));
    }
}

thread_local! {
    /// The configuration generation this worker started in (`shared.rs`).
    static GENERATION: core::cell::Cell<u64> = const { core::cell::Cell::new(0) };
    /// When this worker saw nginx quit.
    static QUIT_SEEN: core::cell::Cell<Option<u64>> = const { core::cell::Cell::new(None) };
}

/// While the worker shuts down, from its 1 s tick: when nginx quits (no newer workers
/// take over, unlike a reload), live publishers have `drain_timeout` to finish; then they
/// are closed as if they had left (recordings completed with their `on_record_done`,
/// `on_publish_done`, players told the stream ended and then closed by the tick), so that
/// nginx ends in time (`docker stop` waits 10 s). True if it closed some.
unsafe fn drain(now: u64) -> bool {
    let Some(rc) = rtmp_conf().filter(|rc| !rc.shared_zone.is_null()) else { return false };
    if !shared::quitting(rc.shared_zone, GENERATION.with(|g| g.get())) {
        return false;
    }
    let Some(limit) = rc.tree.drain_timeout() else { return false };
    let publishers = || -> Vec<*mut ngx_connection_t> {
        WORKER.with(|w| {
            let w = w.borrow();
            w.conns
                .iter()
                .filter(|&(_, c)| unsafe { (*conn_of(c)).streams.iter().any(|(_, _, role)| *role == Role::Publisher) })
                .map(|(_, c)| c)
                .collect()
        })
    };
    let since = match QUIT_SEEN.with(|q| q.get()) {
        Some(t) => t,
        None => {
            QUIT_SEEN.with(|q| q.set(Some(now)));
            let n = publishers().len();
            if n > 0 {
                log!(NGX_LOG_NOTICE, (*ngx::ffi::ngx_cycle).log, "nginx is quitting: {n} live publisher(s) have {limit} ms to finish (drain_timeout)");
            }
            now
        }
    };
    if now.saturating_sub(since) < limit {
        return false;
    }
    let publishers = publishers();
    for &c in &publishers {
        log!(NGX_LOG_INFO, (*c).log, "closing publisher: nginx is quitting and drain_timeout ({limit} ms) is over");
        close(c);
    }
    !publishers.is_empty()
}

unsafe extern "C" fn on_exit_watch(ev: *mut ngx_event_t) {
    let r = catch_unwind(AssertUnwindSafe(|| unsafe {
        sample_rates();
        end_idle_pulls(ngx_current_msec as u64);
        // (Players of a publisher just drained are closed at the next tick, once told.)
        if ngx::ffi::ngx_exiting != 0 && !drain(ngx_current_msec as u64) {
            let orphans: Vec<*mut ngx_connection_t> = WORKER.with(|w| {
                let w = w.borrow();
                w.conns
                    .iter()
                    .filter(|&(_, c)| {
                        let conn = &*conn_of(c);
                        // A pull relay ends too: its players reconnect to the new workers,
                        // which pull again.
                        let pull = conn.relay.as_ref().is_some_and(|r| r.mode == crate::rtmp::client::Mode::Play);
                        pull || !conn.streams.iter().any(|(_, key, role)| *role == Role::Publisher || w.hub.is_live(key))
                    })
                    .map(|(_, c)| c)
                    .collect()
            });
            for c in orphans {
                log!(NGX_LOG_INFO, (*c).log, "closing client: the worker is shutting down and it has no live stream");
                close(c);
            }
        }
        ngx_add_timer(ev, grid_delay(1000) as _);
    }));
    if r.is_err() {
        log!(NGX_LOG_ALERT, (*ev).log, "ngx-rtmp-rs: internal error (panic) in the shutdown watch");
    }
}

/// Prepares one of a connection's own timer events.
unsafe fn init_event(ev: *mut ngx_event_t, c: *mut ngx_connection_t, handler: unsafe extern "C" fn(*mut ngx_event_t)) {
    (*ev).handler = Some(handler);
    (*ev).data = c as *mut c_void;
    (*ev).log = (*c).log;
    // These timers alone must not keep a shutting-down worker alive.
    (*ev).set_cancelable(1);
}

/// `drop_idle_publisher`: closes a publisher that sent no audio or video for that long.
unsafe extern "C" fn on_idle_check(ev: *mut ngx_event_t) {
    let c = (*ev).data as *mut ngx_connection_t;
    guarded(c, || unsafe {
        let conn = &*conn_of(c);
        let limit = conn.live.as_ref().map_or(0, |l| l.drop_idle_publisher) as usize;
        let idle = ngx_current_msec.wrapping_sub(conn.last_media);
        if idle >= limit {
            log!(NGX_LOG_INFO, (*c).log, "drop idle publisher: no audio or video for {idle} ms (drop_idle_publisher)");
            close(c);
        } else {
            ngx_add_timer(ev, (limit - idle) as _);
        }
    });
}

/// `merge_reads`: a publisher's socket only wakes the worker once this much is waiting
/// (a quarter of its receive buffer at most when `listen ... rcvbuf=` fixes that size;
/// otherwise Linux grows the buffer to twice the mark), so a fast publisher is never held
/// up by a full buffer; the timer reads whatever came meanwhile.
const BATCH_LOWAT: i32 = 256 * 1024;

/// How often a connection's input is to be read now, in ms (0: as it comes). Only a
/// publisher's input waits, and only once each of its HLS streams has settled (three
/// segments listed: its first playlists come as early as without, and a player joining
/// a new stream, at its live edge, gets every update at once): every `merge_reads
/// TIME`; with `merge_reads auto`, every `auto_merge_reads` while no RTMP player watches
/// its streams, at the players' `merge_writes` pace while they do (each batch then
/// written to them at once), and as it comes for players without `merge_writes`.
unsafe fn read_pace(conn: &Conn) -> u64 {
    let Some(live) = conn.live.as_ref() else { return 0 };
    let mut published = conn.streams.iter().filter(|(_, _, r)| *r == Role::Publisher).map(|(_, k, _)| k).peekable();
    // (Relays are read as they come; a WHIP session's socketpair wakes the worker for
    // every message whatever its low-water mark, so batching would only add a timer.)
    let whip = conn.info.as_ref().is_some_and(|i| i.flash_ver == crate::whip::FLASH_VER);
    if published.peek().is_none() || conn.relay.is_some() || whip {
        return 0;
    }
    if conn.hls.iter().any(|(_, seg)| !seg.settled()) {
        return 0;
    }
    match live.merge_reads {
        MergeReads::Every(ms) => ms,
        MergeReads::Auto => {
            let watched = WORKER.with(|w| {
                let w = w.borrow();
                published.any(|k| w.hub.player_count(k) > 0)
            });
            if watched {
                live.merge_writes
            } else {
                auto_merge_reads(conn.hls.iter().map(|(_, s)| s.fragment_ms()))
            }
        }
    }
}

/// Puts a connection's reading at its `read_pace`: in batches (a low-water mark and a
/// timer) or as it comes; what waits in the socket when batching ends is read at once.
unsafe fn repace(c: *mut ngx_connection_t) {
    let conn = &mut *conn_of(c);
    let pace = read_pace(conn);
    if pace == conn.pace {
        return;
    }
    let was = conn.pace;
    let batch = &raw mut conn.batch;
    if (*batch).timer_set() != 0 {
        ngx_del_timer(batch);
    }
    if pace > 0 {
        if was == 0 {
            let rcvbuf = (*(*c).listening).rcvbuf;
            let lowat = if rcvbuf > 0 { BATCH_LOWAT.min(rcvbuf / 4).max(1) } else { BATCH_LOWAT };
            if !set_rcvlowat(c, lowat) {
                return;
            }
        }
        conn.pace = pace;
        // (On the worker's grid: batched reads of every publisher on this pace fall due
        // together.)
        ngx_add_timer(batch, grid_delay(pace) as _);
    } else {
        conn.pace = 0;
        conn.session.shrink_input();
        set_rcvlowat(c, 1);
        mark_readable(c);
        ngx_post_event((*c).read, &raw mut ngx_posted_events);
    }
}

/// Lets nginx's recv try a socket that epoll has not reported readable (it waits for the
/// low-water mark of batched reads).
unsafe fn mark_readable(c: *mut ngx_connection_t) {
    let rev = (*c).read;
    (*rev).set_ready(1);
    (*rev).available = 1;
}

/// The connection publishing `key`, if any.
fn publisher_conn(key: &StreamKey) -> Option<*mut ngx_connection_t> {
    WORKER.with(|w| {
        let w = w.borrow();
        w.hub.publisher(key).and_then(|id| w.conns.get(id))
    })
}

unsafe fn set_rcvlowat(c: *mut ngx_connection_t, lowat: i32) -> bool {
    let (level, int) = (ngx::ffi::SOL_SOCKET as i32, core::mem::size_of::<i32>() as u32);
    ngx::ffi::setsockopt((*c).fd, level, ngx::ffi::SO_RCVLOWAT as i32, (&raw const lowat).cast(), int) == 0
}

thread_local! {
    /// Set while a batched read runs: what it queues for players with merged writes is
    /// written at once (the batch is the merge), not at their next grid point.
    static BATCH_READ: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
    /// What a batched read has for other connections, delivered once it is done, player
    /// by player: each player's state is then brought into the cache once per batch
    /// rather than once per frame.
    static DEFERRED: RefCell<Vec<Out>> = const { RefCell::new(Vec::new()) };
}

/// Before a player of `key` starts: a publisher read in batches has its waiting input
/// read now, so that the player starts from the newest keyframe sent, not the newest one
/// read. (Not for the connection being handled, `c`: it is read already.)
unsafe fn catch_up_publisher(key: &StreamKey, c: *mut ngx_connection_t) {
    if let Some(p) = publisher_conn(key).filter(|&p| p != c) {
        if (*conn_of(p)).pace > 0 {
            mark_readable(p);
            read(p);
        }
    }
}

/// A publisher whose stream gained or lost players: its reading may change pace.
unsafe fn repace_publisher(key: &StreamKey) {
    if let Some(p) = publisher_conn(key) {
        repace(p);
    }
}

unsafe extern "C" fn on_batch_read(ev: *mut ngx_event_t) {
    let c = (*ev).data as *mut ngx_connection_t;
    guarded(c, || unsafe {
        mark_readable(c);
        struct InBatch;
        impl Drop for InBatch {
            fn drop(&mut self) {
                BATCH_READ.with(|b| b.set(false));
                DEFERRED.with(|d| d.borrow_mut().clear());
            }
        }
        BATCH_READ.with(|b| b.set(true));
        let in_batch = InBatch;
        read(c);
        let mut out = DEFERRED.with(|d| std::mem::take(&mut *d.borrow_mut()));
        if !out.is_empty() {
            // (Stable: each connection's items stay in order.)
            out.sort_by_key(|o| o.conn());
            // Also to this connection, if it plays too: its write is scheduled then.
            WORKER.with(|w| apply_to(&w.borrow().conns, ptr::null_mut(), out.drain(..)));
        }
        drop(in_batch);
        // (Its allocation serves the next batch, unless a huge batch made it big.)
        if out.capacity() <= 4096 {
            DEFERRED.with(|d| *d.borrow_mut() = out);
        }
        // read() may have closed the connection (and freed its Conn).
        if (*c).fd != -1 && !(*c).data.is_null() {
            let conn = &mut *conn_of(c);
            if conn.pace > 0 && conn.batch.timer_set() == 0 {
                ngx_add_timer(&raw mut conn.batch, grid_delay(conn.pace) as _);
            }
        }
    });
}

/// `merge_writes`: the delayed write of everything queued meanwhile.
unsafe extern "C" fn on_merged_write(ev: *mut ngx_event_t) {
    let c = (*ev).data as *mut ngx_connection_t;
    guarded(c, || unsafe {
        // (Every player's merged write falls due in the same turn: written together.)
        if !write_soon(c, &mut *conn_of(c)) {
            flush(c);
        }
    });
}

unsafe extern "C" fn on_read(rev: *mut ngx_event_t) {
    let c = (*rev).data as *mut ngx_connection_t;
    guarded(c, || unsafe { read(c) });
}

unsafe extern "C" fn on_write(wev: *mut ngx_event_t) {
    let c = (*wev).data as *mut ngx_connection_t;
    guarded(c, || unsafe {
        if (*wev).timedout() != 0 {
            log!(NGX_LOG_INFO, (*c).log, "client timed out while sending");
            close(c);
            return;
        }
        flush(c);
    });
}

unsafe extern "C" fn on_ping(ev: *mut ngx_event_t) {
    let c = (*ev).data as *mut ngx_connection_t;
    guarded(c, || unsafe {
        let conn = &mut *conn_of(c);
        let core = &conn.server().core;
        let (ping, ping_timeout) = (core.ping, core.ping_timeout);
        if !conn.session.is_open() {
            ngx_add_timer(ev, ping as _);
            return;
        }
        conn.session.ping(ngx_current_msec as u32);
        conn.drain_session();
        // The answer (any input) must come within ping_timeout.
        let rev = (*c).read;
        let deadline = ngx_current_msec.wrapping_add(ping_timeout as _);
        if (*rev).timer_set() == 0 || (*rev).timer.key > deadline {
            ngx_add_timer(rev, ping_timeout as _);
        }
        ngx_add_timer(ev, ping as _);
        flush(c);
    });
}

/// Room made in a publisher's input buffer before each receive: while its input is read
/// in batches, and while it is read as it comes (the buffer settles at once or twice
/// this and is then reused).
const RECV_ROOM_BATCHED: usize = 64 * 1024;
const RECV_ROOM: usize = 16 * 1024;

/// Bytes read from one client per turn of the event loop.
const READ_BUDGET: usize = 256 * 1024;

unsafe fn read(c: *mut ngx_connection_t) {
    let rev = (*c).read;
    let conn = conn_of(c);
    let timeout = (*conn).server().core.timeout;
    if (*rev).timedout() != 0 {
        if (*conn).waiting.is_some() {
            // The client waits for a callback, not the other way round.
            (*rev).set_timedout(0);
            ngx_add_timer(rev, timeout as _);
            return;
        }
        log!(NGX_LOG_INFO, (*c).log, "client timed out");
        close(c);
        return;
    }
    if (*conn).waiting.is_some() {
        // What the client sends meanwhile stays in the socket until the callback answers.
        return;
    }
    let recv = (*c).recv.expect("nginx sets recv on accepted connections");
    // Not zeroed: recv fills the front and only that is read. Small: only the handshake,
    // players' few bytes and relays come through it, and its frame is on the stack once
    // more for each nested read (a player joining reads its publisher's waiting input).
    let mut buf = [core::mem::MaybeUninit::<u8>::uninit(); 16 * 1024];
    // Fairness: one client gets at most this much reading per turn of the event loop; the
    // rest waits for the next turn (a posted event, as epoll will not report it again).
    let mut budget = READ_BUDGET;
    loop {
        if budget == 0 {
            ngx_post_event(rev, &raw mut ngx_posted_events);
            break;
        }
        // A publisher's input goes straight into the buffer its chunks are parsed from
        // (no copy); the handshake, players (whose few bytes need no buffer of their own)
        // and relays go through `buf`.
        let publisher = (*conn).relay.is_none() && (*conn).streams.iter().any(|(_, _, r)| *r == Role::Publisher);
        let room = if (*conn).pace > 0 { RECV_ROOM_BATCHED } else { RECV_ROOM };
        let direct = if publisher { (*conn).session.input(room) } else { None };
        let (n, direct) = match direct {
            Some(b) => {
                let spare = b.spare_capacity_mut();
                let n = recv(c, spare.as_mut_ptr().cast(), spare.len());
                if n > 0 {
                    // SAFETY: recv wrote these n bytes of the spare capacity.
                    b.set_len(b.len() + n as usize);
                }
                (n, true)
            }
            None => (recv(c, buf.as_mut_ptr().cast(), buf.len()), false),
        };
        if n == NGX_AGAIN as isize {
            break;
        }
        if n <= 0 {
            // 0: the client closed; NGX_ERROR: nginx logged the error.
            if n == 0 {
                log!(NGX_LOG_INFO, (*c).log, "client closed connection");
            }
            close(c);
            return;
        }
        budget = budget.saturating_sub(n as usize);
        (*conn).bytes_in += n as u64;
        WORKER.with(|w| w.borrow_mut().stats.bytes_in += n as u64);
        ngx_add_timer(rev, timeout as _);
        let fed = if direct {
            (*conn).session.received(n as usize)
        } else {
            // SAFETY: recv wrote these n bytes of `buf`.
            let data = core::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n as usize);
            if (*conn).relay.is_some() {
                if !relay_read(c, data) {
                    return;
                }
                continue;
            }
            let seed = (*c).number ^ ((ngx_current_msec as u64) << 20);
            (*conn).session.feed(data, ngx_current_msec as u32, seed)
        };
        if let Err(e) = fed {
            log!(NGX_LOG_INFO, (*c).log, "client error: {e}");
            close(c);
            return;
        }
        if !handle_events(c) {
            return;
        }
        if (*conn).close_after_flush || (*conn).waiting.is_some() {
            break;
        }
        // Replies (acks, pings, statuses) to a client that sends but does not read must not
        // pile up: the same bound as for players.
        if (*conn).queued_live() > (*conn).fanout.out_queue {
            log!(NGX_LOG_INFO, (*c).log, "client does not read what it is sent (out_queue), closing");
            close(c);
            return;
        }
    }
    if !flush(c) {
        return;
    }
    if ngx_handle_read_event(rev, 0) != NGX_OK as isize {
        close(c);
    }
}

/// Handles the session's events until one waits for a callback. False: the connection
/// was closed.
unsafe fn handle_events(c: *mut ngx_connection_t) -> bool {
    let conn = conn_of(c);
    while (*conn).waiting.is_none() {
        let Some(ev) = (*conn).session.poll_event() else { break };
        handle_event(c, ev);
        if (*conn).close_now {
            close(c);
            return false;
        }
    }
    (*conn).drain_session();
    true
}

/// Goes on with a client whose callback answered: the commands and media that came with
/// the one that waited, then what waits in its socket.
unsafe fn resume(c: *mut ngx_connection_t) {
    if !handle_events(c) {
        return;
    }
    let conn = &*conn_of(c);
    if conn.waiting.is_none() && !conn.close_after_flush {
        let rev = (*c).read;
        if (*rev).posted() == 0 {
            ngx_post_event(rev, &raw mut ngx_posted_events);
        }
    }
    flush(c);
}

/// Refuses something with an error status, then closes once it is sent.
unsafe fn refuse(c: *mut ngx_connection_t, msid: u32, code: &str, description: &str) {
    let conn = &mut *conn_of(c);
    log!(NGX_LOG_INFO, (*c).log, "{code}: {description}");
    conn.session.status(msid, "error", code, description);
    conn.drain_session();
    conn.close_after_flush = true;
}

unsafe fn handle_event(c: *mut ngx_connection_t, ev: Event) {
    let conn = &mut *conn_of(c);
    if conn.close_after_flush {
        return;
    }
    match ev {
        Event::Connect(mut info) => {
            log!(
                NGX_LOG_INFO,
                (*c).log,
                "connect: app \"{}\" flashver \"{}\" tcurl \"{}\"",
                // (escaped: what a client sends must not forge log lines)
                info.app.escape_debug(),
                info.flash_ver.escape_debug(),
                info.tc_url.escape_debug()
            );
            cut(&mut info.flash_ver, nf::FLASHVER_MAX);
            conn.info = Some(Box::new(info));
            let srv = &conn.server().notify;
            if let Some(url) = srv.url(Cb::Connect) {
                let epoch = (*c).start_time as u32;
                conn.waiting = Some(Waiting::Connect);
                notify_call(c, url, srv.method(), &Call::Connect { epoch }, Some(connect_decided));
                return;
            }
            connect_app(c);
        }
        Event::Publish { msid, name, args, kind } => {
            let Some(key) = admit(c, msid, &name, Action::Publish) else { return };
            let conn = &mut *conn_of(c);
            let n = &conn.app().expect("admitted").settings.notify;
            if let Some(url) = n.url(Cb::Publish) {
                notify_call(c, url, n.method(), &Call::Publish { name: &name, kind: &kind, args: &args }, Some(stream_decided));
                conn.waiting = Some(Waiting::Stream { role: Role::Publisher, msid, name, args });
                return;
            }
            start_publish(c, msid, key, name, args);
        }
        Event::Play { msid, name, args, start, duration, reset } => {
            let Some(key) = admit(c, msid, &name, Action::Play) else { return };
            let conn = &mut *conn_of(c);
            if !conn.live.as_ref().is_some_and(|l| l.enabled) {
                return refuse(c, msid, "NetStream.Play.StreamNotFound", "Live streaming is off in this application (live off)");
            }
            let n = &conn.app().expect("admitted").settings.notify;
            if let Some(url) = n.url(Cb::Play) {
                let call = Call::Play { name: &name, start, duration, reset, args: &args };
                notify_call(c, url, n.method(), &call, Some(stream_decided));
                conn.waiting = Some(Waiting::Stream { role: Role::Player, msid, name, args });
                return;
            }
            start_play(c, msid, key, name, args);
        }
        Event::Media { msid, kind, timestamp, payload } => {
            conn.last_ts = timestamp;
            let Some((_, key, Role::Publisher)) = conn.streams.iter().find(|(m, _, _)| *m == msid) else {
                return;
            };
            let payload = match (kind, conn.live.as_ref().map_or(Meta::On, |l| l.meta)) {
                (MediaKind::Data, Meta::Off) => return,
                (MediaKind::Data, Meta::On) => match msg::known_metadata(&payload) {
                    Some(p) => p,
                    None => return,
                },
                _ => payload,
            };
            if kind != MediaKind::Data {
                conn.last_media = ngx_current_msec;
            }
            let settings = conn.hub_settings();
            let frame = Frame::parse(kind, timestamp, payload);
            let mut out = Vec::new();
            let second_audio = WORKER.with(|w| {
                let mut w = w.borrow_mut();
                w.hub.media(key, conn.id, frame.clone(), &settings, &mut out);
                // A stream with its audio twice (a WHIP publisher's AAC and Opus): the
                // Enhanced RTMP track is for the players that asked for it, not for HLS,
                // recordings or the statistics.
                kind == MediaKind::Audio && frame.ex && w.hub.two_audio_tracks(key)
            });
            apply(c, out);
            if second_audio {
                return;
            }
            let (mut keyframe_due, mut settled) = (false, false);
            if let Some((_, seg)) = conn.hls.iter_mut().find(|(m, _)| *m == msid) {
                let was_settled = seg.settled();
                seg.frame(&frame, hls::now_ms());
                keyframe_due = kind == MediaKind::Video && seg.keyframe_due();
                hls::log_notices((*c).log, seg);
                settled = !was_settled && seg.settled();
            }
            if settled {
                // Batched reading may start now.
                repace(c);
            }
            if keyframe_due {
                // (The segment ends at the next keyframe: a WHIP publisher sends one when asked.)
                let key = key.clone();
                ask_keyframe(c, &key, false);
            }
            record_media(c, msid, &frame);
            count_media(c, msid, &frame);
        }
        Event::CloseStream { msid } => end_stream(c, msid),
        Event::Pause { msid, pause } => {
            if let Some((_, key, Role::Player)) = conn.streams.iter().find(|(m, _, _)| *m == msid) {
                WORKER.with(|w| w.borrow_mut().hub.pause(key, conn.id, pause));
                conn.session.paused(msid, pause);
                conn.drain_session();
            }
        }
        Event::Receive { msid, kind, on } => {
            if let Some((_, key, Role::Player)) = conn.streams.iter().find(|(m, _, _)| *m == msid) {
                WORKER.with(|w| w.borrow_mut().hub.receive(key, conn.id, kind, on));
            }
        }
    }
}

/// Finds the application the client connected to and accepts or refuses the connect.
unsafe fn connect_app(c: *mut ngx_connection_t) {
    let conn = &mut *conn_of(c);
    let name = conn.info.as_ref().map(|i| i.app.clone()).unwrap_or_default();
    match conn.server().apps.iter().position(|a| a.name == name) {
        Some(i) => {
            conn.app = Some(i);
            conn.live = Some(conn.server().apps[i].live());
            conn.fanout = Fanout::new(conn.server(), conn.live.as_ref());
            conn.session.accept_connect();
        }
        None => {
            log!(NGX_LOG_INFO, (*c).log, "application \"{}\" not found", name.escape_debug());
            conn.session.reject_connect("Application not found");
            conn.close_after_flush = true;
        }
    }
    conn.drain_session();
}

/// Logs why a callback refused a client: the answer (info: a normal refusal) or the
/// failure (error: the callback service is down or broken).
unsafe fn log_refusal(c: *mut ngx_connection_t, what: &str, outcome: &Outcome) {
    match outcome {
        Ok(r) => {
            log!(NGX_LOG_INFO, (*c).log, "notify: {what} refused (HTTP {})", r.status);
        }
        Err(why) => {
            log!(NGX_LOG_ERR, (*c).log, "notify: {what} refused: {why}");
        }
    }
}

/// `on_connect` answered.
unsafe fn connect_decided(c: *mut ngx_connection_t, outcome: Outcome) {
    let conn = &mut *conn_of(c);
    conn.waiting = None;
    match nf::verdict(&outcome) {
        Verdict::Allow => connect_app(c),
        Verdict::Rename(app) | Verdict::Relay(app) => {
            log!(NGX_LOG_INFO, (*c).log, "notify: connect redirect to \"{}\"", app.escape_debug());
            if let Some(info) = conn.info.as_mut() {
                info.app = app;
            }
            connect_app(c);
        }
        Verdict::Deny(_) => {
            log_refusal(c, "connect", &outcome);
            conn.session.reject_connect("Connection refused by on_connect");
            conn.drain_session();
            conn.close_after_flush = true;
        }
    }
    resume(c);
}

/// `on_publish` or `on_play` answered: go on (under the redirected name), or refuse with
/// the action's status.
unsafe fn stream_decided(c: *mut ngx_connection_t, outcome: Outcome) {
    let conn = &mut *conn_of(c);
    let Some(Waiting::Stream { role, msid, name, args }) = conn.waiting.take() else { return };
    let (action, what, relay, code) = match role {
        Role::Publisher => (Action::Publish, "publish", "push", "NetStream.Publish.Unauthorized"),
        Role::Player => (Action::Play, "play", "pull", "NetStream.Play.Forbidden"),
    };
    let start = |c, msid, key, name, args| unsafe {
        match role {
            Role::Publisher => start_publish(c, msid, key, name, args),
            Role::Player => start_play(c, msid, key, name, args),
        }
    };
    match nf::verdict(&outcome) {
        Verdict::Allow => {
            if let Some(key) = admit(c, msid, &name, action) {
                start(c, msid, key, name, args);
            }
        }
        Verdict::Rename(to) => {
            log!(NGX_LOG_INFO, (*c).log, "notify: {what} redirect to \"{}\"", to.escape_debug());
            if let Some(key) = admit(c, msid, &to, action) {
                start(c, msid, key, name, args);
            }
        }
        Verdict::Relay(to) => {
            // The stream stays local (under a name made from the URL with
            // notify_relay_redirect); a relay pushes it to, or pulls it from, `to`.
            let local = if conn.app().is_some_and(|a| a.settings.notify.relay_redirect()) { relay_name(&to) } else { name.clone() };
            let dir = if role == Role::Publisher { "to" } else { "from" };
            log!(NGX_LOG_INFO, (*c).log, "notify: {relay} \"{local}\" {dir} {}", to.escape_debug());
            if let Some(key) = admit(c, msid, &local, action) {
                let mode = if role == Role::Publisher { crate::rtmp::client::Mode::Publish } else { crate::rtmp::client::Mode::Play };
                let pulled = role == Role::Player && (WORKER.with(|w| w.borrow().hub.is_live(&key)) || pulling(&key));
                start(c, msid, key.clone(), name, args);
                let started = !(*c).data.is_null() && !(*conn_of(c)).close_after_flush;
                if started && !pulled {
                    if let Err(why) = start_relay(c, mode, &to, key) {
                        log!(NGX_LOG_ERR, (*c).log, "relay {relay} {dir} {}: {why}", to.escape_debug());
                    }
                }
            }
        }
        Verdict::Deny(_) => {
            log_refusal(c, &format!("{what} \"{name}\""), &outcome);
            refuse(c, msid, code, &format!("Refused by on_{what}"));
        }
    }
    resume(c);
}

/// Publishes `key` (admitted, and allowed by `on_publish` if there is one); `name` and
/// `args` are what the client asked for, for the callbacks that follow.
unsafe fn start_publish(c: *mut ngx_connection_t, msid: u32, key: StreamKey, name: String, args: String) {
    let conn = &mut *conn_of(c);
    let mut out = Vec::new();
    let r = WORKER.with(|w| w.borrow_mut().hub.publish(&key, conn.id, &mut out));
    if r.is_err() {
        return refuse(c, msid, "NetStream.Publish.BadName", "Already publishing");
    }
    log!(NGX_LOG_INFO, (*c).log, "publish: \"{}/{}\"", key.app, key.name);
    conn.session.accept_publish(msid, &key.name);
    conn.drain_session();
    start_hls(c, msid, &key.name);
    start_record(c, msid, &key.name, &name, &args);
    let conn = &mut *conn_of(c);
    conn.streams.push((msid, key, Role::Publisher));
    repace(c);
    let conn = &mut *conn_of(c);
    let idle = conn.live.as_ref().map_or(0, |l| l.drop_idle_publisher);
    if idle > 0 {
        conn.last_media = ngx_current_msec;
        ngx_add_timer(&raw mut conn.idle, idle as _);
    }
    noted(c, msid, Role::Publisher, name, args);
    let now = ngx_current_msec as u64;
    let rate = stat::Rate::new(now, 0);
    conn.pubs.push(Pub {
        msid,
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
    });
    apply(c, out);
}

/// Plays `key` (admitted, and allowed by `on_play` if there is one).
unsafe fn start_play(c: *mut ngx_connection_t, msid: u32, key: StreamKey, name: String, args: String) {
    let conn = &mut *conn_of(c);
    if conn.live.as_ref().is_some_and(|l| !l.idle_streams) && !WORKER.with(|w| w.borrow().hub.is_live(&key)) {
        return refuse(c, msid, "NetStream.Play.StreamNotFound", "No such stream (idle_streams off)");
    }
    log!(NGX_LOG_INFO, (*c).log, "play: \"{}/{}\"", key.app, key.name);
    conn.session.accept_play(msid, &key.name);
    conn.drain_session();
    let settings = conn.hub_settings();
    let mut out = Vec::new();
    catch_up_publisher(&key, c);
    let conn = &mut *conn_of(c);
    let waits = WORKER.with(|w| {
        let mut w = w.borrow_mut();
        w.hub.play(&key, conn.id, msid, &settings, &mut out);
        !settings.gop_cache || !w.hub.has_gop(&key)
    });
    // A player with nothing cached to start from: a WHIP publisher is asked for a keyframe.
    if let Some(p) = publisher_conn(&key).filter(|_| waits) {
        ask_keyframe(p, &key, true);
    }
    repace_publisher(&key);
    let conn = &mut *conn_of(c);
    conn.streams.push((msid, key, Role::Player));
    noted(c, msid, Role::Player, name, args);
    apply(c, out);
}

/// Asks a WHIP publisher (its session in the sidecar, which spaces its requests to the
/// client) for a keyframe of `key`: at once for a player (`at_once`), at most every half
/// second while an HLS segment waits for one. Other publishers cannot be asked.
unsafe fn ask_keyframe(c: *mut ngx_connection_t, key: &StreamKey, at_once: bool) {
    let conn = &mut *conn_of(c);
    if conn.info.as_ref().is_none_or(|i| i.flash_ver != crate::whip::FLASH_VER) {
        return;
    }
    let Some(&(msid, _, _)) = conn.streams.iter().find(|(_, k, r)| k == key && *r == Role::Publisher) else { return };
    let now = ngx_current_msec as u64;
    if !at_once && now < conn.keyframe_asked + 500 {
        return;
    }
    conn.keyframe_asked = now;
    let ask = [crate::rtmp::amf::Value::str(crate::whip::KEYFRAME_REQUEST), crate::rtmp::amf::Value::Number(0.0), crate::rtmp::amf::Value::Null];
    let mut b = bytes::BytesMut::new();
    msg::amf0(&mut b, msg::CSID_COMMAND, msg::COMMAND_AMF0, msid, &ask, conn.server().core.chunk_size as usize);
    conn.queue(b.freeze());
    post_write(c);
}

/// Remembers a stream for its later callbacks (`on_*_done`, `on_update`), and starts the
/// updates.
unsafe fn noted(c: *mut ngx_connection_t, msid: u32, role: Role, name: String, args: String) {
    let conn = &mut *conn_of(c);
    let Some(app) = conn.app() else { return };
    let n = &app.settings.notify;
    // (Relays make no callbacks, as in nginx-rtmp-module.)
    if !n.any_stream_callback() || conn.relay.is_some() {
        return;
    }
    let every = n.update_timeout();
    let updates = n.url(Cb::Update).is_some() && every > 0;
    conn.notes.push(Note { msid, role, name, args, since: ngx_current_msec });
    if updates && conn.update.timer_set() == 0 && conn.updates_pending == 0 {
        ngx_add_timer(&raw mut conn.update, every as _);
    }
}

/// `on_publish_done` / `on_play_done`, then `on_done`, for a stream that ended.
unsafe fn notify_done(c: *mut ngx_connection_t, role: Role, name: &str, args: &str) {
    let conn = &*conn_of(c);
    let Some(app) = conn.app() else { return };
    let n = &app.settings.notify;
    let first = match role {
        Role::Publisher => (Cb::PublishDone, "publish_done"),
        Role::Player => (Cb::PlayDone, "play_done"),
    };
    for (cb, call) in [first, (Cb::Done, "done")] {
        if let Some(url) = n.url(cb) {
            notify_call(c, url, n.method(), &Call::Done { call, name, args }, None);
        }
    }
}

/// The callbacks of a connection that closes: the ends of its streams (and of a publish
/// or play still waiting for its callback, as nginx-rtmp-module does), then
/// `on_disconnect`.
unsafe fn notify_close(c: *mut ngx_connection_t) {
    let conn = &mut *conn_of(c);
    for msid in conn.records.iter().map(|(m, _)| *m).collect::<Vec<_>>() {
        end_record(c, msid);
    }
    for note in std::mem::take(&mut conn.notes) {
        notify_done(c, note.role, &note.name, &note.args);
    }
    if let Some(Waiting::Stream { role, name, args, .. }) = conn.waiting.take() {
        notify_done(c, role, &name, &args);
    }
    let srv = &conn.server().notify;
    if let (Some(url), Some(_), None) = (srv.url(Cb::Disconnect), &conn.info, &conn.relay) {
        notify_call(c, url, srv.method(), &Call::Disconnect, None);
    }
}

/// `on_update`: one call per stream of the connection; the next round is scheduled when
/// every answer is in.
unsafe extern "C" fn on_update(ev: *mut ngx_event_t) {
    let c = (*ev).data as *mut ngx_connection_t;
    guarded(c, || unsafe {
        let conn = &mut *conn_of(c);
        let Some(app) = conn.app() else { return };
        let n = &app.settings.notify;
        let Some(url) = n.url(Cb::Update) else { return };
        for note in &conn.notes {
            let call = Call::Update {
                publishing: note.role == Role::Publisher,
                time: (ngx_current_msec.wrapping_sub(note.since) / 1000) as u64,
                timestamp: conn.last_ts,
                name: &note.name,
                args: &note.args,
            };
            notify_call(c, url, n.method(), &call, Some(update_answered));
            conn.updates_pending += 1;
        }
    });
}

unsafe fn update_answered(c: *mut ngx_connection_t, outcome: Outcome) {
    let conn = &mut *conn_of(c);
    conn.updates_pending = conn.updates_pending.saturating_sub(1);
    let Some(app) = conn.app() else { return };
    let n = &app.settings.notify;
    if nf::update_drops(&outcome, n.update_strict()) {
        log_refusal(c, "update", &outcome);
        log!(NGX_LOG_INFO, (*c).log, "on_update refused the client, closing it");
        return close(c);
    }
    if conn.updates_pending == 0 && !conn.notes.is_empty() && conn.update.timer_set() == 0 {
        ngx_add_timer(&raw mut conn.update, n.update_timeout() as _);
    }
}

/// Sends a callback about this client. `then` gets the outcome if the client is still
/// connected by then; without it, only a failure is logged.
unsafe fn notify_call(
    c: *mut ngx_connection_t,
    url: &nf::Url,
    method: nf::Method,
    call: &Call,
    then: Option<unsafe fn(*mut ngx_connection_t, Outcome)>,
) {
    let conn = &*conn_of(c);
    let addr = String::from_utf8_lossy(core::slice::from_raw_parts((*c).addr_text.data, (*c).addr_text.len)).into_owned();
    let info = conn.info.as_deref();
    let field = |f: fn(&ConnectInfo) -> &str| info.map_or("", f);
    let client = nf::Client {
        app: field(|i| &i.app),
        flashver: field(|i| &i.flash_ver),
        swfurl: field(|i| &i.swf_url),
        tcurl: field(|i| &i.tc_url),
        pageurl: field(|i| &i.page_url),
        addr: &addr,
        clientid: (*c).number,
        args: field(|i| &i.args),
    };
    let request = nf::request(method, url, &nf::form(&client, call));
    let what = call.name();
    log!(NGX_LOG_INFO, (*c).log, "notify: {what} \"{}\"", url.text);
    let id = conn.id;
    let number = (*c).number;
    let done: notify::Done = match then {
        Some(then) => Box::new(move |outcome| {
            // A client that is gone (its id no longer registered) needs no answer.
            if let Some(c) = WORKER.with(|w| w.borrow().conns.get(id)) {
                // SAFETY: the connection is still registered, so it is open and its Conn alive.
                unsafe { guarded(c, || then(c, outcome)) }
            }
        }),
        None => Box::new(move |outcome| {
            if let Err(why) = outcome {
                // SAFETY: the cycle's log lives as long as the worker.
                unsafe {
                    log!(NGX_LOG_ERR, (*ngx::ffi::ngx_cycle).log, "notify: {what} of client {number} failed: {why}");
                }
            }
        }),
    };
    let to = match url.addr {
        Some(addr) => notify::Target::Addr(addr),
        None => {
            let listener = &*conn.listener;
            let rc: &RtmpConf = &*listener.conf;
            let resolver = rc.server_resolvers.get(listener.index).copied().unwrap_or(ptr::null_mut());
            notify::Target::Name { resolver, host: url.host.clone(), port: url.port }
        }
    };
    let srv = &conn.server().notify;
    notify::start(to, &url.text, request, srv.netcall_timeout(), srv.reply_limit(), done);
}

/// Cuts a string to at most `max` bytes (at a character boundary).
fn cut(s: &mut String, max: usize) {
    if s.len() > max {
        let mut i = max;
        while !s.is_char_boundary(i) {
            i -= 1;
        }
        s.truncate(i);
    }
}

/// The local name of a relayed stream with `notify_relay_redirect on`: made from the URL
/// (nginx-rtmp-module uses its MD5; here the first 16 bytes of its SHA-256, in hex).
fn relay_name(url: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(url.as_bytes())[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether a pull relay into `key` is under way.
fn pulling(key: &StreamKey) -> bool {
    WORKER.with(|w| {
        w.borrow().conns.iter().any(|(_, c)| {
            // SAFETY: registered connections have their Conn.
            let conn = unsafe { &*conn_of(c) };
            conn.relay.as_ref().is_some_and(|r| r.mode == crate::rtmp::client::Mode::Play && r.key == *key)
        })
    })
}

/// Opens a relay connection for the stream `key` of connection `from`'s server: pushing it
/// to `url` (`Mode::Publish`) or pulling `url` into it (`Mode::Play`).
unsafe fn start_relay(from: *mut ngx_connection_t, mode: crate::rtmp::client::Mode, url: &str, key: StreamKey) -> Result<(), String> {
    use crate::rtmp::client::{parse_url, Client, Mode};
    let (host, port, app, stream) = parse_url(url).ok_or("not an rtmp://HOST[:PORT]/APP/STREAM URL")?;
    // nginx-rtmp-module wants an IP address here too.
    let ip: IpAddr = host.parse().map_err(|_| format!("\"{host}\" is not an IP address"))?;
    let from_conn = &*conn_of(from);
    let (listener, server) = (from_conn.listener, from_conn.server());
    // A relay that cannot reach its server, or loses it, is an error worth seeing.
    let log_error = ngx::ffi::ngx_connection_log_error_e_NGX_ERROR_ERR;
    let (c, connected) = notify::connect_peer(std::net::SocketAddr::new(ip, port), url, (*from).log, log_error).ok_or("cannot connect")?;
    let pool = ngx::ffi::ngx_create_pool(4096, (*from).log);
    let log = if pool.is_null() { ptr::null_mut() } else { ngx::ffi::ngx_pcalloc(pool, core::mem::size_of::<ngx_log_t>()) as *mut ngx_log_t };
    if log.is_null() {
        if !pool.is_null() {
            ngx_destroy_pool(pool);
        }
        ngx_close_connection(c);
        return Err("out of memory".into());
    }
    (*c).pool = pool;
    *log = *(*ngx::ffi::ngx_cycle).log;
    (*log).connection = (*c).number;
    (*log).data = c as *mut c_void;
    (*log).handler = Some(log_handler);
    (*c).log = log;
    (*(*c).read).log = log;
    (*(*c).write).log = log;
    // For log lines and /stat: the server it belongs to, and the address it goes to.
    (*c).listening = (*from).listening;
    let text = format!("{ip}:{port}");
    let mem = ngx::ffi::ngx_pnalloc(pool, text.len()) as *mut u8;
    if !mem.is_null() {
        ptr::copy_nonoverlapping(text.as_ptr(), mem, text.len());
        (*c).addr_text = ngx::ffi::ngx_str_t { len: text.len(), data: mem };
    }
    let core = &server.core;
    let id = WORKER.with(|w| w.borrow_mut().conns.insert(c));
    let seed = (*c).number ^ ((ngx_current_msec as u64) << 20);
    let tc_url = url.rsplit_once('/').map_or(url, |(a, _)| a);
    let client = Client::new(mode, &app, tc_url, &stream, core.chunk_size as usize, core.max_message as usize, seed);
    let (verb, dir) = if mode == Mode::Publish { ("pushing", "to") } else { ("pulling", "from") };
    let what = format!("{verb} \"{}/{}\" {dir} {url}", key.app, key.name);
    let mut conn = Conn::new(id, listener, Session::new(session::Config::default()), ptr::null_mut());
    conn.fanout = Fanout::new(server, from_conn.live.as_ref());
    conn.app = from_conn.app;
    conn.live = from_conn.live.clone();
    conn.info = Some(Box::new(ConnectInfo {
        app: key.app.clone(),
        flash_ver: "ngx-rtmp-rs relay".into(),
        tc_url: url.to_owned(),
        ..ConnectInfo::default()
    }));
    conn.relay = Some(Box::new(Relay { client, mode, key, url: url.to_owned(), idle_since: None }));
    // C0 C1, queued for when the connection is made.
    conn.drain_session();
    attach(c, conn);
    ngx_add_timer((*c).read, core.timeout as _);
    log!(NGX_LOG_INFO, (*c).log, "relay: {what}");
    // Connected at once (loopback): write now; else when the connection is made.
    if connected {
        ngx_post_event((*c).write, &raw mut ngx_posted_events);
    }
    Ok(())
}

/// Bytes from the server a relay talks to. False: the connection was closed.
unsafe fn relay_read(c: *mut ngx_connection_t, data: &[u8]) -> bool {
    use crate::rtmp::client::{ClientEvent, Mode};
    let conn = &mut *conn_of(c);
    let r = conn.relay.as_mut().expect("a relay");
    if let Err(e) = r.client.feed(data) {
        log!(NGX_LOG_INFO, (*c).log, "relay {}: {e}", r.url);
        close(c);
        return false;
    }
    while let Some(ev) = (*conn_of(c)).relay.as_mut().and_then(|r| r.client.poll_event()) {
        let conn = &mut *conn_of(c);
        let (mode, key) = {
            let r = conn.relay.as_ref().expect("a relay");
            (r.mode, r.key.clone())
        };
        match ev {
            ClientEvent::Ready { msid } => match mode {
                Mode::Publish if !WORKER.with(|w| w.borrow().hub.is_live(&key)) => {
                    // The stream ended before the server took the push.
                    close(c);
                    return false;
                }
                Mode::Publish => {
                    let settings = conn.hub_settings();
                    let mut out = Vec::new();
                    catch_up_publisher(&key, c);
                    let conn = &mut *conn_of(c);
                    WORKER.with(|w| w.borrow_mut().hub.play(&key, conn.id, msid, &settings, &mut out));
                    repace_publisher(&key);
                    let conn = &mut *conn_of(c);
                    conn.streams.push((msid, key, Role::Player));
                    apply(c, out);
                    // (apply does not schedule writes for the connection it runs for)
                    schedule_write(c, &mut *conn_of(c));
                }
                Mode::Play => {
                    let name = key.name.clone();
                    start_publish(c, msid, key, name, String::new());
                }
            },
            ClientEvent::Media { kind, timestamp, payload } => {
                let msid = conn.streams.first().map_or(0, |s| s.0);
                handle_event(c, Event::Media { msid, kind, timestamp, payload });
            }
            ClientEvent::KeyframeRequest => {}
            ClientEvent::Failed(why) => {
                log!(NGX_LOG_INFO, (*c).log, "relay {}: the server said {why}", conn.relay.as_ref().expect("a relay").url);
                close(c);
                return false;
            }
        }
        if (*c).data.is_null() {
            return false;
        }
        if (*conn_of(c)).close_now {
            close(c);
            return false;
        }
    }
    (*conn_of(c)).drain_session();
    true
}

/// Ends pull relays whose stream has had no player for a while (from the 1 s tick).
unsafe fn end_idle_pulls(now: u64) {
    let idle: Vec<*mut ngx_connection_t> = WORKER.with(|w| {
        let w = w.borrow();
        let mut out = vec![];
        for (_, c) in w.conns.iter() {
            let conn = &mut *conn_of(c);
            let Some(r) = conn.relay.as_mut() else { continue };
            if r.mode != crate::rtmp::client::Mode::Play {
                continue;
            }
            if w.hub.player_count(&r.key) > 0 {
                r.idle_since = None;
            } else if now.saturating_sub(*r.idle_since.get_or_insert(now)) >= PULL_IDLE_MS {
                out.push(c);
            }
        }
        out
    });
    for c in idle {
        log!(NGX_LOG_INFO, (*c).log, "relay: no players left, ending the pull");
        close(c);
    }
}

/// Ends a stream of this connection (the client closed it, or `/control` moves it): the
/// hub, HLS, recordings, statistics and the end callbacks.
unsafe fn end_stream(c: *mut ngx_connection_t, msid: u32) {
    let conn = &mut *conn_of(c);
    let Some(i) = conn.streams.iter().position(|(m, _, _)| *m == msid) else { return };
    let (_, key, role) = conn.streams.remove(i);
    leave(c, conn.id, &key, role);
    end_hls(c, msid);
    end_record(c, msid);
    if role == Role::Publisher {
        // (A client that stopped publishing has its commands read as they come.)
        repace(c);
    }
    let conn = &mut *conn_of(c);
    conn.pubs.retain(|p| p.msid != msid);
    if let Some(i) = conn.notes.iter().position(|n| n.msid == msid) {
        let note = conn.notes.remove(i);
        notify_done(c, note.role, &note.name, &note.args);
    }
}

/// Counts a publisher's media for `/stat` and takes codec details from it.
unsafe fn count_media(c: *mut ngx_connection_t, msid: u32, f: &Frame) {
    let conn = &mut *conn_of(c);
    let Some(p) = conn.pubs.iter_mut().find(|p| p.msid == msid) else { return };
    let len = f.payload.len() as u64;
    p.bytes += len;
    match f.kind {
        MediaKind::Video => {
            p.video += len;
            p.video_ts = f.timestamp;
            p.active = true;
        }
        MediaKind::Audio => {
            p.audio += len;
            p.audio_ts = f.timestamp;
            p.active = true;
        }
        MediaKind::Data => {}
    }
    p.codec.frame(f);
}

/// Once a second: the samples the `/stat` rates are computed from.
unsafe fn sample_rates() {
    let now = ngx_current_msec as u64;
    WORKER.with(|w| {
        let mut w = w.borrow_mut();
        let mut sent = w.stats.bytes_out_closed;
        for (_, c) in w.conns.iter() {
            let conn = &mut *conn_of(c);
            sent += (*c).sent as u64;
            conn.in_rate.sample(now, conn.bytes_in);
            conn.out_rate.sample(now, (*c).sent as u64);
            for p in &mut conn.pubs {
                p.rate.sample(now, p.bytes);
                p.audio_rate.sample(now, p.audio);
                p.video_rate.sample(now, p.video);
            }
        }
        let received = w.stats.bytes_in;
        w.stats.in_rate.sample(now, received);
        w.stats.out_rate.sample(now, sent);
        w.stats.hls.prune(now);
    });
}

/// The rtmp {} configuration of the running cycle (None without an rtmp block).
unsafe fn rtmp_conf() -> Option<&'static RtmpConf> {
    let ctx = (*ngx::ffi::ngx_cycle).conf_ctx as *mut *mut c_void;
    let rc = *ctx.add(super::ngx_rtmp_module.index) as *const RtmpConf;
    rc.as_ref()
}

/// What `/stat` shows: this worker's servers, applications, streams and clients.
pub unsafe fn snapshot() -> stat::Snapshot {
    let now = ngx_current_msec as u64;
    let version = ngx::ffi::NGINX_VERSION.to_str().unwrap_or("");
    let mut snap = stat::Snapshot {
        nginx_version: version.to_owned(),
        compiler: format!("rustc (ngx-rtmp-rs {})", env!("CARGO_PKG_VERSION")),
        built: env!("NGX_RTMP_RS_BUILT").to_owned(),
        pid: std::process::id() as u64,
        ..Default::default()
    };
    if let Some(rc) = rtmp_conf() {
        snap.servers = rc
            .servers
            .iter()
            .map(|s| stat::Server { apps: s.apps.iter().map(|a| stat::App { name: a.name.clone(), streams: vec![] }).collect() })
            .collect();
    }
    WORKER.with(|w| {
        let w = w.borrow();
        let st = &w.stats;
        snap.uptime = now.saturating_sub(st.started) / 1000;
        snap.naccepted = st.naccepted;
        snap.bytes_in = st.bytes_in;
        snap.bytes_out = st.bytes_out_closed + w.conns.iter().map(|(_, c)| (*c).sent as u64).sum::<u64>();
        snap.bw_in = st.in_rate.bits_per_sec(now, snap.bytes_in);
        snap.bw_out = st.out_rate.bits_per_sec(now, snap.bytes_out);
        for (_, c) in w.conns.iter() {
            let conn = &*conn_of(c);
            let info = conn.info.as_deref();
            for (msid, key, role) in &conn.streams {
                let Some(app) = snap.servers.get_mut(key.server).and_then(|s| s.apps.iter_mut().find(|a| a.name == key.app)) else {
                    continue;
                };
                let i = match app.streams.iter().position(|s| s.name == key.name) {
                    Some(i) => i,
                    None => {
                        app.streams.push(stat::Stream { name: key.name.clone(), ..Default::default() });
                        app.streams.len() - 1
                    }
                };
                let stream = &mut app.streams[i];
                let sent = (*c).sent as u64;
                let mut client = stat::Client {
                    id: (*c).number,
                    address: String::from_utf8_lossy((*c).addr_text.as_bytes()).into_owned(),
                    time: now.saturating_sub((*c).start_time as u64),
                    flashver: info.map_or(String::new(), |i| i.flash_ver.clone()),
                    pageurl: info.map_or(String::new(), |i| i.page_url.clone()),
                    swfurl: info.map_or(String::new(), |i| i.swf_url.clone()),
                    timestamp: conn.last_ts,
                    ..Default::default()
                };
                match role {
                    Role::Publisher => {
                        client.publishing = true;
                        stream.publishing = true;
                        if let Some(p) = conn.pubs.iter().find(|p| p.msid == *msid) {
                            client.active = p.active;
                            client.avsync = p.audio_ts as i64 - p.video_ts as i64;
                            stream.active = p.active;
                            stream.time = now.saturating_sub(p.since);
                            stream.bytes_in = p.bytes;
                            stream.bw_in = p.rate.bits_per_sec(now, p.bytes);
                            stream.bw_audio = p.audio_rate.bits_per_sec(now, p.audio);
                            stream.bw_video = p.video_rate.bits_per_sec(now, p.video);
                            stream.codec = Some(p.codec.clone());
                        }
                    }
                    Role::Player => {
                        client.active = w.hub.is_live(key);
                        stream.bytes_out += sent;
                        stream.bw_out += conn.out_rate.bits_per_sec(now, sent);
                        if !stream.publishing {
                            stream.time = stream.time.max(client.time);
                        }
                    }
                }
                stream.clients.push(client);
            }
        }
    });
    // Players see the publisher's clock; HLS viewers are counted by stream name.
    let hls = WORKER.with(|w| {
        let w = w.borrow();
        snap.servers.iter().flat_map(|s| &s.apps).flat_map(|a| &a.streams).map(|s| w.stats.hls.count(&s.name, now)).collect::<Vec<_>>()
    });
    for (s, viewers) in snap.servers.iter_mut().flat_map(|s| &mut s.apps).flat_map(|a| &mut a.streams).zip(hls) {
        s.hls_viewers = viewers;
        let (ts, avsync) = s.clients.iter().find(|c| c.publishing).map_or((0, 0), |p| (p.timestamp, p.avsync));
        for c in s.clients.iter_mut().filter(|c| !c.publishing) {
            c.timestamp = ts;
            c.avsync = avsync;
        }
    }
    snap
}

/// An HLS segment of `stream` was served to `viewer` (from the http log phase).
pub fn hls_seen(stream: &str, viewer: u64) {
    // SAFETY: nginx's cached clock, read on the worker's own thread.
    let now = unsafe { ngx_current_msec } as u64;
    WORKER.with(|w| w.borrow_mut().stats.hls.seen(stream, viewer, now));
}

/// What `/control` answers: how many clients it acted on, or a recording's file.
pub enum Answer {
    Count(usize),
    Path(Option<String>),
}

/// nginx-rtmp-module's control API: `record/start|stop`, `drop/...` and `redirect/...`
/// with `publisher`, `subscriber` or `client`, filtered by `srv`, `app`, `name`, `addr`,
/// `clientid`.
pub unsafe fn control(section: &str, method: &str, arg: &dyn Fn(&str) -> Option<String>) -> Result<Answer, String> {
    let want = match (section, method) {
        ("record", _) => Some(Role::Publisher),
        (_, "publisher") => Some(Role::Publisher),
        (_, "subscriber") => Some(Role::Player),
        (_, "client") => None,
        _ => return Err("Undefined filter".into()),
    };
    let srv = arg("srv").map_or(Some(0), |s| s.parse::<usize>().ok());
    let servers = rtmp_conf().map_or(0, |rc| rc.servers.len());
    let Some(srv) = srv.filter(|&s| s < servers) else { return Err("Server index out of range".into()) };
    let (app, name, addr) = (arg("app"), arg("name"), arg("addr"));
    let clientid = arg("clientid").map(|s| s.parse::<u64>().unwrap_or(u64::MAX));
    let targets: Vec<(*mut ngx_connection_t, u32, Role)> = WORKER.with(|w| {
        let w = w.borrow();
        let mut out = vec![];
        for (_, c) in w.conns.iter() {
            let conn = &*conn_of(c);
            let addr_ok = addr.as_deref().is_none_or(|a| a.as_bytes() == (*c).addr_text.as_bytes());
            let id_ok = clientid.is_none_or(|id| id == (*c).number);
            for (msid, key, role) in &conn.streams {
                if key.server == srv
                    && app.as_deref().is_none_or(|a| a == key.app)
                    && name.as_deref().is_none_or(|n| n == key.name)
                    && want.is_none_or(|r| r == *role)
                    && addr_ok
                    && id_ok
                {
                    out.push((c, *msid, *role));
                }
            }
        }
        out
    });
    match section {
        "drop" => {
            let mut cs: Vec<*mut ngx_connection_t> = targets.iter().map(|t| t.0).collect();
            cs.sort();
            cs.dedup();
            for &c in &cs {
                log!(NGX_LOG_INFO, (*c).log, "dropped through the control API");
                close(c);
            }
            Ok(Answer::Count(cs.len()))
        }
        "redirect" => {
            let newname = arg("newname").ok_or("newname not specified")?;
            for &(c, msid, role) in &targets {
                log!(NGX_LOG_INFO, (*c).log, "redirected to \"{}\" through the control API", newname.escape_debug());
                end_stream(c, msid);
                let action = if role == Role::Publisher { Action::Publish } else { Action::Play };
                if let Some(key) = admit(c, msid, &newname, action) {
                    match role {
                        Role::Publisher => start_publish(c, msid, key, newname.clone(), String::new()),
                        Role::Player => start_play(c, msid, key, newname.clone(), String::new()),
                    }
                }
                post_write(c);
            }
            Ok(Answer::Count(targets.len()))
        }
        _ => {
            let start = match method {
                "start" => true,
                "stop" => false,
                _ => return Err("Undefined method".into()),
            };
            let rec = arg("rec").unwrap_or_default();
            let now = rec::now();
            let mut path = None;
            for &(c, msid, _) in &targets {
                let conn = &mut *conn_of(c);
                let Some(at) = conn.records.iter().position(|(m, _)| *m == msid) else { return Err("Recorder not found".into()) };
                let Some(k) = conn.records[at].1.iter().position(|r| r.r.config().id == rec) else {
                    return Err("Recorder not found".into());
                };
                let r = &mut conn.records[at].1[k].r;
                let p = if start { r.start(&now) } else { r.stop() };
                path = p.or(path);
                record_notices(c, msid, at, k);
                post_write(c);
            }
            Ok(Answer::Path(path))
        }
    }
}

/// Has a connection's queue written soon (for output made outside its own handlers).
unsafe fn post_write(c: *mut ngx_connection_t) {
    if !(*c).data.is_null() {
        let wev = (*c).write;
        if (*wev).posted() == 0 {
            ngx_post_event(wev, &raw mut ngx_posted_events);
        }
    }
}

/// What publish and play check alike: a usable stream name, the application's access
/// rules, a stream id not already in use. Refuses with the action's status codes (and
/// returns None) when a check fails.
unsafe fn admit(c: *mut ngx_connection_t, msid: u32, name: &str, action: Action) -> Option<StreamKey> {
    let conn = &*conn_of(c);
    let app = conn.app()?;
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
        log!(
            NGX_LOG_INFO,
            (*c).log,
            "stream name {shown:?} refused: empty, \".\", \"..\", longer than 255 bytes, or with \"/\", \"\\\" or control characters"
        );
        refuse(c, msid, bad_name, "Invalid stream name");
    } else if !access::allowed(&app.settings.access, action, client_ip(c)) {
        refuse(c, msid, forbidden.0, forbidden.1);
    } else if conn.streams.iter().any(|(m, _, _)| *m == msid) {
        refuse(c, msid, in_use, "Stream is already in use");
    } else {
        return Some(StreamKey { server: (*conn.listener).index, app: app.name.clone(), name: name.to_owned() });
    }
    None
}

/// Starts the HLS output of a stream this connection now publishes, if its application
/// has `hls on`.
unsafe fn start_hls(c: *mut ngx_connection_t, msid: u32, name: &str) {
    let conn = &mut *conn_of(c);
    let (Some(app), listener) = (conn.app, &*conn.listener) else { return };
    let rc: &RtmpConf = &*listener.conf;
    let Some(cfg) = rc.hls.get(listener.index).and_then(|apps| apps.get(app)).and_then(Option::as_ref) else {
        return;
    };
    let mut seg = hls::Stream::new(cfg, name, hls::disk());
    log!(NGX_LOG_INFO, (*c).log, "hls: \"{name}\" to \"{}\"", seg.playlist_path());
    hls::log_notices((*c).log, &mut seg);
    conn.hls.push((msid, seg));
}

/// Completes the HLS output of a stream whose publisher stopped.
unsafe fn end_hls(c: *mut ngx_connection_t, msid: u32) {
    let conn = &mut *conn_of(c);
    if let Some(i) = conn.hls.iter().position(|(m, _)| *m == msid) {
        let (_, mut seg) = conn.hls.remove(i);
        seg.finish();
        hls::log_notices((*c).log, &mut seg);
    }
}

/// Starts the recorders of the application for a stream this connection now publishes
/// (`name`, `args`: as the client published it, for `on_record_done`).
unsafe fn start_record(c: *mut ngx_connection_t, msid: u32, stream: &str, name: &str, args: &str) {
    let conn = &mut *conn_of(c);
    let (Some(app), listener) = (conn.app, &*conn.listener) else { return };
    let rc: &RtmpConf = &*listener.conf;
    let confs = rec::of(rc, listener.index, app);
    if confs.is_empty() {
        return;
    }
    let recs = confs
        .iter()
        .enumerate()
        .map(|(idx, rcf)| Rec {
            r: crate::record::Recorder::new(rcf.cfg.clone(), stream, rec::Disk::default()),
            idx,
            name: name.to_owned(),
            args: args.to_owned(),
        })
        .collect();
    conn.records.push((msid, recs));
}

/// Gives a publisher's audio, video or metadata to its stream's recorders.
unsafe fn record_media(c: *mut ngx_connection_t, msid: u32, f: &Frame) {
    let conn = &mut *conn_of(c);
    let Some(at) = conn.records.iter().position(|(m, _)| *m == msid) else { return };
    let now = rec::now();
    for k in 0..conn.records[at].1.len() {
        conn.records[at].1[k].r.frame(f, &now);
        record_notices(c, msid, at, k);
    }
}

/// Completes the recordings of a stream whose publisher stopped.
unsafe fn end_record(c: *mut ngx_connection_t, msid: u32) {
    let conn = &mut *conn_of(c);
    let Some(at) = conn.records.iter().position(|(m, _)| *m == msid) else { return };
    for k in 0..conn.records[at].1.len() {
        conn.records[at].1[k].r.finish();
        record_notices(c, msid, at, k);
    }
    conn.records.remove(at);
}

/// Acts on what a recorder reports: log lines, `NetStream.Record.*` statuses to the
/// publisher (`record_notify`), `on_record_done` for every completed file.
unsafe fn record_notices(c: *mut ngx_connection_t, msid: u32, at: usize, k: usize) {
    let conn = &mut *conn_of(c);
    let r = &mut conn.records[at].1[k];
    let notices = r.r.take_notices();
    if notices.is_empty() {
        return;
    }
    let (id, notify) = (r.r.config().id.clone(), r.r.config().notify);
    let (idx, name, args) = (r.idx, r.name.clone(), r.args.clone());
    let listener = &*conn.listener;
    let rc: &RtmpConf = &*listener.conf;
    let rcf = conn.app.and_then(|app| rec::of(rc, listener.index, app).get(idx));
    let label = if id.is_empty() { String::new() } else { format!(" (recorder \"{id}\")") };
    for n in notices {
        let (level, code) = match &n {
            crate::record::Notice::Started { path } => {
                log!(NGX_LOG_INFO, (*c).log, "record{label}: \"{path}\"");
                ("status", "NetStream.Record.Start")
            }
            crate::record::Notice::Done { path } => {
                log!(NGX_LOG_INFO, (*c).log, "record{label}: \"{path}\" done");
                if let Some(rcf) = rcf {
                    if let Some(url) = &rcf.on_done {
                        let call = Call::RecordDone { recorder: &id, name: &name, path, args: &args };
                        notify_call(c, url, rcf.method, &call, None);
                    }
                }
                ("status", "NetStream.Record.Stop")
            }
            crate::record::Notice::Failed { why, .. } => {
                log!(NGX_LOG_ERR, (*c).log, "record{label}: {why}; this recording stops, the stream goes on");
                ("error", "NetStream.Record.Failed")
            }
        };
        if notify {
            conn.session.status(msid, level, code, &id);
            conn.drain_session();
        }
    }
}

/// Stream names become file names (HLS, recordings): no paths, no control characters.
/// (WHIP checks a name before its session starts.)
pub(super) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && !name.chars().any(|ch| ch == '/' || ch == '\\' || ch.is_control())
}

unsafe fn leave(c: *mut ngx_connection_t, id: ConnId, key: &StreamKey, role: Role) {
    let mut out = Vec::new();
    WORKER.with(|w| {
        let mut w = w.borrow_mut();
        match role {
            Role::Publisher => w.hub.unpublish(key, id, &mut out),
            Role::Player => w.hub.stop_play(key, id),
        }
    });
    if role == Role::Publisher {
        log!(NGX_LOG_INFO, (*c).log, "unpublish: \"{}/{}\"", key.app, key.name);
    } else {
        repace_publisher(key);
    }
    apply(c, out);
}

/// Delivers the hub's output: queues bytes and statuses, and schedules the writes.
unsafe fn apply(from: *mut ngx_connection_t, out: Vec<Out>) {
    if out.is_empty() {
        return;
    }
    if BATCH_READ.with(|b| b.get()) {
        // Delivered together at the end of the batch (see `on_batch_read`).
        DEFERRED.with(|d| d.borrow_mut().extend(out));
        return;
    }
    // Nothing below re-enters the worker state (no connection is closed here).
    WORKER.with(|w| unsafe { apply_to(&w.borrow().conns, from, out) });
}

unsafe fn apply_to(conns: &Slab<*mut ngx_connection_t>, from: *mut ngx_connection_t, out: impl IntoIterator<Item = Out>) {
    for o in out {
        let Some(tc) = conns.get(o.conn()) else { continue };
        let conn = &mut *conn_of(tc);
        if conn.close_now {
            continue;
        }
        let name_of = |conn: &Conn, msid: u32| {
            conn.streams.iter().find(|(m, _, _)| *m == msid).map(|(_, k, _)| k.name.clone()).unwrap_or_default()
        };
        let f = conn.fanout;
        let mut corked = false;
        match o {
            Out::Send(_, b) => {
                conn.queue(b);
                corked = conn.queued_live() < f.cork;
            }
            Out::Burst(_, v) => {
                conn.burst += v.len();
                conn.out.extend(v);
            }
            Out::Unpublished { .. } if conn.relay.is_some() => {
                // A push relay ends with its stream.
                conn.close_after_flush = true;
            }
            Out::Published { .. } if conn.relay.is_some() => {}
            Out::Unpublished { msid, .. } => {
                let name = name_of(conn, msid);
                conn.session.unpublished(msid, &name, f.publish_notify, f.play_restart);
                conn.drain_session();
                if !f.idle_streams {
                    // Without idle streams, players leave with their publisher.
                    conn.close_after_flush = true;
                }
            }
            Out::Published { msid, .. } => {
                let name = name_of(conn, msid);
                conn.session.published(msid, &name, f.publish_notify, f.play_restart);
                conn.drain_session();
            }
        }
        if conn.queued_live() > f.out_queue {
            log!(NGX_LOG_INFO, (*tc).log, "client too slow: more than {} messages queued (out_queue), dropping it", f.out_queue);
            conn.close_now = true;
            conn.out.clear();
            conn.burst = 0;
        }
        if tc != from && !corked {
            schedule_write(tc, conn);
        }
    }
}

/// Arranges for a connection's queue to be written: in this turn of the event loop
/// (a posted event), or after `merge_writes` so that more is written in one call.
unsafe fn schedule_write(c: *mut ngx_connection_t, conn: &mut Conn) {
    let delay = conn.fanout.merge_ms;
    if delay > 0 && !conn.close_now && !conn.close_after_flush && !BATCH_READ.with(|b| b.get()) {
        if conn.merge.timer_set() == 0 {
            // On the worker's grid of `delay` ms, not from now: every player's merged
            // write falls due in the same turn of the event loop, which then wakes once
            // per period instead of once per player.
            ngx_add_timer(&raw mut conn.merge, grid_delay(delay) as _);
        }
        return;
    }
    if write_soon(c, conn) {
        return;
    }
    let wev = (*c).write;
    if (*wev).posted() == 0 {
        ngx_post_event(wev, &raw mut ngx_posted_events);
    }
}

/// Puts a connection's queue in the batch written at the end of this turn of the event
/// loop. False if there are no batches (no io_uring): then write it on its own.
unsafe fn write_soon(c: *mut ngx_connection_t, conn: &mut Conn) -> bool {
    let refused = |e| {
        let e = std::io::Error::from_raw_os_error(e);
        log!(NGX_LOG_NOTICE, (*c).log, "io_uring unavailable ({e}): each player is written with its own writev");
    };
    if uring::capacity_or_open(refused) == 0 {
        return false;
    }
    if !conn.flush_soon {
        conn.flush_soon = true;
        FLUSH_SOON.with(|f| f.borrow_mut().push(conn.id));
        let ev = (&raw mut FLUSH_ALL).cast::<ngx_event_t>();
        if (*ev).posted() == 0 {
            ngx_post_event(ev, &raw mut ngx_posted_events);
        }
    }
    true
}

thread_local! {
    /// Connections whose queues are written together at the end of this turn of the
    /// event loop (`FLUSH_ALL`), in one io_uring submission.
    static FLUSH_SOON: RefCell<Vec<ConnId>> = const { RefCell::new(Vec::new()) };
    static BATCH: RefCell<uring::Batch> = RefCell::new(uring::Batch::default());
}

/// Posted when a connection joins `FLUSH_SOON`.
static mut FLUSH_ALL: core::mem::MaybeUninit<ngx_event_t> = core::mem::MaybeUninit::zeroed();

/// Buffers one `writev` takes from a queue.
const IOV_PER_WRITE: usize = 64;

unsafe extern "C" fn on_flush_all(_ev: *mut ngx_event_t) {
    let r = catch_unwind(AssertUnwindSafe(|| unsafe { flush_all() }));
    if r.is_err() {
        let log = (*(&raw mut FLUSH_ALL).cast::<ngx_event_t>()).log;
        log!(NGX_LOG_ALERT, log, "ngx-rtmp-rs: internal error (panic) while writing to players");
        // Those the panic left out are written on their own.
        let conns: Vec<*mut ngx_connection_t> = WORKER.with(|w| w.borrow().conns.iter().map(|(_, c)| c).collect());
        for c in conns {
            let conn = &mut *conn_of(c);
            if conn.flush_soon {
                conn.flush_soon = false;
                let wev = (*c).write;
                if (*wev).posted() == 0 {
                    ngx_post_event(wev, &raw mut ngx_posted_events);
                }
            }
        }
    }
}

/// Writes the queues of the connections in `FLUSH_SOON`, a few to a system call. What is
/// left in a queue after its write (more than one `writev` takes, or the socket's buffer
/// full) goes the way `flush` goes on.
unsafe fn flush_all() {
    let ids = FLUSH_SOON.with(|f| std::mem::take(&mut *f.borrow_mut()));
    let lookup = |id: ConnId| WORKER.with(|w| w.borrow().conns.get(id));
    BATCH.with(|b| {
        let mut batch = b.borrow_mut();
        let mut writing = Vec::with_capacity(uring::capacity());
        let mut outcomes = Vec::with_capacity(uring::capacity());
        for group in ids.chunks(uring::capacity().max(1)) {
            // First those to close, or with nothing to write, one by one: closing can
            // reach other connections' queues, which must not change once the batch
            // points into them.
            writing.clear();
            for &id in group {
                let Some(c) = lookup(id) else { continue };
                let conn = &mut *conn_of(c);
                conn.flush_soon = false;
                if conn.close_now || conn.out.is_empty() || uring::capacity() == 0 {
                    flush(c);
                } else {
                    writing.push((id, c, 0, (ptr::null(), 0)));
                }
            }
            batch.clear();
            for (_, c, total, at) in writing.iter_mut() {
                // (Still open: nothing ran since the pass above.)
                let conn = &*conn_of(*c);
                *total = conn.pending().map(<[u8]>::len).sum();
                *at = (conn.out.front().map_or(ptr::null(), |b| b.as_ptr()), conn.sent);
                batch.push((**c).fd, conn.pending());
            }
            outcomes.clear();
            if batch.len() > 0 {
                outcomes.extend(batch.submit());
                if uring::capacity() == 0 {
                    let log = (*(&raw mut FLUSH_ALL).cast::<ngx_event_t>()).log;
                    log!(NGX_LOG_ERR, log, "io_uring failed: each player is written with its own writev from now on");
                }
            }
            batch.clear();
            for (i, &(id, c, total, at)) in writing.iter().enumerate() {
                // An earlier one's close may have closed this one, or dropped it as too
                // slow (its queue emptied: nothing more goes to it).
                if lookup(id) != Some(c) {
                    continue;
                }
                let conn = &mut *conn_of(c);
                if (conn.out.front().map_or(ptr::null(), |b| b.as_ptr()), conn.sent) != at {
                    if !conn.close_now {
                        log!(NGX_LOG_ALERT, (*c).log, "ngx-rtmp-rs: a player's queue changed during its write (bug), closing it");
                    }
                    close(c);
                    continue;
                }
                match outcomes.get(i).copied().unwrap_or(uring::Wrote::NotMade) {
                    uring::Wrote::Bytes(n) => {
                        (*c).sent += n as i64;
                        conn.advance(n);
                        if n < total {
                            // The socket's buffer is full.
                            (*(*c).write).set_ready(0);
                            flushed(c);
                        } else if conn.out.is_empty() {
                            flushed(c);
                        } else {
                            flush(c);
                        }
                    }
                    uring::Wrote::Failed(e) => {
                        // (As `flush` takes writev's errors.)
                        let e = std::io::Error::from_raw_os_error(e);
                        match e.kind() {
                            std::io::ErrorKind::WouldBlock => {
                                (*(*c).write).set_ready(0);
                                flushed(c);
                            }
                            std::io::ErrorKind::Interrupted => {
                                flush(c);
                            }
                            _ => {
                                log!(NGX_LOG_INFO, (*c).log, "send failed: {e}");
                                close(c);
                            }
                        }
                    }
                    uring::Wrote::NotMade => {
                        flush(c);
                    }
                    uring::Wrote::Unknown => {
                        log!(NGX_LOG_ERR, (*c).log, "send failed: the batched write's outcome is unknown, closing");
                        close(c);
                    }
                }
            }
        }
    });
}

/// Milliseconds from now to the next multiple of `period` on the worker's clock (1 to
/// `period`). The worker's periodic work is put on this grid so that it falls due in the
/// turns of the event loop that batched reads and merged writes wake it for anyway.
pub(super) fn grid_delay(period: u64) -> u64 {
    let now = unsafe { ngx_current_msec } as u64;
    period - now % period
}

/// Writes what is queued. Returns false if the connection was closed.
unsafe fn flush(c: *mut ngx_connection_t) -> bool {
    let conn = &mut *conn_of(c);
    if conn.close_now {
        close(c);
        return false;
    }
    let wev = (*c).write;
    let mut sock = ManuallyDrop::new(TcpStream::from_raw_fd((*c).fd));
    while !conn.out.is_empty() {
        let mut slices = [IoSlice::new(&[]); IOV_PER_WRITE];
        let mut n = 0;
        for (slot, b) in slices.iter_mut().zip(conn.pending()) {
            *slot = IoSlice::new(b);
            n += 1;
        }
        match sock.write_vectored(&slices[..n]) {
            Ok(n) => {
                (*c).sent += n as i64;
                conn.advance(n);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                (*wev).set_ready(0);
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                log!(NGX_LOG_INFO, (*c).log, "send failed: {e}");
                close(c);
                return false;
            }
        }
    }
    flushed(c)
}

/// After a write: a queue written out lets its timer go (and its connection, if it was
/// to close then); a queue left has the send timeout run and waits for the socket.
/// Returns false if the connection was closed.
unsafe fn flushed(c: *mut ngx_connection_t) -> bool {
    let conn = &mut *conn_of(c);
    let wev = (*c).write;
    if conn.out.is_empty() {
        if (*wev).timer_set() != 0 {
            ngx_del_timer(wev);
        }
        if conn.close_after_flush {
            close(c);
            return false;
        }
    } else {
        ngx_add_timer(wev, conn.server().core.timeout as _);
    }
    if ngx_handle_write_event(wev, 0) != NGX_OK as isize {
        close(c);
        return false;
    }
    true
}

/// Closes a connection: leaves its streams (telling players a publisher left), frees it.
unsafe fn close(c: *mut ngx_connection_t) {
    if !(*c).data.is_null() {
        notify_close(c);
    }
    let data = core::mem::replace(&mut (*c).data, ptr::null_mut());
    if !data.is_null() {
        let mut conn = Box::from_raw(data as *mut Conn);
        WORKER.with(|w| {
            let mut w = w.borrow_mut();
            w.conns.remove(conn.id);
            w.stats.bytes_out_closed += (*c).sent as u64;
        });
        for (_, key, role) in std::mem::take(&mut conn.streams) {
            leave(c, conn.id, &key, role);
        }
        for (_, mut seg) in std::mem::take(&mut conn.hls) {
            seg.finish();
            hls::log_notices((*c).log, &mut seg);
        }
        for ev in [&raw mut conn.ping, &raw mut conn.idle, &raw mut conn.merge, &raw mut conn.batch, &raw mut conn.update] {
            if (*ev).timer_set() != 0 {
                ngx_del_timer(ev);
            }
        }
        if !conn.limit_zone.is_null() {
            shared::release(conn.limit_zone);
        }
    }
    free_connection(c);
}

unsafe fn free_connection(c: *mut ngx_connection_t) {
    let pool = (*c).pool;
    ngx_close_connection(c);
    ngx_destroy_pool(pool);
}

/// Appends ", client: ADDR, server: ADDR" to every log line about a connection.
unsafe extern "C" fn log_handler(log: *mut ngx_log_t, buf: *mut u_char, len: usize) -> *mut u_char {
    let c = (*log).data as *const ngx_connection_t;
    let out = core::slice::from_raw_parts_mut(buf, len);
    let mut cur = std::io::Cursor::new(out);
    let _ = write!(cur, ", client: {}, server: {}", (*c).addr_text, (*(*c).listening).addr_text);
    buf.add(cur.position() as usize)
}
