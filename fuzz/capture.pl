#!/usr/bin/perl
# Makes the seed corpora in fuzz/corpus/ from real clients: an ffmpeg publisher and an
# rtmpdump player talking to this module's nginx through a recording proxy (what each
# client sent, from its first byte), the FLV tags of a real recording, and the text inputs
# the tests use. Run from the repository root after a build: perl fuzz/capture.pl
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use File::Path qw(make_path);
use IO::Select;
use IO::Socket::IP;
use Test::Nginx::RTMP qw(wait_for slurp);

my $root = "$FindBin::Bin/..";
my $out = "$FindBin::Bin/corpus";
make_path(map { "$out/$_" } qw(handshake session media text app chunk amf));

my $t = Test::Nginx::RTMP->new;
$t->write_config(<<'CONF');
rtmp {
    access_log off;
    server {
        listen 127.0.0.1:%%PORT_RTMP%%;
        application live { live on; record all; record_path %%DIR%%; }
    }
}
CONF
chmod 0777, $t->dir;
$t->run;
my $port = $t->port('RTMP');

# A proxy on a free port: one connection, what the client sent kept (up to $max bytes).
sub proxied {
    my ($file, $max, @cmd) = @_;
    my $l = IO::Socket::IP->new(LocalHost => '127.0.0.1', LocalPort => 0, Listen => 1, ReuseAddr => 1) or die $!;
    my $pport = $l->sockport;
    s/PROXY/$pport/ for @cmd;
    my $pid = fork // die;
    if (!$pid) { open STDOUT, '>', '/dev/null'; open STDERR, '>', '/dev/null'; exec @cmd or die }
    my $c = $l->accept or die;
    my $s = IO::Socket::IP->new(PeerHost => '127.0.0.1', PeerPort => $port) or die;
    my ($sent, $sel) = ('', IO::Select->new($c, $s));
    OUTER: while (1) {
        for my $h ($sel->can_read(5)) {
            my $n = sysread($h, my $buf, 65536);
            last OUTER unless $n;
            if ($h == $c) { $sent .= $buf if length $sent < $max; syswrite($s, $buf) }
            else { syswrite($c, $buf) }
        }
        last unless $sel->count;
        last if waitpid($pid, POSIX::WNOHANG()) == $pid;
    }
    kill 'TERM', $pid;
    waitpid($pid, 0);
    open my $f, '>', $file or die;
    print $f substr($sent, 0, $max);
    close $f;
    return $sent;
}

my $pub = proxied("$out/handshake/ffmpeg-publish", 48 * 1024, 'ffmpeg', '-re', '-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=15',
    '-f', 'lavfi', '-i', 'sine', '-c:v', 'libx264', '-preset', 'ultrafast', '-g', 15, '-pix_fmt', 'yuv420p', '-c:a', 'aac',
    '-t', 2, '-f', 'flv', 'rtmp://127.0.0.1:PROXY/live/seed');
# (the session target starts after a handshake of its own: C0 C1 C2 left out)
open my $f, '>', "$out/session/ffmpeg-publish" or die;
print $f substr($pub, 1 + 2 * 1536);
close $f;
open $f, '>', "$out/chunk/ffmpeg-publish" or die;
print $f substr($pub, 1 + 2 * 1536, 16 * 1024);
close $f;
proxied("$out/handshake/rtmpdump-play", 8 * 1024, 'timeout', 3, 'rtmpdump', '-q', '-v', '-r', 'rtmp://127.0.0.1:PROXY/live/seed', '-o', '/dev/null');
system('cp', "$root/src/rtmp/testdata/ffmpeg-c0c1.bin", "$out/handshake/ffmpeg-c0c1");
system('cp', "$root/src/rtmp/testdata/rtmpdump-c0c1.bin", "$out/handshake/rtmpdump-c0c1");

# FLV tags of the recording: the media target's input is a kind byte (0 audio, 1 video,
# 2 data) and a tag body.
wait_for(sub { -s $t->dir . '/seed.flv' }, 5);
my $flv = slurp($t->dir . '/seed.flv') // die 'no recording';
my ($pos, %n) = (13);
while ($pos + 11 <= length $flv) {
    my ($type, $len) = (ord(substr($flv, $pos, 1)), unpack('N', "\0" . substr($flv, $pos + 1, 3)));
    my $body = substr($flv, $pos + 11, $len);
    $pos += 11 + $len + 4;
    my $kind = $type == 8 ? 0 : $type == 9 ? 1 : 2;
    next if ($n{$type}++ // 0) > 3;
    open my $m, '>', "$out/media/tag-$type-$n{$type}" or die;
    print $m chr($kind) . substr($body, 0, 4096);
    close $m;
    if ($type == 18) {
        open my $a, '>', "$out/amf/metadata" or die;
        print $a $body;
        close $a;
    }
}

# Text: a kind byte (see fuzzing::text), then the text.
my %text = (
    'playlist'  => [0, slurp("$root/src/hls/testdata/nginx-rtmp-final.m3u8")],
    'url'       => [1, 'http://user:pass@auth.example.com:8080/on_publish?x=1'],
    'offer'     => [2, slurp("$root/t/data/whip-offer.sdp")],
    'path'      => [3, '/whip/live/key?x=1'],
    'logformat' => [4, '$remote_addr [$time_local] ${app} "$name" $bytes_sent'],
    'rule'      => [5, 'publish 10.0.0.0/8'],
    'reply'     => [6, "HTTP/1.1 302 Found\r\nLocation: rtmp://10.0.0.1/live/x\r\nContent-Length: 0\r\n\r\n"],
);
for my $name (keys %text) {
    my ($k, $s) = @{ $text{$name} };
    open my $x, '>', "$out/text/$name" or die;
    print $x chr($k) . $s;
    close $x;
}
$t->stop;
print "seed corpora in $out\n";
