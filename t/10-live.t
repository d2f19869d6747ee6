#!/usr/bin/perl
# RTMP live with real clients: ffmpeg publishes (H.264 + AAC), ffmpeg, rtmpdump and a
# protocol-level test client play; what they receive decodes. One publisher per stream is
# shared by all checks to keep the run short.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Test::Nginx::RTMP qw(wait_for probe decode_errors);
use Test::Nginx::RTMPClient;
use Time::HiRes qw(time sleep);

my $t = Test::Nginx::RTMP->new;
$t->write_config(<<'CONF');
rtmp {
    server {
        listen 127.0.0.1:%%PORT_RTMP%%;
        chunk_size 4096;
        # (The player waiting for live/late sends nothing while live/a is published, 14 s
        # and ffmpeg's start-up: 15 s was too close on a loaded machine.)
        timeout 40s;
        application live {
            live on;
            publish_notify on;
        }
        application other {
            live on;
        }
        application secure {
            live on;
            allow publish 127.0.0.1;
            deny publish all;
            allow play 127.0.0.1;
            deny play all;
        }
    }
}
CONF
$t->run;
my $port = $t->port('RTMP');
my $url = "rtmp://127.0.0.1:$port";
my $dir = $t->dir;
my ($worker) = $t->worker_pids;

sub client { Test::Nginx::RTMPClient->new(port => $port, @_) }

# --- an unknown application is refused ------------------------------------------------
my $c = client();
is($c->connect_app('nosuchapp'), 'NetConnection.Connect.Rejected', 'connect to an unknown application is rejected');
ok($c->closed(2), '  and the connection closed');

# --- publish with ffmpeg ----------------------------------------------------------------
my $pub = $t->ffmpeg_publish("$url/live/a", 14, gop => 60);
my $pub_b = $t->ffmpeg_publish("$url/other/b", 14, gop => 30, size => '160x120');
ok(wait_for(sub { $t->error_log =~ /publish: "live\/a"/ && $t->error_log =~ /publish: "other\/b"/ }, 15),
    'ffmpeg publishes live/a and other/b');

# A player of a stream that does not exist yet waits for it (idle streams).
my $early = client();
$early->connect_app('live');
is($early->play('late'), 'NetStream.Play.Start', 'playing a stream nobody publishes yet is accepted');

sleep 2.5;    # into the second GOP of live/a (2 s keyframe interval)

# --- a late player starts at once, on a keyframe (GOP cache) --------------------------
my $p = client();
is($p->connect_app('live'), 'NetConnection.Connect.Success', 'a player connects');
my $t0 = time;
is($p->play('a'), 'NetStream.Play.Start', 'play live/a: NetStream.Play.Start');
my (@video, $meta_first, $saw_meta);
while (my $m = $p->read_message(3)) {
    if ($m->{type} == 18) {
        my ($name) = Test::Nginx::RTMPClient::amf_decode($m->{body});
        $saw_meta = 1 if $name eq 'onMetaData';
    }
    if ($m->{type} == 9) {
        $meta_first //= $saw_meta ? 1 : 0;
        push @video, $m;
        last if @video >= 3;
    }
}
ok($meta_first, 'metadata comes before any video');
is(unpack('H4', $video[0]{body}), '1700', 'then the AVC sequence header');
is(unpack('H4', $video[1]{body}), '1701', 'then a keyframe');
my $wait = $video[1]{at} - $t0;
ok($wait < 0.5, sprintf('the first frame arrives in %.0f ms, well under the 2 s keyframe interval', $wait * 1000));
undef $p;

# --- ffmpeg and rtmpdump play, and what they get decodes -------------------------------
my $ff = $t->spawn("$dir/play-ffmpeg.log", 'ffmpeg', '-hide_banner', '-loglevel', 'error', '-i', "$url/live/a",
    '-t', '3', '-c', 'copy', '-f', 'flv', "$dir/ffmpeg.flv");
my $rd = $t->spawn("$dir/play-rtmpdump.log", 'rtmpdump', '-q', '--live', '-r', "$url/live/a", '-o', "$dir/rtmpdump.flv");
my $ffb = $t->spawn("$dir/play-b.log", 'ffmpeg', '-hide_banner', '-loglevel', 'error', '-i', "$url/other/b",
    '-t', '3', '-c', 'copy', '-f', 'flv', "$dir/b.flv");

