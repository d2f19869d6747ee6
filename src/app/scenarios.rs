//! Whole scenarios of the application core, without nginx (`sim`): publishing with
//! players, HLS and a recording; callbacks allowing, refusing and renaming; a player
//! joining mid-GOP; a slow player dropped at `out_queue`; a publisher vanishing;
//! republishing; the control API. Deterministic, a few milliseconds each.

use super::sim::{Peer, Sim};
use super::{Answer, Level};
use crate::rtmp::message as msg;

const LIVE: &str = "rtmp { server { listen 1935; application live { live on; } } }";

/// A publisher of `live/NAME` with codec headers sent.
fn publisher(sim: &mut Sim, name: &str) -> Peer {
    let mut p = Peer::new(sim);
    assert_eq!(p.connect(sim, "live"), ["NetConnection.Connect.Success"]);
    assert_eq!(p.publish(sim, name), ["NetStream.Publish.Start"]);
    p.video(sim, 0, false, true);
    p.audio(sim, 0, true);
    p
}

fn player(sim: &mut Sim, name: &str) -> Peer {
    let mut p = Peer::new(sim);
    assert_eq!(p.connect(sim, "live"), ["NetConnection.Connect.Success"]);
    let codes = p.play(sim, name);
    assert!(codes.contains(&"NetStream.Play.Start".to_owned()), "{codes:?}");
    p
}

/// `seconds` of 25 fps video (a keyframe every second) and audio, in real time.
fn stream(sim: &mut Sim, p: &mut Peer, from_ms: u32, seconds: u32) {
    for i in 0..seconds * 25 {
        let ts = from_ms + i * 40;
        p.video(sim, ts, ts % 1000 == 0, false);
        p.audio(sim, ts + 20, false);
        sim.advance(40);
    }
}

/// The worker's counters as `/metrics` shows them.
fn health(sim: &Sim) -> crate::stat::Health {
    let meta = super::SnapshotMeta { nginx_version: String::new(), compiler: String::new(), built: String::new(), pid: 0 };
    sim.app.snapshot(&sim.now, meta).health
}

/// Whether a user control "stream EOF" came.
fn eof(msgs: &[crate::rtmp::chunk::Message]) -> bool {
    msgs.iter().any(|m| m.type_id == msg::USER_CONTROL && m.payload[..2] == [0, 1])
}

#[test]
fn publish_with_players_hls_and_recording() {
    let mut sim = Sim::new(
        "rtmp { server { listen 1935; application live { live on; hls on; hls_path /hls; hls_fragment 1s; \
         record all; record_path /rec; } } }",
    );
    let mut early = player(&mut sim, "s");
    let mut p = publisher(&mut sim, "s");
    assert!(sim.logged("publish: \"live/s\""));
    assert!(sim.logged("hls: \"s\" to \"/hls/s.m3u8\""));
    stream(&mut sim, &mut p, 0, 2);
    let mut late = player(&mut sim, "s");
    stream(&mut sim, &mut p, 2000, 2);
    early.read(&mut sim);
    late.read(&mut sim);
    let early_video = early.media_got().iter().filter(|m| m.0 == msg::VIDEO).count();
    assert_eq!(early_video, 1 + 100, "the header and every frame");
    let late_media = late.media_got();
    assert_eq!(late_media[0], (msg::VIDEO, 0, 0x17), "a late player starts with the codec headers");
    assert_eq!(late_media.iter().find(|m| m.0 == msg::VIDEO && m.1 > 0), Some(&(msg::VIDEO, 1000, 0x17)), "then the newest keyframe");
    assert!(late.media_got().iter().all(|m| m.1 == 0 || m.1 >= 1000));
    assert_eq!(late_media.iter().filter(|m| m.0 == msg::VIDEO).count(), 1 + 75, "the header, the GOP, then live");
    let fs = sim.fs.borrow();
    let playlist = String::from_utf8_lossy(&fs.files["/hls/s.m3u8"]).into_owned();
    assert!(playlist.contains("#EXTINF:1.000,\ns-0.ts") && playlist.contains("s-2.ts"), "{playlist}");
    assert!(fs.files["/hls/s-0.ts"].len() > 188 * 10 && fs.files["/hls/s-0.ts"][0] == 0x47);
    let flv = &fs.files["/rec/s.flv"];
    assert_eq!(&flv[..3], b"FLV");
    drop(fs);
    let h = health(&sim);
    assert_eq!((h.hls_segments, h.recordings, h.record_files), (3, 1, 0), "/metrics while recording");
    // The publisher leaves: players are told, the recording is completed.
    p.command(&mut sim, 0, &[crate::rtmp::amf::Value::str("deleteStream"), crate::rtmp::amf::Value::Number(5.0), crate::rtmp::amf::Value::Null, crate::rtmp::amf::Value::Number(p.msid as f64)]);
    assert!(sim.logged("unpublish: \"live/s\"") && sim.logged("record: \"/rec/s.flv\" done"));
    assert!(eof(&early.read(&mut sim)) && eof(&late.read(&mut sim)), "players see the stream end");
    let playlist = String::from_utf8_lossy(&sim.fs.borrow().files["/hls/s.m3u8"]).into_owned();
    assert!(playlist.contains("s-3.ts"), "the last segment is listed: {playlist}");
    let h = health(&sim);
    assert_eq!((h.hls_segments, h.recordings, h.record_files), (4, 0, 1), "/metrics once it ended");
    assert!(!sim.logs.iter().any(|(_, l, _)| matches!(l, Level::Err | Level::Alert)), "{:?}", sim.logs);
}

