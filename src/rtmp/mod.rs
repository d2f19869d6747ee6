//! The RTMP protocol as a sans-IO core: bytes in, bytes and events out. No sockets, no
//! nginx, no clocks: the caller passes time where it matters.

pub mod amf;
pub mod chunk;
pub mod client;
pub mod handshake;
pub mod message;
pub mod proxy;
pub mod session;
