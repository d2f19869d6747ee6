use super::*;

fn video(ts: u32, key: bool) -> Frame {
    let b0 = if key { 0x17 } else { 0x27 };
    Frame::parse(MediaKind::Video, ts, Bytes::from(vec![b0, 1, 0, 0, 0, ts as u8]))
}

fn tag(kind: MediaKind, ts: u32, b: &'static [u8]) -> Frame {
    Frame::parse(kind, ts, Bytes::from_static(b))
}

/// Everything pending for a player, written in full.
fn write_all(f: &Fanout, cur: &mut Cursor) -> Vec<Bytes> {
    let mut own = VecDeque::new();
    f.prepare(cur, &mut own);
    let mut out: Vec<Bytes> = own.into_iter().collect();
    let mut n = 0;
    let mut got = vec![];
    f.pending(cur, &mut |b| {
        n += b.len();
        got.push(Bytes::copy_from_slice(b));
        true
    });
    assert!(f.advance(cur, &mut n).is_none());
    assert_eq!(n, 0);
    out.extend(got);
    out
}

/// The pointers of what is pending (to see shared buffers).
fn pointers(f: &Fanout, cur: &Cursor) -> Vec<*const u8> {
    let mut v = vec![];
    f.pending(cur, &mut |b| {
        v.push(b.as_ptr());
        true
    });
    v
}

fn decode(bytes: &[Bytes]) -> Vec<chunk::Message> {
    let mut r = chunk::Reader::new(1 << 20);
    r.set_chunk_size(4096);
    for b in bytes {
        r.push(b);
    }
    std::iter::from_fn(|| r.read_message().unwrap()).collect()
}

#[test]
fn every_player_reads_the_same_buffers() {
    let mut f = Fanout::new(Settings::default());
    let mut players: Vec<Cursor> = (0..5).map(|_| f.join(1, false, true).0).collect();
    f.append(video(0, true));
    f.append(video(40, false));
    let first = pointers(&f, &players[0]);
    assert_eq!(first.len(), 2);
    for p in &players[1..] {
        assert_eq!(pointers(&f, p), first, "one encoding for every player");
    }
    for p in players.iter_mut() {
        assert_eq!(decode(&write_all(&f, p)).len(), 2);
        assert_eq!(f.lag(p), 0);
    }
    // Nobody needs the entries now, but the GOP keeps them from its keyframe.
    f.trim(Some(f.head()));
    assert_eq!(f.len(), 2);
    f.append(video(80, true));
    f.trim(Some(f.head()));
    assert_eq!(f.len(), 1, "only the new GOP is kept");
}

#[test]
fn late_player_gets_headers_and_gop_then_live() {
    let mut f = Fanout::new(Settings::default());
    let meta = tag(MediaKind::Data, 0, b"\x02\x00\x0aonMetaData");
    let avc_header = tag(MediaKind::Video, 0, &[0x17, 0, 0, 0, 0, 1]);
    let aac_header = tag(MediaKind::Audio, 0, &[0xaf, 0, 0x12, 0x10]);
    for fr in [meta, avc_header, aac_header, video(0, true), video(40, false), video(80, true), video(120, false)] {
        f.append(fr);
    }
    f.trim(None);
    let (mut a, burst) = f.join(1, false, true);
    let mut got = burst.clone();
    got.extend(write_all(&f, &mut a));
    let summary: Vec<(u8, u32)> = decode(&got).iter().map(|m| (m.type_id, m.timestamp)).collect();
    // metadata, AVC header, AAC header, then the GOP from the last keyframe (80).
    assert_eq!(summary, vec![(18, 0), (9, 0), (8, 0), (9, 80), (9, 120)]);
    assert_eq!(f.lag(&a), 0, "the burst is not lag");
    // A second joiner gets the very same buffers.
    let (b, burst_b) = f.join(1, false, true);
    assert!(burst.iter().zip(&burst_b).all(|(x, y)| x.as_ptr() == y.as_ptr()));
    assert_eq!(pointers(&f, &b).len(), 2);
    // A player on another message stream id gets the same messages on its id.
    let (mut c, burst_c) = f.join(3, false, true);
    let mut got3 = burst_c;
    got3.extend(write_all(&f, &mut c));
    let got3 = decode(&got3);
    let got1 = decode(&got);
    assert_eq!(got3.len(), got1.len());
    assert!(got3.iter().zip(&got1).all(|(x, y)| x.msid == 3 && x.payload == y.payload && x.timestamp == y.timestamp));
    f.append(video(160, false));
    let live3 = decode(&write_all(&f, &mut c));
    assert_eq!((live3.len(), live3[0].msid, live3[0].timestamp), (1, 3, 160));

    // Without the GOP cache, a late player waits for the next keyframe.
    let mut f = Fanout::new(Settings { gop_cache: false, ..Settings::default() });
    f.append(video(0, true));
    let (mut d, _) = f.join(1, false, true);
    f.append(video(160, false));
    f.append(video(200, true));
    let ts: Vec<u32> = decode(&write_all(&f, &mut d)).iter().map(|m| m.timestamp).collect();
    assert_eq!(ts, vec![200], "no inter frame before the first keyframe");
}

