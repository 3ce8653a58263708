#!/usr/bin/env bash
# Measures the resident memory of `idp serve` on SQLite: right after it is ready, and idle
# again after a burst of readiness requests. Loopback only.
#
#   bench/idle-rss.sh [REQUESTS]      (default 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${1:-1000}
target=${CARGO_TARGET_DIR:-target}

cargo build --release --locked -p idp >/dev/null 2>&1
bin=$(realpath "$target/release/idp")
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$work" && GUICHET_BIND="127.0.0.1:$port" GUICHET_LOG_LEVEL=warn exec "$bin" serve) &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT

for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null && break
  sleep 0.1
done
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$pid/status"; }
hwm() { awk '/^VmHWM/ { print $2 }' "/proc/$pid/status"; }

sleep 5
ready_rss=$(rss)
for _ in $(seq "$requests"); do curl -fs -o /dev/null "http://127.0.0.1:$port/health/ready"; done
sleep 5
idle_rss=$(rss)
printf 'binary size:                 %s bytes\n' "$(stat -c %s "$bin")"
printf 'RSS when ready:              %s KiB\n' "$ready_rss"
printf 'RSS idle after %5d checks: %s KiB (peak %s KiB)\n' "$requests" "$idle_rss" "$(hwm)"
