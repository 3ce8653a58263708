#!/usr/bin/env bash
# Refresh on PostgreSQL, two idp binaries in turn: each serves the refresh grant (ES256, wrk
# on loopback, every request spends its refresh token and sends the new one next) on a fresh
# database, ROUNDS times, and the idp's and PostgreSQL's CPU per refresh are read from /proc.
# BACKEND=sqlite runs the same on a fresh SQLite file instead.
#   bench/refresh-pg-ab.sh IDP_A IDP_B [ROUNDS]  (DURATION=8; TEST_POSTGRES_URL or the test role)
set -euo pipefail
cd "$(dirname "$0")/.."
a=$(realpath "$1"); b=$(realpath "$2"); rounds=${3:-3}
duration=${DURATION:-8}
source bench/common.sh
need_wrk
cargo build --release --locked -q -p idp --example token_load
token_load="$target/release/examples/token_load"
admin="${TEST_POSTGRES_URL:-postgres://guichet_test:guichet_test@127.0.0.1:5432/postgres}"
secret=$("$a" gen-client-secret)
{ echo 'log_level = "warn"'; code_client bench-code-es256 "$secret" ES256; } >"$work/idp.toml"
ticks() { awk '{ s += $14 + $15 } END { print s }' "$@" 2>/dev/null; }
postgres_ticks() { ticks $(pgrep -u postgres | sed 's|.*|/proc/&/stat|'); }
run() { # run LABEL BINARY
  local db="guichet_refresh_ab_$$" port key url pid
  port=$(free_port); key=$("$2" gen-master-key)
  local database=()
  if [ "${BACKEND:-postgres}" = sqlite ]; then
    # The default database, ./data/guichet.db, with its generated master key beside it.
    rm -rf "$work/data"; url="$work/data/guichet.db"
  else
    # On loopback without TLS, as bench/run.sh does.
    psql "$admin" -qc "CREATE DATABASE $db"; url="${admin%/*}/$db?sslmode=disable"
    database=(GUICHET_DATABASE_URL="$url" GUICHET_MASTER_KEY="$key")
  fi
  (cd "$work" && exec env GUICHET_CONFIG=idp.toml GUICHET_BIND="127.0.0.1:$port" "${database[@]}" \
    "$2" serve >"$work/idp.log" 2>&1) &
  pid=$!
  pids+=("$pid")
  wait_ready "http://127.0.0.1:$port/health/ready"
  GUICHET_MASTER_KEY="$key" "$token_load" "http://127.0.0.1:$port" "$url" refresh-tokens bench-code-es256 "$secret" 0 128 >"$work/refresh.txt"
  local i0 p0 i1 p1 out rps
  i0=$(ticks "/proc/$pid/stat"); p0=$(postgres_ticks)
  out=$(TOKENS="$work/refresh.txt" THREADS=2 AUTH="Basic $(printf 'bench-code-es256:%s' "$secret" | base64 -w0)" \
    wrk -t2 -c64 -d"${duration}s" -s bench/wrk/refresh.lua "http://127.0.0.1:$port/token")
  i1=$(ticks "/proc/$pid/stat"); p1=$(postgres_ticks)
  rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
  grep -q "Non-2xx" <<<"$out" && echo "$1: $(grep Non-2xx <<<"$out")" >&2
  awk -v l="$1" -v r="$rps" -v i=$((i1 - i0)) -v p=$((p1 - p0)) -v d="$duration" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "| %s | %.0f | %.0f µs | %.0f µs |\n", l, r, 1e6 * i / hz / (r * d), 1e6 * p / hz / (r * d) }'
  kill "$pid"; wait "$pid" 2>/dev/null || true
  [ "${BACKEND:-postgres}" = sqlite ] || psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"
}
echo "| build | refreshes/s | idp CPU per refresh | PostgreSQL CPU per refresh |"
echo "|---|---|---|---|"
for _ in $(seq "$rounds"); do run A "$a"; run B "$b"; done
