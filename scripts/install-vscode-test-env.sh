#!/usr/bin/env bash
# Installs what the VS Code UI tests (tests/vscode/) need, idempotently:
#   - Debian packages: chromium (driven by playwright-core), the headers code-server's
#     native modules build against, and bubblewrap (the command sandbox; scripts/test.sh
#     installs it too when the VS Code tests are skipped);
#   - code-server 4.100.3 (VS Code 1.100, the last line on Node 20), cached OUTSIDE the
#     checkout in ${CODELOOP_CACHE:-$HOME/.cache/codeloop}/code-server-4.100.3;
#   - the npm workspace (npm ci at the repo root), then builds and packages the extension.
# Quick when everything is already there. Needs only the Debian, npm and PyPI registries.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CS_VERSION="${CODE_SERVER_VERSION:-4.100.3}"
CACHE="${CODELOOP_CACHE:-$HOME/.cache/codeloop}"
CS_DIR="$CACHE/code-server-$CS_VERSION"
log() { printf '[install-vscode-test-env] %s\n' "$*" >&2; }

# ---- 1. Debian packages (only the missing ones) ---------------------------------------
need=()
for pkg in libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev pkg-config chromium bubblewrap; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if ((${#need[@]})); then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  log "apt-get install ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# ---- 2. code-server, cached outside the checkout ---------------------------------------
if [ ! -f "$CS_DIR/.complete" ]; then
  log "building code-server $CS_VERSION in $CS_DIR (2-3 minutes)"
  rm -rf "$CS_DIR" "$CS_DIR.tmp"
  mkdir -p "$CS_DIR.tmp"
  (
    cd "$CS_DIR.tmp"
    npm pack "code-server@$CS_VERSION" --silent >/dev/null
    tar xzf "code-server-$CS_VERSION.tgz"
    rm -f "code-server-$CS_VERSION.tgz"
    cd package
    # @vscode/ripgrep 1.15 downloads its binary from GitHub; 1.18 ships it in npm packages.
    node -e '
      const fs = require("fs"); const f = "lib/vscode/package.json";
      const p = JSON.parse(fs.readFileSync(f, "utf8"));
      p.dependencies["@vscode/ripgrep"] = "1.18.0";
      fs.writeFileSync(f, JSON.stringify(p, null, 2));'
    export npm_config_yes=true npm_config_unsafe_perm=true
    npm_config_user_agent="npm/10 node/v20 linux x64" sh postinstall.sh >"$CS_DIR.tmp/postinstall.log" 2>&1 \
      || { tail -50 "$CS_DIR.tmp/postinstall.log" >&2; exit 1; }
    npm install --omit=dev --ignore-scripts --no-audit --no-fund --silent
    npm rebuild argon2 --silent
  )
  mv "$CS_DIR.tmp" "$CS_DIR"
  touch "$CS_DIR/.complete"
fi
log "code-server: $CS_DIR/package/out/node/entry.js"

# ---- 3. npm workspace, build, package ----------------------------------------------------
cd "$ROOT"
stamp="node_modules/.codeloop-lock-stamp"
if [ ! -d node_modules ] || ! cmp -s package-lock.json "$stamp" 2>/dev/null; then
  log "npm ci"
  npm ci --no-audit --no-fund
  cp package-lock.json "$stamp"
fi
log "npm run build && npm run package"
npm run --silent build
npm run --silent package
log "done: $(ls "$ROOT"/vscode-extension/*.vsix)"
