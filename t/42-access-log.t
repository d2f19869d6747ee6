#!/usr/bin/perl
# The access log (access_log, log_format) as nginx-rtmp-module writes it: a line per
# session for an ffmpeg publisher and two players (ffmpeg, rtmpdump), in a custom format
# and in `combined`, with the bytes and times each really had; `nginx -s reopen` starts a
# new file; a client that never reaches an application goes to its server's log. Also
# `busy` (an idle client is closed after one ping interval), publish_time_fix and
# play_time_fix at their defaults with timestamps past 4.66 hours (extended timestamps),
# and nginx -t's messages for a bad format.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Test::Nginx::RTMP qw(wait_for slurp);
use Time::HiRes qw(time sleep);
use IO::Select;

my $t = Test::Nginx::RTMP->new;

# --- nginx -t -------------------------------------------------------------------------
sub check_conf {
    my ($body) = @_;
    $t->write_config("rtmp { $body server { listen 127.0.0.1:%%PORT_RTMP%%; application live { live on; } } }");
    return $t->test_config;
}
my ($ok, $out) = check_conf('access_log %%DIR%%/a.log nosuch;');
ok(!$ok, 'nginx -t fails for an access_log with an unknown format');
like($out, qr/unknown log format "nosuch".* in \S+nginx\.conf:\d+/, '  naming it') or diag($out);
($ok, $out) = check_conf('log_format f $app$nope;');
ok(!$ok, 'nginx -t fails for a log_format with an unknown variable');
like($out, qr/unknown variable "\$nope".*log_format.* in \S+nginx\.conf:\d+/, '  naming it') or diag($out);
($ok, $out) = check_conf('access_log %%DIR%%/a.log late; log_format late $app;');
ok($ok, 'a format may be defined after the access_log that uses it') or diag($out);

# --- a publisher and two players ------------------------------------------------------
$t->write_config(<<'CONF');
rtmp {
    log_format short '$command|$remote_addr|$app|$name|$args|$bytes_received|$bytes_sent|$session_time|$flashver|$connection|$msec';
    access_log %%DIR%%/server.log;
    server {
        listen 127.0.0.1:%%PORT_RTMP%%;
        application live {
            live on;
            access_log %%DIR%%/live.log short;
            access_log %%DIR%%/combined.log;
        }
    }
    server {
        listen 127.0.0.1:%%PORT_BUSY%%;
        ping 1s;
        busy on;
        application live { live on; access_log off; }
    }
}
CONF
$t->run;
chmod 0755, $t->dir;    # nginx's workers (nobody) reopen the logs there
my $port = $t->port('RTMP');
my $url = "rtmp://127.0.0.1:$port/live";
my $dir = $t->dir;

my $t0 = time;
# Timestamps from 16,790 s: past 0xFFFFFF ms (16,777 s) a second in, so every message
# after that has an extended timestamp (on its type 3 chunks too, with the time fixes on).
my $pub = $t->spawn("$dir/pub.log", 'ffmpeg', '-hide_banner', '-loglevel', 'error', '-re',
    '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=30', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-g', 30, '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '64k',
    '-output_ts_offset', 16790, '-t', 8, '-f', 'flv', "$url/cam?key=k1");
ok(wait_for(sub { slurp($t->dir . '/error.log') =~ /publish: "live\/cam"/ }, 15), 'ffmpeg publishes');
sleep 1.5;
my $tp = time;
my $play = $t->spawn("$dir/play.log", 'ffmpeg', '-hide_banner', '-loglevel', 'error', '-i', "$url/cam?who=ff",
    '-an', '-frames:v', 90, '-f', 'framemd5', "$dir/play.md5");
my $td = time;
my $dump = $t->spawn("$dir/dump.log", 'timeout', '-s', 'INT', 3, 'rtmpdump', '-q', '-r', "$url/cam", '-v', '-o', "$dir/dump.flv");
ok(defined $t->reap($play, 20), 'the ffmpeg player ends');
my $play_secs = time - $tp;
ok(defined $t->reap($dump, 20), 'rtmpdump ends');
my $dump_secs = time - $td;
ok(defined $t->reap($pub, 30), 'the publisher ends');
my $pub_secs = time - $t0;

