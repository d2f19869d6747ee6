#!/usr/bin/perl
# Bad input closes one client and nothing else: while ffmpeg publishes and plays a healthy
# stream, raw clients send truncated handshakes, garbage, absurd chunk sizes, oversized
# messages, every chunk-stream-id width, deep and broken AMF, commands out of order, and
# vanish mid-message. Afterwards the healthy player has every frame, the worker is the same
# process, and the error log names each bad client and what was wrong.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Test::Nginx::RTMP qw(wait_for decode_errors);
use Test::Nginx::RTMPClient;
use Socket qw(SOL_SOCKET SO_RCVBUF);
use Time::HiRes qw(sleep);

my $t = Test::Nginx::RTMP->new;
$t->write_config(<<'CONF');
rtmp {
    server {
        # A small send buffer, so a player that stops reading fills out_queue soon.
        listen 127.0.0.1:%%PORT_RTMP%% sndbuf=16k;
        timeout 20s;
        out_queue 64;
        max_message 1m;
        application live {
            live on;
        }
    }
}
CONF
$t->run;
my $port = $t->port('RTMP');
my $url = "rtmp://127.0.0.1:$port/live";
my $dir = $t->dir;
my ($worker) = $t->worker_pids;

my $pub = $t->ffmpeg_publish("$url/healthy", 16);
ok(wait_for(sub { $t->error_log =~ /publish: "live\/healthy"/ }, 5), 'a healthy stream is published');
sleep 1;
my $player = $t->spawn("$dir/player.log", 'ffmpeg', '-hide_banner', '-loglevel', 'error', '-i', "$url/healthy",
    '-t', '10', '-c', 'copy', '-f', 'flv', "$dir/healthy.flv");
sleep 1;

sub raw {
    my $c = Test::Nginx::RTMPClient->new(port => $port);
    return $c;
}

sub ready {    # handshake done, nothing else
    my $c = raw();
    $c->handshake or die 'handshake failed';
    return $c;
}

sub connected {    # connected to live, with a stream created
    my $c = ready();
    $c->command(0, 'connect', { app => 'live', tcUrl => "rtmp://127.0.0.1/live" });
    $c->wait_command(5, '_result');
    return $c;
}

