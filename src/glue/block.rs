//! Directive handlers: the `rtmp`, `server` and `application` blocks, every directive
//! inside them (handed to `crate::conf`), and directives that are not supported yet.

use core::ffi::{c_char, c_void};
use core::ptr;
use std::panic::{catch_unwind, AssertUnwindSafe};

use ngx::ffi::{
    ngx_command_t, ngx_conf_log_error, ngx_conf_parse, ngx_conf_t, ngx_count_modules,
    ngx_pcalloc, ngx_pool_cleanup_add, ngx_str_t, NGX_LOG_EMERG,
};

use super::conf::{Listener, RtmpConf};
use super::{listen, rtmp, shared, NGX_RTMP_APP_CONF, NGX_RTMP_MAIN_CONF, NGX_RTMP_MODULE, NGX_RTMP_SRV_CONF};
use crate::conf::directives::{Status, DIRECTIVES};
use crate::conf::resolved::Resolved;
use crate::conf::{Pos, Rtmp};

const NGX_CONF_OK: *mut c_char = ptr::null_mut();
const NGX_CONF_ERROR: *mut c_char = usize::MAX as *mut c_char;

/// The context nginx hands to directive handlers while a block inside `rtmp {}` is parsed.
/// nginx finds a directive's `conf` as `((void **) ctx->confs)[ctx_index]`; every entry
/// points back at this frame.
#[repr(C)]
struct Frame {
    confs: *mut *mut c_void,
    conf: *mut RtmpConf,
    pos: Pos,
}

/// Failure of a handler: a message to log, or one nginx already logged.
enum Fail {
    Msg(String),
    Logged,
}

impl From<String> for Fail {
    fn from(s: String) -> Self {
        Fail::Msg(s)
    }
}

/// Runs a handler body: logs its error at `emerg` (nginx adds " in FILE:LINE") and never
/// lets a panic unwind into nginx.
fn guard(cf: *mut ngx_conf_t, f: impl FnOnce() -> Result<(), Fail>) -> *mut c_char {
    let msg = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => return NGX_CONF_OK,
        Ok(Err(Fail::Logged)) => return NGX_CONF_ERROR,
        Ok(Err(Fail::Msg(m))) => m,
        Err(_) => "internal error in ngx-rtmp-rs while reading the configuration".to_owned(),
    };
    // SAFETY: cf is the live configuration nginx passed to the handler.
    unsafe { ngx_conf_log_error(NGX_LOG_EMERG as usize, cf, 0, c"%*s".as_ptr(), msg.len(), msg.as_ptr()) };
    NGX_CONF_ERROR
}

/// The directive's arguments (without its name) as text.
unsafe fn args<'a>(cf: *mut ngx_conf_t) -> Result<Vec<&'a str>, Fail> {
    let words: &[ngx_str_t] = (*(*cf).args).as_slice();
    words[1..]
        .iter()
        .map(|w| {
            core::str::from_utf8(w.as_bytes())
                .map_err(|_| Fail::Msg(format!("invalid UTF-8 in the arguments of \"{}\"", words[0])))
        })
        .collect()
}

/// Parses the block that follows the current directive with `frame` as its context.
unsafe fn parse_block(cf: *mut ngx_conf_t, frame: &mut Frame, cmd_type: usize) -> Result<(), Fail> {
    let n = ngx_count_modules((*cf).cycle, NGX_RTMP_MODULE).max(1) as usize;
    let confs = ngx_pcalloc((*cf).pool, n * size_of::<*mut c_void>()) as *mut *mut c_void;
    if confs.is_null() {
        return Err(Fail::Logged);
    }
    for i in 0..n {
        *confs.add(i) = frame as *mut Frame as *mut c_void;
    }
    frame.confs = confs;
    let saved = ptr::read(cf);
    (*cf).ctx = frame as *mut Frame as *mut c_void;
    (*cf).module_type = NGX_RTMP_MODULE;
    (*cf).cmd_type = cmd_type;
    let rv = ngx_conf_parse(cf, ptr::null_mut());
    ptr::write(cf, saved);
    if rv.is_null() { Ok(()) } else { Err(Fail::Logged) }
}

