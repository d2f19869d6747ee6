//! The `dash*` directives: parsed per level, inherited main -> server -> application, and
//! resolved into a [`dash::Config`] with nginx-rtmp-module's defaults.

use super::value::{parse_flag, parse_msec};
use crate::dash;

/// DASH settings written at one level; `None` inherits from the outer level.
#[derive(Clone, Debug, Default)]
pub struct DashSettings {
    pub dash: Option<bool>,
    pub path: Option<String>,
    pub fragment: Option<u64>,
    pub playlist_length: Option<u64>,
    pub nested: Option<bool>,
    pub cleanup: Option<bool>,
}

impl DashSettings {
    /// Applies a `dash*` directive. `Ok(false)`: not one of them.
    pub fn apply(&mut self, name: &str, args: &[&str]) -> Result<bool, String> {
        let arg = args.first().copied().unwrap_or("");
        let flag = "it must be \"on\" or \"off\"";
        let time = "it must be a time such as \"5s\" or \"500ms\"";
        macro_rules! set {
            ($field:ident, $parse:expr, $why:expr) => {
                set_once!(self.$field, name, arg, $parse, $why)
            };
        }
        let positive = |s: &str| parse_msec(s).filter(|&t| t > 0);
        match name {
            "dash" => set!(dash, parse_flag, flag),
            "dash_path" => set!(path, |s: &str| (!s.is_empty() && !s.contains('\0')).then(|| s.to_owned()), "it must be a directory"),
            "dash_fragment" => set!(fragment, positive, time),
            "dash_playlist_length" => set!(playlist_length, positive, time),
            "dash_nested" => set!(nested, parse_flag, flag),
            "dash_cleanup" => set!(cleanup, parse_flag, flag),
            _ => return Ok(false),
        }
        Ok(true)
    }

    pub fn inherit(&mut self, outer: &DashSettings) {
        macro_rules! inherit {
            ($($f:ident),*) => { $( if self.$f.is_none() { self.$f = outer.$f.clone(); } )* };
        }
        inherit!(dash, path, fragment, playlist_length, nested, cleanup);
    }

    /// `dash on` without `dash_path` (nginx-rtmp-module refuses it too).
    pub fn check(&self, app: &str) -> Result<(), String> {
        if self.dash == Some(true) && self.path.is_none() {
            return Err(format!("\"dash\" is on in application \"{app}\" but \"dash_path\" is not set"));
        }
        Ok(())
    }

    /// The resolved configuration when `dash` is on; a relative path is taken from `prefix`.
    pub fn resolve(&self, prefix: &str) -> Option<dash::Config> {
        if self.dash != Some(true) {
            return None;
        }
        let d = dash::Config::default();
        Some(dash::Config {
            path: super::value::full_path(prefix, self.path.as_deref().unwrap_or("")),
            fragment: self.fragment.unwrap_or(d.fragment),
            playlist_length: self.playlist_length.unwrap_or(d.playlist_length),
            nested: self.nested.unwrap_or(d.nested),
            cleanup: self.cleanup.unwrap_or(d.cleanup),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(s: &mut DashSettings, line: &str) -> Result<bool, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        s.apply(words[0], &words[1..])
    }

    #[test]
    fn defaults_inheritance_and_errors() {
        let mut main = DashSettings::default();
        apply(&mut main, "dash_fragment 2s").unwrap();
        let mut app = DashSettings::default();
        assert!(app.resolve("/p").is_none(), "off by default");
        apply(&mut app, "dash on").unwrap();
        assert!(app.check("live").unwrap_err().contains("\"dash_path\" is not set"));
        apply(&mut app, "dash_path dash").unwrap();
        app.inherit(&main);
        let c = app.resolve("/p/").unwrap();
        assert_eq!(c, dash::Config { path: "/p/dash".into(), fragment: 2000, playlist_length: 30_000, nested: false, cleanup: true });
        assert!(apply(&mut app, "dash_fragment 0").unwrap_err().contains("\"dash_fragment\""));
        assert!(apply(&mut app, "dash_nested maybe").unwrap_err().contains("\"dash_nested\""));
        assert!(apply(&mut app, "dash on").unwrap_err().contains("duplicate"));
        assert!(!apply(&mut app, "hls on").unwrap());
    }
}
