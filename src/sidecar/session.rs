//! One WHIP session: its peer connection (ICE-lite, DTLS, SRTP through `rtc`, datagrams
//! routed to it by the sidecar's one UDP socket), and its RTMP publish into the worker.
//! H.264 is depacketized into the FLV video tags an RTMP publisher sends; Opus is
//! transcoded to AAC for RTMP players and HLS.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::Registry;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{MediaEngine, MIME_TYPE_H264, MIME_TYPE_OPUS};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{CandidateConfig, CandidateHostConfig, RTCIceCandidate};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind};
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use tokio::io::AsyncWriteExt;
use tokio::net::{UdpSocket, UnixStream};
use tokio::sync::mpsc;

use super::{Offer, Out, Reply};
use crate::conf::whip::Settings;
use crate::rtmp::amf::Value;
use crate::rtmp::chunk;
use crate::rtmp::client::{Client, ClientEvent, Mode};
use crate::rtmp::message::{self as msg, MediaKind};
use crate::whip::aac::{self, Transcoder};
use crate::whip::h264::Depacketizer;

pub enum Input {
    Datagram(SocketAddr, BytesMut, Instant),
}

pub struct Session {
    pub id: String,
    pub ufrag: String,
    pub pwd: String,
    pub settings: Arc<Settings>,
    pub sock: Arc<UdpSocket>,
    pub local: SocketAddr,
    pub out: Arc<Out>,
}

/// Our chunk size towards the worker, and the largest message we accept from it.
pub(super) const CHUNK: usize = 60_000;
pub(super) const MAX_MESSAGE: usize = 1 << 20;
/// The largest access unit assembled (a 4K keyframe fits many times over).
const MAX_AU: usize = 8 << 20;
/// How long the worker has to accept the publish (its `on_publish` may take its time).
pub(super) const PUBLISH_TIMEOUT: Duration = Duration::from_secs(30);
/// A write to the worker that takes longer than this means it stopped reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Keyframe requests no closer than this.
const PLI_GAP: Duration = Duration::from_millis(500);

pub(super) fn codec(mime: &str, clock_rate: u32, channels: u16, fmtp: &str, pt: u8, fb: &[(&str, &str)]) -> RTCRtpCodecParameters {
    RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: mime.to_owned(),
            clock_rate,
            channels,
            sdp_fmtp_line: fmtp.to_owned(),
            rtcp_feedback: fb.iter().map(|(t, p)| RTCPFeedback { typ: (*t).to_owned(), parameter: (*p).to_owned() }).collect(),
        },
        payload_type: pt,
    }
}

impl Session {
    /// The peer connection answering `o`: our codecs, ICE-lite with our one candidate;
    /// `setup` adds the transceivers or tracks before the offer is applied.
    pub(super) fn peer_connection(
        &self,
        o: &Offer,
        setup: impl FnOnce(&mut RTCPeerConnection) -> Result<(), rtc::shared::error::Error>,
    ) -> Result<(RTCPeerConnection, String), String> {
        let now = Instant::now();
        let mut me = MediaEngine::default();
        let e = |e: rtc::shared::error::Error| e.to_string();
        me.register_codec(codec(MIME_TYPE_OPUS, 48000, 2, "minptime=10;useinbandfec=1", 111, &[]), RtpCodecKind::Audio).map_err(e)?;
        let fb = [("nack", ""), ("nack", "pli"), ("ccm", "fir")];
        for (pt, profile) in [(102, "42001f"), (106, "42e01f"), (108, "4d001f"), (112, "64001f")] {
            let fmtp = format!("level-asymmetry-allowed=1;packetization-mode=1;profile-level-id={profile}");
            me.register_codec(codec(MIME_TYPE_H264, 90000, 0, &fmtp, pt, &fb), RtpCodecKind::Video).map_err(e)?;
        }
        let registry = register_default_interceptors(Registry::new(), &mut me).map_err(e)?;
        let se = SettingEngineBuilder::new()
            .with_lite(true)
            .with_ice_credentials(self.ufrag.clone(), self.pwd.clone())
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .build();
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_setting_engine(se)
            .with_media_engine(me)
            .with_interceptor_registry(registry)
            .build(now)
            .map_err(e)?;
        setup(&mut pc).map_err(e)?;
        let offer = RTCSessionDescription::offer(o.sdp.clone()).map_err(|e| format!("the offer was not accepted: {e}"))?;
        pc.set_remote_description(now, offer).map_err(|e| format!("the offer was not accepted: {e}"))?;
        let candidate = CandidateHostConfig {
            base_config: CandidateConfig {
                network: "udp".to_owned(),
                address: o.candidate.to_string(),
                port: self.local.port(),
                component: 1,
                ..Default::default()
            },
            ..Default::default()
        }
        .new_candidate_host()
        .map_err(e)?;
        pc.add_local_candidate(RTCIceCandidate::from(&candidate).to_json().map_err(e)?).map_err(e)?;
        let answer = pc.create_answer(None).map_err(|e| format!("no answer to this offer: {e}"))?;
        pc.set_local_description(now, answer).map_err(e)?;
        let sdp = pc.local_description().map(|d| d.sdp).ok_or("no local description")?;
        Ok((pc, sdp))
    }

