#!/usr/bin/perl
# Plays an RTMP stream and logs when each video frame arrived ("TIMESTAMP_MS WALLCLOCK
# HEADER", HEADER 1 for an AVC sequence header rather than a picture).
#   probe.pl HOST PORT APP NAME LOG SECONDS

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use Test::Nginx::RTMPClient;
use Time::HiRes qw(time);
use IO::Handle;

my ($host, $port, $app, $name, $logfile, $secs) = @ARGV;
my $c = Test::Nginx::RTMPClient->new(host => $host, port => $port);
$c->connect_app($app) or die 'connect failed';
my $code = $c->play($name) // '';
die "play: $code" unless $code eq 'NetStream.Play.Start';
open my $log, '>', $logfile or die $!;
$log->autoflush(1);
my $end = time + $secs;
while (time < $end) {
    my $m = $c->read_message($end - time) // last;
    @{ $c->{log} } = ();
    printf $log "%d %.6f %d\n", $m->{ts}, $m->{at}, substr($m->{body}, 1, 1) eq "\0" ? 1 : 0 if $m->{type} == 9;
    # acknowledge as a player would, so the server's window does not stall
    $c->{got} += length $m->{body};
    if ($c->{got} > 2_000_000) { $c->send_message(csid => 2, type => 3, body => pack('N', $c->{got} % 2**32)); $c->{got} = 0 }
}
