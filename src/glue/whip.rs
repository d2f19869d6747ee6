//! WHIP and WHEP in nginx: the `whip_publish` and `whep_play` content handler (RFC 9725's
//! POST, DELETE, OPTIONS, PATCH), the worker's sidecar (`crate::sidecar`) started in
//! `init_process` and joined in `exit_process`, and the eventfd through which the sidecar
//! wakes the event loop. A WHEP offer takes the same path with a play connection.
//!
//! A POST's offer is checked here (type, size, SDP, limits), then a socketpair is made:
//! the worker's end becomes an ordinary RTMP connection of the server that has the
//! application (with the WHIP client's address, so `allow`/`deny`, `on_publish` and
//! `/stat` see the browser), the other end goes to the sidecar with the offer. The request
//! waits (without holding the event loop) until the sidecar says the publish was
//! accepted (201 with the answer) or refused (the status and reason).

use core::ffi::c_void;
use core::ptr;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{FromRawFd, IntoRawFd};
use std::os::unix::net::UnixStream;
use std::panic::{catch_unwind, AssertUnwindSafe};

use ngx::ffi::{
    ngx_conf_t, ngx_connection_t, ngx_event_t, ngx_http_complex_value_t, ngx_http_finalize_request,
    ngx_http_read_client_request_body, ngx_http_request_t, ngx_http_run_posted_requests, ngx_int_t,
    ngx_list_push, ngx_pnalloc, ngx_str_t, ngx_table_elt_t, NGX_DONE, NGX_ERROR, NGX_HTTP_DELETE,
    NGX_HTTP_OPTIONS, NGX_HTTP_PATCH, NGX_HTTP_POST, NGX_HTTP_SPECIAL_RESPONSE, NGX_LOG_ERR, NGX_LOG_INFO,
    NGX_LOG_WARN, NGX_OK,
};

use super::addr::{client_ip, local_ip};
use super::loc::Publish;
use super::whip_adopt::accept_local;
use crate::conf::whip::Settings;
use crate::sidecar::{self, Cmd, Reply};
use crate::whip::{self, Path};

/// The `http {}` block's WHIP settings (nginx's main conf of our http module holds a
/// pointer to it; freed with the configuration's pool).
#[derive(Default)]
pub struct MainConf {
    pub settings: Settings,
    /// Which settings were written (a second one is a duplicate).
    pub set: Vec<&'static str>,
    /// A `whip_publish` was written: the workers start the sidecar.
    pub enabled: bool,
    /// The applications of the `whip_publish` directives, with where they were written.
    pub apps: Vec<(&'static str, String, String)>,
}

/// The worker's WHIP state (nginx's thread only).
#[derive(Default)]
struct Worker {
    sidecar: Option<sidecar::Handle>,
    /// Why there is no sidecar (for the 503s).
    unavailable: Option<String>,
    settings: Settings,
    /// Requests waiting for the sidecar, by our request id.
    pending: HashMap<u64, Pending>,
    next_req: u64,
    /// Live sessions, by session id.
    sessions: HashMap<String, Live>,
    wake: *mut ngx_connection_t,
    /// The other workers' pids, for the sidecar (updated at every tick).
    others: std::sync::Arc<std::sync::Mutex<Vec<u32>>>,
}

struct Pending {
    r: *mut ngx_http_request_t,
    ip: IpAddr,
    /// A WHEP session (plays) rather than WHIP (publishes).
    play: bool,
    /// The endpoint's path (the session URL is it + "/" + id), decoded as nginx compares
    /// it, and as the client wrote it (for `Location`).
    path: String,
    raw_path: String,
}

struct Live {
    ip: IpAddr,
    path: String,
    /// A WHEP session.
    play: bool,
}

thread_local! {
    static WORKER: RefCell<Worker> = RefCell::new(Worker::default());
}

macro_rules! log {
    ($level:expr, $log:expr, $($arg:tt)+) => {
        ngx::ngx_log_error!($level, $log, $($arg)+)
    };
}

unsafe extern "C" fn drop_main_conf(data: *mut c_void) {
    drop(Box::from_raw(data as *mut MainConf));
}

/// `create_main_conf`: a pointer-sized slot holding our boxed `MainConf`.
pub unsafe extern "C" fn create_main_conf(cf: *mut ngx_conf_t) -> *mut c_void {
    let slot = ngx::ffi::ngx_pcalloc((*cf).pool, core::mem::size_of::<*mut MainConf>()) as *mut *mut MainConf;
    let cln = ngx::ffi::ngx_pool_cleanup_add((*cf).pool, 0);
    if slot.is_null() || cln.is_null() {
        return ptr::null_mut();
    }
    let mc = Box::into_raw(Box::<MainConf>::default());
    (*cln).handler = Some(drop_main_conf);
    (*cln).data = mc as *mut c_void;
    *slot = mc;
    slot as *mut c_void
}

/// The `http {}` block's WHIP settings while a configuration is parsed.
pub unsafe fn main_conf_of(cf: *mut ngx_conf_t) -> &'static mut MainConf {
    let ctx = (*cf).ctx as *mut ngx::ffi::ngx_http_conf_ctx_t;
    &mut **(*(*ctx).main_conf.add(super::ngx_rtmp_http_module.ctx_index) as *mut *mut MainConf)
}

