//! `merge_reads`: when a publisher's input is read. Reading every frame as it comes wakes
//! the worker for each; a publisher read in batches (every `merge_reads TIME`, or with
//! `merge_reads auto` every 500 ms while nobody plays it over RTMP, at the players'
//! `merge_writes` pace while they do) costs one wake-up per batch. The glue does the
//! reading (`Effect::Pace`); this decides the pace.

use super::{App, ClientId, Effect, Kind};
use crate::conf::{auto_merge_reads, MergeReads};

impl App {
    /// How often a client's input is to be read now, in ms (0: as it comes). Only a
    /// publisher's input waits, and only once each of its HLS outputs has settled (three
    /// segments listed: its first playlists come as early as without, and a player joining
    /// a new stream, at its live edge, gets every update at once).
    fn read_pace(&self, id: ClientId) -> u64 {
        let Some(c) = self.clients.get(id) else { return 0 };
        let Some(run) = c.app.and_then(|a| self.conf.app(c.server, a)) else { return 0 };
        // (Relays are read as they come; a WHIP session's socketpair wakes the worker for
        // every message whatever its low-water mark, so batching would only add a timer.)
        if c.relay().is_some() || c.kind == Kind::Whip {
            return 0;
        }
        let streams: Vec<_> = c.roles.iter().filter(|r| r.publishes()).filter_map(|r| self.streams.get(r.stream)).collect();
        if streams.is_empty() || streams.iter().any(|s| s.outputs.iter().any(|o| !o.settled())) {
            return 0;
        }
        match run.live.merge_reads {
            MergeReads::Every(ms) => ms,
            MergeReads::Auto => {
                if streams.iter().any(|s| !s.players.is_empty()) {
                    run.live.merge_writes
                } else {
                    auto_merge_reads(streams.iter().flat_map(|s| s.outputs.iter().filter_map(|o| o.fragment_ms())))
                }
            }
        }
    }

    /// Puts a client's reading at its pace (told to the glue when it changes).
    pub(super) fn repace(&mut self, id: ClientId) {
        let pace = self.read_pace(id);
        let Some(c) = self.clients.get_mut(id) else { return };
        if pace == c.pace {
            return;
        }
        c.pace = pace;
        if pace == 0 {
            // (Read as it comes: the input buffer's memory goes back.)
            if let Some(s) = c.session() {
                s.shrink_input();
            }
        }
        self.effects.push_back(Effect::Pace(id, pace));
    }

    /// How often the client is read (0: as it comes).
    pub fn pace(&self, id: ClientId) -> u64 {
        self.clients.get(id).map_or(0, |c| c.pace)
    }
}
