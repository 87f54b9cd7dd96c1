#!/usr/bin/env bash
# Installs what the test suite needs (libclang for RocksDB's bindings, Dovecot for the
# protocol tests, openssl for their certificates, tar + zstd for the corpora), then
# runs formatting and lint checks, the demo script, and every test. `.ci/run` calls
# this script.
#
# As root, missing Debian packages are installed with apt-get; otherwise the exact
# command to run is printed and the script stops (scripts/lib/packages.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mailvault-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# shellcheck source=lib/packages.sh
. scripts/lib/packages.sh
ensure_packages libclang-dev dovecot-imapd dovecot-pop3d openssl tar zstd man-db

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy (release profile, shares the test build)"
cargo clippy --release --all-targets -- -D warnings
echo "== scripts/demo.sh (the README's first command, as a newcomer runs it)"
bash scripts/demo.sh > "${TMPDIR:-/tmp}/mailvault-demo.log" 2>&1 || { cat "${TMPDIR:-/tmp}/mailvault-demo.log"; exit 1; }
tail -n 3 "${TMPDIR:-/tmp}/mailvault-demo.log"
echo "== cargo test --release"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --release -- "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line over every test binary (unit, integration, doc tests).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