/// The running configuration's WHIP settings (none without an `http {}` block).
unsafe fn main_conf() -> Option<&'static MainConf> {
    main_conf_in(ngx::ffi::ngx_cycle as *mut ngx::ffi::ngx_cycle_t)
}

unsafe fn main_conf_in(cycle: *mut ngx::ffi::ngx_cycle_t) -> Option<&'static MainConf> {
    let ctx = *((*cycle).conf_ctx as *mut *mut c_void).add(ngx::ffi::ngx_http_module.index) as *mut ngx::ffi::ngx_http_conf_ctx_t;
    if ctx.is_null() {
        return None;
    }
    let slot = *(*ctx).main_conf.add(super::ngx_rtmp_http_module.ctx_index) as *mut *mut MainConf;
    (!slot.is_null() && !(*slot).is_null()).then(|| &**slot)
}

/// After the whole configuration is read: every `whip_publish` names an application of
/// the `rtmp {}` block. The error names the directive and where it was written.
pub unsafe fn check_apps(cycle: *mut ngx::ffi::ngx_cycle_t, rtmp: Option<&super::conf::RtmpConf>) -> Result<(), String> {
    let Some(mc) = main_conf_in(cycle) else { return Ok(()) };
    for (directive, app, at) in &mc.apps {
        let known = rtmp.is_some_and(|rc| rc.resolved.servers.iter().any(|s| s.apps.iter().any(|a| &a.name == app)));
        if !known {
            return Err(format!("\"{directive}\" names application \"{app}\", which no rtmp server has, in {at}"));
        }
    }
    Ok(())
}

/// Compiles `whip_publish`'s NAME (with variables).
pub unsafe fn compile_name(cf: *mut ngx_conf_t, directive: &str, value: *mut ngx_str_t) -> Result<*mut ngx_http_complex_value_t, String> {
    let cv = ngx::ffi::ngx_pcalloc((*cf).pool, core::mem::size_of::<ngx_http_complex_value_t>()) as *mut ngx_http_complex_value_t;
    if cv.is_null() {
        return Err("out of memory".into());
    }
    let mut ccv: ngx::ffi::ngx_http_compile_complex_value_t = core::mem::zeroed();
    ccv.cf = cf;
    ccv.value = value;
    ccv.complex_value = cv;
    if ngx::ffi::ngx_http_compile_complex_value(&mut ccv) != NGX_OK as isize {
        return Err(format!("invalid stream name in \"{directive}\" directive"));
    }
    Ok(cv)
}

// ---------------------------------------------------------------------------------------
// The worker's sidecar.

/// Every 500 ms: the other workers' pids go to the sidecar; a worker that shuts down
/// ends its WebRTC sessions (on a quit at once, after a reload when they end); a worker
/// that could not bind the UDP port (another program has it) tries again.
static mut TICK: core::mem::MaybeUninit<ngx_event_t> = core::mem::MaybeUninit::zeroed();
const TICK_MS: usize = 500;
/// After this long without the UDP port, a new worker says so in the error log (and
/// keeps trying: an old worker may hold it while it finishes).
const BIND_RETRY_MS: usize = 30_000;

pub unsafe fn init_process(cycle: *mut ngx::ffi::ngx_cycle_t) {
    // (nginx's cache manager and loader run init_process too: not theirs.)
    let process = ngx::ffi::ngx_process as u32;
    if process != ngx::ffi::NGX_PROCESS_WORKER && process != ngx::ffi::NGX_PROCESS_SINGLE {
        return;
    }
    let Some(mc) = main_conf() else { return };
    if !mc.enabled {
        return;
    }
    let log = (*cycle).log;
    // (Every worker binds the same port, SO_REUSEPORT: datagrams for another worker's
    // session are passed on to it, `sidecar`.)
    let settings = mc.settings.clone();
    WORKER.with(|w| w.borrow_mut().settings = settings);
    let _ = start(log);
    let ev = (&raw mut TICK).cast::<ngx_event_t>();
    (*ev).handler = Some(on_tick);
    (*ev).log = log;
    (*ev).set_cancelable(1);
    // (The tick's data: until when a busy port is tried again.)
    (*ev).data = (ngx::ffi::ngx_current_msec + BIND_RETRY_MS) as *mut c_void;
    ngx::ffi::ngx_add_timer(ev, TICK_MS as _);
}

