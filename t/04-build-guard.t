#!/usr/bin/perl
# A module built against an nginx tree whose configure signature differs from the nginx
# that will load it fails the build, loudly, instead of failing at the user's load_module.
# (Builds the crate once more in a temporary target directory that starts as a copy of the
# main build's: nginx-sys, ngx and the module are built again, about 35 s instead of the
# 170 s of a build from nothing.)

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Test::Nginx::RTMP;

my $src = '/usr/share/nginx/src';
plan skip_all => "no nginx-dev sources in $src" unless -f "$src/conf_flags";
plan skip_all => 'no cargo' unless qx{cargo --version 2>/dev/null};

my $t = Test::Nginx::RTMP->new;
my $dir = $t->dir;
my $root = Test::Nginx::RTMP::root();

# Debian's configure flags without --with-compat: a different module signature.
system("cp -a $src $dir/nginx") == 0 or die 'copy failed';
my $configure = qq{cd $dir/nginx && . ./conf_flags && }
    . qq{./configure \$(printf '%s\\n' "\${NGX_CONF_FLAGS[@]}" | grep -v -- --with-compat) >configure.log 2>&1};
is(system('bash', '-c', $configure), 0, 'configured an nginx tree without --with-compat');

my $main = ($ENV{CARGO_TARGET_DIR} // "$root/target") . '/release';
if (-d $main) {
    mkdir "$dir/target" or die "mkdir: $!";
    system('cp', '-a', $main, "$dir/target/") == 0 or die "cannot copy $main";
}
my $env = "NGINX_BUILD_DIR=$dir/nginx/objs CARGO_TARGET_DIR=$dir/target";
my $out = qx{cd $root && $env cargo build --release --offline 2>&1};
isnt($?, 0, 'building the module against it fails');
like($out, qr/module signature mismatch/, '  and says the module signature does not match /usr/sbin/nginx');
like($out, qr/not binary compatible/, '  and what load_module would have said');

# Without the guard, the same module is refused by nginx itself: what the guard prevents.
$out = qx{cd $root && $env NGINX_BINARY=skip cargo build --release --offline 2>&1};
is($?, 0, 'with NGINX_BINARY=skip the build goes through') or diag($out);
$t->{module} = "$dir/target/release/libngx_rtmp_rs.so";
$t->write_config("rtmp { }\n");
my ($ok, $nginx) = $t->test_config;
ok(!$ok, 'and nginx refuses to load that module');
like($nginx, qr/is not binary compatible/, '  as not binary compatible');

done_testing;
