//! The three renderings of a [`Snapshot`].

use std::fmt::Write as _;
use std::io;

use quick_xml::events::{BytesDecl, BytesPI, BytesText, Event};
use quick_xml::Writer;

use super::{Client, Codec, Sections, Snapshot, Stream};

/// nginx-rtmp-module's version this output is compatible with (scripts check it).
pub const NGINX_RTMP_VERSION: &str = "1.1.4";

type W = Writer<Vec<u8>>;

fn el(w: &mut W, name: &str, value: impl ToString) -> io::Result<()> {
    w.create_element(name).write_text_content(BytesText::new(&value.to_string()))?;
    Ok(())
}

fn flag(w: &mut W, name: &str, on: bool) -> io::Result<()> {
    if on {
        w.create_element(name).write_empty()?;
    }
    Ok(())
}

fn xml_client(w: &mut W, c: &Client) -> io::Result<()> {
    w.create_element("client").write_inner_content(|w| {
        el(w, "id", c.id)?;
        el(w, "address", &c.address)?;
        el(w, "time", c.time)?;
        el(w, "flashver", &c.flashver)?;
        if !c.pageurl.is_empty() {
            el(w, "pageurl", &c.pageurl)?;
        }
        if !c.swfurl.is_empty() {
            el(w, "swfurl", &c.swfurl)?;
        }
        el(w, "dropped", c.dropped)?;
        el(w, "avsync", c.avsync)?;
        el(w, "timestamp", c.timestamp)?;
        flag(w, "publishing", c.publishing)?;
        flag(w, "active", c.active)
    })?;
    Ok(())
}

fn xml_meta(w: &mut W, m: &Codec) -> io::Result<()> {
    w.create_element("meta").write_inner_content(|w| {
        w.create_element("video").write_inner_content(|w| {
            el(w, "width", m.width)?;
            el(w, "height", m.height)?;
            el(w, "frame_rate", m.frame_rate)?;
            if !m.video_codec.is_empty() {
                el(w, "codec", &m.video_codec)?;
            }
            if !m.video_profile.is_empty() {
                el(w, "profile", &m.video_profile)?;
            }
            if !m.level.is_empty() {
                el(w, "compat", m.compat)?;
                el(w, "level", &m.level)?;
            }
            Ok(())
        })?;
        w.create_element("audio").write_inner_content(|w| {
            if !m.audio_codec.is_empty() {
                el(w, "codec", &m.audio_codec)?;
            }
            if !m.audio_profile.is_empty() {
                el(w, "profile", &m.audio_profile)?;
            }
            if m.channels > 0 {
                el(w, "channels", m.channels)?;
            }
            if m.sample_rate > 0 {
                el(w, "sample_rate", m.sample_rate)?;
            }
            Ok(())
        })?;
        Ok(())
    })?;
    Ok(())
}

fn xml_stream(w: &mut W, s: &Stream, sections: Sections) -> io::Result<()> {
    w.create_element("stream").write_inner_content(|w| {
        el(w, "name", &s.name)?;
        el(w, "time", s.time)?;
        el(w, "bw_in", s.bw_in)?;
        el(w, "bytes_in", s.bytes_in)?;
        el(w, "bw_out", s.bw_out)?;
        el(w, "bytes_out", s.bytes_out)?;
        el(w, "bw_audio", s.bw_audio)?;
        el(w, "bw_video", s.bw_video)?;
        if sections.clients {
            for c in &s.clients {
                xml_client(w, c)?;
            }
        }
        if let Some(m) = &s.codec {
            xml_meta(w, m)?;
        }
        el(w, "nclients", s.clients.len())?;
        flag(w, "publishing", s.publishing)?;
        flag(w, "active", s.active)
    })?;
    Ok(())
}