    /// Runs the session to its end; returns why it ended ("" when it never started: the
    /// request was already answered with the reason).
    pub async fn run(self, o: Offer, mut input: mpsc::Receiver<Input>, mut stop: mpsc::UnboundedReceiver<String>) -> String {
        let req = o.req;
        let refuse = |status: u16, reason: String| {
            self.out.send(Reply::Refused { req, status, reason });
            String::new()
        };
        let recv_only = |pc: &mut RTCPeerConnection| {
            for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
                pc.add_transceiver_from_kind(kind, Some(RTCRtpTransceiverInit { direction: RTCRtpTransceiverDirection::Recvonly, ..Default::default() }))?;
            }
            Ok(())
        };
        let (mut pc, answer) = match self.peer_connection(&o, recv_only) {
            Ok(x) => x,
            Err(why) => return refuse(400, why),
        };
        let Ok(rtmp) = o.rtmp.set_nonblocking(true).and_then(|_| UnixStream::from_std(o.rtmp)) else {
            return refuse(500, "internal error: the publish socket".into());
        };
        let mut link = Link { keyframe_asked: false, rtmp, client: Client::new(Mode::Publish, &o.app, &o.tc_url, &o.stream, CHUNK, MAX_MESSAGE, seed()).with_flash_ver(crate::whip::FLASH_VER), rbuf: vec![0; 16 << 10], media: Vec::new() };
        // Publish first: refused (on_publish, allow/deny, a busy stream) means no answer.
        let msid = match tokio::time::timeout(PUBLISH_TIMEOUT, link.start()).await {
            Ok(Ok(msid)) => msid,
            Ok(Err(code)) => return refuse(crate::whip::refusal_status(&code), format!("publishing was refused: {code}")),
            Err(_) => return refuse(504, "publishing was not accepted in time".into()),
        };
        self.out.send(Reply::Answer { req, session: self.id.clone(), sdp: answer });

        let mut m = Media::new(msid, o.sprop.as_deref(), o.audio);
        if let Err(e) = link.send(m.metadata()).await {
            return e;
        }
        let started = Instant::now();
        let mut connected = false;
        let mut last_media = Instant::now();
        loop {
            // What the peer connection has to send, and what happened.
            self.flush(&mut pc).await;
            while let Some(ev) = pc.poll_event() {
                match ev {
                    RTCPeerConnectionEvent::OnConnectionStateChangeEvent(s) => match s {
                        RTCPeerConnectionState::Connected => {
                            connected = true;
                            last_media = Instant::now();
                            m.want_keyframe = true;
                        }
                        RTCPeerConnectionState::Failed => return self.end(&mut pc, "the connection failed".into()),
                        RTCPeerConnectionState::Closed => return self.end(&mut pc, "the peer closed the connection".into()),
                        _ => {}
                    },
                    RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                        let kind = pc.rtp_receiver(init.receiver_id).map(|r| r.track().kind());
                        m.tracks.push((init.track_id.clone(), init.receiver_id, kind));
                    }
                    _ => {}
                }
            }
            let mut frames = Vec::new();
            m.release_video(Instant::now(), &mut frames);
            while let Some(TaggedRTCMessage { message, now }) = pc.poll_read() {
                if let RTCMessage::RtpPacket(track, p) = message {
                    last_media = Instant::now();
                    m.rtp(&track, &p, now, &mut frames);
                }
            }
            for f in frames {
                if let Err(e) = link.send(f).await {
                    return self.end(&mut pc, e);
                }
            }
            if let Some(out) = link.client.take_output() {
                if let Err(e) = link.write(&out).await {
                    return self.end(&mut pc, e);
                }
            }
            let now = Instant::now();
            if core::mem::take(&mut link.keyframe_asked) {
                m.want_keyframe = true;
            }
            m.keyframe_requests(&mut pc, now, self.settings.keyframe_interval);
            if !connected && now.duration_since(started) > Duration::from_millis(self.settings.ice_timeout) {
                return self.end(&mut pc, format!("ICE did not connect within {} ms", self.settings.ice_timeout));
            }
            if connected && now.duration_since(last_media) > Duration::from_millis(self.settings.idle_timeout) {
                return self.end(&mut pc, format!("no media for {} ms", self.settings.idle_timeout));
            }

