//! Callback replies read as they come in arbitrary pieces, and forms built from arbitrary
//! client strings: never a panic; a reply is read the same whatever the pieces; a GET
//! request line never carries a space, CR or LF from the client.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ngx_rtmp_rs::notify::{form, parse_reply, request, verdict, Call, Client, Method, Url};

fuzz_target!(|data: &[u8]| {
    let whole = parse_reply(data, true);
    let mut got = None;
    for end in 1..=data.len() {
        if let Some(r) = parse_reply(&data[..end], false) {
            got = Some(r);
            break;
        }
    }
    if let Some(Ok(reply)) = &got {
        let _ = verdict(&Ok(reply.clone()));
    }
    if let (Some(Ok(a)), Some(Ok(b))) = (&got, &whole) {
        assert_eq!(a.status, b.status, "the status does not depend on how the reply came in");
    }
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\u{1}');
    let (name, args, app) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let client = Client { app, flashver: name, args, addr: "127.0.0.1", ..Client::default() };
    let f = form(&client, &Call::Publish { name, kind: "live", args });
    let url = Url::parse("http://127.0.0.1:8080/cb").expect("a literal URL");
    let req = request(Method::Get, &url, &f);
    let line_end = req.windows(2).position(|w| w == b"\r\n").expect("a request line");
    let line = &req[..line_end];
    assert_eq!(line.iter().filter(|&&b| b == b' ').count(), 2, "GET line {:?}", String::from_utf8_lossy(line));
    assert!(!line.contains(&b'\n') && !line.contains(&b'\r'));
});
