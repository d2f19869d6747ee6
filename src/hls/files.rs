//! The file operations the segmenter needs: the real file system (`disk`), memory in
//! tests.

use std::io;

/// The file operations the segmenter needs. Paths are full paths.
pub trait Files {
    /// Creates (or truncates) the segment being written, and makes it the open one.
    fn create(&mut self, path: &str) -> io::Result<()>;
    /// Appends to the open segment.
    fn append(&mut self, data: &[u8]) -> io::Result<()>;
    /// Closes the open segment.
    fn close(&mut self) -> io::Result<()>;
    /// Replaces a whole file atomically (write aside, rename over).
    fn replace(&mut self, path: &str, data: &[u8]) -> io::Result<()>;
    /// Replaces a file that is rewritten again within seconds (a live playlist): as
    /// atomic as `replace`, but it may skip what a file system does to make a rename-over
    /// durable across a power loss (ext4 writes the new file out at once, in the caller).
    fn replace_often(&mut self, path: &str, data: &[u8]) -> io::Result<()> {
        self.replace(path, data)
    }
    /// Marks a file as still in use (its modification time), for the cleanup sweep.
    fn touch(&mut self, path: &str);
    /// Creates a directory and its parents.
    fn mkdirs(&mut self, path: &str) -> io::Result<()>;
    fn read(&mut self, path: &str) -> Option<String>;
    fn random(&mut self, buf: &mut [u8]);
}

impl<T: Files + ?Sized> Files for Box<T> {
    fn create(&mut self, path: &str) -> io::Result<()> {
        (**self).create(path)
    }
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        (**self).append(data)
    }
    fn close(&mut self) -> io::Result<()> {
        (**self).close()
    }
    fn replace(&mut self, path: &str, data: &[u8]) -> io::Result<()> {
        (**self).replace(path, data)
    }
    fn replace_often(&mut self, path: &str, data: &[u8]) -> io::Result<()> {
        (**self).replace_often(path, data)
    }
    fn touch(&mut self, path: &str) {
        (**self).touch(path)
    }
    fn mkdirs(&mut self, path: &str) -> io::Result<()> {
        (**self).mkdirs(path)
    }
    fn read(&mut self, path: &str) -> Option<String> {
        (**self).read(path)
    }
    fn random(&mut self, buf: &mut [u8]) {
        (**self).random(buf)
    }
}
