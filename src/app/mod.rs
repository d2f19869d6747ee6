//! The application core of one worker, sans-IO: every RTMP client, relay and WHIP session
//! of the worker, every live stream with its source and outputs, the notify callbacks, the
//! control API and the statistics. Bytes, time and answers go in (`accept`, `received`,
//! `timer`, `call_done`...); what to write is read back through `take_ready`, `pending`
//! and `written`; everything else the outside world must do comes out of `poll_effect`
//! (close a connection, arm a timer, make an HTTP call, connect a relay, log a line). No
//! sockets, no nginx, no clock of its own: `crate::glue` drives it in nginx's event loop,
//! and `sim` (tests) drives whole scenarios in memory.
//!
//! Layout: `client` (one connection's state and output), `rtmp` (what a client's RTMP
//! session says), `stream` (a stream's lifecycle: admit, publish, play, end), `output`
//! (what a stream feeds besides its players: HLS, recorders), `notify` (callbacks),
//! `relay`, `pace` (when a publisher's input is read), `write` (the ready list),
//! `control`, `stat`.

mod client;
pub mod control;
pub mod exec;
mod ladder;
mod log;
mod notify;
mod output;
mod pace;
mod peer;
mod relay;
mod rtmp;
mod stat;
mod stream;
mod vod;
pub mod write;

#[cfg(test)]
mod scenarios;
#[cfg(any(test, feature = "fuzzing"))]
pub mod sim;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::conf::resolved::Resolved;
use crate::live::{Id, Slab, StreamKey};
use crate::record;

pub use client::{Client, IOV_PER_WRITE};
pub use control::Answer;
pub use peer::{key_hash, table as peer_table, Alone, Peer, Workers};
pub use stat::SnapshotMeta;
pub use stream::{valid_name, Stream};
pub use write::{grid_delay, Written};

/// A client (RTMP connection, relay, WHIP session) of the worker.
pub type ClientId = Id;
/// A live stream of the worker.
pub type StreamId = Id;
/// An HTTP callback under way.
pub type CallId = u64;

/// The time of an input: a monotonic millisecond clock (timers, rates), the wall clock
/// (HLS dates) and the local time of its second (recording file names).
#[derive(Clone, Copy, Debug, Default)]
pub struct Now {
    pub ms: u64,
    pub wall_ms: i64,
    pub local: record::Tm,
}

impl Now {
    pub fn record(&self) -> record::Now {
        record::Now { ms: self.ms, unix: self.wall_ms.div_euclid(1000), local: self.local }
    }
}

/// Where outputs keep their files: the real file system (the glue) or memory (tests).
pub trait Storage {
    fn hls(&mut self) -> Box<dyn crate::hls::Files>;
    fn record(&mut self) -> Box<dyn crate::record::Files>;
    /// A file to play (`play DIR`), for reading.
    fn open_read(&mut self, path: &str) -> std::io::Result<Box<dyn crate::vod::ReadAt>>;
    /// A file fetched for a player (`play http://...`): kept under another name, or gone.
    fn rename(&mut self, from: &str, to: &str) -> std::io::Result<()>;
    fn remove(&mut self, path: &str);
}

/// Log levels, as nginx has them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Alert,
    Err,
    Warn,
    Notice,
    Info,
}

/// A client's timers (besides its read and send timeouts, which the glue keeps).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timer {
    /// `ping`: send a ping.
    Ping,
    /// `drop_idle_publisher`: check for media.
    Idle,
    /// `on_update`: the next round of calls.
    Update,
    /// A file's player: its next frames are due.
    Vod,
}

/// What kind of connection a client is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An RTMP client that connected to us.
    Rtmp,
    /// A WHIP session publishing through its socketpair (an RTMP client of ours).
    Whip,
    /// A WHEP session playing through its socketpair.
    Whep,
    /// Another worker of this nginx playing a stream of ours for its own players
    /// (`peer.rs`): no callbacks, no access rules, no `max_connections` slot, not in
    /// `/stat`.
    Peer,
}

/// A new connection.
#[derive(Clone, Debug)]
pub struct Accept<'a> {
    /// The server (`rtmp { server { } }`) whose socket took it.
    pub server: usize,
    /// Its address as text (for logs, callbacks and `/stat`), and as an address.
    pub addr: &'a str,
    pub ip: IpAddr,
    /// nginx's connection number (`clientid` in callbacks and `/stat`).
    pub number: u64,
    pub kind: Kind,
    /// Its listen has `proxy_protocol`: a PROXY header comes first.
    pub proxy_protocol: bool,
}

/// Where an HTTP callback goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Addr(SocketAddr),
    /// A host name, resolved at call time through the server's `resolver`.
    Name { server: usize, host: String, port: u16 },
    /// A Unix socket: another worker's (`peer.rs`).
    Unix(String),
}

/// An HTTP callback to make; its outcome goes to `call_done`.
#[derive(Clone, Debug)]
pub struct Call {
    pub id: CallId,
    pub target: Target,
    /// The URL (for messages).
    pub url: String,
    pub request: Vec<u8>,
    /// The whole call's limit, in ms (`netcall_timeout`).
    pub timeout: u64,
    /// The most bytes of reply headers read.
    pub limit: usize,
    /// `https://`: TLS to this server name, its certificate checked if `verify`.
    pub tls: Option<(String, bool)>,
    /// A download (`play http://...`): a 200's body goes to this file, the read timeout
    /// being `timeout` between reads rather than for the whole call.
    pub download: Option<String>,
}

