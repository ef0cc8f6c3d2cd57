"""Permissions end to end: modes, rules, "always allow", malformed settings and the
catastrophic class, through the real CLI and the real language server, with the
scripted model deciding what the "model" asks for.

Every process gets its own XDG_CONFIG_HOME, so no user config file leaks in.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import CODELOOP, asking_user_settings, cli_env
from lsp_harness import Editor, start_editor, stop_editor
from lsprotocol import types as lsp
from pty_cli import run_on_pty
from scripted_model import Call, ChatRequest, Keyed, Script, Text, ToolCalls

MUTATING = {"write_file", "edit_file", "apply_patch"}
PLAN_TEXT = "You are in plan mode"


def _env(tmp_path: Path) -> dict[str, str]:
    """A config home of the test's own, with the sandbox's autoAllow off (these tests are about
    what the policy asks)."""
    cfg = tmp_path.parent / (tmp_path.name + "-xdg")
    if not (cfg / "codeloop" / "settings.json").exists():
        asking_user_settings(cfg)
    return {"XDG_CONFIG_HOME": str(cfg)}


def write_settings(root: Path, data: dict | str, name: str = "settings.json") -> Path:
    d = root / ".codeloop"
    d.mkdir(exist_ok=True)
    path = d / name
    path.write_text(data if isinstance(data, str) else json.dumps(data, indent=2) + "\n")
    return path


def assert_planning_request(req: ChatRequest) -> None:
    names = set(req.tool_names())
    assert not names & MUTATING, f"mutating tools offered in plan mode: {sorted(names & MUTATING)}"
    assert {"read_file", "grep", "run_command"} <= names, names
    # The mode is told in the context block of the user's message (the system prompt stays
    # byte for byte the same, for prompt caches).
    told = req.system_text() + "\n".join(req.user_texts())
    assert PLAN_TEXT in told
    assert PLAN_TEXT not in req.system_text()


def plan_turn_script(marker: str) -> Script:
    """A forged write (the tool is not even offered), a rule-allowed read-only command, a plan."""
    return Script(
        [
            ToolCalls(
                [
                    Call("write_file", {"path": "forged.py", "content": "print('pwned')\n"}),
                    Call("edit_file", {"path": "app.py", "old_string": "x = 1", "new_string": "x = 2"}),
                    Call("run_command", {"command": f"ls {marker}"}),
                ]
            ),
            Text("Plan:\n1. Change x in app.py.\n2. Add a test."),
        ],
        name="plan turn",
    )


def check_plan_results(req: ChatRequest, marker: str) -> None:
    write_res, edit_res, ls_res = req.last_tool_results()
    for res, tool in ((write_res, "write_file"), (edit_res, "edit_file")):
        assert f"{tool} is not available in the current mode" in res, res
        assert PLAN_TEXT in res, res
    assert "exit code: 0" in ls_res and "note.txt" in ls_res, ls_res


def setup_plan_workspace(root: Path) -> None:
    (root / "app.py").write_text("x = 1\n")
    (root / "docs").mkdir()
    (root / "docs" / "note.txt").write_text("hello\n")
    # the project's allow rule applies once the project is trusted: each run says --trust-project
    write_settings(root, {"permissions": {"allow": ["Bash(ls:*)"]}})


# ---------------------------------------------------------------------------
# 1. plan mode
# ---------------------------------------------------------------------------


def test_plan_mode_by_cli_flag(model_server, run_cli, tmp_path):
    setup_plan_workspace(tmp_path)
    server = model_server(plan_turn_script("docs"))
    result = run_cli(["run", "plan the change", "--cwd", str(tmp_path), "--mode", "plan", "--trust-project"], server.base_url, **_env(tmp_path))
    assert result.code == 0, result.both
    reqs = server.chat_requests
    assert len(reqs) == 2, server.failures
    for r in reqs:
        assert_planning_request(r)
    check_plan_results(reqs[1], "docs")
    assert not (tmp_path / "forged.py").exists()
    assert (tmp_path / "app.py").read_text() == "x = 1\n"
    assert "Plan:" in result.out
    # the forged calls are shown as failed, the ls as run
    assert "● write_file(forged.py)" in result.out and "● run_command(ls docs)" in result.out


def test_plan_mode_with_yes_still_cannot_write(model_server, run_cli, tmp_path):
    """--yes answers questions; it does not lift plan mode."""
    setup_plan_workspace(tmp_path)
    server = model_server(plan_turn_script("docs"))
    result = run_cli(["run", "plan", "--cwd", str(tmp_path), "--mode", "plan", "--yes", "--trust-project"], server.base_url, **_env(tmp_path))
    assert result.code == 0, result.both
    assert_planning_request(server.chat_requests[0])
    check_plan_results(server.chat_requests[1], "docs")
    assert not (tmp_path / "forged.py").exists()
    assert (tmp_path / "app.py").read_text() == "x = 1\n"


def test_plan_mode_by_slash_command_in_chat(model_server, run_cli, tmp_path):
    setup_plan_workspace(tmp_path)
    server = model_server(Keyed({"hello": Text("hi there"), "plan the change": plan_turn_script("docs")}))
    result = run_cli(
        ["chat", "--cwd", str(tmp_path), "--trust-project"], server.base_url, stdin="hello\n/mode plan\nplan the change\n/mode\n",
        **_env(tmp_path)
    )
    assert result.code == 0, result.both
    first, *planning = server.chat_requests
    # before /mode plan: everything is offered and nothing says "plan"
    assert MUTATING <= set(first.tool_names())
    assert PLAN_TEXT not in first.system_text()
    assert len(planning) == 2
    for r in planning:
        assert_planning_request(r)
    check_plan_results(planning[1], "docs")
    assert not (tmp_path / "forged.py").exists()
    assert "Mode: plan." in result.out
    assert result.out.count("Mode: plan") == 2  # the switch, then /mode reports it


# ---------------------------------------------------------------------------
# 2. "Always allow" in the CLI's interactive approver (a real pty as stdin)
# ---------------------------------------------------------------------------


def test_always_allow_in_the_cli_prompt_writes_a_rule_and_is_not_asked_again(model_server, tmp_path):
    def ran(req: ChatRequest):
        (res,) = req.last_tool_results()
        assert "hi" in res and "exit code: 0" in res, res
        return Text("ran it")

    scenario = Keyed(
        {
            "first": Script([ToolCalls([Call("run_command", {"command": "echo hi"})]), ran]),
            "second": Script([ToolCalls([Call("run_command", {"command": "echo hi"})]), ran]),
        }
    )
    server = model_server(scenario)
    # the chat's prompt is "> ", the approval's ends with "a reason to deny: "
    code, out = run_on_pty(CODELOOP + ["chat", "--cwd", str(tmp_path)], cli_env(server.base_url, **_env(tmp_path)),
                           [("> ", "first"), ("deny: ", "a"), ("> ", "second")], timeout=60, eof_at="> ")
    assert code == 0, out
    assert server.failures == [], server.failures
    assert out.count("? Run: echo hi") == 1, out
    assert out.count("ran it") == 2, out
    assert "Always allowed from now on: Bash(echo hi)" in out
    local = json.loads((tmp_path / ".codeloop" / "settings.local.json").read_text())
    assert local["permissions"]["allow"] == ["Bash(echo hi)"]
    assert "settings.local.json" in (tmp_path / ".codeloop" / ".gitignore").read_text().splitlines()


def test_cli_prompt_deny_with_a_reason_reaches_the_model(model_server, tmp_path):
    def denied(req: ChatRequest):
        (res,) = req.last_tool_results()
        assert "denied" in res and "not on my machine" in res, res
        return Text("understood")

    server = model_server(Script([ToolCalls([Call("run_command", {"command": "touch made.txt"})]), denied]))
    code, out = run_on_pty(CODELOOP + ["run", "make it", "--cwd", str(tmp_path)],
                           cli_env(server.base_url, **_env(tmp_path)), [("deny: ", "not on my machine")], timeout=60)
    assert code == 0, out
    assert server.failures == []
    assert "understood" in out
    assert not (tmp_path / "made.txt").exists()
    assert not (tmp_path / ".codeloop" / "settings.local.json").exists()


# ---------------------------------------------------------------------------
# 3. malformed settings
# ---------------------------------------------------------------------------

BROKEN = """{
  "permissions": {
    "allow": ["Bash(touch marker.txt)"]
    "deny": []
  }
}
"""  # missing comma: the error is on line 4


def touch_scenario() -> Script:
    return Script([ToolCalls([Call("run_command", {"command": "touch marker.txt"})]), lambda req: Text("result: " + req.last_tool_results()[0])])


def test_malformed_project_settings_are_reported_and_ignored_by_the_cli(model_server, run_cli, tmp_path):
    path = write_settings(tmp_path, BROKEN)
    server = model_server(touch_scenario())
    result = run_cli(["run", "touch it", "--cwd", str(tmp_path)], server.base_url, **_env(tmp_path))
    assert result.code == 0, result.both
    assert f"{path}:4: invalid JSON" in result.both
    # the turn ran, without the file's allow rule: the command was asked (no terminal: refused)
    assert len(server.chat_requests) == 2
    assert "result:" in result.out and "--yes" in server.chat_requests[1].last_tool_results()[0]
    assert not (tmp_path / "marker.txt").exists()


def test_the_same_settings_when_valid_allow_the_command(model_server, run_cli, tmp_path):
    """The control for the test above: the rule itself works (a project's allow rules apply
    once the project is trusted: --trust-project here; tests/test_trust_e2e.py tests that)."""
    write_settings(tmp_path, BROKEN.replace('"]\n', '"],\n'))
    server = model_server(touch_scenario())
    result = run_cli(["run", "touch it", "--cwd", str(tmp_path), "--trust-project"], server.base_url, **_env(tmp_path))
    assert result.code == 0, result.both
    assert "invalid JSON" not in result.both
    assert (tmp_path / "marker.txt").exists()
    assert "exit code: 0" in server.chat_requests[1].last_tool_results()[0]


def test_malformed_local_settings_keep_the_project_deny_rules(model_server, run_cli, tmp_path):
    """A broken settings.local.json never allows anything; the good file's deny still holds."""
    write_settings(tmp_path, {"permissions": {"deny": ["Bash(touch:*)"]}})
    local = write_settings(tmp_path, '{"permissions": {"allow": ["Bash"]\n', "settings.local.json")
    server = model_server(touch_scenario())
    result = run_cli(["run", "touch it", "--cwd", str(tmp_path), "--yes"], server.base_url, **_env(tmp_path))
    assert result.code == 0, result.both
    assert f"{local}:2: invalid JSON" in result.both
    res = server.chat_requests[1].last_tool_results()[0]
    assert "Permission denied" in res and "Bash(touch:*)" in res, res
    assert not (tmp_path / "marker.txt").exists()


