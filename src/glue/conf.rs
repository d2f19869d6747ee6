//! What the `rtmp {}` block leaves behind in nginx's cycle, and what a listening socket
//! points at. Plain holders: no behaviour of their own.

use std::sync::Arc;

use ngx::ffi::{ngx_resolver_t, ngx_shm_zone_t};

use crate::conf::resolved::Resolved;
use crate::conf::{Pos, Rtmp};

/// The parsed tree and what workers run with. Lives in the cycle's pool (dropped with
/// the cycle); never changed after the block is parsed.
#[derive(Default)]
pub struct RtmpConf {
    pub tree: Rtmp,
    /// The servers and applications resolved (shared with each worker's application).
    pub resolved: Arc<Resolved>,
    /// What each listening socket points at (`ls->servers`): boxed, so the addresses
    /// nginx holds stay valid while the vector grows.
    #[allow(clippy::vec_box)]
    pub listeners: Vec<Box<Listener>>,
    /// The module's shared memory (`shared.rs`): the connection count, the generation.
    pub shared_zone: *mut ngx_shm_zone_t,
    /// nginx resolvers made by `resolver` directives, where they were written.
    pub resolvers: Vec<(Pos, *mut ngx_resolver_t)>,
    /// The resolver of each server (its own or the `rtmp {}` block's; null: none).
    pub server_resolvers: Vec<*mut ngx_resolver_t>,
    /// The access log files, by `Resolved::access_files`' index (nginx's open files:
    /// nginx opens them, and reopens them on `nginx -s reopen`).
    pub access_files: Vec<*mut ngx::ffi::ngx_open_file_t>,
    /// The TLS client context of `rtmps://` relays (None: there are none).
    pub relay_ssl: Option<core::ptr::NonNull<ngx::ffi::ngx_ssl_t>>,
    /// `rtmp_auto_push`, `rtmp_auto_push_reconnect`, `rtmp_socket_dir` (top level).
    pub workers: crate::conf::workers::Workers,
}

/// A listening socket's view of the configuration.
pub struct Listener {
    pub conf: *const RtmpConf,
    /// The server's position in the `rtmp {}` block (streams are per server).
    pub index: usize,
    /// Its `listen` has `proxy_protocol`.
    pub proxy_protocol: bool,
}

/// The rtmp {} configuration of the running cycle (None without an rtmp block).
pub fn rtmp_conf() -> Option<&'static RtmpConf> {
    // SAFETY: the cycle's configuration outlives every use in a worker's handlers.
    unsafe {
        let ctx = (*ngx::ffi::ngx_cycle).conf_ctx as *mut *mut core::ffi::c_void;
        let rc = *ctx.add(super::ngx_rtmp_module.index) as *const RtmpConf;
        rc.as_ref()
    }
}

/// A listening socket of rtmp server `server` (for log lines and `/stat` of connections
/// that did not come through one: WHIP sessions, relays).
pub fn listening_of(server: usize) -> Option<*mut ngx::ffi::ngx_listening_t> {
    let rc = rtmp_conf()?;
    // SAFETY: the cycle's listening sockets; ours point at one of rc's listeners.
    unsafe {
        let all = &(*ngx::ffi::ngx_cycle).listening;
        let listening = core::slice::from_raw_parts_mut(all.elts as *mut ngx::ffi::ngx_listening_t, all.nelts);
        listening
            .iter_mut()
            .find(|l| rc.listeners.iter().any(|b| core::ptr::eq(&**b as *const Listener as *const core::ffi::c_void, l.servers) && b.index == server))
            .map(|l| l as *mut _)
    }
}
