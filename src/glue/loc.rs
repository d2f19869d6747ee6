//! The settings of an `http` location for our http module (`rtmp_stat`, `rtmp_control`,
//! `rtmp_hls_viewers`, `whip_publish`, `hls_serve`): plain data nginx allocates and zeroes.

use core::ffi::{c_char, c_void};
use core::ptr;

use ngx::ffi::{ngx_conf_t, ngx_http_complex_value_t, ngx_http_request_t, ngx_pcalloc, ngx_str_t};

#[repr(C)]
pub struct LocConf {
    pub stat: usize,
    pub control: usize,
    pub format: usize,
    pub stylesheet: ngx_str_t,
    /// `rtmp_hls_viewers`: 0 unset, 1 on, 2 off.
    pub hls_viewers: usize,
    /// `whip_publish` or `whep_play` (this location only, not inherited).
    pub whip: *mut Publish,
    /// `hls_serve` (this location only, not inherited).
    pub hls_serve: *mut super::hls_serve::Serve,
}

/// A location's `whip_publish APPLICATION [NAME]` or `whep_play APPLICATION [NAME]`.
pub struct Publish {
    pub app: String,
    /// NAME (nginx variables allowed); none: the path segment before `/whip` (`/whep`).
    pub name: *mut ngx_http_complex_value_t,
    /// `whep_play`: sessions play the stream to the browser.
    pub play: bool,
}

pub unsafe extern "C" fn create_loc_conf(cf: *mut ngx_conf_t) -> *mut c_void {
    ngx_pcalloc((*cf).pool, core::mem::size_of::<LocConf>())
}

pub unsafe extern "C" fn merge_loc_conf(_cf: *mut ngx_conf_t, parent: *mut c_void, child: *mut c_void) -> *mut c_char {
    let (p, c) = (&*(parent as *const LocConf), &mut *(child as *mut LocConf));
    if c.stat == 0 {
        c.stat = p.stat;
    }
    if c.control == 0 {
        c.control = p.control;
    }
    if c.format == 0 {
        c.format = p.format;
    }
    if c.stylesheet.len == 0 {
        c.stylesheet = p.stylesheet;
    }
    if c.hls_viewers == 0 {
        c.hls_viewers = p.hls_viewers;
    }
    ptr::null_mut()
}

/// A request's location settings.
pub unsafe fn loc_conf(r: *mut ngx_http_request_t) -> &'static LocConf {
    &*(*(*r).loc_conf.add(super::ngx_rtmp_http_module.ctx_index) as *const LocConf)
}

/// The location's `whip_publish`.
pub unsafe fn whip_publish(r: *mut ngx_http_request_t) -> Option<&'static Publish> {
    loc_conf(r).whip.as_ref()
}

pub unsafe extern "C" fn drop_publish(data: *mut c_void) {
    drop(Box::from_raw(data as *mut Publish));
}
