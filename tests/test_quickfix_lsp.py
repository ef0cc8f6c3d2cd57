"""Code actions end to end: the real ``codeloop lsp`` over JSON-RPC (pytest-lsp), the
scripted model over HTTP. Every flow runs twice: with VS Code-like client capabilities
(``experimental.codeloop``) and with a minimal plain LSP client."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from conftest import cli_env
from lsp_harness import Editor, start_editor, stop_editor
from lsprotocol import types as lsp
from scripted_model import Call, Hang, Script, Text, ToolCalls

from codeloop.edits.textedits import Pos, TextEdit

CLIENTS = ["vscode", "plain"]

CALC = "def area(w, h):\n    return w * hh\n\n\ndef perimeter(w, h):\n    return 2 * (w + h)\n"


@pytest.fixture
async def editor_factory(model_server, tmp_path):
    editors: list[Editor] = []

    async def make(scenario, client: str, settings: dict[str, Any] | None = None, **caps) -> Editor:
        server = model_server(scenario)
        kw = {} if client == "vscode" else {"codeloop": None}
        editor = await start_editor(tmp_path, cli_env(server.base_url), settings=settings, **kw, **caps)
        # Results stay raw JSON: lsprotocol's client-side converter turns every CodeAction
        # carrying a command into a Command (losing kind and diagnostics).
        editor.client.protocol.get_result_type = lambda method: None
        if client == "plain":

            def answer(params: lsp.ShowMessageRequestParams):
                titles = [a.title for a in params.actions or []]
                return "Accept" if "Accept" in titles else ("Allow once" if "Allow once" in titles else None)

            editor.on_message_request = answer
        editors.append(editor)
        return editor

    yield make
    for e in editors:
        await stop_editor(e)


def diagnostic(line: int, start: int, end: int, message: str, source: str = "pyflakes") -> lsp.Diagnostic:
    return lsp.Diagnostic(
        range=lsp.Range(start=lsp.Position(line=line, character=start), end=lsp.Position(line=line, character=end)),
        message=message,
        severity=lsp.DiagnosticSeverity.Error,
        source=source,
    )


def action_params(uri: str, start: tuple[int, int], end: tuple[int, int], diags: list[lsp.Diagnostic],
                  only: list[str] | None = None) -> lsp.CodeActionParams:
    return lsp.CodeActionParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri),
        range=lsp.Range(start=lsp.Position(line=start[0], character=start[1]), end=lsp.Position(line=end[0], character=end[1])),
        context=lsp.CodeActionContext(diagnostics=diags, only=only),
    )


async def run_action(editor: Editor, action: dict[str, Any]) -> Any:
    command = action["command"]
    return await editor.client.workspace_execute_command_async(
        lsp.ExecuteCommandParams(command=command["command"], arguments=command["arguments"])
    )


async def progress_end(editor: Editor, timeout: float = 30) -> lsp.WorkDoneProgressEnd:
    def ended():
        for reports in editor.client.progress_reports.values():
            if reports and reports[-1].kind == "end":
                return reports[-1]
        return None

    return await editor.wait_for(ended, timeout, "the progress to end")


# -- listing -------------------------------------------------------------------------------


@pytest.mark.parametrize("client", CLIENTS)
async def test_actions_offered_for_diagnostics_in_range_and_selections(editor_factory, tmp_path, client):
    (tmp_path / "calc.py").write_text(CALC)
    editor = await editor_factory(Script([]), client)
    doc = editor.open("calc.py")
    hh = diagnostic(1, 15, 17, "undefined name 'hh'")
    other = diagnostic(4, 0, 3, "something on another line")

    # A cursor (empty range) on line 1: one fix, for the diagnostic on that line (codeloop's
    # own pyflakes check finds the same one in a plain client: offered once), then Ask and
    # Explain for the enclosing function.
    actions = await editor.client.text_document_code_action_async(action_params(doc.uri, (1, 4), (1, 4), [hh, other]))
    assert [(a["title"], a.get("kind")) for a in actions] == [
        ("Fix with codeloop: undefined name 'hh'", "quickfix"),
        ("Ask codeloop…", "refactor.rewrite"),
        ("Explain with codeloop", None),
    ]
    fix = actions[0]
    assert [d["message"] for d in fix["diagnostics"]] == ["undefined name 'hh'"]
    assert fix["command"]["command"] == "codeloop.fixDiagnostic"
    arg = fix["command"]["arguments"][0]
    assert arg["uri"] == doc.uri and arg["diagnostic"]["message"] == "undefined name 'hh'"
    assert arg["diagnostic"]["range"]["start"] == {"line": 1, "character": 15}
    cursor = {"start": {"line": 1, "character": 4}, "end": {"line": 1, "character": 4}}
    assert actions[1]["command"]["arguments"] == [{"uri": doc.uri, "range": cursor}]

    # A selection: Ask and Explain carry it.
    actions = await editor.client.text_document_code_action_async(action_params(doc.uri, (0, 0), (2, 0), [hh]))
    titles = [a["title"] for a in actions]
    assert titles == ["Fix with codeloop: undefined name 'hh'", "Ask codeloop…", "Explain with codeloop"]
    assert actions[1]["kind"] == "refactor.rewrite"
    assert actions[1]["command"]["arguments"] == [{"uri": doc.uri, "range": {"start": {"line": 0, "character": 0}, "end": {"line": 2, "character": 0}}}]

    # context.only filters by kind.
    only_fix = await editor.client.text_document_code_action_async(
        action_params(doc.uri, (0, 0), (2, 0), [hh], only=[lsp.CodeActionKind.QuickFix])
    )
    assert [a["kind"] for a in only_fix] == ["quickfix"]
    only_refactor = await editor.client.text_document_code_action_async(
        action_params(doc.uri, (0, 0), (2, 0), [hh], only=[lsp.CodeActionKind.Refactor])
    )
    assert [a["title"] for a in only_refactor] == ["Ask codeloop…"]
    # No problem on the line: Ask and Explain only.
    blank = await editor.client.text_document_code_action_async(action_params(doc.uri, (3, 0), (3, 0), []))
    assert [a["title"] for a in blank] == ["Ask codeloop…", "Explain with codeloop"]


@pytest.mark.parametrize("client", CLIENTS)
async def test_fix_offered_without_client_diagnostics_from_codeloops_own_check(editor_factory, tmp_path, client):
    """Neovim sends a server only the diagnostics that server published: "diagnostics": [].
    A plain client still gets "Fix with codeloop" on a line pyflakes flags, on the buffer's
    unsaved text; a client that forwards the editor's diagnostics (VS Code) sends them itself."""
    (tmp_path / "calc.py").write_text("def area(w, h):\n    return w * h\n")
    editor = await editor_factory(Script([]), client)
    doc = editor.open("calc.py")
    editor.insert_line("calc.py", 2, "print(undefined_thing)\n")  # unsaved: only in the buffer

    async def fixes() -> list[str]:
        got = await editor.client.text_document_code_action_async(action_params(doc.uri, (2, 0), (2, 0), []))
        return [a["title"] for a in got if a["title"].startswith("Fix")]

    if client == "plain":
        deadline = time.monotonic() + 15
        while not await fixes() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert await fixes() == ["Fix with codeloop: undefined name 'undefined_thing'"]
        # Fixed in the buffer: the check runs again and the action goes away.
        editor.type_text("calc.py", [TextEdit(Pos(2, 0), Pos(3, 0), "")])
        deadline = time.monotonic() + 15
        while await fixes() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert await fixes() == []
        assert editor.client.diagnostics == {}  # nothing published unless publishDiagnostics is on
    else:
        await asyncio.sleep(1.0)
        assert await fixes() == []


