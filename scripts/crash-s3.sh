#!/usr/bin/env bash
# kill -9 at random moments of imports and compactions into S3 (a Garage node the
# test starts), N rounds (default 100): after every kill `verify` is clean, every
# message readable and no referenced pack missing; the last `compact` removes the
# orphans. CI runs 20 rounds (tests/s3_garage.rs); this runs as many as you like.
#   bash scripts/crash-s3.sh 500
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mailvault-target}"
MAILVAULT_CRASH_ROUNDS="${1:-100}" cargo test --release --test s3_garage \
  kill_9_during_import_and_compaction_into_s3_loses_nothing -- --nocapture
