//! Codec details of a published stream for `/stat`, as nginx-rtmp-module shows them: the
//! codec names, H.264 profile/compatibility/level from the `avcC` record, AAC profile,
//! channels and sample rate from the AudioSpecificConfig, and the picture size and frame
//! rate from the publisher's metadata.

use crate::media::config;
use crate::media::{Codec as MediaCodec, Frame, MediaKind};
use crate::rtmp::amf::{self, Value};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Codec {
    pub width: u64,
    pub height: u64,
    pub frame_rate: u64,
    pub video_codec: String,
    pub video_profile: String,
    pub compat: u64,
    /// "3.1"
    pub level: String,
    pub audio_codec: String,
    pub audio_profile: String,
    pub channels: u64,
    pub sample_rate: u64,
    /// RFC 6381 codec names for HLS (`avc1.64001f`, `mp4a.40.2`), when known.
    pub rfc6381_video: String,
    pub rfc6381_audio: String,
}

impl Codec {
    /// Takes what a frame says: the codec's name (from any frame while none is known, then
    /// from codec headers: a codec change), and, from a header, the profile and level
    /// (video) or the profile, channels and sample rate (AAC). Legacy sound formats say
    /// their rate and channels in every tag.
    pub fn frame(&mut self, f: &Frame) {
        match f.kind {
            MediaKind::Video => {
                if f.is_header() || self.video_codec.is_empty() {
                    self.video_codec = f.codec_name().to_owned();
                }
                if f.is_header() {
                    let hevc = match f.codec {
                        MediaCodec::Avc => false,
                        MediaCodec::Hevc => true,
                        _ => return,
                    };
                    let rec = f.data();
                    self.rfc6381_video = if !hevc && rec.len() >= 4 { format!("avc1.{:02x}{:02x}{:02x}", rec[1], rec[2], rec[3]) } else { String::new() };
                    if let Some((profile, compat, level)) = config::video_profile(hevc, f.data()) {
                        self.video_profile = profile.to_owned();
                        self.compat = u64::from(compat);
                        self.level = level;
                    }
                }
            }
            MediaKind::Audio => {
                if !(f.is_header() || self.audio_codec.is_empty()) {
                    return;
                }
                self.audio_codec = f.codec_name().to_owned();
                if f.codec == MediaCodec::Mp3 {
                    self.rfc6381_audio = "mp4a.40.34".into();
                }
                if let Some((rate, channels)) = f.flv_sound() {
                    self.sample_rate = u64::from(rate);
                    self.channels = u64::from(channels);
                } else if f.is_header() && f.codec == MediaCodec::Aac && !f.ex {
                    if let Some(asc) = config::aac(f.data()) {
                        self.rfc6381_audio = format!("mp4a.40.{}", asc.object_type);
                        self.audio_profile = asc.profile_name().to_owned();
                        self.channels = u64::from(asc.channels);
                        self.sample_rate = u64::from(asc.sample_rate());
                    }
                }
            }
            MediaKind::Data => self.metadata(&f.payload),
        }
    }

    /// Takes the picture size and frame rate from the publisher's `onMetaData`.
    pub fn metadata(&mut self, payload: &[u8]) {
        let Ok(values) = amf::Reader::new(payload).read_all() else { return };
        let Some(obj) = values.iter().find(|v| matches!(v, Value::Object(_) | Value::EcmaArray(_))) else { return };
        let num = |k: &str| obj.get(k).and_then(Value::as_f64).filter(|n| n.is_finite() && *n >= 0.0 && *n < 1e9);
        if let Some(w) = num("width") {
            self.width = w as u64;
        }
        if let Some(h) = num("height") {
            self.height = h as u64;
        }
        if let Some(f) = num("framerate").or_else(|| num("frame_rate")) {
            self.frame_rate = f.round() as u64;
        }
    }
}
