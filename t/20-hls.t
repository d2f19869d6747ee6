#!/usr/bin/perl
# HLS with real clients: ffmpeg publishes over RTMP; the playlists and segments the module
# writes are checked with ffprobe (keyframe first, audio and video, durations equal to
# EXTINF), served by nginx's own http and played end to end by ffmpeg. Variants, nested
# layout, timestamp naming, encryption, audio-only, video-only, HEVC from an Enhanced
# RTMP publisher, republishing, a killed publisher, cleanup and hostile stream names.
# The publishers run side by side to keep the run short.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Test::Nginx::RTMP qw(wait_for probe decode_errors slurp);
use Test::Nginx::RTMPClient;
use Time::HiRes qw(time sleep);
use File::Path qw(make_path);
use POSIX ();

my $t = Test::Nginx::RTMP->new;
my $dir = $t->dir;
# nginx's workers run as an unprivileged user: they need to write here.
make_path("$dir/www/hls", "$dir/www/keys", { mode => 0777 });
chmod 0777, $dir, "$dir/www", "$dir/www/hls", "$dir/www/keys";
$t->write_config(<<'CONF');
rtmp {
    server {
        listen 127.0.0.1:%%PORT_RTMP%%;
        application hls {
            live on;
            hls on;
            hls_path %%DIR%%/www/hls;
            hls_fragment 2s;
            hls_playlist_length 6s;
        }
        application nested {
            hls on;
            hls_path %%DIR%%/www/nested;
            hls_cleanup off;
            hls_nested on;
            hls_fragment 2s;
            hls_fragment_naming timestamp;
        }
        application var {
            hls on;
            hls_path %%DIR%%/www/var;
            hls_cleanup off;
            hls_fragment 2s;
            hls_variant _hi BANDWIDTH=1200000,RESOLUTION=320x240;
            hls_variant _mid BANDWIDTH=600000;
            hls_variant _lo BANDWIDTH=300000;
        }
        application keys {
            hls on;
            hls_path %%DIR%%/www/secret;
            hls_cleanup off;
            hls_fragment 2s;
            hls_keys on;
            hls_key_path %%DIR%%/www/keys;
            hls_key_url http://127.0.0.1:%%PORT_HTTP%%/keys/;
            hls_fragments_per_key 2;
        }
        application event {
            hls on;
            hls_path %%DIR%%/www/event;
            hls_fragment 2s;
            hls_playlist_length 4s;
            hls_type event;
        }
        application tidy {
            hls on;
            hls_path %%DIR%%/www/tidy;
            hls_fragment 1s;
            hls_max_fragment 2s;
            hls_playlist_length 2s;
        }
    }
}
http {
    access_log off;
    client_body_temp_path %%DIR%%/tmp;
    server {
        listen 127.0.0.1:%%PORT_HTTP%%;
        location / {
            types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; }
            root %%DIR%%/www;
        }
    }
}
CONF
$t->run;
my $rtmp = 'rtmp://127.0.0.1:' . $t->port('RTMP');
my $http = 'http://127.0.0.1:' . $t->port('HTTP');
my $hls = "$dir/www/hls";

sub playlist {
    my ($file) = @_;
    my $text = slurp($file) // return undef;
    my %p = (text => $text, segments => []);
    ($p{sequence}) = $text =~ /^#EXT-X-MEDIA-SEQUENCE:(\d+)$/m;
    ($p{target}) = $text =~ /^#EXT-X-TARGETDURATION:(\d+)$/m;
    while ($text =~ /^#EXTINF:([\d.]+),\n(\S+)$/mg) {
        push @{ $p{segments} }, { duration => $1, uri => $2 };
    }
    return \%p;
}

