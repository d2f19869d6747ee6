//! A simulated driver for the application core: connections, the clock, files and
//! callbacks are plain data, so whole scenarios (`scenarios`) run under `cargo test`,
//! deterministic and in milliseconds. It does what the glue does with nginx: feeds input,
//! carries out effects, fires timers as its clock moves, and writes what is ready into
//! each client's inbox (at most what the client's "socket" takes, to play slow players).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::rc::Rc;
use std::sync::Arc;

use bytes::BytesMut;

use super::{Accept, App, Call, ClientId, Effect, Kind, Level, Now, Storage, Timer, Written};
use crate::conf::directives::index_of;
use crate::conf::resolved::Resolved;
use crate::conf::{Pos, Rtmp};
use crate::notify::{Outcome, Reply};
use crate::rtmp::amf::{self, Value};
use crate::rtmp::chunk::{self, Message};
use crate::rtmp::message as msg;

/// Files in memory, shared by every output of the simulation.
#[derive(Default)]
pub struct MemFs {
    pub files: BTreeMap<String, Vec<u8>>,
}

pub type Fs = Rc<RefCell<MemFs>>;

struct HlsFiles {
    fs: Fs,
    open: Option<String>,
}

impl crate::hls::Files for HlsFiles {
    fn create(&mut self, path: &str) -> io::Result<()> {
        self.fs.borrow_mut().files.insert(path.into(), vec![]);
        self.open = Some(path.into());
        Ok(())
    }
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        let p = self.open.clone().ok_or_else(|| io::Error::other("closed"))?;
        self.fs.borrow_mut().files.entry(p).or_default().extend_from_slice(data);
        Ok(())
    }
    fn close(&mut self) -> io::Result<()> {
        self.open = None;
        Ok(())
    }
    fn replace(&mut self, path: &str, data: &[u8]) -> io::Result<()> {
        self.fs.borrow_mut().files.insert(path.into(), data.to_vec());
        Ok(())
    }
    fn touch(&mut self, _: &str) {}
    fn mkdirs(&mut self, _: &str) -> io::Result<()> {
        Ok(())
    }
    fn read(&mut self, path: &str) -> Option<String> {
        self.fs.borrow().files.get(path).map(|b| String::from_utf8_lossy(b).into_owned())
    }
    fn random(&mut self, buf: &mut [u8]) {
        buf.fill(7);
    }
}

struct RecordFile {
    fs: Fs,
    open: Option<String>,
}

impl crate::record::Files for RecordFile {
    fn open(&mut self, path: &str, append: bool, _lock: bool) -> io::Result<u64> {
        let mut fs = self.fs.borrow_mut();
        let f = fs.files.entry(path.into()).or_default();
        if !append {
            f.clear();
        }
        self.open = Some(path.into());
        Ok(f.len() as u64)
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let fs = self.fs.borrow();
        let f = &fs.files[self.open.as_ref().ok_or_else(|| io::Error::other("closed"))?];
        let at = offset as usize;
        buf.copy_from_slice(f.get(at..at + buf.len()).ok_or_else(|| io::Error::other("short"))?);
        Ok(())
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut fs = self.fs.borrow_mut();
        let f = fs.files.get_mut(self.open.as_ref().ok_or_else(|| io::Error::other("closed"))?).expect("open");
        let at = offset as usize;
        if f.len() < at + data.len() {
            f.resize(at + data.len(), 0);
        }
        f[at..at + data.len()].copy_from_slice(data);
        Ok(())
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        let mut fs = self.fs.borrow_mut();
        fs.files.get_mut(self.open.as_ref().ok_or_else(|| io::Error::other("closed"))?).expect("open").truncate(len as usize);
        Ok(())
    }
    fn close(&mut self) -> io::Result<()> {
        self.open = None;
        Ok(())
    }
}

struct MemStorage(Fs);

