"""The MCP client against real servers written with the SDK's own server API: one manager
for the module, with servers of both protocol eras over stdio, Streamable HTTP (with
headers) and SSE. What each tool returns, junk on stdout, list_changed, timeouts and
cancellation reaching the server, 200 tools and tool search."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from mcp_helpers import HttpServer, edge, wait_for

from codeloop.services.mcp import McpManager, ServerConfig, plan_tools, run_search
from codeloop.services.mcp.search import SEARCH_TOOL_NAME

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def http_servers() -> Iterator[tuple[HttpServer, HttpServer]]:
    web = HttpServer().start()
    sse = HttpServer(transport="sse").start()
    yield web, sse
    web.stop()
    sse.stop()


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ws")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def manager(root: Path, http_servers: tuple[HttpServer, HttpServer]) -> AsyncIterator[McpManager]:
    web, sse = http_servers
    servers = [
        edge("modern", env={"CODELOOP_TEST_VAR": "from-config"}),
        edge("legacy", "--legacy", "--junk"),
        edge("many", "--tools", "200"),
        ServerConfig(name="web", transport="http", source="user", origin="test", url=web.url,
                     headers={"Authorization": "Bearer s3cret", "X-Team": "blue"}),
        ServerConfig(name="old", transport="sse", source="user", origin="test", url=sse.url),
    ]
    m = McpManager(servers, root=root, call_timeout=60)
    await m.start()
    assert await m.wait_settled(60)
    yield m
    await m.close()


async def test_every_server_is_ready_in_its_era(manager: McpManager) -> None:
    by = {s.name: s for s in manager.states()}
    assert {n: s.status for n, s in by.items()} == dict.fromkeys(["modern", "legacy", "many", "web", "old"], "ready")
    assert by["modern"].protocol_version == "2026-07-28"
    assert by["legacy"].protocol_version == "2025-11-25"
    assert by["web"].protocol_version == "2026-07-28"
    assert by["modern"].tool_count == 12 and by["many"].tool_count == 212
    assert by["modern"].pid and by["web"].pid is None
    assert by["legacy"].instructions == "Edge-case server for codeloop's MCP client tests."
    echo = manager.tool("mcp__modern__echo")
    assert echo is not None and echo.read_only and echo.server == "modern" and echo.name == "echo"
    assert echo.schema()["function"]["parameters"]["required"] == ["text"]
    assert not manager.tool("mcp__modern__crash").read_only


@pytest.mark.parametrize("server", ["modern", "legacy", "web", "old"])
async def test_results_of_a_real_server(manager: McpManager, server: str) -> None:
    r = await manager.call(f"mcp__{server}__echo", {"text": "héllo"})
    assert (r.is_error, r.text, r.server, r.tool) == (False, "héllo", server, "echo")
    r = await manager.call(f"mcp__{server}__add", {"a": 2, "b": 40})
    assert (r.text, r.structured) == ("42", {"result": 42})
    r = await manager.call(f"mcp__{server}__image", {})
    assert [i.mime_type for i in r.images] == ["image/png"] and r.images[0].size == 70
    assert "image 1 (image/png, 70 B) is attached" in r.model_text(True)
    r = await manager.call(f"mcp__{server}__fail", {"message": "the disk is full"})
    assert r.is_error and "the disk is full" in r.text and r.failure is None
    r = await manager.call(f"mcp__{server}__resources", {})
    assert "[resource file:///notes/todo.txt]\nbuy milk" in r.text
    assert "- spec <https://example.invalid/spec.pdf> (application/pdf, The spec)" in r.text


async def test_bad_arguments_and_unknown_tools_are_error_results(manager: McpManager) -> None:
    r = await manager.call("mcp__modern__add", {"a": "not a number", "b": 1})
    assert r.is_error and "validation error" in r.text
    r = await manager.call("mcp__nowhere__echo", {"text": "x"})
    assert (r.is_error, r.failure) == (True, "unknown-tool")


async def test_junk_on_stdout_is_logged_and_not_fatal(manager: McpManager, root: Path) -> None:
    r = await manager.call("mcp__legacy__print_junk", {})
    assert r.text == "printed junk"
    assert (await manager.call("mcp__legacy__echo", {"text": "still fine"})).text == "still fine"
    logf = Path(manager.state("legacy").log_file or "")
    assert logf.parent == root / ".codeloop" / "mcp-logs"
    text = logf.read_text()
    assert "ignored a line on stdout that is not JSON-RPC: Starting edge server v1.0..." in text
    assert "ignored a line on stdout that is not JSON-RPC: {not json either" in text
    assert "ignored a line on stdout that is not JSON-RPC: this is not JSON-RPC, just a stray print" in text
    # The server's own stderr is in its log file.
    assert "edge server legacy starting (pid" in text


async def test_env_cwd_and_headers_reach_the_server(manager: McpManager, root: Path) -> None:
    assert (await manager.call("mcp__modern__env", {"name": "CODELOOP_TEST_VAR"})).text == "from-config"
    assert (await manager.call("mcp__modern__env", {"name": "PATH"})).text != "<unset>"
    assert Path((await manager.call("mcp__modern__cwd", {})).text).resolve() == root.resolve()
    headers = json.loads((await manager.call("mcp__web__headers", {})).text)
    assert headers["authorization"] == "Bearer s3cret" and headers["x-team"] == "blue"
    assert headers["user-agent"].startswith("python-httpx")


@pytest.mark.parametrize("server", ["modern", "legacy", "web"])
async def test_list_changed_refreshes_the_tools(manager: McpManager, server: str) -> None:
    events = []
    unsubscribe = manager.subscribe(lambda e: events.append(e))
    try:
        new = f"added_on_{server}"
        r = await manager.call(f"mcp__{server}__add_tool", {"name": new})
        assert r.text == f"added {new}"
        qualified = f"mcp__{server}__{new}"
        await wait_for(lambda: manager.tool(qualified) is not None, 20)
        assert any(e.kind == "tools" and e.server == server for e in events)
        assert manager.state(server).tool_count >= 13
        assert (await manager.call(qualified, {"x": "y"})).text == f"{new}:y"
    finally:
        unsubscribe()


@pytest.mark.parametrize("server", ["modern", "legacy"])
async def test_a_call_past_its_timeout_is_cancelled_at_the_server(manager: McpManager, server: str,
                                                                  tmp_path: Path) -> None:
    marker = tmp_path / f"cancelled-{server}"
    r = await manager.call(f"mcp__{server}__sleep", {"seconds": 60, "marker": str(marker)}, timeout=1.0)
    assert (r.is_error, r.failure) == (True, "timeout")
    assert "did not answer within 1 s" in r.text
    await wait_for(marker.exists, 15)
    assert (await manager.call(f"mcp__{server}__echo", {"text": "after"})).text == "after"


async def test_cancelling_a_call_cancels_it_at_the_server(manager: McpManager, tmp_path: Path) -> None:
    marker = tmp_path / "cancelled"
    task = asyncio.get_running_loop().create_task(
        manager.call("mcp__modern__sleep", {"seconds": 60, "marker": str(marker)}))
    await asyncio.sleep(1.0)  # the request is at the server
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_for(marker.exists, 15)
    assert manager.state("modern").status == "ready"


async def test_200_tools_go_through_tool_search(manager: McpManager) -> None:
    tools = manager.tools()
    assert len([t for t in tools if t.server == "many"]) == 212
    plan = plan_tools(tools, context_window=128_000)
    assert plan.deferred and plan.tokens_sent <= plan.budget < plan.tokens_all
    assert "mcp__many__weather_forecast_002: Look up current weather and multi-day forecasts for a city." in plan.catalog
    text, loaded = run_search("weather forecast for a city", tools, loaded=set(), limit=3)
    assert len(loaded) == 3 and all(n.startswith("mcp__many__weather_forecast_") for n in loaded), loaded
    again = plan_tools(tools, context_window=128_000, loaded=set(loaded))
    assert [s["function"]["name"] for s in again.schemas] == loaded
    assert {s["function"]["name"] for s in again.all_schemas()} == {*loaded, SEARCH_TOOL_NAME}
    r = await manager.call(loaded[0], {"target": "Paris", "limit": 2})
    assert r.text == f"{loaded[0].removeprefix('mcp__many__')}('Paris', limit=2, verbose=False)"
    # Without the 200, everything fits and is sent.
    few = [t for t in tools if t.server != "many"]
    assert not plan_tools(few, context_window=128_000).deferred

