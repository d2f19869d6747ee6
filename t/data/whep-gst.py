#!/usr/bin/python3
"""A WHEP client (WebRTC playback) built on GStreamer's webrtcbin, independent of any browser.

Offers to receive H.264 and Opus, POSTs the offer to URL, plays what comes for SECONDS
seconds (decoding it, or with --no-decode only depayloading it), then ends the session
with DELETE.

Usage: whep-gst.py URL SECONDS [--no-decode] [--log-received FILE] [--latency MS]

--log-received FILE writes, for each video picture, "MS WALLCLOCK": its RTP time in
milliseconds (the server's RTMP timestamp plus composition time) and when its last
packet left webrtcbin (after SRTP and webrtcbin's jitter buffer, --latency ms, 200 by
default) on this machine's clock: for bench/whep.pl.

Prints, one line each, on stdout:
  WHEP posted STATUS LOCATION          the answer to the POST (201 and its Location)
  WHEP refused STATUS BODY             the POST was answered with anything but 201 (exit 3)
  WHEP state STATE                     peer connection state changes
  WHEP media KIND                      a track came (video, audio)
  WHEP counts video=N audio=M          at the end: video frames (decoded, or access units
                                       with --no-decode) and audio buffers
  WHEP deleted STATUS                  the answer to the DELETE
  WHEP error MESSAGE                   any other failure (exit 1)
Exit status: 0 when video frames came and the DELETE was answered 2xx; 3 when the POST
was refused; 1 otherwise. SIGTERM ends early (with DELETE).
"""

import argparse
import signal
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("GstRtp", "1.0")
from gi.repository import GLib, Gst, GstRtp, GstSdp, GstWebRTC  # noqa: E402

HTTP_TIMEOUT = 10
# Looked up here, on the main thread: PyGObject loads enum attributes lazily, and a
# first lookup from two streaming threads at once (both tracks' pad-added) can fail
# ("type object 'PadProbeType' has no attribute 'BUFFER'", seen with 20 clients).
PROBE_BUFFER = Gst.PadProbeType.BUFFER
LINK_OK = Gst.PadLinkReturn.OK
MAP_READ = Gst.MapFlags.READ
PROBE_OK = Gst.PadProbeReturn.OK
RTPBuffer = GstRtp.RTPBuffer
VIDEO_CAPS = "application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000,packetization-mode=(string)1"
AUDIO_CAPS = "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000,encoding-params=(string)2"


def say(line):
    print("WHEP " + line, flush=True)


