use quick_xml::events::Event;
use quick_xml::Reader;

use super::*;

/// Every element as "path=text" (empty elements as "path"), in document order.
fn flatten(xml: &[u8]) -> Vec<String> {
    let mut r = Reader::from_reader(xml);
    r.config_mut().trim_text(true);
    let (mut path, mut out, mut buf) = (Vec::<String>::new(), Vec::new(), Vec::new());
    loop {
        match r.read_event_into(&mut buf).unwrap() {
            Event::Start(e) => path.push(String::from_utf8_lossy(e.name().as_ref()).into_owned()),
            Event::Empty(e) => out.push(format!("{}/{}", path.join("/"), String::from_utf8_lossy(e.name().as_ref()))),
            Event::Text(t) => out.push(format!("{}={}", path.join("/"), t.decode().unwrap())),
            Event::End(_) => {
                path.pop();
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    out
}

/// The reference's numbers, as our model holds them.
fn reference_snapshot() -> Snapshot {
    let client = |id, time, flashver: &str, publishing| Client {
        id,
        address: "127.0.0.1".into(),
        time,
        flashver: flashver.into(),
        avsync: 39,
        timestamp: 13142,
        publishing,
        active: true,
        ..Client::default()
    };
    let codec = Codec {
        width: 640,
        height: 360,
        frame_rate: 25,
        video_codec: "H264".into(),
        video_profile: "High".into(),
        compat: 0,
        level: "3.0".into(),
        audio_codec: "AAC".into(),
        audio_profile: "LC".into(),
        channels: 2,
        sample_rate: 44100,
        ..Codec::default()
    };
    Snapshot {
        nginx_version: "1.22.1".into(),
        compiler: "ngx-rtmp-rs".into(),
        built: "Feb 13 2023 11:56:56".into(),
        pid: 28281,
        uptime: 14,
        naccepted: 7,
        bw_in: 1163912,
        bytes_in: 1736898,
        bw_out: 1251600,
        bytes_out: 2128550,
        servers: vec![Server {
            apps: vec![
                App {
                    name: "live".into(),
                    streams: vec![Stream {
                        name: "test".into(),
                        time: 13185,
                        bw_in: 984904,
                        bytes_in: 1511774,
                        bw_out: 1202984,
                        bytes_out: 2065011,
                        bw_audio: 102936,
                        bw_video: 881968,
                        clients: vec![
                            client(19, 9489, "LNX 9,0,124,2", false),
                            client(17, 9546, "LNX 10,0,32,18", false),
                            client(3, 13362, "FMLE/3.0 (compatible; Lavf59.27", true),
                        ],
                        codec: Some(codec),
                        publishing: true,
                        active: true,
                        hls_viewers: 4,
                    }],
                },
                App { name: "auth".into(), streams: vec![] },
            ],
        }],
        children: vec![super::Child {
            command: "exec_push \"test\": ffmpeg".into(),
            pid: 4242,
            state: "running",
            starts: 2,
            last_exit: "exited with code 1".into(),
            uptime: 12,
        }],
        relays: vec![super::Relay {
            direction: "pull",
            app: "edge".into(),
            name: "cam".into(),
            url: "rtmp://origin-b/live".into(),
            state: "waiting",
            reconnects: 3,
            last_error: "NetStream.Play.StreamNotFound".into(),
            bytes_in: 1000,
            bytes_out: 200,
            uptime: 0,
        }],
        health: super::Health {
            faults: [3, 1, 0, 2, 0],
            hls_segments: 40,
            recordings: 1,
            whip_sessions: 2,
            whip_sessions_total: 5,
            whep_sessions: 1,
            whep_sessions_total: 3,
            ..Default::default()
        },
    }
}

#[test]
fn health_in_json_and_prometheus() {
    let j = String::from_utf8(json(&reference_snapshot(), Sections::ALL)).unwrap();
    assert!(
        j.ends_with(r#""health":{"client_errors":{"protocol":3,"timeout":1,"slow":0,"refused":2,"idle":0},"hls_segments":40,"hls_errors":0,"recordings":1,"record_files":0,"record_errors":0,"whip_sessions":2,"whip_sessions_total":5,"whep_sessions":1,"whep_sessions_total":3}}
"#),
        "{j}"
    );
    let p = String::from_utf8(prometheus(&reference_snapshot())).unwrap();
    for line in ["rtmp_client_errors_total{reason=\"protocol\"} 3\n", "rtmp_client_errors_total{reason=\"refused\"} 2\n", "rtmp_hls_segments_total 40\n", "rtmp_recordings 1\n", "rtmp_whip_sessions 2\n", "rtmp_whip_sessions_total 5\n", "rtmp_whep_sessions 1\n", "rtmp_whep_sessions_total 3\n"] {
        assert!(p.contains(line), "{line} in {p}");
    }
}

#[test]
fn exec_children_in_json_and_prometheus() {
    let j = String::from_utf8(json(&reference_snapshot(), Sections::ALL)).unwrap();
    assert!(
        j.contains(r#""exec":[{"command":"exec_push \"test\": ffmpeg","pid":4242,"state":"running","starts":2,"uptime":12,"last_exit":"exited with code 1"}]"#),
        "{j}"
    );
    let p = String::from_utf8(prometheus(&reference_snapshot())).unwrap();
    assert!(p.contains("rtmp_exec_starts_total{command=\"exec_push \\\"test\\\": ffmpeg\"} 2\n"), "{p}");
    assert!(p.contains("rtmp_exec_running{command=\"exec_push \\\"test\\\": ffmpeg\"} 1\n"));
}

#[test]
fn xml_has_nginx_rtmp_modules_shape() {
    let ours = xml(&reference_snapshot(), Sections::ALL, None);
    let mut ours = flatten(&ours);
    // The reference's nginx-rtmp-module was built without NGX_COMPILER.
    ours.retain(|e| !e.starts_with("rtmp/compiler="));
    let theirs = flatten(include_bytes!("testdata/stat-nginx-rtmp.xml"));
    assert_eq!(ours, theirs);
}

#[test]
fn xml_sections_and_stylesheet() {
    let out = String::from_utf8(xml(&reference_snapshot(), Sections { live: true, clients: false }, Some("stat.xsl"))).unwrap();
    assert!(out.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<?xml-stylesheet type=\"text/xsl\" href=\"stat.xsl\"?>"), "{out}");
    assert!(!out.contains("<client>") && out.contains("<nclients>3</nclients>"));
    let out = String::from_utf8(xml(&reference_snapshot(), Sections { live: false, clients: false }, None)).unwrap();
    assert!(!out.contains("<live>") && out.contains("<name>auth</name>"));
    let mut s = reference_snapshot();
    s.servers[0].apps[0].streams[0].name = "<&\"x".into();
    let out = String::from_utf8(xml(&s, Sections::ALL, None)).unwrap();
    assert!(out.contains("<name>&lt;&amp;&quot;x</name>"), "{out}");
}

#[test]
fn json_and_prometheus_carry_the_numbers() {
    let j = String::from_utf8(json(&reference_snapshot(), Sections::ALL)).unwrap();
    for want in ["\"bw_in\":984904", "\"nclients\":3", "\"hls_viewers\":4", "\"flashver\":\"FMLE/3.0 (compatible; Lavf59.27\"", "\"profile\":\"High\"", "\"sample_rate\":44100", "\"publishing\":true"] {
        assert!(j.contains(want), "{want} in {j}");
    }
    let p = String::from_utf8(prometheus(&reference_snapshot())).unwrap();
    for want in [
        "rtmp_stream_clients{server=\"0\",app=\"live\",stream=\"test\"} 3",
        "rtmp_stream_players{server=\"0\",app=\"live\",stream=\"test\"} 2",
        "rtmp_stream_receive_bytes_per_second{server=\"0\",app=\"live\",stream=\"test\"} 123113",
        "rtmp_received_bytes_total 1736898",
        "rtmp_stream_hls_viewers{server=\"0\",app=\"live\",stream=\"test\"} 4",
        "# TYPE rtmp_stream_sent_bytes_total counter",
        "rtmp_stream_info{server=\"0\",app=\"live\",stream=\"test\",video_codec=\"H264\",video_profile=\"High\",width=\"640\"",
    ] {
        assert!(p.contains(want), "{want} in {p}");
    }
}

#[test]
fn codec_details() {
    use crate::media::{Frame, MediaKind};
    let tag = |c: &mut Codec, kind, b: &[u8]| c.frame(&Frame::parse(kind, 0, bytes::Bytes::copy_from_slice(b)));
    let (video, audio) = (MediaKind::Video, MediaKind::Audio);
    let mut c = Codec::default();
    tag(&mut c, video, &[0x17, 0, 0, 0, 0, 1, 100, 0, 30, 0xff]);
    tag(&mut c, audio, &[0xaf, 0, 0x12, 0x10]);
    let meta = crate::rtmp::amf::encode(&[
        crate::rtmp::amf::Value::str("onMetaData"),
        crate::rtmp::amf::Value::object(&[("width", crate::rtmp::amf::Value::Number(640.0)), ("framerate", crate::rtmp::amf::Value::Number(29.97))]),
    ]);
    tag(&mut c, MediaKind::Data, &meta);
    assert_eq!((c.video_codec.as_str(), c.video_profile.as_str(), c.level.as_str(), c.compat), ("H264", "High", "3.0", 0));
    assert_eq!((c.audio_codec.as_str(), c.audio_profile.as_str(), c.channels, c.sample_rate), ("AAC", "LC", 2, 44100));
    assert_eq!((c.width, c.frame_rate), (640, 30));
    // Frames after the headers leave the details as they are.
    tag(&mut c, video, &[0x27, 1, 0, 0, 0, 9]);
    tag(&mut c, audio, &[0xaf, 1, 9]);
    assert_eq!((c.video_profile.as_str(), c.audio_profile.as_str()), ("High", "LC"));
    let mut h = Codec::default();
    tag(&mut h, video, &[0x90, b'h', b'v', b'c', b'1', 1, 1, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 93]);
    assert_eq!((h.video_codec.as_str(), h.video_profile.as_str(), h.level.as_str()), ("H265", "Main", "3.1"));
    let mut m = Codec::default();
    tag(&mut m, audio, &[0x2f, 1, 2]);
    assert_eq!((m.audio_codec.as_str(), m.channels, m.sample_rate), ("MP3", 2, 44100));
    let mut o = Codec::default();
    tag(&mut o, audio, b"\x90OpusOpusHead");
    assert_eq!((o.audio_codec.as_str(), o.channels), ("Opus", 0));
    for garbage in [&[][..], &[0x17], &[0x17, 0, 0, 0, 0, 1], &[0xaf, 0], &[0x90, b'x']] {
        for kind in [video, audio, MediaKind::Data] {
            tag(&mut Codec::default(), kind, garbage);
        }
    }
}

#[test]
fn rates_are_right_from_the_first_second() {
    let mut r = Rate::new(0, 0);
    assert_eq!(r.bits_per_sec(100, 1000), 0, "too early to say");
    assert_eq!(r.bits_per_sec(1000, 125_000), 1_000_000);
    for s in 1..=20u64 {
        r.sample(s * 1000, s * 125_000);
    }
    assert_eq!(r.bits_per_sec(20_000, 20 * 125_000), 1_000_000);
    // A stop shows within the window.
    for s in 21..=26u64 {
        r.sample(s * 1000, 20 * 125_000);
    }
    assert_eq!(r.bits_per_sec(26_000, 20 * 125_000), 0);
}

#[test]
fn hls_viewers() {
    assert_eq!(hls_stream_of("/hls/cam-1764000000123.ts"), Some("cam"));
    assert_eq!(hls_stream_of("/hls/my-cam_hi-12.ts"), Some("my-cam_hi"));
    assert_eq!(hls_stream_of("/hls/cam-1764000000123.m4s"), Some("cam"), "fMP4 segments too");
    assert_eq!(hls_stream_of("/hls/cam-1764000000123.3.m4s"), Some("cam"), "and low-latency parts");
    assert_eq!(hls_stream_of("/hls/cam-init1764000000123.mp4"), None, "not init segments");
    assert_eq!(hls_stream_of("/hls/cam/17.ts"), Some("cam"));
    for not in ["/hls/cam.m3u8", "/hls/cam-x.ts", "/hls/-1.ts", "/17.ts", "cam-1.ts", "/hls/cam-.ts"] {
        assert_eq!(hls_stream_of(not), None, "{not}");
    }
    let mut v = HlsViewers::default();
    v.seen("cam", 1, 0);
    v.seen("cam", 2, 1000);
    v.seen("cam", 1, 2000);
    assert_eq!(v.count("cam", 2000), 2);
    assert_eq!(v.count("cam", 21_500), 1, "viewer 2 left");
    assert_eq!(v.count("cam", 30_000), 0);
    v.prune(30_000);
    assert!(v.streams.is_empty());
    for i in 0..(MAX_HLS_VIEWERS as u64 + 10) {
        v.seen("cam", i, 5);
    }
    assert_eq!(v.count("cam", 5), MAX_HLS_VIEWERS, "bounded");
}

#[test]
fn relays_in_json_and_prometheus() {
    let j = String::from_utf8(json(&reference_snapshot(), Sections::ALL)).unwrap();
    assert!(
        j.contains(r#""relays":[{"direction":"pull","app":"edge","name":"cam","url":"rtmp://origin-b/live","state":"waiting","reconnects":3,"bytes_in":1000,"bytes_out":200,"uptime":0,"last_error":"NetStream.Play.StreamNotFound"}]"#),
        "{j}"
    );
    let p = String::from_utf8(prometheus(&reference_snapshot())).unwrap();
    let labels = r#"{direction="pull",app="edge",name="cam",url="rtmp://origin-b/live"}"#;
    for line in [format!("rtmp_relay_up{labels} 0\n"), format!("rtmp_relay_reconnects_total{labels} 3\n"), format!("rtmp_relay_received_bytes_total{labels} 1000\n")] {
        assert!(p.contains(&line), "{line} in {p}");
    }
}
