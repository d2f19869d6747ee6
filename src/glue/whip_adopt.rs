//! Sockets of ours that become RTMP clients: a WHIP or WHEP session's socketpair (the
//! worker's end, standing for the WebRTC client: its address, for `allow`/`deny`,
//! callbacks and `/stat`), and another worker's pull (`peer.rs`).

use core::ptr;
use std::os::fd::FromRawFd;

use ngx::ffi::{ngx_close_connection, ngx_connection_t, ngx_destroy_pool, ngx_log_t};

use super::conf::{listening_of, rtmp_conf};
use super::rtmp;
use crate::app::Kind;

/// Makes `fd` (the worker's end of a WHIP session's socketpair) an RTMP client connection
/// of the server that has application `app`, standing for the client of the HTTP
/// connection `http`.
///
/// # Safety
/// `fd` is an open socket the caller gives up; `http` is an open connection.
pub unsafe fn accept_local(fd: i32, app: &str, http: *mut ngx_connection_t, play: bool) -> Result<(), String> {
    let close_fd = |fd| drop(std::fs::File::from_raw_fd(fd));
    let Some(rc) = rtmp_conf() else {
        close_fd(fd);
        return Err("there is no rtmp {} block".into());
    };
    let Some(server) = rc.resolved.servers.iter().position(|s| s.apps.iter().any(|a| a.name == app)) else {
        close_fd(fd);
        return Err(format!("whip_publish: no rtmp application \"{app}\""));
    };
    let text = (*http).addr_text;
    let text = if text.data.is_null() { &[][..] } else { core::slice::from_raw_parts(text.data, text.len) };
    let sockaddr = core::slice::from_raw_parts((*http).sockaddr as *const u8, (*http).socklen as usize);
    let Some(ls) = listening_of(server) else {
        close_fd(fd);
        return Err(format!("rtmp server {} has no listening socket", server + 1));
    };
    adopt(fd, ls, sockaddr, text, if play { Kind::Whep } else { Kind::Whip })
}

/// Makes `fd` (a socket of ours: a WHIP session's socketpair, another worker's pull) an
/// RTMP client connection of the rtmp server of listening socket `ls`, with this address (`sockaddr`, as text
/// `text`) for logs, access rules and `/stat`.
///
/// # Safety
/// `fd` is an open socket the caller gives up.
/// (`ls` may be closed already: a worker shutting down still takes other workers' pulls.)
pub unsafe fn adopt(fd: i32, ls: *mut ngx::ffi::ngx_listening_t, sockaddr_in: &[u8], text: &[u8], kind: Kind) -> Result<(), String> {
    let close_fd = |fd| drop(std::fs::File::from_raw_fd(fd));
    let cycle = ngx::ffi::ngx_cycle;
    let c = ngx::ffi::ngx_get_connection(fd, (*cycle).log);
    if c.is_null() {
        close_fd(fd);
        return Err("no free connection (worker_connections)".into());
    }
    let pool = ngx::ffi::ngx_create_pool((*ls).pool_size, (*cycle).log);
    let log = if pool.is_null() { ptr::null_mut() } else { ngx::ffi::ngx_pcalloc(pool, core::mem::size_of::<ngx_log_t>()) as *mut ngx_log_t };
    let sockaddr = if pool.is_null() { ptr::null_mut() } else { ngx::ffi::ngx_pnalloc(pool, sockaddr_in.len()) as *mut u8 };
    let addr = if pool.is_null() { ptr::null_mut() } else { ngx::ffi::ngx_pnalloc(pool, text.len().max(1)) as *mut u8 };
    if log.is_null() || sockaddr.is_null() || addr.is_null() {
        if !pool.is_null() {
            ngx_destroy_pool(pool);
        }
        ngx_close_connection(c);
        return Err("out of memory".into());
    }
    *log = (*ls).log;
    (*c).pool = pool;
    (*c).log = log;
    (*(*c).read).log = log;
    (*(*c).write).log = log;
    (*c).recv = ngx::ffi::ngx_io.recv;
    (*c).send = ngx::ffi::ngx_io.send;
    (*c).recv_chain = ngx::ffi::ngx_io.recv_chain;
    (*c).send_chain = ngx::ffi::ngx_io.send_chain;
    ptr::copy_nonoverlapping(sockaddr_in.as_ptr(), sockaddr, sockaddr_in.len());
    (*c).sockaddr = sockaddr.cast();
    (*c).socklen = sockaddr_in.len() as _;
    ptr::copy_nonoverlapping(text.as_ptr(), addr, text.len());
    (*c).addr_text = ngx::ffi::ngx_str_t { len: text.len(), data: addr };
    (*c).listening = ls;
    (*c).number = core::sync::atomic::AtomicUsize::from_ptr(ngx::ffi::ngx_connection_counter as *mut usize)
        .fetch_add(1, core::sync::atomic::Ordering::SeqCst) as _;
    (*(*c).write).set_ready(1);
    rtmp::init(c, kind);
    Ok(())
}
