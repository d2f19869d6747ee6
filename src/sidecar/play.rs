//! One WHEP session: a peer connection that sends (an H.264 and an Opus track), fed by an
//! RTMP play of the stream from the worker over a socketpair. So a WHEP viewer is just
//! another player: `on_play` (with the bearer token as an argument), allow/deny play,
//! `/stat`, `/control/drop`, the GOP cache (a new viewer starts on the current keyframe)
//! and `out_queue` (a viewer that cannot keep up) apply unchanged. An RTMP publisher's AAC
//! is transcoded to Opus once per stream (`audio.rs`).

use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_H264, MIME_TYPE_OPUS};
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::RTCPeerConnection;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp::codec::h264::H264Payloader;
use rtc::rtp::packetizer::Payloader;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind};
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::sansio::Protocol;
use tokio::net::UnixStream;
use tokio::sync::mpsc;

use super::audio::Audio;
use super::session::{seed, Input, Link, Session, CHUNK, MAX_MESSAGE, PUBLISH_TIMEOUT};
use super::{Offer, Reply};
use crate::media::Frame;
use crate::rtmp::client::{Client, Mode};
use crate::whip::whep::{Out, Pacer, Prep};

/// How long a stream has to show its video configuration before the offer is answered
/// 409 (not live). A live stream's comes at once (the worker keeps it for new players).
const LIVE_WAIT: Duration = Duration::from_millis(1500);
/// Then how long, at most, and how many frames are looked at for B-frames before the
/// offer is answered (the GOP cache gives many at once; without it, 4 frames come in
/// 130 ms at 30 fps).
const BFRAME_LOOK: Duration = Duration::from_millis(500);
const BFRAME_FRAMES: u64 = 4;
/// Why a stream with B-frames is refused (the response's body and the log).
const BFRAMES: &str = "the stream has B-frames, which browsers' WebRTC decoders cannot show in order: \
    publish without them (x264: -bf 0 or -tune zerolatency; OBS: B-frames 0) or play the stream's HLS";
/// RTP payloads no larger than this (a common WebRTC MTU budget).
const MTU: usize = 1200;
/// Media held from the last keyframe until the viewer is connected (a bound whatever
/// the stream: beyond it, the viewer starts at the next keyframe). 8 MB is a 2 s GOP at
/// 32 Mbit/s; every session being set up may hold that much (`whip_max_sessions` of them).
const MAX_HELD: usize = 1024;
const MAX_HELD_BYTES: usize = 8 << 20;

/// One outgoing track: its sender, SSRC, negotiated payload type, next sequence number.
struct Track {
    sender: RTCRtpSenderId,
    ssrc: u32,
    pt: u8,
    seq: u16,
}

impl Track {
    fn send(&mut self, pc: &mut RTCPeerConnection, now: Instant, ts: u32, marker: bool, payload: Bytes) {
        let Some(mut s) = pc.rtp_sender(self.sender) else { return };
        let header = rtc::rtp::Header { version: 2, marker, payload_type: self.pt, sequence_number: self.seq, timestamp: ts, ssrc: self.ssrc, ..Default::default() };
        self.seq = self.seq.wrapping_add(1);
        let _ = s.write_rtp(now, rtc::rtp::Packet { header, payload });
    }
}

fn track(kind: RtpCodecKind, ssrc: u32, mime: &str, clock_rate: u32, channels: u16) -> MediaStreamTrack {
    let name = if kind == RtpCodecKind::Video { "video" } else { "audio" };
    MediaStreamTrack::new(
        "ngx-rtmp-rs".into(),
        name.into(),
        name.into(),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(ssrc), ..Default::default() },
            codec: RTCRtpCodec { mime_type: mime.into(), clock_rate, channels, ..Default::default() },
            ..Default::default()
        }],
    )
}

