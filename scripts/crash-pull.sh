#!/usr/bin/env bash
# Runs N rounds (default 50) of a kill -9 pull test against a private Dovecot.
#   scripts/crash-pull.sh [N] [imap|pop3]
# imap (default): `mailvault pull imaps://…` on the whole main corpus (enron +
#   spamassassin + usrp-users, 16,276 messages), 1-3 kills per round.
# pop3: `mailvault pull pop3s://… --delete-after-archive` on 300 messages, 1-2 kills
#   per round; after each rerun every message is archived, verify is clean and the
#   server is empty.
# Replay a failing run with the MAILVAULT_TEST_SEED it prints.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mailvault-target}"
rounds="${1:-50}"
case "${2:-imap}" in
  imap)
    MAILVAULT_CRASH_ROUNDS="$rounds" MAILVAULT_PULL_CORPUS=main \
      cargo test --release --test imap_crash -- --nocapture ;;
  pop3)
    MAILVAULT_CRASH_ROUNDS="$rounds" \
      cargo test --release --test pop3_pull kill_during_delete_after_archive -- --nocapture ;;
  *)
    echo "usage: $0 [ROUNDS] [imap|pop3]" >&2; exit 2 ;;
esac
