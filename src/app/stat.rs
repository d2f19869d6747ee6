//! What `/stat` shows: this worker's servers, applications, streams and clients, with
//! nginx-rtmp-module's figures (`crate::stat` renders them as XML, JSON or Prometheus).

use super::{App, Now};
use crate::stat;

/// What the glue knows of the worker itself.
pub struct SnapshotMeta {
    pub nginx_version: String,
    pub compiler: String,
    pub built: String,
    pub pid: u64,
}

impl App {
    /// Once a second: the samples the rates are computed from.
    pub(super) fn sample_rates(&mut self, now: &Now) {
        let mut sent = self.totals.bytes_out_gone;
        let ids = self.clients.ids();
        for id in ids {
            let c = self.clients.get_mut(id).expect("listed");
            sent += c.bytes_out;
            c.out_rate.sample(now.ms, c.bytes_out);
        }
        for sid in self.streams.ids() {
            if let Some(s) = self.streams.get_mut(sid) {
                s.stats.sample(now.ms);
            }
        }
        let received = self.totals.bytes_in;
        self.totals.in_rate.sample(now.ms, received);
        self.totals.out_rate.sample(now.ms, sent);
        self.totals.hls.prune(now.ms);
    }

    /// An HLS segment of `stream` was served to `viewer` (from nginx's log phase).
    pub fn hls_seen(&mut self, stream: &str, viewer: u64, now: &Now) {
        self.totals.hls.seen(stream, viewer, now.ms);
    }

    /// The server closes a client, for this reason (`rtmp_client_errors_total`).
    pub fn fault(&mut self, f: stat::Fault) {
        if let Some(i) = stat::Fault::ALL.iter().position(|&x| x == f) {
            self.totals.health.faults[i] += 1;
        }
    }

    pub fn snapshot(&self, now: &Now, meta: SnapshotMeta) -> stat::Snapshot {
        let now = now.ms;
        let mut snap = stat::Snapshot {
            nginx_version: meta.nginx_version,
            compiler: meta.compiler,
            built: meta.built,
            pid: meta.pid,
            ..Default::default()
        };
        snap.servers = self
            .conf
            .servers
            .iter()
            .map(|s| stat::Server { apps: s.apps.iter().map(|a| stat::App { name: a.name.clone(), streams: vec![] }).collect() })
            .collect();
        let t = &self.totals;
        snap.uptime = now.saturating_sub(t.started) / 1000;
        snap.children = self.child_stats(now);
        snap.relays = self.relay_stats(now);
        snap.health = t.health.clone();
        snap.health.recordings = self.streams.iter().flat_map(|(_, s)| &s.outputs).filter(|o| o.recording_now()).count() as u64;
        snap.health.whip_sessions = self.clients.iter().filter(|(_, c)| c.kind == super::Kind::Whip && c.publishes()).count() as u64;
        snap.health.whep_sessions = self.clients.iter().filter(|(_, c)| c.kind == super::Kind::Whep && !c.roles.is_empty()).count() as u64;
        snap.naccepted = t.naccepted;
        snap.bytes_in = t.bytes_in;
        snap.bytes_out = t.bytes_out_gone + self.clients.iter().map(|(_, c)| c.bytes_out).sum::<u64>();
        snap.bw_in = t.in_rate.bits_per_sec(now, snap.bytes_in);
        snap.bw_out = t.out_rate.bits_per_sec(now, snap.bytes_out);
        // Each stream: its publisher, then its players in the order they joined.
        for (_, st) in self.streams.iter() {
            let key = &st.key;
            let Some(app) = snap.servers.get_mut(key.server).and_then(|s| s.apps.iter_mut().find(|a| a.name == key.app)) else {
                continue;
            };
            let mut stream = stat::Stream { name: key.name.clone(), ..Default::default() };
            for (id, publisher) in st.source.iter().map(|&p| (p, true)).chain(st.players.iter().map(|&p| (p, false))) {
                // (Another worker's pull is that worker's players, shown there.)
                let Some(c) = self.clients.get(id).filter(|c| c.kind != super::Kind::Peer) else { continue };
                let info = c.info.as_deref();
                let mut client = stat::Client {
                    worker: snap.pid,
                    id: c.number,
                    address: c.addr.to_string(),
                    time: now.saturating_sub(c.since),
                    flashver: info.map_or(String::new(), |i| i.flash_ver.clone()),
                    pageurl: info.map_or(String::new(), |i| i.page_url.clone()),
                    swfurl: info.map_or(String::new(), |i| i.swf_url.clone()),
                    timestamp: c.last_ts,
                    ..Default::default()
                };
                if publisher {
                    let p = &st.stats;
                    client.publishing = true;
                    stream.publishing = true;
                    client.active = p.active;
                    client.avsync = p.audio_ts as i64 - p.video_ts as i64;
                    stream.active = p.active;
                    stream.time = now.saturating_sub(p.since);
                    stream.bytes_in = p.bytes;
                    stream.bw_in = p.rate.bits_per_sec(now, p.bytes);
                    stream.bw_audio = p.audio_rate.bits_per_sec(now, p.audio);
                    stream.bw_video = p.video_rate.bits_per_sec(now, p.video);
                    stream.codec = Some(p.codec.clone());
                } else {
                    client.active = st.source.is_some();
                    stream.bytes_out += c.bytes_out;
                    stream.bw_out += c.out_rate.bits_per_sec(now, c.bytes_out);
                    if !stream.publishing {
                        stream.time = stream.time.max(client.time);
                    }
                }
                stream.clients.push(client);
            }
            app.streams.push(stream);
        }
        // Players see the publisher's clock; HLS viewers are counted by stream name.
        for s in snap.servers.iter_mut().flat_map(|s| &mut s.apps).flat_map(|a| &mut a.streams) {
            s.hls_viewers = self.totals.hls.count(&s.name, now);
            let (ts, avsync) = s.clients.iter().find(|c| c.publishing).map_or((0, 0), |p| (p.timestamp, p.avsync));
            for c in s.clients.iter_mut().filter(|c| !c.publishing) {
                c.timestamp = ts;
                c.avsync = avsync;
            }
        }
        snap
    }
}
