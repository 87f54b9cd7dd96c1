#!/usr/bin/env bash
# Installs what the test suite needs (libclang for RocksDB's bindings, Dovecot for the
# protocol tests, openssl for their certificates, tar + zstd for the corpora,
# Chromium and chromedriver for the browser tests, PostgreSQL 15 for the shared
# metadata store, oidc-provider from npm for the OAuth2 tests), then
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
ensure_packages libclang-dev dovecot-imapd dovecot-pop3d openssl tar zstd man-db chromium chromium-driver python3 postgresql-15

# Garage, the S3 server of the S3 tests: built once into a cache outside the clone
# (about 7-14 minutes on 2 cores), like RocksDB's build in the target directory.
GARAGE_ROOT="${MAILVAULT_GARAGE_ROOT:-$HOME/.cache/mailvault-garage}"
if ! [ -x "$GARAGE_ROOT/bin/garage" ]; then
  echo "== installing Garage 2.5.0 (the S3 test server) into $GARAGE_ROOT, once"
  env -u CARGO_TARGET_DIR cargo install garage --version 2.5.0 --locked \
    --no-default-features --features lmdb,bundled-libs --root "$GARAGE_ROOT"
fi
export MAILVAULT_GARAGE="$GARAGE_ROOT/bin/garage"

# oidc-provider, the OpenID provider of the OAuth2 tests (npm, Node.js 20+), from the
# committed lockfile into a cache outside the clone; reinstalled when the lockfile changes.
OIDC_ROOT="${MAILVAULT_OIDC_ROOT:-$HOME/.cache/mailvault-oidc}"
if ! command -v node > /dev/null || ! command -v npm > /dev/null; then
  echo "Node.js 20 or later and npm are needed for the OAuth2 tests: apt-get install nodejs npm" >&2
  exit 1
fi
if ! cmp -s tests/oidc/package-lock.json "$OIDC_ROOT/package-lock.json" || ! [ -f "$OIDC_ROOT/node_modules/oidc-provider/package.json" ]; then
  echo "== installing oidc-provider (the OAuth2 tests' OpenID provider) into $OIDC_ROOT"
  mkdir -p "$OIDC_ROOT"
  cp tests/oidc/package.json tests/oidc/package-lock.json "$OIDC_ROOT/"
  (cd "$OIDC_ROOT" && npm ci --no-audit --no-fund)
fi
export MAILVAULT_OIDC_MODULES="$OIDC_ROOT/node_modules"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy (release profile, shares the test build)"
cargo clippy --release --all-targets -- -D warnings
echo "== scripts/demo.sh (the README's first command, as a newcomer runs it)"
bash scripts/demo.sh > "${TMPDIR:-/tmp}/mailvault-demo.log" 2>&1 || { cat "${TMPDIR:-/tmp}/mailvault-demo.log"; exit 1; }
tail -n 3 "${TMPDIR:-/tmp}/mailvault-demo.log"
# Every integration test that makes an archive runs a second time with its packs in
# S3 (the others — schemas, job files, fuzz inputs, the metadata contract, and
# s3_garage, which is S3 already — have no packs). The kill tests take 8 rounds
# there instead of 20: the 20-round kill test on S3 is s3_garage's.
S3_AGAIN="--test import_export --test full_corpus --test crash --test search --test replay --test imap_pull
  --test pop3_pull --test bad_input --test private_files --test cli_edges --test corruption --test crash_index
  --test dovecot_flavours --test hostile_imap --test hostile_pop3 --test imap_crash --test imap_faults
  --test imap_tls --test jobs --test migration --test output_schemas"
echo "== cargo test --release"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --release -- "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# The archive tests again, with every archive's packs in S3 (a Garage per test binary).
if [ "$status" -eq 0 ] && [ $# -eq 0 ]; then
  echo "== the archive tests again, packs in S3 (Garage)"
  MAILVAULT_TEST_BLOBS=s3 MAILVAULT_CRASH_ROUNDS=8 cargo test --release --no-fail-fast $S3_AGAIN 2>&1 | tee -a "$log"
  status=${PIPESTATUS[0]}
fi
# And again with every archive's metadata in PostgreSQL (a server per test binary,
# a database per archive), packs local.
if [ "$status" -eq 0 ] && [ $# -eq 0 ]; then
  echo "== the archive tests again, metadata in PostgreSQL"
  MAILVAULT_TEST_META=postgres MAILVAULT_CRASH_ROUNDS=8 cargo test --release --no-fail-fast $S3_AGAIN 2>&1 | tee -a "$log"
  status=${PIPESTATUS[0]}
fi
set -e
# One closing line over every test binary (unit, integration, doc tests).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
