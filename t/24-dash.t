#!/usr/bin/perl
# MPEG-DASH with nginx-rtmp-module's directives (dash, dash_path, dash_fragment,
# dash_playlist_length, dash_nested, dash_cleanup), in the shipped configuration with its
# commented DASH lines turned on. An ffmpeg publisher (H.264 + AAC) gets a live MPD with a
# video and an audio adaptation set, init segments and fragments that ffmpeg decodes,
# served with their MIME types and cache headers; ffmpeg plays the live MPD over HTTP and
# dash.js in headless Chromium plays it (player.html?format=dash); old fragments are
# swept; the end of the stream lists its last fragment; dash_nested writes
# NAME/index.mpd. nginx -t refuses dash without dash_path, and bad values.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Test::Nginx::RTMP qw(wait_for slurp probe);
use Time::HiRes qw(time sleep);

my $t = Test::Nginx::RTMP->new;
$t->write_default_config(edit => sub {
    s{# dash on;}{dash on;} or die 'no "# dash on;" in nginx.conf';
    s{# dash_path run/dash;}{dash_path run/dash;} or die 'no dash_path';
    # (1 s fragments, 4 s listed: fragments older than 8 s are swept in this test's time.)
    s{# dash_fragment 2s;}{dash_fragment 1s;} or die 'no dash_fragment';
    s{# dash_playlist_length 10s;}{dash_playlist_length 4s;} or die 'no dash_playlist_length';
    s{(\n\s*application abr \{)}{\n        application nest {\n            live on;\n            dash on;\n            dash_path run/dash;\n            dash_nested on;\n            dash_playlist_length 4s;\n        }\n$1} or die 'no application abr';
});
$t->run;
my $dir = $t->dir;
my $dash = "$dir/run/dash";
my $http = 'http://127.0.0.1:' . $t->port('HTTP');
my $rtmp = 'rtmp://127.0.0.1:' . $t->port('RTMP');

# --- nginx -t ----------------------------------------------------------------------------------
for ([ 'dash on;', qr/"dash" is on in application "x" but "dash_path" is not set/ ],
     [ 'dash on; dash_path %%DIR%%/d; dash_fragment 0;', qr/invalid value "0" in "dash_fragment" directive/ ],
     [ 'dash maybe;', qr/invalid value "maybe" in "dash" directive/ ]) {
    my ($lines, $want) = @$_;
    my $c = Test::Nginx::RTMP->new;
    $c->write_config("rtmp { server { listen 127.0.0.1:%%PORT_RTMP%%; application x { live on; $lines } } }");
    my ($ok, $out) = $c->test_config;
    ok(!$ok && $out =~ $want, "nginx -t refuses \"$lines\"") or diag($out);
}

# --- the live MPD --------------------------------------------------------------------------------
my $started = time;
my $pub = $t->ffmpeg_publish("$rtmp/live/d", 60, gop => 30, size => '640x360');
sub video_set { my ($m) = @_; return $m =~ m{(<AdaptationSet[^>]*contentType="video".*?</AdaptationSet>)}s ? $1 : '' }
sub audio_set { my ($m) = @_; return $m =~ m{(<AdaptationSet[^>]*contentType="audio".*?</AdaptationSet>)}s ? $1 : '' }
ok(wait_for(sub { (() = video_set(slurp("$dash/d.mpd") // '') =~ /<S /g) >= 3 }, 20), 'the MPD lists three video fragments');
my $mpd = slurp("$dash/d.mpd") // '';
like($mpd, qr/<MPD [^>]*type="dynamic"[^>]*profiles="urn:mpeg:dash:profile:isoff-live:2011"/, '  a live (dynamic) MPD, live profile');
my ($video, $audio) = (video_set($mpd), audio_set($mpd));
like($video, qr/codecs="avc1\.[0-9a-f]{6}"[^>]* width="640" height="360"/, '  video: H.264 (its profile and level), 640x360') or diag($mpd);
like($audio, qr/codecs="mp4a\.40\.2"[^>]* audioSamplingRate="44100"/, '  audio: AAC-LC, 44.1 kHz') or diag($mpd);
my ($vinit, $vmedia) = $video =~ /initialization="([^"]+)" media="([^"]+)"/;
my ($ainit, $amedia) = $audio =~ /initialization="([^"]+)" media="([^"]+)"/;
like($vmedia // '', qr/^d-\d{13}-\$Time\$\.m4v$/, "  fragment names carry the publication's start ($vmedia)");

# Each track's init segment and fragments decode (as dash.js appends them).
sub fragments {
    my ($set, $media) = @_;
    return map { (my $f = $media) =~ s/\$Time\$/$_/; $f } $set =~ /<S t="(\d+)"/g;
}
my @vf = fragments($video, $vmedia);
my @af = fragments($audio, $amedia);
ok(@vf >= 3 && !grep({ !-s "$dash/$_" } $vinit, @vf), '  the video init segment and listed fragments exist');
ok(@af >= 3 && !grep({ !-s "$dash/$_" } $ainit, @af), '  the audio init segment and listed fragments exist');
system("cat $dash/$vinit " . join(' ', map { "$dash/$_" } @vf) . " > $dir/v.mp4") == 0 or die;
system("cat $dash/$ainit " . join(' ', map { "$dash/$_" } @af) . " > $dir/a.mp4") == 0 or die;
my $listed = 0;
$listed += $_ for $video =~ /<S t="\d+" d="(\d+)"/g;
$listed /= 90_000;
my $p = probe("$dir/v.mp4");
cmp_ok($p->{video}{frames} // 0, '>=', int($listed * 30) - 2, sprintf('  every video frame is there (%d for %.2f s listed)', $p->{video}{frames} // 0, $listed));
is(scalar qx{ffmpeg -v error -i $dir/v.mp4 -f null - 2>&1}, '', '  and the video decodes without an error');
is(scalar qx{ffmpeg -v error -i $dir/a.mp4 -f null - 2>&1}, '', '  the audio too');
my ($aframes) = qx{ffprobe -v error -count_frames -select_streams a -show_entries stream=nb_read_frames -of csv=p=0 $dir/a.mp4} =~ /(\d+)/;
cmp_ok($aframes // 0, '>', 30, "  ($aframes AAC frames)");

sub head {
    my ($path) = @_;
    return scalar qx{curl -s -o /dev/null -D - '$http$path'};
}
my $h = head('/dash/d.mpd');
like($h, qr{^Content-Type: application/dash\+xml\r$}mi, 'the MPD is served as application/dash+xml');
like($h, qr{^Cache-Control: public, max-age=1\r$}mi, '  cached for a second');
$h = head("/dash/$vf[-1]");
like($h, qr{^Content-Type: video/mp4\r$}mi, 'a video fragment as video/mp4');
like($h, qr{^Cache-Control: public, max-age=31536000, immutable\r$}mi, '  immutable (its name is never reused)');
like(head("/dash/$af[-1]"), qr{^Content-Type: audio/mp4\r$}mi, 'an audio fragment as audio/mp4');

# ffmpeg plays the live MPD over HTTP.
my $out = qx{timeout 30 ffmpeg -v error -i $http/dash/d.mpd -t 3 -f null - 2>&1; echo "rc=\$?"};
like($out, qr/\Arc=0\s*\z/, 'ffmpeg plays the live MPD over HTTP for 3 s without an error') or diag($out);

SKIP: {
    my ($chromium) = grep { -x } qw(/usr/bin/chromium /usr/bin/chromium-browser);
    skip 'chromium is not installed (scripts/setup.sh deps installs it)', 3 unless $chromium;
    skip 'dash.js is not installed (scripts/setup.sh web)', 3 unless -s "$FindBin::Bin/../nginx-conf/www/vendor/dash.mediaplayer.min.js";
    my ($playing, $last, $n) = $t->hlsjs_plays($chromium, 'd', 10, 'format=dash');
    ok($playing, "dash.js in Chromium plays the live MPD ($n reports)") or diag(slurp("$dir/chromium-d.log"));
    cmp_ok(($last->{t} // 0) - ($playing ? $playing->{t} : 0), '>=', 10, sprintf('  for 10 s (currentTime %.1f to %.1f)', $playing ? $playing->{t} : 0, $last->{t} // 0));
    is($last->{fatal} // 'none', '', '  without an error') or diag(explain($last));
}

# --- cleanup, the end, nested ----------------------------------------------------------------
my $first = "$dash/$vf[0]";
ok(wait_for(sub { !-e $first }, 20), 'an old fragment is swept (dash_cleanup, on by default)');
ok(-s "$dash/$vinit", '  while the init segment stays');

my $nest = $t->ffmpeg_publish("$rtmp/nest/n", 7, gop => 30);
ok(wait_for(sub { !kill(0, $nest) || waitpid($nest, 1) }, 20), 'a 7 s stream to the nested application ends');
ok(wait_for(sub { (slurp("$dash/n/index.mpd") // '') =~ /<S / }, 5), 'dash_nested: n/index.mpd');
my $n = slurp("$dash/n/index.mpd") // '';
my $total = 0;
$total += $_ for video_set($n) =~ /<S t="\d+" d="(\d+)"/g;
cmp_ok($total / 90_000, '>', 6.5, sprintf('  the end of the stream lists its last fragment (%.2f s of 7 listed)', $total / 90_000)) or diag($n);
my ($ninit) = video_set($n) =~ /initialization="([^"\/]+)"/;
ok($ninit && -s "$dash/n/$ninit", "  its init segment in n/ ($ninit)");

unlike($t->error_log, qr/\[(alert|emerg|crit)\]|dash: .*failed/, 'no alert, no failed write in the error log');
kill 'TERM', $pub;
done_testing;
