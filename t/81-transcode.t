#!/usr/bin/perl
# A transcoding ladder with real ffmpeg: `transcode` lines make three renditions of one
# published stream with one supervised ffmpeg; the master playlist takes the stream's own
# name and lists the source and every rendition with what was measured (BANDWIDTH,
# AVERAGE-BANDWIDTH) and what they are (RESOLUTION, FRAME-RATE, CODECS); ffprobe confirms
# each rendition's size and, roughly, its bit rate; segments with the same number start at
# the same time in every rendition; hls.js in headless Chromium plays the master, sees its
# levels and switches between them without a stall; the ladder ends with its publisher.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Test::Nginx::RTMP qw(wait_for slurp);
use Time::HiRes qw(time sleep);

my $t = Test::Nginx::RTMP->new;
my $dir = $t->dir;
$t->write_default_config;
my $conf = slurp("$dir/nginx.conf");
# The default config's `abr` application, with a lighter ladder (2 cores).
$conf =~ s{transcode _720p [^;]*;\s*transcode _480p [^;]*;\s*transcode _360p [^;]*;}{transcode _360p 480x270 400k preset=ultrafast;
            transcode _240p 426x240 250k preset=ultrafast audio=64k;
            transcode _144p 256x144 120k preset=ultrafast fps=15 audio=48k;}
    or die 'no abr application in nginx-conf/nginx.conf';
$t->write_file('nginx.conf', $conf);
$t->run;
my $url = "rtmp://127.0.0.1:" . $t->port('RTMP');
my $http = "http://127.0.0.1:" . $t->port('HTTP');
my $hls = "$dir/run/hls";

