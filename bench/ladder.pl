#!/usr/bin/perl
# Transcoding benchmark: one 1080p30 stream (a pre-encoded FLV, published with ffmpeg
# -re -stream_loop -1 -c copy) made into a 720p + 480p ladder with HLS, three ways, each in
# its own nginx, the same run:
#   (a) nginx-rtmp-module with the seed's exec recipe (one ffmpeg, two outputs, into an
#       HLS application with hls_variant);
#   (b) ngx-rtmp-rs with the same exec recipe;
#   (c) ngx-rtmp-rs with `transcode _720p 1280x720 2500k; transcode _480p 854x480 1000k;`.
# Per case: seconds from publishing to every rendition's playlist on disk (and, for (c),
# to the master playlist listing them all), and CPU seconds per second of everything the
# worker started (ffmpeg, with its keeper) and of the worker, over a window.
#
#   bench/ladder.pl [--window 30] [--preset veryfast]
# Needs: nginx, libnginx-mod-rtmp, ffmpeg; the module built.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Bench;
use Getopt::Long;
use Time::HiRes qw(time sleep);

my ($window, $preset) = (30, 'veryfast');
GetOptions('window=i' => \$window, 'preset=s' => \$preset) or die "usage: $0 [--window 30] [--preset veryfast]\n";

my ($input) = input_flv(size => '1920x1080', kbps => 5000);

my $x264 = "-c:v libx264 -preset $preset -tune zerolatency -g 60";
my $recipe = "exec ffmpeg -hide_banner -loglevel error -i rtmp://127.0.0.1:PORT/src/\$name "
    . "$x264 -b:v 2500k -maxrate 2500k -bufsize 5000k -s 1280x720 -c:a aac -b:a 128k -f flv rtmp://127.0.0.1:PORT/hls/\${name}_720p "
    . "$x264 -b:v 1000k -maxrate 1000k -bufsize 2000k -s 854x480 -c:a aac -b:a 128k -f flv rtmp://127.0.0.1:PORT/hls/\${name}_480p;";
my $hls = 'hls on; hls_path DIR/hls; hls_fragment 2s; hls_playlist_length 10s;';
my %rtmp = (
    exec => <<"CONF",
rtmp { server { listen 127.0.0.1:PORT;
    application src { live on; $recipe }
    application hls { live on; $hls hls_variant _720p BANDWIDTH=2628000,RESOLUTION=1280x720; hls_variant _480p BANDWIDTH=1128000,RESOLUTION=854x480; }
} }
CONF
    ladder => <<"CONF",
rtmp { server { listen 127.0.0.1:PORT;
    application hls { live on; $hls transcode _720p 1280x720 2500k preset=$preset; transcode _480p 854x480 1000k preset=$preset; }
} }
CONF
);

# CPU ticks (1/100 s) of a whole process, every thread (ffmpeg encodes on several;
# /proc/PID/schedstat, which Bench's cpu_ticks reads, is the main thread's alone).
sub process_ticks {
    my @f = split ' ', (Bench::slurp("/proc/$_[0]/stat") =~ s/^.*\) //sr);
    return ($f[11] // 0) + ($f[12] // 0);
}

sub descendants {
    my ($pid) = @_;
    my @kids = map { /(\d+)/ ? $1 : () } qx{pgrep -P $pid};
    return map { ($_, descendants($_)) } @kids;
}

sub run_case {
    my ($server, $how) = @_;
    my $n = start_nginx($server, "ladder-$how", $rtmp{$how});
    mkdir "$n->{dir}/hls", 0777;
    chmod 0777, "$n->{dir}/hls";
    my $app = $how eq 'exec' ? 'src' : 'hls';
    my $t0 = time;
    spawn("$n->{dir}/publish.log", 'ffmpeg', '-hide_banner', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', $input,
        '-c', 'copy', '-f', 'flv', "rtmp://127.0.0.1:$n->{port}/$app/cam");
    my %ready;
    while (time - $t0 < 60 && keys %ready < 3) {
        for my $r (qw(_720p _480p)) {
            $ready{$r} //= time - $t0 if -s "$n->{dir}/hls/cam$r.m3u8";
        }
        $ready{master} //= time - $t0 if $how eq 'exec' ? -s "$n->{dir}/hls/cam.m3u8"
            : (Bench::slurp("$n->{dir}/hls/cam.m3u8") =~ tr/\n//) >= 9;
        sleep 0.1;
    }
    sleep 5;    # (settled)
    my @procs = descendants($n->{worker});
    my %before = map { $_ => process_ticks($_) } @procs;
    my $worker0 = cpu_ticks($n->{worker});
    sleep $window;
    my $children = 0;
    $children += process_ticks($_) - $before{$_} for @procs;
    my $worker = cpu_ticks($n->{worker}) - $worker0;
    stop_children();
    stop_nginx($n);
    my $renditions = ($ready{_720p} // 99) > ($ready{_480p} // 99) ? $ready{_720p} : $ready{_480p};
    printf "%-18s %-7s %14.1f s %12s %16.2f %12.3f\n", $server, $how, $renditions // 99,
        $how eq 'ladder' ? sprintf('%.1f s', $ready{master} // 99) : '-', $children / 100 / $window, $worker / 100 / $window;
}

printf "input: 1920x1080 30 fps, 5 Mbit/s; ladder 720p 2.5 Mbit/s + 480p 1 Mbit/s, x264 %s; window %d s; %d cores\n\n",
    $preset, $window, scalar(() = Bench::slurp('/proc/cpuinfo') =~ /^processor/mg);
printf "%-18s %-7s %16s %12s %16s %12s\n", 'server', 'how', 'renditions ready', 'master', 'ffmpeg CPU s/s', 'worker s/s';
run_case('nginx-rtmp-module', 'exec');
run_case('ngx-rtmp-rs', 'exec');
run_case('ngx-rtmp-rs', 'ladder');
