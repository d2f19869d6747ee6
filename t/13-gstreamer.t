#!/usr/bin/perl
# GStreamer as broadcaster (rtmp2sink) and as player (rtmp2src): what each side gets decodes.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Test::Nginx::RTMP qw(wait_for probe decode_errors);

plan skip_all => 'GStreamer rtmp2 elements not installed'
    unless qx{gst-inspect-1.0 rtmp2sink 2>/dev/null} && qx{gst-inspect-1.0 rtmp2src 2>/dev/null};

my $t = Test::Nginx::RTMP->new;
$t->write_config(<<'CONF');
rtmp {
    server {
        listen 127.0.0.1:%%PORT_RTMP%%;
        application live { live on; }
    }
}
CONF
$t->run;
my $url = 'rtmp://127.0.0.1:' . $t->port('RTMP') . '/live';
my $dir = $t->dir;

# GStreamer publishes H.264 + AAC for 6 s; ffmpeg plays 2 s of it.
my $gst = $t->spawn("$dir/gst-publish.log", 'gst-launch-1.0', '-q',
    'videotestsrc', 'is-live=true', 'num-buffers=180', '!', 'video/x-raw,width=320,height=240,framerate=30/1', '!',
    'x264enc', 'tune=zerolatency', 'key-int-max=30', 'speed-preset=ultrafast', '!', 'h264parse', '!',
    'flvmux', 'name=m', 'streamable=true', '!', "rtmp2sink", "location=$url/gst",
    'audiotestsrc', 'is-live=true', 'num-buffers=258', '!', 'audioconvert', '!', 'avenc_aac', '!', 'aacparse', '!', 'm.');
ok(wait_for(sub { $t->error_log =~ /publish: "live\/gst"/ }, 8), 'GStreamer (rtmp2sink) publishes');
my $ff = $t->spawn("$dir/ffmpeg-play.log", 'ffmpeg', '-hide_banner', '-loglevel', 'error', '-i', "$url/gst",
    '-t', '2', '-c', 'copy', '-f', 'flv', "$dir/from-gst.flv");
is($t->reap($ff, 15), 0, 'ffmpeg plays it');
my $n = probe("$dir/from-gst.flv");
is($n->{video}{codec}, 'h264', '  it gets H.264');
ok(($n->{video}{frames} // 0) >= 50, "  $n->{video}{frames} video frames decoded");
ok(($n->{audio}{frames} // 0) >= 50 && $n->{audio}{codec} eq 'aac', "  $n->{audio}{frames} AAC frames decoded");
# GStreamer's flvmux itself now and then gives two AAC frames the same millisecond (seen
# muxing straight to a file, no server involved), which ffmpeg reports as non-monotonic
# DTS; that is the source's timing, passed through faithfully, not a decode error.
# (ffmpeg folds repeats of that note into "Last message repeated N times" lines.)
is(join('', grep { !/non monotonically increasing dts|^\s*Last message repeated \d+ times/ } split /^/, decode_errors("$dir/from-gst.flv")), '',
    '  without decode errors');
is($t->reap($gst, 15), 0, 'the GStreamer publisher finished cleanly');

# ffmpeg publishes; GStreamer (rtmp2src) plays and decodes.
my $pub = $t->ffmpeg_publish("$url/ff", 8, gop => 30);
ok(wait_for(sub { $t->error_log =~ /publish: "live\/ff"/ }, 5), 'ffmpeg publishes');
sleep 1;
my $decode = $t->spawn("$dir/gst-decode.log", 'gst-launch-1.0', '-q', 'rtmp2src', "location=$url/ff", '!',
    'flvdemux', 'name=d', 'd.video', '!', 'queue', '!', 'h264parse', '!', 'avdec_h264', '!',
    'fakesink', 'num-buffers=60', 'sync=false');
is($t->reap($decode, 15), 0, 'GStreamer (rtmp2src) plays and decodes 60 H.264 frames');
my $save = $t->spawn("$dir/gst-save.log", 'timeout', '-s', 'INT', '3', 'gst-launch-1.0', '-q', '-e',
    'rtmp2src', "location=$url/ff", '!', 'filesink', "location=$dir/gst.flv");
$t->reap($save, 10);
$n = probe("$dir/gst.flv");
ok(($n->{video}{frames} // 0) >= 40 && ($n->{audio}{frames} // 0) >= 40,
    "  what it receives holds $n->{video}{frames} video and $n->{audio}{frames} audio frames");
is(decode_errors("$dir/gst.flv"), '', '  without decode errors');
$t->reap($pub, 15);

ok($t->stop, 'nginx stops');
is(join("\n", $t->alerts), '', 'no alert, crit or emerg in the error log');

done_testing;
