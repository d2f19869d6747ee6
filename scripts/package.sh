#!/usr/bin/env bash
# Builds the Debian package libnginx-mod-rtmp-rs in target/debian/, the way Debian's own
# libnginx-mod-* packages are laid out (called by `scripts/setup.sh package`, after the
# module is built):
#   /usr/lib/nginx/modules/ngx_rtmp_rs_module.so                  the module
#   /usr/share/nginx/modules-available/mod-rtmp-rs.conf           its load_module line
#   /etc/nginx/modules-enabled/50-mod-rtmp-rs.conf -> the above   (made by postinst)
#   /usr/share/ngx-rtmp-rs/{www,examples,grafana}                 pages, configs, dashboard
# Depends on the exact nginx ABI it was built for (Debian's nginx-abi-* virtual package),
# so an nginx upgrade cannot leave a module nginx refuses to load; Conflicts with
# libnginx-mod-rtmp (both modules register the same names).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

NAME=libnginx-mod-rtmp-rs
SO=target/release/libngx_rtmp_rs.so
[ -f "$SO" ] || { echo "package: $SO is missing (scripts/setup.sh build first)" >&2; exit 1; }

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
# The nginx the module was built against (setup.sh builds against Debian's nginx-dev).
NGINX_VERSION=$(dpkg-query -W -f='${Version}' nginx-dev)
ABI=$(dpkg-query -W -f='${Provides}' nginx | tr ',' '\n' | sed -n 's/^ *\(nginx-abi-[^ ]*\).*/\1/p' | head -n 1)
[ -n "$ABI" ] || { echo "package: the installed nginx provides no nginx-abi-* (is it Debian's?)" >&2; exit 1; }
ARCH=$(dpkg --print-architecture)
PKG_VERSION="$VERSION-1+nginx${NGINX_VERSION%%-*}"

OUT=target/debian
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
D="$STAGE/root"

install -d "$D/DEBIAN" "$D/usr/lib/nginx/modules" "$D/usr/share/nginx/modules-available" \
    "$D/usr/share/ngx-rtmp-rs/examples" "$D/usr/share/doc/$NAME"
# Without debug information: 43 MB becomes about 7 MB.
objcopy --strip-debug "$SO" "$D/usr/lib/nginx/modules/ngx_rtmp_rs_module.so"
chmod 0644 "$D/usr/lib/nginx/modules/ngx_rtmp_rs_module.so"
# (An absolute path, unlike Debian's `modules/...`: it loads under any `nginx -p` prefix.)
echo 'load_module /usr/lib/nginx/modules/ngx_rtmp_rs_module.so;' >"$D/usr/share/nginx/modules-available/mod-rtmp-rs.conf"

cp -r nginx-conf/www "$D/usr/share/ngx-rtmp-rs/www"
[ -d nginx-conf/grafana ] && cp -r nginx-conf/grafana "$D/usr/share/ngx-rtmp-rs/grafana"
# The examples load the module from modules-enabled, as the package installs it.
for f in nginx.conf nginx-production.conf; do
    sed -e 's|^load_module .*;|# (the module is loaded by /etc/nginx/modules-enabled/50-mod-rtmp-rs.conf)\ninclude /etc/nginx/modules-enabled/*.conf;|' \
        -e 's|root nginx-conf/www;|root /usr/share/ngx-rtmp-rs/www;|' \
        "nginx-conf/$f" >"$D/usr/share/ngx-rtmp-rs/examples/$f"
done
cp -r docs "$D/usr/share/doc/$NAME/docs"
cp README.md "$D/usr/share/doc/$NAME/README.md"
cat >"$D/usr/share/doc/$NAME/copyright" <<'EOF'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: ngx-rtmp-rs

