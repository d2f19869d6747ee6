//! The module's shared memory, one zone for every worker, kept across reloads:
//! - `max_connections`: one count of RTMP connections for all workers, as
//!   nginx-rtmp-module keeps it (connections still served by old workers keep counting);
//! - the configuration's generation, raised by the master each time it reads the
//!   configuration, and whether a worker of the newest generation is quitting: a worker
//!   that shuts down tells from them a reload (new workers took over: its publishers go on
//!   until they leave) from a quit (nobody takes over: its publishers are drained, then
//!   closed; `drain_timeout`).
//! - which worker publishes which stream (`app/peer.rs`): a table of stream-key hashes and
//!   the pids of the workers that publish them, under the zone's mutex (nginx frees it if
//!   its holder dies). An entry of a worker that is gone (killed) counts as free.

use core::ffi::c_void;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use ngx::ffi::{
    ngx_conf_t, ngx_int_t, ngx_shared_memory_add, ngx_shm_zone_t, ngx_slab_alloc, ngx_slab_pool_t,
    ngx_str_t, NGX_ERROR, NGX_OK,
};

const ZONE_NAME: &str = "ngx_rtmp_rs";
/// The registry's entries: as many streams published at once on one nginx (a stream is
/// refused with a log line when the table is full).
const STREAMS: usize = 8192;
/// The most workers (of every generation at once) whose `/stat` is joined.
const WORKERS: usize = 256;
/// The connection counters, the registry (128 KiB) and the slab allocator's own pages.
const ZONE_SIZE: usize = 64 * 4096;

use crate::app::peer_table::{self as table, Claim, Entry};

/// What the zone holds.
#[repr(C)]
pub struct Shared {
    connections: AtomicU64,
    generation: AtomicU64,
    /// The generation a quit was seen in (0: none).
    quitting: AtomicU64,
    /// Who publishes what; only under the zone's mutex.
    streams: [Entry; STREAMS],
    /// The pids of this nginx's workers (of every generation still running; 0: free).
    workers: [AtomicI64; WORKERS],
}

pub unsafe fn add_zone(cf: *mut ngx_conf_t) -> Result<*mut ngx_shm_zone_t, String> {
    let mut name = ngx_str_t { len: ZONE_NAME.len(), data: ZONE_NAME.as_ptr() as *mut u8 };
    let tag = &raw mut super::ngx_rtmp_core_module as *mut c_void;
    let zone = ngx_shared_memory_add(cf, &mut name, ZONE_SIZE, tag);
    if zone.is_null() {
        return Err("could not add the module's shared memory zone".into());
    }
    (*zone).init = Some(init_zone);
    Ok(zone)
}

/// In the master, each time it reads the configuration.
unsafe extern "C" fn init_zone(zone: *mut ngx_shm_zone_t, old: *mut c_void) -> ngx_int_t {
    if !old.is_null() {
        // A reload: keep counting in the existing zone; the new workers are a generation on.
        (*zone).data = old;
        (*(old as *const Shared)).generation.fetch_add(1, Ordering::AcqRel);
        return NGX_OK as ngx_int_t;
    }
    let pool = (*zone).shm.addr as *mut ngx_slab_pool_t;
    let shared = ngx_slab_alloc(pool, size_of::<Shared>()) as *mut Shared;
    if shared.is_null() {
        return NGX_ERROR as ngx_int_t;
    }
    shared.write(Shared {
        connections: AtomicU64::new(0),
        generation: AtomicU64::new(1),
        quitting: AtomicU64::new(0),
        streams: [table::NONE; STREAMS],
        workers: [const { AtomicI64::new(0) }; WORKERS],
    });
    (*zone).data = shared as *mut c_void;
    NGX_OK as ngx_int_t
}

unsafe fn shared<'a>(zone: *mut ngx_shm_zone_t) -> &'a Shared {
    &*((*zone).data as *const Shared)
}

/// Takes a connection slot if fewer than `max` are in use.
pub unsafe fn acquire(zone: *mut ngx_shm_zone_t, max: u64) -> bool {
    shared(zone).connections.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1)).is_ok()
}

