#!/usr/bin/env bash
# What audit writing costs the token endpoint: two idp binaries A and B (for instance a build
# without the chain, or one that skips audit writes, against the current one) serve
# client_credentials (ES256 and EdDSA clients) in turn on a fresh database, ROUNDS times each,
# with wrk on loopback. Every token issued writes one audit row. Each line gives requests/s
# and the idp's CPU per token, read from /proc.
#   bench/audit-ab.sh IDP_A IDP_B [ROUNDS]
#   (DURATION=10 CONNECTIONS=64 THREADS=2; BACKEND=postgres with TEST_POSTGRES_URL or the
#   test role runs on a fresh PostgreSQL database instead of SQLite)
set -euo pipefail
cd "$(dirname "$0")/.."
a=$(realpath "$1"); b=$(realpath "$2"); rounds=${3:-3}
duration=${DURATION:-10}; connections=${CONNECTIONS:-64}; threads=${THREADS:-2}
source bench/common.sh
need_wrk
admin="${TEST_POSTGRES_URL:-postgres://guichet_test:guichet_test@127.0.0.1:5432/postgres}"
secret=$("$a" gen-client-secret)
{ echo 'log_level = "warn"'; cc_client ES256 "$secret"; cc_client EdDSA "$secret"; } >"$work/idp.toml"
ticks() { awk '{ s += $14 + $15 } END { print s }' "$@" 2>/dev/null; }
run() { # run BINARY ALG: "requests/s CPU-µs-per-token", on a fresh database
  local port pid db="guichet_audit_ab_$$" database=() out rps t0 t1
  port=$(free_port)
  rm -rf "$work/data"
  if [ "${BACKEND:-sqlite}" = postgres ]; then
    # On loopback without TLS, as bench/run.sh does.
    psql "$admin" -qc "CREATE DATABASE $db"
    database=(GUICHET_DATABASE_URL="${admin%/*}/$db?sslmode=disable" GUICHET_MASTER_KEY="$("$1" gen-master-key)")
  fi
  (cd "$work" && exec env GUICHET_CONFIG=idp.toml GUICHET_BIND="127.0.0.1:$port" "${database[@]}" \
    "$1" serve >"$work/idp.log" 2>&1) &
  pid=$!
  pids+=("$pid")
  wait_ready "http://127.0.0.1:$port/health/ready"
  t0=$(ticks "/proc/$pid/stat")
  out=$(AUTH="Basic $(printf 'bench-%s:%s' "$2" "$secret" | base64 -w0)" BODY="grant_type=client_credentials" \
    wrk -t"$threads" -c"$connections" -d"${duration}s" -s bench/wrk/post-form.lua "http://127.0.0.1:$port/token")
  t1=$(ticks "/proc/$pid/stat")
  grep -q "Non-2xx" <<<"$out" && echo "ERRORS: $(grep Non-2xx <<<"$out")" >&2
  rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  [ "${BACKEND:-sqlite}" = postgres ] && psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"
  awk -v r="$rps" -v t=$((t1 - t0)) -v d="$duration" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%d %.1f\n", r, 1e6 * t / hz / (r * d) }'
}
echo "| round | alg | A req/s | B req/s | B/A | A / B idp CPU per token |"
echo "|---|---|---|---|---|---|"
for r in $(seq "$rounds"); do
  for alg in es256 eddsa; do
    read -r ra ca < <(run "$a" "$alg"); read -r rb cb < <(run "$b" "$alg")
    echo "| $r | ${alg^^} | $ra | $rb | $(awk -v x="$ra" -v y="$rb" 'BEGIN { printf "%.2f", y / x }') | $ca / $cb µs |"
  done
done
