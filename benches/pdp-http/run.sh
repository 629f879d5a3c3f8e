#!/usr/bin/env bash
# HTTP decision benchmark: Cerbos 0.55 vs Tenet (`tenet serve`) on the AuthZEN
# "todo" interop scenario (40 decisions, cycled), wrk at 64 keep-alive
# connections, load generator on the same machine, loopback only.
#
#   usage: run.sh [TENET_BIN]
#
# Steps: install Cerbos (if needed) -> start Cerbos on a free 127.0.0.1 port ->
# verify its 40 decisions -> wrk -> stop Cerbos; then, if TENET_BIN is given:
#   $TENET_BIN serve --addr 127.0.0.1:PORT --policies $TENET_POLICIES \
#                    --data-dir $WORK/tenet-data $TENET_ARGS
# -> wait for GET /readyz == 200 -> verify its 40 decisions (POST
# /access/v1/evaluation) -> same wrk -> stop Tenet; print a side-by-side table.
#
# Environment (defaults):
#   WRK_THREADS=2 WRK_CONNS=64 WRK_DURATION=15s   wrk parameters
#   CERBOS_CACHE=<repo>/target/pdp-http/cerbos    npm cache dir for the Cerbos binary
#   TENET_POLICIES=<repo>/tests/authzen/todo      Tenet policy directory
#   TENET_ARGS=                                   extra args appended to `tenet serve`
#   TENET_READY_TIMEOUT=60                        seconds to wait for /readyz
#   AUTHZEN_TODO_DECISIONS=<repo>/../shared/specs/authzen/todo/decisions-authorization-api-1_0-01.json
#   KEEP_WORK=0                                   1 = keep the temp dir (logs, wrk output)
#   BODY_PROPERTIES=0                             1 = every request carries subject and resource properties
#   TENET_SIMULATE_DAYS=0                         N = Tenet's store holds N simulated days of an enterprise
#
# Exit status: 0 if every step ran and both PDPs matched 40/40 decisions.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TENET_BIN="${1:-}"
WRK_THREADS="${WRK_THREADS:-2}"
WRK_CONNS="${WRK_CONNS:-64}"
WRK_DURATION="${WRK_DURATION:-15s}"
TENET_POLICIES="${TENET_POLICIES:-$PDP_HTTP_REPO/tests/authzen/todo}"
TENET_READY_TIMEOUT="${TENET_READY_TIMEOUT:-60}"

command -v wrk >/dev/null || die "wrk not found (apt-get install -y wrk)"
command -v curl >/dev/null || die "curl not found"
if [[ -n "$TENET_BIN" ]]; then
  [[ -x "$TENET_BIN" ]] || die "TENET_BIN '$TENET_BIN' is not an executable file"
  TENET_BIN="$(cd "$(dirname "$TENET_BIN")" && pwd)/$(basename "$TENET_BIN")"
fi

WORK="$(mktemp -d /tmp/pdp-http.XXXXXX)"
CERBOS_PID="" TENET_PID="" WRK_PID="" STATUS=1
cleanup() {
  stop_pid "$WRK_PID"
  stop_pid "$CERBOS_PID"
  stop_pid "$TENET_PID"
  if [[ "${KEEP_WORK:-0}" == 1 || "$STATUS" != 0 ]]; then
    rm -rf "$WORK/tenet-data"
    log "logs and wrk output kept in $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wrk duration in seconds, for the hard timeout around each run.
dur_secs() {
  local d="$1"
  case "$d" in
    *ms) echo 1 ;; *s) echo "${d%s}" ;; *m) echo $(( ${d%m} * 60 )) ;; *h) echo $(( ${d%h} * 3600 )) ;; *) echo "$d" ;;
  esac
}
WRK_TIMEOUT=$(( $(dur_secs "$WRK_DURATION") + 30 ))

