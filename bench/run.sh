#!/usr/bin/env bash
# Guichet side by side with the reference OpenID provider (panva's certified oidc-provider on
# Node.js, in-memory adapter, same clients), on loopback, with the same load generator (wrk) and
# concurrency, alternating the two servers run by run. Then Guichet's own scenarios (code
# exchange, full sign-ins with each second factor), and the report: bench/results/latest.json, and docs/benchmarks.md's
# side-by-side section with its charts (docs/bench/*.svg) regenerated from it.
#
#   bench/run.sh        (DURATION=5 ROUNDS=2 CONNECTIONS=64 THREADS=2 by default)
#
# Exits non-zero if any request failed.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${DURATION:-5}
rounds=${ROUNDS:-2}
connections=${CONNECTIONS:-64}
threads=${THREADS:-2}
source bench/common.sh

need_wrk
(cd bench/reference && [ -d node_modules/oidc-provider ] || npm ci --no-audit --no-fund >/dev/null)
cargo build --release --locked -q -p idp --bins --example token_load --example sign_bound --example login_load
cargo build --release --locked -q -p bench-report
token_load="$target/release/examples/token_load"
sign_bound="$target/release/examples/sign_bound"
login_load="$target/release/examples/login_load"
report="$target/release/bench-report"

secret=$("$idp" gen-client-secret)
idp_port=$(free_port)
ref_port=$(free_port)
{
  echo 'log_level = "warn"'
  # One address sends every sign-in here: keep the per-address budget out of the way.
  printf '[sign_in]\nip_max_failures = 100000\n'
  for alg in RS256 ES256 EdDSA; do cc_client "$alg" "$secret"; done
  code_client bench-code-es256 "$secret" ES256
  code_client bench-portal "$secret"
} > "$work/idp.toml"
start_idp "$idp_port"
(cd bench/reference && PORT="$ref_port" SECRET="$secret" exec node server.mjs >"$work/reference.log" 2>&1) &
pids+=($!)
ref_pid=$!
wait_ready "http://127.0.0.1:$idp_port/health/ready" "http://127.0.0.1:$ref_port/.well-known/openid-configuration"
idle_idp=$(awk '/^VmRSS/ { print $2 }' "/proc/$idp_pid/status")
idle_ref=$(awk '/^VmRSS/ { print $2 }' "/proc/$ref_pid/status")

ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
rows="$work/rows.tsv"
: >"$rows"

# run SERVER SCENARIO PID URL [wrk options...]: one wrk run, one TSV row.
run() {
  local server=$1 scenario=$2 pid=$3 url=$4; shift 4
  echo 5 >"/proc/$pid/clear_refs" 2>/dev/null || true
  local before after out
  before=$(ticks "$pid")
  out=$(wrk -t"$threads" -c"$connections" -d"${duration}s" --latency "$@" "$url")
  after=$(ticks "$pid")
  awk -v server="$server" -v scenario="$scenario" -v cpu="$(( after - before ))" -v hz="$hz" \
      -v rss="$(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status")" '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    / requests in / { requests = $1 }
    /^Requests\/sec:/ { rps = $2 }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    $1 == "Latency" && max == "" { max = ms($4) }
    /Non-2xx or 3xx responses:/ { errors += $NF }
    /Socket errors:/ { errors += $4 + $6 + $8 + $10 }
    END { printf "%s\t%s\t%.1f\t%.3f\t%.3f\t%.3f\t%d\t%.4f\t%d\t%d\n", server, scenario, rps, p50, p99, max, errors + 0, (cpu / hz) / (requests / 1000), rss, requests }
  ' <<<"$out" >>"$rows"
  tail -1 "$rows"
}

