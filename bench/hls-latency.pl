#!/usr/bin/perl
# HLS latency benchmark: how far behind live hls.js plays, in headless Chromium, for
# nginx-rtmp-module's HLS (MPEG-TS, 2 s fragments) and ours (MPEG-TS 2 s; fMP4 with
# low-latency parts: 2 s segments of 500 ms parts, 1 s segments of 250 ms parts, the latter also
# through hls_serve with blocking playlist reload), each in its
# own nginx, one after the other, same publisher settings.
#
# The publisher: ffmpeg encoding live (-re, 640x360 30 fps, a keyframe every second, AAC).
# The page: nginx-conf/www/player.html, served by the nginx under test, reporting every
# second hls.js's `latency` (from the playlist's live edge) and, where the playlist dates
# its segments (EXT-X-PROGRAM-DATE-TIME: ours), the wall clock minus `playingDate`
# (publish to playback, packaging included). Figures: p50/p95 over the window, after a
# warm-up; stalls (hls.js bufferStalledError events).
#
#   bench/hls-latency.pl [--window 30] [--warmup 8] [--only tsrtmp,ts,ll500,ll250,serve250] [--keep]
# Needs: nginx, libnginx-mod-rtmp, ffmpeg, chromium; the module built (and hls.js fetched:
# scripts/setup.sh build).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Bench;
use File::Path qw(make_path);
use Getopt::Long;
use Time::HiRes qw(time sleep);

my ($window, $warmup, $keep, $only) = (30, 8, 0, '');
GetOptions('window=i' => \$window, 'warmup=i' => \$warmup, 'keep' => \$keep, 'only=s' => \$only) or die;
my ($chromium) = grep { -x } qw(/usr/bin/chromium /usr/bin/chromium-browser);
$chromium or die "install chromium first\n";
-f "$Bench::ROOT/nginx-conf/www/vendor/hls.min.js" or die "fetch hls.js first (scripts/setup.sh build)\n";

sub pct { my ($p, @v) = @_; @v = sort { $a <=> $b } @v; @v ? $v[int($p * $#v + 0.5)] : undef }

sub run_case {
    my ($server, $name, $hls, $serve) = @_;
    # ($serve: the playlists through hls_serve, blocking reload and delta updates.)
    my $ll = $serve ? "location /ll/ { hls_serve live; alias DIR/hls/; types { application/vnd.apple.mpegurl m3u8; video/iso.segment m4s; video/mp4 mp4; } }" : '';
    my $rtmp = live_rtmp("hls on; hls_path DIR/hls; hls_playlist_length 10s; $hls");
    # (The page and hls.js from the checkout; the reports in the access log.)
    my $http = <<"CONF";
http {
    access_log DIR/logs/access.log;
    server {
        listen 127.0.0.1:HTTPPORT;
        location /hls/ {
            root DIR;
            types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; video/iso.segment m4s; video/mp4 mp4; }
            add_header Cache-Control no-cache;
        }
        $ll
        location = /report { return 204; }
        location / { root $Bench::ROOT/nginx-conf/www; }
    }
}
CONF
    my $hport = 30000 + int(rand(20000));
    $http =~ s/HTTPPORT/$hport/g;
    my $ng = start_nginx($server, "latency-$name", $rtmp . $http);
    make_path("$ng->{dir}/hls");
    chmod 0777, "$ng->{dir}/hls";
    spawn("$ng->{dir}/logs/publish.log", 'ffmpeg', '-hide_banner', '-loglevel', 'error', '-re',
        '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=30', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100',
        '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', 30, '-pix_fmt', 'yuv420p',
        '-c:a', 'aac', '-b:a', '64k', '-f', 'flv', "rtmp://127.0.0.1:$ng->{port}/live/lat");
    # (A viewer arrives once the playlist has three segments, as viewers of a live stream do.)
    my $deadline = time + 20;
    sleep 0.2 until time > $deadline || (() = (slurp("$ng->{dir}/hls/lat.m3u8") =~ /^[^#].*\.(ts|m4s)$/mg)) >= 3;
    spawn("$ng->{dir}/logs/chromium.log", $chromium, '--headless=new', '--no-sandbox', '--disable-gpu', '--mute-audio',
        '--autoplay-policy=no-user-gesture-required', '--no-first-run', '--disable-dev-shm-usage',
        "--user-data-dir=$ng->{dir}/chromium", "http://127.0.0.1:$hport/player.html?stream=lat&report=1" . ($serve ? '&base=/ll/' : ''));
    sleep $warmup + $window;
    my (@lat, @pdt, $errors, $reports);
    for (split /\n/, slurp("$ng->{dir}/logs/access.log")) {
        next unless m{GET /report\?stream=lat&t=([\d.]+)&errors=(\d+)&fatal=[^& ]*&last=[^& ]*([^ ]*)};
        my ($t, $rest) = ($1, $3);
        ($reports, $errors) = (($reports // 0) + 1, $2);
        next unless $t > 0;
        push @lat, $1 if $rest =~ /&latency=([\d.]+)/;
        push @pdt, $1 if $rest =~ /&pdt_latency=(-?[\d.]+)/;
    }
    # (The warm-up's reports are left out: the first ones come while hls.js settles.)
    splice(@lat, 0, $warmup) if @lat > $warmup;
    splice(@pdt, 0, $warmup) if @pdt > $warmup;
    stop_children();
    stop_nginx($ng, $keep);
    return { lat => [@lat], pdt => [@pdt], errors => $errors // 0, reports => $reports // 0 };
}

printf "publisher: ffmpeg -re, 640x360 30 fps, a keyframe every 1 s; window %d s after %d s; %d cores\n\n", $window, $warmup,
    scalar(() = slurp('/proc/cpuinfo') =~ /^processor/mg);
printf "%-19s %-34s %22s %28s %7s\n", 'server', 'HLS', 'hls.latency p50/p95 s', 'publish->playback p50/p95 s', 'errors';
for my $case (
    ['nginx-rtmp-module', 'tsrtmp', 'MPEG-TS, 2 s fragments', 'hls_fragment 2s;'],
    ['ngx-rtmp-rs', 'ts', 'MPEG-TS, 2 s fragments', 'hls_fragment 2s;'],
    ['ngx-rtmp-rs', 'll500', 'fMP4, 2 s segments, 500 ms parts', 'hls_fragment 2s; hls_format fmp4; hls_partial_duration 500ms;'],
    ['ngx-rtmp-rs', 'll250', 'fMP4, 1 s segments, 250 ms parts', 'hls_fragment 1s; hls_format fmp4; hls_partial_duration 250ms;'],
    ['ngx-rtmp-rs', 'serve250', 'the same, through hls_serve', 'hls_fragment 1s; hls_format fmp4; hls_partial_duration 250ms;', 1],
) {
    my ($server, $name, $what, $conf, $serve) = @$case;
    next if $only && !grep { $_ eq $name } split /,/, $only;
    my $r = run_case($server, $name, $conf, $serve);
    my $f = sub { my @v = @{ $_[0] }; @v ? sprintf('%.2f / %.2f', pct(0.5, @v), pct(0.95, @v)) : '-' };
    printf "%-19s %-34s %22s %28s %7d\n", $server, $what, $f->($r->{lat}), $f->($r->{pdt}), $r->{errors};
}
