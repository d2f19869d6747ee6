//! Live streams of one worker: who publishes what, who plays it, and the fan-out of every
//! frame to every player. Single-threaded, no I/O: operations return what to send to whom
//! (`Send`), and the caller (the nginx glue) queues and writes it.
//!
//! Each frame is chunked once per (message stream id) and the same reference-counted
//! buffer goes to every player, so a frame costs one encoding however many watch it.
//! A new player gets the metadata and codec headers, then the cached current GOP (from
//! the last keyframe), so its picture starts at once and on a keyframe.
//!
//! A stream may carry its audio twice: AAC (legacy FLV) and Opus (Enhanced RTMP), as WHIP
//! publishes it. Then players that announced Enhanced RTMP Opus get the Opus track and the
//! others the AAC one; each gets one audio codec.

mod slab;
pub mod fanout;

use std::collections::HashMap;

use bytes::Bytes;

pub use crate::media::Frame;
use crate::media::MediaKind;
use crate::rtmp::chunk;

pub use slab::Slab;

pub type ConnId = u64;

/// A stream's identity: (server index, application, stream name).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct StreamKey {
    pub server: usize,
    pub app: String,
    pub name: String,
}

/// What the caller must do.
#[derive(Debug, PartialEq)]
pub enum Out {
    /// Queue bytes for a connection.
    Send(ConnId, Bytes),
    /// Queue a new player's start-up burst (metadata, codec headers, cached GOP): buffers
    /// shared with every other player, and not live output (not counted in `out_queue`).
    Burst(ConnId, Vec<Bytes>),
    /// Tell a player its stream's publisher left (`NetStream.Play.UnpublishNotify`).
    Unpublished { conn: ConnId, msid: u32 },
    /// Tell a waiting player that its stream is now published.
    Published { conn: ConnId, msid: u32 },
}

impl Out {
    /// The connection this is for.
    pub fn conn(&self) -> ConnId {
        match self {
            Out::Send(id, _) | Out::Burst(id, _) | Out::Unpublished { conn: id, .. } | Out::Published { conn: id, .. } => *id,
        }
    }
}

/// A frame kept for new players: the chunked encoding made for the players the stream had
/// (for message stream id `msid`, shared by every player that joins; no second copy of the
/// payload is held), or, while the stream had no player (an HLS-only stream, say), the
/// frame itself, encoded when a player first needs it: no copy per frame for nobody.
#[derive(Clone, Debug)]
enum Kept {
    Encoded { encoded: Bytes, msid: u32 },
    Raw(Frame),
}

impl Kept {
    fn bytes(&mut self, msid: u32, settings: &Settings) -> Bytes {
        let (encoded, from) = match self {
            Kept::Encoded { encoded, msid: from } => (encoded.clone(), *from),
            Kept::Raw(f) => {
                let e = encode(f, msid, settings);
                *self = Kept::Encoded { encoded: e.clone(), msid };
                (e, msid)
            }
        };
        with_msid(&encoded, from, msid)
    }
}

#[derive(Clone, Debug)]
pub struct Settings {
    /// Keep the current GOP for instant start of new players.
    pub gop_cache: bool,
    /// Most bytes a GOP cache holds; beyond, the cache is dropped until the next keyframe.
    pub gop_max_bytes: usize,
    /// Our chunk size towards players.
    pub chunk_size: usize,
    /// Players get no audio before their first video keyframe (`wait_video`).
    pub wait_video: bool,
    /// Audio and video on one chunk stream (`interleave`).
    pub interleave: bool,
    /// The player takes Enhanced RTMP Opus (it said so in `connect`).
    pub opus_audio: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { gop_cache: true, gop_max_bytes: 32 << 20, chunk_size: 4096, wait_video: false, interleave: false, opus_audio: false }
    }
}

impl Settings {
    fn csid(&self, kind: MediaKind) -> u32 {
        if self.interleave && kind == MediaKind::Audio {
            MediaKind::Video.csid()
        } else {
            kind.csid()
        }
    }
}

struct Player {
    conn: ConnId,
    msid: u32,
    /// Has received a video keyframe (or the stream has no video yet).
    started: bool,
    /// `pause`d: gets nothing until it resumes (then from a keyframe).
    paused: bool,
    /// `receiveAudio false` / `receiveVideo false`.
    no_audio: bool,
    no_video: bool,
    /// Gets the Enhanced RTMP audio track of a stream that has two.
    opus: bool,
}