# ---------------------------------------------------------------------------
# 4. the catastrophic class, in bypass mode
# ---------------------------------------------------------------------------

CATASTROPHIC = [
    "rm -rf / --no-preserve-root",
    "sudo rm -rf /",
    "bash -c 'rm -rf ~'",
    "echo ok && rm -rf /*",
]


def _canary_bin(tmp_path: Path) -> tuple[Path, Path]:
    """A fake ``rm`` and ``sudo`` first on PATH: if the policy ever let one through, it
    would write the canary instead of deleting anything."""
    bindir = tmp_path.parent / (tmp_path.name + "-bin")
    bindir.mkdir(exist_ok=True)
    canary = tmp_path.parent / (tmp_path.name + "-canary")
    for name in ("rm", "sudo"):
        script = bindir / name
        script.write_text(f"#!/bin/sh\necho \"{name} $*\" >> '{canary}'\nexit 0\n")
        script.chmod(0o755)
    return bindir, canary


@pytest.mark.parametrize("flags", [["--yes"], ["--mode", "bypass"]])
def test_catastrophic_commands_refused_in_bypass(model_server, run_cli, tmp_path, flags):
    bindir, canary = _canary_bin(tmp_path)

    def after(req: ChatRequest):
        results = req.last_tool_results()
        assert len(results) == len(CATASTROPHIC) + 1
        for res in results[:-1]:
            assert res.startswith("Permission denied: refused: this command"), res
            assert "never runs this, in any mode" in res, res
        assert "still going" in results[-1] and "exit code: 0" in results[-1], results[-1]
        return Text("I will not do that.")

    calls = [Call("run_command", {"command": c}) for c in CATASTROPHIC]
    calls.append(Call("run_command", {"command": "echo still going"}))
    server = model_server(Script([ToolCalls(calls), after]))
    result = run_cli(
        ["run", "clean up", "--cwd", str(tmp_path), *flags],
        server.base_url,
        PATH=f"{bindir}:{os.environ.get('PATH', '')}",
        **_env(tmp_path),
    )
    assert result.code == 0, result.both
    assert server.failures == [], server.failures
    assert len(server.chat_requests) == 2
    assert "I will not do that." in result.out
    assert not canary.exists(), canary.read_text()


