package Test::Nginx::RTMP;

# The project's own test harness: runs the real nginx with the freshly built module in a
# temporary prefix, on free loopback ports, and gives tests what they need to drive it.
#
#   my $t = Test::Nginx::RTMP->new;
#   $t->write_config('rtmp { server { listen 127.0.0.1:%%PORT_RTMP%%; } }');
#   $t->run;          # starts nginx; bails out with its error log if it cannot
#   ...               # drive clients against $t->port('RTMP')
#   $t->stop;         # graceful quit
#
# %%PORT_NAME%% placeholders become free loopback ports (the same one for the same name),
# %%MODULE%% the module's path, %%DIR%% the temporary prefix.
#
# Options: wrap => [COMMAND...] runs nginx under COMMAND (e.g. t/data/no-io-uring.py).
# Environment: TEST_NGINX_BINARY (default /usr/sbin/nginx), TEST_NGINX_MODULE (default
# target/release/libngx_rtmp_rs.so), TEST_NGINX_LEAVE=1 keeps the temporary directory.
# When a test fails, the error log of every nginx it ran is shown.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use IO::Socket::IP;
use POSIX ();
use Test::More;
use Time::HiRes qw(sleep time);

use Exporter qw(import);
our @EXPORT_OK = qw(wait_for slurp alive probe decode_errors);

our $ROOT = abs_path(dirname(__FILE__) . '/../../../..');

my %used_ports;
my @all;

# A test killed by a signal must still stop its nginx: turn the usual ones into an exit
# (which runs DESTROY), and let writes to closed sockets fail instead of killing the test.
$SIG{PIPE} = 'IGNORE';
$SIG{$_} = sub { exit 1 } for qw(INT TERM HUP);

sub new {
    my ($class, %opts) = @_;
    my $dir = tempdir('ngx-rtmp-test-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{TEST_NGINX_LEAVE});
    my $self = bless {
        nginx  => $ENV{TEST_NGINX_BINARY} // '/usr/sbin/nginx',
        module => $ENV{TEST_NGINX_MODULE} // "$ROOT/target/release/libngx_rtmp_rs.so",
        dir    => $dir,
        ports  => {},
        %opts,
    }, $class;
    -x $self->{nginx} or BAIL_OUT("no nginx binary at $self->{nginx}");
    -f $self->{module} or BAIL_OUT("no module at $self->{module}: run scripts/setup.sh build");
    push @all, $self;
    return $self;
}

sub dir    { $_[0]{dir} }
sub module { $_[0]{module} }
sub root   { $ROOT }

# A free TCP port on loopback, the same one for the same name within a test.
sub port {
    my ($self, $name) = @_;
    return $self->{ports}{$name} //= do {
        my $port;
        for (1 .. 50) {
            my $s = IO::Socket::IP->new(LocalHost => '127.0.0.1', LocalPort => 0, Listen => 1)
                or die "cannot find a free port: $!";
            $port = $s->sockport;
            close $s;
            last unless $used_ports{$port}++;
        }
        $port;
    };
}

# Replaces %%PORT_NAME%%, %%MODULE%%, %%DIR%% in a config text.
sub expand {
    my ($self, $text) = @_;
    $text =~ s/%%PORT_(\w+)%%/$self->port($1)/ge;
    $text =~ s/%%MODULE%%/$self->{module}/g;
    $text =~ s/%%DIR%%/$self->{dir}/g;
    return $text;
}

# Writes nginx.conf: a standard preamble (load_module, error_log, pid, worker_processes,
# events) followed by $body; with raw => 1, $body is the whole file.
sub write_config {
    my ($self, $body, %opts) = @_;
    my $level   = $opts{log_level} // 'info';
    my $workers = $opts{workers} // 1;
    my $conf = $opts{raw} ? $body : join("\n",
        'load_module %%MODULE%%;',
        "error_log %%DIR%%/error.log $level;",
        'pid %%DIR%%/nginx.pid;',
        "worker_processes $workers;",
        'events { worker_connections 1024; }',
        '') . $body;
    $self->write_file('nginx.conf', $self->expand($conf));
    return $self;
}