# The access token of a client_credentials grant at SERVER's token endpoint.
cc_token() { curl -fsS -u "$2:$secret" -d grant_type=client_credentials "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'; }

idp_url="http://127.0.0.1:$idp_port"
# Refresh tokens handed to wrk: two per connection.
pool=$(( connections * 2 ))
ref_url="http://127.0.0.1:$ref_port"
for round in $(seq "$rounds"); do
  echo "round $round of $rounds" >&2
  for server in guichet reference; do
    if [ "$server" = guichet ]; then pid=$idp_pid base=$idp_url token=/token introspect=/introspect
    else pid=$ref_pid base=$ref_url token=/token introspect=/token/introspection; fi
    run "$server" discovery "$pid" "$base/.well-known/openid-configuration"
    run "$server" jwks "$pid" "$base/jwks"
    for alg in rs256 es256 eddsa; do
      AUTH="Basic $(printf 'bench-%s:%s' "$alg" "$secret" | base64 -w0)" BODY="grant_type=client_credentials" \
        run "$server" "client_credentials_$alg" "$pid" "$base$token" -s bench/wrk/post-form.lua
    done
    # Introspection of one access token. The reference cannot introspect JWT access tokens
    # (it answers unsupported_token_type), so it gets one of its opaque tokens.
    if [ "$server" = guichet ]; then
      at=$(cc_token "$base$token" bench-es256) client=bench-es256
    else
      at=$(cc_token "$base$token" bench-opaque) client=bench-opaque
    fi
        AUTH="Basic $(printf '%s:%s' "$client" "$secret" | base64 -w0)" BODY="token=$at" \
      run "$server" introspection "$pid" "$base$introspect" -s bench/wrk/post-form.lua
    # UserInfo with one signed-in person's access token: a JWT verified by Guichet, an opaque
    # token looked up by the reference.
    if [ "$server" = guichet ]; then
      at=$("$token_load" "$base" "$work/data/guichet.db" access-token bench-code-es256 "$secret" 1 1) userinfo=/userinfo
    else
      at=$(cd bench/reference && BASE="$base" SECRET="$secret" node sign-in.mjs) userinfo=/me
    fi
        run "$server" userinfo "$pid" "$base$userinfo" -H "Authorization: Bearer $at"
    # Refresh with rotation on every use (the reference is set to rotate too): wrk spends each
    # refresh token once and sends the new one next (bench/wrk/refresh.lua).
    if [ "$server" = guichet ]; then
      "$token_load" "$base" "$work/data/guichet.db" refresh-tokens bench-code-es256 "$secret" 0 "$pool" >"$work/refresh.txt"
      client=bench-code-es256
    else
      (cd bench/reference && BASE="$base" SECRET="$secret" COUNT="$pool" node sign-in.mjs) >"$work/refresh.txt"
      client=bench-code
    fi
    TOKENS="$work/refresh.txt" THREADS="$threads" AUTH="Basic $(printf '%s:%s' "$client" "$secret" | base64 -w0)" \
      run "$server" refresh_token "$pid" "$base$token" -s bench/wrk/refresh.lua
  done
done

# Guichet on PostgreSQL (with Redis), the scenarios that write (every token is an audit row)
# and read the database; ratios against the same reference figures.
admin="${TEST_POSTGRES_URL:-postgres://guichet_test:guichet_test@127.0.0.1:5432/postgres}"
pg_db="guichet_bench_run_$$"
psql "$admin" -qc "CREATE DATABASE $pg_db"
trap 'cleanup; psql "$admin" -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1' EXIT
mkdir -p "$work/pg"
cp "$work/idp.toml" "$work/pg/idp.toml"
pg_port=$(free_port)
# On loopback, without TLS, as a database on the same host is reached (libpq's default
# negotiates TLS whenever the server offers it, which cost refresh about 12% here).
pg_database="${admin%/*}/$pg_db?sslmode=disable"
pg_key=$("$idp" gen-master-key)
(cd "$work/pg" && GUICHET_CONFIG=idp.toml GUICHET_BIND="127.0.0.1:$pg_port" \
    GUICHET_DATABASE_URL="$pg_database" GUICHET_REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}" \
  GUICHET_MASTER_KEY="$pg_key" \
  exec "$idp" serve >"$work/pg/idp.log" 2>&1) &
pids+=($!)
pg_pid=$!
wait_ready "http://127.0.0.1:$pg_port/health/ready"
pg_url="http://127.0.0.1:$pg_port"
for round in $(seq "$rounds"); do
  for alg in rs256 es256 eddsa; do
    AUTH="Basic $(printf 'bench-%s:%s' "$alg" "$secret" | base64 -w0)" BODY="grant_type=client_credentials" \
      run guichet "client_credentials_$alg on PostgreSQL" "$pg_pid" "$pg_url/token" -s bench/wrk/post-form.lua
  done
  at=$(cc_token "$pg_url/token" bench-es256)
    AUTH="Basic $(printf 'bench-es256:%s' "$secret" | base64 -w0)" BODY="token=$at" \
    run guichet "introspection on PostgreSQL" "$pg_pid" "$pg_url/introspect" -s bench/wrk/post-form.lua
  at=$(GUICHET_MASTER_KEY="$pg_key" "$token_load" "$pg_url" "$pg_database" access-token bench-code-es256 "$secret" 1 1)
  run guichet "userinfo on PostgreSQL" "$pg_pid" "$pg_url/userinfo" -H "Authorization: Bearer $at"
  GUICHET_MASTER_KEY="$pg_key" "$token_load" "$pg_url" "$pg_database" refresh-tokens bench-code-es256 "$secret" 0 "$pool" >"$work/refresh.txt"
  TOKENS="$work/refresh.txt" THREADS="$threads" AUTH="Basic $(printf 'bench-code-es256:%s' "$secret" | base64 -w0)" \
    run guichet "refresh_token on PostgreSQL" "$pg_pid" "$pg_url/token" -s bench/wrk/refresh.lua
done

# Guichet alone: the code exchange needs a new code each time (authorize with the session,
# then exchange).
for scenario in code; do
  before=$(ticks "$idp_pid")
  row=$("$token_load" "$idp_url" "$work/data/guichet.db" "$scenario" bench-code-es256 "$secret" "$duration" "$connections")
  after=$(ticks "$idp_pid")
  # | scenario | rounds/s | p50 | p99 | errors |
  awk -F'|' -v cpu="$(( after - before ))" -v hz="$hz" -v d="$duration" -v scenario="$scenario" \
      -v rss="$(awk '/^VmHWM/ { print $2 }' "/proc/$idp_pid/status")" '
    function ms(v) { gsub(/ /, "", v); if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    { rps = $3 + 0; printf "guichet\t%s\t%.1f\t%.3f\t%.3f\t%.3f\t%d\t%.4f\t%d\t%d\n", scenario "_es256", rps, ms($4), ms($5), ms($5), $6 + 0, (cpu / hz) / (rps * d / 1000), rss, rps * d }
  ' <<<"$row" >>"$rows"
  tail -1 "$rows"
done

# Full sign-ins (password and second factor, each person once), with argon2id alone measured
# in alternating rounds by the same process: the hashing bound. The emailed codes are read from the
# development outbox as the server delivers them.
people=${PEOPLE:-4000}
for factor in totp email; do
  scenario=sign_in_password_totp
  [ "$factor" = email ] && scenario=sign_in_password_email_code
  before=$(ticks "$idp_pid")
  out=$("$login_load" "$idp_url" "$work/data" bench-portal "$duration" 16 "$people" "$factor")
  after=$(ticks "$idp_pid")
  awk -F'|' -v cpu="$(( after - before ))" -v hz="$hz" -v scenario="$scenario" \
      -v rss="$(awk '/^VmHWM/ { print $2 }' "/proc/$idp_pid/status")" '
    function ms(v) { gsub(/ /, "", v); if (v ~ /ms$/) return v + 0; return v }
    /sign-ins completed/ { n = $3 + 0 }
    /argon2id verifications completed/ { verified = $3 + 0 }
    /argon2id verification alone/ { printf "bound\targon2_verify:%s\t%.1f\t%.3f\t%.3f\t%.3f\t0\t0\t0\t%d\n", scenario, $3, ms($4), ms($5), ms($5), verified }
    /full sign-in/ { printf "guichet\t%s\t%.1f\t%.3f\t%.3f\t%.3f\t%d\t%.4f\t%d\t%d\n", scenario, $3, ms($4), ms($5), ms($5), $6 + 0, (cpu / hz) / (n / 1000), rss, n }
  ' <<<"$out" >>"$rows"
  tail -2 "$rows"
done

# The signing bounds: tokens signed per second per algorithm on every core, nothing else, by
# Guichet's signer and by jsonwebtoken::encode.
"$sign_bound" "$duration" >>"$rows"
tail -6 "$rows"

mkdir -p bench/results
"$report" "$rows" --idle-rss "guichet=$idle_idp" --idle-rss "reference=$idle_ref" \
  --machine "$(nproc) cores, wrk -t$threads -c$connections -d${duration}s, $rounds rounds" \
  --json bench/results/latest.json --markdown docs/benchmarks.md --charts docs/bench
errors=$(awk -F'\t' '{ n += $7 } END { print n + 0 }' "$rows")
if [ "$errors" -ne 0 ]; then
  echo "error: $errors requests failed" >&2
  exit 1
fi
