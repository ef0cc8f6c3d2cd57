"""Hooks end to end: the real ``codeloop`` CLI, the scripted model, and real hook scripts
in a temporary user config (codeloop's ``$XDG_CONFIG_HOME/codeloop`` and Claude Code's
``$CLAUDE_CONFIG_DIR``) or in the workspace.

Each hook script records what it was sent; the tests judge what the model was told,
what ran on disk, and what the user saw.
"""

from __future__ import annotations

import json
import shlex
import sys
import textwrap
from pathlib import Path

from conftest import processes_matching, unique_marker
from scripted_model import Call, ChatRequest, Keyed, Script, Text, ToolCalls

PY = shlex.quote(sys.executable)


class Homes:
    """A user's config folders, empty but for what a test writes there."""

    def __init__(self, tmp: Path) -> None:
        self.codeloop = tmp / "xdg" / "codeloop"
        self.claude = tmp / "claude-home"
        self.bin = tmp / "bin"
        self.log = tmp / "hook-log.jsonl"
        for d in (self.codeloop, self.claude, self.bin):
            d.mkdir(parents=True, exist_ok=True)

    @property
    def env(self) -> dict[str, str]:
        return {"XDG_CONFIG_HOME": str(self.codeloop.parent), "CLAUDE_CONFIG_DIR": str(self.claude)}

    def script(self, name: str, body: str) -> str:
        """A Python hook script; the command line that runs it."""
        path = self.bin / name
        path.write_text(textwrap.dedent(body).lstrip())
        return f"{PY} {shlex.quote(str(path))} {shlex.quote(str(self.log))}"

    def hooks(self, hooks: dict, *, claude: bool = True, extra: dict | None = None) -> None:
        """User hooks: in Claude Code's ~/.claude/settings.json, or codeloop's own file."""
        path = (self.claude if claude else self.codeloop) / "settings.json"
        path.write_text(json.dumps({"hooks": hooks, **(extra or {})}, indent=2))

    def records(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]


RECORD = """
    import json, sys
    data = json.load(sys.stdin)
    with open(sys.argv[1], "a") as f:
        f.write(json.dumps(data) + "\\n")
"""


def group(matcher: str | None, command: str, timeout: float | None = None) -> dict:
    entry: dict = {"type": "command", "command": command}
    if timeout is not None:
        entry["timeout"] = timeout
    g: dict = {"hooks": [entry]}
    if matcher is not None:
        g["matcher"] = matcher
    return g


def results(req: ChatRequest) -> str:
    return "\n".join(req.last_tool_results())


def test_a_pre_tool_use_hook_blocks_a_command_and_the_model_reads_why(model_server, run_cli, tmp_path):
    homes = Homes(tmp_path / "h")
    ws = tmp_path / "ws"
    (ws / "keep").mkdir(parents=True)
    guard = homes.script("guard.py", RECORD + """
    if "rm -rf" in data["tool_input"].get("command", ""):
        print("rm -rf is not allowed here; move files to ./trash instead", file=sys.stderr)
        sys.exit(2)
    """)
    homes.hooks({"PreToolUse": [group("Bash", guard)]})

    def after_block(req):
        assert "Blocked by a PreToolUse hook: rm -rf is not allowed here; move files to ./trash instead" in results(req)
        return Text("I will move it to ./trash instead.")

    server = model_server(Script([ToolCalls([Call("run_command", {"command": "rm -rf keep"})]), after_block]))
    out = run_cli(["run", "clean up", "--cwd", str(ws), "--yes"], server.base_url, **homes.env)
    assert out.code == 0, out.both
    assert (ws / "keep").is_dir(), "the blocked command did not run"
    assert "⚙ hook PreToolUse" in out.out and "denied the call (exit 2" in out.out
    (sent,) = homes.records()
    # A hook written for Claude Code sees Claude Code's names, and the session's fields.
    assert (sent["tool_name"], sent["tool_input"]) == ("Bash", {"command": "rm -rf keep"})
    assert sent["codeloop_tool_input"] == {"command": "rm -rf keep"} and sent["hook_event_name"] == "PreToolUse"
    assert sent["permission_mode"] == "bypassPermissions" and sent["cwd"] == str(ws.resolve())
    assert sent["session_id"] and Path(sent["transcript_path"]).is_file()


