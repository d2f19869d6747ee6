#!/usr/bin/env python3
"""A callback service for the notify tests: records every request it gets (one JSON line
each, written before it answers) and answers by the first part of the path:

  /ok/...       200
  /auth/...     publish "bad" or play "forbidden": 403; "redirectme": 302 to "renamed";
                "relayme": 302 to an rtmp:// URL; anything else 200
  /relay/PORT/APP/...  publish or play: 302 to rtmp://127.0.0.1:PORT/APP/NAME
  /slow/...     200 after one second
  /never/...    no answer for a minute
  /garbage/...  bytes that are not HTTP, then close
  /500/...      500
  /refuse/...   403
  /token/...    200 only for a "token" argument equal to "s3cret" (WHIP bearer tokens)

Usage: notify-server.py PORT RECORD_FILE
"""

import json
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, record = int(sys.argv[1]), sys.argv[2]
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def handle_any(self):
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("latin-1") if length else ""
        raw = body if self.command == "POST" else query
        fields = urllib.parse.parse_qsl(raw, keep_blank_values=True)
        entry = {
            "t": time.time(),
            "method": self.command,
            "path": path,
            "query": query,
            "content_type": self.headers.get("Content-Type"),
            "body": body,
            "field_order": [k for k, _ in fields],
            "fields": dict(fields),
        }
        with lock, open(record, "a") as f:
            f.write(json.dumps(entry) + "\n")
        kind = path.split("/")[1] if path.count("/") >= 1 else ""
        name = entry["fields"].get("name", "")
        call = entry["fields"].get("call", "")
        status, location = 200, None
        if kind == "auth":
            if (call == "publish" and name == "bad") or (call == "play" and name == "forbidden"):
                status = 403
            elif name == "redirectme" and call in ("publish", "play"):
                status, location = 302, "renamed"
            elif name == "relayme" and call in ("publish", "play"):
                status, location = 302, "rtmp://127.0.0.1:1/app/stream"
        elif kind == "relay" and call in ("publish", "play"):
            # /relay/PORT/APP: a relay to rtmp://127.0.0.1:PORT/APP/NAME
            _, _, port, app = path.split("/")[:4]
            status, location = 302, f"rtmp://127.0.0.1:{port}/{app}/{name}"
        elif kind == "slow":
            time.sleep(1)
        elif kind == "never":
            time.sleep(60)
            return
        elif kind == "garbage":
            self.wfile.write(b"garbage\r\n\r\n")
            return
        elif kind == "late":
            # Allows, but after netcall_timeout (2 s in t/30).
            time.sleep(3)
        elif kind == "midheader":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Le")
            self.wfile.flush()
            return
        elif kind == "huge":
            # 200, then 100 MB of body, as fast as the server takes it.
            self.send_response(200)
            self.send_header("Content-Length", str(100 << 20))
            self.end_headers()
            chunk = b"x" * (1 << 20)
            try:
                for _ in range(100):
                    self.wfile.write(chunk)
            except OSError:
                pass
            return
        elif kind == "500":
            status = 500
        elif kind == "refuse":
            status = 403
        elif kind == "token" and call == "publish":
            status = 200 if entry["fields"].get("token") == "s3cret" else 403
        self.send_response(status)
        if location:
            self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024


server = Server(("127.0.0.1", port), Handler)
print("ready", flush=True)
server.serve_forever()
