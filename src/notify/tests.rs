use super::*;

/// `raw_body` of each call in nginx-rtmp-module's capture.
fn reference(call: &str) -> String {
    let json = include_str!("testdata/notify-nginx-rtmp.json");
    let at = json.find(&format!("\"{call}\": {{")).unwrap_or_else(|| panic!("{call} in the capture"));
    let body = &json[at..];
    let start = body.find("\"raw_body\": \"").unwrap() + "\"raw_body\": \"".len();
    body[start..start + body[start..].find('"').unwrap()].to_owned()
}

fn ffmpeg(app: &str, port: u16) -> (String, String) {
    ("FMLE/3.0 (compatible; Lavf59.27".into(), format!("rtmp://127.0.0.1:{port}/{app}"))
}

#[test]
fn forms_match_nginx_rtmp_module() {
    let (flashver, tcurl) = ffmpeg("auth", 29350);
    let publisher = Client { app: "auth", flashver: &flashver, tcurl: &tcurl, addr: "127.0.0.1", clientid: 8, ..Client::default() };
    let cases = [
        ("publish", Client { clientid: 5, ..publisher.clone() }, Call::Publish { name: "bad", kind: "live", args: "" }),
        ("update_publish", publisher.clone(), Call::Update { publishing: true, time: 2, timestamp: 1950, name: "good", args: "" }),
        ("publish_done", publisher.clone(), Call::Done { call: "publish_done", name: "good", args: "" }),
        (
            "record_done",
            publisher.clone(),
            Call::RecordDone { recorder: "", name: "good", path: "PREFIX/rec-auth/good.flv", args: "" },
        ),
    ];
    for (name, client, call) in cases {
        assert_eq!(form(&client, &call), reference(name), "{name}");
    }
    let tcurl = "rtmp://127.0.0.1:29350/auth";
    let player = Client { app: "auth", flashver: "LNX 10,0,32,18", tcurl, addr: "127.0.0.1", clientid: 12, ..Client::default() };
    // rtmpdump asks for live with start -1000 and no duration.
    let play = Call::Play { name: "good", start: -1000.0, duration: 0.0, reset: false, args: "" };
    assert_eq!(form(&player, &play), reference("play"));
    assert_eq!(form(&player, &Call::Done { call: "play_done", name: "good", args: "" }), reference("play_done"));
    assert_eq!(form(&player, &Call::Done { call: "done", name: "good", args: "" }), reference("done"));
    let (flashver, tcurl) = ffmpeg("live", 29350);
    let client = Client { app: "live", flashver: &flashver, tcurl: &tcurl, addr: "127.0.0.1", ..Client::default() };
    assert_eq!(form(&client, &Call::Connect { epoch: 1324467 }), reference("connect"));
}

#[test]
fn client_arguments_follow_the_fields() {
    let c = Client { app: "live", addr: "10.0.0.1", clientid: 3, args: "x=1", ..Client::default() };
    let f = form(&c, &Call::Publish { name: "cam 1", kind: "live", args: "token=a%20b&u=me" });
    assert!(f.ends_with("&call=publish&name=cam%201&type=live&token=a%20b&u=me"), "{f}");
    // Raw spaces or line breaks in arguments cannot break the request line of a GET.
    let f = form(&c, &Call::Publish { name: "k", kind: "live", args: "t=a b\r\nX: y" });
    assert!(f.ends_with("&t=a%20b%0D%0AX:%20y"), "{f}");
    assert_eq!(form(&c, &Call::Connect { epoch: 7 }), "app=live&flashver=&swfurl=&tcurl=&pageurl=&addr=10.0.0.1&epoch=7&call=connect&x=1");
    assert_eq!(
        form(&c, &Call::Disconnect),
        "app=live&flashver=&swfurl=&tcurl=&pageurl=&addr=10.0.0.1&clientid=3&call=disconnect&app=live&x=1"
    );
}

#[test]
fn escaping_is_nginx_args_escaping() {
    let mut s = String::new();
    escape_arg(&mut s, "a b#c%d&e+f;g?h=i/j:k,l(m)~é\u{1}");
    assert_eq!(s, "a%20b%23c%25d%26e%2Bf%3Bg%3Fh=i/j:k,l(m)~%C3%A9%01");
}

