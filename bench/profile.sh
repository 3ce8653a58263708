#!/usr/bin/env bash
# Where Guichet's time goes on one scenario: `perf record -g` on the idp (SQLite) during a wrk
# run, then the share of CPU per thread and the hottest functions.
#   bench/profile.sh introspection|userinfo|refresh_token|client_credentials_rs256|client_credentials_es256   (DURATION=12)
set -euo pipefail
cd "$(dirname "$0")/.."
scenario=${1:?usage: bench/profile.sh introspection|userinfo|refresh_token|client_credentials_rs256|client_credentials_es256}
duration=${DURATION:-12}
source bench/common.sh
need_wrk
command -v perf >/dev/null || { echo "perf is missing: apt-get install linux-perf" >&2; exit 1; }
cargo build --release --locked -q -p idp --bins --example token_load
secret=$("$idp" gen-client-secret)
{
  echo 'log_level = "warn"'
  for alg in RS256 ES256; do cc_client "$alg" "$secret"; done
  code_client bench-code-es256 "$secret" ES256
} >"$work/idp.toml"
port=$(free_port)
start_idp "$port"
base="http://127.0.0.1:$port"
wait_ready "$base/health/ready"
case "$scenario" in
  introspection)
    at=$(curl -fsS -u "bench-es256:$secret" -d grant_type=client_credentials "$base/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
    export AUTH="Basic $(printf 'bench-es256:%s' "$secret" | base64 -w0)" BODY="token=$at"
    args=(-s bench/wrk/post-form.lua "$base/introspect") ;;
  userinfo)
    at=$("$target/release/examples/token_load" "$base" "$work/data/guichet.db" access-token bench-code-es256 "$secret" 1 1)
    args=(-H "Authorization: Bearer $at" "$base/userinfo") ;;
  refresh_token)
    "$target/release/examples/token_load" "$base" "$work/data/guichet.db" refresh-tokens bench-code-es256 "$secret" 0 128 >"$work/refresh.txt"
    export TOKENS="$work/refresh.txt" THREADS=2 AUTH="Basic $(printf 'bench-code-es256:%s' "$secret" | base64 -w0)"
    args=(-s bench/wrk/refresh.lua "$base/token") ;;
  client_credentials_rs256|client_credentials_es256)
    export AUTH="Basic $(printf 'bench-%s:%s' "${scenario#client_credentials_}" "$secret" | base64 -w0)" BODY="grant_type=client_credentials"
    args=(-s bench/wrk/post-form.lua "$base/token") ;;
  *) echo "unknown scenario $scenario" >&2; exit 2 ;;
esac
wrk -t2 -c64 -d"${duration}s" "${args[@]}" >"$work/wrk.txt" &
wrk_pid=$!
sleep 2
perf record -q -g -o "${PERF_DATA:-$work/perf.data}" -p "$idp_pid" -- sleep $((duration - 4)) 2>/dev/null
wait "$wrk_pid"
grep -E "Requests/sec" "$work/wrk.txt"
echo "CPU by thread:"
perf report -q -i "${PERF_DATA:-$work/perf.data}" --no-children --sort comm --stdio -g none 2>/dev/null | grep -v '^$' | head -8
echo "hottest functions (self time):"
perf report -q -i "${PERF_DATA:-$work/perf.data}" --no-children --sort symbol --stdio -g none 2>/dev/null \
  | grep -v '^$' | sed -E 's/ +- +- *$//' | head -16
