#!/usr/bin/perl
# WHEP playback with real clients, inside a network namespace with only loopback: the
# project's default config; ffmpeg publishes H.264 + AAC over RTMP, a WHIP publisher
# (GStreamer, H.264 + Opus) publishes another stream, and headless Chromium watches
# each with the watch page (nginx-conf/www/watch.html): frames decoded keep growing,
# the RTMP stream's AAC plays as Opus (not silence), the WHIP stream's Opus arrives as
# is, /stat lists the viewer as a player,
# /control/drop ends it. Then the HTTP side: 409 with Retry-After for a stream that is
# not live, CORS, DELETE.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Nginx::Netns 'default_route';
use HTTP::Tiny;
use Test::More;
use Test::Nginx::RTMP qw(wait_for slurp);
use Time::HiRes qw(time sleep);

my ($chromium) = grep { -x } qw(/usr/bin/chromium /usr/bin/chromium-browser);
plan skip_all => 'chromium is needed (scripts/setup.sh deps)' unless $chromium;
my $gst_ok = system('/usr/bin/python3 -c "import gi; gi.require_version(\'GstWebRTC\', \'1.0\')" 2>/dev/null') == 0;

# A whep_play naming an application no rtmp server has fails nginx -t, naming it.
{
    my $bad = Test::Nginx::RTMP->new;
    $bad->write_config("rtmp { server { listen 127.0.0.1:%%PORT_RTMP%%; application live { live on; } } }\n"
        . "http { server { listen 127.0.0.1:%%PORT_HTTP%%; location /w { whep_play nope; } } }\n");
    my ($ok, $out) = $bad->test_config;
    ok(!$ok && $out =~ /"whep_play" names application "nope", which no rtmp server has/, 'nginx -t: whep_play of an unknown application is refused, naming it')
        or diag($out);
}

my $t = Test::Nginx::RTMP->new->write_default_config;
my $dir = $t->dir;
# (The watch page's progress reports are logged here: the default config does not log them.)
my $conf = slurp("$dir/nginx.conf");
$conf =~ s/access_log off;//;
# (Ten WHEP sessions from one address at most, checked below.)
$conf =~ s/(whip_udp_listen [^;]+;)/$1\n    whep_max_sessions_per_ip 10;/ or die 'no whip_udp_listen';
# WHEP of application abr (the default config's ladder, one small rendition here: this
# machine has two cores).
$conf =~ s/(\s*location ~ \^\/\[\^\/\]\+\/whep)/\n        location ~ ^\/abr\/[^\/]+\/whep(\/[^\/]*)?\$ { whep_play abr; }$1/ or die 'no whep location';
$conf =~ s/transcode _720p [^;]+;\s*transcode _480p [^;]+;\s*transcode _360p [^;]+;/transcode _lo 320x180 300k;/ or die 'no transcode lines';
$t->write_file('nginx.conf', $conf);
$t->run;
my ($rtmp, $whip) = ($t->port('RTMP'), $t->port('WHIP'));
my $base = "http://127.0.0.1:$whip";
my $http = HTTP::Tiny->new(timeout => 10);
my $access = "$dir/run/access.log";

# The watch page's progress lines for one stream (it reports GET /report?whep=LINE).
my $reports = sub {
    my ($key) = @_;
    my $l = slurp($access) // '';
    return [map { s/\+/ /gr =~ s/%([0-9A-F]{2})/chr hex $1/gier } $l =~ m{GET /report\?whep=([^ ]*) [^\n]*watch\.html\?stream=\Q$key\E}g];
};
my $frames = sub { my ($r) = @_; my @f = map { /^stats frames=(\d+)/ ? $1 : () } @$r; return @f ? $f[-1] : 0 };
my $watch = sub {
    my ($key, $n, %o) = @_;
    return $t->spawn("$dir/chromium-$n.log", $chromium, '--headless=new', '--no-sandbox', '--disable-gpu',
        '--allow-loopback-in-peer-connection', '--autoplay-policy=no-user-gesture-required',
        '--disable-background-networking', '--disable-dev-shm-usage', '--no-first-run', '--mute-audio',
        '--enable-logging=stderr', '--v=0', "--user-data-dir=$dir/chromium-$n",
        "$base/watch.html?stream=$key&report=1" . ($o{seconds} ? "&seconds=$o{seconds}" : ''));
};

