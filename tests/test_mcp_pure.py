"""The MCP client's pure parts: tool names, result conversion, tool search.

Results of real servers are converted in test_mcp_manager.py; here the edge cases of the
wire format (as the spec writes it) are covered one by one."""

from __future__ import annotations

import re

from codeloop.context.tokens import count_tools
from codeloop.services.mcp.info import McpToolInfo
from codeloop.services.mcp.names import MAX_NAME, NameRegistry, qualified_name, sanitize
from codeloop.services.mcp.results import convert
from codeloop.services.mcp.search import SEARCH_TOOL_NAME, one_line, plan_tools, run_search, search_tools

VALID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # OpenAI's function-name rule


# -- names ----------------------------------------------------------------------------------


def test_names_follow_claude_code_and_openai_rules() -> None:
    assert qualified_name("github", "create_issue") == "mcp__github__create_issue"
    assert qualified_name("my.server", "get weather/now") == "mcp__my_server__get_weather_now"
    assert sanitize("ünï") == "_n_"
    long = qualified_name("a-very-long-server-name-for-testing", "and_an_even_longer_tool_name_that_goes_on_and_on")
    assert len(long) == MAX_NAME and VALID.match(long)
    assert long.startswith("mcp__a-very-long-server-name-for-testing__and_")
    # Different long names stay different.
    other = qualified_name("a-very-long-server-name-for-testing", "and_an_even_longer_tool_name_that_goes_on_and_ON")
    assert other != long and len(other) == MAX_NAME


def test_collisions_get_suffixes_and_names_are_stable() -> None:
    reg = NameRegistry(reserved={"read_file"})
    a = reg.name_for("srv", "a.b")
    b = reg.name_for("srv", "a_b")
    c = reg.name_for("my.srv", "x")
    d = reg.name_for("my_srv", "x")
    assert (a, b, c, d) == ("mcp__srv__a_b", "mcp__srv__a_b_2", "mcp__my_srv__x", "mcp__my_srv__x_2")
    assert reg.name_for("srv", "a_b") == b  # stable
    long_tool = "t" * 80
    first = reg.name_for("s", long_tool)
    second = reg.name_for("s2", long_tool.replace("t", "t", 1))
    assert first != second and all(VALID.match(n) for n in (a, b, c, d, first, second))


# -- results ------------------------------------------------------------------------------


