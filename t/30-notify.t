#!/usr/bin/perl
# Notify callbacks against a real HTTP service (t/data/notify-server.py records every
# request): the forms equal nginx-rtmp-module's captures field by field, keys are allowed,
# refused and renamed, a service that is down, silent, broken or failing denies within
# netcall_timeout without hurting the worker, 200 publishes waiting on a slow service all
# complete while a live stream keeps flowing, on_update can drop a publisher, and the
# end-of-stream callbacks fire exactly once, even for clients that vanish.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP;
use POSIX ();
use Test::More;
use Test::Nginx::RTMP qw(wait_for slurp);
use Test::Nginx::RTMPClient;
use Time::HiRes qw(time sleep);

my $t = Test::Nginx::RTMP->new;
my $dir = $t->dir;
my $record = $t->notify_server;
my $dns_log = "$dir/dns-queries.log";
$t->spawn("$dir/dns-server.log", 'python3', "$FindBin::Bin/data/dns-server.py", $t->port('DNS'), $dns_log, 'callback.test=127.0.0.1');
wait_for(sub { (slurp("$dir/dns-server.log") // '') =~ /ready/ }, 10) or BAIL_OUT('the DNS server did not start');

$t->write_config(<<'CONF');
rtmp {
    netcall_timeout 2s;
    resolver 127.0.0.1:%%PORT_DNS%% valid=1s;
    server {
        listen 127.0.0.1:%%PORT_RTMP%%;
        on_connect http://127.0.0.1:%%PORT_CB%%/ok/on_connect;
        on_disconnect http://127.0.0.1:%%PORT_CB%%/ok/on_disconnect;
        application auth {
            live on;
            on_publish http://127.0.0.1:%%PORT_CB%%/auth/on_publish;
            on_play http://127.0.0.1:%%PORT_CB%%/auth/on_play;
            on_publish_done http://127.0.0.1:%%PORT_CB%%/ok/on_publish_done;
            on_play_done http://127.0.0.1:%%PORT_CB%%/ok/on_play_done;
            on_done http://127.0.0.1:%%PORT_CB%%/ok/on_done;
            on_update http://127.0.0.1:%%PORT_CB%%/ok/on_update;
            notify_update_timeout 2s;
        }
        application get {
            live on;
            notify_method get;
            on_publish http://127.0.0.1:%%PORT_CB%%/auth/get?x=1;
        }
        application push    { live on; on_publish http://127.0.0.1:%%PORT_CB%%/relay/%%PORT_RTMP%%/dst; }
        application dst     { live on; }
        application pushr   { live on; notify_relay_redirect on; on_publish http://127.0.0.1:%%PORT_CB%%/relay/%%PORT_RTMP%%/dst; }
        application pull    { live on; on_play http://127.0.0.1:%%PORT_CB%%/relay/%%PORT_RTMP%%/src; }
        application src     { live on; }
        application named   { live on; on_publish http://callback.test:%%PORT_CB%%/auth/named; }
        application unknown { live on; on_publish http://nosuch.test:%%PORT_CB%%/auth/unknown; }
        application down    { live on; on_publish http://127.0.0.1:%%PORT_DOWN%%/p; }
        application never   { live on; on_publish http://127.0.0.1:%%PORT_CB%%/never/p; }
        application garbage { live on; on_publish http://127.0.0.1:%%PORT_CB%%/garbage/p; }
        application err     { live on; on_publish http://127.0.0.1:%%PORT_CB%%/500/p; }
        application late    { live on; on_publish http://127.0.0.1:%%PORT_CB%%/late/p; }
        application midheader { live on; on_publish http://127.0.0.1:%%PORT_CB%%/midheader/p; }
        application huge    { live on; on_publish http://127.0.0.1:%%PORT_CB%%/huge/p; }
        application slow    { live on; on_publish http://127.0.0.1:%%PORT_CB%%/slow/p; }
        application upd {
            live on;
            on_update http://127.0.0.1:%%PORT_CB%%/refuse/update;
            notify_update_timeout 1s;
            on_publish_done http://127.0.0.1:%%PORT_CB%%/ok/upd_publish_done;
        }
    }
    server {
        listen 127.0.0.1:%%PORT_RTMP2%%;
        on_connect http://127.0.0.1:%%PORT_CB%%/refuse/on_connect;
        application live { live on; }
    }
}
CONF
$t->run;
my $port = $t->port('RTMP');
my $url = "rtmp://127.0.0.1:$port";
my ($worker) = $t->worker_pids;

sub client { Test::Nginx::RTMPClient->new(port => $port, @_) }

# Every recorded callback, or those whose fields match %want.
sub one { (calls(@_))[0] }

sub calls {
    my (%want) = @_;
    my @all = map { decode_json($_) } grep { /\S/ } split /\n/, (slurp($record) // '');
    return grep {
        my $c = $_;
        !grep { ($c->{fields}{$_} // "\0") ne $want{$_} } keys %want
    } @all;
}

# --- the shared publisher, and a player (rtmpdump, as in the capture) ---------------------
my $good = $t->ffmpeg_publish("$url/auth/good", 24, gop => 30);
ok(wait_for(sub { $t->error_log =~ m{publish: "auth/good"} }, 8), 'key "good" is allowed and publishes');
my $player_log = "$dir/rtmpdump.log";
my $player = $t->spawn($player_log, 'rtmpdump', '-r', "$url/auth/good", '--live', '-o', '/dev/null');

# --- refusals ----------------------------------------------------------------------------
my $bad = $t->ffmpeg_publish("$url/auth/bad", 10);
my $status = $t->reap($bad, 8);
ok(defined $status && $status != 0, 'key "bad" is refused: ffmpeg exits with an error');
like($t->error_log, qr/notify: publish "bad" refused \(HTTP 403\)/, '  the log says why');
ok(!calls(call => 'publish_done', name => 'bad'), '  and no publish_done follows a refused publish');

my $p = client();
$p->connect_app('auth');
is($p->play('forbidden'), 'NetStream.Play.Forbidden', 'on_play 403: the player gets NetStream.Play.Forbidden');
ok($p->closed(3), '  and is closed');

my $c2 = Test::Nginx::RTMPClient->new(port => $t->port('RTMP2'));
is($c2->connect_app('live'), 'NetConnection.Connect.Rejected', 'on_connect 403: connect is rejected');

# --- a redirect renames the stream ------------------------------------------------------
my $redirected = $t->ffmpeg_publish("$url/auth/redirectme", 12);
ok(wait_for(sub { $t->error_log =~ m{publish: "auth/renamed"} }, 8), 'on_publish 302 "renamed": the stream is published as "renamed"');
$p = client();
$p->connect_app('auth');
is($p->play('renamed'), 'NetStream.Play.Start', '  a player of "renamed" starts');
my $video;
my $deadline = time + 5;
while (!$video && time < $deadline) {
    my $m = $p->read_message($deadline - time) or last;
    $video = 1 if $m->{type} == 9;
}
ok($video, '  and gets its video');
undef $p;

# --- redirects to rtmp:// URLs: relays -------------------------------------------------------
my $relay = client();
$relay->connect_app('auth');
is($relay->publish('relayme'), 'NetStream.Publish.Start', 'a redirect to an unreachable rtmp:// server: the stream is still published here');
ok(wait_for(sub { $t->error_log =~ m{\*(\d+) relay: pushing "auth/relayme" to rtmp://127\.0\.0\.1:1/app/stream.*\n.*\[error\].* \*\1 recv\(\) failed \(111: Connection refused\)} }, 3),
    '  and the relay\'s failure is logged as an error') or diag(join "\n", grep { /relay|refused/ } split /\n/, $t->error_log);
undef $relay;

sub plays_video {
    my ($app, $name, $secs) = @_;
    my $p = client();
    $p->connect_app($app);
    my $code = $p->play($name) // '';
    my ($video, $deadline) = (0, time + $secs);
    while (time < $deadline) {
        my $m = $p->read_message($deadline - time) or last;
        $video++ if $m->{type} == 9;
        last if $video >= 20;
    }
    return ($code, $video);
}

my $pushed = $t->ffmpeg_publish("$url/push/k", 12, gop => 30);
ok(wait_for(sub { $t->error_log =~ m{relay: pushing "push/k" to rtmp://127\.0\.0\.1:\d+/dst/k} }, 8), 'on_publish 302 to rtmp://.../dst/k: a relay pushes the stream there');
my ($code, $got) = plays_video("dst", "k", 6);
is($code, 'NetStream.Play.Start', '  a player of dst/k starts');
cmp_ok($got, '>=', 20, "  and gets the pushed video ($got frames)");
($code, $got) = plays_video('push', 'k', 6);
cmp_ok($got, '>=', 20, "  the stream plays locally too ($got frames)");

my $r2 = client();
$r2->connect_app('pushr');
is($r2->publish('q'), 'NetStream.Publish.Start', 'notify_relay_redirect on: the publish goes on');
like($t->error_log, qr{notify: push "[0-9a-f]{32}" to rtmp://127\.0\.0\.1:\d+/dst/q}, '  under a local name made from the URL');
undef $r2;

my $source = $t->ffmpeg_publish("$url/src/s", 12, gop => 30);
ok(wait_for(sub { $t->error_log =~ m{publish: "src/s"} }, 8), 'a stream src/s');
($code, $got) = plays_video('pull', 's', 8);
is($code, 'NetStream.Play.Start', 'on_play 302 to rtmp://.../src/s: a player of pull/s starts');
cmp_ok($got, '>=', 20, "  and gets src/s's video through a pull relay ($got frames)");
like($t->error_log, qr{relay: pulling "pull/s" from rtmp://127\.0\.0\.1:\d+/src/s}, '  (the relay is logged)');
kill 'TERM', $pushed, $source;

# --- a callback service that fails denies within netcall_timeout (2s) --------------------
my %failing = (down => 'refused connection', never => 'no answer', garbage => 'not HTTP', err => 'HTTP 500',
               late => 'an answer after netcall_timeout', midheader => 'a reply cut mid-header');
my $rss = sub { (slurp("/proc/$worker/status") // '') =~ /VmRSS:\s+(\d+)/ ? $1 : 0 };
my $rss0 = $rss->();
my %clients;
for my $app (sort keys %failing) {
    my $c = client();
    $c->connect_app($app);
    my $msid = $c->create_stream;
    $c->command($msid, 'publish', undef, "k$app", 'live');
    $clients{$app} = $c;
}
my $t0 = time;
for my $app (sort keys %failing) {
    my $code = Test::Nginx::RTMPClient::code_of($clients{$app}->wait_command(6, 'onStatus'));
    my $took = time - $t0;
    is($code, 'NetStream.Publish.Unauthorized', "$failing{$app}: the publish is denied");
    cmp_ok($took, '<', 3.5, sprintf('  within netcall_timeout (%.1f s)', $took));
}
like($t->error_log, qr/no reply from http:\S+never\/p within 2000 ms \(netcall_timeout\)/, 'the timeout is logged');
# A 200 followed by 100 MB of body: decided on the status line and headers, the body never
# read into memory.
my $h = client();
$h->connect_app('huge');
my $th = time;
is($h->publish('khuge'), 'NetStream.Publish.Start', 'a 200 with 100 MB of body allows at once');
cmp_ok(time - $th, '<', 1.5, sprintf('  (%.1f s)', time - $th));
sleep 1;
cmp_ok($rss->() - $rss0, '<', 8 * 1024, sprintf('  the worker did not take the body in (RSS %+d kB)', $rss->() - $rss0));
# The late answer came after the publish was denied: nothing more happens.
sleep 1.5;
unlike($t->error_log, qr/publish: "late\/klate"/, '  the late answer did not let the publish through');
like($t->error_log, qr/\[error\].*notify: publish "kdown" refused: cannot connect/, 'the refused connection is logged as an error');

# --- host names through nginx's resolver (a test DNS server) -----------------------------
my $n = client();
$n->connect_app('named');
is($n->publish('k'), 'NetStream.Publish.Start', 'a callback URL with a host name: resolved by nginx\'s resolver when called');
ok((slurp($dns_log) // '') =~ /^callback\.test 1$/m, '  the DNS server was asked for it');
ok(one(call => 'publish', app => 'named'), '  and the callback came');
undef $n;
$n = client();
$n->connect_app('unknown');
is($n->publish('k'), 'NetStream.Publish.Unauthorized', 'a host name that does not resolve: denied');
like($t->error_log, qr/cannot resolve nosuch\.test/, '  the log says why');
undef $n;

# --- GET: the form is the query, the client's own arguments follow it --------------------
my $g = client();
$g->connect_app('get');
is($g->publish('k?token=abc'), 'NetStream.Publish.Start', 'notify_method get: allowed');
my ($get) = calls(call => 'publish', name => 'k', app => 'get');
is($get->{method}, 'GET', '  sent as GET');
like($get->{query}, qr/^x=1&app=get&flashver=.*&call=publish&name=k&type=live&token=abc$/, '  the form after the URL\'s own query, the client\'s arguments last');
is($get->{body}, '', '  with no body');
undef $g;

# --- 200 publishes waiting on a slow (1 s) service, while a stream keeps flowing ---------
my $burst_out = "$dir/burst.txt";
my $burst = fork // die "fork: $!";
if ($burst == 0) {
    my @c;
    for my $i (1 .. 200) {
        my $c = eval { client() } or last;
        $c->connect_app('slow') or last;
        my $msid = $c->create_stream // last;
        $c->{msid} = $msid;
        push @c, $c;
    }
    my $start = time;
    $_->command($_->{msid}, 'publish', undef, "s" . (0 + $_), 'live') for @c;
    my $ok = grep { (Test::Nginx::RTMPClient::code_of($_->wait_command(20, 'onStatus')) // '') eq 'NetStream.Publish.Start' } @c;
    open my $fh, '>', $burst_out or die;
    printf $fh "%d %d %.2f\n", scalar @c, $ok, time - $start;
    close $fh;
    POSIX::_exit(0);
}
my $watch = client();
$watch->connect_app('auth');
is($watch->play('good'), 'NetStream.Play.Start', 'a player watches "good" during the burst');
my ($last, $gap, $frames) = (undef, 0, 0);
while (waitpid($burst, POSIX::WNOHANG()) == 0) {
    my $m = $watch->read_message(2) or last;
    next unless $m->{type} == 9;
    my $now = time;
    $gap = $now - $last if defined $last && $now - $last > $gap;
    ($last, $frames) = ($now, $frames + 1);
}
waitpid($burst, 0) if alive_pid($burst);
my ($tried, $started, $took) = split ' ', (slurp($burst_out) // '0 0 0');
is($tried, 200, '200 publishers connected');
is($started, 200, sprintf('  all 200 publishes were allowed after the slow callback (%.1f s)', $took));
cmp_ok($frames, '>', 20, "  the player got $frames frames meanwhile");
cmp_ok($gap, '<', 0.5, sprintf('  never waiting more than %.0f ms for one', $gap * 1000));
undef $watch;

sub alive_pid { kill 0, $_[0] }

kill 'TERM', $player;
ok(wait_for(sub { calls(call => 'play_done', name => 'good') }, 5), 'the rtmpdump player of "good" stopped: on_play_done');

# --- on_update refusing drops the publisher ----------------------------------------------
my $upd = $t->ffmpeg_publish("$url/upd/u", 15);
$status = $t->reap($upd, 8);
ok(defined $status, 'on_update 403: the publisher is dropped');
like($t->error_log, qr/on_update refused the client, closing it/, '  the log says why');
ok(wait_for(sub { calls(call => 'publish_done', name => 'u') == 1 }, 3), '  and on_publish_done fires once');

# --- clients that vanish: the end callbacks fire exactly once -----------------------------
my $vpub = $t->ffmpeg_publish("$url/auth/vanish", 20);
ok(wait_for(sub { $t->error_log =~ m{publish: "auth/vanish"} }, 8), 'a publisher of "vanish" starts');
my $vplay = $t->spawn("$dir/vanish-play.log", 'rtmpdump', '-r', "$url/auth/vanish", '--live', '-o', '/dev/null');
ok(wait_for(sub { calls(call => 'play', name => 'vanish') }, 5), '  a player joins');
sleep 0.5;
kill 'KILL', $vpub, $vplay;
my ($pub_id) = map { $_->{fields}{clientid} } calls(call => 'publish', name => 'vanish');
my ($play_id) = map { $_->{fields}{clientid} } calls(call => 'play', name => 'vanish');
ok(wait_for(sub { calls(call => 'disconnect', clientid => $pub_id) && calls(call => 'disconnect', clientid => $play_id) }, 5),
    '  both killed: on_disconnect fires for each');
sleep 0.5;
my %count;
$count{"$_->{fields}{call} " . ($_->{fields}{clientid} // "")}++ for calls();
is($count{"publish_done $pub_id"}, 1, '  on_publish_done once for the publisher');
is($count{"done $pub_id"}, 1, '  on_done once for the publisher');
is($count{"play_done $play_id"}, 1, '  on_play_done once for the player');
is($count{"done $play_id"}, 1, '  on_done once for the player');
is($count{"disconnect $pub_id"}, 1, '  on_disconnect once for each');

# --- the forms, field by field, against nginx-rtmp-module's capture -----------------------
is($t->reap($good, 30), 0, 'the "good" publisher ran to its end');
ok(wait_for(sub { calls(call => 'publish_done', name => 'good') }, 5), 'its on_publish_done came');
my $ref = decode_json(slurp("$FindBin::Bin/../src/notify/testdata/notify-nginx-rtmp.json"))->{calls};
my %ours = (
    connect        => one(call => 'connect', app => 'auth'),
    publish        => one(call => 'publish', name => 'good'),
    play           => one(call => 'play', name => 'good', flashver => 'LNX 10,0,32,18'),
    update_publish => one(call => 'update_publish', name => 'good'),
    play_done      => one(call => 'play_done', name => 'good', flashver => 'LNX 10,0,32,18'),
    done           => one(call => 'done', name => 'good', flashver => 'LNX 10,0,32,18'),
    publish_done   => one(call => 'publish_done', name => 'good'),
);
my %varies = map { $_ => 1 } qw(clientid epoch time timestamp);
for my $call (sort keys %ours) {
    my ($r, $o) = ($ref->{$call}, $ours{$call});
    ok($o, "$call: sent") or next;
    is("$o->{method} $o->{content_type}", "$r->{method} $r->{content_type}", "$call: method and content type");
    is(join(',', @{ $o->{field_order} }), join(',', @{ $r->{field_order} }), "$call: fields in nginx-rtmp-module's order");
    my @differ;
    for my $f (@{ $r->{field_order} }) {
        next if $varies{$f};
        my $want = $r->{fields}{$f};
        $want =~ s/:29350\b/:$port/;
        # The capture's publish was key "bad" (refused); its connect was to "live".
        $want = 'good' if $f eq 'name';
        $want = 'auth' if $f eq 'app';
        $want =~ s{/live$}{/auth} if $f eq 'tcurl';
        push @differ, "$f: '$o->{fields}{$f}' ne '$want'" if ($o->{fields}{$f} // '') ne $want;
    }
    is("@differ", '', "$call: every field as nginx-rtmp-module sends it");
}
like($ours{update_publish}{fields}{time}, qr/^\d+$/, 'update_publish: time in seconds');
cmp_ok($ours{update_publish}{fields}{timestamp}, '>', 0, 'update_publish: the publisher\'s last timestamp');

# --- the worker survived everything --------------------------------------------------------
is(($t->worker_pids)[0], $worker, 'the worker pid never changed');
is(join("\n", $t->alerts), '', 'no alerts in the error log');

$t->stop;
done_testing;
