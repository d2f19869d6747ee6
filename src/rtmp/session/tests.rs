use super::*;
use crate::rtmp::chunk::Reader;

/// Plays the client side: handshake, then commands.
struct Client {
    s: Session,
    from_server: Reader,
}

impl Client {
    fn new() -> Self {
        let mut s = Session::new(Config { chunk_size: 4096, ..Config::default() });
        let mut c0c1 = vec![3u8];
        c0c1.extend_from_slice(&[0u8; 1536]);
        s.feed(&c0c1, 0, 1).unwrap();
        let reply = s.take_output().unwrap();
        assert_eq!(reply.len(), 3073);
        s.feed(&reply[1..1537], 0, 1).unwrap(); // C2 = S1
        assert!(s.is_open());
        Client { s, from_server: Reader::new(1 << 20) }
    }

    fn send(&mut self, type_id: u8, msid: u32, body: &[u8]) -> Result<(), Error> {
        let bytes = chunk::encode(3, 0, type_id, msid, body, 128);
        self.s.feed(&bytes, 0, 1)
    }

    fn command(&mut self, msid: u32, values: &[Value]) -> Result<(), Error> {
        self.send(msg::COMMAND_AMF0, msid, &amf::encode(values))
    }

    /// Every message the server sent since last time, decoded.
    fn replies(&mut self) -> Vec<(u8, Vec<Value>)> {
        let mut out = vec![];
        if let Some(b) = self.s.take_output() {
            self.from_server.push(&b);
        }
        while let Some(m) = self.from_server.read_message().unwrap() {
            if m.type_id == msg::SET_CHUNK_SIZE {
                self.from_server.set_chunk_size(u32::from_be_bytes(m.payload[..4].try_into().unwrap()) as usize);
            }
            let v = if matches!(m.type_id, msg::COMMAND_AMF0 | msg::DATA_AMF0) {
                amf::Reader::new(&m.payload).read_all().unwrap()
            } else {
                vec![]
            };
            out.push((m.type_id, v));
        }
        out
    }
}

fn codes(replies: &[(u8, Vec<Value>)]) -> Vec<String> {
    replies
        .iter()
        .filter_map(|(_, v)| {
            let name = v.first()?.as_str()?;
            let code = v.iter().find_map(|x| x.get("code")).and_then(Value::as_str).unwrap_or("");
            Some(format!("{name} {code}").trim().to_owned())
        })
        .collect()
}

fn connect(c: &mut Client, app: &str) {
    c.command(0, &[
        Value::str("connect"),
        Value::Number(1.0),
        Value::object(&[("app", Value::str(app)), ("tcUrl", Value::str(&format!("rtmp://h/{app}"))), ("flashVer", Value::str("FMLE/3.0"))]),
    ])
    .unwrap();
}

#[test]
fn enhanced_rtmp_opus_announced() {
    let list = |items: &[&str]| Value::object(&[("fourCcList", Value::StrictArray(items.iter().map(|i| Value::str(i)).collect()))]);
    assert!(announces_opus(&list(&["hvc1", "Opus"])));
    assert!(announces_opus(&list(&["*"])));
    assert!(!announces_opus(&list(&["hvc1", "av01"])));
    assert!(!announces_opus(&Value::object(&[("fourCcList", Value::str("Opus"))])));
    let map = Value::object(&[("audioFourCcInfoMap", Value::object(&[("Opus", Value::Number(1.0))]))]);
    assert!(announces_opus(&map));
    assert!(!announces_opus(&Value::Null));
}

#[test]
fn publish_flow() {
    let mut c = Client::new();
    connect(&mut c, "live?token=abc");
    let Some(Event::Connect(info)) = c.s.poll_event() else { panic!("connect event") };
    assert_eq!((info.app.as_str(), info.args.as_str(), info.flash_ver.as_str()), ("live", "token=abc", "FMLE/3.0"));
    c.s.accept_connect();
    let r = c.replies();
    let types: Vec<u8> = r.iter().map(|(t, _)| *t).collect();
    assert_eq!(types, vec![msg::WINDOW_ACK_SIZE, msg::SET_PEER_BANDWIDTH, msg::SET_CHUNK_SIZE, msg::COMMAND_AMF0]);
    assert_eq!(codes(&r), vec!["_result NetConnection.Connect.Success"]);

    c.command(0, &[Value::str("releaseStream"), Value::Number(2.0), Value::Null, Value::str("key")]).unwrap();
    c.command(0, &[Value::str("FCPublish"), Value::Number(3.0), Value::Null, Value::str("key")]).unwrap();
    c.command(0, &[Value::str("createStream"), Value::Number(4.0), Value::Null]).unwrap();
    let r = c.replies();
    assert_eq!(r.last().unwrap().1, vec![Value::str("_result"), Value::Number(4.0), Value::Null, Value::Number(1.0)]);

    c.command(1, &[Value::str("publish"), Value::Number(5.0), Value::Null, Value::str("key?x=1"), Value::str("live")]).unwrap();
    assert_eq!(
        c.s.poll_event(),
        Some(Event::Publish { msid: 1, name: "key".into(), args: "x=1".into(), kind: "live".into() })
    );
    c.s.accept_publish(1, "key");
    assert_eq!(codes(&c.replies()), vec!["onStatus NetStream.Publish.Start"]);

    let meta = amf::encode(&[Value::str("@setDataFrame"), Value::str("onMetaData"), Value::object(&[("width", Value::Number(640.0))])]);
    c.send(msg::DATA_AMF0, 1, &meta).unwrap();
    let Some(Event::Media { kind: MediaKind::Data, payload, .. }) = c.s.poll_event() else { panic!("metadata") };
    assert_eq!(amf::Reader::new(&payload).read().unwrap(), Value::str("onMetaData"));
    c.send(msg::VIDEO, 1, &[0x17, 0, 0, 0, 0]).unwrap();
    assert!(matches!(c.s.poll_event(), Some(Event::Media { kind: MediaKind::Video, msid: 1, .. })));

    c.command(0, &[Value::str("deleteStream"), Value::Number(6.0), Value::Null, Value::Number(1.0)]).unwrap();
    assert_eq!(c.s.poll_event(), Some(Event::CloseStream { msid: 1 }));
}