unsafe extern "C" fn on_tick(ev: *mut ngx_event_t) {
    let _ = catch_unwind(AssertUnwindSafe(|| unsafe {
        if let Some(rc) = super::conf::rtmp_conf().filter(|rc| !rc.shared_zone.is_null()) {
            let pids: Vec<u32> = super::shared::other_workers(rc.shared_zone, ngx::ffi::ngx_pid as i64).into_iter().map(|p| p as u32).collect();
            WORKER.with(|w| {
                if let Ok(mut o) = w.borrow().others.lock() {
                    *o = pids;
                }
            });
        }
        let mut running = WORKER.with(|w| w.borrow().sidecar.is_some());
        if running && WORKER.with(|w| w.borrow().sidecar.as_ref().is_some_and(|s| s.is_finished())) {
            // The sidecar ended on its own (an internal error): what waited for it gets a
            // 503, and it starts again.
            log!(NGX_LOG_ERR, (*ev).log, "whip: the sidecar stopped; starting it again");
            stop(false);
            running = false;
        }
        if ngx::ffi::ngx_exiting != 0 || ngx::ffi::ngx_quit != 0 {
            let n = WORKER.with(|w| w.borrow().sessions.len());
            // On a reload, the sessions go on (the new workers share the UDP port and pass
            // their datagrams and DELETEs here) until they end; then the sidecar stops.
            if running && n > 0 && !super::worker::quitting() {
                if (*ev).data as usize != usize::MAX {
                    (*ev).data = usize::MAX as *mut c_void;
                    log!(NGX_LOG_INFO, (*ev).log, "whip: the worker is shutting down after a reload: its {n} WebRTC session(s) go on until they end");
                }
                ngx::ffi::ngx_add_timer(ev, TICK_MS as _);
                return;
            }
            if running {
                log!(NGX_LOG_INFO, (*ev).log, "whip: the worker is shutting down: ending its {n} WebRTC session(s)");
                stop(true);
            }
            return;
        }
        if !running {
            let deadline = (*ev).data as usize;
            let now = ngx::ffi::ngx_current_msec;
            if start((*ev).log).is_err() && now <= deadline && now + TICK_MS > deadline {
                let udp = WORKER.with(|w| w.borrow().settings.udp);
                log!(NGX_LOG_ERR, (*ev).log, "whip: UDP {udp} (whip_udp_listen) is still in use; WHIP answers 503 until it is free");
            }
        }
        ngx::ffi::ngx_add_timer(ev, TICK_MS as _);
    }));
}

/// Starts the sidecar (its eventfd, UDP socket and thread).
unsafe fn start(log: *mut ngx::ffi::ngx_log_t) -> Result<(), ()> {
    let (settings, retrying) = WORKER.with(|w| {
        let w = w.borrow();
        (w.settings.clone(), w.unavailable.is_some())
    });
    let udp = settings.udp;
    let efd = ngx::ffi::eventfd(0, (ngx::ffi::EFD_NONBLOCK | ngx::ffi::EFD_CLOEXEC) as i32);
    if efd < 0 {
        let e = std::io::Error::last_os_error();
        log!(NGX_LOG_ERR, log, "whip: eventfd() failed: {e}");
        WORKER.with(|w| w.borrow_mut().unavailable = Some("WHIP is not available (eventfd failed)".into()));
        return Err(());
    }
    let wake = File::from_raw_fd(efd);
    let Ok(theirs) = wake.try_clone() else { return Err(()) };
    let handle = match bind_shared(udp).and_then(|(sock, fwd)| sidecar::Handle::start(settings, sock, theirs, fwd)) {
        Ok(h) => h,
        Err(e) => {
            // Right after a reload the old worker may still hold the port for a moment.
            if !retrying {
                log!(NGX_LOG_WARN, log, "whip: cannot bind UDP {udp} (whip_udp_listen): {e}; trying again");
            }
            WORKER.with(|w| w.borrow_mut().unavailable = Some(format!("WHIP is not available yet: UDP {udp} is in use")));
            return Err(());
        }
    };
    let efd = wake.into_raw_fd();
    let c = ngx::ffi::ngx_get_connection(efd, log);
    if c.is_null() {
        drop(File::from_raw_fd(efd));
        handle.stop();
        return Err(());
    }
    (*(*c).read).handler = Some(on_wake);
    (*(*c).read).log = log;
    (*c).log = log;
    if ngx::ffi::ngx_handle_read_event((*c).read, 0) != NGX_OK as isize {
        ngx::ffi::ngx_close_connection(c);
        handle.stop();
        return Err(());
    }
    log!(NGX_LOG_INFO, log, "whip: sidecar started, UDP {}", handle.udp);
    WORKER.with(|w| {
        let mut w = w.borrow_mut();
        w.sidecar = Some(handle);
        w.unavailable = None;
        w.wake = c;
    });
    Ok(())
}

