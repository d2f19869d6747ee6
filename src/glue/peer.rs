//! The workers' side of `app/peer.rs`: the registry of who publishes what in the module's
//! shared memory (`shared.rs`), and each worker's Unix socket (one per rtmp server,
//! `rtmp_socket_dir/ngx-rtmp-rs.PID.SERVER.sock`) on which other workers' pulls are
//! accepted as `Kind::Peer` clients. The socket stays open until the worker exits, so an
//! old worker finishing after a reload still serves its streams to the new ones. Each
//! worker also writes its `/stat` snapshot beside its socket once a second
//! (`ngx-rtmp-rs.PID.stat`, `stat::wire`), so any worker answers `/stat` for all.

use core::ptr;
use std::cell::RefCell;

use ngx::ffi::{ngx_connection_t, ngx_event_t, ngx_shm_zone_t, NGX_LOG_ALERT, NGX_LOG_ERR};

use super::conf::RtmpConf;
use super::shared;
use crate::app::peer_table::Claim;
use super::whip_adopt::adopt;
use crate::app::{Kind, Peer, Workers};
use crate::conf::workers::Workers as Conf;
use crate::live::StreamKey;

// (The Unix socket calls, shared with `peer_control.rs`.)
extern "C" {
    pub(super) fn socket(domain: i32, ty: i32, protocol: i32) -> i32;
    fn bind(fd: i32, addr: *const u8, len: u32) -> i32;
    fn listen(fd: i32, backlog: i32) -> i32;
    pub(super) fn accept4(fd: i32, addr: *mut u8, len: *mut u32, flags: i32) -> i32;
    pub(super) fn close(fd: i32) -> i32;
}

pub(super) const AF_UNIX: i32 = 1;
pub(super) const SOCK_STREAM: i32 = 1;
pub(super) const SOCK_NONBLOCK: i32 = 0o4000;
pub(super) const SOCK_CLOEXEC: i32 = 0o2000000;
pub(super) const EAGAIN: i32 = 11;
const EINTR: i32 = 4;
const ECONNABORTED: i32 = 103;

/// The registry, as the application sees it.
pub struct Shm {
    zone: *mut ngx_shm_zone_t,
    pid: i64,
    conf: Conf,
}

impl Shm {
    pub fn new(rc: &RtmpConf) -> Shm {
        // SAFETY: the worker's pid, set before init_process.
        let pid = unsafe { ngx::ffi::ngx_pid } as i64;
        Shm { zone: rc.shared_zone, pid, conf: rc.workers.clone() }
    }
}

use crate::app::key_hash as hash;

impl Workers for Shm {
    fn claim(&mut self, key: &StreamKey) -> bool {
        // SAFETY: the module's zone, mapped in every worker.
        match unsafe { shared::claim(self.zone, hash(key), self.pid) } {
            Claim::Taken => true,
            Claim::Held(_) => false,
            Claim::Full => {
                // SAFETY: the cycle's log.
                let log = unsafe { (*ngx::ffi::ngx_cycle).log };
                ngx::ngx_log_error!(NGX_LOG_ERR, log, "ngx-rtmp-rs: too many streams published at once, \"{}/{}\" refused", key.app, key.name);
                false
            }
        }
    }

    fn release(&mut self, key: &StreamKey) {
        // SAFETY: as above.
        unsafe { shared::release_stream(self.zone, hash(key), self.pid) }
    }

    fn owner(&mut self, key: &StreamKey) -> Option<Peer> {
        // SAFETY: as above.
        let pid = unsafe { shared::owner(self.zone, hash(key), self.pid) }?;
        Some(Peer { pid: pid as i32, path: self.conf.socket(pid as i32, key.server) })
    }

    fn retry_ms(&self) -> u64 {
        self.conf.reconnect_ms
    }
}

/// This worker's listening Unix sockets: (connection, path).
struct Listening(Vec<(*mut ngx_connection_t, String)>);

thread_local! {
    static LISTENING: RefCell<Listening> = const { RefCell::new(Listening(Vec::new())) };
}

/// The worker's Unix sockets, one per rtmp server, in nginx's event loop.
///
/// # Safety
/// From a worker's init_process.
pub unsafe fn init_process(cycle: *mut ngx::ffi::ngx_cycle_t, rc: &RtmpConf) {
    if rc.shared_zone.is_null() {
        return;
    }
    let log = (*cycle).log;
    shared::add_worker(rc.shared_zone, ngx::ffi::ngx_pid as i64);
    for server in 0..rc.resolved.servers.len() {
        // (Its listening socket, kept: nginx forgets them when the worker shuts down.)
        let Some(ls) = super::conf::listening_of(server) else { continue };
        let path = rc.workers.socket(ngx::ffi::ngx_pid, server);
        match open(&path) {
            Ok(fd) => {
                let c = ngx::ffi::ngx_get_connection(fd, log);
                if c.is_null() {
                    close(fd);
                    let _ = std::fs::remove_file(&path);
                    ngx::ngx_log_error!(NGX_LOG_ALERT, log, "ngx-rtmp-rs: no connection for {path} (worker_connections)");
                    continue;
                }
                (*c).data = ls as *mut core::ffi::c_void;
                (*(*c).read).handler = Some(on_accept);
                (*(*c).read).log = log;
                (*c).log = log;
                if ngx::ffi::ngx_handle_read_event((*c).read, 0) != ngx::ffi::NGX_OK as isize {
                    ngx::ngx_log_error!(NGX_LOG_ALERT, log, "ngx-rtmp-rs: cannot wait on {path}");
                }
                LISTENING.with(|l| l.borrow_mut().0.push((c, path)));
            }
            Err(e) => {
                ngx::ngx_log_error!(
                    NGX_LOG_ALERT,
                    log,
                    "ngx-rtmp-rs: cannot listen on {path} ({e}): players on other workers will not see this worker's streams (rtmp_socket_dir)"
                );
            }
        }
    }
}