# run_wrk NAME PATH URL BODIES LOGFILE — one wrk run; output to $WORK/wrk-NAME.txt.
# Also records how many lines the server wrote to its log during the run
# (should be 0 with request logging off).
run_wrk() {
  local name="$1" path="$2" url="$3" bodies="$4" srvlog="$5" before after
  before="$(wc -l <"$srvlog")"
  # Other CPU load on the machine skews the numbers; leave a trace of it.
  log "load average before $name run: $(cut -d' ' -f1-3 /proc/loadavg)"
  log "wrk -t$WRK_THREADS -c$WRK_CONNS -d$WRK_DURATION --latency -s wrk/post-bodies.lua $url -- $path"
  # In the background + `wait`, so that a TERM/INT to this script runs the
  # cleanup trap at once instead of after wrk finishes.
  timeout --signal=INT "$WRK_TIMEOUT" \
    wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"$WRK_DURATION" --latency -s "$PDP_HTTP_DIR/wrk/post-bodies.lua" "$url" -- "$path" "$bodies" \
    >"$WORK/wrk-$name.txt" 2>&1 &
  WRK_PID=$!
  wait "$WRK_PID" || log "wrk exited with status $?"
  WRK_PID=""
  cat "$WORK/wrk-$name.txt" >&2
  after="$(wc -l <"$srvlog")"
  echo $((after - before)) >"$WORK/loglines-$name.txt"
}

# verify_count FLAVOR URL — run verify.py, keep its output, echo "P/N".
verify_count() {
  local flavor="$1" url="$2" out rc=0
  out="$(verify "$flavor" "$url" "$WORK/bodies")" || rc=$?
  printf '%s\n' "$out" >&2
  printf '%s\n' "$out" | sed -n "s/^verify $flavor: \([0-9]*\/[0-9]*\) .*/\1/p" | tail -n1
  return "$rc"
}

gen_bodies "$WORK/bodies"
install_cerbos

# ---- Cerbos -----------------------------------------------------------------
start_cerbos "$WORK"
CERBOS_VERIFY="$(verify_count cerbos "$CERBOS_URL")" ||
  die "Cerbos decisions do not match the expected todo decisions (${CERBOS_VERIFY:-0/40}); fix cerbos/policies first"
run_wrk cerbos /api/check/resources "$CERBOS_URL" "$WORK/bodies/cerbos.jsonl" "$CERBOS_LOG"
stop_pid "$CERBOS_PID"; CERBOS_PID=""
read -r C_RPS C_P50 C_P99 C_REQS C_NON2XX C_ERR < <(python3 "$PDP_HTTP_DIR/wrk/parse-wrk.py" "$WORK/wrk-cerbos.txt")
C_LOGL="$(cat "$WORK/loglines-cerbos.txt")"

