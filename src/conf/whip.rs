//! The WHIP directives of `http {}`: the endpoint (`whip_publish`, per location) and the
//! sidecar's settings (one per nginx, in `http` or a `server`), parsed from their arguments.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::invalid;
use super::value::{parse_msec, parse_num, parse_size};

/// The sidecar's settings: one UDP socket and the limits of every session.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// `whip_udp_listen [ADDR:]PORT`: the one UDP port of every session (every worker
    /// binds it, `SO_REUSEPORT`).
    pub udp: SocketAddr,
    /// `whip_candidate IP`: the address put in answers (NAT, Docker); by default the
    /// address the client reached the HTTP server on.
    pub candidate: Option<IpAddr>,
    /// `whip_ice_server URL [USERNAME CREDENTIAL]`: `Link` headers of a 201.
    pub ice_servers: Vec<IceServer>,
    /// `whip_max_sessions`, `whip_max_sessions_per_ip`.
    pub max_sessions: usize,
    pub max_per_ip: usize,
    /// `whip_max_sdp`: the largest offer accepted.
    pub max_sdp: usize,
    /// `whip_ice_timeout`: a session not connected after this long is ended (ms).
    pub ice_timeout: u64,
    /// `whip_timeout`: a connected session with no media for this long is ended (ms).
    pub idle_timeout: u64,
    /// `whip_keyframe_interval`: ask the browser for a keyframe this often (ms, 0: only
    /// at the start and after loss). Browsers send keyframes only when asked.
    pub keyframe_interval: u64,
    /// `whep_audio_bitrate`: the Opus bit rate of AAC transcoded for WHEP viewers (bit/s).
    pub whep_audio_bitrate: u32,
    /// `whep_max_sessions`, `whep_max_sessions_per_ip`: WHEP's own limits.
    pub whep_max_sessions: usize,
    pub whep_max_per_ip: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct IceServer {
    pub url: String,
    pub username: Option<String>,
    pub credential: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            udp: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 8889),
            candidate: None,
            ice_servers: Vec::new(),
            max_sessions: 100,
            max_per_ip: 10,
            max_sdp: 32 * 1024,
            ice_timeout: 15_000,
            idle_timeout: 10_000,
            keyframe_interval: 2_000,
            whep_audio_bitrate: 96_000,
            whep_max_sessions: 500,
            whep_max_per_ip: 50,
        }
    }
}

/// `[ADDR:]PORT` (IPv6 in brackets).
pub fn udp_listen(arg: &str) -> Result<SocketAddr, String> {
    let bad = |why: &str| invalid("whip_udp_listen", arg, why);
    if let Ok(port) = arg.parse::<u16>() {
        return (port != 0).then(|| SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)).ok_or_else(|| bad("the port must be 1-65535"));
    }
    let a: SocketAddr = arg.parse().map_err(|_| bad("it must be PORT or IP:PORT"))?;
    if a.port() == 0 {
        return Err(bad("the port must be 1-65535"));
    }
    Ok(a)
}

pub fn candidate(arg: &str) -> Result<IpAddr, String> {
    let ip: IpAddr = arg.parse().map_err(|_| invalid("whip_candidate", arg, "it must be an IP address"))?;
    if ip.is_unspecified() || ip.is_multicast() {
        return Err(invalid("whip_candidate", arg, "it must be an address clients can reach"));
    }
    Ok(ip)
}

pub fn ice_server(args: &[&str]) -> Result<IceServer, String> {
    let url = args[0];
    let scheme = url.split(':').next().unwrap_or("");
    if !matches!(scheme, "stun" | "stuns" | "turn" | "turns") || url.len() <= scheme.len() + 1 {
        return Err(invalid("whip_ice_server", url, "it must be a stun:, stuns:, turn: or turns: URL"));
    }
    if url.bytes().any(|b| b <= b' ' || b == b'>' || b == b'"' || b >= 0x7f) {
        return Err(invalid("whip_ice_server", url, "it must not contain spaces, quotes or \">\""));
    }
    let (username, credential) = match args.len() {
        1 => (None, None),
        3 => (Some(args[1].to_owned()), Some(args[2].to_owned())),
        _ => return Err("\"whip_ice_server\" takes URL or URL USERNAME CREDENTIAL".into()),
    };
    for v in [&username, &credential].into_iter().flatten() {
        if v.bytes().any(|b| b < b' ' || b == b'"' || b == b'\\' || b >= 0x7f) {
            return Err(invalid("whip_ice_server", v, "it must be printable ASCII without quotes"));
        }
    }
    Ok(IceServer { url: url.to_owned(), username, credential })
}

