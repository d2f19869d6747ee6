//! One RTMP connection, client side, as a state machine (for relays): the plain
//! handshake, `connect`, `createStream`, then `publish` or `play` of one stream. Bytes from
//! the server go in (`feed`); bytes for it (`take_output`) and events (`poll_event`) come
//! out: `Ready` once the server started the stream, then (playing) its media.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use super::amf::{self, Value};
use super::chunk::{self, Message};
use super::handshake::{C0, SIZE};
use super::message::{self as msg, MediaKind};
use super::session::{Error, Link};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Publish,
    Play,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ClientEvent {
    /// The server accepted: media may flow on stream `msid`.
    Ready { msid: u32 },
    /// Media of the stream being played.
    Media { kind: MediaKind, timestamp: u32, payload: Bytes },
    /// The server refused or ended the stream (its status code or error).
    Failed(String),
    /// The server asks the publisher for a keyframe (`message::KEYFRAME_REQUEST`).
    KeyframeRequest,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// C0 C1 sent, waiting for S0 S1 S2.
    Handshake,
    Connecting,
    CreatingStream,
    Starting,
    Ready,
}

pub struct Client {
    mode: Mode,
    app: String,
    tc_url: String,
    stream: String,
    flash_ver: String,
    page_url: String,
    swf_url: String,
    fourcc: Vec<String>,
    /// What `play` asks for: its start (ms; -1000 live only, -2000 live or recorded) and
    /// duration (ms; None: to the end).
    start: f64,
    duration: Option<f64>,
    chunk_size: usize,
    state: State,
    hs: Vec<u8>,
    link: Link,
    out: BytesMut,
    events: VecDeque<ClientEvent>,
    msid: u32,
}

/// `rtmp://HOST[:PORT]/APP/STREAM` split into (host, port, app, stream): the stream is
/// the last path element, the application all before it.
pub fn parse_url(url: &str) -> Option<(String, u16, String, String)> {
    let rest = url.get(..7).filter(|s| s.eq_ignore_ascii_case("rtmp://")).map(|_| &url[7..])?;
    let (authority, path) = rest.split_once('/')?;
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (h, p.parse().ok()?),
        _ => (authority, 1935),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let (app, stream) = path.rsplit_once('/')?;
    if host.is_empty() || app.is_empty() || stream.is_empty() || port == 0 {
        return None;
    }
    Some((host.to_owned(), port, app.to_owned(), stream.to_owned()))
}

impl Client {
    /// Starts a connection to `tc_url`'s application `app` to publish or play `stream`;
    /// `chunk_size` is the size our media is chunked at. C0 C1 are ready to send.
    pub fn new(mode: Mode, app: &str, tc_url: &str, stream: &str, chunk_size: usize, max_message: usize, seed: u64) -> Self {
        let mut out = BytesMut::with_capacity(1 + SIZE);
        out.extend_from_slice(&[C0]);
        // C1: time, zero version (the plain handshake every server accepts), noise.
        out.extend_from_slice(&[0u8; 8]);
        let mut x = seed | 1;
        for _ in 0..(SIZE - 8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.extend_from_slice(&[x as u8]);
        }
        Client {
            mode,
            app: app.to_owned(),
            tc_url: tc_url.to_owned(),
            stream: stream.to_owned(),
            flash_ver: "ngx-rtmp-rs relay".to_owned(),
            page_url: String::new(),
            swf_url: String::new(),
            fourcc: Vec::new(),
            start: -1000.0,
            duration: None,
            chunk_size,
            state: State::Handshake,
            hs: Vec::new(),
            link: Link::new(max_message, true),
            out,
            events: VecDeque::new(),
            msid: 0,
        }
    }

    /// The `flashVer` sent in `connect` (what `/stat` and `on_connect` show for us).
    pub fn with_flash_ver(mut self, flash_ver: &str) -> Self {
        self.flash_ver = flash_ver.to_owned();
        self
    }

