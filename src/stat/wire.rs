//! A worker's `/stat` snapshot as bytes, for the other workers (each worker writes its own
//! once a second; whichever worker answers `/stat` reads the others', `merge`): a plain
//! length-prefixed encoding, versioned, read back with every length bounded, so a damaged
//! or foreign file is an error, never a panic or a huge allocation.

use super::{App, Child, Client, Codec, Health, Relay, Server, Snapshot, Stream};

/// The format's tag and version (a file of another version is ignored).
const MAGIC: &[u8; 8] = b"NRRSTAT2";
/// No list or text in a snapshot is longer (a damaged file cannot ask for more).
const MAX_LEN: usize = 1 << 20;

pub trait Wire: Sized {
    fn put(&self, out: &mut Vec<u8>);
    fn get(r: &mut Reader) -> Option<Self>;
}

pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.data.len() {
            return None;
        }
        let (a, b) = self.data.split_at(n);
        self.data = b;
        Some(a)
    }
}

impl Wire for u64 {
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn get(r: &mut Reader) -> Option<Self> {
        Some(u64::from_le_bytes(r.take(8)?.try_into().ok()?))
    }
}

macro_rules! via_u64 {
    ($($t:ty),*) => {$(
        impl Wire for $t {
            fn put(&self, out: &mut Vec<u8>) {
                (*self as u64).put(out)
            }
            fn get(r: &mut Reader) -> Option<Self> {
                <$t>::try_from(u64::get(r)?).ok()
            }
        }
    )*};
}
via_u64!(u32, usize);

macro_rules! via_i64 {
    ($($t:ty),*) => {$(
        impl Wire for $t {
            fn put(&self, out: &mut Vec<u8>) {
                (*self as i64 as u64).put(out)
            }
            fn get(r: &mut Reader) -> Option<Self> {
                <$t>::try_from(u64::get(r)? as i64).ok()
            }
        }
    )*};
}
via_i64!(i64, i32);

impl Wire for bool {
    fn put(&self, out: &mut Vec<u8>) {
        out.push(*self as u8)
    }
    fn get(r: &mut Reader) -> Option<Self> {
        Some(r.take(1)?[0] != 0)
    }
}

impl Wire for String {
    fn put(&self, out: &mut Vec<u8>) {
        self.len().put(out);
        out.extend_from_slice(self.as_bytes());
    }
    fn get(r: &mut Reader) -> Option<Self> {
        let n = usize::get(r).filter(|&n| n <= MAX_LEN)?;
        String::from_utf8(r.take(n)?.to_vec()).ok()
    }
}

/// The few words `/stat` uses for states and directions.
const WORDS: [&str; 9] = ["", "push", "pull", "connecting", "live", "waiting", "starting", "running", "stopping"];

impl Wire for &'static str {
    fn put(&self, out: &mut Vec<u8>) {
        WORDS.iter().position(|w| w == self).unwrap_or(0).put(out)
    }
    fn get(r: &mut Reader) -> Option<Self> {
        WORDS.get(usize::get(r)?).copied()
    }
}

impl<T: Wire> Wire for Vec<T> {
    fn put(&self, out: &mut Vec<u8>) {
        self.len().put(out);
        self.iter().for_each(|x| x.put(out));
    }
    fn get(r: &mut Reader) -> Option<Self> {
        let n = usize::get(r).filter(|&n| n <= r.data.len())?;
        (0..n).map(|_| T::get(r)).collect()
    }
}

impl<T: Wire> Wire for Option<T> {
    fn put(&self, out: &mut Vec<u8>) {
        self.is_some().put(out);
        if let Some(x) = self {
            x.put(out)
        }
    }
    fn get(r: &mut Reader) -> Option<Self> {
        Some(if bool::get(r)? { Some(T::get(r)?) } else { None })
    }
}

impl Wire for [u64; 5] {
    fn put(&self, out: &mut Vec<u8>) {
        self.iter().for_each(|x| x.put(out))
    }
    fn get(r: &mut Reader) -> Option<Self> {
        Some([u64::get(r)?, u64::get(r)?, u64::get(r)?, u64::get(r)?, u64::get(r)?])
    }
}

/// Every field of a struct, in order.
macro_rules! fields {
    ($t:ident { $($f:ident),* $(,)? }) => {
        impl Wire for $t {
            fn put(&self, out: &mut Vec<u8>) {
                $(self.$f.put(out);)*
            }
            fn get(r: &mut Reader) -> Option<Self> {
                Some($t { $($f: Wire::get(r)?,)* })
            }
        }
    };
}

fields!(Snapshot { nginx_version, compiler, built, pid, uptime, naccepted, bw_in, bytes_in, bw_out, bytes_out, servers, children, relays, health });
fields!(Health { faults, hls_segments, hls_errors, recordings, record_files, record_errors, whip_sessions, whip_sessions_total, whep_sessions, whep_sessions_total });
fields!(Relay { direction, app, name, url, state, reconnects, last_error, bytes_in, bytes_out, uptime });
fields!(Child { command, pid, state, starts, last_exit, uptime });
fields!(Server { apps });
fields!(App { name, streams });
fields!(Stream { name, time, bw_in, bytes_in, bw_out, bytes_out, bw_audio, bw_video, clients, codec, publishing, active, hls_viewers });
fields!(Client { id, address, time, flashver, pageurl, swfurl, dropped, avsync, timestamp, publishing, active, worker });
fields!(Codec {
    width,
    height,
    frame_rate,
    video_codec,
    video_profile,
    compat,
    level,
    audio_codec,
    audio_profile,
    channels,
    sample_rate,
    rfc6381_video,
    rfc6381_audio
});

pub fn encode(s: &Snapshot) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    s.put(&mut out);
    out
}

/// A snapshot from bytes (None: not one, or damaged).
pub fn decode(data: &[u8]) -> Option<Snapshot> {
    let rest = data.strip_prefix(MAGIC)?;
    let mut r = Reader { data: rest };
    let s = Snapshot::get(&mut r)?;
    r.data.is_empty().then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn sample() -> Snapshot {
        let client = |id, publishing| Client { id, address: "127.0.0.1".into(), time: 1500, flashver: "FMLE/3.0".into(), publishing, active: true, avsync: -3, ..Default::default() };
        Snapshot {
            nginx_version: "1.22.1".into(),
            pid: 42,
            bytes_in: 1 << 40,
            servers: vec![Server {
                apps: vec![App {
                    name: "live".into(),
                    streams: vec![Stream {
                        name: "cam".into(),
                        publishing: true,
                        codec: Some(Codec { width: 1280, video_codec: "H264".into(), ..Default::default() }),
                        clients: vec![client(1, true), client(2, false)],
                        ..Default::default()
                    }],
                }],
            }],
            relays: vec![Relay { direction: "pull", state: "live", url: "rtmp://o/live".into(), ..Default::default() }],
            children: vec![Child { command: "exec_push \"cam\": ffmpeg".into(), pid: 7, state: "running", ..Default::default() }],
            health: Health { faults: [1, 2, 3, 4, 5], whep_sessions: 9, ..Default::default() },
            ..Default::default()
        }
    }

    #[test]
    fn a_snapshot_comes_back_whole() {
        let s = sample();
        assert_eq!(decode(&encode(&s)), Some(s));
    }

    #[test]
    fn damaged_bytes_are_refused_without_panic() {
        let bytes = encode(&sample());
        for cut in 0..bytes.len() {
            assert_eq!(decode(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut huge = MAGIC.to_vec();
        huge.extend_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(decode(&huge), None);
        for i in 8..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0xff;
            let _ = decode(&b);
        }
    }
}
