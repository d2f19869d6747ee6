//! Streams of other workers: every worker of an nginx (several `worker_processes`, or old
//! workers still finishing after a reload) serves every stream. A stream lives in the
//! worker of its publisher, which says so in shared memory (`Workers::claim`); a player on
//! another worker joins a local copy of it, fed by one RTMP pull over a Unix socket from
//! the publisher's worker (a `Kind::Peer` player there). So a stream's players spread over
//! every worker while HLS, recording, exec, relays and callbacks happen once, in the
//! publisher's worker; a second publisher of a name another worker has is refused
//! (`NetStream.Publish.BadName`), as on one worker. The copy (a "mirror") has no outputs.

use super::relay::Open;
use super::{App, Now};
use crate::live::StreamKey;
use crate::rtmp::client::{Client as RelaySession, Mode};

/// Another worker that publishes a stream: where it takes our pull.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub pid: i32,
    /// Its Unix socket for the stream's server.
    pub path: String,
}

/// The registry of who publishes what, shared by the workers (the glue keeps it in shared
/// memory; `Alone` is a worker by itself, as in `cargo test`).
pub trait Workers {
    /// Takes `key` for a publisher of this worker: false if another live worker has it.
    fn claim(&mut self, key: &StreamKey) -> bool;
    /// Gives `key` up (if this worker has it).
    fn release(&mut self, key: &StreamKey);
    /// The other live worker publishing `key`, if any.
    fn owner(&mut self, key: &StreamKey) -> Option<Peer>;
    /// How long to wait before looking again for a stream's worker (`rtmp_auto_push_reconnect`).
    fn retry_ms(&self) -> u64;
}

/// A stream key's hash in the registry (FNV-1a 64; never 0 or 1, which mark an empty and
/// a freed entry).
pub fn key_hash(key: &StreamKey) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let server = (key.server as u64).to_le_bytes();
    for b in server.iter().chain(key.app.as_bytes()).chain(&[0]).chain(key.name.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h.max(2)
}

/// The registry's table (in shared memory, under a lock the caller holds): open
/// addressing by the key's hash, linear probing, freed entries kept as tombstones so that
/// the probes for other keys go on past them.
pub mod table {
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Entry {
        pub hash: u64,
        pub pid: i64,
    }

    const EMPTY: u64 = 0;
    const FREED: u64 = 1;
    pub const NONE: Entry = Entry { hash: EMPTY, pid: 0 };

    /// What `claim` found.
    #[derive(Debug, PartialEq, Eq)]
    pub enum Claim {
        /// The stream is this worker's now (or was already).
        Taken,
        /// Another live worker publishes it.
        Held(i64),
        /// The table is full.
        Full,
    }

    fn probe(t: &[Entry], hash: u64) -> impl Iterator<Item = usize> + '_ {
        let n = t.len();
        let start = (hash % n as u64) as usize;
        (0..n).map(move |i| (start + i) % n)
    }

    fn find(t: &[Entry], hash: u64) -> Option<usize> {
        probe(t, hash).take_while(|&i| t[i].hash != EMPTY).find(|&i| t[i].hash == hash)
    }

    /// Takes `hash` for worker `me` (an entry of a worker that is not `alive` is free).
    pub fn claim(t: &mut [Entry], hash: u64, me: i64, alive: impl Fn(i64) -> bool) -> Claim {
        if let Some(i) = find(t, hash) {
            if t[i].pid != me && alive(t[i].pid) {
                return Claim::Held(t[i].pid);
            }
            t[i].pid = me;
            return Claim::Taken;
        }
        let free = probe(t, hash).find(|&i| t[i].hash == EMPTY || t[i].hash == FREED);
        // (A full table: the entries of workers that are gone are taken back.)
        match free.or_else(|| probe(t, hash).find(|&i| !alive(t[i].pid))) {
            Some(i) => {
                t[i] = Entry { hash, pid: me };
                Claim::Taken
            }
            None => Claim::Full,
        }
    }

    /// Gives `hash` up if worker `me` has it.
    pub fn release(t: &mut [Entry], hash: u64, me: i64) {
        if let Some(i) = find(t, hash).filter(|&i| t[i].pid == me) {
            t[i] = Entry { hash: FREED, pid: 0 };
        }
    }

    /// Every stream of worker `me` is given up.
    pub fn release_all(t: &mut [Entry], me: i64) {
        for e in t.iter_mut().filter(|e| e.hash > FREED && e.pid == me) {
            *e = Entry { hash: FREED, pid: 0 };
        }
    }

    /// The worker that has `hash`, if any.
    pub fn owner(t: &[Entry], hash: u64) -> Option<i64> {
        find(t, hash).map(|i| t[i].pid)
    }
}

/// A worker with no others.
pub struct Alone;

impl Workers for Alone {
    fn claim(&mut self, _: &StreamKey) -> bool {
        true
    }
    fn release(&mut self, _: &StreamKey) {}
    fn owner(&mut self, _: &StreamKey) -> Option<Peer> {
        None
    }
    fn retry_ms(&self) -> u64 {
        100
    }
}