/// nginx-rtmp-module's `/stat` document (`stylesheet`: `rtmp_stat_stylesheet`).
pub fn xml(snap: &Snapshot, sections: Sections, stylesheet: Option<&str>) -> Vec<u8> {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 0);
    let r: io::Result<()> = (|| {
        w.write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))?;
        if let Some(href) = stylesheet {
            let href = quick_xml::escape::escape(href);
            w.write_event(Event::PI(BytesPI::new(format!("xml-stylesheet type=\"text/xsl\" href=\"{href}\""))))?;
        }
        w.create_element("rtmp").write_inner_content(|w| {
            el(w, "nginx_version", &snap.nginx_version)?;
            el(w, "nginx_rtmp_version", NGINX_RTMP_VERSION)?;
            el(w, "compiler", &snap.compiler)?;
            el(w, "built", &snap.built)?;
            el(w, "pid", snap.pid)?;
            el(w, "uptime", snap.uptime)?;
            el(w, "naccepted", snap.naccepted)?;
            el(w, "bw_in", snap.bw_in)?;
            el(w, "bytes_in", snap.bytes_in)?;
            el(w, "bw_out", snap.bw_out)?;
            el(w, "bytes_out", snap.bytes_out)?;
            for server in &snap.servers {
                w.create_element("server").write_inner_content(|w| {
                    for app in &server.apps {
                        w.create_element("application").write_inner_content(|w| {
                            el(w, "name", &app.name)?;
                            if sections.live {
                                w.create_element("live").write_inner_content(|w| {
                                    for s in &app.streams {
                                        xml_stream(w, s, sections)?;
                                    }
                                    el(w, "nclients", app.nclients())
                                })?;
                            }
                            Ok(())
                        })?;
                    }
                    Ok(())
                })?;
            }
            Ok(())
        })?;
        Ok(())
    })();
    r.expect("writing to a Vec does not fail");
    let mut out = w.into_inner();
    out.push(b'\n');
    out
}

/// A JSON string literal.
fn js(out: &mut String, s: &str) {
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Comma-separated items of one JSON array or object.
fn list<T>(out: &mut String, items: &[T], mut f: impl FnMut(&mut String, &T)) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        f(out, item);
    }
}

fn json_client(o: &mut String, c: &Client) {
    let _ = write!(o, "{{\"id\":{},\"address\":", c.id);
    js(o, &c.address);
    let _ = write!(o, ",\"time\":{},\"flashver\":", c.time);
    js(o, &c.flashver);
    o.push_str(",\"pageurl\":");
    js(o, &c.pageurl);
    o.push_str(",\"swfurl\":");
    js(o, &c.swfurl);
    let _ = write!(
        o,
        ",\"dropped\":{},\"avsync\":{},\"timestamp\":{},\"publishing\":{},\"active\":{},\"worker\":{}}}",
        c.dropped, c.avsync, c.timestamp, c.publishing, c.active, c.worker
    );
}

fn json_meta(o: &mut String, m: &Codec) {
    let _ = write!(o, "{{\"video\":{{\"width\":{},\"height\":{},\"frame_rate\":{},\"codec\":", m.width, m.height, m.frame_rate);
    js(o, &m.video_codec);
    o.push_str(",\"profile\":");
    js(o, &m.video_profile);
    let _ = write!(o, ",\"compat\":{},\"level\":", m.compat);
    js(o, &m.level);
    o.push_str("},\"audio\":{\"codec\":");
    js(o, &m.audio_codec);
    o.push_str(",\"profile\":");
    js(o, &m.audio_profile);
    let _ = write!(o, ",\"channels\":{},\"sample_rate\":{}}}}}", m.channels, m.sample_rate);
}

