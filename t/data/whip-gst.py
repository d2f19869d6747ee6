#!/usr/bin/python3
"""A WHIP client (RFC 9725) built on GStreamer's webrtcbin, independent of any browser.

Publishes a test pattern (H.264, constrained baseline, packetization-mode=1) and a sine
tone (Opus) to a WHIP endpoint for SECONDS seconds, then ends the session with DELETE.

Usage: whip-gst.py URL SECONDS [--token T] [--no-audio] [--no-video] [--local-ip ADDR]...

The offer is POSTed as soon as it is set as the local description: no trickle ICE (the
server is ICE-lite and puts its candidate in the answer; it learns ours peer-reflexively).
When URL's host is a loopback address, it (or 127.0.0.1 for a name) is given to the ICE
agent (libnice ignores loopback interfaces otherwise, and a loopback-only network namespace
has nothing else); --local-ip gives other addresses instead (libnice then uses only the
addresses it is given; with none it uses every interface but loopback).

Prints, one line each, on stdout:
  WHIP offer H264 OPUS                 the offer is ready (the codecs it carries)
  WHIP posted STATUS LOCATION          the answer to the POST (201 and its Location)
  WHIP refused STATUS BODY             the POST was answered with anything but 201 (exit 3)
  WHIP ice STATE                       ICE connection state changes (checking, connected…)
  WHIP state STATE                     peer connection state changes (connecting, connected…)
  WHIP keyframe requested              a keyframe request (PLI/FIR) reached the encoder
  WHIP interrupted                     SIGINT or SIGTERM (then DELETE as usual)
  WHIP deleted STATUS                  the answer to the DELETE on Location ("failed"
                                       when none came; an error line follows)
  WHIP error MESSAGE                   any other failure (exit 1)
Exit status: 0 when the session connected and its DELETE was answered 2xx; 3 when the
POST was refused; 1 otherwise (no answer, bad answer, ICE/DTLS failure, never connected,
DELETE failed, pipeline error). SIGINT/SIGTERM end the session early (with DELETE).
"""

import argparse
import ctypes
import ipaddress
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
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

HTTP_TIMEOUT = 10       # seconds, for the POST and the DELETE
OFFER_TIMEOUT = 15      # seconds from PLAYING to a POSTed offer
CAPS_WAIT = 2           # seconds the offer may wait for the encoders' caps

VIDEO = (
    "videotestsrc is-live=true pattern=ball"
    " ! video/x-raw,width=640,height=360,framerate=30/1"
    " ! x264enc name=venc tune=zerolatency speed-preset=ultrafast key-int-max=60 bitrate=1000"
    " ! video/x-h264,profile=constrained-baseline"
    " ! rtph264pay config-interval=-1 aggregate-mode=zero-latency pt=96"
    " ! application/x-rtp,media=video,encoding-name=H264,payload=96"
    " ! webrtc."
)
AUDIO = (
    "audiotestsrc is-live=true wave=sine"
    " ! audioconvert ! audioresample ! opusenc"
    " ! rtpopuspay pt=111"
    " ! application/x-rtp,media=audio,encoding-name=OPUS,payload=111"
    " ! webrtc."
)
# What the transceivers offer: exactly one codec each (what the server accepts).
VIDEO_CAPS = ("application/x-rtp,media=video,encoding-name=H264,payload=96,clock-rate=90000,"
              "packetization-mode=(string)1")
AUDIO_CAPS = ("application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000,"
              "encoding-params=(string)2")


def say(line):
    print("WHIP " + line, flush=True)


