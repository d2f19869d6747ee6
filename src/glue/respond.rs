//! Answering an HTTP request from a content handler of ours, and keeping a panic out of
//! nginx while doing it.

use core::ptr;
use std::panic::{catch_unwind, AssertUnwindSafe};

use ngx::ffi::{
    ngx_create_temp_buf, ngx_http_output_filter, ngx_http_request_t, ngx_http_send_header, ngx_int_t, ngx_str_t,
    NGX_ERROR, NGX_HTTP_INTERNAL_SERVER_ERROR, NGX_OK,
};

/// Sends a whole response.
pub unsafe fn respond(r: *mut ngx_http_request_t, status: usize, content_type: &'static str, body: &[u8]) -> ngx_int_t {
    (*r).headers_out.status = status;
    (*r).headers_out.content_type = ngx_str_t { len: content_type.len(), data: content_type.as_ptr() as *mut u8 };
    (*r).headers_out.content_type_len = content_type.len();
    (*r).headers_out.content_length_n = body.len() as _;
    let rc = ngx_http_send_header(r);
    if rc == NGX_ERROR as isize || rc > NGX_OK as isize || (*r).header_only() != 0 {
        return rc;
    }
    if body.is_empty() {
        // The end of an empty body: without it the header could wait in nginx's buffer.
        return ngx::ffi::ngx_http_send_special(r, ngx::ffi::NGX_HTTP_LAST as _);
    }
    let b = ngx_create_temp_buf((*r).pool, body.len());
    if b.is_null() {
        return NGX_ERROR as isize;
    }
    ptr::copy_nonoverlapping(body.as_ptr(), (*b).last, body.len());
    (*b).last = (*b).last.add(body.len());
    (*b).set_last_buf(1);
    (*b).set_last_in_chain(1);
    let mut chain = ngx::ffi::ngx_chain_t { buf: b, next: ptr::null_mut() };
    ngx_http_output_filter(r, &mut chain)
}

/// Runs a handler's body; a panic is logged and answered with a 500.
pub unsafe fn guarded(r: *mut ngx_http_request_t, f: impl FnOnce() -> ngx_int_t) -> ngx_int_t {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(rc) => rc,
        Err(_) => {
            ngx::ngx_log_error!(ngx::ffi::NGX_LOG_ALERT, (*(*r).connection).log, "ngx-rtmp-rs: internal error (panic) answering a request");
            NGX_HTTP_INTERNAL_SERVER_ERROR as isize
        }
    }
}
