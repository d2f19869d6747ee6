//! The `listen` directive: `listen [ADDRESS:]PORT [bind] [ipv6only=on|off]
//! [so_keepalive=on|off|[idle]:[intvl]:[cnt]] [backlog=N] [rcvbuf=SIZE] [sndbuf=SIZE]
//! [proxy_protocol] [reuseport]`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

use super::value::{parse_flag, parse_num, parse_sec};

/// The port RTMP clients use when a `listen` gives only an address.
pub const DEFAULT_PORT: u16 = 1935;
/// nginx's default listen backlog on Linux.
pub const DEFAULT_BACKLOG: i32 = 511;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keepalive {
    On,
    Off,
    /// TCP_KEEPIDLE, TCP_KEEPINTVL (seconds), TCP_KEEPCNT; 0 leaves the system default.
    Tuned { idle: u64, intvl: u64, cnt: u64 },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listen {
    pub addr: SocketAddr,
    /// The address part was `*`, `0.0.0.0`, `[::]` or absent.
    pub wildcard: bool,
    pub bind: bool,
    pub ipv6only: bool,
    pub so_keepalive: Option<Keepalive>,
    pub backlog: i32,
    /// SO_RCVBUF / SO_SNDBUF of accepted sockets, when set.
    pub rcvbuf: Option<i32>,
    pub sndbuf: Option<i32>,
    /// Clients come through a proxy that first sends a PROXY protocol header (nginx's
    /// `stream { proxy_protocol on; }` terminating TLS for RTMPS, HAProxy, a cloud
    /// balancer): the address it gives is the client's.
    pub proxy_protocol: bool,
    /// A socket per worker (`SO_REUSEPORT`): the kernel spreads new connections evenly
    /// over the workers (as nginx's own `listen ... reuseport`).
    pub reuseport: bool,
}

impl Listen {
    /// Whether two listens would need the same socket (same family and port, and the same
    /// address or one of them a wildcard).
    pub fn conflicts_with(&self, other: &Listen) -> bool {
        self.addr.port() == other.addr.port()
            && self.addr.is_ipv4() == other.addr.is_ipv4()
            && (self.addr.ip() == other.addr.ip() || self.wildcard || other.wildcard)
    }
}

/// Parses the arguments of one `listen` directive (without the name). May give several
/// listens when a host name resolves to several addresses.
pub fn parse(args: &[&str]) -> Result<Vec<Listen>, String> {
    let (addrs, wildcard) = parse_address(args[0])?;
    let mut bind = false;
    let mut ipv6only = None;
    let mut so_keepalive = None;
    let mut backlog = DEFAULT_BACKLOG;
    let (mut rcvbuf, mut sndbuf) = (None, None);
    let mut proxy_protocol = false;
    let mut reuseport = false;
    let buf_size = |v: &str, what: &str| {
        super::value::parse_size(v)
            .filter(|&n| (1..=i32::MAX as u64).contains(&n))
            .map(|n| n as i32)
            .ok_or_else(|| format!("invalid {what} \"{v}\""))
    };
    for &p in &args[1..] {
        if p == "bind" {
            bind = true;
        } else if p == "proxy_protocol" {
            proxy_protocol = true;
        } else if p == "reuseport" {
            reuseport = true;
        } else if let Some(v) = p.strip_prefix("ipv6only=") {
            ipv6only = Some(parse_flag(v).ok_or_else(|| format!("invalid ipv6only flags \"{v}\""))?);
        } else if let Some(v) = p.strip_prefix("so_keepalive=") {
            so_keepalive = Some(parse_keepalive(v).ok_or_else(|| format!("invalid so_keepalive value: \"{p}\""))?);
        } else if let Some(v) = p.strip_prefix("backlog=") {
            backlog = parse_num(v)
                .filter(|&n| (1..=i32::MAX as u64).contains(&n))
                .ok_or_else(|| format!("invalid backlog \"{v}\""))? as i32;
        } else if let Some(v) = p.strip_prefix("rcvbuf=") {
            rcvbuf = Some(buf_size(v, "rcvbuf")?);
        } else if let Some(v) = p.strip_prefix("sndbuf=") {
            sndbuf = Some(buf_size(v, "sndbuf")?);
        } else {
            return Err(format!("invalid parameter \"{p}\""));
        }
    }
    if ipv6only.is_some() && !addrs.iter().all(|a| a.is_ipv6()) {
        return Err(format!("ipv6only is not supported on addr \"{}\"", args[0]));
    }
    Ok(addrs
        .into_iter()
        .map(|addr| Listen {
            addr,
            wildcard,
            // nginx: a specific ipv6only setting implies a socket of its own.
            bind: bind || ipv6only.is_some() || reuseport,
            ipv6only: ipv6only.unwrap_or(true),
            so_keepalive,
            backlog,
            rcvbuf,
            sndbuf,
            proxy_protocol,
            reuseport,
        })
        .collect())
}

fn parse_port(s: &str, whole: &str) -> Result<u16, String> {
    match parse_num(s) {
        Some(p) if (1..=65535).contains(&p) => Ok(p as u16),
        _ => Err(format!("invalid port in \"{whole}\"")),
    }
}

fn parse_address(s: &str) -> Result<(Vec<SocketAddr>, bool), String> {
    if s.starts_with("unix:") {
        return Err(format!("unix domain sockets are not supported in \"{s}\""));
    }
    // [IPv6]:port or [IPv6]
    if let Some(rest) = s.strip_prefix('[') {
        let (ip, after) = rest.split_once(']').ok_or_else(|| format!("invalid IPv6 address in \"{s}\""))?;
        let ip: Ipv6Addr = ip.parse().map_err(|_| format!("invalid IPv6 address in \"{s}\""))?;
        let port = match after {
            "" => DEFAULT_PORT,
            p => parse_port(p.strip_prefix(':').ok_or_else(|| format!("invalid port in \"{s}\""))?, s)?,
        };
        return Ok((vec![SocketAddr::new(IpAddr::V6(ip), port)], ip.is_unspecified()));
    }
    // PORT
    if s.bytes().all(|b| b.is_ascii_digit()) {
        let port = parse_port(s, s)?;
        return Ok((vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)], true));
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, parse_port(p, s)?),
        None => (s, DEFAULT_PORT),
    };
    if host == "*" {
        return Ok((vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)], true));
    }
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok((vec![SocketAddr::new(IpAddr::V4(ip), port)], ip.is_unspecified()));
    }
    if host.is_empty() || host.contains(':') {
        return Err(format!("invalid address in \"{s}\""));
    }
    // A host name, resolved once at configuration time as nginx does.
    let mut addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|_| format!("host not found in \"{s}\""))?
        .collect();
    addrs.sort();
    addrs.dedup();
    if addrs.is_empty() {
        return Err(format!("host not found in \"{s}\""));
    }
    Ok((addrs, false))
}

