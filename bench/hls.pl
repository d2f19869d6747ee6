#!/usr/bin/perl
# HLS benchmark: ngx-rtmp-rs against nginx-rtmp-module (Debian's libnginx-mod-rtmp), each
# in its own nginx, same machine, same run, same load.
#
# Load: K publishers (ffmpeg -re -stream_loop -1 -c copy) of a ~2.5 Mbit/s pre-encoded FLV
# (H.264 720p30, keyframe every 2 s, + AAC), into an application with HLS on (2 s
# fragments, 10 s playlists) and, as a baseline, with HLS off. Per server:
#   - worker CPU seconds (user+system, /proc) per stream-minute, over a fixed window;
#   - time from starting a publisher to its first playlist on disk (median, max).
# With --repeat N every case runs N times, the servers taking turns, and the figures are
# medians (CPU also its range): one stream's figure moves between runs by more than the
# difference being measured (nginx-rtmp-module's moved 0.09-0.16 s here), so one window
# each cannot compare them.
#
#   bench/hls.pl [--streams 1,4,8] [--window 30] [--repeat 1] [--hls on|off|both] [--merge-reads off] [--keep]
# Our module runs twice: with its defaults (`merge_reads auto`: the input of a stream no
# RTMP player watches is read in batches), and with `merge_reads` set to --merge-reads
# (default off: read as it comes, as nginx-rtmp-module does; '' skips that run).
# Needs: nginx, libnginx-mod-rtmp, ffmpeg; the module built.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Bench;
use Getopt::Long;
use Time::HiRes qw(time sleep);

my ($streams, $window, $repeat, $hls_modes, $keep, $merge_reads) = ('1,4,8', 30, 1, 'both', 0, 'off');
GetOptions('streams=s' => \$streams, 'window=i' => \$window, 'repeat=i' => \$repeat, 'hls=s' => \$hls_modes,
    'keep' => \$keep, 'merge-reads=s' => \$merge_reads) or die;
my @hls_modes = @{ { on => [1], off => [0], both => [0, 1] }->{$hls_modes} // die "--hls: on, off or both\n" };
$repeat >= 1 or die "--repeat: at least 1\n";
my ($input, $rate) = input_flv();

sub median { my @v = sort { $a <=> $b } @_; @v ? $v[$#v / 2] : 0 }

sub run_case {
    my ($server, $k, $hls, $mr) = @_;
    my $hls_conf = $hls ? 'hls on; hls_path DIR/hls; hls_fragment 2s; hls_playlist_length 10s;' : '';
    $hls_conf .= " merge_reads $mr;" if $server eq 'ngx-rtmp-rs' && $mr ne 'auto';
    my $ng = start_nginx($server, "hls-$server-$k-$hls-$mr", live_rtmp($hls_conf));
    my %started;
    for my $i (1 .. $k) {
        $started{"s$i"} = time;
        spawn("$ng->{dir}/logs/publish$i.log", 'ffmpeg', '-hide_banner', '-loglevel', 'error', '-re', '-stream_loop', '-1',
            '-i', $input, '-c', 'copy', '-f', 'flv', "rtmp://127.0.0.1:$ng->{port}/live/s$i");
    }
    my %first;
    if ($hls) {
        my $deadline = time + 20;
        while (keys %first < $k && time < $deadline) {
            for my $s (keys %started) {
                $first{$s} //= time - $started{$s} if -s "$ng->{dir}/hls/$s.m3u8";
            }
            sleep 0.01;
        }
    }
    sleep 4;    # warm-up
    my ($c0, $t0) = (cpu_ticks($ng->{worker}), time);
    sleep $window;
    my ($c1, $t1) = (cpu_ticks($ng->{worker}), time);
    my $segments = () = glob("$ng->{dir}/hls/*.ts");
    stop_children();
    stop_nginx($ng, $keep);
    my $minutes = $k * ($t1 - $t0) / 60;
    return {
        cpu     => ($c1 - $c0) / 100 / $minutes,
        first   => [values %first],
        missing => $hls ? $k - keys %first : 0,
    };
}

printf "input: %.2f Mbit/s, 2 s GOP; window %d s, %d run%s per case; %d cores\n\n", $rate * 8 / 1e6, $window,
    $repeat, $repeat > 1 ? 's' : '', scalar(() = slurp('/proc/cpuinfo') =~ /^processor/mg);
printf "%-3s %-19s %-12s %-5s %34s %26s\n", 'K', 'server', 'merge_reads', 'HLS',
    'worker CPU s/stream-min' . ($repeat > 1 ? ' (range)' : ''), 'first playlist s (med/max)';
my @servers = (['nginx-rtmp-module', '-'], ['ngx-rtmp-rs', 'auto'], $merge_reads ne '' ? (['ngx-rtmp-rs', $merge_reads]) : ());
for my $k (split /,/, $streams) {
    for my $hls (@hls_modes) {
        my @runs;    # per server: the runs' results
        for my $r (1 .. $repeat) {
            push @{ $runs[$_] }, run_case($servers[$_][0], $k, $hls, $servers[$_][1]) for 0 .. $#servers;
        }
        my $base;
        for my $i (0 .. $#servers) {
            my ($server, $mr) = @{ $servers[$i] };
            my @cpu = map { $_->{cpu} } @{ $runs[$i] };
            my $cpu = median(@cpu);
            $base = $cpu if $i == 0;
            my $fig = sprintf('%.3f', $cpu);
            $fig .= sprintf(' (%.3f-%.3f)', (sort { $a <=> $b } @cpu)[0, -1]) if $repeat > 1;
            $fig .= sprintf(' %.2fx', $cpu / $base) if $i > 0 && $base;
            my @first = map { @{ $_->{first} } } @{ $runs[$i] };
            my $missing = 0;
            $missing += $_->{missing} for @{ $runs[$i] };
            my $first = $hls ? sprintf('%.2f / %.2f', median(@first), (sort { $b <=> $a } @first)[0] // 0) : '-';
            printf "%-3d %-19s %-12s %-5s %34s %26s%s\n", $k, $server, $mr, $hls ? 'on' : 'off', $fig, $first,
                $missing ? " ($missing never)" : '';
        }
    }
}
