//! Statistics, sans-IO: what the worker knows about its streams as plain data
//! ([`Snapshot`]), bit rates measured over a short sliding window ([`Rate`]), codec details
//! read from the publisher's sequence headers and metadata ([`Codec`]), and the three
//! renderings: nginx-rtmp-module's `/stat` XML (same elements, nesting and units), JSON
//! with the same numbers, and Prometheus text exposition.

pub mod codec;
mod merge;
mod render;
pub mod wire;
#[cfg(test)]
mod tests;

pub use codec::Codec;
pub use merge::merge;
pub use render::{json, prometheus, xml};

/// The `flashVer` of a worker's pull from another worker (`app/peer.rs`): its stream there
/// is a copy, whose publisher `merge` leaves out.
pub const WORKER_FLASHVER: &str = "ngx-rtmp-rs worker";

/// What `rtmp_stat` shows (nginx-rtmp-module's flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sections {
    pub live: bool,
    pub clients: bool,
}

impl Sections {
    pub const ALL: Sections = Sections { live: true, clients: true };
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub nginx_version: String,
    pub compiler: String,
    pub built: String,
    pub pid: u64,
    /// Seconds since the worker started.
    pub uptime: u64,
    pub naccepted: u64,
    /// Bits per second; bytes.
    pub bw_in: u64,
    pub bytes_in: u64,
    pub bw_out: u64,
    pub bytes_out: u64,
    pub servers: Vec<Server>,
    /// The worker's `exec*` children (JSON and Prometheus only).
    pub children: Vec<Child>,
    /// The worker's `push` and `pull` relays (JSON and Prometheus; XML shows their
    /// connections as clients of their streams, as nginx-rtmp-module does).
    pub relays: Vec<Relay>,
    /// Worker counters and gauges for monitoring (JSON and Prometheus only).
    pub health: Health,
}

/// Why clients were closed by the server, as `rtmp_client_errors_total{reason}` counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Malformed input (handshake, chunks, AMF, codec data).
    Protocol,
    /// Nothing came within `timeout`, or no answer to a ping within `ping_timeout`.
    Timeout,
    /// A player more than `out_queue` behind, or a client that does not read.
    Slow,
    /// `publish`/`play` refused: bad name, access rules, callback, stream in use.
    Refused,
    /// `drop_idle_publisher` or `busy`.
    Idle,
}

impl Fault {
    pub const ALL: [Fault; 5] = [Fault::Protocol, Fault::Timeout, Fault::Slow, Fault::Refused, Fault::Idle];

    pub fn name(self) -> &'static str {
        match self {
            Fault::Protocol => "protocol",
            Fault::Timeout => "timeout",
            Fault::Slow => "slow",
            Fault::Refused => "refused",
            Fault::Idle => "idle",
        }
    }
}

/// What the worker counts for monitoring, beyond `/stat`'s XML.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Health {
    /// Clients closed by the server, by [`Fault`] (in `Fault::ALL`'s order).
    pub faults: [u64; 5],
    /// HLS segments completed and listed; HLS writes that failed.
    pub hls_segments: u64,
    pub hls_errors: u64,
    /// Recording files open now; files completed; recordings that failed.
    pub recordings: u64,
    pub record_files: u64,
    pub record_errors: u64,
    /// WHIP sessions publishing now, and since the worker started.
    pub whip_sessions: u64,
    pub whip_sessions_total: u64,
    /// WHEP sessions playing now, and since the worker started.
    pub whep_sessions: u64,
    pub whep_sessions_total: u64,
}

/// A `push` or `pull` relay of one stream.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Relay {
    /// `push` or `pull`.
    pub direction: &'static str,
    pub app: String,
    pub name: String,
    /// The URL of the line it uses now (for a pull, the origin it tries).
    pub url: String,
    /// `connecting`, `live` or `waiting` (to reconnect).
    pub state: &'static str,
    pub reconnects: u64,
    /// Why its last connection ended or failed, or empty.
    pub last_error: String,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Seconds since it last got going (0 while it is not live).
    pub uptime: u64,
}

