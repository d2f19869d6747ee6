//! Relays, as a notify redirect to an `rtmp://` URL starts them (nginx-rtmp-module's
//! way): a push is a client of ours that plays the local stream to another server; a pull
//! publishes another server's stream into the local one, and ends 10 s after its last
//! player left. Relays make no callbacks of their own.

use std::net::IpAddr;

use super::client::{Client, Proto, Relay};
use super::{App, ClientId, Connect, Effect, Kind, Level, Now};
use crate::live::StreamKey;
use crate::rtmp::client::{parse_url, Client as RelaySession, ClientEvent, Mode};
use crate::rtmp::session::ConnectInfo;

/// How long a pull relay stays without players.
const PULL_IDLE_MS: u64 = 10_000;

/// The local name of a relayed stream with `notify_relay_redirect on`: made from the URL
/// (nginx-rtmp-module uses its MD5; here the first 16 bytes of its SHA-256, in hex).
pub fn relay_name(url: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(url.as_bytes())[..16].iter().map(|b| format!("{b:02x}")).collect()
}

impl App {
    /// Whether a pull relay into `key` is under way.
    pub(super) fn pulling(&self, key: &StreamKey) -> bool {
        self.clients.iter().any(|(_, c)| c.relay().is_some_and(|r| r.mode == Mode::Play && r.key == *key))
    }

    /// Opens a relay for the stream `key` of client `from`'s server: pushing it to `url`
    /// (`Mode::Publish`) or pulling `url` into it (`Mode::Play`).
    pub(super) fn start_relay(&mut self, from: ClientId, mode: Mode, url: &str, key: StreamKey, now: &Now) -> Result<(), String> {
        let (host, port, app, stream) = parse_url(url).ok_or("not an rtmp://HOST[:PORT]/APP/STREAM URL")?;
        // nginx-rtmp-module wants an IP address here too.
        let ip: IpAddr = host.parse().map_err(|_| format!("\"{host}\" is not an IP address"))?;
        let f = self.clients.get(from).ok_or("the client is gone")?;
        let (server, app_index) = (f.server, f.app);
        let core = &self.conf.servers[server].core;
        let seed = self.clients.next_id() ^ (now.ms << 20);
        let tc_url = url.rsplit_once('/').map_or(url, |(a, _)| a);
        let session = RelaySession::new(mode, &app, tc_url, &stream, core.chunk_size as usize, core.max_message as usize, seed);
        let (verb, dir) = if mode == Mode::Publish { ("pushing", "to") } else { ("pulling", "from") };
        let what = format!("{verb} \"{}/{}\" {dir} {url}", key.app, key.name);
        let text = format!("{ip}:{port}");
        let relay = Relay { session, mode, key: key.clone(), url: url.to_owned(), idle_since: None };
        let mut c = Client::new(server, Kind::Rtmp, 0, &text, ip, now.ms, Proto::Relay(Box::new(relay)));
        c.app = app_index;
        c.info = Some(Box::new(ConnectInfo { app: key.app, flash_ver: "ngx-rtmp-rs relay".into(), tc_url: url.to_owned(), ..ConnectInfo::default() }));
        // C0 C1, written once the connection is made.
        c.drain_session();
        let id = self.clients.insert(c);
        let addr = std::net::SocketAddr::new(ip, port);
        self.effects.push_back(Effect::Connect(id, Box::new(Connect { addr, text, url: url.to_owned() })));
        self.info(id, format!("relay: {what}"));
        self.ready(id);
        Ok(())
    }

    /// The glue opened a relay's connection: its nginx connection number.
    pub fn relay_opened(&mut self, id: ClientId, number: u64) {
        if let Some(c) = self.clients.get_mut(id) {
            c.number = number;
        }
    }

    /// Bytes from the server a relay talks to.
    pub(super) fn relay_received(&mut self, id: ClientId, data: &[u8], now: &Now) {
        let Some(r) = self.clients.get_mut(id).and_then(Client::relay_mut) else { return };
        if let Err(e) = r.session.feed(data) {
            let url = r.url.clone();
            self.info(id, format!("relay {url}: {e}"));
            return self.close(id, now);
        }
        loop {
            let Some(r) = self.clients.get_mut(id).and_then(Client::relay_mut) else { return };
            let Some(ev) = r.session.poll_event() else { break };
            let (mode, key, url) = (r.mode, r.key.clone(), r.url.clone());
            match ev {
                ClientEvent::Ready { msid } => match mode {
                    Mode::Publish if !self.is_live(&key) => {
                        // The stream ended before the server took the push.
                        return self.close(id, now);
                    }
                    Mode::Publish => {
                        let name = key.name.clone();
                        self.join(id, msid, key, name, String::new(), now);
                    }
                    Mode::Play => {
                        let name = key.name.clone();
                        self.start_publish(id, msid, key, name, String::new(), now);
                    }
                },
                ClientEvent::Media { kind, timestamp, payload } => {
                    let msid = self.clients.get(id).and_then(|c| c.roles.first()).map_or(0, |r| r.msid);
                    self.media(id, msid, kind, timestamp, payload, now);
                }
                ClientEvent::KeyframeRequest => {}
                ClientEvent::Failed(why) => {
                    self.info(id, format!("relay {url}: the server said {why}"));
                    return self.close(id, now);
                }
            }
        }
        if let Some(c) = self.clients.get_mut(id) {
            c.drain_session();
            if c.has_own_output() {
                self.ready(id);
            }
        }
    }

    /// Ends pull relays whose stream has had no player for a while (from the 1 s tick).
    pub(super) fn end_idle_pulls(&mut self, now: &Now) {
        let mut idle = vec![];
        let players = |app: &App, key: &StreamKey| app.stream_of(key).and_then(|s| app.streams.get(s)).map_or(0, |s| s.players.len());
        let pulls: Vec<(ClientId, StreamKey)> = self
            .clients
            .iter()
            .filter_map(|(id, c)| c.relay().filter(|r| r.mode == Mode::Play).map(|r| (id, r.key.clone())))
            .collect();
        for (id, key) in pulls {
            let watched = players(self, &key) > 0;
            let Some(r) = self.clients.get_mut(id).and_then(Client::relay_mut) else { continue };
            if watched {
                r.idle_since = None;
            } else if now.ms.saturating_sub(*r.idle_since.get_or_insert(now.ms)) >= PULL_IDLE_MS {
                idle.push(id);
            }
        }
        for id in idle {
            self.log(Some(id), Level::Info, "relay: no players left, ending the pull".into());
            self.close(id, now);
        }
    }
}
