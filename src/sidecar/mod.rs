//! The WHIP sidecar: one thread per nginx worker that owns every WebRTC session of that
//! worker (ICE, DTLS, SRTP on one UDP socket, through webrtc-rs's sans-IO core `rtc`, on
//! a current-thread tokio runtime). It is the only code that runs off nginx's thread.
//!
//! It talks to the worker through two queues: commands in (`Cmd`, an unbounded tokio
//! channel: sending never blocks the event loop), and replies out (`Reply`, a mutex-guarded
//! queue the worker drains when the eventfd it registered with nginx wakes it).
//!
//! Media does not take that queue: each session publishes into the worker like an RTMP
//! client, over its own socketpair (the worker's end is an ordinary RTMP connection, the
//! sidecar's end speaks RTMP with `rtmp::client`). So a WHIP stream is just another
//! publisher: `on_publish` (with the bearer token as an argument), allow/deny, HLS,
//! recording, `/stat`, `drop` all apply unchanged, a publish refused by any of them is
//! refused to the WHIP client, and the kernel's socket buffer is the bounded queue between
//! the sidecar and the worker.

mod audio;
mod play;
mod session;

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use bytes::BytesMut;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::conf::whip::Settings;
use crate::whip::stun;

/// A new session to set up.
pub struct Offer {
    /// The worker's id of the HTTP request waiting for the answer.
    pub req: u64,
    pub sdp: String,
    pub sprop: Option<String>,
    /// The offer has audio (video then waits for the AAC of its time).
    pub audio: bool,
    /// The sidecar's end of the socketpair to the worker's RTMP connection.
    pub rtmp: UnixStream,
    pub app: String,
    /// `NAME` or `NAME?token=...`, as an RTMP client would publish.
    pub stream: String,
    pub tc_url: String,
    /// The address put in the answer's candidate.
    pub candidate: IpAddr,
    /// WHEP: the session plays the stream to the peer (else WHIP: publishes it).
    pub play: bool,
}

pub enum Cmd {
    Offer(Box<Offer>),
    /// `DELETE` of a session.
    Delete { session: String },
}

#[derive(Debug)]
pub enum Reply {
    /// The publish was accepted: answer the request with this SDP.
    Answer { req: u64, session: String, sdp: String },
    /// Answer the request with this HTTP status and reason.
    Refused { req: u64, status: u16, reason: String },
    /// A session ended (why, for the log; `play`: a WHEP session).
    Ended { session: String, why: String, play: bool },
    /// Something for the worker's error log (warn level).
    Log(String),
}

/// The replies queue, shared with the worker, and its wake-up.
struct Out {
    queue: Mutex<VecDeque<Reply>>,
    wake: File,
}

impl Out {
    fn send(&self, r: Reply) {
        if let Ok(mut q) = self.queue.lock() {
            q.push_back(r);
        }
        // An eventfd adds the 8-byte value to its counter; a full counter (never, in
        // practice) still leaves it readable, which is all the worker needs.
        let _ = (&self.wake).write(&1u64.to_ne_bytes());
    }
}

/// The worker's handle on its sidecar.
pub struct Handle {
    tx: Option<mpsc::UnboundedSender<Cmd>>,
    out: Arc<Out>,
    thread: Option<JoinHandle<()>>,
    pub udp: SocketAddr,
}

