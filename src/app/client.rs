//! One client of the worker (an RTMP connection, a relay, a WHIP session's socketpair):
//! its protocol session, what it connected to, the streams it publishes or plays, and
//! its own output queue (replies and statuses; what it plays comes from the streams'
//! logs, see `write`).

use std::collections::VecDeque;
use std::net::IpAddr;

use bytes::Bytes;

use super::{Kind, StreamId};
use crate::live::fanout::Cursor;
use crate::rtmp::client::{Client as RelaySession, Mode};
use crate::rtmp::session::{ConnectInfo, Session};
use crate::stat::Rate;

/// The RTMP side of a client. (A player's session is kept inline: most clients are
/// players, and one allocation fewer each is memory per player saved.)
#[allow(clippy::large_enum_variant)]
pub enum Proto {
    /// A client of ours: our server session.
    Server(Session),
    /// Our connection to another server (a relay): our client session.
    Relay(Box<Relay>),
}

/// A relay: this connection pushes a local stream to another server, or pulls one from it
/// into a local stream.
pub struct Relay {
    pub session: RelaySession,
    pub mode: Mode,
    pub key: crate::live::StreamKey,
    pub url: String,
    /// When the pulled stream last had no player (a pull ends `pull_idle_timeout` after its last player).
    pub idle_since: Option<u64>,
    /// The `push`/`pull` task it is a connection of (None: a notify redirect's relay).
    pub task: Option<u64>,
    /// A pull from another worker (`peer.rs`): its stream is a mirror, without outputs.
    pub peer: bool,
}

/// A stream the client publishes or plays, on its message stream `msid`.
pub struct Role {
    pub msid: u32,
    pub stream: StreamId,
    pub play: Option<Cursor>,
}

impl Role {
    pub fn publishes(&self) -> bool {
        self.play.is_none()
    }
}

/// A command waiting for its callback's answer.
pub enum Waiting {
    Connect,
    /// `publish` (or `play`, `player`) waiting for `on_publish` (`on_play`).
    Stream { player: bool, msid: u32, name: String, args: String },
    /// A `play` waiting for its stream's publisher (read in batches) to be read first.
    CatchUp { msid: u32, name: String, args: String, key: crate::live::StreamKey },
}

/// A stream of this client as its callbacks see it: the name as the client asked for it
/// (before any rename), its arguments, and when it started.
pub struct Note {
    pub msid: u32,
    pub player: bool,
    pub name: String,
    pub args: String,
    pub since: u64,
}

/// (`repr(C)`, the fields every write touches first: a player's turn of writing reads
/// one or two cache lines of its client.)
#[repr(C)]
pub struct Client {
    /// In the ready list.
    pub ready: bool,
    /// Close once everything queued is written (after an error status).
    pub close_after_flush: bool,
    /// Lagged beyond `out_queue`: closed at its next write.
    pub too_slow: bool,
    /// Bytes queued for it; `sent` of the front buffer are written already.
    pub(super) out: VecDeque<Bytes>,
    sent: usize,
    /// How many queued buffers are a start-up burst rather than live output (the burst is
    /// queued first, so these are the next ones written); `out_queue` counts the rest.
    burst: usize,
    pub roles: Vec<Role>,
    pub bytes_out: u64,
    pub server: usize,
    pub kind: Kind,
    pub number: u64,
    pub addr: Box<str>,
    pub ip: IpAddr,
    /// When it connected (ms).
    pub since: u64,
    pub proto: Proto,
    /// The application it connected to (its index in the server).
    pub app: Option<usize>,
    /// What it said in `connect` (the application renamed if `on_connect` did).
    pub info: Option<Box<ConnectInfo>>,
    pub waiting: Option<Box<Waiting>>,
    pub notes: Vec<Note>,
    pub updates_pending: u32,
    /// The timestamp of the last audio, video or data message from the client.
    pub last_ts: u32,
    /// When it last sent audio or video (for `drop_idle_publisher`).
    pub last_media: u64,
    pub bytes_in: u64,
    pub out_rate: Rate,
    /// When this (WHIP) publisher was last asked for a keyframe.
    pub keyframe_asked: u64,
    /// How often its input is read (0: as it comes).
    pub pace: u64,
    /// Bytes in and out when the last ping was due (`busy`).
    pub ping_bytes: u64,
    /// For the access log: `log::PLAY`/`log::PUBLISH` flags, and the last stream name
    /// and arguments it asked for.
    pub log_cmd: u8,
    pub log_names: Option<Box<(Box<str>, Box<str>)>>,
    /// Its PROXY protocol header, while it is expected (what came of it so far).
    pub proxy_header: Option<Box<Vec<u8>>>,
    /// The file it plays (`play DIR`), on message stream `.0`.
    pub vod: Option<Box<(u32, crate::vod::Playback)>>,
    /// Where its `play` asked to start (ms; a file's players only).
    pub play_start: u32,
}

