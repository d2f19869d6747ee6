#!/usr/bin/perl
# worker_processes 2 with WebRTC, one UDP port for both workers (SO_REUSEPORT): a
# GStreamer WHIP publisher (whichever worker takes its offer) is played by RTMP players on
# both workers, and GStreamer WHEP viewers play an RTMP-published stream whichever worker
# takes their offer; the kernel gives a session's datagrams to either worker, which
# passes them to the session's; a DELETE reaching either worker ends its session. In a
# loopback-only network namespace.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx::Netns;
use HTTP::Tiny;
use Test::More;
use Test::Nginx::RTMP qw(wait_for slurp);
use Test::Nginx::RTMPClient;
use Time::HiRes qw(sleep time);

my $gst_ok = system('/usr/bin/python3 -c "import gi; gi.require_version(\'GstWebRTC\', \'1.0\')" 2>/dev/null') == 0;
plan skip_all => 'GStreamer webrtcbin (python3-gi) is needed (scripts/setup.sh deps)' unless $gst_ok;

my $t = Test::Nginx::RTMP->new;
$t->write_config(<<'CONF', workers => 2);
rtmp {
    server {
        listen 127.0.0.1:%%PORT_RTMP%% reuseport;
        application live { live on; }
    }
}
http {
    access_log off;
    whip_udp_listen 127.0.0.1:%%PORT_UDP%%;
    server {
        listen 127.0.0.1:%%PORT_WHIP%% reuseport;
        location ~ ^/[^/]+/whip(/[^/]*)?$ { whip_publish live; }
        location ~ ^/[^/]+/whep(/[^/]*)?$ { whep_play live; }
    }
}
CONF
$t->run;
my $dir = $t->dir;
my @workers = $t->worker_pids;
my $base = 'http://127.0.0.1:' . $t->port('WHIP');

sub worker_of { $t->worker_of(@_) }

# The WHIP publisher.
my $gst = $t->spawn("$dir/whip.log", '/usr/bin/python3', "$FindBin::Bin/data/whip-gst.py", "$base/cam/whip", 40);
ok(wait_for(sub { (slurp("$dir/whip.log") // '') =~ /WHIP state connected/ }, 20), 'the WHIP publisher connects') or diag(slurp("$dir/whip.log"));
my ($on) = $t->error_log =~ /(\d+)#\d+: \*\d+ publish: "live\/cam"/;
ok($on, "its stream is published (on worker $on)");

# RTMP players until both workers have one: each gets pictures.
my %got;
for my $i (1 .. 12) {
    my $c = Test::Nginx::RTMPClient->new(port => $t->port('RTMP'));
    $c->connect_app('live', flashVer => "P-$i");
    my $w = worker_of("P-$i");
    next if exists $got{$w};
    $c->play('cam');
    my $n = 0;
    my $end = time + 4;
    while (time < $end) {
        my $m = $c->read_message($end - time) // last;
        $n++ if $m->{type} == 9 && length $m->{body} > 5 && substr($m->{body}, 1, 1) eq "\x01";
        last if $n >= 20;
    }
    $got{$w} = $n;
    last if keys %got == 2;
}
is(scalar(keys %got), 2, 'RTMP players on both workers');
is_deeply([grep { $got{$_} < 20 } keys %got], [], 'each gets the WHIP stream\'s pictures (' . join(', ', map { "$_: $got{$_}" } sort keys %got) . ')');

# WHEP viewers of an RTMP-published stream (without B-frames, as WebRTC needs), until
# both workers have taken one.
$t->spawn("$dir/ffmpeg.log", 'ffmpeg', '-hide_banner', '-loglevel', 'error', '-re', '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=30',
    '-f', 'lavfi', '-i', 'sine=frequency=440', '-t', '25', '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', '30',
    '-bf', '0', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-f', 'flv', 'rtmp://127.0.0.1:' . $t->port('RTMP') . '/live/tv');
sleep 2;
my %viewed;
for my $i (1 .. 12) {
    my $log = "$dir/whep-$i.log";
    my $v = $t->spawn($log, '/usr/bin/python3', "$FindBin::Bin/data/whep-gst.py", "$base/tv/whep", 4, '--no-decode');
    $t->reap($v, 30);
    my $l = slurp($log) // '';
    my ($video) = $l =~ /WHEP counts video=(\d+)/;
    my ($w) = $t->error_log =~ /(\d+)#\d+: \*\d+ connect: app "live" flashver "WHEP ngx-rtmp-rs"(?!.*flashver "WHEP ngx-rtmp-rs")/s;
    $viewed{$w} //= $video // 0 if $w;
    last if keys %viewed == 2;
}
is(scalar(keys %viewed), 2, 'WHEP viewers taken by both workers');
is_deeply([grep { $viewed{$_} < 30 } keys %viewed], [], 'each plays the RTMP stream published on one of them (' . join(', ', map { "$_: $viewed{$_}" } sort keys %viewed) . ' frames)');

# A reload: the WHIP session goes on in its old worker (the new workers share the port and
# pass its datagrams there); a player on a new worker plays it; its DELETE reaches it.
ok($t->reload, 'reload');
ok(wait_for(sub { my @w = $t->worker_pids; (grep { my $p = $_; !grep { $_ == $p } @workers } @w) >= 2 }, 5), 'two new workers started');
sleep 2;
my $after = 0;
{
    my $c = Test::Nginx::RTMPClient->new(port => $t->port('RTMP'));
    $c->connect_app('live');
    $c->play('cam');
    my $end = time + 5;
    while (time < $end) {
        my $m = $c->read_message($end - time);
        unless ($m) { diag(sprintf 'the player read nothing more, %.1f s before its end', $end - time); last }
        $after++ if $m->{type} == 9 && length $m->{body} > 5 && substr($m->{body}, 1, 1) eq "\x01";
        last if $after >= 30;
    }
}
is($after, 30, 'after the reload, a new player gets the WHIP stream (the session went on in its old worker)');
unlike(slurp("$dir/whip.log") // '', qr/WHIP (state|ice) (failed|disconnected|closed)/, '  and the WHIP client saw no interruption');
kill 'TERM', $gst;
is($t->reap($gst, 20), 0, 'the WHIP publisher ends with a DELETE answered 2xx, whichever worker took it') or diag(slurp("$dir/whip.log"));
my @deleted = map { slurp($_) =~ /WHIP deleted (\d+)|WHEP deleted (\d+)/ ? ($1 // $2) : 'none' } "$dir/whip.log", glob("$dir/whep-*.log");
is_deeply([grep { $_ ne '200' } @deleted], [], 'every WHIP/WHEP DELETE answered 200 (' . scalar(@deleted) . ' sessions)');
my @passed = $t->error_log =~ /whip: datagrams from \S+ go to worker \d+/g;
diag(scalar(@passed) . ' session(s) had their datagrams passed between workers');
my @relayed = $t->error_log =~ /session \w+ \(of another worker\) ended by DELETE/g;
diag(scalar(@relayed) . ' DELETE(s) reached the other worker');
my %ports = map { /UDP (\S+)/ ? ($1 => 1) : () } $t->error_log =~ /whip: sidecar started, UDP \S+/g;
is(scalar(keys %ports), 1, 'both workers use one UDP port (' . join(', ', keys %ports) . ')');
is_deeply([$t->alerts], [], 'no alerts');
ok($t->stop(10), 'nginx stops');
done_testing;
