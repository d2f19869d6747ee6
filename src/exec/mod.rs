//! nginx-rtmp-module's `exec` family without the processes: a command line as the config
//! writes it ([`Command`]), its `$variables` (nginx-rtmp-module's `ngx_rtmp_eval`: `$name`
//! takes letters only, so `$name_480p` is `$name` then `_480p`; `${name}`; `\` escapes the
//! next character; an unknown variable is empty), its redirections (`>FILE`, `2>>FILE`,
//! `<FILE`, `2>&1`, as nginx-rtmp-module's `ngx_rtmp_eval_streams`), and what it expands
//! to for one stream ([`Spec`]). When children start, stop and respawn is decided by
//! `crate::app::exec`; `glue/spawn.rs` forks, execs and reaps.

/// A redirection written as an argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Redirect {
    /// `N>FILE`, `N>>FILE` (`append`), `N<FILE` (`read`).
    File { fd: i32, path: String, append: bool, read: bool },
    /// `N>&M`.
    Dup { fd: i32, to: i32 },
}

/// One `exec*` line: its words as written (the first is the program), and with
/// `exec_options on` the stream names it is for (`name=X` words; empty: every stream).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    pub words: Vec<String>,
    pub names: Vec<String>,
}

/// A command expanded for one stream: the program's arguments and the redirections.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Spec {
    pub argv: Vec<String>,
    pub redirects: Vec<Redirect>,
}

/// The search path children get when the worker has no `PATH` (nginx clears a worker's
/// environment but for `TZ` and what `env` directives keep).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The longest expanded word, and the most words a command may have: bounds on what a
/// client's stream name (or other variables) can make a command line grow to.
const MAX_WORD: usize = 4096;
pub const MAX_WORDS: usize = 256;

impl Command {
    /// Parses a directive's arguments; `options`: `exec_options on` (`name=` words pick
    /// the streams).
    pub fn parse(args: &[&str], options: bool) -> Result<Command, String> {
        let mut words = Vec::new();
        let mut names = Vec::new();
        for (i, a) in args.iter().enumerate() {
            match a.strip_prefix("name=") {
                Some(n) if options && i > 0 => names.push(n.to_owned()),
                _ => words.push((*a).to_owned()),
            }
        }
        if words.first().is_none_or(|w| w.is_empty()) {
            return Err("a command is needed".into());
        }
        if words.len() > MAX_WORDS {
            return Err(format!("more than {MAX_WORDS} words"));
        }
        Ok(Command { words, names })
    }

    /// Whether the command is for stream `name` (`exec_options on` with `name=`).
    pub fn applies_to(&self, name: &str) -> bool {
        self.names.is_empty() || self.names.iter().any(|n| n == name)
    }

    /// The program as written, if it has no variable in it.
    pub fn fixed_program(&self) -> Option<&str> {
        let p = &self.words[0];
        (!p.contains('$')).then_some(p.as_str())
    }

    /// The command for one stream: variables expanded (`var` answers a name), each word
    /// that is a redirection taken out of the arguments.
    pub fn expand(&self, var: &dyn Fn(&str) -> Option<String>) -> Result<Spec, String> {
        let mut spec = Spec::default();
        for (i, w) in self.words.iter().enumerate() {
            let word = expand(w, var);
            match (i, redirect(&word)) {
                (0, _) | (_, None) => spec.argv.push(word),
                (_, Some(Ok(r))) => spec.redirects.push(r),
                (_, Some(Err(e))) => return Err(format!("{e} in \"{word}\"")),
            }
        }
        if spec.argv[0].is_empty() {
            return Err(format!("\"{}\" expands to an empty program name", self.words[0]));
        }
        Ok(spec)
    }

    /// The streams (port, app, name) its arguments publish to on this host: `rtmp://` URLs
    /// to a loopback address that are not an input (`-i URL`), expanded. (What the
    /// supervisor watches to tell a hung transcoder.)
    pub fn outputs(spec: &Spec) -> Vec<(u16, String, String)> {
        let mut out = Vec::new();
        for (i, a) in spec.argv.iter().enumerate() {
            if i > 0 && spec.argv[i - 1] == "-i" {
                continue;
            }
            if let Some(key) = local_rtmp(a) {
                out.push(key);
            }
        }
        out
    }
}

