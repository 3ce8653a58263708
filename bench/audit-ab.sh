#!/usr/bin/env bash
# What the audit hash chain costs the token endpoint: two idp binaries (A without the chain,
# B with it) serve client_credentials (ES256 and EdDSA clients) on SQLite in turn, ROUNDS
# times each, with wrk on loopback. Every token issued writes one audit row.
#   bench/audit-ab.sh IDP_A IDP_B [ROUNDS]     (DURATION=10 CONNECTIONS=64 THREADS=2)
set -euo pipefail
cd "$(dirname "$0")/.."
a=$(realpath "$1"); b=$(realpath "$2"); rounds=${3:-3}
duration=${DURATION:-10}; connections=${CONNECTIONS:-64}; threads=${THREADS:-2}
work=$(mktemp -d); pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
secret=$("$a" gen-client-secret)
{
  echo 'log_level = "warn"'
  for alg in ES256 EdDSA; do
    printf '[[clients]]\nid = "bench-%s"\nname = "Bench"\nfirst_party = true\nsecret = "%s"\ngrants = ["client_credentials"]\nscopes = ["members.read"]\nid_token_alg = "%s"\n' "${alg,,}" "$secret" "$alg"
  done
} > "$work/idp.toml"
run() { # run BINARY ALG: requests/s, on a fresh database
  rm -rf "$work/data"
  (cd "$work" && GUICHET_CONFIG=idp.toml GUICHET_BIND="127.0.0.1:$port" exec "$1" serve >"$work/idp.log" 2>&1) &
  pid=$!
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null && break; sleep 0.1; done
  AUTH="Basic $(printf 'bench-%s:%s' "$2" "$secret" | base64 -w0)" BODY="grant_type=client_credentials" \
    wrk -t"$threads" -c"$connections" -d"${duration}s" -s bench/wrk/post-form.lua "http://127.0.0.1:$port/token" \
    | awk '/^Requests\/sec:/ { printf "%d", $2 } /Non-2xx/ { print " ERRORS " $NF > "/dev/stderr" }'
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
}
echo "| round | alg | A (no chain) | B (chain) | B/A |"
echo "|---|---|---|---|---|"
for r in $(seq "$rounds"); do
  for alg in es256 eddsa; do
    ra=$(run "$a" "$alg"); rb=$(run "$b" "$alg")
    echo "| $r | ${alg^^} | $ra | $rb | $(awk -v x="$ra" -v y="$rb" 'BEGIN { printf "%.2f", y / x }') |"
  done
done
