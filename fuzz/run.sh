#!/usr/bin/env bash
# Fuzzes every parser: installs cargo-fuzz if missing, seeds the corpora
# (seed.sh), builds the targets once, runs each for FUZZ_SECONDS and prints
# its executions, coverage (libFuzzer's final `cov:`/`ft:`) and time.
# Exits non-zero if any target crashed (panic, overflow, OOM, time-out);
# libFuzzer saves the input under fuzz/artifacts/<target>/ and the log is
# fuzz/logs/<target>.log.
#
#   FUZZ_SECONDS=60     run time per target
#   FUZZ_TARGETS="..."  which targets (default: all five)
#   FUZZ_SANITIZER=address|none   ASan (default) or plain libFuzzer
#   FUZZ_QUICK_BUILD=1  opt-level 1 and 16 codegen units: a shorter build
#                       for slower execution (what CI uses)
set -euo pipefail
cd "$(dirname "$0")"

SECONDS_PER_TARGET="${FUZZ_SECONDS:-60}"
TARGETS=(${FUZZ_TARGETS:-telemetry inventory authzen policy_dir ssf})
SANITIZER="${FUZZ_SANITIZER:-address}"

# cargo-fuzz builds with nightly-only flags (-Zsanitizer, sancov passes);
# this lets the stable toolchain accept them for this build alone.
export RUSTC_BOOTSTRAP=1

if ! command -v cargo-fuzz >/dev/null; then
  echo "== installing cargo-fuzz"
  start=$(date +%s)
  cargo install cargo-fuzz --locked
  echo "== cargo-fuzz installed in $(( $(date +%s) - start ))s"
fi

start=$(date +%s)
./seed.sh
echo "== corpora seeded in $(( $(date +%s) - start ))s"

# Release with debug assertions: integer overflow is a crash, as in tests.
BUILD=(--release --debug-assertions --sanitizer "$SANITIZER")
if [ "${FUZZ_QUICK_BUILD:-0}" = 1 ]; then
  # Compiling ~250 crates dominates a short run; optimisation is most of it.
  export CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_DEBUG=line-tables-only
  BUILD+=(--codegen-units 16)
fi
start=$(date +%s)
cargo fuzz build "${BUILD[@]}"
echo "== fuzz targets built in $(( $(date +%s) - start ))s"

# Inputs past these sizes are not what the targets are about (records and
# request bodies are small; size limits have their own unit tests) and
# slow every execution.
max_len() {
  case "$1" in
    telemetry | inventory) echo 16384 ;;
    *) echo 8192 ;;
  esac
}

mkdir -p logs
failed=()
printf '\n%-12s %12s %8s %8s %7s  %s\n' target execs cov ft seconds result
for t in "${TARGETS[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  log="logs/$t.log"
  start=$(date +%s)
  status=0
  cargo fuzz run "${BUILD[@]}" "$t" "corpus/$t" -- \
    -max_total_time="$SECONDS_PER_TARGET" -max_len="$(max_len "$t")" \
    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1 || status=$?
  took=$(( $(date +%s) - start ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  stats=$(grep -E '^#[0-9]+.*cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)
  cov=$(sed -E 's/.*cov: ([0-9]+).*/\1/' <<<"$stats")
  ft=$(sed -E 's/.*ft: ([0-9]+).*/\1/' <<<"$stats")
  if [ "$status" -eq 0 ]; then
    result=ok
  else
    result="CRASH (exit $status)"
    failed+=("$t")
  fi
  printf '%-12s %12s %8s %8s %7s  %s\n' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$took" "$result"
  if [ "$status" -ne 0 ]; then
    grep -E 'panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer|SUMMARY' "$log" | head -5 | sed 's/^/    /'
    sed -n 's/.*Test unit written to \(.*\)/    input saved: \1/p' "$log"
    echo "    log: fuzz/$log"
  fi
done

echo "fuzz: $(( ${#TARGETS[@]} - ${#failed[@]} )) passed, ${#failed[@]} failed"
if ((${#failed[@]})); then
  echo "fuzzing found crashes in: ${failed[*]}" >&2
  exit 1
fi
