//! One nginx connection of a client (an RTMP client, a relay, a WHIP session's
//! socketpair), owned by a [`Conn`] in `c->data`: the only code that touches its
//! `ngx_connection_t`. It reads, writes (`writev`; the io_uring batches are the worker's),
//! keeps the client's timers and closes. What the connection is for is the application's
//! (`crate::app`); `worker` drives both.

use core::ffi::c_void;
use core::mem::MaybeUninit;
use core::ptr;
use std::io::{IoSlice, Write};
use std::mem::ManuallyDrop;
use std::net::TcpStream;
use std::os::fd::FromRawFd;

use ngx::ffi::{
    ngx_add_timer, ngx_close_connection, ngx_connection_t, ngx_del_timer, ngx_destroy_pool, ngx_event_t,
    ngx_handle_read_event, ngx_handle_write_event, ngx_post_event, ngx_posted_events, ngx_shm_zone_t, NGX_AGAIN,
    NGX_OK,
};

use super::{shared, tls};
use crate::app::{ClientId, Timer};

type Handler = unsafe extern "C" fn(*mut ngx_event_t);

/// The event handlers a connection's events call (the worker's).
pub struct Handlers {
    pub read: Handler,
    pub write: Handler,
    pub timer: Handler,
}

/// A connection's timers besides its read and send timeouts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    App(Timer),
    /// `merge_reads`: read the batch.
    Batch,
}

const TICKS: [Tick; 5] = [Tick::App(Timer::Ping), Tick::App(Timer::Idle), Tick::App(Timer::Update), Tick::Batch, Tick::App(Timer::Vod)];

/// What a receive got.
pub enum Recv {
    Data(usize),
    /// Nothing now.
    Again,
    /// The peer closed the connection.
    Closed,
    /// An error (nginx logged it).
    Failed,
}

pub struct Conn {
    c: *mut ngx_connection_t,
    pub id: ClientId,
    /// `timeout`: how long without input (and with a send pending) it may go.
    timeout: u64,
    /// Timer events, made when first armed (most clients need one or two).
    ticks: [Option<Box<ngx_event_t>>; 5],
    timer_handler: Handler,
    /// An outgoing relay connection not connected yet: written once it is.
    pub connecting: bool,
    /// Its `SO_RCVLOWAT` is set for batched reads.
    pub lowat: bool,
    /// When the handshake and `connect` must be done by (`handshake_timeout`, nginx's
    /// millisecond clock): input restarts `timeout`, never past this.
    deadline: Option<ngx::ffi::ngx_msec_t>,
    /// The `max_connections` slot it holds (null: none).
    limit_zone: *mut ngx_shm_zone_t,
    /// An `rtmps://` relay before its TLS handshake is done: the server's name, and
    /// whether its certificate is checked.
    pub tls: Option<Box<(String, bool)>>,
}

