//! `max_connections`: one count of RTMP connections for all workers, in shared memory, as
//! nginx-rtmp-module keeps it. The zone survives reloads, so connections still served by
//! old workers keep counting.

use core::ffi::c_void;
use std::sync::atomic::{AtomicU64, Ordering};

use ngx::ffi::{
    ngx_conf_t, ngx_int_t, ngx_shared_memory_add, ngx_shm_zone_t, ngx_slab_alloc, ngx_slab_pool_t,
    ngx_str_t, NGX_ERROR, NGX_OK,
};

const ZONE_NAME: &str = "ngx_rtmp_rs_connections";
const ZONE_SIZE: usize = 8 * 4096;

pub unsafe fn add_zone(cf: *mut ngx_conf_t) -> Result<*mut ngx_shm_zone_t, String> {
    let mut name = ngx_str_t { len: ZONE_NAME.len(), data: ZONE_NAME.as_ptr() as *mut u8 };
    let tag = &raw mut super::ngx_rtmp_core_module as *mut c_void;
    let zone = ngx_shared_memory_add(cf, &mut name, ZONE_SIZE, tag);
    if zone.is_null() {
        return Err("could not add the shared memory zone for max_connections".into());
    }
    (*zone).init = Some(init_zone);
    Ok(zone)
}

unsafe extern "C" fn init_zone(zone: *mut ngx_shm_zone_t, old: *mut c_void) -> ngx_int_t {
    if !old.is_null() {
        // A reload: keep counting in the existing zone.
        (*zone).data = old;
        return NGX_OK as ngx_int_t;
    }
    let pool = (*zone).shm.addr as *mut ngx_slab_pool_t;
    let counter = ngx_slab_alloc(pool, size_of::<AtomicU64>()) as *mut AtomicU64;
    if counter.is_null() {
        return NGX_ERROR as ngx_int_t;
    }
    counter.write(AtomicU64::new(0));
    (*zone).data = counter as *mut c_void;
    NGX_OK as ngx_int_t
}

/// Takes a connection slot if fewer than `max` are in use.
pub unsafe fn acquire(zone: *mut ngx_shm_zone_t, max: u64) -> bool {
    let counter = &*((*zone).data as *const AtomicU64);
    counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1)).is_ok()
}

pub unsafe fn release(zone: *mut ngx_shm_zone_t) {
    let counter = &*((*zone).data as *const AtomicU64);
    let _ = counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
}
