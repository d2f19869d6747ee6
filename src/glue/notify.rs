//! The HTTP client of the notify callbacks, in nginx's event loop: one non-blocking
//! connection per call (nginx's `ngx_event_connect_peer`), the request written as it
//! becomes writable, the reply read until its headers end (never more than a bound), the
//! whole call limited by `netcall_timeout`; a host name is first asked of nginx's
//! resolver when the server has a `resolver`. The outcome is handed to a closure from a
//! posted event, never from inside `start`, so the caller is not re-entered.
//!
//! A call owns itself (`c->data`); the client it is about may be gone by the time it ends,
//! which the closure checks.

use core::ffi::c_void;
use core::ptr;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};

use ngx::ffi::{
    ngx_add_timer, ngx_close_connection, ngx_connection_t, ngx_current_msec, ngx_cycle,
    ngx_event_connect_peer, ngx_event_get_peer, ngx_event_t, ngx_handle_read_event,
    ngx_handle_write_event, ngx_peer_connection_t, ngx_post_event, ngx_posted_events,
    ngx_resolver_t, ngx_str_t, AF_INET, AF_INET6, NGX_AGAIN,
    NGX_LOG_ALERT, NGX_OK,
};

use super::tls;
use crate::notify::{parse_reply, Outcome, Reply};

/// What the caller does with the outcome.
pub type Done = Box<dyn FnOnce(Outcome)>;

/// A `struct sockaddr_in`, `sockaddr_in6` or `sockaddr_un`, built by hand.
#[repr(C, align(8))]
pub(super) struct SockAddr(pub(super) [u8; 112]);

/// Where a connection goes.
#[derive(Clone, Copy, Debug)]
pub enum Dest<'a> {
    Ip(SocketAddr),
    /// A Unix socket's path (another worker's: `peer.rs`).
    Unix(&'a str),
}

/// Opens a non-blocking TCP connection to `addr` with nginx's `ngx_event_connect_peer`
/// (`name` is what nginx's own messages call it; connection errors are logged at
/// `log_error`). Returns the connection and whether it is connected already; None if it
/// failed at once (nginx logged why).
pub unsafe fn connect_peer(
    addr: Dest,
    name: &str,
    log: *mut ngx::ffi::ngx_log_t,
    log_error: ngx::ffi::ngx_connection_log_error_e,
) -> Option<(*mut ngx_connection_t, bool)> {
    let (mut sockaddr, socklen) = match addr {
        Dest::Ip(a) => SockAddr::new(a),
        Dest::Unix(path) => SockAddr::unix(path)?,
    };
    let mut name = ngx_str_t { len: name.len(), data: name.as_ptr() as *mut u8 };
    // (nginx reads these only during the call.)
    let mut pc: ngx_peer_connection_t = core::mem::zeroed();
    pc.sockaddr = (&raw mut sockaddr).cast();
    pc.socklen = socklen;
    pc.name = &mut name;
    pc.get = Some(ngx_event_get_peer);
    pc.log = log;
    pc.set_log_error(log_error);
    let rc = ngx_event_connect_peer(&mut pc);
    (rc == NGX_OK as isize || rc == NGX_AGAIN as isize).then_some((pc.connection, rc == NGX_OK as isize))
}

impl SockAddr {
    /// (A path longer than `sun_path`'s 107 bytes: None.)
    fn unix(path: &str) -> Option<(SockAddr, u32)> {
        let mut b = [0u8; 112];
        if path.len() > 107 || path.contains('\0') {
            return None;
        }
        b[..2].copy_from_slice(&(ngx::ffi::AF_UNIX as u16).to_ne_bytes());
        b[2..2 + path.len()].copy_from_slice(path.as_bytes());
        Some((SockAddr(b), (2 + path.len() + 1) as u32))
    }

    pub(super) fn new(addr: SocketAddr) -> (SockAddr, u32) {
        let mut b = [0u8; 112];
        b[2..4].copy_from_slice(&addr.port().to_be_bytes());
        match addr {
            SocketAddr::V4(a) => {
                b[..2].copy_from_slice(&(AF_INET as u16).to_ne_bytes());
                b[4..8].copy_from_slice(&a.ip().octets());
                (SockAddr(b), 16)
            }
            SocketAddr::V6(a) => {
                b[..2].copy_from_slice(&(AF_INET6 as u16).to_ne_bytes());
                b[8..24].copy_from_slice(&a.ip().octets());
                (SockAddr(b), 28)
            }
        }
    }
}

