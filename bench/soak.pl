#!/usr/bin/perl
# Soak: churn for a while and watch the worker's memory. One ffmpeg-like publisher (the
# bench pacer) restarts every 20 s; players join, watch 0.5–3 s and leave, many at once;
# raw clients connect and vanish. Prints the worker's RSS and open files every 10 s and
# the error log's alert/crit/emerg lines at the end: memory should level off, not climb.
# With --full the stream also has HLS (with hls_cleanup), a recording cut every 20 s, and
# a push to an edge (a second nginx of this module) whose players churn too; the edge's
# worker is watched as well.
#   bench/soak.pl [SECONDS] [--full]

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use File::Temp qw(tempdir);

my $full = grep { $_ eq '--full' } @ARGV;
my ($secs) = (grep({ /^\d+$/ } @ARGV), 120);
my $root = "$FindBin::Bin/..";
my $input = "$root/bench/work/input.flv";
-s $input or die "run bench/run.pl once first (it makes $input)\n";
my $dir = tempdir(CLEANUP => 1);
my $port = 30000 + int rand 20000;
my $edge_port = $port + 1;
chmod 0777, $dir;
mkdir "$dir/$_", 0777 for qw(hls rec edge);
chmod 0777, "$dir/hls", "$dir/rec", "$dir/edge";
my $extra = $full
    ? "hls on; hls_path $dir/hls; hls_fragment 2s; hls_playlist_length 10s; record all; record_path $dir/rec; record_interval 20s; push rtmp://127.0.0.1:$edge_port/live;"
    : '';
sub start {
    my ($d, $p, $app) = @_;
    open my $cf, '>', "$d/nginx.conf" or die;
    print $cf <<"CONF";
load_module $root/target/release/libngx_rtmp_rs.so;
error_log $d/error.log info;
pid $d/nginx.pid;
events { worker_connections 4096; }
rtmp { server { listen 127.0.0.1:$p; application live { live on; $app } } }
CONF
    close $cf;
    system('nginx', '-p', "$d/", '-c', "$d/nginx.conf") == 0 or die;
    sleep 0.5;
    chomp(my $master = `cat $d/nginx.pid`);
    my ($w) = split ' ', `pgrep -P $master`;
    return $w;
}
my $worker = start($dir, $port, $extra);
my $edge = $full ? start("$dir/edge", $edge_port, '') : undef;
sub rss { `grep VmRSS /proc/$_[0]/status` =~ /(\d+)/ ? $1 : 0 }
sub fds { my @f = glob("/proc/$_[0]/fd/*"); scalar @f }

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
        my $p = $full && rand() < 0.5 ? $edge_port : $port;
        spawn('timeout', $t, 'rtmpdump', '-q', '--live', '-r', "rtmp://127.0.0.1:$p/live/s", '-o', '/dev/null');
        $joins++;
    }
    # raw clients that connect, send a partial handshake and vanish
    spawn('perl', '-MIO::Socket::IP', '-e', "my \$s = IO::Socket::IP->new(PeerAddr => '127.0.0.1:$port') or exit; print \$s \"\\x03\" . 'x' x 700;");
    while ((my $pid = waitpid(-1, WNOHANG)) > 0) { delete $kids{$pid} }
    if (time >= $next_report) {
        my $files = $full ? sprintf('  hls files %d  recordings %d', scalar(() = glob("$dir/hls/*")), scalar(() = glob("$dir/rec/*"))) : '';
        my $e = $edge ? sprintf('  edge RSS %6d kB fds %d', rss($edge), fds($edge)) : '';
        printf "%5ds  worker RSS %6d kB fds %d%s  players joined %d  running clients %d%s\n", time - $start, rss($worker), fds($worker), $e, $joins, scalar keys %kids, $files;
        $next_report += 10;
    }
    sleep 0.2;
}
kill 'TERM', keys %kids;
sleep 3;
while ((my $pid = waitpid(-1, WNOHANG)) > 0) {}
printf "end    worker RSS %6d kB fds %d after all clients left%s\n", rss($worker), fds($worker), $edge ? sprintf('; edge RSS %d kB fds %d', rss($edge), fds($edge)) : '';
system('nginx', '-p', "$dir/", '-c', "$dir/nginx.conf", '-s', 'quit');
system('nginx', '-p', "$dir/edge/", '-c', "$dir/edge/nginx.conf", '-s', 'quit') if $edge;
sleep 1;
my @bad = grep { /\[(alert|crit|emerg)\]/ } split /\n/, `cat $dir/error.log` . ($edge ? `cat $dir/edge/error.log` : '');
print @bad ? join("\n", 'alerts:', @bad) . "\n" : "no alert, crit or emerg in the error log\n";