impl Storage for MemStorage {
    fn hls(&mut self) -> Box<dyn crate::hls::Files> {
        Box::new(HlsFiles { fs: self.0.clone(), open: None })
    }
    fn record(&mut self) -> Box<dyn crate::record::Files> {
        Box::new(RecordFile { fs: self.0.clone(), open: None })
    }
    fn open_read(&mut self, path: &str) -> io::Result<Box<dyn crate::vod::ReadAt>> {
        let fs = self.0.borrow();
        let data = fs.files.get(path).ok_or(io::ErrorKind::NotFound)?;
        Ok(Box::new(data.clone()))
    }
    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        let mut fs = self.0.borrow_mut();
        let data = fs.files.remove(from).ok_or(io::ErrorKind::NotFound)?;
        fs.files.insert(to.to_owned(), data);
        Ok(())
    }
    fn remove(&mut self, path: &str) {
        self.0.borrow_mut().files.remove(path);
    }
}

/// An `rtmp {}` block's text (nginx's syntax, without comments or quotes) resolved as the
/// module resolves it.
pub fn config(text: &str) -> Resolved {
    let spaced = text.replace('{', " { ").replace('}', " } ").replace(';', " ; ");
    let mut tree = Rtmp::default();
    let mut stack: Vec<Pos> = vec![];
    let mut words: Vec<&str> = vec![];
    for t in spaced.split_whitespace() {
        match t {
            "{" => {
                let pos = match (words.first().copied(), stack.last().copied()) {
                    (Some("rtmp"), None) => Pos::Main,
                    (Some("server"), _) => tree.open_server(),
                    (Some("application"), Some(p)) => tree.open_application(p, words[1]).expect("an application"),
                    (Some("recorder"), Some(p)) => tree.open_recorder(p, words[1]).expect("a recorder"),
                    (w, _) => panic!("unexpected block {w:?}"),
                };
                stack.push(pos);
                words.clear();
            }
            "}" => {
                stack.pop();
            }
            ";" => {
                let pos = *stack.last().expect("inside rtmp {}");
                let i = index_of(words[0]).unwrap_or_else(|| panic!("unknown directive {}", words[0]));
                tree.apply(pos, i, &words[1..]).unwrap_or_else(|e| panic!("{e}"));
                words.clear();
            }
            w => words.push(w),
        }
    }
    let mut servers = tree.resolve();
    Rtmp::check(&mut servers).expect("a valid configuration");
    tree.check_access_logs().expect("known log formats");
    Resolved::new(&tree, servers, "/sim", "logs/access.log")
}

/// A client's side of its connection.
#[derive(Default)]
struct Conn {
    /// What the server wrote to it, not read yet.
    inbox: Vec<u8>,
    /// How many more bytes its socket takes (None: all).
    room: Option<usize>,
}

pub struct Sim {
    pub app: App,
    pub now: Now,
    pub fs: Fs,
    conns: HashMap<ClientId, Conn>,
    /// Connections the application closed.
    pub dropped: HashSet<ClientId>,
    /// Callbacks made and not answered yet.
    pub calls: Vec<Call>,
    pub logs: Vec<(Option<ClientId>, Level, String)>,
    timers: HashMap<(ClientId, Timer), u64>,
    wake: Option<u64>,
    next_tick: u64,
    next_number: u64,
    /// Whether the worker shuts down (for the 1 s tick).
    pub shutdown: Option<super::Shutdown>,
    /// Children the application asked to start (not answered yet), and signals sent.
    pub spawns: Vec<(super::exec::ChildId, crate::exec::Spec)>,
    pub signals: Vec<(i32, i32)>,
    /// Access log lines: (file, line).
    pub access_log: Vec<(String, String)>,
}

impl Sim {
    pub fn new(conf: &str) -> Sim {
        let fs: Fs = Rc::default();
        let now = Now { ms: 1_000_000, wall_ms: 1_795_000_000_000, local: Default::default() };
        let app = App::new(Arc::new(config(conf)), Box::new(MemStorage(fs.clone())), &now);
        Sim {
            app,
            now,
            fs,
            conns: HashMap::new(),
            dropped: HashSet::new(),
            calls: vec![],
            logs: vec![],
            timers: HashMap::new(),
            wake: None,
            next_tick: now.ms + 1000,
            next_number: 1,
            shutdown: None,
            spawns: vec![],
            signals: vec![],
            access_log: vec![],
        }
    }

