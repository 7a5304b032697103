#!/usr/bin/env bash
# Builds every fuzz target and runs each for SECONDS (default 30), one after the other, with
# memory and time limits; prints executions and coverage per target. Fails on any crash, hang,
# out-of-memory or leak, leaving the input in fuzz/artifacts/<target>/.
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# Environment: FUZZ_RSS_LIMIT_MB (default 2048), FUZZ_TIMEOUT (seconds per input, default 10),
# FUZZ_NICE (niceness of the runs, default 0), FUZZ_TARGET_DIR (the build, default
# ~/.cache/collab-fuzz-target). See fuzz/README.md.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${1:-30}"
shift || true
if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for file in fuzz_targets/*.rs; do
    targets+=("$(basename "$file" .rs)")
  done
fi
rss_limit_mb="${FUZZ_RSS_LIMIT_MB:-2048}"
timeout="${FUZZ_TIMEOUT:-10}"
niceness="${FUZZ_NICE:-0}"

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "error: the nightly toolchain is missing; cargo-fuzz needs it (rustup toolchain install nightly)" >&2
  exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

# The fuzz crate's own target dir (nightly, instrumented), never the workspace's; outside the
# clone by default so that repeated runs on one machine reuse the build.
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/collab-fuzz-target}"
export CARGO_INCREMENTAL=0
# Release with debug assertions (overflow checks); no sanitizer: the code under test forbids
# `unsafe`, and the sanitizer would halve the executions (README: "Why no sanitizer").
# 16 codegen units instead of cargo-fuzz's 1: the build (the whole example server) takes about
# half as long, for slightly fewer executions per second.
build_options=(-O --debug-assertions --sanitizer none --codegen-units 16)
cargo +nightly fuzz build "${build_options[@]}"
bin_dir="$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release"

# Inputs up to the head the sniffing reads (64 KiB) for documents; short texts elsewhere.
max_len() {
  case "$1" in
    document_inspect) echo 65536 ;;
    pdf_pages) echo 32768 ;;
    *) echo 4096 ;;
  esac
}

summary="$(mktemp)"
trap 'rm -f "$summary"' EXIT
printf '%-20s %8s %12s %9s %7s %7s %7s %8s\n' target seconds executions exec/s cov ft corpus rss >"$summary"
failed=()
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target" "artifacts/$target"
  log="artifacts/$target/last-run.log"
  printf '\n--- %s: %s s\n' "$target" "$seconds"
  status=0
  # Found inputs go to corpus/ (ignored by git); seeds/ is read only.
  nice -n "$niceness" "$bin_dir/$target" "corpus/$target" "seeds/$target" \
    -max_total_time="$seconds" -timeout="$timeout" -rss_limit_mb="$rss_limit_mb" \
    -max_len="$(max_len "$target")" -artifact_prefix="artifacts/$target/" \
    -print_final_stats=1 >"$log" 2>&1 || status=$?
  done_line="$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)"
  executions="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
  field() { sed -n "s|.* $1: *\([^ ]*\).*|\1|p" <<<"$done_line"; }
  printf '%-20s %8s %12s %9s %7s %7s %7s %8s\n' "$target" "$seconds" "${executions:-?}" "$(field exec/s)" \
    "$(field cov)" "$(field ft)" "$(field corp | cut -d/ -f1)" "$(field rss)" | tee -a "$summary"
  if [ "$status" -ne 0 ]; then
    echo "FAILED: $target (exit $status); the input is in fuzz/artifacts/$target/; log tail:" >&2
    tail -n 40 "$log" >&2
    failed+=("$target")
  fi
done

printf '\n=== fuzzing summary (%s s per target)\n' "$seconds"
cat "$summary"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzzing found problems in: ${failed[*]} (reproduce: fuzz/README.md)" >&2
  exit 1
fi
