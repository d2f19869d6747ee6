//! `access_log` files: opened through nginx's list of open files (so the master opens
//! them as root before workers drop privileges, and `nginx -s reopen` reopens them for
//! log rotation), and the application's lines written to them.

use std::cell::Cell;

use ngx::ffi::{ngx_conf_open_file, ngx_conf_t, ngx_open_file_t, ngx_str_t};

use super::conf::rtmp_conf;

/// Opens (registers with nginx) every access log file; their order is `paths`'.
pub(super) unsafe fn open(cf: *mut ngx_conf_t, paths: &[String]) -> Result<Vec<*mut ngx_open_file_t>, String> {
    paths
        .iter()
        .map(|p| {
            // nginx keeps the name, and opens it as a C string (as it reads names from the
            // configuration: NUL-terminated): in the cycle's pool, with a NUL.
            let data = ngx::ffi::ngx_pnalloc((*cf).pool, p.len() + 1) as *mut u8;
            if data.is_null() {
                return Err("out of memory".to_owned());
            }
            core::ptr::copy_nonoverlapping(p.as_ptr(), data, p.len());
            *data.add(p.len()) = 0;
            let mut name = ngx_str_t { len: p.len(), data };
            let f = ngx_conf_open_file((*cf).cycle, &mut name);
            if f.is_null() {
                Err(format!("cannot open access log \"{p}\""))
            } else {
                Ok(f)
            }
        })
        .collect()
}

thread_local! {
    /// When a failed write was last logged (one alert a minute at most, as nginx-rtmp-module).
    static LAST_ALERT: Cell<i64> = const { Cell::new(i64::MIN) };
}

/// Appends `line` to access log `file` (one `write`, as nginx does: lines of concurrent
/// workers do not interleave within a line). A failure (a full disk) loses the line and
/// is logged once a minute; the stream goes on.
pub(super) fn write(file: usize, line: &[u8], log: *mut ngx::ffi::ngx_log_t) {
    let Some(f) = rtmp_conf().and_then(|rc| rc.access_files.get(file).copied()) else { return };
    // SAFETY: an open file of the running cycle; nginx may have replaced its fd (reopen),
    // so it is read at each write.
    let (fd, name) = unsafe { ((*f).fd, String::from_utf8_lossy((*f).name.as_bytes()).into_owned()) };
    // SAFETY: a plain write of a buffer that lives across the call.
    let n = unsafe { ngx::ffi::write(fd, line.as_ptr() as *const core::ffi::c_void, line.len()) };
    if n == line.len() as isize {
        return;
    }
    let err = std::io::Error::last_os_error();
    // SAFETY: nginx's cached clock, on the worker's thread.
    let now = unsafe { (*ngx::ffi::ngx_cached_time).sec };
    if LAST_ALERT.with(|t| now - t.get() > 59) {
        LAST_ALERT.with(|t| t.set(now));
        let what = if n < 0 { format!("failed: {err}") } else { format!("was incomplete: {n} of {}", line.len()) };
        ngx::ngx_log_error!(ngx::ffi::NGX_LOG_ALERT as usize, log, "write() to access log \"{name}\" {what}");
    }
}
