//! Recording's side in nginx: the recorders of each application (resolved with nginx's
//! prefix), real files for [`record::Recorder`] (positional writes, `record_lock` as an
//! fcntl write lock like nginx-rtmp-module's), and the local time for file names.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

use super::block::RtmpConf;
use crate::conf::notify::Event as Cb;
use crate::conf::ResolvedServer;
use crate::notify::{Method, Url};
use crate::record::{self, Files, Now, Tm};

/// A recorder of an application, and where its file ends are reported (`on_record_done`).
pub struct RecorderConf {
    pub cfg: record::Config,
    pub on_done: Option<Url>,
    pub method: Method,
}

/// The recorders of every application, by server and application.
pub fn resolve(servers: &[ResolvedServer], prefix: &str) -> Vec<Vec<Vec<RecorderConf>>> {
    servers
        .iter()
        .map(|s| {
            s.apps
                .iter()
                .map(|app| {
                    app.recorders(prefix)
                        .into_iter()
                        .map(|(cfg, settings)| RecorderConf {
                            cfg,
                            on_done: settings.notify.url(Cb::RecordDone).cloned(),
                            method: settings.notify.method(),
                        })
                        .collect()
                })
                .collect()
        })
        .collect()
}

/// The recorders of `[server][app]`.
pub fn of(rc: &RtmpConf, server: usize, app: usize) -> &[RecorderConf] {
    rc.records.get(server).and_then(|apps| apps.get(app)).map_or(&[], Vec::as_slice)
}

#[derive(Default)]
pub struct Disk {
    file: Option<File>,
}

impl Files for Disk {
    fn open(&mut self, path: &str, append: bool, lock: bool) -> io::Result<u64> {
        if let Some(dir) = std::path::Path::new(path).parent() {
            std::fs::create_dir_all(dir)?;
        }
        let f = OpenOptions::new().read(true).write(true).create(true).truncate(!append).open(path)?;
        if lock {
            // SAFETY: a plain fcntl on a descriptor we own, with a zeroed-then-filled flock.
            let rc = unsafe {
                let mut fl: ngx::ffi::flock = core::mem::zeroed();
                fl.l_type = ngx::ffi::F_WRLCK as _;
                fl.l_whence = ngx::ffi::SEEK_SET as _;
                ngx::ffi::fcntl(f.as_raw_fd(), ngx::ffi::F_SETLK as i32, &raw const fl)
            };
            if rc == -1 {
                let e = io::Error::last_os_error();
                return Err(io::Error::new(e.kind(), format!("cannot lock it (record_lock): {e}")));
            }
        }
        let size = f.metadata()?.len();
        self.file = Some(f);
        Ok(size)
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.as_ref().ok_or_else(not_open)?.read_exact_at(buf, offset)
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.file.as_ref().ok_or_else(not_open)?.write_all_at(data, offset)
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.file.as_ref().ok_or_else(not_open)?.set_len(len)
    }

    fn close(&mut self) -> io::Result<()> {
        // Closing the descriptor also releases the lock.
        self.file = None;
        Ok(())
    }
}

fn not_open() -> io::Error {
    io::Error::other("no file open")
}

/// The local time of a second (for file names), from `localtime_r`.
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
        }
    }
}

thread_local! {
    /// The last second turned into local time: recorders ask for the time on every frame.
    static LOCAL: std::cell::Cell<(i64, Tm)> = std::cell::Cell::new((i64::MIN, Tm::default()));
}

/// Now, for recorders: nginx's cached clocks (milliseconds, and the wall clock's second)
/// and the local time of that second.
pub fn now() -> Now {
    // SAFETY: nginx's cached clocks, read on the worker's own thread.
    let (ms, unix) = unsafe { (ngx::ffi::ngx_current_msec as u64, (*ngx::ffi::ngx_cached_time).sec) };
    let local = LOCAL.with(|l| {
        let (sec, tm) = l.get();
        if sec == unix {
            return tm;
        }
        let tm = local_time(unix);
        l.set((unix, tm));
        tm
    });
    Now { ms, unix, local }
}
