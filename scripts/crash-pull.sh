#!/usr/bin/env bash
# Runs N rounds (default 50) of the kill -9 pull test on the whole main corpus
# (enron + spamassassin + usrp-users, 16,276 messages) against a private Dovecot.
# Replay a failing run with the MAILVAULT_TEST_SEED it prints.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mailvault-target}"
MAILVAULT_CRASH_ROUNDS="${1:-50}" MAILVAULT_PULL_CORPUS=main \
  cargo test --release --test imap_crash -- --nocapture