/// What the viewer is sent: the two tracks, the H.264 payloader, and the AAC-to-Opus
/// transcoder (made at the stream's first AAC, again if its configuration changes).
struct Sender {
    video: Track,
    audio: Track,
    h264: H264Payloader,
    /// AAC as Opus, from the stream's shared transcoder.
    aac: Audio,
}

impl Sender {
    /// Sends one piece of the stream; returns what the log should say of a failure.
    fn send(&mut self, pc: &mut RTCPeerConnection, now: Instant, out: &Out) -> Option<String> {
        match out {
            Out::Video { ts, annexb, .. } => {
                let Ok(payloads) = self.h264.payload(MTU, annexb) else { return None };
                let n = payloads.len();
                for (i, p) in payloads.into_iter().enumerate() {
                    self.video.send(pc, now, *ts, i + 1 == n, p);
                }
            }
            Out::Opus { ts, packet } => self.audio.send(pc, now, *ts, false, packet.clone()),
            Out::Aac { ts, asc, frame } => match self.aac.frame(*ts, asc, frame) {
                Ok(packets) => {
                    for (t, p) in packets {
                        self.audio.send(pc, now, t, false, p);
                    }
                }
                Err(why) => return Some(why),
            },
        }
        None
    }
}

/// Media from the current keyframe on, while the viewer connects.
#[derive(Default)]
struct Held {
    outs: Vec<Out>,
    bytes: usize,
    /// Overflowed: wait for the next keyframe.
    skipping: bool,
}

impl Held {
    fn push(&mut self, o: Out) {
        if let Out::Video { keyframe: true, .. } = o {
            self.outs.clear();
            self.bytes = 0;
            self.skipping = false;
        } else if self.skipping || (self.outs.is_empty() && matches!(o, Out::Video { .. })) {
            return;
        }
        self.bytes += match &o {
            Out::Video { annexb, .. } => annexb.len(),
            Out::Opus { packet, .. } => packet.len(),
            Out::Aac { frame, .. } => frame.len(),
        };
        self.outs.push(o);
        if self.outs.len() > MAX_HELD || self.bytes > MAX_HELD_BYTES {
            self.outs.clear();
            self.bytes = 0;
            self.skipping = true;
        }
    }
}

/// The HTTP status for a play the worker refused: a stream not published (with
/// `idle_streams off`) is not live yet, as the 409 of a stream that sends nothing.
fn refusal_status(code: &str) -> u16 {
    match code {
        "NetStream.Play.StreamNotFound" => 409,
        _ => 403,
    }
}