class Client:
    def __init__(self, args):
        self.args = args
        self.loop = GLib.MainLoop()
        self.status = None
        self.resource = None
        self.finishing = False
        self.counts = {"video": 0, "audio": 0}
        self.pipe = Gst.Pipeline.new("whep")
        self.webrtc = Gst.ElementFactory.make("webrtcbin", "webrtc")
        self.webrtc.set_property("bundle-policy", "max-bundle")
        if args.latency is not None:
            self.webrtc.set_property("latency", args.latency)
        self.received = open(args.log_received, "w", buffering=1) if args.log_received else None
        self.rtp_ext = None   # (last 32-bit RTP time, its extension)
        self.pipe.add(self.webrtc)
        self.ice = self.webrtc.get_property("ice-agent")
        host = urllib.parse.urlsplit(args.url).hostname or "127.0.0.1"
        # (libnice ignores loopback interfaces unless given their address.)
        self.ice.emit("add-local-ip-address", host if host.startswith("127.") else "127.0.0.1")
        for caps in (VIDEO_CAPS, AUDIO_CAPS):
            self.webrtc.emit("add-transceiver", GstWebRTC.WebRTCRTPTransceiverDirection.RECVONLY, Gst.Caps.from_string(caps))
        self.webrtc.connect("on-negotiation-needed", lambda *_: GLib.idle_add(self.create_offer))
        self.webrtc.connect("pad-added", self.on_pad)
        self.webrtc.connect("notify::connection-state", self.on_state)
        bus = self.pipe.get_bus()
        bus.add_signal_watch()
        bus.connect("message::error", lambda _b, m: self.fail("pipeline: %s" % m.parse_error()[0].message))
        self.offered = False

    def fail(self, message, status=1):
        say("error " + message)
        self.finish(status)

    def finish(self, status=0):
        if self.finishing:
            return False
        self.finishing = True
        self.status = status
        say("counts video=%d audio=%d" % (self.counts["video"], self.counts["audio"]))
        if status == 0 and self.counts["video"] == 0:
            self.status = 1
        if self.resource:
            try:
                req = urllib.request.Request(self.resource, method="DELETE")
                with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as res:
                    code = res.status
            except urllib.error.HTTPError as e:
                code = e.code
            except (urllib.error.URLError, OSError):
                code = None
            say("deleted %s" % code)
            if not (isinstance(code, int) and 200 <= code < 300):
                self.status = self.status or 1
        self.loop.quit()
        return False

    def create_offer(self):
        if self.offered:
            return False
        self.offered = True
        promise = Gst.Promise.new_with_change_func(self.on_offer, None)
        self.webrtc.emit("create-offer", None, promise)
        return False

    def on_offer(self, promise, _data):
        promise.wait()
        reply = promise.get_reply()
        offer = reply.get_value("offer") if reply is not None and reply.has_field("offer") else None
        if offer is None:
            GLib.idle_add(self.fail, "create-offer failed")
            return
        sdp = offer.sdp.as_text()
        self.webrtc.emit("set-local-description", offer, Gst.Promise.new_with_change_func(lambda p, _d: GLib.idle_add(self.post, sdp), None))

    def post(self, sdp):
        req = urllib.request.Request(self.args.url, data=sdp.encode(), method="POST", headers={"Content-Type": "application/sdp"})
        try:
            with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as res:
                status, body, location = res.status, res.read().decode("utf-8", "replace"), res.headers.get("Location")
        except urllib.error.HTTPError as e:
            say("refused %d %s" % (e.code, " ".join(e.read().decode("utf-8", "replace").split())))
            self.finish(3)
            return False
        except (urllib.error.URLError, OSError) as e:
            self.fail("POST: %s" % getattr(e, "reason", e))
            return False
        say("posted %d %s" % (status, location))
        self.resource = urllib.parse.urljoin(self.args.url, location or "")
        res, msg = GstSdp.SDPMessage.new_from_text(body)
        if res != GstSdp.SDPResult.OK:
            self.fail("the answer is not SDP")
            return False
        answer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, msg)
        self.webrtc.emit("set-remote-description", answer, None)
        GLib.timeout_add(int(self.args.seconds * 1000), lambda: self.finish(0))
        return False

    def on_state(self, element, _pspec):
        nick = element.get_property("connection-state").value_nick
        GLib.idle_add(lambda: say("state " + nick) and False)
        if nick == "failed":
            GLib.idle_add(self.fail, "connection failed")

    def on_pad(self, _element, pad):
        caps = pad.get_current_caps() or pad.query_caps(None)
        kind = caps.get_structure(0).get_string("media") if caps and caps.get_size() else None
        if kind not in ("video", "audio"):
            return
        say("media " + kind)
        sink = "fakesink name=out sync=false async=false"
        if kind == "video":
            desc = "queue ! rtph264depay ! h264parse ! " + ("" if self.args.no_decode else "avdec_h264 ! ") + sink
        else:
            desc = "queue ! rtpopusdepay ! " + ("" if self.args.no_decode else "opusdec ! ") + sink
        bin_ = Gst.parse_bin_from_description(desc, True)
        # Count what reaches the sink.
        bin_.get_by_name("out").get_static_pad("sink").add_probe(PROBE_BUFFER, self.count, kind)
        if kind == "video" and self.received:
            pad.add_probe(PROBE_BUFFER, self.on_rtp)
        self.pipe.add(bin_)
        bin_.sync_state_with_parent()
        if pad.link(bin_.get_static_pad("sink")) != LINK_OK:
            GLib.idle_add(self.fail, "cannot link the %s pad" % kind)

    def on_rtp(self, _pad, info):
        ok, rtp = RTPBuffer.map(info.get_buffer(), MAP_READ)
        if not ok:
            return PROBE_OK
        ts, marker = rtp.get_timestamp(), rtp.get_marker()
        rtp.unmap()
        if marker:
            # The RTP time unwrapped from the first picture's (the server's is its
            # millisecond timestamp times 90).
            if self.rtp_ext is None:
                self.rtp_ext = (ts, ts)
            last, ext = self.rtp_ext
            d = (ts - last) & 0xFFFFFFFF
            ext += d - (1 << 32) if d >= 1 << 31 else d
            self.rtp_ext = (ts, ext)
            self.received.write("%.3f %.6f\n" % (ext / 90.0, time.time()))
        return PROBE_OK

    def count(self, _pad, _info, kind):
        self.counts[kind] += 1
        return PROBE_OK

    def run(self):
        self.pipe.set_state(Gst.State.PLAYING)
        GLib.timeout_add_seconds(15, lambda: (not self.resource and self.fail("no answer in 15 s")) and False)
        for sig in (signal.SIGINT, signal.SIGTERM):
            GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, lambda: self.finish(0) or False)
        self.loop.run()
        self.pipe.set_state(Gst.State.NULL)
        return 1 if self.status is None else self.status


def main():
    ap = argparse.ArgumentParser(description="Play a stream from a WHEP endpoint with GStreamer webrtcbin.")
    ap.add_argument("url")
    ap.add_argument("seconds", type=float)
    ap.add_argument("--no-decode", action="store_true")
    ap.add_argument("--log-received")
    ap.add_argument("--latency", type=int)
    args = ap.parse_args()
    Gst.init(None)
    sys.exit(Client(args).run())


if __name__ == "__main__":
    main()
