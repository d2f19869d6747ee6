//! The relay directives (`push`, `pull`, `push_reconnect`, `pull_reconnect`,
//! `session_relay`, `relay_buffer`) as nginx-rtmp-module writes them: a URL
//! `[rtmp[s]://]HOST[:PORT][/APP[/PLAYPATH]]` and `key=value` parameters; and ours for
//! `rtmps://` relays (`relay_ssl_verify`, `relay_ssl_trusted_certificate`).

use std::net::{SocketAddr, ToSocketAddrs};

use super::invalid;
use super::value::{parse_flag, parse_msec, parse_size};

/// One `push` or `pull` line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Target {
    /// The URL as written (for logs and `/stat`).
    pub url: String,
    /// `rtmps://`: TLS (port 443 by default).
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// The address: the host when it is an IP address, else resolved when nginx loads the
    /// configuration, or left to the server's `resolver` at each connection.
    pub addr: Option<SocketAddr>,
    /// The other server's application (`app=`, else the URL's first path element; None:
    /// the local application's name).
    pub app: Option<String>,
    /// The stream's name there (`playPath=`, else the rest of the URL's path; None: the
    /// local stream's name).
    pub play_path: Option<String>,
    /// `name=`: the one local stream this line is for (None: every stream).
    pub name: Option<String>,
    pub tc_url: Option<String>,
    pub page_url: Option<String>,
    pub swf_url: Option<String>,
    pub flash_ver: Option<String>,
    /// `live=`: a pull plays with start -1000 (live only, the default) or `start=`.
    pub live: Option<bool>,
    /// `start=`, `stop=`: the play's start and duration (milliseconds), for pulls.
    pub start: Option<i64>,
    pub stop: Option<i64>,
    /// `static`: a pull that starts with the worker and never stops.
    pub is_static: bool,
}

impl Target {
    /// Parses a `push` or `pull` line's arguments.
    pub fn parse(directive: &str, args: &[&str]) -> Result<Target, String> {
        let text = args[0];
        let (rest, tls) = match text.find("://") {
            Some(i) if text[..i].eq_ignore_ascii_case("rtmp") => (&text[i + 3..], false),
            Some(i) if text[..i].eq_ignore_ascii_case("rtmps") => (&text[i + 3..], true),
            Some(_) => return Err(invalid(directive, text, "only rtmp:// and rtmps:// URLs can be relayed")),
            None => (text, false),
        };
        if rest.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(invalid(directive, text, "a URL cannot contain spaces or control characters"));
        }
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let default_port = if tls { 443 } else { 1935 };
        let (host, port) = split_host_port(authority, default_port)
            .ok_or_else(|| invalid(directive, text, "expected [rtmp[s]://]HOST[:PORT][/APP[/PLAYPATH]]"))?;
        let (app, play_path) = match path.split_once('/') {
            Some((a, p)) => (a, p),
            None => (path, ""),
        };
        let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let mut t = Target {
            url: text.to_owned(),
            tls,
            addr: host.parse().ok().map(|ip| SocketAddr::new(ip, port)),
            host,
            port,
            app: some(app),
            play_path: some(play_path),
            ..Target::default()
        };
        for a in &args[1..] {
            if *a == "static" {
                t.is_static = true;
                continue;
            }
            let Some((k, v)) = a.split_once('=') else {
                return Err(invalid(directive, a, "expected KEY=VALUE or \"static\""));
            };
            let num = |v: &str| v.parse::<i64>().map_err(|_| invalid(directive, a, "expected a number of milliseconds"));
            match k {
                "app" => t.app = some(v),
                "name" => t.name = some(v),
                "playPath" | "playpath" => t.play_path = some(v),
                "tcUrl" | "tcurl" => t.tc_url = some(v),
                "pageUrl" | "pageurl" => t.page_url = some(v),
                "swfUrl" | "swfurl" => t.swf_url = some(v),
                "flashVer" | "flashver" => t.flash_ver = some(v),
                "live" => t.live = Some(parse_flag(v).or_else(|| v.parse::<u8>().ok().map(|n| n != 0)).ok_or_else(|| invalid(directive, a, "expected on, off, 1 or 0"))?),
                "start" => t.start = Some(num(v)?),
                "stop" => t.stop = Some(num(v)?),
                _ => return Err(invalid(directive, a, "unknown parameter (app, name, tcUrl, pageUrl, swfUrl, flashVer, playPath, live, start, stop, static)")),
            }
        }
        if t.is_static {
            if directive != "pull" {
                return Err(invalid(directive, "static", "only a pull can be static"));
            }
            if t.name.is_none() {
                return Err(format!("a static pull needs the local stream's name (name=) in \"pull\" directive \"{text}\""));
            }
        }
        Ok(t)
    }

    /// Whether this line applies to the local stream `name`.
    pub fn applies_to(&self, name: &str) -> bool {
        self.name.as_deref().is_none_or(|n| n == name)
    }

    /// Resolves the host now (when nginx loads the configuration).
    pub fn resolve_now(&mut self) -> Result<(), String> {
        if self.addr.is_none() {
            let found = (self.host.as_str(), self.port).to_socket_addrs().ok().and_then(|mut a| a.next());
            self.addr = Some(found.ok_or_else(|| format!("host not found: \"{}\"", self.host))?);
        }
        Ok(())
    }

    /// What the relay says in `connect` and `publish`/`play` for the local stream
    /// `local_app`/`local_name`: (application, tcUrl, stream name there).
    pub fn names(&self, local_app: &str, local_name: &str) -> (String, String, String) {
        let app = self.app.clone().unwrap_or_else(|| local_app.to_owned());
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        let scheme = if self.tls { "rtmps" } else { "rtmp" };
        let tc_url = self.tc_url.clone().unwrap_or_else(|| format!("{scheme}://{host}:{}/{app}", self.port));
        let stream = self.play_path.clone().unwrap_or_else(|| local_name.to_owned());
        (app, tc_url, stream)
    }
}

