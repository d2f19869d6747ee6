#!/usr/bin/perl
# exec with real ffmpeg: nginx-rtmp-module's transcoding recipe (exec ffmpeg from one
# application into an HLS one) makes its rendition; exec_publish, exec_publish_done,
# exec_play, exec_play_done and exec_record_done run once with nginx-rtmp-module's
# variables; children live in their own process group and are gone (not zombies) when
# their stream ends; a command that keeps failing respawns with growing delays and its
# output reaches the error log; a hung transcoder (SIGSTOP) is restarted; exec_static runs
# with nginx; reload keeps a live stream's transcoder, quit leaves no child behind.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP ();
use Test::More;
use Test::Nginx::RTMP qw(wait_for slurp);
use Time::HiRes qw(time sleep);

my $t = Test::Nginx::RTMP->new;
my $dir = $t->dir;
mkdir "$dir/$_", 0777 for qw(hls rec out);
chmod 0777, "$dir/$_" for qw(hls rec out);
chmod 0755, $dir;
my $events = "$dir/out/events.log";

my ($ok, $out) = $t->write_config(<<'CONF')->test_config;
rtmp { server { listen 127.0.0.1:%%PORT_RTMP%%; application a { live on; exec no-such-transcoder -i x; } } }
CONF
ok(!$ok && $out =~ /exec: program "no-such-transcoder" not found/, 'nginx -t names a program that is not there') or diag $out;

$t->write_config(<<'CONF', log_level => 'info');
rtmp {
    exec_static sh -c "echo static started >> %%DIR%%/out/events.log; exec sleep 600";
    server {
        listen 127.0.0.1:%%PORT_RTMP%%;
        application live {
            live on;
            exec ffmpeg -hide_banner -loglevel warning -i rtmp://127.0.0.1:%%PORT_RTMP%%/live/$name
                -c:v libx264 -preset ultrafast -tune zerolatency -b:v 200k -s 160x120 -g 30 -c:a copy
                -f flv rtmp://127.0.0.1:%%PORT_RTMP%%/hls/${name}_low;
            exec_publish sh -c "echo publish $app $name $addr '$flashver' >> %%DIR%%/out/events.log";
            exec_publish_done sh -c "echo publish_done $name >> %%DIR%%/out/events.log";
            exec_play sh -c "echo play $name '$flashver' >> %%DIR%%/out/events.log";
            exec_play_done sh -c "echo play_done $name >> %%DIR%%/out/events.log";
            record all;
            record_path %%DIR%%/rec;
            exec_record_done sh -c "echo record_done $path $filename $basename $dirname [$recorder] >> %%DIR%%/out/events.log";
        }
        application hls {
            live on;
            hls on;
            hls_path %%DIR%%/hls;
            hls_fragment 1s;
        }
        application fail {
            live on;
            respawn_timeout 1s;
            exec sh -c "echo failing for $name; exit 3";
        }
        application hang {
            live on;
            respawn_timeout 1s;
            exec_stall_timeout 3s;
            exec_kill_signal term;
            exec ffmpeg -hide_banner -loglevel error -i rtmp://127.0.0.1:%%PORT_RTMP%%/hang/$name
                -c copy -f flv rtmp://127.0.0.1:%%PORT_RTMP%%/hls/${name}_copy;
        }
    }
}
http {
    server {
        listen 127.0.0.1:%%PORT_HTTP%%;
        location = /stat { rtmp_stat all; }
        location = /metrics { rtmp_stat all; rtmp_stat_format prometheus; }
    }
}
CONF
$t->run;
my $url = "rtmp://127.0.0.1:" . $t->port('RTMP');
my ($worker) = $t->worker_pids;

