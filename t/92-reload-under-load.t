#!/usr/bin/perl
# nginx -s reload every 2 s, ten times, under load: one ffmpeg publisher with HLS and a
# recording, 50 RTMP players (in a process of their own). No player is disconnected or
# stalls, the HLS media sequence never goes back, the recording is whole, nothing is
# logged at alert. (A new player finding a stream that lives on in an old worker is the
# multi-worker issue's.) Then the worker is killed with SIGKILL under a publisher and 10
# players: they see their connections end, the master's new worker takes a publisher and
# a player at once, and the playlist left behind lists only whole segments.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Test::Nginx::RTMP qw(wait_for slurp probe decode_errors);
use Test::Nginx::RTMPClient;
use IO::Select;
use Time::HiRes qw(time sleep);

my $PLAYERS = 50;
my $t = Test::Nginx::RTMP->new;
my $dir = $t->dir;
chmod 0777, $dir;
$t->write_config(<<'CONF');
rtmp {
    access_log off;
    server {
        listen 127.0.0.1:%%PORT_RTMP%%;
        application live {
            live on;
            hls on;
            hls_path %%DIR%%/hls;
            hls_fragment 1s;
            hls_playlist_length 6s;
            record all;
            record_path %%DIR%%;
        }
    }
}
CONF
$t->run;
my $port = $t->port('RTMP');
my $pub = $t->ffmpeg_publish("rtmp://127.0.0.1:$port/live/s", 34, gop => 30);
ok(wait_for(sub { (slurp("$dir/hls/s.m3u8") // '') =~ /s-1\.ts/ }, 15), 'a publisher with HLS and a recording');

# The players: connected and playing here, then read by a child that writes, once a
# second, how many are open and the longest any went without a byte.
my @players;
for (1 .. $PLAYERS) {
    my $c = Test::Nginx::RTMPClient->new(port => $port);
    $c->connect_app('live');
    $c->play('s') eq 'NetStream.Play.Start' or last;
    push @players, $c->sock;
}
is(scalar @players, $PLAYERS, "$PLAYERS players");
my $status = "$dir/players";
my $reader = fork // die;
if (!$reader) {
    $SIG{TERM} = $SIG{INT} = sub { POSIX::_exit(0) };
    my $sel = IO::Select->new(@players);
    my %last = map { fileno($_) => time } @players;
    my ($closed, $worst) = (0, 0);
    my $next = time + 1;
    while (1) {
        for my $s ($sel->can_read(0.05)) {
            my $n = sysread($s, my $buf, 65536);
            if (!$n) { $closed++; $sel->remove($s); next }
            my $now = time;
            my $gap = $now - $last{ fileno $s };
            $worst = $gap if $gap > $worst;
            $last{ fileno $s } = $now;
        }
        if (time >= $next) {
            $next += 1;
            # (and the one waiting longest right now)
            for my $s ($sel->handles) { my $g = time - $last{ fileno $s }; $worst = $g if $g > $worst }
            open my $f, '>', "$status.tmp" or die;
            printf $f "%d %d %.3f\n", $sel->count, $closed, $worst;
            close $f;
            rename "$status.tmp", $status;
        }
    }
}
push @{ $t->{children} }, $reader;
ok(wait_for(sub { -s $status }, 5), '  read by a process of their own');

# Ten reloads, 2 s apart, watching the HLS media sequence meanwhile.
my ($seq_back, $last_seq, @seqs) = (0, -1);
my @old = $t->worker_pids;
for my $i (1 .. 10) {
    $t->reload;
    my $end = time + 2;
    while (time < $end) {
        my ($seq) = (slurp("$dir/hls/s.m3u8") // '') =~ /#EXT-X-MEDIA-SEQUENCE:(\d+)/;
        if (defined $seq) {
            $seq_back++ if $seq < $last_seq;
            $last_seq = $seq if $seq > $last_seq;
            push @seqs, $seq;
        }
        sleep 0.1;
    }
}
my ($open, $closed, $worst) = split ' ', slurp($status);
is($closed, 0, "no player was disconnected by ten reloads ($open open)");
cmp_ok($worst, '<', 1.0, sprintf('  none went a second without data (longest gap %d ms)', $worst * 1000));
is($seq_back, 0, "the HLS media sequence never went back ($seqs[0] to $seqs[-1])");
isnt(join(',', $t->worker_pids), join(',', @old), '  and the workers were replaced');

ok(defined $t->reap($pub, 40), 'the publisher ends');
ok(wait_for(sub { $t->error_log =~ m{record: "[^"]*s\.flv" done} }, 8), 'the recording is completed');
my $p = probe("$dir/s.flv");
cmp_ok($p->{video}{frames} // 0, '>', 30 * 28, "  whole ($p->{video}{frames} frames of 34 s at 30 fps)");
is(decode_errors("$dir/s.flv"), '', '  and decodes cleanly');
kill 'TERM', $reader;

# --- a worker killed with SIGKILL under load ------------------------------------------
my $pub2 = $t->ffmpeg_publish("rtmp://127.0.0.1:$port/live/k", 30, gop => 30);
ok(wait_for(sub { (slurp("$dir/hls/k.m3u8") // '') =~ /k-2\.ts/ }, 15), 'a second publisher, with HLS');
my @victims = map { my $c = Test::Nginx::RTMPClient->new(port => $port); $c->connect_app('live'); $c->play('k'); $c } 1 .. 10;
my ($victim) = $t->worker_pids;
kill 'KILL', $victim;
my $killed = time;
my $seen_end = 0;
for my $c (@victims) {
    my $end = time + 3;
    while (time < $end) {
        my $m = $c->read_message(0.2);
        if (!$m && $c->closed) { $seen_end++; last }
    }
}
is($seen_end, 10, sprintf('SIGKILL of the worker: its 10 players see their connection end (within %.1f s), no hang', time - $killed));
ok(defined $t->reap($pub2, 5), '  and so does its publisher');
ok(wait_for(sub { my @w = $t->worker_pids; @w == 1 && $w[0] != $victim }, 5), 'the master starts a new worker');
my $pub3 = $t->ffmpeg_publish("rtmp://127.0.0.1:$port/live/after", 6, gop => 30);
my $t3 = time;
ok(wait_for(sub { $t->error_log =~ m{publish: "live/after"} }, 8), sprintf('  which takes a new publisher at once (%.1f s)', time - $t3));
my $after = Test::Nginx::RTMPClient->new(port => $port);
$after->connect_app('live');
is($after->play('after'), 'NetStream.Play.Start', '  and a player');
my $video = 0;
for (1 .. 100) { my $m = $after->read_message(0.1) or next; $video++ if $m->{type} == 9; last if $video > 10 }
cmp_ok($video, '>', 10, "  which gets video ($video frames)");
# What the killed worker left: a playlist that parses, listing only whole segments.
my $pl = slurp("$dir/hls/k.m3u8") // '';
like($pl, qr/^#EXTM3U\n.*#EXT-X-TARGETDURATION:\d+\n/s, 'the killed worker left a whole playlist');
my @segs = $pl =~ /^(k-\d+\.ts)$/mg;
my $broken = grep { (probe("$dir/hls/$_")->{video}{frames} // 0) < 25 || decode_errors("$dir/hls/$_") ne '' } @segs;
is($broken, 0, sprintf('  every one of its %d segments listed decodes whole', scalar @segs));
$t->reap($pub3, 10);
$t->stop;
# (The master's own line about the killed worker is an alert; nothing else may be.)
is(join("\n", grep { !/worker process $victim exited on signal 9/ } $t->alerts), '', 'no other alert, crit or emerg in the error log');
done_testing;
