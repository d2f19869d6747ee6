//! The `http {}` side: `rtmp_stat` and `rtmp_control` locations (their settings in
//! `loc.rs`), and the log phase that counts HLS viewers. The content handlers ask the
//! worker's application (`worker::snapshot`, `worker::control`) and answer.

use core::ffi::{c_char, c_void};
use core::ptr;
use std::panic::{catch_unwind, AssertUnwindSafe};

use ngx::ffi::{
    ngx_command_t, ngx_conf_log_error, ngx_conf_t, ngx_http_conf_ctx_t,
    ngx_http_core_loc_conf_t, ngx_http_core_module, ngx_http_discard_request_body,
    ngx_http_request_t, ngx_int_t,
    ngx_str_t, NGX_DECLINED, NGX_ERROR, NGX_HTTP_GET, NGX_HTTP_HEAD, NGX_HTTP_INTERNAL_SERVER_ERROR,
    NGX_HTTP_NOT_ALLOWED, NGX_HTTP_NO_CONTENT, NGX_LOG_EMERG, NGX_OK,
};

use super::loc::{self, loc_conf, LocConf, Publish};
use super::respond::{guarded, respond};
use super::worker;
use crate::conf::directives::DIRECTIVES;
use crate::conf::http::{self as h, Format};
use crate::stat::{self, Sections};

const NGX_CONF_OK: *mut c_char = ptr::null_mut();
const NGX_CONF_ERROR: *mut c_char = usize::MAX as *mut c_char;

/// The `whip_*` directives: `whip_publish` in a location, the others (the sidecar's, one
/// per nginx) in `http` or a `server`, kept in the main configuration.
unsafe fn whip_directive(cf: *mut ngx_conf_t, lc: &mut LocConf, name: &'static str, words: &mut [ngx_str_t], args: &[&str]) -> Result<(), String> {
    use crate::conf::whip as w;
    let mc = super::whip::main_conf_of(cf);
    if name == "whip_publish" || name == "whep_play" {
        if !lc.whip.is_null() {
            return Err(format!("\"{name}\" directive is duplicate"));
        }
        let app = w::publish_app(name, args[0])?;
        let name_cv = if words.len() > 2 { super::whip::compile_name(cf, name, &mut words[2])? } else { ptr::null_mut() };
        let cln = ngx::ffi::ngx_pool_cleanup_add((*cf).pool, 0);
        if cln.is_null() {
            return Err("out of memory".into());
        }
        let p = Box::into_raw(Box::new(Publish { app, name: name_cv, play: name == "whep_play" }));
        (*cln).handler = Some(loc::drop_publish);
        (*cln).data = p as *mut c_void;
        lc.whip = p;
        mc.enabled = true;
        let file = String::from_utf8_lossy((*(*cf).conf_file).file.name.as_bytes()).into_owned();
        mc.apps.push((name, (*p).app.clone(), format!("{file}:{}", (*(*cf).conf_file).line)));
        (*core_loc_conf(cf)).handler = Some(super::whip::handler);
        return Ok(());
    }
    if name != "whip_ice_server" {
        if mc.set.contains(&name) {
            return Err(format!("\"{name}\" directive is duplicate (it is set once, for the whole http block)"));
        }
        mc.set.push(name);
    }
    let s = &mut mc.settings;
    match name {
        "whip_udp_listen" => s.udp = w::udp_listen(args[0])?,
        "whip_candidate" => s.candidate = Some(w::candidate(args[0])?),
        "whip_ice_server" => s.ice_servers.push(w::ice_server(args)?),
        "whip_max_sessions" => s.max_sessions = w::count(name, args[0])?,
        "whip_max_sessions_per_ip" => s.max_per_ip = w::count(name, args[0])?,
        "whip_max_sdp" => s.max_sdp = w::max_sdp(args[0])?,
        "whip_ice_timeout" => s.ice_timeout = w::time(name, args[0], false)?,
        "whip_timeout" => s.idle_timeout = w::time(name, args[0], false)?,
        "whip_keyframe_interval" => s.keyframe_interval = w::time(name, args[0], true)?,
        "whep_audio_bitrate" => s.whep_audio_bitrate = w::audio_bitrate(args[0])?,
        "whep_max_sessions" => s.whep_max_sessions = w::count(name, args[0])?,
        "whep_max_sessions_per_ip" => s.whep_max_per_ip = w::count(name, args[0])?,
        _ => return Err(format!("\"{name}\" directive has no handler")),
    }
    Ok(())
}

/// The location being configured's core settings (to install a content handler).
unsafe fn core_loc_conf(cf: *mut ngx_conf_t) -> *mut ngx_http_core_loc_conf_t {
    let ctx = (*cf).ctx as *mut ngx_http_conf_ctx_t;
    *(*ctx).loc_conf.add(ngx_http_core_module.ctx_index) as *mut ngx_http_core_loc_conf_t
}

