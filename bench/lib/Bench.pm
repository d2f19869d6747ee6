package Bench;

# Helpers shared by the benchmarks: the pre-encoded input, child processes, /proc figures,
# and an nginx instance per server under test (never both modules in one nginx).

use strict;
use warnings;
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use Exporter qw(import);
our @EXPORT = qw(spawn stop_children slurp cpu_ticks rss_kb input_flv live_rtmp start_nginx stop_nginx);

our $ROOT = abs_path(dirname(__FILE__) . '/../..');
our $WORK = "$ROOT/bench/work";
our %MODULE = (
    'nginx-rtmp-module' => '/usr/lib/nginx/modules/ngx_rtmp_module.so',
    # (BENCH_MODULE: another build of ours, e.g. to compare two commits.)
    'ngx-rtmp-rs'       => $ENV{BENCH_MODULE} // "$ROOT/target/release/libngx_rtmp_rs.so",
);
-f $MODULE{'nginx-rtmp-module'} or die "install libnginx-mod-rtmp (nginx-rtmp-module) first\n";
-f $MODULE{'ngx-rtmp-rs'} or die "build the module first (scripts/setup.sh build)\n";
make_path($WORK);
$SIG{PIPE} = 'IGNORE';

# The input: 20 s of 1280x720 30 fps H.264 at ~2.4 Mbit/s (keyframe every 2 s) + 128
# kbit/s AAC, made once (another size and rate with size => 'WxH', kbps => N; without
# B-frames with bframes => 0, as WebRTC viewers need). Returns (path, bytes per second).
sub input_flv {
    my (%o) = @_;
    my ($size, $kbps) = ($o{size} // '1280x720', $o{kbps} // 2400);
    my $nob = defined $o{bframes} && $o{bframes} == 0;
    my $input = $size eq '1280x720' && $kbps == 2400 && !$nob ? "$WORK/input.flv" : "$WORK/input-$size-$kbps" . ($nob ? '-nob' : '') . '.flv';
    unless (-s $input) {
        system('ffmpeg', '-hide_banner', '-loglevel', 'error', '-y',
            '-f', 'lavfi', '-i', "testsrc2=size=$size:rate=30", '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100',
            '-t', '20', '-c:v', 'libx264', '-preset', 'veryfast', '-b:v', "${kbps}k", '-maxrate', "${kbps}k", '-bufsize', "${kbps}k",
            '-g', '60', ($nob ? ('-bf', '0') : ()), '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '128k', '-f', 'flv', $input) == 0 or die 'ffmpeg failed';
    }
    return ($input, (-s $input) / 20);
}

my @children;
sub spawn {
    my ($log, @cmd) = @_;
    my $pid = fork // die;
    if (!$pid) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $log;
        open STDERR, '>&', \*STDOUT;
        exec @cmd or exit 127;
    }
    push @children, $pid;
    return $pid;
}

sub stop_children {
    kill 'TERM', @children;
    my $deadline = time + 5;
    while (@children && time < $deadline) {
        @children = grep { waitpid($_, WNOHANG) == 0 } @children;
        sleep 0.05;
    }
    kill 'KILL', @children;
    waitpid($_, 0) for @children;
    @children = ();
}
END { stop_children() }

sub slurp { open my $f, '<', shift or return ''; local $/; <$f> }
# CPU time a process has used, in clock ticks (1/100 s): from the scheduler's nanosecond
# count (/proc/PID/schedstat) where there is one, else utime + stime.
sub cpu_ticks {
    my ($pid) = @_;
    my ($ns) = slurp("/proc/$pid/schedstat") =~ /^(\d+)/;
    return $ns / 1e7 if defined $ns;
    my @f = split ' ', (slurp("/proc/$pid/stat") =~ s/^.*\) //sr);
    return $f[11] + $f[12];
}
sub rss_kb { slurp("/proc/$_[0]/status") =~ /VmRSS:\s+(\d+)/ ? $1 : 0 }

# The rtmp block the benchmarks use: one server, one live application with $extra
# directives in it (PORT and DIR as start_nginx replaces them).
sub live_rtmp {
    my ($extra) = @_;
    return <<"CONF";
rtmp {
    server {
        listen 127.0.0.1:PORT;
        chunk_size 4096;
        application live {
            live on;
            $extra
        }
    }
}
CONF
}

# Starts nginx with $server's module and the rtmp block $rtmp (PORT replaced by a free
# port) in a fresh $WORK/$name; options: workers => N (worker_processes), main => top-level
# directives. Returns { dir, port, worker, workers => [pids] }.
sub start_nginx {
    my ($server, $name, $rtmp, %o) = @_;
    my $nworkers = $o{workers} // 1;
    my $main = $o{main} // '';
    my $dir = "$WORK/$name";
    remove_tree($dir);
    make_path("$dir/logs");
    chmod 0777, $dir;    # the worker (nobody) writes HLS here
    my ($port, $started);
    # (A port below the kernel's ephemeral range, which hundreds of players' own ports
    # fill; another one if it is taken all the same.)
    for my $try (1 .. 5) {
        $port = 10000 + int(rand(20000));
        (my $conf = $rtmp) =~ s/PORT/$port/g;
        $conf =~ s/DIR/$dir/g;
        open my $cf, '>', "$dir/nginx.conf" or die;
        print $cf <<"CONF";
load_module $MODULE{$server};
error_log $dir/error.log warn;
pid $dir/nginx.pid;
worker_processes $nworkers;
worker_rlimit_nofile 8192;
$main
events { worker_connections 4096; }
$conf
CONF
        close $cf;
        last if $started = system('nginx', '-p', "$dir/", '-c', "$dir/nginx.conf") == 0;
    }
    $started or die "nginx failed for $server";
    sleep 0.5;
    chomp(my $master = slurp("$dir/nginx.pid"));
    my @workers = map { /(\d+)/ ? $1 : () } qx{pgrep -P $master};
    return { dir => $dir, port => $port, worker => $workers[0], workers => \@workers };
}

sub stop_nginx {
    my ($n, $keep) = @_;
    system('nginx', '-p', "$n->{dir}/", '-c', "$n->{dir}/nginx.conf", '-s', 'stop');
    sleep 1;
    remove_tree($n->{dir}) unless $keep;
}

1;