/// Which audio track a frame belongs to (video and data: both).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Track {
    Both,
    Legacy,
    Ex,
}

impl Track {
    fn of(f: &Frame) -> Track {
        match f.kind {
            MediaKind::Audio if f.ex => Track::Ex,
            MediaKind::Audio => Track::Legacy,
            _ => Track::Both,
        }
    }
}

impl Player {
    /// Whether the player takes a frame of `track` (of a stream with two audio tracks).
    fn takes(&self, track: Track) -> bool {
        match track {
            Track::Both => true,
            Track::Legacy => !self.opus,
            Track::Ex => self.opus,
        }
    }
}

#[derive(Default)]
struct Stream {
    publisher: Option<ConnId>,
    players: Vec<Player>,
    meta: Option<Kept>,
    video_header: Option<Kept>,
    audio_header: Option<Kept>,
    /// The Enhanced RTMP audio codec header, when the stream also has legacy audio.
    audio_header_ex: Option<Kept>,
    /// Frames since the last video keyframe (empty while none was seen or it overflowed).
    gop: Vec<(Kept, Track)>,
    gop_bytes: usize,
    has_video: bool,
    /// Legacy (AAC, MP3...) and Enhanced RTMP audio came: two audio tracks.
    legacy_audio: bool,
    ex_audio: bool,
}

