"""Sub-agents end to end: the real CLI's ``task`` tool against the scripted model.

One scripted server answers both the parent and its children; a child's requests are told
apart by their system prompt (each sub-agent has its own) and their first user message.
"""

from __future__ import annotations

import json
import sys
import textwrap
import threading
from pathlib import Path

from scripted_model import Call, ChatRequest, Error, Script, Text, ToolCalls, Usage

MUTATING = {"run_command", "write_file", "edit_file", "apply_patch", "kill_process"}


def is_child(req: ChatRequest, agent: str) -> bool:
    return f"You are the sub-agent {agent!r}" in req.system_text()


def task_description(req: ChatRequest) -> str:
    return next(t["function"]["description"] for t in req.tools if t["function"]["name"] == "task")


def results(req: ChatRequest) -> str:
    return "\n".join(req.last_tool_results())


def session_records(ws: Path) -> list[dict]:
    (path,) = (ws / ".codeloop" / "sessions").glob("*.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()]


def homes_env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "xdg").mkdir(exist_ok=True)
    (tmp_path / "claude-home").mkdir(exist_ok=True)
    return {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "CLAUDE_CONFIG_DIR": str(tmp_path / "claude-home")}


def test_an_explore_sub_agent_searches_and_returns_only_its_answer(model_server, run_cli, tmp_path):
    ws = tmp_path / "ws"
    (ws / "app").mkdir(parents=True)
    (ws / "app" / "auth.py").write_text("import os\n\ndef handle_login(user):\n    return user\n")
    children: list[ChatRequest] = []
    child_script = Script([
        ToolCalls([Call("grep", {"pattern": "def handle_login"})], usage=Usage(1000, 50)),
        Text("handle_login is defined in app/auth.py line 3.", usage=Usage(1000, 50)),
    ], name="child")

    def child(req):
        children.append(req)
        return child_script(req)

    def first(req):
        desc = task_description(req)
        assert "- explore: " in desc and "- general: " in desc
        return ToolCalls([Call("task", {"description": "find the handler", "subagent_type": "explore",
                                        "prompt": "Where is handle_login defined? Give the file and line."},
                               id="call_task_1")], usage=Usage(100, 10))

    def after_task(req):
        text = results(req)
        assert text.startswith("handle_login is defined in app/auth.py line 3.")
        assert "[sub-agent explore: 2 model calls, 2,000 tokens in / 100 out]" in text
        assert "app/auth.py:3" not in text, "only the child's answer comes back, not its search results"
        return Text("It is in app/auth.py, line 3.", usage=Usage(100, 10))

    parent = Script([first, after_task], name="parent")
    server = model_server(lambda req: child(req) if is_child(req, "explore") else parent(req))
    env = homes_env(tmp_path)
    # A child's stop runs SubagentStop hooks, the parent's Stop hooks.
    log = tmp_path / "stops.jsonl"
    record = f"{sys.executable} -c \"import sys; open({str(log)!r}, 'a').write(sys.stdin.read() + chr(10))\""
    (tmp_path / "claude-home" / "settings.json").write_text(json.dumps({"hooks": {
        event: [{"hooks": [{"type": "command", "command": record}]}] for event in ("Stop", "SubagentStop")}}))
    out = run_cli(["run", "find the login handler", "--cwd", str(ws), "--yes"], server.base_url, **env)
    assert out.code == 0, out.both
    assert server.failures == []
    stops = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert [s["hook_event_name"] for s in stops] == ["SubagentStop", "Stop"]
    assert "│ explore: ⚙ hook SubagentStop" in out.out
    # The child: a fresh conversation (its prompt only), read-only tools, no task of its own.
    first_child = children[0]
    assert [m["role"] for m in first_child.messages] == ["system", "user"]
    assert first_child.last_user_text() == "Where is handle_login defined? Give the file and line."
    names = set(first_child.tool_names())
    assert {"grep", "read_file", "glob"} <= names
    assert not names & (MUTATING | {"task", "todo_write"})
    assert "app/auth.py:3" in results(children[1])
    # Shown nested under the task card; its tokens counted into the turn's.
    assert "│ explore: ● grep(def handle_login)" in out.out
    assert "│ explore: handle_login is defined in app/auth.py line 3." in out.out
    assert "[2,200 in / 120 out]" in out.out
    # Kept in the session file under the parent's call, with its usage.
    records = session_records(ws)
    sub = [r for r in records if r["type"] == "subagent"]
    assert {r["call_id"] for r in sub} == {"call_task_1"} and {r["agent"] for r in sub} == {"explore"}
    assert [r["message"]["role"] for r in sub] == ["user", "assistant", "tool", "assistant"]
    assert sum(1 for r in records if r["type"] == "usage") == 4


