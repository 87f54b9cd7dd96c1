#!/usr/bin/env bash
# The scale-out set-up on one machine, compose-like: a PostgreSQL 15 for the
# metadata, a Garage node for the packs (S3), one archive made for both, and N
# `mailvault serve --worker-id` processes sharing it — the third path beside the
# README's two commands (the demo, the tests). Everything lives under STATE; the
# servers listen on 127.0.0.1 only. Ctrl-C (or SIGTERM) stops the workers (each
# commits its batch in hand), then the servers.
#
#   scripts/scale-out.sh --jobs DIR [--workers N] [--state DIR]
#
# Needs: postgresql-15 (Debian), Garage (`scripts/test.sh` builds it into
# ~/.cache/mailvault-garage, or MAILVAULT_GARAGE names the binary), and a built
# mailvault (MAILVAULT_BIN, else target/release/mailvault). The job files are
# the usual ones (`mailvault run --help`); each account's password from the
# environment as the job file says. `mailvault --archive STATE/archive status`
# shows the workers and their leases while it runs.
set -euo pipefail

WORKERS=3
JOBS=
STATE="${TMPDIR:-/tmp}/mailvault-scale-out"
while [ $# -gt 0 ]; do
  case "$1" in
    --workers) WORKERS="$2"; shift 2 ;;
    --jobs) JOBS="$2"; shift 2 ;;
    --state) STATE="$2"; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$JOBS" ] || { echo "--jobs DIR is needed (a directory of job files)" >&2; exit 2; }
JOBS="$(cd "$JOBS" && pwd)"
cd "$(dirname "$0")/.."
BIN="${MAILVAULT_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/mailvault-target}/release/mailvault}"
[ -x "$BIN" ] || { echo "no mailvault at $BIN: cargo build --release (or set MAILVAULT_BIN)" >&2; exit 1; }
GARAGE="${MAILVAULT_GARAGE:-$HOME/.cache/mailvault-garage/bin/garage}"
[ -x "$GARAGE" ] || { echo "no Garage at $GARAGE: run scripts/test.sh once, or set MAILVAULT_GARAGE" >&2; exit 1; }
PGBIN=/usr/lib/postgresql/15/bin
[ -x "$PGBIN/postgres" ] || { echo "PostgreSQL 15 is needed: apt-get install postgresql-15" >&2; exit 1; }

umask 077
mkdir -p "$STATE/logs"
# The servers and workers run in sessions of their own (setsid): a Ctrl-C reaches
# this script alone, which stops the workers first (one SIGTERM each: a second
# would stop them at once) and the servers after them.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SERVERS=()
WORKER_PIDS=()
stop_all() {
  trap - INT TERM EXIT
  echo "== stopping the workers (each commits its batch in hand), then the servers"
  for p in "${WORKER_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${WORKER_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  for p in "${SERVERS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop_all INT TERM EXIT

# The ports are kept with the state: the archive's marker records them.
if [ -f "$STATE/ports" ]; then
  . "$STATE/ports"
else
  PGPORT=$(free_port); S3PORT=$(free_port); RPCPORT=$(free_port); ADMINPORT=$(free_port)
  printf 'PGPORT=%s\nS3PORT=%s\nRPCPORT=%s\nADMINPORT=%s\n' "$PGPORT" "$S3PORT" "$RPCPORT" "$ADMINPORT" > "$STATE/ports"
fi

# 1. PostgreSQL, as the `postgres` system user when run as root (initdb refuses root).
PGPASSWORD="$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
export PGPASSWORD
AS=()
if [ "$(id -u)" = 0 ]; then AS=(runuser -u postgres --); chown postgres "$STATE"; fi
if ! [ -d "$STATE/pg" ]; then
  printf '%s' "$PGPASSWORD" > "$STATE/pgpw"
  [ "$(id -u)" = 0 ] && chown postgres "$STATE/pgpw"
  "${AS[@]}" "$PGBIN/initdb" -D "$STATE/pg" -U mailvault --auth=scram-sha-256 --pwfile="$STATE/pgpw" > "$STATE/logs/initdb.log"
else
  PGPASSWORD="$(cat "$STATE/pgpw")"
fi
echo "== PostgreSQL on 127.0.0.1:$PGPORT (data in $STATE/pg)"
setsid "${AS[@]}" "$PGBIN/postgres" -D "$STATE/pg" -p "$PGPORT" -k "$STATE" -c listen_addresses=127.0.0.1 \
  > "$STATE/logs/postgres.log" 2>&1 &
SERVERS+=($!)

# 2. Garage, one node (the tests run three), a bucket and a key.
mkdir -p "$STATE/garage"
[ -f "$STATE/garage/secret" ] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$STATE/garage/secret"
cat > "$STATE/garage/garage.toml" <<EOF
metadata_dir = "$STATE/garage/meta"
data_dir = "$STATE/garage/data"
db_engine = "lmdb"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$RPCPORT"
rpc_public_addr = "127.0.0.1:$RPCPORT"
rpc_secret = "$(cat "$STATE/garage/secret")"
[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$S3PORT"
root_domain = ".s3.garage.localhost"
[admin]
api_bind_addr = "127.0.0.1:$ADMINPORT"
EOF
echo "== Garage on 127.0.0.1:$S3PORT (data in $STATE/garage)"
RUST_LOG=warn setsid "$GARAGE" -c "$STATE/garage/garage.toml" server > "$STATE/logs/garage.log" 2>&1 &
SERVERS+=($!)
g() { RUST_LOG=warn "$GARAGE" -c "$STATE/garage/garage.toml" "$@"; }
for _ in $(seq 1 100); do g status > /dev/null 2>&1 && break; sleep 0.2; done
NODE=$(g node id -q | cut -d@ -f1)
g layout assign -z dc1 -c 1G "$NODE" > /dev/null 2>&1 || true
g layout apply --version 1 > /dev/null 2>&1 || true
g bucket create mailvault > /dev/null 2>&1 || true
if ! [ -f "$STATE/garage/key" ]; then
  g key create mailvault-scale-out > "$STATE/garage/key"
  g bucket allow --read --write --owner mailvault --key mailvault-scale-out > /dev/null
fi
AWS_ACCESS_KEY_ID=$(grep -o 'GK[0-9a-f]*' "$STATE/garage/key" | head -1)
AWS_SECRET_ACCESS_KEY=$(grep -i 'secret' "$STATE/garage/key" | grep -o '[0-9a-f]\{64\}' | head -1)
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY

# 3. The archive, once: metadata in PostgreSQL, packs in Garage.
for _ in $(seq 1 100); do "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PGPORT" && break; sleep 0.2; done
ARCHIVE="$STATE/archive"
URL="postgres://mailvault@127.0.0.1:$PGPORT/postgres?sslmode=disable"
if ! [ -f "$ARCHIVE/mailvault-archive.toml" ]; then
  "$BIN" --archive "$ARCHIVE" init --meta "$URL" --blobs s3://mailvault/archive \
    --s3-endpoint "http://127.0.0.1:$S3PORT" --s3-region garage
fi

# 4. The workers.
for i in $(seq 1 "$WORKERS"); do
  setsid "$BIN" --archive "$ARCHIVE" serve --jobs "$JOBS" --worker-id "worker$i" > "$STATE/logs/worker$i.log" 2>&1 &
  WORKER_PIDS+=($!)
  echo "== worker$i started (log: $STATE/logs/worker$i.log)"
done
echo "== $WORKERS workers share $ARCHIVE"
echo "   status: PGPASSWORD=\$(cat $STATE/pgpw) $BIN --archive $ARCHIVE status    (Ctrl-C here stops all)"
wait
