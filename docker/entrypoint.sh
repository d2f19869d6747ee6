#!/usr/bin/env bash
# The Docker image's entrypoint: renders the nginx configuration from the environment,
# checks it with `nginx -t`, then runs nginx in the foreground (tini, PID 1, forwards
# `docker stop`'s SIGQUIT: a graceful quit).
#
#   STREAM_KEY_VALIDATION  true|false (default true): check stream keys at publish
#   AUTH_URL               with validation: an HTTP service asked on every publish
#                          (nginx-rtmp-module's on_publish; 2xx allows)
#   STREAM_KEYS            with validation and no AUTH_URL: the keys allowed, separated by
#                          spaces or commas
#   STREAM_KEYS_FILE       ... or a file of them, one per line (# comments allowed)
#   RECORDING_ENABLED      true|false (default false): record every stream to /recordings
#   MAX_CONNECTIONS        1..1000000 (default 1000): RTMP connections at once
#   WHIP_CANDIDATE         the IP address WebRTC clients reach the host on (the address
#                          put in WHIP answers; default: the address the client used)
#   WHIP_UDP_PORT          WHIP's one UDP port (default: WHIP_PORT, 8889)
#   DRAIN_TIMEOUT          on `docker stop`, how long live publishers may go on before
#                          they are closed cleanly (drain_timeout; default 5s, "off": until
#                          they leave; keep it under the stop grace period)
#
# `entrypoint.sh render` only writes the configuration (the tests use it; paths and ports
# can then be moved with NGX_CONF_DIR, HLS_DIR, RECORD_DIR, WWW_DIR, MODULE, RTMP_PORT,
# HTTP_PORT, WHIP_PORT, NGINX_USER).
set -euo pipefail

die() {
    echo "ngx-rtmp-rs: $*" >&2
    exit 64
}

bool() {
    local name=$1 value=${!1:-$2}
    case "${value,,}" in
    true | yes | on | 1) echo true ;;
    false | no | off | 0) echo false ;;
    *) die "$name must be true or false, not \"$value\"" ;;
    esac
}

CONF_DIR=${NGX_CONF_DIR:-/etc/ngx-rtmp-rs}
HLS_DIR=${HLS_DIR:-/var/www/html/hls}
RECORD_DIR=${RECORD_DIR:-/recordings}
WWW_DIR=${WWW_DIR:-/usr/share/ngx-rtmp-rs/www}
MODULE=${MODULE:-/usr/lib/nginx/modules/libngx_rtmp_rs.so}
RTMP_PORT=${RTMP_PORT:-1935}
HTTP_PORT=${HTTP_PORT:-8888}
WHIP_PORT=${WHIP_PORT:-8889}
WHIP_UDP_PORT=${WHIP_UDP_PORT:-$WHIP_PORT}
WHIP_CANDIDATE=${WHIP_CANDIDATE:-}
NGINX_USER=${NGINX_USER:-www-data}