struct Call {
    /// The connection, while it is open.
    conn: *mut ngx_connection_t,
    url: String,
    request: Vec<u8>,
    sent: usize,
    reply: Vec<u8>,
    limit: usize,
    timeout: u64,
    started: usize,
    outcome: Option<Outcome>,
    done: Option<Done>,
    /// `https://`: (server name, verify) until the TLS handshake starts, then kept for
    /// its check.
    tls: Option<(String, bool)>,
    tls_started: bool,
    /// A download: where a 200's body goes.
    sink: Option<Sink>,
    /// Posted when the call is over, to run `done` outside of whatever ended it.
    finished: ngx_event_t,
}

/// A download's file (`play http://...`).
struct Sink {
    path: String,
    /// Open once a 200 came, with that reply.
    file: Option<(std::fs::File, Reply)>,
    written: u64,
    /// `Content-Length`, when the reply has one.
    length: Option<u64>,
}

/// The most a download writes.
const MAX_DOWNLOAD: u64 = 64 << 30;

/// Where a call goes: an address, or a host name for nginx's resolver (`resolver`).
pub enum Target {
    Addr(SocketAddr),
    Name { resolver: *mut ngx_resolver_t, host: String, port: u16 },
}

/// Starts a call: `request` to `to` (`url` is for messages), at most `timeout` ms in all
/// (resolving, connecting, sending, reading), a reply's headers at most `limit` bytes.
pub unsafe fn start(to: Target, url: &str, request: Vec<u8>, timeout: u64, limit: usize, tls: Option<(String, bool)>, download: Option<String>, done: Done) {
    let p = Box::into_raw(Box::new(Call {
        conn: ptr::null_mut(),
        url: url.to_owned(),
        request,
        sent: 0,
        reply: Vec::new(),
        limit,
        timeout,
        started: ngx_current_msec,
        outcome: None,
        done: Some(done),
        tls,
        tls_started: false,
        sink: download.map(|path| Sink { path, file: None, written: 0, length: None }),
        finished: core::mem::zeroed(),
    }));
    let call = &mut *p;
    call.finished.handler = Some(on_finished);
    call.finished.data = p as *mut c_void;
    call.finished.log = (*ngx_cycle).log;
    match to {
        Target::Addr(addr) => connect(p, addr),
        Target::Name { resolver, host, port } => resolve(p, resolver, host, port),
    }
}

/// Asks nginx's resolver for the call's host; connects when it answers.
unsafe fn resolve(p: *mut Call, resolver: *mut ngx_resolver_t, host: String, port: u16) {
    let timeout = (*p).timeout;
    let answered = move |a: Result<SocketAddr, String>| unsafe {
        match a {
            Ok(addr) => connect(p, addr),
            Err(why) => finish(p, Err(why)),
        }
    };
    super::resolve::name(resolver, host, port, timeout, Box::new(answered));
}

/// Opens the call's connection and sends the request when it can.
unsafe fn connect(p: *mut Call, addr: SocketAddr) {
    let call = &mut *p;
    let log_error = ngx::ffi::ngx_connection_log_error_e_NGX_ERROR_INFO;
    let Some((c, connected)) = connect_peer(Dest::Ip(addr), &call.url, (*ngx_cycle).log, log_error) else {
        // nginx said why (connection refused, no free connections, ...).
        return finish(p, Err(format!("cannot connect to {}", call.url)));
    };
    call.conn = c;
    if call.tls.is_some() {
        // (nginx's TLS layer allocates from the connection's pool.)
        (*c).pool = ngx::ffi::ngx_create_pool(1024, (*ngx_cycle).log);
        if (*c).pool.is_null() {
            return finish(p, Err("out of memory".into()));
        }
    }
    (*c).data = p as *mut c_void;
    (*(*c).read).handler = Some(on_readable);
    (*(*c).write).handler = Some(on_writable);
    // One deadline for the whole call (resolving included), on the read event.
    let spent = ngx_current_msec.wrapping_sub(call.started) as u64;
    ngx_add_timer((*c).read, call.timeout.saturating_sub(spent).max(1) as _);
    if connected {
        ngx_post_event((*c).write, &raw mut ngx_posted_events);
    }
}

/// The error of a failed non-blocking connect, if any.
unsafe fn socket_error(c: *mut ngx_connection_t) -> Option<std::io::Error> {
    let mut err: i32 = 0;
    let mut len = core::mem::size_of::<i32>() as u32;
    let level = ngx::ffi::SOL_SOCKET as i32;
    if ngx::ffi::getsockopt((*c).fd, level, ngx::ffi::SO_ERROR as i32, (&raw mut err).cast(), &mut len) == -1 {
        return Some(std::io::Error::last_os_error());
    }
    (err != 0).then(|| std::io::Error::from_raw_os_error(err))
}

