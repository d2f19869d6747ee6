#!/usr/bin/perl
# Floods on the open internet, with a healthy publisher (ffmpeg) and player watching:
# - handshake_timeout: a connection that sends nothing, one that trickles a byte every
#   half second (each byte used to restart `timeout`: it was never closed, nor is it by
#   nginx-rtmp-module), and one stopped mid-handshake are closed at the deadline; one that
#   completes its connect stays;
# - 5,000 such connections at once: max_connections refuses the excess at once, the rest
#   are closed at handshake_timeout, the worker's memory stays bounded, and the healthy
#   player never waits more than 200 ms for a frame;
# - players that stop reading are dropped at out_queue (logged), the others untouched.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Test::Nginx::RTMP qw(wait_for slurp);
use Test::Nginx::RTMPClient;
use Socket qw(PF_INET SOCK_STREAM IPPROTO_TCP pack_sockaddr_in inet_aton);
use IO::Select;
use Time::HiRes qw(time sleep);
use POSIX qw(EINPROGRESS);

my $FLOOD = 5000;
my $MAX = 4500;

my $t = Test::Nginx::RTMP->new;
$t->write_config(<<"CONF", raw => 1);
load_module %%MODULE%%;
error_log %%DIR%%/error.log info;
pid %%DIR%%/nginx.pid;
worker_processes 1;
worker_rlimit_nofile 20000;
events { worker_connections 12000; }
rtmp {
    access_log off;
    max_connections $MAX;
    server {
        listen 127.0.0.1:%%PORT_RTMP%% backlog=8192;
        handshake_timeout 4s;
        timeout 60s;
        application live { live on; }
        application slow { live on; }
    }
}
CONF
$t->run;
my $port = $t->port('RTMP');
my ($worker) = $t->worker_pids;