pub unsafe fn release(zone: *mut ngx_shm_zone_t) {
    let _ = shared(zone).connections.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
}

/// The configuration's generation now (a worker keeps the one it started in).
pub unsafe fn generation(zone: *mut ngx_shm_zone_t) -> u64 {
    shared(zone).generation.load(Ordering::Acquire)
}

/// Whether a worker of generation `mine` that is shutting down is part of a quit (nginx
/// ends) rather than a reload (newer workers go on). A worker of the newest generation
/// shutting down is a quit, and says so for the older ones still finishing.
pub unsafe fn quitting(zone: *mut ngx_shm_zone_t, mine: u64) -> bool {
    let s = shared(zone);
    if s.generation.load(Ordering::Acquire) == mine {
        s.quitting.fetch_max(mine, Ordering::AcqRel);
        return true;
    }
    s.quitting.load(Ordering::Acquire) >= s.generation.load(Ordering::Acquire)
}

/// Whether process `pid` is alive (a worker killed leaves its entries behind).
pub fn alive(pid: i64) -> bool {
    extern "C" {
        fn kill(pid: i32, sig: i32) -> i32;
    }
    // SAFETY: signal 0 only checks that the process exists.
    pid > 0 && (unsafe { kill(pid as i32, 0) } == 0 || std::io::Error::last_os_error().raw_os_error() != Some(3 /* ESRCH */))
}

/// Runs `f` on the registry under the zone's mutex.
unsafe fn registry<T>(zone: *mut ngx_shm_zone_t, f: impl FnOnce(&mut [Entry; STREAMS]) -> T) -> T {
    let pool = (*zone).shm.addr as *mut ngx_slab_pool_t;
    ngx::ffi::ngx_shmtx_lock(&raw mut (*pool).mutex);
    let shared = (*zone).data as *mut Shared;
    // (No panic can happen in `f`: plain reads and writes of the table.)
    let r = f(&mut (*shared).streams);
    ngx::ffi::ngx_shmtx_unlock(&raw mut (*pool).mutex);
    r
}

/// Takes stream `hash` for worker `me`.
pub unsafe fn claim(zone: *mut ngx_shm_zone_t, hash: u64, me: i64) -> Claim {
    registry(zone, |t| table::claim(t, hash, me, alive))
}

/// Gives stream `hash` up if worker `me` has it.
pub unsafe fn release_stream(zone: *mut ngx_shm_zone_t, hash: u64, me: i64) {
    registry(zone, |t| table::release(t, hash, me))
}

/// Every stream of worker `me` is given up (it exits).
pub unsafe fn release_all(zone: *mut ngx_shm_zone_t, me: i64) {
    registry(zone, |t| table::release_all(t, me))
}

/// The live worker other than `me` that publishes stream `hash`.
pub unsafe fn owner(zone: *mut ngx_shm_zone_t, hash: u64, me: i64) -> Option<i64> {
    let pid = registry(zone, |t| table::owner(t, hash))?;
    (pid != me && alive(pid)).then_some(pid)
}

/// Worker `me` starts: listed among this nginx's workers (taking the place of one gone).
pub unsafe fn add_worker(zone: *mut ngx_shm_zone_t, me: i64) {
    for w in &shared(zone).workers {
        let pid = w.load(Ordering::Acquire);
        if (pid == 0 || !alive(pid)) && w.compare_exchange(pid, me, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            return;
        }
    }
}

/// Worker `me` exits.
pub unsafe fn remove_worker(zone: *mut ngx_shm_zone_t, me: i64) {
    for w in &shared(zone).workers {
        let _ = w.compare_exchange(me, 0, Ordering::AcqRel, Ordering::Acquire);
    }
}

/// This nginx's other live workers.
pub unsafe fn other_workers(zone: *mut ngx_shm_zone_t, me: i64) -> Vec<i64> {
    shared(zone).workers.iter().map(|w| w.load(Ordering::Acquire)).filter(|&p| p != 0 && p != me && alive(p)).collect()
}
