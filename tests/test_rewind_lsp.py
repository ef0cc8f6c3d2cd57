"""Rewind in the editor, end to end: the real ``codeloop lsp`` over JSON-RPC (pytest-lsp)
with the scripted editor of ``lsp_harness`` (buffers, versions, ``workspace/applyEdit``),
the scripted model, real files and real commands.

The issue's turn: the agent edits two files (one holds the user's unsaved edits), a command
deletes a third, a command rewrites a fourth (a large binary) and creates a fifth. The
panel's methods (``codeloop/rewind/list``, ``/preview``, ``/apply``) put everything back:
open buffers through ``workspace/applyEdit`` (unsaved text included), the rest on disk,
byte for byte; a file the user changed afterwards is kept unless chosen otherwise. A plain
client does the same through ``codeloop.rewind`` and ``window/showMessageRequest``.
"""

from __future__ import annotations

import asyncio
import random
import sys
from pathlib import Path

import pytest
from conftest import cli_env
from lsp_harness import Editor, start_editor, stop_editor
from lsprotocol import types as lsp
from scripted_model import Call, ChatRequest, Keyed, Script, Text, ToolCalls

from codeloop.edits.textedits import Pos, TextEdit

NOTES = "first line\nsecond line\n"
APP = "def main():\n    return 1\n"
GEN = (
    "import os\n"
    "with open('d.bin', 'r+b') as f:\n"
    "    f.seek(1000); f.write(os.urandom(4096))\n"
    "open('e.txt', 'w').write('generated\\n')\n"
)


def workspace(root: Path) -> dict[str, bytes]:
    rng = random.Random(7)
    (root / "notes.txt").write_text(NOTES)
    (root / "app.py").write_text(APP)
    (root / "c.bin").write_bytes(bytes(rng.randrange(256) for _ in range(10_000)))
    (root / "d.bin").write_bytes(rng.randbytes(2 * 1024 * 1024))
    (root / "gen.py").write_text(GEN)
    (root / "later.py").write_text("x = 1\n")
    return disk(root)


def disk(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.relative_to(root).as_posix().startswith(".codeloop/")}


def the_turn() -> Script:
    return Script([
        ToolCalls([Call("edit_file", {"path": "notes.txt", "old_string": "second line", "new_string": "second line, by the agent"})]),
        ToolCalls([Call("edit_file", {"path": "app.py", "old_string": "return 1", "new_string": "return 42"})]),
        ToolCalls([Call("write_file", {"path": "later.py", "content": "x = 2\n"})]),
        ToolCalls([Call("run_command", {"command": "rm c.bin"})]),
        ToolCalls([Call("run_command", {"command": f"{sys.executable} gen.py"})]),
        Text("Done."),
    ])


@pytest.fixture
async def editors(model_server, tmp_path):
    made: list[Editor] = []

    async def make(scenario, **kw) -> tuple[Editor, object]:
        server = model_server(scenario)
        editor = await start_editor(tmp_path, cli_env(server.base_url), **kw)
        made.append(editor)
        return editor, server

    yield make
    for e in made:
        await stop_editor(e)


async def request(editor: Editor, method: str, params: dict) -> dict:
    return dict(await editor.client.protocol.send_request_async(method, params))


