#!/usr/bin/perl
# Relay benchmark: an origin that pushes to two edges, N rtmpdump players spread over the
# edges, for ngx-rtmp-rs and nginx-rtmp-module (Debian's libnginx-mod-rtmp) in the same
# run, each tier with its own module only. Printed side by side:
#   - latency (publisher's send to a probe's arrival, per video frame, p50/p95) at a probe
#     on the origin and at a probe on each edge: the difference is what one relay hop adds;
#   - worker CPU per MB delivered, on the origin (to the edges) and on the edges (to
#     their players).
#
#   bench/relay.pl [--players 100] [--window 10] [--keep]
# Needs: nginx, libnginx-mod-rtmp, ffmpeg, rtmpdump, iproute2 (ss); the module built.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Bench;
use Getopt::Long;
use Time::HiRes qw(time sleep);

my $root = $Bench::ROOT;
my ($players, $window, $keep) = (100, 10, 0);
GetOptions('players=i' => \$players, 'window=i' => \$window, 'keep' => \$keep) or die;
my ($input) = input_flv();

# bytes_acked summed over the established connections matching an ss filter.
sub acked_sum {
    my ($filter) = @_;
    my $sum = 0;
    $sum += $_ for join('', qx{ss -tinH state established '( $filter )'}) =~ /bytes_acked:(\d+)/g;
    return $sum;
}

sub pct {
    my ($p, @v) = @_;
    return 'n/a' unless @v;
    @v = sort { $a <=> $b } @v;
    return sprintf '%.0f', $v[int($p / 100 * $#v)];
}

sub latencies {
    my ($sent, $file) = @_;
    my ($joined, @lat);
    for (split /\n/, slurp($file)) {
        my ($ts, $at) = split ' ';
        $joined //= $at;
        push @lat, ($at - $sent->{$ts}) * 1000 if defined $sent->{$ts} && $sent->{$ts} >= $joined;
    }
    return @lat;
}

sub run_tier {
    my ($server) = @_;
    my @edges = map { start_nginx($server, "relay-$server-edge$_", live_rtmp('')) } 1, 2;
    my $push = join ' ', map { "push rtmp://127.0.0.1:$_->{port}/live;" } @edges;
    my $origin = start_nginx($server, "relay-$server-origin", live_rtmp($push));
    my $dir = $origin->{dir};
    spawn("$dir/logs/publish.log", "$root/bench/publish.pl", $input, '127.0.0.1', $origin->{port}, 'live', 'bench', "$dir/send.log");
    sleep 5;
    my @probes = ([$origin, 'origin'], [$edges[0], 'edge1'], [$edges[1], 'edge2']);
    for my $p (@probes) {
        spawn("$dir/logs/probe-$p->[1].log", "$root/bench/probe.pl", '127.0.0.1', $p->[0]{port}, 'live', 'bench', "$dir/probe-$p->[1].txt", $window + 40);
    }
    for my $i (1 .. $players) {
        my $e = $edges[$i % 2];
        spawn('/dev/null', 'rtmpdump', '-q', '--live', '-r', "rtmp://127.0.0.1:$e->{port}/live/bench", '-o', '/dev/null');
        sleep 0.01;
    }
    sleep 5;
    my %out = (
        origin => sub { acked_sum(join ' or ', map { "dport = :$_->{port}" } @edges) },
        edges  => sub { acked_sum(join ' or ', map { "sport = :$_->{port}" } @edges) },
    );
    my %b0 = map { $_ => $out{$_}->() } keys %out;
    my %c0 = (origin => cpu_ticks($origin->{worker}), edges => cpu_ticks($edges[0]{worker}) + cpu_ticks($edges[1]{worker}));
    sleep $window;
    my %b1 = map { $_ => $out{$_}->() } keys %out;
    my %c1 = (origin => cpu_ticks($origin->{worker}), edges => cpu_ticks($edges[0]{worker}) + cpu_ticks($edges[1]{worker}));
    my %sent = map { split ' ' } grep { /\S/ } split /\n/, slurp("$dir/send.log");
    my %lat = map { $_->[1] => [latencies(\%sent, "$dir/probe-$_->[1].txt")] } @probes;
    stop_children();
    stop_nginx($_, $keep) for $origin, @edges;
    my %r;
    for my $k (qw(origin edges)) {
        my $mb = ($b1{$k} - $b0{$k}) / 1e6;
        $r{"cpu_$k"} = $mb > 0 ? ($c1{$k} - $c0{$k}) * 10 / $mb : 0;    # ms per MB
        $r{"mb_$k"} = $mb;
    }
    my @edge_lat = (@{ $lat{edge1} }, @{ $lat{edge2} });
    $r{lat_origin} = [pct(50, @{ $lat{origin} }), pct(95, @{ $lat{origin} })];
    $r{lat_edge} = [pct(50, @edge_lat), pct(95, @edge_lat)];
    return \%r;
}

my %res = map { $_ => run_tier($_) } 'ngx-rtmp-rs', 'nginx-rtmp-module';
printf "origin -> 2 edges (push), %d rtmpdump players on the edges, %d s window, %s\n", $players, $window, scalar localtime;
printf "%-34s %20s %20s\n", '', 'ngx-rtmp-rs', 'nginx-rtmp-module';
printf "%-34s %20s %20s\n", 'latency at the origin p50/p95 (ms)', map { join '/', @{ $res{$_}{lat_origin} } } 'ngx-rtmp-rs', 'nginx-rtmp-module';
printf "%-34s %20s %20s\n", 'latency at the edges p50/p95 (ms)', map { join '/', @{ $res{$_}{lat_edge} } } 'ngx-rtmp-rs', 'nginx-rtmp-module';
printf "%-34s %20.1f %20.1f\n", 'origin CPU ms per MB to the edges', map { $res{$_}{cpu_origin} } 'ngx-rtmp-rs', 'nginx-rtmp-module';
printf "%-34s %20.1f %20.1f\n", 'edges CPU ms per MB to players', map { $res{$_}{cpu_edges} } 'ngx-rtmp-rs', 'nginx-rtmp-module';
printf "%-34s %20.1f %20.1f\n", 'MB delivered by the edges', map { $res{$_}{mb_edges} } 'ngx-rtmp-rs', 'nginx-rtmp-module';
printf "%-34s %20.3f %20.3f\n", 'MB sent by the origin', map { $res{$_}{mb_origin} } 'ngx-rtmp-rs', 'nginx-rtmp-module';
