"""MCP servers over the language server (the real ``codeloop lsp`` over JSON-RPC, a real MCP
server, the scripted model): the project-server consent as a "Trust" approval (VS Code) and
as ``window/showMessageRequest`` (plain clients), permission approvals of ``mcp__…`` calls,
the server's name on the tool card, ``codeloop/mcp/list|restart|changed``, servers from the
editor's settings, one set of servers shared by the chats, cancelling a turn cancelling
the call at the server, and ``/mcp``."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import asking_user_settings, cli_env
from lsp_harness import Editor, _plain, start_editor, stop_editor
from mcp_helpers import WaitForTools, edge_entry
from scripted_model import Call, Keyed, Script, Text, ToolCalls

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false"]


def git(root: Path, *args: str) -> None:
    subprocess.run(GIT + list(args), cwd=root, check=True, capture_output=True)


@pytest.fixture
async def editor_factory(model_server, tmp_path):
    editors: list[Editor] = []

    async def make(scenario, *, user: dict | None = None, project: dict | None = None, codeloop: str = "vscode",
                   settings: dict | None = None, on_approval=None, on_message_request=None,
                   files: dict[str, object] | None = None) -> tuple[Editor, Any, Path]:
        """``project``: the workspace's .mcp.json; ``files``: more of its files. Either makes
        the workspace a git repository, its files committed (as cloned)."""
        root = tmp_path / "ws"
        root.mkdir(exist_ok=True)
        home = tmp_path / "home"
        asking_user_settings(home / "config", **(user or {}))
        if project is not None or files:
            if project is not None:
                (root / ".mcp.json").write_text(json.dumps({"mcpServers": project}))
            for rel, data in (files or {}).items():
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_text(json.dumps(data))
            git(root, "init", "-q")
            git(root, "add", "-A")
            git(root, "commit", "-qm", "as cloned")
        server = model_server(scenario)
        env = cli_env(server.base_url, XDG_CONFIG_HOME=str(home / "config"), XDG_DATA_HOME=str(home / "data"))
        kw = {} if codeloop == "vscode" else {"codeloop": None}
        editor = await start_editor(root, env, settings=settings, **kw)
        editor.mcp_changes = []  # type: ignore[attr-defined]

        @editor.client.feature("codeloop/mcp/changed")
        def on_changed(params: Any) -> None:
            editor.mcp_changes.append(_plain(params))  # type: ignore[attr-defined]
            editor.poke()

        if on_approval is not None:
            editor.on_approval = on_approval
        if on_message_request is not None:
            editor.on_message_request = on_message_request
        editors.append(editor)
        return editor, server, root

    yield make
    for e in editors:
        if not getattr(e, "stopped", False):
            await stop_editor(e)


async def request(editor: Editor, method: str, params: dict | None = None) -> dict[str, Any]:
    return _plain(dict(await editor.client.protocol.send_request_async(method, params or {})))


def server_state(editor: Editor, name: str) -> dict[str, Any] | None:
    for change in reversed(editor.mcp_changes):  # type: ignore[attr-defined]
        for s in change["servers"]:
            if s["name"] == name:
                return s
    return None


def call_then_answer(name: str, args: dict) -> WaitForTools:
    return WaitForTools([name], Script([ToolCalls([Call(name, args)]),
                                        lambda req: Text("result: " + req.last_tool_results()[0].split("\n")[0])]))


async def test_consent_card_then_an_approved_call_with_the_server_on_its_card(editor_factory):
    def answer(p: dict) -> dict:
        return {"answer": "allow_always"} if p["kind"] == "Trust" else {"answer": "allow_once"}

    editor, model, root = await editor_factory(call_then_answer("mcp__proj__echo", {"text": "hi from proj"}),
                                               project={"proj": edge_entry("proj")}, on_approval=answer)
    trust = await editor.wait_for(lambda: next((a for a in editor.approvals if a["kind"] == "Trust"), None), 30,
                                  "the consent card")
    assert "edge_server.py --name proj" in trust["target"] and trust["target"].startswith("runs `")
    assert ".mcp.json defines MCP server 'proj'" in trust["reason"] and trust["subject"] == "MCP server proj"
    ready = await editor.wait_for(lambda: (s := server_state(editor, "proj")) and s["status"] == "ready" and s, 30,
                                  "proj ready")
    assert ready["toolCount"] == 12 and ready["source"] == "project"
    local = json.loads((root / ".codeloop" / "settings.local.json").read_text())
    assert local["enabledMcpjsonServers"] == ["proj"]

    started = await editor.chat("call it")
    end = await editor.turn_end(started["turnId"])
    assert end["status"] == "done"
    events = editor.turn_events(started["turnId"])
    card = next(e for e in events if e["type"] == "toolCallStarted" and e["name"] == "mcp__proj__echo")
    assert card["origin"] == "proj"
    (approval,) = [a for a in editor.approvals if a["kind"] == "Tool"]
    assert approval["target"] == "mcp__proj__echo" and approval["callId"] == card["callId"]
    assert approval["suggestedRule"] == "mcp__proj__echo"
    assert "result: hi from proj" in editor.text_of(started["turnId"])

    listed = await request(editor, "codeloop/mcp/list")
    (proj,) = listed["servers"]
    assert proj["status"] == "ready" and proj["toolCount"] == 12 and "proj  [ready]  12 tools" in listed["report"]
    pid = proj["pid"]
    assert isinstance(pid, int)
    said = await request(editor, "codeloop/mcp/restart", {"name": "proj"})
    assert said["message"] == "Restarting the MCP server 'proj'."
    # (while it restarts, one state still says ready with no process: its tools are withdrawn first)
    await editor.wait_for(lambda: (s := server_state(editor, "proj")) and s["status"] == "ready"
                          and s.get("pid") not in (None, pid), 30, "proj restarted")
    assert server_state(editor, "proj")["restarts"] == 1  # type: ignore[index]
    bad = await request(editor, "codeloop/mcp/restart", {"name": "nope"})
    assert "no MCP server named 'nope'" in bad["message"]


async def test_a_plain_client_is_asked_with_show_message_request(editor_factory):
    editor, model, root = await editor_factory(Keyed({"/mcp": Text("unused")}), project={"proj": edge_entry("proj")},
                                               codeloop="plain", on_message_request=lambda p: "Deny")
    await editor.wait_for(lambda: editor.message_requests, 30, "the consent question")
    (question,) = editor.message_requests
    assert "MCP server 'proj'" in question.message and "Allow it to run in this project?" in question.message
    assert [a.title for a in question.actions] == ["Allow", "Deny"]
    await editor.wait_for(lambda: (root / ".codeloop" / "settings.local.json").exists(), 30, "the answer kept")
    local = json.loads((root / ".codeloop" / "settings.local.json").read_text())
    assert local["disabledMcpjsonServers"] == ["proj"]
    listed = await request(editor, "codeloop/mcp/list")
    assert listed["servers"][0]["status"] == "disabled"
    assert "you refused to let this project server run" in listed["servers"][0]["lastError"]


async def test_servers_from_the_editor_settings_are_shared_by_the_chats(editor_factory):
    scenario = Keyed({"one": call_then_answer("mcp__ed__cwd", {}), "two": call_then_answer("mcp__ed__cwd", {})})
    editor, model, root = await editor_factory(
        scenario, settings={"mcpServers": {"ed": edge_entry("ed")}, "permissions": {"allow": ["mcp__ed"]}})
    await editor.wait_for(lambda: (s := server_state(editor, "ed")) and s["status"] == "ready", 30, "ed ready")
    pid = server_state(editor, "ed")["pid"]  # type: ignore[index]
    first = await editor.chat("one")
    second = await editor.chat("two")  # a second chat: a session of its own
    assert first["sessionId"] != second["sessionId"]
    for t in (first, second):
        assert (await editor.turn_end(t["turnId"]))["status"] == "done"
        assert f"result: {root}" in editor.text_of(t["turnId"])
    assert editor.approvals == []  # the editor's allow rule
    listed = await request(editor, "codeloop/mcp/list")
    assert [(s["name"], s["source"], s["pid"]) for s in listed["servers"]] == [("ed", "editor", pid)]  # one process


async def test_cancelling_a_turn_cancels_the_call_at_the_server(editor_factory, tmp_path):
    marker = tmp_path / "cancelled.txt"
    scenario = WaitForTools(["mcp__edge__sleep"], Script([
        ToolCalls([Call("mcp__edge__sleep", {"seconds": 60, "marker": str(marker)})]), Text("never")]))
    editor, model, root = await editor_factory(scenario, user={"mcpServers": {"edge": edge_entry()},
                                                               "permissions": {"allow": ["mcp__edge"]}})
    started = await editor.chat("sleep")
    await editor.wait_for(lambda: any(e["type"] == "toolCallStarted" and e["name"] == "mcp__edge__sleep"
                                      for e in editor.turn_events(started["turnId"])), 60, "the sleep call")
    # cancel once the request is at the server (a cancel before it was sent has nothing to cancel there)
    await editor.wait_for(lambda: Path(str(marker) + ".started").exists(), 20, "the call at the server")
    editor.client.protocol.notify("codeloop/chat/cancel", {"sessionId": started["sessionId"]})
    end = await editor.turn_end(started["turnId"])
    assert end["status"] == "cancelled"
    await editor.wait_for(lambda: marker.exists(), 20, "the server to see the cancellation")
    assert marker.read_text() == "cancelled"
    finished = next(e for e in editor.turn_events(started["turnId"])
                    if e["type"] == "toolCallFinished" and e["name"] == "mcp__edge__sleep")
    assert finished["status"] == "cancelled"


async def test_slash_mcp_in_the_panel(editor_factory):
    editor, model, root = await editor_factory(Text("unused"), user={"mcpServers": {"edge": edge_entry()}})
    await editor.wait_for(lambda: (s := server_state(editor, "edge")) and s["status"] == "ready", 30, "edge ready")
    started = await editor.chat("/mcp")
    assert (await editor.turn_end(started["turnId"]))["status"] == "done"
    (notice,) = [e for e in editor.turn_events(started["turnId"]) if e["type"] == "notice"]
    assert "edge  [ready]  12 tools  (user, stdio)" in notice["message"]
    assert model.chat_requests == []  # a command, not a message to the model


async def test_a_cloned_repositorys_allow_rule_is_a_trust_question_over_lsp(editor_factory):
    """The same trust covers the project's allow rules: asked as a card; refused, the
    command is asked like any other."""
    scenario = Script([ToolCalls([Call("run_command", {"command": "touch marker.txt"})]),
                       lambda req: Text("result: " + req.last_tool_results()[0][:100])])
    editor, model, root = await editor_factory(
        scenario, files={".codeloop/settings.json": {"permissions": {"allow": ["Bash(touch marker.txt)"]}}},
        on_approval=lambda p: {"answer": "deny"})
    rules = await editor.wait_for(lambda: next((a for a in editor.approvals if a["kind"] == "Trust"), None), 30,
                                  "the rules question")
    assert rules["subject"] == "the project's allow rules" and "Bash(touch marker.txt)" in rules["reason"]
    await editor.wait_for(lambda: (root / ".codeloop" / "settings.local.json").exists(), 30, "the answer kept")
    started = await editor.chat("touch it")
    assert (await editor.turn_end(started["turnId"]))["status"] == "done"
    asked = [a for a in editor.approvals if a["kind"] == "Bash"]
    assert [a["target"] for a in asked] == ["touch marker.txt"]  # the held rule did not allow it
    assert not (root / "marker.txt").exists()
    assert "deniedProjectRules" in json.loads((root / ".codeloop" / "settings.local.json").read_text())


async def test_the_servers_stop_with_the_language_server(editor_factory):
    from conftest import processes_matching, unique_marker

    child = unique_marker("child")
    editor, model, root = await editor_factory(Text("unused"), user={
        "mcpServers": {"edge": edge_entry("edge", "--spawn-child", child)}})
    await editor.wait_for(lambda: (s := server_state(editor, "edge")) and s["status"] == "ready", 30, "edge ready")
    assert processes_matching(child)
    await stop_editor(editor)
    editor.stopped = True  # type: ignore[attr-defined]
    deadline = asyncio.get_running_loop().time() + 15
    while processes_matching(child) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)
    assert processes_matching(child) == []