def test_a_pre_tool_use_hook_rewrites_the_input_and_a_bad_rewrite_is_an_error_for_the_model(
        model_server, run_cli, tmp_path):
    homes = Homes(tmp_path / "h")
    ws = tmp_path / "ws"
    ws.mkdir()
    rewrite = homes.script("rewrite.py", RECORD + """
    cmd = data["tool_input"]["command"]
    if "original" in cmd:
        new = {"command": cmd.replace("original", "rewritten")}
    else:
        new = {"timeout": "soon"}
    print(json.dumps({"hookSpecificOutput": {"hookEventName": "PreToolUse", "updatedInput": new}}))
    """)
    # codeloop's own settings file: the hook sees codeloop's names.
    homes.hooks({"PreToolUse": [group("run_command", rewrite)]}, claude=False)

    def after_rewrite(req):
        assert "exit code: 0" in results(req)
        return ToolCalls([Call("run_command", {"command": "echo second"})])

    def after_bad(req):
        assert "a PreToolUse hook rewrote the arguments of run_command, and they are not valid" in results(req)
        return Text("done")

    server = model_server(Script([
        ToolCalls([Call("run_command", {"command": "echo original > out.txt"})]), after_rewrite, after_bad]))
    out = run_cli(["run", "write it", "--cwd", str(ws), "--yes"], server.base_url, **homes.env)
    assert out.code == 0, out.both
    assert (ws / "out.txt").read_text() == "rewritten\n"
    assert [r["tool_name"] for r in homes.records()] == ["run_command", "run_command"]
    assert "rewrote the input" in out.out


def test_a_post_tool_use_hook_adds_context_to_the_result(model_server, run_cli, tmp_path):
    homes = Homes(tmp_path / "h")
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "gen.py").write_text("X = 1  # generated\n")
    note = homes.script("note.py", RECORD + """
    if "generated" in data["tool_response"]:
        print(json.dumps({"hookSpecificOutput": {"hookEventName": "PostToolUse",
              "additionalContext": "gen.py is generated: edit templates/gen.j2 instead"}}))
    """)
    homes.hooks({"PostToolUse": [group("Read", note)]})

    def after_read(req):
        text = results(req)
        assert "X = 1  # generated" in text and "[hook] gen.py is generated: edit templates/gen.j2 instead" in text
        return Text("noted")

    server = model_server(Script([ToolCalls([Call("read_file", {"path": "gen.py"})]), after_read]))
    out = run_cli(["run", "look", "--cwd", str(ws), "--yes"], server.base_url, **homes.env)
    assert out.code == 0, out.both
    (sent,) = homes.records()
    assert sent["tool_name"] == "Read" and sent["tool_input"]["file_path"] == str((ws / "gen.py").resolve())
    assert "added context" in out.out


def test_a_stop_hook_sends_the_agent_back_to_work_once(model_server, run_cli, tmp_path):
    homes = Homes(tmp_path / "h")
    ws = tmp_path / "ws"
    ws.mkdir()
    check = homes.script("check.py", RECORD + """
    if not data["stop_hook_active"]:
        print("Run the tests before you stop.", file=sys.stderr)
        sys.exit(2)
    """)
    homes.hooks({"Stop": [group(None, check)]})

    def sent_back(req):
        assert req.last_user_text().endswith("Run the tests before you stop.")
        return ToolCalls([Call("run_command", {"command": "echo tests-pass"})])

    server = model_server(Script([Text("All done."), sent_back, Text("Tests pass; done now.")]))
    out = run_cli(["run", "fix it", "--cwd", str(ws), "--yes"], server.base_url, **homes.env)
    assert out.code == 0, out.both
    assert len(server.chat_requests) == 3
    assert [r["stop_hook_active"] for r in homes.records()] == [False, True]
    assert "Tests pass; done now." in out.out


def test_a_hung_hook_is_killed_at_its_timeout_and_the_turn_goes_on(model_server, run_cli, tmp_path):
    homes = Homes(tmp_path / "h")
    ws = tmp_path / "ws"
    ws.mkdir()
    marker = unique_marker("41.5")
    homes.hooks({"PreToolUse": [group("Bash", f"sleep {marker}", timeout=1)]})

    def after(req):
        assert "went-on" in results(req)
        return Text("ok")

    server = model_server(Script([ToolCalls([Call("run_command", {"command": "echo went-on"})]), after]))
    out = run_cli(["run", "go", "--cwd", str(ws), "--yes"], server.base_url, **homes.env)
    assert out.code == 0, out.both
    assert "timed out after 1s and was killed" in out.out
    assert processes_matching(marker) == []


