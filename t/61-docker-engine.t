#!/usr/bin/perl
# The Docker quick start on a real engine (Debian's docker.io and docker-compose), as a new
# user types it: the image builds from this checkout (debian:bookworm made with
# debootstrap when no registry has it), `docker-compose up` with settings from the shell
# serves RTMP, HLS, /stat and /metrics, refuses a wrong key, and `docker-compose stop`
# with a publisher live ends in time with exit code 0 and a complete recording; the
# production compose file, with its settings from an --env-file, turns healthy and takes
# a publisher on the Docker host.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Path qw(make_path);
use Test::More;
use Test::Nginx::RTMP qw(wait_for slurp probe decode_errors);
use Test::Nginx::RTMPClient;
use Time::HiRes qw(sleep time);

plan skip_all => 'needs root (dockerd, debootstrap)' if $> != 0;

my $t = Test::Nginx::RTMP->new;    # (its temporary directory, ports and clients)
my $root = $t->root;
my $dir = $t->dir;
chmod 0755, $dir;
# Debian's client (20.10, like its engine), not another one that may be on the PATH.
my $docker = -x '/usr/bin/docker' ? '/usr/bin/docker' : 'docker';
my $compose = 'docker-compose';

sub run_logged {
    my ($what, $cmd) = @_;
    my $out = qx{$cmd 2>&1};
    my $ok = $? == 0;
    diag("$what failed:\n" . substr($out, -4000)) unless $ok;
    return ($ok, $out);
}

