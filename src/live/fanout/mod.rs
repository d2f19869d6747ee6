//! A stream's RTMP fan-out as one shared log: every frame is chunk-encoded once and
//! appended; each player (and each push relay, which plays to another server) reads the
//! log through a [`Cursor`] of its own. Appending costs the same for 1 or 10,000 players,
//! a player that lags holds a position rather than a queue of buffers, and the GOP cache
//! is a position in the log (the newest video keyframe), not a copy.
//!
//! What a player takes of each entry is decided as it is written: paused players,
//! `receiveAudio/Video false`, a player that has not seen a keyframe yet (codec headers
//! only), and a stream carrying its audio twice (each player gets one track) all skip
//! entries. `out_queue` bounds how far a cursor may lag behind the log's head.
//!
//! Entries are encoded for message stream id 1, the id every client's first stream has;
//! a player on another id gets copies with the id patched, in its own queue.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::media::{Frame, MediaKind};
use crate::rtmp::chunk;

/// The message stream id the log is encoded for.
pub const BASE_MSID: u32 = 1;

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
    /// Type 3 chunks repeat an extended timestamp (`play_time_fix`).
    pub time_fix: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { gop_cache: true, gop_max_bytes: 32 << 20, chunk_size: 4096, wait_video: false, interleave: false, time_fix: true }
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

/// A frame kept for players: its chunked encoding (for `BASE_MSID`) once a player needs
/// it, the frame itself before (a stream nobody plays over RTMP encodes nothing).
#[derive(Clone, Debug)]
enum Kept {
    Encoded(Bytes),
    Raw(Frame),
}

impl Kept {
    /// The encoding, made now if it was not.
    fn encode(&mut self, settings: &Settings) -> &Bytes {
        if let Kept::Raw(f) = self {
            *self = Kept::Encoded(encode(f, settings));
        }
        match self {
            Kept::Encoded(b) => b,
            Kept::Raw(_) => unreachable!("encoded above"),
        }
    }

    /// The encoding, if made (entries at or after a cursor always are).
    fn bytes(&self) -> &[u8] {
        match self {
            Kept::Encoded(b) => b,
            Kept::Raw(_) => &[],
        }
    }
}

fn encode(f: &Frame, settings: &Settings) -> Bytes {
    chunk::encode_fixed(settings.csid(f.kind), f.timestamp, f.kind.type_id(), BASE_MSID, &f.payload, settings.chunk_size, settings.time_fix)
}

/// Where the message stream id sits in our encodings: after a 1-byte basic header (our
/// chunk stream ids are all below 64) and timestamp, length and type (7 bytes).
const MSID_AT: usize = 8;

/// The same chunked message for another message stream id: the id appears only in the
/// type 0 header, so a copy with those 4 bytes changed.
fn with_msid(encoded: &Bytes, to: u32) -> Bytes {
    if to == BASE_MSID {
        return encoded.clone();
    }
    let mut b = encoded.to_vec();
    b[MSID_AT..MSID_AT + 4].copy_from_slice(&to.to_le_bytes());
    Bytes::from(b)
}

/// What players need to know of an entry to decide whether they take it.
#[derive(Clone, Copy, Debug)]
struct Meta {
    kind: MediaKind,
    keyframe: bool,
    header: bool,
    track: Track,
    /// The stream had video when the entry came (`wait_video`).
    video_then: bool,
    /// The stream carried two audio tracks when the entry came.
    two_then: bool,
}

struct Entry {
    meta: Meta,
    body: Kept,
}

/// One player's position in a stream's log, and what it wants of it.
#[derive(Debug)]
pub struct Cursor {
    /// The next entry to write.
    next: u64,
    /// Entries before this are the start-up burst (the cached GOP): not counted in
    /// `out_queue`.
    live_from: u64,
    pub msid: u32,
    /// Has received a video keyframe (or the stream has no video yet).
    started: bool,
    paused: bool,
    no_audio: bool,
    no_video: bool,
    /// Takes the Enhanced RTMP audio track of a stream that has two.
    opus: bool,
    /// Statuses (the stream was published, unpublished) due before entry `.0`.
    statuses: VecDeque<(u64, Bytes)>,
}

