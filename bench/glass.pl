#!/usr/bin/perl
# Glass-to-glass latency in headless Chromium (bench/www/glass.html), in a loopback-only
# network namespace, one run:
#   - RTMP in -> WHEP out: bench/publish.pl sends a pre-encoded 640x360 30 fps H.264
#     stream (x264 zerolatency, no B-frames) whose pictures carry their frame number as
#     32 black or white squares, logging when it sent each frame; a Chromium viewer plays
#     it over WHEP and reads the number of every frame it presents. Latency: presented
#     minus sent (the encoder's own delay is not in it: the file is encoded beforehand).
#   - RTMP in -> LL-HLS (the reference): the same stream, hls.js in low-latency mode,
#     through hls_serve (1 s segments, 250 ms parts).
#   - WHIP in -> WHEP out: a Chromium publisher draws the clock (Date.now()) into a canvas
#     and publishes it over WHIP (H.264); a second Chromium plays it over WHEP and reads
#     the clock from each frame it presents. Latency: presented minus drawn, so capture,
#     encoding, both WebRTC legs, decoding and display are all in it.
# p50/p95 per path, against the issue's targets (WHIP -> WHEP p50 under 150 ms, RTMP ->
# WHEP under 300 ms).
#
#   bench/glass.pl [--window 12] [--keep]
# Needs: root (unshare -n), nginx, ffmpeg, chromium, hls.js (scripts/setup.sh build).

use strict;
use warnings;

BEGIN {
    if (!$ENV{NGX_RTMP_RS_NETNS}) {
        $ENV{NGX_RTMP_RS_NETNS} = 1;
        # (A default route going nowhere: Chromium gathers no candidate without one.)
        my $up = 'ip link set lo up && ip link add ngxv0 type veth peer name ngxv1 && ip addr add 10.99.0.1/24 dev ngxv0'
            . ' && ip link set ngxv0 up && ip link set ngxv1 up && ip route add default via 10.99.0.2 dev ngxv0';
        exec('unshare', '-n', 'sh', '-c', $up . ' && exec "$0" "$@"', $^X, $0, @ARGV) or die "unshare -n: $! (run as root)";
    }
}

use FindBin;
use lib "$FindBin::Bin/lib";
use Bench;
use Getopt::Long;
use Time::HiRes qw(time sleep);

my ($window, $keep) = (12, 0);
GetOptions('window=i' => \$window, 'keep' => \$keep) or die;
my $root = $Bench::ROOT;
my ($chromium) = grep { -x } qw(/usr/bin/chromium /usr/bin/chromium-browser);
$chromium or die "install chromium first\n";
-f "$root/nginx-conf/www/vendor/hls.min.js" or die "fetch hls.js first (scripts/setup.sh build)\n";

# The numbered stream: frame N carries N in its top 80 rows (as glass.html reads them).
my $input = "$Bench::WORK/glass-counter.flv";
unless (-s $input) {
    my $bits = "if(lt(Y,80),if(gt(mod(floor(N/pow(2,floor(Y/40)*16+floor(X/40))),2),0.5),235,16),128)";
    system('ffmpeg', '-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', "color=c=gray:size=640x360:rate=30,format=yuv420p,geq=lum='$bits':cb=128:cr=128",
        '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100', '-t', 90, '-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency',
        '-g', 30, '-b:v', '1500k', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '64k', '-f', 'flv', $input) == 0 or die 'ffmpeg failed';
}

my $hport = 30000 + int(rand(20000));
my $udp = $hport + 1;
my $conf = <<"CONF";
rtmp { server { listen 127.0.0.1:PORT; application live { live on;
    hls on; hls_path DIR/hls; hls_format fmp4; hls_fragment 1s; hls_partial_duration 250ms; hls_playlist_length 10s; } } }
http {
    access_log DIR/logs/access.log;
    whip_udp_listen 127.0.0.1:$udp;
    server {
        listen 127.0.0.1:$hport;
        location ~ ^/[^/]+/whip(/[^/]*)?\$ { whip_publish live; }
        location ~ ^/[^/]+/whep(/[^/]*)?\$ { whep_play live; }
        location /ll/ { hls_serve live; alias DIR/hls/; types { application/vnd.apple.mpegurl m3u8; video/iso.segment m4s; video/mp4 mp4; } }
        location = /report { return 204; }
        location /vendor/ { root $root/nginx-conf/www; }
        location / { root $root/bench/www; }
    }
}
CONF
my $n = start_nginx('ngx-rtmp-rs', 'glass', $conf);
my $dir = $n->{dir};
mkdir "$dir/hls";
chmod 0777, "$dir/hls";
my $base = "http://127.0.0.1:$hport";