/// The UDP socket every worker binds (`SO_REUSEPORT`), and, when the worker has others
/// (the rtmp block's shared memory), its Unix datagram socket for datagrams they pass on.
unsafe fn bind_shared(udp: SocketAddr) -> std::io::Result<(std::net::UdpSocket, Option<sidecar::Forward>)> {
    extern "C" {
        fn socket(domain: i32, ty: i32, protocol: i32) -> i32;
        fn setsockopt(fd: i32, level: i32, name: i32, value: *const c_void, len: u32) -> i32;
        fn bind(fd: i32, addr: *const u8, len: u32) -> i32;
    }
    const SOL_SOCKET: i32 = 1;
    const SO_REUSEPORT: i32 = 15;
    const SOCK_DGRAM: i32 = 2;
    const SOCK_CLOEXEC: i32 = 0o2000000;
    let family = if udp.is_ipv4() { ngx::ffi::AF_INET } else { ngx::ffi::AF_INET6 } as i32;
    let fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let sock = std::net::UdpSocket::from_raw_fd(fd);
    let one: i32 = 1;
    let (sa, len) = super::notify::SockAddr::new(udp);
    if setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, (&raw const one).cast(), 4) != 0 || bind(fd, sa.0.as_ptr(), len) != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let Some(rc) = super::conf::rtmp_conf().filter(|rc| !rc.shared_zone.is_null()) else { return Ok((sock, None)) };
    let pid = ngx::ffi::ngx_pid as u32;
    let dir = rc.workers.socket_dir.clone();
    let path = format!("{dir}/ngx-rtmp-rs.{pid}.udp");
    let _ = std::fs::remove_file(&path);
    let fsock = std::os::unix::net::UnixDatagram::bind(&path)?;
    super::peer::private(&path)?;
    let others = WORKER.with(|w| w.borrow().others.clone());
    Ok((sock, Some(sidecar::Forward { pid, sock: fsock, dir, others })))
}

/// Stops the sidecar: its sessions end (their streams end in the worker), requests
/// waiting for it get a 503.
unsafe fn stop(exiting: bool) {
    let why: &[u8] = if exiting { b"the server is shutting down\n" } else { b"WHIP had an internal error, try again\n" };
    let pending = WORKER.with(|w| {
        let mut w = w.borrow_mut();
        w.unavailable = Some(String::from_utf8_lossy(why).trim().to_owned());
        w.sessions.clear();
        core::mem::take(&mut w.pending)
    });
    exit_process();
    for (_, p) in pending {
        let rc = respond(p.r, 503, "text/plain", &[], why);
        finish(p.r, rc);
    }
}

pub unsafe fn exit_process() {
    let (handle, wake) = WORKER.with(|w| {
        let mut w = w.borrow_mut();
        (w.sidecar.take(), core::mem::replace(&mut w.wake, ptr::null_mut()))
    });
    if let Some(h) = handle {
        h.stop();
    }
    if !wake.is_null() {
        ngx::ffi::ngx_close_connection(wake);
    }
    if let Some(rc) = super::conf::rtmp_conf().filter(|rc| !rc.shared_zone.is_null()) {
        let pid = ngx::ffi::ngx_pid;
        let _ = std::fs::remove_file(format!("{}/ngx-rtmp-rs.{pid}.udp", rc.workers.socket_dir));
    }
}

/// The sidecar has replies.
unsafe extern "C" fn on_wake(ev: *mut ngx_event_t) {
    let c = (*ev).data as *mut ngx_connection_t;
    let r = catch_unwind(AssertUnwindSafe(|| unsafe {
        let mut counter = [0u8; 8];
        // (Non-blocking: reading resets the counter; nothing to read is fine.)
        let _ = std::io::Read::read(&mut *core::mem::ManuallyDrop::new(File::from_raw_fd((*c).fd)), &mut counter);
        let replies = WORKER.with(|w| w.borrow().sidecar.as_ref().map(|s| s.replies()).unwrap_or_default());
        for reply in replies {
            handle_reply((*c).log, reply);
        }
    }));
    if r.is_err() {
        log!(ngx::ffi::NGX_LOG_ALERT, (*c).log, "ngx-rtmp-rs: internal error (panic) handling the WHIP sidecar's replies");
    }
}

