//! Addresses of connections as nginx holds them (`struct sockaddr`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ngx::ffi::{ngx_connection_t, AF_INET, AF_INET6, NGX_OK};

/// The peer's address of a connection (an RTMP client's, or an HTTP client's for WHIP).
pub fn client_ip(c: *const ngx_connection_t) -> IpAddr {
    // SAFETY: nginx fills c->sockaddr with the peer's address of c->socklen bytes.
    unsafe { sockaddr_ip((*c).sockaddr as *const u8) }
}

/// The IP address of a socket address nginx holds (IPv4 or IPv6; else unspecified).
///
/// # Safety
/// `sa` points at a `struct sockaddr` nginx filled.
pub unsafe fn sockaddr_ip(sa: *const u8) -> IpAddr {
    let family = u16::from_ne_bytes([*sa, *sa.add(1)]) as u32;
    if family == AF_INET {
        let b = core::slice::from_raw_parts(sa.add(4), 4);
        IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    } else if family == AF_INET6 {
        let b: [u8; 16] = core::slice::from_raw_parts(sa.add(8), 16).try_into().expect("16");
        IpAddr::V6(Ipv6Addr::from(b))
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
}

/// The address the client reached us on (a WHIP answer's candidate by default).
///
/// # Safety
/// `c` is an open connection.
pub unsafe fn local_ip(c: *mut ngx_connection_t) -> IpAddr {
    if ngx::ffi::ngx_connection_local_sockaddr(c, core::ptr::null_mut(), 0) != NGX_OK as isize || (*c).local_sockaddr.is_null() {
        return IpAddr::V4(Ipv4Addr::LOCALHOST);
    }
    match sockaddr_ip((*c).local_sockaddr as *const u8) {
        ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip => ip,
    }
}