impl Cursor {
    /// Whether the player takes an entry, and whether it has started after it.
    fn takes(&self, started: bool, m: &Meta, wait_video: bool) -> (bool, bool) {
        let skip = self.paused
            || (m.kind == MediaKind::Audio && self.no_audio)
            || (m.kind == MediaKind::Video && self.no_video)
            || (m.two_then
                && match m.track {
                    Track::Both => false,
                    Track::Legacy => self.opus,
                    Track::Ex => !self.opus,
                });
        if skip {
            return (false, started);
        }
        if !started {
            // Until its first keyframe a player gets codec headers only (and, unless
            // wait_video, audio).
            let waits = match m.kind {
                MediaKind::Video => !m.keyframe && !m.header,
                MediaKind::Audio => wait_video && m.video_then && !m.header,
                MediaKind::Data => false,
            };
            if waits {
                return (false, started);
            }
            return (true, m.kind == MediaKind::Video && m.keyframe);
        }
        (true, true)
    }
}

/// A stream's log.
pub struct Fanout {
    settings: Settings,
    /// The sequence number of `entries[0]`.
    base: u64,
    entries: VecDeque<Entry>,
    meta: Option<Kept>,
    video_header: Option<Kept>,
    audio_header: Option<Kept>,
    /// The Enhanced RTMP audio codec header, when the stream also has legacy audio.
    audio_header_ex: Option<Kept>,
    /// The newest video keyframe (while the GOP cache holds it), and the GOP's bytes.
    gop: Option<u64>,
    gop_bytes: usize,
    has_video: bool,
    legacy_audio: bool,
    ex_audio: bool,
    /// Players reading the log (encodings are made as frames come while there are any).
    players: usize,
}