# Sends $bytes as one message body with a hand-made header.
sub header0 {
    my ($csid, $len, $type, $msid) = @_;
    return chr($csid) . "\0\0\0" . substr(pack('N', $len), 1) . chr($type) . pack('V', $msid // 0);
}

my @attacks = (
    ['a truncated handshake', sub { my $c = raw(); $c->send_raw("\x03" . ('x' x 100)); $c }, undef],
    ['an HTTP request', sub { my $c = raw(); $c->send_raw("GET / HTTP/1.1\r\nHost: x\r\n\r\n"); $c },
        qr/bad RTMP version byte 0x47/],
    ['RTMPE (version 6)', sub { my $c = raw(); $c->send_raw("\x06" . ("\0" x 1536)); $c }, qr/bad RTMP version byte 0x06/],
    ['random bytes after the handshake', sub {
        my $c = ready();
        $c->send_raw(join '', map { chr(int rand 256) } 1 .. 200_000);
        $c
    }, qr/client error: /],
    ['chunk size 0', sub { my $c = ready(); $c->send_message(csid => 2, type => 1, body => pack('N', 0)); $c },
        qr/invalid chunk size 0 from client/],
    ['chunk size 2^31', sub { my $c = ready(); $c->send_message(csid => 2, type => 1, body => pack('N', 2**31)); $c },
        qr/invalid chunk size 2147483648 from client/],
    ['a message over max_message', sub { my $c = ready(); $c->send_raw(header0(3, 0xffffff, 9, 1) . ('v' x 128)); $c },
        qr/message of 16777215 bytes exceeds max_message 1048576/],
    ['65 chunk streams', sub {
        my $c = ready();
        $c->send_raw(join '', map { "\x00" . chr($_) . "\0\0\0\0\0\x01\x0a\0\0\0\0" . 'z' } 0 .. 64);
        $c
    }, qr/more than 64 chunk streams/],
    ['a continuation chunk on a new chunk stream', sub { my $c = ready(); $c->send_raw("\xc9abc"); $c },
        qr/chunk stream 9 continues a message it never started/],
    ['deeply nested AMF', sub {
        my $c = ready();
        $c->send_message(type => 20, body => "\x02\x00\x07connect\x00" . pack('d>', 1) . ("\x0a\x00\x00\x00\x01" x 2000) . "\x05");
        $c
    }, qr/AMF nesting deeper than 32/],
    ['an unknown AMF marker', sub { my $c = ready(); $c->send_message(type => 20, body => "\x02\x00\x07connect\x42"); $c },
        qr/unknown AMF0 marker 0x42/],
    ['a command name that is not a string', sub { my $c = ready(); $c->send_message(type => 20, body => "\x00" . pack('d>', 5)); $c },
        qr/command name is not a string/],
    ['publish before connect', sub {
        my $c = ready();
        $c->command(1, 'publish', undef, 'healthy', 'live');
        $c
    }, qr/"publish" before connect/],
    ['play on a stream never created', sub { my $c = connected(); $c->command(7, 'play', undef, 'healthy'); $c },
        qr/stream 7 was never created/],
    ['media on a stream never created', sub { my $c = connected(); $c->send_message(type => 9, msid => 3, body => "\x17\x01"); $c },
        qr/media on stream 3 that was never created/],
    ['a second connect', sub { my $c = connected(); $c->command(0, 'connect', { app => 'live' }); $c }, qr/second connect/],
    ['a publisher flooding 16 MB as fast as it can (then leaving)', sub {
        my $c = connected();
        $c->publish('flood');
        $c->set_chunk_size(65536);
        my $frame = "\x27\x01\0\0\0" . ('f' x 200_000);
        $c->send_message(csid => 7, type => 9, msid => $c->{msid}, ts => $_ * 10, body => $frame) for 1 .. 80;
        close $c->sock;
        $c
    }, qr/unpublish: "live\/flood"/],
    ['pings without reading the answers', sub {
        my $c = ready();
        setsockopt($c->sock, SOL_SOCKET, SO_RCVBUF, 4096);
        my $ping = "\x02" . "\0\0\0" . "\0\0\x06" . "\x04" . "\0\0\0\0" . "\x00\x06" . "\0\0\0\x01";
        $c->send_raw($ping x 400_000);    # 7 MB of PingRequests, 7 MB of answers nobody reads
        $c
    }, qr/client does not read what it is sent \(out_queue\), closing/],
    ['a stream name with a path', sub { my $c = connected(); $c->publish('../../etc/x'); $c },
        qr/NetStream.Publish.BadName: Invalid stream name/],
);

for my $a (@attacks) {
    my ($what, $do, $log) = @$a;
    my $c = $do->();
    # (two of them end by closing the connection themselves)
    ok($c->closed(5), "$what: the client is closed") unless $what =~ /truncated handshake|then leaving/;
    if ($log) {
        ok(wait_for(sub { $t->error_log =~ $log }, 3), "  and the log says why ($log)");
    }
    close $c->sock;
}

# Every chunk stream id width works (1, 2 and 3 byte basic headers).
my $w = connected();
$w->send_raw("\x00\x00" . "\0\0\0\0\0\x01\x0a\0\0\0\0" . 'z');           # csid 64
$w->send_raw("\x01\xff\xff" . "\0\0\0\0\0\x01\x0a\0\0\0\0" . 'z');       # csid 65599
$w->command(0, 'createStream', undef);
ok($w->wait_command(3, '_result'), 'chunk stream ids 64 and 65599 are accepted');

# A publisher that vanishes in the middle of a frame.
my $v = connected();
is($v->publish('vanish'), 'NetStream.Publish.Start', 'a raw publisher starts');
$v->send_message(csid => 6, type => 9, msid => 1, body => "\x17\x00" . ('a' x 50)) ;
$v->send_raw(header0(6, 100_000, 9, 1) . ('p' x 100));
close $v->sock;
ok(wait_for(sub { $t->error_log =~ /unpublish: "live\/vanish"/ }, 3), 'and vanishing mid-message just unpublishes it');

# A player that never reads is dropped when out_queue fills; others are not held up.
my $slow = connected();
setsockopt($slow->sock, SOL_SOCKET, SO_RCVBUF, 4096);
$slow->command(1, 'createStream', undef);
$slow->command(1, 'play', undef, 'healthy');
ok(wait_for(sub { $t->error_log =~ /client too slow: more than 64 messages queued \(out_queue\), dropping it/ }, 12),
    'a player that does not read is dropped (out_queue)');

is($t->reap($player, 20), 0, 'the healthy player ran to its end');
my @pts = map { /^(\d+)/ ? $1 : () }
    qx{ffprobe -v error -select_streams v -show_entries packet=pts -of csv=p=0 $dir/healthy.flv};
ok(@pts >= 290, scalar(@pts) . ' video frames in 10 s of the healthy stream');
my $gaps = grep { $pts[$_] - $pts[$_ - 1] > 40 } 1 .. $#pts;
is($gaps, 0, 'no frame missing (no gap over 40 ms between frames)');
is(decode_errors("$dir/healthy.flv"), '', 'and it decodes without errors');
is($t->reap($pub, 20), 0, 'the healthy publisher ran to its end');

is(join(',', $t->worker_pids), $worker, 'the worker is the same process');
ok($t->stop, 'nginx stops');
is(join("\n", $t->alerts), '', 'no alert, crit or emerg in the error log');

done_testing;
