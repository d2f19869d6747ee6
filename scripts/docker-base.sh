#!/usr/bin/env bash
# Makes the base images the Dockerfile builds from, debian:bookworm and
# debian:bookworm-slim (the same without documentation, man pages and translations, kept
# out of later packages too), with debootstrap, for a Docker engine that cannot pull them:
# no image registry reachable, as on many build networks. Images already there are left
# alone. Needs root, debootstrap and a Debian mirror.
#
# The host's own CA certificates (/usr/local/share/ca-certificates/*.crt) go into the
# image, so that builds inside reach crates.io through a TLS-inspecting proxy the host
# trusts (the Dockerfile's apt-get install ca-certificates takes them in).
#
#   DOCKER                  the docker command (default: docker)
#   DEBIAN_MIRROR           default http://deb.debian.org/debian
#   DEBIAN_SECURITY_MIRROR  default http://deb.debian.org/debian-security
set -euo pipefail

DOCKER=${DOCKER:-docker}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

log() { printf '==> %s\n' "$*" >&2; }

missing=()
for tag in debian:bookworm debian:bookworm-slim; do
    $DOCKER image inspect "$tag" >/dev/null 2>&1 || missing+=("$tag")
done
[ ${#missing[@]} -eq 0 ] && exit 0

rootfs=$(mktemp -d /var/tmp/bookworm.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
log "debootstrap --variant=minbase bookworm ($MIRROR) for ${missing[*]}"
debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >"$rootfs.log" 2>&1 ||
    { tail -n 20 "$rootfs.log" >&2; rm -f "$rootfs.log"; exit 1; }
rm -f "$rootfs.log"
# Sources as in Debian's own images: the release, its updates and security.
rm -f "$rootfs/etc/apt/sources.list"
cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
mkdir -p "$rootfs/usr/local/share/ca-certificates"
if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
fi
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
import() {
    tar -C "$rootfs" -c . | $DOCKER import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["bash"]' - "$1" >/dev/null
    log "made $1"
}
if [[ " ${missing[*]} " == *" debian:bookworm "* ]]; then
    import debian:bookworm
fi
if [[ " ${missing[*]} " == *" debian:bookworm-slim "* ]]; then
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'SLIM'
# The slim variant: files containers do not need stay out (copyright files stay in).
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
SLIM
    find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
    rm -rf "$rootfs"/usr/share/{groff,info,linda,lintian/overrides,locale,man}/*
    import debian:bookworm-slim
fi
