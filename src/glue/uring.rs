//! Batched writes: many players' writes in one system call, through the io_uring of
//! `uring.c` (one per worker). What it is for and why it cannot block: see there.

use core::cell::Cell;
use core::ffi::{c_int, c_long, c_uint, c_void};
use std::io::IoSlice;

extern "C" {
    fn rs_uring_open(entries: c_uint) -> c_int;
    fn rs_uring_close();
    fn rs_uring_sendmsg(
        n: c_uint,
        fds: *const c_int,
        iovs: *const c_void,
        first: *const c_uint,
        counts: *const c_uint,
        results: *mut c_long,
    ) -> c_int;
}

/// Writes in one submission; players beyond it go in the next. Measured here (fan-out to
/// 200 and 500 players, with and without merge_writes): batches of 16 took 10-20% less
/// worker CPU than a writev() per player; a whole turn's players in one batch saved less,
/// and nothing with merged writes (a guess: with no reader running in between, every
/// socket's new buffers come cold from memory).
const ENTRIES: u32 = 16;

thread_local! {
    /// How many writes a batch may hold: 0 none (no ring: write one by one), -1 not
    /// tried yet (the ring is opened when a worker first writes to players).
    static CAPACITY: Cell<isize> = const { Cell::new(-1) };
}

/// Writes a batch may hold; 0: write one by one. The first call opens the worker's ring;
/// if the kernel has no io_uring or refuses it, `refused` gets the errno (once).
pub fn capacity_or_open(refused: impl FnOnce(i32)) -> usize {
    let n = CAPACITY.with(|c| c.get());
    if n >= 0 {
        return n as usize;
    }
    // SAFETY: no arguments to trust; the C side keeps its own state.
    let n = unsafe { rs_uring_open(ENTRIES) };
    if n <= 0 {
        refused(-n);
    }
    let n = n.max(0) as isize;
    CAPACITY.with(|c| c.set(n));
    n as usize
}

/// Writes a batch may hold (0: write one by one).
pub fn capacity() -> usize {
    CAPACITY.with(|c| c.get()).max(0) as usize
}

pub fn close() {
    CAPACITY.with(|c| c.set(-1));
    // SAFETY: unmaps and closes only what rs_uring_open made (nothing if it did not).
    unsafe { rs_uring_close() }
}

/// The outcome of one write of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wrote {
    Bytes(usize),
    /// The write failed: its errno.
    Failed(i32),
    /// Not made: the ring failed first (make it with `writev`).
    NotMade,
    /// The ring failed after it took this write: what the peer got is unknown.
    Unknown,
}

/// The writes of one batch being gathered: each a socket and its buffers. Reused from
/// batch to batch (it keeps its allocations).
#[derive(Default)]
pub struct Batch {
    fds: Vec<c_int>,
    // (IoSlice is ABI-compatible with struct iovec on Unix.)
    iovs: Vec<IoSlice<'static>>,
    first: Vec<c_uint>,
    counts: Vec<c_uint>,
    results: Vec<c_long>,
}

impl Batch {
    pub fn clear(&mut self) {
        self.fds.clear();
        self.iovs.clear();
        self.first.clear();
        self.counts.clear();
        self.results.clear();
    }

    /// Adds a write of `bufs` to `fd`.
    ///
    /// # Safety
    /// The buffers must stay alive and unchanged until `submit` returns.
    pub unsafe fn push<'a>(&mut self, fd: c_int, bufs: impl Iterator<Item = &'a [u8]>) {
        let start = self.iovs.len();
        for b in bufs {
            // SAFETY: the caller keeps `b` alive until `submit` returns; the 'static is
            // never seen outside this batch, which is cleared before the next one.
            self.iovs.push(IoSlice::new(unsafe { core::slice::from_raw_parts(b.as_ptr(), b.len()) }));
        }
        self.fds.push(fd);
        self.first.push(start as c_uint);
        self.counts.push((self.iovs.len() - start) as c_uint);
    }

    /// Makes every write (at most `capacity()`); the outcome of each, in order. If the
    /// ring fails, it is closed for good (`capacity()` is 0 from then on).
    pub fn submit(&mut self) -> impl Iterator<Item = Wrote> + '_ {
        let n = self.fds.len();
        self.results.clear();
        self.results.resize(n, 0);
        // SAFETY: the arrays hold n entries each (iovs: first[i] + counts[i] within it);
        // the buffers are alive (push's contract); results has room for n.
        let rc = unsafe {
            rs_uring_sendmsg(
                n as c_uint,
                self.fds.as_ptr(),
                self.iovs.as_ptr().cast(),
                self.first.as_ptr(),
                self.counts.as_ptr(),
                self.results.as_mut_ptr(),
            )
        };
        if rc != 0 {
            CAPACITY.with(|c| c.set(0));
        }
        self.iovs.clear();
        self.results.iter().map(move |&r| match r {
            r if r >= 0 => Wrote::Bytes(r as usize),
            r if -r == ECANCELED => Wrote::NotMade,
            r if -r == EIO && rc != 0 => Wrote::Unknown,
            r => Wrote::Failed(-r as i32),
        })
    }
}

const ECANCELED: c_long = 125;
const EIO: c_long = 5;