def test_two_read_only_sub_agents_run_at_the_same_time(model_server, run_cli, tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    started = {"A": threading.Event(), "B": threading.Event()}

    def child(req):
        key = "A" if "question A" in req.user_texts()[0] else "B"
        other = "B" if key == "A" else "A"
        started[key].set()
        # Each child's first request waits until the other child has sent its own: a
        # sequential run would never get there (this one would have to end first).
        if not started[other].wait(30):
            return Error(500, f"sub-agent {key} ran alone: {other} never started meanwhile",
                         headers={"x-should-retry": "false"}, type="scripted_model_error")
        return Text(f"answer {key}")

    def first(req):
        return ToolCalls([
            Call("task", {"description": "question A", "prompt": "question A: what is in a?", "subagent_type": "explore"}),
            Call("task", {"description": "question B", "prompt": "question B: what is in b?", "subagent_type": "explore"}),
        ])

    def after(req):
        texts = req.last_tool_results()
        assert texts[0].startswith("answer A") and texts[1].startswith("answer B"), texts
        return Text("both answered")

    parent = Script([first, after])
    server = model_server(lambda req: child(req) if is_child(req, "explore") else parent(req))
    out = run_cli(["run", "ask both", "--cwd", str(ws), "--yes"], server.base_url, **homes_env(tmp_path))
    assert out.code == 0, out.both
    assert server.failures == []
    assert "both answered" in out.out


def test_a_project_agent_file_gets_only_its_tools_and_its_turn_cap(model_server, run_cli, tmp_path):
    ws = tmp_path / "ws"
    (ws / ".claude" / "agents").mkdir(parents=True)
    (ws / "a.py").write_text("x = 1\n")
    (ws / ".claude" / "agents" / "reviewer.md").write_text(textwrap.dedent("""\
        ---
        name: reviewer
        description: Reviews a file for bugs. Use after a change.
        tools: Read, Grep
        maxTurns: 2
        ---
        You review code. Report bugs with file and line.
    """))
    children: list[ChatRequest] = []

    def child(req):
        children.append(req)
        return ToolCalls([Call("read_file", {"path": "a.py"})])  # never answers: hits its cap

    def first(req):
        assert "- reviewer: Reviews a file for bugs. Use after a change." in task_description(req)
        return ToolCalls([Call("task", {"description": "review a.py", "prompt": "Review a.py", "subagent_type": "reviewer"})])

    def after(req):
        text = results(req)
        assert "the sub-agent reviewer stopped at its limit of 2 model calls before it finished" in text
        return Text("the reviewer ran out of steps")

    parent = Script([first, after])
    server = model_server(lambda req: child(req) if is_child(req, "reviewer") else parent(req))
    out = run_cli(["run", "review", "--cwd", str(ws), "--yes"], server.base_url, **homes_env(tmp_path))
    assert out.code == 0, out.both
    assert len(children) == 2
    for req in children:
        assert sorted(req.tool_names()) == ["grep", "read_file"]
        assert "You review code. Report bugs with file and line." in req.system_text()


def test_in_plan_mode_sub_agents_get_only_what_plan_mode_shows(model_server, run_cli, tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    children: list[ChatRequest] = []

    def child(req):
        children.append(req)
        return Text("looked around")

    def first(req):
        assert "task" in req.tool_names() and "write_file" not in req.tool_names()
        return ToolCalls([Call("task", {"description": "look", "prompt": "Look around."})])  # general

    parent = Script([first, Text("here is the plan")])
    server = model_server(lambda req: child(req) if is_child(req, "general") else parent(req))
    out = run_cli(["run", "plan it", "--cwd", str(ws), "--mode", "plan"], server.base_url, **homes_env(tmp_path))
    assert out.code == 0, out.both
    names = set(children[0].tool_names())
    assert "read_file" in names and "run_command" in names  # commands stay, each decided by plan mode
    assert not names & {"write_file", "edit_file", "apply_patch", "task", "todo_write"}
