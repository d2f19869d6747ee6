#!/usr/bin/perl
# The module loads into Debian's nginx, owns the rtmp {} block, accepts RTMP clients,
# and the project's default configuration starts and stops cleanly.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Test::Nginx::RTMP qw(wait_for slurp);

my $t = Test::Nginx::RTMP->new;
$t->write_config(<<'CONF');
rtmp {
    server {
        listen 127.0.0.1:%%PORT_RTMP%%;
        application live {
        }
    }
}
CONF

my ($ok, $out) = $t->test_config;
ok($ok, 'nginx -t accepts load_module and an rtmp block') or diag($out);
like($out, qr/syntax is ok/, 'nginx -t reports the syntax ok');
unlike($out, qr/not binary compatible|version \d+ instead of/, 'the module is binary compatible with this nginx');

$t->run;
my $c = $t->connect($t->port('RTMP'));
ok($c, 'an RTMP client connects');
ok(wait_for(sub { $t->error_log =~ /\*\d+ client connected, client: 127\.0\.0\.1, server: 127\.0\.0\.1:\d+/ }, 3),
    'a worker accepted it and logged the client and server addresses');
$c->blocking(0);
sleep 1;
my $n = sysread($c, my $buf, 16);
ok(!defined $n && $!{EAGAIN}, 'the connection stays open while the client is within timeout');
close $c;
ok($t->stop, 'nginx -s quit stops nginx');
is(join("\n", $t->alerts), '', 'no alert, crit or emerg in the error log');

# The project's default config, on free ports, with the module and paths of this run.
my $d = Test::Nginx::RTMP->new;
$d->write_default_config;
($ok, $out) = $d->test_config;
ok($ok, 'nginx-conf/nginx.conf passes nginx -t') or diag($out);
$d->run;
ok($d->connect($d->port('RTMP')), 'the default config accepts RTMP clients');
my $http = $d->connect($d->port('HTTP'));
print $http "GET / HTTP/1.0\r\n\r\n";
like(join('', <$http>), qr/^HTTP\/1\.1 200.*ngx-rtmp-rs player/s, 'the default config serves HTTP (the player page)');
ok($d->stop, 'and stops cleanly');
is(join("\n", $d->alerts), '', 'no alert, crit or emerg in its error log');

done_testing;
