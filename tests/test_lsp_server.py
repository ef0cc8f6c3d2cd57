"""The language server end to end: the real ``codeloop lsp`` over JSON-RPC (pytest-lsp),
the scripted model over HTTP, real files."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from conftest import cli_env, processes_matching, unique_marker
from lsp_harness import Editor, start_editor, stop_editor
from lsprotocol import types as lsp
from scripted_model import PROVIDERS, Call, Faulty, Script, Text, ToolCalls

from codeloop.edits.textedits import Pos, TextEdit


@pytest.fixture
async def editor_factory(model_server, tmp_path):
    editors: list[Editor] = []

    async def make(scenario, codeloop="vscode", settings=None, provider=None, **caps) -> tuple[Editor, object]:
        server = model_server(scenario, provider=provider)
        kw = {} if codeloop == "vscode" else {"codeloop": None}
        editor = await start_editor(tmp_path, cli_env(server.base_url), settings=settings, **kw, **caps)
        editors.append(editor)
        return editor, server

    yield make
    for e in editors:
        await stop_editor(e)


def code_action_params(uri: str) -> lsp.CodeActionParams:
    return lsp.CodeActionParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri),
        range=lsp.Range(start=lsp.Position(line=0, character=0), end=lsp.Position(line=0, character=3)),
        context=lsp.CodeActionContext(diagnostics=[]),
    )


async def test_turn_streams_while_requests_keep_being_answered(editor_factory, tmp_path):
    (tmp_path / "main.py").write_text("print('hi')\n")
    noisy = f"{sys.executable} -u -c \"import time\nfor i in range(60):\n    print('x' * 3000, i)\n    time.sleep(0.03)\""
    scenario = Script(
        [ToolCalls([Call("run_command", {"command": noisy})]), Text("All done. " * 40, chunk_size=3, delay=0.01)]
    )
    editor, _ = await editor_factory(scenario)
    doc = editor.open("main.py")
    started = await editor.chat("run the noisy thing")
    tid = started["turnId"]
    answered_during = {"output": 0, "text": 0}
    while True:
        events = editor.turn_events(tid)
        if any(e["type"] == "turnEnd" for e in events):
            break
        phase = "text" if any(e["type"] == "textDelta" for e in events) else "output"
        if phase == "output" and not any(k == "output" for k, _ in editor.terminal):
            await asyncio.sleep(0.02)
            continue
        actions = await editor.client.text_document_code_action_async(code_action_params(doc.uri))
        await editor.client.text_document_hover_async(
            lsp.HoverParams(text_document=lsp.TextDocumentIdentifier(uri=doc.uri), position=lsp.Position(line=0, character=1))
        )
        assert any(a.title == "Ask codeloop…" for a in actions)
        if not any(e["type"] == "turnEnd" for e in editor.turn_events(tid)):
            answered_during[phase] += 1
        await asyncio.sleep(0.02)
    assert answered_during["output"] >= 3, answered_during
    assert answered_during["text"] >= 3, answered_during
    events = editor.turn_events(tid)
    kinds = [e["type"] for e in events]
    assert kinds.index("toolCallStarted") < kinds.index("toolCallFinished") < kinds.index("textDelta")
    assert editor.text_of(tid) == "All done. " * 40
    # The command's output was mirrored to the terminal, with its exit code.
    outputs = "".join(p["data"] for k, p in editor.terminal if k == "output")
    assert outputs.count("x" * 3000) == 60
    assert [p["exitCode"] for k, p in editor.terminal if k == "exited"] == [0]


AUTH = "def can_login(user):\n    return user.is_active\n\n\ndef greet(user):\n    return 'hi ' + user.name\n"


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
async def test_accept_applies_versioned_minimal_edits_before_the_next_command(editor_factory, tmp_path, provider):
    """An edit reviewed and applied in the editor, then a command, on the wire of each server."""
    (tmp_path / "auth.py").write_text(AUTH)

    def after_edit(req):
        assert "accepted" in req.last_tool_results()[0]
        return ToolCalls([Call("run_command", {"command": "cat auth.py"})])

    def after_cat(req):
        assert "user.active" in req.last_tool_results()[0], "the file must be on disk before the next command"
        return Text("done")

    scenario = Script(
        [
            ToolCalls([Call("edit_file", {"path": "auth.py", "old_string": "user.is_active", "new_string": "user.active"})]),
            after_edit,
            after_cat,
        ]
    )
    editor, server = await editor_factory(scenario, provider=provider)
    doc = editor.open("auth.py")
    editor.insert_line("auth.py", 0, "")  # a no-op didChange: version 2, text unchanged
    started = await editor.chat("rename")
    end = await editor.turn_end(started["turnId"])
    events = editor.turn_events(started["turnId"])
    assert end["status"] == "done", events
    assert not server.failures, server.failures
    notices = [e["message"] for e in events if e["type"] == "notice"]
    if provider in ("vllm-noparser", "ollama-text"):
        assert len(notices) == 1 and "as text" in notices[0], notices  # the panel shows it
        assert "tool_call" not in editor.text_of(started["turnId"])
    elif provider == "nostream":
        assert len(notices) == 1 and "does not stream" in notices[0], notices
    else:
        assert notices == [], notices
    assert [e["name"] for e in events if e["type"] == "toolCallStarted"] == ["edit_file", "run_command"]
    review = editor.reviews[0]
    assert review["files"][0]["version"] == 2
    assert review["files"][0]["diff"].startswith("--- a/auth.py")
    edit = editor.applied_edits[0]["edit"]["documentChanges"][0]
    assert edit["textDocument"] == {"uri": doc.uri, "version": 2}
    # Minimal: one small edit, not a whole-file replace.
    assert len(edit["edits"]) == 1
    assert edit["edits"][0]["newText"] in ("", "active", "user.active") or len(edit["edits"][0]["newText"]) < 12
    assert (tmp_path / "auth.py").read_text() == AUTH.replace("is_active", "active")
    assert editor.docs[doc.uri].text == AUTH.replace("is_active", "active")


async def test_reject_with_feedback_reaches_the_model(editor_factory, tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")

    def after(req):
        result = req.last_tool_results()[0]
        assert "rejected" in result and "use a constant named LIMIT" in result
        return Text("ok, noted")

    scenario = Script([ToolCalls([Call("write_file", {"path": "a.py", "content": "x = 2\n"})]), after])
    editor, _ = await editor_factory(scenario)
    editor.on_review = lambda p: {"decision": "reject", "feedback": "use a constant named LIMIT"}
    started = await editor.chat("change it")
    assert (await editor.turn_end(started["turnId"]))["status"] == "done"
    assert (tmp_path / "a.py").read_text() == "x = 1\n"
    assert editor.applied_edits == []


TWO_HUNKS_OLD = "".join(f"line {i}\n" for i in range(1, 21))
TWO_HUNKS_NEW = TWO_HUNKS_OLD.replace("line 2\n", "line TWO\n").replace("line 18\n", "line EIGHTEEN\n")


async def test_partial_acceptance_applies_one_hunk_and_tells_the_model(editor_factory, tmp_path):
    (tmp_path / "f.txt").write_text(TWO_HUNKS_OLD)

    def after(req):
        result = req.last_tool_results()[0]
        # Precise: which hunk, where in the file, and the rejected text.
        assert "accepted 1 of 2 hunks" in result
        assert "accepted: hunk 2 of 2, now line 18 of the file" in result
        assert "REJECTED: hunk 1 of 2, line 2 of the file" in result
        assert "-line 2\n" in result and "+line TWO" in result
        assert "+line EIGHTEEN" not in result.split("REJECTED")[1]
        return Text("understood")

    scenario = Script([ToolCalls([Call("write_file", {"path": "f.txt", "content": TWO_HUNKS_NEW})]), after])
    editor, _ = await editor_factory(scenario)

    def review(p):
        f = p["files"][0]
        assert len(f["hunks"]) == 2
        return {"decision": "partial", "hunks": {f["uri"]: [1]}}

    editor.on_review = review
    started = await editor.chat("edit")
    assert (await editor.turn_end(started["turnId"]))["status"] == "done"
    assert (tmp_path / "f.txt").read_text() == TWO_HUNKS_OLD.replace("line 18\n", "line EIGHTEEN\n")


async def test_user_edited_proposal_is_what_lands_and_the_model_sees_the_difference(editor_factory, tmp_path):
    (tmp_path / "g.py").write_text("a = 1\n")

    def after(req):
        result = req.last_tool_results()[0]
        assert "edited your proposal" in result and "+a = 3" in result
        return Text("thanks")

    scenario = Script([ToolCalls([Call("write_file", {"path": "g.py", "content": "a = 2\n"})]), after])
    editor, _ = await editor_factory(scenario)
    editor.on_review = lambda p: {"decision": "edited", "editedText": {p["files"][0]["uri"]: "a = 3\n"}}
    started = await editor.chat("edit")
    assert (await editor.turn_end(started["turnId"]))["status"] == "done"
    assert (tmp_path / "g.py").read_text() == "a = 3\n"


async def test_the_agent_reads_unsaved_text_and_diffs_against_it(editor_factory, tmp_path):
    (tmp_path / "u.py").write_text("def f():\n    return 1\n")

    def after_read(req):
        result = req.last_tool_results()[0]
        assert "UNSAVED_MARKER = True" in result and "unsaved" in result
        return ToolCalls([Call("edit_file", {"path": "u.py", "old_string": "return 1", "new_string": "return 2"})])

    scenario = Script([ToolCalls([Call("read_file", {"path": "u.py"})]), after_read, Text("done")])
    editor, _ = await editor_factory(scenario)
    editor.open("u.py")
    editor.insert_line("u.py", 2, "UNSAVED_MARKER = True\n")
    editor.on_review = lambda p: {"decision": "reject", "feedback": "just looking"}
    started = await editor.chat("look")
    assert (await editor.turn_end(started["turnId"]))["status"] == "done"
    review = editor.reviews[0]["files"][0]
    assert "UNSAVED_MARKER = True" in review["oldText"]
    # The diff is against the buffer: the unsaved line is context, not a change.
    changed = [ln for ln in review["diff"].splitlines() if ln[:1] in "+-" and not ln.startswith(("---", "+++"))]
    assert changed == ["-    return 1", "+    return 2"]
    assert review["version"] == 2


STALE_OLD = "".join(f"row {i}\n" for i in range(1, 31))


async def test_stale_edit_rebased_when_the_user_typed_elsewhere(editor_factory, tmp_path):
    (tmp_path / "s.txt").write_text(STALE_OLD)

    def after(req):
        assert "rebased" in req.last_tool_results()[0]
        return Text("ok")

    scenario = Script(
        [ToolCalls([Call("edit_file", {"path": "s.txt", "old_string": "row 25\n", "new_string": "row TWENTY-FIVE\n"})]), after]
    )
    editor, _ = await editor_factory(scenario)
    editor.open("s.txt")

    async def review(p):
        editor.insert_line("s.txt", 2, "typed by the user\n")  # far from row 25
        await asyncio.sleep(0.2)
        return {"decision": "accept"}

    editor.on_review = review
    started = await editor.chat("edit")
    assert (await editor.turn_end(started["turnId"]))["status"] == "done"
    text = editor.docs[editor.uri("s.txt")].text
    assert "typed by the user\n" in text and "row TWENTY-FIVE\n" in text
    assert (tmp_path / "s.txt").read_text() == STALE_OLD  # the buffer was dirty: never written behind the user's back


async def test_stale_edit_refused_when_it_overlaps_what_the_user_typed(editor_factory, tmp_path):
    (tmp_path / "s.txt").write_text(STALE_OLD)

    def after(req):
        result = req.last_tool_results()[0]
        assert "NOT applied" in result and "the user edited" in result and "row 10 CHANGED BY USER" in result
        return Text("ok")

    scenario = Script(
        [ToolCalls([Call("edit_file", {"path": "s.txt", "old_string": "row 10\n", "new_string": "row TEN\n"})]), after]
    )
    editor, _ = await editor_factory(scenario)
    editor.open("s.txt")

    async def review(p):
        editor.type_text("s.txt", [TextEdit(Pos(9, 0), Pos(9, 6), "row 10 CHANGED BY USER")])
        await asyncio.sleep(0.2)
        return {"decision": "accept"}

    editor.on_review = review
    started = await editor.chat("edit")
    assert (await editor.turn_end(started["turnId"]))["status"] == "done"
    text = editor.docs[editor.uri("s.txt")].text
    assert "row 10 CHANGED BY USER\n" in text and "row TEN" not in text
    assert editor.applied_edits == []


async def test_applied_false_because_the_version_moved_is_rebased(editor_factory, tmp_path):
    (tmp_path / "s.txt").write_text(STALE_OLD)
    scenario = Script(
        [ToolCalls([Call("edit_file", {"path": "s.txt", "old_string": "row 25\n", "new_string": "row 25!\n"})]), Text("ok")]
    )
    editor, _ = await editor_factory(scenario)
    editor.open("s.txt")
    calls = {"n": 0}

    async def before_apply(raw):
        calls["n"] += 1
        if calls["n"] == 1:  # the user types just as the edit arrives
            editor.insert_line("s.txt", 0, "top line\n")
            await asyncio.sleep(0.2)
            return False
        return True

    editor.before_apply = before_apply
    started = await editor.chat("edit")
    assert (await editor.turn_end(started["turnId"]))["status"] == "done"
    text = editor.docs[editor.uri("s.txt")].text
    assert text.startswith("top line\n") and "row 25!\n" in text
    assert calls["n"] == 2


async def test_plain_client_uses_show_message_request_and_progress(editor_factory, tmp_path):
    (tmp_path / "p.py").write_text("x = 1\n")

    def after_edit(req):
        assert "accepted" in req.last_tool_results()[0]
        return ToolCalls([Call("run_command", {"command": "echo plain-client-ok"})])

    def after_cmd(req):
        assert "plain-client-ok" in req.last_tool_results()[0]
        return Text("finished")

    scenario = Script([ToolCalls([Call("write_file", {"path": "p.py", "content": "x = 2\n"})]), after_edit, after_cmd])
    # autoAllow off: the command's approval is what this test shows (a sandboxed unknown command is not asked)
    editor, _ = await editor_factory(scenario, codeloop=None, settings={"sandbox": {"autoAllow": False}})

    def answer(params: lsp.ShowMessageRequestParams):
        titles = [a.title for a in params.actions or []]
        return "Accept" if "Accept" in titles else "Allow once"

    editor.on_message_request = answer
    result = await editor.client.workspace_execute_command_async(
        lsp.ExecuteCommandParams(command="codeloop.chat", arguments=["change x"])
    )
    assert result["turnId"]
    await editor.wait_for(lambda: any(p for p in editor.client.progress_reports.values() if p and p[-1].kind == "end"), 30, "progress end")
    assert (tmp_path / "p.py").read_text() == "x = 2\n"
    titles = [[a.title for a in m.actions or []] for m in editor.message_requests]
    assert ["Accept", "Reject"] in titles and ["Allow once", "Always allow", "Deny"] in titles
    assert any("finished" in m.message for m in editor.client.log_messages)
    assert editor.events == []  # no custom notifications to a plain client


async def test_plain_client_cancels_through_progress(editor_factory, tmp_path):
    marker = unique_marker("23.1406926")
    scenario = Script([ToolCalls([Call("run_command", {"command": f"sleep {marker}"})]), Text("after")])
    editor, _ = await editor_factory(scenario, codeloop=None, settings={"mode": "bypass"})
    await editor.client.workspace_execute_command_async(lsp.ExecuteCommandParams(command="codeloop.chat", arguments=["sleep"]))
    await editor.wait_for(lambda: processes_matching(marker), 20, "the command to start")
    token = next(iter(editor.client.progress_reports))
    editor.client.window_work_done_progress_cancel(lsp.WorkDoneProgressCancelParams(token=token))
    await editor.wait_for(lambda: not processes_matching(marker), 20, "the process group to die")
    await editor.wait_for(lambda: editor.client.progress_reports[token][-1].kind == "end", 20, "progress end")
    assert editor.client.progress_reports[token][-1].message == "cancelled"


async def test_client_without_apply_edit_gets_a_clear_error(editor_factory, tmp_path):
    def after(req):
        assert "cannot apply edits" in req.last_tool_results()[0]
        return Text("ok")

    scenario = Script([ToolCalls([Call("write_file", {"path": "n.py", "content": "1\n"})]), after])
    editor, _ = await editor_factory(scenario, codeloop=None, apply_edit=False, settings={"mode": "acceptEdits"})
    await editor.client.workspace_execute_command_async(lsp.ExecuteCommandParams(command="codeloop.chat", arguments=["go"]))
    await editor.wait_for(lambda: any(p and p[-1].kind == "end" for p in editor.client.progress_reports.values()), 30, "end")
    assert not (tmp_path / "n.py").exists()


async def test_cancel_mid_command_then_follow_up(editor_factory, tmp_path):
    marker = unique_marker("19.7392088")

    def follow(req):
        return Text("still here")

    scenario = Script([ToolCalls([Call("run_command", {"command": f"sleep {marker} & sleep {marker}"})]), follow])
    editor, _ = await editor_factory(scenario)
    started = await editor.chat("sleep")
    await editor.wait_for(lambda: processes_matching(marker), 20, "the command to start")
    editor.client.protocol.notify("codeloop/chat/cancel", {"sessionId": started["sessionId"], "turnId": started["turnId"]})
    end = await editor.turn_end(started["turnId"])
    assert end["status"] == "cancelled"
    await editor.wait_for(lambda: not processes_matching(marker), 10, "the group to die")
    again = await editor.chat("and now?", session_id=started["sessionId"])
    assert (await editor.turn_end(again["turnId"]))["status"] == "done"
    assert editor.text_of(again["turnId"]) == "still here"


async def test_sessions_list_and_transcript(editor_factory, tmp_path):
    editor, _ = await editor_factory(Script([Text("first answer"), Text("second answer")]))
    a = await editor.chat("hello there")
    await editor.turn_end(a["turnId"])
    b = await editor.chat("again", session_id=a["sessionId"])
    await editor.turn_end(b["turnId"])
    listing = await editor.client.protocol.send_request_async("codeloop/session/list", {})
    assert [s["id"] for s in listing["sessions"]] == [a["sessionId"]]
    assert listing["sessions"][0]["title"].startswith("hello there")
    transcript = await editor.client.protocol.send_request_async("codeloop/session/transcript", {"sessionId": a["sessionId"]})
    assert [m["content"] for m in transcript["messages"]] == ["hello there", "first answer", "again", "second answer"]


async def test_bad_requests_get_errors_and_the_server_keeps_serving(editor_factory, tmp_path):
    from pygls.exceptions import JsonRpcException

    editor, _ = await editor_factory(Script([Text("fine")]))
    with pytest.raises(JsonRpcException, match="text"):
        await editor.client.protocol.send_request_async("codeloop/chat/start", {"nope": 1})
    with pytest.raises(JsonRpcException, match="sessionId"):
        await editor.client.protocol.send_request_async("codeloop/session/open", {})
    with pytest.raises(JsonRpcException):
        await editor.client.protocol.send_request_async("codeloop/no/such/method", {})
    with pytest.raises(JsonRpcException, match="no session"):
        await editor.client.protocol.send_request_async("codeloop/session/transcript", {"sessionId": "does-not-exist"})
    started = await editor.chat("still alive?")
    assert (await editor.turn_end(started["turnId"]))["status"] == "done"


async def test_bad_settings_are_reported_and_defaults_used(editor_factory, tmp_path):
    editor, _ = await editor_factory(Script([Text("ok")]), settings={"maxTurns": -5, "mode": "yolo", "apiKey": "sk-secret-123"})
    await editor.wait_for(lambda: len(editor.client.messages) >= 2, 10, "setting problems")
    text = " ".join(m.message for m in editor.client.messages)
    assert "maxTurns" in text and "mode" in text
    assert "sk-secret-123" not in text
    started = await editor.chat("hi")
    assert (await editor.turn_end(started["turnId"]))["status"] == "done"


def _frame(payload: dict) -> bytes:
    import json

    body = json.dumps(payload).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def _read_message(stream) -> dict:
    import json

    length = 0
    while True:
        line = stream.readline()
        assert line, "the server closed stdout"
        if line.startswith(b"Content-Length:"):
            length = int(line.split(b":")[1])
        elif line == b"\r\n":
            return json.loads(stream.read(length))


def test_pipes_transport_answers_in_order_and_exits_on_eof(tmp_path: Path) -> None:
    """The stdio transport (asyncio pipes): a burst of requests written at once, split
    across reads anywhere, is answered in full; closing stdin ends the server."""
    import subprocess

    from conftest import CODELOOP

    proc = subprocess.Popen(CODELOOP + ["lsp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=cli_env("http://127.0.0.1:9/v1"))
    try:
        assert proc.stdin is not None and proc.stdout is not None
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"processId": None, "rootUri": tmp_path.as_uri(), "capabilities": {}}}
        proc.stdin.write(_frame(init))
        proc.stdin.flush()
        assert _read_message(proc.stdout)["result"]["serverInfo"]["name"] == "codeloop"
        burst = _frame({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        for i in range(2, 202):
            burst += _frame({"jsonrpc": "2.0", "id": i, "method": "codeloop/session/list", "params": {}})
        # Dribble it in odd-sized pieces: frames split mid-header and mid-body.
        for k in range(0, len(burst), 997):
            proc.stdin.write(burst[k : k + 997])
            proc.stdin.flush()
        ids = []
        while len(ids) < 200:
            msg = _read_message(proc.stdout)
            if "id" in msg and "result" in msg:
                assert msg["result"] == {"sessions": []}
                ids.append(msg["id"])
        assert sorted(ids) == list(range(2, 202))
        proc.stdin.close()  # the editor went away without shutdown/exit
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- what the model is told, and edits the client says it applied --------------------------------


async def test_rebased_change_counts_only_the_agents_lines_and_says_so(editor_factory, tmp_path):
    (tmp_path / "s.txt").write_text(STALE_OLD)
    seen = {}

    def after(req):
        seen["result"] = req.last_tool_results()[0]
        return Text("ok")

    scenario = Script(
        [ToolCalls([Call("edit_file", {"path": "s.txt", "old_string": "row 25\n", "new_string": "row TWENTY-FIVE\n"})]), after]
    )
    editor, _ = await editor_factory(scenario)
    editor.open("s.txt")

    async def review(p):
        editor.insert_line("s.txt", 2, "typed by the user\n")
        editor.insert_line("s.txt", 3, "and another line\n")
        await asyncio.sleep(0.2)
        return {"decision": "accept"}

    editor.on_review = review
    started = await editor.chat("edit")
    assert (await editor.turn_end(started["turnId"]))["status"] == "done"
    result = seen["result"]
    assert "the user accepted your change; changed (+1 -1)" in result  # not +3 -1: the user's lines are theirs
    assert "rebased onto their text" in result


async def test_a_conflict_found_at_apply_time_tells_the_model_the_current_text(editor_factory, tmp_path):
    (tmp_path / "s.txt").write_text(STALE_OLD)
    seen = {}

    def after(req):
        seen["result"] = req.last_tool_results()[0]
        return Text("ok")

    scenario = Script(
        [ToolCalls([Call("edit_file", {"path": "s.txt", "old_string": "row 10\n", "new_string": "row TEN\n"})]), after]
    )
    editor, _ = await editor_factory(scenario)
    editor.open("s.txt")

    async def before_apply(raw):
        if len(editor.applied_edits) == 1:  # the user types over the hunk just as the edit arrives
            editor.type_text("s.txt", [TextEdit(Pos(9, 0), Pos(9, 6), "row 10 TYPED AT APPLY TIME")])
            await asyncio.sleep(0.1)
            return False
        return True

    editor.before_apply = before_apply
    started = await editor.chat("edit")
    assert (await editor.turn_end(started["turnId"]))["status"] == "done"
    result = seen["result"]
    assert "NOT applied" in result and "the user edited the document meanwhile" in result
    assert "row 10 TYPED AT APPLY TIME" in result  # the current excerpt
    assert "unchanged" not in result  # it is not: the user changed it
    text = editor.docs[editor.uri("s.txt")].text
    assert "row 10 TYPED AT APPLY TIME\n" in text and "row TEN" not in text


async def _dropping_client(editor_factory, tmp_path):
    """A plain client that drops stale edits while answering applied (as Neovim does) and
    accepts every review; the model edits s.txt once. Returns (editor, seen): seen["result"]
    is what the model was told."""
    (tmp_path / "s.txt").write_text(STALE_OLD)
    seen: dict[str, str] = {}

    def after(req):
        seen["result"] = req.last_tool_results()[0]
        return Text("ok")

    scenario = Script(
        [ToolCalls([Call("edit_file", {"path": "s.txt", "old_string": "row 25\n", "new_string": "row 25!\n"})]), after]
    )
    editor, _ = await editor_factory(scenario, codeloop=None)
    editor.stale_edits = "drop"
    editor.on_message_request = lambda p: "Accept"
    return editor, seen


async def test_an_edit_the_client_drops_while_saying_applied_is_detected_and_resent(editor_factory, tmp_path):
    """Neovim answers a stale edit with applied: true and applies nothing."""
    editor, seen = await _dropping_client(editor_factory, tmp_path)
    editor.open("s.txt")

    def before_apply(raw):
        if len(editor.applied_edits) == 1:
            editor.insert_line("s.txt", 0, "typed as the edit arrived\n")
        return True

    editor.before_apply = before_apply
    await editor.client.workspace_execute_command_async(lsp.ExecuteCommandParams(command="codeloop.chat", arguments=["edit"]))
    await editor.wait_for(lambda: "result" in seen, 60, "the tool result")
    text = editor.docs[editor.uri("s.txt")].text
    assert text.startswith("typed as the edit arrived\n") and "row 25!\n" in text
    assert len(editor.applied_edits) == 2
    assert "the user accepted your change" in seen["result"] and "rebased" in seen["result"]


async def test_a_client_that_says_applied_but_never_changes_the_document(editor_factory, tmp_path):
    editor, seen = await _dropping_client(editor_factory, tmp_path)
    doc = editor.open("s.txt")
    editor.insert_line("s.txt", 0, "")  # a no-op change: the client's version is 2 from now on
    doc.version = 7  # ...but the client believes it is at 7: every versioned edit is "stale"
    await editor.client.workspace_execute_command_async(lsp.ExecuteCommandParams(command="codeloop.chat", arguments=["edit"]))
    await editor.wait_for(lambda: "result" in seen, 90, "the tool result")
    result = seen["result"]
    assert "NOT applied" in result and "did not change" in result
    assert "row 25" in result  # the current text around the change
    assert "row 25!" not in editor.docs[doc.uri].text
    assert (tmp_path / "s.txt").read_text() == STALE_OLD


async def test_ticks_win_over_edits_inside_unticked_hunks(editor_factory, tmp_path):
    """The client sends both: hunk ticks and the user's edited proposed side. Unticked hunks
    are not applied, even where the user edited them; the user's other edits are kept."""
    (tmp_path / "f.txt").write_text(TWO_HUNKS_OLD)
    seen = {}

    def after(req):
        seen["result"] = req.last_tool_results()[0]
        return Text("understood")

    scenario = Script([ToolCalls([Call("write_file", {"path": "f.txt", "content": TWO_HUNKS_NEW})]), after])
    editor, _ = await editor_factory(scenario)

    def review(p):
        f = p["files"][0]
        edited = f["newText"].replace("line 10\n", "line ten (the user's)\n").replace("line TWO\n", "line TWO edited\n")
        return {"decision": "partial", "hunks": {f["uri"]: [1]}, "editedText": {f["uri"]: edited}}

    editor.on_review = review
    started = await editor.chat("edit")
    assert (await editor.turn_end(started["turnId"]))["status"] == "done"
    landed = (tmp_path / "f.txt").read_text()
    assert landed == TWO_HUNKS_OLD.replace("line 18\n", "line EIGHTEEN\n").replace("line 10\n", "line ten (the user's)\n")
    result = seen["result"]
    assert "REJECTED: hunk 1 of 2, line 2 of the file" in result
    assert "accepted: hunk 2 of 2, now line 18 of the file" in result
    assert "+line ten (the user's)" in result  # the user's own edits, as a diff
    assert "edited inside rejected hunk(s) 1" in result