/// `rtmp://HOST[:PORT]/APP/NAME[?args]` with a loopback HOST: (PORT, APP, NAME).
fn local_rtmp(url: &str) -> Option<(u16, String, String)> {
    let rest = url.strip_prefix("rtmp://")?;
    let (hostport, path) = rest.split_once('/')?;
    let (host, port) = match hostport.strip_prefix('[') {
        Some(h) => {
            let (h, rest) = h.split_once(']')?;
            (h, rest.strip_prefix(':'))
        }
        None => match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        },
    };
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => 1935,
    };
    let local = host == "localhost" || host.starts_with("127.") || host == "::1";
    if !local {
        return None;
    }
    let path = path.split('?').next()?;
    let (app, name) = path.split_once('/')?;
    (!app.is_empty() && !name.is_empty()).then(|| (port, app.to_owned(), name.to_owned()))
}

/// nginx-rtmp-module's `ngx_rtmp_eval` of one word.
pub fn expand(word: &str, var: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let mut chars = word.char_indices().peekable();
    let push = |out: &mut String, s: &str| {
        let room = MAX_WORD.saturating_sub(out.len());
        let mut end = s.len().min(room);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        out.push_str(&s[..end]);
    };
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, n)) = chars.next() {
                    push(&mut out, n.encode_utf8(&mut [0; 4]));
                }
            }
            '$' => {
                let name: &str = if chars.peek().is_some_and(|&(_, c)| c == '{') {
                    chars.next();
                    let start = i + 2;
                    // (Unclosed: nothing, as nginx-rtmp-module.)
                    let mut end = start;
                    for (j, c) in chars.by_ref() {
                        if c == '}' {
                            end = j;
                            break;
                        }
                    }
                    &word[start..end]
                } else {
                    let start = i + 1;
                    let mut end = start;
                    while let Some(&(j, c)) = chars.peek() {
                        if !c.is_ascii_alphabetic() {
                            break;
                        }
                        end = j + 1;
                        chars.next();
                    }
                    &word[start..end]
                };
                if let Some(v) = var(name) {
                    push(&mut out, &v);
                }
            }
            c => push(&mut out, c.encode_utf8(&mut [0; 4])),
        }
    }
    out
}

/// A word that is a redirection: `Some(Ok)`; a malformed one: `Some(Err)`; an argument:
/// `None`.
fn redirect(word: &str) -> Option<Result<Redirect, String>> {
    let digits = word.bytes().take_while(u8::is_ascii_digit).count();
    let (num, rest) = word.split_at(digits);
    let (read, rest) = match rest.as_bytes().first()? {
        b'>' => (false, &rest[1..]),
        b'<' => (true, &rest[1..]),
        _ => return None,
    };
    let fd = match num {
        "" => i32::from(!read),
        n => match n.parse::<i32>() {
            Ok(fd) if fd <= 1024 => fd,
            _ => return Some(Err("a bad file descriptor".into())),
        },
    };
    let (append, rest) = match rest.strip_prefix('>') {
        Some(r) if !read => (true, r),
        _ => (false, rest),
    };
    if let Some(to) = rest.strip_prefix('&') {
        return Some(match to.parse::<i32>() {
            Ok(to) if (0..=1024).contains(&to) => Ok(Redirect::Dup { fd, to }),
            _ => Err("a bad file descriptor".into()),
        });
    }
    if rest.is_empty() {
        return Some(Err("a redirection without a file".into()));
    }
    Some(Ok(Redirect::File { fd, path: rest.to_owned(), append, read }))
}

/// Where `program` is found: itself if it has a `/`, else the first executable file of
/// that name in `path` (a `PATH`-style list).
pub fn find_program(program: &str, path: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &std::path::Path| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if program.contains('/') {
        let p = std::path::PathBuf::from(program);
        return executable(&p).then_some(p);
    }
    path.split(':').filter(|d| !d.is_empty()).map(|d| std::path::Path::new(d).join(program)).find(|p| executable(p))
}

