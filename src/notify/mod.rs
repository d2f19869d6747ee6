//! HTTP notify callbacks (`on_connect`, `on_publish`, ...), sans-IO: the callback URL, the
//! request bytes exactly as nginx-rtmp-module sends them (an HTTP/1.0 request with an
//! `application/x-www-form-urlencoded` form, fields in its order), and the reading of the
//! reply (2xx allows, 3xx with `Location` renames or relays, anything else denies). The
//! glue sends the bytes from nginx's event loop and hands back what it read.

use std::net::{SocketAddr, ToSocketAddrs};

#[cfg(test)]
mod tests;

/// nginx-rtmp-module keeps a client's `flashVer` in 32 bytes (31 and a NUL): callbacks and
/// statistics show it cut there, and scripts written against it expect that.
pub const FLASHVER_MAX: usize = 31;

/// A callback URL (`http://HOST[:PORT]/PATH[?QUERY]`). A host name is resolved once when
/// the configuration is read (as nginx-rtmp-module, and nginx's `proxy_pass` with a fixed
/// host, do) or, where a `resolver` is configured, for each call through nginx's resolver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// As written in the configuration (for logs).
    pub text: String,
    /// `https://`: TLS (through the `rtmps://` relays' context and checks).
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Path and query, at least "/".
    pub path: String,
    /// The address to call: the host when it is an IP address, else once resolved.
    pub addr: Option<SocketAddr>,
}