/// An outgoing relay connection to open for a client.
#[derive(Clone, Debug)]
pub struct Connect {
    pub target: Target,
    /// `rtmps://`: TLS to this server name (SNI and the certificate's check), checked
    /// against the trusted authorities if `verify`.
    pub tls: Option<(String, bool)>,
    /// `ADDR:PORT` (its address in logs and `/stat`).
    pub text: String,
    pub url: String,
}

/// What the outside world is to do.
#[derive(Clone, Debug)]
pub enum Effect {
    /// A line for the error log, about a client (its address is added) or the worker.
    Log { client: Option<ClientId>, level: Level, msg: String },
    /// The client is gone: close its connection.
    Drop(ClientId),
    /// A line (with its newline) for access log file `file` (`Resolved::access_files`).
    AccessLog { file: usize, line: Vec<u8> },
    /// (Re)arm a client's timer to fire after this many ms.
    Timer(ClientId, Timer, u64),
    /// Any input from the client must come within this many ms (a ping's answer).
    Expect(ClientId, u64),
    /// The client must be done with the handshake and `connect` within this many ms
    /// (`handshake_timeout`: input does not push it back); None: it is done.
    Deadline(ClientId, Option<u64>),
    /// Read the client's input in batches, every this many ms (0: as it comes).
    Pace(ClientId, u64),
    /// Read what waits in the client's socket now (a batched publisher a player joins).
    ReadNow(ClientId),
    /// Read the client again: what it sent while a callback was pending waits.
    Resume(ClientId),
    /// Call `proceed` for the client, once the effects before this one are done.
    Proceed(ClientId),
    /// Make an HTTP callback.
    Call(Box<Call>),
    /// The client's address is this (from a PROXY protocol header): for nginx's own log
    /// lines about its connection.
    Peer(ClientId, String),
    /// Open an outgoing connection for this (relay) client.
    Connect(ClientId, Box<Connect>),
    /// Wake the worker (`wake`) at this time of its clock (merged writes).
    Wake(u64),
    /// Start a child process (`exec*`); its outcome goes to `spawned`.
    Spawn(exec::ChildId, Box<crate::exec::Spec>),
    /// Send a signal to a child's process group.
    Signal { pid: i32, signal: i32 },
}

/// Why the worker shuts down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    /// A reload: newer workers take over; live publishers go on until they leave.
    Reload,
    /// nginx quits: live publishers are drained (`drain_timeout`).
    Quit,
}

/// Worker-wide totals for `/stat`.
#[derive(Default)]
struct Totals {
    started: u64,
    naccepted: u64,
    bytes_in: u64,
    /// Bytes sent to clients that are gone (the others count their own).
    bytes_out_gone: u64,
    in_rate: crate::stat::Rate,
    out_rate: crate::stat::Rate,
    hls: crate::stat::HlsViewers,
    health: crate::stat::Health,
}

/// One worker's application.
pub struct App {
    conf: Arc<Resolved>,
    storage: Box<dyn Storage>,
    clients: Slab<Client>,
    streams: Slab<Stream>,
    by_key: HashMap<StreamKey, StreamId>,
    effects: VecDeque<Effect>,
    /// Callbacks under way, and what their answer is for.
    calls: HashMap<CallId, notify::Then>,
    next_call: CallId,
    totals: Totals,
    write: write::Ready,
    /// While the worker shuts down: since when nginx quits (not a reload).
    quit_seen: Option<u64>,
    /// `exec*` children.
    children: exec::Children,
    /// Transcoding ladders' master playlists, by source stream.
    ladders: HashMap<StreamId, ladder::Master>,
    /// `push` and `pull` relays, and pulls from other workers.
    relays: relay::Relays,
    /// Which worker publishes which stream (`peer.rs`).
    workers: Box<dyn Workers>,
}

impl App {
    pub fn new(conf: Arc<Resolved>, storage: Box<dyn Storage>, now: &Now) -> App {
        App {
            conf,
            storage,
            clients: Slab::default(),
            streams: Slab::default(),
            by_key: HashMap::new(),
            effects: VecDeque::new(),
            calls: HashMap::new(),
            next_call: 1,
            totals: Totals {
                started: now.ms,
                in_rate: crate::stat::Rate::new(now.ms, 0),
                out_rate: crate::stat::Rate::new(now.ms, 0),
                ..Totals::default()
            },
            write: write::Ready::default(),
            quit_seen: None,
            children: exec::Children::default(),
            ladders: HashMap::new(),
            relays: relay::Relays::default(),
            workers: Box::new(Alone),
        }
    }

    /// Where the other workers' streams are found (the glue's shared memory).
    pub fn set_workers(&mut self, w: Box<dyn Workers>) {
        self.workers = w;
    }

    pub fn conf(&self) -> &Arc<Resolved> {
        &self.conf
    }

    /// The next thing the outside world is to do.
    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }

    fn log(&mut self, client: Option<ClientId>, level: Level, msg: String) {
        self.effects.push_back(Effect::Log { client, level, msg });
    }

    fn info(&mut self, client: ClientId, msg: String) {
        self.log(Some(client), Level::Info, msg);
    }

    /// Whether the client is known (not closed).
    pub fn exists(&self, id: ClientId) -> bool {
        self.clients.contains(id)
    }

    /// Every client, for the glue's own bookkeeping.
    pub fn client_ids(&self) -> Vec<ClientId> {
        self.clients.ids()
    }

    pub fn client(&self, id: ClientId) -> Option<&Client> {
        self.clients.get(id)
    }
}