def test_a_hooks_allow_skips_the_default_question_but_never_a_deny_rule(model_server, run_cli, tmp_path):
    homes = Homes(tmp_path / "h")
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "victim.txt").write_text("still here\n")
    allow = homes.script("allow.py", RECORD + """
    print(json.dumps({"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "allow",
                                             "permissionDecisionReason": "the hook trusts everything"}}))
    """)
    # A deny rule in the user's settings, and a hook that allows everything.
    homes.hooks({"PreToolUse": [group("Bash", allow)]}, claude=False,
                extra={"permissions": {"deny": ["Bash(rm:*)"]}})

    def after_touch(req):
        assert "exit code: 0" in results(req), "the hook's allow skipped the default question"
        return ToolCalls([Call("run_command", {"command": "rm victim.txt"})])

    def after_rm(req):
        assert "Permission denied" in results(req) and "Bash(rm:*)" in results(req)
        return Text("cannot delete it")

    server = model_server(Script([ToolCalls([Call("run_command", {"command": "touch made.txt"})]), after_touch, after_rm]))
    # No --yes and no terminal: every question would be refused.
    out = run_cli(["run", "go", "--cwd", str(ws)], server.base_url, **homes.env)
    assert out.code == 0, out.both
    assert (ws / "made.txt").exists()
    assert (ws / "victim.txt").read_text() == "still here\n"
    assert len(homes.records()) == 2


def test_a_hooks_allow_never_lets_a_catastrophic_command_or_a_change_to_codeloops_own_settings_through(
        model_server, run_cli, tmp_path):
    """A hook that allows every call (matcher: all tools) cannot widen what the policy always
    refuses (the catastrophic class) or always asks the user (the agent's own configuration):
    with no terminal to ask, both are refused and nothing changes."""
    homes = Homes(tmp_path / "h")
    ws = tmp_path / "ws"
    ws.mkdir()
    allow = homes.script("allow.py", RECORD + """
    print(json.dumps({"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "allow",
                                             "permissionDecisionReason": "the hook trusts everything"}}))
    """)
    homes.hooks({"PreToolUse": [group(None, allow)]}, claude=False)
    wide_open = json.dumps({"permissions": {"allow": ["Bash", "Edit", "Write"]}})

    def after_mkfs(req):
        assert "Permission denied" in results(req), results(req)
        return ToolCalls([Call("write_file", {"path": ".codeloop/settings.json", "content": wide_open})])

    def after_settings(req):
        text = results(req)
        assert "denied" in text.lower() and "settings.json" not in {p.name for p in (ws / ".codeloop").glob("*")}, text
        return Text("both refused")

    server = model_server(Script([ToolCalls([Call("run_command", {"command": "mkfs.ext4 /dev/codeloop-test-nonexistent"})]),
                                  after_mkfs, after_settings]))
    out = run_cli(["run", "go", "--cwd", str(ws)], server.base_url, **homes.env)
    assert out.code == 0, out.both
    assert not (ws / ".codeloop" / "settings.json").exists()
    assert len(homes.records()) == 2, "the hook ran for both calls; its answer was not enough"


