#!/usr/bin/env bash
# Installs what the test suite needs (libclang for RocksDB's bindings, Dovecot for the
# protocol tests, openssl for their certificates, tar + zstd for the corpora), then
# runs formatting and lint checks and every test. `.ci/run` calls this script.
#
# As root, missing Debian packages are installed with apt-get; otherwise the exact
# command to run is printed and the script stops.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mailvault-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

packages=(libclang-dev dovecot-imapd dovecot-pop3d openssl tar zstd)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "test.sh: installing ${missing[*]}"
    # Keep Debian from starting the system Dovecot (it would listen on all addresses).
    guard=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && guard=1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    [ -n "$guard" ] && rm -f /usr/sbin/policy-rc.d
  else
    echo "test.sh: missing packages: ${missing[*]}" >&2
    echo "run:  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy (release profile, shares the test build)"
cargo clippy --release --all-targets -- -D warnings
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
