//! ngx-rtmp-rs: an nginx module that serves live streams over RTMP (and more), a drop-in
//! replacement for nginx-rtmp-module.
//!
//! Layout: the protocol and configuration cores are plain Rust (`conf`, `rtmp`, `live`)
//! and tested with `cargo test`; `glue` is the only place that touches nginx (and the only
//! place with raw pointers and FFI), compiled into the module (feature "nginx", the default) but not
//! into unit tests, which cannot link nginx's symbols, nor into the fuzz targets.

pub mod app;
pub mod conf;
pub mod dash;
pub mod exec;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod hls;
pub mod live;
pub mod media;
pub mod notify;
pub mod record;
pub mod rtmp;
pub mod stat;
pub mod vod;
pub mod whip;

/// The WHIP sidecar thread (no nginx symbols: tested by `cargo test`, run by the glue).
#[cfg(feature = "nginx")]
pub mod sidecar;

#[cfg(all(feature = "nginx", not(test)))]
mod glue;