unsafe fn guarded(c: *mut ngx_connection_t, f: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(f)).is_err() {
        ngx::ngx_log_error!(NGX_LOG_ALERT, (*c).log, "ngx-rtmp-rs: internal error (panic) in a notify call");
        let p = (*c).data as *mut Call;
        if !p.is_null() && (*p).outcome.is_none() {
            finish(p, Err("internal error".into()));
        }
    }
}

unsafe extern "C" fn on_writable(wev: *mut ngx_event_t) {
    let c = (*wev).data as *mut ngx_connection_t;
    guarded(c, || unsafe { write(c) });
}

unsafe extern "C" fn on_readable(rev: *mut ngx_event_t) {
    let c = (*rev).data as *mut ngx_connection_t;
    guarded(c, || unsafe { read(c) });
}

unsafe fn write(c: *mut ngx_connection_t) {
    let p = (*c).data as *mut Call;
    let call = &mut *p;
    if call.sent < call.request.len() {
        if let Some(e) = socket_error(c) {
            return finish(p, Err(format!("cannot connect to {}: {e}", call.url)));
        }
        if !call.tls_started {
            if let Some((name, _)) = &call.tls {
                call.tls_started = true;
                let Some(ssl) = super::conf::rtmp_conf().and_then(|rc| rc.relay_ssl) else {
                    return finish(p, Err("no TLS context".into()));
                };
                match tls::start(ssl.as_ptr(), c, name, on_tls_done) {
                    tls::Handshake::Again => return,
                    tls::Handshake::Done => {
                        if let Err(why) = tls_checked(c, call) {
                            return finish(p, Err(why));
                        }
                    }
                    tls::Handshake::Failed(why) => return finish(p, Err(format!("{why} with {}", call.url))),
                }
            }
        }
        let send = (*c).send.expect("nginx sets send on peer connections");
        while call.sent < call.request.len() {
            let rest = &call.request[call.sent..];
            let n = send(c, rest.as_ptr() as *mut u8, rest.len());
            if n > 0 {
                call.sent += n as usize;
            } else if n == NGX_AGAIN as isize {
                if ngx_handle_write_event((*c).write, 0) != NGX_OK as isize {
                    finish(p, Err("event error".into()));
                }
                return;
            } else {
                return finish(p, Err(format!("cannot send to {}", call.url)));
            }
        }
    }
    read(c);
}

/// nginx's TLS layer is done with the handshake: our handlers are back; checked, the
/// request goes.
unsafe extern "C" fn on_tls_done(c: *mut ngx_connection_t) {
    guarded(c, || unsafe {
        (*(*c).read).handler = Some(on_readable);
        (*(*c).write).handler = Some(on_writable);
        let p = (*c).data as *mut Call;
        match tls_checked(c, &*p) {
            Ok(()) => write(c),
            Err(why) => finish(p, Err(why)),
        }
    });
}

unsafe fn tls_checked(c: *mut ngx_connection_t, call: &Call) -> Result<(), String> {
    let (name, verify) = call.tls.as_ref().map_or(("", false), |(n, v)| (n.as_str(), *v));
    tls::check(c, name, verify).map_err(|why| format!("{why} with {}", call.url))
}

unsafe fn read(c: *mut ngx_connection_t) {
    let p = (*c).data as *mut Call;
    let call = &mut *p;
    if (*(*c).read).timedout() != 0 {
        if call.sink.is_some() {
            return finish(p, Err(format!("{} sent nothing for {} ms", call.url, call.timeout)));
        }
        return finish(p, Err(format!("no reply from {} within {} ms (netcall_timeout)", call.url, call.timeout)));
    }
    if call.sent < call.request.len() {
        // Not connected yet: only an error is news here.
        if let Some(e) = socket_error(c) {
            finish(p, Err(format!("cannot connect to {}: {e}", call.url)));
        }
        return;
    }
    let recv = (*c).recv.expect("nginx sets recv on peer connections");
    let mut buf = [0u8; 4096];
    if call.sink.as_ref().is_some_and(|s| s.file.is_some()) {
        return download(c, p);
    }
    loop {
        if call.reply.len() >= call.limit {
            return finish(p, Err(format!("reply headers from {} longer than {} bytes", call.url, call.limit)));
        }
        let room = buf.len().min(call.limit - call.reply.len());
        let n = recv(c, buf.as_mut_ptr(), room);
        if n > 0 {
            call.reply.extend_from_slice(&buf[..n as usize]);
            if let Some(outcome) = parse_reply(&call.reply, false) {
                if let (Some(sink), Ok(reply)) = (call.sink.as_mut(), &outcome) {
                    if reply.status == 200 {
                        return match body_starts(sink, &call.reply, reply) {
                            Ok(()) => download(c, p),
                            Err(why) => finish(p, Err(why)),
                        };
                    }
                }
                return finish(p, outcome);
            }
        } else if n == 0 {
            let outcome = parse_reply(&call.reply, true).unwrap_or_else(|| Err("empty reply".into()));
            return finish(p, outcome);
        } else if n == NGX_AGAIN as isize {
            if ngx_handle_read_event((*c).read, 0) != NGX_OK as isize {
                finish(p, Err("event error".into()));
            }
            return;
        } else {
            return finish(p, Err(format!("connection to {} failed", call.url)));
        }
    }
}

