//! The notify directives (`on_*`, `notify_*`) and the netcall settings, parsed per level
//! and inherited main -> server -> application, with nginx-rtmp-module's defaults.

use super::value::{parse_flag, parse_msec, parse_size};
use crate::notify::{Method, Url};

/// The callbacks, in the order of their URL slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Connect,
    Disconnect,
    Publish,
    Play,
    PublishDone,
    PlayDone,
    Done,
    RecordDone,
    Update,
}

const NAMES: [(&str, Event); 9] = [
    ("on_connect", Event::Connect),
    ("on_disconnect", Event::Disconnect),
    ("on_publish", Event::Publish),
    ("on_play", Event::Play),
    ("on_publish_done", Event::PublishDone),
    ("on_play_done", Event::PlayDone),
    ("on_done", Event::Done),
    ("on_record_done", Event::RecordDone),
    ("on_update", Event::Update),
];

/// Notify settings written at one level; `None` inherits from the outer level.
#[derive(Clone, Debug, Default)]
pub struct NotifySettings {
    urls: [Option<Box<Url>>; 9],
    method: Option<Method>,
    update_timeout: Option<u64>,
    update_strict: Option<bool>,
    relay_redirect: Option<bool>,
    netcall_timeout: Option<u64>,
    netcall_buffer: Option<u64>,
}

impl NotifySettings {
    /// Applies a notify or netcall directive. `Ok(false)`: not one of them.
    pub fn apply(&mut self, name: &str, args: &[&str]) -> Result<bool, String> {
        let arg = args.first().copied().unwrap_or("");
        let dup = || format!("\"{name}\" directive is duplicate");
        macro_rules! set {
            ($field:ident, $parse:expr, $why:expr) => {
                set_once!(self.$field, name, arg, $parse, $why)
            };
        }
        if let Some(&(_, event)) = NAMES.iter().find(|(n, _)| *n == name) {
            let url = Url::parse(arg).map_err(|e| format!("{e} in \"{name}\" URL \"{arg}\""))?;
            let slot = &mut self.urls[event as usize];
            if slot.is_some() {
                return Err(dup());
            }
            *slot = Some(Box::new(url));
            return Ok(true);
        }
        let time = "it must be a time such as \"30s\" or \"500ms\"";
        match name {
            "notify_method" => set!(
                method,
                |s: &str| match s.to_ascii_lowercase().as_str() {
                    "get" => Some(Method::Get),
                    "post" => Some(Method::Post),
                    _ => None,
                },
                "it must be \"get\" or \"post\""
            ),
            "notify_update_timeout" => set!(update_timeout, parse_msec, time),
            "notify_update_strict" => set!(update_strict, parse_flag, "it must be \"on\" or \"off\""),
            "notify_relay_redirect" => set!(relay_redirect, parse_flag, "it must be \"on\" or \"off\""),
            "netcall_timeout" => set!(netcall_timeout, |s| parse_msec(s).filter(|&t| t > 0), time),
            // The reply's status line and headers must fit; a little room for big cookies.
            "netcall_buffer" => set!(
                netcall_buffer,
                |s| parse_size(s).filter(|n| (128..=1 << 20).contains(n)),
                "it must be a size from 128 to 1m"
            ),
            _ => return Ok(false),
        }
        Ok(true)
    }

    pub fn inherit(&mut self, outer: &NotifySettings) {
        for (mine, theirs) in self.urls.iter_mut().zip(&outer.urls) {
            if mine.is_none() {
                mine.clone_from(theirs);
            }
        }
        macro_rules! inherit {
            ($($f:ident),*) => { $( if self.$f.is_none() { self.$f = outer.$f; } )* };
        }
        inherit!(method, update_timeout, update_strict, relay_redirect, netcall_timeout, netcall_buffer);
    }

    /// Each callback URL with the directive that set it.
    pub fn urls_mut(&mut self) -> impl Iterator<Item = (&'static str, &mut Url)> {
        self.urls.iter_mut().zip(NAMES).filter_map(|(u, (name, _))| Some((name, u.as_deref_mut()?)))
    }

    /// Whether any callback URL is `https://`.
    pub fn any_tls(&self) -> bool {
        self.urls.iter().flatten().any(|u| u.tls)
    }

    pub fn url(&self, event: Event) -> Option<&Url> {
        self.urls[event as usize].as_deref()
    }

    /// Whether any callback of a stream (publish, play, their ends, updates) is set.
    pub fn any_stream_callback(&self) -> bool {
        self.urls[Event::Publish as usize..].iter().any(Option::is_some)
    }

    pub fn method(&self) -> Method {
        self.method.unwrap_or(Method::Post)
    }

    /// Milliseconds between `on_update` calls (0: none).
    pub fn update_timeout(&self) -> u64 {
        self.update_timeout.unwrap_or(30_000)
    }

    pub fn update_strict(&self) -> bool {
        self.update_strict.unwrap_or(false)
    }

    pub fn relay_redirect(&self) -> bool {
        self.relay_redirect.unwrap_or(false)
    }

    /// Milliseconds a callback may take, from connecting to the end of the reply's headers.
    pub fn netcall_timeout(&self) -> u64 {
        self.netcall_timeout.unwrap_or(10_000)
    }

    /// The most a reply's status line and headers may take (at least 16k: nginx-rtmp-module
    /// reads replies of any size in `netcall_buffer` pieces, 1k by default).
    pub fn reply_limit(&self) -> usize {
        self.netcall_buffer.unwrap_or(1024).max(16 * 1024) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_inherit() {
        let mut main = NotifySettings::default();
        assert!(main.apply("on_publish", &["http://127.0.0.1:8080/pub"]).unwrap());
        assert!(main.apply("notify_method", &["GET"]).unwrap());
        assert!(main.apply("netcall_timeout", &["2s"]).unwrap());
        assert!(!main.apply("hls", &["on"]).unwrap());
        let mut app = NotifySettings::default();
        app.apply("on_play", &["127.0.0.1:8081/play"]).unwrap();
        app.apply("notify_update_timeout", &["5s"]).unwrap();
        app.inherit(&main);
        assert_eq!(app.url(Event::Publish).unwrap().path, "/pub");
        assert_eq!(app.url(Event::Play).unwrap().port, 8081);
        assert!(app.url(Event::Connect).is_none());
        assert_eq!((app.method(), app.netcall_timeout(), app.update_timeout()), (Method::Get, 2000, 5000));
        assert!(app.any_stream_callback());
        assert!(!NotifySettings::default().any_stream_callback());
        let d = NotifySettings::default();
        assert_eq!((d.method(), d.update_timeout(), d.update_strict(), d.netcall_timeout(), d.reply_limit()), (Method::Post, 30_000, false, 10_000, 16384));
    }

    #[test]
    fn errors_name_the_directive() {
        let mut s = NotifySettings::default();
        for (name, arg, want) in [
            ("on_publish", "ftp://127.0.0.1/x", "in \"on_publish\" URL"),
            ("on_play", "http://127.0.0.1:70000/", "invalid port"),
            ("notify_method", "put", "\"notify_method\""),
            ("netcall_timeout", "0", "\"netcall_timeout\""),
            ("netcall_buffer", "2g", "\"netcall_buffer\""),
            ("notify_update_strict", "yes", "\"notify_update_strict\""),
        ] {
            let e = s.apply(name, &[arg]).unwrap_err();
            assert!(e.contains(want), "{name} {arg}: {e}");
        }
        s.apply("on_done", &["127.0.0.1/done"]).unwrap();
        assert!(s.apply("on_done", &["127.0.0.1/done"]).unwrap_err().contains("duplicate"));
    }
}
