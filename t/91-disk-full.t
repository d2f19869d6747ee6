#!/usr/bin/perl
# A full disk under hls_path and record_path (a 24 MB tmpfs, in a mount namespace of
# nginx's own): the stream and its players go on; HLS and the recorder each say so once,
# not at every segment; nothing half-written is listed; when space returns HLS resumes
# after a discontinuity and the recording continues into the same file, which plays
# from start to end.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Test::Nginx::RTMP qw(wait_for slurp probe decode_errors);
use Test::Nginx::RTMPClient;
use Time::HiRes qw(time sleep);

plan skip_all => 'mounts a tmpfs: needs root' if $> != 0;
my $probe_ns = system('unshare -m true 2>/dev/null') == 0;
plan skip_all => 'no mount namespaces here' unless $probe_ns;

my $t = Test::Nginx::RTMP->new;
my $dir = $t->dir;
mkdir "$dir/media";
chmod 0755, $dir;
# nginx runs in a mount namespace with a small tmpfs on $dir/media (mounted before it
# starts; its workers inherit it).
open my $w, '>', "$dir/in-tmpfs.sh" or die;
print $w "#!/bin/sh\nmount -t tmpfs -o size=24m,mode=0777 tmpfs $dir/media && exec \"\$@\"\n";
close $w;
chmod 0755, "$dir/in-tmpfs.sh";
$t->{wrap} = ['unshare', '-m', '--propagation', 'private', "$dir/in-tmpfs.sh"];
$t->write_config(<<'CONF');
rtmp {
    access_log off;
    server {
        listen 127.0.0.1:%%PORT_RTMP%%;
        application live {
            live on;
            hls on;
            hls_path %%DIR%%/media/hls;
            hls_fragment 1s;
            hls_playlist_length 4s;
            record all;
            record_path %%DIR%%/media/rec;
        }
    }
}
CONF
$t->run;
my $master = $t->master_pid;
# What nginx sees of its tmpfs, from here.
my $media = "/proc/$master/root$dir/media";
ok(wait_for(sub { -d $media }, 5), 'nginx has its tmpfs') or BAIL_OUT('no tmpfs');
my $port = $t->port('RTMP');

my $pub = $t->ffmpeg_publish("rtmp://127.0.0.1:$port/live/s", 40, gop => 30, size => '640x360');
ok(wait_for(sub { (slurp("$media/hls/s.m3u8") // '') =~ /s-2\.ts/ }, 15), 'HLS and recording under way');
my $player = Test::Nginx::RTMPClient->new(port => $port);
$player->connect_app('live');
is($player->play('s'), 'NetStream.Play.Start', 'a player');

sub frames_for {
    my ($secs) = @_;
    my ($n, $end) = (0, time + $secs);
    while (time < $end) {
        my $m = $player->read_message(0.2) or next;
        $n++ if $m->{type} == 9;
    }
    return $n;
}
cmp_ok(frames_for(1), '>', 20, '  it plays');

# Waits for $cond, reading the player meanwhile (a player that stops reading is dropped).
sub wait_reading {
    my ($cond, $secs) = @_;
    my $end = time + $secs;
    while (time < $end) {
        return 1 if $cond->();
        frames_for(0.2);
    }
    return $cond->();
}

# Fill the disk.
system("dd if=/dev/zero of=$media/filler bs=1M count=64 2>/dev/null");
my $full_at = time;
my $frames = frames_for(12);
cmp_ok($frames, '>', 12 * 20, "the player goes on while the disk is full ($frames frames in 12 s)");
my $log = $t->error_log;
my $hls_lines = () = $log =~ /hls: .*(No space left on device)/g;
my $rec_lines = () = $log =~ /record: .*No space left on device/g;
ok($hls_lines >= 1 && $hls_lines <= 2, "HLS says so once, not at every segment ($hls_lines line(s) in 12 s of 1 s segments)") or diag($log =~ /(.*No space.*)/g);
ok($rec_lines >= 1 && $rec_lines <= 2, "the recorder says so once, then retries 10 s later ($rec_lines line(s))") or diag($log =~ /(.*No space.*)/g);
my $playlist = slurp("$media/hls/s.m3u8") // '';
# (hls_cleanup removes segments by age, as nginx-rtmp-module: with the playlist not
# rewritten for longer than hls_playlist_length, the oldest it lists may be gone; none
# that is there is half-written.)
my @listed = grep { -e "$media/hls/$_" } $playlist =~ /^(s-\d+\.ts)$/mg;
my $bad = grep { (probe("$media/hls/$_")->{video}{frames} // 0) < 25 } @listed;
is($bad, 0, sprintf('every segment the playlist lists that is on disk is whole and decodes (%d)', scalar @listed));

# Room again.
unlink "$media/filler";
my $freed = time;
ok(wait_reading(sub { $t->error_log =~ /hls: writing works again/ }, 6), 'HLS writes again once there is room');
ok(wait_reading(sub { (slurp("$media/hls/s.m3u8") // '') =~ /#EXT-X-DISCONTINUITY\n(#.*\n)*s-\d+\.ts/ }, 6),
    '  listed after a discontinuity');
my $size_then = -s "$media/rec/s.flv";
ok(wait_reading(sub { (-s "$media/rec/s.flv" // 0) > $size_then + 100_000 }, 25),
    sprintf('the recording continues into the same file (%d kB when room came back, then growing)', $size_then / 1024));
cmp_ok(frames_for(1), '>', 20, 'the player still plays');
ok(defined $t->reap($pub, 40), 'the publisher ends');
ok(wait_for(sub { $t->error_log =~ m{record: "[^"]*s\.flv" done} }, 5), 'the recording is completed');
my $p = probe("$media/rec/s.flv");
# (Frames from before the disk filled and from after the retry that found room.)
cmp_ok($p->{video}{frames} // 0, '>', 150, "  and plays from start to end ($p->{video}{frames} frames)");
is(decode_errors("$media/rec/s.flv"), '', '  without a decoding error');

$t->stop;
is(join("\n", $t->alerts), '', 'no alert, crit or emerg in the error log');
done_testing;
