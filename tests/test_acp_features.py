"""``codeloop acp`` with the features that run through the runtime: the workspace's and the
client's MCP servers (``runtime/mcp.py``), project trust asked with session/request_permission
(``runtime/trust.py``), the todo list as ACP's plan, hooks and sub-agents in the tool calls,
the OS sandbox over the client's terminal, session/load of an empty session, and /rewind.
The real agent in a subprocess, the SDK's client side (``acp_harness.AcpClient``), the
scripted model, real MCP servers (``tests/mcp_servers/edge_server.py``), real bubblewrap."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path

import pytest
from acp import RequestError, text_block
from acp.schema import McpServerStdio
from acp_harness import AcpClient, acp_agent, config, start, until, workspace
from conftest import words
from mcp_helpers import EDGE, edge_entry
from scripted_model import Call, Script, Text, ToolCalls

TRUST = {"Trust MCP server proj?", "Trust the project's allow rules?"}


def answers(trust: str, other: str = "allow_once"):
    """Answer the project's trust with ``trust``, everything else with ``other``."""
    def answer(call, options):
        if call.title.startswith("Trust "):
            assert [(o.option_id, o.kind) for o in options] == [
                ("allow_once", "allow_once"), ("allow_always", "allow_always"), ("reject_always", "reject_always")]
            return trust
        return other
    return answer


def project(ws: Path, settings: dict) -> None:
    (ws / ".mcp.json").write_text(json.dumps({"mcpServers": {"proj": edge_entry("proj")}}))
    (ws / ".codeloop").mkdir(exist_ok=True)
    (ws / ".codeloop" / "settings.json").write_text(json.dumps(settings))


def consent_files(tmp_path: Path) -> list[Path]:
    return list((tmp_path / "xdg-data").glob("codeloop/consent/*.json"))


async def test_project_trust_is_asked_in_the_first_prompt_once_or_always(model_server, tmp_path):
    """The project's MCP server and its allow rule wait for consent, asked in the first
    prompt's turn. Allow once trusts for that connection only (nothing written: the next
    asks again); allow always is remembered (the next asks nothing)."""
    def script():
        return Script([
            ToolCalls([Call("mcp__proj__echo", {"text": "from the project's server"})]),
            ToolCalls([Call("run_command", {"command": "echo allowed-by-the-project"})]),
            lambda req: Text("Results: " + " | ".join(req.last_tool_results())),
        ])

    ws = workspace(tmp_path)
    project(ws, {"permissions": {"allow": ["Bash(echo:*)"]}})
    home = config(tmp_path)
    for round_, trust in enumerate(["allow_once", "allow_always", None]):
        model = model_server(script())
        client = AcpClient(terminal=False, answer=answers(trust or "reject_always"))
        async with acp_agent(model.base_url, home, client) as conn:
            _, new = await start(conn, client, ws)
            resp = await conn.prompt(session_id=new.session_id, prompt=[text_block("use the project's tools")])
        assert resp.stop_reason == "end_turn"
        asked = [p.title for p in client.permissions]
        # The MCP tool is asked like any MCP tool; the echo is allowed by the trusted project rule.
        assert asked.count("Use mcp__proj__echo") == 1 and not any(t.startswith("Run") for t in asked)
        assert "mcp__proj__echo" in model.chat_requests[0].tool_names()
        assert model.chat_requests[1].last_tool_results()[0] == "from the project's server"
        assert model.chat_requests[2].last_tool_results()[0] == "allowed-by-the-project\nexit code: 0"
        trust_calls = [p for p in client.permissions if p.title.startswith("Trust ")]
        if round_ < 2:
            assert {p.title for p in trust_calls} == TRUST
            question = next(p for p in trust_calls if "MCP server" in p.title).content[0].content.text
            assert ".mcp.json" in question and "edge_server.py" in question  # what it trusts, what it runs
            shown = [u for u in client.of("tool_call") if u.title in TRUST]
            assert len(shown) == 2 and all(u.kind == "other" for u in shown)
            ends = [client.tool_updates(u.tool_call_id)[-1] for u in shown]
            assert all(e.status == "completed" for e in ends)
        else:
            assert trust_calls == []  # remembered from the second round
        if round_ == 0:
            assert consent_files(tmp_path) == []  # allow once: nothing written
        else:
            saved = json.loads(consent_files(tmp_path)[0].read_text())
            assert saved["enabledMcpjsonServers"] == ["proj"] and saved["trustedProjectRules"]


