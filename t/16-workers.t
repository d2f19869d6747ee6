#!/usr/bin/perl
# worker_processes 2 (and 4, at the end): every worker serves every stream. Players
# spread over both workers (listen ... reuseport) play a stream published on either,
# starting on a keyframe, also those that waited before it was published; HLS and
# recording happen once; a second publisher of the name on the other worker is refused;
# /stat from any worker shows every worker's players and /control drops a player on
# either; a reload keeps every player and a new player after it plays the stream from the
# old worker; killing the publisher's worker ends the stream for the other worker's
# players, and nginx goes on. With 4 workers: 40 players on all four, all counted.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Test::Nginx::RTMP qw(wait_for slurp);
use Test::Nginx::RTMPClient;
use IO::Socket::IP;
use JSON::PP;
use Time::HiRes qw(sleep time);

my $t = Test::Nginx::RTMP->new;
$t->write_config(<<'CONF', workers => 2);
rtmp_auto_push on;
rtmp {
    server {
        listen 127.0.0.1:%%PORT_RTMP%% reuseport;
        application live {
            live on;
            hls on;
            hls_path %%DIR%%/hls;
            hls_fragment 1s;
            hls_playlist_length 3s;
            record all;
            record_path %%DIR%%/rec;
            record_unique on;
        }
    }
}
http {
    access_log off;
    server {
        listen 127.0.0.1:%%PORT_HTTP%% reuseport;
        location = /stat { rtmp_stat all; }
        location /control { rtmp_control all; }
    }
}
CONF
my $dir = $t->dir;
chmod 0755, $dir;
for ("$dir/hls", "$dir/rec") { mkdir $_; chmod 0777, $_ }
$t->run;
my @workers = $t->worker_pids;
is(scalar @workers, 2, 'two workers');
unlike($t->startup_output, qr/\[warn\]/, 'no warning about several workers');
my $url = 'rtmp://127.0.0.1:' . $t->port('RTMP') . '/live/s';

# The worker that took a connection: its connect line names its flashVer.
sub worker_of { $t->worker_of(@_) }

# The connection number of a client, by the flashVer it connected with.
sub number_of {
    my ($tag) = @_;
    my ($n) = $t->error_log =~ /\d+#\d+: \*(\d+) connect: app "live" flashver "\Q$tag\E"/;
    return $n;
}

# Players waiting before the stream is published.
my (@waiting, %waiting_on);
my $W = 12;    # (12: that all land on one worker is one chance in 2048)
for my $i (1 .. $W) {
    my $c = Test::Nginx::RTMPClient->new(port => $t->port('RTMP'));
    $c->connect_app('live', flashVer => "WAIT-$i");
    is($c->play('s'), 'NetStream.Play.Start', "waiting player $i: play started") if $i == 1;
    $c->play('s') if $i > 1;
    my $w = worker_of("WAIT-$i");
    $waiting_on{$w}++;
    push @waiting, [$c, $w, "WAIT-$i"];
}
is(scalar(keys %waiting_on), 2, 'the waiting players are on both workers (' . join(', ', map { "$_: $waiting_on{$_}" } sort keys %waiting_on) . ')');