            let deadline = pc.poll_timeout().unwrap_or(now + Duration::from_secs(1)).min(now + Duration::from_millis(250));
            tokio::select! {
                biased;
                why = stop.recv() => return self.end(&mut pc, why.unwrap_or_else(|| "the sidecar stopped".into())),
                i = input.recv() => match i {
                    Some(Input::Datagram(from, data, at)) => self.datagram(&mut pc, from, data, at),
                    None => return self.end(&mut pc, "the sidecar stopped".into()),
                },
                _ = tokio::time::sleep_until(deadline.into()) => {
                    let _ = pc.handle_timeout(Instant::now());
                }
                r = link.rtmp.readable() => {
                    if let Err(why) = link.readable(r, "publish") {
                        return self.end(&mut pc, why);
                    }
                }
            }
        }
    }

    /// Sends what the peer connection has to send.
    pub(super) async fn flush(&self, pc: &mut RTCPeerConnection) {
        while let Some(w) = pc.poll_write() {
            let _ = self.sock.send_to(&w.message, w.transport.peer_addr).await;
        }
    }

    /// A datagram routed to this session, into its peer connection.
    pub(super) fn datagram(&self, pc: &mut RTCPeerConnection, from: SocketAddr, data: BytesMut, at: Instant) {
        let t = TaggedBytesMut {
            now: at,
            transport: TransportContext { local_addr: self.local, peer_addr: from, ecn: None, transport_protocol: TransportProtocol::UDP },
            message: data,
        };
        let _ = pc.handle_read(t);
    }

    pub(super) fn end(&self, pc: &mut RTCPeerConnection, why: String) -> String {
        let _ = pc.close();
        why
    }
}

/// The RTMP side: our client session over the socketpair to the worker (publishing for
/// WHIP, playing for WHEP).
pub(super) struct Link {
    /// The worker asked for a keyframe.
    pub(super) keyframe_asked: bool,
    pub(super) rtmp: UnixStream,
    pub(super) client: Client,
    pub(super) rbuf: Vec<u8>,
    /// Media received (playing), for the session to take.
    pub(super) media: Vec<(MediaKind, u32, Bytes)>,
}

impl Link {
    pub(super) async fn write(&mut self, b: &[u8]) -> Result<(), String> {
        match tokio::time::timeout(WRITE_TIMEOUT, self.rtmp.write_all(b)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err("the stream was ended by the server (dropped or refused)".into()),
            Err(_) => Err("the server stopped reading the stream".into()),
        }
    }

    async fn send(&mut self, b: Bytes) -> Result<(), String> {
        if let Some(out) = self.client.take_output() {
            self.write(&out).await?;
        }
        self.write(&b).await
    }

    /// The socket to the worker became readable (`r`): reads what is there; the
    /// session's end (why) when the socket failed (`what`: publish or play), closed or
    /// the server ended the stream.
    pub(super) fn readable(&mut self, r: std::io::Result<()>, what: &str) -> Result<(), String> {
        if r.is_err() {
            return Err(format!("the {what} socket failed"));
        }
        match self.read_some() {
            Ok(true) => Ok(()),
            Ok(false) => Err("the stream was ended by the server (dropped or refused)".into()),
            Err(e) => Err(e),
        }
    }