#[test]
fn on_publish_allows_refuses_and_renames() {
    let mut sim = Sim::new("rtmp { server { listen 1935; application live { live on; on_publish http://127.0.0.1:8080/auth; } } }");
    let mut a = Peer::new(&mut sim);
    a.connect(&mut sim, "live");
    assert!(a.publish(&mut sim, "a").is_empty(), "waits for the callback");
    assert_eq!(sim.calls.len(), 1);
    let form = String::from_utf8_lossy(&sim.calls[0].request).into_owned();
    assert!(form.contains("call=publish&name=a&type=live"), "{form}");
    sim.answer("/auth", 200, None);
    assert_eq!(Peer::codes(&a.read(&mut sim)), ["NetStream.Publish.Start"]);

    let mut b = Peer::new(&mut sim);
    b.connect(&mut sim, "live");
    b.publish(&mut sim, "b");
    sim.answer("/auth", 403, None);
    assert_eq!(Peer::codes(&b.read(&mut sim)), ["NetStream.Publish.Unauthorized"]);
    assert!(sim.dropped.contains(&b.id), "closed once told");
    assert!(sim.logged("notify: publish \"b\" refused (HTTP 403)"));

    let mut c = Peer::new(&mut sim);
    c.connect(&mut sim, "live");
    c.publish(&mut sim, "c");
    sim.answer("/auth", 302, Some("renamed"));
    assert_eq!(Peer::codes(&c.read(&mut sim)), ["NetStream.Publish.Start"]);
    assert!(sim.logged("publish: \"live/renamed\""));
    let mut viewer = player(&mut sim, "renamed");
    c.video(&mut sim, 0, false, true);
    c.video(&mut sim, 0, true, false);
    viewer.read(&mut sim);
    assert_eq!(viewer.media_got().len(), 2, "the renamed stream plays");
}

#[test]
fn a_player_joining_mid_gop_starts_on_the_newest_keyframe() {
    // (Its publisher is read in batches: the player's start waits for its input to be
    // read first.)
    let mut sim = Sim::new("rtmp { server { listen 1935; application live { live on; merge_reads 300ms; } } }");
    let mut p = publisher(&mut sim, "s");
    assert_eq!(sim.app.pace(p.id), 300);
    stream(&mut sim, &mut p, 0, 1);
    for ts in [1000, 1040, 1080] {
        p.video(&mut sim, ts, ts == 1000, false);
    }
    let mut v = player(&mut sim, "s");
    v.read(&mut sim);
    let video: Vec<u32> = v.media_got().iter().filter(|m| m.0 == msg::VIDEO).map(|m| m.1).collect();
    assert_eq!(video, [0, 1000, 1040, 1080], "header, then the GOP from its keyframe");
    p.video(&mut sim, 1120, false, false);
    assert_eq!(v.read(&mut sim).last().map(|m| m.timestamp), Some(1120), "then live");
}

#[test]
fn a_slow_player_is_dropped_at_out_queue_and_the_others_go_on() {
    let mut sim = Sim::new("rtmp { server { listen 1935; out_queue 8; application live { live on; } } }");
    let mut p = publisher(&mut sim, "s");
    let mut slow = player(&mut sim, "s");
    let mut ok = player(&mut sim, "s");
    slow.read(&mut sim);
    sim.set_room(slow.id, Some(0));
    stream(&mut sim, &mut p, 0, 1);
    assert!(sim.dropped.contains(&slow.id), "dropped");
    assert!(sim.logged("client too slow: more than 8 messages queued (out_queue), dropping it"));
    ok.read(&mut sim);
    assert_eq!(ok.media_got().iter().filter(|m| m.0 == msg::VIDEO).count(), 1 + 25, "the other player got everything");
}