# --- the HTTP side first: a stream that is not live ------------------------------------------
my $offer = slurp("$FindBin::Bin/data/whip-offer.sdp");
my $r = $http->request('POST', "$base/nothing/whep", { headers => { 'Content-Type' => 'application/sdp' }, content => $offer });
is($r->{status}, 409, 'an offer for a stream that is not live: 409');
is($r->{headers}{'retry-after'} // '', '2', '  with Retry-After: 2 (the watch page tries again then)');
$r = $http->request('OPTIONS', "$base/x/whep");
is($r->{status}, 204, 'OPTIONS: 204');
is($r->{headers}{'access-control-allow-origin'} // '', '*', '  with CORS headers');
$r = $http->request('POST', "$base/x/whep", { headers => { 'Content-Type' => 'text/plain' }, content => 'x' });
is($r->{status}, 415, 'a wrong content type: 415');
$r = $http->request('DELETE', "$base/x/whep/0123456789abcdef0123456789abcdef");
is($r->{status}, 404, 'DELETE of an unknown session: 404');

# --- ffmpeg publishes over RTMP (H.264 + AAC); Chromium watches over WHEP -------------------
my $pub = $t->ffmpeg_publish("rtmp://127.0.0.1:$rtmp/live/cam", 60, gop => 30);
ok(wait_for(sub { ($http->get("http://127.0.0.1:" . $t->port('HTTP') . '/stat')->{content} // '') =~ /<name>cam<\/name>.*?<publishing\/>/s }, 15),
    'ffmpeg publishes live/cam');
my $t0 = time;
my $c1 = $watch->('cam', 1);
ok(wait_for(sub { grep { $_ eq 'state connected' } @{ $reports->('cam') } }, 20), 'Chromium: the watch page connects over WHEP')
    or diag(join("\n", @{ $reports->('cam') }), slurp("$dir/chromium-1.log") // '');
diag(sprintf('connected %.1f s after Chromium started', time - $t0));
my ($posted) = grep { /^posted/ } @{ $reports->('cam') };
is($posted, 'posted 201', '  its offer was answered 201 Created');
ok(wait_for(sub { $frames->($reports->('cam')) > 0 }, 10), '  video frames are decoded')
    or diag(join("\n", @{ $reports->('cam') }));
my ($first) = map { /^first_frame ms=(\d+)/ ? $1 : () } @{ $reports->('cam') };
# (The offer comes in the middle of a one-second GOP: the first picture is the GOP
# cache's keyframe, not the next one, which could be up to 1 s away.)
ok(defined $first && $first < 1000, sprintf('  the first picture shows %s ms after the offer was sent', $first // '?'));
my $f1 = $frames->($reports->('cam'));
sleep 5;
my $f2 = $frames->($reports->('cam'));
cmp_ok($f2 - $f1, '>=', 100, "  and keep coming: $f1 then $f2 five seconds later (30 fps)");
ok(!grep({ /^fallback/ } @{ $reports->('cam') }), '  the page did not fall back to HLS');
# The publisher's AAC (a 440 Hz sine at ffmpeg's default 1/8 amplitude, RMS 0.088) comes
# as Opus: the page measures the decoded audio with an AnalyserNode.
my $rms = sub { my @r = map { /audio_rms=([\d.]+)/ ? $1 : () } @{ $reports->($_[0]) }; @r ? $r[-1] : 0 };
ok(wait_for(sub { $rms->('cam') > 0.03 }, 10), sprintf('  its AAC audio plays as Opus, not silence: RMS %.3f', $rms->('cam')))
    or diag(join("\n", grep { /^stats/ } @{ $reports->('cam') }));
cmp_ok($rms->('cam'), '<', 0.2, '  at the level it was published');

my $stat = $http->get("http://127.0.0.1:" . $t->port('HTTP') . '/stat')->{content} // '';
like($stat, qr{<name>cam</name>.*?<flashver>WHEP ngx-rtmp-rs</flashver>}s, '/stat lists the WHEP viewer as a client of the stream');
my $metrics = $http->get("http://127.0.0.1:" . $t->port('HTTP') . '/metrics')->{content} // '';
like($metrics, qr/^rtmp_whep_sessions 1$/m, '/metrics: rtmp_whep_sessions 1 (the viewer playing)');
like($metrics, qr/^rtmp_whep_sessions_total [1-9]/m, '  rtmp_whep_sessions_total counts it');
like($metrics, qr/^rtmp_whip_sessions_total 0$/m, '  and WHIP counts no WHEP session');
my ($id) = $stat =~ m{<name>cam</name>.*?<client>\s*<id>(\d+)</id>(?:(?!</client>).)*WHEP}s;
ok($id, "  (client $id)");
SKIP: {
    skip 'no client id', 1 unless $id;
    my $d = $http->get("http://127.0.0.1:" . $t->port('HTTP') . "/control/drop/client?app=live&name=cam&clientid=$id");
    ok(wait_for(sub { ($t->error_log // '') =~ /whep: session \w+ ended: .*(ended by the server|UnpublishNotify|dropped)/ }, 10),
        '/control/drop/client ends the WHEP session') or diag($d->{status}, ' ', $d->{content});
}
kill 'TERM', $c1;
$t->reap($c1, 10);

# A second, independent WHEP implementation (GStreamer's webrtcbin) decodes it, while eight
# more webrtcbin viewers (depayloading only) play it at the same time (with Chromium's,
# ten from one address: whip_max_sessions_per_ip's default).
SKIP: {
    skip 'GStreamer webrtcbin (python3-gi) is needed', 8 unless $gst_ok;
    my @v = map {
        $t->spawn("$dir/whep-gst-$_.log", '/usr/bin/python3', "$FindBin::Bin/data/whep-gst.py", "$base/cam/whep", 6, $_ ? ('--no-decode') : ())
    } 0 .. 8;
    # A tenth stops dead a second in (SIGSTOP: its socket fills, its packets are lost on
    # its path, and it sends nothing more): the others are not disturbed, and its session
    # ends at whip_timeout (10 s) for silence.
    my $dead = $t->spawn("$dir/whep-gst-dead.log", '/usr/bin/python3', "$FindBin::Bin/data/whep-gst.py", "$base/cam/whep", 60, '--no-decode');
    ok(wait_for(sub { (slurp("$dir/whep-gst-dead.log") // '') =~ /state connected/ }, 10), 'a tenth viewer connects, then stops dead');
    kill 'STOP', $dead;
    my $stopped_at = time;
    # Ten WHEP sessions from this address: an eleventh is refused (WHEP's own limit,
    # set to 10 above; WHIP's is apart).
    ok(wait_for(sub { ($http->get("http://127.0.0.1:" . $t->port('HTTP') . '/metrics')->{content} // '') =~ /^rtmp_whep_sessions 10$/m }, 10),
        'ten WHEP sessions at once');
    my $more = $http->request('POST', "$base/cam/whep", { headers => { 'Content-Type' => 'application/sdp' }, content => $offer });
    is($more->{status}, 429, 'an eleventh from the same address: 429');
    like($more->{content} // '', qr/whep_max_sessions_per_ip/, '  naming whep_max_sessions_per_ip');
    my @rc = map { $t->reap($_, 30) } @v;
    my @counts = map { [(slurp("$dir/whep-gst-$_.log") // '') =~ /counts video=(\d+) audio=(\d+)/] } 0 .. 8;
    is($rc[0], 0, sprintf('GStreamer webrtcbin decodes it over WHEP: %d video frames, %d audio buffers in 6 s', @{ $counts[0] }[0, 1]))
        or diag(slurp("$dir/whep-gst-0.log"));
    cmp_ok($counts[0][0] // 0, '>=', 120, "  at the stream's frame rate");
    my @short = grep { ($counts[$_][0] // 0) < 120 || ($counts[$_][1] // 0) < 200 || ($rc[$_] // 1) != 0 } 1 .. 8;
    ok(!@short, 'eight more viewers at once each get every frame and the audio: ' . join(' ', map { ($_->[0] // 0) . '/' . ($_->[1] // 0) } @counts[1 .. 8]))
        or diag(map { slurp("$dir/whep-gst-$_.log") } @short);
    ok(wait_for(sub { ($t->error_log // '') =~ /whep: session \w+ ended: nothing from the viewer for 10000 ms/ }, 20),
        sprintf("  the dead viewer's session ends for silence, %.0f s after it stopped", time - $stopped_at));
    kill 'KILL', $dead;
    $t->reap($dead, 10);
}

# The page's fall-back: without WebRTC it plays the stream's HLS (hls.js, port 8888).
my $c3 = $t->spawn("$dir/chromium-3.log", $chromium, '--headless=new', '--no-sandbox', '--disable-gpu',
    '--autoplay-policy=no-user-gesture-required', '--disable-dev-shm-usage', '--no-first-run', '--mute-audio',
    "--user-data-dir=$dir/chromium-3", "$base/watch.html?stream=cam&report=1&nowebrtc=1&hls=" . "http://127.0.0.1:" . $t->port('HTTP') . '/hls/cam.m3u8');
my $hls_time = sub { my @x = map { /^hls time=([\d.]+)/ ? $1 : () } @{ $reports->('cam') }; @x ? $x[-1] : 0 };
ok(wait_for(sub { $hls_time->() > 2 }, 25), sprintf('without WebRTC the page falls back to HLS, which plays (%.1f s)', $hls_time->()))
    or diag(join("\n", @{ $reports->('cam') }));
kill 'TERM', $c3;
$t->reap($c3, 10);

# --- a stream with B-frames (x264's own default) is refused, saying why -------------------
my $bf = $t->spawn("$dir/bf.log", 'ffmpeg', '-hide_banner', '-loglevel', 'error', '-re', '-f', 'lavfi',
    '-i', 'testsrc2=size=320x240:rate=30', '-c:v', 'libx264', '-preset', 'veryfast', '-bf', '2', '-g', '30',
    '-pix_fmt', 'yuv420p', '-t', '30', '-f', 'flv', "rtmp://127.0.0.1:$rtmp/live/bf");
ok(wait_for(sub { ($http->get("http://127.0.0.1:" . $t->port('HTTP') . '/stat')->{content} // '') =~ /<name>bf<\/name>.*?<publishing\/>/s }, 15),
    'ffmpeg publishes live/bf with B-frames');
sleep 1;
$r = $http->request('POST', "$base/bf/whep", { headers => { 'Content-Type' => 'application/sdp' }, content => $offer });
is($r->{status}, 406, 'an offer for it is refused: 406');
like($r->{content} // '', qr/B-frames.*-bf 0/, '  saying why and what to do');
like($t->error_log // '', qr/whep: offer refused \(406\): the stream has B-frames/, '  and in the error log');
kill 'TERM', $bf;
$t->reap($bf, 10);

# --- a WHIP publisher (Opus) watched over WHEP: the audio arrives as is --------------------
SKIP: {
    skip 'GStreamer webrtcbin (python3-gi) is needed', 4 unless $gst_ok;
    my $gst = $t->spawn("$dir/gst.log", '/usr/bin/python3', "$FindBin::Bin/data/whip-gst.py", "$base/gst/whip", 20);
    ok(wait_for(sub { (slurp("$dir/gst.log") // '') =~ /WHIP state connected/ }, 20), 'GStreamer publishes gst over WHIP')
        or diag(slurp("$dir/gst.log"));
    my $c2 = $watch->('gst', 2, seconds => 6);
    ok(wait_for(sub { $frames->($reports->('gst')) >= 30 }, 20), 'Chromium plays the WHIP stream over WHEP: frames decoded')
        or diag(join("\n", @{ $reports->('gst') }), slurp("$dir/chromium-2.log") // '');
    my $abytes = sub { my ($l) = reverse grep { /^stats/ } @{ $reports->('gst') }; (($l // '') =~ /audio_bytes=(\d+)/)[0] // 0 };
    ok(wait_for(sub { $abytes->() > 10_000 }, 10), sprintf('  and its Opus audio arrives as is (%d bytes)', $abytes->()));
    ok(wait_for(sub { grep { /^stopped 200/ } @{ $reports->('gst') } }, 15), '  the page ends its session with DELETE (200)')
        or diag(join("\n", @{ $reports->('gst') }));
    kill 'TERM', $c2, $gst;
    $t->reap($c2, 10);
    $t->reap($gst, 15);
}

# A browser to a browser: Chromium publishes its fake camera over WHIP (the publish
# page), a second Chromium watches it over WHEP (the watch page).
{
    my $pc = $t->spawn("$dir/chromium-pub.log", $chromium, '--headless=new', '--no-sandbox', '--disable-gpu',
        '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', '--allow-loopback-in-peer-connection',
        '--disable-background-networking', '--disable-dev-shm-usage', '--no-first-run', '--mute-audio',
        "--user-data-dir=$dir/chromium-pub", "$base/publish.html?key=browser&autostart=1&seconds=30&report=1");
    ok(wait_for(sub { ($t->error_log // '') =~ m{publish: "live/browser"} }, 25), 'Chromium publishes live/browser over WHIP (the publish page, a fake camera)')
        or diag(slurp("$dir/chromium-pub.log") // '');
    my $c4 = $watch->('browser', 4, seconds => 8);
    ok(wait_for(sub { $frames->($reports->('browser')) >= 60 }, 20), sprintf('a second Chromium plays it over WHEP: %d frames decoded', $frames->($reports->('browser'))))
        or diag(join("\n", @{ $reports->('browser') }), slurp("$dir/chromium-4.log") // '');
    my ($abytes) = map { /audio_bytes=(\d+)/ ? $1 : () } reverse grep { /^stats/ } @{ $reports->('browser') };
    cmp_ok($abytes // 0, '>', 1000, sprintf('  with its Opus audio (%d bytes)', $abytes // 0));
    kill 'TERM', $c4, $pc;
    $t->reap($c4, 10);
    $t->reap($pc, 10);
}

# A stream with B-frames: played from its ladder's rendition (encoded without them), not
# refused.
SKIP: {
    skip 'GStreamer webrtcbin (python3-gi) is needed', 3 unless $gst_ok;
    my $b = $t->spawn("$dir/bframes.log", 'ffmpeg', '-hide_banner', '-loglevel', 'error', '-re', '-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=30',
        '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100', '-c:v', 'libx264', '-preset', 'veryfast', '-bf', 2, '-g', 30,
        '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-t', 40, '-f', 'flv', "rtmp://127.0.0.1:$rtmp/abr/b");
    ok(wait_for(sub { ($t->error_log // '') =~ m{publish: "abr/b_lo"} }, 20), 'a publisher with B-frames in the application with a ladder: its rendition is live');
    sleep 1;
    my $v = $t->spawn("$dir/whep-gst-b.log", '/usr/bin/python3', "$FindBin::Bin/data/whep-gst.py", "$base/abr/b/whep", 5);
    my $rc = $t->reap($v, 30);
    my ($video) = (slurp("$dir/whep-gst-b.log") // '') =~ /counts video=(\d+)/;
    ok(($rc // 1) == 0 && ($video // 0) >= 60, sprintf('a WHEP viewer of it decodes %d frames', $video // 0)) or diag(slurp("$dir/whep-gst-b.log"));
    like($t->error_log // '', qr{whep: "abr/b" has B-frames: the viewer plays its rendition "b_lo"}, '  of the rendition, as the log says');
    kill 'TERM', $b;
    $t->reap($b, 10);
}

kill 'TERM', $pub;
$t->reap($pub, 10);
unlike($t->error_log // '', qr/\[(alert|emerg)\]|panic/, 'no alert, no panic in the error log');
done_testing;
