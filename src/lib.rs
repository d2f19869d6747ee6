//! ngx-rtmp-rs: an nginx module that serves live streams over RTMP (and more), a drop-in
//! replacement for nginx-rtmp-module.
//!
//! Layout: the protocol and configuration cores are plain Rust (`conf`, …) and tested
//! with `cargo test`; `glue` is the only place that touches nginx (and the only place
//! with `unsafe`), compiled into the module but not into unit tests, which cannot link
//! nginx's symbols.

pub mod conf;
pub mod live;
pub mod rtmp;

#[cfg(not(test))]
mod glue;
