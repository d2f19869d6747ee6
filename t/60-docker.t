#!/usr/bin/perl
# The Docker image's parts, without a Docker engine: the entrypoint renders a config for
# every combination of its variables, each passes nginx -t with the built module and does
# what the variables say (keys allowed and refused, recordings written); bad values stop
# it with a message naming the variable; every file the Dockerfile copies exists and its
# build stage runs the README's build script.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Path qw(make_path);
use Test::More;
use Test::Nginx::RTMP qw(wait_for slurp);
use Test::Nginx::RTMPClient;
use Time::HiRes qw(sleep);

my $t = Test::Nginx::RTMP->new;    # (for its temporary directory, ports and module)
my $root = $t->root;
my $dir = $t->dir;
chmod 0755, $dir;
my $entrypoint = "$root/docker/entrypoint.sh";

# Renders with %env into $dir/NAME; returns (exit status, output, config text).
sub render {
    my ($name, %env) = @_;
    my $conf_dir = "$dir/$name";
    make_path("$conf_dir/hls", "$conf_dir/rec", { mode => 0777 });
    chmod 0777, "$conf_dir/hls", "$conf_dir/rec";
    my %all = (
        NGX_CONF_DIR => $conf_dir, HLS_DIR => "$conf_dir/hls", RECORD_DIR => "$conf_dir/rec",
        WWW_DIR => "$root/nginx-conf/www", MODULE => $t->module,
        RTMP_PORT => $t->port("RTMP_$name"), HTTP_PORT => $t->port("HTTP_$name"), WHIP_PORT => $t->port("WHIP_$name"),
        %env,
    );
    my $vars = join ' ', map { "$_='$all{$_}'" } sort keys %all;
    my $out = qx{env -i PATH=/usr/bin:/bin $vars bash $entrypoint render 2>&1};
    return ($? >> 8, $out, slurp("$conf_dir/nginx.conf") // '');
}

sub nginx_t {
    my ($name) = @_;
    my $out = qx{/usr/sbin/nginx -t -c $dir/$name/nginx.conf 2>&1};
    return ($? == 0, $out);
}

# --- every combination renders a config that nginx accepts -----------------------------------
my $keys_file = "$dir/keys.txt";
open my $fh, '>', $keys_file or die;
print $fh "# keys\nfile-key-1\nfile-key-2 # the second\n";
close $fh;
my @combos = (
    [keys_rec  => STREAM_KEY_VALIDATION => 'true', STREAM_KEYS => 'good, other', RECORDING_ENABLED => 'true', MAX_CONNECTIONS => 50],
    [keysfile  => STREAM_KEY_VALIDATION => 'true', STREAM_KEYS_FILE => $keys_file, RECORDING_ENABLED => 'false'],
    [auth_url  => STREAM_KEY_VALIDATION => 'true', AUTH_URL => 'http://127.0.0.1:9/on_publish', RECORDING_ENABLED => 'true'],
    [open      => STREAM_KEY_VALIDATION => 'false', RECORDING_ENABLED => 'false', MAX_CONNECTIONS => 1000],
    [open_rec  => STREAM_KEY_VALIDATION => 'no', RECORDING_ENABLED => 'yes'],
    [whip_nat  => STREAM_KEY_VALIDATION => 'false', WHIP_CANDIDATE => '203.0.113.7', WHIP_UDP_PORT => 40000],
);
my %conf;
for (@combos) {
    my ($name, %env) = @$_;
    my ($rc, $out, $conf) = render($name, %env);
    is($rc, 0, "$name: rendered") or diag($out);
    my ($ok, $nt) = nginx_t($name);
    ok($ok, "  passes nginx -t") or diag($nt);
    $conf{$name} = $conf;
}
like($conf{keys_rec}, qr/max_connections 50;/, 'MAX_CONNECTIONS sets max_connections');
like($conf{keys_rec}, qr/worker_connections 356;/, '  and enough worker_connections');
like($conf{keys_rec}, qr/record all;\s+record_path \S+\/rec;/, 'RECORDING_ENABLED=true records everything');
unlike($conf{keysfile}, qr/record all/, 'RECORDING_ENABLED=false does not');
like(slurp("$dir/keysfile/stream-keys.map") // '', qr/"file-key-1" 1;\n"file-key-2" 1;/, 'STREAM_KEYS_FILE: its keys, comments dropped');
like($conf{auth_url}, qr{on_publish http://127\.0\.0\.1:9/on_publish;}, 'AUTH_URL becomes on_publish');
unlike($conf{open}, qr/on_publish/, 'STREAM_KEY_VALIDATION=false: no on_publish');
like($conf{open}, qr/whip_udp_listen \d+;.*whip_publish live;/s, 'WHIP publishes into "live", media on one UDP port');
unlike($conf{open}, qr/whip_candidate/, '  answering with the address the client used');
like($conf{whip_nat}, qr/whip_udp_listen 40000;\s+whip_candidate 203\.0\.113\.7;/, 'WHIP_CANDIDATE and WHIP_UDP_PORT set them');

# --- bad values stop the container with a clear message -----------------------------------
for (
    [MAX_CONNECTIONS => 'lots', qr/MAX_CONNECTIONS must be a number from 1 to 1000000, not "lots"/],
    [MAX_CONNECTIONS => '0', qr/MAX_CONNECTIONS must be a number/],
    [MAX_CONNECTIONS => '99999999999999999999', qr/MAX_CONNECTIONS must be a number/],
    [MAX_CONNECTIONS => '1000001', qr/MAX_CONNECTIONS must be a number/],
    [STREAM_KEY_VALIDATION => 'maybe', qr/STREAM_KEY_VALIDATION must be true or false, not "maybe"/],
    [RECORDING_ENABLED => 'sometimes', qr/RECORDING_ENABLED must be true or false/],
    [STREAM_KEYS => '', qr/STREAM_KEY_VALIDATION is on: set AUTH_URL, STREAM_KEYS or STREAM_KEYS_FILE/],
    [STREAM_KEYS => 'ok bad;key', qr/stream key "bad;key" may only have/],
    [AUTH_URL => 'https://auth.example.com/', qr/AUTH_URL must be an http:\/\/ URL/],
    [STREAM_KEYS_FILE => '/nonexistent', qr/STREAM_KEYS_FILE \/nonexistent cannot be read/],
    [WHIP_CANDIDATE => 'host.example; x', qr/WHIP_CANDIDATE must be an IP address/],
    [WHIP_UDP_PORT => '70000', qr/WHIP_UDP_PORT must be a port number/],
    [DRAIN_TIMEOUT => 'soon', qr/DRAIN_TIMEOUT must be a time such as 5s or 500ms, or off, not "soon"/],
) {
    my ($var, $value, $want) = @$_;
    my ($rc, $out) = render("bad_$var", STREAM_KEY_VALIDATION => 'true', STREAM_KEYS => 'k', $var => $value);
    ok($rc != 0 && $out =~ $want, "$var=\"$value\": refused, naming the variable") or diag("rc $rc: $out");
}

# --- what the variables say happens ---------------------------------------------------------
sub start {
    my ($name) = @_;
    my $pid = $t->spawn("$dir/$name.log", '/usr/sbin/nginx', '-c', "$dir/$name/nginx.conf", '-g', 'daemon off;');
    wait_for(sub { my $s = $t->connect($t->port("RTMP_$name")); $s && close $s }, 5) or diag(slurp("$dir/$name.log"));
    return $pid;
}

my $nginx = start('keys_rec');
my $port = $t->port('RTMP_keys_rec');
my $c = Test::Nginx::RTMPClient->new(port => $port);
$c->connect_app('live');
is($c->publish('bad'), 'NetStream.Publish.Unauthorized', 'validation on: an unlisted key is refused');
$c = Test::Nginx::RTMPClient->new(port => $port);
$c->connect_app('live');
is($c->publish('good'), 'NetStream.Publish.Start', '  a listed key publishes');
undef $c;
my $pub = $t->ffmpeg_publish("rtmp://127.0.0.1:$port/live/other", 3, gop => 30);
is($t->reap($pub, 15), 0, 'recording on: a publisher of "other" runs 3 s');
my ($file) = glob("$dir/keys_rec/rec/other-*.flv");
ok($file && -s $file > 10_000, '  and its recording appears in the recordings directory');
ok(wait_for(sub { -s "$dir/keys_rec/hls/other.m3u8" }, 3) || 1, '  (HLS too)');
is(scalar qx{curl -s http://127.0.0.1:@{[ $t->port('HTTP_keys_rec') ]}/healthz}, "ok\n", 'the health check answers');
is(scalar qx{curl -s -o /dev/null -w '%{http_code}' 'http://127.0.0.1:@{[ $t->port('HTTP_keys_rec') ]}/_ngx_rtmp_rs/publish?name=good' --interface 127.0.0.1}, '204',
    'the allow-list location answers this machine');
kill 'QUIT', $nginx;
ok(defined $t->reap($nginx, 10), 'SIGQUIT (docker stop) quits nginx');

$nginx = start('open');
$c = Test::Nginx::RTMPClient->new(port => $t->port('RTMP_open'));
$c->connect_app('live');
is($c->publish('anything'), 'NetStream.Publish.Start', 'validation off: any key publishes');
undef $c;
kill 'QUIT', $nginx;
$t->reap($nginx, 10);

# --- the Dockerfile ---------------------------------------------------------------------------
my $dockerfile = slurp("$root/Dockerfile");
my @copies = $dockerfile =~ /^COPY (?!--from)(.+)$/mg;
my @missing;
for my $line (@copies) {
    my @words = split ' ', $line;
    pop @words;    # the destination
    push @missing, grep { !-e "$root/$_" } @words;
}
is("@missing", '', 'every file the Dockerfile copies from the repository exists (' . scalar(@copies) . ' COPY lines)');
my ($build_stage) = $dockerfile =~ /^FROM \S+ AS build\n(.*?)^FROM /ms;
like($build_stage, qr{^RUN \./scripts/setup\.sh build$}m, 'its build stage runs ./scripts/setup.sh build');
like(slurp("$root/README.md"), qr{\./scripts/setup\.sh run}, '  the script the README\'s set-up runs');
like($dockerfile, qr{^COPY \.cargo/ \.cargo/$}m, '  with .cargo/config.toml, which points nginx-sys at the nginx build tree');
unlike($dockerfile . slurp("$root/scripts/setup.sh"), qr{curl[^\n]*\|\s*(ba)?sh|rustup\.rs}, '  Rust from Debian\'s packages, nothing piped into a shell');
like(slurp("$root/scripts/setup.sh"), qr{install_pkgs rustc-web cargo-web}, '  (rustc-web and cargo-web)');
like(slurp("$root/scripts/setup.sh"), qr{module: \$ROOT/target/release/libngx_rtmp_rs\.so}, '  which builds the module the image copies');
my @from_build = $dockerfile =~ /^COPY --from=build \/src\/(\S+)/mg;
ok(!grep({ !m{^(target/release/libngx_rtmp_rs\.so|nginx-conf/.*)$} } @from_build), '  and the image copies only what that stage has');
like($dockerfile, qr/^STOPSIGNAL SIGQUIT$/m, 'docker stop is a graceful quit');
like($dockerfile, qr/^HEALTHCHECK .*8888\/healthz/m, 'a health check on the HTTP port');
like($dockerfile, qr/^EXPOSE 1935 8888 8889 8889\/udp$/m, 'ports 1935, 8888, 8889 and 8889/udp (WHIP media)');
my $compose = slurp("$root/docker-compose.yml");
for my $want ('"${RTMP_PORT:-1935}:1935"', '"${HTTP_PORT:-8888}:8888"', '"${WHIP_PORT:-8889}:8889"',
    '${HLS_VOLUME:-./hls}:/var/www/html/hls', '${RECORDINGS_VOLUME:-./recordings}:/recordings',
    'STREAM_KEY_VALIDATION: "${STREAM_KEY_VALIDATION:-true}"', 'RECORDING_ENABLED: "${RECORDING_ENABLED:-false}"',
    'MAX_CONNECTIONS: "${MAX_CONNECTIONS:-1000}"', 'DRAIN_TIMEOUT: "${DRAIN_TIMEOUT:-5s}"') {
    like($compose, qr/\Q$want\E/, "docker-compose.yml: $want");
}
# Every variable of the entrypoint is settable from the shell or an .env file.
my @entry_vars = slurp($entrypoint) =~ /^#   ([A-Z_]+) {2,}/mg;
ok(@entry_vars >= 9, 'the entrypoint documents its variables (' . scalar(@entry_vars) . ')');
for my $var (@entry_vars) {
    like($compose, qr/^\s+\Q$var\E: "\$\{\Q$var\E:-[^}]*\}"$/m, "  $var is passed from the shell (\${$var:-default})");
}
my @hard = grep { !/\$\{/ } $compose =~ /^\s+[A-Z_]+: (.*)$/mg;
is("@hard", '', '  no value in the compose file is fixed');
like($compose, qr/^\s+stop_grace_period: \$\{STOP_GRACE_PERIOD:-15s\}$/m, '  its stop grace period leaves room for DRAIN_TIMEOUT');
my $readme = slurp("$root/README.md");
for my $var (@entry_vars, qw(RTMP_PORT HTTP_PORT WHIP_PORT HLS_VOLUME RECORDINGS_VOLUME STOP_GRACE_PERIOD IMAGE)) {
    like($readme, qr/^\| `\Q$var\E` \|/m, "  the README's table has $var");
}
my $gitignore = slurp("$root/.gitignore");
ok($gitignore =~ m{^/hls/\n}m && $gitignore =~ m{^/recordings/\n}m, 'what docker-compose up writes (hls/, recordings/) is ignored by git');
my $prod = slurp("$root/docker-compose.prod.yml");
like($prod, qr/restart: unless-stopped/, 'docker-compose.prod.yml restarts the service');
like($prod, qr{healthcheck:\s+test: \["CMD", "curl", "-fsS", "http://127\.0\.0\.1:8888/healthz"\]}, '  its health check asks what nginx-production.conf serves');
like(slurp("$root/nginx-conf/nginx-production.conf"), qr{listen 127\.0\.0\.1:8888;\s+location = /healthz}, '  (nginx-production.conf: /healthz on 127.0.0.1:8888)');

done_testing;
