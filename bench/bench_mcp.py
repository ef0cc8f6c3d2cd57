"""9. MCP: what MCP tools cost per request, and that a slow server does not hold up the others.

Tokens: the tool schemas of one request (codeloop's built-in tools plus the MCP tools, counted
with ``codeloop.context.tokens.count_tools``, o200k_base) with 0, 20 and 200 MCP tools, with
and without tool search (``services/mcp/search.plan_tools``: a 128k window, the default 10%
share). The MCP tools are the real listing of the edge test server (``tests/mcp_servers/``:
12 tools of its own plus generated ones with realistic descriptions), fetched over stdio by
the MCP manager. The reference is the same request without tool search (every schema sent).

Start-up: a manager with a fast server and a slow one (it sleeps 10 s before serving): the
time from ``manager.start()`` returning to the first successful call to the fast server,
while the slow one is still starting. The reference is the same with the fast server alone:
a ratio near 1 means the slow server holds nothing up.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import TESTS, result, row

from codeloop.context.tokens import TOKENIZER_NAME, count_tools
from codeloop.services.mcp import McpManager, ServerConfig, plan_tools
from codeloop.tools.builtin import BuiltinTools

EDGE = str(TESTS / "mcp_servers" / "edge_server.py")
WINDOW = 128_000
OWN_TOOLS = 12  # the edge server's own tools
SLOW_START = 10.0


def edge(name: str, *flags: str) -> ServerConfig:
    return ServerConfig(name=name, transport="stdio", source="user", origin="bench", command=sys.executable,
                        args=(EDGE, "--name", name, *flags))


async def mcp_tools(n: int, root: Path) -> list[Any]:
    """The real listing of an edge server with ``n`` tools."""
    assert n >= OWN_TOOLS
    m = McpManager([edge("bench", "--tools", str(n - OWN_TOOLS))], root=root)
    try:
        await m.start()
        if not await m.wait_settled(120) or m.state("bench").status != "ready":
            raise RuntimeError(f"the edge server did not start: {m.state('bench').last_error}")
        tools = m.tools()
    finally:
        await m.close()
    assert len(tools) == n, len(tools)
    return tools


async def tokens(root: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    builtin = [t.schema() for t in BuiltinTools().tools()]
    listing = await mcp_tools(200, root)
    rows = []
    data: dict[str, Any] = {"builtin_tools": len(builtin), "window": WINDOW}
    for n in (0, 20, 200):
        tools = listing[:n]  # the server's own 12, then generated ones
        plan = plan_tools(tools, context_window=WINDOW)
        without = count_tools(builtin + [t.schema() for t in tools])
        with_search = count_tools(builtin + plan.all_schemas())
        data[str(n)] = {"without_search": without, "with_search": with_search, "deferred": plan.deferred,
                        "mcp_schema_tokens": plan.tokens_all, "budget": plan.budget}
        rows.append(row(f"tool-schema tokens per request, {n} MCP tools (with tool search)", with_search, "tokens",
                        reference=without,
                        target="≤ reference; MCP part ≤ 10% of the window" if n else "",
                        met=(with_search <= without and plan.tokens_sent <= plan.budget) if n else None))
    return rows, data


async def time_to_first_call(with_slow: bool, root: Path) -> tuple[float, str]:
    servers = [edge("fast")] + ([edge("slow", "--slow-start", str(SLOW_START))] if with_slow else [])
    m = McpManager(servers, root=root, stdin_grace=0.5, term_grace=0.5)
    try:
        t0 = time.perf_counter()
        await m.start()
        returned = time.perf_counter()
        while True:
            r = await m.call("mcp__fast__echo", {"text": "hi"}, timeout=30)
            if not r.is_error:
                break
            await asyncio.sleep(0.01)
        first = time.perf_counter()
        slow_status = m.state("slow").status if with_slow else ""
        return first - returned, slow_status + f" (start() returned in {1000 * (returned - t0):.1f} ms)"
    finally:
        await m.close()


async def startup(quick: bool, root: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    reps = 1 if quick else 3
    alone, mixed, notes = [], [], []
    for _ in range(reps):
        alone.append((await time_to_first_call(False, root))[0])
        t, status = await time_to_first_call(True, root)
        mixed.append(t)
        notes.append(status)
    a, b = statistics.median(alone), statistics.median(mixed)
    slow_still_starting = all(n.startswith("starting") for n in notes)
    rows = [row("start() returned → first call to the fast server, a 10 s server also starting", round(b * 1000),
                "ms", reference=round(a * 1000), target="≤ 1.5× the fast server alone; the slow one still starting",
                met=b <= 1.5 * a and slow_still_starting)]
    return rows, {"alone_s": alone, "with_slow_s": mixed, "slow_status_at_first_call": notes}


def main(quick: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="codeloop-bench-mcp-") as tmp:
        root = Path(tmp)
        token_rows, token_data = asyncio.run(tokens(root))
        start_rows, start_data = asyncio.run(startup(quick, root))
    notes = [
        f"Tokens counted with {TOKENIZER_NAME}; {token_data['builtin_tools']} built-in tools in every request; "
        f"a {WINDOW:,}-token window, tool search when the MCP schemas pass 10% of it.",
        "With tool search the model gets the MCP tools' names and one-line descriptions in the search_tools "
        "description, and the full schema of a tool once it has searched for it.",
        "Start-up times are medians of " + ("1 run (quick)" if quick else "3 runs") + "; the servers are Python "
        "processes importing the MCP SDK, so most of the time is their own start.",
    ]
    return result("mcp", "MCP tools: tokens per request and start-up", token_rows + start_rows, notes,
                  tokens=token_data, startup=start_data)


if __name__ == "__main__":
    import json

    print(json.dumps(main("--quick" in sys.argv), indent=2))
