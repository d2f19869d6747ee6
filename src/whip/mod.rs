//! WebRTC ingest (WHIP, RFC 9725): the pure parts. What a request asks for (its path,
//! content type, bearer token), whether an offer is one we can take, the headers of the
//! answers, and the RTP-to-FLV conversions (`h264`, `aac`). The sidecar (`crate::sidecar`)
//! runs WebRTC with them; the nginx glue answers the HTTP requests.

pub mod h264;
pub mod stun;
pub mod whep;
#[cfg(feature = "nginx")]
pub mod aac;
#[cfg(feature = "nginx")]
pub mod opus;

use crate::conf::whip::IceServer;

/// The `flashVer` a WHIP session's publish connection says (in `/stat`, callbacks): the
/// worker knows its publisher can be asked for keyframes.
pub const FLASH_VER: &str = "WHIP ngx-rtmp-rs";
/// The `flashVer` of a WHEP session's play connection (a viewer in `/stat`).
pub const WHEP_FLASH_VER: &str = "WHEP ngx-rtmp-rs";


/// What a WHIP (or WHEP: `word` is `whep`) URL names.
#[derive(Debug, PartialEq, Eq)]
pub enum Path<'a> {
    /// `.../NAME/whip`: the endpoint offers are POSTed to.
    Endpoint { name: &'a str },
    /// `.../NAME/whip/ID`: a session (its `Location`).
    Session { name: &'a str, id: &'a str },
    Other,
}

/// Reads a request path (without its query).
pub fn parse_path<'a>(uri: &'a str, word: &str) -> Path<'a> {
    let uri = uri.strip_suffix('/').unwrap_or(uri);
    let parts: Vec<&str> = uri.rsplit('/').take(3).collect();
    match parts.as_slice() {
        [w, name, ..] if *w == word && !name.is_empty() => Path::Endpoint { name },
        [id, w, name] if *w == word && !name.is_empty() && !id.is_empty() => Path::Session { name, id },
        _ => Path::Other,
    }
}

/// Whether a `Content-Type` is `application/sdp` (any case, parameters allowed).
pub fn is_sdp(content_type: &str) -> bool {
    content_type.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/sdp")
}

/// The token of `Authorization: Bearer TOKEN` (RFC 6750's b64token), if well formed.
pub fn bearer(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    let token = token.trim_start();
    let ok = scheme.eq_ignore_ascii_case("bearer")
        && !token.is_empty()
        && token.len() <= 4096
        && token.trim_end_matches('=').bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
    ok.then_some(token)
}

/// The stream name and arguments a WHIP session publishes as, the way an RTMP client
/// would say `publish NAME?ARGS`: the bearer token becomes `token=...` so the
/// application's `on_publish` sees it.
pub fn publish_name(name: &str, token: Option<&str>) -> String {
    match token {
        None => name.to_owned(),
        Some(t) => {
            let mut s = format!("{name}?token=");
            crate::notify::escape_arg(&mut s, t);
            s
        }
    }
}

/// What an offer says, as far as deciding whether to take it goes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Offer {
    pub audio: bool,
    pub video: bool,
    /// An H.264 payload with packetization-mode=1, and Opus, are offered.
    pub h264: bool,
    pub opus: bool,
    /// `sprop-parameter-sets` of the first H.264 payload that has them.
    pub sprop: Option<String>,
}

/// Checks an SDP offer: text, `v=0` first, media we can receive. The error is the reason
/// given to the client (with a 400).
pub fn check_offer(sdp: &[u8]) -> Result<Offer, String> {
    let text = std::str::from_utf8(sdp).map_err(|_| "the offer is not UTF-8 text".to_owned())?;
    if text.bytes().any(|b| b == 0) {
        return Err("the offer contains a NUL byte".into());
    }
    let mut lines = text.lines().map(str::trim_end);
    if lines.next() != Some("v=0") {
        return Err("the offer does not start with v=0: not an SDP".into());
    }
    let mut offer = Offer::default();
    let mut h264_pts: Vec<String> = Vec::new();
    let mut kind = "";
    for line in text.lines().map(str::trim_end) {
        if let Some(m) = line.strip_prefix("m=") {
            kind = m.split(' ').next().unwrap_or("");
            match kind {
                "audio" => offer.audio = true,
                "video" => offer.video = true,
                _ => {}
            }
        } else if let Some(rtpmap) = line.strip_prefix("a=rtpmap:") {
            let (pt, codec) = rtpmap.split_once(' ').unwrap_or((rtpmap, ""));
            let codec = codec.split('/').next().unwrap_or("");
            if kind == "audio" && codec.eq_ignore_ascii_case("opus") {
                offer.opus = true;
            }
            if kind == "video" && codec.eq_ignore_ascii_case("H264") {
                h264_pts.push(pt.to_owned());
            }
        } else if let Some(fmtp) = line.strip_prefix("a=fmtp:") {
            let (pt, params) = fmtp.split_once(' ').unwrap_or((fmtp, ""));
            if !h264_pts.iter().any(|p| p == pt) {
                continue;
            }
            let params: Vec<(&str, &str)> = params.split(';').filter_map(|p| p.trim().split_once('=')).collect();
            if params.iter().any(|(k, v)| k.eq_ignore_ascii_case("packetization-mode") && *v == "1") {
                offer.h264 = true;
                if offer.sprop.is_none() {
                    offer.sprop = params.iter().find(|(k, _)| k.eq_ignore_ascii_case("sprop-parameter-sets")).map(|(_, v)| v.to_string());
                }
            }
        }
    }
    if !offer.audio && !offer.video {
        return Err("the offer has no audio or video".into());
    }
    if offer.video && !offer.h264 {
        return Err("the offer's video has no H.264 with packetization-mode=1".into());
    }
    if offer.audio && !offer.opus {
        return Err("the offer's audio has no Opus".into());
    }
    Ok(offer)
}

