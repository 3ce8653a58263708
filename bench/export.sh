#!/usr/bin/env bash
# Memory and speed of the auditor's exports over a large log: ROWS audit rows (default
# 1,000,000, of realistic size) are written straight into a fresh SQLite database, an auditor
# signs in through the pages (first-login journey, codes read from the development outbox),
# then downloads the unfiltered CSV and JSON Lines exports while the idp's resident memory is
# read. The seeded rows are not a valid chain (their hashes are random): exports do not verify
# the chain, `idp audit verify` does (bench/audit.sh measures it).
#   bench/export.sh [ROWS]
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-1000000}
source bench/common.sh
cargo build --release --locked -q -p idp --bins
port=$(free_port)
cat >"$work/idp.toml" <<TOML
log_level = "warn"
public_url = "http://127.0.0.1:$port"
TOML
printf 'email,member_code,given_name,family_name,locale\nauditor@example.org,,Alex,Auditor,en\n' >"$work/people.csv"
(cd "$work" && export GUICHET_CONFIG=idp.toml &&
  "$idp" migrate >/dev/null &&
  "$idp" users import people.csv >/dev/null &&
  "$idp" roles grant --email auditor@example.org --role auditor >/dev/null)
python3 bench/export_seed.py "$work/data/guichet.db" "$rows"
start_idp "$port"
wait_ready "http://127.0.0.1:$port/health/ready"
python3 bench/export_download.py "http://127.0.0.1:$port" "$work/data/outbox" "$idp_pid"
