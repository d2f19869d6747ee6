#!/usr/bin/perl
# The dashboard (nginx-conf/www/dashboard.html) in headless Chromium, driven over the
# DevTools protocol (--remote-debugging-pipe): one ffmpeg publisher and one ffmpeg player;
# after 10 s its uPlot charts have drawn the bit rates (the page's data-points, green and
# blue pixels on the chart's canvas and in a screenshot), its client list shows the
# publisher and the player; clicking "drop" on the player drops it (gone from /stat),
# "start recording" / "stop recording" write a playable file (record manual); a /control
# that is denied or missing is said so on the page.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP;
use Test::More;
use Test::Nginx::RTMP qw(wait_for slurp probe);
use Time::HiRes qw(time sleep);
use File::Path qw(make_path);
use IO::Select;
use MIME::Base64 qw(decode_base64);
use POSIX ();
use Fcntl qw(F_GETFD F_SETFD FD_CLOEXEC);

my ($chromium) = grep { -x } qw(/usr/bin/chromium /usr/bin/chromium-browser);
plan skip_all => 'chromium is not installed (scripts/setup.sh deps installs it)' unless $chromium;
my $started = time;

my $t = Test::Nginx::RTMP->new;
my $dir = $t->dir;
chmod 0755, $dir;
make_path("$dir/hls", "$dir/rec", { mode => 0777 });
chmod 0777, "$dir/hls", "$dir/rec";
system('cp', '-r', $t->root . '/nginx-conf/www', "$dir/www") == 0 or die;
system('chmod', '-R', 'a+rX', "$dir/www");
ok(-s "$dir/www/vendor/uPlot.iife.min.js" && -s "$dir/www/vendor/hls.min.js",
    'nginx-conf/www/vendor has uPlot and hls.js (scripts/setup.sh build fetches them)');

