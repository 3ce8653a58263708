#!/usr/bin/env bash
# Audit chain throughput on SQLite and PostgreSQL: appends (groups of 4, 16 and 64, and one per
# transaction) and `verify`, in rows per second.
#   bench/audit.sh [ROWS]      (default 20000; PostgreSQL: TEST_POSTGRES_URL or the test role)
set -euo pipefail
cd "$(dirname "$0")/.."
export AUDIT_BENCH_ROWS="${1:-20000}"
cargo build -q --release -p idp --example audit_chain
bin="$(realpath -m "${CARGO_TARGET_DIR:-target}")/release/examples/audit_chain"
"$bin"
admin="${TEST_POSTGRES_URL:-postgres://guichet_test:guichet_test@127.0.0.1:5432/postgres}"
db="guichet_bench_audit_$$"
psql "$admin" -qc "CREATE DATABASE $db"
trap 'psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"' EXIT
AUDIT_BENCH_POSTGRES_URL="${admin%/*}/$db" "$bin"
