"""``codeloop acp`` end to end: the real agent in a subprocess, driven by a real ACP client
(the ``agent-client-protocol`` SDK's client side, ``acp_harness.AcpClient``), against the
scripted model, on real files. The edge cases: unsaved buffers through fs/read_text_file,
edits approved and rejected through session/request_permission, commands in the client's
terminal, cancelling mid-command and mid-permission, session/load, a client-provided MCP
server, a client with neither fs nor terminal."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest
from acp import RequestError, text_block
from acp.schema import (
    BlobResourceContents,
    EmbeddedResourceContentBlock,
    ImageContentBlock,
    McpServerStdio,
    ResourceContentBlock,
    TextResourceContents,
)
from acp_harness import AcpClient, acp_agent, config, start, until, workspace
from conftest import words
from mcp_helpers import EDGE
from scripted_model import Call, ChatRequest, Error, Script, Text, ToolCalls

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="


async def test_initialize_and_new_session(model_server, tmp_path):
    model = model_server(Script([]))
    ws = workspace(tmp_path)
    client = AcpClient()
    async with acp_agent(model.base_url, config(tmp_path, mode="acceptEdits"), client) as conn:
        init, new = await start(conn, client, ws)
        caps = init.agent_capabilities
        assert init.protocol_version == 1 and init.agent_info.name == "codeloop"
        assert caps.load_session is True
        assert caps.prompt_capabilities.image and caps.prompt_capabilities.embedded_context
        assert caps.mcp_capabilities.http and caps.mcp_capabilities.sse
        # The user's mode setting, as in the other hosts; the four modes offered.
        assert new.modes.current_mode_id == "acceptEdits"
        assert [m.id for m in new.modes.available_modes] == ["ask", "acceptEdits", "plan", "bypass"]
        await until(lambda: client.of("available_commands_update"))
        names = [c.name for c in client.of("available_commands_update")[0].available_commands]
        assert {"compact", "mode", "model", "context", "cost", "resume", "clear", "help"} <= set(names)
        assert "exit" not in names  # the REPL's own
        assert (ws / ".codeloop" / "sessions").is_dir()  # saved in the workspace
        with pytest.raises(RequestError):
            await conn.new_session(cwd="relative/path", mcp_servers=[])
        with pytest.raises(RequestError):
            await conn.set_session_mode(session_id=new.session_id, mode_id="fly")


async def test_a_prompt_reads_an_unsaved_buffer(model_server, tmp_path):
    def answer(req: ChatRequest):
        return Text("It holds: " + req.last_tool_results()[0])

    model = model_server(Script([ToolCalls([Call("read_file", {"path": "app.py"})]), answer]))
    ws = workspace(tmp_path, **{"app.py": "on_disk = True\n"})
    client = AcpClient()
    client.buffers[str(ws / "app.py")] = "on_disk = True\nunsaved = 'typed in the editor'\n"
    async with acp_agent(model.base_url, config(tmp_path), client) as conn:
        _, new = await start(conn, client, ws)
        resp = await conn.prompt(session_id=new.session_id, prompt=[text_block("what is in app.py?")])
    assert resp.stop_reason == "end_turn"
    result = model.chat_requests[1].last_tool_results()[0]
    assert "unsaved = 'typed in the editor'" in result and "unsaved changes" in result
    assert str(ws / "app.py") in client.reads
    start_ = client.of("tool_call")[0]
    assert start_.kind == "read" and start_.title == "app.py"
    assert start_.locations[0].path == str(ws / "app.py")
    done = client.of("tool_call_update")[-1]
    assert done.status == "completed" and "typed in the editor" in done.content[-1].content.text
    assert "It holds:" in client.text() and "typed in the editor" in client.text()
    assert words(model.chat_requests[0].last_user_text()) == "what is in app.py?"


async def test_edits_approved_always_and_rejected(model_server, tmp_path):
    def summary(req: ChatRequest):
        return Text("Results: " + " | ".join(req.last_tool_results()))

    model = model_server(Script([
        ToolCalls([Call("edit_file", {"path": "a.py", "old_string": "x = 1", "new_string": "x = 2"})]),
        ToolCalls([Call("edit_file", {"path": "a.py", "old_string": "x = 2", "new_string": "x = 3"})]),
        ToolCalls([Call("edit_file", {"path": "b.py", "old_string": "y = 1", "new_string": "y = 2"})]),
        summary,
    ]))
    ws = workspace(tmp_path, **{"b.py": "y = 1\n"})
    (ws / "a.py").write_bytes(b"x = 1\r\n")  # Windows line endings: they stay

    def answer(call, options):
        assert [o.option_id for o in options] == ["allow_once", "allow_always", "reject_once"]
        return "allow_always" if "a.py" in call.title else "reject_once"

    client = AcpClient(answer=answer)
    async with acp_agent(model.base_url, config(tmp_path), client) as conn:
        _, new = await start(conn, client, ws)
        resp = await conn.prompt(session_id=new.session_id, prompt=[text_block("edit both")])
    assert resp.stop_reason == "end_turn"
    # a.py: asked once (always allowed), then edited again without asking; written by the editor.
    assert (ws / "a.py").read_bytes() == b"x = 3\r\n"
    assert [p for p, _ in client.writes] == [str(ws / "a.py"), str(ws / "a.py")]
    asked = [p.title for p in client.permissions]
    assert asked == ["Edit a.py", "Edit b.py"]
    diff = client.permissions[0].content[0]
    assert diff.type == "diff" and diff.old_text == "x = 1\n" and diff.new_text == "x = 2\n"
    rules = json.loads((ws / ".codeloop" / "settings.local.json").read_text())["permissions"]["allow"]
    assert any("a.py" in r for r in rules)
    # b.py: rejected, nothing written, and the model was told; the turn went on.
    assert (ws / "b.py").read_text() == "y = 1\n"
    results = model.chat_requests[3].last_tool_results()
    assert "rejected" in results[0] and "b.py" in results[0] and "nothing was written" in results[0]
    # The tool calls show their diffs.
    first = client.of("tool_call")[0]
    assert first.kind == "edit"
    updates = client.tool_updates(first.tool_call_id)
    assert any(u.content and u.content[0].type == "diff" for u in updates if getattr(u, "content", None))
    assert updates[-1].status == "completed"
    assert "Results:" in client.text()


async def test_an_edit_is_not_written_over_a_buffer_changed_meanwhile(model_server, tmp_path):
    model = model_server(Script([
        ToolCalls([Call("edit_file", {"path": "a.py", "old_string": "x = 1", "new_string": "x = 2"})]),
        lambda req: Text("Outcome: " + req.last_tool_results()[0]),
    ]))
    ws = workspace(tmp_path, **{"a.py": "x = 1\n"})
    client = AcpClient()

    def answer(call, options):
        # While the user looks at the diff, they type in the buffer.
        client.buffers[str(ws / "a.py")] = "x = 1\n# typed meanwhile\n"
        return "allow_once"

    client.answer = answer
    async with acp_agent(model.base_url, config(tmp_path), client) as conn:
        _, new = await start(conn, client, ws)
        resp = await conn.prompt(session_id=new.session_id, prompt=[text_block("edit")])
    assert resp.stop_reason == "end_turn"
    assert client.writes == [] and (ws / "a.py").read_text() == "x = 1\n"
    result = model.chat_requests[1].last_tool_results()[0]
    assert "Nothing was written" in result and "changed in the editor" in result


async def test_a_command_runs_in_the_clients_terminal(model_server, tmp_path):
    model = model_server(Script([
        ToolCalls([Call("run_command", {"command": "echo out; echo err >&2; echo $PAGER; exit 3"})]),
        lambda req: Text("Got: " + req.last_tool_results()[0]),
    ]))
    ws = workspace(tmp_path)
    client = AcpClient()
    async with acp_agent(model.base_url, config(tmp_path), client) as conn:
        _, new = await start(conn, client, ws)
        resp = await conn.prompt(session_id=new.session_id, prompt=[text_block("run it")])
        await until(lambda: all(t.released for t in client.terminals.values()))
    assert resp.stop_reason == "end_turn"
    created = client.created[0]
    assert created["args"][0] == "-c" and "echo out" in created["args"][1] and created["cwd"] == str(ws)
    result = model.chat_requests[1].last_tool_results()[0]
    assert result.splitlines() == ["out", "err", "cat", "exit code: 3"]
    call = client.of("tool_call")[0]
    assert call.kind == "execute" and call.title.startswith("echo out")
    assert client.permissions[0].kind == "execute" and client.permissions[0].title.startswith("Run echo out")
    final = client.tool_updates(call.tool_call_id)[-1]
    assert final.content[0].type == "terminal" and final.content[0].terminal_id == "term-1"
    assert "exit code: 3" in final.content[1].content.text


async def test_cancel_mid_command_kills_it_in_the_terminal(model_server, tmp_path):
    model = model_server(Script([
        ToolCalls([Call("run_command", {"command": "echo started; sleep 60"})]),
        lambda req: Text("after: " + req.last_tool_results()[-1]),
    ]))
    ws = workspace(tmp_path)
    client = AcpClient()
    async with acp_agent(model.base_url, config(tmp_path), client) as conn:
        _, new = await start(conn, client, ws)
        turn = asyncio.ensure_future(conn.prompt(session_id=new.session_id, prompt=[text_block("run long")]))
        await until(lambda: bool(client.terminals) and b"started" in client.terminals["term-1"].output)
        await conn.cancel(session_id=new.session_id)
        resp = await asyncio.wait_for(turn, 30)
        assert resp.stop_reason == "cancelled"
        term = client.terminals["term-1"]
        await until(lambda: term.proc.returncode is not None and term.released)
        assert client.killed == ["term-1"]
        call = client.of("tool_call")[0]
        assert client.tool_updates(call.tool_call_id)[-1].status == "failed"
        # The conversation goes on: the cancelled call has its result.
        again = await conn.prompt(session_id=new.session_id, prompt=[text_block("and now?")])
    assert again.stop_reason == "end_turn"
    assert "Cancelled" in model.chat_requests[-1].tool_result(call.tool_call_id)


async def test_a_command_past_its_timeout_is_killed_in_the_terminal(model_server, tmp_path):
    model = model_server(Script([
        ToolCalls([Call("run_command", {"command": "echo begun; sleep 60", "timeout": 1})]),
        lambda req: Text("Result: " + req.last_tool_results()[0]),
    ]))
    ws = workspace(tmp_path)
    client = AcpClient()
    async with acp_agent(model.base_url, config(tmp_path), client) as conn:
        _, new = await start(conn, client, ws)
        resp = await asyncio.wait_for(conn.prompt(session_id=new.session_id, prompt=[text_block("run")]), 60)
        await until(lambda: client.terminals["term-1"].released)
    assert resp.stop_reason == "end_turn"
    assert client.killed == ["term-1"] and client.terminals["term-1"].proc.returncode is not None
    result = model.chat_requests[1].last_tool_results()[0]
    assert result.startswith("begun\n") and "timed out after 1s" in result


async def test_a_permission_pending_at_cancel_is_cancelled_and_nothing_applied(model_server, tmp_path):
    model = model_server(Script([
        ToolCalls([Call("write_file", {"path": "new.py", "content": "print('hi')\n"})]),
        Text("unreachable"),
    ]))
    ws = workspace(tmp_path)
    client = AcpClient()
    async with acp_agent(model.base_url, config(tmp_path), client) as conn:
        _, new = await start(conn, client, ws)
        client.hold = asyncio.get_running_loop().create_future()
        held = client.hold
        turn = asyncio.ensure_future(conn.prompt(session_id=new.session_id, prompt=[text_block("write it")]))
        await asyncio.wait_for(client.asked.wait(), 30)
        await conn.cancel(session_id=new.session_id)
        held.set_result(None)  # the client answers its pending request "cancelled"
        resp = await asyncio.wait_for(turn, 30)
    assert resp.stop_reason == "cancelled"
    assert not (ws / "new.py").exists() and client.writes == []
    assert len(model.chat_requests) == 1


async def test_session_load_replays_and_continues(model_server, tmp_path):
    def recall(req: ChatRequest):
        return Text("You said: " + words(req.user_texts()[0]))

    model = model_server(Script([
        ToolCalls([Call("read_file", {"path": "notes.txt"})]),
        Text("Noted."),
        recall,
    ]))
    ws = workspace(tmp_path, **{"notes.txt": "kiwi\n"})
    home = config(tmp_path)
    first = AcpClient()
    async with acp_agent(model.base_url, home, first) as conn:
        _, new = await start(conn, first, ws)
        await conn.prompt(session_id=new.session_id, prompt=[text_block("remember the word in notes.txt")])
    sid = new.session_id
    second = AcpClient()
    async with acp_agent(model.base_url, home, second) as conn:
        await conn.initialize(protocol_version=1, client_capabilities=second.capabilities())
        listed = await conn.list_sessions(cwd=str(ws))
        assert [s.session_id for s in listed.sessions] == [sid]
        assert listed.sessions[0].title.startswith("remember the word")
        with pytest.raises(RequestError):
            await conn.load_session(cwd=str(ws), session_id="20000101-000000-000000", mcp_servers=[])
        loaded = await conn.load_session(cwd=str(ws), session_id=sid, mcp_servers=[])
        assert loaded.modes.current_mode_id == "ask"
        kinds = [u.session_update for _, u in second.updates]
        assert kinds[:4] == ["user_message_chunk", "tool_call", "tool_call_update", "agent_message_chunk"]
        assert second.of("user_message_chunk")[0].content.text == "remember the word in notes.txt"
        call = second.of("tool_call")[0]
        assert call.kind == "read" and call.title == "notes.txt"
        assert "kiwi" in second.of("tool_call_update")[0].content[0].content.text
        assert second.of("agent_message_chunk")[0].content.text == "Noted."
        resp = await conn.prompt(session_id=sid, prompt=[text_block("what did I ask first?")])
    assert resp.stop_reason == "end_turn"
    assert "You said: remember the word in notes.txt" in second.text()


async def test_a_client_provided_mcp_server(model_server, tmp_path):
    model = model_server(Script([
        ToolCalls([Call("mcp__edge__echo", {"text": "ping from the model"})]),
        lambda req: Text("Echo: " + req.last_tool_results()[0]),
    ]))
    ws = workspace(tmp_path)
    client = AcpClient()
    server = McpServerStdio(name="edge", command=sys.executable, args=[EDGE], env=[])
    async with acp_agent(model.base_url, config(tmp_path), client) as conn:
        _, new = await start(conn, client, ws, mcp_servers=[server])
        resp = await conn.prompt(session_id=new.session_id, prompt=[text_block("echo")])
    assert resp.stop_reason == "end_turn"
    assert "mcp__edge__echo" in model.chat_requests[0].tool_names()
    assert model.chat_requests[1].last_tool_results()[0] == "ping from the model"
    asked = client.permissions[0]
    assert asked.title == "Use mcp__edge__echo" and asked.kind == "other"
    assert "Echo: ping from the model" in client.text()


async def test_a_client_without_fs_or_terminal(model_server, tmp_path):
    model = model_server(Script([
        ToolCalls([Call("read_file", {"path": "a.py"})]),
        ToolCalls([Call("edit_file", {"path": "a.py", "old_string": "x = 1", "new_string": "x = 2"})]),
        ToolCalls([Call("run_command", {"command": "cat a.py"})]),
        lambda req: Text("Done: " + req.last_tool_results()[0]),
    ]))
    ws = workspace(tmp_path, **{"a.py": "x = 1\n"})
    client = AcpClient(fs=False, terminal=False)
    client.buffers[str(ws / "a.py")] = "never read: the client offers no fs\n"
    async with acp_agent(model.base_url, config(tmp_path), client) as conn:
        _, new = await start(conn, client, ws)
        resp = await conn.prompt(session_id=new.session_id, prompt=[text_block("go")])
    assert resp.stop_reason == "end_turn"
    assert client.reads == [] and client.writes == [] and client.created == []
    assert "x = 1" in model.chat_requests[1].last_tool_results()[0]
    assert (ws / "a.py").read_text() == "x = 2\n"  # written by codeloop itself, after the review
    assert [p.title for p in client.permissions] == ["Edit a.py", "Run cat a.py"]
    assert model.chat_requests[3].last_tool_results()[0] == "x = 2\nexit code: 0"
    run = client.of("tool_call")[-1]
    final = client.tool_updates(run.tool_call_id)[-1]
    assert final.content[0].content.text == "x = 2\nexit code: 0"  # the output in the tool call


async def test_modes_from_the_client_and_from_a_slash_command(model_server, tmp_path):
    model = model_server(Script([
        ToolCalls([Call("edit_file", {"path": "a.py", "old_string": "x = 1", "new_string": "x = 2"})]),
        Text("edited"),
        ToolCalls([Call("edit_file", {"path": "a.py", "old_string": "x = 2", "new_string": "x = 3"})]),
        lambda req: Text("plan mode said: " + req.last_tool_results()[0]),
    ]))
    ws = workspace(tmp_path, **{"a.py": "x = 1\n"})
    client = AcpClient(answer=lambda call, options: "reject_once")
    async with acp_agent(model.base_url, config(tmp_path), client) as conn:
        _, new = await start(conn, client, ws)
        sid = new.session_id
        await conn.set_session_mode(session_id=sid, mode_id="acceptEdits")
        await conn.prompt(session_id=sid, prompt=[text_block("edit")])
        assert (ws / "a.py").read_text() == "x = 2\n" and client.permissions == []  # applied unasked
        resp = await conn.prompt(session_id=sid, prompt=[text_block("/mode plan")])
        assert resp.stop_reason == "end_turn"
        assert client.of("current_mode_update")[-1].current_mode_id == "plan"
        assert "Mode: plan." in client.text()
        await conn.prompt(session_id=sid, prompt=[text_block("edit again")])
    assert (ws / "a.py").read_text() == "x = 2\n"
    assert len(model.chat_requests) == 4  # the slash command never reached the model
    assert "not available in the current mode" in model.chat_requests[3].last_tool_results()[0]


async def test_clear_starts_a_new_conversation_behind_the_same_session(model_server, tmp_path):
    model = model_server(Script([Text("first answer"), lambda req: Text(f"{len(req.user_texts())} user message(s)")]))
    ws = workspace(tmp_path)
    client = AcpClient()
    async with acp_agent(model.base_url, config(tmp_path), client) as conn:
        _, new = await start(conn, client, ws)
        sid = new.session_id
        await conn.prompt(session_id=sid, prompt=[text_block("hello")])
        cleared = await conn.prompt(session_id=sid, prompt=[text_block("/clear")])
        assert cleared.stop_reason == "end_turn" and "Started a new session" in client.text()
        await conn.prompt(session_id=sid, prompt=[text_block("who am I?")])
        assert "1 user message(s)" in client.text()  # the earlier exchange is not in the new conversation
        assert len(list((ws / ".codeloop" / "sessions").glob("*.jsonl"))) == 2
        # /resume brings the first conversation back, shown to the client as it was.
        before = len(client.of("user_message_chunk"))
        resumed = await conn.prompt(session_id=sid, prompt=[text_block(f"/resume {sid}")])
        assert resumed.stop_reason == "end_turn" and f"Resumed session {sid} (2 messages)" in client.text()
        shown = client.of("user_message_chunk")[before:]
        assert [u.content.text for u in shown] == ["hello"]


async def test_stop_reasons_max_turn_requests_and_refusal(model_server, tmp_path):
    model = model_server(Script([
        ToolCalls([Call("list_dir", {"path": "."})]),
        Error(401, "Incorrect API key provided"),
    ]))
    ws = workspace(tmp_path, **{"a.py": "x = 1\n"})
    client = AcpClient()
    async with acp_agent(model.base_url, config(tmp_path), client, "--max-turns", "1") as conn:
        _, new = await start(conn, client, ws)
        first = await conn.prompt(session_id=new.session_id, prompt=[text_block("look around")])
        assert first.stop_reason == "max_turn_requests"
        assert "max-turns limit" in client.text()
        second = await conn.prompt(session_id=new.session_id, prompt=[text_block("again")])
    # The model's server refused at once: nothing of that turn is kept.
    assert second.stop_reason == "refusal"
    assert "Incorrect API key" in client.text()


async def test_images_resources_and_links_in_a_prompt(model_server, tmp_path):
    model = model_server(Script([Text("seen")]))
    ws = workspace(tmp_path, **{"b.py": "on disk\n"})
    client = AcpClient()
    prompt = [
        text_block("look at these"),
        ImageContentBlock(type="image", mime_type="image/png", data=PNG),
        EmbeddedResourceContentBlock(type="resource", resource=TextResourceContents(
            uri=(ws / "b.py").as_uri(), text="def b():\n    return 'from the editor'\n", mime_type="text/x-python")),
        EmbeddedResourceContentBlock(type="resource", resource=BlobResourceContents(
            uri=(ws / "data.bin").as_uri(), blob="AAEC", mime_type="application/octet-stream")),
        ResourceContentBlock(type="resource_link", uri=(ws / "README.md").as_uri(), name="README.md"),
    ]
    async with acp_agent(model.base_url, config(tmp_path, images="on"), client) as conn:
        _, new = await start(conn, client, ws)
        resp = await conn.prompt(session_id=new.session_id, prompt=prompt)
    assert resp.stop_reason == "end_turn"
    content = [m for m in model.chat_requests[0].messages if m["role"] == "user"][-1]["content"]
    assert content[0]["type"] == "text" and content[0]["text"].startswith("look at these\n[@README.md]")
    assert "data.bin: a binary resource" in content[0]["text"]
    assert any(p["type"] == "text" and p["text"].startswith('<context kind="file" label="b.py">')
               and "from the editor" in p["text"] for p in content)
    assert any(p["type"] == "image_url" and p["image_url"]["url"] == f"data:image/png;base64,{PNG}" for p in content)


async def test_the_agent_exits_when_the_client_closes_stdin(model_server, tmp_path):
    """Newline-delimited JSON-RPC on stdio; nothing but JSON-RPC on stdout; the agent ends
    (its sessions closed) when the client closes the connection."""
    from conftest import cli_env

    model = model_server(Script([]))
    ws = workspace(tmp_path)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "codeloop", "acp", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=cli_env(model.base_url, XDG_CONFIG_HOME=str(config(tmp_path))))
    assert proc.stdin is not None and proc.stdout is not None
    for i, (method, params) in enumerate([("initialize", {"protocolVersion": 1}),
                                          ("session/new", {"cwd": str(ws), "mcpServers": []})]):
        proc.stdin.write((json.dumps({"jsonrpc": "2.0", "id": i, "method": method, "params": params}) + "\n").encode())
    await proc.stdin.drain()
    lines = [json.loads(await asyncio.wait_for(proc.stdout.readline(), 30)) for _ in range(2)]
    assert lines[0]["id"] == 0 and lines[0]["result"]["protocolVersion"] == 1
    assert lines[1]["id"] == 1 and lines[1]["result"]["sessionId"]
    proc.stdin.close()
    rest = await asyncio.wait_for(proc.stdout.read(), 30)
    assert await asyncio.wait_for(proc.wait(), 30) == 0
    # After the answer: the session's command menu, and nothing that is not JSON-RPC.
    for line in rest.decode().splitlines():
        assert json.loads(line)["method"] == "session/update"
