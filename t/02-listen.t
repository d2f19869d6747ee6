#!/usr/bin/perl
# Listening sockets: several listens and servers, IPv6, idle timeout, max_connections,
# several workers.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Test::Nginx::RTMP qw(wait_for);
use Time::HiRes qw(time sleep);

my $t = Test::Nginx::RTMP->new;
$t->write_config(<<'CONF', workers => 2);
rtmp {
    max_connections 3;
    server {
        listen 127.0.0.1:%%PORT_A%%;
        listen 127.0.0.1:%%PORT_B%%;
        listen [::1]:%%PORT_V6%%;
        timeout 1s;
        application live { }
    }
    server {
        listen 127.0.0.1:%%PORT_C%%;
        timeout 30s;
    }
}
CONF
$t->run;
is(scalar(my @w = $t->worker_pids), 2, 'two workers run');
unlike($t->startup_output, qr/\[warn\]/, 'nginx does not warn about several workers (every worker serves every stream)');
ok(wait_for(sub { my @s = glob('/tmp/ngx-rtmp-rs.*.sock'); my %w = map { /ngx-rtmp-rs\.(\d+)\./ ? ($1 => 1) : () } @s; !grep { !$w{$_} } $t->worker_pids }, 3),
    'each worker listens on its Unix socket for the other workers');

# Is the peer still there? (no EOF or reset within $wait seconds)
sub open_after {
    my ($sock, $wait) = @_;
    $sock->blocking(0);
    sleep $wait;
    my $n = sysread($sock, my $buf, 1);
    return !defined $n && $!{EAGAIN};
}

# Seconds until the server closes $sock, or undef within $max.
sub closed_after {
    my ($sock, $max) = @_;
    my $start = time;
    $sock->blocking(1);
    my $rin = '';
    vec($rin, fileno($sock), 1) = 1;
    select(my $rout = $rin, undef, undef, $max) or return undef;
    my $n = sysread($sock, my $buf, 1);
    return defined $n && $n == 0 || !defined $n ? time - $start : undef;
}

for my $p (qw(A B C)) {
    my $c = $t->connect($t->port($p));
    ok($c && open_after($c, 0.2), "listen on port $p accepts and holds a connection");
}
my $v6 = $t->connect($t->port('V6'), '::1');
ok($v6 && open_after($v6, 0.2), 'listen [::1] accepts IPv6 clients');
undef $v6;

# timeout 1s: an idle client is closed after about a second, and the log says why.
my $idle = $t->connect($t->port('A'));
my $took = closed_after($idle, 5);
ok(defined $took && $took > 0.8 && $took < 2.5, sprintf('an idle client is closed after timeout (%.2fs)', $took // -1));
ok(wait_for(sub { $t->error_log =~ /client timed out, client: 127\.0\.0\.1/ }, 2), 'the log says the client timed out');

# A client that keeps sending is not idle (a slow handshake: C0, then C1 a bit at a time).
local $SIG{PIPE} = 'IGNORE';
my $busy = $t->connect($t->port('A'));
my $alive = syswrite($busy, "\x03");
for (1 .. 6) {
    sleep 0.4;
    syswrite($busy, "x" x 10) or $alive = 0;
}
ok($alive && open_after($busy, 0.1), 'a client sending data outlives timeout (2.4s at timeout 1s)');
undef $busy;

# max_connections 3: the fourth concurrent client is turned away.
wait_for(sub { () = $t->error_log =~ /client closed connection/g; 1 }, 1);
sleep 0.3;
my @held = map { $t->connect($t->port('C')) } 1 .. 3;
ok(open_after($held[-1], 0.2), 'three clients held (max_connections 3)');
# The count is shared by both workers, as in nginx-rtmp-module.
my @more = map { $t->connect($t->port('C')) } 1 .. 4;
my $refused = grep { defined closed_after($_, 1) } @more;
is($refused, 4, 'every client over max_connections is closed, whichever worker takes it');
ok(open_after($held[0], 0.1), 'the three held clients are still served');
undef $held[0];
sleep 0.3;
my $again = $t->connect($t->port('C'));
ok(open_after($again, 0.3), 'a slot freed by a leaving client is usable again');
like($t->error_log, qr/max_connections \(3\) reached/, 'the log names max_connections');
@held = @more = ();
undef $again;

ok($t->stop, 'quit');
is(join("\n", $t->alerts), '', 'no alert, crit or emerg in the error log');

done_testing;