my $started = time;
my $pub = $t->ffmpeg_publish("$url/abr/cam", 60, size => '640x360', gop => 30);
my $master;
ok(wait_for(sub { $master = slurp("$hls/cam.m3u8") // ''; ($master =~ tr/\n//) >= 11 }, 30),
    sprintf('the master playlist lists the source and three renditions (%.1f s after publishing)', time - $started))
    or diag($master, $t->error_log);
my @inf = $master =~ /^#EXT-X-STREAM-INF:(.*)\n(\S+)$/mg;
my %level;
while (my ($attrs, $uri) = splice @inf, 0, 2) {
    $level{$uri} = { map { /^([A-Z-]+)=("?)(.*)\2$/ ? ($1 => $3) : () } split /,(?=[A-Z-]+=)/, $attrs };
}
is_deeply([sort keys %level], [sort map { "cam$_.m3u8" } qw(_src _360p _240p _144p)], 'its entries: cam_src.m3u8 and the renditions');
my %size = (_src => '640x360', _360p => '480x270', _240p => '426x240', _144p => '256x144');
for my $r (sort keys %size) {
    my $l = $level{"cam$r.m3u8"} // {};
    is($l->{RESOLUTION}, $size{$r}, "cam$r: RESOLUTION");
    like($l->{CODECS} // '', qr/^avc1\.[0-9a-f]{6},mp4a\.40\.2$/, "cam$r: CODECS");
    like($l->{'FRAME-RATE'} // '', $r eq '_144p' ? qr/^15\.000$/ : qr/^30\.000$/, "cam$r: FRAME-RATE");
    cmp_ok($l->{BANDWIDTH} // 0, '>=', $l->{'AVERAGE-BANDWIDTH'} // 1, "cam$r: BANDWIDTH (peak) is at least AVERAGE-BANDWIDTH");
}
for my $r (qw(_360p _240p _144p)) {
    my ($w, $h) = split /x/, $size{$r};
    my $probe = qx{ffprobe -v error -select_streams v -show_entries stream=width,height -of csv=p=0 $hls/cam$r.m3u8 2>&1};
    like($probe, qr/^$w,$h$/m, "ffprobe: cam$r is ${w}x$h");
}
my %kbps = (_360p => 400 + 128, _240p => 250 + 64, _144p => 120 + 48);
for my $r (sort keys %kbps) {
    my $avg = ($level{"cam$r.m3u8"}{'AVERAGE-BANDWIDTH'} // 0) / 1000;
    ok($avg > $kbps{$r} * 0.4 && $avg < $kbps{$r} * 2.5, sprintf("cam$r: %.0f kbit/s measured for %d configured", $avg, $kbps{$r}));
}

# Segment numbers mean the same moment in every rendition.
sub segments {
    my ($name) = @_;
    my $p = slurp("$hls/$name.m3u8") // '';
    my ($seq) = $p =~ /#EXT-X-MEDIA-SEQUENCE:(\d+)/;
    my @files = $p =~ /^(\S+\.ts)$/mg;
    return map { ($seq + $_) => $files[$_] } 0 .. $#files;
}
sub start_of {
    my ($file) = @_;
    my ($pts) = qx{ffprobe -v error -select_streams v -show_entries packet=pts_time -read_intervals %+#1 -of csv=p=0 $hls/$file 2>/dev/null} =~ /([\d.]+)/;
    return $pts;
}
wait_for(sub { my %s = segments('cam_144p'); keys %s >= 4 }, 20);
my %src = segments('cam_src');
my ($compared, $worst) = (0, 0);
for my $r (qw(_360p _240p _144p)) {
    my %seg = segments("cam$r");
    my @common = grep { $src{$_} } sort { $a <=> $b } keys %seg;
    shift @common;    # (a rendition's first segment starts when its encoder did)
    for my $n (@common) {
        my ($a, $b) = (start_of($src{$n}), start_of($seg{$n}));
        next unless defined $a && defined $b;
        $compared++;
        $worst = abs($a - $b) if abs($a - $b) > $worst;
    }
}
ok($compared >= 6 && $worst < 0.1, sprintf('segments of the same number start together (%d compared, at most %.3f s apart)', $compared, $worst));
# ... and have the same date (hls.js lines up a ladder's playlists by their dates).
sub dates {
    my ($name) = @_;
    my $p = slurp("$hls/$name.m3u8") // '';
    my ($seq) = $p =~ /#EXT-X-MEDIA-SEQUENCE:(\d+)/;
    my @d = $p =~ /^#EXT-X-PROGRAM-DATE-TIME:\d{4}-\d\d-\d\dT(\d\d):(\d\d):([\d.]+)/mg;
    my %d;
    while (my ($h, $m, $sec) = splice @d, 0, 3) { $d{$seq++} = $h * 3600 + $m * 60 + $sec }
    return %d;
}
my %src_dates = dates('cam_src');
my ($dated, $off) = (0, 0);
for my $r (qw(_360p _240p _144p)) {
    my %d = dates("cam$r");
    for my $n (grep { exists $src_dates{$_} } keys %d) {
        $dated++;
        $off = abs($d{$n} - $src_dates{$n}) if abs($d{$n} - $src_dates{$n}) > $off;
    }
}
ok($dated >= 6 && $off < 0.1, sprintf('  and the same EXT-X-PROGRAM-DATE-TIME (%d compared, at most %.3f s apart)', $dated, $off));

# hls.js plays the master and switches levels.
SKIP: {
    my ($chromium) = grep { -x } qw(/usr/bin/chromium /usr/bin/chromium-browser);
    skip 'chromium is not installed (scripts/setup.sh deps installs it)', 3 unless $chromium;
    my $pid = $t->spawn("$dir/chromium.log", $chromium, '--headless=new', '--no-sandbox', '--disable-gpu',
        '--mute-audio', '--autoplay-policy=no-user-gesture-required', '--no-first-run', '--disable-dev-shm-usage',
        "--user-data-dir=$dir/chromium", "$http/player.html?stream=cam&report=1&cycle=4");
    my @reports;
    wait_for(sub {
        @reports = ();
        my $log = slurp("$dir/run/access.log") // '';
        while ($log =~ m{GET /report\?stream=cam&t=([\d.]+)&errors=(\d+)&fatal=([^& ]*)&last=([^& ]*)&hls=[^& ]*&levels=(\d+)&level=(-?\d+)&switched=([\d%C,-]*)}g) {
            my %r = (t => $1, errors => $2, fatal => $3, last => $4, levels => $5, level => $6, switched => $7);
            $r{switched} =~ s/%2C/,/g;
            push @reports, \%r;
        }
        return 0 unless @reports;
        my %seen = map { $_ => 1 } split /,/, $reports[-1]{switched};
        return keys %seen >= 4;
    }, 60);
    kill 'TERM', $pid;
    waitpid($pid, 0);
    my $last = $reports[-1] // {};
    is($last->{levels}, 4, 'hls.js sees four levels (the source and three renditions)') or diag(slurp("$dir/chromium.log"));
    my %seen = map { $_ => 1 } split /,/, ($last->{switched} // '');
    is(scalar(keys %seen), 4, "it played each of them in turn (levels switched to: $last->{switched})");
    # (A report a second: the time played keeps up with the time passing.)
    my ($i) = grep { $reports[$_]{t} > 0 } 0 .. $#reports;
    my $first = defined $i ? $reports[$i] : undef;
    my $wall = defined $i ? $#reports - $i : 0;
    my $played = $first ? $last->{t} - $first->{t} : 0;
    ok($first && $wall >= 8 && $played >= $wall - 2 && !$last->{fatal} && $last->{errors} == 0,
        sprintf('  without a stall or an error (%.1f s played in %d s; last error: %s)', $played, $wall, $last->{last} || 'none'));
}

# The default config's exec recipe (nginx-rtmp-module's way): publish to src/KEY, its
# ffmpeg makes live/KEY_hi, _mid and _lo, whose hls_variant master is KEY.m3u8.
my $recipe = $t->ffmpeg_publish("$url/src/show", 25, size => '320x240', gop => 30);
ok(wait_for(sub { !grep { !-s "$hls/show$_.m3u8" } qw(_hi _mid _lo) }, 25), 'the exec recipe of nginx-conf/nginx.conf makes three renditions')
    or diag(join "\n", grep { /exec/ } split /\n/, $t->error_log);
like(slurp("$hls/show.m3u8") // '', qr/show_hi\.m3u8.*show_mid\.m3u8.*show_lo\.m3u8/s, '  listed in the hls_variant master playlist');
like(qx{ffprobe -v error -select_streams v -show_entries stream=width,height -of csv=p=0 $hls/show_mid.m3u8 2>&1}, qr/^854,480$/m, '  show_mid is 854x480');
kill 'TERM', $recipe;

my $age = time - (stat "$hls/cam.m3u8")[9];
ok(-s "$hls/cam.m3u8" && $age < 5, sprintf('the master playlist stays fresh while its stream lives (hls_cleanup removes playlists older than 10 s; it is %.0f s old)', $age));

# The ladder ends with its publisher.
my ($worker) = $t->worker_pids;
wait_for(sub { my @k = qx{pgrep -P $worker}; @k == 1 }, 10);
my @keepers = map { chomp; $_ } qx{pgrep -P $worker};
ok(@keepers == 1, 'one transcoder for the whole ladder (the recipe\'s is gone with its publisher)');
kill 'TERM', $pub;
ok(wait_for(sub { !grep { -e "/proc/$_" } @keepers }, 10), 'it ends when the publisher leaves');
is_deeply([$t->alerts], [], 'no alert in the error log');
done_testing;
