//! The `exec*` directives (nginx-rtmp-module's exec module, plus `exec_stall_timeout`):
//! the command lines of each event, parsed per level and inherited main -> server ->
//! application (-> `recorder` for `exec_record_done`): a level with lines of its own for
//! an event keeps only those, as nginx-rtmp-module merges them.

use super::value::{parse_flag, parse_msec};
use crate::exec::{self, Command};

/// When a command runs. `Push` (`exec`, `exec_push`) and `Pull` are supervised for as
/// long as their stream is published / played; the others run once per event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    Push,
    Pull,
    Publish,
    PublishDone,
    Play,
    PlayDone,
    RecordDone,
    Static,
}

const EVENTS: usize = 8;

const NAMES: [(&str, When); 9] = [
    ("exec", When::Push),
    ("exec_push", When::Push),
    ("exec_pull", When::Pull),
    ("exec_publish", When::Publish),
    ("exec_publish_done", When::PublishDone),
    ("exec_play", When::Play),
    ("exec_play_done", When::PlayDone),
    ("exec_record_done", When::RecordDone),
    ("exec_static", When::Static),
];

/// `exec_kill_signal`'s default: SIGTERM, so that ffmpeg finishes what it writes (its
/// files' trailers); nginx-rtmp-module sends SIGKILL. What does not end within
/// [`KILL_GRACE_MS`] gets SIGKILL.
pub const KILL_SIGNAL: i32 = 15;
pub const KILL_GRACE_MS: u64 = 5000;
/// `respawn_timeout`'s default (nginx-rtmp-module's).
pub const RESPAWN_TIMEOUT: u64 = 5000;
/// `exec_stall_timeout`'s default.
pub const STALL_TIMEOUT: u64 = 15_000;

#[derive(Clone, Debug, Default)]
pub struct ExecSettings {
    lines: [Vec<Command>; EVENTS],
    respawn: Option<bool>,
    respawn_timeout: Option<u64>,
    kill_signal: Option<i32>,
    options: Option<bool>,
    stall_timeout: Option<Option<u64>>,
}

/// How a stream's supervised children are run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Respawn a child that exits (`respawn`), after this long at first (`respawn_timeout`).
    pub respawn: Option<u64>,
    pub kill_signal: i32,
    /// Restart a child whose RTMP output has had no media for this long while its source
    /// had (`exec_stall_timeout`; None: never).
    pub stall: Option<u64>,
}

impl ExecSettings {
    /// Applies an exec directive. `Ok(false)`: not one of them.
    pub fn apply(&mut self, name: &str, args: &[&str]) -> Result<bool, String> {
        let arg = args.first().copied().unwrap_or("");
        let time = "it must be a time such as \"5s\" or \"500ms\"";
        macro_rules! set {
            ($field:ident, $parse:expr, $why:expr) => {
                set_once!(self.$field, name, arg, $parse, $why)
            };
        }
        if let Some(&(_, when)) = NAMES.iter().find(|(n, _)| *n == name) {
            let c = Command::parse(args, self.options == Some(true)).map_err(|e| format!("\"{name}\": {e}"))?;
            self.lines[when as usize].push(c);
            return Ok(true);
        }
        match name {
            "respawn" => set!(respawn, parse_flag, "it must be \"on\" or \"off\""),
            "respawn_timeout" => set!(respawn_timeout, parse_msec, time),
            "exec_kill_signal" => set!(kill_signal, exec::signal, "it must be a signal: \"term\", \"kill\", \"int\", \"hup\", \"quit\", \"usr1\", \"usr2\" or a number"),
            "exec_options" => set!(options, parse_flag, "it must be \"on\" or \"off\""),
            "exec_stall_timeout" => set!(
                stall_timeout,
                |s: &str| match s {
                    "off" => Some(None),
                    _ => parse_msec(s).filter(|&t| t >= 1000).map(Some),
                },
                "it must be \"off\" or a time of 1s or more"
            ),
            _ => return Ok(false),
        }
        Ok(true)
    }

