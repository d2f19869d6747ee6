#!/usr/bin/perl
# VOD (nginx-rtmp-module's `play DIR`): ffmpeg and rtmpdump play an FLV recording and
# MP4 files (moov last, as ffmpeg writes it, and first, "faststart") in real time; a
# start point (rtmpdump -A) and ffmpeg's seek begin at the keyframe before it; the end of
# a file ends the play; a missing file gets NetStream.Play.StreamNotFound, or with live
# on, waits for a live stream; the first directory without the file is passed over.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Path qw(make_path);
use Time::HiRes qw(time);
use Test::Nginx::RTMP qw(wait_for probe decode_errors);
use Test::Nginx::RTMPClient;

my $bad = Test::Nginx::RTMP->new;
$bad->write_config("rtmp { server { listen 127.0.0.1:%%PORT_RTMP%%; application a { play ftp://example.com/vod; } } }");
my ($ok, $out) = $bad->test_config;
ok(!$ok && $out =~ /invalid value "ftp:\/\/example\.com\/vod" in "play" directive/, 'nginx -t refuses an ftp:// play source, naming it') or diag($out);

my $t = Test::Nginx::RTMP->new;
my $dir = $t->dir;
make_path("$dir/media", "$dir/empty", "$dir/tmp", "$dir/keep");
chmod 0755, $dir, "$dir/media", "$dir/empty";
chmod 0777, "$dir/tmp", "$dir/keep";
# 20 s of test pattern, a keyframe every second, H.264 + AAC.
my @enc = ('-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=30', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100', '-t', 20,
    '-c:v', 'libx264', '-preset', 'ultrafast', '-g', 30, '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '64k');
system('ffmpeg', '-hide_banner', '-v', 'error', @enc, '-y', "$dir/media/clip.flv") == 0 or BAIL_OUT('ffmpeg cannot make the FLV');
system('ffmpeg', '-hide_banner', '-v', 'error', @enc, '-y', "$dir/media/clip.mp4") == 0 or BAIL_OUT('ffmpeg cannot make the MP4');
system('ffmpeg', '-hide_banner', '-v', 'error', @enc, '-movflags', '+faststart', '-y', "$dir/media/fast.mp4") == 0 or BAIL_OUT('ffmpeg cannot make the MP4');
system('ffmpeg', '-hide_banner', '-v', 'error', @enc[0 .. 7], '-t', 2, @enc[10 .. $#enc], '-y', "$dir/media/short.flv") == 0 or BAIL_OUT('short FLV');
chmod 0644, glob("$dir/media/*");

$t->write_config(<<'CONF');
rtmp {
    server {
        listen 127.0.0.1:%%PORT_RTMP%%;
        application vod { play %%DIR%%/empty %%DIR%%/media; }
        application mixed { live on; play %%DIR%%/media; }
        application remote {
            play http://127.0.0.1:%%PORT_HTTP%%/none http://127.0.0.1:%%PORT_HTTP%%/media;
            play_temp_path %%DIR%%/tmp;
            play_local_path %%DIR%%/keep;
        }
    }
}
http {
    access_log %%DIR%%/http.log;
    server {
        listen 127.0.0.1:%%PORT_HTTP%%;
        location /media/ { alias %%DIR%%/media/; }
    }
}
CONF
$t->run;
my $url = 'rtmp://127.0.0.1:' . $t->port('RTMP');

# Plays $src with ffmpeg for $secs (stream copy): (video frames, seconds taken, file).
my $n = 0;
sub play {
    my ($src, $secs, @in) = @_;
    my $file = "$dir/out-" . ++$n . '.flv';
    my $t0 = time;
    system("timeout 30 ffmpeg -hide_banner -v error @in -i '$src' -t $secs -c copy -y $file >/dev/null 2>&1");
    return ((probe($file)->{video}{frames} // 0), time - $t0, $file);
}
sub first_video_pts {
    my ($file) = @_;
    my ($pts) = qx{ffprobe -v error -select_streams v -show_entries packet=pts_time -of csv=p=0 -read_intervals %+#1 $file} =~ /([\d.]+)/;
    return $pts // -1;
}

for my $case (['clip', 'an FLV recording'], ['mp4:clip.mp4', 'an MP4 (moov last)'], ['fast.mp4', 'an MP4 (faststart), by its extension']) {
    my ($name, $what) = @$case;
    my ($frames, $took, $file) = play("$url/vod/$name", 4);
    cmp_ok($frames, '>=', 110, sprintf('ffmpeg plays %s from play DIR: %d frames in 4 s of media', $what, $frames));
    cmp_ok($took, '>=', 2.5, sprintf('  in real time (%.1f s), not as fast as the disk', $took));
    is(decode_errors($file), '', '  and it decodes cleanly');
}
like($t->error_log, qr{play: file "\Q$dir\E/media/clip\.flv" from 0 ms}, 'the first directory without the file was passed over');

# A start point (play's start argument) and seek, as players send them.
# The first coded video frame's timestamp after play or seek (sequence headers left out).
sub first_frame {
    my ($c) = @_;
    while (my $m = $c->read_message(5)) {
        return $m->{ts} if $m->{type} == 9 && length($m->{body}) > 1 && substr($m->{body}, 1, 1) eq "\x01";
    }
    return -1;
}
for my $name ('clip', 'mp4:clip.mp4') {
    my $p = Test::Nginx::RTMPClient->new(port => $t->port('RTMP'));
    $p->connect_app('vod');
    my $msid = $p->create_stream;
    $p->command($msid, 'play', undef, $name, 10000);
    my $ts = first_frame($p);
    ok($ts >= 9000 && $ts <= 10000, "play $name from 10 s: it starts at the keyframe before ($ts ms)");
    $p->command($msid, 'seek', undef, 15500);
    my $v = $p->wait_command(5, 'onStatus');
    is(Test::Nginx::RTMPClient::code_of($v), 'NetStream.Seek.Notify', '  seek to 15.5 s: NetStream.Seek.Notify');
    # (What was sent before the seek may still be on its way.)
    my $after = -1;
    while (my $m = $p->read_message(5)) {
        next unless $m->{type} == 9 && length($m->{body}) > 1 && substr($m->{body}, 1, 1) eq "\x01";
        if ($m->{ts} >= 14000) { $after = $m->{ts}; last }
    }
    ok($after >= 15000 && $after <= 15500, "  and goes on from the keyframe before 15.5 s ($after ms)");
}
my (undef, undef, $sk) = play("$url/vod/mp4:clip.mp4", 2, '-ss', 12);
like($t->error_log, qr/play: seek to 12000 ms, from the keyframe at 12000 ms/, 'ffmpeg -ss 12 sends a seek, answered from the keyframe at 12 s');

# The end of a file ends the play (rtmpdump exits by itself: 0, or 2 when the last frame
# is short of the duration in the metadata by more than 0.1%, as its own check says).
my $t0 = time;
my $rc = system("timeout 20 rtmpdump -q -r $url/vod/short -o $dir/short-out.flv >/dev/null 2>&1") >> 8;
my $took = time - $t0;
ok(($rc == 0 || $rc == 2) && $took < 8, sprintf('a 2 s file plays to its end and the player is done (rtmpdump exit %d after %.1f s)', $rc, $took));
cmp_ok(probe("$dir/short-out.flv")->{video}{frames} // 0, '>=', 55, '  with all of its frames');
like($t->error_log, qr/play: the file ended/, '  (logged)');

# From an HTTP location: fetched into play_temp_path, kept in play_local_path.
my ($frames, $took2, $rf) = play("$url/remote/clip", 3);
cmp_ok($frames, '>=', 80, "play http://...: the file is fetched and played ($frames frames in 3 s of media)");
my $log = Test::Nginx::RTMP::slurp("$dir/http.log") // '';
like($log, qr{"GET /none/clip\.flv HTTP/1\.0" 404.*\n.*"GET /media/clip\.flv HTTP/1\.0" 200}, '  the first location (404) was passed over for the second');
ok(-s "$dir/keep/clip.flv" == -s "$dir/media/clip.flv", '  the whole file is kept in play_local_path');
my @temp = glob("$dir/tmp/*");
is(scalar @temp, 0, '  and nothing is left in play_temp_path');
($frames) = play("$url/remote/clip", 2);
my $gets = () = (Test::Nginx::RTMP::slurp("$dir/http.log") // '') =~ m{GET /media/clip\.flv}g;
ok($frames >= 50 && $gets == 1, "  played again from play_local_path, not fetched again ($frames frames, $gets GET)");
my $r = Test::Nginx::RTMPClient->new(port => $t->port('RTMP'));
$r->connect_app('remote');
is($r->play('nosuchfile'), 'NetStream.Play.StreamNotFound', '  a file no location has: NetStream.Play.StreamNotFound');
undef $r;

# Names that are no file.
my $c = Test::Nginx::RTMPClient->new(port => $t->port('RTMP'));
$c->connect_app('vod');
is($c->play('nosuchfile'), 'NetStream.Play.StreamNotFound', 'a missing file: NetStream.Play.StreamNotFound');
$c = Test::Nginx::RTMPClient->new(port => $t->port('RTMP'));
$c->connect_app('mixed');
is($c->play('notafile'), 'NetStream.Play.Start', 'with live on, a name that is no file waits for a live stream');
undef $c;

is(join("\n", $t->alerts), '', 'no alerts');
$t->stop;
done_testing;
