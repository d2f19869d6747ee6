#!/usr/bin/perl
# WHEP benchmark, in a loopback-only network namespace (with a default route going nowhere,
# as t/71 has it): a 1280x720 30 fps H.264 (no B-frames) + AAC stream published over RTMP
# (bench/publish.pl, which logs when it sent each frame), then, in one run:
#   - latency, RTMP in -> WHEP out, against RTMP in -> RTMP out as the reference: a WHEP
#     viewer (GStreamer webrtcbin, t/data/whep-gst.py, jitter buffer 0) and an RTMP player
#     (bench/probe.pl) of the same stream at the same time; per picture, its arrival
#     (the WHEP viewer: its last RTP packet after SRTP) minus when the publisher sent it,
#     p50/p95, for pictures sent after the viewer's first one arrived. Decoding and
#     display are not included (the same for both).
#   - worker CPU per viewer: N WHEP viewers (webrtcbin, depayloading only), then N RTMP
#     players (probe.pl), of the same stream; the nginx worker's CPU (every thread: the
#     WebRTC sidecar included) per viewer-second, and whether every viewer got every
#     picture (no stall).
# nginx-rtmp-module has no WebRTC: the RTMP rows are the reference, and bench/run.pl puts
# them beside nginx-rtmp-module's.
#
#   bench/whep.pl [--viewers 20] [--window 10] [--keep]
# Needs: root (unshare -n), nginx, ffmpeg, GStreamer (python3-gi, gir1.2-gst-plugins-bad-1.0,
# gstreamer1.0-nice, gstreamer1.0-libav); the module built.

use strict;
use warnings;

BEGIN {
    if (!$ENV{NGX_RTMP_RS_NETNS}) {
        $ENV{NGX_RTMP_RS_NETNS} = 1;
        my $up = 'ip link set lo up && ip link add ngxv0 type veth peer name ngxv1 && ip addr add 10.99.0.1/24 dev ngxv0'
            . ' && ip link set ngxv0 up && ip link set ngxv1 up && ip route add default via 10.99.0.2 dev ngxv0';
        exec('unshare', '-n', 'sh', '-c', $up . ' && exec "$0" "$@"', $^X, $0, @ARGV) or die "unshare -n: $! (run as root)";
    }
}

use FindBin;
use lib "$FindBin::Bin/lib";
use Bench;
use Getopt::Long;
use Time::HiRes qw(time sleep);

my ($viewers, $window, $keep) = (20, 10, 0);
GetOptions('viewers=i' => \$viewers, 'window=i' => \$window, 'keep' => \$keep) or die;
my $root = $Bench::ROOT;
my ($input) = input_flv(bframes => 0);