def is_loopback(host):
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Client:
    def __init__(self, args):
        self.args = args
        self.url = args.url
        self.loop = GLib.MainLoop()
        self.status = None          # exit status once decided
        self.resource = None        # absolute URL of the session (Location)
        self.offered = False
        self.caps_waited = 0.0
        self.connected = False
        self.finishing = False
        self.states = {}

        parts = [VIDEO] if not args.no_video else []
        if not args.no_audio:
            parts.append(AUDIO)
        desc = "webrtcbin name=webrtc bundle-policy=max-bundle " + " ".join(parts)
        self.pipe = Gst.parse_launch(desc)
        self.webrtc = self.pipe.get_by_name("webrtc")

        # The ICE agent: in GStreamer 1.22 webrtcbin's "ice-agent" getter hands out its only
        # reference (the Python wrapper and webrtcbin end up sharing one), so whichever
        # lets go first leaves the other with a dangling pointer. Keep the wrapper for the
        # client's lifetime and, when the reference is shared, take a reference of our own.
        self.ice = self.webrtc.get_property("ice-agent")
        if self.ice.__grefcount__ == 1 and ("at 0x%x)" % hash(self.ice)) in repr(self.ice):
            gobject = ctypes.CDLL("libgobject-2.0.so.0")
            gobject.g_object_ref.restype = ctypes.c_void_p
            gobject.g_object_ref.argtypes = [ctypes.c_void_p]
            gobject.g_object_ref(hash(self.ice))
        local_ips = list(args.local_ip)
        host = urllib.parse.urlsplit(self.url).hostname or ""
        if not local_ips and is_loopback(host):
            local_ips = [host if host.startswith("127.") or host == "::1" else "127.0.0.1"]
        for ip in local_ips:
            # GstWebRTCICE::add-local-ip-address (an action signal in 1.22).
            if not self.ice.emit("add-local-ip-address", ip):
                raise RuntimeError("the ICE agent refused local address " + ip)

        # Send only, one codec per transceiver.
        for pad in self.webrtc.sinkpads:
            trans = pad.get_property("transceiver")
            peer = pad.get_peer()
            caps = (peer.get_current_caps() or peer.query_caps(None)) if peer else None
            media = caps.get_structure(0).get_string("media") if caps and caps.get_size() else None
            trans.set_property("direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)
            if media == "video":
                trans.set_property("codec-preferences", Gst.Caps.from_string(VIDEO_CAPS))
            elif media == "audio":
                trans.set_property("codec-preferences", Gst.Caps.from_string(AUDIO_CAPS))

        # Report keyframe requests (PLI/FIR from the server become GstForceKeyUnit events
        # travelling upstream: rtpsession -> rtph264pay -> x264enc, which obeys them).
        venc = self.pipe.get_by_name("venc")
        if venc:
            venc.get_static_pad("src").add_probe(Gst.PadProbeType.EVENT_UPSTREAM, self.on_upstream_event)
        # For the benchmark: when each encoded video frame left the encoder (wall clock).
        self.sent_log = open(args.log_sent, "w", buffering=1) if args.log_sent else None
        self.frames_sent = 0
        if venc and self.sent_log:
            venc.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, self.on_frame)

        self.webrtc.connect("on-negotiation-needed", self.on_negotiation_needed)
        self.webrtc.connect("notify::ice-connection-state", self.on_state, "ice-connection-state", "ice")
        self.webrtc.connect("notify::connection-state", self.on_state, "connection-state", "state")
        bus = self.pipe.get_bus()
        bus.add_signal_watch()
        bus.connect("message::error", self.on_bus_error)

    # --- helpers ---------------------------------------------------------------------

    def fail(self, message, status=1):
        say("error " + message)
        self.finish(status)

    def finish(self, status=0):
        """DELETEs the session (if any), stops the pipeline and the loop."""
        if self.finishing:
            return False
        self.finishing = True
        self.status = status
        if self.resource:
            code = self.delete()
            if status == 0 and not (isinstance(code, int) and 200 <= code < 300):
                self.status = 1
        self.loop.quit()
        return False

    def delete(self):
        req = urllib.request.Request(self.resource, method="DELETE", headers=self.auth_headers())
        try:
            with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as res:
                code = res.status
        except urllib.error.HTTPError as e:
            code = e.code
        except (urllib.error.URLError, OSError) as e:
            say("deleted failed")
            say("error DELETE %s: %s" % (self.resource, getattr(e, "reason", e)))
            return None
        say("deleted %d" % code)
        return code

    def auth_headers(self):
        return {"Authorization": "Bearer " + self.args.token} if self.args.token else {}

    def reply_error(self, promise):
        """The error a webrtcbin promise was answered with, or None."""
        if promise.wait() != Gst.PromiseResult.REPLIED:
            return "no reply"
        reply = promise.get_reply()
        if reply is not None and reply.has_field("error"):
            err = reply.get_value("error")
            return getattr(err, "message", None) or str(err)
        return None

    # --- signalling --------------------------------------------------------------------

    def on_negotiation_needed(self, element):
        GLib.idle_add(self.create_offer)

    def create_offer(self):
        if self.offered or self.finishing:
            return False
        # Wait (up to CAPS_WAIT) for caps on every input: the offer then carries each
        # stream's SSRC and the encoder's real profile-level-id.
        if self.caps_waited < CAPS_WAIT and not all(p.has_current_caps() for p in self.webrtc.sinkpads):
            self.caps_waited += 0.05
            GLib.timeout_add(50, self.create_offer)
            return False
        self.offered = True
        promise = Gst.Promise.new_with_change_func(self.on_offer_created, None)
        self.webrtc.emit("create-offer", None, promise)
        return False

    def on_offer_created(self, promise, _data):
        err = self.reply_error(promise)
        reply = promise.get_reply()
        offer = reply.get_value("offer") if reply is not None and reply.has_field("offer") else None
        if err or offer is None:
            GLib.idle_add(self.fail, "create-offer: " + (err or "no offer"))
            return
        # The offer belongs to the reply: take its text while the promise lives.
        sdp = offer.sdp.as_text()
        done = Gst.Promise.new_with_change_func(self.on_local_set, sdp)
        self.webrtc.emit("set-local-description", offer, done)

    def on_local_set(self, promise, sdp):
        err = self.reply_error(promise)
        if err:
            GLib.idle_add(self.fail, "set-local-description: " + err)
            return
        GLib.idle_add(self.post, sdp)

    def on_frame(self, pad, info):
        buf = info.get_buffer()
        key = 0 if buf.has_flags(Gst.BufferFlags.DELTA_UNIT) else 1
        pts = buf.pts / 1e6 if buf.pts != Gst.CLOCK_TIME_NONE else -1
        self.sent_log.write("%d %.6f %d %.3f\n" % (self.frames_sent, time.time(), key, pts))
        self.frames_sent += 1
        return Gst.PadProbeReturn.OK

    def post(self, sdp):
        if self.finishing:
            return False
        if self.sent_log:
            self.sent_log.write("post %.6f\n" % time.time())
        codecs = []
        for line in sdp.splitlines():
            if line.startswith("a=rtpmap:"):
                codecs.append(line.split(" ", 1)[1].split("/")[0])
        say("offer " + " ".join(codecs))
        headers = {"Content-Type": "application/sdp"}
        headers.update(self.auth_headers())
        req = urllib.request.Request(self.url, data=sdp.encode(), method="POST", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as res:
                status, body, location = res.status, res.read().decode("utf-8", "replace"), res.headers.get("Location")
        except urllib.error.HTTPError as e:
            body = e.read().decode("utf-8", "replace")
            say("refused %d %s" % (e.code, " ".join(body.split())))
            self.finish(3)
            return False
        except (urllib.error.URLError, OSError) as e:
            self.fail("POST %s: %s" % (self.url, getattr(e, "reason", e)))
            return False
        if status != 201:
            say("refused %d %s" % (status, " ".join(body.split())))
            self.finish(3)
            return False
        say("posted %d %s" % (status, location))
        if not location:
            self.fail("the 201 answer has no Location")
            return False
        self.resource = urllib.parse.urljoin(self.url, location)

        res, msg = GstSdp.SDPMessage.new_from_text(body)
        if res != GstSdp.SDPResult.OK or msg.medias_len() == 0:
            self.fail("the answer is not SDP: %r" % body[:200])
            return False
        answer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, msg)
        done = Gst.Promise.new_with_change_func(self.on_remote_set, None)
        self.webrtc.emit("set-remote-description", answer, done)
        GLib.timeout_add(int(self.args.seconds * 1000), self.on_time_up)
        return False

    def on_remote_set(self, promise, _data):
        err = self.reply_error(promise)
        if err:
            GLib.idle_add(self.fail, "set-remote-description: " + err)

    # --- run time --------------------------------------------------------------------

    def on_state(self, element, _pspec, prop, label):
        value = element.get_property(prop)
        nick = value.value_nick if hasattr(value, "value_nick") else str(value)
        GLib.idle_add(self.state_changed, label, nick)

    def state_changed(self, label, nick):
        if self.states.get(label) == nick:
            return False
        self.states[label] = nick
        say("%s %s" % (label, nick))
        if label == "state" and nick == "connected":
            self.connected = True
            if self.sent_log:
                self.sent_log.write("connected %.6f\n" % time.time())
        if nick == "failed" and not self.finishing:
            self.fail("%s failed" % ("ICE" if label == "ice" else "connection"))
        return False

    def on_upstream_event(self, pad, info):
        event = info.get_event()
        st = event.get_structure() if event else None
        if st is not None and st.get_name() == "GstForceKeyUnit":
            GLib.idle_add(lambda: say("keyframe requested") and False)
        return Gst.PadProbeReturn.OK

    def on_bus_error(self, bus, message):
        err, debug = message.parse_error()
        self.fail("pipeline: %s (%s)" % (err.message, message.src.get_name()))

    def on_time_up(self):
        if not self.connected:
            self.fail("not connected after %g s" % self.args.seconds)
        else:
            self.finish(0)
        return False

    def on_offer_timeout(self):
        if not self.resource and not self.finishing:
            self.fail("no offer POSTed after %d s" % OFFER_TIMEOUT)
        return False

    def on_signal(self):
        say("interrupted")
        self.finish(0 if self.connected else 1)
        return False

    def run(self):
        if self.pipe.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            say("error cannot start the pipeline")
            return 1
        GLib.timeout_add_seconds(OFFER_TIMEOUT, self.on_offer_timeout)
        for sig in (signal.SIGINT, signal.SIGTERM):
            GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, self.on_signal)
        self.loop.run()
        self.pipe.set_state(Gst.State.NULL)
        return 1 if self.status is None else self.status


