//! The `hls*` directives: parsed per level, inherited main -> server -> application, and
//! resolved into an [`hls::Config`] with nginx-rtmp-module's defaults.

use super::invalid;
use super::value::{parse_flag, parse_msec, parse_num, parse_size};
use crate::hls::{self, Format, Naming, Slicing, Variant};

/// HLS settings written at one level; `None` (or empty) inherits from the outer level.
#[derive(Clone, Debug, Default)]
pub struct HlsSettings {
    pub hls: Option<bool>,
    pub path: Option<String>,
    pub format: Option<Format>,
    pub partial: Option<u64>,
    pub fragment: Option<u64>,
    pub max_fragment: Option<u64>,
    pub playlist_length: Option<u64>,
    pub muxdelay: Option<u64>,
    pub sync: Option<u64>,
    pub continuous: Option<bool>,
    pub nested: Option<bool>,
    pub naming: Option<Naming>,
    pub granularity: Option<u64>,
    pub slicing: Option<Slicing>,
    pub event: Option<bool>,
    pub max_audio_delay: Option<u64>,
    pub audio_buffer_size: Option<u64>,
    pub cleanup: Option<bool>,
    pub variants: Vec<Variant>,
    pub base_url: Option<String>,
    pub keys: Option<bool>,
    pub key_path: Option<String>,
    pub key_url: Option<String>,
    pub fragments_per_key: Option<u64>,
}

