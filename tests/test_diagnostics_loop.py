"""The diagnostics loop end to end: an edit that introduces an error gets the error
reported to the (scripted) model in the tool result, and the model fixes it.

With a VS Code-like client the diagnostics come from the editor
(``codeloop/diagnostics/get``, answered here by running pyflakes on the buffer, as
another language server would); with a plain client from the check-command fallback
(pyflakes by default, or the ``checkCommand`` setting)."""

from __future__ import annotations

import shlex
import sys
from typing import Any

import pytest
from conftest import cli_env
from lsp_harness import Editor, start_editor, stop_editor
from lsprotocol import types as lsp
from pyflakes import api as pyflakes_api
from scripted_model import Call, Script, Text, ToolCalls

CALC = "def add(a, b):\n    return a + b\n\n\ndef twice(x):\n    return add(x, x)\n"


class _Collect:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def flake(self, message: Any) -> None:
        text = message.message % message.message_args
        col = getattr(message, "col", 0) or 0
        self.items.append(_diag(message.lineno - 1, col, text, 1 if "undefined name" in text else 2))

    def syntaxError(self, filename, msg, lineno, offset, text) -> None:  # noqa: N802 (pyflakes' API)
        self.items.append(_diag((lineno or 1) - 1, max((offset or 1) - 1, 0), msg, 1))

    def unexpectedError(self, filename, msg) -> None:  # noqa: N802
        pass


def _diag(line: int, col: int, message: str, severity: int) -> dict[str, Any]:
    return {
        "range": {"start": {"line": line, "character": col}, "end": {"line": line, "character": col + 1}},
        "message": message,
        "severity": severity,
        "source": "fake-pyright",
    }


def language_server(text: str) -> list[dict[str, Any]]:
    """What another language server would publish for this buffer."""
    out = _Collect()
    pyflakes_api.check(text, "buffer.py", out)
    return out.items


@pytest.fixture
async def editor_factory(model_server, tmp_path):
    editors: list[Editor] = []

    async def make(scenario, client: str, settings: dict[str, Any] | None = None) -> Editor:
        server = model_server(scenario)
        kw = {} if client == "vscode" else {"codeloop": None}
        editor = await start_editor(tmp_path, cli_env(server.base_url), settings=settings, **kw)
        editors.append(editor)
        return editor

    yield make
    for e in editors:
        await stop_editor(e)


def break_then_fix_scenario(seen: list[str]) -> Script:
    def after_break(req):
        seen.append(req.last_tool_results()[0])
        return ToolCalls([Call("edit_file", {"path": "calc.py", "old_string": "a + c", "new_string": "a + b"})])

    def after_fix(req):
        seen.append(req.last_tool_results()[0])
        return ToolCalls([Call("get_diagnostics", {"paths": ["calc.py"]})])

    def after_check(req):
        seen.append(req.last_tool_results()[0])
        return Text("Done; no errors left.")

    return Script(
        [ToolCalls([Call("edit_file", {"path": "calc.py", "old_string": "a + b", "new_string": "a + c"})]), after_break, after_fix, after_check]
    )


@pytest.mark.parametrize("client", ["vscode", "plain"])
async def test_an_edit_that_breaks_the_code_is_reported_and_fixed(editor_factory, tmp_path, client):
    (tmp_path / "calc.py").write_text(CALC)
    seen: list[str] = []
    editor = await editor_factory(break_then_fix_scenario(seen), client, settings={"mode": "acceptEdits", "autoAccept": True})
    asked: list[list[dict[str, Any]]] = []
    if client == "vscode":

        def diagnostics_for(uri: str) -> list[dict[str, Any]]:
            items = language_server(editor.docs[uri].text) if uri in editor.docs else []
            asked.append(items)
            return items

        editor.diagnostics_for = diagnostics_for
    doc = editor.open("calc.py")
    if client == "plain":
        await editor.client.workspace_execute_command_async(lsp.ExecuteCommandParams(command="codeloop.chat", arguments=["refactor add"]))
        await editor.wait_for(lambda: any(p and p[-1].kind == "end" for p in editor.client.progress_reports.values()), 60, "the turn")
    else:
        started = await editor.chat("refactor add")
        end = await editor.turn_end(started["turnId"])
        assert end["status"] == "done", editor.turn_events(started["turnId"])

    assert len(seen) == 3, seen
    broke, fixed, checked = seen
    source = "fake-pyright" if client == "vscode" else ""
    expected = "calc.py:2:16: error: undefined name 'c'" + (f" [{source}]" if source else "")
    assert "NEW ERRORS" in broke and expected in broke and "in the lines you changed" in broke
    assert "no new errors" in fixed and "NEW ERRORS" not in fixed
    assert checked.startswith("calc.py: no problems"), checked
    assert editor.docs[doc.uri].text == CALC and (tmp_path / "calc.py").read_text() == CALC
    if client == "vscode":
        assert asked, "the editor was asked for diagnostics"
        assert any(any("undefined name 'c'" in d["message"] for d in items) for items in asked)


async def test_breaking_callers_elsewhere_is_reported_with_a_configured_check_command(editor_factory, tmp_path):
    """A plain client with ``checkCommand``: renaming a function reports its now-broken caller."""
    (tmp_path / "calc.py").write_text(CALC)
    command = f"{shlex.quote(sys.executable)} -m pyflakes {{file}}"
    seen: list[str] = []

    def after_rename(req):
        seen.append(req.last_tool_results()[0])
        return Text("Renamed.")

    script = Script([ToolCalls([Call("edit_file", {"path": "calc.py", "old_string": "def add(", "new_string": "def plus("})]), after_rename])
    editor = await editor_factory(script, "plain", settings={"mode": "acceptEdits", "autoAccept": True, "checkCommand": command})
    await editor.client.workspace_execute_command_async(lsp.ExecuteCommandParams(command="codeloop.chat", arguments=["rename add"]))
    await editor.wait_for(lambda: seen, 60, "the rename's result")
    result = seen[0]
    assert "1 new error(s) elsewhere in the file" in result
    assert "calc.py:6:12: error: undefined name 'add'" in result


async def test_no_report_when_nothing_can_check_the_file(editor_factory, tmp_path):
    (tmp_path / "notes.txt").write_text("hello\n")
    seen: list[str] = []

    def after(req):
        seen.append(req.last_tool_results()[0])
        return Text("ok")

    script = Script([ToolCalls([Call("edit_file", {"path": "notes.txt", "old_string": "hello", "new_string": "bye"})]), after])
    editor = await editor_factory(script, "plain", settings={"mode": "acceptEdits", "autoAccept": True})
    await editor.client.workspace_execute_command_async(lsp.ExecuteCommandParams(command="codeloop.chat", arguments=["edit"]))
    await editor.wait_for(lambda: seen, 60, "the result")
    assert "accepted" in seen[0] and "Diagnostics" not in seen[0]
    assert (tmp_path / "notes.txt").read_text() == "bye\n"
