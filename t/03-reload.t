#!/usr/bin/perl
# nginx -s reload keeps the listening sockets (inherited), lets old workers finish their
# connections, picks up config changes, survives a bad new config; quit is clean.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Test::Nginx::RTMP qw(wait_for slurp alive);
use Test::Nginx::RTMPClient;
use Time::HiRes qw(sleep);

my $t = Test::Nginx::RTMP->new;
my $conf = <<'CONF';
rtmp {
    max_connections 100;
    server {
        listen 127.0.0.1:%%PORT_A%%;
        %%EXTRA%%
        timeout 30s;
        application live { live on; }
    }
}
CONF
(my $first = $conf) =~ s/%%EXTRA%%//;
$t->write_config($first);
$t->run;

# An RTMP client (connected to "live") is still served: it can create a stream.
sub still_open {
    my ($c) = @_;
    $c->command(0, 'createStream', undef);
    return defined $c->wait_command(2, '_result');
}

sub accepted_by {
    my ($port) = @_;
    my $before = () = $t->error_log =~ /client connected/g;
    my $c = Test::Nginx::RTMPClient->new(port => $port);
    $c->connect_app('live') or return;
    wait_for(sub { (() = $t->error_log =~ /client connected/g) > $before }, 3);
    my @pids = $t->error_log =~ /(\d+)#\d+: \*\d+ client connected/g;
    return ($c, $pids[-1]);
}

my ($old) = $t->worker_pids;
my ($a, $by) = accepted_by($t->port('A'));
is($by, $old, 'a client is served by the first worker');

# Reload with one more listen.
(my $second = $conf) =~ s/%%EXTRA%%/listen 127.0.0.1:%%PORT_B%%;/;
$t->write_config($second);
ok($t->reload, 'reload (SIGHUP)');
my $new = wait_for(sub { my ($w) = grep { $_ != $old } $t->worker_pids; $w }, 5);
ok($new, "a new worker started ($new)");
ok(alive($old), 'the old worker stays while it has a client');
ok(wait_for(sub { (slurp("/proc/$old/cmdline") // '') =~ /shutting down/ }, 3), '  and says it is shutting down');
ok(still_open($a), 'the old client is still connected after the reload');

my ($b, $by_b) = accepted_by($t->port('A'));
is($by_b, $new, 'a new client on the inherited socket goes to the new worker');
my ($c, $by_c) = accepted_by($t->port('B'));
ok($c && $by_c == $new, 'the listen added by the reload accepts');

close $a->sock;
ok(wait_for(sub { !alive($old) }, 5), 'the old worker exits once its client left');

# A broken config is refused on reload; the running one keeps serving.
$t->write_config($first =~ s/timeout 30s;/timeout 30s; chunk_size 0;/r);
$t->reload;
ok(wait_for(sub { $t->error_log =~ /\[emerg\].*"chunk_size"/ }, 3), 'a reload with a bad config is refused, naming the directive');
my @workers = $t->worker_pids;
is_deeply(\@workers, [$new], 'the worker keeps running');
ok(still_open($b), 'and its clients stay connected');
undef $b;
undef $c;

ok($t->stop, 'quit (SIGQUIT) stops nginx');
is(join("\n", grep { !/\[emerg\].*"chunk_size"/ } $t->alerts), '', 'no other alert, crit or emerg in the error log');
unlike($t->error_log, qr/open socket .* left in connection/, 'no connection left open at exit');

done_testing;
