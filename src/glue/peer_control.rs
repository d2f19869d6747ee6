//! `/control` for every worker: the worker that takes the HTTP request acts on its own
//! clients, then asks each other worker of this nginx to do the same over its control
//! socket (`rtmp_socket_dir/ngx-rtmp-rs.PID.ctl`), without blocking: the request waits in
//! nginx's event loop for the answers (at most `WAIT_MS`), which are added up.
//!
//! On the socket: one line `SECTION\tMETHOD\tQUERY\n` in, one line out: `C N` (a count),
//! `P PATH` (a recording's path), `N` (no path), `E WHY` (an error).

use core::ffi::c_void;
use core::ptr;
use std::cell::RefCell;
use std::rc::Rc;

use ngx::ffi::{ngx_add_timer, ngx_connection_t, ngx_event_t, NGX_LOG_ALERT};

use super::conf::RtmpConf;
use super::shared;
use crate::app::control::{decode, encode};
use crate::app::Answer;

use super::peer::{accept4, close, sockaddr, socket, AF_UNIX, EAGAIN, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_STREAM};

extern "C" {
    fn connect(fd: i32, addr: *const u8, len: u32) -> i32;
    fn recv(fd: i32, buf: *mut u8, len: usize, flags: i32) -> isize;
    fn send(fd: i32, buf: *const u8, len: usize, flags: i32) -> isize;
}

const MSG_NOSIGNAL: i32 = 0x4000;
/// How long the answers of the other workers are waited for.
const WAIT_MS: usize = 2000;
/// The longest request or answer line.
const MAX_LINE: usize = 8192;

fn ctl_path(rc: &RtmpConf, pid: i32) -> String {
    format!("{}/ngx-rtmp-rs.{pid}.ctl", rc.workers.socket_dir)
}

/// A connection of ours (a request taken, or asked): what was read of its line.
struct Line {
    buf: Vec<u8>,
    /// A request asked of another worker: where its answer goes.
    asked: Option<Rc<RefCell<Gather>>>,
}

/// The answers a request waits for.
struct Gather {
    waiting: usize,
    answers: Vec<Result<Answer, String>>,
    done: Option<Box<dyn FnOnce(Vec<Result<Answer, String>>)>>,
}

impl Gather {
    fn one(&mut self, a: Option<Result<Answer, String>>) {
        if let Some(a) = a {
            self.answers.push(a);
        }
        self.waiting = self.waiting.saturating_sub(1);
        if self.waiting == 0 {
            if let Some(done) = self.done.take() {
                done(std::mem::take(&mut self.answers));
            }
        }
    }
}

thread_local! {
    static LISTENING: RefCell<Option<(*mut ngx_connection_t, String)>> = const { RefCell::new(None) };
}

/// The worker's control socket.
///
/// # Safety
/// From a worker's init_process.
pub unsafe fn init_process(cycle: *mut ngx::ffi::ngx_cycle_t, rc: &RtmpConf) {
    let log = (*cycle).log;
    let path = ctl_path(rc, ngx::ffi::ngx_pid);
    let fd = match super::peer::open(&path) {
        Ok(fd) => fd,
        Err(e) => {
            ngx::ngx_log_error!(NGX_LOG_ALERT, log, "ngx-rtmp-rs: cannot listen on {path} ({e}): /control on other workers will not reach this one");
            return;
        }
    };
    let c = ngx::ffi::ngx_get_connection(fd, log);
    if c.is_null() {
        close(fd);
        return;
    }
    (*(*c).read).handler = Some(on_accept);
    (*(*c).read).log = log;
    (*c).log = log;
    ngx::ffi::ngx_handle_read_event((*c).read, 0);
    LISTENING.with(|l| *l.borrow_mut() = Some((c, path)));
}

/// # Safety
/// From the worker's exit_process.
pub unsafe fn exit_process() {
    LISTENING.with(|l| {
        if let Some((c, path)) = l.borrow_mut().take() {
            ngx::ffi::ngx_close_connection(c);
            let _ = std::fs::remove_file(path);
        }
    });
}

unsafe fn attach(fd: i32, log: *mut ngx::ffi::ngx_log_t, line: Line) -> Option<*mut ngx_connection_t> {
    let c = ngx::ffi::ngx_get_connection(fd, log);
    if c.is_null() {
        close(fd);
        if let Some(g) = line.asked {
            g.borrow_mut().one(None);
        }
        return None;
    }
    (*c).data = Box::into_raw(Box::new(line)) as *mut c_void;
    (*(*c).read).handler = Some(on_read);
    (*(*c).read).log = log;
    (*(*c).write).log = log;
    (*c).log = log;
    ngx_add_timer((*c).read, WAIT_MS as _);
    if ngx::ffi::ngx_handle_read_event((*c).read, 0) != ngx::ffi::NGX_OK as isize {
        finish(c, None);
        return None;
    }
    Some(c)
}