impl Conn {
    /// Gives nginx's connection `c` a `Conn` (as `c->data`) and its event handlers.
    ///
    /// # Safety
    /// `c` is an open connection nginx gave us, with no `data` of its own; the `Conn`
    /// lives until `close`.
    pub unsafe fn attach(c: *mut ngx_connection_t, id: ClientId, timeout: u64, h: &Handlers, limit_zone: *mut ngx_shm_zone_t) -> &'static mut Conn {
        let conn = Box::into_raw(Box::new(Conn {
            c,
            id,
            timeout,
            ticks: [None, None, None, None, None],
            timer_handler: h.timer,
            connecting: false,
            lowat: false,
            deadline: None,
            limit_zone,
            tls: None,
        }));
        (*c).data = conn as *mut c_void;
        (*(*c).read).handler = Some(h.read);
        (*(*c).write).handler = Some(h.write);
        &mut *conn
    }

    /// The `Conn` of a connection (None once it is closed).
    ///
    /// # Safety
    /// `c` is a connection given a `Conn` by `attach`, or closed by `close` (whose
    /// `data` is then null; nginx reuses the memory only for a later connection).
    pub unsafe fn of<'a>(c: *mut ngx_connection_t) -> Option<&'a mut Conn> {
        ((*c).data as *mut Conn).as_mut()
    }

    /// The connection an event (its read or write event, or one of its timers) is for.
    ///
    /// # Safety
    /// `ev` is an event of a connection with a `Conn`, as nginx calls a handler with it.
    pub unsafe fn of_event<'a>(ev: *mut ngx_event_t) -> Option<&'a mut Conn> {
        Conn::of((*ev).data as *mut ngx_connection_t)
    }

    pub fn log(&self) -> *mut ngx::ffi::ngx_log_t {
        // SAFETY: the connection is open while its Conn lives.
        unsafe { (*self.c).log }
    }

    pub fn number(&self) -> u64 {
        // SAFETY: as above.
        unsafe { (*self.c).number }
    }

    /// The client's address in nginx's own log lines (the one a PROXY protocol header
    /// gave): a copy in the connection's pool; left as it was if the pool is out of memory.
    pub fn set_addr_text(&self, text: &str) {
        // SAFETY: the connection and its pool are open while its Conn lives; the copy
        // lives as long as the pool.
        unsafe {
            let c = self.c;
            let mem = ngx::ffi::ngx_pnalloc((*c).pool, text.len()) as *mut u8;
            if !mem.is_null() {
                core::ptr::copy_nonoverlapping(text.as_ptr(), mem, text.len());
                (*c).addr_text = ngx::ffi::ngx_str_t { len: text.len(), data: mem };
            }
        }
    }

    /// Whether the connection speaks TLS (an `rtmps://` relay).
    pub fn is_tls(&self) -> bool {
        // SAFETY: the connection is open while its Conn lives.
        unsafe { !(*self.c).ssl.is_null() }
    }

    /// Starts the TLS handshake of a connected `rtmps://` relay (`self.tls` says to whom).
    pub fn start_tls(&mut self, ssl: core::ptr::NonNull<ngx::ffi::ngx_ssl_t>, on_done: unsafe extern "C" fn(*mut ngx_connection_t)) -> tls::Handshake {
        let name = self.tls.as_ref().map_or(String::new(), |t| t.0.clone());
        // SAFETY: a connected relay connection of ours, without TLS yet.
        unsafe { tls::start(ssl.as_ptr(), self.c, &name, on_done) }
    }

    /// After the TLS handshake: its outcome and the certificate's check; our event
    /// handlers are back (nginx's were set during the handshake).
    pub fn tls_done(&mut self, h: &Handlers) -> Result<(), String> {
        let (name, verify) = self.tls.take().map_or((String::new(), false), |t| *t);
        // SAFETY: the connection is open; its events are ours again.
        unsafe {
            (*(*self.c).read).handler = Some(h.read);
            (*(*self.c).write).handler = Some(h.write);
            tls::check(self.c, &name, verify)
        }
    }

    /// Writes through TLS (`c->send`, nginx's `ngx_ssl_write`) what `writev` would write.
    pub fn send_tls(&mut self, bufs: &[IoSlice]) -> std::io::Result<usize> {
        let mut total = 0;
        for b in bufs {
            // SAFETY: nginx sets send on every connection; it reads at most len bytes.
            let n = unsafe {
                let send = (*self.c).send.expect("nginx sets send");
                send(self.c, b.as_ptr() as *mut u8, b.len())
            };
            if n == NGX_AGAIN as isize {
                break;
            }
            if n < 0 {
                return Err(std::io::Error::other("TLS write failed"));
            }
            total += n as usize;
            if (n as usize) < b.len() {
                break;
            }
        }
        if total == 0 {
            return Err(std::io::ErrorKind::WouldBlock.into());
        }
        // (nginx counted c->sent itself.)
        Ok(total)
    }

    /// Receives into `buf` (uninitialised memory is fine: only what arrived is read).
    pub fn recv(&mut self, buf: &mut [MaybeUninit<u8>]) -> Recv {
        // SAFETY: nginx sets recv on every connection it makes; it writes at most len bytes.
        let n = unsafe {
            let recv = (*self.c).recv.expect("nginx sets recv");
            recv(self.c, buf.as_mut_ptr().cast(), buf.len())
        };
        match n {
            n if n > 0 => Recv::Data(n as usize),
            0 => Recv::Closed,
            n if n == NGX_AGAIN as isize => Recv::Again,
            _ => Recv::Failed,
        }
    }

    /// Whether the read event timed out (clears the flag).
    pub fn read_timed_out(&mut self) -> bool {
        // SAFETY: the connection is open.
        unsafe {
            let rev = (*self.c).read;
            let t = (*rev).timedout() != 0;
            (*rev).set_timedout(0);
            t
        }
    }

    /// Input must come within `timeout` (from now), and before the deadline if one runs.
    /// (Past the deadline, only while a callback is awaited: `timeout` then.)
    pub fn expect_input(&mut self) {
        let mut ms = self.timeout as ngx::ffi::ngx_msec_t;
        if let Some(at) = self.deadline {
            // SAFETY: nginx's clock, on the worker's thread.
            let now = unsafe { ngx::ffi::ngx_current_msec };
            if at > now {
                ms = ms.min(at - now);
            }
        }
        // SAFETY: the connection is open; its read event is nginx's.
        unsafe { ngx_add_timer((*self.c).read, ms) }
    }

    /// The client must be done within `ms` from now, whatever it sends (Some); or it is
    /// done, and only `timeout` counts again (None).
    pub fn set_deadline(&mut self, ms: Option<u64>) {
        // SAFETY: as above.
        self.deadline = ms.map(|ms| unsafe { ngx::ffi::ngx_current_msec }.wrapping_add(ms as _));
        self.expect_input();
    }

    /// Whether the deadline has passed (a read timeout is then the deadline's).
    pub fn past_deadline(&self) -> bool {
        // SAFETY: as above.
        self.deadline.is_some_and(|at| unsafe { ngx::ffi::ngx_current_msec } >= at)
    }

    /// Input must come within `ms`, if that is sooner than already expected.
    pub fn expect_within(&mut self, ms: u64) {
        // SAFETY: as above.
        unsafe {
            let rev = (*self.c).read;
            let deadline = ngx::ffi::ngx_current_msec.wrapping_add(ms as _);
            if (*rev).timer_set() == 0 || (*rev).timer.key > deadline {
                ngx_add_timer(rev, ms as _);
            }
        }
    }

    /// Waits for input (epoll); false on an error.
    pub fn wait_readable(&mut self) -> bool {
        // SAFETY: as above.
        unsafe { ngx_handle_read_event((*self.c).read, 0) == NGX_OK as isize }
    }

    /// Has the read handler run again in this turn of the event loop.
    pub fn post_read(&mut self) {
        // SAFETY: as above; a posted event is taken off the queue when the connection closes.
        unsafe {
            let rev = (*self.c).read;
            if (*rev).posted() == 0 {
                ngx_post_event(rev, &raw mut ngx_posted_events);
            }
        }
    }

    /// Lets nginx's recv try a socket that epoll has not reported readable (it waits for
    /// the low-water mark of batched reads).
    pub fn mark_readable(&mut self) {
        // SAFETY: as above.
        unsafe {
            let rev = (*self.c).read;
            (*rev).set_ready(1);
            (*rev).available = 1;
        }
    }

    /// `SO_RCVLOWAT`: the socket wakes the worker once this much is waiting.
    pub fn set_rcvlowat(&mut self, lowat: i32) -> bool {
        let (level, int) = (ngx::ffi::SOL_SOCKET as i32, core::mem::size_of::<i32>() as u32);
        // SAFETY: a plain setsockopt on the connection's socket with an int.
        unsafe { ngx::ffi::setsockopt((*self.c).fd, level, ngx::ffi::SO_RCVLOWAT as i32, (&raw const lowat).cast(), int) == 0 }
    }

    /// `listen ... rcvbuf=`, if set.
    pub fn rcvbuf(&self) -> i32 {
        // SAFETY: the connection is open; a relay's `listening` is its server's.
        unsafe { if (*self.c).listening.is_null() { -1 } else { (*(*self.c).listening).rcvbuf } }
    }

    pub fn fd(&self) -> i32 {
        // SAFETY: the connection is open.
        unsafe { (*self.c).fd }
    }

    /// One `writev` of `bufs`.
    pub fn writev(&mut self, bufs: &[IoSlice]) -> std::io::Result<usize> {
        // SAFETY: the socket stays ours (ManuallyDrop: not closed here).
        let mut sock = ManuallyDrop::new(unsafe { TcpStream::from_raw_fd((*self.c).fd) });
        let n = sock.write_vectored(bufs)?;
        self.count_sent(n);
        Ok(n)
    }

    /// Bytes written (by `writev` or a batch), for nginx's own count.
    pub fn count_sent(&mut self, n: usize) {
        // SAFETY: the connection is open.
        unsafe { (*self.c).sent += n as i64 }
    }

    /// The socket is full: the write event says when it takes more.
    pub fn write_blocked(&mut self) {
        // SAFETY: as above.
        unsafe { (*(*self.c).write).set_ready(0) }
    }

    /// After a write: with nothing left the send timeout stops; with something left it
    /// runs (`timeout`) and the write event waits for the socket. False on an error.
    pub fn flushed(&mut self, empty: bool) -> bool {
        // SAFETY: as above.
        unsafe {
            let wev = (*self.c).write;
            if empty {
                if (*wev).timer_set() != 0 {
                    ngx_del_timer(wev);
                }
            } else {
                ngx_add_timer(wev, self.timeout as _);
            }
            ngx_handle_write_event(wev, 0) == NGX_OK as isize
        }
    }

    /// Whether the write event timed out (a send pending for `timeout`).
    pub fn write_timed_out(&self) -> bool {
        // SAFETY: as above.
        unsafe { (*(*self.c).write).timedout() != 0 }
    }

    /// (Re)arms a timer to fire after `ms`.
    pub fn arm(&mut self, t: Tick, ms: u64) {
        let i = TICKS.iter().position(|&k| k == t).expect("a tick");
        let (c, handler) = (self.c, self.timer_handler);
        let ev = self.ticks[i].get_or_insert_with(|| {
            // SAFETY: a zeroed ngx_event_t is nginx's idea of a fresh one.
            let mut ev: Box<ngx_event_t> = Box::new(unsafe { core::mem::zeroed() });
            ev.handler = Some(handler);
            ev.data = c as *mut c_void;
            // SAFETY: the connection is open.
            ev.log = unsafe { (*c).log };
            // These timers alone must not keep a shutting-down worker alive.
            ev.set_cancelable(1);
            ev
        });
        // SAFETY: the event lives in this Conn, which deletes its timer before it goes.
        unsafe { ngx_add_timer(&mut **ev, ms as _) }
    }

    /// Stops a timer.
    pub fn disarm(&mut self, t: Tick) {
        let i = TICKS.iter().position(|&k| k == t).expect("a tick");
        if let Some(ev) = self.ticks[i].as_mut() {
            if ev.timer_set() != 0 {
                // SAFETY: the timer is set in nginx's tree.
                unsafe { ngx_del_timer(&mut **ev) }
            }
        }
    }

    /// Which of this connection's timers `ev` is.
    pub fn tick_of(&self, ev: *const ngx_event_t) -> Option<Tick> {
        self.ticks.iter().zip(TICKS).find(|(e, _)| e.as_deref().is_some_and(|e| ptr::eq(e, ev))).map(|(_, t)| t)
    }

    /// Closes the connection and frees its `Conn` (its timers stopped, its
    /// `max_connections` slot given back).
    ///
    /// # Safety
    /// `self` is not used after this.
    pub unsafe fn close(&mut self) {
        let c = self.c;
        for t in TICKS {
            self.disarm(t);
        }
        if !self.limit_zone.is_null() {
            shared::release(self.limit_zone);
        }
        (*c).data = ptr::null_mut();
        drop(Box::from_raw(self as *mut Conn));
        tls::shutdown(c);
        free(c);
    }
}

/// Closes a connection that has no `Conn` (yet).
///
/// # Safety
/// `c` is an open connection made with its own pool.
pub unsafe fn free(c: *mut ngx_connection_t) {
    let pool = (*c).pool;
    ngx_close_connection(c);
    if !pool.is_null() {
        ngx_destroy_pool(pool);
    }
}

/// Appends ", client: ADDR, server: ADDR" to every log line about a connection.
pub unsafe extern "C" fn log_handler(log: *mut ngx::ffi::ngx_log_t, buf: *mut u8, len: usize) -> *mut u8 {
    let c = (*log).data as *const ngx_connection_t;
    let out = core::slice::from_raw_parts_mut(buf, len);
    let mut cur = std::io::Cursor::new(out);
    let server = if (*c).listening.is_null() { ngx::ffi::ngx_str_t { len: 0, data: ptr::null_mut() } } else { (*(*c).listening).addr_text };
    let _ = write!(cur, ", client: {}, server: {}", (*c).addr_text, server);
    buf.add(cur.position() as usize)
}
