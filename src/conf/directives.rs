//! Every directive nginx-rtmp-module knows, with its contexts and argument count (from its
//! command tables, see `t/data/directives-nginx-rtmp.tsv`), and whether this module
//! implements it yet. The nginx glue registers exactly this table, so a config is checked
//! against the same names and contexts nginx-rtmp-module used; a directive that is not
//! implemented yet fails `nginx -t` with a message naming it instead of being ignored.

/// Where a directive may appear. Values are bit flags; the glue maps them to nginx's.
pub type Contexts = u16;
/// Top level of nginx.conf (nginx's main context).
pub const CORE: Contexts = 1 << 0;
/// Inside `rtmp { }`.
pub const MAIN: Contexts = 1 << 1;
/// Inside `rtmp { server { } }`.
pub const SRV: Contexts = 1 << 2;
/// Inside `application NAME { }`.
pub const APP: Contexts = 1 << 3;
/// Inside `recorder NAME { }`.
pub const REC: Contexts = 1 << 4;
/// nginx's `http { }`, `server { }` and `location { }` contexts.
pub const HTTP_MAIN: Contexts = 1 << 5;
pub const HTTP_SRV: Contexts = 1 << 6;
pub const HTTP_LOC: Contexts = 1 << 7;

/// How many arguments a directive takes (as nginx counts them, without the name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Args {
    Take1,
    Take12,
    OneMore,
    TwoMore,
    /// A block with no argument before `{`.
    Block0,
    /// A block with one argument before `{`.
    Block1,
    /// A block with zero or one argument.
    Block01,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Parsed and honoured by this module.
    Core,
    /// Recognised, but the feature (named here) is not implemented yet: `nginx -t` fails.
    NotYet(&'static str),
}

#[derive(Clone, Copy, Debug)]
pub struct Directive {
    pub name: &'static str,
    /// The name NUL-terminated, as nginx compares it.
    pub cname: &'static core::ffi::CStr,
    pub contexts: Contexts,
    pub args: Args,
    pub status: Status,
}

const fn d(cname: &'static core::ffi::CStr, contexts: Contexts, args: Args, status: Status) -> Directive {
    let Ok(name) = core::str::from_utf8(cname.to_bytes()) else { panic!("directive names are ASCII") };
    Directive { name, cname, contexts, args, status }
}

use Args::*;
use Status::*;

