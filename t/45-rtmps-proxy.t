#!/usr/bin/perl
# RTMPS ingest: nginx's own stream module terminates TLS in front of an rtmp listen with
# proxy_protocol, and passes the client's real address on (PROXY protocol v1); the
# proxy's own connection comes from another address (proxy_bind 127.0.0.3) that the
# application denies, so only the real address lets the publisher in. ffmpeg publishes
# and plays over rtmps://; a PROXY v2 header gives its address; a client without the
# header is closed. Another nginx pushes to it over rtmps:// (TLS through nginx's
# OpenSSL, SNI, the certificate verified against relay_ssl_trusted_certificate): a
# certificate for another name, or from an authority not trusted, is refused and logged;
# relay_ssl_verify off lets it through. The example config nginx-conf/rtmps.conf passes
# nginx -t.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use HTTP::Tiny;
use JSON::PP qw(decode_json);
use Test::Nginx::RTMP qw(wait_for slurp probe);
use Test::Nginx::RTMPClient;

my $stream_module = '/usr/lib/nginx/modules/ngx_stream_module.so';
-f $stream_module or plan skip_all => 'no nginx stream module (libnginx-mod-stream)';

my $t = Test::Nginx::RTMP->new;
my $dir = $t->dir;
system("openssl req -x509 -newkey rsa:2048 -nodes -keyout $dir/key.pem -out $dir/cert.pem -days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost >/dev/null 2>&1") == 0
    or BAIL_OUT('openssl cannot make a test certificate');

$t->write_config(<<"EOF", raw => 1);
load_module $stream_module;
load_module %%MODULE%%;
error_log %%DIR%%/error.log info;
pid %%DIR%%/nginx.pid;
worker_processes 1;
events { worker_connections 1024; }
stream {
    log_format sni '\$remote_addr sni=\$ssl_server_name';
    server {
        listen 127.0.0.1:%%PORT_RTMPS%% ssl;
        access_log $dir/tls.log sni;
        ssl_certificate $dir/cert.pem;
        ssl_certificate_key $dir/key.pem;
        proxy_pass 127.0.0.1:%%PORT_PP%%;
        proxy_protocol on;
        proxy_bind 127.0.0.3;
    }
}
rtmp {
    server {
        listen 127.0.0.1:%%PORT_PP%% proxy_protocol;
        application live {
            live on;
            allow publish 127.0.0.1;
            allow publish 198.51.100.0/24;
            deny publish all;
        }
    }
}
http {
    access_log off;
    server { listen 127.0.0.1:%%PORT_HTTP%%; location = /stat { rtmp_stat all; } }
    server {
        listen 127.0.0.1:%%PORT_HTTPS%% ssl;
        ssl_certificate $dir/cert.pem;
        ssl_certificate_key $dir/key.pem;
        location = /allow { return 200; }
        location = /deny { return 403; }
    }
}
EOF
$t->run;
my ($rtmps, $pp) = ($t->port('RTMPS'), $t->port('PP'));

sub clients_of {
    my ($name) = @_;
    my $s = decode_json(HTTP::Tiny->new->get('http://127.0.0.1:' . $t->port('HTTP') . '/stat?format=json')->{content});
    my ($app) = grep { $_->{name} eq 'live' } @{ $s->{servers}[0]{applications} };
    my ($st) = grep { $_->{name} eq $name } @{ $app->{live}{streams} };
    return @{ $st ? $st->{clients} : [] };
}

my $pub = $t->ffmpeg_publish("rtmps://127.0.0.1:$rtmps/live/s", 30, gop => 30);
ok(wait_for(sub { $t->error_log =~ /publish: "live\/s"/ }, 10), 'ffmpeg publishes over rtmps:// (TLS ended by nginx\'s stream module)')
    or diag($t->error_log);
like($t->error_log, qr/PROXY protocol: the client is 127\.0\.0\.1:\d+/, '  the PROXY header gave the client\'s address');
my ($p) = grep { $_->{publishing} } clients_of('s');
is($p && $p->{address}, '127.0.0.1', '  /stat shows the client\'s address, not the proxy\'s (127.0.0.3, which may not publish)');
like($t->error_log, qr/publish: "live\/s", client: 127\.0\.0\.1, server/, '  and so do nginx\'s log lines');

my $file = "$dir/play.flv";
system("timeout 15 ffmpeg -hide_banner -v error -i rtmps://127.0.0.1:$rtmps/live/s -t 3 -c copy -y $file >/dev/null 2>&1");
my $frames = probe($file)->{video}{frames} // 0;
cmp_ok($frames, '>=', 45, "ffmpeg plays it over rtmps:// ($frames frames in 3 s)");

# PROXY v2 (HAProxy, cloud balancers), straight to the listen.
my $v2 = "\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0a" . "\x21\x11\x00\x0c" . pack('C4 C4 n n', 198, 51, 100, 9, 127, 0, 0, 1, 40000, $pp);
my $c = Test::Nginx::RTMPClient->new(port => $pp);
$c->send_raw($v2);
is($c->connect_app('live'), 'NetConnection.Connect.Success', 'a PROXY v2 header, then RTMP');
is($c->publish('v2'), 'NetStream.Publish.Start', '  publishes from its given address (198.51.100.9 is allowed)');
my ($v2c) = clients_of('v2');
is($v2c && $v2c->{address}, '198.51.100.9', '  /stat shows 198.51.100.9');
undef $c;