unsafe fn handle_reply(log: *mut ngx::ffi::ngx_log_t, reply: Reply) {
    match reply {
        Reply::Answer { req, session, sdp } => {
            let Some(p) = WORKER.with(|w| w.borrow_mut().pending.remove(&req)) else { return };
            let location = format!("{}/{}", p.raw_path, session);
            let (what, doing) = if p.play { ("whep", "playing") } else { ("whip", "publishing") };
            log!(NGX_LOG_INFO, (*(*p.r).connection).log, "{what}: session {session} {doing} ({})", p.path);
            WORKER.with(|w| w.borrow_mut().sessions.insert(session.clone(), Live { ip: p.ip, path: p.path.clone(), play: p.play }));
            let links = WORKER.with(|w| whip::link_headers(&w.borrow().settings.ice_servers));
            let r = p.r;
            let mut headers: Vec<(&'static str, String)> = vec![("Location", location), ("ETag", format!("\"{session}\""))];
            headers.extend(links.into_iter().map(|l| ("Link", l)));
            let rc = respond(r, 201, "application/sdp", &headers, sdp.as_bytes());
            finish(r, rc);
        }
        Reply::Refused { req, status, reason } => {
            let Some(p) = WORKER.with(|w| w.borrow_mut().pending.remove(&req)) else { return };
            log!(NGX_LOG_INFO, (*(*p.r).connection).log, "{}: offer refused ({status}): {reason}", if p.play { "whep" } else { "whip" });
            // (409: the stream is busy (WHIP) or not live yet (WHEP): worth trying again.)
            let retry = if status == 409 { vec![("Retry-After", "2".to_owned())] } else { Vec::new() };
            let rc = respond(p.r, status as usize, "text/plain", &retry, format!("{reason}\n").as_bytes());
            finish(p.r, rc);
        }
        Reply::Ended { session, why, play } => {
            WORKER.with(|w| w.borrow_mut().sessions.remove(&session));
            log!(NGX_LOG_INFO, log, "{}: session {session} ended: {why}", if play { "whep" } else { "whip" });
        }
        Reply::Log(m) => {
            log!(NGX_LOG_WARN, log, "{m}");
        }
        Reply::Info(m) => {
            log!(NGX_LOG_INFO, log, "{m}");
        }
    }
}

/// Ends a request answered outside its handler.
unsafe fn finish(r: *mut ngx_http_request_t, rc: ngx_int_t) {
    let c = (*r).connection;
    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}

// ---------------------------------------------------------------------------------------
// The HTTP side.

unsafe fn header(h: *mut ngx_table_elt_t) -> Option<String> {
    (!h.is_null()).then(|| String::from_utf8_lossy((*h).value.as_bytes()).into_owned())
}

/// Adds a response header (its value copied to the request's pool).
unsafe fn add_header(r: *mut ngx_http_request_t, key: &'static str, value: &str) -> bool {
    let h = ngx_list_push(&mut (*r).headers_out.headers) as *mut ngx_table_elt_t;
    let mem = ngx_pnalloc((*r).pool, value.len().max(1)) as *mut u8;
    if h.is_null() || mem.is_null() {
        return false;
    }
    ptr::copy_nonoverlapping(value.as_ptr(), mem, value.len());
    (*h).hash = 1;
    (*h).key = ngx_str_t { len: key.len(), data: key.as_ptr() as *mut u8 };
    (*h).value = ngx_str_t { len: value.len(), data: mem };
    (*h).lowcase_key = ptr::null_mut();
    true
}

/// CORS for browsers on other origins (RFC 9725 section 4.2: the endpoint is meant to be
/// reached from any page).
const CORS: &[(&str, &str)] = &[
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Expose-Headers", "Location, ETag, Link, Accept-Post"),
];

unsafe fn respond(r: *mut ngx_http_request_t, status: usize, content_type: &'static str, headers: &[(&'static str, String)], body: &[u8]) -> ngx_int_t {
    for (k, v) in CORS {
        add_header(r, k, v);
    }
    for (k, v) in headers {
        if !add_header(r, k, v) {
            return NGX_ERROR as isize;
        }
    }
    super::respond::respond(r, status, content_type, body)
}

/// Ends this worker's session `id` if it is the one at `uri` (a DELETE).
pub fn delete_local(id: &str, uri: &str) -> bool {
    let known = whip::is_session_id(id) && WORKER.with(|w| w.borrow().sessions.get(id).is_some_and(|s| format!("{}/{}", s.path, id) == uri));
    if known {
        WORKER.with(|w| {
            let mut w = w.borrow_mut();
            w.sessions.remove(id);
            if let Some(s) = &w.sidecar {
                s.send(Cmd::Delete { session: id.to_owned() });
            }
        });
    }
    known
}

/// The `whip_publish` location's content handler.
pub unsafe extern "C" fn handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    super::respond::guarded(r, || unsafe { handle(r) })
}