/// The same document as JSON (`?format=json`): the same names and numbers.
pub fn json(snap: &Snapshot, sections: Sections) -> Vec<u8> {
    let mut o = String::with_capacity(1024);
    o.push_str("{\"nginx_version\":");
    js(&mut o, &snap.nginx_version);
    let _ = write!(o, ",\"nginx_rtmp_version\":\"{NGINX_RTMP_VERSION}\",\"compiler\":");
    js(&mut o, &snap.compiler);
    o.push_str(",\"built\":");
    js(&mut o, &snap.built);
    let _ = write!(
        o,
        ",\"pid\":{},\"uptime\":{},\"naccepted\":{},\"bw_in\":{},\"bytes_in\":{},\"bw_out\":{},\"bytes_out\":{},\"servers\":[",
        snap.pid, snap.uptime, snap.naccepted, snap.bw_in, snap.bytes_in, snap.bw_out, snap.bytes_out
    );
    list(&mut o, &snap.servers, |o, server| {
        o.push_str("{\"applications\":[");
        list(o, &server.apps, |o, app| {
            o.push_str("{\"name\":");
            js(o, &app.name);
            if sections.live {
                o.push_str(",\"live\":{\"streams\":[");
                list(o, &app.streams, |o, s| {
                    o.push_str("{\"name\":");
                    js(o, &s.name);
                    let _ = write!(
                        o,
                        ",\"time\":{},\"bw_in\":{},\"bytes_in\":{},\"bw_out\":{},\"bytes_out\":{},\"bw_audio\":{},\"bw_video\":{}",
                        s.time, s.bw_in, s.bytes_in, s.bw_out, s.bytes_out, s.bw_audio, s.bw_video
                    );
                    if sections.clients {
                        o.push_str(",\"clients\":[");
                        list(o, &s.clients, json_client);
                        o.push(']');
                    }
                    o.push_str(",\"meta\":");
                    match &s.codec {
                        Some(m) => json_meta(o, m),
                        None => o.push_str("null"),
                    }
                    let _ = write!(
                        o,
                        ",\"nclients\":{},\"hls_viewers\":{},\"publishing\":{},\"active\":{}}}",
                        s.clients.len(),
                        s.hls_viewers,
                        s.publishing,
                        s.active
                    );
                });
                let _ = write!(o, "],\"nclients\":{}}}", app.nclients());
            }
            o.push('}');
        });
        o.push_str("]}");
    });
    o.push_str("],\"exec\":[");
    list(&mut o, &snap.children, |o, c| {
        o.push_str("{\"command\":");
        js(o, &c.command);
        let _ = write!(o, ",\"pid\":{},\"state\":\"{}\",\"starts\":{},\"uptime\":{},\"last_exit\":", c.pid, c.state, c.starts, c.uptime);
        js(o, &c.last_exit);
        o.push('}');
    });
    o.push_str("],\"relays\":[");
    list(&mut o, &snap.relays, |o, r| {
        let _ = write!(o, "{{\"direction\":\"{}\",\"app\":", r.direction);
        js(o, &r.app);
        o.push_str(",\"name\":");
        js(o, &r.name);
        o.push_str(",\"url\":");
        js(o, &r.url);
        let _ = write!(
            o,
            ",\"state\":\"{}\",\"reconnects\":{},\"bytes_in\":{},\"bytes_out\":{},\"uptime\":{},\"last_error\":",
            r.state, r.reconnects, r.bytes_in, r.bytes_out, r.uptime
        );
        js(o, &r.last_error);
        o.push('}');
    });
    let h = &snap.health;
    o.push_str("],\"health\":{\"client_errors\":{");
    for (i, (f, v)) in super::Fault::ALL.iter().zip(h.faults).enumerate() {
        let _ = write!(o, "{}\"{}\":{v}", if i > 0 { "," } else { "" }, f.name());
    }
    let _ = write!(
        o,
        "}},\"hls_segments\":{},\"hls_errors\":{},\"recordings\":{},\"record_files\":{},\"record_errors\":{},\"whip_sessions\":{},\"whip_sessions_total\":{},\"whep_sessions\":{},\"whep_sessions_total\":{}}}}}\n",
        h.hls_segments, h.hls_errors, h.recordings, h.record_files, h.record_errors, h.whip_sessions, h.whip_sessions_total, h.whep_sessions, h.whep_sessions_total
    );
    o.into_bytes()
}

