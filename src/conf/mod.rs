//! Configuration of the `rtmp {}` block as plain Rust data: parsing directive arguments,
//! checking them, and merging the main -> server -> application levels. No nginx types
//! here: the glue (`crate::glue`) feeds it the arguments nginx tokenised, and reads back
//! the resolved settings.

/// Sets a setting (an `Option`) from a directive's argument, once: a value `$parse`
/// rejects, or a second setting, is an error naming the directive.
macro_rules! set_once {
    ($slot:expr, $name:expr, $arg:expr, $parse:expr, $why:expr) => {{
        let v = $parse($arg).ok_or_else(|| $crate::conf::invalid($name, $arg, $why))?;
        if $slot.is_some() {
            return Err(format!("\"{}\" directive is duplicate", $name));
        }
        $slot = Some(v);
    }};
}

pub mod access;
pub mod dash;
pub mod directives;
pub mod exec;
pub mod hls;
pub mod http;
pub mod listen;
pub mod log;
pub mod notify;
pub mod record;
pub mod relay;
pub mod resolved;
pub mod transcode;
pub mod value;
pub mod whip;
pub mod workers;

use crate::record as record_cfg;
use access::Rule;
use directives::{Status, DIRECTIVES};
use listen::{Keepalive, Listen};
use value::{parse_flag, parse_msec, parse_num, parse_size};

/// Where a directive was written: the innermost block around it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pos {
    Main,
    Server(usize),
    App(usize, usize),
    /// `recorder NAME {}` number 2 in application 1 of server 0.
    Rec(usize, usize, usize),
}

/// Settings that may be written at several levels; `None` inherits from the outer level.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub timeout: Option<u64>,
    pub handshake_timeout: Option<u64>,
    pub ping: Option<u64>,
    pub ping_timeout: Option<u64>,
    pub so_keepalive: Option<bool>,
    pub max_streams: Option<u64>,
    pub chunk_size: Option<u64>,
    pub ack_window: Option<u64>,
    pub max_message: Option<u64>,
    pub out_queue: Option<u64>,
    pub out_cork: Option<u64>,
    pub buflen: Option<u64>,
    pub busy: Option<bool>,
    pub play_time_fix: Option<bool>,
    pub publish_time_fix: Option<bool>,
    /// `access_log` lines of this level (None: the outer level's).
    pub access_log: Option<log::AccessLog>,
    /// `allow`/`deny` rules; a level with none of its own inherits the outer level's.
    pub access: Vec<Rule>,
    // Live streaming (applications).
    pub live: Option<bool>,
    pub meta: Option<Meta>,
    pub wait_key: Option<bool>,
    pub wait_video: Option<bool>,
    pub publish_notify: Option<bool>,
    pub idle_streams: Option<bool>,
    pub play_restart: Option<bool>,
    pub interleave: Option<bool>,
    pub drop_idle_publisher: Option<u64>,
    pub sync: Option<u64>,
    pub buffer: Option<u64>,
    pub stream_buckets: Option<u64>,
    pub gop_cache: Option<bool>,
    pub merge_writes: Option<u64>,
    pub merge_reads: Option<MergeReads>,
    pub hls: hls::HlsSettings,
    pub dash: dash::DashSettings,
    pub notify: notify::NotifySettings,
    pub record: record::RecordSettings,
    pub exec: exec::ExecSettings,
    pub transcode: transcode::TranscodeSettings,
    pub relay: relay::RelaySettings,
    /// `resolver`: its arguments (nginx's own resolver is made from them by the glue).
    pub resolver: Option<Vec<String>>,
    /// `play` directories and `http[s]://` locations (VOD), in order.
    pub play: Option<Vec<String>>,
    /// `play_temp_path`, `play_local_path`.
    pub play_temp_path: Option<String>,
    pub play_local_path: Option<String>,
}

/// `meta on|copy|off`: what players get of the publisher's metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Meta {
    /// The well-known fields only (as nginx-rtmp-module rebuilds it).
    On,
    /// Exactly what the publisher sent.
    Copy,
    Off,
}

/// `merge_reads auto|off|TIME`: when a publisher's input is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeReads {
    /// In batches while no RTMP player of its stream waits for each frame (see
    /// `auto_merge_reads`); as it comes otherwise.
    Auto,
    /// Every so many milliseconds (0: as it comes, nginx-rtmp-module's way).
    Every(u64),
}

/// `merge_reads auto`: how often the input of a stream nobody plays over RTMP is read (at
/// most this far apart; see `auto_merge_reads`).
pub const AUTO_MERGE_READS: u64 = 500;

/// `merge_reads auto` for a stream nobody plays over RTMP: every `AUTO_MERGE_READS`, or a
/// quarter of its shortest HLS fragment if that is shorter, so that a playlist is late by
/// at most a quarter of a fragment (nginx-rtmp-module's default 5 s fragments, and 2 s
/// ones: 500 ms; 1 s fragments: 250 ms).
pub fn auto_merge_reads(hls_fragments_ms: impl Iterator<Item = u64>) -> u64 {
    hls_fragments_ms.map(|f| f / 4).min().unwrap_or(AUTO_MERGE_READS).clamp(1, AUTO_MERGE_READS)
}

