"""Hooks, sub-agents, the todo list and custom commands over LSP: the real ``codeloop lsp``
(pytest-lsp), the scripted model, real hook scripts in a temporary user config.

A VS Code-like client gets the new events in ``codeloop/event`` (``hookRan``,
``todosChanged``, ``subagent``); a plain client gets the log and ``$/progress``.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest
from conftest import asking_user_settings, cli_env, processes_matching, unique_marker
from lsp_harness import start_editor, stop_editor
from lsprotocol import types as lsp
from scripted_model import Call, ChatRequest, Keyed, Script, Text, ToolCalls

PY = shlex.quote(sys.executable)


def user_env(base_url: str, tmp: Path, hooks: dict | None = None) -> dict[str, str]:
    xdg, claude = tmp / "xdg", tmp / "claude-home"
    asking_user_settings(xdg)
    claude.mkdir(exist_ok=True)
    if hooks is not None:
        (claude / "settings.json").write_text(json.dumps({"hooks": hooks}))
    return cli_env(base_url, XDG_CONFIG_HOME=str(xdg), CLAUDE_CONFIG_DIR=str(claude))


def events_of(editor, turn_id: str, kind: str) -> list[dict]:
    return [e for e in editor.turn_events(turn_id) if e["type"] == kind]


async def request(editor, method: str, params: dict) -> dict:
    return dict(await editor.client.protocol.send_request_async(method, params))


def is_child(req: ChatRequest) -> bool:
    return "You are the sub-agent 'general'" in req.system_text()


async def test_hook_runs_reach_the_panel_as_events_and_plain_clients_as_log_lines(model_server, tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    hook = f"{PY} -c \"import sys; sys.stdin.read(); print('checked', file=sys.stderr); sys.exit(2)\""
    for plain in (False, True):
        server = model_server(Script([ToolCalls([Call("run_command", {"command": "echo hi"}, id="call_x")]),
                                      lambda req: Text("blocked: " + req.last_tool_results()[0])]))
        env = user_env(server.base_url, tmp_path, {"PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": hook}]}]})
        kw = {"codeloop": None} if plain else {}
        editor = await start_editor(ws, env, settings={"mode": "bypass"}, **kw)
        try:
            if not plain:
                started = await editor.chat("go")
                end = await editor.turn_end(started["turnId"])
                assert end["status"] == "done"
                runs = events_of(editor, started["turnId"], "hookRan")
                assert [(r["phase"], r["hookEvent"], r["callId"], r["target"]) for r in runs] == [
                    ("start", "PreToolUse", "call_x", "run_command"), ("end", "PreToolUse", "call_x", "run_command")]
                assert runs[1]["status"] == "denied" and "checked" in runs[1]["line"] and runs[1]["scope"] == "user"
                assert editor.text_of(started["turnId"]) == "blocked: Blocked by a PreToolUse hook: checked"
            else:
                await editor.client.workspace_execute_command_async(
                    lsp.ExecuteCommandParams(command="codeloop.chat", arguments=["go"]))
                await editor.wait_for(lambda: any(p and p[-1].kind == "end" for p in editor.client.progress_reports.values()),
                                      30, "the turn")
                logs = [m.message for m in editor.client.log_messages]
                assert any(m.startswith("[codeloop] ⚙ hook PreToolUse") and "denied the call" in m for m in logs), logs
                assert editor.events == []
        finally:
            await stop_editor(editor)


PLAN = {"todos": [
    {"content": "Read the code", "activeForm": "Reading the code", "status": "completed"},
    {"content": "Fix the bug", "activeForm": "Fixing the bug", "status": "in_progress"},
    {"content": "Run the tests", "activeForm": "Running the tests", "status": "pending"},
]}


async def test_the_todo_list_as_events_and_as_progress_for_plain_clients(model_server, tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    for plain in (False, True):
        server = model_server(Script([ToolCalls([Call("todo_write", PLAN)]), Text("planned")]))
        kw = {"codeloop": None} if plain else {}
        editor = await start_editor(ws, user_env(server.base_url, tmp_path), **kw)
        try:
            if not plain:
                started = await editor.chat("plan")
                await editor.turn_end(started["turnId"])
                (changed,) = events_of(editor, started["turnId"], "todosChanged")
                assert changed["todos"] == PLAN["todos"]
                assert changed["changes"] == ["added: Read the code", "added: Fix the bug", "added: Run the tests"]
                opened = await request(editor, "codeloop/session/open", {"sessionId": started["sessionId"]})
                assert opened["todos"] == PLAN["todos"]
            else:
                await editor.client.workspace_execute_command_async(
                    lsp.ExecuteCommandParams(command="codeloop.chat", arguments=["plan"]))
                await editor.wait_for(lambda: any(p and p[-1].kind == "end" for p in editor.client.progress_reports.values()),
                                      30, "the turn")
                (reports,) = editor.client.progress_reports.values()
                assert "todos: 1/3 done · Fixing the bug" in [getattr(r, "message", None) for r in reports]
                assert any("[x] Read the code" in m.message and "[>] Fixing the bug" in m.message
                           for m in editor.client.log_messages)
        finally:
            await stop_editor(editor)


async def test_a_sub_agent_shows_nested_is_cancelled_with_its_parent_and_resumes(model_server, tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    marker = unique_marker("37.25")

    def child(req):
        return ToolCalls([Call("run_command", {"command": f"sleep {marker}"}, id="child_call")])

    parent = Script([ToolCalls([Call("task", {"description": "wait", "prompt": "Run the long job.",
                                              "subagent_type": "general"}, id="call_task")])])
    server = model_server(lambda req: child(req) if is_child(req) else parent(req))
    env = user_env(server.base_url, tmp_path)
    editor = await start_editor(ws, env, settings={"mode": "bypass"})
    try:
        started = await editor.chat("start the job")
        sid, tid = started["sessionId"], started["turnId"]
        await editor.wait_for(lambda: processes_matching(marker), 30, "the child's command to start")
        nested = [e for e in editor.turn_events(tid) if e["type"] == "subagent"]
        assert all(e["parentCallId"] == "call_task" and e["agent"] == "general" for e in nested)
        assert [e["event"]["name"] for e in nested if e["event"]["type"] == "toolCallStarted"] == ["run_command"]
        editor.client.protocol.notify("codeloop/chat/cancel", {"sessionId": sid, "turnId": tid})
        end = await editor.turn_end(tid)
        assert end["status"] == "cancelled"
        await editor.wait_for(lambda: not processes_matching(marker), 20, "the child's command to be killed")
        inner = [e["event"] for e in editor.turn_events(tid) if e["type"] == "subagent"]
        assert any(e["type"] == "toolCallFinished" and e["status"] == "cancelled" for e in inner)
        assert any(e["type"] == "turnEnd" and e["status"] == "cancelled" for e in inner)
        parent_done = [e for e in editor.turn_events(tid) if e["type"] == "toolCallFinished"]
        assert [(e["callId"], e["status"]) for e in parent_done] == [("call_task", "cancelled")]
    finally:
        await stop_editor(editor)

    # A new server: the session's file brings the child's messages back.
    editor = await start_editor(ws, env)
    try:
        opened = await request(editor, "codeloop/session/open", {"sessionId": sid})
        sub = opened["subagents"]["call_task"]
        assert sub["agent"] == "general"
        assert [m["role"] for m in sub["messages"]] == ["user", "assistant", "tool"]
        assert sub["messages"][0]["content"] == "Run the long job."
        assert "Cancelled" in sub["messages"][2]["content"]
    finally:
        await stop_editor(editor)


async def test_a_custom_command_over_lsp(model_server, tmp_path):
    ws = tmp_path / "ws"
    (ws / ".codeloop" / "commands").mkdir(parents=True)
    (ws / ".codeloop" / "commands" / "explain.md").write_text("---\ndescription: Explain a symbol\n---\nExplain $1 in one line.\n")
    server = model_server(Keyed({"Explain parse_slash in one line.": Text("It reads a slash command.")}))
    editor = await start_editor(ws, user_env(server.base_url, tmp_path))
    try:
        started = await editor.chat("/explain parse_slash")
        end = await editor.turn_end(started["turnId"])
        assert end["status"] == "done", editor.turn_events(started["turnId"])
        assert editor.text_of(started["turnId"]) == "It reads a slash command."
        helped = await editor.chat("/help", session_id=started["sessionId"])
        await editor.turn_end(helped["turnId"])
        (notice,) = [e for e in events_of(editor, helped["turnId"], "notice")]
        assert "/explain" in notice["message"] and "Explain a symbol (project)" in notice["message"]
    finally:
        await stop_editor(editor)


async def test_notification_hooks_run_when_an_approval_or_a_review_waits(model_server, tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    log = tmp_path / "notes.jsonl"
    record = f"{PY} -c \"import sys; open({str(log)!r}, 'a').write(sys.stdin.read() + chr(10))\""
    server = model_server(Script([
        ToolCalls([Call("run_command", {"command": "echo asked"})]),
        ToolCalls([Call("write_file", {"path": "new.txt", "content": "reviewed\n"})]),
        Text("done"),
    ]))
    env = user_env(server.base_url, tmp_path, {"Notification": [{"hooks": [{"type": "command", "command": record}]}]})
    editor = await start_editor(ws, env)  # ask mode: the command is approved, the file reviewed
    try:
        started = await editor.chat("go")
        assert (await editor.turn_end(started["turnId"]))["status"] == "done"
        assert len(editor.approvals) == 1 and len(editor.reviews) == 1

        def notes() -> list[dict]:
            return [json.loads(x) for x in log.read_text().splitlines() if x.strip()] if log.exists() else []

        await editor.wait_for(lambda: len(notes()) == 2, 20, "both notifications")
        kinds = sorted((n["notification_type"], n["message"]) for n in notes())
        assert kinds == [("permission_prompt", "codeloop needs your permission: Bash echo asked"),
                         ("review_prompt", "codeloop proposes a change to new.txt for your review")]
    finally:
        await stop_editor(editor)


async def test_the_command_table_lists_the_custom_commands_as_the_files_say_now(model_server, tmp_path):
    """``codeloop/commands``: the panel's completion and help line come from the server's
    command table, custom commands (project and user) included with their argument hint."""
    from pygls.exceptions import JsonRpcException

    from codeloop.commands.table import commands_for

    ws = tmp_path / "ws"
    (ws / ".codeloop" / "commands").mkdir(parents=True)
    (ws / ".codeloop" / "commands" / "summarize.md").write_text(
        "---\ndescription: Summarize a file\nargument-hint: [file]\n---\nSummarize $1.\n")
    (ws / ".claude" / "commands").mkdir(parents=True)
    (ws / ".claude" / "commands" / "help.md").write_text("A file named like a built-in command.\n")
    server = model_server(Keyed({}, default=Text("unused")))
    env = user_env(server.base_url, tmp_path)
    (tmp_path / "xdg" / "codeloop" / "commands").mkdir(parents=True)
    (tmp_path / "xdg" / "codeloop" / "commands" / "standup.md").write_text("---\ndescription: Write my standup\n---\nWrite it.\n")
    editor = await start_editor(ws, env)
    try:
        table = (await request(editor, "codeloop/commands", {}))["commands"]
        builtin = [c["name"] for c in table if c["source"] == "built-in"]
        assert builtin == [c.name for c in commands_for("lsp")] and "exit" not in builtin
        rows = {c["name"]: c for c in table}
        assert rows["summarize"] == {"name": "summarize", "synopsis": "[file]", "description": "Summarize a file",
                                     "source": "project"}
        assert rows["standup"] == {"name": "standup", "synopsis": "", "description": "Write my standup", "source": "user"}
        assert rows["help"]["source"] == "built-in", "a built-in command wins over a file of its name"
        assert [c["name"] for c in table].count("help") == 1

        # a file added while the server runs shows in the next answer
        (ws / ".codeloop" / "commands" / "review.md").write_text("---\nargument-hint: <pr>\n---\nReview PR $1.\n")
        again = {c["name"]: c for c in (await request(editor, "codeloop/commands", {}))["commands"]}
        assert again["review"]["synopsis"] == "<pr>" and again["review"]["description"] == "Review PR $1."

        # /help says the same as the table
        helped = await editor.chat("/help")
        await editor.turn_end(helped["turnId"])
        (notice,) = events_of(editor, helped["turnId"], "notice")
        for name in again:
            assert f"/{name}" in notice["message"], name

        with pytest.raises(JsonRpcException):
            await editor.client.protocol.send_request_async("codeloop/commands", ["not", "an", "object"])
        assert (await request(editor, "codeloop/commands", {"unknown": 1}))["commands"], "unknown keys are ignored"
    finally:
        await stop_editor(editor)