/// `HOST[:PORT]` (IPv6 in brackets).
fn split_host_port(authority: &str, default_port: u16) -> Option<(String, u16)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        (h, port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().ok()?),
            None => (authority, default_port),
        }
    };
    let ok = !host.is_empty() && port != 0 && host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b));
    ok.then(|| (host.to_owned(), port))
}

/// Relay settings written at one level.
#[derive(Clone, Debug, Default)]
pub struct RelaySettings {
    /// `push` and `pull` lines (applications only; not inherited).
    pub pushes: Vec<Target>,
    pub pulls: Vec<Target>,
    pub push_reconnect: Option<u64>,
    pub pull_reconnect: Option<u64>,
    pub session_relay: Option<bool>,
    pub relay_buffer: Option<u64>,
    pub ssl_verify: Option<bool>,
    pub pull_idle_timeout: Option<u64>,
    /// `relay_ssl_trusted_certificate` (the `rtmp {}` block's is used).
    pub ssl_trusted: Option<String>,
}

/// Where `rtmps://` relays find the certificate authorities they trust unless
/// `relay_ssl_trusted_certificate` says otherwise: Debian's bundle (`ca-certificates`).
pub const DEFAULT_TRUSTED: &str = "/etc/ssl/certs/ca-certificates.crt";

/// nginx-rtmp-module's default `push_reconnect` and `pull_reconnect`.
pub const RECONNECT_MS: u64 = 3000;

/// `pull_idle_timeout`'s default: long enough for a player that reconnects (a page
/// reload, a network switch) to find the pull still there.
pub const PULL_IDLE_MS: u64 = 10_000;

