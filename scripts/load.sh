#!/usr/bin/env bash
# Rate search: the highest aggregate post rate the example server holds with zero loss and a
# p99 post-to-receipt latency under 100 ms, with ROOMS rooms of CUSTOMERS live customers and
# their agents. Each rate gets a fresh server and is held for HOLD seconds after WARMUP; the
# search climbs through the rates given and stops at the first that fails.
#
#   scripts/load.sh 100 200 400 800          # rates in posts/s, ascending
#   HOLD=20 ROOMS=10 scripts/load.sh 50      # a smoke run
#
# Settings (environment): ROOMS=100 CUSTOMERS=10 HOLD=300 WARMUP=30 PORT=18080
# OUT=$CARGO_TARGET_DIR/load (summaries and RSS samples per rate).
set -euo pipefail
source "$(dirname "$0")/load-common.sh"

HOLD="${HOLD:-300}"
WARMUP="${WARMUP:-30}"
RATES=("$@")
[ ${#RATES[@]} -gt 0 ] || RATES=(100 200 400 800)

build
echo "machine: $(machine)"
best=""
for rate in "${RATES[@]}"; do
  start_server
  echo "rate $rate/s: $ROOMS rooms x $CUSTOMERS customers, warm-up ${WARMUP}s, held ${HOLD}s"
  set +e
  loadgen "$rate" "$WARMUP" "$HOLD" --quiet --csv "$OUT/rate-$rate.csv" | tee "$OUT/rate-$rate.txt"
  status=${PIPESTATUS[0]}
  set -e
  stop_server
  if [ "$status" -ne 0 ]; then
    echo "rate $rate/s failed (exit $status)"
    break
  fi
  best="$rate"
done
echo "machine after: $(machine)"
if [ -n "$best" ]; then
  echo "highest rate held: $best posts/s (summary in $OUT/rate-$best.txt)"
else
  echo "no rate held"
  exit 1
fi
