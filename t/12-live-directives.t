#!/usr/bin/perl
# The live application directives, checked at the protocol level with the test client as
# publisher (hand-made H.264/AAC tags) and as player: live off, idle_streams,
# publish_notify, play_restart, meta, gop_cache, wait_video, interleave,
# drop_idle_publisher, merge_writes.

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
my $last_media = time;
my @msgs;
while (my $m = $v->read_message(1)) { push @msgs, $m; last if grep { $_->{type} == 9 && unpack('H2', $_->{body}) eq '27' } @msgs }
my ($meta_msg) = grep { $_->{type} == 18 && $_->{body} =~ /onMetaData/ } @msgs;
ok($meta_msg && $meta_msg->{body} =~ /encoder/, 'meta copy: players get the metadata as sent');
my ($live) = grep { $_->{type} == 9 && unpack('H2', $_->{body}) eq '27' } @msgs;
ok($live && $live->{at} - $t0 >= 0.15, sprintf('merge_writes 200ms: live frames arrive batched (after %.0f ms)', (($live->{at} // $t0) - $t0) * 1000));
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
my $delay = @batch ? $batch[0]{at} - $t0 : 0;
ok($delay >= 0.15 && $delay < 1, sprintf('  read in a batch, %.0f ms after it was sent', $delay * 1000));
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