unsafe fn handle(r: *mut ngx_http_request_t) -> ngx_int_t {
    let Some(publish) = super::loc::whip_publish(r) else { return ngx::ffi::NGX_DECLINED as isize };
    let word = if publish.play { "whep" } else { "whip" };
    let uri = String::from_utf8_lossy((*r).uri.as_bytes()).into_owned();
    let method = (*r).method as u32;
    let allow = |r, methods: &str| respond(r, 405, "text/plain", &[("Allow", methods.into())], b"method not allowed\n");
    match whip::parse_path(&uri, word) {
        Path::Endpoint { name } => match method {
            NGX_HTTP_OPTIONS => {
                discard(r);
                respond(r, 204, "text/plain", &[
                    ("Access-Control-Allow-Methods", "POST, DELETE, OPTIONS".into()),
                    ("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match".into()),
                    ("Access-Control-Max-Age", "86400".into()),
                    ("Accept-Post", "application/sdp".into()),
                ], b"")
            }
            NGX_HTTP_POST => post(r, publish, name.to_owned(), uri.clone()),
            _ => {
                discard(r);
                allow(r, "POST, OPTIONS")
            }
        },
        Path::Session { id, .. } => {
            discard(r);
            match method {
                NGX_HTTP_DELETE => {
                    if delete_local(id, &uri) {
                        log!(NGX_LOG_INFO, (*(*r).connection).log, "{word}: session {id} ended by DELETE");
                        return respond(r, 200, "text/plain", &[], b"");
                    }
                    // Another worker's session (its id begins with that worker's pid)?
                    let theirs = whip::is_session_id(id) && sidecar::worker_of(id).is_some_and(|pid| pid != ngx::ffi::ngx_pid as u32);
                    let Some(rc) = super::conf::rtmp_conf().filter(|_| theirs) else {
                        return respond(r, 404, "text/plain", &[], b"no such WHIP session\n");
                    };
                    (*(*r).main).set_count((*(*r).main).count() + 1);
                    let (log, id2) = ((*(*r).connection).log, id.to_owned());
                    let done = Box::new(move |answers: Vec<Result<crate::app::Answer, String>>| {
                        let found = answers.iter().any(|a| matches!(a, Ok(crate::app::Answer::Count(n)) if *n > 0));
                        let rc = super::respond::guarded(r, || unsafe {
                            if found {
                                log!(NGX_LOG_INFO, log, "{word}: session {id2} (of another worker) ended by DELETE");
                                respond(r, 200, "text/plain", &[], b"")
                            } else {
                                respond(r, 404, "text/plain", &[], b"no such WHIP session\n")
                            }
                        });
                        ngx::ffi::ngx_http_finalize_request(r, rc);
                    });
                    let query = format!("id={id}&uri={}", uri.replace('%', "%25").replace('&', "%26").replace('+', "%2B"));
                    if super::peer_control::ask_others(rc, "whip-delete", "session", &query, done) {
                        return NGX_DONE as isize;
                    }
                    (*(*r).main).set_count((*(*r).main).count() - 1);
                    respond(r, 404, "text/plain", &[], b"no such WHIP session\n")
                }
                NGX_HTTP_OPTIONS => respond(r, 204, "text/plain", &[
                    ("Access-Control-Allow-Methods", "DELETE, OPTIONS".into()),
                    ("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match".into()),
                ], b""),
                // Trickle ICE and ICE restarts are not supported: we are ICE-lite and our
                // answer carries our one candidate (RFC 9725 section 4.3.1 allows 405).
                NGX_HTTP_PATCH => allow(r, "DELETE, OPTIONS"),
                _ => allow(r, "DELETE, OPTIONS"),
            }
        }
        Path::Other => {
            discard(r);
            let why = if publish.play { "not a WHEP endpoint: POST to .../STREAM/whep\n" } else { "not a WHIP endpoint: POST to .../STREAM/whip\n" };
            respond(r, 404, "text/plain", &[], why.as_bytes())
        }
    }
}

unsafe fn discard(r: *mut ngx_http_request_t) {
    ngx::ffi::ngx_http_discard_request_body(r);
}

unsafe fn post(r: *mut ngx_http_request_t, publish: &'static Publish, path_name: String, uri: String) -> ngx_int_t {
    let ct = header((*r).headers_in.content_type).unwrap_or_default();
    if !whip::is_sdp(&ct) {
        discard(r);
        return respond(r, 415, "text/plain", &[("Accept-Post", "application/sdp".into())], b"the offer must be Content-Type: application/sdp\n");
    }
    let (max_sdp, unavailable) = WORKER.with(|w| {
        let w = w.borrow();
        (w.settings.max_sdp, if w.sidecar.is_none() { Some(w.unavailable.clone().unwrap_or_else(|| "WHIP is not available in this worker".into())) } else { None })
    });
    if let Some(why) = unavailable {
        discard(r);
        return respond(r, 503, "text/plain", &[], format!("{why}\n").as_bytes());
    }
    let length = (*r).headers_in.content_length_n;
    if length > max_sdp as i64 {
        discard(r);
        return respond(r, 413, "text/plain", &[], format!("the offer is larger than whip_max_sdp ({max_sdp} bytes)\n").as_bytes());
    }
    // The name: NAME (with variables) or the path's.
    let name = if publish.name.is_null() {
        path_name
    } else {
        let mut v: ngx_str_t = core::mem::zeroed();
        if ngx::ffi::ngx_http_complex_value(r, publish.name, &mut v) != NGX_OK as isize {
            return ngx::ffi::NGX_HTTP_INTERNAL_SERVER_ERROR as isize;
        }
        String::from_utf8_lossy(v.as_bytes()).into_owned()
    };
    // The request's context until the body is read (freed with the request's pool).
    let cln = ngx::ffi::ngx_pool_cleanup_add((*r).pool, 0);
    if cln.is_null() {
        return NGX_ERROR as isize;
    }
    let unparsed = String::from_utf8_lossy((*r).unparsed_uri.as_bytes()).into_owned();
    let raw_path = unparsed.split('?').next().unwrap_or("").trim_end_matches('/').to_owned();
    let ctx = Box::into_raw(Box::new(PostCtx { publish, name, uri, raw_path, req: 0 }));
    (*cln).handler = Some(drop_post_ctx);
    (*cln).data = ctx as *mut c_void;
    *(*r).ctx.add(super::ngx_rtmp_http_module.ctx_index) = ctx as *mut c_void;
    let rc = ngx_http_read_client_request_body(r, Some(body_read));
    if rc >= NGX_HTTP_SPECIAL_RESPONSE as isize {
        return rc;
    }
    NGX_DONE as isize
}