# The commands the worker runs (each under its keeper, "nginx: exec keeper"), by their
# command lines.
sub children {
    my ($of) = @_;
    my %c;
    for my $keeper (qx{pgrep -P $of}) {
        chomp $keeper;
        for (qx{pgrep -P $keeper}) {
            chomp;
            my $cmd = slurp("/proc/$_/cmdline") // next;
            $cmd =~ s/\0/ /g;
            $c{$_} = $cmd;
        }
    }
    return %c;
}
sub child_matching {
    my ($of, $re) = @_;
    my %c = children($of);
    my ($pid) = grep { $c{$_} =~ $re } sort keys %c;
    return $pid;
}
sub parent_of { (split ' ', ((slurp("/proc/$_[0]/stat") // '') =~ s/^.*\) //sr))[1] }
sub group_of { (split ' ', ((slurp("/proc/$_[0]/stat") // '') =~ s/^.*\) //sr))[2] }

ok(wait_for(sub { (slurp($events) // '') =~ /static started/ }, 10), 'exec_static runs when nginx starts');
my $static = child_matching($worker, qr/^sleep 600/);
ok($static, 'and keeps running');

my $pub = $t->ffmpeg_publish("$url/live/cam", 30, gop => 30);
ok(wait_for(sub { -s "$dir/hls/cam_low.m3u8" && (slurp("$dir/hls/cam_low.m3u8") =~ tr/\n// ) > 6 }, 20),
    'the exec recipe publishes a rendition that HLS segments') or diag $t->error_log;
my $probe = qx{ffprobe -v error -select_streams v -show_entries stream=width,height -of csv=p=0 $dir/hls/cam_low.m3u8 2>&1};
like($probe, qr/^160,120/m, 'the rendition is 160x120');
my $ff = child_matching($worker, qr/^ffmpeg .*cam_low/);
ok($ff, 'the transcoder is a child of the worker');
my $keeper = parent_of($ff);
is(group_of($ff), $keeper, 'in a process group of its own (its keeper\'s)');
like(slurp("/proc/$keeper/cmdline") // '', qr/^nginx: exec keeper/, 'the keeper is named as such in ps');
like($t->error_log, qr/exec_push "cam": ffmpeg started \(pid $keeper\)/, 'its start is logged');
like(slurp($events), qr/^publish live cam 127\.0\.0\.1 FMLE\/3\.0/m, 'exec_publish with $app $name $addr $flashver');

# /stat and /metrics show the children.
sub get {
    my ($path) = @_;
    return scalar qx{curl -s --max-time 5 http://127.0.0.1:@{[$t->port('HTTP')]}$path};
}
my $stat = eval { JSON::PP::decode_json(get('/stat?format=json')) } // {};
my ($child) = grep { $_->{command} eq 'exec_push "cam": ffmpeg' } @{ $stat->{exec} // [] };
ok($child && $child->{state} eq 'running' && $child->{pid} == $keeper && $child->{starts} == 1, '/stat JSON lists the transcoder, running')
    or diag explain $stat->{exec};
like(get('/metrics'), qr/^rtmp_exec_running\{command="exec_push \\"cam\\": ffmpeg"\} 1$/m, '/metrics too');

# A player: exec_play and exec_play_done.
system("timeout 3 rtmpdump -q -v -r $url/live/cam -o /dev/null >/dev/null 2>&1");
ok(wait_for(sub { (slurp($events) // '') =~ /^play_done cam$/m }, 5), 'exec_play_done once the player left');
is(scalar(() = slurp($events) =~ /^play cam LNX 10,/mg), 1, 'exec_play ran once for the player (and once for the transcoder)');

# A command that keeps failing: respawned later and later, its output logged.
my $failing = $t->ffmpeg_publish("$url/fail/x", 9);
ok(wait_for(sub { $t->error_log =~ /respawning in 4\.0 s/ }, 15), 'a failing command respawns after 1, 2, 4 s');
my $log = $t->error_log;
ok($log =~ /exec_push "x": sh \(pid \d+\) exited with code 3 after [\d.]+ s \(its last line: failing for x\); respawning in 1\.0 s.*respawning in 2\.0 s/s,
    'each exit is logged with its code and last line') or diag join "\n", grep { /exec/ } split /\n/, $log;
like($log, qr/\[notice\].*exec_push "x": sh: failing for x/, 'its output is in the error log');

# A hung transcoder is restarted.
my $hung_pub = $t->ffmpeg_publish("$url/hang/h", 25, gop => 30);
my $copy;
ok(wait_for(sub { $copy = child_matching($worker, qr/^ffmpeg .*h_copy/); $copy && -s "$dir/hls/h_copy.m3u8" }, 15), 'a second transcoder runs');
kill 'STOP', $copy;
my $copy_keeper = parent_of($copy);
ok(wait_for(sub { $t->error_log =~ /pid $copy_keeper\): its output has had no media for 3000 ms while its source had: restarting it/ }, 10),
    'stopped (SIGSTOP), it is found stalled');
ok(wait_for(sub { !Test::Nginx::RTMP::alive($copy) && (child_matching($worker, qr/^ffmpeg .*h_copy/) // $copy) != $copy }, 15),
    'and replaced by a new one') or diag join "\n", grep { /exec/ } split /\n/, $t->error_log;

# The publisher ends: its children go, done callbacks run, the recording's too.
is($t->reap($pub, 40), 0, 'the publisher finished');
ok(wait_for(sub { !-e "/proc/$ff" && !-e "/proc/$keeper" }, 8), 'its transcoder is gone (and reaped) within the grace period');
ok(wait_for(sub { (slurp($events) // '') =~ /^publish_done cam$/m }, 5), 'exec_publish_done');
my ($rec) = glob("$dir/rec/cam*.flv");
my ($file) = $rec =~ m{([^/]+)$};
(my $base = $file) =~ s/\.flv$//;
ok(wait_for(sub { (slurp($events) // '') =~ /^record_done \Q$rec $file $base $dir\/rec\E \[\]$/m }, 5),
    'exec_record_done with $path $filename $basename $dirname $recorder') or diag slurp($events);

# Reload keeps a live stream's transcoder on the old worker; quit leaves no child behind.
my $live = $t->ffmpeg_publish("$url/live/r", 20, gop => 30);
my $rff;
ok(wait_for(sub { $rff = child_matching($worker, qr/^ffmpeg .*r_low/) and -s "$dir/hls/r_low.m3u8" }, 15), 'a transcoder for a new stream');
$t->reload;
sleep 3;
ok(Test::Nginx::RTMP::alive($rff), 'a reload leaves the live stream\'s transcoder running');
ok(wait_for(sub { !Test::Nginx::RTMP::alive($static) }, 5), 'the old worker\'s exec_static stopped');
my @new = grep { $_ != $worker } $t->worker_pids;
ok(wait_for(sub { child_matching($new[0] // 0, qr/^sleep 600/) }, 5), 'the new worker runs its own');
my %all = map { children($_) } $worker, @new;
$t->stop;
ok(wait_for(sub { !grep { Test::Nginx::RTMP::alive($_) } keys %all }, 10), 'nginx quit: no child left behind')
    or diag explain { map { $_ => $all{$_} } grep { Test::Nginx::RTMP::alive($_) } keys %all };
is_deeply([$t->alerts], [], 'no alert in the error log');
done_testing;