    /// Reads what is there: false at the end of the stream.
    pub(super) fn read_some(&mut self) -> Result<bool, String> {
        loop {
            match self.rtmp.try_read(&mut self.rbuf) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.client.feed(&self.rbuf[..n]).map_err(|e| format!("the server's RTMP: {e:?}"))?;
                    while let Some(ev) = self.client.poll_event() {
                        match ev {
                            ClientEvent::Failed(code) => return Err(format!("the server ended the stream: {code}")),
                            ClientEvent::KeyframeRequest => self.keyframe_asked = true,
                            ClientEvent::Media { kind, timestamp, payload } => self.media.push((kind, timestamp, payload)),
                            _ => {}
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(true),
                Err(_) => return Ok(false),
            }
        }
    }

    /// Handshake, connect, createStream, publish or play: the stream id, or the refusal.
    pub(super) async fn start(&mut self) -> Result<u32, String> {
        loop {
            if let Some(out) = self.client.take_output() {
                self.write(&out).await?;
            }
            self.rtmp.readable().await.map_err(|e| e.to_string())?;
            match self.rtmp.try_read(&mut self.rbuf) {
                Ok(0) => return Err("the server closed the connection".into()),
                Ok(n) => self.client.feed(&self.rbuf[..n]).map_err(|e| format!("{e:?}"))?,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e.to_string()),
            }
            while let Some(ev) = self.client.poll_event() {
                match ev {
                    ClientEvent::Ready { msid } => return Ok(msid),
                    ClientEvent::Failed(code) => return Err(code),
                    ClientEvent::Media { kind, timestamp, payload } => self.media.push((kind, timestamp, payload)),
                    ClientEvent::KeyframeRequest => {}
                }
            }
        }
    }
}

/// Turns RTP into RTMP messages.
struct Media {
    msid: u32,
    tracks: Vec<(rtc::media_stream::MediaStreamTrackId, RTCRtpReceiverId, Option<RtpCodecKind>)>,
    h264: Depacketizer,
    aac: Option<Transcoder>,
    /// When the first media packet came: the zero of both tracks' timestamps.
    t0: Option<Instant>,
    video: Clock,
    audio: Clock,
    audio_offset: Option<u64>,
    video_ssrc: Option<(RTCRtpReceiverId, u32)>,
    want_keyframe: bool,
    last_pli: Option<Instant>,
    last_keyframe: Option<Instant>,
    /// Video waiting for the AAC of the same time (the transcoder's delay), so the stream
    /// comes in timestamp order as an RTMP encoder sends it (FLV recordings need that):
    /// (timestamp, when queued, message). Only when the offer has audio.
    pending_video: std::collections::VecDeque<(u64, Instant, Bytes)>,
    interleave: bool,
    /// The timestamp of the last video out (AAC older than it is dropped: silence that
    /// filled a gap after video went on without audio).
    video_out_ts: u64,
    /// The last timestamps given to video and AAC frames (each track only goes forward).
    last_video_ms: Option<u64>,
    last_aac_ms: Option<u64>,
}

/// The longest video waits for audio (audio that stalls does not hold video back).
const MAX_VIDEO_WAIT: Duration = Duration::from_millis(300);
/// Most video messages waiting (a bound whatever the frame rate).
const MAX_PENDING_VIDEO: usize = 64;

/// An RTP clock turned into milliseconds since `t0` (wrapping, reordering allowed).
#[derive(Default)]
struct Clock {
    base: Option<(u32, u64)>,
    last: u32,
    ext: i64,
}

impl Clock {
    fn ms(&mut self, ts: u32, offset_ms: u64, rate: u64) -> u64 {
        match self.base {
            None => {
                self.base = Some((ts, offset_ms));
                self.last = ts;
                offset_ms
            }
            Some((_, off)) => {
                self.ext += ts.wrapping_sub(self.last) as i32 as i64;
                self.last = ts;
                // (A frame older than the first packet is earlier, not at the same time.)
                (off as i64 + self.ext * 1000 / rate as i64).max(0) as u64
            }
        }
    }
}

