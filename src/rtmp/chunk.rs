//! RTMP chunk streams: splitting messages into chunks (writer) and reassembling them from
//! the bytes a peer sends (reader), with all four chunk header types, 1–3 byte chunk stream
//! ids, extended timestamps, the peer's chunk size, and `Abort`.
//!
//! The reader never allocates on a peer's say-so: a message longer than `max_message` is an
//! error, the number of chunk streams is capped, and payloads grow only as bytes arrive.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The chunk size every RTMP connection starts with.
pub const DEFAULT_CHUNK_SIZE: usize = 128;
/// Largest chunk size the protocol allows (31 bits).
pub const MAX_CHUNK_SIZE: usize = 0x7fff_ffff;
/// Most chunk streams one peer may use at once.
pub const MAX_CHUNK_STREAMS: usize = 64;
const EXTENDED: u32 = 0xff_ffff;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub csid: u32,
    pub timestamp: u32,
    pub type_id: u8,
    pub msid: u32,
    pub payload: Bytes,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Error {
    MessageTooLong { len: usize, max: usize },
    TooManyChunkStreams,
    /// A type 1/2/3 header on a chunk stream that never had a type 0 header.
    NoPreviousHeader(u32),
    /// A new message header while a message on that chunk stream was incomplete.
    Interleaved(u32),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::MessageTooLong { len, max } => write!(f, "message of {len} bytes exceeds max_message {max}"),
            Error::TooManyChunkStreams => write!(f, "more than {MAX_CHUNK_STREAMS} chunk streams"),
            Error::NoPreviousHeader(cs) => write!(f, "chunk stream {cs} continues a message it never started"),
            Error::Interleaved(cs) => write!(f, "new message header inside an unfinished message on chunk stream {cs}"),
        }
    }
}

#[derive(Default)]
struct ChunkStream {
    csid: u32,
    started: bool,
    timestamp: u32,
    delta: u32,
    len: usize,
    type_id: u8,
    msid: u32,
    extended: bool,
    payload: BytesMut,
}

pub struct Reader {
    chunk_size: usize,
    max_message: usize,
    streams: Vec<ChunkStream>,
    buf: BytesMut,
    /// Type 3 chunks of a message with an extended timestamp repeat it
    /// (`publish_time_fix`, on by default: what Flash, ffmpeg and OBS send).
    time_fix: bool,
}

impl Reader {
    pub fn new(max_message: usize) -> Self {
        Reader { chunk_size: DEFAULT_CHUNK_SIZE, max_message, streams: Vec::new(), buf: BytesMut::new(), time_fix: true }
    }

    /// `publish_time_fix off`: type 3 chunks never carry an extended timestamp (the
    /// original RTMP specification's reading).
    pub fn set_time_fix(&mut self, on: bool) {
        self.time_fix = on;
    }

    /// The peer's new chunk size (from its SetChunkSize message); 1..=2^31-1.
    pub fn set_chunk_size(&mut self, size: usize) {
        self.chunk_size = size.clamp(1, MAX_CHUNK_SIZE);
    }