/// `Link` header values for the configured ICE servers (RFC 9725 section 4.6).
pub fn link_headers(servers: &[IceServer]) -> Vec<String> {
    servers
        .iter()
        .map(|s| {
            let mut v = format!("<{}>; rel=\"ice-server\"", s.url);
            if let (Some(u), Some(c)) = (&s.username, &s.credential) {
                v.push_str(&format!("; username=\"{u}\"; credential=\"{c}\"; credential-type=\"password\""));
            }
            v
        })
        .collect()
}

/// The HTTP status for an RTMP refusal of the publish (its status code, or error).
pub fn refusal_status(code: &str) -> u16 {
    match code {
        "NetStream.Publish.BadName" => 409,
        _ => 403,
    }
}

/// Whether `id` looks like one of our session ids (before any lookup).
pub fn is_session_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME_OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 102\r\na=mid:1\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:102 H264/90000\r\n\
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f;sprop-parameter-sets=Z0I=,aM4=\r\n";

    #[test]
    fn paths() {
        assert_eq!(parse_path("/cam1/whip", "whip"), Path::Endpoint { name: "cam1" });
        assert_eq!(parse_path("/x/cam1/whip/", "whip"), Path::Endpoint { name: "cam1" });
        assert_eq!(parse_path("/cam1/whip/abc", "whip"), Path::Session { name: "cam1", id: "abc" });
        assert_eq!(parse_path("/whip", "whip"), Path::Other);
        assert_eq!(parse_path("//whip", "whip"), Path::Other);
        assert_eq!(parse_path("/a/b/c", "whip"), Path::Other);
        assert_eq!(parse_path("", "whip"), Path::Other);
        assert_eq!(parse_path("/cam1/whep/abc", "whep"), Path::Session { name: "cam1", id: "abc" });
        assert_eq!(parse_path("/cam1/whep", "whip"), Path::Other);
    }

    #[test]
    fn headers() {
        assert!(is_sdp("application/sdp"));
        assert!(is_sdp("Application/SDP; charset=utf-8"));
        assert!(!is_sdp("text/plain"));
        assert!(!is_sdp(""));
        assert_eq!(bearer("Bearer abc.DEF-1~+/=="), Some("abc.DEF-1~+/=="));
        assert_eq!(bearer("bearer   tok"), Some("tok"));
        assert_eq!(bearer("Basic dXNlcg=="), None);
        assert_eq!(bearer("Bearer a b"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(publish_name("k", Some("a+b/c=")), "k?token=a%2Bb/c=");
        assert_eq!(publish_name("k", None), "k");
        let l = link_headers(&[
            IceServer { url: "stun:s.example.net".into(), username: None, credential: None },
            IceServer { url: "turn:t.example.net".into(), username: Some("u".into()), credential: Some("p".into()) },
        ]);
        assert_eq!(l[0], "<stun:s.example.net>; rel=\"ice-server\"");
        assert!(l[1].ends_with("username=\"u\"; credential=\"p\"; credential-type=\"password\""));
        assert_eq!(refusal_status("NetStream.Publish.BadName"), 409);
        assert_eq!(refusal_status("NetStream.Publish.Unauthorized"), 403);
        assert!(is_session_id(&"ab".repeat(16)));
        assert!(!is_session_id("ABAB"));
    }

    #[test]
    fn offers() {
        let o = check_offer(CHROME_OFFER.as_bytes()).unwrap();
        assert!(o.audio && o.video && o.h264 && o.opus);
        assert_eq!(o.sprop.as_deref(), Some("Z0I=,aM4="));
        assert!(check_offer(b"hello").unwrap_err().contains("v=0"));
        assert!(check_offer(b"v=0\r\ns=-\r\n").unwrap_err().contains("no audio or video"));
        assert!(check_offer(&[b'v', b'=', b'0', b'\n', 0xff]).is_err());
        let vp8_only = CHROME_OFFER.replace("a=rtpmap:102 H264/90000", "a=rtpmap:102 VP9/90000");
        assert!(check_offer(vp8_only.as_bytes()).unwrap_err().contains("H.264"));
        let mode0 = CHROME_OFFER.replace("packetization-mode=1", "packetization-mode=0");
        assert!(check_offer(mode0.as_bytes()).is_err());
        let audio_only = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n";
        let o = check_offer(audio_only.as_bytes()).unwrap();
        assert!(o.audio && !o.video);
    }
}
