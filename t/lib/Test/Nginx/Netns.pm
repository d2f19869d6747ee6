package Test::Nginx::Netns;

# Runs the test in a network namespace with only loopback (nothing leaves the machine,
# and WebRTC peers find nothing but 127.0.0.1): `use Test::Nginx::Netns;` re-executes the
# test under `unshare -n` with `lo` up, or skips it where that cannot be done (not root,
# no unshare, no ip). Load it before anything that opens sockets or starts processes.

use strict;
use warnings;

#
# `use Test::Nginx::Netns 'default_route';` also gives the namespace a network interface
# with a default route (one end of a veth pair, 10.99.0.1/24, going nowhere): Chromium
# without camera permission (a viewer) takes the network as down and sends no ICE check
# when there is no default route.
sub import {
    my (undef, @opts) = @_;
    return if $ENV{NGX_RTMP_RS_NETNS};
    if ($> == 0 && system('unshare -n true >/dev/null 2>&1') == 0 && system('sh', '-c', 'command -v ip >/dev/null') == 0) {
        $ENV{NGX_RTMP_RS_NETNS} = 1;
        my $up = 'ip link set lo up' . ((grep { $_ eq 'default_route' } @opts) ? ' && ip link add ngxv0 type veth peer name ngxv1 && ip addr add 10.99.0.1/24 dev ngxv0'
            . ' && ip link set ngxv0 up && ip link set ngxv1 up && ip route add default via 10.99.0.2 dev ngxv0' : '');
        exec('unshare', '-n', 'sh', '-c', $up . ' && exec "$0" "$@"', $^X, $0, @ARGV) or die "exec: $!";
    }
    print "1..0 # SKIP needs root, unshare -n and ip (iproute2) for a loopback-only network namespace\n";
    exit 0;
}

1;
