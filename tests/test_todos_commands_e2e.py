"""The todo list (through a compaction and a resume) and custom slash commands, end to
end through the real CLI with the scripted model."""

from __future__ import annotations

import textwrap
from pathlib import Path

from scripted_model import Call, ChatRequest, Keyed, Script, Text, ToolCalls

from codeloop.context.compaction import SUMMARY_PREFIX


def homes_env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "xdg" / "codeloop").mkdir(parents=True, exist_ok=True)
    (tmp_path / "claude-home").mkdir(exist_ok=True)
    return {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "CLAUDE_CONFIG_DIR": str(tmp_path / "claude-home")}


def todos(*items: tuple[str, str, str]) -> dict:
    return {"todos": [{"content": c, "activeForm": a, "status": s} for c, a, s in items]}


PLAN = todos(("Reproduce the bug", "Reproducing the bug", "in_progress"),
             ("Fix the parser", "Fixing the parser", "pending"),
             ("Add a test", "Adding a test", "pending"))
LATER = todos(("Reproduce the bug", "Reproducing the bug", "completed"),
              ("Fix the parser", "Fixing the parser", "completed"),
              ("Add a test", "Adding a test", "in_progress"))
NOTE = "Your current todo list (kept across the summary; update it with todo_write as you go):"


def summary_of(req: ChatRequest) -> str:
    first = next(m for m in req.messages if m["role"] == "user")
    assert first["content"].startswith(SUMMARY_PREFIX), first
    return first["content"]


def test_the_todo_list_is_shown_survives_a_compaction_and_comes_back_on_resume(model_server, run_cli, tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    seen: dict[str, ChatRequest] = {}

    def after_plan(req):
        assert "Todo list updated." in req.last_tool_results()[0]
        assert "[>] Reproduce the bug" in req.last_tool_results()[0]
        return Text("planned")

    def what_is_left(req):
        seen["after compaction"] = req
        return Text("the test is left")

    def after_resume(req):
        seen["after resume"] = req
        return Text("still the test")

    scenario = Keyed({
        "Write a summary of the conversation so far": Text("SUMMARY: we planned and fixed the parser."),
        "plan the work": Script([ToolCalls([Call("todo_write", PLAN)]), after_plan]),
        "step two": Script([ToolCalls([Call("todo_write", LATER)]), Text("fixed")]),
        "step three": Text("working on the test"),
        "what is left": what_is_left,
        "anything else": after_resume,
    })
    server = model_server(scenario)
    env = homes_env(tmp_path)
    first = run_cli(["chat", "--cwd", str(ws), "--yes"], server.base_url,
                    stdin="plan the work\nstep two\nstep three\n/compact\nwhat is left\n", **env)
    assert first.code == 0, first.both
    # Shown live: a compact checklist after each todo_write.
    assert "☰ Todos (0/3 done)" in first.out and "☰ Todos (2/3 done)" in first.out
    assert "Reproducing the bug" in first.out and "Adding a test" in first.out
    assert "Compacted:" in first.out
    # After the summary the current list is in the context, whatever the summary said.
    summary = summary_of(seen["after compaction"])
    assert "SUMMARY: we planned and fixed the parser." in summary
    assert NOTE in summary and "[x] Fix the parser" in summary and "[>] Add a test" in summary

    again = run_cli(["chat", "--cwd", str(ws), "--yes", "--continue"], server.base_url, stdin="anything else\n", **env)
    assert again.code == 0, again.both
    assert "Resumed session" in again.out
    assert "☰ Todos (2/3 done)" in again.out and "Adding a test" in again.out
    assert NOTE in summary_of(seen["after resume"])


def test_custom_commands_from_the_project_and_the_user_with_arguments(model_server, run_cli, tmp_path):
    ws = tmp_path / "ws"
    env = homes_env(tmp_path)
    cmds = ws / ".claude" / "commands"
    cmds.mkdir(parents=True)
    (cmds / "fix-issue.md").write_text(textwrap.dedent("""\
        ---
        description: Fix a GitHub issue
        argument-hint: [issue-number] [priority]
        ---
        Fix issue #$1 (priority $2). Everything you were told: $ARGUMENTS
    """))
    (cmds / "help.md").write_text("A project file may not replace the built-in /help.\n")
    user_cmds = tmp_path / "xdg" / "codeloop" / "commands"
    user_cmds.mkdir(parents=True)
    (user_cmds / "hello.md").write_text("Say hello to the team.\n")
    later = ws / ".codeloop" / "commands" / "later.md"

    def fixing(req):
        # The next line uses a command that does not exist yet: written now, while the chat runs.
        later.parent.mkdir(parents=True, exist_ok=True)
        later.write_text("---\ndescription: Added mid-session\n---\nDo the later thing with $ARGUMENTS.\n")
        return Text("fixing")

    scenario = Keyed({
        "Fix issue #123": fixing,
        "Say hello to the team.": Text("hello"),
        "Do the later thing": Text("later done"),
        "Fix issue #7": Text("on it"),
    })
    server = model_server(scenario)
    out = run_cli(["chat", "--cwd", str(ws), "--yes"], server.base_url,
                  stdin='/help\n/fix-issue 123 "very high"\n/hello world\n/later now\n', **env)
    assert out.code == 0, out.both
    assert "/fix-issue [issue-number] [priority]" in out.out and "Fix a GitHub issue (project)" in out.out
    assert "Say hello to the team. (user)" in out.out
    assert "A project file may not replace" not in out.out, "/help is the built-in one"
    sent = [r.last_user_text() for r in server.chat_requests]
    assert sent == [
        'Fix issue #123 (priority very high). Everything you were told: 123 "very high"',
        "Say hello to the team.\n\nARGUMENTS: world",
        "Do the later thing with now.",
    ]
    # codeloop run takes a custom command too.
    once = run_cli(["run", "/fix-issue 7 low", "--cwd", str(ws), "--yes"], server.base_url, **env)
    assert once.code == 0, once.both
    assert server.chat_requests[-1].last_user_text() == "Fix issue #7 (priority low). Everything you were told: 7 low"
