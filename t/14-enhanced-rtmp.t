#!/usr/bin/perl
# Enhanced RTMP (FourCC codecs in extended tag headers) passes through unchanged: HEVC,
# AV1 and VP9 video, Opus audio; sequence starts and keyframes are recognised, so a late
# player gets the codec configuration first and starts on a keyframe.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Test::Nginx::RTMP;
use Test::Nginx::RTMPClient;

my $t = Test::Nginx::RTMP->new;
$t->write_config(<<'CONF');
rtmp {
    server {
        listen 127.0.0.1:%%PORT_RTMP%%;
        application live { live on; }
    }
}
CONF
$t->run;
my $port = $t->port('RTMP');

sub client {
    my $c = Test::Nginx::RTMPClient->new(port => $port);
    $c->connect_app('live', fourCcList => 'hvc1');
    return $c;
}

for my $fourcc (qw(hvc1 av01 vp09)) {
    my $pub = client();
    is($pub->publish($fourcc), 'NetStream.Publish.Start', "publish $fourcc");
    # ExHeader bit 0x80 | frame type << 4 | packet type; CodedFrames (1) carries a
    # composition time for hvc1 only, the bytes are opaque to the server either way.
    my @frames = (
        [9, "\x90$fourcc" . 'CONFIG'],          # key, SequenceStart
        [8, "\x90Opus" . 'OPUSHEAD'],           # audio ExHeader SequenceStart
        [9, "\x91$fourcc" . 'KEY1'],            # keyframe, CodedFrames
        [8, "\x91Opus" . 'A1'],
        [9, "\xa3$fourcc" . 'INTER1'],          # inter frame, CodedFramesX
        [9, "\x93$fourcc" . 'KEY2'],            # keyframe, CodedFramesX
        [9, "\xa1$fourcc" . 'INTER2'],
        [8, "\x91Opus" . 'A2'],
    );
    my $ts = 0;
    for (@frames) {
        $pub->send_message(csid => $_->[0] == 9 ? 7 : 6, type => $_->[0], msid => $pub->{msid}, ts => $ts += 20, body => $_->[1]);
    }
    my $late = client();
    is($late->play($fourcc), 'NetStream.Play.Start', "  a late player joins");
    my @got;
    while (my $m = $late->read_message(0.5)) {
        push @got, $m->{body} if $m->{type} == 8 || $m->{type} == 9;
    }
    my @want = ("\x90${fourcc}CONFIG", "\x90OpusOPUSHEAD", "\x93${fourcc}KEY2", "\xa1${fourcc}INTER2", "\x91OpusA2");
    is_deeply([map { s/[^[:print:]]/sprintf('\\x%02x', ord $&)/ger } @got],
              [map { s/[^[:print:]]/sprintf('\\x%02x', ord $&)/ger } @want],
        "  and gets the $fourcc and Opus configurations, then the GOP from the last keyframe, bytes unchanged");
    close $pub->sock;
}

ok($t->stop, 'nginx stops');
is(join("\n", $t->alerts), '', 'no alert, crit or emerg in the error log');

done_testing;
