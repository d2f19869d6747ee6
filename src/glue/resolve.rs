//! A host name asked of nginx's resolver (the `resolver` directive) for a notify call or
//! a relay. The answer (the first address, with the port) is handed to a closure from a
//! posted event, never from inside `name`, even when the resolver answers at once from
//! its cache: the caller is not re-entered.

use core::ffi::c_void;
use core::ptr;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};

use ngx::ffi::{
    ngx_cycle, ngx_event_t, ngx_post_event, ngx_posted_events, ngx_resolve_name, ngx_resolve_name_done,
    ngx_resolve_start, ngx_resolver_ctx_t, ngx_resolver_strerror, ngx_resolver_t, ngx_str_t, AF_INET, AF_INET6,
    NGX_LOG_ALERT, NGX_OK,
};

/// What the caller does with the answer.
pub type Answer = Box<dyn FnOnce(Result<SocketAddr, String>)>;

struct Query {
    /// The name nginx's resolver reads while it works (kept here until the answer).
    host: String,
    port: u16,
    answer: Option<Result<SocketAddr, String>>,
    done: Option<Answer>,
    /// Posted with the answer.
    posted: ngx_event_t,
}

/// Asks `resolver` for `host`; `done` gets its first address with `port`, or why not,
/// within `timeout_ms`.
///
/// # Safety
/// Called from nginx's event loop; `resolver` is null or one of the configuration's.
pub unsafe fn name(resolver: *mut ngx_resolver_t, host: String, port: u16, timeout_ms: u64, done: Answer) {
    let q = Box::into_raw(Box::new(Query { host, port, answer: None, done: Some(done), posted: core::mem::zeroed() }));
    let query = &mut *q;
    query.posted.handler = Some(on_posted);
    query.posted.data = q as *mut c_void;
    query.posted.log = (*ngx_cycle).log;
    if resolver.is_null() {
        return answer(q, Err(format!("no resolver for {}", query.host)));
    }
    let ctx = ngx_resolve_start(resolver, ptr::null_mut());
    // (NGX_NO_RESOLVER is (void *) -1.)
    if ctx.is_null() || ctx as isize == -1 {
        return answer(q, Err(format!("cannot resolve {}", query.host)));
    }
    (*ctx).name = ngx_str_t { len: query.host.len(), data: query.host.as_ptr() as *mut u8 };
    (*ctx).handler = Some(on_resolved);
    (*ctx).data = q as *mut c_void;
    (*ctx).timeout = timeout_ms as _;
    // (On an error nginx frees the context itself.)
    if ngx_resolve_name(ctx) != NGX_OK as isize {
        answer(q, Err(format!("cannot resolve {}", query.host)));
    }
}

unsafe fn answer(q: *mut Query, a: Result<SocketAddr, String>) {
    (*q).answer = Some(a);
    ngx_post_event(&raw mut (*q).posted, &raw mut ngx_posted_events);
}

unsafe extern "C" fn on_resolved(ctx: *mut ngx_resolver_ctx_t) {
    let q = (*ctx).data as *mut Query;
    let r = catch_unwind(AssertUnwindSafe(|| unsafe {
        let query = &*q;
        let state = (*ctx).state;
        let first = ((*ctx).naddrs > 0).then(|| &*(*ctx).addrs);
        let addr = match (state, first) {
            (0, Some(a)) => sockaddr_to_std(a.sockaddr as *const u8, a.socklen, query.port),
            _ => None,
        };
        let why = if state == 0 {
            "no address".to_owned()
        } else {
            std::ffi::CStr::from_ptr(ngx_resolver_strerror(state)).to_string_lossy().into_owned()
        };
        ngx_resolve_name_done(ctx);
        let host = &query.host;
        answer(q, addr.ok_or_else(|| format!("cannot resolve {host}: {why}")));
    }));
    if r.is_err() {
        ngx::ngx_log_error!(NGX_LOG_ALERT, (*ngx_cycle).log, "ngx-rtmp-rs: internal error (panic) in a resolver's answer");
    }
}

unsafe extern "C" fn on_posted(ev: *mut ngx_event_t) {
    let mut q = Box::from_raw((*ev).data as *mut Query);
    let log = (*ev).log;
    if let (Some(done), Some(a)) = (q.done.take(), q.answer.take()) {
        if catch_unwind(AssertUnwindSafe(|| done(a))).is_err() {
            ngx::ngx_log_error!(NGX_LOG_ALERT, log, "ngx-rtmp-rs: internal error (panic) after a resolver's answer");
        }
    }
}

/// A resolver's `struct sockaddr` as an address with `port`.
unsafe fn sockaddr_to_std(sa: *const u8, len: u32, port: u16) -> Option<SocketAddr> {
    let family = u16::from_ne_bytes([*sa, *sa.add(1)]) as u32;
    if family == AF_INET && len >= 8 {
        let b = core::slice::from_raw_parts(sa.add(4), 4);
        Some(SocketAddr::new([b[0], b[1], b[2], b[3]].into(), port))
    } else if family == AF_INET6 && len >= 24 {
        let b: [u8; 16] = core::slice::from_raw_parts(sa.add(8), 16).try_into().ok()?;
        Some(SocketAddr::new(b.into(), port))
    } else {
        None
    }
}