unsafe extern "C" fn on_accept(rev: *mut ngx_event_t) {
    let c = (*rev).data as *mut ngx_connection_t;
    loop {
        let fd = accept4((*c).fd, ptr::null_mut(), ptr::null_mut(), SOCK_NONBLOCK | SOCK_CLOEXEC);
        if fd < 0 {
            return;
        }
        if let Some(n) = attach(fd, (*c).log, Line { buf: vec![], asked: None }) {
            on_read((*n).read);
        }
    }
}

/// A line comes (a request to answer, or an answer); or the time is over.
unsafe extern "C" fn on_read(rev: *mut ngx_event_t) {
    let c = (*rev).data as *mut ngx_connection_t;
    if (*rev).timedout() != 0 {
        return finish(c, None);
    }
    let line = &mut *((*c).data as *mut Line);
    let mut chunk = [0u8; 4096];
    loop {
        let n = recv((*c).fd, chunk.as_mut_ptr(), chunk.len(), 0);
        if n > 0 {
            line.buf.extend_from_slice(&chunk[..n as usize]);
            if line.buf.len() > MAX_LINE {
                return finish(c, None);
            }
            if let Some(end) = line.buf.iter().position(|&b| b == b'\n') {
                let text = line.buf[..=end].to_vec();
                return finish(c, Some(text));
            }
            continue;
        }
        if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(EAGAIN) {
            return;
        }
        // (End of file or an error before a whole line.)
        return finish(c, None);
    }
}

/// A connection is done: a request taken is answered, an answer goes to its request.
unsafe fn finish(c: *mut ngx_connection_t, text: Option<Vec<u8>>) {
    let line = Box::from_raw((*c).data as *mut Line);
    (*c).data = ptr::null_mut();
    match line.asked {
        Some(gather) => {
            ngx::ffi::ngx_close_connection(c);
            let answer = text.as_deref().and_then(decode);
            gather.borrow_mut().one(answer);
        }
        None => {
            if let Some(text) = text {
                let answer = std::panic::catch_unwind(|| answer_request(&text)).unwrap_or_else(|_| Err("internal error".into()));
                let out = encode(&answer);
                // (A line of a few bytes into a fresh local socket: sent whole.)
                send((*c).fd, out.as_ptr(), out.len(), MSG_NOSIGNAL);
            }
            ngx::ffi::ngx_close_connection(c);
        }
    }
}

/// Another worker's `/control` request, for this worker's clients.
fn answer_request(text: &[u8]) -> Result<Answer, String> {
    let text = std::str::from_utf8(text).map_err(|_| "not text")?.trim_end_matches('\n');
    let mut parts = text.splitn(3, '\t');
    let (section, method, query) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if section == "whip-delete" {
        // A DELETE that reached another worker, for a WHIP/WHEP session of this one.
        let arg = |name| crate::conf::http::arg(query, name).unwrap_or_default();
        return Ok(Answer::Count(super::whip::delete_local(&arg("id"), &arg("uri")) as usize));
    }
    super::worker::control(section, method, &|name| crate::conf::http::arg(query, name))
}

/// Asks every other worker of this nginx to do `/control/SECTION/METHOD?QUERY`; `done`
/// gets their answers (from nginx's event loop, possibly at once). False if there is no
/// other worker to ask (`done` is not called).
///
/// # Safety
/// From nginx's event loop.
pub unsafe fn ask_others(rc: &RtmpConf, section: &str, method: &str, query: &str, done: Box<dyn FnOnce(Vec<Result<Answer, String>>)>) -> bool {
    if rc.shared_zone.is_null() || [section, method, query].iter().any(|s| s.contains(['\n', '\t'])) {
        return false;
    }
    let others = shared::other_workers(rc.shared_zone, ngx::ffi::ngx_pid as i64);
    let request = format!("{section}\t{method}\t{query}\n");
    let log = (*ngx::ffi::ngx_cycle).log;
    let gather = Rc::new(RefCell::new(Gather { waiting: 1, answers: vec![], done: Some(done) }));
    let mut asked = 0;
    for pid in others {
        let Some((sa, len)) = sockaddr(&ctl_path(rc, pid as i32)) else { continue };
        let fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if fd < 0 {
            continue;
        }
        // (A local socket connects at once, or refuses: a worker gone, or too busy.)
        if connect(fd, sa.as_ptr(), len) != 0 || send(fd, request.as_ptr(), request.len(), MSG_NOSIGNAL) != request.len() as isize {
            close(fd);
            continue;
        }
        gather.borrow_mut().waiting += 1;
        if attach(fd, log, Line { buf: vec![], asked: Some(gather.clone()) }).is_none() {
            // (attach gave the answer up already, or closed the socket.)
            continue;
        }
        asked += 1;
    }
    if asked == 0 && gather.borrow().waiting <= 1 {
        gather.borrow_mut().done = None;
        return false;
    }
    // (The placeholder count taken above: the answers may all be in already.)
    gather.borrow_mut().one(None);
    true
}
