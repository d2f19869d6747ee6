#!/usr/bin/perl
# nginx -s reload every 2 s, ten times, under load: one ffmpeg publisher with HLS and a
# recording, 50 RTMP players (in a process of their own). No player is disconnected or
# stalls, the HLS media sequence never goes back, the recording is whole, nothing is
# logged at alert. (A new player finding a stream that lives on in an old worker is the
# multi-worker issue's.)

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
$t->stop;
is(join("\n", $t->alerts), '', 'no alert, crit or emerg in the error log');
done_testing;