/// A positive count (`whip_max_sessions`, `whip_max_sessions_per_ip`, and WHEP's).
pub fn count(name: &str, arg: &str) -> Result<usize, String> {
    match parse_num(arg) {
        Some(n) if (1..=1_000_000).contains(&n) => Ok(n as usize),
        _ => Err(invalid(name, arg, "it must be a number from 1 to 1000000")),
    }
}

pub fn max_sdp(arg: &str) -> Result<usize, String> {
    match parse_size(arg) {
        Some(n) if (1024..=1 << 20).contains(&n) => Ok(n as usize),
        _ => Err(invalid("whip_max_sdp", arg, "it must be a size from 1k to 1m")),
    }
}

/// A time (`whip_timeout`, `whip_ice_timeout`, `whip_keyframe_interval`); `zero_ok`: 0
/// turns the feature off.
pub fn time(name: &str, arg: &str, zero_ok: bool) -> Result<u64, String> {
    match parse_msec(arg) {
        Some(0) if zero_ok => Ok(0),
        Some(ms) if (100..=3_600_000).contains(&ms) => Ok(ms),
        _ => Err(invalid(name, arg, if zero_ok { "it must be 0 or a time from 100ms to 1h" } else { "it must be a time from 100ms to 1h" })),
    }
}

/// `whep_audio_bitrate RATE`: bit/s, `k` for thousands (as ffmpeg's `-b:a`), 16k to 256k.
pub fn audio_bitrate(arg: &str) -> Result<u32, String> {
    let (digits, scale) = match arg.strip_suffix(['k', 'K']) {
        Some(d) => (d, 1000),
        None => (arg, 1),
    };
    match parse_num(digits).and_then(|n| n.checked_mul(scale)) {
        Some(b) if (16_000..=256_000).contains(&b) => Ok(b as u32),
        _ => Err(invalid("whep_audio_bitrate", arg, "it must be a bit rate from 16k to 256k")),
    }
}

/// `whip_publish APPLICATION [NAME]` (and `whep_play`'s): the application's name must be
/// a plain name.
pub fn publish_app(directive: &str, arg: &str) -> Result<String, String> {
    if arg.is_empty() || arg.len() > 128 || !arg.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
        return Err(invalid(directive, arg, "the application must be a name of letters, digits, \"-\", \"_\" and \".\""));
    }
    Ok(arg.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(udp_listen("9000").unwrap().to_string(), "0.0.0.0:9000");
        assert_eq!(udp_listen("127.0.0.1:9000").unwrap().to_string(), "127.0.0.1:9000");
        assert_eq!(udp_listen("[::1]:9000").unwrap().to_string(), "[::1]:9000");
        for bad in ["0", "70000", "x:1", "1.2.3.4", ""] {
            assert!(udp_listen(bad).unwrap_err().contains("\"whip_udp_listen\""), "{bad}");
        }
        assert!(candidate("0.0.0.0").is_err());
        assert_eq!(candidate("203.0.113.7").unwrap().to_string(), "203.0.113.7");
        assert!(ice_server(&["stun:stun.example.net:3478"]).is_ok());
        assert!(ice_server(&["http://x"]).is_err());
        assert!(ice_server(&["turn:t.example.net", "u"]).is_err());
        assert!(ice_server(&["turn:t>x"]).is_err());
        assert_eq!(ice_server(&["turn:t.example.net", "u", "p"]).unwrap().credential.as_deref(), Some("p"));
        assert_eq!(count("whip_max_sessions", "5"), Ok(5));
        assert!(count("whip_max_sessions", "0").is_err());
        assert_eq!(max_sdp("64k"), Ok(65536));
        assert!(max_sdp("10").is_err());
        assert_eq!(time("whip_timeout", "5s", false), Ok(5000));
        assert!(time("whip_timeout", "0", false).is_err());
        assert_eq!(time("whip_keyframe_interval", "0", true), Ok(0));
        assert!(publish_app("whip_publish", "live").is_ok());
        assert_eq!(audio_bitrate("96k"), Ok(96_000));
        assert_eq!(audio_bitrate("128000"), Ok(128_000));
        assert!(audio_bitrate("8k").unwrap_err().contains("whep_audio_bitrate"));
        assert!(audio_bitrate("1m").is_err());
        assert!(publish_app("whip_publish", "a/b").is_err());
    }
}
