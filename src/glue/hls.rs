//! HLS in the worker: a segmenter per published stream (fed from the connection's media
//! events, writing with plain file I/O in small bounded chunks), and the `hls_cleanup`
//! sweep on a timer.

use core::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::SystemTime;

use ngx::ffi::{ngx_add_timer, ngx_cycle_t, ngx_event_t, ngx_log_t, NGX_LOG_ERR, NGX_LOG_INFO};

use super::block::RtmpConf;
use crate::conf::ResolvedServer;
use crate::hls::{self, disk::Disk, Segmenter};

pub type Stream = Segmenter<Disk>;

/// The files of a new stream's segmenter: live playlists are replaced by an exchange.
pub fn disk() -> Disk {
    Disk::with_exchange(exchange)
}

/// `renameat2(a, b, RENAME_EXCHANGE)`: both files stay, each under the other's name.
fn exchange(a: &str, b: &str) -> std::io::Result<()> {
    let cstr = |s: &str| std::ffi::CString::new(s).map_err(std::io::Error::other);
    let (a, b) = (cstr(a)?, cstr(b)?);
    // SAFETY: two NUL-terminated paths that live across the call.
    let rc = unsafe {
        ngx::ffi::renameat2(ngx::ffi::AT_FDCWD, a.as_ptr(), ngx::ffi::AT_FDCWD, b.as_ptr(), ngx::ffi::RENAME_EXCHANGE)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The HLS configuration of every application, by server and application index, with
/// relative paths resolved against nginx's prefix.
pub fn resolve(servers: &[ResolvedServer], prefix: &str) -> Vec<Vec<Option<hls::Config>>> {
    servers.iter().map(|s| s.apps.iter().map(|a| a.hls(prefix)).collect()).collect()
}

/// Directories `hls_cleanup` sweeps, with how long their files are kept: the playlist
/// length, or the longest fragment if that is longer (a live playlist is rewritten at
/// least that often).
/// Directories an `hls_type event` application writes to are never swept: an event
/// playlist keeps all its segments.
pub fn sweeps(configs: &[Vec<Option<hls::Config>>]) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = Vec::new();
    let all = || configs.iter().flatten().flatten();
    let event_dirs: Vec<&String> = all().filter(|c| c.event).flat_map(|c| [&c.path, &c.key_path]).collect();
    for c in all() {
        if !c.cleanup || c.event {
            continue;
        }
        let keep = c.playlist_length.max(c.max_fragment);
        let mut dirs = vec![c.path.clone()];
        if c.keys && c.key_path != c.path {
            dirs.push(c.key_path.clone());
        }
        for d in dirs {
            if event_dirs.contains(&&d) {
                continue;
            }
            match out.iter_mut().find(|(p, _)| *p == d) {
                Some((_, k)) => *k = (*k).max(keep),
                None => out.push((d, keep)),
            }
        }
    }
    out
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Logs what a segmenter reported (write failures, unusable input).
pub unsafe fn log_notices(log: *mut ngx_log_t, s: &mut Stream) {
    for n in s.take_notices() {
        ngx::ngx_log_error!(NGX_LOG_ERR, log, "{n} (stream \"{}\")", s.name());
    }
}

static mut SWEEP: core::mem::MaybeUninit<ngx_event_t> = core::mem::MaybeUninit::zeroed();
static mut SWEEP_CONF: *const RtmpConf = core::ptr::null();

fn interval(rc: &RtmpConf) -> u64 {
    rc.hls_sweeps.iter().map(|(_, keep)| keep / 2).min().unwrap_or(0).clamp(1000, 60_000)
}

/// Starts the cleanup sweep in this worker if any application wants it.
pub unsafe fn init_process(cycle: *mut ngx_cycle_t, rc: *const RtmpConf) {
    if rc.is_null() || (*rc).hls_sweeps.is_empty() {
        return;
    }
    SWEEP_CONF = rc;
    let ev = (&raw mut SWEEP).cast::<ngx_event_t>();
    (*ev).handler = Some(on_sweep);
    (*ev).log = (*cycle).log;
    (*ev).data = rc as *mut c_void;
    (*ev).set_cancelable(1);
    ngx_add_timer(ev, super::conn::grid_delay(interval(&*rc)) as _);
}

unsafe extern "C" fn on_sweep(ev: *mut ngx_event_t) {
    let r = catch_unwind(AssertUnwindSafe(|| unsafe {
        let rc = &*SWEEP_CONF;
        let now = SystemTime::now();
        for (dir, keep) in &rc.hls_sweeps {
            let mut removed = Vec::new();
            hls::disk::sweep(std::path::Path::new(dir), *keep, now, &mut removed);
            if !removed.is_empty() {
                ngx::ngx_log_error!(NGX_LOG_INFO, (*ev).log, "hls cleanup: removed {} old file(s) in \"{dir}\"", removed.len());
            }
        }
        ngx_add_timer(ev, super::conn::grid_delay(interval(rc)) as _);
    }));
    if r.is_err() {
        ngx::ngx_log_error!(ngx::ffi::NGX_LOG_ALERT, (*ev).log, "ngx-rtmp-rs: internal error (panic) in the hls cleanup");
    }
}

