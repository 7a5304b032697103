# Shared by scripts/load.sh and scripts/soak.sh: release binaries, and one example server at a
# time on loopback with throwaway agents and data. Source it; do not run it.

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/collab-target}"
export CARGO_INCREMENTAL=0

ROOMS="${ROOMS:-100}"
CUSTOMERS="${CUSTOMERS:-10}"
PORT="${PORT:-18080}"
OUT="${OUT:-$CARGO_TARGET_DIR/load}"
SERVER="$CARGO_TARGET_DIR/release/collab-server"
LOADGEN="$CARGO_TARGET_DIR/release/collab-loadgen"
mkdir -p "$OUT"

# 1,100 live streams plus the posts: more descriptors than the usual 1,024.
ulimit -n "$(ulimit -Hn)"

build() {
  cargo build --release --locked -p collab-server -p collab-loadgen
}

# Ten agents with a password made for this run; the server and the load generator both read
# COLLAB_AGENTS.
COLLAB_AGENTS="$(for i in $(seq 1 10); do printf 'load-agent-%d:%s,' "$i" "$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"; done)"
export COLLAB_AGENTS

# Every load customer's live stream comes from 127.0.0.1, and each agent watches many rooms: lift
# the server's live-stream caps (per address, per session).
export COLLAB_LIVE_STREAMS_PER_ADDRESS=1000000 COLLAB_LIVE_STREAMS_PER_SESSION=1000000

SERVER_PID=""
DATA=""

# Starts a fresh server (new data folder) and waits until it answers.
start_server() {
  DATA="$(mktemp -d)"
  # Each agent posts in many rooms, faster than one session may by default, and invites a room
  # of customers each, who all join from this one address: lift the message rate, the invite
  # guard's per-agent limit and the joins per address.
  RUST_LOG="${RUST_LOG:-warn}" "$SERVER" --addr "127.0.0.1:$PORT" --data "$DATA" \
    --message-burst 1000000 --message-rate 1000000 --invite-limits off --join-burst 1000000 \
    >"$OUT/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "the server did not start; see $OUT/server.log" >&2
  return 1
}

stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
  if [ -n "$DATA" ]; then rm -rf "$DATA"; DATA=""; fi
}
trap stop_server EXIT

# Runs the load generator against the running server: loadgen RATE WARMUP DURATION [flags...]
loadgen() {
  local rate="$1" warmup="$2" duration="$3"
  shift 3
  "$LOADGEN" --server "http://127.0.0.1:$PORT" --server-pid "$SERVER_PID" \
    --rooms "$ROOMS" --customers "$CUSTOMERS" --rate "$rate" --warmup "$warmup" --duration "$duration" "$@"
}

# The machine, for the record.
machine() {
  printf '%s, %s cores, %s RAM, load average %s\n' "$(uname -sr)" "$(nproc)" \
    "$(free -h | awk '/^Mem:/ {print $2}')" "$(cut -d' ' -f1-3 /proc/loadavg)"
}