struct PostCtx {
    publish: &'static Publish,
    name: String,
    uri: String,
    /// The request's path as the client sent it (still percent-encoded), for `Location`.
    raw_path: String,
    /// Its id among the requests waiting for the sidecar (0: not waiting).
    req: u64,
}

/// The request is freed (answered, or torn down by nginx, e.g. `worker_shutdown_timeout`):
/// it no longer waits for the sidecar.
unsafe extern "C" fn drop_post_ctx(data: *mut c_void) {
    let ctx = Box::from_raw(data as *mut PostCtx);
    if ctx.req != 0 {
        WORKER.with(|w| {
            if let Ok(mut w) = w.try_borrow_mut() {
                w.pending.remove(&ctx.req);
            }
        });
    }
}

/// The offer is read: check it, and hand it to the sidecar.
unsafe extern "C" fn body_read(r: *mut ngx_http_request_t) {
    let rc = super::respond::guarded(r, || unsafe { offer(r) });
    if rc != NGX_DONE as isize {
        ngx_http_finalize_request(r, rc);
    }
}

/// The request body, from memory or nginx's temporary file; None beyond `max`.
unsafe fn body(r: *mut ngx_http_request_t, max: usize) -> Option<Vec<u8>> {
    let rb = (*r).request_body;
    if rb.is_null() {
        return Some(Vec::new());
    }
    let mut out = Vec::new();
    let mut cl = (*rb).bufs;
    while !cl.is_null() {
        let b = (*cl).buf;
        if (*b).in_file() != 0 && !(*b).file.is_null() {
            let len = ((*b).file_last - (*b).file_pos) as usize;
            if out.len() + len > max {
                return None;
            }
            let f = core::mem::ManuallyDrop::new(File::from_raw_fd((*(*b).file).fd));
            let mut part = vec![0u8; len];
            std::os::unix::fs::FileExt::read_exact_at(&*f, &mut part, (*b).file_pos as u64).ok()?;
            out.extend_from_slice(&part);
        } else if !(*b).pos.is_null() {
            let len = (*b).last.offset_from((*b).pos) as usize;
            if out.len() + len > max {
                return None;
            }
            out.extend_from_slice(core::slice::from_raw_parts((*b).pos, len));
        }
        cl = (*cl).next;
    }
    Some(out)
}