/// The `flashVer` of a worker's pull from another.
pub const FLASH_VER: &str = crate::stat::WORKER_FLASHVER;

impl App {
    /// A player waits for `key`, which has no publisher here: the worker that publishes it
    /// is pulled from, now or as soon as one does (looked for every `retry_ms`). Unless the
    /// application `pull`s it from elsewhere and no worker has it yet.
    pub(super) fn peer_wanted(&mut self, key: &StreamKey, app: usize, has_pulls: bool, now: &Now) -> bool {
        if self.is_live(key) || self.pulling(key) || self.relays.stopping {
            return true;
        }
        if has_pulls && self.workers.owner(key).is_none() {
            return false;
        }
        let task = self.new_task(Mode::Play, key.clone(), app, vec![], false, "");
        self.relays.set_peer(task);
        self.attempt(task, now);
        true
    }

    /// Connects a peer task to the worker that publishes its stream, or waits for one.
    /// Returns the client made.
    pub(super) fn peer_attempt(&mut self, task: u64, key: StreamKey, app: usize, now: &Now) -> Option<super::ClientId> {
        let Some(peer) = self.workers.owner(&key) else {
            let at = now.ms + self.workers.retry_ms();
            self.relays.retry(task, at);
            self.effects.push_back(super::Effect::Wake(at));
            return None;
        };
        let core = &self.conf.servers[key.server].core;
        let seed = self.clients.next_id() ^ (now.ms << 20);
        let url = format!("unix:{}", peer.path);
        let tc_url = format!("rtmp://localhost/{}", key.app);
        let session = RelaySession::new(Mode::Play, &key.app, &tc_url, &key.name, core.chunk_size as usize, core.max_message as usize, seed)
            .with_flash_ver(FLASH_VER);
        let open = Open {
            server: key.server,
            app,
            mode: Mode::Play,
            key,
            url: &url,
            host: "localhost",
            port: 0,
            addr: None,
            unix: Some(peer.path.clone()),
            tls: None,
            session,
            task: Some(task),
        };
        Some(self.open_relay(open, now))
    }

    /// The delay before a peer task looks again, after `failures` failed connections (a
    /// worker that refuses, or went away).
    pub(super) fn peer_retry(&self, failures: u32) -> u64 {
        let base = self.workers.retry_ms().max(1);
        base.saturating_mul(1 << failures.saturating_sub(1).min(5)).min(base.max(2000))
    }
}

#[cfg(test)]
mod tests {
    use super::table::{self, Claim, NONE};
    use super::key_hash;
    use crate::live::StreamKey;

    #[test]
    fn the_registry_finds_past_freed_entries_and_takes_back_dead_workers() {
        let mut t = [NONE; 8];
        let alive = |pid: i64| pid != 666;
        // Three keys on one probe chain (all hash to slot 2).
        assert_eq!(table::claim(&mut t, 2, 10, alive), Claim::Taken);
        assert_eq!(table::claim(&mut t, 10, 11, alive), Claim::Taken);
        assert_eq!(table::claim(&mut t, 18, 12, alive), Claim::Taken);
        assert_eq!(table::claim(&mut t, 10, 12, alive), Claim::Held(11), "a second publisher is refused");
        assert_eq!(table::claim(&mut t, 10, 11, alive), Claim::Taken, "its own worker again");
        table::release(&mut t, 10, 12);
        assert_eq!(table::owner(&t, 10), Some(11), "only its worker gives it up");
        table::release(&mut t, 10, 11);
        assert_eq!(table::owner(&t, 10), None);
        assert_eq!(table::owner(&t, 18), Some(12), "found past the freed entry");
        assert_eq!(table::claim(&mut t, 26, 13, alive), Claim::Taken, "the freed entry is used again");
        table::release_all(&mut t, 12);
        assert_eq!(table::owner(&t, 18), None);
        // A worker killed: its streams can be taken.
        assert_eq!(table::claim(&mut t, 3, 666, |_| true), Claim::Taken);
        assert_eq!(table::claim(&mut t, 3, 20, alive), Claim::Taken);
        // Full: entries of dead workers are taken back, else Full.
        let mut full = [table::Entry { hash: 5, pid: 666 }; 4];
        full.iter_mut().enumerate().for_each(|(i, e)| e.hash = 100 + i as u64);
        assert_eq!(table::claim(&mut full, 7, 1, alive), Claim::Taken);
        assert_eq!(table::claim(&mut [table::Entry { hash: 9, pid: 1 }; 1], 7, 2, alive), Claim::Full);
    }

    #[test]
    fn keys_hash_apart() {
        let k = |server, app: &str, name: &str| StreamKey { server, app: app.into(), name: name.into() };
        assert_ne!(key_hash(&k(0, "live", "a")), key_hash(&k(1, "live", "a")));
        assert_ne!(key_hash(&k(0, "live", "ab")), key_hash(&k(0, "livea", "b")));
        assert_ne!(key_hash(&k(0, "live", "a")), 0);
    }
}
