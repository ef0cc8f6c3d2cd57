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

Through a session (what a host runs: ``runtime/mcp.py`` ``WorkspaceMcp`` +
``AgentSession``, the scripted model in process): the prompt tokens of the first request
that carries the MCP tools (system prompt, the message, every tool schema: what the
provider bills), with 0, 20 and 200 MCP tools, with tool search (the default 10% share)
and without (``toolSearchShare`` 1.0); and the time from the session's start (the
workspace opened, the session built, the turn sent) to the model's first request with one
10 s server configured, against the same with no MCP server.
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


# -- through a session (runtime/mcp.py, runtime/session.py) -------------------------------------


class _Sink:
    def emit(self, event: Any) -> None:
        pass


class _Deny:
    async def approve(self, request: Any) -> Any:
        from codeloop.core.ports import ApprovalDecision

        return ApprovalDecision("deny", "bench")


class _NoChanges:
    async def apply(self, changes: Any) -> Any:
        raise RuntimeError("the bench makes no changes")


def _user_config(home: Path, servers: dict[str, Any]) -> Path:
    import json

    cfg = home / "config"
    (cfg).mkdir(parents=True, exist_ok=True)
    (cfg / "settings.json").write_text(json.dumps({"mcpServers": servers}))
    return cfg


async def _session_turn(root: Path, servers: dict[str, Any], share: float, wait_for: str | None,
                        window: int = WINDOW, settle: bool = False) -> tuple[list[Any], float, float]:
    """One turn of a session with ``servers``; the model answers once ``wait_for`` is among the
    request's tools (else at once). ``settle``: send the turn once the servers are ready.
    Returns (the requests, session start → first request (s), the first request's time)."""
    from scripted_model import Call, ScriptedModel, Text, ToolCalls

    from codeloop.config import Settings
    from codeloop.runtime.mcp import WorkspaceMcp, open_workspace
    from codeloop.runtime.session import AgentSession, Ports
    from codeloop.runtime.trust import ProjectTrust

    def reply(req: Any) -> Any:
        if wait_for is not None and wait_for not in req.tool_names():
            time.sleep(0.05)
            return ToolCalls([Call("list_dir", {"path": "."})])
        return Text("ok")

    model = ScriptedModel(reply).start()
    home = root / "home"
    ws = root / "ws"
    ws.mkdir(parents=True, exist_ok=True)
    try:
        settings = Settings(base_url=model.base_url, api_key="x", model="scripted-model", context_window=window,
                            tool_search_share=share, max_turns=400)
        t0 = time.time()
        trust = ProjectTrust(ws, user_data_dir=home / "data")
        mcp = WorkspaceMcp(ws, settings, trust, config_home=_user_config(home, servers))
        await open_workspace(trust, mcp)
        if settle and mcp.manager is not None:
            await mcp.manager.wait_settled(120)
        session = AgentSession(settings, ws, Ports(sink=_Sink(), approver=_Deny(), changes=_NoChanges()),
                               persist=False)
        mcp.attach(session)
        try:
            await session.send("hello")
        finally:
            await session.close()
            await mcp.close()
        reqs = model.chat_requests
        return reqs, reqs[0].time - t0, reqs[0].time
    finally:
        model.stop()


def _request_tokens(req: Any) -> int:
    from codeloop.context.tokens import count_messages

    return count_messages(req.messages) + count_tools(req.tools)


async def session_tokens(root: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    rows, data = [], {}
    for n in (0, 20, 200):
        servers = {"bench": edge_entry("bench", n - OWN_TOOLS)} if n else {}
        figures = {}
        for i, (label, share) in enumerate((("with_search", 0.10), ("without_search", 1.0))):
            reqs, _, _ = await _session_turn(root / f"tok{n:03d}-{i}", servers, share, None, settle=True)
            first = reqs[0]  # the servers were ready: the first request carries their tools
            figures[label] = _request_tokens(first)
            figures[label + "_tools"] = len(first.tools)
        data[str(n)] = figures
        rows.append(row(f"prompt tokens of a request through a session, {n} MCP tools (with tool search)",
                        figures["with_search"], "tokens", reference=figures["without_search"],
                        target="≤ reference" if n else "", met=figures["with_search"] <= figures["without_search"]
                        if n else None))
    return rows, data


def edge_entry(name: str, extra_tools: int = 0, *flags: str) -> dict[str, Any]:
    args = [EDGE, "--name", name, *flags]
    if extra_tools > 0:
        args += ["--tools", str(extra_tools)]
    return {"command": sys.executable, "args": args}


async def session_startup(quick: bool, root: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    reps = 1 if quick else 5
    none, slow = [], []
    await _session_turn(root / "warm", {}, 0.1, None)  # imports and first-use costs, not counted
    for i in range(reps):
        none.append((await _session_turn(root / f"none-{i}", {}, 0.1, None))[1])
        slow.append((await _session_turn(root / f"slow-{i}", {"slow": edge_entry("slow", 0, "--slow-start",
                                                                                   str(SLOW_START))}, 0.1, None))[1])
    a, b = statistics.median(none), statistics.median(slow)
    rows = [row("session start → the first model request, one 10 s MCP server configured", round(b * 1000), "ms",
                reference=round(a * 1000), target="does not wait for the server: ≤ 1.5× no MCP server, < 1 s",
                met=b <= 1.5 * a and b < 1.0)]
    return rows, {"no_server_s": none, "slow_server_s": slow}


def main(quick: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="codeloop-bench-mcp-") as tmp:
        root = Path(tmp)
        token_rows, token_data = asyncio.run(tokens(root))
        start_rows, start_data = asyncio.run(startup(quick, root))
        session_rows, session_data = asyncio.run(session_tokens(root))
        first_rows, first_data = asyncio.run(session_startup(quick, root))
    notes = [
        f"Tokens counted with {TOKENIZER_NAME}; {token_data['builtin_tools']} built-in tools in every request; "
        f"a {WINDOW:,}-token window, tool search when the MCP schemas pass 10% of it.",
        "With tool search the model gets the MCP tools' names and one-line descriptions in the search_tools "
        "description, and the full schema of a tool once it has searched for it.",
        "Start-up times are medians of " + ("1 run (quick)" if quick else "3 runs") + "; the servers are Python "
        "processes importing the MCP SDK, so most of the time is their own start.",
        "Through a session: whole requests as the scripted model received them (system prompt, the user's "
        "message with its context block, every tool schema), counted with count_messages + count_tools.",
    ]
    return result("mcp", "MCP tools: tokens per request and start-up", token_rows + start_rows + session_rows + first_rows,
                  notes, tokens=token_data, startup=start_data, session_tokens=session_data, session_startup=first_data)


if __name__ == "__main__":
    import json

    print(json.dumps(main("--quick" in sys.argv), indent=2))
