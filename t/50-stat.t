#!/usr/bin/perl
# /stat, /metrics and /control with real clients: ffmpeg publishes, ffmpeg and rtmpdump
# play; the XML has nginx-rtmp-module's elements only, the counts, codec details and bit
# rate are right; JSON and Prometheus (parsed by the Prometheus client's parser) carry
# the same; the Grafana dashboard (nginx-conf/grafana) asks only for metrics /metrics
# has, in queries that parse; stat.xsl renders in Chromium; the dashboard shows the stream
# and plays its preview; the control API drops, redirects and records.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP;
use Test::More;
use Test::Nginx::RTMP qw(wait_for slurp probe decode_errors);
use Test::Nginx::RTMPClient;
use Time::HiRes qw(time sleep);
use File::Path qw(make_path);

my $t = Test::Nginx::RTMP->new;
my $dir = $t->dir;
chmod 0755, $dir;
make_path("$dir/hls", "$dir/rec", { mode => 0777 });
chmod 0777, "$dir/hls", "$dir/rec";
system('cp', '-r', $t->root . '/nginx-conf/www', "$dir/www") == 0 or die;
system('chmod', '-R', 'a+rX', "$dir/www");

$t->write_config(<<'CONF');
rtmp {
    server {
        listen 127.0.0.1:%%PORT_RTMP%%;
        application live {
            live on;
            publish_notify on;
            hls on;
            hls_path %%DIR%%/hls;
            hls_fragment 1s;
            hls_playlist_length 6s;
        }
        application rec {
            live on;
            record manual;
            record_path %%DIR%%/rec;
            record_suffix .flv;
        }
    }
}
http {
    access_log %%DIR%%/access.log;
    server {
        listen 127.0.0.1:%%PORT_HTTP%%;
        location = /stat { rtmp_stat all; rtmp_stat_stylesheet stat.xsl; }
        location = /stat-live { rtmp_stat live; }
        location = /metrics { rtmp_stat all; rtmp_stat_format prometheus; }
        location /control { rtmp_control all; }
        location /hls/ { alias %%DIR%%/hls/; rtmp_hls_viewers on; }
        location / { root %%DIR%%/www; }
    }
}
CONF
$t->run;
my $port = $t->port('RTMP');
my $url = "rtmp://127.0.0.1:$port";
my $http = 'http://127.0.0.1:' . $t->port('HTTP');

sub get { my ($path) = @_; return scalar qx{curl -s '$http$path'} }
sub get_status { my ($path) = @_; return scalar qx{curl -s -o /dev/null -w '%{http_code}' '$http$path'} }

# --- a publisher with a known bit rate, two players ----------------------------------------
my $progress = "$dir/progress.txt";
my $pub = $t->spawn("$dir/publish.log", 'ffmpeg', '-hide_banner', '-loglevel', 'error', '-re',
    '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=30', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', 30, '-pix_fmt', 'yuv420p',
    '-b:v', '1000k', '-maxrate', '1000k', '-bufsize', '500k', '-c:a', 'aac', '-b:a', '64k',
    # (Long enough for a slow Chromium below: the test drops it through /control at the end.)
    '-progress', $progress, '-t', 300, '-f', 'flv', "$url/live/s");
ok(wait_for(sub { $t->error_log =~ m{publish: "live/s"} }, 8), 'ffmpeg publishes live/s');
my $p1 = $t->spawn("$dir/play1.log", 'ffmpeg', '-hide_banner', '-loglevel', 'error', '-i', "$url/live/s", '-t', 30, '-f', 'null', '-');
my $p2 = $t->spawn("$dir/play2.log", 'rtmpdump', '-q', '-r', "$url/live/s", '--live', '-o', '/dev/null');

