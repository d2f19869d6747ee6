#!/usr/bin/perl
# The example tier of nginx-conf/tier/ as it is shipped (ports and paths moved): nginx's
# stream balancer spreads two publishers over two origins; an edge's RTMP players get
# both streams through pulls that try the origins in order; 50 HLS players on the edge's
# caching proxy cause one origin request per segment.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Path qw(make_path);
use HTTP::Tiny;
use POSIX ();
use Time::HiRes qw(sleep time);
use Test::Nginx::RTMP qw(wait_for slurp probe);

-f '/usr/lib/nginx/modules/ngx_stream_module.so' or plan skip_all => 'no nginx stream module (libnginx-mod-stream)';

my %inst = map { $_ => Test::Nginx::RTMP->new } qw(balancer origin-a origin-b edge);
# The shipped ports, each moved to a free one.
my %port = map { $_ => $inst{balancer}->port("P$_") } qw(1935 1936 1937 1940 8080 8081 8082);

for my $name (sort keys %inst) {
    my $t = $inst{$name};
    my $conf = slurp($t->root . "/nginx-conf/tier/$name.conf") // die "nginx-conf/tier/$name.conf: $!";
    $conf =~ s{load_module target/release/libngx_rtmp_rs\.so;}{load_module %%MODULE%%;};
    $conf =~ s{error_log stderr \w+;}{error_log %%DIR%%/error.log info;};
    $conf =~ s{pid \S+;}{pid %%DIR%%/nginx.pid;};
    $conf =~ s{\b(1935|1936|1937|1940|8080|8081|8082)\b}{$port{$1}}g;
    $conf =~ s{worker_connections \d+;}{worker_connections 1024;};
    $t->write_config($conf, raw => 1);
    chmod 0755, $t->dir;
    make_path($t->dir . "/run/tier-$name/hls", { mode => 0777 });
    chmod 0777, $t->dir . '/run', $t->dir . "/run/tier-$name", $t->dir . "/run/tier-$name/hls";
    my ($ok, $out) = $t->test_config;
    ok($ok, "nginx-conf/tier/$name.conf passes nginx -t") or diag($out);
}
$inst{$_}->run for qw(origin-a origin-b edge balancer);
my $dir = $inst{edge}->dir;

# Two publishers through the balancer (least_conn: the second goes to the other origin).
my $one = $inst{edge}->ffmpeg_publish("rtmp://127.0.0.1:$port{1935}/live/one", 60, gop => 60);
ok(wait_for(sub { $inst{'origin-a'}->error_log =~ /publish: "live\/one"/ }, 10), 'a publisher through the balancer lands on origin A');
my $two = $inst{edge}->ffmpeg_publish("rtmp://127.0.0.1:$port{1935}/live/two", 60, gop => 60);
ok(wait_for(sub { $inst{'origin-b'}->error_log =~ /publish: "live\/two"/ }, 10), 'a second one on origin B');

my $nplay = 0;
sub plays {
    my ($url, $secs) = @_;
    my $file = "$dir/play-" . ++$nplay . '.flv';
    system("timeout " . ($secs + 10) . " ffmpeg -hide_banner -v error -rw_timeout 8000000 -i $url -t $secs -c copy -y $file >/dev/null 2>&1");
    return probe($file)->{video}{frames} // 0;
}
for my $key (qw(one two)) {
    my $f = plays("rtmp://127.0.0.1:$port{1940}/live/$key", 3);
    cmp_ok($f, '>=', 45, "an RTMP player on the edge decodes live/$key ($f frames in 3 s)");
}
like($inst{edge}->error_log, qr{relay: pulling "live/two" failed \(NetStream\.Play\.StreamNotFound\), trying the next origin},
    '  live/two: origin A said it has no such stream, origin B served it');

# 50 HLS players on the edge for 8 s.
my $edge_http = "http://127.0.0.1:$port{8080}";
ok(wait_for(sub { (() = (HTTP::Tiny->new->get("$edge_http/hls/two.m3u8")->{content} // '') =~ /\.ts$/mg) >= 2 }, 20),
    'the edge serves live/two\'s HLS playlist (from origin B, through its cache)');
my @kids;
for my $n (1 .. 50) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        $SIG{TERM} = sub { POSIX::_exit(0) };
        my $http = HTTP::Tiny->new(timeout => 5);
        my ($ok, $bad, %seen) = (0, 0);
        my $end = time + 8;
        while (time < $end) {
            my $pl = $http->get("$edge_http/hls/two.m3u8");
            $pl->{success} ? $ok++ : $bad++;
            for my $seg (grep { !$seen{$_}++ } ($pl->{content} // '') =~ /^(\S+\.ts)$/mg) {
                $http->get("$edge_http/hls/$seg")->{success} ? $ok++ : $bad++;
            }
            sleep 0.5;
        }
        open my $fh, '>', "$dir/hls-player-$n" or POSIX::_exit(1);
        print $fh "$ok $bad\n";
        close $fh;
        POSIX::_exit(0);
    }
    push @kids, $pid;
}
waitpid $_, 0 for @kids;
my ($ok, $bad) = (0, 0);
for my $n (1 .. 50) {
    my ($o, $b) = split ' ', (slurp("$dir/hls-player-$n") // '0 1');
    $ok += $o;
    $bad += $b;
}
is($bad, 0, "50 HLS players on the edge: $ok answers, none failed");
my %per_segment;
my $origin_log = slurp($inst{'origin-b'}->dir . '/run/tier-origin-b-http.log') // '';
$per_segment{$_}++ for $origin_log =~ m{"GET /hls/(two-?\d+\.ts) HTTP}g;
my $max = (sort { $b <=> $a } values %per_segment)[0] // 0;
ok(keys(%per_segment) >= 3 && $max == 1, sprintf('  origin B was asked once per segment (%d segments, at most %d request each)', scalar keys %per_segment, $max))
    or diag(explain(\%per_segment));
my $playlists = () = $origin_log =~ m{"GET /hls/two\.m3u8 HTTP}g;
cmp_ok($playlists, '<=', 20, "  and $playlists times for the playlist in 8 s (cached 1 s), while the players asked about 800 times");

# What the origins tell caches.
my $origin_http = "http://127.0.0.1:$port{8082}";
my $pl = HTTP::Tiny->new->get("$origin_http/hls/two.m3u8");
is($pl->{headers}{'cache-control'}, 'public, max-age=1', 'origin B: a playlist may be cached for a second');
my ($seg) = ($pl->{content} // '') =~ /^(\S+\.ts)$/m;
my $sr = HTTP::Tiny->new->get("$origin_http/hls/" . ($seg // 'none.ts'));
ok($sr->{status} == 200 && ($sr->{headers}{'cache-control'} // '') eq 'public, max-age=31536000, immutable', '  a segment for ever (immutable)');
is($pl->{headers}{'content-type'}, 'application/vnd.apple.mpegurl', '  with the HLS content types');

kill 'TERM', $one, $two;
for my $name (sort keys %inst) {
    is(join("\n", $inst{$name}->alerts), '', "no alerts in $name");
}
$_->stop for values %inst;
done_testing;