async def test_publish_diagnostics_setting_publishes_codeloops_own(editor_factory, tmp_path):
    (tmp_path / "calc.py").write_text(CALC)
    editor = await editor_factory(Script([]), "plain", settings={"publishDiagnostics": True})
    doc = editor.open("calc.py")
    await editor.wait_for(lambda: editor.client.diagnostics.get(doc.uri), 15, "published diagnostics")
    published = editor.client.diagnostics[doc.uri]
    assert [(d.range.start.line, d.message, d.source) for d in published] == [(1, "undefined name 'hh'", "codeloop: pyflakes")]
    # Neovim then sends them back in context.diagnostics: still one fix per problem.
    actions = await editor.client.text_document_code_action_async(action_params(doc.uri, (1, 0), (1, 0), list(published)))
    assert [a["title"] for a in actions if a["title"].startswith("Fix")] == ["Fix with codeloop: undefined name 'hh'"]
    editor.client.text_document_did_close(lsp.DidCloseTextDocumentParams(text_document=lsp.TextDocumentIdentifier(uri=doc.uri)))
    await editor.wait_for(lambda: editor.client.diagnostics.get(doc.uri) is not None and not editor.client.diagnostics[doc.uri], 10, "diagnostics cleared on close")


async def test_actions_are_answered_fast_in_a_large_file(editor_factory, tmp_path):
    text = "".join(f"value_{i} = undefined_{i}\n" for i in range(20_000))
    (tmp_path / "big.py").write_text(text)
    editor = await editor_factory(Script([]), "plain")
    doc = editor.open("big.py", text)
    diags = [diagnostic(i * 100, 10, 20, f"undefined name 'undefined_{i * 100}'") for i in range(200)]
    timings = []
    for i in range(30):
        line = (i * 613) % 20_000
        params = action_params(doc.uri, (line, 0), (line, 5), [d for d in diags if d.range.start.line == line] or diags[:1])
        t0 = time.perf_counter()
        actions = await editor.client.text_document_code_action_async(params)
        timings.append(time.perf_counter() - t0)
        assert actions
    timings.sort()
    assert timings[len(timings) // 2] < 0.05, timings  # milliseconds, not seconds; bench/ measures precisely
    assert editor.applied_edits == [] and not editor.client.progress_reports  # no work started


# -- Fix with codeloop ------------------------------------------------------------------------


@pytest.mark.parametrize("client", CLIENTS)
async def test_fix_with_codeloop_applies_to_the_unsaved_buffer(editor_factory, tmp_path, client):
    (tmp_path / "calc.py").write_text(CALC)
    seen: dict[str, str] = {}

    def first(req):
        prompt = req.last_user_text()
        seen["prompt"] = prompt
        return ToolCalls([Call("edit_file", {"path": "calc.py", "old_string": "w * hh", "new_string": "w * h"})])

    def second(req):
        seen["result"] = req.last_tool_results()[0]
        return Text("Fixed the typo: hh is h.")

    editor = await editor_factory(Script([first, second]), client)
    doc = editor.open("calc.py")
    # The user typed a line that is not saved: the diagnostic moved to line 2.
    editor.insert_line("calc.py", 0, "# unsaved note\n")
    hh = diagnostic(2, 15, 17, "undefined name 'hh'")
    actions = await editor.client.text_document_code_action_async(action_params(doc.uri, (2, 15), (2, 15), [hh]))
    result = await run_action(editor, actions[0])
    assert result["turnId"]

    end = await progress_end(editor)
    assert end.message == "done"
    prompt = seen["prompt"]
    assert "undefined name 'hh'" in prompt and "calc.py (python)" in prompt and "line 3, column 16" in prompt
    assert "# unsaved note" in prompt and "unsaved changes" in prompt  # the buffer, not the disk
    assert "accepted" in seen["result"]

    # The fix arrived as a versioned workspace/applyEdit against the buffer's version.
    assert len(editor.applied_edits) == 1
    change = editor.applied_edits[0]["edit"]["documentChanges"][0]
    assert change["textDocument"] == {"uri": doc.uri, "version": 2}
    assert editor.docs[doc.uri].text == "# unsaved note\n" + CALC.replace("w * hh", "w * h")
    # The user's unsaved text was never written behind their back.
    assert (tmp_path / "calc.py").read_text() == CALC
    if client == "vscode":
        assert len(editor.reviews) == 1 and editor.reviews[0]["files"][0]["version"] == 2  # the diff review
        events = editor.turn_events(result["turnId"])
        assert events[-1]["type"] == "turnEnd" and events[-1]["status"] == "done"
    else:
        asked = [m.message for m in editor.message_requests]
        assert len(asked) == 1 and "proposes a change to calc.py" in asked[0]
        assert any("Fixed the typo" in m.message for m in editor.client.messages)


@pytest.mark.parametrize("client", CLIENTS)
async def test_auto_accept_goes_straight_to_apply_edit(editor_factory, tmp_path, client):
    (tmp_path / "calc.py").write_text(CALC)
    script = Script(
        [ToolCalls([Call("edit_file", {"path": "calc.py", "old_string": "w * hh", "new_string": "w * h"})]), Text("done")]
    )
    editor = await editor_factory(script, client, settings={"autoAccept": True, "mode": "acceptEdits"})
    doc = editor.open("calc.py")
    actions = await editor.client.text_document_code_action_async(
        action_params(doc.uri, (1, 0), (1, 0), [diagnostic(1, 15, 17, "undefined name 'hh'")])
    )
    await run_action(editor, actions[0])
    assert (await progress_end(editor)).message == "done"
    assert editor.reviews == [] and editor.message_requests == []
    assert len(editor.applied_edits) == 1
    assert (tmp_path / "calc.py").read_text() == CALC.replace("w * hh", "w * h")  # a clean buffer reaches the disk


@pytest.mark.parametrize("client", CLIENTS)
async def test_cancelling_the_progress_stops_the_fix(editor_factory, tmp_path, client):
    (tmp_path / "calc.py").write_text(CALC)
    never = ToolCalls([Call("edit_file", {"path": "calc.py", "old_string": "w * hh", "new_string": "w * h"})])
    editor = await editor_factory(Script([Hang(20, then=never), never, Text("late")]), client)
    doc = editor.open("calc.py")
    actions = await editor.client.text_document_code_action_async(
        action_params(doc.uri, (1, 0), (1, 0), [diagnostic(1, 15, 17, "undefined name 'hh'")])
    )
    result = await run_action(editor, actions[0])
    await editor.wait_for(lambda: editor.client.progress_reports, 10, "the progress to begin")
    token = next(iter(editor.client.progress_reports))
    begin = editor.client.progress_reports[token][0]
    assert begin.kind == "begin" and begin.cancellable and "calc.py:2" in (begin.message or "")
    t0 = time.monotonic()
    editor.client.window_work_done_progress_cancel(lsp.WorkDoneProgressCancelParams(token=token))
    end = await progress_end(editor, 10)
    assert end.message == "cancelled" and time.monotonic() - t0 < 5
    if client == "vscode":
        ends = [e for e in editor.turn_events(result["turnId"]) if e["type"] == "turnEnd"]
        assert [e["status"] for e in ends] == ["cancelled"]
    assert editor.applied_edits == [] and editor.reviews == []
    assert editor.docs[doc.uri].text == CALC and (tmp_path / "calc.py").read_text() == CALC


# -- Ask and Explain --------------------------------------------------------------------------


async def test_plain_ask_offers_presets_and_applies_the_chosen_instruction(editor_factory, tmp_path):
    (tmp_path / "calc.py").write_text(CALC)

    def first(req):
        prompt = req.last_user_text()
        assert "Instruction: Add docstrings and comments" in prompt
        assert "lines 5-6 are selected" in prompt and "def perimeter(w, h):" in prompt
        return ToolCalls(
            [Call("edit_file", {"path": "calc.py", "old_string": "def perimeter(w, h):\n", "new_string": 'def perimeter(w, h):\n    """The perimeter."""\n'})]
        )

    editor = await editor_factory(Script([first, Text("Added a docstring.")]), "plain")
    presets: list[list[str]] = []

    def answer(params: lsp.ShowMessageRequestParams):
        titles = [a.title for a in params.actions or []]
        if "Accept" in titles:
            return "Accept"
        presets.append(titles)
        return "Add docstrings and comments"

    editor.on_message_request = answer
    doc = editor.open("calc.py")
    actions = await editor.client.text_document_code_action_async(action_params(doc.uri, (4, 0), (5, 22), []))
    ask = next(a for a in actions if a["title"] == "Ask codeloop…")
    await run_action(editor, ask)
    assert (await progress_end(editor)).message == "done"
    assert presets and "Simplify this code" in presets[0] and len(presets[0]) >= 3
    assert '"""The perimeter."""' in editor.docs[doc.uri].text


async def test_ask_with_an_instruction_argument_and_a_dismissed_prompt(editor_factory, tmp_path):
    (tmp_path / "calc.py").write_text(CALC)

    def first(req):
        assert "Instruction: rename w to width" in req.last_user_text()
        return Text("I would rename it.")

    editor = await editor_factory(Script([first]), "vscode")
    doc = editor.open("calc.py")
    arg = {"uri": doc.uri, "range": {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 0}}, "instruction": "rename w to width"}
    result = await editor.client.workspace_execute_command_async(lsp.ExecuteCommandParams(command="codeloop.ask", arguments=[arg]))
    assert (await editor.turn_end(result["turnId"]))["status"] == "done"
    # Without an instruction the user is asked; dismissing starts nothing.
    editor.on_message_request = lambda p: None
    del arg["instruction"]
    assert await editor.client.workspace_execute_command_async(lsp.ExecuteCommandParams(command="codeloop.ask", arguments=[arg])) is None
    assert len(editor.message_requests) == 1


