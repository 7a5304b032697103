#!/usr/bin/env bash
# Soak: RATE posts/s (half the rate scripts/load.sh found) for DURATION seconds after WARMUP,
# sampling the server's RSS every SAMPLE seconds; fails if the RSS grows more than 10% over
# its level at the end of the warm-up, or on any loss. Prints the RSS curve, one row a minute.
#
#   scripts/soak.sh 200
#
# Settings (environment): ROOMS=100 CUSTOMERS=10 DURATION=1800 WARMUP=300 SAMPLE=5
# PORT=18080 OUT=$CARGO_TARGET_DIR/load (soak-RATE.txt and soak-RATE.csv).
set -euo pipefail
source "$(dirname "$0")/load-common.sh"

RATE="${1:?usage: scripts/soak.sh RATE}"
DURATION="${DURATION:-1800}"
# Five minutes: SQLite's page caches (2 MiB on each of the store's six connections) fill in the first
# minutes as the database grows; growth after that is what the soak looks for.
WARMUP="${WARMUP:-300}"
SAMPLE="${SAMPLE:-5}"

build
echo "machine: $(machine)"
start_server
echo "soak at $RATE/s: $ROOMS rooms x $CUSTOMERS customers, warm-up ${WARMUP}s, ${DURATION}s"
set +e
loadgen "$RATE" "$WARMUP" "$DURATION" --sample-every "$SAMPLE" --max-rss-growth 10 \
  --csv "$OUT/soak-$RATE.csv" | tee "$OUT/soak-$RATE.txt"
status=${PIPESTATUS[0]}
set -e
stop_server
echo "machine after: $(machine)"
echo
echo "| minute | server RSS (MiB) | server CPU (s) | posts acknowledged |"
echo "|---:|---:|---:|---:|"
awk -F, 'NR > 1 { last = $0 }
  NR > 1 && $1 >= minute * 60 { printf "| %d | %.1f | %.0f | %d |\n", minute, $2 / 1024, $3, $5; minute++; printed = $0 }
  END { if (last != printed) { split(last, f, ","); printf "| %.1f (end) | %.1f | %.0f | %d |\n", f[1] / 60, f[2] / 1024, f[3], f[5] } }' \
  minute=0 "$OUT/soak-$RATE.csv"
exit "$status"