/// A download's 200 came: its file opens with what followed the headers.
fn body_starts(sink: &mut Sink, reply_bytes: &[u8], reply: &Reply) -> Result<(), String> {
    let end = reply_bytes.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4).unwrap_or(reply_bytes.len());
    let head = String::from_utf8_lossy(&reply_bytes[..end]);
    sink.length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok());
    let mut f = std::fs::File::create(&sink.path).map_err(|e| format!("cannot write {}: {e}", sink.path))?;
    std::io::Write::write_all(&mut f, &reply_bytes[end..]).map_err(|e| format!("cannot write {}: {e}", sink.path))?;
    sink.written = (reply_bytes.len() - end) as u64;
    sink.file = Some((f, reply.clone()));
    Ok(())
}

/// Reads a download's body into its file until the server closes (or `Content-Length`).
unsafe fn download(c: *mut ngx_connection_t, p: *mut Call) {
    let call = &mut *p;
    let recv = (*c).recv.expect("nginx sets recv on peer connections");
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let Some(sink) = call.sink.as_mut() else { return };
        let Some((file, reply)) = sink.file.as_mut() else { return };
        if sink.length.is_some_and(|l| sink.written >= l) {
            let reply = reply.clone();
            return finish(p, Ok(reply));
        }
        let n = recv(c, buf.as_mut_ptr(), buf.len());
        if n > 0 {
            if let Err(e) = std::io::Write::write_all(file, &buf[..n as usize]) {
                return finish(p, Err(format!("cannot write {}: {e}", sink.path)));
            }
            sink.written += n as u64;
            if sink.written > MAX_DOWNLOAD {
                return finish(p, Err(format!("a file over {MAX_DOWNLOAD} bytes")));
            }
            // (The read timeout is the time between reads now.)
            ngx_add_timer((*c).read, call.timeout as _);
        } else if n == 0 {
            if sink.length.is_some_and(|l| sink.written < l) {
                return finish(p, Err(format!("the file was cut at {} of {} bytes", sink.written, sink.length.unwrap_or(0))));
            }
            let reply = reply.clone();
            return finish(p, Ok(reply));
        } else if n == NGX_AGAIN as isize {
            if ngx_handle_read_event((*c).read, 0) != NGX_OK as isize {
                finish(p, Err("event error".into()));
            }
            return;
        } else {
            return finish(p, Err(format!("connection to {} failed", call.url)));
        }
    }
}

/// Ends a call: closes its connection and posts the delivery of the outcome.
unsafe fn finish(p: *mut Call, outcome: Outcome) {
    let call = &mut *p;
    let outcome = outcome.map_err(|why| {
        // Messages from the reply parser do not say whose reply it was.
        if why.contains(&call.url) { why } else { format!("{why} from {}", call.url) }
    });
    let c = core::mem::replace(&mut call.conn, ptr::null_mut());
    if !c.is_null() {
        (*c).data = ptr::null_mut();
        tls::shutdown(c);
        let pool = (*c).pool;
        ngx_close_connection(c);
        if !pool.is_null() {
            ngx::ffi::ngx_destroy_pool(pool);
        }
    }
    call.outcome = Some(outcome);
    ngx_post_event(&raw mut call.finished, &raw mut ngx_posted_events);
}

unsafe extern "C" fn on_finished(ev: *mut ngx_event_t) {
    let mut call = Box::from_raw((*ev).data as *mut Call);
    let log = (*ev).log;
    if let (Some(done), Some(outcome)) = (call.done.take(), call.outcome.take()) {
        if catch_unwind(AssertUnwindSafe(|| done(outcome))).is_err() {
            ngx::ngx_log_error!(NGX_LOG_ALERT, log, "ngx-rtmp-rs: internal error (panic) handling a notify reply");
        }
    }
}