my $bare = Test::Nginx::RTMPClient->new(port => $pp);
ok(!$bare->handshake && $bare->closed(3), 'RTMP without a PROXY header on a proxy_protocol listen: closed');
like($t->error_log, qr/no PROXY protocol header/, '  and logged');
my $junk = Test::Nginx::RTMPClient->new(port => $pp);
$junk->send_raw("PROXY TCP4 999.1.1.1 127.0.0.1 1 2\r\n");
ok($junk->closed(3), 'a broken PROXY header: closed');

# rtmps:// pushes (and https:// callbacks) from another nginx of ours.
my $https = $t->port('HTTPS');
my $o = Test::Nginx::RTMP->new;
$o->write_config(<<"EOF");
rtmp {
    relay_ssl_trusted_certificate $dir/cert.pem;
    server {
        listen 127.0.0.1:%%PORT_RTMP%%;
        application good { live on; push rtmps://localhost:$rtmps/live; }
        application wrongname { live on; push rtmps://127.0.0.1:$rtmps/live; }
        application noverify { live on; relay_ssl_verify off; push rtmps://127.0.0.1:$rtmps/live; }
        application cb_ok { live on; on_publish https://localhost:$https/allow; }
        application cb_deny { live on; on_publish https://localhost:$https/deny; }
        application cb_wrongname { live on; on_publish https://127.0.0.1:$https/allow; }
    }
}
EOF
$o->run;
my $src = 'rtmp://127.0.0.1:' . $o->port('RTMP');
my $opub = $o->ffmpeg_publish(undef, 30, gop => 30, tee => ["$src/good/a", "$src/wrongname/b", "$src/noverify/c"]);
ok(wait_for(sub { $t->error_log =~ /publish: "live\/a"/ }, 10), 'a push to rtmps://localhost (certificate verified) arrives') or diag($o->error_log);
ok(wait_for(sub { $o->error_log =~ /\[error\].*relay: the server's certificate is not for "127\.0\.0\.1"/ }, 10),
    'a push to rtmps://127.0.0.1 (the certificate is for localhost) is refused and logged') or diag($o->error_log);
ok(wait_for(sub { $t->error_log =~ /publish: "live\/c"/ }, 10), '  and goes through with relay_ssl_verify off');
unlike($t->error_log, qr/publish: "live\/b"/, '  (the refused one never published)');
system("timeout 15 ffmpeg -hide_banner -v error -i rtmps://127.0.0.1:$rtmps/live/a -t 2 -c copy -y $dir/a.flv >/dev/null 2>&1");
$frames = probe("$dir/a.flv")->{video}{frames} // 0;
cmp_ok($frames, '>=', 30, "the stream pushed over rtmps:// plays ($frames frames in 2 s)");

kill 'TERM', $opub;
$o->reap($opub, 5);
ok(wait_for(sub { (slurp("$dir/tls.log") // '') =~ /sni=localhost$/m }, 10), '  with SNI: the TLS terminator was asked for "localhost"') or diag(slurp("$dir/tls.log"));

my %cb = (cb_ok => 'NetStream.Publish.Start', cb_deny => 'NetStream.Publish.Unauthorized', cb_wrongname => 'NetStream.Publish.Unauthorized');
for my $app (sort keys %cb) {
    my $cl = Test::Nginx::RTMPClient->new(port => $o->port('RTMP'));
    $cl->connect_app($app);
    is($cl->publish('k'), $cb{$app}, "an https:// on_publish ($app): $cb{$app}");
}
like($o->error_log, qr/the server's certificate is not for "127\.0\.0\.1" with https:\/\/127\.0\.0\.1:$https\/allow/, '  the certificate for another name is logged');

my $o2 = Test::Nginx::RTMP->new;
$o2->write_config(<<"EOF");
rtmp { server { listen 127.0.0.1:%%PORT_RTMP%%; application good { live on; push rtmps://localhost:$rtmps/live; } } }
EOF
$o2->run;
my $c2 = Test::Nginx::RTMPClient->new(port => $o2->port('RTMP'));
$c2->connect_app('good');
$c2->publish('d');
ok(wait_for(sub { $o2->error_log =~ /\[error\].*relay: the server's certificate cannot be verified \(18: self[- ]signed certificate\)/ }, 10),
    'with the default trust (Debian\'s authorities), a self-signed server is refused and logged') or diag($o2->error_log);
undef $c2;

kill 'TERM', $pub, $opub;
for my $n ($t, $o, $o2) {
    is(join("\n", $n->alerts), '', 'no alerts');
}
$_->stop for $o2, $o, $t;

# The shipped example.
my $ex = Test::Nginx::RTMP->new;
my $conf = slurp($ex->root . '/nginx-conf/rtmps.conf');
$conf =~ s{load_module target/release/libngx_rtmp_rs\.so;}{load_module %%MODULE%%;};
$conf =~ s{error_log stderr \w+;}{error_log %%DIR%%/error.log info;};
$conf =~ s{pid \S+;}{pid %%DIR%%/nginx.pid;};
$conf =~ s{/etc/ssl/certs/ssl-cert-snakeoil\.pem}{$dir/cert.pem};
$conf =~ s{/etc/ssl/private/ssl-cert-snakeoil\.key}{$dir/key.pem};
$conf =~ s{\b(443|1935|19350)\b}{$ex->port("P$1")}ge;
$ex->write_config($conf, raw => 1);
my ($ok, $out) = $ex->test_config;
ok($ok, 'nginx-conf/rtmps.conf passes nginx -t') or diag($out);
done_testing;
