#!/usr/bin/env bash
# Mail delivery under load on loopback: a private redis-server, a real SMTP server (aiosmtpd
# writing a Maildir without fsync, tests/smtp/smtp_sink.py) and one then two release `mail-worker`s; the `mail_load` example enqueues
# sign-in codes through the idp's queue at a fixed rate and reports enqueue-to-delivery latency.
# Prints Markdown rows; the figures go to docs/benchmarks.md.
#
#   bench/mail.sh            (DURATION=15 RATES="200 400" by default)
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${DURATION:-15}
rates=${RATES:-200 400}
source bench/common.sh

cargo build --release --locked -q -p mail-worker --bins --example mail_load
worker_bin="$target/release/mail-worker"
mail_load="$target/release/examples/mail_load"
python3 -c 'import aiosmtpd' 2>/dev/null || python3 -m pip install --quiet aiosmtpd

key=$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')

run() { # run WORKERS RATE
  local workers=$1 rate=$2 redis_port smtp_port
  redis_port=$(free_port)
  smtp_port=$(free_port)
  rm -rf "$work/maildir"
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
  local redis_pid=$!
  PYTHONPATH=tests/smtp python3 -m aiosmtpd -n -l "127.0.0.1:$smtp_port" -c smtp_sink.FastMaildir "$work/maildir" >/dev/null 2>&1 &
  local smtp_pid=$!
  pids+=("$redis_pid" "$smtp_pid")
  sleep 1
  local worker_pids=()
  for i in $(seq "$workers"); do
    GUICHET_WORKER_REDIS_URL="redis://127.0.0.1:$redis_port" GUICHET_WORKER_QUEUE_KEY="$key" \
      GUICHET_WORKER_CONSUMER="bench-$i" GUICHET_WORKER_SMTP__PORT="$smtp_port" \
            GUICHET_WORKER_SMTP__FROM="Guichet <no-reply@example.org>" GUICHET_WORKER_LOG_LEVEL=warn \
      "$worker_bin" >>"$work/worker.log" 2>&1 &
    worker_pids+=($!)
    pids+=($!)
  done
  sleep 1
  "$mail_load" "redis://127.0.0.1:$redis_port" "$key" "$work/maildir" "$rate" "$duration" \
    "$workers worker(s)"
    # Workers first (SIGTERM: they finish what is in flight), then the servers.
  kill "${worker_pids[@]}" 2>/dev/null || true
  wait "${worker_pids[@]}" 2>/dev/null || true
  kill "$redis_pid" "$smtp_pid" 2>/dev/null || true
  wait "$redis_pid" "$smtp_pid" 2>/dev/null || true
}

echo "mail_load: ${duration}s per run, loopback, $(nproc) cores"
echo
echo "| workers | target/s | enqueued/s | delivered/s | p50 | p99 | lost |"
echo "|---|---|---|---|---|---|---|"
for rate in $rates; do
  run 1 "$rate"
  run 2 "$rate"
done
