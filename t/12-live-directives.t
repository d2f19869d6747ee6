#!/usr/bin/perl
# The live application directives, checked at the protocol level with the test client as
# publisher (hand-made H.264/AAC tags) and as player: live off, idle_streams,
# publish_notify, play_restart, meta, gop_cache, wait_video, interleave,
# drop_idle_publisher, merge_writes, merge_reads.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Test::Nginx::RTMP qw(wait_for);
use Test::Nginx::RTMPClient;
use Time::HiRes qw(time sleep);

my $t = Test::Nginx::RTMP->new;
$t->write_config(<<'CONF');
rtmp {
    server {
        listen 127.0.0.1:%%PORT_RTMP%%;
        ping 1s;
        ping_timeout 1s;
        out_cork 4;
        application off { }
        application strict {
            live on;
            idle_streams off;
            meta off;
        }
        application notify {
            live on;
            publish_notify on;
            play_restart on;
            gop_cache off;
            wait_video on;
            interleave on;
        }
        application corked {
            live on;
            buffer 1s;
            gop_cache off;
        }
        application idle {
            live on;
            drop_idle_publisher 1s;
            meta copy;
            merge_writes 200ms;
        }
        application batched {
            live on;
            merge_reads 300ms;
        }
        application auto {
            live on;
        }
        application unbatched {
            live on;
            merge_reads off;
        }
    }
}
CONF
$t->run;
my $port = $t->port('RTMP');

sub client { my $c = Test::Nginx::RTMPClient->new(port => $port); $c->connect_app(shift); $c }

my $meta = Test::Nginx::RTMPClient::amf_encode('@setDataFrame', 'onMetaData', { width => 320, encoder => 'test' });

sub send_frames {
    my ($c, $ts, @kinds) = @_;
    for my $k (@kinds) {
        my ($type, $body) = $k eq 'meta' ? (18, $meta)
            : $k eq 'avc'  ? (9, "\x17\x00\x00\x00\x00\x01\x42")
            : $k eq 'aac'  ? (8, "\xaf\x00\x12\x10")
            : $k eq 'key'  ? (9, "\x17\x01\x00\x00\x00" . ('k' x 100))
            : $k eq 'p'    ? (9, "\x27\x01\x00\x00\x00" . ('p' x 50))
            : $k eq 'a'    ? (8, "\xaf\x01" . ('a' x 20))
            : die $k;
        $c->send_message(csid => $type == 9 ? 7 : $type == 8 ? 6 : 5, type => $type, msid => $c->{msid}, ts => $ts, body => $body);
        $ts += 10;
    }
}

sub ms { join ' ', map { sprintf '%.0f', $_ * 1000 } @_ }

# Sends nine video frames of $size bytes from $p a little apart, each once $from got a
# message of $type after it; how long each took (sorted).
sub arrival_delays {
    my ($p, $from, $type, $ts, $size) = @_;
    my @d;
    for (1 .. 9) {
        my $t0 = time;
        $p->send_message(csid => 7, type => 9, msid => $p->{msid}, ts => $ts += 40, body => "\x27\x01\x00\x00\x00" . ('p' x $size));
        while (my $m = $from->read_message(1)) {
            if ($m->{type} == $type) { push @d, $m->{at} - $t0; last }
        }
        sleep 0.02 + rand 0.05;
    }
    return sort { $a <=> $b } @d;
}

# How long nine frames took to reach player $v (after what was sent before).
sub frame_delays {
    my ($p, $v, $ts) = @_;
    collect($v, 0.4);
    return arrival_delays($p, $v, 9, $ts, 50);
}

