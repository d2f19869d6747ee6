package Test::Nginx::Netns;

# Runs the test in a network namespace with only loopback (nothing leaves the machine,
# and WebRTC peers find nothing but 127.0.0.1): `use Test::Nginx::Netns;` re-executes the
# test under `unshare -n` with `lo` up, or skips it where that cannot be done (not root,
# no unshare, no ip). Load it before anything that opens sockets or starts processes.

use strict;
use warnings;

sub import {
    return if $ENV{NGX_RTMP_RS_NETNS};
    if ($> == 0 && system('unshare -n true >/dev/null 2>&1') == 0 && system('sh', '-c', 'command -v ip >/dev/null') == 0) {
        $ENV{NGX_RTMP_RS_NETNS} = 1;
        exec('unshare', '-n', 'sh', '-c', 'ip link set lo up && exec "$0" "$@"', $^X, $0, @ARGV) or die "exec: $!";
    }
    print "1..0 # SKIP needs root, unshare -n and ip (iproute2) for a loopback-only network namespace\n";
    exit 0;
}

1;
