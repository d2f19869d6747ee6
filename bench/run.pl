#!/usr/bin/perl
# Fan-out benchmark: ngx-rtmp-rs against nginx-rtmp-module (Debian's libnginx-mod-rtmp),
# each in its own nginx (never both modules in one), same machine, same run, same load.
#
# Load: one publisher of a ~2.5 Mbit/s pre-encoded FLV (H.264 720p30 + AAC), looped in real
# time; N rtmpdump players; 3 latency probes (joining first, halfway and last). Measured
# over a fixed window, per server:
#   - worker CPU (user+system, from /proc) per MB delivered to players (from the kernel's
#     per-socket bytes_acked, `ss -ti`),
#   - worker RSS growth per player,
#   - players stalled (got under half the stream's rate) or dropped (connection gone),
#   - publish-to-play latency percentiles (send time at the publisher to arrival at the
#     probes, same clock).
#
#   bench/run.pl [--players 50,200,500] [--window 10] [--merge 100] [--repeat 1] [--publisher perl|ffmpeg] [--keep]
# With --repeat N every case runs N times, the servers taking turns; it prints medians
# (and the range) of CPU and RSS, the worst turn's stalled and dropped players, and
# latency percentiles over every turn's frames.
# The default publisher (bench/publish.pl) paces the FLV in real time like
# `ffmpeg -re -stream_loop -1 -c copy` and logs send times for the latency figures;
# --publisher ffmpeg uses ffmpeg itself (then latency is not measured).
# Needs: nginx, libnginx-mod-rtmp, ffmpeg, rtmpdump, iproute2 (ss); the module built.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Bench;
use Getopt::Long;
use Time::HiRes qw(time sleep);

my $root = $Bench::ROOT;
my ($players, $window, $merge, $keep, $publisher, $repeat) = ('50,200,500', 10, 100, 0, 'perl', 1);
GetOptions('players=s' => \$players, 'window=i' => \$window, 'merge=i' => \$merge, 'keep' => \$keep,
    'publisher=s' => \$publisher, 'repeat=i' => \$repeat) or die;
$repeat >= 1 or die "--repeat: at least 1\n";
my @counts = split /,/, $players;
my ($input, $rate) = input_flv();

# bytes_acked of every established connection from the server's port, by peer port.
sub acked {
    my ($port) = @_;
    my %by;
    my $peer;
    for (qx{ss -tinH state established '( sport = :$port )'}) {
        if (/^\s*\d+\s+\d+\s+\S+:$port\s+\S+:(\d+)/) { $peer = $1; next }
        $by{$peer} = $1 if defined $peer && /bytes_acked:(\d+)/;
    }
    return \%by;
}

