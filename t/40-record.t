#!/usr/bin/perl
# Recording with real clients: ffmpeg publishes (one encoder, teed to several applications
# with different recorders), ffprobe and ffmpeg read what was recorded. Also: splits by
# interval and size, keyframes only, two recorders in an application, append across a
# republish, record_lock, record_notify and on_record_done, an unwritable record_path,
# and crash safety (publisher and worker killed with SIGKILL).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Path qw(make_path);
use JSON::PP;
use Test::More;
use Test::Nginx::RTMP qw(wait_for probe decode_errors slurp);
use Test::Nginx::RTMPClient;
use Time::HiRes qw(time sleep);

my $t = Test::Nginx::RTMP->new;
my $dir = $t->dir;
chmod 0755, $dir;
make_path("$dir/$_", { mode => 0777 }) for qw(rec rec-audio parts sized keys append locked killed notify);
chmod 0777, "$dir/$_" for qw(rec rec-audio parts sized keys append locked killed notify);

my $record = $t->notify_server;

$t->write_config(<<'CONF');
rtmp {
    server {
        listen 127.0.0.1:%%PORT_RTMP%%;
        application rec {
            live on;
            record all;
            record_path %%DIR%%/rec;
            record_unique on;
            record_suffix .flv;
            on_record_done http://127.0.0.1:%%PORT_CB%%/ok/on_record_done;
            recorder aud {
                record audio;
                record_path %%DIR%%/rec-audio;
                record_suffix -audio.flv;
            }
        }
        application parts  { live on; record video; record_path %%DIR%%/parts; record_unique on; record_interval 2s; }
        application sized  { live on; record all; record_path %%DIR%%/sized; record_unique on; record_max_size 150K; }
        application keys   { live on; record keyframes; record_path %%DIR%%/keys; }
        application append { live on; record all; record_path %%DIR%%/append; record_append on; }
        application locked { live on; record all; record_path %%DIR%%/locked; record_lock on; }
        application broken { live on; record all; record_path /proc/1/no-such-dir; }
        application killed { live on; record all; record_path %%DIR%%/killed; }
        application notify {
            live on;
            record all;
            record_path %%DIR%%/notify;
            record_notify on;
        }
    }
}
CONF
$t->run;
my $port = $t->port('RTMP');
my $url = "rtmp://127.0.0.1:$port";

# Checks an FLV file tag by tag: the header, every tag whole, the sizes chained, nothing
# after the last tag. Returns (ok, number of tags, last timestamp in ms).
sub flv_chain {
    my ($file) = @_;
    my $data = slurp($file) // return (0, 0, 0);
    return (0, 0, 0) unless substr($data, 0, 3) eq 'FLV' && length $data >= 13;
    my ($at, $n, $last) = (13, 0, 0);
    while ($at < length $data) {
        return (0, $n, $last) if $at + 11 > length $data;
        my ($type, $len) = (ord(substr($data, $at, 1)), unpack('N', "\0" . substr($data, $at + 1, 3)));
        my $ts = unpack('N', substr($data, $at + 7, 1) . substr($data, $at + 4, 3));
        return (0, $n, $last) if $at + 15 + $len > length $data;
        return (0, $n, $last) if unpack('N', substr($data, $at + 11 + $len, 4)) != 11 + $len;
        return (0, $n, $last) if $ts < $last;
        ($last, $n, $at) = ($ts, $n + 1, $at + 15 + $len);
    }
    return (1, $n, $last);
}

sub duration {
    my ($file) = @_;
    my $d = qx{ffprobe -v error -show_entries format=duration -of csv=p=0 $file 2>&1};
    chomp $d;
    return $d;
}

