//! nginx-rtmp-module's control API: `record/start|stop`, `drop/...` and `redirect/...`
//! with `publisher`, `subscriber` or `client`, filtered by `srv`, `app`, `name`, `addr`,
//! `clientid`. It acts on streams and their clients.

use super::output::Cx;
use super::{App, ClientId, Now};
use crate::conf::access::Action;

/// What `/control` answers: how many clients it acted on, or a recording's file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    Count(usize),
    Path(Option<String>),
}

impl App {
    pub fn control(&mut self, section: &str, method: &str, arg: &dyn Fn(&str) -> Option<String>, now: &Now) -> Result<Answer, String> {
        // Which role: Some(true) players, Some(false) publishers, None both.
        let want = match (section, method) {
            ("record", _) => Some(false),
            (_, "publisher") => Some(false),
            (_, "subscriber") => Some(true),
            (_, "client") => None,
            _ => return Err("Undefined filter".into()),
        };
        let srv = arg("srv").map_or(Some(0), |s| s.parse::<usize>().ok());
        let Some(srv) = srv.filter(|&s| s < self.conf.servers.len()) else { return Err("Server index out of range".into()) };
        let (app, name, addr) = (arg("app"), arg("name"), arg("addr"));
        let clientid = arg("clientid").map(|s| s.parse::<u64>().unwrap_or(u64::MAX));
        // The streams that match, then their publishers and players that do.
        let mut targets: Vec<(ClientId, u32, bool)> = vec![];
        for (sid, st) in self.streams.iter() {
            let key = &st.key;
            if key.server != srv || app.as_deref().is_some_and(|a| a != key.app) || name.as_deref().is_some_and(|n| n != key.name) {
                continue;
            }
            let publisher = st.source.map(|p| (p, st.source_msid, false));
            let players = st.players.iter().filter_map(|&p| Some((p, self.clients.get(p)?.roles.iter().find(|r| r.stream == sid)?.msid, true)));
            for (id, msid, player) in publisher.into_iter().chain(players) {
                // (The pulls between workers are not clients: the worker that has the
                // stream acts on it, each worker on its own players.)
                let Some(c) = self.clients.get(id).filter(|c| c.kind != super::Kind::Peer && !c.relay().is_some_and(|r| r.peer)) else { continue };
                if want.is_some_and(|p| p != player) || addr.as_deref().is_some_and(|a| a != &*c.addr) || clientid.is_some_and(|n| n != c.number) {
                    continue;
                }
                targets.push((id, msid, player));
            }
        }
        match section {
            "drop" => {
                let mut ids: Vec<ClientId> = targets.iter().map(|t| t.0).collect();
                ids.sort_unstable();
                ids.dedup();
                for &id in &ids {
                    self.info(id, "dropped through the control API".into());
                    self.close(id, now);
                }
                Ok(Answer::Count(ids.len()))
            }
            "redirect" => {
                let newname = arg("newname").ok_or("newname not specified")?;
                for &(id, msid, player) in &targets {
                    self.info(id, format!("redirected to \"{}\" through the control API", newname.escape_debug()));
                    self.end_stream(id, msid, now);
                    let action = if player { Action::Play } else { Action::Publish };
                    if let Some(key) = self.admit(id, msid, &newname, action) {
                        if player {
                            self.start_play(id, msid, key, newname.clone(), String::new(), now);
                        } else {
                            self.start_publish(id, msid, key, newname.clone(), String::new(), now);
                        }
                    }
                    self.ready(id);
                }
                Ok(Answer::Count(targets.len()))
            }
            _ => {
                let start = match method {
                    "start" => true,
                    "stop" => false,
                    _ => return Err("Undefined method".into()),
                };
                let rec = arg("rec").unwrap_or_default();
                let mut path = None;
                for &(id, msid, _) in &targets {
                    let Some(sid) = self.clients.get(id).and_then(|c| c.role(msid)).map(|r| r.stream) else { continue };
                    let Some(s) = self.streams.get_mut(sid) else { continue };
                    let mut asks = Vec::new();
                    let mut found = false;
                    for o in s.outputs.iter_mut() {
                        let Some(r) = o.recording().filter(|r| r.id() == rec) else { continue };
                        let mut cx = Cx { now, asks: &mut asks };
                        let p = if start { r.start(&mut cx) } else { r.stop(&mut cx) };
                        path = p.or(path);
                        found = true;
                        break;
                    }
                    self.apply_asks(id, sid, asks, now);
                    if !found {
                        return Err("Recorder not found".into());
                    }
                }
                Ok(Answer::Path(path))
            }
        }
    }
}

/// An answer as one line, for another worker (`glue/peer_control.rs`).
pub fn encode(a: &Result<Answer, String>) -> String {
    let one_line = |s: &str| s.replace(['\n', '\r'], " ");
    match a {
        Ok(Answer::Count(n)) => format!("C {n}\n"),
        Ok(Answer::Path(Some(p))) => format!("P {}\n", one_line(p)),
        Ok(Answer::Path(None)) => "N\n".into(),
        Err(why) => format!("E {}\n", one_line(why)),
    }
}

pub fn decode(line: &[u8]) -> Option<Result<Answer, String>> {
    let line = std::str::from_utf8(line).ok()?.trim_end_matches('\n');
    let (tag, rest) = line.split_once(' ').unwrap_or((line, ""));
    Some(match tag {
        "C" => Ok(Answer::Count(rest.parse().ok()?)),
        "P" => Ok(Answer::Path(Some(rest.to_owned()))),
        "N" => Ok(Answer::Path(None)),
        "E" => Err(rest.to_owned()),
        _ => return None,
    })
}

/// The answers of every worker as one: counts add up, the first path found is the one.
pub fn combine(mine: Result<Answer, String>, others: Vec<Result<Answer, String>>) -> Result<Answer, String> {
    let mut out = mine?;
    for o in others.into_iter().flatten() {
        out = match (out, o) {
            (Answer::Count(a), Answer::Count(b)) => Answer::Count(a + b),
            (Answer::Path(None), p @ Answer::Path(_)) => p,
            (a, _) => a,
        };
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_travel_and_add_up() {
        for a in [Ok(Answer::Count(3)), Ok(Answer::Path(Some("/rec/a.flv".into()))), Ok(Answer::Path(None)), Err("Undefined filter".to_owned())] {
            let line = encode(&a);
            assert_eq!(decode(line.as_bytes()), Some(a));
        }
        assert_eq!(combine(Ok(Answer::Count(1)), vec![Ok(Answer::Count(2)), Err("x".into())]), Ok(Answer::Count(3)));
        assert_eq!(combine(Ok(Answer::Path(None)), vec![Ok(Answer::Path(Some("p".into())))]), Ok(Answer::Path(Some("p".into()))));
        assert_eq!(combine(Err("bad".into()), vec![Ok(Answer::Count(2))]), Err("bad".into()));
    }
}