    pub fn inherit(&mut self, outer: &ExecSettings) {
        for (mine, theirs) in self.lines.iter_mut().zip(&outer.lines) {
            if mine.is_empty() {
                mine.clone_from(theirs);
            }
        }
        macro_rules! inherit {
            ($($f:ident),*) => { $( if self.$f.is_none() { self.$f = outer.$f; } )* };
        }
        inherit!(respawn, respawn_timeout, kill_signal, options, stall_timeout);
    }

    /// The lines for `when` (after `inherit`: with the outer levels').
    pub fn lines(&self, when: When) -> &[Command] {
        &self.lines[when as usize]
    }

    /// The lines written at this level only (`exec_static`, gathered from every level).
    pub fn own_static(&self) -> &[Command] {
        &self.lines[When::Static as usize]
    }

    pub fn any(&self) -> bool {
        self.lines.iter().any(|l| !l.is_empty())
    }

    pub fn policy(&self) -> Policy {
        Policy {
            respawn: (self.respawn != Some(false)).then(|| self.respawn_timeout.unwrap_or(RESPAWN_TIMEOUT)),
            kill_signal: self.kill_signal.unwrap_or(KILL_SIGNAL),
            stall: self.stall_timeout.unwrap_or(Some(STALL_TIMEOUT)),
        }
    }

    /// Every line with the directive that wrote it.
    pub fn all(&self) -> impl Iterator<Item = &Command> {
        self.lines.iter().flatten()
    }
}

/// `nginx -t` fails for a program that is not there (rather than every stream's child
/// exiting with 127). `path`: where the worker looks (its `PATH`, or
/// [`exec::DEFAULT_PATH`]).
pub fn check_programs<'a>(lines: impl Iterator<Item = &'a Command>, path: &str) -> Result<(), String> {
    for c in lines {
        if let Some(p) = c.fixed_program() {
            if exec::find_program(p, path).is_none() {
                return Err(format!("exec: program \"{p}\" not found or not executable (searched {path})"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_inherit_per_event_and_settings_default() {
        let mut outer = ExecSettings::default();
        outer.apply("exec", &["ffmpeg", "-i", "x"]).unwrap();
        outer.apply("exec_publish", &["echo", "a"]).unwrap();
        let mut app = ExecSettings::default();
        app.apply("exec_publish", &["echo", "b"]).unwrap();
        app.apply("exec_publish", &["echo", "c"]).unwrap();
        app.inherit(&outer);
        assert_eq!(app.lines(When::Push).len(), 1);
        let publish: Vec<&str> = app.lines(When::Publish).iter().map(|c| c.words[1].as_str()).collect();
        assert_eq!(publish, ["b", "c"]);
        assert_eq!(app.policy(), Policy { respawn: Some(5000), kill_signal: 15, stall: Some(15_000) });
        let mut s = ExecSettings::default();
        s.apply("respawn", &["off"]).unwrap();
        s.apply("exec_kill_signal", &["kill"]).unwrap();
        s.apply("exec_stall_timeout", &["off"]).unwrap();
        assert_eq!(s.policy(), Policy { respawn: None, kill_signal: 9, stall: None });
    }

    #[test]
    fn errors_name_the_directive() {
        let mut s = ExecSettings::default();
        assert!(s.apply("exec_kill_signal", &["nope"]).unwrap_err().contains("\"exec_kill_signal\""));
        assert!(s.apply("exec_stall_timeout", &["10ms"]).unwrap_err().contains("\"exec_stall_timeout\""));
        s.apply("respawn_timeout", &["1s"]).unwrap();
        assert!(s.apply("respawn_timeout", &["2s"]).unwrap_err().contains("duplicate"));
        assert!(!s.apply("hls", &["on"]).unwrap());
        let mut s = ExecSettings::default();
        s.apply("exec_options", &["on"]).unwrap();
        s.apply("exec", &["sh", "name=cam"]).unwrap();
        assert!(!s.lines(When::Push)[0].applies_to("other"));
        let e = check_programs(s.all().chain(&[Command::parse(&["no-such-ffmpeg"], false).unwrap()]), exec::DEFAULT_PATH);
        assert!(e.unwrap_err().contains("\"no-such-ffmpeg\" not found"));
    }
}
