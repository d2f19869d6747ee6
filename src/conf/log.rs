//! `access_log` and `log_format`: nginx-rtmp-module's access log settings as plain data.
//! A format is compiled once here into literal text and variables; the application core
//! (`crate::app::log`) fills one line per session from it.

/// A variable of a log format (nginx-rtmp-module's, with its names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Var {
    Connection,
    RemoteAddr,
    App,
    FlashVer,
    SwfUrl,
    TcUrl,
    PageUrl,
    Command,
    Name,
    Args,
    BytesSent,
    BytesReceived,
    TimeLocal,
    Msec,
    SessionTime,
    SessionReadableTime,
}

const VARS: &[(&str, Var)] = &[
    ("connection", Var::Connection),
    ("remote_addr", Var::RemoteAddr),
    ("app", Var::App),
    ("flashver", Var::FlashVer),
    ("swfurl", Var::SwfUrl),
    ("tcurl", Var::TcUrl),
    ("pageurl", Var::PageUrl),
    ("command", Var::Command),
    ("name", Var::Name),
    ("args", Var::Args),
    ("bytes_sent", Var::BytesSent),
    ("bytes_received", Var::BytesReceived),
    ("time_local", Var::TimeLocal),
    ("msec", Var::Msec),
    ("session_time", Var::SessionTime),
    ("session_readable_time", Var::SessionReadableTime),
];

/// A piece of a compiled format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Text(String),
    Var(Var),
}

/// A named format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Format {
    pub name: String,
    pub ops: Vec<Op>,
}

/// nginx-rtmp-module's predefined format.
pub const COMBINED: &str = "$remote_addr [$time_local] $command \"$app\" \"$name\" \"$args\" - \
                            $bytes_received $bytes_sent \"$pageurl\" \"$flashver\" ($session_readable_time)";

/// `access_log` at one level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccessLog {
    Off,
    /// One or more `access_log PATH [FORMAT]` lines: (path as written, format name).
    To(Vec<(String, String)>),
}

/// Compiles a format's words (nginx joins the words of `log_format` without a space, as
/// nginx-rtmp-module does). `$name` and `${name}`; an unknown variable is an error.
pub fn compile(name: &str, words: &[&str]) -> Result<Format, String> {
    let mut ops = Vec::new();
    let mut text = String::new();
    for w in words {
        let mut rest = *w;
        while let Some(i) = rest.find('$') {
            text.push_str(&rest[..i]);
            rest = &rest[i + 1..];
            let (var, after) = if let Some(r) = rest.strip_prefix('{') {
                let end = r.find('}').ok_or_else(|| format!("the closing bracket in \"{w}\" variable is missing"))?;
                (&r[..end], &r[end + 1..])
            } else {
                let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
                (&rest[..end], &rest[end..])
            };
            if var.is_empty() {
                return Err(format!("invalid variable in \"{w}\""));
            }
            let v = VARS
                .iter()
                .find(|(n, _)| *n == var)
                .map(|(_, v)| *v)
                .ok_or_else(|| format!("unknown variable \"${var}\" (the rtmp access log knows {})", known()))?;
            if !text.is_empty() {
                ops.push(Op::Text(std::mem::take(&mut text)));
            }
            ops.push(Op::Var(v));
            rest = after;
        }
        text.push_str(rest);
    }
    if !text.is_empty() {
        ops.push(Op::Text(text));
    }
    Ok(Format { name: name.to_owned(), ops })
}

fn known() -> String {
    VARS.iter().map(|(n, _)| format!("${n}")).collect::<Vec<_>>().join(" ")
}

/// The formats of the `rtmp {}` block: `combined` first, then the `log_format` ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Formats(pub Vec<Format>);

impl Default for Formats {
    fn default() -> Self {
        Formats(vec![compile("combined", &[COMBINED]).expect("the combined format compiles")])
    }
}

impl Formats {
    /// `log_format NAME FORMAT...`.
    pub fn add(&mut self, args: &[&str]) -> Result<(), String> {
        let (name, words) = args.split_first().ok_or("\"log_format\" needs a name and a format")?;
        if self.0.iter().any(|f| f.name == *name) {
            return Err(format!("duplicate \"log_format\" name \"{name}\""));
        }
        let f = compile(name, words).map_err(|e| format!("{e} in \"log_format\" directive"))?;
        self.0.push(f);
        Ok(())
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.0.iter().position(|f| f.name == name)
    }
}

/// `access_log off | PATH [FORMAT]` written at a level that already has `current`.
pub fn apply(current: &mut Option<AccessLog>, args: &[&str]) -> Result<(), String> {
    match args {
        ["off"] => {
            if matches!(current, Some(AccessLog::To(_))) {
                return Err("\"access_log off\" with other \"access_log\" lines at the same level".into());
            }
            *current = Some(AccessLog::Off);
        }
        [path, rest @ ..] if rest.len() <= 1 && !path.is_empty() && *path != "off" => {
            let fmt = rest.first().copied().unwrap_or("combined").to_owned();
            match current {
                Some(AccessLog::Off) => return Err("\"access_log off\" with other \"access_log\" lines at the same level".into()),
                Some(AccessLog::To(v)) => v.push((path.to_string(), fmt)),
                None => *current = Some(AccessLog::To(vec![(path.to_string(), fmt)])),
            }
        }
        _ => return Err("invalid arguments in \"access_log\" directive, expected \"off\" or PATH [FORMAT]".into()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combined_compiles_to_nginx_rtmp_modules_pieces() {
        let f = &Formats::default().0[0];
        assert_eq!(f.name, "combined");
        assert_eq!(f.ops[0], Op::Var(Var::RemoteAddr));
        assert_eq!(f.ops[1], Op::Text(" [".into()));
        assert_eq!(f.ops.last(), Some(&Op::Text(")".into())));
        assert_eq!(f.ops.iter().filter(|o| matches!(o, Op::Var(_))).count(), 11);
    }

    #[test]
    fn braces_and_unknown_variables() {
        let f = compile("x", &["${app}x$name", " $msec"]).unwrap();
        assert_eq!(f.ops, vec![Op::Var(Var::App), Op::Text("x".into()), Op::Var(Var::Name), Op::Text(" ".into()), Op::Var(Var::Msec)]);
        assert!(compile("x", &["$nope"]).unwrap_err().contains("unknown variable \"$nope\""));
        assert!(compile("x", &["${app"]).is_err());
        assert!(compile("x", &["$"]).is_err());
        let mut fs = Formats::default();
        fs.add(&["short", "$app"]).unwrap();
        assert!(fs.add(&["short", "$app"]).unwrap_err().contains("duplicate"));
        assert_eq!(fs.index_of("short"), Some(1));
    }

    #[test]
    fn access_log_levels() {
        let mut a = None;
        apply(&mut a, &["logs/rtmp.log"]).unwrap();
        apply(&mut a, &["logs/b.log", "short"]).unwrap();
        assert_eq!(a, Some(AccessLog::To(vec![("logs/rtmp.log".into(), "combined".into()), ("logs/b.log".into(), "short".into())])));
        assert!(apply(&mut a, &["off"]).is_err());
        let mut b = None;
        apply(&mut b, &["off"]).unwrap();
        assert_eq!(b, Some(AccessLog::Off));
        assert!(apply(&mut None, &["a", "b", "c"]).is_err());
    }
}