/// A Unix socket address (None: a path longer than `sun_path`).
pub(super) fn sockaddr(path: &str) -> Option<([u8; 110], u32)> {
    if path.len() > 107 {
        return None;
    }
    let mut sa = [0u8; 110];
    sa[..2].copy_from_slice(&(AF_UNIX as u16).to_ne_bytes());
    sa[2..2 + path.len()].copy_from_slice(path.as_bytes());
    Some((sa, (2 + path.len() + 1) as u32))
}

/// A listening Unix socket at `path` (an old one, of a worker gone, is replaced).
pub(super) fn open(path: &str) -> std::io::Result<i32> {
    let (sa, len) = sockaddr(path).ok_or_else(|| std::io::Error::other("path too long"))?;
    let _ = std::fs::remove_file(path);
    // SAFETY: plain socket calls on a descriptor of our own.
    unsafe {
        let fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if bind(fd, sa.as_ptr(), len) != 0 || listen(fd, 1024) != 0 {
            let e = std::io::Error::last_os_error();
            close(fd);
            return Err(e);
        }
        // (Only the workers may connect: a pull between workers passes no access check.)
        if let Err(e) = private(path) {
            close(fd);
            return Err(e);
        }
        Ok(fd)
    }
}

/// Only the workers' user (and root) may use this socket or file.
pub fn private(path: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

/// Other workers' pulls come in.
unsafe extern "C" fn on_accept(rev: *mut ngx_event_t) {
    let c = (*rev).data as *mut ngx_connection_t;
    let ls = (*c).data as *mut ngx::ffi::ngx_listening_t;
    // (What a peer is in logs, access rules and the application: this host.)
    let mut sin = [0u8; 16];
    sin[..2].copy_from_slice(&(ngx::ffi::AF_INET as u16).to_ne_bytes());
    sin[4..8].copy_from_slice(&[127, 0, 0, 1]);
    loop {
        let fd = accept4((*c).fd, ptr::null_mut(), ptr::null_mut(), SOCK_NONBLOCK | SOCK_CLOEXEC);
        if fd < 0 {
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(EAGAIN) => return,
                Some(EINTR) | Some(ECONNABORTED) => continue,
                _ => {
                    ngx::ngx_log_error!(NGX_LOG_ERR, (*c).log, "ngx-rtmp-rs: accepting another worker's pull: {e}");
                    return;
                }
            }
        }
        let adopted = std::panic::catch_unwind(|| unsafe { adopt(fd, ls, &sin, b"unix:", Kind::Peer) });
        if let Ok(Err(why)) = adopted {
            ngx::ngx_log_error!(NGX_LOG_ERR, (*c).log, "ngx-rtmp-rs: another worker's pull: {why}");
        }
    }
}

/// The worker exits: its sockets go, and its streams are given up.
///
/// # Safety
/// From the worker's exit_process.
pub unsafe fn exit_process(rc: &RtmpConf) {
    LISTENING.with(|l| {
        for (c, path) in l.borrow_mut().0.drain(..) {
            ngx::ffi::ngx_close_connection(c);
            let _ = std::fs::remove_file(path);
        }
    });
    if !rc.shared_zone.is_null() {
        shared::release_all(rc.shared_zone, ngx::ffi::ngx_pid as i64);
        shared::remove_worker(rc.shared_zone, ngx::ffi::ngx_pid as i64);
        let _ = std::fs::remove_file(stat_file(rc, ngx::ffi::ngx_pid));
    }
}

fn stat_file(rc: &RtmpConf, pid: i32) -> String {
    format!("{}/ngx-rtmp-rs.{pid}.stat", rc.workers.socket_dir)
}

/// Whether this nginx has other workers now (several, or old ones finishing a reload).
pub fn has_others(rc: &RtmpConf) -> bool {
    // SAFETY: the module's zone; the worker's pid.
    !rc.shared_zone.is_null() && unsafe { !shared::other_workers(rc.shared_zone, ngx::ffi::ngx_pid as i64).is_empty() }
}

/// Writes this worker's snapshot for the others (whole files only: written aside, then
/// renamed over the last).
pub fn write_snapshot(rc: &RtmpConf, snap: &crate::stat::Snapshot) {
    if rc.shared_zone.is_null() {
        return;
    }
    // SAFETY: the worker's pid.
    let path = stat_file(rc, unsafe { ngx::ffi::ngx_pid });
    let tmp = format!("{path}.tmp");
    // (Never through a link someone else put there: O_NOFOLLOW; only the workers read it.)
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).custom_flags(ngx::ffi::O_NOFOLLOW as i32).open(&tmp)?;
        f.write_all(&crate::stat::wire::encode(snap))?;
        std::fs::rename(&tmp, &path)
    };
    if write().is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

/// The other live workers' snapshots (not one that has not written for 10 s).
pub fn other_snapshots(rc: &RtmpConf) -> Vec<crate::stat::Snapshot> {
    if rc.shared_zone.is_null() {
        return vec![];
    }
    // SAFETY: the worker's pid; the module's zone.
    let others = unsafe { shared::other_workers(rc.shared_zone, ngx::ffi::ngx_pid as i64) };
    let mut out = vec![];
    for pid in others {
        let path = stat_file(rc, pid as i32);
        let fresh = std::fs::metadata(&path).and_then(|m| m.modified()).is_ok_and(|t| t.elapsed().is_ok_and(|age| age.as_secs() < 10));
        if let Some(s) = fresh.then(|| std::fs::read(&path).ok()).flatten().and_then(|b| crate::stat::wire::decode(&b)) {
            out.push(s);
        }
    }
    out
}