my $published = time;
$t->ffmpeg_publish($url, 40, gop => 30);
my $publisher;
ok(wait_for(sub { ($publisher) = $t->error_log =~ /(\d+)#\d+: \*\d+ publish: "live\/s"/; $publisher }, 5), "published (on worker $publisher)");
my ($other) = grep { $_ != $publisher } @workers;

# Each waiting player gets the codec headers, then a keyframe first.
my @first_key;
for my $p (@waiting) {
    my ($c, $w) = @$p;
    my ($key, $at);
    while (my $m = $c->read_message(5)) {
        next unless $m->{type} == 9 && length $m->{body} > 2;
        next if substr($m->{body}, 1, 1) eq "\x00";    # the AVC sequence header
        ($key, $at) = ((ord($m->{body}) >> 4) == 1, $m->{at});
        last;
    }
    push @first_key, [$w, $key, defined $at ? $at - $published : undef];
}
my @late = grep { !$_->[1] } @first_key;
ok(!@late, 'every waiting player, on either worker, starts on a keyframe') or diag(explain(\@first_key));
my ($slowest) = sort { $b <=> $a } map { $_->[2] // 99 } grep { $_->[0] == $other } @first_key;
cmp_ok($slowest, '<', 3, sprintf('those on the other worker get it %.2f s after ffmpeg started', $slowest));

# 20 ffmpeg players, three seconds each.
my @players;
for my $i (1 .. 20) {
    push @players, $t->spawn("$dir/play$i.log", 'ffmpeg', '-hide_banner', '-loglevel', 'error', '-i', $url, '-t', '3', '-c', 'copy', '-y', "$dir/out$i.flv");
}

# A second publisher of a name, on either worker, is refused: "t" (no players: the
# other worker has no copy of it, only the shared registry says it is taken).
my $first = Test::Nginx::RTMPClient->new(port => $t->port('RTMP'));
$first->connect_app('live', flashVer => 'PUB-0');
is($first->publish('t'), 'NetStream.Publish.Start', 'live/t is published');
my $t_on = worker_of('PUB-0');
my %refused;
for my $i (1 .. 8) {
    my $c = Test::Nginx::RTMPClient->new(port => $t->port('RTMP'));
    $c->connect_app('live', flashVer => "PUB-$i");
    my $msid = $c->create_stream;
    $c->command($msid, 'publish', undef, 't', 'live');
    my $v = $c->wait_command(5, 'onStatus');
    my ($info) = grep { ref $_ eq 'HASH' } @{ $v // [] };
    push @{ $refused{ worker_of("PUB-$i") } }, ($info->{code} // '') . ' ' . ($info->{description} // '');
}
my @all = map { @$_ } values %refused;
is(scalar(grep { /^NetStream\.Publish\.BadName/ } @all), 8, 'a second publisher of the name is refused with BadName, 8 times of 8') or diag(explain(\%refused));
my ($t_other) = grep { $_ != $t_on } @workers;
SKIP: {
    skip 'no attempt landed on the other worker', 1 unless $refused{$t_other};
    like($refused{$t_other}[0], qr/in another worker/, 'also on the other worker, which only the registry tells') or diag(explain(\%refused));
}
$first->{sock}->close;

$t->reap($_, 20) for @players;
my ($decoded, $errors) = (0, '');
for my $i (1 .. 20) {
    my $p = Test::Nginx::RTMP::probe("$dir/out$i.flv");
    $decoded++ if ($p->{video}{frames} // 0) >= 60 && ($p->{audio}{frames} // 0) > 0;
    $errors .= Test::Nginx::RTMP::decode_errors("$dir/out$i.flv");
}
is($decoded, 20, 'the 20 ffmpeg players decode three seconds of video and audio');
is($errors, '', 'without a decoding error (each started on a keyframe)');
my %by;
my $log = $t->error_log;
$by{$1}++ while $log =~ /(\d+)#\d+: \*\d+ play: "live\/s", client: 127\.0\.0\.1/g;
is(scalar(keys %by), 2, 'the players were spread over both workers (' . join(', ', map { "$_: $by{$_}" } sort keys %by) . ')');
my @pulls = $log =~ /\*\d+ play: "live\/s", client: unix:/g;
is(scalar @pulls, 1, 'the other worker pulled the stream once, for all its players');

# /stat, whichever worker answers.
sub get {
    my ($path) = @_;
    my $s = IO::Socket::IP->new(PeerHost => '127.0.0.1', PeerPort => $t->port('HTTP'), Timeout => 3) or return '';
    print $s "GET $path HTTP/1.0\r\nHost: x\r\n\r\n";
    local $/;
    return <$s> // '';
}
sub stream_xml { my ($x) = get('/stat') =~ m{(<stream>\s*<name>s</name>.*?</stream>)}s; $x // '' }
ok(wait_for(sub { my @c = stream_xml() =~ /<client>/g; @c == $W + 1 }, 4), "/stat shows the stream with its publisher and $W players") or diag(get('/stat'));
my @counts = map { my @c = stream_xml() =~ /<client>/g; scalar @c } 1 .. 8;
is_deeply(\@counts, [($W + 1) x 8], 'from either worker, every time (8 requests)');
my ($json) = get('/stat?format=json') =~ /\r\n\r\n(.*)\z/s;
my %on_worker;
for my $app (map { @{ $_->{applications} // [] } } @{ (eval { JSON::PP::decode_json($json) } // {})->{servers} // [] }) {
    for my $s (grep { $_->{name} eq 's' } @{ $app->{live}{streams} // [] }) {
        $on_worker{ $_->{worker} }++ for @{ $s->{clients} // [] };
    }
}
is_deeply([sort keys %on_worker], [sort @workers], '/stat JSON says which worker serves each client (' . join(', ', map { "$_: $on_worker{$_}" } sort keys %on_worker) . ')');
my $xml = stream_xml();
unlike($xml, qr/ngx-rtmp-rs worker|unix:/, 'the pull between workers is not shown as a client');
like($xml, qr/<publishing\/>.*<width>320<\/width>/s, 'the stream shows its publisher and codec');

# /control drops a player on either worker, whichever worker takes the request.
for my $on (@workers) {
    my ($i) = grep { $waiting[$_][1] == $on } 0 .. $#waiting;
    my ($c, undef, $tag) = @{ splice @waiting, $i, 1 };
    my $n = number_of($tag);
    my ($body) = get("/control/drop/subscriber?app=live&name=s&clientid=$n") =~ /\r\n\r\n(.*)\z/s;
    is($body, '1', "/control/drop/subscriber drops the player on worker $on (client $n)");
    ok($c->closed(3), '  its connection is closed');
}
my ($none) = get('/control/drop/subscriber?app=live&name=nosuch') =~ /\r\n\r\n(.*)\z/s;
is($none, '0', '/control answers 0 when no worker has such a client');
ok(wait_for(sub { my @c = stream_xml() =~ /<client>/g; @c == $W - 1 }, 4), '/stat shows them gone');

my @recs = glob("$dir/rec/s*.flv");
is(scalar @recs, 1, 'one recording (by the publisher\'s worker)');
my @seq;
for (1 .. 3) {
    push @seq, (slurp("$dir/hls/s.m3u8") // '') =~ /#EXT-X-MEDIA-SEQUENCE:(\d+)/ ? $1 : -1;
    sleep 1.1;
}
ok($seq[0] >= 0 && $seq[0] <= $seq[1] && $seq[1] <= $seq[2], "one HLS playlist, its sequence going forward (@seq)");

# A reload: every player stays; a new one plays the stream from the old worker.
ok($t->reload, 'reload');
ok(wait_for(sub { my @w = $t->worker_pids; (grep { my $p = $_; !grep { $_ == $p } @workers } @w) >= 2 }, 5), 'two new workers started');
sleep 1;
my $still = grep { my $c = $_->[0]; my $got; while (my $m = $c->read_message(2)) { if ($m->{type} == 9) { $got = 1; last } } $got } @waiting;
is($still, $W - 2, 'the waiting players still receive video after the reload');
my $after = $t->spawn("$dir/after.log", 'ffmpeg', '-hide_banner', '-loglevel', 'error', '-i', $url, '-t', '2', '-c', 'copy', '-y', "$dir/after.flv");
$t->reap($after, 15);
cmp_ok(Test::Nginx::RTMP::probe("$dir/after.flv")->{video}{frames} // 0, '>=', 40, 'a player after the reload (on a new worker) plays the stream of the old one');

# The publisher's worker is killed: the other worker's players see the stream end (they
# are told, or, their worker being an old one shutting down, closed), none hangs.
my @on_other = map { $_->[0] } grep { $_->[1] == $other } @waiting;
kill 'KILL', $publisher;
my $killed = time;
my ($told, $closed) = (0, 0);
for my $c (@on_other) {
    my $ended;
    while (my $m = $c->read_message(5)) {
        next unless $m->{type} == 20;
        my @v = Test::Nginx::RTMPClient::amf_decode($m->{body});
        if ((Test::Nginx::RTMPClient::code_of(\@v) // '') =~ /UnpublishNotify|Stop/) { $told++; $ended = 1; last }
    }
    $closed++ if !$ended && $c->closed(1);
}
is($told + $closed, scalar @on_other, sprintf('the %d players on the other worker see the end within %.1f s (%d told, %d closed)', scalar @on_other, time - $killed, $told, $closed));
ok(wait_for(sub { grep { $_ != $publisher } $t->worker_pids }, 3), 'nginx goes on');
$t->ffmpeg_publish($url, 6, gop => 30);
sleep 1.5;
my $again = $t->spawn("$dir/again.log", 'ffmpeg', '-hide_banner', '-loglevel', 'error', '-i', $url, '-t', '2', '-c', 'copy', '-y', "$dir/again.flv");
$t->reap($again, 15);
cmp_ok(Test::Nginx::RTMP::probe("$dir/again.flv")->{video}{frames} // 0, '>=', 40, 'the name is published again and played (the dead worker\'s claim is gone)');

my @alerts = grep { !/exited on signal 9/ } $t->alerts;
is_deeply(\@alerts, [], 'no alerts but the killed worker\'s');
$_->[0]->{sock}->close for @waiting;
ok($t->stop(10), 'nginx stops');
my @left = grep { my ($p) = /ngx-rtmp-rs\.(\d+)\./; grep { $_ == $p } @workers } glob('/tmp/ngx-rtmp-rs.*');
is_deeply(\@left, [grep { /\.$publisher\./ } @left], 'the workers that exited removed their sockets and /stat files');
for (@left) { unlink $_ }

# worker_processes 4: 40 players of one stream spread over the workers, each decoding it;
# /stat counts them all.
{
    my $t4 = Test::Nginx::RTMP->new;
    $t4->write_config(<<'CONF', workers => 4);
rtmp {
    server {
        listen 127.0.0.1:%%PORT_RTMP%% reuseport;
        application live { live on; }
    }
}
http {
    access_log off;
    server {
        listen 127.0.0.1:%%PORT_HTTP%% reuseport;
        location = /stat { rtmp_stat all; }
    }
}
CONF
    $t4->run;
    my $d4 = $t4->dir;
    my $u4 = 'rtmp://127.0.0.1:' . $t4->port('RTMP') . '/live/four';
    $t4->ffmpeg_publish($u4, 20, gop => 30);
    sleep 1.5;
    my @p4 = map { $t4->spawn("$d4/p$_.log", 'ffmpeg', '-hide_banner', '-loglevel', 'error', '-i', $u4, '-t', '4', '-c', 'copy', '-y', "$d4/o$_.flv") } 1 .. 40;
    sleep 2.5;
    my $xml = '';
    my $n = 0;
    wait_for(sub {
        my $s = IO::Socket::IP->new(PeerHost => '127.0.0.1', PeerPort => $t4->port('HTTP'), Timeout => 3) or return;
        print $s "GET /stat HTTP/1.0\r\nHost: x\r\n\r\n";
        local $/;
        $xml = <$s> // '';
        $n = () = $xml =~ /<client>/g;
        $n == 41;
    }, 4);
    is($n, 41, '4 workers: /stat shows the publisher and the 40 players');
    $t4->reap($_, 20) for @p4;
    my $ok4 = grep { (Test::Nginx::RTMP::probe("$d4/o$_.flv")->{video}{frames} // 0) >= 90 && Test::Nginx::RTMP::decode_errors("$d4/o$_.flv") eq '' } 1 .. 40;
    is($ok4, 40, '4 workers: the 40 players decode four seconds each, without error');
    my %by4;
    my $log4 = $t4->error_log;
    $by4{$1}++ while $log4 =~ /(\d+)#\d+: \*\d+ play: "live\/four", client: 127\.0\.0\.1/g;
    is(scalar(keys %by4), 4, '4 workers: the players were on all four (' . join(', ', map { $by4{$_} } sort keys %by4) . ')');
    ok($t4->stop(10), '4 workers: nginx stops');
}

done_testing;