    /// Drops the unfinished message of a chunk stream (the peer's Abort message).
    pub fn abort(&mut self, csid: u32) {
        if let Some(s) = self.streams.iter_mut().find(|s| s.csid == csid) {
            s.payload = BytesMut::new();
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Gives back the input buffer's memory if it holds nothing (a connection about to
    /// receive less at a time).
    pub fn shrink_input(&mut self) {
        if self.buf.is_empty() {
            self.buf = BytesMut::new();
        }
    }

    /// The buffer input is parsed from, with room for at least `room` more bytes: a
    /// socket can receive into its spare capacity directly (then `read_message`). What it
    /// holds beyond that room is at most one unfinished chunk, so it stays within
    /// `max_message` plus a header.
    pub fn input(&mut self, room: usize) -> &mut BytesMut {
        self.buf.reserve(room);
        &mut self.buf
    }

    /// Bytes received but not yet parsed into chunks.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete message, if the bytes for it have arrived.
    pub fn read_message(&mut self) -> Result<Option<Message>, Error> {
        loop {
            let Some((chunk_start, csid, fmt, fields)) = self.peek_header() else { return Ok(None) };
            let idx = match self.streams.iter().position(|s| s.csid == csid) {
                Some(i) => i,
                None if self.streams.len() >= MAX_CHUNK_STREAMS => return Err(Error::TooManyChunkStreams),
                None => {
                    self.streams.push(ChunkStream { csid, ..Default::default() });
                    self.streams.len() - 1
                }
            };
            let s = &self.streams[idx];
            if fmt > 0 && !s.started {
                return Err(Error::NoPreviousHeader(csid));
            }
            let continuing = !s.payload.is_empty();
            if continuing && fmt < 3 {
                return Err(Error::Interleaved(csid));
            }
            // The extended timestamp field: present when the 24-bit field is 0xffffff, and
            // on type 3 chunks of a stream whose last header had one.
            let field = fields.ts;
            let has_ext = if fmt == 3 { s.extended && self.time_fix } else { field == EXTENDED };
            let header_len = chunk_start + if has_ext { 4 } else { 0 };
            if self.buf.len() < header_len {
                return Ok(None);
            }
            let ext = has_ext.then(|| u32::from_be_bytes(self.buf[chunk_start..header_len].try_into().expect("4")));
            let len = if fmt <= 1 { fields.len } else { s.len };
            if len > self.max_message {
                return Err(Error::MessageTooLong { len, max: self.max_message });
            }
            let have = if continuing { s.payload.len() } else { 0 };
            let take = (len - have).min(self.chunk_size);
            if self.buf.len() < header_len + take {
                return Ok(None);
            }
            // The whole chunk is here: commit.
            let s = &mut self.streams[idx];
            s.started = true;
            if fmt < 3 {
                s.extended = has_ext;
            }
            let value = ext.unwrap_or(field);
            if !continuing {
                match fmt {
                    0 => {
                        s.timestamp = value;
                        s.delta = 0;
                        s.msid = fields.msid;
                    }
                    1 | 2 => {
                        s.delta = value;
                        s.timestamp = s.timestamp.wrapping_add(value);
                    }
                    _ => s.timestamp = s.timestamp.wrapping_add(s.delta),
                }
                if fmt <= 1 {
                    s.len = fields.len;
                    s.type_id = fields.type_id;
                }
            }
            self.buf.advance(header_len);
            if !continuing && take == len {
                // A message in one chunk: one exact copy.
                let payload = Bytes::copy_from_slice(&self.buf[..take]);
                self.buf.advance(take);
                return Ok(Some(Message { csid, timestamp: s.timestamp, type_id: s.type_id, msid: s.msid, payload }));
            }
            if !continuing {
                // Room for the whole message, as far as what has arrived vouches for its
                // length (a header alone must not reserve max_message).
                s.payload.reserve(len.min(self.buf.len()));
            }
            s.payload.extend_from_slice(&self.buf[..take]);
            self.buf.advance(take);
            if s.payload.len() == s.len {
                let payload = std::mem::take(&mut s.payload).freeze();
                return Ok(Some(Message { csid, timestamp: s.timestamp, type_id: s.type_id, msid: s.msid, payload }));
            }
        }
    }

    /// Parses the basic and message header at the front of the buffer without consuming:
    /// (bytes before any extended timestamp, csid, fmt, fields).
    fn peek_header(&self) -> Option<(usize, u32, u8, Fields)> {
        let b = &self.buf[..];
        let first = *b.first()?;
        let fmt = first >> 6;
        let (csid, mut p) = match first & 0x3f {
            0 => (64 + *b.get(1)? as u32, 2),
            1 => (64 + *b.get(1)? as u32 + 256 * *b.get(2)? as u32, 3),
            n => (n as u32, 1),
        };
        let be24 = |b: &[u8]| (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        let n = [11, 7, 3, 0][fmt as usize];
        let h = b.get(p..p + n)?;
        let mut f = Fields::default();
        if fmt <= 2 {
            f.ts = be24(&h[0..3]);
        }
        if fmt <= 1 {
            f.len = be24(&h[3..6]) as usize;
            f.type_id = h[6];
        }
        if fmt == 0 {
            f.msid = u32::from_le_bytes(h[7..11].try_into().expect("4"));
        }
        p += n;
        Some((p, csid, fmt, f))
    }
}

#[derive(Default, Clone, Copy)]
struct Fields {
    ts: u32,
    len: usize,
    type_id: u8,
    msid: u32,
}

fn basic_header(out: &mut BytesMut, fmt: u8, csid: u32) {
    match csid {
        2..=63 => out.put_u8(fmt << 6 | csid as u8),
        64..=319 => {
            out.put_u8(fmt << 6);
            out.put_u8((csid - 64) as u8);
        }
        _ => {
            out.put_u8(fmt << 6 | 1);
            out.put_u16_le((csid - 64) as u16);
        }
    }
}

/// Appends `payload` as one message in chunks of `chunk_size`: a type 0 header (absolute
/// timestamp, so the bytes mean the same to every receiver), then type 3 continuations.
pub fn write(out: &mut BytesMut, csid: u32, timestamp: u32, type_id: u8, msid: u32, payload: &[u8], chunk_size: usize) {
    write_fixed(out, csid, timestamp, type_id, msid, payload, chunk_size, true);
}

/// [`write`], with `time_fix` (`play_time_fix`): whether type 3 chunks repeat an extended
/// timestamp (what Flash players expect; off: the original specification's reading).
#[allow(clippy::too_many_arguments)]
pub fn write_fixed(out: &mut BytesMut, csid: u32, timestamp: u32, type_id: u8, msid: u32, payload: &[u8], chunk_size: usize, time_fix: bool) {
    let ext = timestamp >= EXTENDED;
    let chunks = payload.len().div_ceil(chunk_size).max(1);
    out.reserve(payload.len() + 16 + chunks * (if ext { 8 } else { 4 }));
    basic_header(out, 0, csid);
    let ts24 = if ext { EXTENDED } else { timestamp };
    out.put_slice(&ts24.to_be_bytes()[1..]);
    out.put_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.put_u8(type_id);
    out.put_u32_le(msid);
    if ext {
        out.put_u32(timestamp);
    }
    for (i, chunk) in payload.chunks(chunk_size).enumerate() {
        if i > 0 {
            basic_header(out, 3, csid);
            if ext && time_fix {
                out.put_u32(timestamp);
            }
        }
        out.put_slice(chunk);
    }
}

/// One message as chunks, in a buffer of its own.
pub fn encode(csid: u32, timestamp: u32, type_id: u8, msid: u32, payload: &[u8], chunk_size: usize) -> Bytes {
    encode_fixed(csid, timestamp, type_id, msid, payload, chunk_size, true)
}

/// [`encode`] with `play_time_fix` (see [`write_fixed`]).
pub fn encode_fixed(csid: u32, timestamp: u32, type_id: u8, msid: u32, payload: &[u8], chunk_size: usize, time_fix: bool) -> Bytes {
    let mut out = BytesMut::new();
    write_fixed(&mut out, csid, timestamp, type_id, msid, payload, chunk_size, time_fix);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(r: &mut Reader) -> Vec<Message> {
        let mut v = vec![];
        while let Some(m) = r.read_message().unwrap() {
            v.push(m);
        }
        v
    }

    #[test]
    fn round_trip_at_every_chunk_size_and_csid_width() {
        let payload: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        for &chunk_size in &[1usize, 2, 127, 128, 129, 4096, 65536] {
            for &csid in &[2u32, 63, 64, 319, 320, 65599] {
                for &ts in &[0u32, 1000, 0xff_fffe, 0xff_ffff, 0xffff_ffff] {
                    let bytes = encode(csid, ts, 9, 1, &payload, chunk_size);
                    let mut r = Reader::new(1 << 20);
                    r.set_chunk_size(chunk_size);
                    // Feed byte by byte for small inputs, in one go for large.
                    if bytes.len() < 6000 && chunk_size < 4 {
                        r.push(&bytes);
                    } else {
                        for b in bytes.chunks(7) {
                            r.push(b);
                        }
                    }
                    let m = read_all(&mut r);
                    assert_eq!(m.len(), 1, "cs {chunk_size} csid {csid} ts {ts}");
                    assert_eq!(m[0], Message { csid, timestamp: ts, type_id: 9, msid: 1, payload: Bytes::from(payload.clone()) });
                    assert_eq!(r.buffered(), 0);
                }
            }
        }
    }

    #[test]
    fn header_types_1_2_3_carry_deltas() {
        // fmt0 ts=100 len=2; fmt1 delta=20 len=3; fmt2 delta=5 (len 3 kept); fmt3 (delta 5 again)
        let mut b = vec![];
        b.extend_from_slice(&[0x04, 0, 0, 100, 0, 0, 2, 8, 1, 0, 0, 0, b'a', b'b']);
        b.extend_from_slice(&[0x44, 0, 0, 20, 0, 0, 3, 9, b'c', b'd', b'e']);
        b.extend_from_slice(&[0x84, 0, 0, 5, b'f', b'g', b'h']);
        b.extend_from_slice(&[0xc4, b'i', b'j', b'k']);
        let mut r = Reader::new(1000);
        r.push(&b);
        let m = read_all(&mut r);
        let summary: Vec<(u32, u8, &[u8])> = m.iter().map(|m| (m.timestamp, m.type_id, &m.payload[..])).collect();
        assert_eq!(summary, vec![(100, 8, &b"ab"[..]), (120, 9, b"cde"), (125, 9, b"fgh"), (130, 9, b"ijk")]);
        assert!(m.iter().all(|m| m.msid == 1 && m.csid == 4));
    }

    #[test]
    fn time_fixes_off_leave_continuations_without_extended_timestamps() {
        let payload: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let bytes = encode_fixed(5, 0x0100_0000, 8, 1, &payload, 128, false);
        // Three chunks: 12 + 4 header bytes, then two 1-byte basic headers only.
        assert_eq!(bytes.len(), 16 + 2 + payload.len());
        let mut r = Reader::new(1 << 20);
        r.set_time_fix(false);
        r.push(&bytes);
        let m = read_all(&mut r);
        assert_eq!((m.len(), m[0].timestamp, &m[0].payload[..]), (1, 0x0100_0000, &payload[..]));
        // With the fix on, the same bytes read as garbage: the two settings must match.
        let mut r = Reader::new(1 << 20);
        r.push(&bytes);
        assert!(read_all(&mut r).first().is_none_or(|m| m.payload[..] != payload[..]));
    }

    #[test]
    fn extended_timestamp_on_continuation_chunks() {
        let payload = [7u8; 300];
        let bytes = encode(5, 0x0100_0000, 8, 1, &payload, 128);
        // fmt0 (1+11+4) + 128, then 2 × (1 + 4 + ≤128)
        assert_eq!(bytes.len(), 16 + 128 + 5 + 128 + 5 + 44);
        let mut r = Reader::new(1000);
        r.set_chunk_size(128);
        r.push(&bytes);
        assert_eq!(read_all(&mut r)[0].timestamp, 0x0100_0000);
    }

    #[test]
    fn interleaved_chunk_streams() {
        let a = encode(4, 1, 8, 1, &[1u8; 200], 128);
        let v = encode(6, 2, 9, 1, &[2u8; 200], 128);
        // a's first chunk, v's first chunk, a's rest, v's rest
        let (a1, a2) = a.split_at(12 + 128);
        let (v1, v2) = v.split_at(12 + 128);
        let mut r = Reader::new(1000);
        for part in [a1, v1, a2, v2] {
            r.push(part);
        }
        let m = read_all(&mut r);
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].csid, m[0].payload.len()), (4, 200));
        assert_eq!((m[1].csid, m[1].payload.len()), (6, 200));
    }