# What ffprobe measures of a segment: duration, whether the first video frame is a
# keyframe, which streams it has.
sub segment {
    my ($file) = @_;
    my ($duration) = qx{ffprobe -v error -show_entries format=duration -of csv=p=0 $file 2>&1} =~ /([\d.]+)/;
    my ($first_key) = qx{ffprobe -v error -select_streams v:0 -read_intervals %+#1 -show_entries frame=key_frame -of csv=p=0 $file 2>&1} =~ /(\d)/;
    return { duration => $duration, first_key => $first_key, probe => probe($file), errors => decode_errors($file) };
}

# --- start every publisher ------------------------------------------------------------
my $t0 = time;
my $main = $t->ffmpeg_publish("$rtmp/hls/a", 16, gop => 60);
my $nested = $t->ffmpeg_publish("$rtmp/nested/n", 7, gop => 60);
my $radio = $t->ffmpeg_publish("$rtmp/hls/radio", 7, video => 0);
my $silent = $t->ffmpeg_publish("$rtmp/hls/silent", 7, audio => 0, gop => 60);
my $var = $t->ffmpeg_publish(undef, 9, gop => 60, size => '160x120', tee => [map { "$rtmp/var/show$_" } qw(_hi _mid _lo)]);
my $keys = $t->ffmpeg_publish("$rtmp/keys/k", 9, gop => 60);
my $event = $t->ffmpeg_publish("$rtmp/event/e", 7, gop => 60);
my $killed = $t->ffmpeg_publish("$rtmp/hls/killed", 30, gop => 60);

# --- the first playlist appears, every segment is right ---------------------------------
ok(wait_for(sub { -s "$hls/a.m3u8" }, 6), 'the playlist appears');
my $first = time - $t0;
cmp_ok($first, '<', 4.5, sprintf('  %.1f s after the publisher started (2 s fragments)', $first));

my %seen_seq;
my $max_len = 0;
wait_for(sub {
    my $p = playlist("$hls/a.m3u8") or return 0;
    $seen_seq{$p->{sequence}} = 1;
    $max_len = @{ $p->{segments} } if @{ $p->{segments} } > $max_len;
    return !alive_pid($main);
}, 25);
my @seqs = sort { $a <=> $b } keys %seen_seq;
cmp_ok(scalar @seqs, '>=', 3, "the media sequence grows while live (@seqs)");
is($max_len, 3, '  the window holds hls_playlist_length / hls_fragment = 3 segments');

my $p = playlist("$hls/a.m3u8");
like($p->{text}, qr/\A#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:\d+\n#EXT-X-TARGETDURATION:2\n/, 'playlist header');
like($p->{text}, qr/^#EXT-X-PROGRAM-DATE-TIME:\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/m, '  with EXT-X-PROGRAM-DATE-TIME');
unlike($p->{text}, qr/ENDLIST/, '  a live playlist is left without ENDLIST when the publisher ends (as nginx-rtmp-module)');
my $n = 0;
for my $s (@{ $p->{segments} }) {
    my $m = segment("$hls/$s->{uri}");
    my $last = ++$n == @{ $p->{segments} };
    ok($m->{first_key}, "$s->{uri}: starts with a keyframe");
    ok($m->{probe}{video}{frames} && $m->{probe}{audio}{frames}, "  has video and audio ($m->{probe}{video}{frames} video, $m->{probe}{audio}{frames} audio frames)");
    is($m->{errors}, '', '  decodes without errors');
    cmp_ok(abs($m->{duration} - $s->{duration}), '<', 0.1, "  measured $m->{duration} s, EXTINF $s->{duration}")
        unless $last && $s->{duration} < 1.5;    # the tail segment's length is what was left
    cmp_ok($s->{duration}, '<=', $p->{target} + 0.5, '  EXTINF within the target duration');
}
ok(!-e "$hls/a.m3u8.tmp", 'no temporary playlist left behind');

# --- ffmpeg plays it over HTTP, while live ----------------------------------------------
my $r = $t->ffmpeg_publish("$rtmp/hls/r", 6, gop => 60);
ok(wait_for(sub { -s "$hls/r.m3u8" }, 6), 'republish test: first publisher live');
my $play = qx{ffmpeg -hide_banner -v error -i $http/hls/r.m3u8 -t 3 -f null - 2>&1; echo "exit \$?"};
like($play, qr/\Aexit 0\n\z/, 'ffmpeg plays the live HLS stream from nginx\'s http');

# --- nested, timestamp naming -------------------------------------------------------------
ok(wait_for(sub { !alive_pid($nested) }, 15), 'nested publisher done');
$p = playlist("$dir/www/nested/n/index.m3u8");
ok($p && @{ $p->{segments} } >= 3, 'hls_nested: n/index.m3u8');
like(join(' ', map { $_->{uri} } @{ $p->{segments} }), qr/^\d+\.ts \d+\.ts/, '  segments named by timestamp');
ok(-f "$dir/www/nested/n/$p->{segments}[1]{uri}", '  in the stream\'s directory');
my @ids = map { /^(\d+)\.ts$/ ? $1 : -1 } map { $_->{uri} } @{ $p->{segments} };
is($ids[1] - $ids[0], int($p->{segments}[0]{duration} * 90000 + 0.5),
    '  names are 90 kHz timestamps, one EXTINF apart');

# --- audio only, video only -----------------------------------------------------------------
ok(wait_for(sub { !alive_pid($radio) && !alive_pid($silent) }, 15), 'audio-only and video-only publishers done');
$p = playlist("$hls/radio.m3u8");
ok($p && @{ $p->{segments} } >= 3, 'audio only: segments cut by duration');
my $m = segment("$hls/$p->{segments}[1]{uri}");
ok($m->{probe}{audio}{frames} && !$m->{probe}{video}, "  audio only ($m->{probe}{audio}{frames} frames)");
cmp_ok(abs($m->{duration} - $p->{segments}[1]{duration}), '<', 0.1, "  measured $m->{duration} s, EXTINF $p->{segments}[1]{duration}");
$p = playlist("$hls/silent.m3u8");
$m = segment("$hls/$p->{segments}[1]{uri}");
ok($m->{probe}{video}{frames} && !$m->{probe}{audio} && $m->{first_key}, 'video only: keyframe first, no audio stream');

# --- variants ---------------------------------------------------------------------------------
ok(wait_for(sub { !alive_pid($var) }, 15), 'three renditions published');
my $master = slurp("$dir/www/var/show.m3u8") // '';
is($master, "#EXTM3U\n#EXT-X-VERSION:3\n"
    . "#EXT-X-STREAM-INF:BANDWIDTH=1200000,RESOLUTION=320x240\nshow_hi.m3u8\n"
    . "#EXT-X-STREAM-INF:BANDWIDTH=600000\nshow_mid.m3u8\n"
    . "#EXT-X-STREAM-INF:BANDWIDTH=300000\nshow_lo.m3u8\n", 'hls_variant: master playlist');
my $vplay = qx{ffmpeg -hide_banner -v error -i $http/var/show.m3u8 -t 3 -map 0:v:0 -f null - 2>&1; echo "exit \$?"};
like($vplay, qr/\Aexit 0\n\z/, '  ffmpeg plays the master playlist');

# --- encryption -------------------------------------------------------------------------------
ok(wait_for(sub { !alive_pid($keys) }, 15), 'encrypted stream published');
$p = playlist("$dir/www/secret/k.m3u8");
my @keylines = $p->{text} =~ /^#EXT-X-KEY:METHOD=AES-128,URI="([^"]+)",IV=0x([0-9A-F]{32})$/mg;
ok(@keylines >= 4, 'hls_keys: EXT-X-KEY lines (' . @keylines / 2 . ' keys for ' . @{ $p->{segments} } . ' segments, 2 per key)');
like($keylines[0], qr{^\Q$http\E/keys/k-\d+\.key$}, '  key URI from hls_key_url');
is(-s "$dir/www/keys/k-0.key", 16, '  16-byte key in hls_key_path');
my $clear = qx{ffprobe -v error -show_entries format=format_name -of csv=p=0 $dir/www/secret/$p->{segments}[0]{uri} 2>&1};
unlike($clear, qr/mpegts/, '  segments are not readable without the key');
# (A live playlist has no end: players follow it until told to stop.)
my $dec = qx{ffmpeg -hide_banner -v error -allowed_extensions ALL -live_start_index 0 -i $http/secret/k.m3u8 -t 5 -c copy -y $dir/decrypted.ts 2>&1; echo "exit \$?"};
like($dec, qr/\Aexit 0\n\z/, '  ffmpeg fetches the keys from hls_key_url and decrypts the segments');
my $kp = probe("$dir/decrypted.ts");
ok($kp->{video}{frames} >= 140 && $kp->{audio}{frames}, "  into 5 s of audio and video ($kp->{video}{frames} video frames)");
is(decode_errors("$dir/decrypted.ts"), '', '  that decode without errors');

# --- event playlists end ----------------------------------------------------------------------
ok(wait_for(sub { !alive_pid($event) && (slurp("$dir/www/event/e.m3u8") // '') =~ /ENDLIST/ }, 15), 'hls_type event: ENDLIST when the publisher ends');
$p = playlist("$dir/www/event/e.m3u8");
is($p->{sequence}, 0, '  keeps every segment from the start (beyond hls_playlist_length)');
like($p->{text}, qr/^#EXT-X-PLAYLIST-TYPE:EVENT$/m, '  PLAYLIST-TYPE:EVENT');

# --- a republished stream continues (hls_continuous) -------------------------------------------
ok(wait_for(sub { !alive_pid($r) }, 15), 'first publisher of r done');
my $before = playlist("$hls/r.m3u8");
my $last_before = $before->{segments}[-1]{uri};
$r = $t->ffmpeg_publish("$rtmp/hls/r", 6, gop => 60);
ok(wait_for(sub { my $q = playlist("$hls/r.m3u8"); $q && $q->{text} =~ /DISCONTINUITY/ }, 8), 'republished: EXT-X-DISCONTINUITY');
my $after = playlist("$hls/r.m3u8");
my ($nb) = $last_before =~ /(\d+)\.ts/;
my @after_ids = map { /(\d+)\.ts/ } map { $_->{uri} } @{ $after->{segments} };
ok((grep { $_ == $nb + 1 } @after_ids), "  numbering continues after r-$nb.ts (@after_ids)");
ok($after->{sequence} >= $before->{sequence}, '  media sequence does not go back');

# --- a publisher killed mid-segment -------------------------------------------------------------
sleep 1.3;
kill 'KILL', $killed;
ok(wait_for(sub { $t->error_log =~ /unpublish: "hls\/killed"/ }, 5), 'a publisher killed mid-segment is gone');
$p = playlist("$hls/killed.m3u8");
ok($p && @{ $p->{segments} }, 'its playlist is valid');
is(join('', map { decode_errors("$hls/$_->{uri}") } @{ $p->{segments} }), '', '  and every listed segment decodes');

# --- stream names cannot escape hls_path ---------------------------------------------------------
for my $bad ('../escape', '..', 'a/../../escape2', "x\x01y") {
    my $c = Test::Nginx::RTMPClient->new(port => $t->port('RTMP'));
    $c->connect_app('hls');
    is($c->publish($bad), 'NetStream.Publish.BadName', "publish \"" . ($bad =~ s/[^[:print:]]/?/gr) . "\" is refused");
}
ok(!-e "$dir/www/escape.m3u8" && !-e "$dir/escape2.m3u8" && !-e "$dir/www/escape-0.ts", '  nothing written outside hls_path');

# --- HEVC from an Enhanced RTMP publisher ------------------------------------------------------
# x265 encodes 4 s (keyframe each second, no B-frames); the access units go out as Enhanced
# RTMP hvc1 CodedFramesX, VPS/SPS/PPS only in the hvcC record (the muxer must put them in
# front of every keyframe).
my $hevc = "$dir/src.hevc";
system("ffmpeg -hide_banner -v error -f lavfi -i testsrc2=size=320x240:rate=25 -t 4 -c:v libx265 -preset ultrafast "
    . "-x265-params keyint=25:min-keyint=25:bframes=0:repeat-headers=1:log-level=error -f hevc -y $hevc") == 0
    or die 'x265 failed';
my $es = slurp($hevc);
my @nals = grep { length } split /\x00\x00\x00?\x01/, $es;
my (%ps, @aus);
for my $nal (@nals) {
    my $type = (ord($nal) >> 1) & 0x3f;
    if ($type >= 32 && $type <= 34) { $ps{$type} = $nal; next }
    next if $type >= 35;    # AUD, SEI: not needed
    # A slice with first_slice_segment_in_pic_flag starts a picture.
    push @aus, { key => 0, data => '' } if (ord(substr($nal, 2, 1)) & 0x80);
    $aus[-1]{key} ||= $type >= 16 && $type <= 23;
    $aus[-1]{data} .= pack('N', length $nal) . $nal;
}
my $hvcc = "\x01" . ("\x00" x 20) . "\xff" . "\x03"
    . join('', map { chr(0x80 | $_) . pack('n', 1) . pack('n', length $ps{$_}) . $ps{$_} } 32, 33, 34);
my $hp = Test::Nginx::RTMPClient->new(port => $t->port('RTMP'));
$hp->connect_app('hls', fourCcList => 'hvc1');
is($hp->publish('hevc'), 'NetStream.Publish.Start', sprintf('an Enhanced RTMP publisher sends HEVC (%d pictures)', scalar @aus));
$hp->send_message(csid => 7, type => 9, msid => $hp->{msid}, ts => 0, body => "\x90hvc1" . $hvcc);
my $ts = 0;
for my $au (@aus) {
    $hp->send_message(csid => 7, type => 9, msid => $hp->{msid}, ts => $ts, body => ($au->{key} ? "\x93" : "\xa3") . 'hvc1' . $au->{data});
    $ts += 40;
}
close $hp->sock;
ok(wait_for(sub { $t->error_log =~ /unpublish: "hls\/hevc"/ }, 5), '  and leaves');
$p = playlist("$hls/hevc.m3u8");
is(scalar @{ $p->{segments} }, 2, '  two 2 s segments');
for my $s (@{ $p->{segments} }) {
    my $m = segment("$hls/$s->{uri}");
    is($m->{probe}{video}{codec}, 'hevc', "  $s->{uri}: HEVC");
    ok($m->{first_key}, '    starting with a keyframe');
    is($m->{errors}, '', "    $m->{probe}{video}{frames} frames decode without errors");
}

# --- cleanup: old segments go, and an ended stream's files go --------------------------------------
my $tidy = $t->ffmpeg_publish("$rtmp/tidy/t", 8, gop => 30);
ok(wait_for(sub { !alive_pid($tidy) }, 15), 'tidy: publisher done');
my @ts = glob("$dir/www/tidy/*.ts");
cmp_ok(scalar @ts, '<=', 7, '  segments that left the playlist are removed after a grace period (' . @ts . ' left of 8)');
ok(wait_for(sub { !glob("$dir/www/tidy/*") }, 12), '  after the stream ends, its playlist and segments are removed (hls_cleanup)');

ok($t->stop, 'nginx stops');
is(join("\n", $t->alerts), '', 'no alert, crit or emerg in the error log');

# Whether a spawned publisher still runs (reaping it once it ended).
sub alive_pid { waitpid($_[0], POSIX::WNOHANG()) == 0 }

done_testing;