# ---- Tenet ------------------------------------------------------------------
TENET_STATE="not run (no TENET_BIN given)"
TENET_OK=1
if [[ -n "$TENET_BIN" ]]; then
  TENET_OK=0
  if [[ ! -d "$TENET_POLICIES" ]]; then
    TENET_STATE="skipped: policy dir $TENET_POLICIES does not exist"
    log "$TENET_STATE"
  else
    port="$(free_port)"
    TENET_URL="http://127.0.0.1:$port"
    TENET_LOG="$WORK/tenet.log"
    mkdir -p "$WORK/tenet-data"
    if [[ "${TENET_SIMULATE_DAYS:-0}" != 0 ]]; then
      # A store holding a simulated enterprise: the trust graph, baselines,
      # findings and risk every decision's signals are looked up in.
      log "simulating ${TENET_SIMULATE_DAYS} days of an enterprise into the Tenet store"
      "$TENET_BIN" simulate --seed 7 --days "$TENET_SIMULATE_DAYS" --scenario all --out "$WORK/sim" >/dev/null
      for d in "$WORK"/sim/inventory/*/; do
        "$TENET_BIN" --data-dir "$WORK/tenet-data" import "$d" --at "$(basename "$d")T00:00:00Z" >/dev/null
      done
      "$TENET_BIN" --data-dir "$WORK/tenet-data" ingest "$WORK/sim" >/dev/null ||
        die "ingesting the simulated enterprise failed"
      rm -rf "$WORK/sim"
    fi
    # shellcheck disable=SC2086 # TENET_ARGS is split on purpose
    "$TENET_BIN" serve --addr "127.0.0.1:$port" --policies "$TENET_POLICIES" \
      --data-dir "$WORK/tenet-data" ${TENET_ARGS:-} >"$TENET_LOG" 2>&1 &
    TENET_PID=$!
    if ! wait_http_200 "$TENET_URL/readyz" "$TENET_READY_TIMEOUT" "$TENET_PID"; then
      tail -n 20 "$TENET_LOG" >&2 || true
      TENET_STATE="failed: not ready (see $TENET_LOG)"
    else
      log "Tenet ready at $TENET_URL (pid $TENET_PID)"
      T_VERIFY="$(verify_count authzen "$TENET_URL")" && TENET_OK=1 ||
        log "WARNING: Tenet decisions differ from the expected todo decisions (${T_VERIFY:-?}); the comparison is not like-for-like"
      run_wrk tenet /access/v1/evaluation "$TENET_URL" "$WORK/bodies/authzen.jsonl" "$TENET_LOG"
      read -r T_RPS T_P50 T_P99 T_REQS T_NON2XX T_ERR < <(python3 "$PDP_HTTP_DIR/wrk/parse-wrk.py" "$WORK/wrk-tenet.txt")
      T_LOGL="$(cat "$WORK/loglines-tenet.txt")"
      TENET_STATE="ran"
    fi
    stop_pid "$TENET_PID"; TENET_PID=""
  fi
fi

# ---- Report -----------------------------------------------------------------
echo
echo "AuthZEN todo scenario, 40 decisions cycled$( [[ "${BODY_PROPERTIES:-0}" == 1 ]] && echo ', every request with subject and resource properties' )$( [[ "${TENET_SIMULATE_DAYS:-0}" != 0 ]] && echo ", Tenet's store holding a simulated enterprise (${TENET_SIMULATE_DAYS} days)" ); wrk -t$WRK_THREADS -c$WRK_CONNS -d$WRK_DURATION (keep-alive), 127.0.0.1, $(nproc) CPUs"
fmt='%-8s %-10s %12s %10s %10s %10s %8s %8s %10s\n'
printf "$fmt" PDP decisions "requests/s" "p50 ms" "p99 ms" requests non-2xx "sock-err" "log lines"
printf "$fmt" cerbos "$CERBOS_VERIFY" "$C_RPS" "$C_P50" "$C_P99" "$C_REQS" "$C_NON2XX" "$C_ERR" "$C_LOGL"
if [[ "$TENET_STATE" == ran ]]; then
  printf "$fmt" tenet "${T_VERIFY:-?}" "$T_RPS" "$T_P50" "$T_P99" "$T_REQS" "$T_NON2XX" "$T_ERR" "$T_LOGL"
  python3 - "$T_RPS" "$C_RPS" "$C_P50" "$T_P50" "$C_P99" "$T_P99" <<'PY'
import sys
def f(x):
    try: return float(x)
    except ValueError: return None
t, c, cp50, tp50, cp99, tp99 = map(f, sys.argv[1:])
if t and c:
    print(f"throughput Tenet/Cerbos: {t / c:.2f}x", end="")
    if cp50 and tp50 and cp99 and tp99:
        print(f"   (p50 Cerbos/Tenet: {cp50 / tp50:.2f}x, p99 Cerbos/Tenet: {cp99 / tp99:.2f}x)", end="")
    print()
PY
else
  echo "tenet: $TENET_STATE"
fi
[[ "${C_NON2XX:-0}" == 0 && "${C_ERR:-0}" == 0 ]] || log "WARNING: Cerbos run had non-2xx responses or socket errors"
if [[ "$TENET_STATE" == ran ]]; then
  [[ "${T_NON2XX:-0}" == 0 && "${T_ERR:-0}" == 0 ]] || { log "WARNING: Tenet run had non-2xx responses or socket errors"; TENET_OK=0; }
fi

if [[ "$TENET_OK" == 1 && "${C_NON2XX:-0}" == 0 ]]; then STATUS=0; fi
exit "$STATUS"