#[test]
fn a_publisher_vanishing_ends_its_stream_once_and_a_new_one_takes_over() {
    let mut sim = Sim::new(
        "rtmp { server { listen 1935; application live { live on; publish_notify on; \
         on_publish_done http://127.0.0.1:8080/done; } } }",
    );
    let mut p = publisher(&mut sim, "s");
    let mut v = player(&mut sim, "s");
    stream(&mut sim, &mut p, 0, 1);
    v.read(&mut sim);
    p.vanish(&mut sim);
    let end = v.read(&mut sim);
    assert!(eof(&end) && Peer::codes(&end) == ["NetStream.Play.UnpublishNotify"]);
    assert_eq!(sim.calls.iter().filter(|c| c.url.contains("/done")).count(), 1, "on_publish_done once");
    assert!(String::from_utf8_lossy(&sim.calls[0].request).contains("call=publish_done&name=s"));
    // Republished: the waiting player is told, then gets the new stream from a keyframe.
    let mut again = publisher(&mut sim, "s");
    assert_eq!(Peer::codes(&v.read(&mut sim)), ["NetStream.Play.PublishNotify"]);
    again.video(&mut sim, 5000, false, false);
    again.video(&mut sim, 5040, true, false);
    v.read(&mut sim);
    let last: Vec<u32> = v.media_got().iter().rev().take(2).map(|m| m.1).collect();
    assert_eq!(last, [5040, 0], "the new codec header, then its first keyframe (not the frame before)");
    // The stream is forgotten once nobody is left.
    again.vanish(&mut sim);
    v.vanish(&mut sim);
    assert!(sim.app.streams.is_empty() && sim.app.by_key.is_empty());
}

#[test]
fn control_drops_and_redirects() {
    let mut sim = Sim::new(LIVE);
    let mut p = publisher(&mut sim, "s");
    let v = player(&mut sim, "s");
    let mut w = player(&mut sim, "s");
    let now = sim.now;
    let arg = |id: u64| move |k: &str| match k {
        "name" => Some("s".to_owned()),
        "clientid" => Some(id.to_string()),
        _ => None,
    };
    let number = sim.app.client(v.id).map(|c| c.number).expect("a client");
    let r = sim.app.control("drop", "subscriber", &arg(number), &now);
    sim.run();
    assert!(matches!(r, Ok(Answer::Count(1))) && sim.dropped.contains(&v.id) && !sim.dropped.contains(&w.id));
    assert!(sim.logged("dropped through the control API"));
    let newname = |k: &str| match k {
        "name" => Some("s".to_owned()),
        "newname" => Some("t".to_owned()),
        _ => None,
    };
    let r = sim.app.control("redirect", "publisher", &newname, &now);
    sim.run();
    assert!(matches!(r, Ok(Answer::Count(1))));
    assert!(sim.logged("publish: \"live/t\""));
    let mut t = player(&mut sim, "t");
    p.video(&mut sim, 0, false, true);
    p.video(&mut sim, 40, true, false);
    t.read(&mut sim);
    assert_eq!(t.media_got().len(), 2, "the publisher goes on under its new name");
    assert!(eof(&w.read(&mut sim)), "the old name's player saw it go");
    assert!(matches!(sim.app.control("drop", "nobody", &|_| None, &now), Err(e) if e == "Undefined filter"));
}

#[test]
fn a_quit_drains_publishers_then_closes_them() {
    let mut sim = Sim::new("rtmp { drain_timeout 2s; server { listen 1935; application live { live on; } } }");
    let mut p = publisher(&mut sim, "s");
    let mut v = player(&mut sim, "s");
    sim.shutdown = Some(super::Shutdown::Quit);
    sim.advance(1000);
    assert!(sim.logged("nginx is quitting: 1 live publisher(s) have 2000 ms to finish (drain_timeout)"));
    stream(&mut sim, &mut p, 0, 1);
    assert!(!sim.dropped.contains(&p.id), "within drain_timeout the stream goes on");
    sim.advance(2000);
    assert!(sim.dropped.contains(&p.id), "then the publisher is closed");
    assert!(eof(&v.read(&mut sim)), "its player is told");
    sim.advance(1000);
    assert!(sim.dropped.contains(&v.id), "then let go");
}