/// All directives: nginx-rtmp-module's, in the order of its modules, then our own.
pub const DIRECTIVES: &[Directive] = &[
    d(c"dash", MAIN | SRV | APP, Take1, Core),
    d(c"dash_fragment", MAIN | SRV | APP, Take1, Core),
    d(c"dash_path", MAIN | SRV | APP, Take1, Core),
    d(c"dash_playlist_length", MAIN | SRV | APP, Take1, Core),
    d(c"dash_cleanup", MAIN | SRV | APP, Take1, Core),
    d(c"dash_nested", MAIN | SRV | APP, Take1, Core),
    d(c"hls", MAIN | SRV | APP, Take1, Core),
    d(c"hls_fragment", MAIN | SRV | APP, Take1, Core),
    d(c"hls_max_fragment", MAIN | SRV | APP, Take1, Core),
    d(c"hls_path", MAIN | SRV | APP, Take1, Core),
    d(c"hls_playlist_length", MAIN | SRV | APP, Take1, Core),
    d(c"hls_muxdelay", MAIN | SRV | APP, Take1, Core),
    d(c"hls_sync", MAIN | SRV | APP, Take1, Core),
    d(c"hls_continuous", MAIN | SRV | APP, Take1, Core),
    d(c"hls_nested", MAIN | SRV | APP, Take1, Core),
    d(c"hls_fragment_naming", MAIN | SRV | APP, Take1, Core),
    d(c"hls_fragment_slicing", MAIN | SRV | APP, Take1, Core),
    d(c"hls_type", MAIN | SRV | APP, Take1, Core),
    d(c"hls_max_audio_delay", MAIN | SRV | APP, Take1, Core),
    d(c"hls_audio_buffer_size", MAIN | SRV | APP, Take1, Core),
    d(c"hls_cleanup", MAIN | SRV | APP, Take1, Core),
    d(c"hls_variant", MAIN | SRV | APP, OneMore, Core),
    d(c"hls_base_url", MAIN | SRV | APP, Take1, Core),
    d(c"hls_fragment_naming_granularity", MAIN | SRV | APP, Take1, Core),
    d(c"hls_keys", MAIN | SRV | APP, Take1, Core),
    d(c"hls_key_path", MAIN | SRV | APP, Take1, Core),
    d(c"hls_key_url", MAIN | SRV | APP, Take1, Core),
    d(c"hls_fragments_per_key", MAIN | SRV | APP, Take1, Core),
    d(c"rtmp", CORE, Block0, Core),
    d(c"allow", MAIN | SRV | APP, Take12, Core),
    d(c"deny", MAIN | SRV | APP, Take12, Core),
    d(c"rtmp_auto_push", CORE, Take1, Core),
    d(c"rtmp_auto_push_reconnect", CORE, Take1, Core),
    d(c"rtmp_socket_dir", CORE, Take1, Core),
    d(c"meta", MAIN | SRV | APP, Take1, Core),
    d(c"rtmp_control", HTTP_MAIN | HTTP_SRV | HTTP_LOC, OneMore, Core),
    d(c"server", MAIN, Block0, Core),
    d(c"listen", SRV, OneMore, Core),
    d(c"application", SRV, Block1, Core),
    d(c"so_keepalive", MAIN | SRV, Take1, Core),
    d(c"timeout", MAIN | SRV, Take1, Core),
    d(c"ping", MAIN | SRV, Take1, Core),
    d(c"ping_timeout", MAIN | SRV, Take1, Core),
    d(c"max_streams", MAIN | SRV, Take1, Core),
    d(c"ack_window", MAIN | SRV, Take1, Core),
    d(c"chunk_size", MAIN | SRV, Take1, Core),
    d(c"max_message", MAIN | SRV, Take1, Core),
    d(c"out_queue", MAIN | SRV, Take1, Core),
    d(c"out_cork", MAIN | SRV, Take1, Core),
    d(c"busy", MAIN | SRV, Take1, Core),
    d(c"play_time_fix", MAIN | SRV | APP, Take1, Core),
    d(c"publish_time_fix", MAIN | SRV | APP, Take1, Core),
    d(c"buflen", MAIN | SRV, Take1, Core),
    d(c"exec_block", APP, Block01, NotYet("exec")),
    d(c"exec", MAIN | SRV | APP, OneMore, Core),
    d(c"exec_push", MAIN | SRV | APP, OneMore, Core),
    d(c"exec_pull", MAIN | SRV | APP, OneMore, Core),
    d(c"exec_publish", MAIN | SRV | APP, OneMore, Core),
    d(c"exec_publish_done", MAIN | SRV | APP, OneMore, Core),
    d(c"exec_play", MAIN | SRV | APP, OneMore, Core),
    d(c"exec_play_done", MAIN | SRV | APP, OneMore, Core),
    d(c"exec_record_done", MAIN | SRV | APP | REC, OneMore, Core),
    d(c"exec_static", MAIN | SRV | APP, OneMore, Core),
    d(c"respawn", MAIN | SRV | APP, Take1, Core),
    d(c"respawn_timeout", MAIN | SRV | APP, Take1, Core),
    d(c"exec_kill_signal", MAIN | SRV | APP, Take1, Core),
    d(c"exec_options", MAIN | SRV | APP, Take1, Core),
    d(c"exec_stall_timeout", MAIN | SRV | APP, Take1, Core),
    d(c"transcode", MAIN | SRV | APP, OneMore, Core),
    d(c"transcode_ffmpeg", MAIN | SRV | APP, Take1, Core),
    d(c"max_connections", MAIN | SRV | APP, Take1, Core),
    d(c"live", MAIN | SRV | APP, Take1, Core),
    d(c"stream_buckets", MAIN | SRV | APP, Take1, Core),
    d(c"buffer", MAIN | SRV | APP, Take1, Core),
    d(c"sync", MAIN | SRV | APP, Take1, Core),
    d(c"interleave", MAIN | SRV | APP, Take1, Core),
    d(c"wait_key", MAIN | SRV | APP, Take1, Core),
    d(c"wait_video", MAIN | SRV | APP, Take1, Core),
    d(c"publish_notify", MAIN | SRV | APP, Take1, Core),
    d(c"play_restart", MAIN | SRV | APP, Take1, Core),
    d(c"idle_streams", MAIN | SRV | APP, Take1, Core),
    d(c"drop_idle_publisher", MAIN | SRV | APP, Take1, Core),
    d(c"access_log", MAIN | SRV | APP, Take12, Core),
    d(c"log_format", MAIN | SRV | APP, TwoMore, Core),
    d(c"netcall_timeout", MAIN | SRV, Take1, Core),
    d(c"netcall_buffer", MAIN | SRV, Take1, Core),
    d(c"on_connect", MAIN | SRV, Take1, Core),
    d(c"on_disconnect", MAIN | SRV, Take1, Core),
    d(c"on_publish", MAIN | SRV | APP, Take1, Core),
    d(c"on_play", MAIN | SRV | APP, Take1, Core),
    d(c"on_publish_done", MAIN | SRV | APP, Take1, Core),
    d(c"on_play_done", MAIN | SRV | APP, Take1, Core),
    d(c"on_done", MAIN | SRV | APP, Take1, Core),
    d(c"on_record_done", MAIN | SRV | APP | REC, Take1, Core),
    d(c"on_update", MAIN | SRV | APP, Take1, Core),
    d(c"notify_method", MAIN | SRV | APP, Take1, Core),
    d(c"notify_update_timeout", MAIN | SRV | APP, Take1, Core),
    d(c"notify_update_strict", MAIN | SRV | APP, Take1, Core),
    d(c"notify_relay_redirect", MAIN | SRV | APP, Take1, Core),
    d(c"play", MAIN | SRV | APP, OneMore, Core),
    d(c"play_temp_path", MAIN | SRV | APP, Take1, Core),
    d(c"play_local_path", MAIN | SRV | APP, Take1, Core),
    d(c"record", MAIN | SRV | APP | REC, OneMore, Core),
    d(c"record_path", MAIN | SRV | APP | REC, Take1, Core),
    d(c"record_suffix", MAIN | SRV | APP | REC, Take1, Core),
    d(c"record_unique", MAIN | SRV | APP | REC, Take1, Core),
    d(c"record_append", MAIN | SRV | APP | REC, Take1, Core),
    d(c"record_lock", MAIN | SRV | APP | REC, Take1, Core),
    d(c"record_max_size", MAIN | SRV | APP | REC, Take1, Core),
    d(c"record_max_frames", MAIN | SRV | APP | REC, Take1, Core),
    d(c"record_interval", MAIN | SRV | APP | REC, Take1, Core),
    d(c"record_notify", MAIN | SRV | APP | REC, Take1, Core),
    d(c"recorder", APP, Block1, Core),
    d(c"push", APP, OneMore, Core),
    d(c"pull", APP, OneMore, Core),
    d(c"relay_buffer", MAIN | SRV, Take1, Core),
    d(c"push_reconnect", MAIN | SRV | APP, Take1, Core),
    d(c"pull_reconnect", MAIN | SRV | APP, Take1, Core),
    d(c"session_relay", MAIN | SRV | APP, Take1, Core),
    d(c"relay_ssl_verify", MAIN | SRV | APP, Take1, Core),
    d(c"pull_idle_timeout", MAIN | SRV | APP, Take1, Core),
    d(c"relay_ssl_trusted_certificate", MAIN, Take1, Core),
    d(c"rtmp_stat", HTTP_MAIN | HTTP_SRV | HTTP_LOC, OneMore, Core),
    d(c"rtmp_stat_stylesheet", HTTP_MAIN | HTTP_SRV | HTTP_LOC, Take1, Core),
    // ngx-rtmp-rs's own directives.
    d(c"gop_cache", MAIN | SRV | APP, Take1, Core),
    d(c"hls_format", MAIN | SRV | APP, Take1, Core),
    d(c"hls_partial_duration", MAIN | SRV | APP, Take1, Core),
    d(c"merge_writes", MAIN | SRV | APP, Take1, Core),
    d(c"merge_reads", MAIN | SRV | APP, Take1, Core),
    d(c"resolver", MAIN | SRV, OneMore, Core),
    d(c"drain_timeout", MAIN, Take1, Core),
    d(c"handshake_timeout", MAIN | SRV, Take1, Core),
    d(c"rtmp_stat_format", HTTP_MAIN | HTTP_SRV | HTTP_LOC, Take1, Core),
    d(c"rtmp_hls_viewers", HTTP_MAIN | HTTP_SRV | HTTP_LOC, Take1, Core),
    // Low-latency HLS delivery (blocking reload, delta updates) of a location's playlists.
    d(c"hls_serve", HTTP_LOC, Take1, Core),
    // WHIP ingest (http): the endpoint, and the sidecar's settings.
    d(c"whip_publish", HTTP_LOC, Take12, Core),
    // WebRTC playback (WHEP): the endpoint, on the same sidecar and UDP port.
    d(c"whep_play", HTTP_LOC, Take12, Core),
    d(c"whep_audio_bitrate", HTTP_MAIN | HTTP_SRV, Take1, Core),
    d(c"whep_max_sessions", HTTP_MAIN | HTTP_SRV, Take1, Core),
    d(c"whep_max_sessions_per_ip", HTTP_MAIN | HTTP_SRV, Take1, Core),
    d(c"whip_udp_listen", HTTP_MAIN | HTTP_SRV, Take1, Core),
    d(c"whip_candidate", HTTP_MAIN | HTTP_SRV, Take1, Core),
    d(c"whip_ice_server", HTTP_MAIN | HTTP_SRV, OneMore, Core),
    d(c"whip_max_sessions", HTTP_MAIN | HTTP_SRV, Take1, Core),
    d(c"whip_max_sessions_per_ip", HTTP_MAIN | HTTP_SRV, Take1, Core),
    d(c"whip_max_sdp", HTTP_MAIN | HTTP_SRV, Take1, Core),
    d(c"whip_ice_timeout", HTTP_MAIN | HTTP_SRV, Take1, Core),
    d(c"whip_timeout", HTTP_MAIN | HTTP_SRV, Take1, Core),
    d(c"whip_keyframe_interval", HTTP_MAIN | HTTP_SRV, Take1, Core),
];

/// How many of [`DIRECTIVES`] come from nginx-rtmp-module (the rest are this module's own).
pub const NGINX_RTMP_DIRECTIVES: usize = 118;

/// The index of a directive in [`DIRECTIVES`].
pub fn index_of(name: &str) -> Option<usize> {
    DIRECTIVES.iter().position(|d| d.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_complete_and_unique() {
        assert_eq!(DIRECTIVES.len(), NGINX_RTMP_DIRECTIVES + 31, "nginx-rtmp-module's + gop_cache, hls_format, hls_partial_duration, hls_serve, merge_writes, merge_reads, resolver, drain_timeout, handshake_timeout, exec_stall_timeout, transcode, transcode_ffmpeg, rtmp_stat_format, rtmp_hls_viewers, relay_ssl_verify, pull_idle_timeout, relay_ssl_trusted_certificate ten whip_*, whep_play, whep_audio_bitrate and two whep_max_*");
        for (i, d) in DIRECTIVES.iter().enumerate() {
            assert_eq!(index_of(d.name), Some(i), "duplicate {}", d.name);
            assert!(d.contexts != 0);
        }
    }
}
