//! The worker's `exec*` children as nginx objects: each is started by `spawn.c` through a
//! keeper process that nginx's SIGCHLD handler cannot reap (see there), in a process group
//! of its own, and two descriptors join nginx's event loop: the keeper's pidfd (readable
//! once the command ended: reaped here, with its status) and the pipe the command's
//! stdout and stderr go to. What
//! they say goes to the application (`spawned`, `child_output`, `child_exited`), which
//! decides everything else (`app/exec.rs`).

use core::ffi::{c_char, c_int, c_void};
use std::collections::HashMap;
use std::ffi::CString;
use std::io::Read;
use std::mem::ManuallyDrop;
use std::os::fd::FromRawFd;

use ngx::ffi::{ngx_close_connection, ngx_connection_t, ngx_event_t, ngx_get_connection, ngx_handle_read_event, ngx_post_event, ngx_posted_events, NGX_OK};

use super::clock::now;
use crate::app::exec::{ChildId, Exit};
use crate::exec::{find_program, Redirect, Spec, DEFAULT_PATH};

#[repr(C)]
struct CRedirect {
    fd: c_int,
    to: c_int,
    path: *const c_char,
    mode: c_int,
}

extern "C" {
    fn ngx_rtmp_rs_spawn(
        path: *const c_char,
        argv: *const *const c_char,
        envp: *const *const c_char,
        r: *const CRedirect,
        nr: c_int,
        pidfd: *mut c_int,
        out: *mut c_int,
    ) -> c_int;
    fn ngx_rtmp_rs_reap(pidfd: c_int, code: *mut c_int, sig: *mut c_int) -> c_int;
    fn ngx_rtmp_rs_signal(pid: c_int, sig: c_int) -> c_int;
    fn ngx_rtmp_rs_wait(pidfd: c_int, ms: c_int);
}

/// Output read from one child per event (more: the event is posted again).
const READ_PER_EVENT: usize = 64 * 1024;

struct Proc {
    pid: i32,
    pidfd: *mut ngx_connection_t,
    /// None once the pipe is closed (EOF).
    out: Option<*mut ngx_connection_t>,
}

/// The running children, by the application's id.
#[derive(Default)]
pub struct Procs {
    map: HashMap<ChildId, Proc>,
}

fn cstr(s: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("{s:?} has a NUL byte"))
}

impl Procs {
    /// Starts child `id`; its pid.
    pub fn start(&mut self, id: ChildId, spec: &Spec) -> Result<i32, String> {
        let path = std::env::var("PATH").ok().filter(|p| !p.is_empty()).unwrap_or_else(|| DEFAULT_PATH.to_owned());
        let program = find_program(&spec.argv[0], &path).ok_or_else(|| format!("\"{}\" not found (searched {path})", spec.argv[0]))?;
        let program = cstr(&program.to_string_lossy())?;
        let argv: Vec<CString> = spec.argv.iter().map(|a| cstr(a)).collect::<Result<_, _>>()?;
        let mut env: Vec<CString> = std::env::vars_os()
            .filter_map(|(k, v)| {
                let mut kv = k.into_encoded_bytes();
                kv.push(b'=');
                kv.extend(v.into_encoded_bytes());
                CString::new(kv).ok()
            })
            .collect();
        if std::env::var_os("PATH").is_none() {
            env.push(cstr(&format!("PATH={DEFAULT_PATH}"))?);
        }
        let paths: Vec<Option<CString>> = spec
            .redirects
            .iter()
            .map(|r| match r {
                Redirect::File { path, .. } => cstr(path).map(Some),
                Redirect::Dup { .. } => Ok(None),
            })
            .collect::<Result<_, _>>()?;
        let redirects: Vec<CRedirect> = spec
            .redirects
            .iter()
            .zip(&paths)
            .map(|(r, p)| match r {
                Redirect::File { fd, append, read, .. } => CRedirect {
                    fd: *fd,
                    to: -1,
                    path: p.as_ref().map_or(core::ptr::null(), |p| p.as_ptr()),
                    mode: if *read { 0 } else if *append { 2 } else { 1 },
                },
                Redirect::Dup { fd, to } => CRedirect { fd: *fd, to: *to, path: core::ptr::null(), mode: 0 },
            })
            .collect();
        let ptrs = |v: &[CString]| v.iter().map(|s| s.as_ptr()).chain(std::iter::once(core::ptr::null())).collect::<Vec<_>>();
        let (argp, envp) = (ptrs(&argv), ptrs(&env));
        let (mut pidfd, mut out) = (-1, -1);
        // SAFETY: NUL-terminated strings and arrays that outlive the call.
        let pid = unsafe {
            ngx_rtmp_rs_spawn(program.as_ptr(), argp.as_ptr(), envp.as_ptr(), redirects.as_ptr(), redirects.len() as c_int, &mut pidfd, &mut out)
        };
        if pid < 0 {
            return Err(format!("clone failed: {}", std::io::Error::from_raw_os_error(-pid)));
        }
        // SAFETY: descriptors spawn.c just opened for us.
        let watched = unsafe { (watch(pidfd, id, on_exit), watch(out, id, on_output)) };
        match watched {
            (Some(p), o) => {
                self.map.insert(id, Proc { pid, pidfd: p, out: o });
                Ok(pid)
            }
            (None, o) => {
                // (No connection left for it: it cannot be watched, so it is not kept.)
                // SAFETY: our connection / descriptor.
                unsafe {
                    ngx_rtmp_rs_signal(pid, 9);
                    ngx_rtmp_rs_wait(pidfd, 1000);
                    ngx_rtmp_rs_reap(pidfd, &mut 0, &mut 0);
                    drop(std::fs::File::from_raw_fd(pidfd));
                    if let Some(o) = o {
                        ngx_close_connection(o);
                    }
                }
                Err("no free connection (worker_connections) to watch it".into())
            }
        }
    }