#[test]
fn urls() {
    let u = Url::parse("http://127.0.0.1:8080/auth/on_publish?x=1").unwrap();
    assert_eq!((u.host.as_str(), u.port, u.path.as_str()), ("127.0.0.1", 8080, "/auth/on_publish?x=1"));
    assert_eq!(u.addr, Some("127.0.0.1:8080".parse::<std::net::SocketAddr>().unwrap()));
    let mut u = Url::parse("http://localhost:81/x").unwrap();
    assert_eq!(u.addr, None, "a name is not resolved while parsing");
    u.resolve_now().unwrap();
    assert_eq!(u.addr.unwrap().port(), 81);
    assert!(Url::parse("http://no-such-host.invalid/").unwrap().resolve_now().is_err());
    let u = Url::parse("127.0.0.1/cb").unwrap();
    assert_eq!((u.port, u.path.as_str()), (80, "/cb"));
    let u = Url::parse("HTTP://[::1]:81").unwrap();
    assert_eq!((u.host.as_str(), u.port, u.path.as_str()), ("::1", 81, "/"));
    let u = Url::parse("https://auth.example.com/on_publish").unwrap();
    assert!(u.tls && u.port == 443);
    assert!(String::from_utf8(crate::notify::request(Method::Get, &u, "a=1")).unwrap().contains("\r\nHost: auth.example.com\r\n"));
    for bad in ["ftp://127.0.0.1/x", "http://127.0.0.1:0/", "http://127.0.0.1:99999/", "http:///x", "http://a b/", "http://[::1/"] {
        assert!(Url::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn requests() {
    let u = Url::parse("http://127.0.0.1:8080/on_publish").unwrap();
    let r = String::from_utf8(request(Method::Post, &u, "a=1&b=2")).unwrap();
    assert_eq!(
        r,
        "POST /on_publish HTTP/1.0\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Connection: Close\r\nContent-Length: 7\r\n\r\na=1&b=2"
    );
    let u = Url::parse("127.0.0.1/cb?k=v").unwrap();
    let r = String::from_utf8(request(Method::Get, &u, "a=1")).unwrap();
    assert!(r.starts_with("GET /cb?k=v&a=1 HTTP/1.0\r\nHost: 127.0.0.1\r\n"), "{r}");
    assert!(r.ends_with("Content-Length: 0\r\n\r\n"), "{r}");
}

#[test]
fn replies() {
    let ok = |status, location: Option<&str>| Some(Ok(Reply { status, location: location.map(str::to_owned) }));
    assert_eq!(parse_reply(b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\nbody", false), ok(200, None));
    assert_eq!(parse_reply(b"HTTP/1.1 200 OK\r\nServer: x\r\n", false), None, "headers not complete");
    assert!(matches!(parse_reply(b"HTTP/1.1 200 OK\r\nServer: x\r\n", true), Some(Err(_))), "the server closed mid-header: denied");
    assert!(matches!(parse_reply(b"HTTP/1.1 200 OK\r\nContent-Le", true), Some(Err(_))));
    assert_eq!(parse_reply(b"HTTP/1.1 302 Found\nlocation:  other \n\n", false), ok(302, Some("other")));
    assert_eq!(parse_reply(b"HTTP/1.1 404 Not Found\r\nX-Location: a\r\n\r\n", false), ok(404, None));
    assert_eq!(parse_reply(b"HTT", false), None);
    for (bad, eof) in [(&b"garbage\r\n\r\n"[..], false), (b"", true), (b"HTTP/1.0", true), (b"HTTP/1.0 2000 x\r\n\r\n", false), (b"HTTP/1.0 abc\r\n\r\n", false)] {
        assert!(matches!(parse_reply(bad, eof), Some(Err(_))), "{:?}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn verdicts() {
    let r = |status, location: Option<&str>| Ok(Reply { status, location: location.map(str::to_owned) });
    assert_eq!(verdict(&r(204, None)), Verdict::Allow);
    assert_eq!(verdict(&r(302, Some("renamed"))), Verdict::Rename("renamed".into()));
    assert_eq!(verdict(&r(301, Some("RTMP://origin/app/s"))), Verdict::Relay("RTMP://origin/app/s".into()));
    assert_eq!(verdict(&r(302, None)), Verdict::Allow);
    assert_eq!(verdict(&r(403, None)), Verdict::Deny("HTTP 403".into()));
    assert_eq!(verdict(&Err("connection refused".into())), Verdict::Deny("connection refused".into()));
    assert!(!update_drops(&r(200, None), true));
    assert!(update_drops(&r(500, None), false) && update_drops(&r(403, None), true));
    assert!(!update_drops(&Err("timed out".into()), false) && update_drops(&Err("timed out".into()), true));
    assert!(!update_drops(&r(302, None), false) && update_drops(&r(302, None), true));
}

#[test]
fn random_replies_never_panic() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..2000 {
        let mut buf = b"HTTP/1.1 ".to_vec();
        for _ in 0..round % 97 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let alphabet = b"0123 \r\n:Lation\xff";
            buf.push(alphabet[(seed % alphabet.len() as u64) as usize]);
        }
        let _ = parse_reply(&buf, round % 2 == 0);
        let _ = parse_reply(&buf[9..], true);
    }
}
