"""End to end over LSP: a session made by one ``codeloop lsp`` process is listed and
resumed (``codeloop/session/list``, ``codeloop/session/open``) by the next one, and
continues as if it had never been closed: the same messages, the same project memory in
the prompt, the same usage totals."""

from __future__ import annotations

import subprocess

from conftest import cli_env
from lsp_harness import start_editor, stop_editor
from scripted_model import Call, ChatRequest, Keyed, Script, Text, ToolCalls, Usage

NESTED_RULE = "Nested rule N-4242: pkg keeps its public API in __all__."


def conversation(req: ChatRequest) -> list[dict]:
    return [m for m in req.messages if m.get("role") != "system"]


async def request(editor, method: str, params: dict) -> dict:
    return dict(await editor.client.protocol.send_request_async(method, params))


async def test_a_session_from_an_earlier_server_resumes_as_if_never_closed(model_server, tmp_path):
    (tmp_path / "AGENTS.md").write_text("Root rule R-7731.\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "AGENTS.md").write_text(NESTED_RULE + "\n")
    (tmp_path / "pkg" / "mod.py").write_text("__all__ = ['f']\n")
    seen: dict[str, ChatRequest] = {}

    def third(req: ChatRequest):
        seen["third"] = req
        return Text("Third, from a new server.", usage=Usage(prompt_tokens=100, completion_tokens=10))

    usage = Usage(prompt_tokens=100, completion_tokens=10)
    scenario = Keyed(
        {
            "first task": Script(
                [ToolCalls([Call("read_file", {"path": "pkg/mod.py"})], usage=usage), Text("It exports f.", usage=usage)]
            ),
            "second task": Text("Second answer.", usage=usage),
            "third task": third,
        }
    )
    server = model_server(scenario)
    env = cli_env(server.base_url)

    editor = await start_editor(tmp_path, env)
    try:
        a = await editor.chat("first task: what does pkg export?")
        assert (await editor.turn_end(a["turnId"]))["status"] == "done"
        sid = a["sessionId"]
        b = await editor.chat("second task", session_id=sid)
        assert (await editor.turn_end(b["turnId"]))["status"] == "done"
        before = (await request(editor, "codeloop/session/transcript", {"sessionId": sid}))["messages"]
    finally:
        await stop_editor(editor)
    assert [m["role"] for m in before] == ["user", "assistant", "tool", "assistant", "user", "assistant"]
    # The nested memory file went with the read that touched pkg/ (the system prompt stays as it was).
    assert any(NESTED_RULE in str(m.get("content")) for m in server.chat_requests[-1].messages if m["role"] == "tool")
    assert NESTED_RULE not in server.chat_requests[-1].messages[0]["content"]

    editor = await start_editor(tmp_path, env)
    try:
        listing = (await request(editor, "codeloop/session/list", {}))["sessions"]
        assert [(s["id"], s["messageCount"], s["running"]) for s in listing] == [(sid, 6, False)]
        assert listing[0]["title"].startswith("first task")
        opened = await request(editor, "codeloop/session/open", {"sessionId": sid})
        assert opened["sessionId"] == sid
        assert opened["messages"] == before
        assert opened["warnings"] == []

        c = await editor.chat("third task: and now?", session_id=sid)
        assert c["sessionId"] == sid
        assert (await editor.turn_end(c["turnId"]))["status"] == "done"
        assert editor.text_of(c["turnId"]) == "Third, from a new server."
        req = seen["third"]
        assert conversation(req) == before + [{"role": "user", "content": "third task: and now?"}]
        # The same system prompt as before the restart, byte for byte (the provider's prompt
        # cache still holds); the memory file is still in the history it came with.
        assert req.messages[0]["content"] == server.chat_requests[-2].messages[0]["content"]
        assert any(NESTED_RULE in str(m.get("content")) for m in req.messages if m["role"] == "tool")

        # Usage carries over: 3 requests before the restart, 1 after.
        d = await editor.chat("/cost", session_id=sid)
        await editor.turn_end(d["turnId"])
        notices = [e["message"] for e in editor.turn_events(d["turnId"]) if e["type"] == "notice"]
        assert any("This session: 4 requests, 400 in, 40 out" in n for n in notices), notices

        after = (await request(editor, "codeloop/session/transcript", {"sessionId": sid}))["messages"]
        assert after == before + [
            {"role": "user", "content": "third task: and now?"},
            {"role": "assistant", "content": "Third, from a new server."},
        ]
        listing = (await request(editor, "codeloop/session/list", {}))["sessions"]
        assert [(s["id"], s["messageCount"]) for s in listing] == [(sid, 8)]
    finally:
        await stop_editor(editor)
    assert not server.failures, server.failures


async def test_clear_keeps_the_model_chosen_in_the_chat(model_server, tmp_path):
    server = model_server(Keyed({"hello": Text("Hi."), "again": Text("Hi again.")}))
    editor = await start_editor(tmp_path, cli_env(server.base_url))
    try:
        a = await editor.chat("hello")
        await editor.turn_end(a["turnId"])
        sid = a["sessionId"]
        assert server.chat_requests[-1].body["model"] == "scripted-model"
        for text in ("/model other-model", "/clear"):
            t = await editor.chat(text, session_id=sid)
            await editor.turn_end(t["turnId"])
        notices = [e["message"] for e in editor.turn_events(t["turnId"]) if e["type"] == "notice"]
        new_sid = next(n.split()[4].rstrip(".") for n in notices if n.startswith("Started a new session"))
        assert new_sid != sid
        b = await editor.chat("again", session_id=new_sid)
        assert (await editor.turn_end(b["turnId"]))["status"] == "done"
        req = server.chat_requests[-1]
        assert req.body["model"] == "other-model"
        assert [m["content"] for m in req.messages if m["role"] == "user"] == ["again"], "a new, empty conversation"
    finally:
        await stop_editor(editor)
    assert not server.failures, server.failures


async def test_each_turn_carries_the_git_status_and_the_system_prompt_stays(model_server, tmp_path):
    subprocess.run(["git", "init", "-q", "-b", "trunk", str(tmp_path)], check=True)
    (tmp_path / "app.py").write_text("x = 1\n")
    server = model_server(Keyed({"one": Text("1"), "two": Text("2")}))
    editor = await start_editor(tmp_path, cli_env(server.base_url))
    try:
        a = await editor.chat("one")
        assert (await editor.turn_end(a["turnId"]))["status"] == "done"
        (tmp_path / "new.py").write_text("y = 2\n")
        b = await editor.chat("two", session_id=a["sessionId"])
        assert (await editor.turn_end(b["turnId"]))["status"] == "done"
    finally:
        await stop_editor(editor)
    first, second = server.chat_requests
    assert first.messages[0] == second.messages[0], "the system prompt is the same, byte for byte"
    assert "# Git status now" in first.last_user_text() and "?? app.py" in first.last_user_text()
    assert "?? new.py" in second.last_user_text(), "the next turn says what changed"
