# Shared by the load scripts: a scratch directory and processes cleaned up on exit, free
# loopback ports, and waiting for the idp. Source it after `cd` to the repository root.
target=$(realpath -m "${CARGO_TARGET_DIR:-target}")
idp="$target/release/idp"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_idp PORT: runs `idp serve` in $work with $work/idp.toml; sets idp_pid.
start_idp() {
  (cd "$work" && GUICHET_CONFIG=idp.toml GUICHET_BIND="127.0.0.1:$1" exec "$idp" serve >"$work/idp.log" 2>&1) &
  pids+=($!)
  idp_pid=$!
}

# wait_ready URL...: waits up to 10 s for every URL to answer.
wait_ready() {
    local url ok
  for _ in $(seq 100); do
    ok=1
    for url in "$@"; do curl -fs "$url" >/dev/null || ok=0; done
    [ "$ok" = 1 ] && return 0
    sleep 0.1
  done
  echo "not ready: $*" >&2
  return 1
}

# code_client ID SECRET [ALG]: a confidential authorization-code client of the benchmark
# configuration (first party, a callback on localhost:9000, openid and email).
code_client() {
  cat <<TOML
[[clients]]
id = "$1"
name = "$1"
first_party = true
secret = "$2"
redirect_uris = ["http://localhost:9000/callback"]
scopes = ["openid", "email"]
id_token_alg = "${3:-RS256}"
TOML
}

# cc_client ALG SECRET: the client_credentials client `bench-ALG` (lower case) signing with ALG.
cc_client() {
  cat <<TOML
[[clients]]
id = "bench-${1,,}"
name = "bench-${1,,}"
first_party = true
secret = "$2"
grants = ["client_credentials"]
scopes = ["members.read"]
id_token_alg = "$1"
TOML
}

# need_wrk: installs wrk (Debian's package) when missing.
need_wrk() {
  command -v wrk >/dev/null 2>&1 && return 0
  [ "$(id -u)" = 0 ] || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
}
