package Test::Nginx::RTMPClient;

# A small RTMP client for tests: plain handshake, chunked messages, AMF0, the connect /
# createStream / publish / play flow, and reading what the server sends with timestamps.
# Real broadcasters and players (ffmpeg, rtmpdump) are used for the real thing; this one
# exists to check exact protocol behaviour and to send what real clients never would.

use strict;
use warnings;

use IO::Socket::IP;
use IO::Select;
use Time::HiRes qw(time);

sub new {
    my ($class, %o) = @_;
    my $sock = IO::Socket::IP->new(
        PeerHost => $o{host} // '127.0.0.1',
        PeerPort => $o{port},
        ($o{local} ? (LocalHost => $o{local}) : ()),
        Timeout  => 3,
    ) or die "connect to $o{port}: $!";
    binmode $sock;
    my $self = bless { sock => $sock, in_chunk => 128, out_chunk => 128, cs => {}, buf => '',
        txid => 1, log => [] }, $class;
    return $self;
}

sub sock { $_[0]{sock} }

sub send_raw {
    my ($self, $bytes) = @_;
    local $SIG{PIPE} = 'IGNORE';
    my $off = 0;
    while ($off < length $bytes) {
        my $n = syswrite($self->{sock}, $bytes, length($bytes) - $off, $off);
        return 0 unless defined $n && $n > 0;
        $off += $n;
    }
    return 1;
}

