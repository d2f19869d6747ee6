#!/usr/bin/perl
# Soak: churn for a while and watch the worker's memory. One ffmpeg-like publisher (the
# bench pacer) restarts every 20 s; players join, watch 0.5–3 s and leave, many at once;
# raw clients connect and vanish. Prints the worker's RSS every 10 s and the error log's
# alert/crit/emerg lines at the end: memory should level off, not climb.
#   bench/soak.pl [SECONDS]

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use File::Temp qw(tempdir);

my $secs = shift // 120;
my $root = "$FindBin::Bin/..";
my $input = "$root/bench/work/input.flv";
-s $input or die "run bench/run.pl once first (it makes $input)\n";
my $dir = tempdir(CLEANUP => 1);
my $port = 30000 + int rand 20000;
open my $cf, '>', "$dir/nginx.conf" or die;
print $cf <<"CONF";
load_module $root/target/release/libngx_rtmp_rs.so;
error_log $dir/error.log info;
pid $dir/nginx.pid;
events { worker_connections 4096; }
rtmp { server { listen 127.0.0.1:$port; application live { live on; } } }
CONF
close $cf;
system('nginx', '-p', "$dir/", '-c', "$dir/nginx.conf") == 0 or die;
sleep 0.5;
chomp(my $master = `cat $dir/nginx.pid`);
my ($worker) = split ' ', `pgrep -P $master`;
sub rss { `grep VmRSS /proc/$worker/status` =~ /(\d+)/ ? $1 : 0 }

my %kids;
sub spawn { my $pid = fork // die; if (!$pid) { open STDOUT, '>', '/dev/null'; open STDERR, '>&', \*STDOUT; exec @_ or exit 1 } $kids{$pid} = 1; $pid }
my $start = time;
my ($pub, $pub_started, $next_report, $joins) = (undef, 0, $start, 0);
while (time - $start < $secs) {
    if (!$pub || time - $pub_started > 20) {
        kill 'TERM', $pub if $pub;
        $pub = spawn("$root/bench/publish.pl", $input, '127.0.0.1', $port, 'live', 's', '/dev/null');
        $pub_started = time;
    }
    for (1 .. 5) {
        my $t = 0.5 + rand 2.5;
        spawn('timeout', $t, 'rtmpdump', '-q', '--live', '-r', "rtmp://127.0.0.1:$port/live/s", '-o', '/dev/null');
        $joins++;
    }
    # raw clients that connect, send a partial handshake and vanish
    spawn('perl', '-MIO::Socket::IP', '-e', "my \$s = IO::Socket::IP->new(PeerAddr => '127.0.0.1:$port') or exit; print \$s \"\\x03\" . 'x' x 700;");
    while ((my $pid = waitpid(-1, WNOHANG)) > 0) { delete $kids{$pid} }
    if (time >= $next_report) {
        printf "%4ds  worker RSS %6d kB  players joined %d  running clients %d\n", time - $start, rss(), $joins, scalar keys %kids;
        $next_report += 10;
    }
    sleep 0.2;
}
kill 'TERM', keys %kids;
sleep 3;
while ((my $pid = waitpid(-1, WNOHANG)) > 0) {}
printf "end   worker RSS %6d kB after all clients left\n", rss();
system('nginx', '-p', "$dir/", '-c', "$dir/nginx.conf", '-s', 'quit');
sleep 1;
my @bad = grep { /\[(alert|crit|emerg)\]/ } split /\n/, `cat $dir/error.log`;
print @bad ? join("\n", 'alerts:', @bad) . "\n" : "no alert, crit or emerg in the error log\n";