async def test_a_rejected_project_stays_off_and_trust_project_trusts_it(model_server, tmp_path):
    """Rejected: the project's server does not start and its hooks do not run (a PreToolUse
    hook that would block the command). With ``trustProject`` nothing is asked, the hook
    runs and blocks the command, and the tool call's content says so."""
    hook = {"PreToolUse": [{"matcher": "Bash", "hooks": [
        {"type": "command", "command": "echo 'no commands in this project' >&2; exit 2"}]}]}
    ws = workspace(tmp_path)
    project(ws, {"hooks": hook})

    def script():
        return Script([
            ToolCalls([Call("run_command", {"command": "echo ran"})]),
            lambda req: Text("Result: " + req.last_tool_results()[0]),
        ])

    model = model_server(script())
    client = AcpClient(terminal=False, answer=answers("reject_always"))
    async with acp_agent(model.base_url, config(tmp_path), client) as conn:
        _, new = await start(conn, client, ws)
        await conn.prompt(session_id=new.session_id, prompt=[text_block("run it")])
    assert {p.title for p in client.permissions} == {"Trust MCP server proj?", "Trust the project's hooks?",
                                                     "Run echo ran"}
    assert not any(n.startswith("mcp__proj__") for n in model.chat_requests[0].tool_names())
    assert model.chat_requests[1].last_tool_results()[0] == "ran\nexit code: 0"  # the hook did not run
    refused = [u for u in client.of("tool_call") if u.title.startswith("Trust ")]
    assert all(client.tool_updates(u.tool_call_id)[-1].status == "failed" for u in refused)
    saved = json.loads(consent_files(tmp_path)[0].read_text())
    assert saved["disabledMcpjsonServers"] == ["proj"] and saved["deniedProjectHooks"]

    other = tmp_path / "trusting"
    other.mkdir()
    model = model_server(script())
    client = AcpClient(terminal=False)
    ws2 = workspace(other)
    project(ws2, {"hooks": hook})
    async with acp_agent(model.base_url, config(other, trustProject=True), client) as conn:
        _, new = await start(conn, client, ws2)
        await conn.prompt(session_id=new.session_id, prompt=[text_block("run it")])
    assert not any(p.title.startswith("Trust ") for p in client.permissions)
    assert "mcp__proj__echo" in model.chat_requests[0].tool_names()
    result = model.chat_requests[1].last_tool_results()[0]
    assert "no commands in this project" in result
    run = next(u for u in client.of("tool_call") if u.kind == "execute")
    final = client.tool_updates(run.tool_call_id)[-1]
    texts = [c.content.text for c in final.content]
    assert final.status == "failed"
    assert any(t.startswith("- ⚙") and "PreToolUse" in t and "no commands in this project" in t for t in texts)