def test_prompt_hooks_and_project_hooks_without_consent(model_server, run_cli, tmp_path):
    homes = Homes(tmp_path / "h")
    ws = tmp_path / "ws"
    (ws / ".claude").mkdir(parents=True)
    gate = homes.script("gate.py", RECORD + """
    if "secret plan" in data["prompt"]:
        print("prompts about the secret plan are not sent", file=sys.stderr)
        sys.exit(2)
    print("Team rule: answer in one line.")
    """)
    start = homes.script("start.py", RECORD + """
    print("The build is green (from SessionStart, source " + data["source"] + ").")
    """)
    homes.hooks({"UserPromptSubmit": [group(None, gate)], "SessionStart": [group(None, start)]})
    # A cloned repository's own hook: it must not run without the user's consent.
    project_marker = tmp_path / "project-hook-ran"
    (ws / ".claude" / "settings.json").write_text(json.dumps({"hooks": {"UserPromptSubmit": [
        group(None, f"touch {shlex.quote(str(project_marker))}")]}}))

    def answer(req):
        text = req.last_user_text()
        assert text.startswith("hello there")
        assert "Team rule: answer in one line." in text and "The build is green (from SessionStart, source startup)." in text
        return Text("Hi.")

    server = model_server(Keyed({"hello there": answer}))
    out = run_cli(["chat", "--cwd", str(ws), "--yes"], server.base_url,
                  stdin="tell me the secret plan\nhello there\n", **homes.env)
    assert out.code == 0, out.both
    assert len(server.chat_requests) == 1, "the blocked prompt never reached the model"
    assert all("secret plan" not in m.get("content", "") for m in server.chat_requests[0].messages
               if isinstance(m.get("content"), str)), "and it is not in the history"
    assert "Your prompt was not sent: prompts about the secret plan are not sent" in out.out
    assert not project_marker.exists()
    assert out.out.count("Skipped 1 hook(s) from this project's settings") == 1
    events = [r["hook_event_name"] for r in homes.records()]
    assert events == ["SessionStart", "UserPromptSubmit", "UserPromptSubmit"]


def test_pre_compact_can_block_a_compaction_and_session_end_runs_at_exit(model_server, run_cli, tmp_path):
    homes = Homes(tmp_path / "h")
    ws = tmp_path / "ws"
    ws.mkdir()
    keep = homes.script("keep.py", RECORD + """
    print("keep the full history while we debug", file=sys.stderr)
    sys.exit(2)
    """)
    record = homes.script("record.py", RECORD)
    homes.hooks({"PreCompact": [group("manual", keep)], "SessionEnd": [group(None, record)]})
    server = model_server(Keyed({"hello": Text("hi")}))
    out = run_cli(["chat", "--cwd", str(ws), "--yes"], server.base_url, stdin="hello\n/compact\n", **homes.env)
    assert out.code == 0, out.both
    assert "A PreCompact hook blocked the compaction: keep the full history while we debug" in out.out
    assert len(server.chat_requests) == 1, "no summary was requested"
    ran = homes.records()
    assert [(r["hook_event_name"], r.get("trigger"), r.get("reason")) for r in ran] == [
        ("PreCompact", "manual", None), ("SessionEnd", None, "prompt_input_exit")]


def test_a_hooks_ask_makes_the_user_answer_even_in_bypass_mode(model_server, run_cli, tmp_path):
    homes = Homes(tmp_path / "h")
    ws = tmp_path / "ws"
    ws.mkdir()
    ask = homes.script("ask.py", RECORD + """
    print(json.dumps({"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "ask",
                                             "permissionDecisionReason": "deploys need a human"}}))
    """)
    homes.hooks({"PreToolUse": [group("Bash", ask)]})

    def after(req):
        # --yes has nobody to ask: the question is refused, so the command did not run.
        assert "The user denied permission to run this (Bash: touch deployed.txt)" in results(req)
        return Text("not deployed")

    server = model_server(Script([ToolCalls([Call("run_command", {"command": "touch deployed.txt"})]), after]))
    out = run_cli(["run", "deploy", "--cwd", str(ws), "--yes"], server.base_url, **homes.env)
    assert out.code == 0, out.both
    assert not (ws / "deployed.txt").exists()


def test_hooks_are_reloaded_when_a_settings_file_changes(model_server, run_cli, tmp_path):
    homes = Homes(tmp_path / "h")
    ws = tmp_path / "ws"
    ws.mkdir()
    guard = homes.script("guard.py", RECORD + """
    print("no more commands today", file=sys.stderr)
    sys.exit(2)
    """)

    def first(req):
        # The user adds a hook while the chat runs; the next tool call meets it.
        homes.hooks({"PreToolUse": [group("Bash", guard)]})
        return Text("ok")

    def after(req):
        assert "Blocked by a PreToolUse hook: no more commands today" in results(req)
        return Text("blocked now")

    server = model_server(Keyed({
        "one": first,
        "two": Script([ToolCalls([Call("run_command", {"command": "echo two"})]), after]),
    }))
    out = run_cli(["chat", "--cwd", str(ws), "--yes"], server.base_url, stdin="one\ntwo\n", **homes.env)
    assert out.code == 0, out.both
    assert "blocked now" in out.out and len(homes.records()) == 1
