#!/usr/bin/env bash
# The one script that installs, builds, runs and tests ngx-rtmp-rs.
# README, CI (.ci/run) and the Dockerfile all call it, so the steps live here only.
#
#   scripts/setup.sh deps    install Debian packages for building and testing, and Rust
#   scripts/setup.sh build-deps   only what building needs (the Docker image's build stage)
#   scripts/setup.sh build   build-deps + nginx build tree + cargo build --release
#   scripts/setup.sh run     build, then nginx in the foreground with nginx-conf/nginx.conf
#   scripts/setup.sh package build, then a Debian package in target/debian/
#   scripts/setup.sh test    build, then cargo test and prove -r t/
#
# Environment:
#   NGINX_BUILD_DIR   an nginx objs/ dir (after ./configure) to build against instead of
#                     Debian's nginx-dev headers; NGINX_SOURCE_DIR if objs/ is not inside
#                     the source tree.
#   NGINX_BINARY      the nginx that will load the module (default /usr/sbin/nginx); the
#                     build fails if the module would not be binary compatible with it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# Debian packages: build (nginx headers, bindgen's libclang, a C compiler), run (nginx)
# and test (real clients).
BUILD_PKGS=(nginx nginx-dev libclang-dev libpcre2-dev libssl-dev zlib1g-dev
            libavcodec-dev libavutil-dev libswresample-dev build-essential pkg-config curl ca-certificates)
TEST_PKGS=(ffmpeg rtmpdump perl procps gstreamer1.0-tools gstreamer1.0-plugins-good
           gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav chromium
           python3 python3-prometheus-client python3-gi gir1.2-gst-plugins-bad-1.0
           gir1.2-gst-plugins-base-1.0 gstreamer1.0-nice iproute2 util-linux python3-seccomp
           openssl docker.io docker-compose debootstrap libnginx-mod-stream)

# hls.js for the player page (nginx-conf/www/player.html): fetched from the npm registry
# at build time, pinned and checked, served by nginx (never from a CDN at run time).
HLSJS_VERSION=1.7.4
HLSJS_SHA512=dc697119d3ef4f6607bd060eb7ec8ecd3fc3122a2bfea255348ca51c0efb9207a805375042a8bbd06c1e7cd11498741e346ca30bc53adbe6ebbaa5bf4e99beb6

# dash.js for the player page's DASH mode (player.html?format=dash), the same way.
DASHJS_VERSION=5.2.1
DASHJS_SHA512=6b170998b78909324c2d47d0444ad4241d4a3a253988717e0cc2c173714a7a8c751cf62d1944250ba5e6e4c9babe10544770871cb20f3aac3424322a32d3fe0f