@pytest.mark.parametrize("client", CLIENTS)
async def test_explain_answers_without_editing(editor_factory, tmp_path, client):
    (tmp_path / "calc.py").write_text(CALC)

    def first(req):
        prompt = req.last_user_text()
        assert "Explain what this code in calc.py (python), lines 5-6" in prompt and "Do not edit" in prompt
        return Text("It returns the perimeter of a w by h rectangle.")

    editor = await editor_factory(Script([first]), client)
    doc = editor.open("calc.py")
    actions = await editor.client.text_document_code_action_async(action_params(doc.uri, (4, 0), (5, 22), []))
    result = await run_action(editor, next(a for a in actions if a["title"] == "Explain with codeloop"))
    await progress_end(editor)
    answer = "It returns the perimeter of a w by h rectangle."
    if client == "vscode":
        assert editor.text_of(result["turnId"]) == answer  # the chat panel shows the events
    else:
        await editor.wait_for(lambda: any(answer in m.message for m in editor.client.messages), 10, "showMessage")
        assert any(answer in m.message for m in editor.client.log_messages)
    assert editor.applied_edits == []


async def test_bad_command_arguments_are_errors_and_the_server_keeps_serving(editor_factory, tmp_path):
    from pygls.exceptions import JsonRpcException

    (tmp_path / "calc.py").write_text(CALC)
    editor = await editor_factory(Script([Text("ok")]), "plain")
    for command, args in [
        ("codeloop.fixDiagnostic", []),
        ("codeloop.fixDiagnostic", [{"uri": editor.uri("calc.py")}]),
        ("codeloop.fixDiagnostic", [{"uri": editor.uri("calc.py"), "diagnostic": {"range": "nope"}}]),
        ("codeloop.explain", [{"uri": "untitled:Untitled-1", "range": {}}]),
        ("codeloop.explain", [{"uri": editor.uri("missing.py"), "range": {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 0}}}]),
    ]:
        with pytest.raises(JsonRpcException):
            await editor.client.workspace_execute_command_async(lsp.ExecuteCommandParams(command=command, arguments=args))
    doc = editor.open("calc.py")
    actions = await editor.client.text_document_code_action_async(action_params(doc.uri, (0, 0), (1, 0), []))
    assert [a["title"] for a in actions] == ["Ask codeloop…", "Explain with codeloop"]
