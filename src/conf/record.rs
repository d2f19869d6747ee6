//! The `record*` directives: parsed per level (main, server, application, `recorder`
//! block), inherited outward-in, and resolved into [`record::Config`]s with
//! nginx-rtmp-module's defaults.

use super::invalid;
use super::value::{parse_flag, parse_msec, parse_num, parse_size};
use crate::record;

/// What `record` asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    pub audio: bool,
    pub video: bool,
    pub keyframes: bool,
    pub manual: bool,
}

impl Flags {
    pub fn any(&self) -> bool {
        self.audio || self.video || self.keyframes || self.manual
    }
}

#[derive(Clone, Debug, Default)]
pub struct RecordSettings {
    pub flags: Option<Flags>,
    pub path: Option<String>,
    suffix: Option<String>,
    unique: Option<bool>,
    append: Option<bool>,
    lock: Option<bool>,
    max_size: Option<u64>,
    max_frames: Option<u64>,
    interval: Option<u64>,
    notify: Option<bool>,
}

impl RecordSettings {
    /// Applies a `record*` directive. `Ok(false)`: not one of them.
    pub fn apply(&mut self, name: &str, args: &[&str]) -> Result<bool, String> {
        let arg = args.first().copied().unwrap_or("");
        let dup = || format!("\"{name}\" directive is duplicate");
        let flag = "it must be \"on\" or \"off\"";
        macro_rules! set {
            ($field:ident, $parse:expr, $why:expr) => {
                set_once!(self.$field, name, arg, $parse, $why)
            };
        }
        let text = |s: &str| (!s.is_empty() && !s.contains('\0')).then(|| s.to_owned());
        match name {
            "record" => {
                let mut f = Flags::default();
                let mut off = false;
                for a in args {
                    match *a {
                        "off" => off = true,
                        "all" => (f.audio, f.video) = (true, true),
                        "audio" => f.audio = true,
                        "video" => f.video = true,
                        "keyframes" => f.keyframes = true,
                        // Started and stopped through the control API.
                        "manual" => f.manual = true,
                        other => {
                            return Err(invalid(name, other, "it must be \"off\", \"all\", \"audio\", \"video\", \"keyframes\" or \"manual\""))
                        }
                    }
                }
                // `record manual` alone would record nothing (as in nginx-rtmp-module): it
                // means audio and video, as `record all manual` does.
                if f.manual && !f.audio && !f.video && !f.keyframes {
                    (f.audio, f.video) = (true, true);
                }
                if off && f.any() {
                    return Err(format!("\"off\" cannot be combined with other values in \"{name}\" directive"));
                }
                if self.flags.is_some() {
                    return Err(dup());
                }
                self.flags = Some(f);
            }
            "record_path" => set!(path, text, "it must be a directory"),
            // The suffix ends up in a file name: no path separators.
            "record_suffix" => set!(suffix, |s: &str| text(s).filter(|s| !s.contains('/')), "it must be a file name suffix without \"/\""),
            "record_unique" => set!(unique, parse_flag, flag),
            "record_append" => set!(append, parse_flag, flag),
            "record_lock" => set!(lock, parse_flag, flag),
            "record_notify" => set!(notify, parse_flag, flag),
            "record_max_size" => set!(max_size, parse_size, "it must be a size such as \"128K\" or \"1g\""),
            "record_max_frames" => set!(max_frames, parse_num, "it must be a number"),
            "record_interval" => set!(interval, parse_msec, "it must be a time such as \"30m\" or \"10s\""),
            _ => return Ok(false),
        }
        Ok(true)
    }

    pub fn inherit(&mut self, outer: &RecordSettings) {
        macro_rules! inherit {
            ($($f:ident),*) => { $( if self.$f.is_none() { self.$f.clone_from(&outer.$f); } )* };
        }
        inherit!(flags, path, suffix, unique, append, lock, max_size, max_frames, interval, notify);
    }

    /// Whether this level records anything.
    pub fn on(&self) -> bool {
        self.flags.is_some_and(|f| f.any())
    }

    /// The recorder `id` ("" for the application's own), if it records; a relative
    /// `record_path` is taken from `prefix`.
    pub fn resolve(&self, id: &str, prefix: &str) -> Option<record::Config> {
        let f = self.flags.filter(Flags::any)?;
        let path = self.path.as_deref()?;
        let path = if path.starts_with('/') { path.to_owned() } else { format!("{}/{path}", prefix.trim_end_matches('/')) };
        Some(record::Config {
            id: id.to_owned(),
            audio: f.audio,
            video: f.video,
            keyframes: f.keyframes,
            manual: f.manual,
            path,
            suffix: self.suffix.clone().unwrap_or_else(|| ".flv".into()),
            unique: self.unique.unwrap_or(false),
            append: self.append.unwrap_or(false),
            lock: self.lock.unwrap_or(false),
            max_size: self.max_size.unwrap_or(0),
            max_frames: self.max_frames.unwrap_or(0),
            // 0 is nginx-rtmp-module's "unset".
            interval: self.interval.filter(|&t| t > 0),
            notify: self.notify.unwrap_or(false),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_inherit_resolve() {
        let mut app = RecordSettings::default();
        app.apply("record", &["audio", "keyframes"]).unwrap();
        app.apply("record_path", &["rec"]).unwrap();
        app.apply("record_interval", &["30s"]).unwrap();
        let c = app.resolve("", "/usr/local/nginx/").unwrap();
        assert_eq!((c.audio, c.video, c.keyframes, c.path.as_str()), (true, false, true, "/usr/local/nginx/rec"));
        assert_eq!((c.suffix.as_str(), c.interval, c.unique, c.max_size), (".flv", Some(30_000), false, 0));
        let mut block = RecordSettings::default();
        block.apply("record", &["all"]).unwrap();
        block.apply("record_suffix", &["-%Y%m%d.flv"]).unwrap();
        block.inherit(&app);
        let c = block.resolve("hd", "/").unwrap();
        assert_eq!((c.id.as_str(), c.video, c.path.as_str(), c.interval), ("hd", true, "/rec", Some(30_000)));
        let mut off = RecordSettings::default();
        off.apply("record", &["off"]).unwrap();
        off.inherit(&app);
        assert!(off.resolve("", "/").is_none() && !off.on());
        let mut manual = RecordSettings::default();
        manual.apply("record", &["manual"]).unwrap();
        manual.apply("record_path", &["/r"]).unwrap();
        let c = manual.resolve("", "/").unwrap();
        assert!(c.manual && c.audio && c.video, "record manual alone records audio and video");
        let mut nopath = RecordSettings::default();
        nopath.apply("record", &["all"]).unwrap();
        assert!(nopath.on() && nopath.resolve("", "/").is_none());
    }

    #[test]
    fn errors() {
        let mut s = RecordSettings::default();
        for (name, args, want) in [
            ("record", &["sometimes"][..], "\"record\""),
            ("record", &["off", "all"][..], "cannot be combined"),
            ("record_suffix", &["a/b"][..], "\"record_suffix\""),
            ("record_max_size", &["big"][..], "\"record_max_size\""),
            ("record_interval", &["x"][..], "\"record_interval\""),
            ("record_unique", &["yes"][..], "\"record_unique\""),
        ] {
            let e = s.apply(name, args).unwrap_err();
            assert!(e.contains(want), "{name}: {e}");
        }
        s.apply("record", &["all"]).unwrap();
        assert!(s.apply("record", &["video"]).unwrap_err().contains("duplicate"));
    }
}
