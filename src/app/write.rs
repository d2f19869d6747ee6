//! What is written to whom, and when. A client with something of its own to say (replies,
//! statuses) is ready at once; a stream that got frames makes its players ready at the end
//! of the turn, or at the next point of the worker's `merge_writes` grid (one wake-up per
//! period for every player), or at once after a batched read (the batch is the merge).
//! `take_ready` also drops players that lag beyond `out_queue` and trims the streams'
//! logs. The glue writes each ready client's `pending` buffers (sixteen clients to a
//! system call with io_uring, or a `writev` each) and reports `written`.

use super::client::IOV_PER_WRITE;

/// A stream's log is trimmed every this many frames (positions of every player read).
const TRIM_EVERY: u32 = 32;
use super::{App, ClientId, Effect, Now, StreamId};
use crate::live::fanout::Fanout;

#[derive(Default)]
pub struct Ready {
    clients: Vec<ClientId>,
    /// Streams whose players are to be written this turn.
    dirty: Vec<StreamId>,
    /// Streams whose players are written at their next grid point, with it.
    merged: Vec<(StreamId, u64)>,
    wake_at: Option<u64>,
    /// A batched read is under way: what it brings is written at once.
    pub(super) batch: bool,
}

/// After a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    /// Nothing more to write now.
    Done,
    /// More is waiting (write again when the socket takes it).
    More,
    /// The client is closed (it was to close once written).
    Closed,
}

/// Milliseconds from `now` to the next multiple of `period` (1 to `period`): the worker's
/// periodic work falls on one grid, so that it is due in the same turns.
pub fn grid_delay(now: u64, period: u64) -> u64 {
    period - now % period
}

impl App {
    /// The client has output of its own.
    pub(super) fn ready(&mut self, id: ClientId) {
        if let Some(c) = self.clients.get_mut(id) {
            if !c.ready {
                c.ready = true;
                self.write.clients.push(id);
            }
        }
    }

    /// The stream's log grew (or its players have statuses): its players are written
    /// this turn, or at the next point of its `merge_writes` grid.
    pub(super) fn stream_changed(&mut self, sid: StreamId, now: &Now) {
        let Some(s) = self.streams.get_mut(sid) else { return };
        let merge = self.conf.app(s.key.server, s.app).map_or(0, |a| a.live.merge_writes);
        if merge == 0 || self.write.batch {
            if !s.dirty {
                s.dirty = true;
                self.write.dirty.push(sid);
            }
            return;
        }
        if s.merged || s.dirty {
            return;
        }
        s.merged = true;
        let at = now.ms + grid_delay(now.ms, merge);
        self.write.merged.push((sid, at));
        if self.write.wake_at.is_none_or(|w| at < w) {
            self.write.wake_at = Some(at);
            self.effects.push_back(Effect::Wake(at));
        }
    }

    /// The worker's clock reached a `Wake` time.
    pub fn wake(&mut self, now: &Now) {
        self.relay_due(now);
        self.write.wake_at = None;
        let merged = std::mem::take(&mut self.write.merged);
        let mut next: Option<u64> = None;
        for (sid, at) in merged {
            if at <= now.ms {
                if let Some(s) = self.streams.get_mut(sid) {
                    s.merged = false;
                    if !s.dirty {
                        s.dirty = true;
                        self.write.dirty.push(sid);
                    }
                }
            } else {
                next = Some(next.map_or(at, |n| n.min(at)));
                self.write.merged.push((sid, at));
            }
        }
        if let Some(at) = next {
            self.write.wake_at = Some(at);
            self.effects.push_back(Effect::Wake(at));
        }
    }

    /// A batched read begins (`true`) or ends: what it brings is written at once.
    pub fn batch(&mut self, on: bool) {
        self.write.batch = on;
    }

    /// Whether anything is to be written (the glue then calls `take_ready`).
    pub fn has_ready(&self) -> bool {
        !self.write.clients.is_empty() || !self.write.dirty.is_empty()
    }

