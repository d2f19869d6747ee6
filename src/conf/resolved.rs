//! What a worker runs with: the `rtmp {}` block resolved into servers and applications,
//! each application's live, HLS and recording settings worked out once (relative paths
//! from nginx's prefix), and the worker-wide settings. Plain data, shared by the
//! application core (`crate::app`) and the glue.

use std::sync::Arc;

use super::exec::{ExecSettings, Policy, When};
use super::notify::Event as Cb;
use super::transcode::Rendition;
use crate::exec::Command;
use super::log::{AccessLog, Format};
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
    /// `exec_record_done` lines.
    pub exec_done: Arc<[Command]>,
}

/// An application's settings as its streams use them.
#[derive(Clone, Debug)]
pub struct AppRun {
    pub live: Live,
    /// `hls on`: its settings.
    pub hls: Option<hls::Config>,
    /// `dash on`: its settings.
    pub dash: Option<crate::dash::Config>,
    pub recorders: Vec<RecorderConf>,
    /// The `exec*` lines and how supervised children run.
    pub exec: Exec,
    /// `transcode`: the ladder's renditions, and the ffmpeg that makes them.
    pub ladder: Arc<[Rendition]>,
    pub ffmpeg: String,
    /// Where its sessions are logged (`access_log`).
    pub access_logs: Vec<LogTo>,
    /// `push` and `pull` lines and their reconnect delays.
    pub relays: Arc<super::relay::Relays>,
    /// `play` (VOD).
    pub play: Arc<Play>,
}

/// Where `play` finds files, in order.
#[derive(Clone, Debug, Default)]
pub struct Play {
    pub sources: Vec<PlaySource>,
    /// `play_temp_path`: where a file fetched over HTTP is written while it comes.
    pub temp_path: String,
    /// `play_local_path`: where a fetched file is kept once complete (and looked for
    /// first next time).
    pub local_path: Option<String>,
}

#[derive(Clone, Debug)]
pub enum PlaySource {
    Dir(String),
    Http(Url),
}

/// One `access_log`: a file of [`Resolved::access_files`] and a format of
/// [`Resolved::log_formats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogTo {
    pub file: usize,
    pub format: usize,
}

/// An application's exec lines, by event.
#[derive(Clone, Debug, Default)]
pub struct Exec {
    pub push: Arc<[Command]>,
    pub pull: Arc<[Command]>,
    pub publish: Arc<[Command]>,
    pub publish_done: Arc<[Command]>,
    pub play: Arc<[Command]>,
    pub play_done: Arc<[Command]>,
    pub policy: Option<Policy>,
}

impl Exec {
    fn new(s: &ExecSettings) -> Exec {
        let l = |w| Arc::from(s.lines(w));
        Exec {
            push: l(When::Push),
            pull: l(When::Pull),
            publish: l(When::Publish),
            publish_done: l(When::PublishDone),
            play: l(When::Play),
            play_done: l(When::PlayDone),
            policy: Some(s.policy()),
        }
    }

    pub fn policy(&self) -> Policy {
        self.policy.unwrap_or_else(|| ExecSettings::default().policy())
    }
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
    /// `exec_static` lines (from every level), and how they run (the `rtmp {}` block's
    /// settings).
    pub exec_static: Arc<[Command]>,
    pub exec_static_policy: Option<Policy>,
    /// Access log files (as written, relative to nginx's prefix; the glue opens them
    /// through nginx, which reopens them on `nginx -s reopen`).
    pub access_files: Vec<String>,
    pub log_formats: Arc<[Format]>,
    /// By server: where clients that never reach an application are logged.
    pub server_logs: Vec<Vec<LogTo>>,
    /// Where `rtmps://` relays find the authorities they trust (None: no such relay).
    pub relay_ssl_trusted: Option<String>,
}

