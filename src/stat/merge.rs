//! `/stat` for the whole nginx: the snapshots of every worker (its own, and the others'
//! from `wire`) made one, as if one worker served everything. A stream's copy in another
//! worker (its publisher a pull from the publishing worker, `WORKER_FLASHVER`) is left out,
//! its players joined to the stream; totals and counters are summed.

use super::{Snapshot, Stream, WORKER_FLASHVER};

/// A stream of a worker that only copies it: its publisher and publishing figures go.
fn strip_copy(s: &mut Stream) {
    let before = s.clients.len();
    s.clients.retain(|c| !(c.publishing && c.flashver == WORKER_FLASHVER));
    if s.clients.len() != before {
        s.publishing = false;
        s.active = false;
        s.bw_in = 0;
        s.bytes_in = 0;
        s.bw_audio = 0;
        s.bw_video = 0;
        s.codec = None;
    }
}

fn join(into: &mut Stream, from: Stream) {
    if from.publishing && !into.publishing {
        into.publishing = true;
        into.active = from.active;
        into.time = from.time;
        into.bw_in = from.bw_in;
        into.bytes_in = from.bytes_in;
        into.bw_audio = from.bw_audio;
        into.bw_video = from.bw_video;
        into.codec = from.codec;
    } else if !into.publishing {
        into.time = into.time.max(from.time);
    }
    into.bw_out += from.bw_out;
    into.bytes_out += from.bytes_out;
    into.hls_viewers += from.hls_viewers;
    into.clients.extend(from.clients);
    // The publisher first, as one worker shows it.
    into.clients.sort_by_key(|c| !c.publishing);
}

/// Every worker's snapshot as one: `mine` (the answering worker's: its pid, version and
/// uptime are shown) and the others'.
pub fn merge(mut mine: Snapshot, others: Vec<Snapshot>) -> Snapshot {
    let strip = |s: &mut Snapshot| s.servers.iter_mut().flat_map(|s| &mut s.apps).flat_map(|a| &mut a.streams).for_each(strip_copy);
    strip(&mut mine);
    for mut o in others {
        strip(&mut o);
        mine.naccepted += o.naccepted;
        mine.bw_in += o.bw_in;
        mine.bytes_in += o.bytes_in;
        mine.bw_out += o.bw_out;
        mine.bytes_out += o.bytes_out;
        mine.children.extend(o.children);
        mine.relays.extend(o.relays);
        let (h, oh) = (&mut mine.health, &o.health);
        for (a, b) in h.faults.iter_mut().zip(oh.faults) {
            *a += b;
        }
        h.hls_segments += oh.hls_segments;
        h.hls_errors += oh.hls_errors;
        h.recordings += oh.recordings;
        h.record_files += oh.record_files;
        h.record_errors += oh.record_errors;
        h.whip_sessions += oh.whip_sessions;
        h.whip_sessions_total += oh.whip_sessions_total;
        h.whep_sessions += oh.whep_sessions;
        h.whep_sessions_total += oh.whep_sessions_total;
        for (i, server) in o.servers.into_iter().enumerate() {
            if mine.servers.len() <= i {
                mine.servers.resize_with(i + 1, Default::default);
            }
            for app in server.apps {
                let apps = &mut mine.servers[i].apps;
                let a = match apps.iter().position(|a| a.name == app.name) {
                    Some(a) => a,
                    None => {
                        apps.push(super::App { name: app.name.clone(), streams: vec![] });
                        apps.len() - 1
                    }
                };
                for st in app.streams {
                    let streams = &mut apps[a].streams;
                    match streams.iter_mut().find(|s| s.name == st.name) {
                        Some(into) => join(into, st),
                        None => streams.push(st),
                    }
                }
            }
        }
    }
    // (A copy with no players left is nothing to show.)
    for app in mine.servers.iter_mut().flat_map(|s| &mut s.apps) {
        app.streams.retain(|s| s.publishing || !s.clients.is_empty());
    }
    // Players see the publisher's clock.
    for s in mine.servers.iter_mut().flat_map(|s| &mut s.apps).flat_map(|a| &mut a.streams) {
        let (ts, avsync) = s.clients.iter().find(|c| c.publishing).map_or((0, 0), |p| (p.timestamp, p.avsync));
        if s.publishing {
            for c in s.clients.iter_mut().filter(|c| !c.publishing) {
                c.timestamp = ts;
                c.avsync = avsync;
            }
        }
    }
    mine
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stat::{App, Client, Codec, Server};

    fn worker(streams: Vec<Stream>) -> Snapshot {
        Snapshot { naccepted: 5, servers: vec![Server { apps: vec![App { name: "live".into(), streams }] }], ..Default::default() }
    }

    fn client(id: u64, publishing: bool, flashver: &str) -> Client {
        Client { id, publishing, flashver: flashver.into(), timestamp: id as u32, ..Default::default() }
    }

    #[test]
    fn a_stream_is_one_whatever_worker_its_players_are_on() {
        let origin = worker(vec![Stream {
            name: "cam".into(),
            publishing: true,
            bytes_in: 1000,
            bytes_out: 10,
            codec: Some(Codec { width: 640, ..Default::default() }),
            clients: vec![client(1, true, "FMLE/3.0"), client(2, false, "LNX")],
            ..Default::default()
        }]);
        let copy = worker(vec![
            Stream {
                name: "cam".into(),
                publishing: true,
                bytes_in: 999,
                bytes_out: 20,
                clients: vec![client(9, true, WORKER_FLASHVER), client(3, false, "LNX"), client(4, false, "LNX")],
                ..Default::default()
            },
            Stream { name: "gone".into(), clients: vec![client(8, true, WORKER_FLASHVER)], publishing: true, ..Default::default() },
        ]);
        let m = merge(copy, vec![origin]);
        let streams = &m.servers[0].apps[0].streams;
        assert_eq!(streams.len(), 1, "a copy without players is not shown");
        let s = &streams[0];
        assert_eq!(s.clients.iter().map(|c| c.id).collect::<Vec<_>>(), [1, 3, 4, 2], "the publisher first, the copy's publisher out");
        assert!(s.publishing);
        assert_eq!((s.bytes_in, s.bytes_out), (1000, 30));
        assert_eq!(s.codec.as_ref().map(|c| c.width), Some(640));
        assert!(s.clients.iter().all(|c| c.timestamp == 1), "players show the publisher's clock");
        assert_eq!(m.naccepted, 10);
    }
}