sub percentile {
    my ($p, @v) = @_;
    return 'n/a' unless @v;
    @v = sort { $a <=> $b } @v;
    return sprintf '%.0f', $v[int($p / 100 * $#v)];
}

sub run_case {
    my ($server, $n, $merge_ms) = @_;
    # BENCH_EXTRA: more directives for our application (to compare settings).
    my $extra = $server eq 'ngx-rtmp-rs' ? "merge_writes ${merge_ms}ms; " . ($ENV{BENCH_EXTRA} // '') : '';
    my $ng = start_nginx($server, "$server-$n-$merge_ms", live_rtmp($extra));
    my ($dir, $port, $worker) = @$ng{qw(dir port worker)};

    if ($publisher eq 'ffmpeg') {
        # ffmpeg itself (no send times: no latency figures).
        spawn("$dir/logs/publish.log", 'ffmpeg', '-hide_banner', '-loglevel', 'error', '-re', '-stream_loop', '-1',
            '-i', $input, '-c', 'copy', '-f', 'flv', "rtmp://127.0.0.1:$port/live/bench");
    } else {
        spawn("$dir/logs/publish.log", "$root/bench/publish.pl", $input, '127.0.0.1', $port, 'live', 'bench', "$dir/send.log");
    }
    # The baseline once the stream itself is warm (its first GOPs cached, its buffers
    # grown: 5 s is over two 2 s GOPs), so that only what the players add is counted.
    sleep 5;
    my $rss0 = rss_kb($worker);
    # The probes join first, halfway and last among the players: a server that serves its
    # players newest first (nginx-rtmp-module) or oldest first (ours) is measured alike.
    my $probe = sub {
        my ($i) = @_;
        spawn("$dir/logs/probe$i.log", "$root/bench/probe.pl", '127.0.0.1', $port, 'live', 'bench', "$dir/probe$i.txt",
            $window + 30 + $n * 0.05);    # (stopped with the rest after the window)
        sleep 0.01;
    };
    $probe->(1);
    for my $i (1 .. $n) {
        spawn('/dev/null', 'rtmpdump', '-q', '--live', '-r', "rtmp://127.0.0.1:$port/live/bench", '-o', '/dev/null');
        sleep 0.01;
        $probe->(2) if $i == int($n / 2);
    }
    $probe->(3);
    my $deadline = time + 30;
    sleep 0.5 while keys(%{ acked($port) }) < $n + 4 && time < $deadline;
    sleep 3;    # warm-up

    my $a0 = acked($port);
    my ($c0, $t0) = (cpu_ticks($worker), time);
    sleep $window;
    my $a1 = acked($port);
    my ($c1, $t1) = (cpu_ticks($worker), time);
    my $rss1 = rss_kb($worker);

    my ($bytes, $stalled, $present) = (0, 0, 0);
    for my $peer (keys %$a0) {
        next unless exists $a1->{$peer};
        my $d = $a1->{$peer} - $a0->{$peer};
        next if $d < 1000 && $a0->{$peer} < 100_000;    # the publisher's socket (data flows in)
        $present++;
        $bytes += $d;
        $stalled++ if $d < 0.5 * $rate * ($t1 - $t0);
    }
    my $expected = $n + 3;
    my $dropped = $expected > $present ? $expected - $present : 0;
    my $cpu = ($c1 - $c0) / 100;
    my $mb = $bytes / 1e6;

    # latency: arrival at the probes minus send time at the publisher, per video frame
    my %sent = map { split ' ' } grep { /\S/ } split /\n/, slurp("$dir/send.log");
    my @lat;
    for my $p (1 .. 3) {
        my $joined;
        for (split /\n/, slurp("$dir/probe$p.txt")) {
            my ($ts, $at) = split ' ';
            $joined //= $at;
            # Frames sent before the probe joined came from the GOP cache: not latency.
            push @lat, ($at - $sent{$ts}) * 1000 if defined $sent{$ts} && $sent{$ts} >= $joined;
        }
    }
    stop_children();
    stop_nginx($ng, $keep);
    return {
        cpu_ms_per_mb => $mb > 0 ? $cpu * 1000 / $mb : 0,
        mbps          => $bytes * 8 / 1e6 / ($t1 - $t0),
        rss_per       => $n ? ($rss1 - $rss0) / $n : 0,
        stalled       => $stalled,
        dropped       => $dropped,
        lat           => \@lat,
    };
}

my @configs = (['nginx-rtmp-module', 0], ['ngx-rtmp-rs', 0], ['ngx-rtmp-rs', $merge]);
printf "publisher: $publisher; stream: %.2f Mbit/s; window %d s; %d turn%s; %d cores\n\n", $rate * 8 / 1e6, $window,
    $repeat, $repeat > 1 ? 's' : '', scalar(() = slurp('/proc/cpuinfo') =~ /^processor/mg);
printf "%-5s %-19s %-7s %22s %10s %18s %8s %8s %18s\n", 'N', 'server', 'merge', 'CPU ms/MB' . ($repeat > 1 ? ' (range)' : ''),
    'Mbit/s out', 'RSS kB/plyr' . ($repeat > 1 ? ' (range)' : ''), 'stalled', 'dropped', 'latency p50/95/99';
sub median { my @v = sort { $a <=> $b } @_; return $v[$#v / 2] }
for my $n (@counts) {
    # With --repeat, the servers take turns: each case runs once per turn.
    my %turns;
    for my $turn (1 .. $repeat) {
        for my $i (0 .. $#configs) {
            push @{ $turns{$i} }, run_case(@{ $configs[$i] }[0], $n, $configs[$i][1]);
        }
    }
    my $base = median(map { $_->{cpu_ms_per_mb} } @{ $turns{0} });
    for my $i (0 .. $#configs) {
        my ($server, $m) = @{ $configs[$i] };
        my @r = @{ $turns{$i} };
        my @cpu = map { $_->{cpu_ms_per_mb} } @r;
        my @rss = map { $_->{rss_per} } @r;
        my $cpu = median(@cpu);
        my $fig = sprintf('%.2f', $cpu) . ($base ? sprintf(' (%.2fx)', $cpu / $base) : '');
        $fig .= sprintf(' %.2f-%.2f', (sort { $a <=> $b } @cpu)[0, -1]) if $repeat > 1;
        my $rss = sprintf('%.1f', median(@rss));
        $rss .= sprintf(' (%.1f-%.1f)', (sort { $a <=> $b } @rss)[0, -1]) if $repeat > 1;
        my @lat = map { @{ $_->{lat} } } @r;
        my ($stalled) = sort { $b <=> $a } map { $_->{stalled} } @r;
        my ($dropped) = sort { $b <=> $a } map { $_->{dropped} } @r;
        printf "%-5d %-19s %-7s %22s %10.0f %18s %8d %8d %18s ms\n", $n, $server,
            $server eq 'ngx-rtmp-rs' ? "${m}ms" : '-', $fig, median(map { $_->{mbps} } @r), $rss, $stalled, $dropped,
            join('/', map { percentile($_, @lat) } 50, 95, 99);
    }
}