    /// Whether a line containing `text` was logged.
    pub fn logged(&self, text: &str) -> bool {
        self.logs.iter().any(|(_, _, m)| m.contains(text))
    }

    /// A new connection on server 0.
    pub fn accept(&mut self) -> ClientId {
        self.accept_kind(Kind::Rtmp)
    }

    /// A new connection of this kind (a WHIP session's, say) on server 0.
    pub fn accept_kind(&mut self, kind: Kind) -> ClientId {
        let number = self.next_number;
        self.next_number += 1;
        let id = self.app.accept(Accept { server: 0, addr: "127.0.0.1", ip: IpAddr::V4(Ipv4Addr::LOCALHOST), number, kind, proxy_protocol: false }, &self.now);
        self.conns.insert(id, Conn::default());
        self.run();
        id
    }

    /// Bytes from a client.
    pub fn send(&mut self, id: ClientId, data: &[u8]) {
        if !self.app.wants_input(id) {
            panic!("client {id} is not read now");
        }
        self.app.received(id, data, 7, &self.now);
        self.run();
    }

    /// Limits what a client's socket takes from now on (None: everything).
    pub fn set_room(&mut self, id: ClientId, room: Option<usize>) {
        if let Some(c) = self.conns.get_mut(&id) {
            c.room = room;
        }
        self.run();
    }

    /// What the server wrote to a client since the last call.
    pub fn take(&mut self, id: ClientId) -> Vec<u8> {
        self.conns.get_mut(&id).map(|c| std::mem::take(&mut c.inbox)).unwrap_or_default()
    }

    /// Answers the oldest pending callback whose URL contains `url`.
    pub fn answer(&mut self, url: &str, status: u16, location: Option<&str>) {
        let i = self.calls.iter().position(|c| c.url.contains(url)).unwrap_or_else(|| panic!("no call to {url}"));
        let call = self.calls.remove(i);
        let outcome: Outcome = Ok(Reply { status, location: location.map(str::to_owned) });
        self.app.call_done(call.id, outcome, &self.now);
        self.run();
    }

    /// Moves the clock on, firing what falls due on the way.
    pub fn advance(&mut self, ms: u64) {
        let end = self.now.ms + ms;
        loop {
            let next_timer = self.timers.iter().map(|(k, &at)| (at, *k)).min();
            let mut due = end.min(self.next_tick);
            if let Some((at, _)) = next_timer {
                due = due.min(at);
            }
            if let Some(w) = self.wake {
                due = due.min(w);
            }
            let step = due.saturating_sub(self.now.ms);
            self.now.ms += step;
            self.now.wall_ms += step as i64;
            if let Some((at, k)) = next_timer.filter(|(at, _)| *at <= self.now.ms) {
                let _ = at;
                self.timers.remove(&k);
                self.app.timer(k.0, k.1, &self.now);
            } else if self.wake.is_some_and(|w| w <= self.now.ms) {
                self.wake = None;
                self.app.wake(&self.now);
            } else if self.next_tick <= self.now.ms {
                self.next_tick += 1000;
                self.app.tick(&self.now, self.shutdown);
            } else if self.now.ms >= end {
                break;
            }
            self.run();
        }
    }

