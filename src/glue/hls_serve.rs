//! `hls_serve APPLICATION;` in an http location: its playlists are answered by the module
//! with low-latency HLS delivery (`hls::serve`: blocking playlist reload, delta updates,
//! rendition reports),
//! read from the files the application's segmenter writes (so any worker answers for any
//! stream); everything else (segments, parts, init segments) goes on to nginx's static
//! module, from the location's `root` or `alias`. A held request looks at the playlist
//! again every 20 ms, up to three target durations.

use core::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

use ngx::ffi::{
    ngx_add_timer, ngx_del_timer, ngx_event_t, ngx_http_finalize_request, ngx_http_request_t, ngx_int_t, ngx_str_t,
    NGX_DECLINED, NGX_DONE, NGX_ERROR, NGX_HTTP_BAD_REQUEST, NGX_HTTP_GET, NGX_HTTP_HEAD, NGX_HTTP_NOT_ALLOWED,
    NGX_HTTP_NOT_FOUND, NGX_HTTP_SERVICE_UNAVAILABLE, NGX_LOG_ALERT,
};

use super::respond::{guarded, respond};
use crate::hls::serve::{self, Answer, Request};

/// How often a held request looks at its playlist again (a part is 100 ms or more).
const LOOK_MS: u64 = 20;
const MPEGURL: &str = "application/vnd.apple.mpegurl";

/// A location's `hls_serve`.
pub struct Serve {
    pub app: String,
}

pub unsafe extern "C" fn drop_serve(data: *mut c_void) {
    drop(Box::from_raw(data as *mut Serve));
}

/// A request held until its playlist has what it asks for.
struct Hold {
    ev: ngx_event_t,
    r: *mut ngx_http_request_t,
    path: String,
    req: Request,
    /// `ngx_current_msec` when it is answered whatever the playlist says.
    deadline: u64,
}

fn now_ms() -> u64 {
    // SAFETY: nginx's cached clock, read on the worker's own thread.
    unsafe { ngx::ffi::ngx_current_msec as u64 }
}

/// The content phase: a playlist of an `hls_serve` location; anything else declines.
pub unsafe extern "C" fn handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    let lc = super::loc::loc_conf(r);
    if lc.hls_serve.is_null() || !(*r).uri.as_bytes().ends_with(b".m3u8") {
        return NGX_DECLINED as isize;
    }
    if (*r).method & (NGX_HTTP_GET | NGX_HTTP_HEAD) as usize == 0 {
        return NGX_HTTP_NOT_ALLOWED as isize;
    }
    guarded(r, || unsafe { playlist(r) })
}

unsafe fn playlist(r: *mut ngx_http_request_t) -> ngx_int_t {
    let rc = ngx::ffi::ngx_http_discard_request_body(r);
    if rc != 0 {
        return rc;
    }
    let query = String::from_utf8_lossy((*r).args.as_bytes()).into_owned();
    let req = match serve::request(&query) {
        Ok(req) => req,
        Err(why) => return respond(r, NGX_HTTP_BAD_REQUEST as usize, "text/plain", format!("{why}\n").as_bytes()),
    };
    let mut root = 0usize;
    let mut path = ngx_str_t { len: 0, data: core::ptr::null_mut() };
    let last = ngx::ffi::ngx_http_map_uri_to_path(r, &mut path, &mut root, 0);
    if last.is_null() {
        return NGX_ERROR as isize;
    }
    // (As nginx's static module: the path ends at `last`, where nginx put a NUL.)
    path.len = last.offset_from(path.data) as usize;
    let path = String::from_utf8_lossy(path.as_bytes()).into_owned();
    let Ok(text) = std::fs::read_to_string(&path) else {
        let app = &(*super::loc::loc_conf(r).hls_serve).app;
        return respond(r, NGX_HTTP_NOT_FOUND as usize, "text/plain", format!("no such playlist in application \"{app}\"\n").as_bytes());
    };
    match serve::answer(&text, &req, || reports(&path)) {
        Answer::Ready(body) => respond(r, 200, MPEGURL, body.as_bytes()),
        Answer::TooFar => respond(r, NGX_HTTP_BAD_REQUEST as usize, "text/plain", b"_HLS_msn is more than two segments ahead of the playlist\n"),
        Answer::Wait => hold(r, path, req, &text),
    }
}