impl Media {
    fn new(msid: u32, sprop: Option<&str>, audio: bool) -> Self {
        let mut h264 = Depacketizer::new(MAX_AU);
        if let Some(s) = sprop {
            h264.set_sprop(s);
        }
        Media {
            msid,
            tracks: Vec::new(),
            h264,
            aac: None,
            t0: None,
            video: Clock::default(),
            audio: Clock::default(),
            audio_offset: None,
            video_ssrc: None,
            want_keyframe: true,
            last_pli: None,
            last_keyframe: None,
            pending_video: std::collections::VecDeque::new(),
            interleave: audio,
            video_out_ts: 0,
            last_video_ms: None,
            last_aac_ms: None,
        }
    }

    /// Video out, after the AAC up to its time (or at once without audio).
    fn video_out(&mut self, ts: u64, msg: Bytes, now: Instant, frames: &mut Vec<Bytes>) {
        if !self.interleave {
            frames.push(msg);
            return;
        }
        self.pending_video.push_back((ts, now, msg));
        if self.pending_video.len() > MAX_PENDING_VIDEO {
            self.pop_video(frames);
        }
    }

    fn pop_video(&mut self, frames: &mut Vec<Bytes>) {
        if let Some((ts, _, m)) = self.pending_video.pop_front() {
            self.video_out_ts = self.video_out_ts.max(ts);
            frames.push(m);
        }
    }

    /// AAC out, after the video before it.
    fn aac_out(&mut self, ts: u64, msg: Bytes, frames: &mut Vec<Bytes>) {
        while self.pending_video.front().is_some_and(|(v, _, _)| *v <= ts) {
            self.pop_video(frames);
        }
        if ts >= self.video_out_ts {
            frames.push(msg);
        }
    }

    /// Video that waited long enough goes out.
    fn release_video(&mut self, now: Instant, frames: &mut Vec<Bytes>) {
        while self.pending_video.front().is_some_and(|(_, at, _)| now.duration_since(*at) >= MAX_VIDEO_WAIT) {
            self.pop_video(frames);
        }
    }

    fn message(&self, kind: MediaKind, ts: u64, payload: &[u8]) -> Bytes {
        chunk::encode(kind.csid(), ts as u32, kind.type_id(), self.msid, payload, CHUNK)
    }

    /// `@setDataFrame onMetaData`, as encoders send it.
    fn metadata(&self) -> Bytes {
        let meta = Value::EcmaArray(vec![
            ("videocodecid".into(), Value::Number(7.0)),
            ("audiocodecid".into(), Value::Number(10.0)),
            ("audiosamplerate".into(), Value::Number(48000.0)),
            ("audiochannels".into(), Value::Number(2.0)),
            ("encoder".into(), Value::str("ngx-rtmp-rs WHIP")),
        ]);
        let mut out = BytesMut::new();
        msg::amf0(&mut out, msg::CSID_DATA, msg::DATA_AMF0, self.msid, &[Value::str("@setDataFrame"), Value::str("onMetaData"), meta], CHUNK);
        out.freeze()
    }

    fn offset(&mut self, now: Instant) -> u64 {
        let t0 = *self.t0.get_or_insert(now);
        now.duration_since(t0).as_millis() as u64
    }