/// A signal by name (`kill`, `term`, `SIGTERM`, `int`, `hup`, `quit`, `usr1`, `usr2`) or
/// number, as `exec_kill_signal` takes it.
pub fn signal(name: &str) -> Option<i32> {
    if let Ok(n) = name.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let lower = name.to_ascii_lowercase();
    let n = lower.strip_prefix("sig").unwrap_or(&lower);
    Some(match n {
        "hup" => 1,
        "int" => 2,
        "quit" => 3,
        "kill" => 9,
        "usr1" => 10,
        "usr2" => 12,
        "term" => 15,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(n: &str) -> Option<String> {
        match n {
            "name" => Some("cam".into()),
            "app" => Some("live".into()),
            _ => None,
        }
    }

    #[test]
    fn variables_as_nginx_rtmp_module_expands_them() {
        assert_eq!(expand("rtmp://localhost/hls/$name_480p", &vars), "rtmp://localhost/hls/cam_480p");
        assert_eq!(expand("${name}x-$app", &vars), "camx-live");
        assert_eq!(expand("a\\$name$nope.b", &vars), "a$name.b");
        assert_eq!(expand("$", &vars), "");
        assert_eq!(expand("${name", &vars), "");
        assert_eq!(expand("é$name", &vars), "écam");
    }

    #[test]
    fn redirections_are_taken_out_of_the_arguments() {
        let c = Command::parse(&["ffmpeg", "-i", "x", "2>>/tmp/$name.log", ">/dev/null", "<in", "2>&1"], false).unwrap();
        let s = c.expand(&vars).unwrap();
        assert_eq!(s.argv, ["ffmpeg", "-i", "x"]);
        assert_eq!(
            s.redirects,
            [
                Redirect::File { fd: 2, path: "/tmp/cam.log".into(), append: true, read: false },
                Redirect::File { fd: 1, path: "/dev/null".into(), append: false, read: false },
                Redirect::File { fd: 0, path: "in".into(), append: false, read: true },
                Redirect::Dup { fd: 2, to: 1 },
            ]
        );
        assert!(Command::parse(&["a", "2>"], false).unwrap().expand(&vars).is_err());
        assert!(Command::parse(&["a", "99999999999>x"], false).unwrap().expand(&vars).is_err());
    }

    #[test]
    fn exec_options_picks_streams_by_name() {
        let c = Command::parse(&["ffmpeg", "name=a", "-i", "name=b"], true).unwrap();
        assert_eq!(c.words, ["ffmpeg", "-i"]);
        assert!(c.applies_to("a") && c.applies_to("b") && !c.applies_to("c"));
        let c = Command::parse(&["ffmpeg", "name=a"], false).unwrap();
        assert!(c.applies_to("zzz"));
        assert!(Command::parse(&[""], false).is_err());
    }

    #[test]
    fn outputs_are_local_rtmp_urls_that_are_not_inputs() {
        let c = Command::parse(
            &["ffmpeg", "-i", "rtmp://localhost/live/$name", "-f", "flv", "rtmp://127.0.0.1:1935/hls/$name_hi?x=1", "rtmp://example.com/a/b", "rtmp://[::1]/hls/lo"],
            false,
        )
        .unwrap();
        let s = c.expand(&vars).unwrap();
        assert_eq!(Command::outputs(&s), [(1935, "hls".into(), "cam_hi".into()), (1935, "hls".into(), "lo".into())]);
    }

    #[test]
    fn signals_and_programs() {
        assert_eq!(signal("term"), Some(15));
        assert_eq!(signal("SIGKILL"), Some(9));
        assert_eq!(signal("2"), Some(2));
        assert_eq!(signal("nope"), None);
        assert_eq!(signal("0"), None);
        assert!(find_program("sh", DEFAULT_PATH).is_some());
        assert!(find_program("no-such-program-here", DEFAULT_PATH).is_none());
        assert!(find_program("/bin/sh", "").is_some());
    }

    #[test]
    fn a_long_name_cannot_grow_a_word_without_bound() {
        let long = |_: &str| Some("x".repeat(10_000));
        assert_eq!(expand("$name$name", &long).len(), MAX_WORD);
    }
}