# --- a Docker engine -------------------------------------------------------------------------
if (system("$docker info >/dev/null 2>&1") != 0) {
    $t->spawn("$dir/dockerd.log", 'dockerd');
    wait_for(sub { system("$docker info >/dev/null 2>&1") == 0 }, 60)
        or BAIL_OUT("dockerd did not start:\n" . (slurp("$dir/dockerd.log") // ''));
}
pass('a Docker engine runs (' . (qx{$docker version --format '{{.Server.Version}}'} =~ s/\s+//r) . ')');
my ($ok) = run_logged('making the base images', "DOCKER=$docker $root/scripts/docker-base.sh");
ok($ok, 'debian:bookworm and debian:bookworm-slim are there (made with debootstrap if missing)') or BAIL_OUT('no base image');

# --- docker-compose up, settings from the shell ------------------------------------------------
my $project = "ngxrtmprs$$";
my %port = map { $_ => $t->port("D_$_") } qw(RTMP HTTP WHIP WHIPUDP PRTMP PHTTP PHTTPS PWHIPUDP);
make_path("$dir/hls", "$dir/recordings");
local $ENV{IMAGE} = "ngx-rtmp-rs:test-$$";
local $ENV{RTMP_PORT} = $port{RTMP};
local $ENV{HTTP_PORT} = $port{HTTP};
local $ENV{WHIP_PORT} = $port{WHIP};
local $ENV{WHIP_UDP_PORT} = $port{WHIPUDP};
local $ENV{HLS_VOLUME} = "$dir/hls";
local $ENV{RECORDINGS_VOLUME} = "$dir/recordings";
local $ENV{STREAM_KEYS} = 'goodkey';
local $ENV{RECORDING_ENABLED} = 'true';
local $ENV{DRAIN_TIMEOUT} = '3s';
my $up = "$compose -p $project -f $root/docker-compose.yml";
my @down;
# (Last, once everything is down: the image this test built, and the build stage it left
# untagged; END blocks run in reverse.)
my $image = $ENV{IMAGE};
END { system("$docker rmi -f $image >/dev/null 2>&1; $docker image prune -f --filter label=ngx-rtmp-rs.stage=build >/dev/null 2>&1") if $image }
END { system("$_ >/dev/null 2>&1") for @down }
push @down, "$up down -v --remove-orphans";

my $t0 = time;
($ok) = run_logged('docker-compose build', "cd $root && $up build");
ok($ok, sprintf('the image builds from the checkout (%.0f s)', time - $t0)) or BAIL_OUT('no image');
my $module_size = qx{$docker run --rm --entrypoint stat $ENV{IMAGE} -c %s /usr/lib/nginx/modules/libngx_rtmp_rs.so} + 0;
ok($module_size > 1e6 && $module_size < 20e6, "  its module has no debug information ($module_size bytes)");
like(scalar qx{$docker run --rm --entrypoint sh $ENV{IMAGE} -c 'command -v cargo rustc gcc || echo none'}, qr/^none$/m,
    '  and its final stage has no build tools');

($ok) = run_logged('docker-compose up', "cd $root && $up up -d");
ok($ok, 'docker-compose up -d starts it');
my $cid = qx{$up ps -q ngx-rtmp-rs} =~ s/\s+//gr;
sub health { my ($id) = @_; qx{$docker inspect -f '{{.State.Health.Status}}' $id 2>/dev/null} =~ s/\s+//gr }
$t0 = time;
ok(wait_for(sub { health($cid) eq 'healthy' }, 60), sprintf('  and it turns healthy (%.0f s)', time - $t0))
    or diag(scalar qx{$docker logs $cid 2>&1});
my $conf = qx{$docker exec $cid cat /etc/ngx-rtmp-rs/nginx.conf};
like($conf, qr/drain_timeout 3s;/, '  DRAIN_TIMEOUT from the shell reached the configuration');
like($conf, qr/record all;/, '  and so did RECORDING_ENABLED=true');

my $rtmp = "rtmp://127.0.0.1:$port{RTMP}/live";
my $bad = $t->ffmpeg_publish("$rtmp/wrongkey", 5);
my $status = $t->reap($bad, 20);
ok(defined $status && $status != 0, 'a key that is not in STREAM_KEYS is refused');

my $pub = $t->ffmpeg_publish("$rtmp/goodkey", 60, gop => 30);
my $http = "http://127.0.0.1:$port{HTTP}";
my $playlist;
ok(wait_for(sub { $playlist = qx{curl -sf $http/hls/goodkey.m3u8}; $playlist =~ /\.ts$/m }, 20), 'goodkey publishes: its HLS playlist is served')
    or diag(scalar qx{$docker logs $cid 2>&1});
my ($segment) = $playlist =~ /^(\S+\.ts)$/m;
system("curl -sf -o $dir/seg.ts $http/hls/$segment") if $segment;
my $p = probe("$dir/seg.ts");
ok($p->{video} && $p->{video}{codec} eq 'h264' && $p->{audio} && $p->{audio}{codec} eq 'aac', '  a segment has H.264 and AAC');
ok(-s "$dir/hls/goodkey.m3u8", '  the playlist is in HLS_VOLUME on the host');
like(scalar qx{curl -sf $http/stat}, qr{<name>goodkey</name>.*<publishing/>}s, '  /stat shows it publishing');
like(scalar qx{curl -sf $http/metrics}, qr/^rtmp_stream_publishing\{[^}]*stream="goodkey"[^}]*\} 1$/m, '  /metrics too');
my $played = qx{ffmpeg -hide_banner -v error -i $rtmp/goodkey -t 2 -f null - 2>&1; echo "exit \$?"};
like($played, qr/^exit 0$/m, '  an RTMP player plays it');

# --- docker-compose stop while live ------------------------------------------------------------
my $player = $t->spawn("$dir/player.log", 'ffmpeg', '-hide_banner', '-v', 'error', '-i', "$rtmp/goodkey", '-f', 'null', '-');
sleep 2;
$t0 = time;
($ok) = run_logged('docker-compose stop', "$up stop");
my $took = time - $t0;
ok($ok && $took < 12, sprintf('docker-compose stop with a live publisher ends in %.1f s (drain_timeout 3s, grace 15 s)', $took));
is(qx{$docker inspect -f '{{.State.ExitCode}}' $cid} =~ s/\s+//gr, '0', '  with exit code 0');
my $logs = qx{$docker logs $cid 2>&1};
like($logs, qr/closing publisher: nginx is quitting and drain_timeout \(3000 ms\) is over/, '  the publisher was drained, then closed');
my ($rec) = glob("$dir/recordings/goodkey-*.flv");
ok($rec, '  its recording is in RECORDINGS_VOLUME on the host');
like($logs, qr/record: "[^"]*goodkey-\d+\.flv" done/, '  and was completed');
if ($rec) {
    my $dur = qx{ffprobe -v error -show_entries format=duration -of csv=p=0 $rec} + 0;
    ok($dur > 3, "  it plays for ${dur} s");
    is(decode_errors($rec), '', '  and decodes without an error');
}
is($t->reap($player, 5), 0, '  a player watching it was told the stream ended (ffmpeg ends without an error)')
    or diag(slurp("$dir/player.log"));
kill 'TERM', $pub;
$t->reap($pub, 5);

# --- the production compose file ---------------------------------------------------------------
my $certs = "$dir/certs/live/stream.example.com";
make_path($certs);
system("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=stream.example.com "
    . "-keyout $certs/privkey.pem -out $certs/fullchain.pem >/dev/null 2>&1") == 0 or die 'openssl failed';
chmod 0644, "$certs/privkey.pem";
open my $env, '>', "$dir/prod.env" or die;
print $env "IMAGE=$ENV{IMAGE}\nRTMP_PORT=$port{PRTMP}\nHTTP_PORT=$port{PHTTP}\nHTTPS_PORT=$port{PHTTPS}\n"
    . "WHIP_UDP_PORT=$port{PWHIPUDP}\nCERTS_DIR=$dir/certs\n";
close $env;
my $prod = "$compose -p ${project}prod -f $root/docker-compose.prod.yml --env-file $dir/prod.env";
push @down, "$prod down -v --remove-orphans";
{
    # (Its settings come from the env file alone.)
    my @vars = qw(IMAGE RTMP_PORT HTTP_PORT WHIP_PORT WHIP_UDP_PORT HLS_VOLUME RECORDINGS_VOLUME STREAM_KEYS RECORDING_ENABLED DRAIN_TIMEOUT);
    local @ENV{@vars};
    delete @ENV{@vars};
    ($ok) = run_logged('docker-compose -f docker-compose.prod.yml up', "cd $root && $prod up -d");
    ok($ok, 'docker-compose -f docker-compose.prod.yml up -d, settings from --env-file');
    my $pid = qx{$prod ps -q ngx-rtmp-rs} =~ s/\s+//gr;
    $t0 = time;
    ok(wait_for(sub { health($pid) eq 'healthy' }, 60), sprintf('  turns healthy with its own configuration (%.0f s)', time - $t0))
        or diag(scalar qx{$docker logs $pid 2>&1});
    my $c = Test::Nginx::RTMPClient->new(port => $port{PRTMP});
    $c->connect_app('live');
    is($c->publish('fromhost'), 'NetStream.Publish.Start', '  a publisher on the Docker host may publish (it comes from the bridge\'s gateway)');
    undef $c;
    like(scalar qx{curl -sk -o /dev/null -w '%{http_code}' https://127.0.0.1:$port{PHTTPS}/player.html}, qr/^200$/, '  the player page is served over HTTPS');
    ($ok) = run_logged('docker-compose -f docker-compose.prod.yml stop', "$prod stop");
    is(qx{$docker inspect -f '{{.State.ExitCode}}' $pid} =~ s/\s+//gr, '0', '  and stops with exit code 0');
}

done_testing;