unsafe extern "C" fn drop_rtmp_conf(data: *mut c_void) {
    drop(Box::from_raw(data as *mut RtmpConf));
}

/// `rtmp { ... }` at the top level of nginx.conf.
pub unsafe extern "C" fn rtmp_block(cf: *mut ngx_conf_t, _cmd: *mut ngx_command_t, conf: *mut c_void) -> *mut c_char {
    guard(cf, || unsafe {
        let slot = conf as *mut *mut c_void;
        if !(*slot).is_null() {
            return Err("\"rtmp\" directive is duplicate".to_owned().into());
        }
        let cln = ngx_pool_cleanup_add((*cf).pool, 0);
        if cln.is_null() {
            return Err(Fail::Logged);
        }
        let rc = Box::into_raw(Box::<RtmpConf>::default());
        (*cln).handler = Some(drop_rtmp_conf);
        (*cln).data = rc as *mut c_void;
        *slot = rc as *mut c_void;

        let mut frame = Frame { confs: ptr::null_mut(), conf: rc, pos: Pos::Main };
        parse_block(cf, &mut frame, NGX_RTMP_MAIN_CONF)?;

        let rc_ptr = rc;
        let rc = &mut *rc;
        let mut servers = rc.tree.resolve();
        Rtmp::check(&mut servers)?;
        rc.tree.check_access_logs()?;
        let resolver_at = |pos: Pos| rc.resolvers.iter().find(|(p, _)| *p == pos).map(|(_, r)| *r);
        rc.server_resolvers = (0..servers.len())
            .map(|s| resolver_at(Pos::Server(s)).or_else(|| resolver_at(Pos::Main)).unwrap_or(ptr::null_mut()))
            .collect();
        let cycle = (*cf).cycle;
        let prefix = String::from_utf8_lossy(core::slice::from_raw_parts((*cycle).prefix.data, (*cycle).prefix.len)).into_owned();
        let default_log = ngx::ffi::NGX_HTTP_LOG_PATH.to_str().unwrap_or("logs/access.log");
        rc.resolved = std::sync::Arc::new(Resolved::new(&rc.tree, servers, &prefix, default_log));
        rc.access_files = super::access_log::open(cf, &rc.resolved.access_files)?;
        if let Some(trusted) = &rc.resolved.relay_ssl_trusted {
            rc.relay_ssl = Some(core::ptr::NonNull::new(super::tls::context(cf, trusted).map_err(|_| Fail::Logged)?).ok_or(Fail::Logged)?);
        }
        rc.shared_zone = shared::add_zone(cf)?;
        for (index, server) in rc.resolved.servers.iter().enumerate() {
            for l in &server.listens {
                let listener = Box::new(Listener { conf: rc_ptr, index, proxy_protocol: l.proxy_protocol });
                listen::add(cf, &listener, l, rtmp::init_connection)?;
                rc.listeners.push(listener);
            }
        }
        Ok(())
    })
}

/// `server { ... }` inside `rtmp {}`.
pub unsafe extern "C" fn server_block(cf: *mut ngx_conf_t, _cmd: *mut ngx_command_t, conf: *mut c_void) -> *mut c_char {
    guard(cf, || unsafe {
        let parent = &*(conf as *const Frame);
        let pos = (*parent.conf).tree.open_server();
        let mut frame = Frame { confs: ptr::null_mut(), conf: parent.conf, pos };
        parse_block(cf, &mut frame, NGX_RTMP_SRV_CONF)
    })
}

