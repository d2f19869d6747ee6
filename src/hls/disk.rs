//! The segmenter's files on a real file system, and the `hls_cleanup` sweep. Plain
//! `std::fs`: small, bounded writes from the event loop (segments are written in chunks of
//! up to a few hundred kB, playlists in one go).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::Files;

/// Atomically exchanges two existing files (Linux `renameat2(RENAME_EXCHANGE)`).
pub type Exchange = fn(&str, &str) -> io::Result<()>;

#[derive(Default)]
pub struct Disk {
    segment: Option<File>,
    exchange: Option<Exchange>,
}

impl Disk {
    /// A disk that replaces live playlists by exchanging the new file with the old one
    /// (then removing the old), where the file system can: on ext4 a rename over an
    /// existing file makes the caller write the new file's blocks out at once (its
    /// `auto_da_alloc` safeguard), which blocked the event loop for ~30-90 us per playlist
    /// here, far longer on a busy disk. An exchange is just as atomic for readers.
    pub fn with_exchange(exchange: Exchange) -> Self {
        Disk { segment: None, exchange: Some(exchange) }
    }

    /// Writes `path` aside and puts it in place: exchanged with the old version (which
    /// is then removed) where `exchange` works, renamed over it where not (the first
    /// version, a file system without exchange).
    fn put(path: &str, data: &[u8], exchange: Option<Exchange>) -> io::Result<()> {
        let tmp = format!("{path}.tmp");
        let mut exchanged = false;
        let r = (|| {
            let mut f = OpenOptions::new().write(true).create(true).truncate(true).mode(0o644).open(&tmp)?;
            f.write_all(data)?;
            drop(f);
            exchanged = exchange.is_some_and(|x| x(&tmp, path).is_ok());
            if exchanged {
                Ok(())
            } else {
                fs::rename(&tmp, path)
            }
        })();
        if exchanged || r.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        r
    }
}

impl Files for Disk {
    fn create(&mut self, path: &str) -> io::Result<()> {
        self.segment = None;
        self.segment = Some(OpenOptions::new().write(true).create(true).truncate(true).mode(0o644).open(path)?);
        Ok(())
    }

    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        match &mut self.segment {
            Some(f) => f.write_all(data),
            None => Err(io::Error::other("no open segment")),
        }
    }

    fn close(&mut self) -> io::Result<()> {
        self.segment = None;
        Ok(())
    }

    fn replace(&mut self, path: &str, data: &[u8]) -> io::Result<()> {
        Self::put(path, data, None)
    }

    fn replace_often(&mut self, path: &str, data: &[u8]) -> io::Result<()> {
        Self::put(path, data, self.exchange)
    }

    fn touch(&mut self, path: &str) {
        if let Ok(f) = File::options().write(true).open(path) {
            let _ = f.set_modified(SystemTime::now());
        }
    }

    fn mkdirs(&mut self, path: &str) -> io::Result<()> {
        fs::create_dir_all(path)
    }

    fn read(&mut self, path: &str) -> Option<String> {
        let mut s = String::new();
        // A playlist is small; anything bigger is not ours.
        File::open(path).ok()?.take(4 << 20).read_to_string(&mut s).ok()?;
        Some(s)
    }

    fn random(&mut self, buf: &mut [u8]) {
        if File::open("/dev/urandom").and_then(|mut f| f.read_exact(buf)).is_err() {
            // Never reached on Linux; still, no key made of zeros.
            let t = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos();
            for (i, b) in buf.iter_mut().enumerate() {
                *b = (t >> ((i % 16) * 8)) as u8 ^ (i as u8).wrapping_mul(151);
            }
        }
    }
}

/// `hls_cleanup`: removes from `dir` (and its subdirectories, which go when empty) the
/// playlists, segments and keys nobody has written for longer than they may be needed
/// (see [`super::max_age_ms`]). Returns how many entries are left in `dir`.
pub fn sweep(dir: &Path, playlist_length: u64, now: SystemTime, removed: &mut Vec<String>) -> usize {
    let Ok(entries) = fs::read_dir(dir) else { return 1 };
    let mut left = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else {
            left += 1;
            continue;
        };
        left += 1;
        if name.starts_with('.') {
            continue;
        }
        let Ok(meta) = e.metadata() else { continue };
        let path = e.path();
        if meta.is_dir() {
            if sweep(&path, playlist_length, now, removed) == 0 && fs::remove_dir(&path).is_ok() {
                removed.push(path.display().to_string());
                left -= 1;
            }
            continue;
        }
        let Some(age) = super::max_age_ms(name, playlist_length) else { continue };
        let Ok(mtime) = meta.modified() else { continue };
        if mtime + Duration::from_millis(age) <= now && fs::remove_file(&path).is_ok() {
            removed.push(path.display().to_string());
            left -= 1;
        }
    }
    left
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_is_atomic_and_sweep_keeps_fresh_files() {
        let dir = std::env::temp_dir().join(format!("ngx-rtmp-rs-disk-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let mut d = Disk::default();
        d.mkdirs(dir.join("nested").to_str().unwrap()).unwrap();
        let p = dir.join("a.m3u8");
        d.replace(p.to_str().unwrap(), b"one").unwrap();
        d.replace(p.to_str().unwrap(), b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert!(!dir.join("a.m3u8.tmp").exists());
        // Live rewrites exchange the files (here a stand-in that swaps by renames).
        fn swap(a: &str, b: &str) -> io::Result<()> {
            let c = format!("{b}.swap");
            fs::rename(b, &c)?;
            fs::rename(a, b)?;
            fs::rename(&c, a)
        }
        let mut live = Disk::with_exchange(swap);
        let q = dir.join("b.m3u8");
        live.replace_often(q.to_str().unwrap(), b"first").unwrap();
        live.replace_often(q.to_str().unwrap(), b"second").unwrap();
        live.replace_often(p.to_str().unwrap(), b"three").unwrap();
        assert_eq!((fs::read(&q).unwrap(), fs::read(&p).unwrap()), (b"second".to_vec(), b"three".to_vec()));
        assert!(!dir.join("b.m3u8.tmp").exists() && !dir.join("a.m3u8.tmp").exists());
        fs::remove_file(&q).unwrap();
        d.create(dir.join("nested/0.ts").to_str().unwrap()).unwrap();
        d.append(b"x").unwrap();
        d.close().unwrap();
        fs::write(dir.join("notes.txt"), "keep").unwrap();

        let mut removed = vec![];
        let now = SystemTime::now();
        sweep(&dir, 10_000, now, &mut removed);
        assert!(removed.is_empty(), "fresh files stay: {removed:?}");
        // 15 s later the playlist (10 s) is gone, the segment (20 s) not yet.
        sweep(&dir, 10_000, now + Duration::from_secs(15), &mut removed);
        assert_eq!(removed.len(), 1);
        assert!(!p.exists() && dir.join("nested/0.ts").exists());
        sweep(&dir, 10_000, now + Duration::from_secs(25), &mut removed);
        assert!(!dir.join("nested").exists(), "empty directory removed");
        assert!(dir.join("notes.txt").exists(), "files that are not HLS stay");
        fs::remove_dir_all(&dir).unwrap();
    }
}
