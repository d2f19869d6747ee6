#!/usr/bin/perl
# Several workers, one big audience: one ~2.5 Mbit/s publisher and N rtmpdump players of
# its stream, with worker_processes 1, 2 and 4, for ngx-rtmp-rs (every worker serves every
# stream: a pull between workers over a Unix socket, `app/peer.rs`) and nginx-rtmp-module
# with `rtmp_auto_push on` (its push of every stream to every worker), in one run. Both
# listen without reuseport: the kernel's accept balancing spreads the players. Printed side
# by side: how the players spread over the workers, delivered MB per worker CPU-second (all
# workers), latency (publisher's send to a probe's arrival, p50/p95, two probes), and the
# probes' longest gap between video frames (a stall shows there).
#
# Beside them, the plain writer (../shared/bench/floor.c) split over as many processes.
#
#   bench/workers.pl [--players 100] [--window 10] [--keep] [--only SERVER] [--workers 1,2,4]
#                    [--perf FILE] [--floor floor.c]
# Needs: nginx, libnginx-mod-rtmp, ffmpeg, rtmpdump, iproute2 (ss); the module built.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Bench;
use Getopt::Long;
use Time::HiRes qw(time sleep);

my $root = $Bench::ROOT;
my ($players, $window, $keep, $only, $counts, $perf) = (100, 10, 0, '', '1,2,4', '');
my $floor_c = "$root/../shared/bench/floor.c";
GetOptions('players=i' => \$players, 'window=i' => \$window, 'keep' => \$keep, 'only=s' => \$only,
    'workers=s' => \$counts, 'perf=s' => \$perf, 'floor=s' => \$floor_c) or die;
my @counts = split /,/, $counts;
my ($input) = input_flv();

# The plain writer (../shared/bench/floor.c, or --floor FILE): K processes each write every
# FLV tag to N/K loopback readers with write(), no protocol. Its CPU per MB with K processes
# against one process is the kernel's share of splitting an audience over K writers.
my $floor;
if (-f $floor_c) {
    $floor = "$Bench::WORK/floor";
    system('cc', '-O2', '-o', $floor, $floor_c) == 0 or die "cc $floor_c failed";
}

sub run_floor {
    my ($k) = @_;
    my $base = 20000 + int(rand(20000));
    my (@outs, @pids);
    for my $i (0 .. $k - 1) {
        my $n = int($players / $k) + ($i < $players % $k ? 1 : 0);
        my $out = "$Bench::WORK/floor-$k-$i.json";
        unlink $out;
        spawn($out, $floor, $base + $i, $n, 0, $input, $window);
        sleep 0.2;
        spawn('/dev/null', $floor, $base + $i, $n);
        push @outs, $out;
    }
    my ($cpu, $mb) = (0, 0);
    for my $out (@outs) {
        my $t = time;
        sleep 0.5 until slurp($out) =~ /cpu_ms_per_MB/ || time - $t > $window + 30;
        my $j = slurp($out);
        $cpu += $1 if $j =~ /"cpu_s": ([\d.]+)/;
        $mb += $1 if $j =~ /"MB": ([\d.]+)/;
    }
    stop_children();
    return $mb > 0 ? $cpu * 1000 / $mb : 0;
}

sub acked_sum {
    my ($filter) = @_;
    my $sum = 0;
    $sum += $_ for join('', qx{ss -tinH state established '( $filter )'}) =~ /bytes_acked:(\d+)/g;
    return $sum;
}

# Established connections on the port, by worker pid.
sub spread {
    my ($port, @workers) = @_;
    my %n = map { $_ => 0 } @workers;
    for (qx{ss -tnpH state established '( sport = :$port )'}) {
        $n{$1}++ if /pid=(\d+)/ && exists $n{$1};
    }
    return map { $n{$_} } @workers;
}