my @lines;
ok(wait_for(sub { @lines = split /\n/, slurp("$dir/live.log") // ''; @lines == 3 }, 10), 'three lines in the custom format')
    or diag(slurp("$dir/live.log"));
my %by;
for (@lines) {
    my @f = split /\|/;
    $by{ $f[8] =~ /^LNX 10/ ? 'dump' : $f[0] eq 'PUBLISH' ? 'pub' : 'play' } = \@f;
}
my ($p, $f, $d) = @by{qw(pub play dump)};
SKIP: {
    skip 'lines missing', 20 unless $p && $f && $d;
    is_deeply([@$p[0 .. 4]], ['PUBLISH', '127.0.0.1', 'live', 'cam', 'key=k1'], 'publisher: command, address, app, name, args');
    like($p->[8], qr/^FMLE\/3\.0 \(compatible; Lavf/, '  flashver (ffmpeg\'s)');
    my $in = $p->[5];
    ok($in > 150_000 && $in < 3_000_000, "  bytes received: $in");
    ok($p->[6] > 0 && $p->[6] < 10_000, "  bytes sent: $p->[6] (replies only)");
    ok(abs($p->[7] - $pub_secs) <= 1.5, "  session time $p->[7] s (measured ${\ sprintf '%.1f', $pub_secs} s)");
    like($p->[10], qr/^\d{10}\.\d{3}$/, '  msec');
    is_deeply([@$f[0, 3, 4]], ['PLAY', 'cam', 'who=ff'], 'ffmpeg player: command, name, args');
    ok(abs($f->[7] - $play_secs) <= 1.5, "  session time $f->[7] s (measured ${\ sprintf '%.1f', $play_secs} s)");
    ok($f->[6] > 50_000, "  bytes sent: $f->[6]");
    is($d->[0], 'PLAY', 'rtmpdump: PLAY');
    like($d->[8], qr/^LNX /, '  flashver (rtmpdump\'s)');
    my $flv = -s "$dir/dump.flv" // 0;
    # What rtmpdump wrote is what it got, less chunk headers (with a 4-byte extended
    # timestamp each here) and the protocol's messages, plus FLV's own tag headers:
    # within a few percent of what we sent.
    ok($flv > 50_000 && abs($d->[6] - $flv) / $flv < 0.05, "  bytes sent $d->[6], rtmpdump's file $flv bytes");
    ok(abs($d->[7] - $dump_secs) <= 1.5, "  session time $d->[7] s (measured ${\ sprintf '%.1f', $dump_secs} s)");
    isnt($p->[9], $f->[9], 'each line has its connection number');
    ok($d->[5] > 0 && $d->[5] < 10_000, "  bytes received: $d->[5]");
}
my @combined = split /\n/, slurp("$dir/combined.log") // '';
is(scalar @combined, 3, 'the same three sessions in the combined format');
like(join("\n", @combined), qr{^127\.0\.0\.1 \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] PUBLISH "live" "cam" "key=k1" - \d+ \d+ "" "FMLE/3\.0 \(compatible; Lavf[^"]*" \((\d+m )?\d+s\)$}m,
    '  a publisher\'s line, as nginx-rtmp-module writes it') or diag(join "\n", @combined);

# Timestamps past 4.66 hours went through in both directions (publish_time_fix and
# play_time_fix on): the player decoded video at the publisher's times.
# play_time_fix on: the player decoded video at the publisher's times.
my $frames = () = (slurp("$dir/play.md5") // '') =~ /^0,/mg;
is($frames, 90, 'ffmpeg decoded the 90 video frames it asked for');
my @pts = split /\n/, qx{ffprobe -v error -select_streams v -show_entries packet=pts_time -of csv=p=0 $dir/dump.flv};
ok(@pts > 30 && $pts[0] > 16_777.216, sprintf('rtmpdump got %d video frames at timestamps past 0xFFFFFF ms (%.1f to %.1f s)', scalar @pts, $pts[0] // 0, $pts[-1] // 0));
is(qx{ffmpeg -v error -i $dir/dump.flv -f null - 2>&1}, '', '  and they decode with no error');
unlike(slurp("$dir/play.log") // '', qr/error|invalid/i, '  with no error from the player');

# --- server log, reopen --------------------------------------------------------------
my $raw = $t->connect($port);
close $raw;
ok(wait_for(sub { (slurp("$dir/server.log") // '') =~ /^127\.0\.0\.1 \[.*\] NONE "" "" "" - 0 0 "" "" \(0s\)$/m }, 5),
    'a client that never reached an application: its server\'s log, command NONE') or diag(slurp("$dir/server.log"));
rename "$dir/server.log", "$dir/server.log.1" or die;
$t->signal('USR1');
ok(wait_for(sub { -e "$dir/server.log" }, 5), 'nginx -s reopen makes a new file');
$raw = $t->connect($port);
close $raw;
ok(wait_for(sub { (slurp("$dir/server.log") // '') =~ /NONE/ }, 5), '  the next line goes to it');
is(scalar(() = (slurp("$dir/server.log.1") =~ /NONE/g)), 1, '  the rotated file keeps its one line');

# --- busy ----------------------------------------------------------------------------
my $idle = $t->connect($t->port('BUSY'));
my $t1 = time;
my $closed = IO::Select->new($idle)->can_read(5) && !sysread($idle, my $b, 1);
my $after = time - $t1;
ok($closed && $after > 0.8 && $after < 2.6, sprintf('busy on: an idle client is closed after a ping interval (%.1f s at ping 1s)', $after));
like($t->error_log, qr/not busy between pings/, '  and the error log says why');
my $talker = $t->connect($t->port('BUSY'));
$t1 = time;
my $alive = 1;
while (time - $t1 < 2.5) {
    syswrite($talker, "\x03" . ("x" x 10)) or ($alive = 0, last);
    sleep 0.3;
}
ok($alive, 'a client that sends something each interval stays (2.5 s at ping 1s)');

$t->stop;
is(join("\n", $t->alerts), '', 'no alert, crit or emerg in the error log');
done_testing;