impl Stream {
    fn two_audio_tracks(&self) -> bool {
        self.legacy_audio && self.ex_audio
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum PublishError {
    /// Somebody already publishes this stream.
    Busy,
}

#[derive(Default)]
pub struct Hub {
    streams: HashMap<StreamKey, Stream>,
}

fn encode(frame: &Frame, msid: u32, settings: &Settings) -> Bytes {
    chunk::encode(settings.csid(frame.kind), frame.timestamp, frame.kind.type_id(), msid, &frame.payload, settings.chunk_size)
}

/// Where the message stream id sits in our encodings: after a 1-byte basic header (our
/// chunk stream ids are all below 64) and timestamp, length and type (7 bytes).
const MSID_AT: usize = 8;

/// The same chunked message for another message stream id: the id appears only in the
/// type 0 header, so a copy with those 4 bytes changed (or the same buffer if equal).
fn with_msid(encoded: &Bytes, from: u32, to: u32) -> Bytes {
    if from == to {
        return encoded.clone();
    }
    let mut b = encoded.to_vec();
    b[MSID_AT..MSID_AT + 4].copy_from_slice(&to.to_le_bytes());
    Bytes::from(b)
}

impl Hub {
    pub fn new() -> Self {
        Hub::default()
    }

    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    pub fn publisher(&self, key: &StreamKey) -> Option<ConnId> {
        self.streams.get(key).and_then(|s| s.publisher)
    }

    /// Whether `key` carries its audio twice (AAC and Enhanced RTMP): what is not the
    /// legacy track is for Enhanced RTMP players only (not for HLS or recordings).
    pub fn two_audio_tracks(&self, key: &StreamKey) -> bool {
        self.streams.get(key).is_some_and(Stream::two_audio_tracks)
    }

    pub fn player_count(&self, key: &StreamKey) -> usize {
        self.streams.get(key).map_or(0, |s| s.players.len())
    }

    /// Starts publishing `key` from `conn`; players already waiting are told.
    pub fn publish(&mut self, key: &StreamKey, conn: ConnId, out: &mut Vec<Out>) -> Result<(), PublishError> {
        let s = self.streams.entry(key.clone()).or_default();
        if s.publisher.is_some() {
            return Err(PublishError::Busy);
        }
        s.publisher = Some(conn);
        for p in &mut s.players {
            p.started = false;
            out.push(Out::Published { conn: p.conn, msid: p.msid });
        }
        Ok(())
    }

    /// Ends publishing (the publisher left or closed its stream); players stay, waiting.
    pub fn unpublish(&mut self, key: &StreamKey, conn: ConnId, out: &mut Vec<Out>) {
        let Some(s) = self.streams.get_mut(key) else { return };
        if s.publisher != Some(conn) {
            return;
        }
        s.publisher = None;
        s.meta = None;
        s.video_header = None;
        s.audio_header = None;
        s.audio_header_ex = None;
        s.gop.clear();
        s.gop_bytes = 0;
        s.has_video = false;
        s.legacy_audio = false;
        s.ex_audio = false;
        for p in &s.players {
            out.push(Out::Unpublished { conn: p.conn, msid: p.msid });
        }
        if s.players.is_empty() {
            self.streams.remove(key);
        }
    }

    /// Adds a player. If the stream is live, it gets metadata, codec headers and the
    /// cached GOP at once, in one buffer.
    pub fn play(&mut self, key: &StreamKey, conn: ConnId, msid: u32, settings: &Settings, out: &mut Vec<Out>) {
        let s = self.streams.entry(key.clone()).or_default();
        let mut burst = Vec::new();
        let mut started = !s.has_video;
        let player = Player { conn, msid, started, paused: false, no_audio: false, no_video: false, opus: settings.opus_audio };
        if s.publisher.is_some() {
            let two = s.two_audio_tracks();
            let audio_header = if two && player.opus { &mut s.audio_header_ex } else { &mut s.audio_header };
            for k in [&mut s.meta, &mut s.video_header, audio_header].into_iter().flatten() {
                burst.push(k.bytes(msid, settings));
            }
            if !two {
                // (An Enhanced RTMP audio header kept before legacy audio came.)
                if let Some(k) = s.audio_header_ex.as_mut() {
                    burst.push(k.bytes(msid, settings));
                }
            }
            if settings.gop_cache && !s.gop.is_empty() {
                burst.extend(s.gop.iter_mut().filter(|(_, t)| !two || player.takes(*t)).map(|(k, _)| k.bytes(msid, settings)));
                started = true;
            }
        }
        s.players.push(Player { started, ..player });
        if !burst.is_empty() {
            out.push(Out::Burst(conn, burst));
        }
    }

    /// Pauses or resumes a player (`pause`); a resumed player restarts on a keyframe.
    pub fn pause(&mut self, key: &StreamKey, conn: ConnId, pause: bool) {
        if let Some(p) = self.player_mut(key, conn) {
            p.paused = pause;
            p.started = false;
        }
    }

    /// `receiveAudio` / `receiveVideo`.
    pub fn receive(&mut self, key: &StreamKey, conn: ConnId, kind: MediaKind, on: bool) {
        if let Some(p) = self.player_mut(key, conn) {
            match kind {
                MediaKind::Audio => p.no_audio = !on,
                MediaKind::Video => {
                    p.no_video = !on;
                    p.started = false;
                }
                MediaKind::Data => {}
            }
        }
    }

    fn player_mut(&mut self, key: &StreamKey, conn: ConnId) -> Option<&mut Player> {
        self.streams.get_mut(key)?.players.iter_mut().find(|p| p.conn == conn)
    }

    /// Whether a player joining `key` now would start at once (a cached GOP).
    pub fn has_gop(&self, key: &StreamKey) -> bool {
        self.streams.get(key).is_some_and(|s| !s.gop.is_empty())
    }

    /// Whether `key` has a publisher now.
    pub fn is_live(&self, key: &StreamKey) -> bool {
        self.publisher(key).is_some()
    }

    /// Removes a player.
    pub fn stop_play(&mut self, key: &StreamKey, conn: ConnId) {
        let Some(s) = self.streams.get_mut(key) else { return };
        s.players.retain(|p| p.conn != conn);
        if s.players.is_empty() && s.publisher.is_none() {
            self.streams.remove(key);
        }
    }

    /// A frame from the publisher of `key`: remembered as needed and sent to every player.
    pub fn media(&mut self, key: &StreamKey, conn: ConnId, frame: Frame, settings: &Settings, out: &mut Vec<Out>) {
        let Some(s) = self.streams.get_mut(key) else { return };
        if s.publisher != Some(conn) {
            return;
        }
        let header = frame.is_header();
        let track = Track::of(&frame);
        match track {
            Track::Both if frame.kind == MediaKind::Video => s.has_video = true,
            Track::Legacy => s.legacy_audio = true,
            Track::Ex => s.ex_audio = true,
            Track::Both => {}
        }
        let two = s.two_audio_tracks();
        // Fan-out: one encoding (for the first player's stream id), shared by every player
        // on that id; players on other ids get a copy with the id patched. No player: no
        // encoding at all.
        let base_msid = s.players.first().map_or(1, |p| p.msid);
        let base = (!s.players.is_empty()).then(|| encode(&frame, base_msid, settings));
        let mut encoded: Vec<(u32, Bytes)> = base.iter().map(|b| (base_msid, b.clone())).collect();
        for p in &mut s.players {
            let skip = p.paused
                || (frame.kind == MediaKind::Audio && p.no_audio)
                || (frame.kind == MediaKind::Video && p.no_video)
                || (two && !p.takes(track));
            if skip {
                continue;
            }
            if !p.started {
                // Until its first keyframe a player gets codec headers only (and, unless
                // wait_video, audio).
                let waits = match frame.kind {
                    MediaKind::Video => !frame.keyframe && !header,
                    MediaKind::Audio => settings.wait_video && s.has_video && !header,
                    MediaKind::Data => false,
                };
                if waits {
                    continue;
                }
                p.started = frame.kind == MediaKind::Video && frame.keyframe;
            }
            let bytes = match encoded.iter().find(|(m, _)| *m == p.msid) {
                Some((_, b)) => b.clone(),
                None => {
                    let b = with_msid(&encoded[0].1, base_msid, p.msid);
                    encoded.push((p.msid, b.clone()));
                    b
                }
            };
            out.push(Out::Send(p.conn, bytes));
        }

        // Remember what new players need, sharing the encoding just made.
        let keep = || match &base {
            Some(b) => Kept::Encoded { encoded: b.clone(), msid: base_msid },
            None => Kept::Raw(frame.clone()),
        };
        match frame.kind {
            MediaKind::Data => s.meta = Some(keep()),
            MediaKind::Video if header => s.video_header = Some(keep()),
            MediaKind::Audio if header && track == Track::Ex => s.audio_header_ex = Some(keep()),
            MediaKind::Audio if header => s.audio_header = Some(keep()),
            // The GOP cache: restart at each keyframe, append everything else after one.
            _ if settings.gop_cache => {
                if frame.keyframe {
                    s.gop.clear();
                    s.gop_bytes = 0;
                }
                if frame.keyframe || !s.gop.is_empty() {
                    s.gop_bytes += frame.payload.len();
                    s.gop.push((keep(), track));
                    if s.gop_bytes > settings.gop_max_bytes {
                        s.gop.clear();
                        s.gop_bytes = 0;
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> StreamKey {
        StreamKey { server: 0, app: "live".into(), name: name.into() }
    }

    fn video(ts: u32, key: bool) -> Frame {
        let b0 = if key { 0x17 } else { 0x27 };
        Frame::parse(MediaKind::Video, ts, Bytes::from(vec![b0, 1, 0, 0, 0, ts as u8]))
    }

    fn tag(kind: MediaKind, ts: u32, b: &'static [u8]) -> Frame {
        Frame::parse(kind, ts, Bytes::from_static(b))
    }

    fn sends(out: &[Out], to: ConnId) -> Vec<Bytes> {
        out.iter()
            .flat_map(|o| match o {
                Out::Send(c, b) if *c == to => vec![b.clone()],
                Out::Burst(c, v) if *c == to => v.clone(),
                _ => vec![],
            })
            .collect()
    }

    fn decode(bytes: &[Bytes]) -> Vec<chunk::Message> {
        let mut r = chunk::Reader::new(1 << 20);
        r.set_chunk_size(4096);
        for b in bytes {
            r.push(b);
        }
        std::iter::from_fn(|| r.read_message().unwrap()).collect()
    }

    #[test]
    fn second_publisher_is_busy() {
        let mut h = Hub::new();
        let mut out = vec![];
        h.publish(&key("a"), 1, &mut out).unwrap();
        assert_eq!(h.publish(&key("a"), 2, &mut out), Err(PublishError::Busy));
        h.publish(&key("b"), 2, &mut out).unwrap();
        h.unpublish(&key("a"), 1, &mut out);
        h.publish(&key("a"), 3, &mut out).unwrap();
    }

    #[test]
    fn fan_out_shares_one_buffer() {
        let s = Settings::default();
        let mut h = Hub::new();
        let mut out = vec![];
        h.publish(&key("a"), 1, &mut out).unwrap();
        for p in 10..15 {
            h.play(&key("a"), p, 1, &s, &mut out);
        }
        out.clear();
        h.media(&key("a"), 1, video(0, true), &s, &mut out);
        assert_eq!(out.len(), 5);
        let first = sends(&out, 10)[0].clone();
        for p in 11..15 {
            assert_eq!(sends(&out, p)[0].as_ptr(), first.as_ptr(), "same buffer for every player");
        }
        // A frame from someone who is not the publisher goes nowhere.
        out.clear();
        h.media(&key("a"), 99, video(40, false), &s, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn late_player_gets_headers_and_gop_then_live() {
        let s = Settings::default();
        let mut h = Hub::new();
        let mut out = vec![];
        h.publish(&key("a"), 1, &mut out).unwrap();
        let meta = tag(MediaKind::Data, 0, b"\x02\x00\x0aonMetaData");
        let avc_header = tag(MediaKind::Video, 0, &[0x17, 0, 0, 0, 0, 1]);
        let aac_header = tag(MediaKind::Audio, 0, &[0xaf, 0, 0x12, 0x10]);
        for f in [meta, avc_header, aac_header, video(0, true), video(40, false), video(80, true), video(120, false)] {
            h.media(&key("a"), 1, f, &s, &mut out);
        }
        out.clear();
        h.play(&key("a"), 7, 1, &s, &mut out);
        let got = decode(&sends(&out, 7));
        let summary: Vec<(u8, u32)> = got.iter().map(|m| (m.type_id, m.timestamp)).collect();
        // metadata, AVC header, AAC header, then the GOP from the last keyframe (80).
        assert_eq!(summary, vec![(18, 0), (9, 0), (8, 0), (9, 80), (9, 120)]);
        assert_eq!(got[3].payload[0], 0x17, "GOP starts on a keyframe");
        // The burst shares the buffers made for earlier players: a second joiner gets the
        // very same ones.
        let mut again = vec![];
        h.play(&key("a"), 9, 1, &s, &mut again);
        let (a, b) = (sends(&out, 7), sends(&again, 9));
        assert!(a.iter().zip(&b).all(|(x, y)| x.as_ptr() == y.as_ptr()));
        // A player on another message stream id gets the same messages on its id.
        let mut other = vec![];
        h.play(&key("a"), 10, 3, &s, &mut other);
        let got3 = decode(&sends(&other, 10));
        assert_eq!(got3.len(), got.len());
        assert!(got3.iter().zip(&got).all(|(x, y)| x.msid == 3 && x.payload == y.payload && x.timestamp == y.timestamp));

        // Without the GOP cache, a late player waits for the next keyframe.
        let s = Settings { gop_cache: false, ..Settings::default() };
        out.clear();
        h.play(&key("a"), 8, 1, &s, &mut out);
        h.media(&key("a"), 1, video(160, false), &s, &mut out);
        h.media(&key("a"), 1, video(200, true), &s, &mut out);
        let got = decode(&sends(&out, 8));
        let ts: Vec<u32> = got.iter().filter(|m| m.type_id == 9).map(|m| m.timestamp).collect();
        assert_eq!(ts.last(), Some(&200));
        assert!(!ts.contains(&160), "no inter frame before the first keyframe");
    }

    #[test]
    fn players_wait_for_a_publisher_and_survive_its_leaving() {
        let s = Settings::default();
        let mut h = Hub::new();
        let mut out = vec![];
        h.play(&key("a"), 5, 1, &s, &mut out);
        assert!(out.is_empty());
        h.publish(&key("a"), 1, &mut out).unwrap();
        assert_eq!(out, vec![Out::Published { conn: 5, msid: 1 }]);
        out.clear();
        h.unpublish(&key("a"), 1, &mut out);
        assert_eq!(out, vec![Out::Unpublished { conn: 5, msid: 1 }]);
        assert_eq!(h.player_count(&key("a")), 1);
        h.stop_play(&key("a"), 5);
        assert!(h.is_empty(), "an empty stream is forgotten");
    }

    #[test]
    fn wait_video_and_interleave() {
        let s = Settings { wait_video: true, gop_cache: false, interleave: true, ..Settings::default() };
        let mut h = Hub::new();
        let mut out = vec![];
        h.publish(&key("a"), 1, &mut out).unwrap();
        h.media(&key("a"), 1, video(0, true), &s, &mut out);
        h.play(&key("a"), 2, 1, &s, &mut out);
        out.clear();
        let audio = |ts| tag(MediaKind::Audio, ts, &[0xaf, 1, 9]);
        h.media(&key("a"), 1, audio(10), &s, &mut out);
        assert!(out.is_empty(), "no audio before the player's first keyframe");
        h.media(&key("a"), 1, video(40, true), &s, &mut out);
        h.media(&key("a"), 1, audio(50), &s, &mut out);
        let got = decode(&sends(&out, 2));
        assert_eq!(got.iter().map(|m| (m.type_id, m.csid)).collect::<Vec<_>>(), vec![(9, 7), (8, 7)]);
    }

    #[test]
    fn pause_and_receive() {
        let s = Settings { gop_cache: false, ..Settings::default() };
        let mut h = Hub::new();
        let mut out = vec![];
        h.publish(&key("a"), 1, &mut out).unwrap();
        h.play(&key("a"), 2, 1, &s, &mut out);
        h.media(&key("a"), 1, video(0, true), &s, &mut out);
        h.pause(&key("a"), 2, true);
        out.clear();
        h.media(&key("a"), 1, video(40, true), &s, &mut out);
        assert!(out.is_empty(), "paused");
        h.pause(&key("a"), 2, false);
        h.media(&key("a"), 1, video(80, false), &s, &mut out);
        assert!(out.is_empty(), "resumes on a keyframe");
        h.media(&key("a"), 1, video(120, true), &s, &mut out);
        assert_eq!(out.len(), 1);
        h.receive(&key("a"), 2, MediaKind::Audio, false);
        out.clear();
        let audio = tag(MediaKind::Audio, 130, &[0xaf, 1]);
        h.media(&key("a"), 1, audio, &s, &mut out);
        assert!(out.is_empty(), "receiveAudio false");
    }

    #[test]
    fn two_audio_tracks_one_per_player() {
        let s = Settings::default();
        let opus = Settings { opus_audio: true, ..Settings::default() };
        let mut h = Hub::new();
        let mut out = vec![];
        let audio = |ts: u32, b: &'static [u8]| tag(MediaKind::Audio, ts, b);
        h.publish(&key("a"), 1, &mut out).unwrap();
        h.play(&key("a"), 2, 1, &s, &mut out);
        h.play(&key("a"), 3, 1, &opus, &mut out);
        h.media(&key("a"), 1, video(0, true), &s, &mut out);
        h.media(&key("a"), 1, audio(0, b"\xaf\x00\x11\x90"), &s, &mut out);
        assert!(!h.two_audio_tracks(&key("a")));
        h.media(&key("a"), 1, audio(0, b"\x90OpusOpusHead"), &s, &mut out);
        assert!(h.two_audio_tracks(&key("a")));
        out.clear();
        h.media(&key("a"), 1, audio(20, b"\x91Opus\x01"), &s, &mut out);
        h.media(&key("a"), 1, audio(21, b"\xaf\x01\x02"), &s, &mut out);
        h.media(&key("a"), 1, video(40, false), &s, &mut out);
        let first_bytes = |to| decode(&sends(&out, to)).iter().map(|m| (m.type_id, m.payload[0])).collect::<Vec<_>>();
        assert_eq!(first_bytes(2), vec![(8, 0xaf), (9, 0x27)], "a legacy player gets AAC only");
        assert_eq!(first_bytes(3), vec![(8, 0x91), (9, 0x27)], "an Enhanced RTMP Opus player gets Opus only");
        // Late joiners: their own audio header and GOP audio.
        out.clear();
        h.play(&key("a"), 4, 1, &s, &mut out);
        h.play(&key("a"), 5, 1, &opus, &mut out);
        let audio_of = |to| decode(&sends(&out, to)).iter().filter(|m| m.type_id == 8).map(|m| m.payload[0]).collect::<Vec<_>>();
        assert_eq!(audio_of(4), vec![0xaf, 0xaf]);
        assert_eq!(audio_of(5), vec![0x90, 0x91]);
        // A stream with Enhanced RTMP audio only goes to everyone, as before.
        out.clear();
        h.publish(&key("b"), 6, &mut out).unwrap();
        h.play(&key("b"), 7, 1, &s, &mut out);
        h.media(&key("b"), 6, audio(0, b"\x90OpusOpusHead"), &s, &mut out);
        h.media(&key("b"), 6, audio(20, b"\x91Opus\x01"), &s, &mut out);
        assert_eq!(sends(&out, 7).len(), 2);
    }

    #[test]
    fn gop_cache_is_bounded() {
        let s = Settings { gop_max_bytes: 20, ..Settings::default() };
        let mut h = Hub::new();
        let mut out = vec![];
        h.publish(&key("a"), 1, &mut out).unwrap();
        for i in 0..10 {
            h.media(&key("a"), 1, video(i * 40, i == 0), &s, &mut out);
        }
        out.clear();
        h.play(&key("a"), 2, 1, &s, &mut out);
        assert!(out.is_empty(), "overflowed cache was dropped");
    }
}
