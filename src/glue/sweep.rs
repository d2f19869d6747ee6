//! `hls_cleanup`: the sweep of old HLS files, on a timer in each worker.

use core::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::SystemTime;

use ngx::ffi::{ngx_add_timer, ngx_cycle_t, ngx_event_t, NGX_LOG_INFO};

use super::conf::RtmpConf;
use crate::app::grid_delay;
use crate::hls;

static mut SWEEP: core::mem::MaybeUninit<ngx_event_t> = core::mem::MaybeUninit::zeroed();

fn interval(rc: &RtmpConf) -> u64 {
    rc.resolved.hls_sweeps.iter().map(|(_, keep)| keep / 2).min().unwrap_or(0).clamp(1000, 60_000)
}

fn now_ms() -> u64 {
    // SAFETY: nginx's cached clock, read on the worker's own thread.
    unsafe { ngx::ffi::ngx_current_msec as u64 }
}

/// Starts the cleanup sweep in this worker if any application wants it.
pub unsafe fn init_process(cycle: *mut ngx_cycle_t, rc: &'static RtmpConf) {
    if rc.resolved.hls_sweeps.is_empty() {
        return;
    }
    let ev = (&raw mut SWEEP).cast::<ngx_event_t>();
    (*ev).handler = Some(on_sweep);
    (*ev).log = (*cycle).log;
    (*ev).data = rc as *const RtmpConf as *mut c_void;
    (*ev).set_cancelable(1);
    ngx_add_timer(ev, grid_delay(now_ms(), interval(rc)) as _);
}

unsafe extern "C" fn on_sweep(ev: *mut ngx_event_t) {
    let r = catch_unwind(AssertUnwindSafe(|| unsafe {
        let rc = &*((*ev).data as *const RtmpConf);
        let now = SystemTime::now();
        for (dir, keep) in &rc.resolved.hls_sweeps {
            let mut removed = Vec::new();
            hls::disk::sweep(std::path::Path::new(dir), *keep, now, &mut removed);
            if !removed.is_empty() {
                ngx::ngx_log_error!(NGX_LOG_INFO, (*ev).log, "hls cleanup: removed {} old file(s) in \"{dir}\"", removed.len());
            }
        }
        ngx_add_timer(ev, grid_delay(now_ms(), interval(rc)) as _);
    }));
    if r.is_err() {
        ngx::ngx_log_error!(ngx::ffi::NGX_LOG_ALERT, (*ev).log, "ngx-rtmp-rs: internal error (panic) in the hls cleanup");
    }
}
