#!/usr/bin/env bash
# The t/ suite (or the tests named) against the module built with AddressSanitizer:
# Rust with -Zsanitizer=address, the C parts (spawn.c, uring.c) with -fsanitize=address,
# loaded into Debian's nginx with GCC's ASan runtime preloaded. Any report fails the run
# and is printed. Not part of CI (a sanitized build and run take about 25 minutes here);
# the last result is in docs/reliability.md.
#
#   scripts/sanitize.sh                 every t/ test that runs nginx with the module
#   scripts/sanitize.sh t/10-live.t ... the tests named
#
# Needs a nightly toolchain (rustup's `cargo +nightly`), or sets RUSTC_BOOTSTRAP=1 for the
# installed one; and libasan8 (Debian's gcc-12 depends on it).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TARGET=x86_64-unknown-linux-gnu
OUT="$ROOT/target/asan"
mkdir -p "$OUT"

ASAN_LIB=$(ls /usr/lib/x86_64-linux-gnu/libasan.so.[0-9]* 2>/dev/null | head -n 1)
[ -n "$ASAN_LIB" ] || { echo "sanitize: no libasan (apt-get install libasan8)" >&2; exit 1; }

if cargo +nightly --version >/dev/null 2>&1; then
    CARGO=(cargo +nightly)
else
    CARGO=(cargo)
    export RUSTC_BOOTSTRAP=1
fi
echo "==> building the module with AddressSanitizer (${CARGO[*]})" >&2
CFLAGS="-fsanitize=address -fno-omit-frame-pointer" \
RUSTFLAGS="-Zsanitizer=address -Cforce-frame-pointers=yes" \
CARGO_TARGET_DIR="$OUT/build" \
    "${CARGO[@]}" build --release --target "$TARGET"
MODULE="$OUT/build/$TARGET/release/libngx_rtmp_rs.so"

# nginx with the ASan runtime loaded first (nginx itself is not instrumented; the module
# is). Reports go to files, one per process; halting on the first one makes the test
# that caused it fail too.
REPORTS="$OUT/reports"
rm -rf "$REPORTS"
mkdir -p "$REPORTS"
chmod 0777 "$REPORTS"
cat >"$OUT/nginx" <<EOF
#!/bin/sh
export LD_PRELOAD=$ASAN_LIB
export ASAN_OPTIONS=log_path=$REPORTS/asan:detect_leaks=0:halt_on_error=1:abort_on_error=0:symbolize=1
exec /usr/sbin/nginx "\$@"
EOF
chmod 0755 "$OUT/nginx"

if [ $# -eq 0 ]; then
    # Every test of the module in nginx (the package and Docker tests install or build
    # their own module; the build-guard test builds too).
    set -- $(ls t/*.t | grep -v -e 04-build-guard -e 60-docker -e 61-docker-engine -e 62-package -e 05-docs)
fi
echo "==> prove $* (TEST_NGINX_MODULE=$MODULE)" >&2
status=0
TEST_NGINX_BINARY="$OUT/nginx" TEST_NGINX_MODULE="$MODULE" prove "$@" || status=$?

reports=$(ls "$REPORTS" 2>/dev/null | wc -l)
if [ "$reports" -gt 0 ]; then
    echo "==> $reports AddressSanitizer report(s):" >&2
    for f in "$REPORTS"/*; do echo "--- $f" >&2; head -n 60 "$f" >&2; done
    exit 1
fi
echo "==> no AddressSanitizer report (prove exit status $status)" >&2
exit "$status"