$t->write_config(<<'CONF');
rtmp {
    server {
        listen 127.0.0.1:%%PORT_RTMP%%;
        application live {
            live on;
            hls on;
            hls_path %%DIR%%/hls;
            hls_fragment 1s;
            hls_playlist_length 6s;
            record manual;
            record_path %%DIR%%/rec;
            record_suffix .flv;
        }
    }
}
http {
    include /etc/nginx/mime.types;
    access_log %%DIR%%/access.log;
    server {
        listen 127.0.0.1:%%PORT_HTTP%%;
        location = /stat { rtmp_stat all; }
        location /control { rtmp_control all; }
        location /control-denied { deny all; }
        location /hls/ { alias %%DIR%%/hls/; rtmp_hls_viewers on; }
        location / { root %%DIR%%/www; }
    }
}
CONF
$t->run;
my $url = 'rtmp://127.0.0.1:' . $t->port('RTMP');
my $http = 'http://127.0.0.1:' . $t->port('HTTP');
sub get { my ($path) = @_; return scalar qx{curl -s '$http$path'} }
sub stream_stat {
    my $st = eval { decode_json(get('/stat?format=json')) } or return undef;
    my ($s) = grep { $_->{name} eq 's' } map { @{ $_->{live}{streams} // [] } } @{ $st->{servers}[0]{applications} };
    return $s;
}

$t->ffmpeg_publish("$url/live/s", 50, gop => 30, size => '640x360');
ok(wait_for(sub { $t->error_log =~ m{publish: "live/s"} }, 10), 'ffmpeg publishes live/s');
my $player = $t->spawn("$dir/play.log", 'ffmpeg', '-hide_banner', '-loglevel', 'error', '-i', "$url/live/s", '-t', 45, '-f', 'null', '-');
ok(wait_for(sub { my $s = stream_stat(); $s && $s->{nclients} == 2 }, 10), 'and an ffmpeg player plays it');

# --- Chromium over the DevTools protocol: JSON messages, NUL-terminated, on fds 3 and 4 ----
pipe(my $to_r, my $to_w) or die;
pipe(my $from_r, my $from_w) or die;
my $cpid = fork // die "fork: $!";
if ($cpid == 0) {
    POSIX::setsid();
    for ([$to_r, 3], [$from_w, 4]) {
        my ($fh, $fd) = @$_;
        POSIX::dup2(fileno($fh), $fd) == $fd or die "dup2: $!" unless fileno($fh) == $fd;
    }
    for my $fd (3, 4) {
        open my $h, '+<&=', $fd or die;
        fcntl($h, F_SETFD, fcntl($h, F_GETFD, 0) & ~FD_CLOEXEC);
    }
    open STDIN, '<', '/dev/null';
    open STDOUT, '>', "$dir/chromium.log";
    open STDERR, '>&', \*STDOUT;
    exec $chromium, '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--mute-audio',
        '--autoplay-policy=no-user-gesture-required', '--no-first-run', '--hide-scrollbars', '--window-size=1280,1600',
        "--user-data-dir=$dir/chromium", '--remote-debugging-pipe', 'about:blank'
        or POSIX::_exit(127);
}
close $to_r;
close $from_w;
$to_w->autoflush(1);
END { kill 'TERM', -$cpid if $cpid; }

my ($next_id, $inbuf, $session, @exceptions) = (0, '', undef);
my $sel = IO::Select->new($from_r);
# Sends a command (to the page's session once attached) and returns its result.
sub cdp {
    my ($method, $params, $timeout) = @_;
    my $id = ++$next_id;
    my $msg = { id => $id, method => $method, params => $params // {} };
    $msg->{sessionId} = $session if $session && $method !~ /^Target\./;
    print $to_w encode_json($msg), "\0";
    my $deadline = time + ($timeout // 20);
    while (time < $deadline) {
        while ($inbuf =~ s/^([^\0]*)\0//) {
            my $m = decode_json($1);
            push @exceptions, $m->{params}{exceptionDetails}{exception}{description} // $m->{params}{exceptionDetails}{text}
                if ($m->{method} // '') eq 'Runtime.exceptionThrown';
            next unless ($m->{id} // 0) == $id;
            die "$method: $m->{error}{message}\n" if $m->{error};
            return $m->{result};
        }
        $sel->can_read($deadline - time) or last;
        sysread($from_r, $inbuf, 1 << 20, length $inbuf) or die "Chromium closed the DevTools pipe\n";
    }
    die "$method: no answer\n";
}
# Runs JavaScript in the page; its value (promises awaited).
sub js {
    my ($expr) = @_;
    my $r = cdp('Runtime.evaluate', { expression => $expr, returnByValue => JSON::PP::true, awaitPromise => JSON::PP::true });
    die "js: $r->{exceptionDetails}{exception}{description}\n" if $r->{exceptionDetails};
    return $r->{result}{value};
}
sub js_wait {
    my ($expr, $secs) = @_;
    my $v;
    wait_for(sub { $v = eval { js($expr) }; $v }, $secs);
    return $v;
}
# Clicks the element a selector finds, as a user would (mouse events at its centre).
sub click {
    my ($selector) = @_;
    my $r = js("(() => { const e = document.querySelector(" . encode_json($selector) . "); if (!e) return null;"
        . " e.scrollIntoView({ block: 'center' }); const r = e.getBoundingClientRect();"
        . " return { x: r.x + r.width / 2, y: r.y + r.height / 2, disabled: !!e.disabled }; })()");
    return 0 unless $r && !$r->{disabled};
    for my $type (qw(mousePressed mouseReleased)) {
        cdp('Input.dispatchMouseEvent', { type => $type, x => $r->{x}, y => $r->{y}, button => 'left', clickCount => 1 });
    }
    return 1;
}
# How many pixels of a PNG (a file) are mostly green and mostly blue (the chart's in and out).
sub colours {
    my ($png) = @_;
    my $raw = qx{ffmpeg -v error -i '$png' -f rawvideo -pix_fmt rgb24 - 2>/dev/null};
    my ($g, $b) = (0, 0);
    for (my $i = 0; $i + 2 < length $raw; $i += 3) {
        my ($R, $G, $B) = unpack 'C3', substr($raw, $i, 3);
        $g++ if $G > $R + 60 && $G > $B + 40;
        $b++ if $B > $R + 80 && $B > $G + 40;
    }
    return ($g, $b);
}

my $ok = eval {
    my $target = cdp('Target.createTarget', { url => 'about:blank' })->{targetId};
    $session = cdp('Target.attachToTarget', { targetId => $target, flatten => JSON::PP::true })->{sessionId};
    cdp('Runtime.enable');
    cdp('Page.navigate', { url => "$http/dashboard.html" });
    1;
};
ok($ok, 'Chromium opens the dashboard (DevTools over a pipe)') or diag($@, slurp("$dir/chromium.log"));
my $loaded = time;

SKIP: {
    skip 'no Chromium', 22 unless $ok;
    my $card = '[data-stream="live/s"]';
    ok(js_wait("!!document.querySelector('$card')", 15), 'the dashboard shows live/s');
    ok(js_wait("document.querySelectorAll('$card tr[data-client]').length == 2", 10), '  with two clients');
    sleep(10 - (time - $loaded)) if time - $loaded < 10;

    # The charts after 10 s (a poll every 2 s).
    my $points = js("+document.querySelector('$card .chart-rate').dataset.points");
    cmp_ok($points // 0, '>=', 4, "the bit-rate chart has $points points after 10 s");
    cmp_ok(js("+document.querySelector('$card .chart-viewers').dataset.points") // 0, '>=', 4, '  so has the viewers chart');
    my $drawn = js(<<'JS');
(() => {
  const cv = document.querySelector('[data-stream="live/s"] .chart-rate canvas');
  if (!cv) return null;
  const d = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data;
  let g = 0, b = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3] < 128) continue;
    if (d[i + 1] > d[i] + 60 && d[i + 1] > d[i + 2] + 40) g++;
    if (d[i + 2] > d[i] + 80 && d[i + 2] > d[i + 1] + 40) b++;
  }
  return [g, b];
})()
JS
    ok($drawn && $drawn->[0] > 50 && $drawn->[1] > 50, sprintf('  its canvas has the in (green, %d px) and out (blue, %d px) lines', @{ $drawn // [0, 0] }));
    my $rect = js("(() => { const e = document.querySelector('$card .chart-rate canvas'); e.scrollIntoView({ block: 'center' });"
        . " const r = e.getBoundingClientRect(); return { x: r.x + scrollX, y: r.y + scrollY, width: r.width, height: r.height, scale: 1 }; })()");
    sleep 0.3;
    for ([undef, "$dir/dashboard.png"], [$rect, "$dir/chart.png"]) {
        my ($clip, $file) = @$_;
        my $shot = cdp('Page.captureScreenshot', { format => 'png', $clip ? (clip => $clip) : () });
        open my $fh, '>', $file or die;
        binmode $fh;
        print $fh decode_base64($shot->{data});
        close $fh;
    }
    my ($g, $b) = colours("$dir/chart.png");
    ok($g > 50 && $b > 50, "  and so has the screenshot of it (green $g px, blue $b px; $dir/dashboard.png)");

    # The clients: the publisher and the player, with their addresses and protocol.
    my $rows = js("[...document.querySelectorAll('$card tr[data-client]')].map((r) => [...r.cells].slice(0, 4).map((c) => c.textContent).join(' '))");
    my $list = join("\n", sort @{ $rows // [] });
    like($list, qr/^\d+ 127\.0\.0\.1 RTMP player$/m, 'the client list shows the player') or diag($list);
    like($list, qr/^\d+ 127\.0\.0\.1 RTMP publisher$/m, '  and the publisher');
    is(js("document.getElementById('control').dataset.state"), 'ok', '  and /control as available');
    like(js("document.querySelector('$card a.watch').getAttribute('href')"), qr/^player\.html\?stream=s$/, '  and links to player.html?stream=s');
    like(js("document.querySelector('$card a.watch-rtc').getAttribute('href')"), qr{/watch\.html\?stream=s$}, '  and to watch.html?stream=s (WebRTC)');

    # Drop the player: two clicks (the first arms the button).
    my $drop = "$card tr[data-role=player] button[data-action=drop]";
    ok(click($drop) && js("document.querySelector('$drop').classList.contains('armed')") && click($drop), 'drop the player (two clicks)');
    ok(wait_for(sub { my $s = stream_stat(); $s && $s->{nclients} == 1 && !grep { !$_->{publishing} } @{ $s->{clients} } }, 5),
        '  /stat has no player any more');
    ok(defined $t->reap($player, 5), '  the ffmpeg player is disconnected');
    like(js_wait("document.querySelector('$card .result').textContent.match(/dropped.*/)?.[0]", 5) // '', qr/^dropped 1 client/, '  and the page says so');

    # Record: start, 3 s, stop.
    ok(click("$card button[data-action=start]"), 'start recording');
    my $msg = js_wait("(document.querySelector('$card .result').textContent.match(/^recording .* to (.*)/) || [])[1]", 5);
    like($msg // '', qr{^\Q$dir\E/rec/s\.flv$}, "  the page shows the file: " . ($msg // 'nothing'));
    sleep 3;
    ok(click("$card button[data-action=stop]"), 'stop recording');
    my $done = js_wait("(document.querySelector('$card .result').textContent.match(/^recorded .*: (.*)/) || [])[1]", 5);
    is($done, $msg, '  the page shows the file it wrote');
    my $pr = $msg && -s $msg ? probe($msg) : {};
    cmp_ok(($pr->{video} // {})->{frames} // 0, '>=', 30, sprintf('  which plays (%d video frames)', ($pr->{video} // {})->{frames} // 0));

    is(join("\n", @exceptions), '', 'no JavaScript exception in the page');

    # /control denied (allow/deny, auth_basic) or missing: the page says so.
    cdp('Page.navigate', { url => "$http/dashboard.html?control=/control-denied" });
    is(js_wait("document.getElementById('control').dataset.state == 'protected' && !document.getElementById('control-help').hidden && 'protected'", 5),
        'protected', 'a /control that answers 403 is explained on the page');
    cdp('Page.navigate', { url => "$http/dashboard.html?control=/nosuch" });
    ok(js_wait("document.getElementById('control').dataset.state == 'missing' && document.querySelector('button[data-action]')?.disabled", 8),
        'a missing /control (404): the page says so and its buttons are disabled');
}

kill 'TERM', -$cpid;
waitpid($cpid, 0);
$cpid = 0;
ok($t->stop, 'nginx stops');
is(join("\n", $t->alerts), '', 'no alert, crit or emerg in the error log');
diag(sprintf('%.1f s', time - $started));
done_testing;