async def test_the_todo_list_is_the_plan(model_server, tmp_path):
    todos = [
        {"content": "Read the code", "activeForm": "Reading the code", "status": "in_progress"},
        {"content": "Fix the bug", "activeForm": "Fixing the bug", "status": "pending"},
    ]
    later = [dict(todos[0], status="completed"), dict(todos[1], status="in_progress"),
             {"content": "Run the tests", "activeForm": "Running the tests", "status": "pending"}]
    model = model_server(Script([
        ToolCalls([Call("todo_write", {"todos": todos})]),
        ToolCalls([Call("todo_write", {"todos": later})]),
        Text("planned"),
    ]))
    ws = workspace(tmp_path)
    client = AcpClient()
    async with acp_agent(model.base_url, config(tmp_path), client) as conn:
        _, new = await start(conn, client, ws)
        resp = await conn.prompt(session_id=new.session_id, prompt=[text_block("plan it")])
    assert resp.stop_reason == "end_turn"
    plans = client.of("plan")
    assert len(plans) == 2  # every change sends the whole plan
    assert [(e.content, e.status, e.priority) for e in plans[0].entries] == [
        ("Reading the code", "in_progress", "medium"), ("Fix the bug", "pending", "medium")]
    assert [(e.content, e.status) for e in plans[1].entries] == [
        ("Read the code", "completed"), ("Fixing the bug", "in_progress"), ("Run the tests", "pending")]
    calls = client.of("tool_call")
    assert [c.kind for c in calls] == ["think", "think"]
    assert client.permissions == []
    # Loaded later: the conversation, then the plan as it stood.
    again = AcpClient()
    async with acp_agent(model.base_url, config(tmp_path), again) as conn:
        await conn.initialize(protocol_version=1, client_capabilities=again.capabilities())
        await conn.load_session(cwd=str(ws), session_id=new.session_id, mcp_servers=[])
    kinds = [u.session_update for _, u in again.updates]
    assert kinds[-2:] == ["plan", "available_commands_update"]
    assert [(e.content, e.status) for e in again.of("plan")[0].entries] == [
        ("Read the code", "completed"), ("Fixing the bug", "in_progress"), ("Run the tests", "pending")]


async def test_a_sub_agents_steps_are_in_the_task_call(model_server, tmp_path):
    """ACP has no nested calls: the task call lists its sub-agent's steps as it goes; a step
    that changes something is a tool call of its own (its diff and permission need one)."""
    model = model_server(Script([
        ToolCalls([Call("task", {"description": "find the answer", "prompt": "What does a.py set?",
                                 "subagent_type": "explore"})]),
        ToolCalls([Call("read_file", {"path": "a.py"})]),
        Text("a.py sets x to 1."),
        ToolCalls([Call("task", {"description": "bump x", "prompt": "Set x to 2 in a.py.",
                                 "subagent_type": "general"})]),
        ToolCalls([Call("edit_file", {"path": "a.py", "old_string": "x = 1", "new_string": "x = 2"})]),
        Text("Done: x is 2."),
        Text("All done."),
    ]))
    ws = workspace(tmp_path, **{"a.py": "x = 1\n"})
    client = AcpClient()
    async with acp_agent(model.base_url, config(tmp_path), client) as conn:
        _, new = await start(conn, client, ws)
        resp = await conn.prompt(session_id=new.session_id, prompt=[text_block("go")])
    assert resp.stop_reason == "end_turn"
    assert (ws / "a.py").read_text() == "x = 2\n"
    calls = client.of("tool_call")
    explore, general = [c for c in calls if c.raw_input and "subagent_type" in c.raw_input]
    assert (explore.kind, explore.title) == ("think", "explore: find the answer")
    # The explore agent's read is only a step; the general agent's edit is a call of its own.
    assert [c.title for c in calls if c not in (explore, general)] == ["general: a.py"]
    steps = [u for u in client.tool_updates(explore.tool_call_id) if u.session_update == "tool_call_update"]
    running = steps[0].content[0].content.text
    assert running.startswith("Sub-agent explore: 1 tool call, working") and "read_file a.py" in running
    final = steps[-1]
    assert final.status == "completed"
    listed, answer = final.content[0].content.text, final.content[-1].content.text
    assert "- ✓ read_file a.py → read 1 line" in listed and "says: a.py sets x to 1." in listed
    assert answer.startswith("a.py sets x to 1.")
    edit = next(c for c in calls if c.title == "general: a.py")
    assert edit.kind == "edit"
    asked = client.permissions[0]
    assert asked.tool_call_id == edit.tool_call_id and asked.content[0].type == "diff"
    assert client.tool_updates(edit.tool_call_id)[-1].status == "completed"
    general_text = client.tool_updates(general.tool_call_id)[-1].content[0].content.text
    assert "- ✓ edit_file a.py" in general_text


