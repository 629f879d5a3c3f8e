#!/usr/bin/env bash
# Overload probes against a real `tenet serve` on default limits: the
# decision-log flood (flood.py) and 1,100 idle sockets (idle.py).
#   benches/overload/run.sh [path/to/tenet]   (default target/release/tenet)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
tenet="${1:-$repo/target/release/tenet}"
[ -x "$tenet" ] || { echo "no tenet binary at $tenet (cargo build --release)" >&2; exit 1; }
# Room for 1,100 client sockets and the server's own cap below its limit.
ulimit -n 4096
work="$(mktemp -d)"
pid=""
trap '[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$tenet" --data-dir "$work/data" serve --addr "127.0.0.1:$port" --policies "$repo/tests/authzen/certification" >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
echo "== decision-log flood (4 clients, 1,000-item batches, 8 s)"
python3 "$here/flood.py" "$port" "$pid" 8
echo "== 1,100 idle sockets"
python3 "$here/idle.py" "$port" 1100
kill -TERM "$pid"; wait "$pid" || true; pid=""
echo "== the decision log after the flood"
"$tenet" --data-dir "$work/data" audit verify