/// `application NAME { ... }` inside a server.
pub unsafe extern "C" fn application_block(cf: *mut ngx_conf_t, _cmd: *mut ngx_command_t, conf: *mut c_void) -> *mut c_char {
    guard(cf, || unsafe {
        let parent = &*(conf as *const Frame);
        let name = args(cf)?[0];
        let pos = (*parent.conf).tree.open_application(parent.pos, name)?;
        let mut frame = Frame { confs: ptr::null_mut(), conf: parent.conf, pos };
        parse_block(cf, &mut frame, NGX_RTMP_APP_CONF)
    })
}

/// `recorder NAME { ... }` inside an application.
pub unsafe extern "C" fn recorder_block(cf: *mut ngx_conf_t, _cmd: *mut ngx_command_t, conf: *mut c_void) -> *mut c_char {
    guard(cf, || unsafe {
        let parent = &*(conf as *const Frame);
        let name = args(cf)?[0];
        let pos = (*parent.conf).tree.open_recorder(parent.pos, name)?;
        let mut frame = Frame { confs: ptr::null_mut(), conf: parent.conf, pos };
        parse_block(cf, &mut frame, super::NGX_RTMP_REC_CONF)
    })
}

/// Every other directive inside `rtmp {}`: parsed and checked by `crate::conf`.
pub unsafe extern "C" fn rtmp_directive(cf: *mut ngx_conf_t, cmd: *mut ngx_command_t, conf: *mut c_void) -> *mut c_char {
    guard(cf, || unsafe {
        let frame = &*(conf as *const Frame);
        let args = args(cf)?;
        (*frame.conf).tree.apply(frame.pos, (*cmd).offset, &args)?;
        if DIRECTIVES[(*cmd).offset].name == "resolver" {
            // nginx's own resolver, made (and its arguments checked) by nginx.
            let words = (*(*cf).args).elts as *mut ngx_str_t;
            let r = ngx::ffi::ngx_resolver_create(cf, words.add(1), (*(*cf).args).nelts - 1);
            if r.is_null() {
                return Err(Fail::Logged);
            }
            (*frame.conf).resolvers.push((frame.pos, r));
        }
        Ok(())
    })
}

/// The top-level multi-worker directives of the configuration being read.
static WORKERS: std::sync::Mutex<Option<crate::conf::workers::Workers>> = std::sync::Mutex::new(None);

/// What the configuration just read said at the top level (and the defaults again for
/// the next).
pub fn take_workers() -> crate::conf::workers::Workers {
    WORKERS.lock().map(|mut w| w.take()).ok().flatten().unwrap_or_default()
}

/// `rtmp_auto_push`, `rtmp_auto_push_reconnect`, `rtmp_socket_dir` (top level).
pub unsafe extern "C" fn core_directive(cf: *mut ngx_conf_t, cmd: *mut ngx_command_t, _conf: *mut c_void) -> *mut c_char {
    guard(cf, || unsafe {
        let d = &DIRECTIVES[(*cmd).offset];
        let words = (*(*cf).args).elts as *const ngx_str_t;
        let value = String::from_utf8_lossy((*words.add(1)).as_bytes()).into_owned();
        let mut w = WORKERS.lock().map_err(|_| "internal error".to_owned())?;
        w.get_or_insert_with(Default::default).set(d.name, &value).map_err(Fail::Msg)
    })
}

/// A directive outside `rtmp {}` (top level or `http {}`) whose feature is not built yet.
pub unsafe extern "C" fn unsupported(cf: *mut ngx_conf_t, cmd: *mut ngx_command_t, _conf: *mut c_void) -> *mut c_char {
    guard(cf, || unsafe {
        let d = &DIRECTIVES[(*cmd).offset];
        match d.status {
            Status::NotYet(feature) => Err(format!(
                "\"{}\" directive is not supported yet by ngx-rtmp-rs ({feature} is not implemented)",
                d.name
            )
            .into()),
            Status::Core => Err(format!("\"{}\" directive has no handler", d.name).into()),
        }
    })
}