sub pct {
    my ($p, @v) = @_;
    return 'n/a' unless @v;
    @v = sort { $a <=> $b } @v;
    return sprintf '%.0f', $v[int($p / 100 * $#v)];
}

sub run {
    my ($server, $workers) = @_;
    my $main = $server eq 'nginx-rtmp-module' ? 'rtmp_auto_push on;' : '';
    my $n = start_nginx($server, "workers-$server-$workers", live_rtmp(''), workers => $workers, main => $main);
    my $dir = $n->{dir};
    spawn("$dir/logs/publish.log", "$root/bench/publish.pl", $input, '127.0.0.1', $n->{port}, 'live', 'bench', "$dir/send.log");
    sleep 3;
    for my $i (1 .. 2) {
        spawn("$dir/logs/probe$i.log", "$root/bench/probe.pl", '127.0.0.1', $n->{port}, 'live', 'bench', "$dir/probe$i.txt", $window + 30);
    }
    for my $i (1 .. $players) {
        spawn('/dev/null', 'rtmpdump', '-q', '--live', '-r', "rtmp://127.0.0.1:$n->{port}/live/bench", '-o', '/dev/null');
        sleep 0.01;
    }
    sleep 5;
    my @w = @{ $n->{workers} };
    my @spread = spread($n->{port}, @w);
    my $b0 = acked_sum("sport = :$n->{port}");
    my $c0 = 0;
    $c0 += cpu_ticks($_) for @w;
    my $t0 = time;
    if ($perf && $server eq 'ngx-rtmp-rs') {
        # --perf FILE: a profile of every worker over the window (perf report -i FILE).
        system('perf', 'record', '-q', '-g', '-o', "$perf-$workers", '-p', join(',', @w), '--', 'sleep', $window);
    } else {
        sleep $window;
    }
    my $b1 = acked_sum("sport = :$n->{port}");
    my $c1 = 0;
    $c1 += cpu_ticks($_) for @w;
    my $secs = time - $t0;
    my %sent = map { split ' ' } grep { /\S/ } split /\n/, slurp("$dir/send.log");
    my (@lat, $gap);
    $gap = 0;
    for my $i (1 .. 2) {
        my ($joined, $prev);
        for (split /\n/, slurp("$dir/probe$i.txt")) {
            my ($ts, $at) = split ' ';
            $joined //= $at;
            $gap = $at - $prev if defined $prev && $at - $prev > $gap && $at > $t0 && $at < $t0 + $secs;
            $prev = $at;
            push @lat, ($at - $sent{$ts}) * 1000 if defined $sent{$ts} && $sent{$ts} >= $joined;
        }
    }
    stop_children();
    stop_nginx($n, $keep);
    my $mb = ($b1 - $b0) / 1e6;
    my $cpu_s = ($c1 - $c0) / 100;
    return {
        spread => join('/', @spread),
        mb_per_cpu_s => $cpu_s > 0 ? $mb / $cpu_s : 0,
        cpu_ms_per_mb => $mb > 0 ? $cpu_s * 1000 / $mb : 0,
        mbps => $mb * 8 / $secs,
        lat => pct(50, @lat) . '/' . pct(95, @lat),
        gap => sprintf('%.0f', $gap * 1000),
    };
}

my @servers = grep { !$only || $_ eq $only } ('ngx-rtmp-rs', 'nginx-rtmp-module');
my %res;
for my $w (@counts) {
    $res{$_}{$w} = run($_, $w) for @servers;
}
my %floor;
if ($floor) {
    $floor{$_} = run_floor($_) for @counts;
}
printf "one publisher (~2.5 Mbit/s), %d rtmpdump players, %d s window, %s\n", $players, $window, scalar localtime;
printf "%-36s %-26s %-26s\n", 'worker_processes', @servers;
for my $w (@counts) {
    printf "%-36s %-26s %-26s\n", "$w: players per worker", map { $res{$_}{$w}{spread} } @servers;
    printf "%-36s %-26.1f %-26.1f\n", "$w: MB delivered per worker CPU-s", map { $res{$_}{$w}{mb_per_cpu_s} } @servers;
    printf "%-36s %-26.2f %-26.2f\n", "$w: worker CPU ms per MB", map { $res{$_}{$w}{cpu_ms_per_mb} } @servers;
    printf "%-36s %.2f (%d writer process%s)\n", "$w: plain writer's CPU ms per MB", $floor{$w}, $w, $w > 1 ? 'es' : '' if $floor;
    printf "%-36s %-26.0f %-26.0f\n", "$w: delivered Mbit/s", map { $res{$_}{$w}{mbps} } @servers;
    printf "%-36s %-26s %-26s\n", "$w: latency p50/p95 (ms)", map { $res{$_}{$w}{lat} } @servers;
    printf "%-36s %-26s %-26s\n", "$w: probes' longest gap (ms)", map { $res{$_}{$w}{gap} } @servers;
}
