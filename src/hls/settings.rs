//! An application's HLS settings, as the segmenter takes them.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Naming {
    Sequential,
    /// The stream timestamp (90 kHz) of the segment's start.
    Timestamp,
    /// Wall clock, ms.
    System,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slicing {
    Plain,
    /// Cut where the timestamp crosses a multiple of `hls_fragment`.
    Aligned,
}

/// `hls_format`: the segments' container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// MPEG-TS (`.ts`), as nginx-rtmp-module writes.
    MpegTs,
    /// CMAF fragmented MP4: an init segment (`EXT-X-MAP`) and `.m4s` segments.
    Fmp4,
}

/// `hls_variant SUFFIX [PARAM...]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variant {
    pub suffix: String,
    pub params: Vec<String>,
}

/// An application's HLS settings, resolved with nginx-rtmp-module's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub path: String,
    pub format: Format,
    /// Low-latency HLS (`hls_partial_duration`, fMP4 only): parts of this many ms; 0: none.
    pub partial: u64,
    /// Times in ms.
    pub fragment: u64,
    pub max_fragment: u64,
    pub playlist_length: u64,
    pub muxdelay: u64,
    pub sync: u64,
    pub continuous: bool,
    pub nested: bool,
    pub naming: Naming,
    pub granularity: u64,
    pub slicing: Slicing,
    /// `hls_type event`: segments are never dropped from the playlist, which ends with
    /// `#EXT-X-ENDLIST` when the publisher leaves.
    pub event: bool,
    pub max_audio_delay: u64,
    pub audio_buffer_size: usize,
    pub cleanup: bool,
    pub variants: Vec<Variant>,
    pub base_url: String,
    pub keys: bool,
    pub key_path: String,
    pub key_url: String,
    pub fragments_per_key: u64,
    /// A transcoding ladder's stream: its first segment's media sequence number is its
    /// slot on the fragment grid (with `Slicing::Aligned`), so that every rendition of the
    /// ladder numbers the same moments alike.
    pub numbered_by_time: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            path: String::new(),
            format: Format::MpegTs,
            partial: 0,
            fragment: 5000,
            max_fragment: 50_000,
            playlist_length: 30_000,
            muxdelay: 700,
            sync: 2,
            continuous: true,
            nested: false,
            naming: Naming::Sequential,
            granularity: 0,
            slicing: Slicing::Plain,
            event: false,
            max_audio_delay: 300,
            audio_buffer_size: 1 << 20,
            cleanup: true,
            variants: Vec::new(),
            base_url: String::new(),
            keys: false,
            key_path: String::new(),
            key_url: String::new(),
            fragments_per_key: 0,
            numbered_by_time: false,
        }
    }
}
