//! One RTMP connection, server side, as a state machine: bytes from the client go in
//! (`feed`), bytes for the client (`take_output`) and application events (`poll_event`)
//! come out. Protocol housekeeping (handshake, chunking, acknowledgements, pings, chunk
//! size) is handled here; decisions (may this client connect, publish, play?) are the
//! caller's, who answers events with `accept_*` / `reject_*`.

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};

use super::amf::{self, Value};
use super::chunk::{self, Message};
use super::handshake;
use super::message::{self as msg, MediaKind};

#[derive(Clone, Debug)]
pub struct Config {
    /// Our outgoing chunk size (`chunk_size`).
    pub chunk_size: usize,
    /// Window acknowledgement size we ask of the client (`ack_window`).
    pub ack_window: u32,
    /// Largest message accepted (`max_message`).
    pub max_message: usize,
    /// Most streams one connection may create (`max_streams`).
    pub max_streams: u32,
    /// Type 3 chunks from the client repeat an extended timestamp (`publish_time_fix`).
    pub publish_time_fix: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config { chunk_size: 4096, ack_window: 5_000_000, max_message: 1 << 20, max_streams: 32, publish_time_fix: true }
    }
}

/// What the client asked for in `connect`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConnectInfo {
    /// The application name, without any `?args`.
    pub app: String,
    /// The query string after `?` in the app (or tcUrl), if any.
    pub args: String,
    pub flash_ver: String,
    pub swf_url: String,
    pub tc_url: String,
    pub page_url: String,
    pub object_encoding: f64,
    /// The client plays Opus audio in Enhanced RTMP tags: it lists `Opus` (or `*`) in
    /// `fourCcList`, or in `audioFourCcInfoMap` (Enhanced RTMP v2).
    pub opus: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Connect(ConnectInfo),
    /// `publish NAME [TYPE]` on stream `msid`.
    Publish { msid: u32, name: String, args: String, kind: String },
    /// `play NAME [START [DURATION [RESET]]]` on stream `msid` (START and DURATION 0 when
    /// left out, as nginx-rtmp-module reads them).
    Play { msid: u32, name: String, args: String, start: f64, duration: f64, reset: bool },
    /// Audio, video or metadata from a publisher.
    Media { msid: u32, kind: MediaKind, timestamp: u32, payload: Bytes },
    /// The client ended a stream (`deleteStream`, `closeStream`).
    CloseStream { msid: u32 },
    Pause { msid: u32, pause: bool },
    /// `seek MS`: a player of a file asks to go to this time.
    Seek { msid: u32, ms: f64 },
    /// `receiveAudio` / `receiveVideo`: a player turns a kind of media on or off.
    Receive { msid: u32, kind: MediaKind, on: bool },
    /// A player asks for a keyframe (`message::KEYFRAME_REQUEST`: a WHEP viewer lost a
    /// picture); the stream's WHIP publisher is asked for one.
    KeyframeRequest { msid: u32 },
}

#[derive(Debug, PartialEq)]
pub enum Error {
    BadVersion(u8),
    Chunk(chunk::Error),
    Amf(amf::Error),
    BadChunkSize(u32),
    /// A message that does not fit its type or the session's state.
    Protocol(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::BadVersion(v) => write!(f, "bad RTMP version byte 0x{v:02x} in handshake"),
            Error::Chunk(e) => write!(f, "{e}"),
            Error::Amf(e) => write!(f, "{e}"),
            Error::BadChunkSize(n) => write!(f, "invalid chunk size {n} from client"),
            Error::Protocol(s) => write!(f, "{s}"),
        }
    }
}

impl From<chunk::Error> for Error {
    fn from(e: chunk::Error) -> Self {
        Error::Chunk(e)
    }
}

impl From<amf::Error> for Error {
    fn from(e: amf::Error) -> Self {
        Error::Amf(e)
    }
}

fn protocol<T>(s: impl Into<String>) -> Result<T, Error> {
    Err(Error::Protocol(s.into()))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Waiting for C0 and C1.
    Handshake0,
    /// S0 S1 S2 sent, waiting for C2.
    Handshake2,
    Open,
}

/// The peer-to-peer housekeeping both ends of a connection do alike: reading chunks, and
/// the protocol and user control messages (chunk size, abort, acknowledgement window,
/// pings).
pub(crate) struct Link {
    pub reader: chunk::Reader,
    received: u64,
    acked: u64,
    peer_window: u32,
}

