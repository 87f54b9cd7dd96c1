#!/usr/bin/env bash
# Builds mailvault and runs it on the bundled real sample (500 messages, see
# demo/sample/ORIGIN.md): import into a fresh embedded archive (indexed for search as
# it goes), statistics, verify, a few searches, export. No server needed.
# Set MAILVAULT_DEMO_ARCHIVE to keep the archive somewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mailvault-target}"

# libclang-dev, for RocksDB's bindings: asked of dpkg (a libclang-cpp.so alone is not it).
# shellcheck source=lib/packages.sh
. scripts/lib/packages.sh
ensure_packages libclang-dev
cargo build --release --quiet
mv="$CARGO_TARGET_DIR/release/mailvault"
work=$(mktemp -d)
archive="${MAILVAULT_DEMO_ARCHIVE:-$work/archive}"

set -x
"$mv" --archive "$archive" import demo/sample/spamassassin --account spamassassin
"$mv" --archive "$archive" import demo/sample/enron --account enron
# The same files again: nothing new is stored.
"$mv" --archive "$archive" import demo/sample/enron --account enron
"$mv" --archive "$archive" stats
"$mv" --archive "$archive" verify
"$mv" --archive "$archive" search from:sherri.sera@enron.com --limit 5
"$mv" --archive "$archive" search 'list:ilug.linux.ie date:2002-08 (kernel OR rpm)' --limit 5
"$mv" --archive "$archive" search --format json 'has:attachment' --limit 2
"$mv" --archive "$archive" export --format mbox --out "$work/export" --account enron
set +x
echo "exported mbox files:"; find "$work/export" -name '*.mbox' | sed "s|$work/||"
echo "archive: $archive"