sub browser {
    my ($name, $query, @flags) = @_;
    return spawn("$dir/logs/chromium-$name.log", $chromium, '--headless=new', '--no-sandbox', '--disable-gpu',
        '--allow-loopback-in-peer-connection', '--autoplay-policy=no-user-gesture-required', '--disable-background-networking',
        '--disable-dev-shm-usage', '--no-first-run', '--mute-audio', @flags, "--user-data-dir=$dir/chromium-$name", "$base/glass.html?$query");
}

# The (value, presented at) pairs a viewer reported for MODE and STREAM.
sub seen {
    my ($mode, $stream) = @_;
    my @pairs;
    for (split /\n/, slurp("$dir/logs/access.log")) {
        next unless m{GET /report\?glass=\Q$mode\E&stream=\Q$stream\E&n=([^ ]*) };
        (my $list = $1) =~ s/%3A/:/gi;
        $list =~ s/%2C/,/gi;
        push @pairs, map { [split /:/] } split /,/, $list;
    }
    return @pairs;
}

sub pct {
    my ($p, @v) = @_;
    return 'n/a' unless @v;
    @v = sort { $a <=> $b } @v;
    return sprintf '%.0f', $v[int($p / 100 * $#v)];
}

my %res;
# --- RTMP in ------------------------------------------------------------------------------------
spawn("$dir/logs/publish.log", "$root/bench/publish.pl", $input, '127.0.0.1', $n->{port}, 'live', 'r', "$dir/send.log");
sleep 4;
my %sent;    # frame number -> when it was sent
for my $mode ('whep', 'hls') {
    my $v = browser("r-$mode", "role=view&mode=$mode&stream=r");
    sleep 6 + $window;
    kill 'TERM', $v;
    waitpid($v, 0);
}
for (split /\n/, slurp("$dir/send.log")) {
    my ($ts, $at) = split ' ';
    $sent{int($ts * 30 / 1000 + 0.5)} //= $at;
}
for my $mode ('whep', 'hls') {
    my @p = seen($mode, 'r');
    # (The first seconds are the start: the GOP cache's burst, the player settling.)
    my $from = @p ? $p[0][1] + 4000 : 0;
    $res{"rtmp-$mode"} = [map { defined $sent{$_->[0]} && $_->[1] >= $from ? $_->[1] - $sent{$_->[0]} * 1000 : () } @p];
}
stop_children();

# --- WHIP in ------------------------------------------------------------------------------------
browser('pub', 'role=pub&stream=w', '--use-fake-ui-for-media-stream');
sleep 4;
my $v = browser('w-whep', 'role=view&mode=whep&stream=w');
sleep 6 + $window;
my @p = seen('whep', 'w');
my $from = @p ? $p[0][1] + 4000 : 0;
$res{'whip-whep'} = [map { my $d = ($_->[1] - $_->[0]) % 4294967296; $_->[1] >= $from && $d < 10000 ? $d : () } @p];
stop_children();
stop_nginx($n, $keep);

printf "glass-to-glass latency, headless Chromium, loopback, %d s windows, %s\n\n", $window, scalar localtime;
printf "%-44s %14s %10s %10s\n", 'path', 'p50/p95 ms', 'frames', 'target';
for ([ 'rtmp-whep', 'RTMP in (sent) -> WHEP, presented', 'p50 < 300' ],
     [ 'whip-whep', 'WHIP in (drawn) -> WHEP, presented', 'p50 < 150' ],
     [ 'rtmp-hls', 'RTMP in (sent) -> LL-HLS via hls_serve', '(reference)' ]) {
    my ($k, $what, $target) = @$_;
    my @v = @{ $res{$k} // [] };
    printf "%-44s %14s %10d %10s\n", $what, pct(50, @v) . '/' . pct(95, @v), scalar @v, $target;
}
