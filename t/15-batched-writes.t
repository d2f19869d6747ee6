#!/usr/bin/perl
# Players are written in batches, several sockets to one system call (io_uring), where
# the kernel allows it, and one writev() each where it does not (as under Docker's
# default seccomp profile, emulated with t/data/no-io-uring.py). Both ways, with and
# without merge_writes, every player gets the whole stream. One ffmpeg feeds all four.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Test::Nginx::RTMP qw(wait_for probe decode_errors slurp);
use Time::HiRes qw(sleep);

my $conf = <<'CONF';
rtmp {
    server {
        listen 127.0.0.1:%%PORT_RTMP%%;
        # (publish_notify: rtmpdump ends when told the publisher left.)
        application live {
            live on;
            publish_notify on;
        }
        application merged {
            live on;
            publish_notify on;
            merge_writes 100ms;
        }
    }
}
CONF

my $batched = Test::Nginx::RTMP->new;
my $single = Test::Nginx::RTMP->new(wrap => ['/usr/bin/python3', "$FindBin::Bin/data/no-io-uring.py"]);
$_->write_config($conf)->run for $batched, $single;

my @urls = map {
    my $port = $_->port('RTMP');
    ("rtmp://127.0.0.1:$port/live/s", "rtmp://127.0.0.1:$port/merged/s")
} $batched, $single;
my $pub = $batched->ffmpeg_publish(undef, 8, gop => 30, tee => \@urls);
ok(wait_for(sub { (() = ($batched->error_log . $single->error_log) =~ /publish: "\w+\/s"/g) == 4 }, 8),
    'ffmpeg publishes one stream to both applications of both servers');

# Six rtmpdump players of each, from the stream's start.
my $players = 6;
my %files;
for my $i (0 .. $#urls) {
    my $t = $i < 2 ? $batched : $single;
    for my $n (1 .. $players) {
        my $file = $t->dir . "/play-$i-$n.flv";
        my $pid = $t->spawn("$file.log", 'rtmpdump', '-q', '--live', '-r', $urls[$i], '-o', $file);
        push @{ $files{$urls[$i]} }, [$pid, $file, $t];
    }
}

is($batched->reap($pub, 20), 0, 'the publisher finished');
my $refused = (slurp('/proc/sys/kernel/io_uring_disabled') // 0) + 0;
for my $url (@urls) {
    my $how = $url =~ m{/merged/} ? 'merge_writes 100ms' : 'no merge';
    my $way = $url eq $urls[0] || $url eq $urls[1] ? 'batched' : 'writev';
    my ($ended, $min, $errors) = (0, undef, '');
    for (@{ $files{$url} }) {
        my ($pid, $file, $t) = @$_;
        $ended++ if defined $t->reap($pid, 8);
        my $frames = probe($file)->{video}{frames} // 0;
        $min = $frames if !defined $min || $frames < $min;
        $errors .= decode_errors($file);
    }
    is($ended, $players, "$way, $how: all $players players ended with the stream");
    ok($min >= 200, "  each got the stream: $min video frames or more (it has 240)");
    is($errors, '', '  and what they got decodes without errors');
}

SKIP: {
    skip 'this kernel refuses io_uring (kernel.io_uring_disabled)', 1 if $refused;
    unlike($batched->error_log, qr/io_uring unavailable/, 'the first server wrote in batches (its io_uring opened)');
}
like($single->error_log, qr/io_uring unavailable \(Operation not permitted/,
    'the second says io_uring is unavailable and writes each player with writev');

for my $t ($batched, $single) {
    ok($t->stop, 'nginx stops');
    is(join("\n", $t->alerts), '', '  no alert, crit or emerg in its error log');
}

done_testing;
