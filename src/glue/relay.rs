//! A relay's outgoing connection (the application's relays: `crate::app::relay`): opened
//! with nginx's peer machinery, logged as a client of the server it belongs to.

use core::ffi::c_void;
use core::ptr;

use ngx::ffi::{ngx_close_connection, ngx_connection_t, ngx_destroy_pool, ngx_log_t};

use super::conf::listening_of;
use super::conn::log_handler;
use super::notify;
use crate::app::Connect;

/// Opens a connection to `to` for a relay of rtmp server `server`; returns it and whether
/// it is connected already.
///
/// # Safety
/// Called from nginx's event loop; the connection returned is ours to attach or close.
pub unsafe fn open(to: &Connect, addr: notify::Dest, server: usize) -> Result<(*mut ngx_connection_t, bool), String> {
    let cycle_log = (*ngx::ffi::ngx_cycle).log;
    // A relay that cannot reach its server, or loses it, is an error worth seeing.
    let log_error = ngx::ffi::ngx_connection_log_error_e_NGX_ERROR_ERR;
    let (c, connected) = notify::connect_peer(addr, &to.url, cycle_log, log_error).ok_or("cannot connect")?;
    let pool = ngx::ffi::ngx_create_pool(4096, cycle_log);
    let log = if pool.is_null() { ptr::null_mut() } else { ngx::ffi::ngx_pcalloc(pool, core::mem::size_of::<ngx_log_t>()) as *mut ngx_log_t };
    if log.is_null() {
        if !pool.is_null() {
            ngx_destroy_pool(pool);
        }
        ngx_close_connection(c);
        return Err("out of memory".into());
    }
    (*c).pool = pool;
    *log = *cycle_log;
    (*log).connection = (*c).number;
    (*log).data = c as *mut c_void;
    (*log).handler = Some(log_handler);
    (*c).log = log;
    (*(*c).read).log = log;
    (*(*c).write).log = log;
    // For log lines and /stat: the server it belongs to, and the address it goes to.
    (*c).listening = listening_of(server).unwrap_or(ptr::null_mut());
    let text = match addr {
        notify::Dest::Ip(a) => a.to_string(),
        notify::Dest::Unix(path) => format!("unix:{path}"),
    };
    let mem = ngx::ffi::ngx_pnalloc(pool, text.len()) as *mut u8;
    if !mem.is_null() {
        ptr::copy_nonoverlapping(text.as_ptr(), mem, text.len());
        (*c).addr_text = ngx::ffi::ngx_str_t { len: text.len(), data: mem };
    }
    Ok((c, connected))
}
