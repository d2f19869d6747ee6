#!/usr/bin/perl
# Where a player's memory goes, for each server: one publisher (the fan-out benchmark's
# stream), then N rtmpdump players; the worker's memory before and after them, mapping by
# mapping from /proc/PID/smaps (the heap, anonymous memory nginx allocates by mmap, the
# module's and libraries' pages), and the heap's own figures from glibc's malloc_stats()
# (in-use bytes vs bytes held), called in the worker through gdb when gdb is there.
#
#   bench/memory.pl [--players 50,200,500] [--settle 5]
# Needs what bench/run.pl needs; gdb for the allocator's figures.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Bench;
use Getopt::Long;
use Time::HiRes qw(sleep);

my $root = $Bench::ROOT;
my ($players, $settle) = ('50,200,500', 5);
GetOptions('players=s' => \$players, 'settle=i' => \$settle) or die;
my ($input) = input_flv();
my $gdb = -x '/usr/bin/gdb';

# Resident kB by kind of mapping.
sub smaps {
    my ($pid) = @_;
    my (%kb, $kind);
    for (split /\n/, slurp("/proc/$pid/smaps")) {
        if (/^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \d+\s*(.*)$/) {
            my $path = $1;
            $kind = $path eq '[heap]' ? 'heap'
                : $path eq '' ? 'anonymous'
                : $path =~ /ngx_rtmp|libngx_rtmp_rs/ ? 'module'
                : $path =~ m{/nginx$} ? 'nginx'
                : $path =~ /^\[/ ? 'other' : 'libraries';
        } elsif (/^Rss:\s+(\d+) kB/ && $kind) {
            $kb{$kind} += $1;
        }
    }
    return \%kb;
}

# glibc's malloc_stats() in the worker: (in use, held by the allocator) in kB, summed over
# its arenas; its output goes to the worker's stderr, nginx's error log.
sub malloc_stats {
    my ($pid, $log) = @_;
    return () unless $gdb;
    my $before = length(slurp($log));
    qx{gdb -p $pid -batch -nx -ex 'call (void) malloc_stats()' 2>&1};
    my $out = substr(slurp($log), $before);
    my ($system) = $out =~ /^Total \(incl\. mmap\):\s+system bytes\s+=\s+(\d+)/m;
    my ($inuse) = $out =~ /^Total \(incl\. mmap\):.*?in use bytes\s+=\s+(\d+)/ms;
    return () unless defined $inuse;
    return ($inuse / 1024, $system / 1024);
}

my @kinds = qw(heap anonymous module nginx libraries other);
printf "%-5s %-19s %10s  %s  %s\n", 'N', 'server', 'RSS kB/pl', join('  ', map { sprintf '%9s', $_ } @kinds),
    $gdb ? 'malloc in use / held kB/pl' : '';
for my $n (split /,/, $players) {
    for my $server ('nginx-rtmp-module', 'ngx-rtmp-rs') {
        my $ng = start_nginx($server, "mem-$server-$n", live_rtmp(''));
        my ($dir, $port, $worker) = @$ng{qw(dir port worker)};
        # (stderr to a file of its own: malloc_stats writes there)
        spawn("$dir/logs/publish.log", 'ffmpeg', '-hide_banner', '-loglevel', 'error', '-re', '-stream_loop', '-1',
            '-i', $input, '-c', 'copy', '-f', 'flv', "rtmp://127.0.0.1:$port/live/bench");
        sleep $settle;
        my $log = "$dir/error.log";
        my ($rss0, $m0, @a0) = (rss_kb($worker), smaps($worker), malloc_stats($worker, $log));
        for (1 .. $n) {
            spawn('/dev/null', 'rtmpdump', '-q', '--live', '-r', "rtmp://127.0.0.1:$port/live/bench", '-o', '/dev/null');
            sleep 0.01;
        }
        sleep $settle;
        my ($rss1, $m1, @a1) = (rss_kb($worker), smaps($worker), malloc_stats($worker, $log));
        printf "%-5d %-19s %10.1f  %s  %s\n", $n, $server, ($rss1 - $rss0) / $n,
            join('  ', map { sprintf '%9.2f', (($m1->{$_} // 0) - ($m0->{$_} // 0)) / $n } @kinds),
            @a0 && @a1 ? sprintf('%.2f / %.2f', ($a1[0] - $a0[0]) / $n, ($a1[1] - $a0[1]) / $n) : '';
        stop_children();
        stop_nginx($ng);
    }
}