impl Session {
    /// Runs a WHEP session to its end; returns why it ended ("" when it never started:
    /// the request was already answered with the reason).
    pub async fn run_play(self, o: Offer, mut input: mpsc::Receiver<Input>, mut stop: mpsc::UnboundedReceiver<String>) -> String {
        let req = o.req;
        let refuse = |status: u16, reason: String| {
            self.out.send(Reply::Refused { req, status, reason });
            String::new()
        };
        let ssrcs = (seed() as u32 | 1, (seed() >> 32) as u32 | 2);
        let mut ids = None;
        let tracks = |pc: &mut RTCPeerConnection| {
            let v = pc.add_track(track(RtpCodecKind::Video, ssrcs.0, MIME_TYPE_H264, 90000, 0))?;
            let a = pc.add_track(track(RtpCodecKind::Audio, ssrcs.1, MIME_TYPE_OPUS, 48000, 2))?;
            ids = Some((v, a));
            Ok(())
        };
        let (mut pc, answer) = match self.peer_connection(&o, tracks) {
            Ok(x) => x,
            Err(why) => return refuse(400, why),
        };
        let Some((vid, aid)) = ids else { return refuse(500, "internal error: no tracks".into()) };
        let pt = |pc: &mut RTCPeerConnection, id| pc.rtp_sender(id).and_then(|mut s| s.get_parameters().rtp_parameters.codecs.first().map(|c| c.payload_type));
        let (Some(vpt), Some(apt)) = (pt(&mut pc, vid), pt(&mut pc, aid)) else {
            return refuse(400, "the offer does not take H.264 video and Opus audio".into());
        };
        let mut tx = Sender {
            video: Track { sender: vid, ssrc: ssrcs.0, pt: vpt, seq: seed() as u16 },
            audio: Track { sender: aid, ssrc: ssrcs.1, pt: apt, seq: (seed() >> 16) as u16 },
            h264: H264Payloader::default(),
            aac: Audio::new(format!("{}/{}", o.app, o.stream.split('?').next().unwrap_or("")), self.settings.whep_audio_bitrate),
        };

        let Ok(rtmp) = o.rtmp.set_nonblocking(true).and_then(|_| UnixStream::from_std(o.rtmp)) else {
            return refuse(500, "internal error: the play socket".into());
        };
        let client = Client::new(Mode::Play, &o.app, &o.tc_url, &o.stream, CHUNK, MAX_MESSAGE, seed())
            .with_flash_ver(crate::whip::WHEP_FLASH_VER)
            .with_fourcc(&["Opus"]);
        let mut link = Link { keyframe_asked: false, rtmp, client, rbuf: vec![0; 16 << 10], media: Vec::new() };
        // Play first: refused (on_play, allow/deny) means no answer.
        match tokio::time::timeout(PUBLISH_TIMEOUT, link.start()).await {
            Ok(Ok(_)) => {}
            Ok(Err(code)) => return refuse(refusal_status(&code), format!("playing was refused: {code}")),
            Err(_) => return refuse(504, "playing was not accepted in time".into()),
        }
        // The stream must be live: its video configuration comes at once if it is.
        let mut prep = Prep::new();
        let mut held = Held::default();
        let live_by = Instant::now() + LIVE_WAIT;
        let mut looked_by = None;
        loop {
            for (kind, ts, payload) in link.media.drain(..) {
                if let Some(o) = prep.frame(&Frame::parse(kind, ts, payload)) {
                    held.push(o);
                }
            }
            if prep.bframes {
                return refuse(406, BFRAMES.into());
            }
            if let Some(why) = prep.refused_video {
                return refuse(415, format!("{why}: WHEP plays H.264"));
            }
            if prep.has_video_config() {
                let by = *looked_by.get_or_insert_with(|| Instant::now() + BFRAME_LOOK);
                if prep.video_frames >= BFRAME_FRAMES || Instant::now() >= by {
                    break;
                }
            }
            let deadline = looked_by.unwrap_or(live_by);
            match tokio::time::timeout_at(deadline.into(), link.rtmp.readable()).await {
                Err(_) if looked_by.is_some() => break,
                Err(_) => return refuse(409, "the stream is not live".into()),
                Ok(Err(_)) => return refuse(500, "the play socket failed".into()),
                Ok(Ok(())) => match link.read_some() {
                    Ok(true) => {}
                    Ok(false) => return refuse(409, "the stream ended".into()),
                    Err(e) => return refuse(409, e),
                },
            }
        }
        self.out.send(Reply::Answer { req, session: self.id.clone(), sdp: answer });

        let started = Instant::now();
        let mut connected = false;
        let mut last_heard = Instant::now();
        // What went wrong with the audio, said once per session.
        let mut noted = false;
        let mut last_pli: Option<Instant> = None;
        // The held media, going out paced once connected (then None: live as it comes).
        let mut pacer: Option<Pacer> = None;
        let note = |noted: &mut bool, why: String| {
            if !std::mem::replace(noted, true) {
                self.out.send(Reply::Log(format!("whep: session {}: the stream's audio is not sent: {why}", self.id)));
            }
        };
        loop {
            self.flush(&mut pc).await;
            while let Some(ev) = pc.poll_event() {
                if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(s) = ev {
                    match s {
                        RTCPeerConnectionState::Connected if !connected => {
                            connected = true;
                            // The viewer starts on the held keyframe at once, the rest
                            // of the held GOP paced after it, then live.
                            pacer = Some(Pacer::new(std::mem::take(&mut held.outs)));
                        }
                        RTCPeerConnectionState::Failed => return self.end(&mut pc, "the connection failed".into()),
                        RTCPeerConnectionState::Closed => return self.end(&mut pc, "the peer closed the connection".into()),
                        _ => {}
                    }
                }
            }
            // RTCP from the viewer: receiver reports and NACKs are the interceptors'; a
            // PLI or FIR (a picture lost) goes to the server, which asks the stream's
            // WHIP publisher for a keyframe (an RTMP publisher sends its own at its own
            // interval). At most every 250 ms from here, every 500 ms to the publisher.
            while let Some(m) = pc.poll_read() {
                if let RTCMessage::RtcpPacket(_, packets) = m.message {
                    let lost = packets.iter().any(|p| {
                        p.as_any().downcast_ref::<PictureLossIndication>().is_some()
                            || p.as_any().downcast_ref::<FullIntraRequest>().is_some()
                    });
                    if lost && last_pli.is_none_or(|t: Instant| t.elapsed() >= Duration::from_millis(250)) {
                        last_pli = Some(Instant::now());
                        link.client.request_keyframe();
                    }
                }
            }
            let now = Instant::now();
            for (kind, ts, payload) in link.media.drain(..) {
                let o = prep.frame(&Frame::parse(kind, ts, payload));
                if prep.bframes {
                    // (Never frames silently dropped: the viewer is told by the end.)
                    return self.end(&mut pc, BFRAMES.into());
                }
                let Some(o) = o else { continue };
                match &mut pacer {
                    Some(p) => p.push(o),
                    None if connected => {
                        if let Some(why) = tx.send(&mut pc, now, &o) {
                            note(&mut noted, why);
                        }
                    }
                    None => held.push(o),
                }
            }
            if let Some(p) = &mut pacer {
                while let Some(o) = p.pop(now) {
                    if let Some(why) = tx.send(&mut pc, now, &o) {
                        note(&mut noted, why);
                    }
                }
                if p.is_empty() {
                    pacer = None;
                }
            }
            if !connected && now.duration_since(started) > Duration::from_millis(self.settings.ice_timeout) {
                return self.end(&mut pc, format!("ICE did not connect within {} ms", self.settings.ice_timeout));
            }
            if connected && now.duration_since(last_heard) > Duration::from_millis(self.settings.idle_timeout) {
                return self.end(&mut pc, format!("nothing from the viewer for {} ms", self.settings.idle_timeout));
            }
            if let Some(out) = link.client.take_output() {
                if let Err(e) = link.write(&out).await {
                    return self.end(&mut pc, e);
                }
            }

            // (What was just sent goes now, not at the next wake-up.)
            self.flush(&mut pc).await;
            let mut deadline = pc.poll_timeout().unwrap_or(now + Duration::from_secs(1)).min(now + Duration::from_millis(250));
            if let Some(at) = pacer.as_ref().and_then(Pacer::next_at) {
                deadline = deadline.min(at);
            }
            tokio::select! {
                biased;
                why = stop.recv() => return self.end(&mut pc, why.unwrap_or_else(|| "the sidecar stopped".into())),
                i = input.recv() => match i {
                    Some(Input::Datagram(from, data, at)) => {
                        last_heard = Instant::now();
                        self.datagram(&mut pc, from, data, at);
                    }
                    None => return self.end(&mut pc, "the sidecar stopped".into()),
                },
                _ = tokio::time::sleep_until(deadline.into()) => {
                    let _ = pc.handle_timeout(Instant::now());
                }
                r = link.rtmp.readable() => {
                    if let Err(why) = link.readable(r, "play") {
                        return self.end(&mut pc, why);
                    }
                }
            }
        }
    }
}