    /// Carries out effects and writes what is ready, until nothing is left to do.
    pub fn run(&mut self) {
        loop {
            let mut busy = false;
            while let Some(e) = self.app.poll_effect() {
                busy = true;
                match e {
                    Effect::Log { client, level, msg } => self.logs.push((client, level, msg)),
                    Effect::Drop(id) => {
                        self.dropped.insert(id);
                        self.timers.retain(|k, _| k.0 != id);
                    }
                    Effect::Timer(id, t, ms) => {
                        self.timers.insert((id, t), self.now.ms + ms);
                    }
                    Effect::Call(c) => self.calls.push(*c),
                    Effect::Wake(at) => self.wake = Some(self.wake.map_or(at, |w| w.min(at))),
                    Effect::Proceed(id) => self.app.proceed(id, &self.now),
                    Effect::Spawn(id, spec) => self.spawns.push((id, *spec)),
                    Effect::Signal { pid, signal } => self.signals.push((pid, signal)),
                    Effect::AccessLog { file, line } => {
                        let path = self.app.conf().access_files[file].clone();
                        self.access_log.push((path, String::from_utf8_lossy(&line).into_owned()));
                    }
                    // (No socket holds input back here: what a client sends is handed over
                    // at once.)
                    Effect::Expect(..) | Effect::Deadline(..) | Effect::Pace(..) | Effect::ReadNow(_) | Effect::Resume(_) | Effect::Connect(..) | Effect::Peer(..) => {}
                }
            }
            if self.app.has_ready() {
                busy = true;
                let mut ids = vec![];
                self.app.take_ready(&mut ids, &self.now);
                for id in ids {
                    self.write(id);
                }
            }
            if !busy {
                break;
            }
        }
    }

    /// Writes a client's pending output into its inbox, as far as its room goes.
    fn write(&mut self, id: ClientId) {
        loop {
            let Some(c) = self.conns.get_mut(&id) else { return };
            let mut out = Vec::new();
            let mut room = c.room.unwrap_or(usize::MAX);
            self.app.pending(id, &mut |b| {
                let n = b.len().min(room);
                out.extend_from_slice(&b[..n]);
                room -= n;
                room > 0
            });
            let n = out.len();
            let c = self.conns.get_mut(&id).expect("checked");
            c.inbox.extend_from_slice(&out);
            if let Some(r) = c.room.as_mut() {
                *r -= n;
            }
            match self.app.written(id, n, &self.now) {
                Written::More if n > 0 => continue,
                _ => return,
            }
        }
    }
}

/// An RTMP client of the simulation: a handshake, commands, media, and what it got back.
pub struct Peer {
    pub id: ClientId,
    reader: chunk::Reader,
    /// Every message received, in order.
    pub got: Vec<Message>,
    pub msid: u32,
}

impl Peer {
    /// Connects and shakes hands.
    pub fn new(sim: &mut Sim) -> Peer {
        Peer::of_kind(sim, Kind::Rtmp)
    }

    pub fn of_kind(sim: &mut Sim, kind: Kind) -> Peer {
        let id = sim.accept_kind(kind);
        let mut c0c1 = vec![3u8];
        c0c1.resize(1 + 1536, 0);
        sim.send(id, &c0c1);
        let s = sim.take(id);
        assert_eq!(s.len(), 1 + 2 * 1536, "S0 S1 S2");
        sim.send(id, &s[1..1 + 1536]);
        Peer { id, reader: chunk::Reader::new(1 << 24), got: vec![], msid: 0 }
    }

    pub fn command(&mut self, sim: &mut Sim, msid: u32, values: &[Value]) {
        let mut b = BytesMut::new();
        msg::amf0(&mut b, msg::CSID_COMMAND, msg::COMMAND_AMF0, msid, values, chunk::DEFAULT_CHUNK_SIZE);
        sim.send(self.id, &b);
    }

    /// Reads what the server sent; returns the new messages.
    pub fn read(&mut self, sim: &mut Sim) -> Vec<Message> {
        let bytes = sim.take(self.id);
        self.reader.push(&bytes);
        let mut new = vec![];
        while let Some(m) = self.reader.read_message().expect("the server's chunks parse") {
            if m.type_id == msg::SET_CHUNK_SIZE {
                self.reader.set_chunk_size(u32::from_be_bytes(m.payload[..4].try_into().expect("4")) as usize);
            }
            new.push(m);
        }
        self.got.extend(new.iter().cloned());
        new
    }

    /// The `code`s of the statuses and results among `msgs`.
    pub fn codes(msgs: &[Message]) -> Vec<String> {
        msgs.iter()
            .filter(|m| m.type_id == msg::COMMAND_AMF0)
            .filter_map(|m| amf::Reader::new(&m.payload).read_all().ok())
            .filter_map(|v| v.iter().find_map(|x| x.get("code")).and_then(Value::as_str).map(str::to_owned))
            .collect()
    }