# A first look right away: the rates are not zero for the first seconds.
sleep 2;
my $early = decode_json(get('/stat?format=json'));
my ($early_s) = map { @{ $_->{live}{streams} } } grep { $_->{name} eq 'live' } @{ $early->{servers}[0]{applications} };
cmp_ok($early_s->{bw_in} // 0, '>', 200_000, "bw_in after 2 s: $early_s->{bw_in} b/s (not 0 for the first 10 s)");

sleep 4;
my $xml = get('/stat');
my $json = get('/stat?format=json');
my $prom = get('/metrics');
my $source_kbps = do { my @r = (slurp($progress) // '') =~ /^bitrate=\s*([\d.]+)kbits\/s/mg; $r[-1] };
open my $fh, '>', "$dir/stat.xml" or die; print $fh $xml; close $fh;
open $fh, '>', "$dir/stat.json" or die; print $fh $json; close $fh;
open $fh, '>', "$dir/metrics.txt" or die; print $fh $prom; close $fh;
my $check = decode_json(scalar qx{/usr/bin/python3 $FindBin::Bin/data/stat-check.py $dir/stat.xml $dir/stat.json $dir/metrics.txt});

like($xml, qr{^<\?xml version="1\.0" encoding="utf-8"\?>\s*<\?xml-stylesheet type="text/xsl" href="stat\.xsl"\?>}, 'the XML, with its stylesheet');
is(join(' ', @{ $check->{bad} }), '', '  only nginx-rtmp-module\'s elements, numbers where it has numbers');
my $s = $check->{streams}{'live/s'};
is($s->{nclients}, 3, '  live/s: 3 clients');
is($s->{publishing_clients}, 1, '  one of them publishing');
ok($s->{publishing}, '  the stream is publishing');
is(join('|', @{ $s->{flashvers} }), 'FMLE/3.0 (compatible; Lavf59.27|LNX 10,0,32,18|LNX 9,0,124,2', '  the clients\' flashver');
my $rel = $source_kbps ? abs($s->{bw_in} / 1000 / $source_kbps - 1) : 1;
cmp_ok($rel, '<', 0.2, sprintf('  bw_in %d kb/s, the source %.0f kb/s (ffmpeg -progress)', $s->{bw_in} / 1000, $source_kbps // 0));
cmp_ok($s->{bw_out}, '>', $s->{bw_in}, '  bw_out (two players) over bw_in');
cmp_ok($s->{bw_video} + $s->{bw_audio}, '<=', $s->{bw_in} * 1.01, '  bw_video + bw_audio within bw_in');

# Codec details as ffprobe sees the stream.
my @probe = qx{ffprobe -v error -show_entries stream=codec_name,profile,width,height,r_frame_rate,level,sample_rate,channels -of json $url/live/s 2>/dev/null};
my $fp = decode_json(join '', @probe);
my ($pv) = grep { $_->{width} } @{ $fp->{streams} };
my ($pa) = grep { $_->{sample_rate} } @{ $fp->{streams} };
my $m = $s->{meta};
is("$m->{video}{width}x$m->{video}{height}", "$pv->{width}x$pv->{height}", "  meta: $m->{video}{width}x$m->{video}{height} as ffprobe");
is($m->{video}{frame_rate}, eval $pv->{r_frame_rate}, "  frame rate $m->{video}{frame_rate}");
is($m->{video}{codec}, 'H264', '  H264');
like($pv->{profile}, qr/\Q$m->{video}{profile}\E/, "  profile $m->{video}{profile} (ffprobe: $pv->{profile})");
is($m->{video}{level} * 10, $pv->{level}, "  level $m->{video}{level}");
is($m->{audio}{codec}, 'AAC', '  AAC');
is($m->{audio}{profile}, $pa->{profile}, "  audio profile $m->{audio}{profile}");
is($m->{audio}{sample_rate}, $pa->{sample_rate}, "  $m->{audio}{sample_rate} Hz");
is($m->{audio}{channels}, $pa->{channels}, "  $m->{audio}{channels} channel(s)");

my $j = $check->{json}{'live/s'};
is($j->{nclients}, 3, 'JSON: the same clients');
is($j->{meta}{video}{width}, $m->{video}{width}, '  and the same metadata');

my $labels = ',app=live,stream=s';
is($check->{prom}{"rtmp_stream_players$labels"}, 2, 'Prometheus (parsed by prometheus_client): 2 players');
is($check->{prom}{"rtmp_stream_publishing$labels"}, 1, '  publishing');
cmp_ok($check->{prom}{"rtmp_stream_receive_bytes_per_second$labels"}, '>', 0, '  a receive rate');
# Prometheus's own linter (from Debian's prometheus package, unpacked, its server not
# installed or started, unless promtool is already there).
my ($promtool) = grep { -x } '/usr/bin/promtool', "$dir/prom/usr/bin/promtool";
unless ($promtool) {
    system("cd $dir && apt-get download prometheus >/dev/null 2>&1 && dpkg-deb -x prometheus_*.deb $dir/prom");
    ($promtool) = grep { -x } "$dir/prom/usr/bin/promtool";
}
ok($promtool, 'promtool is there (apt-get download prometheus)');
my $lint = $promtool ? qx{$promtool check metrics < $dir/metrics.txt 2>&1; echo "exit \$?"} : '';
is($lint, "exit 0\n", '  /metrics passes promtool check metrics with no warning');
cmp_ok($check->{prom}{rtmp_connections_accepted_total} // 0, '>=', 3, '  connections accepted');

# The Grafana dashboard (nginx-conf/grafana/ngx-rtmp-rs.json) asks only for metrics that
# /metrics has (a series, or at least its # TYPE line: exec_* have none without children).
{
    my $g = decode_json(slurp($t->root . '/nginx-conf/grafana/ngx-rtmp-rs.json') // '{}');
    my (%kind, %exported);
    $kind{$1} = $2 while $prom =~ /^# TYPE (\S+) (\S+)$/mg;
    $exported{$_}++ for keys %kind, $prom =~ /^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/mg;
    my (@exprs, @panels);
    my $walk;
    $walk = sub {
        for my $p (@_) {
            push @panels, $p;
            push @exprs, map { [$p->{title}, $_->{expr}] } grep { defined $_->{expr} } @{ $p->{targets} // [] };
            $walk->(@{ $p->{panels} // [] });
        }
    };
    $walk->(@{ $g->{panels} // [] });
    for my $v (@{ $g->{templating}{list} // [] }) {
        my $q = ref $v->{query} ? $v->{query}{query} : $v->{type} eq 'query' ? $v->{query} : undef;
        push @exprs, ["variable $v->{name}", $q] if defined $q && $q =~ /^(?:label_values|query_result)\(/;
    }
    my (%used, @unknown);
    for (@exprs) {
        my ($title, $e) = @$_;
        $e =~ s/"(?:[^"\\]|\\.)*"//g;                                    # strings
        $e =~ s/\{[^}]*\}//g;                                           # label matchers
        $e =~ s/\[[^\]]*\]//g;                                          # ranges
        $e =~ s/\$\{?\w+\}?//g;                                         # dashboard variables
        $e =~ s/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)//g;
        $e =~ s/,\s*[a-zA-Z_]\w*\s*\)\s*$/)/ if $title =~ /^variable /;  # label_values(m, LABEL)
        while ($e =~ /(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*+)(?!\s*\()/g) {
            my $m = $1;
            next if $m =~ /^(?:and|or|unless|bool|offset|inf|nan)$/i;
            my ($base) = $m =~ /^(.*)_(?:bucket|sum|count)$/;
            $m = $base if $base && ($kind{$base} // '') =~ /^(?:histogram|summary)$/;
            $used{$m}++;
            push @unknown, "$m ($title)" unless $exported{$m};
        }
    }
    cmp_ok(scalar keys %used, '>=', 10, sprintf('the Grafana dashboard asks for %d metrics in %d queries', scalar keys %used, scalar @exprs));
    is(join(', ', @unknown), '', '  every one of them in /metrics');
    # Each query parses (promtool check rules, the dashboard's variables filled in).
    my $n = 0;
    my @rules = map {
        (my $e = $_->[1]) =~ s/\$__(?:rate_)?interval\b/1m/g;
        $e =~ s/\$\{?\w+\}?/.*/g;
        { record => 'grafana:query_' . ++$n, expr => $e }
    } grep { $_->[0] !~ /^variable / } @exprs;
    open my $rf, '>', "$dir/grafana-rules.yml" or die;
    print $rf encode_json({ groups => [{ name => 'grafana', rules => \@rules }] });
    close $rf;
    my $rules_lint = $promtool ? qx{$promtool check rules $dir/grafana-rules.yml 2>&1; echo "exit \$?"} : '';
    like($rules_lint, qr/SUCCESS: \d+ rules found.*\nexit 0\n\z/s, sprintf('  its %d queries parse (promtool check rules)', scalar @rules)) or diag($rules_lint);
    my @counters_as_gauges = grep { my ($m) = $_->[1] =~ /(\w+_total)\b/; $m && $_->[1] !~ /\b(?:rate|irate|increase)\(\s*\Q$m\E/ } @exprs;
    my @gauges_as_counters = grep { $_->[1] =~ /\b(?:rate|irate|increase)\(\s*(\w+)/ && ($kind{$1} // '') ne 'counter' } @exprs;
    is(join(', ', map { $_->[0] } @counters_as_gauges, @gauges_as_counters), '', '  rate() and increase() on counters only, and counters only through them');
    my @ds = grep { $_->{type} ne 'row' && (($_->{datasource} // {})->{uid} // '') ne '${DS_PROMETHEUS}' } @panels;
    ok(!@ds && (grep { $_->{name} eq 'DS_PROMETHEUS' } @{ $g->{__inputs} // [] }),
        '  its panels use the ${DS_PROMETHEUS} data source, an import input') or diag(join ', ', map { $_->{title} } @ds);
}

my $live_only = get('/stat-live');
ok($live_only =~ /<stream>/ && $live_only !~ /<client>/, 'rtmp_stat live: streams without their clients');
is(get_status('/stat?format=yaml'), '400', 'an unknown format is a 400');
is(get_status('/control/drop/everyone?app=live'), '500', 'an unknown control filter is a 500, as nginx-rtmp-module');

# --- stat.xsl and the dashboard in Chromium ------------------------------------------------
SKIP: {
    my ($chromium) = grep { -x } qw(/usr/bin/chromium /usr/bin/chromium-browser);
    skip 'chromium is not installed', 6 unless $chromium;
    my @flags = ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--autoplay-policy=no-user-gesture-required');
    my $dom = qx{timeout 60 $chromium @flags --user-data-dir=$dir/chromium-xsl --dump-dom $http/stat 2>/dev/null};
    like($dom, qr{<table id="streams">.*<td>live</td>\s*<td>s</td>\s*<td class="num">3</td>}s, 'stat.xsl renders the XML as a table with the stream (Chromium XSLT)');
    like($dom, qr{H264 \S+ 640x360\@30}, '  with its video details');
    my $dash = $t->spawn("$dir/chromium-dash.log", $chromium, @flags, "--user-data-dir=$dir/chromium-dash", "$http/dashboard.html?report=1");
    my ($t0, $tn);
    wait_for(sub {
        my @r = (slurp("$dir/access.log") // '') =~ m{GET /report\?dashboard=live%2Fs&t=([\d.]+)}g;
        ($t0) = grep { $_ > 0 } @r;
        $tn = $r[-1];
        return $t0 && $tn - $t0 >= 3;
    }, 40);
    ok($t0, 'the dashboard lists live/s and its hls.js preview plays');
    cmp_ok(($tn // 0) - ($t0 // 0), '>=', 3, sprintf('  for %.1f s', ($tn // 0) - ($t0 // 0)));
    my ($hv) = get('/stat?format=json') =~ /"name":"s".*?"hls_viewers":(\d+)/s;
    is($hv, 1, 'the dashboard\'s preview counts as one HLS viewer of live/s (JSON)');
    like(get('/metrics'), qr/^rtmp_stream_hls_viewers\{server="0",app="live",stream="s"\} 1$/m, '  and in Prometheus');
    kill 'TERM', $dash;
}

# --- control: record start/stop ----------------------------------------------------------
my $rp = $t->ffmpeg_publish("$url/rec/r", 30, gop => 30);
ok(wait_for(sub { $t->error_log =~ m{publish: "rec/r"} }, 8), 'a publisher in an application with record manual');
sleep 1;
my $started = get('/control/record/start?app=rec&name=r');
is($started, "$dir/rec/r.flv", '/control/record/start answers the file');
sleep 3;
my $stopped = get('/control/record/stop?app=rec&name=r');
is($stopped, "$dir/rec/r.flv", '/control/record/stop answers it too');
my $pr = probe("$dir/rec/r.flv");
ok($pr->{video} && $pr->{video}{frames} >= 60, "  the file plays ($pr->{video}{frames} video frames)");
is(decode_errors("$dir/rec/r.flv"), '', '  and decodes cleanly');
my $health = get('/metrics');
like($health, qr/^rtmp_record_files_total 1$/m, '/metrics counts the completed recording');
like($health, qr/^rtmp_recordings 0$/m, '  and none being written now');
my ($segs) = $health =~ /^rtmp_hls_segments_total (\d+)$/m;
cmp_ok($segs // 0, '>=', 5, sprintf('  and the HLS segments written (%d)', $segs // 0));
like($health, qr/^rtmp_client_errors_total\{reason="protocol"\} 0$/m, '  and no client closed for malformed input');
is(get_status('/control/record/start?app=rec&name=r&rec=nosuch'), '500', 'an unknown recorder is a 500');
is(get_status('/control/record/start?app=rec&name=nosuch'), '204', 'no such stream: 204, as nginx-rtmp-module');
kill 'TERM', $rp;

# --- control: redirect players -------------------------------------------------------------
my $other = $t->ffmpeg_publish("$url/live/other", 30, gop => 30, size => '160x120');
ok(wait_for(sub { $t->error_log =~ m{publish: "live/other"} }, 8), 'a second stream, live/other');
my $c = Test::Nginx::RTMPClient->new(port => $port);
$c->connect_app('live');
is($c->play('s'), 'NetStream.Play.Start', 'a protocol-level player of live/s');
is(get('/control/redirect/subscriber?app=live&name=s&newname=other&addr=127.0.0.1&clientid=' . (client_id('s') // 0)), '1',
    '/control/redirect/subscriber moves it (answers 1)');
my ($moved, $video);
my $deadline = time + 5;
while (time < $deadline) {
    my $msg = $c->read_message($deadline - time) or last;
    if ($msg->{type} == 20) {
        my @v = Test::Nginx::RTMPClient::amf_decode($msg->{body});
        my ($info) = grep { ref $_ eq 'HASH' } @v;
        $moved = 1 if $info && ($info->{code} // '') eq 'NetStream.Play.Start' && ($info->{description} // '') =~ /other/;
    }
    $video++ if $moved && $msg->{type} == 9;
    last if $video && $video > 10;
}
ok($moved, '  it gets NetStream.Play.Start for live/other');
cmp_ok($video // 0, '>', 10, '  and live/other\'s video');
ok(wait_for(sub { (get('/stat?format=json') =~ /"name":"other".*?"nclients":(\d+)/s)[0] == 2 }, 3), '  /stat counts it there');

sub client_id {
    my ($stream) = @_;
    my $st = decode_json(get('/stat?format=json'));
    for my $app (@{ $st->{servers}[0]{applications} }) {
        for my $s (@{ $app->{live}{streams} // [] }) {
            next unless $s->{name} eq $stream;
            my ($cl) = sort { $b->{id} <=> $a->{id} } grep { !$_->{publishing} && $_->{flashver} eq 'TEST 1,0,0,0' } @{ $s->{clients} };
            return $cl && $cl->{id};
        }
    }
    return undef;
}

# --- control: drop the publisher -------------------------------------------------------------
my $w = Test::Nginx::RTMPClient->new(port => $port);
$w->connect_app('live');
is($w->play('s'), 'NetStream.Play.Start', 'a player of live/s');
is(get('/control/drop/publisher?app=live&name=s'), '1', '/control/drop/publisher drops one client');
ok(defined $t->reap($pub, 5), '  the publisher is disconnected');
my $end;
$deadline = time + 5;
while (!$end && time < $deadline) {
    my $msg = $w->read_message($deadline - time) or last;
    $end = 1 if $msg->{type} == 4 && substr($msg->{body}, 0, 2) eq "\x00\x01";    # StreamEOF
}
ok($end, '  and the players see the end of the stream');
is(get('/control/drop/client?app=live&name=nosuch'), '0', 'nothing to drop: 0');

is(join("\n", $t->alerts), '', 'no alerts');
$t->stop;
done_testing;