@pytest.mark.parametrize("fault", ["eof", "cut"])
async def test_a_stream_cut_every_time_ends_the_turn_clearly_and_applies_nothing(editor_factory, tmp_path, fault):
    """Over the language server as in the CLI: a response that never finishes (the body ends
    cleanly mid-arguments, or the chunked body is cut) is retried, and when the retries run
    out the turn ends with an error that says so; no edit is proposed or applied and no
    command runs, although the cut response held complete-looking calls."""
    (tmp_path / "notes.md").write_text("old\n")
    scenario = Faulty(Script([
        ToolCalls([Call("edit_file", {"path": "notes.md", "old_string": "old", "new_string": "new"}),
                   Call("run_command", {"command": "touch ran.txt"})], chunk_size=4),
        Text("done"),
    ]), fault, times=None)
    editor, server = await editor_factory(scenario, settings={"maxRetries": 2, "retryBaseDelay": 0.05})
    editor.open("notes.md")
    started = await editor.chat("edit and run")
    end = await editor.turn_end(started["turnId"])
    events = editor.turn_events(started["turnId"])
    assert end["status"] == "error", events
    assert "failed after 3 attempts" in end["message"], end
    assert ("ended before the answer was complete" if fault == "eof" else "was cut") in end["message"], end
    assert [e for e in events if e["type"] == "retry"] and not [e for e in events if e["type"] == "toolCallStarted"]
    assert editor.reviews == [] and editor.applied_edits == [] and editor.terminal == []
    assert (tmp_path / "notes.md").read_text() == "old\n" and not (tmp_path / "ran.txt").exists()
    assert len(server.chat_requests) == 3