impl Url {
    /// Parses a callback URL. The `http://` prefix may be left out, as with
    /// nginx-rtmp-module; `https://` is ours; other schemes are refused.
    pub fn parse(text: &str) -> Result<Url, String> {
        let (rest, tls) = match text.find("://") {
            Some(i) if text[..i].eq_ignore_ascii_case("http") => (&text[i + 3..], false),
            Some(i) if text[..i].eq_ignore_ascii_case("https") => (&text[i + 3..], true),
            Some(i) => return Err(format!("\"{}://\" URLs are not supported, only \"http://\" and \"https://\"", &text[..i])),
            None => (text, false),
        };
        if rest.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err("a URL cannot contain spaces or control characters".into());
        }
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        let path = match path {
            "" => "/".to_owned(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_owned(),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or("no \"]\" after an IPv6 address")?;
            (h, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() || host.contains('@') {
            return Err("no host".into());
        }
        let port = match port {
            None if tls => 443,
            None => 80,
            Some(p) => p.parse::<u16>().ok().filter(|&p| p > 0).ok_or_else(|| format!("invalid port \"{p}\""))?,
        };
        let addr = host.parse::<std::net::IpAddr>().ok().map(|ip| SocketAddr::new(ip, port));
        Ok(Url { text: text.to_owned(), tls, host: host.to_owned(), port, path, addr })
    }

    /// Resolves the host name now (blocking: for configuration time only).
    pub fn resolve_now(&mut self) -> Result<(), String> {
        if self.addr.is_none() {
            let found = (self.host.as_str(), self.port).to_socket_addrs().ok().and_then(|mut a| a.next());
            self.addr = Some(found.ok_or_else(|| format!("host not found: \"{}\"", self.host))?);
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

/// Appends `s` escaped as nginx's `ngx_escape_uri(..., NGX_ESCAPE_ARGS)` does: space, `#`,
/// `%`, `&`, `+`, `;`, `?`, control characters and bytes above 0x7e become `%XX`.
pub fn escape_arg(out: &mut String, s: &str) {
    for &b in s.as_bytes() {
        if b <= b' ' || b >= 0x7f || matches!(b, b'#' | b'%' | b'&' | b'+' | b';' | b'?') {
            push_hex(out, b);
        } else {
            out.push(b as char);
        }
    }
}

fn push_hex(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(HEX[(b >> 4) as usize] as char);
    out.push(HEX[(b & 15) as usize] as char);
}

/// Appends a client's own URL arguments (`key?token=...`): passed on as they came, as
/// nginx-rtmp-module does, except that what could break the request (spaces, control
/// characters, non-ASCII) is escaped.
fn push_args(out: &mut String, args: &str) {
    if args.is_empty() {
        return;
    }
    out.push('&');
    for &b in args.as_bytes() {
        if b <= b' ' || b >= 0x7f {
            push_hex(out, b);
        } else {
            out.push(b as char);
        }
    }
}

/// What a callback says about the client, from its `connect`.
#[derive(Clone, Debug, Default)]
pub struct Client<'a> {
    pub app: &'a str,
    pub flashver: &'a str,
    pub swfurl: &'a str,
    pub tcurl: &'a str,
    pub pageurl: &'a str,
    /// The client's IP address.
    pub addr: &'a str,
    /// nginx's connection number (also in the error log and `/stat`).
    pub clientid: u64,
    /// The arguments of `connect` (`rtmp://host/app?x=y`).
    pub args: &'a str,
}

/// One callback and what it carries beyond the client's fields.
#[derive(Clone, Debug)]
pub enum Call<'a> {
    Connect { epoch: u32 },
    Disconnect,
    Publish { name: &'a str, kind: &'a str, args: &'a str },
    Play { name: &'a str, start: f64, duration: f64, reset: bool, args: &'a str },
    /// `publish_done`, `play_done` or `done`.
    Done { call: &'static str, name: &'a str, args: &'a str },
    /// `update_publish` / `update_play`: seconds since the stream started, and the last
    /// timestamp the client sent.
    Update { publishing: bool, time: u64, timestamp: u32, name: &'a str, args: &'a str },
    RecordDone { recorder: &'a str, name: &'a str, path: &'a str, args: &'a str },
}

impl Call<'_> {
    /// The value of the `call` field (for logs).
    pub fn name(&self) -> &'static str {
        match self {
            Call::Connect { .. } => "connect",
            Call::Disconnect => "disconnect",
            Call::Publish { .. } => "publish",
            Call::Play { .. } => "play",
            Call::Done { call, .. } => call,
            Call::Update { publishing: true, .. } => "update_publish",
            Call::Update { .. } => "update_play",
            Call::RecordDone { .. } => "record_done",
        }
    }
}

/// A number as nginx-rtmp-module prints an AMF number it keeps as `uint32_t`.
fn as_u32(n: f64) -> u32 {
    (n as i64) as u32
}

/// The form (the POST body, or the GET query) in nginx-rtmp-module's field order.
pub fn form(client: &Client, call: &Call) -> String {
    let mut f = String::with_capacity(256);
    let field = |f: &mut String, name: &str, value: &str| {
        if !f.is_empty() {
            f.push('&');
        }
        f.push_str(name);
        f.push('=');
        escape_arg(f, value);
    };
    field(&mut f, "app", client.app);
    field(&mut f, "flashver", client.flashver);
    field(&mut f, "swfurl", client.swfurl);
    field(&mut f, "tcurl", client.tcurl);
    field(&mut f, "pageurl", client.pageurl);
    field(&mut f, "addr", client.addr);
    if let Call::Connect { epoch } = call {
        f.push_str(&format!("&epoch={epoch}&call=connect"));
        push_args(&mut f, client.args);
        return f;
    }
    f.push_str(&format!("&clientid={}&call={}", client.clientid, call.name()));
    match call {
        Call::Connect { .. } => unreachable!("handled above"),
        Call::Disconnect => {
            field(&mut f, "app", client.app);
            push_args(&mut f, client.args);
        }
        Call::Publish { name, kind, args } => {
            field(&mut f, "name", name);
            field(&mut f, "type", kind);
            push_args(&mut f, args);
        }
        Call::Play { name, start, duration, reset, args } => {
            field(&mut f, "name", name);
            f.push_str(&format!("&start={}&duration={}&reset={}", as_u32(*start), as_u32(*duration), *reset as u8));
            push_args(&mut f, args);
        }
        Call::Done { name, args, .. } => {
            if !name.is_empty() {
                field(&mut f, "name", name);
            }
            push_args(&mut f, args);
        }
        Call::Update { time, timestamp, name, args, .. } => {
            f.push_str(&format!("&time={time}&timestamp={timestamp}"));
            if !name.is_empty() {
                field(&mut f, "name", name);
            }
            push_args(&mut f, args);
        }
        Call::RecordDone { recorder, name, path, args } => {
            field(&mut f, "recorder", recorder);
            field(&mut f, "name", name);
            field(&mut f, "path", path);
            push_args(&mut f, args);
        }
    }
    f
}

/// `Host:` for a URL (the port left out when it is the scheme's).
fn host_header(url: &Url) -> String {
    let default_port = if url.tls { 443 } else { 80 };
    match (url.host.contains(':'), url.port) {
        (false, p) if p == default_port => url.host.clone(),
        (false, p) => format!("{}:{p}", url.host),
        (true, p) if p == default_port => format!("[{}]", url.host),
        (true, p) => format!("[{}]:{p}", url.host),
    }
}

/// A plain `GET` of `path` (already escaped) on `url`'s server: a file to play (`play
/// http://...`).
pub fn get(url: &Url, path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.0\r\nHost: {}\r\nUser-Agent: ngx-rtmp-rs\r\nConnection: Close\r\n\r\n", host_header(url)).into_bytes()
}

/// The whole HTTP request: `POST` with the form as body, or `GET` with it as the query.
pub fn request(method: Method, url: &Url, form: &str) -> Vec<u8> {
    let host = host_header(url);
    let (line, body) = match method {
        Method::Post => (format!("POST {}", url.path), form),
        Method::Get => {
            let sep = if url.path.contains('?') { '&' } else { '?' };
            (format!("GET {}{sep}{form}", url.path), "")
        }
    };
    format!(
        "{line} HTTP/1.0\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Connection: Close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// What a callback server answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub location: Option<String>,
}

/// Reads a reply from what came so far (`eof`: the server closed). `None`: more is
/// needed. The status line and headers are enough; the body is not waited for (nor read:
/// 100 MB of it cost nothing). A reply cut before the end of its headers is broken, so
/// it denies: a service that dies mid-reply grants nothing (nginx-rtmp-module goes by
/// the status line alone).
pub fn parse_reply(buf: &[u8], eof: bool) -> Option<Result<Reply, String>> {
    let prefix = b"HTTP/";
    let n = buf.len().min(prefix.len());
    if buf[..n] != prefix[..n] {
        return Some(Err("not an HTTP reply".into()));
    }
    let head_end = find(buf, b"\r\n\r\n").map(|i| i + 4).or_else(|| find(buf, b"\n\n").map(|i| i + 2));
    let head = match (head_end, eof) {
        (Some(end), _) => &buf[..end],
        (None, true) if buf.len() >= 12 && buf[..12].iter().any(|&b| b == b' ') => {
            return Some(Err("reply cut before the end of its headers".into()))
        }
        (None, true) => buf,
        (None, false) => return None,
    };
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split('\n').map(|l| l.trim_end_matches('\r'));
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .split_ascii_whitespace()
        .nth(1)
        .filter(|s| s.len() == 3)
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|s| (100..1000).contains(s));
    let Some(status) = status else {
        return Some(Err(if eof && head.len() < 12 { "empty or cut reply".into() } else { "broken status line".into() }));
    };
    let location = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("location"))
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty());
    Some(Ok(Reply { status, location }))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// How a call ended: a reply, or why there was none (refused, timed out, broken reply).
pub type Outcome = Result<Reply, String>;

/// What `on_connect`, `on_publish` and `on_play` decide.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// 3xx with a `Location` that is a plain name: go on under that name.
    Rename(String),
    /// 3xx with an `rtmp://` `Location`: a relay (push for publish, pull for play).
    Relay(String),
    /// Why the client is refused.
    Deny(String),
}

pub fn verdict(outcome: &Outcome) -> Verdict {
    match outcome {
        Ok(Reply { status: 200..=299, .. }) => Verdict::Allow,
        Ok(Reply { status: 300..=399, location: Some(l) }) => {
            if l.len() >= 7 && l[..7].eq_ignore_ascii_case("rtmp://") {
                Verdict::Relay(l.clone())
            } else {
                Verdict::Rename(l.clone())
            }
        }
        // A redirect without a place to go: nginx-rtmp-module goes on as if allowed.
        Ok(Reply { status: 300..=399, location: None }) => Verdict::Allow,
        Ok(Reply { status, .. }) => Verdict::Deny(format!("HTTP {status}")),
        Err(why) => Verdict::Deny(why.clone()),
    }
}

/// Whether an `on_update` outcome drops the client. Strict: anything but 2xx does. Not
/// strict (the default): only an HTTP reply with an error status does; a callback server
/// that is down or answers garbage leaves the client alone.
pub fn update_drops(outcome: &Outcome, strict: bool) -> bool {
    match outcome {
        Ok(Reply { status: 200..=299, .. }) => false,
        Ok(Reply { status: 300..=399, .. }) => strict,
        Ok(_) => true,
        Err(_) => strict,
    }
}