    pub fn connect(&mut self, sim: &mut Sim, app: &str) -> Vec<String> {
        let obj = Value::object(&[("app", Value::str(app)), ("tcUrl", Value::str(&format!("rtmp://sim/{app}"))), ("flashVer", Value::str("sim/1"))]);
        self.command(sim, 0, &[Value::str("connect"), Value::Number(1.0), obj]);
        let r = self.read(sim);
        Peer::codes(&r)
    }

    fn create_stream(&mut self, sim: &mut Sim) {
        self.command(sim, 0, &[Value::str("createStream"), Value::Number(2.0), Value::Null]);
        let r = self.read(sim);
        let id = r.iter().filter_map(|m| amf::Reader::new(&m.payload).read_all().ok()).find_map(|v| v.get(3).and_then(Value::as_f64));
        self.msid = id.expect("a stream id") as u32;
    }

    /// `publish NAME`; the statuses that came back.
    pub fn publish(&mut self, sim: &mut Sim, name: &str) -> Vec<String> {
        self.create_stream(sim);
        self.command(sim, self.msid, &[Value::str("publish"), Value::Number(0.0), Value::Null, Value::str(name), Value::str("live")]);
        let r = self.read(sim);
        Peer::codes(&r)
    }

    /// `play NAME`; the statuses that came back.
    pub fn play(&mut self, sim: &mut Sim, name: &str) -> Vec<String> {
        self.create_stream(sim);
        self.command(sim, self.msid, &[Value::str("play"), Value::Number(0.0), Value::Null, Value::str(name), Value::Number(-2.0)]);
        let r = self.read(sim);
        Peer::codes(&r)
    }

    /// A video tag (AVC; `key`: a keyframe; `header`: the sequence header).
    pub fn video(&mut self, sim: &mut Sim, ts: u32, key: bool, header: bool) {
        let body: Vec<u8> = if header {
            vec![0x17, 0, 0, 0, 0, 1, 0x42, 0, 0x1e, 0xff, 0xe1, 0, 4, 0x67, 0x42, 0, 0x1e, 1, 0, 2, 0x68, 0xce]
        } else {
            // One NAL unit of 103 bytes, with its 4-byte length.
            let mut b = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0, 0, 0, 0, 103, if key { 0x65 } else { 0x41 }, 0x88, ts as u8];
            b.extend(std::iter::repeat_n(0x11, 100));
            b
        };
        self.media(sim, msg::VIDEO, ts, &body);
    }

    /// An AAC tag (`header`: the AudioSpecificConfig).
    pub fn audio(&mut self, sim: &mut Sim, ts: u32, header: bool) {
        let body: &[u8] = if header { &[0xaf, 0, 0x12, 0x10] } else { &[0xaf, 1, 0x21, 0x10, 0x04, 0x60, 0x8c, 0x1c] };
        self.media(sim, msg::AUDIO, ts, body);
    }

    pub fn media(&mut self, sim: &mut Sim, type_id: u8, ts: u32, body: &[u8]) {
        let csid = if type_id == msg::AUDIO { msg::CSID_AUDIO } else { msg::CSID_VIDEO };
        let b = chunk::encode(csid, ts, type_id, self.msid, body, chunk::DEFAULT_CHUNK_SIZE);
        sim.send(self.id, &b);
    }

    /// Closes the connection (the peer went away).
    pub fn vanish(&self, sim: &mut Sim) {
        sim.app.close(self.id, &sim.now.clone());
        sim.run();
    }

    /// The audio and video messages got so far: (type, timestamp, first byte).
    pub fn media_got(&self) -> Vec<(u8, u32, u8)> {
        self.got.iter().filter(|m| matches!(m.type_id, msg::AUDIO | msg::VIDEO)).map(|m| (m.type_id, m.timestamp, m.payload[0])).collect()
    }
}