    #[test]
    fn limits_and_malformed_headers() {
        let mut r = Reader::new(100);
        r.push(&encode(3, 0, 20, 0, &[0u8; 101], 128));
        assert_eq!(r.read_message(), Err(Error::MessageTooLong { len: 101, max: 100 }));

        let mut r = Reader::new(100);
        r.push(&[0x43, 0, 0, 0, 0, 0, 1, 8]);
        assert_eq!(r.read_message(), Err(Error::NoPreviousHeader(3)));

        let mut r = Reader::new(1 << 20);
        let mut b = vec![];
        for cs in 0..=MAX_CHUNK_STREAMS as u32 {
            b.extend_from_slice(&encode(cs + 3, 0, 8, 1, b"x", 128));
        }
        r.push(&b);
        let mut n = 0;
        let err = loop {
            match r.read_message() {
                Ok(Some(_)) => n += 1,
                Ok(None) => panic!("ran out"),
                Err(e) => break e,
            }
        };
        assert_eq!((n, err), (MAX_CHUNK_STREAMS, Error::TooManyChunkStreams));

        let mut r = Reader::new(1000);
        let m = encode(4, 0, 8, 1, &[0u8; 300], 128);
        r.push(&m[..12 + 128]);
        assert_eq!(r.read_message(), Ok(None));
        r.push(&encode(4, 0, 8, 1, b"y", 128));
        assert_eq!(r.read_message(), Err(Error::Interleaved(4)));

        // Abort drops the unfinished message; the stream then starts afresh.
        let mut r = Reader::new(1000);
        r.push(&m[..12 + 128]);
        assert_eq!(r.read_message(), Ok(None));
        r.abort(4);
        r.push(&encode(4, 9, 8, 1, b"z", 128));
        assert_eq!(r.read_message().unwrap().unwrap().payload, Bytes::from_static(b"z"));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            let mut r = Reader::new(4096);
            let mut data = vec![0u8; 64];
            for b in data.iter_mut() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                *b = seed as u8;
            }
            r.set_chunk_size(1 + (seed % 300) as usize);
            r.push(&data);
            while let Ok(Some(_)) = r.read_message() {}
        }
    }
}
