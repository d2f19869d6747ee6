//! MPEG-TS muxing on the `mpeg2ts` crate: PAT and PMT at the start of every segment, PES
//! packets with PTS/DTS split over 188-byte TS packets, PCR on the clock track, and
//! continuity counters that run on across segments.

use mpeg2ts::es::{StreamId, StreamType};
use mpeg2ts::pes::PesHeader;
use mpeg2ts::time::{ClockReference, Timestamp};
use mpeg2ts::ts::payload::{Bytes as TsBytes, Pat, Pes, Pmt};
use mpeg2ts::ts::{
    AdaptationField, ContinuityCounter, EsInfo, Pid, ProgramAssociation, TransportScramblingControl, TsHeader,
    TsPacket, TsPacketWriter, TsPayload, VersionNumber, WriteTsPacket,
};

/// The PIDs nginx-rtmp-module uses, so tools that expect them keep working.
pub const PMT_PID: u16 = 0x1000;
pub const VIDEO_PID: u16 = 0x100;
pub const AUDIO_PID: u16 = 0x101;

/// A PES packet's times in 90 kHz units; `pcr` on the clock track.
#[derive(Clone, Copy, Debug)]
pub struct Times {
    pub pts: u64,
    pub dts: u64,
    pub pcr: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Track {
    Video,
    Audio,
}

/// One TS stream: which elementary streams it has and the continuity counters.
#[derive(Debug)]
pub struct Muxer {
    video: Option<StreamType>,
    audio: Option<StreamType>,
    cc_pat: u8,
    cc_pmt: u8,
    cc_video: u8,
    cc_audio: u8,
}

const TS_MASK: u64 = (1 << 33) - 1;

fn counter(cc: &mut u8) -> ContinuityCounter {
    let c = ContinuityCounter::from_u8(*cc).expect("4-bit counter");
    *cc = (*cc + 1) & 0x0f;
    c
}

fn pid(n: u16) -> Pid {
    Pid::new(n).expect("valid pid")
}

fn header(pid_: u16, cc: ContinuityCounter) -> TsHeader {
    TsHeader {
        transport_error_indicator: false,
        transport_priority: false,
        pid: pid(pid_),
        transport_scrambling_control: TransportScramblingControl::NotScrambled,
        continuity_counter: cc,
    }
}

fn write(out: &mut Vec<u8>, packet: &TsPacket) {
    // Writing to a Vec fails only on packets we built wrongly: a bug, caught by the tests.
    TsPacketWriter::new(&mut *out).write_ts_packet(packet).expect("well-formed TS packet");
}

impl Muxer {
    pub fn new(video: Option<StreamType>, audio: Option<StreamType>) -> Self {
        Muxer { video, audio, cc_pat: 0, cc_pmt: 0, cc_video: 0, cc_audio: 0 }
    }

    /// The elementary streams the next `tables` declare (known when a segment starts).
    pub fn set_streams(&mut self, video: Option<StreamType>, audio: Option<StreamType>) {
        self.video = video;
        self.audio = audio;
    }

    /// The track whose timestamps carry the PCR: video if there is any.
    pub fn clock(&self) -> Track {
        if self.video.is_some() {
            Track::Video
        } else {
            Track::Audio
        }
    }

    /// The PAT and PMT that start a segment.
    pub fn tables(&mut self, out: &mut Vec<u8>) {
        let pat = TsPacket {
            header: header(0, counter(&mut self.cc_pat)),
            adaptation_field: None,
            payload: Some(TsPayload::Pat(Pat {
                transport_stream_id: 1,
                version_number: VersionNumber::new(),
                table: vec![ProgramAssociation { program_num: 1, program_map_pid: pid(PMT_PID) }],
            })),
        };
        write(out, &pat);
        let mut es_info = Vec::new();
        if let Some(t) = self.video {
            es_info.push(EsInfo { stream_type: t, elementary_pid: pid(VIDEO_PID), descriptors: vec![] });
        }
        if let Some(t) = self.audio {
            es_info.push(EsInfo { stream_type: t, elementary_pid: pid(AUDIO_PID), descriptors: vec![] });
        }
        let pcr_pid = if self.clock() == Track::Video { VIDEO_PID } else { AUDIO_PID };
        let pmt = TsPacket {
            header: header(PMT_PID, counter(&mut self.cc_pmt)),
            adaptation_field: None,
            payload: Some(TsPayload::Pmt(Pmt {
                program_num: 1,
                pcr_pid: Some(pid(pcr_pid)),
                version_number: VersionNumber::new(),
                program_info: vec![],
                es_info,
            })),
        };
        write(out, &pmt);
    }

