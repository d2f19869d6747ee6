#!/usr/bin/perl
# Every directive of nginx-rtmp-module is known by name and context; the core ones take
# their valid forms and nginx -t rejects bad values, wrong contexts, duplicates and unknown
# directives with a message naming the directive and FILE:LINE; the ones not implemented
# yet fail nginx -t naming themselves, never silently ignored.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Test::Nginx::RTMP qw(slurp);

my $t = Test::Nginx::RTMP->new;

# nginx -t on a config made of $body; returns (ok, output).
sub check {
    my ($body) = @_;
    $t->write_config($body);
    return $t->test_config;
}

sub rtmp_conf {
    my (%at) = @_;    # main / server / app: text to put at that level
    return <<"CONF";
rtmp {
    $at{main}
    server {
        listen 127.0.0.1:%%PORT_RTMP%%;
        $at{server}
        application live {
            $at{app}
        }
    }
}
CONF
}

sub accepts {
    my ($where, $line, $name) = @_;
    my ($ok, $out) = check(rtmp_conf(main => '', server => '', app => '', $where => $line));
    ok($ok, "accepted in $where: $line") or diag($out);
}

sub rejects {
    my ($conf, $re, $name) = @_;
    my ($ok, $out) = check($conf);
    ok(!$ok, "rejected: $name");
    like($out, qr/$re.* in \S+nginx\.conf:\d+/, "  with a message naming it and FILE:LINE") or diag($out);
}

# --- valid forms of the implemented directives -------------------------------------
my @valid = (
    [server => 'busy on;'],
    [main   => 'handshake_timeout 5s;'],
    [server => 'handshake_timeout 500ms;'],
    [main   => 'play_time_fix off;'],
    [app    => 'publish_time_fix off;'],
    [main   => 'access_log off;'],
    [app    => 'access_log /tmp/rtmp-access.log;'],
    [server => 'access_log /tmp/rtmp-access.log combined;'],
    [main   => 'log_format short \'$app $name $bytes_sent\';'],
    [main   => 'chunk_size 128;'],
    [server => 'chunk_size 65536;'],
    [main   => 'timeout 30s;'],
    [server => 'timeout "1m 30s";'],
    [server => 'timeout 60;'],
    [server => 'ping 0;'],
    [server => 'ping 3m;'],
    [main   => 'ping_timeout 500ms;'],
    [server => 'max_streams 64;'],
    [server => 'ack_window 2500000;'],
    [server => 'max_message 2m;'],
    [server => 'max_message 524288;'],
    [server => 'out_queue 512;'],
    [server => 'out_cork 8;'],
    [server => 'buflen 5s;'],
    [main   => 'so_keepalive on;'],
    [server => 'so_keepalive off;'],
    [main   => 'max_connections 1000;'],
    [server => 'max_connections 10;'],
    [app    => 'max_connections 10;'],
    [app    => 'allow publish 127.0.0.1; deny publish all;'],
    [app    => 'allow play 10.0.0.0/8; deny play all;'],
    [server => 'allow 192.168.0.0/16; allow ::1; deny all;'],
    [main   => 'deny play 2001:db8::/32;'],
    [server => 'listen 127.0.0.1:%%PORT_SECOND%% bind;'],
    [server => 'listen [::1]:%%PORT_V6%%;'],
    [server => 'listen [::1]:%%PORT_V6B%% ipv6only=on so_keepalive=on;'],
    [server => 'listen 127.0.0.1:%%PORT_KA%% so_keepalive=30s:10s:5;'],
    [server => 'listen 127.0.0.1:%%PORT_BL%% backlog=1024;'],
    [server => 'listen 127.0.0.1:%%PORT_SB%% sndbuf=64k rcvbuf=128k;'],
    [app    => 'live on; meta copy; wait_key on; wait_video on; publish_notify on; idle_streams off;'],
    [app    => 'play_restart on; interleave on; drop_idle_publisher 10s; sync 10ms; buffer 1s;'],
    [main   => 'live off; meta off; stream_buckets 1024; gop_cache off; merge_writes 100ms; merge_reads off;'],
    [main   => 'drain_timeout 2s;'],
    [main   => 'drain_timeout off;'],
    [server => 'gop_cache on; merge_writes 0; merge_reads 100ms;'],
    [app    => 'live on; merge_reads auto;'],
    [app    => 'hls on; hls_path /tmp/hls; hls_fragment 3; hls_playlist_length 60; hls_max_fragment 30s;'],
    [app    => 'hls on; hls_path hls; hls_muxdelay 1s; hls_sync 100ms; hls_continuous off; hls_nested on;'],
    [server => 'hls_fragment_naming timestamp; hls_fragment_naming_granularity 1000; hls_fragment_slicing aligned;'],
    [main   => 'hls_type event; hls_max_audio_delay 500ms; hls_audio_buffer_size 512k; hls_cleanup off;'],
    [app    => 'hls_variant _low BANDWIDTH=160000; hls_variant _hi BANDWIDTH=2048000,RESOLUTION=1280x720;'],
    [app    => 'hls_base_url http://cdn.example.com/hls/; hls_keys on; hls_key_path /tmp/keys;'],
    [app    => 'hls_key_url https://keys.example.com/; hls_fragments_per_key 10;'],
    [server => 'on_connect http://127.0.0.1:8080/connect; on_disconnect 127.0.0.1/disconnect;'],
    [main   => 'netcall_timeout 3s; netcall_buffer 4k; notify_method get;'],
    [main   => 'resolver 127.0.0.1 [::1]:5353 valid=30s ipv6=off; on_publish http://auth.invalid/p;'],
    [server => 'resolver 127.0.0.53;'],
    [app    => 'on_publish http://localhost:8080/auth?x=1; on_play http://[::1]:8080/play; on_done http://127.0.0.1;'],
    [app    => 'on_publish_done http://127.0.0.1/a; on_play_done http://127.0.0.1/b; on_update http://127.0.0.1/c;'],
    [app    => 'notify_method POST; notify_update_timeout 10s; notify_update_strict on; notify_relay_redirect off;'],
    [app    => 'record all; record_path /tmp/rec; record_suffix -%Y%m%d-%H%M%S.flv; record_unique off; record_append on;'],
    [app    => 'record audio keyframes; record_path rec; record_lock on; record_max_size 128K; record_max_frames 100;'],
    [server => 'record_interval 30m; record_notify on; record off;'],
    [app    => 'record manual; record_path /tmp/rec; recorder hd { record video; record_path /tmp/hd; on_record_done http://127.0.0.1/d; } recorder aud { record audio; }'],
);
accepts(@$_) for @valid;

