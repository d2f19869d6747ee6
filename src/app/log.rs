//! The access log (`access_log`, `log_format`): what a session did, one line when it
//! closes, as nginx-rtmp-module writes it; the glue appends the line to its file.

use super::{App, ClientId, Effect, Now};
use crate::conf::log::{Op, Var};
use crate::record::Tm;

/// `$command`'s flags.
pub const PLAY: u8 = 1;
pub const PUBLISH: u8 = 2;

impl App {
    /// A `publish` or `play` came: the line will name it (the last one, as
    /// nginx-rtmp-module; logged even if it is refused, which is what an operator
    /// looking for refused keys wants to see).
    pub(super) fn log_command(&mut self, id: ClientId, flag: u8, name: &str, args: &str) {
        if let Some(c) = self.clients.get_mut(id) {
            c.log_cmd |= flag;
            c.log_names = Some(Box::new((name.into(), args.into())));
        }
    }

    /// The client is closing: its lines, one per `access_log` of its application (or of
    /// its server, if it never reached one). Relays are not logged (nginx-rtmp-module's
    /// neither).
    pub(super) fn log_session(&mut self, id: ClientId, now: &Now) {
        let Some(c) = self.clients.get(id) else { return };
        if c.relay().is_some() {
            return;
        }
        let logs = match c.app.and_then(|a| self.conf.app(c.server, a)) {
            Some(app) => &app.access_logs,
            None => match self.conf.server_logs.get(c.server) {
                Some(l) => l,
                None => return,
            },
        };
        for to in logs {
            let Some(format) = self.conf.log_formats.get(to.format) else { continue };
            let mut line = Vec::with_capacity(160);
            for op in &format.ops {
                match op {
                    Op::Text(t) => line.extend_from_slice(t.as_bytes()),
                    Op::Var(v) => var(&mut line, *v, c, now),
                }
            }
            line.push(b'\n');
            self.effects.push_back(Effect::AccessLog { file: to.file, line });
        }
    }
}

fn var(out: &mut Vec<u8>, v: Var, c: &super::Client, now: &Now) {
    use std::io::Write;
    let info = c.info.as_deref();
    let names = c.log_names.as_deref();
    let secs = now.ms.saturating_sub(c.since) / 1000;
    let _ = match v {
        Var::Connection => write!(out, "{}", c.number),
        Var::RemoteAddr => Ok(escaped(out, &c.addr)),
        Var::App => Ok(escaped(out, info.map_or("", |i| &i.app))),
        Var::FlashVer => Ok(escaped(out, info.map_or("", |i| &i.flash_ver))),
        Var::SwfUrl => Ok(escaped(out, info.map_or("", |i| &i.swf_url))),
        Var::TcUrl => Ok(escaped(out, info.map_or("", |i| &i.tc_url))),
        Var::PageUrl => Ok(escaped(out, info.map_or("", |i| &i.page_url))),
        Var::Name => Ok(escaped(out, names.map_or("", |n| &n.0))),
        Var::Args => Ok(escaped(out, names.map_or("", |n| &n.1))),
        Var::Command => out.write_all(match c.log_cmd {
            0 => b"NONE",
            PLAY => b"PLAY",
            PUBLISH => b"PUBLISH",
            _ => b"PLAY+PUBLISH",
        }),
        Var::BytesSent => write!(out, "{}", c.bytes_out),
        Var::BytesReceived => write!(out, "{}", c.bytes_in),
        Var::TimeLocal => Ok(time_local(out, &now.local)),
        Var::Msec => write!(out, "{}.{:03}", now.wall_ms.div_euclid(1000), now.wall_ms.rem_euclid(1000)),
        Var::SessionTime => write!(out, "{secs}"),
        Var::SessionReadableTime => Ok(readable(out, secs)),
    };
}

/// What a client sent, as nginx escapes variables in its logs: `"`, `\`, control bytes
/// and bytes above 0x7e as `\xHH`, so that no client can forge a line or a field.
fn escaped(out: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
        if b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b) {
            out.extend_from_slice(format!("\\x{b:02X}").as_bytes());
        } else {
            out.push(b);
        }
    }
}

/// nginx's `$time_local`: `03/Dec/2026:09:34:07 +0000`.
fn time_local(out: &mut Vec<u8>, t: &Tm) {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = MONTHS.get(t.month.wrapping_sub(1) as usize).copied().unwrap_or("Jan");
    let (sign, off) = if t.gmtoff < 0 { ('-', -t.gmtoff) } else { ('+', t.gmtoff) };
    let s = format!(
        "{:02}/{month}/{}:{:02}:{:02}:{:02} {sign}{:02}{:02}",
        t.day,
        t.year,
        t.hour,
        t.minute,
        t.second,
        off / 3600,
        off % 3600 / 60
    );
    out.extend_from_slice(s.as_bytes());
}

/// nginx-rtmp-module's `$session_readable_time`: `1d 2h 3m 4s`, leading zero units left out.
fn readable(out: &mut Vec<u8>, v: u64) {
    let (d, h, m, s) = (v / 86_400, v / 3600 % 24, v / 60 % 60, v % 60);
    let mut t = String::new();
    if d > 0 {
        t += &format!("{d}d ");
    }
    if d > 0 || h > 0 {
        t += &format!("{h}h ");
    }
    if d > 0 || h > 0 || m > 0 {
        t += &format!("{m}m ");
    }
    t += &format!("{s}s");
    out.extend_from_slice(t.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_time_as_nginx_rtmp_module() {
        let r = |v| {
            let mut o = Vec::new();
            readable(&mut o, v);
            String::from_utf8(o).unwrap()
        };
        assert_eq!(r(0), "0s");
        assert_eq!(r(61), "1m 1s");
        assert_eq!(r(3600), "1h 0m 0s");
        assert_eq!(r(90_061), "1d 1h 1m 1s");
    }

    #[test]
    fn time_local_and_escapes() {
        let mut o = Vec::new();
        let t = Tm { year: 2026, month: 12, day: 3, hour: 9, minute: 4, second: 7, gmtoff: -(5 * 3600 + 1800), ..Tm::default() };
        time_local(&mut o, &t);
        assert_eq!(String::from_utf8(o).unwrap(), "03/Dec/2026:09:04:07 -0530");
        let mut o = Vec::new();
        escaped(&mut o, "a\"b\n\\é");
        assert_eq!(String::from_utf8(o).unwrap(), "a\\x22b\\x0A\\x5C\\xC3\\xA9");
    }
}