# All messages a player gets within $secs: [type, first bytes hex, csid-free summary].
sub collect {
    my ($c, $secs) = @_;
    my @got;
    my $end = time + $secs;
    while (my $m = $c->read_message($end - time)) {
        my $what = $m->{type} == 20 || $m->{type} == 18
            ? join(' ', grep { defined && !ref } (Test::Nginx::RTMPClient::amf_decode($m->{body}))[0])
              . ' ' . (Test::Nginx::RTMPClient::code_of([Test::Nginx::RTMPClient::amf_decode($m->{body})]) // '')
            : unpack('H4', $m->{body});
        push @got, "$m->{type}:$what";
    }
    return @got;
}

# --- live off: publishing works, playing does not --------------------------------------
my $p = client('off');
is($p->publish('x'), 'NetStream.Publish.Start', 'live off: publishing is accepted');
my $v = client('off');
is($v->play('x'), 'NetStream.Play.StreamNotFound', '  but playing is refused');
undef $p;

# --- idle_streams off: no waiting for a stream, players leave with the publisher -------
$v = client('strict');
is($v->play('none'), 'NetStream.Play.StreamNotFound', 'idle_streams off: playing a stream nobody publishes is refused');
$p = client('strict');
$p->publish('s');
send_frames($p, 0, qw(meta avc aac key));
$v = client('strict');
is($v->play('s'), 'NetStream.Play.Start', '  a published stream plays');
my @got = collect($v, 0.5);
ok(!grep(/onMetaData/, @got), 'meta off: no metadata reaches players');
close $p->sock;
ok($v->closed(3), 'idle_streams off: the player is disconnected when the publisher leaves');

# --- publish_notify, play_restart, gop_cache off, wait_video, interleave ----------------
$v = client('notify');
is($v->play('n'), 'NetStream.Play.Start', 'a player waits for notify/n');
$p = client('notify');
$p->publish('n');
send_frames($p, 0, qw(meta avc aac key a p a));
@got = collect($v, 0.7);
ok(grep(/PublishNotify/, @got), 'publish_notify on: the player gets NetStream.Play.PublishNotify');
ok(grep(/onStatus NetStream.Play.Start/, @got), 'play_restart on: and NetStream.Play.Start');
my $late = client('notify');
$late->play('n');
send_frames($p, 100, qw(a p key a));
my @late = grep { /^(8|9):/ && !/^9:1700|^8:af00/ } collect($late, 0.7);
is($late[0], '9:1701', 'gop_cache off, wait_video on: after the codec headers, a late player gets nothing before the next keyframe')
    or diag("@late");
my @audio = grep { $_->{type} == 8 } @{ $late->{log} };
ok(@audio && !grep({ $_->{csid} != 7 } @audio), 'interleave on: audio comes on the video chunk stream');
close $p->sock;
@got = collect($v, 0.7);
ok(grep(/UnpublishNotify/, @got), 'publish_notify on: NetStream.Play.UnpublishNotify when the publisher leaves');
ok(grep(/NetStream.Play.Stop/, @got), 'play_restart on: and NetStream.Play.Stop');

# --- drop_idle_publisher, meta copy, merge_writes ----------------------------------------
$p = client('idle');
$p->publish('i');
send_frames($p, 0, qw(meta avc aac key));
$v = client('idle');
$v->play('i');
my $t0 = time;
send_frames($p, 100, qw(p a p a));
my @msgs;
while (my $m = $v->read_message(1)) { push @msgs, $m; last if grep { $_->{type} == 9 && unpack('H2', $_->{body}) eq '27' } @msgs }
my ($meta_msg) = grep { $_->{type} == 18 && $_->{body} =~ /onMetaData/ } @msgs;
ok($meta_msg && $meta_msg->{body} =~ /encoder/, 'meta copy: players get the metadata as sent');
# Merged writes fall due on the worker's 200 ms grid: a frame waits for the next point.
my @fd = frame_delays($p, $v, 200);
ok(@fd == 9 && (grep { $_ > 0.05 } @fd) >= 3 && $fd[-1] < 0.35,
    "merge_writes 200ms: live frames are held for the next merged write, up to 200 ms (ms: @{[ms(@fd)]})");
send_frames($p, 1000, 'p');
my $last_media = time;
ok($p->closed(4), 'drop_idle_publisher 1s: a publisher that sends nothing is dropped');
my $took = time - $last_media;
ok($took > 0.9 && $took < 3, sprintf('  about a second after its last frame (%.1f s)', $took));
like($t->error_log, qr/drop idle publisher/, '  and the log says so');

# --- merge_reads: a publisher's input is read in batches ------------------------------------
$v = client('batched');
$v->play('b');
$p = client('batched');
$p->publish('b');
$t0 = time;
send_frames($p, 0, qw(meta avc aac key p a p));
my @batch;
while (time - $t0 < 3 and my $m = $v->read_message(1.5)) {
    push @batch, $m if $m->{type} == 8 || $m->{type} == 9;
    last if @batch == 6;
}
is(scalar @batch, 6, 'merge_reads 300ms: every frame arrives');
@fd = frame_delays($p, $v, 100);
ok(@fd == 9 && (grep { $_ > 0.05 } @fd) >= 3 && $fd[-1] < 0.45, "  read in batches, up to 300 ms after it was sent (ms: @{[ms(@fd)]})");
close $p->sock;

# --- buffer + out_cork: media is held until out_cork messages are queued ------------------
$p = client('corked');
$p->publish('c');
$v = client('corked');
$v->play('c');
collect($v, 0.2);
send_frames($p, 0, qw(key p p));
is(scalar(grep { /^9:/ } collect($v, 0.4)), 0, 'buffer 1s, out_cork 4: three frames are held');
send_frames($p, 100, qw(p));
is(scalar(grep { /^9:/ } collect($v, 0.4)), 4, '  and written together when the fourth is queued');
close $p->sock;

# --- pause / unpause ------------------------------------------------------------------------
$p = client('idle');
$p->publish('pz');
send_frames($p, 0, qw(avc key));
$v = client('idle');
$v->play('pz');
collect($v, 0.3);
$v->command($v->{msid}, 'pause', undef, \1, 0);
my @paused = collect($v, 0.5);
ok(grep(/NetStream.Pause.Notify/, @paused), 'pause: the player gets NetStream.Pause.Notify');
send_frames($p, 100, qw(p key p));
ok(!grep(/^9:(17|27)01/, collect($v, 0.5)), '  and no frames while paused');
$v->command($v->{msid}, 'pause', undef, \0, 0);
send_frames($p, 200, qw(p key));
my @resumed = collect($v, 0.6);
ok(grep(/NetStream.Unpause.Notify/, @resumed), 'unpause: NetStream.Unpause.Notify');
is((grep { /^9:(17|27)01/ } @resumed)[0], '9:1701', '  and frames again, from a keyframe');
close $p->sock;

# --- merge_reads auto (the default): a stream nobody plays is read in batches --------------
# The server acknowledges every 1000 bytes it reads once the publisher asks it to (Window
# Acknowledgement Size), so the time from sending 1000 bytes to their acknowledgement shows
# when they were read: within a 500 ms batch, or at once.
sub ack_delays { my ($c, $ts) = @_; arrival_delays($c, $c, 3, $ts, 1100) }

$p = client('auto');
$p->publish('quiet');
$p->send_message(csid => 2, type => 5, body => pack('N', 1000));
send_frames($p, 0, qw(avc key));
my @d = ack_delays($p, 100);
is(scalar @d, 9, 'merge_reads auto: every 1000 bytes are acknowledged');
ok((grep { $_ > 0.05 } @d) >= 3 && $d[-1] < 0.8, "  after up to 500 ms while nobody plays the stream (ms: @{[ms(@d)]})");
$v = client('auto');
$v->play('quiet');
collect($v, 0.1);
@d = ack_delays($p, 1000);
ok(@d == 9 && $d[4] < 0.03, "  at once while a player watches (ms: @{[ms(@d)]})");
ok((grep { /^9:2701/ } collect($v, 0.3)) >= 9, '  and the player gets the frames');
close $v->sock;
sleep 0.3;
@d = ack_delays($p, 2000);
ok(@d == 9 && (grep { $_ > 0.05 } @d) >= 3, "  in batches again once it left (ms: @{[ms(@d)]})");
close $p->sock;

$p = client('unbatched');
$p->publish('quiet');
$p->send_message(csid => 2, type => 5, body => pack('N', 1000));
@d = ack_delays($p, 0);
ok(@d == 9 && $d[4] < 0.03, "merge_reads off: read at once with nobody watching (ms: @{[ms(@d)]})");
close $p->sock;

# --- ping: an idle player that answers pings stays --------------------------------------
my $quiet = client('idle');
$quiet->play('nothing');
my $alive_after = 0;
my $end = time + 3.5;
while (time < $end) { last unless defined $quiet->read_message($end - time) || time >= $end; }
$quiet->send_message(csid => 2, type => 4, body => "\x00\x03" . pack('NN', 1, 100));
ok(!$quiet->closed(0.3), 'a player answering pings outlives ping + ping_timeout');

# A client that stops answering is dropped after about ping + ping_timeout (2 s here).
my $mute = client('idle');
$mute->play('nothing');
my $start = time;
sleep 2.5;    # reads nothing, so answers no ping
ok($mute->closed(2), 'a client that does not answer pings is dropped');
$took = time - $start;
ok($took < 4.5, sprintf('  within ping + ping_timeout (%.1f s)', $took));

ok($t->stop, 'nginx stops');
is(join("\n", $t->alerts), '', 'no alert, crit or emerg in the error log');

done_testing;