# --- a second publisher of a busy stream is refused -------------------------------------
my $second = client();
$second->connect_app('live');
is($second->publish('a'), 'NetStream.Publish.BadName', 'a second publisher of live/a gets NetStream.Publish.BadName');
ok($second->closed(2), '  and is disconnected');

# --- allow / deny -----------------------------------------------------------------------
my $ok_pub = client();
$ok_pub->connect_app('secure');
is($ok_pub->publish('s'), 'NetStream.Publish.Start', 'allow publish 127.0.0.1: publishing from 127.0.0.1 works');
my $denied = client(local => '127.0.0.2');
$denied->connect_app('secure');
is($denied->publish('t'), 'NetStream.Publish.Unauthorized', 'deny publish all: publishing from 127.0.0.2 is refused');
my $denied_play = client(local => '127.0.0.2');
$denied_play->connect_app('secure');
is($denied_play->play('s'), 'NetStream.Play.Forbidden', 'deny play all: playing from 127.0.0.2 is refused');
my $ok_play = client();
$ok_play->connect_app('secure');
is($ok_play->play('s'), 'NetStream.Play.Start', 'allow play 127.0.0.1: playing from 127.0.0.1 works');
undef $_ for $ok_pub, $denied, $denied_play, $ok_play;

is($t->reap($ff, 15), 0, 'ffmpeg played 3 s of live/a');
my $got = probe("$dir/ffmpeg.flv");
is($got->{video}{codec}, 'h264', '  video is H.264');
is($got->{audio}{codec}, 'aac', '  audio is AAC');
ok($got->{video}{frames} >= 80, "  $got->{video}{frames} video frames decoded (30 fps)");
ok($got->{audio}{frames} >= 100, "  $got->{audio}{frames} audio frames decoded");
is(decode_errors("$dir/ffmpeg.flv"), '', '  without decode errors');
my $first_key = qx{ffprobe -v error -select_streams v -show_entries frame=key_frame -read_intervals %+#1 -of csv=p=0 $dir/ffmpeg.flv};
like($first_key, qr/^1/, '  and its first video frame is a keyframe');

is($t->reap($ffb, 15), 0, 'at the same time ffmpeg played other/b, a second application');
is(probe("$dir/b.flv")->{video}{codec}, 'h264', '  and got its video');

# --- the publisher leaves: players are told; the stream can be published again --------
is($t->reap($pub, 20), 0, 'the ffmpeg publisher of live/a finished');
ok(wait_for(sub { $t->error_log =~ /unpublish: "live\/a"/ }, 3), 'the stream was unpublished');
ok(defined $t->reap($rd, 8), 'rtmpdump ended when the publisher left');
my $rd_got = probe("$dir/rtmpdump.flv");
ok(($rd_got->{video}{frames} // 0) >= 150, "rtmpdump received $rd_got->{video}{frames} video frames");
is(decode_errors("$dir/rtmpdump.flv"), '', '  without decode errors');

my $pub2 = $t->ffmpeg_publish("$url/live/late", 4);
my ($published, $key_after);
while (my $m = $early->read_message(6)) {
    if ($m->{type} == 20) {
        my @v = Test::Nginx::RTMPClient::amf_decode($m->{body});
        $published = 1 if ($v[3]{code} // '') eq 'NetStream.Play.PublishNotify';
    }
    if ($m->{type} == 9 && unpack('H4', $m->{body}) eq '1701') { $key_after = 1; last }
}
ok($published, 'the waiting player is told when live/late is published');
ok($key_after, '  and receives its video from a keyframe');
is($t->reap($pub2, 10), 0, 'the publisher of live/late finished');

my $again = $t->ffmpeg_publish("$url/live/a", 2);
is($t->reap($again, 10), 0, 'live/a can be published again after its publisher left');
$t->reap($pub_b, 20);

is(join(',', $t->worker_pids), $worker, 'the same worker served it all');
ok($t->stop, 'nginx stops');
is(join("\n", $t->alerts), '', 'no alert, crit or emerg in the error log');

done_testing;
