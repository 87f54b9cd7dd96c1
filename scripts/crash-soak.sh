#!/usr/bin/env bash
# The kill -9 soak: ROUNDS rounds (default 1,000) spread evenly over the four kill
# tests, each round killing the real binary 1-3 times at random moments and then
# checking the rerun:
#   import        tests/crash.rs      archive opens, verify clean, every source message
#                                     once, placements exact
#   IMAP pull     tests/imap_crash.rs every server message archived once, verify clean
#   POP3 pull     tests/pop3_pull.rs  --delete-after-archive: every message archived,
#                                     nothing deleted that is not, the server emptied
#   replay        tests/replay.rs     half the rounds against a full Dovecot, half
#                                     without UIDPLUS: every message on the target
#                                     exactly once
# CI runs the same tests with 20 rounds each. Prints each test's rounds and the kills
# that landed mid-work; exits non-zero on the first failing round (replay it with the
# MAILVAULT_TEST_SEED the test prints).
#   bash scripts/crash-soak.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mailvault-target}"
rounds="${1:-1000}"
per=$((rounds / 4))
logs="$(mktemp -d)"
started=$(date +%s)
run() {
    local name="$1"
    shift
    echo "== $name: $per rounds"
    MAILVAULT_CRASH_ROUNDS="$per" cargo test --release "$@" -- --nocapture --test-threads=1 \
        >"$logs/$name.log" 2>&1 || {
        echo "FAILED: $name (log: $logs/$name.log)"
        grep -m5 -A10 'panicked' "$logs/$name.log" || tail -30 "$logs/$name.log"
        exit 1
    }
    grep -E 'rounds|seed' "$logs/$name.log" | sed 's/^/   /'
}
run import --test crash kill_during_import_then_rerun_is_exact
run imap-pull --test imap_crash kill_during_pull_then_rerun_is_exact
run pop3-pull --test pop3_pull kill_during_delete_after_archive_loses_nothing
run replay --test replay kill_during_replay_then_rerun_is_exact
echo "soak: $((per * 4)) rounds passed in $(( ($(date +%s) - started) / 60 )) min; logs: $logs"
