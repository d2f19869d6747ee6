//! Live streams' shared pieces: a stream's identity, the RTMP fan-out log every player
//! reads (`fanout`), and the slab clients and streams are kept in by id.

pub mod fanout;
mod slab;

pub use slab::{Id, Slab};

/// A stream's identity: (server index, application, stream name).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct StreamKey {
    pub server: usize,
    pub app: String,
    pub name: String,
}
