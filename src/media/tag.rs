//! The one parser of FLV audio and video tag bodies, legacy and Enhanced RTMP (the
//! `IsExHeader` bit and a FourCC): codec, header or coded frame, keyframe, composition
//! time and where the coded data starts. Every consumer reads the [`Frame`] this makes.

use bytes::Bytes;

use super::{Codec, Frame, MediaKind, Part};

/// A signed 24-bit big-endian number.
fn si24(b: &[u8]) -> i32 {
    let v = (i32::from(b[0]) << 16) | (i32::from(b[1]) << 8) | i32::from(b[2]);
    (v << 8) >> 8
}

fn video_fourcc(f: &[u8]) -> Codec {
    match f {
        b"avc1" => Codec::Avc,
        b"hvc1" => Codec::Hevc,
        b"av01" => Codec::Av1,
        b"vp09" => Codec::Vp9,
        _ => Codec::FourCc(f.try_into().expect("4 bytes")),
    }
}

fn audio_fourcc(f: &[u8]) -> Codec {
    match f {
        b"Opus" => Codec::Opus,
        b"mp4a" => Codec::Aac,
        b".mp3" => Codec::Mp3,
        _ => Codec::FourCc(f.try_into().expect("4 bytes")),
    }
}

impl Frame {
    /// A message from a publisher: its tag body parsed. Never fails: what cannot be
    /// parsed is `Part::Other` (players still get it as it came).
    pub fn parse(kind: MediaKind, timestamp: u32, payload: Bytes) -> Frame {
        let mut f = Frame {
            kind,
            timestamp,
            codec: Codec::None,
            part: Part::Coded,
            keyframe: false,
            ex: false,
            cts: 0,
            data_at: 0,
            payload,
        };
        match kind {
            MediaKind::Video => f.video(),
            MediaKind::Audio => f.audio(),
            MediaKind::Data => {}
        }
        f
    }

    fn video(&mut self) {
        let body = &self.payload[..];
        let Some(&b0) = body.first() else {
            self.part = Part::Other;
            return;
        };
        let key_type = (b0 >> 4) & 0x07 == 1;
        if b0 & 0x80 != 0 {
            // Enhanced RTMP: [IsExHeader | FrameType | PacketType][FourCC][...]. Packet
            // types: 0 SequenceStart, 1 CodedFrames (AVC/HEVC: with a composition time),
            // 2 SequenceEnd, 3 CodedFramesX, 4 Metadata, 5 MPEG2TSSequenceStart.
            self.ex = true;
            let Some(fourcc) = body.get(1..5) else {
                self.part = Part::Other;
                return;
            };
            self.codec = video_fourcc(fourcc);
            self.data_at = 5;
            let with_cts = matches!(self.codec, Codec::Avc | Codec::Hevc);
            match b0 & 0x0f {
                0 | 5 => self.part = Part::Header,
                1 if with_cts => match body.get(5..8) {
                    Some(c) => {
                        self.cts = si24(c);
                        self.data_at = 8;
                    }
                    None => self.part = Part::Other,
                },
                1 | 3 => {}
                _ => self.part = Part::Other,
            }
        } else {
            let id = b0 & 0x0f;
            self.codec = match id {
                7 => Codec::Avc,
                12 => Codec::Hevc,
                _ => Codec::FlvVideo(id),
            };
            if matches!(id, 7 | 12) {
                // [AVCPacketType][CompositionTime: SI24][data]: 0 is the sequence header,
                // 1 coded frames, 2 the end of the sequence.
                self.data_at = 5;
                match (body.get(1), body.get(2..5)) {
                    (Some(0), Some(_)) => self.part = Part::Header,
                    (Some(1), Some(c)) => self.cts = si24(c),
                    _ => self.part = Part::Other,
                }
            } else {
                self.data_at = 1;
            }
        }
        self.keyframe = key_type && self.part == Part::Coded;
    }

    fn audio(&mut self) {
        let body = &self.payload[..];
        let Some(&b0) = body.first() else {
            self.part = Part::Other;
            return;
        };
        match b0 >> 4 {
            9 => {
                // Enhanced RTMP audio: [SoundFormat 9 | AudioPacketType][FourCC][...]:
                // 0 SequenceStart, 1 CodedFrames.
                self.ex = true;
                let Some(fourcc) = body.get(1..5) else {
                    self.part = Part::Other;
                    return;
                };
                self.codec = audio_fourcc(fourcc);
                self.data_at = 5;
                match b0 & 0x0f {
                    0 => self.part = Part::Header,
                    1 => {}
                    _ => self.part = Part::Other,
                }
            }
            10 => {
                // AAC: [AACPacketType][data]: 0 the AudioSpecificConfig, 1 a raw frame.
                self.codec = Codec::Aac;
                self.data_at = 2;
                match body.get(1) {
                    Some(0) => self.part = Part::Header,
                    Some(1) => {}
                    _ => self.part = Part::Other,
                }
            }
            2 | 14 => {
                self.codec = Codec::Mp3;
                self.data_at = 1;
                if body.len() < 2 {
                    self.part = Part::Other;
                }
            }
            f => {
                self.codec = Codec::FlvAudio(f);
                self.data_at = 1;
            }
        }
    }

