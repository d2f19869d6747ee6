//! The PROXY protocol header (HAProxy's, versions 1 and 2) that a TLS terminator or a
//! balancer in front of a `listen ... proxy_protocol` socket sends before the client's
//! bytes: it says who the client really is. nginx's `stream { proxy_protocol on; }` sends
//! version 1; HAProxy and cloud balancers may send version 2.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The longest header read: version 1's limit is 107 bytes; version 2's is its 16 bytes
/// and a length, of which only the addresses (at most 216 bytes for unix sockets) are
/// expected here, TLVs included up to this bound.
pub const MAX_HEADER: usize = 16 + 512;

const V2_SIGNATURE: [u8; 12] = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Header {
    /// More bytes are needed.
    Incomplete,
    /// The header is `len` bytes long and says the client is `client` (None: `UNKNOWN`
    /// or `LOCAL`, a health check of the proxy itself: the connection's own address stands).
    Done { len: usize, client: Option<SocketAddr> },
}

/// Reads a PROXY header from the start of `data`.
pub fn parse(data: &[u8]) -> Result<Header, String> {
    let sig = data.len().min(12);
    if data[..sig] == V2_SIGNATURE[..sig] {
        return if sig < 12 { Ok(Header::Incomplete) } else { parse_v2(data) };
    }
    let v1 = b"PROXY ";
    let n = data.len().min(v1.len());
    if data[..n] != v1[..n] {
        return Err("no PROXY protocol header (the listen has proxy_protocol)".into());
    }
    parse_v1(data)
}

fn parse_v1(data: &[u8]) -> Result<Header, String> {
    let Some(end) = data.windows(2).position(|w| w == b"\r\n") else {
        return if data.len() >= 107 { Err("PROXY protocol v1 header longer than 107 bytes".into()) } else { Ok(Header::Incomplete) };
    };
    if end + 2 > 107 {
        return Err("PROXY protocol v1 header longer than 107 bytes".into());
    }
    let line = std::str::from_utf8(&data[6..end]).map_err(|_| "PROXY protocol v1 header is not text".to_owned())?;
    let words: Vec<&str> = line.split(' ').collect();
    let bad = || format!("broken PROXY protocol v1 header {line:?}");
    let client = match words.as_slice() {
        ["UNKNOWN", ..] => None,
        [family @ ("TCP4" | "TCP6"), src, _dst, sport, _dport] => {
            let ip: IpAddr = src.parse().map_err(|_| bad())?;
            if ip.is_ipv4() != (*family == "TCP4") {
                return Err(bad());
            }
            Some(SocketAddr::new(ip, sport.parse().map_err(|_| bad())?))
        }
        _ => return Err(bad()),
    };
    Ok(Header::Done { len: end + 2, client })
}

fn parse_v2(data: &[u8]) -> Result<Header, String> {
    if data.len() < 16 {
        return Ok(Header::Incomplete);
    }
    let (ver_cmd, family) = (data[12], data[13]);
    let body = u16::from_be_bytes([data[14], data[15]]) as usize;
    if ver_cmd >> 4 != 2 {
        return Err(format!("PROXY protocol v2 header of version {}", ver_cmd >> 4));
    }
    if 16 + body > MAX_HEADER {
        return Err(format!("PROXY protocol v2 header of {} bytes (at most {MAX_HEADER})", 16 + body));
    }
    if data.len() < 16 + body {
        return Ok(Header::Incomplete);
    }
    let a = &data[16..16 + body];
    let client = match (ver_cmd & 0xf, family) {
        // LOCAL: the proxy's own connection (a health check).
        (0, _) => None,
        (1, 0x11) if a.len() >= 12 => Some(SocketAddr::new(Ipv4Addr::new(a[0], a[1], a[2], a[3]).into(), u16::from_be_bytes([a[8], a[9]]))),
        (1, 0x21) if a.len() >= 36 => {
            let ip: [u8; 16] = a[..16].try_into().expect("16 bytes");
            Some(SocketAddr::new(Ipv6Addr::from(ip).into(), u16::from_be_bytes([a[32], a[33]])))
        }
        // UNSPEC, UDP, unix sockets: nothing an RTMP client's address can be.
        (1, _) => None,
        (cmd, _) => return Err(format!("PROXY protocol v2 header with command {cmd}")),
    };
    Ok(Header::Done { len: 16 + body, client })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_1_as_nginx_sends_it() {
        let h = b"PROXY TCP4 192.0.2.7 127.0.0.1 51234 1935\r\n\x03rest";
        assert_eq!(parse(h), Ok(Header::Done { len: 43, client: Some("192.0.2.7:51234".parse().unwrap()) }));
        assert_eq!(parse(b"PROXY TCP6 2001:db8::1 ::1 4000 1935\r\n"), Ok(Header::Done { len: 38, client: Some("[2001:db8::1]:4000".parse().unwrap()) }));
        assert_eq!(parse(b"PROXY UNKNOWN\r\n"), Ok(Header::Done { len: 15, client: None }));
        for n in 0..h.len() - 6 {
            assert_eq!(parse(&h[..n]), Ok(Header::Incomplete), "{n} bytes");
        }
    }

    #[test]
    fn version_2() {
        let mut h = V2_SIGNATURE.to_vec();
        h.extend([0x21, 0x11, 0, 12, 198, 51, 100, 9, 127, 0, 0, 1, 0x1f, 0x90, 0x07, 0x8f]);
        h.push(3);
        assert_eq!(parse(&h), Ok(Header::Done { len: 28, client: Some("198.51.100.9:8080".parse().unwrap()) }));
        for n in 0..28 {
            assert_eq!(parse(&h[..n]), Ok(Header::Incomplete), "{n} bytes");
        }
        let mut local = V2_SIGNATURE.to_vec();
        local.extend([0x20, 0x00, 0, 0]);
        assert_eq!(parse(&local), Ok(Header::Done { len: 16, client: None }));
    }

    #[test]
    fn bad_headers_are_errors() {
        let mut long = V2_SIGNATURE.to_vec();
        long.extend([0x21, 0x11, 0xff, 0xff]);
        for bad in [
            &b"\x03\x00\x00\x00"[..],
            b"GET / HTTP/1.1\r\n",
            b"PROXY TCP4 not-an-ip 127.0.0.1 1 2\r\n",
            b"PROXY TCP4 ::1 ::1 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 2\r\n",
            b"PROXY SCTP\r\n",
            &[b'P', b'R', b'O', b'X', b'Y', b' ', b'x'].repeat(20)[..],
            &long,
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut x = 9u64;
        for n in 0..2000usize {
            let v: Vec<u8> = (0..n % 300)
                .map(|i| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    if i < 12 && n % 3 == 0 { V2_SIGNATURE[i] } else if i < 6 && n % 3 == 1 { b"PROXY "[i] } else { x as u8 }
                })
                .collect();
            let _ = parse(&v);
        }
    }
}
