//! The nginx glue: module registration, directive handlers, listening sockets and
//! connections. The only code that touches nginx, and the only code with `unsafe`.
//!
//! Three nginx modules are exported (nginx's `ngx_modules!` helper handles only one):
//! - `ngx_rtmp_module`, a core module that owns the `rtmp {}` block (and the other
//!   top-level directives nginx-rtmp-module has);
//! - `ngx_rtmp_core_module`, of nginx-rtmp-module's own module type `RTMP`, that holds
//!   every directive inside `rtmp {}`;
//! - `ngx_rtmp_http_module`, an http module for the `http {}` directives (`rtmp_stat`, …).
//!
//! Their names are nginx-rtmp-module's, so loading both modules into one nginx fails at
//! `load_module` with "module ... is already loaded" instead of a confusing clash later.

mod access_log;
mod addr;
mod block;
mod clock;
mod conf;
mod conn;
mod files;
mod http;
mod listen;
mod loc;
mod notify;
mod peer;
mod peer_control;
mod relay;
mod resolve;
mod respond;
mod rtmp;
mod shared;
mod spawn;
mod tls;
mod sweep;
mod hls_serve;
mod uring;
mod whip;
mod whip_adopt;
mod worker;

use core::ffi::{c_char, c_void};
use core::ptr;

use ngx::ffi::{
    ngx_command_t, ngx_conf_t, ngx_core_module_t, ngx_http_conf_ctx_t, ngx_http_module_t,
    ngx_module_t, ngx_str_t, ngx_uint_t, NGX_CONF_1MORE, NGX_CONF_2MORE, NGX_CONF_BLOCK,
    NGX_CONF_NOARGS, NGX_CONF_TAKE1, NGX_CONF_TAKE12, NGX_CORE_MODULE, NGX_HTTP_LOC_CONF,
    NGX_HTTP_MAIN_CONF, NGX_HTTP_MODULE, NGX_HTTP_SRV_CONF, NGX_MAIN_CONF,
};

use crate::conf::directives::{self as dir, Args, Directive, DIRECTIVES};

/// nginx-rtmp-module's module type ("RTMP") and its context bits for directives.
pub const NGX_RTMP_MODULE: ngx_uint_t = 0x504D_5452;
pub const NGX_RTMP_MAIN_CONF: ngx_uint_t = 0x0200_0000;
pub const NGX_RTMP_SRV_CONF: ngx_uint_t = 0x0400_0000;
pub const NGX_RTMP_APP_CONF: ngx_uint_t = 0x0800_0000;
pub const NGX_RTMP_REC_CONF: ngx_uint_t = 0x1000_0000;

type Handler = unsafe extern "C" fn(*mut ngx_conf_t, *mut ngx_command_t, *mut c_void) -> *mut c_char;

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

const fn count(mask: dir::Contexts) -> usize {
    let (mut i, mut n) = (0, 0);
    while i < DIRECTIVES.len() {
        if DIRECTIVES[i].contexts & mask != 0 {
            n += 1;
        }
        i += 1;
    }
    n
}

/// nginx's type bits for a directive: where it may appear and how many arguments it takes.
const fn type_bits(d: &Directive) -> ngx_uint_t {
    let c = d.contexts;
    let mut t: ngx_uint_t = 0;
    if c & dir::CORE != 0 {
        t |= NGX_MAIN_CONF as ngx_uint_t;
    }
    if c & dir::MAIN != 0 {
        t |= NGX_RTMP_MAIN_CONF;
    }
    if c & dir::SRV != 0 {
        t |= NGX_RTMP_SRV_CONF;
    }
    if c & dir::APP != 0 {
        t |= NGX_RTMP_APP_CONF;
    }
    if c & dir::REC != 0 {
        t |= NGX_RTMP_REC_CONF;
    }
    if c & dir::HTTP_MAIN != 0 {
        t |= NGX_HTTP_MAIN_CONF as ngx_uint_t;
    }
    if c & dir::HTTP_SRV != 0 {
        t |= NGX_HTTP_SRV_CONF as ngx_uint_t;
    }
    if c & dir::HTTP_LOC != 0 {
        t |= NGX_HTTP_LOC_CONF as ngx_uint_t;
    }
    t | match d.args {
        Args::Take1 => NGX_CONF_TAKE1,
        Args::Take12 => NGX_CONF_TAKE12,
        Args::OneMore => NGX_CONF_1MORE,
        Args::TwoMore => NGX_CONF_2MORE,
        Args::Block0 => NGX_CONF_BLOCK | NGX_CONF_NOARGS,
        Args::Block1 => NGX_CONF_BLOCK | NGX_CONF_TAKE1,
        Args::Block01 => NGX_CONF_BLOCK | NGX_CONF_NOARGS | NGX_CONF_TAKE1,
    } as ngx_uint_t
}

