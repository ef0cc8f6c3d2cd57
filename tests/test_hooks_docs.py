"""docs/hooks.md: every example in it is extracted and used for real."""

from __future__ import annotations

import json
import re
from pathlib import Path

from codeloop.context.agent_defs import load_agent_defs
from codeloop.context.custom_commands import load_custom_commands
from codeloop.context.todos import parse_todo_write
from codeloop.services.hooks import HookEngine, load_hooks

DOC = Path(__file__).resolve().parent.parent / "docs" / "hooks.md"
FENCE = re.compile(r"^```(\w+) (\S+)\n(.*?)^```$", re.M | re.S)


class Trusted:
    def is_trusted(self) -> bool:
        return True


def examples() -> dict[str, str]:
    found = {m.group(2): m.group(3) for m in FENCE.finditer(DOC.read_text(encoding="utf-8"))}
    assert set(found) == {".claude/settings.json", ".claude/hooks/no-rm-rf.sh", ".claude/agents/code-reviewer.md",
                          ".claude/commands/fix-issue.md", "todo_write"}
    return found


def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    for rel, text in examples().items():
        if rel.startswith("."):
            p = root / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
            if p.suffix == ".sh":
                p.chmod(0o755)
    return root


async def test_the_documented_hooks_work_as_written(tmp_path):
    root = project(tmp_path)
    hooks, problems = load_hooks(root)
    assert problems == [] and len(hooks) == 2
    engine = HookEngine(hooks, root, Trusted())
    res = await engine.run("PreToolUse", {"tool_name": "run_command", "tool_input": {"command": "rm -rf build"}})
    assert res.blocked and res.reason == "rm -rf is not allowed here; move files to ./trash instead"
    res = await engine.run("PreToolUse", {"tool_name": "run_command", "tool_input": {"command": "ls"}})
    assert not res.blocked and [o.exit_code for o in res.outcomes] == [0]
    await engine.run("PostToolUse", {"tool_name": "apply_patch", "tool_input": {"patch": ""}, "tool_response": "ok"})
    assert (root / ".claude" / "edits.log").read_text().strip().endswith("edited")


def test_the_documented_agent_command_and_todos_load(tmp_path):
    root = project(tmp_path)
    defs = load_agent_defs(root)
    assert defs.problems == []
    a = defs.get("code-reviewer")
    assert a.tools == ("Read", "Grep", "Glob") and a.model is None and a.max_turns == 12
    cmds = load_custom_commands(root)
    assert cmds.problems == []
    fix, _ = cmds.lookup("fix-issue")
    assert fix.argument_hint == "[issue-number] [priority]"
    assert fix.expand('123 "very high"').startswith("Fix issue #123 (priority very high): read it with `gh issue view 123`")
    todos = parse_todo_write(json.loads(examples()["todo_write"]))
    assert [t.status for t in todos] == ["completed", "in_progress", "pending"]
