#!/usr/bin/env bash
# Start Cerbos with cerbos/config.yaml and the todo policies, send each of the
# 40 AuthZEN todo requests once (as Cerbos CheckResources calls) and check the
# decision against `expected` in the AuthZEN decisions file. Exit 0 iff 40/40.
#
#   usage: verify-cerbos.sh            (env: CERBOS_CACHE, AUTHZEN_TODO_DECISIONS)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WORK="$(mktemp -d /tmp/pdp-http-verify.XXXXXX)"
CERBOS_PID=""
cleanup() { stop_pid "$CERBOS_PID"; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

install_cerbos
gen_bodies "$WORK/bodies"
start_cerbos "$WORK"
verify cerbos "$CERBOS_URL" "$WORK/bodies"