    /// One RTP packet that arrived at `now`.
    fn rtp(&mut self, track: &rtc::media_stream::MediaStreamTrackId, p: &rtc::rtp::packet::Packet, now: Instant, frames: &mut Vec<Bytes>) {
        let Some(&(_, receiver, kind)) = self.tracks.iter().find(|(t, _, _)| t == track) else { return };
        match kind {
            Some(RtpCodecKind::Video) => {
                self.video_ssrc = Some((receiver, p.header.ssrc));
                // The video clock starts with the first packet's arrival (not the first
                // whole picture's: a browser paces its first keyframe over a while).
                // (Not from a padding-only packet: a browser's bandwidth probes carry no
                // picture and may be stamped ahead of the picture still arriving.)
                if self.video.base.is_none() && !p.payload.is_empty() {
                    let off = self.offset(now);
                    self.video.ms(p.header.timestamp, off, 90_000);
                }
                let tags = self.h264.push(p.header.sequence_number, p.header.timestamp, p.header.marker, &p.payload);
                if self.h264.take_keyframe_request() {
                    self.want_keyframe = true;
                }
                for tag in tags {
                    let off = self.offset(now);
                    let ms = self.video.ms(tag.rtp_ts, off, 90_000);
                    if tag.keyframe {
                        self.last_keyframe = Some(now);
                    }
                    // Each track's timestamps only go forward, as from an encoder.
                    // (A codec header shares its picture's time.)
                    let ms = match self.last_video_ms {
                        _ if tag.sequence_header => ms,
                        Some(last) if ms <= last => last + 1,
                        _ => ms,
                    };
                    if !tag.sequence_header {
                        self.last_video_ms = Some(ms);
                    }
                    let msg = self.message(MediaKind::Video, ms, &tag.body);
                    self.video_out(ms, msg, now, frames);
                }
            }
            Some(RtpCodecKind::Audio) => {
                let off = match self.audio_offset {
                    Some(off) => off,
                    None => {
                        let off = self.offset(now);
                        self.audio_offset = Some(off);
                        off
                    }
                };
                if self.aac.is_none() {
                    let Ok(t) = Transcoder::new(2, 128_000) else { return };
                    // The codec headers first, AAC before Opus: until the stream has both,
                    // every player gets every audio message.
                    frames.push(self.message(MediaKind::Audio, off, &aac::flv_sequence_header(&t.asc())));
                    frames.push(self.message(MediaKind::Audio, off, &opus_tag(0, &OPUS_HEAD)));
                    self.aac = Some(t);
                }
                // Opus as it came, for Enhanced RTMP players...
                let ms = self.audio.ms(p.header.timestamp, off, 48_000);
                frames.push(self.message(MediaKind::Audio, ms, &opus_tag(1, &p.payload)));
                // ... and AAC for everyone else, HLS and recordings.
                let Some(t) = self.aac.as_mut() else { return };
                let _ = t.push(p.header.timestamp, &p.payload);
                let ready: Vec<(u64, Vec<u8>)> = std::iter::from_fn(|| t.pull()).collect();
                for (ms, data) in ready {
                    // (A frame that would not go forward is dropped.)
                    if self.last_aac_ms.is_some_and(|last| off + ms <= last) {
                        continue;
                    }
                    self.last_aac_ms = Some(off + ms);
                    let msg = self.message(MediaKind::Audio, off + ms, &aac::flv_frame(&data));
                    self.aac_out(off + ms, msg, frames);
                }
            }
            _ => {}
        }
    }

    /// PLI when the stream starts or lost a picture, and every `interval` ms without a
    /// keyframe (browsers send keyframes only when asked; HLS cuts segments at them).
    fn keyframe_requests(&mut self, pc: &mut RTCPeerConnection, now: Instant, interval: u64) {
        let Some((receiver, ssrc)) = self.video_ssrc else { return };
        let since = |t: Option<Instant>| t.map_or(Duration::MAX, |t| now.duration_since(t));
        let due = interval > 0 && since(self.last_keyframe) >= Duration::from_millis(interval) && since(self.last_pli) >= Duration::from_millis(interval);
        // Still no usable keyframe (the request or the keyframe was lost): ask again.
        let stuck = self.h264.waiting_for_keyframe() && since(self.last_pli) >= Duration::from_secs(1);
        if !(self.want_keyframe || due || stuck) || since(self.last_pli) < PLI_GAP {
            return;
        }
        if let Some(mut r) = pc.rtp_receiver(receiver) {
            let _ = r.write_rtcp(now, vec![Box::new(PictureLossIndication { sender_ssrc: 0, media_ssrc: ssrc })]);
        }
        self.want_keyframe = false;
        self.last_pli = Some(now);
    }
}

/// Opus's identification header (RFC 7845 section 5.1): stereo, 48 kHz, the usual
/// pre-skip, no gain, mapping family 0.
const OPUS_HEAD: [u8; 19] = [b'O', b'p', b'u', b's', b'H', b'e', b'a', b'd', 1, 2, 0x38, 0x01, 0x80, 0xbb, 0, 0, 0, 0, 0];

/// An Enhanced RTMP audio tag body for Opus: `ExHeader` sound format (9) with the packet
/// type (0 SequenceStart, 1 CodedFrames), the FourCC, the data.
fn opus_tag(packet_type: u8, data: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(5 + data.len());
    b.push(0x90 | packet_type);
    b.extend_from_slice(b"Opus");
    b.extend_from_slice(data);
    b
}

pub(super) fn seed() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
}