my ($ok, $out) = check(<<'CONF');
rtmp {
    server { listen 127.0.0.1:%%PORT_A%%; application one { } application two { } }
    server { listen 127.0.0.1:%%PORT_B%%; listen 127.0.0.1:%%PORT_C%%; application one { } }
}
CONF
ok($ok, 'several servers, several listens and applications') or diag($out);

# --- invalid values ------------------------------------------------------------------
my @invalid = (
    ['chunk_size 0;',          'chunk_size'],
    ['chunk_size 127;',        'chunk_size'],
    ['chunk_size 4k2;',        'chunk_size'],
    ['chunk_size 2147483648;', 'chunk_size'],
    ['timeout 10x;',           'timeout'],
    ['timeout 0;',             'timeout'],
    ['ping -1;',               'ping'],
    ['ping_timeout abc;',      'ping_timeout'],
    ['max_streams 0;',         'max_streams'],
    ['ack_window x;',          'ack_window'],
    ['max_message 1g;',        'max_message'],
    ['max_message 16m;',       'max_message'],
    ['out_queue 0;',           'out_queue'],
    ['out_cork -5;',           'out_cork'],
    ['buflen 1.5s;',           'buflen'],
    ['so_keepalive yes;',      'so_keepalive'],
    ['max_connections none;',  'max_connections'],
    ['allow publish 300.1.1.1;', 'allow'],
    ['deny record all;',       'deny'],
    ['allow 10.0.0.0/33;',     'allow'],
    ['listen 99999;',          'listen'],
    ['listen 127.0.0.1:x;',    'listen'],
    ['listen 127.0.0.1:%%PORT_X%% reuse;', 'listen'],
    ['listen 127.0.0.1:%%PORT_X%% ipv6only=on;', 'listen'],
    ['listen unix:/tmp/rtmp.sock;', 'listen'],
    ['chunk_size 1 2;',        'chunk_size'],
    ['timeout;',               'timeout'],
    ['live yes;',              'live'],
    ['meta full;',             'meta'],
    ['drop_idle_publisher x;', 'drop_idle_publisher'],
    ['merge_writes 5s;',       'merge_writes'],
    ['merge_reads 2s;',        'merge_reads'],
    ['merge_reads often;',     'merge_reads'],
    ['gop_cache 1;',           'gop_cache'],
    ['stream_buckets 0;',      'stream_buckets'],
    ['hls maybe;',             'hls'],
    ['hls_fragment 0;',        'hls_fragment'],
    ['hls_fragment_naming random;', 'hls_fragment_naming'],
    ['hls_fragment_slicing x;', 'hls_fragment_slicing'],
    ['hls_type vod;',          'hls_type'],
    ['hls_audio_buffer_size 1g;', 'hls_audio_buffer_size'],
    ['hls_variant _x BANDWIDTH;', 'hls_variant'],
    ['hls_variant a/b BANDWIDTH=1;', 'hls_variant'],
    ['hls_fragments_per_key -1;', 'hls_fragments_per_key'],
    ['on_publish ftp://127.0.0.1/auth;', 'on_publish'],
    ['on_play http://127.0.0.1:0/;', 'on_play'],
    ['on_connect http://no-such-host.invalid/x;', 'on_connect'],
    ['notify_method put;',     'notify_method'],
    ['netcall_timeout 0;',     'netcall_timeout'],
    ['netcall_buffer 2g;',     'netcall_buffer'],
    ['notify_update_strict 1;', 'notify_update_strict'],
    ['record sometimes;',      'record'],
    ['record off all;',        'record'],
    ['record_suffix a/b.flv;', 'record_suffix'],
    ['record_max_size lots;',  'record_max_size'],
    ['record_interval x;',     'record_interval'],
    ['record_lock 1;',         'record_lock'],
    ['resolver 127.0.0.1 valid=x;', 'resolver'],
    ['resolver 127.0.0.1 ipv6=maybe;', 'resolver'],
);
for (@invalid) {
    my ($line, $name) = @$_;
    rejects(rtmp_conf(server => $line, main => '', app => ''), qr/"$name"/, $line);
}