/// `rtmp_stat`, `rtmp_stat_stylesheet`, `rtmp_stat_format`, `rtmp_control`.
pub unsafe extern "C" fn directive(cf: *mut ngx_conf_t, cmd: *mut ngx_command_t, conf: *mut c_void) -> *mut c_char {
    let r = catch_unwind(AssertUnwindSafe(|| unsafe {
        let lc = &mut *(conf as *mut LocConf);
        let words: &mut [ngx_str_t] = (*(*cf).args).as_slice_mut();
        let args: Vec<String> = words[1..].iter().map(|w| String::from_utf8_lossy(w.as_bytes()).into_owned()).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let name = DIRECTIVES[(*cmd).offset].name;
        let dup = || Err(format!("\"{name}\" directive is duplicate"));
        if name.starts_with("whip_") || name.starts_with("whep_") {
            return whip_directive(cf, lc, name, words, &args);
        }
        match name {
            "hls_serve" => {
                if !lc.hls_serve.is_null() {
                    return dup();
                }
                let app = crate::conf::whip::publish_app(name, args[0])?;
                let cln = ngx::ffi::ngx_pool_cleanup_add((*cf).pool, 0);
                if cln.is_null() {
                    return Err("out of memory".into());
                }
                let p = Box::into_raw(Box::new(super::hls_serve::Serve { app: app.clone() }));
                (*cln).handler = Some(super::hls_serve::drop_serve);
                (*cln).data = p as *mut c_void;
                lc.hls_serve = p;
                // (Checked once the rtmp block is known: the application must exist.)
                let mc = super::whip::main_conf_of(cf);
                let file = String::from_utf8_lossy((*(*cf).conf_file).file.name.as_bytes()).into_owned();
                mc.apps.push((name, app, format!("{file}:{}", (*(*cf).conf_file).line)));
            }
            "rtmp_stat" => {
                if lc.stat != 0 {
                    return dup();
                }
                lc.stat = h::stat(&args)? as usize;
                (*core_loc_conf(cf)).handler = Some(stat_handler);
            }
            "rtmp_control" => {
                if lc.control != 0 {
                    return dup();
                }
                lc.control = h::control(&args)? as usize;
                (*core_loc_conf(cf)).handler = Some(control_handler);
            }
            "rtmp_stat_format" => {
                if lc.format != 0 {
                    return dup();
                }
                lc.format = h::format(args[0])? as usize;
            }
            "rtmp_hls_viewers" => {
                if lc.hls_viewers != 0 {
                    return dup();
                }
                lc.hls_viewers = match args[0] {
                    "on" => 1,
                    "off" => 2,
                    other => return Err(format!("invalid value \"{other}\" in \"{name}\" directive, it must be \"on\" or \"off\"")),
                };
            }
            "rtmp_stat_stylesheet" => {
                if lc.stylesheet.len != 0 {
                    return dup();
                }
                lc.stylesheet = words[1];
            }
            _ => return Err(format!("\"{name}\" directive has no handler")),
        }
        Ok(())
    }));
    let msg = match r {
        Ok(Ok(())) => return NGX_CONF_OK,
        Ok(Err(m)) => m,
        Err(_) => "internal error in ngx-rtmp-rs while reading the configuration".to_owned(),
    };
    ngx_conf_log_error(NGX_LOG_EMERG as usize, cf, 0, c"%*s".as_ptr(), msg.len(), msg.as_ptr());
    NGX_CONF_ERROR
}

fn query(r: *mut ngx_http_request_t) -> String {
    // SAFETY: nginx sets r->args (possibly empty) for every request it hands a handler.
    unsafe { String::from_utf8_lossy((*r).args.as_bytes()).into_owned() }
}

/// Only GET and HEAD; a body is discarded.
unsafe fn read_only(r: *mut ngx_http_request_t) -> Option<ngx_int_t> {
    if (*r).method & (NGX_HTTP_GET | NGX_HTTP_HEAD) as usize == 0 {
        return Some(NGX_HTTP_NOT_ALLOWED as isize);
    }
    let rc = ngx_http_discard_request_body(r);
    (rc != NGX_OK as isize).then_some(rc)
}

unsafe extern "C" fn stat_handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    guarded(r, || unsafe {
        let lc = loc_conf(r);
        if lc.stat == 0 {
            return NGX_DECLINED as isize;
        }
        if let Some(rc) = read_only(r) {
            return rc;
        }
        let q = query(r);
        let format = match h::arg(&q, "format") {
            Some(f) => match Format::parse(&f) {
                Some(f) => f,
                None => return respond(r, 400, "text/plain", b"format must be xml, json or prometheus\n"),
            },
            None => match lc.format {
                2 => Format::Json,
                3 => Format::Prometheus,
                _ => Format::Xml,
            },
        };
        let bits = lc.stat as u8;
        let sections = Sections { live: bits & h::STAT_LIVE != 0, clients: bits & h::STAT_CLIENTS != 0 };
        let Some(snap) = worker::snapshot() else { return respond(r, 500, "text/plain", b"there is no rtmp {} block\n") };
        match format {
            Format::Xml => {
                let sheet = (lc.stylesheet.len > 0).then(|| String::from_utf8_lossy(lc.stylesheet.as_bytes()).into_owned());
                respond(r, 200, "text/xml", &stat::xml(&snap, sections, sheet.as_deref()))
            }
            Format::Json => respond(r, 200, "application/json", &stat::json(&snap, sections)),
            Format::Prometheus => respond(r, 200, "text/plain; version=0.0.4", &stat::prometheus(&snap)),
        }
    })
}

