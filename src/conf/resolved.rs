//! What a worker runs with: the `rtmp {}` block resolved into servers and applications,
//! each application's live, HLS and recording settings worked out once (relative paths
//! from nginx's prefix), and the worker-wide settings. Plain data, shared by the
//! application core (`crate::app`) and the glue.

use super::notify::Event as Cb;
use super::{Live, ResolvedServer, Rtmp};
use crate::hls;
use crate::notify::{Method, Url};
use crate::record;

/// A recorder of an application, and where its file ends are reported (`on_record_done`).
#[derive(Clone, Debug)]
pub struct RecorderConf {
    pub cfg: record::Config,
    pub on_done: Option<Url>,
    pub method: Method,
}

/// An application's settings as its streams use them.
#[derive(Clone, Debug)]
pub struct AppRun {
    pub live: Live,
    /// `hls on`: its settings.
    pub hls: Option<hls::Config>,
    pub recorders: Vec<RecorderConf>,
}

#[derive(Clone, Debug, Default)]
pub struct Resolved {
    pub servers: Vec<ResolvedServer>,
    /// By server and application.
    pub apps: Vec<Vec<AppRun>>,
    /// Directories the `hls_cleanup` sweep keeps tidy, and how long files stay.
    pub hls_sweeps: Vec<(String, u64)>,
    /// `drain_timeout` (None: `off`).
    pub drain_timeout: Option<u64>,
}

impl Resolved {
    pub fn new(tree: &Rtmp, servers: Vec<ResolvedServer>, prefix: &str) -> Resolved {
        let apps: Vec<Vec<AppRun>> = servers
            .iter()
            .map(|s| {
                s.apps
                    .iter()
                    .map(|app| AppRun {
                        live: app.live(),
                        hls: app.hls(prefix),
                        recorders: app
                            .recorders(prefix)
                            .into_iter()
                            .map(|(cfg, settings)| RecorderConf {
                                cfg,
                                on_done: settings.notify.url(Cb::RecordDone).cloned(),
                                method: settings.notify.method(),
                            })
                            .collect(),
                    })
                    .collect()
            })
            .collect();
        let hls_sweeps = sweeps(apps.iter().flatten().filter_map(|a| a.hls.as_ref()));
        Resolved { servers, apps, hls_sweeps, drain_timeout: tree.drain_timeout() }
    }

    pub fn app(&self, server: usize, app: usize) -> Option<&AppRun> {
        self.apps.get(server)?.get(app)
    }
}

/// Directories `hls_cleanup` sweeps, with how long their files are kept: the playlist
/// length, or the longest fragment if that is longer (a live playlist is rewritten at
/// least that often). Directories an `hls_type event` application writes to are never
/// swept: an event playlist keeps all its segments.
pub fn sweeps<'a>(configs: impl Iterator<Item = &'a hls::Config> + Clone) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = Vec::new();
    let event_dirs: Vec<&String> = configs.clone().filter(|c| c.event).flat_map(|c| [&c.path, &c.key_path]).collect();
    for c in configs {
        if !c.cleanup || c.event {
            continue;
        }
        let keep = c.playlist_length.max(c.max_fragment);
        let mut dirs = vec![c.path.clone()];
        if c.keys && c.key_path != c.path {
            dirs.push(c.key_path.clone());
        }
        for d in dirs {
            if event_dirs.contains(&&d) {
                continue;
            }
            match out.iter_mut().find(|(p, _)| *p == d) {
                Some((_, k)) => *k = (*k).max(keep),
                None => out.push((d, keep)),
            }
        }
    }
    out
}
