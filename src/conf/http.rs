//! The `http {}` directives: `rtmp_stat`, `rtmp_stat_stylesheet`, `rtmp_stat_format`
//! and `rtmp_control`, parsed from their arguments.

use super::invalid;

/// `rtmp_stat` sections (nginx-rtmp-module's bits).
pub const STAT_GLOBAL: u8 = 1;
pub const STAT_LIVE: u8 = 2;
pub const STAT_CLIENTS: u8 = 4;
pub const STAT_PLAY: u8 = 8;
pub const STAT_ALL: u8 = 0x0f;

/// `rtmp_control` sections.
pub const CONTROL_RECORD: u8 = 1;
pub const CONTROL_DROP: u8 = 2;
pub const CONTROL_REDIRECT: u8 = 4;
pub const CONTROL_ALL: u8 = 7;

/// What a stat location answers in, unless the request says `?format=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Format {
    Xml = 1,
    Json = 2,
    Prometheus = 3,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "xml" => Some(Format::Xml),
            "json" => Some(Format::Json),
            "prometheus" => Some(Format::Prometheus),
            _ => None,
        }
    }
}

fn bits(name: &str, args: &[&str], table: &[(&str, u8)]) -> Result<u8, String> {
    let mut v = 0;
    for a in args {
        let Some(&(_, b)) = table.iter().find(|(n, _)| n == a) else {
            let names: Vec<String> = table.iter().map(|(n, _)| format!("\"{n}\"")).collect();
            return Err(invalid(name, a, &format!("it must be {}", names.join(", "))));
        };
        v |= b;
    }
    Ok(v)
}

/// `rtmp_stat all|global|live|clients|play ...`
pub fn stat(args: &[&str]) -> Result<u8, String> {
    bits(
        "rtmp_stat",
        args,
        &[("all", STAT_ALL), ("global", STAT_GLOBAL), ("live", STAT_LIVE), ("clients", STAT_CLIENTS), ("play", STAT_PLAY)],
    )
}

/// `rtmp_control all|record|drop|redirect ...`
pub fn control(args: &[&str]) -> Result<u8, String> {
    bits(
        "rtmp_control",
        args,
        &[("all", CONTROL_ALL), ("record", CONTROL_RECORD), ("drop", CONTROL_DROP), ("redirect", CONTROL_REDIRECT)],
    )
}

/// `rtmp_stat_format xml|json|prometheus`
pub fn format(arg: &str) -> Result<Format, String> {
    Format::parse(arg).ok_or_else(|| invalid("rtmp_stat_format", arg, "it must be \"xml\", \"json\" or \"prometheus\""))
}

/// A query argument, %-decoded (`+` is a space), or None.
pub fn arg(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| unescape(v))
    })
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(v) => {
                    out.push(v);
                    i += 3;
                    continue;
                }
                None => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_and_args() {
        assert_eq!(stat(&["all"]), Ok(STAT_ALL));
        assert_eq!(stat(&["live", "clients"]), Ok(STAT_LIVE | STAT_CLIENTS));
        assert!(stat(&["everything"]).unwrap_err().contains("\"rtmp_stat\""));
        assert_eq!(control(&["drop", "redirect"]), Ok(CONTROL_DROP | CONTROL_REDIRECT));
        assert!(control(&["kill"]).is_err());
        assert_eq!(format("json"), Ok(Format::Json));
        assert!(format("yaml").unwrap_err().contains("\"rtmp_stat_format\""));
        let q = "app=live&name=my%20cam&x&clientid=12&bad=%zz&end=%4";
        assert_eq!(arg(q, "name").as_deref(), Some("my cam"));
        assert_eq!(arg(q, "x").as_deref(), Some(""));
        assert_eq!(arg(q, "clientid").as_deref(), Some("12"));
        assert_eq!(arg(q, "bad").as_deref(), Some("%zz"));
        assert_eq!(arg(q, "end").as_deref(), Some("%4"));
        assert_eq!(arg(q, "nope"), None);
    }
}