/// A label value, escaped for the text exposition format.
fn label(out: &mut String, s: &str) {
    for ch in s.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Prometheus text exposition: worker totals, then per-stream series labelled with
/// `server`, `app` and `stream`.
pub fn prometheus(snap: &Snapshot) -> Vec<u8> {
    let mut o = String::with_capacity(2048);
    let head = |o: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    for (name, kind, help, v) in [
        ("rtmp_uptime_seconds", "gauge", "Seconds since the nginx worker started.", snap.uptime),
        ("rtmp_connections_accepted_total", "counter", "RTMP connections accepted by the worker.", snap.naccepted),
        ("rtmp_received_bytes_total", "counter", "Bytes received from RTMP clients.", snap.bytes_in),
        ("rtmp_sent_bytes_total", "counter", "Bytes sent to RTMP clients.", snap.bytes_out),
        // (Rates in bytes, Prometheus's base unit: `promtool check metrics` warns on bits.)
        ("rtmp_receive_bytes_per_second", "gauge", "Receive rate over the last seconds, bytes per second.", snap.bw_in / 8),
        ("rtmp_send_bytes_per_second", "gauge", "Send rate over the last seconds, bytes per second.", snap.bw_out / 8),
    ] {
        head(&mut o, name, kind, help);
        let _ = writeln!(o, "{name} {v}");
    }
    let h = &snap.health;
    for (name, kind, help, v) in [
        ("rtmp_hls_segments_total", "counter", "HLS segments completed and listed in a playlist.", h.hls_segments),
        ("rtmp_hls_errors_total", "counter", "HLS writes that failed (the segment or playlist is skipped, the stream goes on).", h.hls_errors),
        ("rtmp_recordings", "gauge", "Recording files being written now.", h.recordings),
        ("rtmp_record_files_total", "counter", "Recording files completed.", h.record_files),
        ("rtmp_record_errors_total", "counter", "Recordings that failed (the recording stops, the stream goes on).", h.record_errors),
        ("rtmp_whip_sessions", "gauge", "WHIP sessions publishing now.", h.whip_sessions),
        ("rtmp_whip_sessions_total", "counter", "WHIP sessions since the worker started.", h.whip_sessions_total),
        ("rtmp_whep_sessions", "gauge", "WHEP sessions playing now.", h.whep_sessions),
        ("rtmp_whep_sessions_total", "counter", "WHEP sessions since the worker started.", h.whep_sessions_total),
    ] {
        head(&mut o, name, kind, help);
        let _ = writeln!(o, "{name} {v}");
    }
    head(&mut o, "rtmp_client_errors_total", "counter", "Clients closed by the server, by reason.");
    for (f, v) in super::Fault::ALL.iter().zip(h.faults) {
        let _ = writeln!(o, "rtmp_client_errors_total{{reason=\"{}\"}} {v}", f.name());
    }
    type Get = fn(&Stream) -> u64;
    let series: [(&str, &str, &str, Get); 11] = [
        ("rtmp_stream_clients", "gauge", "RTMP clients of the stream (its publisher and players).", |s| s.clients.len() as u64),
        ("rtmp_stream_players", "gauge", "RTMP players of the stream.", |s| s.clients.iter().filter(|c| !c.publishing).count() as u64),
        ("rtmp_stream_hls_viewers", "gauge", "HLS viewers of the stream (segment requests in the last 20 s).", |s| s.hls_viewers as u64),
        ("rtmp_stream_publishing", "gauge", "1 while the stream has a publisher.", |s| s.publishing as u64),
        ("rtmp_stream_uptime_seconds", "gauge", "Seconds since the stream started.", |s| s.time / 1000),
        ("rtmp_stream_received_bytes_total", "counter", "Bytes received for the stream.", |s| s.bytes_in),
        ("rtmp_stream_sent_bytes_total", "counter", "Bytes sent to the stream's players.", |s| s.bytes_out),
        ("rtmp_stream_receive_bytes_per_second", "gauge", "The stream's receive rate, bytes per second.", |s| s.bw_in / 8),
        ("rtmp_stream_send_bytes_per_second", "gauge", "The stream's send rate, bytes per second.", |s| s.bw_out / 8),
        ("rtmp_stream_audio_bytes_per_second", "gauge", "The stream's audio rate, bytes per second.", |s| s.bw_audio / 8),
        ("rtmp_stream_video_bytes_per_second", "gauge", "The stream's video rate, bytes per second.", |s| s.bw_video / 8),
    ];
    let labels = |o: &mut String, server: usize, app: &str, stream: &str| {
        let _ = write!(o, "{{server=\"{server}\",app=\"");
        label(o, app);
        o.push_str("\",stream=\"");
        label(o, stream);
        o.push_str("\"}");
    };
    for (name, kind, help, get) in series {
        head(&mut o, name, kind, help);
        for (i, server) in snap.servers.iter().enumerate() {
            for app in &server.apps {
                for s in &app.streams {
                    o.push_str(name);
                    labels(&mut o, i, &app.name, &s.name);
                    let _ = writeln!(o, " {}", get(s));
                }
            }
        }
    }
    head(&mut o, "rtmp_stream_info", "gauge", "Codec details of the stream, as labels.");
    for (i, server) in snap.servers.iter().enumerate() {
        for app in &server.apps {
            for s in &app.streams {
                let Some(m) = &s.codec else { continue };
                o.push_str("rtmp_stream_info");
                labels(&mut o, i, &app.name, &s.name);
                o.pop();
                for (k, v) in [
                    ("video_codec", m.video_codec.clone()),
                    ("video_profile", m.video_profile.clone()),
                    ("width", m.width.to_string()),
                    ("height", m.height.to_string()),
                    ("frame_rate", m.frame_rate.to_string()),
                    ("audio_codec", m.audio_codec.clone()),
                    ("sample_rate", m.sample_rate.to_string()),
                    ("channels", m.channels.to_string()),
                ] {
                    let _ = write!(o, ",{k}=\"");
                    label(&mut o, &v);
                    o.push('"');
                }
                o.push_str("} 1\n");
            }
        }
    }
    type GetChild = fn(&super::Child) -> u64;
    let children: [(&str, &str, &str, GetChild); 3] = [
        ("rtmp_exec_running", "gauge", "1 while the exec child runs.", |c| (c.state == "running") as u64),
        ("rtmp_exec_starts_total", "counter", "Times the exec child was started.", |c| c.starts as u64),
        ("rtmp_exec_uptime_seconds", "gauge", "Seconds since the exec child last started.", |c| c.uptime),
    ];
    for (name, kind, help, get) in children {
        head(&mut o, name, kind, help);
        for c in &snap.children {
            let _ = write!(o, "{name}{{command=\"");
            label(&mut o, &c.command);
            let _ = writeln!(o, "\"}} {}", get(c));
        }
    }
    type GetRelay = fn(&super::Relay) -> u64;
    let relays: [(&str, &str, &str, GetRelay); 4] = [
        ("rtmp_relay_up", "gauge", "1 while the relay's stream flows.", |r| (r.state == "live") as u64),
        ("rtmp_relay_reconnects_total", "counter", "Times the relay reconnected or moved to the next origin.", |r| r.reconnects),
        ("rtmp_relay_received_bytes_total", "counter", "Bytes the relay received.", |r| r.bytes_in),
        ("rtmp_relay_sent_bytes_total", "counter", "Bytes the relay sent.", |r| r.bytes_out),
    ];
    for (name, kind, help, get) in relays {
        head(&mut o, name, kind, help);
        for r in &snap.relays {
            let _ = write!(o, "{name}{{direction=\"{}\",app=\"", r.direction);
            label(&mut o, &r.app);
            o.push_str("\",name=\"");
            label(&mut o, &r.name);
            o.push_str("\",url=\"");
            label(&mut o, &r.url);
            let _ = writeln!(o, "\"}} {}", get(r));
        }
    }
    o.into_bytes()
}
