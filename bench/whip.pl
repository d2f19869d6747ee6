#!/usr/bin/perl
# WHIP benchmark: a WebRTC publisher (GStreamer webrtcbin: x264 640x360 30 fps + Opus, the
# client t/data/whip-gst.py) into ngx-rtmp-rs, and an RTMP player (bench/probe.pl) of the
# stream, inside a loopback-only network namespace. Per run:
#   - POST to first frame: from the start of the POST to the first picture at the RTMP
#     player (the player waits for the stream before it is published);
#   - publish-to-play latency p50/p95/p99: each picture's arrival at the player minus when
#     it left the publisher's encoder (same clock), pictures paired with the encoder's
#     frames by their timestamps (RTMP timestamps against the encoder's PTS).
# nginx-rtmp-module has no WebRTC ingest: there is nothing to put beside these figures
# (bench/run.pl gives both modules' RTMP publish-to-play latency on the same machine).
#
#   bench/whip.pl [--runs 3] [--seconds 15]
# Needs: root (unshare -n), nginx, GStreamer (python3-gi, gir1.2-gst-plugins-bad-1.0,
# gstreamer1.0-nice); the module built.

use strict;
use warnings;

BEGIN {
    if (!$ENV{NGX_RTMP_RS_NETNS}) {
        $ENV{NGX_RTMP_RS_NETNS} = 1;
        exec('unshare', '-n', 'sh', '-c', 'ip link set lo up && exec "$0" "$@"', $^X, $0, @ARGV)
            or die "unshare -n: $! (run as root)";
    }
}

use FindBin;
use lib "$FindBin::Bin/lib";
use Bench;
use Getopt::Long;
use File::Path qw(make_path remove_tree);
use Time::HiRes qw(time sleep);

my ($runs, $seconds, $keep) = (3, 15, 0);
GetOptions('runs=i' => \$runs, 'seconds=i' => \$seconds, 'keep' => \$keep) or die;
my $root = $Bench::ROOT;

sub percentile {
    my ($p, @v) = @_;
    return 'n/a' unless @v;
    @v = sort { $a <=> $b } @v;
    return sprintf '%.0f', $v[int(($#v) * $p / 100 + 0.5)];
}

# The frame at a PTS offset (ms; RTMP timestamps are whole milliseconds, truncated).
sub find_pts {
    my ($by, $d) = @_;
    return $by->{$d} // $by->{$d + 1} // $by->{$d - 1};
}

sub one_run {
    my ($i) = @_;
    my $dir = "$Bench::WORK/whip-$i";
    remove_tree($dir);
    make_path($dir);
    my $base = 21000 + int(rand(20000));
    my ($rtmp, $http, $udp) = ($base, $base + 1, $base + 2);
    open my $cf, '>', "$dir/nginx.conf" or die;
    print $cf <<"CONF";
load_module $root/target/release/libngx_rtmp_rs.so;
error_log $dir/error.log info;
pid $dir/nginx.pid;
worker_processes 1;
events { worker_connections 1024; }
rtmp { server { listen 127.0.0.1:$rtmp; application live { live on; } } }
http {
    access_log off;
    whip_udp_listen 127.0.0.1:$udp;
    server { listen 127.0.0.1:$http; location ~ /whip { whip_publish live; } }
}
CONF
    close $cf;
    system('nginx', '-p', "$dir/", '-c', "$dir/nginx.conf") == 0 or die 'nginx failed';
    sleep 0.5;
    my @kids;
    push @kids, Bench::spawn("$dir/probe.out", $^X, "$FindBin::Bin/probe.pl", '127.0.0.1', $rtmp, 'live', 'bench', "$dir/probe.log", $seconds + 8);
    sleep 0.5;
    push @kids, Bench::spawn("$dir/gst.out", '/usr/bin/python3', "$root/t/data/whip-gst.py",
        "http://127.0.0.1:$http/bench/whip", $seconds, '--log-sent', "$dir/sent.log");
    waitpid($_, 0) for @kids;
    system('nginx', '-p', "$dir/", '-c', "$dir/nginx.conf", '-s', 'stop');
    sleep 0.5;

    my ($post, @sent);
    for (split /\n/, Bench::slurp("$dir/sent.log")) {
        if (/^post (\S+)/) { $post = $1 }
        elsif (/^(\d+) (\S+) (\d) (\S+)/) { push @sent, { at => $2, key => $3, pts => $4 } }
    }
    my @got = map { my @f = split ' '; { ts => $f[0], at => $f[1] } } grep { !/ 1$/ } split /\n/, Bench::slurp("$dir/probe.log");
    my %r = (first => 'n/a', lat => 'n/a', frames => scalar @got, ok => 0);
    return \%r unless $post && @got && @sent;
    $r{first} = sprintf '%.0f', ($got[0]{at} - $post) * 1000;
    # Pairing: the first picture received is a keyframe sent before it arrived; the one
    # whose encoder timestamps (PTS) match the RTMP timestamps of the pictures received
    # after it (to the millisecond) is it. Then each picture is paired by its PTS.
    my ($best, $best_n) = (undef, -1);
    for my $j (grep { $sent[$_]{key} && $sent[$_]{at} <= $got[0]{at} } 0 .. $#sent) {
        my %by_pts = map { (sprintf('%.0f', $_->{pts} - $sent[$j]{pts}) => $_) } @sent[$j .. $#sent];
        my $n = grep { find_pts(\%by_pts, $_->{ts} - $got[0]{ts}) } @got;
        ($best, $best_n) = ($j, $n) if $n > $best_n;
    }
    return \%r unless defined $best;
    my %by_pts = map { (sprintf('%.0f', $_->{pts} - $sent[$best]{pts}) => $_) } @sent[$best .. $#sent];
    my @lat = map { my $s = find_pts(\%by_pts, $_->{ts} - $got[0]{ts}); $s ? (($_->{at} - $s->{at}) * 1000) : () } @got;
    $r{lat} = join('/', map { percentile($_, @lat) } 50, 95, 99);
    $r{paired} = scalar @lat;
    $r{ok} = @lat >= 0.9 * @got;
    remove_tree($dir) unless $keep;
    return \%r;
}

printf "%-4s %-24s %10s %18s %8s  %s\n", 'run', 'path', 'POST->1st', 'latency p50/95/99', 'pictures', 'pairing';
for my $i (1 .. $runs) {
    my $r = one_run($i);
    printf "%-4d %-24s %8s ms %15s ms %8d  %s\n", $i, 'WHIP -> ngx-rtmp-rs -> RTMP', $r->{first}, $r->{lat}, $r->{frames},
        $r->{ok} ? "$r->{paired} paired by timestamp" : 'NOT PAIRED (timestamps disagree: latency not reliable)';
}