#[test]
fn a_reload_leaves_live_publishers_alone() {
    let mut sim = Sim::new("rtmp { drain_timeout 1s; server { listen 1935; application live { live on; } } }");
    let p = publisher(&mut sim, "s");
    let idle = player(&mut sim, "nobody");
    sim.shutdown = Some(super::Shutdown::Reload);
    sim.advance(5000);
    assert!(!sim.dropped.contains(&p.id), "publishers finish on old workers");
    assert!(sim.dropped.contains(&idle.id), "players of streams without a publisher go to the new workers");
}

/// The pids the simulated children were given, by the order they were asked for.
fn start_children(sim: &mut Sim, first_pid: i32) -> Vec<(super::exec::ChildId, Vec<String>)> {
    let spawns = std::mem::take(&mut sim.spawns);
    let mut out = vec![];
    for (i, (id, spec)) in spawns.into_iter().enumerate() {
        sim.app.spawned(id, Ok(first_pid + i as i32), &sim.now);
        out.push((id, spec.argv));
    }
    sim.run();
    out
}

#[test]
fn exec_follows_its_publisher_with_nginx_rtmp_module_variables() {
    let mut sim = Sim::new(
        "rtmp { server { listen 1935; application live { live on; \
         exec sh -c x -i rtmp://localhost/live/$name -f flv rtmp://localhost/hls/$name_480p 2>>/tmp/$name.log; \
         exec_publish sh $app $name $addr $flashver; exec_publish_done sh done $name; } } }",
    );
    let p = publisher(&mut sim, "cam");
    let children = start_children(&mut sim, 100);
    let argv: Vec<&Vec<String>> = children.iter().map(|(_, a)| a).collect();
    assert_eq!(argv.len(), 2, "exec_publish and exec: {argv:?}");
    assert_eq!(argv[0], &["sh", "live", "cam", "127.0.0.1", "sim/1"], "exec_publish");
    assert_eq!(argv[1], &["sh", "-c", "x", "-i", "rtmp://localhost/live/cam", "-f", "flv", "rtmp://localhost/hls/cam_480p"]);
    assert!(sim.logged("exec_push \"cam\": sh started (pid 101)"));
    // exec_publish runs once: its end is just logged.
    sim.app.child_exited(children[0].0, super::exec::Exit::Code(0), &sim.now);
    sim.run();
    p.vanish(&mut sim);
    assert_eq!(sim.signals, [(101, 15), (101, 18)], "the publisher left: exec gets SIGTERM (exec_kill_signal), then SIGCONT");
    let done = start_children(&mut sim, 200);
    assert_eq!(done[0].1, ["sh", "done", "cam"], "exec_publish_done");
    sim.app.child_output(children[1].0, b"frame=  10 fps=0.0\rlast words\n", &sim.now);
    sim.app.child_exited(children[1].0, super::exec::Exit::Code(255), &sim.now);
    sim.run();
    assert!(sim.logged("exec_push \"cam\": sh: last words"), "its output is logged");
    assert!(sim.logged("exec_push \"cam\": sh (pid 101) exited with code 255"));
    sim.advance(10_000);
    assert!(sim.spawns.is_empty(), "a child that was stopped is not respawned");
}

#[test]
fn a_failing_exec_respawns_with_growing_delays_and_starts_over_after_a_healthy_run() {
    let mut sim = Sim::new("rtmp { server { listen 1935; application live { live on; respawn_timeout 1s; exec sh -c false; } } }");
    let _p = publisher(&mut sim, "cam");
    let mut pid = 100;
    let mut id = start_children(&mut sim, pid)[0].0;
    let mut delays = vec![];
    for run_ms in [0, 0, 0, 0, 31_000, 0] {
        sim.advance(run_ms);
        sim.app.child_exited(id, super::exec::Exit::Code(1), &sim.now);
        sim.run();
        let died = sim.now.ms;
        while sim.spawns.is_empty() {
            sim.advance(100);
        }
        delays.push((sim.now.ms - died + 999) / 1000);
        pid += 1;
        id = start_children(&mut sim, pid)[0].0;
    }
    assert_eq!(delays, [1, 2, 4, 8, 1, 2], "seconds before each respawn (the tick is 1 s)");
    assert!(sim.logged("exited with code 1 after 0.0 s; respawning in 2.0 s"));
}