sub first_video_key {
    my ($file) = @_;
    my ($k) = qx{ffprobe -v error -select_streams v -read_intervals %+#1 -show_entries frame=key_frame -of csv=p=0 $file 2>&1};
    return ($k // '') =~ /^(\d)/ ? $1 : $k;
}

sub files { my ($d) = @_; return sort glob("$dir/$d/*.flv") }

# --- one encoder, teed to seven applications, 8 seconds ---------------------------------
my $start = time;
my $pub = $t->ffmpeg_publish(undef, 8, gop => 30,
    tee => [map {"$url/$_"} qw(rec/show parts/p sized/s keys/k locked/l broken/b)]);
ok(wait_for(sub { $t->error_log =~ m{record: "\Q$dir\E/locked/l\.flv"} }, 8), 'recording starts at the first keyframe');

# While it records: the file is locked (an fcntl write lock, as nginx-rtmp-module takes).
my $lock_rc = system("python3 -c 'import fcntl, sys; fcntl.lockf(open(sys.argv[1], \"r+\"), fcntl.LOCK_EX | fcntl.LOCK_NB)' $dir/locked/l.flv 2>/dev/null");
ok($lock_rc != 0, 'record_lock: another process cannot lock the file while it is recorded');

# An unwritable record_path: the stream itself goes on.
my $p = Test::Nginx::RTMPClient->new(port => $port);
$p->connect_app('broken');
is($p->play('b'), 'NetStream.Play.Start', 'record_path not writable: a player of that stream starts');
my $video = 0;
my $until = time + 2;
while (time < $until) { my $m = $p->read_message($until - time) or last; $video++ if $m->{type} == 9 }
cmp_ok($video, '>', 20, "  and gets its video ($video frames in 2 s)");
undef $p;
like($t->error_log, qr/\[error\].*record: cannot open \/proc\/1\/no-such-dir\/b\.flv: .*this recording stops, the stream goes on/, '  the error log says why');
is(scalar(() = $t->error_log =~ /record: cannot open \/proc/g), 1, '  once');

is($t->reap($pub, 20), 0, 'the publisher ran its 8 seconds');
my $elapsed = time - $start;
ok(wait_for(sub { $t->error_log =~ m{/rec/show-\d+\.flv" done} }, 5), 'the recording is completed when the publisher leaves');

# --- record all, record_unique, record_suffix ----------------------------------------------
my ($show) = files('rec');
like($show // '', qr{/rec/show-\d{10}\.flv$}, 'record_unique on: NAME-UNIXTIME.flv');
my $pr = probe($show);
is($pr->{video}{codec}, 'h264', '  ffprobe reads its video');
is($pr->{audio}{codec}, 'aac', '  and its audio');
my $d = duration($show);
cmp_ok(abs($d - 8), '<=', 1 / 30 + 0.002, "  its duration ($d s) is the 8 s published, within a frame (1/30 s)");
is(first_video_key($show), '1', '  video starts on a keyframe');
is(decode_errors($show), '', '  it decodes without an error');
my ($chain_ok) = flv_chain($show);
ok($chain_ok, '  every tag whole, timestamps never going back');

my ($aud) = files('rec-audio');
like($aud // '', qr{/rec-audio/show-\d+-audio\.flv$}, 'a second recorder in the application writes its own file (record_unique inherited)');
$pr = probe($aud);
ok($pr->{audio} && !$pr->{video}, '  audio only');

# --- splits -------------------------------------------------------------------------------
my @parts = files('parts');
cmp_ok(scalar @parts, '>=', 3, scalar(@parts) . ' files with record_interval 2s');
is(join(',', map { first_video_key($_) } @parts), join(',', ('1') x @parts), '  each starting on a keyframe');
is(join('', map { decode_errors($_) } @parts), '', '  each decoding cleanly');
ok(!grep({ probe($_)->{audio} } @parts), '  video only (record video)');

my @sized = files('sized');
cmp_ok(scalar @sized, '>=', 2, scalar(@sized) . ' files with record_max_size 150K');
ok(!grep({ -s $_ > 150 * 1024 + 65536 } @sized), '  none much over the limit');
is(join(',', map { first_video_key($_) } @sized), join(',', ('1') x @sized), '  each starting on a keyframe');

my ($keys) = files('keys');
my @kf = qx{ffprobe -v error -select_streams v -show_entries frame=key_frame -of csv=p=0 $keys 2>&1};
@kf = grep { length } map { /^(\d)/ ? $1 : s/\s+//gr } @kf;
cmp_ok(scalar @kf, '>=', 7, 'record keyframes: ' . scalar(@kf) . ' frames');
ok(!grep({ $_ ne '1' } @kf), '  all keyframes');

# --- on_record_done ------------------------------------------------------------------------
ok(wait_for(sub { (slurp($record) // '') =~ /record_done/ }, 3), 'on_record_done is called');
my @done = map { decode_json($_) } grep { /record_done/ } split /\n/, (slurp($record) // '');
my ($main_done) = grep { $_->{fields}{recorder} eq '' } @done;
my ($aud_done) = grep { $_->{fields}{recorder} eq 'aud' } @done;
is($main_done && $main_done->{fields}{path}, $show, '  with the file\'s path');
is($main_done && join(',', @{ $main_done->{field_order} }), 'app,flashver,swfurl,tcurl,pageurl,addr,clientid,call,recorder,name,path',
    '  and nginx-rtmp-module\'s fields');
is($aud_done && $aud_done->{fields}{path}, $aud, '  and for the named recorder, with its name');

# --- append across a republish --------------------------------------------------------------
for my $round (1, 2) {
    my $a = $t->ffmpeg_publish("$url/append/a", 3, gop => 30);
    is($t->reap($a, 10), 0, "append: publish $round");
    wait_for(sub { (() = $t->error_log =~ m{/append/a\.flv" done}g) == $round }, 5);
}
my @app = files('append');
is(scalar @app, 1, 'record_append: one file for both');
$d = duration($app[0]);
cmp_ok(abs($d - 6), '<=', 0.2, "  holding both ($d s)");
($chain_ok) = flv_chain($app[0]);
ok($chain_ok, '  whose timestamps go on from the first');
is(decode_errors($app[0]), '', '  and which decodes cleanly');

# --- record_notify -------------------------------------------------------------------------
my $c = Test::Nginx::RTMPClient->new(port => $port);
$c->connect_app('notify');
is($c->publish('n'), 'NetStream.Publish.Start', 'a protocol-level publisher');
my $msid = $c->{msid};
$c->send_message(csid => 6, type => 9, msid => $msid, ts => 0, body => "\x17\x00\x00\x00\x00\x01\x64\x00\x1f");
$c->send_message(csid => 6, type => 9, msid => $msid, ts => $_ * 40, body => ($_ % 25 ? "\x27" : "\x17") . "\x01\x00\x00\x00" . ('x' x 50)) for 0 .. 30;
is(Test::Nginx::RTMPClient::code_of($c->wait_command(3, 'onStatus')), 'NetStream.Record.Start', 'record_notify: NetStream.Record.Start');
$c->command(0, 'deleteStream', undef, $msid);
is(Test::Nginx::RTMPClient::code_of($c->wait_command(3, 'onStatus')), 'NetStream.Record.Stop', '  and NetStream.Record.Stop');
undef $c;

# --- crash safety --------------------------------------------------------------------------
my $k = $t->ffmpeg_publish("$url/killed/pub", 20, gop => 30);
ok(wait_for(sub { -s "$dir/killed/pub.flv" && -s "$dir/killed/pub.flv" > 400_000 }, 10), 'a recording under way');
kill 'KILL', $k;
ok(wait_for(sub { $t->error_log =~ m{/killed/pub\.flv" done} }, 5), 'publisher SIGKILLed: the recording is completed');
my ($ok, $n, $last) = flv_chain("$dir/killed/pub.flv");
ok($ok, "  every tag whole ($n tags, up to $last ms)");
is(decode_errors("$dir/killed/pub.flv"), '', '  it decodes cleanly');
cmp_ok(duration("$dir/killed/pub.flv"), '>', 1, '  and plays up to the end');

my ($worker) = $t->worker_pids;
my $w = $t->ffmpeg_publish("$url/killed/w", 20, gop => 30);
ok(wait_for(sub { -s "$dir/killed/w.flv" && -s "$dir/killed/w.flv" > 400_000 }, 10), 'another recording under way');
kill 'KILL', $worker;
sleep 0.5;
kill 'KILL', $w;
($ok, $n, $last) = flv_chain("$dir/killed/w.flv");
ok($ok, "worker SIGKILLed: the file ends on a complete tag ($n tags, up to $last ms)");
my $pw = probe("$dir/killed/w.flv");
ok($pw->{video} && $pw->{video}{frames} > 10, "  ffprobe reads it ($pw->{video}{frames} video frames)");
cmp_ok(duration("$dir/killed/w.flv"), '>', 1, '  and it plays');

$t->stop;
done_testing;