impl Resolved {
    /// `default_log`: the access log where no level has `access_log` (nginx's
    /// `NGX_HTTP_LOG_PATH`, as nginx-rtmp-module).
    pub fn new(tree: &Rtmp, servers: Vec<ResolvedServer>, prefix: &str, default_log: &str) -> Resolved {
        let mut access_files: Vec<String> = Vec::new();
        let mut log_to = |a: &Option<AccessLog>| -> Vec<LogTo> {
            let default = [(default_log.to_owned(), "combined".to_owned())];
            let lines: &[(String, String)] = match a {
                Some(AccessLog::Off) => &[],
                Some(AccessLog::To(v)) => v,
                None => &default,
            };
            lines
                .iter()
                .map(|(path, format)| {
                    let file = access_files.iter().position(|p| p == path).unwrap_or_else(|| {
                        access_files.push(path.clone());
                        access_files.len() - 1
                    });
                    LogTo { file, format: tree.log_formats.index_of(format).unwrap_or(0) }
                })
                .collect()
        };
        let server_logs: Vec<Vec<LogTo>> = servers.iter().map(|s| log_to(&s.access_log)).collect();
        let app_logs: Vec<Vec<Vec<LogTo>>> =
            servers.iter().map(|s| s.apps.iter().map(|a| log_to(&a.settings.access_log)).collect()).collect();
        let apps: Vec<Vec<AppRun>> = servers
            .iter()
            .zip(app_logs)
            .map(|(s, logs)| {
                s.apps
                    .iter()
                    .zip(logs)
                    .map(|(app, access_logs)| AppRun {
                        live: app.live(),
                        hls: app.hls(prefix),
                        dash: app.dash(prefix),
                        recorders: app
                            .recorders(prefix)
                            .into_iter()
                            .map(|(cfg, settings)| RecorderConf {
                                cfg,
                                on_done: settings.notify.url(Cb::RecordDone).cloned(),
                                method: settings.notify.method(),
                                exec_done: Arc::from(settings.exec.lines(When::RecordDone)),
                            })
                            .collect(),
                        exec: Exec::new(&app.settings.exec),
                        ladder: Arc::from(app.settings.transcode.renditions()),
                        ffmpeg: app.settings.transcode.ffmpeg().to_owned(),
                        access_logs,
                        relays: Arc::new((&app.settings.relay).into()),
                        play: Arc::new(app.play(prefix)),
                    })
                    .collect()
            })
            .collect();
        let mut hls_sweeps = sweeps(apps.iter().flatten().filter_map(|a| a.hls.as_ref()));
        // (DASH's files are swept the same way, by their own names and length.)
        for c in apps.iter().flatten().filter_map(|a| a.dash.as_ref()).filter(|c| c.cleanup) {
            match hls_sweeps.iter_mut().find(|(p, _)| *p == c.path) {
                Some((_, k)) => *k = (*k).max(c.playlist_length),
                None => hls_sweeps.push((c.path.clone(), c.playlist_length)),
            }
        }
        let exec_static: Vec<Command> = tree.levels().flat_map(|s| s.exec.own_static().iter().cloned()).collect();
        let tls = servers.iter().any(|s| s.notify.any_tls())
            || servers.iter().flat_map(|s| &s.apps).any(|a| {
                a.settings.relay.pushes.iter().chain(&a.settings.relay.pulls).any(|t| t.tls)
                    || a.settings.notify.any_tls()
                    || a.recorders.iter().any(|r| r.settings.notify.any_tls())
            });
        let relay_ssl_trusted =
            tls.then(|| tree.main.relay.ssl_trusted.clone().unwrap_or_else(|| super::relay::DEFAULT_TRUSTED.to_owned()));
        Resolved {
            servers,
            apps,
            hls_sweeps,
            drain_timeout: tree.drain_timeout(),
            exec_static: exec_static.into(),
            exec_static_policy: Some(tree.main.exec.policy()),
            access_files,
            log_formats: tree.log_formats.0.clone().into(),
            server_logs,
            relay_ssl_trusted,
        }
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