unsafe extern "C" fn control_handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    guarded(r, || unsafe {
        let lc = loc_conf(r);
        if lc.control == 0 {
            return NGX_DECLINED as isize;
        }
        if let Some(rc) = read_only(r) {
            return rc;
        }
        // .../SECTION/METHOD?args
        let uri = String::from_utf8_lossy((*r).uri.as_bytes()).into_owned();
        let mut parts = uri.rsplit('/');
        let (method, section) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let bit = match section {
            "record" => h::CONTROL_RECORD,
            "drop" => h::CONTROL_DROP,
            "redirect" => h::CONTROL_REDIRECT,
            _ => 0,
        };
        if bit == 0 || lc.control as u8 & bit == 0 {
            return NGX_DECLINED as isize;
        }
        let q = query(r);
        let mine = worker::control(section, method, &|name| h::arg(&q, name));
        // The other workers act on their clients too; the request waits for them.
        let Some(rc) = super::conf::rtmp_conf().filter(|_| mine.is_ok()) else { return control_answer(r, mine) };
        (*(*r).main).set_count((*(*r).main).count() + 1);
        let alone = mine.clone();
        let done = Box::new(move |others| {
            let answer = crate::app::control::combine(mine.clone(), others);
            // (The request is kept by its count until it is finalized here.)
            let rc = guarded(r, || control_answer(r, answer));
            ngx::ffi::ngx_http_finalize_request(r, rc);
        });
        if super::peer_control::ask_others(rc, section, method, &q, done) {
            return ngx::ffi::NGX_DONE as isize;
        }
        (*(*r).main).set_count((*(*r).main).count() - 1);
        control_answer(r, alone)
    })
}

unsafe fn control_answer(r: *mut ngx_http_request_t, a: Result<crate::app::Answer, String>) -> ngx_int_t {
    match a {
        Ok(crate::app::Answer::Count(n)) => respond(r, 200, "text/plain", n.to_string().as_bytes()),
        Ok(crate::app::Answer::Path(Some(p))) => respond(r, 200, "text/plain", p.as_bytes()),
        Ok(crate::app::Answer::Path(None)) => respond(r, NGX_HTTP_NO_CONTENT as usize, "text/plain", b""),
        Err(why) => respond(r, NGX_HTTP_INTERNAL_SERVER_ERROR as usize, "text/plain", format!("{why}\n").as_bytes()),
    }
}

/// Registers the log-phase handler that counts HLS viewers and `hls_serve`'s
/// content-phase handler (it declines what is not a playlist of its location, so nginx's
/// static module serves the segments).
pub unsafe extern "C" fn postconfiguration(cf: *mut ngx_conf_t) -> ngx_int_t {
    let ctx = (*cf).ctx as *mut ngx_http_conf_ctx_t;
    let cmcf = *(*ctx).main_conf.add(ngx_http_core_module.ctx_index) as *mut ngx::ffi::ngx_http_core_main_conf_t;
    let content = &mut (*cmcf).phases[ngx::ffi::ngx_http_phases_NGX_HTTP_CONTENT_PHASE as usize];
    let h = ngx::ffi::ngx_array_push(&mut content.handlers) as *mut ngx::ffi::ngx_http_handler_pt;
    if h.is_null() {
        return NGX_ERROR as isize;
    }
    *h = Some(super::hls_serve::handler);
    let phase = &mut (*cmcf).phases[ngx::ffi::ngx_http_phases_NGX_HTTP_LOG_PHASE as usize];
    let h = ngx::ffi::ngx_array_push(&mut phase.handlers) as *mut ngx::ffi::ngx_http_handler_pt;
    if h.is_null() {
        return NGX_ERROR as isize;
    }
    *h = Some(log_handler);
    NGX_OK as isize
}

/// Counts a served HLS segment for its stream's viewers (`rtmp_hls_viewers on`).
unsafe extern "C" fn log_handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    let _ = catch_unwind(AssertUnwindSafe(|| unsafe {
        if loc_conf(r).hls_viewers != 1 || !matches!((*r).headers_out.status, 200 | 206) {
            return;
        }
        let uri = (*r).uri.as_bytes();
        let Some(name) = core::str::from_utf8(uri).ok().and_then(stat::hls_stream_of) else { return };
        // A viewer: the client's address and user agent.
        let mut viewer = std::hash::DefaultHasher::new();
        std::hash::Hash::hash((*(*r).connection).addr_text.as_bytes(), &mut viewer);
        let ua = (*r).headers_in.user_agent;
        if !ua.is_null() {
            std::hash::Hash::hash((*ua).value.as_bytes(), &mut viewer);
        }
        worker::hls_seen(name, std::hash::Hasher::finish(&viewer));
    }));
    NGX_OK as isize
}