def test_text_blocks_are_joined_and_errors_flagged() -> None:
    r = convert({"content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}], "isError": False})
    assert (r.is_error, r.text) == (False, "one\n\ntwo")
    e = convert({"content": [{"type": "text", "text": "no such repo"}], "isError": True})
    assert (e.is_error, e.text, e.failure) == (True, "no such repo", None)
    empty = convert({"content": [], "isError": True})
    assert empty.is_error and "without a message" in empty.text


def test_structured_content_is_compact_json_and_its_repeat_dropped() -> None:
    pretty = '{\n  "temp": 21,\n  "city": "Paris"\n}'
    r = convert({"content": [{"type": "text", "text": pretty}], "structuredContent": {"temp": 21, "city": "Paris"}})
    assert r.text == '{"temp":21,"city":"Paris"}'
    assert r.structured == {"temp": 21, "city": "Paris"}
    # The SDK's wrapper for a value that is not an object: the value itself.
    assert convert({"content": [{"type": "text", "text": "3"}], "structuredContent": {"result": 3}}).text == "3"
    assert convert({"content": [{"type": "text", "text": "hi"}], "structuredContent": {"result": "hi"}}).text == "hi"
    # Text that says something else is kept, and the data follows.
    both = convert({"content": [{"type": "text", "text": "Found 2"}], "structuredContent": {"items": [1, 2]}})
    assert both.text == 'Found 2\n\n{"items":[1,2]}'


def test_images_are_parts_or_notes() -> None:
    r = convert({"content": [{"type": "text", "text": "chart:"}, {"type": "image", "data": "iVBORw0KGgo=", "mimeType": "image/png"}]})
    assert [(i.mime_type, i.data) for i in r.images] == [("image/png", "iVBORw0KGgo=")]
    assert r.model_text(True) == "chart:\n[image 1 (image/png, 8 B) is attached]"
    assert "does not take images" in r.model_text(False)
    parts = r.content_parts(True)
    assert parts[1] == {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    assert len(r.content_parts(False)) == 1


def test_resources_links_and_unknown_content() -> None:
    r = convert({"content": [
        {"type": "resource", "resource": {"uri": "file:///a.txt", "mimeType": "text/plain", "text": "alpha"}},
        {"type": "resource", "resource": {"uri": "file:///b.bin", "mimeType": "application/zip", "blob": "AAAA"}},
        {"type": "resource", "resource": {"uri": "file:///c.png", "mimeType": "image/png", "blob": "iVBO"}},
        {"type": "resource_link", "uri": "https://x.invalid/spec", "name": "spec", "description": "The spec"},
        {"type": "audio", "data": "AAAA", "mimeType": "audio/wav"},
        {"type": "hologram"},
    ]})
    assert "[resource file:///a.txt]\nalpha" in r.text
    assert "file:///b.bin (application/zip, 3 B) is binary" in r.text
    assert [i.mime_type for i in r.images] == ["image/png"]
    assert "Resource links:\n- spec <https://x.invalid/spec> (The spec)" in r.text
    assert "[audio (audio/wav, 3 B) is not shown]" in r.text
    assert "'hologram'" in r.text


# -- tool search -------------------------------------------------------------------------------


def tools(n: int) -> list[McpToolInfo]:
    areas = [("calendar", "Create, move and list calendar events"), ("weather", "Current weather and forecasts"),
             ("invoice", "Generate invoices and refunds"), ("email", "Send and search email messages")]
    out = []
    for i in range(n):
        area, desc = areas[i % len(areas)]
        name = f"{area}_op_{i}"
        out.append(McpToolInfo(f"mcp__srv{i % 3}__{name}", f"srv{i % 3}", name, f"{desc}. Variant {i}, with details.",
                               {"type": "object", "properties": {"target": {"type": "string"}, "limit": {"type": "integer"}}}))
    return out


def test_small_sets_are_sent_whole() -> None:
    ts = tools(20)
    plan = plan_tools(ts, context_window=128_000)
    assert not plan.deferred and plan.search_tool is None
    assert [s["function"]["name"] for s in plan.schemas] == [t.qualified_name for t in ts]
    assert plan.tokens_all == plan.tokens_sent == count_tools([t.schema() for t in ts])


def test_large_sets_are_deferred_to_search_tools() -> None:
    ts = tools(200)
    plan = plan_tools(ts, context_window=128_000)
    assert plan.deferred and plan.schemas == []
    assert plan.search_tool["function"]["name"] == SEARCH_TOOL_NAME
    assert plan.tokens_sent < plan.tokens_all / 3
    assert plan.tokens_sent <= plan.budget
    assert "- mcp__srv0__calendar_op_0: Create, move and list calendar events." in plan.catalog
    loaded = {"mcp__srv1__weather_op_1"}
    later = plan_tools(ts, context_window=128_000, loaded=loaded)
    assert [s["function"]["name"] for s in later.schemas] == ["mcp__srv1__weather_op_1"]
    assert "- mcp__srv1__weather_op_1:" not in later.catalog and "- mcp__srv1__weather_op_13:" in later.catalog
    # Smaller windows: names only, then counts per server; the plan stays within its budget.
    small = plan_tools(ts, context_window=32_000)
    assert small.catalog.split("\n")[0] == "- mcp__srv0__calendar_op_0" and small.tokens_sent <= small.budget
    tiny = plan_tools(ts, context_window=16_000)
    assert "- server srv0: 67 tools" in tiny.catalog and tiny.tokens_sent <= tiny.budget


def test_search_finds_by_name_and_description() -> None:
    ts = tools(40)
    hits = search_tools("weather forecast", ts, limit=3)
    assert len(hits) == 3 and all(h.name.startswith("weather_") for h in hits)
    assert {h.name.split("_")[0] for h in search_tools("send emails", ts)} == {"email"}
    assert [h.qualified_name for h in search_tools("select:mcp__srv0__calendar_op_0,invoice_op_2", ts)] == [
        "mcp__srv0__calendar_op_0", "mcp__srv2__invoice_op_2"]
    assert all("refund" in h.description for h in search_tools("+refunds invoice", ts))
    assert search_tools("the a of", ts) == []
    assert search_tools("zebra", ts) == []
    # Server names count too.
    assert {h.server for h in search_tools("srv2", ts, limit=20)} == {"srv2"}


def test_run_search_reports_what_it_loaded() -> None:
    ts = tools(40)
    text, new = run_search("calendar events", ts, loaded={"mcp__srv0__calendar_op_0"}, limit=2)
    assert text.startswith("Loaded 2 tools for the rest of the session")
    assert "mcp__srv0__calendar_op_0(target, limit): Create, move and list calendar events." in text
    assert new == ["mcp__srv1__calendar_op_4"]
    text, new = run_search("zebra", ts, loaded=set())
    assert new == [] and "No MCP tool matches" in text


def test_one_line() -> None:
    assert one_line("Get the weather. It uses the API.") == "Get the weather."
    assert one_line("word " * 50).endswith("…") and len(one_line("word " * 50)) <= 90
    assert one_line("") == ""
