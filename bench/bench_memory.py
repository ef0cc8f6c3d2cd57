"""5. Server memory: RSS of ``codeloop lsp`` idle, and after a 200-step session.

The server runs as the editor starts it (stdio), with a VS Code-like client (events on).
Idle: after initialize and opening a document. Then one chat turn of 200 tool steps
(list_dir, read_file, grep and glob in turn, against the scripted model) and RSS again
once the turn has ended. RSS comes from /proc/<pid>/status.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from common import ModelProcess, env_for, result, row, rss_kb
from rpc import RpcClient


async def run(quick: bool) -> dict[str, Any]:
    steps = 20 if quick else 200
    with tempfile.TemporaryDirectory(prefix="codeloop-bench-") as tmp, ModelProcess(
        "tool_loop", steps=steps, tool="mixed", path="small"
    ) as model:
        root = Path(tmp)
        (root / "small").mkdir()
        for i in range(6):
            (root / "small" / f"mod{i}.py").write_text("".join(f"def f{i}_{j}():\n    return {j}\n" for j in range(150)))
        (root / "main.py").write_text("print('hello')\n")
        subprocess.run(["git", "init", "-q"], cwd=root, check=True)
        client = await RpcClient.start(root, env_for(model.base_url), settings={"mode": "bypass", "maxTurns": steps + 10})
        try:
            client.open(root / "main.py")
            await client.request("textDocument/hover", {"textDocument": {"uri": (root / "main.py").as_uri()},
                                                        "position": {"line": 0, "character": 1}})
            await asyncio.sleep(1.0)
            idle = rss_kb(client.pid)
            started = await client.request("codeloop/chat/start", {"text": "go through the small package"})
            end = await client.turn_end(started["turnId"], timeout=600)
            if end["status"] != "done":
                raise RuntimeError(f"turn ended {end['status']}: {end.get('message')}")
            await asyncio.sleep(0.5)
            after = rss_kb(client.pid)
            tool_calls = sum(1 for e in client.turn_events(started["turnId"]) if e["type"] == "toolCallFinished")
        finally:
            await client.stop()
    return {"idle_kb": idle, "after_kb": after, "steps": steps, "tool_calls": tool_calls}


def main(quick: bool = False) -> dict[str, Any]:
    data = asyncio.run(run(quick))
    idle, after = data["idle_kb"] / 1024, data["after_kb"] / 1024
    rows = [
        row("RSS idle", round(idle, 1), "MB"),
        row(f"RSS after a {data['steps']}-step session", round(after, 1), "MB", reference=round(idle, 1)),
        row("growth per step", round((after - idle) * 1024 / max(1, data["steps"]), 1), "kB"),
    ]
    notes = [f"{data['tool_calls']} tool calls ran in the session (no target is set for memory)."]
    return result("memory", "Server memory", rows, notes, **data)


if __name__ == "__main__":
    print(json.dumps(main(quick=True), indent=2))
