#!/usr/bin/env bash
# Full sign-ins under load (password + authenticator code, many distinct people) against
# `idp serve` on its embedded SQLite database with the default argon2id cost (OWASP), next to
# argon2id verification alone measured in alternating rounds of the same run; then the idp's peak RSS. Prints Markdown
# rows; the figures go to docs/benchmarks.md.
#
#   bench/login.sh           (DURATION=15 CONCURRENCY=16 PEOPLE=5000 SECOND_FACTOR=totp by default;
#                             SECOND_FACTOR=email reads each emailed code from the outbox)
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${DURATION:-15}
concurrency=${CONCURRENCY:-16}
people=${PEOPLE:-5000}
second_factor=${SECOND_FACTOR:-totp}
source bench/common.sh

# IDP and LOGIN_LOAD name prebuilt binaries (to compare two builds); otherwise both are built.
if [ -n "${IDP:-}" ]; then
  idp=$IDP
  login_load=${LOGIN_LOAD:-$target/release/examples/login_load}
else
  cargo build --release --locked -q -p idp --bins --example login_load
  login_load="$target/release/examples/login_load"
fi
idp_port=$(free_port)
secret=$("$idp" gen-client-secret)
cat > "$work/idp.toml" <<TOML
log_level = "warn"
[sign_in]
# One address sends every sign-in here: keep the per-address budget out of the way.
ip_max_failures = 100000
TOML
code_client bench-portal "$secret" >>"$work/idp.toml"

start_idp "$idp_port"
wait_ready "http://127.0.0.1:$idp_port/health/ready"
idle=$(awk '/^VmRSS/ { printf "%.1f MiB", $2 / 1024 }' "/proc/$idp_pid/status")

echo "login_load: ${duration}s per measure, $concurrency sign-ins at once, $people people, $(nproc) cores"
echo
echo "| measure | per second | p50 | p99 | errors |"
echo "|---|---|---|---|---|"
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$idp_pid/stat"; }
# CPU ticks of the idp's threads other than its argon2 threads: the server's own work, which
# moves far less from run to run than the throughput share does.
other_ticks() {
  local total=0 task
  for task in /proc/"$idp_pid"/task/*; do
    grep -q '^argon2-' "$task/comm" 2>/dev/null && continue
    total=$((total + $(awk '{ print $14 + $15 }' "$task/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
before=$(cpu_ticks)
other_before=$(other_ticks)
out=$("$login_load" "http://127.0.0.1:$idp_port" "$work/data" bench-portal "$duration" "$concurrency" "$people" "$second_factor")
after=$(cpu_ticks)
other_after=$(other_ticks)
echo "$out"
# The idp's own CPU time per sign-in (the generator runs beside it on the same cores).
logins=$(awk -F'|' '/sign-ins completed/ { gsub(/ /, "", $3); print $3 }' <<<"$out")
argon2_p50=$(awk -F'|' '/alone/ { gsub(/ |ms/, "", $4); print $4 }' <<<"$out")
awk -v t=$((after - before)) -v o=$((other_after - other_before)) -v hz="$(getconf CLK_TCK)" -v n="$logins" -v a="$argon2_p50" 'BEGIN {
  per = 1000 * t / hz / n
  printf "| idp CPU per sign-in (argon2 p50 alone: %s ms) | %.1f ms | | | |\n", a, per
  printf "| idp CPU per sign-in outside its argon2 threads | %.2f ms | | | |\n", 1000 * o / hz / n
  printf "| argon2 share of the idp CPU per sign-in | %.0f%% | | | |\n", 100 * a / per
}'
echo
echo "idp RSS: idle $idle, peak $(awk '/^VmHWM/ { printf "%.1f MiB", $2 / 1024 }' "/proc/$idp_pid/status")"
