#!/usr/bin/env bash
# Runs every check and every test of the workspace against real services.
#
# PostgreSQL and Redis are started when installed but stopped, and installed with apt when
# missing (as root, or through sudo). When a service cannot be had, this script fails: no test
# is ever skipped for want of a service.
#
# Environment (all optional):
#   TEST_POSTGRES_URL  PostgreSQL URL of a role allowed to create databases
#                      (default: a guichet_test role this script creates on 127.0.0.1:5432)
#   TEST_REDIS_URL     Redis URL (default redis://127.0.0.1:6379)
#
# Chromium (Debian's package) and the Node packages of tests/browser are installed when
# missing; screenshots of the browser tests are written to artifacts/. nginx (for the scale-out
# test) is installed when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }
die() { printf '\nerror: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root (or sudo) to run: $*"
  fi
}

apt_updated=
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install $* yourself"
  if [ -z "$apt_updated" ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  log "installing $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local seconds=$1 what=$2; shift 2
  for _ in $(seq "$seconds"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  die "$what did not answer within ${seconds}s"
}

ensure_postgres() {
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    apt_install postgresql
  fi
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    log "starting PostgreSQL"
    local version
    for version in $(ls /etc/postgresql 2>/dev/null); do
      as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    done
    wait_for 30 "PostgreSQL on 127.0.0.1:5432" pg_isready -q -h 127.0.0.1 -p 5432
  fi
  if [ -z "${TEST_POSTGRES_URL:-}" ]; then
    # A dedicated role with a password works whether the server trusts loopback or asks for
    # scram passwords (Debian's default); it is created through the local socket as postgres.
    as_root runuser -u postgres -- psql -qtA -v ON_ERROR_STOP=1 <<'SQL' >/dev/null
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'guichet_test') THEN
    CREATE ROLE guichet_test LOGIN CREATEDB PASSWORD 'guichet_test';
  END IF;
END
$$;
SQL
    export TEST_POSTGRES_URL="postgres://guichet_test:guichet_test@127.0.0.1:5432/postgres"
  fi
  echo "PostgreSQL ready: $(psql "$TEST_POSTGRES_URL" -qtAc 'SHOW server_version')"
  # Databases left behind by an interrupted earlier run.
  local stale
  for stale in $(psql "$TEST_POSTGRES_URL" -qtAc \
      "SELECT datname FROM pg_database WHERE datname LIKE 'guichet\_t\_%'"); do
    psql "$TEST_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS \"$stale\" WITH (FORCE)" || true
  done
}

redis_answers() { [ "$(redis-cli -u "$TEST_REDIS_URL" ping 2>/dev/null)" = "PONG" ]; }

ensure_redis() {
  export TEST_REDIS_URL="${TEST_REDIS_URL:-redis://127.0.0.1:6379}"
  if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    apt_install redis-server
  fi
  if ! redis_answers; then
    log "starting Redis"
    as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 \
      --save "" --appendonly no --dir /tmp --logfile /tmp/guichet-test-redis.log
    wait_for 15 "Redis at $TEST_REDIS_URL" redis_answers
  fi
  echo "Redis ready: $(redis-cli -u "$TEST_REDIS_URL" info server | grep -m1 redis_version | tr -d '\r')"
}

# The scale-out test puts nginx (Debian's package, run by the test on a free port) in front of
# two idp instances.
ensure_nginx() {
  if [ ! -x /usr/sbin/nginx ] && ! command -v nginx >/dev/null 2>&1; then
    apt_install nginx-light || apt_install nginx
  fi
  echo "nginx ready: $( (/usr/sbin/nginx -v || nginx -v) 2>&1 | head -1)"
}

# Browser tests drive Debian's Chromium with playwright-core (no browser download).
ensure_browser() {
  if [ ! -x /usr/bin/chromium ]; then
    apt_install chromium
  fi
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm
  fi
  local dir=tests/browser
  if [ ! -d "$dir/node_modules/playwright-core" ] \
      || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    log "installing the browser test packages"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
  echo "Chromium ready: $(/usr/bin/chromium --version 2>/dev/null | head -1)"
}

# The mail worker's tests send to a real SMTP server: Python's aiosmtpd.
ensure_smtp_sink() {
  command -v python3 >/dev/null 2>&1 || apt_install python3
  if ! python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
    log "installing aiosmtpd"
    python3 -m pip install --quiet aiosmtpd 2>/dev/null \
      || python3 -m pip install --quiet --break-system-packages aiosmtpd 2>/dev/null \
      || apt_install python3-aiosmtpd
  fi
  echo "SMTP test server ready: aiosmtpd $(python3 -c 'import aiosmtpd; print(aiosmtpd.__version__)')"
}

command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust (rustup)"



log "services"
ensure_postgres
ensure_redis
ensure_smtp_sink
ensure_browser
ensure_nginx

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "cargo test (SQLite and PostgreSQL)"
test_log=$(mktemp)
trap 'rm -f "$test_log"' EXIT
set +e
cargo test --workspace --all-targets --locked 2>&1 | tee "$test_log"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole workspace, summed over every test binary.
summary=$(awk '/^test result:/ { p += $4; f += $6 } END { printf "%d passed, %d failed", p, f }' "$test_log")
echo
echo "workspace: $summary"
if [ "$status" -ne 0 ]; then exit "$status"; fi
case "$summary" in
  "0 passed"*) die "no test ran" ;;
esac