    /// Enhanced RTMP's `fourCcList` in `connect`: the codecs this player takes besides the
    /// legacy ones (a WHEP viewer announces `Opus`, so a WHIP stream's Opus reaches it as is).
    pub fn with_fourcc(mut self, list: &[&str]) -> Self {
        self.fourcc = list.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// `pageUrl` and `swfUrl` for `connect` (left out when empty).
    pub fn with_urls(mut self, page_url: &str, swf_url: &str) -> Self {
        self.page_url = page_url.to_owned();
        self.swf_url = swf_url.to_owned();
        self
    }

    /// What a pull's `play` asks for (nginx-rtmp-module's `live=`, `start=`, `stop=`): live
    /// only unless `live` is false or a start is given; `stop` ends it there.
    pub fn with_range(mut self, live: Option<bool>, start: Option<i64>, stop: Option<i64>) -> Self {
        self.start = match (start, live) {
            (Some(s), _) => s as f64,
            (None, Some(false)) => -2000.0,
            _ => -1000.0,
        };
        self.duration = stop.map(|e| (e - start.unwrap_or(0).max(0)).max(0) as f64);
        self
    }

    pub fn take_output(&mut self) -> Option<Bytes> {
        (!self.out.is_empty()).then(|| std::mem::take(&mut self.out).freeze())
    }

    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// A player asks the server for a keyframe (`message::KEYFRAME_REQUEST`), which asks
    /// the stream's WHIP publisher.
    pub fn request_keyframe(&mut self) {
        if self.mode == Mode::Play && self.state == State::Ready {
            self.command(self.msid, &[Value::str(msg::KEYFRAME_REQUEST), Value::Number(0.0), Value::Null]);
        }
    }

    fn command(&mut self, msid: u32, values: &[Value]) {
        msg::amf0(&mut self.out, msg::CSID_COMMAND, msg::COMMAND_AMF0, msid, values, self.chunk_size);
    }

    /// Bytes from the server. An error means the connection must be closed.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), Error> {
        self.link.count(data.len());
        if self.state == State::Handshake {
            let need = 1 + 2 * SIZE;
            let take = (need - self.hs.len()).min(data.len());
            self.hs.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.hs.len() < need {
                return Ok(());
            }
            if self.hs[0] != C0 {
                return Err(Error::BadVersion(self.hs[0]));
            }
            // C2 echoes S1.
            self.out.extend_from_slice(&self.hs[1..1 + SIZE]);
            self.hs = Vec::new();
            msg::set_chunk_size(&mut self.out, self.chunk_size as u32, chunk::DEFAULT_CHUNK_SIZE);
            let mut fields = vec![
                ("app", Value::str(&self.app)),
                ("type", Value::str("nonprivate")),
                ("flashVer", Value::str(&self.flash_ver)),
                ("tcUrl", Value::str(&self.tc_url)),
            ];
            if !self.swf_url.is_empty() {
                fields.push(("swfUrl", Value::str(&self.swf_url)));
            }
            if !self.page_url.is_empty() {
                fields.push(("pageUrl", Value::str(&self.page_url)));
            }
            if !self.fourcc.is_empty() {
                fields.push(("fourCcList", Value::StrictArray(self.fourcc.iter().map(|f| Value::str(f)).collect())));
            }
            let connect = Value::object(&fields);
            self.command(0, &[Value::str("connect"), Value::Number(1.0), connect]);
            self.state = State::Connecting;
        }
        self.link.reader.push(data);
        while let Some(m) = self.link.reader.read_message()? {
            self.message(m)?;
        }
        self.link.ack_if_due(&mut self.out, self.chunk_size);
        Ok(())
    }