sub pct {
    my ($p, @v) = @_;
    return 'n/a' unless @v;
    @v = sort { $a <=> $b } @v;
    return sprintf '%.0f', $v[int($p / 100 * $#v)];
}

# CPU of every thread of a process, in seconds (the sidecar is a thread of the worker).
sub cpu_all {
    my ($pid) = @_;
    my $ns = 0;
    for my $t (glob "/proc/$pid/task/*") {
        my ($n) = Bench::slurp("$t/schedstat") =~ /^(\d+)/;
        $ns += $n // 0;
    }
    return $ns / 1e9;
}

# "TS AT" lines (publish.pl's send log, probe.pl's and whep-gst.py's arrival logs).
sub times_of {
    my ($file) = @_;
    my %t;
    for (split /\n/, Bench::slurp($file)) {
        my ($ts, $at) = split ' ';
        $t{sprintf '%.0f', $ts} //= $at if defined $at;
    }
    return \%t;
}

my $extra = 'whep_audio_bitrate 64k;';
my $rtmp_block = live_rtmp('');
my $n = start_nginx('ngx-rtmp-rs', 'whep', $rtmp_block);
# The HTTP side, added to its configuration, then a reload.
my $http = $n->{port} + 1;
my $udp = $n->{port} + 2;
{
    my $conf = Bench::slurp("$n->{dir}/nginx.conf");
    $conf .= "http { access_log off; $extra whip_udp_listen 127.0.0.1:$udp; whip_max_sessions_per_ip 1000; whip_max_sessions 1000;"
        . " server { listen 127.0.0.1:$http; location ~ /whep { whep_play live; } } }\n";
    open my $f, '>', "$n->{dir}/nginx.conf" or die;
    print $f $conf;
    close $f;
    system('nginx', '-p', "$n->{dir}/", '-c', "$n->{dir}/nginx.conf", '-s', 'reload') == 0 or die 'reload failed';
    sleep 1.5;
    chomp(my $master = Bench::slurp("$n->{dir}/nginx.pid"));
    ($n->{worker}) = sort { $b <=> $a } map { /(\d+)/ ? $1 : () } qx{pgrep -P $master};
}
my $dir = $n->{dir};
my $url = "http://127.0.0.1:$http/bench/whep";
my $secs = 2 * $window + 25;
spawn("$dir/publish.out", "$root/bench/publish.pl", $input, '127.0.0.1', $n->{port}, 'live', 'bench', "$dir/send.log");
sleep 3;

# --- latency -------------------------------------------------------------------------------
my $probe = spawn("$dir/probe.out", $^X, "$FindBin::Bin/probe.pl", '127.0.0.1', $n->{port}, 'live', 'bench', "$dir/probe.log", $window + 3);
my $viewer = spawn("$dir/whep.out", '/usr/bin/python3', "$root/t/data/whep-gst.py", $url, $window + 2, '--no-decode', '--latency', 0, '--log-received', "$dir/whep.log");
waitpid($_, 0) for $probe, $viewer;
my $sent = times_of("$dir/send.log");
my %lat;
for ([rtmp => "$dir/probe.log"], [whep => "$dir/whep.log"]) {
    my ($what, $file) = @$_;
    my $got = times_of($file);
    # Pictures sent after the viewer's first arrived: the GOP cache's burst at the start
    # (pictures sent up to a GOP before) is the start, not latency.
    my ($joined) = sort { $a <=> $b } values %$got;
    $lat{$what} = [map { defined $sent->{$_} && $sent->{$_} >= $joined ? (($got->{$_} - $sent->{$_}) * 1000) : () } keys %$got];
}

# --- CPU per viewer ------------------------------------------------------------------------
sub load {
    my ($what) = @_;
    my @pids = map {
        $what eq 'whep'
            ? spawn("$dir/v-$what-$_.out", '/usr/bin/python3', "$root/t/data/whep-gst.py", $url, $window + 6, '--no-decode')
            : spawn("$dir/v-$what-$_.out", $^X, "$FindBin::Bin/probe.pl", '127.0.0.1', $n->{port}, 'live', 'bench', "$dir/v-$what-$_.log", $window + 6)
    } 1 .. $viewers;
    sleep 4;
    my ($c0, $t0) = (cpu_all($n->{worker}), time);
    sleep $window;
    my ($c1, $t1) = (cpu_all($n->{worker}), time);
    waitpid($_, 0) for @pids;
    my @frames = map {
        $what eq 'whep'
            ? ((Bench::slurp("$dir/v-$what-$_.out") =~ /counts video=(\d+)/)[0] // 0)
            : scalar(() = Bench::slurp("$dir/v-$what-$_.log") =~ /\n/g)
    } 1 .. $viewers;
    my $expect = 30 * ($window + 6) * 0.9;
    return { ms => ($c1 - $c0) * 1000 / ($t1 - $t0) / $viewers, full => scalar(grep { $_ >= $expect } @frames), min => (sort { $a <=> $b } @frames)[0] };
}
my $idle0 = cpu_all($n->{worker});
sleep 3;
my $idle = (cpu_all($n->{worker}) - $idle0) * 1000 / 3;
my %cpu = (whep => load('whep'), rtmp => load('rtmp'));
stop_nginx($n, $keep);

printf "WHEP benchmark: 1280x720 30 fps H.264 + AAC over RTMP, loopback, %d s windows\n\n", $window;
printf "%-28s %14s %10s\n", 'latency (send -> arrival)', 'p50/p95 ms', 'pictures';
printf "%-28s %14s %10d\n", 'RTMP in -> RTMP player', pct(50, @{ $lat{rtmp} }) . '/' . pct(95, @{ $lat{rtmp} }), scalar @{ $lat{rtmp} };
printf "%-28s %14s %10d\n\n", 'RTMP in -> WHEP viewer', pct(50, @{ $lat{whep} }) . '/' . pct(95, @{ $lat{whep} }), scalar @{ $lat{whep} };
printf "worker CPU with the publisher only: %.1f ms/s\n", $idle;
printf "%-28s %22s %18s\n", "$viewers viewers", 'worker CPU ms/s/viewer', 'every picture';
for (['RTMP players', 'rtmp'], ['WHEP viewers', 'whep']) {
    my $c = $cpu{ $_->[1] };
    printf "%-28s %22.2f %12d of %d (fewest %d)\n", $_->[0], $c->{ms} - $idle / $viewers, $c->{full}, $viewers, $c->{min};
}