/// Live settings of an application, resolved with nginx-rtmp-module's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Live {
    /// `live`: players may watch what is published (off by default, as nginx-rtmp-module).
    pub enabled: bool,
    pub meta: Meta,
    pub wait_key: bool,
    pub wait_video: bool,
    pub publish_notify: bool,
    pub idle_streams: bool,
    pub play_restart: bool,
    pub interleave: bool,
    /// Milliseconds without audio/video after which a publisher is dropped (0: never).
    pub drop_idle_publisher: u64,
    pub sync: u64,
    pub buffer: u64,
    pub gop_cache: bool,
    /// Milliseconds a player's output may wait to be written in one go (0: at once).
    pub merge_writes: u64,
    /// How long a publisher's input may wait in the socket to be read in one go.
    pub merge_reads: MergeReads,
    /// `play_time_fix`: type 3 chunks to players repeat an extended timestamp.
    pub play_time_fix: bool,
    /// `publish_time_fix`: type 3 chunks from publishers repeat an extended timestamp.
    pub publish_time_fix: bool,
}

impl Settings {
    fn inherit(&mut self, outer: &Settings) {
        macro_rules! inherit {
            ($($f:ident),*) => { $( if self.$f.is_none() { self.$f = outer.$f; } )* };
        }
        inherit!(timeout, handshake_timeout, ping, ping_timeout, so_keepalive, max_streams, chunk_size, ack_window,
                 max_message, out_queue, out_cork, buflen, busy, play_time_fix, publish_time_fix, live, meta, wait_key, wait_video,
                 publish_notify, idle_streams, play_restart, interleave, drop_idle_publisher, sync,
                 buffer, stream_buckets, gop_cache, merge_writes, merge_reads);
        if self.access.is_empty() {
            self.access = outer.access.clone();
        }
        if self.access_log.is_none() {
            self.access_log.clone_from(&outer.access_log);
        }
        self.hls.inherit(&outer.hls);
        self.dash.inherit(&outer.dash);
        self.notify.inherit(&outer.notify);
        self.record.inherit(&outer.record);
        self.exec.inherit(&outer.exec);
        self.transcode.inherit(&outer.transcode);
        self.relay.inherit(&outer.relay);
        if self.resolver.is_none() {
            self.resolver.clone_from(&outer.resolver);
        }
        if self.play.is_none() {
            self.play.clone_from(&outer.play);
        }
        if self.play_temp_path.is_none() {
            self.play_temp_path.clone_from(&outer.play_temp_path);
        }
        if self.play_local_path.is_none() {
            self.play_local_path.clone_from(&outer.play_local_path);
        }
    }
}

/// The resolved core settings of a server, with nginx-rtmp-module's defaults applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Core {
    /// Milliseconds without data from a client before it is closed.
    pub timeout: u64,
    /// Milliseconds from accept within which the handshake and `connect` must be done
    /// (whatever trickles in meanwhile: `timeout` restarts with every byte).
    pub handshake_timeout: u64,
    /// Milliseconds between pings (0: off) and to wait for a ping's answer.
    pub ping: u64,
    pub ping_timeout: u64,
    pub so_keepalive: bool,
    pub max_streams: u64,
    pub chunk_size: u64,
    pub ack_window: u64,
    pub max_message: u64,
    pub out_queue: u64,
    pub out_cork: u64,
    pub buflen: u64,
    /// `busy`: close a client that sent and received nothing between two pings.
    pub busy: bool,
    /// `publish_time_fix`: type 3 chunks of a message with an extended timestamp repeat it
    /// (until the client connects to an application, whose setting then counts).
    pub publish_time_fix: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Application {
    pub name: String,
    pub settings: Settings,
    /// `recorder NAME {}` blocks, in order.
    pub recorders: Vec<Recorder>,
}

#[derive(Clone, Debug, Default)]
pub struct Recorder {
    pub name: String,
    /// Its own settings (after `resolve`, with the application's merged in).
    pub settings: Settings,
}

impl Application {
    /// The application's live settings (after `resolve`, with every level merged in).
    pub fn live(&self) -> Live {
        let s = &self.settings;
        Live {
            enabled: s.live.unwrap_or(false),
            meta: s.meta.unwrap_or(Meta::On),
            wait_key: s.wait_key.unwrap_or(false),
            wait_video: s.wait_video.unwrap_or(false),
            publish_notify: s.publish_notify.unwrap_or(false),
            idle_streams: s.idle_streams.unwrap_or(true),
            play_restart: s.play_restart.unwrap_or(false),
            interleave: s.interleave.unwrap_or(false),
            drop_idle_publisher: s.drop_idle_publisher.unwrap_or(0),
            sync: s.sync.unwrap_or(300),
            buffer: s.buffer.unwrap_or(0),
            gop_cache: s.gop_cache.unwrap_or(true),
            merge_writes: s.merge_writes.unwrap_or(0),
            merge_reads: s.merge_reads.unwrap_or(MergeReads::Auto),
            play_time_fix: s.play_time_fix.unwrap_or(true),
            publish_time_fix: s.publish_time_fix.unwrap_or(true),
        }
    }

    /// The recorders that record (the `recorder` blocks, then the application's own, as
    /// nginx-rtmp-module orders them), with the settings each calls `on_record_done` by.
    pub fn recorders(&self, prefix: &str) -> Vec<(record_cfg::Config, &Settings)> {
        let blocks = self.recorders.iter().map(|r| (r.name.as_str(), &r.settings));
        blocks
            .chain(std::iter::once(("", &self.settings)))
            .filter_map(|(id, s)| Some((s.record.resolve(id, prefix)?, s)))
            .collect()
    }