#[test]
fn statuses_come_after_what_was_appended_before_them() {
    let mut f = Fanout::new(Settings::default());
    let (mut p, _) = f.join(1, false, true);
    f.append(video(0, true));
    f.status(&mut p, Bytes::from_static(b"STATUS"));
    f.append(video(40, false));
    let got = write_all(&f, &mut p);
    assert_eq!(got.len(), 3);
    assert_eq!(&got[1][..], b"STATUS");
    // A status with nothing after it goes too.
    f.status(&mut p, Bytes::from_static(b"END"));
    assert!(f.has_pending(&p));
    assert_eq!(write_all(&f, &mut p), vec![Bytes::from_static(b"END")]);
    assert!(!f.has_pending(&p));
}

#[test]
fn a_write_in_part_leaves_the_rest_of_its_entry_first() {
    let mut f = Fanout::new(Settings::default());
    let (mut p, _) = f.join(1, false, true);
    f.append(video(0, true));
    f.append(video(40, false));
    let whole: usize = {
        let mut n = 0;
        f.pending(&p, &mut |b| {
            n += b.len();
            true
        });
        n
    };
    let first = {
        let mut v = vec![];
        f.pending(&p, &mut |b| {
            v.push(b.len());
            true
        });
        v[0]
    };
    let left = f.advance(&mut p, &mut (first - 3)).expect("the rest of the first entry");
    assert_eq!(left.len(), 3);
    assert_eq!(pointers(&f, &p).len(), 1, "the second entry is next in the log");
    let mut rest = whole - first + 5;
    assert!(f.advance(&mut p, &mut rest).is_none());
    assert_eq!(rest, 5, "what is not this player's stays");
    assert_eq!(f.lag(&p), 0);
}

#[test]
fn lag_counts_what_a_slow_player_has_not_read() {
    let mut f = Fanout::new(Settings::default());
    let (p, _) = f.join(1, false, true);
    for i in 0..10 {
        f.append(video(i * 40, i == 0));
    }
    assert_eq!(f.lag(&p), 10);
    // Its position holds the entries, without a queue of its own.
    f.trim(Some(Fanout::position(&p)));
    assert_eq!(f.len(), 10);
}

#[test]
fn wait_video_and_interleave() {
    let mut f = Fanout::new(Settings { wait_video: true, gop_cache: false, interleave: true, ..Settings::default() });
    f.append(video(0, true));
    let (mut p, _) = f.join(1, false, true);
    let audio = |ts| tag(MediaKind::Audio, ts, &[0xaf, 1, 9]);
    f.append(audio(10));
    f.append(video(40, true));
    f.append(audio(50));
    let got = decode(&write_all(&f, &mut p));
    assert_eq!(got.iter().map(|m| (m.type_id, m.csid, m.timestamp)).collect::<Vec<_>>(), vec![(9, 7, 40), (8, 7, 50)]);
}