async def test_panel_methods_rewind_buffers_and_files(editors, tmp_path):
    before = workspace(tmp_path)
    seen: dict[str, ChatRequest] = {}

    def after(req: ChatRequest):
        seen["after"] = req
        return Text("Noted.")

    editor, _ = await editors(Keyed({"refactor": the_turn(), "what now": Script([after])}))
    # notes.txt is open with unsaved edits of the user's: the agent's edit goes on top of them
    editor.open("notes.txt")
    editor.insert_line("notes.txt", 2, "the user's unsaved line\n")
    unsaved = editor.docs[editor.uri("notes.txt")].text
    started = await editor.chat("refactor the notes")
    sid = started["sessionId"]
    assert (await editor.turn_end(started["turnId"]))["status"] == "done"
    assert "by the agent" in editor.docs[editor.uri("notes.txt")].text
    assert (tmp_path / "app.py").read_text() == "def main():\n    return 42\n"
    assert not (tmp_path / "c.bin").exists() and (tmp_path / "e.txt").exists()
    # Afterwards the user types in later.py (open in the editor since the agent's edit).
    editor.type_text("later.py", [TextEdit(Pos(1, 0), Pos(1, 0), "# the user's line\n")])
    user_later = editor.docs[editor.uri("later.py")].text

    listed = await request(editor, "codeloop/rewind/list", {"sessionId": sid})
    [target] = [t for t in listed["targets"] if t["kind"] == "message"]
    assert target["number"] == 1 and target["words"] == "refactor the notes" and target["files"] == 6
    preview = await request(editor, "codeloop/rewind/preview", {"sessionId": sid, "checkpointId": target["checkpointId"]})
    files = {f["path"]: f for f in preview["files"]}
    assert set(files) == {"notes.txt", "app.py", "later.py", "c.bin", "d.bin", "e.txt"}
    assert files["later.py"]["userChanged"] and files["later.py"]["default"] == "keep"
    assert "+# the user's line" in files["later.py"]["userDiff"]
    assert files["notes.txt"]["action"] == "restore" and not files["notes.txt"]["userChanged"]
    diff = files["notes.txt"]["diff"]  # against the buffer: the unsaved line is context
    assert "-second line, by the agent\n+second line\n the user's unsaved line\n" in diff
    assert files["e.txt"]["action"] == "delete" and files["c.bin"]["action"] == "recreate" and files["d.bin"]["binary"]
    assert preview["conversation"]["removes"] == 12

    edits_before = len(editor.applied_edits)
    result = await request(editor, "codeloop/rewind/apply", {"sessionId": sid, "previewId": preview["previewId"]})
    statuses = {f["path"]: f["status"] for f in result["files"]}
    assert statuses == {"notes.txt": "restored", "app.py": "restored", "later.py": "kept", "c.bin": "recreated",
                        "d.bin": "restored", "e.txt": "deleted"}
    # The open buffers went back through workspace/applyEdit: the unsaved text is there again.
    labels = [e.get("label") for e in editor.applied_edits[edits_before:]]
    assert labels.count("codeloop: rewind") == 2
    assert editor.docs[editor.uri("notes.txt")].text == unsaved
    assert editor.docs[editor.uri("app.py")].text == APP
    assert editor.docs[editor.uri("later.py")].text == user_later  # changed since: kept
    now = disk(tmp_path)
    for name in ("app.py", "c.bin", "d.bin", "gen.py", "notes.txt"):
        assert now[name] == before[name], name  # notes.txt: the disk never had the unsaved text
    assert "e.txt" not in now
    assert result["removed"] == 12 and result["message"] == "refactor the notes" and result["messages"] == []
    assert result["undoCheckpoint"]

    # The model hears of it with the next message.
    started = await editor.chat("what now?", sid)
    await editor.turn_end(started["turnId"])
    first = next(m for m in seen["after"].messages if m["role"] == "user")["content"]
    assert "Rewind: The user rewound this conversation" in first and "later.py" in first

    # Undo the rewind, code only... then rewind again choosing "restore" for later.py.
    listed = await request(editor, "codeloop/rewind/list", {"sessionId": sid})
    undo = next(t for t in listed["targets"] if t["kind"] == "undo")
    p2 = await request(editor, "codeloop/rewind/preview", {"sessionId": sid, "checkpointId": undo["checkpointId"]})
    r2 = await request(editor, "codeloop/rewind/apply", {"sessionId": sid, "previewId": p2["previewId"], "conversation": False})
    assert {f["path"]: f["status"] for f in r2["files"]}["e.txt"] == "recreated"
    assert "by the agent" in editor.docs[editor.uri("notes.txt")].text
    p3 = await request(editor, "codeloop/rewind/preview", {"sessionId": sid, "checkpointId": target["checkpointId"]})
    r3 = await request(editor, "codeloop/rewind/apply", {"sessionId": sid, "previewId": p3["previewId"], "conversation": False,
                                                         "choices": {"later.py": "restore"}})
    assert {f["path"]: f["status"] for f in r3["files"]}["later.py"] == "restored"
    assert editor.docs[editor.uri("later.py")].text == "x = 1\n"
    assert disk(tmp_path)["d.bin"] == before["d.bin"]