#[test]
fn play_flow_and_pings() {
    let mut c = Client::new();
    connect(&mut c, "live");
    c.s.poll_event();
    c.s.accept_connect();
    c.command(0, &[Value::str("createStream"), Value::Number(2.0), Value::Null]).unwrap();
    c.command(1, &[Value::str("play"), Value::Number(0.0), Value::Null, Value::str("key"), Value::Number(-2.0)]).unwrap();
    assert!(matches!(c.s.poll_event(), Some(Event::Play { msid: 1, ref name, .. }) if name == "key"));
    c.s.accept_play(1, "key");
    let r = c.replies();
    assert_eq!(
        codes(&r),
        vec!["_result NetConnection.Connect.Success", "_result", "onStatus NetStream.Play.Reset", "onStatus NetStream.Play.Start", "|RtmpSampleAccess"]
    );
    // A client's PingRequest gets a PingResponse with the same value.
    c.send(msg::USER_CONTROL, 0, &[0, 6, 0, 0, 0, 42]).unwrap();
    let mut out = Reader::new(1 << 20);
    out.set_chunk_size(4096);
    out.push(&c.s.take_output().unwrap());
    let m = out.read_message().unwrap().unwrap();
    assert_eq!((m.type_id, &m.payload[..]), (msg::USER_CONTROL, &[0, 7, 0, 0, 0, 42][..]));
}

#[test]
fn protocol_violations_are_errors() {
    let mut c = Client::new();
    assert!(c.command(0, &[Value::str("publish"), Value::Number(1.0)]).is_err(), "publish before connect");
    let mut c = Client::new();
    connect(&mut c, "live");
    assert!(c.command(0, &[Value::str("connect"), Value::Number(1.0)]).is_err(), "second connect");
    let mut c = Client::new();
    connect(&mut c, "live");
    assert!(c.command(7, &[Value::str("publish"), Value::Number(0.0), Value::Null, Value::str("k")]).is_err(), "unknown stream");
    let mut c = Client::new();
    assert_eq!(c.send(msg::SET_CHUNK_SIZE, 0, &0u32.to_be_bytes()), Err(Error::BadChunkSize(0)));
    let mut c = Client::new();
    assert_eq!(c.send(msg::SET_CHUNK_SIZE, 0, &0x8000_0000u32.to_be_bytes()), Err(Error::BadChunkSize(0x8000_0000)));
    let mut c = Client::new();
    assert!(c.send(msg::COMMAND_AMF0, 0, &[0x42]).is_err(), "garbage AMF");
    let mut s = Session::new(Config::default());
    assert_eq!(s.feed(b"GET / HTTP/1.1\r\n", 0, 1), Err(Error::BadVersion(b'G')));
}

#[test]
fn random_input_after_the_handshake_never_panics() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for round in 0..500 {
        let mut c = Client::new();
        if round % 2 == 0 {
            connect(&mut c, "live");
        }
        let mut data = vec![0u8; 1 + round % 700];
        for b in data.iter_mut() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            *b = seed as u8;
        }
        // Mostly valid chunk headers with random bodies, then pure noise.
        let _ = c.send((seed % 23) as u8, (seed >> 8) as u32 % 3, &data);
        let _ = c.s.feed(&data, 0, 1);
        while c.s.poll_event().is_some() {}
        let _ = c.s.take_output();
    }
}

#[test]
fn max_streams_is_enforced() {
    let mut c = Client::new();
    c.s.cfg.max_streams = 2;
    connect(&mut c, "live");
    for i in 0..3 {
        c.command(0, &[Value::str("createStream"), Value::Number(2.0 + i as f64), Value::Null]).unwrap();
    }
    let r = c.replies();
    assert_eq!(r.last().unwrap().1[0], Value::str("_error"));
}

#[test]
fn aggregate_messages_are_split() {
    let mut c = Client::new();
    connect(&mut c, "live");
    c.command(0, &[Value::str("createStream"), Value::Number(2.0), Value::Null]).unwrap();
    c.s.poll_event();
    // two tags: audio at 1000, video at 1040 (relative to the aggregate's timestamp 0)
    let mut agg = vec![];
    for (t, ts, body) in [(8u8, 1000u32, &b"aa"[..]), (9, 1040, &b"vvv"[..])] {
        agg.push(t);
        agg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        agg.extend_from_slice(&ts.to_be_bytes()[1..]);
        agg.push((ts >> 24) as u8);
        agg.extend_from_slice(&[0, 0, 0]);
        agg.extend_from_slice(body);
        agg.extend_from_slice(&(11 + body.len() as u32).to_be_bytes());
    }
    c.send(msg::AGGREGATE, 1, &agg).unwrap();
    let ev: Vec<(MediaKind, u32, usize)> = std::iter::from_fn(|| c.s.poll_event())
        .filter_map(|e| match e {
            Event::Media { kind, timestamp, payload, .. } => Some((kind, timestamp, payload.len())),
            _ => None,
        })
        .collect();
    assert_eq!(ev, vec![(MediaKind::Audio, 0, 2), (MediaKind::Video, 40, 3)]);
}