log() { printf '==> %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

install_pkgs() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# The Rust the crate needs (Cargo.toml's rust-version).
RUST_MIN=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml")

rust_ok() {
    local v
    v=$(cargo --version 2>/dev/null | awk '{print $2}') || return 1
    [ -n "$v" ] && [ "$(printf '%s\n%s\n' "$RUST_MIN" "${v%%-*}" | sort -V | head -n 1)" = "$RUST_MIN" ]
}

# Rust from Debian: Debian 12's rustc and cargo (1.63) are too old for the ngx crate, but
# it packages a current one as rustc-web and cargo-web (/usr/bin/rustc, /usr/bin/cargo).
# A cargo already on the PATH (rustup's, say) that is new enough is used as it is.
install_rust() {
    [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
    rust_ok && return 0
    log "installing Rust from Debian (rustc-web, cargo-web)"
    install_pkgs rustc-web cargo-web
    hash -r
    rust_ok || { log "cargo $(cargo --version 2>/dev/null) is older than $RUST_MIN (Cargo.toml's rust-version)"; exit 1; }
}

deps() {
    install_pkgs "${BUILD_PKGS[@]}" "$@"
    install_rust
}

# An nginx objs/ dir configured exactly like Debian's nginx (same configure flags, so the
# same module signature), made from the nginx-dev sources in .nginx/.
nginx_tree() {
    if [ -n "${NGINX_BUILD_DIR:-}" ]; then
        log "building against NGINX_BUILD_DIR=$NGINX_BUILD_DIR"
        return 0
    fi
    local src=/usr/share/nginx/src dst="$ROOT/.nginx"
    local stamp="$dst/objs/.configured-from"
    local want
    want="$(dpkg-query -W -f='${Version}' nginx-dev) $(md5sum < "$src/conf_flags")"
    if [ -f "$dst/objs/ngx_auto_config.h" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
        return 0
    fi
    log "configuring an nginx build tree in .nginx/ (Debian nginx-dev $want)"
    rm -rf "$dst"
    mkdir -p "$dst"
    cp -a "$src/." "$dst/"
    (
        cd "$dst"
        # shellcheck disable=SC1091
        . ./conf_flags
        ./configure "${NGX_CONF_FLAGS[@]}" >configure.log 2>&1 ||
            { tail -n 30 configure.log >&2; exit 1; }
    )
    echo "$want" >"$stamp"
}

web_assets() {
    local dst="$ROOT/nginx-conf/www/vendor"
    # uPlot for the dashboard's charts (nginx-conf/www/dashboard.html): the same way.
    local uplot_version=1.6.32
    local uplot_sha512=2883159c6ebccefbb95d751b0b82d010f9e1c0ec41b8bc96d401eda66e882935c89a46cb824332fa369b8cb8122cc6ac36e186cd09bf7a9ded3a4c93c6989023
    local want
    want=$(printf 'hls.js %s\nuPlot %s\ndash.js %s' "$HLSJS_VERSION" "$uplot_version" "$DASHJS_VERSION")
    if [ -f "$dst/hls.min.js" ] && [ -f "$dst/uPlot.iife.min.js" ] && [ -f "$dst/uPlot.min.css" ] &&
        [ -f "$dst/dash.mediaplayer.min.js" ] &&
        [ "$(cat "$dst/VERSION" 2>/dev/null)" = "$want" ]; then
        return 0
    fi
    local tmp
    tmp=$(mktemp -d)
    mkdir -p "$dst"
    log "fetching hls.js $HLSJS_VERSION from the npm registry"
    curl -sSfL --retry 3 -o "$tmp/hls.tgz" "https://registry.npmjs.org/hls.js/-/hls.js-$HLSJS_VERSION.tgz"
    echo "$HLSJS_SHA512  $tmp/hls.tgz" | sha512sum -c --quiet - ||
        { log "hls.js tarball does not match its pinned checksum"; exit 1; }
    mkdir "$tmp/hls"
    tar -xzf "$tmp/hls.tgz" -C "$tmp/hls" package/dist/hls.min.js package/LICENSE
    cp "$tmp/hls/package/dist/hls.min.js" "$dst/hls.min.js"
    cp "$tmp/hls/package/LICENSE" "$dst/hls.js-LICENSE"
    log "fetching uPlot $uplot_version from the npm registry"
    curl -sSfL --retry 3 -o "$tmp/uplot.tgz" "https://registry.npmjs.org/uplot/-/uplot-$uplot_version.tgz"
    echo "$uplot_sha512  $tmp/uplot.tgz" | sha512sum -c --quiet - ||
        { log "uPlot tarball does not match its pinned checksum"; exit 1; }
    mkdir "$tmp/uplot"
    tar -xzf "$tmp/uplot.tgz" -C "$tmp/uplot" package/dist/uPlot.iife.min.js package/dist/uPlot.min.css package/LICENSE
    cp "$tmp/uplot/package/dist/uPlot.iife.min.js" "$tmp/uplot/package/dist/uPlot.min.css" "$dst/"
    cp "$tmp/uplot/package/LICENSE" "$dst/uPlot-LICENSE"
    log "fetching dash.js $DASHJS_VERSION from the npm registry"
    curl -sSfL --retry 3 -o "$tmp/dash.tgz" "https://registry.npmjs.org/dashjs/-/dashjs-$DASHJS_VERSION.tgz"
    echo "$DASHJS_SHA512  $tmp/dash.tgz" | sha512sum -c --quiet - ||
        { log "dash.js tarball does not match its pinned checksum"; exit 1; }
    mkdir "$tmp/dash"
    tar -xzf "$tmp/dash.tgz" -C "$tmp/dash" package/dist/modern/umd/dash.mediaplayer.min.js package/LICENSE.md
    cp "$tmp/dash/package/dist/modern/umd/dash.mediaplayer.min.js" "$dst/"
    cp "$tmp/dash/package/LICENSE.md" "$dst/dash.js-LICENSE"
    echo "$want" >"$dst/VERSION"
    rm -rf "$tmp"
}

build() {
    deps "$@"
    web_assets
    nginx_tree
    log "cargo build --release"
    cargo build --release --locked
    log "module: $ROOT/target/release/libngx_rtmp_rs.so"
}

case "${1:-build}" in
deps)
    deps "${TEST_PKGS[@]}"
    ;;
build-deps)
    deps
    ;;
build)
    build
    ;;
run)
    # (ffmpeg: the default config's transcoding examples run it.)
    build ffmpeg
    mkdir -p "$ROOT/run/hls" "$ROOT/run/recordings"
    # nginx's workers (user nobody when started as root) write HLS and recordings there
    # and read the web pages; a clone where nobody cannot reach them (under /root, say)
    # runs its workers as root instead.
    user_opt=
    if [ "$(id -u)" = 0 ]; then
        chown nobody:nogroup "$ROOT/run/hls" "$ROOT/run/recordings"
        if ! runuser -u nobody -- test -r "$ROOT/nginx-conf/www/player.html" -a -w "$ROOT/run/hls"; then
            log "nginx's default worker user (nobody) cannot reach $ROOT: running the workers as root"
            user_opt='user root;'
        fi
    fi
    log "nginx -p $ROOT/ -c nginx-conf/nginx.conf (RTMP :1935, HTTP :8888, WHIP :8889); Ctrl-C stops it"
    exec "${NGINX_BINARY:-/usr/sbin/nginx}" -p "$ROOT/" -c nginx-conf/nginx.conf -g "daemon off; $user_opt"
    ;;
package)
    # A Debian package of the module in target/debian/ (see scripts/package.sh).
    build
    "$ROOT/scripts/package.sh"
    ;;
test)
    build "${TEST_PKGS[@]}"
    log "cargo test"
    cargo test --release --locked
    log "prove -r t/"
    prove --timer -r t/
    ;;
*)
    echo "usage: $0 deps|build-deps|build|run|package|test" >&2
    exit 2
    ;;
esac
