#!/usr/bin/env bash
# Member import throughput: `idp users import` of a generated CSV (ROWS rows, 1% invalid) into a
# fresh SQLite database, then the same file again (everything already present), in rows/s.
# Imported members have no password, so no hashing is involved.
#   bench/import.sh [ROWS]      (default 100000)
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${1:-100000}"
cargo build -q --release -p idp --bin idp
source bench/common.sh
python3 - "$rows" >"$work/members.csv" <<'PY'
import sys
n = int(sys.argv[1])
print("email,member_code,given_name,family_name,locale")
for i in range(n):
    if i % 100 == 99:
        print(f"not-an-email-{i},,Marie,Tremblay,fr-CA")
    else:
        code = [f"{i % 100000:05d}", f"R{i % 100000:05d}", f"E{i:08d}", f"500{i % 100000:05d}"][i % 4]
        print(f"m{i}@example.org,{code},Marie,Tremblay-{i},fr-CA")
PY
cd "$work"
export GUICHET_DATABASE_URL=sqlite://data/guichet.db
"$idp" migrate >/dev/null
for run in first again; do
  # Exit status 1 is expected: the file has invalid rows.
  out=$("$idp" users import members.csv --json || true)
  python3 -c '
import json, sys
r = json.loads(sys.argv[2])
rate = r["rows"] / r["seconds"]
print("%5s: %d rows, %d imported, %d already present, %d invalid, %.2f s, %.0f rows/s" % (
    sys.argv[1], r["rows"], r["imported"], r["already_present"], len(r["invalid"]), r["seconds"], rate))
' "$run" "$out"
done
