//! The RTMP server's listening sockets: a new connection gets its `max_connections` slot
//! (or is closed), its log lines say who it is, and it becomes a client of the worker's
//! application.

use core::ffi::c_void;
use core::ptr;
use std::panic::{catch_unwind, AssertUnwindSafe};

use ngx::ffi::{ngx_connection_t, NGX_LOG_ALERT, NGX_LOG_INFO};

use super::addr::client_ip;
use super::clock::now;
use super::conf::Listener;
use super::conn::{free, log_handler, Conn};
use super::{shared, worker};
use crate::app::{Accept, Kind};

/// The listening socket's handler: a new client.
pub unsafe extern "C" fn init_connection(c: *mut ngx_connection_t) {
    if catch_unwind(AssertUnwindSafe(|| unsafe { init(c, Kind::Rtmp) })).is_err() {
        ngx::ngx_log_error!(NGX_LOG_ALERT, (*c).log, "ngx-rtmp-rs: internal error (panic), closing client");
        if (*c).fd != -1 && (*c).data.is_null() {
            free(c);
        }
    }
}

/// Makes connection `c` (accepted on one of our sockets, or a WHIP session's socketpair)
/// a client of the application.
pub unsafe fn init(c: *mut ngx_connection_t, kind: Kind) {
    let listener = &*((*(*c).listening).servers as *const Listener);
    let rc = &*listener.conf;
    let server = &rc.resolved.servers[listener.index];
    let zone = rc.shared_zone;
    let log = (*c).log;
    (*log).connection = (*c).number;
    (*log).data = c as *mut c_void;
    (*log).handler = Some(log_handler);
    // Resets and broken pipes from clients are their business: log them at info.
    (*c).set_log_error(ngx::ffi::ngx_connection_log_error_e_NGX_ERROR_INFO);

    // (Another worker's pull is not a connection of a client: it takes no slot.)
    let limit_zone = match (server.max_connections, zone.is_null()) {
        (Some(max), false) if kind != Kind::Peer => {
            if !shared::acquire(zone, max) {
                ngx::ngx_log_error!(NGX_LOG_INFO, log, "max_connections ({max}) reached, closing client");
                free(c);
                return;
            }
            zone
        }
        _ => ptr::null_mut(),
    };
    let timeout = server.core.timeout;
    let addr = String::from_utf8_lossy((*c).addr_text.as_bytes()).into_owned();
    let accepted = worker::with(|w| {
        // (WHIP sessions come through a socketpair, never through a proxy.)
        let proxy_protocol = listener.proxy_protocol && kind == Kind::Rtmp;
        let id = w.app.accept(Accept { server: listener.index, addr: &addr, ip: client_ip(c), number: (*c).number, kind, proxy_protocol }, &now());
        let conn = Conn::attach(c, id, timeout, &worker::HANDLERS, limit_zone);
        w.attach(id, c);
        conn.expect_input();
        w.drain();
        id
    });
    let Some(_) = accepted else {
        if !limit_zone.is_null() {
            shared::release(limit_zone);
        }
        return free(c);
    };
    // (What came with the connection is read at once.)
    if (*(*c).read).ready() != 0 {
        if let Some(conn) = Conn::of(c) {
            conn.post_read();
        }
    } else if let Some(conn) = Conn::of(c) {
        if !conn.wait_readable() {
            let id = conn.id;
            worker::with(|w| {
                w.app.close(id, &now());
                w.drain();
            });
        }
    }
}
