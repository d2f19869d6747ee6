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
# On the first worker: a publisher with a player, a player waiting for a stream nobody
# publishes, and a client that only connected.
my ($pub, $by) = accepted_by($t->port('A'));
is($by, $old, 'clients are served by the first worker');
is($pub->publish('x'), 'NetStream.Publish.Start', 'live/x is published');
my ($a) = accepted_by($t->port('A'));
is($a->play('x'), 'NetStream.Play.Start', 'and played');
my ($waiting) = accepted_by($t->port('A'));
$waiting->play('nobody');
my ($idle) = accepted_by($t->port('A'));

sub frame {
    my ($ts) = @_;
    $pub->send_message(csid => 7, type => 9, msid => $pub->{msid}, ts => $ts, body => "\x17\x01\0\0\0frame$ts");
}
sub receives {    # the player gets the frame with timestamp $ts
    my ($ts) = @_;
    while (my $m = $a->read_message(2)) { return 1 if $m->{type} == 9 && $m->{ts} == $ts }
    return 0;
}
frame(100);
ok(receives(100), 'the player receives frames');

# Reload with one more listen.
(my $second = $conf) =~ s/%%EXTRA%%/listen 127.0.0.1:%%PORT_B%%;/;
$t->write_config($second);
ok($t->reload, 'reload (SIGHUP)');
my $new = wait_for(sub { my ($w) = grep { $_ != $old } $t->worker_pids; $w }, 5);
ok($new, "a new worker started ($new)");
ok(wait_for(sub { (slurp("/proc/$old/cmdline") // '') =~ /shutting down/ }, 3), 'the old worker is shutting down');
ok($waiting->closed(3), '  it closes the player waiting for a stream it can no longer get (to reconnect to the new worker)');
ok($idle->closed(3), '  and the client that neither publishes nor plays');
frame(200);
ok(receives(200), '  but the live stream goes on: the player still receives frames');
ok(alive($old), '  so the old worker stays');

my ($b, $by_b) = accepted_by($t->port('A'));
is($by_b, $new, 'a new client on the inherited socket goes to the new worker');
my ($c, $by_c) = accepted_by($t->port('B'));
ok($c && $by_c == $new, 'the listen added by the reload accepts');

close $pub->sock;
ok($a->closed(4), 'when the publisher leaves, the old worker lets its player go');
ok(wait_for(sub { !alive($old) }, 5), 'and exits');

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