# --- contexts, duplicates, unknown names ---------------------------------------------
rejects(rtmp_conf(main => 'listen 1935;', server => '', app => ''), qr/"listen" directive is not allowed here/, 'listen in rtmp {}');
rejects(rtmp_conf(app => 'chunk_size 4096;', main => '', server => ''), qr/"chunk_size" directive is not allowed here/, 'chunk_size in application');
rejects(rtmp_conf(app => 'timeout 5s;', main => '', server => ''), qr/"timeout" directive is not allowed here/, 'timeout in application');
rejects(rtmp_conf(app => 'on_connect http://127.0.0.1/c;', main => '', server => ''), qr/"on_connect" directive is not allowed here/, 'on_connect in application (it is per server)');
rejects(rtmp_conf(main => 'application x { }', server => '', app => ''), qr/"application" directive is not allowed here/, 'application in rtmp {}');
rejects(rtmp_conf(app => 'application y { }', main => '', server => ''), qr/"application" directive is not allowed here/, 'nested application');
rejects(rtmp_conf(server => 'server { }', main => '', app => ''), qr/"server" directive is not allowed here/, 'server in server');
rejects("http { rtmp { } }", qr/"rtmp" directive is not allowed here/, 'rtmp inside http');
rejects("chunk_size 4096;", qr/"chunk_size" directive is not allowed here/, 'chunk_size outside rtmp {}');
rejects(rtmp_conf(server => 'chunk_size 4096; chunk_size 8192;', main => '', app => ''), qr/"chunk_size" directive is duplicate/, 'duplicate chunk_size');
rejects(rtmp_conf(main => 'max_connections 5;', app => 'max_connections 6;', server => ''), qr/"max_connections" directive is duplicate/, 'max_connections twice (it is global)');
rejects(rtmp_conf(main => 'drain_timeout soon;', app => '', server => ''), qr/invalid value "soon" in "drain_timeout" directive/, 'drain_timeout soon');
rejects(rtmp_conf(server => 'drain_timeout 1s;', main => '', app => ''), qr/"drain_timeout" directive is not allowed here/, 'drain_timeout in a server (it is for the whole rtmp block)');
rejects(rtmp_conf(server => 'listen 127.0.0.1:%%PORT_RTMP%%;', main => '', app => ''), qr/duplicate "listen 127\.0\.0\.1:\d+"/, 'the same listen twice');
rejects(rtmp_conf(server => 'listen %%PORT_RTMP%%;', main => '', app => ''), qr/conflicting "listen \d+"/, 'a wildcard listen over a specific one');
rejects(<<'CONF', qr/duplicate "listen 127\.0\.0\.1:\d+".* \(in server #1\)/, 'the same listen in two servers');
rtmp {
    server { listen 127.0.0.1:%%PORT_A%%; }
    server { listen 127.0.0.1:%%PORT_A%%; }
}
CONF
rejects(rtmp_conf(server => 'application live { }', main => '', app => ''), qr/duplicate application "live"/, 'two applications of one name');
rejects(rtmp_conf(app => 'exec_kill_signal nope;', main => '', server => ''), qr/invalid value "nope" in "exec_kill_signal" directive/, 'exec_kill_signal takes a signal');
rejects(rtmp_conf(app => 'exec_stall_timeout 10ms;', main => '', server => ''), qr/invalid value "10ms" in "exec_stall_timeout" directive/, 'exec_stall_timeout: at least 1s or off');
{
    my ($ok, $out) = check(rtmp_conf(app => 'exec /nonexistent/ffmpeg -i x;', main => '', server => ''));
    ok(!$ok && $out =~ /exec: program "\/nonexistent\/ffmpeg" not found/, 'exec with a program that is not there fails nginx -t') or diag($out);
}
rejects("rtmp { }\nrtmp { }", qr/"rtmp" directive is duplicate/, 'two rtmp blocks');
rejects(rtmp_conf(app => 'no_such_directive on;', main => '', server => ''), qr/unknown directive "no_such_directive"/, 'an unknown directive');
rejects(rtmp_conf(server => 'chunk_size 4096', main => '', app => ''), qr/unexpected "\}"|not terminated/, 'a missing semicolon');

# Line numbers point at the offending line.
($ok, $out) = check(rtmp_conf(main => '', server => "ping 10s;\n        ping_timeout 2x;", app => ''));
my @lines = split /\n/, slurp($t->dir . '/nginx.conf');
my ($line) = grep { $lines[$_ - 1] =~ /ping_timeout 2x/ } 1 .. @lines;
like($out, qr/"ping_timeout".* in \S+nginx\.conf:$line\b/, "the error names line $line, where ping_timeout is");

# --- every nginx-rtmp-module directive is known -------------------------------------
my %sample = (flag => 'on', msec => '10s', size => '1m', num => '10', str => '/tmp/x', enum => 'on',
              custom => 'x', bitmask => 'all');
my %implemented = map { $_ => 1 } qw(rtmp server listen application allow deny timeout ping
    ping_timeout max_streams ack_window chunk_size max_message out_queue out_cork buflen
    so_keepalive max_connections live meta wait_key wait_video publish_notify idle_streams
    play_restart interleave drop_idle_publisher sync buffer stream_buckets netcall_timeout
    netcall_buffer on_connect on_disconnect on_publish on_play on_publish_done on_play_done on_done
    on_update notify_method notify_update_timeout notify_update_strict notify_relay_redirect
    on_record_done record record_path record_suffix record_unique record_append record_lock
    record_max_size record_max_frames record_interval record_notify recorder rtmp_stat
    rtmp_stat_stylesheet rtmp_control exec exec_push exec_pull exec_publish exec_publish_done exec_play
    exec_play_done exec_record_done exec_static respawn respawn_timeout exec_kill_signal exec_options
    busy play_time_fix publish_time_fix access_log log_format push pull push_reconnect pull_reconnect
    session_relay relay_buffer play play_temp_path play_local_path rtmp_auto_push
    rtmp_auto_push_reconnect rtmp_socket_dir),
    grep { /^(hls|dash)/ } map { (split /\t/)[0] } do { open my $f, '<', "$FindBin::Bin/data/directives-nginx-rtmp.tsv" or die $!; <$f> };
open my $tsv, '<', "$FindBin::Bin/data/directives-nginx-rtmp.tsv" or die $!;
my $count = 0;
while (<$tsv>) {
    next if /^#/ || /^directive\t/;
    chomp;
    my ($name, $module, $contexts, $args, $kind) = split /\t/;
    $count++;
    next if $implemented{$name};
    my ($where) = split /,/, $contexts;
    my $arg = $args =~ /^2/ ? "$sample{$kind} x" : $args =~ /^0/ ? '' : $sample{$kind};
    my $stmt = $args =~ /block/ ? "$name $arg { }" : "$name $arg;";
    my $conf = $where eq 'main'        ? "$stmt\n"
             : $where eq 'http'        ? "http { $stmt }\n"
             : $where eq 'rtmp'        ? rtmp_conf(main => $stmt, server => '', app => '')
             : $where eq 'server'      ? rtmp_conf(server => $stmt, main => '', app => '')
             : $where eq 'application' ? rtmp_conf(app => $stmt, main => '', server => '')
             : die "context $where";
    my ($ok, $out) = check($conf);
    ok(!$ok && $out =~ /"\Q$name\E" directive is not supported yet by ngx-rtmp-rs \(.+ is not implemented\) in \S+nginx\.conf:\d+/,
        "$name ($where): known, and refused as not supported yet") or diag($out);
}
is($count, 118, 'all 118 directives of nginx-rtmp-module were checked');

# --- the multi-worker directives (top level) ----------------------------------------------
($ok, $out) = check("rtmp_auto_push on;\nrtmp_auto_push_reconnect 1s;\nrtmp_socket_dir /var/run;\n" . rtmp_conf(main => '', server => '', app => ''));
ok($ok, 'rtmp_auto_push, rtmp_auto_push_reconnect and rtmp_socket_dir are accepted') or diag($out);
unlike($out, qr/worker_processes|sees only/, 'and nginx does not warn about several workers');
rejects("rtmp_auto_push maybe;\n", qr/invalid value "maybe" in "rtmp_auto_push" directive/, 'rtmp_auto_push takes on or off');
rejects("rtmp_auto_push_reconnect 0;\n", qr/"rtmp_auto_push_reconnect" directive: "0" is not a time/, 'rtmp_auto_push_reconnect takes a time');
rejects("rtmp_socket_dir relative/dir;\n", qr/"rtmp_socket_dir" directive: "relative\/dir" must be an absolute directory/, 'rtmp_socket_dir takes an absolute path');

# --- a typical nginx-rtmp-module live config is accepted --------------------------------
($ok, $out) = check(<<'CONF');
rtmp {
    server {
        listen 127.0.0.1:%%PORT_RTMP%%;
        chunk_size 4000;
        application live {
            live on;
            meta copy;
            wait_key on;
            wait_video on;
            drop_idle_publisher 10s;
            allow publish 127.0.0.1;
            deny publish all;
            allow play all;
        }
    }
}
CONF
ok($ok, 'a live-only nginx-rtmp-module config passes nginx -t') or diag($out);

# --- a typical nginx-rtmp-module config (as popular Docker images ship it) -----------
($ok, $out) = check(<<'CONF');
rtmp {
    server {
        listen 127.0.0.1:%%PORT_RTMP%%;
        chunk_size 4000;
        application live {
            live on;
            record all;
            record_path /tmp/rec;
            on_publish http://127.0.0.1:8080/auth;
            exec ffmpeg -i rtmp://localhost/live/$name -c copy -f flv rtmp://localhost/hls/$name;
            push rtmp://127.0.0.1/other;
        }
        application hls {
            live on;
            hls on;
            hls_path /tmp/hls;
            hls_fragment 3;
            hls_playlist_length 60;
        }
    }
}
http {
    server {
        listen 127.0.0.1:%%PORT_HTTP%%;
        location /stat { rtmp_stat all; rtmp_stat_stylesheet stat.xsl; }
    }
}
CONF
ok($ok, 'a typical nginx-rtmp-module config (exec, record, HLS, on_publish, push, /stat) passes nginx -t') or diag($out);

($ok, $out) = check(rtmp_conf(main => '', server => '', app => 'hls on;'));
ok(!$ok && $out =~ /"hls" is on in application "\w+" but "hls_path" is not set/, 'hls on without hls_path fails nginx -t') or diag($out);
# --- the http {} directives -------------------------------------------------------------
($ok, $out) = check(<<'CONF');
rtmp { server { listen 127.0.0.1:%%PORT_RTMP%%; application live { live on; } } }
http {
    server {
        listen 127.0.0.1:%%PORT_HTTP%%;
        location /stat { rtmp_stat all; rtmp_stat_stylesheet stat.xsl; }
        location /stat2 { rtmp_stat live clients; rtmp_stat_format json; }
        location /metrics { rtmp_stat global live; rtmp_stat_format prometheus; }
        location /control { rtmp_control record drop redirect; }
        location /hls/ { rtmp_hls_viewers on; }
    }
}
CONF
ok($ok, 'rtmp_stat, rtmp_stat_stylesheet, rtmp_stat_format, rtmp_control, rtmp_hls_viewers') or diag($out);
for (['rtmp_stat everything;', 'rtmp_stat'], ['rtmp_stat_format yaml;', 'rtmp_stat_format'],
     ['rtmp_control kill;', 'rtmp_control'], ['rtmp_hls_viewers maybe;', 'rtmp_hls_viewers'],
     ['rtmp_stat all; rtmp_stat live;', 'rtmp_stat']) {
    my ($line, $name) = @$_;
    rejects("http { server { listen 127.0.0.1:%%PORT_HTTP%%; location / { $line } } }", qr/"$name"/, $line);
}

# WHIP: the endpoint per location, the sidecar's settings once per http block.
($ok, $out) = check(<<'CONF');
rtmp { server { listen 127.0.0.1:%%PORT_RTMP%%; application live { live on; } } }
http {
    whip_udp_listen 127.0.0.1:%%PORT_UDP%%;
    whip_candidate 203.0.113.7;
    whip_ice_server stun:stun.example.net:3478;
    whip_ice_server turn:turn.example.net user secret;
    whip_max_sessions 20;
    whip_max_sessions_per_ip 2;
    whip_max_sdp 64k;
    whip_ice_timeout 10s;
    whip_timeout 5s;
    whip_keyframe_interval 0;
    server {
        listen 127.0.0.1:%%PORT_HTTP%%;
        location ~ /whip { whip_publish live; }
        location /fixed/ { whip_publish live cam-$arg_n; }
    }
}
CONF
ok($ok, 'whip_publish and every whip_* setting') or diag($out);
($ok, $out) = check("rtmp { server { listen 127.0.0.1:%%PORT_RTMP%%; application live { live on; } } }\n"
    . "http { server { listen 127.0.0.1:%%PORT_HTTP%%; location / { whip_publish nosuch; } } }");
ok(!$ok && $out =~ /"whip_publish" names application "nosuch", which no rtmp server has, in \S+nginx\.conf:\d+/,
    'whip_publish of an application that does not exist fails nginx -t, naming where') or diag($out);
for (['location / { whip_publish a/b; }', 'whip_publish'], ['location / { whip_publish live; whip_publish live; }', 'whip_publish'],
     ['whip_udp_listen 0;', 'whip_udp_listen'], ['whip_udp_listen 1.2.3.4;', 'whip_udp_listen'],
     ['whip_candidate example.com;', 'whip_candidate'], ['whip_candidate 0.0.0.0;', 'whip_candidate'],
     ['whip_ice_server http://x;', 'whip_ice_server'], ['whip_ice_server turn:t user;', 'whip_ice_server'],
     ['whip_max_sessions 0;', 'whip_max_sessions'], ['whip_max_sdp 10;', 'whip_max_sdp'],
     ['whip_timeout 0;', 'whip_timeout'], ['whip_ice_timeout forever;', 'whip_ice_timeout'],
     ['whip_timeout 5s; whip_timeout 6s;', 'whip_timeout'], ['location / { whip_timeout 5s; }', 'whip_timeout']) {
    my ($line, $name) = @$_;
    rejects("http { server { listen 127.0.0.1:%%PORT_HTTP%%; $line } }", qr/"$name"/, $line);
}

($ok, $out) = check(rtmp_conf(main => '', server => '', app => 'record all;'));
ok(!$ok && $out =~ /"record" is on in application "\w+" but "record_path" is not set/, 'record without record_path fails nginx -t') or diag($out);
($ok, $out) = check(rtmp_conf(main => '', server => '', app => 'record_path /tmp; recorder a { record all; } recorder a { }'));
ok(!$ok && $out =~ /duplicate recorder "a"/, 'two recorders of one name fail nginx -t') or diag($out);

done_testing;
