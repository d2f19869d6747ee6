#!/usr/bin/perl
# The shipped configs serve HLS the way browsers and CDNs need it: the default config
# (nginx-conf/nginx.conf) with its MIME types, Cache-Control and CORS, its player page
# played by hls.js in headless Chromium for more than 10 s without an error; and the
# production example (TLS, HTTP/2, limit_req) passes nginx -t and limits a flood.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Test::Nginx::RTMP qw(wait_for slurp);
use Time::HiRes qw(time sleep);
use File::Path qw(make_path);

my $t = Test::Nginx::RTMP->new;
$t->write_default_config;
$t->run;
my $dir = $t->dir;
my $http = 'http://127.0.0.1:' . $t->port('HTTP');

my $pub = $t->ffmpeg_publish('rtmp://127.0.0.1:' . $t->port('RTMP') . '/live/web', 60, gop => 60);    # (long enough for a slow Chromium start; stop ends it)
ok(wait_for(sub { -s "$dir/run/hls/web.m3u8" }, 8), 'the default config writes HLS under run/hls');

sub head {
    my ($url, @opt) = @_;
    return scalar qx{curl -s -o /dev/null -D - @opt '$url'};
}

my $h = head("$http/hls/web.m3u8");
like($h, qr{^HTTP/1\.1 200}, 'playlist served');
like($h, qr{^Content-Type: application/vnd\.apple\.mpegurl\r$}mi, '  as application/vnd.apple.mpegurl');
like($h, qr{^Cache-Control: public, max-age=1\r$}mi, '  cached for a second at most');
like($h, qr{^Access-Control-Allow-Origin: \*\r$}mi, '  with CORS');
my ($seg) = slurp("$dir/run/hls/web.m3u8") =~ /^(web-\d+\.ts)$/m;
$h = head("$http/hls/$seg");
like($h, qr{^Content-Type: video/mp2t\r$}mi, "segment $seg served as video/mp2t");
like($h, qr{^Cache-Control: public, max-age=31536000, immutable\r$}mi, '  immutable (names are never reused)');
$h = head("$http/hls/web.m3u8", '-X OPTIONS', '-H "Origin: http://example.com"', '-H "Access-Control-Request-Method: GET"');
like($h, qr{^HTTP/1\.1 204}, 'CORS preflight answered');
like($h, qr{^Access-Control-Allow-Methods: GET, HEAD, OPTIONS\r$}mi, '  allowing GET, HEAD and OPTIONS');
$h = head("$http/hls/nosuch.m3u8");
like($h, qr{^HTTP/1\.1 404}, 'an unknown stream is a 404');
unlike($h, qr{^Cache-Control: public}mi, '  that is not cached');
like(head("$http/vendor/hls.min.js"), qr{^HTTP/1\.1 200}, 'hls.js is served by nginx itself');

