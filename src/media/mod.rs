//! Media as every part of the server sees it: a published audio, video or data message
//! becomes one [`Frame`] where it enters (an RTMP publisher, a relay, a WHIP session), its
//! FLV tag body parsed once (`tag`); RTMP players, HLS, recordings and `/stat` read the
//! frame's fields and never parse the tag again. Codec configuration records (AVC, HEVC,
//! AAC) are read by `config`. Pure functions over bytes; every length is checked.

pub mod config;
pub mod sps;
pub mod tag;

use bytes::Bytes;

/// Media kinds carried by RTMP audio, video and data messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaKind {
    Audio,
    Video,
    /// Stream metadata (`onMetaData`) and other data messages.
    Data,
}

/// What a frame's codec is, as far as the server cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    /// Data messages, and tags too short to say.
    None,
    /// H.264 (FLV codec 7, or Enhanced RTMP `avc1`).
    Avc,
    /// H.265 (FLV codec 12, or `hvc1`).
    Hevc,
    Av1,
    Vp9,
    /// Another legacy FLV video codec, by its id (Sorenson H.263, VP6...).
    FlvVideo(u8),
    /// AAC (sound format 10, or `mp4a`).
    Aac,
    /// MP3 (sound formats 2 and 14, or `.mp3`).
    Mp3,
    Opus,
    /// Another legacy sound format (Speex, Nellymoser, PCM...).
    FlvAudio(u8),
    /// Another Enhanced RTMP codec, by its FourCC.
    FourCc([u8; 4]),
}

/// What part of a stream a frame is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// A codec configuration (sequence header, Enhanced RTMP SequenceStart): what a
    /// decoder needs before any frame.
    Header,
    /// Coded audio or video (or a data message).
    Coded,
    /// Anything else: an end of sequence, Enhanced RTMP metadata, a truncated tag.
    Other,
}

/// One published audio, video or data message, parsed once.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    pub kind: MediaKind,
    /// The decode timestamp, in ms (RTMP's clock).
    pub timestamp: u32,
    /// The FLV tag body as published: what RTMP players and recordings get.
    pub payload: Bytes,
    pub codec: Codec,
    pub part: Part,
    /// A coded video frame decoding can start from.
    pub keyframe: bool,
    /// An Enhanced RTMP (FourCC) tag: a stream can carry its audio twice, as AAC for
    /// legacy players and as Enhanced RTMP Opus for those that asked.
    pub ex: bool,
    /// The composition time offset of a video frame, in ms.
    pub cts: i32,
    /// Where the coded data (or the configuration record) starts in `payload`.
    pub data_at: usize,
}

impl Frame {
    /// The coded data (NAL units, a raw AAC frame...) or, for a header, the
    /// configuration record.
    pub fn data(&self) -> &[u8] {
        &self.payload[self.data_at.min(self.payload.len())..]
    }

    /// Whether frames of this codec can only be decoded after its header: a file or
    /// player must be given the header first.
    pub fn needs_header(&self) -> bool {
        match self.kind {
            MediaKind::Video => matches!(self.codec, Codec::Avc | Codec::Hevc) || self.ex,
            MediaKind::Audio => self.codec == Codec::Aac || self.ex,
            MediaKind::Data => false,
        }
    }

    /// Whether this is a codec configuration.
    pub fn is_header(&self) -> bool {
        self.part == Part::Header
    }
}
