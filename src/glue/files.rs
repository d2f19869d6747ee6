//! Where outputs keep their files, on the real file system: HLS's disk (live playlists
//! replaced by `renameat2(RENAME_EXCHANGE)`) and recordings' files (positional writes,
//! `record_lock` as an fcntl write lock like nginx-rtmp-module's).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

use crate::app::Storage;
use crate::hls::disk::Disk as HlsDisk;
use crate::record;

pub struct Disk;

impl Storage for Disk {
    fn hls(&mut self) -> Box<dyn crate::hls::Files> {
        Box::new(HlsDisk::with_exchange(exchange))
    }

    fn record(&mut self) -> Box<dyn record::Files> {
        Box::new(RecordFile::default())
    }

    fn open_read(&mut self, path: &str) -> io::Result<Box<dyn crate::vod::ReadAt>> {
        let f = std::fs::File::open(path)?;
        if !f.metadata()?.is_file() {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        let len = f.metadata()?.len();
        Ok(Box::new(ReadFile(f, len)))
    }

    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove(&mut self, path: &str) {
        let _ = std::fs::remove_file(path);
    }
}

/// A file played to a player (`play DIR`), read where asked (its length as it was
/// when opened).
struct ReadFile(std::fs::File, u64);

impl crate::vod::ReadAt for ReadFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(&self.0, buf, offset)
    }

    fn len(&self) -> u64 {
        self.1
    }
}

/// `renameat2(a, b, RENAME_EXCHANGE)`: both files stay, each under the other's name.
fn exchange(a: &str, b: &str) -> io::Result<()> {
    let cstr = |s: &str| std::ffi::CString::new(s).map_err(io::Error::other);
    let (a, b) = (cstr(a)?, cstr(b)?);
    // SAFETY: two NUL-terminated paths that live across the call.
    let rc = unsafe {
        ngx::ffi::renameat2(ngx::ffi::AT_FDCWD, a.as_ptr(), ngx::ffi::AT_FDCWD, b.as_ptr(), ngx::ffi::RENAME_EXCHANGE)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[derive(Default)]
pub struct RecordFile {
    file: Option<File>,
}

impl record::Files for RecordFile {
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
