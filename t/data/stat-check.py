#!/usr/bin/python3
"""Reads /stat three ways for t/50-stat.t and prints one JSON summary:

  xml   the XML parses, and every element is one nginx-rtmp-module's /stat has, where it
        has it (a violation is listed in "bad");
  json  /stat?format=json parses;
  prom  /metrics parses with the Prometheus client's own text parser.

Usage: stat-check.py XML_FILE JSON_FILE PROM_FILE
"""

import json
import sys
import xml.etree.ElementTree as ET

from prometheus_client.parser import text_string_to_metric_families

CHILDREN = {
    "rtmp": {"nginx_version", "nginx_rtmp_version", "compiler", "built", "pid", "uptime", "naccepted",
             "bw_in", "bytes_in", "bw_out", "bytes_out", "server"},
    "server": {"application"},
    "application": {"name", "live", "play"},
    "live": {"stream", "nclients"},
    "stream": {"name", "time", "bw_in", "bytes_in", "bw_out", "bytes_out", "bw_audio", "bw_video",
               "client", "meta", "nclients", "publishing", "active"},
    "client": {"id", "address", "time", "flashver", "pageurl", "swfurl", "dropped", "avsync",
               "timestamp", "publishing", "active"},
    "meta": {"video", "audio"},
    "video": {"width", "height", "frame_rate", "codec", "profile", "compat", "level"},
    "audio": {"codec", "profile", "channels", "sample_rate"},
}
NUMERIC = {"pid", "uptime", "naccepted", "bw_in", "bytes_in", "bw_out", "bytes_out", "time", "bw_audio",
           "bw_video", "nclients", "id", "dropped", "avsync", "timestamp", "width", "height",
           "frame_rate", "compat", "channels", "sample_rate"}

bad = []


def walk(e, path):
    allowed = CHILDREN.get(e.tag)
    for child in e:
        if allowed is None or child.tag not in allowed:
            bad.append(f"{path}/{child.tag}")
        if child.tag in NUMERIC and not (child.text or "").lstrip("-").isdigit():
            bad.append(f"{path}/{child.tag}={child.text!r}")
        walk(child, f"{path}/{child.tag}")


root = ET.parse(sys.argv[1]).getroot()
if root.tag != "rtmp":
    bad.append(root.tag)
walk(root, "rtmp")

streams = {}
for app in root.iter("application"):
    for s in app.iter("stream"):
        clients = s.findall("client")
        meta = {}
        for kind in ("video", "audio"):
            k = s.find(f"meta/{kind}")
            if k is not None:
                meta[kind] = {c.tag: c.text for c in k}
        streams[app.findtext("name") + "/" + s.findtext("name")] = {
            "nclients": int(s.findtext("nclients")),
            "publishing_clients": sum(1 for c in clients if c.find("publishing") is not None),
            "publishing": s.find("publishing") is not None,
            "bw_in": int(s.findtext("bw_in")),
            "bw_out": int(s.findtext("bw_out")),
            "bw_video": int(s.findtext("bw_video")),
            "bw_audio": int(s.findtext("bw_audio")),
            "flashvers": sorted(c.findtext("flashver") for c in clients),
            "meta": meta,
        }

js = json.load(open(sys.argv[2]))
json_streams = {}
for srv in js["servers"]:
    for app in srv["applications"]:
        for s in app.get("live", {}).get("streams", []):
            json_streams[app["name"] + "/" + s["name"]] = {"nclients": s["nclients"], "publishing": s["publishing"],
                                                         "meta": s["meta"]}

prom = {}
for family in text_string_to_metric_families(open(sys.argv[3]).read()):
    for sample in family.samples:
        key = sample.name + "".join(f",{k}={v}" for k, v in sorted(sample.labels.items()) if k in ("app", "stream"))
        prom[key] = sample.value

print(json.dumps({"bad": bad, "streams": streams, "json": json_streams, "prom": prom}))