# ---------------------------------------------------------------------------
# 5. bypass shows a warning when it is turned on (CLI)
# ---------------------------------------------------------------------------


def test_bypass_warning_in_the_cli(model_server, run_cli, tmp_path):
    server = model_server(Keyed({"x": Text("ok")}))
    flag = run_cli(["run", "x", "--cwd", str(tmp_path), "--mode", "bypass"], server.base_url, **_env(tmp_path))
    assert flag.code == 0, flag.both
    assert "bypass mode is on: edits and commands run without asking" in flag.out
    assert "catastrophic commands are still refused" in flag.out
    slash = run_cli(["chat", "--cwd", str(tmp_path)], server.base_url, stdin="/mode bypass\n", **_env(tmp_path))
    assert slash.code == 0, slash.both
    assert "Mode: bypass. Bypass mode is on: edits and commands run without asking (catastrophic commands are still refused" in slash.out
    quiet = run_cli(["run", "x", "--cwd", str(tmp_path)], server.base_url, **_env(tmp_path))
    assert "bypass" not in quiet.both


# ---------------------------------------------------------------------------
# LSP
# ---------------------------------------------------------------------------


@pytest.fixture
async def editor_factory(model_server, tmp_path):
    editors: list[Editor] = []

    async def make(scenario, codeloop="vscode", settings=None, extra_env=None, **caps) -> tuple[Editor, object]:
        server = model_server(scenario)
        kw = {} if codeloop == "vscode" else {"codeloop": None}
        env = cli_env(server.base_url, **_env(tmp_path), **(extra_env or {}))
        editor = await start_editor(tmp_path, env, settings=settings, **kw, **caps)
        editors.append(editor)
        return editor, server

    yield make
    for e in editors:
        await stop_editor(e)


