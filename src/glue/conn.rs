//! RTMP client connections in nginx's event loop: accept, read, time out, close.
//! The bytes go to the protocol core (its issue); for now a connection is held open,
//! its input drained, and closed after `timeout` without data.

use core::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

use ngx::ffi::{
    ngx_add_timer, ngx_close_connection, ngx_connection_t, ngx_destroy_pool, ngx_event_t,
    ngx_handle_read_event, ngx_log_t, u_char, NGX_AGAIN, NGX_LOG_ALERT, NGX_LOG_INFO, NGX_OK,
};

use super::block::Listener;
use super::limit;
use crate::conf::ResolvedServer;

/// Per-connection state, owned by `c->data`.
struct Conn {
    server: *const ResolvedServer,
    /// The `max_connections` zone this connection holds a slot in.
    limit_zone: *mut ngx::ffi::ngx_shm_zone_t,
}

macro_rules! log {
    ($level:expr, $log:expr, $($arg:tt)+) => {
        ngx::ngx_log_error!($level, $log, $($arg)+)
    };
}

/// The listening socket's handler: a new client.
pub unsafe extern "C" fn init_connection(c: *mut ngx_connection_t) {
    let r = catch_unwind(AssertUnwindSafe(|| unsafe {
        let listener = &*((*(*c).listening).servers as *const Listener);
        let server = &*listener.server;
        let zone = (*listener.conf).limit_zone;
        let log = (*c).log;
        (*log).connection = (*c).number;
        (*log).data = c as *mut c_void;
        (*log).handler = Some(log_handler);

        if let (Some(max), false) = (server.max_connections, zone.is_null()) {
            if !limit::acquire(zone, max) {
                log!(NGX_LOG_INFO, log, "max_connections ({max}) reached, closing client");
                free_connection(c);
                return;
            }
        }
        let limit_zone = if server.max_connections.is_some() { zone } else { core::ptr::null_mut() };
        (*c).data = Box::into_raw(Box::new(Conn { server, limit_zone })) as *mut c_void;
        log!(NGX_LOG_INFO, log, "client connected");

        (*(*c).read).handler = Some(on_read);
        (*(*c).write).handler = Some(on_write);
        ngx_add_timer((*c).read, server.core.timeout as _);
        if (*(*c).read).ready() != 0 {
            on_read((*c).read);
        } else if ngx_handle_read_event((*c).read, 0) != NGX_OK as isize {
            close(c);
        }
    }));
    if r.is_err() {
        panicked(c);
    }
}

unsafe extern "C" fn on_read(rev: *mut ngx_event_t) {
    let c = (*rev).data as *mut ngx_connection_t;
    let r = catch_unwind(AssertUnwindSafe(|| unsafe { read(c) }));
    if r.is_err() {
        panicked(c);
    }
}

unsafe extern "C" fn on_write(_wev: *mut ngx_event_t) {}

unsafe fn read(c: *mut ngx_connection_t) {
    let rev = (*c).read;
    if (*rev).timedout() != 0 {
        log!(NGX_LOG_INFO, (*c).log, "client timed out");
        close(c);
        return;
    }
    let conn = &*((*c).data as *const Conn);
    let recv = (*c).recv.expect("nginx sets recv on accepted connections");
    let mut buf = [0u8; 4096];
    loop {
        let n = recv(c, buf.as_mut_ptr(), buf.len());
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
        // Input is discarded until the RTMP protocol core is wired in.
        ngx_add_timer(rev, (*conn.server).core.timeout as _);
    }
    if ngx_handle_read_event(rev, 0) != NGX_OK as isize {
        close(c);
    }
}

/// Closes a connection that has our state.
unsafe fn close(c: *mut ngx_connection_t) {
    let data = core::mem::replace(&mut (*c).data, core::ptr::null_mut());
    if !data.is_null() {
        let conn = Box::from_raw(data as *mut Conn);
        if !conn.limit_zone.is_null() {
            limit::release(conn.limit_zone);
        }
    }
    free_connection(c);
}

unsafe fn free_connection(c: *mut ngx_connection_t) {
    let pool = (*c).pool;
    ngx_close_connection(c);
    ngx_destroy_pool(pool);
}

/// A panic in our code: log it and drop that one client, never the worker.
unsafe fn panicked(c: *mut ngx_connection_t) {
    log!(NGX_LOG_ALERT, (*c).log, "ngx-rtmp-rs: internal error (panic), closing client");
    if (*c).fd != -1 {
        close(c);
    }
}

/// Appends ", client: ADDR, server: ADDR" to every log line about a connection.
unsafe extern "C" fn log_handler(log: *mut ngx_log_t, buf: *mut u_char, len: usize) -> *mut u_char {
    use std::io::Write;
    let c = (*log).data as *const ngx_connection_t;
    let out = core::slice::from_raw_parts_mut(buf, len);
    let mut cur = std::io::Cursor::new(out);
    let _ = write!(cur, ", client: {}, server: {}", (*c).addr_text, (*(*c).listening).addr_text);
    buf.add(cur.position() as usize)
}
