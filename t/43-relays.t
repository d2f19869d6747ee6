#!/usr/bin/perl
# push and pull relays between real nginx instances on loopback: an origin pushes to two
# edges (one by an IP address, one by a host name resolved at load), the edges' players
# decode it, the origin's stream goes on while an edge is down, and the restarted edge is
# pushed to again; an edge pulls on its first player from a list of origins whose first
# is down, through nginx's resolver for a host name, and ends the pull after the last
# player left; a static pull runs without players; a stream no origin has is retried.
# /stat (JSON and Prometheus) shows the relays.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use HTTP::Tiny;
use JSON::PP qw(decode_json);
use Test::Nginx::RTMP qw(wait_for slurp probe);

my $o  = Test::Nginx::RTMP->new;
my $e1 = Test::Nginx::RTMP->new;
my $e2 = Test::Nginx::RTMP->new;
my ($O, $E1, $E2) = map { $_->port('RTMP') } $o, $e1, $e2;
my $down = $o->port('DOWN');    # nothing listens there
my $dir = $o->dir;

# --- configuration errors name the directive ------------------------------------------------
for my $case (
    ['push rtmp://127.0.0.1/a bogus=1;', qr/invalid value "bogus=1" in "push" directive.*unknown parameter/],
    ['pull rtmp://127.0.0.1/a static;', qr/static pull needs the local stream's name.*"pull" directive/],
    ['push rtmp://no-such-host.invalid/a;', qr/host not found: "no-such-host\.invalid" in "push" URL/],
    ['push ftp://127.0.0.1/a;', qr/"push" directive.*only rtmp:\/\/ and rtmps:\/\/ URLs/],
) {
    my ($line, $want) = @$case;
    my $t = Test::Nginx::RTMP->new;
    $t->write_config("rtmp { server { listen 127.0.0.1:%%PORT_RTMP%%; application a { live on; $line } } }");
    my ($ok, $out) = $t->test_config;
    ok(!$ok && $out =~ $want, "nginx -t refuses: $line") or diag($out);
}

# --- the tier ---------------------------------------------------------------------------------
my $dns_log = "$dir/dns.log";
$o->spawn("$dir/dns-server.log", 'python3', "$FindBin::Bin/data/dns-server.py", $o->port('DNS'), $dns_log, 'origin.test=127.0.0.1');
wait_for(sub { (slurp("$dir/dns-server.log") // '') =~ /ready/ }, 10) or BAIL_OUT('the DNS server did not start');

my $stat = 'location = /stat { rtmp_stat all; } location = /metrics { rtmp_stat all; rtmp_stat_format prometheus; }';
$o->write_config(<<"EOF");
rtmp {
    log_format relay '\$command \$app \$name \$args';
    access_log $dir/origin-access.log relay;
    server {
        listen 127.0.0.1:$O;
        application live {
            live on;
            push rtmp://127.0.0.1:$E1/live;
            push rtmp://localhost:$E2/live;
            push_reconnect 500ms;
        }
        application src { live on; idle_streams off; }
    }
}
http { access_log off; server { listen 127.0.0.1:%%PORT_HTTP%%; $stat location /control { rtmp_control all; } } }
EOF
$o->run;

$e1->write_config(<<"EOF");
rtmp {
    server {
        listen 127.0.0.1:$E1;
        application live { live on; }
        application pulled {
            live on;
            pull rtmp://127.0.0.1:$down/src;
            pull rtmp://127.0.0.1:$O/src;
            pull_reconnect 1s;
            pull_idle_timeout 2s;
        }
    }
}
http { access_log off; server { listen 127.0.0.1:%%PORT_HTTP%%; $stat } }
EOF
$e1->run;

my $dns = $o->port('DNS');
$e2->write_config(<<"EOF");
rtmp {
    server {
        listen 127.0.0.1:$E2;
        resolver 127.0.0.1:$dns valid=1s;
        application live { live on; }
        application named { live on; pull rtmp://origin.test:$O/src; }
        application mirror { live on; pull rtmp://127.0.0.1:$O/src/s name=s static; }
    }
}
http { access_log off; server { listen 127.0.0.1:%%PORT_HTTP%%; $stat } }
EOF
$e2->run;

sub get_json {
    my ($t) = @_;
    my $r = HTTP::Tiny->new(timeout => 5)->get('http://127.0.0.1:' . $t->port('HTTP') . '/stat?format=json');
    return $r->{success} ? decode_json($r->{content}) : {};
}
sub relays { @{ get_json($_[0])->{relays} // [] } }
sub metrics { HTTP::Tiny->new(timeout => 5)->get('http://127.0.0.1:' . $_[0]->port('HTTP') . '/metrics')->{content} // '' }

# Plays $url for $secs with ffmpeg (copying into an FLV): what ffprobe decodes of it.
my $nplay = 0;
sub plays {
    my ($url, $secs) = @_;
    my $file = "$dir/play-" . ++$nplay . '.flv';
    system("timeout " . ($secs + 10) . " ffmpeg -hide_banner -v error -rw_timeout 8000000 -i $url -t $secs -c copy -y $file >/dev/null 2>&1");
    my $p = probe($file);
    return $p->{video}{frames} // 0;
}

# One publisher for every check: the same encoding to the origin's live/cam and src/s.
my $pub = $o->ffmpeg_publish(undef, 75, gop => 30, tee => ["rtmp://127.0.0.1:$O/live/cam", "rtmp://127.0.0.1:$O/src/s"]);
ok(wait_for(sub { $o->error_log =~ m{relay: pushing "live/cam" to rtmp://127\.0\.0\.1:$E1/live} && $o->error_log =~ m{relay: pushing "live/cam" to rtmp://localhost:$E2/live} }, 10),
    'the origin pushes live/cam to both edges') or diag($o->error_log);

my $f = plays("rtmp://127.0.0.1:$E1/live/cam", 3);
cmp_ok($f, '>=', 45, "  a player on edge 1 decodes the pushed stream ($f frames in 3 s)");
$f = plays("rtmp://127.0.0.1:$E2/live/cam", 3);
cmp_ok($f, '>=', 45, "  a player on edge 2 (pushed to by host name) decodes it ($f frames in 3 s)");
my ($push) = grep { $_->{direction} eq 'push' && $_->{url} =~ /:$E1\// } relays($o);
ok($push && $push->{state} eq 'live' && $push->{bytes_out} > 100_000, "  the origin's /stat shows the push live, $push->{bytes_out} bytes out");
like(metrics($o), qr/^rtmp_relay_up\{direction="push",app="live",name="cam",url="rtmp:\/\/127\.0\.0\.1:$E1\/live"\} 1$/m, '  and /metrics has it up');

# An edge goes away: the origin's stream goes on; the edge back is pushed to again.
$e1->stop;
ok(wait_for(sub { $o->error_log =~ m{relay: pushing "live/cam" failed \(.*\), again in \d+ ms} }, 5), 'edge 1 stopped: the push fails and is retried') or diag($o->error_log);
$f = plays("rtmp://127.0.0.1:$O/live/cam", 3);
cmp_ok($f, '>=', 45, "  meanwhile the origin's own players decode the stream ($f frames)");
$f = plays("rtmp://127.0.0.1:$E2/live/cam", 2);
cmp_ok($f, '>=', 30, "  and so do edge 2's ($f frames)");
$e1->run;
my $back = time;
ok(wait_for(sub { grep { $_->{url} =~ /:$E1\// && $_->{state} eq 'live' } relays($o) }, 15), 'edge 1 restarted: the push is live again');
my $delay = time - $back;
cmp_ok($delay, '<=', 12, "  within the reconnect backoff ($delay s)");
$f = plays("rtmp://127.0.0.1:$E1/live/cam", 2);
cmp_ok($f, '>=', 30, "  and edge 1's players decode it again ($f frames)");
($push) = grep { $_->{url} =~ /:$E1\// } relays($o);
cmp_ok($push->{reconnects}, '>=', 1, "  /stat counts $push->{reconnects} reconnection(s), last error \"$push->{last_error}\"");
my $before = $push->{reconnects};
my $dropped = HTTP::Tiny->new->get('http://127.0.0.1:' . $o->port('HTTP') . "/control/drop/subscriber?app=live&name=cam&addr=127.0.0.1:$E1");
is($dropped->{content}, '1', '/control/drop/subscriber with the edge\'s address drops the push relay');
ok(wait_for(sub { grep { $_->{url} =~ /:$E1\// && $_->{state} eq 'live' && $_->{reconnects} > $before } relays($o) }, 10), '  which reconnects');

# Pull on demand from a list of origins whose first is down.
$f = plays("rtmp://127.0.0.1:$E1/pulled/s?token=abc", 4);
cmp_ok($f, '>=', 45, "a player of edge 1's pulled/s decodes the origin's src/s ($f frames)");
like($e1->error_log, qr{relay: pulling "pulled/s" failed \(.*\), trying the next origin}, '  after the first origin (down) failed, the second one served');
my ($pull) = grep { $_->{direction} eq 'pull' } relays($e1);
ok($pull && $pull->{url} eq "rtmp://127.0.0.1:$O/src" && $pull->{reconnects} >= 1, '  /stat shows the pull from the second origin');
ok(wait_for(sub { $e1->error_log =~ /relay: no players left, ending the pull/ }, 8), '  the pull ends after its last player left (pull_idle_timeout 2s)');
ok(wait_for(sub { !grep { $_->{direction} eq 'pull' } relays($e1) }, 3), '  and is gone from /stat');
like(slurp("$dir/origin-access.log") // '', qr/^PLAY src s token=abc$/m, '  the player\'s arguments went with the pull (the origin\'s on_play would see token=abc)');

# Through nginx's resolver: a host name resolved when the pull connects.
$f = plays("rtmp://127.0.0.1:$E2/named/s", 3);
cmp_ok($f, '>=', 45, "a pull from origin.test (nginx's resolver) plays ($f frames)");
like(slurp($dns_log) // '', qr/^origin\.test\b/m, '  (the test DNS server was asked)');

# A static pull runs from the start, with no player.
my ($static) = grep { $_->{app} eq 'mirror' } relays($e2);
ok($static && $static->{state} eq 'live', 'a static pull is live without players');
my ($mirror) = grep { $_->{name} eq 'mirror' } map { @{ $_->{applications} } } @{ get_json($e2)->{servers} };
ok($mirror && grep({ $_->{name} eq 's' && $_->{publishing} } @{ $mirror->{live}{streams} }), '  mirror/s is published on edge 2');

# A stream no origin has: the player waits, the pull is retried with backoff, then ends
# with the player.
my $none = $e1->spawn("$dir/none.log", 'ffmpeg', '-v', 'error', '-rw_timeout', '20000000', '-i', "rtmp://127.0.0.1:$E1/pulled/none", '-t', '1', '-f', 'null', '-');
ok(wait_for(sub { $e1->error_log =~ m{relay: pulling "pulled/none" failed \(NetStream\.Play\.StreamNotFound\), again in \d+ ms} }, 8),
    'a stream no origin has: the pull is retried (the origin answered StreamNotFound)') or diag($e1->error_log);
($pull) = grep { $_->{name} eq 'none' } relays($e1);
ok($pull && $pull->{last_error} eq 'NetStream.Play.StreamNotFound', "  /stat says why ($pull->{state})");
kill 'TERM', $none;
$e1->reap($none, 5);
ok(wait_for(sub { !grep { $_->{name} eq 'none' } relays($e1) }, 8), '  and it ends once its player left');

kill 'TERM', $pub;
$o->reap($pub, 5);
ok(wait_for(sub { !grep { $_->{direction} eq 'push' } relays($o) }, 5), 'the publisher left: the pushes end with the stream');
for my $t ($o, $e1, $e2) {
    is(join("\n", $t->alerts), '', 'no alerts, crits or panics in ' . ($t == $o ? 'the origin' : 'an edge'));
}
$_->stop for $o, $e1, $e2;
done_testing;