    /// A legacy sound tag's own sample rate and channels (its first byte); None for AAC
    /// (its configuration says) and Enhanced RTMP audio.
    pub fn flv_sound(&self) -> Option<(u32, u8)> {
        let b0 = *self.payload.first()?;
        if self.kind != MediaKind::Audio || self.ex || b0 >> 4 == 10 {
            return None;
        }
        Some(([5512, 11025, 22050, 44100][usize::from((b0 >> 2) & 3)], if b0 & 1 != 0 { 2 } else { 1 }))
    }

    /// The codec's name as nginx-rtmp-module's `/stat` gives it.
    pub fn codec_name(&self) -> &'static str {
        /// nginx-rtmp-module's names by FLV codec id.
        const VIDEO: [&str; 13] =
            ["", "Jpeg", "Sorenson-H263", "Screen", "On2-VP6", "On2-VP6-Alpha", "ScreenVideo2", "H264", "", "", "", "", "H265"];
        const AUDIO: [&str; 17] = [
            "Uncompressed", "ADPCM", "MP3", "LinearLE", "Nellymoser16", "Nellymoser8", "Nellymoser", "G711A", "G711U", "",
            "AAC", "Speex", "", "", "MP3-8K", "DeviceSpecific", "Uncompressed",
        ];
        let b0 = self.payload.first().copied().unwrap_or(0);
        match (self.kind, self.codec) {
            (MediaKind::Data, _) | (_, Codec::None) => "",
            (MediaKind::Video, Codec::Avc) => "H264",
            (MediaKind::Video, Codec::Hevc) => "H265",
            (MediaKind::Video, Codec::Av1) => "AV1",
            (MediaKind::Video, Codec::Vp9) => "VP9",
            (MediaKind::Video, Codec::FlvVideo(id)) => VIDEO.get(usize::from(id)).copied().unwrap_or(""),
            (MediaKind::Audio, Codec::Opus) => "Opus",
            (MediaKind::Audio, Codec::Aac) => "AAC",
            (MediaKind::Audio, Codec::Mp3) if self.ex => "MP3",
            (MediaKind::Audio, Codec::Mp3 | Codec::FlvAudio(_)) => AUDIO.get(usize::from(b0 >> 4)).copied().unwrap_or(""),
            (MediaKind::Audio, Codec::FourCc(f)) => match &f {
                b"fLaC" => "FLAC",
                b"ac-3" => "AC3",
                b"ec-3" => "EAC3",
                _ => "",
            },
            _ => "",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(b: &[u8]) -> Frame {
        Frame::parse(MediaKind::Video, 0, Bytes::copy_from_slice(b))
    }

    fn audio(b: &[u8]) -> Frame {
        Frame::parse(MediaKind::Audio, 0, Bytes::copy_from_slice(b))
    }

    fn sum(f: &Frame) -> (Codec, Part, bool) {
        (f.codec, f.part, f.keyframe)
    }

    #[test]
    fn legacy_video() {
        let h = video(&[0x17, 0, 0, 0, 0, 1, 2]);
        assert_eq!(sum(&h), (Codec::Avc, Part::Header, false));
        assert_eq!(h.data(), &[1, 2], "the configuration record");
        let f = video(&[0x27, 1, 0xff, 0xff, 0xfe, 9]);
        assert_eq!((sum(&f), f.cts, f.data()), ((Codec::Avc, Part::Coded, false), -2, &[9][..]));
        assert_eq!(sum(&video(&[0x17, 1, 0, 0, 0, 5])), (Codec::Avc, Part::Coded, true));
        // The end of a sequence carries the keyframe type but is no frame to start from.
        assert_eq!(sum(&video(&[0x17, 2, 0, 0, 0])), (Codec::Avc, Part::Other, false));
        assert_eq!(sum(&video(&[0x17, 0])), (Codec::Avc, Part::Other, false), "truncated");
        assert_eq!(sum(&video(&[0x1c, 1, 0, 0, 0, 5])), (Codec::Hevc, Part::Coded, true));
        // Other codecs have no packet type: the frame type says it all.
        assert_eq!(sum(&video(&[0x12, 7])), (Codec::FlvVideo(2), Part::Coded, true));
        assert_eq!(video(&[0x12, 7]).data(), &[7]);
        assert_eq!(sum(&video(&[0x22])), (Codec::FlvVideo(2), Part::Coded, false));
        assert_eq!(sum(&video(&[])), (Codec::None, Part::Other, false));
    }

    #[test]
    fn enhanced_rtmp_video() {
        assert_eq!(sum(&video(b"\x90hvc1")), (Codec::Hevc, Part::Header, false));
        let f = video(b"\x91hvc1\x00\x00\x28\x07");
        assert_eq!((sum(&f), f.cts, f.data(), f.ex), ((Codec::Hevc, Part::Coded, true), 40, &[7][..], true));
        let f = video(b"\x93hvc1\x07");
        assert_eq!((sum(&f), f.cts, f.data()), ((Codec::Hevc, Part::Coded, true), 0, &[7][..]));
        assert_eq!(sum(&video(b"\x93av01\x01")), (Codec::Av1, Part::Coded, true));
        assert_eq!(sum(&video(b"\x91av01\x01")), (Codec::Av1, Part::Coded, true), "no composition time but for AVC/HEVC");
        assert_eq!(sum(&video(b"\xa1vp09\x01")), (Codec::Vp9, Part::Coded, false));
        assert_eq!(sum(&video(b"\x95avc1")), (Codec::Avc, Part::Header, false), "MPEG2TSSequenceStart");
        assert_eq!(sum(&video(b"\x92avc1")), (Codec::Avc, Part::Other, false), "SequenceEnd");
        assert_eq!(sum(&video(b"\x94hvc1")), (Codec::Hevc, Part::Other, false), "Metadata");
        assert_eq!(sum(&video(b"\x91hvc1\x00")), (Codec::Hevc, Part::Other, false), "truncated");
        assert_eq!(sum(&video(b"\x91xyz")), (Codec::None, Part::Other, false));
        assert_eq!(video(b"\x91abcd").codec, Codec::FourCc(*b"abcd"));
    }

    #[test]
    fn audio_tags() {
        let h = audio(&[0xaf, 0, 0x12, 0x10]);
        assert_eq!((h.codec, h.part, h.data()), (Codec::Aac, Part::Header, &[0x12, 0x10][..]));
        let f = audio(&[0xaf, 1, 5]);
        assert_eq!((f.codec, f.part, f.data(), f.ex), (Codec::Aac, Part::Coded, &[5][..], false));
        assert_eq!(audio(&[0xaf]).part, Part::Other);
        let m = audio(&[0x2f, 0xff, 0xfb]);
        assert_eq!((m.codec, m.part, m.data()), (Codec::Mp3, Part::Coded, &[0xff, 0xfb][..]));
        assert_eq!(audio(&[0x2f]).part, Part::Other);
        let o = audio(b"\x90OpusOpusHead");
        assert_eq!((o.codec, o.part, o.ex, o.data()), (Codec::Opus, Part::Header, true, &b"OpusHead"[..]));
        assert_eq!(audio(b"\x91Opus\x01").part, Part::Coded);
        assert_eq!(audio(&[0xb2, 1]).codec, Codec::FlvAudio(11));
        assert!(audio(&[0xaf, 1]).needs_header() && audio(b"\x91Opus").needs_header() && !audio(&[0x2f, 1]).needs_header());
        assert!(video(&[0x27, 1, 0, 0, 0]).needs_header() && !video(&[0x22]).needs_header());
    }

    #[test]
    fn names_and_legacy_sound() {
        assert_eq!(video(&[0x17, 0, 0, 0, 0]).codec_name(), "H264");
        assert_eq!(video(&[0x22]).codec_name(), "Sorenson-H263");
        assert_eq!(video(b"\x91av01").codec_name(), "AV1");
        assert_eq!(audio(&[0xaf, 1]).codec_name(), "AAC");
        assert_eq!(audio(&[0xe2, 1]).codec_name(), "MP3-8K");
        assert_eq!(audio(b"\x91.mp3").codec_name(), "MP3");
        assert_eq!(audio(b"\x91fLaC").codec_name(), "FLAC");
        assert_eq!(audio(&[0xb6, 1]).codec_name(), "Speex");
        assert_eq!(audio(&[0x2f, 1]).flv_sound(), Some((44100, 2)));
        assert_eq!(audio(&[0xb2, 1]).flv_sound(), Some((5512, 1)));
        assert_eq!(audio(&[0xaf, 1]).flv_sound(), None);
    }

    #[test]
    fn random_tags_never_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for n in 0..2000 {
            let mut b = vec![0u8; n % 12];
            for x in b.iter_mut() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                *x = seed as u8;
            }
            for kind in [MediaKind::Audio, MediaKind::Video, MediaKind::Data] {
                let f = Frame::parse(kind, 0, Bytes::from(b.clone()));
                let _ = (f.data(), f.codec_name(), f.flv_sound(), f.needs_header());
                assert!(f.data_at <= 8);
            }
        }
    }
}