impl Fanout {
    pub fn new(settings: Settings) -> Fanout {
        Fanout {
            settings,
            base: 0,
            entries: VecDeque::new(),
            meta: None,
            video_header: None,
            audio_header: None,
            audio_header_ex: None,
            gop: None,
            gop_bytes: 0,
            has_video: false,
            legacy_audio: false,
            ex_audio: false,
            players: 0,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The sequence number the next entry gets.
    pub fn head(&self) -> u64 {
        self.base + self.entries.len() as u64
    }

    /// Whether a player joining now starts at once (a cached GOP).
    pub fn has_gop(&self) -> bool {
        self.gop.is_some()
    }

    /// Whether the stream carries its audio twice (AAC and Enhanced RTMP): what is not
    /// the legacy track is for Enhanced RTMP players only (not for HLS or recordings).
    pub fn two_audio_tracks(&self) -> bool {
        self.legacy_audio && self.ex_audio
    }

    /// Entries held (for tests and `/stat`'s curious).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A frame from the publisher: appended (encoded if anyone plays), and remembered as
    /// new players need it (metadata, codec headers, the GOP from the last keyframe).
    pub fn append(&mut self, f: Frame) {
        let track = Track::of(&f);
        match track {
            Track::Both if f.kind == MediaKind::Video => self.has_video = true,
            Track::Legacy => self.legacy_audio = true,
            Track::Ex => self.ex_audio = true,
            Track::Both => {}
        }
        let header = f.is_header();
        let meta = Meta {
            kind: f.kind,
            keyframe: f.keyframe,
            header,
            track,
            video_then: self.has_video,
            two_then: self.two_audio_tracks(),
        };
        let (kind, keyframe, len) = (f.kind, f.keyframe, f.payload.len());
        let mut body = Kept::Raw(f);
        if self.players > 0 {
            body.encode(&self.settings);
        }
        let seq = self.head();
        match kind {
            MediaKind::Data => self.meta = Some(body.clone()),
            MediaKind::Video if header => self.video_header = Some(body.clone()),
            MediaKind::Audio if header && track == Track::Ex => self.audio_header_ex = Some(body.clone()),
            MediaKind::Audio if header => self.audio_header = Some(body.clone()),
            // The GOP cache: restarts at each keyframe, takes everything after one.
            _ if self.settings.gop_cache => {
                if keyframe {
                    self.gop = Some(seq);
                    self.gop_bytes = 0;
                }
                if self.gop.is_some() {
                    self.gop_bytes += len;
                    if self.gop_bytes > self.settings.gop_max_bytes {
                        self.gop = None;
                        self.gop_bytes = 0;
                    }
                }
            }
            _ => {}
        }
        self.entries.push_back(Entry { meta, body });
    }

    /// The stream's publisher left: what new players would be given is forgotten (the
    /// entries already appended still go to the players that have not read them).
    pub fn unpublished(&mut self) {
        self.meta = None;
        self.video_header = None;
        self.audio_header = None;
        self.audio_header_ex = None;
        self.gop = None;
        self.gop_bytes = 0;
        self.has_video = false;
        self.legacy_audio = false;
        self.ex_audio = false;
    }

    /// A new player on message stream `msid` (`opus`: it takes Enhanced RTMP Opus). While
    /// the stream is `live` it starts with metadata, codec headers and the cached GOP:
    /// the returned burst (for its own queue: shared buffers), then the log from the GOP's
    /// keyframe.
    pub fn join(&mut self, msid: u32, opus: bool, live: bool) -> (Cursor, Vec<Bytes>) {
        self.players += 1;
        let head = self.head();
        let mut cur = Cursor {
            next: head,
            live_from: head,
            msid,
            started: !self.has_video,
            paused: false,
            no_audio: false,
            no_video: false,
            opus,
            statuses: VecDeque::new(),
        };
        let mut burst = Vec::new();
        if !live {
            return (cur, burst);
        }
        let settings = self.settings.clone();
        let two = self.two_audio_tracks();
        let audio_header = if two && opus { &mut self.audio_header_ex } else { &mut self.audio_header };
        for k in [&mut self.meta, &mut self.video_header, audio_header].into_iter().flatten() {
            burst.push(with_msid(k.encode(&settings), msid));
        }
        if !two {
            // (An Enhanced RTMP audio header kept before legacy audio came.)
            if let Some(k) = self.audio_header_ex.as_mut() {
                burst.push(with_msid(k.encode(&settings), msid));
            }
        }
        if let Some(gop) = self.gop.filter(|_| settings.gop_cache) {
            for e in self.entries.range_mut((gop - self.base) as usize..) {
                e.body.encode(&settings);
            }
            cur.next = gop;
            cur.started = true;
        }
        (cur, burst)
    }

    /// A player left.
    pub fn leave(&mut self) {
        self.players = self.players.saturating_sub(1);
    }

    /// `status` goes to the player once it has every entry appended so far.
    pub fn status(&self, cur: &mut Cursor, status: Bytes) {
        cur.statuses.push_back((self.head(), status));
    }

    /// The stream (re)started: a waiting player starts again from a keyframe.
    pub fn restart(&self, cur: &mut Cursor) {
        cur.started = false;
    }

    /// `pause` / unpause: a resumed player restarts on a keyframe.
    pub fn pause(&self, cur: &mut Cursor, pause: bool) {
        cur.paused = pause;
        cur.started = false;
    }

    /// `receiveAudio` / `receiveVideo`.
    pub fn receive(&self, cur: &mut Cursor, kind: MediaKind, on: bool) {
        match kind {
            MediaKind::Audio => cur.no_audio = !on,
            MediaKind::Video => {
                cur.no_video = !on;
                cur.started = false;
            }
            MediaKind::Data => {}
        }
    }

    /// How far the player is behind the head, beyond its start-up burst.
    pub fn lag(&self, cur: &Cursor) -> u64 {
        self.head().saturating_sub(cur.next.max(cur.live_from))
    }

    /// Whether the player has anything to be written.
    pub fn has_pending(&self, cur: &Cursor) -> bool {
        !cur.statuses.is_empty() || (cur.msid == BASE_MSID && cur.next < self.head())
    }

    /// For a player on another message stream id than the log's: what it takes from the
    /// log moves to `own` (its own queue), copied with its id.
    pub fn prepare(&self, cur: &mut Cursor, own: &mut VecDeque<Bytes>) {
        if cur.msid == BASE_MSID {
            return;
        }
        let mut started = cur.started;
        let start = cur.next.max(self.base);
        for seq in start..self.head() {
            while cur.statuses.front().is_some_and(|(at, _)| *at <= seq) {
                own.push_back(cur.statuses.pop_front().expect("front").1);
            }
            let e = &self.entries[(seq - self.base) as usize];
            let (take, s) = cur.takes(started, &e.meta, self.settings.wait_video);
            started = s;
            if take {
                if let Kept::Encoded(b) = &e.body {
                    own.push_back(with_msid(b, cur.msid));
                }
            }
        }
        own.extend(cur.statuses.drain(..).map(|(_, b)| b));
        cur.started = started;
        cur.next = self.head();
    }

    /// What the player is to be written next, in order, as long as `room` takes more.
    pub fn pending<'a>(&'a self, cur: &'a Cursor, room: &mut dyn FnMut(&'a [u8]) -> bool) {
        let mut started = cur.started;
        let mut statuses = cur.statuses.iter().peekable();
        let start = cur.next.max(self.base);
        let end = if cur.msid == BASE_MSID { self.head() } else { start };
        for seq in start..end {
            while let Some((_, b)) = statuses.next_if(|(at, _)| *at <= seq) {
                if !room(b) {
                    return;
                }
            }
            let e = &self.entries[(seq - self.base) as usize];
            let (take, s) = cur.takes(started, &e.meta, self.settings.wait_video);
            started = s;
            if take && !room(e.body.bytes()) {
                return;
            }
        }
        for (_, b) in statuses {
            if !room(b) {
                return;
            }
        }
    }