/// The handler of a directive and the `conf` offset nginx uses to find its configuration.
const fn handler(d: &Directive) -> (Handler, ngx_uint_t) {
    if str_eq(d.name, "rtmp") {
        (block::rtmp_block, 0)
    } else if str_eq(d.name, "server") {
        (block::server_block, 0)
    } else if str_eq(d.name, "application") {
        (block::application_block, 0)
    } else if str_eq(d.name, "recorder") {
        (block::recorder_block, 0)
    } else if d.contexts & (dir::HTTP_MAIN | dir::HTTP_SRV | dir::HTTP_LOC) != 0 {
        let conf = core::mem::offset_of!(ngx_http_conf_ctx_t, loc_conf) as ngx_uint_t;
        match d.status {
            dir::Status::Core => (http::directive, conf),
            dir::Status::NotYet(_) => (block::unsupported, conf),
        }
    } else if d.contexts & dir::CORE != 0 {
        match d.status {
            dir::Status::Core => (block::core_directive, 0),
            dir::Status::NotYet(_) => (block::unsupported, 0),
        }
    } else {
        // Inside rtmp {}: `conf` points at block::Frame::confs.
        (block::rtmp_directive, 0)
    }
}

/// The `ngx_command_t` array (null-terminated) of the directives allowed in `mask`;
/// each command's `offset` is the directive's index in [`DIRECTIVES`].
const fn commands<const N: usize>(mask: dir::Contexts) -> [ngx_command_t; N] {
    let mut out = [ngx_command_t::empty(); N];
    let (mut i, mut n) = (0, 0);
    while i < DIRECTIVES.len() {
        let d = &DIRECTIVES[i];
        if d.contexts & mask != 0 {
            let (set, conf) = handler(d);
            out[n] = ngx_command_t {
                name: ngx_str_t { len: d.name.len(), data: d.cname.as_ptr() as *mut u8 },
                type_: type_bits(d),
                set: Some(set),
                conf,
                offset: i as ngx_uint_t,
                post: ptr::null_mut(),
            };
            n += 1;
        }
        i += 1;
    }
    out
}

const RTMP_CONTEXTS: dir::Contexts = dir::MAIN | dir::SRV | dir::APP | dir::REC;
const HTTP_CONTEXTS: dir::Contexts = dir::HTTP_MAIN | dir::HTTP_SRV | dir::HTTP_LOC;
const N_CORE: usize = count(dir::CORE);
const N_RTMP: usize = count(RTMP_CONTEXTS);
const N_HTTP: usize = count(HTTP_CONTEXTS);

static mut CORE_COMMANDS: [ngx_command_t; N_CORE + 1] = commands::<{ N_CORE + 1 }>(dir::CORE);
static mut RTMP_COMMANDS: [ngx_command_t; N_RTMP + 1] = commands::<{ N_RTMP + 1 }>(RTMP_CONTEXTS);
static mut HTTP_COMMANDS: [ngx_command_t; N_HTTP + 1] = commands::<{ N_HTTP + 1 }>(HTTP_CONTEXTS);

static mut CORE_CTX: ngx_core_module_t = ngx_core_module_t {
    name: ngx_str_t { len: 4, data: c"rtmp".as_ptr() as *mut u8 },
    create_conf: None,
    init_conf: Some(init_conf),
};

static mut HTTP_CTX: ngx_http_module_t = ngx_http_module_t {
    preconfiguration: None,
    postconfiguration: Some(http::postconfiguration),
    create_main_conf: Some(whip::create_main_conf),
    init_main_conf: None,
    create_srv_conf: None,
    merge_srv_conf: None,
    create_loc_conf: Some(loc::create_loc_conf),
    merge_loc_conf: Some(loc::merge_loc_conf),
};