#[test]
fn a_hung_exec_is_restarted_and_pull_follows_its_players() {
    let mut sim = Sim::new(
        "rtmp { server { listen 1935; application live { live on; exec_stall_timeout 3s; \
         exec sh -i rtmp://localhost/live/$name rtmp://localhost/out/$name_lo; exec_pull sh pull $app $name; } \
         application out { live on; } } }",
    );
    let mut p = publisher(&mut sim, "cam");
    let (id, _) = start_children(&mut sim, 100)[0].clone();
    stream(&mut sim, &mut p, 0, 2);
    assert!(sim.signals.is_empty(), "not before exec_stall_timeout");
    // Its rendition is published and flows: fine.
    let mut lo = Peer::new(&mut sim);
    assert_eq!(lo.connect(&mut sim, "out"), ["NetConnection.Connect.Success"]);
    assert_eq!(lo.publish(&mut sim, "cam_lo"), ["NetStream.Publish.Start"]);
    for i in 0..100 {
        p.video(&mut sim, 2000 + i * 40, i % 25 == 0, false);
        lo.video(&mut sim, i * 40, i % 25 == 0, false);
        sim.advance(40);
    }
    assert!(sim.signals.is_empty(), "its output flows: {:?}", sim.signals);
    // The rendition stops while the source goes on: restarted.
    stream(&mut sim, &mut p, 6000, 5);
    assert_eq!(sim.signals, [(100, 15), (100, 18)]);
    assert!(sim.logged("its output has had no media for 3000 ms while its source had: restarting it"));
    sim.app.child_exited(id, super::exec::Exit::Signal(15), &sim.now);
    sim.advance(6000);
    assert_eq!(start_children(&mut sim, 300).len(), 1, "and started again");
    // exec_pull: while the stream has players.
    let v = player(&mut sim, "other");
    let pulls = start_children(&mut sim, 400);
    assert_eq!(pulls[0].1, ["sh", "pull", "live", "other"]);
    v.vanish(&mut sim);
    assert!(sim.signals.contains(&(400, 15)), "its last player left");
}

#[test]
fn a_ladder_transcodes_once_and_its_master_playlist_lists_what_was_measured() {
    let mut sim = Sim::new(
        "rtmp { server { listen 127.0.0.1:1935; application live { live on; hls on; hls_path /hls; hls_fragment 1s; \
         transcode_ffmpeg /bin/sh; transcode _lo 320x180 300k; } } }",
    );
    let mut p = publisher(&mut sim, "cam");
    let ladder = start_children(&mut sim, 100);
    assert_eq!(ladder.len(), 1, "one transcoder for the whole ladder");
    let argv = ladder[0].1.join(" ");
    assert!(argv.starts_with("/bin/sh -hide_banner") && argv.contains("-i rtmp://127.0.0.1:1935/live/cam "), "{argv}");
    assert!(argv.ends_with("-f flv rtmp://127.0.0.1:1935/live/cam_lo"), "{argv}");
    // Its rendition comes back (as ffmpeg would publish it, timestamps kept).
    stream(&mut sim, &mut p, 0, 3);
    let mut lo = publisher(&mut sim, "cam_lo");
    assert!(sim.spawns.is_empty(), "a rendition is not transcoded again");
    for i in 0..75u32 {
        let ts = 3000 + i * 40;
        p.video(&mut sim, ts, ts % 1000 == 0, false);
        p.audio(&mut sim, ts + 20, false);
        lo.video(&mut sim, ts, ts % 1000 == 0, false);
        lo.audio(&mut sim, ts + 20, false);
        sim.advance(40);
    }
    sim.advance(1000);
    let fs = sim.fs.borrow();
    let text = |f: &str| String::from_utf8_lossy(fs.files.get(f).unwrap_or_else(|| panic!("no {f}: {:?}", fs.files.keys()))).into_owned();
    let src = text("/hls/cam_src.m3u8");
    let rendition = text("/hls/cam_lo.m3u8");
    assert!(src.contains("#EXT-X-MEDIA-SEQUENCE:0") && src.contains("cam_src-3.ts"), "{src}");
    assert!(rendition.contains("#EXT-X-MEDIA-SEQUENCE:3\n") && rendition.contains("cam_lo-3.ts"), "numbered by the fragment grid: {rendition}");
    let master = text("/hls/cam.m3u8");
    let lines: Vec<&str> = master.lines().collect();
    assert_eq!(lines[3..].iter().filter(|l| !l.starts_with('#')).copied().collect::<Vec<_>>(), ["cam_src.m3u8", "cam_lo.m3u8"], "{master}");
    assert!(lines[3].starts_with("#EXT-X-STREAM-INF:BANDWIDTH=") && lines[3].contains("CODECS=\"avc1.42001e,mp4a.40.2\""), "{master}");
    drop(fs);
    assert!(sim.logged("transcode \"cam\": \"/hls/cam.m3u8\" lists the source and 1 renditions"));
    p.vanish(&mut sim);
    assert!(sim.signals.contains(&(100, 15)), "the ladder ends with its source");
}