# --- hls.js in headless Chromium ----------------------------------------------------------
# Plays player.html?stream=$stream in headless Chromium until currentTime has advanced
# $secs seconds (or 45 s pass); returns the page's reports, the last one last. The page
# reports every second: /report?stream=S&t=CURRENT_TIME&errors=N&fatal=...&last=...
sub chromium_plays {
    my ($chromium, $stream, $secs) = @_;
    my ($playing, $last, $n) = $t->hlsjs_plays($chromium, $stream, $secs);
    ok($playing, sprintf("hls.js in Chromium plays $stream (%d reports)", $n))
        or diag(slurp("$dir/chromium-$stream.log"));
    my $advanced = $playing ? $last->{t} - $playing->{t} : 0;
    cmp_ok($advanced, '>=', $secs, sprintf('  currentTime advances %.1f s (to %.1f)', $advanced, $last->{t} // 0));
    is(($last->{errors} // '?') . ($last->{last} // ''), '0', '  with no error events');
}

SKIP: {
    my ($chromium) = grep { -x } qw(/usr/bin/chromium /usr/bin/chromium-browser);
    skip 'chromium is not installed (scripts/setup.sh deps installs it)', 7 unless $chromium;
    chromium_plays($chromium, 'web', 10);

    # Three renditions under the default config's hls_variant suffixes: the master
    # playlist show.m3u8 plays too.
    $t->ffmpeg_publish(undef, 40, gop => 60, size => '320x180',
        tee => [map { 'rtmp://127.0.0.1:' . $t->port('RTMP') . "/live/show$_" } qw(_hi _mid _lo)]);
    ok(wait_for(sub { -s "$dir/run/hls/show.m3u8" }, 10), 'hls_variant: the master playlist appears');
    # A viewer arrives once the renditions list three segments (where players start, three
    # target durations from the live edge): what is checked here is the master playlist,
    # not how hls.js copes with joining a stream in its first seconds.
    wait_for(sub { !grep { (() = (slurp("$dir/run/hls/show$_.m3u8") // '') =~ /\.ts$/mg) < 3 } qw(_hi _mid _lo) }, 15);
    chromium_plays($chromium, 'show', 5);
}
ok($t->stop, 'nginx stops');
is(join("\n", $t->alerts), '', 'no alert, crit or emerg in the error log');

# --- the production example ----------------------------------------------------------------
my $p = Test::Nginx::RTMP->new;
my $pd = $p->dir;
my $conf = slurp(Test::Nginx::RTMP::root() . '/nginx-conf/nginx-production.conf');
system("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=stream.example.com "
    . "-keyout $pd/privkey.pem -out $pd/fullchain.pem >/dev/null 2>&1") == 0 or die 'openssl failed';
make_path("$pd/www/hls", { mode => 0777 });
chmod 0755, $pd;
chmod 0777, "$pd/www/hls";
$conf =~ s{load_module \S+;}{load_module %%MODULE%%;};
$conf =~ s{^user .*\n}{}m;
$conf =~ s{/var/log/nginx/}{%%DIR%%/}g;
$conf =~ s{pid /run/nginx.pid}{pid %%DIR%%/nginx.pid};
$conf =~ s{/etc/letsencrypt/live/stream.example.com/}{%%DIR%%/}g;
$conf =~ s{/var/www/html}{%%DIR%%/www}g;
system('cp', '-r', Test::Nginx::RTMP::root() . '/nginx-conf/www', "$pd/pages") == 0 or die 'cannot copy the pages';
system('chmod', '-R', 'a+rX', "$pd/pages") == 0 or die 'chmod failed';
$conf =~ s{/usr/share/ngx-rtmp-rs/www}{%%DIR%%/pages}g;
$conf =~ s{listen 1935;}{listen 127.0.0.1:%%PORT_RTMP%%;};
$conf =~ s{listen 127\.0\.0\.1:8888;}{listen 127.0.0.1:%%PORT_HEALTH%%;};
$conf =~ s{listen 80;}{listen 127.0.0.1:%%PORT_PLAIN%%;};
$conf =~ s{listen \[::\]:80;}{listen [::1]:%%PORT_PLAIN%%;};
$conf =~ s{listen 443 ssl http2;}{listen 127.0.0.1:%%PORT_TLS%% ssl http2;};
$conf =~ s{listen \[::\]:443 ssl http2;}{listen [::1]:%%PORT_TLS%% ssl http2;};
$conf =~ s{worker_connections 16384}{worker_connections 1024};
$conf =~ s{whip_udp_listen 8889;}{whip_udp_listen 127.0.0.1:%%PORT_WHIPUDP%%;};
$p->write_config($conf, raw => 1);
my ($ok, $out) = $p->test_config;
ok($ok, 'nginx-conf/nginx-production.conf passes nginx -t (with a certificate in place)') or diag($out);
$p->run;
my $https = 'https://127.0.0.1:' . $p->port('TLS');
$p->write_file('www/hls/x.m3u8', "#EXTM3U\n");
like(head("$https/hls/x.m3u8", '-k', '--http2'), qr{^HTTP/2 200}, '  HLS over HTTPS with HTTP/2');
# (One curl, one connection: 100 requests within a fraction of a second. A curl per
# request took 2.2 s here, slow enough for 20 r/s and a burst of 60 to let every one in.)
my @codes = split /\n/, scalar qx{curl -sk -o /dev/null -w '%{http_code}\n' @{[ join ' ', ("$https/hls/x.m3u8") x 100 ]}};
my $limited = grep { $_ eq '429' } @codes;
ok($limited > 0 && $limited < 100, "  limit_req answers a flood with 429 ($limited of 100 requests)");
like(scalar qx{curl -sk -o /dev/null -D - -X OPTIONS $https/key/whip}, qr{^HTTP/2 204.*^accept-post: application/sdp}ms, '  the WHIP endpoint answers over HTTPS');
like(head("$https/publish.html", '-k'), qr{^HTTP/\S+ 200}, '  and serves the publish page');
is(scalar qx{curl -s http://127.0.0.1:@{[ $p->port('HEALTH') ]}/healthz}, "ok\n", '  its health check answers on loopback (the Docker image asks it)');
ok($p->stop, '  and stops');

done_testing;