    /// Sends a signal to a child's process group.
    pub fn signal(pid: i32, signal: i32) {
        // SAFETY: a plain system call on a pid of ours (not reaped yet, so not reused).
        unsafe { ngx_rtmp_rs_signal(pid, signal) };
    }

    /// The worker exits: `signals` (pid, exec_kill_signal) of the children still running
    /// go out, they get up to `grace_ms` together, then SIGKILL; all are reaped.
    pub fn exit(&mut self, signals: &[(i32, i32)], grace_ms: u64) {
        for &(pid, sig) in signals {
            Procs::signal(pid, sig);
        }
        let start = std::time::Instant::now();
        for (_, p) in self.map.drain() {
            // SAFETY: our connections; nothing uses them after this.
            unsafe {
                let fd = (*p.pidfd).fd;
                let left = grace_ms.saturating_sub(start.elapsed().as_millis() as u64);
                ngx_rtmp_rs_wait(fd, left as c_int);
                let (mut code, mut sig) = (0, 0);
                if ngx_rtmp_rs_reap(fd, &mut code, &mut sig) == 0 {
                    ngx_rtmp_rs_signal(p.pid, 9);
                    ngx_rtmp_rs_wait(fd, 1000);
                    ngx_rtmp_rs_reap(fd, &mut code, &mut sig);
                }
                ngx_close_connection(p.pidfd);
                if let Some(o) = p.out {
                    ngx_close_connection(o);
                }
            }
        }
    }

    /// Reads what child `id` wrote (at most `READ_PER_EVENT`); true at EOF or an error.
    fn read(&mut self, id: ChildId, into: &mut Vec<u8>) -> bool {
        let Some(c) = self.map.get(&id).and_then(|p| p.out) else { return true };
        // SAFETY: the pipe's descriptor, open while its connection is.
        let mut f = ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd((*c).fd) });
        let mut buf = [0u8; 16 * 1024];
        while into.len() < READ_PER_EVENT {
            match f.read(&mut buf) {
                Ok(0) => return true,
                Ok(n) => into.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return true,
            }
        }
        // More is waiting: the rest next turn.
        // SAFETY: the pipe connection's read event.
        unsafe { ngx_post_event((*c).read, &raw mut ngx_posted_events) };
        false
    }

    fn close_output(&mut self, id: ChildId) {
        if let Some(o) = self.map.get_mut(&id).and_then(|p| p.out.take()) {
            // SAFETY: our connection; nothing uses it after this.
            unsafe { ngx_close_connection(o) };
        }
    }
}

/// `fd` joins nginx's event loop as a connection whose data is the child's id.
unsafe fn watch(fd: c_int, id: ChildId, handler: unsafe extern "C" fn(*mut ngx_event_t)) -> Option<*mut ngx_connection_t> {
    let log = (*ngx::ffi::ngx_cycle).log;
    let c = ngx_get_connection(fd, log);
    if c.is_null() {
        drop(std::fs::File::from_raw_fd(fd));
        return None;
    }
    (*c).data = id as usize as *mut c_void;
    (*c).log = log;
    (*(*c).read).log = log;
    (*(*c).read).handler = Some(handler);
    if ngx_handle_read_event((*c).read, 0) != NGX_OK as isize {
        ngx_close_connection(c);
        return None;
    }
    Some(c)
}

unsafe fn id_of(ev: *mut ngx_event_t) -> ChildId {
    let c = (*ev).data as *mut ngx_connection_t;
    (*c).data as usize as ChildId
}

/// The child's output: to the application, line by line.
unsafe extern "C" fn on_output(ev: *mut ngx_event_t) {
    let id = id_of(ev);
    super::worker::guarded_child(|w| {
        let mut got = Vec::new();
        let eof = w.procs.read(id, &mut got);
        if !got.is_empty() {
            w.app.child_output(id, &got, &now());
        }
        if eof {
            w.procs.close_output(id);
        }
    });
}

/// The child ended: what it still wrote, then its status, to the application.
unsafe extern "C" fn on_exit(ev: *mut ngx_event_t) {
    let id = id_of(ev);
    super::worker::guarded_child(|w| {
        let Some(p) = w.procs.map.get(&id) else { return };
        let fd = (*p.pidfd).fd;
        let (mut code, mut sig) = (0, 0);
        // SAFETY: the pidfd of a child of ours.
        match ngx_rtmp_rs_reap(fd, &mut code, &mut sig) {
            0 => return,
            1 => {}
            // (Reaped by someone else: ended, its status unknown.)
            _ => (code, sig) = (-1, 0),
        }
        let mut got = Vec::new();
        w.procs.read(id, &mut got);
        if !got.is_empty() {
            w.app.child_output(id, &got, &now());
        }
        w.procs.close_output(id);
        if let Some(p) = w.procs.map.remove(&id) {
            ngx_close_connection(p.pidfd);
        }
        let exit = if sig != 0 { Exit::Signal(sig) } else { Exit::Code(code) };
        w.app.child_exited(id, exit, &now());
    });
}