sub write_file {
    my ($self, $name, $content) = @_;
    my $path = "$self->{dir}/$name";
    make_path(dirname($path));
    open my $fh, '>', $path or die "$path: $!";
    print $fh $content;
    close $fh;
    return $path;
}

sub _nginx {
    my ($self, @args) = @_;
    my @cmd = (@{ $self->{wrap} // [] }, $self->{nginx}, '-p', "$self->{dir}/", '-c', "$self->{dir}/nginx.conf", @args);
    my $out = qx{@cmd 2>&1};
    return ($? == 0, $out);
}

# Runs `nginx -t`; returns (success, output).
sub test_config { $_[0]->_nginx('-t') }

# Starts nginx (daemonised master and workers); bails out if it does not come up.
sub run {
    my ($self) = @_;
    unlink "$self->{dir}/nginx.pid";
    my ($ok, $out) = $self->_nginx();
    $self->{startup_output} = $out;
    if (!$ok || !wait_for(sub { -s "$self->{dir}/nginx.pid" }, 5)) {
        diag("nginx failed to start: $out");
        diag($self->error_log);
        BAIL_OUT('nginx did not start');
    }
    $self->{running} = 1;
    $self->{master} = $self->master_pid;
    wait_for(sub { my @w = $self->worker_pids; scalar @w }, 5);
    return $self;
}

sub master_pid {
    my ($self) = @_;
    my $pid = slurp("$self->{dir}/nginx.pid") // return undef;
    chomp $pid;
    return $pid;
}

# The worker processes of the running master, in pid order.
sub worker_pids {
    my ($self) = @_;
    my $master = $self->{master} or return ();
    return sort { $a <=> $b } map { /(\d+)/ ? $1 : () } qx{pgrep -P $master};
}

# Signals the master directly (as `nginx -s` would, but without re-reading nginx.conf,
# which may be deliberately broken): HUP reloads, QUIT stops gracefully.
sub signal {
    my ($self, $sig) = @_;
    return kill($sig, $self->{master}) == 1;
}

sub reload { $_[0]->signal('HUP') }

# Graceful stop (SIGQUIT, as `nginx -s quit`); true if the master exited within $timeout seconds.
sub stop {
    my ($self, $timeout) = @_;
    return 1 unless $self->{running};
    # Clients a test left running would hold the workers (they serve them to the end).
    kill 'TERM', @{ $self->{children} } if $self->{children};
    my $pid = $self->{master};
    $self->signal('QUIT');
    my $gone = wait_for(sub { !alive($pid) }, $timeout // 10);
    unless ($gone) {
        diag("nginx master $pid did not exit on quit; killing it");
        kill 'KILL', $pid, $self->worker_pids;
    }
    $self->{running} = 0;
    return $gone;
}

sub error_log { slurp("$_[0]{dir}/error.log") // '' }

# What nginx printed while starting (before its error_log was open).
sub startup_output { $_[0]{startup_output} // '' }

# Error log lines at alert, crit or emerg level: what a healthy run never writes.
sub alerts {
    my ($self) = @_;
    return grep { /\[(alert|crit|emerg)\]/ } split /\n/, $self->error_log;
}

# A TCP connection to loopback (or $host).
sub connect {
    my ($self, $port, $host) = @_;
    return IO::Socket::IP->new(PeerHost => $host // '127.0.0.1', PeerPort => $port, Timeout => 3);
}

# Starts a command in the background (its output to $log), returns its pid; it is killed
# when the harness goes away.
sub spawn {
    my ($self, $log, @cmd) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $log or die "$log: $!";
        open STDERR, '>&', \*STDOUT;
        exec @cmd or die "exec $cmd[0]: $!";
    }
    push @{ $self->{children} }, $pid;
    return $pid;
}

# Starts the callback service t/data/notify-server.py on port CB; returns the file it
# records every request to (one JSON line each).
sub notify_server {
    my ($self) = @_;
    my $record = "$self->{dir}/callbacks.jsonl";
    my $log = "$self->{dir}/notify-server.log";
    $self->spawn($log, 'python3', "$ROOT/t/data/notify-server.py", $self->port('CB'), $record);
    wait_for(sub { (slurp($log) // '') =~ /ready/ }, 10) or BAIL_OUT('the callback service did not start');
    return $record;
}

# Waits for a spawned command; returns its exit status, or undef if still running after
# $timeout seconds.
sub reap {
    my ($self, $pid, $timeout) = @_;
    my $status;
    wait_for(sub { my $r = waitpid($pid, POSIX::WNOHANG()); $status = $? if $r == $pid; $r != 0 }, $timeout // 10)
        or return undef;
    return $status;
}

# An ffmpeg publishing a test pattern (H.264 + AAC) to $url for $seconds, in real time.
# Options: gop, size, video => 0 or audio => 0 (one kind only), tee => [URL, ...] (the
# same encoding to several streams at once).
sub ffmpeg_publish {
    my ($self, $url, $seconds, %o) = @_;
    my $gop = $o{gop} // 60;
    my $log = $self->{dir} . '/publish-' . ++$self->{npub} . '.log';
    my ($video, $audio) = ($o{video} // 1, $o{audio} // 1);
    my @in = (
        ($video ? ('-f', 'lavfi', '-i', "testsrc2=size=" . ($o{size} // '320x240') . ":rate=30") : ()),
        ($audio ? ('-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100') : ()),
    );
    my @codecs = (
        ($video ? ('-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', $gop, '-pix_fmt', 'yuv420p') : ()),
        ($audio ? ('-c:a', 'aac', '-b:a', '64k') : ()),
    );
    my @out = $o{tee}
        # (tee needs the codec headers up front, as FLV wants them)
        ? ((map { ('-map', "$_:0") } 0 .. ($video + $audio - 1)), '-flags', '+global_header', '-f', 'tee', join('|', map { "[f=flv]$_" } @{ $o{tee} }))
        : ('-f', 'flv', $url);
    return $self->spawn($log, 'ffmpeg', '-hide_banner', '-loglevel', 'error', '-re', @in, @codecs,
        '-t', $seconds, @out);
}

# The project's default config (nginx-conf/nginx.conf) for this run: free loopback ports,
# this build's module, logs and run/ files in the temporary prefix, the repository's web
# pages. Writes it; the prefix gets a run/hls the workers can write to.
sub write_default_config {
    my ($self, %opt) = @_;
    my $conf = slurp("$ROOT/nginx-conf/nginx.conf");
    # (edit => sub { ... }: changes the shipped configuration in $_ first.)
    if ($opt{edit}) { local $_ = $conf; $opt{edit}->(); $conf = $_; }
    $conf =~ s{load_module \S+;}{load_module %%MODULE%%;};
    $conf =~ s{error_log stderr}{error_log %%DIR%%/error.log};
    $conf =~ s{pid run/nginx.pid}{pid %%DIR%%/nginx.pid};
    $conf =~ s{\blisten 1935;}{listen 127.0.0.1:%%PORT_RTMP%%;};
    $conf =~ s{rtmp://localhost:1935/}{rtmp://127.0.0.1:%%PORT_RTMP%%/}g;
    $conf =~ s{\blisten 8888;}{listen 127.0.0.1:%%PORT_HTTP%%;};
    $conf =~ s{\blisten 8889;}{listen 127.0.0.1:%%PORT_WHIP%%;};
    $conf =~ s{\bwhip_udp_listen 8889;}{whip_udp_listen 127.0.0.1:%%PORT_WHIPUDP%%;};
    # The web pages, copied into the prefix: the clone may sit where nginx's workers
    # (nobody) cannot read (a 0700 home or temporary directory).
    $conf =~ s{\broot nginx-conf/www;}{root $self->{dir}/www;}g;
    system('cp', '-r', "$ROOT/nginx-conf/www", "$self->{dir}/www") == 0 or die 'cannot copy nginx-conf/www';
    system('chmod', '-R', 'a+rX', "$self->{dir}/www") == 0 or die 'chmod failed';
    $self->write_config($conf, raw => 1);
    chmod 0755, $self->{dir};    # nginx's workers (nobody) read and write below it
    for my $d ('hls', 'dash') {
        make_path("$self->{dir}/run/$d", { mode => 0777 });
        chmod 0777, "$self->{dir}/run/$d";
    }
    return $self;
}

# With write_default_config: plays player.html?stream=STREAM (hls.js) in headless
# Chromium until its currentTime has advanced SECS seconds (or 45 s pass). Returns
# (first report playing, last report, number of reports, every report); the page
# reports every second: /report?stream=S&t=CURRENT_TIME&errors=N&fatal=...&last=...
# (...&latency=hls.js's latency) in run/access.log. QUERY (optional) is added to the page's
# query: "format=dash" plays the stream's MPD with dash.js instead.
sub hlsjs_plays {
    my ($self, $chromium, $stream, $secs, $query) = @_;
    my $dir = $self->{dir};
    my $http = 'http://127.0.0.1:' . $self->port('HTTP');
    my $pid = $self->spawn("$dir/chromium-$stream.log", $chromium, '--headless=new', '--no-sandbox', '--disable-gpu',
        '--mute-audio', '--autoplay-policy=no-user-gesture-required', '--no-first-run',
        '--disable-dev-shm-usage', "--user-data-dir=$dir/chromium-$stream", "$http/player.html?stream=$stream&report=1" . ($query ? "&$query" : ''));
    my @reports;
    wait_for(sub {
        @reports = ();
        my $log = slurp("$dir/run/access.log") // '';
        while ($log =~ m{GET /report\?stream=\Q$stream\E&t=([\d.]+)&errors=(\d+)&fatal=([^& ]*)&last=([^& ]*)([^ ]*)}g) {
            my %r = (t => $1, errors => $2, fatal => $3, last => $4);
            ($r{latency}) = $5 =~ /&latency=([\d.]+)/;
            push @reports, \%r;
        }
        my ($p) = grep { $_->{t} > 0 } @reports;
        return $p && $reports[-1]{t} - $p->{t} >= $secs;
    }, 45);
    kill 'TERM', $pid;
    waitpid($pid, 0);
    my ($playing) = grep { $_->{t} > 0 } @reports;
    return ($playing, $reports[-1] // {}, scalar @reports, \@reports);
}

# With several workers: the pid of the worker that took the client of application "live"
# that connected with flashVer TAG (from the error log; undef after 3 s without it).
sub worker_of {
    my ($self, $tag) = @_;
    my $pid;
    wait_for(sub { ($pid) = $self->error_log =~ /(\d+)#\d+: \*\d+ connect: app "live" flashver "\Q$tag\E"/; $pid }, 3);
    return $pid;
}

sub DESTROY {
    my ($self) = @_;
    kill 'TERM', @{ $self->{children} } if $self->{children};
    return unless $self->{running} && $self->{master};
    kill 'TERM', $self->{master};
    wait_for(sub { !alive($self->{master}) }, 5);
}

# Evaluates $cond every 50 ms until it is true or $timeout seconds pass; returns its value.
# Whether a process is running (a zombie, exited but not reaped, is not).
sub alive {
    my ($pid) = @_;
    return 0 unless $pid && kill(0, $pid);
    my $stat = slurp("/proc/$pid/stat") // return 0;
    return $stat !~ /^\d+ \(.*\) Z/;
}

sub wait_for {
    my ($cond, $timeout) = @_;
    my $deadline = time + ($timeout // 5);
    while (1) {
        my $v = $cond->();
        return $v if $v;
        return undef if time > $deadline;
        sleep 0.05;
    }
}

# What ffprobe decodes of a media file: { video => { codec, frames }, audio => { … } }.
sub probe {
    my ($file) = @_;
    my %by_type;
    for (qx{ffprobe -v error -count_frames -show_entries stream=codec_name,codec_type,nb_read_frames -of csv=p=0 $file 2>&1}) {
        chomp;
        my ($name, $type, $frames) = split /,/;
        $by_type{$type} = { codec => $name, frames => $frames } if $type;
    }
    return \%by_type;
}

# What ffmpeg reports while decoding a whole media file ('' when it decodes cleanly).
sub decode_errors {
    my ($file) = @_;
    return scalar qx{ffmpeg -hide_banner -v error -i $file -f null - 2>&1};
}

sub slurp {
    my ($path) = @_;
    open my $fh, '<', $path or return undef;
    local $/;
    return scalar <$fh>;
}

END {
    if (!Test::More->builder->is_passing) {
        diag("--- error log of nginx in $_->{dir}:\n" . $_->error_log) for @all;
    }
}

1;
