//! The time of an input, from nginx's cached clocks: its millisecond clock, the wall
//! clock, and the local time of the current second (recording file names).

use std::cell::Cell;

use crate::app::Now;
use crate::record::Tm;

/// The local time of a second, from `localtime_r`.
fn local_time(unix: i64) -> Tm {
    // SAFETY: localtime_r writes only the tm we give it.
    unsafe {
        let mut tm: ngx::ffi::tm = core::mem::zeroed();
        let t = unix as ngx::ffi::time_t;
        if ngx::ffi::localtime_r(&t, &mut tm).is_null() {
            return Tm::default();
        }
        Tm {
            year: tm.tm_year + 1900,
            month: (tm.tm_mon + 1) as u32,
            day: tm.tm_mday as u32,
            hour: tm.tm_hour as u32,
            minute: tm.tm_min as u32,
            second: tm.tm_sec as u32,
            weekday: tm.tm_wday as u32,
            yearday: tm.tm_yday as u32,
            gmtoff: tm.tm_gmtoff as i32,
        }
    }
}

thread_local! {
    /// The last second turned into local time.
    static LOCAL: Cell<(i64, Tm)> = Cell::new((i64::MIN, Tm::default()));
}

/// Now, by nginx's cached clocks (updated once per turn of the event loop).
pub fn now() -> Now {
    // SAFETY: nginx's cached clocks, read on the worker's own thread.
    let (ms, sec, msec) = unsafe {
        let t = &*ngx::ffi::ngx_cached_time;
        (ngx::ffi::ngx_current_msec as u64, t.sec, t.msec)
    };
    let local = LOCAL.with(|l| {
        let (s, tm) = l.get();
        if s == sec {
            return tm;
        }
        let tm = local_time(sec);
        l.set((sec, tm));
        tm
    });
    Now { ms, wall_ms: sec * 1000 + msec as i64, local }
}