def main():
    ap = argparse.ArgumentParser(description="Publish test media to a WHIP endpoint with GStreamer webrtcbin.")
    ap.add_argument("url", help="the WHIP endpoint, e.g. http://127.0.0.1:8889/KEY/whip")
    ap.add_argument("seconds", type=float, help="how long to publish before DELETE")
    ap.add_argument("--token", help="sent as Authorization: Bearer TOKEN")
    ap.add_argument("--no-audio", action="store_true", help="video only")
    ap.add_argument("--no-video", action="store_true", help="audio only")
    ap.add_argument("--local-ip", action="append", default=[], metavar="ADDR",
                    help="an address for ICE host candidates (repeatable; default: URL's host "
                         "when it is a loopback address, else every interface but loopback)")
    ap.add_argument("--log-sent", metavar="FILE",
                    help="log the POST time and when each video frame left the encoder (benchmarks)")
    args = ap.parse_args()
    if args.no_audio and args.no_video:
        ap.error("--no-audio and --no-video leave nothing to send")
    if urllib.parse.urlsplit(args.url).scheme not in ("http", "https"):
        ap.error("URL must be http:// or https://")

    Gst.init(None)
    try:
        client = Client(args)
    except (GLib.Error, RuntimeError) as e:
        say("error setting up the pipeline: %s" % e)
        return 1
    return client.run()


if __name__ == "__main__":
    sys.exit(main())