/// The other renditions' `EXT-X-RENDITION-REPORT` lines, when the playlist at `path` is a
/// rendition of a master playlist beside it (a few small files read per answer).
fn reports(path: &str) -> Vec<String> {
    let Some((dir, file)) = path.rsplit_once('/') else { return Vec::new() };
    let Some(master) = serve::master_of(file).and_then(|m| std::fs::read_to_string(format!("{dir}/{m}")).ok()) else {
        return Vec::new();
    };
    serve::renditions(&master)
        .into_iter()
        .filter(|u| *u != file)
        .filter_map(|u| std::fs::read_to_string(format!("{dir}/{u}")).ok().and_then(|t| serve::report(u, &t)))
        .collect()
}

/// Holds the request: it is answered from the timer.
unsafe fn hold(r: *mut ngx_http_request_t, path: String, req: Request, text: &str) -> ngx_int_t {
    let target = text.lines().find_map(|l| l.strip_prefix("#EXT-X-TARGETDURATION:")).and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(2);
    let cln = ngx::ffi::ngx_pool_cleanup_add((*r).pool, 0);
    if cln.is_null() {
        return NGX_ERROR as isize;
    }
    let h = Box::into_raw(Box::new(Hold {
        ev: core::mem::zeroed(),
        r,
        path,
        req,
        deadline: now_ms() + target.clamp(1, 30) * 3000,
    }));
    (*cln).handler = Some(drop_hold);
    (*cln).data = h as *mut c_void;
    (*h).ev.handler = Some(look);
    (*h).ev.data = h as *mut c_void;
    (*h).ev.log = (*(*r).connection).log;
    let main = (*r).main;
    (*main).set_count((*main).count() + 1);
    ngx_add_timer(&mut (*h).ev, LOOK_MS as _);
    NGX_DONE as isize
}

/// The request is freed (answered, or torn down by nginx): its timer goes with it.
unsafe extern "C" fn drop_hold(data: *mut c_void) {
    let h = data as *mut Hold;
    if (*h).ev.timer_set() != 0 {
        ngx_del_timer(&mut (*h).ev);
    }
    drop(Box::from_raw(h));
}

/// A held request's timer: the playlist again.
unsafe extern "C" fn look(ev: *mut ngx_event_t) {
    let h = (*ev).data as *mut Hold;
    let r = (*h).r;
    let done = catch_unwind(AssertUnwindSafe(|| unsafe {
        let text = std::fs::read_to_string(&(*h).path).ok();
        let answer = match &text {
            Some(t) => serve::answer(t, &(*h).req, || reports(&(*h).path)),
            None => return Some(respond(r, NGX_HTTP_NOT_FOUND as usize, "text/plain", b"no such playlist (any more)\n")),
        };
        match answer {
            Answer::Ready(body) => Some(respond(r, 200, MPEGURL, body.as_bytes())),
            Answer::TooFar => Some(respond(r, NGX_HTTP_BAD_REQUEST as usize, "text/plain", b"_HLS_msn is more than two segments ahead of the playlist\n")),
            Answer::Wait if now_ms() >= (*h).deadline => {
                // (RFC 8216bis: a part that does not come within three target durations.)
                Some(respond(r, NGX_HTTP_SERVICE_UNAVAILABLE as usize, "text/plain", b"the requested part did not come in time\n"))
            }
            Answer::Wait => None,
        }
    }));
    match done {
        Ok(Some(rc)) => ngx_http_finalize_request(r, rc),
        Ok(None) => ngx_add_timer(ev, LOOK_MS as _),
        Err(_) => {
            ngx::ngx_log_error!(NGX_LOG_ALERT, (*ev).log, "ngx-rtmp-rs: internal error (panic) in hls_serve");
            ngx_http_finalize_request(r, ngx::ffi::NGX_HTTP_INTERNAL_SERVER_ERROR as isize);
        }
    }
}