def change_config(editor: Editor, settings: dict) -> None:
    editor.client.workspace_did_change_configuration(lsp.DidChangeConfigurationParams(settings={"codeloop": settings}))


def shown(editor: Editor) -> str:
    return "\n".join(m.message for m in editor.client.messages)


async def test_plan_mode_over_lsp_by_did_change_configuration(editor_factory, tmp_path):
    (tmp_path / "app.py").write_text("x = 1\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "note.txt").write_text("hello\n")
    scenario = Keyed({"hello": Text("hi"), "plan the change": plan_turn_script("docs")})
    # the allow rule comes from the editor's settings this time
    editor, server = await editor_factory(scenario, settings={"permissions": {"allow": ["Bash(ls:*)"]}})
    started = await editor.chat("hello")
    assert (await editor.turn_end(started["turnId"]))["status"] == "done"
    assert MUTATING <= set(server.chat_requests[0].tool_names())
    assert PLAN_TEXT not in server.chat_requests[0].system_text()

    change_config(editor, {"mode": "plan", "permissions": {"allow": ["Bash(ls:*)"]}})
    started = await editor.chat("plan the change", session_id=started["sessionId"])
    end = await editor.turn_end(started["turnId"])
    assert end["status"] == "done", editor.turn_events(started["turnId"])
    planning = server.chat_requests[1:]
    assert len(planning) == 2, server.failures
    for r in planning:
        assert_planning_request(r)
    check_plan_results(planning[1], "docs")
    assert editor.reviews == [] and editor.applied_edits == [] and editor.approvals == []
    assert not (tmp_path / "forged.py").exists()
    assert (tmp_path / "app.py").read_text() == "x = 1\n"
    finished = [e for e in editor.turn_events(started["turnId"]) if e["type"] == "toolCallFinished"]
    assert [e["ok"] for e in finished] == [False, False, True]
    assert "Plan:" in editor.text_of(started["turnId"])


async def test_plan_mode_over_lsp_by_slash_command(editor_factory, tmp_path):
    (tmp_path / "app.py").write_text("x = 1\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "note.txt").write_text("hello\n")
    write_settings(tmp_path, {"permissions": {"allow": ["Bash(ls:*)"]}})
    editor, server = await editor_factory(Keyed({"plan the change": plan_turn_script("docs")}))
    started = await editor.chat("/mode plan")
    await editor.turn_end(started["turnId"])
    notices = [e["message"] for e in editor.turn_events(started["turnId"]) if e["type"] == "notice"]
    assert notices == ["Mode: plan."]
    started = await editor.chat("plan the change", session_id=started["sessionId"])
    assert (await editor.turn_end(started["turnId"]))["status"] == "done"
    for r in server.chat_requests:
        assert_planning_request(r)
    check_plan_results(server.chat_requests[1], "docs")
    assert not (tmp_path / "forged.py").exists()


async def test_always_allow_over_lsp_writes_a_rule_and_the_next_turn_does_not_ask(editor_factory, tmp_path):
    def ran(req: ChatRequest):
        (res,) = req.last_tool_results()
        return Text("result: " + res)

    scenario = Keyed(
        {
            "first": Script([ToolCalls([Call("run_command", {"command": "echo hi"})]), ran]),
            "second": Script([ToolCalls([Call("run_command", {"command": "echo hi"})]), ran]),
            "third": Script([ToolCalls([Call("run_command", {"command": "echo bye"})]), ran]),
        }
    )
    editor, server = await editor_factory(scenario)
    editor.on_approval = lambda p: {"answer": "allow_always"} if p["target"] == "echo hi" else {"answer": "deny", "message": "no"}
    local = tmp_path / ".codeloop" / "settings.local.json"

    started = await editor.chat("first")
    assert (await editor.turn_end(started["turnId"]))["status"] == "done"
    assert len(editor.approvals) == 1
    approval = editor.approvals[0]
    assert approval["kind"] == "Bash" and approval["target"] == "echo hi"
    assert approval["suggestedRule"] == "Bash(echo hi)"
    assert json.loads(local.read_text())["permissions"]["allow"] == ["Bash(echo hi)"]
    assert "settings.local.json" in (tmp_path / ".codeloop" / ".gitignore").read_text().splitlines()
    assert "hi\n" in editor.text_of(started["turnId"]) and "exit code: 0" in editor.text_of(started["turnId"])
    notices = [e["message"] for e in editor.turn_events(started["turnId"]) if e["type"] == "notice"]
    assert "Always allowed from now on: Bash(echo hi)" in notices

    started = await editor.chat("second", session_id=started["sessionId"])
    assert (await editor.turn_end(started["turnId"]))["status"] == "done"
    assert len(editor.approvals) == 1, editor.approvals  # not asked again
    assert "exit code: 0" in editor.text_of(started["turnId"])

    # the rule is precise: another command is still asked
    started = await editor.chat("third")  # a new session: the rule is on disk, not in memory
    assert (await editor.turn_end(started["turnId"]))["status"] == "done"
    assert [a["target"] for a in editor.approvals] == ["echo hi", "echo bye"]
    assert "denied" in editor.text_of(started["turnId"])
    assert json.loads(local.read_text())["permissions"]["allow"] == ["Bash(echo hi)"]


async def test_always_allow_from_a_plain_lsp_client(editor_factory, tmp_path):
    """Neovim-like: the approval is a showMessageRequest; "Always allow" writes the rule too."""
    scenario = Keyed(
        {
            "first": Script([ToolCalls([Call("run_command", {"command": "echo hi"})]), Text("one")]),
            "second": Script([ToolCalls([Call("run_command", {"command": "echo hi"})]), Text("two")]),
        }
    )
    editor, server = await editor_factory(scenario, codeloop="plain")
    editor.on_message_request = lambda p: "Always allow" if "echo hi" in p.message else None
    started = await editor.chat("first")
    # plain clients get no turnEnd event: the answer arrives as a log message
    await editor.wait_for(lambda: any(m.message == "[codeloop] one" for m in editor.client.log_messages), 30, "first answer")
    assert len(editor.message_requests) == 1
    assert "Always allow" in [a.title for a in editor.message_requests[0].actions]
    assert json.loads((tmp_path / ".codeloop" / "settings.local.json").read_text())["permissions"]["allow"] == ["Bash(echo hi)"]
    assert "exit code: 0" in server.chat_requests[1].last_tool_results()[0]
    started = await editor.chat("second", session_id=started["sessionId"])
    await editor.wait_for(lambda: any(m.message == "[codeloop] two" for m in editor.client.log_messages), 30, "second answer")
    assert len(editor.message_requests) == 1
    assert "exit code: 0" in server.chat_requests[3].last_tool_results()[0]


async def test_malformed_settings_reported_over_lsp_as_show_message(editor_factory, tmp_path):
    path = write_settings(tmp_path, BROKEN)
    editor, server = await editor_factory(touch_scenario())
    editor.on_approval = lambda p: {"answer": "deny", "message": "not now"}
    await editor.wait_for(lambda: f"{path}:4: invalid JSON" in shown(editor), 10, "the settings problem")
    assert any(m.type == lsp.MessageType.Warning for m in editor.client.messages)
    started = await editor.chat("touch it")
    assert (await editor.turn_end(started["turnId"]))["status"] == "done"
    # the broken file's allow rule did not apply: the command was asked
    assert [a["target"] for a in editor.approvals] == ["touch marker.txt"]
    assert not (tmp_path / "marker.txt").exists()


async def test_settings_broken_mid_session_are_reported_and_ignored(editor_factory, tmp_path):
    write_settings(tmp_path, {"permissions": {"allow": ["Bash(touch marker.txt)"]}})
    scenario = Keyed({"one": touch_scenario(), "two": touch_scenario(), "three": touch_scenario()})
    # The project's allow rule applies once the project is trusted (tests/test_trust_e2e.py).
    editor, server = await editor_factory(scenario, settings={"trustProject": True})
    editor.on_approval = lambda p: {"answer": "deny"}
    started = await editor.chat("one")
    assert (await editor.turn_end(started["turnId"]))["status"] == "done"
    assert (tmp_path / "marker.txt").exists() and editor.approvals == []
    (tmp_path / "marker.txt").unlink()
    path = write_settings(tmp_path, BROKEN)
    started = await editor.chat("two", session_id=started["sessionId"])
    assert (await editor.turn_end(started["turnId"]))["status"] == "done"
    # reported in the turn, as a warning with the path and line, before the command was asked
    events = editor.turn_events(started["turnId"])
    warning = next(e for e in events if e["type"] == "notice" and f"{path}:4: invalid JSON" in e["message"])
    assert warning["level"] == "warning"
    kinds = [e["type"] for e in events]
    assert kinds.index("notice") < kinds.index("toolCallFinished")
    assert [a["target"] for a in editor.approvals] == ["touch marker.txt"]
    assert not (tmp_path / "marker.txt").exists()
    # reported once, not on every decision
    started = await editor.chat("three", session_id=started["sessionId"])
    assert (await editor.turn_end(started["turnId"]))["status"] == "done"
    assert not [e for e in editor.turn_events(started["turnId"]) if e["type"] == "notice"]


async def test_settings_broken_mid_session_show_message_for_a_plain_client(editor_factory, tmp_path):
    scenario = Keyed({"one": Text("fine"), "two": touch_scenario()})
    editor, server = await editor_factory(scenario, codeloop="plain")
    started = await editor.chat("one")
    await editor.wait_for(lambda: any(m.message == "[codeloop] fine" for m in editor.client.log_messages), 30, "first answer")
    path = write_settings(tmp_path, BROKEN)
    await editor.chat("two", session_id=started["sessionId"])
    await editor.wait_for(lambda: f"{path}:4: invalid JSON" in shown(editor), 30, "the settings problem")
    warning = next(m for m in editor.client.messages if "invalid JSON" in m.message)
    assert warning.type == lsp.MessageType.Warning


async def test_bypass_warning_over_lsp(editor_factory, tmp_path):
    editor, server = await editor_factory(Keyed({"x": Text("ok")}))
    change_config(editor, {"mode": "acceptEdits"})
    change_config(editor, {"mode": "bypass"})
    await editor.wait_for(lambda: "bypass mode is on" in shown(editor), 10, "the bypass warning")
    warning = next(m for m in editor.client.messages if "bypass mode is on" in m.message)
    assert warning.type == lsp.MessageType.Warning
    assert "catastrophic commands are still refused" in warning.message
    change_config(editor, {"mode": "bypass", "maxTurns": 10})  # already on: no second warning
    started = await editor.chat("x")
    await editor.turn_end(started["turnId"])
    assert shown(editor).count("bypass mode is on") == 1
    # /mode bypass in the chat: a warning-level notice
    started = await editor.chat("/mode ask", session_id=started["sessionId"])
    await editor.turn_end(started["turnId"])
    started = await editor.chat("/mode bypass", session_id=started["sessionId"])
    await editor.turn_end(started["turnId"])
    notice = next(e for e in editor.turn_events(started["turnId"]) if e["type"] == "notice")
    assert notice["level"] == "warning" and "catastrophic commands are still refused" in notice["message"]


async def test_bypass_from_initial_settings_warns_at_startup(editor_factory, tmp_path):
    editor, _ = await editor_factory(Keyed({"x": Text("ok")}), settings={"mode": "bypass"})
    await editor.wait_for(lambda: "bypass mode is on" in shown(editor), 10, "the bypass warning")


async def test_catastrophic_refused_in_bypass_over_lsp(editor_factory, tmp_path):
    bindir, canary = _canary_bin(tmp_path)

    def after(req: ChatRequest):
        results = req.last_tool_results()
        return Text(" | ".join(r.splitlines()[0] for r in results))

    calls = [Call("run_command", {"command": c}) for c in CATASTROPHIC] + [Call("run_command", {"command": "echo still going"})]
    editor, server = await editor_factory(
        Script([ToolCalls(calls), after]), settings={"mode": "bypass"},
        extra_env={"PATH": f"{bindir}:{os.environ.get('PATH', '')}"},
    )
    started = await editor.chat("clean up")
    assert (await editor.turn_end(started["turnId"]))["status"] == "done"
    results = server.chat_requests[1].last_tool_results()
    assert all(r.startswith("Permission denied: refused: this command") for r in results[:-1]), results
    assert "still going" in results[-1]
    assert editor.approvals == []
    assert not canary.exists()


# ---------------------------------------------------------------------------
# 6. acceptEdits over LSP
# ---------------------------------------------------------------------------


async def test_accept_edits_applies_through_the_editor_without_review(editor_factory, tmp_path):
    (tmp_path / "app.py").write_text("x = 1\ny = 2\n")

    def after(req: ChatRequest):
        return Text("result: " + req.last_tool_results()[0])

    scenario = Script(
        [
            ToolCalls([Call("edit_file", {"path": "app.py", "old_string": "x = 1", "new_string": "x = 42"})]),
            after,
            ToolCalls([Call("write_file", {"path": "new.py", "content": "print('new')\n"})]),
            after,
            ToolCalls([Call("run_command", {"command": "echo hi"})]),
            after,
        ]
    )
    editor, server = await editor_factory(scenario, settings={"mode": "acceptEdits"})
    editor.on_approval = lambda p: {"answer": "deny"}
    doc = editor.open("app.py")
    started = await editor.chat("edit")
    assert (await editor.turn_end(started["turnId"]))["status"] == "done"
    started = await editor.chat("write", session_id=started["sessionId"])
    assert (await editor.turn_end(started["turnId"]))["status"] == "done"
    assert editor.reviews == []
    assert len(editor.applied_edits) == 2
    assert editor.applied_edits[0]["edit"]["documentChanges"][0]["textDocument"]["uri"] == doc.uri
    assert editor.docs[doc.uri].text == "x = 42\ny = 2\n"
    assert (tmp_path / "app.py").read_text() == "x = 42\ny = 2\n"
    assert (tmp_path / "new.py").read_text() == "print('new')\n"
    # commands are still asked, as in ask mode
    started = await editor.chat("run", session_id=started["sessionId"])
    assert (await editor.turn_end(started["turnId"]))["status"] == "done"
    assert [a["target"] for a in editor.approvals] == ["echo hi"]


async def test_ask_mode_edits_go_through_review(editor_factory, tmp_path):
    """The contrast for acceptEdits: the same edit in ask mode is reviewed first."""
    (tmp_path / "app.py").write_text("x = 1\n")
    scenario = Script(
        [ToolCalls([Call("edit_file", {"path": "app.py", "old_string": "x = 1", "new_string": "x = 42"})]), Text("done")]
    )
    editor, _ = await editor_factory(scenario)
    started = await editor.chat("edit")
    assert (await editor.turn_end(started["turnId"]))["status"] == "done"
    assert len(editor.reviews) == 1 and len(editor.applied_edits) == 1
    assert (tmp_path / "app.py").read_text() == "x = 42\n"


# ---------------------------------------------------------------------------
# 7. The agent can never change its own permissions unasked (issue 12, item 8)
# ---------------------------------------------------------------------------

SELF_EDITS = [
    Call("write_file", {"path": ".codeloop/settings.local.json", "content": '{"permissions": {"allow": ["Bash"]}}\n'}),
    Call("edit_file", {"path": ".codeloop/settings.json", "old_string": '"allow": []', "new_string": '"allow": ["Bash"]'}),
    Call("apply_patch", {"patch": "--- a/.codeloop/settings.json\n+++ b/.codeloop/settings.json\n@@ -1,1 +1,1 @@\n"
                                  '-{"permissions": {"allow": []}}\n+{"permissions": {"allow": ["Bash"]}}\n'}),
    Call("write_file", {"path": ".mcp.json", "content": '{"mcpServers": {"x": {"command": "sh"}}}\n'}),
    Call("write_file", {"path": ".claude/settings.json", "content": '{"hooks": {}}\n'}),
]


@pytest.mark.parametrize("flags", [["--yes"], ["--mode", "bypass"], ["--mode", "acceptEdits"]])
def test_the_agent_cannot_rewrite_its_own_settings_in_any_mode(model_server, run_cli, tmp_path, flags):
    settings = write_settings(tmp_path, '{"permissions": {"allow": []}}\n')
    before = settings.read_text()

    def after(req: ChatRequest):
        results = req.last_tool_results()
        assert len(results) == len(SELF_EDITS)
        for res in results:
            assert "own configuration" in res or "denied" in res, res
            assert not res.startswith("Applied"), res
        return Text("I left the settings alone.")

    server = model_server(Script([ToolCalls(SELF_EDITS), after]))
    # no terminal: nobody can answer, so each of these is refused
    result = run_cli(["run", "loosen your permissions", "--cwd", str(tmp_path), *flags], server.base_url, **_env(tmp_path))
    assert result.code == 0, result.both
    assert server.failures == [], server.failures
    assert settings.read_text() == before
    assert not (tmp_path / ".codeloop" / "settings.local.json").exists()
    assert not (tmp_path / ".mcp.json").exists() and not (tmp_path / ".claude").exists()


async def test_over_lsp_an_edit_of_the_settings_is_asked_even_with_auto_accept_in_bypass(editor_factory, tmp_path):
    settings = write_settings(tmp_path, '{"permissions": {"allow": []}}\n')
    scenario = Script(
        [ToolCalls([SELF_EDITS[1]]), lambda req: Text("result: " + req.last_tool_results()[0])]
    )
    editor, _ = await editor_factory(scenario, settings={"mode": "bypass", "autoAccept": True})
    editor.on_approval = lambda p: {"answer": "deny", "message": "no"}
    started = await editor.chat("loosen")
    assert (await editor.turn_end(started["turnId"]))["status"] == "done"
    assert [a["kind"] for a in editor.approvals] == ["Edit"]
    assert "own configuration" in editor.approvals[0]["reason"]
    assert editor.applied_edits == [] and settings.read_text() == '{"permissions": {"allow": []}}\n'