async def test_with_the_sandbox_commands_run_here_and_show_their_output(bubblewrap, model_server, tmp_path):
    """The client's terminal runs commands unconfined: with an OS sandbox active they run
    here, inside it, and the tool call's content is their output."""
    model = model_server(Script([
        ToolCalls([Call("run_command", {"command": "echo inside; touch /tmp/../etc/codeloop-escape || echo refused"})]),
        lambda req: Text("Got: " + req.last_tool_results()[0]),
    ]))
    ws = workspace(tmp_path)
    client = AcpClient(terminal=True)
    async with acp_agent(model.base_url, config(tmp_path, sandbox="on"), client) as conn:
        _, new = await start(conn, client, ws)
        resp = await conn.prompt(session_id=new.session_id, prompt=[text_block("run it")])
    assert resp.stop_reason == "end_turn"
    assert client.created == []  # not in the client's terminal
    result = model.chat_requests[1].last_tool_results()[0]
    assert result.startswith("inside\n") and "refused" in result
    run = client.of("tool_call")[0]
    final = client.tool_updates(run.tool_call_id)[-1]
    assert final.content[-1].content.text == result  # the output in the tool call


async def test_session_load_of_empty_and_unknown_sessions(model_server, tmp_path):
    model = model_server(Script([lambda req: Text(f"{len(req.user_texts())} message(s)"),
                                 lambda req: Text(f"{len(req.user_texts())} message(s)")]))
    ws = workspace(tmp_path)
    home = config(tmp_path)
    client = AcpClient()
    async with acp_agent(model.base_url, home, client) as conn:
        _, new = await start(conn, client, ws)
        await until(lambda: client.of("available_commands_update"))
        # A new session with nothing in it (nothing saved yet) loads as it is: nothing replayed.
        loaded = await conn.load_session(cwd=str(ws), session_id=new.session_id, mcp_servers=[])
        assert loaded.modes.current_mode_id == "ask"
        assert client.of("user_message_chunk") == [] and client.of("agent_message_chunk") == []
        resp = await conn.prompt(session_id=new.session_id, prompt=[text_block("hello")])
        assert resp.stop_reason == "end_turn" and "1 message(s)" in client.text()
        # Unknown and malformed ids: a clear error, -32002.
        for bad in ("20000101-000000-000000", "../../etc/passwd"):
            with pytest.raises(RequestError) as e:
                await conn.load_session(cwd=str(ws), session_id=bad, mcp_servers=[])
            assert e.value.code == -32002 and bad in str(e.value)
    # A saved session file with nothing in it: loads, replays nothing, and goes on.
    empty = "20260101-120000-0a0b0c"
    (ws / ".codeloop" / "sessions" / f"{empty}.jsonl").write_text("")
    second = AcpClient()
    async with acp_agent(model.base_url, home, second) as conn:
        await conn.initialize(protocol_version=1, client_capabilities=second.capabilities())
        await conn.load_session(cwd=str(ws), session_id=empty, mcp_servers=[])
        assert [u.session_update for _, u in second.updates] == ["available_commands_update"]
        resp = await conn.prompt(session_id=empty, prompt=[text_block("first words")])
    assert resp.stop_reason == "end_turn" and "1 message(s)" in second.text()
    assert "first words" in (ws / ".codeloop" / "sessions" / f"{empty}.jsonl").read_text()


