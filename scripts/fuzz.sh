#!/usr/bin/env bash
# Runs the fuzz targets (fuzz/fuzz_targets/) for SECONDS each on their corpora in
# fuzz/corpus/TARGET (what libFuzzer finds is kept there; `cargo test` replays the corpora
# of the `ngx_rtmp_rs::fuzzing` targets), then prints executions, coverage and crashes per
# target. Not part of CI; the last campaign's figures are in docs/reliability.md.
#
#   scripts/fuzz.sh 60                  every target, a minute each
#   scripts/fuzz.sh 3600 app session    an hour each of those named
#
# Needs cargo-fuzz (installed from crates.io if missing) and a nightly toolchain (rustup's
# `cargo +nightly`), or RUSTC_BOOTSTRAP=1 is set for the installed one. A crash leaves
# fuzz/artifacts/TARGET/crash-*: make it a unit test.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT/fuzz"
SECS=${1:-60}
shift || true
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
if cargo +nightly --version >/dev/null 2>&1; then
    FUZZ=(cargo +nightly fuzz)
else
    FUZZ=(cargo fuzz)
    export RUSTC_BOOTSTRAP=1
fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(sed -n 's/^name = "\(.*\)"/\1/p' Cargo.toml | grep -v ngx-rtmp-rs-fuzz)
mkdir -p logs
printf '%-10s %14s %8s %8s %8s\n' target executions cov ft crashes
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    log="logs/$t.log"
    status=0
    "${FUZZ[@]}" run --release "$t" "corpus/$t" -- -max_total_time="$SECS" -print_final_stats=1 -rss_limit_mb=2048 >"$log" 2>&1 || status=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
    crashes=$(ls "artifacts/$t" 2>/dev/null | grep -c -e '^crash-' -e '^leak-' -e '^timeout-' -e '^oom-' || true)
    printf '%-10s %14s %8s %8s %8s%s\n' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$crashes" "$([ $status -ne 0 ] && echo "  (exit $status, see fuzz/$log)")"
done
