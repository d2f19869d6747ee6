//! A stream's recorders (`record`, `recorder NAME {}`): one `crate::record::Recorder` each,
//! what it reports turned into log lines, `NetStream.Record.*` statuses to the publisher
//! (`record_notify`), `on_record_done` calls and `exec_record_done` commands.

use super::{Ask, Count, Cx, Output, Recording};
use crate::app::Level;
use crate::conf::resolved::RecorderConf;
use crate::media::Frame;
use crate::record::{Files, Notice, Recorder};

pub struct Record {
    r: Recorder<Box<dyn Files>>,
    on_done: Option<(crate::notify::Url, crate::notify::Method)>,
    /// `exec_record_done` lines.
    exec_done: std::sync::Arc<[crate::exec::Command]>,
    /// The stream name and arguments as the client published them (for the callback).
    name: String,
    args: String,
}

impl Record {
    pub fn new(conf: &RecorderConf, stream: &str, name: &str, args: &str, files: Box<dyn Files>) -> Record {
        Record {
            r: Recorder::new(conf.cfg.clone(), stream, files),
            on_done: conf.on_done.clone().map(|u| (u, conf.method)),
            exec_done: conf.exec_done.clone(),
            name: name.to_owned(),
            args: args.to_owned(),
        }
    }

    /// Acts on what the recorder reports.
    fn notices(&mut self, cx: &mut Cx) {
        let notices = self.r.take_notices();
        if notices.is_empty() {
            return;
        }
        let (id, notify) = (self.r.config().id.clone(), self.r.config().notify);
        let label = if id.is_empty() { String::new() } else { format!(" (recorder \"{id}\")") };
        for n in notices {
            let (level, code) = match &n {
                Notice::Started { path } => {
                    cx.asks.push(Ask::Log(Level::Info, format!("record{label}: \"{path}\"")));
                    ("status", "NetStream.Record.Start")
                }
                Notice::Done { path } => {
                    cx.asks.push(Ask::Log(Level::Info, format!("record{label}: \"{path}\" done")));
                    if let Some((url, method)) = &self.on_done {
                        cx.asks.push(Ask::RecordDone {
                            url: url.clone(),
                            method: *method,
                            recorder: id.clone(),
                            name: self.name.clone(),
                            path: path.clone(),
                            args: self.args.clone(),
                        });
                    }
                    if !self.exec_done.is_empty() {
                        cx.asks.push(Ask::ExecRecordDone {
                            commands: self.exec_done.clone(),
                            recorder: id.clone(),
                            name: self.name.clone(),
                            path: path.clone(),
                        });
                    }
                    cx.asks.push(Ask::Count(Count::RecordFile));
                    ("status", "NetStream.Record.Stop")
                }
                Notice::Failed { why, .. } => {
                    cx.asks.push(Ask::Log(Level::Err, format!("record{label}: {why}; this recording stops, the stream goes on")));
                    cx.asks.push(Ask::Count(Count::RecordError));
                    ("error", "NetStream.Record.Failed")
                }
            };
            if notify {
                cx.asks.push(Ask::Status { level, code, description: id.clone() });
            }
        }
    }
}

impl Output for Record {
    fn frame(&mut self, f: &Frame, cx: &mut Cx) {
        self.r.frame(f, &cx.now.record());
        self.notices(cx);
    }

    fn end(&mut self, cx: &mut Cx) {
        self.r.finish();
        self.notices(cx);
    }

    fn recording(&mut self) -> Option<&mut dyn Recording> {
        Some(self)
    }

    fn recording_now(&self) -> bool {
        self.r.current().is_some()
    }
}

impl Recording for Record {
    fn id(&self) -> &str {
        &self.r.config().id
    }

    fn start(&mut self, cx: &mut Cx) -> Option<String> {
        let p = self.r.start(&cx.now.record());
        self.notices(cx);
        p
    }

    fn stop(&mut self, cx: &mut Cx) -> Option<String> {
        let p = self.r.stop();
        self.notices(cx);
        p
    }
}
