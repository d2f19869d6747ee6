//! Listening sockets for `listen` directives, created with nginx's own machinery so that
//! every worker accepts on them and `nginx -s reload` inherits them.

use core::ffi::c_void;
use core::mem::size_of;
use std::net::SocketAddr;

use ngx::ffi::{
    ngx_accept_log_error, ngx_conf_t, ngx_create_listening, ngx_sockaddr_t, sockaddr, socklen_t,
    AF_INET, AF_INET6,
};

use super::conf::Listener;
use crate::conf::listen::{Keepalive, Listen};

/// Writes `addr` as a C `sockaddr_in`/`sockaddr_in6` into `buf`; returns its length.
fn to_sockaddr(addr: &SocketAddr, buf: &mut ngx_sockaddr_t) -> socklen_t {
    // SAFETY: ngx_sockaddr_t is a plain union of socket address structs, large enough for
    // a sockaddr_in6; we write its bytes in the kernel's layout.
    let bytes = unsafe {
        core::slice::from_raw_parts_mut(buf as *mut ngx_sockaddr_t as *mut u8, size_of::<ngx_sockaddr_t>())
    };
    bytes.fill(0);
    bytes[2..4].copy_from_slice(&addr.port().to_be_bytes());
    match addr {
        SocketAddr::V4(a) => {
            bytes[0..2].copy_from_slice(&(AF_INET as u16).to_ne_bytes());
            bytes[4..8].copy_from_slice(&a.ip().octets());
            16
        }
        SocketAddr::V6(a) => {
            bytes[0..2].copy_from_slice(&(AF_INET6 as u16).to_ne_bytes());
            bytes[8..24].copy_from_slice(&a.ip().octets());
            bytes[24..28].copy_from_slice(&a.scope_id().to_ne_bytes());
            28
        }
    }
}

/// Registers one listening socket; `handler` takes its connections.
pub unsafe fn add(cf: *mut ngx_conf_t, listener: &Listener, l: &Listen, handler: unsafe extern "C" fn(*mut ngx::ffi::ngx_connection_t)) -> Result<(), String> {
    let mut sa: ngx_sockaddr_t = core::mem::zeroed();
    let len = to_sockaddr(&l.addr, &mut sa);
    let ls = ngx_create_listening(cf, &mut sa as *mut ngx_sockaddr_t as *mut sockaddr, len);
    if ls.is_null() {
        return Err(format!("could not create a listening socket for {}", l.addr));
    }
    let ls = &mut *ls;
    ls.set_addr_ntop(1);
    ls.handler = Some(handler);
    // nginx allocates little from a connection pool (its log, the address text); our
    // state lives in the application. A small pool keeps memory per client low.
    ls.pool_size = 1024;
    ls.logp = &raw mut (*(*cf).cycle).new_log;
    ls.log.data = &raw mut ls.addr_text as *mut c_void;
    ls.log.handler = Some(ngx_accept_log_error);
    ls.backlog = l.backlog;
    ls.rcvbuf = l.rcvbuf.unwrap_or(-1);
    ls.sndbuf = l.sndbuf.unwrap_or(-1);
    ls.set_wildcard(l.wildcard as u32);
    ls.set_ipv6only(l.ipv6only as u32);
    match l.so_keepalive {
        None => {}
        Some(Keepalive::On) => ls.set_keepalive(1),
        Some(Keepalive::Off) => ls.set_keepalive(2),
        Some(Keepalive::Tuned { idle, intvl, cnt }) => {
            ls.set_keepalive(1);
            ls.keepidle = idle as i32;
            ls.keepintvl = intvl as i32;
            ls.keepcnt = cnt as i32;
        }
    }
    ls.servers = listener as *const Listener as *mut c_void;
    if l.reuseport {
        // (nginx's event module copies it for each worker once the configuration is read,
        // `ngx_event_init_conf`: one socket per worker, each taking its own share.)
        ls.set_reuseport(1);
    }
    Ok(())
}