validation=$(bool STREAM_KEY_VALIDATION true)
drain=${DRAIN_TIMEOUT:-5s}
[[ $drain =~ ^([0-9]{1,6}(ms|s)?|off)$ ]] || die "DRAIN_TIMEOUT must be a time such as 5s or 500ms, or off, not \"$drain\""
recording=$(bool RECORDING_ENABLED false)
max=${MAX_CONNECTIONS:-1000}
# (at most 7 digits, read as decimal even with leading zeros)
if ! [[ $max =~ ^[0-9]{1,7}$ ]] || ((10#$max < 1 || 10#$max > 1000000)); then
    die "MAX_CONNECTIONS must be a number from 1 to 1000000, not \"$max\""
fi
max=$((10#$max))
for port in RTMP_PORT HTTP_PORT WHIP_PORT WHIP_UDP_PORT; do
    if ! [[ ${!port} =~ ^[0-9]{1,5}$ ]] || ((10#${!port} < 1 || 10#${!port} > 65535)); then
        die "$port must be a port number, not \"${!port}\""
    fi
done
whip_candidate=
if [ -n "$WHIP_CANDIDATE" ]; then
    # (nginx -t checks it is an address; here only that it cannot break the config)
    [[ $WHIP_CANDIDATE =~ ^[0-9A-Fa-f.:]{2,45}$ ]] || die "WHIP_CANDIDATE must be an IP address, not \"$WHIP_CANDIDATE\""
    whip_candidate="whip_candidate $WHIP_CANDIDATE;"
fi
# Each RTMP client may hold a callback or an HLS request besides its own connection.
worker_connections=$((max * 2 + 256))

mkdir -p "$CONF_DIR"
auth=""
auth_http=""
if [ "$validation" = true ]; then
    if [ -n "${AUTH_URL:-}" ]; then
        [[ $AUTH_URL =~ ^http://[^[:space:]\"\;]+$ ]] || die "AUTH_URL must be an http:// URL, not \"$AUTH_URL\""
        auth="on_publish $AUTH_URL;"
    else
        keys=${STREAM_KEYS:-}
        if [ -n "${STREAM_KEYS_FILE:-}" ]; then
            [ -r "$STREAM_KEYS_FILE" ] || die "STREAM_KEYS_FILE $STREAM_KEYS_FILE cannot be read"
            keys="$keys $(sed -e 's/#.*//' "$STREAM_KEYS_FILE")"
        fi
        keys=$(echo "$keys" | tr ',' ' ')
        [ -n "${keys// /}" ] || die "STREAM_KEY_VALIDATION is on: set AUTH_URL, STREAM_KEYS or STREAM_KEYS_FILE (or STREAM_KEY_VALIDATION=false)"
        {
            echo "# Stream keys allowed to publish (rendered from STREAM_KEYS / STREAM_KEYS_FILE)."
            for k in $keys; do
                [[ $k =~ ^[A-Za-z0-9._~-]+$ ]] || die "stream key \"$k\" may only have letters, digits and . _ ~ -"
                echo "\"$k\" 1;"
            done
        } >"$CONF_DIR/stream-keys.map"
        # The built-in allow-list: on_publish asks this nginx itself (GET, so the key is
        # in the query), on a location only this machine may use.
        auth="notify_method get;
            on_publish http://127.0.0.1:$HTTP_PORT/_ngx_rtmp_rs/publish;"
        auth_http="map \$arg_name \$ngx_rtmp_rs_key_ok {
        default 0;
        include $CONF_DIR/stream-keys.map;
    }"
    fi
fi
record=""
if [ "$recording" = true ]; then
    record="record all;
            record_path $RECORD_DIR;
            record_unique on;"
fi

cat >"$CONF_DIR/nginx.conf" <<CONF
# Rendered by the ngx-rtmp-rs entrypoint from the container's environment:
#   STREAM_KEY_VALIDATION=$validation RECORDING_ENABLED=$recording MAX_CONNECTIONS=$max DRAIN_TIMEOUT=$drain
load_module $MODULE;

user $NGINX_USER;
worker_processes 1;
error_log stderr info;
pid $CONF_DIR/nginx.pid;

events {
    worker_connections $worker_connections;
}

rtmp {
    max_connections $max;
    drain_timeout $drain;
    access_log /dev/stdout;
    server {
        listen $RTMP_PORT;
        chunk_size 4096;

        application live {
            live on;
            $auth
            $record
            hls on;
            hls_path $HLS_DIR;
            hls_fragment 2s;
            hls_playlist_length 10s;
            hls_fragment_naming system;
        }
    }
}

http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log /dev/stdout;
    sendfile on;
    client_body_temp_path $CONF_DIR/client_body_temp;
    proxy_temp_path $CONF_DIR/proxy_temp;
    fastcgi_temp_path $CONF_DIR/fastcgi_temp;
    uwsgi_temp_path $CONF_DIR/uwsgi_temp;
    scgi_temp_path $CONF_DIR/scgi_temp;

    $auth_http

    map \$uri \$hls_cache_control {
        ~\\.m3u8\$  "public, max-age=1";
        ~\\.(ts|m4s|mp4)\$ "public, max-age=31536000, immutable";
        default   "no-cache";
    }

    server {
        listen $HTTP_PORT;

        location /hls/ {
            alias $HLS_DIR/;
            rtmp_hls_viewers on;
            types {
                application/vnd.apple.mpegurl m3u8;
                video/mp2t ts;
                # (hls_format fmp4: segments and their init segment.)
                video/iso.segment m4s;
                video/mp4 mp4;
            }
            add_header Cache-Control \$hls_cache_control;
            add_header Access-Control-Allow-Origin * always;
        }

        location = /stat {
            rtmp_stat all;
            rtmp_stat_stylesheet stat.xsl;
        }
        location = /metrics {
            rtmp_stat all;
            rtmp_stat_format prometheus;
        }
        location /control {
            rtmp_control all;
            allow 127.0.0.1;
            deny all;
        }
        location = /_ngx_rtmp_rs/publish {
            allow 127.0.0.1;
            deny all;
            if (\$ngx_rtmp_rs_key_ok = 0) {
                return 403;
            }
            return 204;
        }
        location = /healthz {
            access_log off;
            return 200 "ok\\n";
        }
        location / {
            root $WWW_DIR;
            index player.html;
        }
    }

    # WHIP (WebRTC ingest): POST offers to /STREAM_KEY/whip; the stream joins "live"
    # (the same stream key checks as RTMP). WHEP (WebRTC playback) on the same server
    # and UDP port. Media on one UDP port.
    whip_udp_listen $WHIP_UDP_PORT;
    $whip_candidate
    server {
        listen $WHIP_PORT;
        location ~ ^/[^/]+/whip(/[^/]*)?\$ {
            whip_publish live;
        }
        # WHEP (WebRTC playback): /watch.html?stream=STREAM_KEY, offers to /STREAM_KEY/whep.
        location ~ ^/[^/]+/whep(/[^/]*)?\$ {
            whep_play live;
        }
        location / {
            root $WWW_DIR;
            index publish.html;
        }
        location = /report {
            access_log off;
            return 204;
        }
    }
}
CONF

# Without the built-in allow-list there is no \$ngx_rtmp_rs_key_ok: drop its location.
if [ -z "$auth_http" ]; then
    sed -i '/location = \/_ngx_rtmp_rs\/publish {/,/^        }$/d' "$CONF_DIR/nginx.conf"
fi

[ "${1:-}" = render ] && exit 0

mkdir -p "$HLS_DIR"
chown "$NGINX_USER" "$HLS_DIR"
if [ "$recording" = true ]; then
    mkdir -p "$RECORD_DIR"
    chown "$NGINX_USER" "$RECORD_DIR"
fi
nginx -t -c "$CONF_DIR/nginx.conf" -q || die "the rendered configuration ($CONF_DIR/nginx.conf) does not pass nginx -t"
exec nginx -c "$CONF_DIR/nginx.conf" -g 'daemon off;'