async def test_rewind_over_acp_lists_previews_and_restores_through_the_client(model_server, tmp_path):
    model = model_server(Script([
        ToolCalls([Call("edit_file", {"path": "a.py", "old_string": "x = 1", "new_string": "x = 2"})]),
        Text("edited"),
        lambda req: Text(f"now {len(req.user_texts())} message(s)"),
    ]))
    ws = workspace(tmp_path, **{"a.py": "x = 1\n"})
    client = AcpClient()
    async with acp_agent(model.base_url, config(tmp_path), client) as conn:
        _, new = await start(conn, client, ws)
        sid = new.session_id
        await conn.prompt(session_id=sid, prompt=[text_block("bump x")])
        assert (ws / "a.py").read_text() == "x = 2\n" and len(client.writes) == 1
        listed = await conn.prompt(session_id=sid, prompt=[text_block("/rewind")])
        assert listed.stop_reason == "end_turn"
        assert re.search(r"1\b.*bump x", client.text())
        before = len(client.text())
        await conn.prompt(session_id=sid, prompt=[text_block("/rewind 1")])
        preview = client.text()[before:]
        assert "a.py" in preview and "/rewind 1 --yes" in preview  # asks nothing: says how to apply
        assert (ws / "a.py").read_text() == "x = 2\n"
        await conn.prompt(session_id=sid, prompt=[text_block("/rewind 1 --yes")])
        assert (ws / "a.py").read_text() == "x = 1\n"
        assert client.writes[-1] == (str(ws / "a.py"), "x = 1\n")  # restored through the editor
        assert len(model.chat_requests) == 2  # the slash commands never reached the model
        await conn.prompt(session_id=sid, prompt=[text_block("what now?")])
    assert "now 1 message(s)" in client.text()  # the conversation was rewound too
    assert words(model.chat_requests[-1].user_texts()[0]) == "what now?"


async def test_client_mcp_servers_are_shared_per_workspace_and_seen_by_their_sessions(model_server, tmp_path):
    """Two sessions passing the same server share one process; a session that did not pass
    it does not see it; the process ends with the connection."""
    model = model_server(Script([Text("a"), Text("b"), Text("c"),
                                 ToolCalls([Call("mcp__edge__echo", {"text": "x"})]),
                                 lambda req: Text("said: " + req.last_tool_results()[0])]))
    ws = workspace(tmp_path)
    client = AcpClient()
    server = McpServerStdio(name="edge", command=sys.executable, args=[EDGE], env=[])
    async with acp_agent(model.base_url, config(tmp_path), client) as conn:
        await conn.initialize(protocol_version=1, client_capabilities=client.capabilities())
        # The workspace is open (no server at all) before a session brings one.
        c = await conn.new_session(cwd=str(ws), mcp_servers=[])
        await conn.prompt(session_id=c.session_id, prompt=[text_block("hi")])
        a = await conn.new_session(cwd=str(ws), mcp_servers=[server])
        b = await conn.new_session(cwd=str(ws), mcp_servers=[server])
        for s in (a, b):
            await conn.prompt(session_id=s.session_id, prompt=[text_block("hi")])
        resp = await conn.prompt(session_id=c.session_id, prompt=[text_block("call it anyway")])
        assert resp.stop_reason == "end_turn"
        # Another definition of the same name: the running one is used, and the session is told.
        other = McpServerStdio(name="edge", command=sys.executable, args=[EDGE, "--name", "other"], env=[])
        d = await conn.new_session(cwd=str(ws), mcp_servers=[other])
        await until(lambda: any(sid == d.session_id and "already runs in this workspace" in u.content.text
                                for sid, u in client.updates if getattr(u, "session_update", "") == "agent_message_chunk"))
        log = (ws / ".codeloop" / "mcp-logs" / "edge.log").read_text()
        pids = re.findall(r"starting \(pid (\d+)\)", log)
    assert len(pids) == 1  # one process for the workspace
    names = [set(r.tool_names()) for r in model.chat_requests]
    assert "mcp__edge__echo" in names[1] and "mcp__edge__echo" in names[2]
    assert not any(n.startswith("mcp__edge__") for n in names[0] | names[3])
    assert model.chat_requests[4].last_tool_results()[0].startswith("Error: unknown tool 'mcp__edge__echo'")
    for _ in range(100):  # the connection ended: its servers stopped
        try:
            os.kill(int(pids[0]), 0)
        except ProcessLookupError:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the MCP server outlived the connection")