fn be32(body: &[u8]) -> Result<u32, Error> {
    match body.get(..4) {
        Some(b) => Ok(u32::from_be_bytes(b.try_into().expect("4"))),
        None => protocol("control message too short"),
    }
}

impl Link {
    pub fn new(max_message: usize, time_fix: bool) -> Self {
        let mut reader = chunk::Reader::new(max_message);
        reader.set_time_fix(time_fix);
        Link { reader, received: 0, acked: 0, peer_window: 0 }
    }

    /// Bytes came from the peer (the acknowledgements count them all).
    pub fn count(&mut self, n: usize) {
        self.received += n as u64;
    }

    /// Handles a protocol or user control message (answering pings into `out`); false
    /// for any other message.
    pub fn control(&mut self, m: &Message, out: &mut BytesMut, chunk_size: usize) -> Result<bool, Error> {
        match m.type_id {
            msg::SET_CHUNK_SIZE => {
                let n = be32(&m.payload)?;
                if n == 0 || n > chunk::MAX_CHUNK_SIZE as u32 {
                    return Err(Error::BadChunkSize(n));
                }
                self.reader.set_chunk_size(n as usize);
            }
            msg::ABORT => self.reader.abort(be32(&m.payload)?),
            msg::ACK | msg::SET_PEER_BANDWIDTH => {}
            msg::WINDOW_ACK_SIZE => self.peer_window = be32(&m.payload)?,
            msg::USER_CONTROL => {
                if m.payload.len() < 2 {
                    return protocol("user control message too short");
                }
                let event = u16::from_be_bytes([m.payload[0], m.payload[1]]);
                // Only a ping needs an answer; SetBufferLength and the rest do not, live.
                if event == msg::UC_PING_REQUEST {
                    msg::user_control(out, msg::UC_PING_RESPONSE, be32(&m.payload[2..])?, chunk_size);
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Acknowledges what came once the peer's window of bytes is full.
    pub fn ack_if_due(&mut self, out: &mut BytesMut, chunk_size: usize) {
        if self.peer_window > 0 && self.received - self.acked >= self.peer_window as u64 {
            self.acked = self.received;
            msg::ack(out, self.received as u32, chunk_size);
        }
    }
}

pub struct Session {
    cfg: Config,
    state: State,
    hs: Vec<u8>,
    link: Link,
    out: BytesMut,
    events: VecDeque<Event>,
    connected: bool,
    connect_txid: f64,
    streams: Vec<u32>,
    next_msid: u32,
}

/// Splits "name?a=b" into ("name", "a=b").
/// Whether a `connect` command object announces Enhanced RTMP Opus audio.
fn announces_opus(obj: &Value) -> bool {
    let opus = |s: &str| s == "Opus" || s == "*";
    let in_list = match obj.get("fourCcList") {
        Some(Value::StrictArray(items)) => items.iter().any(|i| i.as_str().is_some_and(opus)),
        _ => false,
    };
    let in_map = match obj.get("audioFourCcInfoMap") {
        Some(Value::Object(p) | Value::EcmaArray(p)) => p.iter().any(|(k, _)| opus(k)),
        _ => false,
    };
    in_list || in_map
}

fn split_args(s: &str) -> (String, String) {
    match s.split_once('?') {
        Some((n, a)) => (n.to_owned(), a.to_owned()),
        None => (s.to_owned(), String::new()),
    }
}

impl Session {
    pub fn new(cfg: Config) -> Self {
        Session {
            link: Link::new(cfg.max_message, cfg.publish_time_fix),
            cfg,
            state: State::Handshake0,
            hs: Vec::new(),
            out: BytesMut::new(),
            events: VecDeque::new(),
            connected: false,
            connect_txid: 1.0,
            streams: Vec::new(),
            next_msid: 1,
        }
    }

    /// `publish_time_fix` of the application the client connected to.
    pub fn set_publish_time_fix(&mut self, on: bool) {
        self.link.reader.set_time_fix(on);
    }

    /// Whether the handshake is over.
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// Bytes to send to the client, if any.
    /// (The whole buffer goes, its spare capacity with it: a split would leave the rest of
    /// its allocation with the session, which kept the handshake's 3 kB per client for as
    /// long as the client stayed.)
    pub fn take_output(&mut self) -> Option<Bytes> {
        (!self.out.is_empty()).then(|| std::mem::take(&mut self.out).freeze())
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Takes bytes from the client. `now_ms` is any millisecond clock (for the handshake's
    /// time field), `seed` any varying number. An error means the client must be closed.
    pub fn feed(&mut self, mut data: &[u8], now_ms: u32, seed: u64) -> Result<(), Error> {
        self.link.count(data.len());
        while !data.is_empty() && self.state != State::Open {
            let need = match self.state {
                State::Handshake0 => 1 + handshake::SIZE,
                _ => handshake::SIZE,
            };
            // 3 is plain RTMP; 6 (RTMPE) and anything else is refused at its first byte.
            if self.state == State::Handshake0 && self.hs.is_empty() && data[0] != handshake::C0 {
                return Err(Error::BadVersion(data[0]));
            }
            let take = (need - self.hs.len()).min(data.len());
            self.hs.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.hs.len() < need {
                return Ok(());
            }
            match self.state {
                State::Handshake0 => {
                    let c1: &[u8; handshake::SIZE] = self.hs[1..].try_into().expect("C1 size");
                    let reply = handshake::respond(c1, now_ms, seed);
                    self.out.extend_from_slice(&reply);
                    self.state = State::Handshake2;
                }
                _ => self.state = State::Open,
            }
            if self.state == State::Open {
                self.hs = Vec::new();
            } else {
                self.hs.clear();
            }
        }
        if data.is_empty() {
            return Ok(());
        }
        self.link.reader.push(data);
        self.parse()
    }

    /// Once the handshake is done: the buffer to receive input into directly, with room
    /// for at least `room` bytes (then `received`). None during the handshake (`feed`).
    pub fn input(&mut self, room: usize) -> Option<&mut BytesMut> {
        (self.state == State::Open).then(|| self.link.reader.input(room))
    }

    /// Gives back the `input` buffer's memory if it holds nothing.
    pub fn shrink_input(&mut self) {
        self.link.reader.shrink_input();
    }

    /// Handles `n` bytes just appended to the `input` buffer.
    pub fn received(&mut self, n: usize) -> Result<(), Error> {
        self.link.count(n);
        self.parse()
    }

    fn parse(&mut self) -> Result<(), Error> {
        while let Some(m) = self.link.reader.read_message()? {
            self.message(m)?;
        }
        self.link.ack_if_due(&mut self.out, self.cfg.chunk_size);
        Ok(())
    }

    /// Sends a ping; the client should answer with a PingResponse (seen as any input).
    pub fn ping(&mut self, now_ms: u32) {
        msg::user_control(&mut self.out, msg::UC_PING_REQUEST, now_ms, self.cfg.chunk_size);
    }

    fn message(&mut self, m: Message) -> Result<(), Error> {
        if self.link.control(&m, &mut self.out, self.cfg.chunk_size)? {
            return Ok(());
        }
        match m.type_id {
            msg::COMMAND_AMF0 => self.command(&m.payload, m.msid)?,
            msg::COMMAND_AMF3 => {
                // An AMF3 command message is a 0 byte then AMF0 values.
                self.command(m.payload.get(1..).unwrap_or_default(), m.msid)?
            }
            msg::DATA_AMF0 => self.data(m.payload, m.msid, m.timestamp)?,
            msg::DATA_AMF3 => self.data(m.payload.slice(1.min(m.payload.len())..), m.msid, m.timestamp)?,
            msg::AUDIO | msg::VIDEO => {
                if !self.streams.contains(&m.msid) {
                    return protocol(format!("media on stream {} that was never created", m.msid));
                }
                let kind = if m.type_id == msg::AUDIO { MediaKind::Audio } else { MediaKind::Video };
                self.events.push_back(Event::Media { msid: m.msid, kind, timestamp: m.timestamp, payload: m.payload });
            }
            msg::AGGREGATE => self.aggregate(m)?,
            // Shared objects are not supported; ignore them as nginx-rtmp-module does.
            msg::SHARED_OBJECT_AMF0 | msg::SHARED_OBJECT_AMF3 => {}
            _ => {}
        }
        Ok(())
    }

    /// An aggregate message: FLV tags back to back, timestamps relative to the first.
    fn aggregate(&mut self, m: Message) -> Result<(), Error> {
        let mut body = m.payload.clone();
        let mut base: Option<u32> = None;
        while body.len() >= 11 {
            let type_id = body[0];
            let len = (body[1] as usize) << 16 | (body[2] as usize) << 8 | body[3] as usize;
            let ts = (body[7] as u32) << 24 | (body[4] as u32) << 16 | (body[5] as u32) << 8 | body[6] as u32;
            if body.len() < 11 + len + 4 {
                return protocol("truncated aggregate message");
            }
            let payload = body.slice(11..11 + len);
            body.advance(11 + len + 4);
            let first = *base.get_or_insert(ts);
            let timestamp = m.timestamp.wrapping_add(ts.wrapping_sub(first));
            self.message(Message { csid: m.csid, timestamp, type_id, msid: m.msid, payload })?;
        }
        Ok(())
    }

    fn data(&mut self, payload: Bytes, msid: u32, timestamp: u32) -> Result<(), Error> {
        let values = amf::Reader::new(&payload).read_all()?;
        let values = match values.first().and_then(Value::as_str) {
            // @setDataFrame onMetaData {...}: players get onMetaData {...}.
            Some("@setDataFrame") => values[1..].to_vec(),
            Some("onMetaData") => values,
            _ => return Ok(()),
        };
        if values.first().and_then(Value::as_str) != Some("onMetaData") || !self.streams.contains(&msid) {
            return Ok(());
        }
        let payload = msg::metadata_payload(&values);
        self.events.push_back(Event::Media { msid, kind: MediaKind::Data, timestamp, payload });
        Ok(())
    }

    fn command(&mut self, body: &[u8], msid: u32) -> Result<(), Error> {
        let mut r = amf::Reader::new(body);
        let name = match r.read()? {
            Value::String(s) => s,
            other => return protocol(format!("command name is not a string: {other:?}")),
        };
        let txid = if r.is_empty() { 0.0 } else { r.read()?.as_f64().unwrap_or(0.0) };
        let args = r.read_all()?;
        let arg_str = |i: usize| args.get(i).and_then(Value::as_str).unwrap_or("").to_owned();
        let arg_num = |i: usize, d: f64| args.get(i).and_then(Value::as_f64).unwrap_or(d);
        if name != "connect" && !self.connected {
            return protocol(format!("\"{name}\" before connect"));
        }
        let cs = self.cfg.chunk_size;
        match name.as_str() {
            "connect" => {
                if self.connected {
                    return protocol("second connect");
                }
                let obj = args.first().cloned().unwrap_or(Value::Null);
                let get = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                let (app, mut args) = split_args(get("app").trim_end_matches('/'));
                let tc_url = get("tcUrl");
                if args.is_empty() {
                    if let Some((_, a)) = tc_url.split_once('?') {
                        args = a.to_owned();
                    }
                }
                self.connect_txid = txid;
                self.connected = true;
                self.events.push_back(Event::Connect(ConnectInfo {
                    app,
                    args,
                    flash_ver: get("flashVer"),
                    swf_url: get("swfUrl"),
                    tc_url,
                    page_url: get("pageUrl"),
                    object_encoding: obj.get("objectEncoding").and_then(Value::as_f64).unwrap_or(0.0),
                    opus: announces_opus(&obj),
                }));
            }
            "createStream" => {
                if self.streams.len() >= self.cfg.max_streams as usize {
                    self.result(txid, "_error", Value::Null, Value::object(&[
                        ("level", Value::str("error")),
                        ("code", Value::str("NetConnection.Call.Failed")),
                        ("description", Value::str("too many streams")),
                    ]));
                    return Ok(());
                }
                let id = self.next_msid;
                self.next_msid += 1;
                self.streams.push(id);
                self.result(txid, "_result", Value::Null, Value::Number(id as f64));
            }
            "publish" => {
                self.check_stream(msid)?;
                let (name, a) = split_args(&arg_str(1));
                let kind = args.get(2).and_then(Value::as_str).unwrap_or("live").to_owned();
                self.events.push_back(Event::Publish { msid, name, args: a, kind });
            }
            "play" => {
                self.check_stream(msid)?;
                let (name, a) = split_args(&arg_str(1));
                let reset = matches!(args.get(4), Some(Value::Boolean(true)));
                self.events.push_back(Event::Play {
                    msid,
                    name,
                    args: a,
                    start: arg_num(2, 0.0),
                    duration: arg_num(3, 0.0),
                    reset,
                });
            }
            "deleteStream" => {
                let id = arg_num(1, 0.0) as u32;
                if let Some(i) = self.streams.iter().position(|&s| s == id) {
                    self.streams.remove(i);
                    self.events.push_back(Event::CloseStream { msid: id });
                }
            }
            "closeStream" if self.streams.contains(&msid) => self.events.push_back(Event::CloseStream { msid }),
            "pause" => {
                let pause = matches!(args.get(1), Some(Value::Boolean(true)));
                self.events.push_back(Event::Pause { msid, pause });
            }
            "seek" => {
                let ms = args.get(1).and_then(Value::as_f64).filter(|m| m.is_finite()).unwrap_or(0.0);
                self.events.push_back(Event::Seek { msid, ms });
            }
            "receiveAudio" | "receiveVideo" => {
                let kind = if name == "receiveAudio" { MediaKind::Audio } else { MediaKind::Video };
                let on = !matches!(args.get(1), Some(Value::Boolean(false)));
                self.events.push_back(Event::Receive { msid, kind, on });
            }
            n if n == msg::KEYFRAME_REQUEST && self.streams.contains(&msid) => self.events.push_back(Event::KeyframeRequest { msid }),
            "getStreamLength" => self.result(txid, "_result", Value::Null, Value::Number(0.0)),
            "FCPublish" => {
                let name = arg_str(1);
                msg::amf0(&mut self.out, msg::CSID_COMMAND, msg::COMMAND_AMF0, 0, &[
                    Value::str("onFCPublish"),
                    Value::Number(0.0),
                    Value::Null,
                    Value::object(&[("code", Value::str("NetStream.Publish.Start")), ("description", Value::str(&name))]),
                ], cs);
            }
            // Nothing to answer: releaseStream, FCUnpublish, FCSubscribe, receiveAudio/Video, _checkbw …
            _ => {}
        }
        Ok(())
    }

    fn check_stream(&self, msid: u32) -> Result<(), Error> {
        if self.streams.contains(&msid) {
            Ok(())
        } else {
            protocol(format!("stream {msid} was never created"))
        }
    }

    fn result(&mut self, txid: f64, name: &str, a: Value, b: Value) {
        msg::amf0(&mut self.out, msg::CSID_COMMAND, msg::COMMAND_AMF0, 0, &[Value::str(name), Value::Number(txid), a, b], self.cfg.chunk_size);
    }

    /// Accepts `connect`: window, bandwidth, our chunk size, then `_result`.
    pub fn accept_connect(&mut self) {
        let cs = self.cfg.chunk_size;
        msg::window_ack_size(&mut self.out, self.cfg.ack_window, chunk::DEFAULT_CHUNK_SIZE);
        msg::set_peer_bandwidth(&mut self.out, self.cfg.ack_window, 2, chunk::DEFAULT_CHUNK_SIZE);
        msg::set_chunk_size(&mut self.out, cs as u32, chunk::DEFAULT_CHUNK_SIZE);
        let txid = self.connect_txid;
        self.result(
            txid,
            "_result",
            Value::object(&[("fmsVer", Value::str("FMS/3,0,1,123")), ("capabilities", Value::Number(31.0))]),
            Value::object(&[
                ("level", Value::str("status")),
                ("code", Value::str("NetConnection.Connect.Success")),
                ("description", Value::str("Connection succeeded.")),
                ("objectEncoding", Value::Number(0.0)),
            ]),
        );
    }

    /// Refuses `connect` (the caller closes the connection after sending).
    pub fn reject_connect(&mut self, description: &str) {
        let txid = self.connect_txid;
        self.result(
            txid,
            "_error",
            Value::Null,
            Value::object(&[
                ("level", Value::str("error")),
                ("code", Value::str("NetConnection.Connect.Rejected")),
                ("description", Value::str(description)),
            ]),
        );
    }

    pub fn accept_publish(&mut self, msid: u32, name: &str) {
        let cs = self.cfg.chunk_size;
        msg::user_control(&mut self.out, msg::UC_STREAM_BEGIN, msid, cs);
        msg::on_status(&mut self.out, msid, "status", "NetStream.Publish.Start", &format!("{name} is now published."), cs);
    }

    /// Sends an `onStatus` on a stream (errors: the caller closes after sending).
    pub fn status(&mut self, msid: u32, level: &str, code: &str, description: &str) {
        msg::on_status(&mut self.out, msid, level, code, description, self.cfg.chunk_size);
    }

    /// Answers `pause`: `NetStream.Pause.Notify` / `NetStream.Unpause.Notify`.
    pub fn paused(&mut self, msid: u32, pause: bool) {
        let (code, what) = if pause { ("NetStream.Pause.Notify", "Paused") } else { ("NetStream.Unpause.Notify", "Unpaused") };
        msg::on_status(&mut self.out, msid, "status", code, &format!("{what} live"), self.cfg.chunk_size);
    }

    /// A file's player went to `ms` (`seek`): the stream restarts there.
    pub fn seeked(&mut self, msid: u32, ms: u32) {
        let cs = self.cfg.chunk_size;
        msg::user_control(&mut self.out, msg::UC_STREAM_EOF, msid, cs);
        msg::user_control(&mut self.out, msg::UC_STREAM_BEGIN, msid, cs);
        msg::on_status(&mut self.out, msid, "status", "NetStream.Seek.Notify", &format!("Seeking {ms}."), cs);
        msg::on_status(&mut self.out, msid, "status", "NetStream.Play.Start", "Start playing.", cs);
    }

    /// A file's player reached its end.
    pub fn play_stopped(&mut self, msid: u32) {
        let cs = self.cfg.chunk_size;
        msg::on_status(&mut self.out, msid, "status", "NetStream.Play.Stop", "Stopped playing.", cs);
        msg::user_control(&mut self.out, msg::UC_STREAM_EOF, msid, cs);
    }

    /// A frame of a file for its player (on message stream `msid`).
    pub fn media_out(&mut self, msid: u32, kind: MediaKind, ts: u32, body: &[u8]) {
        let (csid, type_id) = match kind {
            MediaKind::Audio => (msg::CSID_AUDIO, msg::AUDIO),
            MediaKind::Video => (msg::CSID_VIDEO, msg::VIDEO),
            MediaKind::Data => (msg::CSID_DATA, msg::DATA_AMF0),
        };
        chunk::write(&mut self.out, csid, ts, type_id, msid, body, self.cfg.chunk_size);
    }

    pub fn accept_play(&mut self, msid: u32, name: &str) {
        let cs = self.cfg.chunk_size;
        msg::user_control(&mut self.out, msg::UC_STREAM_IS_RECORDED, msid, cs);
        msg::user_control(&mut self.out, msg::UC_STREAM_BEGIN, msid, cs);
        msg::on_status(&mut self.out, msid, "status", "NetStream.Play.Reset", &format!("Playing and resetting {name}."), cs);
        msg::on_status(&mut self.out, msid, "status", "NetStream.Play.Start", &format!("Started playing {name}."), cs);
        msg::amf0(&mut self.out, msg::CSID_DATA, msg::DATA_AMF0, msid, &[
            Value::str("|RtmpSampleAccess"),
            Value::Boolean(true),
            Value::Boolean(true),
        ], cs);
    }

    /// Tells a player its stream's publisher left: stream EOF, then (`publish_notify`)
    /// `NetStream.Play.UnpublishNotify` and (`play_restart`) `NetStream.Play.Stop`.
    pub fn unpublished(&mut self, msid: u32, name: &str, notify: bool, restart: bool) {
        self.stream_changed(msid, msg::UC_STREAM_EOF, [
            (notify, "NetStream.Play.UnpublishNotify", format!("{name} is now unpublished.")),
            (restart, "NetStream.Play.Stop", format!("Stopped playing {name}.")),
        ]);
    }

    /// Tells a waiting player that a publisher started its stream: stream begin, then
    /// (`publish_notify`) `NetStream.Play.PublishNotify` and (`play_restart`) `NetStream.Play.Start`.
    pub fn published(&mut self, msid: u32, name: &str, notify: bool, restart: bool) {
        self.stream_changed(msid, msg::UC_STREAM_BEGIN, [
            (notify, "NetStream.Play.PublishNotify", format!("{name} is now published.")),
            (restart, "NetStream.Play.Start", format!("Started playing {name}.")),
        ]);
    }

    /// A user control event for the stream, then the statuses that are switched on.
    fn stream_changed(&mut self, msid: u32, event: u16, statuses: [(bool, &str, String); 2]) {
        let cs = self.cfg.chunk_size;
        msg::user_control(&mut self.out, event, msid, cs);
        for (on, code, description) in statuses {
            if on {
                msg::on_status(&mut self.out, msid, "status", code, &description, cs);
            }
        }
    }
}

#[cfg(test)]
mod tests;
