#!/usr/bin/env bash
# Memory per live connection: the example server (release) with 1,000, 5,000 and 10,000 idle
# live streams (server-sent events), 100 rooms each time, so that only the streams change: 10,
# 50 and 100 listeners per room (the room's agent and its customers, each customer through a
# link of its own). Each count gets a fresh server; its resident set is read from /proc before
# the load generator connects (idle), and by the load generator at the end of SETTLE + 5 s of
# one post per second through the open streams (so that every stream has carried events).
#
#   scripts/sse-memory.sh                   # 1,000, 5,000 and 10,000 streams
#   STREAMS_PER_ROOM="10 100" scripts/sse-memory.sh
#
# Prints, per count, the server's RSS idle and with the streams, and the marginal RSS per
# stream; then the slope between the counts (what one more stream costs, the rooms' own memory
# left out). Settings: PORT=18080, SETTLE=20 (seconds the streams stay open before the
# reading), OUT=$CARGO_TARGET_DIR/load.
set -euo pipefail
ROOMS=100
source "$(dirname "$0")/load-common.sh"

SETTLE="${SETTLE:-20}"
read -r -a PER_ROOM <<<"${STREAMS_PER_ROOM:-10 50 100}"

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

build
echo "machine: $(machine)"
printf '%8s %12s %12s %14s\n' streams idle_kib with_kib kib_per_stream
declare -a counts rss
for per_room in "${PER_ROOM[@]}"; do
  streams=$((ROOMS * per_room))
  start_server
  sleep 1
  idle="$(rss_kib "$SERVER_PID")"
  # Customers per room: the room's agent holds a stream too.
  CUSTOMERS=$((per_room - 1))
  set +e
  loadgen 1 "$SETTLE" 5 --quiet --max-p99-ms 100000 --sample-every 5 --csv "$OUT/sse-$streams.csv" \
    >"$OUT/sse-$streams.txt" 2>&1
  status=$?
  set -e
  stop_server
  if [ "$status" -ne 0 ]; then
    echo "the load generator failed at $streams streams (exit $status); see $OUT/sse-$streams.txt" >&2
    exit 1
  fi
  # The last sample: taken at the end of the posting, every stream still open.
  with="$(tail -n 1 "$OUT/sse-$streams.csv" | cut -d, -f2)"
  awk -v n="$streams" -v idle="$idle" -v with="$with" 'BEGIN { printf "%8d %12d %12d %14.1f\n", n, idle, with, (with - idle) / n }'
  counts+=("$streams")
  rss+=("$with")
done
for ((i = 1; i < ${#counts[@]}; i++)); do
  awk -v a="${counts[i - 1]}" -v b="${counts[i]}" -v ra="${rss[i - 1]}" -v rb="${rss[i]}" \
    'BEGIN { printf "slope %d -> %d streams: %.1f KiB per stream\n", a, b, (rb - ra) / (b - a) }'
done
echo "machine after: $(machine)"