impl HlsSettings {
    /// Applies an `hls*` directive. `Ok(false)`: not one of them.
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
        let text = |s: &str| (!s.is_empty() && !s.contains('\0')).then(|| s.to_owned());
        match name {
            "hls" => set!(hls, parse_flag, flag),
            "hls_path" => set!(path, text, "it must be a directory"),
            "hls_fragment" => set!(fragment, positive, time),
            "hls_partial_duration" => set!(partial, |s: &str| parse_msec(s).filter(|t| (100..=5000).contains(t)), "it must be a time from 100ms to 5s"),
            "hls_format" => set!(
                format,
                |s: &str| match s {
                    "mpegts" => Some(Format::MpegTs),
                    "fmp4" => Some(Format::Fmp4),
                    _ => None,
                },
                "it must be \"mpegts\" or \"fmp4\""
            ),
            "hls_max_fragment" => set!(max_fragment, positive, time),
            "hls_playlist_length" => set!(playlist_length, positive, time),
            "hls_muxdelay" => set!(muxdelay, parse_msec, time),
            "hls_sync" => set!(sync, parse_msec, time),
            "hls_continuous" => set!(continuous, parse_flag, flag),
            "hls_nested" => set!(nested, parse_flag, flag),
            "hls_fragment_naming" => set!(
                naming,
                |s: &str| match s {
                    "sequential" => Some(Naming::Sequential),
                    "timestamp" => Some(Naming::Timestamp),
                    "system" => Some(Naming::System),
                    _ => None,
                },
                "it must be \"sequential\", \"timestamp\" or \"system\""
            ),
            "hls_fragment_naming_granularity" => set!(granularity, parse_num, "it must be a number"),
            "hls_fragment_slicing" => set!(
                slicing,
                |s: &str| match s {
                    "plain" => Some(Slicing::Plain),
                    "aligned" => Some(Slicing::Aligned),
                    _ => None,
                },
                "it must be \"plain\" or \"aligned\""
            ),
            "hls_type" => set!(
                event,
                |s: &str| match s {
                    "live" => Some(false),
                    "event" => Some(true),
                    _ => None,
                },
                "it must be \"live\" or \"event\""
            ),
            "hls_max_audio_delay" => set!(max_audio_delay, parse_msec, time),
            "hls_audio_buffer_size" => set!(
                audio_buffer_size,
                |s| parse_size(s).filter(|n| (1024..=16 << 20).contains(n)),
                "it must be a size from 1k to 16m"
            ),
            "hls_cleanup" => set!(cleanup, parse_flag, flag),
            "hls_base_url" => set!(base_url, |s: &str| (!s.contains(['\0', '\n', '"'])).then(|| s.to_owned()), "it must be a URL"),
            "hls_keys" => set!(keys, parse_flag, flag),
            "hls_key_path" => set!(key_path, text, "it must be a directory"),
            "hls_key_url" => set!(key_url, |s: &str| (!s.contains(['\0', '\n', '"'])).then(|| s.to_owned()), "it must be a URL"),
            "hls_fragments_per_key" => set!(fragments_per_key, parse_num, "it must be a number"),
            "hls_variant" => {
                let suffix = arg;
                if suffix.is_empty() || suffix.contains(['/', '\0', '\n']) {
                    return Err(invalid(name, suffix, "the suffix must be a part of a file name"));
                }
                if self.variants.iter().any(|v| v.suffix == suffix) {
                    return Err(format!("duplicate suffix \"{suffix}\" in \"hls_variant\" directive"));
                }
                let params: Vec<String> = args[1..].iter().map(|p| p.trim_end_matches(';').to_owned()).collect();
                if let Some(bad) = params.iter().find(|p| !p.contains('=') || p.contains(['\n', '\0'])) {
                    return Err(invalid(name, bad, "parameters are KEY=VALUE, such as BANDWIDTH=800000"));
                }
                self.variants.push(Variant { suffix: suffix.to_owned(), params });
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    pub fn inherit(&mut self, outer: &HlsSettings) {
        macro_rules! inherit {
            ($($f:ident),*) => { $( if self.$f.is_none() { self.$f = outer.$f.clone(); } )* };
        }
        inherit!(hls, path, format, partial, fragment, max_fragment, playlist_length, muxdelay, sync, continuous, nested, naming,
                 granularity, slicing, event, max_audio_delay, audio_buffer_size, cleanup, base_url, keys, key_path,
                 key_url, fragments_per_key);
        if self.variants.is_empty() {
            self.variants = outer.variants.clone();
        }
    }

    /// The resolved configuration when `hls` is on; relative paths are taken from `prefix`
    /// (nginx's prefix, as nginx resolves its own paths).
    pub fn resolve(&self, prefix: &str) -> Option<hls::Config> {
        if self.hls != Some(true) {
            return None;
        }
        let d = hls::Config::default();
        let full = |p: &str| super::value::full_path(prefix, p);
        let path = full(self.path.as_deref().unwrap_or(""));
        let fragment = self.fragment.unwrap_or(d.fragment);
        Some(hls::Config {
            key_path: self.key_path.as_deref().map_or_else(|| path.clone(), full),
            path,
            format: self.format.unwrap_or(d.format),
            partial: self.partial.unwrap_or(d.partial),
            fragment,
            max_fragment: self.max_fragment.unwrap_or(fragment * 10),
            playlist_length: self.playlist_length.unwrap_or(d.playlist_length),
            muxdelay: self.muxdelay.unwrap_or(d.muxdelay),
            sync: self.sync.unwrap_or(d.sync),
            continuous: self.continuous.unwrap_or(d.continuous),
            nested: self.nested.unwrap_or(d.nested),
            naming: self.naming.unwrap_or(d.naming),
            granularity: self.granularity.unwrap_or(d.granularity),
            slicing: self.slicing.unwrap_or(d.slicing),
            event: self.event.unwrap_or(d.event),
            max_audio_delay: self.max_audio_delay.unwrap_or(d.max_audio_delay),
            audio_buffer_size: self.audio_buffer_size.map_or(d.audio_buffer_size, |n| n as usize),
            cleanup: self.cleanup.unwrap_or(d.cleanup),
            variants: self.variants.clone(),
            base_url: self.base_url.clone().unwrap_or_default(),
            keys: self.keys.unwrap_or(d.keys),
            key_url: self.key_url.clone().unwrap_or_default(),
            fragments_per_key: self.fragments_per_key.unwrap_or(d.fragments_per_key),
            numbered_by_time: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(s: &mut HlsSettings, line: &str) -> Result<bool, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        s.apply(words[0], &words[1..])
    }

    #[test]
    fn defaults_and_overrides() {
        let mut main = HlsSettings::default();
        apply(&mut main, "hls_fragment 2s").unwrap();
        apply(&mut main, "hls_variant _hi BANDWIDTH=2000000 RESOLUTION=1280x720").unwrap();
        let mut app = HlsSettings::default();
        assert!(app.resolve("/p").is_none(), "off by default");
        apply(&mut app, "hls on").unwrap();
        apply(&mut app, "hls_path hls").unwrap();
        apply(&mut app, "hls_type event").unwrap();
        assert!(!apply(&mut app, "live on").unwrap(), "not an hls directive");
        app.inherit(&main);
        let c = app.resolve("/usr/local/nginx/").unwrap();
        assert_eq!(c.path, "/usr/local/nginx/hls");
        assert_eq!(c.key_path, c.path);
        assert_eq!((c.fragment, c.max_fragment, c.playlist_length, c.muxdelay, c.sync), (2000, 20_000, 30_000, 700, 2));
        assert!(c.event && c.continuous && c.cleanup && !c.nested && !c.keys);
        assert_eq!(c.variants[0].params, ["BANDWIDTH=2000000", "RESOLUTION=1280x720"]);
        assert_eq!(c.audio_buffer_size, 1 << 20);
    }

    #[test]
    fn bad_values_name_the_directive() {
        let mut s = HlsSettings::default();
        for (line, want) in [
            ("hls maybe", "\"hls\""),
            ("hls_fragment 0", "\"hls_fragment\""),
            ("hls_fragment_naming random", "\"hls_fragment_naming\""),
            ("hls_type vod", "\"hls_type\""),
            ("hls_audio_buffer_size 1g", "\"hls_audio_buffer_size\""),
            ("hls_variant a/b", "\"hls_variant\""),
            ("hls_variant _x BANDWIDTH", "\"hls_variant\""),
        ] {
            let e = apply(&mut s, line).unwrap_err();
            assert!(e.contains(want), "{line}: {e}");
        }
        apply(&mut s, "hls_path /a").unwrap();
        assert!(apply(&mut s, "hls_path /b").unwrap_err().contains("duplicate"));
    }
}
