#!/usr/bin/perl
# WHIP on the open internet, in a loopback-only network namespace: 1,000 offers at once
# (whip_max_sessions refuses the excess with 503, the rest are cleaned up after
# whip_ice_timeout), then hostile datagrams on the one UDP port (random bytes, STUN with
# the sessions' own ufrags and wrong or missing integrity or lying lengths, DTLS and RTP
# garbage) as fast as this machine sends them; meanwhile a real publisher (GStreamer's
# webrtcbin) connects and an RTMP player decodes it. The worker never changes, its memory
# stays bounded, nothing is logged at alert level.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx::Netns;
use HTTP::Tiny;
use POSIX ();
use Test::More;
use Test::Nginx::RTMP qw(wait_for probe slurp);
use Time::HiRes qw(time sleep);

my $t = Test::Nginx::RTMP->new;
my $dir = $t->dir;
$t->write_config(<<'CONF');
rtmp {
    server {
        listen 127.0.0.1:%%PORT_RTMP%%;
        application live { live on; }
    }
}
http {
    access_log off;
    whip_udp_listen 127.0.0.1:%%PORT_UDP%%;
    whip_ice_timeout 8s;
    whip_max_sessions 300;
    whip_max_sessions_per_ip 5000;
    server {
        listen 127.0.0.1:%%PORT_WHIP%%;
        location ~ ^/live/[^/]+/whip(/[^/]*)?$ { whip_publish live; }
    }
}
CONF
$t->run;
my ($worker) = $t->worker_pids;
my $rss = sub { (slurp("/proc/$worker/status") // '') =~ /VmRSS:\s+(\d+)/ ? $1 : 0 };
my $base = 'http://127.0.0.1:' . $t->port('WHIP');
my $udp = $t->port('UDP');
my $offer = slurp("$FindBin::Bin/data/whip-offer.sdp");
my $rss0 = $rss->();

# 1,000 offers from 10 clients at once.
my $t0 = time;
my @kids;
for my $k (0 .. 9) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        $SIG{TERM} = sub { POSIX::_exit(0) };
        my $http = HTTP::Tiny->new(timeout => 10);
        open my $out, '>', "$dir/offers-$k" or POSIX::_exit(1);
        for my $i (0 .. 99) {
            my $r = $http->request('POST', "$base/live/f$k-$i/whip", { headers => { 'Content-Type' => 'application/sdp' }, content => $offer });
            my ($ufrag) = ($r->{content} // '') =~ /^a=ice-ufrag:(\S+)/m;
            print $out "$r->{status} ", $ufrag // '-', "\n";
        }
        close $out;
        POSIX::_exit(0);
    }
    push @kids, $pid;
}
waitpid $_, 0 for @kids;
my (%status, @ufrags);
for my $k (0 .. 9) {
    for (split /\n/, slurp("$dir/offers-$k") // '') {
        my ($s, $u) = split ' ';
        $status{$s}++;
        push @ufrags, $u if $u ne '-';
    }
}
is($status{201}, 300, sprintf('1,000 offers at once (%.1f s): whip_max_sessions 300 answered', time - $t0));
is($status{503}, 700, '  the other 700 refused with 503') or diag(explain(\%status));
my $after_offers = $rss->();

# Hostile datagrams as fast as they go, STUN with the parked sessions' ufrags among them.
my $flood = $t->spawn("$dir/flood1.log", 'python3', "$FindBin::Bin/data/udp-flood.py", '127.0.0.1', $udp, 4, 0, @ufrags[0 .. 49]);
$t->reap($flood, 20);
my ($sent) = (slurp("$dir/flood1.log") // '') =~ /sent (\d+)/;
ok($sent && $sent > 10_000, "hostile datagrams at full speed for 4 s: ${\($sent // 0)} sent");
ok(wait_for(sub { my $n = () = $t->error_log =~ /ICE did not connect within 8000 ms/g; $n >= 300 }, 20),
    '  the 300 parked sessions end after whip_ice_timeout (8 s)');
my $http = HTTP::Tiny->new(timeout => 5);
my $r = $http->request('POST', "$base/live/after/whip", { headers => { 'Content-Type' => 'application/sdp' }, content => $offer });
is($r->{status}, 201, '  a new offer is answered');
is($http->request('DELETE', $base . ($r->{headers}{location} // '/none'))->{status}, 200, '  and its DELETE');

# A real publisher during another flood (a few thousand datagrams a second).
$flood = $t->spawn("$dir/flood2.log", 'python3', "$FindBin::Bin/data/udp-flood.py", '127.0.0.1', $udp, 12, 3000, 'nobody');
my $gst = $t->spawn("$dir/gst.log", '/usr/bin/python3', "$FindBin::Bin/data/whip-gst.py", "$base/live/real/whip", 9);
ok(wait_for(sub { (slurp("$dir/gst.log") // '') =~ /WHIP state connected/ }, 15), 'during a flood, GStreamer webrtcbin connects over WHIP')
    or diag(slurp("$dir/gst.log"));
ok(wait_for(sub { $t->error_log =~ /publish: "live\/real"/ }, 5), '  and publishes live/real');
my $file = "$dir/real.flv";
system("timeout 12 ffmpeg -hide_banner -v error -i rtmp://127.0.0.1:" . $t->port('RTMP') . "/live/real -t 4 -c copy -y $file >/dev/null 2>&1");
my $frames = probe($file)->{video}{frames} // 0;
cmp_ok($frames, '>=', 40, "  an RTMP player decodes it ($frames frames in 4 s)");
$t->reap($gst, 15);
$t->reap($flood, 15);

is(join(' ', $t->worker_pids), $worker, 'the worker is the same process throughout');
my $growth = ($rss->() - $rss0) / 1024;
cmp_ok($growth, '<', 64, sprintf('its memory grew by %.1f MB (%.1f MB with 300 parked sessions)', $growth, ($after_offers - $rss0) / 1024));
is(join("\n", $t->alerts), '', 'no alert, crit or emerg in the error log');
$t->stop;
done_testing;