#[test]
fn the_access_log_has_a_line_per_session_and_busy_closes_idle_clients() {
    let mut sim = Sim::new(
        "rtmp { log_format short $command|$app|$name|$args|$bytes_received|$session_time|$connection; \
         access_log logs/all.log; \
         server { listen 1935; ping 10s; busy on; application live { live on; access_log logs/live.log short; } \
                  application quiet { live on; access_log off; } } }",
    );
    let mut p = publisher(&mut sim, "s");
    let v = player(&mut sim, "s");
    stream(&mut sim, &mut p, 0, 2);
    let mut q = Peer::new(&mut sim);
    assert_eq!(q.connect(&mut sim, "quiet"), ["NetConnection.Connect.Success"]);
    let stranger = sim.accept();
    p.vanish(&mut sim);
    v.vanish(&mut sim);
    let lines: Vec<_> = sim.access_log.iter().map(|(f, l)| format!("{f} {l}")).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let recv = lines[0].split('|').nth(4).unwrap().parse::<u64>().unwrap();
    assert!(recv > 3000, "a publisher's bytes received: {lines:?}");
    assert_eq!(lines[0], format!("logs/live.log PUBLISH|live|s||{recv}|2|1\n"));
    assert!(lines[1].starts_with("logs/live.log PLAY|live|s||"), "{lines:?}");
    // busy: nothing in or out for a whole ping interval closes the client; the one that
    // never sent a byte is logged by its server's log, in nginx-rtmp-module's format.
    sim.advance(10_000);
    assert!(sim.logged("ping: not busy between pings"));
    assert!(sim.dropped.contains(&stranger));
    assert!(!sim.dropped.contains(&q.id), "its connect was its interval's input");
    sim.advance(10_000);
    assert!(sim.dropped.contains(&q.id), "then an interval with nothing");
    let last = &sim.access_log.last().unwrap().1;
    assert!(last.contains(" [") && last.contains("] NONE \"\" \"\" \"\" - 0 0 \"\" \"\" (1"), "{last}");
    assert_eq!(sim.access_log.last().unwrap().0, "logs/all.log");
    assert_eq!(sim.access_log.len(), 3, "the quiet application logs nothing");
    assert_eq!(health(&sim).faults, [0, 0, 0, 0, 2], "two clients closed as idle");
}

#[test]
fn a_players_keyframe_request_reaches_a_whip_publisher_at_most_every_500_ms() {
    let mut sim = Sim::new("rtmp { server { listen 1935; application live { live on; } } }");
    let mut p = Peer::of_kind(&mut sim, super::Kind::Whip);
    assert_eq!(p.connect(&mut sim, "live"), ["NetConnection.Connect.Success"]);
    assert_eq!(p.publish(&mut sim, "s"), ["NetStream.Publish.Start"]);
    p.video(&mut sim, 0, false, true);
    p.video(&mut sim, 0, true, false);
    let mut v = player(&mut sim, "s");
    let asked = |p: &mut Peer, sim: &mut Sim| {
        p.read(sim).iter().filter(|m| m.type_id == msg::COMMAND_AMF0 && m.payload.windows(msg::KEYFRAME_REQUEST.len()).any(|w| w == msg::KEYFRAME_REQUEST.as_bytes())).count()
    };
    assert_eq!(asked(&mut p, &mut sim), 0, "a player that starts from the GOP cache asks nothing");
    let ask = [crate::rtmp::amf::Value::str(msg::KEYFRAME_REQUEST), crate::rtmp::amf::Value::Number(0.0), crate::rtmp::amf::Value::Null];
    let msid = v.msid;
    v.command(&mut sim, msid, &ask);
    assert_eq!(asked(&mut p, &mut sim), 1, "a viewer lost a picture: the WHIP publisher is asked");
    v.command(&mut sim, msid, &ask);
    assert_eq!(asked(&mut p, &mut sim), 0, "not again within 500 ms");
    sim.advance(600);
    v.command(&mut sim, msid, &ask);
    assert_eq!(asked(&mut p, &mut sim), 1, "again after");
}