    fn message(&mut self, m: Message) -> Result<(), Error> {
        if self.link.control(&m, &mut self.out, self.chunk_size)? {
            return Ok(());
        }
        match m.type_id {
            msg::COMMAND_AMF0 => self.command_reply(&m.payload)?,
            msg::COMMAND_AMF3 => self.command_reply(m.payload.get(1..).unwrap_or_default())?,
            msg::AUDIO | msg::VIDEO | msg::DATA_AMF0 if self.state == State::Ready && self.mode == Mode::Play => {
                let kind = match m.type_id {
                    msg::AUDIO => MediaKind::Audio,
                    msg::VIDEO => MediaKind::Video,
                    _ => MediaKind::Data,
                };
                if kind == MediaKind::Data {
                    // Only metadata goes on (not |RtmpSampleAccess and the like).
                    let first = amf::Reader::new(&m.payload).read().ok();
                    if first.as_ref().and_then(Value::as_str) != Some("onMetaData") {
                        return Ok(());
                    }
                }
                self.events.push_back(ClientEvent::Media { kind, timestamp: m.timestamp, payload: m.payload });
            }
            _ => {}
        }
        Ok(())
    }

    fn command_reply(&mut self, body: &[u8]) -> Result<(), Error> {
        let values = amf::Reader::new(body).read_all()?;
        let name = values.first().and_then(Value::as_str).unwrap_or("");
        let txid = values.get(1).and_then(Value::as_f64).unwrap_or(0.0);
        let info = values.iter().skip(2).find(|v| v.get("code").is_some());
        let code = info.and_then(|i| i.get("code")).and_then(Value::as_str).unwrap_or("").to_owned();
        if name == msg::KEYFRAME_REQUEST && self.state == State::Ready && self.mode == Mode::Publish {
            self.events.push_back(ClientEvent::KeyframeRequest);
            return Ok(());
        }
        match (name, self.state) {
            ("_result", State::Connecting) if txid == 1.0 => {
                self.command(0, &[Value::str("createStream"), Value::Number(2.0), Value::Null]);
                self.state = State::CreatingStream;
            }
            ("_result", State::CreatingStream) if txid == 2.0 => {
                let id = values.get(3).and_then(Value::as_f64).unwrap_or(0.0);
                if !(1.0..=65535.0).contains(&id) {
                    return Err(Error::Protocol(format!("createStream answered stream id {id}")));
                }
                self.msid = id as u32;
                let start = match self.mode {
                    Mode::Publish => vec![Value::str("publish"), Value::Number(0.0), Value::Null, Value::str(&self.stream), Value::str("live")],
                    Mode::Play => {
                        let mut v = vec![Value::str("play"), Value::Number(0.0), Value::Null, Value::str(&self.stream), Value::Number(self.start)];
                        v.extend(self.duration.map(Value::Number));
                        v
                    }
                };
                msg::amf0(&mut self.out, 8, msg::COMMAND_AMF0, self.msid, &start, self.chunk_size);
                self.state = State::Starting;
            }
            ("_error", _) => self.events.push_back(ClientEvent::Failed(if code.is_empty() { "_error".into() } else { code })),
            ("onStatus", _) => {
                let level = info.and_then(|i| i.get("level")).and_then(Value::as_str).unwrap_or("");
                let started = matches!(code.as_str(), "NetStream.Publish.Start" | "NetStream.Play.Start");
                if started && self.state == State::Starting {
                    self.state = State::Ready;
                    self.events.push_back(ClientEvent::Ready { msid: self.msid });
                } else if level == "error" || (self.mode == Mode::Play && code == "NetStream.Play.UnpublishNotify") {
                    self.events.push_back(ClientEvent::Failed(code));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtmp::session::{Config, Event, Session};

    /// Runs a client against our own server session until neither has anything to say.
    fn pump(c: &mut Client, s: &mut Session, server_events: &mut Vec<Event>) {
        for _ in 0..20 {
            let mut moved = false;
            if let Some(b) = c.take_output() {
                s.feed(&b, 0, 7).unwrap();
                moved = true;
            }
            while let Some(e) = s.poll_event() {
                match &e {
                    Event::Connect(_) => s.accept_connect(),
                    Event::Publish { msid, name, .. } => s.accept_publish(*msid, name),
                    Event::Play { msid, name, .. } => s.accept_play(*msid, name),
                    _ => {}
                }
                server_events.push(e);
            }
            if let Some(b) = s.take_output() {
                c.feed(&b).unwrap();
                moved = true;
            }
            if !moved {
                break;
            }
        }
    }

    #[test]
    fn publishes_to_our_server() {
        let mut c = Client::new(Mode::Publish, "live", "rtmp://127.0.0.1/live", "key", 4096, 1 << 20, 42);
        let mut s = Session::new(Config::default());
        let mut ev = vec![];
        pump(&mut c, &mut s, &mut ev);
        assert!(matches!(&ev[0], Event::Connect(i) if i.app == "live" && i.tc_url == "rtmp://127.0.0.1/live"));
        assert!(ev.iter().any(|e| matches!(e, Event::Publish { name, kind, .. } if name == "key" && kind == "live")));
        assert_eq!(c.poll_event(), Some(ClientEvent::Ready { msid: 1 }));
        // Media chunked at our size reaches the server as media of that stream.
        let frame = chunk::encode(msg::CSID_VIDEO, 40, msg::VIDEO, 1, &[0x17, 1, 0, 0, 0, 9, 9], 4096);
        s.feed(&frame, 0, 7).unwrap();
        assert!(matches!(s.poll_event(), Some(Event::Media { kind: MediaKind::Video, timestamp: 40, .. })));
    }

    #[test]
    fn plays_from_our_server() {
        let mut c = Client::new(Mode::Play, "live", "rtmp://h/live", "key", 4096, 1 << 20, 42);
        let mut s = Session::new(Config::default());
        let mut ev = vec![];
        pump(&mut c, &mut s, &mut ev);
        assert!(ev.iter().any(|e| matches!(e, Event::Play { name, .. } if name == "key")));
        assert_eq!(c.poll_event(), Some(ClientEvent::Ready { msid: 1 }));
        let meta = amf::encode(&[Value::str("onMetaData"), Value::object(&[("width", Value::Number(1.0))])]);
        let mut bytes = BytesMut::new();
        chunk::write(&mut bytes, 5, 0, msg::DATA_AMF0, 1, &meta, 4096);
        chunk::write(&mut bytes, 6, 20, msg::AUDIO, 1, &[0xaf, 1, 2], 4096);
        c.feed(&bytes).unwrap();
        assert!(matches!(c.poll_event(), Some(ClientEvent::Media { kind: MediaKind::Data, .. })));
        assert!(matches!(c.poll_event(), Some(ClientEvent::Media { kind: MediaKind::Audio, timestamp: 20, .. })));
    }

    #[test]
    fn urls() {
        assert_eq!(parse_url("rtmp://127.0.0.1:1936/live/key"), Some(("127.0.0.1".into(), 1936, "live".into(), "key".into())));
        assert_eq!(parse_url("RTMP://10.0.0.1/a/b/c"), Some(("10.0.0.1".into(), 1935, "a/b".into(), "c".into())));
        for bad in ["http://x/a/b", "rtmp://x/a", "rtmp://:1/a/b", "rtmp://x:0/a/b", "rtmp://x/a/"] {
            assert_eq!(parse_url(bad), None, "{bad}");
        }
    }

    #[test]
    fn garbage_from_a_server_is_an_error_not_a_panic() {
        let mut seed = 7u64;
        for round in 0..300 {
            let mut c = Client::new(Mode::Play, "a", "rtmp://h/a", "s", 128, 1 << 16, round);
            let mut data = vec![3u8];
            data.resize(1 + 2 * SIZE, 0);
            let _ = c.feed(&data);
            let junk: Vec<u8> = (0..(round % 500) as usize)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let _ = c.feed(&junk);
            while c.poll_event().is_some() {}
        }
    }
}