    /// `n` bytes of what `pending` gave were written (what is left of `n` after this
    /// player's entries stays in it). An entry written in part: its remainder is returned
    /// (for the front of the player's own queue, to go first).
    pub fn advance(&self, cur: &mut Cursor, n: &mut usize) -> Option<Bytes> {
        let mut started = cur.started;
        let start = cur.next.max(self.base);
        cur.next = start;
        let end = if cur.msid == BASE_MSID { self.head() } else { start };
        let mut left = None;
        let mut seq = start;
        let n_in = n;
        let mut n = *n_in;
        // (Entries the player skips are passed over even when nothing more was written.)
        loop {
            if let Some((at, b)) = cur.statuses.front() {
                if *at <= seq {
                    if n == 0 {
                        break;
                    }
                    let b = b.clone();
                    cur.statuses.pop_front();
                    if n < b.len() {
                        left = Some(b.slice(n..));
                        n = 0;
                        break;
                    }
                    n -= b.len();
                    continue;
                }
            }
            if seq >= end {
                break;
            }
            let e = &self.entries[(seq - self.base) as usize];
            let (take, s) = cur.takes(started, &e.meta, self.settings.wait_video);
            if take && n == 0 {
                break;
            }
            started = s;
            seq += 1;
            cur.next = seq;
            if !take {
                continue;
            }
            let len = e.body.bytes().len();
            if n < len {
                if let Kept::Encoded(b) = &e.body {
                    left = Some(b.slice(n..));
                }
                n = 0;
                break;
            }
            n -= len;
        }
        cur.started = started;
        *n_in = n;
        left
    }

    /// Forgets entries no player needs: before every cursor (`oldest`, the smallest
    /// `next` of the stream's players, or None without players) and before the GOP.
    pub fn trim(&mut self, oldest: Option<u64>) {
        let keep = [oldest, self.gop].into_iter().flatten().min().unwrap_or(self.head());
        while self.base < keep && !self.entries.is_empty() {
            self.entries.pop_front();
            self.base += 1;
        }
    }

    /// Where a cursor is (for `trim`).
    pub fn position(cur: &Cursor) -> u64 {
        cur.next
    }
}

#[cfg(test)]
mod tests;