impl Handle {
    /// Binds the UDP socket (so a busy port is reported now, by the worker) and starts
    /// the thread. `wake` is the eventfd the worker watches.
    pub fn start(settings: Settings, udp: SocketAddr, wake: File) -> std::io::Result<Handle> {
        let sock = std::net::UdpSocket::bind(udp)?;
        sock.set_nonblocking(true)?;
        let udp = sock.local_addr()?;
        let (tx, rx) = mpsc::unbounded_channel();
        let out = Arc::new(Out { queue: Mutex::new(VecDeque::new()), wake });
        let out2 = out.clone();
        let thread = std::thread::Builder::new().name("whip-sidecar".into()).spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => return out2.send(Reply::Log(format!("whip: cannot start the sidecar runtime: {e}"))),
            };
            // Sessions hold the transcoder and the peer connection, which stay on this
            // thread: they run as local tasks.
            let local = tokio::task::LocalSet::new();
            let out3 = out2.clone();
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                local.block_on(&rt, async move {
                    match UdpSocket::from_std(sock) {
                        Ok(sock) => main_loop(settings, Arc::new(sock), udp, rx, out2.clone()).await,
                        Err(e) => out2.send(Reply::Log(format!("whip: cannot use the UDP socket: {e}"))),
                    }
                })
            }));
            if run.is_err() {
                out3.send(Reply::Log("whip: internal error (panic) in the sidecar; WHIP sessions of this worker ended".into()));
            }
            drop(local);
            // Dropping the runtime drops every session: their RTMP sockets close, and the
            // worker ends those streams.
            drop(rt);
        })?;
        Ok(Handle { tx: Some(tx), out, thread: Some(thread), udp })
    }

    /// The thread ended on its own (it only does after an internal error).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    pub fn send(&self, cmd: Cmd) -> bool {
        self.tx.as_ref().is_some_and(|tx| tx.send(cmd).is_ok())
    }

    /// Takes the replies waiting.
    pub fn replies(&self) -> Vec<Reply> {
        match self.out.queue.lock() {
            Ok(mut q) => q.drain(..).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Ends every session and waits for the thread.
    pub fn stop(mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A session as the router knows it.
struct Route {
    tx: mpsc::Sender<session::Input>,
    /// DELETE: its own channel, so a full datagram queue cannot lose it.
    stop: mpsc::UnboundedSender<String>,
    ufrag: String,
    addrs: Vec<SocketAddr>,
}

/// Most remote addresses one session may send from (ICE checks from several candidates).
const MAX_ADDRS: usize = 8;
/// Datagrams queued for one session before more are dropped.
const SESSION_QUEUE: usize = 512;

async fn main_loop(settings: Settings, sock: Arc<UdpSocket>, local: SocketAddr, mut rx: mpsc::UnboundedReceiver<Cmd>, out: Arc<Out>) {
    let settings = Arc::new(settings);
    let mut routes: HashMap<String, Route> = HashMap::new();
    let mut by_ufrag: HashMap<String, String> = HashMap::new();
    let mut by_addr: HashMap<SocketAddr, String> = HashMap::new();
    let (gone_tx, mut gone_rx) = mpsc::unbounded_channel::<(String, String, bool)>();
    let mut buf = vec![0u8; 2048];
    loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                None => break,
                Some(Cmd::Offer(o)) => {
                    let id = random_hex(16);
                    let ufrag = random_hex(8);
                    let (tx, input) = mpsc::channel(SESSION_QUEUE);
                    let (stop, stopped) = mpsc::unbounded_channel();
                    routes.insert(id.clone(), Route { tx, stop, ufrag: ufrag.clone(), addrs: Vec::new() });
                    by_ufrag.insert(ufrag.clone(), id.clone());
                    let s = session::Session {
                        id: id.clone(),
                        ufrag,
                        pwd: random_hex(16),
                        settings: settings.clone(),
                        sock: sock.clone(),
                        local,
                        out: out.clone(),
                    };
                    let gone = gone_tx.clone();
                    let req = o.req;
                    let play = o.play;
                    let task = tokio::task::spawn_local(async move {
                        if o.play {
                            s.run_play(*o, input, stopped).await
                        } else {
                            s.run(*o, input, stopped).await
                        }
                    });
                    // The session's end (or its panic, which ends only that session) frees
                    // its routes; a request still waiting gets its answer (the worker
                    // ignores it if it had one).
                    let out = out.clone();
                    tokio::task::spawn_local(async move {
                        let why = match task.await {
                            Ok(why) => why,
                            Err(_) => {
                                out.send(Reply::Refused { req, status: 500, reason: "internal error".into() });
                                "internal error (panic) in the session".into()
                            }
                        };
                        let _ = gone.send((id, why, play));
                    });
                }
                Some(Cmd::Delete { session }) => {
                    if let Some(r) = routes.get(&session) {
                        let _ = r.stop.send("ended by DELETE".into());
                    }
                }
            },
            got = sock.recv_from(&mut buf) => {
                let Ok((n, from)) = got else { continue };
                let data = &buf[..n];
                let id = match by_addr.get(&from) {
                    Some(id) => Some(id.clone()),
                    // A new address: only a STUN check naming one of our sessions opens it.
                    None if stun::is_stun(data) => stun::local_ufrag(data).and_then(|u| by_ufrag.get(u)).cloned(),
                    None => None,
                };
                let Some(id) = id else { continue };
                let Some(route) = routes.get_mut(&id) else { continue };
                if !route.addrs.contains(&from) {
                    if route.addrs.len() >= MAX_ADDRS {
                        continue;
                    }
                    route.addrs.push(from);
                    by_addr.insert(from, id.clone());
                }
                let _ = route.tx.try_send(session::Input::Datagram(from, BytesMut::from(data), Instant::now()));
            }
            Some((id, why, play)) = gone_rx.recv() => {
                if let Some(r) = routes.remove(&id) {
                    by_ufrag.remove(&r.ufrag);
                    for a in r.addrs {
                        by_addr.remove(&a);
                    }
                }
                if !why.is_empty() {
                    out.send(Reply::Ended { session: id, why, play });
                }
            }
        }
    }
}

/// `n` random bytes from the kernel, in hex (session ids, ICE credentials).
fn random_hex(n: usize) -> String {
    use std::io::Read;
    let mut b = vec![0u8; n];
    if File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)).is_err() {
        // Never on Linux; still unique enough for a credential nobody can guess easily.
        let t = Instant::now().elapsed().as_nanos() ^ (std::process::id() as u128) << 64;
        for (i, x) in b.iter_mut().enumerate() {
            *x = (t >> ((i % 16) * 8)) as u8;
        }
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}
