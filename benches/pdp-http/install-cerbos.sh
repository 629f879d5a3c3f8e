#!/usr/bin/env bash
# Install the Cerbos PDP (npm package @cerbos/cerbos-linux-x64, 0.55.x) into a
# cache directory and print the path of the cerbos binary.
#
#   usage: install-cerbos.sh [CACHE_DIR]     (default: target/pdp-http/cerbos)
#
# Idempotent: if the cache already holds a 0.55.x binary, nothing is fetched.
set -euo pipefail

CERBOS_VERSION_RANGE="${CERBOS_VERSION_RANGE:-0.55}"
CACHE_DIR="${1:-target/pdp-http/cerbos}"
mkdir -p "$CACHE_DIR"
CACHE_DIR="$(cd "$CACHE_DIR" && pwd)"
PKG_DIR="$CACHE_DIR/node_modules/@cerbos/cerbos-linux-x64"

find_bin() {
  # The package ships a single executable named by package.json "main"
  # (./cerbos-linux-x64 in 0.55.x).
  local main c
  [[ -f "$PKG_DIR/package.json" ]] || return 1
  main="$(node -p 'require(process.argv[1]).main || ""' "$PKG_DIR/package.json" 2>/dev/null || true)"
  for c in ${main:+"$PKG_DIR/$main"} "$PKG_DIR/cerbos-linux-x64" "$PKG_DIR/bin/cerbos" "$PKG_DIR/cerbos"; do
    [[ -f "$c" ]] && { chmod +x "$c" 2>/dev/null || true; (cd "$(dirname "$c")" && echo "$(pwd)/$(basename "$c")"); return 0; }
  done
  return 1
}

installed_version() {
  [[ -f "$PKG_DIR/package.json" ]] || return 1
  node -p 'require(process.argv[1]).version' "$PKG_DIR/package.json" 2>/dev/null
}

ver="$(installed_version || true)"
if [[ "$ver" != "$CERBOS_VERSION_RANGE".* ]] || ! find_bin >/dev/null; then
  echo "install-cerbos: installing @cerbos/cerbos-linux-x64@$CERBOS_VERSION_RANGE into $CACHE_DIR" >&2
  [[ -f "$CACHE_DIR/package.json" ]] || echo '{"name":"pdp-http-cerbos-cache","private":true}' >"$CACHE_DIR/package.json"
  npm install --prefix "$CACHE_DIR" --no-audit --no-fund --loglevel=error \
    --save-exact "@cerbos/cerbos-linux-x64@$CERBOS_VERSION_RANGE" >&2
  ver="$(installed_version)"
fi

bin="$(find_bin)" || { echo "install-cerbos: cerbos binary not found under $PKG_DIR" >&2; exit 1; }
echo "install-cerbos: @cerbos/cerbos-linux-x64@$ver" >&2
echo "$bin"