sub rss_kb { (slurp("/proc/$worker/status") // '') =~ /VmRSS:\s+(\d+)/ ? $1 : 0 }
sub fds { my @f = glob("/proc/$worker/fd/*"); scalar @f }
sub is_closed {
    my ($s) = @_;
    return 0 unless IO::Select->new($s)->can_read(0);
    my $r = sysread($s, my $b, 65536);
    return defined $r && $r == 0 ? 1 : !defined $r ? 1 : 0;
}

# --- the healthy pair ---------------------------------------------------------------
my $pub = $t->ffmpeg_publish("rtmp://127.0.0.1:$port/live/ok", 40, gop => 30);
ok(wait_for(sub { $t->error_log =~ m{publish: "live/ok"} }, 10), 'a healthy publisher');
# The healthy player is a process of its own (this one is busy flooding): it writes the
# time each video frame arrives.
my $arrivals = $t->dir . '/arrivals';
my $watcher = fork // die;
if (!$watcher) {
    $SIG{TERM} = $SIG{INT} = sub { POSIX::_exit(0) };
    my $p = Test::Nginx::RTMPClient->new(port => $port);
    $p->connect_app('live');
    POSIX::_exit(1) unless ($p->play('ok') // '') eq 'NetStream.Play.Start';
    open my $out, '>', $arrivals or die;
    $out->autoflush(1);
    while (my $m = $p->read_message(30)) {
        printf $out "%.4f\n", time if $m->{type} == 9;
    }
    POSIX::_exit(0);    # (not exit: the harness's destructor would stop nginx)
}
push @{ $t->{children} }, $watcher;
ok(wait_for(sub { -s $arrivals }, 10), 'and a healthy player');
# The longest wait between two frames the healthy player had since $from.
sub worst_since {
    my ($from) = @_;
    my @a = grep { $_ >= $from } split /\n/, slurp($arrivals) // '';
    my $w = 0;
    for my $i (1 .. $#a) { $w = $a[$i] - $a[$i - 1] if $a[$i] - $a[$i - 1] > $w }
    push @a, time;
    $w = $a[-1] - $a[-2] if @a > 1 && $a[-1] - $a[-2] > $w;    # and since the last one
    return $w;
}
sub watch { }
my $t0 = time;
sleep 2;
cmp_ok(worst_since($t0), '<', 0.2, sprintf('  frames keep coming before the flood (longest wait %d ms)', worst_since($t0) * 1000));
my ($rss0, $fds0) = (rss_kb(), fds());

# --- handshake_timeout, one connection of each kind ------------------------------------
my $silent = $t->connect($port);
my $trickle = $t->connect($port);
my $half = $t->connect($port);
syswrite($half, "\x03" . ("h" x 1000));    # C0 and two thirds of C1, then nothing
syswrite($trickle, "\x03");                 # C0, then C1 a byte at a time
my $done = Test::Nginx::RTMPClient->new(port => $port);
$done->connect_app('live');
my $start = time;
my %closed_at;
while (time - $start < 6.5) {
    syswrite($trickle, 'x') unless $closed_at{trickle};
    for ([silent => $silent], [trickle => $trickle], [half => $half]) {
        my ($name, $s) = @$_;
        $closed_at{$name} //= time - $start if is_closed($s);
    }
    watch();
    sleep 0.05 if time - $start < 6.5;
}
for my $name (qw(silent trickle half)) {
    my $at = $closed_at{$name};
    ok(defined $at && $at > 3.5 && $at < 5.5, sprintf('handshake_timeout 4s: the %s connection is closed at %.1f s', $name, $at // -1));
}
ok(!$done->closed, '  one that completed its connect stays');
like($t->error_log, qr/handshake and connect not done in time \(handshake_timeout\)/, '  the error log says why');

# --- 5,000 at once ---------------------------------------------------------------------
my $addr = pack_sockaddr_in($port, inet_aton('127.0.0.1'));
my (@flood, %kind);
my $opened = time;
for my $i (1 .. $FLOOD) {
    socket(my $s, PF_INET, SOCK_STREAM, IPPROTO_TCP) or die "socket: $!";
    connect($s, $addr) or die "connect: $!";
    my $k = $i % 5 == 0 ? 'trickle' : $i % 5 == 1 ? 'half' : 'silent';
    syswrite($s, "\x03" . ("h" x 1000)) if $k eq 'half';
    syswrite($s, "\x03") if $k eq 'trickle';
    push @flood, $s;
    $kind{ fileno $s } = $k;
    watch() if $i % 100 == 0;
}
my $open_secs = time - $opened;
my ($refused, $peak_rss, $peak_fds) = (0, 0, 0);
my $flood_start = time;
my $all_closed;
while (time - $flood_start < 9) {
    my $open = 0;
    for my $s (@flood) {
        next unless $s;
        if (is_closed($s)) {
            $refused++ if time - $opened < 2.5;
            $s = undef;
            next;
        }
        $open++;
        syswrite($s, 'x') if $kind{ fileno $s } eq 'trickle' && int((time - $flood_start) * 2) % 2 == 0;
    }
    my $r = rss_kb();
    $peak_rss = $r if $r > $peak_rss;
    my $f = fds();
    $peak_fds = $f if $f > $peak_fds;
    watch();
    if (!$open) { $all_closed = time - $opened; last }
    my $until = time + 0.25;
    watch() while time < $until;
}
diag(sprintf('%d connections opened in %.1f s; worker RSS %d kB before, %d kB at the peak; fds %d then %d',
    $FLOOD, $open_secs, $rss0, $peak_rss, $fds0, $peak_fds));
ok($refused >= $FLOOD - $MAX - 10 && $refused <= $FLOOD - $MAX + 50,
    "max_connections $MAX: the excess is refused at once ($refused of $FLOOD)");
ok(defined $all_closed && $all_closed < 8, sprintf('every flood connection is closed by handshake_timeout (all gone %.1f s after the first)', $all_closed // -1));
cmp_ok(($peak_rss - $rss0) / $MAX, '<', 8, sprintf('  worker memory per held connection %.1f kB (bounded)', ($peak_rss - $rss0) / $MAX));
my $worst = worst_since($opened);
cmp_ok($worst, '<', 0.2, sprintf('the healthy player never waited more than 200 ms for a frame (longest %d ms)', $worst * 1000));
ok(!$done->closed, '  and the completed client is still there');
ok(wait_for(sub { fds() <= $fds0 + 2 }, 5), sprintf('  the worker is back to its file descriptors (%d, was %d)', fds(), $fds0));

# --- players that stop reading -----------------------------------------------------------
my $spub = $t->ffmpeg_publish("rtmp://127.0.0.1:$port/slow/s", 30, gop => 30, size => '1280x720');
ok(wait_for(sub { $t->error_log =~ m{publish: "slow/s"} }, 10), 'a publisher for players that stop reading');
my @stuck;
for (1 .. 100) {
    my $c = Test::Nginx::RTMPClient->new(port => $port);
    $c->connect_app('slow');
    $c->play('s');
    push @stuck, $c;    # never read again
}
my $reader = Test::Nginx::RTMPClient->new(port => $port);
$reader->connect_app('slow');
is($reader->play('s'), 'NetStream.Play.Start', 'a player that reads');
my $rss1 = rss_kb();
my ($frames, $peak2) = (0, 0);
my $s0 = time;
my $drops = sub { scalar(() = $t->error_log =~ /client too slow: more than \d+ messages queued \(out_queue\), dropping it/g) };
while (time - $s0 < 25 && $drops->() < 100) {
    while (my $m = $reader->read_message(0.01)) { $frames++ if $m->{type} == 9 }
    my $r = rss_kb();
    $peak2 = $r if $r > $peak2;
    watch();
}
my $secs = time - $s0;
is($drops->(), 100, sprintf('the 100 players that stopped reading are dropped at out_queue, each logged (all within %.1f s)', $secs));
cmp_ok($frames / $secs, '>', 20, sprintf('  the one that reads keeps getting frames (%.0f a second)', $frames / $secs));
cmp_ok(($peak2 - $rss1) / 1024, '<', 64, sprintf('  the worker grew by %.1f MB meanwhile (bounded by out_queue)', ($peak2 - $rss1) / 1024));
$worst = worst_since($s0);
cmp_ok($worst, '<', 0.2, sprintf('  and the healthy player still never waited 200 ms (longest %d ms)', $worst * 1000));

$t->stop;
is(join("\n", $t->alerts), '', 'no alert, crit or emerg in the error log');
done_testing;