/// An `exec*` child of the worker.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Child {
    /// What it is for and its program: `exec_push "cam": ffmpeg`.
    pub command: String,
    /// Its keeper's pid (its process group), 0 while it is not running.
    pub pid: i32,
    /// `starting`, `running`, `stopping` or `waiting` (to be respawned).
    pub state: &'static str,
    pub starts: u32,
    /// How it last ended (`exited with code 1`...), or empty.
    pub last_exit: String,
    /// Seconds since it last started (0 while it is not running).
    pub uptime: u64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Server {
    pub apps: Vec<App>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct App {
    pub name: String,
    pub streams: Vec<Stream>,
}

impl App {
    pub fn nclients(&self) -> usize {
        self.streams.iter().map(|s| s.clients.len()).sum()
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stream {
    pub name: String,
    /// Milliseconds since it was published (or first asked for).
    pub time: u64,
    pub bw_in: u64,
    pub bytes_in: u64,
    pub bw_out: u64,
    pub bytes_out: u64,
    pub bw_audio: u64,
    pub bw_video: u64,
    pub clients: Vec<Client>,
    pub codec: Option<Codec>,
    pub publishing: bool,
    /// It has a publisher that sent media.
    pub active: bool,
    /// HLS viewers (JSON and Prometheus only: nginx-rtmp-module's XML has no place for it).
    pub hls_viewers: usize,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Client {
    pub id: u64,
    pub address: String,
    /// Milliseconds since it connected.
    pub time: u64,
    pub flashver: String,
    pub pageurl: String,
    pub swfurl: String,
    pub dropped: u64,
    /// Milliseconds between the last audio and the last video timestamp.
    pub avsync: i64,
    pub timestamp: u32,
    pub publishing: bool,
    pub active: bool,
    /// The pid of the worker that serves it (JSON only: nginx-rtmp-module's XML has no
    /// place for it).
    pub worker: u64,
}

/// A byte counter's rate over the last few seconds, from samples taken about once a
/// second: right from the first second (over what time there is), never a stale figure.
#[derive(Clone, Debug, Default)]
pub struct Rate {
    /// (ms, total bytes), oldest first.
    samples: std::collections::VecDeque<(u64, u64)>,
}

/// How far back a rate looks.
pub const RATE_WINDOW_MS: u64 = 5000;

impl Rate {
    /// Starts counting at `now_ms` from `total` bytes.
    pub fn new(now_ms: u64, total: u64) -> Self {
        let mut r = Rate::default();
        r.samples.push_back((now_ms, total));
        r
    }

    pub fn sample(&mut self, now_ms: u64, total: u64) {
        self.samples.push_back((now_ms, total));
        while self.samples.len() > 2 && now_ms.saturating_sub(self.samples[1].0) >= RATE_WINDOW_MS {
            self.samples.pop_front();
        }
    }

    /// Bits per second from the oldest sample in the window to `total` now.
    pub fn bits_per_sec(&self, now_ms: u64, total: u64) -> u64 {
        let Some(&(t0, b0)) = self.samples.front() else { return 0 };
        let ms = now_ms.saturating_sub(t0);
        if ms < 200 {
            return 0;
        }
        total.saturating_sub(b0) * 8 * 1000 / ms
    }
}

/// HLS viewers per stream: who fetched one of its segments lately (a viewer is a client
/// address and user agent), counted in nginx's log phase for locations with
/// `rtmp_hls_viewers on`.
#[derive(Default)]
pub struct HlsViewers {
    streams: std::collections::HashMap<String, std::collections::HashMap<u64, u64>>,
}

/// How long after its last segment request a viewer still counts (ms).
pub const HLS_VIEWER_WINDOW_MS: u64 = 20_000;
/// Bounds on what requests can make this remember.
const MAX_HLS_STREAMS: usize = 10_000;
const MAX_HLS_VIEWERS: usize = 100_000;

impl HlsViewers {
    /// A segment of `stream` was served to `viewer`.
    pub fn seen(&mut self, stream: &str, viewer: u64, now_ms: u64) {
        if !self.streams.contains_key(stream) {
            if self.streams.len() >= MAX_HLS_STREAMS {
                self.prune(now_ms);
                if self.streams.len() >= MAX_HLS_STREAMS {
                    return;
                }
            }
            self.streams.insert(stream.to_owned(), Default::default());
        }
        let v = self.streams.get_mut(stream).expect("inserted");
        if v.len() >= MAX_HLS_VIEWERS && !v.contains_key(&viewer) {
            v.retain(|_, &mut t| now_ms.saturating_sub(t) < HLS_VIEWER_WINDOW_MS);
            if v.len() >= MAX_HLS_VIEWERS {
                return;
            }
        }
        v.insert(viewer, now_ms);
    }

    /// Viewers of `stream` now.
    pub fn count(&self, stream: &str, now_ms: u64) -> usize {
        self.streams.get(stream).map_or(0, |v| v.values().filter(|&&t| now_ms.saturating_sub(t) < HLS_VIEWER_WINDOW_MS).count())
    }

    /// Forgets viewers that left (and streams without any).
    pub fn prune(&mut self, now_ms: u64) {
        for v in self.streams.values_mut() {
            v.retain(|_, &mut t| now_ms.saturating_sub(t) < HLS_VIEWER_WINDOW_MS);
        }
        self.streams.retain(|_, v| !v.is_empty());
    }
}

/// The stream an HLS segment URI belongs to: `.../NAME-N.ts`, or `.../NAME/N.ts` with
/// `hls_nested on`.
pub fn hls_stream_of(uri: &str) -> Option<&str> {
    let path = uri.strip_suffix(".ts").or_else(|| uri.strip_suffix(".m4s"))?;
    // (A low-latency part: ID.N.)
    let path = match path.rsplit_once('.') {
        Some((seg, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => seg,
        _ => path,
    };
    let (dir, file) = path.rsplit_once('/')?;
    if !file.is_empty() && file.bytes().all(|b| b.is_ascii_digit()) {
        let (_, name) = dir.rsplit_once('/')?;
        return (!name.is_empty()).then_some(name);
    }
    let (name, n) = file.rsplit_once('-')?;
    (!name.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then_some(name)
}
