//! TLS for `rtmps://` relays, through nginx's OpenSSL layer (`ngx_event_openssl`): one
//! client context per `rtmp {}` block that has such relays (the trusted authorities of
//! `relay_ssl_trusted_certificate`), and per connection the handshake with SNI, then the
//! certificate's check (chain and host name) as nginx's `proxy_ssl_verify` does it. Once
//! the handshake is done, nginx's `c->recv`/`c->send` are the TLS ones.

use core::ffi::{c_long, c_void};
use core::ptr;
use std::ffi::CString;
use std::net::IpAddr;

use ngx::ffi::{
    ngx_conf_t, ngx_connection_t, ngx_pcalloc, ngx_pool_cleanup_add, ngx_ssl_check_host, ngx_ssl_cleanup_ctx,
    ngx_ssl_create, ngx_ssl_create_connection, ngx_ssl_handshake, ngx_ssl_shutdown, ngx_ssl_t, ngx_ssl_trusted_certificate,
    ngx_str_t, SSL_ctrl, SSL_get_verify_result, NGX_AGAIN, NGX_OK,
};

/// OpenSSL's `SSL_CTRL_SET_TLSEXT_HOSTNAME` and `TLSEXT_NAMETYPE_host_name`
/// (`SSL_set_tlsext_host_name` is a macro bindgen cannot see).
const SSL_CTRL_SET_TLSEXT_HOSTNAME: i32 = 55;
const TLSEXT_NAMETYPE_HOST_NAME: c_long = 0;
/// nginx's `NGX_SSL_CLIENT` and `NGX_SSL_TLSv1_2 | NGX_SSL_TLSv1_3`.
const NGX_SSL_CLIENT: usize = 2;
const NGX_SSL_TLS12_13: usize = 0x0020 | 0x0040;
/// How long a chain may be: a leaf, intermediates and a root.
const VERIFY_DEPTH: isize = 10;

/// Makes the client context, trusting the authorities in `trusted` (a path as written,
/// relative to nginx's configuration directory). Errors are nginx's, logged already.
///
/// # Safety
/// Called while nginx parses the configuration.
pub unsafe fn context(cf: *mut ngx_conf_t, trusted: &str) -> Result<*mut ngx_ssl_t, ()> {
    let pool = (*cf).pool;
    let ssl = ngx_pcalloc(pool, core::mem::size_of::<ngx_ssl_t>()) as *mut ngx_ssl_t;
    if ssl.is_null() {
        return Err(());
    }
    (*ssl).log = (*cf).log;
    if ngx_ssl_create(ssl, NGX_SSL_TLS12_13 as _, ptr::null_mut()) != NGX_OK as isize {
        return Err(());
    }
    let cln = ngx_pool_cleanup_add(pool, 0);
    if cln.is_null() {
        ngx_ssl_cleanup_ctx(ssl as *mut c_void);
        return Err(());
    }
    (*cln).handler = Some(ngx_ssl_cleanup_ctx);
    (*cln).data = ssl as *mut c_void;
    // (nginx rewrites the path in place to a full one: a copy in the pool.)
    let mem = ngx::ffi::ngx_pnalloc(pool, trusted.len() + 1) as *mut u8;
    if mem.is_null() {
        return Err(());
    }
    ptr::copy_nonoverlapping(trusted.as_ptr(), mem, trusted.len());
    *mem.add(trusted.len()) = 0;
    let mut path = ngx_str_t { len: trusted.len(), data: mem };
    if ngx_ssl_trusted_certificate(cf, ssl, &mut path, VERIFY_DEPTH as _) != NGX_OK as isize {
        return Err(());
    }
    Ok(ssl)
}

/// What a handshake came to.
pub enum Handshake {
    Done,
    /// nginx calls `on_done` (set as the connection's TLS handler) when it is over.
    Again,
    Failed(String),
}

/// Starts TLS on connected `c` towards `name` (SNI unless it is an IP address).
///
/// # Safety
/// `c` is a connected relay connection of ours without TLS yet; `ssl` is the context.
pub unsafe fn start(
    ssl: *mut ngx_ssl_t,
    c: *mut ngx_connection_t,
    name: &str,
    on_done: unsafe extern "C" fn(*mut ngx_connection_t),
) -> Handshake {
    if ngx_ssl_create_connection(ssl, c, NGX_SSL_CLIENT as _) != NGX_OK as isize {
        return Handshake::Failed("cannot start TLS".into());
    }
    if name.parse::<IpAddr>().is_err() {
        if let Ok(host) = CString::new(name) {
            // (OpenSSL copies the name.)
            SSL_ctrl((*(*c).ssl).connection, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_HOST_NAME, host.as_ptr() as *mut c_void);
        }
    }
    match ngx_ssl_handshake(c) {
        rc if rc == NGX_AGAIN as isize => {
            (*(*c).ssl).handler = Some(on_done);
            Handshake::Again
        }
        rc if rc == NGX_OK as isize => Handshake::Done,
        _ => Handshake::Failed("TLS handshake failed".into()),
    }
}

/// After the handshake: whether it succeeded and, with `verify`, whether the server's
/// certificate chains to a trusted authority and is for `name`.
///
/// # Safety
/// `c` is a connection `start` was called on.
pub unsafe fn check(c: *mut ngx_connection_t, name: &str, verify: bool) -> Result<(), String> {
    let sc = (*c).ssl;
    if sc.is_null() || (*sc).handshaked() == 0 {
        return Err(if (*(*c).read).timedout() != 0 || (*(*c).write).timedout() != 0 {
            "TLS handshake timed out".into()
        } else {
            "TLS handshake failed".into()
        });
    }
    if !verify {
        return Ok(());
    }
    let rc = SSL_get_verify_result((*sc).connection);
    if rc != 0 {
        let why = std::ffi::CStr::from_ptr(ngx::ffi::X509_verify_cert_error_string(rc)).to_string_lossy().into_owned();
        return Err(format!("the server's certificate cannot be verified ({rc}: {why}); see relay_ssl_trusted_certificate"));
    }
    let mut host = ngx_str_t { len: name.len(), data: name.as_ptr() as *mut u8 };
    if ngx_ssl_check_host(c, &mut host) != NGX_OK as isize {
        return Err(format!("the server's certificate is not for \"{name}\""));
    }
    Ok(())
}

/// Ends TLS on a connection about to close (without waiting for the peer).
///
/// # Safety
/// `c` is an open connection.
pub unsafe fn shutdown(c: *mut ngx_connection_t) {
    let sc = (*c).ssl;
    if !sc.is_null() {
        (*sc).set_no_wait_shutdown(1);
        (*sc).set_no_send_shutdown(1);
        let _ = ngx_ssl_shutdown(c);
    }
}