unsafe fn offer(r: *mut ngx_http_request_t) -> ngx_int_t {
    let ctx = *(*r).ctx.add(super::ngx_rtmp_http_module.ctx_index) as *mut PostCtx;
    if ctx.is_null() {
        return ngx::ffi::NGX_HTTP_INTERNAL_SERVER_ERROR as isize;
    }
    let ctx = &mut *ctx;
    let c = (*r).connection;
    let settings = WORKER.with(|w| w.borrow().settings.clone());
    let Some(sdp) = body(r, settings.max_sdp) else {
        return respond(r, 413, "text/plain", &[], format!("the offer is larger than whip_max_sdp ({} bytes)\n", settings.max_sdp).as_bytes());
    };
    let offer = match whip::check_offer(&sdp) {
        Ok(o) => o,
        Err(why) => {
            log!(NGX_LOG_INFO, (*c).log, "whip: bad offer: {why}");
            return respond(r, 400, "text/plain", &[], format!("{why}\n").as_bytes());
        }
    };
    if !crate::app::valid_name(&ctx.name) {
        log!(NGX_LOG_INFO, (*c).log, "whip: refused the stream name \"{}\"", ctx.name.escape_debug());
        return respond(r, 400, "text/plain", &[], b"invalid stream name\n");
    }
    let token = match header((*r).headers_in.authorization) {
        None => None,
        Some(a) => match whip::bearer(&a) {
            Some(t) => Some(t.to_owned()),
            None => return respond(r, 401, "text/plain", &[("WWW-Authenticate", "Bearer".into())], b"Authorization must be \"Bearer TOKEN\"\n"),
        },
    };
    // Limits: sessions in all, and per client address (live and being set up), WHIP's and
    // WHEP's each their own (viewers behind one NAT are many more than publishers).
    let ip = client_ip(c);
    let play = ctx.publish.play;
    let (total, from_ip) = WORKER.with(|w| {
        let w = w.borrow();
        let live = w.sessions.values().filter(|s| s.play == play);
        let pending = w.pending.values().filter(|p| p.play == play);
        let total = live.clone().count() + pending.clone().count();
        let from_ip = live.filter(|s| s.ip == ip).count() + pending.filter(|p| p.ip == ip).count();
        (total, from_ip)
    });
    let (what, max, max_ip) = if play { ("whep", settings.whep_max_sessions, settings.whep_max_per_ip) } else { ("whip", settings.max_sessions, settings.max_per_ip) };
    if total >= max {
        log!(NGX_LOG_WARN, (*c).log, "{what}: refused, {what}_max_sessions ({max}) reached");
        let body = format!("too many {} sessions ({what}_max_sessions)\n", what.to_uppercase());
        return respond(r, 503, "text/plain", &[("Retry-After", "10".into())], body.as_bytes());
    }
    if from_ip >= max_ip {
        log!(NGX_LOG_WARN, (*c).log, "{what}: refused {ip}, {what}_max_sessions_per_ip ({max_ip}) reached");
        let body = format!("too many {} sessions from this address ({what}_max_sessions_per_ip)\n", what.to_uppercase());
        return respond(r, 429, "text/plain", &[("Retry-After", "10".into())], body.as_bytes());
    }
    // The address in the answer must be one the UDP socket receives on.
    let candidate = settings.candidate.unwrap_or_else(|| local_ip(c).to_canonical());
    let udp = settings.udp.ip();
    if candidate.is_ipv4() != udp.is_ipv4() {
        log!(NGX_LOG_ERR, (*c).log, "whip: the answer's address {candidate} is not of whip_udp_listen's family ({udp}): set whip_candidate");
        return respond(r, 503, "text/plain", &[], b"WHIP cannot answer over this address family (see whip_candidate)\n");
    }
    // The publish connection: ours is an RTMP client of the application's server.
    let (mine, theirs) = match UnixStream::pair() {
        Ok(p) => p,
        Err(e) => {
            log!(NGX_LOG_ERR, (*c).log, "whip: socketpair() failed: {e}");
            return respond(r, 503, "text/plain", &[], b"cannot start a session now\n");
        }
    };
    if mine.set_nonblocking(true).is_err() {
        return respond(r, 503, "text/plain", &[], b"cannot start a session now\n");
    }
    if let Err(why) = accept_local(mine.into_raw_fd(), &ctx.publish.app, c, ctx.publish.play) {
        log!(NGX_LOG_ERR, (*c).log, "whip: {why}");
        return respond(r, 500, "text/plain", &[], format!("{why}\n").as_bytes());
    }
    let host = header((*r).headers_in.host).unwrap_or_else(|| "localhost".into());
    let req = WORKER.with(|w| {
        let mut w = w.borrow_mut();
        w.next_req += 1;
        w.next_req
    });
    let mut name = ctx.name.clone();
    if ctx.publish.play {
        if let Some(r) = super::worker::whep_rendition(&ctx.publish.app, &name) {
            log!(NGX_LOG_INFO, (*c).log, "whep: \"{}/{name}\" has B-frames: the viewer plays its rendition \"{r}\" (transcode)", ctx.publish.app);
            name = r;
        }
    }
    let o = sidecar::Offer {
        req,
        sdp: String::from_utf8_lossy(&sdp).into_owned(),
        sprop: offer.sprop,
        audio: offer.audio,
        rtmp: theirs,
        app: ctx.publish.app.clone(),
        stream: whip::publish_name(&name, token.as_deref()),
        tc_url: format!("{}://{host}/{}", if ctx.publish.play { "whep" } else { "whip" }, ctx.publish.app),
        candidate,
        play: ctx.publish.play,
    };
    let sent = WORKER.with(|w| w.borrow().sidecar.as_ref().is_some_and(|s| s.send(Cmd::Offer(Box::new(o)))));
    if !sent {
        return respond(r, 503, "text/plain", &[], b"WHIP is not available in this worker\n");
    }
    let path = ctx.uri.trim_end_matches('/').to_owned();
    WORKER.with(|w| w.borrow_mut().pending.insert(req, Pending { r, ip, play: ctx.publish.play, path, raw_path: ctx.raw_path.clone() }));
    ctx.req = req;
    NGX_DONE as isize
}
