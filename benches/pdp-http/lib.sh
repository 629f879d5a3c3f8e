# Shared shell helpers for benches/pdp-http (sourced by run.sh and verify-cerbos.sh).
# shellcheck shell=bash

PDP_HTTP_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PDP_HTTP_REPO="$(cd "$PDP_HTTP_DIR/../.." && pwd)"
AUTHZEN_TODO_DECISIONS="${AUTHZEN_TODO_DECISIONS:-$PDP_HTTP_REPO/../shared/specs/authzen/todo/decisions-authorization-api-1_0-01.json}"
CERBOS_CACHE="${CERBOS_CACHE:-$PDP_HTTP_REPO/target/pdp-http/cerbos}"

log() { printf '[pdp-http] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Print a currently free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_http_200 URL TIMEOUT_SECS PID — poll URL until it answers 200; fail early
# if PID exits.
wait_http_200() {
  local url="$1" timeout="$2" pid="$3" deadline code
  deadline=$((SECONDS + timeout))
  while ((SECONDS < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "process $pid exited before $url became ready"
      return 1
    fi
    code="$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$url" || true)"
    [[ "$code" == 200 ]] && return 0
    sleep 0.2
  done
  log "timed out after ${timeout}s waiting for $url (last status: ${code:-none})"
  return 1
}

# stop_pid PID — SIGTERM, wait up to 5 s, then SIGKILL. Only ever called with
# the PID of a process this script started.
stop_pid() {
  local pid="$1" i
  [[ -n "$pid" ]] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# gen_bodies OUT_DIR — the 40 request bodies (authzen/cerbos/expected .jsonl).
gen_bodies() {
  # shellcheck disable=SC2046 # the flag is one word or none
  python3 "$PDP_HTTP_DIR/gen-bodies.py" --decisions "$AUTHZEN_TODO_DECISIONS" $( [[ "${BODY_PROPERTIES:-0}" == 1 ]] && echo --properties ) "$1"
}

# install_cerbos — sets CERBOS_BIN (installs into $CERBOS_CACHE if needed).
install_cerbos() {
  CERBOS_BIN="$("$PDP_HTTP_DIR/install-cerbos.sh" "$CERBOS_CACHE")" || die "cerbos install failed"
}

# start_cerbos WORK_DIR — start Cerbos on a free loopback port with
# cerbos/config.yaml; sets CERBOS_PID, CERBOS_URL, CERBOS_LOG.
# Cerbos's HTTP API is a grpc-gateway that forwards every call to Cerbos's own
# gRPC listener, so that listener is on the request path. CERBOS_GRPC=tcp
# (default) puts it on a free 127.0.0.1 port — Cerbos's stock setup;
# CERBOS_GRPC=unix puts it on a unix socket in WORK_DIR instead.
# --log-level=warn switches off the per-request "Handled request" info lines
# that Cerbos's gRPC logging interceptor emits; there is no config key for it.
start_cerbos() {
  local work="$1" port grpc_addr
  port="$(free_port)"
  case "${CERBOS_GRPC:-tcp}" in
    tcp) grpc_addr="127.0.0.1:$(free_port)" ;;
    unix) grpc_addr="unix:$work/cerbos-grpc.sock" ;;
    *) die "CERBOS_GRPC must be tcp or unix" ;;
  esac
  [[ "$grpc_addr" != "127.0.0.1:$port" ]] || grpc_addr="127.0.0.1:$(free_port)"
  CERBOS_LOG="$work/cerbos.log"
  CERBOS_POLICY_DIR="$PDP_HTTP_DIR/cerbos/policies" \
  CERBOS_HTTP_ADDR="127.0.0.1:$port" \
  CERBOS_GRPC_ADDR="$grpc_addr" \
    "$CERBOS_BIN" server \
      --config="$PDP_HTTP_DIR/cerbos/config.yaml" \
      --log-level="${CERBOS_LOG_LEVEL:-warn}" \
      --debug-listen-addr= \
      >"$CERBOS_LOG" 2>&1 &
  CERBOS_PID=$!
  CERBOS_URL="http://127.0.0.1:$port"
  if ! wait_http_200 "$CERBOS_URL/_cerbos/health" "${CERBOS_READY_TIMEOUT:-30}" "$CERBOS_PID"; then
    tail -n 20 "$CERBOS_LOG" >&2 || true
    die "Cerbos did not become ready"
  fi
  log "Cerbos $("$CERBOS_BIN" --version 2>/dev/null | head -n1) ready at $CERBOS_URL, gRPC $grpc_addr (pid $CERBOS_PID)"
}

# verify FLAVOR BASE_URL BODIES_DIR — send the 40 bodies once, compare with the
# expected decisions; prints mismatches and "verify FLAVOR: P/N decisions match".
verify() {
  python3 "$PDP_HTTP_DIR/verify.py" "$@"
}
