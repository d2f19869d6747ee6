#!/usr/bin/perl
# Publishes an FLV file to an RTMP URL in real time, looping forever (what
# `ffmpeg -re -stream_loop -1 -i FILE -c copy -f flv URL` does), and logs when each video
# frame was sent ("TIMESTAMP_MS WALLCLOCK") so latency can be measured at the players.
#   publish.pl FILE HOST PORT APP NAME SENDLOG

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use Test::Nginx::RTMPClient;
use Time::HiRes qw(time sleep);
use IO::Handle;

my ($file, $host, $port, $app, $name, $sendlog) = @ARGV;
open my $fh, '<:raw', $file or die "$file: $!";
my $data = do { local $/; <$fh> };
my @tags;
my $pos = 9 + 4;
while ($pos + 11 <= length $data) {
    my ($type, $size, $ts, $ext) = unpack('C a3 a3 C', substr($data, $pos, 8));
    $size = unpack('N', "\0$size");
    $ts = unpack('N', "\0$ts") | ($ext << 24);
    last if $pos + 11 + $size > length $data;
    push @tags, [$type, $ts, substr($data, $pos + 11, $size)] if $type == 8 || $type == 9 || $type == 18;
    $pos += 11 + $size + 4;
}
die "no tags in $file" unless @tags;
my $duration = $tags[-1][1] + 33;

my $c = Test::Nginx::RTMPClient->new(host => $host, port => $port);
$c->connect_app($app) or die 'connect failed';
$c->set_chunk_size(4096);
my $code = $c->publish($name) // '';
die "publish: $code" unless $code eq 'NetStream.Publish.Start';
$c->sock->blocking(1);
open my $log, '>', $sendlog or die $!;
$log->autoflush(1);

my $t0 = time;
for (my $loop = 0; ; $loop++) {
    my $offset = $loop * $duration;
    for my $tag (@tags) {
        my ($type, $ts, $body) = @$tag;
        next if $type == 18 && $loop > 0;
        $ts += $offset;
        my $due = $t0 + $ts / 1000;
        my $wait = $due - time;
        sleep $wait if $wait > 0;
        $c->send_message(csid => $type == 9 ? 7 : $type == 8 ? 6 : 5, type => $type, msid => $c->{msid}, ts => $ts, body => $body)
            or exit 0;
        printf $log "%d %.6f\n", $ts, time if $type == 9;
    }
}