fn parse_keepalive(v: &str) -> Option<Keepalive> {
    match v {
        "on" => return Some(Keepalive::On),
        "off" => return Some(Keepalive::Off),
        _ => {}
    }
    let mut parts = v.split(':');
    let (idle, intvl, cnt) = (parts.next()?, parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if parts.next().is_some() {
        return None;
    }
    let time = |s: &str| if s.is_empty() { Some(0) } else { parse_sec(s) };
    let ka = Keepalive::Tuned {
        idle: time(idle)?,
        intvl: time(intvl)?,
        cnt: if cnt.is_empty() { 0 } else { parse_num(cnt)? },
    };
    (ka != Keepalive::Tuned { idle: 0, intvl: 0, cnt: 0 }).then_some(ka)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(args: &[&str]) -> Listen {
        let mut v = parse(args).unwrap();
        assert_eq!(v.len(), 1);
        v.remove(0)
    }

    #[test]
    fn address_forms() {
        let l = one(&["1935"]);
        assert_eq!(l.addr, "0.0.0.0:1935".parse::<std::net::SocketAddr>().unwrap());
        assert!(l.wildcard);
        assert_eq!(one(&["*:1936"]).addr.port(), 1936);
        let l = one(&["127.0.0.1:19350"]);
        assert!(!l.wildcard);
        assert_eq!(l.addr, "127.0.0.1:19350".parse::<std::net::SocketAddr>().unwrap());
        assert_eq!(one(&["127.0.0.1"]).addr.port(), 1935);
        let l = one(&["[::]:1935"]);
        assert!(l.wildcard && l.addr.is_ipv6() && l.ipv6only);
        assert_eq!(one(&["[::1]:1000"]).addr, "[::1]:1000".parse::<std::net::SocketAddr>().unwrap());
        assert!(parse(&["localhost:1935"]).unwrap().iter().all(|l| l.addr.port() == 1935));
    }

    #[test]
    fn parameters() {
        let l = one(&["[::]:1935", "ipv6only=off"]);
        assert!(!l.ipv6only && l.bind);
        assert!(one(&["127.0.0.1:1", "bind"]).bind);
        assert_eq!(one(&["1", "so_keepalive=on"]).so_keepalive, Some(Keepalive::On));
        assert_eq!(
            one(&["1", "so_keepalive=30m::10"]).so_keepalive,
            Some(Keepalive::Tuned { idle: 1800, intvl: 0, cnt: 10 })
        );
        assert_eq!(one(&["1", "backlog=1024"]).backlog, 1024);
        let l = one(&["1", "sndbuf=32k", "rcvbuf=1m"]);
        assert_eq!((l.sndbuf, l.rcvbuf), (Some(32768), Some(1 << 20)));
    }

    #[test]
    fn rejects() {
        for bad in [
            &["0"][..],
            &["65536"],
            &["1.2.3.4:x"],
            &["[::1"],
            &["[zz]:1"],
            &["unix:/tmp/s"],
            &["1935", "reuse"],
            &["1935", "ipv6only=on"],
            &["[::]:1", "ipv6only=maybe"],
            &["1", "so_keepalive=::"],
            &["1", "so_keepalive=x"],
            &["1", "backlog=0"],
            &["1", "sndbuf=0"],
            &["1", "rcvbuf=x"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn conflicts() {
        let a = one(&["1935"]);
        let b = one(&["127.0.0.1:1935"]);
        let c = one(&["127.0.0.2:1935"]);
        let d = one(&["[::]:1935"]);
        assert!(a.conflicts_with(&b) && b.conflicts_with(&a));
        assert!(!b.conflicts_with(&c));
        assert!(!a.conflicts_with(&d));
        assert!(!a.conflicts_with(&one(&["1936"])));
    }
}
