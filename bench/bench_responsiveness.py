"""2. Editor responsiveness under agent load.

A real ``codeloop lsp`` process over JSON-RPC (stdio), driven by a minimal client
(``rpc.py``) that only decodes JSON. The scripted model runs in its own process. We time
textDocument/codeAction and textDocument/hover round trips in three conditions:

- idle: no turn running;
- stream: while a turn streams 5,000 one-token deltas as fast as the model server can
  send them (each becomes a codeloop/event notification to the editor);
- command: while a command prints 20 MB (mirrored to the editor as terminal output).

Loaded samples count only if sent and answered while the load was on: from the first
textDelta to turnEnd; from terminal/started to terminal/exited.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from common import ModelProcess, env_for, result, row, summary_ms
from rpc import RpcClient

GAP = 0.003  # seconds between requests


def code_action_params(uri: str) -> dict[str, Any]:
    return {
        "textDocument": {"uri": uri},
        "range": {"start": {"line": 10, "character": 0}, "end": {"line": 12, "character": 5}},
        "context": {"diagnostics": []},
    }


def hover_params(uri: str) -> dict[str, Any]:
    return {"textDocument": {"uri": uri}, "position": {"line": 11, "character": 2}}


async def one(client: RpcClient, uri: str, method: str) -> float:
    t0 = time.perf_counter()
    if method == "codeAction":
        res = await client.request("textDocument/codeAction", code_action_params(uri))
        assert res, "no code actions"
    else:
        await client.request("textDocument/hover", hover_params(uri))
    return time.perf_counter() - t0


async def sample_while(client: RpcClient, uri: str, active, done, out: dict[str, list[float]], limit: int) -> None:
    """Alternate codeAction/hover until ``done()``; keep samples that ran while ``active()``."""
    k = 0
    while not done():
        method = ("codeAction", "hover")[k % 2]
        k += 1
        was = active()
        dt = await one(client, uri, method)
        if was and active() and len(out[method]) < limit:
            out[method].append(dt)
        await asyncio.sleep(GAP)


async def run(quick: bool) -> dict[str, Any]:
    n_idle = 10 if quick else 300
    n_load = 10 if quick else 300
    max_turns = 2 if quick else 12
    tokens = 5000
    command_mb = 2 if quick else 20
    samples: dict[str, dict[str, list[float]]] = {c: {"codeAction": [], "hover": []} for c in ("idle", "stream", "command")}
    turns = {"stream": 0, "command": 0}
    durations: dict[str, list[float]] = {"stream": [], "command": []}
    with tempfile.TemporaryDirectory(prefix="codeloop-bench-") as tmp, ModelProcess(
        "editor_load", tokens=tokens, command_mb=command_mb
    ) as model:
        root = Path(tmp)
        (root / "main.py").write_text("".join(f"def function_{i}(x):\n    return x + {i}\n\n" for i in range(100)))
        client = await RpcClient.start(root, env_for(model.base_url), settings={"mode": "bypass"})
        try:
            uri = client.open(root / "main.py")
            for _ in range(20):  # warm up both handlers
                await one(client, uri, "codeAction")
                await one(client, uri, "hover")
            for _ in range(n_idle):
                for m in ("codeAction", "hover"):
                    samples["idle"][m].append(await one(client, uri, m))
                    await asyncio.sleep(GAP)
            for cond in ("stream", "command"):
                while turns[cond] < max_turns and min(len(v) for v in samples[cond].values()) < n_load:
                    turns[cond] += 1
                    started = await client.request("codeloop/chat/start", {"text": f"{cond} please"})
                    tid = started["turnId"]
                    mark = len(client.notifications)

                    def ended() -> bool:
                        return any(e["type"] == "turnEnd" for e in client.turn_events(tid))

                    if cond == "stream":
                        def active() -> bool:
                            return any(e["type"] == "textDelta" for e in client.turn_events(tid)) and not ended()
                    else:
                        def active() -> bool:
                            kinds = [m for m, _ in client.notifications[mark:] if m.startswith("codeloop/terminal/")]
                            return "codeloop/terminal/started" in kinds and "codeloop/terminal/exited" not in kinds

                    t0 = time.perf_counter()
                    await sample_while(client, uri, active, ended, samples[cond], n_load)
                    durations[cond].append(time.perf_counter() - t0)
                    end = await client.turn_end(tid)
                    if end["status"] != "done":
                        raise RuntimeError(f"{cond} turn ended {end['status']}: {end.get('message')}")
            events = sum(1 for m, _ in client.notifications if m == "codeloop/event")
            terminal_bytes = sum(p.get("bytes", 0) for m, p in client.notifications if m == "codeloop/terminal/output")
        finally:
            await client.stop()
    stats = {c: {m: summary_ms(v) for m, v in d.items()} for c, d in samples.items()}
    return {"stats": stats, "turns": turns, "durations_s": {k: [round(x, 2) for x in v] for k, v in durations.items()},
            "events": events, "terminal_bytes": terminal_bytes, "tokens": tokens, "command_mb": command_mb}


def main(quick: bool = False) -> dict[str, Any]:
    data = asyncio.run(run(quick))
    s = data["stats"]
    rows = []
    for m in ("codeAction", "hover"):
        idle = s["idle"][m]
        rows.append(row(f"{m} idle, p50", idle["p50"], "ms"))
        rows.append(row(f"{m} idle, p99", idle["p99"], "ms"))
        for cond, label in (("stream", f"streaming {data['tokens']} tokens"),
                            ("command", f"{data['command_mb']} MB of command output")):
            x = s[cond][m]
            rows.append(row(f"{m} while {label}, p50", x["p50"], "ms", reference=idle["p50"]))
            ok = bool(x["n"]) and x["p99"] <= 1.5 * idle["p99"] and x["p99"] < 15
            rows.append(row(f"{m} while {label}, p99", x["p99"], "ms", reference=idle["p99"],
                            target="≤ 1.5× idle and < 15 ms", met=ok))
    notes = [
        "Samples (codeAction+hover): " + ", ".join(f"{c} {s[c]['codeAction']['n']}+{s[c]['hover']['n']}" for c in s)
        + f"; turns: {data['turns']}; load durations (s): {data['durations_s']}.",
    ]
    return result("responsiveness", "Editor responsiveness under agent load", rows, notes, **data)


if __name__ == "__main__":
    print(json.dumps(main(quick=True), indent=2))
