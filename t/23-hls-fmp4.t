#!/usr/bin/perl
# hls_format fmp4: the shipped configuration with fMP4 segments. An ffmpeg publisher
# (H.264 + AAC) gets a version 7 playlist with EXT-X-MAP, an init segment and .m4s
# segments that ffmpeg decodes without an error, served with their MIME types and cache
# headers, and played by hls.js in headless Chromium; an Enhanced RTMP publisher's Opus
# (what WHIP streams carry) goes into the segments as Opus. nginx -t refuses a bad value
# and hls_keys with fmp4.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Test::Nginx::RTMP qw(wait_for slurp probe);
use Test::Nginx::RTMPClient;
use Time::HiRes qw(time sleep);
use POSIX ();

my $t = Test::Nginx::RTMP->new;
# (Application live in fMP4; application ll in low-latency HLS: 1 s segments, 250 ms parts;
# location /ll/ serves its playlists with hls_serve: blocking reload and delta updates.)
$t->write_default_config(edit => sub {
    s{hls_fragment_naming system;}{hls_fragment_naming system;\n            hls_format fmp4;} or die 'no hls_fragment_naming in nginx.conf';
    s{(\n\s*application abr \{)}{\n        application ll {\n            live on;\n            hls on;\n            hls_path run/hls;\n            hls_format fmp4;\n            hls_fragment 1s;\n            hls_partial_duration 250ms;\n            hls_playlist_length 10s;\n            hls_fragment_naming system;\n        }\n$1} or die 'no application abr';
    # (An edge cache in front of it, as a CDN would be: 50 players through it below.)
    s{(\n\s*server \{\n\s*listen 8888;)}{\n    proxy_cache_path run/llcache keys_zone=llcache:4m;\n    server {\n        listen 127.0.0.1:%%PORT_EDGE%%;\n        location / {\n            proxy_pass http://127.0.0.1:%%PORT_HTTP%%/ll/;\n            proxy_cache llcache;\n            proxy_cache_lock on;\n            proxy_cache_lock_timeout 5s;\n            proxy_cache_valid 200 1s;\n        }\n    }\n$1} or die 'no server on 8888';
    s{(\n\s*location /hls/ \{)}{\n        location /ll/ {\n            hls_serve ll;\n            alias run/hls/;\n            types { application/vnd.apple.mpegurl m3u8; video/iso.segment m4s; video/mp4 mp4; }\n        }\n        location /lv/ {\n            hls_serve live;\n            alias run/hls/;\n        }\n$1} or die 'no location /hls/';
});
$t->run;
my $dir = $t->dir;
my $hls = "$dir/run/hls";
my $http = 'http://127.0.0.1:' . $t->port('HTTP');
my $rtmp = 'rtmp://127.0.0.1:' . $t->port('RTMP');

# --- nginx -t ----------------------------------------------------------------------------------
for ([ 'hls_format mp4;', qr/invalid value "mp4" in "hls_format" directive/ ],
     [ 'hls_partial_duration 250ms;', qr/"hls_partial_duration" is set in application "x" without "hls_format fmp4"/ ],
     [ 'hls_format fmp4; hls_fragment 1s; hls_partial_duration 600ms;', qr/"hls_partial_duration" in application "x" must be at most half of "hls_fragment"/ ],
     [ 'hls_keys on; hls_format fmp4;', qr/"hls_keys" is on in application "x" with "hls_format fmp4"/ ]) {
    my ($lines, $want) = @$_;
    my $c = Test::Nginx::RTMP->new;
    $c->write_config("rtmp { server { listen 127.0.0.1:%%PORT_RTMP%%; application x { live on; hls on; hls_path %%DIR%%/h; $lines } } }");
    my ($ok, $out) = $c->test_config;
    ok(!$ok && $out =~ $want, "nginx -t refuses \"$lines\"") or diag($out);
}

# --- H.264 + AAC from ffmpeg -----------------------------------------------------------------
my $pub = $t->ffmpeg_publish("$rtmp/live/f", 120, gop => 30, size => '640x360');
ok(wait_for(sub { (() = (slurp("$hls/f.m3u8") // '') =~ /\.m4s$/mg) >= 3 }, 20), 'the playlist lists three fMP4 segments');
my $pl = slurp("$hls/f.m3u8") // '';
like($pl, qr/^#EXT-X-VERSION:7$/m, '  version 7');
my ($init) = $pl =~ /^#EXT-X-MAP:URI="(f-init\d+\.mp4)"$/m;
ok($init && -s "$hls/$init", "  EXT-X-MAP names the init segment ($init)") or diag($pl);
my @segs = $pl =~ /^(f-\d+\.m4s)$/mg;
system("cat $hls/$init " . join(' ', map { "$hls/$_" } @segs) . " > $dir/f.mp4") == 0 or die;
# What ffprobe says of a file's streams: "h264 640x360, aac 2ch".
sub streams {
    my ($file) = @_;
    my @s;
    for (qx{ffprobe -v error -show_entries stream=codec_name,width,height,channels -of json $file 2>&1} =~ /\{[^{}]*"codec_name"[^{}]*\}/g) {
        my ($codec) = /"codec_name": "(\w+)"/;
        my ($w) = /"width": (\d+)/;
        my ($h) = /"height": (\d+)/;
        my ($ch) = /"channels": (\d+)/;
        push @s, $codec . ($w ? " ${w}x$h" : '') . ($ch ? " ${ch}ch" : '');
    }
    return join(', ', @s);
}
is(streams("$dir/f.mp4"), 'h264 640x360, aac 1ch', '  init + segments: H.264 640x360 and AAC');
my $p = probe("$dir/f.mp4");
my ($durations) = 0;
$durations += $_ for $pl =~ /^#EXTINF:([\d.]+),$/mg;
cmp_ok($p->{video}{frames} // 0, '>=', int($durations * 30) - 2, sprintf('  every frame is there (%d for %.3f s listed)', $p->{video}{frames} // 0, $durations));
is(scalar qx{ffmpeg -v error -i $dir/f.mp4 -f null - 2>&1}, '', '  and ffmpeg decodes them without an error');
# Each segment on its own after the init segment (as players fetch them).
my $bad = grep { system("cat $hls/$init $hls/$_ > $dir/one.mp4; ffmpeg -v error -i $dir/one.mp4 -f null - 2>&1 | grep -q .") == 0 } @segs;
is($bad, 0, '  each segment decodes after the init segment alone');

sub head {
    my ($path) = @_;
    return scalar qx{curl -s -o /dev/null -D - '$http$path'};
}
my $h = head("/hls/$segs[-1]");
like($h, qr{^Content-Type: video/iso\.segment\r$}mi, 'a segment is served as video/iso.segment');
like($h, qr{^Cache-Control: public, max-age=31536000, immutable\r$}mi, '  immutable');
like(head("/hls/$init"), qr{^Content-Type: video/mp4\r$}mi, 'the init segment as video/mp4');

SKIP: {
    my ($chromium) = grep { -x } qw(/usr/bin/chromium /usr/bin/chromium-browser);
    skip 'chromium is not installed (scripts/setup.sh deps installs it)', 3 unless $chromium;
    my ($playing, $last, $n) = $t->hlsjs_plays($chromium, 'f', 8);
    ok($playing, "hls.js in Chromium plays the fMP4 stream ($n reports)") or diag(slurp("$dir/chromium-f.log"));
    my $advanced = $playing ? $last->{t} - $playing->{t} : 0;
    cmp_ok($advanced, '>=', 8, sprintf('  currentTime advances %.1f s', $advanced));
    is(($last->{errors} // '?') . ($last->{last} // ''), '0', '  with no error events');
}
kill 'TERM', $pub;

# --- Opus, as a WHIP stream carries it (Enhanced RTMP) ---------------------------------------
# ffmpeg encodes 6 s of H.264 (FLV) and Opus (Ogg, 20 ms packets); the test publishes them
# as an Enhanced RTMP publisher would, interleaved by time.
system("ffmpeg -v error -f lavfi -i testsrc2=size=320x180:rate=30 -t 6 -c:v libx264 -preset ultrafast -g 30 -pix_fmt yuv420p -f flv $dir/v.flv"
    . " && ffmpeg -v error -f lavfi -i sine=frequency=440:sample_rate=48000 -t 6 -ac 2 -c:a libopus -b:a 64k -frame_duration 20 -f ogg $dir/a.ogg") == 0
    or die 'ffmpeg failed';
my @tags;
{
    my $flv = slurp("$dir/v.flv");
    my $at = 13;
    while ($at + 11 <= length $flv) {
        my ($type, $size) = (ord(substr($flv, $at, 1)), unpack('N', "\0" . substr($flv, $at + 1, 3)));
        my $ts = unpack('N', substr($flv, $at + 7, 1) . substr($flv, $at + 4, 3));
        push @tags, [ $ts, 9, substr($flv, $at + 11, $size) ] if $type == 9;
        $at += 11 + $size + 4;
    }
    my $ogg = slurp("$dir/a.ogg");
    my ($packet, @packets) = ('');
    $at = 0;
    while ($at + 27 <= length $ogg && substr($ogg, $at, 4) eq 'OggS') {
        my $n = ord(substr($ogg, $at + 26, 1));
        my @lace = map { ord } split //, substr($ogg, $at + 27, $n);
        my $data = $at + 27 + $n;
        for my $l (@lace) {
            $packet .= substr($ogg, $data, $l);
            $data += $l;
            if ($l < 255) { push @packets, $packet; $packet = '' }
        }
        $at = $data;
    }
    my ($head, undef, @audio) = @packets;
    die 'no OpusHead' unless ($head // '') =~ /^OpusHead/;
    push @tags, [ 0, 8, "\x90Opus$head" ];
    my $ms = 0;
    for (@audio) { push @tags, [ int($ms), 8, "\x91Opus$_" ]; $ms += 20 }
}
@tags = sort { $a->[0] <=> $b->[0] || $b->[2] =~ /^\x90|^\x17\x00/ <=> $a->[2] =~ /^\x90|^\x17\x00/ } @tags;
my $c = Test::Nginx::RTMPClient->new(port => $t->port('RTMP'));
$c->connect_app('live');
is($c->publish('o'), 'NetStream.Publish.Start', 'an Enhanced RTMP publisher of H.264 and Opus');
$c->send_message(csid => $_->[1] == 9 ? 7 : 6, type => $_->[1], msid => $c->{msid}, ts => $_->[0], body => $_->[2]) for @tags;
close $c->sock;
# (All 6 s listed: the last segment is completed when the publisher leaves.)
sub listed { my $d = 0; $d += $_ for (slurp($_[0]) // '') =~ /^#EXTINF:([\d.]+),$/mg; return $d }
ok(wait_for(sub { listed("$hls/o.m3u8") > 5.9 }, 10), sprintf('  its playlist lists fMP4 segments (%.3f s)', listed("$hls/o.m3u8")));
$pl = slurp("$hls/o.m3u8") // '';
($init) = $pl =~ /^#EXT-X-MAP:URI="(o-init\d+\.mp4)"$/m;
@segs = $pl =~ /^(o-\d+\.m4s)$/mg;
system("cat $hls/$init " . join(' ', map { "$hls/$_" } @segs) . " > $dir/o.mp4") == 0 or die;
$p = probe("$dir/o.mp4");
is(streams("$dir/o.mp4"), 'h264 320x180, opus 2ch', '  H.264 and Opus (no transcoding), stereo');
cmp_ok($p->{audio}{frames} // 0, '>=', 250, "  with the audio packets ($p->{audio}{frames})");
is(scalar qx{ffmpeg -v error -i $dir/o.mp4 -f null - 2>&1}, '', '  and ffmpeg decodes them without an error');
SKIP: {
    my ($chromium) = grep { -x } qw(/usr/bin/chromium /usr/bin/chromium-browser);
    skip 'chromium is not installed (scripts/setup.sh deps installs it)', 1 unless $chromium;
    # (A WHIP stream's audio is Opus: hls.js plays it from fMP4 without a transcode.)
    my ($playing, $last, $n) = $t->hlsjs_plays($chromium, 'o', 4);
    ok($playing && ($last->{t} // 0) - $playing->{t} >= 4 && ($last->{fatal} // '?') eq '',
        sprintf('  hls.js in Chromium plays the H.264 + Opus segments (%.1f s, %s)', ($last->{t} // 0) - ($playing ? $playing->{t} : 0), $last->{last} || 'no error'))
        or diag(explain($last));
}

# --- low-latency HLS: parts ------------------------------------------------------------------
my $ll = $t->ffmpeg_publish("$rtmp/ll/lat", 120, gop => 30, size => '640x360');
ok(wait_for(sub { (() = (slurp("$hls/lat.m3u8") // '') =~ /\.m4s$/mg) >= 4 }, 20), 'hls_partial_duration: a low-latency playlist');
$pl = slurp("$hls/lat.m3u8") // '';
like($pl, qr/^#EXT-X-PART-INF:PART-TARGET=0\.250\n#EXT-X-SERVER-CONTROL:PART-HOLD-BACK=1\.750$/m, '  with PART-INF and PART-HOLD-BACK (three parts and a segment)');
my @parts = $pl =~ /^#EXT-X-PART:DURATION=([\d.]+),URI="(lat-\d+\.\d+\.m4s)"(,INDEPENDENT=YES)?$/mg;
my (@pd, @pu, @pi);
while (my ($d, $u, $i) = splice(@parts, 0, 3)) { push @pd, $d; push @pu, $u; push @pi, $i ? 1 : 0 }
ok(@pu >= 8, sprintf('  its parts are listed (%d)', scalar @pu));
my @long = grep { $_ > 0.250 + 0.034 } @pd;
ok(!@long, '  each at most a frame longer than the part target') or diag("@pd");
is(join('', map { $pi[$_] ? 'I' : '' } grep { $pu[$_] =~ /\.0\.m4s$/ } 0 .. $#pu), 'I' x scalar(grep { /\.0\.m4s$/ } @pu), '  a segment\'s first part is INDEPENDENT (its keyframe)');
# A complete segment's parts, after the init segment, decode; they make the segment.
($init) = $pl =~ /^#EXT-X-MAP:URI="(lat-init\d+\.mp4)"$/m;
my ($seg) = $pl =~ /^(lat-\d+)\.m4s$/m;
my @of = sort { ($a =~ /\.(\d+)\.m4s$/)[0] <=> ($b =~ /\.(\d+)\.m4s$/)[0] } map { s{.*/}{}r } glob("$hls/$seg.*.m4s");
system("cat $hls/$init " . join(' ', map { "$hls/$_" } @of) . " > $dir/parts.mp4") == 0 or die;
is(scalar qx{ffmpeg -v error -i $dir/parts.mp4 -f null - 2>&1}, '', "  $seg\'s parts (@{[ scalar @of ]}) decode after the init segment");
is(slurp("$dir/parts.mp4"), slurp("$hls/$init") . slurp("$hls/$seg.m4s"), '  and are the segment, byte for byte');
SKIP: {
    my ($chromium) = grep { -x } qw(/usr/bin/chromium /usr/bin/chromium-browser);
    skip 'chromium is not installed (scripts/setup.sh deps installs it)', 3 unless $chromium;
    my ($playing, $last, $n, $all) = $t->hlsjs_plays($chromium, 'lat', 10);
    ok($playing, "hls.js (low-latency mode) in Chromium plays it ($n reports)") or diag(slurp("$dir/chromium-lat.log"));
    my $advanced = $playing ? $last->{t} - $playing->{t} : 0;
    cmp_ok($advanced, '>=', 10, sprintf('  currentTime advances %.1f s', $advanced));
    my @lat = sort { $a <=> $b } map { $_->{latency} // () } grep { $_->{t} > $playing->{t} + 2 } @$all;
    my $p50 = $lat[$#lat / 2] // 99;
    ok($p50 < 4, sprintf('  %.2f s behind live (hls.latency, median of %d reports; %s)', $p50, scalar @lat, join(' ', @lat)));
    # (No stall in 15 runs here since the playlist waits for the next segment's first
    # part; one stall at the start is let through on a loaded machine, never a fatal error.)
    ok(($last->{errors} // 9) <= 1 && ($last->{fatal} // '?') eq '',
        sprintf('  no fatal error, %d error event(s)%s', $last->{errors} // -1, $last->{last} ? " ($last->{last})" : ''));
}

# --- hls_serve: blocking playlist reload, delta updates ---------------------------------------
sub get {
    my ($path) = @_;
    my $t0 = time;
    my $out = qx{curl -s -D - '$http$path'};
    return ($out =~ /^HTTP\/1\.1 (\d+)/ ? $1 : 0, $out, time - $t0);
}
my ($code, $body) = get('/ll/lat.m3u8');
is($code, 200, 'hls_serve answers the playlist');
like($body, qr/^#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=6\.0,PART-HOLD-BACK=0\.750\r?$/m, '  saying it blocks reloads and skips (six target durations), three parts of hold-back');
like($body, qr/^Content-Type: application\/vnd\.apple\.mpegurl\r$/mi, '  as a playlist');
# The next part: where the playlist is, plus one.
sub next_part {
    my ($text) = @_;
    my ($seq) = $text =~ /^#EXT-X-MEDIA-SEQUENCE:(\d+)/m;
    my @lines = split /\n/, $text;
    my ($segs, $after) = (0, 0);
    for (@lines) { if (/^#EXT-X-PART:/) { $after++ } elsif (/^[^#]/) { $segs++; $after = 0 } }
    return ($seq + $segs, $after);
}
my ($msn, $part) = next_part(slurp("$hls/lat.m3u8") // '');
my ($c2, $b2, $took) = get("/ll/lat.m3u8?_HLS_msn=$msn&_HLS_part=$part");
my ($m2, $p2) = next_part($b2 =~ s/\r//gr);
ok($c2 == 200 && ($m2 > $msn || $m2 == $msn && $p2 > $part), "a request for the next part (msn $msn, part $part) is held until the playlist has it") or diag($b2);
cmp_ok($took, '<', 0.250 + 0.2, sprintf('  answered %.0f ms after it was asked (a part is 250 ms; looked for every 20 ms)', $took * 1000));
($code) = get('/ll/lat.m3u8?_HLS_msn=' . ($msn + 5));
is($code, 400, 'a request more than two segments ahead is answered 400 at once');
($code) = get('/ll/lat.m3u8?_HLS_part=1');
is($code, 400, '  as is _HLS_part without _HLS_msn');
my ($c3, $b3) = get('/ll/lat.m3u8?_HLS_skip=YES');
like($b3, qr/^#EXT-X-VERSION:9\r?\n.*^#EXT-X-SKIP:SKIPPED-SEGMENTS=[1-9]\d*\r?$/ms, 'a delta update (_HLS_skip=YES) skips the oldest segments') or diag($b3);
like(scalar((get("/ll/$init"))[1]), qr/^Content-Type: video\/mp4\r$/mi, 'the init segment comes from the same location (nginx serves the files)');
($code) = get('/ll/none.m3u8?_HLS_msn=3');
is($code, 404, 'a playlist that is not there: 404');

# Renditions of a master playlist (the shipped hls_variant suffixes) report each other.
{
    my @v = map { $t->ffmpeg_publish("$rtmp/live/v$_", 30, gop => 30, size => '160x90', audio => 0) } qw(_hi _lo);
    ok(wait_for(sub { -s "$hls/v.m3u8" && (slurp("$hls/v_lo.m3u8") // '') =~ /\.m4s$/m && (slurp("$hls/v_hi.m3u8") // '') =~ /\.m4s$/m }, 20),
        'two renditions of v (hls_variant _hi and _lo) and its master playlist');
    my ($code, $body) = get('/lv/v_hi.m3u8');
    like($body, qr/^#EXT-X-RENDITION-REPORT:URI="v_lo\.m3u8",LAST-MSN=\d+\r?$/m, '  hls_serve adds a rendition report of v_lo to v_hi (v_mid, not published, is left out)') or diag($body);
    unlike($body, qr/URI="v_(hi|mid)\.m3u8"/, '  and none of itself or of v_mid');
    kill 'TERM', @v;
}

# 50 players through the edge cache: blocking requests for the next part, then the part.
{
    use HTTP::Tiny;
    my $edge = 'http://127.0.0.1:' . $t->port('EDGE');
    my $before = () = (slurp("$dir/run/access.log") // '') =~ m{GET (/ll/lat[^ ]*) HTTP}g;
    my @kids;
    for my $i (1 .. 50) {
        my $pid = fork // die;
        if (!$pid) {
            my $ua = HTTP::Tiny->new(timeout => 6);
            my $r = $ua->get("$edge/lat.m3u8");
            my ($m, $p) = next_part($r->{content} // '');
            my ($n, $end) = (0, time + 8);
            while (time < $end) {
                $r = $ua->get("$edge/lat.m3u8?_HLS_msn=$m&_HLS_part=$p");
                last unless $r->{success};
                my @uris = $r->{content} =~ /URI="(lat-\d+\.\d+\.m4s)"/g;
                last unless @uris && $ua->get("$edge/$uris[-1]")->{success};
                ($m, $p) = next_part($r->{content});
                $n++;
            }
            # (No END blocks in the child: they would stop the test's nginx.)
            POSIX::_exit($n >= 20 ? 0 : 1);
        }
        push @kids, $pid;
    }
    my $ok = 0;
    for (@kids) { waitpid($_, 0); $ok++ if $? == 0 }
    is($ok, 50, '50 players through an nginx proxy_cache each got 20 or more parts in 8 s, as they came');
    my $log = slurp("$dir/run/access.log") // '';
    my @all = $log =~ m{GET (/ll/lat[^ ]*) HTTP}g;
    my @origin = @all[$before .. $#all];
    my $playlists = grep { /_HLS_msn=/ } @origin;
    my $parts = grep { /\.m4s$/ } @origin;
    my $asked = () = $log =~ m{GET /lat\.m3u8\?_HLS_msn=[^ ]* HTTP/1\.1" 200}g;
    my %distinct = map { $_ => 1 } grep { /_HLS_msn=/ } @origin;
    ok($asked >= 50 * 20 && $playlists <= 2 * keys(%distinct) && $parts <= 2 * keys(%distinct),
        sprintf('  the origin was asked about once per part: %d blocking playlist requests (%d distinct) and %d parts, for %d from the players',
            $playlists, scalar keys %distinct, $parts, $asked));
}

my $unknown = Test::Nginx::RTMP->new;
$unknown->write_config("rtmp { server { listen 127.0.0.1:%%PORT_RTMP%%; application x { live on; } } } http { server { listen 127.0.0.1:%%PORT_HTTP%%; location /l/ { hls_serve nosuch; } } }");
my ($ok, $out) = $unknown->test_config;
ok(!$ok && $out =~ /"hls_serve" names application "nosuch", which no rtmp server has/, 'nginx -t refuses hls_serve of an unknown application') or diag($out);
kill 'TERM', $ll;

# hls.js (low-latency mode) through hls_serve: it asks with _HLS_msn/_HLS_part and skips.
SKIP: {
    my ($chromium) = grep { -x } qw(/usr/bin/chromium /usr/bin/chromium-browser);
    skip 'chromium is not installed (scripts/setup.sh deps installs it)', 3 unless $chromium;
    my $srv = $t->ffmpeg_publish("$rtmp/ll/srv", 120, gop => 30, size => '320x180');
    ok(wait_for(sub { (() = (slurp("$hls/srv.m3u8") // '') =~ /\.m4s$/mg) >= 3 }, 20), 'another stream for hls.js');
    my ($playing, $last, $n, $all) = $t->hlsjs_plays($chromium, 'srv', 10, 'base=/ll/');
    my $advanced = $playing ? $last->{t} - $playing->{t} : 0;
    ok($playing && $advanced >= 10, sprintf('hls.js plays it through hls_serve for %.1f s', $advanced)) or diag(slurp("$dir/chromium-srv.log"));
    my $log = slurp("$dir/run/access.log") // '';
    my $blocking = () = $log =~ m{GET /ll/srv\.m3u8\?_HLS_msn=\d+&_HLS_part=\d+[^ ]* HTTP/1\.1" 200 }g;
    my $skips = () = $log =~ m{GET /ll/srv\.m3u8\?[^ ]*_HLS_skip=YES[^ ]* HTTP/1\.1" 200 }g;
    ok($blocking >= 20, "  with blocking playlist reloads ($blocking answered, $skips of them delta updates)");
    my @lat = sort { $a <=> $b } map { $_->{latency} // () } grep { $playing && $_->{t} > $playing->{t} + 2 } @$all;
    my $p50 = $lat[$#lat / 2] // 99;
    ok(($last->{fatal} // '?') eq '' && $p50 < 4, sprintf('  no fatal error (%d error event(s)%s), %.2f s behind live (median hls.latency)',
        $last->{errors} // -1, $last->{last} ? ": $last->{last}" : '', $p50));
    kill 'TERM', $srv;
}

ok($t->stop, 'nginx stops');
is(join("\n", $t->alerts), '', 'no alert, crit or emerg in the error log');
done_testing;