/// Modules of type RTMP have no context nginx reads; a non-null placeholder.
static mut RTMP_CTX: u8 = 0;

#[no_mangle]
pub static mut ngx_rtmp_module: ngx_module_t = ngx_module_t {
    ctx: &raw mut CORE_CTX as *mut c_void,
    commands: &raw mut CORE_COMMANDS as *mut ngx_command_t,
    type_: NGX_CORE_MODULE as ngx_uint_t,
    init_process: Some(worker::init_process),
    exit_process: Some(worker::exit_process),
    ..ngx_module_t::default()
};

/// After the whole configuration is read (also under `nginx -t`): the WHIP locations'
/// applications are checked, the top-level directives kept.
unsafe extern "C" fn init_conf(cycle: *mut ngx::ffi::ngx_cycle_t, rtmp: *mut c_void) -> *mut c_char {
    let ctx = (*cycle).conf_ctx;
    let ccf = *ctx.add(ngx::ffi::ngx_core_module.index) as *const ngx::ffi::ngx_core_conf_t;
    // (ngx_http_module's configuration is in the cycle now too: whip_publish may be
    // checked against the applications.)
    let checked = std::panic::catch_unwind(|| unsafe { whip::check_apps(cycle, (rtmp as *const conf::RtmpConf).as_ref()) })
        .unwrap_or_else(|_| Err("internal error checking whip_publish".into()));
    if let Err(msg) = checked {
        ngx::ngx_log_error!(ngx::ffi::NGX_LOG_EMERG, (*cycle).log, "{msg}");
        return usize::MAX as *mut c_char;
    }
    // (The top-level directives, read before or after `rtmp {}`, go with this cycle's
    // configuration; the next cycle starts from the defaults.)
    let workers = block::take_workers();
    if let Some(rc) = (rtmp as *mut conf::RtmpConf).as_mut() {
        rc.workers = workers;
    }
    let _ = ccf;
    ptr::null_mut()
}

#[no_mangle]
pub static mut ngx_rtmp_core_module: ngx_module_t = ngx_module_t {
    ctx: &raw mut RTMP_CTX as *mut c_void,
    commands: &raw mut RTMP_COMMANDS as *mut ngx_command_t,
    type_: NGX_RTMP_MODULE,
    ..ngx_module_t::default()
};

#[no_mangle]
pub static mut ngx_rtmp_http_module: ngx_module_t = ngx_module_t {
    ctx: &raw mut HTTP_CTX as *mut c_void,
    commands: &raw mut HTTP_COMMANDS as *mut ngx_command_t,
    type_: NGX_HTTP_MODULE as ngx_uint_t,
    init_process: Some(http_init_process),
    exit_process: Some(http_exit_process),
    ..ngx_module_t::default()
};

/// The worker's WHIP sidecar starts with the worker, and is joined when it exits.
unsafe extern "C" fn http_init_process(cycle: *mut ngx::ffi::ngx_cycle_t) -> ngx::ffi::ngx_int_t {
    let _ = std::panic::catch_unwind(|| unsafe { whip::init_process(cycle) });
    ngx::ffi::NGX_OK as ngx::ffi::ngx_int_t
}

unsafe extern "C" fn http_exit_process(_cycle: *mut ngx::ffi::ngx_cycle_t) {
    let _ = std::panic::catch_unwind(|| unsafe { whip::exit_process() });
}

#[no_mangle]
#[allow(non_upper_case_globals)]
pub static mut ngx_modules: [*const ngx_module_t; 4] = [
    &raw const ngx_rtmp_module,
    &raw const ngx_rtmp_core_module,
    &raw const ngx_rtmp_http_module,
    ptr::null(),
];

#[no_mangle]
#[allow(non_upper_case_globals)]
pub static mut ngx_module_names: [*const c_char; 4] = [
    c"ngx_rtmp_module".as_ptr(),
    c"ngx_rtmp_core_module".as_ptr(),
    c"ngx_rtmp_http_module".as_ptr(),
    ptr::null(),
];

#[no_mangle]
#[allow(non_upper_case_globals)]
pub static mut ngx_module_order: [*const c_char; 1] = [ptr::null()];
