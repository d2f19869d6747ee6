//! RTMP message types, chunk stream ids we send on, and builders for the control and
//! command messages a server sends.

use bytes::{BufMut, Bytes, BytesMut};

use super::amf::{self, Value};
use super::chunk;

pub const SET_CHUNK_SIZE: u8 = 1;
pub const ABORT: u8 = 2;
pub const ACK: u8 = 3;
pub const USER_CONTROL: u8 = 4;
pub const WINDOW_ACK_SIZE: u8 = 5;
pub const SET_PEER_BANDWIDTH: u8 = 6;
pub const AUDIO: u8 = 8;
pub const VIDEO: u8 = 9;
pub const DATA_AMF3: u8 = 15;
pub const SHARED_OBJECT_AMF3: u8 = 16;
pub const COMMAND_AMF3: u8 = 17;
pub const DATA_AMF0: u8 = 18;
pub const SHARED_OBJECT_AMF0: u8 = 19;
pub const COMMAND_AMF0: u8 = 20;
pub const AGGREGATE: u8 = 22;

/// User control events.
pub const UC_STREAM_BEGIN: u16 = 0;
pub const UC_STREAM_EOF: u16 = 1;
pub const UC_STREAM_DRY: u16 = 2;
pub const UC_SET_BUFFER_LENGTH: u16 = 3;
pub const UC_STREAM_IS_RECORDED: u16 = 4;
pub const UC_PING_REQUEST: u16 = 6;
pub const UC_PING_RESPONSE: u16 = 7;

/// The command our server sends a publisher it wants a keyframe from: the WHIP sidecar's
/// client session understands it and asks the browser (RTCP PLI).
pub const KEYFRAME_REQUEST: &str = "ngxRtmpRsKeyFrameRequest";

/// Chunk streams used for what we send (as nginx-rtmp-module does).
pub const CSID_CONTROL: u32 = 2;
pub const CSID_COMMAND: u32 = 3;
pub const CSID_STATUS: u32 = 5;
pub const CSID_AUDIO: u32 = 6;
pub const CSID_VIDEO: u32 = 7;
pub const CSID_DATA: u32 = 5;

/// Control messages always go in 128-byte-safe single chunks; they are tiny.
fn control(out: &mut BytesMut, type_id: u8, body: &[u8], chunk_size: usize) {
    chunk::write(out, CSID_CONTROL, 0, type_id, 0, body, chunk_size);
}

pub fn set_chunk_size(out: &mut BytesMut, size: u32, chunk_size: usize) {
    control(out, SET_CHUNK_SIZE, &size.to_be_bytes(), chunk_size);
}

pub fn ack(out: &mut BytesMut, received: u32, chunk_size: usize) {
    control(out, ACK, &received.to_be_bytes(), chunk_size);
}

pub fn window_ack_size(out: &mut BytesMut, size: u32, chunk_size: usize) {
    control(out, WINDOW_ACK_SIZE, &size.to_be_bytes(), chunk_size);
}

pub fn set_peer_bandwidth(out: &mut BytesMut, size: u32, limit: u8, chunk_size: usize) {
    let mut b = size.to_be_bytes().to_vec();
    b.push(limit);
    control(out, SET_PEER_BANDWIDTH, &b, chunk_size);
}

pub fn user_control(out: &mut BytesMut, event: u16, value: u32, chunk_size: usize) {
    let mut b = BytesMut::with_capacity(6);
    b.put_u16(event);
    b.put_u32(value);
    control(out, USER_CONTROL, &b, chunk_size);
}

/// An AMF0 command or data message.
pub fn amf0(out: &mut BytesMut, csid: u32, type_id: u8, msid: u32, values: &[Value], chunk_size: usize) {
    let body = amf::encode(values);
    chunk::write(out, csid, 0, type_id, msid, &body, chunk_size);
}

/// `onStatus` for a stream.
pub fn on_status(out: &mut BytesMut, msid: u32, level: &str, code: &str, description: &str, chunk_size: usize) {
    amf0(
        out,
        CSID_STATUS,
        COMMAND_AMF0,
        msid,
        &[
            Value::str("onStatus"),
            Value::Number(0.0),
            Value::Null,
            Value::object(&[
                ("level", Value::str(level)),
                ("code", Value::str(code)),
                ("description", Value::str(description)),
            ]),
        ],
        chunk_size,
    );
}

pub use crate::media::MediaKind;

impl MediaKind {
    pub fn type_id(self) -> u8 {
        match self {
            MediaKind::Audio => AUDIO,
            MediaKind::Video => VIDEO,
            MediaKind::Data => DATA_AMF0,
        }
    }

    pub fn csid(self) -> u32 {
        match self {
            MediaKind::Audio => CSID_AUDIO,
            MediaKind::Video => CSID_VIDEO,
            MediaKind::Data => CSID_DATA,
        }
    }
}

/// The payload of an `onMetaData` data message for players.
pub fn metadata_payload(values: &[Value]) -> Bytes {
    amf::encode(values).freeze()
}

/// The metadata fields `meta on` keeps (the ones nginx-rtmp-module sends on).
const KNOWN_META: &[&str] = &[
    "width", "height", "displayWidth", "displayHeight", "duration", "framerate", "fps",
    "videodatarate", "videocodecid", "audiodatarate", "audiocodecid", "profile", "level",
];

/// `onMetaData` reduced to the well-known fields (for `meta on`). `None` if the payload
/// is not metadata.
pub fn known_metadata(payload: &[u8]) -> Option<Bytes> {
    let values = amf::Reader::new(payload).read_all().ok()?;
    let props = match values.get(1)? {
        Value::Object(p) | Value::EcmaArray(p) => p,
        _ => return None,
    };
    let kept: Vec<(String, Value)> = props.iter().filter(|(k, _)| KNOWN_META.contains(&k.as_str())).cloned().collect();
    Some(metadata_payload(&[Value::str("onMetaData"), Value::Object(kept)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_on_keeps_known_fields() {
        let payload = amf::encode(&[
            Value::str("onMetaData"),
            Value::EcmaArray(vec![("width".into(), Value::Number(640.0)), ("encoder".into(), Value::str("Lavf"))]),
        ]);
        let kept = known_metadata(&payload).unwrap();
        let v = amf::Reader::new(&kept).read_all().unwrap();
        assert_eq!(v[1].get("width"), Some(&Value::Number(640.0)));
        assert_eq!(v[1].get("encoder"), None);
        assert_eq!(known_metadata(b"\x05"), None);
    }
}