    /// One access unit as a PES packet.
    pub fn pes(&mut self, out: &mut Vec<u8>, track: Track, times: Times, random_access: bool, data: &[u8]) {
        let Times { pts, dts, pcr } = times;
        let (pid_, sid, cc) = match track {
            Track::Video => (VIDEO_PID, StreamId::VIDEO_MIN, &mut self.cc_video),
            Track::Audio => (AUDIO_PID, StreamId::AUDIO_MIN, &mut self.cc_audio),
        };
        let with_dts = pts != dts;
        let pes_header = PesHeader {
            stream_id: StreamId::new(sid),
            priority: false,
            data_alignment_indicator: false,
            copyright: false,
            original_or_copy: false,
            pts: Some(Timestamp::new(pts & TS_MASK).expect("33 bits")),
            dts: with_dts.then(|| Timestamp::new(dts & TS_MASK).expect("33 bits")),
            escr: None,
        };
        let header_len = 9 + 5 + if with_dts { 5 } else { 0 };
        // PES_packet_length counts what follows it; 0 (unbounded) when it does not fit,
        // which the standard allows for video only: audio PES stay below that size.
        let following = header_len - 6 + data.len();
        let pes_packet_len = if track == Track::Audio && following <= 0xffff { following as u16 } else { 0 };
        let adaptation_field = (random_access || pcr.is_some()).then(|| AdaptationField {
            discontinuity_indicator: false,
            random_access_indicator: random_access,
            es_priority_indicator: false,
            pcr: pcr.map(|p| ClockReference::new((p & TS_MASK) * 300).expect("42 bits")),
            opcr: None,
            splice_countdown: None,
            transport_private_data: vec![],
            extension: None,
        });
        let af_len = adaptation_field.as_ref().map_or(0, |_| 2 + if pcr.is_some() { 6 } else { 0 });
        let first = data.len().min(TsBytes::MAX_SIZE - af_len - header_len);
        let packet = TsPacket {
            header: header(pid_, counter(cc)),
            adaptation_field,
            payload: Some(TsPayload::PesStart(Pes {
                header: pes_header,
                pes_packet_len,
                data: TsBytes::new(&data[..first]).expect("fits"),
            })),
        };
        write(out, &packet);
        let rest = &data[first..];
        // Full continuation packets are a 4-byte header and 184 bytes of payload: the
        // header comes from mpeg2ts once per PES, then only its continuity counter (the
        // low 4 bits of byte 3) changes; the payload is copied once, straight into `out`.
        let full = rest.len() / TsBytes::MAX_SIZE;
        if full > 0 {
            let at = out.len();
            let packet = TsPacket {
                header: header(pid_, counter(cc)),
                adaptation_field: None,
                payload: Some(TsPayload::PesContinuation(TsBytes::new(&rest[..TsBytes::MAX_SIZE]).expect("fits"))),
            };
            write(out, &packet);
            let head: [u8; 4] = out[at..at + 4].try_into().expect("4 bytes");
            out.reserve(full * TsPacket::SIZE);
            for chunk in rest.chunks_exact(TsBytes::MAX_SIZE).skip(1) {
                out.extend_from_slice(&head[..3]);
                out.push((head[3] & 0xf0) | counter(cc).as_u8());
                out.extend_from_slice(chunk);
            }
        }
        let tail = &rest[full * TsBytes::MAX_SIZE..];
        if !tail.is_empty() {
            let packet = TsPacket {
                header: header(pid_, counter(cc)),
                adaptation_field: None,
                payload: Some(TsPayload::PesContinuation(TsBytes::new(tail).expect("fits"))),
            };
            write(out, &packet);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpeg2ts::pes::{PesPacketReader, ReadPesPacket};
    use mpeg2ts::ts::{ReadTsPacket, TsPacketReader};

    #[test]
    fn pes_round_trips_through_a_ts_reader() {
        let mut m = Muxer::new(Some(StreamType::H264), Some(StreamType::AdtsAac));
        let mut out = Vec::new();
        m.tables(&mut out);
        let video: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        for len in [0usize, 1, 150, 151, 152, 183, 184, 185, 5000] {
            // (5000: 27 full continuation packets and a partial one)
            m.pes(&mut out, Track::Video, Times { pts: 9000 + 3600, dts: 9000, pcr: Some(9000) }, true, &video[..len.max(1)]);
            m.pes(&mut out, Track::Audio, Times { pts: 9000, dts: 9000, pcr: None }, false, &video[..len.max(1)]);
        }
        assert_eq!(out.len() % 188, 0);
        assert!(out.chunks(188).all(|p| p[0] == 0x47));

        // Continuity counters run per PID without gaps.
        let mut last: std::collections::HashMap<u16, u8> = Default::default();
        let mut reader = TsPacketReader::new(&out[..]);
        while let Some(p) = reader.read_ts_packet().unwrap() {
            let pid = p.header.pid.as_u16();
            let cc = p.header.continuity_counter.as_u8();
            if let Some(prev) = last.insert(pid, cc) {
                assert_eq!(cc, (prev + 1) & 15, "pid {pid}");
            }
        }

        let mut r = PesPacketReader::new(TsPacketReader::new(&out[..]));
        let mut n = 0;
        while let Some(pes) = r.read_pes_packet().unwrap() {
            let len = [0usize, 1, 150, 151, 152, 183, 184, 185, 5000][n / 2].max(1);
            assert_eq!(pes.data, video[..len].to_vec(), "pes {n}");
            if pes.header.stream_id.is_video() {
                assert_eq!(pes.header.pts.unwrap().as_u64(), 12600);
                assert_eq!(pes.header.dts.unwrap().as_u64(), 9000);
            } else {
                assert!(pes.header.dts.is_none());
            }
            n += 1;
        }
        assert_eq!(n, 18);
    }
}