Files: *
Copyright: the ngx-rtmp-rs authors
License: BSD-2-Clause
 Redistribution and use in source and binary forms, with or without
 modification, are permitted provided that the following conditions are met:
 .
 1. Redistributions of source code must retain the above copyright notice,
    this list of conditions and the following disclaimer.
 2. Redistributions in binary form must reproduce the above copyright notice,
    this list of conditions and the following disclaimer in the documentation
    and/or other materials provided with the distribution.
 .
 THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"
 AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE
 IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE
 ARE DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE
 LIABLE FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR
 CONSEQUENTIAL DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF
 SUBSTITUTE GOODS OR SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS
 INTERRUPTION) HOWEVER CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN
 CONTRACT, STRICT LIABILITY, OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE)
 ARISING IN ANY WAY OUT OF THE USE OF THIS SOFTWARE, EVEN IF ADVISED OF THE
 POSSIBILITY OF SUCH DAMAGE.
EOF

# The module's shared libraries, as dpkg-shlibdeps would find them (libc, libav*).
LIBS=$(objdump -p "$SO" | awk '/NEEDED/ {print $2}' | while read -r lib; do
    path=$(ldconfig -p | awk -v l="$lib" '$1 == l {print $NF; exit}')
    [ -n "$path" ] || continue
    # (usrmerge: dpkg may know the file by its /lib or its /usr/lib name)
    { dpkg-query -S "$path" 2>/dev/null || dpkg-query -S "$(readlink -f "$path")" 2>/dev/null || true; } |
        cut -d: -f1 | head -n 1
done | sort -u | paste -sd, | sed 's/,/, /g')

SIZE=$(du -sk "$D" | cut -f1)
cat >"$D/DEBIAN/control" <<EOF
Package: $NAME
Version: $PKG_VERSION
Architecture: $ARCH
Maintainer: ngx-rtmp-rs <ngx-rtmp-rs@localhost>
Installed-Size: $SIZE
Depends: $ABI${LIBS:+, $LIBS}
Recommends: nginx, ffmpeg
Conflicts: libnginx-mod-rtmp
Section: httpd
Priority: optional
Description: RTMP, HLS, recording and WHIP live streaming for nginx (Rust)
 ngx-rtmp-rs is a drop-in replacement for nginx-rtmp-module: the same rtmp {}
 configuration, /stat XML and on_publish callbacks, plus HLS, recording, WHIP
 (WebRTC ingest), exec and transcoding ladders, JSON and Prometheus statistics.
 Built for $ABI.
EOF

# Maintainer scripts: what dh_nginx writes for Debian's libnginx-mod-* packages.
cat >"$D/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
to=/etc/nginx/modules-enabled/50-mod-rtmp-rs.conf
if [ -L "$to.removed" ]; then
	rm "$to.removed"
	removed_link=true
else
	removed_link=false
fi
# Enabled on a fresh install and on a reinstall after a remove (an administrator's
# own removal of the link is kept).
if [ -z "$2" ] || [ "$removed_link" = true ]; then
	mkdir -p /etc/nginx/modules-enabled
	ln -sf /usr/share/nginx/modules-available/mod-rtmp-rs.conf "$to"
fi
if [ "$1" = configure ] && command -v dpkg-trigger >/dev/null 2>&1; then
	dpkg-trigger --no-await nginx-reload || true
fi
EOF
cat >"$D/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
to=/etc/nginx/modules-enabled/50-mod-rtmp-rs.conf
if [ "$1" = remove ] || [ "$1" = deconfigure ]; then
	if [ -L "$to" ]; then
		mv "$to" "$to.removed"
	fi
fi
EOF
cat >"$D/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
to=/etc/nginx/modules-enabled/50-mod-rtmp-rs.conf
if [ "$1" = purge ]; then
	rm -f "$to" "$to.removed"
fi
if [ "$1" = remove ]; then
	if [ -L "$to" ]; then
		mv "$to" "$to.removed"
	fi
	if command -v dpkg-trigger >/dev/null 2>&1; then
		dpkg-trigger --no-await nginx-reload || true
	fi
fi
EOF
chmod 0755 "$D/DEBIAN/postinst" "$D/DEBIAN/prerm" "$D/DEBIAN/postrm"
(cd "$D" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum >DEBIAN/md5sums)

mkdir -p "$OUT"
DEB="$OUT/${NAME}_${PKG_VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group -Zxz --build "$D" "$DEB" >/dev/null
echo "$ROOT/$DEB"
