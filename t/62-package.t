#!/usr/bin/perl
# The Debian package (scripts/package.sh, `scripts/setup.sh package`): built from this
# module, laid out as Debian's libnginx-mod-* packages are, installed into the system's
# nginx with dpkg (nginx -t of /etc/nginx passes, an nginx that loads it through
# modules-enabled takes an ffmpeg publish), then removed and purged cleanly. Depends on
# the installed nginx's ABI; conflicts with libnginx-mod-rtmp (if that is installed here,
# dpkg must refuse ours; it is set aside for the test and put back after).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use Test::Nginx::RTMP qw(wait_for slurp);

plan skip_all => 'installs a package into the system: needs root' if $> != 0;
plan skip_all => 'no dpkg' unless -x '/usr/bin/dpkg-deb' && -x '/usr/bin/dpkg';

my $root = Test::Nginx::RTMP->root;
my $deb = qx{$root/scripts/package.sh 2>&1};
chomp $deb;
ok($? == 0 && -f $deb, 'scripts/package.sh builds a package') or BAIL_OUT("package.sh: $deb");
like($deb, qr{/target/debian/libnginx-mod-rtmp-rs_[\w.+~-]+_\w+\.deb$}, '  in target/debian/');

sub field { my $v = qx{dpkg-deb -f $deb $_[0]}; chomp $v; $v }
my ($abi) = qx{dpkg-query -W -f='\${Provides}' nginx} =~ /(nginx-abi-[\w.+~-]+)/;
is(field('Package'), 'libnginx-mod-rtmp-rs', 'Package: libnginx-mod-rtmp-rs');
like(field('Depends'), qr/(^|, )\Q$abi\E(,|$)/, "Depends on the installed nginx's ABI ($abi)");
is(field('Conflicts'), 'libnginx-mod-rtmp', 'Conflicts: libnginx-mod-rtmp');
my %files = map { m{ \./(\S+)$} ? ($1 => 1) : () } qx{dpkg-deb -c $deb};
ok($files{$_}, "contains /$_") for qw(
    usr/lib/nginx/modules/ngx_rtmp_rs_module.so
    usr/share/nginx/modules-available/mod-rtmp-rs.conf
    usr/share/ngx-rtmp-rs/www/player.html
    usr/share/ngx-rtmp-rs/www/dashboard.html
    usr/share/ngx-rtmp-rs/www/vendor/hls.min.js
    usr/share/ngx-rtmp-rs/examples/nginx.conf
    usr/share/doc/libnginx-mod-rtmp-rs/copyright
    usr/share/doc/libnginx-mod-rtmp-rs/docs/directives.md
);

my $link = '/etc/nginx/modules-enabled/50-mod-rtmp-rs.conf';
my $work = tempdir(CLEANUP => 1);
sub installed { (qx{dpkg-query -W -f='\${Status}' $_[0] 2>/dev/null} // '') =~ /ok installed/ }

# libnginx-mod-rtmp (the C module, for benchmarks) installed here: dpkg must refuse ours,
# and it is set aside for the rest of the test (its package kept to put it back).
my $c_module;
if (installed('libnginx-mod-rtmp')) {
    my $v = qx{dpkg-query -W -f='\${Version}' libnginx-mod-rtmp};
    system("cd $work && apt-get download -q=2 libnginx-mod-rtmp=$v >/dev/null 2>&1");
    ($c_module) = glob("$work/libnginx-mod-rtmp_*.deb");
    plan skip_all => 'libnginx-mod-rtmp is installed and its package cannot be fetched to put it back' unless $c_module;
    my $out = qx{dpkg -i $deb 2>&1};
    ok($? != 0 && $out =~ /conflicts with libnginx-mod-rtmp|libnginx-mod-rtmp-rs conflicts/i, 'dpkg refuses it while libnginx-mod-rtmp is installed')
        or diag($out);
    system('dpkg -r libnginx-mod-rtmp >/dev/null 2>&1') == 0 or BAIL_OUT('cannot set libnginx-mod-rtmp aside');
}

END {
    # Whatever happened: our package out, the C module back as it was. (Keeping the
    # test's exit status: qx and system in an END block would set it.)
    local $?;
    system('dpkg -P libnginx-mod-rtmp-rs >/dev/null 2>&1') if installed('libnginx-mod-rtmp-rs');
    system("dpkg -i $c_module >/dev/null 2>&1") if $c_module && !installed('libnginx-mod-rtmp');
}

my $out = qx{dpkg -i $deb 2>&1};
is($?, 0, 'dpkg -i installs it') or diag($out);
ok(-f '/usr/lib/nginx/modules/ngx_rtmp_rs_module.so', '  the module in /usr/lib/nginx/modules/');
is(readlink($link), '/usr/share/nginx/modules-available/mod-rtmp-rs.conf', "  enabled: $link");
$out = qx{nginx -t 2>&1};
ok($? == 0 && $out !~ /\[(emerg|alert)\]/, "  the system's nginx -t passes with it loaded") or diag($out);

# An nginx that loads the module as the system's does (modules-enabled), with an rtmp
# block: a publish goes through.
my $t = Test::Nginx::RTMP->new;
$t->write_config(<<'CONF', raw => 1);
include /etc/nginx/modules-enabled/*.conf;
error_log %%DIR%%/error.log info;
pid %%DIR%%/nginx.pid;
events { worker_connections 64; }
rtmp {
    access_log %%DIR%%/rtmp.log;
    server {
        listen 127.0.0.1:%%PORT_RTMP%%;
        application live { live on; record all; record_path %%DIR%%; }
    }
}
CONF
chmod 0777, $t->dir;
# (Debian's own modules, e.g. libnginx-mod-stream, are enabled with a path relative to
# the prefix, modules/...: under this test's prefix too.)
symlink('/usr/lib/nginx/modules', $t->dir . '/modules') or die "symlink: $!";
$t->run;
my $pub = $t->ffmpeg_publish('rtmp://127.0.0.1:' . $t->port('RTMP') . '/live/pkg', 3);
ok(defined $t->reap($pub, 20), 'ffmpeg publishes to the packaged module');
my $flv = $t->dir . '/pkg.flv';
ok(wait_for(sub { (slurp($t->dir . '/rtmp.log') // '') =~ /PUBLISH "live" "pkg"/ }, 5), '  its session in the access log');
my $probe = Test::Nginx::RTMP::probe($flv);
ok(($probe->{video}{frames} // 0) > 60, "  and in the recording: $probe->{video}{frames} video frames") if -f $flv;
$t->stop;
is(join("\n", $t->alerts), '', '  no alert, crit or emerg in the error log');

$out = qx{dpkg -r libnginx-mod-rtmp-rs 2>&1};
is($?, 0, 'dpkg -r removes it') or diag($out);
ok(!-e '/usr/lib/nginx/modules/ngx_rtmp_rs_module.so', '  the module is gone');
ok(!-e $link && -l "$link.removed", '  disabled as Debian does (the link kept as .removed)');
$out = qx{nginx -t 2>&1};
is($?, 0, "  the system's nginx -t still passes") or diag($out);
$out = qx{dpkg -P libnginx-mod-rtmp-rs 2>&1};
is($?, 0, 'dpkg -P purges it') or diag($out);
ok(!-l "$link.removed" && !installed('libnginx-mod-rtmp-rs'), '  nothing left');

if ($c_module) {
    $out = qx{dpkg -i $c_module 2>&1};
    is($?, 0, 'libnginx-mod-rtmp is put back') or diag($out);
    ok(-l '/etc/nginx/modules-enabled/50-mod-rtmp.conf', '  and enabled again');
}
done_testing;