    /// The clients to write now: those with output of their own, and the players of
    /// streams that changed. Every `TRIM_EVERY` frames a stream's log is trimmed to what
    /// its players and its GOP still need.
    pub fn take_ready(&mut self, out: &mut Vec<ClientId>, _now: &Now) {
        for sid in std::mem::take(&mut self.write.dirty) {
            let Some(s) = self.streams.get_mut(sid) else { continue };
            s.dirty = false;
            let trim = s.appended >= TRIM_EVERY || s.players.is_empty();
            let mut oldest: Option<u64> = None;
            for &p in &s.players {
                let Some(c) = self.clients.get_mut(p) else { continue };
                if trim {
                    if let Some(cur) = c.roles.iter().find(|r| r.stream == sid).and_then(|r| r.play.as_ref()) {
                        let at = Fanout::position(cur);
                        oldest = Some(oldest.map_or(at, |o| o.min(at)));
                    }
                }
                if !c.ready {
                    c.ready = true;
                    self.write.clients.push(p);
                }
            }
            if trim {
                s.fanout.trim(oldest);
                s.appended = 0;
            }
        }
        for id in self.write.clients.drain(..) {
            if let Some(c) = self.clients.get_mut(id) {
                c.ready = false;
                out.push(id);
            }
        }
    }

    /// What the client is to be written next, in order, at most `IOV_PER_WRITE` buffers:
    /// its own queue, then what it plays from the streams' logs. The buffers stay as they
    /// are until `written` (or any other call that changes this client) is called. A
    /// player more than `out_queue` messages behind gets nothing: `written` drops it; one
    /// less than `out_cork` behind (`buffer`) gets no media yet.
    pub fn pending(&mut self, id: ClientId, room: &mut dyn FnMut(&[u8]) -> bool) -> usize {
        let Some(c) = self.clients.get_mut(id) else { return 0 };
        let queued = c.queued_live() as u64;
        let mut corked = false;
        for r in c.roles.iter_mut() {
            let (Some(cur), Some(s)) = (r.play.as_mut(), self.streams.get(r.stream)) else { continue };
            let lag = s.fanout.lag(cur) + queued;
            if lag > s.out_queue {
                c.too_slow = true;
                return 0;
            }
            corked |= s.cork > 0 && lag < s.cork;
            // (A player on another message stream id than the log's gets copies of its
            // own, in its own queue.)
            if cur.msid != crate::live::fanout::BASE_MSID {
                let mut own = std::mem::take(&mut c.out);
                s.fanout.prepare(cur, &mut own);
                c.out = own;
            }
        }
        let c = &*c;
        let mut n = 0;
        let mut take = |b: &[u8]| {
            if n >= IOV_PER_WRITE {
                return false;
            }
            if !b.is_empty() {
                n += 1;
                return room(b);
            }
            true
        };
        for b in c.own_pending() {
            if !take(b) {
                return n;
            }
        }
        if corked {
            return n;
        }
        for r in &c.roles {
            let (Some(cur), Some(s)) = (r.play.as_ref(), self.streams.get(r.stream)) else { continue };
            let mut full = false;
            s.fanout.pending(cur, &mut |b| {
                let ok = take(b);
                full |= !ok;
                ok
            });
            if full {
                break;
            }
        }
        n
    }

    /// `n` bytes of what `pending` gave were written.
    pub fn written(&mut self, id: ClientId, n: usize, now: &Now) -> Written {
        let Some(c) = self.clients.get_mut(id) else { return Written::Closed };
        if c.too_slow {
            let out_queue = self.conf.servers[c.server].core.out_queue;
            self.info(id, format!("client too slow: more than {out_queue} messages queued (out_queue), dropping it"));
            self.fault(crate::stat::Fault::Slow);
            self.close(id, now);
            return Written::Closed;
        }
        c.bytes_out += n as u64;
        let mut rest = c.own_advance(n);
        let mut more = c.has_own_output();
        for i in 0..c.roles.len() {
            let Some(s) = self.streams.get(c.roles[i].stream) else { continue };
            let Some(cur) = c.roles[i].play.as_mut() else { continue };
            let left = s.fanout.advance(cur, &mut rest);
            more |= s.fanout.has_pending(cur);
            if let Some(left) = left {
                c.queue_front(left);
            }
        }
        let c = self.clients.get(id).expect("checked");
        more |= c.has_own_output();
        if more {
            return Written::More;
        }
        if c.close_after_flush {
            self.close(id, now);
            return Written::Closed;
        }
        Written::Done
    }

    /// Whether the client has anything to be written.
    pub fn has_pending(&self, id: ClientId) -> bool {
        let Some(c) = self.clients.get(id) else { return false };
        c.has_own_output()
            || c.roles.iter().any(|r| match (r.play.as_ref(), self.streams.get(r.stream)) {
                (Some(cur), Some(s)) => s.fanout.has_pending(cur),
                _ => false,
            })
    }
}