/// Buffers one write takes from a client's output.
pub const IOV_PER_WRITE: usize = 64;

impl Client {
    pub fn new(server: usize, kind: Kind, number: u64, addr: &str, ip: IpAddr, since: u64, proto: Proto) -> Client {
        Client {
            server,
            kind,
            number,
            addr: addr.into(),
            ip,
            since,
            proto,
            app: None,
            info: None,
            roles: Vec::new(),
            out: VecDeque::new(),
            sent: 0,
            burst: 0,
            close_after_flush: false,
            too_slow: false,
            ready: false,
            waiting: None,
            notes: Vec::new(),
            updates_pending: 0,
            last_ts: 0,
            last_media: 0,
            bytes_in: 0,
            bytes_out: 0,
            out_rate: Rate::new(since, 0),
            keyframe_asked: 0,
            pace: 0,
            ping_bytes: 0,
            log_cmd: 0,
            log_names: None,
            proxy_header: None,
            vod: None,
            play_start: 0,
        }
    }

    pub fn relay(&self) -> Option<&Relay> {
        match &self.proto {
            Proto::Relay(r) => Some(r),
            Proto::Server(_) => None,
        }
    }

    pub fn relay_mut(&mut self) -> Option<&mut Relay> {
        match &mut self.proto {
            Proto::Relay(r) => Some(r),
            Proto::Server(_) => None,
        }
    }

    pub fn session(&mut self) -> Option<&mut Session> {
        match &mut self.proto {
            Proto::Server(s) => Some(s),
            Proto::Relay(_) => None,
        }
    }

    /// Whether it publishes a stream (a pull relay publishes locally).
    pub fn publishes(&self) -> bool {
        self.roles.iter().any(Role::publishes)
    }

    pub fn role(&self, msid: u32) -> Option<&Role> {
        self.roles.iter().find(|r| r.msid == msid)
    }

    pub fn flash_ver(&self) -> &str {
        self.info.as_ref().map_or("", |i| &i.flash_ver)
    }

    /// Queues bytes for the client.
    pub fn queue(&mut self, b: Bytes) {
        if !b.is_empty() {
            self.out.push_back(b);
        }
    }

    /// Queues a new player's start-up burst (not counted in `out_queue`).
    pub fn queue_burst(&mut self, v: Vec<Bytes>) {
        self.burst += v.len();
        self.out.extend(v);
    }

    /// Puts the unwritten rest of a log entry first.
    pub fn queue_front(&mut self, b: Bytes) {
        debug_assert_eq!(self.sent, 0);
        self.out.push_front(b);
        self.burst += 1;
    }

    /// Messages queued beyond the start-up burst (what `out_queue` limits).
    pub fn queued_live(&self) -> usize {
        self.out.len() - self.burst.min(self.out.len())
    }

    pub fn has_own_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// The own queue's buffers for a write: the front one's unsent part first.
    pub fn own_pending(&self) -> impl Iterator<Item = &[u8]> {
        let sent = self.sent;
        self.out.iter().enumerate().map(move |(i, b)| if i == 0 { &b[sent..] } else { &b[..] })
    }

    /// `n` bytes of the own queue are written; returns what is left of `n` beyond it.
    pub fn own_advance(&mut self, mut n: usize) -> usize {
        while n > 0 {
            let Some(front) = self.out.front() else { break };
            let left = front.len() - self.sent;
            if n >= left {
                n -= left;
                self.out.pop_front();
                self.sent = 0;
                self.burst = self.burst.saturating_sub(1);
            } else {
                self.sent += n;
                n = 0;
            }
        }
        n
    }

    /// Moves what the session (or the relay's session) has to say into the queue.
    pub fn drain_session(&mut self) {
        loop {
            let b = match &mut self.proto {
                // (What our server session says for a relay goes nowhere.)
                Proto::Server(s) => s.take_output(),
                Proto::Relay(r) => r.session.take_output(),
            };
            match b {
                Some(b) => self.queue(b),
                None => break,
            }
        }
    }
}