# Reads exactly $n bytes within $timeout seconds (undef on EOF/timeout).
sub read_exact {
    my ($self, $n, $timeout) = @_;
    my $deadline = time + ($timeout // 5);
    my $sel = IO::Select->new($self->{sock});
    while (length($self->{buf}) < $n) {
        my $left = $deadline - time;
        return undef if $left <= 0 || !$sel->can_read($left);
        my $r = sysread($self->{sock}, my $chunk, 65536);
        return undef unless $r;
        $self->{buf} .= $chunk;
    }
    return substr($self->{buf}, 0, $n, '');
}

sub handshake {
    my ($self) = @_;
    my $c1 = pack('NN', 0, 0) . join('', map { chr(int rand 256) } 1 .. 1528);
    $self->send_raw("\x03" . $c1) or return 0;
    my $s = $self->read_exact(3073, 5) // return 0;
    return 0 unless substr($s, 0, 1) eq "\x03";
    $self->send_raw(substr($s, 1, 1536));
    return substr($s, 1537) eq $c1 ? 'plain' : 'other';
}

# --- AMF0 ---------------------------------------------------------------------------

sub amf_encode {
    my @out;
    for my $v (@_) {
        if (!defined $v) {
            push @out, "\x05";
        } elsif (ref $v eq 'HASH') {
            push @out, "\x03" . join('', map { pack('n', length $_) . $_ . amf_encode($v->{$_}) } sort keys %$v) . "\x00\x00\x09";
        } elsif (ref $v eq 'ARRAY') {     # strict array
            push @out, "\x0a" . pack('N', scalar @$v) . amf_encode(@$v);
        } elsif (ref $v eq 'SCALAR') {    # \1 / \0: boolean
            push @out, "\x01" . chr($$v ? 1 : 0);
        } elsif ($v =~ /^-?\d+(\.\d+)?$/ && $v !~ /^0\d/) {
            push @out, "\x00" . reverse(pack('d', $v));
        } else {
            push @out, "\x02" . pack('n', length $v) . $v;
        }
    }
    return join '', @out;
}

sub amf_decode {
    my ($data) = @_;
    my @vals;
    my $pos = 0;
    my $val;
    $val = sub {
        my $m = ord substr($data, $pos++, 1);
        if ($m == 0) { my $d = unpack('d', reverse substr($data, $pos, 8)); $pos += 8; return $d }
        if ($m == 1) { return ord substr($data, $pos++, 1) }
        if ($m == 2) { my $l = unpack('n', substr($data, $pos, 2)); $pos += 2 + $l; return substr($data, $pos - $l, $l) }
        if ($m == 3 || $m == 8) {
            $pos += 4 if $m == 8;
            my %h;
            while (1) {
                my $l = unpack('n', substr($data, $pos, 2));
                $pos += 2;
                if ($l == 0 && ord(substr($data, $pos, 1)) == 9) { $pos++; last }
                my $k = substr($data, $pos, $l);
                $pos += $l;
                $h{$k} = $val->();
            }
            return \%h;
        }
        if ($m == 5 || $m == 6) { return undef }
        die "AMF marker $m not handled by the test client";
    };
    while ($pos < length $data) {
        push @vals, $val->();
    }
    return @vals;
}

# --- chunks --------------------------------------------------------------------------

sub send_message {
    my ($self, %m) = @_;
    my ($csid, $type, $msid, $ts, $body) = ($m{csid} // 3, $m{type}, $m{msid} // 0, $m{ts} // 0, $m{body});
    my $cs = $self->{out_chunk};
    my $ext = $ts >= 0xffffff;
    my $out = chr($csid) . substr(pack('N', $ext ? 0xffffff : $ts), 1) . substr(pack('N', length $body), 1)
        . chr($type) . pack('V', $msid) . ($ext ? pack('N', $ts) : '');
    for (my $off = 0; $off < length($body) || $off == 0; $off += $cs) {
        $out .= chr(0xc0 | $csid) . ($ext ? pack('N', $ts) : '') if $off > 0;
        $out .= substr($body, $off, $cs);
        last if length($body) == 0;
    }
    return $self->send_raw($out);
}

sub set_chunk_size {
    my ($self, $n) = @_;
    $self->send_message(csid => 2, type => 1, body => pack('N', $n));
    $self->{out_chunk} = $n;
}

sub command {
    my ($self, $msid, $name, @args) = @_;
    my $tx = $self->{txid}++;
    $self->send_message(csid => 3, type => 20, msid => $msid, body => amf_encode($name, $tx, @args));
    return $tx;
}

# Reads the next message: { type, msid, ts, body, at, csid }; undef on EOF or timeout.
sub read_message {
    my ($self, $timeout) = @_;
    my $deadline = time + ($timeout // 5);
    while (1) {
        my $left = $deadline - time;
        return undef if $left <= 0;
        my $b0 = $self->read_exact(1, $left) // return undef;
        my $fmt = ord($b0) >> 6;
        my $csid = ord($b0) & 0x3f;
        $csid = 64 + ord($self->read_exact(1, $left)) if $csid == 0;
        if ($csid == 1) { my $x = $self->read_exact(2, $left); $csid = 64 + unpack('v', $x) }
        my $st = $self->{cs}{$csid} //= { ts => 0, delta => 0, len => 0, type => 0, msid => 0, body => '', ext => 0 };
        my $hlen = (11, 7, 3, 0)[$fmt];
        my $h = $hlen ? $self->read_exact($hlen, $left) // return undef : '';
        my $field;
        $field = unpack('N', "\0" . substr($h, 0, 3)) if $fmt <= 2;
        if ($fmt <= 1) {
            $st->{len} = unpack('N', "\0" . substr($h, 3, 3));
            $st->{type} = ord substr($h, 6, 1);
        }
        $st->{msid} = unpack('V', substr($h, 7, 4)) if $fmt == 0;
        my $has_ext = $fmt == 3 ? $st->{ext} : $field == 0xffffff;
        $st->{ext} = $has_ext if $fmt < 3;
        my $ext = $has_ext ? unpack('N', $self->read_exact(4, $left)) : undef;
        my $value = $ext // $field;
        if ($st->{body} eq '') {
            if ($fmt == 0) { $st->{ts} = $value; $st->{delta} = 0 }
            elsif ($fmt <= 2) { $st->{delta} = $value; $st->{ts} += $value }
            else { $st->{ts} += $st->{delta} }
        }
        my $want = $st->{len} - length $st->{body};
        $want = $self->{in_chunk} if $want > $self->{in_chunk};
        my $data = $self->read_exact($want, $left) // return undef;
        $st->{body} .= $data;
        next if length($st->{body}) < $st->{len};
        my $m = { type => $st->{type}, msid => $st->{msid}, ts => $st->{ts}, body => $st->{body}, at => time, csid => $csid };
        $st->{body} = '';
        if ($m->{type} == 1) {
            $self->{in_chunk} = unpack('N', $m->{body});
        }
        if ($m->{type} == 4 && substr($m->{body}, 0, 2) eq "\x00\x06") {    # ping: answer it
            $self->send_message(csid => 2, type => 4, body => "\x00\x07" . substr($m->{body}, 2, 4));
        }
        push @{ $self->{log} }, $m;
        return $m;
    }
}

# Reads until a command or data message whose first value is one of @names; returns its
# decoded values (undef on EOF/timeout).
sub wait_command {
    my ($self, $timeout, @names) = @_;
    my $deadline = time + ($timeout // 5);
    while (my $m = $self->read_message($deadline - time)) {
        next unless $m->{type} == 20 || $m->{type} == 18;
        my @v = amf_decode($m->{body});
        return \@v if grep { defined $v[0] && $v[0] eq $_ } @names;
    }
    return undef;
}

# The status code of a reply ({code} of its info object), or the command name.
sub code_of {
    my ($v) = @_;
    return undef unless $v;
    for (@$v) { return $_->{code} if ref $_ eq 'HASH' && defined $_->{code} }
    return $v->[0];
}

sub connect_app {
    my ($self, $app, %extra) = @_;
    $self->handshake or return undef;
    $self->command(0, 'connect', { app => $app, tcUrl => "rtmp://127.0.0.1/$app", flashVer => 'TEST 1,0,0,0', %extra });
    return code_of($self->wait_command(5, '_result', '_error'));
}

sub create_stream {
    my ($self) = @_;
    $self->command(0, 'createStream', undef);
    my $r = $self->wait_command(5, '_result', '_error') or return undef;
    return $r->[0] eq '_result' ? $r->[3] : undef;
}

sub publish {
    my ($self, $name) = @_;
    my $msid = $self->create_stream // return undef;
    $self->{msid} = $msid;
    $self->command($msid, 'publish', undef, $name, 'live');
    return code_of($self->wait_command(5, 'onStatus'));
}

sub play {
    my ($self, $name) = @_;
    my $msid = $self->create_stream // return undef;
    $self->{msid} = $msid;
    $self->command($msid, 'play', undef, $name, -2);
    while (my $v = $self->wait_command(5, 'onStatus')) {
        my $code = code_of($v);
        return $code unless $code eq 'NetStream.Play.Reset';
    }
    return undef;
}

# Whether the server closed the connection (EOF or reset) within $timeout seconds.
sub closed {
    my ($self, $timeout) = @_;
    my $deadline = time + ($timeout // 3);
    my $sel = IO::Select->new($self->{sock});
    while (time < $deadline) {
        next unless $sel->can_read($deadline - time);
        my $r = sysread($self->{sock}, my $x, 65536);
        return 1 if !$r;
    }
    return 0;
}

1;