#[test]
fn pause_and_receive() {
    let mut f = Fanout::new(Settings { gop_cache: false, ..Settings::default() });
    let (mut p, _) = f.join(1, false, true);
    f.append(video(0, true));
    assert_eq!(write_all(&f, &mut p).len(), 1);
    f.pause(&mut p, true);
    f.append(video(40, true));
    assert!(write_all(&f, &mut p).is_empty(), "paused");
    f.pause(&mut p, false);
    f.append(video(80, false));
    assert!(write_all(&f, &mut p).is_empty(), "resumes on a keyframe");
    f.append(video(120, true));
    assert_eq!(write_all(&f, &mut p).len(), 1);
    f.receive(&mut p, MediaKind::Audio, false);
    f.append(tag(MediaKind::Audio, 130, &[0xaf, 1]));
    assert!(write_all(&f, &mut p).is_empty(), "receiveAudio false");
}

#[test]
fn two_audio_tracks_one_per_player() {
    let mut f = Fanout::new(Settings::default());
    let audio = |ts: u32, b: &'static [u8]| tag(MediaKind::Audio, ts, b);
    let (mut legacy, _) = f.join(1, false, true);
    let (mut opus, _) = f.join(1, true, true);
    f.append(video(0, true));
    f.append(audio(0, b"\xaf\x00\x11\x90"));
    assert!(!f.two_audio_tracks());
    f.append(audio(0, b"\x90OpusOpusHead"));
    assert!(f.two_audio_tracks());
    write_all(&f, &mut legacy);
    write_all(&f, &mut opus);
    f.append(audio(20, b"\x91Opus\x01"));
    f.append(audio(21, b"\xaf\x01\x02"));
    f.append(video(40, false));
    let first_bytes = |got: Vec<Bytes>| decode(&got).iter().map(|m| (m.type_id, m.payload[0])).collect::<Vec<_>>();
    assert_eq!(first_bytes(write_all(&f, &mut legacy)), vec![(8, 0xaf), (9, 0x27)], "a legacy player gets AAC only");
    assert_eq!(first_bytes(write_all(&f, &mut opus)), vec![(8, 0x91), (9, 0x27)], "an Enhanced RTMP Opus player gets Opus only");
    // Late joiners: their own audio header and GOP audio.
    let audio_of = |f: &mut Fanout, opus: bool| {
        let (mut c, mut got) = f.join(1, opus, true);
        got.extend(write_all(f, &mut c));
        decode(&got).iter().filter(|m| m.type_id == 8).map(|m| m.payload[0]).collect::<Vec<_>>()
    };
    // (The codec headers that came after the GOP's keyframe are in the GOP too: they
    // go again where they came, as to a player that was there; the AAC header came
    // while the stream had one audio track, for everyone.)
    assert_eq!(audio_of(&mut f, false), vec![0xaf, 0xaf, 0xaf]);
    assert_eq!(audio_of(&mut f, true), vec![0x90, 0xaf, 0x90, 0x91]);
    // A stream with Enhanced RTMP audio only goes to everyone, as before.
    let mut g = Fanout::new(Settings::default());
    let (mut p, _) = g.join(1, false, true);
    g.append(audio(0, b"\x90OpusOpusHead"));
    g.append(audio(20, b"\x91Opus\x01"));
    assert_eq!(write_all(&g, &mut p).len(), 2);
}

#[test]
fn gop_cache_is_bounded() {
    let mut f = Fanout::new(Settings { gop_max_bytes: 20, ..Settings::default() });
    for i in 0..10 {
        f.append(video(i * 40, i == 0));
    }
    assert!(!f.has_gop(), "overflowed cache was dropped");
    f.trim(None);
    assert!(f.is_empty());
    let (mut p, burst) = f.join(1, false, true);
    assert!(burst.is_empty() && write_all(&f, &mut p).is_empty());
}

#[test]
fn nothing_is_encoded_for_nobody() {
    let mut f = Fanout::new(Settings::default());
    f.append(video(0, true));
    assert!(matches!(f.entries[0].body, Kept::Raw(_)));
    let (mut p, _) = f.join(1, false, true);
    assert!(matches!(f.entries[0].body, Kept::Encoded(_)), "encoded when a player needs it");
    f.append(video(40, false));
    assert_eq!(write_all(&f, &mut p).len(), 2);
    f.leave();
    f.append(video(80, false));
    assert!(matches!(f.entries.back().unwrap().body, Kept::Raw(_)));
}