impl RelaySettings {
    /// Applies `name` if it is a relay directive (false if it is not one).
    pub fn apply(&mut self, name: &str, args: &[&str]) -> Result<bool, String> {
        let arg = args.first().copied().unwrap_or("");
        let time = |slot: &mut Option<u64>| -> Result<(), String> {
            if slot.is_some() {
                return Err(format!("\"{name}\" directive is duplicate"));
            }
            *slot = Some(parse_msec(arg).filter(|&t| t > 0).ok_or_else(|| invalid(name, arg, "it must be a time such as \"3s\""))?);
            Ok(())
        };
        match name {
            "push" => self.pushes.push(Target::parse(name, args)?),
            "pull" => self.pulls.push(Target::parse(name, args)?),
            "push_reconnect" => time(&mut self.push_reconnect)?,
            "pull_reconnect" => time(&mut self.pull_reconnect)?,
            "pull_idle_timeout" => time(&mut self.pull_idle_timeout)?,
            "session_relay" => {
                if self.session_relay.is_some() {
                    return Err(format!("\"{name}\" directive is duplicate"));
                }
                self.session_relay = Some(parse_flag(arg).ok_or_else(|| invalid(name, arg, "it must be \"on\" or \"off\""))?);
            }
            "relay_ssl_verify" => {
                if self.ssl_verify.is_some() {
                    return Err(format!("\"{name}\" directive is duplicate"));
                }
                self.ssl_verify = Some(parse_flag(arg).ok_or_else(|| invalid(name, arg, "it must be \"on\" or \"off\""))?);
            }
            "relay_ssl_trusted_certificate" => {
                if self.ssl_trusted.is_some() {
                    return Err(format!("\"{name}\" directive is duplicate"));
                }
                self.ssl_trusted = Some(arg.to_owned());
            }
            "relay_buffer" => {
                if self.relay_buffer.is_some() {
                    return Err(format!("\"{name}\" directive is duplicate"));
                }
                self.relay_buffer = Some(parse_msec(arg).or_else(|| parse_size(arg)).ok_or_else(|| invalid(name, arg, "it must be a time"))?);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    pub fn inherit(&mut self, outer: &RelaySettings) {
        self.push_reconnect = self.push_reconnect.or(outer.push_reconnect);
        self.pull_reconnect = self.pull_reconnect.or(outer.pull_reconnect);
        self.session_relay = self.session_relay.or(outer.session_relay);
        self.relay_buffer = self.relay_buffer.or(outer.relay_buffer);
        self.ssl_verify = self.ssl_verify.or(outer.ssl_verify);
        self.pull_idle_timeout = self.pull_idle_timeout.or(outer.pull_idle_timeout);
    }

    /// Every push and pull line, for resolving their hosts.
    pub fn targets_mut(&mut self) -> impl Iterator<Item = (&'static str, &mut Target)> {
        self.pushes.iter_mut().map(|t| ("push", t)).chain(self.pulls.iter_mut().map(|t| ("pull", t)))
    }
}

/// What an application's streams relay, as they run.
#[derive(Clone, Debug, Default)]
pub struct Relays {
    pub pushes: Vec<Target>,
    pub pulls: Vec<Target>,
    pub push_reconnect: u64,
    pub pull_reconnect: u64,
    /// `session_relay on`: a push ends with its publisher's connection rather than its
    /// stream (the same here: one publisher per stream).
    pub session_relay: bool,
    /// `relay_ssl_verify`: `rtmps://` relays check the server's certificate (default on).
    pub ssl_verify: bool,
    /// How long a pull stays without players.
    pub pull_idle_timeout: u64,
}

impl From<&RelaySettings> for Relays {
    fn from(s: &RelaySettings) -> Relays {
        Relays {
            pushes: s.pushes.clone(),
            pulls: s.pulls.clone(),
            push_reconnect: s.push_reconnect.unwrap_or(RECONNECT_MS),
            pull_reconnect: s.pull_reconnect.unwrap_or(RECONNECT_MS),
            session_relay: s.session_relay.unwrap_or(false),
            ssl_verify: s.ssl_verify.unwrap_or(true),
            pull_idle_timeout: s.pull_idle_timeout.unwrap_or(PULL_IDLE_MS),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Target, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        Target::parse(words[0], &words[1..])
    }

    #[test]
    fn urls_and_parameters_as_nginx_rtmp_module() {
        let t = parse("push rtmp://127.0.0.1:1936/live/other").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.app.as_deref(), t.play_path.as_deref()), ("127.0.0.1", 1936, Some("live"), Some("other")));
        assert_eq!(t.addr, Some("127.0.0.1:1936".parse().unwrap()));
        assert_eq!(t.names("src", "cam"), ("live".into(), "rtmp://127.0.0.1:1936/live".into(), "other".into()));
        let t = parse("push edge.example.com").unwrap();
        assert_eq!((t.port, t.app.as_deref(), t.play_path.as_deref(), t.addr), (1935, None, None, None));
        assert_eq!(t.names("src", "cam"), ("src".into(), "rtmp://edge.example.com:1935/src".into(), "cam".into()));
        let t = parse("pull rtmp://[::1]:1937/a/b/c name=local static app=x tcUrl=rtmp://h/x pageUrl=p swfUrl=s flashVer=F live=1 start=5 stop=9").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.play_path.as_deref(), t.name.as_deref()), ("::1", 1937, Some("b/c"), Some("local")));
        assert!(t.is_static && t.live == Some(true) && t.start == Some(5) && t.stop == Some(9));
        assert_eq!(t.names("l", "n"), ("x".into(), "rtmp://h/x".into(), "b/c".into()));
        assert!(t.applies_to("local") && !t.applies_to("other"));
        let t = parse("push rtmps://live-api-s.facebook.com/rtmp/KEY").unwrap();
        assert!(t.tls && t.port == 443);
        assert_eq!(t.names("l", "n"), ("rtmp".into(), "rtmps://live-api-s.facebook.com:443/rtmp".into(), "KEY".into()));
    }

    #[test]
    fn bad_lines_name_the_directive() {
        for (line, want) in [
            ("push http://x/a", "only rtmp://"),
            ("push rtmp://x:99999/a", "expected [rtmp[s]://]HOST"),
            ("push rtmp://:1/a", "expected [rtmp[s]://]HOST"),
            ("pull rtmp://x/a bogus=1", "unknown parameter"),
            ("pull rtmp://x/a start=soon", "milliseconds"),
            ("push rtmp://x/a static", "only a pull can be static"),
            ("pull rtmp://x/a static", "needs the local stream's name"),
        ] {
            let e = parse(line).unwrap_err();
            assert!(e.contains(want), "{line}: {e}");
            assert!(e.contains(line.split(' ').next().unwrap()), "{line}: {e}");
        }
    }
}