async def test_a_trust_question_pending_at_cancel_is_no_answer(model_server, tmp_path):
    """Cancelled while the project's server is asked about: nothing is remembered, the
    server stays off for the connection (``/mcp`` says it waits), ``/mcp allow`` starts it."""
    model = model_server(Script([
        ToolCalls([Call("mcp__proj__echo", {"text": "now it runs"})]),
        lambda req: Text("Echo: " + req.last_tool_results()[0]),
    ]))
    ws = workspace(tmp_path)
    project(ws, {})
    client = AcpClient()
    async with acp_agent(model.base_url, config(tmp_path), client) as conn:
        _, new = await start(conn, client, ws)
        sid = new.session_id
        client.hold = asyncio.get_running_loop().create_future()
        held = client.hold
        turn = asyncio.ensure_future(conn.prompt(session_id=sid, prompt=[text_block("hello")]))
        await asyncio.wait_for(client.asked.wait(), 30)
        assert client.permissions[0].title == "Trust MCP server proj?"
        await conn.cancel(session_id=sid)
        held.set_result(None)  # the client answers its pending request "cancelled"
        resp = await asyncio.wait_for(turn, 30)
        assert resp.stop_reason == "cancelled" and model.chat_requests == []
        question = client.of("tool_call")[-1]
        await until(lambda: client.tool_updates(question.tool_call_id)[-1].status == "failed")
        before = len(client.text())
        await conn.prompt(session_id=sid, prompt=[text_block("/mcp")])
        assert "proj  [needs-consent]" in client.text()[before:]
        await conn.prompt(session_id=sid, prompt=[text_block("/mcp allow proj")])
        for _ in range(100):  # it starts in the background
            before = len(client.text())
            await conn.prompt(session_id=sid, prompt=[text_block("/mcp")])
            if "proj  [ready]" in client.text()[before:]:
                break
            await asyncio.sleep(0.2)
        resp = await conn.prompt(session_id=sid, prompt=[text_block("echo")])
    assert resp.stop_reason == "end_turn"
    assert len(client.permissions) == 2  # asked once about the server (not again), then the tool call
    assert "Echo: now it runs" in client.text()
    assert consent_files(tmp_path) and json.loads(consent_files(tmp_path)[0].read_text())["enabledMcpjsonServers"] == ["proj"]


async def test_a_command_that_runs_here_shows_its_output_as_it_comes(model_server, tmp_path):
    """No client terminal (or the sandbox): the command runs here and its tool call shows its
    latest output while it runs, then the whole result."""
    model = model_server(Script([
        ToolCalls([Call("run_command", {"command": "for i in 1 2 3; do echo line$i; sleep 0.6; done"})]),
        Text("done"),
    ]))
    ws = workspace(tmp_path)
    client = AcpClient(terminal=False, answer=lambda call, options: "allow_once")
    async with acp_agent(model.base_url, config(tmp_path), client) as conn:
        _, new = await start(conn, client, ws)
        resp = await conn.prompt(session_id=new.session_id, prompt=[text_block("count")])
    assert resp.stop_reason == "end_turn"
    run = client.of("tool_call")[0]
    updates = [u for u in client.tool_updates(run.tool_call_id) if u.session_update == "tool_call_update"]
    live = [u.content[-1].content.text for u in updates[:-1] if u.content]
    assert any(t.startswith("line1\n") and "exit code" not in t for t in live)
    assert updates[-1].status == "completed"
    assert updates[-1].content[-1].content.text == "line1\nline2\nline3\nexit code: 0"