async def test_bad_rewind_requests_get_errors(editors, tmp_path):
    workspace(tmp_path)
    editor, _ = await editors(Keyed({"hello": Text("hi")}))
    started = await editor.chat("hello")
    await editor.turn_end(started["turnId"])
    sid = started["sessionId"]
    for params, needle in [
        ({}, "sessionId"),
        ({"sessionId": sid}, "checkpointId"),
        ({"sessionId": sid, "checkpointId": "c999"}, "c999"),
    ]:
        with pytest.raises(Exception, match=needle):
            await request(editor, "codeloop/rewind/preview", params)
    with pytest.raises(Exception, match="previewId"):
        await request(editor, "codeloop/rewind/apply", {"sessionId": sid, "previewId": "nope"})
    listed = await request(editor, "codeloop/rewind/list", {"sessionId": sid})
    assert [t["words"] for t in listed["targets"]] == ["hello"]


async def test_plain_client_rewinds_with_execute_command(editors, tmp_path):
    before = workspace(tmp_path)
    editor, _ = await editors(Keyed({"refactor": the_turn()}), codeloop=None, settings={"mode": "bypass"}, show_document=True)
    asked: list[str] = []

    def answer(params):
        asked.append(params.message)
        titles = [a.title for a in params.actions or []]
        if "Rewind to before which message?" in params.message:
            return titles[0]
        if "Rewind what?" in params.message:
            return "Code only"
        if "later.py" in params.message:
            return next(t for t in titles if t.startswith("Restore"))
        return None

    editor.on_message_request = answer
    result = await editor.client.workspace_execute_command_async(
        lsp.ExecuteCommandParams(command="codeloop.chat", arguments=["refactor the notes"]))
    sid = result["sessionId"]

    async def idle() -> bool:
        sessions = (await request(editor, "codeloop/session/list", {}))["sessions"]
        return any(x["id"] == sid and not x["running"] for x in sessions)

    for _ in range(600):
        if await idle():
            break
        await asyncio.sleep(0.1)
    assert (tmp_path / "e.txt").exists() and not (tmp_path / "c.bin").exists()
    # The user edits later.py on disk afterwards (nothing is open in this client).
    (tmp_path / "later.py").write_text("x = 2\n# the user's line\n")
    out = await editor.client.workspace_execute_command_async(
        lsp.ExecuteCommandParams(command="codeloop.rewind", arguments=[sid]))
    summary = out["summary"]
    assert any("Rewind to before which message?" in a for a in asked)
    assert any("Rewind what?" in a and "Rewind to before message 1" in a for a in asked)
    assert any("later.py was changed after the session's change" in a for a in asked)
    assert "undone" in summary and "later.py" in summary
    assert any("undone" in m.message for m in editor.client.messages)  # and shown (window/showMessage)
    assert disk(tmp_path) == before
    # the preview was opened in the editor (window/showDocument): the diffs, per file
    # (pytest-lsp's client answers window/showDocument and keeps what it was asked to show)
    [shown] = [d.uri for d in editor.client.shown_documents]
    preview = Path(shown.removeprefix("file://")).read_text()
    assert shown.endswith("/.codeloop/checkpoints/previews/rewind.diff")
    assert "later.py: changed since the session's last change" in preview and "+# the user's line" in preview


async def test_slash_rewind_in_an_editor_chat(editors, tmp_path):
    before = workspace(tmp_path)
    editor, _ = await editors(Keyed({"refactor": the_turn()}), settings={"mode": "bypass"})
    started = await editor.chat("refactor the notes")
    sid = started["sessionId"]
    await editor.turn_end(started["turnId"])
    assert not (tmp_path / "c.bin").exists()
    # /rewind lists; /rewind 1 --yes --code-only rewinds without asking (the command layer, in the editor host)
    listed = await editor.chat("/rewind", sid)
    await editor.turn_end(listed["turnId"])
    notices = [e["message"] for e in editor.turn_events(listed["turnId"]) if e["type"] == "notice"]
    assert any("1  refactor the notes" in n for n in notices), notices
    done = await editor.chat("/rewind 1 --yes --code-only", sid)
    await editor.turn_end(done["turnId"])
    notices = [e["message"] for e in editor.turn_events(done["turnId"]) if e["type"] == "notice"]
    assert any("Rewound the code to before user message 1" in n for n in notices), notices
    assert disk(tmp_path) == before
    transcript = await request(editor, "codeloop/session/transcript", {"sessionId": sid})
    assert transcript["messages"][0]["content"].startswith("refactor the notes")  # the conversation stays
