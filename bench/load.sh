#!/usr/bin/env bash
# Load benchmark on loopback: a bare actix-web JSON handler (the baseline), then Guichet's
# discovery, JWKS, liveness and token endpoint (client_credentials with RS256, ES256 and EdDSA
# clients) with wrk; then refresh, code exchange and introspection with the token_load example
# (they need a signed-in person and a new token each time), on SQLite. Prints Markdown tables;
# the figures go to docs/benchmarks.md.
#
#   bench/load.sh                 (DURATION=10 CONNECTIONS=64 THREADS=2 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${DURATION:-10}
connections=${CONNECTIONS:-64}
threads=${THREADS:-2}
source bench/common.sh


need_wrk

cargo build --release --locked -q -p idp --bins --example bare_json --example token_load
bare="$target/release/examples/bare_json"
token_load="$target/release/examples/token_load"
idp_port=$(free_port)
bare_port=$(free_port)
secret=$("$idp" gen-client-secret)
{
  echo 'log_level = "warn"'
  for alg in RS256 ES256 EdDSA; do cc_client "$alg" "$secret"; done
  code_client bench-code-es256 "$secret" ES256
  code_client bench-code-rs256 "$secret" RS256
} >"$work/idp.toml"

start_idp "$idp_port"
"$bare" "127.0.0.1:$bare_port" >/dev/null 2>&1 &
pids+=($!)
wait_ready "http://127.0.0.1:$idp_port/health/ready" "http://127.0.0.1:$bare_port/"

errors_total=0
measure() { # measure NAME URL [wrk options...]
  local name=$1 url=$2; shift 2
  local out rps p50 p99 errors
  out=$(wrk -t"$threads" -c"$connections" -d"${duration}s" --latency "$@" "$url")
  rps=$(awk '/^Requests\/sec:/ { printf "%d", $2 }' <<<"$out")
  p50=$(awk '$1 == "50%" { print $2 }' <<<"$out")
  p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
  errors=$(awk '/Non-2xx or 3xx responses:/ { n += $NF } /Socket errors:/ { n += $4 + $6 + $8 + $10 } END { print n + 0 }' <<<"$out")
  errors_total=$((errors_total + errors))
  printf '| %s | %s | %s | %s | %s |\n' "$name" "$rps" "$p50" "$p99" "$errors"
}

echo "wrk: $threads threads, $connections connections, ${duration}s per scenario, loopback, $(nproc) cores"
echo
echo "| scenario | requests/s | p50 | p99 | errors |"
echo "|---|---|---|---|---|"
measure "bare actix-web JSON handler (baseline)" "http://127.0.0.1:$bare_port/"
measure "GET /.well-known/openid-configuration" "http://127.0.0.1:$idp_port/.well-known/openid-configuration"
measure "GET /jwks" "http://127.0.0.1:$idp_port/jwks"
measure "GET /health/live" "http://127.0.0.1:$idp_port/health/live"
for alg in rs256 es256 eddsa; do
  auth="Basic $(printf 'bench-%s:%s' "$alg" "$secret" | base64 -w0)"
  AUTH="$auth" BODY="grant_type=client_credentials" measure \
    "POST /token client_credentials, ${alg^^}" "http://127.0.0.1:$idp_port/token" \
    -s bench/wrk/post-form.lua
done
echo
echo "token_load: $connections workers, ${duration}s per scenario (the generator shares the cores)"
echo
echo "| scenario, client | rounds/s | p50 | p99 | errors |"
echo "|---|---|---|---|---|"
run_token_load() { # run_token_load SCENARIO ALG
  local row errors
  row=$("$token_load" "http://127.0.0.1:$idp_port" "$work/data/guichet.db" "$1" "bench-code-$2" \
    "$secret" "$duration" "$connections")
  echo "${row/| $1 |/| $1, ${2^^} |}"
  errors=$(awk -F'|' '{ gsub(/ /, "", $6); print $6 }' <<<"$row")
  errors_total=$((errors_total + errors))
}
run_token_load refresh es256
run_token_load refresh rs256
run_token_load code es256
run_token_load code rs256
run_token_load introspect es256
echo
echo "idp peak RSS: $(awk '/^VmHWM/ { printf "%.1f MiB", $2 / 1024 }' "/proc/$idp_pid/status")"
if [ "$errors_total" -ne 0 ]; then
  echo "error: $errors_total requests failed" >&2
  exit 1
fi
