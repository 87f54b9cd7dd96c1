#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets/*.rs; properties in src/fuzzing.rs) for
# SECONDS each, two at a time, and prints executions and crashes per target.
#
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]     # default 300 s, every target
#
# Stable toolchain: libFuzzer's flags need RUSTC_BOOTSTRAP=1 (set here only, never
# in the normal build); no sanitizer (-s none) for speed — the properties are
# asserted by the targets themselves. The working corpus lives in
# ~/.cache/mailvault-fuzz-corpus (seeded from fuzz/seeds/); a failing input is saved
# under fuzz/artifacts/TARGET/ — minimise it (cargo fuzz tmin) and keep it in
# fuzz/regressions/TARGET/, where tests/fuzz_regressions.rs runs it in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-300}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=()
    for f in fuzz/fuzz_targets/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi
command -v cargo-fuzz >/dev/null || {
    echo "cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
    exit 1
}
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${MAILVAULT_FUZZ_TARGET_DIR:-$HOME/.cache/mailvault-fuzz-target}"
# RocksDB's C++ is the same with or without coverage instrumentation (that is for
# Rust code): link the static library the normal build made instead of compiling it
# again (40+ minutes on 2 cores), when there is one.
main_target="${CARGO_TARGET_DIR_MAIN:-$HOME/.cache/mailvault-target}"
rocksdb_a=$(ls "$main_target"/release/build/librocksdb-sys-*/out/librocksdb.a 2>/dev/null | head -1 || true)
if [ -n "$rocksdb_a" ] && [ -z "${ROCKSDB_LIB_DIR:-}" ]; then
    export ROCKSDB_LIB_DIR="$(dirname "$rocksdb_a")" ROCKSDB_STATIC=1
fi
corpus_root="${MAILVAULT_FUZZ_CORPUS:-$HOME/.cache/mailvault-fuzz-corpus}"
logs="$(mktemp -d)"
(cd fuzz && cargo fuzz build -s none)

run_one() {
    local t="$1"
    mkdir -p "$corpus_root/$t" "fuzz/artifacts/$t"
    cp -n fuzz/seeds/"$t"/* "$corpus_root/$t/" 2>/dev/null || true
    (cd fuzz && cargo fuzz run -s none "$t" "$corpus_root/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="artifacts/$t/") >"$logs/$t.log" 2>&1 || true
}

running=0
for t in "${targets[@]}"; do
    run_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge 2 ]; then
        wait -n
        running=$((running - 1))
    fi
done
wait

printf '%-14s %14s %10s %8s  %s\n' target executions exec/s crashes corpus
for t in "${targets[@]}"; do
    l="$logs/$t.log"
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$l" | grep -o '[0-9]*$' | tail -1)
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$l" | grep -o '[0-9]*$' | tail -1)
    crashes=$(find "fuzz/artifacts/$t" -type f | wc -l)
    corpus=$(find "$corpus_root/$t" -type f | wc -l)
    printf '%-14s %14s %10s %8s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "$crashes" "$corpus"
    if grep -q 'panicked\|ERROR: libFuzzer' "$l"; then
        echo "--- $t:" && grep -m3 -A3 'panicked\|ERROR: libFuzzer' "$l"
    fi
done
echo "logs: $logs"
