//! Codec details of a published stream for `/stat`, as nginx-rtmp-module shows them: the
//! codec names, H.264 profile/compatibility/level from the `avcC` record, AAC profile,
//! channels and sample rate from the AudioSpecificConfig, and the picture size and frame
//! rate from the publisher's metadata.

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
}

/// nginx-rtmp-module's names by FLV codec id.
const VIDEO_NAMES: [&str; 13] =
    ["", "Jpeg", "Sorenson-H263", "Screen", "On2-VP6", "On2-VP6-Alpha", "ScreenVideo2", "H264", "", "", "", "", "H265"];
const AUDIO_NAMES: [&str; 17] = [
    "Uncompressed", "ADPCM", "MP3", "LinearLE", "Nellymoser16", "Nellymoser8", "Nellymoser", "G711A", "G711U", "",
    "AAC", "Speex", "", "", "MP3-8K", "DeviceSpecific", "Uncompressed",
];

fn avc_profile(p: u8) -> &'static str {
    match p {
        66 => "Baseline",
        77 => "Main",
        88 => "Extended",
        100 => "High",
        110 => "High 10",
        122 => "High 4:2:2",
        144 | 244 => "High 4:4:4",
        _ => "",
    }
}

impl Codec {
    /// Takes what a video tag says (codec; from a sequence header, profile and level).
    pub fn video(&mut self, body: &[u8]) {
        let Some(&b0) = body.first() else { return };
        if b0 & 0x80 != 0 {
            let Some(fourcc) = body.get(1..5) else { return };
            self.video_codec = match fourcc {
                b"avc1" => "H264",
                b"hvc1" => "H265",
                b"av01" => "AV1",
                b"vp09" => "VP9",
                _ => "",
            }
            .to_owned();
            if b0 & 0x0f == 0 {
                self.config(fourcc == b"avc1", fourcc == b"hvc1", &body[5..]);
            }
            return;
        }
        let id = (b0 & 0x0f) as usize;
        self.video_codec = VIDEO_NAMES.get(id).copied().unwrap_or("").to_owned();
        if matches!(id, 7 | 12) && body.get(1) == Some(&0) && body.len() > 5 {
            self.config(id == 7, id == 12, &body[5..]);
        }
    }

    fn config(&mut self, avc: bool, hevc: bool, rec: &[u8]) {
        if avc && rec.len() >= 4 {
            self.video_profile = avc_profile(rec[1]).to_owned();
            self.compat = rec[2] as u64;
            self.level = format!("{:.1}", rec[3] as f64 / 10.0);
        } else if hevc && rec.len() >= 13 {
            self.video_profile = match rec[1] & 0x1f {
                1 => "Main",
                2 => "Main 10",
                3 => "Main Still Picture",
                _ => "",
            }
            .to_owned();
            self.compat = 0;
            self.level = format!("{:.1}", rec[12] as f64 / 30.0);
        }
    }

    /// Takes what an audio tag says (codec; from an AAC sequence header, the details).
    pub fn audio(&mut self, body: &[u8]) {
        let Some(&b0) = body.first() else { return };
        let format = (b0 >> 4) as usize;
        if format == 9 {
            // Enhanced RTMP audio: the FourCC follows.
            self.audio_codec = match body.get(1..5) {
                Some(b"Opus") => "Opus",
                Some(b"fLaC") => "FLAC",
                Some(b"ac-3") => "AC3",
                Some(b"ec-3") => "EAC3",
                Some(b".mp3") => "MP3",
                Some(b"mp4a") => "AAC",
                _ => "",
            }
            .to_owned();
            return;
        }
        self.audio_codec = AUDIO_NAMES.get(format).copied().unwrap_or("").to_owned();
        if format != 10 {
            self.channels = if b0 & 1 != 0 { 2 } else { 1 };
            self.sample_rate = [5512, 11025, 22050, 44100][((b0 >> 2) & 3) as usize];
            return;
        }
        if body.get(1) == Some(&0) && body.len() >= 4 {
            let asc = &body[2..];
            let object = asc[0] >> 3;
            let index = ((asc[0] & 7) << 1 | asc[1] >> 7) as usize;
            let channels = (asc[1] >> 3) & 0x0f;
            const RATES: [u64; 13] = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];
            self.audio_profile = match object {
                1 => "Main",
                2 => "LC",
                3 => "SSR",
                4 => "LTP",
                5 => "HE",
                29 => "HEv2",
                _ => "",
            }
            .to_owned();
            self.channels = channels as u64;
            self.sample_rate = RATES.get(index).copied().unwrap_or(0);
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