    /// The application's HLS settings when `hls` is on; relative paths from `prefix`.
    pub fn hls(&self, prefix: &str) -> Option<crate::hls::Config> {
        self.settings.hls.resolve(prefix)
    }

    /// The application's DASH settings when `dash` is on; a relative path from `prefix`.
    pub fn dash(&self, prefix: &str) -> Option<crate::dash::Config> {
        self.settings.dash.resolve(prefix)
    }

    /// The `play` sources (relative directories taken from `prefix`), and where files
    /// fetched over HTTP go while played and once complete.
    pub fn play(&self, prefix: &str) -> resolved::Play {
        let full = |p: &str| value::full_path(prefix, p);
        let sources = self
            .settings
            .play
            .iter()
            .flatten()
            .map(|p| match p.contains("://").then(|| crate::notify::Url::parse(p).ok()).flatten() {
                Some(mut url) => {
                    // (A name is resolved now if it can be, as nginx does; else through
                    // the server's `resolver` when a file is fetched.)
                    let _ = url.resolve_now();
                    resolved::PlaySource::Http(url)
                }
                None => resolved::PlaySource::Dir(full(p)),
            })
            .collect();
        resolved::Play {
            sources,
            temp_path: full(self.settings.play_temp_path.as_deref().unwrap_or("/tmp")),
            local_path: self.settings.play_local_path.as_deref().map(full),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Server {
    pub settings: Settings,
    pub listens: Vec<Listen>,
    pub apps: Vec<Application>,
}

/// The whole `rtmp {}` block.
#[derive(Clone, Debug, Default)]
pub struct Rtmp {
    pub main: Settings,
    pub servers: Vec<Server>,
    /// `max_connections`: one value for the whole module, wherever it is written.
    pub max_connections: Option<u64>,
    /// `drain_timeout`: how long live publishers may go on once nginx quits (ms; `off`:
    /// for as long as they publish). Unset: [`DRAIN_TIMEOUT`].
    pub drain_timeout: Option<Option<u64>>,
    /// `log_format`s (`combined` first): one set for the whole block, as nginx-rtmp-module.
    pub log_formats: log::Formats,
}

/// `handshake_timeout`'s default: a client on any real link is done in well under a second
/// (three round trips and a `connect`); a connection that trickles a byte at a time (or
/// sends nothing) holds a slot and memory until then. nginx-rtmp-module has no such
/// deadline (its `timeout` restarts with every byte).
pub const HANDSHAKE_TIMEOUT: u64 = 10_000;

/// `drain_timeout`'s default: well under Docker's 10 s grace period for `docker stop`.
pub const DRAIN_TIMEOUT: u64 = 5000;

impl Rtmp {
    /// How long live publishers may go on once nginx quits (None: until they leave).
    pub fn drain_timeout(&self) -> Option<u64> {
        self.drain_timeout.unwrap_or(Some(DRAIN_TIMEOUT))
    }
}

/// A server ready to run: resolved settings, its listens and applications.
#[derive(Clone, Debug)]
pub struct ResolvedServer {
    pub core: Core,
    pub listens: Vec<Listen>,
    pub apps: Vec<Application>,
    pub max_connections: Option<u64>,
    /// The server's notify settings (`on_connect`, `on_disconnect`, netcall settings).
    pub notify: notify::NotifySettings,
    /// Whether the server has a `resolver` (its own or the `rtmp {}` block's).
    pub resolver: bool,
    /// `relay_ssl_verify` of the server: `https://` callbacks of no application check
    /// the server's certificate.
    pub ssl_verify: bool,
    /// The server's `access_log` (its own or the `rtmp {}` block's; None: the default),
    /// for clients that never reach an application.
    pub access_log: Option<log::AccessLog>,
}

pub(crate) fn invalid(name: &str, value: &str, why: &str) -> String {
    format!("invalid value \"{value}\" in \"{name}\" directive, {why}")
}

impl Rtmp {
    /// Opens a `server {}` block; returns its position.
    pub fn open_server(&mut self) -> Pos {
        self.servers.push(Server::default());
        Pos::Server(self.servers.len() - 1)
    }

    /// Opens an `application NAME {}` block inside a server.
    pub fn open_application(&mut self, pos: Pos, name: &str) -> Result<Pos, String> {
        let Pos::Server(s) = pos else { return Err("\"application\" directive is not allowed here".into()) };
        let server = &mut self.servers[s];
        if server.apps.iter().any(|a| a.name == name) {
            return Err(format!("duplicate application \"{name}\""));
        }
        if name.is_empty() || name.contains(['/', '\0']) {
            return Err(format!("invalid application name \"{name}\""));
        }
        server.apps.push(Application { name: name.to_owned(), ..Application::default() });
        Ok(Pos::App(s, server.apps.len() - 1))
    }

    /// Opens a `recorder NAME {}` block inside an application.
    pub fn open_recorder(&mut self, pos: Pos, name: &str) -> Result<Pos, String> {
        let Pos::App(s, a) = pos else { return Err("\"recorder\" directive is not allowed here".into()) };
        let app = &mut self.servers[s].apps[a];
        if app.recorders.iter().any(|r| r.name == name) {
            return Err(format!("duplicate recorder \"{name}\""));
        }
        if name.is_empty() || name.contains(['/', '\0']) {
            return Err(format!("invalid recorder name \"{name}\""));
        }
        app.recorders.push(Recorder { name: name.to_owned(), settings: Settings::default() });
        Ok(Pos::Rec(s, a, app.recorders.len() - 1))
    }

    fn settings_mut(&mut self, pos: Pos) -> &mut Settings {
        match pos {
            Pos::Main => &mut self.main,
            Pos::Server(s) => &mut self.servers[s].settings,
            Pos::App(s, a) => &mut self.servers[s].apps[a].settings,
            Pos::Rec(s, a, r) => &mut self.servers[s].apps[a].recorders[r].settings,
        }
    }

    /// Applies one directive (by its index in [`DIRECTIVES`]) written at `pos` with `args`.
    /// The error is the whole message nginx should print (it adds " in FILE:LINE").
    pub fn apply(&mut self, pos: Pos, index: usize, args: &[&str]) -> Result<(), String> {
        let d = &DIRECTIVES[index];
        let name = d.name;
        if let Status::NotYet(feature) = d.status {
            return Err(format!(
                "\"{name}\" directive is not supported yet by ngx-rtmp-rs ({feature} is not implemented)"
            ));
        }
        if name.starts_with("hls") && self.settings_mut(pos).hls.apply(name, args)? {
            return Ok(());
        }
        if name.starts_with("dash") && self.settings_mut(pos).dash.apply(name, args)? {
            return Ok(());
        }
        if self.settings_mut(pos).notify.apply(name, args)? {
            return Ok(());
        }
        if name.starts_with("record") && self.settings_mut(pos).record.apply(name, args)? {
            return Ok(());
        }
        if (name.starts_with("exec") || name.starts_with("respawn")) && self.settings_mut(pos).exec.apply(name, args)? {
            return Ok(());
        }
        if name.starts_with("transcode") && self.settings_mut(pos).transcode.apply(name, args)? {
            return Ok(());
        }
        if self.settings_mut(pos).relay.apply(name, args)? {
            return Ok(());
        }
        let arg = args.first().copied().unwrap_or("");
        let dup = || format!("\"{name}\" directive is duplicate");
        macro_rules! set {
            ($field:ident, $parse:expr, $why:expr) => {
                set_once!(self.settings_mut(pos).$field, name, arg, $parse, $why)
            };
        }
        let time = "it must be a time such as \"30s\" or \"500ms\"";
        let range = |lo: u64, hi: u64| move |s: &str| parse_num(s).filter(|n| (lo..=hi).contains(n));
        let size_range = |lo: u64, hi: u64| move |s: &str| parse_size(s).filter(|n| (lo..=hi).contains(n));
        match name {
            "timeout" => set!(timeout, |s| parse_msec(s).filter(|&t| t > 0), time),
            "handshake_timeout" => set!(handshake_timeout, |s| parse_msec(s).filter(|&t| t > 0), time),
            "ping" => set!(ping, parse_msec, time),
            "ping_timeout" => set!(ping_timeout, |s| parse_msec(s).filter(|&t| t > 0), time),
            "buflen" => set!(buflen, parse_msec, time),
            "so_keepalive" => set!(so_keepalive, parse_flag, "it must be \"on\" or \"off\""),
            "max_streams" => set!(max_streams, range(1, 65536), "it must be a number from 1 to 65536"),
            // RTMP chunk sizes are 31-bit; below 128 (the protocol's default) is never useful.
            "chunk_size" => set!(chunk_size, range(128, 0x7fff_ffff), "it must be a number from 128 to 2147483647"),
            "ack_window" => set!(ack_window, range(1, u32::MAX as u64), "it must be a number from 1 to 4294967295"),
            // The RTMP message length field is 24 bits.
            "max_message" => set!(max_message, size_range(1, 0xff_ffff), "it must be a size from 1 to 16m - 1"),
            "out_queue" => set!(out_queue, size_range(1, 1 << 20), "it must be a number from 1 to 1m"),
            "out_cork" => set!(out_cork, size_range(1, 1 << 20), "it must be a number from 1 to 1m"),
            "busy" => set!(busy, parse_flag, "it must be \"on\" or \"off\""),
            "play_time_fix" => set!(play_time_fix, parse_flag, "it must be \"on\" or \"off\""),
            "publish_time_fix" => set!(publish_time_fix, parse_flag, "it must be \"on\" or \"off\""),
            "access_log" => log::apply(&mut self.settings_mut(pos).access_log, args)?,
            "log_format" => self.log_formats.add(args)?,
            "live" => set!(live, parse_flag, "it must be \"on\" or \"off\""),
            "meta" => set!(
                meta,
                |s: &str| match s {
                    "on" => Some(Meta::On),
                    "copy" => Some(Meta::Copy),
                    "off" => Some(Meta::Off),
                    _ => None,
                },
                "it must be \"on\", \"copy\" or \"off\""
            ),
            "wait_key" => set!(wait_key, parse_flag, "it must be \"on\" or \"off\""),
            "wait_video" => set!(wait_video, parse_flag, "it must be \"on\" or \"off\""),
            "publish_notify" => set!(publish_notify, parse_flag, "it must be \"on\" or \"off\""),
            "idle_streams" => set!(idle_streams, parse_flag, "it must be \"on\" or \"off\""),
            "play_restart" => set!(play_restart, parse_flag, "it must be \"on\" or \"off\""),
            "interleave" => set!(interleave, parse_flag, "it must be \"on\" or \"off\""),
            "gop_cache" => set!(gop_cache, parse_flag, "it must be \"on\" or \"off\""),
            "drop_idle_publisher" => set!(drop_idle_publisher, parse_msec, time),
            "sync" => set!(sync, parse_msec, time),
            "buffer" => set!(buffer, parse_msec, time),
            // At most a second: the point is a short wait that saves system calls.
            "merge_writes" => set!(merge_writes, |s| parse_msec(s).filter(|&t| t <= 1000), "it must be a time from 0 to 1s"),
            "merge_reads" => set!(
                merge_reads,
                |s| match s {
                    "auto" => Some(MergeReads::Auto),
                    "off" => Some(MergeReads::Every(0)),
                    _ => parse_msec(s).filter(|&t| t <= 1000).map(MergeReads::Every),
                },
                "it must be \"auto\", \"off\" or a time from 0 to 1s"
            ),
            // Streams live in a hash map that grows as needed; the size hint is accepted.
            "stream_buckets" => set!(stream_buckets, range(1, 1 << 20), "it must be a number from 1 to 1048576"),
            "max_connections" => {
                let v = range(1, u32::MAX as u64)(arg)
                    .ok_or_else(|| invalid(name, arg, "it must be a number from 1 to 4294967295"))?;
                if self.max_connections.is_some() {
                    return Err(dup());
                }
                self.max_connections = Some(v);
            }
            "drain_timeout" => {
                let v = match arg {
                    "off" => None,
                    _ => Some(parse_msec(arg).ok_or_else(|| invalid(name, arg, "it must be a time or \"off\""))?),
                };
                if self.drain_timeout.is_some() {
                    return Err(dup());
                }
                self.drain_timeout = Some(v);
            }
            "resolver" => {
                let s = self.settings_mut(pos);
                if s.resolver.is_some() {
                    return Err(dup());
                }
                // nginx parses the rest (addresses) and says which one is wrong.
                for a in args {
                    let ok = match a.split_once('=') {
                        Some(("valid", v)) => parse_msec(v).is_some_and(|t| t >= 1000),
                        Some(("ipv4" | "ipv6", v)) => parse_flag(v).is_some(),
                        Some(_) => false,
                        None => !a.is_empty(),
                    };
                    if !ok {
                        return Err(invalid(name, a, "expected addresses, \"valid=TIME\" (at least 1s), \"ipv4=on|off\", \"ipv6=on|off\""));
                    }
                }
                s.resolver = Some(args.iter().map(|a| a.to_string()).collect());
            }
            "play" => {
                let s = self.settings_mut(pos);
                if s.play.is_some() {
                    return Err(dup());
                }
                for a in args {
                    if a.contains("://") {
                        let u = crate::notify::Url::parse(a).map_err(|e| invalid(name, a, &e))?;
                        if u.path.contains('?') {
                            return Err(invalid(name, a, "a location to play from has no query"));
                        }
                    }
                }
                s.play = Some(args.iter().map(|a| a.trim_end_matches('/').to_owned()).filter(|a| !a.is_empty()).collect());
            }
            "play_temp_path" | "play_local_path" => {
                let s = self.settings_mut(pos);
                let slot = if name == "play_temp_path" { &mut s.play_temp_path } else { &mut s.play_local_path };
                if slot.is_some() {
                    return Err(dup());
                }
                *slot = Some(arg.trim_end_matches('/').to_owned());
            }
            "allow" | "deny" => {
                let rule = Rule::parse(name == "allow", args).map_err(|e| format!("{e} in \"{name}\" directive"))?;
                self.settings_mut(pos).access.push(rule);
            }
            "listen" => {
                let Pos::Server(s) = pos else { unreachable!("listen outside server") };
                let new = listen::parse(args).map_err(|e| format!("{e} of the \"listen\" directive"))?;
                for l in &new {
                    for (i, server) in self.servers.iter().enumerate() {
                        if let Some(old) = server.listens.iter().find(|o| o.conflicts_with(l)) {
                            let what = if old.addr == l.addr { "duplicate" } else { "conflicting" };
                            let other = if i == s { String::new() } else { format!(" (in server #{})", i + 1) };
                            return Err(format!(
                                "{what} \"listen {}\": {} is already listened on{other}",
                                args[0], old.addr
                            ));
                        }
                    }
                }
                self.servers[s].listens.extend(new);
            }
            other => unreachable!("directive {other} has no parser"),
        }
        Ok(())
    }

    /// Every level's own settings as written: the `rtmp {}` block's, then each server's
    /// and its applications' (recorders not included).
    pub fn levels(&self) -> impl Iterator<Item = &Settings> {
        std::iter::once(&self.main)
            .chain(self.servers.iter().flat_map(|s| std::iter::once(&s.settings).chain(s.apps.iter().map(|a| &a.settings))))
    }

    /// Checks that every `access_log` names a format `log_format` defined (anywhere in the
    /// block: unlike nginx-rtmp-module, a format may come after the log that uses it).
    pub fn check_access_logs(&self) -> Result<(), String> {
        for s in self.levels() {
            if let Some(log::AccessLog::To(v)) = &s.access_log {
                if let Some((path, f)) = v.iter().find(|(_, f)| self.log_formats.index_of(f).is_none()) {
                    return Err(format!("unknown log format \"{f}\" in \"access_log {path} {f}\" (define it with \"log_format\")"));
                }
            }
        }
        Ok(())
    }

    /// Checks what only the merged settings can tell (`hls on` needs an `hls_path`), and
    /// resolves the host names of callback URLs where no `resolver` will at run time.
    pub fn check(servers: &mut [ResolvedServer]) -> Result<(), String> {
        for app in servers.iter().flat_map(|s| &s.apps) {
            app.settings.dash.check(&app.name)?;
            let h = &app.settings.hls;
            if h.hls == Some(true) && h.path.is_none() {
                return Err(format!("\"hls\" is on in application \"{}\" but \"hls_path\" is not set", app.name));
            }
            if h.hls == Some(true) && h.partial.is_some() && h.format != Some(crate::hls::Format::Fmp4) {
                return Err(format!("\"hls_partial_duration\" is set in application \"{}\" without \"hls_format fmp4\": low-latency parts are fMP4", app.name));
            }
            if let (Some(true), Some(p)) = (h.hls, h.partial) {
                let fragment = h.fragment.unwrap_or(crate::hls::Config::default().fragment);
                if p * 2 > fragment {
                    return Err(format!("\"hls_partial_duration\" in application \"{}\" must be at most half of \"hls_fragment\" ({fragment} ms)", app.name));
                }
            }
            if h.hls == Some(true) && h.keys == Some(true) && h.format == Some(crate::hls::Format::Fmp4) {
                return Err(format!(
                    "\"hls_keys\" is on in application \"{}\" with \"hls_format fmp4\": fMP4 segments are not encrypted (SAMPLE-AES is not supported); use \"hls_format mpegts\"",
                    app.name
                ));
            }
            let recorders = app.recorders.iter().map(|r| (format!("recorder \"{}\" of application", r.name), &r.settings));
            for (what, s) in std::iter::once(("application".to_owned(), &app.settings)).chain(recorders) {
                if s.record.on() && s.record.path.is_none() {
                    return Err(format!("\"record\" is on in {what} \"{}\" but \"record_path\" is not set", app.name));
                }
            }
        }
        // (Where a worker looks: the default path, and a `PATH` kept by `env PATH;`.)
        let path = match std::env::var("PATH") {
            Ok(p) if !p.is_empty() => format!("{}:{p}", crate::exec::DEFAULT_PATH),
            _ => crate::exec::DEFAULT_PATH.to_owned(),
        };
        for app in servers.iter().flat_map(|s| &s.apps) {
            let recorders = app.recorders.iter().flat_map(|r| r.settings.exec.all());
            exec::check_programs(app.settings.exec.all().chain(recorders), &path)?;
            let t = &app.settings.transcode;
            if !t.renditions().is_empty() && crate::exec::find_program(t.ffmpeg(), &path).is_none() {
                return Err(format!(
                    "transcode: program \"{}\" not found or not executable (searched {path}; set \"transcode_ffmpeg\")",
                    t.ffmpeg()
                ));
            }
        }
        let mut known = std::collections::HashMap::new();
        for server in servers.iter_mut().filter(|s| !s.resolver) {
            for app in server.apps.iter_mut() {
                for (directive, t) in app.settings.relay.targets_mut() {
                    t.resolve_now().map_err(|e| {
                        format!("{e} in \"{directive}\" URL \"{}\" (give the server a \"resolver\" to resolve it at each connection)", t.url)
                    })?;
                }
            }
            let apps = server.apps.iter_mut().flat_map(|a| {
                std::iter::once(&mut a.settings.notify).chain(a.recorders.iter_mut().map(|r| &mut r.settings.notify))
            });
            for (directive, url) in std::iter::once(&mut server.notify).chain(apps).flat_map(|n| n.urls_mut()) {
                if url.addr.is_none() {
                    let key = (url.host.clone(), url.port);
                    if let Some(addr) = known.get(&key) {
                        url.addr = Some(*addr);
                        continue;
                    }
                    url.resolve_now().map_err(|e| {
                        format!("{e} in \"{directive}\" URL \"{}\" (give the server a \"resolver\" to resolve it when called)", url.text)
                    })?;
                    known.insert(key, url.addr.expect("resolved"));
                }
            }
        }
        Ok(())
    }

    /// Merges every level into ready-to-run servers.
    pub fn resolve(&self) -> Vec<ResolvedServer> {
        self.servers
            .iter()
            .map(|server| {
                let mut s = server.settings.clone();
                s.inherit(&self.main);
                let out_queue = s.out_queue.unwrap_or(256);
                let core = Core {
                    timeout: s.timeout.unwrap_or(60_000),
                    handshake_timeout: s.handshake_timeout.unwrap_or(HANDSHAKE_TIMEOUT),
                    ping: s.ping.unwrap_or(60_000),
                    ping_timeout: s.ping_timeout.unwrap_or(30_000),
                    so_keepalive: s.so_keepalive.unwrap_or(false),
                    max_streams: s.max_streams.unwrap_or(32),
                    chunk_size: s.chunk_size.unwrap_or(4096),
                    ack_window: s.ack_window.unwrap_or(5_000_000),
                    max_message: s.max_message.unwrap_or(1024 * 1024),
                    out_queue,
                    out_cork: s.out_cork.unwrap_or(out_queue / 8),
                    buflen: s.buflen.unwrap_or(1000),
                    busy: s.busy.unwrap_or(false),
                    publish_time_fix: s.publish_time_fix.unwrap_or(true),
                };
                let listens = server
                    .listens
                    .iter()
                    .map(|l| Listen {
                        // The deprecated `so_keepalive` directive applies where `listen` has no
                        // so_keepalive= of its own.
                        so_keepalive: l.so_keepalive.or(core.so_keepalive.then_some(Keepalive::On)),
                        ..l.clone()
                    })
                    .collect();
                let apps = server
                    .apps
                    .iter()
                    .map(|a| {
                        let mut app = a.clone();
                        app.settings.inherit(&s);
                        for r in &mut app.recorders {
                            r.settings.inherit(&app.settings);
                        }
                        app
                    })
                    .collect();
                ResolvedServer {
                    core,
                    listens,
                    apps,
                    max_connections: self.max_connections,
                    notify: s.notify.clone(),
                    resolver: s.resolver.is_some(),
                    ssl_verify: s.relay.ssl_verify.unwrap_or(true),
                    access_log: s.access_log.clone(),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::directives::index_of;
    use super::*;

    fn apply(r: &mut Rtmp, pos: Pos, line: &str) -> Result<(), String> {
        let mut words = line.split_whitespace();
        let name = words.next().unwrap();
        let args: Vec<&str> = words.collect();
        r.apply(pos, index_of(name).unwrap(), &args)
    }

    #[test]
    fn defaults_match_nginx_rtmp_module() {
        let mut r = Rtmp::default();
        r.open_server();
        let s = &r.resolve()[0];
        assert_eq!(
            s.core,
            Core {
                timeout: 60_000,
                handshake_timeout: 10_000,
                ping: 60_000,
                ping_timeout: 30_000,
                so_keepalive: false,
                max_streams: 32,
                chunk_size: 4096,
                ack_window: 5_000_000,
                max_message: 1 << 20,
                out_queue: 256,
                out_cork: 32,
                buflen: 1000,
                busy: false,
                publish_time_fix: true,
            }
        );
        assert_eq!(s.max_connections, None);
        let mut r = Rtmp::default();
        let s = r.open_server();
        r.open_application(s, "a").unwrap();
        let live = r.resolve()[0].apps[0].live();
        assert_eq!(
            live,
            Live {
                enabled: false,
                meta: Meta::On,
                wait_key: false,
                wait_video: false,
                publish_notify: false,
                idle_streams: true,
                play_restart: false,
                interleave: false,
                drop_idle_publisher: 0,
                sync: 300,
                buffer: 0,
                gop_cache: true,
                merge_writes: 0,
                merge_reads: MergeReads::Auto,
                play_time_fix: true,
                publish_time_fix: true,
            }
        );
    }

    #[test]
    fn live_directives() {
        let mut r = Rtmp::default();
        apply(&mut r, Pos::Main, "live on").unwrap();
        apply(&mut r, Pos::Main, "meta copy").unwrap();
        let s = r.open_server();
        apply(&mut r, s, "drop_idle_publisher 10s").unwrap();
        let a = r.open_application(s, "a").unwrap();
        apply(&mut r, a, "idle_streams off").unwrap();
        apply(&mut r, a, "merge_writes 100ms").unwrap();
        apply(&mut r, a, "stream_buckets 1024").unwrap();
        let live = r.resolve()[0].apps[0].live();
        assert!(live.enabled && !live.idle_streams);
        assert_eq!((live.meta, live.drop_idle_publisher, live.merge_writes), (Meta::Copy, 10_000, 100));
        assert_eq!(live.merge_reads, MergeReads::Auto, "merge_reads is auto by default");
        // auto: 500 ms, or a quarter of the shortest HLS fragment.
        assert_eq!(auto_merge_reads([].into_iter()), 500);
        assert_eq!(auto_merge_reads([5000, 2000].into_iter()), 500);
        assert_eq!(auto_merge_reads([2000, 1000].into_iter()), 250);
        assert_eq!(auto_merge_reads([0].into_iter()), 1);
        for (arg, want) in [("off", MergeReads::Every(0)), ("0", MergeReads::Every(0)), ("250ms", MergeReads::Every(250)), ("auto", MergeReads::Auto)] {
            let mut r = Rtmp::default();
            let s = r.open_server();
            let a = r.open_application(s, "a").unwrap();
            apply(&mut r, a, &format!("merge_reads {arg}")).unwrap();
            assert_eq!(r.resolve()[0].apps[0].live().merge_reads, want, "merge_reads {arg}");
        }
        for bad in ["meta yes", "merge_writes 2s", "merge_reads 2s", "merge_reads sometimes", "sync x", "stream_buckets 0", "live maybe"] {
            assert!(apply(&mut r, a, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn drain_timeout() {
        let mut r = Rtmp::default();
        assert_eq!(r.drain_timeout(), Some(DRAIN_TIMEOUT), "5 s by default");
        apply(&mut r, Pos::Main, "drain_timeout 2s").unwrap();
        assert_eq!(r.drain_timeout(), Some(2000));
        assert!(apply(&mut r, Pos::Main, "drain_timeout 3s").unwrap_err().contains("\"drain_timeout\" directive is duplicate"));
        let mut r = Rtmp::default();
        apply(&mut r, Pos::Main, "drain_timeout off").unwrap();
        assert_eq!(r.drain_timeout(), None, "off: publishers go on until they leave");
        let e = apply(&mut Rtmp::default(), Pos::Main, "drain_timeout soon").unwrap_err();
        assert!(e.contains("invalid value \"soon\" in \"drain_timeout\" directive"), "{e}");
    }

    #[test]
    fn inner_levels_inherit_and_override() {
        let mut r = Rtmp::default();
        apply(&mut r, Pos::Main, "chunk_size 8192").unwrap();
        apply(&mut r, Pos::Main, "timeout 10s").unwrap();
        apply(&mut r, Pos::Main, "deny play all").unwrap();
        let s0 = r.open_server();
        apply(&mut r, s0, "timeout 500ms").unwrap();
        apply(&mut r, s0, "out_queue 64").unwrap();
        let a0 = r.open_application(s0, "live").unwrap();
        apply(&mut r, a0, "allow play 127.0.0.1").unwrap();
        r.open_application(s0, "vod").unwrap();
        let s1 = r.open_server();
        apply(&mut r, s1, "max_connections 10").unwrap();
        let res = r.resolve();
        assert_eq!(res[0].core.chunk_size, 8192);
        assert_eq!(res[0].core.timeout, 500);
        assert_eq!(res[0].core.out_cork, 8);
        assert_eq!(res[1].core.timeout, 10_000);
        assert_eq!(res[0].apps[0].settings.access.len(), 1);
        assert!(res[0].apps[0].settings.access[0].allow);
        assert_eq!(res[0].apps[1].settings.access, r.main.access);
        assert_eq!(res[0].max_connections, Some(10));
    }

    #[test]
    fn errors_name_the_directive() {
        let mut r = Rtmp::default();
        let s = r.open_server();
        for (line, want) in [
            ("chunk_size 0", "invalid value \"0\" in \"chunk_size\" directive"),
            ("chunk_size big", "\"chunk_size\""),
            ("timeout 5x", "\"timeout\""),
            ("max_message 1g", "\"max_message\""),
            ("so_keepalive yes", "\"so_keepalive\""),
            ("allow publish 1.2.3.999", "in \"allow\" directive"),
            ("listen 99999", "of the \"listen\" directive"),
        ] {
            let e = apply(&mut r, s, line).unwrap_err();
            assert!(e.contains(want), "{line}: {e}");
        }
        apply(&mut r, s, "ping 10s").unwrap();
        assert!(apply(&mut r, s, "ping 20s").unwrap_err().contains("\"ping\" directive is duplicate"));
        apply(&mut r, s, "max_connections 5").unwrap();
        assert!(apply(&mut r, Pos::Main, "max_connections 6").unwrap_err().contains("duplicate"));
    }

    #[test]
    fn callback_names_resolve_at_load_unless_a_resolver_will() {
        let mut r = Rtmp::default();
        let s0 = r.open_server();
        let a = r.open_application(s0, "a").unwrap();
        apply(&mut r, a, "on_publish http://localhost:8080/p").unwrap();
        apply(&mut r, s0, "on_connect http://no-such-host.invalid/c").unwrap();
        let e = Rtmp::check(&mut r.resolve()).unwrap_err();
        assert!(e.contains("in \"on_connect\" URL \"http://no-such-host.invalid/c\""), "{e}");
        apply(&mut r, Pos::Main, "resolver 127.0.0.1 valid=10s").unwrap();
        assert!(apply(&mut r, Pos::Main, "resolver 127.0.0.2").unwrap_err().contains("duplicate"));
        let mut servers = r.resolve();
        Rtmp::check(&mut servers).unwrap();
        assert!(servers[0].resolver);
        assert_eq!(servers[0].apps[0].settings.notify.url(notify::Event::Publish).unwrap().addr, None, "left to the resolver");

        let mut r = Rtmp::default();
        let s0 = r.open_server();
        let a = r.open_application(s0, "a").unwrap();
        apply(&mut r, a, "on_publish http://localhost:8080/p").unwrap();
        let mut servers = r.resolve();
        Rtmp::check(&mut servers).unwrap();
        let addr = servers[0].apps[0].settings.notify.url(notify::Event::Publish).unwrap().addr.unwrap();
        assert!(addr.ip().is_loopback() && addr.port() == 8080);
    }

    #[test]
    fn listens_are_checked_across_servers() {
        let mut r = Rtmp::default();
        let s0 = r.open_server();
        apply(&mut r, s0, "listen 127.0.0.1:1935").unwrap();
        apply(&mut r, s0, "listen [::1]:1935").unwrap();
        let s1 = r.open_server();
        apply(&mut r, s1, "listen 127.0.0.2:1935").unwrap();
        let e = apply(&mut r, s1, "listen 127.0.0.1:1935").unwrap_err();
        assert!(e.starts_with("duplicate \"listen 127.0.0.1:1935\""), "{e}");
        let e = apply(&mut r, s1, "listen 1935").unwrap_err();
        assert!(e.starts_with("conflicting"), "{e}");
        assert!(r.open_application(s1, "a/b").is_err());
        r.open_application(s1, "live").unwrap();
        assert!(r.open_application(s1, "live").unwrap_err().contains("duplicate application"));
    }
}
